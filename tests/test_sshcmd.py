"""Pasted ssh command lines -> host + tunnels + notes, and back (sshcore.sshcmd)."""

from __future__ import annotations

import re
import shlex
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sshcore.errors import ConfigError, DevtuiError, SshCommandError
from sshcore.model import ConfigData, Endpoint, HostSpec, TunnelKind, TunnelSpec, listens_clash
from sshcore.sshcmd import (
    parse_ssh_command,
    plan_add,
    split_command,
    to_ssh_args,
    to_ssh_command,
    to_ssh_config_block,
)

TUTORIAL_LOGIN = "ssh -p 37367 root@ssh.intern-ai.org.cn"
TUTORIAL_TUNNEL = (
    "ssh -p 37367 root@ssh.intern-ai.org.cn -CNg -L 7860:127.0.0.1:7860 -o StrictHostKeyChecking=no"
)


def forwards(tunnels: list[TunnelSpec]) -> list[tuple[str, str, str | None]]:
    return [(t.kind, str(t.listen), str(t.target) if t.target else None) for t in tunnels]


# ---------------------------------------------------------------------------------------------
# The tutorial's two lines, exactly


def test_tutorial_login_line() -> None:
    parsed = parse_ssh_command(TUTORIAL_LOGIN)
    assert parsed.host == HostSpec(
        name="intern-ai", hostname="ssh.intern-ai.org.cn", port=37367, user="root"
    )
    assert parsed.tunnels == []
    assert parsed.notes == []


def test_tutorial_tunnel_line() -> None:
    parsed = parse_ssh_command(TUTORIAL_TUNNEL)
    host = parsed.host
    assert (host.name, host.hostname, host.port, host.user) == (
        "intern-ai",
        "ssh.intern-ai.org.cn",
        37367,
        "root",
    )
    assert host.compression is True
    assert parsed.tunnels == [
        TunnelSpec(
            name="intern-ai-7860",
            host="intern-ai",
            kind="local",
            listen=Endpoint("127.0.0.1", 7860),
            target=Endpoint("127.0.0.1", 7860),
        )
    ]
    notes = "\n".join(parsed.notes)
    # -g does not open the port to the network; the note says how to do that on purpose.
    assert "-g" in notes and "127.0.0.1" in notes and "0.0.0.0:PORT" in notes
    # StrictHostKeyChecking=no is not obeyed; host keys are checked, trust on first use.
    assert "StrictHostKeyChecking=no is not obeyed" in notes
    assert "fingerprint" in notes
    assert len(parsed.notes) == 2


# ---------------------------------------------------------------------------------------------
# The other forms users paste


@pytest.mark.parametrize(
    ("line", "hostname", "port", "user"),
    [
        ("ssh://bob@example.com:2222", "example.com", 2222, "bob"),
        ("ssh ssh://bob@example.com:2222", "example.com", 2222, "bob"),
        ("ssh ssh://example.com", "example.com", 22, None),
        ("ssh ssh://bob@[2001:db8::7]:2200", "2001:db8::7", 2200, "bob"),
        ("ssh -l bob example.com", "example.com", 22, "bob"),
        ("ssh example.com -l bob -p 2022", "example.com", 2022, "bob"),
        ("ssh -p2022 bob@example.com", "example.com", 2022, "bob"),
        ("ssh -o Port=2200 -o User=bob example.com", "example.com", 2200, "bob"),
        ("ssh -oPort=2200 example.com", "example.com", 2200, None),
        ("ssh -o 'HostName 10.1.2.3' gpu", "10.1.2.3", 22, None),
        ("ssh -6 me@[fe80::1]", "fe80::1", 22, "me"),
        ("ssh me@2001:db8::1", "2001:db8::1", 22, "me"),
        ("ssh.exe -p 2222 me@example.com", "example.com", 2222, "me"),
        ("/usr/bin/ssh -4 -q -v -T me@example.com", "example.com", 22, "me"),
        ("me@example.com", "example.com", 22, "me"),
    ],
)
def test_destination_forms(line: str, hostname: str, port: int, user: str | None) -> None:
    host = parse_ssh_command(line).host
    assert (host.hostname, host.port, host.user) == (hostname, port, user)


@pytest.mark.parametrize(
    "line",
    [
        'ssh -i "C:\\Users\\me\\.ssh\\id_rsa" me@h',  # PowerShell double quotes
        "ssh -i 'C:\\Users\\me\\.ssh\\id_rsa' me@h",  # PowerShell single quotes
        "ssh -i C:\\Users\\me\\.ssh\\id_rsa me@h",  # no quotes
        'ssh.exe -i "C:\\Users\\me\\.ssh\\id_rsa" me@h',
    ],
)
def test_windows_identity_path_keeps_its_backslashes(line: str) -> None:
    assert parse_ssh_command(line).host.identity_file == "C:\\Users\\me\\.ssh\\id_rsa"


def test_powershell_quoting_rules() -> None:
    # '' is a quote inside '...'; a backtick escapes inside "..."; backslashes are literal.
    assert split_command("ssh -i 'C:\\it''s\\key' h") == ["ssh", "-i", "C:\\it's\\key", "h"]
    assert split_command('ssh -i "C:\\a`"b\\key" h') == ["ssh", "-i", 'C:\\a"b\\key', "h"]


# ---------------------------------------------------------------------------------------------
# Commands split over several lines, as cloud docs print them


@pytest.mark.parametrize(
    "text",
    [
        "ssh -p 37367 root@ssh.intern-ai.org.cn \\\n  -L 7860:127.0.0.1:7860",  # bash
        "ssh -p 37367 root@ssh.intern-ai.org.cn \\\r\n  -L 7860:127.0.0.1:7860",  # bash, CRLF
        "ssh -p 37367 root@ssh.intern-ai.org.cn \\  \n  -L 7860:127.0.0.1:7860",  # spaces after
        "ssh -p 37367 root@ssh.intern-ai.org.cn `\n  -L 7860:127.0.0.1:7860",  # PowerShell
        "ssh -p 37367 root@ssh.intern-ai.org.cn `\r\n  -L 7860:127.0.0.1:7860",  # PowerShell, CRLF
        "ssh -p 37367 \\\n root@ssh.intern-ai.org.cn \\\n -L 7860:127.0.0.1:7860 \\\n -N",
        "\n\n  ssh -p 37367 root@ssh.intern-ai.org.cn -L 7860:127.0.0.1:7860  \r\n\n",
    ],
)
def test_a_command_split_over_lines_keeps_its_tunnels(text: str) -> None:
    parsed = parse_ssh_command(text)
    assert (parsed.host.hostname, parsed.host.port) == ("ssh.intern-ai.org.cn", 37367)
    assert forwards(parsed.tunnels) == [("local", "127.0.0.1:7860", "127.0.0.1:7860")]
    assert parsed.notes == []  # nothing became an ignored "remote command"


def test_powershell_continuation_with_a_windows_path() -> None:
    text = "ssh.exe -i C:\\Users\\me\\.ssh\\id `\n -L 7860:127.0.0.1:7860 me@gpu"
    parsed = parse_ssh_command(text)
    assert parsed.host.identity_file == "C:\\Users\\me\\.ssh\\id"
    assert [t.name for t in parsed.tunnels] == ["gpu-7860"]


@pytest.mark.parametrize(
    ("text", "lines", "second"),
    [
        ("ssh me@a.example.com\nssh you@b.example.com", 2, "ssh you@b.example.com"),
        ("ssh me@a.example.com\r\n\r\nssh -L 1:x:1 b\nssh c", 3, "ssh -L 1:x:1 b"),
        # A backslash does not continue a PowerShell line (this one has a Windows path).
        ("ssh -i C:\\k\\id me@h \\\n -L 1:a:1", 2, "-L 1:a:1"),
        # Nor a backtick a bash line: the backtick makes it PowerShell, where \ is literal.
        ("ssh me@h \\\n -L 1:a:1 # `x`", 2, "-L 1:a:1 # `x`"),
    ],
)
def test_several_commands_are_refused(text: str, lines: int, second: str) -> None:
    with pytest.raises(SshCommandError) as caught:
        parse_ssh_command(text)
    message = str(caught.value)
    assert message.startswith(f"paste one ssh command: the text has {lines} lines; line 2 is")
    assert caught.value.token == second
    assert "\n" not in message


# ---------------------------------------------------------------------------------------------
# Lines that run another program


@pytest.mark.parametrize(
    ("line", "word"),
    [
        ("scp a b", "scp"),
        ("scp -P 2222 file root@h:/tmp", "scp"),
        ("sshx root@h", "sshx"),
        ("mosh root@h", "mosh"),
        ("sudo ssh root@h", "sudo"),
        ("ssh-copy-id -p 2222 root@h", "ssh-copy-id"),
        ("autossh -M 0 -L 1:a:1 root@h", "autossh"),
    ],
)
def test_a_line_that_is_not_ssh_is_refused(line: str, word: str) -> None:
    for words in (line, shlex.split(line)):  # pasted, or already split by the user's shell
        with pytest.raises(SshCommandError) as caught:
            parse_ssh_command(words)
        assert str(caught.value) == (
            f"{word!r} is not ssh: paste a line like  ssh -p 2222 user@host"
        )
        assert caught.value.token == word


@pytest.mark.parametrize(
    ("line", "hostname"),
    [
        ("SSH.EXE -p 2 me@h.example", "h.example"),
        ("C:\\Windows\\System32\\OpenSSH\\ssh.exe me@h.example", "h.example"),
        ('"C:\\Program Files\\OpenSSH\\ssh.exe" me@h.example', "h.example"),
        ("/usr/local/bin/SSH me@h.example", "h.example"),
        # No "ssh" but clearly its arguments.
        ("-p 2222 me@h.example", "h.example"),
        ("me@h.example uptime", "h.example"),
        ("ssh://me@h.example:2222", "h.example"),
        ("gpu", "gpu"),
    ],
)
def test_ssh_in_any_spelling_or_left_out_is_accepted(line: str, hostname: str) -> None:
    assert parse_ssh_command(line).host.hostname == hostname


def test_posix_quoting_and_spaces_in_identity_path() -> None:
    parsed = parse_ssh_command("ssh -i ~/'my keys'/id_ed25519 me@h")
    assert parsed.host.identity_file == "~/my keys/id_ed25519"
    parsed = parse_ssh_command('ssh -i "$HOME/.ssh/id x" me@h')
    assert parsed.host.identity_file == "$HOME/.ssh/id x"


def test_jump_host_becomes_a_host_of_its_own() -> None:
    parsed = parse_ssh_command("ssh -J jumper@bastion.corp.example:2200 me@10.0.0.5")
    assert parsed.jump_host is not None
    jump = parsed.jump_host
    assert (jump.hostname, jump.port, jump.user) == ("bastion.corp.example", 2200, "jumper")
    assert parsed.host.jump == jump.name
    assert parsed.host.hostname == "10.0.0.5"
    assert parsed.host.name == "10-0-0-5"


def test_proxyjump_option_is_a_jump_too() -> None:
    parsed = parse_ssh_command("ssh -o ProxyJump=gate.example.org me@inner")
    assert parsed.jump_host is not None
    assert parsed.jump_host.hostname == "gate.example.org"
    assert parsed.host.jump == parsed.jump_host.name


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ssh -L 8080:localhost:80 h", [("local", "127.0.0.1:8080", "localhost:80")]),
        ("ssh -L 127.0.0.2:8080:db:5432 h", [("local", "127.0.0.2:8080", "db:5432")]),
        ("ssh -L8080:db:5432 h", [("local", "127.0.0.1:8080", "db:5432")]),
        ("ssh -L [::1]:8080:[::1]:80 h", [("local", "[::1]:8080", "[::1]:80")]),
        ("ssh -L 8080:[2001:db8::2]:80 h", [("local", "127.0.0.1:8080", "[2001:db8::2]:80")]),
        ("ssh -R 9000:localhost:3000 h", [("remote", "127.0.0.1:9000", "localhost:3000")]),
        ("ssh -R 0.0.0.0:9000:127.0.0.1:3000 h", [("remote", "0.0.0.0:9000", "127.0.0.1:3000")]),
        ("ssh -D 1080 h", [("dynamic", "127.0.0.1:1080", None)]),
        ("ssh -D 127.0.0.1:1081 h", [("dynamic", "127.0.0.1:1081", None)]),
        ("ssh -D [::1]:1082 h", [("dynamic", "[::1]:1082", None)]),
        (
            "ssh -L 1:a:1 -L 2:b:2 -R 3:c:3 -D 4 h",
            [
                ("local", "127.0.0.1:1", "a:1"),
                ("local", "127.0.0.1:2", "b:2"),
                ("remote", "127.0.0.1:3", "c:3"),
                ("dynamic", "127.0.0.1:4", None),
            ],
        ),
        (
            "ssh -o LocalForward='8081 localhost:81' h",
            [("local", "127.0.0.1:8081", "localhost:81")],
        ),
    ],
)
def test_forwards(line: str, expected: list[tuple[str, str, str | None]]) -> None:
    assert forwards(parse_ssh_command(line).tunnels) == expected


def test_tunnel_names_say_host_kind_and_port() -> None:
    parsed = parse_ssh_command("ssh -L 7860:a:1 -R 9000:b:2 -D 1080 me@gpu.example.com")
    assert [t.name for t in parsed.tunnels] == ["gpu-7860", "gpu-r9000", "gpu-socks1080"]
    assert {t.host for t in parsed.tunnels} == {"gpu"}


def test_combined_flags_with_a_trailing_argument() -> None:
    # -CNgL 8080:... is -C -N -g -L 8080:...
    parsed = parse_ssh_command("ssh -CNgL 8080:127.0.0.1:80 -p2222 me@h")
    assert parsed.host.compression is True
    assert parsed.host.port == 2222
    assert forwards(parsed.tunnels) == [("local", "127.0.0.1:8080", "127.0.0.1:80")]
    assert parsed.gateway_ports is True
    assert any(note.startswith("-g ignored") for note in parsed.notes)


def test_binding_all_interfaces_on_purpose_is_kept_and_said() -> None:
    parsed = parse_ssh_command("ssh -L 0.0.0.0:8080:127.0.0.1:80 -L *:8081:127.0.0.1:81 me@h")
    assert [str(t.listen) for t in parsed.tunnels] == ["0.0.0.0:8080", "0.0.0.0:8081"]
    assert sum("all interfaces" in note for note in parsed.notes) == 2


def test_agent_forwarding_is_recorded_off_with_a_note() -> None:
    for line in ("ssh -A me@h", "ssh -o ForwardAgent=yes me@h", "ssh -CA me@h"):
        parsed = parse_ssh_command(line)
        assert parsed.host.forward_agent is False
        assert any("agent forwarding" in note and "off" in note for note in parsed.notes), line


def test_accept_new_is_not_obeyed_either() -> None:
    notes = parse_ssh_command("ssh -o StrictHostKeyChecking=accept-new me@h").notes
    assert any("StrictHostKeyChecking=accept-new is not obeyed" in n for n in notes)


def test_unused_options_are_named_in_a_note() -> None:
    parsed = parse_ssh_command("ssh -o ServerAliveInterval=30 -o Tunnel=yes -w 1 me@h uptime")
    notes = "\n".join(parsed.notes)
    assert "-o tunnel" in notes.lower()
    assert parsed.host.keepalive_interval == 30  # kept per host, no note
    assert "serveraliveinterval" not in notes.lower()
    assert "-w 1" in notes
    assert "'uptime'" in notes


def test_x11_and_tty_flags_are_named_in_a_note() -> None:
    notes = parse_ssh_command("ssh -X -Y -tt me@h").notes
    assert notes == [
        "-X (X11 forwarding) is not used by devtui; ignored",
        "-Y (trusted X11 forwarding) is not used by devtui; ignored",
        "-t (force a terminal) is not used by devtui; ignored",  # once for -tt
    ]
    # Combined with flags devtui does use, the note still comes.
    parsed = parse_ssh_command("ssh -CXL 8080:db:80 me@h")
    assert parsed.host.compression and len(parsed.tunnels) == 1
    assert parsed.notes == ["-X (X11 forwarding) is not used by devtui; ignored"]
    # -T (no terminal) and -N (no command) are what a saved tunnel does anyway: no note.
    assert parse_ssh_command("ssh -T -N -q me@h").notes == []


def test_name_can_be_given() -> None:
    parsed = parse_ssh_command("ssh -L 1:a:1 me@h", name="box")
    assert parsed.host.name == "box"
    assert parsed.tunnels[0].host == "box"
    assert parsed.tunnels[0].name == "box-1"


@pytest.mark.parametrize(
    ("hostname", "name"),
    [
        ("ssh.intern-ai.org.cn", "intern-ai"),
        ("gpu01.lab.example.com", "gpu01"),
        ("login.cluster.edu", "cluster"),
        ("localhost", "localhost"),
        ("10.0.0.5", "10-0-0-5"),
        ("2001:db8::1", "ipv6-2001-db8-1"),
        ("[::1]", "ipv6-1"),  # not just "1"
        ("[fe80::1%eth0]", "ipv6-fe80-1-eth0"),
        ("1234", "host-1234"),  # a name that reads like a port gets a prefix
    ],
)
def test_default_names_are_readable(hostname: str, name: str) -> None:
    assert parse_ssh_command(f"ssh me@{hostname}").host.name == name


# ---------------------------------------------------------------------------------------------
# Malformed lines: one error naming the offending token


@pytest.mark.parametrize(
    ("line", "token"),
    [
        ("ssh -p abc h", "-p abc"),
        ("ssh -p 70000 h", "-p 70000"),
        ("ssh -p 0 h", "-p 0"),
        ("ssh -p", "-p"),
        ("ssh -Z h", "-Z"),
        ("ssh -CZ h", "-CZ"),
        ("ssh --name h", "--name"),
        ("ssh -L 8080 h", "-L 8080"),
        ("ssh -L 8080:db h", "-L 8080:db"),
        ("ssh -L x:db:80 h", "-L x:db:80"),
        ("ssh -L 80:db:99999 h", "-L 80:db:99999"),
        ("ssh -L 8080:'a b':80 h", "-L 8080:a b:80"),
        ("ssh -R 9000:db h", "-R 9000:db"),
        ("ssh -D a:b:c h", "-D a:b:c"),
        ("ssh -D socks h", "-D socks"),
        ("ssh -o Port=abc h", "-o Port=abc"),
        ("ssh -o StrictHostKeyChecking", "-o StrictHostKeyChecking"),
        ("ssh 'h;rm -rf ~'", "h;rm -rf ~"),
        ("ssh 'me@h$(reboot)'", "me@h$(reboot)"),
        ("ssh me@-oProxyCommand=evil", "me@-oProxyCommand=evil"),
        ("ssh -l -oProxyCommand=evil h", "-oProxyCommand=evil"),
        ("ssh -l 'bad user' h", "bad user"),
        ("ssh ssh://me@h:port", "ssh://me@h:port"),
        ("ssh -o Port 2200 -o User bob example.com", "-o Port"),  # ssh refuses it too
        ("ssh -o HostName=-x h", "-x"),
        # Empty parts were taken as "not given"; they are paste errors.
        ("ssh @h", "@h"),
        ("ssh ssh://@h:22", "ssh://@h:22"),
        ("ssh -l '' h", "-l"),
        ("ssh -J '' h", "-J"),
        ("ssh -J @gate h", "@gate"),
        ("ssh -o User= h", "-o User="),
        # Ports are ASCII digits: fullwidth, Arabic-Indic or superscript ones are not.
        ("ssh -p ２２ h", "-p ２２"),
        ("ssh -p ² h", "-p ²"),
        ("ssh -L ８０８０:db:80 h", "-L ８０８０:db:80"),
        ("ssh -D ١٠٨٠ h", "-D ١٠٨٠"),
        ("ssh -J gate:２２ h", "gate:２２"),
    ],
)
def test_malformed_lines_name_the_offending_token(line: str, token: str) -> None:
    with pytest.raises(SshCommandError) as caught:
        parse_ssh_command(line)
    assert caught.value.token == token
    assert repr(token) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_empty_user_and_jump_messages() -> None:
    with pytest.raises(SshCommandError, match=r"^the user before '@' is empty in: '@h'$"):
        parse_ssh_command("ssh @h")
    with pytest.raises(SshCommandError, match=r"^-J needs a value, not an empty string: '-J'$"):
        parse_ssh_command('ssh -J "" me@h')
    with pytest.raises(SshCommandError, match=r"^'２２' is not a port number in: '-p ２２'$"):
        parse_ssh_command("ssh -p ２２ me@h")


@pytest.mark.parametrize("line", ["", "   ", "ssh", "ssh -C -N", 'ssh "unclosed h'])
def test_lines_without_a_destination_or_unbalanced_are_errors(line: str) -> None:
    with pytest.raises(SshCommandError):
        parse_ssh_command(line)


def test_invalid_name_is_refused() -> None:
    for name in ("my box", "box;ls", "-box", "a/b", "é"):
        with pytest.raises(SshCommandError):
            parse_ssh_command("ssh me@h", name=name)


# ---------------------------------------------------------------------------------------------
# The reverse: host -> ssh command line, host -> ~/.ssh/config block


def test_host_to_command_line_and_config_block() -> None:
    parsed = parse_ssh_command(TUTORIAL_TUNNEL)
    command = to_ssh_command(parsed.host, parsed.tunnels)
    assert command == (
        "ssh -p 37367 -C -N -L 127.0.0.1:7860:127.0.0.1:7860 root@ssh.intern-ai.org.cn"
    )
    block = to_ssh_config_block(parsed.host, parsed.tunnels)
    assert block == (
        "Host intern-ai\n"
        "    HostName ssh.intern-ai.org.cn\n"
        "    User root\n"
        "    Port 37367\n"
        "    Compression yes\n"
        "    LocalForward 127.0.0.1:7860 127.0.0.1:7860\n"
    )


def test_config_block_quotes_paths_with_spaces() -> None:
    host = HostSpec("w", "w.example.com", identity_file="C:\\Users\\Me Too\\.ssh\\id")
    assert '    IdentityFile "C:\\Users\\Me Too\\.ssh\\id"\n' in to_ssh_config_block(host)


def test_command_line_with_jump_host() -> None:
    jump = HostSpec("gate", "gate.example.org", port=2200, user="j")
    host = HostSpec("inner", "10.0.0.5", user="me", jump="gate")
    assert to_ssh_args(host, (), jump) == ["-J", "j@gate.example.org:2200", "me@10.0.0.5"]


def test_command_line_never_lets_a_value_become_an_option() -> None:
    # An identity file that starts with "-" stays the argument of -i.
    host = HostSpec("h", "h.example.com", identity_file="-oProxyCommand=evil")
    args = to_ssh_args(host)
    assert args[args.index("-i") + 1] == "-oProxyCommand=evil"
    assert parse_ssh_command(to_ssh_command(host)).host.identity_file == "-oProxyCommand=evil"


# ---------------------------------------------------------------------------------------------
# Property: host + tunnels -> ssh line -> the same host + tunnels

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
# Dotted numbers ("0.0") are not DNS names: they must be real IPv4 addresses.
_dns = (
    st.lists(_label, min_size=1, max_size=4)
    .map(".".join)
    .filter(lambda h: "." not in h or not re.fullmatch(r"[0-9.]+", h))
)
_ipv4 = st.ip_addresses(v=4).map(str)
_ipv6 = st.ip_addresses(v=6).map(str)
hostnames = st.one_of(_dns, _ipv4, _ipv6).filter(lambda h: not h.startswith("-"))
names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
users = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.@\\$-]{0,15}", fullmatch=True)
ports = st.integers(1, 65535)
# Paths as people write them, plus quotes, spaces, unicode, Windows backslashes.
identity_files = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
    min_size=1,
    max_size=30,
) | st.sampled_from(
    ["~/.ssh/id_ed25519", "C:\\Users\\me\\.ssh\\id_rsa", "/keys/it's mine", "D:\\a b\\k.exe"]
)
listen_addresses = st.sampled_from(["127.0.0.1", "127.0.0.2", "0.0.0.0", "::1", "::"])
target_hosts = st.one_of(_dns, _ipv4, _ipv6, st.just("localhost"))


@st.composite
def host_specs(draw: st.DrawFn, name: str | None = None) -> HostSpec:
    return HostSpec(
        name=name or draw(names),
        hostname=draw(hostnames),
        port=draw(ports),
        user=draw(st.none() | users),
        identity_file=draw(st.none() | identity_files),
        compression=draw(st.booleans()),
    )


@st.composite
def tunnel_lists(draw: st.DrawFn, host: str) -> list[TunnelSpec]:
    tunnels: list[TunnelSpec] = []
    for _ in range(draw(st.integers(0, 4))):
        kind: TunnelKind = draw(st.sampled_from(["local", "remote", "dynamic"]))
        listen = Endpoint(draw(listen_addresses), draw(ports))
        target = None if kind == "dynamic" else Endpoint(draw(target_hosts), draw(ports))
        tunnel = TunnelSpec(f"{host}-t{len(tunnels)}", host, kind, listen, target)
        if not any(listens_clash(tunnel, other) for other in tunnels):
            tunnels.append(tunnel)
    return tunnels


def _host_fields(host: HostSpec) -> tuple[object, ...]:
    return (host.hostname, host.port, host.user, host.identity_file, host.compression)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_ssh_line_round_trip(data: st.DataObject) -> None:
    host = data.draw(host_specs())
    tunnels = data.draw(tunnel_lists(host.name))
    line = to_ssh_command(host, tunnels)
    parsed = parse_ssh_command(line, name=host.name)
    assert _host_fields(parsed.host) == _host_fields(host)
    assert forwards(parsed.tunnels) == forwards(tunnels)
    # What to_ssh_command writes is also what a POSIX shell would pass to ssh.
    assert shlex.split(line)[1:] == to_ssh_args(host, tunnels)


@settings(max_examples=60, deadline=None)
@given(host=host_specs(name="target"), jump=host_specs(name="gate"))
def test_ssh_line_round_trip_with_jump(host: HostSpec, jump: HostSpec) -> None:
    assume(jump.hostname.lower() != host.hostname.lower())  # ssh refuses a jump to itself
    host.jump = "gate"
    parsed = parse_ssh_command(to_ssh_command(host, (), jump), name="target")
    assert parsed.jump_host is not None
    got = parsed.jump_host
    assert (got.hostname, got.port, got.user) == (jump.hostname, jump.port, jump.user)
    assert _host_fields(parsed.host) == _host_fields(host)


@pytest.mark.parametrize(
    "line, identity",
    [
        (r"ssh -i ~\.ssh\id_rsa me@gpu", r"~\.ssh\id_rsa"),  # PowerShell users write ~\...
        (r"ssh -i %USERPROFILE%\.ssh\id_rsa me@gpu", r"%USERPROFILE%\.ssh\id_rsa"),
        (r"ssh -i my\ key me@gpu", "my key"),  # a POSIX escaped space stays POSIX
    ],
)
def test_backslashes_are_windows_separators_unless_they_escape(line: str, identity: str) -> None:
    assert parse_ssh_command(line).host.identity_file == identity


# ---------------------------------------------------------------------------------------------
# Saving a pasted line next to what is already saved


def _saved(*lines: str) -> ConfigData:
    data = ConfigData()
    for line in lines:
        plan = plan_add(data, parse_ssh_command(line))
        data.hosts.update({h.name: h for h in plan.hosts})
        data.tunnels.update({t.name: t for t in plan.tunnels})
    return data


def test_plan_reuses_the_saved_machine_under_its_saved_name() -> None:
    data = _saved("ssh -p 2222 me@gpu.example.org")
    data.hosts = {"lab": replace(data.hosts["gpu"], name="lab")}  # the user renamed it
    plan = plan_add(
        data, parse_ssh_command("ssh -p 2222 me@gpu.example.org -R 9000:localhost:3000")
    )
    assert plan.reused and plan.host == "lab" and plan.hosts == []
    assert [(t.name, t.host) for t in plan.tunnels] == [("lab-r9000", "lab")]


def test_plan_a_different_user_or_port_is_another_machine() -> None:
    data = _saved("ssh -p 2222 me@gpu.example.org")
    with pytest.raises(ConfigError, match=r"'gpu' already exists \(me@gpu.example.org:2222\)"):
        plan_add(data, parse_ssh_command("ssh -p 2200 me@gpu.example.org"))
    with pytest.raises(ConfigError, match="pick another name"):
        plan_add(
            data,
            parse_ssh_command("ssh -p 2200 me@gpu.example.org", name="gpu"),
            name_given=True,
        )
    other = plan_add(
        data, parse_ssh_command("ssh -p 2200 you@gpu.example.org", name="gpu2"), name_given=True
    )
    assert [h.name for h in other.hosts] == ["gpu2"] and not other.reused


def test_plan_says_what_the_saved_host_keeps() -> None:
    data = _saved("ssh me@gpu.example.org")
    plan = plan_add(data, parse_ssh_command(r"ssh -i ~/.ssh/lab me@gpu.example.org -D 1080"))
    assert [t.name for t in plan.tunnels] == ["gpu-socks1080"]
    assert any("keeps its saved identity files" in n and "~/.ssh/lab" in n for n in plan.notes)


def test_plan_the_same_address_by_another_route_is_not_the_saved_host() -> None:
    # 10.0.0.5 behind two bastions is two machines: a tunnel must not land on the wrong one.
    data = _saved("ssh -J me@bastion1.example.org root@10.0.0.5")
    other = parse_ssh_command("ssh -J me@bastion2.example.org root@10.0.0.5 -L 8080:localhost:80")
    with pytest.raises(ConfigError, match=r"through bastion1, not bastion2\); pick another"):
        plan_add(data, other)
    direct = parse_ssh_command("ssh root@10.0.0.5 -L 8080:localhost:80")
    with pytest.raises(ConfigError, match=r"through bastion1, not directly\)"):
        plan_add(data, direct)
    named = parse_ssh_command("ssh root@10.0.0.5 -L 8080:localhost:80", name="lab-direct")
    plan = plan_add(data, named, name_given=True)
    assert [h.name for h in plan.hosts] == ["lab-direct"] and not plan.reused
    same = parse_ssh_command("ssh -J me@bastion1.example.org root@10.0.0.5 -L 8080:localhost:80")
    assert plan_add(data, same).reused


def test_plan_reuses_a_saved_jump_host() -> None:
    data = _saved("ssh -p 2200 j@gate.example.org")
    plan = plan_add(data, parse_ssh_command("ssh -J j@gate.example.org:2200 me@10.0.0.5"))
    assert plan.jump_reused == "example"  # gate.example.org's default name
    assert [(h.name, h.jump) for h in plan.hosts] == [("10-0-0-5", "example")]


def test_plan_a_bare_jump_name_is_the_saved_host_of_that_name() -> None:
    data = ConfigData()
    bastion = parse_ssh_command("ssh -p 2222 u@bastion.example", name="bastion")
    data.hosts["bastion"] = plan_add(data, bastion, name_given=True).hosts[0]
    plan = plan_add(data, parse_ssh_command("ssh -J bastion inner@10.1.1.1"))
    assert plan.jump_reused == "bastion"
    assert [(h.name, h.hostname, h.jump) for h in plan.hosts] == [
        ("10-1-1-1", "10.1.1.1", "bastion")
    ]
    # With a user or a port, -J is the saved host with that user or port, as ssh reads
    # `-J other@bastion` with a `Host bastion` block: a new host under a free name.
    for jump, destination in (
        ("other@bastion", "other@bastion.example:2222"),
        ("bastion:2200", "u@bastion.example:2200"),
    ):
        plan = plan_add(data, parse_ssh_command(f"ssh -J {jump} inner@10.1.1.1"))
        assert [(h.name, h.destination, h.jump) for h in plan.hosts] == [
            ("bastion-2", destination, None),
            ("10-1-1-1", "inner@10.1.1.1:22", "bastion-2"),
        ]


def test_plan_twice_is_nothing_and_a_second_bind_address_gets_its_own_name() -> None:
    data = _saved(TUTORIAL_TUNNEL)
    again = plan_add(data, parse_ssh_command(TUTORIAL_TUNNEL))
    assert not again.changes and [t.name for t in again.kept] == ["intern-ai-7860"]
    other_bind = plan_add(data, parse_ssh_command(TUTORIAL_LOGIN + " -L 127.0.0.2:7860:db:5432"))
    assert [t.name for t in other_bind.tunnels] == ["intern-ai-7860-2"]
    with pytest.raises(ConfigError, match="already used by tunnel intern-ai-7860"):
        plan_add(data, parse_ssh_command("ssh me@other.example.org -L 0.0.0.0:7860:db:5432"))


def test_jump_none_means_no_jump_host_as_in_ssh() -> None:
    for line in ("ssh -J none me@gpu.example.org", "ssh -o ProxyJump=none me@gpu.example.org"):
        parsed = parse_ssh_command(line)
        assert parsed.host.jump is None and parsed.jump_host is None


def test_config_block_refuses_a_path_ssh_config_cannot_hold() -> None:
    host = HostSpec("gpu", "gpu.example.org", identity_file='/home/me/keys/my "work" key')
    with pytest.raises(DevtuiError, match="double quote"):
        to_ssh_config_block(host)


# ---------------------------------------------------------------------------------------------
# Read as OpenSSH reads it (tests/test_ssh_g.py checks the same against `ssh -G`)


@pytest.mark.parametrize(
    "line, destination",
    [
        # ssh keeps the first value it obtains, wherever it comes from.
        ("ssh -l alice bob@host", "alice@host:22"),
        ("ssh bob@host -l alice", "bob@host:22"),
        ("ssh -p 37367 ssh://h:2222", "h:37367"),
        ("ssh ssh://h:2222 -p 37367", "h:2222"),
        ("ssh -p 1 -p 2 h", "h:1"),
        ("ssh -p 1 -p x h", "h:1"),  # ssh does not even read a second -p
        ("ssh -o Port=5 -p 6 h", "h:5"),
        ("ssh -o User=b -l a -o User=c h", "b@h:22"),
        # A quoted line passed as one word, starting with an option (devtui add '-p 443 ...').
        (["-p 443 admin@host"], "admin@host:443"),
        (["ssh", "-p 443 admin@host"], "admin@host:443"),  # the CLI gave it an ssh word
        ("ssh -o HostName=%h.example.com web", "web.example.com:22"),
        ("ssh -o 'HostName %%h-x.example.com' web", "%h-x.example.com:22"),
    ],
)
def test_the_first_value_wins_as_in_ssh(line: str | list[str], destination: str) -> None:
    if destination.startswith("%"):  # %% is a literal percent: not a valid host name
        with pytest.raises(SshCommandError):
            parse_ssh_command(line)
        return
    assert parse_ssh_command(line).host.destination == destination


def test_option_values_are_read_as_ssh_config_lines() -> None:
    parsed = parse_ssh_command(
        "ssh -o 'IdentityFile=\"/k/my key\"' -o 'LocalForward=8080 db:5432' "
        "-o 'LocalForward 8081 db:5433 # ops' -i /k/second h"
    )
    assert parsed.host.identity_file == "/k/my key"  # quotes grouped, not kept
    assert forwards(parsed.tunnels) == [
        ("local", "127.0.0.1:8080", "db:5432"),
        ("local", "127.0.0.1:8081", "db:5433"),  # a second -o LocalForward is kept too
    ]
    # ssh tries both keys, in that order; so does devtui.
    assert parsed.host.identity_files == ("/k/my key", "/k/second")
    assert not any("/k/second" in note for note in parsed.notes)


@pytest.mark.parametrize(
    "line, reason",
    [
        ("ssh -J a -J b h", "only a single -J"),
        ("ssh -o ProxyJump=a -J b h", "only a single -J"),
        ("ssh -o 'ProxyCommand=nc %h %p' -J b h", "cannot use -J with ProxyCommand"),
        ("ssh -J h h", "jumphost loop"),
        ("ssh -J ::1 h", "IPv6 address in brackets"),
        ("ssh -f h", "cannot fork into background"),
        ("ssh -o HostName=%p.example.com h", "only the tokens %h and %%"),
        ("ssh -o Compression=maybe h", 'unsupported option "maybe"'),
        ("ssh -o 'Port 22 23' h", "extra arguments"),
        ("ssh -o 'IdentityFile \"/k/a' h", "invalid quotes"),
        ("ssh -R 1080:h h", "'h' is not a port number"),
        ("ssh -o 'RemoteForward 1080 h:80 x' h", "extra arguments"),
    ],
)
def test_lines_ssh_refuses_are_refused_with_its_reason(line: str, reason: str) -> None:
    with pytest.raises(SshCommandError, match=re.escape(reason)) as caught:
        parse_ssh_command(line)
    assert "\n" not in str(caught.value)


def test_a_jump_chain_becomes_hosts_each_through_the_one_before() -> None:
    parsed = parse_ssh_command("ssh -J ops@gw.corp.example:2200,gw.corp.example me@10.0.0.5")
    plan = plan_add(ConfigData(), parsed)
    assert [(h.name, h.destination, h.jump) for h in plan.hosts] == [
        ("gw", "ops@gw.corp.example:2200", None),
        ("gw-2", "gw.corp.example:22", "gw"),  # the same name, kept apart
        ("10-0-0-5", "me@10.0.0.5:22", "gw-2"),
    ]
    # Pasting the chain again adds nothing: every hop is found by its route.
    data = ConfigData(hosts={h.name: h for h in plan.hosts})
    again = plan_add(data, parsed)
    assert again.hosts == [] and again.reused


def test_safety_settings_are_said_even_without_tunnels() -> None:
    parsed = parse_ssh_command("ssh -g -o ForwardAgent=yes -o StrictHostKeyChecking=off h")
    assert parsed.host.forward_agent is False
    text = " ".join(parsed.notes)
    assert "-g ignored" in text and "agent forwarding" in text
    assert "StrictHostKeyChecking=off is not obeyed" in text


def test_a_parsed_line_made_with_only_jump_host_still_plans_its_jump() -> None:
    # ParsedCommand as callers built it before chains: one jump host, no jump_hosts list.
    parsed = parse_ssh_command("ssh me@10.0.0.5")
    gate = HostSpec("gate", "gate.example", 2200, "j")
    parsed = replace(parsed, jump_host=gate, host=replace(parsed.host, jump="gate"))
    plan = plan_add(ConfigData(), parsed)
    assert [(h.name, h.jump) for h in plan.hosts] == [("gate", None), ("10-0-0-5", "gate")]


@pytest.mark.parametrize(
    "line, listen",
    [
        ("ssh -R 1080 h", "127.0.0.1:1080"),  # ssh asks for the remote's loopback
        ("ssh -R localhost:1080 h", "127.0.0.1:1080"),
        ("ssh -R 0.0.0.0:1080 h", "0.0.0.0:1080"),
        ("ssh -R '*:1080' h", "0.0.0.0:1080"),
        ("ssh -R [::1]:1080 h", "[::1]:1080"),
        ("ssh -o RemoteForward=1080 h", "127.0.0.1:1080"),
        ("ssh -o 'RemoteForward 127.0.0.2:1080' h", "127.0.0.2:1080"),
        ("ssh -NR 1080 h", "127.0.0.1:1080"),
    ],
)
def test_reverse_socks_lines_become_remote_tunnels_without_target(line: str, listen: str) -> None:
    parsed = parse_ssh_command(line)
    [tunnel] = parsed.tunnels
    assert (tunnel.kind, str(tunnel.listen), tunnel.target) == ("remote", listen, None)
    assert tunnel.reverse_socks and tunnel.name == "h-rsocks1080"
    assert tunnel.describe() == f"remote {listen} -> SOCKS (from this machine; to public) via h"
    # Beyond the remote's loopback: a note says who could use it.
    exposed = [n for n in parsed.notes if "reverse SOCKS proxy" in n]
    assert bool(exposed) == (not tunnel.listen.loopback), parsed.notes
    # Export writes it back the way ssh reads it: no target.
    args = to_ssh_args(parsed.host, parsed.tunnels)
    assert args[args.index("-R") + 1] == listen
    assert f"    RemoteForward {listen}\n" in to_ssh_config_block(parsed.host, parsed.tunnels)
    again = parse_ssh_command(["ssh", *args])
    assert [(t.kind, t.listen, t.target) for t in again.tunnels] == [
        ("remote", tunnel.listen, None)
    ]


def test_a_reverse_socks_and_a_remote_forward_on_one_port_clash() -> None:
    parsed = parse_ssh_command("ssh -R 9000 -R 9000:localhost:80 h")
    with pytest.raises(ConfigError, match="already used by tunnel h-rsocks9000"):
        plan_add(ConfigData(), parsed)


@pytest.mark.parametrize(
    "line, flagged",
    [
        ("ssh -R 8080:127.0.0.1:80 h", False),
        ("ssh -R localhost:8080:127.0.0.1:80 h", False),
        ("ssh -R 0.0.0.0:8080:127.0.0.1:80 h", True),
        ("ssh -R '*:8080:127.0.0.1:80' h", True),
        ("ssh -R 0:8080:127.0.0.1:80 h", True),
        ("ssh -R 192.168.1.5:8080:127.0.0.1:80 h", True),
    ],
)
def test_a_remote_forward_beyond_the_remote_loopback_is_said_out_loud(
    line: str, flagged: bool
) -> None:
    """-R with a bind address others can reach (where the remote sshd allows it) lets them
    through to the target from this machine: the paste says so, as for -L and -D."""
    parsed = parse_ssh_command(line)
    [tunnel] = parsed.tunnels
    assert tunnel.listen.exposed == flagged
    said = [n for n in parsed.notes if "of the remote" in n and "127.0.0.1:80" in n]
    assert bool(said) == flagged, parsed.notes
    assert all(note.host == "h" for note in said)
