"""Benchmark: what watching a host's ports costs, per poll and at both ends, for 1 and 50
connected hosts.

    .venv/bin/python bench/watch_cost.py                 # 200 looks per variant (~2 min)
    .venv/bin/python bench/watch_cost.py --looks 30      # quicker

One throwaway OpenSSH sshd (tests/harness) behind a counting TCP proxy (tests/harness/proxy.py);
N devtui Core hosts all point at it (50 hosts can share one sshd: each has its own
connection). Every host runs LOOKS/N looks one after another (what its watcher does once
per discover_interval), all hosts at once. Three variants, interleaved on the same connections:

  noop    `exit 0`: the price of any command on a shared connection (channel, exec, exit)
  table   the old look: `cat /proc/net/tcp /proc/net/tcp6` (every socket, no program names)
  watch   today's look (sshcore.discovery.PROC_COMMAND): LISTEN rows only, plus the
          program and pid of each, matched on the host

Per look: client CPU ms (this process), server CPU ms (every sshd process below the
listener, with the commands it ran and reaped), bytes client->server and server->client
(counted by the proxy). Ratios are to `noop` measured in the same run. The last lines turn
the per-look cost into the load of watching every 3 s (the default discover_interval).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import psutil  # noqa: E402

from sshcore import discovery  # noqa: E402
from sshcore.core import Core  # noqa: E402
from sshcore.remote_commands import MIB, run_bounded  # noqa: E402
from tests.coreutil import make_core, sshd_host  # noqa: E402
from tests.harness.proxy import TcpProxy  # noqa: E402
from tests.harness.sshd import Sshd  # noqa: E402

OLD_TABLE = "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null || echo NO-PROC"
INTERVAL = 3.0  # the default discover_interval
IN_FLIGHT = 8


def sshd_cpu(sshd: Sshd) -> float:
    """CPU seconds of every sshd process below the listener, with their reaped children
    (the shells and commands each look runs)."""
    total = 0.0
    if sshd.pid is None:
        return total
    with contextlib.suppress(psutil.Error):
        for proc in psutil.Process(sshd.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
    return total


def variants(core: Core) -> dict[str, Callable[[str], Awaitable[object]]]:
    async def command(name: str, text: str) -> object:
        conn = await core.connection(name)
        return await run_bounded(conn, text, limit=4 * MIB, timeout=120, what=text)

    return {
        "noop": lambda name: command(name, "exit 0"),
        "table": lambda name: command(name, OLD_TABLE),
        "watch": lambda name: core.listening_ports(name),
    }


async def measure(hosts: int, polls: int, sshd: Sshd, proxy: TcpProxy, tmp: Path) -> None:
    table = {f"h{i}": sshd_host(sshd, port=proxy.port) for i in range(hosts)}
    work = tmp / f"hosts{hosts}"
    work.mkdir()
    core, _, _ = make_core(work, table, discover_interval=0)
    async with core:
        await asyncio.gather(*(core.connect(name) for name in table))
        looks = variants(core)
        # Real watchers spread over their interval; 50 sessions opened in the same instant
        # only measure sshd's queue. At most IN_FLIGHT looks at a time.
        in_flight = asyncio.Semaphore(IN_FLIGHT)
        results: dict[str, tuple[float, float, float, float]] = {}
        for variant, look in looks.items():
            await asyncio.gather(*(look(name) for name in table))  # warm: first-use costs out
            cpu0, server0 = time.process_time(), sshd_cpu(sshd)
            up0, down0 = proxy.bytes_up, proxy.bytes_down

            async def host_loop(name: str, look: Callable[[str], Awaitable[object]] = look) -> None:
                for _ in range(polls):
                    async with in_flight:
                        await look(name)

            await asyncio.gather(*(host_loop(name) for name in table))
            n = hosts * polls
            results[variant] = (
                (time.process_time() - cpu0) * 1000 / n,
                (sshd_cpu(sshd) - server0) * 1000 / n,
                (proxy.bytes_up - up0) / n,
                (proxy.bytes_down - down0) / n,
            )
        ports = await core.listening_ports("h0")
    print(f"\n{hosts} host(s), {polls} looks each ({len(ports)} listening ports on the host)")
    print(f"{'':8}{'client ms':>11}{'server ms':>11}{'bytes up':>10}{'bytes down':>12}  vs noop")
    base = results["noop"]
    for variant, (client, server, up, down) in results.items():
        ratio = f"client x{client / base[0]:.1f}, server x{server / base[1]:.1f}"
        print(f"{variant:8}{client:11.2f}{server:11.2f}{up:10.0f}{down:12.0f}  {ratio}")
    client, server, up, down = results["watch"]
    load = hosts / INTERVAL
    print(
        f"watching every {INTERVAL:g} s: client {client * load / 10:.2f}% of a core, "
        f"server {server * load / 10:.2f}% of a core, {(up + down) * load / 1024:.1f} KiB/s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--looks", type=int, default=200, help="looks per variant, all hosts")
    parser.add_argument("--hosts", default="1,50", help="host counts to measure")
    args = parser.parse_args()
    processes = len(psutil.pids())
    print(f"watch_cost: {os.cpu_count()} CPUs, {processes} processes on this machine")
    print(f"look command: {len(discovery.PROC_COMMAND)} bytes")
    with tempfile.TemporaryDirectory(prefix="devtui-bench-") as tmp, Sshd() as sshd:
        os.environ["HOME"] = tmp  # no ~/.ssh keys or agent of the user's
        os.environ.pop("SSH_AUTH_SOCK", None)
        proxy = TcpProxy("127.0.0.1", sshd.port)
        proxy.start()
        try:
            for hosts in (int(h) for h in args.hosts.split(",")):
                polls = max(2, args.looks // hosts)
                asyncio.run(measure(hosts, polls, sshd, proxy, Path(tmp)))
        finally:
            proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
