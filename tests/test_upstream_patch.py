"""bench/upstream/asyncssh-no-ignore-on-aead.patch is ready for asyncssh: it applies to the
installed release and, applied, does what devtui's run-time wrapper does (no empty
MSG_IGNORE on AEAD ciphers, the same as before on the others), counted at a real sshd."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest
from harness.sshd import Sshd

from sshcore import asyncssh_tuning

PATCH = Path(__file__).resolve().parent.parent / "bench" / "upstream"
PATCH = PATCH / "asyncssh-no-ignore-on-aead.patch"
SSHD_IGNORE_LINE = "Received SSH2_MSG_IGNORE"

# Runs in a process of its own, on the patched copy only (sshcore is never imported there).
CLIENT = """
import asyncio, sys
import asyncssh
assert asyncssh.__file__.startswith(sys.argv[1]), asyncssh.__file__

async def main(port, user, key, known, cipher):
    options = {"encryption_algs": [cipher]}
    if "gcm" not in cipher:
        options["mac_algs"] = ["hmac-sha2-256"]
    async with asyncssh.connect(
        "127.0.0.1", int(port), username=user, client_keys=[key], agent_path=None,
        config=None, known_hosts=asyncssh.import_known_hosts(known + "\\n"), **options,
    ) as conn:
        assert conn.get_extra_info("send_cipher") == cipher
        result = await conn.run("wc -c", input="x" * 400_000, check=True)
        assert result.stdout.strip() == "400000", result.stdout

asyncio.run(main(*sys.argv[2:]))
"""


def _apply(patch: str, text: str) -> str:
    """The unified diff `patch` (one file) applied to `text`; AssertionError if a hunk
    does not match."""
    for hunk in re.split(r"^@@[^\n]*@@\n", patch, flags=re.M)[1:]:
        lines = hunk.splitlines(keepends=True)
        old = "".join(line[1:] for line in lines if line[:1] in (" ", "-"))
        new = "".join(line[1:] for line in lines if line[:1] in (" ", "+"))
        assert text.count(old) == 1, "the hunk no longer matches asyncssh"
        text = text.replace(old, new)
    return text


@pytest.fixture
def patched_asyncssh(tmp_path: Path) -> Path:
    if not asyncssh_tuning.supported():
        pytest.skip(f"asyncssh {asyncssh.__version__}: the fast path stands down here")
    root = tmp_path / "site"
    target = root / "asyncssh"
    shutil.copytree(Path(asyncssh.__file__).parent, target)
    connection = target / "connection.py"
    connection.write_text(_apply(PATCH.read_text(), connection.read_text()))
    return root


def _ignores(sshd_factory: Callable[..., Sshd], site: Path, cipher: str) -> int:
    sshd = sshd_factory(["LogLevel DEBUG3"])
    key = sshd.client_key()
    env = {**os.environ, "PYTHONPATH": str(site)}
    args = [str(site), str(sshd.port), sshd.user, str(key), sshd.known_hosts_line(), cipher]
    subprocess.run(
        [sys.executable, "-c", CLIENT, *args], env=env, check=True, timeout=60, capture_output=True
    )
    return sshd.log_text().count(SSHD_IGNORE_LINE)


def test_the_patch_applies_to_the_installed_asyncssh_and_means_what_devtui_does(
    sshd_factory: Callable[..., Sshd], patched_asyncssh: Path
) -> None:
    assert _ignores(sshd_factory, patched_asyncssh, "aes128-gcm@openssh.com") == 0
    assert _ignores(sshd_factory, patched_asyncssh, "chacha20-poly1305@openssh.com") == 0
    # Non-AEAD ciphers keep the countermeasure: one before each packet (>= 12 of 32 KiB).
    assert _ignores(sshd_factory, patched_asyncssh, "aes128-ctr") > 400_000 // 32768
