"""Prompts take turns (issue 17, item 2): with two password-only hosts, `devtui up` on both
asked both passwords on one terminal at once, and the answers crossed (host A's password
went to host B). Now one question at a time, each naming its host first; and a question
that opens by itself in the dashboard ignores keys for a moment, so type-ahead never lands
in a password field or trusts a host key."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from coreutil import isolate_home, write_config
from dashboard_util import make_app, ready, until
from harness.asyncssh_server import AsyncsshServer
from harness.net import free_port
from harness.terminal import spawn_on_pty

from sshcore.prompts import HostKeyQuestion
from tui.dialog_prompts import TuiPrompts
from tui.screens.dialogs import HostKeyScreen, SecretScreen

PASSWORDS = {"ta": "pw-of-a", "tb": "pw-of-b"}
PROMPT = re.compile(rb"\((t[ab])\) Password for [^\r\n]*: ")


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


async def test_devtui_up_asks_one_password_at_a_time_and_each_host_gets_its_own(
    tmp_path: Path,
) -> None:

    servers = {name: AsyncsshServer({"u": pw}) for name, pw in PASSWORDS.items()}
    for server in servers.values():
        await server.start()
    ports = {name: free_port() for name in servers}
    hosts = {
        name: {"hostname": "127.0.0.1", "port": server.port, "user": "u"}
        for name, server in servers.items()
    }
    tunnels = {
        f"{name}-web": {
            "host": name,
            "kind": "local",
            "listen": f"127.0.0.1:{ports[name]}",
            "target": "127.0.0.1:9",
        }
        for name in servers
    }
    config = write_config(tmp_path / "c.toml", hosts, tunnels)
    env = {**os.environ, "DEVTUI_CONFIG": str(config), "TERM": "xterm"}
    proc, master = spawn_on_pty([sys.executable, "-m", "tui", "up", "--accept-new", *tunnels], env)
    output = bytearray()

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            output.extend(data)

    threading.Thread(target=read, daemon=True).start()
    answered = 0
    open_prompts: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while answered < 2:
            assert time.monotonic() < deadline, output.decode(errors="replace")
            assert proc.poll() is None, output.decode(errors="replace")
            prompts = list(PROMPT.finditer(bytes(output)))
            if len(prompts) > answered:
                # Both prompts on screen at once is the bug: wait a little to see.
                await asyncio.sleep(0.5)
                prompts = list(PROMPT.finditer(bytes(output)))
                open_prompts.append(len(prompts) - answered)
                newest = prompts[-1].group(1).decode()
                os.write(master, PASSWORDS[newest].encode() + b"\r")
                answered += 1
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 30
        while not all(_listening(p) for p in ports.values()):
            assert time.monotonic() < deadline, output.decode(errors="replace")
            assert proc.poll() is None, output.decode(errors="replace")
            await asyncio.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        os.close(master)
        for server in servers.values():
            await server.stop()
    assert open_prompts == [1, 1], "a second question was on screen before the first was answered"
    for name, server in servers.items():
        assert server.passwords == [("u", PASSWORDS[name])], name
    text = output.decode(errors="replace")
    assert PASSWORDS["ta"] not in text and PASSWORDS["tb"] not in text  # never echoed


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def test_a_question_that_opens_by_itself_ignores_type_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Longer than devtui's 0.3 s, so that a loaded machine cannot let a key through late.
    monkeypatch.setattr(SecretScreen, "settle", 1.5)
    monkeypatch.setattr(HostKeyScreen, "settle", 1.5)
    app = make_app(tmp_path, {"box": {"hostname": "10.0.0.1"}})
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        prompts = TuiPrompts(app)
        asked = asyncio.ensure_future(prompts.password("box", "(box) Password for u@box:22"))
        await until(pilot, lambda: isinstance(app.screen, SecretScreen), 5, "the question")
        await pilot.press("l", "s", "enter")  # the user was typing elsewhere
        assert not asked.done()
        await until(pilot, lambda: not app.screen.settling(), 5, "the settle time")
        await pilot.pause(0.1)
        assert app.screen.query_one("#secret").value == ""  # nothing of it in the field
        await pilot.press(*"pw", "enter")
        assert await asyncio.wait_for(asked, 5) == "pw"

        question = HostKeyQuestion("box", "[10.0.0.1]:22", "ssh-ed25519", "SHA256:abc")
        trusted = asyncio.ensure_future(prompts.confirm_host_key(question))
        await until(pilot, lambda: isinstance(app.screen, HostKeyScreen), 5, "the host key")
        await pilot.press("y")  # a `y` meant for something else: it trusts nothing
        await pilot.pause(0.05)
        assert not trusted.done()
        await until(pilot, lambda: not app.screen.settling(), 5, "the settle time")
        await pilot.press("y")
        assert await asyncio.wait_for(trusted, 5) is True
