"""Ordering: ``sort``, ``argsort``, ``topk``, ``kthvalue``, ``median`` and ``unique``.

Values keep a gradient (it flows back to the position each value came from); indices are
int64 and have none, as in PyTorch. Sorting is stable, NaN sorts as the largest value.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from convlab._ops._util import normalize_dim
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = ["sort", "argsort", "topk", "kthvalue", "median", "unique", "Sorted"]


class Sorted(NamedTuple):
    """What ``sort`` / ``topk`` / ``kthvalue`` return, as ``torch.return_types.sort``."""

    values: Tensor
    indices: Tensor


class TakeAlong(Function):
    """``a``'s values at ``indices`` along ``dim``; indices never repeat within a line."""

    def forward(self, a: Any, indices: Any = None, dim: int = 0) -> Any:
        self.shape, self.indices, self.dim = a.shape, indices, dim
        return self.backend.xp.take_along_axis(a, indices, axis=dim)

    def backward(self, grad: Any) -> tuple:
        from convlab._ops.index import along

        xp = self.backend.xp
        out = xp.zeros(self.shape, dtype=grad.dtype)
        out[along(self.indices, self.dim, xp)] = grad  # indices never repeat: plain assignment
        return (out,)


def _order(xp: Any, data: Any, dim: int, descending: bool) -> Any:
    """Stable sorting indices along ``dim``; descending keeps equal values in their order."""
    if not descending:
        return xp.argsort(data, axis=dim, kind="stable")
    n = data.shape[dim]
    reversed_order = xp.argsort(xp.flip(data, axis=dim), axis=dim, kind="stable")
    return (n - 1) - xp.flip(reversed_order, axis=dim)


def _check(a: Any, what: str) -> Tensor:
    if not isinstance(a, Tensor):
        raise TypeError(f"{what}: expected a Tensor as input, got {type(a).__name__}")
    return a


def sort(a: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Sorted:
    """``(values, indices)`` of ``a`` sorted along ``dim`` (always stable here)."""
    a = _check(a, "sort")
    if a.ndim == 0:
        normalize_dim(dim, 0)
        zero = Tensor._wrap(a._backend.xp.zeros((), dtype="int64"), a._backend)
        return Sorted(
            TakeAlong.apply(a.reshape(1), indices=zero._data.reshape(1)).reshape(()), zero
        )
    d = normalize_dim(dim, a.ndim)
    xp = a._backend.xp
    order = _order(xp, a._data, d, bool(descending)).astype("int64", copy=False)
    values = TakeAlong.apply(a, indices=order, dim=d)
    return Sorted(values, Tensor._wrap(order, a._backend))


def argsort(a: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices that sort ``a`` along ``dim``."""
    return sort(a, dim, descending, stable)[1]


def topk(a: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Sorted:
    """``(values, indices)`` of the ``k`` largest (``largest=False``: smallest) along ``dim``.

    Raises:
        RuntimeError: If ``k`` is larger than the dimension.
    """
    a = _check(a, "topk")
    d = normalize_dim(dim, a.ndim)
    size = a.shape[d] if a.ndim else 1
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= size:
        raise RuntimeError(f"topk: k ({k!r}) must be an int in [0, {size}] (the size of dim {d})")
    values, indices = sort(a, d, descending=bool(largest))
    if a.ndim == 0:
        return Sorted(values, indices)
    window = (slice(None),) * d + (slice(0, k),)
    return Sorted(values[window], indices[window])


def kthvalue(a: Tensor, k: int, dim: int = -1, keepdim: bool = False) -> Sorted:
    """``(values, indices)`` of the ``k``-th smallest element (1-based) along ``dim``.

    Raises:
        RuntimeError: If ``k`` is not in ``[1, size of dim]``.
    """
    a = _check(a, "kthvalue")
    d = normalize_dim(dim, a.ndim)
    size = a.shape[d] if a.ndim else 1
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= size:
        raise RuntimeError(f"kthvalue: k ({k!r}) must be an int in [1, {size}]")
    values, indices = sort(a, d)
    if a.ndim == 0:
        return Sorted(values, indices)
    pick = (slice(None),) * d + (slice(k - 1, k) if keepdim else k - 1,)
    return Sorted(values[pick], indices[pick])


def median(a: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    """The lower median (PyTorch's): over everything (a 0-d tensor) or along ``dim``
    (``(values, indices)``)."""
    a = _check(a, "median")
    if dim is None:
        flat = a.reshape(-1)
        if flat.numel() == 0:
            raise RuntimeError("median: expected a non-empty tensor")
        return kthvalue(flat, (flat.numel() + 1) // 2).values
    d = normalize_dim(dim, a.ndim)
    size = a.shape[d] if a.ndim else 1
    return kthvalue(a, (size + 1) // 2, d, keepdim)


def unique(
    a: Tensor,
    sorted: bool = True,
    return_inverse: bool = False,
    return_counts: bool = False,
    dim: int | None = None,
) -> Any:
    """The distinct values of ``a`` (sorted), optionally with the inverse map and counts.

    Returns a tensor, or a tuple ``(values, inverse?, counts?)`` when either flag is set; no
    gradient, as in PyTorch.
    """
    a = _check(a, "unique")
    xp = a._backend.xp
    if dim is None:
        data, axis = a._data.reshape(-1), None
    else:
        data, axis = a._data, normalize_dim(dim, a.ndim)
    values, inverse, counts = xp.unique(data, return_inverse=True, return_counts=True, axis=axis)
    out = [Tensor._wrap(values, a._backend)]
    if return_inverse:
        shape = a.shape if dim is None else (a.shape[axis or 0],)
        out.append(Tensor._wrap(inverse.reshape(shape).astype("int64"), a._backend))
    if return_counts:
        out.append(Tensor._wrap(counts.astype("int64"), a._backend))
    return out[0] if len(out) == 1 else tuple(out)
