"""``Bilinear`` (``torch.nn.Bilinear``)."""

from __future__ import annotations

import math
from typing import Any

from convlab import _creation
from convlab import _validate as check
from convlab._ops import bilinear as _bilinear
from convlab._tensor import Tensor
from convlab.nn import init
from convlab.nn.module import Module
from convlab.nn.parameter import Parameter

__all__ = ["Bilinear"]


class Bilinear(Module):
    """``y = x1 @ weight[o] @ x2 + bias[o]`` with weight (out, in1, in2) (``torch.nn.Bilinear``).

    Args:
        in1_features: Size of the first input's last dimension.
        in2_features: Size of the second input's last dimension.
        out_features: Size of the output's last dimension.
        bias: Learn an additive bias.
        device: The parameters' device.
        dtype: The parameters' dtype.
    """

    def __init__(
        self,
        in1_features: int,
        in2_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        for value, name in (
            (in1_features, "in1_features"),
            (in2_features, "in2_features"),
            (out_features, "out_features"),
        ):
            check.nonnegative(value, name)
        self.in1_features, self.in2_features = int(in1_features), int(in2_features)
        self.out_features = int(out_features)
        self.weight = Parameter(
            _creation.empty(
                out_features, in1_features, in2_features, dtype=dtype, device=device or "cpu"
            )
        )
        if bias:
            self.bias = Parameter(
                _creation.empty(out_features, dtype=dtype, device=device or "cpu")
            )
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: weight and bias from U(+-1/sqrt(in1_features))."""
        bound = 1 / math.sqrt(self.weight.shape[1]) if self.weight.shape[1] else 0.0
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return _bilinear.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )
