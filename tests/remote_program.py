"""A program "on the remote" (this machine, behind the test sshd) that listens on a port, with
a process name of our choosing (Gradio's python shows as python3; ours as "gradio").

Started as its own process, stopped by its PID; it exits by itself after `lifetime` seconds.
"""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
from typing import Any

import pytest

# The "remote" is this machine: a test that watches it for new listeners of a program named
# "gradio" would see another test's gradio appear (and take it for its own program, moved).
# Under pytest-xdist, tests with this mark run one after another on one worker.
ONE_AT_A_TIME = pytest.mark.xdist_group("this_machine_s_gradio")

_SCRIPT = r"""
import ctypes, os, socket, sys, threading
name, port, lifetime = sys.argv[1].encode(), int(sys.argv[2]), float(sys.argv[3])
try:
    ctypes.CDLL(None).prctl(15, name, 0, 0, 0)  # PR_SET_NAME: what /proc/PID/comm shows
except (OSError, AttributeError):
    pass
threading.Timer(lifetime, lambda: os._exit(0)).start()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
print(s.getsockname()[1], flush=True)

def serve(c):
    with c:
        while data := c.recv(65536):
            c.sendall(data)

while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


class RemoteProgram:
    """`with RemoteProgram("gradio") as app:` an echo server on 127.0.0.1:`app.port`."""

    def __init__(self, name: str = "gradio", port: int = 0, lifetime: float = 120.0) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SCRIPT, name, str(port), str(lifetime)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip():
            self.stop()
            raise RuntimeError(f"the listener did not start on port {port}")
        self.port = int(line)
        self.pid = self.proc.pid

    def stop(self) -> None:
        """Kill it (by its PID) and wait, so that its port is free again."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> RemoteProgram:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def echo(port: int, data: bytes = b"hello through the tunnel") -> bytes:
    """Send `data` to 127.0.0.1:`port`, half-close, and return all that comes back (nothing
    when the connection is closed or reset without an answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        chunks = []
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        # The tunnel's target refused: closed with data unread, the reset landing in recv, or
        # (on a busy machine) already in sendall or shutdown (ENOTCONN).
        except (ConnectionResetError, BrokenPipeError):
            pass
        except OSError as e:
            if e.errno != errno.ENOTCONN:
                raise
    return b"".join(chunks)


def free_neighbour_ports() -> tuple[int, int]:
    """Two free ports next to each other (7860 and 7861, as Gradio would take them)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first >= 65535:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", first))
                b.bind(("127.0.0.1", first + 1))
        except OSError:
            continue
        return first, first + 1
    raise RuntimeError("no two free neighbouring ports")
