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
--fastpath on|off|recv|keep  install / remove asyncssh_tuning's fast path (recv: all but
                             its send_packet), or leave it as devtui sets it up
--coalesce none|ssh|local|both|keep
                             wrap the SSH connection's socket, the local sockets, or both
                             in sshcore.coalesce.CoalescingTransport (one write per loop
                             turn), or leave it as devtui sets it up
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

from sshcore import asyncssh_tuning, tunnels
from sshcore.config import Config
from sshcore.core import Core
from sshcore.model import Endpoint, HostSpec, TunnelSpec
from sshcore.prompts import NoPrompts

# -- an experiment: write coalescing (measured no gain; see bench/README.md) -----------------
# asyncssh hands the socket one write() per SSH packet, and a forwarded connection's local
# socket gets one write() per packet received: a 256 KiB read becomes eight send() calls on
# the other side, where OpenSSH's client makes one write per turn of its poll loop. This
# wrapper keeps the writes of one loop turn and writes them joined, once.


class CoalescingTransport:
    """An asyncio transport whose writes of one loop turn go out as one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._parts: list[bytes] = []
        self._queued = 0
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue `data` (copied if mutable) until the end of this loop turn."""
        if not data:
            return
        if not self._parts and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)
        self._parts.append(data if isinstance(data, bytes) else bytes(data))
        self._queued += len(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Hand what is queued to the transport now, as one write."""
        self._scheduled = False
        parts = self._parts
        if not parts:
            return
        self._parts = []
        self._queued = 0
        if self.transport.is_closing():
            return  # the transport would drop it too (and warn)
        self.transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def get_write_buffer_size(self) -> int:
        return self._queued + self.transport.get_write_buffer_size()

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self._parts = []
        self._queued = 0
        self.transport.abort()

    def __getattr__(self, name: str) -> Any:
        # pause_reading, resume_reading, get_extra_info, is_closing, can_write_eof, ...
        return getattr(self.transport, name)


def coalesce_local() -> None:
    """Wrap every accepted local socket's transport in a CoalescingTransport."""
    original = tunnels._LocalSide.connection_made

    def connection_made(self: Any, transport: Any) -> None:
        original(self, transport)
        if self.pair is not None and self.pair.transport is transport:
            self.pair.transport = CoalescingTransport(transport, asyncio.get_running_loop())

    tunnels._LocalSide.connection_made = connection_made  # type: ignore[method-assign]


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
            if args.coalesce in ("ssh", "both"):
                ssh_transport = conn._transport  # type: ignore[attr-defined]
                if not isinstance(ssh_transport, CoalescingTransport):
                    conn._transport = CoalescingTransport(ssh_transport, asyncio.get_running_loop())  # type: ignore[attr-defined]
            suppressed = "yes" if asyncssh_tuning.is_applied() else "no"
            send = conn.get_extra_info("send_cipher")
            recv = conn.get_extra_info("recv_cipher")
            print(f"READY {send} {recv} {suppressed}", flush=True)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, sys.stdin.read)
        finally:
            await core.close()


def prev_send_path() -> None:
    """The fast path's send side as it was before zero-copy channel writes: asyncssh's
    channel write, flush and send_packet (a copy per step), the GCM tag joined on after
    sealing, and a getrandom call per packet for its padding."""
    import os

    from asyncssh.channel import SSHChannel
    from asyncssh.crypto.cipher import GCMCipher

    for name in ("write", "_flush_send_buf", "send_packet"):
        original = asyncssh_tuning._FAST_ORIGINALS.pop((SSHChannel, name), None)
        if original is not None:
            setattr(SSHChannel, name, original)

    def encrypt_and_sign(self: Any, header: bytes, data: bytes) -> tuple[bytes, bytes]:
        sealed = asyncssh_tuning._aead(self).encrypt(self._iv, data, header)
        self._update_iv()
        return header + sealed, b""

    GCMCipher.encrypt_and_sign = encrypt_and_sign  # type: ignore[method-assign]
    asyncssh_tuning._padding = lambda conn, count: os.urandom(count)
    asyncssh_tuning.CORK = False


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
    parser.add_argument(
        "--fastpath",
        choices=["on", "off", "keep", "recv", "prevsend", "nocork", "prevrecv"],
        default="keep",
    )
    parser.add_argument(
        "--coalesce", choices=["none", "ssh", "local", "both", "keep"], default="keep"
    )
    args = parser.parse_args()
    if args.ignore_patch == "on":
        if not asyncssh_tuning.apply():
            sys.exit(f"asyncssh {asyncssh.__version__}: the MSG_IGNORE patch does not apply")
    elif args.ignore_patch == "off":
        asyncssh_tuning.revert()
        # However devtui wires the tuning in, it must not come back in this process.
        asyncssh_tuning.apply = lambda: False
    if args.fastpath == "on":
        asyncssh_tuning.apply_fastpath()
    elif args.fastpath == "recv":  # the receive side only: asyncssh's send_packet (+ wrapper)
        from asyncssh.connection import SSHConnection

        key = (SSHConnection, "send_packet")
        wrapper = asyncssh_tuning._FAST_ORIGINALS.pop(key, None)
        if wrapper is not None:
            SSHConnection.send_packet = wrapper  # type: ignore[method-assign]
    elif args.fastpath == "nocork":  # one socket write per packet, as asyncssh does
        asyncssh_tuning.CORK = False
    elif args.fastpath == "prevrecv":  # channel data through asyncssh's whole receive path
        from asyncssh.connection import SSHConnection

        original = asyncssh_tuning._FAST_ORIGINALS.pop((SSHConnection, "_recv_packet"), None)
        if original is not None:
            SSHConnection._recv_packet = original  # type: ignore[method-assign]
    elif args.fastpath == "prevsend":  # the fast path as it was before zero-copy writes
        prev_send_path()
    elif args.fastpath == "off":
        asyncssh_tuning.revert_fastpath()
        asyncssh_tuning.apply_fastpath = lambda: False
    force_ciphers(args.ciphers)
    if args.coalesce in ("local", "both"):
        coalesce_local()
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
