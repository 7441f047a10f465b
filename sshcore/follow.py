"""Following a remote log like `tail -F`, over the host's shared connection, that survives
rotation and reconnects.

The host runs a fixed sh script (FOLLOW_SCRIPT) with the path as one argument (Core.run
encodes every word, so the path is never shell text). It follows one file at a time with
`tail -c +OFFSET -f` and, before each file, prints a marker naming the file's inode and the
offset its bytes start at. So devtui always knows where it is in which file: after a dropped
link it asks to resume at that inode and offset, and finds the rest of a file that was
rotated meanwhile next to it (PATH.1, PATH.0, PATH.old). A file that is gone, or truncated,
starts again from its beginning: that is as far as the file allows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from .errors import DevtuiError
from .model import LOG_COMMAND_PREFIX, log_source_problem
from .session import HostState
from .visible_text import visible

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncssh

    from .remote_commands import OutputCallback
    from .session import HostStatus


class FollowedHost(Protocol):
    """What following a source needs of the core: a host's connection, whether it has a
    POSIX sh, a command run on it, and the state of its connection."""

    async def connection(self, name: str) -> asyncssh.SSHClientConnection: ...

    async def is_posix(self, name: str, conn: asyncssh.SSHClientConnection) -> bool: ...

    async def run(
        self, name: str, argv: Sequence[str] | str, on_output: OutputCallback | None = None
    ) -> int: ...

    def host_state(self, name: str) -> HostStatus: ...


LineCallback = Callable[[str], None]

_MARK = b"\0devtui-follow "
_LONGEST_LINE = 1024 * 1024  # a "line" longer than this is shown in pieces
_LONGEST_MARK = 64  # an inode and an offset: a longer "marker" is data
RETRY_DELAY = 1.0  # seconds between attempts to resume when the host is reconnecting

# $1 path, $2 inode and $3 offset to resume at (empty, 0 the first time), $4 lines to show
# first. Markers are NUL-framed: a text log never holds a NUL, so a line cannot fake one.
FOLLOW_SCRIPT = r"""p=$1; ino=$2; off=$3; n=$4
inode() { set -- $(ls -Lid -- "$1" 2>/dev/null); echo "${1:-}"; }
size() { s=$(wc -c < "$1" 2>/dev/null) || s=0; echo $((s)); }
cur=$(inode "$p")
if [ -n "$ino" ] && [ "$cur" != "$ino" ]; then
  for old in "$p.1" "$p.0" "$p.old"; do
    if [ "$(inode "$old")" = "$ino" ]; then tail -c +$((off + 1)) -- "$old"; break; fi
  done
fi
said=
while [ -z "$cur" ]; do
  [ -n "$said" ] || echo "$p: no such file yet; waiting for it" >&2
  said=1; sleep 1; cur=$(inode "$p")
done
sz=$(size "$p")
if [ "$cur" = "$ino" ]; then
  [ "$off" -le "$sz" ] || off=0
elif [ -z "$ino" ]; then
  last=$(tail -n "$n" -- "$p" | wc -c); off=$((sz - last)); [ "$off" -ge 0 ] || off=0
else
  off=0
fi
ino=$cur
while :; do
  printf '\000devtui-follow %s %s\000' "$ino" "$off"
  tail -c +$((off + 1)) -f -- "$p" & t=$!
  now=$ino
  while [ "$now" = "$ino" ]; do sleep 1; now=$(inode "$p"); done
  sleep 1
  kill "$t" 2>/dev/null; wait "$t" 2>/dev/null
  while [ -z "$now" ]; do sleep 1; now=$(inode "$p"); done
  ino=$now; off=0
done
"""


class LineReader:
    """Bytes from FOLLOW_SCRIPT (or a command) in, lines out; knows the inode and offset of
    the last complete line it passed on.

    Bounded whatever the host sends: a "line" longer than _LONGEST_LINE is passed on in
    pieces (NUL bytes or not), a marker longer than _LONGEST_MARK is data, and each byte is
    looked at about once however the data is split into chunks (a 64 MiB line with a NUL in
    it was once held whole and rescanned at every chunk)."""

    def __init__(self, on_line: LineCallback) -> None:
        self.on_line = on_line
        self.inode = ""
        self.offset = 0
        self._buffer = bytearray()
        self._scanned = 0  # the buffer's first bytes hold no newline and no marker start

    def feed(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        scan = self._scanned
        while True:
            newline = buffer.find(b"\n", scan)
            nul = buffer.find(b"\0", scan, len(buffer) if newline == -1 else newline)
            if nul != -1:
                end = _marker_end(buffer, nul)
                if end is None:  # a NUL that starts no marker: data
                    scan = nul + 1
                    continue
                if end < 0:  # a marker still on its way
                    waiting = nul
                    break
                if nul > start:  # the last line of the file before, without its newline
                    self._emit(buffer[start:nul])
                self._mark(bytes(buffer[nul + len(_MARK) : end]))
                start = scan = end + 1
                continue
            if newline != -1:
                self._emit(buffer[start:newline])
                self.offset += newline + 1 - start
                start = scan = newline + 1
                continue
            waiting = scan = len(buffer)
            break
        while waiting - start > _LONGEST_LINE:  # no newline in sight: pass it on in pieces
            self._emit(buffer[start : start + _LONGEST_LINE])
            self.offset += _LONGEST_LINE
            start += _LONGEST_LINE
        del buffer[:start]
        self._scanned = max(0, min(scan, waiting) - start)

    def _mark(self, fields: bytes) -> None:
        words = fields.split()
        if len(words) == 2 and words[1].isdigit() and len(words[1]) <= 20:
            self.inode, self.offset = words[0].decode("ascii", "replace"), int(words[1])

    def flush(self) -> None:
        """Pass on a last line without its newline (the source ended)."""
        if self._buffer:
            self._emit(self._buffer)
            self._buffer.clear()
        self._scanned = 0

    def drop_partial(self) -> None:
        """Forget bytes after the last newline: a resume sends that line again, whole."""
        self._buffer.clear()
        self._scanned = 0

    def _emit(self, raw: bytes | bytearray) -> None:
        # A log line is the host's text: escapes shown, never obeyed by our terminal.
        self.on_line(visible(bytes(raw).decode("utf-8", "replace").rstrip("\r")))


def _marker_end(buffer: bytearray, at: int) -> int | None:
    """Where the marker starting at `at` ends (its closing NUL); -1 when it may still be
    one but has not all arrived; None when the NUL at `at` starts no marker."""
    head = bytes(buffer[at : at + len(_MARK)])
    if head != _MARK:
        return -1 if len(head) < len(_MARK) and _MARK.startswith(head) else None
    fields = at + len(_MARK)
    end = buffer.find(b"\0", fields, fields + _LONGEST_MARK + 1)
    if end != -1:
        return end
    return -1 if len(buffer) - fields <= _LONGEST_MARK else None


async def follow(
    core: FollowedHost,
    host: str,
    source: str,
    on_line: LineCallback,
    lines: int = 10,
    on_notice: LineCallback | None = None,
) -> None:
    """Stream `source` (an absolute path on the host, or "cmd:COMMAND") line by line until
    cancelled. A dropped link is waited out and the file resumed where it was; a command is
    started again."""
    problem = log_source_problem(source)
    if problem:
        raise DevtuiError(f"{source!r} {problem}")
    if lines < 0:
        raise DevtuiError("the number of lines must be 0 or more")
    notice = on_notice or (lambda text: None)
    reader = LineReader(on_line)
    errors = LineReader(lambda text: notice(f"{host}: {text}"))
    command = source[len(LOG_COMMAND_PREFIX) :] if source.startswith(LOG_COMMAND_PREFIX) else None

    def output(label: str, data: bytes) -> None:
        (reader if label == "stdout" else errors).feed(data)

    conn = await core.connection(host)
    if command is None and not await core.is_posix(host, conn):
        raise DevtuiError(f"{host}: following a file needs a POSIX shell (sh) on the host")
    while True:
        if command is not None:
            argv: list[str] | str = command
        else:
            argv = ["sh", "-c", FOLLOW_SCRIPT, "sh", source, reader.inode, str(reader.offset)]
            argv.append(str(lines))
        try:
            status = await core.run(host, argv, output)
        except DevtuiError as e:
            if core.host_state(host).state in (HostState.FAILED, HostState.IDLE):
                raise
            reader.drop_partial()
            notice(f"{host}: {e}; resuming when the connection is back")
            await asyncio.sleep(RETRY_DELAY)
            continue
        reader.flush()
        errors.flush()
        if command is not None and status == 0:
            return  # a command that ends (cat, journalctl without -f) ends its source
        raise DevtuiError(f"{host}: following {source} stopped (exit status {status})")
