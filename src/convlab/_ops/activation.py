"""Activations, softmax and dropout, written once against ``backend.xp``."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from convlab import _random
from convlab._ops import sample_dropout as _sample_dropout
from convlab._ops import shape as _shape
from convlab._ops._util import float_check, normalize_dim
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = [
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "dropout",
    "relu6",
    "hardtanh",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "mish",
    "hardswish",
    "hardsigmoid",
    "softplus",
    "logsigmoid",
    "softsign",
    "hardshrink",
    "softshrink",
    "tanhshrink",
    "softmin",
    "glu",
    "rrelu",
    "prelu",
    "threshold",
    "softmax2d",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "alpha_dropout",
]


class ReLU(Function):
    def forward(self, x: Any) -> Any:
        out = self.backend.xp.maximum(x, 0)
        # PyTorch's threshold_backward zeroes where out <= 0: a NaN output passes its gradient
        self.positive = ~(out <= 0)
        return out

    def backward(self, grad: Any) -> tuple:
        return (grad * self.positive,)


class LeakyReLU(Function):
    def forward(self, x: Any, slope: float = 0.01) -> Any:
        self.slope = slope
        out, self.positive = self.backend.leaky_relu_forward(x, slope)
        return out

    def backward(self, grad: Any) -> tuple:
        return (self.backend.leaky_relu_backward(grad, self.positive, self.slope),)


class Sigmoid(Function):
    def forward(self, x: Any) -> Any:
        xp = self.backend.xp
        # exp of a non-positive number never overflows: the stable two-branch form
        z = xp.exp(-xp.abs(x))
        self.out = xp.where(x >= 0, 1 / (1 + z), z / (1 + z)).astype(x.dtype, copy=False)
        return self.out

    def backward(self, grad: Any) -> tuple:
        out = self.out
        return (grad * out * (1 - out),)


class Tanh(Function):
    def forward(self, x: Any) -> Any:
        self.out = self.backend.xp.tanh(x)
        return self.out

    def backward(self, grad: Any) -> tuple:
        return (grad * (1 - self.out * self.out),)


class Softmax(Function):
    def forward(self, x: Any, dim: int = -1) -> Any:
        xp = self.backend.xp
        e = xp.exp(x - x.max(axis=dim, keepdims=True))
        e /= e.sum(axis=dim, keepdims=True)
        self.out, self.dim = e, dim
        return e

    def backward(self, grad: Any) -> tuple:
        out = self.out
        return (out * (grad - (grad * out).sum(axis=self.dim, keepdims=True)),)


class LogSoftmax(Function):
    def forward(self, x: Any, dim: int = -1) -> Any:
        xp = self.backend.xp
        shifted = x - x.max(axis=dim, keepdims=True)
        shifted -= xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        self.out, self.dim = shifted, dim
        return shifted

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        return (grad - xp.exp(self.out) * grad.sum(axis=self.dim, keepdims=True),)


class Dropout(Function):
    def forward(self, x: Any, p: float = 0.5) -> Any:
        self.p = p
        # the backend's counter-based stream, seeded from the host generator: manual_seed and
        # a resumed RNG state decide the mask on every device
        if _sample_dropout.current() is None:
            out, self.keep = self.backend.dropout_forward(x, p, _random.draw_seed())
        else:  # masks keyed by global sample index (convlab.distributed)
            out, self.keep = _sample_dropout.masked(self.backend, x, p, _random.draw_seed())
        return out

    def backward(self, grad: Any) -> tuple:
        return (self.backend.dropout_backward(grad, self.keep, self.p),)


def relu(x: Tensor, inplace: bool = False) -> Tensor:
    """``max(x, 0)``. ``inplace`` is accepted for PyTorch's signature; the result is a new
    tensor."""
    return ReLU.apply(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x`` where positive, ``negative_slope * x`` elsewhere (``inplace`` as in
    :func:`relu`)."""
    float_check(x, "leaky_relu")
    return LeakyReLU.apply(x, slope=float(negative_slope))


def sigmoid(x: Tensor) -> Tensor:
    """``1 / (1 + exp(-x))``, computed without overflow."""
    float_check(x, "sigmoid")
    return Sigmoid.apply(x)


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    float_check(x, "tanh")
    return Tanh.apply(x)


def _softmax_dim(x: Tensor, dim: int | None, name: str, stacklevel: int) -> int:
    if dim is None:
        # PyTorch's deprecated implicit choice, with its warning
        warnings.warn(
            f"Implicit dimension choice for {name} has been deprecated. Change the call to "
            "include dim=X as an argument.",
            stacklevel=stacklevel,
        )
        dim = 0 if x.ndim in (0, 1, 3) else 1
    return normalize_dim(dim, x.ndim)


def _as_dtype(x: Tensor, dtype: Any) -> Tensor:
    return x if dtype is None else x.to(dtype)


def softmax(x: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim``; ``dtype`` casts the input first."""
    x = _as_dtype(x, dtype)
    float_check(x, "softmax")
    return Softmax.apply(x, dim=_softmax_dim(x, dim, "softmax", _stacklevel))


def log_softmax(
    x: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """``log(softmax(x))`` along ``dim``, computed stably; ``dtype`` casts the input first."""
    x = _as_dtype(x, dtype)
    float_check(x, "log_softmax")
    return LogSoftmax.apply(x, dim=_softmax_dim(x, dim, "log_softmax", _stacklevel))


def dropout(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``
    (``inplace`` is accepted for PyTorch's signature; the result is a new tensor).

    Raises:
        ValueError: If ``p`` is outside [0, 1].
    """
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p: expected a probability in [0, 1], got {p}")
    if not training or p == 0:
        return x
    float_check(x, "dropout")
    if p == 1:
        return x * 0.0
    return Dropout.apply(x, p=float(p))


# ---------------------------------------------------------------------------------------------
# element-wise activations: each a value and a derivative written against xp


class _Elementwise(Function):
    """``y = f(x)``, ``dx = grad * f'(x)``; subclasses give ``value`` and ``slope`` (computed
    in ``x``'s dtype: Python constants keep it under NumPy's promotion rules)."""

    def forward(self, x: Any, **params: Any) -> Any:
        self.x, self.params = x, params
        return self.value(self.backend.xp, x, **params)

    def backward(self, grad: Any) -> tuple:
        return (grad * self.slope(self.backend.xp, self.x, **self.params),)

    # value(xp, x, **params) and slope(xp, x, **params), each subclass with its own params
    value: Callable[..., Any]
    slope: Callable[..., Any]


class Hardtanh(_Elementwise):
    def value(self, xp: Any, x: Any, lo: float = -1.0, hi: float = 1.0) -> Any:
        return xp.minimum(xp.maximum(x, lo), hi).astype(x.dtype, copy=False)

    def slope(self, xp: Any, x: Any, lo: float = -1.0, hi: float = 1.0) -> Any:
        # PyTorch: the gradient passes strictly inside (lo, hi) only
        return ((x > lo) & (x < hi)).astype(x.dtype)


class ELU(_Elementwise):
    """PyTorch's ``elu(x, alpha, scale, input_scale)``: SELU and CELU are ELUs too."""

    def value(
        self, xp: Any, x: Any, alpha: float = 1.0, scale: float = 1.0, inv: float = 1.0
    ) -> Any:
        negative = xp.expm1(xp.minimum(x, 0) * inv) * (alpha * scale)
        return xp.where(x > 0, x * scale, negative).astype(x.dtype, copy=False)

    def slope(
        self, xp: Any, x: Any, alpha: float = 1.0, scale: float = 1.0, inv: float = 1.0
    ) -> Any:
        negative = xp.exp(xp.minimum(x, 0) * inv) * (alpha * scale * inv)
        return xp.where(x > 0, scale, negative).astype(x.dtype, copy=False)


def _erf(xp: Any, x: Any) -> Any:
    """The error function: SciPy's / CuPy's when present (NumPy has none), else ``math.erf``
    element by element, exact but slow (GELU is rare in CNNs)."""
    try:
        if xp is np:
            from scipy.special import erf  # type: ignore[import-untyped]
        else:  # pragma: no cover - CuPy
            from cupyx.scipy.special import erf  # type: ignore[import-not-found]
        return erf(x)
    except ImportError:
        values = np.asarray(np.frompyfunc(math.erf, 1, 1)(np.asarray(x, dtype=np.float64)))
        return xp.asarray(values.astype(x.dtype))


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_GELU_CUBIC = 0.044715


class GELU(_Elementwise):
    def value(self, xp: Any, x: Any, tanh: bool = False) -> Any:
        if tanh:
            inner = (x + _GELU_CUBIC * x * x * x) * _SQRT_2_OVER_PI
            return (0.5 * x * (1 + xp.tanh(inner))).astype(x.dtype, copy=False)
        return (0.5 * x * (1 + _erf(xp, x * math.sqrt(0.5)))).astype(x.dtype, copy=False)

    def slope(self, xp: Any, x: Any, tanh: bool = False) -> Any:
        if tanh:
            t = xp.tanh((x + _GELU_CUBIC * x * x * x) * _SQRT_2_OVER_PI)
            inner_slope = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x * x)
            return (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * inner_slope).astype(x.dtype)
        cdf = 0.5 * (1 + _erf(xp, x * math.sqrt(0.5)))
        pdf = xp.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
        return (cdf + x * pdf).astype(x.dtype, copy=False)


def _sigmoid(xp: Any, x: Any) -> Any:
    z = xp.exp(-xp.abs(x))  # never overflows
    return (xp.where(x >= 0, 1, z) / (1 + z)).astype(x.dtype, copy=False)


def _softplus(xp: Any, x: Any) -> Any:
    """``log(1 + exp(x))`` without overflow."""
    return (xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))).astype(x.dtype, copy=False)


class SiLU(Function):
    def forward(self, x: Any) -> Any:
        # sigmoid kept for backward: recomputing it would cost as much as the forward
        self.x, self.s = x, _sigmoid(self.backend.xp, x)
        return x * self.s

    def backward(self, grad: Any) -> tuple:
        s = self.s
        return (grad * (s * (1 + self.x * (1 - s))),)


class Mish(_Elementwise):
    def value(self, xp: Any, x: Any) -> Any:
        return x * xp.tanh(_softplus(xp, x))

    def slope(self, xp: Any, x: Any) -> Any:
        t = xp.tanh(_softplus(xp, x))
        return t + x * (1 - t * t) * _sigmoid(xp, x)


class Hardswish(_Elementwise):
    def value(self, xp: Any, x: Any) -> Any:
        return x * xp.clip(x + 3, 0, 6) / 6

    def slope(self, xp: Any, x: Any) -> Any:
        # PyTorch's piecewise gradient: 0 up to -3, x/3 + 1/2 strictly inside, 1 from 3 on
        middle = x / 3 + 0.5
        return xp.where(x <= -3, 0, xp.where(x < 3, middle, 1)).astype(x.dtype, copy=False)


class Hardsigmoid(_Elementwise):
    def value(self, xp: Any, x: Any) -> Any:
        return xp.clip(x + 3, 0, 6) / 6

    def slope(self, xp: Any, x: Any) -> Any:
        return (((x > -3) & (x < 3)) / 6).astype(x.dtype)


class Softplus(_Elementwise):
    def value(self, xp: Any, x: Any, beta: float = 1.0, threshold: float = 20.0) -> Any:
        bx = x * beta
        # above the threshold PyTorch returns x itself (exp would be lost to rounding)
        return xp.where(bx > threshold, x, _softplus(xp, bx) / beta).astype(x.dtype, copy=False)

    def slope(self, xp: Any, x: Any, beta: float = 1.0, threshold: float = 20.0) -> Any:
        bx = x * beta
        return xp.where(bx > threshold, 1, _sigmoid(xp, bx)).astype(x.dtype, copy=False)


class LogSigmoid(_Elementwise):
    def value(self, xp: Any, x: Any) -> Any:
        return -_softplus(xp, -x)

    def slope(self, xp: Any, x: Any) -> Any:
        return _sigmoid(xp, -x)


class Softsign(_Elementwise):
    def value(self, xp: Any, x: Any) -> Any:
        return x / (1 + xp.abs(x))

    def slope(self, xp: Any, x: Any) -> Any:
        d = 1 + xp.abs(x)
        return 1 / (d * d)


class Hardshrink(_Elementwise):
    def value(self, xp: Any, x: Any, lambd: float = 0.5) -> Any:
        return xp.where(xp.abs(x) > lambd, x, 0).astype(x.dtype, copy=False)

    def slope(self, xp: Any, x: Any, lambd: float = 0.5) -> Any:
        return (xp.abs(x) > lambd).astype(x.dtype)


class Softshrink(_Elementwise):
    def value(self, xp: Any, x: Any, lambd: float = 0.5) -> Any:
        shrunk = x - xp.clip(x, -lambd, lambd)  # x - lambd above, x + lambd below, else 0
        return shrunk.astype(x.dtype, copy=False)

    def slope(self, xp: Any, x: Any, lambd: float = 0.5) -> Any:
        return (xp.abs(x) > lambd).astype(x.dtype)


class Tanhshrink(_Elementwise):
    def value(self, xp: Any, x: Any) -> Any:
        return x - xp.tanh(x)

    def slope(self, xp: Any, x: Any) -> Any:
        t = xp.tanh(x)
        return t * t


class GLU(Function):
    """``a * sigmoid(b)`` for the halves ``a``, ``b`` of ``x`` along ``dim``."""

    def forward(self, x: Any, dim: int = -1) -> Any:
        xp = self.backend.xp
        a, b = xp.split(x, 2, axis=dim)
        self.a, self.s, self.dim = a, _sigmoid(xp, b), dim
        return a * self.s

    def backward(self, grad: Any) -> tuple:
        s = self.s
        return (self.backend.xp.concatenate([grad * s, grad * self.a * s * (1 - s)], self.dim),)


class RReLU(Function):
    """``x`` where positive, ``slope * x`` elsewhere, one drawn slope per element."""

    def forward(self, x: Any, slopes: Any = None) -> Any:
        self.scale = self.backend.xp.where(x > 0, 1, slopes).astype(x.dtype, copy=False)
        return x * self.scale

    def backward(self, grad: Any) -> tuple:
        return (grad * self.scale,)


class Threshold(_Elementwise):
    def value(self, xp: Any, x: Any, threshold: float = 0.0, value: float = 0.0) -> Any:
        return xp.where(x > threshold, x, value).astype(x.dtype, copy=False)

    def slope(self, xp: Any, x: Any, threshold: float = 0.0, value: float = 0.0) -> Any:
        return (x > threshold).astype(x.dtype)


class PReLU(Function):
    """``x`` where positive, ``weight * x`` elsewhere; ``weight`` one value or one per channel
    (dimension 1)."""

    def forward(self, x: Any, weight: Any) -> Any:
        view = (-1,) + (1,) * (x.ndim - 2) if x.ndim >= 2 and weight.size > 1 else ()
        w = weight.reshape(view) if view else weight.reshape(())
        self.x, self.w, self.weight_shape = x, w, weight.shape
        return self.backend.xp.where(x > 0, x, w * x).astype(x.dtype, copy=False)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        positive = self.x > 0
        gx = gw = None
        if self.needs[0]:
            gx = xp.where(positive, grad, self.w * grad).astype(grad.dtype, copy=False)
        if self.needs[1]:
            contrib = xp.where(positive, 0, grad * self.x)
            if self.w.ndim == 0:
                gw = contrib.sum().reshape(self.weight_shape)
            else:
                axes = (0,) + tuple(range(2, contrib.ndim))
                gw = contrib.sum(axis=axes).reshape(self.weight_shape)
            gw = gw.astype(grad.dtype, copy=False)
        return gx, gw


def _elementwise(fn: type[_Elementwise], x: Tensor, what: str, **params: Any) -> Tensor:
    float_check(x, what)
    return fn.apply(x, **params)


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    """``clip(x, min_val, max_val)`` (``torch.nn.functional.hardtanh``; ``inplace`` is accepted
    for PyTorch's signature, the result is a new tensor, as for the activations below).

    Raises:
        ValueError: If ``max_val < min_val``.
    """
    if max_val < min_val:
        raise ValueError(f"hardtanh: max_val ({max_val}) cannot be less than min_val ({min_val})")
    return _elementwise(Hardtanh, input, "hardtanh", lo=float(min_val), hi=float(max_val))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """``min(max(x, 0), 6)`` (``torch.nn.functional.relu6``)."""
    return _elementwise(Hardtanh, input, "relu6", lo=0.0, hi=6.0)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere (``torch.nn.functional.elu``)."""
    return _elementwise(ELU, input, "elu", alpha=float(alpha))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """``scale * elu(x, alpha)`` with the self-normalising constants
    (``torch.nn.functional.selu``)."""
    return _elementwise(ELU, input, "selu", alpha=_SELU_ALPHA, scale=_SELU_SCALE)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`` (``torch.nn.functional.celu``).

    Raises:
        ValueError: If ``alpha`` is 0.
    """
    if alpha == 0:
        raise ValueError("celu: alpha: expected a non-zero value, got 0")
    return _elementwise(ELU, input, "celu", alpha=float(alpha), inv=1.0 / float(alpha))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """``x * Phi(x)`` with the normal CDF ``Phi``, or its tanh approximation
    (``torch.nn.functional.gelu``).

    Raises:
        ValueError: If ``approximate`` is not ``"none"`` or ``"tanh"``.
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate: expected 'none' or 'tanh', got {approximate!r}")
    return _elementwise(GELU, input, "gelu", tanh=approximate == "tanh")


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * sigmoid(x)`` (``torch.nn.functional.silu``)."""
    float_check(input, "silu")
    return SiLU.apply(input)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))`` (``torch.nn.functional.mish``)."""
    return _elementwise(Mish, input, "mish")


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * relu6(x + 3) / 6`` (``torch.nn.functional.hardswish``)."""
    return _elementwise(Hardswish, input, "hardswish")


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """``relu6(x + 3) / 6`` (``torch.nn.functional.hardsigmoid``)."""
    return _elementwise(Hardsigmoid, input, "hardsigmoid")


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``, ``x`` itself where ``beta * x > threshold``
    (``torch.nn.functional.softplus``)."""
    return _elementwise(Softplus, input, "softplus", beta=float(beta), threshold=float(threshold))


def logsigmoid(input: Tensor) -> Tensor:
    """``log(sigmoid(x))``, computed stably (``torch.nn.functional.logsigmoid``)."""
    return _elementwise(LogSigmoid, input, "logsigmoid")


def softsign(input: Tensor) -> Tensor:
    """``x / (1 + |x|)`` (``torch.nn.functional.softsign``)."""
    return _elementwise(Softsign, input, "softsign")


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x`` where ``|x| > lambd``, 0 elsewhere (``torch.nn.functional.hardshrink``)."""
    return _elementwise(Hardshrink, input, "hardshrink", lambd=float(lambd))


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, 0 between
    (``torch.nn.functional.softshrink``).

    Raises:
        ValueError: If ``lambd`` is negative.
    """
    if lambd < 0:
        raise ValueError(f"softshrink: lambd: expected a non-negative value, got {lambd}")
    return _elementwise(Softshrink, input, "softshrink", lambd=float(lambd))


def tanhshrink(input: Tensor) -> Tensor:
    """``x - tanh(x)`` (``torch.nn.functional.tanhshrink``)."""
    return _elementwise(Tanhshrink, input, "tanhshrink")


def softmin(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """``softmax(-x)`` along ``dim`` (``torch.nn.functional.softmin``)."""
    x = _as_dtype(input, dtype)
    float_check(x, "softmin")
    return Softmax.apply(-x, dim=_softmax_dim(x, dim, "softmin", _stacklevel))


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """``a * sigmoid(b)`` with ``a``, ``b`` the two halves of ``input`` along ``dim``
    (``torch.nn.functional.glu``).

    Raises:
        RuntimeError: If the size along ``dim`` is odd (as PyTorch).
    """
    float_check(input, "glu")
    if input.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    dim = normalize_dim(dim, input.ndim)
    if input.shape[dim] % 2:
        raise RuntimeError(
            f"Halving dimension must be even, but dimension {dim} is size {input.shape[dim]}"
        )
    return GLU.apply(input, dim=dim)


def rrelu(
    input: Tensor,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    inplace: bool = False,
) -> Tensor:
    """Leaky ReLU with a slope drawn from U(lower, upper) per element while training, the
    mean slope otherwise (``torch.nn.functional.rrelu``; the draws come from convlab's
    generator, so they differ from PyTorch's).

    Raises:
        ValueError: If ``lower > upper``.
    """
    float_check(input, "rrelu")
    if lower > upper:
        raise ValueError(f"rrelu: lower ({lower}) must not exceed upper ({upper})")
    if not training:
        return LeakyReLU.apply(input, slope=(float(lower) + float(upper)) / 2)
    dtype = input._data.dtype
    u = _random.device_random(input._backend, tuple(input.shape), dtype)
    slopes = (u * (upper - lower) + lower).astype(dtype, copy=False)
    return RReLU.apply(input, slopes=slopes)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``x`` where ``x > threshold``, ``value`` elsewhere (``torch.nn.functional.threshold``)."""
    return _elementwise(
        Threshold, input, "threshold", threshold=float(threshold), value=float(value)
    )


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """``x`` where positive, ``weight * x`` elsewhere, ``weight`` shared or one per channel
    (``torch.nn.functional.prelu``).

    Raises:
        ValueError: If ``weight`` is not 1-D with one value or one per channel (dimension 1).
    """
    float_check(input, "prelu")
    if not isinstance(weight, Tensor) or weight.ndim > 1:
        raise ValueError(
            f"prelu: weight: expected a 1-D tensor, got "
            f"{getattr(weight, 'shape', type(weight).__name__)}"
        )
    n = weight._data.size
    channels = input.shape[1] if input.ndim >= 2 else 1
    if n != 1 and n != channels:
        raise ValueError(
            f"prelu: weight: expected 1 value or one per channel ({channels}, dimension 1 of "
            f"the input of shape {input.shape}), got {n}"
        )
    return PReLU.apply(input, weight)


def softmax2d(input: Tensor) -> Tensor:
    """Softmax over the channels of (N, C, H, W) or (C, H, W) input (``nn.Softmax2d``).

    Raises:
        ValueError: If the input is not 3-D or 4-D.
    """
    if input.ndim not in (3, 4):
        raise ValueError(
            f"Softmax2d: expected a 3D or 4D input (C, H, W) / (N, C, H, W), got shape "
            f"{input.shape}"
        )
    return softmax(input, -3)


# ---------------------------------------------------------------------------------------------
# dropout variants


def _keep_mask(x: Tensor, shape: tuple, p: float) -> Any:
    """A bool mask of ``shape``, each entry kept with probability ``1 - p``, from the
    backend's seeded dropout stream."""
    backend = x._backend
    ones = backend.xp.ones(shape, x._data.dtype)
    if _sample_dropout.current() is not None:  # keyed by global sample index
        return _sample_dropout.masked(backend, ones, p, _random.draw_seed())[1]
    return backend.dropout_forward(ones, p, _random.draw_seed())[1]


class _ScaledMask(Function):
    """``x * scale + shift`` with a fixed ``scale`` / ``shift`` that broadcast against x."""

    def forward(self, x: Any, scale: Any = None, shift: Any = None) -> Any:
        self.scale = scale
        out = x * scale
        if shift is not None:
            out += shift
        return out.astype(x.dtype, copy=False)

    def backward(self, grad: Any) -> tuple:
        return ((grad * self.scale).astype(grad.dtype, copy=False),)


def _check_p(p: float, what: str) -> float:
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{what}: p: expected a probability in [0, 1], got {p}")
    return float(p)


def _feature_dropout(x: Tensor, p: float, training: bool, what: str) -> Tensor:
    """Zero whole channels: one draw per (sample, channel), the rest scaled by 1 / (1 - p)."""
    if not training or p == 0:
        return x
    float_check(x, what)
    if p == 1:
        return x * 0.0
    shape = tuple(x.shape[:2]) + (1,) * (x.ndim - 2)
    keep = _keep_mask(x, shape, p)
    scale = keep.astype(x._data.dtype) * (1.0 / (1.0 - p))
    return _ScaledMask.apply(x, scale=scale.astype(x._data.dtype, copy=False))


def _with_batch(x: Tensor, batched_ndim: int, what: str, run: Any) -> Tensor:
    """Run ``run`` on ``x``, adding the batch dimension to unbatched input."""
    if x.ndim not in (batched_ndim - 1, batched_ndim):
        raise ValueError(
            f"{what}: expected {batched_ndim - 1}D (unbatched) or {batched_ndim}D (batched) "
            f"input, got {x.ndim}D input of shape {x.shape}"
        )
    if x.ndim == batched_ndim:
        return run(x)
    return _shape.squeeze(run(_shape.unsqueeze(x, 0)), 0)


def dropout1d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L) input (``torch.nn.functional.dropout1d``).

    Raises:
        ValueError: For ``p`` outside [0, 1] or a 1-D / 4-D+ input.
    """
    p = _check_p(p, "dropout1d")
    return _with_batch(
        input, 3, "dropout1d", lambda x: _feature_dropout(x, p, training, "dropout1d")
    )


def dropout2d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zero whole channels of (N, C, H, W) input (``torch.nn.functional.dropout2d``).

    As PyTorch, a 3-D input is taken as (N, C, L) with a warning, and other ranks as batched
    with a deprecation warning.
    """
    p = _check_p(p, "dropout2d")
    if input.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is deprecated and "
            "will result in an error in a future release. To retain the behavior and silence "
            "this warning, please use dropout instead. Note that dropout2d exists to provide "
            "channel-wise dropout on inputs with 2 spatial dimensions, a channel dimension, and "
            "an optional batch dimension (i.e. 3D or 4D inputs).",
            stacklevel=2,
        )
    if input.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D "
            "dropout behavior is desired - input is interpreted as shape (N, C, L), where C is "
            "the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
            "channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2,
        )
    if input.ndim < 2:
        raise ValueError(f"dropout2d: expected a 3D or 4D input, got shape {input.shape}")
    return _feature_dropout(input, p, training, "dropout2d")


def dropout3d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) input
    (``torch.nn.functional.dropout3d``)."""
    p = _check_p(p, "dropout3d")
    return _with_batch(
        input, 5, "dropout3d", lambda x: _feature_dropout(x, p, training, "dropout3d")
    )


_ALPHA_PRIME = 1.7580993408473766  # -SELU's scale * alpha: the value SELU saturates at


def alpha_dropout(
    input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False
) -> Tensor:
    """Dropout that keeps SELU's zero mean and unit variance: dropped elements become the
    saturation value, then an affine map restores the moments
    (``torch.nn.functional.alpha_dropout``; note ``training`` defaults to False, as there)."""
    p = _check_p(p, "alpha_dropout")
    if not training or p == 0:
        return input
    float_check(input, "alpha_dropout")
    if p == 1:
        return input * 0.0
    dtype = input._data.dtype
    keep = _keep_mask(input, tuple(input.shape), p).astype(dtype)
    a = 1.0 / math.sqrt((_ALPHA_PRIME**2 * p + 1) * (1 - p))
    # PyTorch's: x * keep * a + (keep - 1) * alpha' * a + alpha' * a * p
    shift = (keep - 1) * (_ALPHA_PRIME * a) + _ALPHA_PRIME * a * p
    return _ScaledMask.apply(input, scale=keep * a, shift=shift.astype(dtype, copy=False))
