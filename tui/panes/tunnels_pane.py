"""Tunnels: each forward with its state, connections and traffic, updated a few times a second."""

from __future__ import annotations

import functools
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text

from sshcore.api import Endpoint, TunnelSpec

if TYPE_CHECKING:
    from sshcore.api import TunnelStatus

from .. import registry
from ..crash_guard import guard
from ..format import human_bytes, human_rate, sparkline
from .base import FilterablePane, plain_subtitle

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


def offer_key(host: str, port: int) -> str:
    """The row key of a port offered by a host (never a tunnel name: those have no ':')."""
    return f"offer:{host}:{port}"


def parse_offer_key(key: str) -> tuple[str, int] | None:
    """(host, port) of an offer row key, else None."""
    if not key.startswith("offer:"):
        return None
    host, _, port = key[len("offer:") :].rpartition(":")
    return host, int(port)


def route(spec: TunnelSpec) -> str:
    """'L 7860→127.0.0.1:7860' ('R 1080→SOCKS from here': reverse SOCKS), with a flag when
    the port is open to other machines."""
    way, flag = _route(spec.kind, spec.listen, spec.target)
    return f"{way} ({flag})" if flag else way


@functools.lru_cache(maxsize=4096)
def _route(kind: str, listen: Endpoint, target: Endpoint | None) -> tuple[str, str]:
    """(the way, the flag or ""). Cached: every refresh draws every row, and reading an
    address is not free."""
    shown = str(listen.port) if listen.loopback else str(listen)
    where = str(target) if target else "SOCKS"
    if kind == "remote" and target is None:
        where = "SOCKS from here"  # reverse SOCKS: the remote's clients reach out from here
    # Listeners that let others in are flagged, here or on the remote: a remote one beyond
    # its loopback lets whoever reaches it there through to the target (or, for a reverse
    # SOCKS proxy, anywhere from this machine) where the remote sshd allows the address.
    flag = ""
    if listen.all_interfaces:
        flag = "all interfaces!"
    elif listen.exposed:
        flag = "not loopback!"  # a LAN address or host name: other machines may reach it
    return f"{KIND[kind]} {shown}→{where}", flag


def clock(at: float) -> str:
    """HH:MM of a wall-clock time, local time."""
    return time.strftime("%H:%M", time.localtime(at))


class TunnelsPane(FilterablePane):
    """Saved tunnels and what they carry."""

    title = "Tunnels"
    number = 2
    BINDINGS: ClassVar[list[Any]] = registry.bindings("tunnels")  # tui/registry.py

    COLUMNS = ("Tunnel", "State", "Conn", "Up", "Down")
    WIDE_COLUMNS = ("Tunnel", "Route", "State", "Conn", "Up/Down", "Activity")
    WIDE_AT = WIDE

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # What f / s / R can do for the row under the cursor; the footer follows it.
        self._shown_context: tuple[bool, bool, bool] = (False, False, False)

    def state_cell(self, name: str, status: TunnelStatus | None) -> Text:
        """The tunnel's state, coloured; a refused target or a moved app is said as such."""
        app = self.dashboard
        if status is None:
            return Text("stopped", style="dim")
        state = status.state.value
        if state == "up" and (moved := app.moved_target(name)):
            return Text(f"moved to {moved}?", style="bold yellow")
        if state == "up" and app.remote_closed(name):
            return Text("remote closed", style="yellow")
        if state == "up" and status.target_down_since is not None:
            return Text(f"down since {clock(status.target_down_since)}", style="yellow")
        if state == "up" and name in app.live.refused:
            return Text("target refused", style="yellow")
        if state == "failed":
            return Text("failed", style="bold red")
        if state == "waiting for host":
            return Text("waiting", style="yellow")  # for its host: the subtitle says why
        return Text(state, style=STATE_STYLE.get(state, ""))

    def refresh_rows(
        self, full: bool = False, only: Collection[str] | None = None, saved: bool = False
    ) -> None:
        app = self.dashboard
        specs = app.tunnel_specs()
        if only is not None and not full and hasattr(self, "_shown"):
            # Some tunnels changed (traffic, state): their rows alone.
            self.update_rows({n: self._row(n, specs[n]) for n in only if n in specs})
            if self.selected_key() in only:
                self.update_subtitle()
                self.sync_bindings()  # its state changed: what f / s / R can do may too
            return
        # A row shows its spec and whether it is saved (an offer's tunnel is marked until then).
        items = {
            name: (spec, name in app.config.tunnels)
            for name, spec in specs.items()
            if self.matches(name, spec.host, route(spec))
        }
        rows = self.kept_rows(
            items,
            (self.size.width, self.wide),
            saved and not full,
            lambda name, item: self._row(name, item[0]),
        )
        for host, port in app.offers():
            if not self.matches(host, str(port.port), port.process or ""):
                continue
            offer = Text("offer · f", style="bold cyan")
            if self.wide:
                what = f"{port.port} on {host}" + (f" ({port.process})" if port.process else "")
                rows[offer_key(host, port.port)] = (f"{host}:{port.port}", what, offer, "", "", "")
            else:
                rows[offer_key(host, port.port)] = (f"{host}:{port.port}", offer, "", "", "")
        self.set_empty_text("" if rows or self.filter_text else EMPTY)
        self.sync_rows(rows, full)
        self.update_subtitle()
        self.sync_bindings()

    def _row(self, name: str, spec: TunnelSpec) -> tuple[Any, ...]:
        app = self.dashboard
        status = app.tunnel_status(name)
        traffic = app.live.traffic.get(name)
        conns = str(status.connections) if status else ""
        up = human_bytes(status.bytes_up) if status and status.bytes_up else ""
        down = human_bytes(status.bytes_down) if status and status.bytes_down else ""
        state = self.state_cell(name, status)
        # A tunnel made from an offer is marked until `s` saves it.
        label = f"{name}*" if name not in app.config.tunnels else name
        if self.wide:
            spark = sparkline(traffic.rates, SPARK) if traffic and traffic.up_rate else ""
            updown = f"{up or 0}/{down or 0}" if up or down else ""
            return (label, route(spec), state, conns, updown, spark)
        return (label, state, conns, up, down)

    def update_subtitle(self) -> None:
        """The selected row's route, or why it is not working, or what `f`/`s`/`R` would do."""
        app = self.dashboard
        key = self.selected_key() or ""
        if (offer := parse_offer_key(key)) is not None:
            host, port = offer
            found = next((p for h, p in app.offers() if h == host and p.port == port), None)
            who = f" ({found.process})" if found and found.process else ""
            plain_subtitle(self, f"{port} is listening on {host}{who} · f forwards it")
            return
        spec = app.tunnel_specs().get(key)
        if spec is None:
            self.border_subtitle = ""
            return
        status = app.tunnel_status(spec.name)
        way, flag = _route(spec.kind, spec.listen, spec.target)
        # The warning first: at 80 columns the end of the line is clipped.
        text = f"{flag} {way} via {spec.host}" if flag else f"{way} via {spec.host}"
        if (moved := app.moved_target(spec.name)) is not None:
            text = f"{spec.name} moved to {moved}? R retargets it"
        elif status is not None and status.error and status.state.value != "up":
            text = f"{status.error}"
        elif app.remote_closed(spec.name):
            text = f"nothing listens on {spec.host}:{spec.target.port if spec.target else ''} now"
        elif status is not None and status.target_down_since is not None and spec.target:
            # The news first: at 80 columns the end of the line is clipped.
            where = f"on {spec.host}" if spec.kind == "local" else "here"
            since = clock(status.target_down_since)
            text = f"target down since {since}: nothing answers at {spec.target} {where}"
        elif spec.name in app.live.refused:
            where = "from this machine" if spec.reverse_socks else f"on {spec.host}"
            text = f"nothing answers at {app.live.refused[spec.name]} {where}"
        elif spec.name not in app.config.tunnels:
            text = f"{route(spec)} · discovered: s saves it"
        elif (traffic := app.live.traffic.get(spec.name)) and traffic.up_rate:
            up, down = traffic.up_rate[-1], traffic.down_rate[-1]
            text += f" · ↑{human_rate(up) or '0'} ↓{human_rate(down) or '0'}"
        plain_subtitle(self, text)

    def on_data_table_row_highlighted(self, event: Any) -> None:
        self.update_subtitle()
        self.sync_bindings()

    def _row_context(self) -> tuple[bool, bool, bool]:
        """(offers exist, the row is an unsaved tunnel, the row's app moved)."""
        app = self.dashboard
        key = self.selected_key() or ""
        tunnel = key if key and parse_offer_key(key) is None else None
        return (
            bool(app.offers()),
            tunnel is not None and tunnel not in app.config.tunnels,
            tunnel is not None and app.moved_target(tunnel) is not None,
        )

    def sync_bindings(self) -> None:
        """Show f / s / R in the footer only when they would do something (a recompose of
        the footer is not free: only when that changes)."""
        context = self._row_context()
        if context != self._shown_context:
            self._shown_context = context
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action not in ("forward", "save", "retarget"):
            return True
        # From the live state when the key is pressed (and the footer asks): the row's app
        # may have moved since the cursor last did.
        offers, unsaved, moved = self._row_context()
        if action == "forward":
            # Shown when a port is on offer, as s and R are: at 80 columns the footer has
            # no room for a greyed-out key (it pushed ? Help off the line).
            return offers
        if action == "save":
            return unsaved
        if action == "retarget":
            return moved
        return True

    def selected_tunnel(self) -> str | None:
        """The tunnel under the cursor (None on an offer row)."""
        key = self.selected_key()
        if key is None or parse_offer_key(key) is not None:
            return None
        return key

    @guard
    def action_start_stop(self) -> None:
        key = self.selected_key() or ""
        if (offer := parse_offer_key(key)) is not None:
            self.dashboard.tunnel_actions.forward_offer(
                *offer
            )  # space on an offer: forward it, as f
        elif key:
            self.dashboard.tunnel_actions.toggle_tunnel(key)

    @guard
    def action_forward(self) -> None:
        offer = parse_offer_key(self.selected_key() or "")
        if offer is None:
            self.notify("f forwards a port a host opened: rows marked 'offer'", timeout=4)
            return
        self.dashboard.tunnel_actions.forward_offer(*offer)

    @guard
    def action_save(self) -> None:
        if name := self.selected_tunnel():
            self.dashboard.tunnel_actions.save_discovered(name)

    @guard
    def action_retarget(self) -> None:
        if name := self.selected_tunnel():
            self.dashboard.tunnel_actions.retarget(name)

    @guard
    def action_restart(self) -> None:
        if name := self.selected_tunnel():
            self.dashboard.tunnel_actions.restart_tunnel(name)

    @guard
    def action_new(self) -> None:
        self.dashboard.tunnel_actions.edit_tunnel(None)

    @guard
    def action_edit(self) -> None:
        if name := self.selected_tunnel():
            self.dashboard.tunnel_actions.edit_tunnel(name)

    @guard
    def action_delete(self) -> None:
        if name := self.selected_tunnel():
            self.dashboard.tunnel_actions.delete_tunnel(name)

    @guard
    def action_open(self) -> None:
        if name := self.selected_tunnel():
            self.dashboard.tunnel_actions.open_tunnel(name)

    @guard
    def action_copy(self) -> None:
        if name := self.selected_tunnel():
            self.dashboard.tunnel_actions.copy_tunnel_url(name)
