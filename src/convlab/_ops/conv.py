"""Convolution and pooling on the backend's hand-written kernels."""

from __future__ import annotations

from typing import Any, Literal, overload

import numpy as np

from convlab import _validate as check
from convlab._ops import shape as _shape
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = ["conv2d", "conv1d", "max_pool2d", "avg_pool2d", "max_pool1d", "avg_pool1d"]


class Conv2d(Function):
    follows_autocast = True
    fresh_grads = True

    def forward(
        self,
        x: Any,
        weight: Any,
        bias: Any = None,
        stride: tuple = (1, 1),
        padding: tuple = (0, 0),
        dilation: tuple = (1, 1),
        groups: int = 1,
    ) -> Any:
        self.x, self.weight, self.has_bias = x, weight, bias is not None
        self.geometry = stride, padding, dilation
        self.groups = groups
        if groups == 1:  # the dense call exactly as before: no keyword for the backend to pass
            return self.backend.conv2d_forward(x, weight, bias, stride, padding, dilation)
        return self.backend.conv2d_forward(
            x, weight, bias, stride, padding, dilation, groups=groups
        )

    def backward(self, grad: Any) -> tuple:
        bk = self.backend
        stride, padding, dilation = self.geometry
        grouped = {} if self.groups == 1 else {"groups": self.groups}
        gx = gw = gb = None
        if self.needs[0]:
            gx = bk.conv2d_backward_data(
                grad, self.weight, self.x.shape, stride, padding, dilation, **grouped
            )
        if self.needs[1]:
            gw, gb = bk.conv2d_backward_weight(
                grad,
                self.x,
                self.weight.shape,
                stride,
                padding,
                dilation,
                bias=self.has_bias,
                **grouped,
            )
        elif self.has_bias and self.needs[2]:
            gb = grad.sum(axis=(0, 2, 3))
        return gx, gw, gb if self.has_bias and self.needs[2] else None


class MaxPool2d(Function):
    def forward(
        self,
        x: Any,
        kernel_size: Any = None,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        ceil_mode: bool = False,
    ) -> Any:
        out, self.argmax = self.backend.max_pool2d(
            x, kernel_size, stride, padding, dilation, ceil_mode
        )
        self.shape = x.shape
        self.args = kernel_size, stride, padding, dilation, ceil_mode
        return out

    def backward(self, grad: Any) -> tuple:
        return (self.backend.max_pool2d_backward(grad, self.argmax, self.shape, *self.args),)


class AvgPool2d(Function):
    def forward(
        self,
        x: Any,
        kernel_size: Any = None,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> Any:
        self.shape = x.shape
        self.args = kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        return self.backend.avg_pool2d(x, *self.args)

    def backward(self, grad: Any) -> tuple:
        return (self.backend.avg_pool2d_backward(grad, self.shape, *self.args),)


def _batched(x: Tensor, ndim: int, what: str) -> bool:
    """Whether ``x`` lacks the batch dimension (PyTorch accepts unbatched inputs)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{what}: expected a Tensor input, got {type(x).__name__}")
    if x.ndim not in (ndim - 1, ndim):
        raise ValueError(
            f"{what}: expected a {ndim - 1}-D (unbatched) or {ndim}-D (batched) "
            f"input, got shape {x.shape}"
        )
    return x.ndim == ndim - 1


def _apply_nchw(
    function: type[Function], x: Tensor, what: str, *inputs: Any, **params: Any
) -> Tensor:
    """Run a 4-D op, adding and removing the batch dimension for unbatched (C, H, W) input."""
    unbatched = _batched(x, 4, what)
    if unbatched:
        x = _shape.unsqueeze(x, 0)
    out = function.apply(x, *inputs, **params)
    return _shape.squeeze(out, 0) if unbatched else out


def _floating_input(x: Tensor, what: str) -> None:
    """Refuse integer images (say, uint8 pixels straight from a dataset) here, naming the cure,
    instead of deep in a kernel."""
    dtype = x._data.dtype
    if dtype.kind not in "fc":
        raise TypeError(
            f"{what}: expected a floating-point input (float32 or float64), got {dtype}; "
            f"convert it with .float() (or x.to(torch.float32))"
        )


def _groups(groups: Any, x: Tensor, weight: Tensor, what: str) -> int:
    """PyTorch's checks of ``groups`` against the input's and the weight's channels."""
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"{what}: groups: expected an int, got {type(groups).__name__}")
    groups = int(groups)
    if groups < 1:
        raise ValueError(f"{what}: groups: expected a positive int, got {groups}")
    if groups == 1:  # a dense convolution: the backend's checks name the mismatch
        return 1
    out_channels, per_group = weight.shape[0], weight.shape[1]
    if out_channels % groups:
        raise ValueError(
            f"{what}: groups={groups} must divide out_channels, but the weight "
            f"{tuple(weight.shape)} has {out_channels}"
        )
    channels = x.shape[-3] if what == "conv2d" else x.shape[-2]
    if channels != per_group * groups:
        raise ValueError(
            f"{what}: expected input with {per_group * groups} channels (weight "
            f"{tuple(weight.shape)}, groups={groups}: in_channels / groups = {per_group}), "
            f"got {channels} channels (input shape {tuple(x.shape)})"
        )
    return groups


def _pool_stride(stride: Any) -> Any:
    # PyTorch treats an empty stride sequence as "the kernel size"
    return None if isinstance(stride, (tuple, list)) and len(stride) == 0 else stride


def _same_padding(x: Tensor, weight_hw: tuple, stride: tuple, dilation: tuple) -> tuple:
    """Symmetric padding for 'same', or an explicitly padded input when it is lopsided."""
    if stride != (1, 1):
        raise ValueError(
            f"padding='same' is not supported for strided convolutions (stride {stride})"
        )
    total = [d * (k - 1) for d, k in zip(dilation, weight_hw)]
    before = [t // 2 for t in total]
    if all(t % 2 == 0 for t in total):
        return x, tuple(before)
    # an even kernel: PyTorch puts the extra row / column at the end
    widths = ((0, 0),) * (x.ndim - 2) + tuple((b, t - b) for b, t in zip(before, total))
    return _shape.pad(x, widths), (0, 0)


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """2-D cross-correlation of NCHW ``x`` with OIHW ``weight`` (``torch.nn.functional.conv2d``).

    Args:
        x: (N, C, H, W) or unbatched (C, H, W), float32 or float64.
        weight: (out_channels, C / groups, KH, KW).
        bias: (out_channels,) or None.
        stride: An int or a pair.
        padding: An int, a pair, ``"valid"`` (no padding) or ``"same"`` (output as large as
            the input; stride 1 only).
        dilation: An int or a pair.
        groups: Channel groups convolved separately: ``C`` and ``out_channels`` must be
            divisible by it; ``groups == C`` is a depthwise convolution.

    Raises:
        TypeError: For an integer (say, uint8) input: convert it with ``.float()``.
        ValueError: For mismatched shapes, channels or groups, or bad geometry.
    """
    _batched(x, 4, "conv2d")
    _floating_input(x, "conv2d")
    if not isinstance(weight, Tensor) or weight.ndim != 4:
        raise ValueError(
            f"weight: expected a 4-D tensor (out_channels, in_channels / groups, KH, KW), "
            f"got {getattr(weight, 'shape', type(weight).__name__)}"
        )
    groups = _groups(groups, x, weight, "conv2d")
    stride = check.positive_pair(stride, "stride")
    dilation = check.positive_pair(dilation, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            x, padding = _same_padding(x, weight.shape[2:], stride, dilation)
        else:
            raise ValueError(
                f"padding: expected an int, a pair, 'valid' or 'same', got {padding!r}"
            )
    padding = check.nonnegative_pair(padding, "padding")
    return _apply_nchw(
        Conv2d,
        x,
        "conv2d",
        weight,
        bias,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
    )


def conv1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """1-D cross-correlation of NCL ``x`` with OIK ``weight``, via the 2-D kernels
    (``torch.nn.functional.conv1d``; arguments as :func:`conv2d`'s, one int each)."""
    _batched(x, 3, "conv1d")
    _floating_input(x, "conv1d")
    if not isinstance(weight, Tensor) or weight.ndim != 3:
        raise ValueError(
            f"weight: expected a 3-D tensor (out_channels, in_channels / groups, K), got "
            f"{getattr(weight, 'shape', type(weight).__name__)}"
        )
    groups = _groups(groups, x, weight, "conv1d")

    def one(value: Any, name: str) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, (tuple, list)):
            if len(value) != 1:
                raise ValueError(f"{name}: expected an int or a 1-tuple, got {value!r}")
            value = value[0]
        return (1, value) if name != "padding" else (0, value)

    # (N, C, L) -> (N, C, 1, L); an unbatched (C, L) becomes (C, 1, L), which conv2d takes too
    out = conv2d(
        _shape.unsqueeze(x, -2),
        _shape.unsqueeze(weight, 2),
        bias,
        one(stride, "stride"),
        one(padding, "padding"),
        one(dilation, "dilation"),
        groups,
    )
    return _shape.squeeze(out, -2)


@overload
def max_pool2d(
    x: Tensor,
    kernel_size: Any,
    stride: Any = ...,
    padding: Any = ...,
    dilation: Any = ...,
    ceil_mode: bool = ...,
    return_indices: Literal[False] = ...,
) -> Tensor: ...


@overload
def max_pool2d(
    x: Tensor,
    kernel_size: Any,
    stride: Any = ...,
    padding: Any = ...,
    dilation: Any = ...,
    ceil_mode: bool = ...,
    *,
    return_indices: Literal[True],
) -> tuple[Tensor, Tensor]: ...


def max_pool2d(
    x: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Max pooling over NCHW ``x``; the gradient goes to the first maximum of each window.

    With ``return_indices``, returns ``(pooled, indices)``: each maximum's int64 offset
    ``h * W + w`` in its plane, as PyTorch's (for :func:`max_unpool2d`).
    """
    if return_indices:
        from convlab._ops.unpool import max_pool2d_with_indices

        return max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode)
    return _apply_nchw(
        MaxPool2d,
        x,
        "max_pool2d",
        kernel_size=kernel_size,
        stride=_pool_stride(stride),
        padding=padding,
        dilation=dilation,
        ceil_mode=bool(ceil_mode),
    )


def avg_pool2d(
    x: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """Average pooling over NCHW ``x`` (``count_include_pad`` as in PyTorch)."""
    return _apply_nchw(
        AvgPool2d,
        x,
        "avg_pool2d",
        kernel_size=kernel_size,
        stride=_pool_stride(stride),
        padding=padding,
        ceil_mode=bool(ceil_mode),
        count_include_pad=bool(count_include_pad),
        divisor_override=divisor_override,
    )


def _one(value: Any, name: str, fill: int) -> Any:
    """A 1-D pooling argument as the (1, value) / (fill, value) pair of the 2-D kernels."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name}: expected an int or a 1-tuple, got {value!r}")
        value = value[0]
    return (fill, value)


def avg_pool1d(
    x: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """Average pooling over (N, C, L) or (C, L) ``x`` (``torch.nn.functional.avg_pool1d``)."""
    _batched(x, 3, "avg_pool1d")
    stride = _pool_stride(stride)
    out = avg_pool2d(
        _shape.unsqueeze(x, -2),
        _one(kernel_size, "kernel_size", 1),
        None if stride is None else _one(stride, "stride", 1),
        _one(padding, "padding", 0),
        ceil_mode,
        count_include_pad,
    )
    return _shape.squeeze(out, -2)


def max_pool1d(
    x: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """Max pooling over (N, C, L) or (C, L) ``x`` (``torch.nn.functional.max_pool1d``).

    With ``return_indices``, returns ``(pooled, indices)``: each maximum's int64 position
    along L, as PyTorch's.
    """
    if return_indices:
        # imported here: convlab._ops.unpool builds on this module
        from convlab._ops.unpool import max_pool1d_with_indices

        return max_pool1d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode)
    _batched(x, 3, "max_pool1d")
    stride = _pool_stride(stride)
    out = max_pool2d(
        _shape.unsqueeze(x, -2),
        _one(kernel_size, "kernel_size", 1),
        None if stride is None else _one(stride, "stride", 1),
        _one(padding, "padding", 0),
        _one(dilation, "dilation", 1),
        ceil_mode,
    )
    return _shape.squeeze(out, -2)
