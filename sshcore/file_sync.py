"""`devtui sync SRC DST`: make DST like SRC, one way, like `rsync -a` (one side is a host).

A file is sent when its size or mtime (whole seconds) differ; when only the mtime does, the
two SHA-256 decide (the same content only gets the mtime). Every sent file goes through
copy_one: part file, check, rename, and the source's mode and mtime, so the next sync sends
nothing. Permission bits (rwx only) that differ alone are set, not sent. Directories get
their source's mode and mtime once their contents are done (an existing DEST itself keeps
its own mode: it may be a home directory, whose mode sshd checks).
A host with a POSIX sh is listed with one `find -printf` command (one round trip for the
whole tree); without -printf, or without sh, the listing walks SFTP directories.

Excludes are gitignore patterns (pathspec), matched against paths relative to the synced
directories on both sides, so --delete never removes what is excluded (nor a directory that
still holds such a file: said once, as rsync does). Only LOCAL_DIR's
top-level .gitignore is read. Symlinks are not synced (said once per sync).
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncssh
import pathspec

from .errors import DevtuiError, UsageError
from .file_exec import ExecSide
from .file_progress import Meter, NoticeCallback, ProgressCallback, run_copies
from .file_sides import (
    KIND_DIR,
    KIND_FILE,
    KIND_LINK,
    Info,
    LocalSide,
    SftpSide,
    Side,
    _sftp_errors,
    bounded,
    check_name,
    local_info,
    perm_bits,
)
from .files import (
    PART_SUFFIX,
    Endpoint,
    FileHost,
    copy_one,
    parse_location,
    remote_path,
)
from .remote_shell import sh_script
from .visible_text import visible

ADD, CHANGE, DELETE, TOUCH, MODE = "add", "change", "delete", "touch", "mode"

# $1 directory. One record per path below it: TYPE SIZE MTIME MODE RELPATH NUL.
_FIND_SCRIPT = r"""cd -- "$1" || exit 1
find . -maxdepth 0 -printf '' >/dev/null 2>&1 || exit 98
exec find . -mindepth 1 -printf '%y %s %T@ %m %P\0'"""
_NO_PRINTF = 98
# $1 directory, then PATH MODE STAMP per path below it (MODE octal, STAMP as touch -t takes
# it in UTC; either may be empty). One command for many paths where SFTP is refused.
_ATTRS_SCRIPT = r"""cd -- "$1" || exit 1
shift; s=0
while [ $# -ge 3 ]; do
  p=$1; case $p in -*) p=./$p;; esac
  if [ -n "$2" ]; then chmod "$2" "$p" || s=1; fi
  if [ -n "$3" ]; then TZ=UTC0 touch -t "$3" "$p" || s=1; fi
  shift 3
done
exit $s"""
# The bootstrap decodes each word with a shell loop: slow for long words, linear in their
# number. A batch stays far below Linux's 128 KiB for the one `sh -c` word the command is.
_ATTRS_BATCH, _ATTRS_BYTES = 300, 16 * 1024
_KINDS = {"f": KIND_FILE, "d": KIND_DIR, "l": KIND_LINK}


@dataclass(frozen=True)
class SyncChange:
    """One thing a sync does (or would do): add, change, touch (mtime only), mode
    (permission bits only) or delete."""

    action: str
    path: str  # relative, with / separators; a directory ends with /, DEST itself is ./
    size: int  # bytes of a file added, changed or deleted; 0 otherwise
    mode: int | None = None  # the permission bits a mode change sets


@dataclass(frozen=True)
class SyncResult:
    """What a sync did (or, with dry_run, would do)."""

    changes: list[SyncChange]
    sent: int  # bytes over the link
    seconds: float
    dry_run: bool


class _Filter:
    """gitignore patterns over relative paths; a directory's exclusion covers its contents."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.spec = pathspec.GitIgnoreSpec.from_lines(lines) if lines else None
        self.dirs: dict[str, bool] = {}

    def excluded(self, rel: str, is_dir: bool) -> bool:
        if self.spec is None:
            return False
        parent = rel.rpartition("/")[0]
        if parent and self._dir_excluded(parent):
            return True
        return self._dir_excluded(rel) if is_dir else bool(self.spec.match_file(rel))

    def _dir_excluded(self, rel: str) -> bool:
        known = self.dirs.get(rel)
        if known is None:
            parent = rel.rpartition("/")[0]
            assert self.spec is not None
            known = bool(parent and self._dir_excluded(parent)) or bool(
                self.spec.match_file(rel + "/")
            )
            self.dirs[rel] = known
        return known


Tree = dict[str, Info]  # relative path -> what is there


async def _local_tree(root: str) -> Tree:
    tree: Tree = {}

    def walk(path: str, prefix: str) -> None:
        try:
            it = os.scandir(path)
        except OSError as e:
            raise DevtuiError(f"{visible(path)}: {e.strerror}") from None
        with it:
            for item in it:
                try:
                    st = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                rel = prefix + item.name
                info = local_info(st)
                tree[rel] = info
                if info.kind == KIND_DIR:
                    walk(item.path, rel + "/")

    await asyncio.to_thread(walk, root, "")
    return tree


async def _remote_tree(side: Side, root: str) -> Tree:
    if isinstance(side, (SftpSide, ExecSide)):
        # The listing goes beside the POSIX check: each command pays the login shell's
        # start, and that was half the time of an unchanged sync.
        there = await side.command_path(root)  # where SFTP starts is not always the home
        result = await side.beside_posix(
            bounded(side.conn, sh_script(_FIND_SCRIPT, there), 1 << 30, 600.0, "the listing")
        )
        if result is None:
            return await _walk_tree(side, root)
        if result.exit_status == 0:
            return _parse_find(result.stdout, f"{side.host}:{root}")
        if result.exit_status != _NO_PRINTF:
            err = result.stderr.decode(errors="replace").strip()
            raise DevtuiError(f"{side.host}:{visible(root)}: cannot list it: {visible(err)}")
    return await _walk_tree(side, root)


async def _walk_tree(side: Side, root: str) -> Tree:
    tree: Tree = {}

    async def walk(path: str, prefix: str) -> None:
        for entry in await side.listdir(path):
            rel = prefix + entry.name
            tree[rel] = entry.info
            if entry.info.kind == KIND_DIR:
                await walk(side.join(path, entry.name), rel + "/")

    await walk(root, "")
    return tree


def _parse_find(data: bytes, where: str) -> Tree:
    tree: Tree = {}
    for record in data.split(b"\0"):
        if not record:
            continue
        try:
            kind, size, mtime, mode, rel = record.decode("utf-8", "surrogateescape").split(" ", 4)
            info = Info(
                _KINDS.get(kind, "other"), int(size), int(float(mtime)), int(mode, 8) & 0o777
            )
        except ValueError:
            raise DevtuiError(f"{visible(where)}: the listing is not understood") from None
        for part in rel.split("/"):
            check_name(part, where)
        tree[rel] = info
    return tree


async def sync_dirs(
    core: FileHost,
    source: str,
    dest: str,
    *,
    excludes: Sequence[str] = (),
    gitignore: bool = True,
    delete: bool = False,
    dry_run: bool = False,
    verify: bool = True,
    on_progress: ProgressCallback | None = None,
    on_notice: NoticeCallback | None = None,
) -> SyncResult:
    """Make directory DEST like SOURCE (one `HOST:DIR`, one local directory)."""
    notice = on_notice or (lambda _: None)
    start = time.monotonic()
    src_loc = parse_location(source, core.config.hosts)
    dst_loc = parse_location(dest, core.config.hosts)
    if (src_loc.host is None) == (dst_loc.host is None):
        raise UsageError("sync needs one local directory and one HOST:DIR")
    src_end = Endpoint(core, src_loc.host, notice)
    dst_end = Endpoint(core, dst_loc.host, notice)
    try:
        src, dst = await src_end.side(), await dst_end.side()
        src_root = _root(src_loc.host, src_loc.path)
        dst_root = _root(dst_loc.host, dst_loc.path)
        info = await src.stat(src_root)
        if info is None or info.kind != KIND_DIR:
            raise DevtuiError(f"{visible(source)}: not a directory")
        dinfo = await dst.stat(dst_root)
        if dinfo is not None and dinfo.kind != KIND_DIR:
            raise DevtuiError(f"{visible(dest)}: exists and is not a directory")
        lines = list(excludes)
        local_root = src_root if src_loc.host is None else dst_root
        if gitignore:
            try:
                with open(os.path.join(local_root, ".gitignore"), encoding="utf-8") as f:
                    lines = f.read().splitlines() + lines
            except FileNotFoundError:
                pass
        rules = _Filter(lines)
        src_tree, dst_tree = await asyncio.gather(
            _tree(src, src_root), _tree(dst, dst_root) if dinfo is not None else _empty()
        )
        return await _apply(
            src_end,
            src,
            src_root,
            src_tree,
            dst_end,
            dst,
            dst_root,
            dst_tree,
            info,
            dinfo,
            rules,
            delete,
            dry_run,
            verify,
            on_progress,
            notice,
            start,
        )
    finally:
        await src_end.close()
        await dst_end.close()


async def _empty() -> Tree:
    return {}


async def _tree(side: Side, root: str) -> Tree:
    return await (_remote_tree(side, root) if side.remote else _local_tree(root))


def _root(host: str | None, path: str) -> str:
    return os.path.expanduser(path) if host is None else remote_path(path)


Attrs = tuple[str, int | None, int | None]  # relative path ("" for the root), mode, mtime


def modes_known(src: Side, dst: Side, windows: bool = os.name == "nt") -> bool:
    """Whether permission bits mean something on both sides: not with a local side on
    Windows, which has none."""
    return not (windows and not (src.remote and dst.remote))


def dir_mode(mode: int) -> int:
    """A folder's bits as synced: its owner keeps rwx (a folder without them cannot be
    entered or written, by the next sync either; a listing that could not tell the mode
    reads 0644)."""
    return mode | 0o700


async def _apply(
    src_end: Endpoint,
    src: Side,
    src_root: str,
    src_tree: Tree,
    dst_end: Endpoint,
    dst: Side,
    dst_root: str,
    dst_tree: Tree,
    src_info: Info,
    dst_info: Info | None,  # None: DEST is made
    rules: _Filter,
    delete: bool,
    dry_run: bool,
    verify: bool,
    on_progress: ProgressCallback | None,
    notice: NoticeCallback,
    start: float,
) -> SyncResult:
    changes: list[SyncChange] = []
    sends: list[tuple[str, Info, str]] = []  # rel, info, action
    dirs: list[str] = []  # to make
    synced_dirs: list[tuple[str, Info]] = []  # whose mode and mtime follow the source's
    file_attrs: list[Attrs] = []
    links = 0
    # Windows has no permission bits (local_mode makes sane ones up for a copy): with a
    # local side there, modes are neither compared nor set, or every sync would list them.
    modes = modes_known(src, dst)
    for rel, info in sorted(src_tree.items()):
        if rules.excluded(rel, info.kind == KIND_DIR):
            continue
        there = dst_tree.get(rel)
        if info.kind == KIND_LINK:
            links += 1
        elif info.kind == KIND_DIR:
            synced_dirs.append((rel, info))
            if there is None:
                dirs.append(rel)
                changes.append(SyncChange(ADD, rel + "/", 0))
            elif there.kind != KIND_DIR:
                raise DevtuiError(
                    f"{visible(dst.label + dst.join(dst_root, rel))}: not a directory"
                )
            elif modes and there.mode != dir_mode(info.mode):
                changes.append(SyncChange(MODE, rel + "/", 0, dir_mode(info.mode)))
        elif info.kind == KIND_FILE:
            if there is None:
                sends.append((rel, info, ADD))
                continue
            if there.kind != KIND_FILE:
                raise DevtuiError(f"{visible(dst.label + dst.join(dst_root, rel))}: not a file")
            if there.size != info.size:
                sends.append((rel, info, CHANGE))
                continue
            mtime = None
            if there.mtime != info.mtime:
                same = await src.sha256(src.join(src_root, rel)) == await dst.sha256(
                    dst.join(dst_root, rel)
                )
                if not same:
                    sends.append((rel, info, CHANGE))  # copy_one sets the mode too
                    continue
                mtime = info.mtime
                changes.append(SyncChange(TOUCH, rel, 0))
            mode = info.mode if modes and there.mode != info.mode else None
            if mode is not None:
                changes.append(SyncChange(MODE, rel, 0, mode))
            if mode is not None or mtime is not None:
                file_attrs.append((rel, mode, mtime))
    if links:
        notice(f"skipped {links} symlink{'s' if links != 1 else ''} (sync copies files only)")
    changes += [SyncChange(action, rel, info.size) for rel, info, action in sends]
    gone = _deletions(dst_tree, src_tree, rules, notice) if delete else []
    changes += [  # a directory's size is its inode's, not what it holds: none shown
        SyncChange(DELETE, rel + "/", 0)
        if info.kind == KIND_DIR
        else SyncChange(DELETE, rel, info.size)
        for rel, info in gone
    ]
    # A directory whose entries come or go gets a new mtime: it is set back after them.
    touched = {rel.rpartition("/")[0] for rel in dirs}
    touched.update(rel.rpartition("/")[0] for rel, _, _ in sends)
    touched.update(rel.rpartition("/")[0] for rel, _ in gone)
    dir_attrs: list[Attrs] = []
    made = set(dirs)
    # Deepest first, DEST itself ("") last: a parent's mode could take away its search bit.
    for rel, info in sorted([("", src_info), *synced_dirs], reverse=True):
        there = dst_tree.get(rel) if rel else dst_info
        if there is None or rel in made:  # made now: umask's mode, today's mtime
            dir_attrs.append((rel, dir_mode(info.mode) if modes else None, info.mtime or None))
            continue
        # An existing DEST keeps its mode (a home directory's, which sshd checks).
        changed = modes and rel and there.mode != dir_mode(info.mode)
        mode = dir_mode(info.mode) if changed else None
        mtime = info.mtime if rel in touched or there.mtime != info.mtime else None
        mtime = mtime or None  # a listing that could not tell (0) sets nothing
        if rel not in touched and there.mtime != info.mtime:
            changes.append(SyncChange(TOUCH, (rel or ".") + "/", 0))
        if mode is not None or mtime is not None:
            dir_attrs.append((rel, mode, mtime))
    sent = 0
    if not dry_run:
        if dst_info is None:
            await dst.mkdir(dst_root)
        for rel in dirs:
            await dst.mkdir(dst.join(dst_root, rel))
        meter = Meter(on_progress, len(sends), sum(i.size for _, i, _ in sends))
        jobs = [
            (
                info.size,
                functools.partial(
                    copy_one,
                    src_end,
                    src.join(src_root, rel),
                    dst_end,
                    dst.join(dst_root, rel),
                    info,
                    index=index,
                    meter=meter,
                    verify=verify,
                    force=True,
                    notice=notice,
                ),
            )
            for index, (rel, info, _) in enumerate(sends, 1)
        ]
        sent = sum(result.sent for result in await run_copies(jobs))
        dst = await dst_end.side()  # a copy may have reopened it after a drop
        for rel, _ in gone:
            await dst.remove(dst.join(dst_root, rel))
        await _set_attrs(dst, dst_root, file_attrs + dir_attrs)
    return SyncResult(changes, sent, time.monotonic() - start, dry_run)


def _deletions(
    dst_tree: Tree, src_tree: Tree, rules: _Filter, notice: NoticeCallback
) -> list[tuple[str, Info]]:
    """What --delete removes from DEST, contents before their directory. What is excluded
    stays (as with rsync without --delete-excluded), and so does an unfinished copy's part
    file (a later run resumes it), and a directory holding either:
    rmdir would fail there and end the sync before the other deletions."""
    gone: list[tuple[str, Info]] = []
    holds: set[str] = set()  # directories with something in them that stays
    kept: list[str] = []  # directories not in SOURCE kept for what they hold
    for rel, info in sorted(dst_tree.items(), reverse=True):  # "d/x" sorts after "d"
        is_dir = info.kind == KIND_DIR
        stays = rel in src_tree or rel.endswith(PART_SUFFIX) or rules.excluded(rel, is_dir)
        if not stays and is_dir and rel in holds:
            kept.append(rel)
            stays = True
        if stays:
            # Its parent is listed too, and stays in turn: the whole chain up is kept.
            holds.add(rel.rpartition("/")[0])
        else:
            gone.append((rel, info))
    kept_set = set(kept)
    for rel in reversed(kept):  # the outermost only: its inner ones are implied
        if rel.rpartition("/")[0] not in kept_set:
            notice(f"kept {visible(rel)}/: it holds excluded files (or a copy's part file)")
    return gone


async def _set_attrs(side: Side, root: str, items: Sequence[Attrs]) -> None:
    """Set each path's mode and/or mtime (None: left alone), in the order given."""
    if not items:
        return

    def path(rel: str) -> str:
        return side.join(root, rel) if rel else root

    if isinstance(side, LocalSide):
        for rel, mode, mtime in items:
            try:
                if mode is not None:
                    os.chmod(path(rel), perm_bits(mode))
                if mtime is not None:
                    os.utime(path(rel), (mtime, mtime))
            except OSError as e:
                raise DevtuiError(f"{visible(path(rel))}: {e.strerror or e}") from None
    elif isinstance(side, SftpSide):
        sftp, where = side.sftp, side.where

        # Requests pipelined, one round trip for them all; the server takes them in order.
        async def setstat(rel: str, mode: int | None, mtime: int | None) -> None:
            attrs = asyncssh.SFTPAttrs(
                permissions=None if mode is None else perm_bits(mode),
                atime=mtime,
                mtime=mtime,
            )
            with _sftp_errors(where(path(rel))):
                await sftp.setstat(path(rel), attrs)

        for at in range(0, len(items), 1000):
            await asyncio.gather(*(setstat(*item) for item in items[at : at + 1000]))
    elif isinstance(side, ExecSide):
        batch: list[str] = []
        size = 0
        for n, (rel, mode, mtime) in enumerate(items, 1):
            stamp = "" if mtime is None else time.strftime("%Y%m%d%H%M.%S", time.gmtime(mtime))
            batch += [rel or ".", "" if mode is None else f"{perm_bits(mode):o}", stamp]
            size += len(rel.encode("utf-8", "surrogateescape")) + 20
            if n == len(items) or len(batch) >= 3 * _ATTRS_BATCH or size >= _ATTRS_BYTES:
                result = await bounded(
                    side.conn, sh_script(_ATTRS_SCRIPT, root, *batch), 1 << 16, 600.0, "chmod"
                )
                if result.exit_status != 0:
                    err = result.stderr.decode(errors="replace").strip().splitlines()
                    text = err[-1] if err else f"exit status {result.exit_status}"
                    raise DevtuiError(f"{side.where(root)}: {visible(text)}")
                batch, size = [], 0
    else:  # another kind of side: its own calls, mtime only
        for rel, _, mtime in items:
            if mtime is not None:
                await side.set_mtime(path(rel), mtime)
