"""Normalisation layers as one fused node each: batch norm on the backend's kernels; layer,
group and instance norm (statistics, normalisation and affine in a pass) against ``backend.xp``."""

from __future__ import annotations

import math
from typing import Any

from convlab._ops._util import float_check, normalize_dim
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = ["batch_norm", "layer_norm", "group_norm", "instance_norm", "normalize"]


def update_running_stats(
    running_mean: Any,
    running_var: Any,
    mean: Any,
    var: Any,
    count: int,
    factor: float,
    dtype: Any,
) -> None:
    """Move the running statistics (arrays, updated in place) towards a batch's ``mean`` and
    biased ``var`` over ``count`` values per channel by ``factor``, in the input's ``dtype``:
    the running variance takes the unbiased variance, as PyTorch's."""
    running_mean *= dtype.type(1 - factor)
    running_mean += (factor * mean).astype(dtype)
    running_var *= dtype.type(1 - factor)
    running_var += (factor * var * (count / max(count - 1, 1))).astype(dtype)


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
            update_running_stats(
                running_mean, running_var, mean, var, count, average_factor, x.dtype
            )
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


class Normalize(Function):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the statistics of each row of
    ``x`` viewed as ``rows + (-1,)``: layer norm's trailing dimensions, group norm's groups.

    ``param_view`` is the shape that broadcasts ``weight`` / ``bias`` against ``x``.
    """

    def forward(
        self,
        x: Any,
        weight: Any = None,
        bias: Any = None,
        rows: tuple = (),
        param_view: tuple = (),
        eps: float = 1e-5,
    ) -> Any:
        xp = self.backend.xp
        self.shape, self.rows, self.param_view = x.shape, rows, param_view
        # read in backward only for a parameter that needs a gradient, so one that exists
        self.weight_shape: tuple = () if weight is None else weight.shape
        self.bias_shape: tuple = () if bias is None else bias.shape
        flat = x.reshape(rows + (-1,))
        if flat.shape[-1] == 0 or flat.size == 0:
            self.xhat = self.invstd = None
            out = xp.array(x, copy=True)
        else:
            # the statistics accumulate in float64: float32 sums over a large row drift
            mean = flat.mean(axis=-1, keepdims=True, dtype=xp.float64)
            var = flat.var(axis=-1, keepdims=True, dtype=xp.float64)
            self.invstd = (1 / xp.sqrt(var + eps)).astype(x.dtype)
            self.xhat = ((flat - mean.astype(x.dtype)) * self.invstd).reshape(x.shape)
            out = self.xhat
        if weight is not None:
            out = out * weight.reshape(param_view)
        if bias is not None:
            out = out + bias.reshape(param_view)
        if out is self.xhat:
            # the output is the caller's to change; backward keeps its own xhat
            out = xp.array(out, copy=True)
        self.weight = weight
        return out

    def _param_grad(self, values: Any, shape: tuple) -> Any:
        """Sum ``values`` over the dimensions a parameter is broadcast along."""
        view = (1,) * (len(self.shape) - len(self.param_view)) + tuple(self.param_view)
        axes = tuple(i for i, v in enumerate(view) if v == 1)
        return values.sum(axis=axes).reshape(shape)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        gx = gw = gb = None
        xhat = self.xhat
        if self.needs[2]:
            gb = self._param_grad(grad, self.bias_shape)
        if self.needs[1]:
            gw = (
                self._param_grad(grad * xhat, self.weight_shape)
                if xhat is not None
                else xp.zeros(self.weight_shape, grad.dtype)
            )
        if self.needs[0]:
            if xhat is None:
                return xp.zeros(self.shape, grad.dtype), gw, gb
            g = grad if self.weight is None else grad * self.weight.reshape(self.param_view)
            g = g.reshape(self.rows + (-1,))
            h = xhat.reshape(g.shape)
            # d/dx of (x - mean) * invstd: the row means of g and of g * xhat come out
            mean_g = g.mean(axis=-1, keepdims=True, dtype=xp.float64).astype(g.dtype)
            mean_gh = (g * h).mean(axis=-1, keepdims=True, dtype=xp.float64).astype(g.dtype)
            gx = ((g - mean_g - h * mean_gh) * self.invstd).reshape(self.shape)
        return gx, gw, gb


def _check_param(
    t: Tensor | None, shape: tuple, name: str, what: str, like: Tensor | None = None
) -> None:
    """``t`` is None or a tensor of ``shape`` (and of ``like``'s dtype, as PyTorch demands)."""
    if t is not None and (not isinstance(t, Tensor) or tuple(t.shape) != tuple(shape)):
        got = t.shape if isinstance(t, Tensor) else type(t).__name__
        raise ValueError(f"{what}: {name}: expected shape {tuple(shape)}, got {got}")
    if t is not None and like is not None and t._data.dtype != like._data.dtype:
        raise TypeError(
            f"{what}: {name}: expected dtype {like._data.dtype} (the input's), got {t._data.dtype}"
        )


def layer_norm(
    input: Tensor,
    normalized_shape: Any,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dimensions
    (``torch.nn.functional.layer_norm``).

    Args:
        input: Any tensor whose shape ends with ``normalized_shape``.
        normalized_shape: An int or a sequence of ints.
        weight: Element-wise scale of shape ``normalized_shape``, or None.
        bias: Element-wise shift of shape ``normalized_shape``, or None.
        eps: Added to the (biased) variance.

    Raises:
        ValueError: If the input's shape does not end with ``normalized_shape`` or a parameter
            has the wrong shape.
    """
    shape = (
        (int(normalized_shape),)
        if isinstance(normalized_shape, int)
        else tuple(int(s) for s in normalized_shape)
    )
    k = len(shape)
    if k == 0 or input.ndim < k or tuple(input.shape[-k:]) != shape:
        raise ValueError(
            f"layer_norm: expected an input of shape [*, {', '.join(map(str, shape))}] "
            f"(normalized_shape {list(shape)}), got {input.shape}"
        )
    float_check(input, "layer_norm")
    _check_param(weight, shape, "weight", "layer_norm", input)
    _check_param(bias, shape, "bias", "layer_norm", input)
    return Normalize.apply(
        input,
        weight,
        bias,
        rows=tuple(input.shape[: input.ndim - k]),
        param_view=shape,
        eps=float(eps),
    )


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each group of channels of each sample (``torch.nn.functional.group_norm``).

    Args:
        input: ``(N, C, *)``.
        num_groups: Number of groups; must divide ``C``.
        weight: Per-channel scale ``(C,)`` or None.
        bias: Per-channel shift ``(C,)`` or None.
        eps: Added to the (biased) variance.

    Raises:
        ValueError: For fewer than 2 dimensions, ``C`` not divisible by ``num_groups`` or wrong
            parameter shapes.
    """
    if input.ndim < 2:
        raise ValueError(
            f"group_norm: expected an input with at least 2 dimensions (N, C, *), "
            f"got shape {input.shape}"
        )
    float_check(input, "group_norm")
    channels = input.shape[1]
    if isinstance(num_groups, bool) or int(num_groups) <= 0 or channels % int(num_groups):
        raise ValueError(
            f"num_groups: expected a positive divisor of the {channels} channels, got {num_groups}"
        )
    _check_param(weight, (channels,), "weight", "group_norm", input)
    _check_param(bias, (channels,), "bias", "group_norm", input)
    return Normalize.apply(
        input,
        weight,
        bias,
        rows=(input.shape[0], int(num_groups)),
        param_view=(channels,) + (1,) * (input.ndim - 2),
        eps=float(eps),
    )


def instance_norm(
    input: Tensor,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel of each sample (``torch.nn.functional.instance_norm``).

    With ``use_input_stats`` the statistics are each instance's own, and ``running_mean`` /
    ``running_var`` (if given) move towards their batch average by ``momentum`` (unbiased
    variance, as PyTorch); without it the running statistics normalise every instance.

    Args:
        input: ``(N, C, *)``.
        running_mean: ``(C,)`` or None.
        running_var: ``(C,)`` or None.
        weight: Per-channel scale ``(C,)`` or None.
        bias: Per-channel shift ``(C,)`` or None.
        use_input_stats: Whether to normalise with the instance statistics.
        momentum: Running-average factor.
        eps: Added to the variance.

    Raises:
        ValueError: For fewer than 3 dimensions, wrong parameter shapes, a single value per
            instance when using input statistics, or missing running statistics when not.
    """
    if input.ndim < 3:
        raise ValueError(
            f"instance_norm: expected an input with at least 3 dimensions (N, C, *), "
            f"got shape {input.shape}"
        )
    float_check(input, "instance_norm")
    n, channels = input.shape[:2]
    for name, t in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        _check_param(t, (channels,), name, "instance_norm", input)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError(
                "instance_norm: expected running_mean and running_var when use_input_stats is False"
            )
        return batch_norm(input, running_mean, running_var, weight, bias, False, 0.0, eps)
    count = input._data.size // max(n * channels, 1)
    if count <= 1:
        raise ValueError(
            f"instance_norm: expected more than 1 spatial element when training, got input "
            f"of shape {input.shape}"
        )
    if running_mean is not None or running_var is not None:
        _update_instance_stats(input, running_mean, running_var, float(momentum), count)
    return Normalize.apply(
        input,
        weight,
        bias,
        rows=(n, channels),
        param_view=(channels,) + (1,) * (input.ndim - 2),
        eps=float(eps),
    )


def _update_instance_stats(
    x: Tensor, running_mean: Tensor | None, running_var: Tensor | None, f: float, count: int
) -> None:
    """Move the running statistics towards the batch average of the instance statistics."""
    flat = x._data.reshape(x.shape[0], x.shape[1], -1)
    xp = x._backend.xp
    if running_mean is not None:
        mean = flat.mean(axis=(0, 2), dtype=xp.float64)
        running_mean._data *= 1 - f
        running_mean._data += (f * mean).astype(running_mean._data.dtype)
    if running_var is not None:
        var = flat.var(axis=2, dtype=xp.float64).mean(axis=0) * (count / (count - 1))
        running_var._data *= 1 - f
        running_var._data += (f * var).astype(running_var._data.dtype)


class LpNormalize(Function):
    """``y = x / max(||x||_p, eps)`` along ``dim``."""

    def forward(self, x: Any, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Any:
        xp = self.backend.xp
        a = xp.abs(x)
        if p == math.inf:
            # CuPy's max has no initial=; an empty slice leaves nothing to divide anyway
            n = a.max(axis=dim, keepdims=True) if x.shape[dim] else a.sum(dim, keepdims=True)
        elif p == 2:
            n = xp.sqrt((x * x).sum(axis=dim, keepdims=True))
        else:
            n = (a**p).sum(axis=dim, keepdims=True) ** (1 / p)
        n = n.astype(x.dtype, copy=False)
        self.x, self.n, self.p, self.dim = x, n, p, dim
        self.d = xp.maximum(n, eps).astype(x.dtype, copy=False)
        self.clamped = n <= eps  # the norm is then a constant: no gradient through it
        return x / self.d

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        x, n, d, p = self.x, self.n, self.d, self.p
        inner = (grad * x).sum(axis=self.dim, keepdims=True)
        safe_n = xp.where(self.clamped, 1, n)
        if p == math.inf:
            top = (xp.abs(x) == n) & ~self.clamped
            # ties share the gradient, as PyTorch's max-norm backward
            slope = xp.sign(x) * top / xp.maximum(top.sum(axis=self.dim, keepdims=True), 1)
        elif p == 2:
            slope = x / safe_n
        else:
            a = xp.abs(x)
            # |x| ** (p - 1) with zeros kept out of the power (p < 1 would divide by zero)
            powered = xp.where(a == 0, 0, xp.where(a == 0, 1, a) ** (p - 1))
            slope = xp.sign(x) * powered / safe_n ** (p - 1)
        slope = xp.where(self.clamped, 0, slope)
        gx = grad / d - inner / (d * d) * slope
        return (gx.astype(grad.dtype, copy=False),)


def normalize(
    input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Any = None
) -> Tensor:
    """Divide by the ``p``-norm along ``dim``, at least ``eps``
    (``torch.nn.functional.normalize``).

    Args:
        input: A floating-point tensor.
        p: The norm's exponent (positive, or ``math.inf``).
        dim: The dimension normalised over.
        eps: Lower bound of the divisor.
        out: Not supported (must be None).

    Raises:
        ValueError: For a non-positive ``p`` or an ``out`` tensor.
    """
    float_check(input, "normalize")
    if out is not None:
        raise ValueError("normalize: out= is not supported by convlab")
    p = float(p)
    if not p > 0:
        raise ValueError(f"normalize: p: expected a positive exponent or inf, got {p}")
    dim = normalize_dim(dim, input.ndim)
    if input.ndim == 0:
        raise ValueError("normalize: expected an input with at least 1 dimension, got a scalar")
    return LpNormalize.apply(input, p=p, dim=dim, eps=float(eps))
