"""Normalisation layers: batch, layer, group and instance norm."""

from __future__ import annotations

import warnings
from typing import Any

from convlab import _creation, _dtype
from convlab import _validate as check
from convlab._ops import norm as _norm
from convlab._ops import shape as _shape
from convlab._tensor import Tensor
from convlab.autograd import no_grad
from convlab.nn import init
from convlab.nn.module import Module
from convlab.nn.parameter import Parameter

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm",
    "GroupNorm",
    "InstanceNorm1d",
    "InstanceNorm2d",
]


class _BatchNorm(Module):
    _input_dims: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = check.positive(num_features, "num_features")
        if eps <= 0:
            raise ValueError(f"eps: expected a positive number, got {eps}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum: expected a value in [0, 1] or None, got {momentum}")
        self.eps, self.momentum = float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        self.has_bias = bool(bias)
        device = device or "cpu"
        if affine:
            self.weight = Parameter(_creation.ones(num_features, dtype=dtype, device=device))
            if bias:
                self.bias = Parameter(_creation.zeros(num_features, dtype=dtype, device=device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer(
                "running_mean", _creation.zeros(num_features, dtype=dtype, device=device)
            )
            self.register_buffer(
                "running_var", _creation.ones(num_features, dtype=dtype, device=device)
            )
            self.register_buffer(
                "num_batches_tracked", _creation.zeros((), dtype=_dtype.int64, device=device)
            )
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Zero the mean, set the variance to one and the batch count to zero."""
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Reset running statistics, weight to one and bias to zero."""
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self._input_dims:
            dims = " or ".join(f"{d}D" for d in self._input_dims)
            raise ValueError(
                f"{type(self).__name__}: expected {dims} input, got {x.ndim}D "
                f"input of shape {x.shape}"
            )
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}: expected {self.num_features} channels in "
                f"dimension 1, got input of shape {x.shape}"
            )
        running_mean, running_var, use_batch_stats, factor = self._statistics_step()
        return _norm.batch_norm(
            x,
            running_mean,
            running_var,
            self.weight,
            self.bias,
            use_batch_stats,
            factor,
            self.eps,
        )

    def _statistics_step(self) -> tuple[Any, Any, bool, float]:
        """The bookkeeping of one forward, in PyTorch's order: counts the batch in
        ``num_batches_tracked`` (training with tracked statistics) and returns the running
        statistics to read or update (None where they take no part), whether the batch's own
        statistics normalise, and the update factor (momentum, or the cumulative average's
        ``1 / num_batches_tracked`` when momentum is None)."""
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked._data += 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / int(self.num_batches_tracked.item())
        use_batch_stats = self.training or self.running_mean is None
        tracked = not self.training or self.track_running_stats
        return (
            self.running_mean if tracked else None,
            self.running_var if tracked else None,
            use_batch_stats,
            factor,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.has_bias}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) or (N, C, L) inputs (``torch.nn.BatchNorm1d``)."""

    _input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over NCHW inputs, per channel (``torch.nn.BatchNorm2d``).

    ``bias=False`` (keyword only, as in PyTorch 2.13) keeps the scale but drops the shift.

    Training normalises with the batch's biased variance and updates the running variance
    with the unbiased one; evaluation uses the running statistics.
    """

    _input_dims = (4,)


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` dimensions (``torch.nn.LayerNorm``).

    Args:
        normalized_shape: An int or a sequence of ints: the trailing shape normalised over.
        eps: Added to the variance.
        elementwise_affine: Whether to learn an element-wise ``weight`` (ones) and ``bias``
            (zeros).
        bias: Whether to learn the ``bias`` (with ``elementwise_affine``).
        device: Device of the parameters.
        dtype: Dtype of the parameters.
    """

    def __init__(
        self,
        normalized_shape: Any,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps, self.elementwise_affine = float(eps), bool(elementwise_affine)
        device = device or "cpu"
        if self.elementwise_affine:
            shape = self.normalized_shape
            self.weight = Parameter(_creation.ones(shape, dtype=dtype, device=device))
            if bias:
                self.bias = Parameter(_creation.zeros(shape, dtype=dtype, device=device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """Weight to one and bias to zero."""
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return _norm.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class GroupNorm(Module):
    """Normalise groups of channels per sample (``torch.nn.GroupNorm``).

    Args:
        num_groups: Number of groups; must divide ``num_channels``.
        num_channels: Channels expected in dimension 1.
        eps: Added to the variance.
        affine: Whether to learn a per-channel ``weight`` (ones) and ``bias`` (zeros).
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Raises:
        ValueError: If ``num_groups`` does not divide ``num_channels``.
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        check.positive(num_groups, "num_groups")
        if num_channels % num_groups:
            raise ValueError(
                f"num_channels: expected a multiple of num_groups {num_groups}, got {num_channels}"
            )
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps, self.affine = float(eps), bool(affine)
        device = device or "cpu"
        if self.affine:
            self.weight = Parameter(_creation.ones(num_channels, dtype=dtype, device=device))
            if bias:
                self.bias = Parameter(_creation.zeros(num_channels, dtype=dtype, device=device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """Weight to one and bias to zero."""
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return _norm.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )


class _InstanceNorm(_BatchNorm):
    """Instance normalisation; PyTorch's defaults differ from batch norm's: no affine, no
    running statistics."""

    _input_dims = (4,)

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias
        )

    def forward(self, input: Tensor) -> Tensor:
        batched = max(self._input_dims)
        if input.ndim not in (batched - 1, batched):
            raise ValueError(
                f"{type(self).__name__}: expected {batched - 1}D (unbatched) or {batched}D "
                f"(batched) input, got {input.ndim}D input of shape {input.shape}"
            )
        channel_dim = input.ndim - batched + 1
        if input.shape[channel_dim] != self.num_features:
            if self.affine:
                raise ValueError(
                    f"{type(self).__name__}: expected input's size at dim={channel_dim} to "
                    f"match num_features ({self.num_features}), but got: "
                    f"{input.shape[channel_dim]}."
                )
            warnings.warn(
                f"input's size at dim={channel_dim} does not match num_features. You can "
                "silence this warning by not passing in num_features, which is not used "
                "because affine=False",
                stacklevel=2,
            )
        unbatched = input.ndim == batched - 1
        x = _shape.unsqueeze(input, 0) if unbatched else input
        out = _norm.instance_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training or not self.track_running_stats,
            self.momentum if self.momentum is not None else 0.0,
            self.eps,
        )
        return _shape.squeeze(out, 0) if unbatched else out

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation over (N, C, L) or unbatched (C, L) inputs
    (``torch.nn.InstanceNorm1d``)."""

    _input_dims = (3,)


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation over NCHW or unbatched (C, H, W) inputs, per sample and
    channel (``torch.nn.InstanceNorm2d``).

    ``affine`` and ``track_running_stats`` are off by default, as in PyTorch; with running
    statistics, evaluation mode normalises with them.
    """

    _input_dims = (4,)
