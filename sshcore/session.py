"""One SSH connection per host, shared by its tunnels and commands, that heals itself.

States: idle -> connecting -> connected -> lost -> reconnecting -> connected ..., or
failed (auth refused, host key refused: retrying cannot help, so it stops and says why).
Network errors are retried forever with capped exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
from asyncssh.public_key import get_default_public_key_algs

from . import asyncssh_tuning, hostkeys
from .atomic import read_file
from .errors import DevtuiError
from .events import (
    AuthFailed,
    EventBus,
    HostConnected,
    HostConnecting,
    HostDisconnected,
    HostFailed,
    HostKeyLearned,
    HostKeyRejected,
    HostLost,
    HostReconnectScheduled,
)
from .keys import KEY_FILE_LIMIT, is_encrypted
from .model import HostSpec, Settings, expand_proxy_tokens, host_settings
from .prompts import HostKeyMismatch, HostKeyQuestion, Prompts
from .visible_text import visible

DEFAULT_KEY_NAMES = ("id_ed25519", "id_ecdsa", "id_rsa")
BACKOFF_BASE = 0.5
_T = TypeVar("_T")

# No empty MSG_IGNORE before every packet on AEAD ciphers (measured: see asyncssh_tuning).
asyncssh_tuning.apply()


class HostState(str, enum.Enum):
    """Where a host's connection is."""

    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    LOST = "lost"
    RECONNECTING = "reconnecting"
    FAILED = "failed"


class ConnectError(DevtuiError):
    """A connect attempt failed; `permanent` when retrying cannot help (auth, host key)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class HostKeyError(ConnectError):
    """The host key is unknown and not trusted, or it CHANGED."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class AuthError(ConnectError):
    """The server refused every way we tried to log in."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


@dataclass(frozen=True)
class HostStatus:
    """A snapshot of a host's connection for display."""

    name: str
    state: HostState
    error: str | None = None
    connect_ms: float | None = None
    auth_method: str | None = None
    server_version: str | None = None


def backoff_delay(attempt: int, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before reconnect `attempt` (1-based), with jitter, never above `cap`.

    The base doubles every second attempt (0.5, 0.7, 1, 1.4, 2, 2.8, 4 ... s): a link that
    comes back after a short outage is found within a few seconds, while a server that
    stays down is asked less and less often.
    """
    base = min(cap, BACKOFF_BASE * 2 ** (max(0, attempt - 1) / 2))
    # Jitter in [0.5, 1.0) x base: clients never retry in lockstep, and never 0 (no spin).
    return float(base * (0.5 + 0.5 * (rng or random).random()))


class _Client(asyncssh.SSHClient):
    """Per-attempt hooks: host key capture, password prompts, and a record of what was tried."""

    def __init__(self, session: HostSession, interactive: bool) -> None:
        self._session = session
        self._interactive = interactive
        self.offered_key: asyncssh.SSHKey | None = None
        self.tried: list[str] = []
        self.method = "publickey"
        self.prompt_seconds = 0.0
        self.prompting = False
        self._password_tries = 0
        self._kbdint_tries = 0
        self.lost: Exception | None = None
        self.key_count = 0

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        # Only called for keys known_hosts does not trust: remember it, refuse for now.
        self.offered_key = key
        return False

    def public_key_auth_requested(self) -> None:
        # asyncssh calls this once every given key (agent first) has been refused, and again
        # after each refused password, as it goes back through the methods.
        self._previous_refused()
        if any(t.startswith("publickey") for t in self.tried):
            return None
        files = self.key_count
        what = f"{files} key file{'s' if files != 1 else ''}" if files else "no key files"
        if self._session.only_keys is None:
            what += " + ssh-agent" if _agent_available() else ", no ssh-agent"
        self.tried.append(f"publickey ({what}: refused)")
        return None

    async def _ask(self, call: Awaitable[_T]) -> _T:
        self.prompting = True
        start = time.monotonic()
        try:
            return await call
        finally:
            self.prompting = False
            self.prompt_seconds += time.monotonic() - start

    def _previous_refused(self) -> None:
        # Asked again (or denied at the end) right after we answered: that answer was refused.
        if self.tried and self.tried[-1] in (
            "password",
            "password (remembered)",
            "keyboard-interactive",
        ):
            self.tried[-1] = self.tried[-1].split(" (")[0] + " (refused)"

    def auth_failed(self) -> None:
        """Called when the server finally said no: the last answer was refused too."""
        self._previous_refused()

    async def password_auth_requested(self) -> str | None:
        self._previous_refused()
        self._password_tries += 1
        if self._password_tries > 3:
            return None
        session = self._session
        if session.password is not None and self._password_tries == 1:
            self.method = "password"
            self.tried.append("password (remembered)")
            return session.password
        if not self._interactive:
            self.tried.append("password (nobody to ask)")
            return None
        spec = session.spec
        answer = await self._ask(
            session.prompts.password(spec.name, f"({spec.name}) Password for {spec.destination}")
        )
        if answer is None:
            self.tried.append("password (cancelled)")
            return None
        self.method = "password"
        self.tried.append("password")
        session.password = answer  # memory only, for reconnects during this run
        return answer

    def kbdint_auth_requested(self) -> str | None:
        # asyncssh offers keyboard-interactive (PAM questions, one-time codes) only when the
        # client says so: with someone to answer, or a remembered password for "Password:".
        self._kbdint_tries += 1
        if self._kbdint_tries > 3:
            return None
        if self._interactive or self._session.password is not None:
            return ""  # let the server choose its submethods
        return None

    async def kbdint_challenge_received(
        self, name: str, instructions: str, lang: str, prompts: Sequence[tuple[str, bool]]
    ) -> list[str] | None:
        if not prompts:
            return []
        self._previous_refused()
        session = self._session
        answers: list[str] = []
        for text, _echo in prompts:
            plain = _is_password_prompt(text)
            if plain and session.password is not None and len(prompts) == 1:
                answers.append(session.password)
                continue
            if not self._interactive:
                self.tried.append("keyboard-interactive (nobody to ask)")
                return None
            # The server writes these words: escaped, and marked as the host's (as OpenSSH's
            # "(user@host)"), so no server can draw a fake local prompt such as a passphrase's.
            prompt = f"({session.spec.name}) {visible(text.strip())}"
            answer = await self._ask(session.prompts.password(session.spec.name, prompt))
            if answer is None:
                self.tried.append("keyboard-interactive (cancelled)")
                return None
            if plain:
                session.password = answer
            answers.append(answer)
        self.method = "keyboard-interactive"
        self.tried.append("keyboard-interactive")
        return answers


class HostSession:
    """The shared connection to one host."""

    def __init__(
        self,
        spec: HostSpec,
        settings: Settings,
        prompts: Prompts,
        bus: EventBus,
        jump: HostSession | None = None,
        interactive: bool = True,
        only_keys: list[asyncssh.SSHKey] | None = None,
    ) -> None:
        self.spec = spec
        # only_keys: log in with exactly these keys (no agent, no password), to prove a key works.
        self.only_keys = only_keys
        self.settings = host_settings(settings, spec)  # the host's own keepalive, timeout
        self.prompts = prompts
        self.bus = bus
        self.jump = jump
        self.interactive = interactive
        self.state = HostState.IDLE
        self.error: str | None = None
        self.conn: asyncssh.SSHClientConnection | None = None
        self.password: str | None = None  # typed once, kept in memory for reconnects only
        self.connect_ms: float | None = None
        self.auth_method: str | None = None
        self.server_version: str | None = None
        self._keys: list[asyncssh.SSHKey] | None = None
        self._encrypted: list[Path] = []
        self._certs: list[asyncssh.SSHCertificate] | None = None
        self.unlocked: dict[Path, asyncssh.SSHKey] = {}  # passphrase keys opened this run
        self._live_client: _Client | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._first: asyncio.Future[asyncssh.SSHClientConnection] | None = None
        self._watchers: list[Callable[[HostState], None]] = []
        self._changed = asyncio.Event()
        self._retry_now = asyncio.Event()  # set: the backoff wait ends now (after a wake)
        self._lost_note: str | None = None  # why we dropped the connection ourselves
        self._closing = False
        self._keep = False
        self._ever_connected = False
        self.attempts = 0  # reconnect attempts since the last good connection

    # -- public -------------------------------------------------------------------------------
    def status(self) -> HostStatus:
        """A snapshot for display."""
        return HostStatus(
            self.spec.name,
            self.state,
            self.error,
            self.connect_ms,
            self.auth_method,
            self.server_version,
        )

    def watch(self, hook: Callable[[HostState], None]) -> Callable[[], None]:
        """Call `hook(state)` on every state change; returns the unsubscribe function."""
        self._watchers.append(hook)
        return lambda: self._watchers.remove(hook)

    async def connection(self) -> asyncssh.SSHClientConnection:
        """The live connection, connecting (and from then on healing) as needed.

        Raises ConnectError when the first attempt fails.
        """
        if self.conn is not None and self.state == HostState.CONNECTED:
            return self.conn
        if self._supervisor is None or self._supervisor.done():
            self._closing = False
            loop = asyncio.get_running_loop()
            self._first = loop.create_future()
            self._supervisor = asyncio.create_task(
                self._supervise(retry_first=False), name=f"session:{self.spec.name}"
            )
        assert self._first is not None
        if self._first.done() and self.state != HostState.CONNECTED:
            # Connected once and now healing: wait for the next good connection.
            return await self.wait_connected()
        return await asyncio.shield(self._first)

    def keep_connected(self) -> None:
        """Connect in the background and keep retrying, even if the first attempt fails."""
        self._keep = True  # also tells a supervisor already running not to give up
        if self._supervisor is None or self._supervisor.done():
            self._closing = False
            self._first = asyncio.get_running_loop().create_future()
            self._supervisor = asyncio.create_task(
                self._supervise(retry_first=True), name=f"session:{self.spec.name}"
            )

    async def wait_connected(self) -> asyncssh.SSHClientConnection:
        """Wait until connected (raises ConnectError if the session gives up)."""
        while True:
            if self.conn is not None and self.state == HostState.CONNECTED:
                return self.conn
            if self.state == HostState.FAILED or self._supervisor is None:
                raise ConnectError(self.error or "not connected")
            self._changed.clear()
            await self._changed.wait()

    async def check_alive(self, timeout: float) -> bool:
        """Prove the live connection answers within `timeout` (after the machine slept, a
        connection whose flow vanished can look fine for several keepalive intervals); one
        that does not is dropped at once and reconnected. A session waiting to retry tries
        now. Returns whether the connection answered."""
        conn = self.conn
        if conn is None or self.state != HostState.CONNECTED:
            self._retry_now.set()  # no backoff wait: the network may just have come back
            return False
        try:
            await asyncio.wait_for(_round_trip(conn), timeout)
            return True
        except asyncio.TimeoutError:
            if self.conn is conn:
                self._lost_note = f"no answer within {timeout:g} s after waking up"
                conn.abort()
            return False
        except (asyncssh.Error, OSError):
            return False  # it is closing already; the supervisor reconnects

    async def close(self) -> None:
        """Disconnect and stop healing."""
        self._closing = True
        self._keep = False
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._supervisor
        self._supervisor = None
        self._resolve_first(ConnectError(f"{self.spec.name}: disconnected"))
        await self._drop_connection()
        was = self.state
        self._set_state(HostState.IDLE)
        if was in (HostState.CONNECTED, HostState.RECONNECTING, HostState.LOST):
            self.bus.publish(HostDisconnected(self.spec.name))

    # -- internals ----------------------------------------------------------------------------
    def _set_state(self, state: HostState, error: str | None = None) -> None:
        changed = state != self.state
        self.state = state
        self.error = error
        self._changed.set()
        if changed:
            for hook in list(self._watchers):
                hook(state)

    async def _drop_connection(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5)

    async def _supervise(self, retry_first: bool) -> None:
        first = True
        while not self._closing:
            self._set_state(HostState.CONNECTING if first else HostState.RECONNECTING, self.error)
            try:
                try:
                    conn = await self._attempt(first_attempt=first)
                except (ConnectError, asyncio.CancelledError):
                    raise
                except Exception as e:  # a bug or an odd environment: say it, don't hang
                    raise ConnectError(visible(f"{type(e).__name__}: {e}"), permanent=True) from e
            except ConnectError as e:
                if first and not (retry_first or self._keep):
                    self._set_state(HostState.FAILED, str(e))
                    self.bus.publish(HostFailed(self.spec.name, str(e)))
                    self._resolve_first(e)
                    return
                if e.permanent:
                    self._set_state(HostState.FAILED, str(e))
                    self.bus.publish(HostFailed(self.spec.name, str(e)))
                    self._resolve_first(e)
                    return
                first = False
                self.attempts += 1
                delay = backoff_delay(self.attempts, self.settings.reconnect_max_delay)
                self._set_state(HostState.RECONNECTING, str(e))
                self.bus.publish(
                    HostReconnectScheduled(self.spec.name, self.attempts, delay, str(e))
                )
                await self._backoff(delay)
                continue
            first = False
            self.attempts = 0
            self._lost_note = None
            self.conn = conn
            self._set_state(HostState.CONNECTED)
            self._resolve_first(conn)
            await conn.wait_closed()
            if self._closing:
                return
            self.conn = None
            reason = self._lost_reason()
            self.bus.publish(HostLost(self.spec.name, reason))
            self._set_state(HostState.LOST, reason)
            self.attempts = 1
            delay = backoff_delay(self.attempts, self.settings.reconnect_max_delay)
            self.bus.publish(HostReconnectScheduled(self.spec.name, self.attempts, delay, reason))
            await self._backoff(delay)

    def _resolve_first(self, result: asyncssh.SSHClientConnection | Exception) -> None:
        if self._first is not None and not self._first.done():
            if isinstance(result, Exception):
                self._first.set_exception(result)
                self._first.exception()  # retrieved: nobody may be waiting
            else:
                self._first.set_result(result)

    async def _backoff(self, delay: float) -> None:
        """Wait `delay` seconds before the next attempt, or less if asked to retry now."""
        self._retry_now.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._retry_now.wait(), delay)

    def _lost_reason(self) -> str:
        if self._lost_note is not None:
            return self._lost_note
        client = self._live_client
        if client is not None and client.lost is not None:
            return visible(str(client.lost)) or type(client.lost).__name__
        return "closed by the server or the network"

    def _load_keys(self) -> list[asyncssh.SSHKey]:
        # Loaded once per session: a passphrase is asked at most once, and reconnects reuse it.
        if self.only_keys is not None:
            return self.only_keys
        if self._keys is not None:
            return self._keys
        keys: list[asyncssh.SSHKey] = []
        paths: list[Path] = []
        for name in self.spec.identity_files:  # in order: the server sees them as ssh sends them
            path = hostkeys.expand(name)
            if path not in paths:
                paths.append(path)
        ssh_dir = Path("~/.ssh").expanduser()
        paths += [ssh_dir / name for name in DEFAULT_KEY_NAMES if (ssh_dir / name) not in paths]
        self._encrypted = []
        for path in paths:
            try:
                data = read_file(path, KEY_FILE_LIMIT)
            except OSError:
                continue
            if is_encrypted(data):
                self._encrypted.append(path)  # unlocked by _unlock_keys when someone can ask
                continue
            try:
                keys.append(asyncssh.import_private_key(data))
            except (asyncssh.KeyImportError, ValueError):
                continue
        self._keys = keys
        return keys

    def _load_certs(self) -> list[asyncssh.SSHCertificate]:
        """The host's certificate_file, read once; missing or unreadable: none (as ssh, which
        then logs in with the plain key; `devtui check` warns about a missing file)."""
        if self._certs is None:
            self._certs = []
            if self.spec.certificate_file:
                try:
                    path = hostkeys.expand(self.spec.certificate_file)
                    self._certs = [asyncssh.read_certificate(path)]
                except (OSError, asyncssh.KeyImportError, ValueError):
                    pass
        return self._certs

    async def _unlock_keys(self, client: _Client) -> None:
        for path in list(self._encrypted):
            if not self.interactive:
                continue
            passphrase = await client._ask(self.prompts.passphrase(str(path)))
            if passphrase is None:
                continue
            try:
                key = await asyncio.to_thread(asyncssh.read_private_key, path, passphrase)
            except (asyncssh.KeyEncryptionError, asyncssh.KeyImportError, ValueError):
                self.bus.publish(AuthFailed(self.spec.name, f"wrong passphrase for {path}"))
                continue
            assert self._keys is not None
            self._keys.insert(0, key)
            self.unlocked[path.absolute()] = key
            self._encrypted.remove(path)

    async def _attempt(self, first_attempt: bool) -> asyncssh.SSHClientConnection:
        """One connect attempt (plus one more right after a newly trusted host key)."""
        spec = self.spec
        self.bus.publish(HostConnecting(spec.name, spec.destination, attempt=self.attempts + 1))
        tunnel = None
        if self.jump is not None:
            try:
                tunnel = await self.jump.connection()
            except ConnectError as e:
                raise ConnectError(f"jump host {self.jump.spec.name}: {e}") from None
        known_path = hostkeys.expand(self.settings.known_hosts)
        for _ in range(2):
            try:
                known = await asyncio.to_thread(
                    hostkeys.lookup, known_path, spec.hostname, spec.port
                )
            except (OSError, UnicodeError) as e:
                raise ConnectError(f"cannot read {known_path}: {e}", permanent=True) from None
            # Someone may be asked (password, passphrase) until the first good login; after
            # that, reconnects use what is in memory and never prompt.
            interactive = self.interactive and not self._ever_connected
            client = _Client(self, interactive)
            keys = await asyncio.to_thread(self._load_keys)
            certs = await asyncio.to_thread(self._load_certs)
            if interactive:
                await self._unlock_keys(client)
                keys = list(self._keys or keys)
            client.key_count = len(keys)
            client.prompt_seconds = 0.0  # time at the passphrase prompt is not connect time
            started = time.monotonic()
            try:
                conn = await self._connect_bounded(client, known, keys, tunnel, certs)
            except asyncssh.HostKeyNotVerifiable as e:
                await self._host_key_problem(client, known, e)
                continue  # newly trusted: connect again, now checked against the saved key
            except asyncssh.PermissionDenied:
                client.auth_failed()
                detail = "; ".join(dict.fromkeys(client.tried)) or "no method was accepted"
                self.bus.publish(AuthFailed(spec.name, f"{spec.destination}: tried {detail}"))
                raise AuthError(f"login refused for {spec.destination}: tried {detail}") from None
            except (OSError, asyncssh.Error, asyncio.TimeoutError) as e:
                raise ConnectError(visible(_describe(e, spec))) from None
            self._ever_connected = True
            elapsed = (time.monotonic() - started - client.prompt_seconds) * 1000
            self.connect_ms = elapsed
            self._live_client = client
            self.auth_method = client.method
            self.server_version = visible(str(conn.get_extra_info("server_version", "")))
            self.bus.publish(HostConnected(spec.name, client.method, self.server_version, elapsed))
            return conn
        raise HostKeyError(f"host key for {spec.destination} could not be verified")

    async def _connect_bounded(
        self,
        client: _Client,
        known: hostkeys.KnownKeys,
        keys: list[asyncssh.SSHKey],
        tunnel: asyncssh.SSHClientConnection | None,
        certs: list[asyncssh.SSHCertificate],
    ) -> asyncssh.SSHClientConnection:
        spec, settings = self.spec, self.settings
        options: dict[str, Any] = {
            "port": spec.port,
            "username": spec.user or _local_user(),
            "known_hosts": known.for_asyncssh(),
            "client_factory": lambda: client,
            "client_keys": keys,
            "client_certs": certs,  # paired with the key they certify, offered before it
            "agent_forwarding": spec.forward_agent,
            "keepalive_interval": settings.keepalive_interval or None,
            "keepalive_count_max": settings.keepalive_count_max,
            "config": None,  # devtui's config is the truth; ~/.ssh/config is imported explicitly
            # AES-GCM first where the CPU has AES instructions: ~1.5x the throughput of
            # asyncssh's default order (bench/README.md).
            "encryption_algs": asyncssh_tuning.preferred_encryption_algs(),
            "compression_algs": ["zlib@openssh.com", "zlib", "none"]
            if spec.compression
            else ["none"],
            "login_timeout": 600,  # the person typing a password sets the pace; see below
            # A password where the server takes one (the prompt names the destination);
            # keyboard-interactive only where it is all there is (PAM-only, one-time codes).
            "preferred_auth": "publickey,password,keyboard-interactive",
        }
        if not known.known:
            # Like OpenSSH: with nothing on file, ask for a plain host key (a certificate
            # would be refused outright for want of a CA, with no question asked).
            options["server_host_key_algs"] = [
                alg.decode() for alg in get_default_public_key_algs()
            ]
        if self.only_keys is not None:
            options.update(agent_path=None, password_auth=False, kbdint_auth=False)
        if tunnel is not None:
            options["tunnel"] = tunnel
        if spec.proxy_command:
            options["proxy_command"] = proxy_argv(spec)
        task = asyncio.ensure_future(asyncssh.connect(spec.hostname, **options))
        # The attempt is bounded by connect_timeout, not counting time spent at a prompt.
        start = time.monotonic()
        try:
            while True:
                waited = time.monotonic() - start - client.prompt_seconds
                remaining = settings.connect_timeout - waited
                if remaining <= 0 and not client.prompting:
                    task.cancel()
                    raise asyncio.TimeoutError(f"no answer within {settings.connect_timeout:g} s")
                done, _ = await asyncio.wait({task}, timeout=max(remaining, 0.05))
                if done:
                    conn: asyncssh.SSHClientConnection = task.result()
                    return conn
        except BaseException:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            raise

    async def _host_key_problem(
        self, client: _Client, known: hostkeys.KnownKeys, error: Exception
    ) -> None:
        spec = self.spec
        address = hostkeys.host_pattern(spec.hostname, spec.port)
        key = client.offered_key
        if key is None:
            raise HostKeyError(f"host key for {address} not accepted: {error}")
        new_fp = hostkeys.fingerprint(key)
        if key in known.revoked:
            self.bus.publish(HostKeyRejected(spec.name, address, f"key {new_fp} is revoked"))
            raise HostKeyError(f"host key {new_fp} of {address} is marked @revoked")
        if known.known:
            old = known.trusted[0] if known.trusted else None
            if old is not None:
                old_fp, line = hostkeys.fingerprint(old.key), old.line
            elif known.unreadable:
                old_fp, line = "(a key devtui cannot read)", known.unreadable[0]
            else:
                old_fp, line = "(a certificate authority)", 0
            mismatch = HostKeyMismatch(
                spec.name,
                address,
                key.get_algorithm(),
                old_fp,
                new_fp,
                str(known.path),
                line,
            )
            reason = (
                f"HOST KEY CHANGED for {address}: known_hosts has {old_fp} "
                f"({known.path}:{line}), the server now offers {new_fp}. This may be an attack "
                f"(or a rebuilt machine). Refused. If you know the machine was rebuilt, remove "
                f"the old key explicitly (devtui hosts forget-key {spec.name})."
            )
            self.bus.publish(HostKeyRejected(spec.name, address, reason))
            await self.prompts.host_key_changed(mismatch)
            raise HostKeyError(reason)
        question = HostKeyQuestion(spec.name, address, key.get_algorithm(), new_fp)
        if not await client._ask(self.prompts.confirm_host_key(question)):
            reason = f"unknown host key {new_fp} for {address} was not trusted"
            self.bus.publish(HostKeyRejected(spec.name, address, reason))
            raise HostKeyError(reason)
        await asyncio.to_thread(hostkeys.learn, known.path, spec.hostname, spec.port, key)
        self.bus.publish(HostKeyLearned(spec.name, address, new_fp, str(known.path)))


async def _round_trip(conn: asyncssh.SSHClientConnection) -> None:
    """One exchange with the server: a session channel opened (running `exit 0`) and closed.
    asyncssh has no public keepalive request; any answer, a refusal too, proves the link."""
    try:
        chan, _ = await conn.create_session(asyncssh.SSHClientSession, "exit 0")
    except asyncssh.ChannelOpenError:
        return  # refused (MaxSessions, a restricted account): the server answered
    chan.close()


def _is_password_prompt(text: str) -> bool:
    """ "Password:" or "me@host's password:", not "One-time password" or "Verification code"."""
    lower = text.lower()
    return "password" in lower and not any(
        word in lower for word in ("one-time", "otp", "verification", "token", "code", "new ")
    )


def _agent_available() -> bool:
    # What asyncssh will use: SSH_AUTH_SOCK, or on Windows the OpenSSH agent pipe / Pageant.
    return bool(os.environ.get("SSH_AUTH_SOCK")) or os.name == "nt"


# What %r may put into a shell line: a user name with `$`, `\\` or quotes could run code.
_SHELL_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-")


def proxy_argv(spec: HostSpec) -> str | list[str]:
    """The host's proxy_command with %h %p %r %n %% expanded, as ssh runs it: by the shell
    (`sh -c 'exec ...'`) on POSIX; on Windows asyncssh splits it and starts it directly."""
    assert spec.proxy_command is not None
    user = spec.user or _local_user()
    if "%r" in spec.proxy_command.replace("%%", "") and not set(user) <= _SHELL_SAFE:
        raise ConnectError(
            f"user {user!r} has characters a shell would read: ProxyCommand not run",
            permanent=True,
        )
    command = expand_proxy_tokens(
        spec.proxy_command,
        {"h": spec.hostname, "p": str(spec.port), "r": user, "n": spec.name, "%": "%"},
    )
    if os.name == "nt":
        return command
    return ["/bin/sh", "-c", f"exec {command}"]


def _local_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment (rare, e.g. some containers)
        return "root"


def _describe(error: BaseException, spec: HostSpec) -> str:
    where = f"{spec.hostname}:{spec.port}"
    if isinstance(error, ConnectionRefusedError):
        return f"{where}: connection refused (is sshd running on port {spec.port}?)"
    if isinstance(error, asyncio.TimeoutError):
        return f"{where}: timed out ({error or 'no answer'})"
    if isinstance(error, OSError) and error.strerror:
        return f"{where}: {error.strerror}"
    if isinstance(error, asyncssh.DisconnectError):
        return f"{where}: disconnected by the server: {error.reason}"
    if isinstance(error, asyncssh.ConnectionLost):
        return f"{where}: connection lost: {error.reason}"
    return f"{where}: {error or type(error).__name__}"
