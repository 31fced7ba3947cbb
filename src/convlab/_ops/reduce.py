"""Reductions: sum, mean, max / min (values, or values and indices), argmax / argmin."""

from __future__ import annotations

import math
from typing import Any, cast

from convlab._ops._util import normalize_dim
from convlab._tensor import MinMax, Tensor
from convlab.autograd import Function

__all__ = ["sum", "mean", "amax", "amin", "extreme", "arg", "dims"]


def dims(dim: Any, keepdim: bool, axis: Any, keepdims: bool | None) -> tuple:
    """Merge PyTorch's ``dim``/``keepdim`` with NumPy's ``axis``/``keepdims`` spellings."""
    if axis is not None:
        if dim is not None:
            raise TypeError("give either dim or axis, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return dim, bool(keepdim)


def _axes(dim: Any, ndim: int) -> tuple | None:
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        axes = tuple(normalize_dim(d, ndim) for d in dim)
        if len(set(axes)) != len(axes):
            raise ValueError(f"dim: each dimension may appear once, got {tuple(dim)}")
        return axes
    return (normalize_dim(dim, ndim),)


def _expand_grad(grad: Any, shape: tuple, axes: tuple | None, keepdim: bool, xp: Any) -> Any:
    """Reshape a reduction's gradient so it broadcasts against the input."""
    if not keepdim:
        keep_shape = tuple(1 if axes is None or i in axes else s for i, s in enumerate(shape))
        grad = grad.reshape(keep_shape)
    return xp.broadcast_to(grad, shape)


class Sum(Function):
    def forward(self, a: Any, axes: tuple | None = None, keepdim: bool = False) -> Any:
        self.shape, self.axes, self.keepdim = a.shape, axes, keepdim
        return self.backend.xp.asarray(a.sum(axis=axes, keepdims=keepdim))

    def backward(self, grad: Any) -> tuple:
        return (_expand_grad(grad, self.shape, self.axes, self.keepdim, self.backend.xp),)


class Mean(Function):
    def forward(self, a: Any, axes: tuple | None = None, keepdim: bool = False) -> Any:
        self.shape, self.axes, self.keepdim = a.shape, axes, keepdim
        count = a.size if axes is None else math.prod(a.shape[i] for i in axes)
        self.count = max(count, 1)
        return self.backend.xp.asarray(a.mean(axis=axes, keepdims=keepdim))

    def backward(self, grad: Any) -> tuple:
        return (
            _expand_grad(grad / self.count, self.shape, self.axes, self.keepdim, self.backend.xp),
        )


class AMax(Function):
    """Max/min values; tied extremes share the gradient equally (``torch.amax``)."""

    def forward(
        self, a: Any, axes: tuple | None = None, keepdim: bool = False, largest: bool = True
    ) -> Any:
        if a.size == 0:
            raise ValueError(
                f"{'max' if largest else 'min'}: expected a non-empty tensor "
                f"(or dimension), got shape {tuple(a.shape)}"
            )
        xp = self.backend.xp
        out = (a.max if largest else a.min)(axis=axes, keepdims=True)
        self.a, self.out_keep, self.axes, self.keepdim = a, out, axes, keepdim
        if keepdim:
            return out
        return xp.asarray(
            out.reshape([s for i, s in enumerate(a.shape) if axes is not None and i not in axes])
        )

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        mask = self.a == self.out_keep
        count = mask.sum(axis=self.axes, keepdims=True)
        g = _expand_grad(grad, self.a.shape, self.axes, self.keepdim, xp)
        return (xp.where(mask, g / count, 0).astype(self.a.dtype, copy=False),)


class MaxWithIndex(Function):
    """Max/min along one dimension; the gradient goes to the returned (first) index."""

    def forward(self, a: Any, dim: int = 0, keepdim: bool = False, largest: bool = True) -> Any:
        if a.shape[dim] == 0:
            raise IndexError(
                f"{'max' if largest else 'min'}: cannot reduce an empty "
                f"dimension {dim} of shape {tuple(a.shape)}"
            )
        xp = self.backend.xp
        index = (xp.argmax if largest else xp.argmin)(a, axis=dim)
        index_keep = xp.expand_dims(index, dim)
        out = xp.take_along_axis(a, index_keep, axis=dim)
        self.shape, self.dim, self.index, self.keepdim = a.shape, dim, index_keep, keepdim
        self.indices = index_keep if keepdim else index
        return out if keepdim else out.reshape(index.shape)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        g = grad if self.keepdim else xp.expand_dims(grad, self.dim)
        out = xp.zeros(self.shape, dtype=grad.dtype)
        xp.put_along_axis(out, self.index, g, axis=self.dim)
        return (out,)


def sum(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``dim`` (an int, a tuple, or ``None`` for all)."""
    return Sum.apply(a, axes=_axes(dim, a.ndim), keepdim=keepdim)


def mean(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Mean over ``dim``; integer tensors are rejected as in PyTorch."""
    if a._data.dtype.kind != "f":
        raise TypeError(f"mean: expected a floating-point tensor, got dtype {a.dtype}")
    return Mean.apply(a, axes=_axes(dim, a.ndim), keepdim=keepdim)


def amax(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Largest values over ``dim``."""
    return AMax.apply(a, axes=_axes(dim, a.ndim), keepdim=keepdim, largest=True)


def amin(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Smallest values over ``dim``."""
    return AMax.apply(a, axes=_axes(dim, a.ndim), keepdim=keepdim, largest=False)


def extreme(
    a: Tensor, which: str, dim: Any, keepdim: bool, axis: Any, keepdims: bool | None
) -> Any:
    """``Tensor.max``/``min`` for both the PyTorch (``dim``) and NumPy (``axis``) styles."""
    largest = which == "max"
    if axis is not None or keepdims is not None or dim is None or isinstance(dim, (tuple, list)):
        d, k = dims(dim, keepdim, axis, keepdims)
        return AMax.apply(a, axes=_axes(d, a.ndim), keepdim=k, largest=largest)
    d = normalize_dim(dim, a.ndim)
    if a.ndim == 0:
        return MinMax(a, Tensor._wrap(a._backend.xp.asarray(0), a._backend))
    values = MaxWithIndex.apply(a, dim=d, keepdim=bool(keepdim), largest=largest)
    node = cast("MaxWithIndex | None", values._node)  # the node apply just recorded
    indices = (
        node.indices
        if node is not None
        else (a._backend.xp.argmax if largest else a._backend.xp.argmin)(a._data, axis=d)
    )
    if node is None and keepdim:
        indices = a._backend.xp.expand_dims(indices, d)
    return MinMax(values, Tensor._wrap(indices.astype("int64", copy=False), a._backend))


def arg(a: Tensor, which: str, dim: int | None, keepdim: bool) -> Tensor:
    """argmax / argmin (no gradient), over the flattened tensor when ``dim`` is None."""
    xp = a._backend.xp
    if dim is None:
        index = getattr(xp, which)(a._data)
        if keepdim:
            index = xp.asarray(index).reshape((1,) * a.ndim)
    else:
        d = normalize_dim(dim, a.ndim)
        index = getattr(xp, which)(a._data, axis=d)
        if keepdim:
            index = xp.expand_dims(index, d)
    return Tensor._wrap(xp.asarray(index).astype("int64", copy=False), a._backend)
