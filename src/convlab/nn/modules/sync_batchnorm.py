"""``SyncBatchNorm``: batch normalisation with the statistics of the batch of all ranks.

In training under a process group of more than one rank, each rank computes its shard's
per-channel count, mean and sum of squared deviations; the ranks gather them and combine them
(Chan's parallel formula: exact, without the cancellation of a sum of squares), so every rank
normalises with the global batch's mean and biased variance and updates its running
statistics as BatchNorm on the global batch would. Backward all-reduces the two per-channel
sums the input gradient needs (of the gradient, and of the gradient times the normalised
input). Alone, or in evaluation, it is :class:`~convlab.nn.BatchNorm2d`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab._tensor import Tensor
from convlab.autograd import Function
from convlab.nn.module import Module
from convlab.nn.modules.norm import _BatchNorm

__all__ = ["SyncBatchNorm"]


class _SyncBatchNormFn(Function):
    def forward(
        self,
        x: Any,
        weight: Any = None,
        bias: Any = None,
        running_mean: Any = None,
        running_var: Any = None,
        eps: float = 1e-5,
        factor: float = 0.1,
        group: Any = None,
    ) -> Any:
        be, xp = self.backend, self.backend.xp
        c = x.shape[1]
        count = x.size // c
        # this shard's statistics from the backend's kernel (float64 accumulation)
        if count:
            _, mean, var = be.batch_norm_forward(x, None, None, None, None, eps)
        else:
            mean, var = xp.zeros(c), xp.zeros(c)
        local = xp.concatenate([xp.asarray([float(count)]), mean, var * count])
        gathered = _all_gather(group, local, be)
        counts, means, m2s = gathered[:, 0], gathered[:, 1 : 1 + c], gathered[:, 1 + c :]
        total = float(counts.sum())
        if total <= 1:
            raise ValueError(
                f"SyncBatchNorm: expected more than 1 value per channel over all ranks when "
                f"training, got {int(total)}"
            )
        global_mean = (counts[:, None] * means).sum(axis=0) / total
        m2 = (m2s + counts[:, None] * (means - global_mean) ** 2).sum(axis=0)
        global_var = m2 / total
        y, _, _ = be.batch_norm_forward(x, weight, bias, global_mean, global_var, eps)
        if running_mean is not None:
            t = x.dtype.type
            running_mean *= t(1 - factor)
            running_mean += (factor * global_mean).astype(x.dtype)
            running_var *= t(1 - factor)
            running_var += (factor * m2 / (total - 1)).astype(x.dtype)  # unbiased, as PyTorch
        self.x, self.mean, self.invstd = x, global_mean, 1 / xp.sqrt(global_var + eps)
        self.weight, self.total, self.group = weight, total, group
        return y

    def backward(self, grad: Any) -> tuple[Any, ...]:
        be, xp = self.backend, self.backend.xp
        x, mean, invstd, weight = self.x, self.mean, self.invstd, self.weight
        # with batch_stats=False the kernel gives grad * weight * invstd and the two local
        # sums (of grad, and of grad * x_hat): the parameters' gradients on this shard
        gx, sum_gx, sum_g = be.batch_norm_backward(
            grad, x, mean, invstd, weight, False, input_grad=self.needs[0]
        )
        if self.needs[0]:
            sums = xp.concatenate([sum_g.astype(np.float64), sum_gx.astype(np.float64)])
            from convlab.distributed._collectives import reduce_arrays
            from convlab.distributed._reduce_op import ReduceOp

            reduce_arrays(self.group, sums, ReduceOp.SUM)
            c = mean.shape[0]
            scale = invstd if weight is None else invstd * weight.astype(np.float64)
            shift = scale * sums[:c] / self.total  # the mean of the gradient's part
            slope = scale * invstd * sums[c:] / self.total  # the x_hat part
            view = (1, c) + (1,) * (x.ndim - 2)
            t = x.dtype
            gx -= x * slope.astype(t).reshape(view)
            gx -= (shift - mean * slope).astype(t).reshape(view)
        return (
            gx if self.needs[0] else None,
            sum_gx if self.needs[1] else None,
            sum_g if self.needs[2] else None,
            None,
            None,
        )


def _all_gather(group: Any, local: Any, backend: Any) -> Any:
    """Every rank's ``local`` (a 1-D array), stacked in group-rank order."""
    from convlab.distributed import _collectives

    mine = Tensor._wrap(local, backend)
    out = [Tensor._wrap(backend.xp.empty_like(local), backend) for _ in range(group.size())]
    _collectives.all_gather(out, mine, group=group)
    return backend.xp.stack([o._data for o in out])


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation over the batch of every rank (``torch.nn.SyncBatchNorm``).

    Accepts (N, C, ...) input of at least 2 dimensions. In training under a process group of
    more than one rank the statistics are the whole (all ranks') batch's; otherwise it is
    BatchNorm. Use :meth:`convert_sync_batchnorm` to convert a model's BatchNorm layers.

    Args:
        num_features: The number of channels, C.
        eps: Added to the variance for stability.
        momentum: The running averages' factor (``None``: a cumulative average).
        affine: Learn a per-channel scale and shift.
        track_running_stats: Keep running statistics for evaluation.
        process_group: The ranks to synchronise over (default: all).
        device: The parameters' device.
        dtype: The parameters' dtype.
        bias: Learn the shift (keyword only).
    """

    _input_dims = tuple(range(2, 9))

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group: Any = None,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias
        )
        self.process_group = process_group

    def _sync_group(self) -> Any:
        from convlab.distributed import _group

        if not self.training or not _group.is_initialized():
            return None
        group = _group.resolve(self.process_group)
        return group if group is not None and group.size() > 1 else None

    def forward(self, x: Tensor) -> Tensor:
        group = self._sync_group()
        if group is None:
            return super().forward(x)
        if x.ndim < 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"SyncBatchNorm: expected (N, {self.num_features}, ...) input, got shape {x.shape}"
            )
        # training here (_sync_group): the batch's statistics normalise
        running_mean, running_var, _, factor = self._statistics_step()
        return _SyncBatchNormFn.apply(
            x,
            self.weight,
            self.bias,
            running_mean,
            running_var,
            eps=self.eps,
            factor=float(factor),
            group=group,
        )

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group: Any = None) -> Module:
        """Replace every BatchNorm layer of ``module`` by a :class:`SyncBatchNorm` that shares
        its parameters and buffers (``torch.nn.SyncBatchNorm.convert_sync_batchnorm``).

        Returns:
            The converted module (a new object when ``module`` itself is a BatchNorm layer).
        """
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            sync = cls(
                module.num_features,
                module.eps,
                module.momentum,
                module.affine,
                module.track_running_stats,
                process_group,
                bias=module.has_bias,
            )
            for name in ("weight", "bias"):
                value = module._parameters.get(name)
                if value is not None:
                    setattr(sync, name, value)
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                sync._buffers[name] = module._buffers.get(name)
            sync.train(module.training)
            return sync
        for name, child in list(module._modules.items()):
            if child is not None:
                converted = cls.convert_sync_batchnorm(child, process_group)
                if converted is not child:
                    module._modules[name] = converted
        return module
