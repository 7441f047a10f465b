"""A demo "remote machine" on 127.0.0.1, so a newcomer can try devtui with nothing else.

An embedded asyncssh server (random port, throwaway host key, user `demo` with a throwaway
key) and a tiny web app on the "remote", plus a config in a temp folder with a host and an
autostart tunnel to that app. The host's files are an SFTP server rooted in a `home` folder
there, so upload and download can be tried too. Everything lives as long as the `DemoSite`
context.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

import asyncssh
import tomlkit

from . import discovery
from .atomic import atomic_write_text
from .keys import write_key_file

DEMO_USER = "demo"
DEMO_README = """This is the devtui demo host's home folder: files you upload with devtui land here.
It lives in a temp folder on your own machine and goes when the demo ends.
"""
DEMO_PAGE = b"""<!doctype html><title>devtui demo</title>
<h1>Hello from the devtui demo host</h1>
<p>This page came through an SSH tunnel: your browser talked to 127.0.0.1 on your machine,
devtui carried it over SSH, and the "remote" answered.</p>
"""


class _DemoServer(asyncssh.SSHServer):
    """Key login for `demo` only; forwards to loopback only; nothing else."""

    def __init__(self, client_key: asyncssh.SSHKey) -> None:
        self._client_key = client_key

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == DEMO_USER and key.public_data == self._client_key.public_data

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        return dest_host in ("127.0.0.1", "localhost", "::1")

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        return listen_host in ("127.0.0.1", "localhost", "::1")


def proc_net_tcp(ports: list[int]) -> str:
    """/proc/net/tcp text with a 127.0.0.1 listener per port (what discovery reads)."""
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
    rows = [
        f"{i:4}: 0100007F:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000\n"
        for i, port in enumerate(ports)
    ]
    return header + "".join(rows)


async def _demo_command(process: asyncssh.SSHServerProcess[str], ports: list[int]) -> None:
    # Enough for `devtui hosts test` (its round trip runs "exit 0"), port discovery (it reads
    # /proc/net/tcp: here the demo's own listeners) and a friendly `run`.
    command = (process.command or "").strip()
    if command == "exit 0":
        process.exit(0)
        return
    if command == discovery.PROC_COMMAND:
        process.stdout.write(proc_net_tcp(ports))
        process.exit(0)
        return
    process.stdout.write(f"devtui demo host: this is not a real shell ({command})\n")
    process.exit(0)


async def _serve_page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(DEMO_PAGE), DEMO_PAGE)
        )
        await writer.drain()
    writer.close()


class DemoSite:
    """`async with DemoSite() as demo:` -> `demo.config_path` points at a ready config."""

    def __init__(self, local_port: int = 0) -> None:
        self.local_port = local_port  # 0: pick a free one
        self.folder = Path(tempfile.mkdtemp(prefix="devtui-demo-"))
        self.config_path = self.folder / "config.toml"
        self.home = self.folder / "home"  # the demo host's files (its SFTP root)
        self.ssh_port = 0
        self.web_port = 0
        self._ssh: asyncssh.SSHAcceptor | None = None
        self._web: asyncio.AbstractServer | None = None
        self._ports: list[int] = []  # what the demo host "listens on", for discovery

    async def __aenter__(self) -> DemoSite:
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _start(self) -> None:
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519", comment="devtui-demo")
        key_path = self.folder / "demo_ed25519"
        write_key_file(key_path, client_key.export_private_key(), private=True)
        self.home.mkdir()
        (self.home / "README.txt").write_text(DEMO_README, encoding="utf-8")
        root = str(self.home).encode()
        self._web = await asyncio.start_server(_serve_page, "127.0.0.1", 0)
        self.web_port = self._web.sockets[0].getsockname()[1]
        self._ssh = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            server_factory=lambda: _DemoServer(client_key),
            process_factory=functools.partial(_demo_command, ports=self._ports),
            allow_scp=False,
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=root),
        )
        self.ssh_port = self._ssh.get_port()
        self._ports[:] = sorted((self.ssh_port, self.web_port))
        if not self.local_port:
            self.local_port = _free_port()
        known = f"[127.0.0.1]:{self.ssh_port} {host_key.export_public_key().decode().strip()}\n"
        atomic_write_text(self.folder / "known_hosts", known, backup=False)
        atomic_write_text(self.config_path, self._config_text(key_path), backup=False)

    def _config_text(self, key_path: Path) -> str:
        # Written by tomlkit: a Windows path's backslashes and a quote in TMPDIR stay the path.
        def toml(path: Path) -> str:
            return str(tomlkit.string(str(path)).as_string())

        return f"""# devtui demo: a throwaway config for a throwaway "remote" on this machine.
[settings]
known_hosts = {toml(self.folder / "known_hosts")}
log_file = {toml(self.folder / "devtui.log")}

[hosts.demo]
hostname = "127.0.0.1"
port = {self.ssh_port}
user = "{DEMO_USER}"
identity_file = {toml(key_path)}

[tunnels.demo-web]
host = "demo"
kind = "local"
listen = "127.0.0.1:{self.local_port}"
target = "127.0.0.1:{self.web_port}"
autostart = true
"""

    @property
    def url(self) -> str:
        """Where the demo web app shows up once the tunnel is up."""
        return f"http://127.0.0.1:{self.local_port}/"

    async def close(self) -> None:
        """Stop both servers and delete the temp folder."""
        if self._ssh is not None:
            self._ssh.close()
            await self._ssh.wait_closed()
            self._ssh = None
        if self._web is not None:
            self._web.close()
            self._web = None
        shutil.rmtree(self.folder, ignore_errors=True)


def _free_port() -> int:
    from .ports import open_listener

    sock = open_listener("127.0.0.1", 0)
    try:
        return int(sock.getsockname()[1])
    finally:
        sock.close()
