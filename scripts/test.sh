#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need, then runs
# the static checks and pytest. Extra arguments go to pytest (e.g. -k tunnels).
set -euo pipefail
cd "$(dirname "$0")/.."

# Real OpenSSH sshd for the tests, and tmux for the ones that read the real terminal
# (Debian/Ubuntu); skipped where they are already there.
MISSING=""
if ! command -v sshd >/dev/null 2>&1 && [ ! -x /usr/sbin/sshd ]; then
  MISSING="openssh-server openssh-client"
fi
command -v tmux >/dev/null 2>&1 || MISSING="$MISSING tmux"
# Login shells `devtui run` must quote for (tests/test_hardening_*: fish and tcsh users).
command -v fish >/dev/null 2>&1 || MISSING="$MISSING fish"
command -v tcsh >/dev/null 2>&1 || MISSING="$MISSING tcsh"
if [ -n "$MISSING" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $MISSING >/dev/null
  else
    echo "warning: no apt-get to install$MISSING: the tests that need them will be skipped" >&2
  fi
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'

echo "== ruff check"; .venv/bin/ruff check sshcore tui tests bench
echo "== ruff format"; .venv/bin/ruff format --check sshcore tui tests bench
echo "== mypy (sshcore and tui, strict)"; .venv/bin/mypy
echo "== import contracts"; .venv/bin/lint-imports
# One retry for a test that fails once: these tests run real servers, terminals and timers on
# 2 shared cores, and a rare timing failure must not hide the run's result. A retried test
# still shows as "rerun" in the summary, so a flaky one is seen, not silenced.
# Parallel workers (pytest-xdist): most tests wait on servers, timers and terminals, not on
# the CPU, so WORKERS (default 4, for 2 cores) overlap those waits; tests marked xdist_group
# with the same name run one after another on one worker. Each worker has its own servers
# (the sshd harness is per test or per module). WORKERS=0 runs in one process; extra
# arguments still go to pytest (a later -n wins). -rfER names failed, errored and rerun tests.
echo "== pytest"
.venv/bin/python -m pytest --reruns 1 -rfER -n "${WORKERS:-4}" --dist loadgroup "$@"
