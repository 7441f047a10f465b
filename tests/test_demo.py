"""`devtui demo`: a newcomer's first tunnel, to a built-in host, with nothing else installed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

import pytest
import tomlkit
from cliutil import run_cli
from harness.net import free_port
from harness.terminal import spawn_on_pty

from sshcore.config import Config
from sshcore.core import Core
from sshcore.demo import DemoSite
from sshcore.file_sides import EXEC_HASH_MIN
from sshcore.files import copy_files


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "DEVTUI_CONFIG")}
    env["HOME"] = str(tmp_path)  # the user's own config and keys stay untouched
    return env


def test_demo_check_fetches_the_page_through_the_tunnel(tmp_path: Path) -> None:
    done = run_cli("demo", "--check", env=_env(tmp_path))  # in-process (tests/cliutil.py)
    assert done.returncode == 0, done.stderr
    assert "through the tunnel: <h1>Hello from the devtui demo host</h1>" in done.stdout
    assert "tunnel demo-web: up" in done.stderr
    assert not list(tmp_path.iterdir())  # nothing written to the user's home


def test_demo_runs_until_ctrl_c_and_cleans_up(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "demo", "--port", str(port)],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        config = re.search(r"--config (\S+) hosts test demo", "".join(lines))
        assert config, lines
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert b"Hello from the devtui demo host" in page.read()
        # The demo host works with the other commands too, while it runs.
        test = run_cli("--config", config.group(1), "hosts", "test", "demo", env=_env(tmp_path))
        assert test.returncode == 0, test.stderr
        assert "auth         publickey" in test.stdout
    finally:
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert not Path(config.group(1)).exists()  # the throwaway config is gone


async def test_demo_host_answers_discovery_and_run() -> None:
    # The demo host is what the dashboard's --demo will sit on: its "remote" ports are
    # discoverable (the web app shows up, as a fresh Gradio app would) and run says plainly
    # what it is.
    async with DemoSite() as demo:
        core = Core(Config.load(demo.config_path), log_file=False)
        async with core:
            ports = {p.port: p for p in await core.listening_ports("demo")}
            assert demo.web_port in ports and ports[demo.web_port].loopback_only
            assert demo.ssh_port in ports
            out: list[bytes] = []
            status = await core.run("demo", ["uname", "-a"], lambda _, b: out.append(b))
            # No POSIX sh there (like a Windows server): a line goes to its shell as typed.
            await core.run("demo", "dir | more", lambda _, b: out.append(b))
    assert status == 0
    assert b"".join(out) == (
        b"devtui demo host: this is not a real shell (uname -a)\n"
        b"devtui demo host: this is not a real shell (dir | more)\n"
    )


async def test_demo_host_takes_and_gives_files(tmp_path: Path) -> None:
    # Upload and download can be tried on the demo host: its files are an SFTP server rooted
    # in a folder of the demo's own, gone when it ends. It has no sh, so the copy is checked
    # by reading back (large enough here that a hash command is tried first, and refused).
    data = os.urandom(EXEC_HASH_MIN + 1000)
    (tmp_path / "up.bin").write_bytes(data)
    async with DemoSite() as demo:
        core = Core(Config.load(demo.config_path), log_file=False)
        async with core:
            (up,) = await copy_files(core, [str(tmp_path / "up.bin")], "demo:")
            assert (demo.home / "up.bin").read_bytes() == data
            (down,) = await copy_files(core, ["demo:up.bin"], str(tmp_path / "back.bin"))
            readme = (await copy_files(core, ["demo:README.txt"], str(tmp_path)))[0]
        home = demo.home
    assert up.sha256 == down.sha256 == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "back.bin").read_bytes() == data
    assert "goes when the demo ends" in (tmp_path / "README.txt").read_text()
    assert readme.bytes == (tmp_path / "README.txt").stat().st_size
    assert not home.exists()


@pytest.mark.parametrize(
    "folder",
    [
        # Every backslash here starts a TOML escape if left alone: \U and \u want hex
        # digits (a parse error), \t and \n turn into a tab and a line break (a wrong path).
        PureWindowsPath(r"C:\Users\nina\AppData\Local\Temp\tmp\u7x\devtui-demo-ab"),
        PureWindowsPath(r"\\server\share\Zoë\devtui-demo-cd"),  # UNC, non-ASCII
        PurePosixPath("/tmp/devtui-demo-ef"),
        PurePosixPath('/tmp/it\'s "mine"/devtui-demo-gh'),  # TMPDIR may hold a quote
    ],
    ids=["windows", "windows-unc", "posix", "posix-quote"],
)
def test_demo_config_keeps_its_paths_exactly(folder: PurePath, tmp_path: Path) -> None:
    # The demo writes its config as TOML text: a path must read back as the same path,
    # or the demo host's key and known_hosts are looked for somewhere else.
    site = DemoSite()
    made = site.folder
    try:
        site.folder = folder  # type: ignore[assignment]  # as it is on that system
        site.ssh_port, site.web_port, site.local_port = 2222, 8000, 8001
        text = site._config_text(folder / "demo_ed25519")  # type: ignore[arg-type]
    finally:
        shutil.rmtree(made, ignore_errors=True)
    doc = tomlkit.parse(text).unwrap()
    assert doc["settings"]["known_hosts"] == str(folder / "known_hosts")
    assert doc["settings"]["log_file"] == str(folder / "devtui.log")
    assert doc["hosts"]["demo"]["identity_file"] == str(folder / "demo_ed25519")
    # And devtui itself reads the same paths back.
    config_path = tmp_path / "config.toml"
    config_path.write_text(text, encoding="utf-8")
    config = Config.load(config_path)
    assert config.hosts["demo"].identity_file == str(folder / "demo_ed25519")


@pytest.mark.skipif(os.name != "posix", reason="POSIX: a pty and SIGHUP")
@pytest.mark.parametrize("sig", ["SIGHUP", "SIGTERM"])
def test_the_dashboard_ends_cleanly_when_its_terminal_goes(tmp_path: Path, sig: str) -> None:
    # A dropped SSH session hangs up the terminal devtui runs in (SIGHUP), and `kill` sends
    # SIGTERM: either ends it as `q` does, tunnels stopped and the demo's temp folder gone,
    # instead of the process dying on the spot and leaving them behind.
    import threading

    port = free_port()
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**_env(tmp_path), "TMPDIR": str(temp), "TERM": "xterm"}
    proc, master = spawn_on_pty([sys.executable, "-m", "tui", "demo", "--port", str(port)], env)
    screen = bytearray()

    reading = threading.Event()
    reading.set()

    def read() -> None:  # until told to stop, so that the pty can be closed under it
        with contextlib.suppress(OSError):
            while reading.is_set():
                if select.select([master], [], [], 0.05)[0]:
                    screen.extend(os.read(master, 65536))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not _accepts(port):
            assert proc.poll() is None and time.monotonic() < deadline, screen.decode(
                "ascii", "replace"
            )
            time.sleep(0.1)
        assert [p.name for p in temp.iterdir() if p.name.startswith("devtui-demo-")]
        if sig == "SIGHUP":  # the terminal really goes: its writes fail from now on
            reading.clear()
            reader.join(5)
            os.close(master)
            master = -1
        else:
            proc.send_signal(getattr(signal, sig))
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        reading.clear()
        reader.join(5)
        if master >= 0:
            os.close(master)
    assert proc.returncode == 0, screen.decode("ascii", "replace")[-2000:]
    assert not _accepts(port)
    assert not [p.name for p in temp.iterdir() if p.name.startswith("devtui-demo-")]


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


@pytest.mark.skipif(os.name != "posix", reason="POSIX: SIGHUP")
def test_a_hangup_the_dashboard_cannot_end_still_ends_the_process(tmp_path: Path) -> None:
    # If the dashboard has not ended some seconds after its terminal went (Textual stuck on
    # the dead terminal), the last resort runs (the demo's temp folder) and the process goes.
    marker = tmp_path / "last resort ran"
    script = f"""
import asyncio
from tui.launch import end_on_hangup

async def main() -> None:
    end_on_hangup(asyncio.get_running_loop(), lambda: None,  # an end that never comes
                  lambda: open({str(marker)!r}, "w").close(), grace=0.5)
    print("ready", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGHUP)
        proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == -signal.SIGKILL and marker.exists()
