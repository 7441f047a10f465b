"""The TOML config file: load, validate, edit and save, keeping the user's comments.

Reading parses with tomllib (the stdlib's fast parser) and validates the whole file; the lines
named in messages are looked up only when there is something to report. An edit changes only
the tables and keys it concerns: whole tables are added and removed as text, keys inside one
table are set by tomlkit on that table's own text, and tomlkit parses the whole file only when
it is written in a way these cannot handle. The result is parsed again and must mean exactly
the intended change, is validated, and is saved atomically with one `.bak`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import json
import os
import re
import stat
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, cast

import platformdirs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .atomic import atomic_write_text
from .errors import ConfigError
from .model import (
    AUTO_FORWARD,
    LOG_COMMAND_PREFIX,
    TUNNEL_KINDS,
    AutoForward,
    ConfigData,
    Endpoint,
    HostSpec,
    Settings,
    TunnelSpec,
    check_port,
    hostname_problem,
    identity_files_problem,
    listens_clash,
    log_source_problem,
    name_problem,
    permit_problem,
    proxy_command_problem,
    text_problem,
    user_problem,
)

if TYPE_CHECKING:
    # tomlkit (and filelock) are imported where a save needs them: reading never does.
    from tomlkit import TOMLDocument
    from tomlkit.items import Table

APP_NAME = "devtui"
ENV_CONFIG = "DEVTUI_CONFIG"


def default_config_path() -> Path:
    """`DEVTUI_CONFIG` if set, else the platform's config folder (%APPDATA%\\devtui on Windows)."""
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env).expanduser()
    folder = platformdirs.user_config_dir(APP_NAME, appauthor=False, roaming=True)
    return Path(folder) / "config.toml"


def default_log_dir() -> Path:
    """Where the rotated log file lives."""
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def log_file_path(settings: Settings) -> Path:
    """The log file: [settings] log_file (~ and $VAR / %VAR% expanded), else the default."""
    if settings.log_file:
        return Path(os.path.expandvars(os.path.expanduser(settings.log_file)))
    return default_log_dir() / "devtui.log"


# ---------------------------------------------------------------------------------------------
# Finding lines: tomllib keeps no positions, so map (table path, key) to a line by scanning the
# text, once, and only when a message needs a line.

_HEADER_RE = re.compile(r"^\s*\[\[?\s*(?P<name>[^\]]*?)\s*\]\]?\s*(#.*)?$")
_KEY_RE = re.compile(r"""^\s*(?P<key>"[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")


def _split_dotted(name: str) -> tuple[str, ...]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([^.\s]+)', name)
    return tuple(a or b or c for a, b, c in parts)


def _line_index(text: str) -> dict[tuple[str, ...], int]:
    """The first 1-based line of every `[path]` header and of every `key = ...` line."""
    index: dict[tuple[str, ...], int] = {}
    current: tuple[str, ...] = ()
    # Only "\n" ends a TOML line; str.splitlines() would also split at U+2028 and friends.
    for number, line in enumerate(text.split("\n"), start=1):
        header = _HEADER_RE.match(line)
        if header:
            current = _split_dotted(header.group("name"))
            index.setdefault(current, number)
            continue
        match = _KEY_RE.match(line)
        # A key may be written under its own table or dotted from a parent table.
        if match:
            index.setdefault(current + _split_dotted(match.group("key")), number)
    return index


# ---------------------------------------------------------------------------------------------
# Validation


@dataclass
class _Checker:
    path: str
    text: str
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _lines: dict[tuple[str, ...], int] | None = None

    def line(self, table: tuple[str, ...], key: str | None) -> int | None:
        """The line of `key` in `[table]` (or of the header), else of the nearest enclosing
        table or key that can be found (inline tables)."""
        if self._lines is None:
            self._lines = _line_index(self.text)
        path = (*table, key) if key is not None else table
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return None

    def error(self, table: tuple[str, ...], key: str | None, message: str) -> None:
        shown = _shown((*table, key) if key else table)
        line = self.line(table, key)
        self.errors.append(ConfigError(message, path=self.path, line=line, key=shown))

    def warn(self, table: tuple[str, ...], key: str | None, message: str) -> None:
        shown = _shown((*table, key) if key else table)
        line = self.line(table, key)
        where = f"{self.path}:{line}" if line else self.path
        self.warnings.append(f"{where}: {shown}: {message}")

    def unknown(self, table: tuple[str, ...], raw: dict[str, Any], known: Iterable[str]) -> None:
        for key in raw:
            if key not in known:
                self.warn(table, key, "unknown key (kept, ignored)")


def _shown(path: tuple[str, ...]) -> str:
    """A dotted key for messages, on one line even when a key holds line breaks or quotes."""
    return ".".join(
        part if part.isprintable() and part.strip() == part else repr(part) for part in path
    )


_SETTINGS_KEYS = {
    "keepalive_interval": (int, float),
    "keepalive_count_max": (int,),
    "reconnect_max_delay": (int, float),
    "connect_timeout": (int, float),
    "known_hosts": (str,),
    "log_file": (str,),
    "theme": (str,),  # the dashboard's theme
    "discover_interval": (int, float),  # seconds between looks at a host's ports; 0: off
}
# Keys Settings holds; a known key it does not model yet is kept in the file, not warned about.
_SETTINGS_FIELDS = {f.name for f in dataclasses.fields(Settings)}
_HOST_KEYS = {
    "hostname",
    "port",
    "user",
    "identity_file",
    "identity_files",
    "jump",
    "compression",
    "forward_agent",
    "auto_forward",
    "ignore_ports",
    "log_sources",
    "keepalive_interval",
    "keepalive_count_max",
    "connect_timeout",
    "certificate_file",
    "proxy_command",
}
_TUNNEL_KEYS = {"host", "kind", "listen", "target", "autostart", "permit_open", "probe"}


def _type_name(types: tuple[type, ...]) -> str:
    names = {
        int: "a number",
        float: "a number",
        str: "a string",
        bool: "true or false",
        list: "a list",
    }
    return " or ".join(dict.fromkeys(names[t] for t in types))


def _escape(c: str) -> str:
    return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"


def _toml_value(value: Any) -> str:
    """What the file holds, as TOML names and spells it: 'a boolean (true)', 'a table'."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a float ({value})"
    if isinstance(value, str):
        # JSON's escapes are TOML's; also escape what JSON leaves raw (DEL, U+2028) so the
        # message stays on one line.
        quoted = json.dumps(value, ensure_ascii=False)
        return f"a string ({''.join(c if c.isprintable() else _escape(c) for c in quoted)})"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, datetime.datetime):
        return "a date-time"
    if isinstance(value, datetime.date):
        return "a date"
    if isinstance(value, datetime.time):
        return "a time"
    return type(value).__name__  # pragma: no cover - TOML has no other types


def _get(
    check: _Checker,
    table: tuple[str, ...],
    raw: dict[str, Any],
    key: str,
    types: tuple[type, ...],
    default: Any = None,
) -> Any:
    if key not in raw:
        return default
    value = raw[key]
    # bool is an int in Python; never let `port = true` through as 1.
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        check.error(table, key, f"must be {_type_name(types)}, not {_toml_value(value)}")
        return default
    # Printable text has no control characters: the common case, checked in C.
    if isinstance(value, str) and not value.isprintable():
        problem = text_problem(value)
        if problem:
            check.error(table, key, problem)
            return default
    return value


def _check_settings(check: _Checker, raw: Any) -> Settings:
    settings = Settings()
    if raw is None:
        return settings
    table = ("settings",)
    if not isinstance(raw, dict):
        check.error((), "settings", "must be a table ([settings])")
        return settings
    check.unknown(table, raw, _SETTINGS_KEYS)
    for key, types in _SETTINGS_KEYS.items():
        value = _get(check, table, raw, key, types)
        if value is None:
            continue
        if problem := _timing_problem(key, value):
            check.error(table, key, problem)
        elif key in _SETTINGS_FIELDS:
            setattr(settings, key, float(value) if float in types else value)
    return settings


_TIMING_KEYS = ("keepalive_interval", "keepalive_count_max", "connect_timeout")


def _timing_problem(key: str, value: float) -> str | None:
    """Why a keepalive or connect timeout value is refused ([settings] and hosts alike)."""
    if key in ("keepalive_interval", "discover_interval") and value < 0:
        return "must be 0 (off) or more seconds"
    if key in ("reconnect_max_delay", "connect_timeout") and value <= 0:
        return "must be more than 0 seconds"
    if key == "keepalive_count_max" and value < 1:
        return "must be at least 1"
    return None


def _host_timing(check: _Checker, table: tuple[str, ...], raw: dict[str, Any]) -> dict[str, Any]:
    """A host's own keepalive and connect timeout: the names and ranges of [settings]."""
    found: dict[str, Any] = {}
    for key in _TIMING_KEYS:
        types = _SETTINGS_KEYS[key]
        value = _get(check, table, raw, key, types)
        if value is None:
            continue
        if problem := _timing_problem(key, value):
            check.error(table, key, problem)
        else:
            found[key] = float(value) if float in types else value
    return found


def _certificate_file(check: _Checker, table: tuple[str, ...], raw: dict[str, Any]) -> str | None:
    """An OpenSSH certificate file; missing is a warning (the key still logs in alone)."""
    value: str | None = _get(check, table, raw, "certificate_file", (str,))
    if value is None:
        return None
    if not value:
        check.error(table, "certificate_file", "must not be empty (leave the key out for none)")
        return None
    if not Path(os.path.expandvars(os.path.expanduser(value))).is_file():
        check.warn(table, "certificate_file", f"{value} does not exist: logging in without it")
    return value


def _proxy_command(check: _Checker, table: tuple[str, ...], raw: dict[str, Any]) -> str | None:
    value: str | None = _get(check, table, raw, "proxy_command", (str,))
    if value is None:
        return None
    if "jump" in raw:
        check.error(
            table, "proxy_command", "and jump both set: a host is reached one way (keep one)"
        )
        return None
    if problem := proxy_command_problem(value):
        check.error(table, "proxy_command", problem)
        return None
    return value


def _check_host(check: _Checker, name: str, raw: Any) -> HostSpec | None:
    table = ("hosts", name)
    problem = name_problem(name)
    if problem:
        check.error(table, None, f"host name {name!r} {problem}")
        return None
    if not isinstance(raw, dict):
        check.error(("hosts",), name, "must be a table ([hosts.NAME])")
        return None
    check.unknown(table, raw, _HOST_KEYS)
    # Check every key, so that one run of `devtui check` shows all that is wrong here.
    before = len(check.errors)
    hostname = _get(check, table, raw, "hostname", (str,))
    if "hostname" not in raw:
        check.error(table, None, "hostname is missing")
    elif hostname is not None and (problem := hostname_problem(hostname)):
        check.error(table, "hostname", f"{hostname!r} {problem}")
    port = _get(check, table, raw, "port", (int,), 22)
    try:
        check_port(port)
    except ValueError as e:
        check.error(table, "port", str(e))
    user = _get(check, table, raw, "user", (str,))
    if user is not None and (problem := user_problem(user)):
        check.error(table, "user", f"{user!r} {problem}")
    spec = HostSpec(
        name=name,
        hostname=hostname,
        port=port,
        user=user,
        identity_files=_identity_files(check, table, raw),
        jump=_get(check, table, raw, "jump", (str,)),
        compression=_get(check, table, raw, "compression", (bool,), False),
        forward_agent=_get(check, table, raw, "forward_agent", (bool,), False),
        auto_forward=_auto_forward(check, table, raw),
        ignore_ports=_ignore_ports(check, table, raw),
        log_sources=_log_sources(check, table, raw),
        **_host_timing(check, table, raw),
        certificate_file=_certificate_file(check, table, raw),
        proxy_command=_proxy_command(check, table, raw),
    )
    return spec if len(check.errors) == before else None


def _identity_files(
    check: _Checker, table: tuple[str, ...], raw: dict[str, Any]
) -> tuple[str, ...]:
    """identity_file = "one" or identity_files = ["first", "second"]: tried in that order."""
    one = _get(check, table, raw, "identity_file", (str,))
    several = _get(check, table, raw, "identity_files", (list,))
    if "identity_file" in raw and "identity_files" in raw:
        check.error(
            table,
            "identity_files",
            "and identity_file both set: keep one (identity_files = [...] holds every key file)",
        )
        return ()
    if several is None:
        return (one,) if one else ()
    if not all(isinstance(item, str) for item in several):
        bad = next(item for item in several if not isinstance(item, str))
        check.error(table, "identity_files", f"{_toml_value(bad)} must be a string (a key file)")
        return ()
    if problem := identity_files_problem(several):
        check.error(table, "identity_files", problem)
        return ()
    return tuple(several)


def _auto_forward(check: _Checker, table: tuple[str, ...], raw: dict[str, Any]) -> AutoForward:
    value = _get(check, table, raw, "auto_forward", (str,), "ask")
    if value not in AUTO_FORWARD:
        check.error(table, "auto_forward", f'{value!r} is not "ask", "always" or "never"')
        return "ask"
    return cast(AutoForward, value)


def _ignore_ports(
    check: _Checker, table: tuple[str, ...], raw: dict[str, Any]
) -> tuple[int, ...] | None:
    value = _get(check, table, raw, "ignore_ports", (list,))
    if value is None:
        return None
    ports = []
    for item in value:
        if not isinstance(item, int) or isinstance(item, bool) or not 1 <= item <= 65535:
            check.error(table, "ignore_ports", f"{_toml_value(item)} is not a port (1-65535)")
            return None
        ports.append(item)
    return tuple(ports)


def _log_sources(check: _Checker, table: tuple[str, ...], raw: dict[str, Any]) -> tuple[str, ...]:
    return _strings(check, table, raw, "log_sources", log_source_problem) or ()


def _strings(
    check: _Checker,
    table: tuple[str, ...],
    raw: dict[str, Any],
    key: str,
    problem_of: Callable[[str], str | None],
) -> tuple[str, ...] | None:
    """A list of strings, each checked by `problem_of`; None when absent or wrong (said)."""
    value = _get(check, table, raw, key, (list,))
    if value is None:
        return None
    items = []
    for item in value:
        problem = problem_of(item) if isinstance(item, str) else "must be a string"
        if problem:
            check.error(table, key, f"{_toml_value(item)} {problem}")
            return None
        items.append(item)
    return tuple(items)


def _check_tunnel(
    check: _Checker, name: str, raw: Any, hosts: dict[str, HostSpec], host_names: set[str]
) -> TunnelSpec | None:
    table = ("tunnels", name)
    problem = name_problem(name)
    if problem:
        check.error(table, None, f"tunnel name {name!r} {problem}")
        return None
    if not isinstance(raw, dict):
        check.error(("tunnels",), name, "must be a table ([tunnels.NAME])")
        return None
    check.unknown(table, raw, _TUNNEL_KEYS)
    # Check every key, so that one run of `devtui check` shows all that is wrong here.
    before = len(check.errors)
    host = _get(check, table, raw, "host", (str,))
    if "host" not in raw:
        check.error(table, None, "host is missing (which host does this tunnel use?)")
    elif host is not None and host not in host_names:
        check.error(table, "host", f"no host named {host!r} in [hosts]")
    kind = _get(check, table, raw, "kind", (str,), "local")
    if kind not in TUNNEL_KINDS:
        check.error(table, "kind", f"unknown tunnel kind {kind!r} (use local, remote or dynamic)")
    listen = _endpoint(check, table, raw, "listen")
    # target = "socks" on a remote tunnel: a reverse SOCKS proxy (ssh -R [bind:]port). Said
    # in so many words, never implied by a missing target: a forgotten target must not
    # open a proxy from the remote into this machine's network.
    socks = isinstance(raw.get("target"), str) and _is_socks(raw["target"])
    target = None if socks else _endpoint(check, table, raw, "target")
    if "listen" not in raw:
        check.error(table, None, 'listen is missing (e.g. listen = "127.0.0.1:7860")')
    if kind == "dynamic" and "target" in raw:
        check.error(table, "target", "a dynamic (SOCKS) tunnel has no target")
    elif kind == "local" and "target" not in raw:
        check.error(table, None, 'a local tunnel needs a target (e.g. target = "127.0.0.1:80")')
    elif kind == "remote" and "target" not in raw:
        check.error(
            table,
            None,
            'a remote tunnel needs a target (e.g. target = "127.0.0.1:80"), or target = '
            '"socks" for a reverse SOCKS proxy (ssh -R PORT: connections to the remote port '
            "are opened from this machine)",
        )
    elif kind == "local" and socks:
        check.error(
            table,
            "target",
            'target = "socks" is for a remote tunnel (reverse SOCKS); a SOCKS proxy here is '
            'kind = "dynamic" with no target',
        )
    autostart = _get(check, table, raw, "autostart", (bool,), False)
    probe = _get(check, table, raw, "probe", (bool,), True)
    permit_open = _permit_open(check, table, raw)
    if permit_open is not None and not (kind == "remote" and socks):
        check.error(table, "permit_open", 'is for a reverse SOCKS tunnel (target = "socks")')
    if len(check.errors) > before or listen is None:
        return None
    if host not in hosts:  # the host exists but is itself invalid: already reported
        return None
    return TunnelSpec(name, host, kind, listen, target, autostart, permit_open, probe)


def _permit_open(
    check: _Checker, table: tuple[str, ...], raw: dict[str, Any]
) -> tuple[str, ...] | None:
    return _strings(check, table, raw, "permit_open", permit_problem)


SOCKS_TARGET = "socks"  # a remote tunnel's target for a reverse SOCKS proxy


def _is_socks(value: str) -> bool:
    return value.strip().lower() == SOCKS_TARGET


def _endpoint(
    check: _Checker, table: tuple[str, ...], raw: dict[str, Any], key: str
) -> Endpoint | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        check.error(table, key, f'must be "ADDR:PORT" or a port number, not {_toml_value(value)}')
        return None
    try:
        return Endpoint.parse(value)
    except ValueError as e:
        check.error(table, key, str(e))
        return None


def validate_text(text: str, path: str = "config") -> tuple[ConfigData, list[str]]:
    """Parse and validate config text; returns (data, warnings) or raises ConfigError.

    The raised error is the first problem; `.others` holds the rest and `.warnings` the
    warnings (unknown keys), which are found even when there are errors.
    """
    return _validate(_loads(text, path), text, path)


def _loads(text: str, path: str) -> dict[str, Any]:
    """tomllib.loads, with every TOML error turned into a ConfigError naming line and column."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _syntax_error(text, path, e) from None


def _syntax_error(text: str, path: str, error: tomllib.TOMLDecodeError) -> ConfigError:
    """The message for a file that is not TOML: tomlkit's words where it says more (it names
    the key given twice), else tomllib's."""
    import tomlkit
    import tomlkit.exceptions

    found = re.search(r"line (\d+), column (\d+)", str(error))
    line = int(found.group(1)) if found else None
    where = f" (line {line}, column {found.group(2)})" if found else ""
    try:
        tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as e:
        message = str(e).split(" at line ")[0]
        return ConfigError(
            f"not valid TOML: {message} (line {e.line}, column {e.col})", path=path, line=e.line
        )
    except tomlkit.exceptions.TOMLKitError as e:  # no position of its own (a key given twice)
        return ConfigError(f"not valid TOML: {e}{where}", path=path, line=line)
    message = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)$", "", str(error))
    return ConfigError(f"not valid TOML: {message}{where}", path=path, line=line)


def _validate(raw: dict[str, Any], text: str, path: str) -> tuple[ConfigData, list[str]]:
    check = _Checker(path, text)
    check.unknown((), raw, ("settings", "hosts", "tunnels"))
    data = ConfigData(settings=_check_settings(check, raw.get("settings")))
    raw_hosts = raw.get("hosts", {})
    raw_tunnels = raw.get("tunnels", {})
    for section, value in (("hosts", raw_hosts), ("tunnels", raw_tunnels)):
        if not isinstance(value, dict):
            check.error((), section, f"must be tables ([{section}.NAME])")
    if isinstance(raw_hosts, dict):
        for name, host_raw in raw_hosts.items():
            host = _check_host(check, name, host_raw)
            if host:
                data.hosts[name] = host
        for host in data.hosts.values():
            if host.jump is None:
                continue
            if host.jump not in raw_hosts:
                check.error(("hosts", host.name), "jump", f"no host named {host.jump!r} in [hosts]")
            elif _jump_loops(host.name, data.hosts):
                check.error(("hosts", host.name), "jump", "jump hosts go round in a loop")
    if isinstance(raw_tunnels, dict) and isinstance(raw_hosts, dict):
        host_names = set(raw_hosts)
        # Only listeners on one port can clash: compare within a port, not every pair.
        by_port: dict[int, list[TunnelSpec]] = {}
        for name, tunnel_raw in raw_tunnels.items():
            tunnel = _check_tunnel(check, name, tunnel_raw, data.hosts, host_names)
            if not tunnel:
                continue
            same_port = by_port.setdefault(tunnel.listen.port, [])
            for other in same_port:
                if listens_clash(tunnel, other):
                    check.error(
                        ("tunnels", name),
                        "listen",
                        f"{tunnel.listen} is already used by tunnel {other.name!r}",
                    )
                    break
            else:
                data.tunnels[name] = tunnel
                same_port.append(tunnel)
    if check.errors:
        first = check.errors[0]
        first.others = check.errors[1:]  # type: ignore[attr-defined]
        # Unknown keys are often the cause (a typo'd key name): show them with the errors.
        first.warnings = check.warnings  # type: ignore[attr-defined]
        raise first
    _check_trusted(path, data)
    return data, check.warnings


def _jump_loops(name: str, hosts: dict[str, HostSpec]) -> bool:
    seen = {name}
    current = hosts.get(name)
    while current is not None and current.jump is not None:
        if current.jump in seen:
            return True
        seen.add(current.jump)
        current = hosts.get(current.jump)
    return False


# ---------------------------------------------------------------------------------------------
# Writing specs: the values of a table, and the tables tomlkit edits when text will not do


def _host_values(spec: HostSpec) -> dict[str, Any]:
    return {
        "hostname": spec.hostname,
        "port": spec.port,
        "user": spec.user,
        # One key file keeps the old spelling, so files written before stay byte-identical.
        "identity_file": spec.identity_file if len(spec.identity_files) <= 1 else None,
        "identity_files": list(spec.identity_files) if len(spec.identity_files) > 1 else None,
        "jump": spec.jump,
        "compression": spec.compression or None,
        "forward_agent": spec.forward_agent or None,
        "auto_forward": None if spec.auto_forward == "ask" else spec.auto_forward,
        "ignore_ports": None if spec.ignore_ports is None else list(spec.ignore_ports),
        "log_sources": list(spec.log_sources) or None,
        "keepalive_interval": _number(spec.keepalive_interval),
        "keepalive_count_max": spec.keepalive_count_max,
        "connect_timeout": _number(spec.connect_timeout),
        "certificate_file": spec.certificate_file,
        "proxy_command": spec.proxy_command,
    }


def _number(value: float | None) -> float | int | None:
    """15.0 is written 15, as people write seconds."""
    return int(value) if value is not None and float(value).is_integer() else value


def _tunnel_values(spec: TunnelSpec) -> dict[str, Any]:
    return {
        "host": spec.host,
        "kind": spec.kind,
        "listen": str(spec.listen),
        "target": str(spec.target) if spec.target else SOCKS_TARGET if spec.reverse_socks else None,
        "autostart": spec.autostart or None,
        "permit_open": None if spec.permit_open is None else list(spec.permit_open),
        "probe": None if spec.probe else False,  # written only when turned off
    }


def _new_table(values: dict[str, Any]) -> Table:
    import tomlkit

    table = tomlkit.table()
    _apply(table, values)
    table.add(tomlkit.nl())
    return table


def _apply(table: Table | dict[str, Any], values: dict[str, Any], eol: str = "\n") -> None:
    """Set keys whose value changed, drop keys set to None; leave the rest (and comments) alone.

    A new key goes at the end of `table` (tomlkit's public `table[key] = value`), ending its
    line with `eol`; callers that edit a table's own lines cut its trailing comments off first
    (see _set_keys_text), so the key lands after the last key and not after the comment that
    leads the next table."""
    from tomlkit.items import Item, Table

    for key, value in values.items():
        if value is None:
            if key in table:
                del table[key]
        elif key in table:
            if _plain(table[key]) != value:
                table[key] = value
        else:
            table[key] = value
            added = table.value.item(key) if isinstance(table, Table) else None
            if isinstance(added, Item) and eol != "\n":
                added.trivia.trail = added.trivia.trail.replace("\n", eol)


def _eol(text: str) -> str:
    """The file's line ending: CRLF stays CRLF."""
    return "\r\n" if "\r\n" in text else "\n"


def _plain(item: Any) -> Any:
    return item.unwrap() if hasattr(item, "unwrap") else item


def _programs(data: ConfigData) -> list[str]:
    """The keys of `data` that run programs on this machine (proxy_command, cmd: sources)."""
    found = []
    for host in data.hosts.values():
        if host.proxy_command:
            found.append(f"hosts.{host.name}.proxy_command")
        if any(s.startswith(LOG_COMMAND_PREFIX) for s in host.log_sources):
            found.append(f"hosts.{host.name}.log_sources")
    return found


def others_can_write(path: Path) -> str | None:
    """Why someone other than the user (or root / the administrators) could change the file
    at `path`, or None. POSIX: another owner, a group- or world-writable file (a group of
    the user's own name is the user's), a world-writable folder without the sticky bit.
    Windows: the file's ACL (winacl.file_writers)."""
    if os.name == "nt":
        from . import winacl

        try:
            return winacl.file_writers(path)
        except OSError:
            return None  # no ACL to read (FAT): nothing to judge
    try:
        info = path.stat()
        folder = path.parent.stat()
    except OSError:
        return None
    getuid = getattr(os, "getuid", None)
    me = getuid() if getuid is not None else info.st_uid
    if info.st_uid not in (me, 0):
        return f"it is owned by another user (uid {info.st_uid})"
    mode = info.st_mode
    if mode & stat.S_IWOTH:
        return f"every user can write it (mode {stat.S_IMODE(mode):04o})"
    if mode & stat.S_IWGRP and not _own_group(info.st_gid):
        return f"its group can write it (mode {stat.S_IMODE(mode):04o})"
    if folder.st_mode & stat.S_IWOTH and not folder.st_mode & stat.S_ISVTX:
        return f"every user can replace it: its folder {path.parent} is world-writable"
    return None


def _own_group(gid: int) -> bool:
    """A group named like the user (Debian's user private groups) is the user's alone."""
    try:
        import grp
        import pwd

        return grp.getgrgid(gid).gr_name == pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):
        return False


def _check_trusted(path: str, data: ConfigData) -> None:
    """A config that runs programs must be the user's alone: refused otherwise, as OpenSSH
    refuses a ~/.ssh/config others can write."""
    programs = _programs(data)
    if not programs:
        return
    why = others_can_write(Path(path))
    if why:
        fix = "chmod go-w" if os.name != "nt" else "icacls ... /inheritance:r /grant:r %USERNAME%:F"
        raise ConfigError(
            f"not used: {why}, and it names programs to run ({', '.join(programs[:3])}); "
            f"make it yours alone ({fix} {path})",
            path=path,
        )


def _read(path: Path) -> str:
    """The file's text ("" when there is no file), line endings as they are."""
    try:
        # newline="": keep the file's own line endings (CRLF stays CRLF on save).
        with path.open(encoding="utf-8-sig", newline="") as f:
            return f.read()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read: {e}", path=str(path)) from None


@dataclass
class _Change:
    """One edit, three ways: what it does to the data, to the text, to a tomlkit document."""

    data: Callable[[dict[str, Any]], dict[str, Any]]  # the meaning the result must have
    text: Callable[[str], str | None]  # fast, keeps comments with their tables; None: cannot
    doc: Callable[[TOMLDocument], None]  # the whole file through tomlkit: any layout


def _with(raw: dict[str, Any], section: str, name: str, value: Any) -> dict[str, Any]:
    """`raw` with raw[section][name] set to `value` (or removed for None); copies, no edits."""
    inner = dict(raw.get(section, {}))
    if value is None:
        inner.pop(name, None)
    else:
        inner[name] = value
    result = dict(raw)
    result[section] = inner
    return result


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal data, an empty [hosts] or [tunnels] being the same as none."""

    def strip(raw: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in raw.items() if v != {} or k not in ("hosts", "tunnels")}

    return strip(a) == strip(b)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _locked(edit: Callable[Concatenate[Config, _P], _R]) -> Callable[Concatenate[Config, _P], _R]:
    """Run a Config edit under the file's lock, on the file as it is now (see _saving)."""

    def locked(self: Config, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._saving():
            return edit(self, *args, **kwargs)

    functools.update_wrapper(locked, edit)  # its name and docstring
    return locked


class Config:
    """A config file held in memory as its text plus its validated specs."""

    # How long an edit waits for another devtui that is saving the same file.
    lock_timeout: float = 10.0

    def __init__(self, path: Path, text: str = "") -> None:
        self.path = Path(path)
        raw = _loads(text, str(self.path))
        data, warnings = _validate(raw, text, str(self.path))
        # A save (in a thread) and a reload may adopt a new state at the same time.
        self._state = threading.Lock()
        self._generation = 0
        self._text, self._raw, self.data, self.warnings = text, raw, data, warnings

    @classmethod
    def load(cls, path: Path | str | None = None) -> Config:
        """Read and validate `path` (default: `default_config_path()`). Missing file = empty."""
        path = Path(path).expanduser() if path else default_config_path()
        return cls(path, _read(path))

    def reload(self) -> bool:
        """Re-read the file if it changed since it was loaded or saved; returns whether it did.

        A bad file raises ConfigError (file:line) and the last good state stays.
        """
        for _ in range(3):  # a save that lands meanwhile makes what was read stale: read again
            with self._state:
                generation, known = self._generation, self._text
            text = _read(self.path)
            if text == known:
                return False
            raw = _loads(text, str(self.path))
            data, warnings = _validate(raw, text, str(self.path))
            with self._state:
                if self._generation == generation:
                    self._adopt(text, raw, data, warnings)
                    return True
        return True  # saves kept landing: changed, and what is held is theirs

    def _adopt(self, text: str, raw: dict[str, Any], data: ConfigData, warnings: list[str]) -> None:
        self._text, self._raw, self.data, self.warnings = text, raw, data, warnings
        self._generation += 1

    # -- views ------------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self.data.settings

    @property
    def hosts(self) -> dict[str, HostSpec]:
        return self.data.hosts

    @property
    def tunnels(self) -> dict[str, TunnelSpec]:
        return self.data.tunnels

    def text(self) -> str:
        """The file's text as it is (or would be) on disk."""
        return self._text

    # -- edits (each validated, then saved) -------------------------------------------------
    def add_host(self, spec: HostSpec, tunnels: Iterable[TunnelSpec] = ()) -> None:
        """Add a host (and optionally its tunnels); refuses a name that is taken."""
        self.add([spec], tunnels)

    @_locked
    def add(self, hosts: Iterable[HostSpec], tunnels: Iterable[TunnelSpec] = ()) -> None:
        """Add hosts and tunnels in one save; refuses names that are taken."""
        hosts, tunnels = list(hosts), list(tunnels)
        for spec in hosts:
            if spec.name in self.hosts:
                raise ConfigError(f"a host named {spec.name!r} already exists", path=str(self.path))
        for tunnel in tunnels:
            self._refuse_taken_tunnel(tunnel.name)
        tables = [("hosts", h.name, _host_values(h)) for h in hosts]
        tables += [("tunnels", t.name, _tunnel_values(t)) for t in tunnels]

        def data(raw: dict[str, Any]) -> dict[str, Any]:
            for section, name, values in tables:
                raw = _with(raw, section, name, {k: v for k, v in values.items() if v is not None})
            return raw

        def text(text: str) -> str | None:
            for section, name, values in tables:
                text = _add_table_text(text, (section, name), values)
            return text

        def doc(doc: TOMLDocument) -> None:
            for section, name, values in tables:
                _section(doc, section)[name] = _new_table(values)

        self._edit(_Change(data, text, doc))

    @_locked
    def update_host(self, name: str, spec: HostSpec) -> None:
        """Replace host `name` by `spec` (same name), touching only keys that changed."""
        self._require_host(name)
        if spec.name != name:
            raise ConfigError("renaming a host is not supported; add a new one", key=name)
        self._edit(_set_keys(("hosts", name), _host_values(spec)))

    @_locked
    def remove_host(self, name: str) -> list[str]:
        """Remove a host and its tunnels; returns the names of the tunnels removed with it."""
        self._require_host(name)
        gone = [t.name for t in self.data.tunnels_of(name)]
        users = [h.name for h in self.hosts.values() if h.jump == name]
        if users:
            raise ConfigError(
                f"host {name!r} is the jump host of {', '.join(users)}; change those first",
                path=str(self.path),
            )
        self._edit(_removal([("tunnels", t) for t in gone] + [("hosts", name)]))
        return gone

    def add_tunnel(self, spec: TunnelSpec) -> None:
        """Add a tunnel; refuses a taken name."""
        self.add([], [spec])

    @_locked
    def update_tunnel(self, name: str, spec: TunnelSpec) -> None:
        """Replace tunnel `name` by `spec`, touching only keys that changed."""
        if name not in self.tunnels:
            raise ConfigError(f"no tunnel named {name!r}", path=str(self.path))
        self._edit(_set_keys(("tunnels", name), _tunnel_values(spec)))

    @_locked
    def remove_tunnel(self, name: str) -> None:
        """Remove one tunnel."""
        if name not in self.tunnels:
            raise ConfigError(f"no tunnel named {name!r}", path=str(self.path))
        self._edit(_removal([("tunnels", name)]))

    @_locked
    def set_setting(self, key: str, value: str | int | float | bool) -> None:
        """Save one key of [settings] (the table is made if missing), validated like the rest."""
        if key not in _SETTINGS_KEYS:
            known = ", ".join(sorted(_SETTINGS_KEYS))
            raise ConfigError(
                f"unknown setting (known: {known})",
                path=str(self.path),
                key=_shown(("settings", key)),
            )
        self._edit(_set_keys(("settings",), {key: value}))

    @contextlib.contextmanager
    def _saving(self) -> Iterator[None]:
        """Hold the file's lock and adopt the file as it is now, for one edit.

        Every devtui saving this file takes the same lock around read, change and save, so
        two saves at once both land instead of the later one writing over the earlier.
        """
        import filelock

        # The real file's lock: two links to one file must not make two locks. An OS lock
        # (filelock: flock / LockFileEx) dies with its process, so a crash never leaves the
        # file locked; on POSIX the empty .lock file itself stays, which is harmless.
        real = Path(os.path.realpath(self.path))
        lock = filelock.FileLock(real.with_name(real.name + ".lock"), timeout=self.lock_timeout)
        try:
            real.parent.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except filelock.Timeout:
            raise ConfigError(
                "another devtui is saving this file right now; try again", path=str(self.path)
            ) from None
        except OSError as e:  # no lock file can be made: the folder is read-only
            raise ConfigError(f"cannot save: {e.strerror or e}", path=str(self.path)) from None
        try:
            self._refresh()
            yield
        finally:
            lock.release()

    def _require_host(self, name: str) -> None:
        if name not in self.hosts:
            raise ConfigError(f"no host named {name!r}", path=str(self.path))

    def _refuse_taken_tunnel(self, name: str) -> None:
        if name in self.tunnels:
            raise ConfigError(f"a tunnel named {name!r} already exists", path=str(self.path))

    def _edit(self, change: _Change) -> None:
        """Make `change` to the text, validate what would land on disk, save it, adopt it."""
        path = str(self.path)
        made = _text_edit(self._text, self._raw, change)
        if made is None:
            text = _edit_document(self._text, change.doc, path)
            made = text, _loads(text, path)
        text, raw = made
        data, warnings = _validate(raw, text, path)
        try:
            atomic_write_text(self.path, text)
        except OSError as e:  # read-only, or (Windows) held open by another program
            raise ConfigError(f"cannot save: {e.strerror or e}", path=path) from None
        with self._state:
            self._adopt(text, raw, data, warnings)

    def _refresh(self) -> None:
        """Adopt the file as it is on disk now, if someone (another devtui, an editor)
        changed it since we read it: an edit must never silently undo theirs."""
        on_disk = _read(self.path)
        if on_disk != self._text:
            raw = _loads(on_disk, str(self.path))
            data, warnings = _validate(raw, on_disk, str(self.path))
            with self._state:
                self._adopt(on_disk, raw, data, warnings)


def _text_edit(
    text: str, raw: dict[str, Any], change: _Change
) -> tuple[str, dict[str, Any]] | None:
    """`change` made as text, with what it parses to; None unless it means exactly the change
    (a header-like line inside a multi-line string can mislead a text edit)."""
    candidate = change.text(text)
    if candidate is None:
        return None
    try:
        parsed = tomllib.loads(candidate)
    except tomllib.TOMLDecodeError:
        return None
    return (candidate, parsed) if _same(parsed, change.data(raw)) else None


def _edit_document(text: str, change: Callable[[TOMLDocument], None], path: str) -> str:
    """`change` made by tomlkit on the whole file: slow, but takes any layout TOML allows."""
    import tomlkit
    import tomlkit.exceptions

    try:
        doc = tomlkit.parse(text)
        change(doc)
        result = doc.as_string()
        # Some tomlkit versions (0.13) write what they cannot represent as broken TOML
        # rather than raising: the result must read back.
        tomllib.loads(result)
    except (ValueError, KeyError, tomlkit.exceptions.TOMLKitError) as e:
        # e.g. hosts written as one inline table cannot take a [hosts.NAME] table
        raise ConfigError(
            f"cannot make this change to the file as written: {e}", path=path
        ) from None
    return result


def _section(doc: TOMLDocument, name: str) -> Any:
    import tomlkit

    if name not in doc:
        doc[name] = tomlkit.table(is_super_table=True)
    return doc[name]


def _set_keys(path: tuple[str, ...], values: dict[str, Any]) -> _Change:
    """Set (or, for None, drop) keys of the [path] table; the table is made if missing."""

    def data(raw: dict[str, Any]) -> dict[str, Any]:
        table = dict(raw)
        at = table
        for part in path:
            at[part] = dict(at.get(part, {}))
            at = at[part]
        for key, value in values.items():
            if value is None:
                at.pop(key, None)
            else:
                at[key] = value
        return table

    def text(text: str) -> str | None:
        found = _set_keys_text(text, path, values)
        if found is None and len(path) == 1 and not _has_header(text, path):
            return _add_table_text(text, path, values)
        return found

    def doc(doc: TOMLDocument) -> None:
        import tomlkit

        table: Any = doc
        for part in path:
            if part not in table:
                table[part] = tomlkit.table()
            table = table[part]
        _apply(table, values, _eol(doc.as_string()))

    return _Change(data, text, doc)


def _removal(tables: list[tuple[str, str]]) -> _Change:
    """Remove [section.name] tables."""

    def data(raw: dict[str, Any]) -> dict[str, Any]:
        for section, name in tables:
            raw = _with(raw, section, name, None)
        return raw

    def text(text: str) -> str | None:
        result: str | None = text
        for section, name in tables:
            if result is not None:
                result = _remove_table_text(result, (section, name))
        return result

    def doc(doc: TOMLDocument) -> None:
        from tomlkit.items import Table

        for section, name in tables:
            del doc[section][name]  # type: ignore[union-attr]
            outer = doc[section]
            if isinstance(outer, Table) and outer.is_super_table() and not outer:
                del doc[section]  # [hosts.x] headers only: nothing left to show

    return _Change(data, text, doc)


# ---------------------------------------------------------------------------------------------
# Whole tables as text. tomlkit files the comment above a [header] under the previous table, so
# adding after that table or removing it would move or drop the comment. Here the comment
# lines right above a header belong to that header's table.

_COMMENT_LINE_RE = re.compile(r"^\s*#")


def _lines(text: str) -> list[str]:
    if not text:
        return []
    if not text.endswith("\n"):
        text += "\n"
    return text[:-1].split("\n")


def _join(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""


def _is_comment(line: str) -> bool:
    return bool(_COMMENT_LINE_RE.match(line))


def _is_blank(line: str) -> bool:
    return not line.strip()


def _headers(lines: list[str]) -> list[tuple[int, tuple[str, ...]]]:
    found = []
    for number, line in enumerate(lines):
        match = _HEADER_RE.match(line)
        if match:
            found.append((number, _split_dotted(match.group("name"))))
    return found


def _table_extent(lines: list[str], headers: list[tuple[int, tuple[str, ...]]], k: int) -> range:
    """The lines of the table under headers[k] (with its sub-tables): the comment lines right
    above its header through its last line of content; not the comments that lead the next
    table, nor a comment block that ends the file after a blank line."""
    start, path = headers[k]
    n = k + 1
    while n < len(headers) and headers[n][1][: len(path)] == path:
        n += 1
    last = n == len(headers)
    end = len(lines) if last else headers[n][0]
    if not last:
        while end > start + 1 and _is_comment(lines[end - 1]):
            end -= 1
    while True:
        while end > start + 1 and _is_blank(lines[end - 1]):
            end -= 1
        j = end
        while last and j > start + 1 and _is_comment(lines[j - 1]):
            j -= 1
        if j == end or not _is_blank(lines[j - 1]):
            break
        end = j
    first = start
    while first > 0 and _is_comment(lines[first - 1]):
        first -= 1
    return range(first, end)


def _remove_table_text(text: str, path: tuple[str, ...]) -> str | None:
    lines = _lines(text)
    headers = _headers(lines)
    k = next((i for i, (_, p) in enumerate(headers) if p == path), None)
    if k is None:
        return None
    extent = _table_extent(lines, headers, k)
    first, end = extent.start, extent.stop
    # One blank line goes with it, so that add-then-remove gives back the same text.
    if first > 0 and _is_blank(lines[first - 1]):
        first -= 1
    elif end < len(lines) and _is_blank(lines[end]):
        end += 1
    del lines[first:end]
    return _join(lines)


def _has_header(text: str, path: tuple[str, ...]) -> bool:
    return any(p == path for _, p in _headers(_lines(text)))


def _set_keys_text(text: str, path: tuple[str, ...], values: dict[str, Any]) -> str | None:
    """Set keys of the [path] table by parsing and editing only that table's own lines with
    tomlkit (its header up to the next header); None when the file has no such header."""
    import tomlkit
    import tomlkit.exceptions
    from tomlkit.items import Table

    begin = end = None
    offset = 0
    for line in text.split("\n"):
        header = _HEADER_RE.match(line)
        if header:
            if begin is not None and end is None:
                end = offset
            if _split_dotted(header.group("name")) == path:
                if begin is not None or line.lstrip().startswith("[["):
                    return None  # an array of tables: not ours to edit as one table
                begin = offset
        offset += len(line) + 1
    if begin is None:
        return None
    end = len(text) if end is None else end
    # The comments and blank lines that end the table lead the next one: they stay out of
    # tomlkit's hands, so a new key goes after the last key and above them.
    lines = text[begin:end].splitlines(keepends=True)
    keep = len(lines)
    while keep > 1 and (_is_blank(lines[keep - 1]) or _is_comment(lines[keep - 1])):
        keep -= 1
    body, tail = "".join(lines[:keep]), "".join(lines[keep:])
    try:
        doc = tomlkit.parse(body)
        table: Any = doc
        for part in path:
            table = table[part]
    except (ValueError, KeyError, tomlkit.exceptions.TOMLKitError):
        return None
    if not isinstance(table, Table):
        return None
    _apply(table, values, _eol(text))
    return text[:begin] + doc.as_string() + tail + text[end:]


def _table_block(path: tuple[str, ...], values: dict[str, Any]) -> list[str]:
    """The lines of a new [path] table holding `values`, as tomlkit writes them."""
    import tomlkit

    doc = tomlkit.document()
    table = _new_table(values)
    if len(path) == 2:
        outer = tomlkit.table(is_super_table=True)
        outer.append(path[1], table)
        doc.append(path[0], outer)
    else:
        doc.append(path[0], table)
    return _lines(doc.as_string().rstrip("\n"))


def _add_table_text(text: str, path: tuple[str, ...], values: dict[str, Any]) -> str:
    """Add a [path] table: a [section.name] after the last table of its section (before the
    comments that lead the next table), [settings] before the first table."""
    lines = _lines(text)
    eol = "\r" if lines and lines[0].endswith("\r") else ""
    block = [line + eol for line in _table_block(path, values)]
    headers = _headers(lines)
    ours = [k for k, (_, p) in enumerate(headers) if p[:1] == path[:1]]
    if ours:
        end = _table_extent(lines, headers, ours[-1]).stop
        new = [eol, *block]
        if end < len(lines) and not _is_blank(lines[end]):
            new.append(eol)
        lines[end:end] = new
    elif len(path) == 1 and headers:
        # Settings first, as people write them; top-level keys (before any header) stay above.
        start = _table_extent(lines, headers, 0).start
        new = [*block, eol]
        if start > 0 and not _is_blank(lines[start - 1]):
            new.insert(0, eol)
        lines[start:start] = new
    else:
        if lines and not _is_blank(lines[-1]):
            lines.append(eol)
        lines += block
    return _join(lines)
