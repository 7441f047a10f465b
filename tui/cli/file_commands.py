"""`devtui cp` and `devtui sync`: files over a host's own connection."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import TextIO

from sshcore.api import (
    Config,
    CopyProgress,
    CopyResult,
    SyncChange,
    UsageError,
    copy_files,
    parse_location,
    sync_dirs,
    visible,
)

from .main import _load
from .net import _core, _prompts
from .terminal_prompts import CliPrompts


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else (f"{seconds // 60}:{seconds % 60:02d}")
    )


class ProgressLine:
    """One line on stderr, redrawn in place: file N of M, a bar, bytes, rate, ETA."""

    def __init__(self, stream: TextIO, terminal: bool) -> None:
        self.stream = stream
        self.terminal = terminal
        self.last_line = 0.0
        self.drawn = False

    def __call__(self, p: CopyProgress) -> None:
        share = p.done / p.total if p.total else 1.0
        name = visible(p.source.rsplit("/", 1)[-1])[-24:]  # a host's file names are data
        bar = "#" * int(share * 20)
        text = (
            f"[{p.file_index}/{p.file_count}] {name} [{bar:<20}] {share:4.0%} "
            f"{_size(p.done)}/{_size(p.total)} {_size(p.rate)}/s ETA {_clock(p.eta)}"
        )
        if self.terminal:
            self.stream.write("\r" + text[:119].ljust(79) + "\x1b[K")
            self.drawn = True
        else:  # --progress on a pipe: a line a second is plenty
            now = time.monotonic()
            if now - self.last_line < 1.0 and p.done < p.total:
                return
            self.last_line = now
            self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False


def _result_json(r: CopyResult) -> str:
    return json.dumps(
        {
            "source": r.source,
            "target": r.target,
            "bytes": r.bytes,
            "seconds": round(r.seconds, 3),
            "sha256": r.sha256,
            "resumed_from": r.resumed_from,
            "unchanged": r.unchanged,
        }
    )


def _hosts_of(config: Config, paths: list[str]) -> list[str]:
    hosts = []
    for path in paths:
        host = parse_location(path, config.hosts).host
        if host is not None and host not in hosts:
            hosts.append(host)
    return hosts


def _progress(args: argparse.Namespace) -> ProgressLine | None:
    terminal = sys.stderr.isatty()
    if not (terminal or args.progress):
        return None
    return ProgressLine(sys.stderr, terminal)


def _notice(line: ProgressLine | None) -> Callable[[str], None]:
    def say(text: str) -> None:
        if line is not None:
            line.clear()
        print(f"devtui: {text}", file=sys.stderr, flush=True)

    return say


def cmd_cp(args: argparse.Namespace) -> int:
    """devtui cp [-r] SRC... DST"""
    if len(args.paths) < 2:
        raise UsageError("devtui cp SRC... DST: give a source and a destination")
    config = _load(args)
    *sources, dest = args.paths
    hosts = _hosts_of(config, args.paths)
    prompts = _prompts(args, config, hosts or ["-"])
    return asyncio.run(_cp(args, config, prompts, sources, dest))


async def _cp(
    args: argparse.Namespace, config: Config, prompts: CliPrompts, sources: list[str], dest: str
) -> int:
    core = _core(config, prompts, verbose=args.verbose)
    line = _progress(args)
    say = _notice(line)

    def done(result: CopyResult) -> None:
        if line is not None:
            line.clear()
        if args.json:
            print(_result_json(result), flush=True)

    try:
        await copy_files(
            core,
            sources,
            dest,
            recursive=args.recursive,
            follow_links=args.dereference,
            restart=args.restart,
            verify=not args.no_verify,
            force=args.force,
            on_progress=line,
            on_file=done,
            on_notice=say,
        )
    except asyncio.CancelledError:
        if line is not None:
            line.clear()
        print("devtui: stopped; run the same command again to resume", file=sys.stderr)
        raise
    finally:
        if line is not None:
            line.clear()
        await core.close()
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    """devtui sync SRC DST"""
    config = _load(args)
    hosts = _hosts_of(config, [args.source, args.dest])
    prompts = _prompts(args, config, hosts or ["-"])
    return asyncio.run(_sync(args, config, prompts))


async def _sync(args: argparse.Namespace, config: Config, prompts: CliPrompts) -> int:
    core = _core(config, prompts, verbose=args.verbose)
    line = _progress(args)
    say = _notice(line)
    try:
        result = await sync_dirs(
            core,
            args.source,
            args.dest,
            excludes=args.exclude,
            gitignore=not args.no_gitignore,
            delete=args.delete,
            dry_run=args.dry_run,
            on_progress=line,
            on_notice=say,
        )
    finally:
        if line is not None:
            line.clear()
        await core.close()
    if args.json:
        print(
            json.dumps(
                {
                    "dry_run": result.dry_run,
                    "changes": [_change_json(c) for c in result.changes],
                    "sent": result.sent,
                    "seconds": round(result.seconds, 3),
                }
            )
        )
        return 0
    for change in result.changes:
        print(f"{change.action:<7} {_change_what(change):>10}  {visible(change.path)}")
    verb = "would change" if result.dry_run else "changed"
    print(
        f"{len(result.changes)} {verb}{_change_kinds(result.changes)}, "
        f"{_size(result.sent)} sent in {result.seconds:.1f} s",
        file=sys.stderr,
    )
    return 0


def _change_json(c: SyncChange) -> dict[str, object]:
    out: dict[str, object] = {"action": c.action, "path": c.path, "bytes": c.size}
    if c.mode is not None:
        out["mode"] = f"{c.mode:03o}"
    return out


def _change_what(c: SyncChange) -> str:
    """The size column: a mode change's new bits, "dir" for a directory, else the bytes."""
    if c.mode is not None:
        return f"{c.mode:03o}"
    if c.path.endswith("/"):
        return "dir"  # a directory's own size is its inode's, not what it holds
    return _size(c.size)


def _change_kinds(changes: list[SyncChange]) -> str:
    """How many of each kind, in the order they first appear: ` (2 add, 1 mode)`."""
    counts: dict[str, int] = {}
    for c in changes:
        counts[c.action] = counts.get(c.action, 0) + 1
    return f" ({', '.join(f'{n} {kind}' for kind, n in counts.items())})" if counts else ""
