"""Import hosts from OpenSSH's ~/.ssh/config (the file VS Code Remote-SSH writes).

asyncssh's SSHClientConfig evaluates one given host but cannot list Host blocks, rejects
some Match conditions outright and ignores *Forward options, so this module reads the
file itself with OpenSSH's rules (tests/test_ssh_g.py checks them against `ssh -G`): lines
split as ssh splits them (quotes, `# comments`), Include read in place (relative to ~/.ssh,
globs; inside a Host block it counts only where that block does), Host patterns matched
case-sensitively, the first value of a setting wins, identity files and forwards add up,
and a ProxyJump hop is read as `ssh HOP` would read it (its own Host blocks, Host *).
"""

from __future__ import annotations

import getpass
import glob
import os
import re
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path

from .atomic import SSH_CONFIG_LIMIT, atomic_write_text, read_file
from .errors import DevtuiError, SshCommandError
from .model import (
    MAX_IDENTITY_FILES,
    ConfigData,
    HostSpec,
    Note,
    TunnelKind,
    TunnelSpec,
    expand_proxy_tokens,
    hostname_problem,
    listens_clash,
    name_problem,
    proxy_command_problem,
    text_problem,
    tunnel_name,
    user_problem,
)
from .sshcmd import (
    config_words,
    default_host_name,
    expand_hostname,
    free_name,
    host_timing,
    parse_forward,
    port_number,
    remote_listen_note,
    split_hop,
    timing_problem,
    to_ssh_config_block,
)

_MAX_INCLUDE_DEPTH = 16  # as OpenSSH's READCONF_MAX_DEPTH: deeper is an error there too
# Includes that fan out (every file including every other) grow factorially even with loops
# cut; no real setup reads more files than this.
_MAX_INCLUDE_FILES = 256
_MAX_JUMP_DEPTH = 8  # a ProxyJump through a ProxyJump ...: deeper is a loop in practice
_SINGLE = {
    "hostname",
    "user",
    "port",
    "proxyjump",
    "proxycommand",
    "compression",
    "forwardagent",
    "gatewayports",
    "stricthostkeychecking",
    "serveraliveinterval",
    "serveralivecountmax",
    "connecttimeout",
}
_LISTS = {"identityfile", "certificatefile"}
_FORWARDS: dict[str, TunnelKind] = {
    "localforward": "local",
    "remoteforward": "remote",
    "dynamicforward": "dynamic",
}
_KEYS = _SINGLE | _LISTS | set(_FORWARDS)
# Read and obeyed in spirit (devtui checks host keys in its own known_hosts, offers the
# identity given), or without effect on a saved host: no note for these.
_QUIET = {"identitiesonly", "hashknownhosts", "addkeystoagent", "loglevel"}
_SETTINGS_KEYS = {
    "serveraliveinterval": "ServerAliveInterval",
    "serveralivecountmax": "ServerAliveCountMax",
    "connecttimeout": "ConnectTimeout",
}


@dataclass
class _Option:
    key: str
    args: list[str]
    where: str
    raw: str = ""  # ProxyCommand: the rest of the line as written (ssh keeps it whole)


@dataclass(eq=False)
class _Block:
    """A Host or Match line and what it guards; `parent` is the block an Include sat in."""

    where: str
    patterns: list[str] | None = None  # Host
    criteria: list[str] | None = None  # Match
    parent: _Block | None = None


def _pattern_re(pattern: str) -> re.Pattern[str]:
    # ssh's match_pattern: '*' and '?' only (no [classes]), case-sensitive for Host.
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    )


def host_matches(alias: str, patterns: list[str]) -> bool:
    """OpenSSH's Host line: any pattern matches `alias` and no negated one does."""
    hit = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _pattern_re(pattern[1:] if negated else pattern).fullmatch(alias):
            if negated:
                return False
            hit = True
    return hit


def _list_matches(value: str, patterns: str) -> bool:
    """A Match criterion's comma-separated pattern list (negation with '!')."""
    return host_matches(value, patterns.split(","))


@dataclass
class ImportResult:
    """Hosts and tunnels found, and notes for the user about what was skipped."""

    hosts: list[HostSpec] = field(default_factory=list)
    tunnels: list[TunnelSpec] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)  # each knows the host it concerns
    # Hosts made for ProxyJump hops (not Host aliases): plan_import may rename them.
    jump_hosts: list[str] = field(default_factory=list)


def _split_line(line: str) -> list[str]:
    """A config line's keyword and arguments, as OpenSSH reads them (quotes group words,
    a word starting with '#' ends the line, backslashes stay for Windows paths)."""
    words = config_words(line)
    if isinstance(words, str):
        return []
    key, args = words
    return [key, *args] if key else []


@dataclass
class _Includes:
    """What the scan has open (the Include stack) and has read so far."""

    stack: list[Path] = field(default_factory=list)
    files_read: int = 0
    looped: set[str] = field(default_factory=set)  # "file:line" already noted


@dataclass
class _File:
    """Everything read: blocks and options in reading order (Include read in place)."""

    entries: list[tuple[_Block, _Option | None]] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)  # about the file, not one host
    defined: dict[str, _Block] = field(default_factory=dict)  # alias -> first Host block naming it


def _same_file(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


def _scan(path: Path, ssh_dir: Path, found: _File, inc: _Includes, parent: _Block) -> None:
    if len(inc.stack) > _MAX_INCLUDE_DEPTH:
        raise DevtuiError(
            f"{path}: Include nested more than {_MAX_INCLUDE_DEPTH} deep (ssh refuses this "
            "config too); nothing imported"
        )
    inc.files_read += 1
    if inc.files_read > _MAX_INCLUDE_FILES:
        raise DevtuiError(
            f"{path}: Include reads more than {_MAX_INCLUDE_FILES} files (files that include "
            "each other?); nothing imported"
        )
    inc.stack.append(_same_file(path))
    try:
        _scan_file(path, ssh_dir, found, inc, parent)
    finally:
        inc.stack.pop()


def _scan_file(path: Path, ssh_dir: Path, found: _File, inc: _Includes, parent: _Block) -> None:
    """Read one file. Lines before its first Host/Match belong to `parent` (the block the
    Include sat in); its Host and Match blocks count only where `parent` applies, as in
    OpenSSH; after an Include, the including block goes on."""
    try:
        text = read_file(path, SSH_CONFIG_LIMIT).decode("utf-8-sig", errors="replace")
    except OSError as e:
        found.notes.append(Note(f"{path}: cannot read ({e.strerror})"))
        return
    current = parent
    for number, raw in enumerate(text.splitlines(), start=1):
        where = f"{path}:{number}"
        words = config_words(raw)
        if isinstance(words, str):
            raise DevtuiError(f"{where}: {words} (ssh refuses this config too); nothing imported")
        key, args = words
        if not key:
            continue
        if key in _SETTINGS_KEYS and args and (problem := timing_problem(key, args[0])):
            # ssh checks the value wherever it stands, in a block that applies or not.
            raise DevtuiError(
                f"{where}: {key} {args[0]!r}: {problem} (ssh refuses this config too); "
                "nothing imported"
            )
        if key == "host":
            current = _Block(where, patterns=args, parent=parent)
            found.entries.append((current, None))
            for pattern in args:
                if not any(c in pattern for c in "*?!"):
                    found.defined.setdefault(pattern, current)
        elif key == "match":
            current = _Block(where, criteria=args, parent=parent)
            found.entries.append((current, None))
        elif key == "include":
            for pattern in args:
                expanded = Path(pattern).expanduser()
                if not expanded.is_absolute():
                    expanded = ssh_dir / expanded
                matches = sorted(glob.glob(str(expanded)))
                if not matches and not any(c in pattern for c in "*?["):
                    # ssh skips it silently too, but the user may wonder where hosts went
                    found.notes.append(
                        Note(f"{where}: Include {pattern}: {expanded} does not exist")
                    )
                for name in matches:
                    if _same_file(Path(name)) in inc.stack:
                        # A file including itself (or an ancestor): read once, note once.
                        if where not in inc.looped:
                            inc.looped.add(where)
                            found.notes.append(
                                Note(
                                    f"{where}: Include {pattern}: {name} is already being read "
                                    "(an Include loop); skipped"
                                )
                            )
                        continue
                    _scan(Path(name), ssh_dir, found, inc, current)
        else:
            rest = ""
            if key == "proxycommand":  # after the keyword, spaces and "=": all of the line
                rest = re.sub(r"^[^\s=]*[\s=]*", "", raw.strip(" \t\r\n\f"))
            found.entries.append((current, _Option(key, args, where, rest)))


def read_ssh_config(path: Path | str | None = None) -> ImportResult:
    """Read ~/.ssh/config (or `path`); a missing file gives an empty result.

    Every Host alias is evaluated as `ssh ALIAS` would: blocks in file order, the first
    value of a setting wins, identity files and forwards add up. Raises DevtuiError for a
    line ssh refuses (bad quotes, no value), and when Include nests too deep or reads too
    many files.
    """
    ssh_dir = Path("~/.ssh").expanduser()
    path = Path(path).expanduser() if path else ssh_dir / "config"
    result = ImportResult()
    if not path.exists():
        return result
    found = _File(notes=result.notes)
    root = _Block(str(path))  # options before any Host apply to all
    _scan(path, ssh_dir, found, _Includes(), root)
    for block, option in found.entries:
        if option is None and block.criteria is not None and not _match_supported(block.criteria):
            # ssh would evaluate it (run an exec, canonicalize ...): say what devtui leaves out.
            result.notes.append(
                Note(
                    f"{block.where}: Match block skipped: devtui evaluates only Match all, host, "
                    f"originalhost, user and localuser, not `Match {' '.join(block.criteria)}`; "
                    "the settings under it are left out"
                )
            )
    importer = _Importer(found, result)
    for alias in found.defined:
        importer.add_alias(alias)
    for (where, text), names in importer.unused.items():
        result.notes.append(
            Note(
                f"{where}: {text} is not used by devtui (host{'s' * (len(names) > 1)} "
                f"{', '.join(names)})",
                hosts=names,
            )
        )
    return result


_MATCH_SUPPORTED = {"all", "host", "originalhost", "user", "localuser"}


def _match_supported(criteria: list[str]) -> bool:
    words = [c.lstrip("!").lower() for c in criteria]
    i = 0
    while i < len(words):
        if words[i] not in _MATCH_SUPPORTED:
            return False
        i += 1 if words[i] == "all" else 2
    return True


@dataclass
class _Resolved:
    """One evaluation of the config for an alias, as `ssh ALIAS` would see it."""

    alias: str
    first: dict[str, _Option] = field(default_factory=dict)
    identities: list[_Option] = field(default_factory=list)
    certificates: list[_Option] = field(default_factory=list)
    forwards: list[_Option] = field(default_factory=list)
    defined_here: bool = False  # the Host block that names the alias applies to it
    unused: list[_Option] = field(default_factory=list)  # settings devtui does not act on

    def value(self, key: str) -> str | None:
        option = self.first.get(key)
        return option.args[0] if option else None


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return ""


def _evaluate(found: _File, alias: str, overrides: dict[str, str]) -> _Resolved:
    """Apply every block that matches `alias`, in order (`overrides` as ssh's -l / -p)."""
    seen = _Resolved(alias)
    for key, value in overrides.items():
        seen.first[key] = _Option(key, [value], "command line")
    active: dict[int, bool] = {}
    defining = found.defined.get(alias)

    def is_active(block: _Block) -> bool:
        if block.patterns is None and block.criteria is None:
            return block.parent is None or is_active(block.parent)
        return active.get(id(block), False)

    for block, option in found.entries:
        if option is None:
            ok = block.parent is None or is_active(block.parent)
            if ok and block.patterns is not None:
                ok = host_matches(alias, block.patterns)
            elif ok and block.criteria is not None:
                ok = _match(block.criteria, seen)
            active[id(block)] = ok
            if block is defining and ok:
                seen.defined_here = True
            continue
        if not is_active(block) or not option.args:
            continue
        if option.key in _FORWARDS:
            seen.forwards.append(option)
        elif option.key == "identityfile":
            seen.identities.append(option)
        elif option.key == "certificatefile":
            seen.certificates.append(option)
        elif option.key in ("proxyjump", "proxycommand"):
            # ssh keeps the first of the two: ProxyJump and ProxyCommand exclude each other,
            # except that a ProxyJump none leaves room for a later ProxyCommand (ssh -G).
            jump = seen.first.get("proxyjump")
            jump_free = jump is None or (
                option.key == "proxycommand" and jump.args[0].lower() == "none"
            )
            if jump_free and "proxycommand" not in seen.first:
                seen.first[option.key] = option
        elif option.key in _SETTINGS_KEYS and option.args[0] == "none":
            pass  # "none" leaves the time unset: a later value still counts, as in ssh
        elif option.key in _KEYS:
            seen.first.setdefault(option.key, option)
        elif option.key not in _QUIET:
            seen.unused.append(option)
    return seen


def _match(criteria: list[str], seen: _Resolved) -> bool:
    """OpenSSH's Match for the criteria devtui can evaluate; others never match."""
    if not _match_supported(criteria):
        return False
    i = 0
    while i < len(criteria):
        word = criteria[i]
        negate = word.startswith("!")
        name = word.lstrip("!").lower()
        if name == "all":
            ok = True
            i += 1
        else:
            arg = criteria[i + 1] if i + 1 < len(criteria) else ""
            i += 2
            # Host names match case-blind here (ssh's match_hostname), unlike Host lines.
            if name == "host":
                alias = seen.alias.lower()
                hostname = expand_hostname(seen.value("hostname") or alias, alias)
                ok = _list_matches((hostname or alias).lower(), arg.lower())
            elif name == "originalhost":
                ok = _list_matches(seen.alias.lower(), arg.lower())
            elif name == "user":
                ok = _list_matches(seen.value("user") or _local_user(), arg)
            else:  # localuser
                ok = _list_matches(_local_user(), arg)
        if ok == negate:
            return False
    return True


_TOKENS_IDENTITY = "dhprunil%"


class _Importer:
    """Turns evaluated aliases into host specs, making hosts for ProxyJump hops."""

    def __init__(self, found: _File, result: ImportResult) -> None:
        self.found = found
        self.result = result
        self.by_name: dict[str, HostSpec] = {}
        self.failed: set[str] = set()
        self.busy: list[str] = []
        self.aliases: list[str] = []  # the Host aliases being imported, innermost last
        # (file:line, "Keyword value") -> the hosts it applies to, for one note each
        self.unused: dict[tuple[str, str], list[str]] = {}

    def note(self, text: str) -> None:
        """A note about the Host alias being imported (a jump host made for it included)."""
        if text not in self.result.notes:
            self.result.notes.append(Note(text, self.aliases[-1] if self.aliases else None))

    def add_alias(self, alias: str) -> str | None:
        """Import Host `alias` (once); returns its name, or None when it was skipped."""
        self.aliases.append(alias)
        try:
            return self._add_alias(alias)
        finally:
            self.aliases.pop()

    def _add_alias(self, alias: str) -> str | None:
        if alias in self.by_name:
            return alias
        if alias in self.failed:
            return None
        if alias in self.busy:
            chain = " -> ".join([*self.busy[self.busy.index(alias) :], alias])
            self.note(f"Host {alias} skipped: its ProxyJump goes round in a loop ({chain})")
            self.failed.add(alias)
            return None
        if problem := name_problem(alias):
            self.note(f"Host {alias!r} skipped: name {problem}")
            self.failed.add(alias)
            return None
        seen = _evaluate(self.found, alias, {})
        if not seen.defined_here:
            where = self.found.defined[alias].where
            self.note(
                f"Host {alias} ({where}) skipped: ssh never reads that block for {alias} "
                "(it sits in an Include under a Host or Match line that does not match it)"
            )
            self.failed.add(alias)
            return None
        self.busy.append(alias)
        try:
            host = self._spec(seen, alias, f"Host {alias}")
        finally:
            self.busy.pop()
        if host is None or alias in self.failed:
            self.failed.add(alias)
            return None
        self.by_name[alias] = host
        self.result.hosts.append(host)
        for option in seen.unused:
            key = (option.where, f"{option.key} {' '.join(option.args)}")
            self.unused.setdefault(key, []).append(alias)
        for option in seen.forwards:
            kind = _FORWARDS[option.key]
            try:
                listen, target, _ = parse_forward(kind, ":".join(option.args))
            except SshCommandError as e:
                self.note(f"{option.where}: Host {alias}: {option.key} skipped ({e})")
                continue
            name = tunnel_name(alias, kind, listen.port, socks=target is None)
            self.result.tunnels.append(TunnelSpec(name, alias, kind, listen, target))
            if kind == "remote" and listen.exposed:
                self.note(
                    remote_listen_note(
                        f"{option.where}: Host {alias}: RemoteForward", listen, target
                    )
                )
        return alias

    def _spec(self, seen: _Resolved, name: str, label: str) -> HostSpec | None:
        """A host spec from one evaluation; None (with a note) when it cannot be kept."""
        alias = seen.alias
        given = seen.value("hostname")
        # ssh lowercases the name it connects to (%h too); host names are case-blind anyway.
        hostname = expand_hostname(given, alias.lower()) if given is not None else alias
        hostname = hostname.lower() if hostname is not None else None
        if hostname is None or (problem := hostname_problem(hostname)):
            what = "takes only the tokens %h and %%" if hostname is None else problem
            self.note(f"{label} skipped: HostName {given!r} {what}")
            return None
        port_text = seen.value("port") or "22"
        if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
            where = seen.first["port"].where
            self.note(f"{label} skipped: {where}: bad Port {port_text!r}")
            return None
        port = int(port_text)
        user = seen.value("user")
        if user and (problem := user_problem(user)):
            self.note(f"{label}: User {user!r} ignored ({problem})")
            user = None
        proxy: str | None = None
        if (command := seen.first.get("proxycommand")) is not None and (
            command.raw.lower() != "none"
        ):
            # %n is the alias ssh was given: fixed now, as devtui may name the host otherwise.
            proxy = expand_proxy_tokens(command.raw, {"n": seen.alias.replace("%", "%%")})
            if problem := proxy_command_problem(proxy):
                self.note(f"{label} skipped: {command.where}: ProxyCommand {problem}")
                return None
        identities = self._identity(seen, label, hostname, port, user)
        timing_notes: list[str] = []
        values = {key: v for key in _SETTINGS_KEYS if (v := seen.value(key)) is not None}
        timing = host_timing(values, timing_notes, f"{label}: ")
        for text in timing_notes:
            self.note(text)
        jump: str | None = None
        if (jump_text := seen.value("proxyjump")) is not None and jump_text.lower() != "none":
            jump = self._chain(jump_text, label, hostname, port, user)
            if jump is None:
                return None
        compression = (seen.value("compression") or "no").lower() in ("yes", "true")
        self._notes(seen, label)
        return HostSpec(
            name=name,
            hostname=hostname,
            port=port,
            user=user,
            identity_files=identities,
            jump=jump,
            compression=compression,
            forward_agent=False,
            **timing,
            certificate_file=self._certificate(seen, label, hostname, port, user),
            proxy_command=proxy,
        )

    def _identity(
        self, seen: _Resolved, label: str, hostname: str, port: int, user: str | None
    ) -> tuple[str, ...]:
        paths: list[str] = []
        for option in seen.identities:
            path = expand_identity(
                option.args[0],
                hostname=hostname,
                port=port,
                user=user or _local_user(),
                alias=seen.alias,
            )
            if path is None:
                self.note(
                    f"{option.where}: {label}: IdentityFile {option.args[0]!r} left out (devtui "
                    "expands only ~, %d, %h, %p, %r, %u, %n, %i, %l and %%)"
                )
            elif problem := text_problem(path):
                self.note(f"{option.where}: {label}: IdentityFile left out ({problem})")
            elif path.lower() != "none":
                paths.append(path)
        paths = list(dict.fromkeys(paths))  # the same file twice is tried once
        for extra in paths[MAX_IDENTITY_FILES:]:
            self.note(
                f"{label}: identity file {extra} not kept: devtui keeps at most "
                f"{MAX_IDENTITY_FILES} identity files per host"
            )
        return tuple(paths[:MAX_IDENTITY_FILES])

    def _certificate(
        self, seen: _Resolved, label: str, hostname: str, port: int, user: str | None
    ) -> str | None:
        paths: list[str] = []
        for option in seen.certificates:
            path = expand_identity(  # ssh expands CertificateFile's tokens as IdentityFile's
                option.args[0],
                hostname=hostname,
                port=port,
                user=user or _local_user(),
                alias=seen.alias,
            )
            if path is None or text_problem(path):
                self.note(f"{option.where}: {label}: CertificateFile {option.args[0]!r} left out")
            elif path.lower() != "none":
                paths.append(path)
        paths = list(dict.fromkeys(paths))
        for extra in paths[1:]:
            self.note(
                f"{label}: CertificateFile {extra} not kept: devtui keeps one certificate per "
                f"host (the first, {paths[0]})"
            )
        return paths[0] if paths else None

    def _notes(self, seen: _Resolved, label: str) -> None:
        if not _no(seen.value("forwardagent")):
            self.note(f"{label}: ForwardAgent yes recorded off (set forward_agent = true)")
        if (seen.value("gatewayports") or "no").lower() in ("yes", "true"):
            self.note(
                f"{label}: GatewayPorts yes ignored: tunnels listen on 127.0.0.1 only. To share "
                'one on purpose, set listen = "0.0.0.0:PORT" in its [tunnels.NAME] table'
            )
        strict = seen.value("stricthostkeychecking")
        if strict is not None and strict.lower() in ("no", "false", "off", "accept-new"):
            self.note(
                f"{label}: StrictHostKeyChecking {strict} is not obeyed: devtui checks host "
                "keys (on first connect it shows the fingerprint and asks you to trust it)"
            )

    def _chain(
        self, text: str, label: str, hostname: str, port: int, user: str | None
    ) -> str | None:
        """The name of the last hop of ProxyJump `text`, each hop a host of its own."""
        previous: str | None = None
        last: tuple[str, str | None, int] = ("", None, 22)
        for hop in text.split(","):
            try:
                hop_user, hop_host, hop_port = split_hop(hop)
                if "@" in hop and not hop_user:
                    raise SshCommandError("the jump user before '@' is empty in", hop)
                if hop_port is not None:
                    port_number(hop_port, hop)
            except SshCommandError as e:
                self.note(f"{label} skipped: ProxyJump {text!r}: {e}")
                return None
            previous = self._hop(hop_host, hop_user or None, hop_port, previous, label)
            if previous is None:
                self.note(f"{label} skipped: its ProxyJump {text!r} goes through {hop} (see above)")
                return None
            last = (hop_host, hop_user or None, int(hop_port) if hop_port else 22)
        # ssh's own check, on the words: the last hop is the destination, as the same user.
        if (last[0], last[2], last[1] or user) == (hostname, port, user):
            self.note(f"{label} skipped: ProxyJump {text!r} leads to itself (a jumphost loop)")
            return None
        return previous

    def _hop(
        self,
        host: str,
        user: str | None,
        port: str | None,
        previous: str | None,
        label: str,
    ) -> str | None:
        """One hop, read as ssh's `ssh [-l user] [-p port] [-J previous] host`."""
        if len(self.busy) > _MAX_JUMP_DEPTH:
            self.note(f"{label} skipped: ProxyJump nests more than {_MAX_JUMP_DEPTH} deep")
            return None
        if user is None and port is None and previous is None and host in self.found.defined:
            return self.add_alias(host)  # ProxyJump bastion: the Host bastion itself
        overrides = {k: v for k, v in (("user", user), ("port", port)) if v is not None}
        seen = _evaluate(self.found, host, overrides)
        if previous is not None:
            # Later hops are reached through the ones before (ssh -J), not their own ProxyJump.
            seen.first.pop("proxyjump", None)
            seen.first.pop("proxycommand", None)
        hop_label = f"{label}: jump host {host}"
        self.busy.append(host)
        try:
            spec = self._spec(seen, host, hop_label)
        finally:
            self.busy.pop()
        if spec is None:
            return None
        if previous is not None:
            spec = replace(spec, jump=previous)
        for name, other in self.by_name.items():
            if _same_host(other, spec):
                return name
        base = host if name_problem(host) is None else default_host_name(spec.hostname)
        name = free_name(base, _Taken(self.found.defined, self.by_name))
        spec = replace(spec, name=name)
        self.by_name[name] = spec
        self.result.hosts.append(spec)
        self.result.jump_hosts.append(name)
        return name


@dataclass
class _Taken:
    aliases: dict[str, _Block]
    hosts: dict[str, HostSpec]

    def __contains__(self, name: object) -> bool:
        return name in self.aliases or name in self.hosts


def _same_host(a: HostSpec, b: HostSpec) -> bool:
    def key(h: HostSpec) -> tuple[object, ...]:
        return (
            h.hostname,
            h.port,
            h.user,
            h.identity_files,
            h.jump,
            h.compression,
            h.keepalive_interval,
            h.keepalive_count_max,
            h.connect_timeout,
            h.certificate_file,
        )

    return key(a) == key(b)


def _no(value: str | None) -> bool:
    return value is None or value.lower() in ("no", "false")


def expand_identity(path: str, *, hostname: str, port: int, user: str, alias: str) -> str | None:
    """IdentityFile's tokens as ssh expands them (%d home, %h host, %p port, %r remote user,
    %u local user, %n the alias, %i uid, %l this machine, %%); None for a token devtui does
    not know. `~` stays: it is expanded where the key is read."""
    home = str(Path("~").expanduser())
    values = {
        "d": home,
        "h": hostname,
        "p": str(port),
        "r": user,
        "u": _local_user(),
        "n": alias,
        "i": str(os.getuid()) if hasattr(os, "getuid") else "0",
        "l": socket.gethostname().split(".")[0],
        "%": "%",
    }
    out: list[str] = []
    i = 0
    while i < len(path):
        if path[i] != "%":
            out.append(path[i])
            i += 1
            continue
        token = path[i + 1 : i + 2]
        if token not in values:
            return None
        out.append(values[token])
        i += 2
    return "".join(out)


def plan_import(current: ConfigData, found: ImportResult) -> ImportResult:
    """What of `found` is new to `current`: importing twice adds nothing twice."""
    plan = ImportResult(notes=list(found.notes))
    taken = {(h.hostname.lower(), h.port, h.user): h.name for h in current.hosts.values()}
    saved_as: dict[str, str] = {}  # found name -> the name devtui already has it under
    renamed: dict[str, str] = {}  # a jump host made from ProxyJump, whose name was taken
    names = {h.name for h in found.hosts}
    for host in found.hosts:
        old = current.hosts.get(host.name)
        same = taken.get((host.hostname.lower(), host.port, host.user))
        if old is not None:
            if (old.hostname, old.port, old.user) == (host.hostname, host.port, host.user):
                saved_as[host.name] = host.name
            elif host.name in found.jump_hosts and same is not None:
                saved_as[host.name] = same
            elif host.name in found.jump_hosts:
                # Its name was made up from the hop: another one will do.
                new = free_name(host.name, {*current.hosts, *names, *renamed.values()})
                renamed[host.name] = new
                plan.hosts.append(replace(host, name=new))
            else:
                plan.notes.append(
                    Note(
                        f"Host {host.name} skipped: devtui already has a different host by "
                        "that name",
                        host.name,
                    )
                )
            continue
        if same is not None:
            saved_as[host.name] = same
            continue
        plan.hosts.append(host)
    # A ProxyJump must lead to the same machine it led to in ~/.ssh/config.
    planned = {h.name for h in plan.hosts}
    plan.hosts = [
        replace(h, jump=renamed[h.jump])
        if h.jump in renamed
        else replace(h, jump=saved_as[h.jump])
        if h.jump in saved_as and h.jump not in planned
        else h
        for h in plan.hosts
    ]
    changed = True
    while changed:  # leave out hosts that jump through a host that is left out
        valid = {h.name for h in plan.hosts} | set(saved_as.values())
        kept = [h for h in plan.hosts if h.jump is None or h.jump in valid]
        for host in plan.hosts:
            if host not in kept:
                plan.notes.append(
                    Note(
                        f"Host {host.name} skipped: its ProxyJump {host.jump} was not imported",
                        host.name,
                    )
                )
        changed = len(kept) != len(plan.hosts)
        plan.hosts = kept
    names = {h.name for h in plan.hosts}
    for tunnel in found.tunnels:
        if tunnel.host not in names or tunnel.name in current.tunnels:
            continue
        clash = next(
            (t for t in (*current.tunnels.values(), *plan.tunnels) if listens_clash(t, tunnel)),
            None,
        )
        if clash:
            plan.notes.append(
                Note(
                    f"{tunnel.name} ({tunnel.describe()}) skipped: {tunnel.listen} is taken by "
                    f"tunnel {clash.name}",
                    tunnel.host,
                )
            )
            continue
        plan.tunnels.append(tunnel)
    return plan


def _defined_hosts(text: str) -> dict[str, int]:
    """Host names (exact, no wildcards) that `Host` lines of `text` define, with line numbers."""
    found: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        words = _split_line(line) if line.strip() and not line.strip().startswith("#") else []
        if words and words[0].lower() == "host":
            for pattern in words[1:]:
                found.setdefault(pattern, number)
    return found


def _first_catch_all(text: str) -> int | None:
    """Index of the first line that starts a `Host` block with only wildcards, or a `Match`."""
    for index, line in enumerate(text.splitlines(keepends=True)):
        words = _split_line(line) if line.strip() and not line.strip().startswith("#") else []
        if not words:
            continue
        key = words[0].lower()
        if key == "match" or (key == "host" and all(any(c in p for c in "*?!") for p in words[1:])):
            return index
    return None


def write_host_blocks(
    path: Path | str | None, hosts: list[HostSpec], tunnels: list[TunnelSpec]
) -> list[str]:
    """Add `Host` blocks for `hosts` (a host and the jump hosts it needs) to ~/.ssh/config.

    Hosts the file already defines are left as they are; returns the names written. The
    blocks go before the first catch-all block (`Host *`, `Match`), since OpenSSH takes the
    first value it finds. Saved atomically with a `.bak`.
    """
    path = Path(path).expanduser() if path else Path("~/.ssh/config").expanduser()
    try:
        # newline="" as read_text would not: the file's own line endings stay.
        text = read_file(path, SSH_CONFIG_LIMIT).decode("utf-8-sig")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as e:
        raise DevtuiError(f"cannot read {path}: {e}") from None
    defined = _defined_hosts(text)
    blocks, written = [], []
    for host in hosts:
        if host.name in defined:
            continue
        mine = [t for t in tunnels if t.host == host.name]
        blocks.append(f"# added by devtui\n{to_ssh_config_block(host, mine)}\n")
        written.append(host.name)
    if not blocks:
        return written
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    at = _first_catch_all(text)
    if at is None:
        if lines and lines[-1].strip():
            lines.append("\n")
        lines.extend(blocks)
    else:
        lines[at:at] = blocks
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_text(path, "".join(lines), backup=True, mode=0o600)
    except OSError as e:
        raise DevtuiError(f"cannot write {path}: {e.strerror or e}") from None
    return written


__all__ = ["ImportResult", "plan_import", "read_ssh_config", "write_host_blocks"]
