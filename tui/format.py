"""Small pure formatting helpers for the dashboard (no Textual import: unit-tested alone)."""

from __future__ import annotations

import os
from collections.abc import Sequence

_BLOCKS = " ▁▂▃▄▅▆▇█"


def human_bytes(count: float) -> str:
    """1536 -> '1.5K'; short enough for a table cell."""
    for unit in ("B", "K", "M", "G", "T"):
        if abs(count) < 1024 or unit == "T":
            if unit == "B":
                return f"{int(count)}B"
            return f"{count:.1f}{unit}" if count < 10 else f"{count:.0f}{unit}"
        count /= 1024
    return f"{count:.0f}T"  # pragma: no cover - the loop always returns


def human_rate(per_second: float) -> str:
    """Bytes per second as '12K/s'; '' when idle."""
    return f"{human_bytes(per_second)}/s" if per_second >= 1 else ""


def sparkline(values: Sequence[float], width: int) -> str:
    """The last `width` values as block characters, scaled to their own maximum."""
    tail = list(values)[-width:]
    top = max(tail, default=0)
    if top <= 0:
        return "".join(" " if v <= 0 else _BLOCKS[1] for v in tail).rjust(width)
    cells = []
    for value in tail:
        if value <= 0:
            cells.append(" ")
        else:  # anything that moved shows at least the lowest block
            cells.append(_BLOCKS[max(1, round(value / top * (len(_BLOCKS) - 1)))])
    return "".join(cells).rjust(width)


def clip(text: str, width: int) -> str:
    """Shorten `text` to `width` characters with an ellipsis."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def countdown(seconds: float) -> str:
    """Seconds left, for 'reconnecting in 3 s'."""
    return f"{max(0, round(seconds))} s"


def over_ssh() -> bool:
    """True when devtui itself runs in an SSH session (no local browser to open)."""
    return bool(os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"))
