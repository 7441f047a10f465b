"""Seeing the remote's listening ports (and new ones as they appear), then forwarding one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from cliutil import Done, run_cli
from coreutil import isolate_home, make_core, of_type, sshd_host, wait_for, write_config

from sshcore.discovery import ListeningPort, new_ports, parse_proc_net_tcp, parse_ss
from sshcore.events import RemotePortClosed, RemotePortOpened

PROC_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1EB4 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0100007F:1EB4 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1
"""
PROC_TCP6 = """\
  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 0
   1: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 0
   2: 0000000000000000FFFF00000100007F:2328 00000000000000000000000000000000:0000 0A 0
"""


def test_proc_net_tcp_parsing() -> None:
    ports = parse_proc_net_tcp(PROC_TCP + PROC_TCP6)
    assert ports == [
        ListeningPort(22, "0.0.0.0"),
        ListeningPort(22, "::"),
        ListeningPort(7860, "127.0.0.1"),  # the Gradio demo; the ESTABLISHED line is not listed
        ListeningPort(8080, "::1"),
        ListeningPort(9000, "127.0.0.1"),  # v4-mapped IPv6 shown as IPv4
    ]
    assert ListeningPort(7860, "127.0.0.1").loopback_only
    assert not ListeningPort(22, "0.0.0.0").loopback_only


def test_ss_output_parsing() -> None:
    text = (
        "LISTEN 0 4096 127.0.0.1:7860 0.0.0.0:*\n"
        "LISTEN 0 128 [::]:22 [::]:*\n"
        "LISTEN 0 128 *:8000 *:*\n"
        "ESTAB 0 0 127.0.0.1:22 127.0.0.1:5000\n"
    )
    assert parse_ss(text) == [
        ListeningPort(22, "::"),
        ListeningPort(7860, "127.0.0.1"),
        ListeningPort(8000, "0.0.0.0"),
    ]


def test_new_ports_counts_a_port_once() -> None:
    before = [ListeningPort(22, "0.0.0.0")]
    now = [
        ListeningPort(22, "0.0.0.0"),
        ListeningPort(7860, "127.0.0.1"),
        ListeningPort(7860, "::1"),
    ]
    assert new_ports(before, now) == [ListeningPort(7860, "127.0.0.1")]


async def _listen() -> asyncio.AbstractServer:
    return await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)


async def test_remote_ports_listed_and_new_ones_announced(
    sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_home(monkeypatch, tmp_path)
    # The "remote" is this machine: a port opened here is a port opened there.
    app = await _listen()
    port = app.sockets[0].getsockname()[1]
    core, _, events = make_core(tmp_path, {"box": sshd_host(sshd)})
    async with core:
        ports = await core.listening_ports("box")
        assert ListeningPort(port, "127.0.0.1") in ports
        assert any(p.port == sshd.port for p in ports)
        # Count the watcher's looks (the real call, counted): a port opened before its first
        # look is part of the starting picture, not "new".
        looks = 0
        look = core.listening_ports

        async def counted(name: str) -> list[ListeningPort]:
            nonlocal looks
            ports = await look(name)
            looks += 1
            return ports

        monkeypatch.setattr(core, "listening_ports", counted)
        core.watch_ports("box", interval=0.2)
        await wait_for(lambda: looks >= 1, 10, what="the watcher's first look")
        demo = await _listen()  # e.g. `python app.py` starts Gradio
        demo_port = demo.sockets[0].getsockname()[1]
        await wait_for(
            lambda: any(e.port == demo_port for e in of_type(events, RemotePortOpened)), 10
        )
        demo.close()
        await demo.wait_closed()
        await wait_for(
            lambda: any(e.port == demo_port for e in of_type(events, RemotePortClosed)), 10
        )
    app.close()
    assert all(e.port != port for e in of_type(events, RemotePortOpened))  # not "new"


def test_cli_ports_and_tunnels_add(sshd, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", {"box": sshd_host(sshd)})
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    env = {"HOME": str(home), "DEVTUI_CONFIG": str(config), "PATH": "/usr/bin:/bin"}

    def devtui(*argv: str) -> Done:
        return run_cli(*argv, env=env)  # in-process (tests/cliutil.py)

    listed = devtui("ports", "box", "--json", "--accept-new")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    ssh_row = next(r for r in rows if r["port"] == sshd.port)
    assert ssh_row == {
        "port": sshd.port,
        "address": "127.0.0.1",
        "loopback_only": True,
        "tunnel": None,
        "process": "sshd",  # the test runs as the sshd's user: its fds are visible
        "pid": ssh_row["pid"],
    }
    assert isinstance(ssh_row["pid"], int)
    added = devtui("tunnels", "add", "box", "-L", f"{sshd.port}")
    assert added.returncode == 2 and "-L" in added.stderr  # a bare port is not a -L spec
    added = devtui("tunnels", "add", "box", "-L", f"18022:127.0.0.1:{sshd.port}", "--autostart")
    assert added.returncode == 0, added.stderr
    assert "Added tunnel box-18022: local 127.0.0.1:18022" in added.stdout
    listed = devtui("ports", "box", "--accept-new")
    assert f"{sshd.port}" in listed.stdout and "box-18022" in listed.stdout
    tunnels = json.loads(devtui("tunnels", "list", "--json").stdout)
    assert [(t["name"], t["autostart"]) for t in tunnels] == [("box-18022", True)]
    assert devtui("tunnels", "remove", "box-18022").returncode == 0
    assert json.loads(devtui("tunnels", "list", "--json").stdout) == []
