"""Hostile paths from API objects never reach outside the volume or the pod's directory.

Keys and `items[].path` of configMap/secret/downwardAPI/projected volumes, subPath
and subPathExpr, hostPath types and the termination-message path, checked as the
kubelet checks them: property tests over arbitrary strings, and symlinks planted
where the writer or the subPath provisioning walks.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import containerspec as cs
from agent import safepath
from agent.volumes import VolumeError, VolumeManager, atomic_write, host_path_check

Obj = dict[str, Any]
SEGMENTS = st.sampled_from(["..", ".", "", "a", "b", "..data", "..x", "x..", "/", "etc", "~", "\x00", "ä"])
PATHS = st.one_of(st.text(max_size=40), st.lists(SEGMENTS, min_size=1, max_size=6).map("/".join),
                  st.lists(SEGMENTS, min_size=1, max_size=6).map(lambda p: "/" + "/".join(p)))


def _all_files(root: Path) -> set[str]:
    return {os.path.join(r, n) for r, dirs, names in os.walk(root) for n in names + dirs}


@given(PATHS)
def test_an_accepted_relative_path_stays_below_its_directory(path: str) -> None:
    try:
        parts = safepath.check_relative(path)
    except safepath.UnsafePathError:
        return
    joined = os.path.normpath(os.path.join("/vol", path))
    assert joined.startswith("/vol/") and ".." not in parts and not path.startswith("/")
    assert not parts[0].startswith("..")  # the writer's own `..data` entries stay out of reach


@pytest.mark.parametrize("key", ["../../../../tmp/x", "/etc/y", "a/../../b", "..data/x", "..2024", "a//b", "./a",
                                 ""])
def test_the_writer_refuses_paths_that_leave_the_volume(tmp_path: Path, key: str) -> None:
    target = tmp_path / "pod" / "vol"
    before = _all_files(tmp_path)
    with pytest.raises(VolumeError, match="invalid path"):
        atomic_write(target, {"ok": (b"1", 0o644), key: (b"evil", 0o644)})
    assert {p for p in _all_files(tmp_path) if not p.startswith(str(target))} == before


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(PATHS, st.binary(max_size=8), min_size=1, max_size=4))
def test_whatever_the_keys_nothing_is_written_outside_the_volume(tmp_path: Path, files: dict[str, bytes]) -> None:
    base = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
    target = base / "vol"
    outside = base / "outside"
    outside.mkdir(parents=True)
    try:
        atomic_write(target, {k: (v, 0o644) for k, v in files.items()})
    except VolumeError:
        pass
    for path in _all_files(base):
        assert path.startswith(str(target) + "/") or path in (str(target), str(outside))
    assert list(outside.iterdir()) == []


def test_links_planted_in_the_volume_are_replaced_never_followed(tmp_path: Path) -> None:
    target, outside = tmp_path / "vol", tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    target.mkdir()
    (target / "..data").symlink_to(outside)  # `..data` pointing out: must not be read, written or removed
    (target / "a").symlink_to(outside / "a")  # a key's link pointing out: must be replaced
    assert atomic_write(target, {"a": (b"1", 0o644), "d/b": (b"2", 0o600)})
    assert os.readlink(target / "a") == "..data/a" and (target / "a").read_text() == "1"
    assert os.readlink(target / "..data") != str(outside)
    assert sorted(p.name for p in outside.iterdir()) == ["keep"] and (outside / "keep").read_text() == "precious"
    assert stat.S_IMODE((target / "d" / "b").stat().st_mode) == 0o600
    (target / "..data").unlink()
    (target / "..data").symlink_to("..2020_01_01_00_00_00.1")  # dangling, in our own name pattern
    assert atomic_write(target, {"a": (b"3", 0o644)})
    (target / "..data").unlink()
    (target / "..data").symlink_to("/")  # an update with `..data` swapped out: nothing of `/` is removed
    assert atomic_write(target, {"a": (b"2", 0o644)})
    assert Path("/etc").is_dir() and (target / "a").read_text() == "2"


def test_modes_beyond_0777_are_refused(tmp_path: Path) -> None:
    source = _Source({"cm": {"data": {"k": "v"}}})
    manager = VolumeManager(tmp_path / "pods", source, dict)
    bad = _pod([{"name": "v", "configMap": {"name": "cm", "items": [{"key": "k", "path": "k", "mode": 0o4755}]}}])
    with pytest.raises(VolumeError, match="between 0 and 0777"):
        asyncio.run(manager.setup(bad))


@pytest.mark.parametrize("volume", [
    {"name": "v", "configMap": {"name": "evil"}},
    {"name": "v", "configMap": {"name": "cm", "items": [{"key": "k", "path": "../../../etc/x"}]}},
    {"name": "v", "secret": {"secretName": "sec", "items": [{"key": "k", "path": "/etc/y"}]}},
    {"name": "v", "downwardAPI": {"items": [{"path": "../../x", "fieldRef": {"fieldPath": "metadata.name"}}]}},
    {"name": "v", "projected": {"sources": [{"configMap": {"name": "cm", "items": [{"key": "k", "path": "../x"}]}}]}},
    {"name": "../../../../tmp/escape", "emptyDir": {}},
])
def test_a_volume_that_would_escape_fails_to_set_up_with_a_clear_message(tmp_path: Path, volume: Obj) -> None:
    source = _Source({"cm": {"data": {"k": "v"}}, "evil": {"data": {"../../../../tmp/x": "boom"}}},
                     {"sec": {"data": {"k": "dg=="}}})
    manager = VolumeManager(tmp_path / "pods", source, dict)
    before = _all_files(tmp_path)
    try:
        with pytest.raises(VolumeError, match=r'MountVolume.SetUp failed for volume ".*" : invalid'):
            asyncio.run(manager.setup(_pod([volume])))
    finally:
        manager.teardown("uid-1")  # secret and projected volumes are tmpfs mounts when run as root
    assert all(p.startswith(str(tmp_path / "pods")) for p in _all_files(tmp_path) - before)
    assert not Path("/tmp/x").exists() or Path("/tmp/x").read_text() != "boom"


def _mounts(volume_dir: Path, sub: Obj, env: dict[str, str] | None = None) -> list[Any]:
    container = {"name": "c", "volumeMounts": [{"name": "data", "mountPath": "/d", **sub}]}
    p = _pod([{"name": "data", "emptyDir": {}}])
    return cs.container_mounts(p, container, {"data": volume_dir}, [], env=env)


def test_subpaths_must_stay_inside_the_volume(tmp_path: Path) -> None:
    vol, outside = tmp_path / "vol", tmp_path / "outside"
    vol.mkdir()
    outside.mkdir()
    (vol / "inner").mkdir()
    (vol / "to-inner").symlink_to("inner")
    (vol / "to-outside").symlink_to(outside)
    (vol / "to-root").symlink_to("/")
    assert _mounts(vol, {"subPath": "to-inner"})[0].host_path == str((vol / "inner").resolve())
    assert _mounts(vol, {"subPath": "new/dir"})[0].host_path == str((vol / "new" / "dir").resolve())
    for sub, message in (({"subPath": "/etc"}, "must not be an absolute path"),
                         ({"subPath": "a/../../x"}, "must not contain '..'"),
                         ({"subPath": "to-outside"}, "resolves outside the volume"),
                         ({"subPath": "to-root/etc"}, "resolves outside the volume"),
                         ({"subPath": "to-outside/new"}, "symlink")):
        with pytest.raises(cs.ContainerConfigError, match=re.escape(message)):
            _mounts(vol, sub)
    assert list(outside.iterdir()) == []  # not even a directory was made through the link


def test_subpath_expr_is_checked_after_expansion(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    assert _mounts(vol, {"subPathExpr": "logs/$(POD)"}, {"POD": "web-1"})[0].host_path == \
        str((vol / "logs" / "web-1").resolve())
    with pytest.raises(cs.ContainerConfigError, match=re.escape("must not contain '..'")):
        _mounts(vol, {"subPathExpr": "$(POD)"}, {"POD": "../../etc"})
    with pytest.raises(cs.ContainerConfigError, match="must not be an absolute path"):
        _mounts(vol, {"subPathExpr": "$(POD)"}, {"POD": "/etc"})
    with pytest.raises(cs.ContainerConfigError, match="unable to expand"):
        _mounts(vol, {"subPathExpr": "$(MISSING)"}, {})
    with pytest.raises(cs.ContainerConfigError, match="mutually exclusive"):
        _mounts(vol, {"subPath": "a", "subPathExpr": "b"}, {})


def test_container_names_never_become_path_elements(tmp_path: Path) -> None:
    container = {"name": "../../x", "volumeMounts": []}
    with pytest.raises(cs.ContainerConfigError, match="container name"):
        cs.container_mounts(_pod([]), container, {}, [])


def test_termination_message_paths_are_absolute_without_backsteps() -> None:
    assert cs.termination_message_path({"name": "c"}) == "/dev/termination-log"
    assert cs.termination_message_path({"name": "c", "terminationMessagePath": "/tmp/msg"}) == "/tmp/msg"
    assert cs.termination_message_path({"name": "c", "terminationMessagePath": ""}) == ""
    for bad in ("relative/msg", "/tmp/../../etc/shadow", "../x"):
        with pytest.raises(cs.ContainerConfigError, match="terminationMessagePath"):
            cs.termination_message_path({"name": "c", "terminationMessagePath": bad})


def test_host_path_types_follow_upstream(tmp_path: Path) -> None:
    a_dir, a_file = tmp_path / "d", tmp_path / "f"
    a_dir.mkdir()
    a_file.write_text("x")
    host_path_check(a_dir, "Directory")
    host_path_check(a_file, "File")
    host_path_check(Path("/dev/null"), "CharDevice")
    host_path_check(tmp_path / "nothing-here", "")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "s"))
        host_path_check(tmp_path / "s", "Socket")
    failures = [(a_file, "Directory", "is not a directory"), (a_dir, "File", "is not a file"),
                (a_file, "DirectoryOrCreate", "is not a directory"), (a_dir, "FileOrCreate", "is not a file"),
                (a_file, "Socket", "is not a socket file"), (a_file, "CharDevice", "is not a character device"),
                (Path("/dev/null"), "BlockDevice", "is not a block device"),
                (tmp_path / "missing", "Directory", "is not a directory"),
                (tmp_path / "missing" / "f", "FileOrCreate", "cannot create file"),
                (Path("relative/dir"), "DirectoryOrCreate", "must be an absolute path"),
                (tmp_path / ".." / "x", "DirectoryOrCreate", "must not contain '..'"),
                (a_dir, "Dir", "invalid HostPath type")]
    for path, kind, message in failures:
        with pytest.raises(VolumeError, match=re.escape(message)):
            host_path_check(path, kind)
    old = os.umask(0o077)
    try:
        host_path_check(tmp_path / "made" / "deep", "DirectoryOrCreate")
        host_path_check(tmp_path / "made" / "file", "FileOrCreate")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "made" / "deep").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "made" / "file").stat().st_mode) == 0o644
    assert not (tmp_path / "x").exists()


def _pod(volumes: list[Obj]) -> Obj:
    return {"metadata": {"name": "p", "namespace": "default", "uid": "uid-1"},
            "spec": {"containers": [{"name": "c"}], "volumes": volumes}}


class _Source:
    """The agent's object source over plain dicts: what its informers would hold."""

    def __init__(self, configmaps: dict[str, Obj], secrets: dict[str, Obj] | None = None) -> None:
        self.configmaps, self.secrets = configmaps, secrets or {}

    def configmap(self, namespace: str, name: str) -> Obj | None:
        return self.configmaps.get(name)

    def secret(self, namespace: str, name: str) -> Obj | None:
        return self.secrets.get(name)

    async def token(self, pod: Obj, service_account: str, audiences: list[str],
                    expiration_seconds: int) -> tuple[str, float]:
        raise AssertionError("no token is asked for in these tests")
