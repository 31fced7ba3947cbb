"""``unfold`` (im2col) and ``fold`` (col2im) on the backend's kernels, PyTorch's
(N, C*KH*KW, L) column layout; each is the other's gradient."""

from __future__ import annotations

from typing import Any

from convlab._ops._util import float_check
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = ["unfold", "fold"]


class _Unfold(Function):
    def forward(
        self, x: Any, kernel: Any = 1, stride: Any = 1, padding: Any = 0, dilation: Any = 1
    ) -> Any:
        self.hw = x.shape[2:]
        self.geometry = kernel, stride, padding, dilation
        return self.backend.im2col(x, kernel, stride, padding, dilation)

    def backward(self, grad: Any) -> tuple:
        kernel, stride, padding, dilation = self.geometry
        return (self.backend.col2im(grad, self.hw, kernel, stride, padding, dilation),)


class _Fold(Function):
    def forward(
        self,
        cols: Any,
        output_size: Any = None,
        kernel: Any = 1,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
    ) -> Any:
        self.geometry = kernel, stride, padding, dilation
        return self.backend.col2im(cols, output_size, kernel, stride, padding, dilation)

    def backward(self, grad: Any) -> tuple:
        kernel, stride, padding, dilation = self.geometry
        return (self.backend.im2col(grad, kernel, stride, padding, dilation),)


class _FoldShapeError(ValueError, RuntimeError):
    """A shape PyTorch refuses with ``RuntimeError``."""


def unfold(
    input: Tensor, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1
) -> Tensor:
    """Sliding local blocks as columns (``torch.nn.functional.unfold``).

    Args:
        input: (N, C, H, W) or unbatched (C, H, W), floating point.
        kernel_size: The block size: an int or a pair.
        dilation: The spacing of a block's elements.
        padding: Zero padding on both sides.
        stride: The step between blocks.

    Returns:
        (N, C*KH*KW, L) (or (C*KH*KW, L)); row ``(c*KH + i)*KW + j`` holds tap ``(c, i, j)``
        of every block.

    Raises:
        ValueError: For another number of dimensions (also a ``RuntimeError``) or a
            geometry with no blocks.
        TypeError: For a non-float input.
    """
    float_check(input, "unfold input")
    if input.ndim not in (3, 4):
        raise _FoldShapeError(
            f"unfold: expected a 3-d (unbatched) or 4-d (batched) input, got shape "
            f"{tuple(input.shape)}"
        )
    x = input.unsqueeze(0) if input.ndim == 3 else input
    out = _Unfold.apply(x, kernel=kernel_size, stride=stride, padding=padding, dilation=dilation)
    return out.squeeze(0) if input.ndim == 3 else out


def fold(
    input: Tensor,
    output_size: Any,
    kernel_size: Any,
    dilation: Any = 1,
    padding: Any = 0,
    stride: Any = 1,
) -> Tensor:
    """Sum columns of sliding blocks back into an image (``torch.nn.functional.fold``).

    Args:
        input: (N, C*KH*KW, L) or unbatched (C*KH*KW, L), floating point.
        output_size: The image's (H, W): an int or a pair.
        kernel_size: The block size.
        dilation: The spacing of a block's elements.
        padding: Zero padding on both sides.
        stride: The step between blocks.

    Returns:
        (N, C, H, W) (or (C, H, W)): overlapping blocks' elements are summed.

    Raises:
        ValueError: For another number of dimensions or a column count or block count
            that does not fit (also a ``RuntimeError``).
        TypeError: For a non-float input.
    """
    float_check(input, "fold input")
    if input.ndim not in (2, 3):
        raise _FoldShapeError(
            f"fold: expected a 2-d (unbatched) or 3-d (batched) input, got shape "
            f"{tuple(input.shape)}"
        )
    cols = input.unsqueeze(0) if input.ndim == 2 else input
    try:
        out = _Fold.apply(
            cols,
            output_size=output_size,
            kernel=kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
        )
    except ValueError as err:
        raise _FoldShapeError(f"fold: {err}") from None
    return out.squeeze(0) if input.ndim == 2 else out
