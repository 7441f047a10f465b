"""Network faults: cut links, blackholes, a stopped sshd, and many reconnects without leaks."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psutil
import pytest
from coreutil import isolate_home, make_core, of_type, sshd_host, wait_for
from harness.net import echo_roundtrip, free_port

import sshcore.session
from sshcore.events import HostConnected, HostLost, HostReconnectScheduled
from sshcore.session import HostState
from sshcore.tunnels import TunnelState


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


async def _works(port: int, timeout: float = 2) -> bool:
    try:
        sent, got = await asyncio.wait_for(echo_roundtrip("127.0.0.1", port, 1000), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    return sent == got


async def _until_works(port: int, timeout: float) -> float:
    start = time.monotonic()
    while not await _works(port):
        assert time.monotonic() - start < timeout, f"tunnel not back within {timeout} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def _setup(sshd, tcp_proxy, echo_server, tmp_path, **settings):
    proxy = tcp_proxy("127.0.0.1", sshd.port)
    port = free_port()
    host = sshd_host(sshd, port=proxy.port)
    tunnels = {"l": {"host": "box", "listen": f"{port}", "target": f"127.0.0.1:{echo_server.port}"}}
    core, _, events = make_core(tmp_path, {"box": host}, tunnels, **settings)
    return proxy, port, core, events


async def test_link_cut_for_3_s_heals_within_5_s(
    sshd, tcp_proxy, echo_server, tmp_path, monkeypatch
) -> None:
    # At half the real pace (backoff base 0.25 s), every time here is half its real value
    # (the backoff's delays all scale with its base). The link stays down 5 s at real pace,
    # as it did when this test ran at full pace (3 s, plus 2 s spent showing that nothing
    # passes), and must be back within 5 s of its return: a backoff that grows too fast (x3
    # per attempt fails here), or a forward that is not brought back, still fails.
    pace = 0.5
    monkeypatch.setattr(sshcore.session, "BACKOFF_BASE", sshcore.session.BACKOFF_BASE * pace)
    proxy, port, core, events = _setup(sshd, tcp_proxy, echo_server, tmp_path)
    async with core:
        await core.start_tunnel("l")
        await _until_works(port, 10)
        proxy.cut()
        cut_at = time.monotonic()
        await wait_for(lambda: bool(of_type(events, HostLost)), 5, what="loss noticed")
        # Nothing passes while the link is down (a local round trip takes milliseconds).
        assert not await _works(port, timeout=0.5)
        # The outage itself, counted from the cut: its length is the test's subject.
        await asyncio.sleep(max(0.0, cut_at + 5 * pace - time.monotonic()))
        proxy.restore()
        healed = await _until_works(port, 10)
        assert healed <= 5 * pace, f"forward back {healed:.1f} s after the link returned"
        assert core.tunnel_state("l").state == TunnelState.UP


async def test_blackhole_is_detected_by_keepalive(sshd, tcp_proxy, echo_server, tmp_path) -> None:
    interval, count = 0.5, 2
    proxy, port, core, events = _setup(
        sshd,
        tcp_proxy,
        echo_server,
        tmp_path,
        keepalive_interval=interval,
        keepalive_count_max=count,
    )
    async with core:
        await core.start_tunnel("l")
        await _until_works(port, 10)
        proxy.blackhole()
        start = time.monotonic()
        budget = interval * (count + 1) + 1
        await wait_for(lambda: bool(of_type(events, HostLost)), budget + 2, interval=0.01)
        detected = time.monotonic() - start
        assert detected <= budget, f"silent link noticed after {detected:.1f} s (budget {budget})"
        assert core.tunnel_state("l").state == TunnelState.WAITING
        proxy.restore()
        await _until_works(port, 15)


async def test_sshd_down_backs_off_quietly_and_recovers(
    sshd, echo_server, tmp_path, monkeypatch
) -> None:
    # The backoff's shape at a tenth of its real pace (0.05 s base, 0.4 s cap): ten retries
    # take ~2 s here instead of ~20 s, and catch the same faults (no retries, a tight loop,
    # delays that never grow or pass the cap, a busy CPU, no recovery).
    monkeypatch.setattr(sshcore.session, "BACKOFF_BASE", 0.05)
    cap = 0.4  # reached by the 7th retry; uncapped, the 10th would be at least 0.57 s
    port = free_port()
    tunnels = {"l": {"host": "box", "listen": f"{port}", "target": f"127.0.0.1:{echo_server.port}"}}
    core, _, events = make_core(
        tmp_path, {"box": sshd_host(sshd)}, tunnels, reconnect_max_delay=cap
    )
    async with core:
        await core.start_tunnel("l")
        await _until_works(port, 10)
        # The loop is blocked in stop(): the loss is seen, and the first retry planned, after
        # `start`, so every planned delay falls inside the measured time.
        sshd.stop()
        me = psutil.Process()
        cpu_before, start = sum(me.cpu_times()[:2]), time.monotonic()
        retries = 10
        await wait_for(
            lambda: len(of_type(events, HostReconnectScheduled)) >= retries,
            30,
            what=f"{retries} planned retries",
        )
        elapsed = time.monotonic() - start
        cpu = sum(me.cpu_times()[:2]) - cpu_before
        delays = [e.delay for e in of_type(events, HostReconnectScheduled)][:retries]
        assert all(d > 0 for d in delays), delays
        assert delays[-1] > delays[0] and max(delays) <= cap, delays  # grows, capped
        assert max(delays) >= cap * 0.5, delays  # reached the cap (jitter is 0.5-1 x)
        # Each retry waited the delay it announced: not a tight loop (timer slack allowed).
        assert elapsed >= sum(delays[:-1]) - 0.01 * retries, (elapsed, delays)
        assert cpu < 0.25 * elapsed, f"{cpu:.2f} CPU seconds in {elapsed:.1f} s while down"
        assert core.tunnel_state("l").state == TunnelState.WAITING
        sshd.start()
        await _until_works(port, 12)
    assert of_type(events, HostConnected)[-1].host == "box"


RECONNECTS = 50  # each is a real SSH handshake (~0.1 s); a leak of one thing per cycle shows


async def test_many_reconnects_leave_nothing_behind(
    sshd, tcp_proxy, echo_server, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(sshcore.session, "BACKOFF_BASE", 0.02)  # the cycles, not the waiting
    proxy, port, core, events = _setup(sshd, tcp_proxy, echo_server, tmp_path)
    rport = free_port()
    core.config.add_tunnel(
        type(core.config.tunnels["l"])(
            "r",
            "box",
            "remote",
            core.config.tunnels["l"].listen.__class__("127.0.0.1", rport),
            core.config.tunnels["l"].target,
        )
    )
    me = psutil.Process()
    async with core:
        await core.start_tunnel("l")
        await core.start_tunnel("r")
        await _until_works(port, 10)
        session = core.session("box")
        await wait_for(lambda: core.tunnel_state("r").state == TunnelState.UP, 10)
        tasks_before = len(asyncio.all_tasks())
        fds_before = me.num_fds()
        for cycle in range(RECONNECTS):
            lost = len(of_type(events, HostLost))
            proxy.cut()
            await wait_for(lambda n=lost: len(of_type(events, HostLost)) > n, 5, interval=0.005)
            proxy.restore()
            await wait_for(
                lambda: (
                    session.state == HostState.CONNECTED
                    and core.tunnel_state("r").state == TunnelState.UP
                ),
                10,
                interval=0.005,
                what=f"reconnect {cycle}",
            )
        assert await _works(port)
        assert await _works(rport)
        conn = session.conn
        assert conn is not None
        # The last round trips' channels close a moment after their sockets do.
        await wait_for(
            lambda: len(conn._channels) == 0,  # type: ignore[attr-defined]
            5,
            what="no channels left open",
        )
        assert len(conn._remote_listeners) == 1  # type: ignore[attr-defined]
        assert core.tunnel_state("l").connections == 0
        assert len(asyncio.all_tasks()) <= tasks_before + 1
        assert me.num_fds() <= fds_before + 5
        assert len(of_type(events, HostLost)) >= RECONNECTS


async def test_connect_attempt_is_bounded_by_connect_timeout(sshd, tcp_proxy, tmp_path) -> None:
    proxy = tcp_proxy("127.0.0.1", sshd.port)
    proxy.blackhole()  # TCP connects, then silence: no banner, no key exchange
    timeout = 0.6
    core, _, _ = make_core(
        tmp_path, {"box": sshd_host(sshd, port=proxy.port)}, connect_timeout=timeout
    )
    async with core:
        start = time.monotonic()
        with pytest.raises(sshcore.session.ConnectError, match="timed out"):
            await core.connect("box")
        took = time.monotonic() - start
    assert timeout - 0.1 <= took <= timeout + 2.5, f"gave up after {took:.1f} s"


async def test_closing_while_connecting_does_not_hang(sshd, tcp_proxy, tmp_path) -> None:
    proxy = tcp_proxy("127.0.0.1", sshd.port)
    proxy.blackhole()
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd, port=proxy.port)}, connect_timeout=60)
    connecting = asyncio.ensure_future(core.connect("box"))
    # Closing while the attempt hangs in the handshake: its TCP connection is open.
    await wait_for(lambda: proxy.connections >= 1, 5, what="the attempt to reach the server")
    await core.close()
    with pytest.raises(sshcore.session.ConnectError, match="disconnected"):
        await asyncio.wait_for(connecting, 5)


async def test_unreadable_known_hosts_fails_clearly(sshd, tmp_path) -> None:
    (tmp_path / "known_hosts").mkdir()  # a folder where the file should be
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)})
    async with core:
        with pytest.raises(sshcore.session.ConnectError, match="cannot read"):
            await asyncio.wait_for(core.connect("box"), 10)
        assert core.host_state("box").state == HostState.FAILED
