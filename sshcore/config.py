"""The TOML config file: load, validate, edit and save, keeping the user's comments.

Reading validates the whole file and reports file, line and key for every problem.
Edits change only the tables and keys they concern (tomlkit keeps everything else
byte for byte), are validated as the text that would be written, and are saved
atomically with one `.bak`.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
import tomlkit
import tomlkit.exceptions
from tomlkit.items import Table

from .atomic import atomic_write_text
from .errors import ConfigError
from .model import (
    TUNNEL_KINDS,
    ConfigData,
    Endpoint,
    HostSpec,
    Settings,
    TunnelSpec,
    check_port,
    hostname_problem,
    listens_clash,
    name_problem,
    text_problem,
    user_problem,
)

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


# ---------------------------------------------------------------------------------------------
# Finding lines: tomlkit keeps no positions, so map (table path, key) to a line by scanning.

_HEADER_RE = re.compile(r"^\s*\[\[?\s*(?P<name>[^\]]*?)\s*\]\]?\s*(#.*)?$")
_KEY_RE = re.compile(r"""^\s*(?P<key>"[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")


def _split_dotted(name: str) -> tuple[str, ...]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([^.\s]+)', name)
    return tuple(a or b or c for a, b, c in parts)


def _locate(text: str, table: tuple[str, ...], key: str | None = None) -> int | None:
    """1-based line of `key` in `[table]` (or of the header itself when key is None)."""
    current: tuple[str, ...] = ()
    header_line: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER_RE.match(line)
        if header:
            current = _split_dotted(header.group("name"))
            if current == table and header_line is None:
                header_line = number
                if key is None:
                    return number
            continue
        if key is None:
            continue
        match = _KEY_RE.match(line)
        if match:
            k = _split_dotted(match.group("key"))
            # A key may be written under its own table or dotted from a parent table.
            if current + k == (*table, key):
                return number
    return header_line


# ---------------------------------------------------------------------------------------------
# Validation


@dataclass
class _Checker:
    path: str
    text: str
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, table: tuple[str, ...], key: str | None, message: str) -> None:
        shown = ".".join((*table, key) if key else table)
        line = _locate(self.text, table, key)
        self.errors.append(ConfigError(message, path=self.path, line=line, key=shown))

    def warn(self, table: tuple[str, ...], key: str | None, message: str) -> None:
        shown = ".".join((*table, key) if key else table)
        line = _locate(self.text, table, key)
        where = f"{self.path}:{line}" if line else self.path
        self.warnings.append(f"{where}: {shown}: {message}")

    def unknown(self, table: tuple[str, ...], raw: dict[str, Any], known: Iterable[str]) -> None:
        for key in raw:
            if key not in known:
                self.warn(table, key, "unknown key (kept, ignored)")


_SETTINGS_KEYS = {
    "keepalive_interval": (int, float),
    "keepalive_count_max": (int,),
    "reconnect_max_delay": (int, float),
    "connect_timeout": (int, float),
    "known_hosts": (str,),
    "log_file": (str,),
}
_HOST_KEYS = {
    "hostname",
    "port",
    "user",
    "identity_file",
    "jump",
    "compression",
    "forward_agent",
}
_TUNNEL_KEYS = {"host", "kind", "listen", "target", "autostart"}


def _type_name(types: tuple[type, ...]) -> str:
    names = {int: "a number", float: "a number", str: "a string", bool: "true or false"}
    return " or ".join(dict.fromkeys(names[t] for t in types))


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
    if isinstance(value, bool) and bool not in types:
        check.error(table, key, f"must be {_type_name(types)}, not {value!r}")
        return default
    if not isinstance(value, types):
        check.error(table, key, f"must be {_type_name(types)}, not {value!r}")
        return default
    if isinstance(value, str):
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
        if key == "keepalive_interval" and value < 0:
            check.error(table, key, "must be 0 (off) or more seconds")
        elif key in ("reconnect_max_delay", "connect_timeout") and value <= 0:
            check.error(table, key, "must be more than 0 seconds")
        elif key == "keepalive_count_max" and value < 1:
            check.error(table, key, "must be at least 1")
        else:
            setattr(settings, key, float(value) if float in types else value)
    return settings


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
    ok = True
    hostname = _get(check, table, raw, "hostname", (str,))
    if hostname is None:
        if "hostname" not in raw:
            check.error(table, None, "hostname is missing")
        ok = False
    elif problem := hostname_problem(hostname):
        check.error(table, "hostname", f"{hostname!r} {problem}")
        ok = False
    port = _get(check, table, raw, "port", (int,), 22)
    try:
        check_port(port)
    except ValueError as e:
        check.error(table, "port", str(e))
        ok = False
    user = _get(check, table, raw, "user", (str,))
    if user is not None and (problem := user_problem(user)):
        check.error(table, "user", f"{user!r} {problem}")
        ok = False
    jump = _get(check, table, raw, "jump", (str,))
    if not ok:
        return None
    return HostSpec(
        name=name,
        hostname=hostname,
        port=port,
        user=user,
        identity_file=_get(check, table, raw, "identity_file", (str,)),
        jump=jump,
        compression=_get(check, table, raw, "compression", (bool,), False),
        forward_agent=_get(check, table, raw, "forward_agent", (bool,), False),
    )


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
    host = _get(check, table, raw, "host", (str,))
    if host is None:
        if "host" not in raw:
            check.error(table, None, "host is missing (which host does this tunnel use?)")
        return None
    if host not in host_names:
        check.error(table, "host", f"no host named {host!r} in [hosts]")
        return None
    kind = _get(check, table, raw, "kind", (str,), "local")
    if kind not in TUNNEL_KINDS:
        check.error(table, "kind", f"unknown tunnel kind {kind!r} (use local, remote or dynamic)")
        return None
    endpoints: dict[str, Endpoint | None] = {}
    for key in ("listen", "target"):
        value = raw.get(key)
        if value is None:
            endpoints[key] = None
            continue
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            check.error(table, key, f'must be "ADDR:PORT" or a port number, not {value!r}')
            return None
        try:
            endpoints[key] = Endpoint.parse(value)
        except ValueError as e:
            check.error(table, key, str(e))
            return None
    if endpoints["listen"] is None:
        check.error(table, None, 'listen is missing (e.g. listen = "127.0.0.1:7860")')
        return None
    if kind == "dynamic" and endpoints["target"] is not None:
        check.error(table, "target", "a dynamic (SOCKS) tunnel has no target")
        return None
    if kind != "dynamic" and endpoints["target"] is None:
        check.error(table, None, f'a {kind} tunnel needs a target (e.g. target = "127.0.0.1:80")')
        return None
    if host not in hosts:  # the host exists but is itself invalid: already reported
        return None
    return TunnelSpec(
        name=name,
        host=host,
        kind=kind,
        listen=endpoints["listen"],
        target=endpoints["target"],
        autostart=_get(check, table, raw, "autostart", (bool,), False),
    )


def validate_text(text: str, path: str = "config") -> tuple[ConfigData, list[str]]:
    """Parse and validate config text; returns (data, warnings) or raises ConfigError.

    The raised error is the first problem; `.others` holds the rest.
    """
    try:
        doc = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as e:
        message = str(e).split(" at line ")[0]
        raise ConfigError(
            f"not valid TOML: {message} (line {e.line}, column {e.col})", path=path, line=e.line
        ) from None
    return _validate_doc(doc.unwrap(), text, path)


def _validate_doc(raw: dict[str, Any], text: str, path: str) -> tuple[ConfigData, list[str]]:
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
        for name, tunnel_raw in raw_tunnels.items():
            tunnel = _check_tunnel(check, name, tunnel_raw, data.hosts, set(raw_hosts))
            if not tunnel:
                continue
            for other in data.tunnels.values():
                if listens_clash(tunnel, other):
                    check.error(
                        ("tunnels", name),
                        "listen",
                        f"{tunnel.listen} is already used by tunnel {other.name!r}",
                    )
                    break
            else:
                data.tunnels[name] = tunnel
    if check.errors:
        first = check.errors[0]
        first.others = check.errors[1:]  # type: ignore[attr-defined]
        raise first
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
# Writing specs into the document


def _host_table(spec: HostSpec) -> Table:
    table = tomlkit.table()
    _fill_host(table, spec)
    table.add(tomlkit.nl())
    return table


def _fill_host(table: Table | dict[str, Any], spec: HostSpec) -> None:
    values: dict[str, Any] = {
        "hostname": spec.hostname,
        "port": spec.port,
        "user": spec.user,
        "identity_file": spec.identity_file,
        "jump": spec.jump,
        "compression": spec.compression or None,
        "forward_agent": spec.forward_agent or None,
    }
    _apply(table, values)


def _tunnel_values(spec: TunnelSpec) -> dict[str, Any]:
    return {
        "host": spec.host,
        "kind": spec.kind,
        "listen": str(spec.listen),
        "target": str(spec.target) if spec.target else None,
        "autostart": spec.autostart or None,
    }


def _apply(table: Table | dict[str, Any], values: dict[str, Any]) -> None:
    """Set keys whose value changed, drop keys set to None; leave the rest (and comments) alone."""
    for key, value in values.items():
        if value is None:
            if key in table:
                del table[key]
        elif key not in table or _plain(table[key]) != value:
            table[key] = value


def _plain(item: Any) -> Any:
    return item.unwrap() if hasattr(item, "unwrap") else item


class Config:
    """A config file held in memory as a tomlkit document plus its validated specs."""

    def __init__(self, path: Path, text: str = "") -> None:
        self.path = Path(path)
        self._text = text
        self._doc = tomlkit.parse(text) if text else tomlkit.document()
        self.data, self.warnings = (
            validate_text(text, str(self.path)) if text else (ConfigData(), [])
        )

    @classmethod
    def load(cls, path: Path | str | None = None) -> Config:
        """Read and validate `path` (default: `default_config_path()`). Missing file = empty."""
        path = Path(path).expanduser() if path else default_config_path()
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            text = ""
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read: {e}", path=str(path)) from None
        return cls(path, text)

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
        return self._doc.as_string()

    # -- edits (each validated, then saved) -------------------------------------------------
    def add_host(self, spec: HostSpec, tunnels: Iterable[TunnelSpec] = ()) -> None:
        """Add a host (and optionally its tunnels); refuses a name that is taken."""
        self.add([spec], tunnels)

    def add(self, hosts: Iterable[HostSpec], tunnels: Iterable[TunnelSpec] = ()) -> None:
        """Add hosts and tunnels in one save; refuses names that are taken."""
        hosts, tunnels = list(hosts), list(tunnels)
        for spec in hosts:
            if spec.name in self.hosts:
                raise ConfigError(f"a host named {spec.name!r} already exists", path=str(self.path))
        for tunnel in tunnels:
            self._refuse_taken_tunnel(tunnel.name)

        def edit(doc: tomlkit.TOMLDocument) -> None:
            for spec in hosts:
                _section(doc, "hosts")[spec.name] = _host_table(spec)
            for tunnel in tunnels:
                _section(doc, "tunnels")[tunnel.name] = _tunnel_table(tunnel)

        self._edit(edit)

    def update_host(self, name: str, spec: HostSpec) -> None:
        """Replace host `name` by `spec` (same name), touching only keys that changed."""
        self._require_host(name)
        if spec.name != name:
            raise ConfigError("renaming a host is not supported; add a new one", key=name)

        def edit(doc: tomlkit.TOMLDocument) -> None:
            _fill_host(doc["hosts"][name], spec)  # type: ignore[index,arg-type]

        self._edit(edit)

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

        def edit(doc: tomlkit.TOMLDocument) -> None:
            del doc["hosts"][name]  # type: ignore[union-attr]
            for tunnel in gone:
                del doc["tunnels"][tunnel]  # type: ignore[union-attr]

        self._edit(edit)
        return gone

    def add_tunnel(self, spec: TunnelSpec) -> None:
        """Add a tunnel; refuses a taken name."""
        self._refuse_taken_tunnel(spec.name)

        def edit(doc: tomlkit.TOMLDocument) -> None:
            _section(doc, "tunnels")[spec.name] = _tunnel_table(spec)

        self._edit(edit)

    def update_tunnel(self, name: str, spec: TunnelSpec) -> None:
        """Replace tunnel `name` by `spec`, touching only keys that changed."""
        if name not in self.tunnels:
            raise ConfigError(f"no tunnel named {name!r}", path=str(self.path))

        def edit(doc: tomlkit.TOMLDocument) -> None:
            _apply(doc["tunnels"][name], _tunnel_values(spec))  # type: ignore[index,arg-type]

        self._edit(edit)

    def remove_tunnel(self, name: str) -> None:
        """Remove one tunnel."""
        if name not in self.tunnels:
            raise ConfigError(f"no tunnel named {name!r}", path=str(self.path))

        def edit(doc: tomlkit.TOMLDocument) -> None:
            del doc["tunnels"][name]  # type: ignore[union-attr]

        self._edit(edit)

    def _require_host(self, name: str) -> None:
        if name not in self.hosts:
            raise ConfigError(f"no host named {name!r}", path=str(self.path))

    def _refuse_taken_tunnel(self, name: str) -> None:
        if name in self.tunnels:
            raise ConfigError(f"a tunnel named {name!r} already exists", path=str(self.path))

    def _edit(self, change: Callable[[tomlkit.TOMLDocument], None]) -> None:
        # Edit a copy, validate the exact text that would land on disk, then save and adopt it.
        doc = copy.deepcopy(self._doc)
        change(doc)
        text = doc.as_string()
        data, warnings = validate_text(text, str(self.path))
        atomic_write_text(self.path, text)
        self._doc, self._text, self.data, self.warnings = doc, text, data, warnings


def _section(doc: tomlkit.TOMLDocument, name: str) -> Any:
    if name not in doc:
        doc[name] = tomlkit.table(is_super_table=True)
    return doc[name]


def _tunnel_table(spec: TunnelSpec) -> Table:
    table = tomlkit.table()
    _apply(table, _tunnel_values(spec))
    table.add(tomlkit.nl())
    return table
