"""devtui stands on the public API of its libraries (issue 16): tomlkit's and Textual's
private names change in patch releases (tomlkit 0.15.3 dropped Container._insert_after and
every save that added a key failed). The only private use left is the asyncssh fast path,
which is version-guarded and can be turned off (sshcore/asyncssh_tuning.py)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import textwrap
from functools import cache
from pathlib import Path

import textual

ROOT = Path(__file__).resolve().parent.parent
OWNER = ("self", "cls")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _sources(package: str) -> dict[Path, ast.Module]:
    return {
        p: ast.parse(p.read_text(encoding="utf-8")) for p in sorted((ROOT / package).rglob("*.py"))
    }


def _defined(tree: ast.AST) -> set[str]:
    """Private names a tree defines: methods, class attributes, `self._x = ...`."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _private(node.name):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if _private(node.attr):
                names.add(node.attr)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                targets = item.targets if isinstance(item, ast.Assign) else []
                if isinstance(item, ast.AnnAssign):
                    targets = [item.target]
                names |= {t.id for t in targets if isinstance(t, ast.Name) and _private(t.id)}
    return names


@cache
def _textual_private() -> frozenset[str]:
    names: set[str] = set()
    for path in Path(textual.__file__).parent.rglob("*.py"):
        names |= _defined(ast.parse(path.read_text(encoding="utf-8")))
    return frozenset(names)


def _foreign_private_uses(package: str, foreign: frozenset[str] | None) -> list[str]:
    """`obj._x` in `package` where obj is not self/cls and `_x` is not the package's own
    (or, with `foreign`, is one of those names even if the package defines it too)."""
    trees = _sources(package)
    own: set[str] = set()
    for tree in trees.values():
        own |= _defined(tree)
    found = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not _private(node.attr):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in OWNER:
                continue
            if node.attr not in own or (foreign is not None and node.attr in foreign - own):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
    return found


def test_no_private_name_of_another_library_in_sshcore_but_the_fast_path() -> None:
    found = [
        use
        for use in _foreign_private_uses("sshcore", None)
        if not use.startswith("sshcore/asyncssh_tuning.py")
    ]
    assert found == []


def test_no_private_name_of_another_library_in_tui() -> None:
    assert _foreign_private_uses("tui", _textual_private()) == []


def _textual_bases_private(cls: type) -> set[str]:
    """Private names the Textual classes `cls` inherits from define or set on self."""
    names: set[str] = set()
    for base in cls.__mro__:
        if not base.__module__.startswith("textual"):
            continue
        names |= {n for n in vars(base) if _private(n)}
        try:
            source = textwrap.dedent(inspect.getsource(base))
        except (OSError, TypeError):
            continue
        names |= _defined(ast.parse(source))
    return names


def _tui_classes() -> list[type]:
    import tui

    classes = []
    for info in pkgutil.walk_packages(tui.__path__, "tui."):
        if info.name.endswith("__main__"):
            continue  # running it is `python -m tui`
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == info.name and any(
                b.__module__.startswith("textual") for b in cls.__mro__[1:]
            ):
                classes.append(cls)
    return classes


def test_tui_classes_neither_override_nor_touch_textuals_private_members() -> None:
    """A widget's own `self._x` must not be a name its Textual bases use (`_on_key`,
    `_data`, `_line_cache` ...): overriding or writing one depends on Textual's insides."""
    found = []
    for cls in _tui_classes():
        taken = _textual_bases_private(cls)
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        uses = {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in OWNER
            and _private(node.attr)
        }
        for name in sorted((uses | _defined(tree)) & taken):
            found.append(f"{cls.__module__}.{cls.__qualname__}: {name}")
    assert found == []


def test_actions_and_panes_use_only_the_apps_public_members() -> None:
    """The actions once reached into the app (`self.app._said`, `_row_of` ...) and two keys
    broke when one of those moved (issue 20): they use the app's public members now."""
    found = []
    for package in ("tui/actions", "tui/panes", "tui/screens"):
        for path, tree in _sources(package).items():
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and _private(node.attr)
                    and isinstance(node.value, ast.Attribute)
                    and node.value.attr in ("app", "dashboard")
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
    assert found == []


def test_no_module_of_the_core_imports_the_facade() -> None:
    """Follower, port watcher and fleet test take what they need (a Protocol the Core meets),
    not the Core: no loop hidden behind TYPE_CHECKING (issue 20, item 2)."""
    found = []
    for path, tree in _sources("sshcore").items():
        if path.name in ("core.py", "__init__.py", "api.py"):  # the facade, and the face
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [node.module or ""] + [a.name for a in node.names if not node.module]
                if "core" in names:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_the_face_contract_names_every_private_module_of_the_core() -> None:
    """`lint-imports` keeps tui to sshcore.api; a new sshcore module is private at once."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (face,) = [c for c in contracts if "face" in c["name"]]
    modules = {f"sshcore.{p.stem}" for p in (ROOT / "sshcore").glob("*.py") if p.stem != "__init__"}
    assert set(face["forbidden_modules"]) == modules - {"sshcore.api"}
    assert face["source_modules"] == ["tui"]


def test_every_name_of_the_face_loads() -> None:
    """sshcore.api loads its names on first use, by a table of module names: none is stale."""
    import importlib

    api = importlib.import_module("sshcore.api")
    for name in api.__all__:
        assert getattr(api, name) is not None, name


def test_bindings_help_and_palette_come_from_one_registry() -> None:
    """Issue 20: the app's and each pane's bindings (so the footer and `?` help) and the
    palette's global commands are made from tui/registry.py; every entry has its action."""
    from tui import registry
    from tui.app import DevTuiApp
    from tui.panes import HostsPane, KeysPane, LogsPane, TunnelsPane
    from tui.screens.help import help_text

    owners = {
        "app": DevTuiApp,
        "hosts": HostsPane,
        "tunnels": TunnelsPane,
        "keys": KeysPane,
        "logs": LogsPane,
    }
    for scope, owner in owners.items():
        made = [(b.key, b.action, b.description, b.id) for b in owner.BINDINGS]
        want = [(b.key, b.action, b.description, b.id) for b in registry.bindings(scope)]
        assert made == want, scope
    for act in registry.ACTIONS:
        name = act.action.split("(")[0]
        assert hasattr(owners[act.scope], f"action_{name}"), act.id
        assert act.key is not None or act.palette, f"{act.id}: neither a key nor a palette title"
    shown = help_text(DevTuiApp.__new__(DevTuiApp)).plain  # it reads the class only
    for act in registry.ACTIONS:
        if act.key is not None and act.scope != "app":
            assert act.label in shown, act.id


def test_each_item_command_of_the_palette_is_one_registry_entry_with_its_method() -> None:
    from tui import registry
    from tui.actions.file_actions import FileActions
    from tui.actions.host_actions import HostActions
    from tui.actions.job_actions import JobActions
    from tui.actions.key_actions import KeyActions
    from tui.actions.tunnel_actions import TunnelActions

    ids = {a.id for a in registry.ACTIONS}
    owners = {
        "host_actions": HostActions,
        "tunnel_actions": TunnelActions,
        "key_actions": KeyActions,
        "job_actions": JobActions,
        "file_actions": FileActions,
    }
    for command in registry.ITEM_COMMANDS:
        assert hasattr(owners[command.owner], command.method), command
        assert command.id in ids or command.id in ("hosts.forget_key", "jobs.stop", "jobs.show")
        assert "{name}" in command.title, command


def test_what_type_checkers_see_of_the_face_is_what_it_loads() -> None:
    """sshcore.api names each export twice: in its table (loaded on first use) and in its
    TYPE_CHECKING imports (what mypy sees). A name in the table alone would be Any to mypy."""
    tree = ast.parse((ROOT / "sshcore" / "api.py").read_text(encoding="utf-8"))
    typed: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                for alias in imp.names:
                    typed[alias.asname or alias.name] = imp.module or alias.name
    import importlib

    api = importlib.import_module("sshcore.api")
    assert typed == {**dict(api._WHERE), **{m: m for m in api._MODULES}}
