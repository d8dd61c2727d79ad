"""Kubernetes' protobuf wire schema for the kinds pyk8s decodes (see `controlplane/api/protobuf.py`).

The .proto files are derived from upstream's by `derive.py` (names, field
numbers and types only); `regenerate.sh` compiles them into `gen/`.
"""
