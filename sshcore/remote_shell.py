"""Commands for a host's login shell, whatever shell that is: every word arrives as one argument.

Used by `Core.run` and by anything else that starts a command on a host (jobs, copies).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .errors import DevtuiError
from .visible_text import visible

# `devtui run` wraps the command so that it ends when we close its stdin. sshd sends no signal
# to a command without a terminal, and refuses "signal" requests for root logins (no privsep
# child), so a quiet command (sleep, journalctl -f) would outlive the view that followed it.
# OpenSSH makes each session its own process group: when the wrapper leads its group, `kill 0`
# ends the command and everything it started; otherwise (another server, a login shell that
# forks) only the command itself is signalled. TERM first, KILL 2 s later for those that trap
# it. The command gets /dev/null as stdin; our stdin only says "still watching".
_RUN_WRAPPER = """exec 3<&0
"$@" </dev/null 3<&- & p=$!
g=$(cut -d' ' -f5 "/proc/$$/stat" 2>/dev/null)
t=$p; [ "$g" = "$$" ] && t=0
{ trap '' TERM; cat <&3; kill -TERM "$t"; sleep 2; kill -KILL "$t"; } >/dev/null 2>&1 & w=$!
exec 3<&-
wait "$p"; s=$?; kill -KILL "$w" 2>/dev/null; exit "$s"
"""
# The login shell (sh, bash, fish, csh/tcsh ...) parses what we send before sh sees it, and
# each has its own quoting: fish reads \' inside single quotes, csh fails on a newline in
# quotes and expands `!` even there. So the command holds only letters, digits and a few
# marks every shell leaves alone inside single quotes (no \, ', !, newline): a fixed
# bootstrap for POSIX sh, and every real word (the wrapper above included) written as octal
# digits. The bootstrap turns them back into bytes with printf (the one backslash it needs
# comes from awk: POSIX, on every minimal system) and hands them to sh as they were.
_BOOTSTRAP = (
    'B=$(awk -v f=%c "BEGIN{printf f,92}"); '
    "for e do shift; f=; e=${e#x}; "
    'while [ -n "$e" ]; do r=${e#???}; f=$f$B${e%"$r"}; e=$r; done; '
    'a=$(printf "$f"; printf x); set -- "$@" "${a%x}"; done; '
    'exec sh -c "$@"'
)
# Words a Windows shell (cmd.exe, PowerShell) takes as they are: no quotes, no & | < > ^ %
# ! ( ) ; $ ` or spaces. devtui cannot know which of the two runs a command, and they quote
# differently, so other words are refused rather than quoted for the wrong one.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./\\:=@+,-]+")


def non_posix_command(host: str, argv: Sequence[str]) -> str:
    """`argv` as a command line for a host without a POSIX sh (Windows): its words joined
    when each is plain; otherwise a clear error (POSIX quoting there ran `a&whoami`'s
    second half under cmd.exe)."""
    for word in argv:
        if not _PLAIN_WORD.fullmatch(word):
            raise DevtuiError(
                f"{host} has no POSIX shell (a Windows host?): devtui cannot pass "
                f"{visible(repr(word))} there as one word safely; give the whole command as "
                "one quoted word, written for that host's own shell"
            )
    return " ".join(argv)


POSIX_PROBE = "sh -c 'awk -v f=%c \"BEGIN{printf f,92}\" && echo devtui-posix'"
POSIX_ANSWER = b"\\devtui-posix\n"  # a backslash from awk, then the marker


def _octal_word(word: str) -> str:
    """`word` as "x" and three octal digits per byte (never empty, nothing to quote)."""
    data = word.encode("utf-8", "surrogateescape")  # undecodable argv bytes go back as bytes
    return "x" + "".join(f"{byte:03o}" for byte in data)


def sh_script(script: str, *args: str) -> str:
    """The command line that runs `sh -c SCRIPT sh ARGS...` on a POSIX host whatever its
    login shell is: the script and each argument arrive as they were, one word each."""
    words = [_octal_word(w) for w in (script, "sh", *args)]
    return f"exec sh -c '{_BOOTSTRAP}' sh {' '.join(words)}"


def posix_command(argv: Sequence[str]) -> str:
    """The command line that runs `argv` under _RUN_WRAPPER whatever the login shell is."""
    return sh_script(_RUN_WRAPPER, *argv)
