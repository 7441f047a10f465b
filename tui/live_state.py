"""What the dashboard remembers between snapshots: reconnect countdowns, refused targets,
traffic history. Fed by the core's events; no Textual here, so it is tested alone."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sshcore.api import Event


HISTORY_SECONDS = 60  # the sparkline's window: one sample a second


@dataclass
class Traffic:
    """A tunnel's counters and the last minute of its rate, one sample a second."""

    bytes_up: int = 0
    bytes_down: int = 0
    connections: int = 0
    up_rate: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_SECONDS))
    down_rate: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_SECONDS))
    _last: tuple[float, int, int] | None = None

    def sample(self, now: float, bytes_up: int, bytes_down: int) -> None:
        """Record the counters at `now`; rates are the change since the previous sample."""
        if self._last is not None:
            then, up, down = self._last
            span = max(now - then, 1e-3)
            # A restarted tunnel starts its counters again: no negative rates.
            self.up_rate.append(max(0, bytes_up - up) / span)
            self.down_rate.append(max(0, bytes_down - down) / span)
        self._last = (now, bytes_up, bytes_down)
        self.bytes_up, self.bytes_down = bytes_up, bytes_down

    @property
    def rates(self) -> list[float]:
        """Both directions added, for the sparkline."""
        return [u + d for u, d in zip(self.up_rate, self.down_rate, strict=True)]


class LiveState:
    """Per host and tunnel facts the core's snapshots do not carry."""

    def __init__(self) -> None:
        self.retry_at: dict[str, tuple[float, int]] = {}  # host -> (monotonic deadline, attempt)
        self.refused: dict[str, str] = {}  # tunnel -> target that refused
        self.traffic: dict[str, Traffic] = {}
        self.round_trip: dict[str, float] = {}  # host -> ms, from the last test
        # Ports that started listening while we watched: offers. Those already there when the
        # host connected are services, not the app the user just started (`devtui ports`).
        self.new_ports: set[tuple[str, int]] = set()

    def feed(self, event: Event) -> None:
        """Update from one core event."""
        # Here, not at the top: the events module is not needed before the first paint.
        from sshcore.api import (
            HostConnected,
            HostConnecting,
            HostDisconnected,
            HostFailed,
            HostReconnectScheduled,
            RemotePortClosed,
            RemotePortOpened,
            TargetAnswered,
            TargetRefused,
            TunnelStarted,
            TunnelStopped,
            TunnelTraffic,
        )

        if isinstance(event, HostReconnectScheduled):
            self.retry_at[event.host] = (time.monotonic() + event.delay, event.attempt)
        elif isinstance(event, HostConnecting | HostConnected | HostDisconnected | HostFailed):
            self.retry_at.pop(event.host, None)
        elif isinstance(event, RemotePortOpened):
            self.new_ports.add((event.host, event.port))
        elif isinstance(event, RemotePortClosed):
            self.new_ports.discard((event.host, event.port))
        elif isinstance(event, TargetRefused):
            self.refused[event.tunnel] = event.target
        elif isinstance(event, TunnelStarted | TunnelStopped | TargetAnswered):
            self.refused.pop(event.tunnel, None)
        elif isinstance(event, TunnelTraffic):
            traffic = self.traffic.setdefault(event.tunnel, Traffic())
            if event.bytes_down > traffic.bytes_down:
                self.refused.pop(event.tunnel, None)  # the target answered again
            traffic.connections = event.connections

    def sample(self, tunnel: str, bytes_up: int, bytes_down: int, now: float) -> Traffic:
        """One second's sample of a running tunnel's counters."""
        traffic = self.traffic.setdefault(tunnel, Traffic())
        if bytes_down > traffic.bytes_down:
            self.refused.pop(tunnel, None)
        traffic.sample(now, bytes_up, bytes_down)
        return traffic

    def retry_in(self, host: str) -> tuple[float, int] | None:
        """Seconds until the next reconnect attempt and its number, if one is scheduled."""
        scheduled = self.retry_at.get(host)
        if scheduled is None:
            return None
        deadline, attempt = scheduled
        return max(0.0, deadline - time.monotonic()), attempt

    def forget(self, name: str) -> None:
        """Drop what is known about a removed host or tunnel."""
        for table in (self.retry_at, self.refused, self.traffic, self.round_trip):
            table.pop(name, None)
