"""Rearranging elements: ``repeat`` / ``tile`` / ``repeat_interleave``, ``chunk``, ``unbind``,
``narrow``, ``roll``, ``movedim``, triangles and diagonals, ``meshgrid``."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from convlab._ops import shape as _shape
from convlab._ops._util import normalize_dim
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = [
    "repeat",
    "tile",
    "repeat_interleave",
    "chunk",
    "unbind",
    "narrow",
    "roll",
    "movedim",
    "tril",
    "triu",
    "diag",
    "diagonal",
    "trace",
    "meshgrid",
    "select",
    "unflatten",
    "broadcast_to",
    "fliplr",
    "flipud",
    "rot90",
    "diff",
    "unfold",
    "sum_to_size",
]


class Tile(Function):
    """``numpy.tile`` with as many repeats as dimensions; the gradient sums the copies."""

    def forward(self, a: Any, reps: tuple = ()) -> Any:
        self.shape, self.reps = a.shape, reps
        return self.backend.xp.tile(a, reps)

    def backward(self, grad: Any) -> tuple:
        split: list[int] = []
        for r, s in zip(self.reps, self.shape):
            split += [r, s]
        summed = grad.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
        return (summed.reshape(self.shape),)


def _sizes(sizes: tuple, what: str) -> tuple[int, ...]:
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, (numbers.Integral, np.integer)) or s < 0:
            raise TypeError(f"{what}: expected non-negative ints, got {sizes!r}")
    return tuple(int(s) for s in sizes)


def repeat(a: Tensor, *sizes: Any) -> Tensor:
    """``a`` repeated ``sizes[i]`` times along each dimension (``Tensor.repeat``).

    Raises:
        RuntimeError: If fewer repeats than dimensions are given.
    """
    reps = _sizes(sizes, "repeat")
    if len(reps) < a.ndim:
        raise RuntimeError(
            f"repeat: number of repeat dims ({len(reps)}) can not be smaller than the number "
            f"of tensor dims ({a.ndim})"
        )
    lead = len(reps) - a.ndim
    a = _shape.reshape(a, (1,) * lead + a.shape)
    return Tile.apply(a, reps=reps)


def tile(a: Tensor, dims: Any) -> Tensor:
    """Like :func:`repeat`, with missing leading repeats taken as 1 (``torch.tile``)."""
    reps = _sizes(tuple(dims) if isinstance(dims, (tuple, list)) else (dims,), "tile")
    reps = (1,) * (a.ndim - len(reps)) + reps
    return repeat(a, reps)


def repeat_interleave(
    a: Tensor, repeats: Any, dim: int | None = None, *, output_size: int | None = None
) -> Tensor:
    """Each element repeated ``repeats`` times (an int, or one count per element) along
    ``dim`` (the flattened tensor when None).

    Raises:
        RuntimeError: If ``repeats`` does not match the dimension's size.
    """
    from convlab._ops.index import index_select

    if dim is None:
        a, d = _shape.reshape(a, (-1,)), 0
    else:
        d = normalize_dim(dim, a.ndim)
    size = a.shape[d] if a.ndim else 1
    counts = repeats._backend.to_numpy(repeats._data) if isinstance(repeats, Tensor) else repeats
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    if counts.size == 1:
        counts = np.full(size, counts[0])
    if counts.size != size or (counts < 0).any():
        raise RuntimeError(
            f"repeat_interleave: repeats must have the same size as input along dim ({size}) "
            f"and be non-negative, got {counts.size}"
        )
    index = np.repeat(np.arange(size, dtype=np.int64), counts)
    if output_size is not None and output_size != index.size:
        raise RuntimeError(
            f"repeat_interleave: output_size {output_size} != the repeats' sum {index.size}"
        )
    if a.ndim == 0:
        a = _shape.reshape(a, (1,))
    picks = Tensor._wrap(a._backend.asarray(index), a._backend)
    return index_select(a, d, picks)


def chunk(a: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """At most ``chunks`` pieces of equal size ``ceil(n / chunks)`` (the last may be smaller).

    Raises:
        RuntimeError: If ``chunks`` is not positive.
    """
    if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks <= 0:
        raise RuntimeError(f"chunk: expected chunks to be a positive int, got {chunks!r}")
    d = normalize_dim(dim, a.ndim)
    size = a.shape[d]
    step = max(math.ceil(size / chunks), 1) if size else 1
    if size == 0:
        return tuple(_shape.split(a, [0] * chunks, d))
    return _shape.split(a, step, d)


def unbind(a: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """The slices along ``dim``, with that dimension removed."""
    d = normalize_dim(dim, a.ndim)
    return tuple(a[(slice(None),) * d + (i,)] for i in range(a.shape[d]))


def narrow(a: Tensor, dim: int, start: Any, length: int) -> Tensor:
    """The ``length`` entries of ``a`` along ``dim`` from ``start`` (negative counts back).

    Raises:
        IndexError: If the window falls outside the dimension.
    """
    d = normalize_dim(dim, a.ndim)
    size = a.shape[d]
    start = int(start)
    if not -size <= start <= size:
        raise IndexError(
            f"narrow: start out of range (expected to be in range of [{-size}, {size}], "
            f"but got {start})"
        )
    if start < 0:
        start += size
    if length < 0 or start + length > size:
        raise RuntimeError(
            f"narrow: start ({start}) + length ({length}) exceeds dimension size ({size})"
        )
    return a[(slice(None),) * d + (slice(start, start + length),)]


class Roll(Function):
    """A cyclic shift; the gradient is shifted back."""

    def forward(self, a: Any, shifts: Any = 0, axes: Any = None) -> Any:
        self.shifts, self.axes = shifts, axes
        return self.backend.xp.roll(a, shifts, axis=axes)

    def backward(self, grad: Any) -> tuple:
        back = tuple(-s for s in self.shifts) if isinstance(self.shifts, tuple) else -self.shifts
        return (self.backend.xp.roll(grad, back, axis=self.axes),)


def roll(a: Tensor, shifts: Any, dims: Any = None) -> Tensor:
    """Elements shifted cyclically by ``shifts`` along ``dims`` (the flattened tensor when
    None).

    Raises:
        RuntimeError: If ``shifts`` and ``dims`` have different lengths.
    """
    if dims is None:
        if isinstance(shifts, (tuple, list)):
            if len(shifts) != 1:
                raise RuntimeError("roll: expected one shift when dims is None")
            shifts = shifts[0]
        return Roll.apply(a, shifts=int(shifts), axes=None)
    shift_t = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
    dim_t = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    if len(shift_t) != len(dim_t):
        raise RuntimeError(
            f"roll: shifts and dimensions must align, got {len(shift_t)} shifts and "
            f"{len(dim_t)} dims"
        )
    axes = tuple(normalize_dim(d, a.ndim) for d in dim_t)
    return Roll.apply(a, shifts=tuple(int(s) for s in shift_t), axes=axes)


def movedim(a: Tensor, source: Any, destination: Any) -> Tensor:
    """Move dimensions ``source`` to positions ``destination`` (the rest keep their order)."""
    src = tuple(source) if isinstance(source, (tuple, list)) else (source,)
    dst = tuple(destination) if isinstance(destination, (tuple, list)) else (destination,)
    if len(src) != len(dst):
        raise RuntimeError(
            f"movedim: source and destination must have the same number of dims, got "
            f"{len(src)} and {len(dst)}"
        )
    src = tuple(normalize_dim(d, a.ndim, "source") for d in src)
    dst = tuple(normalize_dim(d, a.ndim, "destination") for d in dst)
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise RuntimeError("movedim: repeated dims in source or destination")
    order = [d for d in range(a.ndim) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return _shape.permute(a, tuple(order))


class _Triangle(Function):
    def forward(self, a: Any, lower: bool = True, k: int = 0) -> Any:
        xp = self.backend.xp
        rows, cols = a.shape[-2], a.shape[-1]
        lower_part = xp.tri(rows, cols, k if lower else k - 1, dtype=bool)
        keep = lower_part if lower else ~lower_part
        self.keep = keep
        return xp.where(keep, a, a.dtype.type(0))

    def backward(self, grad: Any) -> tuple:
        return (self.backend.xp.where(self.keep, grad, grad.dtype.type(0)),)


def _matrix_check(a: Tensor, what: str) -> None:
    if a.ndim < 2:
        raise RuntimeError(f"{what}: input tensor must have at least 2 dimensions, got {a.ndim}")


def tril(a: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dimensions (on and below ``diagonal``)."""
    _matrix_check(a, "tril")
    return _Triangle.apply(a, lower=True, k=int(diagonal))


def triu(a: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dimensions (on and above ``diagonal``)."""
    _matrix_check(a, "triu")
    return _Triangle.apply(a, lower=False, k=int(diagonal))


class _DiagMatrix(Function):
    """A 1-D tensor placed on diagonal ``k`` of a square matrix."""

    def forward(self, a: Any, k: int = 0) -> Any:
        xp = self.backend.xp
        self.k = k
        return xp.diag(a, k)

    def backward(self, grad: Any) -> tuple:
        return (self.backend.xp.diagonal(grad, self.k).copy(),)


class _Diagonal(Function):
    def forward(self, a: Any, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Any:
        xp = self.backend.xp
        self.shape, self.args = a.shape, (offset, dim1, dim2)
        return xp.diagonal(a, offset, dim1, dim2).copy()

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        offset, dim1, dim2 = self.args
        out = xp.zeros(self.shape, dtype=grad.dtype)
        steps = xp.arange(grad.shape[-1])
        planes = xp.moveaxis(out, (dim1, dim2), (-2, -1))  # a view: writes reach ``out``
        planes[..., steps + max(-offset, 0), steps + max(offset, 0)] = grad
        return (out,)


def diag(a: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-D tensor as a diagonal matrix, or a matrix's diagonal as a 1-D tensor.

    Raises:
        RuntimeError: If ``a`` has more than two dimensions.
    """
    if a.ndim == 1:
        return _DiagMatrix.apply(a, k=int(diagonal))
    if a.ndim != 2:
        raise RuntimeError(f"diag: expected a 1-D or 2-D tensor, got {a.ndim} dimensions")
    return _Diagonal.apply(a, offset=int(diagonal), dim1=0, dim2=1)


def diagonal(a: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal of the ``(dim1, dim2)`` planes, appended as the last dimension."""
    d1, d2 = normalize_dim(dim1, a.ndim, "dim1"), normalize_dim(dim2, a.ndim, "dim2")
    if d1 == d2:
        raise RuntimeError(f"diagonal: dim1 and dim2 cannot be the same dimension ({d1})")
    return _Diagonal.apply(a, offset=int(offset), dim1=d1, dim2=d2)


def trace(a: Tensor) -> Tensor:
    """The sum of a matrix's diagonal."""
    from convlab._ops.reduce import sum as _sum

    if a.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, got {a.ndim} dimensions")
    return _sum(diag(a))


def meshgrid(*tensors: Any, indexing: str | None = None) -> tuple[Tensor, ...]:
    """Coordinate grids from 1-D tensors; ``indexing`` is ``"ij"`` (the default, as in
    PyTorch) or ``"xy"``.

    Raises:
        ValueError: For another ``indexing``.
        RuntimeError: If an input is not 0-D or 1-D.
    """
    if len(tensors) == 1 and isinstance(tensors[0], Sequence):
        tensors = tuple(tensors[0])
    mode = indexing or "ij"
    if mode not in ("ij", "xy"):
        raise ValueError(f"indexing: expected 'ij' or 'xy', got {indexing!r}")
    for t in tensors:
        if not isinstance(t, Tensor) or t.ndim > 1:
            raise RuntimeError("meshgrid: expects 0-D or 1-D tensors")
    flat = [_shape.reshape(t, (-1,)) for t in tensors]
    if mode == "xy" and len(flat) >= 2:
        flat[0], flat[1] = flat[1], flat[0]
    shape = tuple(t.shape[0] for t in flat)
    grids = []
    for i, t in enumerate(flat):
        view = [1] * len(flat)
        view[i] = shape[i]
        grids.append(_shape.expand(_shape.reshape(t, tuple(view)), shape))
    if mode == "xy" and len(grids) >= 2:  # built with the first two swapped: swap back
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


def select(a: Tensor, dim: int, index: int) -> Tensor:
    """The slice at ``index`` along ``dim``, with that dimension removed.

    Raises:
        IndexError: If ``index`` is out of range.
    """
    d = normalize_dim(dim, a.ndim)
    size = a.shape[d]
    if not -size <= index < size:
        raise IndexError(
            f"select: index {index} out of range for tensor of size {a.shape} at dimension {d}"
        )
    return a[(slice(None),) * d + (int(index),)]


def unflatten(a: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    """Dimension ``dim`` split into ``sizes`` (one may be -1)."""
    d = normalize_dim(dim, a.ndim)
    return _shape.reshape(a, a.shape[:d] + tuple(int(s) for s in sizes) + a.shape[d + 1 :])


def broadcast_to(a: Tensor, size: Sequence[int]) -> Tensor:
    """``a`` broadcast to ``size`` (``Tensor.expand``)."""
    return _shape.expand(a, tuple(size))


def fliplr(a: Tensor) -> Tensor:
    """Columns in reverse order (dimension 1)."""
    if a.ndim < 2:
        raise RuntimeError("fliplr: input must be >= 2-d")
    return _shape.flip(a, (1,))


def flipud(a: Tensor) -> Tensor:
    """Rows in reverse order (dimension 0)."""
    if a.ndim < 1:
        raise RuntimeError("flipud: input must be >= 1-d")
    return _shape.flip(a, (0,))


def rot90(a: Tensor, k: int = 1, dims: Sequence[int] = (0, 1)) -> Tensor:
    """Rotated by 90 degrees ``k`` times in the plane ``dims`` (from the first towards the
    second axis), as ``torch.rot90``.

    Raises:
        RuntimeError: If ``dims`` are not two different dimensions.
    """
    if len(dims) != 2:
        raise RuntimeError(f"rot90: expected total rotation dims == 2, got {len(dims)}")
    d0, d1 = (normalize_dim(d, a.ndim) for d in dims)
    if d0 == d1:
        raise RuntimeError(f"rot90: expected two different dims, got {tuple(dims)}")
    k %= 4
    if k == 1:
        return _shape.transpose(_shape.flip(a, (d1,)), d0, d1)
    if k == 2:
        return _shape.flip(a, (d0, d1))
    if k == 3:
        return _shape.flip(_shape.transpose(a, d0, d1), (d1,))
    return _shape.reshape(a, a.shape, force_copy=True)


def diff(
    a: Tensor,
    n: int = 1,
    dim: int = -1,
    prepend: Tensor | None = None,
    append: Tensor | None = None,
) -> Tensor:
    """``n``-th forward differences along ``dim`` (after joining ``prepend`` and ``append``)."""
    from convlab._ops import arith

    d = normalize_dim(dim, a.ndim)
    parts = [t for t in (prepend, a, append) if t is not None]
    out = _shape.cat(parts, d) if len(parts) > 1 else a
    for _ in range(int(n)):
        size = out.shape[d]
        if size == 0:
            break
        later, earlier = narrow(out, d, 1, size - 1), narrow(out, d, 0, size - 1)
        if out._data.dtype.kind == "b":
            from convlab._ops.logic import logical_xor

            out = logical_xor(later, earlier)
        else:
            out = arith.sub(later, earlier)
    return out


def unfold(a: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """The windows of ``size`` entries every ``step`` along ``dimension``, as
    ``Tensor.unfold``: that dimension becomes the window count and a last dimension of
    ``size`` is appended.

    Raises:
        RuntimeError: If ``size`` exceeds the dimension or ``step`` is not positive.
    """
    from convlab._ops.index import index_select

    d = normalize_dim(dimension, a.ndim)
    length = a.shape[d] if a.ndim else 1
    if size < 0 or size > length:
        raise RuntimeError(
            f"unfold: maximum size for tensor at dimension {d} is {length} but size is {size}"
        )
    if step <= 0:
        raise RuntimeError(f"unfold: step is {step} but must be > 0")
    starts = np.arange(0, length - size + 1, step, dtype=np.int64)
    picks = (starts[:, None] + np.arange(size, dtype=np.int64)[None, :]).reshape(-1)
    if a.ndim == 0:
        a = _shape.reshape(a, (1,))
    index = Tensor._wrap(a._backend.asarray(picks), a._backend)
    windows = index_select(a, d, index)  # the gradient accumulates over overlapping windows
    shaped = _shape.reshape(windows, a.shape[:d] + (starts.size, size) + a.shape[d + 1 :])
    return movedim(shaped, d + 1, -1)


def sum_to_size(a: Tensor, *size: Any) -> Tensor:
    """``a`` summed down to ``size`` (which ``a`` must broadcast from), as
    ``Tensor.sum_to_size``.

    Raises:
        RuntimeError: If ``size`` is not expandable to ``a``'s shape.
    """
    from convlab._ops.reduce import sum as _sum

    target = _sizes(size, "sum_to_size")
    lead = a.ndim - len(target)
    if lead < 0 or any(t not in (1, s) for t, s in zip(target, a.shape[lead:])):
        raise RuntimeError(f"sum_to_size: size {target} is not expandable to size {a.shape}")
    axes = tuple(range(lead)) + tuple(
        lead + i for i, t in enumerate(target) if t == 1 and a.shape[lead + i] != 1
    )
    out = _sum(a, axes, keepdim=True) if axes else a
    return _shape.reshape(out, target)
