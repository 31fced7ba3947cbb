"""Comparisons, logical and bitwise ops, NaN / infinity tests and boolean reductions.

None of these has a gradient: every result is bool (or int64 counts), as in PyTorch.
"""

from __future__ import annotations

from typing import Any

from convlab._ops._util import normalize_dim, pair_operands
from convlab._ops.arith import compare
from convlab._tensor import Tensor

__all__ = [
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "equal",
    "isclose",
    "allclose",
    "isnan",
    "isinf",
    "isfinite",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
    "bitwise_and",
    "bitwise_or",
    "bitwise_xor",
    "bitwise_not",
    "all",
    "any",
    "count_nonzero",
]


def _compared(a: Any, b: Any, op: str) -> Tensor:
    if not isinstance(a, Tensor) or b is None:
        raise TypeError(
            f"{op}: expected a Tensor and a Tensor or number, got {type(a).__name__} and "
            f"{type(b).__name__}"
        )
    return compare(a, b, op)


def eq(a: Any, b: Any) -> Tensor:
    """``a == b`` elementwise (bool)."""
    return _compared(a, b, "equal")


def ne(a: Any, b: Any) -> Tensor:
    """``a != b`` elementwise (bool)."""
    return _compared(a, b, "not_equal")


def lt(a: Any, b: Any) -> Tensor:
    """``a < b`` elementwise (bool)."""
    return _compared(a, b, "less")


def le(a: Any, b: Any) -> Tensor:
    """``a <= b`` elementwise (bool)."""
    return _compared(a, b, "less_equal")


def gt(a: Any, b: Any) -> Tensor:
    """``a > b`` elementwise (bool)."""
    return _compared(a, b, "greater")


def ge(a: Any, b: Any) -> Tensor:
    """``a >= b`` elementwise (bool)."""
    return _compared(a, b, "greater_equal")


def _tensor(a: Any, name: str, what: str) -> Tensor:
    if not isinstance(a, Tensor):
        raise TypeError(f"{what}: expected a Tensor as {name}, got {type(a).__name__}")
    return a


def _pair(a: Any, b: Any, what: str) -> tuple[Tensor, Tensor]:
    a, b = pair_operands(a, b)
    if a._backend is not b._backend:
        raise RuntimeError(
            f"{what}: expected both tensors on one device, got {a.device} and {b.device}"
        )
    return a, b


def equal(a: Tensor, b: Tensor) -> bool:
    """True when ``a`` and ``b`` have the same shape and the same values."""
    a, b = _tensor(a, "input", "equal"), _tensor(b, "other", "equal")
    a, b = _pair(a, b, "equal")
    if a.shape != b.shape:
        return False
    return bool((a._data == b._data).all())


def isclose(
    a: Tensor, b: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> Tensor:
    """``|a - b| <= atol + rtol * |b|`` elementwise (bool), as ``torch.isclose``."""
    a = _tensor(a, "input", "isclose")
    a, b = _pair(a, b, "isclose")
    xp = a._backend.xp
    return Tensor._wrap(
        xp.isclose(a._data, b._data, rtol=rtol, atol=atol, equal_nan=equal_nan), a._backend
    )


def allclose(
    a: Tensor, b: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> bool:
    """Whether :func:`isclose` holds for every element."""
    return bool(isclose(a, b, rtol, atol, equal_nan)._data.all())


def _float_test(a: Tensor, what: str, test: str) -> Tensor:
    a = _tensor(a, "input", what)
    xp = a._backend.xp
    if a._data.dtype.kind != "f":  # integers are never NaN or infinite
        value = test == "isfinite"
        return Tensor._wrap(xp.full(a.shape, value, dtype=bool), a._backend)
    return Tensor._wrap(getattr(xp, test)(a._data), a._backend)


def isnan(a: Tensor) -> Tensor:
    """Where ``a`` is NaN (bool)."""
    return _float_test(a, "isnan", "isnan")


def isinf(a: Tensor) -> Tensor:
    """Where ``a`` is +-infinity (bool)."""
    return _float_test(a, "isinf", "isinf")


def isfinite(a: Tensor) -> Tensor:
    """Where ``a`` is neither NaN nor infinite (bool)."""
    return _float_test(a, "isfinite", "isfinite")


def _logical(a: Any, b: Any, op: str) -> Tensor:
    a, b = _pair(a, b, op)
    return Tensor._wrap(getattr(a._backend.xp, op)(a._data, b._data), a._backend)


def logical_and(a: Tensor, b: Any) -> Tensor:
    """Elementwise AND of the truth values (bool)."""
    return _logical(a, b, "logical_and")


def logical_or(a: Tensor, b: Any) -> Tensor:
    """Elementwise OR of the truth values (bool)."""
    return _logical(a, b, "logical_or")


def logical_xor(a: Tensor, b: Any) -> Tensor:
    """Elementwise XOR of the truth values (bool)."""
    return _logical(a, b, "logical_xor")


def logical_not(a: Tensor) -> Tensor:
    """Elementwise NOT of the truth values (bool)."""
    a = _tensor(a, "input", "logical_not")
    return Tensor._wrap(a._backend.xp.logical_not(a._data), a._backend)


def _bitwise(a: Any, b: Any, op: str) -> Tensor:
    a, b = _pair(a, b, op)
    for t in (a, b):
        if t._data.dtype.kind not in "iub":
            raise RuntimeError(f"{op}: expected integer or bool tensors, got dtype {t.dtype}")
    return Tensor._wrap(getattr(a._backend.xp, op)(a._data, b._data), a._backend)


def bitwise_and(a: Tensor, b: Any) -> Tensor:
    """Elementwise ``a & b`` for integer and bool tensors."""
    return _bitwise(a, b, "bitwise_and")


def bitwise_or(a: Tensor, b: Any) -> Tensor:
    """Elementwise ``a | b`` for integer and bool tensors."""
    return _bitwise(a, b, "bitwise_or")


def bitwise_xor(a: Tensor, b: Any) -> Tensor:
    """Elementwise ``a ^ b`` for integer and bool tensors."""
    return _bitwise(a, b, "bitwise_xor")


def bitwise_not(a: Tensor) -> Tensor:
    """Elementwise ``~a`` (logical NOT for bool tensors)."""
    a = _tensor(a, "input", "bitwise_not")
    if a._data.dtype.kind not in "iub":
        raise RuntimeError(f"bitwise_not: expected an integer or bool tensor, got dtype {a.dtype}")
    return Tensor._wrap(a._backend.xp.invert(a._data), a._backend)


def _reduce_axes(a: Tensor, dim: Any) -> tuple[int, ...] | None:
    if dim is None:
        return None
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    return tuple(normalize_dim(d, a.ndim) for d in dims)


def all(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether every element (over ``dim``) is true (bool)."""
    a = _tensor(a, "input", "all")
    xp = a._backend.xp
    out = a._data.astype(bool, copy=False).all(axis=_reduce_axes(a, dim), keepdims=keepdim)
    return Tensor._wrap(xp.asarray(out), a._backend)


def any(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether any element (over ``dim``) is true (bool)."""
    a = _tensor(a, "input", "any")
    xp = a._backend.xp
    out = a._data.astype(bool, copy=False).any(axis=_reduce_axes(a, dim), keepdims=keepdim)
    return Tensor._wrap(xp.asarray(out), a._backend)


def count_nonzero(a: Tensor, dim: Any = None) -> Tensor:
    """The number of non-zero elements (over ``dim``), as int64."""
    a = _tensor(a, "input", "count_nonzero")
    xp = a._backend.xp
    out = (a._data != 0).sum(axis=_reduce_axes(a, dim))
    return Tensor._wrap(xp.asarray(out).astype("int64"), a._backend)
