#!/usr/bin/env bash
# Creates (or refreshes) the project's virtualenv in .venv, idempotently.
# A registry is asked only when something is missing: once the venv holds what
# pyproject.toml asks for, this script does no network I/O at all.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

stamp=.venv/.pyk8s-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)

if [ ! -x .venv/bin/python ]; then
    if ! "$PY" -m venv .venv 2>/dev/null; then
        # Debian's python3 needs python3-venv for ensurepip.
        if command -v apt-get >/dev/null 2>&1; then
            apt-get install -y -q python3-venv >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q python3-venv >/dev/null; }
        fi
        rm -rf .venv
        "$PY" -m venv .venv
    fi
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && .venv/bin/python -c 'import pyk8s, aiohttp, grpc, pytest' 2>/dev/null; then
    exit 0
fi

for attempt in 1 2 3 4 5; do
    if .venv/bin/python -m pip install -q --disable-pip-version-check setuptools wheel &&
       .venv/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation -e '.[dev]'; then
        echo "$want" > "$stamp"
        exit 0
    fi
    echo "bootstrap: pip failed (attempt $attempt), retrying in $((attempt * 15)) s" >&2
    sleep $((attempt * 15))
done
echo "bootstrap: could not install the Python dependencies" >&2
exit 1
