#!/usr/bin/env bash
# `make down`: remove everything `make up` made (processes, namespaces, mounts, the bridge).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-$PWD/.data}
.venv/bin/pyk8s lab down --data-dir "$DATA"
