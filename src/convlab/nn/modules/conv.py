"""Convolution layers: ``Conv2d`` and ``Conv1d``."""

from __future__ import annotations

from typing import Any

from convlab import _creation
from convlab import _validate as check
from convlab._ops import conv as _conv
from convlab._ops import padding as _padding
from convlab._tensor import Tensor
from convlab.nn import init
from convlab.nn.module import Module
from convlab.nn.parameter import Parameter

__all__ = ["Conv2d", "Conv1d"]


_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _tuple(value: Any, n: int, name: str) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{name}: expected an int or {n} ints, got {tuple(value)}")
        return tuple(int(v) for v in value)
    return (int(value),) * n


class _ConvNd(Module):
    _dims = 2
    padding: str | tuple[int, ...]  # "same" / "valid", or one int per dimension

    def __init__(
        self,
        in_channels: int,
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
        super().__init__()
        n = self._dims
        check.positive(in_channels, "in_channels")
        check.positive(out_channels, "out_channels")
        check.positive(groups, "groups")
        # PyTorch's checks and messages
        if in_channels % groups:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode not in _PADDING_MODES:
            # PyTorch's message
            raise ValueError(
                f"padding_mode must be one of {_PADDING_MODES}, but got "
                f"padding_mode='{padding_mode}'"
            )
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _tuple(kernel_size, n, "kernel_size")
        self.stride = _tuple(stride, n, "stride")
        self.dilation = _tuple(dilation, n, "dilation")
        for name in ("kernel_size", "stride", "dilation"):
            if any(v < 1 for v in getattr(self, name)):
                raise ValueError(f"{name}: expected positive values, got {getattr(self, name)}")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"padding: expected an int, a tuple, 'same' or 'valid', got {padding!r}"
                )
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _tuple(padding, n, "padding")
            if any(p < 0 for p in self.padding):
                raise ValueError(f"padding: expected non-negative values, got {self.padding}")
        self.groups, self.padding_mode = int(groups), padding_mode
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(_creation.empty(shape, dtype=dtype, device=device or "cpu"))
        if bias:
            self.bias = Parameter(
                _creation.empty(self.out_channels, dtype=dtype, device=device or "cpu")
            )
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _padded(self, x: Tensor) -> tuple[Tensor, Any]:
        """``x`` and the padding the convolution still applies: for a ``padding_mode`` other
        than ``"zeros"`` the input is padded here (``F.pad``'s mode) and the convolution
        pads nothing, as PyTorch."""
        if self.padding_mode == "zeros":
            return x, self.padding
        if isinstance(self.padding, str):  # "same" / "valid": PyTorch's split of the total
            totals = [
                0 if self.padding == "valid" else d * (k - 1)
                for d, k in zip(self.dilation, self.kernel_size)
            ]
            pairs = [(t // 2, t - t // 2) for t in totals]
        else:
            pairs = [(p, p) for p in self.padding]
        widths = [w for pair in reversed(pairs) for w in pair]  # last dimension first
        mode = self.padding_mode
        return _padding.pad(x, widths, mode=mode), (0,) * self._dims

    def reset_parameters(self) -> None:
        """PyTorch's default: Kaiming-uniform weights (a = sqrt(5)), bias U(+-1/sqrt(fan_in))."""
        init._default_layer_init(self.weight, self.bias)

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,) * self._dims:
            s += f", padding={self.padding}"  # a string unquoted, as PyTorch's repr
        if self.dilation != (1,) * self._dims:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    """2-D convolution over NCHW inputs with an OIHW weight (``torch.nn.Conv2d``).

    ``groups`` splits the channels into groups convolved separately (``groups ==
    in_channels`` is a depthwise convolution, MobileNet's); the weight is
    (out_channels, in_channels / groups, KH, KW). ``padding_mode`` is ``"zeros"``,
    ``"reflect"``, ``"replicate"`` or ``"circular"``, as PyTorch.

    Example:
        >>> import convlab
        >>> from convlab import nn
        >>> conv = nn.Conv2d(1, 64, (5, 3), stride=(3, 1), padding=(12, 1), dilation=(2, 1))
        >>> conv(convlab.zeros(2, 1, 64, 60)).shape
        (2, 64, 27, 60)
    """

    _dims = 2

    def forward(self, x: Tensor) -> Tensor:
        x, padding = self._padded(x)
        return _conv.conv2d(
            x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups
        )


class Conv1d(_ConvNd):
    """1-D convolution over NCL inputs (``torch.nn.Conv1d``)."""

    _dims = 1

    def forward(self, x: Tensor) -> Tensor:
        x, padding = self._padded(x)
        return _conv.conv1d(
            x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups
        )
