"""A loopback TCP proxy that can cut or blackhole traffic, for network-fault tests.

It runs on its own asyncio loop in a daemon thread; every public method is sync and
thread-safe, so it works from sync tests, async tests and in front of a subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from .net import CHUNK, LoopThread, abort_writer


class Mode(enum.Enum):
    """What the proxy does with traffic."""

    FORWARD = "forward"
    CUT = "cut"
    BLACKHOLE = "blackhole"


@dataclass(eq=False)
class _Conn:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    blackholed: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def abort(self) -> None:
        abort_writer(self.client)
        if self.upstream is not None:
            abort_writer(self.upstream)
        self.ended.set()


class TcpProxy:
    """Proxy `listen_host:port` -> `target_host:target_port` with fault switches.

    - `cut()`: the network goes down: every open connection is reset (RST) and new ones
      are accepted and reset at once (the client sees ECONNRESET from connect() or its
      first read), until `restore()`.
    - `blackhole()`: open and new connections stay open but every byte, both ways, is
      dropped silently; only an application keepalive can notice.
    - `restore()`: new connections are forwarded again. Blackholed connections stay dead
      (their streams have lost bytes) until their peers close them or `stop()`.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        listen_host: str = "127.0.0.1",
        max_connections: int = 256,
        connect_timeout: float = 5.0,
    ) -> None:
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self.port = 0
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.total_connections = 0  # accepted so far, including refused ones
        self.bytes_up = 0  # client -> target, forwarded
        self.bytes_down = 0  # target -> client, forwarded
        self._mode = Mode.FORWARD
        self._conns: set[_Conn] = set()
        self._server: asyncio.Server | None = None
        self._lt: LoopThread | None = None

    # -- sync API -------------------------------------------------------------------------

    def start(self) -> int:
        """Start listening (port 0 = any free port); returns the port."""
        if self._lt is None:
            self._lt = LoopThread(f"TcpProxy->{self.target[1]}")
            self.port = self._lt.call(self._start())
        return self.port

    def stop(self) -> None:
        """Close the listener and reset every connection; ends the loop thread."""
        if self._lt is not None:
            with contextlib.suppress(Exception):
                self._lt.call(self._stop())
            self._lt.stop()
            self._lt = None

    def cut(self) -> None:
        """Reset all connections now and reset new ones until `restore()`."""
        self._call(self._set_mode(Mode.CUT))

    def blackhole(self) -> None:
        """Silently drop all bytes of current and new connections, closing nothing."""
        self._call(self._set_mode(Mode.BLACKHOLE))

    def restore(self) -> None:
        """Forward new connections normally again."""
        self._call(self._set_mode(Mode.FORWARD))

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def connections(self) -> int:
        """Connections open right now (forwarding or blackholed)."""
        return len(self._conns)

    def wait_connections(self, count: int, timeout: float = 10.0) -> None:
        """Block until at least `count` connections are open (polls every 10 ms)."""
        deadline = time.monotonic() + timeout
        while self.connections < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.connections}/{count} proxy connections open")
            time.sleep(0.01)

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._lt is None:
            coro.close()
            raise RuntimeError("TcpProxy is not started")
        self._lt.call(coro)

    # -- loop side ------------------------------------------------------------------------

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.listen_host, self.port)
        return int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.abort()

    async def _set_mode(self, mode: Mode) -> None:
        self._mode = mode
        for conn in list(self._conns):
            if mode is Mode.CUT:
                conn.abort()
                self._conns.discard(conn)  # gone now, not when its task gets to run
            elif mode is Mode.BLACKHOLE:
                conn.blackholed = True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Python 3.11's start_server callback calls task.exception() on a cancelled handler
        # and logs a CancelledError traceback; a handler cancelled at shutdown just ends.
        with contextlib.suppress(asyncio.CancelledError):
            await self._serve_one(reader, writer)

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.total_connections += 1
        if self._mode is Mode.CUT or len(self._conns) >= self.max_connections:
            abort_writer(writer)
            return
        conn = _Conn(writer, blackholed=self._mode is Mode.BLACKHOLE)
        self._conns.add(conn)
        try:
            if conn.blackholed:
                await self._pump(reader, None, conn, up=True)
                await conn.ended.wait()
                return
            try:
                up_reader, conn.upstream = await asyncio.wait_for(
                    asyncio.open_connection(*self.target), self.connect_timeout
                )
            except (OSError, asyncio.TimeoutError):
                abort_writer(writer)
                return
            if self.mode is Mode.CUT:  # cut while we were connecting
                conn.abort()
                return
            await asyncio.gather(
                self._pump(reader, conn.upstream, conn, up=True),
                self._pump(up_reader, writer, conn, up=False),
            )
            if conn.blackholed:  # both peers hung up while dropped: keep it until cut/stop
                await conn.ended.wait()
        finally:
            self._conns.discard(conn)
            writer.close()
            if conn.upstream is not None:
                conn.upstream.close()

    async def _pump(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter | None,
        conn: _Conn,
        *,
        up: bool,
    ) -> None:
        """Copy src -> dst with back-pressure; drop bytes while blackholed; EOF -> half-close."""
        try:
            while data := await src.read(CHUNK):
                if conn.blackholed or dst is None:
                    continue
                # Count before writing: a test that has read every byte must see them counted.
                if up:
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
                dst.write(data)
                await dst.drain()
            if not conn.blackholed and dst is not None and dst.can_write_eof():
                dst.write_eof()
        except OSError:
            conn.abort()  # one side reset: reset the other too, like a real path would
