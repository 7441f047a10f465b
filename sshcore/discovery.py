"""The remote's listening TCP ports, for "forward this new port?" offers (like VS Code).

Read with one fixed command over the shared session: /proc/net/tcp{,6} on Linux, falling
back to `ss -ltnH` or `netstat -ltn` elsewhere. No user input reaches the command.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import asyncssh

from .remote import MIB, run_bounded

# Fixed, quoted-nothing command: prints the proc tables, or a marker when they are missing.
PROC_COMMAND = "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null || echo NO-PROC"
_FALLBACK_COMMAND = "ss -ltnH 2>/dev/null || netstat -ltn 2>/dev/null"
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column
# A busy server's tables are a few hundred KiB; a host sending more is broken or hostile.
PORT_TABLE_LIMIT = 4 * MIB
PORTS_TIMEOUT = 30.0  # seconds for one table
_MAX_LINE = 4096  # real lines are ~150 characters; longer ones are skipped unparsed


@dataclass(frozen=True, order=True)
class ListeningPort:
    """A TCP port something listens on, on the remote."""

    port: int
    address: str

    @property
    def loopback_only(self) -> bool:
        """True when only the remote itself can reach it (what a tunnel is for)."""
        try:
            return ipaddress.ip_address(self.address).is_loopback
        except ValueError:
            return self.address == "localhost"


def _hex_address(text: str) -> str:
    raw = bytes.fromhex(text)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))  # one little-endian 32-bit word
    # IPv6: four 32-bit words, each little-endian.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    address = ipaddress.IPv6Address(words)
    return str(address.ipv4_mapped or address)


def parse_proc_net_tcp(text: str) -> list[ListeningPort]:
    """Listening sockets in the text of /proc/net/tcp and/or /proc/net/tcp6."""
    found: set[ListeningPort] = set()
    for line in text.splitlines():
        if len(line) > _MAX_LINE:
            continue
        fields = line.split()
        if len(fields) < 4 or ":" not in fields[1] or fields[3] != _LISTEN:
            continue
        address_hex, port_hex = fields[1].rsplit(":", 1)
        try:
            port = int(port_hex, 16)
            if 1 <= port <= 65535:
                found.add(ListeningPort(port, _hex_address(address_hex)))
        except ValueError:  # not hex, or not an address: a line we cannot read is skipped
            continue
    return sorted(found)


_SS_RE = re.compile(r"(?:^|\s)(\[?[0-9A-Fa-f.:*%a-z]*\]?):(\d+)\s")


def parse_ss(text: str) -> list[ListeningPort]:
    """Listening sockets in `ss -ltnH` (or `netstat -ltn`) output."""
    found: set[ListeningPort] = set()
    for line in text.splitlines():
        # Long lines are skipped before the regex sees them: no line can cost more than a
        # moment, and a port of 5,000 digits is not a port.
        if len(line) > _MAX_LINE or "LISTEN" not in line.upper():
            continue
        for address, port_text in _SS_RE.findall(line + " "):
            address = address.strip("[]").split("%")[0]
            address = "0.0.0.0" if address in ("*", "", "0.0.0.0") else address
            port = int(port_text) if len(port_text) <= 5 else 0
            if 1 <= port <= 65535:
                found.add(ListeningPort(port, "::" if address == "::" else address))
            break
    return sorted(found)


async def listening_ports(conn: asyncssh.SSHClientConnection) -> list[ListeningPort]:
    """The remote's listening TCP ports, sorted by port.

    Raises RemoteCommandError when the host sends more than PORT_TABLE_LIMIT or takes
    longer than PORTS_TIMEOUT.
    """
    what = "the listening-port table"
    result = await run_bounded(
        conn, PROC_COMMAND, limit=PORT_TABLE_LIMIT, timeout=PORTS_TIMEOUT, what=what
    )
    out = result.stdout.decode("utf-8", "replace")
    if "NO-PROC" not in out and out.strip():
        return parse_proc_net_tcp(out)
    result = await run_bounded(
        conn, _FALLBACK_COMMAND, limit=PORT_TABLE_LIMIT, timeout=PORTS_TIMEOUT, what=what
    )
    return parse_ss(result.stdout.decode("utf-8", "replace"))


def new_ports(before: list[ListeningPort], now: list[ListeningPort]) -> list[ListeningPort]:
    """Ports listening now that were not before (one entry per port number)."""
    old = {p.port for p in before}
    seen: set[int] = set()
    fresh = []
    for port in now:
        if port.port not in old and port.port not in seen:
            seen.add(port.port)
            fresh.append(port)
    return fresh
