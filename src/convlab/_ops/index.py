"""Indexing by tensors: ``gather`` / ``scatter``, ``index_select``, ``take``, masks, ``nonzero``.

The ``*_into`` functions write into an existing array without recording a graph: the kernels
behind the in-place methods (``scatter_``, ``index_add_``...).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from convlab._ops._util import normalize_dim
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = [
    "gather",
    "scatter",
    "scatter_add",
    "scatter_into",
    "index_select",
    "index_fill",
    "index_add",
    "index_add_into",
    "index_copy",
    "take",
    "masked_fill",
    "masked_select",
    "nonzero",
    "add_at",
    "along",
]


def add_at(xp: Any, out: Any, index: Any, values: Any) -> None:
    """``out[index] += values`` with repeated indices accumulating (``numpy.add.at``)."""
    if hasattr(xp, "add") and hasattr(xp.add, "at"):
        xp.add.at(out, index, values)
    else:  # pragma: no cover - CuPy without ufunc.at
        import cupyx

        cupyx.scatter_add(out, index, values)


def _index_tensor(index: Any, what: str) -> Tensor:
    if not isinstance(index, Tensor):
        raise TypeError(f"{what}: expected index to be an int64 Tensor, got {type(index).__name__}")
    if index._data.dtype.kind not in "iu":
        raise RuntimeError(f"{what}: expected index to be an int64 tensor, got dtype {index.dtype}")
    return index


def along(index: Any, dim: int, xp: Any) -> tuple:
    """The full index tuple that picks ``index`` along ``dim`` and the position elsewhere."""
    grids = []
    for d in range(index.ndim):
        if d == dim:
            grids.append(index)
        else:
            shape = [1] * index.ndim
            shape[d] = index.shape[d]
            grids.append(xp.arange(index.shape[d]).reshape(shape))
    return tuple(grids)


def _check_along(a: Tensor, dim: int, index: Tensor, what: str, src: Any = None) -> None:
    if index.ndim != a.ndim and not (index.ndim <= 1 and a.ndim <= 1):
        raise RuntimeError(
            f"{what}: index tensor must have the same number of dimensions as input "
            f"({a.ndim}), got shape {index.shape}"
        )
    for d in range(index.ndim):
        limit = a.shape[d] if d == dim else a.shape[d]
        if d != dim and index.shape[d] > limit:
            raise RuntimeError(
                f"{what}: index shape {index.shape} is larger than input shape {a.shape} "
                f"in dimension {d}"
            )
        if src is not None and index.shape[d] > src.shape[d]:
            raise RuntimeError(
                f"{what}: index shape {index.shape} is larger than src shape {src.shape} "
                f"in dimension {d}"
            )
    if index.numel():
        size = a.shape[dim] if a.ndim else 1
        low, high = int(index._data.min()), int(index._data.max())
        if low < 0 or high >= size:
            raise RuntimeError(
                f"{what}: index {high if high >= size else low} is out of bounds for "
                f"dimension {dim} with size {size}"
            )


class Gather(Function):
    """``a``'s values at ``index`` along a dimension; the gradient accumulates back to them."""

    def forward(self, a: Any, index: Any = None, dim: int = 0) -> Any:
        xp = self.backend.xp
        self.shape, self.where = a.shape, along(index, dim, xp)
        return a[self.where]

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        out = xp.zeros(self.shape, dtype=grad.dtype)
        add_at(xp, out, self.where, grad)
        return (out,)


def gather(a: Tensor, dim: int, index: Tensor) -> Tensor:
    """``out[i][j] = a[index[i][j]][j]`` for ``dim=0`` (and so on for other dims).

    Raises:
        RuntimeError: If ``index`` is not an integer tensor of ``a``'s number of dimensions
            and no larger than ``a`` outside ``dim``.
        IndexError: If an index is out of range.
    """
    index = _index_tensor(index, "gather")
    d = normalize_dim(dim, a.ndim)
    _check_along(a, d, index, "gather")
    if a.ndim == 0:
        return Gather.apply(a.reshape(1), index=index._data.reshape(1), dim=0).reshape(index.shape)
    return Gather.apply(a, index=index._data, dim=d)


class Scatter(Function):
    """``a`` with the positions ``index`` picks along ``dim`` set to (or, ``add``, increased
    by) ``src``; ``a``'s gradient skips the overwritten positions, ``src``'s is gathered."""

    def forward(
        self, a: Any, src: Any = None, index: Any = None, dim: int = 0, add: bool = False
    ) -> Any:
        xp = self.backend.xp
        self.where, self.add = along(index, dim, xp), add
        out = a.copy()
        values = src[tuple(slice(0, s) for s in index.shape)]
        if add:
            add_at(xp, out, self.where, values)
        else:
            out[self.where] = values
        self.src_shape = src.shape
        return out

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        ga = gs = None
        if self.needs[0]:
            ga = grad
            if not self.add:
                ga = grad.copy()
                ga[self.where] = 0
        if self.needs[1]:
            gs = xp.zeros(self.src_shape, dtype=grad.dtype)
            gs[tuple(slice(0, s) for s in self.where[0].shape)] = grad[self.where]
        return ga, gs


def _scatter_source(a: Tensor, src: Any, value: Any, index: Tensor, what: str) -> Tensor:
    if src is not None and value is not None:
        raise TypeError(f"{what}: give src or value, not both")
    if src is None:
        src = value
    if isinstance(src, Tensor):
        if src._data.dtype != a._data.dtype:
            raise RuntimeError(
                f"{what}: expected src of dtype {a.dtype} (self's dtype), got {src.dtype}"
            )
        return src
    if not isinstance(src, numbers.Number):
        raise TypeError(f"{what}: expected src to be a Tensor or a number, got {src!r}")
    xp = a._backend.xp
    return Tensor._wrap(xp.full(index.shape, src, dtype=a._data.dtype), a._backend)


def scatter(
    a: Tensor,
    dim: int,
    index: Tensor,
    src: Any = None,
    value: Any = None,
    *,
    reduce: str | None = None,
) -> Tensor:
    """A copy of ``a`` with ``a[index[i][j]][j] = src[i][j]`` for ``dim=0`` (``src`` may be a
    number); ``reduce="add"`` adds instead, ``"multiply"`` is not supported.

    Raises:
        RuntimeError: For mismatched shapes or dtypes (see :func:`gather`).
        ValueError: For a ``reduce`` other than ``None`` or ``"add"``.
    """
    if reduce not in (None, "add"):
        raise ValueError(f"reduce: expected None or 'add', got {reduce!r}")
    index = _index_tensor(index, "scatter")
    d = normalize_dim(dim, a.ndim)
    source = _scatter_source(a, src, value, index, "scatter")
    _check_along(a, d, index, "scatter", source)
    return Scatter.apply(a, source, index=index._data, dim=d, add=reduce == "add")


def scatter_add(a: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """A copy of ``a`` with ``src`` added at the positions ``index`` picks along ``dim``
    (repeated positions accumulate)."""
    return scatter(a, dim, index, src, reduce="add")


def scatter_into(
    target: Tensor, dim: int, index: Tensor, src: Any, reduce: str | None = None
) -> Tensor:
    """``target.scatter_(dim, index, src, reduce=...)``: writes into ``target``'s array in
    place (no graph is recorded) and returns ``target``."""
    if reduce not in (None, "add"):
        raise ValueError(f"reduce: expected None or 'add', got {reduce!r}")
    index = _index_tensor(index, "scatter_")
    d = normalize_dim(dim, target.ndim)
    source = _scatter_source(target, src, None, index, "scatter_")
    _check_along(target, d, index, "scatter_", source)
    xp = target._backend.xp
    where = along(index._data, d, xp)
    values = source._data[tuple(slice(0, s) for s in index.shape)]
    if reduce == "add":
        add_at(xp, target._data, where, values)
    else:
        target._data[where] = values
    return target


def _vector_index(index: Any, size: int, what: str) -> Tensor:
    index = _index_tensor(index, what)
    if index.ndim > 1:
        raise IndexError(f"{what}: index must be a vector (0 or 1 dimensions), got {index.shape}")
    if index.numel():
        low, high = int(index._data.min()), int(index._data.max())
        if low < 0 or high >= size:
            raise IndexError(
                f"{what}: index {high if high >= size else low} is out of range for a "
                f"dimension of size {size}"
            )
    return index


class IndexSelect(Function):
    """Slices at ``index`` along ``dim``; repeated indices accumulate their gradients."""

    def forward(self, a: Any, index: Any = None, dim: int = 0) -> Any:
        self.shape, self.index, self.dim = a.shape, index, dim
        return self.backend.xp.take(a, index, axis=dim)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        out = xp.zeros(self.shape, dtype=grad.dtype)
        where = (slice(None),) * self.dim + (self.index,)
        add_at(xp, out, where, grad)
        return (out,)


def index_select(a: Tensor, dim: int, index: Tensor) -> Tensor:
    """The entries of ``a`` at positions ``index`` (a 1-D integer tensor) along ``dim``."""
    d = normalize_dim(dim, a.ndim)
    size = a.shape[d] if a.ndim else 1
    if a.ndim == 0 and isinstance(index, Tensor) and index.numel() != 1:
        raise RuntimeError(
            f"index_select: an index into a 0-d tensor can have only 1 value, got {index.numel()}"
        )
    index = _vector_index(index, size, "index_select")
    if a.ndim == 0:  # the result is 0-d too, as in PyTorch
        return IndexSelect.apply(a.reshape(1), index=index._data.reshape(-1), dim=0).reshape(())
    return IndexSelect.apply(a, index=index._data.reshape(-1), dim=d)


class _IndexWrite(Function):
    """``a`` with slices at ``index`` along ``dim`` filled with a value, replaced by
    ``source`` (``copy``) or increased by ``alpha * source``."""

    def forward(
        self,
        a: Any,
        source: Any = None,
        index: Any = None,
        dim: int = 0,
        value: Any = 0,
        alpha: Any = 1,
        copy: bool = False,
    ) -> Any:
        xp = self.backend.xp
        self.where, self.alpha = (slice(None),) * dim + (index,), alpha
        self.add = source is not None and not copy
        out = a.copy()
        if source is None:
            out[self.where] = value
        elif copy:
            out[self.where] = source
        else:
            add_at(xp, out, self.where, source * alpha if alpha != 1 else source)
        return out

    def backward(self, grad: Any) -> tuple:
        ga = gs = None
        if self.needs[0]:
            ga = grad
            if not self.add:
                ga = grad.copy()
                ga[self.where] = 0
        if len(self.needs) > 1 and self.needs[1]:
            gs = grad[self.where]
            if self.alpha != 1:
                gs = gs * self.alpha
        return ga, gs


def index_fill(a: Tensor, dim: int, index: Tensor, value: Any) -> Tensor:
    """A copy of ``a`` with the slices at ``index`` along ``dim`` set to ``value``."""
    d = normalize_dim(dim, a.ndim)
    index = _vector_index(index, a.shape[d] if a.ndim else 1, "index_fill")
    if isinstance(value, Tensor):
        value = value.item()
    return _IndexWrite.apply(a, None, index=index._data.reshape(-1), dim=d, value=value)


def _check_index_add(
    a: Tensor, d: int, index: Tensor, source: Tensor, what: str = "index_add"
) -> None:
    expected = a.shape[:d] + (index.numel(),) + a.shape[d + 1 :]
    if source.shape != expected:
        raise RuntimeError(
            f"{what}: expected source of shape {expected} (self's shape with "
            f"len(index) in dim {d}), got {source.shape}"
        )


def index_add(a: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha: Any = 1) -> Tensor:
    """A copy of ``a`` with ``alpha * source`` added to the slices at ``index`` along ``dim``
    (repeated indices accumulate)."""
    d = normalize_dim(dim, a.ndim)
    index = _vector_index(index, a.shape[d] if a.ndim else 1, "index_add")
    _check_index_add(a, d, index, source)
    return _IndexWrite.apply(a, source, index=index._data.reshape(-1), dim=d, alpha=alpha)


def index_copy(a: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """A copy of ``a`` with the slices at ``index`` along ``dim`` replaced by ``source``'s."""
    d = normalize_dim(dim, a.ndim)
    index = _vector_index(index, a.shape[d] if a.ndim else 1, "index_copy")
    _check_index_add(a, d, index, source, "index_copy")
    return _IndexWrite.apply(a, source, index=index._data.reshape(-1), dim=d, copy=True)


def index_add_into(
    target: Tensor, dim: int, index: Tensor, source: Tensor, alpha: Any = 1
) -> Tensor:
    """``target.index_add_(...)``: adds into ``target``'s array in place (no graph)."""
    d = normalize_dim(dim, target.ndim)
    index = _vector_index(index, target.shape[d] if target.ndim else 1, "index_add_")
    _check_index_add(target, d, index, source)
    values = source._data * alpha if alpha != 1 else source._data
    xp = target._backend.xp
    add_at(xp, target._data, (slice(None),) * d + (index._data.reshape(-1),), values)
    return target


class Take(Function):
    """Elements of the flattened input at ``index``; the gradient accumulates back."""

    def forward(self, a: Any, index: Any = None) -> Any:
        self.shape, self.index = a.shape, index
        return a.reshape(-1)[index]

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        out = xp.zeros(int(np.prod(self.shape)), dtype=grad.dtype)
        add_at(xp, out, self.index, grad)
        return (out.reshape(self.shape),)


def take(a: Tensor, index: Tensor) -> Tensor:
    """Elements of ``a`` (as if flattened) at ``index``; the result has ``index``'s shape."""
    index = _index_tensor(index, "take")
    if index.numel():
        n = a.numel()
        low, high = int(index._data.min()), int(index._data.max())
        if low < -n or high >= n:
            raise IndexError(f"take: index {high if high >= n else low} out of range for {n}")
    return Take.apply(a, index=index._data)


def _mask(mask: Any, what: str) -> Tensor:
    if not isinstance(mask, Tensor):
        raise TypeError(f"{what}: expected mask to be a bool Tensor, got {type(mask).__name__}")
    if mask._data.dtype.kind != "b":
        raise RuntimeError(f"{what}: expected a bool mask, got dtype {mask.dtype}")
    return mask


class MaskedFill(Function):
    """``value`` where ``mask`` holds, else ``a``; each gets the gradient of its positions."""

    def forward(self, a: Any, value: Any = None, mask: Any = None) -> Any:
        xp = self.backend.xp
        self.mask, self.shapes = mask, (a.shape, value.shape)
        return xp.where(mask, value.astype(a.dtype, copy=False), a)

    def backward(self, grad: Any) -> tuple:
        from convlab._ops._util import unbroadcast

        xp = self.backend.xp
        zero = grad.dtype.type(0)
        return (
            unbroadcast(xp.where(self.mask, zero, grad), self.shapes[0]) if self.needs[0] else None,
            (
                unbroadcast(xp.where(self.mask, grad, zero), self.shapes[1])
                if self.needs[1]
                else None
            ),
        )


def masked_fill(a: Tensor, mask: Tensor, value: Any) -> Tensor:
    """A copy of ``a`` with ``value`` where ``mask`` (a bool tensor broadcast with ``a``) is
    true; ``value`` is a number or a 0-d tensor (which then gets a gradient).

    Raises:
        RuntimeError: If ``mask`` is not bool, or ``value`` a tensor with dimensions.
    """
    mask = _mask(mask, "masked_fill")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(
                f"masked_fill: only supports a 0-dimensional value tensor, got shape {value.shape}"
            )
        fill = value
    else:
        if not isinstance(value, numbers.Number):
            raise TypeError(f"masked_fill: expected value to be a number, got {value!r}")
        fill = Tensor._wrap(a._backend.xp.asarray(value, dtype=a._data.dtype), a._backend)
    try:
        np.broadcast_shapes(a.shape, mask.shape)
    except ValueError:
        raise RuntimeError(
            f"masked_fill: mask of shape {mask.shape} does not broadcast with input of shape "
            f"{a.shape}"
        ) from None
    return MaskedFill.apply(a, fill, mask=mask._data)


class MaskedSelect(Function):
    """The elements where ``mask`` (broadcast with ``a``) holds, as a 1-D array."""

    def forward(self, a: Any, mask: Any = None) -> Any:
        xp = self.backend.xp
        shape = np.broadcast_shapes(a.shape, mask.shape)
        self.shape, self.mask = a.shape, xp.broadcast_to(mask, shape)
        return xp.broadcast_to(a, shape)[self.mask]

    def backward(self, grad: Any) -> tuple:
        from convlab._ops._util import unbroadcast

        xp = self.backend.xp
        out = xp.zeros(self.mask.shape, dtype=grad.dtype)
        out[self.mask] = grad
        return (unbroadcast(out, self.shape),)


def masked_select(a: Tensor, mask: Tensor) -> Tensor:
    """A 1-D tensor of the elements of ``a`` where ``mask`` (broadcast with ``a``) is true."""
    mask = _mask(mask, "masked_select")
    try:
        np.broadcast_shapes(a.shape, mask.shape)
    except ValueError:
        raise RuntimeError(
            f"masked_select: mask of shape {mask.shape} does not broadcast with input of "
            f"shape {a.shape}"
        ) from None
    return MaskedSelect.apply(a, mask=mask._data)


def nonzero(a: Tensor, *, as_tuple: bool = False) -> Any:
    """Indices of the non-zero elements: an ``(n, ndim)`` int64 tensor, or with
    ``as_tuple=True`` one 1-D tensor per dimension."""
    if not isinstance(a, Tensor):
        raise TypeError(f"nonzero: expected a Tensor, got {type(a).__name__}")
    xp = a._backend.xp
    data = a._data if a.ndim else a._data.reshape(1)
    found = [xp.asarray(i).astype("int64", copy=False) for i in xp.nonzero(data)]
    if as_tuple:
        return tuple(Tensor._wrap(i, a._backend) for i in found)
    if a.ndim == 0:
        return Tensor._wrap(xp.zeros((found[0].size, 0), dtype="int64"), a._backend)
    return Tensor._wrap(xp.stack(found, axis=1), a._backend)
