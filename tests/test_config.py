"""The TOML config file: validation messages, comment-keeping edits, crash-safe saves."""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sshcore.atomic
import sshcore.config
from sshcore.config import Config, default_config_path, validate_text
from sshcore.errors import ConfigError
from sshcore.model import Endpoint, HostSpec, TunnelSpec, listens_clash

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HAND_WRITTEN = """\
# devtui config, written by hand
# (two lines of header)

[settings]
keepalive_interval = 10   # seconds
known_hosts = "~/.ssh/known_hosts"

# the tutorial's machine
[hosts.intern]
hostname = "ssh.intern-ai.org.cn"  # from the tutorial
port = 37367
user = "root"
colour = "green"   # not a devtui key: kept

# a second box
# (two comment lines)
[hosts.lab]
hostname = "10.0.0.5"

# gradio, see the tutorial
[tunnels.gradio]
host = "intern"
kind = "local"
listen = "127.0.0.1:7860"   # local side
target = "127.0.0.1:7860"

# end of file
"""

LAB_BLOCK = """\
# a second box
# (two comment lines)
[hosts.lab]
hostname = "10.0.0.5"

"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# Loading


def test_missing_file_is_an_empty_config(tmp_path: Path) -> None:
    config = Config.load(tmp_path / "nope" / "config.toml")
    assert config.hosts == {} and config.tunnels == {} and config.warnings == []
    assert not (tmp_path / "nope").exists()


def test_hand_written_file_loads(tmp_path: Path) -> None:
    config = Config.load(write(tmp_path, HAND_WRITTEN))
    assert config.settings.keepalive_interval == 10
    assert config.hosts["intern"] == HostSpec(
        "intern", "ssh.intern-ai.org.cn", port=37367, user="root"
    )
    assert config.hosts["lab"].port == 22
    assert config.tunnels["gradio"] == TunnelSpec(
        "gradio", "intern", "local", Endpoint("127.0.0.1", 7860), Endpoint("127.0.0.1", 7860)
    )


def test_devtui_config_env_var_overrides_default_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVTUI_CONFIG", str(tmp_path / "elsewhere.toml"))
    assert default_config_path() == tmp_path / "elsewhere.toml"
    monkeypatch.delenv("DEVTUI_CONFIG")
    assert default_config_path().name == "config.toml"
    assert "devtui" in str(default_config_path())


# ---------------------------------------------------------------------------------------------
# Validation: file, line, key, and what is wrong

HOST = '[hosts.a]\nhostname = "a.example.com"\n'
TUNNEL = '[tunnels.t]\nhost = "a"\nlisten = "8080"\ntarget = "127.0.0.1:80"\n'


@pytest.mark.parametrize(
    ("text", "line", "key", "what"),
    [
        ('[hosts.a]\nhostname = "a"\nport = \n', 3, None, "not valid TOML"),
        ('[hosts.a]\nhostname = "a"\nport = \n', 3, None, "column"),
        ('[hosts.a]\nhostname = "a"\nhostname = "b"\n', 3, None, "not valid TOML"),
        ("[hosts.a\n", 1, None, "not valid TOML"),
        (HOST + "port = 70000\n", 3, "hosts.a.port", "outside 1-65535"),
        (HOST + "port = 0\n", 3, "hosts.a.port", "outside 1-65535"),
        (HOST + "port = true\n", 3, "hosts.a.port", "must be a number"),
        (HOST + 'port = "22"\n', 3, "hosts.a.port", "must be a number"),
        ('[hosts.a]\nhostname = "a;reboot"\n', 2, "hosts.a.hostname", "not a host name"),
        ('[hosts.a]\nhostname = "-oProxyCommand=x"\n', 2, "hosts.a.hostname", "'-'"),
        ('[hosts.a]\nhostname = "a"\nuser = "root; ls"\n', 3, "hosts.a.user", "user name"),
        ("[hosts.a]\nport = 22\n", 1, "hosts.a", "hostname is missing"),
        ('[hosts."my box"]\nhostname = "a"\n', 1, "hosts.my box", "'my box'"),
        ('[hosts."a;b"]\nhostname = "a"\n', 1, "hosts.a;b", "may only contain"),
        ('[hosts."$(reboot)"]\nhostname = "a"\n', 1, "hosts.$(reboot)", "may only contain"),
        ('[hosts.-a]\nhostname = "a"\n', 1, "hosts.-a", "must not start with '-'"),
        (HOST + "\n" + TUNNEL.replace("t]", "-t]"), 4, "tunnels.-t", "must not start with '-'"),
        (
            HOST + '[tunnels."t t"]\nhost = "a"\nlisten = "1"\ntarget = "h:1"\n',
            3,
            "tunnels.t t",
            "",
        ),
        (HOST + TUNNEL + 'kind = "sideways"\n', 7, "tunnels.t.kind", "unknown tunnel kind"),
        (HOST + TUNNEL.replace('"a"', '"b"'), 4, "tunnels.t.host", "no host named 'b'"),
        (HOST + TUNNEL.replace('"8080"', '"8080:x"'), 5, "tunnels.t.listen", "port number"),
        (HOST + TUNNEL + 'kind = "dynamic"\n', 6, "tunnels.t.target", "no target"),
        (
            HOST
            + TUNNEL
            + '[tunnels.u]\nhost = "a"\nkind = "dynamic"\nlisten = "127.0.0.1:8080"\n',
            10,
            "tunnels.u.listen",
            "127.0.0.1:8080 is already used by tunnel 't'",
        ),
        (
            HOST + TUNNEL + '[tunnels.u]\nhost = "a"\nlisten = "0.0.0.0:8080"\ntarget = "h:2"\n',
            9,
            "tunnels.u.listen",
            "already used by tunnel 't'",
        ),
        ("[settings]\nkeepalive_interval = -1\n", 2, "settings.keepalive_interval", "0 (off)"),
        (HOST + "port = true\n", 3, "hosts.a.port", "must be a number, not a boolean (true)"),
        (HOST + 'port = "22"\n', 3, "hosts.a.port", 'must be a number, not a string ("22")'),
        (HOST + "port = [22]\n", 3, "hosts.a.port", "must be a number, not an array"),
        (HOST + 'port = "a\\nb\\u2028"\n', 3, "hosts.a.port", 'not a string ("a\\nb\\u2028")'),
        (HOST + "forward_agent = 1\n", 3, "hosts.a.forward_agent", "not an integer (1)"),
        ("[settings]\nconnect_timeout = 1979-05-27\n", 2, "settings.connect_timeout", "a date"),
        (HOST + TUNNEL + "autostart = 1.5\n", 7, "tunnels.t.autostart", "not a float (1.5)"),
        (HOST + TUNNEL.replace('"8080"', "true"), 5, "tunnels.t.listen", "not a boolean (true)"),
        (
            HOST + TUNNEL.replace('"8080"', '"999.1.1.1:8080"'),
            5,
            "tunnels.t.listen",
            "'999.1.1.1' is not a valid IPv4 address",
        ),
        (
            HOST + TUNNEL.replace('"8080"', '"1.2.3.4.5:8080"'),
            5,
            "tunnels.t.listen",
            "not a valid IPv4 address",
        ),
        (
            HOST + TUNNEL.replace('"8080"', '"[::g]:8080"'),
            5,
            "tunnels.t.listen",
            "'::g' is not a valid IPv6 address",
        ),
        (
            HOST + TUNNEL.replace('"8080"', '"[abc]:8080"'),
            5,
            "tunnels.t.listen",
            "'abc' is not a valid IPv6 address",
        ),
        (
            HOST + TUNNEL.replace('"127.0.0.1:80"', '"300.0.0.1:80"'),
            6,
            "tunnels.t.target",
            "not a valid IPv4 address",
        ),
        ('[hosts.a]\nhostname = "10.0.0.256"\n', 2, "hosts.a.hostname", "not a valid IPv4"),
        ('[hosts.a]\nhostname = "fe80::1::2"\n', 2, "hosts.a.hostname", "not a valid IPv6"),
        (
            HOST + TUNNEL + '[tunnels.u]\nhost = "a"\nlisten = "localhost:8080"\ntarget = "h:2"\n',
            9,
            "tunnels.u.listen",
            "localhost:8080 is already used by tunnel 't'",
        ),
        (HOST + 'jump = "nowhere"\n', 3, "hosts.a.jump", "no host named 'nowhere'"),
    ],
)
def test_validation_names_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str | None, what: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        Config.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    if key is not None:
        assert f": {key}: " in message
    assert what in message
    assert "\n" not in message


def test_remote_tunnels_listen_on_the_remote_so_they_do_not_clash_with_local_ones() -> None:
    text = HOST + TUNNEL + '[tunnels.r]\nhost = "a"\nkind = "remote"\nlisten = "8080"\n'
    data, _ = validate_text(text + 'target = "127.0.0.1:80"\n')
    assert set(data.tunnels) == {"t", "r"}


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = '[hosts.a]\nhostname = "a"\nport = 0\n[hosts.b]\nhostname = "b;"\n'
    with pytest.raises(ConfigError) as caught:
        validate_text(text, "c.toml")
    errors = [caught.value, *caught.value.others]  # type: ignore[attr-defined]
    assert [str(e).split(": ")[0] for e in errors] == ["c.toml:3", "c.toml:5"]


def test_every_problem_of_one_tunnel_is_reported() -> None:
    text = HOST + '[tunnels.t]\nlisten = "abc"\nautostart = "yes"\ntarget = "h:x"\n'
    with pytest.raises(ConfigError) as caught:
        validate_text(text, "c.toml")
    errors = [caught.value, *caught.value.others]  # type: ignore[attr-defined]
    assert [str(e) for e in errors] == [
        "c.toml:3: tunnels.t: host is missing (which host does this tunnel use?)",
        "c.toml:4: tunnels.t.listen: 'abc' is not a port number",
        "c.toml:6: tunnels.t.target: 'x' is not a port number",
        'c.toml:5: tunnels.t.autostart: must be true or false, not a string ("yes")',
    ]


def test_every_problem_of_one_host_is_reported() -> None:
    text = '[hosts.a]\nhostname = "a;b"\nport = 0\nuser = "-x"\ncompression = "on"\n'
    with pytest.raises(ConfigError) as caught:
        validate_text(text, "c.toml")
    errors = [caught.value, *caught.value.others]  # type: ignore[attr-defined]
    assert [str(e).split(": ")[1] for e in errors] == [
        "hosts.a.hostname",
        "hosts.a.port",
        "hosts.a.user",
        "hosts.a.compression",
    ]


def test_unknown_keys_are_warned_about_even_when_there_are_errors() -> None:
    text = '[hosts.a]\nhostname = "a"\nprot = 2222\nport = 0\n'
    with pytest.raises(ConfigError) as caught:
        validate_text(text, "c.toml")
    assert str(caught.value) == "c.toml:4: hosts.a.port: port 0 is outside 1-65535"
    assert caught.value.warnings == [  # type: ignore[attr-defined]
        "c.toml:3: hosts.a.prot: unknown key (kept, ignored)"
    ]


@pytest.mark.parametrize(
    ("a", "b", "clash"),
    [
        ("localhost", "127.0.0.1", True),
        ("LocalHost", "::1", True),
        ("localhost", "localhost", True),
        ("::1", "0:0:0:0:0:0:0:1", True),
        ("127.0.0.1", "::1", False),
        ("localhost", "127.0.0.2", False),
        ("127.0.0.1", "0.0.0.0", True),
        ("::1", "::", True),
    ],
)
def test_listen_addresses_clash_by_what_they_bind(a: str, b: str, clash: bool) -> None:
    def local(name: str, address: str) -> TunnelSpec:
        return TunnelSpec(name, "h", "local", Endpoint(address, 8080), Endpoint("db", 5432))

    assert listens_clash(local("a", a), local("b", b)) is clash
    assert listens_clash(local("b", b), local("a", a)) is clash
    other_port = TunnelSpec("c", "h", "local", Endpoint(b, 8081), Endpoint("db", 5432))
    assert not listens_clash(local("a", a), other_port)


def test_a_key_with_a_line_break_still_gives_a_one_line_message() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_text('[hosts."a\\nb"]\nhostname = "a"\n', "c.toml")
    assert "\n" not in str(caught.value)
    assert "'a\\nb'" in str(caught.value)


def test_unknown_keys_warn_with_their_line_and_are_kept_on_save(tmp_path: Path) -> None:
    text = '[settings]\nfoo = 1\n\n[hosts.a]\nhostname = "a"\ncolour = "red"\n\n[extra]\nx = 1\n'
    path = write(tmp_path, text)
    config = Config.load(path)
    assert sorted(config.warnings) == sorted(
        [
            f"{path}:2: settings.foo: unknown key (kept, ignored)",
            f"{path}:6: hosts.a.colour: unknown key (kept, ignored)",
            f"{path}:8: extra: unknown key (kept, ignored)",
        ]
    )
    config.add_host(HostSpec("b", "b.example.com"))
    config.update_host("a", HostSpec("a", "a2.example.com"))
    saved = tomllib.loads(path.read_text())
    assert saved["settings"]["foo"] == 1
    assert saved["hosts"]["a"]["colour"] == "red"
    assert saved["extra"] == {"x": 1}


# ---------------------------------------------------------------------------------------------
# Comments, blank lines and order survive every edit


def test_add_host_keeps_everything_and_inserts_after_the_last_host(tmp_path: Path) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    Config.load(path).add_host(HostSpec("new", "new.example.com", user="me"))
    block = '[hosts.new]\nhostname = "new.example.com"\nport = 22\nuser = "me"\n\n'
    at = HAND_WRITTEN.index("# gradio, see the tutorial")
    assert path.read_text() == HAND_WRITTEN[:at] + block + HAND_WRITTEN[at:]


def test_add_tunnel_goes_before_the_end_of_file_comment(tmp_path: Path) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    spec = TunnelSpec("socks", "lab", "dynamic", Endpoint("127.0.0.1", 1080))
    Config.load(path).add_tunnel(spec)
    block = '\n[tunnels.socks]\nhost = "lab"\nkind = "dynamic"\nlisten = "127.0.0.1:1080"\n'
    at = HAND_WRITTEN.index("\n# end of file")
    assert path.read_text() == HAND_WRITTEN[:at] + block + HAND_WRITTEN[at:]


def test_remove_host_takes_its_own_comment_and_leaves_the_rest(tmp_path: Path) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    assert Config.load(path).remove_host("lab") == []
    assert path.read_text() == HAND_WRITTEN.replace(LAB_BLOCK, "")


def test_remove_host_with_tunnels_keeps_the_end_of_file_comment(tmp_path: Path) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    assert Config.load(path).remove_host("intern") == ["gradio"]
    text = path.read_text()
    assert text == (
        "# devtui config, written by hand\n"
        "# (two lines of header)\n"
        "\n"
        "[settings]\n"
        "keepalive_interval = 10   # seconds\n"
        'known_hosts = "~/.ssh/known_hosts"\n'
        "\n" + LAB_BLOCK + "# end of file\n"
    )


def test_update_host_changes_only_the_changed_lines(tmp_path: Path) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    config = Config.load(path)
    spec = dataclasses.replace(
        config.hosts["intern"], hostname="new.example.org", port=2222, identity_file="~/.ssh/k"
    )
    config.update_host("intern", spec)
    expected = (
        HAND_WRITTEN.replace('"ssh.intern-ai.org.cn"  #', '"new.example.org"  #')
        .replace("port = 37367\n", "port = 2222\n")
        .replace(
            "  # not a devtui key: kept\n",
            '  # not a devtui key: kept\nidentity_file = "~/.ssh/k"\n',
        )
    )
    assert path.read_text() == expected
    assert Config.load(path).hosts["intern"] == spec


def test_update_then_clear_a_key_removes_just_that_line(tmp_path: Path) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    config = Config.load(path)
    host = config.hosts["intern"]
    config.update_host("intern", dataclasses.replace(host, user=None))
    assert path.read_text() == HAND_WRITTEN.replace('user = "root"\n', "")


def test_add_then_remove_gives_back_the_same_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    config = Config.load(path)
    config.add(
        [HostSpec("x", "x.example.com"), HostSpec("y", "y.example.com")],
        [TunnelSpec("xt", "x", "local", Endpoint("127.0.0.1", 9000), Endpoint("db", 5432))],
    )
    config.remove_host("x")
    config.remove_host("y")
    assert path.read_text() == HAND_WRITTEN


def test_repeated_add_remove_does_not_pile_up_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    config = Config.load(path)
    for _ in range(3):
        config.add_host(HostSpec("tmp", "tmp.example.com"))
        config.remove_host("tmp")
        assert path.read_text() == ""
    path.write_text(HAND_WRITTEN)
    config = Config.load(path)
    for _ in range(3):
        config.add_host(HostSpec("tmp", "tmp.example.com"))
        config.remove_host("tmp")
        assert path.read_text() == HAND_WRITTEN


def test_a_new_key_goes_after_the_last_key_not_under_the_next_tables_comment(
    tmp_path: Path,
) -> None:
    """tomlkit files the comment that leads [hosts.b] under [hosts.a]: a key added to a
    would land below it (and seem to belong to b) if the writer let tomlkit append."""
    text = (
        '[hosts.a]\nhostname = "a.example.com"  # the lab\n\n'
        "# b: the GPU box\n# (second line)\n\n"
        '[hosts.b]\nhostname = "b.example.com"\n'
    )
    for eol in ("\n", "\r\n"):
        path = tmp_path / "config.toml"
        path.write_bytes(text.replace("\n", eol).encode())
        config = Config.load(path)
        config.update_host("a", HostSpec("a", "a.example.com", user="me", port=2222))
        expected = text.replace("# the lab\n", '# the lab\nport = 2222\nuser = "me"\n').replace(
            "\n", eol
        )
        assert path.read_bytes().decode() == expected
        config.update_host("a", HostSpec("a", "a.example.com", port=2222))
        after = text.replace("# the lab\n", "# the lab\nport = 2222\n").replace("\n", eol)
        assert path.read_bytes().decode() == after


def test_crlf_file_stays_crlf(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    original = HAND_WRITTEN.replace("\n", "\r\n")
    path.write_bytes(original.encode())
    config = Config.load(path)
    config.add_host(HostSpec("new", "new.example.com"))
    config.remove_host("new")
    assert path.read_bytes() == original.encode()
    intern = config.hosts["intern"]
    config.update_host("intern", dataclasses.replace(intern, identity_file="~/.ssh/k"))
    assert b'# not a devtui key: kept\r\nidentity_file = "~/.ssh/k"\r\n' in path.read_bytes()
    config.update_host("intern", intern)
    assert path.read_bytes() == original.encode()


def test_refused_edit_leaves_the_file_alone(tmp_path: Path) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    config = Config.load(path)
    with pytest.raises(ConfigError, match="already exists"):
        config.add_host(HostSpec("intern", "other.example.com"))
    bad = TunnelSpec("dup", "lab", "local", Endpoint("127.0.0.1", 7860), Endpoint("h", 1))
    with pytest.raises(ConfigError, match="already used by tunnel 'gradio'"):
        config.add_tunnel(bad)
    with pytest.raises(ConfigError, match="port 0 is outside"):
        config.update_host("lab", HostSpec("lab", "10.0.0.5", port=0))
    assert path.read_text() == HAND_WRITTEN
    assert not (tmp_path / "config.toml.bak").exists()
    assert set(config.hosts) == {"intern", "lab"}


# ---------------------------------------------------------------------------------------------
# Crash-safe save


class Crash(Exception):
    pass


@pytest.mark.parametrize(
    "step", ["written", "synced", "backup-copied", "before-replace", "replaced"]
)
def test_a_crash_at_any_step_leaves_old_or_new_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    config = Config.load(path)

    def checkpoint(at: str) -> None:
        if at == step:
            raise Crash(at)

    monkeypatch.setattr(sshcore.atomic, "checkpoint", checkpoint)
    with pytest.raises(Crash):
        config.add_host(HostSpec("new", "new.example.com"))
    text = path.read_text()
    new_text = HAND_WRITTEN.replace(
        "# gradio", '[hosts.new]\nhostname = "new.example.com"\nport = 22\n\n# gradio'
    )
    assert text in (HAND_WRITTEN, new_text)
    assert text == (new_text if step == "replaced" else HAND_WRITTEN)
    # No temp files left behind, whatever happened.
    assert _names(tmp_path) in (
        ["config.toml"],
        ["config.toml", "config.toml.bak"],
    )


def test_bak_holds_the_previous_version(tmp_path: Path) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    config = Config.load(path)
    config.add_host(HostSpec("one", "one.example.com"))
    after_one = path.read_text()
    assert (tmp_path / "config.toml.bak").read_text() == HAND_WRITTEN
    config.add_host(HostSpec("two", "two.example.com"))
    assert (tmp_path / "config.toml.bak").read_text() == after_one


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_new_file_is_owner_only_and_existing_mode_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    Config.load(path).add_host(HostSpec("h", "h.example.com"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o640)
    Config.load(path).add_host(HostSpec("g", "g.example.com"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# ---------------------------------------------------------------------------------------------
# Properties: valid specs round-trip; hostile strings never corrupt the file

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
# Digits and dots only read as an IPv4 address, so such a DNS name is not a valid one.
_dns = st.lists(_label, min_size=1, max_size=3).map(".".join)
hostnames = st.one_of(
    _dns.filter(lambda h: not re.fullmatch(r"[0-9.]*\.[0-9.]*", h)),
    st.ip_addresses().map(str),
).filter(lambda h: not h.startswith("-"))
names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
users = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.@\\$-]{0,15}", fullmatch=True)
ports = st.integers(1, 65535)
printable = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
    max_size=30,
)
HOSTILE = ["\n", "\r", '"', "'", "]", "[", "=", "#", "\\", "\t", "\x00", "\x7f", "\x85",
           "\u2028", "\ud800", "é", "☃", "𝄞", '"""', "'''", "\\u0041", " "]  # fmt: skip
hostile_text = st.lists(st.sampled_from(HOSTILE) | st.text(max_size=3), min_size=1, max_size=8).map(
    "".join
)


@st.composite
def configs(draw: st.DrawFn) -> tuple[list[HostSpec], list[TunnelSpec]]:
    host_names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    hosts = []
    for i, name in enumerate(host_names):
        hosts.append(
            HostSpec(
                name=name,
                hostname=draw(hostnames),
                port=draw(ports),
                user=draw(st.none() | users),
                identity_file=draw(st.none() | printable) if i % 2 else None,
                identity_files=()
                if i % 2
                else tuple(draw(st.lists(printable.filter(bool), max_size=3, unique=True))),
                jump=draw(st.none() | st.sampled_from(host_names[:i])) if i else None,
                compression=draw(st.booleans()),
                forward_agent=draw(st.booleans()),
            )
        )
    tunnels: list[TunnelSpec] = []
    for name in draw(st.lists(names, max_size=4, unique=True)):
        kind = draw(st.sampled_from(["local", "remote", "dynamic"]))
        address = draw(st.sampled_from(["127.0.0.1", "0.0.0.0", "::1", "localhost"]))
        target = None
        if kind != "dynamic":
            target = Endpoint(draw(hostnames | st.just("localhost")), draw(ports))
        tunnel = TunnelSpec(
            name,
            draw(st.sampled_from(host_names)),
            kind,
            Endpoint(address, draw(ports)),
            target,
            autostart=draw(st.booleans()),
        )
        if not any(listens_clash(tunnel, t) for t in tunnels):
            tunnels.append(tunnel)
    return hosts, tunnels


def _fresh(tmp_path: Path, prefix: str, text: str = "") -> Path:
    # Hypothesis reuses tmp_path across examples: one file per example.
    import uuid

    path = tmp_path / f"{prefix}-{uuid.uuid4().hex}.toml"
    if text:
        path.write_text(text, encoding="utf-8")
    return path


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=configs(), start=st.sampled_from(["", HAND_WRITTEN.replace("colour", "#colour")]))
def test_specs_round_trip_through_the_file(
    tmp_path: Path, spec: tuple[list[HostSpec], list[TunnelSpec]], start: str
) -> None:
    hosts, tunnels = spec
    if start:  # keep the hand-written file's names out of the way
        hosts = [dataclasses.replace(h, name="x" + h.name) for h in hosts]
        hosts = [dataclasses.replace(h, jump=h.jump and "x" + h.jump) for h in hosts]
        tunnels = [
            dataclasses.replace(t, name="x" + t.name, host="x" + t.host)
            for t in tunnels
            if t.listen.port != 7860
        ]
    path = _fresh(tmp_path, "rt", start)
    Config.load(path).add(hosts, tunnels)
    loaded = Config.load(path)
    for host in hosts:
        assert loaded.hosts[host.name] == host
    for tunnel in tunnels:
        assert loaded.tunnels[tunnel.name] == tunnel
    assert loaded.warnings == []
    if start:
        assert loaded.hosts["intern"].port == 37367 and "gradio" in loaded.tunnels
        assert "# gradio, see the tutorial\n[tunnels.gradio]\n" in path.read_text()


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=hostile_text, where=st.sampled_from(["identity_file", "name", "user", "hostname"]))
def test_hostile_strings_never_add_a_key_or_corrupt_the_file(
    tmp_path: Path, value: str, where: str
) -> None:
    path = _fresh(tmp_path, "hostile", '# mine\n[hosts.keep]\nhostname = "keep.example.com"\n')
    before = path.read_text()
    fields = {"name": "h", "hostname": "h.example.com", where: value}
    spec = HostSpec(**fields)  # type: ignore[arg-type]
    try:
        Config.load(path).add_host(spec)
    except (ConfigError, ValueError):
        assert path.read_text() == before
        return
    raw = tomllib.loads(path.read_text())
    assert list(raw) == ["hosts"]
    assert list(raw["hosts"]) == ["keep", spec.name]
    kept = where != "name" and not (where == "identity_file" and value == "")  # "": no key
    expected_keys = {"hostname", "port"} | ({where} if kept else set())
    assert set(raw["hosts"][spec.name]) == expected_keys
    assert Config.load(path).hosts[spec.name] == spec
    assert path.read_text().startswith(before)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=hostile_text, where=st.sampled_from(["identity_file", "user", "hostname", "jump"]))
def test_hostile_strings_in_an_update_touch_nothing_else(
    tmp_path: Path, value: str, where: str
) -> None:
    path = _fresh(tmp_path, "update", HAND_WRITTEN)
    config = Config.load(path)
    spec = dataclasses.replace(config.hosts["intern"], **{where: value})
    try:
        config.update_host("intern", spec)
    except ConfigError:
        assert path.read_text() == HAND_WRITTEN
        return
    text = path.read_text()
    raw = tomllib.loads(text)
    if where == "identity_file" and value == "":  # no key file: no key in the table
        where = "user"
        value = raw["hosts"]["intern"]["user"]
    assert raw["hosts"]["intern"][where] == value
    assert set(raw["hosts"]["intern"]) == {"hostname", "port", "user", "colour", where}
    assert Config.load(path).hosts["intern"] == spec
    # Only the intern table changed: the text before its header and from the next comment on.
    lab = HAND_WRITTEN.index("# a second box")
    head = HAND_WRITTEN.index("[hosts.intern]")
    assert text.startswith(HAND_WRITTEN[:head]) and text.endswith(HAND_WRITTEN[lab:])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["add-host", "add-tunnel", "remove"]), st.integers(0, 5)),
        max_size=12,
    )
)
def test_any_edits_undone_give_back_the_hand_written_bytes(
    tmp_path: Path, steps: list[tuple[str, int]]
) -> None:
    path = _fresh(tmp_path, "undo", HAND_WRITTEN)
    config = Config.load(path)
    for action, n in steps:
        host, tunnel = f"h{n}", f"t{n}"
        if action == "add-host" and host not in config.hosts:
            config.add_host(HostSpec(host, f"{host}.example.com", user="me"))
        elif action == "add-tunnel" and host in config.hosts and tunnel not in config.tunnels:
            listen = Endpoint("127.0.0.1", 9000 + n)
            config.add_tunnel(TunnelSpec(tunnel, host, "local", listen, Endpoint("db", 5432)))
        elif action == "remove" and host in config.hosts:
            config.remove_host(host)
        assert "# gradio, see the tutorial\n[tunnels.gradio]\n" in path.read_text()
        assert path.read_text().endswith("\n# end of file\n")
    for host in [h for h in config.hosts if h.startswith("h")]:
        config.remove_host(host)
    assert path.read_text() == HAND_WRITTEN


def test_an_edit_never_undoes_another_programs_save(tmp_path: Path) -> None:
    # The dashboard holds the config; meanwhile `devtui add` runs in another window.
    path = tmp_path / "config.toml"
    dashboard = Config.load(path)
    other = Config.load(path)
    other.add_host(HostSpec("from-cli", "cli.example"))
    dashboard.add_host(HostSpec("from-dashboard", "dash.example"))
    assert set(Config.load(path).hosts) == {"from-cli", "from-dashboard"}


def test_a_symlinked_config_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "devtui.toml"
    real.parent.mkdir()
    real.write_text("# mine\n")
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    Config.load(link).add_host(HostSpec("a", "a.example"))
    assert link.is_symlink()
    assert "[hosts.a]" in real.read_text() and real.read_text().startswith("# mine\n")


def test_a_file_that_cannot_be_saved_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "config.toml"
    path.write_text("# mine\n")
    config = Config.load(path)

    def held_open(*args: object) -> None:  # what Windows says when another program has it open
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("sshcore.atomic.os.replace", held_open)
    with pytest.raises(ConfigError, match="cannot save: Permission denied"):
        config.add_host(HostSpec("a", "a.example"))
    assert path.read_text() == "# mine\n"


# ---------------------------------------------------------------------------------------------
# Saves by several programs at once: one lock per file, never left behind

ROOT = Path(__file__).resolve().parent.parent

# Each adder loads the file, waits for "go" on stdin, then adds its host: all edits start at
# once, from the same stale view of the file.
ADDER = """
import sys
from pathlib import Path
from sshcore.config import Config
from sshcore.model import HostSpec
config = Config.load(Path(sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()
config.add_host(HostSpec(sys.argv[2], sys.argv[2] + ".example"))
"""

HOLDER = """
import sys
from filelock import FileLock
with FileLock(sys.argv[1] + ".lock"):
    print("held", flush=True)
    sys.stdin.readline()
"""


def _python(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _lock_of(path: Path) -> Path:
    return Path(os.path.realpath(path)).with_name(path.name + ".lock")


def _names(folder: Path) -> list[str]:
    """The files a save leaves; the OS lock's file may stay (empty) on POSIX."""
    lock = folder / "config.toml.lock"
    assert not lock.exists() or lock.stat().st_size == 0
    return sorted(p.name for p in folder.iterdir() if p != lock)


def test_saves_by_many_processes_at_once_all_land(tmp_path: Path) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    names = [f"h{i}" for i in range(10)]
    adders = [_python(ADDER, str(path), name) for name in names]
    try:
        for adder in adders:
            assert adder.stdout is not None and adder.stdout.readline() == "ready\n"
        for adder in adders:
            assert adder.stdin is not None
            adder.stdin.write("go\n")
            adder.stdin.flush()
        results = [adder.communicate(timeout=60) for adder in adders]
    finally:
        for adder in adders:
            adder.kill()
            adder.wait()
    assert [a.returncode for a in adders] == [0] * len(adders), [err for _, err in results]
    config = Config.load(path)
    assert set(config.hosts) == {"intern", "lab", *names}
    assert "# gradio, see the tutorial\n[tunnels.gradio]\n" in path.read_text()
    assert _names(tmp_path) == ["config.toml", "config.toml.bak"]


def _holder(path: Path) -> subprocess.Popen[str]:
    holder = _python(HOLDER, os.path.realpath(path))
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def _let_go(holder: subprocess.Popen[str]) -> None:
    holder.communicate("\n", timeout=30)
    assert holder.returncode == 0


def test_an_edit_waits_for_a_live_holder_then_says_so(tmp_path: Path) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    config = Config.load(path)
    config.lock_timeout = 0.2
    holder = _holder(path)
    try:
        with pytest.raises(ConfigError) as caught:
            config.add_host(HostSpec("new", "new.example.com"))
        assert str(caught.value) == (
            f"{path}: another devtui is saving this file right now; try again"
        )
        assert path.read_text() == HAND_WRITTEN
    finally:
        _let_go(holder)
    config.add_host(HostSpec("new", "new.example.com"))
    assert "new" in Config.load(path).hosts


def test_a_killed_holder_never_leaves_the_file_locked(tmp_path: Path) -> None:
    # A devtui killed mid-save (Task Manager, kill -9): the OS drops its lock with it.
    path = write(tmp_path, HAND_WRITTEN)
    holder = _holder(path)
    holder.kill()
    holder.communicate(timeout=30)
    config = Config.load(path)
    config.lock_timeout = 5  # it must not come to waiting this long
    config.add_host(HostSpec("new", "new.example.com"))
    assert "new" in Config.load(path).hosts


def test_only_the_file_and_its_backup_are_left_after_saves_and_refused_edits(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    config = Config.load(path)
    config.add_host(HostSpec("new", "new.example.com"))
    with pytest.raises(ConfigError, match="already exists"):
        config.add_host(HostSpec("new", "new.example.com"))
    with pytest.raises(ConfigError, match="no tunnel named"):
        config.remove_tunnel("nope")
    config.update_host("new", HostSpec("new", "new2.example.com"))
    assert config.remove_host("new") == []
    assert _names(tmp_path) == ["config.toml", "config.toml.bak"]


def test_the_first_save_makes_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "devtui" / "config.toml"  # %APPDATA%\devtui does not exist yet
    Config.load(path).add_host(HostSpec("new", "new.example.com"))
    assert "new" in Config.load(path).hosts


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="POSIX folder modes")
def test_a_read_only_folder_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    config = Config.load(path)
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="cannot save: Permission denied"):
            config.add_host(HostSpec("new", "new.example.com"))
    finally:
        tmp_path.chmod(0o700)
    assert _names(tmp_path) == ["config.toml"]


def test_two_unlocked_writers_backing_up_at_once_do_not_collide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # atomic_write_text is used without the lock too: the .bak copies must not share a name.
    path = write(tmp_path, "old\n")
    nested = []

    def checkpoint(step: str) -> None:
        if step == "backup-copied" and not nested:
            nested.append(step)  # the other writer runs its whole save right here
            sshcore.atomic.atomic_write_text(path, "other\n")

    monkeypatch.setattr(sshcore.atomic, "checkpoint", checkpoint)
    sshcore.atomic.atomic_write_text(path, "mine\n")
    assert nested and path.read_text() == "mine\n"
    assert (tmp_path / "config.toml.bak").read_text() == "old\n"
    assert _names(tmp_path) == ["config.toml", "config.toml.bak"]


def test_a_save_reaches_the_disk_before_it_replaces_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without fsync a power cut after the rename can leave an empty config: the rename is
    # on disk, the data not yet. The folder's fsync makes the rename itself durable (POSIX).
    path = write(tmp_path, HAND_WRITTEN)
    config = Config.load(path)
    events: list[tuple[str, int, bytes]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        content = b""
        if stat.S_ISREG(info.st_mode):  # what is in the file now (no os.pread on Windows)
            position = os.lseek(fd, 0, os.SEEK_CUR)
            os.lseek(fd, 0, os.SEEK_SET)
            content = os.read(fd, info.st_size)
            os.lseek(fd, position, os.SEEK_SET)
        events.append(("fsync", info.st_ino, content))
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == path:
            events.append(("replace", os.stat(src).st_ino, b""))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    config.add_host(HostSpec("new", "new.example.com"))
    new_text = path.read_bytes()
    assert b"[hosts.new]" in new_text
    replaced = [i for i, event in enumerate(events) if event[0] == "replace"]
    assert len(replaced) == 1, events
    at, new_inode = replaced[0], events[replaced[0]][1]
    assert ("fsync", new_inode, new_text) in events[:at]  # the data, complete, before
    if os.name == "posix":
        folder = os.stat(tmp_path).st_ino
        assert ("fsync", folder, b"") in events[at:]  # the rename, after


# ---------------------------------------------------------------------------------------------
# Files written in ways the text edits cannot handle still take every edit (through tomlkit)

INLINE = """\
# hosts as inline tables
[hosts]
a = { hostname = "a.example.com", port = 2222 }  # the first box
b.hostname = "b.example.com"

[tunnels]
t = { host = "a", listen = "8080", target = "127.0.0.1:80" }
"""


def test_inline_and_dotted_tables_take_every_edit_and_keep_their_comments(tmp_path: Path) -> None:
    path = write(tmp_path, INLINE)
    config = Config.load(path)
    assert config.hosts["a"].port == 2222 and config.hosts["b"].hostname == "b.example.com"
    config.update_host("a", HostSpec("a", "a2.example.com", port=2222, user="me"))
    config.update_host("b", HostSpec("b", "b2.example.com"))
    config.add_host(HostSpec("c", "c.example.com"))
    tunnel = config.tunnels["t"]
    config.update_tunnel("t", dataclasses.replace(tunnel, listen=Endpoint("127.0.0.1", 9090)))
    config.set_setting("theme", "nord")
    config.remove_host("b")
    text = path.read_text()
    assert "# hosts as inline tables\n" in text and "# the first box\n" in text
    loaded = Config.load(path)
    assert loaded.hosts["a"] == HostSpec("a", "a2.example.com", port=2222, user="me")
    assert set(loaded.hosts) == {"a", "c"}
    assert loaded.tunnels["t"].listen == Endpoint("127.0.0.1", 9090)
    assert tomllib.loads(text)["settings"] == {"theme": "nord"}
    assert loaded.warnings == []


# A line inside a multi-line string that looks like a header and a comment: a text edit that
# trusted it would add the host into the string, or cut the string in two.
TRAP = """\
[hosts.a]
hostname = "a.example.com"
motd = \"\"\"
[hosts.zz]
# welcome\"\"\"

[tunnels.t]
host = "a"
listen = "8080"
target = "127.0.0.1:80"
"""


def test_an_edit_means_exactly_what_it_says_even_when_the_text_misleads(tmp_path: Path) -> None:
    path = write(tmp_path, TRAP)
    motd = "[hosts.zz]\n# welcome"
    config = Config.load(path)
    config.add_host(HostSpec("new", "new.example.com"))
    config.update_host("a", HostSpec("a", "a2.example.com"))
    raw = tomllib.loads(path.read_text())
    assert raw["hosts"]["new"] == {"hostname": "new.example.com", "port": 22}
    assert raw["hosts"]["a"] == {"hostname": "a2.example.com", "port": 22, "motd": motd}
    config.remove_tunnel("t")
    config.remove_host("a")
    assert tomllib.loads(path.read_text()) == {
        "hosts": {"new": {"hostname": "new.example.com", "port": 22}}
    }


def test_hosts_written_as_one_inline_table_cannot_take_a_new_table(tmp_path: Path) -> None:
    text = 'hosts = { a = { hostname = "a.example.com" } }\n'
    path = write(tmp_path, text)
    config = Config.load(path)
    with pytest.raises(ConfigError, match="cannot make this change to the file as written"):
        config.add_host(HostSpec("b", "b.example.com"))
    assert path.read_text() == text


# ---------------------------------------------------------------------------------------------
# Settings saved from the dashboard


def test_set_setting_makes_the_settings_table_first_and_keeps_the_rest(tmp_path: Path) -> None:
    text = HAND_WRITTEN.replace("[settings]\n", "").replace(
        'keepalive_interval = 10   # seconds\nknown_hosts = "~/.ssh/known_hosts"\n\n', ""
    )
    path = write(tmp_path, text)
    config = Config.load(path)
    config.set_setting("theme", "gruvbox")
    header_end = text.index("# the tutorial's machine")
    assert path.read_text() == (
        text[:header_end] + '[settings]\ntheme = "gruvbox"\n\n' + text[header_end:]
    )
    assert not any("theme" in w for w in config.warnings + Config.load(path).warnings)


def test_set_setting_changes_one_line_of_an_existing_table(tmp_path: Path) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    config = Config.load(path)
    config.set_setting("keepalive_interval", 20)
    config.set_setting("theme", "nord")
    assert path.read_text() == HAND_WRITTEN.replace(
        "keepalive_interval = 10   # seconds\n",
        "keepalive_interval = 20   # seconds\n",
    ).replace(
        'known_hosts = "~/.ssh/known_hosts"\n',
        'known_hosts = "~/.ssh/known_hosts"\ntheme = "nord"\n',
    )
    assert config.settings.keepalive_interval == 20
    assert not any("theme" in w for w in config.warnings)


def test_set_setting_in_a_new_file_and_in_a_crlf_file(tmp_path: Path) -> None:
    fresh = tmp_path / "new" / "config.toml"
    Config.load(fresh).set_setting("theme", "nord")
    assert fresh.read_text() == '[settings]\ntheme = "nord"\n'
    path = tmp_path / "config.toml"
    path.write_bytes(HAND_WRITTEN.replace("\n", "\r\n").encode())
    Config.load(path).set_setting("theme", "nord")
    assert b'known_hosts = "~/.ssh/known_hosts"\r\ntheme = "nord"\r\n' in path.read_bytes()
    assert b"\n" not in path.read_bytes().replace(b"\r\n", b"")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("keepalive_interval", -1, ":5: settings.keepalive_interval: must be 0 (off)"),
        (
            "connect_timeout",
            "soon",
            ': settings.connect_timeout: must be a number, not a string ("soon")',
        ),
        (
            "keepalive_count_max",
            True,
            ": settings.keepalive_count_max: must be a number, not a boolean",
        ),
        ("theme", "dark\nred", ": settings.theme: must not contain control characters"),
        ("colour", "red", ": settings.colour: unknown setting (known: "),
    ],
)
def test_a_bad_setting_is_refused_and_the_file_left_alone(
    tmp_path: Path, key: str, value: str | int | bool, message: str
) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    config = Config.load(path)
    with pytest.raises(ConfigError) as caught:
        config.set_setting(key, value)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert path.read_text() == HAND_WRITTEN
    assert config.settings.keepalive_interval == 10 and config.text() == HAND_WRITTEN


# ---------------------------------------------------------------------------------------------
# Reload: the dashboard picks up what an editor or another devtui saved


def test_reload_adopts_a_changed_file_and_says_whether_it_changed(tmp_path: Path) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    config = Config.load(path)
    assert config.reload() is False
    path.write_text(HAND_WRITTEN + '\n[hosts.edited]\nhostname = "e.example.com"\n')
    assert config.reload() is True
    assert "edited" in config.hosts and config.text() == path.read_text()
    assert config.reload() is False
    config.add_host(HostSpec("mine", "m.example.com"))
    assert config.reload() is False  # its own save is not a change from outside
    path.unlink()
    assert config.reload() is True and config.hosts == {}


def test_reload_of_a_bad_file_names_the_line_and_keeps_the_last_good_state(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    config = Config.load(path)
    path.write_text(HAND_WRITTEN.replace("port = 37367", "port = 0"))
    with pytest.raises(ConfigError) as caught:
        config.reload()
    assert str(caught.value) == f"{path}:11: hosts.intern.port: port 0 is outside 1-65535"
    assert config.hosts["intern"].port == 37367 and config.text() == HAND_WRITTEN
    path.write_text(HAND_WRITTEN.replace("[hosts.lab]", "[hosts.lab"))
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:17: not valid TOML"):
        config.reload()
    assert set(config.hosts) == {"intern", "lab"}
    path.write_text(HAND_WRITTEN.replace("port = 37367", "port = 2222"))
    assert config.reload() is True and config.hosts["intern"].port == 2222


def test_a_reload_racing_a_save_never_brings_back_the_older_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dashboard reloads on its loop while a save runs in a thread: the save lands between
    # the reload's read and its adopting what it read.
    path = write(tmp_path, HAND_WRITTEN)
    config = Config.load(path)
    path.write_text(HAND_WRITTEN + '\n[hosts.external]\nhostname = "e.example.com"\n')
    real_read = sshcore.config._read
    raced: list[bool] = []

    def read(file: Path) -> str:
        text = real_read(file)
        if not raced:
            raced.append(True)
            config.add_host(HostSpec("mine", "m.example.com"))  # lands right here
        return text

    monkeypatch.setattr(sshcore.config, "_read", read)
    config.reload()
    assert raced
    assert {"external", "mine"} <= set(config.hosts)
    assert config.text() == path.read_text()


# ---------------------------------------------------------------------------------------------
# Reading stays fast: tomlkit (slow on a big file) only ever runs for a save

CHECK_IMPORTS = """
import sys
from sshcore.config import Config
config = Config.load(sys.argv[1])
assert config.hosts, "nothing loaded"
print(",".join(m for m in ("tomlkit", "filelock") if m in sys.modules))
"""


def test_loading_never_parses_with_tomlkit(tmp_path: Path) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    done = subprocess.run(
        [sys.executable, "-c", CHECK_IMPORTS, str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


# ---------------------------------------------------------------------------------------------
# Several identity files: tried in order; one is still written as identity_file


def test_one_identity_file_loads_and_is_written_as_before(tmp_path: Path) -> None:
    text = HAND_WRITTEN.replace('user = "root"\n', 'user = "root"\nidentity_file = "~/.ssh/k"\n')
    path = write(tmp_path, text)
    config = Config.load(path)
    host = config.hosts["intern"]
    assert host.identity_files == ("~/.ssh/k",) and host.identity_file == "~/.ssh/k"
    config.update_host("intern", dataclasses.replace(host, port=2222))
    assert path.read_text() == text.replace("port = 37367", "port = 2222")


def test_several_identity_files_are_written_as_a_list_and_load_in_order(tmp_path: Path) -> None:
    path = write(tmp_path, HAND_WRITTEN)
    config = Config.load(path)
    keys = ("~/.ssh/work", "C:\\keys\\old one", "~/.ssh/id_ed25519")
    spec = dataclasses.replace(config.hosts["intern"], identity_files=keys)
    config.update_host("intern", spec)
    text = path.read_text()
    assert "identity_file " not in text and "identity_files = [" in text
    assert "# from the tutorial\n" in text and "# not a devtui key: kept\n" in text
    loaded = Config.load(path).hosts["intern"]
    assert loaded.identity_files == keys and loaded.identity_file == keys[0]
    # Back to one key: the old spelling again, and the list line goes.
    config.update_host("intern", dataclasses.replace(spec, identity_files=(keys[1],)))
    text = path.read_text()
    assert "identity_files" not in text
    assert Config.load(path).hosts["intern"].identity_files == (keys[1],)


def test_setting_identity_file_sets_the_whole_list() -> None:
    spec = HostSpec("h", "h.example.com", identity_files=("a", "b"))
    assert spec.identity_file == "a"
    assert dataclasses.replace(spec, identity_file="c").identity_files == ("c",)
    assert dataclasses.replace(spec, port=2).identity_files == ("a", "b")


@pytest.mark.parametrize(
    "value, what",
    [
        ('identity_file = "a"\nidentity_files = ["b", "c"]', "identity_file both set"),
        ('identity_files = ["a", ""]', "empty path"),
        ('identity_files = ["a", "b", "a"]', "names 'a' twice"),
        ('identity_files = ["a", 3]', "an integer (3) must be a string"),
        ('identity_files = "a"', 'must be a list, not a string ("a")'),
        ('identity_files = ["a\\nb"]', "line breaks"),
        ("identity_files = [" + ", ".join(f'"k{i}"' for i in range(33)) + "]", "at most 32"),
    ],
)
def test_bad_identity_files_are_one_clear_message(value: str, what: str) -> None:
    text = f'[hosts.a]\nhostname = "a.example.com"\n{value}\n'
    with pytest.raises(ConfigError) as caught:
        validate_text(text, "c.toml")
    message = str(caught.value)
    assert message.startswith("c.toml:") and ": hosts.a.identity_file" in message, message
    assert what in message and "\n" not in message, message


@pytest.mark.parametrize("key", ["ignore_ports", "log_sources"])
def test_a_list_key_given_a_string_is_one_clear_message(key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_text(f'[hosts.a]\nhostname = "a.example.com"\n{key} = "x"\n', "c.toml")
    assert str(caught.value) == f'c.toml:3: hosts.a.{key}: must be a list, not a string ("x")'
