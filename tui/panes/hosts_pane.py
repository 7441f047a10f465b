"""Hosts: each saved machine with its live connection state."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar

from rich.text import Text

from .. import registry
from ..crash_guard import guard
from ..format import clip
from .base import FilterablePane, plain_subtitle

EMPTY = (
    "No hosts yet.\n\n"
    "[b]p[/]  paste the ssh line your cloud console gave you\n"
    "[b]a[/]  add one by hand\n"
    "[b]i[/]  import ~/.ssh/config\n\n"
    "Or try everything on a built-in demo host: [b]devtui demo[/]"
)

WIDE = 60  # pane width from which the destination gets its own column
STATE_STYLE = {
    "idle": "dim",
    "connecting": "yellow",
    "connected": "green",
    "lost": "yellow",
    "reconnecting": "yellow",
    "failed": "bold red",
}


class HostsPane(FilterablePane):
    """Saved hosts: name, state, destination, and what the state means."""

    title = "Hosts"
    number = 1
    BINDINGS: ClassVar[list[Any]] = registry.bindings("hosts")  # tui/registry.py
    COLUMNS = ("Host", "State", "Detail")
    WIDE_COLUMNS = ("Host", "State", "Destination", "Detail")
    WIDE_AT = WIDE

    def state_cells(self, name: str) -> tuple[Text, str]:
        """(state, detail) for one host."""
        app = self.dashboard
        status = app.host_status(name)
        if status is None:
            return Text("idle", style="dim"), ""
        state = status.state.value
        detail = ""
        if state == "connected":
            jobs = len(app.job_actions.running(name))
            bits = [f"{jobs} job{'s' if jobs != 1 else ''}" if jobs else ""]
            bits.append(status.auth_method or "")
            if status.connect_ms is not None:
                bits.append(f"{status.connect_ms:.0f} ms")
            rtt = app.live.round_trip.get(name)
            if rtt is not None:
                bits.append(f"rtt {rtt:.0f} ms")
            detail = " · ".join(b for b in bits if b)
        elif state == "reconnecting" and (retry := app.live.retry_in(name)):
            seconds, attempt = retry
            label = f"retry in {seconds:.0f} s" if seconds >= 0.5 else "retrying"
            return Text(label, style="yellow"), f"attempt {attempt}: {status.error or ''}"
        elif status.error:
            detail = status.error
        elif state == "idle" and (rtt := app.live.round_trip.get(name)) is not None:
            detail = f"tested: rtt {rtt:.0f} ms"
        return Text(state, style=STATE_STYLE.get(state, "")), detail

    def refresh_rows(
        self, full: bool = False, only: Collection[str] | None = None, saved: bool = False
    ) -> None:
        app = self.dashboard
        hosts = app.config.hosts
        if only is not None and not full and hasattr(self, "_widths"):
            # A few hosts changed state: recompute their rows alone (500 hosts, 4 times a
            # second, would be most of the dashboard's CPU).
            self.update_rows({n: self._row(n, hosts[n]) for n in only if n in hosts})
            if self.selected_key() in only:
                self.update_subtitle()
            return
        shown = {
            name: spec
            for name, spec in hosts.items()
            if self.matches(name, spec.hostname, spec.user or "")
        }
        name_w = max((len(n) for n in shown), default=4)
        self._widths = (name_w, len("connected"))  # wider states are clipped by the pane
        basis = (self._widths, self.size.width, self.wide)
        rows = self.kept_rows(shown, basis, saved and not full, self._row)
        self.set_empty_text("" if hosts else EMPTY)
        self.sync_rows(rows, full)
        self.update_subtitle()

    def _row(self, name: str, spec: Any) -> tuple[Any, ...]:
        state, detail = self.state_cells(name)
        name_w, state_w = self._widths
        if self.wide:
            room = self.size.width - name_w - state_w - len(spec.destination) - 10
            return (name, state, spec.destination, clip(detail, max(12, room)))
        room = self.size.width - name_w - state_w - 8
        return (name, state, clip(detail, max(8, room)))

    def update_subtitle(self) -> None:
        """The selected host's destination (and whole error) under the pane."""
        name = self.selected_key()
        spec = self.dashboard.config.hosts.get(name or "")
        if spec is None:
            self.border_subtitle = ""
            return
        via = f" via {spec.jump}" if spec.jump else ""
        text = f"{spec.destination}{via}"
        status = self.dashboard.host_status(spec.name)
        if status is not None and status.error and status.state.value != "connected":
            text = status.error
        plain_subtitle(self, text)

    def on_data_table_row_highlighted(self, event: Any) -> None:
        self.update_subtitle()

    @guard
    def action_connect(self) -> None:
        if name := self.selected_key():
            self.dashboard.host_actions.toggle_connect(name)

    @guard
    def action_paste(self) -> None:
        self.dashboard.host_actions.paste_line()

    @guard
    def action_add(self) -> None:
        self.dashboard.host_actions.edit_host(None)

    @guard
    def action_edit(self) -> None:
        if name := self.selected_key():
            self.dashboard.host_actions.edit_host(name)

    @guard
    def action_delete(self) -> None:
        if name := self.selected_key():
            self.dashboard.host_actions.delete_host(name)

    @guard
    def action_test(self) -> None:
        if name := self.selected_key():
            self.dashboard.host_actions.test_host(name)

    @guard
    def action_test_all(self) -> None:
        self.dashboard.host_actions.test_all_hosts()

    @guard
    def action_shell(self) -> None:
        if name := self.selected_key():
            self.dashboard.host_actions.open_shell(name)

    @guard
    def action_import(self) -> None:
        self.dashboard.host_actions.import_ssh_config()

    @guard
    def action_export(self) -> None:
        if name := self.selected_key():
            self.dashboard.host_actions.export_host(name)

    @guard
    def action_start_job(self) -> None:
        if name := self.selected_key():
            self.dashboard.job_actions.start_job_form(name)

    @guard
    def action_upload(self) -> None:
        if name := self.selected_key():
            self.dashboard.file_actions.upload(name)

    @guard
    def action_download(self) -> None:
        if name := self.selected_key():
            self.dashboard.file_actions.download(name)
