"""Questions the dashboard asks: yes/no, host keys, secrets, a host to pick, text to read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from sshcore.api import HostKeyMismatch, HostKeyQuestion

from ..text import plain, styled


class Dialog(ModalScreen[object]):
    """Base: a bordered box in the middle; escape cancels (dismisses with `cancel_value`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel")
    ]
    cancel_value: object = None
    # Seconds after it appears during which keys do nothing but escape: a question that
    # opens by itself (a password, a host key) while the user is typing elsewhere must not
    # take the rest of the keystrokes into a password field, or a `y` meant for the pane.
    settle: ClassVar[float] = 0.0

    def on_mount(self) -> None:
        self.taking_keys = not self.settle
        if self.settle:
            for field in self.query(Input):
                field.disabled = True
            self.set_timer(self.settle, self.settled)

    def settled(self) -> None:
        """The settle time is over: the fields take keys, the first one has the focus."""
        self.taking_keys = True
        fields = list(self.query(Input))
        for field in fields:
            field.disabled = False
        if fields:
            fields[0].focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (self.settle and action != "cancel" and self.settling())

    def settling(self) -> bool:
        """True until the settle time is over and the fields take keys (a flag, not the
        clock: a key between the end of the time and `settled` would have been lost)."""
        return not getattr(self, "taking_keys", False)

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
            box.border_title = plain(self._title, newlines=False)
            yield Static(plain(self._body), classes="dialog-body")
            yield Label(
                styled("[b]y[/] $yes   [b]n[/] / [b]esc[/] no", yes=self._yes), classes="keys"
            )

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class HostKeyScreen(Dialog):
    """An unknown host key (trust on first use): nothing is trusted unless the user says `y`."""

    settle: ClassVar[float] = 0.3  # it opens by itself: see Dialog.settle

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
            box.border_title = plain(f"New host key: {q.host}", newlines=False)
            yield Static(
                styled(
                    "devtui has never seen [b]$address[/] ($host) before.\n\n"
                    "  $key_type key fingerprint\n"
                    "  [b]$fingerprint[/]\n\n"
                    "Compare it with the fingerprint your provider shows. Trusting it saves it "
                    "to known_hosts, so ssh trusts it too.",
                    address=q.address,
                    host=q.host,
                    key_type=q.key_type,
                    fingerprint=q.fingerprint,
                ),
                classes="dialog-body",
            )
            yield Label("[b]y[/] trust and connect   [b]n[/] / [b]esc[/] refuse", classes="keys")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class HostKeyChangedScreen(Dialog):
    """A changed host key: refused whatever the user presses; says how to replace it."""

    settle: ClassVar[float] = 0.3  # it opens by itself: see Dialog.settle

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
                styled(
                    "[b]$address[/] ($host) now offers a different $key_type key.\n\n"
                    "  known  $old\n"
                    "  now    [b]$new[/]\n"
                    "  from   $file:$line\n\n"
                    "Someone could be intercepting the connection, or the machine was rebuilt. "
                    "devtui refused it. Only if you know it was rebuilt: command palette "
                    "(ctrl+p) > 'Hosts: forget host key of $host', then connect again.",
                    address=m.address,
                    host=m.host,
                    key_type=m.key_type,
                    old=m.old_fingerprint,
                    new=m.new_fingerprint,
                    file=m.known_hosts_file,
                    line=m.known_hosts_line,
                ),
                classes="dialog-body",
            )
            yield Label("[b]enter[/] / [b]esc[/] close", classes="keys")


class SecretScreen(Dialog):
    """A masked input for a password, passphrase or keyboard-interactive answer."""

    settle: ClassVar[float] = 0.3  # it opens by itself: see Dialog.settle

    def __init__(self, title: str, prompt: str, *, confirm: bool = False) -> None:
        super().__init__()
        self._title = title
        self._prompt = prompt
        self._confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as box:
            box.border_title = plain(self._title, newlines=False)
            yield Label(plain(self._prompt))
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
            box.border_title = plain(self._title, newlines=False)
            yield OptionList(*[Option(plain(label), id=value) for value, label in self._choices])
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
            box.border_title = plain(self._title, newlines=False)
            with VerticalScroll(classes="text-body"):
                yield Static(plain(self._text), id="text")
            keys = "[b]enter[/] / [b]esc[/] close"
            if self._copy is not None:
                keys = "[b]y[/] copy   " + keys
            yield Label(keys, classes="keys")

    def action_copy(self) -> None:
        if self._copy is not None:
            self.app.copy_to_clipboard(self._copy)
            self.notify("Copied to the clipboard (OSC 52: works over SSH too)")
