"""The test harness itself works: each piece proven with real traffic."""

from __future__ import annotations

import asyncio
import pwd
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import asyncssh
import psutil
import pytest
from harness.agent import SshAgent
from harness.asyncssh_server import DEFAULT_PASSWORD, DEFAULT_USER, AsyncsshServer
from harness.net import (
    ByteSource,
    EchoServer,
    Sha256Sink,
    echo_roundtrip,
    echo_roundtrip_sync,
    free_port,
    read_all,
    send_random,
    wait_port,
)
from harness.proxy import Mode, TcpProxy
from harness.sshd import (
    Sshd,
    SshdError,
    ThrowawayUser,
    create_throwaway_user,
    remove_throwaway_user,
    throwaway_user_unavailable,
)

MIB = 1024 * 1024


def run_ssh(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=20)


async def connect_sshd(
    sshd: Sshd, port: int | None = None, **kwargs: object
) -> asyncssh.SSHClientConnection:
    """asyncssh client to the real sshd with its client key; `port` may be a proxy's."""
    known = f"[127.0.0.1]:{port or sshd.port} {sshd.host_public_key_line}\n"
    opts: dict[str, object] = {
        "username": sshd.user,
        "client_keys": [str(sshd.client_key())],
        "known_hosts": asyncssh.import_known_hosts(known),
        "agent_path": None,
    }
    opts.update(kwargs)
    return await asyncssh.connect("127.0.0.1", port or sshd.port, **opts)  # type: ignore[arg-type,unused-ignore]


# -- real OpenSSH sshd ----------------------------------------------------------------------


def test_real_ssh_client_logs_into_sshd(sshd: Sshd, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sshd.known_hosts_line() + "\n")
    assert sshd.known_hosts_line().startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 AAAA")
    argv = [
        "ssh",
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-i",
        str(sshd.client_key()),
        "-p",
        str(sshd.port),
        f"{sshd.user}@127.0.0.1",
        "echo",
        "hi",
    ]
    result = run_ssh(argv)
    assert result.returncode == 0, result.stderr + sshd.log_tail()
    assert result.stdout == "hi\n"
    assert "Accepted publickey" in sshd.log_text()


def test_fingerprint_matches_ssh_keygen(sshd: Sshd) -> None:
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", f"{sshd.host_key_path}.pub"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split()[1] == sshd.host_key_sha256()
    assert sshd.host_key_sha256().startswith("SHA256:")


def test_restart_keeps_port_and_host_key(sshd: Sshd) -> None:
    port, fingerprint, old_pid = sshd.port, sshd.host_key_sha256(), sshd.pid
    known_hosts = sshd.write_known_hosts()
    sshd.restart()
    assert (sshd.port, sshd.host_key_sha256()) == (port, fingerprint)
    assert sshd.pid != old_pid
    result = run_ssh(sshd.ssh_argv("echo", "again", known_hosts=known_hosts))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "again\n"


def test_regenerate_host_key_is_refused_by_strict_client(sshd: Sshd, tmp_path: Path) -> None:
    old_known = tmp_path / "old_known_hosts"
    sshd.write_known_hosts(old_known)
    before = sshd.host_key_sha256()
    sshd.regenerate_host_key()
    assert sshd.running
    assert sshd.host_key_sha256() != before
    result = run_ssh(sshd.ssh_argv("echo", "hi", known_hosts=old_known))
    assert result.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr
    assert run_ssh(sshd.ssh_argv("echo", "hi")).stdout == "hi\n"  # new line accepted


def test_bad_config_fails_with_log_tail(sshd_factory: Callable[..., Sshd]) -> None:
    server = sshd_factory(["NoSuchOption yes"], start=False)
    with pytest.raises(SshdError, match="NoSuchOption"):
        server.start()
    assert not server.running


def test_extra_loglevel_quiet_still_starts(sshd_factory: Callable[..., Sshd]) -> None:
    server = sshd_factory(["LogLevel QUIET"])
    assert run_ssh(server.ssh_argv("echo", "quiet")).stdout == "quiet\n"


async def test_stop_drops_sessions_and_start_serves_again(sshd: Sshd) -> None:
    conn = await connect_sshd(sshd)
    assert (await conn.run("echo up", check=True)).stdout == "up\n"
    sshd.stop()
    assert not sshd.running
    await asyncio.wait_for(conn.wait_closed(), 5)
    with pytest.raises(OSError):
        await connect_sshd(sshd)
    sshd.start()
    async with await connect_sshd(sshd) as conn2:
        assert (await conn2.run("echo back", check=True)).stdout == "back\n"


async def test_stop_can_leave_sessions_alive(sshd: Sshd) -> None:
    async with await connect_sshd(sshd) as conn:
        sshd.stop(kill_sessions=False)
        assert (await conn.run("echo still", check=True)).stdout == "still\n"


async def test_sshd_forwards_tcp(sshd: Sshd, echo_server: EchoServer) -> None:
    async with await connect_sshd(sshd) as conn:
        listener = await conn.forward_local_port("127.0.0.1", 0, "127.0.0.1", echo_server.port)
        sent, got = await echo_roundtrip("127.0.0.1", listener.get_port(), 2 * MIB)
        assert sent == got


async def test_extra_config_overrides_default(sshd_factory: Callable[..., Sshd]) -> None:
    server = sshd_factory(["AllowTcpForwarding no"])
    assert "AllowTcpForwarding yes" not in server.config_path.read_text()
    async with await connect_sshd(server) as conn:
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.open_connection("127.0.0.1", server.port)


async def test_throwaway_user_logs_in_with_password(
    sshd: Sshd, throwaway_user: ThrowawayUser
) -> None:
    name, password, home = throwaway_user
    assert home.is_dir()
    known = asyncssh.import_known_hosts(sshd.known_hosts_line() + "\n")
    async with asyncssh.connect(
        "127.0.0.1",
        sshd.port,
        username=name,
        password=password,
        known_hosts=known,
        client_keys=None,
        agent_path=None,
    ) as conn:
        result = await conn.run("id -un; pwd", check=True)
    assert result.stdout == f"{name}\n{home}\n"


def test_throwaway_user_is_removed() -> None:
    reason = throwaway_user_unavailable()
    if reason:
        pytest.skip(reason)
    user = create_throwaway_user()
    assert pwd.getpwnam(user.name).pw_dir == str(user.home)
    remove_throwaway_user(user.name)
    with pytest.raises(KeyError):
        pwd.getpwnam(user.name)
    assert not user.home.exists()


# -- TCP proxy ------------------------------------------------------------------------------


def test_proxy_forwards_and_counts(
    echo_server: EchoServer, tcp_proxy: Callable[[str, int], TcpProxy]
) -> None:
    proxy = tcp_proxy("127.0.0.1", echo_server.port)
    sent, got = echo_roundtrip_sync("127.0.0.1", proxy.port, 4 * MIB)
    assert sent == got
    assert proxy.bytes_up == proxy.bytes_down == 4 * MIB
    assert proxy.mode is Mode.FORWARD


def test_proxy_cut_resets_connections_until_restore(
    echo_server: EchoServer, tcp_proxy: Callable[[str, int], TcpProxy]
) -> None:
    proxy = tcp_proxy("127.0.0.1", echo_server.port)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as s:
        s.sendall(b"ping")
        assert s.recv(16) == b"ping"
        proxy.cut()
        with pytest.raises(ConnectionResetError):
            s.recv(16)
    assert proxy.connections == 0
    # A new connection is reset at once: seen by connect() or by the first read.
    with (
        pytest.raises(ConnectionResetError),
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as s2,
    ):
        s2.recv(16)
    proxy.restore()
    sent, got = echo_roundtrip_sync("127.0.0.1", proxy.port, MIB)
    assert sent == got


def test_proxy_blackhole_drops_bytes_but_keeps_socket_open(
    echo_server: EchoServer, tcp_proxy: Callable[[str, int], TcpProxy]
) -> None:
    proxy = tcp_proxy("127.0.0.1", echo_server.port)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as s:
        s.sendall(b"ping")
        assert s.recv(16) == b"ping"
        proxy.blackhole()
        s.settimeout(0.5)
        s.sendall(b"lost")
        with pytest.raises(socket.timeout):
            s.recv(16)
        s.sendall(b"still writable")  # nothing was closed or reset
        assert proxy.connections == 1
        proxy.restore()
        with pytest.raises(socket.timeout):
            s.recv(16)  # a blackholed connection stays dead
    sent, got = echo_roundtrip_sync("127.0.0.1", proxy.port, MIB)  # new ones work
    assert sent == got


async def test_keepalive_detects_blackholed_sshd(
    sshd: Sshd, tcp_proxy: Callable[[str, int], TcpProxy]
) -> None:
    proxy = tcp_proxy("127.0.0.1", sshd.port)
    conn = await connect_sshd(sshd, proxy.port, keepalive_interval=0.3, keepalive_count_max=2)
    assert (await conn.run("echo via proxy", check=True)).stdout == "via proxy\n"
    proxy.blackhole()
    started = time.monotonic()
    await asyncio.wait_for(conn.wait_closed(), 5)
    assert time.monotonic() - started < 3
    assert proxy.connections == 1  # the proxy closed nothing; keepalive noticed
    proxy.restore()
    async with await connect_sshd(sshd, proxy.port) as conn2:
        assert (await conn2.run("echo restored", check=True)).stdout == "restored\n"


async def test_cut_drops_ssh_connection(
    sshd: Sshd, tcp_proxy: Callable[[str, int], TcpProxy]
) -> None:
    proxy = tcp_proxy("127.0.0.1", sshd.port)
    conn = await connect_sshd(sshd, proxy.port)
    await asyncio.to_thread(proxy.cut)
    await asyncio.wait_for(conn.wait_closed(), 5)
    with pytest.raises((OSError, asyncssh.Error)):
        await connect_sshd(sshd, proxy.port)


# -- in-process asyncssh server -------------------------------------------------------------


async def test_asyncssh_server_password_login_and_commands(
    asyncssh_server: AsyncsshServer,
) -> None:
    known = asyncssh.import_known_hosts(asyncssh_server.known_hosts_line() + "\n")
    async with asyncssh.connect(
        "127.0.0.1",
        asyncssh_server.port,
        username=DEFAULT_USER,
        password=DEFAULT_PASSWORD,
        known_hosts=known,
        client_keys=None,
        agent_path=None,
    ) as conn:
        assert (await conn.run("echo hello world", check=True)).stdout == "hello world\n"
        assert (await conn.run("cat", input="round trip\n")).stdout == "round trip\n"
        assert str((await conn.run("uname -a")).stdout).startswith("Linux ")
        assert (await conn.run("sleep 0.05")).exit_status == 0
        assert (await conn.run("exit 7")).exit_status == 7
        missing = await conn.run("no-such-command")
        assert missing.exit_status == 127
        assert "not found" in str(missing.stderr)


async def test_asyncssh_server_rejects_bad_password_and_unknown_host_key(
    asyncssh_server: AsyncsshServer,
) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh_server.connect(DEFAULT_USER, password="wrong")
    other = AsyncsshServer()
    wrong_known = f"[127.0.0.1]:{asyncssh_server.port} " + " ".join(
        other.host_key.export_public_key().decode().split()[:2]
    )
    await other.close()
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await asyncssh_server.connect(
            DEFAULT_USER,
            password=DEFAULT_PASSWORD,
            known_hosts=asyncssh.import_known_hosts(wrong_known + "\n"),
        )


async def test_asyncssh_server_key_auth_forwarding_and_sftp(
    asyncssh_server: AsyncsshServer, echo_server: EchoServer
) -> None:
    key = asyncssh_server.client_key("keyuser")
    async with await asyncssh_server.connect("keyuser", client_keys=[str(key)]) as conn:
        assert (await conn.run("whoami")).stdout == "keyuser\n"
        local = await conn.forward_local_port("127.0.0.1", 0, "127.0.0.1", echo_server.port)
        sent, got = await echo_roundtrip("127.0.0.1", local.get_port(), MIB)
        assert sent == got
        remote = await conn.forward_remote_port("", 0, "127.0.0.1", echo_server.port)
        sent, got = await echo_roundtrip("127.0.0.1", remote.get_port(), MIB)
        assert sent == got
        remote.close()
        async with conn.start_sftp_client() as sftp:
            async with sftp.open("hello.txt", "w") as f:
                await f.write("from sftp")
            assert await sftp.realpath(".") == "/"
    assert (asyncssh_server.home / "hello.txt").read_text() == "from sftp"


async def test_asyncssh_server_restart_drops_clients_and_keeps_port(
    asyncssh_server: AsyncsshServer,
) -> None:
    port = asyncssh_server.port
    conn = await asyncssh_server.connect(DEFAULT_USER, password=DEFAULT_PASSWORD)
    assert len(asyncssh_server.connections) == 1
    await asyncssh_server.restart()
    await asyncio.wait_for(conn.wait_closed(), 5)
    assert asyncssh_server.port == port
    async with await asyncssh_server.connect(DEFAULT_USER, password=DEFAULT_PASSWORD) as conn2:
        assert (await conn2.run("echo again")).stdout == "again\n"


# -- net helpers ----------------------------------------------------------------------------


async def test_sink_hashes_what_arrives(sha256_sink: Sha256Sink) -> None:
    digest = await send_random("127.0.0.1", sha256_sink.port, 3 * MIB)
    (result,) = await asyncio.to_thread(sha256_sink.wait_results, 1, 10)
    assert (result.nbytes, result.sha256) == (3 * MIB, digest)


def test_free_port_and_wait_port(echo_server: EchoServer) -> None:
    wait_port("127.0.0.1", echo_server.port, timeout=2)
    port = free_port()
    with pytest.raises(TimeoutError):
        wait_port("127.0.0.1", port, timeout=0.2)


async def test_byte_source_talks_one_way() -> None:
    with ByteSource(MIB + 7) as source:
        nbytes, digest = await read_all("127.0.0.1", source.port)
        # It counts what comes back; send_random waits for it to close, i.e. to be done.
        await send_random("127.0.0.1", source.port, 1000)
    assert nbytes == MIB + 7 and digest == source.sent[0]
    assert source.received == 1000
    assert source.connections == 2


async def test_asyncssh_server_routes_a_forward_to_its_own_network(
    echo_server: EchoServer,
) -> None:
    hidden = free_port()  # nothing listens there on this machine
    async with (
        AsyncsshServer(
            {DEFAULT_USER: DEFAULT_PASSWORD},
            routes={("127.0.0.1", hidden): ("127.0.0.1", echo_server.port)},
        ) as server,
        await server.connect(DEFAULT_USER, password=DEFAULT_PASSWORD) as conn,
    ):
        listener = await conn.forward_local_port("127.0.0.1", 0, "127.0.0.1", hidden)
        sent, got = await echo_roundtrip("127.0.0.1", listener.get_port(), 100_000)
    assert sent == got
    assert server.forwarded == [("127.0.0.1", hidden)]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", hidden), timeout=2).close()


def test_ssh_agent_answers_and_is_stopped() -> None:
    agent = SshAgent()
    agent.start()
    try:
        listed = subprocess.run(
            ["ssh-add", "-l"],
            env={"SSH_AUTH_SOCK": str(agent.socket), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert listed.returncode == 1, listed.stderr  # an agent answered: it holds no keys
        pid = agent._proc.pid if agent._proc else None
    finally:
        agent.stop()
    assert pid is not None and not psutil.pid_exists(pid)  # stopped and reaped
    assert not agent.socket.exists()
