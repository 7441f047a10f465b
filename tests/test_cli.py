"""The `devtui` command line with a temporary HOME and config: in-process (tests/cliutil.py),
and as the real installed process where that is the point (--version, no terminal, a pipe)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from cliutil import Done, run_cli

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / ("devtui.exe" if os.name == "nt" else "devtui")
TUTORIAL_LOGIN = "ssh -p 37367 root@ssh.intern-ai.org.cn"
TUTORIAL_TUNNEL = (
    "ssh -p 37367 root@ssh.intern-ai.org.cn -CNg -L 7860:127.0.0.1:7860 -o StrictHostKeyChecking=no"
)


class Cli:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.config = home / "devtui.toml"

    def __call__(
        self,
        *args: str,
        config: bool = True,
        env: dict[str, str] | None = None,
        real: bool = False,
    ) -> subprocess.CompletedProcess[str] | Done:
        """`devtui ARGS` in-process; `real=True` runs the installed console script."""
        options = ["--config", str(self.config)] if config else []
        full_env = {**os.environ, "HOME": str(self.home), "USERPROFILE": str(self.home)}
        full_env.pop("DEVTUI_CONFIG", None)
        full_env.update(env or {})
        if not real:
            return run_cli(*options, *args, env=full_env, cwd=self.home)
        command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "tui"]
        return subprocess.run(
            [*command, *options, *args],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=self.home,
            timeout=60,
        )


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    (tmp_path / ".ssh").mkdir()
    return Cli(tmp_path)


def one_error_line(done: subprocess.CompletedProcess[str] | Done) -> str:
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


# ---------------------------------------------------------------------------------------------
# Basics


def test_version(cli: Cli) -> None:
    done = cli("--version", config=False, real=True)  # the console script itself
    assert done.returncode == 0
    assert done.stdout.strip() == f"devtui {version('devtui')}"


def test_bare_devtui_without_a_terminal_prints_help_and_exits_0(cli: Cli) -> None:
    # Pipes, not a terminal: no full-screen app to drive, so the help says what there is.
    done = cli(config=False, real=True)
    assert done.returncode == 0
    assert done.stdout.startswith("usage: devtui")
    for command in ("add", "hosts", "tunnels", "check"):
        assert command in done.stdout
    assert "With no command: opens the dashboard" in " ".join(done.stdout.split())
    demo = " ".join(cli("demo", "--help", config=False).stdout.split())
    assert "Opens the dashboard on a demo host" in demo and "--check" in demo


class _Launch:
    """Stands in for tui.launch (the Textual app), recording how the CLI calls it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def run_dashboard(self, config: str | None) -> int:
        self.calls.append(("dashboard", config))
        return 3

    def run_demo(self, port: int) -> int:
        self.calls.append(("demo", port))
        return 4


def test_on_a_terminal_bare_devtui_and_demo_open_the_dashboard(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib
    import types

    from tui.cli import main

    launch = _Launch()
    module = types.ModuleType("tui.launch")
    module.run_dashboard = launch.run_dashboard  # type: ignore[attr-defined]
    module.run_demo = launch.run_demo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tui.launch", module)
    for name in ("tui.cli.main",):
        monkeypatch.setattr(importlib.import_module(name), "has_terminal", lambda: True)
    config = str(tmp_path / "c.toml")
    assert main(["--config", config]) == 3  # its exit status is devtui's
    assert main([]) == 3
    assert main(["demo", "--port", "8123"]) == 4
    assert launch.calls == [("dashboard", config), ("dashboard", None), ("demo", 8123)]
    assert capsys.readouterr().out == ""  # no help printed over the app


# ---------------------------------------------------------------------------------------------
# --json says everything the config holds


EVERY_HOST_FIELD = """
[hosts.gpu]
hostname = "gpu.example.com"
port = 2222
user = "me"
identity_files = ["~/.ssh/a", "~/.ssh/b"]
compression = true
forward_agent = true
auto_forward = "always"
ignore_ports = [22, 5432]
log_sources = ["/var/log/app.log", "cmd:journalctl -f"]
keepalive_interval = 7
keepalive_count_max = 5
connect_timeout = 9
certificate_file = "~/.ssh/a-cert.pub"
proxy_command = "nc %h %p"

[hosts.bastion]
hostname = "b.example.com"

[hosts.inner]
hostname = "10.1.2.3"
jump = "bastion"

[tunnels.web]
host = "gpu"
kind = "local"
listen = "127.0.0.1:7860"
target = "127.0.0.1:7861"
autostart = true
"""


def test_hosts_and_tunnels_list_json_name_every_field_of_the_model(cli: Cli) -> None:
    """A field added to HostSpec or TunnelSpec and left out of --json fails here."""
    import dataclasses

    from sshcore.config import Config

    cli.config.write_text(EVERY_HOST_FIELD)
    config = Config.load(cli.config)
    hosts = {h["name"]: h for h in json.loads(cli("hosts", "list", "--json").stdout)}
    for name, spec in config.hosts.items():
        for field in dataclasses.fields(spec):
            value = getattr(spec, field.name)
            expected = list(value) if isinstance(value, tuple) else value
            assert hosts[name][field.name] == expected, (name, field.name)
    gpu = hosts["gpu"]
    assert gpu["identity_files"] == ["~/.ssh/a", "~/.ssh/b"]
    assert gpu["identity_file"] == "~/.ssh/a"  # the first, as before the list
    assert gpu["log_sources"] == ["/var/log/app.log", "cmd:journalctl -f"]
    assert gpu["proxy_command"] == "nc %h %p" and gpu["keepalive_interval"] == 7
    assert gpu["tunnels"] == ["web"] and hosts["inner"]["jump"] == "bastion"
    # Every field of the config had a value other than its default somewhere.
    defaults = dataclasses.asdict(config.hosts["bastion"])
    assert all(any(h[k] != v for h in hosts.values()) for k, v in defaults.items() if k != "name")

    (web,) = json.loads(cli("tunnels", "list", "--json").stdout)
    for field in dataclasses.fields(config.tunnels["web"]):
        assert field.name in web, field.name
    assert web["target"] == "127.0.0.1:7861" and web["autostart"] is True
    assert web["route"] == "local 127.0.0.1:7860 -> 127.0.0.1:7861 via gpu"


# ---------------------------------------------------------------------------------------------
# add


def test_add_the_tutorial_lines(cli: Cli) -> None:
    done = cli("add", TUTORIAL_TUNNEL)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Added host intern-ai: root@ssh.intern-ai.org.cn:37367" in out
    assert (
        "Added tunnel intern-ai-7860: local 127.0.0.1:7860 -> 127.0.0.1:7860 via intern-ai" in out
    )
    # The safe defaults are said, not silently applied.
    assert re.search(r"note: -g ignored: tunnels listen on 127\.0\.0\.1 only.*0\.0\.0\.0:PORT", out)
    assert "note: StrictHostKeyChecking=no is not obeyed: devtui checks host keys" in out
    assert f"Saved to {cli.config}" in out
    assert done.stderr == ""

    hosts = json.loads(cli("hosts", "list", "--json").stdout)
    assert [(h["name"], h["hostname"], h["port"], h["user"]) for h in hosts] == [
        ("intern-ai", "ssh.intern-ai.org.cn", 37367, "root")
    ]
    tunnels = json.loads(cli("tunnels", "list", "--json").stdout)
    assert [(t["name"], t["host"], t["kind"], t["listen"], t["target"]) for t in tunnels] == [
        ("intern-ai-7860", "intern-ai", "local", "127.0.0.1:7860", "127.0.0.1:7860")
    ]

    # Pasting the same line again saves nothing and says so.
    before = cli.config.read_text()
    again = cli("add", TUTORIAL_TUNNEL)
    assert again.returncode == 0, again.stderr
    assert "Host intern-ai is already saved (root@ssh.intern-ai.org.cn:37367)" in again.stdout
    assert "Tunnel intern-ai-7860 is already saved" in again.stdout
    assert "Nothing new to save" in again.stdout
    assert cli.config.read_text() == before

    # An explicit new name for the same machine is a second host, as asked.
    second = cli("add", TUTORIAL_LOGIN, "--name", "intern2")
    assert second.returncode == 0, second.stderr
    assert "Added host intern2: root@ssh.intern-ai.org.cn:37367" in second.stdout
    assert "note:" not in second.stdout


def test_tutorial_order_login_line_then_tunnel_line_adds_the_tunnel_to_the_host(cli: Cli) -> None:
    # USER-WORKFLOW: step 1 pastes the login line, step 4 the -L line for the same machine.
    assert cli("add", TUTORIAL_LOGIN).returncode == 0
    done = cli("add", TUTORIAL_TUNNEL)
    assert done.returncode == 0, done.stderr
    assert "Host intern-ai is already saved" in done.stdout
    assert "Added tunnel intern-ai-7860: local 127.0.0.1:7860 -> 127.0.0.1:7860 via intern-ai" in (
        done.stdout
    )
    # A second -L line for another port goes to the same host too; a host name that
    # only differs in case is the same machine, as it is for ssh.
    other = cli("add", "ssh -p 37367 root@SSH.intern-ai.org.cn -L 8888:localhost:8888")
    assert other.returncode == 0, other.stderr
    hosts = json.loads(cli("hosts", "list", "--json").stdout)
    assert [h["name"] for h in hosts] == ["intern-ai"]
    tunnels = json.loads(cli("tunnels", "list", "--json").stdout)
    assert [(t["name"], t["host"], t["listen"]) for t in tunnels] == [
        ("intern-ai-7860", "intern-ai", "127.0.0.1:7860"),
        ("intern-ai-8888", "intern-ai", "127.0.0.1:8888"),
    ]


def test_add_refuses_a_taken_name_or_listen_port_and_changes_nothing(cli: Cli) -> None:
    assert cli("add", TUTORIAL_TUNNEL).returncode == 0
    before = cli.config.read_text()
    # Another machine under the taken name.
    clash = cli("add", "ssh root@other.example.org", "--name", "intern-ai")
    assert clash.returncode == 1
    line = one_error_line(clash)
    assert "'intern-ai' already exists (root@ssh.intern-ai.org.cn:37367)" in line
    assert clash.stdout == ""
    # Another machine wanting the same local port: names the tunnel that holds it.
    busy = cli("add", "ssh me@gpu.example.org -L 7860:127.0.0.1:7861")
    assert busy.returncode == 1
    line = one_error_line(busy)
    assert "127.0.0.1:7860 is already used by tunnel intern-ai-7860" in line
    assert cli.config.read_text() == before


def test_add_an_unquoted_line_as_the_shell_split_it(cli: Cli) -> None:
    # What PowerShell or bash hand over when the user forgets the quotes.
    done = cli(
        "add",
        "ssh",
        "-p",
        "37367",
        "root@ssh.intern-ai.org.cn",
        "-L",
        "7860:127.0.0.1:7860",
        "--name",
        "gpu",
    )
    assert done.returncode == 0, done.stderr
    assert "Added host gpu: root@ssh.intern-ai.org.cn:37367" in done.stdout
    tunnels = json.loads(cli("tunnels", "list", "--json").stdout)
    assert [(t["name"], t["listen"]) for t in tunnels] == [("gpu-7860", "127.0.0.1:7860")]
    empty = cli("add")
    assert empty.returncode == 2 and "paste the ssh command line" in empty.stderr
    # The same without its `ssh` word: the options are the line's, not add's.
    bare = cli("add", "--name", "bare", "-p", "2222", "me@bare.example.org", "-D", "1080")
    assert bare.returncode == 0, bare.stderr
    assert "Added host bare: me@bare.example.org:2222" in bare.stdout
    assert "Added tunnel bare-socks1080" in bare.stdout


def test_add_with_jump_host(cli: Cli) -> None:
    done = cli("add", "--name", "inner", "ssh -J j@gate.example.org:2200 me@10.0.0.5")
    assert done.returncode == 0, done.stderr
    hosts = {h["name"]: h for h in json.loads(cli("hosts", "list", "--json").stdout)}
    assert hosts["inner"]["jump"] == "example"
    assert (hosts["example"]["hostname"], hosts["example"]["port"]) == ("gate.example.org", 2200)
    command = cli("hosts", "export", "inner", "--as", "command")
    assert command.stdout.strip() == "ssh -J j@gate.example.org:2200 me@10.0.0.5"


@pytest.mark.parametrize(
    "text",
    [
        "ssh -p 37367 root@ssh.intern-ai.org.cn `\n  -L 7860:127.0.0.1:7860",  # PowerShell docs
        "ssh -p 37367 root@ssh.intern-ai.org.cn \\\r\n  -L 7860:127.0.0.1:7860\n",  # bash docs
    ],
)
def test_add_a_command_split_over_lines(cli: Cli, text: str) -> None:
    done = cli("add", text)
    assert done.returncode == 0, done.stderr
    assert "Added tunnel intern-ai-7860: " in done.stdout
    assert "ignored" not in done.stdout  # the -L did not become a "remote command"
    tunnels = json.loads(cli("tunnels", "list", "--json").stdout)
    assert [(t["name"], t["listen"], t["target"]) for t in tunnels] == [
        ("intern-ai-7860", "127.0.0.1:7860", "127.0.0.1:7860")
    ]


def test_add_with_a_saved_host_as_jump(cli: Cli) -> None:
    assert cli("add", "ssh -p 2222 u@bastion.example", "--name", "bastion").returncode == 0
    done = cli("add", "ssh -J bastion inner@10.1.1.1")
    assert done.returncode == 0, done.stderr
    assert "Jump host bastion is already saved: used as it is" in done.stdout
    hosts = {h["name"]: h for h in json.loads(cli("hosts", "list", "--json").stdout)}
    assert set(hosts) == {"bastion", "10-1-1-1"}
    assert hosts["10-1-1-1"]["jump"] == "bastion"
    command = cli("hosts", "export", "10-1-1-1", "--as", "command")
    assert command.stdout.strip() == "ssh -J u@bastion.example:2222 inner@10.1.1.1"


def test_add_notes_x11_forwarding(cli: Cli) -> None:
    done = cli("add", "ssh -X -t me@gpu.example.org")
    assert done.returncode == 0, done.stderr
    assert "note: -X (X11 forwarding) is not used by devtui; ignored" in done.stdout
    assert "note: -t (force a terminal) is not used by devtui; ignored" in done.stdout


def test_list_json_shapes(cli: Cli) -> None:
    assert (
        cli(
            "add", "--name", "web", "ssh -A -D 1080 -R 9000:localhost:3000 deploy@web.example.com"
        ).returncode
        == 0
    )
    hosts = json.loads(cli("hosts", "list", "--json").stdout)
    assert isinstance(hosts, list) and len(hosts) == 1
    host = hosts[0]
    assert {"name", "hostname", "port", "user"} <= set(host)
    assert type(host["port"]) is int
    assert host["forward_agent"] is False  # -A recorded off
    tunnels = json.loads(cli("tunnels", "list", "--json").stdout)
    shape = {t["kind"]: (t["listen"], t["target"]) for t in tunnels}
    assert shape == {
        "dynamic": ("127.0.0.1:1080", None),
        "remote": ("127.0.0.1:9000", "localhost:3000"),
    }
    for tunnel in tunnels:
        assert {"name", "host", "kind", "listen", "target"} <= set(tunnel)
        assert tunnel["host"] == "web"


def test_empty_lists(cli: Cli) -> None:
    assert json.loads(cli("hosts", "list", "--json").stdout) == []
    done = cli("hosts", "list")
    assert done.returncode == 0 and "No hosts yet" in done.stdout
    assert not cli.config.exists()


@pytest.mark.parametrize(
    ("line", "token"),
    [
        ("ssh -p abc root@h", "'-p abc'"),
        ("ssh -CZ root@h", "'-CZ'"),
        ("ssh 'h;reboot'", "'h;reboot'"),
        ("ssh -C -N", None),
        ("scp a b", "'scp' is not ssh: paste a line like  ssh -p 2222 user@host"),
        ("sshx root@h", "'sshx' is not ssh"),
        ("ssh @h", "the user before '@' is empty in: '@h'"),
        ("ssh -J '' me@h", "-J needs a value"),
        ("ssh -p ２２ me@h", "'-p ２２'"),
        (
            "ssh me@a.example.com\nssh -L 1:x:1 me@b.example.com",
            "paste one ssh command: the text has 2 lines; line 2 is: 'ssh -L 1:x:1 me@b.example.com'",
        ),
    ],
)
def test_unreadable_ssh_line_exits_2_with_one_line(cli: Cli, line: str, token: str | None) -> None:
    done = cli("add", line)
    assert done.returncode == 2
    message = one_error_line(done)
    assert message.startswith("devtui: cannot read that ssh command: ")
    if token:
        assert token in message
    assert not cli.config.exists()


def test_bad_name_is_refused(cli: Cli) -> None:
    for name in ("-rf", "a;b"):
        done = cli("add", f"--name={name}", "ssh me@h")
        assert done.returncode == 2
        assert repr(name) in one_error_line(done)
    assert not cli.config.exists()


# ---------------------------------------------------------------------------------------------
# hosts remove / export


def test_remove_says_which_tunnels_go_with_the_host(cli: Cli) -> None:
    cli("add", TUTORIAL_TUNNEL)
    cli("add", "--name", "other", "ssh -D 1080 me@other.example.com")
    done = cli("hosts", "remove", "intern-ai")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Removed host intern-ai",
        "Removed its tunnels too: intern-ai-7860",
    ]
    assert [t["name"] for t in json.loads(cli("tunnels", "list", "--json").stdout)] == [
        "other-socks1080"
    ]
    missing = cli("hosts", "remove", "intern-ai")
    assert missing.returncode == 1
    assert "no host named 'intern-ai'" in one_error_line(missing)


def test_export_as_config_and_command(cli: Cli) -> None:
    cli("add", TUTORIAL_TUNNEL)
    block = cli("hosts", "export", "intern-ai", "--as", "config")
    assert block.returncode == 0
    assert block.stdout == (
        "Host intern-ai\n"
        "    HostName ssh.intern-ai.org.cn\n"
        "    User root\n"
        "    Port 37367\n"
        "    Compression yes\n"
        "    LocalForward 127.0.0.1:7860 127.0.0.1:7860\n"
    )
    command = cli("hosts", "export", "intern-ai", "--as", "command")
    assert command.stdout == (
        "ssh -p 37367 -C -N -L 127.0.0.1:7860:127.0.0.1:7860 root@ssh.intern-ai.org.cn\n"
    )
    # What export prints, add reads back as the same host.
    cli.config.unlink()
    assert cli("add", command.stdout.strip()).returncode == 0
    assert cli("hosts", "export", "intern-ai", "--as", "command").stdout == command.stdout
    missing = cli("hosts", "export", "nope")
    assert missing.returncode == 1 and "no host named 'nope'" in one_error_line(missing)


def test_tunnels_add_errors_name_what_was_wrong(cli: Cli) -> None:
    assert cli("add", "ssh me@gpu.example.org").returncode == 0
    before = cli.config.read_text()
    cases = [
        (("gpu", "-L", "8080:localhost:80", "--name", "bad name"), 2, "--name 'bad name'"),
        (("gpu", "-L", "abc"), 2, "for -L, got: 'abc'"),
        (("nope", "-L", "8080:localhost:80"), 1, "no host named 'nope'"),
    ]
    for argv, code, message in cases:
        done = cli("tunnels", "add", *argv)
        line = one_error_line(done)
        assert done.returncode == code and message in line, (argv, line)
        assert "ssh command" not in line and str(cli.config) not in line
    assert cli.config.read_text() == before
    ok = cli("tunnels", "add", "gpu", "-L", "8080:localhost:80")
    assert ok.returncode == 0 and "Added tunnel gpu-8080" in ok.stdout


def test_a_reader_that_stops_early_is_no_error(cli: Cli) -> None:
    # `devtui hosts list | head -1`: here the reader is gone before devtui writes at all.
    assert cli("add", TUTORIAL_TUNNEL).returncode == 0
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "tui"]
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [*command, "--config", str(cli.config), "hosts", "list"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert done.returncode == 141 and done.stderr == ""


# ---------------------------------------------------------------------------------------------
# Config location and check


def test_devtui_config_env_var_overrides_the_default(cli: Cli) -> None:
    target = cli.home / "from-env.toml"
    done = cli("add", TUTORIAL_LOGIN, config=False, env={"DEVTUI_CONFIG": str(target)})
    assert done.returncode == 0, done.stderr
    assert f"Saved to {target}" in done.stdout
    assert "ssh.intern-ai.org.cn" in target.read_text()
    listed = cli("hosts", "list", "--json", config=False, env={"DEVTUI_CONFIG": str(target)})
    assert [h["name"] for h in json.loads(listed.stdout)] == ["intern-ai"]
    # --config wins over the environment variable.
    assert (
        json.loads(cli("hosts", "list", "--json", env={"DEVTUI_CONFIG": str(target)}).stdout) == []
    )


def test_check_ok_and_errors(cli: Cli) -> None:
    done = cli("check")
    assert done.returncode == 0
    assert "OK: 0 hosts, 0 tunnels" in done.stdout and "does not exist yet" in done.stdout

    cli.config.write_text(
        '[hosts.a]\nhostname = "a"\nport = 0\nshoe_size = 44\n\n[hosts.b]\nhostname = "b;"\n'
    )
    done = cli("check")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"error: {cli.config}:3: hosts.a.port: port 0 is outside 1-65535",
        f"error: {cli.config}:7: hosts.b.hostname: 'b;' is not a host name or IP address",
        f"warning: {cli.config}:4: hosts.a.shoe_size: unknown key (kept, ignored)",
    ]
    # Other commands keep to one line, and point at check for the rest.
    listed = cli("hosts", "list")
    assert listed.returncode == 1
    assert one_error_line(listed).endswith("(and 1 more: see devtui check)")

    cli.config.write_text('[hosts.a]\nhostname = "a"\nshoe_size = 44\n')
    done = cli("check")
    assert done.returncode == 0
    assert (
        done.stderr == f"warning: {cli.config}:3: hosts.a.shoe_size: unknown key (kept, ignored)\n"
    )
    assert "OK: 1 hosts, 0 tunnels" in done.stdout


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[hosts.a]\nhostname = "a"\nport = \n', ":3: not valid TOML: "),
        ('[hosts.a]\nhostname = "a"\nhostname = "b"\n', ":3: not valid TOML: "),
    ],
)
def test_malformed_toml_is_one_line_naming_file_and_line(cli: Cli, text: str, where: str) -> None:
    cli.config.write_text(text)
    check = cli("check")
    assert check.returncode == 1
    assert one_error_line(check).startswith(f"error: {cli.config}{where}")
    assert "line 3, column" in check.stderr
    listed = cli("hosts", "list")
    assert listed.returncode == 1
    assert one_error_line(listed).startswith(f"devtui: error: {cli.config}{where}")


def test_debug_shows_the_traceback(cli: Cli) -> None:
    cli.config.write_text("[hosts.a\n")
    debug = cli("--debug", "hosts", "list")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_check_accepts_config_example(cli: Cli) -> None:
    example = ROOT / "config.example.toml"
    if not example.exists():
        pytest.skip("config.example.toml is not written yet")
    done = cli("--config", str(example), "check", config=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK: ")
    assert "error" not in done.stderr
