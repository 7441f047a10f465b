"""What the core may ask the user, supplied by the front end (CLI: getpass; TUI: modals).

Secrets returned here live in memory only; the core never writes them to disk or logs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class HostKeyQuestion:
    """An unknown host key: shown to the user with its fingerprint (trust on first use)."""

    host: str  # devtui host name
    address: str  # "[hostname]:port" as known_hosts writes it
    key_type: str
    fingerprint: str  # "SHA256:..." as ssh-keygen -l prints it


@dataclass(frozen=True)
class HostKeyMismatch:
    """A host key that differs from the one on file: refused, shown loudly."""

    host: str
    address: str
    key_type: str
    old_fingerprint: str
    new_fingerprint: str
    known_hosts_file: str
    known_hosts_line: int


class Prompts(Protocol):
    """Async callbacks the core calls; returning None means the user cancelled."""

    async def password(self, host: str, prompt: str) -> str | None:
        """A password (or keyboard-interactive answer) for `host`."""

    async def passphrase(self, key_path: str) -> str | None:
        """The passphrase of an encrypted private key."""

    async def confirm_host_key(self, question: HostKeyQuestion) -> bool:
        """Trust an unknown host key? True appends it to known_hosts."""

    async def host_key_changed(self, mismatch: HostKeyMismatch) -> None:
        """Tell the user, loudly, that a host key changed; the connection is refused anyway."""


class NoPrompts:
    """For headless runs: never asks, so secrets must come from keys or the agent."""

    def __init__(self, accept_new_host_keys: bool = False, password: str | None = None) -> None:
        self.accept_new_host_keys = accept_new_host_keys
        self._password = password

    async def password(self, host: str, prompt: str) -> str | None:
        return self._password

    async def passphrase(self, key_path: str) -> str | None:
        return None

    async def confirm_host_key(self, question: HostKeyQuestion) -> bool:
        return self.accept_new_host_keys

    async def host_key_changed(self, mismatch: HostKeyMismatch) -> None:
        return None


class TakingTurns:
    """Any Prompts, one question at a time. `devtui up` connects every host at once and
    `hosts test --all` 16 at a time: two password questions on one terminal at once sent
    host A's password to host B (the newest prompt took the first answer), and a `y` could
    trust a fingerprint nobody read. The Core asks through this, so every front end's
    questions take turns; each names its host first (the prompts the session makes)."""

    def __init__(self, inner: Prompts) -> None:
        self.inner = inner
        self._turn = asyncio.Lock()

    async def password(self, host: str, prompt: str) -> str | None:
        async with self._turn:
            return await self.inner.password(host, prompt)

    async def passphrase(self, key_path: str) -> str | None:
        async with self._turn:
            return await self.inner.passphrase(key_path)

    async def confirm_host_key(self, question: HostKeyQuestion) -> bool:
        async with self._turn:
            return await self.inner.confirm_host_key(question)

    async def host_key_changed(self, mismatch: HostKeyMismatch) -> None:
        async with self._turn:
            await self.inner.host_key_changed(mismatch)
