"""The smaller findings of issue 17, item 6: each fails with its fix taken out."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from coreutil import isolate_home, make_core
from harness.hostile import HostileServer, Reply

from sshcore import atomic, hostkeys, keys, winacl
from sshcore.config import Config
from sshcore.errors import ConfigError, DevtuiError
from sshcore.events import FileLog, UnexpectedError
from sshcore.openssh_config import read_ssh_config


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


# -- devtui run to a host without a POSIX shell (Windows) -------------------------------------


async def test_run_to_a_windows_host_refuses_words_its_shell_would_read_as_commands(
    tmp_path: Path,
) -> None:
    server = HostileServer({"awk": Reply(b"", 1)})  # no POSIX sh: as a Windows OpenSSH
    await server.start()
    try:
        (tmp_path / "known_hosts").write_text(server.known_hosts_line() + "\n")
        host = {
            "hostname": "127.0.0.1",
            "port": server.port,
            "user": "tester",
            "identity_file": str(server.client_key("tester")),
        }
        core, _, _ = make_core(tmp_path, {"win": host}, discover_interval=0)
        async with core:
            with pytest.raises(DevtuiError, match=r"no POSIX shell.*'a&whoami'"):
                await core.run("win", ["echo", "a&whoami"])
            assert not any("whoami" in c for c in server.commands)
            await core.run("win", ["echo", r"C:\Users\me\x.txt"])
            assert r"echo C:\Users\me\x.txt" in server.commands
            await core.run("win", "echo a&whoami")  # one word: the user's own shell line
            assert "echo a&whoami" in server.commands
    finally:
        await server.close()


# -- files named in configs: bounded, never a device or a pipe --------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_reads_of_configured_files_refuse_devices_and_pipes_without_waiting(
    tmp_path: Path, home: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in ("/dev/zero", fifo, tmp_path):
        with pytest.raises(OSError) as caught:
            atomic.read_file(path, 1024)
        assert caught.value.errno == errno.EINVAL, path
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(OSError) as caught:
        atomic.read_file(big, 1024)
    assert caught.value.errno == errno.EFBIG
    assert atomic.read_file(big, 16, head=True) == b"x" * 16
    # Include /dev/zero and a FIFO among the keys: notes, no hang, no unbounded read.
    ssh = home / ".ssh"
    (ssh / "config").write_text(
        f"Include /dev/zero\nInclude {fifo}\nHost web\n    HostName web.example\n"
    )
    os.mkfifo(ssh / "id_stuck")
    done: list[Any] = []
    worker = threading.Thread(
        target=lambda: done.append((read_ssh_config(), keys.list_keys())), daemon=True
    )
    worker.start()
    worker.join(20)
    assert done, "a device or a FIFO named by a config was waited on"
    found, _ = done[0]
    assert [h.name for h in found.hosts] == ["web"]
    notes = " ".join(n.text for n in found.notes)
    assert "/dev/zero: cannot read (not a regular file" in notes


async def test_an_identity_file_that_is_a_device_is_refused_not_read(tmp_path: Path) -> None:
    core, _, _ = make_core(tmp_path, {"box": {"hostname": "127.0.0.1", "port": 9}})
    async with core:
        with pytest.raises(DevtuiError, match="not a regular file"):
            await core._read_key(Path("/dev/zero"), None)


# -- known_hosts ---------------------------------------------------------------------------


def test_a_new_host_key_is_hashed_in_a_file_of_hashed_names(tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    hashed = tmp_path / "hashed"
    hashed.write_text(f"{hostkeys.hashed_name('old.example')} {other}\n")
    hostkeys.learn(hashed, "new.example", 2222, key)
    text = hashed.read_text()
    assert "new.example" not in text and text.count("|1|") == 2
    assert hostkeys.lookup(hashed, "new.example", 2222).trusted  # we find it again
    if shutil.which("ssh-keygen"):  # and so does OpenSSH
        found = subprocess.run(
            ["ssh-keygen", "-F", "[new.example]:2222", "-f", str(hashed)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert found.returncode == 0 and "found" in found.stdout
    plain = tmp_path / "plain"
    plain.write_text(f"old.example {other}\n")
    hostkeys.learn(plain, "new.example", 22, key)
    assert "\nnew.example ssh-ed25519 " in plain.read_text()


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_the_backup_of_a_forget_keeps_the_files_mode(tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    path = tmp_path / "known_hosts"
    path.write_text(f"gone.example {key}\nkept.example {key}\n")
    path.chmod(0o600)
    old = os.umask(0o022)
    try:
        assert hostkeys.forget(path, "gone.example", 22) == 1
    finally:
        os.umask(old)
    assert (path.with_name("known_hosts.bak").stat().st_mode & 0o777) == 0o600


# -- the log file --------------------------------------------------------------------------


def test_a_traceback_in_the_log_file_has_no_raw_control_characters(tmp_path: Path) -> None:
    log = FileLog(tmp_path / "devtui.log")
    trace = "Traceback (most recent call last):\n  ValueError: \x1b]0;owned\x07\x1b[2J\n"
    log(UnexpectedError("a test", "ValueError", trace))
    log.close()
    text = (tmp_path / "devtui.log").read_text()
    assert "\x1b" not in text and "\x07" not in text
    assert "\\033]0;owned\\007" in text and "Traceback" in text


# -- a config others can write runs none of its programs -----------------------------------


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes; Windows: the ACL (see below)")
def test_a_config_that_runs_programs_must_be_the_users_alone(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[hosts.box]\nhostname = "h"\nproxy_command = "nc %h %p"\n'
        'log_sources = ["cmd:journalctl -f"]\n'
    )
    path.chmod(0o666)
    with pytest.raises(ConfigError, match=r"not used: every user can write it.*proxy_command"):
        Config.load(path)
    path.chmod(0o644)
    assert Config.load(path).hosts["box"].proxy_command == "nc %h %p"
    # A config that runs nothing stays usable, whoever may write it.
    path.write_text('[hosts.box]\nhostname = "h"\n')
    path.chmod(0o666)
    assert "box" in Config.load(path).hosts


def test_who_besides_the_user_may_change_a_file_by_its_windows_acl() -> None:
    user = "S-1-5-21-1004336348-1177238915-682003330-1001"
    mine = f"O:{user}D:P(A;;FA;;;{user})(A;;FA;;;SY)(A;;0x1200a9;;;BU)"  # Users: read only
    assert winacl.sddl_writers(mine, user) is None
    theirs = f"O:{user}D:(A;;FA;;;{user})(A;ID;0x1301bf;;;AU)"
    assert "Authenticated Users" in (winacl.sddl_writers(theirs, user) or "")
    assert "can" in (winacl.sddl_writers(theirs, user) or "")
    assert "no ACL" in (winacl.sddl_writers(f"O:{user}D:NO_ACCESS_CONTROL", user) or "")
