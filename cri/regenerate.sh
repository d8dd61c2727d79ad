#!/usr/bin/env bash
# Regenerates cri/gen/ (messages, gRPC stubs and type stubs) from cri/api.proto.
# The generated files are checked in, so installing pyk8s needs no protoc.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -m grpc_tools.protoc -I cri --python_out=cri/gen --grpc_python_out=cri/gen --pyi_out=cri/gen cri/api.proto
# protoc writes a top-level import; the package lives at cri.gen
sed -i 's/^import api_pb2 as api__pb2$/from cri.gen import api_pb2 as api__pb2/' cri/gen/api_pb2_grpc.py
echo "regenerated cri/gen from cri/api.proto"
