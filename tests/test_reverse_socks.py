"""Reverse SOCKS (ssh -R [bind:]port, no target) through a real OpenSSH sshd.

The remote sshd listens; a client on the remote (here 127.0.0.1 too, at the remote
listener's port) speaks SOCKS4/4a/5 there, and devtui opens the destination from this
machine. One-way traffic (a source that only talks, a sink that only listens) tells the two
directions apart: "down" is what the remote client sends, "up" what the destination answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from coreutil import isolate_home, make_core, of_type, sshd_host, wait_for
from harness.net import ByteSource, free_port, read_stream, send_stream

from sshcore.config import Config
from sshcore.errors import ConfigError, DevtuiError
from sshcore.events import TargetRefused, TunnelConnectionClosed, TunnelConnectionOpened
from sshcore.ops import add_from_line, add_tunnel
from sshcore.tunnels import TunnelState, connect_failure, open_from_here

MiB = 1024 * 1024
SOURCE_BYTES = 1 * MiB + 321  # odd sizes, different each way: no count is another's by chance
SINK_BYTES = 2 * MiB + 77


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


# The destinations here are this machine's own test servers: allowed by name, as a user
# who means it would (the default lets a remote reach addresses on the internet only).
LOOPBACK_PERMITS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]


def _reverse_socks(listen: str, permit: list[str] | None = None) -> dict[str, object]:
    return {
        "host": "box",
        "kind": "remote",
        "listen": listen,
        "target": "socks",
        "permit_open": LOOPBACK_PERMITS if permit is None else permit,
    }


def _address(host: str) -> bytes:
    """SOCKS5's address field: ATYP 1 for an IPv4 literal, 3 for a name."""
    try:
        ip = ipaddress.IPv4Address(host)
    except ValueError:
        name = host.encode()
        return b"\x03" + bytes([len(name)]) + name
    return b"\x01" + ip.packed


async def _socks5(
    port: int, host: str, dest_port: int, payload: bytes = b""
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """Connect to the remote listener and ask for host:dest_port; returns the 10-byte reply.
    `payload` is sent right behind the request, before any reply (a pipelining client)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"\x05\x01\x00" + _address(host) + dest_port.to_bytes(2, "big")
    writer.write(b"\x05\x01\x00" + request + payload)
    assert await asyncio.wait_for(reader.readexactly(2), 20) == b"\x05\x00"
    reply = await asyncio.wait_for(reader.readexactly(10), 20)
    return reader, writer, reply


async def _socks4(
    port: int, dest_port: int, name: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """SOCKS4 CONNECT to 127.0.0.1:dest_port, or SOCKS4a to `name`:dest_port."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    ip = b"\x00\x00\x00\x01" if name else bytes([127, 0, 0, 1])
    tail = name.encode() + b"\x00" if name else b""
    writer.write(b"\x04\x01" + dest_port.to_bytes(2, "big") + ip + b"me\x00" + tail)
    reply = await asyncio.wait_for(reader.readexactly(8), 20)
    return reader, writer, reply


def _listening_addresses(port: int) -> set[str]:
    """Every address something on this machine listens on at `port` (TCP, v4 and v6)."""
    return {
        c.laddr.ip
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
    }


async def test_socks5_and_socks4_through_the_remote_reach_this_machine(
    sshd, sha256_sink, tmp_path
) -> None:
    port = free_port()
    tunnels = {"rs": _reverse_socks(f"127.0.0.1:{port}")}
    with ByteSource(SOURCE_BYTES) as source:
        core, _, events = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels)
        async with core:
            await core.start_tunnel("rs")
            await wait_for(lambda: core.tunnel_state("rs").state == TunnelState.UP, 15)
            # SOCKS5, IPv4 address (ATYP 1), from the source: bytes come up to the remote.
            reader, writer, reply = await _socks5(port, "127.0.0.1", source.port)
            assert reply[:2] == b"\x05\x00", reply
            got_v4 = await read_stream(reader)
            writer.close()
            # SOCKS5, a name (ATYP 3), into the sink: bytes go down to this machine. The
            # first bytes travel with the request (before the reply), as eager clients send.
            head = os.urandom(1000)
            reader, writer, reply = await _socks5(port, "localhost", sha256_sink.port, head)
            assert reply[:2] == b"\x05\x00", reply
            rest_digest = await send_stream(reader, writer, SINK_BYTES - len(head))
            # SOCKS4 (an IPv4 address) and SOCKS4a (a name), from the source.
            got_4 = []
            for name in (None, "localhost"):
                reader, writer, reply = await _socks4(port, source.port, name)
                assert reply[:2] == b"\x00\x5a", reply
                got_4.append(await read_stream(reader))
                writer.close()
            await wait_for(
                lambda: core.tunnel_state("rs").connections == 0, 10, what="connections closed"
            )
            status = core.tunnel_state("rs")
        results = await asyncio.to_thread(sha256_sink.wait_results, 1, 10)
    for nbytes, digest in (got_v4, *got_4):
        assert nbytes == SOURCE_BYTES and digest in source.sent
    assert source.received == 0  # one-way: nothing went back to the source
    assert results[0].nbytes == SINK_BYTES
    del rest_digest  # the sink saw head + rest: its byte count and the counters below
    # up: what this machine's destination answered (3 x the source); down: the sink's bytes.
    assert (status.bytes_up, status.bytes_down) == (3 * SOURCE_BYTES, SINK_BYTES)
    closed = [(e.bytes_up, e.bytes_down) for e in of_type(events, TunnelConnectionClosed)]
    assert sorted(closed) == sorted(
        [(SOURCE_BYTES, 0), (0, SINK_BYTES), (SOURCE_BYTES, 0), (SOURCE_BYTES, 0)]
    )
    opened = [e.target for e in of_type(events, TunnelConnectionOpened)]
    assert opened == [
        f"127.0.0.1:{source.port}",
        f"localhost:{sha256_sink.port}",
        f"127.0.0.1:{source.port}",
        f"localhost:{source.port}",
    ]


async def test_the_sink_receives_exactly_what_the_remote_client_sent(
    sshd, sha256_sink, tmp_path
) -> None:
    port = free_port()
    core, _, _ = make_core(
        tmp_path, {"box": sshd_host(sshd)}, {"rs": _reverse_socks(f"127.0.0.1:{port}")}
    )
    async with core:
        await core.start_tunnel("rs")
        await wait_for(lambda: core.tunnel_state("rs").state == TunnelState.UP, 15)
        reader, writer, reply = await _socks5(port, "127.0.0.1", sha256_sink.port)
        assert reply[:2] == b"\x05\x00", reply
        digest = await send_stream(reader, writer, SINK_BYTES)
    results = await asyncio.to_thread(sha256_sink.wait_results, 1, 10)
    assert (results[0].nbytes, results[0].sha256) == (SINK_BYTES, digest)


async def test_a_refused_destination_gets_the_socks_failure_reply(sshd, tmp_path) -> None:
    port, dead = free_port(), free_port()
    core, _, events = make_core(
        tmp_path, {"box": sshd_host(sshd)}, {"rs": _reverse_socks(f"127.0.0.1:{port}")}
    )
    async with core:
        await core.start_tunnel("rs")
        await wait_for(lambda: core.tunnel_state("rs").state == TunnelState.UP, 15)
        reader, writer, reply = await _socks5(port, "127.0.0.1", dead)
        assert reply[:2] == b"\x05\x05", reply  # 5: connection refused
        assert await asyncio.wait_for(reader.read(), 10) == b""  # then closed, not hung
        writer.close()
        reader, writer, reply = await _socks4(port, dead)
        assert reply[:2] == b"\x00\x5b", reply  # SOCKS4: request rejected or failed
        writer.close()
        await wait_for(lambda: len(of_type(events, TargetRefused)) >= 2, 10, what="refusals")
        status = core.tunnel_state("rs")
        assert status.state == TunnelState.UP  # the proxy itself is fine
        assert status.error is not None and f"127.0.0.1:{dead}" in status.error
        await wait_for(lambda: core.tunnel_state("rs").connections == 0, 10)
    refused = of_type(events, TargetRefused)
    assert {e.target for e in refused} == {f"127.0.0.1:{dead}"}
    assert not of_type(events, TunnelConnectionOpened)


async def test_not_socks_on_the_remote_port_is_closed(sshd, tmp_path) -> None:
    port = free_port()
    core, _, events = make_core(
        tmp_path, {"box": sshd_host(sshd)}, {"rs": _reverse_socks(f"127.0.0.1:{port}")}
    )
    async with core:
        await core.start_tunnel("rs")
        await wait_for(lambda: core.tunnel_state("rs").state == TunnelState.UP, 15)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\n\r\n")  # a browser pointed at the proxy port
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        await wait_for(lambda: core.tunnel_state("rs").connections == 0, 10)
    assert not of_type(events, TunnelConnectionOpened)


async def test_the_remote_listener_is_loopback_when_the_server_lets_the_client_choose(
    sshd_factory, source_port_server, tmp_path
) -> None:
    # `GatewayPorts clientspecified` binds what the client asks for: a port alone (as
    # `-R 1080` is saved) must ask for loopback, else any machine that reaches the
    # remote could open connections from this one. The explicit 0.0.0.0 tunnel shows
    # that this check would see a listener on every interface.
    sshd = sshd_factory(["GatewayPorts clientspecified"])
    bare, everywhere = free_port(), free_port()
    tunnels = {"bare": _reverse_socks(f"{bare}"), "lan": _reverse_socks(f"0.0.0.0:{everywhere}")}
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels)
    async with core:
        for name in tunnels:
            await core.start_tunnel(name)
        await wait_for(
            lambda: all(core.tunnel_state(n).state == TunnelState.UP for n in tunnels), 15
        )
        found = {"bare": _listening_addresses(bare), "lan": _listening_addresses(everywhere)}
        reader, writer, reply = await _socks5(bare, "127.0.0.1", source_port_server)
        assert reply[:2] == b"\x05\x00", reply
        assert (await read_stream(reader))[0] == 1000
        writer.close()
    assert found == {"bare": {"127.0.0.1"}, "lan": {"0.0.0.0"}}


@pytest.fixture
def source_port_server() -> Iterator[int]:
    with ByteSource(1000) as source:
        yield source.port


# ---------------------------------------------------------------------------------------------
# Saved as the user pasted it, and loaded back


def test_a_pasted_reverse_socks_line_is_saved_with_target_socks(tmp_path) -> None:
    path = tmp_path / "config.toml"
    config = Config.load(path)
    outcome = add_from_line(config, "ssh -R 1080 -R 0.0.0.0:1081 me@gpu.example.org")
    text = path.read_text()
    assert text.count('target = "socks"') == 2
    again = Config.load(path)
    local, lan = again.tunnels["gpu-rsocks1080"], again.tunnels["gpu-rsocks1081"]
    assert (local.kind, str(local.listen), local.target) == ("remote", "127.0.0.1:1080", None)
    assert local.reverse_socks and lan.reverse_socks
    added = "Added tunnel gpu-rsocks1080: remote 127.0.0.1:1080 -> SOCKS (from this machine; to public) via gpu"
    assert added in outcome.lines
    # Open beyond the remote's loopback: said out loud.
    assert any("0.0.0.0:1081" in line and "other machines" in line for line in outcome.lines)
    add_tunnel(again, "gpu", "remote", "[::1]:1082")
    assert Config.load(path).tunnels["gpu-rsocks1082"].listen.address == "::1"


def test_a_remote_tunnel_without_target_is_an_error_that_names_socks(tmp_path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[hosts.box]\nhostname = "h"\n\n[tunnels.r]\nhost = "box"\nkind = "remote"\n'
        'listen = "9000"\n'
    )
    with pytest.raises(ConfigError) as caught:
        Config.load(path)
    message = str(caught.value)
    assert "needs a target" in message and 'target = "socks"' in message
    path.write_text(
        path.read_text().replace('kind = "remote"', 'kind = "local"') + 'target = "socks"\n'
    )
    with pytest.raises(ConfigError) as caught:
        Config.load(path)
    assert 'kind = "dynamic"' in str(caught.value)


# ---------------------------------------------------------------------------------------------
# Shown readably: the command line and the dashboard


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from tui.cli.main import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tunnels_list_and_add_say_socks_from_this_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "config.toml")
    assert _cli(capsys, "--config", path, "add", "ssh -R 1080 me@gpu.example.org")[0] == 0
    code, out, _ = _cli(capsys, "--config", path, "tunnels", "add", "gpu", "-R", "0.0.0.0:1081")
    assert code == 0 and "other machines" in out and "reverse SOCKS" in out
    code, out, _ = _cli(capsys, "--config", path, "tunnels", "list")
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "127.0.0.1:1080" in rows["gpu-rsocks1080"]
    assert "SOCKS (from this machine)" in rows["gpu-rsocks1080"]
    assert "0.0.0.0:1081 (all interfaces!)" in rows["gpu-rsocks1081"]
    code, out, _ = _cli(capsys, "--config", path, "tunnels", "list", "--json")
    listed = {t["name"]: t for t in json.loads(out)}
    assert listed["gpu-rsocks1080"] | {"autostart": False} == {
        "name": "gpu-rsocks1080",
        "host": "gpu",
        "kind": "remote",
        "listen": "127.0.0.1:1080",
        "target": None,
        "autostart": False,
        "all_interfaces": False,
        "reverse_socks": True,
        "discovered": False,
        "route": "remote 127.0.0.1:1080 -> SOCKS (from this machine; to public) via gpu",
        "permit_open": None,
        "probe": True,
    }
    assert listed["gpu-rsocks1081"]["all_interfaces"] is True
    # Exported as ssh writes it, and ssh's words read back the same.
    code, out, _ = _cli(capsys, "--config", path, "hosts", "export", "gpu")
    assert "-R 127.0.0.1:1080 -R 0.0.0.0:1081" in out
    code, out, _ = _cli(capsys, "--config", path, "hosts", "export", "gpu", "--as", "config")
    assert "    RemoteForward 127.0.0.1:1080\n    RemoteForward 0.0.0.0:1081" in out
    # A retarget has no port to move: said, nothing changed.
    code, _, err = _cli(capsys, "--config", path, "tunnels", "retarget", "gpu-rsocks1080", "9")
    assert code == 1 and "SOCKS proxy" in err


async def test_the_dashboard_shows_edits_and_makes_a_reverse_socks_tunnel(tmp_path: Path) -> None:
    from dashboard_util import make_app, ready, until
    from textual.widgets import Input, Select

    from tui.panes.tunnels_pane import route
    from tui.screens.forms import TunnelFormScreen

    tunnels = {"back": _reverse_socks("1080"), "lan": _reverse_socks("0.0.0.0:1081")}
    app = make_app(tmp_path, {"box": {"hostname": "box.invalid"}}, tunnels)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        assert route(app.config.tunnels["back"]) == "R 1080→SOCKS from here"
        assert (
            route(app.config.tunnels["lan"]) == "R 0.0.0.0:1081→SOCKS from here (all interfaces!)"
        )
        await pilot.press("2")
        await until(
            pilot, lambda: "SOCKS from here" in str(app.tunnels_pane.border_subtitle), 10, "route"
        )
        # Edit: the form shows the spec as typed (no target), and saving keeps it SOCKS.
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, TunnelFormScreen), 10, "the form")
        assert app.screen.query_one("#spec", Input).value == "1080"
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, TunnelFormScreen), 10, "saved")
        assert app.config.tunnels["back"].reverse_socks
        # No browser URL here: `o` / `y` say what to do with it instead.
        with pytest.raises(DevtuiError, match="SOCKS proxy on the remote"):
            app.tunnel_actions.tunnel_url("back")
        # New: kind remote with a port alone is a reverse SOCKS proxy.
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, TunnelFormScreen), 10, "the form")
        app.screen.query_one("#kind", Select).value = "remote"
        app.screen.query_one("#spec", Input).value = "2080"
        await pilot.pause(0.4)
        await pilot.press("enter")
        await until(pilot, lambda: "box-rsocks2080" in app.config.tunnels, 10, "the new tunnel")
    made = Config.load(tmp_path / "config.toml").tunnels["box-rsocks2080"]
    assert (made.kind, str(made.listen), made.target) == ("remote", "127.0.0.1:2080", None)


async def test_a_hostile_destination_name_is_refused_and_shown_harmlessly(sshd, tmp_path) -> None:
    # Anyone on the remote may speak to the proxy: a name with a NUL or an escape sequence
    # must get a failure reply (not a hung connection) and reach the log as visible text.
    port = free_port()
    core, _, events = make_core(
        tmp_path, {"box": sshd_host(sshd)}, {"rs": _reverse_socks(f"127.0.0.1:{port}")}
    )
    async with core:
        await core.start_tunnel("rs")
        await wait_for(lambda: core.tunnel_state("rs").state == TunnelState.UP, 15)
        for name in ("a\x00b.example", "\x1b[2J\x1b]0;pwned\x07.invalid", "x" * 200 + ".example"):
            reader, writer, reply = await _socks5(port, name, 80)
            assert reply[:2] != b"\x05\x00" and reply[0] == 5, (name, reply)
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
        await wait_for(lambda: len(of_type(events, TargetRefused)) >= 3, 30, what="refusals")
        await wait_for(lambda: core.tunnel_state("rs").connections == 0, 10)
        assert core.tunnel_state("rs").state == TunnelState.UP
    for event in of_type(events, TargetRefused):
        assert "\x1b" not in event.target and "\x00" not in event.target
        assert "\x1b" not in event.message()


async def test_clients_that_send_and_end_at_once_lose_nothing(sshd, tmp_path) -> None:
    """A client that sends its request, its data and its EOF without waiting (a pipelining
    client, or a short request/response protocol): every byte reaches the destination and
    every connection ends, however the EOF falls against the destination's connect."""
    received: dict[bytes, bytes] = {}

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()
        received[data[:8]] = data
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    dest = server.sockets[0].getsockname()[1]
    port = free_port()
    core, _, _ = make_core(
        tmp_path, {"box": sshd_host(sshd)}, {"rs": _reverse_socks(f"127.0.0.1:{port}")}
    )
    request = b"\x05\x01\x00\x05\x01\x00\x01" + bytes([127, 0, 0, 1]) + dest.to_bytes(2, "big")
    sent: list[bytes] = []

    async def one(i: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        payload = i.to_bytes(8, "big") + os.urandom(2 + i % 7)
        sent.append(payload)
        writer.write(request + payload)
        await asyncio.sleep((i % 5) / 1000)  # the EOF lands before, during or after the connect
        writer.write_eof()
        reply = await asyncio.wait_for(reader.read(), 15)
        writer.close()
        return reply

    try:
        async with core:
            await core.start_tunnel("rs")
            await wait_for(lambda: core.tunnel_state("rs").state == TunnelState.UP, 15)
            for batch in range(4):
                replies = await asyncio.gather(*(one(batch * 25 + i) for i in range(25)))
                assert all(r[:4] == b"\x05\x00\x05\x00" for r in replies), replies
            await wait_for(
                lambda: core.tunnel_state("rs").connections == 0, 10, what="every pair closed"
            )
            await wait_for(lambda: len(received) == len(sent), 10, what="every payload")
    finally:
        server.close()
    assert sorted(received.values()) == sorted(sent)


async def test_a_payload_of_any_length_may_follow_the_request(sshd, sha256_sink, tmp_path) -> None:
    """The handshake is bounded (1 KiB), not what a client sends right behind a complete
    request: 5,000 bytes in the same write still get the reply and reach the destination."""
    port = free_port()
    core, _, _ = make_core(
        tmp_path, {"box": sshd_host(sshd)}, {"rs": _reverse_socks(f"127.0.0.1:{port}")}
    )
    head = os.urandom(5000)
    async with core:
        await core.start_tunnel("rs")
        await wait_for(lambda: core.tunnel_state("rs").state == TunnelState.UP, 15)
        reader, writer, reply = await _socks5(port, "127.0.0.1", sha256_sink.port, head)
        assert reply[:2] == b"\x05\x00", reply
        await send_stream(reader, writer, 1000)
    results = await asyncio.to_thread(sha256_sink.wait_results, 1, 10)
    assert results[0].nbytes == len(head) + 1000


async def test_a_name_whose_every_address_refuses_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A name with several addresses (localhost: ::1 and 127.0.0.1 on most machines) that all
    refuse is "refused" (SOCKS5 reply 5), not "unreachable"; asyncio's own loop would have
    said only "Multiple exceptions". The name's two addresses are stood in for here (no
    DNS can be set up in this sandbox); the refusals are real."""
    port = free_port()
    real = socket.getaddrinfo

    def lookup(host: str, *args: object, **kwargs: object) -> object:
        if host == "none.test":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if host == "two.test":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
                for address in ("127.0.0.1", "127.0.0.2")
            ]
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    with pytest.raises(OSError) as refused:
        await open_from_here(asyncio.Protocol, "two.test", port)
    assert connect_failure(refused.value) == (True, "connection refused")
    with pytest.raises(OSError) as one:
        await open_from_here(asyncio.Protocol, "127.0.0.1", port)
    assert connect_failure(one.value)[0] is True
    with pytest.raises(OSError) as unknown:
        await open_from_here(asyncio.Protocol, "none.test", port)
    assert connect_failure(unknown.value) == (False, "Name or service not known")


async def test_names_that_never_resolve_do_not_hold_the_threads_saves_need(
    sshd, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote client asking for names whose DNS server never answers (stood in for here by
    a lookup that blocks until released: no DNS server can run in this sandbox) must not
    take the event loop's shared threads, which config saves and reloads run on."""
    release = threading.Event()
    real = socket.getaddrinfo

    def lookup(host: str, *args: object, **kwargs: object) -> object:
        if str(host).endswith(".hang.test"):
            release.wait(30)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    port = free_port()
    core, _, _ = make_core(
        tmp_path,
        {"box": sshd_host(sshd)},
        {"rs": _reverse_socks(f"127.0.0.1:{port}", permit=["public"])},  # names are looked up
    )
    clients = []
    try:
        async with core:
            await core.start_tunnel("rs")
            await wait_for(lambda: core.tunnel_state("rs").state == TunnelState.UP, 15)
            for i in range(12):  # twice the loop's default pool on 2 cores
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                name = f"n{i}.hang.test".encode()
                writer.write(b"\x05\x01\x00\x05\x01\x00\x03" + bytes([len(name)]) + name + b"\x00P")
                clients.append((reader, writer))
            await wait_for(lambda: core.tunnel_state("rs").connections == 12, 10, what="12 lookups")
            # What a save does: a job on the shared pool. It runs while every lookup hangs.
            assert await asyncio.wait_for(asyncio.to_thread(lambda: "saved"), 10) == "saved"
            assert not release.is_set()
            release.set()
            for reader, _ in clients:  # each then gets its failure reply
                reply = await asyncio.wait_for(reader.read(), 20)
                assert reply[:2] == b"\x05\x00" and reply[3:4] not in (b"", b"\x00"), reply
    finally:
        release.set()
        for _, writer in clients:
            writer.close()


# -- the destination policy (issue 17, item 5) -------------------------------------------------


@pytest.mark.parametrize(
    ("permit", "host", "allowed"),
    [
        (None, "127.0.0.1", False),  # the default: this machine's services are not reachable
        (None, "localhost", False),  # ... not by a name that leads there either
        (["127.0.0.1:{echo}"], "127.0.0.1", True),  # said by name and port: reachable
        (["127.0.0.1:{other}"], "127.0.0.1", False),  # another port is not
        (["any"], "localhost", True),
    ],
)
async def test_a_reverse_socks_client_reaches_only_what_permit_open_allows(
    sshd, tmp_path, echo_server, permit, host, allowed
) -> None:
    port = free_port()
    entries = None
    if permit is not None:
        entries = [p.format(echo=echo_server.port, other=echo_server.port + 1) for p in permit]
    spec = _reverse_socks(f"127.0.0.1:{port}")
    if entries is None:
        del spec["permit_open"]
    else:
        spec["permit_open"] = entries
    core, _, events = make_core(tmp_path, {"box": sshd_host(sshd)}, {"rs": spec})
    async with core:
        await core.start_tunnel("rs")
        await wait_for(lambda: core.tunnel_state("rs").state == TunnelState.UP, 15)
        reader, writer, reply = await _socks5(port, host, echo_server.port)
        if allowed:
            assert reply[:2] == b"\x05\x00", reply
            writer.write(b"ping")
            assert await asyncio.wait_for(reader.readexactly(4), 10) == b"ping"
        else:
            assert reply[:2] == b"\x05\x02", reply  # 2: not allowed by the ruleset
            assert await asyncio.wait_for(reader.read(), 10) == b""
            assert "permit_open" in (core.tunnel_state("rs").error or "")
        writer.close()
        await wait_for(lambda: core.tunnel_state("rs").connections == 0, 10)
    if allowed:
        (opened,) = of_type(events, TunnelConnectionOpened)  # said in the Logs pane
        assert opened.target == f"{host}:{echo_server.port}"
    else:
        (refused,) = of_type(events, TargetRefused)
        assert refused.blocked and "permit_open" in refused.detail
        assert not of_type(events, TunnelConnectionOpened)


async def test_a_reverse_socks_proxy_carries_a_bounded_number_of_connections(
    sshd, tmp_path, echo_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sshcore import tunnels

    monkeypatch.setattr(tunnels, "REVERSE_SOCKS_MAX", 2)
    port = free_port()
    core, _, events = make_core(
        tmp_path, {"box": sshd_host(sshd)}, {"rs": _reverse_socks(f"127.0.0.1:{port}")}
    )
    async with core:
        await core.start_tunnel("rs")
        await wait_for(lambda: core.tunnel_state("rs").state == TunnelState.UP, 15)
        held = [await _socks5(port, "127.0.0.1", echo_server.port) for _ in range(2)]
        assert all(reply[:2] == b"\x05\x00" for _, _, reply in held)
        for _ in range(3):  # past the cap: the remote's sshd gets the channel refused
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x05\x01\x00")
            # Closed (sshd may reset it): no greeting answered, nothing forwarded.
            with contextlib.suppress(ConnectionResetError):
                assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
        over = [e for e in of_type(events, TargetRefused) if "at once" in e.detail]
        assert len(over) == 1  # said once, not once per refused connection
        for _, writer, _ in held:
            writer.close()
        await wait_for(lambda: core.tunnel_state("rs").connections == 0, 10)
        _, writer, reply = await _socks5(port, "127.0.0.1", echo_server.port)
        assert reply[:2] == b"\x05\x00"  # below the cap again: served
        writer.close()


def test_permit_open_is_checked_in_the_config_and_shown_by_tunnels_list(tmp_path) -> None:
    from sshcore.model import is_public_address, permitted

    path = tmp_path / "config.toml"
    path.write_text(
        '[hosts.box]\nhostname = "h"\n\n[tunnels.rs]\nhost = "box"\nkind = "remote"\n'
        'listen = "127.0.0.1:1080"\ntarget = "socks"\npermit_open = ["*.corp:443", "public"]\n'
    )
    spec = Config.load(path).tunnels["rs"]
    assert spec.permits == ("*.corp:443", "public")
    assert spec.describe() == (
        "remote 127.0.0.1:1080 -> SOCKS (from this machine; to *.corp:443, public) via box"
    )
    assert permitted(spec.permits, "git.corp", 443) == "any"
    assert permitted(spec.permits, "git.corp", 22) == "public"
    assert permitted(("git.corp:443",), "other", 443) is None
    for address, public in [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("169.254.169.254", False),
        ("10.1.2.3", False),
        ("100.64.0.1", False),
        ("127.0.0.1", False),
        ("::ffff:127.0.0.1", False),
        ("fe80::1%eth0", False),
        ("224.0.0.1", False),
    ]:
        assert is_public_address(address) is public, address
    for bad, words in [
        ('["nowhere"]', "HOST:PORT"),
        ('["h:99999"]', "port 1-65535"),
        ("[1]", "must be a string"),
    ]:
        path.write_text(path.read_text().rsplit("permit_open", 1)[0] + f"permit_open = {bad}\n")
        with pytest.raises(ConfigError, match=words) as caught:
            Config.load(path)
        assert ":9:" in str(caught.value)  # the line
    path.write_text(
        '[hosts.box]\nhostname = "h"\n\n[tunnels.t]\nhost = "box"\nkind = "local"\n'
        'listen = "127.0.0.1:1"\ntarget = "127.0.0.1:2"\npermit_open = ["any"]\n'
    )
    with pytest.raises(ConfigError, match="reverse SOCKS"):
        Config.load(path)
