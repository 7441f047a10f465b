"""The garbage collector's policy in the dashboard's own process: short pauses at scale.

With 500 hosts and 200 busy tunnels, Python's defaults ran a full collection every ~3 s that
walked ~400,000 objects and held the screen 100-270 ms each time (bench/dashboard.py load
--trace-slow): a key pressed then waited for it. Two changes make those rare and short:

- What the dashboard builds at start (modules, widgets, the config, the connections) is frozen
  once it is up: full collections no longer walk it. It stays until exit, as it would anyway.
- Young collections every YOUNG allocations rather than 700: the cells, log lines and events
  of one repaint mostly die before a collection looks at them, so far fewer of them are
  promoted to the oldest generation, whose growth is what triggers a full collection.

Also here: `in_thread`, the GIL handed back sooner while a config save or reload parses.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

YOUNG = 10_000  # allocations between young collections (Python's default: 700)


def tune() -> None:
    """Collect the young generation every YOUNG allocations (the older ones as before)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG, middle, old)


def freeze() -> None:
    """Leave everything alive now out of every later collection."""
    gc.freeze()


SHORT_SWITCH = 0.0005  # seconds a thread keeps the GIL while the event loop waits for it
_switch = {"users": 0, "saved": 0.005}  # config threads running with the short interval


@contextlib.contextmanager
def short_switch() -> Iterator[None]:
    """While config work runs in a thread (a file of 500 hosts parsed and written: 30-90 ms
    of pure Python), the interpreter hands the GIL over every SHORT_SWITCH s rather than every
    5 ms. The event loop gives the GIL up at every select and socket call and each time
    waited up to 5 ms to get it back: a socket read took 10-30 ms and keys waited behind it
    (bench/dashboard.py load, the saves series). Nested uses share one setting."""
    if _switch["users"] == 0:
        _switch["saved"] = sys.getswitchinterval()
        sys.setswitchinterval(SHORT_SWITCH)
    _switch["users"] += 1
    try:
        yield
    finally:
        _switch["users"] -= 1
        if _switch["users"] == 0:
            sys.setswitchinterval(_switch["saved"])


async def in_thread(func: Callable[..., T], /, *args: Any) -> T:
    """`asyncio.to_thread(func, *args)` for config work, under `short_switch`."""
    with short_switch():
        return await asyncio.to_thread(func, *args)
