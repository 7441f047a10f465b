"""A crash is loud (issue 17): if the dashboard ever ends on an exception no guard caught,
the process exits non-zero, its tunnels are stopped, the traceback is in the log file and
stderr has one line naming that file (not a Rich traceback, and not exit status 0)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from coreutil import isolate_home, sshd_host, wait_for
from dashboard_util import make_app
from harness.net import free_port

from tui import launch


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def test_a_crash_exits_70_stops_the_tunnels_and_names_the_log_file(
    tmp_path: Path, sshd: Any, echo_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    known = tmp_path / "known_hosts"
    sshd.write_known_hosts(known)
    port = free_port()
    tunnel = {
        "host": "box",
        "kind": "local",
        "listen": f"127.0.0.1:{port}",
        "target": f"127.0.0.1:{echo_server.port}",
        "autostart": True,
    }
    app = make_app(
        tmp_path, {"box": sshd_host(sshd)}, {"web": tunnel}, autostart=True, known_hosts=str(known)
    )
    run = asyncio.create_task(launch._run(app, headless=True))
    await wait_for(lambda: app.core is not None and _listening(port), 15, what="the tunnel")

    def bug() -> None:
        raise ZeroDivisionError("a bug no guard caught")

    app.call_later(bug)
    code = await asyncio.wait_for(run, 30)

    assert code == launch.CRASHED != 0
    assert not _listening(port), "the tunnel's listener outlived the dashboard"
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    log = tmp_path / "devtui.log"
    assert len(lines) == 1, err
    assert "ZeroDivisionError: a bug no guard caught" in lines[0]
    assert f"the traceback is in {log}" in lines[0]
    text = log.read_text()
    assert "Traceback" in text and "def bug" in text and "ZeroDivisionError" in text


async def test_a_normal_quit_is_quiet_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(tmp_path, {"box": {"hostname": "10.0.0.1"}})
    run = asyncio.create_task(launch._run(app, headless=True))
    await wait_for(lambda: app.core is not None, 15, what="the core")
    await asyncio.sleep(0.5)  # the first work (reading ~/.ssh) under way
    app.exit(0)
    assert await asyncio.wait_for(run, 30) == 0
    assert capsys.readouterr().err == ""
