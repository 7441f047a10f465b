"""A host that refuses the SFTP subsystem: the same side over exec channels, with POSIX
tools only (cat, tail, dd, wc, chmod, touch, mv), and the choice between the two.

Every command goes through sh_script, so paths arrive as single words whatever the login
shell is. Resume works as with SFTP: dd keeps a part file's first bytes, cat appends.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncssh

from .errors import DevtuiError
from .file_sides import (
    CHUNK,
    KIND_DIR,
    KIND_FILE,
    KIND_LINK,
    KIND_OTHER,
    Done,
    Entry,
    Info,
    LinkLost,
    RemoteBase,
    SftpSide,
    Written,
    bounded,
    check_name,
    perm_bits,
)
from .remote_shell import sh_script
from .visible_text import visible

# -- a host that refuses SFTP: POSIX tools over exec channels --------------------------------

# $1 path, $2 "l" to not follow a link. Prints: KIND SIZE MTIME MODE, or "none".
_STAT_SCRIPT = r"""p=$1
if [ ! -e "$p" ] && [ ! -L "$p" ]; then echo none; exit 0; fi
if [ "$2" = l ] && [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=dir
elif [ -f "$p" ]; then t=file; else t=other; fi
s=0; [ "$t" = file ] && s=$(wc -c < "$p")
m=$(stat -L -c '%Y %a' -- "$p" 2>/dev/null || stat -L -f '%m %Lp' -- "$p" 2>/dev/null || echo '0 644')
echo "$t $((s)) $m"
"""
# $1 directory: for each name, NAME NUL KIND SIZE MTIME MODE NUL
_LIST_SCRIPT = r"""cd -- "$1" || exit 1
for f in * .*; do
  case $f in .|..) continue;; esac
  [ -e "$f" ] || [ -L "$f" ] || continue
  if [ -L "$f" ]; then t=link; elif [ -d "$f" ]; then t=dir; elif [ -f "$f" ]; then t=file; else t=other; fi
  s=0; [ "$t" = file ] && s=$(wc -c < "$f")
  m=$(stat -c '%Y %a' -- "$f" 2>/dev/null || stat -f '%m %Lp' -- "$f" 2>/dev/null || echo '0 644')
  printf '%s\0%s %s %s\0' "$f" "$t" "$((s))" "$m"
done
"""
# $1 part file, $2 offset: keep the first $2 bytes, append stdin.
_WRITE_SCRIPT = 'dd if=/dev/null of="$1" bs=1 seek="$2" 2>/dev/null || exit 1; exec cat >> "$1"'
_READ_SCRIPT = 'exec tail -c +"$(($2 + 1))" -- "$1"'
_BLOCK_SCRIPT = 'exec dd if="$1" bs="$3" skip="$2" count=1 2>/dev/null'
# $1 part, $2 target, $3 mode (octal), $4 mtime as [[CC]YY]MMDDhhmm.SS in UTC
_FINISH_SCRIPT = 'chmod "$3" "$1" && TZ=UTC0 touch -t "$4" "$1" && mv -f -- "$1" "$2"'
_TOUCH_SCRIPT = 'TZ=UTC0 touch -t "$2" -- "$1"'


class ExecSide(RemoteBase):
    """A host without SFTP: cat, tail and dd over exec channels (POSIX sh needed)."""

    rewind = 0  # cat appends in order
    write_len = CHUNK

    async def _sh(self, what: str, script: str, *args: str, limit: int = 1 << 20) -> Done:
        return await bounded(self.conn, sh_script(script, *args), limit, 600.0, what)

    def _fail(self, path: str, result: Done) -> DevtuiError:
        err = result.stderr.decode(errors="replace").strip().splitlines()
        text = err[-1] if err else f"exit status {result.exit_status}"
        if "No space left" in text:
            return DevtuiError(f"{self.where(path)}: no space left on the host")
        return DevtuiError(f"{self.where(path)}: {visible(text)}")

    async def home(self) -> str:
        result = await self._sh("pwd", "pwd")
        return result.stdout.decode(errors="replace").strip() or "."

    async def stat(self, path: str, follow: bool = True) -> Info | None:
        result = await self._sh("stat", _STAT_SCRIPT, path, "" if follow else "l")
        words = result.stdout.decode(errors="replace").split()
        if result.exit_status != 0 or not words:
            raise self._fail(path, result)
        if words[0] == "none":
            return None
        return _parse_info(words, self.where(path))

    async def listdir(self, path: str) -> list[Entry]:
        result = await self._sh("ls", _LIST_SCRIPT, path, limit=256 << 20)
        if result.exit_status != 0:
            raise self._fail(path, result)
        fields = result.stdout.split(b"\0")
        entries = []
        for i in range(0, len(fields) - 1, 2):
            name = fields[i].decode("utf-8", "surrogateescape")
            info = _parse_info(fields[i + 1].decode(errors="replace").split(), self.where(path))
            entries.append(Entry(check_name(name, f"{self.host}:{path}"), info))
        return entries

    async def read(
        self, path: str, offset: int, size: int, chunk: int = CHUNK
    ) -> AsyncIterator[bytes]:
        try:
            process = await self.conn.create_process(
                sh_script(_READ_SCRIPT, path, str(offset)), encoding=None
            )
        except (asyncssh.DisconnectError, asyncssh.ChannelOpenError, ConnectionError) as e:
            raise LinkLost(str(e)) from e
        try:
            left = size - offset
            while left > 0:
                try:
                    data = await process.stdout.read(min(CHUNK, left))
                except (asyncssh.DisconnectError, ConnectionError) as e:
                    raise LinkLost(str(e)) from e
                if not data:
                    if process.exit_status is None and not process.is_closing():
                        raise LinkLost("the channel closed")
                    err = await process.stderr.read(4096)
                    raise DevtuiError(
                        f"{self.where(path)}: ended early: {visible(err.decode(errors='replace'))}"
                    )
                left -= len(data)
                yield data
        finally:
            process.close()

    async def write(
        self, path: str, offset: int, chunks: AsyncIterator[bytes], written: Written
    ) -> None:
        try:
            process = await self.conn.create_process(
                sh_script(_WRITE_SCRIPT, path, str(offset)), encoding=None
            )
            at = offset
            async for data in chunks:
                process.stdin.write(data)
                await process.stdin.drain()
                at += len(data)
                written(at)
            process.stdin.write_eof()
            result = await process.wait()
        except (asyncssh.DisconnectError, asyncssh.ChannelOpenError, ConnectionError) as e:
            raise LinkLost(str(e)) from e
        except BrokenPipeError:
            result = await process.wait()
        if result.exit_status != 0:
            err = result.stderr if isinstance(result.stderr, bytes) else b""
            raise self._fail(path, Done(result.exit_status, b"", err))
        written(at)

    async def read_block(self, path: str, offset: int, length: int) -> bytes:
        assert offset % length == 0
        result = await self._sh(
            "dd", _BLOCK_SCRIPT, path, str(offset // length), str(length), limit=length
        )
        return result.stdout

    async def sha256(self, path: str) -> str:
        found = await self.exec_sha256(path)
        if found is not None:
            return found
        digest = hashlib.sha256()
        info = await self.stat(path)
        async for data in self.read(path, 0, info.size if info else 0):
            digest.update(data)
        return digest.hexdigest()

    async def finish(self, part: str, target: str, info: Info) -> None:
        stamp = time.strftime("%Y%m%d%H%M.%S", time.gmtime(info.mtime))
        result = await self._sh(
            "mv", _FINISH_SCRIPT, part, target, f"{perm_bits(info.mode):o}", stamp
        )
        if result.exit_status != 0:
            raise self._fail(target, result)

    async def remove(self, path: str) -> None:
        result = await self._sh(
            "rm",
            'if [ -d "$1" ] && [ ! -L "$1" ]; then rmdir -- "$1"; else rm -f -- "$1"; fi',
            path,
        )
        if result.exit_status != 0:
            raise self._fail(path, result)

    async def mkdir(self, path: str) -> None:
        result = await self._sh("mkdir", 'mkdir -p -- "$1"', path)
        if result.exit_status != 0:
            raise self._fail(path, result)

    async def set_mtime(self, path: str, mtime: int) -> None:
        stamp = time.strftime("%Y%m%d%H%M.%S", time.gmtime(mtime))
        result = await self._sh("touch", _TOUCH_SCRIPT, path, stamp)
        if result.exit_status != 0:
            raise self._fail(path, result)


def _parse_info(words: list[str], where: str) -> Info:
    try:
        kind, size, mtime, mode = words[0], int(words[1]), int(words[2]), int(words[3], 8)
    except (IndexError, ValueError):
        raise DevtuiError(f"{where}: the host's stat answer is not understood") from None
    if kind not in (KIND_FILE, KIND_DIR, KIND_LINK, KIND_OTHER):
        kind = KIND_OTHER
    return Info(kind, size, mtime, perm_bits(mode))


async def open_remote(
    host: str,
    conn: asyncssh.SSHClientConnection,
    posix: Callable[[], Awaitable[bool]],
    on_refused: Callable[[], None],
) -> SftpSide | ExecSide:
    """The host's side: SFTP, or exec channels (said through `on_refused`) where the server
    refuses the subsystem."""
    try:
        sftp = await conn.start_sftp_client()
    except asyncssh.ChannelOpenError as e:
        # A refused "sftp" subsystem request, on a connection that is otherwise alive.
        if conn.is_closed():
            raise LinkLost(str(e)) from e
        if not await posix():
            raise DevtuiError(
                f"{host} refuses SFTP and has no POSIX sh for the cat/dd fallback: "
                "cannot copy files there"
            ) from None
        on_refused()
        return ExecSide(host, conn, posix)
    except (asyncssh.DisconnectError, ConnectionError) as e:
        raise LinkLost(str(e)) from e
    return SftpSide(host, conn, posix, sftp)
