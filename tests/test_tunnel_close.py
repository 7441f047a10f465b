"""A forwarded connection ends when both sides are done, whoever closes first."""

from __future__ import annotations

import asyncio

from coreutil import of_type, wait_for

from sshcore.config import Config
from sshcore.core import Core
from sshcore.demo import DEMO_PAGE, DemoSite
from sshcore.events import TunnelConnectionClosed
from sshcore.prompts import NoPrompts


async def _fetch(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    data = await reader.read()  # until the server's EOF
    writer.close()
    await writer.wait_closed()
    return data


async def test_server_closing_first_ends_the_pair(tmp_path) -> None:
    """The demo's web app answers and closes first (asyncssh's server forwarder then waits for
    the client to close the channel): each page load must not stay an open connection."""
    async with DemoSite() as demo:
        core = Core(Config.load(demo.config_path), NoPrompts(), log_file=tmp_path / "log")
        events: list[object] = []
        core.subscribe(events.append)
        async with core:
            await core.start_tunnel("demo-web")
            await core.connection("demo")
            for _ in range(3):
                page = await _fetch(demo.local_port)
                assert DEMO_PAGE in page
            await wait_for(lambda: core.tunnel_state("demo-web").connections == 0, 5)
            closed = of_type(events, TunnelConnectionClosed)
            assert len(closed) == 3
            assert all(e.bytes_down > len(DEMO_PAGE) for e in closed)
