"""Samplers: the order in which :class:`~convlab.data.DataLoader` visits a dataset's indices.

The names and semantics are PyTorch's (``torch.utils.data.Sampler`` and its subclasses). The
random ones draw from the ``generator`` argument (a :class:`convlab.Generator`, an int seed or
a ``numpy.random.Generator``) or, without one, from convlab's generator
(:func:`convlab.manual_seed`), so the index sequences differ from PyTorch's for the same seed
while their distribution is the same.

Example:
    >>> from convlab.data import BatchSampler, SequentialSampler
    >>> list(BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False))
    [[0, 1], [2, 3], [4]]
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator, Sequence, Sized
from typing import Any, Generic, TypeVar

import numpy as np

__all__ = [
    "Sampler",
    "SequentialSampler",
    "RandomSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
    "BatchSampler",
]

T_co = TypeVar("T_co", covariant=True)


def _generator(seed: Any) -> np.random.Generator | None:
    """``None`` (convlab's generator, looked up when drawing), a :class:`convlab.Generator`
    (its stream is shared: drawing here advances it, as in PyTorch), an int seed or a NumPy
    generator."""
    from convlab._random import Generator

    if isinstance(seed, Generator):
        return seed._rng
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.integer)) or seed < 0:
        raise TypeError(
            "generator: expected an int >= 0, a convlab.Generator or a numpy.random.Generator, "
            f"got {seed!r}"
        )
    return np.random.default_rng(int(seed))


def _rng(generator: np.random.Generator | None) -> np.random.Generator:
    if generator is not None:
        return generator
    from convlab._random import host_generator

    return host_generator()


def _positive_int(name: str, value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (numbers.Integral, np.integer))
        or value <= 0
    ):
        raise ValueError(f"{name} should be a positive integer value, but got {name}={value!r}")
    return int(value)


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} should be a boolean value, but got {name}={value!r}")
    return value


class Sampler(Generic[T_co]):
    """Base class: subclasses define ``__iter__`` (the indices) and usually ``__len__``.

    Args:
        data_source: Ignored; accepted for compatibility with PyTorch.
    """

    def __init__(self, data_source: Any = None) -> None:
        pass

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler[int]):
    """``0, 1, ..., len(data_source) - 1``.

    Args:
        data_source: A sized dataset.
    """

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """Indices in random order: a new permutation each epoch, or draws with replacement.

    The order is drawn when iteration starts (``iter(sampler)``).

    Args:
        data_source: A sized dataset.
        replacement: Draw ``num_samples`` indices independently (with replacement).
        num_samples: How many indices an epoch yields (default ``len(data_source)``); without
            replacement, more than ``len(data_source)`` chains whole permutations, as PyTorch.
        generator: A :class:`convlab.Generator`, an int seed or a ``numpy.random.Generator``;
            None draws from convlab's generator.

    Raises:
        TypeError: If ``replacement`` is not a bool.
        ValueError: If ``num_samples`` is not a positive int.
    """

    def __init__(
        self,
        data_source: Sized,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: Any = None,
    ) -> None:
        self.data_source = data_source
        self.replacement = _boolean("replacement", replacement)
        self._num_samples = num_samples
        self.generator = generator
        self._generator = _generator(generator)
        if num_samples is not None:
            _positive_int("num_samples", num_samples)

    @property
    def num_samples(self) -> int:
        """Indices per epoch."""
        if self._num_samples is None:
            return len(self.data_source)
        return int(self._num_samples)

    def __iter__(self) -> Iterator[int]:
        n, count = len(self.data_source), self.num_samples
        rng = _rng(self._generator)
        if self.replacement:
            if n == 0:
                raise ValueError("data_source: cannot draw with replacement from 0 samples")
            return iter(rng.integers(0, n, size=count).tolist())
        if n == 0:
            return iter(())
        parts = [rng.permutation(n) for _ in range(count // n)]
        if count % n:
            parts.append(rng.permutation(n)[: count % n])
        return iter(np.concatenate(parts).tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given indices, in a new random order each epoch.

    Args:
        indices: The indices to sample from.
        generator: A :class:`convlab.Generator`, an int seed or a ``numpy.random.Generator``;
            None draws from convlab's generator.
    """

    def __init__(self, indices: Sequence[int], generator: Any = None) -> None:
        self.indices = indices
        self.generator = generator
        self._generator = _generator(generator)

    def __iter__(self) -> Iterator[int]:
        order = _rng(self._generator).permutation(len(self.indices))
        return iter([self.indices[int(i)] for i in order])

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """Indices ``0..len(weights)-1`` drawn with probabilities proportional to ``weights``.

    Args:
        weights: Non-negative weights, one per index (need not sum to 1).
        num_samples: Indices per epoch.
        replacement: Draw with replacement (default); without it, an index appears at most once.
        generator: A :class:`convlab.Generator`, an int seed or a ``numpy.random.Generator``;
            None draws from convlab's generator.

    Raises:
        TypeError: If ``replacement`` is not a bool.
        ValueError: If ``num_samples`` is not a positive int, the weights are not 1-d, finite,
            non-negative with a positive sum, or (without replacement) fewer weights are
            positive than ``num_samples``.
    """

    def __init__(
        self,
        weights: Any,
        num_samples: int,
        replacement: bool = True,
        generator: Any = None,
    ) -> None:
        self.num_samples = _positive_int("num_samples", num_samples)
        self.replacement = _boolean("replacement", replacement)
        from convlab._tensor import Tensor

        array = weights.numpy() if isinstance(weights, Tensor) else np.asarray(weights)
        w = np.asarray(array, dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(
                f"weights should be a 1d sequence but given weights have shape {tuple(w.shape)}"
            )
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("weights: expected finite values >= 0 with a positive sum")
        if not replacement and np.count_nonzero(w) < self.num_samples:
            raise ValueError(
                f"num_samples: cannot draw {self.num_samples} samples without replacement "
                f"from {np.count_nonzero(w)} positive weights"
            )
        self.weights = w
        self.generator = generator
        self._generator = _generator(generator)

    def __iter__(self) -> Iterator[int]:
        p = self.weights / self.weights.sum()
        picked = _rng(self._generator).choice(
            len(p), size=self.num_samples, replace=self.replacement, p=p
        )
        return iter(picked.tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list[int]]):
    """Groups another sampler's indices into lists of ``batch_size``.

    ``iter(batch_sampler)`` starts the inner sampler at once (a random sampler draws its
    order then); the batches are then formed as they are asked for.

    Args:
        sampler: Any iterable of indices.
        batch_size: Indices per batch.
        drop_last: Leave out the last batch when it is smaller than ``batch_size``.

    Raises:
        ValueError: If ``batch_size`` is not a positive int.
        TypeError: If ``drop_last`` is not a bool.
    """

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool) -> None:
        self.sampler = sampler
        self.batch_size = _positive_int("batch_size", batch_size)
        self.drop_last = _boolean("drop_last", drop_last)

    def __iter__(self) -> Iterator[list[int]]:
        return self._batches(iter(self.sampler))

    def _batches(self, indices: Iterator[int]) -> Iterator[list[int]]:
        batch: list[int] = []
        for i in indices:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
