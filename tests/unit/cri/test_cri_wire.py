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


def test_two_byte_tags_and_nested_wrappers() -> None:
    # ContainerStatus.image_id=17: (17 << 3) | 2 = 138 -> varint 0x8a 0x01
    assert api_pb2.ContainerStatus(image_id="i").SerializeToString() == b"\x8a\x01\x01i"
    # ImageSpec.user_specified_image=18: (18 << 3) | 2 = 146 -> 0x92 0x01
    assert api_pb2.ImageSpec(user_specified_image="u").SerializeToString() == b"\x92\x01\x01u"
    # LinuxContainerSecurityContext.run_as_group=12 holds Int64Value{value=1 (tag 0x08)}: (12 << 3) | 2 = 0x62
    ctx = api_pb2.LinuxContainerSecurityContext(run_as_group=api_pb2.Int64Value(value=1))
    assert ctx.SerializeToString() == b"\x62\x02\x08\x01"
    # LinuxSandboxSecurityContext.privileged=6, varint: 0x30
    assert api_pb2.LinuxSandboxSecurityContext(privileged=True).SerializeToString() == b"\x30\x01"


def test_enum_values_and_filter_tags() -> None:
    assert (api_pb2.CONTAINER_CREATED, api_pb2.CONTAINER_RUNNING, api_pb2.CONTAINER_EXITED,
            api_pb2.CONTAINER_UNKNOWN) == (0, 1, 2, 3)
    assert (api_pb2.POD, api_pb2.CONTAINER, api_pb2.NODE, api_pb2.TARGET) == (0, 1, 2, 3)
    # ContainerFilter.pod_sandbox_id=3 (0x1a); state=2 is a ContainerStateValue{state=1 (0x08)} (0x12)
    running = api_pb2.ContainerStateValue(state=api_pb2.CONTAINER_RUNNING)
    flt = api_pb2.ContainerFilter(pod_sandbox_id="p", state=running)
    assert flt.SerializeToString() == b"\x12\x02\x08\x01\x1a\x01p"
    # PodSandboxStatus.network=5 (0x2a) holding ip=1 (0x0a)
    status = api_pb2.PodSandboxStatus(network=api_pb2.PodSandboxNetworkStatus(ip="x"))
    assert status.SerializeToString() == b"\x2a\x03\x0a\x01x"


def test_rpc_paths_are_upstream() -> None:
    runtime = api_pb2.DESCRIPTOR.services_by_name["RuntimeService"]
    images = api_pb2.DESCRIPTOR.services_by_name["ImageService"]
    assert runtime.full_name == "runtime.v1.RuntimeService"
    assert images.full_name == "runtime.v1.ImageService"
    assert {"RunPodSandbox", "ExecSync", "ListContainerStats", "UpdateRuntimeConfig"} <= set(
        runtime.methods_by_name)
    assert set(images.methods_by_name) == {"ListImages", "ImageStatus", "PullImage", "RemoveImage",
                                           "ImageFsInfo"}
