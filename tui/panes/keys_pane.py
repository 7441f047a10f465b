"""Keys: the SSH keys in ~/.ssh and those the hosts name, with what is wrong with them."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text

from .. import registry
from ..crash_guard import guard
from .base import FilterablePane, plain_subtitle

if TYPE_CHECKING:
    from sshcore.api import KeyInfo

EMPTY = "No keys in ~/.ssh yet.\n\n[b]g[/]  generate one (ed25519), then [b]y[/] to copy it"


def flags(info: KeyInfo) -> Text:
    """Short notes: passphrase, in the agent, hosts using it, problems (red)."""
    if info.problem:
        return Text(info.problem, style="bold red")
    text = Text()
    if info.loose_permissions:  # first: it is what stops OpenSSH from using the key
        text.append("loose permissions (f fixes)", style="bold red")
    bits = []
    if info.encrypted:
        bits.append("passphrase")
    elif info.has_private and info.encrypted is False:
        bits.append("no passphrase")
    if info.in_agent:
        bits.append("in agent")
    if info.hosts:
        bits.append("used by " + ", ".join(info.hosts))
    if not info.has_private:
        bits.append("public only")
    if bits:
        text.append((" · " if text else "") + " · ".join(bits))
    return text


class KeysPane(FilterablePane):
    """Key files: name, type and bits, notes."""

    title = "Keys"
    number = 3
    BINDINGS: ClassVar[list[Any]] = registry.bindings("keys")  # tui/registry.py
    COLUMNS = ("Key", "Type", "Notes")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keys: list[KeyInfo] = []
        self.loaded = False

    def refresh_rows(
        self, full: bool = False, only: Collection[str] | None = None, saved: bool = False
    ) -> None:
        del only, saved  # the key list is read whole (see load_keys); every row is made
        rows: dict[str, tuple[Any, ...]] = {}
        shown = []
        for info in self.keys:
            kind = info.key_type or "?"
            if info.bits and info.key_type not in ("ED25519",):
                kind += f" {info.bits}"
            if self.matches(info.name, kind, info.comment):
                shown.append((info, kind))
        name_w = max((len(i.path.name) for i, _ in shown), default=3)
        kind_w = max((len(k) for _, k in shown), default=4)
        room = self.size.width - name_w - kind_w - 11  # borders, scrollbar, cell padding
        for info, kind in shown:
            notes = flags(info)
            if room < 12:  # 80x24: one word; the whole note is under the pane
                bad = info.problem or info.loose_permissions
                notes = Text("problem", style="bold red") if bad else Text("ok", style="green")
            else:
                notes.truncate(room, overflow="ellipsis")
            rows[str(info.path)] = (info.path.name, kind, notes)
        if not self.loaded:
            self.set_empty_text("Reading ~/.ssh…")
        else:
            self.set_empty_text("" if self.keys else EMPTY)
        self.sync_rows(rows, full)
        self.update_subtitle()

    def selected_info(self) -> KeyInfo | None:
        """The key under the cursor."""
        key = self.selected_key()
        return next((k for k in self.keys if str(k.path) == key), None)

    def update_subtitle(self) -> None:
        info = self.selected_info()
        if info is None:
            self.border_subtitle = ""
            return
        text = f"{flags(info).plain} · {info.fingerprint or ''}"
        plain_subtitle(self, text)

    def on_data_table_row_highlighted(self, event: Any) -> None:
        self.update_subtitle()

    @guard
    def action_copy(self) -> None:
        if info := self.selected_info():
            self.dashboard.key_actions.copy_public_key(info)

    @guard
    def action_generate(self) -> None:
        self.dashboard.key_actions.generate_key()

    @guard
    def action_reload(self) -> None:
        self.dashboard.key_actions.load_keys()

    @guard
    def action_show(self) -> None:
        if info := self.selected_info():
            self.dashboard.key_actions.show_key(info)

    @guard
    def action_install(self) -> None:
        if info := self.selected_info():
            self.dashboard.key_actions.install_key(info)

    @guard
    def action_fix(self) -> None:
        if info := self.selected_info():
            self.dashboard.key_actions.fix_key_permissions(info)
