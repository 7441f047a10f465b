"""A command on a pseudo-terminal of its own, as a login gives one: its controlling terminal,
so that closing the terminal hangs it up (SIGHUP) and what it draws can be read."""

from __future__ import annotations

import fcntl
import os
import subprocess
import termios
from collections.abc import Mapping, Sequence


def spawn_on_pty(
    argv: Sequence[str], env: Mapping[str, str]
) -> tuple[subprocess.Popen[bytes], int]:
    """Start `argv` in a new session whose controlling terminal is a new pty; returns the
    process and the pty's master end (the caller reads it, and closes it when done)."""
    master, slave = os.openpty()

    def controlling_terminal() -> None:  # in the child: the pty is its terminal
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        list(argv),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=dict(env),
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    return proc, master
