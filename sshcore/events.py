"""One typed stream of what happens: the TUI's log pane, the log file and the CLI all read it.

Events are frozen dataclasses with past-tense names. `message()` is the one line a user
reads; `level` is "info", "warning" or "error".
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import logging.handlers
import os
import queue
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .visible_text import visible


@dataclass(frozen=True)
class Event:
    """Base of all events."""

    level: ClassVar[str] = "info"
    at: float = field(default_factory=time.time, kw_only=True)

    def message(self) -> str:
        return type(self).__name__

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("message")
        if own is not None:
            # Every message is one line with no control characters, whatever a server put in
            # a field (a reason, a target's refusal): it is printed, logged and shown as is.
            def message(self: Event, _own: Callable[[Event], str] = own) -> str:
                return visible(_own(self))

            message.__doc__ = own.__doc__
            cls.message = message  # type: ignore[method-assign]


# -- hosts -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class HostConnecting(Event):
    host: str
    destination: str
    attempt: int = 1

    def message(self) -> str:
        again = f" (attempt {self.attempt})" if self.attempt > 1 else ""
        return f"{self.host}: connecting to {self.destination}{again}"


@dataclass(frozen=True)
class HostConnected(Event):
    host: str
    auth_method: str
    server_version: str
    connect_ms: float

    def message(self) -> str:
        return (
            f"{self.host}: connected in {self.connect_ms:.0f} ms "
            f"({self.auth_method}; {self.server_version})"
        )


@dataclass(frozen=True)
class HostLost(Event):
    host: str
    reason: str
    level: ClassVar[str] = "warning"

    def message(self) -> str:
        return f"{self.host}: connection lost: {self.reason}"


@dataclass(frozen=True)
class HostReconnectScheduled(Event):
    host: str
    attempt: int
    delay: float
    reason: str
    level: ClassVar[str] = "warning"

    def message(self) -> str:
        return f"{self.host}: reconnecting in {self.delay:.1f} s (attempt {self.attempt}): {self.reason}"


@dataclass(frozen=True)
class HostFailed(Event):
    host: str
    reason: str
    level: ClassVar[str] = "error"

    def message(self) -> str:
        return f"{self.host}: {self.reason}"


@dataclass(frozen=True)
class Woke(Event):
    """This machine slept (or devtui was paused): every connection is being checked now."""

    seconds: float
    hosts: int  # connections checked

    def message(self) -> str:
        away = f"{self.seconds:.0f} s" if self.seconds < 120 else f"{self.seconds / 60:.0f} min"
        return f"back after {away} asleep or paused: checking {self.hosts} connection(s)"


@dataclass(frozen=True)
class HostDisconnected(Event):
    host: str

    def message(self) -> str:
        return f"{self.host}: disconnected"


@dataclass(frozen=True)
class HostKeyLearned(Event):
    host: str
    address: str
    fingerprint: str
    known_hosts: str

    def message(self) -> str:
        return f"{self.host}: trusted new host key {self.fingerprint} for {self.address} (saved to {self.known_hosts})"


@dataclass(frozen=True)
class HostKeyRejected(Event):
    host: str
    address: str
    reason: str
    level: ClassVar[str] = "error"

    def message(self) -> str:
        return f"{self.host}: host key for {self.address} REJECTED: {self.reason}"


@dataclass(frozen=True)
class AuthFailed(Event):
    host: str
    detail: str
    level: ClassVar[str] = "error"

    def message(self) -> str:
        return f"{self.host}: authentication failed: {self.detail}"


# -- tunnels ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TunnelStarted(Event):
    tunnel: str
    description: str

    def message(self) -> str:
        return f"tunnel {self.tunnel}: up ({self.description})"


@dataclass(frozen=True)
class TunnelWaiting(Event):
    tunnel: str
    reason: str

    def message(self) -> str:
        return f"tunnel {self.tunnel}: waiting: {self.reason}"


@dataclass(frozen=True)
class TunnelStopped(Event):
    tunnel: str

    def message(self) -> str:
        return f"tunnel {self.tunnel}: stopped"


@dataclass(frozen=True)
class TunnelFailed(Event):
    tunnel: str
    reason: str
    level: ClassVar[str] = "error"

    def message(self) -> str:
        return f"tunnel {self.tunnel}: failed: {self.reason}"


@dataclass(frozen=True)
class TunnelConnectionOpened(Event):
    tunnel: str
    peer: str
    target: str

    def message(self) -> str:
        return f"tunnel {self.tunnel}: connection from {self.peer} to {self.target}"


@dataclass(frozen=True)
class TunnelConnectionClosed(Event):
    tunnel: str
    peer: str
    bytes_up: int
    bytes_down: int

    def message(self) -> str:
        return (
            f"tunnel {self.tunnel}: connection from {self.peer} closed "
            f"({self.bytes_up} B up, {self.bytes_down} B down)"
        )


@dataclass(frozen=True)
class TargetRefused(Event):
    tunnel: str
    target: str
    detail: str
    blocked: bool = False  # devtui refused it (a reverse SOCKS proxy's permit_open, its cap)
    level: ClassVar[str] = "warning"

    def message(self) -> str:
        if self.blocked:
            return f"tunnel {self.tunnel}: refused {self.target}: {self.detail}"
        return f"tunnel {self.tunnel}: target refused: nothing answers at {self.target} ({self.detail})"


@dataclass(frozen=True)
class TargetAnswered(Event):
    """A tunnel's target that refused answers again (a connection, or the probe, got through)."""

    tunnel: str
    target: str

    def message(self) -> str:
        return f"tunnel {self.tunnel}: {self.target} answers again"


@dataclass(frozen=True)
class TunnelTraffic(Event):
    """Counters, published at most a few times a second (never per packet)."""

    tunnel: str
    connections: int
    bytes_up: int
    bytes_down: int

    def message(self) -> str:
        return (
            f"tunnel {self.tunnel}: {self.connections} open, "
            f"{self.bytes_up} B up, {self.bytes_down} B down"
        )


# -- discovery -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RemotePortOpened(Event):
    """Something started listening on the remote (e.g. a Gradio demo on 7860)."""

    host: str
    port: int
    address: str
    process: str | None = None  # where the remote lets us see it
    pid: int | None = None

    def message(self) -> str:
        who = f" ({self.process})" if self.process else ""
        return f"{self.port} is listening on {self.host}{who}: f to forward"


@dataclass(frozen=True)
class PortsNotOffered(Event):
    """More ports opened on a host in one look than are offered one by one (a flood: a
    shared machine's other users, a bug), or than are forwarded by themselves."""

    host: str
    count: int
    what: str = "offered"  # or "forwarded by themselves"
    level: ClassVar[str] = "warning"

    def message(self) -> str:
        return (
            f"{self.count} more ports opened on {self.host} in one look: not {self.what} "
            "one by one (devtui ports HOST lists them all)"
        )


@dataclass(frozen=True)
class RemotePortClosed(Event):
    host: str
    port: int

    def message(self) -> str:
        return f"{self.host}: port {self.port} stopped listening"


@dataclass(frozen=True)
class TunnelRemoteClosed(Event):
    """A forwarded port's remote listener went away: "remote closed", not an error."""

    tunnel: str
    host: str
    port: int

    def message(self) -> str:
        return (
            f"tunnel {self.tunnel}: remote closed (nothing listens on {self.host}:{self.port} now)"
        )


@dataclass(frozen=True)
class TunnelTargetMoved(Event):
    """The tunnel's target refuses, and the same program now listens on another port."""

    tunnel: str
    host: str
    old_port: int
    new_port: int
    process: str | None = None
    level: ClassVar[str] = "warning"

    def message(self) -> str:
        who = self.process or self.tunnel
        return f"tunnel {self.tunnel}: {who} moved to {self.new_port}? (R retargets it)"


@dataclass(frozen=True)
class DiscoveryUnsupported(Event):
    """The host shows no port table (no /proc/net/tcp, no ss): said once, not every poll."""

    host: str
    reason: str
    level: ClassVar[str] = "warning"

    def message(self) -> str:
        return f"{self.host}: listening ports are not supported on this host ({self.reason})"


@dataclass(frozen=True)
class PortWatchStarted(Event):
    """The first look at a host's ports: what listens now is the starting picture."""

    host: str
    ports: int

    def message(self) -> str:
        return f"{self.host}: watching its ports ({self.ports} listening now; new ones are offered)"


@dataclass(frozen=True)
class TunnelRemoteReturned(Event):
    """A tunnel's program on the remote listens (again, after "remote closed", or for the
    first time since the tunnel started)."""

    tunnel: str
    host: str
    port: int

    def message(self) -> str:
        return f"tunnel {self.tunnel}: {self.host}:{self.port} is listening"


@dataclass(frozen=True)
class PortForwarded(Event):
    """A discovered port got a tunnel (`f`, or by itself with auto_forward = "always")."""

    host: str
    port: int
    tunnel: str
    local_port: int
    note: str | None = None

    def message(self) -> str:
        note = f"; {self.note}" if self.note else ""
        return (
            f"{self.host}: {self.port} forwarded to localhost:{self.local_port} "
            f"(tunnel {self.tunnel}, not saved: s saves it{note})"
        )


# -- front ends ------------------------------------------------------------------------------
@dataclass(frozen=True)
class AsyncsshStock(Event):
    """asyncssh runs as released: devtui's fast path stood down (untested version, or asked)."""

    detail: str

    def message(self) -> str:
        return self.detail


@dataclass(frozen=True)
class UnexpectedError(Event):
    """A bug caught by a front end: one line for the user, the traceback for the log file."""

    where: str
    detail: str
    traceback: str = ""
    level: ClassVar[str] = "error"

    def message(self) -> str:
        return f"unexpected error in {self.where}: {self.detail} (traceback in the log file)"


@dataclass(frozen=True)
class PortWatchFailed(Event):
    """One round of port watching failed (the watcher keeps going and says it once)."""

    host: str
    reason: str
    level: ClassVar[str] = "warning"

    def message(self) -> str:
        return f"{self.host}: cannot read its listening ports: {self.reason}"


# -- the bus ---------------------------------------------------------------------------------
Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of events to callbacks and async iterators. Subscribers must not block."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._log = logging.getLogger("devtui")

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback` for every event; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def publish(self, event: Event) -> None:
        """Deliver `event` to every subscriber; a failing subscriber never stops the others."""
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a broken front end must not break the core
                self._log.exception("event subscriber failed")

    async def stream(self) -> AsyncIterator[Event]:
        """Iterate events as they come (until the consumer stops)."""
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=10_000)

        def put(event: Event) -> None:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

        unsubscribe = self.subscribe(put)
        try:
            while True:
                yield await queue.get()
        finally:
            unsubscribe()


class FileLog:
    """A subscriber writing one line per event to a rotated log file (traffic ticks left out).

    Writes happen on a logging thread, never on the event loop; close() flushes and stops it.
    """

    _LEVELS: ClassVar[dict[str, int]] = {
        "info": logging.INFO,
        "warning": logging.WARNING,
        "error": logging.ERROR,
    }

    def __init__(self, path: Path, max_bytes: int = 1_000_000, backups: int = 3) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler = _QuietRotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
        )
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self._handler = handler
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._listener = logging.handlers.QueueListener(records, handler)
        self._listener.start()
        self._closed = False
        self._logger = logging.getLogger(f"devtui.file.{path}.{id(self)}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        self._logger.handlers[:] = [logging.handlers.QueueHandler(records)]
        atexit.register(self.close)

    def __call__(self, event: Event) -> None:
        if isinstance(event, TunnelTraffic):
            return
        text = event.message()
        if isinstance(event, UnexpectedError) and event.traceback:
            # A traceback quotes what failed (a server's words in an exception): escapes
            # shown, never obeyed by the terminal that later shows the log file.
            text += "\n" + visible(event.traceback.rstrip(), newlines=True)
        self._logger.log(self._LEVELS.get(event.level, logging.INFO), text)

    def close(self) -> None:
        """Write what is queued and stop the logging thread (idempotent)."""
        if not self._closed:
            self._closed = True
            self._listener.stop()
            self._handler.close()
            atexit.unregister(self.close)


class _QuietRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A log file problem (disk full; on Windows, another devtui holding the file during
    rotation) loses that line, and never prints a traceback into the user's terminal."""

    def handleError(self, record: logging.LogRecord) -> None:
        return None

    def _open(self) -> Any:
        # Owner-only from creation, like the config: host names, users and addresses are
        # nobody else's business. (On Windows the mode is moot: the profile's ACL applies.)
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if os.name == "posix" and os.fstat(fd).st_mode & 0o077:
            with contextlib.suppress(OSError):  # a log an older devtui left readable
                os.fchmod(fd, 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)
