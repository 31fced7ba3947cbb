"""Activations, softmax and dropout, written once against ``backend.xp``."""
from __future__ import annotations

from typing import Any

from convlab import _random
from convlab._ops._util import float_check, normalize_dim
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = ["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "dropout"]


class ReLU(Function):
    def forward(self, x: Any) -> Any:
        out = self.backend.xp.maximum(x, 0)
        self.positive = out > 0
        return out

    def backward(self, grad: Any) -> tuple:
        return (grad * self.positive,)


class LeakyReLU(Function):
    def forward(self, x: Any, slope: float = 0.01) -> Any:
        xp = self.backend.xp
        self.slope = slope
        # one parallel pass where the backend has it (NumPy needs three, on one thread)
        fused = getattr(self.backend, "leaky_relu_forward", None)
        if fused is not None:
            out, self.positive = fused(x, slope)
            return out
        self.positive = x > 0
        if 0 <= slope <= 1:
            # max(x, slope * x) is the leaky ReLU for such slopes: two passes, no select
            out = x * x.dtype.type(slope)
            return xp.maximum(x, out, out=out)
        return xp.where(self.positive, x, x * x.dtype.type(slope))

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        # NumPy's masked copy does not vectorise: a backend kernel does it in one pass
        fused = getattr(self.backend, "leaky_relu_backward", None)
        if fused is not None:
            return (fused(grad, self.positive, self.slope),)
        out = grad * grad.dtype.type(self.slope)
        xp.copyto(out, grad, where=self.positive)
        return (out,)


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
        # one parallel pass where the backend has it: its own counter-based stream, seeded
        # from the host generator (so manual_seed and a resumed RNG state still decide it)
        fused = getattr(self.backend, "dropout_forward", None)
        if fused is not None:
            self.fused = True
            out, self.keep = fused(x, p, _random.draw_seed())
            return out
        self.fused = False
        keep = _random.device_random(self.backend, x.shape, x.dtype) >= x.dtype.type(p)
        self.keep, self.scale = keep, x.dtype.type(1.0 / (1.0 - p))
        out = x * keep
        out *= self.scale
        return out

    def backward(self, grad: Any) -> tuple:
        if self.fused:
            return (self.backend.dropout_backward(grad, self.keep, self.p),)
        out = grad * self.keep
        out *= self.scale
        return (out,)


def relu(x: Tensor) -> Tensor:
    """``max(x, 0)``."""
    return ReLU.apply(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """``x`` where positive, ``negative_slope * x`` elsewhere."""
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


def softmax(x: Tensor, dim: int) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim``."""
    float_check(x, "softmax")
    return Softmax.apply(x, dim=normalize_dim(dim, x.ndim))


def log_softmax(x: Tensor, dim: int) -> Tensor:
    """``log(softmax(x))`` along ``dim``, computed stably."""
    float_check(x, "log_softmax")
    return LogSoftmax.apply(x, dim=normalize_dim(dim, x.ndim))


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

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
