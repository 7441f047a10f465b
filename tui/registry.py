"""Every dashboard action, once: its key, its words, where it belongs, whether the footer
shows it, and its command palette title. The bindings of the app and of each pane, the footer
(which shows bindings), `?` help (made from the bindings) and the palette's global commands
are all made from this table: adding an action is one entry here plus its `action_` method.
Whether an action is available right now is the pane's `check_action`, asked with the live
state each time a key is pressed or the footer is drawn.

The palette's other commands name one host, tunnel or key each ("Tunnels: start gradio"):
ITEM_COMMANDS below, one entry each; commands.py makes one command per item from them.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Act:
    """One action. `id` is SCOPE.NAME, SCOPE being "app" or a pane ("hosts", "tunnels",
    "keys", "logs"); `action` is the Textual action run (a method `action_<name>` of the
    scope). `key` None: a palette-only action."""

    id: str
    key: str | None
    action: str
    label: str
    tooltip: str = ""
    footer: bool = True
    priority: bool = False
    palette: str | None = None  # its title in the command palette, when it has one there
    palette_help: str = ""

    @property
    def scope(self) -> str:
        return self.id.split(".", 1)[0]

    def binding(self) -> Binding:
        assert self.key is not None
        return Binding(
            self.key,
            self.action,
            self.label,
            show=self.footer,
            priority=self.priority,
            id=self.id,
            tooltip=self.tooltip,
        )


ACTIONS: tuple[Act, ...] = (
    # Everywhere. Not in the footer: the top line always says "? keys · q quit", and at 80
    # columns the footer needs the room for the focused pane's keys.
    Act("app.hosts", "1", "focus_pane('hosts')", "Hosts", footer=False),
    Act("app.tunnels", "2", "focus_pane('tunnels')", "Tunnels", footer=False),
    Act("app.keys", "3", "focus_pane('keys')", "Keys", footer=False),
    Act("app.logs", "4", "focus_pane('logs')", "Logs", footer=False),
    Act(
        "app.help",
        "question_mark",
        "help",
        "Help",
        tooltip="Every key",
        footer=False,
        palette="Help: every key",
        palette_help="What each key does in each pane",
    ),
    Act("app.quit", "q", "quit", "Quit", footer=False),
    Act("app.quit2", "ctrl+q", "quit", "Quit", footer=False, priority=True),
    Act("app.quit3", "ctrl+c", "quit", "Quit", footer=False),
    Act("app.cancel", "escape", "cancel_job", "Cancel", footer=False),
    # 1 Hosts
    Act("hosts.connect", "c", "connect", "Connect", tooltip="Connect or disconnect"),
    Act(
        "hosts.paste",
        "p",
        "paste",
        "Paste ssh",
        tooltip="Paste an ssh line",
        palette="Hosts: paste an ssh line",
        palette_help="Save a host (and tunnels) from ssh ...",
    ),
    Act(
        "hosts.add",
        "a",
        "add",
        "Add",
        palette="Hosts: add a host",
        palette_help="A form: name, hostname, port, user, key",
    ),
    Act("hosts.edit", "e", "edit", "Edit"),
    Act("hosts.delete", "d", "delete", "Delete", footer=False),
    Act("hosts.test", "t", "test", "Test"),
    Act(
        "hosts.test_all",
        "T",
        "test_all",
        "Test all",
        tooltip="Every host at once",
        footer=False,
        palette="Hosts: test every host",
        palette_help="Connect time, round trip, auth; failures first",
    ),
    Act("hosts.shell", "s", "shell", "Shell", tooltip="A shell there; back on exit"),
    Act(
        "hosts.import",
        "i",
        "import",
        "Import",
        tooltip="Import ~/.ssh/config",
        palette="Hosts: import ~/.ssh/config",
        palette_help="The hosts VS Code and ssh know",
    ),
    Act("hosts.export", "x", "export", "Export", tooltip="Write to ~/.ssh/config"),
    Act(
        "hosts.job",
        "j",
        "start_job",
        "Job",
        tooltip="Start a command that outlives the link",
    ),
    Act("hosts.upload", "u", "upload", "Upload", tooltip="Copy files to the host", footer=False),
    Act(
        "hosts.download",
        "D",
        "download",
        "Download",
        tooltip="Copy files from the host",
        footer=False,
    ),
    Act("hosts.filter", "slash", "filter", "Filter", footer=False),
    # 2 Tunnels
    Act("tunnels.toggle", "space", "start_stop", "Start/stop"),
    Act("tunnels.open", "o", "open", "Open", tooltip="Open in the browser"),
    Act("tunnels.copy", "y", "copy", "Copy", tooltip="Copy the URL"),
    Act("tunnels.restart", "r", "restart", "Restart", footer=False),
    Act(
        "tunnels.new",
        "n",
        "new",
        "New",
        palette="Tunnels: new tunnel",
        palette_help="Like ssh -L / -R / -D",
    ),
    Act("tunnels.edit", "e", "edit", "Edit"),
    Act("tunnels.delete", "d", "delete", "Delete"),
    Act("tunnels.forward", "f", "forward", "Forward", tooltip="Forward a port the host opened"),
    Act("tunnels.save", "s", "save", "Save", tooltip="Save a discovered tunnel"),
    Act("tunnels.retarget", "R", "retarget", "Retarget", tooltip="Follow a moved app"),
    Act("tunnels.filter", "slash", "filter", "Filter", footer=False),
    # 3 Keys
    Act("keys.copy", "y", "copy", "Copy public"),
    Act(
        "keys.generate",
        "g",
        "generate",
        "Generate",
        palette="Keys: generate a key",
        palette_help="ed25519 by default; rsa 4096 on request",
    ),
    Act("keys.show", "s", "show", "Show"),
    Act("keys.install", "u", "install", "Install on host"),
    Act("keys.fix", "f", "fix", "Fix perms"),
    Act("keys.filter", "slash", "filter", "Filter", footer=False),
    Act(
        "keys.reload",
        None,
        "reload",
        "Reload",
        palette="Keys: reload the key list",
        palette_help="Read ~/.ssh again",
    ),
    # 4 Logs
    Act("logs.follow", "f", "follow", "Follow on/off"),
    Act("logs.filter", "slash", "filter", "Filter"),
    Act("logs.add", "a", "add_source", "Add source", tooltip="Follow a remote file"),
    Act("logs.next", "right_square_bracket", "next_source", "Next source"),
    Act("logs.prev", "left_square_bracket", "previous_source", "Prev source", footer=False),
    Act("logs.remove", "d", "remove_source", "Remove source", footer=False),
    Act("logs.clear", "ctrl+l", "clear", "Clear"),
)


@dataclass(frozen=True)
class ItemCommand:
    """A palette command for each host, tunnel or key: the palette form of a pane's key for
    a named item. `title` and `help` take {name}, {verb} (connect/disconnect, start/stop:
    what it does now) and {detail} (the host's destination, the tunnel's route, the key's
    fingerprint); `method` is what it calls on the app's host_actions, tunnel_actions or
    key_actions with the item."""

    id: str  # the action it is the palette form of
    each: str  # "host", "tunnel", "key" or "job"
    title: str
    help: str
    method: str
    actions: str = ""  # the app's attribute holding `method`; "" means EACH_actions

    @property
    def owner(self) -> str:
        """The app attribute whose `method` runs the command ("host_actions" ...)."""
        return self.actions or f"{self.each}_actions"


ITEM_COMMANDS: tuple[ItemCommand, ...] = (
    ItemCommand("hosts.connect", "host", "Hosts: {verb} {name}", "{detail}", "toggle_connect"),
    ItemCommand(
        "hosts.test",
        "host",
        "Hosts: test {name}",
        "Connect time, round trip, auth, server",
        "test_host",
    ),
    ItemCommand("hosts.edit", "host", "Hosts: edit {name}", "{detail}", "edit_host"),
    ItemCommand(
        "hosts.delete",
        "host",
        "Hosts: delete {name}",
        "Asks first; its tunnels go too",
        "delete_host",
    ),
    ItemCommand(
        "hosts.export",
        "host",
        "Hosts: export {name} to ~/.ssh/config",
        "For VS Code and plain ssh",
        "export_host",
    ),
    ItemCommand(
        "hosts.forget_key",
        "host",
        "Hosts: forget host key of {name}",
        "Only after the machine was rebuilt",
        "forget_host_key",
    ),
    ItemCommand(
        "hosts.job",
        "host",
        "Jobs: start a job on {name}",
        "Keeps running offline",
        "start_job_form",
        "job_actions",
    ),
    ItemCommand(
        "hosts.upload",
        "host",
        "Files: upload to {name}",
        "Resumes after a drop; checked by SHA-256",
        "upload",
        "file_actions",
    ),
    ItemCommand(
        "hosts.download",
        "host",
        "Files: download from {name}",
        "Resumes after a drop; checked by SHA-256",
        "download",
        "file_actions",
    ),
    ItemCommand("tunnels.toggle", "tunnel", "Tunnels: {verb} {name}", "{detail}", "toggle_tunnel"),
    ItemCommand(
        "tunnels.restart", "tunnel", "Tunnels: restart {name}", "{detail}", "restart_tunnel"
    ),
    ItemCommand(
        "tunnels.open", "tunnel", "Tunnels: open {name} in the browser", "{detail}", "open_tunnel"
    ),
    ItemCommand(
        "tunnels.copy",
        "tunnel",
        "Tunnels: copy the URL of {name}",
        "{detail}",
        "copy_tunnel_url",
    ),
    ItemCommand("tunnels.edit", "tunnel", "Tunnels: edit {name}", "{detail}", "edit_tunnel"),
    ItemCommand("tunnels.delete", "tunnel", "Tunnels: delete {name}", "{detail}", "delete_tunnel"),
    ItemCommand("jobs.stop", "job", "Jobs: stop {name}", "on {host}: {detail}", "stop_job"),
    ItemCommand(
        "jobs.show", "job", "Jobs: show the output of {name}", "on {host}: {detail}", "show_output"
    ),
    ItemCommand(
        "keys.copy", "key", "Keys: copy the public key {name}", "{detail}", "copy_public_key"
    ),
    ItemCommand("keys.show", "key", "Keys: show {name}", "{detail}", "show_key"),
    ItemCommand(
        "keys.install",
        "key",
        "Keys: install {name} on a host",
        "Like ssh-copy-id, from any OS",
        "install_key",
    ),
    ItemCommand(
        "keys.fix",
        "key",
        "Keys: fix permissions of {name}",
        "Owner-only, as OpenSSH demands",
        "fix_key_permissions",
    ),
)


def item_commands(each: str) -> list[ItemCommand]:
    """The palette commands made for each item of a kind ("host", "tunnel", "key")."""
    return [c for c in ITEM_COMMANDS if c.each == each]


def bindings(scope: str) -> list[Binding]:
    """The key bindings of `scope` ("app" or a pane's name), in the table's order."""
    return [a.binding() for a in ACTIONS if a.scope == scope and a.key is not None]


def palette_actions() -> list[Act]:
    """The actions with a command palette title, in the table's order."""
    return [a for a in ACTIONS if a.palette is not None]
