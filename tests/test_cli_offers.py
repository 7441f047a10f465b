"""The command line of issue 8: `devtui up` prints the "moved to 7861?" hint, `tunnels
retarget` follows it, and `logs` / `shell` refuse bad input with one clear line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import tomllib
from cliutil import Done, run_cli
from coreutil import sshd_host, write_config
from remote_program import ONE_AT_A_TIME, RemoteProgram, echo, free_neighbour_ports


def _env(tmp_path: Path, config: Path) -> dict[str, str]:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    return {**env, "HOME": str(home), "DEVTUI_CONFIG": str(config)}


def _devtui(env: dict[str, str], *argv: str) -> Done:
    """`devtui ARGV` in-process (tests/cliutil.py); `up` below runs as the real process."""
    return run_cli(*argv, env=env)


def _free() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@ONE_AT_A_TIME
def test_up_prints_the_moved_hint_and_tunnels_retarget_follows_it(
    sshd: Any, tmp_path: Path
) -> None:
    first, second = free_neighbour_ports()
    local = _free()
    tunnels = {"gradio": {"host": "box", "listen": f"127.0.0.1:{local}", "target": str(first)}}
    tunnels["gradio"]["target"] = f"127.0.0.1:{first}"
    config = write_config(
        tmp_path / "c.toml", {"box": sshd_host(sshd)}, tunnels, discover_interval=0.2
    )
    env = _env(tmp_path, config)
    up = subprocess.Popen(
        [sys.executable, "-m", "tui", "up", "gradio", "--accept-new"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    errors: list[str] = []
    assert up.stderr is not None
    reader = threading.Thread(target=lambda: errors.extend(up.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()

    def wait(what: str) -> None:
        deadline = time.monotonic() + 60
        while not any(what in line for line in errors):
            if up.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"waiting for {what!r}: {errors}")
            time.sleep(0.05)

    app = None
    try:
        wait("tunnel gradio: up")
        wait("box: watching its ports")
        app = RemoteProgram("gradio", port=first)  # `python app.py`: Gradio on 7860
        wait(f"tunnel gradio: box:{first} is listening")
        assert echo(local, b"v1") == b"v1"
        app.stop()
        wait("tunnel gradio: remote closed")  # the watcher saw gradio there, then gone
        app = RemoteProgram("gradio", port=second)  # Gradio restarts one port up
        hint = f"gradio moved to {second}?"
        deadline = time.monotonic() + 60
        while not any(hint in line for line in errors) and time.monotonic() < deadline:
            assert echo(local, b"v2") == b""  # the browser reloads: refused
            time.sleep(0.3)
        wait(hint)
        line = next(line for line in errors if hint in line)
        assert f"devtui tunnels retarget gradio {second}" in line
        assert not any("f to forward" in line for line in errors)  # dashboard words only there
    finally:
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=30) == 0
        if app is not None:
            app.stop()
    done = _devtui(env, "tunnels", "retarget", "gradio", str(second))
    assert done.returncode == 0, done.stderr
    assert f"-> 127.0.0.1:{second}" in done.stdout
    saved = tomllib.loads(config.read_text())["tunnels"]["gradio"]
    assert saved["target"] == f"127.0.0.1:{second}" and saved["listen"] == f"127.0.0.1:{local}"


def test_retarget_logs_and_shell_refuse_bad_input_with_one_line(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.toml",
        {"box": {"hostname": "127.0.0.1", "port": 9}},
        {"socks": {"host": "box", "kind": "dynamic", "listen": "127.0.0.1:1080"}},
    )
    env = _env(tmp_path, config)
    for argv, code, words in (
        (["tunnels", "retarget", "nope", "7861"], 1, "no tunnel named 'nope'"),
        (["tunnels", "retarget", "socks", "7861"], 1, "SOCKS proxy: it has no target port"),
        (["tunnels", "retarget", "socks", "70000"], 2, "not a port (1-65535)"),
        (["logs", "box", "/var/log/x", "-n", "-3"], 2, "not a number of lines"),
        (["logs", "nope", "/var/log/x"], 1, "no host named 'nope'"),
        (["logs", "box", "relative.log"], 1, "absolute path"),
        (["shell", "nope"], 1, "no host named 'nope'"),
    ):
        done = _devtui(env, *argv)
        assert done.returncode == code, (argv, done.stderr)
        assert words in done.stderr, (argv, done.stderr)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 3
