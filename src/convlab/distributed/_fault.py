"""Ending the whole job when one rank fails.

A rank that dies with an uncaught exception leaves the others blocked in their next collective
for ever. Once a process group exists, an uncaught exception prints its traceback (naming the
rank) and calls ``MPI_Abort``, which makes ``mpiexec`` end every rank with a non-zero exit.
"""

from __future__ import annotations

import sys
import traceback
from types import TracebackType
from typing import Any

__all__ = ["install", "uninstall"]

_previous: Any = None


def install(comm: Any) -> None:
    """Abort the job on an uncaught exception in this process (a no-op for a single rank:
    Python's own handling already ends the job)."""
    global _previous
    if comm.Get_size() == 1 or _previous is not None:
        return
    rank, size = comm.Get_rank(), comm.Get_size()
    _previous = sys.excepthook

    def abort_job(
        kind: type[BaseException], error: BaseException, trace: TracebackType | None
    ) -> None:
        text = "".join(traceback.format_exception(kind, error, trace))
        sys.stderr.write(
            f"convlab.distributed: rank {rank} of {size} failed; aborting the job\n{text}"
        )
        sys.stderr.flush()
        sys.stdout.flush()
        from convlab.distributed import _mpi

        _mpi.mpi().COMM_WORLD.Abort(1)

    sys.excepthook = abort_job


def uninstall() -> None:
    """Restore the exception hook from before :func:`install`."""
    global _previous
    if _previous is not None:
        sys.excepthook = _previous
        _previous = None
