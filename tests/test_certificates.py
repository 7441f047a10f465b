"""certificate_file: an OpenSSH user certificate offered with its key, against a real sshd
that trusts a user CA and has no authorized_keys entry for the key."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from coreutil import isolate_home, make_core, sshd_host
from harness.sshd import keygen

from sshcore.config import Config, validate_text
from sshcore.errors import ConfigError
from sshcore.model import HostSpec
from sshcore.session import AuthError, HostState
from sshcore.sshcmd import parse_ssh_command, to_ssh_args, to_ssh_config_block


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


def _signed(tmp_path: Path, principal: str) -> tuple[Path, Path, Path]:
    """(CA public key, a key no authorized_keys lists, its certificate signed by the CA)."""
    ca, key = tmp_path / "ca", tmp_path / "mine"
    keygen(ca, "test CA")
    keygen(key, "mine")
    subprocess.run(
        ["ssh-keygen", "-q", "-s", str(ca), "-I", "mine", "-n", principal, "-V", "-5m:+1h",
         str(key.with_name("mine.pub"))],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    cert = tmp_path / "certs" / "mine.cert"  # not key-cert.pub: nothing pairs it by name
    cert.parent.mkdir()
    key.with_name("mine-cert.pub").rename(cert)
    return ca.with_name("ca.pub"), key, cert


async def test_a_key_logs_in_with_its_certificate(sshd_factory, tmp_path: Path) -> None:
    probe = sshd_factory(start=False)
    ca, key, cert = _signed(tmp_path, probe.user)
    sshd = sshd_factory([f"TrustedUserCAKeys {ca}"])
    with_cert = sshd_host(sshd, identity_file=str(key), certificate_file=str(cert))
    without = sshd_host(sshd, identity_file=str(key))
    core, _, _ = make_core(tmp_path, {"cert": with_cert, "plain": without})
    async with core:
        await core.connect("cert")
        assert core.host_state("cert").state == HostState.CONNECTED
        with pytest.raises(AuthError):  # the same key alone is not let in
            await core.connect("plain")
    assert "Accepted publickey" in sshd.log_text() and "ED25519-CERT" in sshd.log_text()


async def test_a_missing_certificate_is_a_warning_and_the_key_alone_still_logs_in(
    sshd, tmp_path: Path
) -> None:
    gone = tmp_path / "gone-cert.pub"
    host = sshd_host(sshd, certificate_file=str(gone))
    core, _, _ = make_core(tmp_path, {"box": host})
    assert any(f"{gone} does not exist" in w for w in core.config.warnings)
    async with core:
        await core.connect("box")
        assert core.host_state("box").state == HostState.CONNECTED


def test_certificate_file_round_trips_and_exports(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    text = '# mine\n[hosts.a]\nhostname = "a.example.com"\ncertificate_file = "~/c.pub"  # CA\n'
    path.write_text(text)
    config = Config.load(path)
    spec = config.hosts["a"]
    assert spec.certificate_file == "~/c.pub"
    assert any("certificate_file: ~/c.pub does not exist" in w for w in config.warnings)
    config.update_host("a", HostSpec("a", "a.example.com", port=2, certificate_file="~/c.pub"))
    assert path.read_text() == text + "port = 2\n"
    args = to_ssh_args(spec)
    assert args[:2] == ["-o", "CertificateFile=~/c.pub"]
    assert parse_ssh_command(["ssh", *args]).host.certificate_file == "~/c.pub"
    assert "    CertificateFile ~/c.pub\n" in to_ssh_config_block(spec)
    with pytest.raises(ConfigError, match="certificate_file: must not be empty"):
        validate_text('[hosts.a]\nhostname = "a"\ncertificate_file = ""\n')
