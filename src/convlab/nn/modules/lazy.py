"""``LazyLinear`` and ``LazyConv2d`` / ``LazyConv1d``: the input size is read from the first
input (``torch.nn.LazyLinear`` / ``LazyConv2d``).

Until the first call the weight is an empty parameter; the call gives it its shape in
place (the same :class:`Parameter` object, so an optimizer made before it keeps working),
draws PyTorch's default initial values and turns the module into a plain ``Linear`` /
``Conv2d`` / ``Conv1d``, as PyTorch's ``cls_to_become``.
"""

from __future__ import annotations

from typing import Any

from convlab._tensor import Tensor
from convlab.nn.modules.conv import Conv1d, Conv2d
from convlab.nn.modules.linear import Linear

__all__ = ["LazyLinear", "LazyConv2d", "LazyConv1d"]


class _LazyMixin:
    """Shared by the lazy layers: initial values are drawn only once the shape is known."""

    _materialized = False
    weight: Any
    bias: Any

    def has_uninitialized_params(self) -> bool:
        """Whether the first call, which fixes the input size, is still to come."""
        return not self._materialized

    def reset_parameters(self) -> None:
        if self._materialized:
            super().reset_parameters()  # type: ignore[misc]

    def _materialize(self, weight_shape: tuple[int, ...], becomes: type) -> None:
        xp = self.weight._backend.xp
        self.weight._data = xp.empty(weight_shape, self.weight._data.dtype)
        self._materialized = True
        self.reset_parameters()
        self.__class__ = becomes


class LazyLinear(_LazyMixin, Linear):
    """A ``Linear`` whose ``in_features`` is the last size of its first input.

    Args:
        out_features: Size of each output sample.
        bias: Learn an additive bias.
        device: The parameters' device.
        dtype: The parameters' dtype.
    """

    def __init__(
        self, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__(0, out_features, bias, device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        if not self._materialized:
            self.in_features = int(x.shape[-1])
            self._materialize((self.out_features, self.in_features), Linear)
        return Linear.forward(self, x)


class _LazyConv(_LazyMixin):
    _becomes: Any
    in_channels: int
    out_channels: int
    groups: int
    kernel_size: tuple[int, ...]
    _dims: int

    def __init__(
        self,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        # construct with a stand-in input size (every argument checked now), then forget it
        super().__init__(  # type: ignore[call-arg]
            groups,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )
        self.in_channels = 0
        self.weight._data = self.weight._backend.xp.empty(
            (self.out_channels, 0) + self.kernel_size, self.weight._data.dtype
        )

    def forward(self, x: Tensor) -> Tensor:
        becomes = self._becomes  # a class attribute this object loses when it becomes one
        if not self._materialized:
            batched = x.ndim == self._dims + 2
            self.in_channels = int(x.shape[1] if batched else x.shape[0])
            if self.in_channels % self.groups:
                raise ValueError("in_channels must be divisible by groups")
            shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
            self._materialize(shape, becomes)
        out: Tensor = becomes.forward(self, x)
        return out


class LazyConv2d(_LazyConv, Conv2d):
    """A ``Conv2d`` whose ``in_channels`` is read from its first input (arguments as
    ``Conv2d``'s, without ``in_channels``)."""

    _becomes = Conv2d


class LazyConv1d(_LazyConv, Conv1d):
    """A ``Conv1d`` whose ``in_channels`` is read from its first input (arguments as
    ``Conv1d``'s, without ``in_channels``)."""

    _becomes = Conv1d
