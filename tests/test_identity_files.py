"""Several identity files per host: listed keys, exported ssh lines and Host blocks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sshcore import keys
from sshcore.config import validate_text
from sshcore.model import HostSpec
from sshcore.sshcmd import parse_ssh_command, to_ssh_args, to_ssh_config_block

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path


def test_every_identity_file_counts_as_used_by_its_host(tmp_path: Path) -> None:
    folder = tmp_path / ".ssh"
    folder.mkdir()
    first, second = _keygen(folder / "id_first"), _keygen(folder / "id_second")
    elsewhere = _keygen(tmp_path / "outside")
    hosts = [
        HostSpec("box", "h1", identity_files=(str(first), str(elsewhere))),
        HostSpec("lab", "h2", identity_files=(str(second), str(first))),
    ]
    found = {k.name: k for k in keys.list_keys(hosts, folder=folder)}
    assert found["id_first"].hosts == ("box", "lab")
    assert found["id_second"].hosts == ("lab",)
    # A key outside ~/.ssh that only the second entry names is listed too.
    assert [k.hosts for k in found.values() if k.path == elsewhere] == [("box",)]


def test_several_keys_export_as_several_i_and_identityfile_lines() -> None:
    host = HostSpec("w", "w.example.com", identity_files=("~/.ssh/a", "/k/b c", "-x"))
    args = to_ssh_args(host)
    assert [args[i + 1] for i, a in enumerate(args) if a == "-i"] == ["~/.ssh/a", "/k/b c", "-x"]
    assert parse_ssh_command(["ssh", *args]).host.identity_files == host.identity_files
    block = to_ssh_config_block(host)
    assert '    IdentityFile ~/.ssh/a\n    IdentityFile "/k/b c"\n    IdentityFile -x\n' in block


def test_a_pasted_line_keeps_every_key_once_in_order() -> None:
    parsed = parse_ssh_command("ssh -i /k/b -o IdentityFile=/k/a -i /k/b h.example.com")
    assert parsed.host.identity_files == ("/k/b", "/k/a")
    assert parsed.host.identity_file == "/k/b"
    many = " ".join(f"-i /k/{i}" for i in range(40))
    parsed = parse_ssh_command(f"ssh {many} h.example.com")
    assert len(parsed.host.identity_files) == 32
    assert any("/k/39 not kept" in n and "at most 32" in n for n in parsed.notes)


def test_the_example_config_shows_identity_files() -> None:
    text = (ROOT / "config.example.toml").read_text()
    line = next(x for x in text.splitlines() if x.startswith("# identity_files = "))
    uncommented = text.replace(line, line[2:].split("  #")[0])
    data, _ = validate_text(uncommented.replace("# identity_file = ", "# x = "))
    assert data.hosts["intern"].identity_files == ("~/.ssh/work", "~/.ssh/id_ed25519")
    assert tomllib.loads(uncommented)["hosts"]["intern"]["identity_files"]
