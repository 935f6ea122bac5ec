#!/usr/bin/env bash
# Create tests/clients/.venv with the pinned MCP Python SDK (tests/clients/requirements.txt)
# for tests/clients/mcp_client.py. Idempotent: does nothing if the venv already has the pinned
# version. The last line of output is the venv's python path.
# Env: PYTHON=python3.x to choose the interpreter (needs >= 3.10).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLIENTS="$ROOT/tests/clients"
REQ="$CLIENTS/requirements.txt"
VENV="$CLIENTS/.venv"
VPY="$VENV/bin/python"
PYTHON="${PYTHON:-python3}"

PIN="$(sed -n 's/^mcp==\([^[:space:]#]*\).*/\1/p' "$REQ" | head -n1)"
if [[ -z "$PIN" ]]; then
    echo "setup-python-clients: no 'mcp==VERSION' pin in $REQ" >&2
    exit 1
fi

# Serialise concurrent runs (e.g. parallel cargo tests) so they don't race on the venv.
if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/rampart-setup-python-clients.lock"
    flock -w 600 9
fi

STAMP="$VENV/.requirements.sha256"
WANT="$(sha256sum "$REQ" | cut -d' ' -f1)"

have_pin() {
    [[ -x "$VPY" ]] && [[ "$("$VPY" -c 'import importlib.metadata as m; print(m.version("mcp"))' 2>/dev/null)" == "$PIN" ]] \
        && [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$WANT" ]]
}

if have_pin; then
    echo "setup-python-clients: $VENV already has mcp==$PIN" >&2
else
    if [[ ! -x "$VPY" ]]; then
        "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "mcp needs Python >= 3.10")'
        echo "setup-python-clients: creating $VENV" >&2
        "$PYTHON" -m venv "$VENV"
    fi
    echo "setup-python-clients: installing $REQ" >&2
    "$VPY" -m pip install --quiet --disable-pip-version-check -r "$REQ" >&2
    echo "$WANT" > "$STAMP"
    if ! have_pin; then
        echo "setup-python-clients: mcp==$PIN not importable from $VENV after install" >&2
        exit 1
    fi
fi

echo "$VPY"
