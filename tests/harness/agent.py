"""A real OpenSSH ssh-agent on a socket in a fresh temp dir, for agent-forwarding tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

AGENT_MISSING = "ssh-agent not installed (it comes with openssh-client)"


class SshAgent:
    """`with SshAgent() as agent:` -> an empty agent listening on `agent.socket`.

    Runs in the foreground (`ssh-agent -D`) so the harness holds its PID and stops
    exactly that process on exit.
    """

    def __init__(self, start_timeout: float = 10.0) -> None:
        self.start_timeout = start_timeout
        # A short path: AF_UNIX socket paths are limited to ~100 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="devtui-agent-"))
        self.socket = self.dir / "agent.sock"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Path:
        agent = shutil.which("ssh-agent")
        if agent is None:
            raise RuntimeError(AGENT_MISSING)
        self._proc = subprocess.Popen(
            [agent, "-D", "-a", str(self.socket)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        while not self.socket.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ssh-agent did not start on {self.socket}")
            time.sleep(0.01)
        return self.socket

    def stop(self) -> None:
        """Stop the agent (by PID) and remove its temp dir."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SshAgent:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
