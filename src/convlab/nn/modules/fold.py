"""``Unfold`` and ``Fold`` layers (``torch.nn.Unfold`` / ``torch.nn.Fold``)."""

from __future__ import annotations

from typing import Any

from convlab._ops import fold as _fold
from convlab._tensor import Tensor
from convlab.nn.module import Module

__all__ = ["Unfold", "Fold"]


class Unfold(Module):
    """Sliding local blocks as columns (see :func:`convlab.nn.functional.unfold`).

    Args:
        kernel_size: The block size.
        dilation: The spacing of a block's elements.
        padding: Zero padding on both sides.
        stride: The step between blocks.
    """

    def __init__(
        self, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1
    ) -> None:
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride

    def forward(self, input: Tensor) -> Tensor:
        return _fold.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding},"
            f" stride={self.stride}"
        )


class Fold(Module):
    """Sum columns of sliding blocks into an image (see :func:`convlab.nn.functional.fold`).

    Args:
        output_size: The image's (H, W).
        kernel_size: The block size.
        dilation: The spacing of a block's elements.
        padding: Zero padding on both sides.
        stride: The step between blocks.
    """

    def __init__(
        self,
        output_size: Any,
        kernel_size: Any,
        dilation: Any = 1,
        padding: Any = 0,
        stride: Any = 1,
    ) -> None:
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input: Tensor) -> Tensor:
        return _fold.fold(
            input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride
        )

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
            f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}"
        )
