"""Commands that touch the network: `up`, `run`, `ports`, `demo`, `hosts test`, `hosts forget-key`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable

from sshcore.api import (
    Config,
    Core,
    DevtuiError,
    Event,
    HostFailed,
    HostState,
    RemotePortClosed,
    RemotePortOpened,
    TunnelTargetMoved,
    TunnelTraffic,
    UsageError,
    ops,
)

from .main import _load
from .terminal_prompts import CliPrompts


def stop_signal_names(platform: str) -> list[str]:
    """Signals that end `devtui up` cleanly: Ctrl+C everywhere, SIGTERM on POSIX,
    Ctrl+Break (SIGBREAK) on Windows."""
    if platform == "nt":
        return ["SIGINT", "SIGBREAK"]
    return ["SIGINT", "SIGTERM"]


def install_stop_handlers(
    loop: asyncio.AbstractEventLoop, stop: Callable[[], None], platform: str | None = None
) -> list[str]:
    """Route the stop signals to `stop`; returns the names hooked."""
    platform = platform or os.name
    hooked = []
    for name in stop_signal_names(platform):
        number = getattr(signal, name, None)
        if number is None:
            continue
        if platform == "nt":
            # The Proactor loop has no add_signal_handler: a plain handler hands over to the loop.
            signal.signal(number, lambda *_: loop.call_soon_threadsafe(stop))
        else:
            loop.add_signal_handler(number, stop)
        hooked.append(name)
    return hooked


def _stderr_events(event: Event) -> None:
    if isinstance(event, TunnelTraffic):
        return  # counters tick twice a second: too chatty for a log line each
    if isinstance(event, (RemotePortOpened, RemotePortClosed, TunnelTargetMoved)):
        return  # the dashboard's offers; `ports --watch` and `up` say these in their own words
    stamp = time.strftime("%H:%M:%S", time.localtime(event.at))
    print(f"{stamp} {event.level:<7} {event.message()}", file=sys.stderr, flush=True)


def _prompts(
    args: argparse.Namespace, config: Config, targets: list[str], ask_host_keys: bool = True
) -> CliPrompts:
    """The command's prompts; a --password-stdin password is bound to one host, so that a
    jump host, or another host of `up`, never receives it."""
    host = password_host(config, getattr(args, "password_stdin", None), targets)
    password = sys.stdin.readline().rstrip("\r\n") if host is not None else None
    return CliPrompts(
        accept_new=getattr(args, "accept_new", False),
        password=password,
        password_host=host,
        ask_host_keys=ask_host_keys,
    )


def password_host(config: Config, given: str | None, targets: list[str]) -> str | None:
    """The one host a --password-stdin password is for: the one named (HOST), else the
    command's only target. None when no password is to be read.

    `given` is None without the option and "" for a bare --password-stdin.
    """
    if given is None:
        return None
    if given:
        route = {hop for target in targets for hop in _route(config, target)}
        if given not in route:
            if given not in config.hosts:
                raise UsageError(f"--password-stdin {given}: no host named {given!r}")
            raise UsageError(
                f"--password-stdin {given}: {given} is not a host this command logs in to "
                f"({', '.join(sorted(route))})"
            )
        return given
    if len(set(targets)) != 1:
        raise UsageError(
            f"--password-stdin: these tunnels are on {len(set(targets))} hosts "
            f"({', '.join(sorted(set(targets)))}); name the one the password is for: "
            "--password-stdin HOST"
        )
    return targets[0]


def _route(config: Config, name: str) -> list[str]:
    """Host `name` and the jump hosts on its way in (a loop in the config ends the walk)."""
    route = [name]
    host = config.hosts.get(name)
    while host is not None and host.jump and host.jump not in route:
        route.append(host.jump)
        host = config.hosts.get(host.jump)
    return route


def _core(
    config: Config, prompts: CliPrompts, verbose: bool = True, discover: bool = False
) -> Core:
    # Only `up` watches its hosts' ports (for the "moved to 7861?" hint and auto_forward);
    # one-shot commands leave the host alone.
    core = Core(config, prompts, interactive=True, discover=discover)
    if verbose:
        core.subscribe(_stderr_events)
    return core


def cmd_up(args: argparse.Namespace) -> int:
    """devtui up [TUNNEL ...]: run tunnels until Ctrl+C / SIGTERM / Ctrl+Break."""
    config = _load(args)
    auto = [t.name for t in config.tunnels.values() if t.autostart]
    names = args.tunnels or auto or list(config.tunnels)  # as Core.default_tunnels
    if not names:
        print("devtui: no tunnels configured; add one with devtui add", file=sys.stderr)
        return 1
    for name in names:
        if name not in config.tunnels:
            raise DevtuiError(f"no tunnel named {name!r} (see: devtui tunnels list)")
    hosts = [config.tunnels[n].host for n in names]
    # Headless: an unknown host key is refused unless --accept-new (nobody may be watching).
    prompts = _prompts(args, config, hosts, ask_host_keys=False)
    return asyncio.run(_up(config, names, prompts))


async def _up(config: Config, names: list[str], prompts: CliPrompts) -> int:
    core = _core(config, prompts, discover=True)
    stop = asyncio.Event()
    install_stop_handlers(asyncio.get_running_loop(), stop.set)
    started: list[str] = []
    try:
        for name in names:
            try:
                await core.start_tunnel(name)
                started.append(name)
            except DevtuiError as e:
                # One busy port fails that tunnel alone; the others run.
                print(f"devtui: tunnel {name}: {e}", file=sys.stderr)
        if not started:
            return 1
        print(
            f"devtui: {len(started)} tunnel(s) running; Ctrl+C to stop", file=sys.stderr, flush=True
        )
        hosts = {core.config.tunnels[n].host for n in started}
        gave_up = False

        def check(event: Event) -> None:
            if isinstance(event, TunnelTargetMoved):
                print(moved_hint(event), file=sys.stderr, flush=True)
            # Network trouble is retried forever; a refused login or host key is not.
            nonlocal gave_up
            if isinstance(event, HostFailed) and all(
                core.host_state(h).state == HostState.FAILED for h in hosts
            ):
                gave_up = True
                stop.set()

        core.subscribe(check)
        await stop.wait()
    finally:
        await core.close()
    if gave_up:
        print(
            "devtui: every host failed for good (see above); nothing left to run", file=sys.stderr
        )
        return 1
    print("devtui: stopped", file=sys.stderr)
    return 0


def moved_hint(event: TunnelTargetMoved) -> str:
    """What `devtui up` says when a tunnel's app moved (the dashboard's "R" hint)."""
    who = event.process or "its program"
    return (
        f"devtui: hint: tunnel {event.tunnel}: {who} moved to {event.new_port}? "
        f"(nothing answers at {event.old_port}) retarget it with: "
        f"devtui tunnels retarget {event.tunnel} {event.new_port}"
    )


def cmd_hosts_test(args: argparse.Namespace) -> int:
    """devtui hosts test NAME | --all [--json]: connect, print latency, auth, server version."""
    config = _load(args)
    if args.all or args.json:
        if args.name and args.all:
            raise UsageError("give a host name or --all, not both")
        names = list(config.hosts) if args.all else [args.name]
        if not names:
            print("No hosts yet: nothing to test", file=sys.stderr)
            return 0
        return asyncio.run(_hosts_test_many(args, config, _prompts(args, config, names), names))
    if not args.name:
        raise UsageError("which host? devtui hosts test NAME, or --all for every host")
    return asyncio.run(_hosts_test(args, config, _prompts(args, config, [args.name])))


async def _hosts_test_many(
    args: argparse.Namespace, config: Config, prompts: CliPrompts, names: list[str]
) -> int:
    from sshcore.api import check_hosts

    core = _core(config, prompts, verbose=args.verbose)
    done = 0
    show_progress = sys.stderr.isatty() and not args.verbose

    def progress(_: object) -> None:
        nonlocal done
        done += 1
        if show_progress:
            print(f"\rtested {done}/{len(names)}", end="", file=sys.stderr, flush=True)

    try:
        checks = await check_hosts(core, names, concurrency=args.parallel, on_result=progress)
    finally:
        await core.close()
    if show_progress:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps([c.to_json() for c in checks], indent=2))
    else:
        print(f"{'HOST':<20} {'STATE':<10} {'CONNECT':>8} {'RTT':>6}  AUTH / ERROR")
        for c in checks:
            connect = f"{c.connect_ms:.0f} ms" if c.connect_ms is not None else ""
            rtt = f"{c.round_trip_ms:.0f} ms" if c.round_trip_ms is not None else ""
            tail = c.auth_method or "" if c.ok else f"error: {c.error}"
            print(f"{c.name:<20} {c.state:<10} {connect:>8} {rtt:>6}  {tail}")
        failed = sum(not c.ok for c in checks)
        print(f"{len(checks) - failed} OK, {failed} failed", file=sys.stderr)
    return 1 if any(not c.ok for c in checks) else 0


async def _hosts_test(args: argparse.Namespace, config: Config, prompts: CliPrompts) -> int:
    core = _core(config, prompts, verbose=args.verbose)
    try:
        status = await core.connect(args.name)
        rtt = await core.ping(args.name)
    except DevtuiError as e:
        print(f"devtui: {args.name}: {e}", file=sys.stderr)
        return 1
    finally:
        await core.close()
    print(f"{args.name}: OK")
    print(f"  connect      {status.connect_ms:.0f} ms (TCP + key exchange + auth)")
    print(f"  round trip   {rtt:.0f} ms (run a no-op command)")
    print(f"  auth         {status.auth_method}")
    print(f"  server       {status.server_version}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """devtui run HOST -- CMD: stream a remote command's output; exit with its status."""
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise DevtuiError("nothing to run: devtui run HOST -- COMMAND [ARGS...]")
    config = _load(args)
    prompts = _prompts(args, config, [args.host])
    return asyncio.run(_run(args, config, prompts, shell_words(argv)))


_SHELL_CHARS = set(" \t\n|&;<>()$`\\\"'*?[#~")


def shell_words(argv: list[str]) -> list[str] | str:
    """One word that holds a shell line ('tail -f log | grep x') is a line for the host's
    login shell, as ssh runs it; several words run exactly as given."""
    if len(argv) == 1 and _SHELL_CHARS & set(argv[0]):
        return argv[0]
    return argv


async def _run(
    args: argparse.Namespace, config: Config, prompts: CliPrompts, argv: list[str] | str
) -> int:
    core = _core(config, prompts, verbose=args.verbose)

    def output(label: str, data: bytes) -> None:
        stream = sys.stdout if label == "stdout" else sys.stderr
        stream.buffer.write(data)
        stream.flush()

    try:
        return await core.run(args.host, argv, output)
    finally:
        await core.close()


def cmd_ports(args: argparse.Namespace) -> int:
    """devtui ports HOST [--json] [--watch]: the remote's listening TCP ports."""
    config = _load(args)
    return asyncio.run(_ports(args, config, _prompts(args, config, [args.host])))


async def _ports(args: argparse.Namespace, config: Config, prompts: CliPrompts) -> int:
    core = _core(config, prompts, verbose=args.verbose)
    try:
        ports = await core.listening_ports(args.host)
        forwarded = {
            t.target.port: t.name
            for t in core.config.data.tunnels_of(args.host)
            if t.kind == "local" and t.target is not None
        }
        if args.json:
            rows = [
                {
                    "port": p.port,
                    "address": p.address,
                    "loopback_only": p.loopback_only,
                    "tunnel": forwarded.get(p.port),
                    "process": p.process,
                    "pid": p.pid,
                }
                for p in ports
            ]
            print(json.dumps(rows, indent=2))
        else:
            print(f"{'PORT':>5}  {'ADDRESS':<16} {'PROGRAM':<16} TUNNEL")
            for p in ports:
                hint = f"(devtui tunnels add {args.host} -L {p.port}:127.0.0.1:{p.port})"
                program = f"{p.process} ({p.pid})" if p.process else "-"
                print(f"{p.port:>5}  {p.address:<16} {program:<16} {forwarded.get(p.port) or hint}")
        if args.watch:
            stop = asyncio.Event()
            install_stop_handlers(asyncio.get_running_loop(), stop.set)

            def show(event: Event) -> None:
                if isinstance(event, (RemotePortOpened, RemotePortClosed)):
                    print(event.message(), flush=True)

            core.subscribe(show)
            core.watch_ports(args.host, interval=args.interval)
            print(
                f"watching {args.host} every {args.interval:g} s; Ctrl+C to stop", file=sys.stderr
            )
            await stop.wait()
    except DevtuiError as e:
        print(f"devtui: {args.host}: {e}", file=sys.stderr)
        return 1
    finally:
        await core.close()
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    """devtui logs HOST PATH [-n N]: follow a remote log like tail -F, until Ctrl+C."""
    config = _load(args)
    return asyncio.run(_logs(args, config, _prompts(args, config, [args.host])))


async def _logs(args: argparse.Namespace, config: Config, prompts: CliPrompts) -> int:
    core = _core(config, prompts, verbose=args.verbose)
    stop = asyncio.Event()
    install_stop_handlers(asyncio.get_running_loop(), stop.set)

    def line(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def notice(text: str) -> None:
        print(f"devtui: {text}", file=sys.stderr, flush=True)

    following = asyncio.create_task(core.follow(args.host, args.path, line, args.lines, notice))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({following, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if following.done():
            following.result()  # a command source that ended, or an error to report
        return 0
    finally:
        for task in (following, stopping):
            task.cancel()
        await asyncio.gather(following, stopping, return_exceptions=True)
        await core.close()


def cmd_shell(args: argparse.Namespace) -> int:
    """devtui shell HOST [-- COMMAND]: an interactive shell (or COMMAND) in a PTY there."""
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    words = shell_words(argv) if argv else None
    command = words if isinstance(words, str) or words is None else shlex.join(words)
    config = _load(args)
    prompts = _prompts(args, config, [args.host])
    return asyncio.run(_shell(args, config, prompts, command))


async def _shell(
    args: argparse.Namespace, config: Config, prompts: CliPrompts, command: str | None
) -> int:
    from sshcore.api import default_terminal

    core = _core(config, prompts, verbose=args.verbose)
    try:
        # Logged in first: a host key question or a password is asked in cooked mode.
        await core.connect(args.host)
        return await core.shell(args.host, default_terminal(), command)
    finally:
        await core.close()


def cmd_demo_headless(args: argparse.Namespace) -> int:
    """devtui demo --check, or devtui demo without a terminal: the demo with no dashboard."""
    return asyncio.run(_demo(args))


async def _demo(args: argparse.Namespace) -> int:
    """The headless demo: --check fetches the page once; without a terminal (scripts, a
    pipe) the tunnel runs until Ctrl+C."""
    from sshcore.api import DemoSite

    async with DemoSite(args.port) as demo:
        core = Core(Config.load(demo.config_path), CliPrompts(), interactive=False)
        core.subscribe(_stderr_events)
        try:
            await core.start_tunnel("demo-web")
            await core.connection("demo")
            print(f"Demo host: demo@127.0.0.1:{demo.ssh_port} (embedded SSH server, this machine)")
            print(f"Tunnel demo-web: {demo.url} -> the demo host's web app")
            if args.check:
                page = await asyncio.to_thread(_fetch, demo.url)
                heading = next((ln for ln in page.splitlines() if "<h1>" in ln), page[:80])
                print(f"Fetched {demo.url} through the tunnel: {heading}")
                return 0
            print(f"Open {demo.url} in a browser. In another terminal, try:")
            print(f"  devtui --config {demo.config_path} hosts test demo")
            print("Ctrl+C ends the demo (its temp files go with it).", flush=True)
            stop = asyncio.Event()
            install_stop_handlers(asyncio.get_running_loop(), stop.set)
            await stop.wait()
        finally:
            await core.close()
    return 0


def _fetch(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode("utf-8", "replace"))


def cmd_forget_key(args: argparse.Namespace) -> int:
    """devtui hosts forget-key NAME: remove the host's known_hosts entries (explicit)."""
    config = Config.load(args.config)
    for line in ops.forget_host_key(config, args.name).lines(args.name):
        print(line)
    return 0
