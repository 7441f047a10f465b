"""sshcore.asyncssh_tuning's receive and AES-GCM fast path: what arrives is what was sent,
whatever the reads look like, and a packet changed on the way is refused.

Between the client and a real OpenSSH sshd sits a proxy that hands the client the server's
bytes in reads of awkward sizes (1 byte, a header block and one more, a packet and a bit),
so every way a packet can be split across reads is crossed many times; or that flips one
bit in the middle of the transfer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
from collections.abc import Iterator
from typing import Any

import asyncssh
import pytest
from asyncssh.channel import SSHChannel
from asyncssh.connection import SSHConnection
from asyncssh.constants import MSG_CHANNEL_DATA
from asyncssh.crypto.cipher import GCMCipher
from asyncssh.encryption import GCMEncryption
from asyncssh.packet import SSHPacketLogger, String
from harness.net import EchoServer
from harness.sshd import Sshd

from sshcore import asyncssh_tuning

CIPHERS = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",  # with hmac-sha2-256
]
SIZES = [1, 2, 3, 15, 16, 17, 31, 33, 100, 4096, 32768 + 29, 70_000]
PAYLOAD = 768 * 1024 + 7


@pytest.fixture(autouse=True, params=["fast", "stock"])
def transport(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test runs twice: with everything apply() installs (as devtui runs on a tested
    asyncssh) and with asyncssh as released (DEVTUI_ASYNCSSH_STOCK=1, or a version the fast
    path was not tested with); the state found is put back after."""
    was_applied, was_fast = asyncssh_tuning.is_applied(), asyncssh_tuning.fastpath_applied()
    if request.param == "fast":
        if not asyncssh_tuning.apply() or not asyncssh_tuning.fastpath_applied():
            pytest.skip(f"asyncssh {asyncssh.__version__}: the fast path stands down here")
        assert SSHConnection.send_packet is asyncssh_tuning._send_packet
    else:
        asyncssh_tuning.revert()
        assert not asyncssh_tuning.is_applied()
    yield request.param
    if not was_applied:
        asyncssh_tuning.revert()
    elif not was_fast:
        asyncssh_tuning.apply()
        asyncssh_tuning.revert_fastpath()
    else:
        asyncssh_tuning.apply()


class Chopper:
    """A TCP proxy to `port`: client -> server as it comes; server -> client in reads of
    the sizes in SIZES (seeded), each flushed on its own, or with one bit flipped at byte
    `flip_at` of the server's stream."""

    def __init__(self, port: int, seed: int, flip_at: int | None = None) -> None:
        self.target = port
        self.rng = random.Random(seed)
        self.flip_at = flip_at
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        for w in (writer, up_writer):
            w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for coro in (self._up(reader, up_writer), self._down(up_reader, writer)):
            task = asyncio.create_task(coro)
            self.tasks.add(task)

    async def _up(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def _down(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen = 0
        pending = b""
        try:
            while True:
                size = self.rng.choice(SIZES)
                if not pending:  # never wait for more than the server has sent
                    pending = await reader.read(65536)
                    if not pending:
                        return
                piece, pending = pending[:size], pending[size:]
                if self.flip_at is not None and seen <= self.flip_at < seen + len(piece):
                    i = self.flip_at - seen
                    piece = piece[:i] + bytes([piece[i] ^ 0x10]) + piece[i + 1 :]
                seen += len(piece)
                writer.write(piece)
                await writer.drain()
                if size < 64:
                    await asyncio.sleep(0)  # let the client read this piece on its own
        finally:
            writer.close()


async def echo(conn: asyncssh.SSHClientConnection, port: int, data: bytes, got: bytearray) -> None:
    """Send `data` through a direct-tcpip channel to an echo server; what comes back goes
    into `got` as it arrives."""
    reader, writer = await conn.open_connection("127.0.0.1", port)

    async def send() -> None:
        for i in range(0, len(data), 50_000):
            writer.write(data[i : i + 50_000])
            await writer.drain()
        writer.write_eof()

    async def receive() -> None:
        while chunk := await reader.read(65536):
            got.extend(chunk)

    try:
        await asyncio.gather(send(), receive())
    finally:
        writer.close()


async def through_chopper(
    sshd: Sshd,
    echo_server: EchoServer,
    cipher: str,
    seed: int,
    flip_at: int | None = None,
    compression: str | None = None,
) -> tuple[bytes, bytes, BaseException | None]:
    chopper = Chopper(sshd.port, seed, flip_at)
    port = await chopper.start()
    data = os.urandom(PAYLOAD)
    options: dict[str, Any] = {"encryption_algs": [cipher]}
    if cipher == "aes128-ctr":
        options["mac_algs"] = ["hmac-sha2-256"]
    if compression:
        options["compression_algs"] = [compression]
    got = bytearray()
    error: BaseException | None = None
    # The server's key, for the proxy's address.
    key = sshd.known_hosts_line().split(" ", 1)[1]
    try:
        async with asyncssh.connect(
            "127.0.0.1",
            port,
            username=sshd.user,
            client_keys=[str(sshd.client_key())],
            known_hosts=asyncssh.import_known_hosts(f"[127.0.0.1]:{port} {key}\n"),
            agent_path=None,
            config=None,
            **options,
        ) as conn:
            assert conn.get_extra_info("recv_cipher") == cipher
            if compression:
                assert conn.get_extra_info("send_compression") == compression
            await asyncio.wait_for(echo(conn, echo_server.port, data, got), 60)
    except (OSError, asyncssh.Error, asyncio.IncompleteReadError) as e:
        error = e
    finally:
        await chopper.close()
    return data, bytes(got), error


@pytest.mark.parametrize("cipher", CIPHERS)
async def test_packets_split_across_any_reads_arrive_intact(
    sshd: Sshd, echo_server: EchoServer, cipher: str
) -> None:
    data, got, error = await through_chopper(sshd, echo_server, cipher, seed=len(cipher))
    assert error is None
    assert len(got) == len(data)
    assert got == data


@pytest.mark.parametrize("cipher", ["aes128-gcm@openssh.com", "aes128-ctr"])
async def test_compressed_packets_arrive_intact(
    sshd: Sshd, echo_server: EchoServer, cipher: str
) -> None:
    """ssh -C: the packet is built from the compressed payload (its own branch)."""
    data, got, error = await through_chopper(
        sshd, echo_server, cipher, seed=3, compression="zlib@openssh.com"
    )
    assert error is None
    assert got == data


@pytest.mark.parametrize("cipher", CIPHERS)
async def test_a_bit_flipped_by_the_network_ends_the_connection(
    sshd: Sshd, echo_server: EchoServer, cipher: str
) -> None:
    # Half-way through the echo's way back: inside some packet's length, data or tag.
    data, got, error = await through_chopper(
        sshd, echo_server, cipher, seed=7, flip_at=PAYLOAD // 2
    )
    assert 0 < len(got) < len(data), "data flowed, and the transfer must not complete"
    assert data.startswith(got), "no changed byte may reach the application"
    del error  # how the end shows (an exception or an early EOF) is asyncssh's choice


def test_fastpath_is_idempotent_revertible_and_version_pinned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replaced: list[tuple[type[Any], str]] = [
        (SSHConnection, "data_received"),
        (GCMCipher, "encrypt_and_sign"),
        (GCMCipher, "verify_and_decrypt"),
        (GCMEncryption, "decrypt_packet"),
        (SSHConnection, "_keepalive_timer_callback"),
        (SSHChannel, "write"),
        (SSHChannel, "_flush_send_buf"),
        (SSHChannel, "send_packet"),
        (SSHPacketLogger, "log_sent_packet"),
        (SSHPacketLogger, "log_received_packet"),
    ]
    asyncssh_tuning.revert_fastpath()
    originals = {key: key[0].__dict__[key[1]] for key in replaced}
    assert not asyncssh_tuning.fastpath_applied()
    assert asyncssh_tuning.apply_fastpath() is True
    patched = {key: key[0].__dict__[key[1]] for key in replaced}
    assert all(patched[key] is not originals[key] for key in replaced)
    assert asyncssh_tuning.apply_fastpath() is True
    assert {key: key[0].__dict__[key[1]] for key in replaced} == patched  # not twice
    asyncssh_tuning.revert_fastpath()
    assert {key: key[0].__dict__[key[1]] for key in replaced} == originals
    monkeypatch.setattr(asyncssh, "__version__", "2.99.0")
    assert asyncssh_tuning.apply_fastpath() is False
    assert {key: key[0].__dict__[key[1]] for key in replaced} == originals


# -- the send side: zero-copy channel writes, packets written together -----------------------


async def _sshd_conn(sshd: Sshd, **options: Any) -> asyncssh.SSHClientConnection:
    return await asyncssh.connect(
        "127.0.0.1",
        sshd.port,
        username=sshd.user,
        client_keys=[str(sshd.client_key())],
        known_hosts=asyncssh.import_known_hosts(sshd.known_hosts_line()),
        agent_path=None,
        config=None,
        encryption_algs=["aes128-gcm@openssh.com"],
        **options,
    )


async def test_a_buffer_changed_after_write_still_sends_what_was_written(
    sshd: Sshd, echo_server: EchoServer
) -> None:
    """Only `bytes` (which cannot change) are queued without a copy: a bytearray changed
    right after write() goes out as it was when written. 3 MiB is more than sshd's 2 MiB
    window, so the end of it is still queued when the buffer changes."""
    original = os.urandom(3 * 1024 * 1024)
    buffer = bytearray(original)
    async with await _sshd_conn(sshd) as conn:
        reader, writer = await conn.open_connection("127.0.0.1", echo_server.port)
        writer.write(buffer)
        buffer[:] = bytes(len(buffer))  # the caller reuses its buffer at once
        writer.write_eof()
        got = await asyncio.wait_for(reader.read(), 30)
        writer.close()
    assert len(got) == len(original)
    assert got == original


async def test_many_writes_of_every_size_arrive_in_order(
    sshd: Sshd, echo_server: EchoServer
) -> None:
    """Writes smaller and larger than a packet, views cut at every boundary, several
    packets sealed and written at once, and EOF after them: the echo is the exact stream."""
    rng = random.Random(5)
    pieces = [
        os.urandom(rng.choice([1, 7, 32767, 32768, 32769, 65536 + 3, 200_000])) for _ in range(60)
    ]
    async with await _sshd_conn(sshd) as conn:
        reader, writer = await conn.open_connection("127.0.0.1", echo_server.port)
        for piece in pieces:
            writer.write(piece)
            if rng.random() < 0.3:
                await writer.drain()
        writer.write_eof()
        got = await asyncio.wait_for(reader.read(), 30)
        writer.close()
    assert got == b"".join(pieces)


async def test_stdout_and_stderr_arrive_apart_and_intact(tmp_path: Any) -> None:
    """Extended data (stderr) takes its own packet type and number on the send side: an
    asyncssh server in this process sends both streams, asyncssh's own receive code reads
    them apart."""
    from harness.asyncssh_server import DEFAULT_PASSWORD, DEFAULT_USER, AsyncsshServer

    out, err = os.urandom(700_000), os.urandom(900_000)
    async with AsyncsshServer({DEFAULT_USER: DEFAULT_PASSWORD}, real_commands=True) as server:
        (server.home / "out").write_bytes(out)
        (server.home / "err").write_bytes(err)
        async with await server.connect(DEFAULT_USER, password=DEFAULT_PASSWORD) as conn:
            result = await asyncio.wait_for(
                conn.run("cat err >&2; cat out; cat err >&2", encoding=None), 30
            )
    assert result.stdout == out
    assert result.stderr == err + err


async def test_keepalive_waits_while_data_arrives_and_goes_out_when_it_stops(
    sshd: Sshd, echo_server: EchoServer
) -> None:
    """Reads only note the time; the keepalive timer, when it fires, waits out the rest.
    No keepalive while the server sends far more often than the interval (every 50 ms
    against 1 s: only a stall of a whole second on this machine could fool it); one once
    it goes quiet (as with asyncssh's timer moved on every read)."""
    interval = 1.0
    sent: list[float] = []
    loop = asyncio.get_running_loop()
    async with await _sshd_conn(sshd, keepalive_interval=interval) as conn:
        original = conn._make_keepalive_request

        async def counted() -> None:
            sent.append(loop.time())
            await original()

        conn._make_keepalive_request = counted  # type: ignore[method-assign]
        reader, writer = await conn.open_connection("127.0.0.1", echo_server.port)
        start = loop.time()
        while loop.time() - start < 2.5 * interval:  # bounded: 2.5 s of echoes
            writer.write(b"x")
            assert await asyncio.wait_for(reader.readexactly(1), 5) == b"x"
            await asyncio.sleep(0.05)
        assert sent == [], "a keepalive went out while data kept arriving"
        for _ in range(100):  # bounded wait: 5 s
            if sent:
                break
            await asyncio.sleep(0.05)
        writer.close()
    assert sent, "no keepalive once the link went quiet"


# -- the receive side's short way for channel data keeps asyncssh's checks -------------------


class _Breaker(asyncssh.SSHServerSession[bytes]):
    """A server session that breaks the channel rules on purpose once its shell starts:
    data after its own EOF ("late"), or 2.2 MB while the client has stopped reading (more
    than the client's 2 MiB window; "flood")."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.chan: Any = None

    def connection_made(self, chan: Any) -> None:
        self.chan = chan

    def shell_requested(self) -> bool:
        return True

    def session_started(self) -> None:
        chan = self.chan
        if self.how == "late":
            chan.write(b"on time")

            def late() -> None:
                chan.write_eof()
                chan.send_packet(MSG_CHANNEL_DATA, String(b"late"))

            # once the client's session reads (what comes before it starts is held)
            asyncio.get_running_loop().call_later(0.3, late)
        else:
            for _ in range(70):  # 70 x 32,000 bytes, no window checked: the raw packets
                chan.send_packet(MSG_CHANNEL_DATA, String(bytes(32_000)))


class _NoAuth(asyncssh.SSHServer):
    def __init__(self, how: str) -> None:
        self.how = how

    def begin_auth(self, username: str) -> bool:
        return False  # anyone: the test is about what comes after

    def session_requested(self) -> _Breaker:
        return _Breaker(self.how)


class _Reader(asyncssh.SSHClientSession[bytes]):
    def __init__(self) -> None:
        self.got = bytearray()
        self.eof = False
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes, datatype: Any) -> None:
        self.got += data

    def eof_received(self) -> bool:
        self.eof = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


@pytest.mark.parametrize("how", ["late", "flood"])
async def test_channel_data_against_the_rules_ends_the_connection(how: str) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.create_server(
        lambda: _NoAuth(how),
        "127.0.0.1",
        0,
        server_host_keys=[key],
        encryption_algs=["aes128-gcm@openssh.com"],
        encoding=None,
    )
    port = server.sockets[0].getsockname()[1]
    try:
        conn = await asyncssh.connect(
            "127.0.0.1",
            port,
            username="u",
            known_hosts=None,
            agent_path=None,
            config=None,
        )
        chan, session = await conn.create_session(_Reader, encoding=None)
        if how == "flood":
            chan.pause_reading()  # the window runs out; a server must wait for an adjust
        ended = await asyncio.wait_for(session.lost, 10)
        await asyncio.wait_for(conn.wait_closed(), 10)
    finally:
        server.close()
    # The client ends the connection, saying why, and hands on nothing against the rules.
    assert isinstance(ended, asyncssh.ProtocolError), ended
    if how == "late":
        assert "not open" in str(ended)
        assert bytes(session.got) == b"on time" and session.eof
    else:
        assert "Window exceeded" in str(ended)
        assert len(session.got) <= 2 * 1024 * 1024
