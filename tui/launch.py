"""Start the dashboard: on the user's config, or on the built-in demo host."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import threading
import time
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


HANGUP_GRACE = 10.0  # s a dashboard whose terminal went has to end by itself


def end_on_hangup(
    loop: asyncio.AbstractEventLoop,
    end: Callable[[], object],
    last_resort: Callable[[], object] = lambda: None,
    platform: str | None = None,
    grace: float = HANGUP_GRACE,
) -> Callable[[], None]:
    """End the dashboard as `q` does when its terminal goes (SIGHUP: the SSH session it ran
    in dropped) or on a `kill` (SIGTERM), instead of dying on the spot with its tunnels'
    and the demo's temp folder left to chance. Windows has neither signal (a closed console
    ends the process outright; Ctrl+C is a key in the dashboard). Returns the undo.

    After a hangup the terminal is gone, and Textual would take the SIGCONT the kernel sends
    with SIGHUP for a resume and draw on it again: a write there fails, and a writer thread
    that died of it hung the exit (caught under load, 1 run in 8). So: no resume, the
    terminal's descriptors point at /dev/null (writes land, reads end), then `end`; and if
    the process is still there after `grace` s, `last_resort` and it is killed. Also where
    SIGHUP came in ignored (nohup, or a parent such as pytest-xdist's workers): a dashboard
    without a terminal shows nothing to anyone and would hold its tunnels open to no end."""
    if (platform or os.name) == "nt":
        return lambda: None

    def watchdog() -> None:
        time.sleep(grace)
        try:
            last_resort()
        finally:  # SIGKILL: a thread cannot give SIGHUP back its default, SIGTERM is ours
            os.kill(os.getpid(), signal.SIGKILL)

    def hung_up(*_: object) -> None:
        signal.signal(signal.SIGCONT, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        loop.call_soon_threadsafe(end)
        threading.Thread(target=watchdog, name="devtui-hangup", daemon=True).start()

    # A plain handler, not the loop's: it runs even while the loop waits on a full queue.
    previous = signal.signal(signal.SIGHUP, hung_up)
    loop.add_signal_handler(signal.SIGTERM, end)

    def undo() -> None:
        signal.signal(signal.SIGHUP, previous)
        loop.remove_signal_handler(signal.SIGTERM)

    return undo


async def _run(
    app: DevTuiApp, *, headless: bool = False, last_resort: Callable[[], object] = lambda: None
) -> int:
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
    unhook = end_on_hangup(asyncio.get_running_loop(), app.exit, last_resort)
    try:
        result = await app.run_async(headless=headless)
    finally:
        unhook()
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

    def remove_folders() -> None:  # a hangup's last resort: no loop to close them on
        for demo in started:
            shutil.rmtree(demo.folder, ignore_errors=True)

    try:
        code = await _run(app, last_resort=remove_folders)
    finally:
        for demo in started:
            await demo.__aexit__(None, None, None)
    if app.prepare_error is not None:
        print(f"devtui: error: {app.prepare_error}", file=sys.stderr)
        return 1
    return code
