"""A hostile server cannot exhaust devtui's memory or hang its commands.

Each test points a real Core at an in-process asyncssh server on 127.0.0.1 that floods,
never exits, or sends nonsense for devtui's fixed commands (port tables, the POSIX probe,
the ping, the authorized_keys read). Limits and timeouts are lowered so the tests are quick;
the server's own behaviour is bounded, so a regression fails instead of hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from coreutil import isolate_home, make_core, of_type, wait_for
from harness.hostile import Behaviour, Flood, Hang, HostileServer, Reply

from sshcore import core as core_module
from sshcore import discovery, keys
from sshcore.core import Core
from sshcore.discovery import ListeningPort
from sshcore.errors import DevtuiError
from sshcore.events import Event, PortWatchFailed, RemotePortOpened
from sshcore.keys import KeyInstallError

PROC = "cat /proc/net/tcp"
SS = "ss -ltnH"
GUARD = 60  # seconds: a test whose fix is missing fails here instead of hanging


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[HostileServer]:
    server = HostileServer({}, sftp=True)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def core_for(
    server: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Core, list[Event]]:
    isolate_home(monkeypatch, tmp_path)
    key = server.client_key("tester")
    (tmp_path / "known_hosts").write_text(server.known_hosts_line() + "\n")
    host: dict[str, Any] = {
        "hostname": "127.0.0.1",
        "port": server.port,
        "user": "tester",
        "identity_file": str(key),
    }
    core, _, events = make_core(tmp_path, {"box": host})
    return core, events


def answer(server: HostileServer, **replies: Behaviour) -> None:
    server.replies = {
        PROC if k == "proc" else SS if k == "ss" else k: v for k, v in replies.items()
    }


# -- memory ------------------------------------------------------------------------------------
async def test_an_endless_port_table_is_cut_off_with_one_clear_error(
    hostile: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discovery, "PORT_TABLE_LIMIT", 1024 * 1024)
    flood = Flood(limit=48 * 1024 * 1024)
    answer(hostile, proc=flood)
    core, _ = core_for(hostile, tmp_path, monkeypatch)
    async with core:
        with pytest.raises(DevtuiError, match="more than 1 MiB"):
            await asyncio.wait_for(core.listening_ports("box"), GUARD)
        # devtui stopped reading and closed the channel: the server could not send it all.
        await wait_for(lambda: flood.cut_off, 10, what="the flood to be cut off")
        assert flood.sent < 8 * 1024 * 1024
        # The shared connection is still good for everything else.
        assert await core.ping("box") >= 0


async def test_an_endless_authorized_keys_over_the_shell_path_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flood = Flood(head=b"dir file\n", chunk=b"ssh-ed25519 AAAA junk\n" * 3000, limit=64 << 20)
    async with HostileServer({"authorized_keys": flood}, sftp=False) as server:
        core, _ = core_for(server, tmp_path, monkeypatch)
        async with core:
            conn = await core.connection("box")
            line = (tmp_path / "home" / "k.pub").write_text("")
            del line
            public = keys.parse_public_line(server.known_hosts_line().split(" ", 1)[1]).line
            with pytest.raises(KeyInstallError, match="larger than 1 MiB"):
                await asyncio.wait_for(keys.install_public_key(conn, public), GUARD)
            await wait_for(lambda: flood.cut_off, 10, what="the flood to be cut off")
            assert flood.sent < 8 * 1024 * 1024
            # Nothing was appended: the install stopped at the read.
            assert not any("cat >>" in c for c in server.commands)


async def test_a_huge_authorized_keys_over_sftp_is_not_read_whole_nor_changed(
    hostile: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ssh = hostile.home / ".ssh"
    ssh.mkdir(mode=0o700)
    big = b"# padding\n" * (2 * 1024 * 1024 // 10)
    (ssh / "authorized_keys").write_bytes(big)
    core, _ = core_for(hostile, tmp_path, monkeypatch)
    async with core:
        conn = await core.connection("box")
        public = keys.parse_public_line(hostile.known_hosts_line().split(" ", 1)[1]).line
        with pytest.raises(KeyInstallError, match="larger than 1 MiB"):
            await asyncio.wait_for(keys.install_public_key(conn, public), GUARD)
    assert (ssh / "authorized_keys").read_bytes() == big


async def test_ports_on_a_host_that_refuses_commands_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with HostileServer({}, sessions=False) as server:
        core, _ = core_for(server, tmp_path, monkeypatch)
        async with core:
            with pytest.raises(DevtuiError, match="the host refused the port listing"):
                await asyncio.wait_for(core.listening_ports("box"), GUARD)


# -- hangs -------------------------------------------------------------------------------------
async def test_hosts_test_ping_gives_up_on_a_command_that_never_ends(
    hostile: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_module, "PING_TIMEOUT", 0.5)
    hang = Hang(seconds=GUARD)
    answer(hostile, **{"exit 0": hang})
    core, _ = core_for(hostile, tmp_path, monkeypatch)
    async with core:
        with pytest.raises(DevtuiError, match=r"no answer within 0\.5 s"):
            await asyncio.wait_for(core.ping("box"), GUARD / 2)
    assert hang.started == 1


async def test_run_gives_up_on_a_posix_probe_that_never_ends(
    hostile: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_module, "PROBE_TIMEOUT", 0.5)
    answer(hostile, **{"echo devtui-posix": Hang(seconds=GUARD)})
    core, _ = core_for(hostile, tmp_path, monkeypatch)
    async with core:
        with pytest.raises(DevtuiError, match=r"POSIX sh check: no answer within 0\.5 s"):
            await asyncio.wait_for(core.run("box", ["true"]), GUARD / 2)


async def test_run_refuses_a_posix_probe_that_floods(
    hostile: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flood = Flood(limit=48 << 20)
    answer(hostile, **{"echo devtui-posix": flood})
    core, _ = core_for(hostile, tmp_path, monkeypatch)
    async with core:
        with pytest.raises(DevtuiError, match="POSIX sh check: the host sent more than 4 KiB"):
            await asyncio.wait_for(core.run("box", ["true"]), GUARD)
    assert flood.sent < 8 << 20


async def test_ports_gives_up_on_a_table_that_never_ends(
    hostile: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discovery, "PORTS_TIMEOUT", 0.5)
    answer(hostile, proc=Hang(head=b"  sl  local_address\n", seconds=GUARD))
    core, _ = core_for(hostile, tmp_path, monkeypatch)
    async with core:
        with pytest.raises(DevtuiError, match=r"no answer within 0\.5 s"):
            await asyncio.wait_for(core.listening_ports("box"), GUARD / 2)


async def test_key_install_gives_up_on_a_shell_that_never_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys, "INSTALL_TIMEOUT", 0.5)
    async with HostileServer({"authorized_keys": Hang(seconds=GUARD)}, sftp=False) as server:
        core, _ = core_for(server, tmp_path, monkeypatch)
        async with core:
            conn = await core.connection("box")
            public = keys.parse_public_line(server.known_hosts_line().split(" ", 1)[1]).line
            with pytest.raises(KeyInstallError, match=r"no answer within 0\.5 s"):
                await asyncio.wait_for(keys.install_public_key(conn, public), GUARD / 2)


# -- nonsense ----------------------------------------------------------------------------------
HUGE_PORT = b"LISTEN 0 128 0.0.0.0:" + b"9" * 5000 + b" 0.0.0.0:*\n"
GOOD = b"LISTEN 0 128 127.0.0.1:7860 0.0.0.0:*\n"


async def test_a_port_of_5000_digits_is_a_skipped_line(
    hostile: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer(hostile, proc=Reply(b"NO-PROC\n"), ss=Reply(HUGE_PORT + GOOD))
    core, _ = core_for(hostile, tmp_path, monkeypatch)
    async with core:
        ports = await asyncio.wait_for(core.listening_ports("box"), GUARD)
    assert ports == [ListeningPort(7860, "127.0.0.1")]


def test_out_of_range_ports_are_skipped() -> None:
    ss = b"LISTEN 0 128 0.0.0.0:70000 0.0.0.0:*\nLISTEN 0 128 0.0.0.0:0 0.0.0.0:*\n" + GOOD
    assert discovery.parse_ss(ss.decode()) == [ListeningPort(7860, "127.0.0.1")]
    proc = (
        "  sl  local_address rem_address   st\n"
        "   0: 0100007F:FFFFFFFF 00000000:0000 0A\n"  # port 4294967295: not a port
        "   1: 0100007F:1EB4 00000000:0000 0A\n"
    )
    assert discovery.parse_proc_net_tcp(proc) == [ListeningPort(7860, "127.0.0.1")]


async def test_port_watching_survives_nonsense_and_floods_and_says_so_once(
    hostile: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discovery, "PORT_TABLE_LIMIT", 256 * 1024)
    answer(hostile, proc=Reply(b"NO-PROC\n"), ss=Reply(HUGE_PORT + GOOD))
    core, events = core_for(hostile, tmp_path, monkeypatch)
    async with core:
        core.watch_ports("box", interval=0.05)
        await wait_for(lambda: sum(SS in c for c in hostile.commands) >= 2, 20, what="2 rounds")
        # Now the host floods: the watcher says so once, however many rounds fail.
        answer(hostile, proc=Flood(limit=4 << 20), ss=Reply(HUGE_PORT + GOOD))
        await wait_for(lambda: sum(PROC in c for c in hostile.commands) >= 6, 20, what="rounds")
        assert len(of_type(events, PortWatchFailed)) == 1
        assert "more than 256 KiB" in of_type(events, PortWatchFailed)[0].reason
        # ...and goes on watching: a new port on a sane table is announced.
        answer(
            hostile,
            proc=Reply(b"NO-PROC\n"),
            ss=Reply(HUGE_PORT + GOOD + GOOD.replace(b"7860", b"7861")),
        )
        await wait_for(
            lambda: any(e.port == 7861 for e in of_type(events, RemotePortOpened)),
            20,
            what="port 7861 to be announced",
        )
        assert not core._watchers["box"].done()
        assert len(of_type(events, PortWatchFailed)) == 1
