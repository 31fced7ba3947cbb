"""``LocalResponseNorm`` and ``ChannelShuffle`` (``torch.nn``)."""

from __future__ import annotations

from convlab._ops import channel as _channel
from convlab._tensor import Tensor
from convlab.nn.module import Module

__all__ = ["LocalResponseNorm", "ChannelShuffle"]


class LocalResponseNorm(Module):
    """Local response normalisation across channels (see
    :func:`convlab.nn.functional.local_response_norm`).

    Args:
        size: Channels in the window.
        alpha: The multiplicative factor.
        beta: The exponent.
        k: The additive factor.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input: Tensor) -> Tensor:
        return _channel.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class ChannelShuffle(Module):
    """Interleave the channels of ``groups`` groups (see
    :func:`convlab.nn.functional.channel_shuffle`).

    Args:
        groups: The number of groups.
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, input: Tensor) -> Tensor:
        return _channel.channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
