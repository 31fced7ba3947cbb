"""``MaxUnpool2d`` and ``MaxUnpool1d`` (``torch.nn.MaxUnpool2d`` / ``MaxUnpool1d``)."""

from __future__ import annotations

from typing import Any

from convlab._ops import unpool as _unpool
from convlab._tensor import Tensor
from convlab.nn.module import Module

__all__ = ["MaxUnpool2d", "MaxUnpool1d"]


class MaxUnpool2d(Module):
    """Partial inverse of max pooling (see :func:`convlab.nn.functional.max_unpool2d`).

    Args:
        kernel_size: The pooling window.
        stride: The pooling stride (the window when None).
        padding: The pooling padding.
    """

    _arity = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        # tuples of the layer's arity, as PyTorch stores them (and shows them in the repr)
        self.kernel_size = self._tuple(kernel_size)
        self.stride = self._tuple(stride if stride is not None else kernel_size)
        self.padding = self._tuple(padding)

    def _tuple(self, value: Any) -> tuple[Any, ...]:
        if isinstance(value, (tuple, list)):
            return tuple(value)
        return (value,) * self._arity

    def forward(self, input: Tensor, indices: Tensor, output_size: Any = None) -> Tensor:
        return _unpool.max_unpool2d(
            input, indices, self.kernel_size, self.stride, self.padding, output_size
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(MaxUnpool2d):
    """Partial inverse of 1-D max pooling (see :func:`convlab.nn.functional.max_unpool1d`)."""

    _arity = 1

    def forward(self, input: Tensor, indices: Tensor, output_size: Any = None) -> Tensor:
        return _unpool.max_unpool1d(
            input, indices, self.kernel_size, self.stride, self.padding, output_size
        )
