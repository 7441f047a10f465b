"""devtui's async SSH core: config, sessions, tunnels, keys. Never imports Textual."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("devtui")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
