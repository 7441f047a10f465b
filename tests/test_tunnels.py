"""Tunnels through a real OpenSSH sshd: bytes intact, many connections, errors users can act on."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from pathlib import Path

import psutil
import pytest
from coreutil import isolate_home, make_core, of_type, sshd_host, wait_for
from harness.net import (
    ByteSource,
    echo_roundtrip,
    echo_streams,
    free_port,
    read_all,
    read_stream,
    send_random,
    send_stream,
)

from sshcore.errors import ConfigError
from sshcore.events import TargetRefused, TunnelConnectionClosed, TunnelFailed, TunnelTraffic
from sshcore.tunnels import TunnelError, TunnelState

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


def _tunnel(kind: str, listen: str, target: str | None = None, host: str = "box") -> dict:
    table = {"host": host, "kind": kind, "listen": listen}
    if target:
        table["target"] = target
    return table


async def _socks5_connect(port: int, host: str, dest_port: int) -> tuple:
    """SOCKS5 CONNECT: an IP literal goes as ATYP 1 (IPv4) or 4 (IPv6), a name as ATYP 3."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x05\x01\x00")
    assert await reader.readexactly(2) == b"\x05\x00"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        name = host.encode()
        address = b"\x03" + bytes([len(name)]) + name
    else:
        address = (b"\x01" if ip.version == 4 else b"\x04") + ip.packed
    writer.write(b"\x05\x01\x00" + address + dest_port.to_bytes(2, "big"))
    reply = await reader.readexactly(10)
    return reader, writer, reply


async def _socks_echo(port: int, echo_port: int, nbytes: int) -> tuple[str, str]:
    reader, writer, reply = await _socks5_connect(port, "localhost", echo_port)
    assert reply[1] == 0, f"SOCKS reply {reply!r}"
    return await echo_streams(reader, writer, nbytes)


@pytest.mark.slow
async def test_64_mib_intact_through_local_remote_and_socks(sshd, echo_server, tmp_path) -> None:
    lport, rport, dport = free_port(), free_port(), free_port()
    tunnels = {
        "l": _tunnel("local", f"127.0.0.1:{lport}", f"127.0.0.1:{echo_server.port}"),
        "r": _tunnel("remote", f"127.0.0.1:{rport}", f"127.0.0.1:{echo_server.port}"),
        "d": _tunnel("dynamic", f"127.0.0.1:{dport}"),
    }
    core, _, events = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels)
    async with core:
        for name in tunnels:
            await core.start_tunnel(name)
        await wait_for(
            lambda: all(core.tunnel_state(n).state == TunnelState.UP for n in tunnels), 15
        )
        # local: us -> tunnel -> sshd -> echo; remote: sshd's port -> tunnel -> us -> echo
        for port in (lport, rport):
            sent, got = await echo_roundtrip("127.0.0.1", port, 64 * MiB)
            assert sent == got
        sent, got = await _socks_echo(dport, echo_server.port, 64 * MiB)
        assert sent == got
        await wait_for(
            lambda: all(core.tunnel_state(n).connections == 0 for n in tunnels),
            5,
            what="every forwarded connection closed",
        )
        for name in ("l", "r", "d"):
            status = core.tunnel_state(name)
            assert status.bytes_up >= 64 * MiB and status.bytes_down >= 64 * MiB, status
        # Counters are published a few times a second while traffic flows.
        await wait_for(lambda: bool(of_type(events, TunnelTraffic)), 5, what="traffic counters")
    closed = of_type(events, TunnelConnectionClosed)
    assert {e.tunnel for e in closed} == {"l", "r", "d"}


async def test_100_concurrent_connections_through_one_tunnel(sshd, echo_server, tmp_path) -> None:
    port = free_port()
    tunnels = {"l": _tunnel("local", f"127.0.0.1:{port}", f"127.0.0.1:{echo_server.port}")}
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels)
    async with core:
        await core.start_tunnel("l")
        await wait_for(lambda: core.tunnel_state("l").state == TunnelState.UP, 10)
        results = await asyncio.gather(
            *(echo_roundtrip("127.0.0.1", port, 64 * 1024) for _ in range(100))
        )
        assert all(sent == got for sent, got in results)
        assert len(core.sessions) == 1  # one SSH connection carried all of them
        assert core.tunnel_state("l").bytes_up == 100 * 64 * 1024


SOURCE_BYTES = 3 * MiB + 123  # odd sizes, different each way: no count is another's by chance
SINK_BYTES = 2 * MiB + 77


async def test_counters_tell_up_from_down_for_local_remote_and_socks(
    sshd, sha256_sink, tmp_path
) -> None:
    # One-way traffic (a source that only talks, a sink that only listens), so a swap of
    # the two directions shows. "Up" is what this machine sends over SSH: for -L and -D
    # what the local client sends, for -R what the local target answers.
    with ByteSource(SOURCE_BYTES) as source:
        ports = {name: free_port() for name in ("l-src", "l-sink", "r-src", "r-sink")}
        ports |= {"d-src": free_port(), "d-sink": free_port()}
        src, sink = f"127.0.0.1:{source.port}", f"127.0.0.1:{sha256_sink.port}"
        tunnels = {
            "l-src": _tunnel("local", f"127.0.0.1:{ports['l-src']}", src),
            "l-sink": _tunnel("local", f"127.0.0.1:{ports['l-sink']}", sink),
            "r-src": _tunnel("remote", f"127.0.0.1:{ports['r-src']}", src),
            "r-sink": _tunnel("remote", f"127.0.0.1:{ports['r-sink']}", sink),
            "d-src": _tunnel("dynamic", f"127.0.0.1:{ports['d-src']}"),
            "d-sink": _tunnel("dynamic", f"127.0.0.1:{ports['d-sink']}"),
        }
        for table in tunnels.values():  # the sink would count a probe as a stream of its own
            table["probe"] = False
        core, _, events = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels)
        async with core:
            for name in tunnels:
                await core.start_tunnel(name)
            await wait_for(
                lambda: all(core.tunnel_state(n).state == TunnelState.UP for n in tunnels), 15
            )
            received: dict[str, tuple[int, str]] = {}
            sent: dict[str, str] = {}
            for name in ("l-src", "r-src"):
                received[name] = await read_all("127.0.0.1", ports[name])
            for name in ("l-sink", "r-sink"):
                sent[name] = await send_random("127.0.0.1", ports[name], SINK_BYTES)
            # SOCKS with an IPv4 address (ATYP 1): a byte-order slip would miss the target.
            reader, writer, reply = await _socks5_connect(ports["d-src"], "127.0.0.1", source.port)
            assert reply[:2] == b"\x05\x00", reply
            received["d-src"] = await read_stream(reader)
            writer.close()
            reader, writer, reply = await _socks5_connect(
                ports["d-sink"], "127.0.0.1", sha256_sink.port
            )
            assert reply[:2] == b"\x05\x00", reply
            sent["d-sink"] = await send_stream(reader, writer, SINK_BYTES)
            await wait_for(
                lambda: all(core.tunnel_state(n).connections == 0 for n in tunnels),
                10,
                what="every forwarded connection closed",
            )
            counters = {
                n: (core.tunnel_state(n).bytes_up, core.tunnel_state(n).bytes_down) for n in tunnels
            }
        for name, (nbytes, digest) in received.items():
            assert nbytes == SOURCE_BYTES and digest in source.sent, name
        results = await asyncio.to_thread(sha256_sink.wait_results, 3, 10)
        assert sorted(r.sha256 for r in results) == sorted(sent.values())
        assert source.received == 0
    assert counters == {
        "l-src": (0, SOURCE_BYTES),
        "l-sink": (SINK_BYTES, 0),
        "r-src": (SOURCE_BYTES, 0),
        "r-sink": (0, SINK_BYTES),
        "d-src": (0, SOURCE_BYTES),
        "d-sink": (SINK_BYTES, 0),
    }
    per_connection = {
        e.tunnel: (e.bytes_up, e.bytes_down) for e in of_type(events, TunnelConnectionClosed)
    }
    assert per_connection == counters


async def test_busy_port_fails_that_tunnel_alone_naming_the_process(
    sshd, echo_server, tmp_path
) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    busy = holder.getsockname()[1]
    free = free_port()
    tunnels = {
        "busy": _tunnel("local", f"127.0.0.1:{busy}", f"127.0.0.1:{echo_server.port}"),
        "fine": _tunnel("local", f"127.0.0.1:{free}", f"127.0.0.1:{echo_server.port}"),
    }
    core, _, events = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels)
    try:
        async with core:
            with pytest.raises(TunnelError) as caught:
                await core.start_tunnel("busy")
            message = str(caught.value)
            assert f"127.0.0.1:{busy} is already in use by" in message
            assert f"pid {os.getpid()}" in message
            assert psutil.Process().name() in message
            assert "is free" in message  # a suggestion the user can take
            assert core.tunnel_state("busy").state == TunnelState.FAILED
            await core.start_tunnel("fine")
            await wait_for(lambda: core.tunnel_state("fine").state == TunnelState.UP, 10)
            sent, got = await echo_roundtrip("127.0.0.1", free, 1000)
            assert sent == got
    finally:
        holder.close()
    assert of_type(events, TunnelFailed)[0].tunnel == "busy"


async def test_target_refused_is_reported_not_silent(sshd, tmp_path) -> None:
    port, dead = free_port(), free_port()
    tunnels = {"l": _tunnel("local", f"127.0.0.1:{port}", f"127.0.0.1:{dead}")}
    core, _, events = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels)
    async with core:
        await core.start_tunnel("l")
        await wait_for(lambda: core.tunnel_state("l").state == TunnelState.UP, 10)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed, not hung
        writer.close()
        await wait_for(lambda: bool(of_type(events, TargetRefused)), 5)
        status = core.tunnel_state("l")
        assert status.state == TunnelState.UP  # the tunnel itself is fine
        assert status.error is not None and "target refused" in status.error
        assert f"127.0.0.1:{dead}" in status.error


async def test_remote_forward_refused_by_server_says_so_and_retries(sshd_factory, tmp_path) -> None:
    sshd = sshd_factory(["AllowTcpForwarding local"])
    port = free_port()
    tunnels = {"r": _tunnel("remote", f"127.0.0.1:{port}", "127.0.0.1:9")}
    core, _, events = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels)
    async with core:
        await core.start_tunnel("r")
        await wait_for(lambda: len(of_type(events, TunnelFailed)) >= 2, 10, what="two refusals")
        status = core.tunnel_state("r")
        assert status.state == TunnelState.FAILED
        assert "refused to listen" in (status.error or "") and "retrying" in (status.error or "")


async def test_listeners_bind_loopback_unless_asked(sshd, echo_server, tmp_path) -> None:
    lo, everywhere = free_port(), free_port()
    tunnels = {
        "lo": _tunnel("local", f"{lo}", f"127.0.0.1:{echo_server.port}"),
        "lan": _tunnel("local", f"0.0.0.0:{everywhere}", f"127.0.0.1:{echo_server.port}"),
        "socks": _tunnel("dynamic", f"{free_port()}"),
    }
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels)
    async with core:
        for name in tunnels:
            await core.start_tunnel(name)
        mine = {
            c.laddr.port: c.laddr.ip
            for c in psutil.Process().net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN
        }
    assert mine[lo] == "127.0.0.1"
    assert mine[everywhere] == "0.0.0.0"  # only because the config says so
    socks_port = core.config.tunnels["socks"].listen.port
    assert mine[socks_port] == "127.0.0.1"


def _listening_addresses(port: int) -> set[str]:
    """Every address something on this machine listens on at `port` (TCP, v4 and v6)."""
    return {
        c.laddr.ip
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
    }


async def test_remote_listeners_ask_for_loopback_when_the_server_lets_the_client_choose(
    sshd_factory, echo_server, tmp_path
) -> None:
    # With the harness's usual `GatewayPorts no`, sshd binds loopback whatever devtui asks
    # for, which would hide a request for every interface. `clientspecified` binds what
    # the client asks, as many servers are set up: so ask for loopback, every time.
    sshd = sshd_factory(["GatewayPorts clientspecified"])
    bare, explicit, v6 = free_port(), free_port(), free_port()
    target = f"127.0.0.1:{echo_server.port}"
    tunnels = {
        "bare": _tunnel("remote", f"{bare}", target),  # a port alone means loopback
        "explicit": _tunnel("remote", f"127.0.0.1:{explicit}", target),
        "v6": _tunnel("remote", f"[::1]:{v6}", target),
    }
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels)
    async with core:
        for name in tunnels:
            await core.start_tunnel(name)
        await wait_for(
            lambda: all(core.tunnel_state(n).state == TunnelState.UP for n in tunnels), 10
        )
        found = {
            name: _listening_addresses(port)
            for name, port in (("bare", bare), ("explicit", explicit), ("v6", v6))
        }
        sent, got = await echo_roundtrip("127.0.0.1", bare, 10_000)
        assert sent == got
    assert found == {
        "bare": {"127.0.0.1"},
        "explicit": {"127.0.0.1"},
        "v6": {"::1"},  # the server really binds what the client names
    }


async def test_stop_and_restart_one_tunnel_leaves_the_other_alone(
    sshd, echo_server, tmp_path
) -> None:
    a, b = free_port(), free_port()
    target = f"127.0.0.1:{echo_server.port}"
    tunnels = {"a": _tunnel("local", f"{a}", target), "b": _tunnel("local", f"{b}", target)}
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels)
    async with core:
        await core.start_tunnel("a")
        await core.start_tunnel("b")
        await wait_for(lambda: core.tunnel_state("b").state == TunnelState.UP, 10)
        reader, writer = await asyncio.open_connection("127.0.0.1", b)  # a long-lived user of b
        conn = await core.connection("box")
        await core.stop_tunnel("a")
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", a)
        await core.restart_tunnel("a")
        await wait_for(lambda: core.tunnel_state("a").state == TunnelState.UP, 10)
        assert await core.connection("box") is conn  # same SSH connection throughout
        writer.write(b"still here")
        assert await reader.readexactly(10) == b"still here"
        writer.close()


async def test_edit_and_remove_a_running_tunnel(sshd, echo_server, tmp_path) -> None:
    # What the dashboard's edit and delete keys do: the change is saved, the tunnel follows
    # it at once, and the other tunnel on the host never notices.
    a, b, moved = free_port(), free_port(), free_port()
    target = f"127.0.0.1:{echo_server.port}"
    core, _, _ = make_core(
        tmp_path, {"box": sshd_host(sshd)}, {"b": _tunnel("local", f"{b}", target)}
    )
    config_path = core.config.path
    async with core:
        spec = core.config.tunnels["b"]
        await core.add_tunnel(
            type(spec)("a", "box", "local", type(spec.listen)("127.0.0.1", a), spec.target)
        )
        assert "[tunnels.a]" in config_path.read_text()
        await core.start_tunnel("a")
        await core.start_tunnel("b")
        await wait_for(lambda: core.tunnel_state("a").state == TunnelState.UP, 10)
        reader, writer = await asyncio.open_connection("127.0.0.1", b)
        spec = core.config.tunnels["a"]
        new = type(spec)("a", "box", "local", type(spec.listen)("127.0.0.1", moved), spec.target)
        status = await core.update_tunnel("a", new)
        assert status.state in (TunnelState.STARTING, TunnelState.UP)
        await wait_for(lambda: core.tunnel_state("a").state == TunnelState.UP, 10)
        sent, got = await echo_roundtrip("127.0.0.1", moved, 10_000)
        assert sent == got
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", a)
        assert f"127.0.0.1:{moved}" in config_path.read_text()

        await core.remove_tunnel("a")
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", moved)
        assert "a" not in core.config.tunnels and "[tunnels.a]" not in config_path.read_text()
        writer.write(b"still here")
        assert await reader.readexactly(10) == b"still here"
        writer.close()


async def test_removing_a_host_stops_its_tunnels_unless_another_host_jumps_through_it(
    sshd, echo_server, tmp_path
) -> None:
    port = free_port()
    target = f"127.0.0.1:{echo_server.port}"
    hosts = {"box": sshd_host(sshd), "inner": sshd_host(sshd, jump="box")}
    core, _, _ = make_core(tmp_path, hosts, {"l": _tunnel("local", f"{port}", target)})
    async with core:
        await core.start_tunnel("l")
        await wait_for(lambda: core.tunnel_state("l").state == TunnelState.UP, 10)
        with pytest.raises(ConfigError, match="jump host of inner"):
            await core.remove_host("box")
        sent, got = await echo_roundtrip("127.0.0.1", port, 10_000)  # refused: nothing stopped
        assert sent == got
        await core.remove_host("inner")
        assert await core.remove_host("box") == ["l"]
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
        assert core.config.hosts == {} and "box" not in core.sessions


class _BannerServer:
    """Speaks first and hangs up, like sshd's banner or an SMTP greeting."""

    def __init__(self) -> None:
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> int:
        async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HELLO banner\r\n")
            await writer.drain()
            writer.close()

        self.server = await asyncio.start_server(greet, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


async def test_remote_forward_keeps_what_the_target_says_first(sshd, tmp_path) -> None:
    port = free_port()
    async with _BannerServer() as banner:
        tunnels = {"r": _tunnel("remote", f"127.0.0.1:{port}", f"127.0.0.1:{banner}")}
        core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels)
        async with core:
            await core.start_tunnel("r")
            await wait_for(lambda: core.tunnel_state("r").state == TunnelState.UP, 10)
            for _ in range(10):  # e.g. -R 2222:localhost:22: the SSH banner must arrive
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                assert await asyncio.wait_for(reader.readline(), 5) == b"HELLO banner\r\n"
                writer.close()


async def test_clients_that_hang_up_early_do_not_drop_the_connection(sshd, tmp_path) -> None:
    port = free_port()
    async with _BannerServer() as banner:
        tunnels = {"l": _tunnel("local", f"127.0.0.1:{port}", f"127.0.0.1:{banner}")}
        core, _, events = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels)
        async with core:
            await core.start_tunnel("l")
            await wait_for(lambda: core.tunnel_state("l").state == TunnelState.UP, 10)
            conn = await core.connection("box")
            for _ in range(20):  # read the greeting, then reset (as browsers do)
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                assert await asyncio.wait_for(reader.readline(), 5) == b"HELLO banner\r\n"
                sock = writer.get_extra_info("socket")
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                writer.close()
            await wait_for(
                lambda: len(of_type(events, TunnelConnectionClosed)) == 20, 10, what="20 closes"
            )
            # A command's round trip on the same connection: whatever the server sent about
            # those channels has been handled by the time its answer arrives.
            assert await core.run("box", ["true"]) == 0
            assert await core.connection("box") is conn
    assert not [e for e in events if type(e).__name__ == "HostLost"]


async def test_a_freed_port_can_be_started_after_it_was_busy(sshd, echo_server, tmp_path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    tunnels = {"l": _tunnel("local", f"127.0.0.1:{port}", f"127.0.0.1:{echo_server.port}")}
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels)
    async with core:
        with pytest.raises(TunnelError):
            await core.start_tunnel("l")
        holder.close()  # the user stops the other program
        await core.start_tunnel("l")
        await wait_for(lambda: core.tunnel_state("l").state == TunnelState.UP, 10)
        sent, got = await echo_roundtrip("127.0.0.1", port, 1000)
        assert sent == got
