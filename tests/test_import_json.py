"""Notes name their host: `devtui hosts import-ssh-config --json` and `devtui add --json`.

A setting devtui cannot honour on import (or changes to a safer value) is a note; in JSON
each note says which host it concerns, so a script can tell "web's StrictHostKeyChecking"
from "db's ControlMaster". The human output keeps the "Host web: ..." text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sshcore.config import Config
from sshcore.model import HostSpec, Note
from tui.cli.main import main

SSH_CONFIG = """\
Host web
    HostName web.example.org
    StrictHostKeyChecking no
    ForwardAgent yes
    RemoteForward 0.0.0.0:1080
    LocalForward 8080 db:5432

Host a b
    HostName shared.example.org
    ControlMaster auto

Host lone
    HostName lone.example.org
    RequestTTY yes

Host app
    HostName 10.0.0.9
    ProxyJump ops@gate.example:2200
    UserKnownHostsFile /dev/null

Host inner
    HostName 10.0.0.7
    ProxyJump bastion

Host bastion
    HostName bastion.example.org
    StrictHostKeyChecking accept-new

Match exec "true"
    User matched

Include missing.conf
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HOME with ~/.ssh/config, and no DEVTUI_CONFIG from outside."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    monkeypatch.delenv("DEVTUI_CONFIG", raising=False)
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text(SSH_CONFIG)
    return tmp_path


def _run(capsys: pytest.CaptureFixture[str], home: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["--config", str(home / "devtui.toml"), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _notes_by_host(found: dict[str, Any]) -> dict[str | None, list[str]]:
    by_host: dict[str | None, list[str]] = {}
    for note in found["notes"]:
        assert set(note) == {"host", "hosts", "text"}
        by_host.setdefault(note["host"], []).append(note["text"])
    return by_host


def test_import_json_names_the_host_of_every_note(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, home, "hosts", "import-ssh-config", "--json")
    assert code == 0, err
    found = json.loads(out)
    # What was saved is what the JSON lists.
    saved = Config.load(home / "devtui.toml")
    assert sorted(h["name"] for h in found["hosts"]) == sorted(saved.hosts)
    assert sorted(t["name"] for t in found["tunnels"]) == sorted(saved.tunnels)
    assert found["changed"] is True
    by_host = _notes_by_host(found)
    web = "\n".join(by_host["web"])
    assert "StrictHostKeyChecking no is not obeyed" in web
    assert "ForwardAgent yes recorded off" in web
    assert "reverse SOCKS proxy on 0.0.0.0:1080" in web
    assert any("requesttty yes is not used" in t for t in by_host["lone"])
    assert any("userknownhostsfile" in t.lower() for t in by_host["app"])  # not the jump host
    # inner jumps through bastion, read first for inner: bastion's note is still bastion's.
    assert any("StrictHostKeyChecking accept-new" in t for t in by_host["bastion"])
    assert not any("StrictHostKeyChecking" in t for t in by_host.get("inner", []))
    # A setting shared by two hosts: no one host, both named.
    shared = next(n for n in found["notes"] if "controlmaster" in n["text"])
    assert (shared["host"], shared["hosts"]) == (None, ["a", "b"])
    # About the file, not a host: the Match devtui cannot evaluate, the missing Include.
    about_file = "\n".join(by_host[None])
    assert "Match block skipped" in about_file and "missing.conf" in about_file
    for note in found["notes"]:
        for host in note["hosts"]:
            assert host in saved.hosts, note


def test_import_json_says_which_host_was_skipped_and_why(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = Config.load(home / "devtui.toml")
    config.add_host(HostSpec("lone", "somewhere.else"))
    code, out, _ = _run(capsys, home, "hosts", "import-ssh-config", "--json")
    assert code == 0
    found = json.loads(out)
    assert "lone" not in {h["name"] for h in found["hosts"]}
    skipped = [n for n in found["notes"] if "skipped" in n["text"] and n["host"] == "lone"]
    assert skipped and "already has a different host" in skipped[0]["text"]
    # Importing again adds nothing: the JSON says so.
    code, out, _ = _run(capsys, home, "hosts", "import-ssh-config", "--json")
    again = json.loads(out)
    assert (again["changed"], again["hosts"], again["tunnels"]) == (False, [], [])


def test_the_human_output_keeps_its_notes(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, home, "hosts", "import-ssh-config")
    assert code == 0
    assert "note: Host web: StrictHostKeyChecking no is not obeyed" in out
    assert not out.lstrip().startswith("{")


@pytest.mark.parametrize(
    "argv",
    [
        ["add", "--json", "ssh -A -X -p 2222 me@box.example.org -L 0.0.0.0:8080:db:80"],
        ["add", "ssh -A -X -p 2222 me@box.example.org -L 0.0.0.0:8080:db:80", "--json"],
        ["add", "--json", "-A", "-X", "-p", "2222", "me@box.example.org", "-L0.0.0.0:8080:db:80"],
    ],
)
def test_add_json_names_the_pasted_host_in_every_note(
    home: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = _run(capsys, home, *argv)
    assert code == 0, err
    added = json.loads(out)
    assert added["host"] == "box" and added["changed"] is True
    assert [h["name"] for h in added["hosts"]] == ["box"]
    assert [(t["name"], t["all_interfaces"]) for t in added["tunnels"]] == [("box-8080", True)]
    texts = [n["text"] for n in added["notes"]]
    assert any("agent forwarding" in t for t in texts)
    assert any("X11" in t for t in texts)
    assert any("all interfaces" in t for t in texts)
    assert {n["host"] for n in added["notes"]} == {"box"}
    assert Config.load(home / "devtui.toml").hosts["box"].port == 2222


def test_add_json_names_the_saved_host_a_paste_reuses(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same machine saved as "gpu": the pasted line's notes are about gpu, not "box".
    config = Config.load(home / "devtui.toml")
    config.add_host(HostSpec("gpu", "box.example.org", 2222, "me", identity_file="~/.ssh/lab"))
    code, out, _ = _run(
        capsys, home, "add", "--json", "ssh -X -i ~/.ssh/other -p 2222 me@box.example.org"
    )
    assert code == 0
    added = json.loads(out)
    assert (added["host"], added["hosts"], added["changed"]) == ("gpu", [], False)
    assert {n["host"] for n in added["notes"]} == {"gpu"}
    assert any("keeps its saved identity files" in n["text"] for n in added["notes"])


def test_a_bad_line_with_json_is_one_line_on_stderr(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, home, "add", "--json", "ssh -p 99999 h")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "99999" in err
    assert not (home / "devtui.toml").exists()  # nothing saved


def test_notes_stay_text_and_know_their_host() -> None:
    note = Note("Host web: ForwardAgent yes recorded off", "web")
    assert note == "Host web: ForwardAgent yes recorded off" and "ForwardAgent" in note
    assert note.as_json() == {"host": "web", "hosts": ["web"], "text": str(note)}
    shared = Note("x (hosts a, b)", hosts=["a", "b"])
    assert (shared.host, shared.hosts) == (None, ("a", "b"))


def test_import_json_from_the_installed_command(home: Path) -> None:
    """One real run of `devtui hosts import-ssh-config --json` (a new process)."""
    env = {**os.environ, "HOME": str(home), "USERPROFILE": str(home)}
    env.pop("DEVTUI_CONFIG", None)
    command = ["hosts", "import-ssh-config", "--json"]
    run = subprocess.run(
        [sys.executable, "-m", "tui", "--config", str(home / "devtui.toml"), *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    hosts = {h["name"] for h in found["hosts"]}
    assert {"web", "a", "b", "lone", "app"} <= hosts
    web_notes = [n["text"] for n in found["notes"] if n["host"] == "web"]
    assert any("StrictHostKeyChecking" in t for t in web_notes)
    assert all(n["host"] is None or n["host"] in hosts for n in found["notes"])


@pytest.mark.parametrize(
    "argv",
    [
        ["add", "ssh", "me@a.example.org", "--json", "--name", "foo"],
        ["add", "ssh", "me@a.example.org", "--name", "foo", "--json"],
        ["add", "ssh me@a.example.org", "--json", "--name", "foo"],
        ["add", "ssh me@a.example.org", "--name=foo", "--json"],
        ["add", "--json", "--name", "foo", "ssh", "me@a.example.org"],
    ],
)
def test_add_takes_json_and_name_in_any_order_after_the_line(
    home: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = _run(capsys, home, *argv)
    assert code == 0, err
    added = json.loads(out)
    assert added["host"] == "foo"
    assert Config.load(home / "devtui.toml").hosts["foo"].hostname == "a.example.org"
