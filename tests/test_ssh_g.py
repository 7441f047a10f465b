"""`ssh -G` is the judge: a pasted ssh line and an imported ~/.ssh/config mean to devtui what
they mean to OpenSSH.

Hypothesis writes lines and config files from a grammar of the options devtui keeps; each
case runs `ssh -G` (which resolves the settings without connecting) and compares hostname,
port, user, identity files, the jump chain, every forward and compression with what devtui
saves. Where devtui is safer on purpose (`-g`, `-A`, `StrictHostKeyChecking=no`) the test
asserts the safe value and the note that says so. Failing cases found so far are kept as
`@example`s.
"""

from __future__ import annotations

import getpass
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from sshcore.errors import ConfigError, DevtuiError, SshCommandError
from sshcore.model import (
    LOOPBACK,
    ConfigData,
    Endpoint,
    HostSpec,
    TunnelKind,
    TunnelSpec,
    canonical_address,
    expand_proxy_tokens,
    hostname_problem,
    tunnel_name,
)
from sshcore.openssh_config import ImportResult, read_ssh_config, write_host_blocks
from sshcore.sshcmd import ParsedCommand, parse_ssh_command, plan_add, to_ssh_args

SSH = shutil.which("ssh")


def _ssh_g_works() -> bool:
    if SSH is None:
        return False
    try:
        run = subprocess.run(
            [SSH, "-G", "-F", os.devnull, "example.com"],
            capture_output=True,
            text=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return run.returncode == 0 and "hostname example.com" in run.stdout


pytestmark = pytest.mark.skipif(not _ssh_g_works(), reason="needs OpenSSH's client (ssh -G)")


def _home() -> str:
    # ssh expands ~ with the passwd entry, not $HOME (which tests may change).
    if sys.platform != "win32":
        import pwd

        return pwd.getpwuid(os.getuid()).pw_dir
    return str(Path.home())


HOME = _home()
LOCAL_USER = getpass.getuser()
SETTINGS = settings(
    max_examples=int(os.environ.get("DEVTUI_SSH_G_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
GAP_SETTINGS = settings(SETTINGS, max_examples=max(20, SETTINGS.max_examples // 5))


# ---------------------------------------------------------------------------------------------
# What ssh resolved, and what devtui saved, in one shape


Forward = tuple[str, str, int, str | None, int | None]  # kind, bind, port, target host, port
Hop = tuple[str | None, str, int]  # user, host, port


@dataclass
class Resolved:
    """The settings compared, as ssh -G prints them or as devtui saved them."""

    hostname: str
    port: int
    user: str | None  # None: the local user
    identities: tuple[str, ...]  # () : ssh's default keys (devtui: agent and default keys)
    jumps: tuple[Hop, ...]  # first hop first
    forwards: tuple[Forward, ...]
    compression: bool
    # ssh only: what devtui does not keep per host, or changes to a safe value
    gateway_ports: bool = False
    forward_agent: bool = False
    strict_off: str | None = None
    keepalive: tuple[int, int] = (0, 3)
    connect_timeout: str = "none"
    certificates: tuple[str, ...] = ()
    proxy_command: str | None = None
    proxyjump_raw: str = "none"
    notes: list[str] = field(default_factory=list)

    def compared(self) -> tuple[object, ...]:
        return (
            self.hostname,
            self.port,
            self.user,
            self.identities,
            self.jumps,
            tuple(sorted(set(self.forwards), key=repr)),  # one listener per address
            self.compression,
            self.keepalive,
            self.connect_timeout,
            self.certificates,
            self.proxy_command,
        )


_DEFAULT_IDS = tuple(
    f"~/.ssh/{n}"
    for n in ("id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss")
)


def _expand(path: str) -> str:
    return HOME + path[1:] if path == "~" or path.startswith("~/") else path


def _hop(text: str) -> Hop:
    user, _, hostport = text.rpartition("@")
    port = 22
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port = int(tail[1:]) if tail else 22
    elif hostport.count(":") == 1:
        host, port_text = hostport.split(":")
        port = int(port_text)
    else:
        host = hostport
    return (user or None, host.lower(), port)


def _bind(text: str | None) -> str:
    # ssh binds no address given to localhost (devtui: 127.0.0.1); "" and "*" are every interface.
    if text is None or text.lower() == "localhost":
        return LOOPBACK
    if text in ("", "*"):
        return "0.0.0.0"
    return canonical_address(text)


def _endpoint(text: str) -> tuple[str | None, int]:
    if text.startswith("["):
        address, _, port = text[1:].rpartition("]:")
        return address, int(port)
    return None, int(text)


def _ssh_forward(kind: str, value: str) -> Forward:
    listen, _, target = value.partition(" ")
    bind, port = _endpoint(listen)
    if not target:
        return (kind, _bind(bind), port, None, None)
    host, target_port = _endpoint(target)
    assert host is not None
    if kind == "remote" and host == "socks" and target_port == 0:
        return ("remote", _bind(bind), port, None, None)  # reverse SOCKS: no target
    return (kind, _bind(bind), port, canonical_address(host).lower(), target_port)


def parse_ssh_g(stdout: str) -> Resolved:
    """ssh -G's `key value` lines -> Resolved."""
    values: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        key, _, value = line.partition(" ")
        values.setdefault(key.lower(), []).append(value)

    def one(key: str, default: str = "") -> str:
        return values.get(key, [default])[0]

    identities = tuple(values.get("identityfile", []))
    if identities[: len(_DEFAULT_IDS)] == _DEFAULT_IDS:
        identities = ()
    jump = one("proxyjump", "none")
    forwards = [_ssh_forward("local", v) for v in values.get("localforward", [])]
    forwards += [_ssh_forward("remote", v) for v in values.get("remoteforward", [])]
    forwards += [_ssh_forward("dynamic", v) for v in values.get("dynamicforward", [])]
    user = one("user")
    strict = one("stricthostkeychecking", "ask")
    return Resolved(
        hostname=one("hostname").lower(),
        port=int(one("port", "22")),
        user=None if user == LOCAL_USER else user,
        identities=tuple(_expand(i) for i in identities),
        jumps=() if jump == "none" else tuple(_hop(h) for h in jump.split(",")),
        forwards=tuple(forwards),
        compression=one("compression") == "yes",
        gateway_ports=one("gatewayports") == "yes",
        forward_agent=one("forwardagent") == "yes",
        strict_off=strict if strict in ("false", "accept-new") else None,
        keepalive=(int(one("serveraliveinterval", "0")), int(one("serveralivecountmax", "3"))),
        connect_timeout=one("connecttimeout", "none"),
        certificates=tuple(_expand(c) for c in values.get("certificatefile", [])),
        proxy_command=values["proxycommand"][0] if "proxycommand" in values else None,
        proxyjump_raw=jump,
    )


@dataclass
class Judged:
    """ssh -G's verdict on one argv: the settings, or the reason it refused."""

    resolved: Resolved | None
    error: str


def ssh_g(args: Sequence[str], config: str = os.devnull) -> Judged:
    """Run `ssh -G -F config ARGS`; never connects."""
    assert SSH is not None
    run = subprocess.run(
        [SSH, "-G", "-F", config, *args],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "LC_ALL": "C"},
    )
    errors = [
        line
        for line in run.stderr.splitlines()
        if line.strip() and not line.startswith("Pseudo-terminal")
    ]
    if run.returncode != 0:
        return Judged(None, " / ".join(errors) or f"exit {run.returncode}")
    return Judged(parse_ssh_g(run.stdout), " / ".join(errors))


def devtui_resolved(parsed: ParsedCommand) -> Resolved:
    """What devtui saves for a pasted line (into an empty config), in ssh -G's shape."""
    plan = plan_add(ConfigData(), parsed)
    saved = {h.name: h for h in plan.hosts}
    host = saved[plan.host]
    hops: list[Hop] = []
    hop = host
    while hop.jump is not None and len(hops) < 10:
        hop = saved[hop.jump]
        hops.insert(0, (hop.user, hop.hostname.lower(), hop.port))
    forwards: list[Forward] = []
    for t in plan.tunnels:
        target = t.target
        forwards.append(
            (
                t.kind,
                t.listen.address,
                t.listen.port,
                canonical_address(target.address).lower() if target else None,
                target.port if target else None,
            )
        )
    return Resolved(
        hostname=host.hostname.lower(),
        port=host.port,
        user=None if host.user == LOCAL_USER else host.user,
        identities=tuple(_expand(i) for i in host.identity_files),
        jumps=tuple(hops),
        forwards=tuple(forwards),
        compression=host.compression,
        forward_agent=any(h.forward_agent for h in plan.hosts),
        keepalive=_keepalive(host),
        connect_timeout=_timeout(host),
        certificates=(_expand(host.certificate_file),) if host.certificate_file else (),
        notes=[*plan.notes, *parsed.notes],
    )


def _keepalive(host: HostSpec) -> tuple[int, int]:
    """A saved host's keepalive as ssh -G prints it (unset: ssh's defaults, 0 and 3)."""
    interval = host.keepalive_interval
    count = host.keepalive_count_max
    return (0 if interval is None else int(interval), 3 if count is None else count)


def _timeout(host: HostSpec) -> str:
    return "none" if host.connect_timeout is None else str(int(host.connect_timeout))


def _held(seen: Resolved, notes: Sequence[str]) -> Resolved:
    """What devtui can hold of ssh's keepalive and timeout: ServerAliveCountMax 0 and
    ConnectTimeout 0 (no timeout) are left to [settings], with a note saying so."""
    interval, count = seen.keepalive
    if count == 0:
        assert _noted(notes, "ServerAliveCountMax"), notes
        count = 3
    timeout = seen.connect_timeout
    if timeout == "0":
        assert _noted(notes, "ConnectTimeout"), notes
        timeout = "none"
    # One certificate per host: the first ssh offers; the others named in a note.
    certificates = tuple(dict.fromkeys(seen.certificates))
    for extra in certificates[1:]:
        assert _noted(notes, f"CertificateFile {extra} not kept"), notes
    return replace(
        seen, keepalive=(interval, count), connect_timeout=timeout, certificates=certificates[:1]
    )


def _noted(notes: Sequence[str], *words: str) -> bool:
    return any(w.lower() in n.lower() for n in notes for w in words)


def check_safety(seen: Resolved, mine: Resolved) -> None:
    """devtui's safer values, and the notes that say so."""
    assert not mine.forward_agent, "agent forwarding must be saved off"
    if seen.forward_agent:
        assert _noted(mine.notes, "agent"), mine.notes
    if seen.gateway_ports:
        assert _noted(mine.notes, "-g", "GatewayPorts"), mine.notes
    if seen.strict_off:
        assert _noted(mine.notes, "StrictHostKeyChecking"), mine.notes
    for kind, bind, port, target, _ in seen.forwards:
        if kind == "remote" and target is None and not Endpoint(bind, port).loopback:
            # A reverse SOCKS proxy others may reach opens connections from this machine.
            assert _noted(mine.notes, f"reverse SOCKS proxy on {Endpoint(bind, port)}"), mine.notes


def compare_line(words: list[str], keys: Path) -> None:
    """Judge one argv (KEYS/ stands for the folder of identity files): every field kept must
    agree with ssh -G, or both refuse the line."""
    words = [w.replace("KEYS/", f"{keys}{os.sep}") for w in words]
    judged = ssh_g(words)
    try:
        parsed = parse_ssh_command(["ssh", *words])
    except SshCommandError as e:
        message = str(e)
        assert "\n" not in message
        if judged.resolved is None:
            event("both refuse")
            return
        if hostname_problem(judged.resolved.hostname):
            event("devtui refuses a HostName ssh would fail to resolve")
            return
        if judged.resolved.proxy_command is not None and "ProxyCommand" in message:
            # On purpose: a paste never brings a command that runs on every connect.
            assert "by hand" in message and "import" in message, message
            event("ProxyCommand refused from a paste")
            return
        raise AssertionError(f"devtui refuses what ssh accepts: {message}") from None
    if judged.resolved is None:
        if any(w.startswith("ssh://") and "[" in w for w in words):
            # Deliberately lenient: OpenSSH 9.2 refuses an IPv6 address in an ssh:// URI
            # (usage); devtui reads it as RFC 3986 does, the host in brackets.
            event("ssh:// with IPv6: devtui lenient")
            return
        raise AssertionError(f"devtui accepts what ssh refuses ({judged.error})")
    seen = judged.resolved
    try:
        mine = devtui_resolved(parsed)
    except ConfigError as e:
        # Two forwards on one listen port: ssh resolves both but only the first can bind.
        assert "already used by tunnel" in str(e), e
        sides = [("remote" if f[0] == "remote" else "local", f[2]) for f in seen.forwards]
        assert len(set(sides)) < len(sides), e
        event("two forwards on one port: devtui refuses")
        return
    check_safety(seen, mine)
    # ssh lists a file again when -i and -o IdentityFile both name it; it is tried once.
    expected = _replace(_held(seen, mine.notes), identities=tuple(dict.fromkeys(seen.identities)))
    assert mine.compared() == expected.compared(), (judged, parsed)
    event("agree" + (f" (hops: {len(seen.jumps)})" if seen.jumps else ""))
    if any(f[0] == "remote" and f[3] is None for f in seen.forwards):
        event("reverse SOCKS agrees")


def _replace(r: Resolved, **changes: object) -> Resolved:
    return replace(r, **changes)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# The grammar of pasted lines


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Identity files that exist: ssh drops an -i file it cannot read."""
    folder = tmp_path_factory.mktemp("keys")
    for name in KEY_NAMES:
        (folder / name).write_text("not a key\n")
    return folder


KEY_NAMES = ("id_one", "id_two", "my key")
PROXY_COMMANDS = ("nc %h %p", "ssh -W %h:%p  gw", "connect %r@%n %%d 'a b'")
# Time values as ssh spells them, and some it refuses (in ServerAliveCountMax, every unit).
TIME_VALUES = ("1m30s", "2h", "none", "5S", "1w", "x", "-1", "2.5", "1m ", "+7", "1s1s")
_alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
_label = st.builds(
    lambda head, tail: head + (f"-{tail}" if tail else ""),
    st.text(_alnum, min_size=1, max_size=6),
    st.text(_alnum, max_size=4),
)
_dns = st.builds(
    lambda first, labels, upper: (
        (f"{first}." * bool(first) + ".".join(labels)).upper()
        if upper
        else f"{first}." * bool(first) + ".".join(labels)
    ),
    st.sampled_from(["", "ssh", "web", "db1"]),
    st.lists(_label, min_size=1, max_size=2),
    st.booleans(),
).map(lambda h: h if not h.replace(".", "").isdigit() else f"h{h}")
_ipv4 = st.ip_addresses(v=4).map(str)
_ipv6 = st.sampled_from(["::1", "2001:db8::7", "fe80::1"])
hosts = st.one_of(_dns, _dns, _ipv4, _ipv6)
users = st.from_regex(r"[a-z_][a-z0-9_.-]{0,7}", fullmatch=True)
ports = st.one_of(st.sampled_from([22, 2222, 37367, 65535]), st.integers(1, 65535))
bad_ports = st.sampled_from(["0", "65536", "x1"])


def _o(key: str, value: str, spelling: int) -> list[str]:
    """-o in its three spellings."""
    return [["-o", f"{key}={value}"], [f"-o{key}={value}"], ["-o", f"{key} {value}"]][spelling]


spellings = st.integers(0, 2)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@st.composite
def hops(draw: st.DrawFn) -> str:
    host = draw(st.one_of(_dns, _ipv4, _ipv6))
    user = draw(st.none() | users)
    port = draw(st.none() | ports)
    text = _bracket(host) if port is not None else host
    if ":" in host and port is None:
        text = host
    return (f"{user}@" if user else "") + text + (f":{port}" if port is not None else "")


@st.composite
def forward_specs(draw: st.DrawFn, kind: str, socks: bool) -> str:
    binds = st.sampled_from(["", "localhost", "127.0.0.1", "*", "0.0.0.0", "[::1]", "127.0.0.2"])
    bind = draw(st.none() | binds)
    port = draw(ports)
    if kind == "D" or (kind == "R" and socks):
        return f"{bind}:{port}" if bind is not None else str(port)
    target = _bracket(draw(st.one_of(_dns, _ipv4, _ipv6, st.just("localhost"))))
    spec = f"{port}:{target}:{draw(ports)}"
    return f"{bind}:{spec}" if bind is not None else spec


@st.composite
def destinations(draw: st.DrawFn) -> str:
    host = draw(hosts)
    user = draw(st.none() | users)
    at = f"{user}@" if user else ""
    if draw(st.booleans()):
        port = draw(st.none() | ports)
        tail = f":{port}" if port is not None else ""
        return f"ssh://{at}{_bracket(host) if tail else host}{tail}"
    return at + host


@st.composite
def pasted_lines(draw: st.DrawFn) -> list[str]:
    """The words of an ssh line (without "ssh")."""
    keys = "KEYS/"
    parts: list[list[str]] = []
    sp = spellings

    def port_part() -> list[str]:
        value = draw(bad_ports) if draw(st.integers(0, 9)) == 9 else str(draw(ports))
        if draw(st.booleans()):
            return ["-p", value] if draw(st.booleans()) else [f"-p{value}"]
        return _o("Port", value, draw(sp))

    def user_part() -> list[str]:
        value = draw(users)
        if draw(st.booleans()):
            return ["-l", value]
        return _o("User", value, draw(sp))

    def identity_part() -> list[str]:
        path = keys + draw(st.sampled_from(KEY_NAMES))
        form = draw(st.integers(0, 2))
        if form == 0:
            return ["-i", path]
        if form == 1 and " " not in path:
            return _o("IdentityFile", path, draw(sp))
        return ["-o", f'IdentityFile="{path}"']

    for _ in range(draw(st.integers(0, 2))):
        parts.append(port_part())
    for _ in range(draw(st.integers(0, 2))):
        parts.append(user_part())
    if draw(st.integers(0, 3)) == 3:
        name = draw(st.sampled_from(["%h.example.com", "db.%h", "real.example.org"]))
        parts.append(_o("HostName", name, draw(sp)))
    for _ in range(draw(st.integers(0, 3))):  # every one kept, in order
        parts.append(identity_part())
    if draw(st.integers(0, 3)) == 3:
        chain = ",".join(draw(st.lists(hops(), min_size=1, max_size=3)))
        parts.append(["-J", chain] if draw(st.booleans()) else _o("ProxyJump", chain, draw(sp)))
    if draw(st.integers(0, 3)) == 3:
        parts.append(["-C"] if draw(st.booleans()) else _o("Compression", "yes", draw(sp)))
    for _ in range(draw(st.integers(0, 3))):
        letter = draw(st.sampled_from("LRD"))
        socks = letter == "R" and draw(st.booleans())  # reverse SOCKS: -R [bind:]port
        spec = draw(forward_specs(letter, socks=socks))
        if draw(st.integers(0, 3)) == 3:
            key = {"L": "LocalForward", "R": "RemoteForward", "D": "DynamicForward"}[letter]
            value = (
                spec if letter == "D" else spec.replace(":", " ", 1 if spec.count(":") == 2 else 2)
            )
            if letter == "D" or socks:
                value = spec
            elif spec.count(":") >= 3:
                # "bind:port host:hostport"
                head, _, rest = spec.partition(":")
                port_, _, rest2 = rest.partition(":")
                value = f"{head}:{port_} {rest2}"
            elif letter != "D":
                port_, _, rest2 = spec.partition(":")
                value = f"{port_} {rest2}"
            parts.append(_o(key, value, draw(sp)))
        elif draw(st.integers(0, 3)) == 3:
            parts.append([f"-N{letter}", spec])  # bundled: -N -L spec
        else:
            parts.append([f"-{letter}", spec])
    for _ in range(draw(st.integers(0, 2))):  # a host's own keepalive and connect timeout
        key = draw(
            st.sampled_from(["ServerAliveInterval", "ServerAliveCountMax", "ConnectTimeout"])
        )
        value = draw(st.one_of(st.integers(0, 99).map(str), st.sampled_from(TIME_VALUES)))
        parts.append(_o(key, value, draw(sp)))
    for _ in range(draw(st.integers(0, 3)) // 2):  # 0 or 1, now and then 2 (one kept)
        cert = keys + draw(st.sampled_from(KEY_NAMES[:2]))
        parts.append(_o("CertificateFile", cert, draw(sp)))
    if draw(st.integers(0, 9)) == 9:
        parts.append(["-o", draw(st.sampled_from(["ProxyCommand=nc %h %p", "ProxyCommand=none"]))])
    # Safety: saved safe, said out loud.
    if draw(st.integers(0, 4)) == 4:
        parts.append(draw(st.sampled_from([["-A"], ["-g"], ["-o", "ForwardAgent=yes"]])))
    if draw(st.integers(0, 4)) == 4:
        value = draw(st.sampled_from(["no", "accept-new", "yes"]))
        parts.append(_o("StrictHostKeyChecking", value, draw(sp)))
    if draw(st.integers(0, 4)) == 4:
        parts.append(_o("GatewayPorts", "yes", draw(sp)))
    if draw(st.integers(0, 5)) == 5:
        key, value = draw(
            st.sampled_from([("UserKnownHostsFile", "/dev/null"), ("IdentitiesOnly", "yes")])
        )
        parts.append(_o(key, value, draw(sp)))
    # Flags that change nothing saved.
    for _ in range(draw(st.integers(0, 2))):
        parts.append(
            [
                draw(
                    st.sampled_from(
                        [
                            "-v",
                            "-q",
                            "-T",
                            "-t",
                            "-N",
                            "-4",
                            "-6",
                            "-X",
                            "-NT",
                            "-qN",
                            "-CNq",
                            "-vvv",
                            "-f",
                            "-fN",
                        ]
                    )
                )
            ]
        )
    parts = draw(st.permutations(parts))
    at = draw(st.integers(0, len(parts)))
    words = [w for part in parts[:at] for w in part]
    words.append(draw(destinations()))
    words += [w for part in parts[at:] for w in part]
    if draw(st.integers(0, 4)) == 4:
        words += draw(st.sampled_from([["uptime"], ["ls", "-la", "/tmp"], ["echo", "-p", "1"]]))
    return words


# ---------------------------------------------------------------------------------------------
# Pasted lines


@SETTINGS
@given(words=pasted_lines())
# The cases: ssh keeps the first value it obtains.
@example(words=["-l", "alice", "bob@host"])
@example(words=["bob@host", "-l", "alice"])
@example(words=["-p", "37367", "ssh://h:2222"])
@example(words=["-p", "1", "-p", "2", "h"])
@example(words=["-o", "Port=5", "-p", "6", "h"])
@example(words=["-o", "User=b", "-l", "a", "-o", "User=c", "h"])
@example(words=["-o", "HostName=%h.example.com", "web"])
@example(words=["-o", 'IdentityFile="KEYS/my key"', "h"])
@example(words=["-o", "LocalForward=8080 db:5432", "-o", "LocalForward 8081 db:5433", "h"])
@example(words=["-J", "a,u@b:2200,[::1]:22", "h"])
# Reverse SOCKS: -R [bind:]port with no target, in every spelling.
@example(words=["-R", "1080", "h"])
@example(words=["-R", "0.0.0.0:1080", "h"])
@example(words=["-R", "[::1]:1080", "h"])
@example(words=["-R", ":1080", "-R", "localhost:1081", "h"])
@example(words=["-o", "RemoteForward=1080", "h"])
@example(words=["-o", "RemoteForward 127.0.0.2:1080", "-NR", "9000:db:80", "h"])
# Every identity file, in the order ssh tries them (the same file once).
@example(words=["-i", "KEYS/id_two", "-o", "IdentityFile=KEYS/id_one", "h", "-i", "KEYS/id_two"])
@example(words=["-o", "IdentityFile=KEYS/id_two", "-i", "KEYS/id_two", "-i", "KEYS/my key", "h"])
@example(words=["-C", "-o", "Compression=no", "h"])
@example(words=["-f", "h"])
@example(words=["-o", "Port", "22", "h"])
# Shrunk failures the test found.
@example(words=["::1", "-o", "Port=22", "-o", "HostName=%h.example.com"])
@example(words=["0.0.0.0", "-J", "::1"])
@example(words=["h0", "-i", "KEYS/id_one", "-o", "ProxyJump=h0"])
@example(words=["0.0.0.0", "-L", "22:localhost:22", "-L", "22:0.0.0.0:22"])
@example(words=["::1", "-D", "37367", "-D", "localhost:37367"])
@example(words=["ssh://[::1]:22", "-o", "Port=22", "-l", "_", "-o", "HostName=%h.example.com"])
@example(words=["h0", "-o", "ProxyCommand=nc %h %p", "-o", "ProxyJump=::1"])
@example(words=["::1", "-o", "ProxyCommand=nc %h %p", "-J", "0.0.0.0"])
def test_a_pasted_line_means_what_it_means_to_ssh(words: list[str], key_dir: Path) -> None:
    """Everything devtui keeps from a line is what ssh -G resolves (or both refuse it)."""
    compare_line(words, key_dir)


# ---------------------------------------------------------------------------------------------
# ~/.ssh/config import: `ssh -G -F FILE ALIAS` for every host devtui imports


ALIASES = ["web", "Web", "db1", "db2", "bastion", "gw", "corp", "bastion.corp", "app.corp"]
WILDCARDS = ["*", "*.corp", "db*", "!db2", "w?b", "!bastion*"]
MATCHES = ["all", "host db*", "originalhost web", "!host *.corp", "user alice", "localuser nobody"]


def _keyword(draw: st.DrawFn, key: str) -> str:
    """Key spelled as people do: any case."""
    return draw(st.sampled_from([key, key.lower(), key.upper(), key.swapcase()]))


@st.composite
def option_lines(draw: st.DrawFn) -> str:
    """One `Key value` line of a Host block, in any of ssh's spellings."""
    choices: list[tuple[str, st.SearchStrategy[str]]] = [
        ("HostName", st.sampled_from(["%h.example.com", "10.0.0.5", "Real.Example.org", "%h"])),
        ("User", st.sampled_from(["alice", "bob"])),
        ("Port", st.sampled_from(["2200", "22", "37367"])),
        (
            "IdentityFile",
            st.sampled_from(
                ["KEYS/id_one", "~/.ssh/id_%h", "%d/.ssh/id_%r", '"KEYS/my key"', "k_%p_%u_%n"]
            ),
        ),
        (
            "ProxyJump",
            st.sampled_from(
                ["bastion", "ops@bastion.corp:2200", "gw,bastion", "none", "corp", "u@[::1]:22"]
            ),
        ),
        ("Compression", st.sampled_from(["yes", "no"])),
        ("LocalForward", st.sampled_from(["8080 db:5432", "127.0.0.1:8081 [::1]:80"])),
        (
            "RemoteForward",  # a target, or none: reverse SOCKS
            st.sampled_from(["9000 localhost:3000", "1080", "0.0.0.0:1082", "[::1]:1083"]),
        ),
        ("DynamicForward", st.sampled_from(["1080", "127.0.0.1:1081"])),
        ("ForwardAgent", st.just("yes")),
        ("StrictHostKeyChecking", st.sampled_from(["no", "accept-new"])),
        ("GatewayPorts", st.just("yes")),
        ("ServerAliveInterval", st.sampled_from(["15", "0", "1m", "none"])),
        ("ServerAliveCountMax", st.sampled_from(["1", "3", "0"])),
        ("ConnectTimeout", st.sampled_from(["9", "0", "2h", "none"])),
        ("CertificateFile", st.sampled_from(["KEYS/id_one", "KEYS/id_two"])),
    ]
    choices.append(
        (
            "ProxyCommand",
            st.sampled_from(["nc %h %p", "ssh -W %h:%p  gw", "connect %r@%n %%d", "x %d", "none"]),
        )
    )
    key, values = draw(st.sampled_from(choices))
    value = draw(values)
    sep = draw(st.sampled_from([" ", "=", " = ", "\t"]))
    comment = "  # why" if draw(st.integers(0, 4)) == 4 else ""
    return f"    {_keyword(draw, key)}{sep}{value}{comment}"


@st.composite
def config_texts(draw: st.DrawFn) -> dict[str, str]:
    """{file name: text}: "config" and the files it includes (INC/ is their folder)."""
    files: dict[str, str] = {}

    def block_lines(depth: int) -> list[str]:
        lines: list[str] = []
        if draw(st.integers(0, 2)) == 2:
            lines.append(draw(option_lines()))  # before any Host: applies to all
        for _ in range(draw(st.integers(1, 5))):
            if draw(st.integers(0, 5)) == 5:
                lines.append(f"{_keyword(draw, 'Match')} {draw(st.sampled_from(MATCHES))}")
            else:
                patterns = draw(
                    st.lists(st.sampled_from(ALIASES + WILDCARDS), min_size=1, max_size=3)
                )
                comment = "  # team" if draw(st.integers(0, 4)) == 4 else ""
                lines.append(f"{_keyword(draw, 'Host')} {' '.join(patterns)}{comment}")
            for _ in range(draw(st.integers(0, 4))):
                lines.append(draw(option_lines()))
            if depth == 0 and draw(st.integers(0, 5)) == 5:
                name = f"inc{len(files)}.conf"
                files[name] = "\n".join(block_lines(1)) + "\n"
                lines.append(
                    f"    Include {draw(st.sampled_from(['INC/inc*.conf', f'INC/{name}']))}"
                )
        return lines

    files["config"] = "\n".join(block_lines(0)) + "\n"
    return files


def _write_config(folder: Path, files: dict[str, str], keys: Path) -> Path:
    for name, text in files.items():
        text = text.replace("INC/", f"{folder}{os.sep}").replace("KEYS/", f"{keys}{os.sep}")
        (folder / name).write_text(text)
    return folder / "config"


def _expand_ssh_identity(path: str, seen: Resolved, alias: str) -> str:
    """What ssh will open for an IdentityFile it printed raw (tokens expand at connect)."""
    user = seen.user or LOCAL_USER
    for token, value in (("%d", HOME), ("%h", seen.hostname), ("%p", str(seen.port))):
        path = path.replace(token, value)
    path = path.replace("%r", user).replace("%u", LOCAL_USER).replace("%n", alias)
    return _expand(path)


def _said(notes: list[str], name: str, *words: str) -> bool:
    return any(name in n and any(w.lower() in n.lower() for w in words) for n in notes)


def _judge_host(
    config: Path,
    args: list[str],
    alias: str,
    host: HostSpec,
    found: ImportResult,
    depth: int = 0,
) -> None:
    """`ssh -G -F config ARGS alias` against the host devtui saved, hops included."""
    judged = ssh_g([*args, alias], str(config))
    assert judged.resolved is not None, f"devtui imported {alias}, ssh refuses: {judged.error}"
    seen = judged.resolved
    ids = tuple(_expand(_expand_ssh_identity(i, seen, alias)) for i in seen.identities)
    mine = (host.hostname, host.port, host.user, tuple(_expand(i) for i in host.identity_files))
    theirs = (seen.hostname, seen.port, seen.user, tuple(dict.fromkeys(ids)))
    assert mine == theirs, f"{alias} {args}: devtui {mine} != ssh {theirs}"
    assert host.compression == seen.compression, alias
    # Safer on purpose, and said; what the model cannot hold, said too.
    notes: list[str] = list(found.notes)
    if depth == 0:  # an alias's own notes name it as their host (the JSON's "host")
        notes = [n for n in found.notes if n.host == alias]
    assert not host.forward_agent
    if seen.forward_agent:
        assert _said(notes, alias, "ForwardAgent"), notes
    if seen.gateway_ports:
        assert _said(notes, alias, "GatewayPorts"), notes
    if seen.strict_off:
        assert _said(notes, alias, "StrictHostKeyChecking"), notes
    held = _held(seen, [n for n in notes if alias in n])
    assert (_keepalive(host), _timeout(host)) == (held.keepalive, held.connect_timeout), alias
    cert = (_expand(host.certificate_file),) if host.certificate_file else ()
    assert cert == held.certificates, alias
    # ProxyCommand as written; %n (the alias ssh was given) fixed at import.
    proxy = seen.proxy_command
    if proxy is not None:
        proxy = expand_proxy_tokens(proxy, {"n": alias.replace("%", "%%")})
    assert host.proxy_command == proxy, alias
    if depth == 0:  # an alias: its forwards (kind, bind, port, target; reverse SOCKS: none)
        mine_forwards = {_forward(t) for t in found.tunnels if t.host == alias}
        assert mine_forwards == set(seen.forwards), alias
        for kind, bind, port, target, _ in seen.forwards:
            if kind == "remote" and target is None and not Endpoint(bind, port).loopback:
                assert _said(notes, alias, "reverse SOCKS proxy"), notes
        if any(f[0] == "remote" and f[3] is None for f in seen.forwards):
            event("reverse SOCKS imported")
    saved = {h.name: h for h in found.hosts}
    hops = [h for h in (seen.jumps or ())]
    jump = saved.get(host.jump) if host.jump else None
    if not hops:
        assert jump is None, f"{alias}: devtui jumps through {host.jump}, ssh connects directly"
        return
    assert jump is not None, f"{alias}: ssh jumps through {hops}, devtui connects directly"
    assert depth < 6, "jump chain too deep"
    # The last hop is `ssh [-l user] [-p port] [-J earlier hops] HOP`, with the same file.
    user, _, port = hops[-1]
    hop_args: list[str] = []
    if user:
        hop_args += ["-l", user]
    raw = judged_proxyjump(judged)[-1]
    if ":" in raw.rpartition("@")[2].replace("[::1]", "") or (
        raw.rpartition("@")[2].startswith("[") and "]:" in raw
    ):
        hop_args += ["-p", str(port)]
    if len(hops) > 1:
        hop_args += ["-J", ",".join(judged_proxyjump(judged)[:-1])]
    _judge_host(config, hop_args, _hop_name(raw), jump, found, depth + 1)


def judged_proxyjump(judged: Judged) -> list[str]:
    assert judged.resolved is not None
    return judged.resolved.proxyjump_raw.split(",")


def _hop_name(raw: str) -> str:
    hostport = raw.rpartition("@")[2]
    if hostport.startswith("["):
        return hostport[1:].partition("]")[0]
    return hostport.partition(":")[0]


def compare_config(files: dict[str, str], folder: Path, keys: Path) -> None:
    """Import the file with devtui and judge every imported host with ssh -G."""
    config = _write_config(folder, files, keys)
    try:
        found = read_ssh_config(config)
    except DevtuiError as e:
        raise AssertionError(f"devtui refuses a config: {e}") from None
    saved = {h.name: h for h in found.hosts}
    aliases = [h.name for h in found.hosts if h.name not in found.jump_hosts]
    for alias in aliases:
        _judge_host(config, [], alias, saved[alias], found)
    text = "\n".join(found.notes)
    defined = {
        p
        for name in files
        for line in files[name].splitlines()
        if line.split()[:1] and line.split()[0].lower() == "host"
        for p in line.split("#")[0].split()[1:]
        if not any(c in p for c in "*?!")
    }
    for alias in defined - set(aliases):
        # Left out: a note names it, and it is something ssh refuses or devtui cannot hold.
        assert f"Host {alias}" in text or f"Host {alias!r}" in text, (alias, found.notes)
        judged = ssh_g([alias], str(config))
        if judged.resolved is not None:
            assert "skipped" in text, (alias, found.notes)
    event(f"imported {len(aliases)} of {len(defined)}")


CONFIG_SETTINGS = settings(SETTINGS, max_examples=max(20, SETTINGS.max_examples // 2))


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ssh_config")


@CONFIG_SETTINGS
@given(files=config_texts())
# The cases.
@example(files={"config": "Host web1 web2 # team\n    LocalForward 8080 db:5432 # ops\n"})
@example(
    files={
        "config": "Host web\n    RemoteForward 1080\n    RemoteForward 0.0.0.0:1082\n"
        "Host *\n    RemoteForward [::1]:1083 # reverse SOCKS\n"
    }
)
@example(
    files={
        "config": "Host corp\n    HostName corp.internal\n"
        "Host app\n    ProxyJump ops@bastion.corp:2200\n"
        "Host bastion.corp\n    HostName 192.0.2.1\nHost *\n    User everyone\n"
    }
)
@example(files={"config": "Host corp.example\n    ProxyJump corp.example:2200\n"})
@example(files={"config": "Host web\n    Include INC/inc0.conf\n", "inc0.conf": "Host db1\n"})
@example(files={"config": "Host Web\n    Port 7\nHost web\n    Port 8\n"})
@example(files={"config": "Host a\n    ProxyJump gw,bastion\nHost gw\n    User u\n"})
# Every IdentityFile, in order: those of Host * too, after the host's own.
@example(
    files={
        "config": "IdentityFile KEYS/id_two\nHost web\n    IdentityFile KEYS/id_one\n"
        "Host *\n    IdentityFile ~/.ssh/id_%h\n    IdentityFile KEYS/id_one\n"
    }
)
# Shrunk failures the test found.
@example(files={"config": "Host web bastion\n    ProxyJump bastion\n"})
@example(files={"config": "Match originalhost web\n    ProxyJump bastion\nHost Web\n"})
@example(files={"config": "Host Web\nMatch originalhost web\n    HostName %h.example.com\n"})
@example(
    files={
        "inc0.conf": "Host web\n    ProxyJump none\nHost web\n    ProxyCommand nc %h %p\n",
        "config": "Host web\nHost web\nHost web\n    Include INC/inc*.conf\n",
    }
)
def test_an_imported_config_means_what_it_means_to_ssh(
    files: dict[str, str], config_dir: Path, key_dir: Path
) -> None:
    """Every host devtui imports is what `ssh -G -F FILE ALIAS` resolves, jump hosts too."""
    for old in config_dir.iterdir():
        old.unlink()
    compare_config(files, config_dir, key_dir)


# ---------------------------------------------------------------------------------------------
# The other way: what `devtui hosts export` writes (ssh line, Host block), read back by ssh


@st.composite
def saved_hosts(draw: st.DrawFn, name: str) -> HostSpec:
    return HostSpec(
        name=name,
        hostname=draw(st.one_of(_dns, _ipv4, _ipv6)),
        port=draw(ports),
        user=draw(st.none() | users),
        identity_files=tuple(draw(st.lists(st.sampled_from(KEY_NAMES), max_size=3, unique=True))),
        compression=draw(st.booleans()),
        keepalive_interval=draw(st.none() | st.floats(0, 86400) | st.sampled_from([0.0, 15.0])),
        keepalive_count_max=draw(st.none() | st.integers(1, 100)),
        connect_timeout=draw(st.none() | st.floats(0.001, 86400) | st.just(9.0)),
        certificate_file=draw(st.none() | st.sampled_from(KEY_NAMES)),
        proxy_command=draw(st.none() | st.sampled_from(PROXY_COMMANDS)),
    )


@st.composite
def saved_tunnels(draw: st.DrawFn, host: str) -> list[TunnelSpec]:
    tunnels: list[TunnelSpec] = []
    for port in draw(st.lists(st.integers(1024, 65535), max_size=3, unique=True)):
        kind: TunnelKind = draw(st.sampled_from(["local", "remote", "dynamic"]))
        listen = Endpoint(draw(st.sampled_from(["127.0.0.1", "0.0.0.0", "::1", "127.0.0.2"])), port)
        target = None
        if kind == "local" or (kind == "remote" and draw(st.integers(0, 2)) < 2):
            target = Endpoint(draw(st.one_of(_dns, _ipv4, st.just("localhost"))), draw(ports))
        # kind remote with no target: a reverse SOCKS proxy, exported as -R / RemoteForward
        # [bind:]port
        tunnels.append(TunnelSpec(tunnel_name(host, kind, port), host, kind, listen, target))
    return tunnels


def _with_keys(host: HostSpec, keys: Path) -> HostSpec:
    return replace(
        host,
        identity_files=tuple(str(keys / i) for i in host.identity_files),
        certificate_file=str(keys / host.certificate_file) if host.certificate_file else None,
    )


def _forward(t: TunnelSpec) -> Forward:
    """A saved tunnel in ssh -G's shape."""
    return (
        t.kind,
        t.listen.address,
        t.listen.port,
        canonical_address(t.target.address).lower() if t.target else None,
        t.target.port if t.target else None,
    )


def _expected(
    host: HostSpec, tunnels: list[TunnelSpec], hops: list[HostSpec], line: bool = False
) -> tuple[object, ...]:
    forwards = {_forward(t) for t in tunnels}
    return (
        host.hostname.lower(),
        host.port,
        None if host.user in (None, LOCAL_USER) else host.user,
        host.identity_files,
        tuple((h.user, h.hostname.lower(), h.port) for h in hops),
        tuple(sorted(forwards, key=repr)),
        host.compression,
        # ssh takes whole seconds: a fraction is rounded up (never down to "off" or 0).
        (
            0 if host.keepalive_interval is None else math.ceil(host.keepalive_interval),
            3 if host.keepalive_count_max is None else host.keepalive_count_max,
        ),
        "none" if host.connect_timeout is None else str(math.ceil(host.connect_timeout)),
        (host.certificate_file,) if host.certificate_file else (),
        # On an ssh line %n would be the hostname typed: export gives it devtui's name.
        expand_proxy_tokens(host.proxy_command, {"n": host.name})
        if host.proxy_command and line
        else host.proxy_command,
    )


@SETTINGS
@given(
    host=saved_hosts("target"),
    hops=st.lists(saved_hosts("gate"), max_size=3),
    tunnels=saved_tunnels("target"),
)
def test_an_exported_ssh_line_means_the_saved_host_to_ssh(
    host: HostSpec, hops: list[HostSpec], tunnels: list[TunnelSpec], key_dir: Path
) -> None:
    """`devtui hosts export NAME`'s ssh line, run by ssh, reaches the saved host the saved way
    (through every jump host of the chain, first hop first)."""
    host = _with_keys(host, key_dir)
    hops = [replace(_with_keys(h, key_dir), name=f"gate{i}") for i, h in enumerate(hops)]
    if hops:
        assume(hops[-1].hostname.lower() != host.hostname.lower())  # ssh: a jumphost loop
        host = replace(host, jump=hops[-1].name, proxy_command=None)  # one way in
    args = to_ssh_args(host, tunnels, chain=hops)
    if len(hops) == 1:
        assert args == to_ssh_args(host, tunnels, hops[0])
    judged = ssh_g(args)
    assert judged.resolved is not None, judged.error
    seen = judged.resolved
    # An ssh line has no way to give a jump host its own key: ssh uses its defaults there.
    assert seen.compared() == _expected(host, tunnels, hops, line=True)
    assert not seen.forward_agent and not seen.gateway_ports


@CONFIG_SETTINGS
@given(
    host=saved_hosts("target"),
    jump=st.none() | saved_hosts("gate"),
    tunnels=saved_tunnels("target"),
)
def test_exported_host_blocks_mean_the_saved_hosts_to_ssh(
    host: HostSpec,
    jump: HostSpec | None,
    tunnels: list[TunnelSpec],
    key_dir: Path,
    config_dir: Path,
) -> None:
    """The Host blocks export writes, read by `ssh -G -F FILE NAME`: the same host, its jump
    host with its own key, and every tunnel."""
    host, jump = _with_keys(host, key_dir), jump and _with_keys(jump, key_dir)
    if jump is not None:
        host = replace(host, jump=jump.name, proxy_command=None)  # one way in
    path = config_dir / "exported"
    path.unlink(missing_ok=True)
    written = write_host_blocks(path, [host, *([jump] if jump else [])], tunnels)
    assert written == ["target", *(["gate"] if jump else [])]
    judged = ssh_g(["target"], str(path))
    assert judged.resolved is not None, judged.error
    # ProxyJump names the jump host's own block, which ssh reads for the hop.
    by_name = [HostSpec(jump.name, jump.name)] if jump else []
    assert judged.resolved.compared() == _expected(host, tunnels, by_name)
    if jump is not None:
        hop = ssh_g(["gate"], str(path)).resolved
        assert hop is not None
        assert hop.compared() == _expected(jump, [], [])
