"""Elementwise arithmetic with NumPy broadcasting, and its gradients."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from convlab import _dtype
from convlab._ops._util import as_tensor_like, pair_operands, unbroadcast
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = [
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "neg",
    "exp",
    "log",
    "sqrt",
    "abs",
    "clip",
    "compare",
    "result_dtype",
    "promote",
]

_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}


def result_dtype(a: Tensor, b: Tensor) -> Any:
    """PyTorch's result dtype for ``a op b``: the higher category (bool < integer < float)
    wins; a 0-d tensor only decides the dtype when its category is higher than the other
    operand's (``float32 tensor * float64 0-d tensor`` is float32, NumPy would say float64)."""
    da, db = a._data.dtype, b._data.dtype
    if da == db:
        return da
    ca, cb = _CATEGORY[da.kind], _CATEGORY[db.kind]
    zero_a, zero_b = a._data.ndim == 0, b._data.ndim == 0
    if zero_a != zero_b:
        (dims, d_cat), (zero, z_cat) = ((db, cb), (da, ca)) if zero_a else ((da, ca), (db, cb))
        return dims if z_cat <= d_cat else zero
    if ca != cb:
        return da if ca > cb else db
    return np.promote_types(da, db)


def promote(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Both operands in their :func:`result_dtype` (casts stay on the graph)."""
    if a._data.dtype == b._data.dtype:
        return a, b
    dtype = result_dtype(a, b)
    return (
        a if a._data.dtype == dtype else a.to(dtype=dtype),
        b if b._data.dtype == dtype else b.to(dtype=dtype),
    )


def _operands(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    return promote(*pair_operands(a, b))


class Add(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, grad: Any) -> tuple:
        sa, sb = self.shapes
        return unbroadcast(grad, sa), unbroadcast(grad, sb)


class Sub(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, grad: Any) -> tuple:
        sa, sb = self.shapes
        return (unbroadcast(grad, sa), unbroadcast(-grad, sb) if self.needs[1] else None)


class Mul(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.a, self.b = a, b
        return a * b

    def backward(self, grad: Any) -> tuple:
        a, b = self.a, self.b
        return (
            unbroadcast(grad * b, a.shape) if self.needs[0] else None,
            unbroadcast(grad * a, b.shape) if self.needs[1] else None,
        )


class Div(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.a, self.b = a, b
        return a / b

    def backward(self, grad: Any) -> tuple:
        a, b = self.a, self.b
        ga = gb = None
        if self.needs[0]:
            ga = unbroadcast(grad / b, a.shape)
        if self.needs[1]:
            gb = unbroadcast(-grad * a / (b * b), b.shape)
        return ga, gb


class Pow(Function):
    def forward(self, a: Any, b: Any) -> Any:
        xp = self.backend.xp
        self.a, self.b = a, b
        self.out = xp.power(a, b)
        return self.out

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        a, b = self.a, self.b
        ga = gb = None
        if self.needs[0]:
            ga = unbroadcast(grad * b * xp.power(a, b - 1), a.shape)
        if self.needs[1]:
            # d(a**b)/db = a**b * log(a); 0**b contributes 0 (as PyTorch) rather than NaN.
            with_log = xp.where(a > 0, xp.log(xp.where(a > 0, a, 1)), 0)
            gb = unbroadcast(grad * self.out * with_log, b.shape)
        return ga, gb


class Neg(Function):
    def forward(self, a: Any) -> Any:
        return -a

    def backward(self, grad: Any) -> tuple:
        return (-grad,)


class Exp(Function):
    def forward(self, a: Any) -> Any:
        self.out = self.backend.xp.exp(a)
        return self.out

    def backward(self, grad: Any) -> tuple:
        return (grad * self.out,)


class Log(Function):
    def forward(self, a: Any) -> Any:
        self.a = a
        return self.backend.xp.log(a)

    def backward(self, grad: Any) -> tuple:
        return (grad / self.a,)


class Sqrt(Function):
    def forward(self, a: Any) -> Any:
        self.out = self.backend.xp.sqrt(a)
        return self.out

    def backward(self, grad: Any) -> tuple:
        return (grad / (2 * self.out),)


class Abs(Function):
    def forward(self, a: Any) -> Any:
        self.a = a
        return self.backend.xp.abs(a)

    def backward(self, grad: Any) -> tuple:
        return (grad * self.backend.xp.sign(self.a),)


class Clip(Function):
    def forward(self, a: Any, low: Any = None, high: Any = None) -> Any:
        xp = self.backend.xp
        self.inside = xp.ones(a.shape, dtype=bool)
        if low is not None:
            self.inside &= a >= low
        if high is not None:
            self.inside &= a <= high
        out = a
        if low is not None:
            out = xp.maximum(out, low)
        if high is not None:
            out = xp.minimum(out, high)
        return out  # clip() guarantees a bound, so this is always a new array

    def backward(self, grad: Any) -> tuple:
        return (grad * self.inside, None, None)


def add(a: Any, b: Any, *, alpha: Any = 1) -> Tensor:
    """``a + alpha * b`` with broadcasting."""
    if alpha != 1:
        b = mul(b, alpha)
    return Add.apply(*_operands(a, b))


def sub(a: Any, b: Any, *, alpha: Any = 1) -> Tensor:
    """``a - alpha * b`` with broadcasting."""
    if alpha != 1:
        b = mul(b, alpha)
    return Sub.apply(*_operands(a, b))


def mul(a: Any, b: Any) -> Tensor:
    """``a * b`` with broadcasting."""
    return Mul.apply(*_operands(a, b))


def div(a: Any, b: Any) -> Tensor:
    """``a / b`` with broadcasting (true division: integers give the default float type)."""
    a, b = _operands(a, b)
    if a._data.dtype.kind != "f":
        a, b = a.to(dtype=_dtype.default_float), b.to(dtype=_dtype.default_float)
    return Div.apply(a, b)


def pow(a: Any, b: Any) -> Tensor:  # noqa: A001 - mirrors torch.pow
    """``a ** b`` with broadcasting."""
    return Pow.apply(*_operands(a, b))


def neg(a: Tensor) -> Tensor:
    """``-a``."""
    return Neg.apply(a)


def exp(a: Tensor) -> Tensor:
    """Elementwise ``e ** a``."""
    return Exp.apply(a)


def log(a: Tensor) -> Tensor:
    """Elementwise natural logarithm."""
    return Log.apply(a)


def sqrt(a: Tensor) -> Tensor:
    """Elementwise square root."""
    return Sqrt.apply(a)


def abs(a: Tensor) -> Tensor:  # noqa: A001 - mirrors torch.abs
    """Elementwise absolute value (gradient 0 at 0, as PyTorch)."""
    return Abs.apply(a)


def clip(a: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    """Limit ``a`` to ``[min, max]``; the gradient passes where ``min <= a <= max``.

    Raises:
        ValueError: If both bounds are ``None``.
    """
    if min is None and max is None:
        raise ValueError("clip: at least one of min and max must be given")
    low = None if min is None else as_tensor_like(min, a, "min")
    high = None if max is None else as_tensor_like(max, a, "max")
    return Clip.apply(a, low, high)


_COMPARISONS = {
    "less": operator.lt,
    "less_equal": operator.le,
    "greater": operator.gt,
    "greater_equal": operator.ge,
    "equal": operator.eq,
    "not_equal": operator.ne,
}


def compare(a: Any, b: Any, op: str) -> Tensor:
    """An elementwise comparison (no gradient); ``op`` names it as NumPy's ufunc does.

    Comparing with ``None`` returns ``NotImplemented`` so that ``x == None`` is False (and
    ``x != None`` True), as in PyTorch.
    """
    if a is None or b is None:
        return NotImplemented
    a, b = pair_operands(a, b)
    if a._backend is not b._backend:
        raise RuntimeError(
            f"{op}: expected both tensors on one device, got {a.device} and {b.device}"
        )
    return Tensor._wrap(_COMPARISONS[op](a._data, b._data), a._backend)
