"""The TOML config file: load, validate, edit and save, keeping the user's comments.

Reading validates the whole file and reports file, line and key for every problem.
Edits change only the tables and keys they concern (tomlkit keeps everything else
byte for byte), are validated as the text that would be written, and are saved
atomically with one `.bak`.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import filelock
import platformdirs
import tomlkit
import tomlkit.exceptions
from tomlkit.items import AoT, Item, Null, Table

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

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
    """1-based line of `key` in `[table]` (or of the header itself when key is None).

    Falls back to the nearest enclosing table or key that can be found (inline tables).
    """
    path = (*table, key) if key is not None else table
    while path:
        line = _find_line(text, path)
        if line is not None:
            return line
        path = path[:-1]
    return None


def _find_line(text: str, path: tuple[str, ...]) -> int | None:
    """1-based line of the `[path]` header or of the `key = ...` line that defines `path`."""
    current: tuple[str, ...] = ()
    # Only "\n" ends a TOML line; str.splitlines() would also split at U+2028 and friends.
    for number, line in enumerate(text.split("\n"), start=1):
        header = _HEADER_RE.match(line)
        if header:
            current = _split_dotted(header.group("name"))
            if current == path:
                return number
            continue
        match = _KEY_RE.match(line)
        # A key may be written under its own table or dotted from a parent table.
        if match and current + _split_dotted(match.group("key")) == path:
            return number
    return None


# ---------------------------------------------------------------------------------------------
# Validation


@dataclass
class _Checker:
    path: str
    text: str
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, table: tuple[str, ...], key: str | None, message: str) -> None:
        shown = _shown((*table, key) if key else table)
        line = _locate(self.text, table, key)
        self.errors.append(ConfigError(message, path=self.path, line=line, key=shown))

    def warn(self, table: tuple[str, ...], key: str | None, message: str) -> None:
        shown = _shown((*table, key) if key else table)
        line = _locate(self.text, table, key)
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
        identity_file=_get(check, table, raw, "identity_file", (str,)),
        jump=_get(check, table, raw, "jump", (str,)),
        compression=_get(check, table, raw, "compression", (bool,), False),
        forward_agent=_get(check, table, raw, "forward_agent", (bool,), False),
    )
    return spec if len(check.errors) == before else None


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
    target = _endpoint(check, table, raw, "target")
    if "listen" not in raw:
        check.error(table, None, 'listen is missing (e.g. listen = "127.0.0.1:7860")')
    if kind == "dynamic" and "target" in raw:
        check.error(table, "target", "a dynamic (SOCKS) tunnel has no target")
    elif kind in ("local", "remote") and "target" not in raw:
        check.error(table, None, f'a {kind} tunnel needs a target (e.g. target = "127.0.0.1:80")')
    autostart = _get(check, table, raw, "autostart", (bool,), False)
    if len(check.errors) > before or listen is None:
        return None
    if host not in hosts:  # the host exists but is itself invalid: already reported
        return None
    return TunnelSpec(name, host, kind, listen, target, autostart)


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
    doc = _parse(text, path)
    return _validate_doc(doc.unwrap(), text, path)


def _parse(text: str, path: str) -> tomlkit.TOMLDocument:
    """tomlkit.parse, with every TOML error turned into a ConfigError naming line and column."""
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as e:
        message = str(e).split(" at line ")[0]
        raise ConfigError(
            f"not valid TOML: {message} (line {e.line}, column {e.col})", path=path, line=e.line
        ) from None
    except tomlkit.exceptions.TOMLKitError as e:
        # Some errors (a key given twice) carry no position; the stdlib parser knows it.
        line: int | None = None
        where = ""
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as e2:
            found = re.search(r"line (\d+), column (\d+)", str(e2))
            if found:
                line = int(found.group(1))
                where = f" (line {line}, column {found.group(2)})"
        raise ConfigError(f"not valid TOML: {e}{where}", path=path, line=line) from None


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
        # Unknown keys are often the cause (a typo'd key name): show them with the errors.
        first.warnings = check.warnings  # type: ignore[attr-defined]
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
        elif key in table:
            if _plain(table[key]) != value:
                table[key] = value
        elif isinstance(table, Table) and (last := _last_key(table)) is not None:
            # After the table's last key, not after the comment that leads the next table.
            table.value._insert_after(last, key, value)
            before, added = table.value.item(last), table.value.item(key)
            if isinstance(before, Item) and isinstance(added, Item):  # same line ending
                added.trivia.trail = "\r\n" if "\r\n" in before.trivia.trail else "\n"
        else:
            table[key] = value


def _last_key(table: Table) -> Any:
    """The key of the last plain value in `table` (no sub-tables), or None."""
    last = None
    for key, item in table.value.body:
        if key is not None and not isinstance(item, (Table, AoT, Null)):
            last = key
    return last


def _plain(item: Any) -> Any:
    return item.unwrap() if hasattr(item, "unwrap") else item


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
    """A config file held in memory as a tomlkit document plus its validated specs."""

    # How long an edit waits for another devtui that is saving the same file.
    lock_timeout: float = 10.0

    def __init__(self, path: Path, text: str = "") -> None:
        self.path = Path(path)
        self._text = text
        # Validate first: it turns TOML syntax errors into a ConfigError naming line and column.
        self.data, self.warnings = (
            validate_text(text, str(self.path)) if text else (ConfigData(), [])
        )
        self._doc = tomlkit.parse(text) if text else tomlkit.document()

    @classmethod
    def load(cls, path: Path | str | None = None) -> Config:
        """Read and validate `path` (default: `default_config_path()`). Missing file = empty."""
        path = Path(path).expanduser() if path else default_config_path()
        try:
            # newline="": keep the file's own line endings (CRLF stays CRLF on save).
            with path.open(encoding="utf-8-sig", newline="") as f:
                text = f.read()
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

    @_locked
    def add(self, hosts: Iterable[HostSpec], tunnels: Iterable[TunnelSpec] = ()) -> None:
        """Add hosts and tunnels in one save; refuses names that are taken."""
        hosts, tunnels = list(hosts), list(tunnels)
        for spec in hosts:
            if spec.name in self.hosts:
                raise ConfigError(f"a host named {spec.name!r} already exists", path=str(self.path))
        for tunnel in tunnels:
            self._refuse_taken_tunnel(tunnel.name)
        tables = [("hosts", h.name, _host_table(h)) for h in hosts]
        tables += [("tunnels", t.name, _tunnel_table(t)) for t in tunnels]

        def edit(doc: tomlkit.TOMLDocument) -> None:
            for section, name, table in tables:
                _section(doc, section)[name] = copy.deepcopy(table)

        def edit_text(text: str) -> str | None:
            for section, name, table in tables:
                text = _add_table_text(text, section, name, table)
            return text

        self._edit(edit, edit_text)

    @_locked
    def update_host(self, name: str, spec: HostSpec) -> None:
        """Replace host `name` by `spec` (same name), touching only keys that changed."""
        self._require_host(name)
        if spec.name != name:
            raise ConfigError("renaming a host is not supported; add a new one", key=name)

        def edit(doc: tomlkit.TOMLDocument) -> None:
            _fill_host(doc["hosts"][name], spec)  # type: ignore[index,arg-type]

        self._edit(edit)

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
        tables = [("tunnels", t) for t in gone] + [("hosts", name)]
        self._edit(*_removal(tables))
        return gone

    def add_tunnel(self, spec: TunnelSpec) -> None:
        """Add a tunnel; refuses a taken name."""
        self.add([], [spec])

    @_locked
    def update_tunnel(self, name: str, spec: TunnelSpec) -> None:
        """Replace tunnel `name` by `spec`, touching only keys that changed."""
        if name not in self.tunnels:
            raise ConfigError(f"no tunnel named {name!r}", path=str(self.path))

        def edit(doc: tomlkit.TOMLDocument) -> None:
            _apply(doc["tunnels"][name], _tunnel_values(spec))  # type: ignore[index,arg-type]

        self._edit(edit)

    @_locked
    def remove_tunnel(self, name: str) -> None:
        """Remove one tunnel."""
        if name not in self.tunnels:
            raise ConfigError(f"no tunnel named {name!r}", path=str(self.path))
        self._edit(*_removal([("tunnels", name)]))

    @contextlib.contextmanager
    def _saving(self) -> Iterator[None]:
        """Hold the file's lock and adopt the file as it is now, for one edit.

        Every devtui saving this file takes the same lock around read, change and save, so
        two saves at once both land instead of the later one writing over the earlier.
        """
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

    def _edit(
        self,
        change: Callable[[tomlkit.TOMLDocument], None],
        change_text: Callable[[str], str | None] | None = None,
    ) -> None:
        # Edit a copy, validate the exact text that would land on disk, then save and adopt it.
        doc = copy.deepcopy(self._doc)
        try:
            change(doc)
        except (ValueError, tomlkit.exceptions.TOMLKitError) as e:
            # e.g. hosts written as one inline table cannot take a [hosts.NAME] table
            raise ConfigError(
                f"cannot make this change to the file as written: {e}", path=str(self.path)
            ) from None
        text = doc.as_string()
        if change_text is not None:
            # Whole tables are added and removed as text so that comments stay with the table
            # they describe; used only when it means exactly what tomlkit's edit means.
            candidate = change_text(self.text())
            if candidate is not None and _same_data(candidate, doc):
                text = candidate
        data, warnings = validate_text(text, str(self.path))
        try:
            atomic_write_text(self.path, text)
        except OSError as e:  # read-only, or (Windows) held open by another program
            raise ConfigError(f"cannot save: {e.strerror or e}", path=str(self.path)) from None
        self._doc, self._text, self.data, self.warnings = tomlkit.parse(text), text, data, warnings

    def _refresh(self) -> None:
        """Adopt the file as it is on disk now, if someone (another devtui, an editor)
        changed it since we read it: an edit must never silently undo theirs."""
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as f:
                on_disk = f.read()
        except FileNotFoundError:
            on_disk = ""
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read: {e}", path=str(self.path)) from None
        if on_disk != self._text:
            fresh = Config(self.path, on_disk)
            self._doc, self._text, self.data, self.warnings = (
                fresh._doc,
                on_disk,
                fresh.data,
                fresh.warnings,
            )


def _section(doc: tomlkit.TOMLDocument, name: str) -> Any:
    if name not in doc:
        doc[name] = tomlkit.table(is_super_table=True)
    return doc[name]


def _removal(
    tables: list[tuple[str, str]],
) -> tuple[Callable[[tomlkit.TOMLDocument], None], Callable[[str], str | None]]:
    """The tomlkit edit and the text edit that remove [section.name] tables."""

    def edit(doc: tomlkit.TOMLDocument) -> None:
        for section, name in tables:
            del doc[section][name]  # type: ignore[union-attr]
            outer = doc[section]
            if isinstance(outer, Table) and outer.is_super_table() and not outer:
                del doc[section]  # [hosts.x] headers only: nothing left to show

    def edit_text(text: str) -> str | None:
        result: str | None = text
        for section, name in tables:
            if result is not None:
                result = _remove_table_text(result, (section, name))
        return result

    return edit, edit_text


def _same_data(text: str, doc: tomlkit.TOMLDocument) -> bool:
    try:
        return bool(tomlkit.parse(text).unwrap() == doc.unwrap())
    except (ValueError, tomlkit.exceptions.TOMLKitError):
        return False


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


def _add_table_text(text: str, section: str, name: str, table: Table) -> str:
    doc = tomlkit.document()
    outer = tomlkit.table(is_super_table=True)
    outer.append(name, copy.deepcopy(table))
    doc.append(section, outer)
    block = _lines(doc.as_string().rstrip("\n"))
    lines = _lines(text)
    eol = "\r" if lines and lines[0].endswith("\r") else ""
    block = [line + eol for line in block]
    headers = _headers(lines)
    ours = [k for k, (_, p) in enumerate(headers) if p[:1] == (section,)]
    if ours:
        # After the last table of the section, before whatever leads the next one.
        end = _table_extent(lines, headers, ours[-1]).stop
        new = [eol, *block]
        if end < len(lines) and not _is_blank(lines[end]):
            new.append(eol)
        lines[end:end] = new
    else:
        if lines and not _is_blank(lines[-1]):
            lines.append(eol)
        lines += block
    return _join(lines)


def _tunnel_table(spec: TunnelSpec) -> Table:
    table = tomlkit.table()
    _apply(table, _tunnel_values(spec))
    table.add(tomlkit.nl())
    return table
