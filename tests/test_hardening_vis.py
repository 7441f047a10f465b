"""What a server says reaches the terminal, the log and the dashboard escaped (as strnvis).

A hostile server on 127.0.0.1 puts terminal escapes in its version string, its disconnect
reason and a keyboard-interactive prompt; nothing devtui prints, logs or hands to a prompt
may contain a control character, and the prompt must say which host asks.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from coreutil import ScriptedPrompts, isolate_home, make_core, of_type, wait_for
from harness.hostile import HostileServer
from harness.net import free_port

from sshcore.events import Event, HostConnected, HostLost, TargetRefused
from sshcore.model import Endpoint, TunnelSpec
from sshcore.visible_text import visible

# Retitles the window, clears the screen, and draws a prompt of ours.
EVIL = "\x1b]0;pwned\x07\x1b[2J\rPassphrase for ~/.ssh/id_ed25519:"
GUARD = 60


def clean(text: str) -> bool:
    """No C0/C1 control characters, DEL or bidi overrides."""
    return not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or 0x202A <= ord(c) <= 0x202E for c in text)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("OpenSSH_9.6", "OpenSSH_9.6"),
        ("\x1b]0;x\x07", "\\033]0;x\\007"),
        ("a\x9b31mb", "a\\233" + "31mb"),  # C1 CSI: an escape on many terminals
        ("safe\u202eexe.txt", "safe\\u202eexe.txt"),  # right-to-left override
        ("line\nbreak\r", "line\\012break\\015"),
        ("tab\tstays, café 中文", "tab\tstays, café 中文"),
        ("del\x7f", "del\\177"),
    ],
)
def test_visible_escapes_what_a_terminal_would_obey(raw: str, shown: str) -> None:
    assert visible(raw) == shown


def test_visible_can_keep_line_feeds_for_multi_line_text() -> None:
    assert visible("one\ntwo\x1b", newlines=True) == "one\ntwo\\033"


def _core(server: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **extra: Any):
    isolate_home(monkeypatch, tmp_path)
    (tmp_path / "known_hosts").write_text(server.known_hosts_line() + "\n")
    host = {"hostname": "127.0.0.1", "port": server.port, "user": "tester", **extra}
    return make_core(tmp_path, {"box": host}, prompts=ScriptedPrompts(passwords=["anything"]))


def _logged(tmp_path: Path) -> str:
    return (tmp_path / "devtui.log").read_text(encoding="utf-8")


async def test_a_server_version_with_escapes_is_shown_and_logged_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with HostileServer({}, version=b"OpenSSH_9.6 " + EVIL.encode()) as server:
        key = server.client_key("tester")
        core, _, events = _core(server, tmp_path, monkeypatch, identity_file=str(key))
        async with core:
            status = await asyncio.wait_for(core.connect("box"), GUARD)
    assert status.server_version is not None and clean(status.server_version)
    assert "\\033]0;pwned\\007" in status.server_version
    connected = of_type(events, HostConnected)[0]
    assert clean(connected.server_version) and clean(connected.message())
    assert "pwned" in _logged(tmp_path) and clean(_logged(tmp_path).replace("\n", ""))


async def test_a_disconnect_reason_with_escapes_is_escaped_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with HostileServer({}, disconnect_reason=EVIL) as server:
        key = server.client_key("tester")
        core, _, events = _core(server, tmp_path, monkeypatch, identity_file=str(key))
        async with core:
            # The command's channel dies with the connection: no status, and no error text
            # of the server's making either.
            assert await asyncio.wait_for(core.run("box", ["disconnect"]), GUARD) == 255
            await wait_for(lambda: bool(of_type(events, HostLost)), 10, what="HostLost")
    lost = of_type(events, HostLost)[0]
    assert "pwned" in lost.reason and clean(lost.reason) and clean(lost.message())
    assert all(clean(e.message()) for e in events)
    assert "pwned" in _logged(tmp_path) and clean(_logged(tmp_path).replace("\n", ""))


async def test_a_keyboard_interactive_prompt_is_escaped_and_names_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with HostileServer({}, kbdint_prompt=EVIL) as server:
        core, prompts, _ = _core(server, tmp_path, monkeypatch)
        async with core:
            await asyncio.wait_for(core.connect("box"), GUARD)
    assert prompts.password_prompts == [
        "(box) \\033]0;pwned\\007\\033[2J\\015Passphrase for ~/.ssh/id_ed25519:"
    ]


async def test_a_refusal_reason_reaches_the_tunnel_status_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with HostileServer({}, refuse_reason=EVIL) as server:
        key = server.client_key("tester")
        core, _, events = _core(server, tmp_path, monkeypatch, identity_file=str(key))
        port = free_port()
        await core.add_tunnel(
            TunnelSpec("web", "box", "local", Endpoint.parse(str(port)), Endpoint.parse("80"))
        )
        async with core:
            await core.start_tunnel("web")
            await wait_for(lambda: core.tunnel_state("web").state.value == "up", 20)
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            await wait_for(lambda: bool(of_type(events, TargetRefused)), 20, what="refusal")
            writer.close()
            error = core.tunnel_state("web").error
    assert error is not None and "pwned" in error and clean(error)
    assert all(clean(e.message()) for e in events)


def test_every_event_message_is_escaped_whatever_its_fields_hold() -> None:
    from sshcore import events as ev

    for kind in (ev.HostLost, ev.HostFailed, ev.AuthFailed):
        event: Event = kind("box", EVIL)
        assert clean(event.message()) and "pwned" in event.message()
    refused = ev.TargetRefused("t", "127.0.0.1:80", EVIL)
    assert clean(refused.message())
