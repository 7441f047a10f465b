"""The garbage collector's policy in the dashboard's own process: short pauses at scale.

With 500 hosts and 200 busy tunnels, Python's defaults ran a full collection every ~3 s that
walked ~400,000 objects and held the screen 100-270 ms each time (bench/dashboard.py load
--trace-slow): a key pressed then waited for it. Two changes make those rare and short:

- What the dashboard builds at start (modules, widgets, the config, the connections) is frozen
  once it is up: full collections no longer walk it. It stays until exit, as it would anyway.
- Young collections every YOUNG allocations rather than 700: the cells, log lines and events
  of one repaint mostly die before a collection looks at them, so far fewer of them are
  promoted to the oldest generation, whose growth is what triggers a full collection.
"""

from __future__ import annotations

import gc

YOUNG = 10_000  # allocations between young collections (Python's default: 700)


def tune() -> None:
    """Collect the young generation every YOUNG allocations (the older ones as before)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG, middle, old)


def freeze() -> None:
    """Leave everything alive now out of every later collection."""
    gc.freeze()
