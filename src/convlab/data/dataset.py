"""Datasets: map-style (:class:`Dataset`, :class:`TensorDataset`, :class:`Subset`,
:class:`ConcatDataset`) and iterable (:class:`IterableDataset`, :class:`ChainDataset`)."""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

__all__ = [
    "Dataset",
    "IterableDataset",
    "TensorDataset",
    "Subset",
    "ConcatDataset",
    "ChainDataset",
    "random_split",
]


class Dataset:
    """A sequence of samples: subclasses define ``__len__`` and ``__getitem__(i)``.

    As in PyTorch, a sample is usually an ``(input, target)`` tuple. A subclass may also define
    ``__getitems__(indices)`` returning the list of samples, which :class:`DataLoader` then
    calls once per batch instead of ``__getitem__`` per index.
    """

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: Any) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset:
    """A stream of samples: subclasses define ``__iter__``.

    With ``num_workers > 0`` every worker process iterates its own copy of the dataset, so a
    dataset that should not be read twice splits the stream itself, using
    :func:`~convlab.data.get_worker_info` (``id`` and ``num_workers``) inside ``__iter__``.
    """

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __add__(self, other: Any) -> ChainDataset:
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """The samples of several iterable datasets, one after the other.

    Args:
        datasets: Iterable datasets.
    """

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)

    def __iter__(self) -> Iterator[Any]:
        for d in self.datasets:
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


class ConcatDataset(Dataset):
    """Several map-style datasets as one: index ``i`` runs through them in order.

    Args:
        datasets: Map-style datasets (at least one; an :class:`IterableDataset` is refused).

    Raises:
        ValueError: If ``datasets`` is empty.
        TypeError: If one of them is an :class:`IterableDataset`.
    """

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("datasets should not be an empty iterable")
        for k, d in enumerate(self.datasets):
            if isinstance(d, IterableDataset):
                raise TypeError(f"datasets[{k}]: ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return int(self.cumulative_sizes[-1])

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        if isinstance(index, bool) or not isinstance(index, (numbers.Integral, np.integer)):
            raise TypeError(f"index: expected an int, got {type(index).__name__}")
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"index: {i} is out of range for a dataset of {n} samples")
        i %= n
        k = bisect.bisect_right(self.cumulative_sizes, i)
        start = self.cumulative_sizes[k - 1] if k else 0
        return self.datasets[k][i - start]


def _check_index(index: Any, length: int) -> int:
    if isinstance(index, bool) or not isinstance(index, (numbers.Integral, np.integer)):
        raise TypeError(f"index: expected an int, got {type(index).__name__}")
    i = int(index)
    if not -length <= i < length:
        raise IndexError(f"index: {i} is out of range for a dataset of {length} samples")
    return i % length


class TensorDataset(Dataset):
    """Samples ``(a[i], b[i], ...)`` from tensors or arrays with the same first dimension.

    Args:
        *tensors: convlab tensors or NumPy arrays; sample ``i`` is the tuple of their rows.

    Raises:
        ValueError: If no tensor is given or their first dimensions differ.
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("tensors: expected at least one tensor or array, got none")
        lengths = []
        for k, t in enumerate(tensors):
            shape = getattr(t, "shape", None)
            if shape is None or len(shape) == 0:
                raise ValueError(
                    f"tensors[{k}]: expected a tensor or array with a first "
                    f"dimension, got {type(t).__name__} of shape {shape}"
                )
            lengths.append(int(shape[0]))
        if len(set(lengths)) != 1:
            raise ValueError(f"tensors: expected the same first dimension, got {lengths}")
        self.tensors = tuple(tensors)

    def __len__(self) -> int:
        return int(self.tensors[0].shape[0])

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        i = _check_index(index, len(self))
        return tuple(t[i] for t in self.tensors)

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Any, ...]]:
        # One gather per tensor instead of one indexing call per sample and tensor.
        rows = np.asarray(indices, dtype=np.int64)
        columns = [_rows(t, rows) for t in self.tensors]
        return [tuple(c[j] for c in columns) for j in range(len(rows))]

    def __repr__(self) -> str:
        shapes = ", ".join(str(tuple(t.shape)) for t in self.tensors)
        return f"TensorDataset({shapes})"


def _rows(t: Any, rows: np.ndarray) -> np.ndarray:
    from convlab._tensor import Tensor

    array = t.numpy() if isinstance(t, Tensor) else np.asarray(t)
    picked: np.ndarray = array[rows]
    return picked


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Any, indices: Sequence[int] | np.ndarray) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        n = len(dataset)
        if self.indices.ndim != 1:
            raise ValueError(f"indices: expected a 1-d sequence, got shape {self.indices.shape}")
        if self.indices.size and (self.indices.min() < -n or self.indices.max() >= n):
            raise IndexError(
                f"indices: values must lie in [-{n}, {n}), got "
                f"[{self.indices.min()}, {self.indices.max()}]"
            )

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[_check_index(index, len(self))])]

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        rows = self.indices[np.asarray(indices, dtype=np.int64)]
        if hasattr(self.dataset, "__getitems__"):
            samples: list[Any] = self.dataset.__getitems__(rows)
            return samples
        return [self.dataset[int(r)] for r in rows]


def random_split(
    dataset: Any, lengths: Sequence[Any], generator: Any = None, seed: Any = None
) -> list[Subset]:
    """Split ``dataset`` at random into non-overlapping :class:`Subset` objects.

    Args:
        dataset: Any map-style dataset.
        lengths: Sizes that sum to ``len(dataset)``, or fractions that sum to 1 (the
            remainder after flooring is handed out one by one from the first subset on, as
            in PyTorch 2.x).
        generator: A :class:`convlab.Generator`, an int or a ``numpy.random.Generator``; None
            draws from convlab's generator, so :func:`convlab.manual_seed` makes the split
            reproducible.
        seed: Same as ``generator`` (give one of the two).

    Raises:
        ValueError: If the lengths do not add up.
    """
    if generator is not None and seed is not None:
        raise ValueError("generator, seed: give one of the two, not both")
    seed = seed if seed is not None else generator
    n = len(dataset)
    lengths = list(lengths)
    fractions = all(isinstance(x, float) for x in lengths)
    if lengths and (fractions or (math.isclose(sum(lengths), 1) and sum(lengths) <= 1)):
        if any(x < 0 or x > 1 for x in lengths) or not math.isclose(sum(lengths), 1):
            raise ValueError(f"lengths: fractions must be >= 0 and sum to 1, got {lengths}")
        sizes = [int(np.floor(n * f)) for f in lengths]
        for k in range(n - sum(sizes)):
            sizes[k % len(sizes)] += 1
        lengths = sizes
    if any(int(x) != x or x < 0 for x in lengths) or sum(lengths) != n:
        raise ValueError(
            f"lengths: expected sizes >= 0 that sum to len(dataset) = {n}, got {lengths}"
        )
    from convlab.data.loader import _generator

    order = _generator(seed).permutation(n)
    bounds = np.cumsum([0] + [int(x) for x in lengths])
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
