"""The generated messages put fields on the wire under the upstream CRI v1 tag numbers.

containerd decodes what we send by tag number alone, so a renumbered field
would silently land in another field. Each expectation below is computed by hand
from the upstream numbers: tag byte = (field_number << 3) | wire_type.
"""

from __future__ import annotations

from cri import api_pb2


def test_pod_sandbox_metadata_tags() -> None:
    msg = api_pb2.PodSandboxMetadata(name="a", uid="b", namespace="c", attempt=1)
    # name=1 (0x0a), uid=2 (0x12), namespace=3 (0x1a) as length-delimited, attempt=4 varint (0x20)
    assert msg.SerializeToString() == b"\x0a\x01a\x12\x01b\x1a\x01c\x20\x01"


def test_container_config_log_path_tag() -> None:
    msg = api_pb2.ContainerConfig(log_path="x")
    # log_path=11, length-delimited: (11 << 3) | 2 = 0x5a
    assert msg.SerializeToString() == b"\x5a\x01x"


def test_memory_limit_tag() -> None:
    msg = api_pb2.LinuxContainerResources(memory_limit_in_bytes=1)
    # memory_limit_in_bytes=4, varint: (4 << 3) | 0 = 0x20
    assert msg.SerializeToString() == b"\x20\x01"
