"""Shared fixtures: real OpenSSH sshd, in-process asyncssh server, fault proxy, echo servers.

See tests/harness/ for the classes; every server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

import pytest
from harness.agent import AGENT_MISSING, SshAgent
from harness.asyncssh_server import DEFAULT_PASSWORD, DEFAULT_USER, AsyncsshServer
from harness.net import EchoServer, Sha256Sink
from harness.proxy import TcpProxy
from harness.sshd import (
    SSHD_MISSING,
    Sshd,
    ThrowawayUser,
    create_throwaway_user,
    find_sshd,
    remove_throwaway_user,
    throwaway_user_unavailable,
)

SSHD_FIXTURES = {"sshd", "sshd_module", "sshd_factory"}

# In CI a missing tool fails its tests rather than skipping them (harness/strict_skips.py).
pytest_plugins = ["harness.strict_skips"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use a real sshd get the `sshd` marker (`-m "not sshd"` skips them)."""
    for item in items:
        if SSHD_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.sshd)


@pytest.fixture(autouse=True)
def no_guarded_crash(request: pytest.FixtureRequest) -> Iterator[None]:
    """A dashboard test fails when the crash guard caught an unexpected exception during it:
    the guard turns a bug into a one-line note and the app stays up, so a Pilot test could
    pass right over an "unexpected error" (the `g` and `f` AttributeErrors of issue 20).
    A test that provokes one on purpose is marked `guarded_crash_expected`."""
    import sys

    app_module = sys.modules.get("tui.app")
    if app_module is None or request.node.get_closest_marker("guarded_crash_expected"):
        yield
        return
    from sshcore.errors import DevtuiError

    app_class = app_module.DevTuiApp
    original = app_class.report_exception
    caught: list[str] = []

    def report(self: object, where: str, error: BaseException) -> None:
        if not isinstance(error, DevtuiError):
            caught.append(f"{where}: {type(error).__name__}: {error}")
        original(self, where, error)

    app_class.report_exception = report
    try:
        yield
    finally:
        app_class.report_exception = original
    assert not caught, f"the crash guard caught an unexpected error: {caught}"


def _require_sshd() -> None:
    if find_sshd() is None:
        pytest.skip(SSHD_MISSING)


@pytest.fixture
def sshd_factory() -> Iterator[Callable[..., Sshd]]:
    """`make(extra_config=(), start=True) -> Sshd`; every server made is closed afterwards."""
    _require_sshd()
    made: list[Sshd] = []

    def make(extra_config: Sequence[str] = (), start: bool = True) -> Sshd:
        server = Sshd(extra_config)
        made.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in made:
        server.close()


@pytest.fixture
def sshd(sshd_factory: Callable[..., Sshd]) -> Sshd:
    """A started OpenSSH sshd of its own (free to stop, restart or re-key); ~0.1 s."""
    return sshd_factory()


@pytest.fixture(scope="module")
def sshd_module() -> Iterator[Sshd]:
    """One started sshd shared by a module's tests; do not stop or re-key it."""
    _require_sshd()
    with Sshd() as server:
        yield server


@pytest.fixture
async def asyncssh_server() -> AsyncIterator[AsyncsshServer]:
    """Started in-process asyncssh server; user `DEFAULT_USER` / `DEFAULT_PASSWORD`, SFTP on."""
    async with AsyncsshServer({DEFAULT_USER: DEFAULT_PASSWORD}) as server:
        yield server


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[[str, int], TcpProxy]]:
    """`make(host, port) -> TcpProxy`, started; every proxy made is stopped afterwards."""
    made: list[TcpProxy] = []

    def make(host: str, port: int) -> TcpProxy:
        proxy = TcpProxy(host, port)
        made.append(proxy)
        proxy.start()
        return proxy

    yield make
    for proxy in made:
        proxy.stop()


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    """Started TCP echo server on 127.0.0.1 (`.port`)."""
    with EchoServer() as server:
        yield server


@pytest.fixture
def sha256_sink() -> Iterator[Sha256Sink]:
    """Started hashing sink on 127.0.0.1 (`.port`, `.wait_results(n)`)."""
    with Sha256Sink() as sink:
        yield sink


@pytest.fixture
def throwaway_user() -> Iterator[ThrowawayUser]:
    """A fresh local user with a password only: (name, password, home); `userdel -r` after."""
    reason = throwaway_user_unavailable()
    if reason:
        pytest.skip(reason)
    user = create_throwaway_user()
    try:
        yield user
    finally:
        remove_throwaway_user(user.name)


@pytest.fixture
def ssh_agent() -> Iterator[SshAgent]:
    """A started, empty OpenSSH ssh-agent (`.socket`); stopped by PID afterwards."""
    if shutil.which("ssh-agent") is None:
        pytest.skip(AGENT_MISSING)
    with SshAgent() as agent:
        yield agent
