"""Plain data the user configures: hosts, tunnels, settings (specs, not running state)."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

TunnelKind = Literal["local", "remote", "dynamic"]
AutoForward = Literal["ask", "always", "never"]
AUTO_FORWARD: tuple[AutoForward, ...] = ("ask", "always", "never")
TUNNEL_KINDS: tuple[TunnelKind, ...] = ("local", "remote", "dynamic")

LOOPBACK = "127.0.0.1"
ALL_INTERFACES = frozenset({"0.0.0.0", "::", "*"})
# What the resolver may read as a numeric IPv4 address: 0, 000, 0x0, 127.1, 0x7f.1 ...
_NUMERIC_V4_RE = re.compile(r"^[0-9A-Fa-fXx.]+$")

# Names end up as TOML keys, file names and command-line arguments: keep them boring.
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
# Hostnames: DNS names, IPv4, IPv6 (with an optional %zone). No spaces, quotes or shell syntax.
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:%-]{0,252}$")
# Users: POSIX names, plus the DOMAIN\user and user@domain forms Windows servers use.
_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@\\$-]{0,63}$")
# Only digits and dots: the resolver reads it as an IPv4 address, never as a DNS name.
_DOTTED_NUMBERS_RE = re.compile(r"^[0-9.]*\.[0-9.]*$")


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a host or tunnel, or None when it can."""
    if not name:
        return "is empty"
    if name.startswith("-"):
        return "must not start with '-'"
    if not _NAME_RE.match(name):
        return "may only contain letters, digits, '.', '_' and '-' (at most 64)"
    return None


def hostname_problem(hostname: str) -> str | None:
    """Why `hostname` is not a usable host name or address, or None."""
    if not hostname:
        return "is empty"
    if hostname.startswith("-"):
        return "must not start with '-'"
    if ":" in hostname:
        try:
            ipaddress.IPv6Address(hostname.split("%", 1)[0])
        except ValueError:
            return "is not a valid IPv6 address"
        return None if _HOSTNAME_RE.match("x" + hostname) else "is not a valid IPv6 address"
    if _DOTTED_NUMBERS_RE.match(hostname):
        try:
            # inet_aton, as ssh's resolver: also the short forms 127.1 and 10.1.2
            socket.inet_aton(hostname)
        except OSError:
            return "is not a valid IPv4 address"
        return None
    if not _HOSTNAME_RE.match(hostname):
        return "is not a host name or IP address"
    return None


def user_problem(user: str) -> str | None:
    """Why `user` is not a usable login name, or None."""
    if user.startswith("-"):
        return "must not start with '-'"
    if not _USER_RE.match(user):
        return "is not a valid user name"
    return None


def text_problem(value: str) -> str | None:
    """Free text (paths, comments) may be anything printable on one line."""
    # C0 and C1 controls, DEL, Unicode line/paragraph separators, and lone surrogates
    # (undecodable bytes from argv), which cannot be written to a UTF-8 file.
    if any(
        ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029" or 0xD800 <= ord(c) < 0xE000
        for c in value
    ):
        return "must not contain control characters or line breaks"
    return None


LOG_COMMAND_PREFIX = "cmd:"


MAX_IDENTITY_FILES = 32


def identity_files_problem(paths: Sequence[str]) -> str | None:
    """Why a host's identity files cannot be saved, or None."""
    if len(paths) > MAX_IDENTITY_FILES:
        return f"holds {len(paths)} files; at most {MAX_IDENTITY_FILES}"
    for path in paths:
        if not path:
            return "must not hold an empty path"
        if problem := text_problem(path):
            return f"{path!r} {problem}"
    if len(set(paths)) < len(paths):
        twice = next(p for p in paths if paths.count(p) > 1)
        return f"names {twice!r} twice"
    return None


PROXY_TOKENS = "hprn%"
_PROXY_TOKEN_RE = re.compile(r"%(.?)", re.S)


def proxy_command_problem(command: str) -> str | None:
    """Why a ProxyCommand cannot be saved, or None."""
    if not command.strip():
        return "must not be empty"
    if problem := text_problem(command):
        return problem
    for match in _PROXY_TOKEN_RE.finditer(command):
        if match.group(1) == "" or match.group(1) not in PROXY_TOKENS:
            return f"token %{match.group(1)} is not one devtui expands (%h %p %r %n %%)"
    return None


def expand_proxy_tokens(command: str, values: dict[str, str]) -> str:
    """Replace the tokens in `values` ("h", "p", "r", "n", "%"); leave the others as written."""
    return _PROXY_TOKEN_RE.sub(lambda m: values.get(m.group(1), m.group(0)), command)


def log_source_problem(source: str) -> str | None:
    """Why `source` cannot be a log source (an absolute remote path, or "cmd:COMMAND"), or None."""
    problem = text_problem(source)
    if problem:
        return problem
    if source.startswith(LOG_COMMAND_PREFIX):
        return None if source[len(LOG_COMMAND_PREFIX) :].strip() else "has no command after cmd:"
    if not source.startswith("/"):
        return 'must be an absolute path on the host (/var/log/app.log) or "cmd:COMMAND"'
    return None


class Note(str):
    """A note for the user: a setting devtui cannot honour, or changed to a safer value.

    It is its text (a str: printed, joined and searched as before, "Host web: ..." for
    humans), and it knows the host it concerns: `host` (None when it concerns no one host,
    e.g. an unreadable Include) and `hosts` (every host it concerns, for a setting shared by
    several). JSON output gives both.
    """

    host: str | None
    hosts: tuple[str, ...]

    def __new__(cls, text: str, host: str | None = None, hosts: Sequence[str] = ()) -> Note:
        note = super().__new__(cls, text)
        note.hosts = tuple(hosts) if hosts else ((host,) if host is not None else ())
        note.host = host if host is not None or len(note.hosts) != 1 else note.hosts[0]
        return note

    @property
    def text(self) -> str:
        """The words, as a plain str."""
        return str.__str__(self)

    def for_host(self, host: str) -> Note:
        """The same words about `host` (a pasted line's notes, once its name is known)."""
        return Note(self.text, host)

    def as_json(self) -> dict[str, Any]:
        """{"host": ..., "hosts": [...], "text": ...} for --json output."""
        return {"host": self.host, "hosts": list(self.hosts), "text": self.text}


def note_about(text: str, host: str | None) -> Note:
    """`text` as a Note about `host`; a Note already about a host keeps it."""
    if isinstance(text, Note) and text.hosts:
        return text
    return Note(str.__str__(text), host)


@dataclass(frozen=True, order=True)
class Endpoint:
    """An address and port, written "ADDR:PORT" ("[v6]:PORT" for IPv6)."""

    address: str
    port: int

    def __post_init__(self) -> None:
        # Compared and shown in one spelling: "0:8080" is the 0.0.0.0:8080 it binds.
        object.__setattr__(self, "address", canonical_address(self.address))

    def __str__(self) -> str:
        if ":" in self.address:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"

    @property
    def all_interfaces(self) -> bool:
        """True when this listens on every interface, i.e. is reachable from other machines."""
        if self.address in ALL_INTERFACES:
            return True
        ip = _ip(self.address)
        return ip is not None and ip.is_unspecified

    @property
    def exposed(self) -> bool:
        """True when a listener here may be reachable from other machines: any address that
        is not loopback (all interfaces, a LAN address, a host name other than localhost)."""
        return not self.loopback

    @property
    def loopback(self) -> bool:
        """True for 127.0.0.0/8, ::1 and localhost."""
        if self.address.lower() == "localhost":
            return True
        ip = _ip(self.address)
        return ip is not None and ip.is_loopback

    @classmethod
    def parse(cls, text: str | int, default_address: str = LOOPBACK) -> Endpoint:
        """Parse "PORT", "ADDR:PORT" or "[V6]:PORT"; raises ValueError with the reason."""
        if isinstance(text, bool):
            raise ValueError('expected "ADDR:PORT" or a port number')
        if isinstance(text, int):
            return cls(default_address, check_port(text))
        text = text.strip()
        if text.startswith("["):
            close = text.find("]")
            if close < 0 or text[close + 1 : close + 2] != ":":
                raise ValueError(f'{text!r} is not "[ADDR]:PORT"')
            address, port_text = text[1:close], text[close + 2 :]
            if ":" not in address:  # brackets are for IPv6 only
                raise ValueError(f"address {address!r} is not a valid IPv6 address")
        elif text.count(":") == 1:
            address, port_text = text.split(":")
        elif ":" not in text:
            address, port_text = default_address, text
        else:
            raise ValueError(f'{text!r}: write IPv6 addresses in brackets, e.g. "[::1]:8080"')
        if not (port_text.isascii() and port_text.isdigit()):
            raise ValueError(f"{port_text!r} is not a port number")
        if address == "*" or address == "":
            address = "0.0.0.0"
        problem = hostname_problem(address)
        if problem:
            raise ValueError(f"address {address!r} {problem}")
        return cls(address, check_port(int(port_text)))


def canonical_address(address: str) -> str:
    """The one spelling of an IP address, as the OS binds it: `0`, `0x0` and `000` are
    0.0.0.0, `127.1` is 127.0.0.1, `0::` and `0:0:0:0:0:0:0:0` are `::`. Host names stay."""
    if ":" in address:
        try:
            return str(ipaddress.IPv6Address(address))
        except ValueError:
            return address
    if _NUMERIC_V4_RE.match(address):
        try:
            # inet_aton, as getaddrinfo reads a numeric host: every spelling the OS accepts.
            return socket.inet_ntoa(socket.inet_aton(address))
        except OSError:
            return address
    return address


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address `address` spells (an IPv4-mapped IPv6 one as IPv4), or None."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def check_port(port: int) -> int:
    """Return `port` if it is 1-65535, else raise ValueError."""
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is outside 1-65535")
    return port


_UNSET: Any = object()  # identity_file not given


@dataclass(init=False)
class HostSpec:
    """A remote machine as the user configured it."""

    name: str
    hostname: str
    port: int = 22
    user: str | None = None
    jump: str | None = None
    compression: bool = False
    forward_agent: bool = False
    # New remote ports: offered ("ask"), forwarded by themselves ("always"), or neither.
    auto_forward: AutoForward = "ask"
    # Ports never offered; None: 22 and every port below 1024 but 80 and 443.
    ignore_ports: tuple[int, ...] | None = None
    # What the Logs pane follows on this host: absolute file paths, or "cmd:COMMAND".
    log_sources: tuple[str, ...] = ()
    # Every key file tried, in order (ssh's -i / IdentityFile); identity_file is the first.
    identity_files: tuple[str, ...] = ()
    # This host's own keepalive and connect timeout (ssh's ServerAliveInterval,
    # ServerAliveCountMax, ConnectTimeout); None: the one in [settings].
    keepalive_interval: float | None = None
    keepalive_count_max: int | None = None
    connect_timeout: float | None = None
    # An OpenSSH certificate offered with the matching key (ssh's CertificateFile).
    certificate_file: str | None = None
    # A local command whose stdin/stdout carry the connection (ssh's ProxyCommand; tokens
    # %h %p %r %n %% expanded by devtui). Excludes `jump`.
    proxy_command: str | None = None

    def __init__(
        self,
        name: str,
        hostname: str,
        port: int = 22,
        user: str | None = None,
        identity_file: str | None = _UNSET,
        jump: str | None = None,
        compression: bool = False,
        forward_agent: bool = False,
        auto_forward: AutoForward = "ask",
        ignore_ports: tuple[int, ...] | None = None,
        log_sources: tuple[str, ...] = (),
        identity_files: Sequence[str] = (),
        keepalive_interval: float | None = None,
        keepalive_count_max: int | None = None,
        connect_timeout: float | None = None,
        certificate_file: str | None = None,
        proxy_command: str | None = None,
    ) -> None:
        self.name = name
        self.hostname = hostname
        self.port = port
        self.user = user
        self.jump = jump
        self.compression = compression
        self.forward_agent = forward_agent
        self.auto_forward = auto_forward
        self.ignore_ports = ignore_ports
        self.log_sources = log_sources
        self.keepalive_interval = keepalive_interval
        self.keepalive_count_max = keepalive_count_max
        self.connect_timeout = connect_timeout
        self.certificate_file = certificate_file
        self.proxy_command = proxy_command
        files = tuple(identity_files)
        # identity_file is not a field: replace(spec, identity_file=X) passes it beside the
        # old list, and then it wins (one key, X; None: none); replace(spec,
        # identity_files=...) leaves it out, and the list wins.
        if identity_file is not _UNSET and files[:1] != (identity_file,):
            files = (identity_file,) if identity_file else ()
        self.identity_files = files

    if TYPE_CHECKING:
        # What type checkers see: a field, so replace(spec, identity_file=X) checks.
        identity_file: str | None = None
    else:

        @property
        def identity_file(self) -> str | None:
            """The first key file tried (None: agent and default keys)."""
            return self.identity_files[0] if self.identity_files else None

    def as_json(self) -> dict[str, Any]:
        """Every field of the host, JSON-ready (`hosts list --json`); `identity_file` (the
        first of `identity_files`) is kept for scripts written before the list."""
        found = _fields_json(self)
        found["identity_file"] = self.identity_file
        return found

    @property
    def destination(self) -> str:
        """user@hostname:port, as shown to users."""
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{user}{host}:{self.port}"


@dataclass
class TunnelSpec:
    """A port forward as the user configured it.

    local:   listen on this machine, connect to `target` from the remote.
    remote:  listen on the remote, connect to `target` from this machine; with no target,
             a reverse SOCKS proxy (ssh -R [bind:]port): each connection to the remote
             port asks for a destination (SOCKS4/4a/5) that devtui opens from this machine.
    dynamic: SOCKS proxy listening on this machine; no target.
    """

    name: str
    host: str
    kind: TunnelKind
    listen: Endpoint
    target: Endpoint | None = None
    autostart: bool = False
    # A reverse SOCKS proxy's destinations (OpenSSH's PermitRemoteOpen): "any", "public"
    # (addresses on the internet: not this machine, its LAN, link-local or cloud metadata)
    # or HOST:PORT patterns ("*" wildcards). None: PERMIT_DEFAULT.
    permit_open: tuple[str, ...] | None = None
    # Check the target now and then while no connection is open ("target down since 14:05");
    # off for a target that must not see stray connections.
    probe: bool = True
    # Made from a port offer and not saved yet: lives in memory until saved (never written).
    discovered: bool = field(default=False, compare=False)

    @property
    def reverse_socks(self) -> bool:
        """True for a remote tunnel with no target: a SOCKS proxy on the remote whose
        connections devtui opens from this machine (ssh -R [bind:]port)."""
        return self.kind == "remote" and self.target is None

    def as_json(self) -> dict[str, Any]:
        """Every field of the tunnel, JSON-ready (`tunnels list --json`), plus what follows
        from them: whether it listens on every interface (here, or on the remote for a
        remote listener), whether it is a reverse SOCKS proxy, and its one-line route."""
        return {
            **_fields_json(self),
            "all_interfaces": self.listen.all_interfaces,
            "reverse_socks": self.reverse_socks,
            "route": self.describe(),
        }

    @property
    def permits(self) -> tuple[str, ...]:
        """Where a reverse SOCKS proxy may connect (its permit_open, or the default)."""
        return PERMIT_DEFAULT if self.permit_open is None else self.permit_open

    def describe(self) -> str:
        """One human line: "local 127.0.0.1:7860 -> 127.0.0.1:7860 via intern"."""
        if self.reverse_socks:
            arrow = f" -> SOCKS (from this machine; to {', '.join(self.permits)})"
        else:
            arrow = f" -> {self.target}" if self.target else " (SOCKS)"
        return f"{self.kind} {self.listen}{arrow} via {self.host}"


def display_path(path: Path) -> str:
    """`path` for people: "~/.ssh/id_ed25519" when it is under the home folder (forward
    slashes: it also goes into the config, and every OS reads "~/x")."""
    try:
        rel = path.absolute().relative_to(Path.home())
    except ValueError:
        return str(path)
    return "~/" + rel.as_posix()


def _fields_json(spec: Any) -> dict[str, Any]:
    """A spec's dataclass fields as JSON values: tuples as lists, endpoints as "ADDR:PORT"."""

    def plain(value: Any) -> Any:
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, Endpoint):
            return str(value)
        return value

    return {f.name: plain(getattr(spec, f.name)) for f in fields(spec)}


# -- where a reverse SOCKS proxy may connect ----------------------------------------------------

PERMIT_ANY = "any"
PERMIT_PUBLIC = "public"
# A server that can use the proxy must not reach this machine's own services, its LAN or a
# cloud metadata address (169.254.169.254) through it unless the user says so.
PERMIT_DEFAULT: tuple[str, ...] = (PERMIT_PUBLIC,)


def permit_problem(entry: str) -> str | None:
    """Why `entry` is not a permit_open entry ("any", "public", HOST:PORT), or None."""
    if entry in (PERMIT_ANY, PERMIT_PUBLIC):
        return None
    host, sep, port = entry.rpartition(":")
    if not sep or not host:
        return 'is not "any", "public" or HOST:PORT (e.g. "localhost:8080", "*.corp:443")'
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host.strip() or any(c.isspace() for c in host):
        return "has no host to match"
    if port != "*" and not (port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535):
        return 'has no port 1-65535 (or "*") after the last ":"'
    return None


def permitted(entries: Sequence[str], host: str, port: int) -> str | None:
    """How far `entries` let a reverse SOCKS client reach `host`:`port`: "any" (as asked),
    "public" (only to addresses on the internet, checked after the name is looked up), or
    None (not at all). HOST:PORT patterns match the name as the client wrote it, as
    OpenSSH's PermitRemoteOpen does."""
    import fnmatch

    name = host.lower().rstrip(".")
    public = False
    for entry in entries:
        if entry == PERMIT_ANY:
            return PERMIT_ANY
        if entry == PERMIT_PUBLIC:
            public = True
            continue
        pattern, _, want = entry.rpartition(":")
        pattern = pattern[1:-1] if pattern.startswith("[") and pattern.endswith("]") else pattern
        if (want == "*" or want == str(port)) and fnmatch.fnmatchcase(name, pattern.lower()):
            return PERMIT_ANY
    return PERMIT_PUBLIC if public else None


def is_public_address(address: str) -> bool:
    """An address on the internet: not loopback, private, link-local (cloud metadata),
    shared (CGNAT), multicast, reserved or unspecified; IPv4-mapped IPv6 as its IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def tunnel_name(host: str, kind: TunnelKind, port: int, *, socks: bool = False) -> str:
    """The default name of a tunnel: intern-7860, intern-r9000 (remote), intern-socks1080,
    intern-rsocks1080 (reverse SOCKS: `socks` with kind remote)."""
    prefix = {"local": "", "remote": "rsocks" if socks else "r", "dynamic": "socks"}[kind]
    return f"{host}-{prefix}{port}"


@dataclass
class Settings:
    """Global settings ([settings] in the config file)."""

    keepalive_interval: float = 5.0
    keepalive_count_max: int = 3
    reconnect_max_delay: float = 30.0
    connect_timeout: float = 15.0
    known_hosts: str = "~/.ssh/known_hosts"
    log_file: str | None = None
    theme: str | None = None  # the dashboard's colour theme, picked from its command palette
    discover_interval: float = 3.0  # seconds between looks at a host's ports; 0: no watching


def host_settings(settings: Settings, spec: HostSpec) -> Settings:
    """[settings] with the host's own keepalive and connect timeout where it sets them."""
    return replace(
        settings,
        keepalive_interval=settings.keepalive_interval
        if spec.keepalive_interval is None
        else spec.keepalive_interval,
        keepalive_count_max=settings.keepalive_count_max
        if spec.keepalive_count_max is None
        else spec.keepalive_count_max,
        connect_timeout=settings.connect_timeout
        if spec.connect_timeout is None
        else spec.connect_timeout,
    )


@dataclass
class ConfigData:
    """Everything the config file holds, validated."""

    settings: Settings = field(default_factory=Settings)
    hosts: dict[str, HostSpec] = field(default_factory=dict)
    tunnels: dict[str, TunnelSpec] = field(default_factory=dict)

    def tunnels_of(self, host: str) -> list[TunnelSpec]:
        """The tunnels that ride on `host`, in file order."""
        return [t for t in self.tunnels.values() if t.host == host]


def listens_clash(a: TunnelSpec, b: TunnelSpec) -> bool:
    """True when two tunnels would listen on the same port of the same machine."""
    # Local and dynamic tunnels listen here; remote ones listen on their host.
    side_a = a.host if a.kind == "remote" else None
    side_b = b.host if b.kind == "remote" else None
    if side_a != side_b or a.listen.port != b.listen.port:
        return False
    if a.listen.all_interfaces or b.listen.all_interfaces:
        return True
    return bool(_bound(a.listen.address) & _bound(b.listen.address))


def _bound(address: str) -> frozenset[str]:
    """The addresses a listener on `address` takes, spelled one way (::0:1 is ::1)."""
    if address.lower() == "localhost":
        # Binding "localhost" takes every address it resolves to: both loopbacks.
        return frozenset({LOOPBACK, "::1"})
    try:
        return frozenset({str(ipaddress.ip_address(address))})
    except ValueError:  # a host name: the same name is the same place
        return frozenset({address.lower()})
