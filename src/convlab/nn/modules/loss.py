"""Loss layers wrapping :mod:`convlab.nn.functional`."""

from __future__ import annotations

from typing import Any

from convlab._ops import distance as _distance
from convlab._ops import loss as _loss
from convlab._tensor import Tensor
from convlab.nn.module import Module

__all__ = [
    "CrossEntropyLoss",
    "NLLLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "MSELoss",
    "L1Loss",
    "SmoothL1Loss",
    "HuberLoss",
    "KLDivLoss",
    "MarginRankingLoss",
    "TripletMarginLoss",
    "CosineEmbeddingLoss",
    "SoftMarginLoss",
    "MultiLabelSoftMarginLoss",
    "MultiMarginLoss",
    "HingeEmbeddingLoss",
    "PoissonNLLLoss",
    "GaussianNLLLoss",
]


class _Loss(Module):
    """Holds ``reduction``, resolving PyTorch's deprecated ``size_average`` / ``reduce``."""

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        allowed: tuple[str, ...] = _loss._REDUCTIONS,
    ) -> None:
        super().__init__()
        self.reduction = _loss._legacy_reduction(size_average, reduce, reduction, allowed)


class CrossEntropyLoss(Module):
    """Cross-entropy of logits against class indices or probabilities."""

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = _loss._legacy_reduction(size_average, reduce, reduction)
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return _loss.cross_entropy(
            input,
            target,
            self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class BCEWithLogitsLoss(Module):
    """Sigmoid + binary cross-entropy, numerically stable."""

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        pos_weight: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)
        self.reduction = _loss._legacy_reduction(size_average, reduce, reduction)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return _loss.binary_cross_entropy_with_logits(
            input, target, self.weight, reduction=self.reduction, pos_weight=self.pos_weight
        )


class MSELoss(_Loss):
    """Mean squared error (see :func:`convlab.nn.functional.mse_loss`)."""

    def __init__(
        self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__(size_average, reduce, reduction)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return _loss.mse_loss(input, target, reduction=self.reduction)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (see :func:`convlab.nn.functional.nll_loss`).

    Args:
        weight: Optional per-class weights of shape (C,), kept as a buffer.
        size_average: Deprecated (see ``reduction``).
        ignore_index: A class index whose targets contribute neither loss nor gradient.
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` (weighted by the targets' class weights) or ``"sum"``.
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return _loss.nll_loss(
            input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction
        )


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities (see
    :func:`convlab.nn.functional.binary_cross_entropy`).

    Args:
        weight: Optional rescaling weights broadcastable to the input, kept as a buffer.
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return _loss.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error (see :func:`convlab.nn.functional.l1_loss`).

    Args:
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    def __init__(
        self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__(size_average, reduce, reduction)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return _loss.l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Smooth L1 loss (see :func:`convlab.nn.functional.smooth_l1_loss`).

    Args:
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
        beta: Where the loss turns from quadratic to linear; non-negative.
    """

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        beta: float = 1.0,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return _loss.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """Huber loss (see :func:`convlab.nn.functional.huber_loss`).

    Args:
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
        delta: Where the loss turns from quadratic to linear; positive.
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return _loss.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class KLDivLoss(_Loss):
    """Kullback-Leibler divergence (see :func:`convlab.nn.functional.kl_div`).

    Args:
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"batchmean"``, ``"sum"`` or ``"mean"``.
        log_target: Whether the target is given in log space.
    """

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        log_target: bool = False,
    ) -> None:
        super().__init__(size_average, reduce, reduction, _loss._REDUCTIONS + ("batchmean",))
        self.log_target = log_target

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return _loss.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class MarginRankingLoss(_Loss):
    """Margin ranking loss (see :func:`convlab.nn.functional.margin_ranking_loss`).

    Args:
        margin: The margin.
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    def __init__(
        self,
        margin: float = 0.0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Tensor, input2: Tensor, target: Any) -> Tensor:
        return _loss.margin_ranking_loss(
            input1, input2, target, margin=self.margin, reduction=self.reduction
        )


class TripletMarginLoss(_Loss):
    """Triplet margin loss (see :func:`convlab.nn.functional.triplet_margin_loss`).

    Args:
        margin: The margin (> 0).
        p: The distance's norm order.
        eps: Added to the differences (see :func:`convlab.nn.functional.pairwise_distance`).
        swap: Use the distance swap.
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Raises:
        ValueError: For a non-positive margin.
    """

    def __init__(
        self,
        margin: float = 1.0,
        p: float = 2.0,
        eps: float = 1e-6,
        swap: bool = False,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        if margin <= 0:
            raise ValueError(f"margin: expected a value > 0, got {margin}")
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return _distance.triplet_margin_loss(
            anchor,
            positive,
            negative,
            margin=self.margin,
            p=self.p,
            eps=self.eps,
            swap=self.swap,
            reduction=self.reduction,
        )


class CosineEmbeddingLoss(_Loss):
    """Cosine embedding loss (see :func:`convlab.nn.functional.cosine_embedding_loss`).

    Args:
        margin: The margin for dissimilar pairs.
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    def __init__(
        self,
        margin: float = 0.0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Tensor, input2: Tensor, target: Any) -> Tensor:
        return _distance.cosine_embedding_loss(
            input1, input2, target, margin=self.margin, reduction=self.reduction
        )


class SoftMarginLoss(_Loss):
    """Two-class logistic loss (see :func:`convlab.nn.functional.soft_margin_loss`).

    Args:
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return _loss.soft_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_Loss):
    """Multi-label logistic loss (see
    :func:`convlab.nn.functional.multilabel_soft_margin_loss`).

    Args:
        weight: Optional per-class weights of shape (C,), kept as a buffer.
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return _loss.multilabel_soft_margin_loss(
            input, target, weight=self.weight, reduction=self.reduction
        )


class MultiMarginLoss(_Loss):
    """Multi-class hinge loss (see :func:`convlab.nn.functional.multi_margin_loss`).

    Args:
        p: 1 or 2.
        margin: The margin.
        weight: Optional per-class weights of shape (C,), kept as a buffer.
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Raises:
        ValueError: For ``p`` other than 1 or 2, or a weight that is not 1-d.
    """

    def __init__(
        self,
        p: int = 1,
        margin: float = 1.0,
        weight: Tensor | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        if p not in (1, 2):
            raise ValueError(f"p: only p == 1 and p == 2 supported, got {p!r}")
        if weight is not None and weight.ndim != 1:
            raise ValueError(f"weight: expected a 1-d tensor, got shape {weight.shape}")
        self.p, self.margin = p, margin
        self.register_buffer("weight", weight)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return _loss.multi_margin_loss(
            input,
            target,
            p=self.p,
            margin=self.margin,
            weight=self.weight,
            reduction=self.reduction,
        )


class HingeEmbeddingLoss(_Loss):
    """Hinge embedding loss (see :func:`convlab.nn.functional.hinge_embedding_loss`).

    Args:
        margin: The margin.
        size_average: Deprecated (see ``reduction``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    def __init__(
        self,
        margin: float = 1.0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return _loss.hinge_embedding_loss(
            input, target, margin=self.margin, reduction=self.reduction
        )


class PoissonNLLLoss(_Loss):
    """Poisson negative log-likelihood (see :func:`convlab.nn.functional.poisson_nll_loss`).

    Args:
        log_input: The input is the log of the rate.
        full: Add Stirling's approximation term.
        size_average: Deprecated (see ``reduction``).
        eps: Added to the rate before its log (``log_input=False``).
        reduce: Deprecated (see ``reduction``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    def __init__(
        self,
        log_input: bool = True,
        full: bool = False,
        size_average: bool | None = None,
        eps: float = 1e-8,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, log_input: Tensor, target: Any) -> Tensor:
        return _loss.poisson_nll_loss(
            log_input,
            target,
            log_input=self.log_input,
            full=self.full,
            eps=self.eps,
            reduction=self.reduction,
        )


class GaussianNLLLoss(_Loss):
    """Gaussian negative log-likelihood (see :func:`convlab.nn.functional.gaussian_nll_loss`).

    Args:
        full: Add the constant term.
        eps: The smallest variance used.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(None, None, reduction)
        self.full, self.eps = full, eps

    def forward(self, input: Tensor, target: Any, var: Tensor | float) -> Tensor:
        return _loss.gaussian_nll_loss(
            input, target, var, full=self.full, eps=self.eps, reduction=self.reduction
        )
