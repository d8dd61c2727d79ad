"""Paths that come from API objects, checked before the agent touches the node with them.

The agent runs as root, so a ConfigMap key `../../etc/x`, an `items[].path` of
`/etc/shadow`, a subPath through a symlink a container planted, or a container
named `..` must never become a file written or mounted outside the pod's own
directory. The API server validates these too; this is the second line of
defence for objects an older or foreign server stored. The checks follow
upstream's kubelet: relative paths without `..` elements (the atomic writer's
rules), and walking a path one component at a time with O_NOFOLLOW beneath a
directory file descriptor, so that a symlink met on the way is refused instead
of followed (openat-style), and a resolved subPath is held open while it is
bind-mounted (`/proc/self/fd/N`), so that no later rename can redirect it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

MAX_PATH_LENGTH = 4096
MAX_FILE_NAME_LENGTH = 255
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MS_BIND = 4096
_MNT_DETACH = 2


class UnsafePathError(ValueError):
    """A path from an object that would reach outside the directory it belongs in."""


def check_relative(path: str) -> list[str]:
    """The elements of a relative path that stays below its directory; raises UnsafePathError.

    Upstream's atomic writer rules: not empty, not absolute, at most 4096 bytes, no
    `..` element, no element longer than 255 bytes, and not starting with `..`
    (the writer's own `..data` entries live there). Empty and `.` elements and NUL
    bytes are refused too: they never name a distinct file.
    """
    if path == "":
        raise UnsafePathError('invalid path: must not be empty: ""')
    if "\x00" in path:
        raise UnsafePathError(f"invalid path: must not contain NUL: {path!r}")
    if path.startswith("/"):
        raise UnsafePathError(f"invalid path: must be relative path: {path}")
    if len(path.encode()) > MAX_PATH_LENGTH:
        raise UnsafePathError(f"invalid path: must be less than or equal to {MAX_PATH_LENGTH} characters")
    parts = path.split("/")
    for part in parts:
        if part == "..":
            raise UnsafePathError(f"invalid path: must not contain '..': {path}")
        if part in ("", "."):
            raise UnsafePathError(f"invalid path: must not contain empty or '.' elements: {path}")
        if len(part.encode()) > MAX_FILE_NAME_LENGTH:
            raise UnsafePathError(f"invalid path: filenames must be less than or equal to {MAX_FILE_NAME_LENGTH} "
                                  "characters")
    if parts[0].startswith(".."):
        raise UnsafePathError(f"invalid path: must not start with '..': {path}")
    return parts


def check_no_backsteps(path: str) -> None:
    """upstream's ValidatePathNoBacksteps: no `..` element (absolute paths are checked by the caller)."""
    if "\x00" in path:
        raise UnsafePathError("must not contain NUL")
    if ".." in path.split("/"):
        raise UnsafePathError("must not contain '..'")


def check_name(name: str, what: str) -> str:
    """A single file-name element (a volume or container name used in a host path)."""
    if not name or name in (".", "..") or "/" in name or "\x00" in name or len(name.encode()) > MAX_FILE_NAME_LENGTH:
        raise UnsafePathError(f"invalid {what} {name!r}: must be a single file name")
    return name


def is_within(root: Path, candidate: Path) -> bool:
    """True if `candidate`, all symlinks resolved, is `root` or below it (root resolved too)."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(candidate)
    return real == real_root or real.startswith(real_root.rstrip("/") + "/")


@contextlib.contextmanager
def open_dir(path: Path) -> Iterator[int]:
    """A directory file descriptor for `path` itself (refused if `path` is a symlink)."""
    fd = os.open(path, _DIR_FLAGS)
    try:
        yield fd
    finally:
        os.close(fd)


def _walk_dirs(root_fd: int, parts: list[str], *, create_mode: int | None) -> int:
    """A new fd for the directory `parts` beneath `root_fd`, never following a symlink; optionally mkdir."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            if create_mode is not None:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, create_mode, dir_fd=fd)
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePathError(f"{part!r} is a symlink or not a directory") from None
                raise
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def write_file_beneath(root_fd: int, rel: str, content: bytes, mode: int, dir_mode: int = 0o755) -> None:
    """Create the new file `rel` beneath `root_fd` (parents made as needed), nothing followed or replaced."""
    parts = check_relative(rel)
    dir_fd = _walk_dirs(root_fd, parts[:-1], create_mode=dir_mode)
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(parts[-1], flags, 0o600, dir_fd=dir_fd)
        try:
            os.fchmod(fd, mode)
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)


def make_dirs_beneath(root: Path, rel: str, mode: int) -> None:
    """mkdir -p of `rel` beneath `root`, refusing to pass through a symlink (upstream's SafeMakeDir)."""
    with open_dir(root) as root_fd:
        os.close(_walk_dirs(root_fd, check_relative(rel), create_mode=mode))


def open_beneath(root: Path, rel: str) -> int:
    """An O_PATH fd of the existing `rel` beneath `root`, symlinks inside resolved but never outside.

    The path is resolved once and checked to stay below `root`; then the resolved
    path is opened one element at a time with O_NOFOLLOW, so a symlink swapped in
    after the check makes the open fail instead of escaping.
    """
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(root / rel))
    if not is_within(real_root, real):
        raise UnsafePathError(f"{rel} resolves outside the volume")
    parts = [] if real == real_root else list(real.relative_to(real_root).parts)
    with open_dir(real_root) as root_fd:
        dir_fd = _walk_dirs(root_fd, parts[:-1], create_mode=None)
        try:
            if not parts:
                return os.open(".", os.O_PATH | os.O_CLOEXEC, dir_fd=dir_fd)
            return os.open(parts[-1], os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)


def fd_is_dir(fd: int) -> bool:
    return stat.S_ISDIR(os.fstat(fd).st_mode)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def bind_fd(fd: int, target: Path) -> None:
    """Bind-mount what `fd` refers to at `target` (through /proc/self/fd, as upstream's subpath does)."""
    unmount(target)
    source = f"/proc/self/fd/{fd}".encode()
    if _libc().mount(source, os.fsencode(target), None, _MS_BIND, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bind mount onto {target}: {os.strerror(err)}")


def unmount(target: Path) -> None:
    """Lazily unmount `target` if something is mounted there (EINVAL: nothing is)."""
    if os.path.lexists(target):
        _libc().umount2(os.fsencode(target), _MNT_DETACH)
