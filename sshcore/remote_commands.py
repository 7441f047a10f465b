"""Fixed commands on a host whose answers devtui reads: every read capped, every wait bounded.

`conn.run` keeps a command's whole output in memory and waits for as long as the server
likes; a hostile or broken server can stream forever or never exit. Here the output is read
in chunks up to a limit, and the exchange ends after a timeout, whatever the server does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import asyncssh

from .errors import DevtuiError

KIB = 1024
# A running command's output as it comes: ("stdout" | "stderr", bytes).
OutputCallback = Callable[[str, bytes], None]
MIB = 1024 * KIB
_STDERR_LIMIT = 64 * KIB  # enough for an error message; the rest is dropped
_CHUNK = 64 * KIB


class RemoteCommandError(DevtuiError):
    """A fixed command's exchange went wrong: too much output, or no end in time."""


@dataclass(frozen=True)
class Bounded:
    """What a bounded command returned."""

    exit_status: int | None
    exit_signal: str | None
    stdout: bytes
    stderr: bytes  # at most 64 KiB (the start of it)


async def run_bounded(
    conn: asyncssh.SSHClientConnection,
    command: str,
    *,
    limit: int,
    timeout: float,
    what: str,
    input: bytes | None = None,
) -> Bounded:
    """Run `command`; its stdout may be at most `limit` bytes and the whole exchange may
    take at most `timeout` seconds, else RemoteCommandError names `what` and the limit.

    Opening the channel can raise asyncssh.ChannelOpenError (the host refuses commands).
    """
    try:
        process = await asyncio.wait_for(conn.create_process(command, encoding=None), timeout)
    except asyncio.TimeoutError:
        raise RemoteCommandError(f"{what}: no answer within {timeout:g} s") from None

    async def exchange() -> Bounded:
        if input is not None:
            process.stdin.write(input)
        process.stdin.write_eof()
        readers = [
            asyncio.ensure_future(_read(process.stdout, limit, what)),
            asyncio.ensure_future(_read(process.stderr, _STDERR_LIMIT, None)),
        ]
        try:
            out, err = await asyncio.gather(*readers)
        finally:
            for reader in readers:  # one failed or we were cancelled: stop the other too
                reader.cancel()
        result = await process.wait()
        signal = result.exit_signal[0] if result.exit_signal else None
        return Bounded(result.exit_status, signal, out, err)

    try:
        return await asyncio.wait_for(exchange(), timeout)
    except asyncio.TimeoutError:
        raise RemoteCommandError(f"{what}: no answer within {timeout:g} s") from None
    finally:
        # Closing the channel stops the flow at once (a streaming server is cut off here).
        process.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait_closed(), 1)


async def _read(stream: asyncssh.SSHReader[bytes], limit: int, what: str | None) -> bytes:
    data = bytearray()
    while chunk := await stream.read(_CHUNK):
        if len(data) + len(chunk) > limit:
            if what is None:  # stderr: keep the start, drop the rest, keep the window open
                data += chunk[: max(0, limit - len(data))]
                continue
            raise RemoteCommandError(f"{what}: the host sent more than {_size(limit)}; ignored")
        data += chunk
    return bytes(data)


def _size(limit: int) -> str:
    if limit >= MIB and limit % MIB == 0:
        return f"{limit // MIB} MiB"
    if limit >= KIB and limit % KIB == 0:
        return f"{limit // KIB} KiB"
    return f"{limit} bytes"
