"""Offers of new remote ports, against a real sshd: a program that starts listening "on the
remote" (this machine, behind the sshd) is seen with its name, forwarded in one call (or by
itself), shown as "remote closed" when it stops, and followed when it moves (7860 -> 7861)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import tomllib
from cliutil import run_cli
from coreutil import isolate_home, make_core, of_type, sshd_host, wait_for, write_config
from harness.asyncssh_server import AsyncsshServer
from remote_program import ONE_AT_A_TIME, RemoteProgram, echo, free_neighbour_ports

from sshcore.config import Config
from sshcore.core import Core
from sshcore.discovery import ListeningPort, ignored, parse_proc_net_tcp, parse_ss
from sshcore.errors import ConfigError, DevtuiError
from sshcore.events import (
    DiscoveryUnsupported,
    PortForwarded,
    RemotePortClosed,
    RemotePortOpened,
    TargetRefused,
    TunnelRemoteClosed,
    TunnelRemoteReturned,
    TunnelTargetMoved,
)
from sshcore.tunnels import TunnelState

POLL = 0.2  # discover_interval of these tests
pytestmark = ONE_AT_A_TIME  # this machine's new listeners are what these tests watch


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


def _looks(core: Core, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A counter of the watcher's finished looks (the real call, counted)."""
    count = [0]
    look = core.listening_ports

    async def counted(name: str) -> list[ListeningPort]:
        ports = await look(name)
        count[0] += 1
        return ports

    monkeypatch.setattr(core, "listening_ports", counted)
    return count


async def _connected(core: Core, looks: list[int]) -> None:
    await core.connect("box")
    await wait_for(lambda: looks[0] >= 1, 20, what="the first look")


# -- parsing and rules -------------------------------------------------------------------------
def test_process_and_pid_from_proc_fd_matches() -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode\n"
        "   0: 0100007F:1EB4 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000 "
        "0 4242 1\n"
        "   1: 0100007F:1EB5 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000 "
        "0 4343 1\n"
    )
    pids = "@PID 900 4242 python3\n@PID 901 4242 python3\n@PID 77 4343 \x1b]0;owned\x07evil\n"
    ports = parse_proc_net_tcp(table + pids)
    assert [(p.port, p.process, p.pid) for p in ports] == [
        (7860, "python3", 900),  # a forking server: the parent (lowest pid)
        (7861, "?]0;owned?evil", 77),  # a name cannot carry terminal escapes
    ]
    assert parse_proc_net_tcp(table)[0].process is None  # no @PID lines: not visible


def test_process_and_pid_from_ss_and_netstat() -> None:
    ss = 'LISTEN 0 4096 127.0.0.1:7860 0.0.0.0:* users:(("python3",pid=1234,fd=7))\n'
    netstat = "tcp 0 0 127.0.0.1:8888 0.0.0.0:* LISTEN 4321/jupyter-lab\n"
    ports = parse_ss(ss + netstat + "LISTEN 0 128 [::]:22 [::]:*\n")
    assert [(p.port, p.process, p.pid) for p in ports] == [
        (22, None, None),
        (7860, "python3", 1234),
        (8888, "jupyter-lab", 4321),
    ]


def test_default_ignore_rule_and_a_hosts_own_list() -> None:
    assert ignored(22, None) and ignored(631, None) and ignored(25, None)
    assert not any(ignored(p, None) for p in (80, 443, 8080, 7860, 8888, 3000))
    assert ignored(7860, (7860,)) and not ignored(22, (7860,))  # the user's list replaces it


def test_settings_and_host_keys_are_validated_and_saved(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "c.toml",
        {
            "box": {
                "hostname": "h",
                "auto_forward": "always",
                "ignore_ports": [22, 5432],
                "log_sources": ["/var/log/app.log", "cmd:journalctl -f -u app"],
            }
        },
        discover_interval=0,
    )
    config = Config.load(path)
    host = config.hosts["box"]
    assert config.settings.discover_interval == 0
    assert host.auto_forward == "always"
    assert host.ignore_ports == (22, 5432)
    assert host.log_sources == ("/var/log/app.log", "cmd:journalctl -f -u app")
    config.update_host("box", _replace(host, log_sources=("/srv/x.log",), auto_forward="ask"))
    saved = tomllib.loads(path.read_text())["hosts"]["box"]
    assert saved["log_sources"] == ["/srv/x.log"] and "auto_forward" not in saved
    assert Config.load(path).hosts["box"].ignore_ports == (22, 5432)
    for bad, words in (
        ({"auto_forward": "yes"}, '"ask", "always" or "never"'),
        ({"ignore_ports": [70000]}, "is not a port"),
        ({"log_sources": ["app.log"]}, "absolute path"),
        ({"log_sources": ["cmd:  "]}, "no command"),
    ):
        write_config(path, {"box": {"hostname": "h", **bad}})
        with pytest.raises(ConfigError, match=words):
            Config.load(path)
    write_config(path, {}, discover_interval=-1)
    with pytest.raises(ConfigError, match="discover_interval"):
        Config.load(path)


def _replace(spec: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(spec, **changes)


# -- offers ------------------------------------------------------------------------------------
async def test_a_new_listener_is_offered_within_one_poll_with_its_program(
    sshd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core, _, events = make_core(tmp_path, {"box": sshd_host(sshd)}, discover_interval=POLL)
    async with core:
        looks = _looks(core, monkeypatch)
        await _connected(core, looks)
        assert any(p.port == sshd.port for p in core.discovered_ports("box"))
        with RemoteProgram("gradio") as app:
            started = looks[0]
            # Within one poll: by the end of the first look that began after it listened.
            await wait_for(lambda: looks[0] >= started + 2, 20, what="two more looks")
            opened = [e for e in of_type(events, RemotePortOpened) if e.port == app.port]
            assert len(opened) == 1
            assert (opened[0].process, opened[0].pid) == ("gradio", app.pid)
            assert opened[0].message() == f"{app.port} is listening on box (gradio): f to forward"
            offer = next(p for p in core.offers("box") if p.port == app.port)
            assert (offer.process, offer.pid) == ("gradio", app.pid)
            # Forward it: the same port is busy here (the "remote" is this machine), so the
            # next free one, and the note says who holds it.
            spec, note = await core.forward_port("box", app.port)
            assert spec.discovered and spec.listen.address == "127.0.0.1"
            assert spec.listen.port != app.port
            assert (
                note
                == f"{app.port} is busy (held by gradio (pid {app.pid})): forwarded to {spec.listen.port}"
            )
            assert core.tunnel_state(spec.name).state == TunnelState.UP
            assert await asyncio.to_thread(echo, spec.listen.port, b"ping") == b"ping"
            assert app.port not in [p.port for p in core.offers("box")]  # forwarded now
            # Not saved until asked; then it is an ordinary tunnel of the config.
            assert spec.name not in Config.load(core.config.path).tunnels
            assert core.tunnel_specs()[spec.name].discovered
            await core.save_tunnel(spec.name)
            saved = Config.load(core.config.path).tunnels[spec.name]
            assert (saved.listen, saved.target) == (spec.listen, spec.target)
            assert not core.tunnel_specs()[spec.name].discovered
            assert core.tunnel_state(spec.name).state == TunnelState.UP  # not restarted
        await wait_for(
            lambda: any(e.port == app.port for e in of_type(events, RemotePortClosed)), 20
        )


async def test_forward_port_of_an_unknown_host_or_a_bad_port_is_one_clear_error(
    sshd: Any, tmp_path: Path
) -> None:
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)}, discover_interval=0)
    async with core:
        with pytest.raises(DevtuiError, match="no host named 'nope'"):
            await core.forward_port("nope", 7860)
        with pytest.raises(DevtuiError, match="outside 1-65535"):
            await core.forward_port("box", 70000)
        with pytest.raises(DevtuiError, match="no tunnel named"):
            await core.save_tunnel("box-1")


async def test_auto_forward_always_forwards_new_ports_without_asking(
    sshd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = sshd_host(sshd, auto_forward="always")
    core, _, events = make_core(tmp_path, {"box": host}, discover_interval=POLL)
    async with core:
        looks = _looks(core, monkeypatch)
        await _connected(core, looks)
        assert not of_type(events, PortForwarded)  # what listened before is no news
        with RemoteProgram("gradio") as app:

            def ours() -> list[PortForwarded]:
                return [e for e in of_type(events, PortForwarded) if e.port == app.port]

            await wait_for(lambda: bool(ours()), 20, what="a forward")
            forwarded = ours()[0]
            local = forwarded.local_port
            assert await asyncio.to_thread(echo, local, b"auto") == b"auto"
            assert core.tunnel_specs()[forwarded.tunnel].discovered
            # Our own tunnel's listener is a port on this machine too: never forwarded in
            # turn (other programs on this shared test machine may be, as they should).
            now = looks[0]
            await wait_for(lambda: looks[0] >= now + 3, 20, what="three more looks")
            assert len(ours()) == 1
            # Forwarding our own listener shows as a forward of a port another of our tunnels
            # listens on. (Another program's short-lived port, forwarded and then gone, may
            # leave its forward listening on the same number: that is not one.)
            specs = core.tunnel_specs()
            looped = [
                e
                for e in of_type(events, PortForwarded)
                if any(t.listen.port == e.port for n, t in specs.items() if n != e.tunnel)
            ]
            assert not looped, looped


async def test_auto_forward_never_and_ignored_ports_are_not_offered(
    sshd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with RemoteProgram("gradio") as ignored_app:
        host = sshd_host(sshd, auto_forward="never", ignore_ports=[ignored_app.port])
        core, _, events = make_core(tmp_path, {"box": host}, discover_interval=POLL)
        async with core:
            looks = _looks(core, monkeypatch)
            await _connected(core, looks)
            assert ignored_app.port not in [p.port for p in core.offers("box")]
            assert ignored_app.port in [p.port for p in core.discovered_ports("box")]
            with RemoteProgram("gradio") as app:
                now = looks[0]
                await wait_for(lambda: looks[0] >= now + 2, 20, what="two more looks")
                assert app.port in [p.port for p in core.offers("box")]
                assert not of_type(events, PortForwarded)


async def test_a_stopped_listener_is_remote_closed_and_comes_back(
    sshd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core, _, events = make_core(tmp_path, {"box": sshd_host(sshd)}, discover_interval=POLL)
    async with core:
        looks = _looks(core, monkeypatch)
        await _connected(core, looks)
        app = RemoteProgram("gradio")
        try:
            await wait_for(lambda: app.port in [p.port for p in core.offers("box")], 20)
            spec, _ = await core.forward_port("box", app.port)
            app.stop()
            await wait_for(lambda: bool(of_type(events, TunnelRemoteClosed)), 20, what="closed")
            closed = of_type(events, TunnelRemoteClosed)[0]
            assert (closed.tunnel, closed.port) == (spec.name, app.port)
            assert "remote closed" in closed.message() and closed.level == "info"
            assert core.remote_closed(spec.name)
            # Not an error: the tunnel still listens, ready for the program's return.
            assert core.tunnel_state(spec.name).state == TunnelState.UP
            app = RemoteProgram("gradio", port=app.port)
            await wait_for(lambda: bool(of_type(events, TunnelRemoteReturned)), 20)
            assert not core.remote_closed(spec.name)
            assert await asyncio.to_thread(echo, spec.listen.port, b"back") == b"back"
        finally:
            app.stop()


async def test_gradio_moved_to_the_next_port_is_noticed_and_retargeted(
    sshd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = free_neighbour_ports()
    app = RemoteProgram("gradio", port=first)
    other = RemoteProgram("jupyter")
    tunnels = {
        "gradio": {"host": "box", "listen": "127.0.0.1:0", "target": f"127.0.0.1:{first}"},
        "notebook": {"host": "box", "listen": "127.0.0.1:0", "target": f"127.0.0.1:{other.port}"},
    }
    # Port 0 cannot be a saved listen port: pick free ones.
    tunnels["gradio"]["listen"] = f"127.0.0.1:{_free()}"
    tunnels["notebook"]["listen"] = f"127.0.0.1:{_free()}"
    core, _, events = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels, discover_interval=POLL)
    try:
        async with core:
            looks = _looks(core, monkeypatch)
            await _connected(core, looks)
            await core.start_tunnel("gradio")
            await core.start_tunnel("notebook")
            local = core.config.tunnels["gradio"].listen.port
            assert await asyncio.to_thread(echo, local, b"v1") == b"v1"
            # A connection through the other tunnel stays open across the retarget.
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", core.config.tunnels["notebook"].listen.port
            )
            writer.write(b"before ")
            assert await reader.readexactly(7) == b"before "
            # Gradio restarts and lands on the next port.
            app.stop()
            app = RemoteProgram("gradio", port=second)
            # The browser reloads: refused (nothing at 7860), then the hint.
            assert await asyncio.to_thread(echo, local, b"v2") == b""
            await wait_for(lambda: bool(of_type(events, TargetRefused)), 20, what="refused")
            await wait_for(lambda: bool(of_type(events, TunnelTargetMoved)), 20, what="the hint")
            moved = of_type(events, TunnelTargetMoved)[0]
            assert (moved.tunnel, moved.old_port, moved.new_port, moved.process) == (
                "gradio",
                first,
                second,
                "gradio",
            )
            assert f"gradio moved to {second}?" in moved.message()
            assert core.moved_target("gradio") == second
            assert core.moved_target("notebook") is None
            status = await core.retarget_tunnel("gradio", second)
            assert status.state == TunnelState.UP
            assert Config.load(core.config.path).tunnels["gradio"].target.port == second
            assert core.moved_target("gradio") is None
            assert await asyncio.to_thread(echo, local, b"v2") == b"v2"
            writer.write(b"after")
            assert await reader.readexactly(5) == b"after"  # the other tunnel never restarted
            writer.close()
    finally:
        app.stop()
        other.stop()


def _free() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- hosts that cannot be watched --------------------------------------------------------------
async def test_a_host_without_proc_or_ss_says_so_once(
    asyncssh_server: AsyncsshServer, tmp_path: Path
) -> None:
    key = asyncssh_server.client_key("tester")
    (tmp_path / "known_hosts").write_text(asyncssh_server.known_hosts_line() + "\n")
    host = {"hostname": "127.0.0.1", "port": asyncssh_server.port, "user": "tester"}
    host["identity_file"] = str(key)
    core, _, events = make_core(tmp_path, {"box": host}, discover_interval=0.05)
    commands: list[str] = []
    run = asyncssh_server._run

    async def recorded(process: Any, command: str) -> int:
        commands.append(command)
        return await run(process, command)

    asyncssh_server._run = recorded  # type: ignore[method-assign]
    async with core:
        await core.connect("box")
        await wait_for(lambda: bool(of_type(events, DiscoveryUnsupported)), 20)
        said = of_type(events, DiscoveryUnsupported)[0]
        assert "not supported on this host" in said.message()
        asked = len(commands)
        assert asked == 2  # the proc table, then ss: one look, then no more
        # A reconnect does not ask (nor say) again.
        asyncssh_server.drop_connections()
        await wait_for(lambda: asyncssh_server.total_connections >= 2, 20, what="reconnect")
        await core.ping("box")  # connected again (its watcher would have started by now)
        assert all(task.done() for task in core._watchers.values())
        assert len(of_type(events, DiscoveryUnsupported)) == 1
        assert len([c for c in commands if "/proc/net/tcp" in c]) == 1
        with pytest.raises(DevtuiError, match="not supported on this host"):
            await core.listening_ports("box")


# -- the command line --------------------------------------------------------------------------
def test_cli_ports_json_names_the_program(sshd: Any, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", {"box": sshd_host(sshd)})
    env = {"HOME": str(tmp_path / "home"), "DEVTUI_CONFIG": str(config), "PATH": "/usr/bin:/bin"}
    with RemoteProgram("gradio") as app:
        listed = run_cli("ports", "box", "--json", "--accept-new", env=env)  # in-process
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in json.loads(listed.stdout) if r["port"] == app.port)
    assert row == {
        "port": app.port,
        "address": "127.0.0.1",
        "loopback_only": True,
        "tunnel": None,
        "process": "gradio",
        "pid": app.pid,
    }


async def test_a_discovered_tunnel_is_removed_without_touching_the_config(
    sshd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)}, discover_interval=POLL)
    async with core:
        looks = _looks(core, monkeypatch)
        await _connected(core, looks)
        with RemoteProgram("gradio") as app:
            await wait_for(lambda: app.port in [p.port for p in core.offers("box")], 20)
            spec, _ = await core.forward_port("box", app.port)
            before = core.config.path.read_text()
            await core.remove_tunnel(spec.name)
            assert core.config.path.read_text() == before  # it never was in the file
            assert spec.name not in core.tunnel_specs()
            assert app.port in [p.port for p in core.offers("box")]  # offered again
            with pytest.raises(OSError):  # nothing listens there any more
                await asyncio.to_thread(echo, spec.listen.port)
            again, _ = await core.forward_port("box", app.port)
            assert await core.remove_host("box") == [again.name]
            assert core.tunnel_specs() == {}
    assert "tunnels" not in core.config.path.read_text()


async def test_our_own_remote_forward_is_not_offered_back(
    sshd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, echo_server: Any
) -> None:
    port = _free()
    tunnels = {
        "back": {
            "host": "box",
            "kind": "remote",
            "listen": f"127.0.0.1:{port}",
            "target": f"127.0.0.1:{echo_server.port}",
        }
    }
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)}, tunnels, discover_interval=POLL)
    async with core:
        looks = _looks(core, monkeypatch)
        await _connected(core, looks)
        await core.start_tunnel("back")
        await wait_for(lambda: core.tunnel_state("back").state == TunnelState.UP, 20)
        now = looks[0]
        await wait_for(lambda: looks[0] >= now + 2, 20, what="two more looks")
        assert port in [p.port for p in core.discovered_ports("box")]  # sshd listens there
        assert port not in [p.port for p in core.offers("box")]
