"""known_hosts: look up, learn (trust on first use) and refuse changed host keys.

asyncssh calls its validate_host_public_key hook for *any* key it does not trust,
a changed key included, so "accept if asked" would check nothing. Here the session
looks up the host's existing entries first: a host with entries that do not match is
a changed key and is refused; only a host with no entries at all may be learned.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from . import atomic
from .errors import DevtuiError

LOCK_TIMEOUT = 10.0  # seconds to wait for another devtui editing the same known_hosts
_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


def hashed_name(pattern: str, salt: bytes | None = None) -> str:
    """`pattern` as HashKnownHosts writes it: |1|base64(salt)|base64(HMAC-SHA1(salt, name))."""
    salt = os.urandom(20) if salt is None else salt
    digest = hmac.new(salt, pattern.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def _hashes_names(data: bytes) -> bool:
    """Whether a known_hosts file's entries name their hosts hashed (most of them do)."""
    hashed = plain = 0
    for line in _split_lines(data):
        words = line.split()
        if words and words[0].startswith(b"@"):  # @cert-authority / @revoked, then the names
            words = words[1:]
        if not words or words[0].startswith(b"#"):
            continue
        if words[0].startswith(b"|1|"):
            hashed += 1
        else:
            plain += 1
    return hashed > plain


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
    try:
        data = atomic.read_file(path, atomic.KNOWN_HOSTS_LIMIT)
    except FileNotFoundError:
        return KnownKeys(path=path)
    return _lookup(path, data, hostname, port, addr)


def _split_lines(data: bytes) -> list[bytes]:
    """Lines as OpenSSH reads them: split on LF only, each with its own ending (CRLF kept)."""
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _lookup(path: Path, data: bytes, hostname: str, port: int, addr: str = "") -> KnownKeys:
    result = KnownKeys(path=path)
    # Numbered on LF alone, as ssh and editors count: str.splitlines would also split on
    # form feeds and U+2028 in a comment and point at the wrong line.
    for number, raw in enumerate(_split_lines(data), start=1):
        stripped = raw.decode("utf-8", "replace").strip()
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


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Take turns with other devtui processes editing this known_hosts (an OS lock that dies
    with its holder). ssh itself does not lock: see forget for how its appends survive."""
    import filelock

    real = Path(os.path.realpath(path))
    lock = filelock.FileLock(real.with_name(real.name + ".lock"), timeout=LOCK_TIMEOUT)
    try:
        with lock:
            yield
    except filelock.Timeout:
        raise DevtuiError(
            f"{path} is being changed by another devtui; try again in a moment"
        ) from None


def learn(path: Path, hostname: str, port: int, key: asyncssh.SSHKey) -> int:
    """Append `key` for hostname:port in OpenSSH's format; returns its line number.

    Appended with O_APPEND, as ssh does: the rest of the file is never rewritten, so an entry
    another program adds meanwhile, a CRLF or a non-UTF-8 comment stays as it was. In a file
    whose names are hashed (HashKnownHosts), the new name is hashed too: a plain one would
    tell whoever reads the file which machines this one connects to.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _BINARY, 0o600)
        try:
            existing = atomic.read_file(path, atomic.KNOWN_HOSTS_LIMIT)
            name = host_pattern(hostname, port)
            if _hashes_names(existing):
                name = hashed_name(name)
            line = f"{name} {key.export_public_key().decode().strip()}\n"
            # Never glue our entry onto a last line that lacks its newline.
            prefix = b"\n" if existing and not existing.endswith(b"\n") else b""
            os.write(fd, prefix + line.encode("ascii"))  # one write: one append
            os.fsync(fd)
        finally:
            os.close(fd)
    return len(_split_lines(existing)) + 1


def forget(path: Path, hostname: str, port: int) -> int:
    """Remove every entry for hostname:port (the explicit "replace key" action); returns count.

    Works on the file's bytes (CRLF and non-UTF-8 comments stay). On a line that names
    several hosts (`alpha,beta KEY`) only this host's name goes. A line that pins the host
    through a wildcard (`*.example KEY`) is not touched: DevtuiError says which line.
    """
    pattern = host_pattern(hostname, port)
    with _locked(path):
        for _ in range(5):
            try:
                data = atomic.read_file(path, atomic.KNOWN_HOSTS_LIMIT)
            except FileNotFoundError:
                return 0
            drop = {e.line for e in _lookup(path, data, hostname, port).trusted}
            if not drop:
                return 0
            lines = _split_lines(data)
            kept: list[bytes] = []
            for number, raw in enumerate(lines, start=1):
                if number not in drop:
                    kept.append(raw)
                    continue
                rest = _without_host(raw, pattern)
                if rest is not None and _patterns_match(
                    rest.decode("utf-8", "replace"), pattern, ""
                ):
                    raise DevtuiError(
                        f"{path}:{number} pins {pattern} through a pattern that may name other "
                        "hosts too; edit that line by hand"
                    )
                if rest is not None:
                    kept.append(rest)
            # ssh appends without any lock: if it did while we worked, start again from
            # what is there now rather than replace the file and lose its entry.
            if _replace_if_unchanged(path, data, b"".join(kept)):
                return len(drop)
    raise DevtuiError(f"{path} kept changing while devtui edited it; try again")


_LINE_RE = re.compile(rb"^(\s*)(@\S+\s+)?(\S+)(.*)$", re.DOTALL)


def _without_host(raw: bytes, pattern: str) -> bytes | None:
    """`raw` with the names that are exactly `pattern` taken out of its host list; None
    when no other name is left (the line goes)."""
    match = _LINE_RE.match(raw)
    if match is None:
        return None
    lead, marker, hosts, rest = match.groups()
    others = [h for h in hosts.split(b",") if not _names(h, pattern)]
    if not any(h and not h.startswith(b"!") for h in others):
        return None  # nothing left but negations: the line pins nothing
    return lead + (marker or b"") + b",".join(others) + rest


def _names(word: bytes, pattern: str) -> bool:
    """True when one host-list word names exactly `pattern` (plain or hashed)."""
    if word.startswith(b"|1|"):
        salt_b64, _, hashed_b64 = word[3:].partition(b"|")
        try:
            salt = base64.b64decode(salt_b64, validate=True)
            hashed = base64.b64decode(hashed_b64, validate=True)
        except ValueError:
            return False
        digest = hmac.new(salt, pattern.encode(), hashlib.sha1).digest()
        return hmac.compare_digest(digest, hashed)
    return word.decode("utf-8", "replace").lower() == pattern


def _replace_if_unchanged(path: Path, before: bytes, new: bytes) -> bool:
    """Atomically replace `path`'s bytes `before` with `new` (a .bak keeps `before`);
    False, with nothing changed, when the file no longer holds `before`."""
    real = Path(os.path.realpath(path))  # a dotfiles symlink stays a symlink
    fd, tmp_name = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(new)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, real.stat().st_mode & 0o7777)
        atomic.checkpoint("before-replace")
        if real.read_bytes() != before:
            return False
        bak = real.with_name(real.name + ".bak")
        with contextlib.suppress(OSError):
            # Made with the file's own mode (0600 as a rule), never the umask's 0644.
            bak_fd = os.open(bak, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _BINARY, 0o600)
            with os.fdopen(bak_fd, "wb") as f:
                f.write(before)
            os.chmod(bak, real.stat().st_mode & 0o777)
        os.replace(tmp, real)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return True


def expand(path: str) -> Path:
    """~ and %VAR% / $VAR expanded, as users write them in settings."""
    return Path(os.path.expandvars(os.path.expanduser(path)))
