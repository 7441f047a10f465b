"""Waking from sleep: a connection whose flow vanished while devtui was not running is found
dead at once and reconnected, instead of after several keepalive intervals; a live one is kept.

The sleep is `devtui up` stopped with SIGSTOP (the process sees its clocks jump, as after a
suspend) while the test's proxy swallows the old TCP flow without a word.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from coreutil import isolate_home, make_core, of_type, sshd_host, wait_for, write_config
from harness.net import echo_roundtrip_sync, free_port, wait_port

from sshcore.events import HostConnected, HostLost, HostReconnectScheduled, Woke
from sshcore.session import HostState
from sshcore.wake import GAP, WakeWatch, slept_for

DEVTUI = [sys.executable, "-m", "tui"]
# Keepalive alone would need 3 x 30 s to notice the dead flow: only the wake check can be
# that quick here.
SLOW_KEEPALIVE = {"keepalive_interval": 30, "keepalive_count_max": 3}
ASLEEP = 6.0  # seconds devtui stays stopped (more than the wake gap)


def test_a_late_tick_is_a_sleep_and_a_busy_loop_is_not() -> None:
    assert slept_for(1.0, 1.05, 1.05) is None  # a loop late by 50 ms
    assert slept_for(1.0, 3.0, 3.0) is None  # a loaded machine, 2 s late: not a sleep
    assert slept_for(1.0, 61.0, 61.0) == pytest.approx(60.0)  # SIGSTOP: both clocks jump
    # Linux's monotonic clock stops in suspend; the wall clock does not.
    assert slept_for(1.0, 1.0, 61.0) == pytest.approx(60.0)
    assert slept_for(1.0, 1.0, -3600.0) is None  # the wall clock set back an hour
    assert slept_for(1.0, 1.0, 1.0 + GAP) == pytest.approx(GAP)


async def test_wake_watch_calls_back_once_per_jump() -> None:
    wall = [1000.0]
    woke: list[float] = []
    watch = WakeWatch(woke.append, tick=0.01, wall=lambda: wall[0])
    watch.start()
    try:
        await asyncio.sleep(0.1)
        assert woke == []
        wall[0] += 90  # the machine slept 90 s (the monotonic clock did not move)
        await wait_for(lambda: bool(woke), 2, what="the wake callback")
        await asyncio.sleep(0.1)
        assert woke == [pytest.approx(90, abs=0.5)]
    finally:
        await watch.stop()
    assert not watch.running


def _up(
    tmp_path: Path, sshd, proxy_port: int, target: int
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """`devtui up` on one tunnel through the proxy; its stderr goes to a file."""
    port = free_port()
    tunnels = {"web": {"host": "box", "listen": f"{port}", "target": f"127.0.0.1:{target}"}}
    host = sshd_host(sshd, port=proxy_port)
    config = write_config(tmp_path / "c.toml", {"box": host}, tunnels, **SLOW_KEEPALIVE)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env.update(HOME=str(home), DEVTUI_CONFIG=str(config), PYTHONUNBUFFERED="1")
    log = tmp_path / "up.err"
    with log.open("wb") as err:
        proc = subprocess.Popen([*DEVTUI, "up", "--accept-new"], env=env, stderr=err)
    wait_port("127.0.0.1", port, 20)
    _until_works(port, 20)
    return proc, port, log


def _works(port: int) -> bool:
    try:
        sent, got = echo_roundtrip_sync("127.0.0.1", port, 1000, timeout=1.0)
    except (OSError, TimeoutError, asyncio.TimeoutError):
        return False
    return sent == got


def _until_works(port: int, timeout: float) -> float:
    start = time.monotonic()
    while not _works(port):
        assert time.monotonic() - start < timeout, f"the tunnel did not carry data in {timeout} s"
        time.sleep(0.05)
    return time.monotonic() - start


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGCONT)  # a stopped process cannot take SIGTERM
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def test_after_a_sleep_a_silently_dead_link_is_replaced_at_once(
    sshd, tcp_proxy, echo_server, tmp_path
) -> None:
    proxy = tcp_proxy("127.0.0.1", sshd.port)
    proc, port, log = _up(tmp_path, sshd, proxy.port, echo_server.port)
    try:
        before = proxy.total_connections
        proc.send_signal(signal.SIGSTOP)
        # The laptop sleeps; its Wi-Fi changes: the old flow vanishes without a FIN or RST,
        # and a new connection gets through.
        proxy.blackhole()
        proxy.restore()
        time.sleep(ASLEEP)
        proc.send_signal(signal.SIGCONT)
        took = _until_works(port, 20)
    finally:
        _stop(proc)
    err = log.read_text()
    assert "asleep or paused: checking 1 connection" in err, err
    assert "no answer within" in err, err
    assert proxy.total_connections > before  # a new connection carries the data
    # Keepalive alone needs 90 s here; the wake check needs its timeout plus a reconnect.
    assert took <= 10, f"data again {took:.1f} s after waking\n{err}"


def test_after_a_sleep_a_live_link_is_kept(sshd, tcp_proxy, echo_server, tmp_path) -> None:
    proxy = tcp_proxy("127.0.0.1", sshd.port)
    proc, port, log = _up(tmp_path, sshd, proxy.port, echo_server.port)
    try:
        before = proxy.total_connections
        proc.send_signal(signal.SIGSTOP)
        time.sleep(ASLEEP)
        proc.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 10
        while "checking 1 connection" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        time.sleep(3)  # longer than the check's timeout: a wrong verdict would be in by now
        assert _works(port)
    finally:
        _stop(proc)
    err = log.read_text()
    assert "connection lost" not in err, err
    assert proxy.total_connections == before  # the same SSH connection, never replaced


@pytest.fixture
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


async def test_a_check_retries_a_host_waiting_out_its_backoff_at_once(
    _home, sshd, tcp_proxy, tmp_path
) -> None:
    proxy = tcp_proxy("127.0.0.1", sshd.port)
    host = sshd_host(sshd, port=proxy.port)
    core, _, events = make_core(tmp_path, {"box": host}, reconnect_max_delay=120)
    async with core:
        await core.connect("box")
        session = core.session("box")
        proxy.cut()
        await wait_for(lambda: bool(of_type(events, HostLost)), 10, what="the loss")
        session.attempts = 40  # a long outage: the next wait is near the 120 s cap
        await wait_for(
            lambda: any(e.delay > 30 for e in of_type(events, HostReconnectScheduled)),
            15,
            what="a long backoff",
        )
        proxy.restore()
        connected = len(of_type(events, HostConnected))
        checks = core.check_connections()
        assert len(checks) == 1
        await wait_for(lambda: len(of_type(events, HostConnected)) > connected, 5, what="the retry")
        assert session.state == HostState.CONNECTED
        assert not of_type(events, Woke)  # asked for, not woken
