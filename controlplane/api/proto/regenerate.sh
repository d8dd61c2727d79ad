#!/usr/bin/env bash
# Regenerates controlplane/api/proto/gen/ (messages and type stubs) from the .proto files here.
# The generated modules are checked in, so installing pyk8s needs no protoc.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PY:-.venv/bin/python}
DIR=controlplane/api/proto
rm -f "$DIR"/gen/*_pb2.py "$DIR"/gen/*_pb2.pyi
"$PY" -m grpc_tools.protoc -I "$DIR" --python_out="$DIR/gen" --pyi_out="$DIR/gen" "$DIR"/*.proto
# protoc writes top-level imports; the modules live in the controlplane.api.proto.gen package
sed -i -E 's/^import (\w+_pb2) as /from controlplane.api.proto.gen import \1 as /' "$DIR"/gen/*_pb2.py "$DIR"/gen/*_pb2.pyi
sed -i -E 's/^import (\w+_pb2) as /from controlplane.api.proto.gen import \1 as /; s/^from (\w+_pb2) import /from controlplane.api.proto.gen.\1 import /' "$DIR"/gen/*_pb2.pyi
echo "regenerated $DIR/gen from $DIR/*.proto"
