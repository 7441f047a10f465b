"""The devtui dashboard: four panes over one sshcore Core.

The app draws first and builds the Core after the first paint (importing asyncssh takes a
noticeable fraction of a second). Every long operation runs as a worker; the core's events are
queued by a cheap subscriber and drawn in batches a few times a second.
"""

from __future__ import annotations

import asyncio
import os
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.markup import escape
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from sshcore.config import Config
from sshcore.errors import ConfigError, DevtuiError
from sshcore.events import (
    AuthFailed,
    DiscoveryUnsupported,
    Event,
    HostFailed,
    HostKeyLearned,
    HostKeyRejected,
    RemotePortOpened,
    TunnelFailed,
    TunnelTargetMoved,
    TunnelTraffic,
    UnexpectedError,
)
from sshcore.model import HostSpec, TunnelSpec

from .live import LiveState
from .panes import HostsPane, KeysPane, LogsPane, TunnelsPane
from .panes.base import FilterablePane, Pane
from .panes.logs import LogRecord
from .prompts import TuiPrompts
from .screens.dialogs import ConfirmScreen, PickScreen, TextScreen
from .screens.forms import (
    HostFormScreen,
    KeygenRequest,
    KeygenScreen,
    LogSourceScreen,
    PasteScreen,
    TunnelFormScreen,
)
from .screens.help import HelpScreen

if TYPE_CHECKING:
    from sshcore.core import Core
    from sshcore.discovery import ListeningPort
    from sshcore.keys import KeyInfo
    from sshcore.prompts import Prompts
    from sshcore.session import HostStatus
    from sshcore.tunnels import TunnelStatus

CoreFactory = Callable[["Prompts"], "Core"]
FLUSH_INTERVAL = 0.25  # seconds between batched repaints of events
PENDING_MAX = 20_000  # events held between two repaints; older ones only reach the log file
CONFIG_POLL = 1.5  # seconds between looks at the config file's modification time
NOTIFY_EVENTS = (HostFailed, HostKeyRejected, AuthFailed, TunnelFailed)


def display_path(path: Path) -> str:
    """A path with the home folder as ~ (shorter in the status line)."""
    try:
        return "~" + os.sep + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def over_ssh() -> bool:
    """True when devtui itself runs in an SSH session (no local browser to open)."""
    return bool(os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"))


class StatusBar(Static):
    """One line on top: where the config is, what runs, what is being done."""


class DevTuiApp(App[int]):
    """Hosts, tunnels, keys and logs; every action also exists in the CLI and the palette."""

    CSS_PATH = "devtui.tcss"
    TITLE = "devtui"
    ENABLE_COMMAND_PALETTE = True
    # From 110 columns the tunnels get two thirds of the width (devtui.tcss: Screen.-wide).
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-narrow"),
        (110, "-wide"),
    ]
    BINDINGS: ClassVar[list[Any]] = [
        Binding("1", "focus_pane('hosts')", "Hosts", show=False, id="app.hosts"),
        Binding("2", "focus_pane('tunnels')", "Tunnels", show=False, id="app.tunnels"),
        Binding("3", "focus_pane('keys')", "Keys", show=False, id="app.keys"),
        Binding("4", "focus_pane('logs')", "Logs", show=False, id="app.logs"),
        Binding("question_mark", "help", "Help", id="app.help", tooltip="Every key"),
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True, id="app.quit2"),
        Binding("ctrl+c", "quit", "Quit", show=False, id="app.quit3"),
        Binding("escape", "cancel_job", "Cancel", show=False, id="app.cancel"),
    ]

    def __init__(
        self,
        config: Config,
        core_factory: CoreFactory,
        *,
        banner: str | None = None,
        autostart: bool = True,
        watch_config: bool = True,
    ) -> None:
        super().__init__()
        self.config = config
        self._core_factory = core_factory
        self.core: Core | None = None
        self.core_ready = asyncio.Event()
        self.banner = banner
        self.autostart = autostart
        self.watch_config = watch_config
        self.live = LiveState()
        self.prompts = TuiPrompts(self)
        self._pending: deque[Event] = deque(maxlen=PENDING_MAX)
        self._received = 0  # events queued since the last flush (some may have been dropped)
        self._dirty = False
        self._jobs: dict[Worker[Any], str] = {}
        self._config_stamp = self._stamp()
        self._theme_loaded = False
        self._in_shell = False
        self._followers: dict[str, Worker[Any]] = {}  # "host:source" -> its follower
        self._source_pending: dict[str, list[LogRecord]] = {}

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(self._status_text(), id="status")
        with Grid(id="panes"):
            yield HostsPane(id="hosts")
            yield TunnelsPane(id="tunnels")
            yield KeysPane(id="keys")
            yield LogsPane(id="logs")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        theme = self.config.settings.theme
        if theme and theme in self.available_themes:
            self.theme = theme
        self._theme_loaded = True
        self.pane("hosts").focus_main()
        self.call_after_refresh(self._start_core)

    def pane(self, name: str) -> Any:
        """One of the four panes by id."""
        return self.query_one(f"#{name}", Pane)

    @property
    def hosts_pane(self) -> HostsPane:
        return self.query_one(HostsPane)

    @property
    def tunnels_pane(self) -> TunnelsPane:
        return self.query_one(TunnelsPane)

    @property
    def keys_pane(self) -> KeysPane:
        return self.query_one(KeysPane)

    @property
    def logs_pane(self) -> LogsPane:
        return self.query_one(LogsPane)

    # -- the core -------------------------------------------------------------------------------
    def _start_core(self) -> None:
        self.run_worker(self._build_core(), name="start", exit_on_error=False)

    async def _build_core(self) -> None:
        # In a thread: importing asyncssh and opening the log file must not hold the first paint.
        core = await asyncio.to_thread(self._core_factory, self.prompts)
        self.core = core
        core.subscribe(self._on_event)
        self.core_ready.set()
        self.set_interval(FLUSH_INTERVAL, self._flush_events)
        self.set_interval(1.0, self._tick)
        if self.watch_config:
            self.set_interval(CONFIG_POLL, self._poll_config)
        self.log_line("info", f"config {display_path(self.config.path)}")
        if core.log_file:
            self.log_line("info", f"log file {display_path(core.log_file)}")
        self.refresh_panes(full=True)
        self.load_keys()
        self.start_log_sources()
        if self.autostart:
            for tunnel in self.config.tunnels.values():
                if tunnel.autostart:
                    self.job(self._start_tunnel(tunnel.name), f"starting {tunnel.name}")

    def require_core(self) -> Core:
        """The core, or a clear error while it is still starting."""
        if self.core is None:
            raise DevtuiError("still starting; try again in a moment")
        return self.core

    def host_status(self, name: str) -> HostStatus | None:
        """The host's connection snapshot (None before the core is up or before first use)."""
        if self.core is None or name not in self.core.sessions:
            return None
        return self.core.sessions[name].status()

    def tunnel_status(self, name: str) -> TunnelStatus | None:
        """The tunnel's snapshot (None when it never ran in this session)."""
        if self.core is None or name not in self.core.tunnels:
            return None
        return self.core.tunnels[name].status()

    def tunnel_specs(self) -> dict[str, TunnelSpec]:
        """Saved tunnels, then those made from offers this session (not saved yet)."""
        return self.core.tunnel_specs() if self.core is not None else dict(self.config.tunnels)

    def offers(self) -> list[tuple[str, ListeningPort]]:
        """(host, port) for each new remote listener not forwarded yet."""
        if self.core is None:
            return []
        new = self.live.new_ports
        return [
            (h, p) for h in self.config.hosts for p in self.core.offers(h) if (h, p.port) in new
        ]

    def _is_offer(self, event: RemotePortOpened) -> bool:
        return any(h == event.host and p.port == event.port for h, p in self.offers())

    def moved_target(self, name: str) -> int | None:
        """The port a tunnel's app moved to (the 7860 -> 7861 case), if the core saw it."""
        return self.core.moved_target(name) if self.core is not None else None

    def remote_closed(self, name: str) -> bool:
        """Whether the program a tunnel forwards to stopped listening on its host."""
        return self.core is not None and self.core.remote_closed(name)

    def running_tunnels(self) -> list[str]:
        """Names of the tunnels that are started (whatever their host's state)."""
        if self.core is None:
            return []
        return [name for name, t in self.core.tunnels.items() if t.running]

    # -- events -----------------------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        # Called by the core for every event: only queue it. Drawing happens in _flush.
        self._pending.append(event)
        self._received += 1
        self.live.feed(event)
        self._dirty = True

    def _flush_events(self) -> None:
        if self._in_shell or (not self._pending and not self._dirty):
            return
        batch = list(self._pending)
        dropped = self._received - len(batch)
        self._pending.clear()
        self._received = 0
        self._dirty = False
        records = [
            LogRecord(e.at, e.level, e.message()) for e in batch if not isinstance(e, TunnelTraffic)
        ]
        if dropped > 0:  # a burst: the view keeps up, the log file has every line
            records.insert(0, LogRecord(time.time(), "warning", f"… {dropped} events not shown"))
        if records:
            self.logs_pane.add(records)
        for key, lines in self._source_pending.items():
            if lines:
                self.logs_pane.add(lines[:], source=key)
                lines.clear()
        problems = [e for e in batch if isinstance(e, NOTIFY_EVENTS)]
        for event in problems[:3]:
            self.notify(event.message(), severity="error", timeout=8)
        if len(problems) > 3:
            self.notify(f"and {len(problems) - 3} more errors: see Logs (4)", severity="error")
        for event in batch:
            if isinstance(event, HostKeyLearned | DiscoveryUnsupported):
                self.notify(event.message(), timeout=6)
            elif isinstance(event, RemotePortOpened) and self._is_offer(event):
                self.notify(f"{event.message()} (Tunnels, 2)", title="New port", timeout=10)
            elif isinstance(event, TunnelTargetMoved):
                self.notify(event.message(), severity="warning", timeout=10)
        self.refresh_panes()

    def _tick(self) -> None:
        # Once a second: traffic samples for the sparklines and the reconnect countdowns.
        if self.core is None or self._in_shell:
            return
        now = time.monotonic()
        for name, tunnel in list(self.core.tunnels.items()):
            if tunnel.running:
                self.live.sample(name, tunnel.bytes_up, tunnel.bytes_down, now)
        self.refresh_panes()

    def refresh_panes(self, full: bool = False) -> None:
        """Redraw hosts and tunnels from the core's snapshots (only changed cells)."""
        self.hosts_pane.refresh_rows(full)
        self.tunnels_pane.refresh_rows(full)
        self.query_one(StatusBar).update(self._status_text())

    def log_line(self, level: str, text: str) -> None:
        """A line in the Logs pane that is not a core event (what the dashboard did)."""
        self.logs_pane.add([LogRecord(time.time(), level, text)])

    def _status_text(self) -> str:
        hosts = len(self.config.hosts)
        up = len(self.running_tunnels()) if self.core else 0
        counts = (
            f"{hosts} host{'s' if hosts != 1 else ''} · {up}/{len(self.config.tunnels)} tunnels on"
        )
        if self._jobs:
            newest = list(self._jobs.values())[-1]
            more = f" (+{len(self._jobs) - 1})" if len(self._jobs) > 1 else ""
            return f"[b]⟳ {escape(newest)}{more}[/] · esc cancels · {counts}"
        where = self.banner or display_path(self.config.path)
        state = "starting… · " if self.core is None else ""
        return f"{escape(where)} · {state}{counts} · [b]?[/] keys · [b]q[/] quit"

    # -- jobs (workers) ---------------------------------------------------------------------------
    def job(self, work: Awaitable[Any], description: str, *, group: str = "default") -> Worker[Any]:
        """Run `work` as a worker shown in the status bar; its errors become notifications."""
        worker: Worker[Any] = self.run_worker(
            work, name=description, group=group, description=description, exit_on_error=False
        )
        self._jobs[worker] = description
        self.query_one(StatusBar).update(self._status_text())
        return worker

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self._jobs.pop(worker, None)
            self.query_one(StatusBar).update(self._status_text())
        if event.state == WorkerState.ERROR and worker.error is not None:
            self.report_exception(worker.name or "a background job", worker.error)

    def action_cancel_job(self) -> None:
        """Cancel the newest long job (a connect, a test, an install)."""
        if not self._jobs:
            return
        worker, description = list(self._jobs.items())[-1]
        worker.cancel()
        self.notify(f"Cancelled: {description}")

    def report_exception(self, where: str, error: BaseException) -> None:
        """A failed action: one line for the user; a bug also goes to the log file in full."""
        if isinstance(error, DevtuiError):
            self.notify(str(error), severity="error", timeout=8)
            self.log_line("error", str(error))
            return
        detail = f"{type(error).__name__}: {error}"
        trace = "".join(traceback.format_exception(error))
        event = UnexpectedError(where, detail, trace)
        if self.core is not None:
            self.core.bus.publish(event)  # to the log file (with the traceback) and the pane
        else:
            self.log_line("error", event.message())
        self.notify(event.message(), severity="error", timeout=10)

    # -- hosts ------------------------------------------------------------------------------------
    def toggle_connect(self, name: str) -> None:
        """`c`: connect an idle host, disconnect a live one, cancel a connect in progress."""
        core = self.require_core()
        status = self.host_status(name)
        group = f"host:{name}"
        busy = [w for w in self._jobs if w.group == group and w.is_running]
        if busy:
            for worker in busy:
                worker.cancel()
            self.job(core.disconnect(name), f"disconnecting {name}", group=group)
            return
        if status is not None and status.state.value in ("connected", "reconnecting", "lost"):
            self.job(core.disconnect(name), f"disconnecting {name}", group=group)
        else:
            self.job(self._connect(name), f"connecting {name}", group=group)

    async def _connect(self, name: str) -> None:
        from sshcore.session import ConnectError

        core = self.require_core()
        try:
            await core.connect(name)
        except asyncio.CancelledError:
            await core.disconnect(name)
            raise
        except ConnectError:
            pass  # the core's HostFailed event has told the user already (row, log, toast)
        self.refresh_panes()

    def test_host(self, name: str) -> None:
        """`t`: connect time, round trip, auth method, server version."""
        self.job(self._test(name), f"testing {name}", group=f"host:{name}")

    async def _test(self, name: str) -> None:
        core = self.require_core()
        status = await core.connect(name)
        rtt = await core.ping(name)
        self.live.round_trip[name] = rtt
        text = (
            f"{name}: OK · connect {status.connect_ms or 0:.0f} ms · round trip {rtt:.0f} ms · "
            f"{status.auth_method} · {status.server_version}"
        )
        self.notify(text, title="Test", timeout=10)
        self.log_line("info", text)
        self.refresh_panes()

    def test_all_hosts(self) -> None:
        """`T`: test every host at once (a few in flight), progress on top, failures first."""
        if not self.config.hosts:
            raise DevtuiError("no hosts yet: p pastes the ssh line your console gave you")
        self.job(self._test_all(), f"testing {len(self.config.hosts)} hosts", group="fleet")

    async def _test_all(self) -> None:
        from sshcore.fleet import check_hosts

        names = list(self.config.hosts)
        done = 0
        worker = next(w for w in self._jobs if w.group == "fleet" and w.is_running)

        def progress(check: Any) -> None:
            nonlocal done
            done += 1
            if check.round_trip_ms is not None:
                self.live.round_trip[check.name] = check.round_trip_ms
            self._jobs[worker] = f"testing hosts {done}/{len(names)}"
            self.query_one(StatusBar).update(self._status_text())

        checks = await check_hosts(self.require_core(), names, on_result=progress)
        failed = [c for c in checks if not c.ok]
        lines = [f"{len(checks) - len(failed)} OK, {len(failed)} failed", ""]
        for c in checks:
            if c.ok:
                lines.append(
                    f"ok    {c.name:<16} {c.connect_ms or 0:5.0f} ms  rtt {c.round_trip_ms or 0:4.0f} ms"
                    f"  {c.auth_method}"
                )
            else:
                lines.append(f"FAIL  {c.name:<16} {c.error}")
        self.log_line("warning" if failed else "info", lines[0] + " (test of every host)")
        self.push_screen(TextScreen("Test of every host", "\n".join(lines)))
        self.refresh_panes()

    def open_shell(self, name: str) -> None:
        """`s`: a shell on the host through its connection; the dashboard comes back after."""
        self.job(self._shell(name), f"shell on {name}", group=f"host:{name}")

    async def _shell(self, name: str) -> None:
        from sshcore.shell import default_terminal

        core = self.require_core()
        await core.connect(name)  # a password or host key is asked here, in a modal
        self._in_shell = True  # no repaints while the terminal belongs to the shell
        try:
            with self.suspend():
                print(f"devtui: shell on {name}; exit it to come back (tunnels keep running)")
                status = await core.shell(name, default_terminal())
        finally:
            self._in_shell = False
        self.refresh_panes(full=True)
        self.notify(f"Shell on {name} ended (exit status {status})")

    def paste_line(self) -> None:
        """`p`: paste an ssh line; saved as a host plus tunnels (same parsing as devtui add)."""
        screen = PasteScreen(self.config.data, str(self.config.path))
        self.push_screen(screen, callback=self._pasted)

    def _pasted(self, line: object) -> None:
        if isinstance(line, str) and line:
            self.job(self._add_line(line), "saving the pasted host")

    async def _add_line(self, line: str) -> None:
        from sshcore import ops

        outcome = await asyncio.to_thread(ops.add_from_line, self.config, line)
        self.note_saved()
        self._said(outcome.lines)
        self.refresh_panes(full=True)
        self.hosts_pane.table.move_cursor(row=self._row_of(self.hosts_pane, outcome.host))

    def _said(self, lines: Iterable[str]) -> None:
        lines = list(lines)
        for line in lines:
            self.log_line("warning" if line.startswith("note:") else "info", line)
        if lines:
            self.notify("\n".join(lines[:6]), timeout=8)

    @staticmethod
    def _row_of(pane: FilterablePane, key: str) -> int:
        keys = [str(k.value) for k in pane.table.rows]
        return keys.index(key) if key in keys else 0

    def edit_host(self, name: str | None) -> None:
        """`a` / `e`: the host form; saved when valid."""
        spec = self.config.hosts.get(name) if name else None
        self.push_screen(
            HostFormScreen(self.config.data, spec),
            callback=lambda result: self._host_saved(name, result),
        )

    def _host_saved(self, name: str | None, result: object) -> None:
        if not isinstance(result, HostSpec):
            return
        core = self.require_core()
        work = core.add_host(result) if name is None else core.update_host(name, result)
        self.job(self._saved(work, f"Saved host {result.name}"), f"saving {result.name}")

    async def _saved(self, work: Awaitable[Any], message: str) -> None:
        await work
        self.note_saved()
        self.notify(message)
        self.log_line("info", message)
        self.refresh_panes(full=True)

    def delete_host(self, name: str) -> None:
        """`d`: delete after a confirmation that names the tunnels going too."""
        tunnels = [t.name for t in self.config.data.tunnels_of(name)]
        body = f"Delete host {name} ({self.config.hosts[name].destination})?"
        if tunnels:
            body += f"\nIts tunnels go too: {', '.join(tunnels)}."
        self.push_screen(
            ConfirmScreen("Delete host", body, yes="delete"),
            callback=lambda yes: yes and self.job(self._delete_host(name), f"deleting {name}"),
        )

    async def _delete_host(self, name: str) -> None:
        gone = await self.require_core().remove_host(name)
        self.note_saved()
        for tunnel in gone:
            self.live.forget(tunnel)
        self.live.forget(name)
        extra = f" and its tunnels {', '.join(gone)}" if gone else ""
        self.notify(f"Deleted host {name}{extra}")
        self.log_line("info", f"deleted host {name}{extra}")
        self.refresh_panes(full=True)

    def import_ssh_config(self) -> None:
        """`i`: import ~/.ssh/config (VS Code's Remote-SSH hosts)."""
        self.job(self._import(), "importing ~/.ssh/config")

    async def _import(self) -> None:
        from sshcore import ops

        outcome = await asyncio.to_thread(ops.import_ssh_config, self.config, None)
        self.note_saved()
        self._said(outcome.lines)
        self.refresh_panes(full=True)

    def export_host(self, name: str) -> None:
        """`x`: write the host as a Host block in ~/.ssh/config (for VS Code and ssh)."""
        self.job(self._export(name), f"exporting {name}")

    async def _export(self, name: str) -> None:
        from sshcore import ops

        outcome = await asyncio.to_thread(ops.export_host, self.config, name, None)
        self._said(outcome.lines)

    def forget_host_key(self, name: str) -> None:
        """Palette: remove a host's known_hosts entries after the machine was rebuilt."""
        spec = self.config.hosts[name]
        self.push_screen(
            ConfirmScreen(
                "Forget host key",
                f"Remove the saved host key of {name} ({spec.hostname}:{spec.port}) from "
                "known_hosts? Do this only if you know the machine was rebuilt: the next "
                "connect asks you to trust the new key.",
                yes="forget it",
            ),
            callback=lambda yes: yes and self.job(self._forget(name), f"forgetting {name}'s key"),
        )

    async def _forget(self, name: str) -> None:
        from sshcore import hostkeys

        spec = self.config.hosts[name]
        path = hostkeys.expand(self.config.settings.known_hosts)
        count = await asyncio.to_thread(hostkeys.forget, path, spec.hostname, spec.port)
        self._said([f"Removed {count} key(s) for {name} from {path}"])

    # -- tunnels ----------------------------------------------------------------------------------
    async def _start_tunnel(self, name: str) -> None:
        await self.require_core().start_tunnel(name)
        self.refresh_panes()

    def toggle_tunnel(self, name: str) -> None:
        """`space`: start or stop one tunnel; the host's other tunnels are untouched."""
        core = self.require_core()
        if name in self.running_tunnels():
            self.job(core.stop_tunnel(name), f"stopping {name}", group=f"tunnel:{name}")
        else:
            self.job(self._start_tunnel(name), f"starting {name}", group=f"tunnel:{name}")

    def restart_tunnel(self, name: str) -> None:
        """`r`: stop and start one tunnel."""
        core = self.require_core()
        self.job(core.restart_tunnel(name), f"restarting {name}", group=f"tunnel:{name}")

    def edit_tunnel(self, name: str | None) -> None:
        """`n` / `e`: the tunnel form (busy ports named before anything is saved)."""
        if name and name not in self.config.tunnels:
            raise DevtuiError(f"{name} came from an offer: s saves it, then e edits it")
        spec = self.config.tunnels.get(name) if name else None
        host = self.hosts_pane.selected_key()
        own = spec.listen.port if spec and name in self.running_tunnels() else None
        self.push_screen(
            TunnelFormScreen(self.config.data, spec, host, own_port=own),
            callback=lambda result: self._tunnel_saved(name, result),
        )

    def _tunnel_saved(self, name: str | None, result: object) -> None:
        if not isinstance(result, TunnelSpec):
            return
        core = self.require_core()
        work = core.add_tunnel(result) if name is None else core.update_tunnel(name, result)
        self.job(self._saved(work, f"Saved tunnel {result.name}"), f"saving {result.name}")

    def delete_tunnel(self, name: str) -> None:
        """`d`: stop and delete one tunnel, after a confirmation."""
        spec = self.tunnel_specs()[name]
        self.push_screen(
            ConfirmScreen("Delete tunnel", f"Delete tunnel {name} ({spec.describe()})?", "delete"),
            callback=lambda yes: yes and self.job(self._delete_tunnel(name), f"deleting {name}"),
        )

    async def _delete_tunnel(self, name: str) -> None:
        await self.require_core().remove_tunnel(name)
        self.note_saved()
        self.live.forget(name)
        self.notify(f"Deleted tunnel {name}")
        self.refresh_panes(full=True)

    def tunnel_url(self, name: str) -> str:
        """The browser URL of a local tunnel."""
        return self.tunnel_url_of(self.tunnel_specs()[name])

    def tunnel_url_of(self, spec: TunnelSpec) -> str:
        """The browser URL of a local tunnel spec."""
        name = spec.name
        if spec.kind == "remote":
            raise DevtuiError(f"{name} listens on the remote ({spec.listen}), not here")
        if spec.kind == "dynamic":
            raise DevtuiError(
                f"{name} is a SOCKS proxy: set socks5://127.0.0.1:{spec.listen.port} as your "
                "browser's proxy"
            )
        address = spec.listen.address
        if spec.listen.all_interfaces or address == "localhost":
            address = "127.0.0.1"
        host = f"[{address}]" if ":" in address else address
        return f"http://{host}:{spec.listen.port}/"

    def open_tunnel(self, name: str) -> None:
        """`o`: open the URL in the browser; over SSH there is none here, so copy it instead."""
        url = self.tunnel_url(name)
        if name not in self.running_tunnels():
            self.notify(f"{name} is stopped: space starts it", severity="warning")
        if over_ssh():
            self.copy_to_clipboard(url)
            self.notify(
                f"devtui runs over SSH: no browser here. Copied {url} (OSC 52); open it on the "
                "machine where that port is forwarded."
            )
            return
        self.open_url(url)
        self.notify(f"Opening {url}")

    def copy_tunnel_url(self, name: str) -> None:
        """`y`: copy the URL (OSC 52 reaches the local clipboard over SSH too)."""
        url = self.tunnel_url(name)
        self.copy_to_clipboard(url)
        self.notify(f"Copied {url}")

    def forward_offer(self, host: str, port: int) -> None:
        """`f` on an offer: forward the remote port to the same local one (or the next free)."""
        self.job(self._forward(host, port), f"forwarding {host}:{port}", group=f"host:{host}")

    async def _forward(self, host: str, port: int) -> None:
        spec, note = await self.require_core().forward_port(host, port)
        text = f"Forwarded {host}:{port} to {self.tunnel_url_of(spec)} (s saves it)"
        self._said([text, *([f"note: {note}"] if note else [])])
        self.refresh_panes(full=True)
        pane = self.tunnels_pane
        pane.table.move_cursor(row=self._row_of(pane, spec.name))

    def save_discovered(self, name: str) -> None:
        """`s`: write a tunnel made from an offer to the config."""
        if name in self.config.tunnels:
            self.notify(f"{name} is saved already")
            return
        self.job(self._save_discovered(name), f"saving {name}")

    async def _save_discovered(self, name: str) -> None:
        await self.require_core().save_tunnel(name)
        self.note_saved()
        self._said([f"Saved tunnel {name}"])
        self.refresh_panes(full=True)

    def retarget(self, name: str) -> None:
        """`R`: point a tunnel at the port its app moved to; saved, only that tunnel restarts."""
        moved = self.moved_target(name)
        if moved is None:
            self.notify(f"{name}: no moved app seen (R follows an app that changed its port)")
            return
        self.job(self._retarget(name, moved), f"retargeting {name}", group=f"tunnel:{name}")

    async def _retarget(self, name: str, port: int) -> None:
        await self.require_core().retarget_tunnel(name, port)
        self.note_saved()
        self._said([f"Tunnel {name} now goes to port {port} on its host"])
        self.refresh_panes(full=True)

    # -- log sources --------------------------------------------------------------------------
    def start_log_sources(self) -> None:
        """Follow every remote log the hosts name (saved with each host)."""
        for host in self.config.hosts.values():
            for source in host.log_sources:
                self._follow(host.name, source)

    def _follow(self, host: str, source: str) -> None:
        key = f"{host}:{source}"
        if key in self._followers:
            return
        self.logs_pane.add_source(key)
        self._followers[key] = self.run_worker(
            self._follow_source(host, source, key),
            name=f"follow {key}",
            group=f"follow:{key}",
            exit_on_error=False,
        )

    async def _follow_source(self, host: str, source: str, key: str) -> None:
        pending = self._source_pending.setdefault(key, [])

        def line(text: str) -> None:  # from the core's tasks: queued, drawn in batches
            pending.append(LogRecord(time.time(), "info", text))
            self._dirty = True

        def notice(text: str) -> None:
            pending.append(LogRecord(time.time(), "warning", text))
            self._dirty = True

        await self.require_core().follow(host, source, line, on_notice=notice)

    def add_log_source(self) -> None:
        """`a` in Logs: follow a remote file or command; saved with its host."""
        if not self.config.hosts:
            raise DevtuiError("no hosts yet: add one first (1, then p)")
        host = self.hosts_pane.selected_key()
        self.push_screen(LogSourceScreen(self.config.data, host), callback=self._source_added)

    def _source_added(self, result: object) -> None:
        if isinstance(result, tuple):
            host, source = result
            self.job(self._save_source(host, source), f"adding {host}:{source}")

    async def _save_source(self, host: str, source: str) -> None:
        spec = self.config.hosts[host]
        updated = replace(spec, log_sources=(*spec.log_sources, source))
        await self.require_core().update_host(host, updated)
        self.note_saved()
        self._follow(host, source)
        self.logs_pane.source = f"{host}:{source}"
        self.logs_pane.focus_main()

    def remove_log_source(self, key: str) -> None:
        """`d` in Logs: stop following a remote source and forget it."""
        host, _, source = key.partition(":")
        self.push_screen(
            ConfirmScreen("Remove log source", f"Stop following {source} on {host}?", "remove"),
            callback=lambda yes: yes and self.job(self._remove_source(host, source, key), "saving"),
        )

    async def _remove_source(self, host: str, source: str, key: str) -> None:
        worker = self._followers.pop(key, None)
        if worker is not None:
            worker.cancel()
        self.logs_pane.remove_source(key)
        spec = self.config.hosts.get(host)
        if spec is not None and source in spec.log_sources:
            kept = tuple(s for s in spec.log_sources if s != source)
            await self.require_core().update_host(host, replace(spec, log_sources=kept))
            self.note_saved()

    # -- keys -------------------------------------------------------------------------------------
    def load_keys(self) -> None:
        """Read ~/.ssh (and the hosts' key files) in the background."""
        self.run_worker(self._load_keys(), group="keys", exclusive=True, exit_on_error=False)

    async def _load_keys(self) -> None:
        from sshcore import keys

        agent = await keys.agent_key_blobs()
        hosts = list(self.config.hosts.values())
        found = await asyncio.to_thread(keys.list_keys, hosts, agent_blobs=agent)
        pane = self.keys_pane
        pane.keys = found
        pane.loaded = True
        pane.refresh_rows(full=True)

    def copy_public_key(self, info: KeyInfo) -> None:
        """`y`: the public key line to the clipboard (OSC 52, also over SSH)."""
        if not info.public_line:
            raise DevtuiError(f"{info.name}: {info.problem or 'no public key'}")
        self.copy_to_clipboard(info.public_line)
        self.notify(f"Copied the public key {info.name}: paste it into your provider's form")

    def show_key(self, info: KeyInfo) -> None:
        """`s`: the public key and what devtui knows of the key."""
        if not info.public_line:
            raise DevtuiError(f"{info.name}: {info.problem or 'no public key'}")
        facts = [
            info.public_line,
            "",
            f"file         {info.path}",
            f"type         {info.key_type} {info.bits or ''}",
            f"fingerprint  {info.fingerprint}",
            f"passphrase   {'yes' if info.encrypted else 'no'}",
        ]
        if info.hosts:
            facts.append(f"hosts        {', '.join(info.hosts)}")
        if info.permissions_note:
            facts.append(f"permissions  {info.permissions_note}")
        self.push_screen(TextScreen(f"Key {info.name}", "\n".join(facts), copy=info.public_line))

    def generate_key(self) -> None:
        """`g`: the keygen form, then the key made in a thread (owner-only from the start)."""
        from sshcore.keys import default_key_path

        self.push_screen(KeygenScreen(str(default_key_path("ed25519"))), callback=self._keygen)

    def _keygen(self, request: object) -> None:
        if isinstance(request, KeygenRequest):
            self.job(self._generate(request), f"generating {Path(request.path).name}")

    async def _generate(self, request: KeygenRequest) -> None:
        from sshcore import keys

        info = await asyncio.to_thread(
            keys.generate_key,
            Path(request.path).expanduser(),
            key_type=request.key_type,
            bits=request.bits,
            comment=request.comment,
            passphrase=request.passphrase,
        )
        self.notify(f"Generated {info.name} ({info.fingerprint}): y copies the public key")
        self.log_line("info", f"generated key {info.path} ({info.fingerprint})")
        await self._load_keys()
        keys_pane = self.keys_pane
        keys_pane.table.move_cursor(row=self._row_of(keys_pane, str(info.path)))
        keys_pane.focus_main()

    def install_key(self, info: KeyInfo) -> None:
        """`u`: pick a host, then install the key there like ssh-copy-id and prove it works."""
        if not self.config.hosts:
            raise DevtuiError("no hosts yet: add one first (1, then p)")
        choices = [(h.name, f"{h.name}  {h.destination}") for h in self.config.hosts.values()]
        self.push_screen(
            PickScreen(f"Install {info.name} on", choices),
            callback=lambda host: (
                isinstance(host, str)
                and self.job(self._install(info, host), f"installing {info.name} on {host}")
            ),
        )

    async def _install(self, info: KeyInfo, host: str) -> None:
        outcome = await self.require_core().install_key(host, info.path)
        if outcome.result.added:
            text = f"Installed {info.name} on {host}"
        else:
            text = f"{info.name} was already on {host}"
        if outcome.verified:
            text += ", key-only login verified"
        elif outcome.verified is None:
            text += " (login with it not tested: it needs its passphrase)"
        self.notify(text, timeout=8)
        self.log_line("info", text)
        await self._load_keys()

    def fix_key_permissions(self, info: KeyInfo) -> None:
        """`f`: make the private key owner-only, after a confirmation."""
        self.push_screen(
            ConfirmScreen(
                "Fix permissions",
                f"Make {info.path} readable by you only (as OpenSSH demands)?",
                yes="fix",
            ),
            callback=lambda yes: yes and self.job(self._fix(info), f"fixing {info.name}"),
        )

    async def _fix(self, info: KeyInfo) -> None:
        from sshcore import keys

        done = await asyncio.to_thread(keys.fix_permissions, info.path)
        self._said([done])
        await self._load_keys()

    # -- config on disk ---------------------------------------------------------------------------
    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.config.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _poll_config(self) -> None:
        if self._stamp() != self._config_stamp and not any(w.group == "config" for w in self._jobs):
            self.run_worker(self._reload(), group="config", exclusive=True, exit_on_error=False)

    async def _reload(self) -> None:
        stamp = self._stamp()
        try:
            changed = await asyncio.to_thread(self.config.reload)
        except ConfigError as e:
            self._config_stamp = stamp
            self.notify(
                f"{e}\nKept the last good config; fix the file and save it again.",
                title="Config file has an error",
                severity="error",
                timeout=15,
            )
            self.log_line("error", f"config not reloaded: {e}")
            return
        self._config_stamp = stamp
        if changed:
            self.log_line("info", f"reloaded {self.config.path} (changed on disk)")
            self.notify("Config changed on disk: reloaded")
            self.refresh_panes(full=True)

    def note_saved(self) -> None:
        """After our own save: the file's new stamp is not a change from outside."""
        self._config_stamp = self._stamp()

    # -- theme ------------------------------------------------------------------------------------
    def watch_theme(self, theme: str) -> None:
        if self._theme_loaded and theme != self.config.settings.theme:
            self.run_worker(
                self._save_theme(theme), group="theme", exclusive=True, exit_on_error=False
            )

    async def _save_theme(self, theme: str) -> None:
        await asyncio.to_thread(self.config.set_setting, "theme", theme)
        self.note_saved()

    # -- global -----------------------------------------------------------------------------------
    def action_focus_pane(self, name: str) -> None:
        self.pane(name).focus_main()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self))

    async def action_quit(self) -> None:
        running = self.running_tunnels()
        if not running:
            await self._quit()
            return
        names = ", ".join(running[:5]) + (" …" if len(running) > 5 else "")
        self.push_screen(
            ConfirmScreen(
                "Quit",
                f"{len(running)} tunnel(s) running ({names}). Quitting stops them.",
                yes="stop them and quit",
            ),
            callback=self._quit_answer,
        )

    def _quit_answer(self, yes: object) -> None:
        if yes:
            self.run_worker(self._quit(), exit_on_error=False)

    async def _quit(self) -> None:
        self.query_one(StatusBar).update("stopping tunnels and closing connections…")
        if self.core is not None:
            await self.core.close()
        self.exit(0)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        from .commands import dashboard_commands

        yield from super().get_system_commands(screen)
        yield from dashboard_commands(self)
