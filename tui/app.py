"""The devtui dashboard: four panes over one sshcore Core.

The app draws first and builds the Core after the first paint (importing asyncssh takes a
noticeable fraction of a second). Every long operation runs as a worker; the core's events are
queued by a cheap subscriber and drawn in batches a few times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Grid
from textual.content import Content
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from sshcore.api import Config, ConfigError, DevtuiError, TunnelSpec, display_path, visible

from . import gc_policy, registry
from .actions.file_actions import FileActions
from .actions.host_actions import HostActions
from .actions.job_actions import POLL_INTERVAL as JOBS_POLL
from .actions.job_actions import JobActions
from .actions.key_actions import KeyActions
from .actions.log_actions import LogActions
from .actions.tunnel_actions import TunnelActions
from .dialog_prompts import TuiPrompts
from .live_state import LiveState
from .panes import HostsPane, KeysPane, LogsPane, TunnelsPane
from .panes.base import Pane
from .panes.logs_pane import LogRecord, PendingLines
from .text import styled

if TYPE_CHECKING:
    from sshcore.api import Core, Event, HostStatus, ListeningPort, Prompts, TunnelStatus

CoreFactory = Callable[["Prompts"], "Core"]
# Work done once the panes are drawn that gives the config and the top line (the demo).
Prepare = Callable[[], Awaitable[tuple[Config, "str | None"]]]
FLUSH_INTERVAL = 0.5  # seconds between batched repaints of events
TOASTS_PER_FLUSH = 4  # notifications raised by one flush of events
PENDING_MAX = 20_000  # events held between two repaints; older ones only reach the log file
CONFIG_POLL = 1.5  # seconds between looks at the config file's modification time


class StatusBar(Static):
    """One line on top: where the config is, what runs, what is being done."""


class DevTuiApp(App[int]):
    """Hosts, tunnels, keys and logs; every action also exists in the CLI and the palette."""

    CSS_PATH = "devtui.tcss"
    TITLE = "devtui"
    ENABLE_COMMAND_PALETTE = True
    # From 110 columns the tunnels get two thirds of the width (devtui.tcss: Screen.-wide).
    HORIZONTAL_BREAKPOINTS = [  # noqa: RUF012 (an instance variable of Textual's App)
        (0, "-narrow"),
        (110, "-wide"),
    ]
    BINDINGS: ClassVar[list[Any]] = registry.bindings("app")  # tui/registry.py

    def __init__(
        self,
        config: Config,
        core_factory: CoreFactory,
        *,
        banner: str | None = None,
        autostart: bool = True,
        watch_config: bool = True,
        settle_heap: bool = False,
        prepare: Prepare | None = None,
    ) -> None:
        """`settle_heap`: the app owns its process (devtui, not a test): once it is up, what
        it built is frozen out of the garbage collector's full passes (see tui/gc_policy.py).
        `prepare`: work that gives the config (and the top line) once the panes are drawn
        (the demo starts its host there); it runs before the core is built."""
        super().__init__()
        self.config = config
        self._core_factory = core_factory
        self.core: Core | None = None
        self.core_ready = asyncio.Event()
        self.banner = banner
        self.autostart = autostart
        self.watch_config = watch_config
        self.settle_heap = settle_heap
        self.prepare = prepare
        self.prepare_error: str | None = None  # why `prepare` failed (the app then exits)
        self.live = LiveState()
        self.host_actions = HostActions(self)
        self.tunnel_actions = TunnelActions(self)
        self.key_actions = KeyActions(self)
        self.log_actions = LogActions(self)
        self.job_actions = JobActions(self)
        self.file_actions = FileActions(self)
        self.prompts = TuiPrompts(self)
        self._pending: deque[Event] = deque(maxlen=PENDING_MAX)
        self._received = 0  # events queued since the last flush (some may have been dropped)
        self._dirty = False
        self._jobs: dict[Worker[Any], str] = {}
        self._config_stamp = self._stamp()
        self._theme_loaded = False
        self.in_shell = False
        self._status_shown = Content("")
        self._say: tuple[str, float] = ("", 0.0)  # a passing word on the top line, and until
        self.followers: dict[str, Worker[Any]] = {}  # "host:source" -> its follower
        self._source_pending: dict[str, PendingLines] = {}

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
        if self.prepare is not None:  # not "no hosts yet": they are on their way
            for pane in (self.hosts_pane, self.tunnels_pane):
                pane.set_empty_text("Starting…")
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
        if self.prepare is not None:
            try:
                self.config, self.banner = await self.prepare()
            except (DevtuiError, OSError) as e:
                self.prepare_error = str(e)
                self.exit(1)
                return
            self.show_status()
        # In a thread: importing asyncssh and opening the log file must not hold the first paint.
        core = await asyncio.to_thread(self._core_factory, self.prompts)
        self.core = core
        core.subscribe(self._on_event)
        self.core_ready.set()
        self.set_interval(FLUSH_INTERVAL, self._flush_events)
        self.set_interval(1.0, self._tick)
        self.set_interval(JOBS_POLL, self.job_actions.poll)
        if self.watch_config:
            self.set_interval(CONFIG_POLL, self._poll_config)
        self.log_line("info", f"config {display_path(self.config.path)}")
        if core.log_file:
            self.log_line("info", f"log file {display_path(core.log_file)}")
        self.refresh_panes(full=True)
        self.key_actions.load_keys()
        self.log_actions.start_log_sources()
        started: list[Worker[Any]] = []
        if self.autostart:
            for tunnel in self.config.tunnels.values():
                if tunnel.autostart:
                    started.append(
                        self.job(
                            self.tunnel_actions.start_tunnel(tunnel.name),
                            f"starting {tunnel.name}",
                        )
                    )
        if self.settle_heap:
            self.run_worker(self._freeze_heap(started), name="heap", exit_on_error=False)

    async def _freeze_heap(self, started: list[Worker[Any]]) -> None:
        """The startup's objects out of every later full collection: now (modules, widgets,
        the config), and again once the autostarted tunnels are up or failed (connections)."""
        gc_policy.freeze()
        for worker in started:
            with contextlib.suppress(Exception):  # a failed start is said by the job itself
                await worker.wait()
        gc_policy.freeze()

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
        if not new:  # most refreshes: nothing opened since connect; skip the hosts
            return []
        hosts = {h for h, _ in new}
        return [
            (h, p)
            for h in self.config.hosts
            if h in hosts
            for p in self.core.offers(h)
            if (h, p.port) in new
        ]

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
        if not self.is_running:
            return  # quitting (see refresh_panes)
        # Imported here, after the core (which loads them anyway): not before the first paint.
        from sshcore.api import (
            AuthFailed,
            DiscoveryUnsupported,
            HostConnected,
            HostFailed,
            HostKeyLearned,
            HostKeyRejected,
            PortsNotOffered,
            RemotePortOpened,
            TunnelFailed,
            TunnelTargetMoved,
            TunnelTraffic,
        )

        if self.in_shell or (not self._pending and not self._dirty):
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
                self.logs_pane.add(lines.take(), source=key)
        problems = [
            e
            for e in batch
            if isinstance(e, HostFailed | HostKeyRejected | AuthFailed | TunnelFailed)
        ]
        for event in batch:
            if isinstance(event, HostConnected) and event.host in self.config.hosts:
                self.job_actions.look(event.host)  # its jobs: counted, followed
        for problem in problems[:3]:
            self.notify(problem.message(), severity="error", timeout=8)
        if len(problems) > 3:
            self.notify(f"and {len(problems) - 3} more errors: see Logs (4)", severity="error")
        self._refresh_for(batch)
        # A few toasts a flush at most: a host that opens thousands of ports must not bury
        # the screen (the Logs pane and the log file have every line).
        offers: set[tuple[str, int]] | None = None  # worked out once a flush, when needed
        toasts = 0
        for event in batch:
            if toasts == TOASTS_PER_FLUSH:
                break
            if isinstance(event, HostKeyLearned | DiscoveryUnsupported):
                self.notify(event.message(), timeout=6)
            elif isinstance(event, RemotePortOpened):
                if offers is None:
                    offers = {(h, p.port) for h, p in self.offers()}
                if (event.host, event.port) not in offers:
                    continue
                self.notify(f"{event.message()} (Tunnels, 2)", title="New port", timeout=10)
            elif isinstance(event, TunnelTargetMoved | PortsNotOffered):
                self.notify(event.message(), severity="warning", timeout=10)
            else:
                continue
            toasts += 1

    def _refresh_for(self, batch: list[Event]) -> None:
        """Redraw the rows a batch of events is about (a host's events touch its tunnels);
        ports opening or closing can add or remove offer rows."""
        from sshcore.api import PortForwarded, RemotePortClosed, RemotePortOpened

        hosts: set[str] = set()
        tunnels: set[str] = set()
        structural = False
        for event in batch:
            if isinstance(event, RemotePortOpened | RemotePortClosed | PortForwarded):
                structural = True
            host, tunnel = getattr(event, "host", None), getattr(event, "tunnel", None)
            if isinstance(host, str):
                hosts.add(host)
            if isinstance(tunnel, str):
                tunnels.add(tunnel)
        if hosts:
            tunnels |= {t.name for t in self.tunnel_specs().values() if t.host in hosts}
        # Rows out of view wait for the tick (1 s) or a scroll that shows them.
        hosts = self.hosts_pane.in_view(hosts)
        tunnels = self.tunnels_pane.in_view(tunnels)
        if hosts or tunnels or structural:
            self.refresh_panes(hosts=hosts, tunnels=None if structural else tunnels)

    def _tick(self) -> None:
        # Once a second: traffic samples for the sparklines and the reconnect countdowns.
        if self.core is None or self.in_shell or not self.is_running:
            return
        now = time.monotonic()
        for name, tunnel in list(self.core.tunnels.items()):
            if tunnel.running:
                self.live.sample(name, tunnel.bytes_up, tunnel.bytes_down, now)
        hosts = set(self.live.retry_at) | self.hosts_pane.take_stale()
        tunnels = set(self.running_tunnels()) | self.tunnels_pane.take_stale()
        self.refresh_panes(hosts=hosts, tunnels=tunnels)

    def refresh_panes(
        self,
        full: bool = False,
        hosts: Collection[str] | None = None,
        tunnels: Collection[str] | None = None,
        saved: bool = False,
    ) -> None:
        """Redraw hosts and tunnels from the core's snapshots (only changed cells); `hosts` /
        `tunnels`: only those rows (None: every row); `saved`: after a save or a reload, only
        the rows whose host or tunnel changed in the config are made again."""
        if not self.is_running:
            # Quitting: the panes are being taken down, and a job that ends now (a tunnel
            # stopped, a save) must not reach for a table that is gone (NoMatches at exit).
            return
        if full or hosts is None or hosts:
            self.hosts_pane.refresh_rows(full, only=hosts, saved=saved)
        if full or tunnels is None or tunnels:
            self.tunnels_pane.refresh_rows(full, only=tunnels, saved=saved)
        self.show_status()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Textual's notify, but a message is plain text unless markup=True is asked for:
        messages carry server errors, remote program names and file contents, and as markup
        a `[/]` in them ended the app (MarkupError) and `[reverse]` restyled the toast."""
        if not markup:  # and controls (a server's ANSI, bidi overrides) shown as escapes
            message, title = visible(message, newlines=True), visible(title)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def log_line(self, level: str, text: str) -> None:
        """A line in the Logs pane that is not a core event (what the dashboard did)."""
        if not self.is_running:
            return  # quitting (see refresh_panes); the log file has the core's events
        self.logs_pane.add([LogRecord(time.time(), level, text)])

    def _status_text(self) -> Content:
        hosts = len(self.config.hosts)
        up = len(self.running_tunnels()) if self.core else 0
        counts = (
            f"{hosts} host{'s' if hosts != 1 else ''} · {up}/{len(self.config.tunnels)} tunnels on"
        )
        keys = "[b]?[/] keys · [b]q[/] quit"
        if self._jobs:
            newest = list(self._jobs.values())[-1]
            more = f" (+{len(self._jobs) - 1})" if len(self._jobs) > 1 else ""
            return styled(
                "[b]⟳ $job$more[/] · esc cancels · $counts", job=newest, more=more, counts=counts
            )
        state = "starting… · " if self.core is None else ""
        said, until = self._say
        if said and time.monotonic() < until:
            return styled(f"[b]✓ $said[/] · $counts · {keys}", said=said, counts=counts)
        if self.banner:  # the demo: its next step first, the counts are in the panes
            return styled(f"$banner · $state{keys}", banner=self.banner, state=state)
        where = display_path(self.config.path)
        return styled(f"$where · $state$counts · {keys}", where=where, state=state, counts=counts)

    # -- jobs (workers) ---------------------------------------------------------------------------
    def job(self, work: Awaitable[Any], description: str, *, group: str = "default") -> Worker[Any]:
        """Run `work` as a worker shown in the status bar; its errors become notifications."""
        worker: Worker[Any] = self.run_worker(
            work, name=description, group=group, description=description, exit_on_error=False
        )
        self._jobs[worker] = description
        self.show_status()
        return worker

    def if_yes(self, then: Callable[[], object]) -> Callable[[object], None]:
        """A dialog's callback that runs `then` when the answer was yes."""

        def answered(answer: object) -> None:
            if answer:
                then()

        return answered

    def jobs_in(self, group: str) -> list[Worker[Any]]:
        """The running jobs of `group` ("host:NAME", "fleet", "config" ...)."""
        return [w for w in self._jobs if w.group == group and w.is_running]

    def job_says(self, worker: Worker[Any], description: str) -> None:
        """What a running job says on the top line now ("testing hosts 3/20")."""
        if worker in self._jobs:
            self._jobs[worker] = description
            self.show_status()

    def pending_lines(self, source: str) -> PendingLines:
        """Where a remote source's lines wait for the next flush (made on first use)."""
        return self._source_pending.setdefault(source, PendingLines())

    def mark_dirty(self) -> None:
        """Something new waits to be drawn: the next flush draws it."""
        self._dirty = True

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self._jobs.pop(worker, None)
            self.show_status()
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
        from sshcore.api import UnexpectedError

        event = UnexpectedError(where, detail, trace)
        if self.core is not None:
            self.core.bus.publish(event)  # to the log file (with the traceback) and the pane
        else:
            self.log_line("error", event.message())
        self.notify(event.message(), severity="error", timeout=10)

    # -- shared by the actions -----------------------------------------------------------------
    def said(self, lines: Iterable[str]) -> None:
        """What an action did: every line to the Logs pane; notes (what was changed to a safer
        value, what could not be kept) as a notification, a plain success on the top line."""
        lines = list(lines)
        for line in lines:
            self.log_line("warning" if line.startswith("note:") else "info", line)
        if any(line.startswith("note:") for line in lines):
            self.notify("\n".join(lines[:6]), timeout=8)
        elif lines:
            more = f" (+{len(lines) - 1} in Logs)" if len(lines) > 1 else ""
            self.say(lines[0] + more)

    def say(self, text: str, seconds: float = 6.0) -> None:
        """A passing word on the top line (saved, reloaded): where the eyes go after a key,
        and cheap. A notification lays the whole screen out again as it comes and goes: with
        500 hosts that held key presses ~100 ms each time (bench/dashboard.py load, saves)."""
        self._say = (text, time.monotonic() + seconds)
        self.show_status()
        self.set_timer(seconds + 0.05, self.show_status)

    def show_status(self) -> None:
        """Redraw the top line (jobs, counts) when its text changed; it is one row, so no new
        layout of the screen is needed."""
        if not self.is_running:
            return  # quitting (see refresh_panes)
        text = self._status_text()
        if text != self._status_shown:
            self._status_shown = text
            self.query_one(StatusBar).update(text, layout=False)

    async def after_save(self, work: Awaitable[Any], message: str) -> None:
        await work
        self.note_saved()
        self.say(message)
        self.log_line("info", message)
        self.refresh_panes(saved=True)

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
            self.say("config changed on disk: reloaded")
            await self._follow_config()
            self.refresh_panes(saved=True)

    async def _follow_config(self) -> None:
        """Running tunnels follow a hand edit: removed ones stop, changed ones restart."""
        if self.core is None:
            return
        specs = self.tunnel_specs()
        for name in self.running_tunnels():
            spec = specs.get(name)
            if spec is None:
                await self.core.stop_tunnel(name)
                self.log_line("info", f"tunnel {name} is no longer in the config: stopped")
            elif spec != self.core.tunnels[name].spec:
                await self.core.restart_tunnel(name)
                self.log_line("info", f"tunnel {name} changed in the config: restarted")

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
        from .screens.help import HelpScreen

        self.push_screen(HelpScreen(self))

    async def action_quit(self) -> None:
        from .screens.dialogs import ConfirmScreen

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
