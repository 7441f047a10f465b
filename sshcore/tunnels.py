"""Local (-L), remote (-R) and dynamic SOCKS (-D) forwards on a shared HostSession.

Bytes are pumped at the protocol level (no streams) with flow control both ways, the
same way asyncssh's own forwarders do, plus per-tunnel counters and a "target refused"
report, which asyncssh's forward_local_port / forward_socks have no hook for. A local listener is
bound once at start and kept while the host reconnects, so the port stays ours.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import errno
import functools
import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import asyncssh

from .events import (
    EventBus,
    TargetAnswered,
    TargetRefused,
    TunnelConnectionClosed,
    TunnelConnectionOpened,
    TunnelFailed,
    TunnelStarted,
    TunnelStopped,
    TunnelWaiting,
)
from .model import LOOPBACK, PERMIT_PUBLIC, Endpoint, TunnelSpec, is_public_address, permitted
from .ports import busy_message, free_port_near, is_addr_in_use, open_listener
from .session import ConnectError, HostSession, HostState, backoff_delay
from .socks import SocksError, SocksHandshake, SocksRequest
from .visible_text import visible


class TunnelState(str, enum.Enum):
    """Where a tunnel is."""

    STOPPED = "stopped"
    STARTING = "starting"
    UP = "up"
    FAILED = "failed"
    WAITING = "waiting for host"


@dataclass(frozen=True)
class TunnelStatus:
    """A snapshot of a tunnel for display."""

    name: str
    state: TunnelState
    connections: int
    bytes_up: int
    bytes_down: int
    error: str | None
    # When (wall clock) the target first refused, while it still does (a connection or the
    # probe found nothing listening); None while it answers or nobody has tried.
    target_down_since: float | None = None


# While a tunnel carries no connection, its target is checked this often (a channel opened
# and closed), so that a dead target shows before the user clicks a dead link.
PROBE_INTERVAL = 30.0


class TunnelError(ConnectError):
    """A tunnel cannot start (busy port, bad address)."""


# ---------------------------------------------------------------------------------------------
# The two halves of one forwarded connection


class _ChannelSide(asyncssh.SSHTCPSession[bytes]):
    """The SSH channel end: what the remote sends goes to the local socket."""

    def __init__(self, pair: _Pair, resume_target: bool = False) -> None:
        self._pair = pair
        self._resume_target = resume_target

    def connection_made(self, chan: asyncssh.SSHTCPChannel[bytes]) -> None:
        pair = self._pair
        pair.chan = chan
        if pair.closed:  # the other end went away while the channel was opening
            chan.close()
        elif self._resume_target and pair.transport is not None:
            pair.transport.resume_reading()  # remote forward: the target may talk now

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        pair = self._pair
        pair.tunnel.bytes_down += len(data)
        pair.bytes_down += len(data)
        if pair.transport is not None:
            pair.transport.write(data)

    def eof_received(self) -> bool:
        transport = self._pair.transport
        if transport is not None and transport.can_write_eof():
            try:
                transport.write_eof()
            except OSError:
                # The local peer already reset: end this pair only. An exception escaping
                # here would take down the whole SSH connection and every tunnel on it.
                self._pair.close()
                return False
            self._pair.eof_seen(down=True)
            return True  # keep the channel half-open, like OpenSSH
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._pair.close()

    def pause_writing(self) -> None:
        if self._pair.transport is not None:
            self._pair.transport.pause_reading()

    def resume_writing(self) -> None:
        if self._pair.transport is not None:
            self._pair.transport.resume_reading()


class _Pair:
    """One forwarded connection: a local socket and an SSH channel, and their counters."""

    def __init__(self, tunnel: Tunnel, peer: str) -> None:
        self.tunnel = tunnel
        self.peer = peer
        self.transport: asyncio.Transport | None = None
        self.chan: asyncssh.SSHTCPChannel[bytes] | None = None
        self.bytes_up = 0
        self.bytes_down = 0
        self.closed = False
        self._eof_up = False  # the local side said it is done sending
        self._eof_down = False  # the remote side said it is done sending
        tunnel.pairs.add(self)

    def eof_seen(self, *, up: bool = False, down: bool = False) -> None:
        """One direction ended; when both have, the connection is over (as OpenSSH's client
        closes a channel once EOF went both ways). Servers that wait for us to close it
        (asyncssh's own forwarder) would otherwise keep the pair open forever."""
        self._eof_up = self._eof_up or up
        self._eof_down = self._eof_down or down
        if self._eof_up and self._eof_down:
            # Both closes flush what is queued before they shut the stream.
            self.close()

    def send_up(self, data: bytes) -> None:
        self.tunnel.bytes_up += len(data)
        self.bytes_up += len(data)
        assert self.chan is not None
        self.chan.write(data)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.tunnel.pairs.discard(self)
        if self.chan is not None:
            self.chan.close()
        if self.transport is not None:
            self.transport.close()
        self.tunnel.connection_closed(self)


class _SocketSide(asyncio.Protocol):
    """The plain-socket end of a pair: EOF, close and flow control go to the channel."""

    pair: _Pair | None

    def eof_received(self) -> bool:
        if self.pair is not None and self.pair.chan is not None:
            self.pair.chan.write_eof()
            self.pair.eof_seen(up=True)
            return True  # half-close: the other direction keeps flowing
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pair is not None:
            self.pair.transport = None
            self.pair.close()

    def pause_writing(self) -> None:
        if self.pair is not None and self.pair.chan is not None:
            self.pair.chan.pause_reading()

    def resume_writing(self) -> None:
        if self.pair is not None and self.pair.chan is not None:
            self.pair.chan.resume_reading()


class _LocalSide(_SocketSide):
    """A connection accepted on a local (or SOCKS) listener."""

    def __init__(self, tunnel: Tunnel) -> None:
        self.tunnel = tunnel
        self.pair: _Pair | None = None
        self.socks = SocksHandshake() if tunnel.spec.kind == "dynamic" else None
        self.early: list[bytes] = []
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport
        peer = transport.get_extra_info("peername")
        self.pair = _Pair(self.tunnel, f"{peer[0]}:{peer[1]}" if peer else "?")
        self.pair.transport = transport
        if self.socks is None:
            transport.pause_reading()  # nothing to read until the channel is open
            target = self.tunnel.spec.target
            assert target is not None
            self._open(target.address, target.port, None)

    def _open(self, host: str, port: int, request: SocksRequest | None) -> None:
        self.task = asyncio.create_task(self._connect(host, port, request))
        self.tunnel.tasks.add(self.task)
        self.task.add_done_callback(self.tunnel.tasks.discard)

    async def _connect(self, host: str, port: int, request: SocksRequest | None) -> None:
        pair = self.pair
        assert pair is not None and pair.transport is not None
        tunnel = self.tunnel
        try:
            conn = tunnel.session.conn
            if conn is None or tunnel.session.state != HostState.CONNECTED:
                conn = await asyncio.wait_for(
                    tunnel.session.wait_connected(), tunnel.session.settings.connect_timeout
                )
            await conn.create_connection(lambda: _ChannelSide(pair), host, port)
        except asyncssh.ChannelOpenError as e:
            tunnel.target_refused(f"{host}:{port}", e.reason)
            self._fail(request, refused=True)
            return
        except (ConnectError, asyncio.TimeoutError, OSError, asyncssh.Error):
            self._fail(request, refused=False)
            return
        if pair.closed or pair.transport is None:
            pair.close()
            return
        tunnel.connection_opened(pair, f"{host}:{port}")
        if request is not None:
            pair.transport.write(request.success())
        for data in self.early:
            pair.send_up(data)
        self.early.clear()
        pair.transport.resume_reading()

    def _fail(self, request: SocksRequest | None, refused: bool) -> None:
        pair = self.pair
        assert pair is not None
        if request is not None and pair.transport is not None:
            pair.transport.write(request.failure(refused=refused))
        pair.close()

    def data_received(self, data: bytes) -> None:
        pair = self.pair
        assert pair is not None and pair.transport is not None
        if pair.chan is not None:
            pair.send_up(data)
            return
        if self.socks is None or self.socks.request is not None:
            self.early.append(data)
            return
        try:
            reply = self.socks.feed(data)
        except SocksError as e:
            pair.transport.write(e.reply)
            pair.close()
            return
        if reply:
            pair.transport.write(reply)
        request = self.socks.request
        if request is not None:
            if self.socks.rest:
                self.early.append(self.socks.rest)
            pair.transport.pause_reading()
            self._open(request.host, request.port, request)


class _TargetSide(_SocketSide):
    """For remote forwards: the local connection to the target."""

    def __init__(self, pair: _Pair) -> None:
        self.pair: _Pair | None = pair

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport
        assert self.pair is not None
        self.pair.transport = transport
        # Nothing may be read before the SSH channel exists (a banner would be lost):
        # _ChannelSide.connection_made resumes reading.
        transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        if self.pair is not None and self.pair.chan is not None:
            self.pair.send_up(data)


class _ReverseSocksSide(_ChannelSide):
    """A reverse SOCKS proxy's channel (ssh -R [bind:]port, no target): a client on the
    remote connected to the remote listener; it speaks SOCKS4/4a/5 over the channel, and the
    destination it names is opened from this machine. Counters as for every remote tunnel:
    down is what the remote client sends (to the local destination), up what the
    destination answers; the SOCKS handshake itself is not counted (as with -D)."""

    def __init__(self, pair: _Pair) -> None:
        super().__init__(pair)
        self.socks = SocksHandshake()
        self.early: list[bytes] = []  # payload that came with or after the request
        self.eof_early = False  # the client ended its side before the destination answered
        # Set once the destination is connected AND what came early has gone to it. The
        # target's transport exists a few loop turns before that: an EOF taken as
        # "connected" then was written ahead of the early data (which then failed).
        self.forwarding = False

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        pair = self._pair
        if self.forwarding:
            super().data_received(data, datatype)
            return
        if pair.closed or pair.chan is None:
            return
        if self.socks.request is not None:  # still connecting: keep it for the destination
            self.early.append(data)
            return
        try:
            reply = self.socks.feed(data)
        except SocksError as e:
            if e.reply:
                pair.chan.write(e.reply)
            pair.close()
            return
        if reply:
            pair.chan.write(reply)
        request = self.socks.request
        if request is not None:
            if self.socks.rest:
                self.early.append(self.socks.rest)
            pair.chan.pause_reading()  # nothing more until the destination answers
            tunnel = pair.tunnel
            task = asyncio.create_task(self._connect(request))
            tunnel.tasks.add(task)
            task.add_done_callback(tunnel.tasks.discard)

    async def _connect(self, request: SocksRequest) -> None:
        pair = self._pair
        tunnel = pair.tunnel
        # The destination is the remote client's words: shown only as visible text.
        where = visible(str(Endpoint(request.host, request.port)))
        # Whoever can use the proxy on the remote chooses the destination: only what the
        # tunnel's permit_open allows (by default, addresses on the internet).
        verdict = permitted(tunnel.spec.permits, request.host, request.port)
        allow = is_public_address if verdict == PERMIT_PUBLIC else None
        try:
            if verdict is None:
                raise PermissionError(errno.EACCES, "not allowed by the tunnel's permit_open")
            await asyncio.wait_for(
                open_from_here(lambda: _TargetSide(pair), request.host, request.port, allow),
                tunnel.session.settings.connect_timeout,
            )
        except (OSError, asyncio.TimeoutError, ValueError) as e:
            # ValueError: a name no resolver takes (a NUL in it, a label too long for IDNA).
            refused, detail = connect_failure(e)
            allowed = not isinstance(e, PermissionError)
            tunnel.target_refused(where, detail, blocked=not allowed)
            if pair.chan is not None and not pair.closed:
                pair.chan.write(request.failure(refused=refused, allowed=allowed))
            pair.close()  # the channel sends what it holds, then closes
            return
        transport = pair.transport
        if pair.closed or transport is None or pair.chan is None:
            if transport is not None:
                transport.close()
            pair.close()
            return
        try:
            tunnel.connection_opened(pair, where)
            pair.chan.write(request.success())
            for data in self.early:
                tunnel.bytes_down += len(data)
                pair.bytes_down += len(data)
                transport.write(data)
            self.early.clear()
            self.forwarding = True
            if self.eof_early and transport.can_write_eof():
                transport.write_eof()
                pair.eof_seen(down=True)
            pair.chan.resume_reading()
            transport.resume_reading()  # _TargetSide paused it until the channel could take it
        except (OSError, RuntimeError, asyncssh.Error):
            pair.close()  # whatever went wrong, this connection ends instead of hanging

    def eof_received(self) -> bool:
        if self.forwarding:
            return super().eof_received()
        if self.socks.request is not None:  # connecting: EOF goes on once it is there
            self.eof_early = True
            return True
        return False  # EOF in the middle of the handshake: nothing to forward


# ---------------------------------------------------------------------------------------------


class Tunnel:
    """One configured forward, running on its host's shared session."""

    def __init__(self, spec: TunnelSpec, session: HostSession, bus: EventBus) -> None:
        self.spec = spec
        self.session = session
        self.bus = bus
        self.state = TunnelState.STOPPED
        self.error: str | None = None
        self.bytes_up = 0
        self.bytes_down = 0
        self.pairs: set[_Pair] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self._servers: list[asyncio.AbstractServer] = []  # two for "localhost": v4 and v6
        self._remote: asyncssh.SSHListener | None = None
        self._remote_task: asyncio.Task[None] | None = None
        self._unwatch: list[Any] = []
        self._active = False
        self._over_cap = False  # a reverse SOCKS proxy at REVERSE_SOCKS_MAX (said once)
        self.down_since: float | None = None  # see TunnelStatus.target_down_since
        self._prober: asyncio.Task[None] | None = None
        self._probe_soon = asyncio.Event()

    def status(self) -> TunnelStatus:
        """A snapshot for display."""
        return TunnelStatus(
            self.spec.name,
            self.state,
            len(self.pairs),
            self.bytes_up,
            self.bytes_down,
            self.error,
            self.down_since,
        )

    @property
    def running(self) -> bool:
        """True between start() and stop() (also while waiting for its host or retrying)."""
        return self._active

    async def start(self) -> None:
        """Bind (local/dynamic) now, then follow the host: up while connected, waiting otherwise.

        Raises TunnelError if the local port is taken (naming the process that holds it);
        the tunnel then stays startable, e.g. after the user frees the port.
        """
        if self._active:
            return
        self._active = True
        self._set(TunnelState.STARTING)
        if self.spec.kind != "remote":
            try:
                await self._bind()
            except TunnelError as e:
                self._active = False
                self._set(TunnelState.FAILED, str(e))
                self.bus.publish(TunnelFailed(self.spec.name, str(e)))
                raise
            if not self._active:  # stop() ran while we were binding
                self._close_listeners()
                return
        # A tunnel made from a port offer needs no probe: the port watch that found its
        # program listening says when it stops (and a probe of a "remote" that is this very
        # machine would connect to the tunnel's own listener, and so on without end).
        if self.spec.probe and self.spec.target is not None and not self.spec.discovered:
            self._prober = asyncio.create_task(self._probe_loop(), name=f"probe:{self.spec.name}")
        self._unwatch.append(self.session.watch(self._host_changed))
        self.session.keep_connected()
        self._host_changed(self.session.state)

    async def stop(self) -> None:
        """Close the listener and every connection through it."""
        if not self._active:
            return
        self._active = False
        for unwatch in self._unwatch:
            unwatch()
        self._unwatch.clear()
        self._close_listeners()
        await self._close_remote()
        prober, self._prober = self._prober, None
        if prober is not None:
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober
        for pair in list(self.pairs):
            pair.close()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self._set(TunnelState.STOPPED)
        self.bus.publish(TunnelStopped(self.spec.name))

    # -- host state -----------------------------------------------------------------------------
    def _host_changed(self, state: HostState) -> None:
        if not self.running:
            return
        if state == HostState.CONNECTED:
            if self.spec.kind == "remote":
                self._start_remote()
            else:
                self._up()
        elif state == HostState.FAILED:
            reason = f"host {self.spec.host}: {self.session.error}"
            self._set(TunnelState.FAILED, reason)
            self.bus.publish(TunnelFailed(self.spec.name, reason))
        elif self.state != TunnelState.WAITING:
            self._remote = None  # died with the connection
            for pair in list(self.pairs):  # so did every channel; don't leave sockets hanging
                if pair.chan is not None:
                    pair.close()
            why = self.session.error or "connecting"
            self._set(TunnelState.WAITING, why)
            self.bus.publish(TunnelWaiting(self.spec.name, f"host {self.spec.host}: {why}"))

    def _up(self) -> None:
        if self.state != TunnelState.UP:
            self._set(TunnelState.UP)
            self.bus.publish(TunnelStarted(self.spec.name, self.spec.describe()))
        self._probe_soon.set()  # just up: check the target now

    # -- the target probe -----------------------------------------------------------------------
    async def _probe_loop(self) -> None:
        """From start to stop: while up and idle, check the target when the tunnel comes up
        and then every PROBE_INTERVAL."""
        while self.running:
            if self.state == TunnelState.UP and not self.pairs:  # a live connection says more
                await self.probe()
            self._probe_soon.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._probe_soon.wait(), PROBE_INTERVAL)

    async def probe(self) -> bool | None:
        """Open a connection to the target and close it at once: from the remote over the
        SSH connection (local tunnel), or from here (remote tunnel). True: it answers;
        False: it refused (said once, as a refused connection is); None: no verdict (the
        link is down or slow)."""
        target = self.spec.target
        conn = self.session.conn
        if target is None or conn is None or self.session.state != HostState.CONNECTED:
            return None
        timeout = self.session.settings.connect_timeout
        try:
            if self.spec.kind == "local":
                chan, _ = await asyncio.wait_for(
                    conn.create_connection(asyncssh.SSHTCPSession, target.address, target.port),
                    timeout,
                )
                chan.close()
            else:
                transport = await asyncio.wait_for(
                    open_from_here(asyncio.Protocol, target.address, target.port), timeout
                )
                transport.close()
        except asyncssh.ChannelOpenError as e:
            self._refused_by_probe(str(target), e.reason)
            return False
        except (OSError, ValueError) as e:
            self._refused_by_probe(str(target), connect_failure(e)[1])
            return False
        except (asyncio.TimeoutError, asyncssh.Error):
            return None
        self.target_answered(str(target))
        return True

    def _refused_by_probe(self, target: str, detail: str) -> None:
        if self.down_since is None:  # said when it goes down, not every 30 s after
            self.target_refused(target, detail)

    # -- local / dynamic ------------------------------------------------------------------------
    async def _bind(self) -> None:
        listen = self.spec.listen
        addresses = [listen.address]
        if listen.address.lower() == "localhost":
            # A browser tries localhost's ::1 first: if we held only 127.0.0.1, any local
            # user could take [::1]:PORT and catch that traffic. So both, or neither.
            addresses = [LOOPBACK, "::1"]
        socks: list[socket.socket] = []
        try:
            for address in addresses:
                try:
                    socks.append(open_listener(address, listen.port))
                except OSError as e:
                    if address == "::1" and e.errno in _NO_IPV6:
                        continue  # no IPv6 on this machine: nobody can take [::1] either
                    raise TunnelError(await _listen_problem(e, address, listen.port)) from None
        except BaseException:
            for sock in socks:
                sock.close()
            raise
        loop = asyncio.get_running_loop()
        for sock in socks:
            self._servers.append(await loop.create_server(lambda: _LocalSide(self), sock=sock))

    def _close_listeners(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()

    # -- remote ---------------------------------------------------------------------------------
    def _start_remote(self) -> None:
        if self._remote_task is None or self._remote_task.done():
            self._remote_task = asyncio.create_task(self._request_remote())

    async def _request_remote(self) -> None:
        listen = self.spec.listen
        attempt = 0
        while self.running and self.session.state == HostState.CONNECTED:
            conn = self.session.conn
            assert conn is not None
            try:
                self._remote = await conn.create_server(
                    self._remote_session, listen.address, listen.port
                )
            except asyncssh.ChannelListenError as e:
                attempt += 1
                delay = backoff_delay(attempt, self.session.settings.reconnect_max_delay)
                reason = (
                    f"the server refused to listen on {listen} ({e}: forwarding "
                    f"disabled, or the port is taken, maybe by a stale session); "
                    f"retrying in {delay:.0f} s"
                )
                self._set(TunnelState.FAILED, reason)
                self.bus.publish(TunnelFailed(self.spec.name, reason))
                await asyncio.sleep(delay)
                continue
            except (asyncssh.Error, OSError):
                return  # the connection went away; the host watcher takes over
            self._up()
            return

    async def _remote_session(self, orig_host: str, orig_port: int) -> _ChannelSide:
        target = self.spec.target
        if target is None:  # reverse SOCKS: the client names the destination in the channel
            if len(self.pairs) >= REVERSE_SOCKS_MAX:
                # The remote's users choose how many: refused past the cap, said once a burst.
                if not self._over_cap:
                    self._over_cap = True
                    self.target_refused(
                        "new connections",
                        f"more than {REVERSE_SOCKS_MAX} at once through this proxy",
                        blocked=True,
                    )
                raise asyncssh.ChannelOpenError(
                    asyncssh.OPEN_RESOURCE_SHORTAGE, "too many SOCKS connections at once"
                )
            self._over_cap = False
            return _ReverseSocksSide(_Pair(self, f"{orig_host}:{orig_port}"))
        pair = _Pair(self, f"{orig_host}:{orig_port}")
        try:
            await asyncio.wait_for(
                open_from_here(lambda: _TargetSide(pair), target.address, target.port),
                self.session.settings.connect_timeout,
            )
        except (OSError, asyncio.TimeoutError, ValueError) as e:
            pair.closed = True
            self.pairs.discard(pair)
            self.target_refused(str(target), connect_failure(e)[1])
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_CONNECT_FAILED, f"target {target} refused"
            ) from None
        self.connection_opened(pair, str(target))
        return _ChannelSide(pair, resume_target=True)

    async def _close_remote(self) -> None:
        if self._remote_task is not None:
            self._remote_task.cancel()
            with contextlib.suppress(BaseException):
                await self._remote_task
            self._remote_task = None
        listener, self._remote = self._remote, None
        if listener is not None:
            listener.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.wait_closed(), 5)

    # -- bookkeeping ----------------------------------------------------------------------------
    def _set(self, state: TunnelState, error: str | None = None) -> None:
        self.state = state
        # Shown in the dashboard as is; parts of it (refusal reasons) are the server's words.
        self.error = visible(error) if error else error

    def connection_opened(self, pair: _Pair, target: str) -> None:
        self.target_answered(target)
        self.bus.publish(TunnelConnectionOpened(self.spec.name, pair.peer, target))

    def target_answered(self, target: str) -> None:
        """A connection to the target got through: a refusal on record is over."""
        if self.down_since is not None:
            self.down_since = None
            if self.error is not None and self.error.startswith("target refused"):
                self.error = None
            self.bus.publish(TargetAnswered(self.spec.name, target))

    def connection_closed(self, pair: _Pair) -> None:
        self.bus.publish(
            TunnelConnectionClosed(self.spec.name, pair.peer, pair.bytes_up, pair.bytes_down)
        )

    def target_refused(self, target: str, detail: str, *, blocked: bool = False) -> None:
        """A connection's target could not be reached (`blocked`: devtui refused it)."""
        detail = visible(detail)  # the server's words
        if blocked:
            self.error = f"refused {target}: {detail}"
        else:
            self.error = f"target refused: nothing listens at {target} ({detail})"
            if self.down_since is None:
                self.down_since = time.time()
        self.bus.publish(TargetRefused(self.spec.name, target, detail, blocked))


# Connections a reverse SOCKS proxy carries at once: the remote's users choose how many.
REVERSE_SOCKS_MAX = 64

# Binding ::1 where IPv6 is off or absent.
_NO_IPV6 = frozenset({errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, 10047, 10049})


# Names are looked up on threads of devtui's own, not the event loop's shared pool: a
# lookup that hangs (a DNS server that never answers; a timeout cancels the wait, not the
# thread) would hold the threads that config saves, reloads and key scans need, and a
# remote SOCKS client chooses the names. Four at a time; more wait, within connect_timeout.
_RESOLVER: concurrent.futures.ThreadPoolExecutor | None = None


async def open_from_here(
    protocol: Callable[[], asyncio.Protocol],
    host: str,
    port: int,
    allow: Callable[[str], bool] | None = None,
) -> asyncio.BaseTransport:
    """Connect to host:port from this machine (a remote forward's target, or what a reverse
    SOCKS client asks for): the name looked up on devtui's resolver threads, then each
    address in turn (only those `allow` accepts, when given: checked after the lookup, so a
    name cannot lead somewhere a policy forbids). When every address refused, the error is
    a ConnectionRefusedError (asyncio's own loop reports that as a plain OSError, "Multiple
    exceptions: ...")."""
    global _RESOLVER
    loop = asyncio.get_running_loop()
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        if _RESOLVER is None:
            _RESOLVER = concurrent.futures.ThreadPoolExecutor(4, "devtui-resolve")
        infos = await loop.run_in_executor(
            _RESOLVER,
            functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM),
        )
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if allow is not None:
        found, addresses = addresses, [a for a in addresses if allow(a)]
        if found and not addresses:
            raise PermissionError(
                errno.EACCES, f"{', '.join(found[:3])}: not a public address (permit_open)"
            )
    errors: list[OSError] = []
    for address in addresses:
        try:
            transport, _ = await loop.create_connection(protocol, address, port)
        except OSError as e:
            errors.append(e)
            continue
        return transport
    if errors and all(isinstance(e, ConnectionRefusedError) for e in errors):
        raise ConnectionRefusedError(errno.ECONNREFUSED, "connection refused")
    raise errors[-1] if errors else OSError(f"{host}: no address")


def connect_failure(error: BaseException) -> tuple[bool, str]:
    """(refused, words for the user) for a failed `open_from_here`."""
    if isinstance(error, asyncio.TimeoutError):
        return False, "no answer"
    if isinstance(error, ValueError):  # a name no resolver takes (a NUL, a label too long)
        return False, "not a host name"
    if isinstance(error, OSError):
        return isinstance(error, ConnectionRefusedError), error.strerror or "cannot connect"
    return False, "cannot connect"


async def _listen_problem(error: OSError, address: str, port: int) -> str:
    """One line saying why `address`:`port` cannot be listened on."""
    where = Endpoint(address, port)
    if getattr(error, "winerror", None) == 10013:
        free = await asyncio.to_thread(free_port_near, port, address)
        pick = f"port {free} is free" if free else "pick another port"
        return (
            f"{where} is reserved or blocked by Windows (see: netsh interface ipv4 "
            f"show excludedportrange protocol=tcp); {pick}"
        )
    if is_addr_in_use(error):
        return await asyncio.to_thread(busy_message, address, port)
    return f"cannot listen on {where}: {error.strerror or error}"
