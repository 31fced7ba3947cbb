"""NCCL through CuPy: the communicator (bootstrapped over MPI) and the device collectives.

Rank 0 makes NCCL's unique id and broadcasts it over MPI as a byte buffer; every rank then
builds its ``NcclCommunicator`` from it (ChainerMN's design). Only imported when a process
group uses NCCL, so ``import convlab`` never imports CuPy.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

__all__ = ["all_gather", "all_reduce", "broadcast", "communicator", "nccl_available"]


def _nccl() -> Any:
    return importlib.import_module("cupy.cuda.nccl")


def nccl_available() -> bool:
    """Whether CuPy with NCCL support can be imported."""
    try:
        module = _nccl()
    except ImportError:
        return False
    return bool(getattr(module, "available", True))


def select_device(comm: Any) -> None:
    """Use GPU ``local_rank % device_count``: one GPU per rank on each node."""
    import cupy

    from convlab.distributed import _mpi

    local = comm.Split_type(_mpi.mpi().COMM_TYPE_SHARED)
    index = local.Get_rank() % cupy.cuda.runtime.getDeviceCount()
    local.Free()
    cupy.cuda.Device(index).use()


def communicator(comm: Any) -> Any:
    """An NCCL communicator over the ranks of the MPI communicator ``comm``."""
    nccl = _nccl()
    uid = np.zeros(128, np.int8)  # NCCL_UNIQUE_ID_BYTES
    if comm.Get_rank() == 0:
        uid[:] = np.asarray(nccl.get_unique_id(), np.int64).astype(np.int8)
    comm.Bcast(uid, root=0)
    return nccl.NcclCommunicator(comm.Get_size(), tuple(int(v) for v in uid), comm.Get_rank())


def _dtype(array: Any) -> int:
    nccl = _nccl()
    table = {
        np.dtype(np.float16): nccl.NCCL_FLOAT16,
        np.dtype(np.float32): nccl.NCCL_FLOAT32,
        np.dtype(np.float64): nccl.NCCL_FLOAT64,
        np.dtype(np.int8): nccl.NCCL_INT8,
        np.dtype(np.uint8): nccl.NCCL_UINT8,
        np.dtype(np.int32): nccl.NCCL_INT32,
        np.dtype(np.int64): nccl.NCCL_INT64,
    }
    if array.dtype not in table:
        raise TypeError(f"tensor: NCCL cannot reduce dtype {array.dtype}")
    return int(table[array.dtype])


def _stream() -> int:
    import cupy

    return int(cupy.cuda.get_current_stream().ptr)


def all_reduce(comm: Any, array: Any, op_name: str) -> None:
    """Reduce the contiguous device ``array`` in place (``op_name``: SUM, PRODUCT, MIN, MAX;
    AVG is SUM followed by a division, done by the caller)."""
    nccl = _nccl()
    op = {"SUM": nccl.NCCL_SUM, "PRODUCT": nccl.NCCL_PROD, "MIN": nccl.NCCL_MIN}.get(
        op_name, nccl.NCCL_MAX
    )
    ptr = array.data.ptr
    comm.allReduce(ptr, ptr, array.size, _dtype(array), op, _stream())


def broadcast(comm: Any, array: Any, root: int) -> None:
    """Broadcast the contiguous device ``array`` from group rank ``root``, in place."""
    comm.bcast(array.data.ptr, array.size, _dtype(array), root, _stream())


def all_gather(comm: Any, array: Any, out: Any) -> None:
    """Gather every rank's contiguous device ``array`` into ``out`` (``(size, *shape)``)."""
    comm.allGather(array.data.ptr, out.data.ptr, array.size, _dtype(array), _stream())
