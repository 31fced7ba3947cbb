"""Batch normalisation as one fused node (statistics, normalisation and affine in a pass)."""

from __future__ import annotations

from typing import Any

from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = ["batch_norm"]


class BatchNorm(Function):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias`` per channel (axis 1)."""

    def forward(
        self,
        x: Any,
        running_mean: Any = None,
        running_var: Any = None,
        weight: Any = None,
        bias: Any = None,
        training: bool = False,
        eps: float = 1e-5,
        average_factor: float = 0.1,
    ) -> Any:
        self.empty = x.size == 0
        if self.empty:
            # an empty batch, as PyTorch: an empty output, the running statistics untouched,
            # zero gradients for weight and bias
            self.params = (weight, bias)
            return self.backend.xp.empty_like(x)
        # the backend's kernels: statistics and normalisation per channel in one parallel
        # pass each, x kept instead of a normalised copy
        stats = (None, None) if training else (running_mean, running_var)
        y, mean, var = self.backend.batch_norm_forward(x, weight, bias, *stats, eps)
        if training and running_mean is not None:
            count = x.size // max(x.shape[1], 1)
            f = average_factor
            # running statistics use the unbiased variance, as PyTorch
            running_mean *= x.dtype.type(1 - f)
            running_mean += (f * mean).astype(x.dtype)
            running_var *= x.dtype.type(1 - f)
            running_var += (f * var * (count / max(count - 1, 1))).astype(x.dtype)
        self.x, self.mean, self.invstd64 = x, mean, 1 / self.backend.xp.sqrt(var + eps)
        self.weight, self.training = weight, training
        return y

    def backward(self, grad: Any) -> tuple:
        if self.empty:
            zeros = self.backend.xp.zeros_like
            return (zeros(grad), None, None) + tuple(
                None if p is None else zeros(p) for p in self.params
            )
        gx, gw, gb = self.backend.batch_norm_backward(
            grad,
            self.x,
            self.mean,
            self.invstd64,
            self.weight,
            self.training,
            input_grad=self.needs[0],
        )
        return (gx, None, None, gw if self.needs[3] else None, gb if self.needs[4] else None)


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalisation over axis 1 (``torch.nn.functional.batch_norm``).

    In training, normalises with the batch statistics and updates ``running_mean`` /
    ``running_var`` in place with factor ``momentum`` (unbiased variance); the cumulative
    average of ``momentum=None`` is the modules' job (:class:`convlab.nn.BatchNorm2d`).
    In evaluation, uses the running statistics.

    Raises:
        ValueError: For inputs with fewer than 2 dimensions, mismatched parameter shapes, or a
            training batch with a single value per channel.
    """
    if x.ndim < 2:
        raise ValueError(
            f"batch_norm: expected an input with at least 2 dimensions (N, C, ...)"
            f", got shape {x.shape}"
        )
    channels = x.shape[1]
    for name, t in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        if t is not None and t.shape != (channels,):
            raise ValueError(
                f"{name}: expected shape ({channels},) for an input of shape "
                f"{x.shape}, got {t.shape}"
            )
    if training and x._data.size // max(channels, 1) == 1:
        raise ValueError(
            f"batch_norm: expected more than 1 value per channel when training, "
            f"got input shape {x.shape}"
        )
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
    # as in PyTorch's functional form, momentum is the running average's factor itself
    factor = 0.0 if momentum is None else float(momentum)
    return BatchNorm.apply(
        x,
        running_mean,
        running_var,
        weight,
        bias,
        training=training,
        eps=float(eps),
        average_factor=factor,
    )
