"""Transposed convolution layers: ``ConvTranspose2d`` and ``ConvTranspose1d``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from convlab import _creation
from convlab import _validate as check
from convlab._ops import conv_transpose as _convt
from convlab._tensor import Tensor
from convlab.nn import init
from convlab.nn.module import Module
from convlab.nn.parameter import Parameter

__all__ = ["ConvTranspose2d", "ConvTranspose1d"]


def _tuple(value: Any, n: int, name: str, minimum: int) -> tuple[int, ...]:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(values) != n or any(int(v) < minimum for v in values):
        kind = "positive" if minimum > 0 else "non-negative"
        raise ValueError(f"{name}: expected a {kind} int or {n} of them, got {value!r}")
    return tuple(int(v) for v in values)


class _ConvTransposeNd(Module):
    _dims = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        n = self._dims
        check.positive(in_channels, "in_channels")
        check.positive(out_channels, "out_channels")
        check.positive(groups, "groups")
        if in_channels % groups:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode != "zeros":
            # as PyTorch: a transposed convolution pads with zeros only
            raise ValueError(
                f'padding_mode: only "zeros" is supported for {type(self).__name__}, '
                f"got {padding_mode!r}"
            )
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _tuple(kernel_size, n, "kernel_size", 1)
        self.stride = _tuple(stride, n, "stride", 1)
        self.padding = _tuple(padding, n, "padding", 0)
        self.output_padding = _tuple(output_padding, n, "output_padding", 0)
        self.dilation = _tuple(dilation, n, "dilation", 1)
        self.groups, self.padding_mode, self.transposed = int(groups), padding_mode, True
        # PyTorch's layout (in_channels, out_channels / groups, kernel...): the fans, and so
        # the default initialisation, follow from it
        shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        self.weight = Parameter(_creation.empty(shape, dtype=dtype, device=device or "cpu"))
        if bias:
            self.bias = Parameter(
                _creation.empty(self.out_channels, dtype=dtype, device=device or "cpu")
            )
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: Kaiming-uniform weights (a = sqrt(5)), bias U(+-1/sqrt(fan_in))
        with ``fan_in`` from the weight's dimension 1 (the output channels)."""
        init._default_layer_init(self.weight, self.bias)

    def _output_padding(self, x: Tensor, output_size: Sequence[int] | None) -> tuple[int, ...]:
        """``output_padding``, or the one that gives ``output_size`` (PyTorch's rule)."""
        if output_size is None:
            return self.output_padding
        n = self._dims
        size = [int(s) for s in output_size]
        if len(size) == n + 2 or (x.ndim == n + 1 and len(size) == n + 1):
            size = size[-n:]
        if len(size) != n:
            raise ValueError(f"output_size: expected {n} or {n + 2} elements (got {len(size)})")
        spatial = x.shape[-n:]
        base = _convt.transposed_output_size(
            spatial, self.kernel_size, self.stride, self.padding, (0,) * n, self.dilation
        )
        for s, lo, st in zip(size, base, self.stride):
            if not lo <= s < lo + st:
                raise ValueError(
                    f"output_size: requested an output size of {tuple(size)}, but valid sizes "
                    f"range from {base} to {tuple(b + s - 1 for b, s in zip(base, self.stride))} "
                    f"(for an input of {tuple(spatial)})"
                )
        return tuple(s - lo for s, lo in zip(size, base))

    def extra_repr(self) -> str:
        n = self._dims
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution over NCHW inputs (``torch.nn.ConvTranspose2d``).

    The weight has PyTorch's layout ``(in_channels, out_channels / groups, KH, KW)``.

    Example:
        >>> import convlab
        >>> from convlab import nn
        >>> up = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)
        >>> up(convlab.zeros(2, 8, 5, 5)).shape
        (2, 4, 10, 10)
    """

    _dims = 2

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        return _convt.conv_transpose2d(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self._output_padding(input, output_size),
            self.groups,
            self.dilation,
        )


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution over NCL inputs (``torch.nn.ConvTranspose1d``); weight
    ``(in_channels, out_channels / groups, K)``."""

    _dims = 1

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        return _convt.conv_transpose1d(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self._output_padding(input, output_size),
            self.groups,
            self.dilation,
        )
