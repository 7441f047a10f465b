"""In CI a test that needs a tool (sshd, tmux, fish, tcsh, ssh-keygen, the installed devtui ...)
fails instead of skipping: there the install step put everything in place, so a skip would
hide a broken install. A developer's own run (no CI in the environment) still skips.

Only skips for what cannot be here at all stay skips in CI: another platform's code path,
a root-only or non-root-only check, no IPv6 loopback, the asyncssh fast path standing down
on a version it was not tested with (the newest-versions run)."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

# Skip reasons that say "not on this machine, by its nature", not "not installed".
PLATFORM_REASONS = (
    "POSIX",
    "Windows",
    "win32",
    "IPv6 loopback",
    "fast path stands down",
)


def strict() -> bool:
    """True in CI (CI=true or 1), or with DEVTUI_STRICT_SKIPS=1 for a local check."""
    flags = (os.environ.get("CI", ""), os.environ.get("DEVTUI_STRICT_SKIPS", ""))
    return any(flag.strip().lower() in ("1", "true", "yes") for flag in flags)


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = (
        str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    )
    return reason.removeprefix("Skipped: ")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if not report.skipped or hasattr(report, "wasxfail") or not strict():
        return report
    reason = _reason(report)
    if any(allowed in reason for allowed in PLATFORM_REASONS):
        return report
    report.outcome = "failed"
    report.longrepr = f"skipped in CI, where the install step must provide it: {reason}"
    return report
