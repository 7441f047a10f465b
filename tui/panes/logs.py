"""Logs: every core event as it happens; bounded, batched, follow on by default."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import var
from textual.widgets import Input, RichLog

from .base import Pane

KEEP = 5000  # records kept for filtering; the log file has everything
SHOWN = 1000  # lines the view holds
PER_FLUSH = 400  # lines drawn per batch: a burst costs one bounded repaint, never a freeze
LEVEL_STYLE = {"info": "", "warning": "yellow", "error": "bold red"}
LEVEL_TAG = {"info": "   ", "warning": "!  ", "error": "!! "}


def stamp(at: float) -> str:
    """The time column of a log line (local time)."""
    return time.strftime("%H:%M:%S ", time.localtime(at))


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
        line.append(self.text, style=style)
        return line


class LogsPane(Pane):
    """The event log with `/` filter, `f` follow and ctrl+l clear."""

    title = "Logs"
    number = 4
    BINDINGS: ClassVar[list[Any]] = [
        Binding("f", "follow", "Follow on/off", id="logs.follow"),
        Binding("slash", "filter", "Filter", id="logs.filter"),
        Binding("ctrl+l", "clear", "Clear", id="logs.clear"),
    ]

    follow: var[bool] = var(True)
    """Keep the newest line in view; scrolling up turns it off."""
    waiting: var[int] = var(0)
    """Lines that arrived while follow was off."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.records: deque[LogRecord] = deque(maxlen=KEEP)

    def compose(self) -> Any:
        yield from self.compose_filter()
        with Vertical():
            yield RichLog(max_lines=SHOWN, wrap=True, markup=False, min_width=20, id="log")

    @property
    def log_view(self) -> RichLog:
        return self.query_one("#log", RichLog)

    def main_widget(self) -> Any:
        return self.log_view

    def add(self, records: Iterable[LogRecord]) -> None:
        """Append a batch (already coalesced by the app)."""
        fresh = list(records)
        self.records.extend(fresh)
        shown = [r for r in fresh if self.passes(r)]
        skipped = max(0, len(shown) - PER_FLUSH)
        if skipped:
            shown = shown[-PER_FLUSH:]
            self._write(
                [
                    LogRecord(
                        time.time(),
                        "warning",
                        f"… {skipped} lines skipped here (a burst; the log file has them all)",
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
        self._write([r for r in self.records if self.passes(r)][-SHOWN:])
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
        self.border_subtitle = text

    def on_key(self, event: events.Key) -> None:
        box = self.query_one(".filter", Input)
        if event.key == "escape" and box.has_focus:
            event.stop()
            box.value = ""
            box.display = False
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
        box = self.query_one(".filter", Input)
        box.display = True
        box.focus()

    def action_clear(self) -> None:
        self.records.clear()
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
