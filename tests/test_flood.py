"""A flood of remote listeners (issue 17, item 4): a host whose port table grows to 20,000
listeners froze the dashboard (every new port an event, an offer recomputed per event, a
toast each) and, with auto_forward = "always", bound one local port per listener. Now a few
are announced and offered, one line says how many more, a few toasts at most, a few
auto-forwards per look, and the dashboard keeps taking keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from coreutil import isolate_home
from dashboard_util import make_app, ready, until
from harness.hostile import HostileServer, Reply

from sshcore import port_watch
from sshcore.events import PortsNotOffered, PortWatchStarted, RemotePortOpened

SS = "ss -ltnH"
FLOOD = 20_000


def _table(ports: range) -> bytes:
    return b"".join(b"LISTEN 0 128 127.0.0.1:%d 0.0.0.0:*\n" % p for p in ports)


@pytest.fixture
async def hostile() -> AsyncIterator[HostileServer]:
    server = HostileServer({}, sftp=False)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def _answer(server: HostileServer, table: bytes) -> None:
    server.replies = {"cat /proc/net/tcp": Reply(b"NO-PROC\n"), SS: Reply(table)}


@pytest.mark.parametrize("auto_forward", ["ask", "always"])
async def test_twenty_thousand_new_listeners_are_counted_not_offered_one_by_one(
    hostile: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, auto_forward: str
) -> None:
    isolate_home(monkeypatch, tmp_path)
    known = tmp_path / "known_hosts"
    known.write_text(hostile.known_hosts_line() + "\n")
    host: dict[str, Any] = {
        "hostname": "127.0.0.1",
        "port": hostile.port,
        "user": "tester",
        "identity_file": str(hostile.client_key("tester")),
        "auto_forward": auto_forward,
    }
    _answer(hostile, _table(range(40000, 40001)))
    app = make_app(tmp_path, {"box": host}, known_hosts=str(known), discover_interval=0.3)
    events: list[Any] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        assert app.core is not None
        app.core.subscribe(events.append)
        await pilot.press("1", "c")
        await until(
            pilot, lambda: any(isinstance(e, PortWatchStarted) for e in events), 20, "a look"
        )
        _answer(hostile, _table(range(10000, 10000 + FLOOD)))
        await until(
            pilot, lambda: any(isinstance(e, PortsNotOffered) for e in events), 30, "the flood"
        )
        await pilot.pause(1.0)  # a few more looks of the same table: nothing new
        announced = [e for e in events if isinstance(e, RemotePortOpened)]
        assert len(announced) <= port_watch.ANNOUNCED_PER_LOOK
        (flood,) = [e for e in events if isinstance(e, PortsNotOffered) and e.what == "offered"]
        assert flood.count == FLOOD - port_watch.ANNOUNCED_PER_LOOK
        assert len(app.offers()) <= port_watch.OFFERS_MAX
        assert len(app._notifications) <= 2 * app_toasts()
        forwarded = [n for n, t in app.core.tunnels.items() if t.spec.discovered]
        if auto_forward == "always":
            assert len(forwarded) == port_watch.AUTO_FORWARDS_PER_LOOK
            assert any(e.what == "forwarded by themselves" for e in events if hasattr(e, "what"))
        else:
            assert forwarded == []
        # The dashboard still takes keys and shows the count.
        await pilot.press("4")
        await until(pilot, lambda: app.logs_pane.log_view.has_focus, 5, "the Logs pane")
        text = "\n".join(line.text for line in app.logs_pane.log_view.lines)
        assert f"{FLOOD - port_watch.ANNOUNCED_PER_LOOK} more ports opened on box" in text


def app_toasts() -> int:
    from tui.app import TOASTS_PER_FLUSH

    return TOASTS_PER_FLUSH


def test_the_logs_pane_keeps_bytes_not_just_lines(tmp_path: Path) -> None:
    """A remote log of 1 MiB "lines" once kept 5,000 of them a source (5 GiB): now each
    line is cut for the view, and a source and all sources together are bounded in bytes."""
    import asyncio

    from tui.panes import logs_pane as logs

    app = make_app(tmp_path, {"box": {"hostname": "10.0.0.1"}})

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            pane = app.logs_pane
            big = "y" * (1 << 20)
            keys = [f"box:/var/log/{i}.log" for i in range(6)]
            for key in keys:
                pane.add_source(key)
                pane.add([logs.LogRecord(0.0, "info", big) for _ in range(400)], source=key)
            await pilot.pause()
            for key in keys:
                kept = pane.sources[key]
                assert kept.size <= logs.SOURCE_BYTES
                assert all(len(r.text) < logs.LINE_CHARS + 64 for r in kept)
                assert kept[-1].text.endswith(
                    f"({len(big) - logs.LINE_CHARS} more characters not shown)"
                )
            assert sum(s.size for s in pane.sources.values()) <= logs.TOTAL_BYTES

    asyncio.run(run())


def test_lines_waiting_while_a_shell_is_open_are_capped_and_counted() -> None:
    from tui.panes import logs_pane as logs

    pending = logs.PendingLines()
    for i in range(logs.PENDING_LINES + 3000):
        pending.add(logs.LogRecord(0.0, "info", f"line {i}"))
    taken = pending.take()
    assert len(taken) == logs.PENDING_LINES + 1
    assert taken[0].text.startswith("… 3000 lines not shown")
    assert taken[-1].text == f"line {logs.PENDING_LINES + 2999}"
    assert not pending and pending.take() == []
