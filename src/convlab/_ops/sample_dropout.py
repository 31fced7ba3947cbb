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

_MASK64 = 2**64 - 1
_GOLDEN = 0x9E3779B97F4A7C15

#: ``(offset or index array, dim)`` while a :func:`sample_indexed` context is open.
_active: tuple[Any, int] | None = None


def current() -> tuple[Any, int] | None:
    """The open context's ``(indices, dim)``, or None (the default, whole-tensor masks)."""
    return _active


def _sample_seed(seed: int, index: int) -> int:
    """SplitMix64's output for step ``index + 1`` of the stream seeded by ``seed``: distinct,
    well-mixed seeds for neighbouring indices."""
    z = (seed + (index + 1) * _GOLDEN) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _indices_for(count: int) -> list[int]:
    assert _active is not None
    spec = _active[0]
    if isinstance(spec, int):
        return list(range(spec, spec + count))
    if len(spec) != count:
        raise ValueError(
            f"sample_indexed_dropout: the batch has {count} samples along dim {_active[1]}, "
            f"but {len(spec)} global indices were given"
        )
    return [int(i) for i in spec]


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
    out = xp.empty(moved.shape, x.dtype)
    keep = xp.empty(moved.shape, xp.bool_)
    for j, index in enumerate(_indices_for(moved.shape[0])):
        out[j], keep[j] = backend.dropout_forward(moved[j], p, _sample_seed(seed, index))
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
