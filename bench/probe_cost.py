"""Benchmark: what the tunnel probe costs (client and server CPU per hour for 20 tunnels).

    .venv/bin/python bench/probe_cost.py             # 2,000 probes, ~1 min

A Core holds one connection to a throwaway OpenSSH sshd on 127.0.0.1 with 20 idle local
tunnels, half to a target that listens, half to one that does not. The probes run back to
back; the CPU seconds this process (devtui's side) and the sshd processes below the listener
(the server's side) spent on them are divided by the number of probes, and scaled to 20
tunnels probed every PROBE_INTERVAL (30 s) for an hour: 2,400 probes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from coreutil import make_core, sshd_host  # noqa: E402

from bench.forward import sshd_cpu  # noqa: E402
from sshcore.tunnels import PROBE_INTERVAL, TunnelState  # noqa: E402
from tests.harness.net import free_port  # noqa: E402
from tests.harness.sshd import Sshd  # noqa: E402

TUNNELS = 20


async def measure(sshd: Sshd, tmp: Path, probes: int) -> tuple[float, float, int]:
    listening = socket.create_server(("127.0.0.1", 0))  # accepts, never reads: a live app
    alive = listening.getsockname()[1]
    tunnels = {
        f"t{i}": {
            "host": "box",
            "listen": f"127.0.0.1:{free_port()}",
            "target": f"127.0.0.1:{alive if i % 2 else free_port()}",
        }
        for i in range(TUNNELS)
    }
    (tmp / "home" / ".ssh").mkdir(parents=True, exist_ok=True)
    core, _, _ = make_core(tmp, {"box": sshd_host(sshd)}, tunnels, known_hosts=str(tmp / "kh"))
    try:
        async with core:
            for name in tunnels:
                await core.start_tunnel(name)
            while any(core.tunnel_state(n).state != TunnelState.UP for n in tunnels):
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # the first probes settle
            names = list(tunnels)
            client0, server0 = time.process_time(), sshd_cpu(sshd)
            done = 0
            verdicts: dict[bool | None, int] = {}
            while done < probes:
                verdict = await core.tunnels[names[done % TUNNELS]].probe()
                verdicts[verdict] = verdicts.get(verdict, 0) + 1
                done += 1
                if done % 50 == 0:  # the accepted sockets of the live target
                    with contextlib.suppress(OSError):
                        listening.setblocking(False)
                        while True:
                            listening.accept()[0].close()
            client, server = time.process_time() - client0, sshd_cpu(sshd) - server0
            print(f"answered {verdicts.get(True, 0)}, refused {verdicts.get(False, 0)}")
            if verdicts.get(None):
                raise RuntimeError(f"{verdicts[None]} probes had no verdict: the link was down")
            return client, server, done
    finally:
        listening.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=2000, help="probes to time (2000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, Sshd() as sshd:
        client, server, done = asyncio.run(measure(sshd, Path(tmp), args.probes))
    per_hour = TUNNELS * 3600 / PROBE_INTERVAL
    print(
        f"{done} probes: client {client * 1000 / done:.2f} ms CPU each, sshd {server * 1000 / done:.2f} ms"
    )
    print(
        f"{TUNNELS} tunnels probed every {PROBE_INTERVAL:g} s ({per_hour:.0f} probes/hour): "
        f"client {client / done * per_hour:.1f} s CPU/hour, sshd {server / done * per_hour:.1f} s CPU/hour"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
