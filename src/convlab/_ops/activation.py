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
        out, self.keep = self.backend.dropout_forward(x, p, _random.draw_seed())
        return out

    def backward(self, grad: Any) -> tuple:
        return (self.backend.dropout_backward(grad, self.keep, self.p),)


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
