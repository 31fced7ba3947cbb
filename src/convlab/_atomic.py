"""Writing files atomically: a crash mid-write never leaves a half-written file behind."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import Any, Iterator


@contextmanager
def atomic_open(path: Any, mode: str = "wb", **kwargs: Any) -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success it is synced and renamed onto it.

    On an exception (or Ctrl-C) the temporary file is removed and ``path`` keeps its old
    content. ``mode`` is ``"wb"`` or ``"w"`` (``kwargs`` go to ``open``, e.g. ``newline``).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".convlab-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - some filesystems refuse directory fsync
        pass
