"""The command palette (ctrl+p): every dashboard action by name, "Tunnels: start gradio"."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from textual.app import SystemCommand

from . import registry
from .text import markup_literal

if TYPE_CHECKING:
    from .app import DevTuiApp


def _safe(app: DevTuiApp, action: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            action()
        except Exception as e:  # same rule as a key: one line, the app stays up
            app.report_exception("command palette", e)

    return run


def _command(
    app: DevTuiApp, title: str, help_text: str, action: Callable[[], object]
) -> SystemCommand:
    """A command naming a host, tunnel or key: the palette reads its title and help as
    markup, so those names and routes go in as literal text."""
    return SystemCommand(
        markup_literal(title), markup_literal(help_text), _safe(app, action), discover=False
    )


def _run_later(app: DevTuiApp, target: Any, action: str) -> Callable[[], object]:
    """Run `action` on `target` (the app or a pane) as its key would, once the palette closed."""
    return lambda: app.call_later(target.run_action, action)


def dashboard_commands(app: DevTuiApp) -> Iterator[SystemCommand]:
    """Global actions first (shown on an empty search: those of tui/registry.py with a
    palette title, run as their key would run them), then one command per host/tunnel/key."""
    for act in registry.palette_actions():
        target: Any = app if act.scope == "app" else app.pane(act.scope)
        yield SystemCommand(
            act.palette or act.label,
            act.palette_help or act.tooltip,
            _safe(app, _run_later(app, target, act.action)),
        )
    for name, host in app.config.hosts.items():
        live = app.host_status(name)
        connected = live is not None and live.state.value == "connected"
        verb = "disconnect" if connected else "connect"
        for title, help_text, action in (
            (
                f"Hosts: {verb} {name}",
                host.destination,
                lambda n=name: app.host_actions.toggle_connect(n),
            ),
            (
                f"Hosts: test {name}",
                "Connect time, round trip, auth, server",
                lambda n=name: app.host_actions.test_host(n),
            ),
            (f"Hosts: edit {name}", host.destination, lambda n=name: app.host_actions.edit_host(n)),
            (
                f"Hosts: delete {name}",
                "Asks first; its tunnels go too",
                lambda n=name: app.host_actions.delete_host(n),
            ),
            (
                f"Hosts: export {name} to ~/.ssh/config",
                "For VS Code and plain ssh",
                lambda n=name: app.host_actions.export_host(n),
            ),
            (
                f"Hosts: forget host key of {name}",
                "Only after the machine was rebuilt",
                lambda n=name: app.host_actions.forget_host_key(n),
            ),
        ):
            yield _command(app, title, help_text, action)
    running = set(app.running_tunnels())
    for name, tunnel in app.config.tunnels.items():
        verb = "stop" if name in running else "start"
        for title, help_text, action in (
            (
                f"Tunnels: {verb} {name}",
                tunnel.describe(),
                lambda n=name: app.tunnel_actions.toggle_tunnel(n),
            ),
            (
                f"Tunnels: restart {name}",
                tunnel.describe(),
                lambda n=name: app.tunnel_actions.restart_tunnel(n),
            ),
            (
                f"Tunnels: open {name} in the browser",
                tunnel.describe(),
                lambda n=name: app.tunnel_actions.open_tunnel(n),
            ),
            (
                f"Tunnels: copy the URL of {name}",
                tunnel.describe(),
                lambda n=name: app.tunnel_actions.copy_tunnel_url(n),
            ),
            (
                f"Tunnels: edit {name}",
                tunnel.describe(),
                lambda n=name: app.tunnel_actions.edit_tunnel(n),
            ),
            (
                f"Tunnels: delete {name}",
                tunnel.describe(),
                lambda n=name: app.tunnel_actions.delete_tunnel(n),
            ),
        ):
            yield _command(app, title, help_text, action)
    for info in app.keys_pane.keys:
        for title, help_text, action in (
            (
                f"Keys: copy the public key {info.name}",
                info.fingerprint or "",
                lambda i=info: app.key_actions.copy_public_key(i),
            ),
            (
                f"Keys: show {info.name}",
                info.fingerprint or "",
                lambda i=info: app.key_actions.show_key(i),
            ),
            (
                f"Keys: install {info.name} on a host",
                "Like ssh-copy-id, from any OS",
                lambda i=info: app.key_actions.install_key(i),
            ),
            (
                f"Keys: fix permissions of {info.name}",
                "Owner-only, as OpenSSH demands",
                lambda i=info: app.key_actions.fix_key_permissions(i),
            ),
        ):
            yield _command(app, title, help_text, action)
