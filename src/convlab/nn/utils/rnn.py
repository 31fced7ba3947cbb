"""Helpers for batches of variable-length sequences (``torch.nn.utils.rnn``): padding and
PyTorch's packed sequences.

Example:
    >>> import convlab
    >>> from convlab.nn.utils.rnn import pad_sequence
    >>> batch = pad_sequence([convlab.ones(3, 2), convlab.ones(1, 2)])
    >>> batch.shape
    (3, 2, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from convlab import _creation
from convlab._ops import index as _index
from convlab._ops import shape as _shape
from convlab._tensor import Tensor

__all__ = [
    "PackedSequence",
    "pack_padded_sequence",
    "pad_packed_sequence",
    "pack_sequence",
    "pad_sequence",
    "unpack_sequence",
]


class PackedSequence(NamedTuple):
    """A batch of variable-length sequences packed time step by time step
    (``torch.nn.utils.rnn.PackedSequence``).

    ``data`` holds, for each step ``t``, the ``batch_sizes[t]`` sequences still running at
    ``t`` (longest first); ``sorted_indices`` / ``unsorted_indices`` map between that order and
    the caller's batch order (None when the batch was already sorted). Build one with
    :func:`pack_padded_sequence` or :func:`pack_sequence`; the recurrent layers accept it.
    """

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None

    def to(self, *args: Any, **kwargs: Any) -> PackedSequence:
        """The same sequences with ``data`` moved / cast by ``Tensor.to``."""
        return self._replace(data=self.data.to(*args, **kwargs))

    def cpu(self) -> PackedSequence:
        return self.to("cpu")

    def cuda(self, *args: Any, **kwargs: Any) -> PackedSequence:
        return self.to("cuda")

    def float(self) -> PackedSequence:
        return self.to(dtype=np.float32)

    def double(self) -> PackedSequence:
        return self.to(dtype=np.float64)

    @property
    def is_cuda(self) -> bool:
        return bool(self.data.is_cuda)


def _lengths_array(lengths: Any, batch: int) -> np.ndarray:
    if isinstance(lengths, Tensor):
        lengths = lengths.numpy()
    array = np.asarray(lengths)
    if array.ndim != 1 or array.dtype.kind not in "iu" or array.shape[0] != batch:
        raise ValueError(
            f"lengths: expected a 1-D sequence of {batch} ints (one per sequence), got "
            f"{array.dtype} of shape {array.shape}"
        )
    return array.astype(np.int64)


def _index_tensor(values: np.ndarray, like: Tensor) -> Tensor:
    return _creation.tensor(values.astype(np.int64), device=like.device)


def _pack_time_major(padded: Tensor, lengths: np.ndarray) -> tuple[Tensor, np.ndarray]:
    """``data`` and ``batch_sizes`` of a (T, B, *) batch whose lengths are sorted descending."""
    steps = int(lengths[0])
    batch_sizes = np.array([(lengths > t).sum() for t in range(steps)], np.int64)
    pieces = [padded[t, : int(batch_sizes[t])] for t in range(steps)]
    return _shape.cat(pieces, 0), batch_sizes


def pack_padded_sequence(
    input: Tensor, lengths: Any, batch_first: bool = False, enforce_sorted: bool = True
) -> PackedSequence:
    """Pack a padded batch (``(T, B, *)``, or ``(B, T, *)`` with ``batch_first``) of
    sequences with the given lengths.

    Args:
        input: The padded batch.
        lengths: Each sequence's length (a list or a 1-D integer tensor; all >= 1).
        batch_first: Whether ``input`` is ``(B, T, *)``.
        enforce_sorted: Require lengths in decreasing order; with False the batch is sorted
            here and the order remembered (``sorted_indices``).

    Raises:
        ValueError: For lengths that are not one positive int per sequence or exceed ``T``.
        RuntimeError: For unsorted lengths with ``enforce_sorted=True`` (PyTorch's message).
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"input: expected a Tensor, got {type(input).__name__}")
    if input.ndim < 2:
        raise ValueError(f"input: expected at least 2 dimensions (time, batch), got {input.ndim}")
    if batch_first:
        input = _shape.transpose(input, 0, 1)
    sizes = _lengths_array(lengths, input.shape[1])
    if sizes.size and sizes.min() <= 0:
        raise RuntimeError(
            "Length of all samples has to be greater than 0, but found an element in "
            "'lengths' that is <= 0"
        )
    if sizes.size and sizes.max() > input.shape[0]:
        raise ValueError(
            f"lengths: a length of {int(sizes.max())} exceeds the {input.shape[0]} time steps "
            f"of input"
        )
    sorted_indices = unsorted_indices = None
    if enforce_sorted:
        if np.any(np.diff(sizes) > 0):
            raise RuntimeError(
                "`lengths` array must be sorted in decreasing order when `enforce_sorted` is "
                "True. You can pass `enforce_sorted=False` to pack_padded_sequence and/or "
                "pack_sequence to sidestep this requirement if you do not need ONNX "
                "exportability."
            )
    else:
        order = np.argsort(-sizes, kind="stable")
        sorted_indices = _index_tensor(order, input)
        unsorted_indices = _index_tensor(np.argsort(order, kind="stable"), input)
        input = _index.index_select(input, 1, sorted_indices)
        sizes = sizes[order]
    data, batch_sizes = _pack_time_major(input, sizes)
    return PackedSequence(data, _creation.tensor(batch_sizes), sorted_indices, unsorted_indices)


def _unpack_sorted(
    sequence: PackedSequence, padding_value: float, total_length: int | None
) -> tuple[Tensor, np.ndarray]:
    """The packed batch as (T, B, *) in its sorted order, and the sorted lengths."""
    batch_sizes = np.asarray(sequence.batch_sizes.numpy(), np.int64)
    steps, batch = len(batch_sizes), int(batch_sizes[0])
    if total_length is not None and total_length < steps:
        raise ValueError(
            f"Expected total_length to be at least the length of the longest sequence "
            f"({steps}), but got total_length={total_length}"
        )
    data = sequence.data
    rows, offset = [], 0
    for size in batch_sizes.tolist():
        piece = data[offset : offset + size]
        offset += size
        if size < batch:
            widths = ((0, batch - size),) + ((0, 0),) * (data.ndim - 1)
            piece = _padded(piece, widths, padding_value)
        rows.append(piece)
    padded = _shape.stack(rows, 0)
    if total_length is not None and total_length > steps:
        widths = ((0, total_length - steps),) + ((0, 0),) * (padded.ndim - 1)
        padded = _padded(padded, widths, padding_value)
    lengths = np.array([(batch_sizes > b).sum() for b in range(batch)], np.int64)
    return padded, lengths


def _padded(t: Tensor, widths: tuple[tuple[int, int], ...], value: float) -> Tensor:
    out = _shape.pad(t, widths)
    if value != 0:
        out = out + (1 - _pad_mask(t, widths)) * value
    return out


def pad_packed_sequence(
    sequence: PackedSequence,
    batch_first: bool = False,
    padding_value: float = 0.0,
    total_length: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Undo :func:`pack_padded_sequence`: ``(padded, lengths)`` in the caller's batch order.

    Args:
        sequence: A packed batch.
        batch_first: Return ``(B, T, *)`` instead of ``(T, B, *)``.
        padding_value: The value of the padded elements.
        total_length: Pad to this many steps (at least the longest sequence).

    Raises:
        ValueError: If ``total_length`` is shorter than the longest sequence.
    """
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"sequence: expected a PackedSequence, got {type(sequence).__name__}")
    padded, lengths = _unpack_sorted(sequence, padding_value, total_length)
    if sequence.unsorted_indices is not None:
        padded = _index.index_select(padded, 1, sequence.unsorted_indices)
        lengths = lengths[sequence.unsorted_indices.numpy()]
    if batch_first:
        padded = _shape.transpose(padded, 0, 1)
    return padded, _creation.tensor(lengths)


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of ``(L_i, *)`` tensors (``pad_sequence`` then ``pack_padded_sequence``)."""
    sequences = list(sequences)
    lengths = [int(seq.shape[0]) for seq in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The list of ``(L_i, *)`` tensors a :class:`PackedSequence` holds, in batch order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return [padded[i, : int(n)] for i, n in enumerate(lengths.numpy().tolist())]


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
