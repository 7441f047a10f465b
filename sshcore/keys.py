"""SSH keys: list, generate (owner-only from the first byte), show, install on a host, and
make an existing key owner-only again (`fix_permissions`) when OpenSSH would refuse it.

Parsing, fingerprints and key export are asyncssh's; this module adds what users of
`ssh-keygen` and `ssh-copy-id` expect around them: the listing of ~/.ssh, files that are
never readable by others (POSIX mode 0600 at creation; on Windows an owner-only ACL at
creation, see `winacl`), and an idempotent install into ~/.ssh/authorized_keys over SFTP,
or over one fixed shell command with the key on stdin where SFTP is refused.

Key generation and listing are blocking (RSA generation, bcrypt): async callers run them
with `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import errno
import getpass
import os
import secrets
import socket
import stat
import struct
import sys
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import asyncssh

from . import winacl
from .atomic import read_file
from .errors import DevtuiError
from .model import HostSpec, display_path, text_problem
from .remote_commands import KIB, MIB, Bounded, RemoteCommandError, run_bounded
from .visible_text import visible


class KeyFileError(DevtuiError):
    """A key that cannot be found, read or written, or options that cannot make one."""


class KeyInstallError(DevtuiError):
    """Installing a public key on a host failed; the message says why and what to do."""


KeyType = Literal["ed25519", "rsa", "ecdsa"]
KEY_TYPES: tuple[KeyType, ...] = ("ed25519", "rsa", "ecdsa")
DEFAULT_RSA_BITS = 3072  # what ssh-keygen picks; 4096 on request
RSA_BITS_RANGE = (2048, 16384)
ECDSA_ALGORITHMS = {
    256: "ecdsa-sha2-nistp256",
    384: "ecdsa-sha2-nistp384",
    521: "ecdsa-sha2-nistp521",
}
# Same as `ssh-keygen` writes: aes256-ctr, 16 bcrypt rounds (asyncssh defaults to 128 rounds).
_KEY_CIPHER = "aes256-ctr"
_KEY_ROUNDS = 16

KEY_FILE_LIMIT = _MAX_KEY_FILE = (
    1 << 20
)  # anything larger is not a key; never read a stray huge file whole
_OPENSSH_BEGIN = b"-----BEGIN OPENSSH PRIVATE KEY-----"
_OPENSSH_END = b"-----END OPENSSH PRIVATE KEY-----"
_OPENSSH_MAGIC = b"openssh-key-v1\0"
_NOT_KEYS = frozenset({"config", "environment", "rc"})
_NOT_KEY_PREFIXES = ("known_hosts", "authorized_keys", ".")
_NOT_KEY_SUFFIXES = (".bak", ".old", ".tmp", ".swp", "~", "-cert.pub", ".orig")
_FIXED_BITS = {
    "ssh-ed25519": 256,
    "ssh-ed448": 456,
    "sk-ssh-ed25519@openssh.com": 256,
    "sk-ecdsa-sha2-nistp256@openssh.com": 256,
}


def _on_windows() -> bool:
    """Windows rules (ACLs instead of mode bits)? Asked at call time; tests patch it."""
    return os.name == "nt"


# ---------------------------------------------------------------------------------------------
# Paths


def ssh_dir() -> Path:
    """~/.ssh (on Windows %USERPROFILE%\\.ssh), where OpenSSH looks for keys."""
    return Path.home() / ".ssh"


def identity_path(value: str) -> Path:
    """The file an `identity_file` setting names: `~` and $VAR / %VAR% expanded, as sessions do."""
    return Path(os.path.expandvars(os.path.expanduser(value)))


def default_key_path(key_type: str, folder: Path | None = None) -> Path:
    """Where ssh-keygen would put a key of this type: ~/.ssh/id_ed25519, id_rsa, id_ecdsa."""
    return (folder or ssh_dir()) / f"id_{key_type}"


def public_path_of(path: Path) -> Path:
    """The .pub file beside a private key."""
    return path.with_name(path.name + ".pub")


def default_comment() -> str:
    """`user@machine`, the comment ssh-keygen writes."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no USER variable and no passwd entry
        user = "user"
    return f"{user}@{socket.gethostname() or 'localhost'}"


def _same_file_key(path: Path) -> str:
    return os.path.normcase(os.path.abspath(path))


def same_path(a: Path, b: Path) -> bool:
    """True when two paths name the same file (case-insensitively on Windows)."""
    return _same_file_key(a) == _same_file_key(b)


# ---------------------------------------------------------------------------------------------
# Reading keys


@dataclass(frozen=True)
class KeyInfo:
    """One key file as `devtui keys list` shows it; `problem` says why it cannot be used."""

    path: Path  # the private key, or the .pub when there is no private file
    name: str  # file name in ~/.ssh, or the path (with ~) elsewhere
    has_private: bool
    public_path: Path | None = None
    algorithm: str | None = None  # "ssh-ed25519"
    key_type: str | None = None  # "ED25519", as `ssh-keygen -l` prints it
    bits: int | None = None
    fingerprint: str | None = None  # "SHA256:...", as `ssh-keygen -l` prints it
    comment: str = ""
    encrypted: bool | None = None  # passphrase-protected; None when unknown
    hosts: tuple[str, ...] = ()  # devtui hosts whose identity files include this key
    in_agent: bool | None = None  # None when no agent answered
    loose_permissions: bool = False  # readable by others: OpenSSH refuses such a key
    # Who else has access ("mode 644, other users can read it", "Users (BU) can read it"),
    # or why that could not be checked; None when only the owner has access.
    permissions_note: str | None = None
    public_line: str | None = None  # the one-line OpenSSH public key
    public_blob: bytes | None = field(default=None, repr=False)
    problem: str | None = None

    @property
    def usable(self) -> bool:
        """True when this is a readable private key."""
        return self.has_private and self.problem is None

    def to_json(self) -> dict[str, Any]:
        """Plain data for `devtui keys list --json`."""
        return {
            "name": self.name,
            "path": str(self.path),
            "public_path": str(self.public_path) if self.public_path else None,
            "has_private": self.has_private,
            "type": self.key_type,
            "algorithm": self.algorithm,
            "bits": self.bits,
            "fingerprint": self.fingerprint,
            "comment": self.comment,
            "passphrase": self.encrypted,
            "hosts": list(self.hosts),
            "in_agent": self.in_agent,
            "loose_permissions": self.loose_permissions,
            "permissions_note": self.permissions_note,
            "public_key": self.public_line,
            "problem": self.problem,
        }


def is_encrypted(data: bytes) -> bool:
    """True for passphrase-protected private key data (OpenSSH, PKCS#8 or legacy PEM)."""
    if b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data or b"Proc-Type: 4,ENCRYPTED" in data:
        return True
    if _OPENSSH_BEGIN not in data:
        return False
    body = data.split(_OPENSSH_BEGIN, 1)[1].split(_OPENSSH_END, 1)[0]
    try:
        raw = base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    # openssh-key-v1\0, then the cipher name as an SSH string: "none" means no passphrase.
    head = len(_OPENSSH_MAGIC)
    if not raw.startswith(_OPENSSH_MAGIC) or len(raw) < head + 4:
        return False
    (length,) = struct.unpack(">I", raw[head : head + 4])
    return raw[head + 4 : head + 4 + length] != b"none"


def _read_small(path: Path) -> bytes:
    try:
        return read_file(path, _MAX_KEY_FILE)
    except OSError as e:
        if e.errno == errno.EFBIG:
            raise ValueError("too large to be a key") from None
        raise


def _why_unreadable(error: OSError) -> str:
    return f"unreadable: {error.strerror or error}"


def _key_type(algorithm: str) -> str:
    if algorithm.startswith("ecdsa-"):
        return "ECDSA"
    if algorithm.startswith("sk-ecdsa-"):
        return "ECDSA-SK"
    names = {
        "ssh-ed25519": "ED25519",
        "ssh-ed448": "ED448",
        "ssh-rsa": "RSA",
        "ssh-dss": "DSA",
        "sk-ssh-ed25519@openssh.com": "ED25519-SK",
    }
    return names.get(algorithm, algorithm.upper())


def _bits(key: asyncssh.SSHKey) -> int | None:
    algorithm = key.get_algorithm()
    if algorithm in _FIXED_BITS:
        return _FIXED_BITS[algorithm]
    try:
        pyca: Any = key.pyca_key
    except Exception:  # security-key and other exotic keys have no pyca form: bits unknown
        return None
    size = getattr(pyca, "key_size", None)
    return size if isinstance(size, int) else None


def _clean_comment(comment: str | None) -> str:
    # A comment ends up on one line of authorized_keys: no line breaks or control bytes.
    if not comment:
        return ""
    return " ".join("".join(c if c.isprintable() else " " for c in comment).split())


def _public_line(key: asyncssh.SSHKey, comment: str) -> str:
    blob = base64.b64encode(key.public_data).decode("ascii")
    line = f"{key.get_algorithm()} {blob}"
    return f"{line} {comment}" if comment else line


def _read_public(path: Path) -> tuple[asyncssh.SSHKey | None, str | None]:
    """The key in a .pub file and its comment, or (None, problem)."""
    try:
        data = _read_small(path)
    except OSError as e:
        return None, _why_unreadable(e)
    except ValueError as e:
        return None, f"{path.name}: {e}"
    try:
        key = asyncssh.import_public_key(data)
    except Exception:  # asyncssh raises several types on garbage; all mean "not a key"
        return None, f"{path.name} is not a public key"
    return key, None


def _posix_loose(path: Path) -> bool:
    """Group or others have any access (OpenSSH: "Permissions 0644 ... are too open")."""
    if _on_windows():
        return False  # Windows uses ACLs; mode bits say nothing there
    try:
        return bool(path.stat().st_mode & 0o077)
    except OSError:
        return False


def _mode_note(mode: int) -> str:
    who = "other users" if mode & 0o007 else "its group"
    if mode & 0o044:
        how = "can read it"
    elif mode & 0o022:
        how = "can change it"
    else:
        how = "have access" if mode & 0o007 else "has access"
    return f"{who} {how}"


def _permissions(path: Path) -> tuple[bool, str | None]:
    """(loose, note) for a private key file, by the rules OpenSSH applies on this OS."""
    if _on_windows():
        try:
            problem = winacl.file_acl_problem(path)
        except (OSError, ValueError) as e:
            return False, f"could not check its ACL ({e})"
        return problem is not None, problem
    if not _posix_loose(path):
        return False, None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        return True, f"mode {mode & 0o777:03o}, {_mode_note(mode)}"
    except OSError:
        return True, None


def inspect_key(
    path: Path,
    *,
    hosts: Iterable[HostSpec] = (),
    agent_blobs: Collection[bytes] | None = None,
    folder: Path | None = None,
) -> KeyInfo:
    """Everything `keys list` shows about one file; never raises for a bad file."""
    folder = folder or ssh_dir()
    path = _private_of(path)
    name = path.name if path.parent == folder else display_path(path)
    users = tuple(h.name for h in hosts if _uses(h, path))
    if path.name.endswith(".pub"):
        return _inspect_public_only(path, name, users, agent_blobs)
    pub_path = public_path_of(path)
    public_path = pub_path if pub_path.is_file() else None
    base = KeyInfo(path=path, name=name, has_private=True, public_path=public_path, hosts=users)
    if not path.exists():
        return _replace(base, has_private=False, problem="missing")
    try:
        data = _read_small(path)
    except OSError as e:
        return _replace(base, problem=_why_unreadable(e))
    except ValueError as e:
        return _replace(base, problem=f"not a key file ({e})")
    if data.startswith(b"PuTTY-User-Key-File"):
        return _replace(
            base,
            problem="PuTTY .ppk key: export it in OpenSSH format with PuTTYgen first",
        )
    encrypted = is_encrypted(data)
    key: asyncssh.SSHKey | None = None
    comment = ""
    if encrypted:
        # OpenSSH format keeps the public half in the clear; PEM formats need the .pub.
        with contextlib.suppress(Exception):
            key = asyncssh.import_public_key(data)
    else:
        try:
            key = asyncssh.import_private_key(data)
        except Exception:  # garbage raises KeyImportError, ValueError, ...: all "not a key"
            return _replace(base, problem="not a private key file")
        comment = key.get_comment() or ""
    problem: str | None = None
    if public_path is not None:
        pub_key, pub_problem = _read_public(public_path)
        if pub_key is None:
            problem = pub_problem
        elif key is None:
            key = pub_key
        elif pub_key.public_data != key.public_data:
            problem = f"{public_path.name} does not match the private key"
        if pub_key is not None and not comment:
            comment = pub_key.get_comment() or ""
    loose, note = _permissions(path)
    base = _replace(base, encrypted=encrypted, loose_permissions=loose, permissions_note=note)
    if key is None:
        return _replace(
            base, problem=problem or "passphrase-protected, and no .pub file to show its public key"
        )
    return _with_key(base, key, _clean_comment(comment), agent_blobs, problem)


def _private_of(path: Path) -> Path:
    """A .pub path stands for its private key when that file is beside it."""
    if path.name.endswith(".pub"):
        private = path.with_name(path.name[:-4])
        if private.exists():
            return private
    return path


def _inspect_public_only(
    path: Path, name: str, users: tuple[str, ...], agent_blobs: Collection[bytes] | None
) -> KeyInfo:
    base = KeyInfo(path=path, name=name, has_private=False, public_path=path, hosts=users)
    key, problem = _read_public(path)
    if key is None:
        return _replace(base, problem=problem)
    return _with_key(base, key, _clean_comment(key.get_comment()), agent_blobs, None)


def _with_key(
    base: KeyInfo,
    key: asyncssh.SSHKey,
    comment: str,
    agent_blobs: Collection[bytes] | None,
    problem: str | None,
) -> KeyInfo:
    blob = key.public_data
    algorithm = key.get_algorithm()
    return _replace(
        base,
        algorithm=algorithm,
        key_type=_key_type(algorithm),
        bits=_bits(key),
        fingerprint=key.get_fingerprint("sha256"),
        comment=comment,
        public_line=_public_line(key, comment),
        public_blob=blob,
        in_agent=None if agent_blobs is None else blob in agent_blobs,
        problem=problem,
    )


def _replace(info: KeyInfo, **changes: Any) -> KeyInfo:
    return dataclasses.replace(info, **changes)


def _uses(host: HostSpec, path: Path) -> bool:
    mine = (_same_file_key(path), _same_file_key(public_path_of(path)))
    return any(_same_file_key(identity_path(name)) in mine for name in host.identity_files)


def _looks_like_key(path: Path) -> bool:
    try:
        head = read_file(path, 128, head=True)  # a FIFO in ~/.ssh must not hang the list
    except OSError:
        return True  # unreadable: list it, marked unreadable, rather than hide it
    return (b"-----BEGIN " in head and b"PRIVATE KEY" in head) or head.startswith(b"PuTTY-User")


def _candidates(folder: Path) -> list[Path]:
    """Files in ~/.ssh that are (or claim to be) keys: private keys, and .pub files alone."""
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError:
        return []
    names = {p.name for p in entries}
    found: list[Path] = []
    for entry in entries:
        name = entry.name
        if (
            name in _NOT_KEYS
            or name.startswith(_NOT_KEY_PREFIXES)
            or name.endswith(_NOT_KEY_SUFFIXES)
        ):
            continue
        try:
            if not entry.is_file():
                continue  # folders, agent sockets, dangling links
        except OSError:
            continue
        if name.endswith(".pub"):
            if name[:-4] not in names:
                found.append(entry)  # a public key whose private half lives elsewhere
            continue
        if (
            name.startswith("id_")
            or name.endswith(".ppk")
            or name + ".pub" in names
            or _looks_like_key(entry)
        ):
            found.append(entry)
    return found


def list_keys(
    hosts: Iterable[HostSpec] = (),
    *,
    folder: Path | None = None,
    agent_blobs: Collection[bytes] | None = None,
) -> list[KeyInfo]:
    """The keys in ~/.ssh plus every identity file the hosts name (missing ones included).

    `agent_blobs` comes from `agent_key_blobs()`; None means "agent unknown".
    """
    folder = folder or ssh_dir()
    hosts = list(hosts)
    paths = _candidates(folder)
    seen = {_same_file_key(p) for p in paths}
    for name in (name for host in hosts for name in host.identity_files):
        path = _private_of(identity_path(name))
        if _same_file_key(path) not in seen:
            seen.add(_same_file_key(path))
            paths.append(path)
    return [inspect_key(p, hosts=hosts, agent_blobs=agent_blobs, folder=folder) for p in paths]


async def agent_key_blobs(timeout: float = 2.0) -> frozenset[bytes] | None:
    """Public key blobs the SSH agent holds, or None when no agent answers.

    Uses SSH_AUTH_SOCK; on Windows asyncssh also finds Pageant or the OpenSSH agent pipe.
    """
    try:
        agent = await asyncio.wait_for(asyncssh.connect_agent(), timeout)
    except (OSError, ValueError, asyncssh.Error, asyncio.TimeoutError):
        return None
    try:
        pairs = await asyncio.wait_for(agent.get_keys(), timeout)
        return frozenset(bytes(p.key_public_data) for p in pairs)
    except (OSError, ValueError, asyncssh.Error, asyncio.TimeoutError):
        return None
    finally:
        agent.close()
        with contextlib.suppress(Exception):
            await agent.wait_closed()


def find_key(spec: str, hosts: Iterable[HostSpec] = (), folder: Path | None = None) -> Path:
    """The key a user named: a path, a file name in ~/.ssh, or a SHA256 fingerprint.

    A .pub path whose private key is beside it gives the private key.
    """
    folder = folder or ssh_dir()
    spec = spec.strip()
    if not spec:
        raise KeyFileError("no key given")
    found: Path | None = None
    as_path = Path(spec).expanduser()
    bare = os.sep not in spec and "/" not in spec
    # A bare name means ~/.ssh first (what `keys list` shows), then the current folder.
    if bare and (folder / spec).is_file():
        found = folder / spec
    elif as_path.is_file():
        found = as_path
    elif spec.startswith("SHA256:"):
        for info in list_keys(hosts, folder=folder):
            if info.fingerprint == spec:
                found = info.path
                break
    if found is None:
        raise KeyFileError(
            f"no key {spec!r}: give a path, a name from `devtui keys list`, or a fingerprint"
        )
    return _private_of(found)


def public_key_line(path: Path) -> str:
    """The OpenSSH one-line public key ("ssh-ed25519 AAAA... comment") of a key file."""
    info = inspect_key(path)
    if info.public_line is None:
        raise KeyFileError(f"{display_path(path)}: {info.problem or 'no public key'}")
    if info.problem and info.has_private:
        # e.g. a .pub that does not match: showing either half could mislead, so refuse.
        raise KeyFileError(f"{display_path(path)}: {info.problem}")
    return info.public_line


# ---------------------------------------------------------------------------------------------
# Writing keys


def _create_exclusive_posix(path: Path, data: bytes, mode: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    # The mode is given to open() itself, so the file never exists with more permissions.
    fd = os.open(path, flags, mode)
    try:
        if sys.platform != "win32":  # always true here; tells mypy's Windows check too
            # umask only removes bits, but an odd one (0o277) could leave the owner unable to read.
            os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def _create_exclusive(path: Path, data: bytes, *, private: bool) -> None:
    if private and _on_windows():
        winacl.create_private_file(path, data)
    elif _on_windows():
        with open(path, "xb") as f:  # a public key may inherit the folder's ACL
            f.write(data)
    else:
        _create_exclusive_posix(path, data, 0o600 if private else 0o644)


def write_key_file(path: Path, data: bytes, *, private: bool, overwrite: bool = False) -> None:
    """Create a key file; private ones are owner-only from the first instant.

    Without `overwrite` an existing file is an error. With it, the new file is written
    beside the old one and renamed over it, so the target never has loose permissions
    and is never half-written.
    """
    if not overwrite:
        try:
            _create_exclusive(path, data, private=private)
        except FileExistsError:
            raise KeyFileError(f"{display_path(path)} already exists") from None
        return
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    _create_exclusive(temp, data, private=private)
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# Fixing the permissions of an existing key


def fix_permissions(path: Path) -> str:
    """Make a private key file owner-only, as OpenSSH demands; returns what was done.

    POSIX: chmod 600 when its group or others have any access. Windows: the owner-only,
    protected ACL new keys get (`winacl.make_owner_only`) when OpenSSH for Windows would find
    it too open. Nothing changes when it is fine already. Raises KeyFileError when `path` is
    not a private key file devtui can read, or when the change fails.
    """
    path = _private_of(path.expanduser())
    shown = display_path(path)
    _check_private_key_file(path, shown)
    if _on_windows():
        return _fix_windows(path, shown)
    return _fix_posix(path, shown)


def _check_private_key_file(path: Path, shown: str) -> None:
    if path.name.endswith(".pub"):
        raise KeyFileError(f"{shown} is a public key; only private keys need to be owner-only")
    if not path.exists():
        raise KeyFileError(f"{shown} does not exist")
    if not path.is_file():
        raise KeyFileError(f"{shown} is not a file")
    try:
        data = _read_small(path)
    except OSError as e:
        raise KeyFileError(f"cannot read {shown}: {e.strerror or e}") from None
    except ValueError:
        raise KeyFileError(f"{shown} is not a private key file (too large)") from None
    if data.startswith(b"PuTTY-User-Key-File"):
        raise KeyFileError(
            f"{shown} is a PuTTY .ppk key: export it in OpenSSH format with PuTTYgen first"
        )
    if is_encrypted(data):
        return  # a passphrase-protected private key: its header says so
    try:
        asyncssh.import_private_key(data)
    except Exception:  # garbage raises KeyImportError, ValueError, ...: all "not a key"
        raise KeyFileError(f"{shown} is not a private key file") from None


def _fix_posix(path: Path, shown: str) -> str:
    try:
        old = stat.S_IMODE(path.stat().st_mode)
    except OSError as e:
        raise KeyFileError(f"cannot read the mode of {shown}: {e.strerror or e}") from None
    if not old & 0o077:
        return f"{shown}: mode {old & 0o777:03o}, only you have access already; nothing changed"
    try:
        os.chmod(path, 0o600)
    except OSError as e:
        raise KeyFileError(f"cannot change the mode of {shown}: {e.strerror or e}") from None
    return f"{shown}: mode {old & 0o777:03o} -> 600 (only you have access now)"


_OWNER_ONLY = "only you, SYSTEM and Administrators have access"


def _fix_windows(path: Path, shown: str) -> str:
    try:
        before = winacl.file_acl_problem(path)
    except (OSError, ValueError) as e:
        before = f"its ACL could not be read: {e}"  # still worth replacing
    else:
        if before is None:
            return f"{shown}: {_OWNER_ONLY} already; nothing changed"
    try:
        winacl.make_owner_only(path)
        after = winacl.file_acl_problem(path)
    except (OSError, ValueError) as e:
        raise KeyFileError(f"cannot change the ACL of {shown}: {e}") from None
    if after is not None:
        raise KeyFileError(f"set an owner-only ACL on {shown}, but it is still too open: {after}")
    return f"{shown}: {_OWNER_ONLY} now (before: {before})"


def _algorithm_for(key_type: str, bits: int | None) -> tuple[str, int, dict[str, Any]]:
    """(asyncssh algorithm name, bits, generate options) for a requested key."""
    if key_type == "ed25519":
        if bits not in (None, 256):
            raise KeyFileError("ed25519 keys are always 256 bits; leave --bits out")
        return "ssh-ed25519", 256, {}
    if key_type == "rsa":
        size = DEFAULT_RSA_BITS if bits is None else bits
        low, high = RSA_BITS_RANGE
        if not low <= size <= high:
            raise KeyFileError(f"rsa keys must have {low} to {high} bits (3072 or 4096 are usual)")
        return "ssh-rsa", size, {"key_size": size}
    if key_type == "ecdsa":
        size = 256 if bits is None else bits
        if size not in ECDSA_ALGORITHMS:
            raise KeyFileError("ecdsa keys have 256, 384 or 521 bits")
        return ECDSA_ALGORITHMS[size], size, {}
    raise KeyFileError(f"unknown key type {key_type!r}: use {', '.join(KEY_TYPES)}")


def check_key_options(key_type: str, bits: int | None) -> int:
    """Validate a key type and size (KeyFileError if unusable); returns the bits it will have."""
    return _algorithm_for(key_type, bits)[1]


def generate_key(
    path: Path | None = None,
    *,
    key_type: str = "ed25519",
    bits: int | None = None,
    comment: str | None = None,
    passphrase: str | None = None,
    overwrite: bool = False,
) -> KeyInfo:
    """Make a new key pair: PATH (owner-only) and PATH.pub; ssh-keygen and OpenSSH load both.

    Defaults: ed25519 at ~/.ssh/id_ed25519, comment user@machine, no passphrase.
    Refuses to replace an existing file unless `overwrite`. Blocking (CPU-bound).
    """
    algorithm, _, options = _algorithm_for(key_type, bits)
    path = (path or default_key_path(key_type)).expanduser()
    comment = default_comment() if comment is None else comment
    if problem := text_problem(comment):
        raise KeyFileError(f"the comment {problem}")
    public = public_path_of(path)
    if not overwrite:
        for existing in (path, public):
            if existing.exists():
                raise KeyFileError(
                    f"{display_path(existing)} already exists; "
                    "pick another --path, or --force to replace it"
                )
    if path.is_dir():
        raise KeyFileError(f"{display_path(path)} is a folder")
    key = asyncssh.generate_private_key(algorithm, comment=comment or None, **options)
    try:
        if passphrase:
            private_data = key.export_private_key(
                "openssh",
                passphrase,
                cipher_name=_KEY_CIPHER,
                rounds=_KEY_ROUNDS,
                ignore_few_rounds=True,  # 16 is OpenSSH's own default; bcrypt would warn
            )
        else:
            private_data = key.export_private_key("openssh")
    except asyncssh.KeyExportError as e:
        # asyncssh needs the optional bcrypt package to encrypt OpenSSH-format keys.
        raise KeyFileError(
            f"cannot protect the key with a passphrase here ({e}); "
            "install the 'bcrypt' package or generate it without a passphrase"
        ) from None
    # UTF-8 like ssh-keygen: the default comment is user@machine, and user names need not
    # be ASCII (李明@pc, José@laptop).
    public_data = (_public_line(key, _clean_comment(comment)) + "\n").encode("utf-8")
    _make_ssh_dir(path.parent)
    try:
        write_key_file(path, private_data, private=True, overwrite=overwrite)
    except OSError as e:
        raise KeyFileError(f"cannot write {display_path(path)}: {e.strerror or e}") from None
    try:
        write_key_file(public, public_data, private=False, overwrite=overwrite)
    except BaseException as e:
        if not overwrite:
            path.unlink(missing_ok=True)  # a brand-new key without its .pub: start clean
        elif isinstance(e, OSError):
            # The old private key is already replaced: never delete the only copy of the new
            # one. The .pub can be made again from it.
            raise KeyFileError(
                f"wrote {display_path(path)} but not {display_path(public)} "
                f"({e.strerror or e}); devtui keys show {display_path(path)} prints it"
            ) from None
        if isinstance(e, OSError):
            raise KeyFileError(f"cannot write {display_path(public)}: {e.strerror or e}") from None
        raise
    return inspect_key(path)


def _make_ssh_dir(folder: Path) -> None:
    if folder.is_dir():
        return
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        # 0700 like ssh-keygen; on Windows the mode is ignored and the profile's ACL applies.
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise KeyFileError(f"cannot create {display_path(folder)}: {e.strerror or e}") from None


# ---------------------------------------------------------------------------------------------
# Installing on a host (ssh-copy-id)


@dataclass(frozen=True)
class PublicKeyEntry:
    """A validated public key line: exactly what goes into authorized_keys."""

    algorithm: str
    blob: str  # canonical base64 of the key blob
    comment: str

    @property
    def line(self) -> str:
        """The line as written to authorized_keys (no newline)."""
        return f"{self.algorithm} {self.blob} {self.comment}".rstrip()


def parse_public_line(text: str) -> PublicKeyEntry:
    """Check an OpenSSH public key line and return it in canonical form."""
    text = text.strip()
    if "\n" in text or "\r" in text:
        raise KeyInstallError("a public key is one line")
    parts = text.split(None, 2)
    if len(parts) < 2:
        raise KeyInstallError("not an OpenSSH public key line (expected 'TYPE BASE64 [COMMENT]')")
    try:
        key = asyncssh.import_public_key(f"{parts[0]} {parts[1]}")
    except Exception:  # asyncssh raises several types for garbage
        raise KeyInstallError(
            "not an OpenSSH public key line (expected 'TYPE BASE64 [COMMENT]')"
        ) from None
    comment = _clean_comment(parts[2] if len(parts) > 2 else "")
    blob = base64.b64encode(key.public_data).decode("ascii")
    return PublicKeyEntry(key.get_algorithm(), blob, comment)


def authorized_keys_has(data: bytes | str, entry: PublicKeyEntry) -> bool:
    """True when authorized_keys text already holds this key, whatever its options or comment."""
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    blob = entry.blob.encode("ascii")
    for raw in data.splitlines():
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        # Options may precede the key (quoted, even with spaces); the blob is a word of its own.
        if blob in line.split():
            return True
    return False


@dataclass(frozen=True)
class InstallResult:
    """What `install_public_key` did on the host."""

    added: bool  # False: the key was already there, nothing changed
    method: Literal["sftp", "shell"]
    created_dir: bool = False  # ~/.ssh was made (mode 700)
    created_file: bool = False  # ~/.ssh/authorized_keys was made (mode 600)
    fixed_modes: tuple[str, ...] = ()  # group/world write bits removed (sshd's StrictModes)


_SSH_DIR = ".ssh"  # SFTP and exec both start in the login (home) folder
# A real authorized_keys is a few KiB; a larger one is not read (a hostile host could send
# an endless one), and nothing is added to it.
AUTHORIZED_KEYS_LIMIT = 1 * MIB
INSTALL_TIMEOUT = 60.0  # seconds for each step of an install (SFTP session, each command)
_TOO_BIG = (
    f"~/.ssh/authorized_keys on the host is larger than {AUTHORIZED_KEYS_LIMIT // MIB} MiB; "
    "devtui does not read or change a file that size: check it on the host"
)
_AUTHORIZED_KEYS = ".ssh/authorized_keys"

# Fixed scripts for hosts without SFTP: no user data in them; the key arrives on stdin.
# `exec sh -c '...'` keeps them POSIX whatever the login shell is (csh, fish), as ssh-copy-id.
_SHELL_READ = (
    "exec sh -c 'cd || exit 1; if [ -d .ssh ]; then printf dir; else printf nodir; fi; "
    'if [ -f .ssh/authorized_keys ]; then echo " file"; else echo " nofile"; fi; '
    "cat .ssh/authorized_keys 2>/dev/null; exit 0'"
)
_SHELL_APPEND = (
    "exec sh -c 'cd || exit 1; umask 077; mkdir -p .ssh || exit 1; "
    'if [ -s .ssh/authorized_keys ] && [ -n "$(tail -c 1 .ssh/authorized_keys)" ]; '
    "then echo >> .ssh/authorized_keys || exit 1; fi; "
    "cat >> .ssh/authorized_keys || exit 1; "
    "chmod go-w .ssh .ssh/authorized_keys'"
)


async def install_public_key(
    conn: asyncssh.SSHClientConnection, public_key_line: str
) -> InstallResult:
    """Append a public key to ~/.ssh/authorized_keys on a connected host, like ssh-copy-id.

    Creates ~/.ssh (700) and the file (600) when missing; a key already present (with any
    options, comment or spacing) is not added again. Uses SFTP, or a fixed shell command
    with the key on stdin when the host refuses SFTP. Raises KeyInstallError.
    """
    entry = parse_public_line(public_key_line)
    try:
        # The whole SFTP exchange (session, stat, read, write, close) is bounded in time.
        outcome = await asyncio.wait_for(_via_sftp(conn, entry), INSTALL_TIMEOUT)
        if isinstance(outcome, InstallResult):
            return outcome
        sftp_problem = outcome
        try:
            return await _install_shell(conn, entry)
        except _ShellRefused as e:
            raise KeyInstallError(
                f"the host refuses SFTP ({sftp_problem}) and commands ({e}); add the key in "
                "the host's web console instead (devtui keys show KEY prints it)"
            ) from None
    except asyncssh.Error as e:
        raise KeyInstallError(
            f"the connection failed while installing the key: {_reason(e)}"
        ) from None
    except asyncio.TimeoutError:
        raise KeyInstallError(
            f"the host did not answer within {INSTALL_TIMEOUT:g} s while installing the key"
        ) from None


async def _via_sftp(
    conn: asyncssh.SSHClientConnection, entry: PublicKeyEntry
) -> InstallResult | str:
    """Install over SFTP; the reason as a string when the host has no SFTP."""
    try:
        sftp = await conn.start_sftp_client()
    except (asyncssh.ChannelOpenError, asyncssh.SFTPError) as e:
        return _reason(e)
    async with sftp:
        result = await _install_sftp(sftp, entry)
    return result


def _reason(error: Exception) -> str:
    reason = getattr(error, "reason", None)
    return visible(str(reason or error or type(error).__name__))  # the server's words


async def _install_sftp(sftp: asyncssh.SFTPClient, entry: PublicKeyEntry) -> InstallResult:
    created_dir = created_file = False
    fixed: list[str] = []
    try:
        try:
            attrs = await sftp.stat(_SSH_DIR)
        except asyncssh.SFTPNoSuchFile:
            await sftp.mkdir(_SSH_DIR, asyncssh.SFTPAttrs(permissions=0o700))
            # The server's umask may have narrowed it; make it exactly what sshd expects.
            await sftp.chmod(_SSH_DIR, 0o700)
            created_dir = True
        else:
            if not await sftp.isdir(_SSH_DIR):
                raise KeyInstallError("~/.ssh on the host is not a folder; fix that first")
            await _drop_group_write(sftp, _SSH_DIR, attrs.permissions, fixed)
        existing: bytes | None
        try:
            async with sftp.open(_AUTHORIZED_KEYS, "rb") as f:
                raw = await f.read(AUTHORIZED_KEYS_LIMIT + 1)
            existing = raw if isinstance(raw, bytes) else raw.encode("utf-8")
            if len(existing) > AUTHORIZED_KEYS_LIMIT:
                raise KeyInstallError(_TOO_BIG)
        except asyncssh.SFTPNoSuchFile:
            existing = None
        if existing is not None and authorized_keys_has(existing, entry):
            return InstallResult(False, "sftp", created_dir, False, tuple(fixed))
        line = entry.line.encode("utf-8") + b"\n"
        if existing is None:
            # Exclusive create with 0600: the file is never readable by others.
            attrs600 = asyncssh.SFTPAttrs(permissions=0o600)
            async with sftp.open(_AUTHORIZED_KEYS, "xb", attrs600) as f:
                await f.write(line)
            await sftp.chmod(_AUTHORIZED_KEYS, 0o600)
            created_file = True
        else:
            # Never glue our key onto a last line that lacks its newline.
            prefix = b"\n" if existing and not existing.endswith(b"\n") else b""
            async with sftp.open(_AUTHORIZED_KEYS, "ab") as f:
                await f.write(prefix + line)
            mode = (await sftp.stat(_AUTHORIZED_KEYS)).permissions
            await _drop_group_write(sftp, _AUTHORIZED_KEYS, mode, fixed)
    except asyncssh.SFTPPermissionDenied as e:
        raise KeyInstallError(
            f"permission denied on the host while changing ~/.ssh/authorized_keys ({_reason(e)})"
        ) from None
    except asyncssh.SFTPError as e:
        raise KeyInstallError(
            f"cannot change ~/.ssh/authorized_keys on the host: {_reason(e)}"
        ) from None
    return InstallResult(True, "sftp", created_dir, created_file, tuple(fixed))


async def _drop_group_write(
    sftp: asyncssh.SFTPClient, path: str, mode: int | None, fixed: list[str]
) -> None:
    # sshd (StrictModes) ignores authorized_keys when it or ~/.ssh is group/world-writable.
    if mode is None or not mode & 0o022:
        return
    new = mode & 0o7777 & ~0o022
    await sftp.chmod(path, new)
    fixed.append(f"~/{path} {mode & 0o7777:o} -> {new:o}")


class _ShellRefused(Exception):
    """The host will not run our fixed command (no exec, no POSIX sh)."""


async def _install_shell(
    conn: asyncssh.SSHClientConnection, entry: PublicKeyEntry
) -> InstallResult:
    try:
        # +32: the "dir file" line before the file's bytes.
        read = await run_bounded(
            conn,
            _SHELL_READ,
            limit=AUTHORIZED_KEYS_LIMIT + 32,
            timeout=INSTALL_TIMEOUT,
            what="reading ~/.ssh/authorized_keys",
        )
    except asyncssh.ChannelOpenError as e:
        raise _ShellRefused(_reason(e)) from None
    except RemoteCommandError as e:
        raise KeyInstallError(_TOO_BIG if "more than" in str(e) else str(e)) from None
    out = read.stdout
    first, _, existing = out.partition(b"\n")
    flags = first.split()
    if read.exit_status != 0 or len(flags) != 2 or flags[0] not in (b"dir", b"nodir"):
        raise _ShellRefused(_shell_problem(read))
    if authorized_keys_has(existing, entry):
        return InstallResult(False, "shell")
    try:
        append = await run_bounded(
            conn,
            _SHELL_APPEND,
            limit=4 * KIB,
            timeout=INSTALL_TIMEOUT,
            what="adding to ~/.ssh/authorized_keys",
            input=entry.line.encode("utf-8") + b"\n",
        )
    except asyncssh.ChannelOpenError as e:
        raise _ShellRefused(_reason(e)) from None
    except RemoteCommandError as e:
        raise KeyInstallError(str(e)) from None
    if append.exit_status != 0:
        raise KeyInstallError(
            f"could not append to ~/.ssh/authorized_keys on the host: {_shell_problem(append)}"
        )
    return InstallResult(True, "shell", flags[0] == b"nodir", flags[1] == b"nofile")


def _shell_problem(result: Bounded) -> str:
    lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
    if lines:
        return visible(lines[-1])
    if result.exit_signal:
        return f"killed by signal {result.exit_signal}"
    return f"exit status {result.exit_status}"
