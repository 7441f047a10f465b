"""`devtui shell` and Core.shell: an interactive PTY on the host through the shared
connection, sized to the terminal, resizes passed on, the exit status returned; and the
Windows console logic (modes, key events to bytes, INPUT_RECORD), tested with fake records."""

from __future__ import annotations

import asyncio
import ctypes
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from coreutil import isolate_home, make_core, sshd_host, write_config

from sshcore import shell
from sshcore.shell import (
    ENABLE_ECHO_INPUT,
    ENABLE_LINE_INPUT,
    ENABLE_PROCESSED_INPUT,
    ENABLE_QUICK_EDIT_MODE,
    ENABLE_VIRTUAL_TERMINAL_PROCESSING,
    ENABLE_WINDOW_INPUT,
    INPUT_RECORD,
    KEY_EVENT,
    LEFT_ALT_PRESSED,
    LEFT_CTRL_PRESSED,
    RIGHT_ALT_PRESSED,
    SHIFT_PRESSED,
    WINDOW_BUFFER_SIZE_EVENT,
    KeyEvent,
    KeyTranslator,
    console_modes,
    decode_records,
)

VK_A, VK_UP, VK_LEFT, VK_DELETE, VK_F1, VK_F5, VK_SPACE, VK_SHIFT = (
    0x41,
    0x26,
    0x25,
    0x2E,
    0x70,
    0x74,
    0x20,
    0x10,
)


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


# -- the Windows console, without a console ----------------------------------------------------
def test_console_modes_turn_off_line_editing_echo_and_ctrl_c_keep_the_rest() -> None:
    cooked_in = ENABLE_PROCESSED_INPUT | ENABLE_LINE_INPUT | ENABLE_ECHO_INPUT | 0x0100
    cooked_in |= ENABLE_QUICK_EDIT_MODE
    raw_in, raw_out = console_modes(cooked_in, 0x0001 | 0x0002)
    # Keys go to the remote as typed: it echoes, edits lines and handles Ctrl+C itself.
    for flag in (ENABLE_LINE_INPUT, ENABLE_ECHO_INPUT, ENABLE_PROCESSED_INPUT):
        assert not raw_in & flag
    assert not raw_in & ENABLE_QUICK_EDIT_MODE  # a click must not freeze the session
    assert raw_in & ENABLE_WINDOW_INPUT  # resizes arrive as events
    assert raw_in & 0x0100  # a flag we do not know of is left as it was
    assert raw_out & ENABLE_VIRTUAL_TERMINAL_PROCESSING and raw_out & 0x0002


def test_keys_become_the_bytes_a_terminal_sends() -> None:
    keys = KeyTranslator()

    def key(vk: int, char: str | int = 0, control: int = 0, down: bool = True, n: int = 1) -> bytes:
        code = ord(char) if isinstance(char, str) else char
        return keys.translate(KeyEvent(down, vk, code, control, n))

    assert key(VK_A, "a") == b"a"
    assert key(VK_A, "a", down=False) == b""  # key up
    assert key(VK_SHIFT) == b""  # a modifier alone types nothing
    assert key(VK_A, "\x01", LEFT_CTRL_PRESSED) == b"\x01"  # Ctrl+A as the console gives it
    assert key(VK_A, "a", LEFT_ALT_PRESSED) == b"\x1ba"  # Alt sends ESC first
    assert key(0x51, "@", RIGHT_ALT_PRESSED | LEFT_CTRL_PRESSED) == b"@"  # AltGr+Q (German)
    assert key(0xBA, "é") == "é".encode()
    assert key(VK_A, "a", n=3) == b"aaa"  # a held key's repeat count
    assert key(VK_UP) == b"\x1b[A"
    assert key(VK_LEFT, control=LEFT_CTRL_PRESSED) == b"\x1b[1;5D"  # word left in bash
    assert key(VK_DELETE) == b"\x1b[3~"
    assert key(VK_DELETE, control=SHIFT_PRESSED) == b"\x1b[3;2~"
    assert key(VK_F1) == b"\x1bOP" and key(VK_F5) == b"\x1b[15~"
    assert key(VK_SPACE, control=LEFT_CTRL_PRESSED) == b"\0"
    # An emoji is a UTF-16 surrogate pair: two events, one character.
    assert key(0, 0xD83D) == b""
    assert key(0, 0xDE00) == "\U0001f600".encode()
    assert key(0, 0xDE00) == b""  # a lone low half is dropped, not sent as garbage


def test_input_records_decode_as_the_console_lays_them_out() -> None:
    assert ctypes.sizeof(INPUT_RECORD) == 20  # as wincon.h: a read of 64 fills 1280 bytes
    records = (INPUT_RECORD * 4)()
    records[0].EventType = KEY_EVENT
    key = records[0].Event.KeyEvent
    key.bKeyDown, key.wRepeatCount, key.wVirtualKeyCode, key.uChar = 1, 1, VK_A, ord("x")
    key.dwControlKeyState = LEFT_ALT_PRESSED
    records[1].EventType = WINDOW_BUFFER_SIZE_EVENT
    records[1].Event.WindowBufferSizeEvent.X = 120
    records[2].EventType = 0x0002  # a mouse event: ignored
    records[3].EventType = KEY_EVENT  # past `count`: not read
    keys, resized = decode_records(records, 3)
    assert keys == [KeyEvent(True, VK_A, ord("x"), LEFT_ALT_PRESSED, 1)]
    assert resized
    assert KeyTranslator().translate(keys[0]) == b"\x1bx"


def test_each_os_gets_its_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(shell.default_terminal(), shell.PosixTerminal)
    monkeypatch.setattr(shell.os, "name", "nt")
    assert isinstance(shell.default_terminal(), shell.WindowsTerminal)


# -- Core.shell against sshd -------------------------------------------------------------------
class FakeTerminal:
    """A Terminal in memory: fixed size, scripted keys, output collected."""

    def __init__(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        self.on_resize: Any = None
        self.keys: asyncio.Queue[bytes] = asyncio.Queue()
        self.output = bytearray()
        self.opened = self.closed = 0

    def size(self) -> tuple[int, int]:
        return self.cols, self.rows

    def open(self) -> None:
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    async def read(self) -> bytes:
        return await self.keys.get()

    def write(self, data: bytes) -> None:
        self.output += data

    def resize(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        assert self.on_resize is not None
        self.on_resize(cols, rows)


async def test_core_shell_is_a_pty_of_the_terminals_size_and_follows_resizes(
    sshd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    core, _, events = make_core(tmp_path, {"box": sshd_host(sshd)}, discover_interval=0)
    terminal = FakeTerminal(90, 20)
    async with core:
        await core.connect("box")
        logins = sum(1 for e in events if type(e).__name__ == "HostConnected")
        script = "echo term=$TERM; stty size; read x; stty size; exit 7"
        task = asyncio.create_task(core.shell("box", terminal, script))
        await _until(lambda: b"20 90" in terminal.output, "the first size")
        assert b"term=xterm-256color" in terminal.output
        terminal.resize(120, 40)
        terminal.keys.put_nowait(b"go\r")
        assert await asyncio.wait_for(task, 30) == 7
        assert b"40 120" in terminal.output
        # Through the shared connection: no second login.
        assert sum(1 for e in events if type(e).__name__ == "HostConnected") == logins
    assert (terminal.opened, terminal.closed) == (1, 1)
    assert terminal.on_resize is None


async def _until(predicate: Any, what: str) -> None:
    for _ in range(600):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# -- devtui shell in a real PTY ----------------------------------------------------------------
def _winsize(fd: int, rows: int, cols: int) -> None:
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def test_cli_shell_runs_in_a_real_pty_passes_resizes_and_returns_the_status(
    sshd: Any, tmp_path: Path
) -> None:
    import fcntl
    import termios

    config = write_config(tmp_path / "c.toml", {"box": sshd_host(sshd)})
    env = {**os.environ, "HOME": str(tmp_path / "home"), "DEVTUI_CONFIG": str(config)}
    env["TERM"] = "xterm-256color"
    master, slave = os.openpty()
    _winsize(slave, 30, 100)
    cooked = termios.tcgetattr(slave)

    def controlling_terminal() -> None:  # runs in the child: the pty is its terminal
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    script = "stty size; while read x; do stty size; done; exit 5"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "shell", "box", "--accept-new", "--", script],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        preexec_fn=controlling_terminal,
    )
    output = bytearray()

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the pty
                return
            if not data:
                return
            output.extend(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        _wait(lambda: b"30 100" in output, proc, output, "the first size")
        _winsize(master, 40, 120)  # the user resizes the window: SIGWINCH to devtui
        for _ in range(100):  # press Enter until the new size is seen on the host
            os.write(master, b"\r")
            if b"40 120" in output:
                break
            time.sleep(0.2)
        assert b"40 120" in output, bytes(output)
        os.write(master, b"\x04")  # Ctrl+D: read ends, the shell exits 5
        assert proc.wait(timeout=30) == 5
        # The local terminal is given back as it was (echo, line editing).
        assert termios.tcgetattr(slave)[3] == cooked[3]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(slave)
        reader.join(timeout=5)
        os.close(master)


def _wait(predicate: Any, proc: subprocess.Popen[bytes], output: bytearray, what: str) -> None:
    deadline = time.monotonic() + 60
    while not predicate():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"waiting for {what}: {bytes(output)!r}")
        time.sleep(0.05)
