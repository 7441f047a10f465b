"""Listen addresses that mean "every interface" are recognised however they are spelled.

`0`, `0x0`, `000`, `[0::]` ... all bind 0.0.0.0 or ::; a user who wrote one must be warned
exactly as for 0.0.0.0, and a clash with 127.0.0.1 on the same port must be caught.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sshcore.config import validate_text
from sshcore.model import Endpoint, TunnelSpec, listens_clash
from sshcore.ports import open_listener
from tui.cli import main

V4_ANY = ["0", "0.0", "0x0", "000", "0.0.0.00", "00.0x0.0", "*"]
V6_ANY = ["[::0]", "[0::]", "[0:0:0:0:0:0:0:0]", "[::]"]


@pytest.mark.parametrize("spelling", V4_ANY + V6_ANY)
def test_every_spelling_of_all_interfaces_is_flagged(spelling: str) -> None:
    listen = Endpoint.parse(f"{spelling}:8080")
    assert listen.all_interfaces
    assert listen.exposed
    # Shown (and saved) the way the OS binds it, so nobody mistakes it for something private.
    assert str(listen) in ("0.0.0.0:8080", "[::]:8080")


@pytest.mark.parametrize("spelling", ["0", "0x0", "000", "0.0.0.00"])
def test_the_canonical_form_is_what_the_os_binds(spelling: str) -> None:
    # The claim "0 means 0.0.0.0" checked against the real socket layer.
    sock = socket.socket()
    try:
        sock.bind((spelling, 0))
        assert sock.getsockname()[0] == Endpoint.parse(f"{spelling}:1").address
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("text", "exposed"),
    [
        ("127.0.0.1:80", False),
        ("127.1:80", False),
        ("0x7f.1:80", False),
        ("localhost:80", False),
        ("LocalHost:80", False),
        ("[::1]:80", False),
        ("[0:0:0:0:0:0:0:1]:80", False),
        ("[::ffff:127.0.0.1]:80", False),
        ("192.168.1.20:80", True),
        ("10.1:80", True),
        ("[fe80::1]:80", True),
        ("myhost:80", True),  # a host name may resolve anywhere: warn
        ("devbox.lan:80", True),
    ],
)
def test_any_listen_address_that_is_not_loopback_is_exposed(text: str, exposed: bool) -> None:
    listen = Endpoint.parse(text)
    assert listen.exposed is exposed
    assert listen.all_interfaces is False


def _tunnel(name: str, listen: str) -> TunnelSpec:
    return TunnelSpec(name, "box", "local", Endpoint.parse(listen), Endpoint.parse("9000"))


@pytest.mark.parametrize("wide", ["0:8080", "0x0:8080", "000:8080", "[0::]:8080"])
def test_listen_clash_catches_every_spelling_of_all_interfaces(wide: str) -> None:
    assert listens_clash(_tunnel("a", wide), _tunnel("b", "127.0.0.1:8080"))
    assert listens_clash(_tunnel("a", "127.1:8080"), _tunnel("b", "127.0.0.1:8080"))


def test_config_refuses_two_tunnels_on_the_same_port_spelled_differently() -> None:
    text = """
[hosts.box]
hostname = "127.0.0.1"

[tunnels.wide]
host = "box"
kind = "local"
listen = "0:8080"
target = "127.0.0.1:80"

[tunnels.narrow]
host = "box"
kind = "local"
listen = "127.0.0.1:8080"
target = "127.0.0.1:81"
"""
    with pytest.raises(Exception, match="already used by tunnel 'wide'"):
        validate_text(text)


def test_the_os_really_refuses_the_clash_the_check_predicts() -> None:
    # 0:PORT and 127.0.0.1:PORT cannot both be bound: the clash is real, not a style rule.
    first = open_listener(Endpoint.parse("0:1").address, 0)
    try:
        port = first.getsockname()[1]
        with pytest.raises(OSError):
            open_listener("127.0.0.1", port).close()
    finally:
        first.close()


def test_tunnels_list_flags_a_spelled_out_all_interfaces_socks_proxy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # -D 0:1080 is an open SOCKS proxy into the remote network: it must not go unflagged.
    monkeypatch.setenv("HOME", str(tmp_path))
    config = tmp_path / "devtui.toml"
    config.write_text(
        '[hosts.box]\nhostname = "127.0.0.1"\n\n'
        '[tunnels.socks]\nhost = "box"\nkind = "dynamic"\nlisten = "0:1080"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "tunnels", "list"]) == 0
    out = capsys.readouterr().out
    assert "0.0.0.0:1080 (all interfaces!)" in out
