"""Distance layers wrapping :mod:`convlab.nn.functional` (``nn.CosineSimilarity``,
``nn.PairwiseDistance``)."""

from __future__ import annotations

from convlab._ops import distance as _distance
from convlab._tensor import Tensor
from convlab.nn.module import Module

__all__ = ["CosineSimilarity", "PairwiseDistance"]


class CosineSimilarity(Module):
    """Cosine similarity along ``dim`` (see :func:`convlab.nn.functional.cosine_similarity`).

    Args:
        dim: The dimension of the vectors.
        eps: The smallest norm divided by.
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return _distance.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """``p``-norm distance over the last dimension (see
    :func:`convlab.nn.functional.pairwise_distance`).

    Args:
        p: The norm's order.
        eps: Added to the difference.
        keepdim: Keep the reduced dimension.
    """

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return _distance.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
