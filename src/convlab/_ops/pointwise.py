"""Elementwise math beyond ``+ - * /``: rounding, trigonometry, logarithms, ``maximum``,
``remainder``, ``lerp``, ``where``... with PyTorch's result dtypes and gradients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from convlab import _dtype
from convlab._ops import arith
from convlab._ops._util import pair_operands, unbroadcast
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = [
    "unary",
    "UNARY",
    "floor",
    "ceil",
    "trunc",
    "frac",
    "round",
    "sign",
    "reciprocal",
    "rsqrt",
    "square",
    "sin",
    "cos",
    "tan",
    "log1p",
    "expm1",
    "log2",
    "log10",
    "exp2",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "asinh",
    "acosh",
    "atanh",
    "nan_to_num",
    "logit",
    "maximum",
    "minimum",
    "remainder",
    "fmod",
    "floor_divide",
    "divide",
    "atan2",
    "lerp",
    "addcmul",
    "addcdiv",
    "clamp_min",
    "clamp_max",
    "where",
]

# name -> (forward(xp, a), d(out)/d(a) from (xp, a, out) or None for a zero gradient,
#          whether integer inputs are first converted to the default float type)
_Rule = tuple[Callable[[Any, Any], Any], Callable[[Any, Any, Any], Any] | None, bool]

UNARY: dict[str, _Rule] = {
    "floor": (lambda xp, a: xp.floor(a), None, False),
    "ceil": (lambda xp, a: xp.ceil(a), None, False),
    "trunc": (lambda xp, a: xp.trunc(a), None, False),
    "frac": (lambda xp, a: a - xp.trunc(a), lambda xp, a, out: 1, False),
    "sign": (lambda xp, a: xp.sign(a), None, False),
    "reciprocal": (lambda xp, a: 1 / a, lambda xp, a, out: -out * out, True),
    "rsqrt": (lambda xp, a: 1 / xp.sqrt(a), lambda xp, a, out: -0.5 * out * out * out, True),
    "square": (lambda xp, a: a * a, lambda xp, a, out: 2 * a, False),
    "sin": (lambda xp, a: xp.sin(a), lambda xp, a, out: xp.cos(a), True),
    "cos": (lambda xp, a: xp.cos(a), lambda xp, a, out: -xp.sin(a), True),
    "tan": (lambda xp, a: xp.tan(a), lambda xp, a, out: 1 + out * out, True),
    "log1p": (lambda xp, a: xp.log1p(a), lambda xp, a, out: 1 / (1 + a), True),
    "expm1": (lambda xp, a: xp.expm1(a), lambda xp, a, out: out + 1, True),
    "log2": (lambda xp, a: xp.log2(a), lambda xp, a, out: 1 / (a * 0.6931471805599453), True),
    "log10": (lambda xp, a: xp.log10(a), lambda xp, a, out: 1 / (a * 2.302585092994046), True),
    "exp2": (lambda xp, a: xp.exp2(a), lambda xp, a, out: out * 0.6931471805599453, True),
    "asin": (lambda xp, a: xp.arcsin(a), lambda xp, a, out: 1 / xp.sqrt(1 - a * a), True),
    "acos": (lambda xp, a: xp.arccos(a), lambda xp, a, out: -1 / xp.sqrt(1 - a * a), True),
    "atan": (lambda xp, a: xp.arctan(a), lambda xp, a, out: 1 / (1 + a * a), True),
    "sinh": (lambda xp, a: xp.sinh(a), lambda xp, a, out: xp.cosh(a), True),
    "cosh": (lambda xp, a: xp.cosh(a), lambda xp, a, out: xp.sinh(a), True),
    "asinh": (lambda xp, a: xp.arcsinh(a), lambda xp, a, out: 1 / xp.sqrt(a * a + 1), True),
    "acosh": (lambda xp, a: xp.arccosh(a), lambda xp, a, out: 1 / xp.sqrt(a * a - 1), True),
    "atanh": (lambda xp, a: xp.arctanh(a), lambda xp, a, out: 1 / (1 - a * a), True),
}


class Unary(Function):
    """One elementwise function of :data:`UNARY`; its rule gives the local derivative."""

    def forward(self, a: Any, name: str = "") -> Any:
        xp = self.backend.xp
        self.a, self.rule = a, UNARY[name][1]
        with _quiet(xp):  # NaN / infinity for out-of-domain inputs, silently as PyTorch
            self.out = xp.asarray(UNARY[name][0](xp, a)).astype(a.dtype, copy=False)
        return self.out

    def backward(self, grad: Any) -> tuple:
        if self.rule is None:  # piecewise constant: zero gradient, as PyTorch
            return (grad * 0,)
        with _quiet(self.backend.xp):
            local = self.rule(self.backend.xp, self.a, self.out)
            return ((grad * local).astype(grad.dtype, copy=False),)


def unary(a: Any, name: str) -> Tensor:
    """Apply the elementwise function ``name`` of :data:`UNARY` to tensor ``a``.

    Integer and bool tensors become the default float type first where PyTorch's result is
    floating (``sin``, ``log2``, ``reciprocal``...), and keep their dtype otherwise.

    Raises:
        TypeError: If ``a`` is not a tensor.
    """
    if not isinstance(a, Tensor):
        raise TypeError(f"{name}: expected a Tensor as input, got {type(a).__name__}")
    if UNARY[name][2] and a._data.dtype.kind in "iub":
        a = Tensor._wrap(a._data.astype(_dtype.default_float), a._backend)
    elif a._data.dtype.kind == "b" and name in ("square", "sign"):
        raise TypeError(f"{name}: not supported for bool tensors")
    return Unary.apply(a, name=name)


def floor(a: Tensor) -> Tensor:
    """Largest integer <= each element (integers unchanged)."""
    return unary(a, "floor")


def ceil(a: Tensor) -> Tensor:
    """Smallest integer >= each element."""
    return unary(a, "ceil")


def trunc(a: Tensor) -> Tensor:
    """Each element rounded towards zero."""
    return unary(a, "trunc")


def frac(a: Tensor) -> Tensor:
    """The fractional part, ``a - trunc(a)`` (sign of ``a``)."""
    return unary(a, "frac")


class _Rounded(Function):
    """Rounding half to even to ``decimals`` places; the gradient is zero."""

    def forward(self, a: Any, decimals: int = 0) -> Any:
        xp = self.backend.xp
        if decimals == 0 or a.dtype.kind not in "f":
            return xp.round(a) if a.dtype.kind == "f" else a.copy()
        # PyTorch scales, rounds and unscales (not NumPy's exact decimal rounding)
        scale = a.dtype.type(10.0 ** abs(decimals))
        if decimals > 0:
            return xp.round(a * scale) / scale
        return xp.round(a / scale) * scale

    def backward(self, grad: Any) -> tuple:
        return (grad * 0,)


def round(a: Tensor, *, decimals: int = 0) -> Tensor:  # noqa: A001 - mirrors torch.round
    """Round half to even, to ``decimals`` decimal places (gradient zero), as PyTorch."""
    return _Rounded.apply(a, decimals=int(decimals))


def sign(a: Tensor) -> Tensor:
    """-1, 0 or 1 by the sign of each element."""
    return unary(a, "sign")


def reciprocal(a: Tensor) -> Tensor:
    """``1 / a``."""
    return unary(a, "reciprocal")


def rsqrt(a: Tensor) -> Tensor:
    """``1 / sqrt(a)``."""
    return unary(a, "rsqrt")


def square(a: Tensor) -> Tensor:
    """``a * a``."""
    return unary(a, "square")


def sin(a: Tensor) -> Tensor:
    """Elementwise sine."""
    return unary(a, "sin")


def cos(a: Tensor) -> Tensor:
    """Elementwise cosine."""
    return unary(a, "cos")


def tan(a: Tensor) -> Tensor:
    """Elementwise tangent."""
    return unary(a, "tan")


def log1p(a: Tensor) -> Tensor:
    """``log(1 + a)``, accurate for small ``a``."""
    return unary(a, "log1p")


def expm1(a: Tensor) -> Tensor:
    """``exp(a) - 1``, accurate for small ``a``."""
    return unary(a, "expm1")


def log2(a: Tensor) -> Tensor:
    """Base-2 logarithm."""
    return unary(a, "log2")


def log10(a: Tensor) -> Tensor:
    """Base-10 logarithm."""
    return unary(a, "log10")


def exp2(a: Tensor) -> Tensor:
    """``2 ** a``."""
    return unary(a, "exp2")


def asin(a: Tensor) -> Tensor:
    """Elementwise arcsine."""
    return unary(a, "asin")


def acos(a: Tensor) -> Tensor:
    """Elementwise arccosine."""
    return unary(a, "acos")


def atan(a: Tensor) -> Tensor:
    """Elementwise arctangent."""
    return unary(a, "atan")


def sinh(a: Tensor) -> Tensor:
    """Elementwise hyperbolic sine."""
    return unary(a, "sinh")


def cosh(a: Tensor) -> Tensor:
    """Elementwise hyperbolic cosine."""
    return unary(a, "cosh")


def asinh(a: Tensor) -> Tensor:
    """Elementwise inverse hyperbolic sine."""
    return unary(a, "asinh")


def acosh(a: Tensor) -> Tensor:
    """Elementwise inverse hyperbolic cosine."""
    return unary(a, "acosh")


def atanh(a: Tensor) -> Tensor:
    """Elementwise inverse hyperbolic tangent."""
    return unary(a, "atanh")


class _NanToNum(Function):
    def forward(self, a: Any, nan: float = 0.0, posinf: Any = None, neginf: Any = None) -> Any:
        xp = self.backend.xp
        self.finite = xp.isfinite(a)
        return xp.nan_to_num(a, nan=nan, posinf=posinf, neginf=neginf)

    def backward(self, grad: Any) -> tuple:
        return (grad * self.finite,)


def nan_to_num(
    a: Tensor, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None
) -> Tensor:
    """NaN, +inf and -inf replaced by ``nan``, ``posinf`` and ``neginf`` (the dtype's largest
    and smallest finite values by default); the gradient passes where ``a`` was finite."""
    if a._data.dtype.kind != "f":
        return a
    return _NanToNum.apply(a, nan=nan, posinf=posinf, neginf=neginf)


def logit(a: Tensor, eps: float | None = None) -> Tensor:
    """``log(a / (1 - a))``; with ``eps``, ``a`` is first clamped to ``[eps, 1 - eps]``."""
    x = arith.clip(a, eps, 1 - eps) if eps is not None else a
    if x._data.dtype.kind != "f":
        x = Tensor._wrap(x._data.astype(_dtype.default_float), x._backend)
    return arith.log(arith.div(x, arith.sub(1, x)))


# -- two operands ---------------------------------------------------------------------------
class _Extreme(Function):
    """``maximum`` / ``minimum``; on ties each operand gets half the gradient, as PyTorch."""

    def forward(self, a: Any, b: Any, largest: bool = True) -> Any:
        xp = self.backend.xp
        self.a, self.b, self.largest = a, b, largest
        return (xp.maximum if largest else xp.minimum)(a, b)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        a, b = self.a, self.b
        a_wins = a > b if self.largest else a < b
        share_a = xp.where(a == b, 0.5, xp.where(a_wins, 1.0, 0.0)).astype(grad.dtype)
        return (
            unbroadcast(grad * share_a, a.shape) if self.needs[0] else None,
            unbroadcast(grad * (1 - share_a), b.shape) if self.needs[1] else None,
        )


def _same_device(a: Tensor, b: Tensor, what: str) -> None:
    if a._backend is not b._backend:
        raise RuntimeError(
            f"{what}: expected both tensors on one device, got {a.device} and {b.device}"
        )


def _binary_tensors(a: Any, b: Any, what: str) -> tuple[Tensor, Tensor]:
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(
            f"{what}: expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}"
        )
    a, b = pair_operands(a, b)
    _same_device(a, b, what)
    return arith.promote(a, b)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise larger of ``a`` and ``b`` (broadcast); ties split the gradient."""
    a, b = _binary_tensors(a, b, "maximum")
    return _Extreme.apply(a, b, largest=True)


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise smaller of ``a`` and ``b`` (broadcast); ties split the gradient."""
    a, b = _binary_tensors(a, b, "minimum")
    return _Extreme.apply(a, b, largest=False)


class _Modulo(Function):
    """``remainder`` (sign of the divisor, Python's ``%``) or ``fmod`` (sign of the dividend);
    d/da = 1 and d/db = -floor(a / b) (or -trunc for ``fmod``)."""

    def forward(self, a: Any, b: Any, python: bool = True) -> Any:
        xp = self.backend.xp
        self.a, self.b, self.python = a, b, python
        return (xp.remainder if python else xp.fmod)(a, b)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        quotient = (xp.floor if self.python else xp.trunc)(self.a / self.b)
        return (
            unbroadcast(grad, self.a.shape) if self.needs[0] else None,
            unbroadcast(-grad * quotient, self.b.shape) if self.needs[1] else None,
        )


def remainder(a: Any, b: Any) -> Tensor:
    """``a % b`` with the sign of ``b`` (Python's modulo), as ``torch.remainder``."""
    a, b = _binary_tensors(a, b, "remainder")
    return _Modulo.apply(a, b, python=True)


def fmod(a: Any, b: Any) -> Tensor:
    """C's ``fmod``: the remainder with the sign of ``a``."""
    a, b = _binary_tensors(a, b, "fmod")
    return _Modulo.apply(a, b, python=False)


def floor_divide(a: Any, b: Any) -> Tensor:
    """``floor(a / b)`` (Python's ``//``); no gradient, as in PyTorch."""
    a, b = _binary_tensors(a, b, "floor_divide")
    return Tensor._wrap(a._backend.xp.floor_divide(a._data, b._data), a._backend)


def divide(a: Any, b: Any, *, rounding_mode: str | None = None) -> Tensor:
    """``a / b``; ``rounding_mode`` ``"floor"`` or ``"trunc"`` rounds the quotient: integer
    inputs then keep their dtype; floating ones record a zero gradient, as in PyTorch.

    Raises:
        ValueError: For another ``rounding_mode``.
    """
    if rounding_mode is None:
        return arith.div(a, b)
    if rounding_mode not in ("floor", "trunc"):
        raise ValueError(f"rounding_mode: expected None, 'floor' or 'trunc', got {rounding_mode!r}")
    x, y = _binary_tensors(a, b, "div")
    xp = x._backend.xp
    if x._data.dtype.kind in "iub" and y._data.dtype.kind in "iub":
        if rounding_mode == "floor":
            out = xp.floor_divide(x._data, y._data)
        else:  # C division: the quotient rounded towards zero
            q = xp.floor_divide(x._data, y._data)
            out = q + ((q < 0) & (q * y._data != x._data))
    else:
        return unary(arith.div(x, y), rounding_mode)
    return Tensor._wrap(xp.asarray(out), x._backend)


def _quiet(xp: Any) -> Any:
    from convlab._ops.reduce import _quiet as quiet

    return quiet(xp)


class _Atan2(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.a, self.b = a, b
        return self.backend.xp.arctan2(a, b)

    def backward(self, grad: Any) -> tuple:
        a, b = self.a, self.b
        scale = grad / (a * a + b * b)
        return (
            unbroadcast(scale * b, a.shape) if self.needs[0] else None,
            unbroadcast(-scale * a, b.shape) if self.needs[1] else None,
        )


def atan2(a: Any, b: Any) -> Tensor:
    """The angle of the point ``(b, a)``: ``arctan(a / b)`` in the right quadrant."""
    a, b = _binary_tensors(a, b, "atan2")
    if a._data.dtype.kind in "iub":
        a = Tensor._wrap(a._data.astype(_dtype.default_float), a._backend)
        b = Tensor._wrap(b._data.astype(_dtype.default_float), b._backend)
    return _Atan2.apply(a, b)


def lerp(start: Tensor, end: Any, weight: Any) -> Tensor:
    """``start + weight * (end - start)`` (gradients for all three)."""
    return arith.add(start, arith.mul(weight, arith.sub(end, start)))


def addcmul(a: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Any = 1) -> Tensor:
    """``a + value * tensor1 * tensor2``."""
    return arith.add(a, arith.mul(arith.mul(tensor1, tensor2), value))


def addcdiv(a: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Any = 1) -> Tensor:
    """``a + value * tensor1 / tensor2``."""
    return arith.add(a, arith.mul(arith.div(tensor1, tensor2), value))


def clamp_min(a: Tensor, min: Any) -> Tensor:  # noqa: A002 - PyTorch's name
    """``max(a, min)`` elementwise (the gradient passes where ``a >= min``)."""
    return arith.clip(a, min, None)


def clamp_max(a: Tensor, max: Any) -> Tensor:  # noqa: A002 - PyTorch's name
    """``min(a, max)`` elementwise (the gradient passes where ``a <= max``)."""
    return arith.clip(a, None, max)


class _Where(Function):
    def forward(self, x: Any, y: Any, cond: Any = None) -> Any:
        self.cond, self.shapes = cond, (x.shape, y.shape)
        return self.backend.xp.where(cond, x, y)

    def backward(self, grad: Any) -> tuple:
        zero = grad.dtype.type(0)
        sx, sy = self.shapes
        xp = self.backend.xp
        return (
            unbroadcast(xp.where(self.cond, grad, zero), sx) if self.needs[0] else None,
            unbroadcast(xp.where(self.cond, zero, grad), sy) if self.needs[1] else None,
        )


def where(condition: Any, input: Any = None, other: Any = None) -> Any:  # noqa: A002
    """``input`` where ``condition`` holds, else ``other`` (broadcast together).

    With ``condition`` alone it is ``nonzero(condition, as_tuple=True)``, as in PyTorch.

    Raises:
        TypeError: If ``condition`` is not a bool tensor, or only one of ``input`` / ``other``
            is given.
    """
    if not isinstance(condition, Tensor):
        raise TypeError(f"condition: expected a bool Tensor, got {type(condition).__name__}")
    if input is None and other is None:
        from convlab._ops.index import nonzero

        return nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise TypeError("where: expected both input and other, or neither")
    if condition._data.dtype.kind != "b":
        raise RuntimeError(f"condition: expected a bool tensor, got dtype {condition.dtype}")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        # two Python scalars: the result type follows them (float wins), as in PyTorch
        floating = isinstance(input, float) or isinstance(other, float)
        dtype = _dtype.default_float if floating else _dtype.int64
        input = Tensor._wrap(condition._backend.xp.asarray(input, dtype=dtype), condition._backend)
    x, y = pair_operands(input, other)
    _same_device(x, y, "where")
    x, y = arith.promote(x, y)
    _same_device(x, condition, "where")
    return _Where.apply(x, y, cond=condition._data)
