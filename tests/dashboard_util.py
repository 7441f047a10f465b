"""Helpers for dashboard tests: an app on a real Core, waits that keep the app's loop running."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coreutil import write_config
from textual.pilot import Pilot
from textual.widgets import DataTable

from sshcore.config import Config
from sshcore.core import Core
from tui.app import DevTuiApp


def make_app(
    tmp_path: Path,
    hosts: dict[str, dict[str, Any]],
    tunnels: dict[str, dict[str, Any]] | None = None,
    *,
    autostart: bool = False,
    **settings: Any,
) -> DevTuiApp:
    """The dashboard on a fresh config in tmp_path, its Core writing tmp_path/devtui.log."""
    settings.setdefault("log_file", str(tmp_path / "devtui.log"))
    path = write_config(tmp_path / "config.toml", hosts, tunnels, **settings)
    config = Config.load(path)

    def factory(prompts: Any) -> Core:
        return Core(config, prompts, log_file=tmp_path / "devtui.log")

    return DevTuiApp(config, factory, autostart=autostart)


async def until(
    pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float, what: str
) -> None:
    """Let the app run until `predicate()`; fails the test with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)


async def ready(pilot: Pilot[Any]) -> DevTuiApp:
    """Wait for the app's core (built after the first paint)."""
    app = pilot.app
    assert isinstance(app, DevTuiApp)
    await asyncio.wait_for(app.core_ready.wait(), 15)
    await pilot.pause()
    return app


def cell_texts(table: DataTable[Any], row_key: str) -> list[str]:
    """The plain text of every cell of one row."""
    return [str(getattr(c, "plain", c)) for c in table.get_row(row_key)]


def shown(app: DevTuiApp, screen_type: type) -> bool:
    """Whether the active screen is a `screen_type` with its contents drawn (not just pushed)
    and taking keys (a question that opened by itself ignores keys for a moment)."""
    screen = app.screen
    settling = getattr(screen, "settling", None)
    return (
        isinstance(screen, screen_type)
        and bool(screen.query("Label"))
        and not (settling is not None and getattr(screen, "settle", 0) and settling())
    )


def screen_text(app: DevTuiApp) -> str:
    """Everything the active screen shows, as plain text."""
    texts = []
    for widget in app.screen.query("Static, Label"):
        rendered = widget.render()
        texts.append(str(getattr(rendered, "plain", rendered)))
    return "\n".join(texts)


async def type_text(pilot: Pilot[Any], text: str) -> None:
    """Type `text` into the focused input (each character a key press)."""
    await pilot.press(*[_key(c) for c in text])


_NAMES = {
    " ": "space",
    "-": "minus",
    ".": "full_stop",
    ":": "colon",
    "@": "at",
    "/": "slash",
    "_": "underscore",
    "'": "apostrophe",
    "=": "equals_sign",
    "~": "tilde",
}


def _key(char: str) -> str:
    return _NAMES.get(char, char)
