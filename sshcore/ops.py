"""What both front ends do with the config, done once: they only present the outcome.

Plain synchronous functions on a `Config` (the dashboard calls them from worker threads).
None of them prints; each returns the lines a user should read plus what changed, or raises
a `DevtuiError` with one clear message. This module never imports asyncssh: the offline
commands that use it start fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .config import Config
from .errors import ConfigError, DevtuiError, SshCommandError, UsageError
from .model import (
    ConfigData,
    HostSpec,
    Note,
    TunnelKind,
    TunnelSpec,
    display_path,
    listens_clash,
    name_problem,
    note_about,
    tunnel_name,
)
from .openssh_config import plan_import, read_ssh_config, write_host_blocks
from .sshcmd import (
    parse_forward,
    parse_ssh_command,
    plan_add,
    remote_listen_note,
    to_ssh_command,
    to_ssh_config_block,
)

if TYPE_CHECKING:  # only for annotations: sshcore.keys imports asyncssh
    from .keys import InstallResult, KeyInfo


class NotFoundError(DevtuiError):
    """A host or tunnel name that the config does not have."""


@dataclass(frozen=True)
class Outcome:
    """What an operation did, for a front end to show."""

    lines: list[str]  # what the CLI prints, one line each ("Added host x: ...", "note: ...")
    changed: bool  # whether a file was written (the config; for export_host, the ssh config)


@dataclass(frozen=True)
class AddOutcome(Outcome):
    """The outcome of pasting an ssh line."""

    host: str  # the host the line is about (new or already saved)
    hosts: list[HostSpec]  # added, jump host first
    tunnels: list[TunnelSpec]  # added
    notes: list[Note] = field(default_factory=list)  # each about the host it names


@dataclass(frozen=True)
class ImportOutcome(Outcome):
    """The outcome of importing an ssh config file."""

    hosts: list[HostSpec]  # imported
    tunnels: list[TunnelSpec]  # imported
    notes: list[Note]  # each about the host it names (None: the file itself)


DEFAULT_SSH_CONFIG = "~/.ssh/config"


def _default_ssh_config() -> Path:
    return Path(DEFAULT_SSH_CONFIG).expanduser()


# ---------------------------------------------------------------------------------------------
# add / import / export


def add_from_line(config: Config, line: str | Sequence[str], name: str | None = None) -> AddOutcome:
    """Save the host and tunnels of a pasted ssh line; a machine already saved is reused.

    `line` is the pasted text, or the words of an unquoted line as a shell split them.
    Raises SshCommandError naming the token it cannot read, ConfigError for a taken name
    or listen port; nothing is saved then.
    """
    parsed = parse_ssh_command(line, name=name)
    plan = plan_add(config.data, parsed, name_given=name is not None, path=str(config.path))
    if plan.changes:
        config.add(plan.hosts, plan.tunnels)
    lines = []
    for host in plan.hosts:
        what = "host" if host.name == plan.host else "jump host"
        lines.append(f"Added {what} {host.name}: {host.destination}")
    if plan.jump_reused:
        lines.append(f"Jump host {plan.jump_reused} is already saved: used as it is")
    if plan.reused:
        saved = config.hosts[plan.host]
        lines.append(f"Host {plan.host} is already saved ({saved.destination}): used as it is")
    for tunnel in plan.tunnels:
        lines.append(f"Added tunnel {tunnel.name}: {tunnel.describe()}")
    for tunnel in plan.kept:
        lines.append(f"Tunnel {tunnel.name} is already saved: {tunnel.describe()}")
    # What the line says about its host, under the name it is saved as.
    notes = [note_about(n, plan.host) for n in plan.notes]
    notes += [Note(str.__str__(n), plan.host) for n in parsed.notes]
    lines += [f"note: {note}" for note in notes]
    lines.append(f"Saved to {config.path}" if plan.changes else "Nothing new to save")
    return AddOutcome(
        lines=lines,
        changed=plan.changes,
        host=plan.host,
        hosts=list(plan.hosts),
        tunnels=list(plan.tunnels),
        notes=notes,
    )


def preview_line(config: ConfigData, line: str, path: str) -> list[str]:
    """What `add_from_line` would save from `line`, one line each (hosts, tunnels, notes),
    nothing saved; DevtuiError (SshCommandError for the ssh words) when it cannot be read."""
    parsed = parse_ssh_command(line)
    plan = plan_add(config, parsed, name_given=False, path=path)
    lines = [f"host {h.name}: {h.destination}" for h in plan.hosts]
    if plan.reused:
        lines.append(f"host {plan.host} is already saved: used as it is")
    lines += [f"tunnel {t.name}: {t.describe()}" for t in plan.tunnels]
    lines += [f"note: {n}" for n in [*plan.notes, *parsed.notes]]
    if not plan.changes:
        lines.append("Nothing new to save.")
    return lines


def import_ssh_config(
    config: Config, path: Path | None = None, *, explicit: bool = False
) -> ImportOutcome:
    """Import the Host blocks of an ssh config file (default ~/.ssh/config) not saved yet.

    `explicit`: the user named the file, so a missing one is an error (a typo must not pass
    as "nothing to import"); the default file may well not exist.
    """
    source = Path(path).expanduser() if path else _default_ssh_config()
    if explicit and not source.is_file():
        what = "is a folder" if source.is_dir() else "does not exist"
        raise DevtuiError(f"{source} {what}; give the path of an ssh config file")
    found = read_ssh_config(source)
    plan = plan_import(config.data, found)
    changed = bool(plan.hosts or plan.tunnels)
    if changed:
        config.add(plan.hosts, plan.tunnels)
    lines = [f"Imported host {host.name}: {host.destination}" for host in plan.hosts]
    lines += [f"Imported tunnel {t.name}: {t.describe()}" for t in plan.tunnels]
    lines += [f"note: {note}" for note in plan.notes]
    if not found.hosts and not source.exists():
        lines.append(f"{source} does not exist: nothing to import")
    elif not plan.hosts:
        lines.append(f"Nothing new to import from {source}")
    return ImportOutcome(
        lines=lines,
        changed=changed,
        hosts=list(plan.hosts),
        tunnels=list(plan.tunnels),
        notes=list(plan.notes),
    )


def _host(config: Config, name: str) -> HostSpec:
    host = config.hosts.get(name)
    if host is None:
        raise ConfigError(f"no host named {name!r}", path=str(config.path))
    return host


def export_host(config: Config, name: str, path: Path | None = None) -> Outcome:
    """Append host `name` (and the jump hosts it needs) as Host blocks to an ssh config file,
    ~/.ssh/config by default, unless the file has them; plain ssh and VS Code see it then.

    Only the default's folder is created (~/.ssh, owner-only, as ssh-keygen makes it): any
    other missing folder is a typo. `changed` says whether the file was written.
    """
    host = _host(config, name)
    chain = [host]
    while chain[-1].jump and chain[-1].jump in config.hosts:
        chain.append(config.hosts[chain[-1].jump])
    default = _default_ssh_config()
    target = Path(path).expanduser() if path else default
    if target != default and not target.parent.is_dir():
        raise DevtuiError(f"folder {target.parent} does not exist; nothing was written")
    if target.is_dir():
        raise DevtuiError(f"{target} is a folder; give the path of an ssh config file")
    if target == default:
        default.parent.mkdir(mode=0o700, exist_ok=True)
    written = write_host_blocks(target, chain[::-1], list(config.tunnels.values()))
    lines = [
        f"Wrote Host {n} to {target} (plain ssh and VS Code Remote-SSH see it now)" for n in written
    ]
    if host.name not in written:
        lines.append(f"{target} already has a Host {host.name} block; left it as it is")
    return Outcome(lines=lines, changed=bool(written))


def host_as_text(config: Config, name: str, form: Literal["command", "config"]) -> str:
    """Host `name` as one ssh command line, or as a ~/.ssh/config block (no final newline)."""
    host = _host(config, name)
    tunnels = config.data.tunnels_of(host.name)
    if form == "config":
        return to_ssh_config_block(host, tunnels).rstrip("\n")
    # Every hop, first one first (-J a,b): the last hop alone would skip the ones before it.
    chain: list[HostSpec] = []
    hop = config.hosts.get(host.jump) if host.jump else None
    while hop is not None and hop not in chain:
        chain.insert(0, hop)
        hop = config.hosts.get(hop.jump) if hop.jump else None
    return to_ssh_command(host, tunnels, chain=chain)


# ---------------------------------------------------------------------------------------------
# tunnels


def new_tunnel(
    config: Config,
    host: str,
    kind: TunnelKind,
    spec: str,
    name: str | None = None,
    autostart: bool = False,
) -> TunnelSpec:
    """A tunnel for saved host `host` from an ssh-style -L/-R/-D `spec`, checked against the
    config (name free, listen address not held by another tunnel) but NOT saved.

    Errors: NotFoundError (no such host), UsageError naming the bad spec or name,
    ConfigError for a name or listen address another tunnel has.
    """
    if host not in config.hosts:
        raise NotFoundError(f"no host named {host!r}")
    try:
        listen, target, _ = parse_forward(kind, spec)
    except SshCommandError as e:  # no ssh line was given: say what was wrong, not "ssh command"
        raise UsageError(str(e), field="spec") from None
    if name is not None and (problem := name_problem(name)):
        raise UsageError(f"name {name!r}: a tunnel name {problem}", field="name")
    tunnel = TunnelSpec(
        name or tunnel_name(host, kind, listen.port, socks=target is None),
        host,
        kind,
        listen,
        target,
        autostart,
    )
    clash = next((t for t in config.tunnels.values() if listens_clash(t, tunnel)), None)
    if clash is not None:
        raise ConfigError(
            f"{tunnel.listen} is already used by tunnel {clash.name} ({clash.describe()}); "
            "remove that tunnel first or pick another local port",
            path=str(config.path),
        )
    if tunnel.name in config.tunnels:
        raise ConfigError(f"a tunnel named {tunnel.name!r} already exists", path=str(config.path))
    return tunnel


def add_tunnel(
    config: Config,
    host: str,
    kind: TunnelKind,
    spec: str,
    name: str | None = None,
    autostart: bool = False,
) -> Outcome:
    """`new_tunnel`, saved; notes a listen address open to other machines."""
    tunnel = new_tunnel(config, host, kind, spec, name, autostart)
    config.add_tunnel(tunnel)
    lines = [f"Added tunnel {tunnel.name}: {tunnel.describe()}"]
    if kind != "remote" and tunnel.listen.all_interfaces:
        lines.append(f"note: {tunnel.listen} listens on all interfaces: other machines can use it")
    elif kind == "remote" and tunnel.listen.exposed:
        lines.append(f"note: {remote_listen_note(tunnel.name, tunnel.listen, tunnel.target)}")
    return Outcome(lines=lines, changed=True)


# ---------------------------------------------------------------------------------------------
# remove


def remove_host(config: Config, name: str) -> Outcome:
    """Remove a host and its tunnels (refused while another host jumps through it)."""
    gone = config.remove_host(name)
    lines = [f"Removed host {name}"]
    if gone:
        lines.append(f"Removed its tunnels too: {', '.join(gone)}")
    return Outcome(lines=lines, changed=True)


def remove_tunnel(config: Config, name: str) -> Outcome:
    """Remove one tunnel."""
    config.remove_tunnel(name)
    return Outcome(lines=[f"Removed tunnel {name}"], changed=True)


# ---------------------------------------------------------------------------------------------
# check


def check_config(path: Path) -> tuple[bool, list[str]]:
    """Validate the config file at `path`: (ok, lines). Lines are "error: ..." and
    "warning: ..." (every problem found, not only the first), then "OK: ..." when ok."""
    try:
        config = Config.load(path)
    except ConfigError as e:
        lines = [f"error: {error}" for error in [e, *getattr(e, "others", [])]]
        lines += [f"warning: {warning}" for warning in getattr(e, "warnings", [])]
        return False, lines
    lines = [f"warning: {warning}" for warning in config.warnings]
    exists = "" if path.exists() else " (file does not exist yet: empty config)"
    lines.append(f"OK: {len(config.hosts)} hosts, {len(config.tunnels)} tunnels in {path}{exists}")
    return True, lines


# ---------------------------------------------------------------------------------------------
# keys


def install_lines(
    result: InstallResult, verified: bool | None, key: KeyInfo, host: str
) -> list[str]:
    """What installing `key` on `host` did (Core.install_key's report), in words."""
    key_name = _display_path(key.path)
    if not result.added:
        lines = [f"The key was already in ~/.ssh/authorized_keys on {host}; nothing changed."]
    else:
        made = []
        if result.created_dir:
            made.append("created ~/.ssh (mode 700)")
        if result.created_file:
            made.append("created ~/.ssh/authorized_keys (mode 600)")
        made += [f"tightened {fix}" for fix in result.fixed_modes]
        extra = f" ({'; '.join(made)})" if made else ""
        lines = [f"Added the key to ~/.ssh/authorized_keys on {host}{extra}."]
    if verified:
        lines.append(f"Logged in to {host} with {key_name} alone: the key works.")
    elif key.has_private:
        lines.append(
            "The key has a passphrase and none was given, so devtui did not test the "
            f"login with it; connect once to check: devtui hosts test {host}"
        )
    else:
        lines.append("There is no private key beside it here, so devtui did not test the login.")
    return lines


def uses_key(config: Config, host: str, key_path: Path) -> bool:
    """Whether saved host `host` already logs in with `key_path` (any of its key files)."""
    from . import keys  # imports asyncssh: only when keys are in play

    spec = _host(config, host)
    return any(keys.same_path(keys.identity_path(f), key_path) for f in spec.identity_files)


def set_identity(config: Config, host: str, key_path: Path) -> Outcome:
    """Make saved host `host` log in with `key_path` from now on (its identity_file)."""
    import dataclasses

    spec = _host(config, host)
    value = display_path(key_path)
    config.update_host(spec.name, dataclasses.replace(spec, identity_file=value))
    return Outcome(
        lines=[f'Set identity_file = "{value}" for {spec.name} in {config.path}.'], changed=True
    )


@dataclass(frozen=True)
class ForgotKey:
    """What forgetting a host's known key did: how many entries went, from which file, for
    which known_hosts name."""

    count: int
    path: Path
    address: str

    def lines(self, name: str) -> list[str]:
        """What to tell the user."""
        if not self.count:
            return [f"No key for {self.address} ({name}) in {self.path}"]
        return [
            f"Removed {self.count} key(s) for {self.address} ({name}) from {self.path} "
            "(old file kept as .bak)",
            "The next connect shows the new key's fingerprint and asks you to trust it.",
        ]


def forget_host_key(config: Config, name: str) -> ForgotKey:
    """Remove host `name`'s entries from known_hosts (the explicit "it was rebuilt" step);
    a blocking file edit: run it in a thread from the event loop."""
    from . import hostkeys

    host = _host(config, name)
    path = hostkeys.expand(config.settings.known_hosts)
    count = hostkeys.forget(path, host.hostname, host.port)
    return ForgotKey(count, path, hostkeys.host_pattern(host.hostname, host.port))


def _display_path(path: Path) -> str:
    return display_path(path)
