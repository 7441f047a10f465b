"""A tunnel that listens on `localhost` holds both loopbacks, 127.0.0.1 and ::1.

A browser opening http://localhost:PORT tries ::1 first. If devtui held only 127.0.0.1,
any other local user could listen on [::1]:PORT and receive that traffic.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from pathlib import Path

import pytest
from coreutil import isolate_home, make_core, sshd_host
from harness.net import EchoServer, free_port
from harness.sshd import Sshd

from sshcore.tunnels import TunnelError


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")


def _taken(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family) as s:
        # REUSEADDR: the closed connections' TIME_WAIT does not count, a listener does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError as e:
            assert e.errno == errno.EADDRINUSE
            return True
    return False


async def _echo_via(address: str, port: int) -> bytes:
    reader, writer = await asyncio.open_connection(address, port)
    writer.write(b"hello")
    await writer.drain()
    data = await reader.readexactly(5)
    writer.close()
    return data


async def test_a_localhost_tunnel_holds_and_serves_both_loopbacks(
    sshd: Sshd, echo_server: EchoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_home(monkeypatch, tmp_path)
    port = free_port()
    tunnel = {
        "host": "box",
        "kind": "local",
        "listen": f"localhost:{port}",
        "target": f"127.0.0.1:{echo_server.port}",
    }
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)}, {"web": tunnel})
    async with core:
        await core.start_tunnel("web")
        assert _taken("127.0.0.1", port) and _taken("::1", port)
        assert await asyncio.wait_for(_echo_via("::1", port), 30) == b"hello"
        assert await asyncio.wait_for(_echo_via("127.0.0.1", port), 30) == b"hello"
        await core.stop_tunnel("web")
        assert not _taken("127.0.0.1", port) and not _taken("::1", port)


async def test_a_localhost_tunnel_refuses_to_start_when_another_holds_ipv6_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_home(monkeypatch, tmp_path)
    squatter = socket.socket(socket.AF_INET6)
    squatter.bind(("::1", 0))
    squatter.listen()
    port = squatter.getsockname()[1]
    tunnel = {"host": "box", "kind": "local", "listen": f"localhost:{port}", "target": "80"}
    core, _, _ = make_core(tmp_path, {"box": {"hostname": "127.0.0.1", "port": 1}}, {"web": tunnel})
    try:
        async with core:
            with pytest.raises(TunnelError, match=rf"\[::1\]:{port} is already in use"):
                await core.start_tunnel("web")
            assert not _taken("127.0.0.1", port)  # nothing half-started is left behind
    finally:
        squatter.close()
