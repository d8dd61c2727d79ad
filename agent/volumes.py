"""Pod volumes on the node: prepared before containers start, refreshed while they run.

Each volume gets a directory under the pod's own folder (upstream's layout:
`pods/<uid>/volumes/kubernetes.io~<plugin>/<name>`), which the container spec
then mounts. configMap, secret, downwardAPI and projected volumes are written
the way upstream's atomic writer does — files are links into `..data`, a link
swapped in one rename — so a running container sees an update appear whole,
never half-written; that is how configMap and secret changes reach running pods.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agent import safepath
from agent.mounts import unmount_below
from controlplane.api import quantity

Obj = dict[str, Any]
DEFAULT_MODE = 0o644
DEFAULT_TOKEN_SECONDS = 3600


class VolumeError(Exception):
    """A volume that cannot be set up; the message is what `FailedMount` events say."""


class ObjectSource(Protocol):
    """Where volume contents come from: the API objects the agent watches, and TokenRequests."""

    def configmap(self, namespace: str, name: str) -> Obj | None: ...

    def secret(self, namespace: str, name: str) -> Obj | None: ...

    async def token(self, pod: Obj, service_account: str, audiences: list[str],
                    expiration_seconds: int) -> tuple[str, float]: ...


@dataclass
class _CachedToken:
    token: str
    refresh_at: float


_STAMP = re.compile(r"\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d+")


def check_file_paths(files: dict[str, tuple[bytes, int]]) -> None:
    """Refuse a set of volume files any of which would land outside the volume, or collide with another."""
    for rel in files:
        try:
            safepath.check_relative(rel)
        except safepath.UnsafePathError as exc:
            raise VolumeError(str(exc)) from None
    for rel in files:
        parts = rel.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in files:
                raise VolumeError(f"invalid path: {rel} is below {'/'.join(parts[:i])}, which is a file")


def _current_stamp(target: Path) -> str | None:
    """The timestamped directory `..data` points at, if it is one of ours (a plain directory in `target`)."""
    data_link = target / "..data"
    if not data_link.is_symlink():
        return None
    name = os.readlink(data_link)
    try:
        return name if _STAMP.fullmatch(name) and stat.S_ISDIR(os.lstat(target / name).st_mode) else None
    except OSError:  # dangling
        return None


def atomic_write(target: Path, files: dict[str, tuple[bytes, int]]) -> bool:
    """Make `target` hold exactly `files` (relative path -> (content, mode)); False if already so.

    Every path is checked first (relative, no `..`: see agent.safepath) and every file
    is created beneath a directory descriptor without following symlinks, so neither a
    hostile key nor a link left in the volume makes this write anywhere else.
    """
    check_file_paths(files)
    target.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        raise VolumeError(f"volume directory {target} is a symlink")
    old = _current_stamp(target)
    if old is not None and _tree(target / old) == files:
        return False
    stamp = target / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    stamp.mkdir(mode=0o755)
    try:
        with safepath.open_dir(stamp) as stamp_fd:
            for rel, (content, mode) in files.items():
                safepath.write_file_beneath(stamp_fd, rel, content, mode)
    except (OSError, safepath.UnsafePathError) as exc:
        shutil.rmtree(stamp, ignore_errors=True)
        raise VolumeError(f"writing {target}: {exc}") from None
    _replace_link(target, "..data", stamp.name)
    wanted_tops = {rel.split("/", 1)[0] for rel in files}
    for top in wanted_tops:
        link = target / top
        if link.is_symlink() and os.readlink(link) == f"..data/{top}":
            continue
        if os.path.lexists(link) and not link.is_symlink():
            raise VolumeError(f"{link} exists and is not a link the volume made")
        _replace_link(target, top, f"..data/{top}")
    for entry in target.iterdir():
        if not entry.name.startswith("..") and entry.name not in wanted_tops and entry.is_symlink():
            entry.unlink()
    if old is not None:  # a `..data` pointing anywhere else was replaced above, never followed
        shutil.rmtree(target / old, ignore_errors=True)
    return True


def _replace_link(directory: Path, name: str, destination: str) -> None:
    """Point `directory/name` at `destination` in one rename (a link already there is replaced, not followed)."""
    tmp = directory / f"..tmp_{name.replace('/', '_')}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(destination)
    tmp.rename(directory / name)


def _tree(directory: Path) -> dict[str, tuple[bytes, int]] | None:
    """What the files below `directory` hold, or None if a symlink is among them (never ours)."""
    found: dict[str, tuple[bytes, int]] = {}
    for root, dirs, names in os.walk(directory):
        for name in dirs + names:
            if os.path.islink(os.path.join(root, name)):
                return None
        for name in names:
            path = os.path.join(root, name)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                mode = os.fstat(fd).st_mode & 0o7777
                with os.fdopen(os.dup(fd), "rb") as handle:
                    content = handle.read()
            finally:
                os.close(fd)
            found[os.path.relpath(path, directory)] = (content, mode)
    return found


def _mount_tmpfs(path: Path, options: str) -> None:
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise VolumeError(f"mounting tmpfs: {result.stderr.strip()}")


def _memory_backed(path: Path) -> None:
    """A tmpfs at `path`, as upstream backs secret and projected volumes, so their data never reaches a disk.

    Only a new volume gets one: a volume written on disk by an earlier agent is what its
    running containers have bind-mounted, and a tmpfs over it would hide later updates from them.
    """
    path.mkdir(parents=True, exist_ok=True)
    if os.path.ismount(path) or (path / "..data").is_symlink():
        return
    _mount_tmpfs(path, "mode=1777")


def file_mode(value: Any, what: str = "mode") -> int:
    """A file mode from a volume spec: 0 to 0777 as upstream validates (no setuid, setgid or sticky bits)."""
    try:
        mode = int(value)
    except (TypeError, ValueError):
        raise VolumeError(f"invalid {what} {value!r}: must be a number between 0 and 0777 (octal)") from None
    if not 0 <= mode <= 0o777:
        raise VolumeError(f"invalid {what} {value!r}: must be a number between 0 and 0777 (octal)")
    return mode


def _decode(data: Obj | None, binary: bool) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for key, value in (data or {}).items():
        out[key] = base64.b64decode(value) if binary else str(value).encode()
    return out


def _keyed_files(what: str, name: str, contents: dict[str, bytes], items: list[Obj] | None,
                 default_mode: int, optional: bool) -> dict[str, tuple[bytes, int]]:
    files: dict[str, tuple[bytes, int]] = {}
    if items:
        for item in items:
            key = item.get("key", "")
            if key not in contents:
                if optional:
                    continue
                raise VolumeError(f'configmap references non-existent config key: {key}' if what == "configmap"
                                  else f'references non-existent secret key: {key}')
            files[item.get("path") or key] = (contents[key], file_mode(item.get("mode", default_mode)))
    else:
        for key, content in contents.items():
            files[key] = (content, default_mode)
    return files


def field_value(pod: Obj, field_path: str) -> str:
    md = pod.get("metadata") or {}
    if field_path in ("metadata.labels", "metadata.annotations"):
        values = md.get(field_path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
    if field_path.startswith(("metadata.labels[", "metadata.annotations[")):
        kind, rest = field_path.split("[", 1)
        key = rest.rstrip("]").strip("'\"")
        return str((md.get(kind.split(".")[1]) or {}).get(key, ""))
    simple = {"metadata.name": md.get("name"), "metadata.namespace": md.get("namespace"),
              "metadata.uid": md.get("uid"), "spec.nodeName": (pod.get("spec") or {}).get("nodeName"),
              "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName"),
              "status.hostIP": (pod.get("status") or {}).get("hostIP"),
              "status.podIP": (pod.get("status") or {}).get("podIP")}
    if field_path == "status.podIPs":
        return ",".join(ip.get("ip", "") for ip in (pod.get("status") or {}).get("podIPs") or [])
    if field_path not in simple:
        raise VolumeError(f"unsupported fieldRef {field_path!r}")
    return str(simple[field_path] or "")


def resource_value(pod: Obj, container_name: str, resource: str, divisor: str | None, node_allocatable: Obj) -> str:
    """A container's request or limit (limits fall back to the node's allocatable), in units of `divisor`."""
    section, _, name = resource.partition(".")
    for container in (pod.get("spec") or {}).get("containers") or []:
        if container.get("name") == container_name:
            value = ((container.get("resources") or {}).get(section) or {}).get(name)
            break
    else:
        raise VolumeError(f"container {container_name!r} not found for resourceFieldRef")
    if value is None:
        value = node_allocatable.get(name, "0") if section == "limits" else "0"
    milli = quantity.milli(str(value))
    div = quantity.milli(str(divisor or "1"))
    return str(max(-(-milli // div), 0)) if div else "0"


_HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
                    "BlockDevice")


def host_path_check(path: Path, kind: str) -> None:
    """upstream's hostPath `type` semantics: create what `...OrCreate` asks for, check the rest (symlinks followed).

    The path must be absolute and free of `..` elements (upstream validation; a
    second check here for objects stored without it). `""` checks nothing;
    `DirectoryOrCreate` makes a missing directory (and its parents) 0755;
    `FileOrCreate` makes a missing file 0644 but not its parent directory; the
    others require what they name to exist already.
    """
    text = str(path)
    if kind not in _HOST_PATH_TYPES:
        raise VolumeError(f"invalid HostPath type {kind!r}")
    if not text.startswith("/"):
        raise VolumeError(f"invalid HostPath {text!r}: must be an absolute path")
    try:
        safepath.check_no_backsteps(text)
    except safepath.UnsafePathError as exc:
        raise VolumeError(f"invalid HostPath {text!r}: {exc}") from None
    if kind == "DirectoryOrCreate" and not os.path.lexists(path):
        missing = [p for p in [path, *path.parents] if not os.path.lexists(p)]
        for directory in reversed(missing):  # 0755 whatever the umask (never changed: other threads create files)
            with contextlib.suppress(FileExistsError):
                directory.mkdir(mode=0o755)
                directory.chmod(0o755)
    elif kind == "FileOrCreate" and not os.path.lexists(path):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise VolumeError(f"hostPath type check failed: cannot create file {path}: {exc.strerror}") from None
        os.fchmod(fd, 0o644)
        os.close(fd)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = None
    checks = {"DirectoryOrCreate": (stat.S_ISDIR, "a directory"), "Directory": (stat.S_ISDIR, "a directory"),
              "FileOrCreate": (stat.S_ISREG, "a file"), "File": (stat.S_ISREG, "a file"),
              "Socket": (stat.S_ISSOCK, "a socket file"), "CharDevice": (stat.S_ISCHR, "a character device"),
              "BlockDevice": (stat.S_ISBLK, "a block device")}
    if kind in checks:
        test, what = checks[kind]
        if mode is None or not test(mode):
            raise VolumeError(f"hostPath type check failed: {path} is not {what}")


class VolumeManager:
    """Sets up and tears down the volumes of the pods on this node."""

    def __init__(self, pods_dir: Path, source: ObjectSource, node_allocatable: Callable[[], Obj]) -> None:
        self.pods_dir = pods_dir
        self.source = source
        self.node_allocatable = node_allocatable
        self._tokens: dict[tuple[str, str], _CachedToken] = {}

    def pod_dir(self, uid: str) -> Path:
        try:
            return self.pods_dir / safepath.check_name(uid, "pod uid")
        except safepath.UnsafePathError as exc:
            raise VolumeError(str(exc)) from None

    def volume_path(self, pod: Obj, volume: Obj) -> Path:
        if "hostPath" in volume:
            return Path(volume["hostPath"]["path"])
        plugin = next((k for k in ("emptyDir", "configMap", "secret", "projected", "downwardAPI") if k in volume),
                      None)
        if plugin is None:
            raise VolumeError(f'volume "{volume.get("name")}": this node supports emptyDir, configMap, secret, '
                              "hostPath, projected and downwardAPI volumes")
        folder = {"emptyDir": "empty-dir", "configMap": "configmap", "secret": "secret", "projected": "projected",
                  "downwardAPI": "downward-api"}[plugin]
        try:
            name = safepath.check_name(str(volume.get("name", "")), "volume name")
        except safepath.UnsafePathError as exc:
            raise VolumeError(str(exc)) from None
        return self.pod_dir(pod["metadata"]["uid"]) / "volumes" / f"kubernetes.io~{folder}" / name

    async def setup(self, pod: Obj) -> dict[str, Path]:
        """Create or refresh every volume of the pod; name -> host path. Raises VolumeError."""
        paths: dict[str, Path] = {}
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            try:
                paths[volume["name"]] = await self._setup_one(pod, volume)
            except VolumeError as exc:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{volume.get("name")}" : {exc}') from None
        return paths

    async def _setup_one(self, pod: Obj, volume: Obj) -> Path:
        path = self.volume_path(pod, volume)
        namespace = pod["metadata"].get("namespace") or "default"
        if "emptyDir" in volume:
            self._empty_dir(path, volume["emptyDir"] or {})
        elif "hostPath" in volume:
            self._host_path(path, volume["hostPath"].get("type") or "")
        elif "configMap" in volume:
            spec = volume["configMap"]
            atomic_write(path, self._configmap_files(namespace, spec, file_mode(spec.get("defaultMode", DEFAULT_MODE), "defaultMode")))
        elif "secret" in volume:
            spec = volume["secret"]
            _memory_backed(path)
            atomic_write(path, self._secret_files(namespace, spec, file_mode(spec.get("defaultMode", DEFAULT_MODE), "defaultMode")))
        elif "downwardAPI" in volume:
            spec = volume["downwardAPI"]
            atomic_write(path, self._downward_files(pod, spec.get("items") or [],
                                                    file_mode(spec.get("defaultMode", DEFAULT_MODE), "defaultMode")))
        elif "projected" in volume:  # may carry secrets and service-account tokens
            _memory_backed(path)
            atomic_write(path, await self._projected_files(pod, volume["projected"]))
        return path

    @staticmethod
    def _empty_dir(path: Path, spec: Obj) -> None:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)
        if spec.get("medium") == "Memory" and not os.path.ismount(path):
            options = "mode=0777"
            if spec.get("sizeLimit"):
                options += f",size={quantity.whole(str(spec['sizeLimit']))}"
            _mount_tmpfs(path, options)

    @staticmethod
    def _host_path(path: Path, kind: str) -> None:
        host_path_check(path, kind)

    def _configmap_files(self, namespace: str, spec: Obj, mode: int) -> dict[str, tuple[bytes, int]]:
        name = spec.get("name", "")
        optional = bool(spec.get("optional"))
        cm = self.source.configmap(namespace, name)
        if cm is None:
            if optional:
                return {}
            raise VolumeError(f'configmap "{name}" not found')
        contents = {**_decode(cm.get("data"), False), **_decode(cm.get("binaryData"), True)}
        return _keyed_files("configmap", name, contents, spec.get("items"), mode, optional)

    def _secret_files(self, namespace: str, spec: Obj, mode: int) -> dict[str, tuple[bytes, int]]:
        name = spec.get("secretName") or spec.get("name") or ""
        optional = bool(spec.get("optional"))
        secret = self.source.secret(namespace, name)
        if secret is None:
            if optional:
                return {}
            raise VolumeError(f'secret "{name}" not found')
        return _keyed_files("secret", name, _decode(secret.get("data"), True), spec.get("items"), mode, optional)

    def _downward_files(self, pod: Obj, items: list[Obj], mode: int) -> dict[str, tuple[bytes, int]]:
        files: dict[str, tuple[bytes, int]] = {}
        for item in items:
            if "fieldRef" in item:
                value = field_value(pod, item["fieldRef"].get("fieldPath", ""))
            elif "resourceFieldRef" in item:
                ref = item["resourceFieldRef"]
                value = resource_value(pod, ref.get("containerName", ""), ref.get("resource", ""),
                                       ref.get("divisor"), self.node_allocatable())
            else:
                raise VolumeError(f"downwardAPI item {item.get('path')!r} has no fieldRef or resourceFieldRef")
            files[str(item.get("path", ""))] = (value.encode(), file_mode(item.get("mode", mode)))
        return files

    async def _projected_files(self, pod: Obj, spec: Obj) -> dict[str, tuple[bytes, int]]:
        mode = file_mode(spec.get("defaultMode", DEFAULT_MODE), "defaultMode")
        namespace = pod["metadata"].get("namespace") or "default"
        files: dict[str, tuple[bytes, int]] = {}
        for source in spec.get("sources") or []:
            if "configMap" in source:
                files.update(self._configmap_files(namespace, source["configMap"], mode))
            elif "secret" in source:
                files.update(self._secret_files(namespace, source["secret"], mode))
            elif "downwardAPI" in source:
                files.update(self._downward_files(pod, source["downwardAPI"].get("items") or [], mode))
            elif "serviceAccountToken" in source:
                token_spec = source["serviceAccountToken"]
                token = await self._token(pod, token_spec)
                files[str(token_spec.get("path") or "token")] = (token.encode(), file_mode(token_spec.get("mode", mode)))
        return files

    async def _token(self, pod: Obj, spec: Obj) -> str:
        audience = spec.get("audience") or ""
        key = (pod["metadata"]["uid"], f"{audience}/{spec.get('path')}")
        cached = self._tokens.get(key)
        if cached is not None and time.time() < cached.refresh_at:
            return cached.token
        seconds = int(spec.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS)
        account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        try:
            token, expires = await self.source.token(pod, account, [audience] if audience else [], seconds)
        except Exception as exc:
            raise VolumeError(f"failed to fetch token: {exc}") from exc
        now = time.time()
        self._tokens[key] = _CachedToken(token, now + 0.8 * max(expires - now, 0))  # refresh at 80 %, as upstream
        return token

    def teardown(self, uid: str) -> None:
        """Unmount and remove everything of a pod that is gone (hostPath contents stay)."""
        try:
            pod_dir = self.pod_dir(uid)
        except VolumeError:
            return  # no directory can have been made for it
        if not pod_dir.exists():
            return
        unmount_below(pod_dir)
        shutil.rmtree(pod_dir, ignore_errors=True)
        for key in [k for k in self._tokens if k[0] == uid]:
            del self._tokens[key]

    def known_pod_uids(self) -> list[str]:
        return [p.name for p in self.pods_dir.iterdir()] if self.pods_dir.is_dir() else []

