"""In CI a missing tool fails its tests; a developer's own run still skips them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent

CASES = """
import pytest

def test_needs_tmux():
    pytest.skip("tmux is not installed")

def test_other_platform():
    pytest.skip("POSIX file modes")
"""


def run(tmp_path: Path, **env: str) -> str:
    (tmp_path / "test_cases.py").write_text(CASES)
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "DEVTUI_STRICT_SKIPS")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "harness.strict_skips", "-p", "no:cacheprovider",
         "-p", "no:randomly", "-q", "-rfs", "--rootdir", str(tmp_path), str(tmp_path)],
        env={**clean, "PYTHONPATH": str(TESTS), "COLUMNS": "200", **env},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return done.stdout


def test_in_ci_a_missing_tool_fails_and_another_platform_still_skips(tmp_path: Path) -> None:
    out = run(tmp_path, CI="true")
    assert "1 failed, 1 skipped" in out, out
    assert "skipped in CI, where the install step must provide it: tmux is not installed" in out


def test_a_developers_run_skips(tmp_path: Path) -> None:
    out = run(tmp_path)
    assert "2 skipped" in out and "failed" not in out, out
