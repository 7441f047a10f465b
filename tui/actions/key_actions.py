"""What the Keys pane's keys do: list, copy, show, generate, install, fix permissions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from sshcore.api import DevtuiError

if TYPE_CHECKING:
    from sshcore.api import KeyInfo

    from ..app import DevTuiApp
    from ..screens.forms import KeygenRequest


class KeyActions:
    """What the Keys pane's keys do; the app holds one as `app.key_actions`."""

    def __init__(self, app: DevTuiApp) -> None:
        self.app = app

    def load_keys(self) -> None:
        """Read ~/.ssh (and the hosts' key files) in the background."""
        self.app.run_worker(self._load_keys(), group="keys", exclusive=True, exit_on_error=False)

    async def _load_keys(self) -> None:
        from sshcore.api import keys

        agent = await keys.agent_key_blobs()
        hosts = list(self.app.config.hosts.values())
        found = await asyncio.to_thread(keys.list_keys, hosts, agent_blobs=agent)
        pane = self.app.keys_pane
        pane.keys = found
        pane.loaded = True
        pane.refresh_rows(full=True)

    def copy_public_key(self, info: KeyInfo) -> None:
        """`y`: the public key line to the clipboard (OSC 52, also over SSH)."""
        if not info.public_line:
            raise DevtuiError(f"{info.name}: {info.problem or 'no public key'}")
        self.app.copy_to_clipboard(info.public_line)
        self.app.notify(f"Copied the public key {info.name}: paste it into your provider's form")

    def show_key(self, info: KeyInfo) -> None:
        """`s`: the public key and what devtui knows of the key."""
        from ..screens.dialogs import TextScreen

        if not info.public_line:
            raise DevtuiError(f"{info.name}: {info.problem or 'no public key'}")
        facts = [
            info.public_line,
            "",
            f"file         {info.path}",
            f"type         {info.key_type} {info.bits or ''}",
            f"fingerprint  {info.fingerprint}",
            f"passphrase   {'yes' if info.encrypted else 'no'}",
        ]
        if info.hosts:
            facts.append(f"hosts        {', '.join(info.hosts)}")
        if info.permissions_note:
            facts.append(f"permissions  {info.permissions_note}")
        self.app.push_screen(
            TextScreen(f"Key {info.name}", "\n".join(facts), copy=info.public_line)
        )

    def generate_key(self) -> None:
        """`g`: the keygen form, then the key made in a thread (owner-only from the start)."""
        from sshcore.api import default_key_path

        from ..screens.forms import KeygenScreen

        self.app.push_screen(KeygenScreen(str(default_key_path("ed25519"))), callback=self._keygen)

    def _keygen(self, request: object) -> None:
        from ..screens.forms import KeygenRequest

        if isinstance(request, KeygenRequest):
            self.app.job(self._generate(request), f"generating {Path(request.path).name}")

    async def _generate(self, request: KeygenRequest) -> None:
        from sshcore.api import keys

        info = await asyncio.to_thread(
            keys.generate_key,
            Path(request.path).expanduser(),
            key_type=request.key_type,
            bits=request.bits,
            comment=request.comment,
            passphrase=request.passphrase,
        )
        self.app.notify(f"Generated {info.name} ({info.fingerprint}): y copies the public key")
        self.app.log_line("info", f"generated key {info.path} ({info.fingerprint})")
        await self._load_keys()
        keys_pane = self.app.keys_pane
        keys_pane.select_row(str(info.path))
        keys_pane.focus_main()

    def install_key(self, info: KeyInfo) -> None:
        """`u`: pick a host, then install the key there like ssh-copy-id and prove it works."""
        from ..screens.dialogs import PickScreen

        if not self.app.config.hosts:
            raise DevtuiError("no hosts yet: add one first (1, then p)")
        choices = [(h.name, f"{h.name}  {h.destination}") for h in self.app.config.hosts.values()]

        def picked(host: object) -> None:
            if isinstance(host, str):
                self.app.job(self._install(info, host), f"installing {info.name} on {host}")

        self.app.push_screen(PickScreen(f"Install {info.name} on", choices), callback=picked)

    async def _install(self, info: KeyInfo, host: str) -> None:
        outcome = await self.app.require_core().install_key(host, info.path)
        if outcome.result.added:
            text = f"Installed {info.name} on {host}"
        else:
            text = f"{info.name} was already on {host}"
        if outcome.verified:
            text += ", key-only login verified"
        elif outcome.verified is None:
            text += " (login with it not tested: it needs its passphrase)"
        self.app.notify(text, timeout=8)
        self.app.log_line("info", text)
        await self._load_keys()

    def fix_key_permissions(self, info: KeyInfo) -> None:
        """`f`: make the private key owner-only, after a confirmation."""
        from ..screens.dialogs import ConfirmScreen

        self.app.push_screen(
            ConfirmScreen(
                "Fix permissions",
                f"Make {info.path} readable by you only (as OpenSSH demands)?",
                yes="fix",
            ),
            callback=self.app.if_yes(lambda: self.app.job(self._fix(info), f"fixing {info.name}")),
        )

    async def _fix(self, info: KeyInfo) -> None:
        from sshcore.api import keys

        done = await asyncio.to_thread(keys.fix_permissions, info.path)
        self.app.said([done])
        await self._load_keys()
