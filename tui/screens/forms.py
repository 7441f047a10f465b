"""Forms: paste an ssh line, add/edit a host or tunnel, generate a key. Validated as you type;
nothing is saved until the form is submitted and valid."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, Input, Label, Select, Static

from sshcore.api import (
    ConfigData,
    DevtuiError,
    HostSpec,
    PortCheck,
    SshCommandError,
    TunnelKind,
    TunnelSpec,
    check_local_port,
    check_port,
    hostname_problem,
    listens_clash,
    name_problem,
    parse_forward,
    text_problem,
    tunnel_name,
    user_problem,
)

from ..text import plain, styled
from .dialogs import Dialog


def _field(label: str, widget: Any) -> ComposeResult:
    with Horizontal(classes="field"):
        yield Label(label, classes="field-label")
        yield widget


class FormCheckbox(Checkbox, inherit_bindings=False):
    """A form's checkbox: space ticks it and enter submits the form, as enter does in the
    form's inputs (Textual's own Checkbox toggles on enter too, which left a form whose
    last field is a checkbox with no enter that sends it)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_button", "Toggle", show=False),
        Binding("enter", "screen.submit", "Submit", show=False),
    ]


class FormScreen(Dialog):
    """A dialog whose `ctrl+s` / enter submits when `problems()` is empty."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+s", "submit", "Save", id="form.save")]

    def problems(self) -> list[str]:
        raise NotImplementedError

    def result(self) -> object:
        raise NotImplementedError

    def show_problems(self) -> list[str]:
        problems = self.problems()
        note = self.query_one("#problems", Static)
        note.update(plain("\n".join(problems)))
        note.set_class(bool(problems), "error")
        return problems

    def on_input_changed(self, event: Input.Changed) -> None:
        self.show_problems()

    def on_select_changed(self, event: Select.Changed) -> None:
        self.show_problems()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_submit(self) -> None:
        if not self.show_problems():
            self.dismiss(self.result())


# ---------------------------------------------------------------------------------------------
class PasteScreen(FormScreen):
    """Paste the ssh line a cloud console gives; shows what it will save before saving."""

    def __init__(self, config: ConfigData, path: str) -> None:
        super().__init__()
        self.config = config
        self.path = path

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide") as box:
            box.border_title = "Paste an ssh command line"
            yield Label("e.g. ssh -p 37367 root@ssh.example.org -L 7860:127.0.0.1:7860")
            yield Input(placeholder="ssh ...", id="line")
            yield Static("", id="problems")
            yield Label("[b]enter[/] save   [b]esc[/] cancel", classes="keys")

    def problems(self) -> list[str]:
        line = self.query_one("#line", Input).value.strip()
        preview = self.query_one("#problems", Static)
        if not line:
            return ["Paste the line (right-click or ctrl+shift+v in most terminals)."]
        from sshcore.api import ops

        try:
            lines = ops.preview_line(self.config, line, self.path)
        except DevtuiError as e:
            what = "cannot read that ssh command: " if isinstance(e, SshCommandError) else ""
            return [f"{what}{e}"]
        preview.update(plain("\n".join(lines)))
        return []

    def show_problems(self) -> list[str]:
        problems = self.problems()
        if problems:
            note = self.query_one("#problems", Static)
            note.update(plain("\n".join(problems)))
            note.add_class("error")
        else:
            self.query_one("#problems", Static).remove_class("error")
        return problems

    def result(self) -> object:
        return self.query_one("#line", Input).value.strip()


# ---------------------------------------------------------------------------------------------
class HostFormScreen(FormScreen):
    """Add a host, or edit one (its name stays)."""

    def __init__(self, config: ConfigData, spec: HostSpec | None) -> None:
        super().__init__()
        self.config = config
        self.spec = spec

    def compose(self) -> ComposeResult:
        s = self.spec
        with Vertical(classes="dialog") as box:
            box.border_title = plain(f"Edit host {s.name}" if s else "Add a host", newlines=False)
            yield from _field("Name", Input(s.name if s else "", id="name", disabled=bool(s)))
            yield from _field("Hostname", Input(s.hostname if s else "", id="hostname"))
            yield from _field("Port", Input(str(s.port) if s else "22", id="port"))
            yield from _field("User", Input((s.user or "") if s else "", id="user"))
            yield from _field(
                "Key file",
                Input(
                    (s.identity_file or "") if s else "",
                    placeholder="(agent / default keys)",
                    id="identity",
                ),
            )
            yield from _field(
                "Jump host", Input((s.jump or "") if s else "", placeholder="(none)", id="jump")
            )
            yield Static("", id="problems")
            yield Label(
                "[b]enter[/] save   [b]tab[/] next field   [b]esc[/] cancel", classes="keys"
            )

    def _value(self, field: str) -> str:
        return self.query_one(f"#{field}", Input).value.strip()

    def problems(self) -> list[str]:
        found = []
        name = self._value("name")
        if self.spec is None:
            if problem := name_problem(name):
                found.append(f"Name {problem}")
            elif name in self.config.hosts:
                found.append(f"Name: a host named {name!r} exists already")
        if problem := hostname_problem(self._value("hostname")):
            found.append(f"Hostname {problem}")
        try:
            check_port(int(self._value("port")))
        except ValueError:
            found.append("Port must be a number from 1 to 65535")
        user = self._value("user")
        if user and (problem := user_problem(user)):
            found.append(f"User {problem}")
        jump = self._value("jump")
        if jump and jump not in self.config.hosts:
            found.append(f"Jump host: no saved host named {jump!r}")
        elif jump and jump == (self.spec.name if self.spec else name):
            found.append("Jump host: a host cannot jump through itself")
        return found

    def result(self) -> object:
        base = self.spec
        identity = self._value("identity") or None
        if base is None:
            return HostSpec(
                name=self._value("name"),
                hostname=self._value("hostname"),
                port=int(self._value("port")),
                user=self._value("user") or None,
                identity_file=identity,
                jump=self._value("jump") or None,
            )
        # Everything the form does not show (more key files, log sources, timeouts, ...)
        # stays as it was: an edit changes only what the user changed.
        edited = replace(
            base,
            hostname=self._value("hostname"),
            port=int(self._value("port")),
            user=self._value("user") or None,
            jump=self._value("jump") or None,
        )
        if identity != base.identity_file:
            edited = replace(edited, identity_file=identity)
        return edited


# ---------------------------------------------------------------------------------------------
KIND_HELP = {
    "local": "[bind:]port:host:hostport  (ssh -L; e.g. 7860:127.0.0.1:7860)",
    "remote": "[bind:]port[:host:hostport]  (ssh -R; port alone: reverse SOCKS)",
    "dynamic": "[bind:]port  (ssh -D; a SOCKS proxy here)",
}


class TunnelFormScreen(FormScreen):
    """New tunnel or edit one; a busy local port names its holder and offers a free one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "use_free_port", "Use free port", id="tunnel.free", priority=True)
    ]

    def __init__(
        self,
        config: ConfigData,
        spec: TunnelSpec | None,
        host: str | None,
        own_port: int | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.spec = spec
        self.host = spec.host if spec else host
        self.own_port = own_port  # the port this tunnel holds itself while running
        self.port_check: PortCheck | None = None

    def compose(self) -> ComposeResult:
        s = self.spec
        hosts = [(name, name) for name in self.config.hosts]
        kinds: list[tuple[str, TunnelKind]] = [
            ("local  -L (a remote port here)", "local"),
            ("remote -R (a local port there)", "remote"),
            ("dynamic -D (SOCKS proxy)", "dynamic"),
        ]
        with Vertical(classes="dialog -wide") as box:
            box.border_title = plain(f"Edit tunnel {s.name}" if s else "New tunnel", newlines=False)
            yield from _field(
                "Host",
                Select(
                    hosts,
                    value=self.host if self.host in self.config.hosts else Select.BLANK,
                    id="host",
                    allow_blank=True,
                ),
            )
            yield from _field(
                "Kind", Select(kinds, value=s.kind if s else "local", id="kind", allow_blank=False)
            )
            yield from _field("Forward", Input(self._spec_text(s), id="spec"))
            yield Label(plain(KIND_HELP[s.kind if s else "local"]), id="kind-help", classes="hint")
            yield from _field(
                "Name",
                Input(s.name if s else "", placeholder="(HOST-PORT)", id="name", disabled=bool(s)),
            )
            yield FormCheckbox(
                "Start with the dashboard and devtui up",
                s.autostart if s else False,
                id="autostart",
            )
            yield Static("", id="problems")
            yield Label("[b]enter[/] save   [b]tab[/] next   [b]esc[/] cancel", classes="keys")

    def on_mount(self) -> None:
        # Enter on a Select opens it: start where the user types, the host is usually preset.
        first = "#spec" if self.host in self.config.hosts else "#host"
        self.query_one(first).focus()

    @staticmethod
    def _spec_text(spec: TunnelSpec | None) -> str:
        if spec is None:
            return ""
        listen = str(spec.listen) if not spec.listen.loopback else str(spec.listen.port)
        return f"{listen}:{spec.target}" if spec.target else listen

    def _parsed(self) -> tuple[str, TunnelKind, TunnelSpec]:
        host_value = self.query_one("#host", Select).value
        host = host_value if isinstance(host_value, str) else ""
        kind_value = self.query_one("#kind", Select).value
        kind: TunnelKind = kind_value if kind_value in ("local", "remote", "dynamic") else "local"
        listen, target, _ = parse_forward(kind, self.query_one("#spec", Input).value.strip())
        name = self.query_one("#name", Input).value.strip() or tunnel_name(
            host, kind, listen.port, socks=target is None
        )
        if self.spec is not None:
            name = self.spec.name
        autostart = self.query_one("#autostart", Checkbox).value
        return host, kind, TunnelSpec(name, host, kind, listen, target, autostart)

    def problems(self) -> list[str]:
        kind_value = self.query_one("#kind", Select).value
        if isinstance(kind_value, str) and kind_value in KIND_HELP:
            self.query_one("#kind-help", Label).update(plain(KIND_HELP[kind_value]))
        if not isinstance(self.query_one("#host", Select).value, str):
            return ["Host: pick the host the tunnel goes through"]
        if not self.query_one("#spec", Input).value.strip():
            return ["Forward: " + KIND_HELP[str(kind_value)]]
        try:
            _, kind, spec = self._parsed()
        except DevtuiError as e:
            return [f"Forward: {e}"]
        found = []
        if self.spec is None:
            if problem := name_problem(spec.name):
                found.append(f"Name {problem}")
            elif spec.name in self.config.tunnels:
                found.append(f"Name: a tunnel named {spec.name!r} exists already")
        for other in self.config.tunnels.values():
            if other.name != spec.name and listens_clash(spec, other):
                found.append(
                    f"Forward: tunnel {other.name} already listens on port {spec.listen.port}"
                )
                break
        # A warning, not an error: sharing a port on purpose is allowed, never by accident.
        help_text = plain(KIND_HELP[kind])
        if kind != "remote" and spec.listen.exposed:
            help_text = styled(
                "[b]$where is open to other machines[/] (127.0.0.1 is not)", where=spec.listen
            )
        elif spec.listen.exposed:  # a remote listener beyond the remote's loopback
            help_text = styled(
                "[b]$where: others on the remote may reach it[/] (not loopback)", where=spec.listen
            )
        self.query_one("#kind-help", Label).update(help_text)
        self.check_port(spec)
        if self.port_check is not None and not found:
            found.append(self._port_text())
        return found

    def _port_text(self) -> str:
        assert self.port_check is not None
        text = self.port_check.message
        if self.port_check.suggestion:
            text += f"  (ctrl+n uses {self.port_check.suggestion})"
        return text

    def check_port(self, spec: TunnelSpec) -> None:
        """Ask the OS whether the listen port is free (in a thread; the answer re-validates)."""
        if spec.kind == "remote" or spec.listen.port == self.own_port:
            self.port_check = None
            return
        self._check_port(spec.listen.address, spec.listen.port)

    @work(exclusive=True, group="port-check", exit_on_error=False)
    async def _check_port(self, address: str, port: int) -> None:
        await asyncio.sleep(0.15)  # typing: check once the digits settle
        result = await asyncio.to_thread(check_local_port, address, port)
        if result != self.port_check:
            self.port_check = result
            note = self.query_one("#problems", Static)
            if result is not None:
                note.update(plain(self._port_text()))
                note.add_class("error")
            else:
                self.show_problems()

    def action_use_free_port(self) -> None:
        if self.port_check is None or not self.port_check.suggestion:
            return
        box = self.query_one("#spec", Input)
        with contextlib.suppress(DevtuiError):
            spec = self._parsed()[2]
            listen = str(self.port_check.suggestion)
            if not spec.listen.loopback:
                listen = f"{spec.listen.address}:{listen}"
            box.value = f"{listen}:{spec.target}" if spec.target else listen

    def action_submit(self) -> None:
        if self.show_problems():
            return
        self.dismiss(self._parsed()[2])

    def result(self) -> object:
        return self._parsed()[2]


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeygenRequest:
    """What the user asked for in the generate-key form."""

    key_type: str
    bits: int | None
    path: str
    comment: str | None
    passphrase: str | None


class KeygenScreen(FormScreen):
    """Generate a key: ed25519 by default, rsa 4096 on request, optional passphrase twice."""

    def __init__(self, default_path: str) -> None:
        super().__init__()
        self.default_path = default_path

    def compose(self) -> ComposeResult:
        types = [("ed25519 (recommended)", "ed25519"), ("rsa 4096", "rsa"), ("ecdsa 256", "ecdsa")]
        with Vertical(classes="dialog -wide") as box:
            box.border_title = "Generate a key"
            yield from _field("Type", Select(types, value="ed25519", allow_blank=False, id="type"))
            yield from _field("File", Input(self.default_path, id="path"))
            yield from _field("Comment", Input(placeholder="(user@machine)", id="comment"))
            yield from _field("Passphrase", Input(password=True, placeholder="(none)", id="pass1"))
            yield from _field("Again", Input(password=True, id="pass2"))
            yield Static("", id="problems")
            yield Label("[b]enter[/] generate   [b]esc[/] cancel", classes="keys")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()  # enter, enter: the defaults, as ssh-keygen

    def on_select_changed(self, event: Select.Changed) -> None:
        from pathlib import Path

        path = self.query_one("#path", Input)
        current = Path(path.value)
        if current.name in ("id_ed25519", "id_rsa", "id_ecdsa"):
            path.value = str(current.with_name(f"id_{event.value}"))
        self.show_problems()

    def problems(self) -> list[str]:
        found = []
        if not self.query_one("#path", Input).value.strip():
            found.append("File: where to write the key")
        if self.query_one("#pass1", Input).value != self.query_one("#pass2", Input).value:
            found.append("Passphrase: the two do not match")
        return found

    def result(self) -> object:
        key_type = str(self.query_one("#type", Select).value)
        return KeygenRequest(
            key_type=key_type,
            bits=4096 if key_type == "rsa" else None,
            path=self.query_one("#path", Input).value.strip(),
            comment=self.query_one("#comment", Input).value.strip() or None,
            passphrase=self.query_one("#pass1", Input).value or None,
        )


# ---------------------------------------------------------------------------------------------
class LogSourceScreen(FormScreen):
    """Follow a remote file (like tail -F) or a command's output in the Logs pane."""

    def __init__(self, config: ConfigData, host: str | None) -> None:
        super().__init__()
        self.config = config
        self.host = host

    def compose(self) -> ComposeResult:
        hosts = [(name, name) for name in self.config.hosts]
        with Vertical(classes="dialog -wide") as box:
            box.border_title = "Add a log source"
            yield from _field(
                "Host",
                Select(
                    hosts,
                    value=self.host if self.host in self.config.hosts else Select.BLANK,
                    id="host",
                ),
            )
            yield from _field(
                "Follow",
                Input(placeholder="/var/log/app.log   or   cmd:journalctl -f", id="source"),
            )
            yield Label(
                "A file is followed like tail -F (rotation, reconnects); cmd: runs a command.",
                classes="hint",
            )
            yield Static("", id="problems")
            yield Label("[b]enter[/] add (saved with the host)   [b]esc[/] cancel", classes="keys")

    def on_mount(self) -> None:
        first = "#source" if self.host in self.config.hosts else "#host"
        self.query_one(first).focus()

    def problems(self) -> list[str]:
        host = self.query_one("#host", Select).value
        source = self.query_one("#source", Input).value.strip()
        if not isinstance(host, str):
            return ["Host: pick the host the log lives on"]
        if not source:
            return ["Follow: an absolute path (/var/log/app.log) or cmd:COMMAND"]
        if source.startswith("cmd:"):
            if not source[4:].strip():
                return ["Follow: the command after cmd: is empty"]
        elif not source.startswith("/"):
            return ["Follow: give the file's absolute path on the host (it starts with /)"]
        if problem := text_problem(source):
            return [f"Follow: {problem}"]
        if source in self.config.hosts[host].log_sources:
            return [f"Follow: {host} has that source already"]
        return []

    def result(self) -> object:
        host = self.query_one("#host", Select).value
        return str(host), self.query_one("#source", Input).value.strip()


class JobFormScreen(FormScreen):
    """`j` on a host: start a command there that outlives the link (a remote job)."""

    def __init__(self, host: str, taken: set[str]) -> None:
        super().__init__()
        self.host = host
        self.taken = taken

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide") as box:
            box.border_title = plain(f"Start a job on {self.host}")
            yield from _field(
                "Command", Input(placeholder="python train.py --epochs 10", id="command")
            )
            yield from _field("Name", Input(placeholder="(from the command)", id="name"))
            yield Label(
                "In tmux there (or setsid): it outlives the link. Output: Logs (4).",
                classes="hint",
            )
            yield Static("", id="problems")
            yield Label("[b]enter[/] start   [b]esc[/] cancel", classes="keys")

    def on_mount(self) -> None:
        self.query_one("#command").focus()

    def problems(self) -> list[str]:
        from sshcore.api import job_name_problem

        command = self.query_one("#command", Input).value.strip()
        name = self.query_one("#name", Input).value.strip()
        if not command:
            return ["Command: the command line to run (your login shell there reads it)"]
        if problem := text_problem(command):
            return [f"Command: {problem}"]
        if name and (problem := job_name_problem(name)):
            return [f"Name: {problem}"]
        return []

    def result(self) -> object:
        name = self.query_one("#name", Input).value.strip()
        return self.host, self.query_one("#command", Input).value.strip(), name or None


class CopyFormScreen(FormScreen):
    """Upload to a host, or download from it: two paths, copied in the background."""

    def __init__(self, host: str, upload: bool) -> None:
        super().__init__()
        self.host = host
        self.upload = upload

    def compose(self) -> ComposeResult:
        here, there = "on this machine", f"on {self.host}"
        title = f"Upload to {self.host}" if self.upload else f"Download from {self.host}"
        with Vertical(classes="dialog -wide") as box:
            box.border_title = plain(title)
            yield from _field(
                "From",
                Input(placeholder=f"a file or folder {here if self.upload else there}", id="src"),
            )
            yield from _field(
                "To",
                Input(
                    value="~/" if self.upload else "",
                    placeholder=f"a folder {there if self.upload else here} (or a new name)",
                    id="dst",
                ),
            )
            yield FormCheckbox("Replace a file there that differs (--force)", False, id="force")
            yield Label(
                "Resumes after a drop; SHA-256 checked; esc stops it.",
                classes="hint",
            )
            yield Static("", id="problems")
            yield Label("[b]enter[/] copy   [b]tab[/] next   [b]esc[/] cancel", classes="keys")

    def on_mount(self) -> None:
        self.query_one("#src").focus()

    def _local(self) -> str:
        return self.query_one("#src" if self.upload else "#dst", Input).value.strip()

    def _remote(self) -> str:
        return self.query_one("#dst" if self.upload else "#src", Input).value.strip()

    def problems(self) -> list[str]:
        import os

        local, remote = self._local(), self._remote()
        here = "From" if self.upload else "To"
        there = "To" if self.upload else "From"
        if not self.query_one("#src", Input).value.strip():
            return ["From: what to copy"]
        for label, value in ((here, local), (there, remote)):
            if value and (problem := text_problem(value)):
                return [f"{label}: {problem}"]
        if self.upload and not os.path.exists(os.path.expanduser(local)):
            return [f"From: {local} does not exist here"]
        if not self.upload and local:
            # A folder to copy into, or a new name in one (as with scp).
            target = os.path.abspath(os.path.expanduser(local))
            if not os.path.isdir(target) and not os.path.isdir(os.path.dirname(target)):
                return [f"To: {local} is neither a folder here nor a name in one"]
        return []

    def result(self) -> object:
        """(sources, destination, force) as `devtui cp` takes them."""
        import os

        local = os.path.expanduser(self._local() or ".")
        remote = f"{self.host}:{self._remote()}"
        force = self.query_one("#force", Checkbox).value
        return ([local], remote, force) if self.upload else ([remote], local, force)
