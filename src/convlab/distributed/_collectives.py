"""The collectives on tensors: ``all_reduce``, ``broadcast``, ``all_gather``, ``barrier``.

Host (NumPy) arrays go through mpi4py's buffer interface in place (never pickled); device
arrays through NCCL when the group has an NCCL communicator, else through host copies over
MPI. Every collective changes its tensors in place, as PyTorch's, and all ranks of the group
must call it in the same order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab._tensor import Tensor
from convlab.autograd import bump_version
from convlab.distributed import _mpi
from convlab.distributed._group import ProcessGroup, default_group, resolve
from convlab.distributed._reduce_op import ReduceOp, check_op

__all__ = ["Work", "all_gather", "all_reduce", "barrier", "broadcast", "reduce_arrays"]

# float16 has no portable MPI type; bool reduces as bytes (SUM and MAX are "any", PRODUCT and
# MIN are "all", as PyTorch's reductions of bool tensors)
_WIDEN: dict[Any, Any] = {
    np.dtype(np.float16): np.dtype(np.float32),
    np.dtype(np.bool_): np.dtype(np.uint8),
}


class Work:
    """What a collective with ``async_op=True`` returns. convlab's collectives are blocking,
    so the work is already done: ``wait()`` returns at once."""

    def wait(self, timeout: Any = None) -> bool:
        """Return True: the collective has completed."""
        return True

    def is_completed(self) -> bool:
        """Return True: the collective has completed."""
        return True


def _result(async_op: bool) -> Work | None:
    return Work() if async_op else None


def _check_tensor(tensor: Any, name: str = "tensor") -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name}: expected a convlab Tensor, got {type(tensor).__name__}")
    return tensor


def _on_device(tensor: Tensor) -> bool:
    return tensor._backend.name != "cpu"


def _mpi_op(op: Any, dtype: np.dtype) -> Any:
    mpi = _mpi.mpi()
    if dtype == np.bool_:
        return mpi.MAX if op in (ReduceOp.SUM, ReduceOp.MAX) else mpi.MIN
    return {
        "SUM": mpi.SUM,
        "AVG": mpi.SUM,
        "PRODUCT": mpi.PROD,
        "MIN": mpi.MIN,
        "MAX": mpi.MAX,
    }[op.name]


def reduce_arrays(group: ProcessGroup, array: Any, op: Any) -> None:
    """Reduce the C-contiguous ``array`` (host or device) over ``group`` in place."""
    if op is ReduceOp.AVG and array.dtype.kind != "f":
        raise TypeError(f"op: ReduceOp.AVG needs a floating-point tensor, got {array.dtype}")
    if group.nccl is not None and not _is_host(array):
        from convlab.distributed import _nccl

        _nccl.all_reduce(group.nccl, array, "SUM" if op is ReduceOp.AVG else op.name)
    else:
        host = array if _is_host(array) else _host_copy(array)
        wide = _WIDEN.get(host.dtype)
        buffer = host if wide is None else host.astype(wide)
        group.comm.Allreduce(_mpi.mpi().IN_PLACE, buffer, op=_mpi_op(op, host.dtype))
        if buffer is not host:
            host[...] = buffer
        if host is not array:
            array[...] = _to_device_like(host, array)
    if op is ReduceOp.AVG:
        array /= array.dtype.type(group.size())


def _is_host(array: Any) -> bool:
    """Whether ``array`` is host memory MPI can use in place: a plain NumPy array (a device
    array type may subclass it, as the CUDA emulator's does, and goes the device way)."""
    return type(array) is np.ndarray


def _host_copy(array: Any) -> np.ndarray:
    import cupy

    return np.ascontiguousarray(cupy.asnumpy(array))


def _to_device_like(host: np.ndarray, like: Any) -> Any:
    import cupy

    return cupy.asarray(host)


def _in_place(tensor: Tensor, work: Any) -> None:
    """Run ``work(array)`` on a C-contiguous array of ``tensor``'s values, then store them back
    (the array is the tensor's own when it is contiguous)."""
    data = tensor._data
    if data.flags.c_contiguous:
        work(data)
    else:
        buffer = tensor._backend.xp.ascontiguousarray(data)
        work(buffer)
        data[...] = buffer
    bump_version(data)


def all_reduce(tensor: Tensor, op: Any = ReduceOp.SUM, group: Any = None, async_op: bool = False):
    """Reduce ``tensor`` over the ranks of ``group``, in place on every rank.

    Args:
        tensor: The values to reduce; every rank passes the same shape and dtype.
        op: A :class:`ReduceOp` (``AVG`` needs floating point).
        group: A group from :func:`new_group`, or ``None`` for all ranks.
        async_op: Return a :class:`Work` handle (the collective has already completed).

    Returns:
        ``None``, or a :class:`Work` with ``async_op``.

    Raises:
        ValueError: Without a process group, or for an unknown ``op``.
        TypeError: For a non-tensor, or ``AVG`` of an integer tensor.
    """
    _check_tensor(tensor)
    check_op(op)
    target = resolve(group)
    if target is not None:
        _in_place(tensor, lambda array: reduce_arrays(target, array, op))
    return _result(async_op)


def _group_rank(group: ProcessGroup, src: Any, name: str) -> int:
    if not isinstance(src, int) or isinstance(src, bool) or src not in group.ranks:
        raise ValueError(
            f"{name}: expected the global rank of a member of the group ({group.ranks}), "
            f"got {src!r}"
        )
    return group.ranks.index(src)


def _broadcast_array(group: ProcessGroup, array: Any, root: int) -> None:
    if group.nccl is not None and not _is_host(array):
        from convlab.distributed import _nccl

        _nccl.broadcast(group.nccl, array, root)
        return
    host = array if _is_host(array) else _host_copy(array)
    wide = _WIDEN.get(host.dtype)
    buffer = host if wide is None else host.astype(wide)
    group.comm.Bcast(buffer, root=root)
    if buffer is not host:
        host[...] = buffer
    if host is not array:
        array[...] = _to_device_like(host, array)


def broadcast(
    tensor: Tensor,
    src: int | None = None,
    group: Any = None,
    async_op: bool = False,
    group_src: int | None = None,
):
    """Copy ``tensor`` from rank ``src`` to every rank of ``group``, in place.

    Args:
        tensor: The values on ``src``; the destination on the others (same shape and dtype).
        src: The source's global rank.
        group: A group from :func:`new_group`, or ``None`` for all ranks.
        async_op: Return a :class:`Work` handle (the collective has already completed).
        group_src: The source's rank within ``group`` (instead of ``src``).

    Raises:
        ValueError: Without a process group, or for a source outside the group, or both or
            neither of ``src`` and ``group_src``.
    """
    _check_tensor(tensor)
    target = resolve(group)
    if target is None:
        return _result(async_op)
    if (src is None) == (group_src is None):
        raise ValueError("src: give exactly one of src and group_src")
    if group_src is not None:
        if not isinstance(group_src, int) or not 0 <= group_src < target.size():
            raise ValueError(
                f"group_src: expected a group rank in [0, {target.size()}), got {group_src!r}"
            )
        root = group_src
    else:
        root = _group_rank(target, src, "src")
    _in_place(tensor, lambda array: _broadcast_array(target, array, root))
    return _result(async_op)


def all_gather(
    tensor_list: list[Tensor], tensor: Tensor, group: Any = None, async_op: bool = False
):
    """Gather every rank's ``tensor`` into ``tensor_list`` (entry ``i`` from group rank ``i``).

    Args:
        tensor_list: One tensor per rank of the group, each of ``tensor``'s shape and dtype.
        tensor: This rank's contribution.
        group: A group from :func:`new_group`, or ``None`` for all ranks.
        async_op: Return a :class:`Work` handle (the collective has already completed).

    Raises:
        ValueError: Without a process group, or for a list of the wrong length or shapes.
        TypeError: For entries that are not tensors or have another dtype.
    """
    _check_tensor(tensor)
    target = resolve(group)
    if target is None:
        return _result(async_op)
    if not isinstance(tensor_list, list) or len(tensor_list) != target.size():
        raise ValueError(
            f"tensor_list: expected a list of {target.size()} tensors (one per rank), got "
            f"{len(tensor_list) if isinstance(tensor_list, list) else type(tensor_list).__name__}"
        )
    for i, entry in enumerate(tensor_list):
        _check_tensor(entry, f"tensor_list[{i}]")
        if tuple(entry.shape) != tuple(tensor.shape) or entry._data.dtype != tensor._data.dtype:
            raise ValueError(
                f"tensor_list[{i}]: expected shape {tuple(tensor.shape)} and dtype "
                f"{tensor._data.dtype}, got {tuple(entry.shape)} and {entry._data.dtype}"
            )
    xp = tensor._backend.xp
    mine = xp.ascontiguousarray(tensor._data)
    gathered = xp.empty((target.size(), *mine.shape), mine.dtype)
    if target.nccl is not None and _on_device(tensor):
        from convlab.distributed import _nccl

        _nccl.all_gather(target.nccl, mine, gathered)
    else:
        host = mine if _is_host(mine) else _host_copy(mine)
        wide = _WIDEN.get(host.dtype)
        send = host if wide is None else host.astype(wide)
        out = np.empty((target.size(), *host.shape), send.dtype)
        target.comm.Allgather(send, out)
        gathered = (
            out.astype(mine.dtype, copy=False)
            if _is_host(mine)
            else (_to_device_like(out.astype(mine.dtype, copy=False), mine))
        )
    for entry, part in zip(tensor_list, gathered):
        entry._data[...] = part
        bump_version(entry._data)
    return _result(async_op)


def barrier(group: Any = None, async_op: bool = False, device_ids: Any = None, timeout: Any = None):
    """Wait until every rank of ``group`` reaches this call.

    Raises:
        ValueError: Without a process group.
    """
    target = resolve(group)
    if target is not None:
        target.comm.Barrier()
    return _result(async_op)


def world_size_or_one() -> int:
    """The world size, or 1 without a process group (for code that also runs alone)."""
    from convlab.distributed import _group

    return default_group().size() if _group.is_initialized() else 1
