"""``DistributedSampler``: each rank's share of a dataset, as ``torch.utils.data``'s.

Every rank builds the same epoch order (shuffled from ``seed + epoch``), pads it by repeating
its first indices to a multiple of the rank count (or drops the tail with ``drop_last``), and
takes every ``num_replicas``-th index from position ``rank``. The shuffled order is PyTorch's:
the same arguments give the same indices as ``torch.utils.data.DistributedSampler``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Sized
from typing import Any

import numpy as np

from convlab.data.sampler import Sampler

__all__ = ["DistributedSampler"]


def torch_randperm(n: int, seed: int) -> list[int]:
    """The permutation ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))``
    gives on the CPU.

    PyTorch's CPU generator is MT19937 seeded with the seed's low 32 bits (the reference
    initialisation, which NumPy's legacy ``RandomState`` shares), and its permutation is a
    forward Fisher-Yates shuffle: position ``i`` swaps with ``i + draw % (n - i)``, one 32-bit
    draw per position.
    """
    order = list(range(n))
    if n < 2:
        return order
    draws = np.random.RandomState(seed & 0xFFFFFFFF).randint(0, 2**32, size=n - 1, dtype=np.uint32)
    # the targets are independent of the swaps, so they are computed for all positions at once
    spans = np.arange(n, 1, -1, dtype=np.uint64)
    targets = (draws.astype(np.uint64) % spans).astype(np.int64) + np.arange(n - 1)
    for i, j in enumerate(targets.tolist()):
        order[i], order[j] = order[j], order[i]
    return order


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    return int(value)


class DistributedSampler(Sampler[int]):
    """Restrict data loading to this rank's share of ``dataset``
    (``torch.utils.data.DistributedSampler``).

    Call :meth:`set_epoch` at the start of every epoch (before making the loader's iterator),
    or every epoch visits the same order.

    Args:
        dataset: A sized dataset.
        num_replicas: The number of ranks sharing the data (default: the world size of the
            process group).
        rank: This rank (default: its rank in the process group).
        shuffle: Visit the indices in a random order drawn from ``seed + epoch`` (PyTorch's
            order), else in order.
        seed: The shuffle's seed; the same on every rank.
        drop_last: Drop the tail that does not divide evenly among the ranks, instead of
            padding it with the first indices.

    Raises:
        RuntimeError: Without ``num_replicas`` / ``rank`` and without a process group.
        ValueError: For a rank outside ``[0, num_replicas - 1]``.

    Example:
        >>> from convlab.utils.data import DistributedSampler
        >>> list(DistributedSampler(range(5), num_replicas=2, rank=1, shuffle=False))
        [1, 3, 0]
    """

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if num_replicas is None or rank is None:
            from convlab import distributed

            if not distributed.is_initialized():
                raise RuntimeError(
                    "DistributedSampler: pass num_replicas and rank, or call "
                    "convlab.distributed.init_process_group first"
                )
            num_replicas = distributed.get_world_size() if num_replicas is None else num_replicas
            rank = distributed.get_rank() if rank is None else rank
        num_replicas, rank = _count(num_replicas, "num_replicas"), _count(rank, "rank")
        if num_replicas < 1:
            raise ValueError(f"num_replicas: expected a positive int, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(
                f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]"
            )
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        self.shuffle = shuffle
        self.seed = _count(seed, "seed")
        size = len(dataset)
        if drop_last and size % num_replicas:
            # every rank gets the same number of samples: the remainder is left out
            self.num_samples = math.ceil((size - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(size / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self) -> Iterator[int]:
        size = len(self.dataset)
        order = torch_randperm(size, self.seed + self.epoch) if self.shuffle else list(range(size))
        if self.drop_last:
            order = order[: self.total_size]
        elif self.total_size > size and size:
            missing = self.total_size - size
            order += (order * math.ceil(missing / size))[:missing]
        return iter(order[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` for the next shuffle, so each epoch has its own order (the same on
        every rank)."""
        self.epoch = _count(epoch, "epoch")
