"""Small network helpers for tests: free ports, port waits, an echo server, a hashing sink.

The servers here run their own asyncio loop in a daemon thread (`LoopThread`), so the same
object works from sync tests, async tests (even while the test's loop is blocked in a
subprocess call) and for a subprocess under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
S = TypeVar("S", bound="_ThreadedServer")

CHUNK = 64 * 1024
MIB = 1024 * 1024


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it; racy by nature)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until `host:port` accepts a TCP connection; `TimeoutError` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as exc:
            last = exc
            time.sleep(0.02)
    raise TimeoutError(f"{host}:{port} did not accept connections within {timeout}s ({last})")


def abort_writer(writer: asyncio.StreamWriter) -> None:
    """Close a stream abortively: SO_LINGER 0 makes the kernel send RST, not FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
    writer.transport.abort()


class LoopThread:
    """An asyncio event loop running in a daemon thread; `call` runs a coroutine on it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        # Cancel what is left so that no task outlives the loop silently.
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run `coro` on the loop and wait (from another thread) for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        """Stop the loop and join the thread (idempotent)."""
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)


class _ThreadedServer:
    """Base for a loopback asyncio server on its own loop thread; sync context manager."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.connections = 0  # accepted so far
        self._lt: LoopThread | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            await self._handle(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.transport.abort()

    def start(self) -> int:
        """Start listening on `host`, port 0; returns the port."""
        self._lt = LoopThread(type(self).__name__)
        self.port = self._lt.call(self._start())
        return self.port

    def stop(self) -> None:
        """Close the listener and every connection, then end the loop thread."""
        if self._lt is not None:
            with contextlib.suppress(Exception):
                self._lt.call(self._stop())
            self._lt.stop()
            self._lt = None

    def __enter__(self: S) -> S:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EchoServer(_ThreadedServer):
    """TCP echo server on 127.0.0.1:0; on EOF it echoes what is left and closes."""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


@dataclass(frozen=True)
class SinkResult:
    """What one connection to a `Sha256Sink` delivered before EOF."""

    nbytes: int
    sha256: str


class Sha256Sink(_ThreadedServer):
    """Accepts connections and hashes everything that arrives until EOF; sends nothing."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.results: list[SinkResult] = []
        self._cond = threading.Condition()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        h, n = hashlib.sha256(), 0
        while data := await reader.read(CHUNK):
            h.update(data)
            n += len(data)
        with self._cond:
            self.results.append(SinkResult(n, h.hexdigest()))
            self._cond.notify_all()

    def wait_results(self, count: int = 1, timeout: float = 30.0) -> list[SinkResult]:
        """Block until `count` connections have finished; returns their results in order."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.results) >= count, timeout):
                raise TimeoutError(f"{len(self.results)}/{count} sink connections done")
            return list(self.results)


class ByteSource(_ThreadedServer):
    """Sends `nbytes` random bytes to each connection, then EOF; counts what it receives.

    With a `Sha256Sink` it makes one-way traffic, so a test can tell the two directions
    of a forward apart (an echo sends the same amount both ways).
    """

    def __init__(self, nbytes: int, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.nbytes = nbytes
        self.sent: list[str] = []  # sha256 of what each connection was sent
        self.received = 0  # bytes that came back from any client (one-way: should stay 0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        h = hashlib.sha256()
        left = self.nbytes
        while left:
            chunk = os.urandom(min(CHUNK, left))
            h.update(chunk)
            writer.write(chunk)
            await writer.drain()
            left -= len(chunk)
        self.sent.append(h.hexdigest())
        if writer.can_write_eof():
            writer.write_eof()
        while data := await reader.read(CHUNK):
            self.received += len(data)


async def read_all(host: str, port: int) -> tuple[int, str]:
    """Connect, send nothing, read until EOF; returns (bytes, sha256) of what arrived."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        return await read_stream(reader)
    finally:
        writer.close()


async def read_stream(reader: asyncio.StreamReader) -> tuple[int, str]:
    """Read until EOF; returns (bytes, sha256) of what arrived."""
    h, n = hashlib.sha256(), 0
    while data := await reader.read(CHUNK):
        h.update(data)
        n += len(data)
    return n, h.hexdigest()


async def send_random(host: str, port: int, nbytes: int) -> str:
    """Send `nbytes` random bytes to `host:port`, then EOF; returns the sha256 of what was sent."""
    reader, writer = await asyncio.open_connection(host, port)
    return await send_stream(reader, writer, nbytes)


async def send_stream(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, nbytes: int
) -> str:
    """`send_random` on a connection already open (e.g. after a SOCKS handshake); closes it."""
    h = hashlib.sha256()
    try:
        left = nbytes
        while left:
            chunk = os.urandom(min(CHUNK, left))
            h.update(chunk)
            writer.write(chunk)
            await writer.drain()
            left -= len(chunk)
        writer.write_eof()
        await reader.read()  # wait for the peer to close
    finally:
        writer.close()
    return h.hexdigest()


async def echo_roundtrip(host: str, port: int, nbytes: int) -> tuple[str, str]:
    """Stream `nbytes` random bytes through an echo at `host:port`.

    Writes and reads concurrently (no flow-control deadlock); returns
    `(sha256 sent, sha256 received)`, which are equal when the path is sound.
    """
    reader, writer = await asyncio.open_connection(host, port)
    return await echo_streams(reader, writer, nbytes)


async def echo_streams(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, nbytes: int
) -> tuple[str, str]:
    """`echo_roundtrip` on a connection already open (e.g. after a SOCKS handshake); closes it."""
    sent, got = hashlib.sha256(), hashlib.sha256()

    async def pump_out() -> None:
        left = nbytes
        while left:
            chunk = os.urandom(min(CHUNK, left))
            sent.update(chunk)
            writer.write(chunk)
            await writer.drain()
            left -= len(chunk)

    async def pump_in() -> None:
        received = 0
        while received < nbytes:
            data = await reader.read(CHUNK)
            if not data:
                break
            got.update(data)
            received += len(data)

    try:
        await asyncio.gather(pump_out(), pump_in())
    finally:
        writer.close()
    return sent.hexdigest(), got.hexdigest()


def echo_roundtrip_sync(
    host: str, port: int, nbytes: int, timeout: float = 60.0
) -> tuple[str, str]:
    """`echo_roundtrip` for sync code (runs its own short-lived loop)."""
    return asyncio.run(asyncio.wait_for(echo_roundtrip(host, port, nbytes), timeout))
