"""Dropout layers: element-wise, channel-wise (1-D, 2-D, 3-D) and alpha dropout."""

from __future__ import annotations

from convlab._ops import activation as _act
from convlab._tensor import Tensor
from convlab.nn.module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout"]


class _DropoutNd(Module):
    """Holds ``p`` and ``inplace`` (accepted for PyTorch's signature; the result is always a
    new tensor)."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p: expected a probability in [0, 1], got {p}")
        self.p, self.inplace = float(p), inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero elements with probability ``p`` while training, scaling the rest by 1/(1-p)."""

    def forward(self, x: Tensor) -> Tensor:
        return _act.dropout(x, self.p, self.training)


class Dropout1d(_DropoutNd):
    """Zero whole channels of (N, C, L) or (C, L) input while training
    (``torch.nn.Dropout1d``)."""

    def forward(self, x: Tensor) -> Tensor:
        return _act.dropout1d(x, self.p, self.training)


class Dropout2d(_DropoutNd):
    """Zero whole channels of (N, C, H, W) input while training (``torch.nn.Dropout2d``).

    A 3-D input is taken as (N, C, L), with PyTorch's warning.
    """

    def forward(self, x: Tensor) -> Tensor:
        return _act.dropout2d(x, self.p, self.training)


class Dropout3d(_DropoutNd):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) input while training
    (``torch.nn.Dropout3d``)."""

    def forward(self, x: Tensor) -> Tensor:
        return _act.dropout3d(x, self.p, self.training)


class AlphaDropout(_DropoutNd):
    """Dropout for SELU networks, keeping zero mean and unit variance
    (``torch.nn.AlphaDropout``)."""

    def forward(self, x: Tensor) -> Tensor:
        return _act.alpha_dropout(x, self.p, self.training)
