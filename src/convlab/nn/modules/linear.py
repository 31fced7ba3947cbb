"""``Linear``, ``Identity``, ``Flatten`` and ``Unflatten``."""

from __future__ import annotations

from typing import Any

from convlab import _creation
from convlab import _validate as check
from convlab._ops import linalg as _linalg
from convlab._ops import shape as _shape
from convlab._ops._util import normalize_dim as _normalize_dim
from convlab._tensor import Tensor
from convlab.nn import init
from convlab.nn.module import Module
from convlab.nn.parameter import Parameter

__all__ = ["Linear", "Identity", "Flatten", "Unflatten"]


class Linear(Module):
    """``y = x @ weight.T + bias`` with weight (out_features, in_features) (``torch.nn.Linear``)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        check.nonnegative(in_features, "in_features")
        check.nonnegative(out_features, "out_features")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(
            _creation.empty(out_features, in_features, dtype=dtype, device=device or "cpu")
        )
        if bias:
            self.bias = Parameter(
                _creation.empty(out_features, dtype=dtype, device=device or "cpu")
            )
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: Kaiming-uniform weights (a = sqrt(5)), bias U(+-1/sqrt(fan_in))."""
        init._default_layer_init(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return _linalg.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Identity(Module):
    """Returns its input unchanged (any constructor arguments are ignored, as in PyTorch)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x


class Flatten(Module):
    """Merge dimensions ``start_dim..end_dim`` (by default all but the batch dimension)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return _shape.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size`` (``torch.nn.Unflatten``).

    Args:
        dim: The dimension to split (negative counts from the end).
        unflattened_size: The new dimensions' sizes; one may be -1.
    """

    def __init__(self, dim: int, unflattened_size: Any) -> None:
        super().__init__()
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError(
                f"unflattened_size: expected a tuple of ints, got {type(unflattened_size).__name__}"
            )
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        dim = _normalize_dim(self.dim, input.ndim)
        shape = tuple(input.shape)
        return _shape.reshape(input, shape[:dim] + self.unflattened_size + shape[dim + 1 :])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
