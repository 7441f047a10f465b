"""The remote's listening TCP ports and the programs behind them, for "forward this new
port?" offers (like VS Code).

Read with one fixed command over the shared session: the LISTEN rows of /proc/net/tcp{,6} on
Linux, with the socket inodes matched to /proc/PID/fd on the host itself (only the matches
come back: pid and name), falling back to `ss -ltnpH` or `netstat -ltnp` elsewhere. No user
input reaches either command. A host with neither is "not supported" (UnsupportedHost).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

import asyncssh

from .remote_commands import MIB, RemoteCommandError, run_bounded

# The script sh runs for one look. It reaches the host inside single quotes whatever the
# login shell is (sh, bash, fish, tcsh), so it holds no ', \\, ! nor newline; awk's $ comes
# from the variable d (sh does not expand an expansion's result), its strings from -v.
# It prints the LISTEN rows of the proc tables, then "@PID pid inode name" for each open fd
# of a visible process that is one of those sockets: the join happens on the host, so a
# poll sends back a few hundred bytes, not every socket of every process.
_AWK = (
    "f == 0 && ${d}0 == M { f = 1; next } "
    "f == 0 { if (${d}4 == L) { print; w[${d}10] = 1 }; next } "
    "/^[/]proc[/][0-9]+[/]fd:${d}/ { split(${d}0, a, /[/]/); p = a[3]; next } "
    "${d}NF ~ /^socket:[[]/ { i = ${d}NF; gsub(/[^0-9]/, E, i); "
    "if ((i in w) && p != E) { n = E; x = P p C; getline n < x; close(x); print S, p, i, n } }"
)
_PROC_SCRIPT = (
    "d=$; [ -r /proc/net/tcp ] || { echo NO-PROC; exit; }; "
    "{ cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; echo @FD; ls -l /proc/[0-9]*/fd 2>/dev/null; }"
    f' | awk -v L=0A -v M=@FD -v P=/proc/ -v C=/comm -v S=@PID "{_AWK}"'
)
PROC_COMMAND = f"sh -c '{_PROC_SCRIPT}'"
_FALLBACK_COMMAND = "sh -c 'ss -ltnH -p 2>/dev/null || netstat -ltnp 2>/dev/null || echo NO-SS'"
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column
_PID_MARK = "@PID"
_NAME_MAX = 64  # /proc/PID/comm is at most 15 characters; ss shows the same name
# A busy server's tables are a few hundred KiB; a host sending more is broken or hostile.
PORT_TABLE_LIMIT = 4 * MIB
PORTS_TIMEOUT = 30.0  # seconds for one table
_MAX_LINE = 4096  # real lines are ~150 characters; longer ones are skipped unparsed


UNSUPPORTED = "no /proc/net/tcp, ss or netstat there"


class UnsupportedHost(RemoteCommandError):
    """The host has no way for us to see its listening ports (no /proc, no ss, no sh)."""

    reason = UNSUPPORTED

    def __init__(self) -> None:
        super().__init__(f"listening ports are not supported on this host ({UNSUPPORTED})")


@dataclass(frozen=True, order=True)
class ListeningPort:
    """A TCP port something listens on, on the remote, and (where the host lets us see it)
    the program that listens."""

    port: int
    address: str
    # Who listens: a note on the port, not part of what it is (equal ports compare equal).
    process: str | None = field(default=None, compare=False)
    pid: int | None = field(default=None, compare=False)

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


def _name(text: str) -> str | None:
    """A process name as the host gave it: one printable line, bounded; None when empty."""
    text = "".join(c if c.isprintable() else "?" for c in text.strip())[:_NAME_MAX]
    return text or None


def _owners(lines: list[str]) -> dict[str, tuple[int, str | None]]:
    """socket inode -> (pid, name) from the "@PID pid inode name" lines; the lowest pid wins
    (a forking server's parent, usually)."""
    owners: dict[str, tuple[int, str | None]] = {}
    for line in lines:
        parts = line.split(" ", 3)
        if len(parts) < 3 or parts[0] != _PID_MARK or not parts[1].isdigit():
            continue
        pid, inode = int(parts[1]), parts[2]
        if inode in owners and owners[inode][0] <= pid:
            continue
        owners[inode] = (pid, _name(parts[3]) if len(parts) > 3 else None)
    return owners


def _unique(found: dict[tuple[int, str], ListeningPort]) -> list[ListeningPort]:
    return [found[key] for key in sorted(found)]


def parse_proc_net_tcp(text: str) -> list[ListeningPort]:
    """Listening sockets in the text of /proc/net/tcp and/or /proc/net/tcp6, with their
    process where "@PID pid inode name" lines (PROC_COMMAND's) name it."""
    lines = [line for line in text.splitlines() if len(line) <= _MAX_LINE]
    owners = _owners([line for line in lines if line.startswith(_PID_MARK)])
    found: dict[tuple[int, str], ListeningPort] = {}
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or ":" not in fields[1] or fields[3] != _LISTEN:
            continue
        address_hex, port_hex = fields[1].rsplit(":", 1)
        try:
            port = int(port_hex, 16)
            if not 1 <= port <= 65535:
                continue
            address = _hex_address(address_hex)
        except ValueError:  # not hex, or not an address: a line we cannot read is skipped
            continue
        pid, name = owners.get(fields[9], (None, None)) if len(fields) > 9 else (None, None)
        known = found.get((port, address))
        if known is None or (known.pid is None and pid is not None):
            found[(port, address)] = ListeningPort(port, address, name, pid)
    return _unique(found)


_SS_RE = re.compile(r"(?:^|\s)(\[?[0-9A-Fa-f.:*%a-z]*\]?):(\d+)\s")
# ss -p: users:(("python3",pid=1234,fd=3)); netstat -p: "1234/python3" at the end of the line.
_SS_USER_RE = re.compile(r'users:\(\("([^"]{0,200})",pid=(\d{1,10})')
_NETSTAT_USER_RE = re.compile(r"\s(\d{1,10})/(\S{1,200})\s*$")


def parse_ss(text: str) -> list[ListeningPort]:
    """Listening sockets in `ss -ltnpH` (or `netstat -ltnp`) output, with the process where
    the output names it."""
    found: dict[tuple[int, str], ListeningPort] = {}
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
                user = _SS_USER_RE.search(line)
                if user:
                    name, pid = _name(user.group(1)), int(user.group(2))
                elif netstat := _NETSTAT_USER_RE.search(line):
                    name, pid = _name(netstat.group(2)), int(netstat.group(1))
                else:
                    name, pid = None, None
                address = "::" if address == "::" else address
                found.setdefault((port, address), ListeningPort(port, address, name, pid))
            break
    return _unique(found)


async def listening_ports(conn: asyncssh.SSHClientConnection) -> list[ListeningPort]:
    """The remote's listening TCP ports, sorted by port.

    Raises RemoteCommandError when the host sends more than PORT_TABLE_LIMIT or takes
    longer than PORTS_TIMEOUT, UnsupportedHost when it has no way to list them.
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
    out = result.stdout.decode("utf-8", "replace")
    # No sh, no ss and no netstat (a Windows or appliance shell): an empty, failed answer.
    if "NO-SS" in out or (not out.strip() and result.exit_status != 0):
        raise UnsupportedHost
    return parse_ss(out)


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


# Web servers below 1024 that people do forward; every other low port is a system service.
_LOW_WEB_PORTS = frozenset({80, 443})


def ignored(port: int, ignore_ports: tuple[int, ...] | None) -> bool:
    """Whether `port` is left out of offers: the host's own list when it has one, else the
    default rule (22 and every port below 1024 but 80 and 443; 8080-style ports are offered)."""
    if ignore_ports is not None:
        return port in ignore_ports
    return port == 22 or (port < 1024 and port not in _LOW_WEB_PORTS)


def target_address(ports: list[ListeningPort], port: int) -> str:
    """Where on the remote a tunnel to `port` should connect: 127.0.0.1 when it listens on
    IPv4 loopback or everywhere, ::1 when only IPv6, else the one address it listens on."""
    addresses = {p.address for p in ports if p.port == port}
    if not addresses or addresses & {"127.0.0.1", "0.0.0.0"}:
        return "127.0.0.1"
    if addresses & {"::1", "::"}:
        return "::1"
    return sorted(addresses)[0]
