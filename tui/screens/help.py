"""`?`: every key of every pane, read from the bindings themselves (so it never goes stale)."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Label, Static

from ..text import styled
from .dialogs import Dialog

_KEY_NAMES = {"question_mark": "?", "slash": "/", "space": "space", "escape": "esc"}


def _key(binding: Binding) -> str:
    keys = [_KEY_NAMES.get(k, k) for k in binding.key.split(",")]
    return "/".join(keys)


def help_text(app: App[Any]) -> Content:
    """The keymap as text: global keys, then each pane's."""
    from ..panes import HostsPane, KeysPane, LogsPane, TunnelsPane

    sections: list[tuple[str, list[Any]]] = [
        ("Everywhere", list(type(app).BINDINGS)),
        ("1 Hosts", HostsPane.BINDINGS),
        ("2 Tunnels", TunnelsPane.BINDINGS),
        ("3 Keys", KeysPane.BINDINGS),
        ("4 Logs", LogsPane.BINDINGS),
    ]
    lines: list[Content] = []
    for title, bindings in sections:
        lines.append(Content.from_markup(f"[b]{title}[/]"))
        seen = set()
        for b in bindings:
            if not isinstance(b, Binding) or b.description in seen or not b.description:
                continue
            seen.add(b.description)
            template = "  [b]$key[/]  $what" + ("  [dim]$tip[/]" if b.tooltip else "")
            lines.append(styled(template, key=f"{_key(b):>8}", what=b.description, tip=b.tooltip))
        lines.append(Content(""))
    tail = [
        "[b]In dialogs[/]",
        "         y  yes / trust a new host key (nothing is trusted by default)",
        "    n, esc  no / cancel",
        "       tab  next field",
        "",
        "[b]More[/]  ctrl+p opens the command palette: every action by name,",
        "       e.g. 'Tunnels: start gradio', 'Hosts: test intern', 'Theme'.",
        "       tab cycles the panes; the mouse works but is never needed.",
    ]
    lines += [Content.from_markup(line) for line in tail]
    return Content("\n").join(lines)


class HelpScreen(Dialog):
    """Every key, in a scrollable box."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,q", "cancel", "Close", id="help.close")
    ]

    def __init__(self, app: App[Any]) -> None:
        super().__init__()
        self._text = help_text(app)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide -tall") as box:
            box.border_title = "Keys"
            with VerticalScroll(classes="text-body"):
                yield Static(self._text)
            yield Label("[b]esc[/] / [b]?[/] close   [b]↑↓[/] scroll", classes="keys")
