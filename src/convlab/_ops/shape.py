"""Shape ops: reshape, transpose / permute, squeeze, indexing, stack / cat / split, and
needle's pad, flip, dilate and undilate."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from convlab._ops._util import normalize_dim, unbroadcast
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = [
    "reshape",
    "transpose",
    "permute",
    "flatten",
    "squeeze",
    "unsqueeze",
    "expand",
    "getitem",
    "stack",
    "cat",
    "split",
    "pad",
    "flip",
    "dilate",
    "undilate",
    "shape_args",
]


def shape_args(args: tuple) -> tuple:
    """Accept both ``f(2, 3)`` and ``f((2, 3))``."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    for a in args:
        if isinstance(a, bool) or not isinstance(a, (numbers.Integral, np.integer)):
            raise TypeError(f"shape: expected ints, got {args!r}")
    return tuple(int(a) for a in args)


class Reshape(Function):
    def forward(self, a: Any, shape: tuple = (), copy: bool = False) -> Any:
        self.shape = a.shape
        out = a.reshape(shape)
        return out.copy() if copy else out

    def backward(self, grad: Any) -> tuple:
        return (grad.reshape(self.shape),)


class Permute(Function):
    def forward(self, a: Any, axes: tuple = ()) -> Any:
        self.inverse = tuple(int(i) for i in np.argsort(axes))
        return a.transpose(axes)

    def backward(self, grad: Any) -> tuple:
        return (grad.transpose(self.inverse),)


class Expand(Function):
    def forward(self, a: Any, shape: tuple = ()) -> Any:
        self.shape = a.shape
        return self.backend.xp.broadcast_to(a, shape)

    def backward(self, grad: Any) -> tuple:
        return (unbroadcast(grad, self.shape),)


def _is_basic(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        p is None or p is Ellipsis or isinstance(p, (slice, numbers.Integral)) for p in parts
    )


class GetItem(Function):
    def forward(self, a: Any, index: Any = None) -> Any:
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        self.basic = _is_basic(index)
        return a[index]

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        out = xp.zeros(self.shape, dtype=grad.dtype)
        if self.basic:
            out[self.index] = grad  # basic indexing never repeats an element
        elif hasattr(xp, "add") and hasattr(xp.add, "at"):
            xp.add.at(out, self.index, grad)
        else:  # pragma: no cover - CuPy without ufunc.at
            import cupyx

            cupyx.scatter_add(out, self.index, grad)
        return (out,)


class Stack(Function):
    def forward(self, *arrays: Any, dim: int = 0) -> Any:
        self.dim, self.count = dim, len(arrays)
        return self.backend.xp.stack(arrays, axis=dim)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        return tuple(xp.take(grad, i, axis=self.dim) for i in range(self.count))


class Cat(Function):
    def forward(self, *arrays: Any, dim: int = 0) -> Any:
        self.dim = dim
        self.bounds = np.cumsum([0] + [a.shape[dim] for a in arrays])
        return self.backend.xp.concatenate(arrays, axis=dim)

    def backward(self, grad: Any) -> tuple:
        index = [slice(None)] * grad.ndim
        grads = []
        for lo, hi in zip(self.bounds[:-1], self.bounds[1:]):
            index[self.dim] = slice(int(lo), int(hi))
            grads.append(grad[tuple(index)])
        return tuple(grads)


class Pad(Function):
    def forward(self, a: Any, pad_width: tuple = ()) -> Any:
        self.crop = tuple(slice(lo, lo + size) for (lo, _), size in zip(pad_width, a.shape))
        return self.backend.xp.pad(a, pad_width)

    def backward(self, grad: Any) -> tuple:
        return (grad[self.crop],)


class Flip(Function):
    def forward(self, a: Any, axes: tuple = ()) -> Any:
        self.axes = axes
        return self.backend.xp.flip(a, axes)

    def backward(self, grad: Any) -> tuple:
        return (self.backend.xp.flip(grad, self.axes),)


class Dilate(Function):
    def forward(self, a: Any, dilation: int = 1, axes: tuple = ()) -> Any:
        shape = list(a.shape)
        index = [slice(None)] * a.ndim
        for ax in axes:
            shape[ax] *= dilation + 1
            index[ax] = slice(None, None, dilation + 1)
        self.index = tuple(index)
        out = self.backend.xp.zeros(shape, dtype=a.dtype)
        out[self.index] = a
        return out

    def backward(self, grad: Any) -> tuple:
        return (grad[self.index],)


class Undilate(Function):
    def forward(self, a: Any, dilation: int = 1, axes: tuple = ()) -> Any:
        index = [slice(None)] * a.ndim
        for ax in axes:
            index[ax] = slice(None, None, dilation + 1)
        self.index, self.shape = tuple(index), a.shape
        return a[self.index]

    def backward(self, grad: Any) -> tuple:
        out = self.backend.xp.zeros(self.shape, dtype=grad.dtype)
        out[self.index] = grad
        return (out,)


def reshape(a: Tensor, shape: Sequence[int], force_copy: bool = False) -> Tensor:
    """The same elements in ``shape`` (one entry may be -1).

    Raises:
        ValueError: If the element counts differ, naming both shapes.
    """
    shape = tuple(shape)
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if (
        shape.count(-1) > 1
        or any(s < -1 for s in shape)
        or (-1 not in shape and known != a._data.size)
        or (-1 in shape and (known == 0 or a._data.size % known))
    ):
        raise ValueError(
            f"reshape: shape {shape} is invalid for a tensor of shape {a.shape} "
            f"({a._data.size} elements)"
        )
    return Reshape.apply(a, shape=shape, copy=force_copy)


def permute(a: Tensor, dims: Sequence[int]) -> Tensor:
    """Reorder the dimensions (``dims`` is a permutation of ``range(ndim)``)."""
    axes = tuple(normalize_dim(d, a.ndim, "dims") for d in dims)
    if sorted(axes) != list(range(a.ndim)):
        raise ValueError(
            f"permute: dims {tuple(dims)} is not a permutation of the {a.ndim} "
            f"dimensions of a tensor of shape {a.shape}"
        )
    return Permute.apply(a, axes=axes)


def transpose(a: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap dimensions ``dim0`` and ``dim1``."""
    if a.ndim == 0:
        return a
    axes = list(range(a.ndim))
    i, j = normalize_dim(dim0, a.ndim, "dim0"), normalize_dim(dim1, a.ndim, "dim1")
    axes[i], axes[j] = axes[j], axes[i]
    return Permute.apply(a, axes=tuple(axes))


def flatten(a: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions ``start_dim..end_dim`` (inclusive) into one."""
    if a.ndim == 0:
        return reshape(a, (1,))
    s = normalize_dim(start_dim, a.ndim, "start_dim")
    e = normalize_dim(end_dim, a.ndim, "end_dim")
    if s > e:
        raise ValueError(
            f"flatten: start_dim ({start_dim}) must not come after end_dim ({end_dim})"
        )
    shape = a.shape
    merged = 1
    for size in shape[s : e + 1]:
        merged *= size
    return reshape(a, shape[:s] + (merged,) + shape[e + 1 :])


def squeeze(a: Tensor, dim: Any = None) -> Tensor:
    """Drop size-1 dimensions (only those in ``dim`` when given; others are kept silently)."""
    if dim is None:
        shape = tuple(s for s in a.shape if s != 1)
    else:
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        drop = {normalize_dim(d, a.ndim) for d in dims}
        shape = tuple(s for i, s in enumerate(a.shape) if not (i in drop and s == 1))
    return reshape(a, shape)


def unsqueeze(a: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dimension at ``dim`` (``-1`` appends)."""
    d = normalize_dim(dim, a.ndim + 1)
    return reshape(a, a.shape[:d] + (1,) + a.shape[d:])


def expand(a: Tensor, shape: Sequence[int]) -> Tensor:
    """Broadcast to ``shape``; -1 keeps the existing size."""
    shape = tuple(shape)
    lead = len(shape) - a.ndim
    if lead < 0:
        raise ValueError(f"expand: shape {shape} has fewer dimensions than the tensor {a.shape}")
    target = tuple(a.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape))
    try:
        ok = np.broadcast_shapes(a.shape, target) == target
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"expand: a tensor of shape {a.shape} cannot be expanded to {shape}")
    return Expand.apply(a, shape=target)


def getitem(a: Tensor, index: Any) -> Tensor:
    """``a[index]``: basic slicing, integers, ``None``, ``...``, and integer / boolean arrays."""
    if isinstance(index, Tensor):
        index = index._data
    elif isinstance(index, tuple):
        index = tuple(i._data if isinstance(i, Tensor) else i for i in index)
    elif isinstance(index, list):
        index = a._backend.xp.asarray(index)
    return GetItem.apply(a, index=index)


def _same_device(tensors: Sequence[Tensor], what: str) -> None:
    if not tensors:
        raise ValueError(f"{what}: expected a non-empty sequence of tensors")
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}: expected tensors, got {type(t).__name__}")


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join same-shaped tensors along a new dimension ``dim``.

    Raises:
        ValueError: If the shapes differ (all shapes are shown).
    """
    tensors = list(tensors)
    _same_device(tensors, "stack")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: expected tensors of one shape, got {[t.shape for t in tensors]}")
    d = normalize_dim(dim, tensors[0].ndim + 1)
    return Stack.apply(*tensors, dim=d)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along the existing dimension ``dim``.

    Raises:
        ValueError: If the shapes differ outside ``dim``.
    """
    tensors = list(tensors)
    _same_device(tensors, "cat")
    d = normalize_dim(dim, tensors[0].ndim)
    rest = {t.shape[:d] + t.shape[d + 1 :] for t in tensors}
    if len(rest) != 1 or len({t.ndim for t in tensors}) != 1:
        raise ValueError(
            f"cat: expected shapes that match except in dim {d}, got {[t.shape for t in tensors]}"
        )
    return Cat.apply(*tensors, dim=d)


def split(a: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple:
    """Chunks of ``split_size`` (the last may be smaller), or of the listed sizes."""
    d = normalize_dim(dim, a.ndim)
    size = a.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [int(s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes) or sum(sizes) != size:
            raise ValueError(
                f"split: sections {sizes} must be >= 0 and sum to the size {size} of dim {d}"
            )
    else:
        step = int(split_size_or_sections)
        if step <= 0:
            raise ValueError(f"split_size: expected a positive int, got {step}")
        sizes = [min(step, size - lo) for lo in range(0, size, step)] or [0]
    out = []
    lo = 0
    for s in sizes:
        index = (slice(None),) * d + (slice(lo, lo + s),)
        out.append(GetItem.apply(a, index=index))
        lo += s
    return tuple(out)


def pad(a: Tensor, pad_width: Any) -> Tensor:
    """Zero-pad: ``pad_width`` is one ``(before, after)`` pair per dimension (NumPy style).

    Raises:
        ValueError: For a wrong number of pairs or negative widths.
    """
    if isinstance(pad_width, numbers.Integral):
        pad_width = ((int(pad_width), int(pad_width)),) * a.ndim
    pairs = tuple((int(lo), int(hi)) for lo, hi in pad_width)
    if len(pairs) != a.ndim or any(lo < 0 or hi < 0 for lo, hi in pairs):
        raise ValueError(
            f"pad_width: expected {a.ndim} non-negative (before, after) pairs, "
            f"got {tuple(pad_width)}"
        )
    return Pad.apply(a, pad_width=pairs)


def _axes_arg(axes: Any, ndim: int, name: str = "axes") -> tuple:
    if isinstance(axes, (numbers.Integral, np.integer)):
        axes = (axes,)
    return tuple(sorted({normalize_dim(ax, ndim, name) for ax in axes}))


def flip(a: Tensor, axes: Any) -> Tensor:
    """Reverse the order of elements along ``axes``."""
    return Flip.apply(a, axes=_axes_arg(axes, a.ndim))


def _dilation_arg(dilation: Any) -> int:
    if (
        isinstance(dilation, bool)
        or not isinstance(dilation, (numbers.Integral, np.integer))
        or dilation < 0
    ):
        raise ValueError(f"dilation: expected an int >= 0, got {dilation!r}")
    return int(dilation)


def dilate(a: Tensor, dilation: int, axes: Any) -> Tensor:
    """Insert ``dilation`` zeros after each element along ``axes`` (needle's ``dilate``)."""
    return Dilate.apply(a, dilation=_dilation_arg(dilation), axes=_axes_arg(axes, a.ndim))


def undilate(a: Tensor, dilation: int, axes: Any) -> Tensor:
    """Keep every ``(dilation + 1)``-th element along ``axes`` (inverse of :func:`dilate`)."""
    return Undilate.apply(a, dilation=_dilation_arg(dilation), axes=_axes_arg(axes, a.ndim))
