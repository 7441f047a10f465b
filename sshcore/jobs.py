"""Remote jobs: commands started detached on a host, so that they outlive the link, devtui
and the laptop's sleep; their record lives ON the host.

A job is a directory `${XDG_CACHE_HOME:-$HOME/.cache}/devtui/jobs/NAME/` on the host:

    command   the command as the user gave it (shown by `jobs list`)
    mode      "tmux" (inside tmux session devtui-NAME, attachable) or "setsid"
    started   start time, UTC, ISO 8601
    pgid      the job's process group (its wrapper leads it)
    output    stdout and stderr together
    status    the exit status, written by the wrapper when the command ends (128+N after
              signal N); written by `stop` when it had to KILL the wrapper too

Every step is a small POSIX sh script run with `sh_script` (any login shell) and read with
`run_bounded` (a hostile host cannot fill memory or hang us); the output of a job is
streamed through `Core.run` and shown through `visible`. Nothing here knows the facade: it
takes a `core` (the JobHost protocol: follow.py's FollowedHost).
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncssh

from .errors import DevtuiError
from .follow import FollowedHost, LineReader
from .model import name_problem
from .remote_commands import KIB, MIB, RemoteCommandError, run_bounded
from .remote_shell import _octal_word, sh_script
from .session import HostState
from .visible_text import visible

JobState = Literal["running", "exited"]
JobMode = Literal["tmux", "setsid"]
LineCallback = Callable[[str], None]

STOP_GRACE = 3.0  # seconds between TERM and KILL
ANSWER_TIMEOUT = 20.0  # a fixed script's whole exchange (start waits up to 5 s for the pid)
LIST_LIMIT = 4 * MIB  # a job's record is < 5 KiB: room for ~800 jobs
RETRY_DELAY = 1.0  # seconds between attempts to resume following while reconnecting
MAX_RETRIES = 60  # failed attempts in a row before following gives up (~1 min and more)
_COMMAND_LIMIT = 4 * KIB  # of a job's command, as listed (the host may hold a longer one)
_INTERPRETERS = frozenset(
    {"python", "python3", "sh", "bash", "zsh", "node", "ruby", "perl", "uv", "deno", "bun"}
)


# What jobs need of the core (a host's connection, whether it has a POSIX sh, a command run
# on it, the state of its connection) is what following a log needs: one protocol.
JobHost = FollowedHost


@dataclass(frozen=True)
class JobInfo:
    """A job as its record on the host says. `exit_status` is None while it runs, and also
    for a job that ended without one (its wrapper was killed, the host rebooted)."""

    name: str
    host: str
    state: JobState
    exit_status: int | None
    pid: int | None  # the process group the job leads; None for a damaged record
    started: datetime | None
    command: str
    mode: JobMode

    @property
    def running(self) -> bool:
        return self.state == "running"

    def state_text(self) -> str:
        """`running`, `exited N`, or `exited ?` (no status was written)."""
        if self.running:
            return "running"
        return f"exited {'?' if self.exit_status is None else self.exit_status}"

    def as_json(self) -> dict[str, object]:
        """The issue's keys exactly: name, host, state, exit_status, pid, started, command."""
        return {
            "name": self.name,
            "host": self.host,
            "state": self.state,
            "exit_status": self.exit_status,
            "pid": self.pid,
            "started": self.started.isoformat() if self.started else None,
            "command": self.command,
        }


@dataclass(frozen=True)
class JobStopped:
    """What `stop_job` did: `how` is "term" (ended on TERM), "kill" (needed KILL after the
    grace period) or "not-running" (it had ended already)."""

    job: JobInfo
    how: Literal["term", "kill", "not-running"]

    def message(self) -> str:
        """One line for the user."""
        j = self.job
        if self.how == "not-running":
            return f"job {j.name} on {j.host} was not running ({j.state_text()})"
        if self.how == "kill":
            return (
                f"job {j.name} on {j.host} ignored TERM; killed its process group {j.pid} "
                f"({j.state_text()})"
            )
        return f"job {j.name} on {j.host} stopped: TERM to its process group {j.pid} ({j.state_text()})"


# -- the host's side -------------------------------------------------------------------------
# Shared by every script: where jobs live, whether a group lives, one record as NUL-separated
# fields ("job", name, pgid, alive 0/1, status, started, mode, command), and why a job's
# directory is missing (no such job, or its processes still run without a record: found by
# the wrapper's arguments, which hold the directory).
_PRELUDE = r"""J=${XDG_CACHE_HOME:-$HOME/.cache}/devtui/jobs
alive() {
  [ -n "$1" ] && kill -0 -"$1" 2>/dev/null || return 1
  # A zombie answers kill -0 too, and where PID 1 reaps none (a container) it stays: ask ps
  # for a member that is not one (no ps, or one without these columns: kill -0 has it).
  z=$(ps -eo pgid=,stat= 2>/dev/null) && [ -n "$z" ] || return 0
  printf '%s\n' "$z" | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'
}
field() { cat "$1" 2>/dev/null | head -c 200 | tr -d '\000\n'; }
rec() {
  p=$(field "$1/pgid"); a=0; alive "$p" && a=1
  printf 'job\000%s\000%s\000%s\000%s\000%s\000%s\000' "${1##*/}" "$p" "$a" \
    "$(field "$1/status")" "$(field "$1/started")" "$(field "$1/mode")"
  head -c 4096 "$1/command" 2>/dev/null | tr -d '\000'; printf '\000'
}
missing() {
  g=$(ps -eo pgid=,args= 2>/dev/null | awk -v d="$1" \
    'index($0, " " d " setsid ") || index($0, " " d " tmux ") { print $1; exit }')
  echo "nojob ${g:-}"
}
"""

# Runs detached, as the leader of the job's own process group: $1 the job's directory, $2
# the mode, then the command. It outlives the group's TERM (a trap, which the command does
# not inherit: exec resets caught signals) to write the status once the command ended; the
# status appears (mv) only after all the output is in the file, so a follower that sees it
# has seen everything.
_WRAPPER = r"""d=$1; m=$2; shift 2
# The output goes to a file (or tee), not a terminal: Python would hold a training run's
# prints in an 8 KiB buffer for minutes. Line by line is what a follower expects.
PYTHONUNBUFFERED=${PYTHONUNBUFFERED:-1}; export PYTHONUNBUFFERED
trap 'got=1' HUP INT TERM
g=$(cut -d' ' -f5 "/proc/$$/stat" 2>/dev/null) || g=
case $g in ''|*[!0-9]*) g=$(ps -o pgid= -p $$ 2>/dev/null | tr -d ' ') ;; esac
case $g in ''|*[!0-9]*) g=$$ ;; esac
date -u +%Y-%m-%dT%H:%M:%SZ > "$d/started"
echo "$g" > "$d/pgid.tmp" && mv -f "$d/pgid.tmp" "$d/pgid"
if [ "$m" = tmux ]; then
  # Seen in the pane and kept in the file. tee ignores TERM (inherited), so what the
  # command says while it stops is kept; it ends when the command's side closes.
  { trap 'got=1' HUP INT TERM; "$@"; echo $? > "$d/status.tmp"; } 2>&1 |
    (trap '' HUP INT TERM; exec tee -a "$d/output")
else
  "$@" </dev/null >>"$d/output" 2>&1
  echo $? > "$d/status.tmp"
fi
mv -f "$d/status.tmp" "$d/status" 2>/dev/null || echo 255 > "$d/status"
"""

# $1 name, $2 "tmux"/"setsid"/"" (wanted mode; "" = tmux when there), $3 the command as shown,
# $4 the wrapper, $5 the login-shell-proof prefix that runs it (for tmux), $6 the rest of
# that line (mode and command, encoded), then the command's words.
# Answers: "inuse", "tmux-failed" + tmux's words, or "ok" and the job's record.
_START = r"""n=$1; want=$2; text=$3; W=$4; pre=$5; post=$6; shift 6
d=$J/$n
mkdir -p "$J" || exit 1
if [ -d "$d" ]; then
  p=$(field "$d/pgid")
  if [ ! -e "$d/status" ] && alive "$p"; then echo inuse; exit 0; fi
  rm -rf "$d"
fi
mkdir "$d" 2>/dev/null || { echo inuse; exit 0; }
printf '%s' "$text" > "$d/command"
: > "$d/output"
m=setsid
if [ "$want" != setsid ] && command -v tmux >/dev/null 2>&1; then m=tmux; fi
echo "$m" > "$d/mode"
if [ "$m" = tmux ]; then
  s=$(printf '%s' "devtui-$n" | tr . _)
  echo "$s" > "$d/tmux"
  e=$(printf '%s' "$d" | od -An -b -v | tr -d ' \n')
  if ! tmux new-session -d -s "$s" "$pre x$e $post" </dev/null >"$d/tmux.err" 2>&1; then
    echo tmux-failed; head -c 2000 "$d/tmux.err"; rm -rf "$d"; exit 0
  fi
elif command -v setsid >/dev/null 2>&1; then
  setsid sh -c "$W" sh "$d" setsid "$@" </dev/null >/dev/null 2>&1 &
elif command -v perl >/dev/null 2>&1; then
  perl -e 'use POSIX; POSIX::setsid(); exec @ARGV or exit 127' sh -c "$W" sh "$d" setsid "$@" \
    </dev/null >/dev/null 2>&1 &
else
  nohup sh -c "$W" sh "$d" setsid "$@" </dev/null >/dev/null 2>&1 &
fi
i=0
while [ ! -s "$d/pgid" ] && [ ! -e "$d/status" ] && [ $i -lt 50 ]; do
  sleep 0.1 2>/dev/null || sleep 1; i=$((i + 1))
done
echo ok; rec "$d"
"""

# $1 a name, or "" for every job.
_LIST = r"""if [ -n "$1" ]; then
  if [ -d "$J/$1" ]; then echo ok; rec "$J/$1"; else missing "$J/$1"; fi; exit 0
fi
echo ok
[ -d "$J" ] || exit 0
for d in "$J"/*; do [ -d "$d" ] && rec "$d"; done
exit 0
"""

# $1 name, $2 grace in tenths of a second. TERM to the group, KILL after the grace period;
# the status is the wrapper's, or 137 when the wrapper itself had to be killed.
_STOP = r"""d=$J/$1; t=$2
[ -d "$d" ] || { missing "$d"; exit 0; }
p=$(field "$d/pgid")
[ -n "$p" ] || { echo broken; exit 0; }
if [ -e "$d/status" ] || ! alive "$p"; then echo not-running; rec "$d"; exit 0; fi
how=term
kill -TERM -"$p" 2>/dev/null
i=0
while alive "$p" && [ $i -lt "$t" ]; do sleep 0.1 2>/dev/null || sleep 1; i=$((i + 1)); done
if alive "$p"; then
  how=kill; kill -KILL -"$p" 2>/dev/null
  i=0; while alive "$p" && [ $i -lt 50 ]; do sleep 0.1 2>/dev/null || sleep 1; i=$((i + 1)); done
fi
[ -e "$d/status" ] || { echo 137 > "$d/status.tmp" && mv -f "$d/status.tmp" "$d/status"; }
echo "$how"; rec "$d"
"""

# $1 name. The tmux session to attach to, or why not.
_ATTACH = r"""d=$J/$1
[ -d "$d" ] || { missing "$d"; exit 0; }
if [ "$(field "$d/mode")" != tmux ]; then echo not-tmux; exit 0; fi
if [ -e "$d/status" ]; then echo ended; exit 0; fi
s=$(field "$d/tmux")
tmux has-session -t "=$s" 2>/dev/null || { echo no-session; exit 0; }
echo ok; echo "$s"
"""

# The job's output: $1 name, $2 offset to start at ("" the first time), $3 the last N lines
# first ("" for all), $4 1 to follow until the job ends. A NUL-framed marker (as follow.py's)
# says the offset the bytes start at, so a resume after a dropped link neither repeats nor
# skips. Exit 0: shown all (the job ended, or not following); 3: the directory is gone; 4: the
# job's group is gone without a status (killed with its wrapper).
_OUTPUT = r"""d=$J/$1; off=$2; n=$3; f=$4; o=$d/output
[ -d "$d" ] || { echo "the job's directory $d is gone" >&2; exit 3; }
size() { s=$(wc -c < "$o" 2>/dev/null) || s=0; echo $((s)); }
if [ -z "$off" ]; then
  off=0
  if [ -n "$n" ]; then
    sz=$(size); last=$(tail -n "$n" "$o" 2>/dev/null | wc -c); off=$((sz - last))
    [ "$off" -ge 0 ] || off=0
  fi
fi
printf '\000devtui-follow 0 %s\000' "$off"
p=$(field "$d/pgid")
while :; do
  [ -d "$d" ] || { echo "the job's directory $d was removed" >&2; exit 3; }
  e=; [ -e "$d/status" ] && e=1
  [ -n "$e" ] || [ -z "$p" ] || alive "$p" || e=4
  sz=$(size)
  if [ "$sz" -gt "$off" ]; then
    tail -c +$((off + 1)) "$o" | head -c $((sz - off)); off=$sz
  fi
  [ "$e" = 1 ] && exit 0
  [ "$e" = 4 ] && exit 4
  [ "$f" = 1 ] || exit 0
  sleep 0.2 2>/dev/null || sleep 1
  [ -n "$p" ] || p=$(field "$d/pgid")
done
"""


# -- the client's side -----------------------------------------------------------------------
def job_name_problem(name: str) -> str | None:
    """Why `name` cannot name a job (it is a directory on the host), or None."""
    return name_problem(name)


def default_job_name(command: Sequence[str] | str, taken: set[str] | frozenset[str]) -> str:
    """A name from the command: its program's base name (the script's, for `python x.py`),
    made a safe path component and unique among `taken` (train, train-2, train-3 ...)."""
    if isinstance(command, str):
        try:
            words = shlex.split(command)
        except ValueError:
            words = command.split()
    else:
        words = list(command)
    words = [w for w in words if "=" not in w.split("/")[0]] or words  # skip FOO=1 prefixes
    base = os.path.basename(words[0].rstrip("/")) if words else ""
    if base in _INTERPRETERS and len(words) > 1 and not words[1].startswith("-"):
        base = os.path.splitext(os.path.basename(words[1].rstrip("/")))[0]
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip(".-")[:50] or "job"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def _check_name(name: str) -> None:
    problem = job_name_problem(name)
    if problem:
        raise DevtuiError(f"job name {visible(repr(name))} {problem}")


def _unknown(host: str, name: str, answer: bytes) -> DevtuiError:
    """The error for a job whose directory is missing: unknown, or removed by hand while
    its processes still run."""
    words = answer.split()
    if len(words) > 1 and words[1].isdigit():
        return DevtuiError(
            f"job {name} on {host} has no record any more (its directory was removed by "
            f"hand) but its process group {int(words[1])} still runs; stop it there with "
            f"kill -- -{int(words[1])}"
        )
    return DevtuiError(f"no job {name} on {host} (see: devtui jobs list {host})")


async def _posix_connection(core: JobHost, host: str) -> asyncssh.SSHClientConnection:
    conn = await core.connection(host)
    if not await core.is_posix(host, conn):
        raise DevtuiError(
            f"jobs need a POSIX shell (sh) on {host}; it has none (a Windows host?): "
            f"run the command with devtui run or devtui shell there instead"
        )
    return conn


async def _ask(
    core: JobHost,
    host: str,
    script: str,
    *args: str,
    what: str,
    timeout: float = ANSWER_TIMEOUT,
) -> bytes:
    """Run one of the scripts above with `args`; its stdout, capped and in time."""
    conn = await _posix_connection(core, host)
    try:
        result = await run_bounded(
            conn,
            sh_script(_PRELUDE + script, *args),
            limit=LIST_LIMIT,
            timeout=timeout,
            what=f"{host}: {what}",
        )
    except RemoteCommandError:
        raise
    except (asyncssh.Error, OSError) as e:  # refused, or the link dropped meanwhile
        raise DevtuiError(visible(f"{host}: {what} did not finish: {e}")) from None
    if result.exit_status != 0:
        said = result.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = said[-1] if said else f"exit status {result.exit_status}"
        raise DevtuiError(visible(f"{host}: {what} failed: {reason}"))
    return result.stdout


def _parse_records(host: str, data: bytes) -> list[JobInfo]:
    """Records as rec() prints them; a damaged or forged field is left out, not trusted."""
    fields = data.split(b"\0")
    jobs: list[JobInfo] = []
    i = 0
    while i + 8 <= len(fields):
        if fields[i] != b"job":
            i += 1
            continue
        raw_name, pgid, alive, status, started, mode, command = (
            f.decode("utf-8", "replace") for f in fields[i + 1 : i + 8]
        )
        i += 8
        if job_name_problem(raw_name):  # a directory made by hand with an odd name
            continue
        exit_status = int(status) if status.isdigit() and len(status) <= 3 else None
        running = exit_status is None and alive == "1"
        jobs.append(
            JobInfo(
                name=raw_name,
                host=host,
                state="running" if running else "exited",
                exit_status=None if running else exit_status,
                pid=int(pgid) if pgid.isdigit() and len(pgid) <= 10 else None,
                started=_parse_time(started),
                command=visible(command[:_COMMAND_LIMIT]),
                mode="tmux" if mode == "tmux" else "setsid",
            )
        )
    return sorted(jobs, key=lambda j: (j.started is None, j.started or datetime.min, j.name))


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _head(data: bytes) -> tuple[str, bytes]:
    """The answer's first line (its verdict) and the rest."""
    line, _, rest = data.partition(b"\n")
    return line.decode("ascii", "replace").strip(), rest


async def list_jobs(core: JobHost, host: str) -> list[JobInfo]:
    """Every job whose record is on `host`, oldest first."""
    answer = await _ask(core, host, _LIST, "", what="listing jobs")
    verdict, rest = _head(answer)
    if verdict != "ok":
        raise DevtuiError(f"{host}: listing jobs failed: unexpected answer")
    return _parse_records(host, rest)


async def job_info(core: JobHost, host: str, name: str) -> JobInfo:
    """Job `name` on `host`; DevtuiError when there is none."""
    _check_name(name)
    answer = await _ask(core, host, _LIST, name, what=f"reading job {name}")
    verdict, rest = _head(answer)
    found = _parse_records(host, rest) if verdict == "ok" else []
    if not found:
        raise _unknown(host, name, answer)
    return found[0]


async def start_job(
    core: JobHost,
    host: str,
    command: Sequence[str] | str,
    name: str | None = None,
    *,
    mode: JobMode | None = None,
) -> JobInfo:
    """Start `command` detached on `host` and return at once with its record.

    A list runs exactly as given; a str is a line for the user's login shell there. Inside
    tmux session devtui-NAME when the host has tmux (or `mode` says so), else in a session
    of its own (setsid, nohup without it). `name` defaults to one made from the command;
    a running job's name is refused, an ended job's record is replaced."""
    words = [command] if isinstance(command, str) else list(command)
    if not words or not words[0]:
        raise DevtuiError("nothing to start: give a command")
    if any("\0" in w for w in words):
        raise DevtuiError("a command word cannot hold a NUL character")
    if name is None:
        name = default_job_name(command, {j.name for j in await list_jobs(core, host)})
    _check_name(name)
    if isinstance(command, str):
        argv = ["sh", "-c", 'exec "${SHELL:-/bin/sh}" -c "$1"', "sh", command]
        shown = command
    else:
        argv = list(command)
        shown = shlex.join(argv)
    # tmux runs its pane's command with the user's shell (fish, csh ...): the same
    # login-shell-proof line as every command; the host adds its directory's word.
    prefix = sh_script(_WRAPPER)
    rest = " ".join(_octal_word(w) for w in ["tmux", *argv])
    answer = await _ask(
        core,
        host,
        _START,
        name,
        mode or "",
        shown,
        _WRAPPER,
        prefix,
        rest,
        *argv,
        what=f"starting job {name}",
    )
    verdict, rest_answer = _head(answer)
    if verdict == "inuse":
        raise DevtuiError(
            f"a job named {name} already runs on {host}: pick another name (--name) or stop "
            f"it first (devtui jobs stop {host} {name})"
        )
    if verdict == "tmux-failed":
        said = visible(rest_answer.decode("utf-8", "replace").strip())
        raise DevtuiError(f"{host}: tmux did not start job {name}: {said or 'no reason given'}")
    found = _parse_records(host, rest_answer) if verdict == "ok" else []
    if not found:
        raise DevtuiError(f"{host}: starting job {name} failed: unexpected answer")
    return found[0]


async def stop_job(core: JobHost, host: str, name: str, grace: float = STOP_GRACE) -> JobStopped:
    """Stop job `name`'s whole process group: TERM, then KILL after `grace` seconds."""
    _check_name(name)
    tenths = max(1, round(grace * 10))
    answer = await _ask(
        core,
        host,
        _STOP,
        name,
        str(tenths),
        what=f"stopping job {name}",
        timeout=ANSWER_TIMEOUT + grace,
    )
    verdict, rest = _head(answer)
    if verdict == "broken":
        raise DevtuiError(
            f"job {name} on {host} has a damaged record (no process group in it); "
            "its directory was changed by hand"
        )
    found = _parse_records(host, rest)
    if verdict not in ("term", "kill", "not-running") or not found:
        raise _unknown(host, name, answer)
    hows: dict[str, Literal["term", "kill", "not-running"]] = {
        "term": "term",
        "kill": "kill",
        "not-running": "not-running",
    }
    return JobStopped(found[0], hows[verdict])


async def attach_command(core: JobHost, host: str, name: str) -> str:
    """The command line that attaches a terminal to tmux job `name` (run it in a PTY on
    the host, e.g. with Core.shell); a clear error for a job that cannot be attached."""
    _check_name(name)
    answer = await _ask(core, host, _ATTACH, name, what=f"finding job {name}")
    verdict, rest = _head(answer)
    if verdict == "ok":
        session = rest.decode("utf-8", "replace").strip()
        if not re.fullmatch(r"devtui-[A-Za-z0-9_-]{1,64}", session):
            raise DevtuiError(f"job {name} on {host} has a damaged record (its tmux session)")
        return sh_script('exec tmux attach-session -t "=$1"', session)
    if verdict == "not-tmux":
        raise DevtuiError(
            f"job {name} on {host} runs without tmux (the host had none when it started): "
            f"it cannot be attached; see its output with devtui jobs logs -f {host} {name}"
        )
    if verdict == "ended":
        raise DevtuiError(
            f"job {name} on {host} has ended: nothing to attach to "
            f"(see: devtui jobs logs {host} {name})"
        )
    if verdict == "no-session":
        raise DevtuiError(f"job {name} on {host}: its tmux session is gone")
    raise _unknown(host, name, answer)


async def job_output(
    core: JobHost, host: str, name: str, on_line: LineCallback, lines: int | None = None
) -> None:
    """Pass the job's output so far (or its last `lines` lines) to `on_line`, line by line."""
    await _stream(core, host, name, on_line, lines, None, follow=False)


async def follow_job(
    core: JobHost,
    host: str,
    name: str,
    on_line: LineCallback,
    lines: int | None = None,
    on_notice: LineCallback | None = None,
) -> int | None:
    """Stream the job's output (from the start, or its last `lines` lines) until the job
    ends, through dropped connections; returns its exit status (None when it ended without
    one: killed together with its wrapper). `on_notice`: what to tell the user meanwhile."""
    await _stream(core, host, name, on_line, lines, on_notice, follow=True)
    return (await job_info(core, host, name)).exit_status


async def _stream(
    core: JobHost,
    host: str,
    name: str,
    on_line: LineCallback,
    lines: int | None,
    on_notice: LineCallback | None,
    *,
    follow: bool,
) -> None:
    _check_name(name)
    if lines is not None and lines < 0:
        raise DevtuiError("the number of lines must be 0 or more")
    notice = on_notice or (lambda text: None)
    await job_info(core, host, name)  # an unknown job (or no POSIX sh) is said first, clearly
    reader = LineReader(on_line)
    said: list[str] = []
    errors = LineReader(said.append)
    started = False
    failures = 0

    def output(label: str, data: bytes) -> None:
        (reader if label == "stdout" else errors).feed(data)

    while True:
        offset = str(reader.offset) if started else ""
        argv = ["sh", "-c", _PRELUDE + _OUTPUT, "sh", name, offset]
        argv += ["" if lines is None else str(lines), "1" if follow else "0"]
        try:
            status = await core.run(host, argv, output)
            failures = 0
        except DevtuiError as e:
            # A link killed mid-command can also fail the next try on the dying connection
            # (its sh check unanswered): try again while the session heals, a while at most.
            failures += 1
            if (
                not follow
                or failures > MAX_RETRIES
                or core.host_state(host).state == HostState.FAILED
            ):
                raise
            started = started or bool(reader.inode)
            reader.drop_partial()
            notice(f"{host}: {e}; resuming when the connection is back")
            await asyncio.sleep(RETRY_DELAY)
            continue
        reader.flush()
        errors.flush()
        if status == 3:
            raise DevtuiError(
                f"job {name} on {host}: its directory was removed "
                f"({said[-1] if said else 'by hand'})"
            )
        if status not in (0, 4):
            reason = said[-1] if said else f"exit status {status}"
            raise DevtuiError(f"{host}: reading job {name}'s output failed: {reason}")
        return
