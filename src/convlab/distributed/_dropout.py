"""Dropout that gives an N-rank run the masks of the 1-rank run (the public context)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from convlab._ops import sample_dropout

__all__ = ["sample_indexed_dropout"]


@contextlib.contextmanager
def sample_indexed_dropout(indices: Any, dim: int = 0) -> Iterator[None]:
    """Draw dropout masks per global sample index inside the context (opt-in; no PyTorch
    counterpart).

    Normally a dropout call fills the whole tensor's mask from one seed, so a sample's mask
    depends on where it sits in this rank's batch. Inside this context, sample ``j`` (along
    ``dim``) takes its mask from the call's seed and its global index ``indices[j]``: a batch
    processed whole on one rank or split over ranks (each naming its samples' global
    indices) draws the same mask for every sample. Each dropout call still takes one seed from
    the generator, so seed every rank alike (``convlab.manual_seed``). It applies to
    :func:`~convlab.nn.functional.dropout` and the channel dropouts (``dropout1d/2d/3d``)
    and works without a process group (the 1-rank run uses it too). Outside the context,
    dropout is unchanged.

    Args:
        indices: An int offset (sample ``j`` has global index ``offset + j``) or a 1-D
            sequence / array / tensor of the batch's global indices.
        dim: The batch dimension of the tensors dropout sees (1 for time-major sequences).

    Raises:
        TypeError: For indices that are neither.
        ValueError: (at the dropout call) If the batch's length differs from the indices'.

    Example:
        With :class:`~convlab.utils.data.DistributedSampler`, rank ``r`` of ``N`` holds the
        global batch's samples ``r, r + N, r + 2N, ...``, the 1-rank run all of them::

            with dist.sample_indexed_dropout(range(rank, N * local_batch, N)):
                loss = criterion(model(x), y)
    """
    if isinstance(indices, range):
        indices = list(indices)
    with sample_dropout.sample_indexed(indices, dim):
        yield
