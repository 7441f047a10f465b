"""Each tunnel proven end to end: while no connection is open, the target is checked now and
then (a connection opened and closed through the tunnel's own path), so a dead target shows
("down since 14:05") before the user clicks a dead link; `probe = false` turns it off."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomlkit
from coreutil import isolate_home, make_core, of_type, sshd_host, wait_for
from harness.net import free_port

import sshcore.tunnels
from sshcore.config import Config
from sshcore.events import TargetAnswered, TargetRefused
from sshcore.tunnels import TunnelState


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(sshcore.tunnels, "PROBE_INTERVAL", 0.2)  # 30 s in real life
    return isolate_home(monkeypatch, tmp_path)


class Counter:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts (and holds them
    open, as an app serving a long request does)."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)

    def hang_up(self) -> None:
        """Close every connection accepted so far."""
        for conn in self.held:
            conn.close()

    def close(self) -> None:
        self.sock.close()
        self.hang_up()


@pytest.fixture
def counter() -> Iterator[Counter]:
    server = Counter()
    yield server
    server.close()


def _tunnel(kind: str, listen: str, target: str, **extra: object) -> dict[str, object]:
    return {"host": "box", "kind": kind, "listen": listen, "target": target, **extra}


@pytest.mark.parametrize("kind", ["local", "remote"])
async def test_a_dead_target_shows_down_since_and_its_return_clears_it(
    sshd, tmp_path, kind
) -> None:
    dead = free_port()
    tunnels = {"t": _tunnel(kind, f"127.0.0.1:{free_port()}", f"127.0.0.1:{dead}")}
    core, _, events = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels)
    async with core:
        await core.start_tunnel("t")
        # Nobody connected through the tunnel: the probe found the target down by itself.
        await wait_for(lambda: core.tunnel_state("t").target_down_since is not None, 10)
        assert core.tunnel_state("t").state == TunnelState.UP
        await asyncio.sleep(1.0)  # five more probes: still down, said once
        assert len(of_type(events, TargetRefused)) == 1
        assert of_type(events, TargetRefused)[0].target == f"127.0.0.1:{dead}"
        server = Counter(dead)  # the app starts
        try:
            await wait_for(lambda: bool(of_type(events, TargetAnswered)), 5, what="the return")
            assert core.tunnel_state("t").target_down_since is None
            assert core.tunnel_state("t").error is None
            assert server.accepted >= 1  # the probe reached the target itself
        finally:
            server.close()


async def test_probe_false_never_touches_the_target(sshd, tmp_path, counter) -> None:
    tunnels = {
        "on": _tunnel("local", f"127.0.0.1:{free_port()}", f"127.0.0.1:{counter.port}"),
        "off": _tunnel(
            "local", f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}", probe=False
        ),
    }
    core, _, events = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels)
    async with core:
        await core.start_tunnel("on")
        await wait_for(lambda: counter.accepted >= 3, 10, what="three probes of 'on'")
        await core.start_tunnel("off")
        await wait_for(lambda: core.tunnel_state("off").state == TunnelState.UP, 10)
        await asyncio.sleep(1.0)
        assert core.tunnel_state("off").target_down_since is None  # its dead target untried
        assert not [e for e in of_type(events, TargetRefused) if e.tunnel == "off"]


async def test_no_probe_while_a_connection_is_open(sshd, tmp_path, counter) -> None:
    port = free_port()
    tunnels = {"t": _tunnel("local", f"127.0.0.1:{port}", f"127.0.0.1:{counter.port}")}
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels)
    async with core:
        await core.start_tunnel("t")
        await wait_for(lambda: counter.accepted >= 1, 10, what="the first probe")
        # A client holds a connection open: the tunnel carries it, no probe is needed.
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await wait_for(lambda: core.tunnel_state("t").connections == 1, 5)
            await asyncio.sleep(0.3)  # its own accept (and a probe already under way) land
            seen = counter.accepted
            await asyncio.sleep(1.0)  # five probe intervals
            assert core.tunnel_state("t").connections == 1
            assert counter.accepted == seen
        finally:
            writer.close()
            counter.hang_up()
        await wait_for(lambda: core.tunnel_state("t").connections == 0, 5)
        await wait_for(lambda: counter.accepted > seen, 5, what="probes again once idle")


def test_probe_false_is_kept_in_the_file(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        "[hosts.box]\nhostname = '127.0.0.1'\n\n"
        "[tunnels.a]  # the app logs every connection\nhost = 'box'\nlisten = '8080'\n"
        "target = '127.0.0.1:8080'\nprobe = false\n"
    )
    config = Config.load(path)
    assert config.tunnels["a"].probe is False
    config.update_tunnel("a", config.tunnels["a"])
    text = path.read_text()
    assert "probe = false" in text and "# the app logs every connection" in text
    bad = tmp_path / "bad.toml"
    bad.write_text(path.read_text().replace("probe = false", "probe = 'no'"))
    with pytest.raises(Exception, match="probe"):
        Config.load(bad)
    doc = tomlkit.parse(path.read_text())
    del doc["tunnels"]["a"]["probe"]
    path.write_text(tomlkit.dumps(doc))
    assert Config.load(path).tunnels["a"].probe is True  # on by default
