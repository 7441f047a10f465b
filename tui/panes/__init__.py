"""The dashboard's four panes: Hosts, Tunnels, Keys, Logs. Thin: they show state and turn
keys into core calls through the app."""

from .hosts_pane import HostsPane
from .keys_pane import KeysPane
from .logs_pane import LogsPane
from .tunnels_pane import TunnelsPane

__all__ = ["HostsPane", "KeysPane", "LogsPane", "TunnelsPane"]
