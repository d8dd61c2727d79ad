"""Files and directories only their owner may read: data dirs, keys, tokens, kubeconfigs, the store.

Every component writes credentials (the CA and serving keys, `tokens.csv`, the
admin kubeconfig, the agent's kubelet key) and the API server keeps Secrets in
`state.db` and its WAL. Each of those is created here with its final mode —
`os.open` with the mode, then `fchmod` on the descriptor before a byte is
written, then a rename into place — never written first and chmod-ed after, so
there is no window in which another local user can open it, whatever the
process umask. Directories are made 0700. `tighten` repairs the modes that data
dirs made by earlier versions still have (0755 dirs, 0644 databases).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> Path:
    """`path` (and missing parents) as a directory only its owner can enter; an existing one is tightened."""
    missing = []
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, PRIVATE_DIR)  # umask can only remove bits: never wider than 0700
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f"{path} is not a directory")
    if st.st_mode & 0o077:
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)
    return path


def write_private(path: Path, data: bytes | str, mode: int = PRIVATE_FILE) -> None:
    """Replace `path` with `data` in one rename; the file exists only ever with `mode` (default 0600)."""
    body = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode & 0o600)
    try:
        os.fchmod(fd, mode)
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)


def create_private(path: Path, mode: int = PRIVATE_FILE) -> None:
    """Make sure `path` exists as a regular file with `mode` (created so, or tightened), content untouched.

    SQLite creates a database's `-wal` and `-shm` files with the database file's
    own mode, so creating `state.db` 0600 first keeps all three private.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, mode & 0o600)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def tighten(root: Path, *, skip: Iterable[str] = ()) -> None:
    """Remove group and other bits from `root` and everything below it (symlinks and `skip` names left alone)."""
    skipped = set(skip)
    if not root.is_dir() or root.is_symlink():
        return
    _strip(root)
    for directory, dirs, files in os.walk(root):
        if Path(directory) == root:
            dirs[:] = [d for d in dirs if d not in skipped]
            files = [f for f in files if f not in skipped]
        for name in dirs + files:
            _strip(Path(directory) / name)


def _strip(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(path)
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)


def prepare_data_dir(path: Path, *, skip: Iterable[str] = ()) -> Path:
    """A component's data dir at start-up: 0700, and what an earlier version left readable tightened."""
    private_dir(path)
    tighten(path, skip=skip)
    return path
