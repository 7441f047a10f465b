"""The facade the CLI and the dashboard hold: config + sessions + tunnels + events."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from . import asyncssh_tuning, discovery, follow, hostkeys, keys, shell
from .atomic import read_file
from .config import Config, log_file_path
from .discovery import ListeningPort
from .errors import DevtuiError
from .events import (
    AsyncsshStock,
    Event,
    EventBus,
    FileLog,
    HostConnected,
    HostDisconnected,
    TunnelTraffic,
    Woke,
)
from .keys import KEY_FILE_LIMIT, is_encrypted
from .model import HostSpec, TunnelSpec
from .port_watch import PortWatch
from .prompts import NoPrompts, Prompts, TakingTurns
from .remote_commands import KIB, OutputCallback, RemoteCommandError, run_bounded
from .remote_shell import _RUN_WRAPPER as _RUN_WRAPPER
from .remote_shell import POSIX_ANSWER, POSIX_PROBE, non_posix_command, posix_command
from .session import AuthError, ConnectError, HostSession, HostState, HostStatus
from .shell import Terminal
from .tunnels import Tunnel, TunnelStatus
from .visible_text import visible
from .wake import CHECK_TIMEOUT, WakeWatch

TRAFFIC_INTERVAL = 0.5  # seconds between traffic events: a few a second, never per packet

RUN_STOP_TIMEOUT = 3.0  # seconds a cancelled run waits for the host to confirm the end
# The probe and the ping answer in a line at most; a host that says more, or never ends, is
# cut off (a hostile server must not fill memory or hang `hosts test`).
PROBE_LIMIT = 4 * KIB
PROBE_TIMEOUT = 15.0
PING_TIMEOUT = 15.0


class _OutputFailed(Exception):
    """Core.run's output callback raised; its error goes back to the caller as it was."""


class PassphraseNeeded(AuthError):
    """A passphrase-protected key was needed and nobody gave the passphrase."""


@dataclass(frozen=True)
class KeyInstall:
    """What installing a key did: the host-side result, and whether a key-only login worked."""

    result: keys.InstallResult
    verified: bool | None


class Core:
    """Owns the config, one HostSession per host and one Tunnel per started tunnel."""

    def __init__(
        self,
        config: Config,
        prompts: Prompts | None = None,
        *,
        interactive: bool = True,
        log_file: Path | bool | None = True,
        discover: bool = True,
    ) -> None:
        self.config = config
        # One question at a time, whichever front end asks them (see TakingTurns).
        self.prompts: Prompts = TakingTurns(prompts or NoPrompts())
        self.interactive = interactive
        self.bus = EventBus()
        self.sessions: dict[str, HostSession] = {}
        self.tunnels: dict[str, Tunnel] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._last_traffic: dict[str, tuple[int, int, int]] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._watch_auto: dict[str, bool] = {}
        self._posix: dict[str, tuple[asyncssh.SSHClientConnection, bool]] = {}
        # Started with the first session: after a sleep, every connection is checked at once.
        self._wake = WakeWatch(self._woke)
        self._checks: set[asyncio.Task[bool]] = set()
        # discover: watch every connected host's ports (settings.discover_interval); the
        # one-shot commands (run, logs, shell, hosts test) have no use for it.
        self.discover = discover
        self._ports = PortWatch(self)
        self.bus.subscribe(self._ports.on_event)
        self.bus.subscribe(self._watch_connected)
        if log_file is True:
            log_file = log_file_path(config.settings)
        self._file_log: FileLog | None = None
        if isinstance(log_file, Path):
            with contextlib.suppress(OSError):  # an unwritable log dir must not stop the app
                self._file_log = FileLog(log_file)
                self.bus.subscribe(self._file_log)
        self.log_file = log_file if isinstance(log_file, Path) else None
        if not asyncssh_tuning.fastpath_applied():  # one line: why asyncssh runs stock here
            self.bus.publish(AsyncsshStock(asyncssh_tuning.status()))

    async def __aenter__(self) -> Core:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- events ---------------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call `callback(event)` for every event; returns the unsubscribe function."""
        return self.bus.subscribe(callback)

    def events(self) -> AsyncIterator[Event]:
        """Iterate events as they happen."""
        return self.bus.stream()

    # -- hosts ----------------------------------------------------------------------------------
    def _host_spec(self, name: str) -> HostSpec:
        spec = self.config.hosts.get(name)
        if spec is None:
            raise DevtuiError(f"no host named {name!r} (see: devtui hosts list)")
        return spec

    def session(self, name: str) -> HostSession:
        """The shared session of host `name` (created on first use, not yet connected)."""
        spec = self._host_spec(name)
        session = self.sessions.get(name)
        jump = self.session(spec.jump) if spec.jump else None
        # An edited host (or jump host) takes effect on its next connect: a live session
        # keeps what it was started with.
        stale = session is not None and (session.spec != spec or session.jump is not jump)
        if session is None or (stale and session.state == HostState.IDLE):
            session = HostSession(
                spec,
                self.config.settings,
                self.prompts,
                self.bus,
                jump=jump,
                interactive=self.interactive,
            )
            self.sessions[name] = session
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to watch yet
                self._wake.start()
        return session

    def host_state(self, name: str) -> HostStatus:
        """Snapshot of a host's connection."""
        return self.session(name).status()

    async def connection(self, name: str) -> asyncssh.SSHClientConnection:
        """The host's live shared connection (connecting if needed)."""
        return await self.session(name).connection()

    async def connect(self, name: str) -> HostStatus:
        """Connect host `name`; raises ConnectError with the reason."""
        await self.connection(name)
        return self.host_state(name)

    async def disconnect(self, name: str) -> None:
        """Stop the host's tunnels and close its connection."""
        if self._watch_auto.get(name):
            await self.unwatch_ports(name)  # it must not connect the host again
        for tunnel in list(self.tunnels.values()):
            if tunnel.spec.host == name:
                await tunnel.stop()
        session = self.sessions.get(name)
        if session is not None:
            await session.close()

    def check_connections(self, timeout: float = CHECK_TIMEOUT) -> list[asyncio.Task[bool]]:
        """Check every session now: a live connection must answer within `timeout` or it is
        dropped and reconnected; one waiting to retry tries at once. Returns the checks."""
        checks = []
        for session in list(self.sessions.values()):
            if session.state in (HostState.IDLE, HostState.FAILED):  # nothing to check
                continue
            task = asyncio.create_task(session.check_alive(timeout), name="check-alive")
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)
            checks.append(task)
        return checks

    def _woke(self, seconds: float) -> None:
        checks = self.check_connections()
        self.bus.publish(Woke(seconds, len(checks)))

    # Config edits run in a thread: a save may wait up to lock_timeout for another devtui,
    # and the event loop (keepalives, tunnels, the dashboard) must not wait with it.
    async def add_host(self, spec: HostSpec, tunnels: Sequence[TunnelSpec] = ()) -> None:
        """Save a new host (and tunnels)."""
        await asyncio.to_thread(self.config.add, [spec], tunnels)

    async def update_host(self, name: str, spec: HostSpec) -> None:
        """Save changes to a host; takes effect on its next connect."""
        await asyncio.to_thread(self.config.update_host, name, spec)

    async def remove_host(self, name: str) -> list[str]:
        """Delete a host and its tunnels, then disconnect it; returns the tunnels removed."""
        # Saved first: a refused edit (it is another host's jump host) leaves it connected.
        gone = await asyncio.to_thread(self.config.remove_host, name)
        gone += [t.name for t in self._ports.discovered.values() if t.host == name]
        for tunnel in gone:
            await self.stop_tunnel(tunnel)
            self.tunnels.pop(tunnel, None)
        self._ports.forget(gone)
        await self.disconnect(name)
        self.sessions.pop(name, None)
        return gone

    async def try_login(self, name: str, key_path: Path, passphrase: str | None = None) -> None:
        """Log in to host `name` with only `key_path` (no agent, no password); raises AuthError.

        A passphrase-protected key is unlocked with `passphrase` or by asking the prompts.
        """
        spec = self._host_spec(name)
        session = self.session(name)
        key = session.unlocked.get(hostkeys.expand(str(key_path)).absolute())
        if key is None:  # not unlocked during this run: read it (asking for a passphrase)
            key = await self._read_key(key_path, passphrase)
        probe = HostSession(
            spec,
            self.config.settings,
            self.prompts,
            self.bus,
            jump=session.jump,
            interactive=False,
            only_keys=[key],
        )
        try:
            await probe.connection()
        except ConnectError as e:
            raise AuthError(f"login with {key_path} failed: {e}") from None
        finally:
            await probe.close()

    async def install_key(self, name: str, key_path: Path) -> KeyInstall:
        """ssh-copy-id for every OS: add the key to host `name`, then prove it logs in alone."""
        info = await asyncio.to_thread(keys.inspect_key, key_path)
        if info.public_line is None:
            raise DevtuiError(f"{key_path}: {info.problem or 'no public key'}")
        result = await keys.install_public_key(await self.connection(name), info.public_line)
        verified: bool | None = None  # None: not tested (no private key, or no passphrase)
        if info.has_private:
            try:
                await self.try_login(name, key_path)
                verified = True
            except PassphraseNeeded:
                verified = None
        return KeyInstall(result, verified)

    async def _read_key(self, key_path: Path, passphrase: str | None) -> asyncssh.SSHKey:
        try:
            data = await asyncio.to_thread(read_file, key_path, KEY_FILE_LIMIT)
        except OSError as e:
            raise AuthError(f"cannot read {key_path}: {e.strerror or e}") from None
        if passphrase is None and is_encrypted(data):
            passphrase = await self.prompts.passphrase(str(key_path))
            if passphrase is None:
                raise PassphraseNeeded(f"{key_path} needs its passphrase to test the login")
        try:
            return await asyncio.to_thread(asyncssh.import_private_key, data, passphrase)
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, ValueError) as e:
            raise AuthError(f"cannot open {key_path}: {e}") from None

    # -- commands -------------------------------------------------------------------------------
    async def run(
        self, name: str, argv: Sequence[str] | str, on_output: OutputCallback | None = None
    ) -> int:
        """Run a command on host `name`, streaming ("stdout"|"stderr", bytes); returns its status.

        A list runs exactly as given (each word one argument); a string is a shell line for
        the user's login shell, as `ssh host 'LINE'` runs it. Cancelling the call (Ctrl+C,
        closing a follow view) ends the remote command too.
        """
        words = [argv] if isinstance(argv, str) else argv
        if any("\0" in word for word in words):
            raise DevtuiError("a command word cannot hold a NUL character")
        conn = await self.connection(name)
        try:
            if await self.is_posix(name, conn):
                if isinstance(argv, str):
                    argv = ["sh", "-c", 'exec "${SHELL:-/bin/sh}" -c "$1"', "sh", argv]
                # Encoded: every word arrives as one argument, whatever the login shell.
                command = posix_command(argv)
            else:  # e.g. a Windows OpenSSH server: no sh, so no clean stop on cancel either
                command = argv if isinstance(argv, str) else non_posix_command(name, argv)
            return await self._run(conn, command, on_output)
        except _OutputFailed as e:  # the caller's own error (a closed pipe), not the link's
            assert e.__cause__ is not None
            raise e.__cause__ from None
        except (asyncssh.Error, OSError) as e:  # the link died mid-run, or the host refused
            raise DevtuiError(visible(f"{name}: the command did not finish: {e}")) from None

    async def is_posix(self, name: str, conn: asyncssh.SSHClientConnection) -> bool:
        """Whether the host has a POSIX sh (asked once per connection)."""
        known = self._posix.get(name)
        if known is not None and known[0] is conn:
            return known[1]
        result = await run_bounded(
            conn, POSIX_PROBE, limit=PROBE_LIMIT, timeout=PROBE_TIMEOUT, what="the POSIX sh check"
        )
        if result.exit_status is None:  # the channel ended with no status: no verdict
            raise DevtuiError(f"{name}: the POSIX sh check got no answer (the link dropped?)")
        posix = result.exit_status == 0 and result.stdout == POSIX_ANSWER
        self._posix[name] = (conn, posix)
        return posix

    async def _run(
        self,
        conn: asyncssh.SSHClientConnection,
        command: str,
        on_output: OutputCallback | None,
    ) -> int:
        process = await conn.create_process(command, encoding=None)

        async def pump(stream: asyncssh.SSHReader[bytes], label: str) -> None:
            while chunk := await stream.read(65536):
                if on_output is not None:
                    try:
                        on_output(label, chunk)
                    except Exception as e:
                        raise _OutputFailed from e

        try:
            await asyncio.gather(pump(process.stdout, "stdout"), pump(process.stderr, "stderr"))
            result = await process.wait()
        except asyncio.CancelledError:
            with contextlib.suppress(OSError, asyncssh.Error):
                process.stdin.write_eof()  # the wrapper stops the command
            with contextlib.suppress(asyncio.TimeoutError, OSError, asyncssh.Error):
                await asyncio.wait_for(process.wait_closed(), RUN_STOP_TIMEOUT)
            raise
        finally:
            process.close()
        return result.exit_status if result.exit_status is not None else 255

    async def listening_ports(self, name: str) -> list[ListeningPort]:
        """The TCP ports the remote `name` listens on; DevtuiError says why not."""
        conn = await self.connection(name)
        try:
            return await discovery.listening_ports(conn)
        except asyncssh.ChannelOpenError as e:  # the host will not run it: say so, every time
            raise RemoteCommandError(visible(f"the host refused the port listing: {e}")) from None
        except (asyncssh.Error, OSError) as e:  # the link went down meanwhile
            raise DevtuiError(visible(f"the port listing did not finish: {e}")) from None

    def watch_ports(self, name: str, interval: float = 5.0, *, auto: bool = False) -> None:
        """Publish RemotePortOpened / RemotePortClosed as the remote's ports come and go.

        `auto`: the watch that a connect starts; it ends with the connection and never
        reconnects the host itself. An explicit watch replaces it (with its interval).
        """
        task = self._watchers.get(name)
        if task is not None and not task.done():
            if auto or self._watch_auto.get(name) is False:
                return
            task.cancel()
        self._watch_auto[name] = auto
        self._watchers[name] = asyncio.create_task(
            self._ports.watch(name, interval, auto), name=f"ports:{name}"
        )

    async def unwatch_ports(self, name: str) -> None:
        """Stop watching the remote's ports."""
        task = self._watchers.pop(name, None)
        self._watch_auto.pop(name, None)
        if task is not None:
            # Python 3.11's wait_for can swallow a cancel that lands as its timeout fires (the
            # watcher sleeps in one between looks): cancel again until the task has ended,
            # or close() would wait forever.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.5)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()

    def _watch_connected(self, event: Event) -> None:
        # Runs inside the session's publish: look once it has settled in its new state.
        if isinstance(event, HostConnected) and self.discover:
            asyncio.get_running_loop().call_soon(self._start_auto_watch, event.host)
        elif isinstance(event, HostDisconnected) and self._watch_auto.get(event.host):
            task = self._watchers.pop(event.host, None)
            self._watch_auto.pop(event.host, None)
            if task is not None:
                task.cancel()

    def _start_auto_watch(self, name: str) -> None:
        interval = self.config.settings.discover_interval
        session = self.sessions.get(name)
        # A probe session (try_login) publishes HostConnected too: only the shared one counts.
        if interval <= 0 or name in self._ports.unsupported or session is None:
            return
        if session.state == HostState.CONNECTED:
            self.watch_ports(name, interval, auto=True)

    def discovered_ports(self, host: str) -> list[ListeningPort]:
        """The remote's listening ports as the last look saw them (empty if not watched)."""
        return list(self._ports.ports.get(host, []))

    def offers(self, host: str) -> list[ListeningPort]:
        """Discovered ports worth a tunnel: not ignored, not forwarded by a tunnel of `host`."""
        return self._ports.offers(host)

    async def forward_port(self, host: str, port: int) -> tuple[TunnelSpec, str | None]:
        """Forward the remote's `port` (an offer) now, as an unsaved local tunnel to the same
        port here, or the next free one ("7860 is busy (held by X): forwarded to 7861")."""
        return await self._ports.forward_port(host, port)

    async def save_tunnel(self, name: str) -> None:
        """Write a discovered tunnel to the config (it is marked discovered until then)."""
        await self._ports.save_tunnel(name)

    async def retarget_tunnel(self, name: str, port: int) -> TunnelStatus:
        """Point a tunnel at another remote port; saved if it is saved, only it restarted."""
        return await self._ports.retarget_tunnel(name, port)

    def moved_target(self, name: str) -> int | None:
        """The port tunnel `name`'s program listens on now, when its target refuses."""
        return self._ports.moved.get(name)

    def remote_closed(self, name: str) -> bool:
        """Whether tunnel `name`'s program on the remote stopped listening (it may return)."""
        return name in self._ports.remote_closed

    async def follow(
        self,
        host: str,
        source: str,
        on_line: Callable[[str], None],
        lines: int = 10,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        """Stream a remote log line by line until cancelled: `source` is an absolute path
        (followed like tail -F: through rotation, and resumed after a reconnect without
        lines lost or repeated where the file allows) or "cmd:COMMAND" (its output).
        `lines`: how many existing lines to show first. `on_notice`: what to tell the user
        (waiting for the file, resuming after a drop)."""
        await follow.follow(self, host, source, on_line, lines, on_notice)

    async def shell(self, host: str, terminal: Terminal, command: str | None = None) -> int:
        """An interactive shell (or `command`) on `host` in a PTY sized to `terminal`, over
        the shared connection (no second login); returns its exit status. Tunnels keep
        running meanwhile."""
        conn = await self.connection(host)
        try:
            return await shell.interactive(conn, terminal, command)
        except (asyncssh.Error, OSError) as e:
            raise DevtuiError(visible(f"{host}: the shell ended: {e}")) from None

    def tunnel_specs(self) -> dict[str, TunnelSpec]:
        """Every tunnel: the saved ones, then those made from offers (discovered=True)."""
        return {**self.config.tunnels, **self._ports.discovered}

    async def ping(self, name: str) -> float:
        """Round trip of a no-op command on the shared connection, in milliseconds."""
        conn = await self.connection(name)
        start = time.monotonic()
        try:
            await run_bounded(
                conn, "exit 0", limit=PROBE_LIMIT, timeout=PING_TIMEOUT, what="the no-op command"
            )
        except (asyncssh.Error, OSError) as e:
            raise DevtuiError(visible(f"the no-op command failed: {e}")) from None
        return (time.monotonic() - start) * 1000

    # -- tunnels --------------------------------------------------------------------------------
    def _tunnel(self, name: str) -> Tunnel:
        spec = self._ports.spec(name)  # saved, or made from an offer
        if spec is None:
            raise DevtuiError(f"no tunnel named {name!r} (see: devtui tunnels list)")
        tunnel = self.tunnels.get(name)
        session = self.session(spec.host)
        if tunnel is None or (
            not tunnel.running and (tunnel.spec != spec or tunnel.session is not session)
        ):
            tunnel = Tunnel(spec, session, self.bus)
            self.tunnels[name] = tunnel
        return tunnel

    def tunnel_state(self, name: str) -> TunnelStatus:
        """Snapshot of a tunnel: state, connections, bytes, last error."""
        return self._tunnel(name).status()

    async def start_tunnel(self, name: str) -> TunnelStatus:
        """Start one tunnel (binds now; comes up when its host connects). Others are untouched."""
        tunnel = self._tunnel(name)
        await tunnel.start()
        self._ensure_ticker()
        return tunnel.status()

    async def stop_tunnel(self, name: str) -> None:
        """Stop one tunnel; its host stays connected for the others."""
        tunnel = self.tunnels.get(name)
        if tunnel is not None:
            await tunnel.stop()

    async def restart_tunnel(self, name: str) -> TunnelStatus:
        """Stop and start one tunnel (picking up config changes)."""
        await self.stop_tunnel(name)
        self.tunnels.pop(name, None)
        return await self.start_tunnel(name)

    async def add_tunnel(self, spec: TunnelSpec) -> None:
        """Save a new tunnel on a saved host (it is not started)."""
        await asyncio.to_thread(self.config.add_tunnel, spec)

    async def update_tunnel(self, name: str, spec: TunnelSpec) -> TunnelStatus:
        """Save changes to a tunnel; if it runs, it restarts with them. Others are untouched."""
        await asyncio.to_thread(self.config.update_tunnel, name, spec)
        tunnel = self.tunnels.get(name)
        if tunnel is not None and tunnel.running:
            return await self.restart_tunnel(name)
        return self.tunnel_state(name)

    async def remove_tunnel(self, name: str) -> None:
        """Stop and delete one tunnel."""
        # Saved first: a refused edit leaves the tunnel running.
        if name not in self._ports.discovered:  # one made from an offer was never saved
            await asyncio.to_thread(self.config.remove_tunnel, name)
        await self.stop_tunnel(name)
        self.tunnels.pop(name, None)
        self._last_traffic.pop(name, None)
        self._ports.forget([name])

    def default_tunnels(self) -> list[str]:
        """What `devtui up` starts with no names: autostart tunnels, or all if none are marked."""
        auto = [t.name for t in self.config.tunnels.values() if t.autostart]
        return auto or list(self.config.tunnels)

    def _ensure_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.create_task(self._traffic_ticker(), name="traffic")

    async def _traffic_ticker(self) -> None:
        while True:
            await asyncio.sleep(TRAFFIC_INTERVAL)
            for name, tunnel in list(self.tunnels.items()):
                now = (len(tunnel.pairs), tunnel.bytes_up, tunnel.bytes_down)
                if self._last_traffic.get(name, (0, 0, 0)) != now:
                    self._last_traffic[name] = now
                    self.bus.publish(TunnelTraffic(name, *now))

    # -- shutdown -------------------------------------------------------------------------------
    async def close(self) -> None:
        """Stop every tunnel, close every connection, end every task."""
        await self._wake.stop()
        for check in list(self._checks):
            check.cancel()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for name in list(self._watchers):
            await self.unwatch_ports(name)
        for tunnel in list(self.tunnels.values()):
            await tunnel.stop()
        # Hosts that others jump through close last.
        for session in sorted(self.sessions.values(), key=lambda s: s.jump is None):
            await session.close()
        if self._file_log is not None:
            self._file_log.close()
