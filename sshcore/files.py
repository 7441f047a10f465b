"""`devtui cp`: copy files to or from a host over its shared connection, with resume,
a SHA-256 check and progress.

A copy writes TARGET.devtui-part and renames it to TARGET once complete and verified, so the
final name never holds a half-written file. Run again after a drop or a cancel, it continues
from the part file (after comparing the hash of its last whole block with the source's); a
link cut in the middle is healed (the core reconnects) and the copy goes on by itself.

Paths: `HOST:PATH` when HOST is a saved host; `HOST:` is the remote home and `~`/`~/x` work.
Anything else is local. A one-letter prefix (`C:\\x`) is always a Windows drive, a prefix with
a slash or backslash is a local path, and `NAME:...` with NAME not saved is refused (write
`./NAME:...` for a local file whose name holds a colon).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ntpath
import os
import sys
import time
from collections.abc import AsyncGenerator, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .errors import DevtuiError, UsageError
from .file_exec import ExecSide, open_remote
from .file_progress import (
    CopyProgress,
    CopyResult,
    FileCallback,
    Meter,
    NoticeCallback,
    ProgressCallback,
    StreamHash,
    run_copies,
)
from .file_sides import (
    EXEC_HASH_MIN,
    HASH_BLOCK,
    KIND_DIR,
    KIND_FILE,
    KIND_LINK,
    Info,
    LaterHash,
    LinkLost,
    LocalSide,
    SftpSide,
    Side,
    unwanted,
)
from .visible_text import visible

if TYPE_CHECKING:
    import asyncssh

    from .config import Config

PART_SUFFIX = ".devtui-part"
_MAX_HEALS = 30  # reconnects within one copy before it gives up
_MAX_DEPTH = 64  # -L on a link loop ends here


class FileHost(Protocol):
    """What copying needs of the core: the saved hosts, a host's live connection (after a
    drop, the healed one) and whether it has a POSIX sh."""

    config: Config

    async def connection(self, name: str) -> asyncssh.SSHClientConnection: ...

    async def is_posix(self, name: str, conn: asyncssh.SSHClientConnection) -> bool: ...


@dataclass(frozen=True)
class Location:
    """A path on this machine (host None) or on a saved host."""

    host: str | None
    path: str

    def __str__(self) -> str:
        return self.path if self.host is None else f"{self.host}:{self.path}"


def parse_location(text: str, hosts: Collection[str]) -> Location:
    """`HOST:PATH` for a saved HOST (longer than one letter), else a local path."""
    head, colon, rest = text.partition(":")
    if not colon or not head or "/" in head or "\\" in head:
        return Location(None, text)
    if len(head) == 1 and head.isalpha():
        return Location(None, text)  # C:\x is a Windows drive, never a host named C
    if head not in hosts:
        raise UsageError(
            f"no saved host named {visible(head)!r} (see: devtui hosts list); "
            f"for a local file write ./{visible(text)}"
        )
    return Location(head, rest)


def remote_path(path: str) -> str:
    """A remote path as SFTP and the shell take it: relative paths start in the home."""
    if path in ("", "~", "~/"):
        return "."
    if path.startswith("~/"):
        return path[2:]
    return path


# -- the ends ----------------------------------------------------------------------------------


class Endpoint:
    """One end of a copy: the local disk, or a host whose side is reopened after a drop."""

    def __init__(self, core: FileHost, host: str | None, notice: NoticeCallback) -> None:
        self.core = core
        self.host = host
        self.notice = notice
        self._side: Side | None = LocalSide() if host is None else None
        self._conn: asyncssh.SSHClientConnection | None = None
        self._refused_seen = False
        self._refused_said = False
        self._lock = asyncio.Lock()  # several files in flight open (and heal) one side

    def show(self, path: str) -> str:
        return path if self.host is None else f"{self.host}:{path}"

    async def side(self) -> Side:
        async with self._lock:
            return await self._open()

    async def _open(self) -> Side:
        if self._side is None:
            assert self.host is not None
            conn = await self.core.connection(self.host)
            self._conn = conn
            host = self.host

            async def posix() -> bool:
                return await self.core.is_posix(host, conn)

            self._side = await open_remote(host, conn, posix, self._refused)
        return self._side

    def _refused(self) -> None:
        self._refused_seen = True

    def announce(self) -> None:
        """Say once, when the first bytes are about to move, that the host refuses SFTP (not
        before: a bad input is one line, with no notice in front of it)."""
        if self._refused_seen and not self._refused_said:
            self._refused_said = True
            self.notice(f"{self.host} refuses SFTP: copying through cat/dd over exec channels")

    async def heal(self, failed: Side | None) -> None:
        """After a drop seen on side `failed`: wait for the core's healed connection
        (ConnectError if it fails for good). A side another copy healed already is kept."""
        if self.host is None:
            return
        async with self._lock:
            if failed is not None and self._side is not None and self._side is not failed:
                return
            await self._heal()

    async def _heal(self) -> None:
        assert self.host is not None
        old, self._side = self._conn, None
        deadline = time.monotonic() + 300
        while True:
            conn = await self.core.connection(self.host)
            if conn is not old or not conn.is_closed():
                return
            if time.monotonic() > deadline:
                raise DevtuiError(f"{self.host}: the connection did not come back")
            await asyncio.sleep(0.1)  # the session has not seen the drop yet

    async def close(self) -> None:
        side = self._side
        if isinstance(side, SftpSide):
            side.sftp.exit()


# -- planning ----------------------------------------------------------------------------------


@dataclass
class _Plan:
    dirs: list[str] = field(default_factory=list)  # to create on the target side, in order
    files: list[tuple[str, str, Info]] = field(default_factory=list)  # source, target, info


async def _expand(
    src: Side,
    dst: Side,
    path: str,
    target: str,
    plan: _Plan,
    follow: bool,
    notice: NoticeCallback,
    depth: int = 0,
) -> None:
    if depth > _MAX_DEPTH:
        raise DevtuiError(f"{visible(src.label + path)}: nested too deep (a symlink loop?)")
    plan.dirs.append(target)
    for entry in sorted(await src.listdir(path), key=lambda e: e.name):
        child, child_target = src.join(path, entry.name), dst.join(target, entry.name)
        info = entry.info
        if info.kind == KIND_LINK:
            if not follow:
                notice(f"skipped symlink {visible(src.label + child)} (-L follows links)")
                continue
            found = await src.stat(child)
            if found is None:
                notice(f"skipped broken symlink {visible(src.label + child)}")
                continue
            info = found
        if info.kind == KIND_DIR:
            await _expand(src, dst, child, child_target, plan, follow, notice, depth + 1)
        elif info.kind == KIND_FILE:
            plan.files.append((child, child_target, info))
        else:
            notice(f"skipped {visible(src.label + child)}: not a regular file")


async def _own_name(side: Side, path: str, loc: Location) -> str:
    """The name a source takes in a destination folder: its own, also when it is given as
    `.`, `..` or `dir/..` (`cp -r .. box:x` must land in x/NAME, never in x/..)."""
    name = side.basename(path)
    if name not in ("", ".", ".."):
        return name
    name = side.basename(await side.absolute(path))
    if name in ("", ".", ".."):
        raise DevtuiError(
            f"{visible(str(loc))}: the root has no name to copy it under; name a folder in it"
        )
    return name


async def _refuse_a_different_target(dst: Side, target: str, info: Info, shown: str) -> None:
    """For a file named as a source, before anything is written: a target of another size
    (or a folder) is refused now, not after the files before it are copied. One of the
    same size, and the files a folder holds (`-r`), are compared when their turn comes."""
    existing = await dst.stat(target)
    if existing is None:
        return
    if existing.kind == KIND_DIR:
        raise DevtuiError(f"{visible(shown)} is a directory")
    if existing.size != info.size:
        raise DevtuiError(f"{visible(shown)} exists and differs; --force replaces it")


def same_file_key(path: str, local: bool, platform: str = sys.platform) -> str:
    """`path` as the file system tells files apart: on this machine under Windows and macOS
    (case-insensitive by default) `a/X` and `a/x` are one file; a host's paths as they are."""
    if not local:
        return path
    if platform == "win32":
        return ntpath.normcase(path)
    return path.lower() if platform == "darwin" else path


def _refuse_collisions(plan: _Plan, end: Endpoint) -> None:
    """Two sources that would land on one target (`cp a/x b/x box:dir`): refused before
    anything is written, not left to race for one part file."""
    seen: dict[str, str] = {}
    for spath, target, _ in plan.files:
        key = same_file_key(target, end.host is None)
        if key in seen:
            raise DevtuiError(
                f"{visible(end.show(target))}: both {visible(seen[key])} and "
                f"{visible(spath)} would be copied there"
            )
        seen[key] = spath
    for folder in plan.dirs:
        key = same_file_key(folder, end.host is None)
        if key in seen:
            raise DevtuiError(
                f"{visible(end.show(folder))}: a folder and the file {visible(seen[key])} "
                "would both be copied there"
            )


# -- one file ----------------------------------------------------------------------------------


async def _resume_point(
    src: Side, spath: str, dst: Side, part: str, size: int, notice: NoticeCallback
) -> int:
    info = await dst.stat(part, follow=False)
    if info is None or info.kind != KIND_FILE or info.size > size:
        return 0
    # The last `rewind` bytes may hold holes (writes in flight when the link went): step back
    # over them to a whole block, and check that block against the source.
    offset = max(0, info.size - dst.rewind) // HASH_BLOCK * HASH_BLOCK
    if offset == 0:
        return 0
    theirs, ours = await asyncio.gather(
        src.read_block(spath, offset - HASH_BLOCK, HASH_BLOCK),
        dst.read_block(part, offset - HASH_BLOCK, HASH_BLOCK),
    )
    if hashlib.sha256(theirs).digest() != hashlib.sha256(ours).digest():
        notice(f"{visible(dst.label + part)} does not match the source: starting over")
        return 0
    return offset


async def copy_one(
    source: Endpoint,
    spath: str,
    dest: Endpoint,
    target: str,
    info: Info,
    *,
    index: int = 1,
    meter: Meter | None = None,
    restart: bool = False,
    verify: bool = True,
    force: bool = False,
    notice: NoticeCallback = lambda _: None,
) -> CopyResult:
    """Copy one regular file: resume from its part file, heal drops, verify, rename."""
    meter = meter or Meter(None, 1, info.size)
    shown_src, shown_dst = source.show(spath), dest.show(target)
    part = target + PART_SUFFIX
    start = time.monotonic()
    heals = 0
    first = True
    src: Side | None = None
    dst: Side | None = None
    resumed_from = 0
    sent = 0  # bytes that went over the link, those before a drop too

    def count(more: int) -> None:
        nonlocal sent
        sent += more

    while True:
        try:
            src, dst = await source.side(), await dest.side()
            if first:
                existing = await dst.stat(target)
                if existing is not None:
                    if existing.kind == KIND_DIR:
                        raise DevtuiError(f"{visible(shown_dst)} is a directory")
                    if not force:
                        ours = await src.sha256(spath) if existing.size == info.size else None
                        same = ours is not None and ours == await dst.sha256(target)
                        if not same:
                            raise DevtuiError(
                                f"{visible(shown_dst)} exists and differs; --force replaces it"
                            )
                        meter.done_before += info.size
                        return CopyResult(
                            shown_src,
                            shown_dst,
                            info.size,
                            time.monotonic() - start,
                            ours,
                            0,
                            0,
                            unchanged=True,
                        )
                offset = (
                    0 if restart else await _resume_point(src, spath, dst, part, info.size, notice)
                )
                resumed_from = offset
                first = False
            else:
                offset = await _resume_point(src, spath, dst, part, info.size, notice)
            # The local side is hashed as its bytes pass (no second read); a host's source is
            # hashed by its own tool beside the transfer, a host's target after it.
            stream = StreamHash() if verify and not (src.remote and dst.remote) else None
            if stream is not None and offset:
                stream.feed_file(spath if not src.remote else part, offset)
            src_hash = asyncio.ensure_future(src.sha256(spath)) if verify and src.remote else None
            if src_hash is not None:
                src_hash.add_done_callback(unwanted)
            # A host's target is hashed by a command started now, beside the transfer (its
            # login shell's start is paid meanwhile); small files are read back instead.
            later = None
            if verify and info.size >= EXEC_HASH_MIN and isinstance(dst, (SftpSide, ExecSide)):
                # Over SFTP the host hashes the part file as the server confirms its blocks.
                follow = None
                if isinstance(dst, SftpSide):
                    await dst.touch(part)  # the hash opens it before the writer does
                    follow = (offset, info.size, dst.write_len)
                later = asyncio.ensure_future(dst.hash_later(part, follow))
                later.add_done_callback(unwanted)
            source.announce()
            dest.announce()
            try:
                await _transfer(
                    count,
                    later,
                    stream,
                    src,
                    spath,
                    dst,
                    part,
                    offset,
                    info.size,
                    meter,
                    index,
                    shown_src,
                    shown_dst,
                    resumed_from,
                )
                digest = None
                if verify:
                    passed = await stream.hexdigest() if stream is not None else None
                    digest = passed if src_hash is None else await src_hash
                    if src.remote and passed:
                        theirs = passed
                    elif later is not None and (pending := await later) is not None:
                        theirs = await pending.result()
                        if theirs != digest:  # a failed tool must not condemn a good file
                            theirs = await dst.sha256(part)
                    else:
                        theirs = await dst.sha256(part)
                    if digest != theirs:
                        await dst.remove(part)
                        raise DevtuiError(
                            f"{visible(shown_dst)}: SHA-256 differs from the source after the "
                            "copy (the source changed?); removed the part file, nothing replaced"
                        )
            finally:
                for job in (src_hash, later):
                    if job is not None and not job.done():
                        job.cancel()
                if (
                    later is not None
                    and later.done()
                    and not later.cancelled()
                    and later.exception() is None
                    and (unused := later.result()) is not None
                ):
                    unused.close()  # hashed already, or never told to: end it
                if stream is not None:
                    stream.close()
            await dst.finish(part, target, info)
            meter.report(shown_src, shown_dst, index, info.size, info.size, resumed_from, True)
            meter.done_before += info.size
            return CopyResult(
                shown_src,
                shown_dst,
                info.size,
                time.monotonic() - start,
                digest,
                resumed_from,
                sent,
            )
        except LinkLost as e:
            heals += 1
            if heals > _MAX_HEALS:
                raise DevtuiError(
                    f"{visible(shown_dst)}: the link kept dropping ({visible(str(e))})"
                ) from None
            notice(f"link lost during {visible(shown_src)}: resuming after the reconnect")
            await source.heal(src)
            await dest.heal(dst)


async def _transfer(
    count: Callable[[int], None],
    later: asyncio.Future[LaterHash | None] | None,
    stream: StreamHash | None,
    src: Side,
    spath: str,
    dst: Side,
    part: str,
    offset: int,
    size: int,
    meter: Meter,
    index: int,
    shown_src: str,
    shown_dst: str,
    resumed: int,
) -> None:
    last = offset

    def written(done: int) -> None:
        nonlocal last
        meter.sent += done - last
        count(done - last)
        last = done
        meter.report(shown_src, shown_dst, index, done, size, resumed, False)
        if later is not None and later.done() and not later.exception():
            pending = later.result()
            if pending is not None:
                pending.advance(done)

    chunks = src.read(spath, offset, size, dst.write_len)

    async def tapped() -> AsyncGenerator[bytes, None]:
        async for data in chunks:
            if stream is not None:
                await stream.feed(data)
            yield data

    flow = tapped()
    try:
        await dst.write(part, offset, flow, written)
    finally:
        await flow.aclose()
        await chunks.aclose()  # type: ignore[attr-defined]


# -- many files --------------------------------------------------------------------------------


async def copy_files(
    core: FileHost,
    sources: Sequence[str],
    dest: str,
    *,
    recursive: bool = False,
    follow_links: bool = False,
    restart: bool = False,
    verify: bool = True,
    force: bool = False,
    on_progress: ProgressCallback | None = None,
    on_file: FileCallback | None = None,
    on_notice: NoticeCallback | None = None,
) -> list[CopyResult]:
    """Copy SOURCES to DEST as `devtui cp` does (each `HOST:PATH` or a local path).

    Cancel the task to stop: the part files stay, and the same call later resumes them.
    Raises DevtuiError (one line) for a bad input, before anything is written; a target
    that exists is compared when its turn comes, except that one of another size than a file
    named as a source is refused at once.
    """
    notice = on_notice or (lambda _: None)
    hosts = core.config.hosts
    locs = [parse_location(s, hosts) for s in sources]
    to = parse_location(dest, hosts)
    if not locs:
        raise UsageError("nothing to copy: devtui cp SRC... DST")
    if len({loc.host for loc in locs}) != 1:
        raise UsageError("all sources must be on one side (one host, or this machine)")
    source = Endpoint(core, locs[0].host, notice)
    target_end = Endpoint(core, to.host, notice)
    try:
        return await _copy_files(
            source,
            target_end,
            locs,
            to,
            recursive,
            follow_links,
            restart,
            verify,
            force,
            on_progress,
            on_file,
            notice,
        )
    finally:
        await source.close()
        await target_end.close()


async def _copy_files(
    source: Endpoint,
    target_end: Endpoint,
    locs: list[Location],
    to: Location,
    recursive: bool,
    follow: bool,
    restart: bool,
    verify: bool,
    force: bool,
    on_progress: ProgressCallback | None,
    on_file: FileCallback | None,
    notice: NoticeCallback,
) -> list[CopyResult]:
    src, dst = await source.side(), await target_end.side()
    dest_path = to.path if to.host is None else remote_path(to.path)
    if to.host is None:
        dest_path = os.path.expanduser(dest_path)
    dest_info = await dst.stat(dest_path)
    into_dir = dest_info is not None and dest_info.kind == KIND_DIR
    if not into_dir and len(locs) > 1:
        raise DevtuiError(f"{visible(str(to))}: not a directory (several sources)")
    if dest_info is None:
        parent = dst.dirname(dest_path)
        parent_info = await dst.stat(parent)
        if parent_info is None or parent_info.kind != KIND_DIR:
            raise DevtuiError(f"{visible(str(to))}: its directory does not exist")
    plan = _Plan()
    for loc in locs:
        spath = loc.path if loc.host is None else remote_path(loc.path)
        if loc.host is None:
            spath = os.path.expanduser(spath)
        info = await src.stat(spath)
        if info is None:
            raise DevtuiError(f"{visible(str(loc))}: no such file or directory")
        target = dst.join(dest_path, await _own_name(src, spath, loc)) if into_dir else dest_path
        if info.kind == KIND_DIR:
            if not recursive:
                raise DevtuiError(f"{visible(str(loc))} is a directory (use -r)")
            if dest_info is not None and not into_dir:
                raise DevtuiError(f"{visible(str(to))} exists and is not a directory")
            await _expand(src, dst, spath, target, plan, follow, notice)
        elif info.kind == KIND_FILE:
            if not force:
                await _refuse_a_different_target(dst, target, info, target_end.show(target))
            plan.files.append((spath, target, info))
        else:
            raise DevtuiError(f"{visible(str(loc))}: not a regular file")
    _refuse_collisions(plan, target_end)
    for path in plan.dirs:
        await dst.mkdir(path)
    meter = Meter(on_progress, len(plan.files), sum(i.size for _, _, i in plan.files))
    jobs = [
        (
            info.size,
            functools.partial(
                copy_one,
                source,
                spath,
                target_end,
                target,
                info,
                index=index,
                meter=meter,
                restart=restart,
                verify=verify,
                force=force,
                notice=notice,
            ),
        )
        for index, (spath, target, info) in enumerate(plan.files, 1)
    ]
    return await run_copies(jobs, on_file)


__all__ = [
    "CopyProgress",
    "CopyResult",
    "Location",
    "copy_files",
    "parse_location",
]
