"""A hostile asyncssh server on 127.0.0.1: answers commands by flooding, hanging or lying.

`HostileServer(replies={"cat /proc/net/tcp": Flood()})` answers any command that contains
the key with that behaviour; other commands behave as in AsyncsshServer. Every behaviour is
bounded (a flood stops after `limit` bytes, a hang after `seconds`), so a test that goes
wrong fails instead of running forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from unittest import mock

import asyncssh

from .asyncssh_server import AsyncsshServer, User, _Server


@dataclass
class Flood:
    """Send `head`, then junk until the client closes the channel (or `limit` bytes per
    command); `sent` counts every command's bytes."""

    head: bytes = b""
    chunk: bytes = b"0" * 65535 + b"\n"
    limit: int = 256 * 1024 * 1024
    sent: int = 0  # bytes actually written, flow control included
    cut_off: bool = False  # the client closed the channel before `limit`


@dataclass
class Hang:
    """Send `head`, then never exit (for `seconds` at most)."""

    head: bytes = b""
    seconds: float = 120.0
    started: int = 0


@dataclass
class Reply:
    """Answer with exactly `stdout` and `status`."""

    stdout: bytes
    status: int = 0


Behaviour = Flood | Hang | Reply


class HostileServer(AsyncsshServer):
    """An AsyncsshServer whose answers to some commands are `replies[key]`.

    `version`: the raw identification it sends after "SSH-2.0-" (control characters and
    all); `kbdint_prompt`: a keyboard-interactive question it asks (any answer is accepted);
    `disconnect_reason`: what it says when the command `disconnect` drops the connection;
    `refuse_reason`: when set, every forwarded connection (-L, SOCKS) is refused saying it;
    `sessions=False`: every command (session channel) is refused.
    """

    def __init__(
        self,
        replies: Mapping[str, Behaviour],
        users: Mapping[str, str | User] | None = None,
        *,
        version: bytes | None = None,
        kbdint_prompt: str | None = None,
        disconnect_reason: str = "bye",
        refuse_reason: str | None = None,
        sessions: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(users, **kwargs)
        self.replies = dict(replies)
        self.commands: list[str] = []
        self.version = version
        self.kbdint_prompt = kbdint_prompt
        self.disconnect_reason = disconnect_reason
        self.refuse_reason = refuse_reason
        self.sessions = sessions
        self._relaxed: Any = None

    async def stop(self) -> None:
        await super().stop()
        if self._relaxed is not None:
            self._relaxed.stop()
            self._relaxed = None

    async def start(self) -> int:
        """As AsyncsshServer.start, with the hostile version and keyboard-interactive."""
        version = self.version
        options: dict[str, Any] = {}
        if version is not None:
            options["server_version"] = version
        # asyncssh refuses control characters in its own version string (also when it
        # reloads its options after each login); a hostile server is not asyncssh, so the
        # check is relaxed while this server runs.
        if version is not None and self._relaxed is None:
            check = asyncssh.connection._validate_version
            self._relaxed = mock.patch.object(
                asyncssh.connection, "_validate_version", lambda v: v if v else check(v)
            )
            self._relaxed.start()
        self._acceptor = await asyncssh.create_server(
            lambda: _HostileSSHServer(self),
            "127.0.0.1",
            self.port,
            server_host_keys=[self.host_key],
            process_factory=self._process if self.sessions else None,
            sftp_factory=self._sftp if self.sftp and self.sessions else None,
            encoding=None,
            allow_scp=False,
            reuse_address=True,
            **options,
        )
        self.port = self._acceptor.get_port()
        return self.port

    async def _run(self, process: asyncssh.SSHServerProcess[bytes], command: str) -> int:
        self.commands.append(command)
        if command == "disconnect":
            conn = process.channel.get_connection()
            conn.disconnect(asyncssh.DISC_SERVICE_NOT_AVAILABLE, self.disconnect_reason)
            return 0
        for key, behaviour in self.replies.items():
            if key in command:
                return await _behave(process, behaviour)
        return await super()._run(process, command)


async def _behave(process: asyncssh.SSHServerProcess[bytes], behaviour: Behaviour) -> int:
    out = process.stdout
    if isinstance(behaviour, Reply):
        out.write(behaviour.stdout)
        return behaviour.status
    out.write(behaviour.head)
    if isinstance(behaviour, Hang):
        behaviour.started += 1
        await asyncio.sleep(behaviour.seconds)
        return 0
    sent = 0
    try:
        while sent < behaviour.limit:
            out.write(behaviour.chunk)
            await out.drain()  # flow control: only as fast as the client reads
            sent += len(behaviour.chunk)
            behaviour.sent += len(behaviour.chunk)
    except (asyncssh.Error, OSError, BrokenPipeError):
        behaviour.cut_off = True
        raise
    if process.is_closing():
        behaviour.cut_off = True
    return 0


class _HostileSSHServer(_Server):
    def __init__(self, owner: HostileServer) -> None:
        super().__init__(owner)
        self._hostile = owner

    def password_auth_supported(self) -> bool:
        return self._hostile.kbdint_prompt is None and super().password_auth_supported()

    def kbdint_auth_supported(self) -> bool:
        return self._hostile.kbdint_prompt is not None

    def get_kbdint_challenge(
        self, username: str, lang: str, submethods: str
    ) -> tuple[str, str, str, list[tuple[str, bool]]]:
        assert self._hostile.kbdint_prompt is not None
        return ("", "", "", [(self._hostile.kbdint_prompt, False)])

    def validate_kbdint_response(self, username: str, responses: list[str]) -> bool:
        return True

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        if self._hostile.refuse_reason is not None:
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_CONNECT_FAILED, self._hostile.refuse_reason
            )
        return super().connection_requested(dest_host, dest_port, orig_host, orig_port)


class DisconnectingEndpoint:
    """Not an SSH server: on 127.0.0.1 it answers every connection with an identification
    line and then a plaintext SSH_MSG_DISCONNECT whose reason is `reason` (any text), before
    any key exchange: what any network attacker can send, no host key needed. Stops with
    `close()` (or the `async with`)."""

    def __init__(self, reason: str, code: int = 11) -> None:
        self.reason = reason
        self.code = code
        self.port = 0
        self.connections = 0
        self._server: asyncio.base_events.Server | None = None

    def packet(self) -> bytes:
        """The DISCONNECT as one unencrypted binary packet (RFC 4253 section 6)."""
        reason = self.reason.encode("utf-8", "surrogatepass")
        payload = (
            bytes([1])  # SSH_MSG_DISCONNECT
            + self.code.to_bytes(4, "big")
            + len(reason).to_bytes(4, "big")
            + reason
            + (0).to_bytes(4, "big")  # language tag: empty
        )
        padding = 8 - (5 + len(payload)) % 8
        padding += 8 if padding < 4 else 0
        body = bytes([padding]) + payload + bytes(padding)
        return len(body).to_bytes(4, "big") + body

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            writer.write(b"SSH-2.0-hostile\r\n")
            await asyncio.wait_for(reader.readline(), 10)  # the client's identification
            writer.write(self.packet())
            await writer.drain()
            await asyncio.sleep(0.2)
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> DisconnectingEndpoint:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
