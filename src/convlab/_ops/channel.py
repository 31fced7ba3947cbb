"""Ops across the channel axis: ``local_response_norm`` (AlexNet) and ``channel_shuffle``
(ShuffleNet), compositions of differentiable tensor ops with PyTorch's formulas."""

from __future__ import annotations

from convlab._ops._util import float_check
from convlab._tensor import Tensor

__all__ = ["local_response_norm", "channel_shuffle"]


class _ChannelError(ValueError, RuntimeError):
    """An argument PyTorch refuses with ``RuntimeError``."""


def local_response_norm(
    input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> Tensor:
    """Divide by ``(k + alpha * mean of the squares of size neighbouring channels) ** beta``
    (``torch.nn.functional.local_response_norm``).

    The window over channels is zero padded: ``size // 2`` before, ``(size - 1) // 2`` after,
    and the mean always divides by ``size``, as PyTorch's average pooling.

    Args:
        input: (N, C, ...) with at least 3 dimensions, floating point.
        size: Channels in the window.
        alpha: The multiplicative factor.
        beta: The exponent.
        k: The additive factor.

    Raises:
        ValueError: For an input of fewer than 3 dimensions.
        TypeError: For a non-float input.
    """
    import convlab

    float_check(input, "local_response_norm input")
    if input.ndim < 3:
        raise ValueError(
            f"local_response_norm: expected 3D or higher dimensionality input (got {input.ndim} "
            "dimensions)"
        )
    if input.numel() == 0:
        return input
    size = int(size)
    n, c = input.shape[:2]
    rest = tuple(input.shape[2:])
    sq = input * input
    before = convlab.zeros(n, size // 2, *rest, dtype=input.dtype, device=input.device)
    after = convlab.zeros(n, (size - 1) // 2, *rest, dtype=input.dtype, device=input.device)
    padded = convlab.cat([before, sq, after], 1)
    total = padded[:, 0:c]
    for offset in range(1, size):
        total = total + padded[:, offset : offset + c]
    div = (total / size * alpha + k) ** beta
    return input / div


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """Interleave the channels of ``groups`` groups (``torch.nn.functional.channel_shuffle``):
    (N, g, C/g, ...) transposed to (N, C/g, g, ...).

    Args:
        input: (N, C, ...) with at least 3 dimensions.
        groups: The number of groups; must divide C.

    Raises:
        ValueError: For fewer than 3 dimensions, a non-positive ``groups`` or one not
            dividing the channels (also a ``RuntimeError``, as PyTorch).
    """
    if input.ndim < 3:
        raise _ChannelError(
            f"channel_shuffle: expected an input of at least 3 dimensions, got {input.ndim}"
        )
    groups = int(groups)
    if groups <= 0:
        raise _ChannelError(f"channel_shuffle: groups: expected a positive int, got {groups}")
    n, c = input.shape[:2]
    if c % groups:
        raise _ChannelError(
            f"channel_shuffle: Number of channels must be divisible by groups. Got {c} channels "
            f"and {groups} groups."
        )
    rest = tuple(input.shape[2:])
    x = input.reshape(n, groups, c // groups, *rest).transpose(1, 2)
    return x.reshape(n, c, *rest)
