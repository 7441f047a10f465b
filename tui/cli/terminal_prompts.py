"""The command line's answers to the core's questions: getpass, y/N on a terminal, or flags."""

from __future__ import annotations

import asyncio
import getpass
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sshcore.api import HostKeyMismatch, HostKeyQuestion

_T = TypeVar("_T")


async def _in_daemon_thread(func: Callable[..., _T], *args: Any) -> _T:
    """Run a blocking terminal read without holding up exit: asyncio.to_thread's worker would
    keep Ctrl+C waiting until the user pressed Enter at an abandoned prompt."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def work() -> None:
        try:
            result = func(*args)
        except BaseException as e:  # handed to the awaiting task, not lost in the thread
            loop.call_soon_threadsafe(_settle, future, None, e)
        else:
            loop.call_soon_threadsafe(_settle, future, result, None)

    threading.Thread(target=work, daemon=True, name="devtui-prompt").start()
    return await future


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class CliPrompts:
    """Prompts for a terminal. Without one (scripts, CI) nothing is asked: flags decide."""

    def __init__(
        self,
        *,
        accept_new: bool = False,
        password: str | None = None,
        password_host: str | None = None,
        ask_host_keys: bool = True,
    ) -> None:
        """`password` (--password-stdin) is for host `password_host` alone: a jump host on
        the way, or another host of the same command, must never receive it."""
        if password is not None and password_host is None:
            raise ValueError("a given password must name the host it is for")
        self.accept_new = accept_new
        self._password = password
        self.password_host = password_host
        self.ask_host_keys = ask_host_keys
        self.tty = sys.stdin is not None and sys.stdin.isatty()

    async def password(self, host: str, prompt: str) -> str | None:
        if self._password is not None and host == self.password_host:
            # --password-stdin: given once; a second request means it was wrong.
            password, self._password = self._password, None
            return password
        if not self.tty:
            return None
        try:
            return await _in_daemon_thread(getpass.getpass, f"{prompt}: ")
        except (EOFError, KeyboardInterrupt):
            return None

    async def passphrase(self, key_path: str) -> str | None:
        if not self.tty:
            return None
        try:
            return await _in_daemon_thread(getpass.getpass, f"Passphrase for {key_path}: ")
        except (EOFError, KeyboardInterrupt):
            return None

    async def confirm_host_key(self, question: HostKeyQuestion) -> bool:
        _say(
            f"The authenticity of host {question.address} ({question.host}) can't be established.\n"
            f"{question.key_type} key fingerprint is {question.fingerprint}."
        )
        if self.accept_new:
            _say("Trusting it (--accept-new) and saving it to known_hosts.")
            return True
        if not (self.tty and self.ask_host_keys):
            _say("Not trusted: run interactively to check it, or pass --accept-new.")
            return False
        try:
            answer = await _in_daemon_thread(input, "Trust this key and continue? [y/N] ")
        except (EOFError, KeyboardInterrupt):
            return False
        return answer.strip().lower() in ("y", "yes")

    async def host_key_changed(self, mismatch: HostKeyMismatch) -> None:
        bar = "@" * 62
        _say(
            f"{bar}\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!        @\n{bar}\n"
            f"Host {mismatch.address} ({mismatch.host}) now offers {mismatch.key_type} key\n"
            f"  {mismatch.new_fingerprint}\n"
            f"but {mismatch.known_hosts_file}:{mismatch.known_hosts_line} says\n"
            f"  {mismatch.old_fingerprint}\n"
            "Someone could be eavesdropping on you (man-in-the-middle), or the machine was\n"
            "rebuilt. The connection was refused. If you are sure it was rebuilt:\n"
            f"  devtui hosts forget-key {mismatch.host}"
        )


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
