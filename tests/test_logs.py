"""Following a remote log (`devtui logs`, Core.follow) against a real sshd: line order kept
across a rotation and a cut link, the path one argument on the host, never shell text."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from coreutil import isolate_home, make_core, sshd_host, wait_for, write_config

from sshcore.errors import DevtuiError
from sshcore.follow import LineReader


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


# -- the stream's framing ----------------------------------------------------------------------
def test_line_reader_tracks_file_and_offset_across_markers_and_chunks() -> None:
    lines: list[str] = []
    reader = LineReader(lines.append)
    stream = b"\0devtui-follow 11 100\0one\ntwo\npart" + b"ial\n" + b"\0devtui-follow 12 0\0x\n"
    for i in range(len(stream)):  # one byte at a time: markers and lines split anywhere
        reader.feed(stream[i : i + 1])
    assert lines == ["one", "two", "partial", "x"]
    assert (reader.inode, reader.offset) == ("12", 2)
    reader.feed(b"half a line")
    reader.drop_partial()  # the link dropped: a resume sends the whole line again
    reader.feed(b"half a line\n\x1b]0;title\x07\r\n")
    assert lines[-2:] == ["half a line", "\\033]0;title\\007"]  # escapes shown, not obeyed
    assert reader.offset == 2 + 12 + 12


def test_the_last_line_of_a_rotated_file_is_kept_without_its_newline() -> None:
    lines: list[str] = []
    reader = LineReader(lines.append)
    reader.feed(b"\0devtui-follow 1 0\0a\nno newline\0devtui-follow 2 0\0b\n")
    assert lines == ["a", "no newline", "b"]
    assert (reader.inode, reader.offset) == ("2", 2)


def test_a_nul_then_a_huge_line_is_passed_on_in_pieces_and_never_held_whole() -> None:
    """One NUL and then 64 MiB with no newline: once held whole (every chunk rescanning it,
    0 bytes shown); now it goes on in 1 MiB pieces and the reader holds at most one."""
    from sshcore.follow import _LONGEST_LINE

    sizes: list[int] = []
    reader = LineReader(lambda line: sizes.append(len(line)))
    chunk = b"y" * 65536
    reader.feed(b"\0")
    held = 0
    for _ in range(64 * 16):
        reader.feed(chunk)
        held = max(held, len(reader._buffer))
    assert held <= _LONGEST_LINE + len(chunk)
    assert len(sizes) == 64 and sum(sizes) >= 64 * 1024 * 1024  # all shown, "\000" too
    assert reader.offset == 64 * 1024 * 1024
    reader.feed(b"tail\n")
    assert sizes[-1] == len("y" * (64 * 1024 * 1024 + 1 - 64 * _LONGEST_LINE) + "tail")


def test_a_marker_that_never_ends_or_names_a_4300_digit_offset_is_data() -> None:
    lines: list[str] = []
    reader = LineReader(lines.append)
    reader.feed(b"\0devtui-follow 7 " + b"9" * 5000 + b"\0after\n")  # int() refuses > 4300
    assert lines[-1].endswith("9\\000after") and reader.offset == 5024
    reader.feed(b"\0devtui-follow 8 " + b"9" * 30 + b"\0next\n")  # a marker, but no offset
    assert lines[-1] == "next" and reader.inode == "" and reader.offset == 5024 + 5
    reader.feed(b"\0devtui-follow 7 12" + b" x" * 100 + b"\n")  # no closing NUL: a line
    assert lines[-1].startswith("\\000devtui-follow 7 12 x")
    reader.feed(b"\0devtui-fol")  # may still be a marker: waits (a few bytes at most)
    assert lines[-1].startswith("\\000devtui")
    reader.feed(b"low 9 3\0ok\n")
    assert lines[-1] == "ok" and (reader.inode, reader.offset) == ("9", 6)


async def test_follow_shows_a_file_of_one_nul_and_no_newline_in_pieces(
    sshd: Any, tmp_path: Path
) -> None:
    from sshcore.follow import _LONGEST_LINE

    log = tmp_path / "binary.log"
    log.write_bytes(b"start\n\0" + b"z" * (8 * _LONGEST_LINE))
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)}, discover_interval=0)
    got: list[str] = []
    async with core:
        task = asyncio.create_task(core.follow("box", str(log), got.append, lines=5))
        try:
            await wait_for(lambda: len(got) >= 9, 30, what="the pieces of the long line")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert got[0] == "start"
    assert sum(len(line) for line in got[1:9]) >= 8 * _LONGEST_LINE


# -- the core ----------------------------------------------------------------------------------
async def test_follow_gets_the_last_lines_then_new_ones_and_the_path_is_one_argument(
    sshd: Any, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    # Shell syntax in the name: it must reach tail as one argument, never be run (a run
    # would create the canary in the login's home, where remote commands start).
    import pwd  # POSIX, as this sshd

    name = f"devtui-canary-{os.getpid()}"
    canary = Path(pwd.getpwnam(sshd.user).pw_dir) / name
    log = logs / f"a b'$(touch {name})';touch {name}"
    log.write_text("".join(f"line {i}\n" for i in range(1, 6)))
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)}, discover_interval=0)
    got: list[str] = []
    async with core:
        task = asyncio.create_task(core.follow("box", str(log), got.append, lines=2))
        try:
            await wait_for(lambda: got == ["line 4", "line 5"], 20, what="the last 2 lines")
            with log.open("a") as f:
                f.write("line 6\n")
            await wait_for(lambda: got[-1:] == ["line 6"], 20, what="a new line")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert not canary.exists(), "the path was run as shell text"
    assert got == ["line 4", "line 5", "line 6"]


async def test_follow_refuses_a_relative_path_and_follows_a_command(
    sshd: Any, tmp_path: Path
) -> None:
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)}, discover_interval=0)
    async with core:
        with pytest.raises(DevtuiError, match="absolute path"):
            await core.follow("box", "app.log", print)
        got: list[str] = []
        await core.follow("box", "cmd:printf 'a\\nb\\n'", got.append)  # ends: returns
        assert got == ["a", "b"]


# -- the command line: rotation and a cut link -------------------------------------------------
class _Follower:
    """`devtui logs` as a user runs it, its stdout collected line by line."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        threading.Thread(
            target=self._read, args=(self.proc.stdout, self.lines), daemon=True
        ).start()
        threading.Thread(
            target=self._read, args=(self.proc.stderr, self.errors), daemon=True
        ).start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def wait_for(
        self, predicate: Callable[[list[str]], bool], what: str, timeout: float = 60
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"waiting for {what}: got {self.lines}; stderr: {self.errors}")
            time.sleep(0.05)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def _wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _append(path: Path, first: int, last: int) -> None:
    with path.open("a") as f:
        f.write("".join(f"line {i}\n" for i in range(first, last + 1)))


def _numbers(lines: list[str]) -> list[int]:
    return [int(line.split()[1]) for line in lines if line.startswith("line ")]


def test_cli_logs_keeps_line_order_across_rotation_and_a_cut_link(
    sshd: Any, tcp_proxy: Any, tmp_path: Path
) -> None:
    proxy = tcp_proxy("127.0.0.1", sshd.port)
    config = write_config(
        tmp_path / "c.toml", {"box": sshd_host(sshd, port=proxy.port)}, keepalive_interval=1
    )
    log = tmp_path / "app.log"
    _append(log, 1, 3)
    env = {**os.environ, "HOME": str(tmp_path / "home"), "DEVTUI_CONFIG": str(config)}
    follower = _Follower(["logs", "box", str(log), "-n", "2", "--accept-new"], env)
    try:
        follower.wait_for(lambda got: _numbers(got) == [2, 3], "the last 2 lines")
        _append(log, 4, 5)
        follower.wait_for(lambda got: 5 in _numbers(got), "line 5")
        # logrotate: the file is renamed and a new one takes its name.
        os.rename(log, f"{log}.1")
        _append(log, 6, 7)
        follower.wait_for(lambda got: 7 in _numbers(got), "line 7, from the new file")
        # The network drops; the app keeps writing, and the log rotates meanwhile.
        proxy.cut()
        _append(log, 8, 9)
        os.rename(log, f"{log}.1")
        _append(log, 10, 11)
        # The outage lasts until the follower has noticed it (it tells the user).
        _wait_until(lambda: any("resuming" in e for e in follower.errors), "the cut noticed")
        proxy.restore()
        follower.wait_for(lambda got: 11 in _numbers(got), "line 11, after the reconnect")
        _append(log, 12, 12)
        follower.wait_for(lambda got: 12 in _numbers(got), "line 12")
    finally:
        status = follower.stop()
    assert _numbers(follower.lines) == list(range(2, 13)), follower.errors
    assert status == 0
    assert any("resuming" in e for e in follower.errors)  # the user was told
