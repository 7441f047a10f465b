"""The installed `devtui` command in a real terminal (tmux), read from the screen as a user would.

Each test runs its own tmux server (a private socket) and stops it at the end.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

DEVTUI = Path(sys.executable).parent / "devtui"

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.skipif(not DEVTUI.exists(), reason=f"{DEVTUI} is not installed (pip install .)"),
]


class Terminal:
    """One tmux window running one command; `screen()` is what a person sees."""

    def __init__(self, command: str, size: tuple[int, int], env: dict[str, str]) -> None:
        self.socket = f"devtui-test-{os.getpid()}-{time.monotonic_ns()}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        self.exit_file = Path(env["HOME"]) / "exit-status"
        script = f"env {exports} {command}; echo $? > {shlex.quote(str(self.exit_file))}; sleep 60"
        width, height = size
        self._tmux("new-session", "-d", "-x", str(width), "-y", str(height), "-s", "t", script)

    def _tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return result.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def wait(self, predicate: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{text}")
            time.sleep(0.1)

    def exit_status(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while not self.exit_file.exists() or not self.exit_file.read_text().strip():
            if time.monotonic() > deadline:
                raise AssertionError(f"devtui did not exit; the screen:\n{self.screen()}")
            time.sleep(0.1)
        return int(self.exit_file.read_text())

    def close(self) -> None:
        self._tmux("kill-server")


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[..., Terminal]]:
    made: list[Terminal] = []
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)

    def start(command: str, size: tuple[int, int] = (80, 24), **env: str) -> Terminal:
        env = {"HOME": str(home), "TERM": "xterm-256color", "PATH": os.environ["PATH"], **env}
        term = Terminal(command, size, env)
        made.append(term)
        return term

    yield start
    for term in made:
        term.close()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


PANES = ("1 Hosts", "2 Tunnels", "3 Keys", "4 Logs")


def test_installed_devtui_demo_shows_a_page_fetched_through_its_tunnel(
    terminal: Callable[..., Terminal],
) -> None:
    term = terminal(f"{DEVTUI} demo")
    text = term.wait(
        lambda s: (
            all(p in s for p in PANES) and "connected" in s and re.search(r"demo-web\s+up", s)
        ),
        30,
        "four panes, the demo host connected and its tunnel up",
    )
    assert len(text.splitlines()) <= 24 and max(len(line) for line in text.splitlines()) <= 80
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", text)
    assert match, text
    url, port = match.group(0), int(match.group(1))
    with urllib.request.urlopen(url, timeout=10) as response:
        assert b"devtui demo" in response.read()
    # The Tunnels row counts what the page carried (Up and Down columns).
    term.wait(
        lambda s: re.search(r"demo-web\s+up\s+\d+\s+\d+B\s+\d", s) is not None,
        10,
        "bytes in the Tunnels pane",
    )
    term.keys("q")
    term.wait(lambda s: "stop them and quit" in s, 10, "the quit question")
    term.keys("y")
    assert term.exit_status(15) == 0
    assert not _listening(port)


def test_devtui_over_ssh_at_80x24(
    terminal: Callable[..., Terminal], sshd: Any, tmp_path: Path
) -> None:
    """The user's other setup: devtui on a Linux box they reached with `ssh -t`."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[settings]\nlog_file = "{tmp_path}/devtui.log"\n\n'
        '[hosts.gpu]\nhostname = "gpu.example.org"\n\n'
        '[tunnels.gradio]\nhost = "gpu"\nkind = "local"\n'
        'listen = "127.0.0.1:7860"\ntarget = "127.0.0.1:7860"\n'
    )
    remote = f"env HOME={tmp_path / 'home'} TERM=xterm-256color {DEVTUI} --config {config}"
    argv = sshd.ssh_argv(remote, options=["RequestTTY=force"])
    term = terminal(shlex.join(["ssh", "-t", *argv[1:]]))
    text = term.wait(
        lambda s: all(p in s for p in PANES) and "gradio" in s, 30, "the dashboard over ssh"
    )
    lines = text.splitlines()
    assert len(lines) <= 24 and max(len(line) for line in lines) <= 80
    assert "gpu" in text and "gradio" in text
    # A stopped tunnel's port may be anyone's: `o` opens (or over SSH, copies) nothing.
    term.keys("2")
    term.wait(lambda s: "Start/stop" in s, 10, "the Tunnels pane focused")
    term.keys("o")
    term.wait(lambda s: "gradio is stopped: not" in s, 15, "the refusal")
    term.keys("q")
    assert term.exit_status(15) == 0


def test_s_opens_a_shell_and_tunnels_keep_passing_data(
    terminal: Callable[..., Terminal], sshd: Any, tmp_path: Path, echo_server: Any
) -> None:
    from harness.net import free_port

    known = tmp_path / "known_hosts"
    sshd.write_known_hosts(known)
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[settings]\nknown_hosts = "{known}"\nlog_file = "{tmp_path}/devtui.log"\n\n'
        f'[hosts.box]\nhostname = "127.0.0.1"\nport = {sshd.port}\nuser = "{sshd.user}"\n'
        f'identity_file = "{sshd.client_key()}"\n\n'
        f'[tunnels.echo]\nhost = "box"\nkind = "local"\nlisten = "127.0.0.1:{port}"\n'
        f'target = "127.0.0.1:{echo_server.port}"\nautostart = true\n'
    )
    term = terminal(f"{DEVTUI} --config {config}")
    term.wait(lambda s: re.search(r"echo\s+up", s) is not None, 30, "the tunnel up")
    term.keys("s")
    term.wait(lambda s: "shell on box" in s, 15, "the shell")
    term.keys("echo inside-$((6*7))", "Enter")
    term.wait(lambda s: "inside-42" in s, 10, "the command's output in the shell")
    # The dashboard is suspended, its tunnel is not.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"still here")
        assert sock.recv(64) == b"still here"
    term.keys("exit", "Enter")
    term.wait(lambda s: all(p in s for p in PANES), 15, "the dashboard back")
    term.wait(lambda s: "Shell on box ended" in s, 10, "the notice")
    term.keys("q")
    term.wait(lambda s: "stop them and quit" in s, 10, "the quit question")
    term.keys("y")
    assert term.exit_status(15) == 0
