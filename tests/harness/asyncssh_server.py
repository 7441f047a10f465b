"""An in-process asyncssh server on 127.0.0.1 for fast tests.

Password and public-key users, local and remote port forwarding (remote listeners
always bind loopback, like OpenSSH's `GatewayPorts no`), optional SFTP rooted in a temp
dir, and a tiny command set: `echo`, `cat`, `uname [-a]`, `sleep N`, `exit N`, `true`,
`false`, `whoami`, `pwd`. With `real_commands=True` anything else runs in `/bin/sh`.
"""

from __future__ import annotations

import asyncio
import secrets
import shlex
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

LOOPBACK = ("127.0.0.1", "localhost", "::1")
DEFAULT_USER = "tester"  # what the `asyncssh_server` fixture accepts
DEFAULT_PASSWORD = "tester-password"


@dataclass
class User:
    """Credentials of one user; `keys` are OpenSSH public key lines or asyncssh keys."""

    password: str | None = None
    keys: list[str | asyncssh.SSHKey] = field(default_factory=list)

    def key_blobs(self) -> set[bytes]:
        blobs = set()
        for k in self.keys:
            key = asyncssh.import_public_key(k) if isinstance(k, str) else k
            blobs.add(key.public_data)
        return blobs


class _Server(asyncssh.SSHServer):
    def __init__(self, owner: AsyncsshServer) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._owner.connections.add(conn)
        self._owner.total_connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._owner.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        self._owner.passwords.append((username, password))
        user = self._owner.users.get(username)
        return bool(
            user and user.password is not None and secrets.compare_digest(user.password, password)
        )

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        user = self._owner.users.get(username)
        return bool(user and key.public_data in user.key_blobs())

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> Any:
        self._owner.forwarded.append((dest_host, dest_port))
        route = self._owner.routes.get((dest_host, dest_port))
        if route is not None and self._conn is not None:
            # The server's own network: this address leads elsewhere from here.
            return self._conn.forward_connection(*route)
        return True

    def server_requested(self, listen_host: str, listen_port: int) -> Any:
        if listen_host.lower() in LOOPBACK:
            return True
        if listen_host in ("", "0.0.0.0", "::", "*") and self._conn is not None:
            # Bind loopback only, but keep the requested host as the forward's name.
            return self._conn.forward_local_port("127.0.0.1", listen_port, listen_host, listen_port)
        return False


class AsyncsshServer:
    """`async with AsyncsshServer(users={"alice": "pw"}) as srv:` -> listening on `srv.port`.

    `users` maps a name to a password (str) or a `User` (password and/or keys); `routes`
    maps a forward's (host, port) to where this server really connects it (see `routes`).
    """

    def __init__(
        self,
        users: Mapping[str, str | User] | None = None,
        *,
        sftp: bool = True,
        real_commands: bool = False,
        port: int = 0,
        routes: Mapping[tuple[str, int], tuple[str, int]] | None = None,
    ) -> None:
        self.users: dict[str, User] = {
            name: User(password=u) if isinstance(u, str) else u for name, u in (users or {}).items()
        }
        self.sftp = sftp
        self.real_commands = real_commands
        self.port = port
        self.host_key = asyncssh.generate_private_key("ssh-ed25519", comment="devtui-test-host")
        self.dir = Path(tempfile.mkdtemp(prefix="devtui-asyncssh-"))
        self.home = self.dir / "home"  # SFTP root and cwd of real commands
        self.home.mkdir()
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self.total_connections = 0
        # A jump host's view of the network: a forward (direct-tcpip) to a key goes to its
        # value, so a test can hide a target at an address only this server reaches.
        self.routes: dict[tuple[str, int], tuple[str, int]] = dict(routes or {})
        self.forwarded: list[tuple[str, int]] = []  # (host, port) of every forward asked for
        self.passwords: list[tuple[str, str]] = []  # (user, password) of every password login
        self._acceptor: asyncssh.SSHAcceptor | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> int:
        """Listen on 127.0.0.1 (same port after a `stop()`); returns the port."""
        self._acceptor = await asyncssh.create_server(
            lambda: _Server(self),
            "127.0.0.1",
            self.port,
            server_host_keys=[self.host_key],
            process_factory=self._process,
            sftp_factory=self._sftp if self.sftp else None,
            encoding=None,
            allow_scp=False,
            reuse_address=True,
        )
        self.port = self._acceptor.get_port()
        return self.port

    async def stop(self) -> None:
        """Stop listening and drop every client connection (abruptly, like a crash)."""
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None
        self.drop_connections()

    def drop_connections(self) -> None:
        """Abort every open client connection; the listener keeps running."""
        for conn in list(self.connections):
            conn.abort()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def close(self) -> None:
        await self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    async def __aenter__(self) -> AsyncsshServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- keys and clients -----------------------------------------------------------------

    def known_hosts_line(self) -> str:
        """`[127.0.0.1]:PORT ssh-ed25519 AAAA...`."""
        pub = self.host_key.export_public_key("openssh").decode().split()
        return f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}"

    def known_hosts(self) -> asyncssh.SSHKnownHosts:
        """The known_hosts line as an object for `asyncssh.connect(known_hosts=...)`."""
        return asyncssh.import_known_hosts(self.known_hosts_line() + "\n")

    def client_key(self, user: str, name: str = "id_ed25519") -> Path:
        """Write a new private key file to the temp dir, authorize it for `user`; its path."""
        key = asyncssh.generate_private_key("ssh-ed25519", comment=f"devtui-test-{name}")
        path = self.dir / f"{user}-{name}"
        key.write_private_key(str(path))
        key.write_public_key(str(path) + ".pub")
        path.chmod(0o600)
        self.users.setdefault(user, User()).keys.append(key.convert_to_public())
        return path

    async def connect(self, username: str, **kwargs: Any) -> asyncssh.SSHClientConnection:
        """`asyncssh.connect` to this server with its host key trusted; no agent, no keys."""
        opts: dict[str, Any] = {
            "known_hosts": self.known_hosts(),
            "agent_path": None,
            "client_keys": None,
        }
        opts.update(kwargs)
        return await asyncssh.connect("127.0.0.1", self.port, username=username, **opts)

    # -- sessions -------------------------------------------------------------------------

    def _sftp(self, chan: asyncssh.SSHServerChannel[bytes]) -> asyncssh.SFTPServer:
        return asyncssh.SFTPServer(chan, chroot=str(self.home).encode())

    async def _process(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        command = process.command
        try:
            if command is None:
                await self._shell(process)
                return
            process.exit(await self._run(process, command))
        except (asyncssh.BreakReceived, asyncssh.SignalReceived):
            process.exit(130)
        except (asyncssh.Error, OSError):
            pass  # the client went away
        except ValueError as exc:  # bad arguments, e.g. `sleep x`
            process.stderr.write(f"sh: {exc}\n".encode())
            process.exit(2)

    async def _shell(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        """No command: read lines from stdin and run each; `exit` or EOF ends the shell."""
        status = 0
        while True:
            process.stdout.write(b"$ ")
            line = await process.stdin.readline()
            if not line:
                break
            text = line.decode(errors="replace").strip()
            if text.split()[:1] == ["exit"]:
                status = int(text.split()[1]) if len(text.split()) > 1 else 0
                break
            if text:
                status = await self._run(process, text)
        process.exit(status)

    async def _run(self, process: asyncssh.SSHServerProcess[bytes], command: str) -> int:
        try:
            argv = shlex.split(command)
        except ValueError:
            argv = command.split()
        if not argv:
            return 0
        out = process.stdout
        name, args = argv[0], argv[1:]
        if name == "echo":
            out.write((" ".join(args) + "\n").encode())
        elif name == "cat" and not args:
            while data := await process.stdin.read(65536):
                out.write(data)
                await out.drain()
        elif name == "uname":
            out.write(b"Linux devtui-test 6.1.0 #1 SMP x86_64 GNU/Linux\n" if args else b"Linux\n")
        elif name == "sleep" and len(args) == 1:
            await asyncio.sleep(float(args[0]))
        elif name == "exit":
            return int(args[0]) if args else 0
        elif name in ("true", "false"):
            return int(name == "false")
        elif name == "whoami":
            out.write((process.get_extra_info("username") or "").encode() + b"\n")
        elif name == "pwd":
            out.write(b"/\n")
        elif self.real_commands:
            return await self._real(process, command)
        else:
            process.stderr.write(f"sh: 1: {name}: not found\n".encode())
            return 127
        return 0

    async def _real(self, process: asyncssh.SSHServerProcess[bytes], command: str) -> int:
        """Run `command` in /bin/sh (cwd `home`), streaming stdin/stdout/stderr."""
        proc = await asyncio.create_subprocess_shell(
            command,
            cwd=self.home,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdin and proc.stdout and proc.stderr

        async def feed(dst: asyncio.StreamWriter) -> None:
            try:
                while data := await process.stdin.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        async def copy(src: asyncio.StreamReader, dst: asyncssh.SSHWriter[bytes]) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()

        feeder = asyncio.create_task(feed(proc.stdin))
        try:
            await asyncio.gather(
                copy(proc.stdout, process.stdout), copy(proc.stderr, process.stderr)
            )
            return await proc.wait()
        finally:
            feeder.cancel()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
