"""Benchmark: how soon a tunnel carries data again after the machine wakes up.

    .venv/bin/python bench/wake.py                   # 60 s sleeps, 3 repeats (~4 min)
    .venv/bin/python bench/wake.py --sleep 10 --repeats 1

A laptop that sleeps is played by SIGSTOP on the forwarder process, for --sleep seconds,
while a loopback proxy in front of a throwaway OpenSSH sshd swallows the old TCP flow
without a FIN or RST (as a changed Wi-Fi does) and lets new connections through. At
SIGCONT the clock starts; it stops at the first echo that comes back whole through the
tunnel (a new client connection every try, each given 1 s).

  devtui   `devtui up` with the default settings (keepalive 5 s x 3)
  openssh  `ssh -N -L` with ServerAliveInterval=5, ServerAliveCountMax=3 (OpenSSH's own
           default has no keepalive at all); ssh does not reconnect, so its figure is how
           long it takes to notice and exit: its tunnel never carries data again.

Medians of --repeats runs. Everything listens on 127.0.0.1; every process is stopped by PID.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from coreutil import sshd_host, write_config  # noqa: E402

from tests.harness.net import EchoServer, echo_roundtrip_sync, free_port, wait_port  # noqa: E402
from tests.harness.proxy import TcpProxy  # noqa: E402
from tests.harness.sshd import Sshd  # noqa: E402

DEVTUI = [sys.executable, "-m", "tui"]


def works(port: int) -> bool:
    """One echo through the tunnel, on a new connection, within 1 s."""
    try:
        sent, got = echo_roundtrip_sync("127.0.0.1", port, 1000, timeout=1.0)
    except (OSError, TimeoutError):
        return False
    return sent == got


def until_works(port: int, timeout: float) -> float | None:
    """Seconds until the tunnel works, or None if it did not within `timeout`."""
    start = time.monotonic()
    while not works(port):
        if time.monotonic() - start > timeout:
            return None
        time.sleep(0.05)
    return time.monotonic() - start


def end(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process this bench started (by its PID), whatever state it is in."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGCONT)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def sleep_once(proc: subprocess.Popen[bytes], proxy: TcpProxy, seconds: float) -> None:
    proc.send_signal(signal.SIGSTOP)
    proxy.blackhole()  # the old flow vanishes ...
    proxy.restore()  # ... and new connections get through
    time.sleep(seconds)
    proc.send_signal(signal.SIGCONT)


def run_devtui(sshd: Sshd, echo: EchoServer, tmp: Path, seconds: float) -> float | None:
    (tmp / "home" / ".ssh").mkdir(parents=True, exist_ok=True)
    with TcpProxy("127.0.0.1", sshd.port) as proxy:
        port = free_port()
        tunnels = {"web": {"host": "box", "listen": f"{port}", "target": f"127.0.0.1:{echo.port}"}}
        config = write_config(tmp / "c.toml", {"box": sshd_host(sshd, port=proxy.port)}, tunnels)
        env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
        env.update(HOME=str(tmp / "home"), DEVTUI_CONFIG=str(config))
        proc = subprocess.Popen([*DEVTUI, "up", "--accept-new"], env=env, stderr=subprocess.DEVNULL)
        try:
            wait_port("127.0.0.1", port, 20)
            if until_works(port, 20) is None:
                raise RuntimeError("devtui up never carried data")
            sleep_once(proc, proxy, seconds)
            return until_works(port, 120)
        finally:
            end(proc)


def run_openssh(sshd: Sshd, echo: EchoServer, seconds: float) -> float | None:
    """Seconds until `ssh -L` noticed the dead flow and exited (it never carries data again)."""
    with TcpProxy("127.0.0.1", sshd.port) as proxy:
        port = free_port()
        known = sshd.dir / "known_hosts_proxy"
        known.write_text(f"[127.0.0.1]:{proxy.port} {sshd.host_public_key_line}\n")
        argv = sshd.ssh_argv(
            known_hosts=known,
            options=["ServerAliveInterval=5", "ServerAliveCountMax=3", "ExitOnForwardFailure=yes"],
        )
        argv[argv.index(str(sshd.port))] = str(proxy.port)
        argv[1:1] = ["-N", "-L", f"127.0.0.1:{port}:127.0.0.1:{echo.port}"]
        proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
        try:
            wait_port("127.0.0.1", port, 20)
            if until_works(port, 20) is None:
                raise RuntimeError("ssh -L never carried data")
            sleep_once(proc, proxy, seconds)
            start = time.monotonic()
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                return None
            return time.monotonic() - start
        finally:
            end(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleep", type=float, default=60.0, help="seconds asleep (60)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (3)")
    args = parser.parse_args(argv)
    devtui: list[float] = []
    openssh: list[float] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        Sshd() as sshd,
        EchoServer() as echo,
    ):
        for i in range(args.repeats):
            d = run_devtui(sshd, echo, Path(tmp) / f"d{i}", args.sleep)
            o = run_openssh(sshd, echo, args.sleep)
            shown = [f"{x:.2f} s" if x is not None else "never" for x in (d, o)]
            print(
                f"run {i + 1}: devtui data again after {shown[0]}; ssh -L exited after {shown[1]}"
            )
            if d is not None:
                devtui.append(d)
            if o is not None:
                openssh.append(o)
    print(f"\nasleep {args.sleep:g} s, {args.repeats} runs (medians):")
    if devtui:
        print(f"  devtui up   data again {statistics.median(devtui):.2f} s after waking")
    if openssh:
        print(
            f"  ssh -L      noticed and exited {statistics.median(openssh):.2f} s after waking "
            "(ServerAliveInterval=5, CountMax=3); it does not reconnect"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
