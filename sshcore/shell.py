"""An interactive shell on a host, through its shared (already logged-in) connection.

`Terminal` is what the shell needs from the user's terminal: its size, raw key bytes, a
place to write, and word of resizes. PosixTerminal does it with termios and SIGWINCH;
WindowsTerminal with the console API (ReadConsoleInputW, SetConsoleMode) through ctypes.
The Windows logic that does not need a console (mode flags, key events to the bytes a
terminal would send, the layout of INPUT_RECORD) is plain code, tested on every OS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import asyncssh

ResizeCallback = Callable[[int, int], None]
DEFAULT_SIZE = (80, 24)


class Terminal(Protocol):
    """The user's terminal, as an interactive shell uses it."""

    on_resize: ResizeCallback | None  # set by the shell: called with (cols, rows)

    def size(self) -> tuple[int, int]:
        """(columns, rows) now."""
        ...

    def open(self) -> None:
        """Raw mode: every key goes to the shell as typed, nothing echoed locally."""
        ...

    def close(self) -> None:
        """Back to how the terminal was before open()."""
        ...

    async def read(self) -> bytes:
        """The next keys typed, as bytes (b"" when input ended)."""
        ...

    def write(self, data: bytes) -> None:
        """Show what the shell sent."""
        ...


# ---------------------------------------------------------------------------------------------
# POSIX


class PosixTerminal:
    """The controlling terminal on Linux and macOS (stdin/stdout by default)."""

    def __init__(self, fd_in: int = 0, fd_out: int = 1) -> None:
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.on_resize: ResizeCallback | None = None
        self._saved: list[Any] | None = None
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None

    def size(self) -> tuple[int, int]:
        try:
            size = os.get_terminal_size(self.fd_out)
        except OSError:
            return DEFAULT_SIZE
        return size.columns or DEFAULT_SIZE[0], size.lines or DEFAULT_SIZE[1]

    def open(self) -> None:
        import signal
        import termios
        import tty

        with contextlib.suppress(termios.error, OSError):  # not a terminal: bytes as they come
            self._saved = termios.tcgetattr(self.fd_in)
            tty.setraw(self.fd_in, termios.TCSANOW)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd_in, self._readable)
        with contextlib.suppress(ValueError, RuntimeError, AttributeError):
            self._loop.add_signal_handler(signal.SIGWINCH, self._resized)

    def close(self) -> None:
        import signal
        import termios

        if self._loop is not None:
            self._loop.remove_reader(self.fd_in)
            with contextlib.suppress(ValueError, RuntimeError, AttributeError):
                self._loop.remove_signal_handler(signal.SIGWINCH)
            self._loop = None
        if self._saved is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self.fd_in, termios.TCSADRAIN, self._saved)
            self._saved = None

    def _readable(self) -> None:
        try:
            data = os.read(self.fd_in, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data and self._loop is not None:
            self._loop.remove_reader(self.fd_in)
        self._queue.put_nowait(data)

    def _resized(self) -> None:
        if self.on_resize is not None:
            self.on_resize(*self.size())

    async def read(self) -> bytes:
        return await self._queue.get()

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.fd_out, view)
            except BlockingIOError:
                continue
            view = view[written:]


# ---------------------------------------------------------------------------------------------
# Windows: the console API. Everything above _WindowsConsole is plain logic.

# Console modes (wincon.h)
ENABLE_PROCESSED_INPUT = 0x0001
ENABLE_LINE_INPUT = 0x0002
ENABLE_ECHO_INPUT = 0x0004
ENABLE_WINDOW_INPUT = 0x0008
ENABLE_MOUSE_INPUT = 0x0010
ENABLE_QUICK_EDIT_MODE = 0x0040
ENABLE_EXTENDED_FLAGS = 0x0080
ENABLE_VIRTUAL_TERMINAL_INPUT = 0x0200
ENABLE_PROCESSED_OUTPUT = 0x0001
ENABLE_VIRTUAL_TERMINAL_PROCESSING = 0x0004
DISABLE_NEWLINE_AUTO_RETURN = 0x0008

KEY_EVENT = 0x0001
WINDOW_BUFFER_SIZE_EVENT = 0x0004

# dwControlKeyState
RIGHT_ALT_PRESSED = 0x0001
LEFT_ALT_PRESSED = 0x0002
RIGHT_CTRL_PRESSED = 0x0004
LEFT_CTRL_PRESSED = 0x0008
SHIFT_PRESSED = 0x0010
_ALT = RIGHT_ALT_PRESSED | LEFT_ALT_PRESSED
_CTRL = RIGHT_CTRL_PRESSED | LEFT_CTRL_PRESSED

CP_UTF8 = 65001


def console_modes(input_mode: int, output_mode: int) -> tuple[int, int]:
    """The raw modes for a shell, from the console's current ones: no line editing, echo
    or Ctrl+C handling by the console (the remote does all three), window-size events on,
    mouse and quick-edit selection off; the output understands VT sequences."""
    raw_in = input_mode & ~(
        ENABLE_LINE_INPUT
        | ENABLE_ECHO_INPUT
        | ENABLE_PROCESSED_INPUT
        | ENABLE_MOUSE_INPUT
        | ENABLE_QUICK_EDIT_MODE
    )
    raw_in |= ENABLE_WINDOW_INPUT | ENABLE_EXTENDED_FLAGS
    raw_out = output_mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING | ENABLE_PROCESSED_OUTPUT
    raw_out |= DISABLE_NEWLINE_AUTO_RETURN
    return raw_in, raw_out


@dataclass(frozen=True)
class KeyEvent:
    """One KEY_EVENT_RECORD, as the console gives it."""

    key_down: bool
    virtual_key: int
    char: int  # a UTF-16 code unit; 0 for keys that type nothing (arrows, F1)
    control: int = 0  # dwControlKeyState
    repeat: int = 1


# Keys that type no character: what xterm sends for them (CSI or SS3 sequences).
_CURSOR_KEYS = {0x26: "A", 0x28: "B", 0x27: "C", 0x25: "D", 0x24: "H", 0x23: "F"}
_TILDE_KEYS = {0x2D: 2, 0x2E: 3, 0x21: 5, 0x22: 6}  # Insert, Delete, PageUp, PageDown
_FUNCTION_KEYS = {
    0x70: "P",  # F1..F4: SS3 P..S
    0x71: "Q",
    0x72: "R",
    0x73: "S",
    0x74: 15,  # F5..F12: CSI n ~
    0x75: 17,
    0x76: 18,
    0x77: 19,
    0x78: 20,
    0x79: 21,
    0x7A: 23,
    0x7B: 24,
}


def _modifier(control: int) -> int:
    """xterm's modifier parameter: 1 + shift + 2*alt + 4*ctrl (1 means none)."""
    return 1 + bool(control & SHIFT_PRESSED) + 2 * bool(control & _ALT) + 4 * bool(control & _CTRL)


def _special_key(virtual_key: int, control: int) -> bytes:
    mod = _modifier(control)
    if virtual_key in _CURSOR_KEYS:
        final = _CURSOR_KEYS[virtual_key]
        return (f"\x1b[1;{mod}{final}" if mod > 1 else f"\x1b[{final}").encode()
    if virtual_key in _TILDE_KEYS:
        number = _TILDE_KEYS[virtual_key]
        return (f"\x1b[{number};{mod}~" if mod > 1 else f"\x1b[{number}~").encode()
    code = _FUNCTION_KEYS.get(virtual_key)
    if isinstance(code, str):
        return (f"\x1b[1;{mod}{code}" if mod > 1 else f"\x1bO{code}").encode()
    if isinstance(code, int):
        return (f"\x1b[{code};{mod}~" if mod > 1 else f"\x1b[{code}~").encode()
    return b""


class KeyTranslator:
    """Console key events to the bytes a terminal sends (what sshd's PTY expects)."""

    def __init__(self) -> None:
        self._high: int | None = None  # the first half of a UTF-16 surrogate pair

    def translate(self, event: KeyEvent) -> bytes:
        if not event.key_down:
            return b""
        if event.char:
            if 0xD800 <= event.char < 0xDC00:
                self._high = event.char  # an emoji comes as two events
                return b""
            if 0xDC00 <= event.char < 0xE000:
                high, self._high = self._high, None
                if high is None:
                    return b""
                text = bytes([high & 0xFF, high >> 8, event.char & 0xFF, event.char >> 8])
                data = text.decode("utf-16-le").encode()
            else:
                data = chr(event.char).encode()
            # Alt+x sends ESC x, as xterm's metaSendsEscape; AltGr (Ctrl+Alt) types a
            # character of its own and is left alone.
            if event.control & _ALT and not event.control & _CTRL:
                data = b"\x1b" + data
            return data * max(1, event.repeat)
        if event.virtual_key == 0x20 and event.control & _CTRL:
            return b"\0" * max(1, event.repeat)  # Ctrl+Space: NUL
        return _special_key(event.virtual_key, event.control) * max(1, event.repeat)


# INPUT_RECORD, laid out as wincon.h has it (20 bytes): WORD EventType, padding, a union
# whose KEY_EVENT_RECORD is BOOL, WORD, WORD, WORD, WCHAR, DWORD. WCHAR is 16 bits on
# Windows; ctypes' c_wchar is 32 on Linux, so the fields are plain 16-bit integers.
class _KeyEventRecord(ctypes.Structure):
    _fields_ = [
        ("bKeyDown", ctypes.c_int32),
        ("wRepeatCount", ctypes.c_uint16),
        ("wVirtualKeyCode", ctypes.c_uint16),
        ("wVirtualScanCode", ctypes.c_uint16),
        ("uChar", ctypes.c_uint16),
        ("dwControlKeyState", ctypes.c_uint32),
    ]


class _Coord(ctypes.Structure):
    _fields_ = [("X", ctypes.c_int16), ("Y", ctypes.c_int16)]


class _EventUnion(ctypes.Union):
    _fields_ = [
        ("KeyEvent", _KeyEventRecord),
        ("WindowBufferSizeEvent", _Coord),
        ("_raw", ctypes.c_uint8 * 16),
    ]


class INPUT_RECORD(ctypes.Structure):
    _fields_ = [("EventType", ctypes.c_uint16), ("Event", _EventUnion)]


def decode_records(records: ctypes.Array[INPUT_RECORD], count: int) -> tuple[list[KeyEvent], bool]:
    """The key events among the first `count` records, and whether the window was resized."""
    keys: list[KeyEvent] = []
    resized = False
    for record in records[:count]:
        if record.EventType == KEY_EVENT:
            key = record.Event.KeyEvent
            keys.append(
                KeyEvent(
                    bool(key.bKeyDown),
                    key.wVirtualKeyCode,
                    key.uChar,
                    key.dwControlKeyState,
                    key.wRepeatCount,
                )
            )
        elif record.EventType == WINDOW_BUFFER_SIZE_EVENT:
            resized = True
    return keys, resized


class WindowsTerminal:
    """The Windows console (PowerShell, cmd, Windows Terminal), through its API."""

    STD_INPUT_HANDLE = -10
    STD_OUTPUT_HANDLE = -11
    _WAIT_MS = 100  # the reading thread checks for close() this often

    def __init__(self) -> None:
        self.on_resize: ResizeCallback | None = None
        self._kernel32: Any = None
        self._in: Any = None
        self._out: Any = None
        self._saved: tuple[int, int, int] | None = None
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._translator = KeyTranslator()

    def _api(self) -> Any:
        if self._kernel32 is None:
            self._kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
            self._in = self._kernel32.GetStdHandle(self.STD_INPUT_HANDLE)
            self._out = self._kernel32.GetStdHandle(self.STD_OUTPUT_HANDLE)
        return self._kernel32

    def size(self) -> tuple[int, int]:
        try:
            size = os.get_terminal_size()
        except OSError:
            return DEFAULT_SIZE
        return size.columns or DEFAULT_SIZE[0], size.lines or DEFAULT_SIZE[1]

    def open(self) -> None:
        from ctypes import wintypes

        api = self._api()
        in_mode, out_mode = wintypes.DWORD(), wintypes.DWORD()
        api.GetConsoleMode(self._in, ctypes.byref(in_mode))
        api.GetConsoleMode(self._out, ctypes.byref(out_mode))
        self._saved = (in_mode.value, out_mode.value, api.GetConsoleOutputCP())
        raw_in, raw_out = console_modes(in_mode.value, out_mode.value)
        api.SetConsoleMode(self._in, raw_in)
        api.SetConsoleMode(self._out, raw_out)
        api.SetConsoleOutputCP(CP_UTF8)  # the remote speaks UTF-8
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        self._thread = threading.Thread(target=self._reader, name="console-input", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
            self._thread = None
        if self._saved is not None:
            api = self._api()
            api.SetConsoleMode(self._in, self._saved[0])
            api.SetConsoleMode(self._out, self._saved[1])
            api.SetConsoleOutputCP(self._saved[2])
            self._saved = None

    def _reader(self) -> None:
        from ctypes import wintypes

        api = self._api()
        records = (INPUT_RECORD * 64)()
        count = wintypes.DWORD()
        while not self._stop.is_set():
            if api.WaitForSingleObject(self._in, self._WAIT_MS) != 0:  # WAIT_OBJECT_0
                continue
            if not api.ReadConsoleInputW(self._in, records, 64, ctypes.byref(count)):
                self._deliver(b"")
                return
            keys, resized = decode_records(records, count.value)
            data = b"".join(self._translator.translate(key) for key in keys)
            if data:
                self._deliver(data)
            if resized and self.on_resize is not None and self._loop is not None:
                self._loop.call_soon_threadsafe(self.on_resize, *self.size())

    def _deliver(self, data: bytes) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, data)

    async def read(self) -> bytes:
        return await self._queue.get()

    def write(self, data: bytes) -> None:
        import sys

        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def default_terminal() -> Terminal:
    """This OS's terminal."""
    return WindowsTerminal() if os.name == "nt" else PosixTerminal()


async def interactive(
    conn: asyncssh.SSHClientConnection, terminal: Terminal, command: str | None = None
) -> int:
    """A PTY session on `conn` (the login shell, or `command`) wired to `terminal` until it
    exits; its exit status (255 when it ended without one, e.g. by a signal)."""
    cols, rows = terminal.size()
    term_type = os.environ.get("TERM") or "xterm-256color"
    if term_type == "dumb":
        term_type = "xterm-256color"
    process = await conn.create_process(
        command, term_type=term_type, term_size=(cols, rows), encoding=None
    )

    def resized(cols: int, rows: int) -> None:
        with contextlib.suppress(OSError, asyncssh.Error):
            process.change_terminal_size(cols, rows)

    async def keys() -> None:
        while data := await terminal.read():
            process.stdin.write(data)
        process.stdin.write_eof()

    terminal.on_resize = resized
    terminal.open()
    typing = asyncio.create_task(keys())
    try:
        # With a PTY the remote merges stderr into this one stream.
        while chunk := await process.stdout.read(65536):
            terminal.write(chunk)
        result = await process.wait()
    finally:
        typing.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError, asyncssh.Error):
            await typing
        terminal.on_resize = None
        terminal.close()
        process.close()
    return result.exit_status if result.exit_status is not None else 255
