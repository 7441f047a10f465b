"""Benchmark: the dashboard's start time, its key latency under load, and its idle CPU.

    .venv/bin/python bench/dashboard.py start   # `devtui` to four panes drawn, vs a bare Textual app
    .venv/bin/python bench/dashboard.py load    # 500 hosts, 200 busy tunnels, 1,000 events/s
    .venv/bin/python bench/dashboard.py idle    # 20 started, idle tunnels: CPU over 20 s
    .venv/bin/python bench/dashboard.py all     # the three, one after the other (~3 min)

Everything runs in a real terminal: a tmux server on a private socket (`tmux -L`, 80x24, no
user config), driven through one tmux control-mode client (`tmux -C`), so sending a key or
reading the screen is a line on a pipe, not a new process. The screen is read with
`capture-pane -p` every `--poll-ms` (default 2 ms).

start  Interleaved runs (median of `--runs`, >= 7) of the installed `devtui --config PATH`
       (a few hosts, HOME a temp dir) and of a bare Textual app with one Static, each in a
       fresh tmux server, timed from `respawn-pane` (the tmux server is already up) until the
       screen shows all four pane titles and the first host (devtui) or the Static's text
       (bare). Also: until the core is up (the status line drops "starting…").
load   The dashboard (`tui.launch.build_app`, as `devtui` runs it) in tmux, on a config of 500
       hosts and 200 autostart local tunnels over 50 SSH connections to an asyncssh server in
       a separate process; that process also moves bytes through every tunnel (an echo of
       1 KiB per tunnel every 100 ms: ~2 MB/s each way) once all are up. Inside the dashboard
       process a task publishes 1,000 events a second on `core.bus`. Key press -> repaint:
       `send-keys Down` in the Hosts pane, until the next host's row is drawn as the cursor
       row (bold, seen with `capture-pane -e`), and until the pane's subtitle (the selected
       host's destination) names it. A bare DataTable of as many rows is the baseline; then
       the dashboard with no traffic and no events (quiet), then under load. Resident
       memory: psutil, the dashboard process. `--patch NAME` tries a proposed change to tui/
       (see PATCHES), `--profile PATH` writes a cProfile of the dashboard under load,
       `--trace-slow PATH` what held its event loop when keys were late (SlowTrace: slow
       callbacks, each key's way to the screen, gc pauses, threads; a summary per series).
idle   The installed `devtui` on a config of 20 autostart tunnels (2 hosts on an asyncssh
       server in a separate process), each tunnel checked with one echo, then left alone;
       CPU time (user + system, psutil) of the devtui process over `--seconds` (20), beside a
       bare Textual app idling in another tmux server over the same seconds.

A benchmark, not a test: it prints numbers and fails nothing (exit 1 only when a step could
not be carried out). Every server listens on 127.0.0.1 and stops at the end or by itself
(`--lifetime`); only the processes and tmux servers it started are stopped, by PID / socket.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shlex
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PYTHON = sys.executable
DEVTUI = str(Path(PYTHON).parent / "devtui")
TITLES = ("1 Hosts", "2 Tunnels", "3 Keys", "4 Logs")
BARE_TEXT = "bare textual app: ready"
BARE_APP = f"""
from textual.app import App, ComposeResult
from textual.widgets import Static


class Bare(App[None]):
    def compose(self) -> ComposeResult:
        yield Static({BARE_TEXT!r})


Bare().run()
"""
TABLE_APP = """
import sys

from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

{destination}

class Table(App[None]):
    CSS = "Vertical {{ border: round $accent; width: 32; height: 10; }}"

    def compose(self) -> ComposeResult:
        with Vertical():
            yield DataTable(cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Host", "State", "Detail")
        for i in range(int(sys.argv[1])):
            table.add_row(f"host-{{i}}", "idle", "", key=str(i))
        table.focus()
        self.query_one(Vertical).border_subtitle = destination(0)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.query_one(Vertical).border_subtitle = destination(event.cursor_row)


Table().run()
"""
SITE_USER = "bench"
CHUNK = 1024  # bytes per echo on each tunnel
INTERVAL = 0.1  # seconds between echoes on each tunnel


# ---------------------------------------------------------------------------------------------
# A tmux server on a private socket, driven by one control-mode client


class TmuxError(RuntimeError):
    """A tmux command failed or the server went away."""


class Tmux:
    """`tmux -L <private>`: one session of `width` x `height`, commands over `tmux -C`."""

    _count = 0

    def __init__(self, env: dict[str, str], width: int = 80, height: int = 24) -> None:
        Tmux._count += 1
        self.socket = f"devtui-bench-{os.getpid()}-{Tmux._count}"
        self.env = env
        self.size = (width, height)
        self.proc: asyncio.subprocess.Process | None = None
        self.socket_path: Path | None = None

    def _base(self) -> list[str]:
        return ["tmux", "-L", self.socket, "-f", "/dev/null"]

    async def start(self) -> None:
        """The server with a placeholder pane (`sleep`: it ends by itself), and the client."""
        width, height = self.size
        made = await asyncio.create_subprocess_exec(
            *self._base(),
            "new-session",
            "-d",
            "-s",
            "bench",
            "-x",
            str(width),
            "-y",
            str(height),
            "sleep 900",
            env=self.env,
        )
        if await made.wait() != 0:
            raise TmuxError("tmux new-session failed")
        self.proc = await asyncio.create_subprocess_exec(
            *self._base(),
            "-C",
            "attach-session",
            "-f",
            "no-output,ignore-size",
            "-t",
            "bench",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=self.env,
        )
        await self._block()  # the attach's own (empty) reply
        self.socket_path = Path((await self.cmd('display-message -p "#{socket_path}"'))[0])
        await self.cmd("set-option -g default-terminal tmux-256color")
        await self.cmd("set-option -g remain-on-exit off")

    async def _line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        raw = await self.proc.stdout.readline()
        if not raw:
            raise TmuxError("the tmux server went away")
        return raw.decode("utf-8", "replace").rstrip("\n")

    async def _block(self) -> list[str]:
        """The next reply block (notifications before it are skipped)."""
        while True:
            line = await self._line()
            if line.startswith("%exit"):
                raise TmuxError("the tmux server went away")
            if line.startswith("%begin "):
                stamp = " ".join(line.split(" ")[1:3])
                break
        out: list[str] = []
        while True:
            line = await self._line()
            if line.startswith(f"%end {stamp}"):
                return out
            if line.startswith(f"%error {stamp}"):
                raise TmuxError(" ".join(out) or "tmux command failed")
            out.append(line)

    async def cmd(self, line: str) -> list[str]:
        """Run one tmux command line; its output lines."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self._block()

    async def respawn(self, argv: list[str]) -> None:
        """Replace the pane's program with `argv` (run by tmux through sh, then exec)."""
        command = "exec " + " ".join(shlex.quote(a) for a in argv)
        if "'" in command:
            raise TmuxError(f"cannot pass a quote to tmux here: {command}")
        await self.cmd(f"respawn-pane -k -t bench '{command}'")

    async def screen(self) -> str:
        return "\n".join(await self.cmd("capture-pane -p -t bench"))

    async def keys(self, *keys: str) -> None:
        await self.cmd("send-keys -t bench " + " ".join(keys))

    async def pane_pid(self) -> int:
        return int((await self.cmd('display-message -p -t bench "#{pane_pid}"'))[0])

    async def wait_screen(
        self, ready: Callable[[str], bool], timeout: float, poll: float, what: str
    ) -> tuple[float, str]:
        """Poll the screen until `ready(text)`; (seconds waited, text). TmuxError on timeout."""
        start = time.perf_counter()
        while True:
            text = await self.screen()
            now = time.perf_counter()
            if ready(text):
                return now - start, text
            if now - start > timeout:
                raise TmuxError(f"timed out after {timeout:.0f} s waiting for {what}:\n{text}")
            await asyncio.sleep(poll)

    async def close(self) -> None:
        """kill-server on our own socket; the client ends with it."""
        killer = await asyncio.create_subprocess_exec(
            *self._base(),
            "kill-server",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await killer.wait()
        if self.proc is not None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
            self.proc = None
        if self.socket_path is not None:  # the server is gone; its socket file may not be
            self.socket_path.unlink(missing_ok=True)


async def quit_app(tmux: Tmux, pid: int, keys: list[list[str]]) -> None:
    """Press each key group until the process `pid` ends (else SIGTERM it by PID)."""
    import psutil

    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    for i, group in enumerate(keys):
        with contextlib.suppress(TmuxError):
            await tmux.keys(*group)
        # Keys are handled in order, so the next group may follow soon; the last gets 10 s.
        for _ in range(200 if i == len(keys) - 1 else 20):
            if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
                return
            await asyncio.sleep(0.05)
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.terminate()
        await asyncio.to_thread(proc.wait, 5)


def clean_env(home: Path) -> dict[str, str]:
    """The environment of the measured programs: a temp HOME, no agent, pyc files used."""
    env = dict(os.environ)
    for name in ("DEVTUI_CONFIG", "SSH_AUTH_SOCK", "PYTHONDONTWRITEBYTECODE", "TMUX", "NO_COLOR"):
        env.pop(name, None)
    env["HOME"] = str(home)
    env["PYTHONPATH"] = str(ROOT)
    return env


# ---------------------------------------------------------------------------------------------
# Configs


def small_config(folder: Path) -> Path:
    """A few hosts (never connected) and two tunnels that do not autostart."""
    lines = ["[settings]", f'log_file = "{folder / "devtui.log"}"', ""]
    for i, name in enumerate(("alpha", "bravo", "charlie", "delta", "echo")):
        lines += [f"[hosts.{name}]", f'hostname = "10.0.0.{i + 1}"', 'user = "dev"', ""]
    for j, host in enumerate(("alpha", "bravo")):
        lines += [
            f"[tunnels.web-{j}]",
            f'host = "{host}"',
            'kind = "local"',
            f'listen = "127.0.0.1:{17860 + j}"',
            'target = "127.0.0.1:7860"',
            "",
        ]
    path = folder / "config.toml"
    path.write_text("\n".join(lines))
    return path


def destination(i: int) -> str:
    """The destination of generated host i (unique: the Hosts pane's subtitle shows it)."""
    return f"dev@10.{i // 250}.{i % 250}.{1 + i % 200}:{2200 + i % 50}"


def site_config(
    folder: Path,
    site: dict[str, Any],
    *,
    idle_hosts: int,
    ssh_hosts: int,
    tunnels: int,
    ports: list[int],
) -> Path:
    """`idle_hosts` hosts never connected, then `ssh_hosts` on the site, `tunnels` over them."""
    lines = [
        "[settings]",
        f'known_hosts = "{site["known_hosts"]}"',
        f'log_file = "{folder / "devtui.log"}"',
        "",
    ]
    for i in range(idle_hosts):
        user, rest = destination(i).split("@")
        hostname, port = rest.rsplit(":", 1)
        lines += [
            f"[hosts.host-{i}]",
            f'hostname = "{hostname}"',
            f"port = {port}",
            f'user = "{user}"',
            "",
        ]
    for k in range(ssh_hosts):
        lines += [
            f"[hosts.site-{k}]",
            'hostname = "127.0.0.1"',
            f"port = {site['ssh_port']}",
            f'user = "{SITE_USER}"',
            f'identity_file = "{site["key"]}"',
            "",
        ]
    for j in range(tunnels):
        lines += [
            f"[tunnels.svc-{j}]",
            f'host = "site-{j % ssh_hosts}"',
            'kind = "local"',
            f'listen = "127.0.0.1:{ports[j]}"',
            f'target = "127.0.0.1:{site["echo_port"]}"',
            "autostart = true",
            "",
        ]
    path = folder / "config.toml"
    path.write_text("\n".join(lines))
    return path


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports on 127.0.0.1 (held together while picked)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# ---------------------------------------------------------------------------------------------
# The site: an asyncssh server, an echo target and the traffic, in their own process


class Site:
    """`bench/dashboard.py _site` as a child: JSON lines out, commands in; ends with stdin."""

    def __init__(self, folder: Path, lifetime: float) -> None:
        self.folder = folder
        self.lifetime = lifetime
        self.proc: asyncio.subprocess.Process | None = None
        self.info: dict[str, Any] = {}

    async def start(self) -> dict[str, Any]:
        self.proc = await asyncio.create_subprocess_exec(
            PYTHON,
            __file__,
            "_site",
            "--folder",
            str(self.folder),
            "--lifetime",
            str(self.lifetime),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self.info = await self._reply(30)
        return self.info

    async def _reply(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("the site process ended")
        return dict(json.loads(line))

    async def ask(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self._reply(timeout)

    async def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None


async def site_main(folder: Path, lifetime: float) -> None:
    """The child's side: serve, answer commands on stdin, stop at EOF or after `lifetime`."""
    import asyncssh

    from sshcore.keys import write_key_file
    from tests.harness.asyncssh_server import AsyncsshServer, User

    key = asyncssh.generate_private_key("ssh-ed25519", comment="devtui-bench")
    key_path = folder / "bench_ed25519"
    write_key_file(key_path, key.export_private_key(), private=True)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    moved = [0]
    stop = asyncio.Event()

    async def traffic(port: int, connected: asyncio.Future[bool]) -> None:
        # One connection through the tunnel: a 1 KiB echo every INTERVAL, until stopped.
        deadline = time.monotonic() + 30
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"x" * CHUNK)
                await reader.readexactly(CHUNK)
                break
            except (OSError, asyncio.IncompleteReadError):
                if time.monotonic() > deadline:
                    connected.set_result(False)
                    return
                await asyncio.sleep(0.2)
        connected.set_result(True)
        try:
            await asyncio.sleep(random.random() * INTERVAL)  # spread the tunnels over time
            while not stop.is_set():
                writer.write(b"x" * CHUNK)
                await reader.readexactly(CHUNK)
                moved[0] += CHUNK
                await asyncio.sleep(INTERVAL)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    user = User(keys=[key])
    async with AsyncsshServer({SITE_USER: user}, sftp=False) as server:
        target = await asyncio.start_server(echo, "127.0.0.1", 0)
        known = folder / "known_hosts"
        known.write_text(server.known_hosts_line() + "\n")
        info = {
            "ssh_port": server.port,
            "echo_port": target.sockets[0].getsockname()[1],
            "key": str(key_path),
            "known_hosts": str(known),
        }
        print(json.dumps(info), flush=True)
        loop = asyncio.get_running_loop()
        stdin = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
        tasks: list[asyncio.Task[None]] = []
        end = time.monotonic() + lifetime
        try:
            while time.monotonic() < end:
                try:
                    line = await asyncio.wait_for(
                        stdin.readline(), max(0.1, end - time.monotonic())
                    )
                except TimeoutError:
                    break
                if not line:
                    break
                command = json.loads(line)
                if command["do"] == "traffic":
                    waits = [loop.create_future() for _ in command["ports"]]
                    for port, fut in zip(command["ports"], waits, strict=True):
                        tasks.append(asyncio.create_task(traffic(port, fut)))
                    ok = await asyncio.gather(*waits)
                    print(json.dumps({"connected": sum(ok), "failed": len(ok) - sum(ok)}))
                elif command["do"] == "probe":
                    ok = 0
                    for port in command["ports"]:
                        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                            reader, writer = await asyncio.open_connection("127.0.0.1", port)
                            writer.write(b"probe")
                            ok += await reader.readexactly(5) == b"probe"
                            writer.close()
                    print(json.dumps({"ok": ok}))
                elif command["do"] == "stats":
                    print(json.dumps({"bytes": moved[0], "connections": len(server.connections)}))
                sys.stdout.flush()
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            target.close()


# ---------------------------------------------------------------------------------------------
# --trace-slow: what holds the dashboard's event loop when a key is late


TRACE_SLOW_S = 0.008  # an event-loop callback at least this long is recorded
TRACE_SAMPLE_S = 0.002  # stack samples of the main thread while a callback runs long
TRACE_MODULES = ("/tui/", "/sshcore/", "/textual/", "/rich/", "/asyncssh/", "/bench/")


class SlowTrace:
    """Inside the dashboard process: every asyncio callback taking >= TRACE_SLOW_S (its task's
    coroutine or function, the Textual messages it dispatched, sampled stacks of the main
    thread while it ran), every key (read by the driver's thread, dispatched by the app,
    first write to the terminal after it) and every `asyncio.to_thread` call, each tagged with
    the bench's phase (quiet, load, saves: the series running). Written as JSON by `dump`."""

    def __init__(self, go_file: str, save_file: str | None) -> None:
        import threading

        self.go_file, self.save_file = go_file, save_file
        self.slow: list[dict[str, Any]] = []
        self.busy: list[tuple[float, float, str]] = []  # every callback >= 0.5 ms: start, ms
        self.marks: list[tuple[float, str]] = []  # the screen's messages, its timer resumed
        self.keys: list[dict[str, Any]] = []
        self.threads: list[tuple[float, float, str, str]] = []
        self.gcs: list[tuple[float, float, int, str]] = []  # start, ms, generation, phase
        self._gc_start = 0.0
        self.current: dict[str, Any] | None = None  # the callback running, if being watched
        self.main = threading.get_ident()
        self._stop = threading.Event()
        self._unpainted: list[dict[str, Any]] = []

    def phase(self) -> str:
        if self.save_file and os.path.exists(self.save_file):
            return "saves"
        return "load" if os.path.exists(self.go_file) else "quiet"

    def install(self) -> None:
        import asyncio.events
        import threading

        from textual import events
        from textual.drivers.linux_driver import LinuxDriver
        from textual.message_pump import MessagePump

        trace = self
        clock = time.perf_counter
        run = asyncio.events.Handle._run

        def timed_run(handle: asyncio.events.Handle) -> None:
            if threading.get_ident() != trace.main:
                run(handle)
                return
            mine: dict[str, Any] = {"start": clock(), "messages": [], "samples": []}
            outer, trace.current = trace.current, mine
            try:
                run(handle)
            finally:
                trace.current = outer
                took = clock() - mine["start"]
                if took >= TRACE_SLOW_S:
                    mine["ms"] = took * 1000
                    mine["label"] = trace.label(handle, mine["messages"])
                    mine["phase"] = trace.phase()
                    trace.slow.append(mine)
                if took >= 0.0005:
                    label = mine.get("label") or trace.label(handle, mine["messages"])
                    trace.busy.append((mine["start"], took * 1000, label))

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]

        dispatch = MessagePump._dispatch_message

        async def timed_dispatch(pump: MessagePump, message: Any) -> None:
            current = trace.current
            if current is not None and len(current["messages"]) < 12:
                name = type(message).__name__
                callback = getattr(message, "callback", None)
                if callback is not None:
                    name += f"({getattr(callback, '__qualname__', callback)})"
                at = (clock() - current["start"]) * 1000
                current["messages"].append(f"{type(pump).__name__}:{name}@{at:.0f}")
            if type(pump).__name__ == "Screen":
                trace.marks.append((clock(), type(message).__name__))
            if isinstance(message, events.Key):
                for key in trace._unpainted:
                    key.setdefault(f"at {type(pump).__name__}", clock())
            if isinstance(message, events.Key) and not any(
                k.get("id") == id(message) for k in trace._unpainted
            ):
                for key in trace.keys[-5:]:
                    if key["key"] == message.key and "dispatched" not in key:
                        key["dispatched"] = clock()
                        key["id"] = id(message)
                        trace._unpainted.append(key)
                        break
            await dispatch(pump, message)

        MessagePump._dispatch_message = timed_dispatch  # type: ignore[method-assign]

        process = LinuxDriver.process_message

        def timed_process(driver: LinuxDriver, message: Any) -> None:
            if isinstance(message, events.Key):
                trace.keys.append({"key": message.key, "arrived": clock(), "phase": trace.phase()})
            process(driver, message)

        LinuxDriver.process_message = timed_process  # type: ignore[method-assign]

        from textual.timer import Timer

        resume, tick = Timer.resume, Timer._tick

        def marked_resume(timer: Timer) -> None:
            if timer.name == "screen_update":
                trace.marks.append((clock(), "resume" if not timer._active.is_set() else "resume*"))
            resume(timer)

        async def marked_tick(timer: Timer, *, next_timer: float, count: int) -> None:
            if timer.name == "screen_update":
                trace.marks.append(
                    (clock(), f"tick (due {(clock() - next_timer) * 1000:.1f} ms ago)")
                )
            await tick(timer, next_timer=next_timer, count=count)

        Timer.resume = marked_resume  # type: ignore[method-assign]
        Timer._tick = marked_tick  # type: ignore[method-assign]

        write = LinuxDriver.write

        def timed_write(driver: LinuxDriver, data: str) -> None:
            if trace._unpainted:
                now = clock()
                for key in trace._unpainted:
                    key.setdefault("painted", now)
                    key.pop("id", None)
                trace._unpainted.clear()
            write(driver, data)

        LinuxDriver.write = timed_write  # type: ignore[method-assign]

        to_thread = asyncio.to_thread

        async def timed_to_thread(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            name = getattr(func, "__qualname__", repr(func))

            def work() -> Any:
                start = clock()
                try:
                    return func(*args, **kwargs)
                finally:
                    trace.threads.append((start, clock(), name, trace.phase()))

            return await to_thread(work)

        asyncio.to_thread = timed_to_thread  # type: ignore[assignment]

        def collected(stage: str, info: dict[str, int]) -> None:
            if stage == "start":
                trace._gc_start = clock()
            else:
                took = (clock() - trace._gc_start) * 1000
                if took >= 1:
                    trace.gcs.append((trace._gc_start, took, info["generation"], trace.phase()))

        import gc

        gc.callbacks.append(collected)
        threading.Thread(target=self._sample, daemon=True, name="slow-trace").start()

    @staticmethod
    def label(handle: Any, messages: list[str]) -> str:
        callback = handle._callback
        owner = getattr(callback, "__self__", None)
        if isinstance(owner, asyncio.Task):
            coro = owner.get_coro()
            name = getattr(coro, "__qualname__", repr(coro))
            timer = getattr(getattr(coro, "cr_frame", None), "f_locals", {}).get("self")
            if name == "Timer._run_timer" and timer is not None:
                callback = getattr(timer, "_callback", None)
                name = f"Timer {getattr(callback, '__qualname__', timer.name)}"
        else:
            name = getattr(callback, "__qualname__", repr(callback))
        if messages:
            seen = list(dict.fromkeys(m.rsplit("@", 1)[0] for m in messages))
            name += " [" + ", ".join(seen[:4]) + (" …" if len(seen) > 4 else "") + "]"
        return name

    def _sample(self) -> None:
        clock = time.perf_counter
        while not self._stop.wait(TRACE_SAMPLE_S):
            current = self.current
            if current is None or clock() - current["start"] < TRACE_SAMPLE_S:
                continue
            frame = sys._current_frames().get(self.main)
            stack: list[str] = []
            while frame is not None and len(stack) < 40:
                code = frame.f_code
                for module in TRACE_MODULES:
                    if module in code.co_filename:
                        stack.append(f"{module.strip('/')}:{code.co_qualname}")
                        break
                frame = frame.f_back
            if self.current is current:
                current["samples"].append(stack)

    def dump(self, path: str) -> None:
        import gc
        from collections import Counter

        self._stop.set()
        for record in self.slow:
            record.pop("id", None)
        heap = {
            "generations": [len(gc.get_objects(g)) for g in (0, 1, 2)],
            "frozen": gc.get_freeze_count(),
            "types": Counter(
                f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects(2)
            ).most_common(20),
        }
        Path(path).write_text(
            json.dumps(
                {
                    "slow": self.slow,
                    "keys": self.keys,
                    "threads": self.threads,
                    "gc": self.gcs,
                    "heap": heap,
                    "busy": self.busy,
                    "marks": self.marks,
                }
            )
        )


def trace_report(path: Path, late_ms: float = 40.0) -> str:
    """What the trace says, per phase: the slow callbacks (count, total, max), and for keys
    whose read -> first write took >= late_ms, what ran in between (callbacks by label,
    threads by function, and the functions most sampled on the main thread meanwhile)."""
    from collections import Counter, defaultdict

    data = json.loads(path.read_text())
    slow, keys, threads = data["slow"], data["keys"], data["threads"]
    out: list[str] = []
    if heap := data.get("heap"):
        out.append(
            f"  objects the gc tracks at the end: generations {heap['generations']}, "
            f"frozen {heap['frozen']}; most common in the oldest:"
        )
        out.append("    " + ", ".join(f"{n.rsplit('.', 1)[-1]} {c}" for n, c in heap["types"]))
    for phase in ("quiet", "load", "saves"):
        mine = [s for s in slow if s["phase"] == phase]
        pkeys = [k for k in keys if k["phase"] == phase and "painted" in k]
        if not pkeys:
            continue
        inside = sorted((k["painted"] - k["arrived"]) * 1000 for k in pkeys)
        p95 = inside[min(len(inside) - 1, round(0.95 * (len(inside) - 1)))]
        out.append(
            f"  [{phase}] {len(pkeys)} keys, read -> first write p50 "
            f"{statistics.median(inside):.1f} ms, p95 {p95:.1f} ms, max {inside[-1]:.1f} ms; "
            f"{len(mine)} callbacks >= {TRACE_SLOW_S * 1000:.0f} ms"
        )
        by: dict[str, list[float]] = defaultdict(list)
        for s in mine:
            by[s["label"]].append(s["ms"])
        out.append("    slow callbacks (count, total ms, max ms):")
        for label, ms in sorted(by.items(), key=lambda kv: -sum(kv[1]))[:10]:
            out.append(f"      {len(ms):4d} {sum(ms):8.0f} {max(ms):6.0f}  {label[:150]}")
        own: Counter[str] = Counter()
        leaf: Counter[str] = Counter()
        for s in mine:
            for stack in s["samples"]:
                if stack:
                    leaf[stack[0]] += 1
                for name in set(stack):
                    own[name] += 1
        every = sum(len(s["samples"]) for s in mine)
        for generation in (0, 1, 2):
            took = [g[1] for g in data.get("gc", []) if g[3] == phase and g[2] == generation]
            if took:
                out.append(
                    f"    gc generation {generation}: {len(took)} collections >= 1 ms, "
                    f"{sum(took):.0f} ms in all, max {max(took):.0f} ms"
                )
        shared = 0.0
        for s in mine:
            s0, s1 = s["start"], s["start"] + s["ms"] / 1000
            for t0, t1, _, _ in threads:
                shared += max(0.0, min(s1, t1) - max(s0, t0)) * 1000
        out.append(
            f"    {sum(s['ms'] for s in mine):.0f} ms in slow callbacks, {shared:.0f} ms of it "
            "while a to_thread call ran (the GIL shared)"
        )
        out.append(f"    all {every} stack samples in them; innermost traced frame (samples):")
        for name, count in leaf.most_common(12):
            out.append(f"      {count:5d}  {name}")
        out.append("    tui/ and sshcore/ functions on the stack (samples):")
        ours = [(n, c) for n, c in own.most_common() if n.startswith(("tui:", "sshcore:"))]
        for name, count in ours[:15]:
            out.append(f"      {count:5d}  {name}")
        late = [k for k in pkeys if (k["painted"] - k["arrived"]) * 1000 >= late_ms]
        if not late:
            continue
        blame: dict[str, float] = defaultdict(float)
        hits: Counter[str] = Counter()
        funcs: Counter[str] = Counter()
        thread_ms: dict[str, float] = defaultdict(float)
        covered = 0.0
        for k in late:
            a, b = k["arrived"], k["painted"]
            for s in mine:
                s0, s1 = s["start"], s["start"] + s["ms"] / 1000
                overlap = min(b, s1) - max(a, s0)
                if overlap > 0:
                    blame[s["label"]] += overlap * 1000
                    hits[s["label"]] += 1
                    covered += overlap * 1000
                    for stack in s["samples"]:
                        for name in set(stack):
                            funcs[name] += 1
            for t0, t1, name, _ in threads:
                overlap = min(b, t1) - max(a, t0)
                if overlap > 0:
                    thread_ms[name] += overlap * 1000
            for g0, took, generation, _ in data.get("gc", []):
                overlap = min(b, g0 + took / 1000) - max(a, g0)
                if overlap > 0:
                    thread_ms[f"(gc generation {generation}, main or any thread)"] += overlap * 1000
        stages: dict[str, list[float]] = defaultdict(list)
        busy_by: dict[str, float] = defaultdict(float)
        busy_total = 0.0
        for k in late:
            a, b = k["arrived"], k["painted"]
            for name, at in k.items():
                if name.startswith("at "):
                    stages[name].append((at - a) * 1000)
            stages["painted"].append((b - a) * 1000)
            for start, took, label in data.get("busy", []):
                overlap = min(b, start + took / 1000) - max(a, start)
                if overlap > 0:
                    busy_by[label.split(" [")[0]] += overlap * 1000
                    busy_total += overlap * 1000
        out.append(
            "    late keys, ms after the driver read them (mean): "
            + ", ".join(f"{n} {statistics.mean(v):.1f}" for n, v in stages.items())
        )
        out.append(
            f"    in their windows: {busy_total:.0f} ms in callbacks >= 0.5 ms, by kind:"
            + "".join(
                f"\n      {ms:7.0f}  {label[:120]}"
                for label, ms in sorted(busy_by.items(), key=lambda kv: -kv[1])[:12]
            )
        )
        total = sum((k["painted"] - k["arrived"]) * 1000 for k in late)
        out.append(
            f"    {len(late)} keys >= {late_ms:.0f} ms ({total:.0f} ms in all; "
            f"{covered:.0f} ms of it in slow callbacks), what ran meanwhile (ms, keys hit):"
        )
        for label, held in sorted(blame.items(), key=lambda kv: -kv[1])[:10]:
            out.append(f"      {held:7.0f} {hits[label]:4d}  {label[:150]}")
        for name, held in sorted(thread_ms.items(), key=lambda kv: -kv[1])[:5]:
            out.append(f"      {held:7.0f}       thread: {name}")
        out.append("    main-thread functions most sampled in those callbacks (samples):")
        for name, count in funcs.most_common(20):
            out.append(f"      {count:5d}  {name}")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# The dashboard with an event source (the `load` measurement's program in the terminal)


PATCHES = {
    "widths": "a changed table cell re-measures its column only when it grows",
    "logcap": "the Logs pane draws at most 100 lines per batch (not 400)",
    "gil05ms": "the GIL switch interval at 0.5 ms, not Python's 5 ms (tried: no gain)",
    "notoast": "no notification toasts at all (saves and reloads say nothing on screen)",
    "gcdefault": "Python's gc as it comes (no freeze, threshold 700)",
    "young700": "young collections every 700 allocations (Python's default), the rest as shipped",
    "young3000": "young collections every 3,000 allocations, the rest as shipped",
    "keysup": "Up/Down travel up to the app for the table's binding (Textual's own path)",
    "fps60": "Textual's 60 frames a second (devtui asks for 120)",
}


def apply_patches(patches: tuple[str, ...]) -> None:
    """Experiments for the report (`load --patch NAME`): proposed changes to tui/, applied
    here by monkeypatching so the numbers with and without come from the same tree."""
    if "widths" in patches:
        from rich.cells import cell_len
        from rich.text import Text

        from tui.panes.base import PaneTable

        update_cell = PaneTable.update_cell

        def grow_only(
            self: PaneTable,
            row_key: Any,
            column_key: Any,
            value: Any,
            *,
            update_width: bool = False,
        ) -> None:
            # DataTable re-measures every cell of a column when a cell got narrower (O(rows)
            # per changed cell, on the next idle); only a wider cell needs the column to grow.
            if update_width:
                plain = value.plain if isinstance(value, Text) else str(value)
                width = max((cell_len(line) for line in plain.splitlines()), default=0)
                update_width = width > self.columns[column_key].content_width
            update_cell(self, row_key, column_key, value, update_width=update_width)

        PaneTable.update_cell = grow_only  # type: ignore[method-assign]
    if "fps60" in patches:
        os.environ["TEXTUAL_FPS"] = "60"  # read when Textual is first imported: not yet
    if "keysup" in patches:
        from tui.panes.base import PaneTable

        del PaneTable.on_key  # the table's keys go the long way, through the app
    if "young700" in patches or "young3000" in patches:
        import tui.gc_policy

        tui.gc_policy.YOUNG = 700 if "young700" in patches else 3000
    if "gcdefault" in patches:
        import tui.gc_policy

        tui.gc_policy.YOUNG = 700
        tui.gc_policy.freeze = lambda: None
    if "logcap" in patches:
        import tui.panes.logs_pane

        tui.panes.logs_pane.PER_FLUSH = 100


def dashboard_main(
    config_path: str,
    rate: int,
    go_file: str,
    stats_file: str,
    lifetime: float,
    profile: str | None = None,
    patches: tuple[str, ...] = (),
    save_file: str | None = None,
    save_every: float = 2.0,
    trace_slow: str | None = None,
) -> int:
    """The dashboard as `devtui` runs it, plus `rate` events a second on core.bus once
    `go_file` exists. Counts go to `stats_file` every second; with `profile`, cProfile
    of the event loop's thread while `go_file` exists is written there when it goes.
    While `save_file` exists, the app saves a pasted host every `save_every` seconds, by
    the paste's own code path (a locked, re-read, atomic save in a thread, then the panes
    redrawn); the count of saves goes into `save_file`. With `trace_slow`, a SlowTrace of the
    whole run is written there when `go_file` goes."""
    import cProfile

    from sshcore import ops
    from sshcore.config import Config
    from sshcore.events import Event, HostLost, TunnelConnectionClosed, TunnelConnectionOpened
    from tui.launch import build_app

    apply_patches(patches)
    tracer = SlowTrace(go_file, save_file) if trace_slow else None
    if tracer is not None:
        tracer.install()
    config = Config.load(config_path)
    app = build_app(config)
    if "notoast" in patches:
        from tui.app import DevTuiApp

        DevTuiApp.notify = lambda self, *a, **k: None  # type: ignore[method-assign]
    if "gil05ms" in patches:
        sys.setswitchinterval(0.0005)
    profiler = cProfile.Profile() if profile else None

    async def publish() -> None:
        await app.core_ready.wait()
        assert app.core is not None
        bus = app.core.bus
        tunnels = list(config.tunnels) or ["none"]
        hosts = list(config.hosts)
        while not os.path.exists(go_file):
            await asyncio.sleep(0.05)
        if profiler is not None:
            profiler.enable()
        start = time.perf_counter()
        sent = 0
        written = start
        while os.path.exists(go_file):  # the bench removes it when done
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            due = int((now - start) * rate)
            for _ in range(min(due - sent, max(1, rate // 10))):  # catch up in bounded steps
                tunnel = tunnels[sent % len(tunnels)]
                peer = f"127.0.0.1:{40000 + sent % 20000}"
                event: Event
                if sent % 10 == 9:
                    event = HostLost(hosts[sent % len(hosts)], "bench: synthetic event")
                elif sent % 2:
                    event = TunnelConnectionClosed(tunnel, peer, CHUNK, CHUNK)
                else:
                    event = TunnelConnectionOpened(tunnel, peer, "127.0.0.1:8000")
                bus.publish(event)
                sent += 1
            if now - written >= 1:
                written = now
                stats = {"sent": sent, "seconds": now - start, "behind": due - sent}
                Path(stats_file).write_text(json.dumps(stats))
        if profiler is not None and profile:
            profiler.disable()
            profiler.dump_stats(profile)
        if tracer is not None and trace_slow:
            tracer.dump(trace_slow)

    async def saves() -> None:
        if save_file is None:
            return
        await app.core_ready.wait()
        while not os.path.exists(save_file):
            await asyncio.sleep(0.05)
        count = 0
        while os.path.exists(save_file):  # the bench removes it when done
            await asyncio.sleep(save_every)
            # What the paste (`p`, Enter) does after its modal (HostActions._add_line), less
            # its cursor move to the new host, which would derail the key series.
            line = f"ssh -p 2222 saved@10.250.{count // 250}.{count % 250 + 1}"
            outcome = await asyncio.to_thread(ops.add_from_line, config, line)
            app.note_saved()
            app._said(outcome.lines)
            app.refresh_panes(saved=True)
            count += 1
            # The hand edits the app has reloaded so far show as their hosts in its config.
            seen = sum(name.startswith("hand-") for name in config.hosts)
            with contextlib.suppress(OSError):
                Path(save_file).write_text(json.dumps({"saves": count, "reloaded": seen}))

    async def main() -> int:
        source = asyncio.create_task(publish())
        saver = asyncio.create_task(saves())
        limit = asyncio.get_running_loop().call_later(lifetime, app.exit)
        try:
            result = await app.run_async()
        finally:
            limit.cancel()
            for task in (source, saver):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if app.core is not None:
                await app.core.close()
        return result if isinstance(result, int) else 0

    return asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# start


async def one_start(
    kind: str, argv: list[str], env: dict[str, str], poll: float, first_host: str
) -> dict[str, float]:
    """Seconds from respawn to drawn (and, for devtui, to the core being up)."""
    import psutil

    tmux = Tmux(env)
    await tmux.start()
    try:
        await tmux.respawn(argv)
        start = time.perf_counter()

        def drawn(text: str) -> bool:
            if kind == "bare":
                return BARE_TEXT in text
            # The demo's first paint is its four panes; its host comes with the core.
            return all(t in text for t in TITLES) and (not first_host or first_host in text)

        waited, _ = await tmux.wait_screen(drawn, 30, poll, f"{kind} to draw")
        pid = await tmux.pane_pid()
        times = psutil.Process(pid).cpu_times()
        # CPU time of the program when its screen was seen drawn: what it did to get there,
        # and (unlike the wall time) barely moved by other programs on a busy machine.
        result = {"drawn": waited, "cpu": times.user + times.system}
        if kind == "devtui":
            await tmux.wait_screen(lambda t: "starting…" not in t, 30, poll, "the core")
            result["core"] = time.perf_counter() - start
            await quit_app(tmux, pid, [["q"], ["y"]])
        else:
            await quit_app(tmux, pid, [["C-q"]])
        return result
    finally:
        await tmux.close()


async def bench_start(args: argparse.Namespace) -> dict[str, Any]:
    runs = args.runs
    if runs < 7:
        print(f"start: only {runs} runs: fewer than 7 is a smoke run, not a result")
    poll = args.poll_ms / 1000
    with tempfile.TemporaryDirectory(prefix="devtui-bench-") as tmp:
        folder = Path(tmp)
        home = folder / "home"
        home.mkdir()
        config = small_config(folder)
        bare = folder / "bare.py"
        bare.write_text(BARE_APP)
        env = clean_env(home)
        commands = {
            "bare": [PYTHON, str(bare)],
            "devtui": [DEVTUI, "demo"] if args.demo else [DEVTUI, "--config", str(config)],
        }
        first_host = "" if args.demo else "alpha"
        samples: dict[str, list[dict[str, float]]] = {k: [] for k in commands}
        print(f"start: {runs} runs each, interleaved (plus one warm-up each)", flush=True)
        for i in range(runs + 1):
            order = list(commands) if i % 2 else list(reversed(commands))
            for kind in order:
                result = await one_start(kind, commands[kind], env, poll, first_host)
                if i:  # the first round writes .pyc files and warms the disk cache
                    samples[kind].append(result)
            if i:
                bare_run, devtui_run = samples["bare"][-1], samples["devtui"][-1]
                print(
                    f"  run {i}: bare {bare_run['drawn']:.3f} s (CPU {bare_run['cpu']:.2f} s), "
                    f"devtui {devtui_run['drawn']:.3f} s (CPU {devtui_run['cpu']:.2f} s; "
                    f"core up {devtui_run['core']:.3f} s), load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    bare_s = statistics.median(s["drawn"] for s in samples["bare"])
    devtui_s = statistics.median(s["drawn"] for s in samples["devtui"])
    core_s = statistics.median(s["core"] for s in samples["devtui"])
    pairs = [
        d["drawn"] / b["drawn"] for b, d in zip(samples["bare"], samples["devtui"], strict=True)
    ]
    bare_cpu = statistics.median(s["cpu"] for s in samples["bare"])
    devtui_cpu = statistics.median(s["cpu"] for s in samples["devtui"])
    out = {
        "paired_ratio": statistics.median(pairs),
        "bare_cpu_s": bare_cpu,
        "devtui_cpu_s": devtui_cpu,
        "cpu_ratio": devtui_cpu / bare_cpu,
        "bare_s": bare_s,
        "devtui_s": devtui_s,
        "core_s": core_s,
        "ratio": devtui_s / bare_s,
        "core_ratio": core_s / bare_s,
        "runs": runs,
    }
    print(
        f"start: bare Textual app {bare_s:.3f} s, devtui four panes {devtui_s:.3f} s "
        f"-> {out['ratio']:.2f}x (target <= 1.5x); core up {core_s:.3f} s "
        f"({out['core_ratio']:.2f}x); medians of {runs}\n"
        f"start: median of the runs' own ratios {out['paired_ratio']:.2f}x; CPU time when drawn: "
        f"bare {bare_cpu:.3f} s, devtui {devtui_cpu:.3f} s -> {out['cpu_ratio']:.2f}x",
        flush=True,
    )
    return out


# ---------------------------------------------------------------------------------------------
# load


class Sampler:
    """Peak resident memory and CPU time of one process, sampled every `every` seconds."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.every = every
        self.peak_rss = 0
        self.rss: list[int] = []
        self._task: asyncio.Task[None] | None = None

    def cpu(self) -> float:
        times = self.proc.cpu_times()
        return float(times.user + times.system)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        import psutil

        while True:
            try:
                rss = int(self.proc.memory_info().rss)
            except psutil.Error:
                return
            self.rss.append(rss)
            self.peak_rss = max(self.peak_rss, rss)
            await asyncio.sleep(self.every)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def subtitle_shows(dest: str) -> Callable[[str], bool]:
    """Whether a bottom border (the Hosts pane's subtitle) names `dest`."""

    def check(text: str) -> bool:
        return any("╰" in line and f" {dest} " in line for line in text.splitlines())

    return check


SGR = re.compile(r"\x1b\[[0-9;]*m")


def cursor_on(name: str) -> Callable[[str], bool]:
    """Whether the row of `name` is drawn as the cursor row: bold, as no other row is
    (capture-pane -e text; the header row is bold too but never holds a host name)."""
    pattern = re.compile(r"\x1b\[1m(?:\x1b\[[0-9;]*m)* " + re.escape(name) + " ")
    return lambda text: pattern.search(text) is not None


async def press_series(
    tmux: Tmux, position: list[int], presses: int, rows: int, poll: float
) -> dict[str, list[float]]:
    """`presses` Down/Up keys in the Hosts pane. Seconds from send-keys until the new row is
    drawn as the cursor row ("cursor") and until the subtitle names it ("subtitle")."""
    out: dict[str, list[float]] = {"cursor": [], "subtitle": []}
    for _ in range(presses):
        row, step = position
        # Walk down to the last generated host, then back up, and so on.
        if not 0 <= row + step < rows:
            step = -step
        position[1] = step
        key = "Down" if step > 0 else "Up"
        target = row + step
        on_row = cursor_on(f"host-{target}")
        named = subtitle_shows(destination(target))
        start = time.perf_counter()
        await tmux.keys(key)
        cursor = 0.0
        while True:
            text = "\n".join(await tmux.cmd("capture-pane -p -e -t bench"))
            now = time.perf_counter() - start
            if not cursor and on_row(text):
                cursor = now
            if cursor and named(SGR.sub("", text)):
                break
            if now > 30:
                raise TmuxError(f"timed out waiting for host-{target} selected:\n{text}")
            await asyncio.sleep(poll)
        out["cursor"].append(cursor)
        out["subtitle"].append(now)
        position[0] = target
        await asyncio.sleep(random.uniform(0.03, 0.12))  # never in step with the app's timers
    return out


async def hand_edits(config: Path, every: float) -> int:
    """Until cancelled: every `every` seconds, half a period after the app's saves, a host
    appended to the config as an editor would save it (whole file replaced), taking the
    config's lock as devtui's own saves do so that neither loses the other's host. Returns
    the number of edits."""
    import filelock

    count = 0
    await asyncio.sleep(every / 2)
    try:
        while True:
            lock = filelock.FileLock(config.with_name(config.name + ".lock"), timeout=10)
            with lock:
                text = config.read_text()
                text += f'\n[hosts.hand-{count}]\nhostname = "10.251.0.{count % 250 + 1}"\n'
                temp = config.with_name(config.name + ".edit")
                temp.write_text(text)
                os.replace(temp, config)
            count += 1
            await asyncio.sleep(every)
    except asyncio.CancelledError:
        return count


async def wait_file(path: Path, timeout: float) -> None:
    """Until `path` exists and has stopped growing (bounded)."""
    deadline = time.monotonic() + timeout
    size = -1
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size == size:
            return
        size = path.stat().st_size if path.exists() else -1
        await asyncio.sleep(0.5)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(series: dict[str, list[float]]) -> dict[str, float]:
    """p50/p95/max of the cursor row's repaint; p50/p95 of the subtitle's."""
    ms = [v * 1000 for v in series["cursor"]]
    sub = [v * 1000 for v in series["subtitle"]]
    return {
        "n": len(ms),
        "p50_ms": statistics.median(ms),
        "p95_ms": percentile(ms, 0.95),
        "max_ms": max(ms),
        "subtitle_p50_ms": statistics.median(sub),
        "subtitle_p95_ms": percentile(sub, 0.95),
    }


async def table_presses(
    folder: Path, env: dict[str, str], rows: int, args: Any
) -> dict[str, list[float]]:
    """The baseline of key -> repaint: a bare Textual DataTable of `rows` rows whose border
    subtitle names the selected row, as the Hosts pane's does; same keys, same polling."""
    import inspect

    script = folder / "table.py"
    script.write_text(TABLE_APP.format(destination=inspect.getsource(destination)))
    tmux = Tmux(env)
    await tmux.start()
    try:
        await tmux.respawn([PYTHON, str(script), str(rows)])
        poll = args.poll_ms / 1000
        await tmux.wait_screen(subtitle_shows(destination(0)), 30, poll, "the table")
        pid = await tmux.pane_pid()
        latencies = await press_series(tmux, [0, 1], args.presses // 2, rows, poll)
        await quit_app(tmux, pid, [["C-q"]])
        return latencies
    finally:
        await tmux.close()


async def bench_load(args: argparse.Namespace) -> dict[str, Any]:
    poll = args.poll_ms / 1000
    hosts, tunnels, ssh_hosts = args.hosts, args.tunnels, args.ssh_hosts
    idle_hosts = hosts - ssh_hosts
    with tempfile.TemporaryDirectory(prefix="devtui-bench-") as tmp:
        folder = Path(tmp)
        home = folder / "home"
        home.mkdir()
        table = await table_presses(folder, clean_env(home), idle_hosts, args)
        print(f"  bare DataTable ({idle_hosts} rows): {fmt(summary(table))}", flush=True)
        site = Site(folder, args.lifetime)
        tmux: Tmux | None = None
        pid = 0
        try:
            info = await site.start()
            ports = free_ports(tunnels)
            config = site_config(
                folder,
                info,
                idle_hosts=idle_hosts,
                ssh_hosts=ssh_hosts,
                tunnels=tunnels,
                ports=ports,
            )
            go_file = folder / "go"
            stats_file = folder / "events.json"
            save_file = folder / "saves"
            tmux = Tmux(clean_env(home))
            await tmux.start()
            argv = [
                PYTHON,
                __file__,
                "_dashboard",
                "--config",
                str(config),
                "--rate",
                str(args.rate),
                "--go-file",
                str(go_file),
                "--stats-file",
                str(stats_file),
                "--lifetime",
                str(args.lifetime),
                "--save-file",
                str(save_file),
                "--save-every",
                str(args.edit_every),
            ]
            if args.profile:
                argv += ["--profile", str(args.profile.resolve())]
            if args.trace_slow:
                argv += ["--trace-slow", str(args.trace_slow.resolve())]
            for patch in args.patch:
                argv += ["--patch", patch]
            if args.patch:
                print(f"load: with patches {', '.join(args.patch)}", flush=True)
            await tmux.respawn(argv)
            up = f"{tunnels}/{tunnels} tunnels on"
            waited, _ = await tmux.wait_screen(lambda t: up in t, 90, 0.1, up)
            pid = await tmux.pane_pid()
            print(f"load: {hosts} hosts, {tunnels} tunnels on after {waited:.1f} s", flush=True)
            sampler = Sampler(pid)
            sampler.start()
            await asyncio.sleep(2)
            await tmux.keys("1")
            await tmux.wait_screen(subtitle_shows(destination(0)), 10, poll, "host-0 selected")
            position = [0, 1]
            quiet = await press_series(tmux, position, args.presses // 2, idle_hosts, poll)
            print(f"  dashboard, quiet: {fmt(summary(quiet))}", flush=True)
            rss_quiet = sampler.peak_rss
            # Every tunnel carries its echoes from here on (unless --no-traffic).
            connected = {"connected": 0}
            if not args.no_traffic:
                connected = await site.ask({"do": "traffic", "ports": ports}, timeout=60)
            go_file.touch()
            print(
                f"  traffic on {connected['connected']} tunnels, {args.rate} events/s", flush=True
            )
            await asyncio.sleep(3)  # the log fills, the counters move
            before = await site.ask({"do": "stats"}, 10)
            cpu0, wall0 = sampler.cpu(), time.perf_counter()
            loaded = await press_series(tmux, position, args.presses, idle_hosts, poll)
            cpu1, wall1 = sampler.cpu(), time.perf_counter()
            after = await site.ask({"do": "stats"}, 10)
            events = json.loads(stats_file.read_text())
            # The same load, and now the app saves a pasted host every --edit-every seconds
            # while the file is also edited by hand (a host appended) as often, in between.
            edits: dict[str, Any] = {}
            if args.edit_every > 0:
                save_file.write_text("{}")
                editor = asyncio.create_task(hand_edits(config, args.edit_every))
                cpu2, wall2 = sampler.cpu(), time.perf_counter()
                edited = await press_series(tmux, position, args.presses, idle_hosts, poll)
                cpu3, wall3 = sampler.cpu(), time.perf_counter()
                editor.cancel()
                hand = await editor
                app_saw = json.loads(save_file.read_text() or "{}")
                save_file.unlink()
                edits = {
                    "load_edits": summary(edited),
                    "saves": app_saw.get("saves", 0),
                    "hand_edits": hand,
                    "reloads": app_saw.get("reloaded", 0),
                    "cpu_percent_edits": 100 * (cpu3 - cpu2) / (wall3 - wall2),
                }
            go_file.unlink()  # the events stop (and a profile is written)
            if args.profile:
                await wait_file(args.profile, 30)
            if args.trace_slow:
                await wait_file(args.trace_slow, 30)
            await sampler.stop()
            screen = await tmux.screen()
            rate = (after["bytes"] - before["bytes"]) / (wall1 - wall0)
            out = {
                "table": summary(table),
                "quiet_ratio": summary(quiet)["p95_ms"] / summary(table)["p95_ms"],
                "load_ratio": summary(loaded)["p95_ms"] / summary(table)["p95_ms"],
                "quiet": summary(quiet),
                "load": summary(loaded),
                "p95_ratio": summary(loaded)["p95_ms"] / summary(quiet)["p95_ms"],
                "peak_rss_mb": sampler.peak_rss / 2**20,
                "rss_quiet_mb": rss_quiet / 2**20,
                "cpu_percent": 100 * (cpu1 - cpu0) / (wall1 - wall0),
                "echo_bytes_per_s": rate,
                "ssh_connections": after["connections"],
                "events_per_s": events["sent"] / events["seconds"],
                "events_behind": events["behind"],
                "tunnels_carrying": connected["connected"],
                **edits,
            }
            print(
                f"  dashboard, load: {fmt(out['load'])} (target p95 <= 50 ms)\n"
                f"  p95 ratios: quiet dashboard {out['quiet_ratio']:.2f}x the bare table, "
                f"loaded {out['load_ratio']:.2f}x\n"
                f"  peak RSS {out['peak_rss_mb']:.0f} MB (target <= 150 MB; "
                f"{out['rss_quiet_mb']:.0f} MB before the load), dashboard CPU "
                f"{out['cpu_percent']:.0f} % of a core under load, echo traffic "
                f"{rate / 1e6:.2f} MB/s each way, {out['events_per_s']:.0f} events/s "
                f"published ({out['events_behind']} behind), "
                f"{out['ssh_connections']} SSH connections",
                flush=True,
            )
            if edits:
                print(
                    f"  dashboard, load + saves + reloads: {fmt(edits['load_edits'])} "
                    f"(target p95 <= 50 ms)\n"
                    f"  {edits['saves']} saves in the app and {edits['hand_edits']} hand edits "
                    f"(the app had reloaded {edits['reloads']} at its last save) during the keys, dashboard CPU "
                    f"{edits['cpu_percent_edits']:.0f} % of a core",
                    flush=True,
                )
            if args.trace_slow and args.trace_slow.exists():
                print(f"  slow-callback trace ({args.trace_slow}):", flush=True)
                print(trace_report(args.trace_slow), flush=True)
            if args.show_screen:
                print(screen)
            return out
        finally:
            if tmux is not None:
                if pid:
                    await quit_app(tmux, pid, [["q"], ["y"]])
                await tmux.close()
            await site.close()


def fmt(s: dict[str, float]) -> str:
    return (
        f"key -> cursor row p50 {s['p50_ms']:.1f} ms, p95 {s['p95_ms']:.1f} ms, "
        f"max {s['max_ms']:.1f} ms; -> subtitle p50 {s['subtitle_p50_ms']:.1f} ms, "
        f"p95 {s['subtitle_p95_ms']:.1f} ms ({s['n']:.0f} presses)"
    )


# ---------------------------------------------------------------------------------------------
# idle


async def bench_idle(args: argparse.Namespace) -> dict[str, Any]:
    import psutil

    tunnels = args.idle_tunnels
    with tempfile.TemporaryDirectory(prefix="devtui-bench-") as tmp:
        folder = Path(tmp)
        home = folder / "home"
        home.mkdir()
        bare_py = folder / "bare.py"
        bare_py.write_text(BARE_APP)
        site = Site(folder, args.lifetime)
        apps: dict[str, Tmux] = {}
        pids: dict[str, int] = {}
        try:
            info = await site.start()
            ports = free_ports(tunnels)
            config = site_config(
                folder, info, idle_hosts=3, ssh_hosts=2, tunnels=tunnels, ports=ports
            )
            env = clean_env(home)
            for kind, argv in (
                ("devtui", [DEVTUI, "--config", str(config)]),
                ("bare", [PYTHON, str(bare_py)]),
            ):
                apps[kind] = Tmux(env)
                await apps[kind].start()
                await apps[kind].respawn(argv)
            up = f"{tunnels}/{tunnels} tunnels on"
            await apps["devtui"].wait_screen(lambda t: up in t, 60, 0.1, up)
            await apps["bare"].wait_screen(lambda t: BARE_TEXT in t, 30, 0.1, "the bare app")
            for kind, tmux in apps.items():
                pids[kind] = await tmux.pane_pid()
            probe = await site.ask({"do": "probe", "ports": ports}, 60)
            await asyncio.sleep(args.settle)
            procs = {k: psutil.Process(p) for k, p in pids.items()}

            def cpu(p: psutil.Process) -> float:
                t = p.cpu_times()
                return float(t.user + t.system)

            start = {k: cpu(p) for k, p in procs.items()}
            wall0 = time.perf_counter()
            await asyncio.sleep(args.seconds)
            wall = time.perf_counter() - wall0
            used = {k: cpu(p) - start[k] for k, p in procs.items()}
            rss = procs["devtui"].memory_info().rss / 2**20
            screen = await apps["devtui"].screen()
            out = {
                "tunnels_answering": probe["ok"],
                "seconds": wall,
                "devtui_cpu_percent": 100 * used["devtui"] / wall,
                "bare_cpu_percent": 100 * used["bare"] / wall,
                "devtui_rss_mb": rss,
            }
            print(
                f"idle: {tunnels} tunnels on ({probe['ok']} answered a probe), {wall:.0f} s: "
                f"devtui {out['devtui_cpu_percent']:.2f} % of a core (target <= 2 %), "
                f"bare Textual app {out['bare_cpu_percent']:.2f} %; devtui RSS {rss:.0f} MB",
                flush=True,
            )
            if args.show_screen:
                print(screen)
            return out
        finally:
            for kind, tmux in apps.items():
                if kind in pids:
                    keys = [["q"], ["y"]] if kind == "devtui" else [["C-q"]]
                    await quit_app(tmux, pids[kind], keys)
                await tmux.close()
            await site.close()


# ---------------------------------------------------------------------------------------------


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("start", "load", "idle", "all"):
        p = sub.add_parser(name)
        p.add_argument("--runs", type=int, default=9, help="start: runs of each (>= 7)")
        p.add_argument("--demo", action="store_true", help="start: `devtui demo`, not a config")
        p.add_argument("--poll-ms", type=float, default=2.0, help="screen polling interval")
        p.add_argument("--hosts", type=int, default=500)
        p.add_argument("--tunnels", type=int, default=200)
        p.add_argument("--ssh-hosts", type=int, default=50, help="load: hosts the tunnels use")
        p.add_argument("--rate", type=int, default=1000, help="load: events a second")
        p.add_argument("--presses", type=int, default=200, help="load: keys under load")
        p.add_argument("--idle-tunnels", type=int, default=20)
        p.add_argument("--seconds", type=float, default=20.0, help="idle: measured seconds")
        p.add_argument("--settle", type=float, default=5.0, help="idle: seconds before")
        p.add_argument("--lifetime", type=float, default=600.0, help="servers stop after this")
        p.add_argument("--show-screen", action="store_true", help="print the last screen")
        p.add_argument("--json", type=Path, help="also write the numbers here")
        p.add_argument(
            "--profile", type=Path, help="load: cProfile the dashboard under load to this file"
        )
        p.add_argument(
            "--trace-slow",
            type=Path,
            help="load: record event-loop callbacks >= 8 ms and key timings to this JSON file",
        )
        p.add_argument(
            "--patch",
            action="append",
            default=[],
            choices=sorted(PATCHES),
            help="load: try a proposed change to tui/ (see PATCHES)",
        )
        p.add_argument(
            "--no-traffic", action="store_true", help="load: tunnels up but no bytes (events only)"
        )
        p.add_argument(
            "--edit-every",
            type=float,
            default=2.0,
            help="load: a last series with an in-app save and a hand edit every N s (0: none)",
        )
    site = sub.add_parser("_site")
    site.add_argument("--folder", type=Path, required=True)
    site.add_argument("--lifetime", type=float, default=600.0)
    dash = sub.add_parser("_dashboard")
    dash.add_argument("--config", required=True)
    dash.add_argument("--rate", type=int, default=1000)
    dash.add_argument("--go-file", required=True)
    dash.add_argument("--stats-file", required=True)
    dash.add_argument("--lifetime", type=float, default=600.0)
    dash.add_argument("--profile")
    dash.add_argument("--patch", action="append", default=[], choices=sorted(PATCHES))
    dash.add_argument("--save-file")
    dash.add_argument("--save-every", type=float, default=2.0)
    dash.add_argument("--trace-slow")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if args.what in ("start", "all"):
        results["start"] = await bench_start(args)
    if args.what in ("load", "all"):
        results["load"] = await bench_load(args)
    if args.what in ("idle", "all"):
        results["idle"] = await bench_idle(args)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.what == "_site":
        asyncio.run(site_main(args.folder, args.lifetime))
        return 0
    if args.what == "_dashboard":
        return dashboard_main(
            args.config,
            args.rate,
            args.go_file,
            args.stats_file,
            args.lifetime,
            args.profile,
            tuple(args.patch),
            args.save_file,
            args.save_every,
            args.trace_slow,
        )
    if shutil.which("tmux") is None:
        print("bench/dashboard.py needs tmux", file=sys.stderr)
        return 1
    try:
        results = asyncio.run(run(args))
    except (TmuxError, RuntimeError, TimeoutError) as e:
        print(f"bench/dashboard.py: {e}", file=sys.stderr)
        return 1
    results["load_average"] = os.getloadavg()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
