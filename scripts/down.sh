#!/usr/bin/env bash
# `make down`: stop the lab `make up` started (processes, pods, namespaces, bridge) and remove its data.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-$PWD/.data}
if [ -x .venv/bin/pyk8s ]; then
    .venv/bin/pyk8s lab down --data-dir "$DATA"
fi
rm -rf "$DATA"
echo "pyk8s is down"
