"""The command palette (ctrl+p): every dashboard action by name, "Tunnels: start gradio"."""

from __future__ import annotations

import functools
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
    for each, name, item, verb, detail, host in _items(app):
        for command in registry.item_commands(each):
            words = {"name": name, "verb": verb, "detail": detail, "host": host}
            yield _command(
                app,
                command.title.format(**words),
                command.help.format(**words),
                functools.partial(getattr(getattr(app, command.owner), command.method), item),
            )


def _items(app: DevTuiApp) -> Iterator[tuple[str, str, Any, str, str, str]]:
    """(kind, name, what the actions take, verb, detail, host) for every host, tunnel, key
    and running job."""
    for name, host in app.config.hosts.items():
        live = app.host_status(name)
        connected = live is not None and live.state.value == "connected"
        verb = "disconnect" if connected else "connect"
        yield "host", name, name, verb, host.destination, name
    running = set(app.running_tunnels())
    for name, tunnel in app.config.tunnels.items():
        verb = "stop" if name in running else "start"
        yield "tunnel", name, name, verb, tunnel.describe(), tunnel.host
    for info in app.keys_pane.keys:
        yield "key", info.name, info, "", info.fingerprint or "", ""
    for job in app.job_actions.all_running():
        yield "job", job.name, (job.host, job.name), "", job.command, job.host
