"""Benchmark: `devtui cp` against OpenSSH's `scp`, and `devtui sync` of an unchanged tree
against `rsync -a --dry-run -e ssh`, through one real sshd on 127.0.0.1.

    .venv/bin/python bench/file_copy.py                    # 512 MiB, 5 repeats, 10,000 files
    .venv/bin/python bench/file_copy.py --quick            # 64 MiB, 2 repeats, 1,000 files

Both tools run as whole commands (a process, its login, the copy), the way a user runs them.
The sshd offers aes128-gcm@openssh.com only, so both use the same cipher. Runs alternate
(scp first on odd repeats, devtui first on even ones); numbers are medians. `devtui cp`
verifies (SHA-256 of both sides) unless --no-verify is in its variant's name; "scp, then
hashes" is scp followed by the same check typed by hand (openssl here, then over ssh on the
host). Each run's busy CPU seconds (both ends, from /proc/stat) are shown too. rsync is
installed with apt-get when missing (for this bench only). Every process started here is
ended by PID (subprocess.run waits for each); the sshd stops with its `with` block.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from coreutil import write_config  # noqa: E402

from tests.harness.sshd import Sshd  # noqa: E402

MIB = 1024 * 1024
CIPHER = "aes128-gcm@openssh.com"
DEVTUI = [sys.executable, "-m", "tui"]


def busy_cpu() -> float:
    """CPU seconds this machine has spent busy (all cores, every process), from /proc/stat;
    0 where there is none. The difference over a run is what both ends of it cost."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait


def run(*argvs: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run commands one after the other: (seconds, busy CPU seconds) of them all."""
    start, cpu = time.perf_counter(), busy_cpu()
    for argv in argvs:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            raise SystemExit(f"bench: {argv[:4]}... failed:\n{done.stderr}")
    return time.perf_counter() - start, busy_cpu() - cpu


def compile_sources() -> None:
    """Byte-compile devtui as an install does: with PYTHONDONTWRITEBYTECODE set (as on
    this machine) an editable checkout would otherwise compile ~20 modules on every start."""
    for package in ("tui", "sshcore"):
        compileall.compile_dir(str(ROOT / package), quiet=1)


def ensure_rsync() -> None:
    if shutil.which("rsync"):
        return
    print("  installing rsync (apt-get, for this bench only)", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-qq", "rsync"], check=True, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="MiB (512)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--files", type=int, default=10_000, help="files in the sync tree")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--dir",
        default="/dev/shm" if os.path.isdir("/dev/shm") else None,
        help="where the files go (/dev/shm when there; else the temp dir)",
    )
    parser.add_argument("--skip-copy", action="store_true")
    parser.add_argument("--skip-sync", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.size, args.repeats, args.files = 64, 2, 1000
    ensure_rsync()
    compile_sources()
    # Files in RAM (tmpfs) by default: this VM's disk writeback varies 0.1-0.9 s per 512 MiB
    # from one run to the next, and that noise would hide both tools' own cost.
    work = Path(tempfile.mkdtemp(prefix="devtui-bench-copy-", dir=args.dir))
    load = os.getloadavg()[0]
    try:
        with Sshd([f"Ciphers {CIPHER}"]) as sshd:
            key = sshd.client_key()
            pub = Path(str(sshd.host_key_path) + ".pub").read_text().split()
            known = work / "known_hosts"
            known.write_text(f"[127.0.0.1]:{sshd.port} {pub[0]} {pub[1]}\n")
            host = {
                "hostname": "127.0.0.1",
                "port": sshd.port,
                "user": sshd.user,
                "identity_file": str(key),
            }
            config = write_config(work / "config.toml", {"box": host}, known_hosts=str(known))
            env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
            ssh_opts = [
                "-c", CIPHER, "-i", str(key), "-o", f"UserKnownHostsFile={known}",
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            ]  # fmt: skip
            remote = f"{sshd.user}@127.0.0.1"
            if not args.skip_copy:
                copy_bench(args, work, config, env, ssh_opts, sshd.port, remote)
            if not args.skip_sync:
                sync_bench(args, work, config, env, ssh_opts, sshd.port, remote)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average before {load:.2f}, after {os.getloadavg()[0]:.2f}")
    return 0


def copy_bench(
    args: argparse.Namespace,
    work: Path,
    config: Path,
    env: dict[str, str],
    ssh_opts: list[str],
    port: int,
    remote: str,
) -> None:
    src = work / "src.bin"
    with open(src, "wb") as f:
        for _ in range(args.size):
            f.write(os.urandom(MIB))
    there, back = work / "there.bin", work / "back.bin"
    scp = ["scp", "-q", "-P", str(port), *ssh_opts]
    ssh = ["ssh", "-p", str(port), *ssh_opts, remote]
    cp = [*DEVTUI, "--config", str(config), "cp"]

    def by_hand(local: Path, far: Path) -> list[list[str]]:
        # The same check by hand after scp: SHA-256 here, then on the host (openssl, as
        # devtui uses where it can: 4x coreutils' sha256sum on this CPU).
        return [["openssl", "dgst", "-sha256", str(local)], [*ssh, f"openssl dgst -sha256 {far}"]]

    variants = {
        "scp up": lambda: run([*scp, str(src), f"{remote}:{there}"], env=env),
        "devtui up": lambda: run([*cp, str(src), f"box:{there}"], env=env),
        "devtui up --no-verify": lambda: run(
            [*cp, "--no-verify", str(src), f"box:{there}"], env=env
        ),
        "scp up, then hashes": lambda: run(
            [*scp, str(src), f"{remote}:{there}"], *by_hand(src, there), env=env
        ),
        "scp down": lambda: run([*scp, f"{remote}:{src}", str(back)], env=env),
        "devtui down": lambda: run([*cp, f"box:{src}", str(back)], env=env),
        "devtui down --no-verify": lambda: run(
            [*cp, "--no-verify", f"box:{src}", str(back)], env=env
        ),
        "scp down, then hashes": lambda: run(
            [*scp, f"{remote}:{src}", str(back)], *by_hand(back, src), env=env
        ),
    }
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    names = list(variants)
    for r in range(args.repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            there.unlink(missing_ok=True)
            back.unlink(missing_ok=True)
            times[name].append(variants[name]())
        print(f"  copy run {r + 1}/{args.repeats}", file=sys.stderr, flush=True)
    print(
        f"\n{args.size} MiB, {CIPHER}, median of {args.repeats} "
        "(MiB/s; ratio to scp; CPU seconds busy, both ends)"
    )
    for name in names:
        t = statistics.median(x[0] for x in times[name])
        cpu = statistics.median(x[1] for x in times[name])
        base = statistics.median(x[0] for x in times["scp " + name.split()[1].rstrip(",")])
        print(
            f"  {name:<24} {t:6.2f} s  {args.size / t:7.1f} MiB/s  {base / t:5.2f}x  "
            f"{cpu:5.2f} CPU s"
        )


def sync_bench(
    args: argparse.Namespace,
    work: Path,
    config: Path,
    env: dict[str, str],
    ssh_opts: list[str],
    port: int,
    remote: str,
) -> None:
    tree, dst = work / "tree", work / "synced"
    for i in range(args.files):
        d = tree / f"d{i % 100:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.txt").write_text(f"file {i}\n" * (i % 7 + 1))
    sync = [*DEVTUI, "--config", str(config), "sync"]
    first, _ = run([*sync, str(tree), f"box:{dst}"], env=env)
    print(f"  first sync of {args.files} files: {first:.1f} s", file=sys.stderr)
    ssh = " ".join(["ssh", "-p", str(port), *ssh_opts])
    rsync = ["rsync", "-a", "--dry-run", "-e", ssh, f"{tree}/", f"{remote}:{dst}/"]
    variants = {
        "rsync -a --dry-run": lambda: run(rsync, env=env)[0],
        "devtui sync": lambda: run([*sync, str(tree), f"box:{dst}"], env=env)[0],
        "devtui sync --dry-run": lambda: run(
            [*sync, "--dry-run", str(tree), f"box:{dst}"], env=env
        )[0],
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for r in range(args.repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(variants[name]())
    base = statistics.median(times["rsync -a --dry-run"])
    print(f"\nunchanged tree of {args.files} files, median of {args.repeats} (ratio to rsync)")
    for name in names:
        t = statistics.median(times[name])
        print(f"  {name:<24} {t:6.2f} s  {t / base:5.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
