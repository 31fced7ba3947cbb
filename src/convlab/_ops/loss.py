"""Loss functions: cross-entropy (fused with log-softmax), BCE with logits, mean squared error."""

from __future__ import annotations

from typing import Any

from convlab._ops import reduce as _reduce
from convlab._ops._util import as_tensor_like, float_check, unbroadcast
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = ["cross_entropy", "binary_cross_entropy_with_logits", "mse_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _reduction(reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


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
        shifted = logits - logits.max(axis=1, keepdims=True)
        logp = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        valid = target != ignore_index
        safe = xp.where(valid, target, 0)
        w = xp.ones(c, dtype=logits.dtype) if weight is None else weight
        sample_w = w[safe] * valid
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
        total = loss.sum()
        if reduction == "mean":
            self.denominator = sample_w.sum()
            total = total / self.denominator
        return xp.asarray(total, dtype=logits.dtype)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        if self.reduction == "none":
            g = grad
        elif self.reduction == "sum":
            g = xp.broadcast_to(grad, self.safe.shape)
        else:
            g = xp.broadcast_to(grad / self.denominator, self.safe.shape)
        p = xp.exp(self.logp)
        eps, c = self.eps, self.c
        # d/dlogits of -(1-eps) w_t logp_t  - eps/C sum_j w_j logp_j (per sample)
        coef = (1 - eps) * self.sample_w * g
        out = p * coef[:, None]
        rows = xp.arange(out.shape[0])
        out[rows, self.safe] -= coef
        if eps:
            smooth = (eps / c) * g * self.valid
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
        return xp.asarray(loss.sum() if reduction == "sum" else loss.mean(), dtype=logits.dtype)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        m = self.logp.shape[0]
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


def cross_entropy(
    input: Tensor,
    target: Any,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy between logits (N, C) or (N, C, d...) and class indices or probabilities.

    Raises:
        ValueError: For mismatched shapes or a class index outside ``[0, C)`` (other than
            ``ignore_index``).
        TypeError: For a non-float input or a float target that is not a probability tensor.
    """
    _reduction(reduction)
    float_check(input, "cross_entropy input")
    if input.ndim == 1:
        from convlab._ops import shape as _shape

        out = cross_entropy(
            _shape.unsqueeze(input, 0),
            _unsqueeze_target(target, input),
            weight,
            ignore_index,
            reduction,
            label_smoothing,
        )
        return _shape.squeeze(out, 0) if reduction == "none" else out
    if input.ndim < 2:
        raise ValueError(
            f"cross_entropy: expected input of shape (N, C) or (N, C, d...), got {input.shape}"
        )
    target = as_tensor_like(target, input, "target") if not isinstance(target, Tensor) else target
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"label_smoothing: expected a value in [0, 1], got {label_smoothing}")
    c = input.shape[1]
    if target.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(
                f"target: class probabilities must have the input's shape "
                f"{input.shape}, got {target.shape}"
            )
        out = SoftCrossEntropy.apply(_class_last(input), _class_last(target), reduction=reduction)
    else:
        if target.dtype.kind not in "iu":
            raise TypeError(
                f"target: expected integer class indices or float probabilities, "
                f"got dtype {target.dtype}"
            )
        expected = (input.shape[0],) + input.shape[2:]
        if target.shape != expected:
            raise ValueError(
                f"target: expected shape {expected} for input of shape "
                f"{input.shape}, got {target.shape}"
            )
        t = target.data.reshape(-1)
        valid = t[t != ignore_index]
        if valid.size and (int(valid.min()) < 0 or int(valid.max()) >= c):
            bad = int(valid.min()) if int(valid.min()) < 0 else int(valid.max())
            raise ValueError(
                f"target: class indices must be in [0, {c}) (or ignore_index="
                f"{ignore_index}), got {bad}"
            )
        if weight is not None and weight.shape != (c,):
            raise ValueError(f"weight: expected shape ({c},), got {weight.shape}")
        flat_target = Tensor._wrap(t, target._backend)
        out = CrossEntropy.apply(
            _class_last(input),
            flat_target,
            weight,
            ignore_index=int(ignore_index),
            reduction=reduction,
            label_smoothing=float(label_smoothing),
        )
    if reduction == "none" and input.ndim > 2:
        from convlab._ops import shape as _shape

        out = _shape.reshape(out, (input.shape[0],) + input.shape[2:])
    return out


def _unsqueeze_target(target: Any, input: Tensor) -> Any:
    from convlab._ops import shape as _shape

    t = as_tensor_like(target, input, "target") if not isinstance(target, Tensor) else target
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
    reduction: str = "mean",
    pos_weight: Any | None = None,
) -> Tensor:
    """Sigmoid + binary cross-entropy in one numerically stable op.

    Raises:
        ValueError: If ``target``'s shape differs from ``input``'s.
    """
    _reduction(reduction)
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


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean (or summed) squared difference.

    Raises:
        ValueError: If the shapes differ (PyTorch only warns; silent broadcasting there is a
            classic bug, so convlab refuses it).
    """
    _reduction(reduction)
    float_check(input, "mse_loss input")
    target = as_tensor_like(target, input, "target")
    if target.shape != input.shape:
        raise ValueError(
            f"mse_loss: input shape {input.shape} and target shape {target.shape} differ"
        )
    diff = input - target
    sq = diff * diff
    if reduction == "none":
        return sq
    return _reduce.sum(sq) if reduction == "sum" else _reduce.mean(sq)
