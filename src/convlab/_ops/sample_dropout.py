"""Dropout masks keyed by global sample index, for runs that must not depend on how a batch
is split among ranks.

By default a dropout call draws one seed and fills the whole tensor's mask from it, so the mask
of a sample depends on its position in this process's batch. Inside
:func:`convlab.distributed.sample_indexed_dropout` each sample ``j`` of the batch takes its
mask from a seed derived from the call's seed and the sample's *global* index, so a batch run
whole on one rank, or split over several (each rank giving its samples' global indices), draws
the same mask for every sample. The call still takes exactly one seed from the generator, as
the default path does, so the random stream advances identically either way.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["current", "masked", "sample_indexed"]

_GOLDEN = 0x9E3779B97F4A7C15

#: ``(offset or index array, dim)`` while a :func:`sample_indexed` context is open.
_active: tuple[Any, int] | None = None


def current() -> tuple[Any, int] | None:
    """The open context's ``(indices, dim)``, or None (the default, whole-tensor masks)."""
    return _active


def _sample_seeds(seed: int, indices: np.ndarray) -> np.ndarray:
    """SplitMix64's outputs for steps ``indices + 1`` of the stream seeded by ``seed``:
    distinct, well-mixed seeds for neighbouring indices (uint64 arithmetic wraps)."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (indices.astype(np.uint64) + np.uint64(1)) * np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _indices_for(count: int) -> np.ndarray:
    assert _active is not None
    spec = _active[0]
    if isinstance(spec, int):
        return np.arange(spec, spec + count, dtype=np.int64)
    if len(spec) != count:
        raise ValueError(
            f"sample_indexed_dropout: the batch has {count} samples along dim {_active[1]}, "
            f"but {len(spec)} global indices were given"
        )
    return np.asarray(spec, dtype=np.int64)


def masked(backend: Any, x: Any, p: float, seed: int) -> tuple[Any, Any]:
    """``backend.dropout_forward(x, p, seed)`` with each sample's mask drawn from its own
    seed (the open context's global indices along its ``dim``)."""
    assert _active is not None
    dim = _active[1]
    if x.ndim == 0 or not -x.ndim <= dim < x.ndim:
        raise ValueError(
            f"sample_indexed_dropout: dim {dim} is out of range for an input of shape "
            f"{tuple(x.shape)}"
        )
    xp = backend.xp
    moved = xp.moveaxis(x, dim, 0)
    seeds = _sample_seeds(seed, _indices_for(moved.shape[0]))
    out, keep = backend.dropout_rows_forward(moved, p, seeds)
    return xp.moveaxis(out, 0, dim), xp.moveaxis(keep, 0, dim)


def _check_indices(indices: Any) -> Any:
    if isinstance(indices, numbers.Integral) and not isinstance(indices, bool):
        if indices < 0:
            raise ValueError(f"indices: expected a non-negative offset, got {indices}")
        return int(indices)
    data = getattr(indices, "_data", indices)  # a convlab Tensor's array
    try:
        array = np.asarray(data.get() if hasattr(data, "get") else data)
    except (TypeError, ValueError):
        array = np.asarray([])
    if array.ndim != 1 or array.dtype.kind not in "iu" or (array < 0).any():
        raise TypeError(
            "indices: expected an int offset or a 1-D sequence of non-negative ints, got "
            f"{type(indices).__name__}"
        )
    return array.astype(np.int64)


@contextlib.contextmanager
def sample_indexed(indices: Any, dim: int = 0) -> Iterator[None]:
    """Open a context in which dropout keys its masks by global sample index (see
    :func:`convlab.distributed.sample_indexed_dropout`)."""
    global _active
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"dim: expected an int, got {type(dim).__name__}")
    previous = _active
    _active = (_check_indices(indices), int(dim))
    try:
        yield
    finally:
        _active = previous
