"""`devtui keys ...`: list, generate, show, install SSH keys and fix their permissions."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from pathlib import Path

from sshcore.api import Config, ConfigError, DevtuiError, KeyInfo, display_path, keys, ops

from .main import _load, _table


def _out(text: str = "") -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _stdin_is_tty() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


# ---------------------------------------------------------------------------------------------
# list / show


def _flags(info: KeyInfo) -> str:
    notes = []
    if not info.has_private and info.problem != "missing":
        notes.append("public key only")
    if info.loose_permissions:
        why = info.permissions_note or "others have access"
        notes.append(
            f"{why}: ssh refuses it (fix: devtui keys fix-permissions {_shell_word(info.name)})"
        )
    elif info.permissions_note:
        notes.append(info.permissions_note)  # e.g. the ACL could not be read
    if info.problem:
        notes.append(info.problem)
    return "; ".join(notes)


def _shell_word(text: str) -> str:
    """`text` as one argument in PowerShell, cmd and POSIX shells alike, when it can be."""
    if text and not any(c.isspace() or c in "'\"`$&;|<>()[]{}*?!#," for c in text):
        return text
    return f"'{text}'" if "'" not in text else f'"{text}"'


def _yes_no(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


def cmd_keys_list(args: argparse.Namespace) -> int:
    """devtui keys list [--json]"""
    config = _load(args)
    hosts = list(config.hosts.values())
    blobs = asyncio.run(keys.agent_key_blobs())
    found = keys.list_keys(hosts, agent_blobs=blobs)
    if args.json:
        _out(json.dumps([k.to_json() for k in found], indent=2))
        return 0
    if not found:
        _out(f"No keys in {display_path(keys.ssh_dir())}. Make one: devtui keys generate")
        return 0
    rows = [
        [
            k.name,
            f"{k.key_type} {k.bits}" if k.key_type and k.bits else (k.key_type or ""),
            k.fingerprint or "",
            k.comment,
            _yes_no(k.encrypted) if k.has_private and k.fingerprint else "",
            _yes_no(k.in_agent) if k.fingerprint and k.in_agent is not None else "",
            ", ".join(k.hosts),
            _flags(k),
        ]
        for k in found
    ]
    headers = ["NAME", "TYPE", "FINGERPRINT", "COMMENT", "PASSPHRASE", "AGENT", "HOSTS", "NOTE"]
    _out(_table(rows, headers))
    return 0


def cmd_keys_show(args: argparse.Namespace) -> int:
    """devtui keys show KEY: the public key as one line, for a web console's key form."""
    config = _load(args)
    path = keys.find_key(args.key, config.hosts.values())
    _out(keys.public_key_line(path))
    return 0


def cmd_keys_fix_permissions(args: argparse.Namespace) -> int:
    """devtui keys fix-permissions KEY: make a private key owner-only, as ssh demands."""
    config = _load(args)
    path = keys.find_key(args.key, config.hosts.values())
    _out(keys.fix_permissions(path))
    return 0


# ---------------------------------------------------------------------------------------------
# generate


def _read_passphrase() -> str | None:
    """Asked twice, masked, on a terminal; without one, two lines of stdin (scripts)."""
    if _stdin_is_tty():
        first = getpass.getpass("Passphrase (empty for none): ")
        if not first:
            return None
        second = getpass.getpass("Same passphrase again: ")
    elif sys.stdin is None:  # e.g. started without a console: nobody can type one
        return None
    else:
        line = sys.stdin.readline()
        if not line:  # no input at all: nobody chose "no passphrase", so do not assume it
            raise DevtuiError(
                "no passphrase on stdin and no terminal to ask on: give it twice on stdin, "
                "an empty line for none, or use --no-passphrase; nothing was written"
            )
        first = line.rstrip("\r\n")
        second = sys.stdin.readline().rstrip("\r\n") if first else ""
    if first != second:
        raise DevtuiError("the passphrases do not match; nothing was written")
    return first or None


def cmd_keys_generate(args: argparse.Namespace) -> int:
    """devtui keys generate [--type T] [--bits N] [--path P] [--comment C] [--no-passphrase]"""
    path = Path(args.path).expanduser() if args.path else keys.default_key_path(args.type)
    # Check before asking for a passphrase: refusing after it was typed twice is rude.
    keys.check_key_options(args.type, args.bits)
    if not args.force:
        for existing in (path, keys.public_path_of(path)):
            if existing.exists():
                raise DevtuiError(
                    f"{display_path(existing)} already exists; use it "
                    f"(devtui keys show {path.name}), pick another --path, or --force to replace it"
                )
    passphrase = None if args.no_passphrase else _read_passphrase()
    info = keys.generate_key(
        path,
        key_type=args.type,
        bits=args.bits,
        comment=args.comment,
        passphrase=passphrase,
        overwrite=args.force,
    )
    protection = "with a passphrase" if passphrase else "without a passphrase"
    _out(f"Generated a new {info.key_type} key ({info.bits} bits), {protection}.")
    _out(f"  private key: {display_path(info.path)} (only you can read it)")
    if info.public_path:
        _out(f"  public key:  {display_path(info.public_path)}")
    _out(f"  fingerprint: {info.fingerprint}")
    _out(f"  comment:     {info.comment}")
    _out("")
    _out("Public key (paste it into your host's web console, or install it on a saved host")
    _out(f"with: devtui keys install {_key_arg(info.path)} HOST):")
    _out(info.public_line or "")
    return 0


def _key_arg(path: Path) -> str:
    return path.name if path.parent == keys.ssh_dir() else display_path(path)


# ---------------------------------------------------------------------------------------------
# install


def cmd_keys_install(args: argparse.Namespace) -> int:
    """devtui keys install KEY HOST [--password-stdin] [--set-identity]"""
    config = _load(args)
    host = config.hosts.get(args.host)
    if host is None:
        raise ConfigError(f"no host named {args.host!r} (see: devtui hosts list)")
    key_path = keys.find_key(args.key, config.hosts.values())
    info = keys.inspect_key(key_path)
    keys.public_key_line(key_path)  # fail now, before any password is asked
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise DevtuiError("--password-stdin: no password on standard input")
    return asyncio.run(_install(args, config, info, password))


async def _install(
    args: argparse.Namespace, config: Config, info: KeyInfo, password: str | None
) -> int:
    # Imported here so `keys list/show/generate` work without the network layer loaded.
    from sshcore.api import Core

    from .terminal_prompts import CliPrompts

    host = config.hosts[args.host]
    key_name = display_path(info.path)
    prompts = CliPrompts(
        accept_new=args.accept_new,
        password=password,
        password_host=host.name if password is not None else None,
    )
    _out(f"Installing {key_name} on {host.name} ({host.destination}) ...")
    async with Core(config, prompts, interactive=True) as core:
        report = await core.install_key(host.name, info.path)
    for line in ops.install_lines(report.result, report.verified, info, host.name):
        _out(line)
    if info.has_private:
        _offer_identity(args, config, info.path)
    return 0


def _offer_identity(args: argparse.Namespace, config: Config, key_path: Path) -> None:
    host = config.hosts[args.host]
    if ops.uses_key(config, host.name, key_path):
        return  # already its key
    if not args.set_identity:
        if args.password_stdin or not _stdin_is_tty():
            _out(f"To use this key for {host.name} from now on, run again with --set-identity.")
            return
        value = display_path(key_path)
        answer = input(f"Use {value} for {host.name} from now on (identity_file)? [Y/n] ")
        if answer.strip().lower() not in ("", "y", "yes"):
            return
    for line in ops.set_identity(config, host.name, key_path).lines:
        _out(line)
