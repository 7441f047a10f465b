"""What the dashboard looks like, at 80x24 and 120x40 (pytest-textual-snapshot).

Each docstring says what a person should see in the picture. After a deliberate change of
the look, refresh them with `pytest tests/test_snapshots.py --snapshot-update` and read the
new pictures (snapshot_report.html) before committing them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from sshcore.config import Config
from sshcore.core import Core
from sshcore.prompts import HostKeyQuestion
from tui.app import DevTuiApp
from tui.panes import logs_pane as logs
from tui.screens.dialogs import HostKeyScreen

# A fixed folder: the pictures show paths under it (as ~, since it is HOME).
ROOT = Path("/tmp/devtui-snapshots")
# Each test empties and refills ROOT: under pytest-xdist they run one after another on one
# worker (two at once had one test's HOME removed under the other).
pytestmark = pytest.mark.xdist_group("snapshots_share_a_folder")
DATA = Path(__file__).parent / "data" / "snapshot_ssh"
CONFIG = """# devtui config for the snapshot pictures
[settings]
known_hosts = "~/.ssh/known_hosts"
log_file = "~/.local/state/devtui/devtui.log"

[hosts.intern]
hostname = "ssh.intern-ai.org.cn"
port = 37367
user = "root"
identity_file = "~/.ssh/id_ed25519"

[hosts.lab]
hostname = "10.0.0.7"
user = "alice"
jump = "intern"

[tunnels.gradio]
host = "intern"
kind = "local"
listen = "127.0.0.1:7860"
target = "127.0.0.1:7860"

[tunnels.jupyter]
host = "lab"
kind = "local"
listen = "127.0.0.1:8888"
target = "127.0.0.1:8888"

[tunnels.socks]
host = "intern"
kind = "dynamic"
listen = "127.0.0.1:1080"
"""


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    shutil.rmtree(ROOT, ignore_errors=True)
    home = ROOT / "home"
    ssh = home / ".ssh"
    ssh.mkdir(parents=True)
    for name in ("id_ed25519", "id_ed25519.pub"):
        shutil.copy(DATA / name, ssh / name)
    os.chmod(ssh / "id_ed25519", 0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    monkeypatch.setattr(logs, "stamp", lambda at: "12:00:00 ")
    yield home
    shutil.rmtree(ROOT, ignore_errors=True)


def _app(home: Path, text: str = CONFIG) -> DevTuiApp:
    path = home / ".config" / "devtui" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    config = Config.load(path)
    return DevTuiApp(config, lambda prompts: Core(config, prompts), autostart=False)


async def _settled(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, DevTuiApp)
    await app.core_ready.wait()
    for _ in range(100):
        if app.keys_pane.loaded:
            break
        await pilot.pause(0.05)
    await pilot.pause(0.3)


def test_dashboard_80x24(snap_compare: Any, home: Path) -> None:
    """Four titled panes fit: Hosts (intern and lab, idle), Tunnels (gradio, jupyter, socks,
    stopped), Keys (id_ed25519, used by intern), Logs (where the config and log file are).
    The status line says where the config is and how to get help; the footer lists the Hosts
    pane's keys, since it has the focus (accent border)."""
    assert snap_compare(_app(home), terminal_size=(80, 24), run_before=_settled)


def test_dashboard_120x40(snap_compare: Any, home: Path) -> None:
    """At 120x40 the Tunnels pane takes two thirds of the width and shows each tunnel's route
    (L 7860→127.0.0.1:7860, D 1080→SOCKS) and an activity column; nothing is cut off."""
    assert snap_compare(_app(home), terminal_size=(120, 40), run_before=_settled)


def test_tunnels_focused_80x24(snap_compare: Any, home: Path) -> None:
    """After `2`: the Tunnels pane has the accent border, its footer keys (space start/stop,
    o open, y copy URL, ...) and the selected tunnel's route under the pane."""
    assert snap_compare(_app(home), press=["2"], terminal_size=(80, 24), run_before=_settled)


def test_first_run_80x24(snap_compare: Any, home: Path) -> None:
    """An empty config: the Hosts pane says what to do first (p paste the ssh line, a add,
    i import ~/.ssh/config, or devtui demo)."""
    assert snap_compare(_app(home, ""), terminal_size=(80, 24), run_before=_settled)


def test_host_key_question_80x24(snap_compare: Any, home: Path) -> None:
    """A new host key: the host, its address, key type and SHA256 fingerprint, and that only
    `y` trusts it (n / esc refuse)."""

    async def ask(pilot: Pilot[Any]) -> None:
        await _settled(pilot)
        question = HostKeyQuestion(
            "intern",
            "[ssh.intern-ai.org.cn]:37367",
            "ssh-ed25519",
            "SHA256:3f1AbcdEFGhijkLMNopqRSTuvwxYZ0123456789abcd",
        )
        pilot.app.push_screen(HostKeyScreen(question))
        await pilot.pause(0.2)

    assert snap_compare(_app(home), terminal_size=(80, 24), run_before=ask)


def test_paste_preview_80x24(snap_compare: Any, home: Path) -> None:
    """`p` with the tutorial's tunnel line: before saving, the dialog says what it will add
    and which unsafe options it will not obey (-g, StrictHostKeyChecking=no)."""

    async def paste(pilot: Pilot[Any]) -> None:
        await _settled(pilot)
        await pilot.press("p")
        from textual.widgets import Input

        pilot.app.screen.query_one("#line", Input).value = (
            "ssh -p 37367 root@ssh.intern-ai.org.cn -CNg -L 7861:127.0.0.1:7861 "
            "-o StrictHostKeyChecking=no"
        )
        await pilot.pause(0.2)

    assert snap_compare(_app(home), terminal_size=(80, 24), run_before=paste)


def test_help_80x24(snap_compare: Any, home: Path) -> None:
    """`?`: every key of every pane, in a box that scrolls."""
    assert snap_compare(
        _app(home), press=["question_mark"], terminal_size=(80, 24), run_before=_settled
    )
