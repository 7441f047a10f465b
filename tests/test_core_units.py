"""Pure parts of the SSH core: known_hosts parsing, SOCKS handshake, backoff, listen sockets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import signal
import socket
import subprocess
from pathlib import Path

import asyncssh
import psutil
import pytest

from sshcore import hostkeys, ports
from sshcore.session import backoff_delay
from sshcore.socks import SocksError, SocksHandshake
from tui.cli.net import stop_signal_names


def _hashed(host: str) -> str:
    salt = b"0123456789abcdefghij"
    digest = hmac.new(salt, host.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


@pytest.fixture
def key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


def test_lookup_finds_hashed_bracketed_entry_without_final_newline(tmp_path: Path, key) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    line = f"{_hashed('[10.1.1.1]:2222')} {key.export_public_key().decode().strip()}"
    path = tmp_path / "known_hosts"
    path.write_text(
        f"# comment\n\ngarbage line here\n10.1.1.1 {other.export_public_key().decode().strip()}\n{line}"
    )
    found = hostkeys.lookup(path, "10.1.1.1", 2222)
    assert [e.line for e in found.trusted] == [5]
    assert hostkeys.fingerprint(found.trusted[0].key) == hostkeys.fingerprint(key)
    # Port 22 is a different entry: the unbracketed line, with the other key.
    assert hostkeys.fingerprint(hostkeys.lookup(path, "10.1.1.1", 22).trusted[0].key) == (
        hostkeys.fingerprint(other)
    )


def test_learn_appends_openssh_format_that_ssh_keygen_finds(tmp_path: Path, key) -> None:
    path = tmp_path / "kh"
    path.write_text("example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBB")  # no final newline
    line_no = hostkeys.learn(path, "127.0.0.1", 2200, key)
    assert line_no == 2
    text = path.read_text()
    assert text.splitlines()[0].startswith("example.org ")
    assert text.splitlines()[1].startswith("[127.0.0.1]:2200 ssh-ed25519 ")
    found = subprocess.run(
        ["ssh-keygen", "-F", "[127.0.0.1]:2200", "-f", str(path)], capture_output=True, text=True
    )
    assert found.returncode == 0 and "ssh-ed25519" in found.stdout
    fresh = tmp_path / "new" / "known_hosts"
    hostkeys.learn(fresh, "h", 22, key)
    assert fresh.stat().st_mode & 0o777 == 0o600


def test_forget_removes_only_that_host(tmp_path: Path, key) -> None:
    path = tmp_path / "kh"
    hostkeys.learn(path, "a.example", 22, key)
    hostkeys.learn(path, "b.example", 22, key)
    assert hostkeys.forget(path, "a.example", 22) == 1
    assert not hostkeys.lookup(path, "a.example", 22).known
    assert hostkeys.lookup(path, "b.example", 22).known


def test_socks5_connect_domain_with_early_payload() -> None:
    hs = SocksHandshake()
    assert hs.feed(b"\x05\x01\x00") == b"\x05\x00"
    assert hs.request is None
    name = b"example.com"
    hs.feed(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + (443).to_bytes(2, "big") + b"GET")
    assert hs.request is not None
    assert (hs.request.host, hs.request.port, hs.request.version) == ("example.com", 443, 5)
    assert hs.rest == b"GET"
    assert hs.request.success()[:2] == b"\x05\x00"


def test_socks5_byte_by_byte_ipv6() -> None:
    hs = SocksHandshake()
    data = (
        b"\x05\x01\x00"
        + b"\x05\x01\x00\x04"
        + socket.inet_pton(socket.AF_INET6, "::1")
        + b"\x00\x50"
    )
    replies = b"".join(hs.feed(bytes([b])) for b in data)
    assert replies == b"\x05\x00"
    assert hs.request is not None and (hs.request.host, hs.request.port) == ("::1", 80)


def test_socks4_and_4a() -> None:
    hs = SocksHandshake()
    hs.feed(b"\x04\x01\x00\x16" + bytes([127, 0, 0, 1]) + b"me\x00")
    assert hs.request is not None and (hs.request.host, hs.request.port) == ("127.0.0.1", 22)
    hs = SocksHandshake()
    hs.feed(b"\x04\x01\x1f\x90\x00\x00\x00\x01\x00gpu.lab\x00")
    assert hs.request is not None and (hs.request.host, hs.request.port) == ("gpu.lab", 8080)
    assert hs.request.failure(refused=True) == b"\x00\x5b" + b"\x00" * 6


@pytest.mark.parametrize(
    "data, reply",
    [
        (b"GET / HTTP/1.1\r\n", b""),  # someone pointed a browser at the SOCKS port
        (b"\x05\x01\x02", b"\x05\xff"),  # wants username/password auth
        (b"\x05\x01\x00\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50", b"\x05\x07"),  # BIND, not CONNECT
    ],
)
def test_socks_refuses_what_it_cannot_do(data: bytes, reply: bytes) -> None:
    with pytest.raises(SocksError) as caught:
        SocksHandshake().feed(data)
    assert caught.value.reply[:2] == reply[:2]


def test_backoff_grows_caps_and_never_spins() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, cap=30, rng=rng) for n in range(1, 20)]
    assert all(d >= 0.25 for d in delays)  # never a busy retry loop
    assert delays[0] <= 0.5
    assert sum(delays[:6]) < 8  # a short outage is retried often enough to heal fast
    assert 15 <= delays[-1] <= 30  # reaches the cap's range, never above
    # Jitter: two clients do not retry in lockstep.
    other = [backoff_delay(n, cap=30, rng=random.Random(8)) for n in range(1, 20)]
    assert delays != other


def test_windows_listen_socket_is_exclusive_posix_reuses() -> None:
    ((level, option, value),) = ports.listen_socket_options("nt")
    assert (level, option, value) == (socket.SOL_SOCKET, -5, 1)  # SO_EXCLUSIVEADDRUSE
    assert ports.listen_socket_options("posix") == [(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)]


def test_busy_port_names_the_process_and_suggests_another() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(OSError) as caught:
            ports.open_listener("127.0.0.1", port)
        assert ports.is_addr_in_use(caught.value)
        message = ports.busy_message("127.0.0.1", port)
        assert f"127.0.0.1:{port} is already in use by {psutil.Process().name()}" in message
        assert "pid" in message and "is free" in message
    finally:
        holder.close()


def test_stop_signals_per_platform() -> None:
    assert stop_signal_names("nt") == ["SIGINT", "SIGBREAK"]  # Ctrl+C, Ctrl+Break
    assert stop_signal_names("posix") == ["SIGINT", "SIGTERM"]
    assert all(hasattr(signal, n) for n in stop_signal_names("posix"))


def test_host_names_match_case_insensitively_like_openssh(tmp_path: Path, key) -> None:
    path = tmp_path / "kh"
    hostkeys.learn(path, "MyServer.Example", 2222, key)
    assert path.read_text().startswith("[myserver.example]:2222 ")
    assert hostkeys.lookup(path, "myserver.EXAMPLE", 2222).known


def test_an_unreadable_entry_for_the_host_still_counts_as_known(tmp_path: Path) -> None:
    path = tmp_path / "kh"
    path.write_text("[gpu.lab]:2200 ssh-futurekey AAAAnotakeyweknow\nother.lab ssh-rsa AAAA\n")
    found = hostkeys.lookup(path, "gpu.lab", 2200)
    assert found.known and found.unreadable == [1]  # a new key is CHANGED, not "unknown"
    assert not hostkeys.lookup(path, "fresh.lab", 22).known


async def test_a_port_windows_reserved_is_named_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    from sshcore import tunnels
    from sshcore.events import EventBus
    from sshcore.model import Endpoint, HostSpec, Settings, TunnelSpec
    from sshcore.prompts import NoPrompts
    from sshcore.session import HostSession

    def reserved(address: str, port: int) -> None:
        error = OSError(13, "An attempt was made to access a socket in a way forbidden")
        error.winerror = 10013  # type: ignore[attr-defined]  # WSAEACCES: Hyper-V/WSL ranges
        raise error

    monkeypatch.setattr(tunnels, "open_listener", reserved)
    bus = EventBus()
    session = HostSession(HostSpec("h", "h.example"), Settings(), NoPrompts(), bus)
    spec = TunnelSpec("t", "h", "local", Endpoint("127.0.0.1", 50000), Endpoint("127.0.0.1", 80))
    tunnel = tunnels.Tunnel(spec, session, bus)
    monkeypatch.setattr(tunnels, "free_port_near", lambda port, address: port + 1)
    with pytest.raises(tunnels.TunnelError, match="reserved or blocked by Windows") as refused:
        await tunnel.start()
    assert "port 50001 is free" in str(refused.value)  # the next free port, offered
    assert not tunnel.running  # the user can pick another port and start it again
