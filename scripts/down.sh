#!/usr/bin/env bash
# `make down`: stop what `make up` started (the control plane) and remove its data.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-$PWD/.data}
if [ -f "$DATA/server.pid" ]; then
    pid=$(cat "$DATA/server.pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
fi
rm -rf "$DATA"
echo "pyk8s is down"
