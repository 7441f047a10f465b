"""The two ends of a copy: the local disk, or a host over SFTP (or an exec channel where the
server refuses SFTP). One interface, so that upload and download, cp and sync, are one code.

Paths on a host are POSIX strings; a name a host lists is checked before it is used (no
separator, no `..`, no NUL), so a lying server cannot steer a copy out of its directory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import os
import posixpath
import stat as statmod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import asyncssh

from .errors import DevtuiError
from .remote_commands import run_bounded
from .remote_shell import sh_script
from .visible_text import visible

CHUNK = 256 * 1024  # bytes per read/write request
WINDOW = 16  # requests in flight per file (SFTP); 4 MiB
HASH_BLOCK = 1024 * 1024  # the block whose hash both sides compare before a resume
EXEC_HASH_MIN = 8 * 1024 * 1024  # smaller files are read back to be hashed, not sha256sum'd
KIND_FILE, KIND_DIR, KIND_LINK, KIND_OTHER = "file", "dir", "link", "other"
_HASH_TIMEOUT = 3600.0  # a remote sha256sum of a very large file on a slow disk

T = TypeVar("T")


@dataclass(frozen=True)
class Info:
    """What a stat says about a path."""

    kind: str  # file | dir | link | other
    size: int
    mtime: int  # whole seconds (SFTP v3 carries no more)
    mode: int  # permission bits only


@dataclass(frozen=True)
class Entry:
    """One name in a directory listing."""

    name: str
    info: Info


Written = Callable[[int], None]  # bytes of the target now safely written, from its start


class LinkLost(Exception):
    """The connection broke during an operation: heal it and resume."""


class Side(Protocol):
    """One end of a copy."""

    remote: bool
    label: str  # "" locally, "HOST:" on a host
    rewind: int  # bytes at the end of a part file that may hold holes after a drop
    write_len: int  # the size of chunk its write() takes whole (a reader's chunk size)

    def join(self, parent: str, name: str) -> str: ...
    def basename(self, path: str) -> str: ...
    def dirname(self, path: str) -> str: ...
    async def absolute(self, path: str) -> str: ...
    async def stat(self, path: str, follow: bool = True) -> Info | None: ...
    async def listdir(self, path: str) -> list[Entry]: ...
    def read(
        self, path: str, offset: int, size: int, chunk: int = CHUNK
    ) -> AsyncIterator[bytes]: ...
    async def write(
        self, path: str, offset: int, chunks: AsyncIterator[bytes], written: Written
    ) -> None: ...
    async def read_block(self, path: str, offset: int, length: int) -> bytes: ...
    async def sha256(self, path: str) -> str: ...
    async def finish(self, part: str, target: str, info: Info) -> None: ...
    async def remove(self, path: str) -> None: ...
    async def mkdir(self, path: str) -> None: ...
    async def set_mtime(self, path: str, mtime: int) -> None: ...
    async def is_posix(self) -> bool: ...


def check_name(name: str, where: str) -> str:
    """`name` from a listing, refused when it could leave its directory."""
    # On Windows a backslash is a separator too, and a colon names a drive or a stream.
    odd = ("\\", ":") if os.name == "nt" else ()
    if name in ("", ".", "..") or "/" in name or "\0" in name or any(c in name for c in odd):
        raise DevtuiError(
            f"{visible(where)}: the listing holds the name {visible(repr(name))}, which could "
            "leave the directory; refused"
        )
    return name


def perm_bits(mode: int) -> int:
    # Never setuid, setgid or sticky on a copy: rwx bits only.
    return mode & 0o777


# -- the local disk --------------------------------------------------------------------------


class LocalSide:
    """Files on this machine."""

    remote = False
    label = ""
    rewind = 0  # written in order: the part file has no holes
    write_len = CHUNK

    def join(self, parent: str, name: str) -> str:
        return os.path.join(parent, name)

    def basename(self, path: str) -> str:
        return os.path.basename(os.path.normpath(path))

    def dirname(self, path: str) -> str:
        return os.path.dirname(os.path.abspath(path))

    async def absolute(self, path: str) -> str:
        return os.path.abspath(path)

    async def stat(self, path: str, follow: bool = True) -> Info | None:
        try:
            st = os.stat(path) if follow else os.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise DevtuiError(f"{visible(path)}: {e.strerror}") from None
        return local_info(st)

    async def listdir(self, path: str) -> list[Entry]:
        entries = []
        try:
            with os.scandir(path) as it:
                for item in it:
                    try:
                        st = item.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # gone while we looked
                    entries.append(Entry(item.name, local_info(st)))
        except OSError as e:
            raise DevtuiError(f"{visible(path)}: {e.strerror}") from None
        return entries

    async def read(
        self, path: str, offset: int, size: int, chunk: int = CHUNK
    ) -> AsyncIterator[bytes]:
        # Page-cache reads of 256 KiB take well under a millisecond: no thread needed. The
        # writer's own request size: an SFTP write of 256 KiB would be 255 KiB + 1 KiB.
        with open(path, "rb") as f:
            f.seek(offset)
            left = size - offset
            while left > 0:
                data = f.read(min(chunk, left))
                if not data:
                    raise DevtuiError(f"{visible(path)} became shorter during the copy")
                left -= len(data)
                yield data
                await asyncio.sleep(0)  # let the progress bar and Ctrl+C in

    async def write(
        self, path: str, offset: int, chunks: AsyncIterator[bytes], written: Written
    ) -> None:
        mode = "r+b" if offset and os.path.exists(path) else "wb"
        try:
            with open(path, mode) as f:
                f.seek(offset)
                f.truncate()
                done = offset
                async for data in chunks:
                    f.write(data)
                    done += len(data)
                    written(done)
                    await asyncio.sleep(0)  # buffered data never suspends: let a cancel in
        except OSError as e:
            raise DevtuiError(f"{visible(path)}: {e.strerror or e}") from None

    async def read_block(self, path: str, offset: int, length: int) -> bytes:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(length)

    async def sha256(self, path: str) -> str:
        return await asyncio.to_thread(_file_sha256, path)

    async def finish(self, part: str, target: str, info: Info) -> None:
        try:
            os.chmod(part, perm_bits(info.mode))
            os.utime(part, (info.mtime, info.mtime))
            os.replace(part, target)
        except OSError as e:
            raise DevtuiError(f"{visible(target)}: {e.strerror or e}") from None

    async def remove(self, path: str) -> None:
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            else:
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise DevtuiError(f"{visible(path)}: {e.strerror}") from None

    async def mkdir(self, path: str) -> None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise DevtuiError(f"{visible(path)}: {e.strerror}") from None

    async def set_mtime(self, path: str, mtime: int) -> None:
        os.utime(path, (mtime, mtime))

    async def is_posix(self) -> bool:
        return os.name == "posix"


def local_info(st: os.stat_result, windows: bool = os.name == "nt") -> Info:
    if statmod.S_ISLNK(st.st_mode):
        kind = KIND_LINK
    elif statmod.S_ISDIR(st.st_mode):
        kind = KIND_DIR
    elif statmod.S_ISREG(st.st_mode):
        kind = KIND_FILE
    else:
        kind = KIND_OTHER
    return Info(kind, st.st_size, int(st.st_mtime), local_mode(st.st_mode, kind, windows))


def local_mode(st_mode: int, kind: str, windows: bool) -> int:
    """A local file's permission bits. Windows has none: Python makes up 0666 (0444 when
    read-only) and 0777 for folders, which on a host would be world-writable; a copy from
    there gets what a host's umask usually gives, 0644 and 0755 (0444 and 0555 read-only)."""
    if not windows:
        return perm_bits(st_mode)
    read_only = not st_mode & statmod.S_IWRITE
    if kind == KIND_DIR:
        return 0o555 if read_only else 0o755
    return 0o444 if read_only else 0o644


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(1024 * 1024):
            digest.update(data)
    return digest.hexdigest()


# -- a host ------------------------------------------------------------------------------------

# openssl first: it uses the CPU's SHA instructions (4x coreutils' sha256sum here).
_SHA256_SCRIPT = """if command -v openssl >/dev/null 2>&1 && openssl dgst -sha256 -r < "$1"; then :
elif command -v sha256sum >/dev/null 2>&1; then sha256sum < "$1"
elif command -v shasum >/dev/null 2>&1; then shasum -a 256 < "$1"
else exit 99; fi"""
_NO_HASH_TOOL = 99
# The same, started early: its login shell starts while the file is still being written, and
# it hashes once told to (a line on stdin); EOF without the line ends it unhashed.
_SHA256_LATER = "read go || exit 98\n" + _SHA256_SCRIPT


@dataclass(frozen=True)
class LaterHash:
    """A host's hash command, started early: `advance(N)` says the target's first N bytes are
    written (a following hash reads them now), `result()` gives the digest of the whole."""

    result: Callable[[], Awaitable[str]]
    close: Callable[[], None]
    advance: Callable[[int], None] = lambda _: None


# $1 part file, $2 MiB to read first (a resumed prefix), $3 block size. Then each line on
# stdin, N, reads N more blocks: ranges the SFTP server has confirmed written, in order, so
# the hash of the file the host holds is ready soon after its last byte (not a whole re-read
# later). With python3 on the host (nearly every development machine), one process reads the
# file where it lies (pread) and hashes it with OpenSSL's SHA-256: 0.6-0.7 s of CPU per
# 512 MiB here with its start (0.3 s of it the hash). Without, dd reads the blocks from a
# shared fd into a pipe to openssl (or sha256sum): a dd process per line and every byte
# through a pipe, 1.3 s of CPU for the same file. A Mac without its developer tools has a
# python3 that only asks, on the Mac's screen, to install them: not used there.
_FOLLOW_PY = """import hashlib, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
h, at = hashlib.sha256(), 0
def take(n):
    global at
    while n > 0:
        data = os.pread(fd, min(n, 1 << 20), at)
        if not data:
            return
        h.update(data)
        at, n = at + len(data), n - len(data)
take(int(sys.argv[2]) << 20)
for line in sys.stdin:
    take(int(line) * int(sys.argv[3]))
print(h.hexdigest(), "*stdin")
"""
_FOLLOW_PIPE = r"""h() { if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r
elif command -v sha256sum >/dev/null 2>&1; then sha256sum
elif command -v shasum >/dev/null 2>&1; then shasum -a 256
else cat >/dev/null; exit 99; fi; }
{ dd bs=1048576 count="$2" <&3 2>/dev/null
  while read n; do dd bs="$3" count="$n" <&3 2>/dev/null; done
} 3< "$1" | h"""
_SHA256_FOLLOW = (
    "if command -v python3 >/dev/null 2>&1 &&"
    ' { [ "$(uname -s)" != Darwin ] || xcode-select -p >/dev/null 2>&1; }; then'
    f" exec python3 -S -c '{_FOLLOW_PY}' \"$@\"; fi\n" + _FOLLOW_PIPE
)
_FOLLOW_STEP = 8  # blocks (2 MiB) per line to the following hash


class RemoteBase:
    """What SFTP and exec share: POSIX paths, the hash via an exec command."""

    remote = True

    def __init__(
        self, host: str, conn: asyncssh.SSHClientConnection, posix: Callable[[], Awaitable[bool]]
    ) -> None:
        self.host = host
        self.conn = conn
        self._posix_check = posix
        self._posix: asyncio.Future[bool] | None = None
        self.label = f"{host}:"

    async def is_posix(self) -> bool:
        """Whether the host has a POSIX sh: asked when first needed (a copy over SFTP
        without a hash never needs it, and asking costs a command); one question at a time."""
        if self._posix is None or (self._posix.done() and self._posix.exception()):
            self._posix = asyncio.ensure_future(self._posix_check())
        return await asyncio.shield(self._posix)

    async def beside_posix(
        self, job: Awaitable[T], drop: Callable[[T], object] = lambda _: None
    ) -> T | None:
        """`job` (a command on the host) started now, beside the question whether the host
        has a POSIX sh rather than after it (each is a login shell's start: 0.1-0.2 s here,
        more with a conda init). Its result where the host has one; else None, and the job
        is dropped (`drop` given its result if it has one): a forced command on a host
        without sh could take its time, or say a lot."""
        task = asyncio.ensure_future(job)
        task.add_done_callback(unwanted)
        try:
            posix = await self.is_posix()
        except BaseException:
            task.cancel()
            raise
        if posix:
            return await task
        task.cancel()
        if task.done() and not task.cancelled() and task.exception() is None:
            drop(task.result())
        return None

    def join(self, parent: str, name: str) -> str:
        return posixpath.join(parent, name)

    def basename(self, path: str) -> str:
        return posixpath.basename(posixpath.normpath(path))

    def dirname(self, path: str) -> str:
        return posixpath.dirname(path) or "."

    async def home(self) -> str:
        raise NotImplementedError

    async def command_path(self, path: str) -> str:
        """`path` as a command on the host reads it: a command starts in the login's home,
        which is where relative paths start for this side too."""
        return path

    async def absolute(self, path: str) -> str:
        """`path` from the root, `.` and `..` resolved (a relative one starts in the home)."""
        if not path.startswith("/"):
            path = posixpath.join(await self.home(), path)
        return posixpath.normpath(path)

    def where(self, path: str) -> str:
        return visible(f"{self.host}:{path}")

    async def sha256(self, path: str) -> str:
        raise NotImplementedError

    async def hash_later(
        self, path: str, follow: tuple[int, int, int] | None = None
    ) -> LaterHash | None:
        """A hash command for `path` started now (its login shell starts beside the
        transfer); its `result()` lets it hash and gives the digest, `close()` drops it.
        With `follow` (prefix, size, block): it hashes the file as `advance()` reports it
        written, from byte 0; `prefix` is a multiple of 1 MiB, writes come in `block`s from
        there. None when the host has no POSIX sh."""
        if follow is None:
            command = sh_script(_SHA256_LATER, await self.command_path(path))
        else:
            prefix, _, block = follow
            command = sh_script(
                _SHA256_FOLLOW, await self.command_path(path), str(prefix // HASH_BLOCK), str(block)
            )
        try:
            process = await self.beside_posix(
                self.conn.create_process(command, encoding=None), drop=lambda p: p.close()
            )
        except (asyncssh.DisconnectError, asyncssh.ChannelOpenError, ConnectionError) as e:
            raise LinkLost(str(e)) from e
        if process is None:
            return None
        told = 0  # blocks the following hash was told to read

        def advance(written: int) -> None:
            nonlocal told
            if follow is None or process.is_closing():
                return
            ready = (written - follow[0]) // follow[2] - told
            if ready >= _FOLLOW_STEP:
                process.stdin.write(f"{ready}\n".encode())
                told += ready

        async def result() -> str:
            try:
                try:
                    if follow is None:
                        process.stdin.write(b"go\n")
                    else:  # the rest, the last block short
                        rest = -(-(follow[1] - follow[0]) // follow[2]) - told
                        if rest > 0:
                            process.stdin.write(f"{rest}\n".encode())
                    process.stdin.write_eof()
                except BrokenPipeError:
                    pass  # it ended already (no sh there, or it failed): its status says so
                out: bytes = await asyncio.wait_for(process.stdout.read(4096), _HASH_TIMEOUT)
                status = await asyncio.wait_for(process.wait(), 10)
            except (asyncssh.DisconnectError, ConnectionError) as e:
                raise LinkLost(str(e)) from e
            except asyncio.TimeoutError:
                raise DevtuiError(f"{self.where(path)}: the hash took too long") from None
            finally:
                process.close()
            word = out.split(b" ", 1)[0].strip().decode("ascii", "replace")
            if status.exit_status == 0 and len(word) == 64:
                return word
            return await self.sha256(path)  # no tool there, or it failed: the usual way

        return LaterHash(result, process.close, advance)

    async def exec_sha256(self, path: str) -> str | None:
        """The file's SHA-256 by openssl/sha256sum/shasum on the host; None when it has
        none of them, or no POSIX sh."""
        result = await self.beside_posix(
            bounded(
                self.conn,
                sh_script(_SHA256_SCRIPT, await self.command_path(path)),
                4096,
                _HASH_TIMEOUT,
                "sha256sum",
            )
        )
        if result is None:
            return None
        if result.exit_status == _NO_HASH_TOOL:
            return None
        word = result.stdout.split(b" ", 1)[0].strip().decode("ascii", "replace")
        if result.exit_status != 0 or len(word) != 64:
            err = result.stderr.decode(errors="replace").strip()
            raise DevtuiError(f"{self.where(path)}: cannot hash it: {visible(err)}")
        return word


def unwanted(task: asyncio.Future[Any]) -> None:
    """A job whose answer is no longer wanted: its error is taken here (not printed later as
    "Task exception was never retrieved")."""
    if not task.cancelled():
        task.exception()


async def bounded(
    conn: asyncssh.SSHClientConnection, command: str, limit: int, timeout: float, what: str
) -> Done:
    try:
        result = await run_bounded(conn, command, limit=limit, timeout=timeout, what=what)
    except (asyncssh.DisconnectError, asyncssh.ChannelOpenError, ConnectionError) as e:
        raise LinkLost(str(e)) from e
    return Done(result.exit_status, result.stdout, result.stderr)


@dataclass(frozen=True)
class Done:
    exit_status: int | None
    stdout: bytes
    stderr: bytes


def _sftp_info(attrs: asyncssh.SFTPAttrs) -> Info:
    kind = {
        asyncssh.FILEXFER_TYPE_REGULAR: KIND_FILE,
        asyncssh.FILEXFER_TYPE_DIRECTORY: KIND_DIR,
        asyncssh.FILEXFER_TYPE_SYMLINK: KIND_LINK,
    }.get(attrs.type, KIND_OTHER)
    if attrs.type == asyncssh.FILEXFER_TYPE_UNKNOWN and attrs.permissions is not None:
        fmt = statmod.S_IFMT(attrs.permissions)
        kind = {
            statmod.S_IFREG: KIND_FILE,
            statmod.S_IFDIR: KIND_DIR,
            statmod.S_IFLNK: KIND_LINK,
        }.get(fmt, KIND_OTHER)
    return Info(kind, attrs.size or 0, int(attrs.mtime or 0), perm_bits(attrs.permissions or 0o644))


def _sftp_errors(where: str) -> contextlib.AbstractContextManager[None]:
    return _SftpErrors(where)


class _SftpErrors:
    """SFTP errors as one clear line; a broken link as LinkLost."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            return
        if isinstance(exc, (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection)):
            raise LinkLost(str(exc)) from exc
        # SFTP v3 has no "no space" status: servers send a failure with the reason text.
        if isinstance(exc, asyncssh.SFTPNoSpaceOnFilesystem) or (
            isinstance(exc, asyncssh.SFTPError) and "no space" in str(exc.reason).lower()
        ):
            raise DevtuiError(f"{self.where}: no space left on the host") from None
        if isinstance(exc, asyncssh.SFTPError):
            raise DevtuiError(f"{self.where}: {visible(exc.reason or str(exc))}") from None
        if isinstance(exc, (asyncssh.DisconnectError, asyncssh.ChannelOpenError, ConnectionError)):
            raise LinkLost(str(exc)) from exc


class SftpSide(RemoteBase):
    """A host over its SFTP subsystem, several requests in flight."""

    # Writes in flight may land out of order: after a drop, the part file's last WINDOW
    # requests' worth of bytes may hold holes. Everything below that was written.
    rewind = WINDOW * CHUNK

    def __init__(
        self,
        host: str,
        conn: asyncssh.SSHClientConnection,
        posix: Callable[[], Awaitable[bool]],
        sftp: asyncssh.SFTPClient,
    ) -> None:
        super().__init__(host, conn, posix)
        self.sftp = sftp
        self._home: str | None = None
        limits = sftp.limits
        # One request per chunk: a chunk over the server's limit would be split in two.
        self.read_len = min(CHUNK, limits.max_read_len or CHUNK)
        self.write_len = min(CHUNK, limits.max_write_len or CHUNK)

    async def home(self) -> str:
        if self._home is None:
            with _sftp_errors(self.where("~")):
                self._home = await self.sftp.realpath(".")
        return self._home

    async def command_path(self, path: str) -> str:
        # SFTP's relative paths start where the server says (`internal-sftp -d DIR`, a
        # gateway's own root), not always in the login's home, where a command starts.
        # Joined, not normalised: `link/..` is for the host to resolve, as SFTP does.
        return path if path.startswith("/") else posixpath.join(await self.home(), path)

    async def stat(self, path: str, follow: bool = True) -> Info | None:
        with _sftp_errors(self.where(path)):
            try:
                attrs = await (self.sftp.stat(path) if follow else self.sftp.lstat(path))
            except asyncssh.SFTPNoSuchFile:  # an answer, not an error
                return None
        return _sftp_info(attrs)

    async def listdir(self, path: str) -> list[Entry]:
        entries = []
        with _sftp_errors(self.where(path)):
            async for item in self.sftp.scandir(path):
                name = item.filename
                assert isinstance(name, str)
                if name in (".", ".."):
                    continue
                entries.append(
                    Entry(check_name(name, f"{self.host}:{path}"), _sftp_info(item.attrs))
                )
        return entries

    async def read(
        self, path: str, offset: int, size: int, chunk: int = CHUNK
    ) -> AsyncIterator[bytes]:
        with _sftp_errors(self.where(path)):
            async with self.sftp.open(path, "rb", block_size=0) as f:
                pending: collections.deque[tuple[int, asyncio.Task[bytes]]] = collections.deque()
                next_at = offset
                try:
                    while pending or next_at < size:
                        while next_at < size and len(pending) < WINDOW:
                            length = min(self.read_len, size - next_at)
                            pending.append((length, asyncio.ensure_future(f.read(length, next_at))))
                            next_at += length
                        length, task = pending.popleft()
                        data = await task
                        if len(data) != length:
                            raise DevtuiError(f"{self.where(path)} changed during the copy")
                        yield data
                finally:
                    for _, task in pending:  # a failed one's neighbours may have failed too
                        task.add_done_callback(unwanted)
                        task.cancel()

    async def write(
        self, path: str, offset: int, chunks: AsyncIterator[bytes], written: Written
    ) -> None:
        with _sftp_errors(self.where(path)):
            try:
                await self._write(path, offset, chunks, written)
            except asyncssh.SFTPFailure:
                if await self._full(path):
                    raise asyncssh.SFTPNoSpaceOnFilesystem("no space left") from None
                raise

    async def _full(self, path: str) -> bool:
        """After a write's plain "Failure": whether the host's disk is full. SFTP v3 has no
        status for that, and OpenSSH's sftp-server sends ENOSPC as "Failure"; its
        statvfs@openssh.com extension tells the free space."""
        try:
            vfs = await self.sftp.statvfs(self.dirname(path))
        except (asyncssh.SFTPError, asyncssh.DisconnectError, ConnectionError):
            return False
        return vfs.bavail * vfs.frsize < self.write_len * WINDOW

    async def _write(
        self, path: str, offset: int, chunks: AsyncIterator[bytes], written: Written
    ) -> None:
        exists = offset > 0 and await self.stat(path) is not None
        async with self.sftp.open(path, "r+b" if exists else "wb", block_size=0) as f:
            pending: collections.deque[tuple[int, asyncio.Task[int]]] = collections.deque()
            at = offset
            try:
                async for data in chunks:
                    # A chunk from a local read may be larger than one request allows.
                    for start in range(0, len(data), self.write_len):
                        piece = data[start : start + self.write_len]
                        if len(pending) >= WINDOW:
                            end, task = pending.popleft()
                            await task
                            written(end)
                        pending.append((at + len(piece), asyncio.ensure_future(f.write(piece, at))))
                        at += len(piece)
                # Requests end in order of issue as far as we look: the bytes below the
                # oldest one still pending are all written, which is what a resume needs.
                while pending:
                    end, task = pending.popleft()
                    await task
                    written(end)
            finally:
                for _, task in pending:  # a failed one's neighbours may have failed too
                    task.add_done_callback(unwanted)
                    task.cancel()

    async def read_block(self, path: str, offset: int, length: int) -> bytes:
        with _sftp_errors(self.where(path)):
            async with self.sftp.open(path, "rb", block_size=0) as f:
                data = bytearray()
                while len(data) < length:  # a server sends at most its own read limit
                    more: bytes = await f.read(
                        min(self.read_len, length - len(data)), offset + len(data)
                    )
                    if not more:
                        break
                    data += more
                return bytes(data)

    async def sha256(self, path: str) -> str:
        info = await self.stat(path)
        size = info.size if info else 0
        # A command costs a channel and the login shell's start (tens of ms, more with a
        # heavy .bashrc); reading a small file back costs a round trip or two.
        if size >= EXEC_HASH_MIN:
            found = await self.exec_sha256(path)
            if found is not None:
                return found
        digest = hashlib.sha256()  # small, or no tool on the host: read it back
        async for data in self.read(path, 0, size):
            digest.update(data)
        return digest.hexdigest()

    async def finish(self, part: str, target: str, info: Info) -> None:
        with _sftp_errors(self.where(target)):
            attrs = asyncssh.SFTPAttrs(
                permissions=perm_bits(info.mode), atime=info.mtime, mtime=info.mtime
            )
            await self.sftp.setstat(part, attrs)
            try:
                await self.sftp.posix_rename(part, target)
            except asyncssh.SFTPOpUnsupported:  # plain SFTP v3 rename refuses to replace
                if await self.stat(target, follow=False) is not None:
                    await self.sftp.remove(target)
                await self.sftp.rename(part, target)

    async def remove(self, path: str) -> None:
        info = await self.stat(path, follow=False)
        if info is None:
            return
        with _sftp_errors(self.where(path)):
            if info.kind == KIND_DIR:
                await self.sftp.rmdir(path)
            else:
                await self.sftp.remove(path)

    async def mkdir(self, path: str) -> None:
        with _sftp_errors(self.where(path)):
            await self.sftp.makedirs(path, exist_ok=True)

    async def touch(self, path: str) -> None:
        """Create `path` empty if it is missing; leave its bytes alone if not."""
        with _sftp_errors(self.where(path)):
            async with self.sftp.open(path, "ab"):
                pass

    async def set_mtime(self, path: str, mtime: int) -> None:
        with _sftp_errors(self.where(path)):
            await self.sftp.utime(path, (mtime, mtime))
