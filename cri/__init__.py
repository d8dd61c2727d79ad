"""CRI v1: the project's protocol subset, its generated code, and an async client for containerd."""

from cri.gen import api_pb2

__all__ = ["api_pb2"]
