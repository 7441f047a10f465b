"""Benchmark: the dashboard among hostile peers (issue 17, "done when").

    .venv/bin/python bench/hostile.py                # ~1 min
    .venv/bin/python bench/hostile.py --json /tmp/hostile.json

The installed dashboard (`python -m tui --config PATH`) runs in tmux at 80x24 with, at once:

- a hostile endpoint: not an SSH server, it answers every connection with a plaintext
  SSH_MSG_DISCONNECT whose reason is `[B="x]` (once enough to end the dashboard); `T`
  (test every host) is pressed, so the dashboard meets it;
- a hostile trusted server (its host key known, key login): its port table grows to
  `--listeners` (20,000) listeners after the first look, with `auto_forward = "always"`,
  and its `cmd:` log source sends one NUL and then `--flood-mib` MiB with no newline;
- a hostile config: log source names and a user name full of markup;
- a good host with one local tunnel to an echo target here, through which a client echoes
  1 KiB every 50 ms all along ("other tunnels keep forwarding").

Measured: key -> screen (Down/Up in the Hosts pane until the new row is drawn as the cursor
row, as bench/dashboard.py load does) p50/p95/max while the flood runs; the dashboard's peak
resident memory (psutil, every 0.5 s); echoes sent / answered and the slowest; whether the
dashboard is still running at the end. Targets: key p95 < 500 ms, peak RSS < 300 MiB, no
echo lost, still running.

A benchmark, not a test: it prints numbers. Every server listens on 127.0.0.1 and stops at
the end; only what it started is stopped (tmux by its private socket, processes by PID).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE), str(ROOT / "tests")]

from dashboard import (  # noqa: E402  (bench/dashboard.py: the tmux driver and helpers)
    PYTHON,
    TITLES,
    Sampler,
    Tmux,
    TmuxError,
    clean_env,
    cursor_on,
    percentile,
    quit_app,
)
from harness.asyncssh_server import AsyncsshServer  # noqa: E402
from harness.hostile import DisconnectingEndpoint, Flood, HostileServer, Reply  # noqa: E402

HOSTS = 30  # hosts the key presses walk through
SS = "ss -ltnH"


def closed_ports(count: int) -> list[int]:
    """Ports of 127.0.0.1 that nothing listens on (taken and let go again)."""
    from harness.net import free_port

    return [free_port() for _ in range(count)]


def table(ports: range) -> bytes:
    return b"".join(b"LISTEN 0 128 127.0.0.1:%d 0.0.0.0:*\n" % p for p in ports)


def config_text(
    folder: Path, evil: int, flood: HostileServer, good: AsyncsshServer, echo: int, local: int
) -> str:
    known = folder / "known_hosts"
    known.write_text(flood.known_hosts_line() + "\n" + good.known_hosts_line() + "\n")
    lines = ["[settings]", f'known_hosts = "{known}"', f'log_file = "{folder / "devtui.log"}"']
    lines += ["discover_interval = 1", ""]
    # `T` tests every host: these answer from 127.0.0.1 only, on ports nothing listens on
    # (connection refused), never from another address.
    for i, port in enumerate(closed_ports(HOSTS)):
        lines += [f"[hosts.host-{i}]", 'hostname = "127.0.0.1"', f"port = {port}"]
        lines += ['user = "dev"', ""]
    lines += ["[hosts.zz-evil]", 'hostname = "127.0.0.1"', f"port = {evil}", 'user = "x"', ""]
    flood_key = flood.client_key("tester")
    lines += [
        "[hosts.zz-flood]",
        'hostname = "127.0.0.1"',
        f"port = {flood.port}",
        'user = "tester"',
        f'identity_file = "{flood_key}"',
        'auto_forward = "always"',
        # A hostile config: markup in what the Logs pane and the palette name.
        'log_sources = ["cmd:flood [B=\\"x] [$v] [/]", "/var/log/[reverse]x[/reverse]"]',
        "",
        "[hosts.zz-good]",
        'hostname = "127.0.0.1"',
        f"port = {good.port}",
        'user = "tester"',
        f'identity_file = "{good.client_key("tester")}"',
        "",
        "[tunnels.web]",
        'host = "zz-good"',
        'kind = "local"',
        f'listen = "127.0.0.1:{local}"',
        f'target = "127.0.0.1:{echo}"',
        "autostart = true",
        "",
        "[tunnels.flood-web]",  # connects the hostile host at start
        'host = "zz-flood"',
        'kind = "local"',
        f'listen = "127.0.0.1:{local + 1}"',
        'target = "127.0.0.1:9"',
        "autostart = true",
        "",
    ]
    return "\n".join(lines)


async def echo_server() -> tuple[asyncio.AbstractServer, int]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


class Echoes:
    """1 KiB through the good tunnel every `every` seconds, on one connection."""

    def __init__(self, port: int, every: float = 0.05) -> None:
        self.port, self.every = port, every
        self.sent = self.answered = 0
        self.rtts: list[float] = []
        self.errors: list[str] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        payload = random.randbytes(1024)
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                while True:
                    start = time.perf_counter()
                    self.sent += 1
                    writer.write(payload)
                    got = await asyncio.wait_for(reader.readexactly(len(payload)), 10)
                    if got != payload:
                        self.errors.append("a changed echo")
                    self.answered += 1
                    self.rtts.append(time.perf_counter() - start)
                    await asyncio.sleep(self.every)
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as e:
                self.errors.append(f"{type(e).__name__}: {e}")
                await asyncio.sleep(0.5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def presses(tmux: Tmux, count: int) -> list[float]:
    """Down/Up in the Hosts pane: seconds until the new row is drawn as the cursor row."""
    out: list[float] = []
    row, step = 0, 1
    for _ in range(count):
        if not 0 <= row + step < HOSTS:
            step = -step
        target = row + step
        on_row = cursor_on(f"host-{target}")
        start = time.perf_counter()
        await tmux.keys("Down" if step > 0 else "Up")
        while True:
            text = "\n".join(await tmux.cmd("capture-pane -p -e -t bench"))
            waited = time.perf_counter() - start
            if on_row(text):
                break
            if waited > 30:
                raise RuntimeError(f"host-{target} never drawn as the cursor row:\n{text}")
            await asyncio.sleep(0.002)
        out.append(waited)
        row = target
        await asyncio.sleep(random.uniform(0.03, 0.12))
    return out


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="devtui-hostile-"))
    home = folder / "home"
    (home / ".ssh").mkdir(parents=True)
    echo, echo_port = await echo_server()
    flood_bytes = args.flood_mib << 20
    flood = HostileServer(
        {"flood": Flood(head=b"\0", chunk=b"y" * 65536, limit=flood_bytes)}, sftp=False
    )
    flood.replies[SS] = Reply(table(range(40000, 40002)))
    flood.replies["cat /proc/net/tcp"] = Reply(b"NO-PROC\n")
    good = AsyncsshServer()
    await flood.start()
    await good.start()
    local = 30000 + random.randrange(20000)
    result: dict[str, Any] = {}
    async with DisconnectingEndpoint('[B="x]') as evil:
        config = folder / "config.toml"
        config.write_text(config_text(folder, evil.port, flood, good, echo_port, local))
        config.chmod(0o600)
        tmux = Tmux(clean_env(home))
        await tmux.start()
        sampler: Sampler | None = None
        echoes = Echoes(local)
        try:
            await tmux.respawn([PYTHON, "-m", "tui", "--config", str(config)])
            await tmux.wait_screen(lambda t: all(x in t for x in TITLES), 30, 0.05, "the panes")
            pid = await tmux.pane_pid()
            sampler = Sampler(pid)
            sampler.start()
            await tmux.wait_screen(lambda t: "2/2 tunnels on" in t, 30, 0.05, "the tunnels up")
            echoes.start()
            await asyncio.sleep(2.5)  # the hostile host's first looks: the starting picture
            flood.replies[SS] = Reply(table(range(10000, 10000 + args.listeners)))
            await tmux.keys("1", "T")  # test every host: the hostile endpoint among them
            await tmux.wait_screen(lambda t: "OK," in t and "failed" in t, 60, 0.05, "results")
            await tmux.keys("End")  # the failures come first, by name: zz-evil is the last
            await tmux.wait_screen(lambda t: "zz-evil" in t, 10, 0.05, "zz-evil")
            # Its reason as sent, once the error toasts over the dialog have gone.
            with contextlib.suppress(TmuxError):
                await tmux.wait_screen(lambda t: '[B="x]' in t, 15, 0.1, "the reason")
            shown = await tmux.screen()
            result["endpoint_shown"] = '[B="x]' in shown
            result["endpoint_screen"] = shown
            await tmux.keys("Escape")
            await asyncio.sleep(0.5)
            result["keys"] = await presses(tmux, args.presses)
            await asyncio.sleep(1.0)
            result["running"] = sampler.proc.is_running()
            await echoes.stop()  # before quitting: the quit stops the tunnel
            await quit_app(tmux, pid, [["q"], ["y"]])
        finally:
            await echoes.stop()
            if sampler is not None:
                await sampler.stop()
            await tmux.close()
            await flood.close()
            await good.close()
            echo.close()
    log = (folder / "devtui.log").read_text(errors="replace")
    keys_ms = [k * 1000 for k in result["keys"]]
    rtts = [r * 1000 for r in echoes.rtts] or [0.0]
    return {
        "listeners": args.listeners,
        "flood_mib": args.flood_mib,
        "endpoint_reason_shown": result["endpoint_shown"],
        "endpoint_screen": result["endpoint_screen"],
        "still_running": result["running"],
        "key_p50_ms": statistics.median(keys_ms),
        "key_p95_ms": percentile(keys_ms, 0.95),
        "key_max_ms": max(keys_ms),
        "presses": len(keys_ms),
        "peak_rss_mib": (sampler.peak_rss if sampler else 0) / (1 << 20),
        "echoes_sent": echoes.sent,
        "echoes_answered": echoes.answered,
        "echo_errors": echoes.errors[:3],
        "echo_p50_ms": statistics.median(rtts),
        "echo_max_ms": max(rtts),
        "flood_lines_in_log": "more ports opened on zz-flood" in log,
        "flood_sent_mib": flood.replies["flood"].sent / (1 << 20),  # type: ignore[union-attr]
        "auto_forwards": log.count("forwarded"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listeners", type=int, default=20_000)
    parser.add_argument("--flood-mib", type=int, default=64)
    parser.add_argument("--presses", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    numbers = asyncio.run(bench(args))
    for key, value in numbers.items():
        if key == "endpoint_screen":
            continue  # in --json
        print(f"  {key}: {value:.1f}" if isinstance(value, float) else f"  {key}: {value}")
    ok = (
        numbers["still_running"]
        and numbers["key_p95_ms"] < 500
        and numbers["peak_rss_mib"] < 300
        and numbers["echoes_sent"] - numbers["echoes_answered"] <= 1
    )
    print(
        "targets (key p95 < 500 ms, RSS < 300 MiB, no echo lost, running):",
        "met" if ok else "MISSED",
    )
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
