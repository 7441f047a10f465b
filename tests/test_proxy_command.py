"""proxy_command (ssh's ProxyCommand): the connection rides a local command's stdin/stdout,
against a real sshd; tokens expanded by devtui; never taken from a pasted line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from coreutil import isolate_home, make_core, sshd_host

from sshcore.config import validate_text
from sshcore.errors import ConfigError, SshCommandError
from sshcore.model import HostSpec
from sshcore.openssh_config import read_ssh_config
from sshcore.session import ConnectError, HostState, proxy_argv
from sshcore.sshcmd import parse_ssh_command, to_ssh_args, to_ssh_config_block

# A relay like `nc HOST PORT`: stdin to the socket, the socket to stdout; it notes its argv.
RELAY = """\
import socket, sys, threading
host, port, user, name, log = sys.argv[1:6]
with open(log, "a") as f:
    f.write(" ".join(sys.argv[1:5]) + "\\n")
s = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
def up():
    while data := sys.stdin.buffer.read1(65536):
        s.sendall(data)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while data := s.recv(65536):
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
"""


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


@pytest.mark.skipif(sys.platform == "win32", reason="the relay is started by /bin/sh")
async def test_a_host_is_reached_through_its_proxy_command(sshd, tmp_path: Path) -> None:
    relay, log = tmp_path / "relay.py", tmp_path / "relay.log"
    relay.write_text(RELAY)
    # The hostname resolves nowhere: only the relay (which dials 127.0.0.1) can get there.
    command = f"{sys.executable} '{relay}' %h %p %r %n '{log}' # 100%% relay"
    host = sshd_host(sshd, hostname="box.invalid", proxy_command=command)
    core, _, _ = make_core(tmp_path, {"box": host})
    async with core:
        await core.connect("box")
        assert core.host_state("box").state == HostState.CONNECTED
        chunks: list[bytes] = []
        status = await core.run("box", ["echo", "via-proxy"], lambda _, b: chunks.append(b))
    assert status == 0 and b"".join(chunks) == b"via-proxy\n"
    # Started for each connect (twice: once more right after trusting the new host key).
    assert set(log.read_text().splitlines()) == {f"box.invalid {sshd.port} {sshd.user} box"}


def test_a_user_a_shell_would_read_never_reaches_the_proxy_command() -> None:
    spec = HostSpec("h", "h.example.com", user="a$(id)", proxy_command="nc %h %p # %r")
    with pytest.raises(ConnectError, match="characters a shell would read"):
        proxy_argv(spec)
    # Without %r the user is not put into the line: fine.
    assert proxy_argv(HostSpec("h", "h.example.com", user="a$b", proxy_command="nc %h %p"))


def test_a_pasted_proxy_command_is_refused_with_the_way_to_add_it() -> None:
    with pytest.raises(SshCommandError) as caught:
        parse_ssh_command("ssh -o 'ProxyCommand=nc %h %p' me@h.example.com")
    message = str(caught.value)
    assert "by hand" in message and "import-ssh-config" in message and "\n" not in message
    assert parse_ssh_command("ssh -o ProxyCommand=none h.example.com").host.proxy_command is None


@pytest.mark.parametrize(
    "value, what",
    [
        ('proxy_command = "nc %h %p"\njump = "b"', "jump both set"),
        ('proxy_command = "nc %d %p"', "token %d is not one devtui expands"),
        ('proxy_command = "nc %h 100%"', "token % is not one"),
        ('proxy_command = "  "', "must not be empty"),
    ],
)
def test_a_bad_proxy_command_is_one_clear_message(value: str, what: str) -> None:
    text = f'[hosts.b]\nhostname = "b"\n[hosts.a]\nhostname = "a.example.com"\n{value}\n'
    with pytest.raises(ConfigError) as caught:
        validate_text(text, "c.toml")
    assert "hosts.a.proxy_command" in str(caught.value) and what in str(caught.value)


def test_imported_and_exported_proxy_commands_keep_the_line_as_written(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host inner\n    ProxyCommand  ssh -W %h:%p  gw   # via gw\n")
    (host,) = read_ssh_config(config).hosts
    assert host.proxy_command == "ssh -W %h:%p  gw   # via gw"
    assert "    ProxyCommand ssh -W %h:%p  gw   # via gw\n" in to_ssh_config_block(host)
    config.write_text("Host inner\n    ProxyCommand connect %r@%n %%n\n")
    (host,) = read_ssh_config(config).hosts
    assert host.proxy_command == "connect %r@inner %%n"  # %n: the alias, fixed at import
    renamed = HostSpec("lab", "10.0.0.5", proxy_command="connect %n %%n")
    assert to_ssh_args(renamed)[:2] == ["-o", "ProxyCommand=connect lab %%n"]
