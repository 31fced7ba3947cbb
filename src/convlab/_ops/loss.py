"""Loss functions with PyTorch's names, arguments, shapes, reductions and error cases.

Cross-entropy (fused with log-softmax), negative log-likelihood, binary cross-entropy (on
probabilities and on logits), mean squared / absolute error, smooth L1 and Huber, KL
divergence and the margin ranking loss, each an autograd :class:`Function`; the soft-margin,
multi-margin, hinge-embedding, Poisson and Gaussian negative log-likelihood losses are
compositions of differentiable tensor ops with PyTorch's formulas.
Everything runs on raw backend arrays (``backend.xp``), unchanged on every backend; only
cross-entropy over float32 logits on the CPU backend takes its fused row passes
(``convlab._cpu.xent``: one log-sum-exp per row forward, one softmax pass backward).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from convlab._ops import reduce as _reduce
from convlab._ops._util import as_tensor_like, float_check, unbroadcast
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = [
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "kl_div",
    "margin_ranking_loss",
    "soft_margin_loss",
    "multilabel_soft_margin_loss",
    "multi_margin_loss",
    "hinge_embedding_loss",
    "poisson_nll_loss",
    "gaussian_nll_loss",
]

_REDUCTIONS = ("mean", "sum", "none")


class _TargetIndexError(IndexError, ValueError):
    """A class index out of range: PyTorch raises ``IndexError``; convlab's earlier releases
    raised ``ValueError``; both ``except`` clauses catch it."""


class _LossValueError(ValueError, RuntimeError):
    """A bad argument value that PyTorch reports as ``RuntimeError``; also a ``ValueError``."""


class _LossTypeError(TypeError, RuntimeError):
    """A dtype that PyTorch refuses with ``RuntimeError``; also a ``TypeError``."""


def _reduction(reduction: str, allowed: tuple[str, ...] = _REDUCTIONS) -> str:
    if reduction not in allowed:
        raise ValueError(f"reduction: expected one of {allowed}, got {reduction!r}")
    return reduction


def _legacy_reduction(
    size_average: bool | None,
    reduce: bool | None,
    reduction: str,
    allowed: tuple[str, ...] = _REDUCTIONS,
) -> str:
    """``reduction``, or the one the deprecated ``size_average`` / ``reduce`` pair stands for
    (with PyTorch's warning) when either is given."""
    if size_average is None and reduce is None:
        return _reduction(reduction, allowed)
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    result = "mean" if size_average and reduce else "sum" if reduce else "none"
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{result}' "
        "instead.",
        UserWarning,
        stacklevel=3,
    )
    return result


class _SumDiv(Function):
    """``x.sum() / divisor`` for a constant divisor (0 / 0 is NaN, silently, as in PyTorch)."""

    def forward(self, x: Any, divisor: float = 1.0) -> Any:
        self.shape, self.divisor = x.shape, divisor
        with np.errstate(divide="ignore", invalid="ignore"):
            total = x.sum() / x.dtype.type(divisor)
        return self.backend.xp.asarray(total, dtype=x.dtype)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        with np.errstate(divide="ignore", invalid="ignore"):
            g = grad / grad.dtype.type(self.divisor)
        return (xp.broadcast_to(xp.asarray(g, dtype=grad.dtype), self.shape),)


def _reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    """Apply ``"none"`` / ``"sum"`` / ``"mean"`` (the mean of no elements is NaN)."""
    if reduction == "none":
        return loss
    return _SumDiv.apply(loss, divisor=float(loss._data.size) if reduction == "mean" else 1.0)


def _float_dtype(*tensors: Tensor) -> Any:
    """The floating result dtype of PyTorch's type promotion over ``tensors``."""
    floats = [t._data.dtype for t in tensors if t._data.dtype.kind == "f"]
    return np.result_type(*floats)


def _sum_or_weighted_mean(xp: Any, loss: Any, sample_w: Any, reduction: str) -> tuple[Any, Any]:
    """``(total, denominator)`` of a class-weighted loss: the sum, or for ``"mean"`` the sum
    over the summed weights of the counted targets (0 / 0 = nan when every target is ignored,
    as PyTorch); ``denominator`` is None for ``"sum"``."""
    total = loss.sum()
    if reduction != "mean":
        return total, None
    denominator = sample_w.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        return total / denominator, denominator


def _fused_xent(backend: Any, logits: Any) -> bool:
    """Whether the CPU backend's fused cross-entropy row passes take ``logits``."""
    if backend.xp is not np:  # the GPU backend, without importing the CPU kernels
        return False
    from convlab._cpu import xent

    return xent.applies(backend, logits)


class CrossEntropy(Function):
    """Log-softmax over the class axis of (M, C) logits, then the negative log-likelihood."""

    def forward(
        self,
        logits: Any,
        target: Any,
        weight: Any = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> Any:
        xp = self.backend.xp
        c = logits.shape[1]
        valid = target != ignore_index
        safe = xp.where(valid, target, 0)
        w = xp.ones(c, dtype=logits.dtype) if weight is None else weight
        sample_w = w[safe] * valid
        # the fused row passes keep one log-sum-exp per row instead of the whole log-softmax
        # (a language model's logits are bptt * batch x vocabulary)
        self.fused = not label_smoothing and _fused_xent(self.backend, logits)
        logp: Any = None  # the log-softmax, kept only off the fused path
        if self.fused:
            from convlab._cpu import xent

            lse = xent.logsumexp_rows(logits)
            with np.errstate(invalid="ignore"):  # a row of only -inf: -inf - -inf, NaN
                picked = xp.take_along_axis(logits, safe[:, None], axis=1)[:, 0] - lse
            self.logits, self.lse = logits, lse
        else:
            shifted = logits - logits.max(axis=1, keepdims=True)
            logp = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
            picked = xp.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
        eps = logits.dtype.type(label_smoothing)
        loss = -(1 - eps) * picked * sample_w
        if label_smoothing:
            smooth = -(logp * w).sum(axis=1) / c * valid
            loss = loss + eps * smooth
        self.logp, self.safe, self.sample_w, self.valid, self.w = logp, safe, sample_w, valid, w
        self.reduction, self.eps, self.c = reduction, eps, c
        if reduction == "none":
            return loss
        total, self.denominator = _sum_or_weighted_mean(xp, loss, sample_w, reduction)
        return xp.asarray(total, dtype=logits.dtype)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        if self.reduction == "none":
            g = grad
        elif self.reduction == "sum":
            g = xp.broadcast_to(grad, self.safe.shape)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                g = xp.broadcast_to(grad / self.denominator, self.safe.shape)
        eps, c = self.eps, self.c
        with np.errstate(invalid="ignore"):  # inf * 0 when every target is ignored
            # d/dlogits of -(1-eps) w_t logp_t  - eps/C sum_j w_j logp_j (per sample)
            # ignored targets get exactly 0, even when the mean is 0 / 0 (as PyTorch)
            coef = xp.where(self.valid, (1 - eps) * self.w[self.safe] * g, 0)
            if self.fused:
                from convlab._cpu import xent

                out = xent.softmax_scaled_rows(self.logits, self.lse, coef)
                rows = xp.arange(out.shape[0])
                out[rows, self.safe] -= coef.astype(out.dtype, copy=False)
                return out, None, None
            p = xp.exp(self.logp)
            out = p * coef[:, None]
            rows = xp.arange(out.shape[0])
            out[rows, self.safe] -= coef
            if eps:
                smooth = xp.where(self.valid, (eps / c) * g, 0)
                out += smooth[:, None] * (p * self.w.sum() - self.w)
        return out.astype(self.logp.dtype, copy=False), None, None


class SoftCrossEntropy(Function):
    """Cross-entropy against class probabilities (same shape as the logits)."""

    def forward(self, logits: Any, target: Any, reduction: str = "mean") -> Any:
        xp = self.backend.xp
        shifted = logits - logits.max(axis=1, keepdims=True)
        logp = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        loss = -(target * logp).sum(axis=1)
        self.logp, self.target, self.reduction = logp, target, reduction
        if reduction == "none":
            return loss
        with np.errstate(divide="ignore", invalid="ignore"):
            total = loss.sum() if reduction == "sum" else loss.sum() / logits.dtype.type(len(loss))
        return xp.asarray(total, dtype=logits.dtype)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        m = self.logp.shape[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            g = (
                grad
                if self.reduction == "none"
                else xp.broadcast_to(grad / (m if self.reduction == "mean" else 1), (m,))
            )
        p = xp.exp(self.logp)
        gx = (p * self.target.sum(axis=1, keepdims=True) - self.target) * g[:, None]
        gt = -self.logp * g[:, None] if self.needs[1] else None
        return gx, gt


def _class_last(x: Tensor) -> Tensor:
    """(N, C, d1, ...) -> (N * d1 * ..., C)."""
    from convlab._ops import shape as _shape

    if x.ndim == 2:
        return x
    perm = (0,) + tuple(range(2, x.ndim)) + (1,)
    return _shape.reshape(_shape.permute(x, perm), (-1, x.shape[1]))


def _check_weight(weight: Any, input: Tensor, c: int) -> Tensor | None:
    """The per-class ``weight`` as a tensor of shape ``(C,)`` and the input's dtype."""
    if weight is None:
        return None
    weight = as_tensor_like(weight, input, "weight")
    if tuple(weight.shape) != (c,):
        raise _LossValueError(
            f"weight: expected a tensor of shape ({c},) (one weight per class) or None, "
            f"got shape {tuple(weight.shape)}"
        )
    if weight._data.dtype != input._data.dtype:
        raise _LossTypeError(
            f"weight: expected dtype {input._data.dtype} (the input's), got {weight._data.dtype}"
        )
    return weight


def _check_class_target(
    input: Tensor, target: Tensor, ignore_index: int, what: str
) -> tuple[Tensor, int]:
    """Validate class indices against (N, C) or (N, C, d...) input; return them flattened."""
    if target._data.dtype.kind not in "iu":
        raise _LossTypeError(
            f"target: {what} expected integer class indices, got dtype {target._data.dtype}"
        )
    expected = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        got = target.shape[0] if target.ndim else "none: a 0-d target"
        raise _LossValueError(
            f"target: expected shape {expected} for input of shape {tuple(input.shape)}, "
            f"got {tuple(target.shape)} (input batch_size {input.shape[0]}, target "
            f"batch_size {got})"
        )
    c = input.shape[1]
    t = target._data.reshape(-1)
    valid = t[t != ignore_index]
    if valid.size:
        low, high = int(valid.min()), int(valid.max())
        if low < 0 or high >= c:
            bad = low if low < 0 else high
            raise _TargetIndexError(
                f"target: class indices must be in [0, {c}) (or ignore_index="
                f"{ignore_index}), got {bad} (Target {bad} is out of bounds)"
            )
    return Tensor._wrap(t, target._backend), c


def _as_target(target: Any, input: Tensor) -> Tensor:
    return target if isinstance(target, Tensor) else as_tensor_like(target, input, "target")


def cross_entropy(
    input: Tensor,
    target: Any,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy between logits and class indices or class probabilities.

    With class indices the ``"mean"`` reduction divides by the summed weights of the targets
    that are not ``ignore_index`` (NaN when there are none, as in PyTorch); with
    probabilities it divides by the number of positions.

    Args:
        input: Logits of shape (C,), (N, C) or (N, C, d1, ...), floating point.
        target: Class indices of shape (), (N,) or (N, d1, ...), integer, or class
            probabilities with the input's shape, floating point.
        weight: Optional per-class weights of shape (C,), the input's dtype.
        size_average: Deprecated (see ``reduction``).
        ignore_index: A class index whose targets contribute neither loss nor gradient.
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
        label_smoothing: Amount in [0, 1] of uniform distribution mixed into the target.

    Returns:
        The loss: a scalar, or per position for ``reduction="none"``.

    Raises:
        ValueError: For mismatched shapes, a bad ``reduction`` or ``label_smoothing`` out of
            [0, 1].
        IndexError: For a class index outside ``[0, C)`` other than ``ignore_index`` (the
            exception is also a ``ValueError``).
        TypeError: For a non-float input, a target that is neither integer nor float, or a
            weight of another dtype.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    float_check(input, "cross_entropy input")
    if input.ndim == 0:
        raise ValueError("input: cross_entropy expected 1 or more dimensions (got 0)")
    if input.ndim == 1:
        from convlab._ops import shape as _shape

        out = cross_entropy(
            _shape.unsqueeze(input, 0),
            _unsqueeze_target(target, input),
            weight,
            ignore_index=ignore_index,
            reduction=reduction,
            label_smoothing=label_smoothing,
        )
        return _shape.squeeze(out, 0) if reduction == "none" else out
    target = _as_target(target, input)
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise _LossValueError(f"label_smoothing: expected a value in [0, 1], got {label_smoothing}")
    c = input.shape[1]
    w = _check_weight(weight, input, c)
    if target.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(
                f"target: class probabilities must have the input's shape "
                f"{input.shape}, got {target.shape}"
            )
        if target._data.dtype != input._data.dtype:
            raise _LossTypeError(
                f"target: expected dtype {input.dtype} (the input's), got {target.dtype}"
            )
        soft = _class_last(target)
        if label_smoothing:
            soft = soft * (1.0 - float(label_smoothing)) + float(label_smoothing) / c
        if w is not None:
            soft = soft * w
        out = SoftCrossEntropy.apply(_class_last(input), soft, reduction=reduction)
    else:
        flat_target, _ = _check_class_target(input, target, ignore_index, "cross_entropy")
        out = CrossEntropy.apply(
            _class_last(input),
            flat_target,
            w,
            ignore_index=int(ignore_index),
            reduction=reduction,
            label_smoothing=float(label_smoothing),
        )
    if reduction == "none" and input.ndim > 2:
        from convlab._ops import shape as _shape

        out = _shape.reshape(out, (input.shape[0],) + input.shape[2:])
    return out


def _unsqueeze_target(target: Any, input: Tensor) -> Any:
    """The target of a 1-D (C,) input as that of a batch of one: a class index () or (1,), or
    probabilities (C,)."""
    from convlab._ops import shape as _shape

    t = _as_target(target, input)
    if t._data.dtype.kind != "f" and t.ndim == 1:
        if t.shape != (1,):
            raise ValueError(
                f"target: for 1D input, 1D target must have size 1, but got target size: "
                f"{t.shape[0]}"
            )
        return t
    return _shape.unsqueeze(t, 0)


class BCEWithLogits(Function):
    def forward(self, x: Any, target: Any, weight: Any = None, pos_weight: Any = None) -> Any:
        xp = self.backend.xp
        softplus_neg = xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, 0)  # log(1 + e^-x)
        if pos_weight is None:
            loss = (1 - target) * x + softplus_neg
            self.c = None
        else:
            self.c = 1 + (pos_weight - 1) * target
            loss = (1 - target) * x + self.c * softplus_neg
        if weight is not None:
            loss = loss * weight
        self.x, self.target, self.weight, self.pw = x, target, weight, pos_weight
        return loss.astype(x.dtype, copy=False)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        x, t = self.x, self.target
        z = xp.exp(-xp.abs(x))
        sig = xp.where(x >= 0, 1 / (1 + z), z / (1 + z))
        d = sig - t if self.c is None else (1 - t) - self.c * (1 - sig)
        if self.weight is not None:
            d = d * self.weight
        gx = (grad * d).astype(x.dtype, copy=False)
        gt = None
        if self.needs[1]:
            # d/dt of (1 - t) x + (1 + (pw - 1) t) softplus(-x)
            dt = -x
            if self.pw is not None:
                dt = dt + (self.pw - 1) * (xp.log1p(z) + xp.maximum(-x, 0))
            if self.weight is not None:
                dt = dt * self.weight
            gt = unbroadcast(grad * dt, t.shape)
        return gx, gt, None, None


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Any,
    weight: Any | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Any | None = None,
) -> Tensor:
    """Sigmoid + binary cross-entropy in one numerically stable op.

    Raises:
        ValueError: If ``target``'s shape differs from ``input``'s.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    float_check(input, "binary_cross_entropy_with_logits input")
    target = as_tensor_like(target, input, "target")
    if target.shape != input.shape:
        raise ValueError(f"target: expected the input's shape {input.shape}, got {target.shape}")
    if target.dtype != input.dtype:
        target = target.to(dtype=input.dtype)
    w = None if weight is None else as_tensor_like(weight, input, "weight")
    pw = None if pos_weight is None else as_tensor_like(pos_weight, input, "pos_weight")
    loss = BCEWithLogits.apply(input, target, w, pw)
    if reduction == "none":
        return loss
    return _reduce.sum(loss) if reduction == "sum" else _reduce.mean(loss)


def mse_loss(
    input: Tensor,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Mean (or summed) squared difference, optionally weighted per element.

    Raises:
        ValueError: If the shapes differ (PyTorch only warns; silent broadcasting there is a
            classic bug, so convlab refuses it).
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    float_check(input, "mse_loss input")
    target = as_tensor_like(target, input, "target")
    _same_shape(input, target, "mse_loss")
    diff = input - target
    return _weighted(diff * diff, weight, input, reduction, weighted_mean="sum_of_weights")


def _same_shape(input: Tensor, target: Tensor, name: str) -> None:
    if target.shape != input.shape:
        raise ValueError(
            f"{name}: input shape {input.shape} and target shape {target.shape} differ (convlab "
            "does not broadcast a loss's target; PyTorch warns that it likely gives incorrect "
            "results)"
        )


def _weighted(
    loss: Tensor, weight: Any, input: Tensor, reduction: str, weighted_mean: str
) -> Tensor:
    """Reduce an elementwise loss, times an optional per-element ``weight`` (of the input's
    shape); the weighted mean divides by the summed weights (``"sum_of_weights"``) or by the
    element count (``"count"``), as PyTorch does for each loss."""
    if weight is None:
        return _reduce_loss(loss, reduction)
    weight = as_tensor_like(weight, input, "weight")
    if weight.shape != input.shape:
        raise ValueError(
            f"weight: weights and input must have the same size, got {weight.shape} and "
            f"{input.shape}"
        )
    loss = loss * weight
    if reduction == "mean" and weighted_mean == "sum_of_weights":
        return _reduce.sum(loss) / _reduce.sum(weight)
    return _reduce_loss(loss, reduction)


class NLLLoss(Function):
    """Negative log-likelihood of (M, C) log-probabilities at class indices (M,)."""

    def forward(
        self,
        logp: Any,
        target: Any,
        weight: Any = None,
        ignore_index: int = -100,
        reduction: str = "mean",
    ) -> Any:
        xp = self.backend.xp
        valid = target != ignore_index
        safe = xp.where(valid, target, 0)
        w = xp.ones(logp.shape[1], dtype=logp.dtype) if weight is None else weight
        sample_w = w[safe] * valid
        picked = xp.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
        loss = -picked * sample_w
        self.shape, self.safe, self.reduction = logp.shape, safe, reduction
        self.valid, self.w_safe = valid, w[safe]
        if reduction == "none":
            return loss.astype(logp.dtype, copy=False)
        total, self.denominator = _sum_or_weighted_mean(xp, loss, sample_w, reduction)
        return xp.asarray(total, dtype=logp.dtype)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 when all are ignored
            if self.reduction == "mean":
                grad = grad / self.denominator
            # ignored targets get exactly 0, even when the mean is 0 / 0 (as PyTorch)
            coef = xp.where(self.valid, -self.w_safe * grad, 0).astype(grad.dtype, copy=False)
        out = xp.zeros(self.shape, dtype=grad.dtype)
        out[xp.arange(self.shape[0]), self.safe] = coef
        return out, None, None


def nll_loss(
    input: Tensor,
    target: Any,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood: ``-weight[t] * input[n, t]`` for each target class ``t``.

    The ``"mean"`` reduction divides by the summed weights of the targets that are not
    ``ignore_index`` (NaN when every target is ignored, or the batch is empty).

    Args:
        input: Log-probabilities of shape (C,), (N, C) or (N, C, d1, ...), floating point.
        target: Class indices of shape (), (N,) or (N, d1, ...), integer.
        weight: Optional per-class weights of shape (C,), the input's dtype.
        size_average: Deprecated (see ``reduction``).
        ignore_index: A class index whose targets contribute neither loss nor gradient.
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Returns:
        The loss: a scalar, or per position for ``reduction="none"``.

    Raises:
        ValueError: For a 0-d input, mismatched shapes or a bad ``reduction``.
        IndexError: For a class index outside ``[0, C)`` other than ``ignore_index`` (the
            exception is also a ``ValueError``).
        TypeError: For a non-float input, a non-integer target or a weight of another dtype.
    """
    from convlab._ops import shape as _shape

    reduction = _legacy_reduction(size_average, reduce, reduction)
    float_check(input, "nll_loss input")
    if input.ndim == 0:
        raise ValueError("input: nll_loss expected 1 or more dimensions (got 0)")
    if input.ndim == 1:
        target = _as_target(target, input)
        if target._data.dtype.kind not in "iu":
            raise _LossTypeError(
                f"target: nll_loss expected integer class indices, got dtype {target.dtype}"
            )
        out = nll_loss(
            _shape.unsqueeze(input, 0),
            _unsqueeze_target(target, input),
            weight,
            ignore_index=ignore_index,
            reduction=reduction,
        )
        return _shape.squeeze(out, 0) if reduction == "none" else out
    target = _as_target(target, input)
    flat_target, c = _check_class_target(input, target, ignore_index, "nll_loss")
    out = NLLLoss.apply(
        _class_last(input),
        flat_target,
        _check_weight(weight, input, c),
        ignore_index=int(ignore_index),
        reduction=reduction,
    )
    if reduction == "none" and input.ndim > 2:
        out = _shape.reshape(out, (input.shape[0],) + input.shape[2:])
    return out


class BinaryCrossEntropy(Function):
    """``-w (t log x + (1 - t) log(1 - x))`` with each log clamped to -100, as PyTorch."""

    def forward(self, x: Any, t: Any, weight: Any = None) -> Any:
        xp = self.backend.xp
        with np.errstate(divide="ignore", invalid="ignore"):
            log_x = xp.maximum(xp.log(x), -100)
            log_1mx = xp.maximum(xp.log1p(-x), -100)
        loss = -(t * log_x + (1 - t) * log_1mx)
        if weight is not None:
            loss = loss * weight
        self.x, self.t, self.weight = x, t, weight
        return loss.astype(x.dtype, copy=False)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        x, t = self.x, self.t
        g = grad if self.weight is None else grad * self.weight
        # PyTorch's gradient: (x - t) / max(x (1 - x), EPSILON), its EPSILON the float32 1e-12
        gx = g * (x - t) / xp.maximum((1 - x) * x, x.dtype.type(np.float32(1e-12)))
        gt = None
        if self.needs[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                gt = (g * (xp.log1p(-x) - xp.log(x))).astype(t.dtype, copy=False)
        return gx.astype(x.dtype, copy=False), gt, None


def _check_unit_interval(t: Tensor, name: str) -> None:
    data = t._data
    if data.size and not bool(((data >= 0) & (data <= 1)).all()):
        raise _LossValueError(f"{name}: all elements of {name} should be between 0 and 1")


def binary_cross_entropy(
    input: Tensor,
    target: Any,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Binary cross-entropy between probabilities ``input`` and ``target``.

    Each log is clamped to at least -100, so an input of exactly 0 or 1 gives a finite loss,
    and the input's gradient divides by ``max(x (1 - x), 1e-12)``, both as in PyTorch.

    Args:
        input: Probabilities in [0, 1], floating point, any shape.
        target: Values in [0, 1] of the input's shape and dtype.
        weight: Optional rescaling weights, broadcastable to the input's shape.
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` (over all elements) or ``"sum"``.

    Returns:
        The loss: a scalar, or per element for ``reduction="none"``.

    Raises:
        ValueError: For a target shape that differs from the input's, a weight that does
            not broadcast to it, a bad ``reduction``, or an input or target element outside
            [0, 1] (that one is also a ``RuntimeError``, as in PyTorch).
        TypeError: For a non-float input or a target of another dtype.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    float_check(input, "binary_cross_entropy input")
    target = _as_target(target, input)
    if target.shape != input.shape:
        raise ValueError(
            f"target: using a target size ({target.shape}) that is different to the input "
            f"size ({input.shape}) is deprecated. Please ensure they have the same size."
        )
    if target._data.dtype != input._data.dtype:
        raise _LossTypeError(
            f"target: expected dtype {input._data.dtype} (the input's), got {target._data.dtype}"
        )
    w = None
    if weight is not None:
        w = as_tensor_like(weight, input, "weight")
        try:
            shape = np.broadcast_shapes(tuple(w.shape), tuple(input.shape))
        except ValueError:
            shape = None
        if shape != tuple(input.shape):
            raise ValueError(
                f"weight: shape {w.shape} does not broadcast to the input's shape {input.shape}"
            )
    _check_unit_interval(input, "input")
    _check_unit_interval(target, "target")
    loss = BinaryCrossEntropy.apply(input, target, w)
    return _reduce_loss(loss, reduction)


class _Regression(Function):
    """Elementwise loss of ``d = input - target``: ``"l1"`` |d|, ``"smooth_l1"`` (``param``
    beta) or ``"huber"`` (``param`` delta)."""

    def forward(self, x: Any, t: Any, kind: str = "l1", param: float = 1.0) -> Any:
        xp = self.backend.xp
        # the promoted float dtype; PyTorch's Huber loss keeps the input's
        promote = t.dtype.kind == "f" and kind != "huber"
        dtype = np.result_type(x.dtype, t.dtype) if promote else x.dtype
        d = x.astype(dtype, copy=False) - t.astype(dtype, copy=False)
        a = xp.abs(d)
        p = dtype.type(param)
        if kind == "l1":
            loss = a
        elif kind == "smooth_l1":
            loss = xp.where(a < p, 0.5 * d * d / p, a - 0.5 * p)
        else:
            loss = xp.where(a < p, 0.5 * d * d, p * (a - 0.5 * p))
        self.d, self.kind, self.p, self.xt, self.tt = d, kind, p, x.dtype, t.dtype
        return loss.astype(dtype, copy=False)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        d, p = self.d, self.p
        if self.kind == "l1":
            slope = xp.sign(d)
        elif self.kind == "smooth_l1":
            slope = xp.where(d < -p, -1, xp.where(d > p, 1, d / p))
        else:
            slope = xp.where(d < -p, -p, xp.where(d > p, p, d))
        g = grad * slope
        gt = (-g).astype(self.tt, copy=False) if self.needs[1] else None
        return g.astype(self.xt, copy=False), gt


def _regression(name: str, input: Tensor, target: Any, kind: str, param: float) -> Tensor:
    float_check(input, f"{name} input")
    target = as_tensor_like(target, input, "target")
    _same_shape(input, target, name)
    return _Regression.apply(input, target, kind=kind, param=float(param))


def l1_loss(
    input: Tensor,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Mean (or summed) absolute difference, optionally weighted per element.

    Args:
        input: Floating-point tensor.
        target: Tensor of the input's shape.
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``; with ``weight`` the mean divides by
            the summed weights, as in PyTorch.
        weight: Optional per-element weights of the input's shape.

    Returns:
        The loss: a scalar, or per element for ``reduction="none"``.

    Raises:
        ValueError: For differing shapes (PyTorch warns and broadcasts) or a bad ``reduction``.
        TypeError: For a non-float input.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    loss = _regression("l1_loss", input, target, "l1", 1.0)
    return _weighted(loss, weight, input, reduction, weighted_mean="sum_of_weights")


def smooth_l1_loss(
    input: Tensor,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """Smooth L1: ``0.5 d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta``.

    ``beta=0`` is the L1 loss, as in PyTorch.

    Args:
        input: Floating-point tensor.
        target: Tensor of the input's shape.
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
        beta: Where the loss turns from quadratic to linear; non-negative.

    Returns:
        The loss: a scalar, or per element for ``reduction="none"``.

    Raises:
        ValueError: For differing shapes (PyTorch warns and broadcasts), a bad ``reduction``,
            or a negative ``beta`` (also a ``RuntimeError``, as in PyTorch).
        TypeError: For a non-float input.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if beta < 0:
        raise _LossValueError(
            f"beta: smooth_l1_loss does not support negative values for beta, got {beta}"
        )
    kind = "l1" if beta == 0 else "smooth_l1"
    return _reduce_loss(_regression("smooth_l1_loss", input, target, kind, beta), reduction)


def huber_loss(
    input: Tensor,
    target: Any,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Tensor | None = None,
) -> Tensor:
    """Huber loss: ``0.5 d**2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``.

    Args:
        input: Floating-point tensor.
        target: Tensor of the input's shape.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``; with ``weight`` the mean divides by
            the element count, as in PyTorch.
        delta: Where the loss turns from quadratic to linear; positive.
        weight: Optional per-element weights of the input's shape.

    Returns:
        The loss: a scalar, or per element for ``reduction="none"``.

    Raises:
        ValueError: For differing shapes (PyTorch warns and broadcasts), a bad ``reduction``,
            or a non-positive ``delta`` (also a ``RuntimeError``, as in PyTorch).
        TypeError: For a non-float input.
    """
    _reduction(reduction)
    if not delta > 0:
        raise _LossValueError(
            f"delta: huber_loss does not support non-positive values for delta, got {delta}"
        )
    loss = _regression("huber_loss", input, target, "huber", delta)
    return _weighted(loss, weight, input, reduction, weighted_mean="count")


class KLDiv(Function):
    """Pointwise KL divergence: ``xlogy(t, t) - t x`` or, for log targets, ``e^t (t - x)``."""

    def forward(self, x: Any, t: Any, log_target: bool = False) -> Any:
        xp = self.backend.xp
        dtype = np.result_type(*[a.dtype for a in (x, t) if a.dtype.kind == "f"])
        x, t = x.astype(dtype, copy=False), t.astype(dtype, copy=False)
        if log_target:
            et = xp.exp(t)
            loss = et * (t - x)
            self.et = et
        else:
            positive = t > 0
            log_t = xp.log(xp.where(positive, t, 1))
            # xlogy(t, t): 0 at t = 0, NaN for t < 0 (log of a negative), as in PyTorch
            xlogy = xp.where(positive, t * log_t, xp.where(t == 0, 0, dtype.type("nan")))
            loss = xlogy - t * x
            self.log_t = log_t
        self.x, self.t, self.log_target = x, t, log_target
        self.shapes = (self.x.shape, self.t.shape)
        return loss

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        x, t = self.x, self.t
        gx = gt = None
        full = grad.shape
        if self.needs[0]:
            w = self.et if self.log_target else t
            gx = unbroadcast(xp.broadcast_to(-grad * w, full), self.shapes[0])
        if self.needs[1]:
            if self.log_target:
                d = self.et * (t - x + 1)
            else:
                # d/dt xlogy(t, t) = xlogy(t != 0, t) + t / t: NaN at t = 0, as PyTorch
                nan = t.dtype.type("nan")
                d = xp.where(t > 0, self.log_t + 1, nan) - x
            gt = unbroadcast(xp.broadcast_to(grad * d, full), self.shapes[1])
        return gx, gt


def kl_div(
    input: Tensor,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """Kullback-Leibler divergence of ``target`` from log-probabilities ``input``.

    Pointwise ``target * (log(target) - input)`` (0 where the target is 0), or
    ``exp(target) * (target - input)`` with ``log_target=True``; input and target broadcast.

    Args:
        input: Log-probabilities, floating point.
        target: Probabilities (or log-probabilities with ``log_target``).
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"batchmean"`` (the sum divided by the batch size: the
            mathematical KL divergence), ``"sum"`` or ``"mean"`` (over every element; PyTorch
            warns that this divides by the support size too).
        log_target: Whether ``target`` is given in log space.

    Returns:
        The loss: a scalar, or per element for ``reduction="none"``.

    Raises:
        ValueError: For a bad ``reduction`` or shapes that do not broadcast.
        TypeError: For a non-float input.
    """
    allowed = _REDUCTIONS + ("batchmean",)
    if size_average is None and reduce is None:
        _reduction(reduction, allowed)
        if reduction == "mean":
            warnings.warn(
                "reduction: 'mean' divides the total loss by both the batch size and the "
                "support size.'batchmean' divides only by the batch size, and aligns with the "
                "KL div math definition.'mean' will be changed to behave the same as "
                "'batchmean' in the next major release.",
                UserWarning,
                stacklevel=2,
            )
    else:
        reduction = _legacy_reduction(size_average, reduce, reduction, allowed)
    float_check(input, "kl_div input")
    target = as_tensor_like(target, input, "target")
    try:
        np.broadcast_shapes(tuple(input.shape), tuple(target.shape))
    except ValueError:
        raise ValueError(
            f"target: shape {target.shape} does not broadcast with the input's {input.shape}"
        ) from None
    loss = KLDiv.apply(input, target, log_target=bool(log_target))
    if reduction == "batchmean":
        if input.ndim == 0:
            return _reduce_loss(loss, "sum")
        return _SumDiv.apply(loss, divisor=float(input.shape[0]))
    return _reduce_loss(loss, reduction)


class MarginRanking(Function):
    """``max(0, -y (x1 - x2) + margin)``, its gradient passing where the argument is >= 0
    (``clamp_min``'s convention, as PyTorch)."""

    def forward(self, x1: Any, x2: Any, y: Any, margin: float = 0.0) -> Any:
        xp = self.backend.xp
        dtype = np.result_type(*[a.dtype for a in (x1, x2, y) if a.dtype.kind == "f"])
        x1, x2, y = (a.astype(dtype, copy=False) for a in (x1, x2, y))
        diff = x1 - x2
        z = -y * diff + dtype.type(margin)
        self.y, self.diff, self.mask = y, diff, z >= 0
        self.shapes = (x1.shape, x2.shape, y.shape)
        return xp.maximum(z, 0).astype(dtype, copy=False)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        g = xp.where(self.mask, grad, 0)
        full = g.shape
        out = []
        for i, term in enumerate((-self.y, self.y, -self.diff)):
            out.append(
                unbroadcast(xp.broadcast_to(g * term, full), self.shapes[i])
                if self.needs[i]
                else None
            )
        return tuple(out)


def margin_ranking_loss(
    input1: Tensor,
    input2: Tensor,
    target: Any,
    margin: float = 0.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Margin ranking loss: ``max(0, -target * (input1 - input2) + margin)``.

    Args:
        input1: Scores, floating point.
        input2: Scores, the same number of dimensions (sizes broadcast).
        target: 1 where ``input1`` should rank higher, -1 where ``input2`` should; the same
            number of dimensions.
        margin: The margin.
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Returns:
        The loss: a scalar, or per element for ``reduction="none"``.

    Raises:
        ValueError: For inputs of different numbers of dimensions (also a ``RuntimeError``, as
            in PyTorch), sizes that do not broadcast, or a bad ``reduction``.
        TypeError: For a non-float ``input1``.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    float_check(input1, "margin_ranking_loss input1")
    input2 = as_tensor_like(input2, input1, "input2")
    target = as_tensor_like(target, input1, "target")
    if not input1.ndim == input2.ndim == target.ndim:
        raise _LossValueError(
            "margin_ranking_loss: all input tensors should have the same number of dimensions "
            f"but got sizes: input1: {input1.shape}, input2: {input2.shape}, target: "
            f"{target.shape}"
        )
    try:
        np.broadcast_shapes(tuple(input1.shape), tuple(input2.shape), tuple(target.shape))
    except ValueError:
        raise _LossValueError(
            f"margin_ranking_loss: sizes do not broadcast: input1: {input1.shape}, input2: "
            f"{input2.shape}, target: {target.shape}"
        ) from None
    loss = MarginRanking.apply(input1, input2, target, margin=float(margin))
    return _reduce_loss(loss, reduction)


def soft_margin_loss(
    input: Tensor,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Two-class logistic loss ``log(1 + exp(-target * input))`` with targets 1 or -1.

    Raises:
        ValueError: If the shapes differ, or for a bad ``reduction``.
        TypeError: For a non-float ``input``.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    float_check(input, "soft_margin_loss input")
    target = as_tensor_like(target, input, "target")
    _same_shape(input, target, "soft_margin_loss")
    return _reduce_loss((-input * target).exp().log1p(), reduction)


def multilabel_soft_margin_loss(
    input: Tensor,
    target: Any,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Multi-label one-versus-all logistic loss, averaged over the classes (the last
    dimension): ``-(t log sigmoid(x) + (1 - t) log sigmoid(-x))``.

    Args:
        input: ``(N, C)`` (or ``(C,)``) logits.
        target: 0 / 1 labels of the same shape.
        weight: A per-class weight broadcast against the loss.
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"`` (one value per sample), ``"mean"`` or ``"sum"``.

    Raises:
        ValueError: If the shapes differ, or for a bad ``reduction``.
        TypeError: For a non-float ``input``.
    """
    from convlab._ops.activation import logsigmoid

    reduction = _legacy_reduction(size_average, reduce, reduction)
    float_check(input, "multilabel_soft_margin_loss input")
    target = as_tensor_like(target, input, "target")
    _same_shape(input, target, "multilabel_soft_margin_loss")
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * as_tensor_like(weight, input, "weight")
    c = input.shape[-1] if input.ndim else 1
    loss = loss.sum(input.ndim - 1) / c if input.ndim else loss
    return _reduce_loss(loss, reduction)


def multi_margin_loss(
    input: Tensor,
    target: Any,
    p: int = 1,
    margin: float = 1.0,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Multi-class hinge loss: per sample, ``sum_{j != y} max(0, margin - x[y] + x[j])**p``
    times ``weight[y]``, over the number of classes.

    Args:
        input: ``(N, C)`` or ``(C,)`` scores, floating point.
        target: ``(N,)`` or ``()`` class indices.
        p: 1 or 2.
        margin: The margin.
        weight: ``(C,)`` class weights.
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Raises:
        ValueError: For ``p`` other than 1 or 2, shapes that do not fit or a class index out
            of range (both also a ``RuntimeError``, as PyTorch), a bad ``weight`` or
            ``reduction``.
        TypeError: For a non-float ``input`` or non-integer ``target``.
    """
    import convlab

    reduction = _legacy_reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: p: only p == 1 and p == 2 supported, got {p!r}")
    float_check(input, "multi_margin_loss input")
    target = as_tensor_like(target, input, "target")
    if target._data.dtype.kind not in "iu":
        raise _LossTypeError(
            f"multi_margin_loss: target: expected integer class indices, got {target.dtype}"
        )
    squeeze = input.ndim <= 1
    x = input.reshape(1, -1) if squeeze else input
    y = target.reshape(1) if squeeze else target
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise _LossValueError(
            f"multi_margin_loss: expected input (N, C) or (C,) and target (N,) or (), got "
            f"{tuple(input.shape)} and {tuple(target.shape)}"
        )
    c = x.shape[1]
    xp = x._backend.xp
    if y._data.size and (int(xp.min(y._data)) < 0 or int(xp.max(y._data)) >= c):
        raise _LossValueError(
            f"multi_margin_loss: target out of range: expected indices in [0, {c})"
        )
    picked = x.gather(1, y.reshape(-1, 1))
    h = (margin - picked + x).clamp_min(0)
    if p == 2:
        h = h * h
    others = Tensor._wrap(xp.arange(c)[None, :] != y._data[:, None], x._backend)
    h = convlab.where(others, h, convlab.zeros_like(h))
    if weight is not None:
        w = as_tensor_like(weight, input, "weight")
        if w.shape != (c,):
            raise ValueError(f"weight: expected a tensor of shape ({c},), got {w.shape}")
        h = h * w[y].reshape(-1, 1)
    loss = h.sum(1) / c
    if squeeze:
        loss = loss.reshape(())
    return _reduce_loss(loss, reduction)


def hinge_embedding_loss(
    input: Tensor,
    target: Any,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``input`` where ``target`` is 1, ``max(0, margin - input)`` where it is -1 (both
    terms where it is neither, as PyTorch).

    Raises:
        ValueError: If the shapes differ, or for a bad ``reduction``.
        TypeError: For a non-float ``input``.
    """
    import convlab

    reduction = _legacy_reduction(size_average, reduce, reduction)
    float_check(input, "hinge_embedding_loss input")
    target = as_tensor_like(target, input, "target")
    _same_shape(input, target, "hinge_embedding_loss")
    zeros = convlab.zeros_like(input)
    below = convlab.where(target != 1, (margin - input).clamp_min(0), zeros)
    kept = convlab.where(target != -1, input, zeros)
    return _reduce_loss(below + kept, reduction)


def poisson_nll_loss(
    input: Tensor,
    target: Any,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Poisson negative log-likelihood: ``exp(input) - target * input`` (``log_input``) or
    ``input - target * log(input + eps)``, plus Stirling's approximation of
    ``log(target!)`` where ``target > 1`` with ``full``.

    Raises:
        ValueError: If the shapes differ, or for a bad ``reduction``.
        TypeError: For a non-float ``input``.
    """
    import convlab

    reduction = _legacy_reduction(size_average, reduce, reduction)
    float_check(input, "poisson_nll_loss input")
    target = as_tensor_like(target, input, "target")
    _same_shape(input, target, "poisson_nll_loss")
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        big = target > 1
        # log of a safe stand-in where target <= 1: no log(0) in the masked-out branch
        t = convlab.where(big, target, convlab.ones_like(target))
        stirling = t * t.log() - t + 0.5 * (2 * math.pi * t).log()
        loss = loss + convlab.where(big, stirling, convlab.zeros_like(stirling))
    return _reduce_loss(loss, reduction)


def gaussian_nll_loss(
    input: Tensor,
    target: Any,
    var: Tensor | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:
    """Gaussian negative log-likelihood ``0.5 * (log(var) + (input - target)**2 / var)``
    (plus ``0.5 * log(2 pi)`` with ``full``); ``var`` is clamped to at least ``eps`` in value
    only (the gradient passes as if unclamped, as PyTorch).

    Args:
        input: Predicted means, floating point.
        target: Samples, the input's shape.
        var: Predicted variances: the input's shape, one dimension fewer (the last), one
            dimension of size 1 where the input's differs, or a float.
        full: Add the constant term.
        eps: The smallest variance used.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Raises:
        ValueError: For a negative variance, a ``var`` of the wrong size, or a bad
            ``reduction``.
        TypeError: For a non-float ``input``.
    """
    float_check(input, "gaussian_nll_loss input")
    target = as_tensor_like(target, input, "target")
    if isinstance(var, float):
        if var < 0:
            raise ValueError("gaussian_nll_loss: var has negative entry/entries")
        var = as_tensor_like(var, input, "var").expand(*input.shape)
    else:
        var = as_tensor_like(var, input, "var")
        if bool((var._data < 0).any()):
            raise ValueError("gaussian_nll_loss: var has negative entry/entries")
    if var.shape != input.shape:
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (
            input.ndim == var.ndim and sum(v for i, v in zip(input.shape, var.shape) if i != v) == 1
        ):
            raise ValueError(
                f"gaussian_nll_loss: var is of incorrect size {tuple(var.shape)} for input "
                f"{tuple(input.shape)}"
            )
    reduction = _reduction(reduction)
    var = var + (var.clamp_min(eps) - var).detach()
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce_loss(loss, reduction)
