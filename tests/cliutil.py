"""`devtui` in-process: `tui.cli.main(argv)` with a given environment, stdin and directory.

A launch of `python -m tui` costs ~0.45 s of interpreter start and imports; most CLI tests
check what a command prints and returns, which is the same in-process. The few tests of the
real process (the console script, --version, signals, a terminal, import time, stdin as a
pipe) keep running it for real.

What a subprocess would isolate is isolated here: os.environ (replaced as a whole, as
`subprocess.run(env=...)` does), the working directory, sys.stdin/stdout/stderr (text
streams over bytes, like pipes; never a terminal). The command runs on the main thread, as
in a real process (`logs` hooks SIGINT; asyncio.run's loop removes the hook when it closes);
called from an async test, in a thread of its own, so that its `asyncio.run` works there
(no signal hooks in a thread: `up` and `logs` with Ctrl+C stay real processes).
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_LOCK = threading.Lock()  # one in-process command at a time: the streams are process-wide


@dataclass
class Done:
    """What a finished command left: as subprocess.CompletedProcess (the fields tests read)."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


class _Pipe(io.TextIOWrapper):
    """A pipe-like text stream: bytes underneath, UTF-8, never a terminal."""

    def __init__(self, data: bytes = b"") -> None:
        super().__init__(io.BytesIO(data), encoding="utf-8", newline=None)

    def value(self) -> str:
        self.flush()
        raw = self.buffer
        assert isinstance(raw, io.BytesIO)
        return raw.getvalue().decode("utf-8", errors="replace").replace("\r\n", "\n")


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_cli(
    *argv: str,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    cwd: Path | str | None = None,
    timeout: float = 60,
) -> Done:
    """Run `devtui ARGV` in this process; returns its exit status, stdout and stderr.

    `env` replaces the whole environment for the call (None: this process's own).
    """
    from tui.cli import main

    args = [str(a) for a in argv]
    result: dict[str, object] = {}
    streams = (_Pipe((stdin or "").encode()), _Pipe(), _Pipe())

    def target() -> None:
        try:
            result["code"] = main(args)
        except SystemExit as e:  # argparse: --help, --version, usage errors
            code = e.code
            if code is None:
                result["code"] = 0
            elif isinstance(code, int):
                result["code"] = code
            else:
                print(code, file=sys.stderr)
                result["code"] = 1
        except BaseException as e:  # a traceback a real process would have printed
            import traceback

            traceback.print_exception(e, file=sys.stderr)
            result["code"] = 1

    with _LOCK:
        saved_env = dict(os.environ)
        saved_cwd = os.getcwd()
        saved_streams = (sys.stdin, sys.stdout, sys.stderr)
        try:
            if env is not None:
                os.environ.clear()
                os.environ.update(env)
            if cwd is not None:
                os.chdir(cwd)
            sys.stdin, sys.stdout, sys.stderr = streams
            if _loop_running() or threading.current_thread() is not threading.main_thread():
                thread = threading.Thread(target=target, name=f"devtui {' '.join(args)[:40]}")
                thread.daemon = True
                thread.start()
                thread.join(timeout)
                if thread.is_alive():
                    raise AssertionError(f"devtui {args} still running after {timeout} s")
            else:  # the main thread, as in a real process: `logs` hooks SIGINT
                target()
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved_streams
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
    code = result["code"]
    assert isinstance(code, int)
    return Done(args, code, streams[1].value(), streams[2].value())
