"""The installable package: layering and portability rules that break users when broken."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
POSIX_ONLY = {"pwd", "grp", "fcntl", "termios", "resource", "tty"}


def test_console_script_points_at_the_cli() -> None:
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "devtui"]
    assert script.value == "tui.cli:main"


def test_sshcore_never_loads_textual() -> None:
    # Import sshcore and every module in it, in a fresh interpreter.
    code = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import sshcore
        for info in pkgutil.iter_modules(sshcore.__path__, "sshcore."):
            importlib.import_module(info.name)
        loaded = sorted(m for m in sys.modules if m == "textual" or m.startswith(("textual.", "tui")))
        print(",".join(loaded))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def _module_level_imports(path: Path) -> set[str]:
    """Top-level modules imported unconditionally (not inside if/try/def/class)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


SOURCES = sorted([*ROOT.glob("sshcore/**/*.py"), *ROOT.glob("tui/**/*.py")])


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_no_posix_only_module_imported_at_module_level(path: Path) -> None:
    # These do not exist on Windows: importing them at module level breaks `devtui` there.
    assert _module_level_imports(path) & POSIX_ONLY == set()


def test_the_import_check_catches_a_bad_module(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os, fcntl\nfrom termios import TCSANOW\n"
        "try:\n    import pwd\nexcept ImportError:\n    pwd = None\n"
        "def f():\n    import grp\n"
    )
    assert _module_level_imports(bad) & POSIX_ONLY == {"fcntl", "termios"}


def test_the_wheel_holds_every_module_and_the_stylesheet(tmp_path: Path) -> None:
    """`pip install .` (README's first command) installs what `devtui demo` needs."""
    import zipfile

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("devtui-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {str(p.relative_to(ROOT)) for p in SOURCES}
    assert sources <= names, sorted(sources - names)
    assert "tui/devtui.tcss" in names
