"""Hostile or unlucky files: Include loops in ssh_config, known_hosts edits, the log file."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest

from sshcore import atomic, hostkeys
from sshcore.errors import DevtuiError
from sshcore.events import FileLog, HostConnecting
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


# -- known_hosts -------------------------------------------------------------------------------
@pytest.fixture
def key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519").convert_to_public()


def _entry(key: asyncssh.SSHKey) -> bytes:
    return key.export_public_key().strip()


def _ssh_appends(path: Path, line: bytes) -> Callable[[str], None]:
    """A checkpoint that appends `line` the way ssh does (O_APPEND, no lock), once."""
    done: list[bool] = []

    def checkpoint(step: str) -> None:
        if step == "before-replace" and not done:
            done.append(True)
            with open(path, "ab") as f:
                f.write(line)

    return checkpoint


def test_learn_keeps_every_byte_already_there(tmp_path: Path, key: asyncssh.SSHKey) -> None:
    path = tmp_path / "known_hosts"
    before = b"# caf\xe9 (latin-1)\r\nold.example " + _entry(key) + b"\r\n#\x0cform feed\r\n"
    path.write_bytes(before)
    inode = path.stat().st_ino
    assert hostkeys.learn(path, "new.example", 22, key) == 4
    after = path.read_bytes()
    assert after.startswith(before)  # appended, not rewritten: CRLF and the \xe9 survive
    assert after[len(before) :] == b"new.example " + _entry(key) + b"\n"
    # The same file, not a replacement: an entry ssh appends meanwhile cannot be lost.
    assert path.stat().st_ino == inode


def test_an_entry_ssh_appends_while_devtui_forgets_is_kept(
    tmp_path: Path, key: asyncssh.SSHKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "known_hosts"
    path.write_bytes(b"a.example " + _entry(key) + b"\nb.example " + _entry(key) + b"\n")
    theirs = b"by-ssh.example " + _entry(key) + b"\n"
    monkeypatch.setattr(atomic, "checkpoint", _ssh_appends(path, theirs))
    assert hostkeys.forget(path, "a.example", 22) == 1
    assert path.read_bytes() == b"b.example " + _entry(key) + b"\n" + theirs


def test_forget_works_on_bytes_keeping_crlf_and_non_utf8(
    tmp_path: Path, key: asyncssh.SSHKey
) -> None:
    path = tmp_path / "known_hosts"
    keep = b"# caf\xe9\r\n#\x0c\xc2\x85 odd comment\r\nbeta.example " + _entry(key) + b"\r\n"
    path.write_bytes(keep + b"alpha.example " + _entry(key) + b"\r\n")
    assert hostkeys.forget(path, "alpha.example", 22) == 1
    assert path.read_bytes() == keep


def test_forget_takes_only_its_name_off_a_line_naming_several_hosts(
    tmp_path: Path, key: asyncssh.SSHKey
) -> None:
    path = tmp_path / "known_hosts"
    path.write_bytes(b"alpha.example,beta.example,10.0.0.5 " + _entry(key) + b" comment\n")
    assert hostkeys.forget(path, "alpha.example", 22) == 1
    assert path.read_bytes() == b"beta.example,10.0.0.5 " + _entry(key) + b" comment\n"
    assert not hostkeys.lookup(path, "alpha.example", 22).known
    assert hostkeys.lookup(path, "beta.example", 22).trusted
    assert hostkeys.lookup(path, "10.0.0.5", 22).trusted


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_forget_removes_a_hashed_name_ssh_keygen_wrote(
    tmp_path: Path, key: asyncssh.SSHKey
) -> None:
    path = tmp_path / "known_hosts"
    path.write_bytes(
        b"[alpha.example]:2222 " + _entry(key) + b"\nbeta.example " + _entry(key) + b"\n"
    )
    subprocess.run(["ssh-keygen", "-H", "-f", str(path)], check=True, capture_output=True)
    assert hostkeys.forget(path, "alpha.example", 2222) == 1
    assert not hostkeys.lookup(path, "alpha.example", 2222).known
    assert hostkeys.lookup(path, "beta.example", 22).trusted


def test_forget_refuses_a_wildcard_pin_that_covers_other_hosts(
    tmp_path: Path, key: asyncssh.SSHKey
) -> None:
    path = tmp_path / "known_hosts"
    before = b"*.example " + _entry(key) + b"\n"
    path.write_bytes(before)
    with pytest.raises(DevtuiError, match=r"known_hosts:1 .*other hosts"):
        hostkeys.forget(path, "alpha.example", 22)
    assert path.read_bytes() == before


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_line_numbers_are_the_ones_ssh_keygen_reports(tmp_path: Path, key: asyncssh.SSHKey) -> None:
    # A form feed and U+2028 in a comment are not line breaks for ssh or an editor.
    path = tmp_path / "known_hosts"
    path.write_bytes(b"# a\x0cb\xe2\x80\xa8c\x1cd\n\nhost.example " + _entry(key) + b"\n")
    found = subprocess.run(
        ["ssh-keygen", "-F", "host.example", "-f", str(path)], capture_output=True, text=True
    )
    line = int(found.stdout.split("found: line ")[1].split()[0])
    assert [e.line for e in hostkeys.lookup(path, "host.example", 22).trusted] == [line]


def test_forget_and_learn_wait_for_another_devtui_editing_known_hosts(
    tmp_path: Path, key: asyncssh.SSHKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    import filelock

    path = tmp_path / "known_hosts"
    before = b"a.example " + _entry(key) + b"\n"
    path.write_bytes(before)
    monkeypatch.setattr(hostkeys, "LOCK_TIMEOUT", 0.2)
    with filelock.FileLock(tmp_path / "known_hosts.lock"):  # another devtui mid-edit
        with pytest.raises(DevtuiError, match="being changed by another devtui"):
            hostkeys.forget(path, "a.example", 22)
        with pytest.raises(DevtuiError, match="being changed by another devtui"):
            hostkeys.learn(path, "b.example", 22, key)
    assert path.read_bytes() == before
    assert hostkeys.forget(path, "a.example", 22) == 1


# -- the log file ------------------------------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="POSIX modes; on Windows the profile ACL applies")
def test_the_log_file_is_owner_only_from_creation_and_after_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = os.umask(0o022)  # the usual umask, which makes plain files 0644
    try:
        log_path = tmp_path / "logs" / "devtui.log"
        log = FileLog(log_path, max_bytes=300, backups=2)
        for i in range(20):  # enough to rotate twice
            log(HostConnecting(f"host{i}", f"user@10.0.0.{i}:22"))
        log.close()
    finally:
        os.umask(old)
    files = sorted(log_path.parent.iterdir())
    assert [f.name for f in files] == ["devtui.log", "devtui.log.1", "devtui.log.2"]
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o600, f
    assert "user@10.0.0.19:22" in log_path.read_text()


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes; on Windows the profile ACL applies")
def test_a_readable_log_left_by_an_older_devtui_is_made_owner_only(tmp_path: Path) -> None:
    log_path = tmp_path / "devtui.log"
    log_path.write_text("old line\n")
    log_path.chmod(0o644)
    log = FileLog(log_path)
    log(HostConnecting("box", "me@box:22"))
    log.close()
    assert log_path.stat().st_mode & 0o777 == 0o600
    assert log_path.read_text().startswith("old line\n")
