"""A real OpenSSH sshd on 127.0.0.1 with everything (keys, config, log) in a temp dir.

Also: a throwaway local user with a password (root only), for password-auth tests.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import psutil

from .net import free_port

SSHD_MISSING = "OpenSSH sshd not installed (scripts/test.sh installs openssh-server)"
PRIVSEP_DIR = Path("/run/sshd")


def find_sshd() -> str | None:
    """Absolute path of sshd (it must be absolute: sshd re-executes itself), or None."""
    found = shutil.which("sshd")
    if found:
        return os.path.abspath(found)
    for cand in ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"):
        if os.access(cand, os.X_OK):
            return cand
    return None


@functools.cache
def sshd_version(sshd: str) -> tuple[int, int]:
    """(major, minor) of OpenSSH sshd; `sshd -V` or the usage text carries `OpenSSH_X.Y`."""
    out = subprocess.run([sshd, "-V"], capture_output=True, text=True, timeout=10)
    m = re.search(r"OpenSSH_(\d+)\.(\d+)", out.stdout + out.stderr)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def keygen(path: Path, comment: str) -> None:
    """New ed25519 keypair at `path` / `path.pub`, no passphrase (overwrites)."""
    for p in (path, path.with_name(path.name + ".pub")):
        p.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )


def sha256_fingerprint(public_key_line: str) -> str:
    """`SHA256:...` fingerprint of an OpenSSH public key line, as `ssh-keygen -l` prints it."""
    blob = base64.b64decode(public_key_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _keyword(line: str) -> str:
    parts = line.split(None, 1)
    return parts[0].lower() if parts else ""


class SshdError(RuntimeError):
    """sshd did not start (the message carries the tail of its log)."""


class Sshd:
    """OpenSSH sshd on 127.0.0.1:`port`, config/keys/log in `dir`.

    `extra_config` lines override the defaults of the same keyword (sshd keeps the first
    value it reads, so they go first); a `Match` block and what follows goes last.
    """

    def __init__(
        self,
        extra_config: Sequence[str] = (),
        *,
        workdir: Path | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        sshd = find_sshd()
        if sshd is None:
            raise SshdError(SSHD_MISSING)
        self.sshd_path = sshd
        self.version = sshd_version(sshd)
        self._own_dir = workdir is None
        self.dir = Path(tempfile.mkdtemp(prefix="devtui-sshd-")) if workdir is None else workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.extra_config = list(extra_config)
        self.start_timeout = start_timeout
        self.port = free_port()
        self.host_key_path = self.dir / "ssh_host_ed25519_key"
        self.config_path = self.dir / "sshd_config"
        self.log_path = self.dir / "sshd.log"
        self.pid_path = self.dir / "sshd.pid"
        self.authorized_keys_dir = self.dir / "authorized_keys"
        self.authorized_keys_dir.mkdir(exist_ok=True)
        (self.dir / "client").mkdir(exist_ok=True)
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_once = False
        self._orphans: list[psutil.Process] = []
        keygen(self.host_key_path, "devtui-test-host")

    # -- config ---------------------------------------------------------------------------

    def _config_text(self) -> str:
        head: list[str] = []
        tail: list[str] = []
        for line in self.extra_config:
            (tail if tail or _keyword(line) == "match" else head).append(line)
        overridden = {_keyword(line) for line in head}
        defaults = [
            "ListenAddress 127.0.0.1",
            f"Port {self.port}",
            f"HostKey {self.host_key_path}",
            f"PidFile {self.pid_path}",
            f"AuthorizedKeysFile {self.authorized_keys_dir}/%u",
            "StrictModes no",
            "UsePAM no",
            "PermitRootLogin yes",
            "PasswordAuthentication yes",
            "PubkeyAuthentication yes",
            "KbdInteractiveAuthentication no",
            "AllowTcpForwarding yes",
            "AllowStreamLocalForwarding yes",
            "GatewayPorts no",
            "X11Forwarding no",
            "ClientAliveInterval 0",
            "LogLevel VERBOSE",
            "MaxStartups 200",
            "MaxSessions 200",
            "MaxAuthTries 20",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "Subsystem sftp internal-sftp",
        ]
        if self.version >= (9, 8):
            # Repeated failures from 127.0.0.1 would otherwise get the loopback banned.
            defaults.append("PerSourcePenalties no")
        kept = [d for d in defaults if _keyword(d) not in overridden]
        return "\n".join([*head, *kept, *tail]) + "\n"

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start sshd and wait until it listens and sends its SSH banner."""
        if self.running:
            return
        if os.geteuid() == 0 and not PRIVSEP_DIR.is_dir():
            PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        # A fresh port may be taken between free_port() and bind: pick another. On a
        # restart the port is fixed, so retry the bind for a moment instead.
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                self._start_once(deadline)
                self._started_once = True
                return
            except _BindFailed as exc:
                if time.monotonic() > deadline:
                    raise SshdError(str(exc)) from None
                if not self._started_once:
                    self.port = free_port()
                else:
                    time.sleep(0.1)

    def _start_once(self, deadline: float) -> None:
        self.config_path.write_text(self._config_text())
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [self.sshd_path, "-D", "-e", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                new_log = self._log_since(offset)
                self._proc = None
                if "Address already in use" in new_log or "Cannot bind any address" in new_log:
                    raise _BindFailed(f"sshd could not bind port {self.port}:\n{new_log}")
                raise SshdError(f"sshd exited at start:\n{self.log_tail()}")
            if self._listening() and self._banner_ok():
                return
            time.sleep(0.02)
        self.stop()
        raise SshdError(f"sshd not ready within {self.start_timeout}s:\n{self.log_tail()}")

    def _listening(self) -> bool:
        """Our sshd (not some other process that took the port) listens on `port`."""
        assert self._proc is not None
        try:
            proc = psutil.Process(self._proc.pid)
            conns = getattr(proc, "net_connections", None) or proc.connections
            return any(
                c.status == psutil.CONN_LISTEN and c.laddr and c.laddr[1] == self.port
                for c in conns("tcp")
            )
        except psutil.Error:
            return False

    def _banner_ok(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                return s.recv(256).startswith(b"SSH-")
        except OSError:
            return False

    def stop(self, kill_sessions: bool = True) -> None:
        """Stop the listener (SIGTERM by PID, then SIGKILL after 5 s).

        `kill_sessions=True` also ends every session process it forked (clients see the
        connection drop, like a host going down); with False they live on, as after
        `systemctl stop ssh`, and `close()` ends them later.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            children = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            children = []
        # Sessions first, while the listener is alive to reap them promptly.
        if kill_sessions:
            _end_processes(children)
        else:
            self._orphans.extend(children)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def restart(self, kill_sessions: bool = True) -> None:
        """Stop and start again on the same port with the same host key."""
        self.stop(kill_sessions)
        self.start()

    def close(self) -> None:
        """Stop, end left-over sessions and remove the temp dir (if the harness made it)."""
        self.stop()
        _end_processes(self._orphans)
        self._orphans.clear()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Sshd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- host key -------------------------------------------------------------------------

    @property
    def host_public_key_line(self) -> str:
        """`ssh-ed25519 AAAA...` (type and base64, no comment)."""
        text = self.host_key_path.with_name(self.host_key_path.name + ".pub").read_text()
        return " ".join(text.split()[:2])

    def known_hosts_line(self) -> str:
        """`[127.0.0.1]:PORT ssh-ed25519 AAAA...` for a known_hosts file."""
        return f"[127.0.0.1]:{self.port} {self.host_public_key_line}"

    def write_known_hosts(self, path: Path | None = None) -> Path:
        """Write `known_hosts_line()` to `path` (default: `dir/known_hosts`); returns it."""
        path = path or self.dir / "known_hosts"
        path.write_text(self.known_hosts_line() + "\n")
        return path

    def host_key_sha256(self) -> str:
        """`SHA256:...` fingerprint of the host key."""
        return sha256_fingerprint(self.host_public_key_line)

    def regenerate_host_key(self) -> None:
        """Replace the host key (for changed-key tests); restarts sshd if it was running."""
        was_running = self.running
        keygen(self.host_key_path, "devtui-test-host")
        if was_running:
            self.restart()

    # -- users and client keys ------------------------------------------------------------

    @property
    def user(self) -> str:
        """The user the test runs as (the one `client_key` authorizes)."""
        return current_user()

    def authorize(self, user: str, public_key_line: str) -> None:
        """Append a public key line to `user`'s authorized_keys (managed by the harness)."""
        with open(self.authorized_keys_dir / user, "a") as f:
            f.write(public_key_line.strip() + "\n")

    def client_key(self, name: str = "id_ed25519") -> Path:
        """Private key path of client keypair `name` (made once), authorized for `user`."""
        path = self.dir / "client" / name
        if not path.exists():
            keygen(path, f"devtui-test-{name}")
            self.authorize(self.user, path.with_name(name + ".pub").read_text())
        return path

    def ssh_argv(
        self,
        *command: str,
        user: str | None = None,
        key: Path | None = None,
        known_hosts: Path | None = None,
        options: Sequence[str] = (),
    ) -> list[str]:
        """argv for the OpenSSH client to this server (batch mode, strict host key check)."""
        argv = ["ssh", "-F", "/dev/null", "-p", str(self.port)]
        opts = [
            "BatchMode=yes",
            f"UserKnownHostsFile={known_hosts or self.write_known_hosts()}",
            "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes",
            "IdentitiesOnly=yes",
            "ConnectTimeout=5",
            *options,
        ]
        for opt in opts:
            argv += ["-o", opt]
        argv += ["-i", str(key or self.client_key()), f"{user or self.user}@127.0.0.1", *command]
        return argv

    # -- log ------------------------------------------------------------------------------

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _log_since(self, offset: int) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


class _BindFailed(Exception):
    pass


def _gone(p: psutil.Process) -> bool:
    try:
        return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _wait_gone(procs: Sequence[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Poll (20 ms) until every process exited or is a zombie; returns those still alive.

    psutil.wait_procs() would wait for zombies to be reaped, and an orphan's reaper
    (PID 1 in a container) may take its time.
    """
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if not _gone(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if not _gone(p)]
    return alive


def _end_processes(procs: Sequence[psutil.Process], timeout: float = 3.0) -> None:
    """SIGTERM the given processes (by PID, reuse-safe), SIGKILL what is left after `timeout`."""
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    for p in _wait_gone(procs, timeout):
        with contextlib.suppress(psutil.Error):
            p.kill()
    _wait_gone(procs, timeout)


# -- throwaway local user (root only) -------------------------------------------------------


class ThrowawayUser(NamedTuple):
    name: str
    password: str
    home: Path


def throwaway_user_unavailable() -> str | None:
    """Why a throwaway user cannot be made here, or None if it can."""
    if os.geteuid() != 0:
        return "throwaway users need root (useradd/userdel)"
    for tool in ("useradd", "userdel", "chpasswd"):
        if shutil.which(tool) is None and not os.access(f"/usr/sbin/{tool}", os.X_OK):
            return f"{tool} not installed"
    return None


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def create_throwaway_user(prefix: str = "devtui") -> ThrowawayUser:
    """`useradd -m` a new user with a random name and password (no keys)."""
    name = f"{prefix}{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    shell = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
    subprocess.run(
        [_tool("useradd"), "-m", "-s", shell, name], check=True, capture_output=True, timeout=30
    )
    try:
        subprocess.run(
            [_tool("chpasswd")],
            input=f"{name}:{password}\n",
            text=True,
            check=True,
            capture_output=True,
            timeout=30,
        )
    except BaseException:
        remove_throwaway_user(name)
        raise
    return ThrowawayUser(name, password, Path(pwd.getpwnam(name).pw_dir))


def remove_throwaway_user(name: str) -> None:
    """End the user's processes (by PID) and `userdel -r` it."""
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return
    own = [
        p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid
    ]
    _end_processes(own)
    subprocess.run([_tool("userdel"), "-r", name], capture_output=True, timeout=30)
    with contextlib.suppress(KeyError):
        pwd.getpwnam(name)
        raise RuntimeError(f"userdel -r {name} left the user behind")
