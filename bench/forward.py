"""Benchmark: devtui's local forward against OpenSSH's `ssh -N -L`, through one real sshd.

    .venv/bin/python bench/forward.py              # full run (~75 s on 2 cores)
    .venv/bin/python bench/forward.py --quick      # smoke run, ~10 s
    .venv/bin/python bench/forward.py --size 256 --repeats 5 --variants openssh,devtui

Everything is real sockets on 127.0.0.1: a throwaway OpenSSH sshd (tests/harness), a target
server process (bench/_target.py) and, per variant, one forwarder process: `ssh -N -L`, or
devtui's Core running one local tunnel (bench/_devtui_forwarder.py). For each variant:

  up / down   MiB/s of one bulk transfer, client -> target and target -> client (the
              rate up to the last MiB: a delayed-ACK stall of the last segment is luck)
  echo        mean round trip of 1,000 sequential 64-byte echoes on one connection
  conns       seconds to open 200 connections one after another through the tunnel
              (connect, echo one byte, close)
  CPU s/GiB   CPU seconds (user + system) the forwarder process spent per GiB moved;
              also the sshd side (all sshd processes) for comparison

Each number is the median of --repeats runs; variants are interleaved within a repeat.
Ratios are to OpenSSH with its defaults. Every process started here is stopped by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from tests.harness.net import free_port, wait_port  # noqa: E402
from tests.harness.sshd import Sshd  # noqa: E402

MIB = 1024 * 1024
GIB = 1024 * MIB
BLOCK = MIB
TAIL = MIB
PAYLOAD = os.urandom(BLOCK)
ECHO_SIZE = 64


class BenchError(RuntimeError):
    """A forwarder did not start, or data did not arrive as sent."""


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    kind: str  # "direct" | "ssh" | "devtui"
    ssh_options: tuple[str, ...] = ()
    ignore_patch: str = "keep"  # devtui: on | off | keep (as devtui sets it up)
    ciphers: str = "keep"  # devtui: default | preferred | keep | ALG[,ALG]
    uvloop: bool = False  # devtui: run on uvloop (optional variant, needs uvloop installed)
    coalesce: str = "keep"  # devtui: none | ssh | local | both | keep (see _devtui_forwarder)
    fastpath: str = "keep"  # devtui: on | off | recv | prevsend | keep (see _devtui_forwarder)


VARIANTS = [
    Variant("direct", "direct TCP, no SSH (reference)", "direct"),
    Variant("openssh", "OpenSSH ssh -N -L, defaults", "ssh"),
    Variant(
        "openssh-gcm",
        "OpenSSH ssh -N -L -c aes128-gcm",
        "ssh",
        ("Ciphers=aes128-gcm@openssh.com",),
    ),
    Variant(
        "devtui-plain",
        "devtui, asyncssh defaults (no tuning)",
        "devtui",
        ignore_patch="off",
        ciphers="default",
    ),
    Variant(
        "devtui-noignore",
        "devtui, MSG_IGNORE suppressed only",
        "devtui",
        ignore_patch="on",
        ciphers="default",
    ),
    Variant(
        "devtui-gcm",
        "devtui, AES-GCM preferred only",
        "devtui",
        ignore_patch="off",
        ciphers="preferred",
    ),
    Variant(
        "devtui-tuned",
        "devtui, both tunings",
        "devtui",
        ignore_patch="on",
        ciphers="preferred",
    ),
    Variant("devtui", "devtui as shipped (its own settings)", "devtui"),
    Variant(
        "devtui-uvloop",
        "devtui, both tunings, on uvloop",
        "devtui",
        ignore_patch="on",
        ciphers="preferred",
        uvloop=True,
    ),
    Variant(
        "devtui-nofastpath",
        "devtui without the receive / AES-GCM fast path",
        "devtui",
        fastpath="off",
    ),
    Variant(
        "devtui-recvfast",
        "devtui, the fast path without its send_packet",
        "devtui",
        fastpath="recv",
    ),
    Variant(
        "devtui-prevsend",
        "devtui, the send path before zero-copy channel writes",
        "devtui",
        fastpath="prevsend",
    ),
    Variant(
        "devtui-nocork",
        "devtui-prevrecv",
        "devtui, a socket write per SSH packet",
        "devtui",
        fastpath="nocork",
    ),
    Variant(
        "devtui-prevrecv",
        "devtui, channel data through asyncssh's whole receive path",
        "devtui",
        fastpath="prevrecv",
    ),
    Variant("devtui-nocoalesce", "devtui, writes not coalesced", "devtui", coalesce="none"),
    Variant("devtui-coalesce-ssh", "devtui, SSH socket writes coalesced", "devtui", coalesce="ssh"),
    Variant(
        "devtui-coalesce-local",
        "devtui, local socket writes coalesced",
        "devtui",
        coalesce="local",
    ),
    Variant("devtui-coalesce", "devtui, both sockets' writes coalesced", "devtui", coalesce="both"),
]
OPTIONAL = {
    "devtui-uvloop",
    "devtui-nofastpath",
    "devtui-recvfast",
    "devtui-prevsend",
    "devtui-nocork",
    "devtui-prevrecv",
    "devtui-nocoalesce",
    "devtui-coalesce-ssh",
    "devtui-coalesce-local",
    "devtui-coalesce",
}  # not run unless named in --variants
BY_KEY = {v.key: v for v in VARIANTS}
BASELINE = "openssh"


# -- processes ---------------------------------------------------------------------------------


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def die_with_parent() -> None:
    """In a child before exec (Linux): get SIGTERM when the benchmark dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def end_process(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """Close its stdin (our helpers exit on that), then SIGTERM, then SIGKILL, by PID."""
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)
    if proc.stdout is not None:
        proc.stdout.close()


def read_line(proc: subprocess.Popen[bytes], timeout: float, what: str) -> str:
    """The first stdout line of `proc`, waiting at most `timeout` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise BenchError(f"{what}: no answer within {timeout:g} s")
    line = proc.stdout.readline().decode().strip()
    if not line:
        raise BenchError(f"{what} exited (status {proc.wait(5)})")
    return line


class Target:
    """bench/_target.py in its own process (so it never competes for our GIL)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "_target.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            self.port = int(read_line(self.proc, 10, "target server"))
        except BaseException:
            end_process(self.proc)
            raise

    def close(self) -> None:
        end_process(self.proc)


class Forwarder:
    """One variant's forwarder: listens on `port`, forwards to the target through sshd."""

    def __init__(
        self,
        variant: Variant,
        sshd: Sshd,
        target: int,
        workdir: Path,
        profile_dir: Path | None = None,
    ) -> None:
        self.variant = variant
        self.profile_dir = profile_dir
        self.sshd = sshd
        self.target = target
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None
        self.port = target
        self.cipher = "-"

    def start(self) -> None:
        kind = self.variant.kind
        if kind == "direct":
            return
        self.port = free_port()
        if kind == "ssh":
            self._start_ssh()
        else:
            self._start_devtui()
        assert self.proc is not None
        self.ps = psutil.Process(self.proc.pid)

    def _start_ssh(self) -> None:
        options = list(self.variant.ssh_options)
        self.cipher = self._ssh_cipher(options)
        argv = self.sshd.ssh_argv(options=["ExitOnForwardFailure=yes", *options])
        forward = f"127.0.0.1:{self.port}:127.0.0.1:{self.target}"
        argv[1:1] = ["-N", "-L", forward]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"{' '.join(argv)} exited with {self.proc.returncode}")
            try:
                wait_port("127.0.0.1", self.port, timeout=0.2)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise BenchError(f"ssh -L did not listen on {self.port}") from None

    def _ssh_cipher(self, options: list[str]) -> str:
        """The cipher ssh negotiates with these options (one `ssh -v true` to find out)."""
        argv = self.sshd.ssh_argv("true", options=options)
        argv.insert(1, "-v")
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        found = re.search(r"kex: client->server cipher: (\S+)", out.stderr)
        if out.returncode != 0 or found is None:
            raise BenchError(f"ssh login failed:\n{out.stderr[-2000:]}")
        return found.group(1)

    def _start_devtui(self) -> None:
        # -O for uvloop: sshcore/tunnels.py asserts isinstance(transport, asyncio.Transport),
        # which uvloop's transports are not.
        argv = [
            sys.executable,
            *(["-O"] if self.variant.uvloop else []),
            str(BENCH / "_devtui_forwarder.py"),
            f"--ssh-port={self.sshd.port}",
            f"--user={self.sshd.user}",
            f"--key={self.sshd.client_key()}",
            f"--known-hosts-line={self.sshd.known_hosts_line()}",
            f"--listen-port={self.port}",
            f"--target-port={self.target}",
            f"--ignore-patch={self.variant.ignore_patch}",
            f"--ciphers={self.variant.ciphers}",
            f"--coalesce={self.variant.coalesce}",
            f"--fastpath={self.variant.fastpath}",
        ]
        if self.variant.uvloop:
            argv.append("--uvloop")
        if self.profile_dir is not None:
            self.profile_dir.mkdir(parents=True, exist_ok=True)
            argv.append(f"--profile={self.profile_dir / self.variant.key}.prof")
        log = open(self.workdir / f"{self.variant.key}.log", "wb")  # noqa: SIM115
        with log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
            )
        try:
            line = read_line(self.proc, 30, f"devtui forwarder ({self.variant.key})")
        except BenchError as e:
            text = (self.workdir / f"{self.variant.key}.log").read_text(errors="replace")
            raise BenchError(f"{e}\n{text[-2000:]}") from None
        parts = line.split()
        if len(parts) != 4 or parts[0] != "READY":
            raise BenchError(f"devtui forwarder said {line!r}")
        _, send, recv, suppressed = parts
        cipher = send if send == recv else f"{send}/{recv}"
        self.cipher = cipher + (", no MSG_IGNORE" if suppressed == "yes" else "")

    def cpu(self) -> float:
        return cpu_seconds(self.ps) if self.ps is not None else 0.0

    def stop(self) -> None:
        if self.proc is not None:
            end_process(self.proc)
            self.proc = None


def sshd_cpu(sshd: Sshd) -> float:
    """CPU seconds of every sshd process below the listener (the per-connection ones)."""
    if sshd.pid is None:
        return 0.0
    total = 0.0
    with contextlib.suppress(psutil.Error):
        for proc in psutil.Process(sshd.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += cpu_seconds(proc)
    return total


# -- the client side (blocking sockets) ---------------------------------------------------------


@contextlib.contextmanager
def connect(port: int) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        yield sock
    finally:
        sock.close()


def header(command: bytes, n: int = 0, tail: int = 0) -> bytes:
    return command + n.to_bytes(8, "big") + tail.to_bytes(8, "big")


def tail_of(nbytes: int) -> int:
    """Bytes at the end of a transfer left out of its rate (see `upload`)."""
    return TAIL if nbytes >= 8 * TAIL else 0


def upload(port: int, nbytes: int) -> float:
    """Bytes per second sent through `port`, as the target received them.

    The rate runs from the first byte sent to the moment the target had all but the last
    `tail_of(nbytes)` bytes: a forwarder (or sshd) without TCP_NODELAY may hold the last
    small segment until the peer's delayed ACK (up to 40 ms on Linux), which would
    otherwise weigh on every transfer by chance. The call returns when all bytes are in.
    """
    view = memoryview(PAYLOAD)
    tail = tail_of(nbytes)
    with connect(port) as sock:
        start = time.monotonic_ns()
        sock.sendall(header(b"U", nbytes, tail))
        left = nbytes
        while left:
            step = min(left, BLOCK)
            sock.sendall(view[:step])
            left -= step
        reply = recv_exact(sock, 17)
    if reply is None or reply[:1] != b"K":
        raise BenchError(f"upload through port {port}: no confirmation from the target")
    mark, count = int.from_bytes(reply[1:9], "big"), int.from_bytes(reply[9:], "big")
    return count / ((mark - start) / 1e9)


def download(port: int, nbytes: int) -> float:
    """Bytes per second received through `port` (all but the last `tail_of` bytes)."""
    buf = bytearray(BLOCK)
    view = memoryview(buf)
    tail = tail_of(nbytes)
    with connect(port) as sock:
        start = time.monotonic_ns()
        sock.sendall(header(b"D", nbytes))
        got = mark = count = 0
        while got < nbytes:
            n = sock.recv_into(view)
            if not n:
                raise BenchError(f"download through port {port}: EOF after {got} bytes")
            got += n
            if not mark and got >= nbytes - tail:
                mark, count = time.monotonic_ns(), got
    return count / ((mark - start) / 1e9)


def recv_exact(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def echoes(port: int, count: int, warmup: int = 20) -> float:
    """Mean seconds per round trip of `count` sequential ECHO_SIZE-byte echoes."""
    message = os.urandom(ECHO_SIZE)
    with connect(port) as sock:
        sock.sendall(header(b"E"))
        start = 0.0
        for i in range(warmup + count):
            if i == warmup:
                start = time.perf_counter()
            sock.sendall(message)
            reply = b""
            while len(reply) < ECHO_SIZE:
                chunk = sock.recv(ECHO_SIZE - len(reply))
                if not chunk:
                    raise BenchError(f"echo through port {port}: EOF")
                reply += chunk
            if reply != message:
                raise BenchError(f"echo through port {port}: reply differs")
        return (time.perf_counter() - start) / count


def open_connections(port: int, count: int) -> float:
    """Seconds to open `count` connections one by one, each echoing one byte, then closed."""
    start = time.perf_counter()
    for _ in range(count):
        with connect(port) as sock:
            sock.sendall(header(b"E") + b"x")
            if sock.recv(1) != b"x":
                raise BenchError(f"connection {port}: no echo")
    return time.perf_counter() - start


# -- running -------------------------------------------------------------------------------------


@dataclass
class Samples:
    up_mibs: list[float] = field(default_factory=list)
    down_mibs: list[float] = field(default_factory=list)
    up_cpu: list[float] = field(default_factory=list)  # forwarder CPU s per GiB
    down_cpu: list[float] = field(default_factory=list)
    up_sshd: list[float] = field(default_factory=list)  # sshd CPU s per GiB
    down_sshd: list[float] = field(default_factory=list)
    echo_us: list[float] = field(default_factory=list)
    conns_s: list[float] = field(default_factory=list)


def transfer(
    fwd: Forwarder, sshd: Sshd, move: Callable[[int, int], float], nbytes: int
) -> tuple[float, float, float]:
    """(MiB/s, forwarder CPU s/GiB, sshd CPU s/GiB) of one transfer."""
    cpu0, sshd0 = fwd.cpu(), sshd_cpu(sshd)
    rate = move(fwd.port, nbytes)
    cpu1, sshd1 = fwd.cpu(), sshd_cpu(sshd)
    gib = nbytes / GIB
    return rate / MIB, (cpu1 - cpu0) / gib, (sshd1 - sshd0) / gib


def run_once(fwd: Forwarder, sshd: Sshd, args: argparse.Namespace, samples: Samples) -> None:
    nbytes = args.size * MIB
    mibs, cpu, srv = transfer(fwd, sshd, upload, nbytes)
    samples.up_mibs.append(mibs)
    samples.up_cpu.append(cpu)
    samples.up_sshd.append(srv)
    mibs, cpu, srv = transfer(fwd, sshd, download, nbytes)
    samples.down_mibs.append(mibs)
    samples.down_cpu.append(cpu)
    samples.down_sshd.append(srv)
    samples.echo_us.append(echoes(fwd.port, args.echoes) * 1e6)
    samples.conns_s.append(open_connections(fwd.port, args.connections))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- report --------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    import asyncssh
    import cryptography

    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    from sshcore.asyncssh_tuning import has_hardware_aes

    ssh_v = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    return {
        "date": datetime.date.today().isoformat(),
        "nproc": str(os.cpu_count()),
        "cpu": f"{model} (AES instructions: {'yes' if has_hardware_aes() else 'no'})",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "asyncssh": asyncssh.__version__,
        "cryptography": cryptography.__version__,
        "openssh": ssh_v,
    }


def fmt(value: float, digits: int = 0) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:,.{digits}f}"


def ratio(value: float, base: float) -> str:
    if value != value or base != base or base == 0:
        return "-"
    return f"{value / base:.2f}x"


def report(
    variants: list[Variant],
    forwarders: dict[str, Forwarder],
    results: dict[str, Samples],
    args: argparse.Namespace,
    info: dict[str, str],
) -> str:
    out: list[str] = []
    out.append(
        f"{info['date']}, {info['nproc']} CPUs, {info['cpu']}, {info['os']}; Python "
        f"{info['python']}, asyncssh {info['asyncssh']}, cryptography {info['cryptography']}, "
        f"{info['openssh']}"
    )
    out.append(
        f"transfers {args.size} MiB each way, {args.echoes} echoes of {ECHO_SIZE} B, "
        f"{args.connections} connections; medians of {args.repeats}; load average "
        f"{info['load_before']} before, {info['load_after']} after"
    )
    out.append("")
    out.append(
        "| variant | cipher | up MiB/s | down MiB/s | echo µs | "
        f"{args.connections} conns s | CPU s/GiB up | CPU s/GiB down | "
        "sshd s/GiB up | sshd s/GiB down |"
    )
    out.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for v in variants:
        s = results[v.key]
        direct = v.kind == "direct"
        out.append(
            f"| {v.key}: {v.label} | {forwarders[v.key].cipher} | {fmt(median(s.up_mibs))} | "
            f"{fmt(median(s.down_mibs))} | {fmt(median(s.echo_us))} | "
            f"{fmt(median(s.conns_s), 2)} | "
            f"{'-' if direct else fmt(median(s.up_cpu), 2)} | "
            f"{'-' if direct else fmt(median(s.down_cpu), 2)} | "
            f"{'-' if direct else fmt(median(s.up_sshd), 2)} | "
            f"{'-' if direct else fmt(median(s.down_sshd), 2)} |"
        )
    if BASELINE in results:
        base = results[BASELINE]
        out.append("")
        out.append(f"Ratios to {BASELINE} (throughput: higher is better; the rest: lower is)")
        out.append("")
        out.append("| variant | up | down | echo | conns | CPU/GiB up | CPU/GiB down |")
        out.append("|---|--:|--:|--:|--:|--:|--:|")
        for v in variants:
            if v.kind == "direct":
                continue
            s = results[v.key]
            out.append(
                f"| {v.key} | {ratio(median(s.up_mibs), median(base.up_mibs))} | "
                f"{ratio(median(s.down_mibs), median(base.down_mibs))} | "
                f"{ratio(median(s.echo_us), median(base.echo_us))} | "
                f"{ratio(median(s.conns_s), median(base.conns_s))} | "
                f"{ratio(median(s.up_cpu), median(base.up_cpu))} | "
                f"{ratio(median(s.down_cpu), median(base.down_cpu))} |"
            )
        out.append("")
        out.append("Targets (issue 3): throughput >= 1.0x both ways, echo <= 1.3x, CPU/GiB <= 2x")
        for v in variants:
            if v.kind != "devtui":
                continue
            s = results[v.key]
            cpu_ok = all(
                median(mine) <= 2.0 * median(theirs)
                for mine, theirs in ((s.up_cpu, base.up_cpu), (s.down_cpu, base.down_cpu))
            )
            checks = {
                "up": median(s.up_mibs) >= median(base.up_mibs),
                "down": median(s.down_mibs) >= median(base.down_mibs),
                "echo": median(s.echo_us) <= 1.3 * median(base.echo_us),
                "cpu": cpu_ok,
            }
            verdict = ", ".join(f"{k} {'ok' if ok else 'MISSED'}" for k, ok in checks.items())
            out.append(f"  {v.key}: {verdict}")
    return "\n".join(out)


# -- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small and fast: a smoke run")
    parser.add_argument("--size", type=int, help="MiB per transfer (default 256, quick 32)")
    parser.add_argument("--repeats", type=int, help="runs per variant (default 5, quick 1)")
    parser.add_argument("--echoes", type=int, help="small echoes per run (default 1000)")
    parser.add_argument("--connections", type=int, help="connections per run (default 200)")
    parser.add_argument(
        "--variants",
        default=",".join(v.key for v in VARIANTS if v.key not in OPTIONAL),
        help=f"comma-separated, from: {', '.join(BY_KEY)} (default: all but "
        f"{', '.join(sorted(OPTIONAL))})",
    )
    parser.add_argument("--json", type=Path, help="also write the raw samples here")
    parser.add_argument(
        "--profile-dir",
        type=Path,
        help="cProfile each devtui forwarder into DIR/VARIANT.prof (numbers then mean little)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.size = args.size or (32 if quick else 256)
    args.repeats = args.repeats or (1 if quick else 5)
    args.echoes = args.echoes or (200 if quick else 1000)
    args.connections = args.connections or (50 if quick else 200)
    keys = [k.strip() for k in args.variants.split(",") if k.strip()]
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(BY_KEY)}")
    args.variant_list = [BY_KEY[k] for k in keys]
    return args


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl+C and SIGTERM both unwind through the `finally` that stops every process.
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    if shutil.which("ssh") is None:
        print("bench: the OpenSSH client (ssh) is not installed", file=sys.stderr)
        return 2
    variants: list[Variant] = args.variant_list
    info = machine()
    load_before = f"{os.getloadavg()[0]:.2f}"
    workdir = Path(tempfile.mkdtemp(prefix="devtui-bench-"))
    forwarders: dict[str, Forwarder] = {}
    results = {v.key: Samples() for v in variants}
    target: Target | None = None
    started = time.monotonic()
    try:
        with Sshd() as sshd:
            target = Target()
            for v in variants:
                fwd = Forwarder(v, sshd, target.port, workdir, args.profile_dir)
                forwarders[v.key] = fwd
                fwd.start()
                # Warm up: the TCP windows grow, the first channel is opened.
                upload(fwd.port, 8 * MIB)
                download(fwd.port, 8 * MIB)
                print(f"  ready: {v.key} ({fwd.cipher})", file=sys.stderr, flush=True)
            for r in range(args.repeats):
                order = variants[r % len(variants) :] + variants[: r % len(variants)]
                for v in order:
                    run_once(forwarders[v.key], sshd, args, results[v.key])
                    s = results[v.key]
                    print(
                        f"  run {r + 1}/{args.repeats} {v.key}: up {s.up_mibs[-1]:.0f} "
                        f"down {s.down_mibs[-1]:.0f} MiB/s, echo {s.echo_us[-1]:.0f} µs, "
                        f"conns {s.conns_s[-1]:.2f} s",
                        file=sys.stderr,
                        flush=True,
                    )
            for fwd in forwarders.values():
                fwd.stop()
    finally:
        for fwd in forwarders.values():
            fwd.stop()
        if target is not None:
            target.close()
        shutil.rmtree(workdir, ignore_errors=True)
    info["load_before"] = load_before
    info["load_after"] = f"{os.getloadavg()[0]:.2f}"
    print(f"  ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    print(report(variants, forwarders, results, args, info))
    if args.json:
        raw = {
            "machine": info,
            "args": {k: v for k, v in vars(args).items() if k != "variant_list" and k != "json"},
            "variants": {
                v.key: {
                    "label": v.label,
                    "cipher": forwarders[v.key].cipher,
                    **vars(results[v.key]),
                }
                for v in variants
            },
        }
        args.json.write_text(json.dumps(raw, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
