"""Pasted `ssh ...` command lines -> a host and its tunnels, and back.

Translates to safe defaults and says so: `-g` does not open a port to the network,
`StrictHostKeyChecking=no` does not turn off host key checks, `-A` is recorded off.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from .errors import ConfigError, DevtuiError, SshCommandError
from .model import (
    LOOPBACK,
    ConfigData,
    Endpoint,
    HostSpec,
    TunnelKind,
    TunnelSpec,
    check_port,
    hostname_problem,
    listens_clash,
    name_problem,
    tunnel_name,
    user_problem,
)

# OpenSSH's option letters (ssh(1)): those that take an argument and those that do not.
_WITH_ARG = set("BbcDEeFIiJLlmOopQRSWw")
_NO_ARG = set("46AaCfGgKkMNnqsTtVvXxYy")
# Flags with no bearing on a saved host: accepted silently.
_HARMLESS = set("46CfNnqTvKkax")
# Flags the parser turns into host settings or notes of their own.
_HANDLED_FLAGS = set("ACg")
# Every other flag changes what one session does and cannot be saved (X11 and a forced tty
# mean nothing for a saved host): it gets a note, so the user does not expect it to work.
_FLAG_NAMES = {
    "X": "-X (X11 forwarding)",
    "Y": "-Y (trusted X11 forwarding)",
    "t": "-t (force a terminal)",
    "M": "-M (connection sharing)",
    "s": "-s (subsystem)",
    "G": "-G (print the configuration)",
    "V": "-V (print the version)",
    "y": "-y (log to syslog)",
}


@dataclass
class ParsedCommand:
    """What a pasted ssh line meant, plus notes for the user about what we changed."""

    host: HostSpec
    tunnels: list[TunnelSpec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    gateway_ports: bool = False
    jump_host: HostSpec | None = None  # from -J / ProxyJump: to be saved too
    # The -J value when it is a bare name (no user@, no :port): it may be a saved host's name.
    jump_alias: str | None = None


# ---------------------------------------------------------------------------------------------
# Tokenizing: POSIX shells and PowerShell quote differently, and Windows paths hold backslashes.

_WINDOWS_PATH_RE = re.compile(r"(^|[\s='\"])[A-Za-z]:\\")
# A backslash before a letter, digit, '.', '~' or '%' is a Windows path separator
# (~\.ssh\id_rsa, %USERPROFILE%\.ssh); POSIX lines escape only spaces, quotes and the like.
_WINDOWS_SEPARATOR_RE = re.compile(r"\\[A-Za-z0-9._~%]")


# Docs split long commands over lines: `\` ends a continued line in bash, a backtick in
# PowerShell. Spaces after it are tolerated: copying from a web page often leaves some.
_POSIX_CONTINUATION_RE = re.compile(r"\\[ \t]*\r?\n")
_POWERSHELL_CONTINUATION_RE = re.compile(r"`[ \t]*\r?\n")


def _looks_like_powershell(line: str) -> bool:
    return bool(
        "`" in line
        or _WINDOWS_PATH_RE.search(line)
        or _WINDOWS_SEPARATOR_RE.search(line)
        or ".exe" in line.lower()
    )


def split_command(line: str) -> list[str]:
    """Split a pasted line with PowerShell rules if it looks like Windows, else POSIX rules.

    A command continued over several lines (a backslash at the ends in bash, a backtick in
    PowerShell) is one line. Text that still spans lines after that is several commands,
    and is refused: saving only the first would silently lose the rest.
    """
    powershell = _looks_like_powershell(line)
    continuation = _POWERSHELL_CONTINUATION_RE if powershell else _POSIX_CONTINUATION_RE
    line = continuation.sub(" ", line).strip()
    if "\n" in line or "\r" in line:
        lines = [part.strip() for part in line.splitlines() if part.strip()]
        raise SshCommandError(
            f"paste one ssh command: the text has {len(lines)} lines; line 2 is", lines[1][:60]
        )
    if powershell:
        return _split_powershell(line)
    try:
        return shlex.split(line, posix=True)
    except ValueError as e:
        raise SshCommandError(f"cannot split the line ({e})", line.strip()[-20:]) from None


def _split_powershell(line: str) -> list[str]:
    # PowerShell: '...' is literal ('' is a quote), "..." escapes with a backtick, \ is literal.
    tokens: list[str] = []
    current: list[str] = []
    in_token = False
    i = 0
    while i < len(line):
        c = line[i]
        if c.isspace():
            if in_token:
                tokens.append("".join(current))
                current, in_token = [], False
            i += 1
            continue
        in_token = True
        if c == "'":
            i += 1
            while True:
                if i >= len(line):
                    raise SshCommandError("unclosed single quote", line[-20:])
                if line[i] == "'":
                    if line[i + 1 : i + 2] == "'":
                        current.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                current.append(line[i])
                i += 1
        elif c == '"':
            i += 1
            while True:
                if i >= len(line):
                    raise SshCommandError("unclosed double quote", line[-20:])
                if line[i] == "`" and i + 1 < len(line):
                    current.append(line[i + 1])
                    i += 2
                    continue
                if line[i] == '"':
                    i += 1
                    break
                current.append(line[i])
                i += 1
        elif c == "`" and i + 1 < len(line):
            current.append(line[i + 1])
            i += 2
        else:
            current.append(c)
            i += 1
    if in_token:
        tokens.append("".join(current))
    return tokens


# ---------------------------------------------------------------------------------------------
# Forward specs


def _split_colons(spec: str) -> list[str]:
    """Split on ':' outside [brackets]; OpenSSH also allows '/' as the separator."""
    if "/" in spec and "[" not in spec and spec.count(":") != 1 and spec.count(":") < 2:
        return spec.split("/")
    parts: list[str] = []
    current = ""
    depth = 0
    for c in spec:
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        if c == ":" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += c
    parts.append(current)
    return [p[1:-1] if p.startswith("[") and p.endswith("]") else p for p in parts]


def _port(text: str, token: str) -> int:
    # ASCII only: str.isdigit() also accepts fullwidth and superscript digits, which no
    # ssh or config file reads as the same port.
    if not (text.isascii() and text.isdigit()):
        raise SshCommandError(f"{text!r} is not a port number in", token)
    try:
        return check_port(int(text))
    except ValueError as e:
        raise SshCommandError(str(e) + " in", token) from None


def _address(text: str, token: str) -> str:
    if text in ("", "*"):
        return "0.0.0.0"
    if text == "localhost":
        return LOOPBACK
    if hostname_problem(text):
        raise SshCommandError(f"{text!r} is not an address in", token)
    return text


def parse_forward(
    kind: TunnelKind, spec: str, token: str | None = None
) -> tuple[Endpoint, Endpoint | None, bool]:
    """Parse the argument of -L/-R/-D; returns (listen, target, bind_given)."""
    token = token or spec
    parts = _split_colons(spec)
    if kind == "dynamic":
        if len(parts) == 1:
            return Endpoint(LOOPBACK, _port(parts[0], token)), None, False
        if len(parts) == 2:
            return Endpoint(_address(parts[0], token), _port(parts[1], token)), None, True
        raise SshCommandError("expected [bind_address:]port for -D, got", token)
    if len(parts) == 3:
        listen = Endpoint(LOOPBACK, _port(parts[0], token))
        bind_given = False
    elif len(parts) == 4:
        listen = Endpoint(_address(parts[0], token), _port(parts[1], token))
        bind_given = True
    else:
        letter = "L" if kind == "local" else "R"
        raise SshCommandError(
            f"expected [bind_address:]port:host:hostport for -{letter}, got", token
        )
    target_host = parts[-2]
    if not target_host or hostname_problem(target_host):
        raise SshCommandError(f"{target_host!r} is not a target host in", token)
    target = Endpoint(target_host, _port(parts[-1], token))
    return listen, target, bind_given


# ---------------------------------------------------------------------------------------------
# The command line


def _destination(text: str, token: str) -> tuple[str | None, str, int | None]:
    """user@host, host, ssh://[user@]host[:port] -> (user, host, port)."""
    port: int | None = None
    if text.startswith("ssh://"):
        rest = text[len("ssh://") :].rstrip("/")
        user, _, hostport = rest.rpartition("@")
        if hostport.startswith("["):
            close = hostport.find("]")
            host, tail = hostport[1:close], hostport[close + 1 :]
            if tail:
                port = _port(tail.lstrip(":"), token)
        elif ":" in hostport:
            host, port_text = hostport.rsplit(":", 1)
            port = _port(port_text, token)
        else:
            host = hostport
    else:
        user, _, host = text.rpartition("@")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
    if "@" in text and not user:
        raise SshCommandError("the user before '@' is empty in", token)
    if problem := hostname_problem(host):
        raise SshCommandError(f"destination host {problem}", token)
    if user and (problem := user_problem(user)):
        raise SshCommandError(f"user {problem}", token)
    return user or None, host, port


def default_host_name(hostname: str) -> str:
    """A readable name from a hostname.

    ssh.intern-ai.org.cn -> intern-ai (the first label that is not a generic one),
    10.0.0.5 -> 10-0-0-5, IPv6 addresses get an "ipv6-" prefix (::1 -> ipv6-1,
    2001:db8::1 -> ipv6-2001-db8-1), and a name that would be all digits gets a "host-"
    prefix (a host "1234" -> host-1234), so a name never reads like a port or a count.
    """
    if ":" in hostname:
        rest = re.sub(r"[^A-Za-z0-9]+", "-", hostname).strip("-")
        return f"ipv6-{rest}"[:64].rstrip("-") if rest else "ipv6"  # names hold <= 64 chars
    if re.fullmatch(r"[\d.]+", hostname):
        name = re.sub(r"[^0-9]+", "-", hostname).strip("-")[:64].rstrip("-")
    else:
        generic = {"ssh", "www", "login", "gate", "gateway", "bastion", "connect", "shell"}
        labels = [label for label in hostname.split(".") if label]
        candidates = labels[:-1] if len(labels) > 1 else labels
        name = next((label for label in candidates if label.lower() not in generic), "")
        name = name or (labels[0] if labels else "")
    if not name:
        return "host"
    return f"host-{name}"[:64] if name.isdigit() else name


def _is_no(value: str) -> bool:
    return value.strip().lower() in ("no", "false", "off", "0")


def _positional_words(tokens: Sequence[str]) -> list[str]:
    """The words that are neither options nor their values, read with ssh's option letters."""
    words: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == "--":
            continue
        if not token.startswith("-") or token == "-":
            words.append(token)
            continue
        for j, letter in enumerate(token[1:], start=1):
            if letter in _WITH_ARG:
                if j == len(token) - 1:
                    i += 1  # the value is the next word
                break
    return words


def _not_ssh(tokens: Sequence[str]) -> SshCommandError | None:
    """An error when the line runs another program (scp a b, sshx root@h, sudo ssh ...).

    Its words would otherwise pass as a host named after the program. A line that leaves
    out "ssh" is still fine when it starts with an option or a user@host / ssh:// address,
    or is one word (a host name).
    """
    first = tokens[0]
    if first.startswith("-") or "@" in first or first.startswith("ssh://"):
        return None
    if len(_positional_words(tokens)) < 2:
        return None
    error = SshCommandError(f"{first!r} is not ssh: paste a line like  ssh -p 2222 user@host")
    error.token = first
    return error


def parse_ssh_command(line: str | Sequence[str], name: str | None = None) -> ParsedCommand:
    """Parse a pasted ssh command line (or its words, already split by a shell) into a host
    spec, tunnels and notes for the user."""
    tokens = split_command(line) if isinstance(line, str) else list(line)
    if not tokens:
        raise SshCommandError("the line is empty")
    first = tokens[0].replace("\\", "/").rsplit("/", 1)[-1].lower()
    if first in ("ssh", "ssh.exe"):
        tokens = tokens[1:]
    elif error := _not_ssh(tokens):
        raise error
    user: str | None = None
    port: int | None = None
    options: dict[str, str] = {}
    forwards: list[tuple[TunnelKind, str, str]] = []
    identity: str | None = None
    jump: str | None = None
    flags: set[str] = set()
    notes: list[str] = []
    destination: str | None = None
    rest: list[str] = []

    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if rest:
            rest.append(token)
            continue
        if token == "--":
            continue
        if not token.startswith("-") or token == "-":
            # Like OpenSSH, options may follow the destination; the next word starts the command.
            if destination is None:
                destination = token
            else:
                rest.append(token)
            continue
        j = 1
        while j < len(token):
            letter = token[j]
            if letter in _WITH_ARG:
                value = token[j + 1 :]
                if not value:
                    if i >= len(tokens):
                        raise SshCommandError(f"-{letter} needs a value", token)
                    value = tokens[i]
                    i += 1
                if not value:
                    # An empty value is a paste error (a lost quote, an unset variable);
                    # taking it as "not given" would save something the user did not ask for.
                    raise SshCommandError(f"-{letter} needs a value, not an empty string", token)
                arg_token = f"-{letter} {value}" if token == f"-{letter}" else token
                if letter == "p":
                    port = _port(value, arg_token)
                elif letter == "l":
                    user = value
                elif letter == "i":
                    identity = value
                elif letter == "J":
                    jump = value
                elif letter in "LRD":
                    kind: TunnelKind = {"L": "local", "R": "remote", "D": "dynamic"}[letter]  # type: ignore[assignment]
                    forwards.append((kind, value, arg_token))
                elif letter == "o":
                    key, value2 = _option(value, tokens, i)
                    if not key or not value2:
                        raise SshCommandError("-o needs Key=Value", arg_token)
                    if "=" not in value and " " not in value.strip():
                        i += 1  # "-o Key Value": the value was the next token
                    options.setdefault(key.lower(), value2)
                else:
                    notes.append(f"-{letter} {value} is not used by devtui; ignored")
                break
            if letter in _NO_ARG:
                ignored = letter not in _HARMLESS | _HANDLED_FLAGS
                if ignored and letter not in flags:  # -tt is one note
                    what = _FLAG_NAMES.get(letter, f"-{letter}")
                    notes.append(f"{what} is not used by devtui; ignored")
                flags.add(letter)
                j += 1
                continue
            raise SshCommandError(f"unknown ssh option -{letter} in", token)

    if destination is None:
        raise SshCommandError("no destination (user@host) in the line", " ".join(tokens)[-40:])
    d_user, hostname, d_port = _destination(destination, destination)
    # ssh gives -l/-p precedence over user@ in practice only when user@ is absent; mirror ssh.
    user = d_user or user
    port = d_port or port
    if "user" in options and not user:
        user = options.pop("user")
    if "port" in options and port is None:
        port_text = options.pop("port")
        port = _port(port_text, f"-o Port={port_text}")
    if "hostname" in options:
        hostname = options.pop("hostname")
        if problem := hostname_problem(hostname):
            raise SshCommandError(f"HostName {problem}", hostname)
    identity = identity or options.pop("identityfile", None)
    jump = jump or options.pop("proxyjump", None)
    if jump is not None and jump.lower() == "none":  # ssh's own spelling of "no jump host"
        jump = None
    compression = "C" in flags or _truthy(options.pop("compression", "no"))
    gateway = "g" in flags or _truthy(options.pop("gatewayports", "no"))
    agent = "A" in flags or _truthy(options.pop("forwardagent", "no"))
    for key, kind_ in (
        ("localforward", "local"),
        ("remoteforward", "remote"),
        ("dynamicforward", "dynamic"),
    ):
        if key in options:
            value = options.pop(key).replace(" ", ":")
            forwards.append((kind_, value, value))  # type: ignore[arg-type]
    if user and (problem := user_problem(user)):
        raise SshCommandError(f"user {problem}", user)

    shk = options.pop("stricthostkeychecking", None)
    if shk is not None and (_is_no(shk) or shk.lower() == "accept-new"):
        notes.append(
            f"StrictHostKeyChecking={shk} is not obeyed: devtui checks host keys "
            "(on first connect it shows the fingerprint and asks you to trust it)"
        )
    ukh = options.pop("userknownhostsfile", None)
    if ukh is not None:
        notes.append(f"UserKnownHostsFile={ukh} ignored: devtui uses the known_hosts from settings")
    for key in sorted(options):
        notes.append(f"-o {key} is not used by devtui; ignored")
    if agent:
        notes.append(
            "-A (agent forwarding) recorded off; set forward_agent = true on the host to allow it"
        )
    if rest:
        notes.append(
            f"remote command {' '.join(rest)!r} ignored: devtui saves the host, not the command"
        )
    if jump and "," in jump:
        raise SshCommandError("only one jump host is supported", jump)
    jump_host = None
    if jump:
        jump_host = jump_host_spec(jump)
    jump_name = jump_host.name if jump_host else None
    bare_jump = jump_host is not None and jump_host.user is None and jump == jump_host.hostname

    name = name or default_host_name(hostname)
    if problem := name_problem(name):
        raise SshCommandError(f"host name {problem}", name)
    host = HostSpec(
        name=name,
        hostname=hostname,
        port=port or 22,
        user=user,
        identity_file=identity,
        jump=jump_name,
        compression=compression,
        forward_agent=False,
    )
    parsed = ParsedCommand(
        host=host,
        notes=notes,
        gateway_ports=gateway,
        jump_host=jump_host,
        jump_alias=jump if bare_jump else None,
    )
    shared_note = False
    for kind_, spec, token in forwards:
        listen, target, bind_given = parse_forward(kind_, spec, token)
        if kind_ != "remote" and listen.all_interfaces:
            notes.append(
                f"{token}: listens on all interfaces ({listen}) as you asked: "
                "other machines on your network can use it"
            )
        elif gateway and not bind_given and kind_ != "remote" and not shared_note:
            shared_note = True
            notes.append(
                "-g ignored: tunnels listen on 127.0.0.1 only. To share one with other machines "
                'on purpose, set listen = "0.0.0.0:PORT" in its [tunnels.NAME] table'
            )
        tunnel = TunnelSpec(tunnel_name(name, kind_, listen.port), name, kind_, listen, target)
        parsed.tunnels.append(tunnel)
    return parsed


@dataclass
class AddPlan:
    """What saving a pasted line changes: only what the config does not have yet."""

    hosts: list[HostSpec] = field(default_factory=list)  # to add, jump host first
    tunnels: list[TunnelSpec] = field(default_factory=list)  # to add
    host: str = ""  # the name the pasted host is saved under (new or already there)
    reused: bool = False  # the pasted host was already saved
    jump_reused: str | None = None  # the saved host that -J named
    kept: list[TunnelSpec] = field(default_factory=list)  # pasted tunnels already saved
    notes: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        """True when there is anything to save."""
        return bool(self.hosts or self.tunnels)


def _same_machine(a: HostSpec, b: HostSpec) -> bool:
    return (a.hostname.lower(), a.port, a.user) == (b.hostname.lower(), b.port, b.user)


def _same_route(a: HostSpec, b: HostSpec) -> bool:
    return _same_machine(a, b) and a.jump == b.jump


def _same_forward(a: TunnelSpec, b: TunnelSpec) -> bool:
    return (a.host, a.kind, a.listen, a.target) == (b.host, b.kind, b.listen, b.target)


def plan_add(
    current: ConfigData, parsed: ParsedCommand, *, name_given: bool = False, path: str = ""
) -> AddPlan:
    """Plan saving `parsed`: a machine already saved is reused, its tunnels added to it.

    The tutorial's flow pastes the login line first and the `-L` line later; both name
    the same machine, so the second paste adds only the tunnel. Pasting a line twice
    adds nothing. A name taken by a different machine, or a listen address another
    tunnel holds, is a ConfigError that says what to do; nothing is planned then.
    """
    plan = AddPlan()
    host = parsed.host
    jump = parsed.jump_host
    if jump is not None:
        same = next((h for h in current.hosts.values() if _same_machine(h, jump)), None)
        if parsed.jump_alias is not None and parsed.jump_alias in current.hosts:
            # `-J bastion` names a saved host, as it would name a Host alias in ~/.ssh/config.
            same = current.hosts[parsed.jump_alias]
        if same is not None:
            host = replace(host, jump=same.name)
            plan.jump_reused = same.name
        elif jump.name in current.hosts or jump.name == host.name:
            raise ConfigError(
                f"the jump host would be named {jump.name!r}, which is taken; "
                'add it first with its own name, then set jump = "NAME"',
                path=path,
            )
        else:
            plan.hosts.append(jump)
    # The same machine by another route (another jump host, or none) may be another machine:
    # 10.0.0.5 behind two bastions is two boxes. Only the same address and route is reused.
    saved = current.hosts.get(host.name)
    if saved is None and not name_given:
        saved = next((h for h in current.hosts.values() if _same_route(h, host)), None)
    if saved is not None and not _same_route(saved, host):
        hint = "pick another with --name" if not name_given else "pick another name"
        how = ""
        if _same_machine(saved, host):
            how = f" through {saved.jump or 'no jump host'}, not {host.jump or 'directly'}"
        raise ConfigError(
            f"a host named {host.name!r} already exists ({saved.destination}{how}); {hint}",
            path=path,
        )
    if saved is None:
        plan.hosts.append(host)
        plan.host = host.name
    else:
        plan.host, plan.reused = saved.name, True
        plan.hosts, plan.jump_reused = [], None  # the saved host keeps its own way in
        if host.identity_file and host.identity_file != saved.identity_file:
            plan.notes.append(
                f"host {saved.name} keeps its saved identity_file "
                f"({saved.identity_file or 'none: agent and default keys'}), not "
                f"{host.identity_file}; change it in its [hosts.{saved.name}] table"
            )
    taken = set(current.tunnels)
    for pasted in parsed.tunnels:
        tunnel = replace(
            pasted, name=tunnel_name(plan.host, pasted.kind, pasted.listen.port), host=plan.host
        )
        old = next(
            (t for t in (*current.tunnels.values(), *plan.tunnels) if _same_forward(t, tunnel)),
            None,
        )
        if old is not None:
            plan.kept.append(old)
            continue
        clash = next(
            (t for t in (*current.tunnels.values(), *plan.tunnels) if listens_clash(t, tunnel)),
            None,
        )
        if clash is not None:
            raise ConfigError(
                f"{tunnel.listen} is already used by tunnel {clash.name} ({clash.describe()}); "
                "remove that tunnel first or pick another local port",
                path=path,
            )
        base, n = tunnel.name, 2
        while tunnel.name in taken:
            tunnel = replace(tunnel, name=f"{base}-{n}")
            n += 1
        taken.add(tunnel.name)
        plan.tunnels.append(tunnel)
    return plan


def jump_host_spec(jump: str) -> HostSpec:
    """-J [user@]host[:port] -> a host spec named after the host."""
    if "," in jump:
        raise SshCommandError("only one jump host is supported", jump)
    user, _, hostport = jump.rpartition("@")
    if "@" in jump and not user:
        raise SshCommandError("the jump user before '@' is empty in", jump)
    port = 22
    if hostport.startswith("["):
        close = hostport.find("]")
        host, tail = hostport[1:close], hostport[close + 1 :].lstrip(":")
        port = _port(tail, jump) if tail else 22
    elif hostport.count(":") == 1:
        host, port_text = hostport.split(":")
        port = _port(port_text, jump)
    else:
        host = hostport
    if problem := hostname_problem(host):
        raise SshCommandError(f"jump host {problem}", jump)
    if user and (problem := user_problem(user)):
        raise SshCommandError(f"jump user {problem}", jump)
    return HostSpec(name=default_host_name(host), hostname=host, port=port, user=user or None)


def _option(value: str, tokens: list[str], i: int) -> tuple[str, str | None]:
    """-o Key=Value, -o "Key Value", or -o Key Value (value in the next token)."""
    if "=" in value:
        key, _, v = value.partition("=")
        return key.strip(), v.strip()
    if " " in value.strip():
        key, _, v = value.strip().partition(" ")
        return key, v.strip()
    if i < len(tokens):
        return value, tokens[i]
    return value, None


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("yes", "true", "on", "1")


# ---------------------------------------------------------------------------------------------
# The reverse


def _forward_arg(tunnel: TunnelSpec) -> str:
    def addr(a: str) -> str:
        return f"[{a}]" if ":" in a else a

    listen = f"{addr(tunnel.listen.address)}:{tunnel.listen.port}"
    if tunnel.target is None:
        return listen
    return f"{listen}:{addr(tunnel.target.address)}:{tunnel.target.port}"


def to_ssh_args(
    host: HostSpec, tunnels: Sequence[TunnelSpec] = (), jump: HostSpec | None = None
) -> list[str]:
    """The OpenSSH argv (without "ssh") that reaches `host` and opens `tunnels`."""
    args: list[str] = []
    if host.port != 22:
        args += ["-p", str(host.port)]
    if host.identity_file:
        args += ["-i", host.identity_file]
    if host.compression:
        args.append("-C")
    if host.forward_agent:
        args.append("-A")
    if jump is not None:
        jump_host = f"[{jump.hostname}]" if ":" in jump.hostname else jump.hostname
        jump_user = f"{jump.user}@" if jump.user else ""
        args += ["-J", f"{jump_user}{jump_host}" + (f":{jump.port}" if jump.port != 22 else "")]
    if tunnels:
        args.append("-N")
    for tunnel in tunnels:
        letter = {"local": "-L", "remote": "-R", "dynamic": "-D"}[tunnel.kind]
        args += [letter, _forward_arg(tunnel)]
    target = f"{host.user}@{host.hostname}" if host.user else host.hostname
    args.append(target)
    return args


def to_ssh_command(
    host: HostSpec, tunnels: Sequence[TunnelSpec] = (), jump: HostSpec | None = None
) -> str:
    """One ssh command line (POSIX quoting) equivalent to `host` and `tunnels`."""
    return shlex.join(["ssh", *to_ssh_args(host, tunnels, jump)])


def _config_value(value: str) -> str:
    if '"' in value:
        # ssh_config has no escape for a double quote: ssh would read another path.
        raise DevtuiError(
            f"ssh_config cannot hold a value with a double quote ({value!r}); rename the file"
        )
    return f'"{value}"' if any(c.isspace() for c in value) else value


def to_ssh_config_block(host: HostSpec, tunnels: Sequence[TunnelSpec] = ()) -> str:
    """A `Host` block for ~/.ssh/config (what VS Code Remote-SSH writes)."""
    lines = [f"Host {host.name}", f"    HostName {host.hostname}"]
    if host.user:
        lines.append(f"    User {host.user}")
    if host.port != 22:
        lines.append(f"    Port {host.port}")
    if host.identity_file:
        lines.append(f"    IdentityFile {_config_value(host.identity_file)}")
    if host.jump:
        lines.append(f"    ProxyJump {host.jump}")
    if host.compression:
        lines.append("    Compression yes")
    if host.forward_agent:
        lines.append("    ForwardAgent yes")
    for tunnel in tunnels:
        keyword = {"local": "LocalForward", "remote": "RemoteForward", "dynamic": "DynamicForward"}
        listen = str(tunnel.listen)
        target = f" {tunnel.target}" if tunnel.target else ""
        lines.append(f"    {keyword[tunnel.kind]} {listen}{target}")
    return "\n".join(lines) + "\n"
