"""The dashboard's four panes: Hosts, Tunnels, Keys, Logs. Thin: they show state and turn
keys into core calls through the app."""

from .hosts import HostsPane
from .keys import KeysPane
from .logs import LogsPane
from .tunnels import TunnelsPane

__all__ = ["HostsPane", "KeysPane", "LogsPane", "TunnelsPane"]
