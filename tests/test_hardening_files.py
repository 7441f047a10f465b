"""Hostile or unlucky files: Include loops in ssh_config, known_hosts edits, the log file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sshcore.errors import DevtuiError
from sshcore.openssh_config import read_ssh_config


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HOME with an empty ~/.ssh."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    return tmp_path


def ssh_file(home: Path, name: str, text: str) -> Path:
    path = home / ".ssh" / name
    path.write_text(text, encoding="utf-8")
    return path


# -- ssh_config Include ------------------------------------------------------------------------
def test_a_config_that_includes_itself_twice_is_read_once_with_one_note(home: Path) -> None:
    ssh_file(home, "config", "Include config config\nHost x\n    HostName x.example\n")
    found = read_ssh_config()
    assert [h.name for h in found.hosts] == ["x"]
    assert len(found.notes) == 1, found.notes
    assert "Include loop" in found.notes[0] and ":1:" in found.notes[0]


def test_files_that_include_each_other_are_each_read_once_per_path(home: Path) -> None:
    # Three-way fan-out: every file includes every file (itself too).
    for name in ("a", "b", "c"):
        ssh_file(
            home, f"{name}.conf", f"Include *.conf\nHost {name}\n    HostName {name}.example\n"
        )
    ssh_file(home, "config", "Include *.conf\n")
    found = read_ssh_config()
    assert sorted(h.name for h in found.hosts) == ["a", "b", "c"]
    assert all("Include loop" in n for n in found.notes)


def test_a_wide_include_fan_out_stops_with_one_error(home: Path) -> None:
    # Twelve files that include each other: 12! orders of reading without a cap.
    for i in range(12):
        ssh_file(home, f"f{i:02}.conf", f"Include f*.conf\nHost h{i}\n    HostName h{i}.example\n")
    ssh_file(home, "config", "Include f*.conf\n")
    with pytest.raises(DevtuiError, match="more than 256 files"):
        read_ssh_config()


def _chain(home: Path, length: int) -> Path:
    for i in range(length):
        ssh_file(home, f"c{i}", f"Include c{i + 1}\nHost h{i}\n    HostName h{i}.example\n")
    ssh_file(home, f"c{length}", "Host end\n    HostName end.example\n")
    return ssh_file(home, "config", "Include c0\n")


def test_include_nested_deeper_than_ssh_allows_is_one_error(home: Path) -> None:
    _chain(home, 20)
    with pytest.raises(DevtuiError, match="nested more than 16 deep") as caught:
        read_ssh_config()
    assert "\n" not in str(caught.value)


def test_include_nested_as_deep_as_ssh_allows_is_read(home: Path) -> None:
    _chain(home, 15)  # config -> c0 -> ... -> c15: depth 16, which ssh accepts
    found = read_ssh_config()
    assert "end" in [h.name for h in found.hosts]
    assert found.notes == []


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs OpenSSH's ssh client")
@pytest.mark.parametrize(("length", "ok"), [(15, True), (16, False)])
def test_the_depth_limit_is_the_one_ssh_applies(home: Path, length: int, ok: bool) -> None:
    config = _chain(home, length)
    done = subprocess.run(
        ["ssh", "-F", str(config), "-G", "end"], capture_output=True, text=True, timeout=30
    )
    assert (done.returncode == 0) is ok, done.stderr
    assert ok or "Too many recursive configuration includes" in done.stderr
    if ok:
        assert read_ssh_config(config).hosts
    else:
        with pytest.raises(DevtuiError, match="nested more than 16 deep"):
            read_ssh_config(config)
