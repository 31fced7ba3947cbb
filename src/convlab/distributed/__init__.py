"""``convlab.distributed``: data-parallel training over MPI (mpi4py) and NCCL (CuPy).

torch.distributed's names over a standard engine: ranks are the processes ``mpiexec -n N``
starts, host arrays travel through MPI's buffer interface and GPU arrays through NCCL, whose
communicator is bootstrapped over MPI. Importing this package imports neither mpi4py nor CuPy;
:func:`init_process_group` does.

Example:
    A script started with ``mpiexec -n 2 python train.py``::

        import convlab.distributed as dist

        dist.init_process_group("mpi")
        t = convlab.ones(3) * dist.get_rank()
        dist.all_reduce(t)  # every rank now holds [1., 1., 1.]
"""

from __future__ import annotations

from convlab.distributed._collectives import Work, all_gather, all_reduce, barrier, broadcast
from convlab.distributed._dropout import sample_indexed_dropout
from convlab.distributed._group import (
    GroupMember,
    ProcessGroup,
    destroy_process_group,
    get_backend,
    get_global_rank,
    get_process_group_ranks,
    get_rank,
    get_world_size,
    init_process_group,
    is_available,
    is_gloo_available,
    is_initialized,
    is_mpi_available,
    is_nccl_available,
    new_group,
)
from convlab.distributed._reduce_op import ReduceOp

__all__ = [
    "GroupMember",
    "ProcessGroup",
    "ReduceOp",
    "Work",
    "all_gather",
    "all_reduce",
    "barrier",
    "broadcast",
    "destroy_process_group",
    "get_backend",
    "get_global_rank",
    "get_process_group_ranks",
    "get_rank",
    "get_world_size",
    "init_process_group",
    "is_available",
    "is_gloo_available",
    "is_initialized",
    "is_mpi_available",
    "is_nccl_available",
    "new_group",
    "sample_indexed_dropout",
]
