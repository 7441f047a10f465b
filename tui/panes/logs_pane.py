"""Logs: every core event as it happens; bounded, batched, follow on by default."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import events
from textual.containers import Vertical
from textual.content import Content
from textual.reactive import var
from textual.widgets import RichLog, Static

from sshcore.api import visible

from .. import registry
from ..text import styled
from .base import Pane

if TYPE_CHECKING:
    from textual.widgets import Input

KEEP = 5000  # records kept for filtering; the log file has everything
# Bytes, not lines, bound what is kept: a remote log's "line" can be 1 MiB (sshcore.follow).
SOURCE_BYTES = 4 * 1024 * 1024  # text kept per source
TOTAL_BYTES = 16 * 1024 * 1024  # text kept by all sources together
LINE_CHARS = 16 * 1024  # a longer line is kept and shown cut, with how much was left out
PENDING_LINES = 2000  # lines of a remote source waiting for a flush (a shell is open)
SHOWN = 1000  # lines the view holds
PER_FLUSH = 100  # lines drawn per batch (a few screenfuls): a burst never freezes typing
LEVEL_STYLE = {"info": "", "warning": "yellow", "error": "bold red"}
LEVEL_TAG = {"info": "   ", "warning": "!  ", "error": "!! "}


def stamp(at: float) -> str:
    """The time column of a log line (local time)."""
    return time.strftime("%H:%M:%S ", time.localtime(at))


def clipped(text: str) -> str:
    """`text` cut to LINE_CHARS, saying how much was left out."""
    if len(text) <= LINE_CHARS:
        return text
    return f"{text[:LINE_CHARS]}… ({len(text) - LINE_CHARS} more characters not shown)"


class Records(deque["LogRecord"]):
    """A source's records, bounded by count (KEEP) and by the characters they hold."""

    def __init__(self, budget: int = SOURCE_BYTES) -> None:
        super().__init__(maxlen=KEEP)
        self.budget = budget
        self.size = 0

    def add(self, records: Iterable[LogRecord]) -> None:
        """Append, dropping the oldest beyond the budget."""
        for record in records:
            if len(self) == self.maxlen:
                self.size -= len(self[0].text)
            self.append(record)
            self.size += len(record.text)
        self.trim(self.budget)

    def trim(self, budget: int) -> None:
        """Drop the oldest records until the text held fits `budget` (one record stays)."""
        while self.size > budget and len(self) > 1:
            self.size -= len(self.popleft().text)

    def clear(self) -> None:
        super().clear()
        self.size = 0


class PendingLines:
    """A remote source's lines waiting to be drawn: the newest PENDING_LINES, and a count
    of those dropped (while a shell is open the dashboard draws nothing)."""

    def __init__(self) -> None:
        self.lines: deque[LogRecord] = deque(maxlen=PENDING_LINES)
        self.dropped = 0

    def add(self, record: LogRecord) -> None:
        if len(self.lines) == self.lines.maxlen:
            self.dropped += 1
        self.lines.append(LogRecord(record.at, record.level, clipped(record.text)))

    def take(self) -> list[LogRecord]:
        """What waits (with a line for what was dropped), emptied."""
        taken = list(self.lines)
        if self.dropped:
            note = f"… {self.dropped} lines not shown (they came while the dashboard was away)"
            taken.insert(0, LogRecord(time.time(), "warning", note))
        self.lines.clear()
        self.dropped = 0
        return taken

    def __bool__(self) -> bool:
        return bool(self.lines) or bool(self.dropped)


@dataclass(frozen=True)
class LogRecord:
    """One line of the log view."""

    at: float
    level: str
    text: str

    def render(self) -> Text:
        line = Text(stamp(self.at), style="dim")
        style = LEVEL_STYLE.get(self.level, "")
        line.append(LEVEL_TAG.get(self.level, "   "), style=style)
        line.append(visible(self.text), style=style)
        return line


EVENTS = "events"  # the core's own events: the first source, always there


class LogsPane(Pane):
    """The event log, plus remote files or commands as more sources (`[` `]` switch);
    `/` filter, `f` follow and ctrl+l clear work on the source shown."""

    title = "Logs"
    number = 4
    BINDINGS: ClassVar[list[Any]] = registry.bindings("logs")  # tui/registry.py

    follow: var[bool] = var(True)
    """Keep the newest line in view; scrolling up turns it off."""
    waiting: var[int] = var(0)
    """Lines that arrived while follow was off."""

    source: var[str] = var(EVENTS)
    """The source shown: EVENTS or "HOST:PATH" / "HOST:cmd:COMMAND"."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.records = Records()  # the core's events
        self.sources: dict[str, Records] = {EVENTS: self.records}

    def compose(self) -> Any:
        yield Static("", classes="sources")
        with Vertical():
            view = RichLog(max_lines=SHOWN, wrap=True, markup=False, min_width=20, id="log")
            yield view

    def on_mount(self) -> None:
        super().on_mount()
        self.show_sources()

    # -- sources ----------------------------------------------------------------------------
    def add_source(self, key: str) -> None:
        """A remote source gets its own tab (kept while the dashboard runs)."""
        if key not in self.sources:
            self.sources[key] = Records()
        self.show_sources()

    def remove_source(self, key: str) -> None:
        """Drop a remote source's tab."""
        if key != EVENTS and self.sources.pop(key, None) is not None:
            if self.source == key:
                self.source = EVENTS
            self.show_sources()

    def show_sources(self) -> None:
        """The tab line: hidden while the events are the only source."""
        bar = self.query_one(".sources", Static)
        bar.display = len(self.sources) > 1
        tabs = [
            styled("[reverse b] $name [/]" if key == self.source else " $name ", name=key)
            for key in self.sources
        ]
        bar.update(Content("").join([*tabs, Content.from_markup("  [dim]\\[ ] switch[/]")]))

    def watch_source(self) -> None:
        self.waiting = 0
        self.show_sources()
        self.redraw()

    def _step(self, by: int) -> None:
        keys = list(self.sources)
        self.source = keys[(keys.index(self.source) + by) % len(keys)]

    def action_next_source(self) -> None:
        self._step(1)

    def action_previous_source(self) -> None:
        self._step(-1)

    def action_add_source(self) -> None:
        self.dashboard.log_actions.add_log_source()

    def action_remove_source(self) -> None:
        if self.source == EVENTS:
            self.notify("The events stay; d removes a remote source (] switches to one)")
            return
        self.dashboard.log_actions.remove_log_source(self.source)

    @property
    def log_view(self) -> RichLog:
        return self.query_one("#log", RichLog)

    def main_widget(self) -> Any:
        return self.log_view

    def add(self, records: Iterable[LogRecord], source: str = EVENTS) -> None:
        """Append a batch (already coalesced by the app) to one source."""
        fresh = [
            r if len(r.text) <= LINE_CHARS else LogRecord(r.at, r.level, clipped(r.text))
            for r in records
        ]
        if source not in self.sources:
            return  # a follower that outlived its tab
        self.sources[source].add(fresh)
        if sum(r.size for r in self.sources.values()) > TOTAL_BYTES:
            # The biggest sources give back first, to an equal share each.
            share = TOTAL_BYTES // len(self.sources)
            for kept in self.sources.values():
                kept.trim(share)
        if source != self.source:
            return
        shown = [r for r in fresh if self.passes(r)]
        # Following, only the last two screenfuls can be read as they scroll by; the rest of
        # a burst stays in the records (the filter redraws them) and in the log file.
        limit = min(PER_FLUSH, max(20, 2 * self.log_view.size.height)) if self.follow else PER_FLUSH
        skipped = max(0, len(shown) - limit)
        if skipped:
            shown = shown[-limit:]
            self._write(
                [
                    LogRecord(
                        time.time(),
                        "warning",
                        f"… {skipped} lines not drawn (a burst: / filters them, the log file has all)",
                    )
                ]
            )
        self._write(shown)
        if not self.follow:
            self.waiting += len(shown)

    def _write(self, records: list[LogRecord]) -> None:
        view = self.log_view
        for record in records:
            view.write(record.render(), scroll_end=self.follow)

    def passes(self, record: LogRecord) -> bool:
        """Whether a record passes the filter."""
        return not self.filter_text or self.filter_text in record.text.lower()

    def redraw(self) -> None:
        """Rebuild the view from the records (after a filter change)."""
        view = self.log_view
        view.clear()
        self._write([r for r in self.sources[self.source] if self.passes(r)][-SHOWN:])
        if self.follow:
            view.scroll_end(animate=False)

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self.waiting = 0
            self.log_view.scroll_end(animate=False)
        self.update_subtitle()

    def watch_waiting(self) -> None:
        self.update_subtitle()

    def update_subtitle(self) -> None:
        if self.follow:
            text = "following"
        else:
            text = (
                f"paused · {self.waiting} new · f follows" if self.waiting else "paused · f follows"
            )
        if self.filter_text:
            text = f"filter '{self.filter_text}' · {text}"
        self.border_subtitle = Content(text)  # the filter is typed text, not markup

    def on_key(self, event: events.Key) -> None:
        if self.close_filter(event):
            self.log_view.focus()
        elif event.key in ("up", "pageup", "home") and self.log_view.has_focus:
            self.follow = False
        elif event.key == "end" and self.log_view.has_focus:
            self.follow = True

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.follow = False

    def action_follow(self) -> None:
        self.follow = not self.follow

    def action_filter(self) -> None:
        self.filter_box()

    def action_clear(self) -> None:
        self.sources[self.source].clear()
        self.log_view.clear()
        self.waiting = 0

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value.strip().lower()
        self.redraw()
        self.update_subtitle()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.log_view.focus()
