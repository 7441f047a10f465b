"""Crash-safe file replacement (the target always holds the old text or the new, never a
mix), and bounded reads of files a config names."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path


def checkpoint(step: str) -> None:
    """Called between the steps of a save. Tests replace it to simulate a crash at `step`."""


def atomic_write_text(path: Path, text: str, *, backup: bool = True, mode: int = 0o600) -> None:
    """Write `text` to `path` atomically (temp file in the same folder, fsync, os.replace).

    With `backup`, the previous content is kept as `path` + ".bak" (one generation).
    A new file gets `mode`; an existing one keeps its mode.
    """
    if path.is_symlink():  # a dotfiles link: update the file it points to, keep the link
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    bak_tmp: Path | None = None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            checkpoint("written")
            f.flush()
            os.fsync(f.fileno())
        checkpoint("synced")
        try:
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        except FileNotFoundError:
            os.chmod(tmp, mode)
        if backup and path.exists():
            bak = path.with_name(path.name + ".bak")
            # A name of its own: two writers copying into one fixed temp name would replace
            # each other's copy and the second os.replace would find nothing to move.
            bak_fd, bak_name = tempfile.mkstemp(
                prefix=f".{bak.name}.", suffix=".tmp", dir=bak.parent
            )
            os.close(bak_fd)
            bak_tmp = Path(bak_name)
            shutil.copy2(path, bak_tmp)
            checkpoint("backup-copied")
            os.replace(bak_tmp, bak)
        checkpoint("before-replace")
        os.replace(tmp, path)
        checkpoint("replaced")
    finally:
        for leftover in (tmp, bak_tmp):
            if leftover is not None:
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; Windows cannot open a folder this way.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Files devtui reads because a config names them (identity files, Include, known_hosts).
KNOWN_HOSTS_LIMIT = 64 << 20
SSH_CONFIG_LIMIT = 4 << 20


def read_file(path: Path | str, limit: int, *, head: bool = False) -> bytes:
    """The bytes of the regular file `path`, at most `limit`. A device, a FIFO or a folder is
    refused at once (OSError EINVAL, never read, never waited on: `Include /dev/zero` or
    `identity_file = "/dev/zero"` once read without end), and so is a longer file (EFBIG),
    unless `head`: then its first `limit` bytes."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a device, a pipe or a folder)")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            data = os.read(fd, min(1 << 20, limit + 1 - total))
            if not data:
                break
            chunks.append(data)
            total += len(data)
    finally:
        os.close(fd)
    if total > limit and not head:
        raise OSError(errno.EFBIG, f"larger than {limit:,} bytes")
    return b"".join(chunks)[:limit]
