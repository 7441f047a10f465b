"""Remote jobs (`devtui jobs`, sshcore.jobs) against a real OpenSSH sshd: a job outlives the
sshd session and devtui itself, stop leaves no process of its group, and every bad input is
one clear error. Each test runs on a host with tmux and on one without (PATH lacks it).

The host's sshd gives its sessions XDG_CACHE_HOME (where the job records go) and TMUX_TMPDIR
(a tmux server of the test's own) in temp dirs, so nothing reaches the real home or tmux;
each test stops its jobs and its tmux server, by PID or by their own socket, at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from cliutil import run_cli
from coreutil import make_core, sshd_host, wait_for, write_config

from sshcore.core import Core
from sshcore.errors import DevtuiError
from sshcore.jobs import (
    attach_command,
    default_job_name,
    follow_job,
    job_info,
    job_output,
    list_jobs,
    start_job,
    stop_job,
)

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

COUNTER = "import sys, time\nfor i in range({n}):\n    print(i, flush=True)\n    time.sleep(0.1)\n"


@dataclass
class JobHost:
    """A real sshd whose sessions keep job records (and tmux) in the test's temp dirs."""

    sshd: Any
    cache: Path
    tmux_dir: Path
    tmp_path: Path
    tmux: bool

    @property
    def jobs_dir(self) -> Path:
        return self.cache / "devtui" / "jobs"

    def core(self) -> Core:
        core, _, _ = make_core(self.tmp_path, {"box": sshd_host(self.sshd)})
        return core

    def config(self) -> Path:
        self.sshd.write_known_hosts(self.tmp_path / "known_hosts")
        return write_config(self.tmp_path / "config.toml", {"box": sshd_host(self.sshd)})

    def cli(self, *argv: str, timeout: float = 60) -> Any:
        env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
        env["HOME"] = str(self.tmp_path / "home")
        return run_cli("--config", str(self.config()), *argv, env=env, timeout=timeout)

    def group(self, pgid: int) -> list[psutil.Process]:
        """Every live process in process group `pgid` (zombies are gone already)."""
        found = []
        for p in psutil.process_iter():
            try:
                if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
            except (ProcessLookupError, psutil.Error):
                pass
        return found

    def cleanup(self) -> None:
        """End what the test started: the job processes (found by their record's path, by
        PID) and this host's own tmux server."""
        mine = str(self.jobs_dir)
        for p in psutil.process_iter():
            try:
                if any(mine in word for word in p.cmdline()):
                    os.killpg(os.getpgid(p.pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError, psutil.Error):
                pass
        env = {**os.environ, "TMUX_TMPDIR": str(self.tmux_dir)}
        subprocess.run(["tmux", "kill-server"], env=env, capture_output=True, timeout=10)
        shutil.rmtree(self.tmux_dir, ignore_errors=True)


def _path_without_tmux(where: Path) -> str:
    """A PATH of symlinks to every program here but tmux: a host that has no tmux."""
    where.mkdir()
    for folder in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            target = where / entry.name
            if entry.name != "tmux" and not target.exists() and not target.is_symlink():
                target.symlink_to(entry.path)
    assert shutil.which("tmux", path=str(where)) is None
    return str(where)


@pytest.fixture(params=["tmux", "no-tmux"])
def job_host(
    request: pytest.FixtureRequest, sshd_factory: Callable[..., Any], tmp_path: Path
) -> Iterator[JobHost]:
    cache = tmp_path / "cache"
    # A short path: a tmux socket path must fit in sun_path (108 bytes).
    tmux_dir = Path(tempfile.mkdtemp(prefix="dtj-"))
    # HOME too: the login shell's startup files here (root's .bashrc) are not the host's.
    remote_home = tmp_path / "remote-home"
    remote_home.mkdir()
    env = [f"HOME={remote_home}", f"XDG_CACHE_HOME={cache}", f"TMUX_TMPDIR={tmux_dir}"]
    with_tmux = request.param == "tmux"
    if not with_tmux:
        env.append(f"PATH={_path_without_tmux(tmp_path / 'bin')}")
    sshd = sshd_factory([f"SetEnv {' '.join(env)}"])
    host = JobHost(sshd, cache, tmux_dir, tmp_path, with_tmux)
    (tmp_path / "home" / ".ssh").mkdir(parents=True)
    yield host
    host.cleanup()


def _sshd_sessions(sshd: Any) -> list[psutil.Process]:
    return psutil.Process(sshd.pid).children(recursive=True)


def _kill_sessions(sshd: Any) -> int:
    """SIGKILL every process the test's sshd forked (its sessions and what they run)."""
    procs = _sshd_sessions(sshd)
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(procs, timeout=5)
    return len(procs)


# -- names -------------------------------------------------------------------------------------
def test_default_names_come_from_the_program_and_are_unique() -> None:
    assert default_job_name(["python", "train.py", "--epochs", "3"], set()) == "train"
    assert default_job_name(["/usr/bin/sleep", "10"], {"sleep"}) == "sleep-2"
    assert default_job_name(["./run me!.sh"], {"run-me-.sh"}) == "run-me-.sh-2"
    assert default_job_name("FOO=1 python3 -u serve.py | tee x", set()) == "python3"
    assert default_job_name("cd x && make", {"cd", "cd-2"}) == "cd-3"
    assert default_job_name(["..."], set()) == "job"


# -- survival ----------------------------------------------------------------------------------
async def test_a_job_outlives_its_sshd_sessions_and_devtui(job_host: JobHost) -> None:
    """The counter keeps counting while every sshd session process is killed and the Core
    is closed; a fresh Core lists it, follows it to its end, and its output has every line."""
    n = 100  # 10 s: still running when the fresh Core looks
    core = job_host.core()
    try:
        job = await start_job(core, "box", ["python3", "-c", COUNTER.format(n=n)], "counter")
        assert (job.name, job.state, job.exit_status) == ("counter", "running", None)
        assert job.mode == ("tmux" if job_host.tmux else "setsid")
        assert job.pid is not None and job_host.group(job.pid)
        seen: list[str] = []
        following = asyncio.create_task(follow_job(core, "box", "counter", seen.append))
        await wait_for(lambda: len(seen) >= 5, 15, what="the first lines")
        assert _kill_sessions(job_host.sshd) > 0
        before = len(seen)
        # The first Core's follow resumes through the reconnect, no line lost or repeated.
        await wait_for(lambda: len(seen) >= before + 5, 20, what="lines after the kill")
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        assert seen == [str(i) for i in range(len(seen))]
    finally:
        await core.close()
    _kill_sessions(job_host.sshd)  # devtui is gone: the job has no SSH session at all
    assert job_host.group(job.pid)
    await asyncio.sleep(0.5)

    fresh = job_host.core()
    try:
        listed = await list_jobs(fresh, "box")
        assert [(j.name, j.pid, j.state) for j in listed] == [("counter", job.pid, "running")]
        lines: list[str] = []
        status = await asyncio.wait_for(follow_job(fresh, "box", "counter", lines.append), 30)
        assert status == 0
        assert lines == [str(i) for i in range(n)]  # every line, none twice, no gap
        done = await job_info(fresh, "box", "counter")
        assert (done.state, done.exit_status, done.state_text()) == ("exited", 0, "exited 0")
    finally:
        await fresh.close()


async def test_a_python_job_is_followed_line_by_line(job_host: JobHost) -> None:
    """A training script that prints without flushing: its output is not a terminal (a file,
    or tee), and Python would keep it in a buffer until the run ends."""
    script = "import time\nprint('epoch 1')\ntime.sleep(30)\nprint('epoch 2')\n"
    core = job_host.core()
    try:
        await start_job(core, "box", ["python3", "-c", script], "train")
        seen: list[str] = []
        following = asyncio.create_task(follow_job(core, "box", "train", seen.append))
        await wait_for(lambda: "epoch 1" in seen, 15, what="the first print, before the end")
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        await stop_job(core, "box", "train")
    finally:
        await core.close()


# -- stop --------------------------------------------------------------------------------------
@pytest.mark.parametrize("ignores_term", [False, True], ids=["term", "kill"])
async def test_stop_leaves_no_process_of_the_group(job_host: JobHost, ignores_term: bool) -> None:
    script = "sleep 300 & sleep 301 & echo started; wait"
    if ignores_term:  # the children inherit the ignored TERM: only KILL ends them
        script = "trap '' TERM; " + script
    core = job_host.core()
    try:
        job = await start_job(core, "box", ["sh", "-c", script], "group")
        assert job.pid is not None
        await wait_for(lambda: len(job_host.group(job.pid)) >= 3, 10, what="the job's children")
        members = job_host.group(job.pid)
        assert any("301" in p.cmdline() for p in members)
        start = time.monotonic()
        stopped = await stop_job(core, "box", "group", grace=1.0)
        assert stopped.how == ("kill" if ignores_term else "term")
        assert stopped.job.state == "exited"
        assert stopped.job.exit_status == (137 if ignores_term else 143)
        assert "stopped" in stopped.message() or "killed" in stopped.message()
        if ignores_term:
            assert time.monotonic() - start >= 1.0
        psutil.wait_procs(members, timeout=3)
        assert job_host.group(job.pid) == []
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in members)
        again = await stop_job(core, "box", "group")
        assert again.how == "not-running" and "was not running" in again.message()
    finally:
        await core.close()


# -- list, logs, restart -----------------------------------------------------------------------
async def test_list_json_and_table_from_a_fresh_devtui(job_host: JobHost) -> None:
    core = job_host.core()
    try:
        await start_job(core, "box", ["sh", "-c", "echo hi; exit 3"], "quick")
        b = await start_job(core, "box", ["sleep", "300"])
        assert b.name == "sleep"
        c = await start_job(core, "box", "sleep 299 && echo never")  # a line for the shell
        assert c.name == "sleep-2" and c.command == "sleep 299 && echo never"
        await wait_for(lambda: (job_host.jobs_dir / "quick" / "status").exists(), 10)
    finally:
        await core.close()

    result = job_host.cli("jobs", "list", "box", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["quick", "sleep", "sleep-2"]
    for row in rows:
        assert list(row) == ["name", "host", "state", "exit_status", "pid", "started", "command"]
        assert row["host"] == "box" and isinstance(row["pid"], int)
        assert row["started"].endswith("+00:00")
    by = {r["name"]: r for r in rows}
    assert (by["quick"]["state"], by["quick"]["exit_status"]) == ("exited", 3)
    assert (by["sleep"]["state"], by["sleep"]["exit_status"]) == ("running", None)
    assert by["sleep"]["command"] == "sleep 300" and by["sleep"]["pid"] == b.pid
    assert by["sleep-2"]["command"] == "sleep 299 && echo never"

    table = job_host.cli("jobs", "list")  # every saved host
    assert table.returncode == 0, table.stderr
    head, *lines = table.stdout.splitlines()
    assert head.split() == ["NAME", "HOST", "STATE", "PID", "STARTED", "COMMAND"]
    assert lines[0].split()[:3] == ["quick", "box", "exited"] and lines[0].split()[3] == "3"
    assert lines[1].split()[:4] == ["sleep", "box", "running", str(b.pid)]
    assert lines[2].endswith("sleep 299 && echo never")

    for name in ("sleep", "sleep-2"):
        assert job_host.cli("jobs", "stop", "box", name).returncode == 0


def test_logs_last_lines_and_follow_until_the_end(job_host: JobHost) -> None:
    """On the main thread (not an async test): `logs -f` hooks Ctrl+C, as a real process."""
    script = "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2; sleep 1; echo last; exit 7"
    started = job_host.cli("jobs", "start", "box", "--name", "talk", "--", "sh", "-c", script)
    assert (started.returncode, started.stdout) == (0, "talk\n"), started.stderr
    followed = job_host.cli("jobs", "logs", "box", "talk", "-f")
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.splitlines() == [*(f"line {i}" for i in range(1, 6)), "oops", "last"]
    assert "exit status 7" in followed.stderr
    tail = job_host.cli("jobs", "logs", "box", "talk", "-n", "2")
    assert (tail.returncode, tail.stdout) == (0, "oops\nlast\n")
    whole = job_host.cli("jobs", "logs", "box", "talk")
    assert whole.stdout.count("\n") == 7
    listed = job_host.cli("jobs", "list", "box")
    assert "exited 7" in listed.stdout
    # An ended job's name may be used again: its record is replaced.
    again = job_host.cli("jobs", "start", "box", "--name", "talk", "--", "echo", "second")
    assert again.returncode == 0, again.stderr

    async def check() -> None:
        core = job_host.core()
        try:
            lines: list[str] = []
            assert await follow_job(core, "box", "talk", lines.append) == 0
            assert lines == ["second"]
            shown: list[str] = []
            await job_output(core, "box", "talk", shown.append, lines=0)
            assert shown == []
        finally:
            await core.close()

    asyncio.run(check())


# -- attach ------------------------------------------------------------------------------------
async def test_attach_a_tmux_job_and_refuse_others(job_host: JobHost) -> None:
    core = job_host.core()
    try:
        await start_job(core, "box", ["sh", "-c", "echo ready; exec sleep 300"], "att")
        if not job_host.tmux:
            with pytest.raises(DevtuiError, match=r"runs without tmux.*cannot be attached"):
                await attach_command(core, "box", "att")
            return
        command = await attach_command(core, "box", "att")
        # The session it names is live on the host's own tmux server.
        env = {**os.environ, "TMUX_TMPDIR": str(job_host.tmux_dir)}
        sessions = subprocess.run(
            ["tmux", "list-sessions", "-F", "#{session_name}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert "devtui-att" in sessions.stdout.split()
        assert "exec sh -c" in command
        # Attached in a real terminal: the job's output shows; ctrl+b d returns.
        await asyncio.to_thread(_attach_in_a_terminal, job_host)
        assert (await job_info(core, "box", "att")).state == "running"
        await stop_job(core, "box", "att", grace=1)
        with pytest.raises(DevtuiError, match="has ended"):
            await attach_command(core, "box", "att")
    finally:
        await core.close()


def _attach_in_a_terminal(job_host: JobHost) -> None:
    socket_name = f"devtui-jobs-{os.getpid()}-{time.monotonic_ns()}"
    home = job_host.tmp_path / "home"
    config = job_host.config()

    def tmux(*args: str) -> str:
        out = subprocess.run(
            ["tmux", "-L", socket_name, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            # The host's own short temp dir: a socket path must fit in 108 bytes.
            env={**os.environ, "TMUX_TMPDIR": str(job_host.tmux_dir)},
        )
        return out.stdout

    done = job_host.tmp_path / "attach-status"
    line = (
        f"env HOME={home} TERM=xterm-256color {sys.executable} -m tui --config {config} "
        f"jobs attach box att; echo $? > {done}; sleep 60"
    )
    tmux("new-session", "-d", "-x", "100", "-y", "30", "-s", "t", line)
    try:
        deadline = time.monotonic() + 20
        while "ready" not in tmux("capture-pane", "-p", "-t", "t"):
            assert time.monotonic() < deadline, tmux("capture-pane", "-p", "-t", "t")
            time.sleep(0.2)
        tmux("send-keys", "-t", "t", "C-b", "d")
        deadline = time.monotonic() + 20
        while not done.exists() or not done.read_text().strip():
            assert time.monotonic() < deadline, tmux("capture-pane", "-p", "-t", "t")
            time.sleep(0.2)
        assert done.read_text().strip() == "0"
        assert "detached" in tmux("capture-pane", "-p", "-t", "t")
    finally:
        tmux("kill-server")


# -- bad input ---------------------------------------------------------------------------------
async def test_bad_input_is_one_clear_error(job_host: JobHost) -> None:
    core = job_host.core()
    try:
        with pytest.raises(DevtuiError, match="no host named 'nope'"):
            await start_job(core, "nope", ["true"])
        with pytest.raises(DevtuiError, match=r"no job ghost on box \(see: devtui jobs list box\)"):
            await stop_job(core, "box", "ghost")
        with pytest.raises(DevtuiError, match="no job ghost on box"):
            await job_output(core, "box", "ghost", print)
        with pytest.raises(DevtuiError, match=r"job name '\.\./x' may only contain"):
            await start_job(core, "box", ["true"], "../x")
        await start_job(core, "box", ["sleep", "300"], "busy")
        with pytest.raises(DevtuiError, match="a job named busy already runs on box"):
            await start_job(core, "box", ["true"], "busy")
        # Its directory removed by hand while it runs: said, with how to end it.
        job = await job_info(core, "box", "busy")
        seen: list[str] = []
        following = asyncio.create_task(follow_job(core, "box", "busy", seen.append))
        await asyncio.sleep(1)
        shutil.rmtree(job_host.jobs_dir / "busy")
        with pytest.raises(DevtuiError, match="busy on box: its directory was removed"):
            await asyncio.wait_for(following, 10)
        with pytest.raises(DevtuiError, match=f"no record any more.*kill -- -{job.pid}"):
            await stop_job(core, "box", "busy")
        os.killpg(job.pid, signal.SIGKILL)  # ours: the record that said so is gone
    finally:
        await core.close()
    for argv, said in [
        (("jobs", "list", "nope"), "no host named 'nope'"),
        (("jobs", "logs", "box", "ghost"), "no job ghost on box (see: devtui jobs list box)"),
        (("jobs", "attach", "box", "ghost"), "no job ghost on box"),
        (("jobs", "start", "box"), "nothing to start"),
    ]:
        result = job_host.cli(*argv)
        assert result.returncode != 0 and said in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


async def test_a_host_without_posix_sh_is_refused(
    sshd_factory: Callable[..., Any], tmp_path: Path
) -> None:
    # Every command there runs as this one, as on a host whose commands sh never sees.
    sshd = sshd_factory(["ForceCommand echo C:\\Users\\me>"])
    core, _, _ = make_core(tmp_path, {"win": sshd_host(sshd)})
    try:
        for call in (
            start_job(core, "win", ["true"], "x"),
            list_jobs(core, "win"),
            stop_job(core, "win", "x"),
        ):
            with pytest.raises(DevtuiError, match=r"jobs need a POSIX shell \(sh\) on win; "):
                await call
    finally:
        await core.close()


async def test_an_unreachable_host_is_one_line_and_the_others_are_listed(
    job_host: JobHost, tmp_path: Path
) -> None:
    from harness.net import free_port

    hosts = {
        "box": sshd_host(job_host.sshd),
        "down": {**sshd_host(job_host.sshd), "port": free_port()},
    }
    config = write_config(tmp_path / "config.toml", hosts)
    core, _, _ = make_core(tmp_path, {"box": sshd_host(job_host.sshd)})
    try:
        await start_job(core, "box", ["sleep", "300"], "alive")
    finally:
        await core.close()
    write_config(tmp_path / "config.toml", hosts)
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env["HOME"] = str(tmp_path / "home")
    result = run_cli("--config", str(config), "jobs", "list", "--json", env=env)
    assert result.returncode == 1
    assert [r["name"] for r in json.loads(result.stdout)] == ["alive"]
    assert len(result.stderr.strip().splitlines()) == 1 and "down" in result.stderr
    assert job_host.cli("jobs", "stop", "box", "alive").returncode == 0
