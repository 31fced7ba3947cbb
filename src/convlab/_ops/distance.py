"""Distances and similarities between batches of vectors, and the losses built on them.

``cosine_similarity``, ``pairwise_distance``, ``triplet_margin_loss`` and
``cosine_embedding_loss`` with PyTorch's formulas (its epsilons in the same places), written
as compositions of differentiable tensor ops, so their gradients follow from autograd on
every backend.
"""

from __future__ import annotations

import math
from typing import Any

from convlab._ops._util import as_tensor_like, float_check, normalize_dim
from convlab._tensor import Tensor

__all__ = [
    "cosine_similarity",
    "pairwise_distance",
    "triplet_margin_loss",
    "cosine_embedding_loss",
]


def _floor_value(t: Tensor, low: float) -> Tensor:
    """``t`` with values below ``low`` raised to it, the gradient passing unchanged (PyTorch
    clamps its norms under ``no_grad``)."""
    return t + (t.clamp_min(low) - t).detach()


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    from convlab._ops.loss import _reduce_loss, _reduction

    return _reduce_loss(loss, _reduction(reduction))


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim``
    (``torch.nn.functional.cosine_similarity``).

    Each vector is divided by its norm (at least ``eps``) before the dot product.

    Args:
        x1: A floating-point tensor.
        x2: A tensor broadcastable with ``x1``.
        dim: The dimension of the vectors.
        eps: The smallest norm divided by.

    Returns:
        The similarities: the broadcast shape without ``dim``.

    Raises:
        TypeError: For non-float inputs.
        ValueError: For shapes that do not broadcast (also a ``RuntimeError``).
        IndexError: For ``dim`` out of range.
    """
    float_check(x1, "cosine_similarity x1")
    x2 = as_tensor_like(x2, x1, "x2")
    float_check(x2, "cosine_similarity x2")
    _check_broadcast("cosine_similarity", x1, x2)
    import numpy as np

    shape = np.broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    # the norms are over the broadcast vectors (a stretched x2 has a longer vector), as PyTorch
    x1, x2 = x1.expand(*shape), x2.expand(*shape)
    dim = normalize_dim(dim, len(shape))
    n1 = _floor_value(x1.pow(2).sum(dim, keepdim=True).sqrt(), eps)
    n2 = _floor_value(x2.pow(2).sum(dim, keepdim=True).sqrt(), eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


class _ShapeError(ValueError, RuntimeError):
    """Shapes that do not broadcast: PyTorch raises ``RuntimeError``."""


def _check_broadcast(name: str, *tensors: Tensor) -> None:
    import numpy as np

    try:
        np.broadcast_shapes(*(tuple(t.shape) for t in tensors))
    except ValueError:
        shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
        raise _ShapeError(f"{name}: the input shapes do not broadcast: {shapes}") from None


def _vector_norm_last(d: Tensor, p: float, keepdim: bool) -> Tensor:
    """The ``p``-norm over the last dimension, as a composition of differentiable ops."""
    if p == math.inf:
        return d.abs().amax(-1, keepdim=keepdim)
    if p == 2:
        return d.pow(2).sum(-1, keepdim=keepdim).sqrt()
    if p == 1:
        return d.abs().sum(-1, keepdim=keepdim)
    return d.abs().pow(p).sum(-1, keepdim=keepdim).pow(1.0 / p)


def pairwise_distance(
    x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> Tensor:
    """The ``p``-norm of ``x1 - x2 + eps`` over the last dimension
    (``torch.nn.functional.pairwise_distance``).

    Args:
        x1: A floating-point tensor, ``(N, D)`` or ``(D,)``.
        x2: A tensor broadcastable with ``x1``.
        p: The norm's order (``>= 1`` or ``inf``).
        eps: Added to the difference, so the norm's gradient is defined at zero.
        keepdim: Keep the reduced dimension.

    Returns:
        The distances.

    Raises:
        TypeError: For non-float inputs.
        ValueError: For a ``p`` below 1 or shapes that do not broadcast.
    """
    float_check(x1, "pairwise_distance x1")
    x2 = as_tensor_like(x2, x1, "x2")
    float_check(x2, "pairwise_distance x2")
    _check_broadcast("pairwise_distance", x1, x2)
    p = float(p)
    if not p > 0:
        raise ValueError(f"pairwise_distance: p: expected a positive order or inf, got {p}")
    d = x1 - x2 + eps
    if d.ndim == 0:
        d = d.reshape(1)
    return _vector_norm_last(d, p, keepdim)


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``max(d(a, p) - d(a, n) + margin, 0)`` with :func:`pairwise_distance`
    (``torch.nn.functional.triplet_margin_loss``).

    Args:
        anchor: Embeddings, ``(N, D)`` or ``(D,)``, floating point.
        positive: Embeddings of the same class, the same number of dimensions.
        negative: Embeddings of another class, the same number of dimensions.
        margin: The margin.
        p: The distance's norm order.
        eps: See :func:`pairwise_distance`.
        swap: Use ``min(d(a, n), d(p, n))`` as the negative distance (distance swap).
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Raises:
        ValueError: For inputs of different numbers of dimensions (also a
            ``RuntimeError``), a non-positive margin, or a bad ``reduction``.
        TypeError: For non-float inputs.
    """
    from convlab._ops.loss import _legacy_reduction

    reduction = _legacy_reduction(size_average, reduce, reduction)
    dims = (anchor.ndim, positive.ndim, negative.ndim)
    if len(set(dims)) != 1:
        raise _ShapeError(
            "triplet_margin_loss: the anchor, positive and negative tensors should have the "
            f"same number of dimensions, got {dims[0]}, {dims[1]} and {dims[2]}"
        )
    if margin <= 0:
        raise ValueError(f"triplet_margin_loss: margin: expected a value > 0, got {margin}")
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_swap = pairwise_distance(positive, negative, p, eps)
        d_neg = d_neg.minimum(d_swap)
    loss = (d_pos - d_neg + margin).clamp_min(0)
    return _reduce(loss, reduction)


def cosine_embedding_loss(
    input1: Tensor,
    input2: Tensor,
    target: Any,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``1 - cos(x1, x2)`` where ``target`` is 1, ``max(0, cos(x1, x2) - margin)`` where it
    is -1 (``torch.nn.functional.cosine_embedding_loss``).

    Args:
        input1: ``(N, D)`` or ``(D,)``, floating point.
        input2: The same shape.
        target: ``(N,)`` or ``()``: 1 or -1 (other values give 0).
        margin: The margin for dissimilar pairs, in ``[-1, 1]``.
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Raises:
        ValueError: For shapes that do not fit (also a ``RuntimeError``) or a bad
            ``reduction``.
        TypeError: For non-float inputs.
    """
    import convlab
    from convlab._ops.loss import _legacy_reduction

    reduction = _legacy_reduction(size_average, reduce, reduction)
    float_check(input1, "cosine_embedding_loss input1")
    input2 = as_tensor_like(input2, input1, "input2")
    target = as_tensor_like(target, input1, "target")
    if input1.shape != input2.shape or input1.ndim not in (1, 2):
        raise _ShapeError(
            "cosine_embedding_loss: expected input1 and input2 of one shape, (N, D) or (D,), "
            f"got {tuple(input1.shape)} and {tuple(input2.shape)}"
        )
    if target.ndim != input1.ndim - 1:
        raise _ShapeError(
            f"cosine_embedding_loss: expected a {input1.ndim - 1}-d target for "
            f"{input1.ndim}-d inputs, got {target.ndim}-d"
        )
    d = input1.ndim - 1
    tiny = 1e-12  # PyTorch's EPSILON on the squared magnitudes
    dot = (input1 * input2).sum(d)
    mag1 = (input1 * input1).sum(d) + tiny
    mag2 = (input2 * input2).sum(d) + tiny
    cos = dot / (mag1 * mag2).sqrt()
    zeros = convlab.zeros_like(cos)
    pos = convlab.where(target == 1, 1 - cos, zeros)
    neg = convlab.where(target == -1, (cos - margin).clamp_min(0), zeros)
    return _reduce(pos + neg, reduction)
