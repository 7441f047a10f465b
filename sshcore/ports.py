"""Local ports: listening sockets (exclusive on Windows) and who holds a busy port."""

from __future__ import annotations

import contextlib
import errno
import socket
from dataclasses import dataclass

import psutil

# Windows' SO_EXCLUSIVEADDRUSE is ~SO_REUSEADDR (-5); the socket module only defines it there.
SO_EXCLUSIVEADDRUSE = getattr(socket, "SO_EXCLUSIVEADDRUSE", -5)


@dataclass(frozen=True)
class PortOwner:
    """A process that holds a local port."""

    pid: int | None
    name: str | None

    def __str__(self) -> str:
        if self.pid is None:
            return "another process (not visible to this user)"
        return f"{self.name or 'process'} (pid {self.pid})"


def listen_socket_options(platform: str) -> list[tuple[int, int, int]]:
    """setsockopt calls for a listening socket on `platform` (os.name).

    Windows lets a second program bind a port already in use unless the socket is
    exclusive; POSIX needs SO_REUSEADDR only to rebind quickly after a restart.
    """
    if platform == "nt":
        return [(socket.SOL_SOCKET, SO_EXCLUSIVEADDRUSE, 1)]
    return [(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)]


def open_listener(address: str, port: int, platform: str | None = None) -> socket.socket:
    """A bound, listening, non-blocking TCP socket; raises OSError (EADDRINUSE when busy)."""
    import os

    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        for level, option, value in listen_socket_options(platform or os.name):
            sock.setsockopt(level, option, value)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def is_addr_in_use(error: OSError) -> bool:
    """True for "address already in use" on any OS (Windows: WSAEADDRINUSE 10048)."""
    return error.errno in (errno.EADDRINUSE, 10048) or getattr(error, "winerror", None) == 10048


def port_owner(port: int, address: str | None = None) -> PortOwner | None:
    """The process listening on local TCP `port`, or None if nobody (visible) is."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return PortOwner(None, None)
    for conn in connections:
        if not conn.laddr or conn.laddr.port != port or conn.status != psutil.CONN_LISTEN:
            continue
        if address and conn.laddr.ip not in (address, "0.0.0.0", "::"):
            continue
        if conn.pid is None:
            return PortOwner(None, None)
        try:
            name = psutil.Process(conn.pid).name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            name = None
        return PortOwner(conn.pid, name)
    return None


def free_port_near(port: int, address: str = "127.0.0.1", tries: int = 50) -> int | None:
    """The first port after `port` that can be bound now (a suggestion, not a reservation)."""
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        try:
            open_listener(address, candidate).close()
        except OSError:
            continue
        return candidate
    return None


def busy_message(address: str, port: int) -> str:
    """ "127.0.0.1:8080 is already in use by python3 (pid 1234); try 8081"."""
    owner = port_owner(port, address)
    who = f" by {owner}" if owner else ""
    where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    suggestion = free_port_near(port, address)
    tail = f"; port {suggestion} is free" if suggestion else ""
    return f"{where} is already in use{who}{tail}"


@dataclass(frozen=True)
class PortCheck:
    """A local port that cannot be listened on: why (its holder, when busy), and a free
    port nearby."""

    message: str
    suggestion: int | None


def check_local_port(address: str, port: int) -> PortCheck | None:
    """None when `address`:`port` can be listened on now; else why not (a busy port names
    the process holding it) and the next free port. Blocking: run it in a thread."""
    try:
        open_listener(address, port).close()
    except OSError as e:
        if not is_addr_in_use(e):
            return PortCheck(f"{address}:{port}: {e.strerror or e}", None)
        return PortCheck(busy_message(address, port), free_port_near(port, address))
    return None
