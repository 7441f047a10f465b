"""Benchmark: `devtui hosts test --all --json` against `ssh -o BatchMode=yes HOST true` x16.

    .venv/bin/python bench/fleet.py                     # 100 hosts, 7 repeats (~4 min on 2 cores)
    .venv/bin/python bench/fleet.py --quick             # smoke run: 20 hosts, 1 repeat
    .venv/bin/python bench/fleet.py --hosts 100 --sshds 2 --parallel 16 --repeats 5
    .venv/bin/python bench/fleet.py --profile /tmp/fleet.prof   # also cProfile one devtui run

All on 127.0.0.1: 1 to 4 throwaway OpenSSH sshd (tests/harness/sshd.py) serve --hosts host
entries h000, h001, ... spread over them round robin, every one logging in with the same
client key and checked against one known_hosts file. Every host is a full connection (TCP,
key exchange, public key auth, a session running a no-op command); nothing is shared
(no ControlMaster, no agent). Five ways to test every host, each a fresh process, in the
same run, interleaved, order rotated each repeat:

  devtui   devtui hosts test --all --json --parallel N (one Python process, N in flight)
  xargs    xargs -P N -I{} ssh -F CONFIG -o BatchMode=yes {} true   (CONFIG: one Host
           block per host), how people fan it out from a shell
  pool     the same ssh command from a Python ThreadPool of N workers (one subprocess each)
  xargs-same-kex, pool-same-kex
           the same with -o KexAlgorithms=curve25519-sha256 -o Ciphers=aes128-gcm@openssh.com,
           what devtui negotiates with this sshd (ssh's own default is the post-quantum
           sntrup761x25519-sha512, whose key generation is most of an ssh client's CPU)

Per way: wall time (medians of --repeats), client CPU (user + sys, from the kernel's rusage
of the waited-for process and all it waited for: os.wait4), client memory (devtui: its peak
RSS; ssh: the peak RSS of one ssh client, from its own wait4), and the sshd side (the CPU of
the sshd session processes, from the listeners' reaped-children times) as a check that the
server did the same work for each. A benchmark, not a test: it prints numbers, fails nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from tests.harness.shell_users import login_shell_unavailable, user_with_shell  # noqa: E402
from tests.harness.sshd import Sshd, current_user  # noqa: E402

RUN_TIMEOUT = 300.0  # seconds for one whole fleet run; a stuck run is killed, not waited on
WAYS = ("devtui", "xargs", "pool", "xargs-same-kex", "pool-same-kex")
# What devtui (asyncssh) and OpenSSH 9.2's sshd agree on (sshd's DEBUG log says so).
# OpenSSH's client picks sntrup761x25519-sha512 (post-quantum hybrid) by default, which
# asyncssh offers only with liboqs; its key generation is most of an ssh client's CPU.
SAME_KEX = "curve25519-sha256"
SAME_CIPHER = "aes128-gcm@openssh.com"
SSHD_CONFIG = (
    # Every connection of a run may be in its key exchange at once; the defaults (10:30:100)
    # would drop some and the run would measure sshd's throttle, not the clients.
    "MaxStartups 400",
    "MaxSessions 400",
    # VERBOSE (the harness default) logs several lines per login: server work that is
    # the same for every way, but noise on 2 cores.
    "LogLevel ERROR",
)


class BenchError(RuntimeError):
    """A run failed (a host not reached, a process stuck): the numbers would mean nothing."""


@dataclass
class Sample:
    """One run of one way over the whole fleet."""

    wall_s: float
    cpu_s: float  # client side: user + sys of the process and everything it waited for
    peak_rss_kib: int | None  # the largest single client process (devtui: itself; ssh: an ssh)
    sshd_cpu_s: float  # server side: the sshd session processes of this run
    extra: dict[str, Any] = field(default_factory=dict)


# -- processes ---------------------------------------------------------------------------------


def die_with_parent() -> None:
    """In a child before exec (Linux): get SIGTERM when the benchmark dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def wait_rusage(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, Any]:
    """Wait for `proc` by PID with os.wait4: (exit code, its rusage, its reaped children included).

    The rusage of one child alone is why this is not `proc.wait()`: RUSAGE_CHILDREN of the
    benchmark would mix every ssh of a pool run into one peak RSS. Killed after `timeout`.
    """
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            code = os.waitstatus_to_exitcode(status)
            proc.returncode = code  # so Popen does not try to reap it again
            return code, usage
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            raise BenchError(f"{proc.args!r} still running after {timeout:.0f} s: killed")
        time.sleep(0.002)


def cpu_of(usage: Any) -> float:
    return float(usage.ru_utime + usage.ru_stime)


class SshdSide:
    """Server CPU: what the listeners' session processes used, read when they were reaped."""

    def __init__(self, servers: Sequence[Sshd]) -> None:
        self.procs = [psutil.Process(s.pid) for s in servers if s.pid is not None]

    def cpu(self) -> float:
        total = 0.0
        for p in self.procs:
            t = p.cpu_times()
            total += t.children_user + t.children_system
        return total


# -- the fleet ---------------------------------------------------------------------------------


@dataclass
class Fleet:
    """Host names, the ssh config, the devtui config and the env both run with."""

    workdir: Path
    names: list[str]
    ssh_config: Path
    devtui_config: Path
    devtui_config_one: Path  # the first host only: what a devtui run costs before the fleet
    names_file: Path
    env: dict[str, str]


def host_names(count: int) -> list[str]:
    return [f"h{i:03d}" for i in range(count)]


def make_fleet(workdir: Path, servers: Sequence[Sshd], count: int, user: str) -> Fleet:
    """`count` hosts over `servers` (round robin), one key, one known_hosts, two configs."""
    key = servers[0].client_key()
    public = key.with_name(key.name + ".pub").read_text()
    for s in servers:
        if s is not servers[0] or user != s.user:
            s.authorize(user, public)
        if user != s.user:
            # sshd reads authorized_keys as the user logging in: let a throwaway user
            # through the (private) temp dir to its own file, and no further.
            s.dir.chmod(0o711)
            s.authorized_keys_dir.chmod(0o711)
            (s.authorized_keys_dir / user).chmod(0o644)
    known = workdir / "known_hosts"
    known.write_text("".join(s.known_hosts_line() + "\n" for s in servers))
    names = host_names(count)
    ssh_lines: list[str] = []
    settings = [
        "[settings]",
        f"known_hosts = {json.dumps(str(known))}",
        "connect_timeout = 30.0",
        "",
    ]
    tables: list[list[str]] = []
    for i, name in enumerate(names):
        s = servers[i % len(servers)]
        ssh_lines += [
            f"Host {name}",
            "    HostName 127.0.0.1",
            f"    Port {s.port}",
            f"    User {user}",
            f"    IdentityFile {key}",
            "    IdentitiesOnly yes",
            f"    UserKnownHostsFile {known}",
            "    GlobalKnownHostsFile /dev/null",
            "    StrictHostKeyChecking yes",
            "    ControlMaster no",
            "    ControlPath none",
            "    ConnectTimeout 30",
            "",
        ]
        tables.append(
            [
                f"[hosts.{name}]",
                'hostname = "127.0.0.1"',
                f"port = {s.port}",
                f"user = {json.dumps(user)}",
                f"identity_file = {json.dumps(str(key))}",
                "",
            ]
        )
    ssh_config = workdir / "ssh_config"
    ssh_config.write_text("\n".join(ssh_lines))
    ssh_config.chmod(0o600)  # ssh refuses a config others can write
    devtui_config = workdir / "config.toml"
    devtui_config.write_text("\n".join(settings + [line for t in tables for line in t]))
    devtui_config_one = workdir / "config_one.toml"
    devtui_config_one.write_text("\n".join(settings + tables[0]))
    names_file = workdir / "hosts.txt"
    names_file.write_text("\n".join(names) + "\n")
    home = workdir / "home"
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}  # no agent: keys only
    env["HOME"] = str(home)
    env["PYTHONPATH"] = str(ROOT)
    return Fleet(workdir, names, ssh_config, devtui_config, devtui_config_one, names_file, env)


def ssh_argv(fleet: Fleet, name: str, same_kex: bool = False) -> list[str]:
    """`ssh -o BatchMode=yes NAME true`; `same_kex`: with the algorithms devtui negotiates."""
    argv = ["ssh", "-F", str(fleet.ssh_config), "-o", "BatchMode=yes"]
    if same_kex:
        argv += ["-o", f"KexAlgorithms={SAME_KEX}", "-o", f"Ciphers={SAME_CIPHER}"]
    return [*argv, name, "true"]


def devtui_argv(fleet: Fleet, parallel: int, one: bool = False) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tui",
        "--config",
        str(fleet.devtui_config_one if one else fleet.devtui_config),
        "hosts",
        "test",
        "--all",
        "--json",
        "--parallel",
        str(parallel),
    ]


# -- the three ways ----------------------------------------------------------------------------


def gnu_time() -> str | None:
    """GNU time, for a clean peak RSS (see `measured`), or None."""
    for cand in ("/usr/bin/time", "/bin/time"):
        if os.access(cand, os.X_OK):
            return cand
    return None


def measured(argv: list[str], rss_file: Path) -> list[str]:
    """`argv` under GNU time, which writes the peak RSS (KiB) of what it ran to `rss_file`.

    Why not the ru_maxrss of our own wait4: Linux carries the parent's peak RSS into a
    forked child's, so every process this (big) Python starts reports at least the
    benchmark's own peak. GNU time is small, and it waits for the command itself. The
    CPU still comes from our wait4 (microseconds; GNU time's own share is ~1 ms).
    """
    time_bin = gnu_time()
    return argv if time_bin is None else [time_bin, "-f", "%M", "-o", str(rss_file), *argv]


def read_rss(rss_file: Path) -> int | None:
    try:
        return int(rss_file.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def run_devtui(fleet: Fleet, parallel: int, sshd: SshdSide, one: bool = False) -> Sample:
    """The whole fleet; `one`: the first host only (interpreter start, imports, 1 host)."""
    rss_file = fleet.workdir / "devtui.rss"
    rss_file.unlink(missing_ok=True)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        server = sshd.cpu()
        start = time.perf_counter()
        proc = subprocess.Popen(
            measured(devtui_argv(fleet, parallel, one), rss_file),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=fleet.env,
            preexec_fn=die_with_parent,
        )
        code, usage = wait_rusage(proc, RUN_TIMEOUT)
        wall = time.perf_counter() - start
        server = sshd.cpu() - server
        out.seek(0)
        err.seek(0)
        text = out.read().decode(errors="replace")
        problem = err.read().decode(errors="replace")[-2000:]
    try:
        rows = json.loads(text)
    except ValueError:
        raise BenchError(f"devtui exited {code}, no JSON:\n{problem}") from None
    bad = [r for r in rows if not r["ok"]]
    if code != 0 or bad or len(rows) != (1 if one else len(fleet.names)):
        raise BenchError(f"devtui exited {code}, {len(bad)} failed: {bad[:3]}\n{problem}")
    connect = statistics.median(r["connect_ms"] for r in rows)
    rtt = statistics.median(r["round_trip_ms"] for r in rows)
    extra = {"connect_ms": connect, "rtt_ms": rtt}
    return Sample(wall, cpu_of(usage), read_rss(rss_file), server, extra)


def run_xargs(fleet: Fleet, parallel: int, sshd: SshdSide, same_kex: bool = False) -> Sample:
    rss_file = fleet.workdir / "xargs.rss"
    rss_file.unlink(missing_ok=True)
    argv = ["xargs", "-P", str(parallel), "-I{}", *ssh_argv(fleet, "{}", same_kex)]
    with fleet.names_file.open("rb") as names, tempfile.TemporaryFile() as err:
        server = sshd.cpu()
        start = time.perf_counter()
        proc = subprocess.Popen(
            measured(argv, rss_file),
            stdin=names,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=fleet.env,
            preexec_fn=die_with_parent,
        )
        code, usage = wait_rusage(proc, RUN_TIMEOUT)
        wall = time.perf_counter() - start
        server = sshd.cpu() - server
        err.seek(0)
        problem = err.read().decode(errors="replace")[-2000:]
    if code != 0:
        raise BenchError(f"xargs/ssh exited {code}:\n{problem}")
    # xargs reaped every ssh, so the rusage holds theirs: CPU summed, peak RSS the largest
    # single process (an ssh: xargs itself is ~2 MiB).
    return Sample(wall, cpu_of(usage), read_rss(rss_file), server)


def run_pool(fleet: Fleet, parallel: int, sshd: SshdSide, same_kex: bool = False) -> Sample:
    errors: list[str] = []
    lock = threading.Lock()

    def one(name: str) -> float:
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                ssh_argv(fleet, name, same_kex),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=fleet.env,
                # No preexec_fn here: it is unsafe with threads and would force fork over
                # vfork/posix_spawn, which a script like this does not pay. ssh ends by
                # itself (ConnectTimeout; the sshds stop at the end in any case).
            )
            code, usage = wait_rusage(proc, RUN_TIMEOUT)
            if code != 0:
                err.seek(0)
                with lock:
                    errors.append(f"{name}: exit {code}: {err.read().decode(errors='replace')}")
        return cpu_of(usage)

    server = sshd.cpu()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        cpu = sum(pool.map(one, fleet.names))
    wall = time.perf_counter() - start
    server = sshd.cpu() - server
    if errors:
        raise BenchError(f"{len(errors)} ssh failed, e.g. {errors[0]}")
    # No RSS: these ssh are children of the benchmark itself (see `measured`).
    return Sample(wall, cpu, None, server)


def one_ssh_rss(fleet: Fleet) -> int | None:
    """Peak RSS (KiB) of one `ssh HOST true`, alone, under GNU time."""
    rss_file = fleet.workdir / "ssh.rss"
    rss_file.unlink(missing_ok=True)
    if gnu_time() is None:
        return None
    subprocess.run(
        measured(ssh_argv(fleet, fleet.names[0]), rss_file),
        env=fleet.env,
        capture_output=True,
        timeout=60,
        check=True,
    )
    return read_rss(rss_file)


RUNNERS: dict[str, Callable[[Fleet, int, SshdSide], Sample]] = {
    "devtui": run_devtui,
    "xargs": run_xargs,
    "pool": run_pool,
    "xargs-same-kex": functools.partial(run_xargs, same_kex=True),
    "pool-same-kex": functools.partial(run_pool, same_kex=True),
}


# -- profile -----------------------------------------------------------------------------------


def profile_devtui(fleet: Fleet, parallel: int, path: Path) -> str:
    """One devtui run under cProfile (everything runs on the event loop's thread); top lines."""
    argv = devtui_argv(fleet, parallel)
    argv[1:1] = ["-m", "cProfile", "-o", str(path)]
    subprocess.run(
        argv, env=fleet.env, capture_output=True, timeout=RUN_TIMEOUT, preexec_fn=die_with_parent
    )
    import io
    import pstats

    buf = io.StringIO()
    stats = pstats.Stats(str(path), stream=buf)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)
    return buf.getvalue()


# -- report ------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ssh = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    import asyncssh  # only for its version

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "asyncssh": asyncssh.__version__,
        "openssh": ssh,
    }


def med(samples: list[Sample], get: Callable[[Sample], float]) -> float:
    return statistics.median(get(s) for s in samples)


def med_rss(samples: list[Sample]) -> float | None:
    values = [s.peak_rss_kib for s in samples if s.peak_rss_kib is not None]
    return statistics.median(values) if values else None


def report(
    results: dict[str, list[Sample]],
    ssh_rss: list[int],
    start: list[Sample],
    hosts: int,
    args: argparse.Namespace,
) -> str:
    lines = [
        f"{hosts} hosts over {args.sshds} sshd, {args.parallel} in flight, login shell "
        f"{args.login_shell}, "
        f"medians of {args.repeats} runs",
        "",
        "| way | wall s | min-max s | client CPU ms/host | client peak RSS MiB | "
        "client RSS KiB/host | sshd CPU ms/host |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    one_ssh = statistics.median(ssh_rss) if ssh_rss else None
    for way in WAYS:
        s = results[way]
        walls = [x.wall_s for x in s]
        rss = med_rss(s)
        # devtui is one process for the whole fleet: its RSS is shared by all hosts. Each
        # ssh is one host: the RSS of one ssh client (measured alone) is the cost per host.
        per_host = (rss / hosts if rss is not None else None) if way == "devtui" else one_ssh
        lines.append(
            f"| {way} | {statistics.median(walls):.2f} | {min(walls):.2f}-{max(walls):.2f} | "
            f"{med(s, lambda x: x.cpu_s) * 1000 / hosts:.1f} | "
            f"{'-' if rss is None else f'{rss / 1024:.1f}'} | "
            f"{'-' if per_host is None else f'{per_host:,.0f}'} | "
            f"{med(s, lambda x: x.sshd_cpu_s) * 1000 / hosts:.1f} |"
        )
    d = results["devtui"]
    lines.append("")
    for base in WAYS[1:]:
        b = results[base]
        wall = med(d, lambda x: x.wall_s) / med(b, lambda x: x.wall_s)
        cpu = med(d, lambda x: x.cpu_s) / med(b, lambda x: x.cpu_s)
        lines.append(f"devtui / {base}: wall {wall:.2f}x, client CPU {cpu:.2f}x")
    d_rss = med_rss(d)
    if one_ssh is not None and d_rss is not None:
        lines.append(
            f"memory per host: devtui {d_rss / hosts:,.0f} KiB (peak {d_rss / 1024:.1f} MiB / "
            f"{hosts}), one ssh client {one_ssh:,.0f} KiB (median of {len(ssh_rss)}, alone): "
            f"{d_rss / hosts / one_ssh:.2f}x"
        )
    else:
        lines.append("memory: GNU time (/usr/bin/time) is not installed, so no clean peak RSS")
    lines.append(
        f"devtui's own numbers: median connect {med(d, lambda x: x.extra['connect_ms']):.0f} ms, "
        f"round trip {med(d, lambda x: x.extra['rtt_ms']):.0f} ms"
    )
    if start:
        fixed = med(start, lambda x: x.wall_s)
        lines.append(
            f"devtui on the first host alone (interpreter start, imports, config, 1 host): "
            f"{fixed:.2f} s wall, {med(start, lambda x: x.cpu_s):.2f} s CPU; the fleet run "
            f"less that: {med(d, lambda x: x.wall_s) - fixed:.2f} s"
        )
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, help="host entries (default 100)")
    parser.add_argument("--sshds", type=int, default=2, help="sshd servers, 1-4 (default 2)")
    parser.add_argument("--parallel", type=int, default=16, help="in flight (default 16)")
    parser.add_argument("--repeats", type=int, help="runs of each way (default 7)")
    parser.add_argument("--quick", action="store_true", help="20 hosts, 1 repeat")
    parser.add_argument(
        "--login-shell",
        default="sh",
        help="log in as a throwaway user with this login shell (default sh: no rc files, so "
        "the server's share is small and the clients show; needs root); 'none': as yourself, "
        "your shell and its rc files",
    )
    parser.add_argument("--json", type=Path, help="also write every sample here")
    parser.add_argument("--profile", type=Path, help="cProfile one more devtui run into this file")
    args = parser.parse_args(argv)
    args.hosts = args.hosts or (20 if args.quick else 100)
    args.repeats = args.repeats or (1 if args.quick else 7)
    if not 1 <= args.sshds <= 4:
        parser.error("--sshds must be 1 to 4")
    if not 1 <= args.hosts <= 1000 or args.parallel < 1 or args.repeats < 1:
        parser.error("--hosts 1-1000, --parallel and --repeats at least 1")
    return args


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not hasattr(os, "wait4"):
        # wait4 (per-process rusage) and sshd are POSIX; on Windows there is nothing to serve.
        print("bench: needs a POSIX system with OpenSSH sshd (os.wait4)", file=sys.stderr)
        return 2
    for tool in ("ssh", "xargs"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is not installed", file=sys.stderr)
            return 2
    if args.login_shell != "none":
        why = login_shell_unavailable(args.login_shell)
        if why:
            print(f"bench: {why} (or run with --login-shell none)", file=sys.stderr)
            return 2
    # Ctrl+C and SIGTERM both unwind through the `with` blocks that stop every sshd.
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    info = machine()
    info["load_before"] = f"{os.getloadavg()[0]:.2f}"
    results: dict[str, list[Sample]] = {w: [] for w in WAYS}
    ssh_rss: list[int] = []
    start: list[Sample] = []  # devtui on the first host only: its fixed cost per run
    profile = ""
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="devtui-bench-fleet-"))
    try:
        with contextlib.ExitStack() as stack:
            user = current_user()
            if args.login_shell != "none":
                # Entered first, so it is removed last: after every sshd session has ended.
                user = stack.enter_context(user_with_shell(args.login_shell)).name
            servers = [stack.enter_context(Sshd(SSHD_CONFIG)) for _ in range(args.sshds)]
            fleet = make_fleet(workdir, servers, args.hosts, user)
            sshd = SshdSide(servers)
            for way in WAYS:  # warm up: page cache, .pyc files, sshd's first forks
                RUNNERS[way](fleet, args.parallel, sshd)
            for r in range(args.repeats):
                order = WAYS[r % len(WAYS) :] + WAYS[: r % len(WAYS)]
                for way in order:
                    sample = RUNNERS[way](fleet, args.parallel, sshd)
                    results[way].append(sample)
                    rss = sample.peak_rss_kib
                    print(
                        f"  run {r + 1}/{args.repeats} {way}: {sample.wall_s:.2f} s, "
                        f"CPU {sample.cpu_s:.2f} s, "
                        f"RSS {'-' if rss is None else f'{rss / 1024:.1f}'} MiB, "
                        f"sshd {sample.sshd_cpu_s:.2f} s",
                        file=sys.stderr,
                        flush=True,
                    )
                start.append(run_devtui(fleet, args.parallel, sshd, one=True))
                one = one_ssh_rss(fleet)
                if one is not None:
                    ssh_rss.append(one)
            if args.profile:
                profile = profile_devtui(fleet, args.parallel, args.profile)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    info["load_after"] = f"{os.getloadavg()[0]:.2f}"
    print(f"  ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    print(", ".join(f"{k}: {v}" for k, v in info.items()))
    print(report(results, ssh_rss, start, args.hosts, args))
    if profile:
        print(profile)
    if args.json:
        raw = {
            "machine": info,
            "args": {k: str(v) for k, v in vars(args).items()},
            "samples": {w: [vars(s) for s in results[w]] for w in WAYS},
            "one_ssh_rss_kib": ssh_rss,
            "devtui_one_host": [vars(s) for s in start],
        }
        args.json.write_text(json.dumps(raw, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
