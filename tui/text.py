"""The one way text from outside (servers, files, the config, the user) reaches the screen:
as Textual `Content`, never parsed as markup, after control characters are made visible.

`rich.markup.escape` is not enough for Textual 8's markup (`[B="x]`, `[$x]` and `[Word]`
still parse): a server's disconnect reason of `[B="x]` ended the dashboard. Here outside
text is never inside a markup string at all: devtui's own styling is a template whose
`$name` slots Textual fills with the values as plain text."""

from __future__ import annotations

from textual.content import Content

from sshcore.api import visible


def plain(text: object, *, newlines: bool = True) -> Content:
    """`text` shown as it is: no markup, controls as escapes (line feeds kept by default)."""
    return Content(visible(str(text), newlines=newlines))


def styled(template: str, **values: object) -> Content:
    """devtui's own markup `template` ("[b]$host[/] is up") with each `$name` filled by a
    value shown as it is (never read as markup, controls as escapes)."""
    return Content.from_markup(
        template, **{name: visible(str(value), newlines=True) for name, value in values.items()}
    )


def markup_literal(text: object) -> str:
    """`text` written as markup that reads back as itself, for the Textual APIs that parse a
    str whatever the caller wants (the command palette's titles and help). `rich.markup.escape`
    and `textual.markup.escape` both leave `[B="x]` to the parser; an escaped bracket `\\[`
    never opens a tag."""
    return visible(str(text), newlines=True).replace("[", "\\[")
