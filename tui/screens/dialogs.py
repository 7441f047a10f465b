"""Questions the dashboard asks: yes/no, host keys, secrets, a host to pick, text to read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from sshcore.prompts import HostKeyMismatch, HostKeyQuestion


class Dialog(ModalScreen[object]):
    """Base: a bordered box in the middle; escape cancels (dismisses with `cancel_value`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel")
    ]
    cancel_value: object = None

    def action_cancel(self) -> None:
        self.dismiss(self.cancel_value)


class ConfirmScreen(Dialog):
    """A yes/no question; `y` confirms, `n` or escape says no. Nothing happens by default."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n", "answer(False)", "No", id="confirm.no"),
    ]
    cancel_value = False

    def __init__(self, title: str, body: str, yes: str = "yes") -> None:
        super().__init__()
        self._title = title
        self._body = body
        self._yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as box:
            box.border_title = self._title
            yield Static(escape(self._body), classes="dialog-body")
            yield Label(f"[b]y[/] {escape(self._yes)}   [b]n[/] / [b]esc[/] no", classes="keys")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class HostKeyScreen(Dialog):
    """An unknown host key (trust on first use): nothing is trusted unless the user says `y`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Trust", id="hostkey.trust"),
        Binding("n", "answer(False)", "Refuse", id="hostkey.refuse"),
    ]
    cancel_value = False

    def __init__(self, question: HostKeyQuestion) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        q = self.question
        with Vertical(classes="dialog") as box:
            box.border_title = f"New host key: {q.host}"
            yield Static(
                f"devtui has never seen [b]{escape(q.address)}[/] ({escape(q.host)}) before.\n\n"
                f"  {escape(q.key_type)} key fingerprint\n"
                f"  [b]{escape(q.fingerprint)}[/]\n\n"
                "Compare it with the fingerprint your provider shows. Trusting it saves it to "
                "known_hosts, so ssh trusts it too.",
                classes="dialog-body",
            )
            yield Label("[b]y[/] trust and connect   [b]n[/] / [b]esc[/] refuse", classes="keys")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class HostKeyChangedScreen(Dialog):
    """A changed host key: refused whatever the user presses; says how to replace it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "cancel", "Close", id="hostkey.close")
    ]

    def __init__(self, mismatch: HostKeyMismatch) -> None:
        super().__init__()
        self.mismatch = mismatch

    def compose(self) -> ComposeResult:
        m = self.mismatch
        with Vertical(classes="dialog -danger") as box:
            box.border_title = "HOST KEY CHANGED: connection refused"
            yield Static(
                f"[b]{escape(m.address)}[/] ({escape(m.host)}) now offers a different "
                f"{escape(m.key_type)} key.\n\n"
                f"  known  {escape(m.old_fingerprint)}\n"
                f"  now    [b]{escape(m.new_fingerprint)}[/]\n"
                f"  from   {escape(m.known_hosts_file)}:{m.known_hosts_line}\n\n"
                "Someone could be intercepting the connection, or the machine was rebuilt. "
                "devtui refused it. Only if you know it was rebuilt: command palette "
                f"(ctrl+p) > 'Hosts: forget host key of {escape(m.host)}', then connect again.",
                classes="dialog-body",
            )
            yield Label("[b]enter[/] / [b]esc[/] close", classes="keys")


class SecretScreen(Dialog):
    """A masked input for a password, passphrase or keyboard-interactive answer."""

    def __init__(self, title: str, prompt: str, *, confirm: bool = False) -> None:
        super().__init__()
        self._title = title
        self._prompt = prompt
        self._confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as box:
            box.border_title = self._title
            yield Label(escape(self._prompt))
            yield Input(password=True, id="secret")
            if self._confirm:
                yield Label("Again, to be sure:")
                yield Input(password=True, id="again")
            yield Label("", id="secret-error", classes="error")
            yield Label("[b]enter[/] ok   [b]esc[/] cancel", classes="keys")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        secret = self.query_one("#secret", Input).value
        if self._confirm:
            if event.input.id == "secret":
                self.query_one("#again", Input).focus()
                return
            if self.query_one("#again", Input).value != secret:
                self.query_one("#secret-error", Label).update("The two do not match.")
                self.query_one("#again", Input).value = ""
                return
        self.dismiss(secret)


class PickScreen(Dialog):
    """Pick one of `choices` (e.g. the host to install a key on)."""

    def __init__(self, title: str, choices: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self._title = title
        self._choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as box:
            box.border_title = self._title
            yield OptionList(*[Option(label, id=value) for value, label in self._choices])
            yield Label("[b]enter[/] pick   [b]esc[/] cancel", classes="keys")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)


class TextScreen(Dialog):
    """Read-only text (a public key, a Host block, test results, the key list)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "cancel", "Close", id="text.close"),
        Binding("y", "copy", "Copy", id="text.copy"),
    ]

    def __init__(self, title: str, text: str, *, copy: str | None = None) -> None:
        super().__init__()
        self._title = title
        self._text = text
        self._copy = copy

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide") as box:
            box.border_title = self._title
            with VerticalScroll(classes="text-body"):
                yield Static(escape(self._text), id="text")
            keys = "[b]enter[/] / [b]esc[/] close"
            if self._copy is not None:
                keys = "[b]y[/] copy   " + keys
            yield Label(keys, classes="keys")

    def action_copy(self) -> None:
        if self._copy is not None:
            self.app.copy_to_clipboard(self._copy)
            self.notify("Copied to the clipboard (OSC 52: works over SSH too)")
