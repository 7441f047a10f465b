"""Test many hosts at once: connect, round trip, auth method; a bounded number in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .errors import DevtuiError

if TYPE_CHECKING:
    from .config import Config
    from .session import HostStatus


class _Tunnel(Protocol):
    @property
    def running(self) -> bool: ...

    @property
    def spec(self) -> Any: ...  # its TunnelSpec: the host it runs on


class Fleet(Protocol):
    """What testing hosts needs of the core: the config, connect / ping / disconnect, each
    host's state, and the tunnels (a host one of them uses stays connected)."""

    @property
    def config(self) -> Config: ...

    @property
    def tunnels(self) -> Mapping[str, _Tunnel]: ...

    def host_state(self, name: str) -> HostStatus: ...

    async def connect(self, name: str) -> HostStatus: ...

    async def ping(self, name: str) -> float: ...

    async def disconnect(self, name: str) -> None: ...


DEFAULT_CONCURRENCY = 16  # as many as people fan out `ssh HOST true` by hand (xargs -P16)


@dataclass(frozen=True)
class HostCheck:
    """What testing one host found."""

    name: str
    ok: bool
    state: str
    connect_ms: float | None = None
    round_trip_ms: float | None = None
    auth_method: str | None = None
    server_version: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data for `devtui hosts test --all --json`."""
        return {
            "name": self.name,
            "ok": self.ok,
            "state": self.state,
            "connect_ms": None if self.connect_ms is None else round(self.connect_ms, 1),
            "round_trip_ms": None if self.round_trip_ms is None else round(self.round_trip_ms, 1),
            "auth_method": self.auth_method,
            "server_version": self.server_version,
            "error": self.error,
        }


def failures_first(checks: Sequence[HostCheck]) -> list[HostCheck]:
    """Failed hosts first (what needs a look), then the rest; by name within each."""
    return sorted(checks, key=lambda c: (c.ok, c.name))


async def check_hosts(
    core: Fleet,
    names: Sequence[str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_result: Callable[[HostCheck], None] | None = None,
) -> list[HostCheck]:
    """Connect to every host in `names` (at most `concurrency` at a time), ping, report.

    Hosts that were not connected before are disconnected again at the end (not one by
    one: another host in the run may be jumping through them). Results are failures first.
    """
    if concurrency < 1:
        raise DevtuiError("concurrency must be at least 1")
    idle_before = {n for n in names if core.host_state(n).state.value in ("idle", "failed")}
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str) -> HostCheck:
        async with gate:
            try:
                status = await core.connect(name)
                rtt = await core.ping(name)
            except DevtuiError as e:
                check = HostCheck(name, False, core.host_state(name).state.value, error=str(e))
            else:
                check = HostCheck(
                    name,
                    True,
                    status.state.value,
                    status.connect_ms,
                    rtt,
                    status.auth_method,
                    status.server_version,
                )
        if on_result is not None:
            on_result(check)
        return check

    try:
        checks = await asyncio.gather(*(one(n) for n in names))
    finally:
        # Hosts reached through a jump host go first, so no jump is cut under another.
        for name in sorted(idle_before, key=lambda n: core.config.hosts[n].jump is None):
            busy = any(t.spec.host == name and t.running for t in core.tunnels.values())
            if not busy:
                await core.disconnect(name)
    return failures_first(checks)
