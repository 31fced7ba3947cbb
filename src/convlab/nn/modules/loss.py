"""Loss layers wrapping :mod:`convlab.nn.functional`."""

from __future__ import annotations

from typing import Any

from convlab._ops import loss as _loss
from convlab._tensor import Tensor
from convlab.nn.module import Module

__all__ = ["CrossEntropyLoss", "BCEWithLogitsLoss", "MSELoss"]


class CrossEntropyLoss(Module):
    """Cross-entropy of logits against class indices or probabilities."""

    def __init__(
        self,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.ignore_index, self.reduction = ignore_index, reduction
        self.label_smoothing = label_smoothing
        _loss._reduction(reduction)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return _loss.cross_entropy(
            input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing
        )


class BCEWithLogitsLoss(Module):
    """Sigmoid + binary cross-entropy, numerically stable."""

    def __init__(
        self,
        weight: Tensor | None = None,
        reduction: str = "mean",
        pos_weight: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)
        self.reduction = reduction
        _loss._reduction(reduction)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return _loss.binary_cross_entropy_with_logits(
            input, target, self.weight, self.reduction, self.pos_weight
        )


class MSELoss(Module):
    """Mean squared error."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction
        _loss._reduction(reduction)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return _loss.mse_loss(input, target, self.reduction)
