"""Noticing that this machine slept (or devtui was paused), so that connections are checked
at once instead of after several keepalive intervals.

A tick every second compares how long it really waited with how long it asked to. Both
clocks are read: on Linux the monotonic clock stops while the machine is suspended (the
wall clock does not), and a stopped process (SIGSTOP, a debugger) sees both jump. A wall
clock set by NTP can jump too: that costs one cheap check of each connection, nothing more.
Windows' resume notification would need a window and a message loop of our own; its wall
clock jumps across a sleep just the same, so the tick serves there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

TICK = 1.0  # seconds between looks: one timer a second costs nothing measurable
GAP = 4.0  # a tick this much later than asked means the machine (or devtui) was not running
CHECK_TIMEOUT = 2.0  # after waking, a connection that does not answer within this is dead

Clock = Callable[[], float]


def slept_for(asked: float, monotonic: float, wall: float, gap: float = GAP) -> float | None:
    """Seconds the machine was away, from one tick that asked to wait `asked` seconds and
    saw `monotonic` and `wall` seconds pass; None when it was not (a busy event loop is
    late by a fraction of a second, not by `gap`; a wall clock set back is no sleep)."""
    away = max(monotonic, wall) - asked
    return away if away >= gap else None


class WakeWatch:
    """Calls `on_wake(seconds_away)` when a tick comes late by more than `gap`."""

    def __init__(
        self,
        on_wake: Callable[[float], None],
        *,
        tick: float = TICK,
        gap: float = GAP,
        monotonic: Clock = time.monotonic,
        wall: Clock = time.time,
    ) -> None:
        self.on_wake = on_wake
        self.tick = tick
        self.gap = gap
        self._monotonic = monotonic
        self._wall = wall
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the tick runs."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start ticking (on the running loop); a second start does nothing."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="wake-watch")

    async def stop(self) -> None:
        """Stop ticking."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        mono, wall = self._monotonic(), self._wall()
        while True:
            await asyncio.sleep(self.tick)
            now_mono, now_wall = self._monotonic(), self._wall()
            away = slept_for(self.tick, now_mono - mono, now_wall - wall, self.gap)
            mono, wall = now_mono, now_wall
            if away is not None:
                self.on_wake(away)
