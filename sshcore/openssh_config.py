"""Import hosts from OpenSSH's ~/.ssh/config (the file VS Code Remote-SSH writes).

asyncssh's SSHClientConfig evaluates one given host but cannot list Host blocks, rejects
some Match conditions outright and ignores *Forward options, so this module scans the
file itself with OpenSSH's rules: first value wins, wildcard blocks are defaults,
Include is relative to ~/.ssh and takes globs, forwards accumulate.
"""

from __future__ import annotations

import fnmatch
import glob
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from .atomic import atomic_write_text
from .errors import DevtuiError, SshCommandError
from .model import (
    ConfigData,
    HostSpec,
    TunnelKind,
    TunnelSpec,
    hostname_problem,
    listens_clash,
    name_problem,
    tunnel_name,
    user_problem,
)
from .sshcmd import jump_host_spec, parse_forward, to_ssh_config_block

_MAX_INCLUDE_DEPTH = 16  # as OpenSSH's READCONF_MAX_DEPTH: deeper is an error there too
# Includes that fan out (every file including every other) grow factorially even with loops
# cut; no real setup reads more files than this.
_MAX_INCLUDE_FILES = 256
_KEYS = {
    "hostname",
    "user",
    "port",
    "identityfile",
    "proxyjump",
    "compression",
    "forwardagent",
    "localforward",
    "remoteforward",
    "dynamicforward",
}
_FORWARDS: dict[str, TunnelKind] = {
    "localforward": "local",
    "remoteforward": "remote",
    "dynamicforward": "dynamic",
}


@dataclass
class _Option:
    key: str
    args: list[str]
    where: str


@dataclass
class _Block:
    patterns: list[str] | None  # None: a Match block (skipped)
    options: list[_Option] = field(default_factory=list)

    def matches(self, alias: str) -> bool:
        if self.patterns is None:
            return False
        hit = False
        for pattern in self.patterns:
            negated = pattern.startswith("!")
            if fnmatch.fnmatchcase(alias.lower(), pattern.lstrip("!").lower()):
                if negated:
                    return False
                hit = True
        return hit


@dataclass
class ImportResult:
    """Hosts and tunnels found, and notes for the user about what was skipped."""

    hosts: list[HostSpec] = field(default_factory=list)
    tunnels: list[TunnelSpec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _split_line(line: str) -> list[str]:
    # OpenSSH: "Key value", "Key=value", double quotes group words; backslashes stay (Windows paths).
    line = line.strip()
    match = re.match(r"^(\S+?)\s*(?:=\s*|\s+)(.*)$", line)
    if not match:
        return [line]
    key, rest = match.groups()
    words = [a if a else b for a, b in re.findall(r'"([^"]*)"|(\S+)', rest)]
    return [key, *words]


@dataclass
class _Includes:
    """What the scan has open (the Include stack) and has read so far."""

    stack: list[Path] = field(default_factory=list)
    files_read: int = 0
    looped: set[str] = field(default_factory=set)  # "file:line" already noted


def _same_file(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


def _scan(
    path: Path, ssh_dir: Path, blocks: list[_Block], notes: list[str], inc: _Includes
) -> None:
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
        _scan_file(path, ssh_dir, blocks, notes, inc)
    finally:
        inc.stack.pop()


def _scan_file(
    path: Path, ssh_dir: Path, blocks: list[_Block], notes: list[str], inc: _Includes
) -> None:
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as e:
        notes.append(f"{path}: cannot read ({e.strerror})")
        return
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = _split_line(line)
        key = words[0].lower()
        where = f"{path}:{number}"
        if key == "host":
            blocks.append(_Block(patterns=words[1:]))
        elif key == "match":
            notes.append(f"{where}: Match block skipped (devtui imports Host blocks only)")
            blocks.append(_Block(patterns=None))
        elif key == "include":
            for pattern in words[1:]:
                expanded = Path(pattern).expanduser()
                if not expanded.is_absolute():
                    expanded = ssh_dir / expanded
                matches = sorted(glob.glob(str(expanded)))
                if not matches and not any(c in pattern for c in "*?["):
                    # ssh skips it silently too, but the user may wonder where hosts went
                    notes.append(f"{where}: Include {pattern}: {expanded} does not exist")
                for found in matches:
                    if _same_file(Path(found)) in inc.stack:
                        # A file including itself (or an ancestor): read once, note once.
                        if where not in inc.looped:
                            inc.looped.add(where)
                            notes.append(
                                f"{where}: Include {pattern}: {found} is already being read "
                                "(an Include loop); skipped"
                            )
                        continue
                    _scan(Path(found), ssh_dir, blocks, notes, inc)
        elif key in _KEYS:
            blocks[-1].options.append(_Option(key, words[1:], where))


def read_ssh_config(path: Path | str | None = None) -> ImportResult:
    """Read ~/.ssh/config (or `path`); a missing file gives an empty result.

    Raises DevtuiError when Include nests too deep or reads too many files.
    """
    ssh_dir = Path("~/.ssh").expanduser()
    path = Path(path).expanduser() if path else ssh_dir / "config"
    result = ImportResult()
    if not path.exists():
        return result
    blocks: list[_Block] = [_Block(patterns=["*"])]  # options before any Host apply to all
    _scan(path, ssh_dir, blocks, result.notes, _Includes())

    aliases: list[str] = []
    for block in blocks[1:]:
        for pattern in block.patterns or ():
            if not any(c in pattern for c in "*?!") and pattern not in aliases:
                aliases.append(pattern)
    known = set(aliases)
    for alias in aliases:
        _evaluate(alias, [b for b in blocks if b.matches(alias)], known, result)
    return result


def _evaluate(alias: str, blocks: list[_Block], known: set[str], result: ImportResult) -> None:
    if problem := name_problem(alias):
        result.notes.append(f"Host {alias!r} skipped: name {problem}")
        return
    first: dict[str, _Option] = {}
    forwards: list[_Option] = []
    for block in blocks:
        for option in block.options:
            if option.key in _FORWARDS:
                forwards.append(option)
            elif option.args:
                first.setdefault(option.key, option)

    def value(key: str) -> str | None:
        option = first.get(key)
        return option.args[0] if option else None

    hostname = (value("hostname") or alias).replace("%h", alias).replace("%%", "%")
    if problem := hostname_problem(hostname):
        result.notes.append(f"Host {alias} skipped: HostName {hostname!r} {problem}")
        return
    port_text = value("port") or "22"
    if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
        result.notes.append(f"Host {alias} skipped: {first['port'].where}: bad Port {port_text!r}")
        return
    user = value("user")
    if user and user_problem(user):
        result.notes.append(f"Host {alias}: User {user!r} ignored ({user_problem(user)})")
        user = None
    jump = value("proxyjump")
    jump_name: str | None = None
    if jump and jump.lower() != "none":
        if "," in jump:
            result.notes.append(
                f"Host {alias}: multi-hop ProxyJump {jump!r} not supported; left out"
            )
        elif jump in known:
            jump_name = jump
        else:
            try:
                spec = jump_host_spec(jump)
            except SshCommandError as e:
                result.notes.append(f"Host {alias}: ProxyJump ignored ({e})")
            else:
                jump_name = spec.name
                if all(h.name != spec.name for h in result.hosts):
                    result.hosts.append(spec)
    host = HostSpec(
        name=alias,
        hostname=hostname,
        port=int(port_text),
        user=user,
        identity_file=value("identityfile"),
        jump=jump_name,
        compression=(value("compression") or "no").lower() == "yes",
        forward_agent=False,
    )
    if (value("forwardagent") or "no").lower() == "yes":
        result.notes.append(
            f"Host {alias}: ForwardAgent yes recorded off (set forward_agent = true)"
        )
    result.hosts.append(host)
    for option in forwards:
        kind = _FORWARDS[option.key]
        spec_text = ":".join(option.args)
        try:
            listen, target, _ = parse_forward(kind, spec_text)
        except SshCommandError as e:
            result.notes.append(f"{option.where}: {option.key} skipped ({e})")
            continue
        name = tunnel_name(alias, kind, listen.port)
        result.tunnels.append(TunnelSpec(name, alias, kind, listen, target))


def plan_import(current: ConfigData, found: ImportResult) -> ImportResult:
    """What of `found` is new to `current`: importing twice adds nothing twice."""
    plan = ImportResult(notes=list(found.notes))
    taken = {(h.hostname.lower(), h.port, h.user): h.name for h in current.hosts.values()}
    saved_as: dict[str, str] = {}  # found name -> the name devtui already has it under
    for host in found.hosts:
        old = current.hosts.get(host.name)
        if old is not None:
            if (old.hostname, old.port, old.user) != (host.hostname, host.port, host.user):
                plan.notes.append(
                    f"Host {host.name} skipped: devtui already has a different host by that name"
                )
            else:
                saved_as[host.name] = host.name
            continue
        same = taken.get((host.hostname.lower(), host.port, host.user))
        if same is not None:
            saved_as[host.name] = same
            continue
        plan.hosts.append(host)
    # A ProxyJump must lead to the same machine it led to in ~/.ssh/config.
    planned = {h.name for h in plan.hosts}
    plan.hosts = [
        replace(h, jump=saved_as[h.jump]) if h.jump in saved_as and h.jump not in planned else h
        for h in plan.hosts
    ]
    changed = True
    while changed:  # leave out hosts that jump through a host that is left out
        valid = {h.name for h in plan.hosts} | set(saved_as.values())
        kept = [h for h in plan.hosts if h.jump is None or h.jump in valid]
        for host in plan.hosts:
            if host not in kept:
                plan.notes.append(
                    f"Host {host.name} skipped: its ProxyJump {host.jump} was not imported"
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
                f"{tunnel.name} ({tunnel.describe()}) skipped: {tunnel.listen} is taken by "
                f"tunnel {clash.name}"
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
        text = path.read_text(encoding="utf-8-sig")
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
