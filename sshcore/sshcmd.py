"""Pasted `ssh ...` command lines -> a host and its tunnels, and back.

Translates to safe defaults and says so: `-g` does not open a port to the network,
`StrictHostKeyChecking=no` does not turn off host key checks, `-A` is recorded off.
"""

from __future__ import annotations

import getpass
import math
import re
import shlex
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import ConfigError, DevtuiError, SshCommandError
from .model import (
    LOOPBACK,
    MAX_IDENTITY_FILES,
    ConfigData,
    Endpoint,
    HostSpec,
    Note,
    TunnelKind,
    TunnelSpec,
    check_port,
    expand_proxy_tokens,
    hostname_problem,
    identity_files_problem,
    listens_clash,
    name_problem,
    note_about,
    text_problem,
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
    notes: list[str] = field(default_factory=list)  # Notes about the pasted host
    gateway_ports: bool = False
    jump_host: HostSpec | None = None  # the last hop of -J / ProxyJump: to be saved too
    # The -J value when it is a bare name (no user@, no :port): it may be a saved host's name.
    jump_alias: str | None = None
    # Every hop of -J a,b,... first hop first, each with `jump` set to the hop before it.
    jump_hosts: list[HostSpec] = field(default_factory=list)
    jump_texts: list[str] = field(default_factory=list)  # per hop, as written


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


def port_number(text: str, token: str) -> int:
    """`text` as a port (ASCII digits, 1-65535), else SshCommandError naming `token`."""
    return _port(text, token)


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
    """Parse the argument of -L/-R/-D; returns (listen, target, bind_given). The target is
    None for -D and for -R [bind:]port (a reverse SOCKS proxy)."""
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
    elif kind == "remote" and len(parts) == 1:
        # -R port: a reverse SOCKS proxy, listening on the remote's loopback as ssh asks.
        return Endpoint(LOOPBACK, _port(parts[0], token)), None, False
    elif kind == "remote" and len(parts) == 2:
        return Endpoint(_address(parts[0], token), _port(parts[1], token)), None, True
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
    return value.strip().lower() in ("no", "false")


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


# ---------------------------------------------------------------------------------------------
# ssh_config lines and -o values, read as OpenSSH's process_config_line does


def _argv_split(text: str) -> list[str] | None:
    """OpenSSH's argv_split (misc.c): words on blanks, '...' and "..." group, a backslash
    escapes a quote, a backslash or (outside quotes) a space; a word starting with '#' ends
    the line. None for an unclosed quote."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        if text[i] == "#":
            break
        quote = ""
        word: list[str] = []
        while i < n:
            c = text[i]
            if (
                c == "\\"
                and i + 1 < n
                and (text[i + 1] in "'\"\\" or (not quote and text[i + 1] == " "))
            ):
                word.append(text[i + 1])
                i += 2
                continue
            if not quote and c in " \t":
                break
            if not quote and c in "'\"":
                quote = c
            elif quote and c == quote:
                quote = ""
            else:
                word.append(c)
            i += 1
        if quote:
            return None
        words.append("".join(word))
    return words


def config_words(line: str) -> tuple[str, list[str]] | str:
    """One ssh_config line (or the value of -o) -> (keyword in lower case, its arguments),
    or ssh's reason for refusing it. `Key Value`, `Key=Value` and `Key = Value` are one."""
    line = line.strip(" \t\r\n\f")
    match = re.match(r"([^\s=]*)[ \t]*(?:=[ \t]*)?(.*)$", line, re.S)
    key, rest = (match.group(1), match.group(2)) if match else (line, "")
    if not key or key.startswith("#"):
        return ("", [])
    if not rest:
        return f'no argument after keyword "{key.lower()}"'
    words = _argv_split(rest)
    if words is None:
        return "invalid quotes"
    return key.lower(), words


_FLAG_VALUES = {"yes": True, "true": True, "no": False, "false": False}
# -o keys read as one value each, the first one given kept (as ssh's options struct).
_SINGLE = {
    "port",
    "user",
    "hostname",
    "proxyjump",
    "compression",
    "forwardagent",
    "gatewayports",
    "stricthostkeychecking",
    "userknownhostsfile",
    "identitiesonly",
    "serveraliveinterval",
    "serveralivecountmax",
    "connecttimeout",
    "proxycommand",
}
_FORWARD_KEYS: dict[str, TunnelKind] = {
    "localforward": "local",
    "remoteforward": "remote",
    "dynamicforward": "dynamic",
}
_TIME_KEYS = {"serveraliveinterval", "connecttimeout"}
_INT_MAX = 2**31 - 1
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TIME_PART = re.compile(r"\s*\+?(\d+)([sSmMhHdDwW]?)")
_INT_RE = re.compile(r"\s*[+-]?\d+")


def ssh_seconds(text: str) -> int | None:
    """A time value as ssh reads it (convtime: "90", "1m30s", "1h"), or None if it refuses."""
    total, at = 0, 0
    if not text:
        return None
    while at < len(text):
        part = _TIME_PART.match(text, at)
        if part is None:
            return None
        seconds = int(part.group(1)) * _TIME_UNITS[part.group(2).lower()]
        total += seconds
        if int(part.group(1)) > _INT_MAX or total > _INT_MAX:
            return None
        at = part.end()
    return total


def ssh_count(text: str) -> int | None:
    """An integer value as ssh reads it (0 to INT_MAX), or None if it refuses."""
    if not _INT_RE.fullmatch(text) or not 0 <= int(text) <= _INT_MAX:
        return None
    return int(text)


def timing_problem(key: str, value: str) -> str | None:
    """ssh's reason to refuse a ServerAliveInterval / ConnectTimeout / ServerAliveCountMax."""
    if key in _TIME_KEYS:
        return None if value == "none" or ssh_seconds(value) is not None else "invalid time value"
    if not _INT_RE.fullmatch(value):
        return "integer value invalid"
    if int(value) < 0:
        return "integer value too small"
    return None if int(value) <= _INT_MAX else "integer value too large"


def host_timing(values: dict[str, str], notes: list[str], label: str = "") -> dict[str, Any]:
    """HostSpec's keepalive_interval / keepalive_count_max / connect_timeout from ssh's
    first values (already checked); what devtui cannot hold is a note, [settings] used."""
    found: dict[str, Any] = {}
    if (interval := values.get("serveraliveinterval")) is not None:
        found["keepalive_interval"] = float(ssh_seconds(interval) or 0)  # 0: off, as in ssh
    if (count := values.get("serveralivecountmax")) is not None:
        if (number := ssh_count(count) or 0) >= 1:
            found["keepalive_count_max"] = number
        else:
            notes.append(
                f"{label}ServerAliveCountMax {count} not kept: devtui needs at least 1 "
                "(uses keepalive_count_max in [settings])"
            )
    if (timeout := values.get("connecttimeout")) is not None:
        if seconds := ssh_seconds(timeout):
            found["connect_timeout"] = float(seconds)
        else:
            notes.append(
                f"{label}ConnectTimeout {timeout} (no timeout) not kept: devtui bounds every "
                "connect (uses connect_timeout in [settings])"
            )
    return found


def expand_hostname(value: str, host: str) -> str | None:
    """HostName's tokens as ssh expands them: %h (the name typed) and %%; None for others."""
    out: list[str] = []
    i = 0
    while i < len(value):
        c = value[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        token = value[i + 1 : i + 2]
        if token == "%":
            out.append("%")
        elif token == "h":
            out.append(host)
        else:
            return None
        i += 2
    return "".join(out)


@dataclass
class _Seen:
    """What a pasted line set so far: ssh keeps the first value it obtains."""

    first: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (value, token)
    identities: list[str] = field(default_factory=list)
    certificates: list[str] = field(default_factory=list)
    forwards: list[tuple[TunnelKind, str, str]] = field(default_factory=list)
    others: list[str] = field(default_factory=list)

    def set(self, key: str, value: str, token: str) -> None:
        self.first.setdefault(key, (value, token))

    def get(self, key: str) -> str | None:
        return self.first[key][0] if key in self.first else None


def _check_jump(value: str) -> None:
    """Raise ssh's reason for refusing a ProxyJump / -J value, naming the hop."""
    if value.lower() == "none":
        return
    for hop in value.split(","):
        if not hop:
            raise SshCommandError("a jump host in the chain is empty (ssh refuses it too)", value)
        jump_host_spec(hop)


def _apply_option(seen: _Seen, text: str, token: str) -> None:
    """One `-o` value, as ssh's process_config_line reads it on the command line."""
    words = config_words(text)
    if isinstance(words, str):
        if words.startswith("no argument"):
            words = f"write -o {text.strip()}=VALUE (ssh says: {words})"
        raise SshCommandError(f"-o: {words}", token)
    key, args = words
    if not key:
        raise SshCommandError("-o needs Key=Value", token)
    if not args:
        raise SshCommandError(f"-o {key}: missing argument", token)
    if key in _FORWARD_KEYS:
        kind = _FORWARD_KEYS[key]
        need = 1 if kind == "dynamic" else 2
        if kind == "remote" and len(args) == 1:
            need = 1  # RemoteForward [bind:]port: reverse SOCKS
        if len(args) < need:
            raise SshCommandError(f"-o {key}: missing target argument", token)
        if len(args) > need:
            raise SshCommandError(f"-o {key}: extra arguments at end of line", token)
        seen.forwards.append((kind, ":".join(args), token))
        return
    if len(args) > 1 and key in (_SINGLE - {"proxycommand"}) | {"identityfile", "certificatefile"}:
        raise SshCommandError(f"-o {key}: extra arguments at end of line", token)
    value = args[0]
    if key == "port":
        _port(value, token)  # ssh checks every Port, also those it does not keep
    elif key in ("serveraliveinterval", "serveralivecountmax", "connecttimeout"):
        if problem := timing_problem(key, value):
            raise SshCommandError(f"-o {key}: {problem}", token)
        if value == "none":
            return  # "none" leaves it unset: a later value still counts, as in ssh
    elif key in ("compression", "gatewayports") and value.lower() not in _FLAG_VALUES:
        raise SshCommandError(f'-o {key}: unsupported option "{value}"', token)
    elif key == "proxyjump":
        _check_jump(value)
    if key == "identityfile":
        seen.identities.append(value)
    elif key == "certificatefile":
        seen.certificates.append(value)
    elif key in ("proxycommand", "proxyjump") and ({"proxycommand", "proxyjump"} & set(seen.first)):
        pass  # ssh keeps the first of ProxyCommand and ProxyJump; the other is ignored
    elif key == "proxycommand":
        seen.set(key, " ".join(args), token)
    elif key in _SINGLE:
        seen.set(key, value, token)
    else:
        seen.others.append(key)


def _loops(last: HostSpec, hostname: str, port: int, user: str | None) -> bool:
    """ssh's "jumphost loop" check: the last hop is the destination, as the same user."""
    jump_user = last.user or user or _local_user()
    return (last.hostname, last.port, jump_user) == (hostname.lower(), port, user or _local_user())


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no user name in the environment or passwd
        return ""


def _one_line(line: str | Sequence[str]) -> list[str]:
    if isinstance(line, str):
        return split_command(line)
    words = list(line)
    head = words[:1] if words and _is_ssh_word(words[0]) and len(words) == 2 else []
    rest = words[len(head) :]
    if len(rest) == 1 and any(c.isspace() for c in rest[0].strip()):
        # One quoted argument holding a whole line: `devtui add '-p 443 admin@host'` (which
        # the CLI may have given an `ssh` word). Alone it would be no valid ssh argv.
        return head + split_command(rest[0])
    return words


def _is_ssh_word(word: str) -> bool:
    return word.replace("\\", "/").rsplit("/", 1)[-1].lower() in ("ssh", "ssh.exe")


def parse_ssh_command(line: str | Sequence[str], name: str | None = None) -> ParsedCommand:
    """Parse a pasted ssh command line (or its words, already split by a shell) into a host
    spec, tunnels and notes for the user.

    Read as OpenSSH reads it: the first value given for a setting wins (`-l alice bob@host`
    logs in as alice), forwards and identity files add up, and a line ssh refuses is
    refused with ssh's reason. In steps: the words (_read_words), what they set
    (_settings), the notes on what devtui does not take, the host, then its tunnels.
    """
    tokens = _one_line(line)
    if not tokens:
        raise SshCommandError("the line is empty")
    if _is_ssh_word(tokens[0]):
        tokens = tokens[1:]
    elif error := _not_ssh(tokens):
        raise error
    words = _read_words(tokens)
    if words.destination is None:
        raise SshCommandError("no destination (user@host) in the line", " ".join(tokens)[-40:])
    settings = _settings(words)
    seen, notes = words.seen, words.notes
    _note_ignored_checks(seen, notes)
    identities = _identities(seen, notes)
    timing = host_timing(
        {
            key: v
            for key in ("serveraliveinterval", "serveralivecountmax", "connecttimeout")
            if (v := seen.get(key)) is not None
        },
        notes,
    )
    certificate = _certificate(seen, notes)
    _refuse_proxy_command(seen)
    _note_unused(words, settings.agent)
    name = name or default_host_name(settings.hostname)
    if problem := name_problem(name):
        raise SshCommandError(f"host name {problem}", name)
    jump = settings.jump
    hops = jump_chain(jump, taken={name}) if jump else []
    if hops and _loops(hops[-1], settings.hostname, settings.port, settings.user):
        raise SshCommandError(
            "jumphost loop: the last jump host is the destination itself (ssh refuses it too)",
            jump,
        )
    aliases = [
        text if hop.user is None and text == hop.hostname else None
        for text, hop in zip(jump.split(",") if jump else [], hops, strict=True)
    ]
    host = HostSpec(
        name=name,
        hostname=settings.hostname,
        port=settings.port,
        user=settings.user,
        identity_files=identities,
        jump=hops[-1].name if hops else None,
        compression=settings.compression,
        forward_agent=False,
        **timing,
        certificate_file=certificate,
    )
    parsed = ParsedCommand(
        host=host,
        notes=notes,
        gateway_ports=settings.gateway,
        jump_host=hops[-1] if hops else None,
        jump_alias=aliases[-1] if aliases else None,
        jump_hosts=hops,
        jump_texts=jump.split(",") if jump else [],
    )
    parsed.tunnels = _tunnels(seen.forwards, name, settings.gateway, words.flags, notes)
    # Every note is about the pasted host (plan_add may save it under another name).
    parsed.notes = [note_about(n, name) for n in notes]
    return parsed


@dataclass
class _Words:
    """What the words of a pasted line say, before any of it is checked as a whole."""

    seen: _Seen = field(default_factory=_Seen)
    flags: set[str] = field(default_factory=set)  # option letters without a value (-N, -C)
    notes: list[str] = field(default_factory=list)
    destination: str | None = None
    dest_host: str = ""
    rest: list[str] = field(default_factory=list)  # the remote command, if any


def _option_port(seen: _Seen, value: str, token: str) -> None:
    if "port" not in seen.first:  # ssh reads only the first -p
        seen.set("port", str(_port(value, token)), token)


def _option_user(seen: _Seen, value: str, token: str) -> None:
    seen.set("user", value, value)


def _option_identity(seen: _Seen, value: str, token: str) -> None:
    seen.identities.append(value)


def _option_jump(seen: _Seen, value: str, token: str) -> None:
    if "proxycommand" in seen.first:
        raise SshCommandError("cannot use -J with ProxyCommand (ssh refuses it too)", token)
    if "proxyjump" in seen.first:
        raise SshCommandError(
            "only a single -J option is permitted (as in ssh: use commas to separate jump hops)",
            token,
        )
    _check_jump(value)
    seen.set("proxyjump", value, value)


def _option_forward(kind: TunnelKind) -> Callable[[_Seen, str, str], None]:
    def add(seen: _Seen, value: str, token: str) -> None:
        seen.forwards.append((kind, value, token))

    return add


# What each option with a value does (the other ones in _WITH_ARG are noted as unused).
_OPTIONS: dict[str, Callable[[_Seen, str, str], None]] = {
    "p": _option_port,
    "l": _option_user,
    "i": _option_identity,
    "J": _option_jump,
    "L": _option_forward("local"),
    "R": _option_forward("remote"),
    "D": _option_forward("dynamic"),
    "o": _apply_option,
}


def _read_words(tokens: list[str]) -> _Words:
    """The words of the line, as ssh's getopt reads them: options (also after the
    destination), the destination, then the remote command."""
    words = _Words()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if words.rest:
            words.rest.append(token)
        elif token == "--":
            continue
        elif not token.startswith("-") or token == "-":
            # Like OpenSSH, options may follow the destination; the next word starts the command.
            if words.destination is None:
                _read_destination(words, token)
            else:
                words.rest.append(token)
        else:
            i = _read_option_word(words, token, tokens, i)
    return words


def _read_destination(words: _Words, token: str) -> None:
    words.destination = token
    d_user, words.dest_host, d_port = _destination(token, token)
    if d_user is not None:
        words.seen.set("user", d_user, token)
    if d_port is not None:
        words.seen.set("port", str(d_port), token)


def _read_option_word(words: _Words, token: str, tokens: list[str], i: int) -> int:
    """One word of option letters (`-CNg`, `-p2222`, `-L` with its value next); returns the
    index of the next word."""
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
                # An empty value is a paste error (a lost quote, an unset variable); taking
                # it as "not given" would save something the user did not ask for.
                raise SshCommandError(f"-{letter} needs a value, not an empty string", token)
            arg_token = f"-{letter} {value}" if token == f"-{letter}" else token
            handler = _OPTIONS.get(letter)
            if handler is not None:
                handler(words.seen, value, arg_token)
            else:
                words.notes.append(f"-{letter} {value} is not used by devtui; ignored")
            return i
        if letter in _NO_ARG:
            ignored = letter not in _HARMLESS | _HANDLED_FLAGS
            if ignored and letter not in words.flags:  # -tt is one note
                what = _FLAG_NAMES.get(letter, f"-{letter}")
                words.notes.append(f"{what} is not used by devtui; ignored")
            words.flags.add(letter)
            j += 1
            continue
        raise SshCommandError(f"unknown ssh option -{letter} in", token)
    return i


@dataclass(frozen=True)
class _Settings:
    """The host settings a line gives, checked."""

    user: str | None
    port: int
    hostname: str
    jump: str | None
    compression: bool
    gateway: bool
    agent: bool


def _settings(words: _Words) -> _Settings:
    """What the words set, checked as ssh checks them (first value wins)."""
    seen, flags = words.seen, words.flags
    if "f" in flags and "N" not in flags and not words.rest:
        raise SshCommandError(
            "-f: cannot fork into background without a command to execute (ssh refuses it "
            "too; add -N)"
        )
    user = seen.get("user")
    if user is not None and (problem := user_problem(user)):
        raise SshCommandError(f"user {problem}", seen.first["user"][1])
    port_text = seen.get("port")
    hostname = words.dest_host
    if (given := seen.get("hostname")) is not None:
        expanded = expand_hostname(given, words.dest_host.lower())
        if expanded is None:
            raise SshCommandError(
                "HostName takes only the tokens %h and %% (ssh refuses others)",
                seen.first["hostname"][1],
            )
        hostname = expanded
        if problem := hostname_problem(hostname):
            raise SshCommandError(f"HostName {problem}", hostname)
    jump = seen.get("proxyjump")
    if jump is not None and jump.lower() == "none":  # ssh's own spelling of "no jump host"
        jump = None
    return _Settings(
        user=user,
        port=int(port_text) if port_text is not None else 22,
        hostname=hostname,
        jump=jump,
        compression="C" in flags
        or _FLAG_VALUES.get((seen.get("compression") or "no").lower(), False),
        gateway="g" in flags or _FLAG_VALUES.get((seen.get("gatewayports") or "no").lower(), False),
        agent="A" in flags or not _is_no(seen.get("forwardagent") or "no"),
    )


def _note_ignored_checks(seen: _Seen, notes: list[str]) -> None:
    """Host-key options devtui does not obey, said."""
    shk = seen.get("stricthostkeychecking")
    if shk is not None and (_is_no(shk) or shk.lower() in ("off", "accept-new")):
        notes.append(
            f"StrictHostKeyChecking={shk} is not obeyed: devtui checks host keys "
            "(on first connect it shows the fingerprint and asks you to trust it)"
        )
    ukh = seen.get("userknownhostsfile")
    if ukh is not None:
        notes.append(f"UserKnownHostsFile={ukh} ignored: devtui uses the known_hosts from settings")


def _identities(seen: _Seen, notes: list[str]) -> tuple[str, ...]:
    """Every key file, in the order ssh tries them; the same file twice is tried once."""
    identities = tuple(dict.fromkeys(i for i in seen.identities if i))  # ssh drops -i ''
    for extra in identities[MAX_IDENTITY_FILES:]:
        notes.append(
            f"identity file {extra} not kept: devtui keeps at most {MAX_IDENTITY_FILES} "
            "identity files per host"
        )
    identities = identities[:MAX_IDENTITY_FILES]
    if problem := identity_files_problem(identities):
        raise SshCommandError(f"identity file {problem}", " ".join(identities)[-40:])
    return identities


def _certificate(seen: _Seen, notes: list[str]) -> str | None:
    """The one certificate kept (the first), the others said."""
    certificates = list(dict.fromkeys(seen.certificates))  # ssh lists the same file once
    for cert in certificates[1:]:
        notes.append(
            f"CertificateFile {cert} not kept: devtui keeps one certificate per host "
            f"(the first, {certificates[0]})"
        )
    if certificates and (problem := text_problem(certificates[0])):
        raise SshCommandError(f"CertificateFile {problem}", certificates[0][-40:])
    return certificates[0] if certificates else None


def _refuse_proxy_command(seen: _Seen) -> None:
    if (proxy := seen.get("proxycommand")) is not None and proxy.lower() != "none":
        # Saved, it would run on every connect: a command is never taken from a paste.
        raise SshCommandError(
            "ProxyCommand runs a command on this machine, so devtui does not take it from a "
            'pasted line; add proxy_command = "..." to the host\'s table by hand, or import '
            "the Host block (devtui hosts import-ssh-config)",
            f"ProxyCommand={proxy}"[:60],
        )


def _note_unused(words: _Words, agent: bool) -> None:
    """Options, agent forwarding and a remote command that devtui does not take, said."""
    seen, notes = words.seen, words.notes
    if seen.get("identitiesonly") is not None:
        notes.append("-o identitiesonly is not used by devtui; ignored")
    for key in sorted(set(seen.others)):
        notes.append(f"-o {key} is not used by devtui; ignored")
    if agent:
        notes.append(
            "-A (agent forwarding) recorded off; set forward_agent = true on the host to allow it"
        )
    if words.rest:
        notes.append(
            f"remote command {' '.join(words.rest)!r} ignored: devtui saves the host, not the "
            "command"
        )


def _tunnels(
    forwards: list[tuple[TunnelKind, str, str]],
    name: str,
    gateway: bool,
    flags: set[str],
    notes: list[str],
) -> list[TunnelSpec]:
    """The line's -L / -R / -D forwards as tunnels of host `name`, with what they expose."""
    tunnels = []
    shared_note = False
    for kind_, spec, token in forwards:
        listen, target, bind_given = parse_forward(kind_, spec, token)
        if kind_ != "remote" and listen.all_interfaces:
            notes.append(
                f"{token}: listens on all interfaces ({listen}) as you asked: "
                "other machines on your network can use it"
            )
        elif kind_ == "remote" and listen.exposed:
            notes.append(remote_listen_note(token, listen, target))
        elif gateway and not bind_given and kind_ != "remote" and not shared_note:
            shared_note = True
            notes.append(_gateway_note(flags))
        tunnels.append(
            TunnelSpec(
                tunnel_name(name, kind_, listen.port, socks=target is None),
                name,
                kind_,
                listen,
                target,
            )
        )
    if gateway and not shared_note:
        notes.append(_gateway_note(flags))
    return tunnels


def remote_listen_note(what: str, listen: Endpoint, target: Endpoint | None) -> str:
    """The note for a remote listener (-R) asked to listen beyond the remote's loopback:
    a reverse SOCKS proxy (no target) or a forward to `target`."""
    if target is None:
        return (
            f"{what}: a reverse SOCKS proxy on {listen} of the remote, as you asked: where "
            "its sshd lets clients pick the address (GatewayPorts clientspecified), other "
            "machines that reach that port can open connections from this machine"
        )
    return (
        f"{what}: listens on {listen} of the remote, as you asked: where its sshd lets "
        "clients pick the address (GatewayPorts clientspecified), other machines that reach "
        f"that port get through to {target} from this machine"
    )


def _gateway_note(flags: set[str]) -> str:
    what = "-g" if "g" in flags else "GatewayPorts=yes"
    return (
        f"{what} ignored: tunnels listen on 127.0.0.1 only. To share one with other machines "
        'on purpose, set listen = "0.0.0.0:PORT" in its [tunnels.NAME] table'
    )


@dataclass
class AddPlan:
    """What saving a pasted line changes: only what the config does not have yet."""

    hosts: list[HostSpec] = field(default_factory=list)  # to add, jump hosts first
    tunnels: list[TunnelSpec] = field(default_factory=list)  # to add
    host: str = ""  # the name the pasted host is saved under (new or already there)
    reused: bool = False  # the pasted host was already saved
    jump_reused: str | None = None  # the saved host that -J named (its last hop)
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


def free_name(base: str, taken: Container[str]) -> str:
    """`base`, or base-2, base-3 ... : the first that `taken` does not hold."""
    name, n = base, 2
    while name in taken:
        suffix = f"-{n}"
        name = base[: 64 - len(suffix)] + suffix
        n += 1
    return name


def _plan_jumps(current: ConfigData, parsed: ParsedCommand, plan: AddPlan, own: str) -> str | None:
    """Find or plan the hosts of the jump chain, first hop first; returns the last hop's name.

    A hop whose host is a saved host's name is that host, as a Host alias in ~/.ssh/config
    (`-J bastion`; `-J me@bastion:2200` is bastion as `me` on port 2200). A hop that is a
    saved machine reached the same way is reused; any other is planned under a free name.
    """
    previous: str | None = None
    planned: dict[str, HostSpec] = {}
    hops = parsed.jump_hosts or ([parsed.jump_host] if parsed.jump_host else [])
    texts = parsed.jump_texts or [parsed.jump_alias or ""] * len(hops)
    for index, (hop, text) in enumerate(zip(hops, texts, strict=True)):
        hop = replace(hop, jump=previous)
        user, host_part, port_text = split_hop(text) if text else ("", "", None)
        saved = current.hosts.get(host_part)
        if saved is not None:
            hop = replace(
                saved,
                user=user or saved.user,
                port=hop.port if port_text is not None else saved.port,
                jump=saved.jump if index == 0 else previous,
            )
            if hop == saved:
                previous = plan.jump_reused = saved.name
                continue
        saved_hosts = (*current.hosts.values(), *planned.values())
        match = _same_machine if index == 0 else _same_route
        same = next((h for h in saved_hosts if match(h, hop)), None)
        if same is not None:
            previous = same.name
            plan.jump_reused = same.name if same.name in current.hosts else None
            continue
        name = free_name(hop.name, {*current.hosts, *planned, own})
        hop = replace(hop, name=name)
        planned[name] = hop
        plan.hosts.append(hop)
        plan.jump_reused = None
        previous = name
    return previous


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
    if parsed.jump_hosts or parsed.jump_host:
        host = replace(host, jump=_plan_jumps(current, parsed, plan, host.name))
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
        if host.identity_files and host.identity_files != saved.identity_files:
            kept = ", ".join(saved.identity_files) or "none: agent and default keys"
            plan.notes.append(
                Note(
                    f"host {saved.name} keeps its saved identity files ({kept}), not "
                    f"{', '.join(host.identity_files)}; change them in its [hosts.{saved.name}] "
                    "table",
                    saved.name,
                )
            )
    taken = set(current.tunnels)
    for pasted in parsed.tunnels:
        tunnel = replace(
            pasted,
            name=tunnel_name(
                plan.host, pasted.kind, pasted.listen.port, socks=pasted.target is None
            ),
            host=plan.host,
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


def split_hop(hop: str) -> tuple[str, str, str | None]:
    """[user@]host[:port] (IPv6 in brackets) -> (user, host, port text)."""
    user, _, hostport = hop.rpartition("@")
    if hostport.startswith("["):
        close = hostport.find("]")
        tail = hostport[close + 1 :] if close >= 0 else ""
        if close < 0 or (tail and not tail.startswith(":")):
            raise SshCommandError("jump host: an IPv6 address in brackets needs ']'", hop)
        return user, hostport[1:close], tail[1:] if tail else None
    if hostport.count(":") == 1:
        host, port_text = hostport.split(":")
        return user, host, port_text
    if ":" in hostport:
        raise SshCommandError(
            "jump host: write an IPv6 address in brackets, [ADDR] or [ADDR]:PORT "
            "(ssh refuses it without)",
            hop,
        )
    return user, hostport, None


def jump_host_spec(jump: str) -> HostSpec:
    """-J [user@]host[:port] (one hop) -> a host spec named after the host."""
    if "," in jump:
        raise SshCommandError("one jump host expected here, not a chain", jump)
    user, host, port_text = split_hop(jump)
    if "@" in jump and not user:
        raise SshCommandError("the jump user before '@' is empty in", jump)
    port = _port(port_text, jump) if port_text is not None else 22
    if problem := hostname_problem(host):
        raise SshCommandError(f"jump host {problem}", jump)
    if user and (problem := user_problem(user)):
        raise SshCommandError(f"jump user {problem}", jump)
    return HostSpec(name=default_host_name(host), hostname=host, port=port, user=user or None)


def jump_chain(jump: str, taken: Container[str] = ()) -> list[HostSpec]:
    """-J hop1,hop2,... -> host specs, first hop first, each reached through the one before.

    Names are made from the hostnames and kept apart from each other and from `taken`.
    """
    hops: list[HostSpec] = []
    names: set[str] = set()
    for text in jump.split(","):
        hop = jump_host_spec(text)
        name = free_name(hop.name, _Either(names, taken))
        names.add(name)
        hops.append(replace(hop, name=name, jump=hops[-1].name if hops else None))
    return hops


@dataclass
class _Either:
    a: Container[str]
    b: Container[str]

    def __contains__(self, item: object) -> bool:
        return item in self.a or item in self.b


# ---------------------------------------------------------------------------------------------
# The reverse


def _forward_arg(tunnel: TunnelSpec) -> str:
    def addr(a: str) -> str:
        return f"[{a}]" if ":" in a else a

    listen = f"{addr(tunnel.listen.address)}:{tunnel.listen.port}"
    if tunnel.target is None:
        return listen
    return f"{listen}:{addr(tunnel.target.address)}:{tunnel.target.port}"


def _hop_text(jump: HostSpec) -> str:
    host = f"[{jump.hostname}]" if ":" in jump.hostname else jump.hostname
    user = f"{jump.user}@" if jump.user else ""
    return f"{user}{host}" + (f":{jump.port}" if jump.port != 22 else "")


def _timing_options(host: HostSpec) -> list[tuple[str, int]]:
    """The host's own keepalive and connect timeout as ssh options (whole seconds, rounded
    up: ssh takes no fractions)."""
    found: list[tuple[str, int]] = []
    if host.keepalive_interval is not None:
        found.append(("ServerAliveInterval", math.ceil(host.keepalive_interval)))
    if host.keepalive_count_max is not None:
        found.append(("ServerAliveCountMax", host.keepalive_count_max))
    if host.connect_timeout is not None:
        found.append(("ConnectTimeout", math.ceil(host.connect_timeout)))
    return found


def to_ssh_args(
    host: HostSpec,
    tunnels: Sequence[TunnelSpec] = (),
    jump: HostSpec | None = None,
    *,
    chain: Sequence[HostSpec] = (),
) -> list[str]:
    """The OpenSSH argv (without "ssh") that reaches `host` and opens `tunnels`.

    `chain` is every jump host, first hop first (`-J a,b`); without it, `jump` is the one.
    """
    hops = list(chain) or ([jump] if jump is not None else [])
    args: list[str] = []
    if host.port != 22:
        args += ["-p", str(host.port)]
    for identity in host.identity_files:
        args += ["-i", identity]
    for key, value in _timing_options(host):
        args += ["-o", f"{key}={value}"]
    if host.certificate_file:
        args += ["-o", f"CertificateFile={_config_value(host.certificate_file)}"]
    if host.proxy_command:
        # %n is the name on ssh's command line (here the hostname): give it devtui's name.
        command = expand_proxy_tokens(host.proxy_command, {"n": host.name.replace("%", "%%")})
        args += ["-o", f"ProxyCommand={command}"]
    if host.compression:
        args.append("-C")
    if host.forward_agent:
        args.append("-A")
    if hops:
        args += ["-J", ",".join(_hop_text(hop) for hop in hops)]
    if tunnels:
        args.append("-N")
    for tunnel in tunnels:
        letter = {"local": "-L", "remote": "-R", "dynamic": "-D"}[tunnel.kind]
        args += [letter, _forward_arg(tunnel)]
    target = f"{host.user}@{host.hostname}" if host.user else host.hostname
    args.append(target)
    return args


def to_ssh_command(
    host: HostSpec,
    tunnels: Sequence[TunnelSpec] = (),
    jump: HostSpec | None = None,
    *,
    chain: Sequence[HostSpec] = (),
) -> str:
    """One ssh command line (POSIX quoting) equivalent to `host` and `tunnels`."""
    return shlex.join(["ssh", *to_ssh_args(host, tunnels, jump, chain=chain)])


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
    for identity in host.identity_files:
        lines.append(f"    IdentityFile {_config_value(identity)}")
    for key, value in _timing_options(host):
        lines.append(f"    {key} {value}")
    if host.certificate_file:
        lines.append(f"    CertificateFile {_config_value(host.certificate_file)}")
    if host.proxy_command:
        lines.append(f"    ProxyCommand {host.proxy_command}")  # the rest of the line, as is
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
