#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need, then runs
# the static checks and pytest. Extra arguments go to pytest (e.g. -k tunnels).
set -euo pipefail
cd "$(dirname "$0")/.."

# Real OpenSSH sshd for the tests (Debian/Ubuntu); skipped where it is already there.
if ! command -v sshd >/dev/null 2>&1 && [ ! -x /usr/sbin/sshd ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssh-server openssh-client >/dev/null
  else
    echo "warning: no sshd and no apt-get: tests that need OpenSSH will be skipped" >&2
  fi
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff check"; .venv/bin/ruff check sshcore tui tests bench
echo "== ruff format"; .venv/bin/ruff format --check sshcore tui tests bench
echo "== mypy (sshcore, strict)"; .venv/bin/mypy
echo "== import contracts"; .venv/bin/lint-imports
echo "== pytest"; .venv/bin/python -m pytest "$@"
