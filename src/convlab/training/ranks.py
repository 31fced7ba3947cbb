"""Where a training job runs: one process, or one rank of an ``mpiexec -n N`` job.

A job asks :func:`start` for its :class:`Ranks`: which rank it is, which process group it
trains with, how many ranks there are. Everything a data-parallel job needs beyond the
library's collectives lives here, so that the jobs read the same whether they run on one
process or many:

* detecting ``mpiexec`` from the environment its launcher sets;
* splitting the ranks into groups that train ensemble members concurrently
  (:func:`member_groups`);
* this rank's contiguous share of a batch (:func:`shard`), and gathering per-sample results
  back in order (:meth:`Ranks.gather_rows`);
* ending the whole job when one rank fails (:meth:`Ranks.fail_together`), so that no rank
  waits for ever in a collective the failed one will never join.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import convlab
from convlab.training.fields import UserError
from convlab.training.runs import Interrupted, one_line

__all__ = [
    "Ranks",
    "data_parallel",
    "launched_by_mpi",
    "member_groups",
    "sample_offset",
    "shard",
    "shard_offset",
    "start",
]

# what MPICH's and Open MPI's launchers (and Slurm's PMI) set in every rank's environment
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


def launched_by_mpi() -> bool:
    """Whether this process is one of several ranks started by ``mpiexec`` / ``srun``."""
    for name in _SIZE_VARIABLES:
        try:
            if int(os.environ.get(name, "1")) > 1:
                return True
        except ValueError:  # a launcher's variable we do not understand: not ours to judge
            continue
    return False


def shard(rows: np.ndarray, size: int, rank: int) -> np.ndarray:
    """Rank ``rank``'s contiguous share of ``rows`` split ``size`` ways (the first
    ``len(rows) % size`` shares one longer), so that rank order is sample order."""
    return np.array_split(np.asarray(rows), size)[rank]


def shard_offset(total: int, size: int, rank: int) -> int:
    """Where rank ``rank``'s :func:`shard` of ``total`` rows starts."""
    base, extra = divmod(total, size)
    return rank * base + min(rank, extra)


def data_parallel(model: Any, group: Any) -> tuple[Any, Any]:
    """``model`` made to train on a group of ranks as one process would on the whole batch:
    its BatchNorm layers synchronised (batch statistics of the whole batch) and wrapped in
    ``DistributedDataParallel`` (gradients averaged over the group).

    Returns:
        The converted module (whose ``state_dict`` is the model's) and the wrapper to train.
    """
    from convlab import nn

    model = nn.SyncBatchNorm.convert_sync_batchnorm(model, process_group=group)
    return model, nn.parallel.DistributedDataParallel(model, process_group=group)


@contextmanager
def sample_offset(offset: int) -> Iterator[None]:
    """Within it, dropout draws the masks of this rank's share of a batch as those of rows
    ``offset, offset + 1, ...`` of the whole batch, so that a mask belongs to the sample
    however the batch is split among ranks (the one-rank run draws them the same way)."""
    from convlab.distributed import sample_indexed_dropout

    with sample_indexed_dropout(offset):
        yield


def member_groups(world: int, members: int) -> list[list[int]]:
    """Which ranks train which ensemble members: ``min(world, members)`` groups of
    contiguous ranks, as equal as they can be; group ``g`` trains members ``g``, ``g + G``,
    ``g + 2G``, ... in turn (with ``world >= members`` each member has its own
    ``world // members`` or more ranks; with fewer ranks than members each rank trains several).

    Returns:
        The global ranks of each group.
    """
    count = max(min(world, members), 1)
    return [list(map(int, part)) for part in np.array_split(np.arange(world), count)]


@dataclass
class Ranks:
    """This process's place in the job.

    Attributes:
        rank: Global rank (0 in a one-process job).
        world: Number of ranks.
        distributed: Whether a process group was initialised (an ``mpiexec`` job, or
            ``--distributed`` on one rank).
        group: The process group this rank trains its ensemble members with (None: the
            world, or no process group).
        group_ranks: The global ranks of that group.
        groups: Every group's global ranks (see :func:`member_groups`).
    """

    rank: int = 0
    world: int = 1
    distributed: bool = False
    group: Any = None
    group_ranks: list[int] = field(default_factory=lambda: [0])
    groups: list[list[int]] = field(default_factory=lambda: [[0]])

    @property
    def writes(self) -> bool:
        """Whether this rank writes the run folder and prints (rank 0)."""
        return self.rank == 0

    @property
    def group_index(self) -> int:
        """Which of :attr:`groups` this rank belongs to."""
        return next(g for g, ranks in enumerate(self.groups) if self.rank in ranks)

    @property
    def group_rank(self) -> int:
        """This rank's place in its group (0: the group's leader)."""
        return self.group_ranks.index(self.rank)

    @property
    def group_size(self) -> int:
        """Ranks in this rank's group."""
        return len(self.group_ranks)

    def members(self, ensemble: int) -> list[int]:
        """The ensemble members this rank's group trains, in order."""
        return list(range(self.group_index, ensemble, len(self.groups)))

    def split(self, ensemble: int) -> None:
        """Form the groups that train ``ensemble`` members concurrently (a collective: every
        rank calls it with the same ``ensemble``)."""
        self.groups = member_groups(self.world, ensemble)
        self.group_ranks = self.groups[self.group_index]
        if not self.distributed or len(self.groups) == 1:
            self.group = None
            return
        from convlab import distributed as dist

        for ranks in self.groups:  # new_group is a world collective: every rank makes each
            made = dist.new_group(ranks)
            if self.rank in ranks:
                self.group = made

    def sum(self, vector: np.ndarray, world: bool = False) -> np.ndarray:
        """Element-wise sum of a float64 vector over this rank's group (or the world)."""
        if not self.distributed:
            return vector
        from convlab import distributed as dist

        tensor = convlab.from_numpy(np.array(vector, np.float64))
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=None if world else self.group)
        return tensor.numpy()

    def gather_rows(self, local: np.ndarray, total: int, world: bool = False) -> np.ndarray:
        """The per-sample results of every rank of the group (or the world), each rank having
        computed :func:`shard` ``(arange(total), size, rank)``: all ``total`` of them, in order.
        """
        size = self.world if world else self.group_size
        if not self.distributed or size == 1:
            return local
        from convlab import distributed as dist

        width = -(-total // size)  # the longest share; shorter ones are padded to it
        mine = np.zeros((width, *local.shape[1:]), local.dtype)
        mine[: len(local)] = local
        parts = [convlab.from_numpy(np.zeros_like(mine)) for _ in range(size)]
        dist.all_gather(parts, convlab.from_numpy(mine), group=None if world else self.group)
        lengths = [len(s) for s in np.array_split(np.arange(total), size)]
        return np.concatenate([p.numpy()[:n] for p, n in zip(parts, lengths)])

    def rank0_text(self, text: str) -> str:
        """Rank 0's ``text`` on every rank (e.g. a run folder named after the time each rank
        read its clock at)."""
        if not self.distributed or self.world == 1:
            return text
        from convlab import distributed as dist

        data = text.encode()
        length = convlab.from_numpy(np.array([len(data)], np.int64))
        dist.broadcast(length, src=0)
        buffer = np.zeros(int(length.numpy()[0]), np.uint8)
        if self.rank == 0:
            buffer[:] = np.frombuffer(data, np.uint8)
        shared = convlab.from_numpy(buffer)
        dist.broadcast(shared, src=0)
        return shared.numpy().tobytes().decode()

    def barrier(self) -> None:
        """Wait for every rank (no-op in a one-process job)."""
        if self.distributed:
            from convlab import distributed as dist

            dist.barrier()

    @contextmanager
    def fail_together(self, prog: str = "convlab") -> Iterator[None]:
        """In a job of several ranks, an exception on one rank ends them all.

        The failing rank prints its error on one line (``rank r/N: ...``) and aborts the MPI
        job with status 2 for a user error, 130 for Ctrl-C, 1 otherwise: the other ranks,
        waiting in a collective this one will never join, are ended by ``mpiexec`` rather
        than hanging. A one-process job raises as usual.
        """
        if not self.distributed or self.world == 1:
            yield
            return
        try:
            yield
        except BaseException as err:
            if isinstance(err, Interrupted):
                saved = f"the checkpoint of {err.saved}" if err.saved else "no finished epoch"
                message, code = f"interrupted; the run folder holds {saved}", 130
            elif isinstance(err, KeyboardInterrupt):
                message, code = "interrupted", 130
            elif isinstance(err, (UserError, OSError)):
                message, code = f"error: {one_line(err)}", 2
            else:
                import traceback

                message = "".join(traceback.format_exception(err)).rstrip()
                code = 1
            sys.stdout.flush()
            print(f"{prog}: rank {self.rank}/{self.world}: {message}", file=sys.stderr, flush=True)
            from mpi4py import MPI

            MPI.COMM_WORLD.Abort(code)
            os._exit(code)  # Abort does not return; should an MPI let it, this rank still ends


def start(distributed: bool | None, device: str = "cpu") -> Ranks:
    """This process's :class:`Ranks`, joining the job's process group when there is one.

    Args:
        distributed: True: join a process group even on one rank (``--distributed``); False:
            a one-process job; None: join one when ``mpiexec`` started several ranks.
        device: ``"gpu"`` communicates over NCCL (MPI where NCCL is absent), ``"cpu"`` over
            MPI.

    Raises:
        UserError: When a process group is wanted and mpi4py is missing (naming
            ``pip install "convlab[mpi]"``), or cannot be set up.
    """
    if distributed is False or (distributed is None and not launched_by_mpi()):
        return Ranks()
    from convlab import distributed as dist

    if not dist.is_initialized():
        try:
            dist.init_process_group("nccl" if device == "gpu" and _nccl_usable() else "mpi")
        except RuntimeError as err:
            raise UserError(f"--distributed: {one_line(err)}") from None
    rank, world = dist.get_rank(), dist.get_world_size()
    return Ranks(rank, world, True, None, list(range(world)), [list(range(world))])


def _nccl_usable() -> bool:
    import importlib

    try:
        importlib.import_module("cupy.cuda.nccl")
    except Exception:  # noqa: BLE001 - no CuPy, no NCCL build, no driver: host copies over MPI
        return False
    return True
