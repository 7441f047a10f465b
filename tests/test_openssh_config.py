"""Importing ~/.ssh/config (sshcore.openssh_config), and `devtui hosts import-ssh-config`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sshcore.config import Config
from sshcore.model import Endpoint, HostSpec, TunnelSpec
from sshcore.openssh_config import plan_import, read_ssh_config, write_host_blocks


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HOME with an empty ~/.ssh."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    return tmp_path


def ssh_config(home: Path, text: str, name: str = "config") -> Path:
    path = home / ".ssh" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


MAIN = """\
# written by VS Code Remote-SSH and by hand
Host intern
    HostName ssh.intern-ai.org.cn
    User root
    Port 37367
    IdentityFile ~/.ssh/id_ed25519
    LocalForward 7860 127.0.0.1:7860
    RemoteForward 9000 localhost:3000
    DynamicForward 1080
    ForwardAgent yes

Host a b
    HostName shared.example.com
    Port=2222

Host inner
    HostName 10.0.0.5
    ProxyJump intern

Host *.corp !skip.corp
    User corpuser

Match host intern exec "true"
    User matched

Include conf.d/*.conf

Host *
    User fallback
    Compression yes
"""


def test_host_blocks_and_their_keys(home: Path) -> None:
    ssh_config(home, MAIN)
    found = read_ssh_config()
    hosts = {h.name: h for h in found.hosts}
    assert list(hosts) == ["intern", "a", "b", "inner"]
    assert hosts["intern"] == HostSpec(
        name="intern",
        hostname="ssh.intern-ai.org.cn",
        port=37367,
        user="root",
        identity_file="~/.ssh/id_ed25519",
        compression=True,  # from Host *
        forward_agent=False,  # recorded off, with a note
    )
    # Host a b: two hosts, same settings; defaults from the wildcard block fill the gaps.
    for name in ("a", "b"):
        assert (hosts[name].hostname, hosts[name].port, hosts[name].user) == (
            "shared.example.com",
            2222,
            "fallback",
        )
    assert hosts["inner"].jump == "intern"
    tunnels = {t.name: t for t in found.tunnels}
    assert {n: (t.kind, str(t.listen), str(t.target)) for n, t in tunnels.items()} == {
        "intern-7860": ("local", "127.0.0.1:7860", "127.0.0.1:7860"),
        "intern-r9000": ("remote", "127.0.0.1:9000", "localhost:3000"),
        "intern-socks1080": ("dynamic", "127.0.0.1:1080", "None"),
    }
    notes = "\n".join(found.notes)
    assert f"{home / '.ssh' / 'config'}:23: Match block skipped" in notes
    assert "ForwardAgent yes recorded off" in notes


def test_wildcard_only_blocks_are_defaults_not_hosts(home: Path) -> None:
    ssh_config(home, "Host *\n    User everyone\nHost *.lan ?x\n    Port 2200\nHost pi.lan\n")
    found = read_ssh_config()
    assert [(h.name, h.hostname, h.user, h.port) for h in found.hosts] == [
        ("pi.lan", "pi.lan", "everyone", 2200)
    ]


def test_include_is_relative_to_dot_ssh_and_takes_globs(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main = ssh_config(home, "Include conf.d/*.conf extra\nHost top\n    HostName top.example\n")
    ssh_config(home, "Host one\n    HostName one.example\n", "conf.d/10-one.conf")
    ssh_config(home, "Host two\n    HostName two.example\n", "conf.d/20-two.conf")
    ssh_config(home, "Host skipped\n    HostName no.example\n", "conf.d/other.txt")
    ssh_config(home, "Host three\n    HostName three.example\n", "extra")
    # Read from another folder: Include still resolves against ~/.ssh.
    elsewhere = home / "work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    found = read_ssh_config(main)
    assert [h.name for h in found.hosts] == ["one", "two", "three", "top"]
    assert found.notes == []


def test_include_of_a_missing_file_is_noted(home: Path) -> None:
    ssh_config(home, "Include work.conf nothing/*.conf\nHost top\n    HostName top.example\n")
    found = read_ssh_config()
    assert [h.name for h in found.hosts] == ["top"]
    assert len(found.notes) == 1  # an empty glob is normal; a named file that is not there is not
    assert "Include work.conf" in found.notes[0] and "does not exist" in found.notes[0]


def test_include_loops_do_not_hang(home: Path) -> None:
    ssh_config(home, "Include config\nHost x\n    HostName x.example\n")
    found = read_ssh_config()
    assert [h.name for h in found.hosts] == ["x"]
    assert any("Include loop" in n for n in found.notes)


def test_missing_file_is_not_an_error(home: Path) -> None:
    found = read_ssh_config()
    assert found.hosts == [] and found.tunnels == [] and found.notes == []
    assert read_ssh_config(home / "nope").hosts == []


def test_windows_paths_and_quoted_values(home: Path) -> None:
    ssh_config(
        home,
        'Host win\n    HostName win.example\n    IdentityFile "C:\\Users\\Me Too\\.ssh\\id"\n',
    )
    (host,) = read_ssh_config().hosts
    assert host.identity_file == "C:\\Users\\Me Too\\.ssh\\id"


def test_hostile_aliases_and_values_are_skipped_with_a_note(home: Path) -> None:
    ssh_config(
        home,
        "Host -oProxyCommand=evil\n    HostName x\n"
        "Host ok\n    HostName a;reboot\n"
        "Host fine\n    HostName fine.example\n    Port 99999\n"
        "Host good\n    HostName good.example\n    User bad;user\n",
    )
    found = read_ssh_config()
    assert [(h.name, h.user) for h in found.hosts] == [("good", None)]
    assert len(found.notes) == 4


def test_first_value_wins_like_openssh(home: Path) -> None:
    ssh_config(home, "Host box\n    Port 2201\nHost box\n    Port 2202\n    HostName b\n")
    (host,) = read_ssh_config().hosts
    assert (host.hostname, host.port) == ("b", 2201)


def test_planning_twice_adds_nothing_twice(home: Path, tmp_path: Path) -> None:
    ssh_config(home, MAIN)
    config = Config.load(tmp_path / "devtui.toml")
    plan = plan_import(config.data, read_ssh_config())
    config.add(plan.hosts, plan.tunnels)
    again = plan_import(config.data, read_ssh_config())
    assert again.hosts == [] and again.tunnels == []


def test_plan_skips_tunnels_whose_port_is_taken(home: Path, tmp_path: Path) -> None:
    ssh_config(home, "Host x\n    HostName x.example\n    LocalForward 7860 localhost:80\n")
    config = Config.load(tmp_path / "devtui.toml")
    config.add_host(HostSpec("mine", "mine.example"))
    config.add_tunnel(
        TunnelSpec("gradio", "mine", "local", Endpoint("127.0.0.1", 7860), Endpoint("h", 1))
    )
    plan = plan_import(config.data, read_ssh_config())
    assert [h.name for h in plan.hosts] == ["x"]
    assert plan.tunnels == []
    assert any("taken by tunnel gradio" in n for n in plan.notes)


def test_jump_to_a_host_devtui_already_has_under_another_name(home: Path, tmp_path: Path) -> None:
    # The jump host is already saved (same address, other name): the import must point
    # the new host at the saved one instead of at a host that was never added.
    ssh_config(
        home,
        "Host gate\n    HostName gate.example\n    User j\n"
        "Host inner\n    HostName 10.0.0.5\n    ProxyJump gate\n",
    )
    config = Config.load(tmp_path / "devtui.toml")
    config.add_host(HostSpec("bastion", "gate.example", user="j"))
    plan = plan_import(config.data, read_ssh_config())
    config.add(plan.hosts, plan.tunnels)
    assert Config.load(config.path).hosts["inner"].jump == "bastion"


def test_jump_never_leads_to_a_different_machine_of_the_same_name(
    home: Path, tmp_path: Path
) -> None:
    ssh_config(
        home,
        "Host gate\n    HostName gate.example\n"
        "Host inner\n    HostName 10.0.0.5\n    ProxyJump gate\n"
        "Host deeper\n    HostName 10.0.0.6\n    ProxyJump inner\n",
    )
    config = Config.load(tmp_path / "devtui.toml")
    config.add_host(HostSpec("gate", "some.other.machine"))
    plan = plan_import(config.data, read_ssh_config())
    assert plan.hosts == []
    assert sum("skipped" in n for n in plan.notes) == 3


# ---------------------------------------------------------------------------------------------
# The CLI, run twice


def devtui(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "USERPROFILE": str(home)}
    env.pop("DEVTUI_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "tui", "--config", str(home / "devtui.toml"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_cli_import_twice_adds_nothing_twice(home: Path) -> None:
    ssh_config(home, MAIN)
    first = devtui(home, "hosts", "import-ssh-config")
    assert first.returncode == 0, first.stderr
    assert "Imported host intern: root@ssh.intern-ai.org.cn:37367" in first.stdout
    assert "Imported host a:" in first.stdout and "Imported host b:" in first.stdout
    assert "Imported tunnel intern-7860: local 127.0.0.1:7860 -> 127.0.0.1:7860" in first.stdout
    assert "Match block skipped" in first.stdout
    saved = (home / "devtui.toml").read_text()

    second = devtui(home, "hosts", "import-ssh-config")
    assert second.returncode == 0, second.stderr
    assert "Imported" not in second.stdout
    assert "Nothing new to import" in second.stdout
    assert (home / "devtui.toml").read_text() == saved

    listed = devtui(home, "hosts", "list")
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == [
        "intern",
        "a",
        "b",
        "inner",
    ]


def test_cli_import_without_ssh_config_is_not_an_error(home: Path) -> None:
    done = devtui(home, "hosts", "import-ssh-config")
    assert done.returncode == 0
    assert "does not exist: nothing to import" in done.stdout
    assert done.stderr == ""
    assert not (home / "devtui.toml").exists()


def test_cli_import_from_a_given_path(home: Path) -> None:
    other = home / "other_config"
    other.write_text("Host given\n    HostName given.example\n")
    done = devtui(home, "hosts", "import-ssh-config", str(other))
    assert done.returncode == 0, done.stderr
    assert "Imported host given: given.example:22" in done.stdout
    # A path named on purpose that is not a file is an error, not "nothing to import".
    for bad, what in ((home / "typo", "does not exist"), (home, "is a folder")):
        refused = devtui(home, "hosts", "import-ssh-config", str(bad))
        assert refused.returncode == 1 and refused.stdout == ""
        assert f"{bad} {what}" in refused.stderr and refused.stderr.count("\n") == 1


def test_cli_export_write_refuses_a_missing_folder_but_makes_dot_ssh(home: Path) -> None:
    assert devtui(home, "add", "ssh me@gpu.example.org").returncode == 0
    typo = home / "nowhere" / "deeper" / "config"
    refused = devtui(home, "hosts", "export", "gpu", "--write", str(typo))
    assert refused.returncode == 1 and "does not exist; nothing was written" in refused.stderr
    assert not (home / "nowhere").exists()
    fresh = home / "fresh"
    fresh.mkdir()
    made = devtui(fresh, "add", "ssh me@gpu.example.org")
    assert made.returncode == 0
    wrote = devtui(fresh, "hosts", "export", "gpu", "--write")
    assert wrote.returncode == 0, wrote.stderr
    assert "Host gpu" in (fresh / ".ssh" / "config").read_text()
    if os.name == "posix":
        assert (fresh / ".ssh").stat().st_mode & 0o777 == 0o700


def test_written_host_blocks_are_what_openssh_reads_and_importable(tmp_path: Path) -> None:
    target = tmp_path / "ssh_config"
    # A catch-all last, as many people write it; OpenSSH takes the first value it finds.
    target.write_text("Host old\n  HostName old.example\nHost *\n  User fallback")
    gate = HostSpec("gate", "gate.example", 2200, "j")
    inner = HostSpec("inner", "10.0.0.5", 2222, "me", identity_file="~/.ssh/id a", jump="gate")
    tunnel = TunnelSpec(
        "inner-8080", "inner", "local", Endpoint("127.0.0.1", 8080), Endpoint("localhost", 80)
    )
    assert write_host_blocks(target, [gate, inner], [tunnel]) == ["gate", "inner"]
    assert write_host_blocks(target, [gate, inner], [tunnel]) == []  # nothing twice
    assert target.read_text().startswith("Host old\n  HostName old.example\n")
    assert target.read_text().endswith("Host *\n  User fallback\n")
    seen = subprocess.run(
        ["ssh", "-F", str(target), "-G", "inner"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    ).stdout.splitlines()
    for line in ("hostname 10.0.0.5", "port 2222", "user me", "proxyjump gate"):
        assert line in seen
    assert "localforward [127.0.0.1]:8080 [localhost]:80" in seen
    found = read_ssh_config(target)
    by_name = {h.name: h for h in found.hosts}
    assert (by_name["inner"].hostname, by_name["inner"].port, by_name["inner"].jump) == (
        "10.0.0.5",
        2222,
        "gate",
    )
    assert by_name["inner"].identity_file == "~/.ssh/id a"
    assert [t.name for t in found.tunnels] == ["inner-8080"]


# ---------------------------------------------------------------------------------------------
# Read as OpenSSH reads it (tests/test_ssh_g.py checks the same against `ssh -G -F FILE ALIAS`)


def test_trailing_comments_are_not_hosts_or_values(home: Path) -> None:
    ssh_config(
        home,
        "Host web1 web2 # team\n    HostName %h.example.com # why\n"
        "    LocalForward 8080 db:5432 # ops\n",
    )
    found = read_ssh_config()
    assert [(h.name, h.hostname) for h in found.hosts] == [
        ("web1", "web1.example.com"),
        ("web2", "web2.example.com"),
    ]
    assert [t.name for t in found.tunnels] == ["web1-8080", "web2-8080"]


def test_include_inside_a_host_block_counts_only_where_that_block_does(home: Path) -> None:
    inc = ssh_config(home, "User included\nHost other\n    HostName other.example\n", "inc.conf")
    ssh_config(
        home,
        f"Host web\n    Include {inc}\n    Port 2200\nHost db\n    HostName db.example\n",
    )
    found = read_ssh_config()
    hosts = {h.name: h for h in found.hosts}
    # The lines after the Include are web's again; the included User is web's too.
    assert (hosts["web"].user, hosts["web"].port) == ("included", 2200)
    assert hosts["db"].user is None  # the Include sat in web's block only
    # `Host other` inside web's block never applies to other: ssh would not use it.
    assert "other" not in hosts
    assert any("Host other" in n and "never reads that block" in n for n in found.notes)


def test_host_patterns_match_case_sensitively(home: Path) -> None:
    ssh_config(home, "Host Web\n    Port 7\nHost web\n    Port 8\n")
    hosts = {h.name: h.port for h in read_ssh_config().hosts}
    assert hosts == {"Web": 7, "web": 8}


def test_a_jump_host_from_proxyjump_is_read_as_ssh_reads_that_hop(home: Path) -> None:
    ssh_config(
        home,
        "Host corp\n    HostName corp.internal\n"
        "Host app\n    HostName 10.0.0.9\n    ProxyJump ops@bastion.corp:2200\n"
        "Host bastion.corp\n    HostName 192.0.2.10\n    IdentityFile ~/.ssh/bastion\n"
        "Host *\n    User everyone\n",
    )
    found = read_ssh_config()
    hosts = {h.name: h for h in found.hosts}
    jump = hosts[hosts["app"].jump or ""]
    # Not named after a word of its hostname (that was `corp`, another machine), nor after
    # the alias bastion.corp, which is that machine as `everyone` on port 22.
    assert jump.name == "bastion.corp-2" and jump.name in found.jump_hosts
    assert (hosts["bastion.corp"].user, hosts["bastion.corp"].port) == ("everyone", 22)
    # ssh -l ops -p 2200 bastion.corp: its own block and Host * apply, -l/-p win.
    assert (jump.hostname, jump.port, jump.user, jump.identity_file) == (
        "192.0.2.10",
        2200,
        "ops",
        "~/.ssh/bastion",
    )
    assert hosts["corp"].hostname == "corp.internal"


def test_a_proxyjump_chain_and_loops(home: Path) -> None:
    ssh_config(
        home,
        "Host a\n    HostName a.example\n"
        "Host b\n    HostName b.example\n    ProxyJump a\n"
        "Host inner\n    ProxyJump a,b\n"
        "Host x\n    ProxyJump y\nHost y\n    ProxyJump x\n"
        "Host self\n    ProxyJump self\n",
    )
    found = read_ssh_config()
    hosts = {h.name: h for h in found.hosts}
    assert hosts["inner"].jump == "b" and hosts["b"].jump == "a"  # b through a, as ssh -J a b
    assert {"x", "y", "self"}.isdisjoint(hosts)
    notes = "\n".join(found.notes)
    assert "loop" in notes and "Host x skipped" in notes and "Host self skipped" in notes


def test_made_jump_host_names_step_aside_for_saved_hosts(home: Path, tmp_path: Path) -> None:
    ssh_config(home, "Host app\n    HostName 10.0.0.9\n    ProxyJump gate.example\n")
    config = Config.load(tmp_path / "devtui.toml")
    config.add_host(HostSpec("gate.example", "somewhere.else"))
    plan = plan_import(config.data, read_ssh_config())
    names = {h.name: h for h in plan.hosts}
    assert names["app"].jump == "gate.example-2"
    assert names["gate.example-2"].hostname == "gate.example"


def test_unsafe_settings_on_import_are_said(home: Path) -> None:
    ssh_config(
        home,
        "Host h\n    StrictHostKeyChecking no\n    GatewayPorts yes\n    ForwardAgent yes\n",
    )
    notes = "\n".join(read_ssh_config().notes)
    assert "Host h: StrictHostKeyChecking no is not obeyed" in notes
    assert "Host h: GatewayPorts yes ignored" in notes
    assert "Host h: ForwardAgent yes recorded off" in notes


def test_settings_devtui_does_not_act_on_are_named_with_their_hosts(home: Path) -> None:
    path = ssh_config(
        home,
        "Host a b\n    ControlMaster auto\n    RequestTTY yes\nHost *\n    ForwardX11 yes\n"
        "    AddKeysToAgent yes\n",
    )
    notes = read_ssh_config().notes
    assert f"{path}:2: controlmaster auto is not used by devtui (hosts a, b)" in notes
    assert f"{path}:3: requesttty yes is not used by devtui (hosts a, b)" in notes
    assert f"{path}:5: forwardx11 yes is not used by devtui (hosts a, b)" in notes
    assert not any("addkeystoagent" in n for n in notes)  # no bearing on a saved host


def test_remote_forward_without_target_imports_as_reverse_socks(home: Path, tmp_path: Path) -> None:
    path = ssh_config(
        home,
        "Host gpu\n    HostName gpu.example\n    RemoteForward 1080\n"
        "    RemoteForward 0.0.0.0:1081  # shared on purpose\n    RemoteForward [::1]:1082\n",
    )
    found = read_ssh_config()
    tunnels = {t.name: t for t in found.tunnels}
    assert {n: (t.kind, str(t.listen), t.target) for n, t in tunnels.items()} == {
        "gpu-rsocks1080": ("remote", "127.0.0.1:1080", None),
        "gpu-rsocks1081": ("remote", "0.0.0.0:1081", None),
        "gpu-rsocks1082": ("remote", "[::1]:1082", None),
    }
    exposed = [n for n in found.notes if "reverse SOCKS proxy" in n]
    assert len(exposed) == 1 and "0.0.0.0:1081" in exposed[0] and f"{path}:4" in exposed[0]
    # Saved, loaded back, and exported as ssh reads it: RemoteForward [bind:]port.
    config = Config.load(tmp_path / "devtui.toml")
    plan = plan_import(config.data, found)
    config.add(plan.hosts, plan.tunnels)
    again = Config.load(tmp_path / "devtui.toml")
    assert again.tunnels["gpu-rsocks1080"].reverse_socks
    out = tmp_path / "exported"
    write_host_blocks(out, list(again.hosts.values()), list(again.tunnels.values()))
    text = out.read_text()
    for line in ("RemoteForward 127.0.0.1:1080", "RemoteForward 0.0.0.0:1081"):
        assert f"    {line}\n" in text
    assert "    RemoteForward [::1]:1082\n" in text
    reread = read_ssh_config(out)
    assert sorted((t.listen, t.target) for t in reread.tunnels) == sorted(
        (t.listen, t.target) for t in found.tunnels
    )


def test_proxyjump_none_leaves_room_for_a_later_proxycommand(home: Path) -> None:
    # As ssh -G: ProxyJump none does not take ProxyCommand's place (it still blocks a later
    # ProxyJump); ProxyCommand none blocks both.
    ssh_config(
        home,
        "Host a\n    ProxyJump none\n    ProxyCommand nc %h %p\n"
        "Host b\n    ProxyJump none\n    ProxyJump gw\n"
        "Host c\n    ProxyCommand none\n    ProxyJump gw\n",
    )
    hosts = {h.name: h for h in read_ssh_config().hosts}
    assert (hosts["a"].proxy_command, hosts["a"].jump) == ("nc %h %p", None)
    assert (hosts["b"].proxy_command, hosts["b"].jump) == (None, None)
    assert (hosts["c"].proxy_command, hosts["c"].jump) == (None, None)
