"""sshcore's public face: everything a front end (the dashboard, the command line) may use.

The rest of the package is private to it; `lint-imports` (pyproject.toml) keeps `tui` to this
module. Names are loaded on first use, so a front end that imports its names up front pays
only for those it touches (the dashboard's first paint does not wait for asyncssh).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the module of sshcore that defines it
_WHERE: dict[str, str] = {
    "Config": "config",
    "default_config_path": "config",
    "log_file_path": "config",
    "Core": "core",
    "DemoSite": "demo",
    "ListeningPort": "discovery",
    "ConfigError": "errors",
    "DevtuiError": "errors",
    "SshCommandError": "errors",
    "UsageError": "errors",
    "AuthFailed": "events",
    "DiscoveryUnsupported": "events",
    "Event": "events",
    "HostConnected": "events",
    "HostConnecting": "events",
    "HostDisconnected": "events",
    "HostFailed": "events",
    "HostKeyLearned": "events",
    "HostKeyRejected": "events",
    "HostReconnectScheduled": "events",
    "PortForwarded": "events",
    "PortsNotOffered": "events",
    "RemotePortClosed": "events",
    "RemotePortOpened": "events",
    "TargetAnswered": "events",
    "TargetRefused": "events",
    "TunnelFailed": "events",
    "TunnelStarted": "events",
    "TunnelStopped": "events",
    "TunnelTargetMoved": "events",
    "TunnelTraffic": "events",
    "UnexpectedError": "events",
    "Woke": "events",
    "SyncChange": "file_sync",
    "SyncResult": "file_sync",
    "sync_dirs": "file_sync",
    "CopyProgress": "files",
    "CopyResult": "files",
    "Location": "files",
    "copy_files": "files",
    "parse_location": "files",
    "check_hosts": "host_checks",
    "JobInfo": "jobs",
    "JobStopped": "jobs",
    "attach_command": "jobs",
    "follow_job": "jobs",
    "job_info": "jobs",
    "job_name_problem": "jobs",
    "job_output": "jobs",
    "list_jobs": "jobs",
    "start_job": "jobs",
    "stop_job": "jobs",
    "KeyInfo": "keys",
    "default_key_path": "keys",
    "ConfigData": "model",
    "Endpoint": "model",
    "HostSpec": "model",
    "TunnelKind": "model",
    "TunnelSpec": "model",
    "check_port": "model",
    "display_path": "model",
    "hostname_problem": "model",
    "listens_clash": "model",
    "name_problem": "model",
    "text_problem": "model",
    "tunnel_name": "model",
    "user_problem": "model",
    "PortCheck": "ports",
    "check_local_port": "ports",
    "HostKeyMismatch": "prompts",
    "HostKeyQuestion": "prompts",
    "Prompts": "prompts",
    "ConnectError": "session",
    "HostState": "session",
    "HostStatus": "session",
    "default_terminal": "shell",
    "parse_forward": "sshcmd",
    "TunnelStatus": "tunnels",
    "visible": "visible_text",
}
# whole modules: the key operations and the operations both front ends share
_MODULES = ("keys", "ops")

__all__ = sorted([*_WHERE, *_MODULES])

if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ loads on first use
    from . import keys as keys
    from . import ops as ops
    from .config import Config as Config
    from .config import default_config_path as default_config_path
    from .config import log_file_path as log_file_path
    from .core import Core as Core
    from .demo import DemoSite as DemoSite
    from .discovery import ListeningPort as ListeningPort
    from .errors import ConfigError as ConfigError
    from .errors import DevtuiError as DevtuiError
    from .errors import SshCommandError as SshCommandError
    from .errors import UsageError as UsageError
    from .events import AuthFailed as AuthFailed
    from .events import DiscoveryUnsupported as DiscoveryUnsupported
    from .events import Event as Event
    from .events import HostConnected as HostConnected
    from .events import HostConnecting as HostConnecting
    from .events import HostDisconnected as HostDisconnected
    from .events import HostFailed as HostFailed
    from .events import HostKeyLearned as HostKeyLearned
    from .events import HostKeyRejected as HostKeyRejected
    from .events import HostReconnectScheduled as HostReconnectScheduled
    from .events import PortForwarded as PortForwarded
    from .events import PortsNotOffered as PortsNotOffered
    from .events import RemotePortClosed as RemotePortClosed
    from .events import RemotePortOpened as RemotePortOpened
    from .events import TargetAnswered as TargetAnswered
    from .events import TargetRefused as TargetRefused
    from .events import TunnelFailed as TunnelFailed
    from .events import TunnelStarted as TunnelStarted
    from .events import TunnelStopped as TunnelStopped
    from .events import TunnelTargetMoved as TunnelTargetMoved
    from .events import TunnelTraffic as TunnelTraffic
    from .events import UnexpectedError as UnexpectedError
    from .events import Woke as Woke
    from .file_sync import SyncChange as SyncChange
    from .file_sync import SyncResult as SyncResult
    from .file_sync import sync_dirs as sync_dirs
    from .files import CopyProgress as CopyProgress
    from .files import CopyResult as CopyResult
    from .files import Location as Location
    from .files import copy_files as copy_files
    from .files import parse_location as parse_location
    from .host_checks import check_hosts as check_hosts
    from .jobs import JobInfo as JobInfo
    from .jobs import JobStopped as JobStopped
    from .jobs import attach_command as attach_command
    from .jobs import follow_job as follow_job
    from .jobs import job_info as job_info
    from .jobs import job_name_problem as job_name_problem
    from .jobs import job_output as job_output
    from .jobs import list_jobs as list_jobs
    from .jobs import start_job as start_job
    from .jobs import stop_job as stop_job
    from .keys import KeyInfo as KeyInfo
    from .keys import default_key_path as default_key_path
    from .model import ConfigData as ConfigData
    from .model import Endpoint as Endpoint
    from .model import HostSpec as HostSpec
    from .model import TunnelKind as TunnelKind
    from .model import TunnelSpec as TunnelSpec
    from .model import check_port as check_port
    from .model import display_path as display_path
    from .model import hostname_problem as hostname_problem
    from .model import listens_clash as listens_clash
    from .model import name_problem as name_problem
    from .model import text_problem as text_problem
    from .model import tunnel_name as tunnel_name
    from .model import user_problem as user_problem
    from .ports import PortCheck as PortCheck
    from .ports import check_local_port as check_local_port
    from .prompts import HostKeyMismatch as HostKeyMismatch
    from .prompts import HostKeyQuestion as HostKeyQuestion
    from .prompts import Prompts as Prompts
    from .session import ConnectError as ConnectError
    from .session import HostState as HostState
    from .session import HostStatus as HostStatus
    from .shell import default_terminal as default_terminal
    from .sshcmd import parse_forward as parse_forward
    from .tunnels import TunnelStatus as TunnelStatus
    from .visible_text import visible as visible


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
    elif name in _WHERE:
        module = getattr(importlib.import_module(f"{__package__}.{_WHERE[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = module
    return module
