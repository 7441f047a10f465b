"""The `devtui` command line: headless commands on the same sshcore API the dashboard uses.

Every error a user can cause ends as one line on stderr and a non-zero exit status;
`--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sshcore.api import (
    Config,
    ConfigError,
    DevtuiError,
    HostSpec,
    SshCommandError,
    TunnelSpec,
    UsageError,
    default_config_path,
)

if TYPE_CHECKING:
    from sshcore.api import ops

EXIT_ERROR = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace], int]


# A bad argument on the command line: exit status 2, like argparse's own errors.


def _out(text: str = "") -> None:
    print(text)


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def _load(args: argparse.Namespace) -> Config:
    try:
        config = Config.load(args.config)
    except ConfigError as e:
        more = len(getattr(e, "others", []))
        if more:  # one line stays one line; check lists them all
            raise DevtuiError(f"{e} (and {more} more: see devtui check)") from None
        raise
    for warning in config.warnings:
        _err(f"warning: {warning}")
    return config


# ---------------------------------------------------------------------------------------------
# add / hosts / tunnels / check


def cmd_add(args: argparse.Namespace) -> int:
    """devtui add 'SSH LINE' [--name N] [--json]"""
    from sshcore.api import ops  # here, not at the top: --version and --help start faster

    if not args.line:
        raise SshCommandError(
            "paste the ssh command line after add, e.g. devtui add 'ssh -p 2222 me@host'"
        )
    words = list(args.line)
    # `devtui add ssh ... --json --name N`: the line swallowed add's own options (ssh has
    # no long options); they are taken off its end, in any order.
    while len(words) > 1:
        if words[-1] == "--json":
            args.json, words = True, words[:-1]
        elif words[-1].startswith("--name=") and len(words[-1]) > len("--name="):
            args.name, words = words[-1][len("--name=") :], words[:-1]
        elif len(words) > 2 and words[-2] == "--name":
            args.name, words = words[-1], words[:-2]
        else:
            break
    if "--name" in words[:-1]:  # `devtui add ssh ... --name N ...`: the line swallowed it
        at = words.index("--name")
        args.name, words = words[at + 1], words[:at] + words[at + 2 :]
    # One quoted argument is a pasted line; several are the words of an unquoted one,
    # already split by the user's shell (POSIX or PowerShell).
    line = words[0] if len(words) == 1 else words
    config = _load(args)
    outcome = ops.add_from_line(config, line, args.name)
    if args.json:
        _out(
            json.dumps(
                {
                    "host": outcome.host,
                    "changed": outcome.changed,
                    **_saved_json(config, outcome.hosts, outcome.tunnels, outcome.notes),
                },
                indent=2,
            )
        )
    else:
        _show(outcome)
    return 0


def _saved_json(
    config: Config, hosts: Sequence[HostSpec], tunnels: Sequence[TunnelSpec], notes: Sequence[Any]
) -> dict[str, Any]:
    """What add / import saved, and their notes each naming its host (None: the file)."""
    return {
        "hosts": [_host_json(config, h) for h in hosts],
        "tunnels": [_tunnel_json(t) for t in tunnels],
        "notes": [n.as_json() for n in notes],
    }


def _show(outcome: ops.Outcome) -> None:
    for line in outcome.lines:
        _out(line)


def _host_json(config: Config, host: HostSpec) -> dict[str, Any]:
    return {
        **host.as_json(),
        "tunnels": [t.name for t in config.data.tunnels_of(host.name)],
    }


def _tunnel_json(tunnel: TunnelSpec) -> dict[str, Any]:
    return tunnel.as_json()


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def cmd_hosts_list(args: argparse.Namespace) -> int:
    """devtui hosts list [--json]"""
    config = _load(args)
    if args.json:
        _out(json.dumps([_host_json(config, h) for h in config.hosts.values()], indent=2))
        return 0
    if not config.hosts:
        _out(f"No hosts yet in {config.path}. Add one: devtui add 'ssh -p PORT user@host'")
        return 0
    rows = [
        [
            h.name,
            h.destination,
            h.jump or "",
            ", ".join(t.name for t in config.data.tunnels_of(h.name)),
        ]
        for h in config.hosts.values()
    ]
    _out(_table(rows, ["NAME", "DESTINATION", "JUMP", "TUNNELS"]))
    return 0


def cmd_hosts_remove(args: argparse.Namespace) -> int:
    """devtui hosts remove NAME"""
    from sshcore.api import ops  # here, not at the top: --version and --help start faster

    _show(ops.remove_host(_load(args), args.name))
    return 0


def cmd_hosts_import(args: argparse.Namespace) -> int:
    """devtui hosts import-ssh-config [PATH] [--json]"""
    from sshcore.api import ops  # here, not at the top: --version and --help start faster

    config = _load(args)
    path = Path(args.path) if args.path else None
    outcome = ops.import_ssh_config(config, path, explicit=path is not None)
    if args.json:
        saved = _saved_json(config, outcome.hosts, outcome.tunnels, outcome.notes)
        _out(json.dumps({"changed": outcome.changed, **saved}, indent=2))
    else:
        _show(outcome)
    return 0


def cmd_hosts_export(args: argparse.Namespace) -> int:
    """devtui hosts export NAME [--as command|config] [--write [PATH]]"""
    from sshcore.api import ops  # here, not at the top: --version and --help start faster

    config = _load(args)
    if args.write:
        _show(ops.export_host(config, args.name, Path(args.write)))
    else:
        _out(ops.host_as_text(config, args.name, args.format))
    return 0


def cmd_tunnels_list(args: argparse.Namespace) -> int:
    """devtui tunnels list [--json]"""
    config = _load(args)
    if args.json:
        _out(json.dumps([_tunnel_json(t) for t in config.tunnels.values()], indent=2))
        return 0
    if not config.tunnels:
        _out("No tunnels yet. Paste one: devtui add 'ssh user@host -L 8080:127.0.0.1:8080'")
        return 0
    rows = []
    for t in config.tunnels.values():
        listen = str(t.listen)
        if t.listen.all_interfaces:
            listen += " (all interfaces!)"
        elif t.kind == "remote" and t.listen.exposed:
            listen += " (not loopback!)"  # on the remote
        target = "SOCKS (from this machine)" if t.reverse_socks else str(t.target or "SOCKS")
        rows.append([t.name, t.host, t.kind, listen, target, "yes" if t.autostart else ""])
    _out(_table(rows, ["NAME", "HOST", "KIND", "LISTEN", "TARGET", "AUTOSTART"]))
    return 0


def cmd_tunnels_add(args: argparse.Namespace) -> int:
    """devtui tunnels add HOST (-L|-R|-D) SPEC [--name N] [--autostart]"""
    from sshcore.api import ops  # here, not at the top: --version and --help start faster

    config = _load(args)
    kind, spec = args.forward
    try:
        outcome = ops.add_tunnel(config, args.host, kind, spec, args.name, args.autostart)
    except ops.NotFoundError as e:
        raise DevtuiError(f"{e} (see: devtui hosts list)") from None
    except UsageError as e:
        if e.field != "name":
            raise
        raise UsageError(f"--{e}") from None
    _show(outcome)
    return 0


def cmd_tunnels_retarget(args: argparse.Namespace) -> int:
    """devtui tunnels retarget NAME PORT: point a tunnel at another port of its target."""
    config = _load(args)
    spec = config.tunnels.get(args.name)
    if spec is None:
        raise DevtuiError(f"no tunnel named {args.name!r} (see: devtui tunnels list)")
    if spec.target is None:
        raise DevtuiError(f"tunnel {args.name} is a SOCKS proxy: it has no target port")
    new = dataclasses.replace(spec, target=dataclasses.replace(spec.target, port=args.port))
    config.update_tunnel(args.name, new)
    _out(f"Tunnel {args.name}: {new.describe()} (a running devtui up uses it after a restart)")
    return 0


def cmd_tunnels_remove(args: argparse.Namespace) -> int:
    """devtui tunnels remove NAME"""
    from sshcore.api import ops  # here, not at the top: --version and --help start faster

    _show(ops.remove_tunnel(_load(args), args.name))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """devtui check: validate the config; exit 1 on any error."""
    from sshcore.api import ops  # here, not at the top: --version and --help start faster

    path = Path(args.config).expanduser() if args.config else default_config_path()
    ok, lines = ops.check_config(path)
    for line in lines:
        # Problems go to stderr, the verdict to stdout (scripts read it).
        if line.startswith(("error: ", "warning: ")):
            _err(line)
        else:
            _out(line)
    return 0 if ok else EXIT_ERROR


def has_terminal() -> bool:
    """Whether a person can see and drive a full-screen app here (stdin and stdout are a
    terminal). Pipes, scripts and CI get the headless behaviour instead."""
    return all(s is not None and s.isatty() for s in (sys.stdin, sys.stdout))


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Bare `devtui`: the dashboard on the user's config (help when there is no terminal)."""
    if not has_terminal():
        build_parser().print_help()
        return 0
    from tui.launch import run_dashboard  # Textual: loaded only for the dashboard

    return run_dashboard(args.config)


# ---------------------------------------------------------------------------------------------
# The parser

# sshcore.keys.KEY_TYPES, spelled out here: importing sshcore.keys loads asyncssh, which the
# offline commands must not wait for (tests/test_imports.py checks that both agree).
KEY_TYPES = ("ed25519", "rsa", "ecdsa")


def cmd_demo(args: argparse.Namespace) -> int:
    """devtui demo: the dashboard on a built-in demo host; with --check, or without a
    terminal, the headless demo (tui/cli/net.py). Here, not in net.py: that module's imports
    (the core, asyncssh) would come before the dashboard's first paint."""
    if args.check or not has_terminal():
        return _lazy("net", "cmd_demo_headless")(args)
    from tui.launch import run_demo  # Textual: loaded only for the dashboard

    return run_demo(args.port)


def _lazy(module: str, name: str) -> Handler:
    """The handler `name` of tui.cli.`module`, imported when that command runs: the key and
    network commands pull in asyncssh, and `devtui hosts list` should not wait for it."""

    def handler(args: argparse.Namespace) -> int:
        import importlib

        command: Handler = getattr(importlib.import_module(f"tui.cli.{module}"), name)
        return command(args)

    return handler


class _VersionAction(argparse.Action):
    """--version, reading the installed version only when asked (importlib.metadata is slow)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        import sshcore

        print(f"devtui {sshcore.__version__}")  # stdout, as argparse's own version action
        parser.exit()


def _forward_arg(kind: str, value: str) -> tuple[str, str]:
    """-L / -R / -D SPEC as (kind, SPEC)."""
    return kind, value


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, documented in --help."""
    parser = argparse.ArgumentParser(
        prog="devtui",
        description="Hosts, keys and SSH tunnels for remote development machines. "
        "With no command: opens the dashboard (hosts, tunnels, keys and logs, live; "
        "without a terminal, this help). First time? devtui demo opens it on a built-in "
        "demo host.",
    )
    parser.add_argument("--version", action=_VersionAction, help="show devtui's version and exit")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $DEVTUI_CONFIG if set, else the platform's config folder; "
        f"now: {default_config_path()})",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    add = sub.add_parser(
        "add",
        help="save a host (and its tunnels) from a pasted ssh command line",
        description="Paste the ssh line your cloud console gave you, quoted: "
        "devtui add 'ssh -p 37367 root@host -L 7860:127.0.0.1:7860'",
    )
    add.add_argument("line", nargs=argparse.REMAINDER, help="the ssh command line, quoted or not")
    add.add_argument("--name", help="the host's name (default: from the hostname)")
    add.add_argument(
        "--json",
        action="store_true",
        help="machine-readable output: hosts and tunnels added, notes naming their host",
    )
    add.set_defaults(handler=cmd_add)

    hosts = sub.add_parser("hosts", help="list, remove, import, export, test hosts")
    hosts_sub = hosts.add_subparsers(dest="hosts_command", metavar="ACTION", required=True)
    p = hosts_sub.add_parser("list", help="list saved hosts")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_hosts_list)
    p = hosts_sub.add_parser("remove", help="remove a host and its tunnels")
    p.add_argument("name")
    p.set_defaults(handler=cmd_hosts_remove)
    p = hosts_sub.add_parser("import-ssh-config", help="import Host blocks from ~/.ssh/config")
    p.add_argument("path", nargs="?", help="file to read (default ~/.ssh/config)")
    p.add_argument(
        "--json",
        action="store_true",
        help="machine-readable output: hosts and tunnels imported, notes naming their host",
    )
    p.set_defaults(handler=cmd_hosts_import)
    p = hosts_sub.add_parser("export", help="print a host as an ssh command or ~/.ssh/config block")
    p.add_argument("name")
    p.add_argument(
        "--as", dest="format", choices=["command", "config"], default="command", help="form"
    )
    p.add_argument(
        "--write",
        nargs="?",
        const="~/.ssh/config",
        metavar="PATH",
        help="append it as a Host block to ~/.ssh/config (or PATH) unless one exists",
    )
    p.set_defaults(handler=cmd_hosts_export)

    tunnels = sub.add_parser("tunnels", help="list, add and remove tunnels")
    tunnels_sub = tunnels.add_subparsers(dest="tunnels_command", metavar="ACTION", required=True)
    p = tunnels_sub.add_parser("list", help="list saved tunnels")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_tunnels_list)
    p = tunnels_sub.add_parser(
        "add",
        help="add a tunnel to a saved host, written like ssh's -L/-R/-D",
        description="e.g. devtui tunnels add intern -L 8888:127.0.0.1:8888 "
        "(a bare listen port binds 127.0.0.1); -R PORT with no HOST:HOSTPORT is a reverse "
        "SOCKS proxy: programs on the remote use it, and devtui connects for them from here",
    )
    p.add_argument("host")
    forward = p.add_mutually_exclusive_group(required=True)
    for letter, kind, metavar in (
        ("L", "local", "[BIND:]PORT:HOST:HOSTPORT"),
        ("R", "remote", "[BIND:]PORT[:HOST:HOSTPORT]"),
        ("D", "dynamic", "[BIND:]PORT"),
    ):
        forward.add_argument(
            f"-{letter}",
            dest="forward",
            metavar=metavar,
            type=functools.partial(_forward_arg, kind),
            help=f"{kind} forward, as ssh -{letter}",
        )
    p.add_argument("--name", help="tunnel name (default HOST-PORT)")
    p.add_argument("--autostart", action="store_true", help="start it with a bare `devtui up`")
    p.set_defaults(handler=cmd_tunnels_add)
    p = tunnels_sub.add_parser(
        "retarget",
        help="point a tunnel at another port (the app moved: 7860 -> 7861)",
        description="Change the port a tunnel connects to on the other side, keeping its "
        "address and its local port: devtui tunnels retarget gradio 7861",
    )
    p.add_argument("name")
    p.add_argument("port", type=_port, help="the new target port")
    p.set_defaults(handler=cmd_tunnels_retarget)
    p = tunnels_sub.add_parser("remove", help="remove a tunnel")
    p.add_argument("name")
    p.set_defaults(handler=cmd_tunnels_remove)

    p = sub.add_parser("check", help="validate the config file (exit 1 on any error)")
    p.set_defaults(handler=cmd_check)
    _keys_commands(sub)
    _net_commands(sub, hosts_sub)
    _jobs_commands(sub)
    _file_commands(sub)
    return parser


def _keys_commands(sub: Any) -> None:
    """devtui keys ..."""
    parser = sub.add_parser(
        "keys",
        help="list, generate, show and install SSH keys; fix their permissions",
        description="SSH keys without ssh-keygen or ssh-copy-id, on every OS. "
        "KEY is a path, a file name in ~/.ssh (as `keys list` shows it) or a SHA256 fingerprint.",
    )
    keys_sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    p = keys_sub.add_parser(
        "list",
        help="keys in ~/.ssh and those the config names",
        description="Type, bits, SHA256 fingerprint (as ssh-keygen -l prints it), comment, "
        "passphrase, whether the SSH agent holds it, and which hosts use it.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_lazy("key_commands", "cmd_keys_list"))

    p = keys_sub.add_parser(
        "generate",
        help="make a new key pair (owner-only private key file)",
        description="Make a key pair like ssh-keygen: ed25519 by default. The passphrase is "
        "asked twice (masked); without a terminal it is read as two lines of stdin.",
    )
    p.add_argument("--type", choices=list(KEY_TYPES), default="ed25519", help="key type (ed25519)")
    p.add_argument(
        "--bits", type=int, help="rsa: 3072 (default) or 4096; ecdsa: 256 (default), 384, 521"
    )
    p.add_argument("--path", help="private key file (default ~/.ssh/id_TYPE)")
    p.add_argument("--comment", help="comment (default user@machine)")
    p.add_argument("--no-passphrase", action="store_true", help="do not ask for a passphrase")
    p.add_argument("--force", action="store_true", help="replace existing key files")
    p.set_defaults(handler=_lazy("key_commands", "cmd_keys_generate"))

    p = keys_sub.add_parser(
        "show",
        help="print the public key as one line (for a web console)",
        description="Print the public key in OpenSSH's one-line form, ready to paste.",
    )
    p.add_argument("key", metavar="KEY")
    p.set_defaults(handler=_lazy("key_commands", "cmd_keys_show"))

    p = keys_sub.add_parser(
        "fix-permissions",
        help="make a private key file owner-only, so ssh accepts it",
        description="ssh refuses a private key that others can read (UNPROTECTED PRIVATE KEY "
        "FILE). This makes it owner-only: mode 600 on Linux and macOS; on Windows an ACL "
        "for you, SYSTEM and Administrators only, no longer inherited from the folder.",
    )
    p.add_argument("key", metavar="KEY")
    p.set_defaults(handler=_lazy("key_commands", "cmd_keys_fix_permissions"))

    p = keys_sub.add_parser(
        "install",
        help="add the public key to ~/.ssh/authorized_keys on a host (ssh-copy-id)",
        description="Log in (with a password if that is the only way in), add the key to "
        "~/.ssh/authorized_keys once, then log in with the key alone to prove it works.",
    )
    p.add_argument("key", metavar="KEY")
    p.add_argument("host", metavar="HOST", help="a saved host (devtui hosts list)")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the login password from stdin"
    )
    p.add_argument(
        "--set-identity", action="store_true", help="make HOST use this key (identity_file)"
    )
    p.add_argument(
        "--accept-new", action="store_true", help="trust an unknown host key (first use)"
    )
    p.set_defaults(handler=_lazy("key_commands", "cmd_keys_install"))


def _net_commands(sub: Any, hosts_sub: Any) -> None:
    """The commands that touch the network: up, run, hosts test, ports, demo, forget-key."""
    p = sub.add_parser("up", help="run tunnels until Ctrl+C (default: autostart tunnels, or all)")
    p.add_argument("tunnels", nargs="*", metavar="TUNNEL")
    _auth_flags(p, "the tunnels' host (on several hosts: --password-stdin=HOST)")
    p.set_defaults(handler=_lazy("net", "cmd_up"), verbose=True)

    p = sub.add_parser(
        "run",
        help="run a command on a host and stream its output",
        description="Run a command on a host and stream its output; exits with its status. "
        "Several words run exactly as given (no remote shell re-splits them; for variables "
        "use env: -- env FOO=1 python x.py); one quoted word with spaces or shell characters "
        "is a line for your login shell there, as with ssh: "
        "devtui run gpu -- 'nvidia-smi | head'. Ctrl+C, or a dropped connection, ends the "
        "command and what it started on the host (use tmux or nohup for long jobs). "
        "The command's input is empty (stdin is not forwarded).",
    )
    p.add_argument("host")
    p.add_argument("argv", nargs="*", metavar="CMD", help="the command; put -- before it")
    _auth_flags(p, "the host it runs on")
    p.set_defaults(handler=_lazy("net", "cmd_run"))

    p = hosts_sub.add_parser(
        "test",
        help="connect; print latency, auth method, server version (--all: every host at once)",
    )
    p.add_argument("name", nargs="?")
    p.add_argument("--all", action="store_true", help="test every host, a few at a time")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--parallel", type=int, default=16, metavar="N", help="hosts in flight at once (--all)"
    )
    _auth_flags(p, "the host tested")
    p.set_defaults(handler=_lazy("net", "cmd_hosts_test"))

    p = sub.add_parser("ports", help="list the TCP ports a host listens on (to forward them)")
    p.add_argument("host")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--watch", action="store_true", help="then report ports as they open/close")
    p.add_argument(
        "--interval", type=_positive, default=5.0, help="seconds between looks (--watch)"
    )
    _auth_flags(p, "that host")
    p.set_defaults(handler=_lazy("net", "cmd_ports"))

    p = sub.add_parser(
        "demo",
        help="open the dashboard on a built-in demo host (no remote machine needed)",
        description="Opens the dashboard on a demo host served on this machine, connected, "
        "its tunnel up and its page's URL on screen. With --check: no dashboard; start the "
        "tunnel, fetch the page once through it, print it and exit. Without a terminal "
        "(a pipe, a script): the tunnel alone, until Ctrl+C.",
    )
    p.add_argument(
        "--check", action="store_true", help="no dashboard: fetch the page once through it, exit"
    )
    p.add_argument("--port", type=int, default=0, help="local port of the tunnel (default: free)")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser(
        "logs",
        help="follow a log file on a host, like tail -F",
        description="Stream a file on the host as it grows, like tail -F: it follows the file "
        "through log rotation, and after a dropped connection it resumes where it was, "
        "without losing or repeating lines where the file allows. PATH is an absolute "
        "path on the host (it reaches the host as one argument, never as shell text), or "
        "cmd:COMMAND for a command's output (e.g. 'cmd:journalctl -f -u app'). Ctrl+C ends it.",
    )
    p.add_argument("host")
    p.add_argument("path", metavar="PATH", help="absolute path on the host, or cmd:COMMAND")
    p.add_argument(
        "-n", "--lines", type=_count, default=10, metavar="N", help="existing lines first (10)"
    )
    _auth_flags(p, "the host")
    p.set_defaults(handler=_lazy("net", "cmd_logs"))

    p = sub.add_parser(
        "shell",
        help="open an interactive shell on a host (or run a command in a terminal there)",
        description="A shell on the host in a terminal sized to yours (resizes follow), as "
        "ssh -t would open it; exits with the shell's status. With -- COMMAND: that "
        "command in a terminal instead (one word is a line for your login shell there).",
    )
    p.add_argument("host")
    p.add_argument("argv", nargs="*", metavar="COMMAND", help="put -- before it")
    _auth_flags(p, "the host")
    p.set_defaults(handler=_lazy("net", "cmd_shell"))

    p = hosts_sub.add_parser("forget-key", help="remove a host's saved host key (after a rebuild)")
    p.add_argument("name")
    p.set_defaults(handler=_lazy("net", "cmd_forget_key"))


def _jobs_commands(sub: Any) -> None:
    """devtui jobs ...: commands that keep running on a host when the link drops."""
    parser = sub.add_parser(
        "jobs",
        help="start, list, follow and stop long jobs on a host (they outlive the link)",
        description="A job is a command started on a host so that it keeps running when the "
        "link drops, when devtui quits and when the laptop sleeps: inside tmux on the host "
        "when it has tmux (so it can be attached), otherwise in a session of its own. Its "
        "record (command, pid, output, exit status) lives on the host, under "
        "~/.cache/devtui/jobs, so every devtui sees the same jobs.",
    )
    jobs_sub = parser.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)

    p = jobs_sub.add_parser(
        "start",
        help="start a command detached on a host; prints the job's name",
        description="devtui jobs start gpu --name train -- python train.py --epochs 10. "
        "Several words run exactly as given; one quoted word is a line for your login shell "
        "there, as with devtui run.",
    )
    p.add_argument("host")
    p.add_argument("argv", nargs="*", metavar="COMMAND", help="the command; put -- before it")
    p.add_argument("--name", help="the job's name (default: from the command)")
    _auth_flags(p, "the host")
    p.set_defaults(handler=_lazy("job_commands", "cmd_jobs_start"))

    p = jobs_sub.add_parser("list", help="jobs on a host (or on every host): state, pid, command")
    p.add_argument("host", nargs="?")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _auth_flags(p, "the host")
    p.set_defaults(handler=_lazy("job_commands", "cmd_jobs_list"))

    p = jobs_sub.add_parser(
        "logs",
        help="a job's output (-f: follow it until the job ends)",
        description="The job's output from the start, or its last N lines; with -f it is "
        "followed through dropped connections and ends when the job ends.",
    )
    p.add_argument("host")
    p.add_argument("name")
    p.add_argument("-n", "--lines", type=_count, metavar="N", help="only the last N lines")
    p.add_argument("-f", "--follow", action="store_true", help="follow until the job ends")
    _auth_flags(p, "the host")
    p.set_defaults(handler=_lazy("job_commands", "cmd_jobs_logs"))

    p = jobs_sub.add_parser(
        "stop", help="stop a job and every process it started (TERM, then KILL)"
    )
    p.add_argument("host")
    p.add_argument("name")
    _auth_flags(p, "the host")
    p.set_defaults(handler=_lazy("job_commands", "cmd_jobs_stop"))

    p = jobs_sub.add_parser(
        "attach",
        help="attach to a tmux job in a terminal (detach with ctrl+b d)",
    )
    p.add_argument("host")
    p.add_argument("name")
    _auth_flags(p, "the host")
    p.set_defaults(handler=_lazy("job_commands", "cmd_jobs_attach"))


def _file_commands(sub: Any) -> None:
    """devtui cp / devtui sync: files over the host's own connection."""
    p = sub.add_parser(
        "cp",
        help="copy files to or from a host (resumes, verifies, shows progress)",
        description="Copy like scp: a remote path is HOST:PATH with HOST a saved host (HOST: "
        "alone is the remote home; ~ works; a one-letter HOST is a Windows drive, C:\\x; a "
        "local name with a colon: ./a:b). It goes over the host's connection (SFTP, or "
        "cat/dd where the server refuses SFTP). A copy writes NAME.devtui-part beside the "
        "target and renames it once complete and its SHA-256 matches; run it again after a "
        "drop or Ctrl+C and it continues where it stopped.",
    )
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="SRC... DST: the sources, then where to"
    )
    p.add_argument("-r", "--recursive", action="store_true", help="copy directories")
    p.add_argument(
        "-L",
        "--dereference",
        action="store_true",
        help="with -r, copy what symbolic links point to; without -L they are skipped (each "
        "said on stderr), never recreated. A SRC named on the line is always followed",
    )
    p.add_argument("--restart", action="store_true", help="start over; ignore a .devtui-part")
    p.add_argument("--no-verify", action="store_true", help="skip the SHA-256 check at the end")
    p.add_argument("--force", action="store_true", help="replace a target whose content differs")
    p.add_argument(
        "--progress", action="store_true", help="show progress even when not on a terminal"
    )
    p.add_argument(
        "--json", action="store_true", help="one JSON object per file: bytes, seconds, sha256"
    )
    _auth_flags(p, "the host")
    p.set_defaults(handler=_lazy("file_commands", "cmd_cp"))

    p = sub.add_parser(
        "sync",
        help="make a folder on one side like the other (one way, like rsync -a)",
        description="devtui sync LOCAL_DIR HOST:DIR, or HOST:DIR LOCAL_DIR: sends only files "
        "whose size or mtime differ (a hash decides when only the mtime does). A .gitignore "
        "in LOCAL_DIR is honoured unless --no-gitignore.",
    )
    p.add_argument("source", metavar="SRC")
    p.add_argument("dest", metavar="DST")
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="leave out paths matching PATTERN (gitignore style; repeatable)",
    )
    p.add_argument("--no-gitignore", action="store_true", help="do not read LOCAL_DIR/.gitignore")
    p.add_argument("--delete", action="store_true", help="remove what the source no longer has")
    p.add_argument("--dry-run", action="store_true", help="list what would change; change nothing")
    p.add_argument(
        "--progress", action="store_true", help="show progress even when not on a terminal"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _auth_flags(p, "the host")
    p.set_defaults(handler=_lazy("file_commands", "cmd_sync"))


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port (1-65535): {text!r}")
    return int(text)


def _count(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"not a number of lines (0 or more): {text!r}")
    return int(text)


def _auth_flags(p: argparse.ArgumentParser, target: str) -> None:
    p.add_argument(
        "--password-stdin",
        nargs="?",
        const="",
        metavar="HOST",
        help=f"read a password from standard input, for {target}, or for the HOST named "
        "(e.g. a jump host); no other host receives it",
    )
    p.add_argument("--accept-new", action="store_true", help="trust an unknown host key (shows it)")
    p.add_argument("-v", "--verbose", action="store_true", help="print events to stderr")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `devtui` console script."""
    # A console or pipe in a legacy code page (PowerShell redirects to cp1252/cp936) must not
    # turn a non-ASCII key comment or host name into a crash: unencodable characters print as ?.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    with _terminal_restored():
        return _main(argv)


@contextlib.contextmanager
def _terminal_restored() -> Iterator[None]:
    # Ctrl+C at a getpass prompt (its thread still waiting) must not leave echo off.
    saved = None
    if os.name == "posix" and sys.stdin is not None and sys.stdin.isatty():
        import termios  # POSIX only, hence imported here

        with contextlib.suppress(termios.error, OSError):
            saved = termios.tcgetattr(sys.stdin.fileno())
    try:
        yield
    finally:
        if saved is not None:
            import termios

            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)


def _dashboard_only(argv: list[str]) -> argparse.Namespace | None:
    """Bare `devtui [--config PATH] [--debug]`, read without building the whole parser (the
    dashboard's first paint is timed); None for anything else."""
    config: str | None = None
    debug = False
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--debug":
            debug, i = True, i + 1
        elif word == "--config" and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            config, i = argv[i + 1], i + 2
        elif word.startswith("--config=") and len(word) > len("--config="):
            config, i = word.split("=", 1)[1], i + 1
        else:
            return None
    return argparse.Namespace(config=config, debug=debug)


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    bare = _dashboard_only(argv)
    if bare is not None:
        args, handler = bare, cmd_dashboard
    else:
        parser = build_parser()
        # Everything after "--" is a remote command (devtui run HOST -- CMD ...); argparse's
        # own "--" handling does not reach into subcommands, so split it off here.
        tail: list[str] | None = None
        if "--" in argv:
            cut = argv.index("--")
            argv, tail = argv[:cut], argv[cut + 1 :]
        args = parser.parse_args(_bare_add_line(argv))
        if tail is not None:
            if not hasattr(args, "argv"):
                parser.error("'--' is only used as in: devtui run HOST -- COMMAND")
            args.argv = [*args.argv, *tail]
        handler = getattr(args, "handler", cmd_dashboard)
    try:
        return handler(args)
    except SshCommandError as e:
        _err(f"devtui: cannot read that ssh command: {e}")
        return EXIT_USAGE
    except UsageError as e:
        _err(f"devtui: error: {e}")
        return EXIT_USAGE
    except DevtuiError as e:
        if args.debug:
            raise
        _err(f"devtui: error: {e}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `devtui hosts list | head -1`: the reader has had enough, which is no error. Point
        # stdout at devnull so that the flush at exit does not complain either.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports it
    except Exception as e:  # a bug: still one line, unless asked for more
        if args.debug:
            raise
        _err(f"devtui: internal error: {type(e).__name__}: {e} (run with --debug for details)")
        return EXIT_ERROR


def _bare_add_line(argv: list[str]) -> list[str]:
    """`devtui add -p 22 root@h`: an unquoted line without its `ssh` word would reach argparse
    as options of `add`; give it back its `ssh` so that the whole line is the line."""
    i = 0
    while i < len(argv) and (argv[i] in ("--config", "--debug") or argv[i].startswith("--config=")):
        i += 2 if argv[i] == "--config" else 1
    if argv[i : i + 1] != ["add"]:
        return argv
    j = i + 1
    while j < len(argv) and (argv[j] in ("--name", "--json") or argv[j].startswith("--name=")):
        j += 2 if argv[j] == "--name" else 1
    if j < len(argv) and argv[j].startswith("-") and argv[j] not in ("-h", "--help"):
        return [*argv[:j], "ssh", *argv[j:]]
    return argv
