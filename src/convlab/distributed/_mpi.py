"""Importing mpi4py only when a process group is wanted (``import convlab`` never does).

Importing ``mpi4py.MPI`` initialises MPI, so it is deferred to :func:`init_process_group`;
without mpi4py the error says which extra to install, in one line.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

__all__ = ["INSTALL_HINT", "mpi", "mpi_available"]

#: What the errors tell the user to run when mpi4py is missing.
INSTALL_HINT = 'pip install "convlab[mpi]"'


def mpi_available() -> bool:
    """Whether mpi4py can be imported (without importing it, so MPI stays uninitialised)."""
    return importlib.util.find_spec("mpi4py") is not None


def mpi() -> Any:
    """The ``mpi4py.MPI`` module.

    Raises:
        RuntimeError: If mpi4py is not installed (or its MPI library cannot be loaded).
    """
    try:
        return importlib.import_module("mpi4py.MPI")
    except ImportError as error:
        # one line: under mpiexec every rank prints it, and a traceback per rank drowns it
        raise RuntimeError(
            f"convlab.distributed needs mpi4py and an MPI library: {INSTALL_HINT} "
            f"({type(error).__name__}: {error})"
        ) from None
