"""Start the dashboard: on the user's config, or on the built-in demo host."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sshcore.api import Config, ConfigError, log_file_path, visible

# Textual draws at most 60 frames a second, and after a frame that took long it waits one to
# two frames for the next: a key pressed just after a busy repaint was drawn 17-33 ms later
# (bench/dashboard.py load --trace-slow: "tick"). At 120 the wait halves; frames are drawn
# only when something changed, so an idle dashboard costs the same. Read when Textual is
# first imported, which the dashboard does after this module (TEXTUAL_FPS set by the user
# wins).
_FPS_OURS = "TEXTUAL_FPS" not in os.environ
os.environ.setdefault("TEXTUAL_FPS", "120")

if TYPE_CHECKING:
    from sshcore.api import Core, Prompts

    from .app import DevTuiApp, Prepare


def build_app(
    config: Config, *, banner: str | None = None, prepare: Prepare | None = None
) -> DevTuiApp:
    """The dashboard on `config` (the core is built after the first paint), in a process of
    its own: the garbage collector is tuned for short pauses (tui/gc_policy.py). With `prepare`,
    the config is what it gives once the panes are drawn."""
    from . import gc_policy
    from .app import DevTuiApp

    if _FPS_OURS:  # Textual has read it; the shells and programs devtui starts must not
        os.environ.pop("TEXTUAL_FPS", None)
    gc_policy.tune()
    app: DevTuiApp

    def make(prompts: Prompts) -> Core:
        from sshcore.api import Core  # asyncssh: imported after the first paint

        return Core(app.config, prompts, interactive=True)  # the prepared one, if any

    app = DevTuiApp(config, make, banner=banner, settle_heap=True, prepare=prepare)
    return app


def _load(path: str | None) -> Config | None:
    try:
        config = Config.load(path)
    except ConfigError as e:
        more = len(getattr(e, "others", []))
        tail = f" (and {more} more: see devtui check)" if more else ""
        print(f"devtui: error: {e}{tail}", file=sys.stderr)
        return None
    return config


CRASHED = 70  # EX_SOFTWARE: the dashboard ended on a bug (the traceback is in the log file)


def hangup_signals(platform: str) -> list[str]:
    """What ends the dashboard from outside as `q` does: its terminal closing (SIGHUP: the
    SSH session it ran in dropped) or a `kill` (SIGTERM). Windows has neither (a closed
    console ends the process outright); Ctrl+C is a key in the dashboard, not a signal."""
    return [] if platform == "nt" else ["SIGHUP", "SIGTERM"]


def end_on_hangup(
    loop: asyncio.AbstractEventLoop, end: Callable[[], object], platform: str | None = None
) -> list[int]:
    """Route `hangup_signals` to `end` (tunnels stop, the demo's temp folder goes, instead
    of the process dying on the spot); the signal numbers hooked, to unhook after."""
    hooked = []
    for name in hangup_signals(platform or os.name):
        number = getattr(signal, name, None)
        # Also where SIGHUP came in ignored (nohup, or a parent that ignores it, as pytest's
        # xdist workers do): a dashboard whose terminal is gone has no one to show anything
        # to, and would hold its tunnels open to no end.
        if number is not None:
            loop.add_signal_handler(number, end)
            hooked.append(number)
    return hooked


async def _run(app: DevTuiApp, *, headless: bool = False) -> int:
    """Run the dashboard to its end; whatever way it ends, no listener outlives it. A crash
    (an exception Textual could not hand to an action's guard) is loud: exit status 70, the
    tunnels stopped, the traceback in the log file and one line on stderr naming it."""
    import io

    from rich.console import Console

    # Textual prints a crash's traceback on this console once the screen is restored: it
    # goes to the log file instead, and the user gets one line.
    errors = io.StringIO()
    app.error_console = Console(
        file=errors, markup=False, highlight=False, color_system=None, width=100
    )
    result: object = None
    hooked = end_on_hangup(asyncio.get_running_loop(), app.exit)
    try:
        result = await app.run_async(headless=headless)
    finally:
        for number in hooked:
            asyncio.get_running_loop().remove_signal_handler(number)
        report = errors.getvalue()
        crashed = bool(report.strip()) and bool(app.return_code)
        log_file = _record_crash(app, report) if crashed else None
        if app.core is not None:
            await app.core.close()
    if crashed:
        what = next((ln.strip() for ln in reversed(report.splitlines()) if ln.strip()), "")
        where = f"the traceback is in {log_file}" if log_file else "no log file could be written"
        print(
            f"devtui: the dashboard stopped on an unexpected error ({visible(what)[:200]}); "
            f"its tunnels were stopped; {where}",
            file=sys.stderr,
        )
        return CRASHED
    if report:
        sys.stderr.write(report)  # what Textual had to say on a normal exit
    return result if isinstance(result, int) else 0


def _record_crash(app: DevTuiApp, report: str) -> Path | None:
    """The crash's traceback to the log file (through the core's log when it is up)."""
    from sshcore.api import UnexpectedError

    what = next((ln.strip() for ln in reversed(report.splitlines()) if ln.strip()), "")
    event = UnexpectedError("the dashboard", what, report)
    if app.core is not None and app.core.log_file is not None:
        app.core.bus.publish(event)  # the FileLog writes it; core.close() flushes it
        return app.core.log_file
    path = log_file_path(app.config.settings)  # where the core would have written it
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(f"{event.message()}\n{report}\n")
    except OSError:
        return None
    return path


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
    # The panes are drawn first; the demo host (asyncssh, a host key, a server) starts once
    # they are, and then the config it writes is the dashboard's.
    import tempfile

    started: list[Any] = []

    async def prepare() -> tuple[Config, str | None]:
        from sshcore.api import DemoSite

        demo = DemoSite(port)
        await demo.__aenter__()
        started.append(demo)
        return Config.load(demo.config_path), demo_banner(demo.url)

    waiting = Config(Path(tempfile.gettempdir()) / "devtui-demo-starting.toml")
    app = build_app(waiting, banner="demo: starting the demo host…", prepare=prepare)
    try:
        code = await _run(app)
    finally:
        for demo in started:
            await demo.__aexit__(None, None, None)
    if app.prepare_error is not None:
        print(f"devtui: error: {app.prepare_error}", file=sys.stderr)
        return 1
    return code
