"""sshcore.ops: the operations both front ends present, called as the dashboard calls them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sshcore import ops
from sshcore.config import Config
from sshcore.errors import ConfigError, SshCommandError
from sshcore.model import display_path

TUTORIAL_TUNNEL = (
    "ssh -p 37367 root@ssh.intern-ai.org.cn -CNg -L 7860:127.0.0.1:7860 -o StrictHostKeyChecking=no"
)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config.load(tmp_path / "devtui.toml")


def test_paste_the_tutorial_line(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    done = ops.add_from_line(config, TUTORIAL_TUNNEL)
    assert done.changed and done.host == "intern-ai"
    assert [h.name for h in done.hosts] == ["intern-ai"]
    assert [(t.name, str(t.listen)) for t in done.tunnels] == [("intern-ai-7860", "127.0.0.1:7860")]
    assert done.lines[:2] == [
        "Added host intern-ai: root@ssh.intern-ai.org.cn:37367",
        "Added tunnel intern-ai-7860: local 127.0.0.1:7860 -> 127.0.0.1:7860 via intern-ai",
    ]
    # The safe defaults are said, not silently applied.
    notes = [line for line in done.lines if line.startswith("note: ")]
    assert any(re.search(r"-g ignored: tunnels listen on 127\.0\.0\.1 only", n) for n in notes)
    assert any("StrictHostKeyChecking=no is not obeyed" in n for n in notes)
    assert done.lines[-1] == f"Saved to {config.path}"
    # Saved, and read back by a fresh load as the same host and tunnel.
    again = Config.load(config.path)
    assert set(again.hosts) == {"intern-ai"} and set(again.tunnels) == {"intern-ai-7860"}
    assert capsys.readouterr() == ("", "")  # a dashboard worker must not print


def test_pasting_twice_saves_nothing(config: Config) -> None:
    ops.add_from_line(config, TUTORIAL_TUNNEL)
    before = config.path.read_text()
    again = ops.add_from_line(Config.load(config.path), TUTORIAL_TUNNEL)
    assert not again.changed
    assert again.host == "intern-ai" and again.hosts == [] and again.tunnels == []
    assert "Host intern-ai is already saved (root@ssh.intern-ai.org.cn:37367): used as it is" in (
        again.lines
    )
    assert again.lines[-1] == "Nothing new to save"
    assert config.path.read_text() == before


def test_the_words_of_an_unquoted_line(config: Config) -> None:
    done = ops.add_from_line(config, ["ssh", "-p", "2222", "me@box.example.org"], name="box")
    assert done.host == "box" and done.lines[0] == "Added host box: me@box.example.org:2222"


@pytest.mark.parametrize(
    ("line", "token"), [("ssh -p abc root@h", "'-p abc'"), ("ssh -CZ root@h", "'-CZ'")]
)
def test_a_bad_line_names_the_token_and_saves_nothing(
    config: Config, line: str, token: str
) -> None:
    with pytest.raises(SshCommandError) as e:
        ops.add_from_line(config, line)
    assert token in str(e.value)
    assert not config.path.exists()


def test_new_tunnel_is_checked_but_not_saved(config: Config) -> None:
    ops.add_from_line(config, TUTORIAL_TUNNEL)
    before = config.path.read_text()
    tunnel = ops.new_tunnel(config, "intern-ai", "local", "8888:localhost:8888")
    assert (tunnel.name, str(tunnel.listen), tunnel.host) == (
        "intern-ai-8888",
        "127.0.0.1:8888",
        "intern-ai",
    )
    assert config.path.read_text() == before and "intern-ai-8888" not in config.tunnels

    # A listen port another tunnel holds: names that tunnel; nothing written.
    with pytest.raises(ConfigError) as busy:
        ops.new_tunnel(config, "intern-ai", "local", "7860:127.0.0.1:80")
    assert "127.0.0.1:7860 is already used by tunnel intern-ai-7860" in str(busy.value)
    # A name that is taken.
    with pytest.raises(ConfigError) as taken:
        ops.new_tunnel(config, "intern-ai", "dynamic", "1080", name="intern-ai-7860")
    assert "a tunnel named 'intern-ai-7860' already exists" in str(taken.value)
    # A bad spec or name says which, and which field it is.
    with pytest.raises(ops.UsageError) as spec:
        ops.new_tunnel(config, "intern-ai", "local", "abc")
    assert spec.value.field == "spec" and "'abc'" in str(spec.value)
    with pytest.raises(ops.UsageError) as name:
        ops.new_tunnel(config, "intern-ai", "local", "9000:x:9000", name="bad name")
    assert name.value.field == "name" and "'bad name'" in str(name.value)
    with pytest.raises(ops.NotFoundError, match="no host named 'nope'"):
        ops.new_tunnel(config, "nope", "local", "9000:x:9000")
    assert config.path.read_text() == before


def test_add_tunnel_saves_and_notes_all_interfaces(config: Config) -> None:
    ops.add_from_line(config, "ssh me@gpu.example.org")
    done = ops.add_tunnel(config, "gpu", "dynamic", "0.0.0.0:1080", autostart=True)
    assert done.changed
    assert done.lines == [
        "Added tunnel gpu-socks1080: dynamic 0.0.0.0:1080 (SOCKS) via gpu",
        "note: 0.0.0.0:1080 listens on all interfaces: other machines can use it",
    ]
    saved = Config.load(config.path).tunnels["gpu-socks1080"]
    assert saved.autostart and saved.kind == "dynamic"


def test_remove_host_and_tunnel(config: Config) -> None:
    ops.add_from_line(config, TUTORIAL_TUNNEL)
    ops.add_from_line(config, "ssh -D 1080 me@other.example.com", name="other")
    assert ops.remove_tunnel(config, "other-socks1080").lines == ["Removed tunnel other-socks1080"]
    done = ops.remove_host(config, "intern-ai")
    assert done.lines == ["Removed host intern-ai", "Removed its tunnels too: intern-ai-7860"]
    assert set(Config.load(config.path).hosts) == {"other"}
    with pytest.raises(ConfigError, match="no host named 'intern-ai'"):
        ops.remove_host(config, "intern-ai")


def test_import_export_and_text(config: Config, tmp_path: Path) -> None:
    source = tmp_path / "ssh_config"
    source.write_text("Host gpu\n    HostName gpu.example.org\n    User me\n    Port 2222\n")
    done = ops.import_ssh_config(config, source, explicit=True)
    assert done.changed and done.lines == ["Imported host gpu: me@gpu.example.org:2222"]
    again = ops.import_ssh_config(config, source, explicit=True)
    assert not again.changed and again.lines == [f"Nothing new to import from {source}"]
    with pytest.raises(Exception, match="does not exist; give the path"):
        ops.import_ssh_config(config, tmp_path / "typo", explicit=True)
    quiet = ops.import_ssh_config(config, tmp_path / "typo")
    assert quiet.lines == [f"{tmp_path / 'typo'} does not exist: nothing to import"]

    assert ops.host_as_text(config, "gpu", "command") == "ssh -p 2222 me@gpu.example.org"
    assert ops.host_as_text(config, "gpu", "config").startswith("Host gpu\n    HostName gpu")
    target = tmp_path / "out_config"
    wrote = ops.export_host(config, "gpu", target)
    assert wrote.changed and "Host gpu" in target.read_text()
    kept = ops.export_host(config, "gpu", target)
    assert not kept.changed
    assert kept.lines == [f"{target} already has a Host gpu block; left it as it is"]


def test_check_config(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    assert ops.check_config(path) == (
        True,
        [f"OK: 0 hosts, 0 tunnels in {path} (file does not exist yet: empty config)"],
    )
    path.write_text('[hosts.a]\nhostname = "a"\nport = 0\nshoe_size = 44\n')
    ok, lines = ops.check_config(path)
    assert not ok
    assert lines == [
        f"error: {path}:3: hosts.a.port: port 0 is outside 1-65535",
        f"warning: {path}:4: hosts.a.shoe_size: unknown key (kept, ignored)",
    ]


def test_key_install_words_and_identity(config: Config, tmp_path: Path) -> None:
    from sshcore import keys

    ops.add_from_line(config, "ssh me@gpu.example.org")
    key = tmp_path / "id_test"
    info = keys.KeyInfo(path=key, name=str(key), has_private=True)
    fresh = keys.InstallResult(added=True, method="sftp", created_dir=True, created_file=True)
    assert ops.install_lines(fresh, True, info, "gpu") == [
        "Added the key to ~/.ssh/authorized_keys on gpu (created ~/.ssh (mode 700); "
        "created ~/.ssh/authorized_keys (mode 600)).",
        f"Logged in to gpu with {display_path(key)} alone: the key works.",
    ]
    there = keys.InstallResult(added=False, method="shell")
    lines = ops.install_lines(there, None, info, "gpu")
    assert lines[0] == "The key was already in ~/.ssh/authorized_keys on gpu; nothing changed."
    assert "did not test the login" in lines[1] and "devtui hosts test gpu" in lines[1]

    assert not ops.uses_key(config, "gpu", key)
    done = ops.set_identity(config, "gpu", key)
    assert done.changed and done.lines == [
        f'Set identity_file = "{display_path(key)}" for gpu in {config.path}.'
    ]
    assert ops.uses_key(Config.load(config.path), "gpu", key)


def test_a_multi_hop_host_exports_as_the_whole_chain(tmp_path: Path) -> None:
    """`-J a,b`: an exported line that named only the last hop would skip the first."""
    path = tmp_path / "config.toml"
    path.write_text(
        '[hosts.edge]\nhostname = "edge.example.org"\n\n'
        '[hosts.inner]\nhostname = "inner.corp"\njump = "edge"\n\n'
        '[hosts.gpu]\nhostname = "10.0.0.7"\nuser = "alice"\njump = "inner"\n'
    )
    line = ops.host_as_text(Config.load(path), "gpu", "command")
    assert "-J edge.example.org,inner.corp" in line and line.endswith("alice@10.0.0.7")
