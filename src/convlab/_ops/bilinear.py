"""``bilinear``: ``y_o = x1 @ weight[o] @ x2 + bias_o`` (``torch.nn.functional.bilinear``),
two matrix products, so autograd gives every gradient."""

from __future__ import annotations

from convlab._ops._util import float_check
from convlab._tensor import Tensor

__all__ = ["bilinear"]


class _BilinearShapeError(ValueError, RuntimeError):
    """Shapes PyTorch refuses with ``RuntimeError``."""


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Bilinear map of two inputs (``torch.nn.functional.bilinear``).

    Args:
        input1: ``(*, in1_features)``, floating point.
        input2: ``(*, in2_features)``, the same leading dimensions.
        weight: (out_features, in1_features, in2_features).
        bias: (out_features,) or None.

    Returns:
        ``(*, out_features)``.

    Raises:
        ValueError: For shapes that do not fit (also a ``RuntimeError``).
        TypeError: For a non-float input.
    """
    float_check(input1, "bilinear input1")
    if weight.ndim != 3:
        raise _BilinearShapeError(
            f"bilinear: weight: expected 3 dimensions, got shape {tuple(weight.shape)}"
        )
    o, i, j = weight.shape
    if (
        input1.ndim == 0
        or tuple(input1.shape[:-1]) != tuple(input2.shape[:-1])
        or input1.shape[-1] != i
        or input2.shape[-1] != j
    ):
        raise _BilinearShapeError(
            f"bilinear: expected input1 (*, {i}) and input2 (*, {j}) with the same leading "
            f"dimensions, got {tuple(input1.shape)} and {tuple(input2.shape)}"
        )
    if bias is not None and tuple(bias.shape) != (o,):
        raise _BilinearShapeError(f"bilinear: bias: expected shape ({o},), got {tuple(bias.shape)}")
    lead = tuple(input1.shape[:-1])
    x1 = input1.reshape(-1, i)
    x2 = input2.reshape(-1, j)
    # (M, I) @ (I, O*J) -> (M, O, J), then contract J against x2
    mixed = (x1 @ weight.permute(1, 0, 2).reshape(i, o * j)).reshape(-1, o, j)
    out = (mixed * x2.unsqueeze(1)).sum(-1)
    if bias is not None:
        out = out + bias
    return out.reshape(*lead, o)
