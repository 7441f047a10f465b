"""`devtui jobs start|list|logs|stop|attach`: commands that outlive the link, on a host."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable

from sshcore.api import (
    Config,
    Core,
    DevtuiError,
    JobInfo,
    attach_command,
    default_terminal,
    follow_job,
    job_output,
    list_jobs,
    start_job,
    stop_job,
)

from .main import _load
from .net import _core, _prompts, install_stop_handlers, shell_words
from .terminal_prompts import CliPrompts


def _command(args: argparse.Namespace) -> list[str] | str:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise DevtuiError("nothing to start: devtui jobs start HOST [--name NAME] -- COMMAND")
    return shell_words(argv)


def cmd_jobs_start(args: argparse.Namespace) -> int:
    """devtui jobs start HOST [--name NAME] -- COMMAND: start it detached; print its name."""
    command = _command(args)
    config = _load(args)
    prompts = _prompts(args, config, [args.host])

    async def go(core: Core) -> int:
        job = await start_job(core, args.host, command, args.name)
        print(job.name, flush=True)
        return 0

    return asyncio.run(_with_core(args, config, prompts, go))


def cmd_jobs_list(args: argparse.Namespace) -> int:
    """devtui jobs list [HOST] [--json]: every job on HOST, or on every saved host."""
    config = _load(args)
    hosts = [args.host] if args.host else list(config.hosts)
    if args.host and args.host not in config.hosts:
        raise DevtuiError(f"no host named {args.host!r} (see: devtui hosts list)")
    prompts = _prompts(args, config, hosts)

    async def go(core: Core) -> int:
        # Every host at once: one that cannot be reached is one line, the others still listed.
        found = await asyncio.gather(
            *(list_jobs(core, host) for host in hosts), return_exceptions=True
        )
        jobs: list[JobInfo] = []
        failed = 0
        for host, result in zip(hosts, found, strict=True):
            if isinstance(result, DevtuiError):
                print(f"devtui: {host}: {result}", file=sys.stderr)
                failed += 1
            elif isinstance(result, BaseException):
                raise result
            else:
                jobs.extend(result)
        if args.json:
            print(json.dumps([job.as_json() for job in jobs], indent=2))
        else:
            _table(jobs)
        return 1 if failed else 0

    return asyncio.run(_with_core(args, config, prompts, go))


def _table(jobs: list[JobInfo]) -> None:
    rows = [
        (
            job.name,
            job.host,
            job.state_text(),
            str(job.pid) if job.pid is not None else "-",
            job.started.astimezone().strftime("%Y-%m-%d %H:%M:%S") if job.started else "-",
            job.command,
        )
        for job in jobs
    ]
    head = ("NAME", "HOST", "STATE", "PID", "STARTED", "COMMAND")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    for row in [head, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)]
        print("  ".join([*cells, row[5]]).rstrip())


def cmd_jobs_logs(args: argparse.Namespace) -> int:
    """devtui jobs logs HOST NAME [-n N] [-f]: the job's output; -f until the job ends."""
    config = _load(args)
    prompts = _prompts(args, config, [args.host])

    def line(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def notice(text: str) -> None:
        print(f"devtui: {text}", file=sys.stderr, flush=True)

    async def go(core: Core) -> int:
        if not args.follow:
            await job_output(core, args.host, args.name, line, args.lines)
            return 0
        stop = asyncio.Event()
        install_stop_handlers(asyncio.get_running_loop(), stop.set)
        following = asyncio.create_task(
            follow_job(core, args.host, args.name, line, args.lines, notice)
        )
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({following, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if following.done():
                status = following.result()
                said = "without an exit status" if status is None else f"exit status {status}"
                print(f"devtui: job {args.name} on {args.host} ended ({said})", file=sys.stderr)
            return 0
        finally:
            for task in (following, stopping):
                task.cancel()
            await asyncio.gather(following, stopping, return_exceptions=True)

    return asyncio.run(_with_core(args, config, prompts, go))


def cmd_jobs_stop(args: argparse.Namespace) -> int:
    """devtui jobs stop HOST NAME: TERM to the job's process group, KILL after a grace."""
    config = _load(args)
    prompts = _prompts(args, config, [args.host])

    async def go(core: Core) -> int:
        stopped = await stop_job(core, args.host, args.name)
        print(stopped.message())
        return 0

    return asyncio.run(_with_core(args, config, prompts, go))


def cmd_jobs_attach(args: argparse.Namespace) -> int:
    """devtui jobs attach HOST NAME: the job's tmux session in this terminal (ctrl+b d)."""
    config = _load(args)
    prompts = _prompts(args, config, [args.host])

    async def go(core: Core) -> int:
        # Logged in first: a host key question or a password is asked in cooked mode.
        await core.connect(args.host)
        command = await attach_command(core, args.host, args.name)
        return await core.shell(args.host, default_terminal(), command)

    return asyncio.run(_with_core(args, config, prompts, go))


async def _with_core(
    args: argparse.Namespace,
    config: Config,
    prompts: CliPrompts,
    go: Callable[[Core], Awaitable[int]],
) -> int:
    core = _core(config, prompts, verbose=args.verbose)
    try:
        return await go(core)
    finally:
        await core.close()
