"""Writing files atomically: a crash mid-write never leaves a half-written file behind.

Files and folders are created with the permissions any other tool would give them (``0o666``
/ ``0o777`` less the user's umask), not the private ``0o600`` / ``0o700`` of ``tempfile``'s
``mkstemp`` / ``mkdtemp``: the kernel applies the umask when we create them ourselves, which
needs no process-wide ``os.umask`` round trip (that would race with other threads).
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_open", "make_temp_dir", "fsync_dir"]

_TRIES = 100


def _temp_name(directory: str, prefix: str, suffix: str) -> str:
    return os.path.join(directory, f"{prefix}{secrets.token_hex(8)}{suffix}")


def _create_temp_file(directory: str) -> tuple[int, str]:
    """A new empty file in ``directory``: ``(descriptor, path)``, mode ``0o666`` less umask."""
    flags = (
        os.O_WRONLY
        | os.O_CREAT
        | os.O_EXCL
        | getattr(os, "O_BINARY", 0)
        | getattr(os, "O_CLOEXEC", 0)
    )
    for _ in range(_TRIES):
        name = _temp_name(directory, ".convlab-", ".tmp")
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:  # pragma: no cover - 64 random bits collided
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", directory)


def make_temp_dir(parent: Any, prefix: str) -> Path:
    """A new empty folder in ``parent`` named ``<prefix><random>``, mode ``0o777`` less umask.

    For writing a folder atomically: fill it, then rename it into place.
    """
    for _ in range(_TRIES):
        name = Path(_temp_name(os.fspath(parent), prefix, ""))
        try:
            name.mkdir(mode=0o777)
            return name
        except FileExistsError:  # pragma: no cover - 64 random bits collided
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary folder name", os.fspath(parent))


def _publish(tmp: str, path: str, overwrite: bool) -> None:
    """Move the finished file ``tmp`` to ``path``; without ``overwrite``, never replace a file
    that is there (even one that appears while we write)."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        # a hard link is created only if nothing has the name: no window between check and
        # rename in which another process's file could be replaced
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "already exists", path) from None
    except OSError:
        # filesystems without hard links: the best we can do is check, then rename
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "already exists", path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextmanager
def atomic_open(
    path: Any, mode: str = "wb", overwrite: bool = True, **kwargs: Any
) -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success it is synced and renamed onto it.

    On an exception (or Ctrl-C) the temporary file is removed and ``path`` keeps its old
    content. The file gets the permissions of any new file (``0o666`` less the umask).

    Args:
        path: The file to write.
        mode: ``"wb"`` or ``"w"``.
        overwrite: False refuses to replace an existing ``path`` (checked when the new content
            is complete, atomically where the filesystem has hard links).
        **kwargs: Passed to ``open``, e.g. ``newline``.

    Raises:
        FileExistsError: If ``overwrite`` is False and ``path`` exists; it is left untouched.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = _create_temp_file(directory)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _publish(tmp, path, overwrite)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)  # make the rename itself durable


def fsync_dir(folder: Any) -> None:
    """Flush a folder's entries (a rename or new file in it) to disk, where the platform and
    filesystem allow it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - some platforms cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse directory fsync
        pass
    finally:
        os.close(fd)
