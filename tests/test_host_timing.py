"""A host's own keepalive and connect timeout, against a real sshd behind a TCP proxy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from coreutil import isolate_home, make_core, of_type, sshd_host, wait_for

from sshcore.config import validate_text
from sshcore.errors import ConfigError, SshCommandError
from sshcore.events import HostLost
from sshcore.model import HostSpec, Settings, host_settings
from sshcore.session import ConnectError
from sshcore.sshcmd import parse_ssh_command, to_ssh_args, to_ssh_config_block


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


async def test_a_host_s_own_keepalive_notices_a_silent_link(sshd, tcp_proxy, tmp_path) -> None:
    """[settings] has keepalive off; the host turns it on for itself: a blackholed link is
    noticed (without keepalives it would hang on, "connected", until TCP gives up)."""
    proxy = tcp_proxy("127.0.0.1", sshd.port)
    host = sshd_host(sshd, port=proxy.port, keepalive_interval=0.5, keepalive_count_max=1)
    core, _, events = make_core(tmp_path, {"box": host}, keepalive_interval=0)
    assert core.config.hosts["box"].keepalive_interval == 0.5
    async with core:
        await core.connect("box")
        proxy.blackhole()
        await wait_for(lambda: bool(of_type(events, HostLost)), 20, what="the silent link noticed")


async def test_a_host_s_own_connect_timeout_bounds_its_connect(sshd, tcp_proxy, tmp_path) -> None:
    """[settings] waits 60 s; the host's connect_timeout of 0.5 s is what gives up."""
    proxy = tcp_proxy("127.0.0.1", sshd.port)
    proxy.blackhole()
    host = sshd_host(sshd, port=proxy.port, connect_timeout=0.5)
    core, _, _ = make_core(tmp_path, {"box": host}, connect_timeout=60.0)
    async with core:
        with pytest.raises(ConnectError) as caught:
            await asyncio.wait_for(core.connect("box"), 30)
    assert "within 0.5 s" in str(caught.value)


def test_unset_host_values_fall_back_to_settings() -> None:
    settings = Settings(keepalive_interval=7.0, keepalive_count_max=4, connect_timeout=9.0)
    assert host_settings(settings, HostSpec("h", "h")) == settings
    own = host_settings(settings, HostSpec("h", "h", keepalive_interval=0.0, connect_timeout=2))
    assert (own.keepalive_interval, own.keepalive_count_max, own.connect_timeout) == (0, 4, 2)


@pytest.mark.parametrize(
    "value, message",
    [
        ("keepalive_interval = -1", "hosts.a.keepalive_interval: must be 0 (off) or more seconds"),
        ("keepalive_count_max = 0", "hosts.a.keepalive_count_max: must be at least 1"),
        ("keepalive_count_max = 1.5", "hosts.a.keepalive_count_max: must be a number, not a"),
        ("connect_timeout = 0", "hosts.a.connect_timeout: must be more than 0 seconds"),
        ('connect_timeout = "5"', "hosts.a.connect_timeout: must be a number, not a string"),
    ],
)
def test_a_bad_host_timing_is_one_clear_message(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_text(f'[hosts.a]\nhostname = "a.example.com"\n{value}\n', "c.toml")
    assert str(caught.value).startswith("c.toml:3: " + message), str(caught.value)


def test_host_timing_loads_and_is_written_as_people_write_it(tmp_path: Path) -> None:
    from sshcore.config import Config

    path = tmp_path / "config.toml"
    text = (
        '# mine\n[hosts.a]\nhostname = "a.example.com"\n'
        "keepalive_interval = 2.5  # flaky wifi\nconnect_timeout = 4\n"
    )
    path.write_text(text)
    config = Config.load(path)
    spec = config.hosts["a"]
    assert (spec.keepalive_interval, spec.keepalive_count_max, spec.connect_timeout) == (
        2.5,
        None,
        4.0,
    )
    config.update_host("a", spec.__class__(**{**_fields(spec), "port": 2222}))
    assert path.read_text() == text.replace(
        "connect_timeout = 4\n", "connect_timeout = 4\nport = 2222\n"
    )
    config.update_host("a", spec.__class__(**{**_fields(spec), "keepalive_count_max": 6}))
    assert Config.load(path).hosts["a"].keepalive_count_max == 6
    assert "keepalive_interval = 2.5  # flaky wifi\n" in path.read_text()


def _fields(spec: HostSpec) -> dict[str, object]:
    import dataclasses

    return {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}


def test_pasted_and_exported_lines_carry_the_host_s_timing() -> None:
    parsed = parse_ssh_command(
        "ssh -o ServerAliveInterval=1m30s -o ServerAliveCountMax=5 -o ConnectTimeout=7 h.example.com"
    )
    host = parsed.host
    assert (host.keepalive_interval, host.keepalive_count_max, host.connect_timeout) == (
        90.0,
        5,
        7.0,
    )
    assert not any("ServerAlive" in n or "ConnectTimeout" in n for n in parsed.notes)
    args = to_ssh_args(host)
    assert args[0:4] == ["-o", "ServerAliveInterval=90", "-o", "ServerAliveCountMax=5"]
    assert "    ConnectTimeout 7\n" in to_ssh_config_block(host)
    with pytest.raises(SshCommandError, match="invalid time value"):
        parse_ssh_command("ssh -o ConnectTimeout=2.5 h.example.com")
