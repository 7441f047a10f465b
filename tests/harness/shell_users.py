"""Throwaway local users with a chosen login shell (fish, tcsh ...), for quoting tests."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from .sshd import (
    ThrowawayUser,
    _tool,
    create_throwaway_user,
    remove_throwaway_user,
    throwaway_user_unavailable,
)

# The CI line that makes these tests run rather than skip (Debian/Ubuntu):
INSTALL_HINT = "apt-get install -y fish tcsh"


def login_shell_unavailable(shell: str) -> str | None:
    """Why a user with login shell `shell` cannot be made here, or None if one can."""
    if shutil.which(shell) is None:
        return f"{shell} is not installed (CI: {INSTALL_HINT})"
    return throwaway_user_unavailable()


@contextmanager
def user_with_shell(shell: str) -> Iterator[ThrowawayUser]:
    """A fresh local user whose login shell is `shell` (a name on PATH); removed after."""
    path = shutil.which(shell)
    assert path is not None, f"{shell} is not installed"
    user = create_throwaway_user(prefix="dtsh")
    try:
        subprocess.run(
            [_tool("usermod"), "-s", path, user.name], check=True, capture_output=True, timeout=30
        )
        yield user
    finally:
        remove_throwaway_user(user.name)
