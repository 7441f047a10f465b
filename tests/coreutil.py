"""Helpers for tests of the SSH core: a Core pointed at a test server, scripted prompts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

from sshcore.config import Config
from sshcore.core import Core
from sshcore.events import Event
from sshcore.prompts import HostKeyMismatch, HostKeyQuestion


@dataclass
class ScriptedPrompts:
    """Answers like a user would, and remembers what was asked."""

    trust: bool = True
    passwords: list[str] = field(default_factory=list)
    passphrases: list[str] = field(default_factory=list)
    questions: list[HostKeyQuestion] = field(default_factory=list)
    mismatches: list[HostKeyMismatch] = field(default_factory=list)
    password_prompts: list[str] = field(default_factory=list)

    async def password(self, host: str, prompt: str) -> str | None:
        self.password_prompts.append(prompt)
        return self.passwords.pop(0) if self.passwords else None

    async def passphrase(self, key_path: str) -> str | None:
        return self.passphrases.pop(0) if self.passphrases else None

    async def confirm_host_key(self, question: HostKeyQuestion) -> bool:
        self.questions.append(question)
        return self.trust

    async def host_key_changed(self, mismatch: HostKeyMismatch) -> None:
        self.mismatches.append(mismatch)


def write_config(
    path: Path,
    hosts: dict[str, dict[str, Any]],
    tunnels: dict[str, dict[str, Any]] | None = None,
    **settings: Any,
) -> Path:
    """A config file with `settings`, `hosts` and `tunnels` tables."""
    doc = tomlkit.document()
    base = {"known_hosts": str(path.parent / "known_hosts"), "connect_timeout": 5.0}
    doc["settings"] = {**base, **settings}
    doc["hosts"] = hosts
    if tunnels:
        doc["tunnels"] = tunnels
    path.write_text(tomlkit.dumps(doc))
    return path


def make_core(
    tmp_path: Path,
    hosts: dict[str, dict[str, Any]],
    tunnels: dict[str, dict[str, Any]] | None = None,
    prompts: ScriptedPrompts | None = None,
    **settings: Any,
) -> tuple[Core, ScriptedPrompts, list[Event]]:
    """A Core on a fresh config, with its events collected in a list."""
    path = write_config(tmp_path / "config.toml", hosts, tunnels, **settings)
    prompts = prompts or ScriptedPrompts()
    core = Core(Config.load(path), prompts, log_file=tmp_path / "devtui.log")
    events: list[Event] = []
    core.subscribe(events.append)
    return core, prompts, events


def sshd_host(sshd: Any, **extra: Any) -> dict[str, Any]:
    """A [hosts.X] table for the harness's OpenSSH sshd, logging in with its client key."""
    return {
        "hostname": "127.0.0.1",
        "port": sshd.port,
        "user": sshd.user,
        "identity_file": str(sshd.client_key()),
        **extra,
    }


async def wait_for(
    predicate: Callable[[], bool], timeout: float, interval: float = 0.02, what: str = ""
) -> float:
    """Poll until `predicate()`; returns the seconds it took, fails the test on timeout."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(interval)
    return time.monotonic() - start


def of_type(events: Iterable[Event], kind: type) -> list[Any]:
    """The events of one class."""
    return [e for e in events if isinstance(e, kind)]


def isolate_home(monkeypatch: Any, tmp_path: Path) -> Path:
    """HOME in tmp (so ~/.ssh is empty) and no ssh-agent: only what a test sets up is used."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home
