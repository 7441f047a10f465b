"""What the Tunnels pane's keys do: start/stop, edit, delete, open, copy, and the offers of new remote ports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sshcore.api import DevtuiError, TunnelSpec

from ..format import no_browser_here

if TYPE_CHECKING:
    from ..app import DevTuiApp


class TunnelActions:
    """What the Tunnels pane's keys do; the app holds one as `app.tunnel_actions`."""

    def __init__(self, app: DevTuiApp) -> None:
        self.app = app

    async def start_tunnel(self, name: str) -> None:
        await self.app.require_core().start_tunnel(name)
        self.app.refresh_panes()

    def toggle_tunnel(self, name: str) -> None:
        """`space`: start or stop one tunnel; the host's other tunnels are untouched."""
        core = self.app.require_core()
        if name in self.app.running_tunnels():
            self.app.job(core.stop_tunnel(name), f"stopping {name}", group=f"tunnel:{name}")
        else:
            self.app.job(self.start_tunnel(name), f"starting {name}", group=f"tunnel:{name}")

    def restart_tunnel(self, name: str) -> None:
        """`r`: stop and start one tunnel."""
        core = self.app.require_core()
        self.app.job(core.restart_tunnel(name), f"restarting {name}", group=f"tunnel:{name}")

    def edit_tunnel(self, name: str | None) -> None:
        """`n` / `e`: the tunnel form (busy ports named before anything is saved)."""
        from ..screens.forms import TunnelFormScreen

        if name and name not in self.app.config.tunnels:
            raise DevtuiError(f"{name} came from an offer: s saves it, then e edits it")
        spec = self.app.config.tunnels.get(name) if name else None
        host = self.app.hosts_pane.selected_key()
        own = spec.listen.port if spec and name in self.app.running_tunnels() else None
        self.app.push_screen(
            TunnelFormScreen(self.app.config.data, spec, host, own_port=own),
            callback=lambda result: self._tunnel_saved(name, result),
        )

    def _tunnel_saved(self, name: str | None, result: object) -> None:
        if not isinstance(result, TunnelSpec):
            return
        core = self.app.require_core()
        work = core.add_tunnel(result) if name is None else core.update_tunnel(name, result)
        self.app.job(
            self.app.after_save(work, f"Saved tunnel {result.name}"), f"saving {result.name}"
        )

    def delete_tunnel(self, name: str) -> None:
        """`d`: stop and delete one tunnel, after a confirmation."""
        from ..screens.dialogs import ConfirmScreen

        spec = self.app.tunnel_specs()[name]
        self.app.push_screen(
            ConfirmScreen("Delete tunnel", f"Delete tunnel {name} ({spec.describe()})?", "delete"),
            callback=self.app.if_yes(
                lambda: self.app.job(self._delete_tunnel(name), f"deleting {name}")
            ),
        )

    async def _delete_tunnel(self, name: str) -> None:
        await self.app.require_core().remove_tunnel(name)
        self.app.note_saved()
        self.app.live.forget(name)
        self.app.notify(f"Deleted tunnel {name}")
        self.app.refresh_panes(full=True)

    def tunnel_url(self, name: str) -> str:
        """The browser URL of a local tunnel."""
        return self.tunnel_url_of(self.app.tunnel_specs()[name])

    def tunnel_url_of(self, spec: TunnelSpec) -> str:
        """The browser URL of a local tunnel spec."""
        name = spec.name
        if spec.reverse_socks:
            raise DevtuiError(
                f"{name} is a SOCKS proxy on the remote: programs there set "
                f"socks5h://{spec.listen} as their proxy (h: names are looked up here), "
                "and connect from here"
            )
        if spec.kind == "remote":
            raise DevtuiError(f"{name} listens on the remote ({spec.listen}), not here")
        if spec.kind == "dynamic":
            raise DevtuiError(
                f"{name} is a SOCKS proxy: set socks5h://127.0.0.1:{spec.listen.port} as your "
                "browser's proxy (h: names are looked up on the far side)"
            )
        address = spec.listen.address
        if spec.listen.all_interfaces or address == "localhost":
            address = "127.0.0.1"
        host = f"[{address}]" if ":" in address else address
        return f"http://{host}:{spec.listen.port}/"

    def open_tunnel(self, name: str) -> None:
        """`o`: open the URL in the browser; over SSH there is none here, so copy it instead."""
        url = self.tunnel_url(name)
        # Only a port devtui listens on: a stopped or failed tunnel's port may be held by
        # any other program, which the browser would then be sent to.
        status = self.app.tunnel_status(name)
        state = status.state.value if status is not None else "stopped"
        if name not in self.app.running_tunnels() or state not in ("up", "waiting for host"):
            why = status.error if status is not None and status.error else None
            raise DevtuiError(
                f"{name} is {state}: not opened, as devtui does not listen on {url} now"
                f"{f' ({why})' if why else ''}; space starts it"
            )
        if (why := no_browser_here()) is not None:
            self.app.copy_to_clipboard(url)
            self.app.notify(
                f"{why}. Copied {url} (OSC 52): paste it into the browser of the machine "
                "you work at."
            )
            return
        self.app.open_url(url)
        self.app.notify(f"Opening {url}")

    def copy_tunnel_url(self, name: str) -> None:
        """`y`: copy the URL (OSC 52 reaches the local clipboard over SSH too)."""
        url = self.tunnel_url(name)
        self.app.copy_to_clipboard(url)
        self.app.notify(f"Copied {url}")

    def forward_offer(self, host: str, port: int) -> None:
        """`f` on an offer: forward the remote port to the same local one (or the next free)."""
        self.app.job(self._forward(host, port), f"forwarding {host}:{port}", group=f"host:{host}")

    async def _forward(self, host: str, port: int) -> None:
        spec, note = await self.app.require_core().forward_port(host, port)
        text = f"Forwarded {host}:{port} to {self.tunnel_url_of(spec)} (s saves it)"
        self.app.said([text, *([f"note: {note}"] if note else [])])
        self.app.refresh_panes(full=True)
        pane = self.app.tunnels_pane
        pane.select_row(spec.name)

    def save_discovered(self, name: str) -> None:
        """`s`: write a tunnel made from an offer to the config."""
        if name in self.app.config.tunnels:
            self.app.notify(f"{name} is saved already")
            return
        self.app.job(self._save_discovered(name), f"saving {name}")

    async def _save_discovered(self, name: str) -> None:
        await self.app.require_core().save_tunnel(name)
        self.app.note_saved()
        self.app.said([f"Saved tunnel {name}"])
        self.app.refresh_panes(full=True)

    def retarget(self, name: str) -> None:
        """`R`: point a tunnel at the port its app moved to; saved, only that tunnel restarts."""
        moved = self.app.moved_target(name)
        if moved is None:
            self.app.notify(f"{name}: no moved app seen (R follows an app that changed its port)")
            return
        self.app.job(self._retarget(name, moved), f"retargeting {name}", group=f"tunnel:{name}")

    async def _retarget(self, name: str, port: int) -> None:
        await self.app.require_core().retarget_tunnel(name, port)
        self.app.note_saved()
        self.app.said([f"Tunnel {name} now goes to port {port} on its host"])
        self.app.refresh_panes(full=True)
