"""The `devtui` command against a real sshd: up, hosts test, run, forget-key.

`up`, Ctrl+C, a closed pipe and one --password-stdin run the real process; the rest call
the CLI in-process (tests/cliutil.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from cliutil import Done, run_cli
from coreutil import sshd_host, write_config
from harness.net import echo_roundtrip_sync, free_port, wait_port

DEVTUI = [sys.executable, "-m", "tui"]


def _env(tmp_path: Path, config: Path) -> dict[str, str]:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env.update(HOME=str(home), DEVTUI_CONFIG=str(config), PYTHONUNBUFFERED="1")
    return env


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _devtui(
    env: dict[str, str], *argv: str, stdin: str | None = None, real: bool = False
) -> subprocess.CompletedProcess[str] | Done:
    """`devtui ARGV` in-process (tests/cliutil.py); `real=True` launches `python -m tui`."""
    if not real:
        return run_cli(*argv, env=env, stdin=stdin)
    return subprocess.run(
        [*DEVTUI, *argv], env=env, capture_output=True, text=True, input=stdin, timeout=60
    )


def test_up_serves_tunnels_until_sigterm_then_exits_0(sshd, echo_server, tmp_path) -> None:
    port = free_port()
    tunnels = {
        "web": {"host": "box", "listen": f"{port}", "target": f"127.0.0.1:{echo_server.port}"}
    }
    config = write_config(tmp_path / "c.toml", {"box": sshd_host(sshd)}, tunnels)
    env = _env(tmp_path, config)
    # Headless: the unknown host key is refused without --accept-new.
    refused = subprocess.run(
        [*DEVTUI, "up"], env=env, stderr=subprocess.PIPE, text=True, timeout=30
    )
    assert "Not trusted" in refused.stderr and "--accept-new" in refused.stderr
    assert "nothing left to run" in refused.stderr
    assert refused.returncode == 1  # gave up by itself: retrying cannot fix a refused key

    proc = subprocess.Popen(
        [*DEVTUI, "up", "--accept-new"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_port("127.0.0.1", port, 15)
        deadline = time.monotonic() + 15
        while True:
            try:
                sent, got = echo_roundtrip_sync("127.0.0.1", port, 100_000, timeout=5)
                break
            except (OSError, TimeoutError):
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert sent == got
    finally:
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=15)[1]
    assert proc.returncode == 0, err
    assert "tunnel web: up" in err and "stopped" in err
    with pytest.raises(OSError):  # the listener is gone
        wait_port("127.0.0.1", port, 0.5)


def test_up_with_a_busy_port_runs_the_other_tunnels(sshd, echo_server, tmp_path) -> None:
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    busy, free = holder.getsockname()[1], free_port()
    target = f"127.0.0.1:{echo_server.port}"
    tunnels = {
        "busy": {"host": "box", "listen": f"{busy}", "target": target},
        "fine": {"host": "box", "listen": f"{free}", "target": target},
    }
    config = write_config(tmp_path / "c.toml", {"box": sshd_host(sshd)}, tunnels)
    proc = subprocess.Popen(
        [*DEVTUI, "up", "--accept-new"],
        env=_env(tmp_path, config),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_port("127.0.0.1", free, 15)
    finally:
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=15)[1]
        holder.close()
    assert f"tunnel busy: 127.0.0.1:{busy} is already in use by" in err
    assert proc.returncode == 0


def test_hosts_test_reports_latency_auth_and_version(sshd, tmp_path) -> None:
    config = write_config(tmp_path / "c.toml", {"box": sshd_host(sshd)})
    env = _env(tmp_path, config)
    result = _devtui(env, "hosts", "test", "box", "--accept-new")
    assert result.returncode == 0, result.stderr
    assert "box: OK" in result.stdout
    assert "publickey" in result.stdout and "OpenSSH" in result.stdout
    assert " ms " in result.stdout
    assert sshd.host_key_sha256() in result.stderr  # the fingerprint was shown
    sshd.stop()
    down = _devtui(env, "hosts", "test", "box")
    assert down.returncode == 1
    assert "connection refused" in down.stderr.lower()
    assert "Traceback" not in down.stderr


def test_changed_key_cli_then_forget_key(sshd, tmp_path) -> None:
    config = write_config(tmp_path / "c.toml", {"box": sshd_host(sshd)})
    env = _env(tmp_path, config)
    assert _devtui(env, "hosts", "test", "box", "--accept-new").returncode == 0
    sshd.regenerate_host_key()
    changed = _devtui(env, "hosts", "test", "box", "--accept-new")
    assert changed.returncode == 1
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in changed.stderr
    assert "forget-key box" in changed.stderr
    forgot = _devtui(env, "hosts", "forget-key", "box")
    assert "Removed 1 key" in forgot.stdout
    assert _devtui(env, "hosts", "test", "box", "--accept-new").returncode == 0


def test_run_streams_and_returns_exit_status(sshd, tmp_path) -> None:
    config = write_config(tmp_path / "c.toml", {"box": sshd_host(sshd)})
    env = _env(tmp_path, config)
    result = _devtui(
        env, "run", "box", "--accept-new", "--", "sh", "-c", "echo to-out; echo to-err >&2; exit 4"
    )
    assert result.returncode == 4
    assert result.stdout == "to-out\n"
    assert "to-err" in result.stderr
    # One quoted word is a shell line, as with ssh; several words stay exactly as given.
    line = _devtui(env, "run", "box", "--", "printf '%s-' a b | tr - +; exit 3")
    assert (line.returncode, line.stdout) == (3, "a+b+")
    words = _devtui(env, "run", "box", "--", "printf", "%s|", "a b", "$HOME")
    assert (words.returncode, words.stdout) == (0, "a b|$HOME|")
    missing = _devtui(env, "run", "box", "--", "no-such-command-here")
    assert missing.returncode == 127 and "devtui" not in missing.stderr  # the host's words


def test_ports_watch_needs_a_positive_interval(tmp_path) -> None:
    config = write_config(tmp_path / "c.toml", {"box": {"hostname": "127.0.0.1"}})
    for bad in ("0", "-1", "nan"):
        done = _devtui(_env(tmp_path, config), "ports", "box", "--watch", "--interval", bad)
        assert done.returncode == 2 and "must be more than 0 seconds" in done.stderr


def test_ctrl_c_on_run_ends_the_remote_command(sshd, tmp_path) -> None:
    config = write_config(tmp_path / "c.toml", {"box": sshd_host(sshd)})
    script = 'echo "$$"; exec sleep 300'  # quiet: it would never notice a closed pipe
    proc = subprocess.Popen(
        [*DEVTUI, "run", "box", "--accept-new", "--", "sh", "-c", script],
        env=_env(tmp_path, config),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a suite started in the background (`cmd &` in a script) hands
        # its children SIGINT ignored, and Python then leaves Ctrl+C ignored too.
        preexec_fn=_sigint_default,
    )
    try:
        assert proc.stdout is not None
        pid = int(proc.stdout.readline())  # the sshd is local: its children are visible
        assert psutil.pid_exists(pid)
    finally:
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=15)[1]
    assert proc.returncode == 130 and "Traceback" not in err
    deadline = time.monotonic() + 5
    while _alive(pid):
        assert time.monotonic() < deadline, "the remote command outlived devtui run"
        time.sleep(0.05)


def test_run_into_a_closed_pipe_ends_quietly_and_stops_the_command(sshd, tmp_path) -> None:
    # `devtui run box -- journalctl -f | head -1`: once the reader is gone, devtui ends
    # quietly (as ssh does on SIGPIPE) and the command on the host ends with it.
    config = write_config(tmp_path / "c.toml", {"box": sshd_host(sshd)})
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [*DEVTUI, "run", "box", "--accept-new", "--", "sh", "-c", "echo x; exec sleep 300"],
            env=_env(tmp_path, config),
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert done.returncode == 141
    assert "error" not in done.stderr and "Traceback" not in done.stderr
    sessions = psutil.Process(sshd.pid).children(recursive=True)
    deadline = time.monotonic() + 5
    while any(_alive(p.pid) and "sleep" in " ".join(_cmdline(p)) for p in sessions):
        assert time.monotonic() < deadline, "the command outlived devtui run"
        time.sleep(0.05)


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_password_stdin_for_scripts(sshd, throwaway_user, tmp_path) -> None:
    host = {"hostname": "127.0.0.1", "port": sshd.port, "user": throwaway_user.name}
    config = write_config(tmp_path / "c.toml", {"pw": host})
    env = _env(tmp_path, config)
    wrong = _devtui(env, "hosts", "test", "pw", "--accept-new", "--password-stdin", stdin="nope\n")
    assert wrong.returncode == 1 and "password" in wrong.stderr
    # The real process: the password comes through a real stdin pipe.
    right = _devtui(
        env,
        "run",
        "pw",
        "--password-stdin",
        "--",
        "whoami",
        stdin=throwaway_user.password + "\n",
        real=True,
    )
    assert right.returncode == 0, right.stderr
    assert right.stdout.strip() == throwaway_user.name


# ---------------------------------------------------------------------------------------------
# --password-stdin goes to one named host only


async def test_a_given_password_is_for_its_host_alone() -> None:
    from tui.cli.terminal_prompts import CliPrompts

    prompts = CliPrompts(password="s3cret", password_host="target")
    # A jump host (or another host of `up`) asking first gets nothing: no terminal to ask on.
    assert await prompts.password("bastion", "Password for u@bastion:22") is None
    assert await prompts.password("target", "Password for u@target:22") == "s3cret"
    assert await prompts.password("target", "Password for u@target:22") is None  # once
    with pytest.raises(ValueError, match="must name the host"):
        CliPrompts(password="s3cret")


def test_password_stdin_never_reaches_the_jump_host(sshd, throwaway_user, tmp_path) -> None:
    # The bastion lets in only with the throwaway user's password; the target (behind it)
    # logs in with a key. The password given for the target must not open the bastion.
    bastion = {"hostname": "127.0.0.1", "port": sshd.port, "user": throwaway_user.name}
    hosts = {"bastion": bastion, "target": sshd_host(sshd, jump="bastion")}
    env = _env(tmp_path, write_config(tmp_path / "c.toml", hosts))
    password = throwaway_user.password + "\n"
    kept = _devtui(
        env, "run", "target", "--accept-new", "--password-stdin", "--", "whoami", stdin=password
    )
    assert kept.returncode == 1 and kept.stdout == ""
    assert "bastion" in kept.stderr and "password" in kept.stderr
    # Named, it goes to the bastion (and only there); the target uses its key.
    given = _devtui(
        env, "run", "target", "--password-stdin=bastion", "--", "whoami", stdin=password
    )
    assert given.returncode == 0, given.stderr
    assert given.stdout.strip() == sshd.user


def test_up_on_several_hosts_asks_which_host_the_password_is_for(tmp_path) -> None:
    hosts = {"a": {"hostname": "127.0.0.1"}, "b": {"hostname": "127.0.0.2"}}
    tunnels = {
        "ta": {"host": "a", "listen": "18081", "target": "127.0.0.1:80"},
        "tb": {"host": "b", "listen": "18082", "target": "127.0.0.1:80"},
    }
    env = _env(tmp_path, write_config(tmp_path / "c.toml", hosts, tunnels))
    done = _devtui(env, "up", "--password-stdin", stdin="pw\n")
    assert done.returncode == 2
    assert "on 2 hosts (a, b); name the one the password is for" in done.stderr
    typo = _devtui(env, "up", "--password-stdin=c", stdin="pw\n")
    assert typo.returncode == 2 and "no host named 'c'" in typo.stderr
    elsewhere = _devtui(env, "up", "ta", "--password-stdin=b", stdin="pw\n")
    assert elsewhere.returncode == 2 and "b is not a host this command logs in to (a)" in (
        elsewhere.stderr
    )


def test_a_network_command_error_is_one_line_on_stderr(tmp_path) -> None:
    """asyncssh's import warns about cryptography's DSA names: not the user's concern, and
    five lines of it buried the one line that was."""
    config = write_config(tmp_path / "c.toml", {})
    env = {**_env(tmp_path, config), "PYTHONWARNINGS": "default"}
    result = subprocess.run(
        [*DEVTUI, "hosts", "test", "nope"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "devtui: nope: no host named 'nope' (see: devtui hosts list)"
    ]
