#!/usr/bin/env bash
# Runs the Python client's test suite against a real sessiond.
#
#   clients/python/run-tests.sh [pytest args...]
#
# Needs python3 (3.10+) and PyPI. Makes clients/python/.venv (gitignored),
# installs the package editable with its pinned test dependencies, then runs
# pytest; the exit code is pytest's. The sessiond binary comes from
# SESSIOND_BIN, else ../../target/release/sessiond, else
# ../../target/debug/sessiond (the tests fail, never skip, without one).
# The store-down test also needs redis-server on the PATH.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
VENV=.venv

venv_ok() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; }

if ! venv_ok; then
  rm -rf "$VENV"
  echo "run-tests: creating $VENV with $("$PYTHON" --version 2>&1)"
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    # Debian/Ubuntu without python3-venv have no ensurepip: make the venv
    # without pip and bootstrap pip from its wheel on PyPI.
    echo "run-tests: no ensurepip; bootstrapping pip from PyPI"
    rm -rf "$VENV"
    "$PYTHON" -m venv --without-pip "$VENV"
    "$VENV/bin/python" - <<'PY'
import json, os, subprocess, sys, tempfile, urllib.parse, urllib.request
api = "https://pypi.org/pypi/pip/json"
meta = json.load(urllib.request.urlopen(api, timeout=60))
wheel = next(f for f in meta["urls"] if f["packagetype"] == "bdist_wheel")
path = os.path.join(tempfile.mkdtemp(), wheel["filename"])
urllib.request.urlretrieve(urllib.parse.urljoin(api, wheel["url"]), path)
subprocess.check_call([sys.executable, os.path.join(path, "pip"), "install", "-q", path])
PY
  fi
fi

echo "run-tests: pip install -e '.[test]'"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'

set +e
"$VENV/bin/python" -m pytest "$@"
status=$?
set -e
exit "$status"
