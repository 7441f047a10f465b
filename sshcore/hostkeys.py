"""known_hosts: look up, learn (trust on first use) and refuse changed host keys.

asyncssh calls its validate_host_public_key hook for *any* key it does not trust,
a changed key included, so "accept if asked" would check nothing. Here the session
looks up the host's existing entries first: a host with entries that do not match is
a changed key and is refused; only a host with no entries at all may be learned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from .atomic import atomic_write_text


def host_pattern(hostname: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts: `host`, or `[host]:port` off port 22.

    Lowercased, as OpenSSH does: `MyServer` and `myserver` are one host.
    """
    hostname = hostname.lower()
    return hostname if port == 22 else f"[{hostname}]:{port}"


# Any valid key: lets asyncssh judge whether a line's host patterns match when the line's own
# key cannot be read (an unsupported type), so such a line still counts as "host is known".
_PROBE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEbJnrKmx4+3jRxObVGjE7OtxZ6kvNfl9kVw1BzZfbpm"


@dataclass
class KnownEntry:
    """One known_hosts line that applies to a host."""

    line: int
    key: asyncssh.SSHKey


@dataclass
class KnownKeys:
    """What known_hosts says about one host."""

    path: Path
    trusted: list[KnownEntry] = field(default_factory=list)
    ca_keys: list[asyncssh.SSHKey] = field(default_factory=list)
    revoked: list[asyncssh.SSHKey] = field(default_factory=list)
    unreadable: list[int] = field(default_factory=list)  # lines for this host we cannot parse

    @property
    def known(self) -> bool:
        """True when the host has anything on file (so a new key is a CHANGED key)."""
        return bool(self.trusted or self.ca_keys or self.unreadable)

    def for_asyncssh(self) -> tuple[list[asyncssh.SSHKey], ...]:
        """The tuple form asyncssh.connect(known_hosts=...) takes."""
        return ([e.key for e in self.trusted], self.ca_keys, self.revoked, [], [], [], [])


def fingerprint(key: asyncssh.SSHKey) -> str:
    """SHA256 fingerprint as `ssh-keygen -l` prints it."""
    return str(key.get_fingerprint("sha256"))


def lookup(path: Path, hostname: str, port: int, addr: str = "") -> KnownKeys:
    """Entries of `path` for hostname:port (hashed entries, markers and no final newline OK)."""
    result = KnownKeys(path=path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return result
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        # OpenSSH semantics: off port 22 only "[host]:port" entries count. asyncssh would fall
        # back to the bare host, which on cloud gateways (one hostname, a port per machine)
        # makes every other machine's key look like a changed key.
        pattern = host_pattern(hostname, port)
        try:
            entries = asyncssh.import_known_hosts(stripped + "\n")
        except (ValueError, asyncssh.KeyImportError):
            if _patterns_match(stripped, pattern, addr):
                result.unreadable.append(number)
            continue
        trusted, ca_keys, revoked, *_ = entries.match(pattern, addr, None)
        if not (trusted or ca_keys or revoked) and _patterns_match(stripped, pattern, addr):
            # asyncssh skips keys it cannot read (a newer key type): still "known" to us.
            result.unreadable.append(number)
        result.trusted.extend(KnownEntry(number, key) for key in trusted)
        result.ca_keys.extend(ca_keys)
        result.revoked.extend(revoked)
    return result


def _patterns_match(line: str, pattern: str, addr: str) -> bool:
    words = line.split()
    if words and words[0].startswith("@"):
        words = words[1:]
    if not words:
        return False
    try:
        probe = asyncssh.import_known_hosts(f"{words[0]} {_PROBE_KEY}\n")
    except (ValueError, asyncssh.KeyImportError):
        return False
    return bool(probe.match(pattern, addr, None)[0])


def learn(path: Path, hostname: str, port: int, key: asyncssh.SSHKey) -> int:
    """Append `key` for hostname:port in OpenSSH's format; returns its line number."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = f"{host_pattern(hostname, port)} {key.export_public_key().decode().strip()}\n"
    try:
        existing = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        existing = ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    # Rewrite atomically rather than append: a crash never leaves half a line behind.
    atomic_write_text(path, existing + line, backup=False, mode=0o600)
    return existing.count("\n") + 1


def forget(path: Path, hostname: str, port: int) -> int:
    """Remove every entry for hostname:port (the explicit "replace key" action); returns count."""
    known = lookup(path, hostname, port)
    drop = {entry.line for entry in known.trusted}
    if not drop:
        return 0
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    kept = [line for number, line in enumerate(lines, start=1) if number not in drop]
    atomic_write_text(path, "".join(kept), backup=True)
    return len(drop)


def expand(path: str) -> Path:
    """~ and %VAR% / $VAR expanded, as users write them in settings."""
    return Path(os.path.expandvars(os.path.expanduser(path)))
