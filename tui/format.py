"""Small pure formatting helpers for the dashboard (no Textual import: unit-tested alone)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

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


def no_browser_here(
    env: Mapping[str, str] | None = None, platform: str | None = None
) -> str | None:
    """Why `o` cannot open a graphical browser on this machine, or None when it can.

    Over SSH the browser would open on the wrong machine; on Linux without a display Python's
    webbrowser falls back to a text browser that takes over devtui's own terminal.
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if env.get("SSH_CONNECTION") or env.get("SSH_TTY"):
        return "devtui runs over SSH: no browser here"
    if platform.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return "no graphical display here"
    return None
