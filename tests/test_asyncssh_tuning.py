"""sshcore.asyncssh_tuning: no empty MSG_IGNORE per packet on AEAD ciphers, data intact.

The MSG_IGNORE packets are counted where they arrive: in a real OpenSSH sshd's DEBUG3 log
("Received SSH2_MSG_IGNORE") and in an in-process asyncssh server's packet log.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import asyncssh
import pytest
from asyncssh.connection import SSHConnection, SSHServerConnection
from asyncssh.constants import MSG_IGNORE
from asyncssh.encryption import get_default_encryption_algs, get_encryption_algs
from harness.asyncssh_server import DEFAULT_USER, AsyncsshServer
from harness.net import EchoServer
from harness.sshd import Sshd

from sshcore import asyncssh_tuning

AEAD = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"]
NON_AEAD = "aes128-ctr"  # with hmac-sha2-256 (encrypt-and-MAC)
SSHD_IGNORE_LINE = "Received SSH2_MSG_IGNORE"
PAYLOAD = 2 * 1024 * 1024 + 123  # many full packets each way, and a partial one


@pytest.fixture(autouse=True)
def restore_patch_state() -> Iterator[None]:
    """Leave the patch as it was found (other code may apply it at import)."""
    was_applied = asyncssh_tuning.is_applied()
    yield
    if was_applied:
        asyncssh_tuning.apply()
    else:
        asyncssh_tuning.revert()


def cipher_options(cipher: str) -> dict[str, Any]:
    options: dict[str, Any] = {"encryption_algs": [cipher]}
    if cipher == NON_AEAD:
        options["mac_algs"] = ["hmac-sha2-256"]
    return options


async def echo_through(conn: asyncssh.SSHClientConnection, port: int, nbytes: int) -> None:
    """Send `nbytes` random bytes through a direct-tcpip channel to an echo server, EOF, and
    check that exactly the same bytes come back."""
    reader, writer = await conn.open_connection("127.0.0.1", port)
    data = os.urandom(nbytes)

    async def send() -> None:
        for i in range(0, nbytes, 100_000):
            writer.write(data[i : i + 100_000])
            await writer.drain()
        writer.write_eof()

    sent, got = await asyncio.gather(send(), reader.read())
    del sent
    writer.close()
    assert len(got) == nbytes
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


# -- the switch -------------------------------------------------------------------------------


def test_apply_is_idempotent_and_revertible() -> None:
    asyncssh_tuning.revert()
    original = SSHConnection.send_packet
    assert not asyncssh_tuning.is_applied()
    assert asyncssh_tuning.apply() is asyncssh_tuning.supported()
    if not asyncssh_tuning.supported():
        pytest.skip(f"asyncssh {asyncssh.__version__}: the fast path stands down here")
    patched = SSHConnection.send_packet
    assert patched is not original
    assert asyncssh_tuning.apply() is True
    assert SSHConnection.send_packet is patched  # not wrapped twice
    asyncssh_tuning.revert()
    assert SSHConnection.send_packet is original
    asyncssh_tuning.revert()
    assert SSHConnection.send_packet is original


def test_untested_asyncssh_version_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    asyncssh_tuning.revert()
    original = SSHConnection.send_packet
    monkeypatch.setattr(asyncssh, "__version__", "2.99.0")
    assert not asyncssh_tuning.supported()
    assert asyncssh_tuning.apply() is False
    assert SSHConnection.send_packet is original
    assert asyncssh_tuning.supported("2.24.1")


def test_untested_version_says_why_once_in_the_log_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from sshcore.config import Config
    from sshcore.core import Core

    asyncssh_tuning.revert()
    monkeypatch.setattr(asyncssh, "__version__", "2.99.0")
    assert asyncssh_tuning.apply() is False
    log = tmp_path / "devtui.log"
    core = Core(Config.load(tmp_path / "config.toml"), log_file=log)
    asyncio.run(core.close())
    lines = [line for line in log.read_text().splitlines() if "asyncssh" in line]
    assert len(lines) == 1, lines
    assert "asyncssh 2.99.0 stock" in lines[0] and "tested with 2.24.1" in lines[0]


def test_stock_on_purpose_with_the_environment_variable(tmp_path: Any) -> None:
    """DEVTUI_ASYNCSSH_STOCK=1: asyncssh exactly as released, even on a tested version."""
    import subprocess
    import sys

    probe = (
        "import sshcore.session, sshcore.asyncssh_tuning as t;"
        " print(t.is_applied(), t.fastpath_applied(), t.status())"
    )
    env = {**os.environ, "DEVTUI_ASYNCSSH_STOCK": "1"}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split()[:2] == ["False", "False"], done.stdout
    assert "stock (DEVTUI_ASYNCSSH_STOCK=1)" in done.stdout
    env["DEVTUI_ASYNCSSH_STOCK"] = "0"
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    expected = str(asyncssh_tuning.supported())
    assert done.stdout.split()[:2] == [expected, expected], done.stdout


def test_preferred_encryption_algs() -> None:
    defaults = [a.decode() for a in get_default_encryption_algs()]
    available = {a.decode() for a in get_encryption_algs()}
    with_aes = asyncssh_tuning.preferred_encryption_algs(hardware_aes=True)
    assert with_aes[:2] == ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
    assert sorted(with_aes) == sorted(defaults)  # a reordering, nothing added or lost
    assert set(with_aes) <= available
    assert asyncssh_tuning.preferred_encryption_algs(hardware_aes=False) == defaults
    assert asyncssh_tuning.preferred_encryption_algs() in (with_aes, defaults)


# -- against a real OpenSSH sshd --------------------------------------------------------------


async def sshd_log(
    sshd_factory: Callable[..., Sshd], echo: EchoServer, cipher: str, **options: Any
) -> str:
    """Connect with `cipher`, echo PAYLOAD through a forward; returns sshd's DEBUG3 log."""
    sshd = sshd_factory(["LogLevel DEBUG3"])
    key = sshd.client_key()
    async with asyncssh.connect(
        "127.0.0.1",
        sshd.port,
        username=sshd.user,
        client_keys=[str(key)],
        known_hosts=asyncssh.import_known_hosts(sshd.known_hosts_line() + "\n"),
        agent_path=None,
        config=None,
        **cipher_options(cipher),
        **options,
    ) as conn:
        assert conn.get_extra_info("send_cipher") == cipher
        assert conn.get_extra_info("recv_cipher") == cipher
        await echo_through(conn, echo.port, PAYLOAD)
    # Every packet the client sent was read before sshd answered the last of the data.
    return sshd.log_text()


async def sshd_ignores(
    sshd_factory: Callable[..., Sshd], echo: EchoServer, cipher: str, **options: Any
) -> int:
    """Connect with `cipher`, echo PAYLOAD through a forward; the MSG_IGNOREs sshd got."""
    log = await sshd_log(sshd_factory, echo, cipher, **options)
    return log.count(SSHD_IGNORE_LINE)


@pytest.mark.parametrize("cipher", AEAD)
async def test_sshd_receives_no_msg_ignore_on_aead(
    sshd_factory: Callable[..., Sshd], echo_server: EchoServer, cipher: str
) -> None:
    if not asyncssh_tuning.apply():
        pytest.skip(f"asyncssh {asyncssh.__version__}: the fast path stands down here")
    assert await sshd_ignores(sshd_factory, echo_server, cipher) == 0


async def test_sshd_still_receives_msg_ignore_on_non_aead(
    sshd_factory: Callable[..., Sshd], echo_server: EchoServer
) -> None:
    asyncssh_tuning.apply()
    # One before each post-kex packet: at least one per 32 KiB data packet.
    assert await sshd_ignores(sshd_factory, echo_server, NON_AEAD) > PAYLOAD // 32768


async def test_sshd_receives_msg_ignore_without_the_patch(
    sshd_factory: Callable[..., Sshd], echo_server: EchoServer
) -> None:
    """The control: the counter sees them, so the zero above is the patch's doing."""
    asyncssh_tuning.revert()
    count = await sshd_ignores(sshd_factory, echo_server, "aes128-gcm@openssh.com")
    assert count > PAYLOAD // 32768


async def test_sshd_rekey_with_the_patch(
    sshd_factory: Callable[..., Sshd], echo_server: EchoServer
) -> None:
    """Key re-exchanges mid-stream (client side, every 256 KiB) keep the stream intact."""
    if not asyncssh_tuning.apply():
        pytest.skip(f"asyncssh {asyncssh.__version__}: the fast path stands down here")
    log = await sshd_log(
        sshd_factory, echo_server, "aes128-gcm@openssh.com", rekey_bytes=256 * 1024
    )
    assert log.count("SSH2_MSG_NEWKEYS received") > 2  # the first kex and re-exchanges
    assert log.count(SSHD_IGNORE_LINE) == 0


# -- against an in-process asyncssh server ----------------------------------------------------


@pytest.fixture
def server_ignores(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per MSG_IGNORE any in-process asyncssh server connection receives."""
    seen: list[int] = []
    original = SSHServerConnection.log_received_packet

    def spy(self: Any, pkttype: int, *args: Any, **kwargs: Any) -> None:
        if pkttype == MSG_IGNORE:
            seen.append(pkttype)
        original(self, pkttype, *args, **kwargs)

    monkeypatch.setattr(SSHServerConnection, "log_received_packet", spy)
    return seen


@pytest.mark.parametrize("cipher", [*AEAD, NON_AEAD])
async def test_asyncssh_server(
    asyncssh_server: AsyncsshServer,
    echo_server: EchoServer,
    server_ignores: list[int],
    cipher: str,
) -> None:
    if not asyncssh_tuning.apply():
        pytest.skip(f"asyncssh {asyncssh.__version__}: the fast path stands down here")
    key = asyncssh_server.client_key(DEFAULT_USER)
    async with await asyncssh_server.connect(
        DEFAULT_USER, client_keys=[str(key)], **cipher_options(cipher)
    ) as conn:
        assert conn.get_extra_info("send_cipher") == cipher
        await echo_through(conn, echo_server.port, PAYLOAD)
    if cipher in AEAD:
        assert server_ignores == []
    else:
        assert len(server_ignores) > PAYLOAD // 32768
