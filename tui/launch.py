"""Start the dashboard: on the user's config, or on the built-in demo host."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TYPE_CHECKING

from sshcore.config import Config
from sshcore.errors import ConfigError

# Textual draws at most 60 frames a second, and after a frame that took long it waits one to
# two frames for the next: a key pressed just after a busy repaint was drawn 17-33 ms later
# (bench/dashboard.py load --trace-slow: "tick"). At 120 the wait halves; frames are drawn
# only when something changed, so an idle dashboard costs the same. Read when Textual is
# first imported, which the dashboard does after this module (TEXTUAL_FPS set by the user
# wins).
_FPS_OURS = "TEXTUAL_FPS" not in os.environ
os.environ.setdefault("TEXTUAL_FPS", "120")

if TYPE_CHECKING:
    from sshcore.core import Core
    from sshcore.prompts import Prompts

    from .app import DevTuiApp


def _core_factory(config: Config) -> object:
    def make(prompts: Prompts) -> Core:
        from sshcore.core import Core  # asyncssh: imported after the first paint

        return Core(config, prompts, interactive=True)

    return make


def build_app(config: Config, *, banner: str | None = None) -> DevTuiApp:
    """The dashboard on `config` (the core is built after the first paint), in a process of
    its own: the garbage collector is tuned for short pauses (tui/heap.py)."""
    from . import heap
    from .app import DevTuiApp

    if _FPS_OURS:  # Textual has read it; the shells and programs devtui starts must not
        os.environ.pop("TEXTUAL_FPS", None)
    heap.tune()
    return DevTuiApp(  # type: ignore[arg-type]
        config, _core_factory(config), banner=banner, settle_heap=True
    )


def _load(path: str | None) -> Config | None:
    try:
        config = Config.load(path)
    except ConfigError as e:
        more = len(getattr(e, "others", []))
        tail = f" (and {more} more: see devtui check)" if more else ""
        print(f"devtui: error: {e}{tail}", file=sys.stderr)
        return None
    return config


async def _run(app: DevTuiApp) -> int:
    try:
        result = await app.run_async()
    finally:
        if app.core is not None:
            await app.core.close()  # whatever way the app ended: no listener outlives it
    return result if isinstance(result, int) else 0


def run_dashboard(config_path: str | None) -> int:
    """`devtui`: the dashboard on the user's config; a broken file is one line, exit 1."""
    config = _load(config_path)
    if config is None:
        return 1
    return asyncio.run(_run(build_app(config)))


def demo_banner(url: str) -> str:
    """The demo's top line: the next step a newcomer takes."""
    return f"demo: 2 then o opens {url}"


def run_demo(port: int = 0) -> int:
    """`devtui demo`: the dashboard on an embedded demo host, connected, its tunnel up."""
    return asyncio.run(_demo(port))


async def _demo(port: int) -> int:
    from sshcore.demo import DemoSite

    async with DemoSite(port) as demo:
        config = Config.load(demo.config_path)
        banner = demo_banner(demo.url)
        app = build_app(config, banner=banner)
        return await _run(app)
