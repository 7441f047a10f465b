"""Offline commands start fast: they never load asyncssh (the network) or Textual (the app).

Checked the way harlequin does it: the real command in a fresh interpreter with
`-X importtime`, which lists every module the process imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tui.cli.main import KEY_TYPES

HEAVY = ("asyncssh", "textual")
OFFLINE = [
    ("--version",),
    ("--help",),
    ("hosts", "list"),
    ("hosts", "list", "--json"),
    ("tunnels", "list"),
    ("check",),
    ("add", "ssh -p 2222 me@new.example.org -L 8080:127.0.0.1:80"),
    ("hosts", "export", "box"),
    ("hosts", "export", "box", "--as", "config"),
    ("hosts", "export", "box", "--write"),
    ("tunnels", "add", "box", "-D", "1080"),
]


def imported(argv: tuple[str, ...], home: Path) -> set[str]:
    """The modules `devtui ARGV` imports (it must succeed)."""
    config = home / "devtui.toml"
    if not config.exists():
        config.write_text('[hosts.box]\nhostname = "box.example.org"\nuser = "me"\n')
    env = {**os.environ, "HOME": str(home), "USERPROFILE": str(home)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tui", "--config", str(config), *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("import time:")]
    assert lines  # -X importtime did report
    return {ln.rsplit("|", 1)[1].strip() for ln in lines}


@pytest.mark.parametrize("argv", OFFLINE, ids=[" ".join(a) for a in OFFLINE])
def test_offline_commands_never_load_the_network_or_the_app(
    argv: tuple[str, ...], tmp_path: Path
) -> None:
    modules = imported(argv, tmp_path)
    assert "tui.cli.main" in modules
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == [], f"devtui {' '.join(argv)} imported {heavy[:5]}"


def test_the_check_sees_a_command_that_loads_asyncssh(tmp_path: Path) -> None:
    # keys list needs sshcore.keys (asyncssh): the same check must notice it.
    assert "asyncssh" in imported(("keys", "list"), tmp_path)


def test_the_parser_offers_the_key_types_sshcore_makes() -> None:
    from sshcore import keys

    assert tuple(KEY_TYPES) == tuple(keys.KEY_TYPES)
