"""BatchNorm2d -> ReLU / LeakyReLU -> MaxPool2d((k, 1)) as one autograd node.

The three layers after each convolution of the chart CNN are memory-bound passes over the
largest tensors of its training step; the backend's fused kernel
(``batch_norm_max_pool_forward``) reads the convolution's output once for the statistics and
once for the rest, and writes only the pooled output and a byte per output for the backward.
:func:`fused_norm_pool` runs it for a block of exactly these modules and says "no" (returns
None) for anything else, so the caller runs the modules one by one instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab import _validate as check
from convlab import nn
from convlab._ops.norm import update_running_stats
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = ["fused_norm_pool", "norm_pool_window"]

# a window row must fit the 7 low bits of the code byte
_MAX_WINDOW = 127
_HOOK_TABLES = ("_forward_pre_hooks", "_forward_hooks", "_backward_hooks", "_backward_pre_hooks")


class BatchNormMaxPool(Function):
    """Batch norm (batch or running statistics) -> max over (k, 1) windows -> activation."""

    def forward(
        self,
        x: Any,
        running_mean: Any = None,
        running_var: Any = None,
        weight: Any = None,
        bias: Any = None,
        batch_stats: bool = True,
        eps: float = 1e-5,
        average_factor: float = 0.1,
        kernel: int = 2,
        ceil_mode: bool = False,
        slope: float = 0.0,
    ) -> Any:
        stats = (None, None) if batch_stats else (running_mean, running_var)
        y, self.code, mean, var = self.backend.batch_norm_max_pool_forward(
            x, weight, bias, *stats, eps, kernel, ceil_mode, slope
        )
        if batch_stats and running_mean is not None:
            # BatchNorm's update (the same bits)
            count = x.size // x.shape[1]
            update_running_stats(
                running_mean, running_var, mean, var, count, average_factor, x.dtype
            )
        self.x, self.mean, self.invstd64 = x, mean, 1 / self.backend.xp.sqrt(var + eps)
        self.weight, self.batch_stats = weight, batch_stats
        self.kernel, self.ceil_mode, self.slope = kernel, ceil_mode, slope
        return y

    def backward(self, grad: Any) -> tuple:
        gx, gw, gb = self.backend.batch_norm_max_pool_backward(
            grad,
            self.code,
            self.x,
            self.mean,
            self.invstd64,
            self.weight,
            self.batch_stats,
            self.kernel,
            self.ceil_mode,
            self.slope,
            input_grad=self.needs[0],
        )
        return (gx, None, None, gw if self.needs[3] else None, gb if self.needs[4] else None)


def norm_pool_window(pool: nn.Module) -> int | None:
    """The k of a plain ``MaxPool2d((k, 1), stride (k, 1))`` with no padding, dilation or
    indices (the windows the fused kernel pools), else None."""
    if type(pool) is not nn.MaxPool2d or pool.return_indices or _has_hooks(pool):
        return None
    try:
        kernel = check.pair(pool.kernel_size, "kernel_size")
        stride = check.pair(pool.stride, "stride")
        padding = check.pair(pool.padding, "padding")
        dilation = check.pair(pool.dilation, "dilation")
    except (TypeError, ValueError):
        return None
    k = kernel[0]
    if kernel != (k, 1) or stride != (k, 1) or padding != (0, 0) or dilation != (1, 1):
        return None
    return k if 1 <= k <= _MAX_WINDOW else None


def _has_hooks(module: nn.Module) -> bool:
    # a hook must see its module's own input / output, which the fused node never makes
    return any(module.__dict__.get(name) for name in _HOOK_TABLES)


def _slope(activation: nn.Module) -> float | None:
    """0 for a plain ReLU, the slope of a plain LeakyReLU with a positive one, else None.

    LeakyReLU(0) is left out: it computes ``x * 0`` (NaN for -inf, -0.0 for negatives),
    not ReLU's ``max(x, 0)``, which the kernel's slope 0 means.
    """
    if _has_hooks(activation):
        return None
    if type(activation) is nn.ReLU:
        return 0.0
    if type(activation) is nn.LeakyReLU:
        slope = activation.negative_slope
        if isinstance(slope, (int, float)) and not isinstance(slope, bool) and 0 < slope < 1e300:
            return float(slope)
    return None


def _fits(bn: nn.Module, x: Tensor, k: int, ceil_mode: bool) -> bool:
    """Whether ``bn``'s forward on ``x`` is one the fused node computes the same way: valid
    input (the modules raise their own errors otherwise), floating point, non-empty."""
    if type(bn) is not nn.BatchNorm2d or _has_hooks(bn):
        return False
    data = x._data
    if data.ndim != 4 or data.shape[1] != bn.num_features or data.size == 0:
        return False
    if data.dtype not in (np.float32, np.float64):
        return False
    for p in (bn.weight, bn.bias):
        if p is not None and (p._data.dtype != data.dtype or p._backend is not x._backend):
            return False
    batch_stats = bn.training or bn.running_mean is None
    if batch_stats and data.size // data.shape[1] == 1:
        return False  # BatchNorm's error for a single value per channel
    height = data.shape[2]
    return height >= k or (ceil_mode and height >= 1)


def fused_norm_pool(bn: nn.Module, activation: nn.Module, pool: nn.Module, x: Tensor) -> Any:
    """``pool(activation(bn(x)))`` in one node when the three are a plain ``BatchNorm2d``, a
    ``ReLU`` or ``LeakyReLU`` (slope > 0) and a ``MaxPool2d((k, 1))`` of stride (k, 1), none
    with hooks, and ``x`` a non-empty float32 / float64 NCHW batch they accept; else None.

    The running statistics and ``num_batches_tracked`` change exactly as ``bn(x)`` changes
    them (momentum None: the cumulative average).
    """
    slope = _slope(activation)
    k = norm_pool_window(pool)
    if slope is None or k is None or not _fits(bn, x, k, pool.ceil_mode):
        return None
    # nn.BatchNorm2d.forward's bookkeeping
    running_mean, running_var, batch_stats, factor = bn._statistics_step()
    return BatchNormMaxPool.apply(
        x,
        running_mean,
        running_var,
        bn.weight,
        bn.bias,
        batch_stats=batch_stats,
        eps=bn.eps,
        average_factor=factor,
        kernel=k,
        ceil_mode=bool(pool.ceil_mode),
        slope=slope,
    )
