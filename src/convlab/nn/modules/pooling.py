"""Pooling layers."""

from __future__ import annotations

from typing import Any

from convlab._ops import conv as _conv
from convlab._tensor import Tensor
from convlab.nn.module import Module

__all__ = ["MaxPool2d", "AvgPool2d"]


class MaxPool2d(Module):
    """Max pooling (``torch.nn.MaxPool2d``; ``stride`` defaults to ``kernel_size``).

    ``return_indices=True`` is refused: convlab keeps the argmax inside each window, not as
    flat indices.
    """

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        if return_indices:
            raise ValueError("return_indices: True is not supported by convlab's MaxPool2d")
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = False, bool(ceil_mode)
        from convlab import _validate as check

        check.pool_params(kernel_size, self.stride, padding, dilation)

    def forward(self, x: Tensor) -> Tensor:
        return _conv.max_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class AvgPool2d(Module):
    """Average pooling (``torch.nn.AvgPool2d``)."""

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, bool(ceil_mode)
        self.count_include_pad, self.divisor_override = bool(count_include_pad), divisor_override
        from convlab import _validate as check

        check.pool_params(kernel_size, self.stride, padding)

    def forward(self, x: Tensor) -> Tensor:
        return _conv.avg_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
