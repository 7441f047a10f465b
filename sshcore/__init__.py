"""devtui's async SSH core: config, sessions, tunnels, keys. Never imports Textual."""

from __future__ import annotations

import warnings

# asyncssh still names cryptography's DSA classes (for keys devtui never makes or offers);
# cryptography 46+ warns about that on import, and every network command printed the
# warning's five lines on stderr before its own one line. Only that warning is hidden.
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"asyncssh(\.|$)")

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # Looked up on first use: importlib.metadata costs ~20 ms, and most commands never ask.
    if name != "__version__":
        raise AttributeError(f"module 'sshcore' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("devtui")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0.0.0+source"
    globals()["__version__"] = found
    return found
