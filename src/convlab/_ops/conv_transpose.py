"""Transposed convolution on the convolution's own kernels.

A transposed convolution is the gradient of a convolution with respect to its input, so its
forward is the backend's ``conv2d_backward_data``, its input gradient is ``conv2d_forward``
and its weight gradient is ``conv2d_backward_weight`` with input and output swapped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab import _validate as check
from convlab._ops import shape as _shape
from convlab._ops._util import float_check
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = ["conv_transpose2d", "conv_transpose1d", "transposed_output_size"]


def _conv_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of the plain convolution that this transposed one is the gradient of."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


class ConvTranspose2d(Function):
    """``y = conv2d_backward_data(x, weight)`` (plus bias), weight (C_in, C_out / groups, KH,
    KW): with groups, the convolution from C_out to C_in channels in as many groups."""

    follows_autocast = True

    def forward(
        self,
        x: Any,
        weight: Any,
        bias: Any = None,
        stride: tuple = (1, 1),
        padding: tuple = (0, 0),
        dilation: tuple = (1, 1),
        out_hw: tuple = (1, 1),
        groups: int = 1,
    ) -> Any:
        bk, xp = self.backend, self.backend.xp
        self.geometry = stride, padding, dilation
        # the dense call exactly as before: no keyword for a backend without groups to refuse
        self.grouped = {} if groups == 1 else {"groups": groups}
        self.weight, self.has_bias, self.in_hw = weight, bias is not None, x.shape[2:]
        out_shape = (x.shape[0], weight.shape[1] * groups) + tuple(out_hw)
        # output_padding >= stride (allowed while < dilation) makes the output so long that the
        # convolution of it has more positions than x: those extra positions are zeros of x
        conv_hw = tuple(
            _conv_size(o, k, s, p, d)
            for o, k, s, p, d in zip(out_hw, weight.shape[2:], stride, padding, dilation)
        )
        if conv_hw != tuple(x.shape[2:]):
            widths = ((0, 0), (0, 0)) + tuple((0, c - h) for c, h in zip(conv_hw, x.shape[2:]))
            x = xp.pad(x, widths)
        self.x = x
        y = bk.conv2d_backward_data(x, weight, out_shape, stride, padding, dilation, **self.grouped)
        if bias is not None:
            y += bias[:, None, None]
        return y

    def backward(self, grad: Any) -> tuple:
        bk = self.backend
        stride, padding, dilation = self.geometry
        gx = gw = gb = None
        if self.needs[0]:
            gx = bk.conv2d_forward(
                grad, self.weight, None, stride, padding, dilation, **self.grouped
            )
            h, w = self.in_hw
            if gx.shape[2:] != (h, w):
                gx = bk.xp.ascontiguousarray(gx[:, :, :h, :w])
        if self.needs[1]:
            # the convolution's roles: its input is our output (grad), its output is our x
            gw, _ = bk.conv2d_backward_weight(
                self.x,
                grad,
                self.weight.shape,
                stride,
                padding,
                dilation,
                bias=False,
                **self.grouped,
            )
        if self.has_bias and self.needs[2]:
            gb = grad.sum(axis=(0, 2, 3))
        return gx, gw, gb


def _ints(value: Any, n: int, name: str, minimum: int) -> tuple[int, ...]:
    """``value`` (an int or ``n`` ints) as an ``n``-tuple of ints ``>= minimum``."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(values) != n or any(
        isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in values
    ):
        kind = "positive" if minimum > 0 else "non-negative"
        raise ValueError(f"{name}: expected a {kind} int or {n} of them, got {value!r}")
    return values


def transposed_output_size(
    in_size: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    output_padding: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[int, ...]:
    """``(in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1``.

    Raises:
        ValueError: If ``output_padding`` is not smaller than the stride or the dilation, or
            the output would be empty.
    """
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= s and op >= d:
            raise ValueError(
                f"output_padding: expected values smaller than either stride {stride} or "
                f"dilation {dilation}, got {output_padding}"
            )
    out = tuple(
        (i - 1) * s - 2 * p + d * (k - 1) + op + 1
        for i, k, s, p, op, d in zip(in_size, kernel, stride, padding, output_padding, dilation)
    )
    if any(o <= 0 for o in out):
        raise ValueError(
            f"conv_transpose: the output size {out} for input size {in_size} is too small "
            f"(kernel {kernel}, stride {stride}, padding {padding}, dilation {dilation})"
        )
    return out


def _check_groups(groups: Any, in_channels: int, what: str) -> int:
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"{what}: groups: expected an int, got {type(groups).__name__}")
    if groups < 1 or in_channels % groups:
        raise ValueError(
            f"{what}: groups: expected a positive divisor of the {in_channels} input channels, "
            f"got {groups}"
        )
    return int(groups)


def _check_operands(
    x: Tensor, weight: Tensor, bias: Tensor | None, dims: int, what: str, groups: Any = 1
) -> tuple[bool, int]:
    """Check the operands; whether ``x`` lacks the batch dimension, and ``groups``."""
    if not isinstance(x, Tensor) or x.ndim not in (dims + 1, dims + 2):
        raise ValueError(
            f"{what}: input: expected a {dims + 1}-D (unbatched) or {dims + 2}-D (batched) "
            f"tensor, got {getattr(x, 'shape', type(x).__name__)}"
        )
    if not isinstance(weight, Tensor) or weight.ndim != dims + 2:
        raise ValueError(
            f"{what}: weight: expected a {dims + 2}-D tensor (in_channels, out_channels, "
            f"kernel...), got {getattr(weight, 'shape', type(weight).__name__)}"
        )
    float_check(x, what)
    channels = x.shape[0 if x.ndim == dims + 1 else 1]
    if weight.shape[0] != channels:
        raise ValueError(
            f"{what}: weight: expected {channels} input channels in dimension 0 (input shape "
            f"{x.shape}), got weight shape {weight.shape}"
        )
    groups = _check_groups(groups, channels, what)
    out_channels = weight.shape[1] * groups
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != (out_channels,)):
        raise ValueError(
            f"{what}: bias: expected shape ({out_channels},), got "
            f"{getattr(bias, 'shape', type(bias).__name__)}"
        )
    return x.ndim == dims + 1, groups


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Tensor:
    """2-D transposed convolution (``torch.nn.functional.conv_transpose2d``).

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
        weight: ``(C_in, C_out / groups, KH, KW)``.
        bias: ``(C_out,)`` or None.
        stride: Step of the convolution this is the gradient of (int or pair).
        padding: Its zero padding, removed from the output (int or pair).
        output_padding: Extra rows / columns added at the output's end (int or pair), each
            smaller than the stride or the dilation.
        groups: Splits the channels into that many groups, each transposed-convolved on its
            own; it must divide ``C_in``.
        dilation: Spacing of the kernel taps (int or pair).

    Returns:
        ``(N, C_out, OH, OW)`` with ``OH = (H - 1) * stride - 2 * padding + dilation *
        (KH - 1) + output_padding + 1``.

    Raises:
        ValueError: For wrong shapes, geometry or ``groups``.
    """
    unbatched, groups = _check_operands(input, weight, bias, 2, "conv_transpose2d", groups)
    stride = _ints(stride, 2, "stride", 1)
    padding = _ints(padding, 2, "padding", 0)
    output_padding = _ints(output_padding, 2, "output_padding", 0)
    dilation = _ints(dilation, 2, "dilation", 1)
    check.same_dtype(input=input._data, weight=weight._data, bias=getattr(bias, "_data", None))
    x = _shape.unsqueeze(input, 0) if unbatched else input
    out_hw = transposed_output_size(
        x.shape[2:], weight.shape[2:], stride, padding, output_padding, dilation
    )
    out = ConvTranspose2d.apply(
        x,
        weight,
        bias,
        stride=stride,
        padding=padding,
        dilation=dilation,
        out_hw=out_hw,
        groups=groups,
    )
    return _shape.squeeze(out, 0) if unbatched else out


def conv_transpose1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Tensor:
    """1-D transposed convolution (``torch.nn.functional.conv_transpose1d``) via the 2-D one.

    Args:
        input: ``(N, C_in, L)`` or unbatched ``(C_in, L)``.
        weight: ``(C_in, C_out / groups, K)``.
        bias: ``(C_out,)`` or None.
        stride: Step (int or 1-tuple).
        padding: Zero padding removed from the output (int or 1-tuple).
        output_padding: Extra positions at the output's end (int or 1-tuple).
        groups: Channel groups, as in :func:`conv_transpose2d`.
        dilation: Spacing of the kernel taps (int or 1-tuple).

    Returns:
        ``(N, C_out, L_out)``.
    """
    _check_operands(input, weight, bias, 1, "conv_transpose1d", groups)

    def pair(value: Any, name: str, minimum: int, first: int) -> tuple[int, int]:
        return (first,) + _ints(value, 1, name, minimum)  # type: ignore[return-value]

    out = conv_transpose2d(
        _shape.unsqueeze(input, -2),
        _shape.unsqueeze(weight, 2),
        bias,
        pair(stride, "stride", 1, 1),
        pair(padding, "padding", 0, 0),
        pair(output_padding, "output_padding", 0, 0),
        groups,
        pair(dilation, "dilation", 1, 1),
    )
    return _shape.squeeze(out, -2)
