"""Helpers for batches of variable-length sequences (``torch.nn.utils.rnn``).

Example:
    >>> import convlab
    >>> from convlab.nn.utils.rnn import pad_sequence
    >>> batch = pad_sequence([convlab.ones(3, 2), convlab.ones(1, 2)])
    >>> batch.shape
    (3, 2, 2)
"""

from __future__ import annotations

from collections.abc import Sequence

from convlab import _creation
from convlab._ops import shape as _shape
from convlab._tensor import Tensor

__all__ = ["pad_sequence"]


def pad_sequence(
    sequences: Sequence[Tensor] | Tensor,
    batch_first: bool = False,
    padding_value: float = 0.0,
    padding_side: str = "right",
) -> Tensor:
    """Stack tensors of shape ``(L_i, *)`` into ``(L_max, B, *)`` (``(B, L_max, *)`` with
    ``batch_first``), padding the shorter ones with ``padding_value``.

    Args:
        sequences: Tensors that agree in every dimension but the first (or one tensor,
            whose first dimension is then the batch).
        batch_first: Put the batch dimension first.
        padding_value: The value of the padded elements.
        padding_side: ``"right"`` (pad after each sequence) or ``"left"``.

    Raises:
        ValueError: For an empty list, a bad ``padding_side`` or mismatched trailing shapes.
    """
    if padding_side not in ("left", "right"):
        raise ValueError(
            f"Expected padding_side to be one of left or right, but got {padding_side}."
        )
    if isinstance(sequences, Tensor):
        sequences = [sequences[i] for i in range(sequences.shape[0])]
    sequences = list(sequences)
    if not sequences:
        raise ValueError("pad_sequence: expected a non-empty list of tensors")
    for i, seq in enumerate(sequences):
        if not isinstance(seq, Tensor):
            raise TypeError(f"sequences[{i}]: expected a Tensor, got {type(seq).__name__}")
        if seq.ndim < 1 or tuple(seq.shape[1:]) != tuple(sequences[0].shape[1:]):
            raise ValueError(
                f"pad_sequence: sequences[{i}] has shape {tuple(seq.shape)}; every sequence "
                f"must have shape (L_i, {', '.join(map(str, sequences[0].shape[1:]))})"
            )
    longest = max(seq.shape[0] for seq in sequences)
    padded = []
    for seq in sequences:
        extra = longest - seq.shape[0]
        widths = ((0, extra) if padding_side == "right" else (extra, 0),) + ((0, 0),) * (
            seq.ndim - 1
        )
        item = _shape.pad(seq, widths)
        if padding_value != 0 and extra:
            item = item + (1 - _pad_mask(seq, widths)) * padding_value
        padded.append(item)
    return _shape.stack(padded, 0 if batch_first else 1)


def _pad_mask(seq: Tensor, widths: tuple[tuple[int, int], ...]) -> Tensor:
    """1 where ``seq``'s own elements land after padding by ``widths``, 0 in the padding."""
    ones = _creation.ones(*seq.shape, dtype=seq.dtype, device=seq.device)
    return _shape.pad(ones, widths)
