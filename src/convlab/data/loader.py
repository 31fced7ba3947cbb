""":class:`DataLoader`: batches from a dataset, shuffled reproducibly, prepared in the background.

Example:
    >>> import numpy as np
    >>> from convlab.data import DataLoader, TensorDataset
    >>> ds = TensorDataset(np.arange(10, dtype=np.float32).reshape(5, 2), np.arange(5))
    >>> [tuple(x.shape) for x, y in DataLoader(ds, batch_size=2)]
    [(2, 2), (2, 2), (1, 2)]
"""

from __future__ import annotations

import numbers
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["DataLoader", "default_collate", "sample_rng"]

_local = threading.local()


def sample_rng() -> np.random.Generator:
    """The generator random transforms draw from.

    Inside a :class:`DataLoader` batch it is that batch's own generator, seeded from the
    loader's generator in the main thread, so results do not depend on ``prefetch`` or on
    thread timing. Elsewhere it is convlab's generator (see :func:`convlab.manual_seed`).
    """
    rng: np.random.Generator | None = getattr(_local, "rng", None)
    if rng is not None:
        return rng
    from convlab._random import host_generator

    return host_generator()


def _generator(seed: Any) -> np.random.Generator:
    if seed is None:
        from convlab._random import host_generator

        return host_generator()
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.integer)) or seed < 0:
        raise TypeError(
            f"generator: expected an int >= 0 or a numpy.random.Generator, got {seed!r}"
        )
    return np.random.default_rng(int(seed))


def default_collate(samples: list[Any]) -> Any:
    """Stack a list of samples into a batch, as PyTorch's ``default_collate`` does.

    Tensors and arrays are stacked along a new first dimension into a convlab tensor; ints
    become an int64 tensor, floats a float64 tensor, bools a bool tensor; tuples, lists and
    dicts are collated field by field; strings stay a list.

    Raises:
        ValueError: If the samples' shapes or structures differ.
        TypeError: For a sample type it cannot batch.
    """
    import convlab
    from convlab._tensor import Tensor

    first = samples[0]
    if isinstance(first, (Tensor, np.ndarray, np.generic)):
        arrays = [s.numpy() if isinstance(s, Tensor) else np.asarray(s) for s in samples]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ValueError(
                f"samples: cannot stack a batch of different shapes "
                f"{sorted(shapes)}; pass a collate_fn that pads or crops"
            )
        return convlab.from_numpy(np.stack(arrays))
    if isinstance(first, bool):
        return convlab.from_numpy(np.asarray(samples, dtype=np.bool_))
    if isinstance(first, numbers.Integral):
        return convlab.from_numpy(np.asarray(samples, dtype=np.int64))
    if isinstance(first, numbers.Real):
        return convlab.from_numpy(np.asarray(samples, dtype=np.float64))
    if isinstance(first, str):
        return list(samples)
    if isinstance(first, dict):
        keys = first.keys()
        if any(s.keys() != keys for s in samples):
            raise ValueError("samples: dict samples in a batch must have the same keys")
        return {k: default_collate([s[k] for s in samples]) for k in keys}
    if isinstance(first, (tuple, list)):
        if any(len(s) != len(first) for s in samples):
            raise ValueError(
                f"samples: tuple samples in a batch must have the same length, "
                f"got {sorted({len(s) for s in samples})}"
            )
        return (
            type(first)(default_collate(list(field)) for field in zip(*samples))
            if isinstance(first, tuple)
            else [default_collate(list(f)) for f in zip(*samples)]
        )
    raise TypeError(
        f"samples: default_collate cannot batch {type(first).__name__}; pass a collate_fn"
    )


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (numbers.Integral, np.integer))
        or value < minimum
    ):
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


class DataLoader:
    """Iterate over a dataset in batches.

    Args:
        dataset: A map-style dataset (``len`` and ``dataset[i]``; ``__getitems__`` is used
            when defined).
        batch_size: Samples per batch.
        shuffle: A new random order every epoch.
        drop_last: Leave out the last batch when it is smaller than ``batch_size``.
        collate_fn: Turns a list of samples into a batch (default :func:`default_collate`).
        generator: An int seed or a ``numpy.random.Generator`` for the order and the random
            transforms; None uses convlab's generator (:func:`convlab.manual_seed`).
        seed: Same as an int ``generator`` (give one of the two).
        prefetch: Batches prepared ahead by a background thread while the model computes;
            0 prepares each batch when it is asked for. The batches are the same either way.

    Raises:
        ValueError: For a batch size < 1, a negative ``prefetch`` or both ``generator`` and
            ``seed``.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        generator: Any = None,
        seed: int | None = None,
        prefetch: int = 2,
    ) -> None:
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(
                f"dataset: expected a map-style dataset with __len__ and "
                f"__getitem__, got {type(dataset).__name__}"
            )
        if generator is not None and seed is not None:
            raise ValueError("generator, seed: give one of the two, not both")
        self.dataset = dataset
        self.batch_size = _positive_int("batch_size", batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.collate_fn = collate_fn or default_collate
        self.prefetch = _positive_int("prefetch", prefetch, minimum=0)
        self._generator = _generator(seed if seed is not None else generator)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _plan(self) -> tuple[list[np.ndarray], int]:
        n = len(self.dataset)
        order = self._generator.permutation(n) if self.shuffle else np.arange(n)
        stops = range(
            self.batch_size, n + (0 if self.drop_last else self.batch_size), self.batch_size
        )
        batches = [order[s - self.batch_size : min(s, n)] for s in stops]
        # One draw per epoch, in the main thread, fixes every batch's transform generator.
        base = int(self._generator.integers(2**63))
        return batches, base

    def _make(self, indices: np.ndarray, base: int, number: int) -> Any:
        _local.rng = np.random.default_rng((base, number))
        try:
            if hasattr(self.dataset, "__getitems__"):
                samples = self.dataset.__getitems__(indices)
            else:
                samples = [self.dataset[int(i)] for i in indices]
            return self.collate_fn(samples)
        finally:
            _local.rng = None

    def __iter__(self) -> Iterator[Any]:
        batches, base = self._plan()
        if self.prefetch == 0:
            return (self._make(b, base, k) for k, b in enumerate(batches))
        return _Prefetcher(self, batches, base)

    def __repr__(self) -> str:
        return (
            f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, "
            f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, prefetch={self.prefetch})"
        )


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


def _produce(
    loader: DataLoader,
    batches: list[np.ndarray],
    base: int,
    out: queue.Queue[Any],
    stop: threading.Event,
) -> None:
    """The background thread's loop. It holds no reference to the iterator object, so
    dropping the iterator (leaving a loop early) runs its ``__del__``, which stops this."""

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    for k, b in enumerate(batches):
        if stop.is_set():
            return
        try:
            item = loader._make(b, base, k)
        except BaseException as err:  # handed to the main thread, raised there
            put(_Failure(err))
            return
        if not put(item):
            return
    put(_END)


class _Prefetcher:
    """Runs ``loader._make`` for the coming batches on a daemon thread, ``prefetch`` ahead."""

    def __init__(self, loader: DataLoader, batches: list[np.ndarray], base: int) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=loader.prefetch)
        self._stop = threading.Event()
        self._done = False
        threading.Thread(
            target=_produce,
            args=(loader, batches, base, self._queue, self._stop),
            name="convlab-prefetch",
            daemon=True,
        ).start()

    def __iter__(self) -> _Prefetcher:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self.close()
            raise StopIteration
        if isinstance(item, _Failure):
            self.close()
            raise item.error
        return item

    def close(self) -> None:
        """Stop the background thread (also done when the iterator is dropped)."""
        self._done = True
        self._stop.set()

    def __del__(self) -> None:
        self._stop.set()
