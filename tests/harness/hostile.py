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

import asyncssh

from .asyncssh_server import AsyncsshServer, User


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
    """An AsyncsshServer whose answers to some commands are `replies[key]`."""

    def __init__(
        self,
        replies: Mapping[str, Behaviour],
        users: Mapping[str, str | User] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(users, **kwargs)
        self.replies = dict(replies)
        self.commands: list[str] = []

    async def _run(self, process: asyncssh.SSHServerProcess[bytes], command: str) -> int:
        self.commands.append(command)
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
