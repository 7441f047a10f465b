"""Keys: list, generate, show, install (ssh-copy-id), checked against ssh-keygen and real servers.

HOME points at a temp dir in every test, so the real ~/.ssh is never read or touched.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import pwd
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from harness.asyncssh_server import DEFAULT_PASSWORD, DEFAULT_USER, AsyncsshServer
from harness.sshd import Sshd, ThrowawayUser

from sshcore import keys, winacl
from sshcore.keys import KeyFileError, KeyInstallError
from sshcore.model import HostSpec
from tui.cli import main

# sshd as a real host would run it: keys in ~/.ssh/authorized_keys, modes enforced.
REAL_HOST_CONFIG = ["AuthorizedKeysFile .ssh/authorized_keys", "StrictModes yes"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME (Path.home() follows it on Linux), no agent, config inside it."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DEVTUI_CONFIG", str(home / "devtui.toml"))
    assert Path.home() == home
    return home


def keygen(*args: str) -> None:
    subprocess.run(["ssh-keygen", "-q", *args], check=True, capture_output=True, timeout=60)


def keygen_l(path: Path) -> tuple[int, str, str, str]:
    """(bits, fingerprint, comment, type) as `ssh-keygen -l` prints them."""
    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(path)], check=True, capture_output=True, text=True
    ).stdout.strip()
    bits, fingerprint, rest = out.split(" ", 2)
    comment, _, kind = rest.rpartition(" ")
    return int(bits), fingerprint, comment, kind.strip("()")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------------------------------------
# generate


def test_generated_key_is_owner_only_from_the_moment_it_exists(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = home / ".ssh" / "id_ed25519"
    seen: list[tuple[int, int, int]] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        fd = real_open(path, flags, mode, *args, **kwargs)
        if Path(os.fsdecode(path)) == target and flags & os.O_CREAT:  # made, not read
            st = os.fstat(fd)  # the instant the file appears, before a byte is written
            seen.append((flags, stat.S_IMODE(st.st_mode), st.st_size))
        return fd

    monkeypatch.setattr(os, "open", spy)
    old_umask = os.umask(0)  # a permissive umask must not matter: the mode comes from open()
    try:
        info = keys.generate_key()
    finally:
        os.umask(old_umask)
    assert len(seen) == 1
    flags, first_mode, size = seen[0]
    assert first_mode == 0o600 and size == 0
    assert flags & os.O_EXCL and flags & os.O_CREAT
    assert mode(target) == 0o600
    assert mode(home / ".ssh") == 0o700
    assert mode(home / ".ssh" / "id_ed25519.pub") == 0o644
    assert info.path == target and info.key_type == "ED25519" and info.bits == 256
    assert info.encrypted is False and info.problem is None
    assert info.comment == keys.default_comment() and "@" in info.comment


@pytest.mark.parametrize(
    ("key_type", "bits", "expect_bits", "label"),
    [
        ("ed25519", None, 256, "ED25519"),
        ("rsa", None, 3072, "RSA"),
        ("rsa", 4096, 4096, "RSA"),
        ("ecdsa", None, 256, "ECDSA"),
        ("ecdsa", 384, 384, "ECDSA"),
    ],
)
def test_generated_keys_load_in_ssh_keygen(
    home: Path, key_type: str, bits: int | None, expect_bits: int, label: str
) -> None:
    info = keys.generate_key(key_type=key_type, bits=bits, comment="me@laptop")
    assert info.path == home / ".ssh" / f"id_{key_type}"
    assert keygen_l(info.path) == (expect_bits, info.fingerprint, "me@laptop", label)
    assert (info.bits, info.key_type) == (expect_bits, label)
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(info.path)], check=True, capture_output=True, text=True
    ).stdout.split()[:2]
    assert derived == info.public_line.split()[:2]  # type: ignore[union-attr]
    assert (home / ".ssh" / f"id_{key_type}.pub").read_text() == f"{info.public_line}\n"


def test_passphrase_key_opens_with_it_in_ssh_keygen_and_not_without(home: Path) -> None:
    info = keys.generate_key(passphrase="correct horse", comment="c")
    assert info.encrypted is True and info.fingerprint is not None
    run = ["ssh-keygen", "-y", "-f", str(info.path), "-P"]
    good = subprocess.run([*run, "correct horse"], capture_output=True, text=True)
    assert good.returncode == 0 and good.stdout.split()[:2] == info.public_line.split()[:2]  # type: ignore[union-attr]
    assert subprocess.run([*run, "wrong"], capture_output=True).returncode != 0
    # Listed without the passphrase: fingerprint from the key file, comment from the .pub.
    (listed,) = keys.list_keys()
    assert listed.fingerprint == keygen_l(info.path)[1]
    assert (listed.encrypted, listed.comment) == (True, "c")


def test_never_overwrites_unless_asked(home: Path) -> None:
    first = keys.generate_key()
    before = first.path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        keys.generate_key()
    assert first.path.read_bytes() == before
    second = keys.generate_key(overwrite=True)
    assert second.fingerprint != first.fingerprint
    assert mode(second.path) == 0o600
    assert sorted(p.name for p in (home / ".ssh").iterdir()) == ["id_ed25519", "id_ed25519.pub"]
    # An existing .pub alone also blocks a new key (it would no longer match).
    (home / ".ssh" / "other.pub").write_text("x\n")
    with pytest.raises(KeyFileError, match=r"other\.pub already exists"):
        keys.generate_key(home / ".ssh" / "other")
    assert not (home / ".ssh" / "other").exists()


@pytest.mark.parametrize(
    ("key_type", "bits", "message"),
    [
        ("ed25519", 1024, "always 256"),
        ("rsa", 1024, "2048 to 16384"),
        ("ecdsa", 300, "256, 384 or 521"),
        ("dsa", None, "unknown key type"),
    ],
)
def test_bad_generate_options_are_clear(
    home: Path, key_type: str, bits: int | None, message: str
) -> None:
    with pytest.raises(KeyFileError, match=message):
        keys.generate_key(key_type=key_type, bits=bits)
    assert not (home / ".ssh").exists()


def test_comment_must_be_one_line(home: Path) -> None:
    with pytest.raises(KeyFileError, match="comment"):
        keys.generate_key(comment="a\nb")


def test_windows_path_creates_the_private_key_through_the_acl_code(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[tuple[Path, bytes]] = []

    def fake_create(path: Path, data: bytes, api: Any = None) -> None:
        made.append((path, data))
        path.write_bytes(data)

    monkeypatch.setattr(keys, "_on_windows", lambda: True)
    monkeypatch.setattr(winacl, "create_private_file", fake_create)
    monkeypatch.setattr(winacl, "file_acl_problem", lambda path, api=None: None)
    info = keys.generate_key()
    assert [p for p, _ in made] == [home / ".ssh" / "id_ed25519"]  # private key only
    assert asyncssh.import_private_key(made[0][1]).get_fingerprint() == info.fingerprint
    assert (home / ".ssh" / "id_ed25519.pub").read_text().startswith("ssh-ed25519 ")
    assert mode(info.path) == 0o644  # written by the fake with the umask...
    assert info.loose_permissions is False  # ...but mode bits mean nothing on Windows
    assert info.permissions_note is None


# ---------------------------------------------------------------------------------------------
# list / show / find


def test_list_matches_ssh_keygen_and_survives_garbage(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = home / ".ssh"
    d.mkdir(mode=0o700)
    keygen("-t", "ed25519", "-N", "pass-phrase", "-C", "enc@x", "-f", str(d / "id_ed25519"))
    keygen(
        "-t",
        "rsa",
        "-b",
        "2048",
        "-m",
        "PEM",
        "-N",
        "pass-phrase",
        "-C",
        "pem@x",
        "-f",
        str(d / "pem_rsa"),
    )
    keygen("-t", "ecdsa", "-b", "521", "-N", "", "-C", "ec@x", "-f", str(d / "work_ecdsa"))
    keygen("-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", "pass-phrase", "-f", str(d / "p8"))
    (d / "p8.pub").unlink()  # encrypted PKCS#8 without its .pub: no way to show the key
    (d / "id_garbage").write_bytes(b"\x00\x01 not a key")
    (d / "loose").write_bytes((d / "work_ecdsa").read_bytes())
    (d / "loose").chmod(0o644)
    (d / "loose.pub").write_bytes((d / "work_ecdsa.pub").read_bytes())
    (d / "agentonly.pub").write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl laptop\n"
    )
    (d / "putty.ppk").write_text("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n")
    (d / "unreadable_key").write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    for name in ("config", "known_hosts", "known_hosts.old", "authorized_keys", "id_x.bak"):
        (d / name).write_text("ssh-ed25519 AAAA\n")
    (d / "sockets").mkdir()
    real_read = keys._read_small

    def read_small(path: Path) -> bytes:
        if path.name == "unreadable_key":  # root reads every file: simulate EACCES
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    monkeypatch.setattr(keys, "_read_small", read_small)
    hosts = [
        HostSpec("box", "h1", identity_file="~/.ssh/work_ecdsa"),
        HostSpec("lab", "h2", identity_file=str(d / "work_ecdsa")),
        HostSpec("old", "h3", identity_file="~/keys/gone"),
        HostSpec("pubref", "h4", identity_file="~/.ssh/work_ecdsa.pub"),
    ]
    found = {k.name: k for k in keys.list_keys(hosts)}
    assert sorted(found) == [
        "agentonly.pub",
        "id_ed25519",
        "id_garbage",
        "loose",
        "p8",
        "pem_rsa",
        "putty.ppk",
        "unreadable_key",
        "work_ecdsa",
        "~/keys/gone",
    ]
    for name in ("id_ed25519", "pem_rsa", "work_ecdsa", "agentonly.pub"):
        k = found[name]
        bits, fp, comment, label = keygen_l(k.path)
        assert (k.bits, k.fingerprint, k.comment, k.key_type) == (bits, fp, comment, label)
        assert k.problem is None
    assert found["id_ed25519"].encrypted is True and found["pem_rsa"].encrypted is True
    assert found["work_ecdsa"].encrypted is False
    assert found["work_ecdsa"].hosts == ("box", "lab", "pubref")
    assert found["work_ecdsa"].public_line == (d / "work_ecdsa.pub").read_text().strip()
    assert found["agentonly.pub"].has_private is False
    assert found["p8"].encrypted is True and found["p8"].fingerprint is None
    assert "no .pub" in (found["p8"].problem or "")
    assert found["id_garbage"].problem == "not a private key file"
    assert "PuTTY" in (found["putty.ppk"].problem or "")
    assert found["unreadable_key"].problem == "unreadable: Permission denied"
    assert found["loose"].loose_permissions and not found["work_ecdsa"].loose_permissions
    gone = found["~/keys/gone"]
    assert (gone.problem, gone.hosts, gone.has_private) == ("missing", ("old",), False)
    assert all(k.in_agent is None for k in found.values())  # no agent given
    json.dumps([k.to_json() for k in found.values()])  # JSON-ready


def test_mismatched_pub_is_flagged_and_not_shown(home: Path) -> None:
    a = keys.generate_key(home / ".ssh" / "a")
    b = keys.generate_key(home / ".ssh" / "b")
    (home / ".ssh" / "a.pub").write_bytes((home / ".ssh" / "b.pub").read_bytes())
    info = keys.inspect_key(a.path)
    assert info.problem == "a.pub does not match the private key"
    with pytest.raises(KeyFileError, match="does not match"):
        keys.public_key_line(a.path)
    assert keys.public_key_line(b.path) == b.public_line


def test_show_gives_the_one_line_public_key(home: Path) -> None:
    info = keys.generate_key(comment="me@laptop")
    pub = (home / ".ssh" / "id_ed25519.pub").read_text().strip()
    assert keys.public_key_line(info.path) == pub
    assert pub.startswith("ssh-ed25519 AAAA") and pub.endswith(" me@laptop")


def test_find_key_by_name_path_pub_and_fingerprint(home: Path) -> None:
    info = keys.generate_key()
    assert keys.find_key("id_ed25519") == info.path
    assert keys.find_key("id_ed25519.pub") == info.path
    assert keys.find_key(str(info.path)) == info.path
    assert keys.find_key("~/.ssh/id_ed25519") == info.path
    assert keys.find_key(info.fingerprint or "") == info.path
    with pytest.raises(KeyFileError, match="no key 'nope'"):
        keys.find_key("nope")


async def test_agent_keys_are_marked(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await keys.agent_key_blobs() is None  # no SSH_AUTH_SOCK
    held = keys.generate_key(home / ".ssh" / "held")
    keys.generate_key(home / ".ssh" / "other")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(200):
            if sock.exists():
                break
            await asyncio.sleep(0.01)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", str(held.path)], env=env, check=True, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        blobs = await keys.agent_key_blobs()
        assert blobs is not None and held.public_blob in blobs
        marks = {k.name: k.in_agent for k in keys.list_keys(agent_blobs=blobs)}
        assert marks == {"held": True, "other": False}
    finally:
        agent.terminate()
        agent.wait(5)


# ---------------------------------------------------------------------------------------------
# authorized_keys matching


ENTRY_LINE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@x"


@pytest.mark.parametrize(
    ("text", "present"),
    [
        ("", False),
        (ENTRY_LINE + "\n", True),
        (
            "ssh-ed25519   AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\r\n",
            True,
        ),
        ('restrict,command="echo hi there" ' + ENTRY_LINE.replace("me@x", "other comment"), True),
        ("  \t" + ENTRY_LINE, True),
        ("# " + ENTRY_LINE + "\n", False),
        (
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJm x\n",
            False,
        ),
    ],
)
def test_authorized_keys_has_ignores_spacing_options_and_comment(text: str, present: bool) -> None:
    entry = keys.parse_public_line(ENTRY_LINE)
    assert keys.authorized_keys_has(text, entry) is present


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "ssh-ed25519",
        "ssh-ed25519 !!!",
        "a\nb",
        "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    ],
)
def test_parse_public_line_refuses_garbage(bad: str) -> None:
    with pytest.raises(KeyInstallError):
        keys.parse_public_line(bad)


def test_parse_public_line_cleans_the_comment() -> None:
    entry = keys.parse_public_line(ENTRY_LINE.replace("me@x", "me\x1b[31m  @x"))
    assert entry.comment == "me [31m @x" and "\x1b" not in entry.line


# ---------------------------------------------------------------------------------------------
# install against real servers


def ssh_login(server: Sshd, user: str, key: Path) -> subprocess.CompletedProcess[str]:
    argv = server.ssh_argv("echo", "in-with-key", user=user, key=key)
    return subprocess.run(argv, capture_output=True, text=True, timeout=20)


async def password_conn(server: Sshd, user: ThrowawayUser) -> asyncssh.SSHClientConnection:
    return await asyncssh.connect(
        "127.0.0.1",
        server.port,
        username=user.name,
        password=user.password,
        known_hosts=asyncssh.import_known_hosts(server.known_hosts_line() + "\n"),
        client_keys=None,
        agent_path=None,
        preferred_auth="password",
    )


@pytest.fixture
def host_sshd(sshd_factory: Callable[..., Sshd]) -> Sshd:
    return sshd_factory(REAL_HOST_CONFIG)


async def test_install_over_sftp_for_a_password_only_user(
    home: Path, host_sshd: Sshd, throwaway_user: ThrowawayUser
) -> None:
    info = keys.generate_key()
    assert info.public_line
    assert ssh_login(host_sshd, throwaway_user.name, info.path).returncode != 0
    async with await password_conn(host_sshd, throwaway_user) as conn:
        result = await keys.install_public_key(conn, info.public_line)
        again = await keys.install_public_key(conn, info.public_line)
    assert result == keys.InstallResult(True, "sftp", created_dir=True, created_file=True)
    assert again == keys.InstallResult(False, "sftp")
    ssh_dir = throwaway_user.home / ".ssh"
    auth = ssh_dir / "authorized_keys"
    assert (mode(ssh_dir), mode(auth)) == (0o700, 0o600)
    uid = pwd.getpwnam(throwaway_user.name).pw_uid
    assert ssh_dir.stat().st_uid == uid and auth.stat().st_uid == uid
    assert auth.read_text() == info.public_line + "\n"  # one line, installed once
    done = ssh_login(host_sshd, throwaway_user.name, info.path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "in-with-key"


async def test_install_appends_once_to_an_existing_file(
    home: Path, host_sshd: Sshd, throwaway_user: ThrowawayUser
) -> None:
    info = keys.generate_key()
    other = keys.generate_key(home / ".ssh" / "other", comment="other")
    assert info.public_line and other.public_line
    ssh_dir = throwaway_user.home / ".ssh"
    ssh_dir.mkdir(mode=0o775)
    auth = ssh_dir / "authorized_keys"
    auth.write_text(f"# managed by hand\n{other.public_line}")  # no final newline
    os.chmod(ssh_dir, 0o775)  # group-writable: sshd's StrictModes would ignore the keys
    uid = pwd.getpwnam(throwaway_user.name).pw_uid
    for p in (ssh_dir, auth):
        os.chown(p, uid, uid)
    async with await password_conn(host_sshd, throwaway_user) as conn:
        result = await keys.install_public_key(conn, info.public_line)
        # The same key with other spacing and comment counts as present.
        blob = info.public_line.split()[1]
        again = await keys.install_public_key(conn, f"ssh-ed25519   {blob}   another comment")
    assert result.added and not result.created_dir and not result.created_file
    assert result.fixed_modes == ("~/.ssh 775 -> 755",)
    assert not again.added
    assert auth.read_text() == f"# managed by hand\n{other.public_line}\n{info.public_line}\n"
    assert ssh_login(host_sshd, throwaway_user.name, info.path).returncode == 0
    assert ssh_login(host_sshd, throwaway_user.name, other.path).returncode == 0


async def test_install_without_sftp_uses_a_fixed_command(
    home: Path, sshd_factory: Callable[..., Sshd], throwaway_user: ThrowawayUser
) -> None:
    # Only a differently named subsystem: requests for "sftp" are refused.
    server = sshd_factory([*REAL_HOST_CONFIG, "Subsystem not-sftp /bin/false"])
    info = keys.generate_key()
    assert info.public_line
    async with await password_conn(server, throwaway_user) as conn:
        with pytest.raises((asyncssh.ChannelOpenError, asyncssh.SFTPError)):
            await conn.start_sftp_client()
        result = await keys.install_public_key(conn, info.public_line)
        again = await keys.install_public_key(conn, info.public_line)
    assert result == keys.InstallResult(True, "shell", created_dir=True, created_file=True)
    assert again == keys.InstallResult(False, "shell")
    ssh_dir = throwaway_user.home / ".ssh"
    assert (mode(ssh_dir), mode(ssh_dir / "authorized_keys")) == (0o700, 0o600)
    assert (ssh_dir / "authorized_keys").read_text() == info.public_line + "\n"
    assert ssh_login(server, throwaway_user.name, info.path).returncode == 0


async def test_install_on_in_process_server_then_openssh_accepts_the_file(
    home: Path, asyncssh_server: AsyncsshServer, sshd: Sshd
) -> None:
    """Without root (no throwaway user): password login to asyncssh's SFTP, then the
    file it wrote is handed to a real sshd, and `ssh -i KEY` logs in with it."""
    info = keys.generate_key()
    assert info.public_line
    async with await asyncssh_server.connect(DEFAULT_USER, password=DEFAULT_PASSWORD) as conn:
        result = await keys.install_public_key(conn, info.public_line)
        again = await keys.install_public_key(conn, info.public_line)
    assert result == keys.InstallResult(True, "sftp", created_dir=True, created_file=True)
    assert not again.added
    ssh_dir = asyncssh_server.home / ".ssh"
    auth = ssh_dir / "authorized_keys"
    assert (mode(ssh_dir), mode(auth)) == (0o700, 0o600)
    assert auth.read_text() == info.public_line + "\n"
    sshd.authorize(sshd.user, auth.read_text())
    assert ssh_login(sshd, sshd.user, info.path).returncode == 0


async def test_host_refusing_sftp_and_commands_gives_a_clear_message(home: Path) -> None:
    info = keys.generate_key()
    assert info.public_line
    async with (
        AsyncsshServer({"u": "pw"}, sftp=False) as server,
        await server.connect("u", password="pw") as conn,
    ):
        with pytest.raises(KeyInstallError) as caught:
            await keys.install_public_key(conn, info.public_line)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("the host refuses SFTP (")
    assert "web console" in message and "devtui keys show" in message


async def test_permission_denied_on_the_host_is_clear(
    home: Path, host_sshd: Sshd, throwaway_user: ThrowawayUser
) -> None:
    info = keys.generate_key()
    assert info.public_line
    ssh_dir = throwaway_user.home / ".ssh"
    ssh_dir.mkdir(mode=0o755)  # owned by root: the user cannot add a file to it
    async with await password_conn(host_sshd, throwaway_user) as conn:
        with pytest.raises(KeyInstallError, match="permission denied") as caught:
            await keys.install_public_key(conn, info.public_line)
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------------------------------------
# the CLI


def write_config(home: Path, port: int, user: str, known_hosts_line: str) -> Path:
    (home / ".ssh").mkdir(mode=0o700, exist_ok=True)
    (home / ".ssh" / "known_hosts").write_text(known_hosts_line + "\n")
    config = home / "devtui.toml"
    config.write_text(
        f'# my hosts\n[hosts.box]\nhostname = "127.0.0.1"\nport = {port}\nuser = "{user}"\n'
    )
    return config


def run_cli(
    argv: list[str], capsys: pytest.CaptureFixture[str], stdin: str = ""
) -> tuple[int, str, str]:
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = main(argv)
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_generate_list_show(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["keys", "generate", "--no-passphrase", "--comment", "me@pc"], capsys)
    assert code == 0, err
    pub = (home / ".ssh" / "id_ed25519.pub").read_text().strip()
    assert "Generated a new ED25519 key (256 bits), without a passphrase." in out
    assert "~/.ssh/id_ed25519" in out and out.rstrip().endswith(pub)
    code, out, err = run_cli(["keys", "generate", "--no-passphrase"], capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "already exists" in err
    code, out, _ = run_cli(["keys", "show", "id_ed25519"], capsys)
    assert (code, out) == (0, pub + "\n")
    code, out, _ = run_cli(["keys", "list", "--json"], capsys)
    (listed,) = json.loads(out)
    assert listed["fingerprint"] == keygen_l(home / ".ssh" / "id_ed25519")[1]
    assert (listed["type"], listed["bits"], listed["passphrase"]) == ("ED25519", 256, False)
    code, out, _ = run_cli(["keys", "list"], capsys)
    assert code == 0 and out.splitlines()[0].split()[:3] == ["NAME", "TYPE", "FINGERPRINT"]
    assert "id_ed25519" in out and listed["fingerprint"] in out
    code, _, err = run_cli(["keys", "show", "missing"], capsys)
    assert code == 1 and err.startswith("devtui: error: no key 'missing'")


def test_cli_generate_passphrase_from_stdin(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        ["keys", "generate", "--type", "ecdsa", "--path", str(home / "k")],
        capsys,
        "s3cret\ns3cret\n",
    )
    assert code == 0, err
    assert "with a passphrase" in out
    ok = subprocess.run(
        ["ssh-keygen", "-y", "-P", "s3cret", "-f", str(home / "k")], capture_output=True
    )
    assert ok.returncode == 0
    code, _, err = run_cli(["keys", "generate", "--path", str(home / "k2")], capsys, "one\ntwo\n")
    assert code == 1 and "do not match" in err and not (home / "k2").exists()
    # No terminal and no input at all: nobody chose "no passphrase", so nothing is made.
    code, _, err = run_cli(["keys", "generate", "--path", str(home / "k3")], capsys, "")
    assert code == 1 and "--no-passphrase" in err and not (home / "k3").exists()
    # An empty line is that choice, said on purpose.
    code, out, err = run_cli(["keys", "generate", "--path", str(home / "k4")], capsys, "\n")
    assert code == 0 and "without a passphrase" in out, err


def test_cli_install_with_password_then_key(
    home: Path,
    host_sshd: Sshd,
    throwaway_user: ThrowawayUser,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(home, host_sshd.port, throwaway_user.name, host_sshd.known_hosts_line())
    assert run_cli(["keys", "generate", "--no-passphrase"], capsys)[0] == 0
    argv = ["keys", "install", "id_ed25519", "box", "--password-stdin", "--set-identity"]
    code, out, err = run_cli(argv, capsys, throwaway_user.password + "\n")
    assert code == 0, err
    assert "Added the key to ~/.ssh/authorized_keys on box (created ~/.ssh (mode 700); " in out
    assert "Logged in to box with ~/.ssh/id_ed25519 alone: the key works." in out
    assert 'Set identity_file = "~/.ssh/id_ed25519" for box' in out
    text = config.read_text()
    assert text.startswith("# my hosts\n") and 'identity_file = "~/.ssh/id_ed25519"' in text
    # Again: the key logs in by itself now (no password given), and nothing is added twice.
    code, out, err = run_cli(["keys", "install", "id_ed25519", "box"], capsys)
    assert code == 0, err
    assert "already in ~/.ssh/authorized_keys on box; nothing changed" in out
    assert "Set identity_file" not in out
    auth = throwaway_user.home / ".ssh" / "authorized_keys"
    assert len(auth.read_text().splitlines()) == 1
    assert ssh_login(host_sshd, throwaway_user.name, home / ".ssh" / "id_ed25519").returncode == 0


def test_cli_wrong_password_is_one_clear_line(
    home: Path, host_sshd: Sshd, throwaway_user: ThrowawayUser, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(home, host_sshd.port, throwaway_user.name, host_sshd.known_hosts_line())
    keys.generate_key()
    argv = ["keys", "install", "id_ed25519", "box", "--password-stdin"]
    started = time.monotonic()
    code, _, err = run_cli(argv, capsys, "not-the-password\n")
    assert time.monotonic() - started < 20
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[-1].startswith("devtui: error: login refused")
    assert "password" in lines[-1] and "Traceback" not in err
    assert not (throwaway_user.home / ".ssh").exists()


def test_cli_host_refusing_sftp_and_commands(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys.generate_key()

    async def scenario() -> tuple[int, str, str]:
        async with AsyncsshServer({"u": "pw"}, sftp=False) as server:
            write_config(home, server.port, "u", server.known_hosts_line())
            argv = ["keys", "install", "id_ed25519", "box", "--password-stdin"]
            return await asyncio.to_thread(run_cli, argv, capsys, "pw\n")

    code, _, err = asyncio.run(scenario())
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("devtui: error: the host refuses SFTP (")


def test_cli_install_unknown_host(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys.generate_key()
    code, _, err = run_cli(["keys", "install", "id_ed25519", "nohost"], capsys)
    assert code == 1 and "no host named 'nohost'" in err and err.count("\n") == 1


def test_no_posix_only_module_imports() -> None:
    # These modules must import on Windows: no top-level pwd/grp/fcntl/termios/resource/tty.
    import tui.cli.key_commands

    for module in (keys, winacl, tui.cli.key_commands):
        source = Path(module.__file__ or "").read_text()
        for name in ("pwd", "grp", "fcntl", "termios", "resource", "tty"):
            assert f"\nimport {name}\n" not in source and f"\nfrom {name} " not in source


def test_cli_passphrase_is_asked_twice_masked_on_a_terminal(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import getpass

    import tui.cli.key_commands

    asked: list[str] = []
    answers = iter(["pass phrase", "pass phrase", "one", "two"])

    def fake_getpass(prompt: str = "") -> str:
        asked.append(prompt)
        return next(answers)

    monkeypatch.setattr(tui.cli.key_commands, "_stdin_is_tty", lambda: True)
    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    code, out, err = run_cli(["keys", "generate"], capsys)
    assert code == 0, err
    assert asked == ["Passphrase (empty for none): ", "Same passphrase again: "]
    assert "with a passphrase" in out and "pass phrase" not in out
    assert keys.inspect_key(home / ".ssh" / "id_ed25519").encrypted is True
    code, _, err = run_cli(["keys", "generate", "--path", str(home / "k2")], capsys)
    assert code == 1 and "do not match" in err and not (home / "k2").exists()
    asked.clear()  # bad options are refused before anyone types a passphrase
    code, _, err = run_cli(
        ["keys", "generate", "--bits", "1024", "--path", str(home / "k3")], capsys
    )
    assert code == 1 and "always 256" in err and asked == []


def test_cli_install_of_a_passphrase_key_says_the_login_was_not_tested(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys.generate_key(passphrase="pass phrase")

    async def scenario() -> tuple[int, str, str]:
        async with AsyncsshServer({"u": "pw"}) as server:
            write_config(home, server.port, "u", server.known_hosts_line())
            argv = ["keys", "install", "id_ed25519", "box", "--password-stdin"]
            result = await asyncio.to_thread(run_cli, argv, capsys, "pw\n")
            assert (server.home / ".ssh" / "authorized_keys").read_text().startswith("ssh-ed25519 ")
            return result

    code, out, err = asyncio.run(scenario())
    assert code == 0, err
    assert "Added the key" in out and "did not test the login" in out


def test_non_ascii_comment_is_written_and_printed_safely(home: Path) -> None:
    # The default comment is user@machine, and Windows user names are often not ASCII.
    info = keys.generate_key(comment="李明@pc")
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(info.path)], capture_output=True, text=True
    )
    assert listed.returncode == 0 and "李明@pc" in listed.stdout
    # A PowerShell pipe in a legacy code page: the key still prints, the comment as "?".
    env = {**os.environ, "PYTHONIOENCODING": "cp1252"}
    shown = subprocess.run(
        [sys.executable, "-m", "tui", "keys", "show", str(info.path)], capture_output=True, env=env
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(b"ssh-ed25519 AAAA") and shown.stdout.rstrip().endswith(b"??@pc")


# ---------------------------------------------------------------------------------------------
# loose permissions: marked in the list with the fix, and fixed by fix-permissions


def test_the_os_is_decided_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    assert keys._on_windows() is (os.name == "nt")
    monkeypatch.setattr(os, "name", "nt")  # only for this call: pathlib follows os.name too
    on_windows = keys._on_windows()
    monkeypatch.undo()
    assert on_windows is True


def keygen_y(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh-keygen", "-y", "-f", str(path)], capture_output=True, text=True, timeout=60
    )


def test_loose_key_is_listed_with_its_fix_and_fixed_for_openssh(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    info = keys.generate_key(comment="me@pc")
    key = info.path
    key.chmod(0o644)
    refused = keygen_y(key)  # OpenSSH's own check (sshkey_perm_ok), as ssh -i would apply it
    assert refused.returncode != 0 and "UNPROTECTED PRIVATE KEY FILE" in refused.stderr
    code, out, _ = run_cli(["keys", "list"], capsys)
    assert code == 0
    assert (
        "mode 644, other users can read it: ssh refuses it "
        "(fix: devtui keys fix-permissions id_ed25519)"
    ) in out
    code, out, _ = run_cli(["keys", "list", "--json"], capsys)
    (listed,) = json.loads(out)
    assert listed["loose_permissions"] is True
    assert listed["permissions_note"] == "mode 644, other users can read it"

    code, out, err = run_cli(["keys", "fix-permissions", "id_ed25519"], capsys)
    assert (code, err) == (0, "")
    assert out == "~/.ssh/id_ed25519: mode 644 -> 600 (only you have access now)\n"
    assert mode(key) == 0o600
    assert mode(public_path(key)) == 0o644  # the public key stays readable
    accepted = keygen_y(key)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.split()[:2] == (info.public_line or "").split()[:2]
    code, out, _ = run_cli(["keys", "list"], capsys)
    assert code == 0 and "fix-permissions" not in out and "mode" not in out
    code, out, _ = run_cli(["keys", "list", "--json"], capsys)
    (listed,) = json.loads(out)
    assert (listed["loose_permissions"], listed["permissions_note"]) == (False, None)

    code, out, _ = run_cli(["keys", "fix-permissions", str(key)], capsys)
    assert (code, out) == (
        0,
        "~/.ssh/id_ed25519: mode 600, only you have access already; nothing changed\n",
    )


def public_path(key: Path) -> Path:
    return keys.public_path_of(key)


@pytest.mark.parametrize(
    ("file_mode", "note"),
    [
        (0o604, "mode 604, other users can read it"),
        (0o640, "mode 640, its group can read it"),
        (0o620, "mode 620, its group can change it"),
        (0o602, "mode 602, other users can change it"),
        (0o601, "mode 601, other users have access"),
        (0o610, "mode 610, its group has access"),
        (0o600, None),
        (0o400, None),
    ],
)
def test_posix_note_says_who_else_has_access(home: Path, file_mode: int, note: str | None) -> None:
    info = keys.generate_key()
    info.path.chmod(file_mode)
    got = keys.inspect_key(info.path)
    assert (got.loose_permissions, got.permissions_note) == (note is not None, note)
    assert (keygen_y(info.path).returncode == 0) is (note is None)  # OpenSSH agrees


def test_fix_permissions_of_a_passphrase_key_and_by_its_pub(home: Path) -> None:
    info = keys.generate_key(passphrase="pass phrase")
    info.path.chmod(0o640)
    assert keys.fix_permissions(public_path(info.path)) == (
        "~/.ssh/id_ed25519: mode 640 -> 600 (only you have access now)"
    )
    assert mode(info.path) == 0o600 and mode(public_path(info.path)) == 0o644


def test_fix_permissions_refuses_what_is_not_a_private_key(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    info = keys.generate_key()
    d = home / ".ssh"
    (d / "junk").write_bytes(b"\x00 not a key")
    (d / "lone.pub").write_bytes(public_path(info.path).read_bytes())
    (d / "putty.ppk").write_text("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n")
    (d / "folder").mkdir()
    (d / "locked").write_bytes(info.path.read_bytes())
    real_read = keys._read_small

    def read_small(path: Path) -> bytes:
        if path.name == "locked":  # root reads every file: simulate EACCES
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    monkeypatch.setattr(keys, "_read_small", read_small)
    cases = {
        "junk": "~/.ssh/junk is not a private key file",
        "lone.pub": "~/.ssh/lone.pub is a public key; only private keys need to be owner-only",
        "putty.ppk": "~/.ssh/putty.ppk is a PuTTY .ppk key: export it in OpenSSH format",
        "folder": "~/.ssh/folder is not a file",
        "gone": "~/.ssh/gone does not exist",
        "locked": "cannot read ~/.ssh/locked: Permission denied",
    }
    for name, message in cases.items():
        with pytest.raises(KeyFileError) as caught:
            keys.fix_permissions(d / name)
        assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    for name in ("junk", "lone.pub", "putty.ppk"):
        assert mode(d / name) == 0o644  # refused files are left alone
    code, out, err = run_cli(["keys", "fix-permissions", "junk"], capsys)
    assert (code, out) == (1, "")
    assert err == "devtui: error: ~/.ssh/junk is not a private key file\n"


def test_list_hint_quotes_a_name_with_spaces() -> None:
    import tui.cli.key_commands

    info = keys.KeyInfo(
        path=Path("/x/my keys/id x"),
        name="~/my keys/id x",
        has_private=True,
        loose_permissions=True,
        permissions_note="Everyone (WD) can read it",
    )
    assert tui.cli.key_commands._flags(info) == (
        "Everyone (WD) can read it: ssh refuses it "
        "(fix: devtui keys fix-permissions '~/my keys/id x')"
    )


# -- the same on Windows: keys.py asks winacl (faked here at its WinApi protocol) -------------

WIN_USER = "S-1-5-21-1004336348-1177238915-682003330-1001"
# A key copied in from a share: it inherited "Users: read & execute" from the folder.
WIN_COPIED = (
    f"O:{WIN_USER}G:{WIN_USER}D:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;FA;;;{WIN_USER})"
    "(A;ID;0x1200a9;;;BU)"
)


class FakeAcls:
    """`winacl.WinApi` answering as Windows would: one SDDL per file; changes are logged."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}
        self.sets: list[tuple[str, str, int]] = []
        self.refuse: OSError | None = None
        self.ignore_sets = False

    def current_user_sid(self) -> str:
        return WIN_USER

    def security_descriptor(self, sddl: str) -> int:
        self.built = sddl
        return 1

    def descriptor_sddl(self, descriptor: int, information: int) -> str:
        return self.built

    def free(self, pointer: int) -> None:
        pass

    def file_sddl(self, path: str) -> str:
        if path not in self.files:
            raise OSError(f"GetNamedSecurityInfoW({path}) failed (Windows error 2)")
        return self.files[path]

    def set_file_security(self, path: str, sddl: str, information: int) -> None:
        self.sets.append((path, sddl, information))
        if self.refuse:
            raise self.refuse
        if not self.ignore_sets:
            self.files[path] = sddl.replace("S-1-5-18", "SY").replace("S-1-5-32-544", "BA")


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> FakeAcls:
    """keys.py believes it runs on Windows; winacl's Win32 calls go to a FakeAcls."""
    acls = FakeAcls()
    monkeypatch.setattr(keys, "_on_windows", lambda: True)
    monkeypatch.setattr(winacl.Win32Api, "load", lambda: acls)
    return acls


def test_on_windows_the_acl_decides_not_the_mode(home: Path, windows: FakeAcls) -> None:
    key = home / ".ssh" / "k"
    key.parent.mkdir(mode=0o700)
    key.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    key.chmod(0o600)  # fine by POSIX rules...
    windows.files[str(key)] = WIN_COPIED
    info = keys.inspect_key(key)  # ...too open by the ACL
    assert info.loose_permissions is True
    assert info.permissions_note == "Users (BU) can read it (inherited from its folder)"
    key.chmod(0o644)  # loose by POSIX rules, fine by the ACL
    windows.files[str(key)] = f"O:{WIN_USER}D:P(A;;FA;;;{WIN_USER})(A;;FA;;;SY)(A;;FA;;;BA)"
    info = keys.inspect_key(key)
    assert (info.loose_permissions, info.permissions_note) == (False, None)
    del windows.files[str(key)]  # the ACL cannot be read: say so, do not guess
    info = keys.inspect_key(key)
    assert info.loose_permissions is False and info.problem is None
    assert info.permissions_note == (
        f"could not check its ACL (GetNamedSecurityInfoW({key}) failed (Windows error 2))"
    )


def test_on_windows_list_and_fix_permissions_use_the_acl(
    home: Path, windows: FakeAcls, capsys: pytest.CaptureFixture[str]
) -> None:
    key = home / ".ssh" / "id_ed25519"
    key.parent.mkdir(mode=0o700)
    key.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    key.chmod(0o644)
    windows.files[str(key)] = WIN_COPIED
    code, out, _ = run_cli(["keys", "list"], capsys)
    assert code == 0
    assert (
        "Users (BU) can read it (inherited from its folder): ssh refuses it "
        "(fix: devtui keys fix-permissions id_ed25519)"
    ) in out
    code, out, err = run_cli(["keys", "fix-permissions", "id_ed25519"], capsys)
    assert (code, err) == (0, "")
    assert out == (
        "~/.ssh/id_ed25519: only you, SYSTEM and Administrators have access now "
        "(before: Users (BU) can read it (inherited from its folder))\n"
    )
    # The owner (the user) is fine, so only the DACL is replaced, and protected.
    protected_dacl = winacl.DACL_SECURITY_INFORMATION | winacl.PROTECTED_DACL_SECURITY_INFORMATION
    assert windows.sets == [(str(key), winacl.owner_only_sddl(WIN_USER), protected_dacl)]
    assert mode(key) == 0o644  # no chmod on Windows
    code, out, _ = run_cli(["keys", "list"], capsys)
    assert code == 0 and "fix-permissions" not in out and "BU" not in out
    code, out, _ = run_cli(["keys", "fix-permissions", "id_ed25519"], capsys)
    assert out == (
        "~/.ssh/id_ed25519: only you, SYSTEM and Administrators have access already; "
        "nothing changed\n"
    )
    assert len(windows.sets) == 1


def test_on_windows_fix_failures_are_one_clear_line(home: Path, windows: FakeAcls) -> None:
    key = home / "id_rsa"
    key.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    windows.files[str(key)] = "O:S-1-5-21-1-2-3-1002D:(A;;FA;;;S-1-5-21-1-2-3-1002)"
    windows.refuse = OSError(
        f"SetNamedSecurityInfoW({key}) failed (Windows error 5: access denied)"
    )
    with pytest.raises(KeyFileError) as caught:
        keys.fix_permissions(key)
    assert str(caught.value) == (
        f"cannot change the ACL of ~/id_rsa: SetNamedSecurityInfoW({key}) failed "
        "(Windows error 5: access denied)"
    )
    everything = (
        winacl.OWNER_SECURITY_INFORMATION
        | winacl.DACL_SECURITY_INFORMATION
        | winacl.PROTECTED_DACL_SECURITY_INFORMATION
    )
    assert windows.sets == [(str(key), winacl.owner_only_sddl(WIN_USER), everything)]
    windows.refuse = None
    windows.ignore_sets = True  # e.g. a drive that keeps no ACLs
    with pytest.raises(
        KeyFileError, match="still too open: owned by the account S-1-5-21-1-2-3-1002"
    ):
        keys.fix_permissions(key)
