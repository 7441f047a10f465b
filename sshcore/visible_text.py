"""Server text made safe to print: control characters shown as escapes, as OpenSSH's strnvis.

A server's version string, disconnect reason, banner or keyboard-interactive prompt is
whatever its operator wants it to be: an escape sequence in it could retitle the terminal,
move the cursor or draw a fake prompt over ours. Everything a server says goes through
`visible` before it reaches an event, a message, the log or the dashboard.
"""

from __future__ import annotations

# Invisible characters that reorder or hide text (bidi overrides, line separators).
_INVISIBLE = frozenset(
    chr(c) for c in (0x200B, 0x200E, 0x200F, 0x2028, 0x2029, 0xFEFF, *range(0x202A, 0x202F))
) | frozenset(chr(c) for c in range(0x2066, 0x206A))


def _escape(c: str) -> str:
    code = ord(c)
    # Octal, as strnvis(VIS_OCTAL): ESC shows as \033.
    return f"\\{code:03o}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str, *, newlines: bool = False) -> str:
    """`text` with C0/C1 controls, DEL, lone surrogates and invisible reordering characters
    written as escapes (\\033, \\u202e); tabs stay, and line feeds too when `newlines`."""
    if text.isprintable():  # the usual case: nothing to do
        return text
    out = []
    for c in text:
        code = ord(c)
        if c == "\t" or (newlines and c == "\n"):
            out.append(c)
        elif code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code < 0xE000 or c in _INVISIBLE:
            out.append(_escape(c))
        else:
            out.append(c)
    return "".join(out)
