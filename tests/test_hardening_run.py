"""`devtui run` words arrive as single arguments whatever the user's login shell is.

sshd hands the command to the login shell, and sh, bash, fish and tcsh quote differently:
fish reads \\' inside single quotes, tcsh fails on a newline in quotes and expands `!`.
Each case logs in (real OpenSSH sshd) as a throwaway user with that login shell and runs a
program that prints the arguments it got.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from coreutil import ScriptedPrompts, isolate_home, make_core
from harness.shell_users import login_shell_unavailable, user_with_shell
from harness.sshd import Sshd, ThrowawayUser

from sshcore.core import Core, posix_command
from sshcore.errors import DevtuiError

SHELLS = ["sh", "bash", "fish", "tcsh"]
PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
SHOW_ARGS = [PYTHON, "-c", "import sys, json; print(json.dumps(sys.argv[1:]))"]
# Untrusted words: each must arrive as one argument and run nothing.
WORDS = [
    "x\\",
    "; id #",
    "$(id)",
    "`id`",
    "'",
    '"',
    "\\'",
    "a b",
    "line1\nline2",
    "",
    "!x",
    "a!b",
    "%s%n",
    "-n",
    "trailing\n\n",
    "é中",
    "*",
    "~",
    "{a,b}",
    "\\\\",
    "\t",
    "$HOME",
    "\x01\x7f",
]


@pytest.fixture(params=SHELLS)
def shell_user(request: pytest.FixtureRequest, sshd_module: Sshd) -> Iterator[ThrowawayUser]:
    shell = request.param
    reason = login_shell_unavailable(shell)
    if reason:
        pytest.skip(reason)
    with user_with_shell(shell) as user:
        yield user


def _core(sshd: Sshd, user: ThrowawayUser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Core:
    isolate_home(monkeypatch, tmp_path)
    sshd.write_known_hosts(tmp_path / "known_hosts")
    host = {"hostname": "127.0.0.1", "port": sshd.port, "user": user.name}
    core, _, _ = make_core(
        tmp_path, {"box": host}, prompts=ScriptedPrompts(passwords=[user.password])
    )
    return core


async def _output(core: Core, argv: list[str] | str) -> tuple[int, str, str]:
    out: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}

    def collect(label: str, data: bytes) -> None:
        out[label] += data

    status = await core.run("box", argv, collect)
    return status, out["stdout"].decode(), out["stderr"].decode()


async def test_every_word_arrives_as_one_argument_under_each_login_shell(
    sshd_module: Sshd,
    shell_user: ThrowawayUser,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with _core(sshd_module, shell_user, tmp_path, monkeypatch) as core:
        status, stdout, stderr = await _output(core, [*SHOW_ARGS, *WORDS])
    assert status == 0, stderr
    assert json.loads(stdout) == WORDS
    assert "uid=" not in stdout + stderr  # no word ran `id`


async def test_a_shell_line_runs_in_the_login_shell(
    sshd_module: Sshd,
    shell_user: ThrowawayUser,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One string is a line for the user's own shell, as `ssh host 'LINE'` runs it.
    async with _core(sshd_module, shell_user, tmp_path, monkeypatch) as core:
        status, stdout, stderr = await _output(core, "echo one; echo two | tr o 0; exit 3")
    assert (status, stdout) == (3, "one\ntw0\n"), stderr


def test_the_command_holds_only_characters_every_shell_leaves_alone() -> None:
    command = posix_command([*SHOW_ARGS, *WORDS])
    prefix, bootstrap, words = command.split("'")  # one single-quoted part, nothing else
    assert prefix == "exec sh -c "
    assert not set(bootstrap) & set("\\!\n\r`'")
    assert set(words) <= set(" sh") | set("x01234567")


async def test_a_nul_in_a_word_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_home(monkeypatch, tmp_path)
    core, _, _ = make_core(tmp_path, {"box": {"hostname": "127.0.0.1", "port": 1}})
    async with core:
        with pytest.raises(DevtuiError, match="NUL"):
            await core.run("box", ["printf", "a\0b"])
