"""`devtui run` stops the remote command when its reader goes away, checked by the command's pid.

Looking for sshd's children after devtui has exited proves nothing: a command left behind
has been re-parented to PID 1 by then and is no one's child. The command writes its own pid
to a file first (the sshd is local, so the pid is ours to look at).
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from coreutil import isolate_home, make_core, sshd_host, wait_for, write_config

DEVTUI = [sys.executable, "-m", "tui"]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _script(pid_file: Path) -> str:
    # Quiet after its first line: it would never notice a closed pipe by itself.
    return f"echo $$ > {shlex.quote(str(pid_file))}; echo x; exec sleep 300"


def _pid(pid_file: Path) -> int:
    return int(pid_file.read_text().split()[0])


async def test_run_into_a_closed_pipe_stops_the_command_itself(sshd, tmp_path: Path) -> None:
    # `devtui run box -- journalctl -f | head -1`: head exits, devtui ends with 141 (as ssh
    # does on SIGPIPE), and the command on the host ends with it.
    config = write_config(tmp_path / "c.toml", {"box": sshd_host(sshd)})
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "DEVTUI_CONFIG")}
    env.update(HOME=str(home), DEVTUI_CONFIG=str(config))
    pid_file = tmp_path / "remote.pid"
    read, write = os.pipe()
    os.close(read)
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            [*DEVTUI, "run", "box", "--accept-new", "--", "sh", "-c", _script(pid_file)],
            env=env,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr
    pid = _pid(pid_file)
    await wait_for(lambda: not _alive(pid), 8, what=f"remote command (pid {pid}) to end")


async def test_core_run_whose_reader_fails_stops_the_command(
    sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same through the core, as the dashboard's follow view or a script uses it: the
    # output callback's error ends the run and the remote command, and the connection
    # stays good for the next command.
    isolate_home(monkeypatch, tmp_path)
    pid_file = tmp_path / "remote.pid"
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)})

    def reader_gone(stream: str, data: bytes) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    async with core:
        with pytest.raises(BrokenPipeError):
            await asyncio.wait_for(
                core.run("box", ["sh", "-c", _script(pid_file)], reader_gone), 30
            )
        pid = _pid(pid_file)
        await wait_for(lambda: not _alive(pid), 8, what=f"remote command (pid {pid}) to end")
        assert await core.run("box", ["true"]) == 0
