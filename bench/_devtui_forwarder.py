"""devtui's local forward in a process of its own, so the benchmark can measure its CPU.

Started by bench/forward.py. Builds a throwaway config (one host, one local tunnel), runs it
on sshcore's Core exactly as `devtui up` does, prints one line

  READY <send cipher> <recv cipher> <msg_ignore suppressed: yes|no>

once the tunnel is up and connected, and runs until stdin closes.

--ignore-patch on|off|keep   apply / revert sshcore.asyncssh_tuning's MSG_IGNORE patch, or
                             leave it as devtui sets it up
--ciphers default|preferred|keep|ALG[,ALG...]
                             asyncssh's default order, asyncssh_tuning's preferred order,
                             whatever devtui passes, or an explicit list
--profile PATH               cProfile the run (slows it down; for finding hot spots)
--uvloop                     run the event loop on uvloop (must be importable)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncssh

from sshcore import asyncssh_tuning
from sshcore.config import Config
from sshcore.core import Core
from sshcore.model import Endpoint, HostSpec, TunnelSpec
from sshcore.prompts import NoPrompts


def force_ciphers(choice: str) -> None:
    """Make every asyncssh.connect devtui makes use the chosen cipher order."""
    if choice == "keep":
        return
    if choice == "default":
        algs: list[str] | None = None
    elif choice == "preferred":
        algs = asyncssh_tuning.preferred_encryption_algs()
    else:
        algs = choice.split(",")
    original = asyncssh.connect

    def connect(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop("encryption_algs", None)
        if algs is not None:
            kwargs["encryption_algs"] = algs
        return original(*args, **kwargs)

    asyncssh.connect = connect


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="devtui-bench-") as tmp:
        known = Path(tmp) / "known_hosts"
        known.write_text(args.known_hosts_line + "\n")
        path = Path(tmp) / "config.toml"
        path.write_text(f'[settings]\nknown_hosts = "{known}"\n')
        config = Config.load(path)
        config.add(
            [HostSpec("bench", "127.0.0.1", args.ssh_port, args.user, args.key)],
            [
                TunnelSpec(
                    "bench-fwd",
                    "bench",
                    "local",
                    Endpoint("127.0.0.1", args.listen_port),
                    Endpoint("127.0.0.1", args.target_port),
                )
            ],
        )
        config = Config.load(path)
        core = Core(config, NoPrompts(), interactive=False, log_file=None)
        try:
            await core.start_tunnel("bench-fwd")
            conn = await core.connection("bench")
            suppressed = "yes" if asyncssh_tuning.is_applied() else "no"
            send = conn.get_extra_info("send_cipher")
            recv = conn.get_extra_info("recv_cipher")
            print(f"READY {send} {recv} {suppressed}", flush=True)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, sys.stdin.read)
        finally:
            await core.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ssh-port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--known-hosts-line", required=True)
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--ignore-patch", choices=["on", "off", "keep"], default="keep")
    parser.add_argument("--ciphers", default="keep")
    parser.add_argument("--profile", help="write cProfile stats of the whole run here")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (if importable)")
    args = parser.parse_args()
    if args.ignore_patch == "on":
        if not asyncssh_tuning.apply():
            sys.exit(f"asyncssh {asyncssh.__version__}: the MSG_IGNORE patch does not apply")
    elif args.ignore_patch == "off":
        asyncssh_tuning.revert()
        # However devtui wires the tuning in, it must not come back in this process.
        asyncssh_tuning.apply = lambda: False
    force_ciphers(args.ciphers)
    if args.uvloop:
        import uvloop  # type: ignore[import-not-found, unused-ignore]

        uvloop.install()
    if args.profile:
        import cProfile

        with cProfile.Profile() as profile:
            asyncio.run(run(args))
        profile.dump_stats(args.profile)
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
