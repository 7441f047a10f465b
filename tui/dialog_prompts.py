"""The dashboard's answers to the core's questions: every prompt is a modal screen."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sshcore.api import HostKeyMismatch, HostKeyQuestion

if TYPE_CHECKING:
    from textual.app import App
    from textual.screen import Screen


class TuiPrompts:
    """sshcore's Prompts, answered in modals; escape means "cancel this one" (None / False)."""

    def __init__(self, app: App[Any]) -> None:
        self.app = app

    async def _ask(self, screen: Screen[Any]) -> Any:
        # Called from the core's tasks on the app's own loop: push the modal, wait for it.
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def done(result: Any) -> None:
            if not future.done():
                future.set_result(result)

        self.app.push_screen(screen, callback=done)
        try:
            return await future
        except asyncio.CancelledError:  # the connect was cancelled: take the question away
            if self.app.screen is screen:  # dismiss() pops the top screen, whichever it is
                screen.dismiss(None)
            raise

    async def password(self, host: str, prompt: str) -> str | None:
        from .screens.dialogs import SecretScreen

        answer = await self._ask(SecretScreen(f"Password for {host}", prompt))
        return answer if isinstance(answer, str) else None

    async def passphrase(self, key_path: str) -> str | None:
        from .screens.dialogs import SecretScreen

        answer = await self._ask(SecretScreen("Key passphrase", f"Passphrase for {key_path}"))
        return answer if isinstance(answer, str) else None

    async def confirm_host_key(self, question: HostKeyQuestion) -> bool:
        from .screens.dialogs import HostKeyScreen

        return bool(await self._ask(HostKeyScreen(question)))

    async def host_key_changed(self, mismatch: HostKeyMismatch) -> None:
        from .screens.dialogs import HostKeyChangedScreen

        self.app.bell()
        await self._ask(HostKeyChangedScreen(mismatch))
