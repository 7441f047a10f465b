#!/usr/bin/env bash
# The same code on the newest versions pyproject.toml's ranges allow (no constraints.txt), in
# a second venv (.venv-newest): the config, ops, CLI, dashboard and transport tests, so an
# upstream release that breaks devtui is seen here before a user's fresh install meets it.
# Then the config writer on the oldest tomlkit the range allows. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
VENV=.venv-newest
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade \
  --upgrade-strategy eager -e '.[test]'

# What differs from the versions the whole suite passed with: the suspects if this fails.
newer() {
  "$VENV/bin/python" - <<'PY'
import re
from importlib.metadata import distributions

pinned = {}
for line in open("constraints.txt", encoding="utf-8"):
    match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
    if match:
        pinned[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
found = []
for dist in distributions():
    name = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
    if name in pinned and pinned[name] != dist.version:
        found.append(f"{name} {dist.version} (constraints.txt: {pinned[name]})")
print(", ".join(sorted(found)) or "none: the same versions as constraints.txt")
PY
}
echo "== newest versions allowed; differing from constraints.txt: $(newer)"

TESTS=(tests/test_config.py tests/test_ops.py tests/test_cli.py tests/test_cli_net.py
  tests/test_cli_offers.py tests/test_dashboard.py tests/test_dashboard_rows.py
  tests/test_dashboard_markup.py tests/test_asyncssh_fastpath.py tests/test_asyncssh_tuning.py)
if ! "$VENV/bin/python" -m pytest -q --reruns 1 -rfE -p no:warnings -n "${WORKERS:-4}" \
  --dist loadgroup "${TESTS[@]}" "$@"; then
  echo "== FAILED on the newest versions the ranges allow: $(newer)" >&2
  exit 1
fi

# The oldest tomlkit pyproject.toml allows still writes the config as the newest does.
OLDEST_TOMLKIT="$(sed -n 's/.*"tomlkit>=\([0-9.]*\).*/\1/p' pyproject.toml)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "tomlkit==$OLDEST_TOMLKIT"
if ! "$VENV/bin/python" -m pytest -q --reruns 1 -rfE -p no:warnings -n "${WORKERS:-4}" \
  tests/test_config.py tests/test_ops.py; then
  echo "== FAILED on tomlkit $OLDEST_TOMLKIT, the oldest pyproject.toml allows" >&2
  exit 1
fi
