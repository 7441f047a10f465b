"""Tunnels: each forward with its state, connections and traffic, updated a few times a second."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding

from sshcore.model import TunnelSpec

from ..format import clip, human_bytes, human_rate, sparkline
from ..guard import guard
from .base import FilterablePane

EMPTY = (
    "No tunnels yet.\n\n"
    "[b]n[/]  new tunnel on a host (like ssh -L)\n"
    "or paste a line with -L in Hosts ([b]1[/], then [b]p[/])"
)
KIND = {"local": "L", "remote": "R", "dynamic": "D"}
STATE_STYLE = {
    "stopped": "dim",
    "starting": "yellow",
    "up": "green",
    "failed": "bold red",
    "waiting for host": "yellow",
}
WIDE = 70  # pane width from which the route and activity columns fit
SPARK = 8  # sparkline cells (one a second: the last few seconds; the subtitle has the rates)


def route(spec: TunnelSpec) -> str:
    """'7860 -> 127.0.0.1:7860', with a flag when the port is open to other machines."""
    listen = str(spec.listen.port) if spec.listen.loopback else str(spec.listen)
    target = str(spec.target) if spec.target else "SOCKS"
    flag = " (all interfaces!)" if spec.kind != "remote" and spec.listen.all_interfaces else ""
    return f"{KIND[spec.kind]} {listen}→{target}{flag}"


class TunnelsPane(FilterablePane):
    """Saved tunnels and what they carry."""

    title = "Tunnels"
    number = 2
    BINDINGS: ClassVar[list[Any]] = [
        Binding("space", "toggle", "Start/stop", id="tunnels.toggle"),
        Binding("o", "open", "Open", id="tunnels.open", tooltip="Open in the browser"),
        Binding("y", "copy", "Copy URL", id="tunnels.copy"),
        Binding("r", "restart", "Restart", id="tunnels.restart"),
        Binding("n", "new", "New", id="tunnels.new"),
        Binding("e", "edit", "Edit", id="tunnels.edit"),
        Binding("d", "delete", "Delete", id="tunnels.delete"),
        Binding("slash", "filter", "Filter", id="tunnels.filter", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wide: bool | None = None

    def on_mount(self) -> None:
        super().on_mount()
        self.set_columns()

    def on_resize(self) -> None:
        if self.set_columns():
            self.refresh_rows(full=True)

    def set_columns(self) -> bool:
        """Pick the column set for the pane's width; True when it changed."""
        wide = self.size.width >= WIDE
        if wide == self.wide:
            return False
        self.wide = wide
        table = self.table
        table.clear(columns=True)
        if wide:
            table.add_columns("Tunnel", "Route", "State", "Conn", "Up/Down", "Activity")
        else:
            table.add_columns("Tunnel", "State", "Conn", "Up", "Down")
        return True

    def state_cell(self, name: str) -> Text:
        """The tunnel's state, coloured; a refused target is said as such."""
        app = self.dashboard
        status = app.tunnel_status(name)
        if status is None:
            return Text("stopped", style="dim")
        state = status.state.value
        if state == "up" and name in app.live.refused:
            return Text("target refused", style="yellow")
        if state == "failed":
            return Text("failed", style="bold red")
        if state == "waiting for host":
            return Text("waiting", style="yellow")  # for its host: the subtitle says why
        return Text(state, style=STATE_STYLE.get(state, ""))

    def refresh_rows(self, full: bool = False) -> None:
        app = self.dashboard
        tunnels = app.config.tunnels
        rows: dict[str, tuple[Any, ...]] = {}
        for name, spec in tunnels.items():
            if not self.matches(name, spec.host, route(spec)):
                continue
            status = app.tunnel_status(name)
            traffic = app.live.traffic.get(name)
            conns = str(status.connections) if status else ""
            up = human_bytes(status.bytes_up) if status and status.bytes_up else ""
            down = human_bytes(status.bytes_down) if status and status.bytes_down else ""
            state = self.state_cell(name)
            if self.wide:
                spark = sparkline(traffic.rates, SPARK) if traffic and traffic.up_rate else ""
                updown = f"{up or 0}/{down or 0}" if up or down else ""
                rows[name] = (name, route(spec), state, conns, updown, spark)
            else:
                rows[name] = (name, state, conns, up, down)
        self.set_empty_text("" if tunnels else EMPTY)
        self.sync_rows(rows, full)
        self.update_subtitle()

    def update_subtitle(self) -> None:
        """The selected tunnel's route and the reason it failed, under the pane."""
        name = self.selected_key()
        spec = self.dashboard.config.tunnels.get(name or "")
        if spec is None:
            self.border_subtitle = ""
            return
        status = self.dashboard.tunnel_status(spec.name)
        text = f"{route(spec)} via {spec.host}"
        if status is not None and status.error and status.state.value != "up":
            text = f"{status.error}"
        elif spec.name in self.dashboard.live.refused:
            text = f"nothing answers at {self.dashboard.live.refused[spec.name]} on {spec.host}"
        elif (traffic := self.dashboard.live.traffic.get(spec.name)) and traffic.up_rate:
            up, down = traffic.up_rate[-1], traffic.down_rate[-1]
            text += f" · ↑{human_rate(up) or '0'} ↓{human_rate(down) or '0'}"
        self.border_subtitle = clip(text, max(10, self.size.width - 6))

    def on_data_table_row_highlighted(self, event: Any) -> None:
        self.update_subtitle()

    @guard
    def action_toggle(self) -> None:
        if name := self.selected_key():
            self.dashboard.toggle_tunnel(name)

    @guard
    def action_restart(self) -> None:
        if name := self.selected_key():
            self.dashboard.restart_tunnel(name)

    @guard
    def action_new(self) -> None:
        self.dashboard.edit_tunnel(None)

    @guard
    def action_edit(self) -> None:
        if name := self.selected_key():
            self.dashboard.edit_tunnel(name)

    @guard
    def action_delete(self) -> None:
        if name := self.selected_key():
            self.dashboard.delete_tunnel(name)

    @guard
    def action_open(self) -> None:
        if name := self.selected_key():
            self.dashboard.open_tunnel(name)

    @guard
    def action_copy(self) -> None:
        if name := self.selected_key():
            self.dashboard.copy_tunnel_url(name)
