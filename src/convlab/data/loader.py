""":class:`DataLoader`: batches from a dataset, shuffled reproducibly, prepared in the background.

Example:
    >>> import numpy as np
    >>> from convlab.data import DataLoader, TensorDataset
    >>> ds = TensorDataset(np.arange(10, dtype=np.float32).reshape(5, 2), np.arange(5))
    >>> [tuple(x.shape) for x, y in DataLoader(ds, batch_size=2)]
    [(2, 2), (2, 2), (1, 2)]
"""

from __future__ import annotations

import copy
import itertools
import numbers
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np

from convlab.data._worker import WorkerInfo, _WorkerIterator, get_worker_info

__all__ = [
    "DataLoader",
    "default_collate",
    "default_convert",
    "sample_rng",
    "get_worker_info",
    "WorkerInfo",
]

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
    """The NumPy stream for a ``generator`` argument (see :func:`convlab.data.sampler`)."""
    from convlab.data.sampler import _generator as stream

    rng = stream(seed)
    if rng is None:
        from convlab._random import host_generator

        return host_generator()
    return rng


_COLLATE_HELP = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, strings, dicts, "
    "tuples or lists"
)


def default_collate(samples: list[Any]) -> Any:
    """Stack a list of samples into a batch, as PyTorch's ``default_collate`` does.

    Tensors, arrays and NumPy scalars are stacked along a new first dimension into a convlab
    tensor (keeping their dtype); Python ints become an int64 tensor, floats a float64
    tensor, bools a bool tensor; ``str``, ``numpy.str_`` and ``bytes`` stay a list. Mappings
    are collated key by key (into the same mapping type when it can be built from a dict),
    namedtuples field by field into the same namedtuple, and other sequences position by
    position -- a tuple of fields becomes a list of batches, as in PyTorch.

    Errors name the offending field, e.g. ``samples[0]['image']``.

    Raises:
        ValueError: If the samples' shapes, lengths or keys differ.
        TypeError: For a sample type it cannot batch (strings or objects in an array, other
            objects).
    """
    if not isinstance(samples, Sequence) or not samples:
        raise ValueError(f"samples: expected a non-empty list of samples, got {samples!r}")
    return _collate(samples, "samples")


def _collate(samples: Sequence[Any], where: str) -> Any:
    import convlab
    from convlab._tensor import Tensor

    first = samples[0]
    if isinstance(first, (str, bytes)):
        return samples  # as PyTorch: the list given, or a tuple for a field of tuples
    if isinstance(first, (Tensor, np.ndarray, np.generic)):
        arrays = [s.numpy() if isinstance(s, Tensor) else np.asarray(s) for s in samples]
        kinds = {a.dtype.kind for a in arrays}
        if kinds & set("OUSV"):
            raise TypeError(
                f"{where}: {_COLLATE_HELP}; found arrays of dtype "
                f"{sorted(str(a.dtype) for a in arrays)[0]}"
            )
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ValueError(
                f"{where}: cannot stack a batch of different shapes "
                f"{sorted(shapes)}; pass a collate_fn that pads or crops"
            )
        return convlab.from_numpy(np.stack(arrays))
    if isinstance(first, (bool, np.bool_)):
        return convlab.from_numpy(np.asarray(samples, dtype=np.bool_))
    if isinstance(first, numbers.Integral):
        return convlab.from_numpy(np.asarray(samples, dtype=np.int64))
    if isinstance(first, numbers.Real):
        return convlab.from_numpy(np.asarray(samples, dtype=np.float64))
    if isinstance(first, Mapping):
        keys = list(first.keys())
        for j, s in enumerate(samples):
            if not isinstance(s, Mapping) or set(s.keys()) != set(keys):
                got = sorted(map(repr, s.keys())) if isinstance(s, Mapping) else type(s).__name__
                raise ValueError(
                    f"{where}[{j}]: dict samples in a batch must have the same keys; "
                    f"expected {sorted(map(repr, keys))}, got {got}"
                )
        out = {k: _collate([s[k] for s in samples], f"{where}[{k!r}]") for k in keys}
        if isinstance(first, MutableMapping):
            try:
                clone = copy.copy(first)
                clone.update(out)
                return clone
            except Exception:  # noqa: BLE001 - a mapping that cannot be copied: a plain dict
                return out
        try:
            return type(first)(out)  # type: ignore[call-arg]
        except Exception:  # noqa: BLE001
            return out
    if isinstance(first, Sequence):
        lengths = [len(s) if isinstance(s, Sequence) else -1 for s in samples]
        if len(set(lengths)) != 1:
            raise ValueError(
                f"{where}: each sample in a batch must be a sequence of the same length, "
                f"got lengths {lengths}"
            )
        fields = getattr(first, "_fields", None)
        if isinstance(first, tuple) and fields is not None:  # a namedtuple
            return type(first)(
                *(_collate(col, f"{where}.{name}") for name, col in zip(fields, zip(*samples)))
            )
        columns = [_collate(col, f"{where}[{k}]") for k, col in enumerate(zip(*samples))]
        if isinstance(first, (tuple, list)):
            return columns
        try:
            return type(first)(columns)  # type: ignore[call-arg]
        except Exception:  # noqa: BLE001
            return columns
    raise TypeError(
        f"{where}: default_collate cannot batch {type(first).__name__}; pass a collate_fn "
        f"({_COLLATE_HELP})"
    )


def default_convert(data: Any) -> Any:
    """What :class:`DataLoader` does to each sample when ``batch_size=None``: NumPy arrays
    (of numbers) and scalars become convlab tensors, inside mappings, namedtuples and
    sequences too; everything else is returned as it is."""
    import convlab

    if isinstance(data, np.ndarray) and data.dtype.kind in "biufc":
        return convlab.from_numpy(data)
    if isinstance(data, np.generic) and data.dtype.kind in "biufc":
        return convlab.from_numpy(np.asarray(data))
    if isinstance(data, (str, bytes)):
        return data
    if isinstance(data, Mapping):
        out = {k: default_convert(v) for k, v in data.items()}
        try:
            return type(data)(out)  # type: ignore[call-arg]
        except Exception:  # noqa: BLE001
            return out
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, Sequence):
        items = [default_convert(d) for d in data]
        try:
            return type(data)(items)  # type: ignore[call-arg]
        except Exception:  # noqa: BLE001
            return items
    return data


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (numbers.Integral, np.integer))
        or value < minimum
    ):
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


class DataLoader:
    """Iterate over a dataset in batches, as PyTorch's ``torch.utils.data.DataLoader``.

    Args:
        dataset: A map-style dataset (``len`` and ``dataset[i]``; ``__getitems__`` is used
            when defined) or an :class:`~convlab.data.IterableDataset`.
        batch_size: Samples per batch; None turns batching off (each sample goes through
            :func:`default_convert`, or ``collate_fn`` when given).
        shuffle: A new random order every epoch (a :class:`~convlab.data.RandomSampler`).
        sampler: The order of the indices (any iterable of indices); excludes ``shuffle``.
        batch_sampler: Yields whole lists of indices; excludes ``batch_size``, ``shuffle``,
            ``sampler`` and ``drop_last``.
        num_workers: Worker processes that load batches (0: the main process, with the
            ``prefetch`` thread). Each worker gets the dataset, ``collate_fn`` and
            ``worker_init_fn`` (forked on Linux, pickled under the spawn method); the batches
            come back pickled -- between convlab's own processes only, never from a file.
            Batches arrive in the same order, and with the same contents, as with 0 workers.
        collate_fn: Turns a list of samples into a batch (default :func:`default_collate`).
        pin_memory: Copy each batch's CPU tensors into page-locked memory when a GPU is
            present (faster transfers to it); without a GPU it does nothing.
        drop_last: Leave out the last batch when it is smaller than ``batch_size``.
        timeout: Seconds to wait for a batch from the workers before raising (0: forever).
        worker_init_fn: Called in each worker with its id, after seeding, before loading.
        multiprocessing_context: A start method name (``"fork"``, ``"spawn"``,
            ``"forkserver"``) or a context; default fork where available, else spawn.
        generator: A :class:`convlab.Generator`, an int seed or a ``numpy.random.Generator``
            for the order, the random
            transforms (:func:`sample_rng`) and the workers' seeds; None uses convlab's
            generator (:func:`convlab.manual_seed`).
        prefetch_factor: Batches each worker loads ahead (default 2 with workers; must be
            None without them).
        persistent_workers: Keep the worker processes alive from one epoch to the next.
        pin_memory_device: Accepted for compatibility; the GPU is the only pinning device.
        in_order: Accepted for compatibility; batches always arrive in order.
        seed: Same as an int ``generator`` (give one of the two).
        prefetch: Batches prepared ahead by a background thread while the model computes
            when ``num_workers`` is 0; 0 prepares each batch when it is asked for. The
            batches are the same either way.

    Each epoch draws one 63-bit base seed from the generator (after the shuffled order):
    batch ``k``'s :func:`sample_rng` is seeded with ``(base, k)``, and worker ``i`` seeds
    Python's ``random``, NumPy's legacy global generator and convlab's generator with
    ``base + i`` when it starts (:func:`get_worker_info` reports it), as PyTorch does.

    Raises:
        ValueError: For a batch size < 1, a negative ``prefetch``, ``num_workers`` or
            ``timeout``, options that exclude each other, or both ``generator`` and ``seed``.
        TypeError: For a dataset that is neither map-style nor iterable.
    """

    dataset: Any
    batch_size: int | None
    shuffle: bool
    drop_last: bool
    sampler: Any
    batch_sampler: Any
    num_workers: int
    timeout: float
    prefetch_factor: int | None
    persistent_workers: bool
    pin_memory: bool
    prefetch: int
    _iterable: bool

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Any = None,
        batch_sampler: Any = None,
        num_workers: int = 0,
        collate_fn: Callable[[Any], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context: Any = None,
        generator: Any = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
        seed: int | None = None,
        prefetch: int = 2,
    ) -> None:
        from convlab.data.dataset import IterableDataset
        from convlab.data.sampler import (
            BatchSampler,
            RandomSampler,
            SequentialSampler,
        )

        iterable = isinstance(dataset, IterableDataset)
        if not iterable and (
            not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__")
        ):
            raise TypeError(
                f"dataset: expected a map-style dataset with __len__ and "
                f"__getitem__, got {type(dataset).__name__}"
            )
        if generator is not None and seed is not None:
            raise ValueError("generator, seed: give one of the two, not both")
        self.dataset = dataset
        self.num_workers = _positive_int("num_workers", num_workers, minimum=0)
        if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or timeout < 0:
            raise ValueError(f"timeout: expected a number of seconds >= 0, got {timeout!r}")
        self.timeout = float(timeout)
        if self.num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "prefetch_factor: only used with num_workers > 0; leave it None otherwise"
            )
        self.prefetch_factor = (
            _positive_int("prefetch_factor", prefetch_factor, minimum=1)
            if prefetch_factor is not None
            else (2 if self.num_workers else None)
        )
        if persistent_workers and self.num_workers == 0:
            raise ValueError("persistent_workers: needs num_workers > 0")
        self.persistent_workers = bool(persistent_workers)
        self.pin_memory, self.pin_memory_device = bool(pin_memory), pin_memory_device
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = in_order
        self.prefetch = _positive_int("prefetch", prefetch, minimum=0)
        self.generator = seed if seed is not None else generator
        self._rng: np.random.Generator | None = (
            None if self.generator is None else _generator(self.generator)
        )
        if iterable:
            if shuffle not in (None, False):
                raise ValueError(
                    f"shuffle: DataLoader with IterableDataset: expected unspecified shuffle "
                    f"option, but got shuffle={shuffle}"
                )
            for name, value in (("sampler", sampler), ("batch_sampler", batch_sampler)):
                if value is not None:
                    raise ValueError(
                        f"{name}: DataLoader with IterableDataset: expected unspecified "
                        f"{name} option, but got {name}={value!r}"
                    )
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler, shuffle: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler: batch_sampler option is mutually exclusive with "
                    "batch_size, shuffle, sampler, and drop_last"
                )
            batch_size, drop_last = None, False
        elif batch_size is None:
            if drop_last:
                raise ValueError(
                    "batch_size, drop_last: batch_size=None option disables auto-batching "
                    "and is mutually exclusive with drop_last"
                )
        else:
            batch_size = _positive_int("batch_size", batch_size)
        self.batch_size, self.drop_last = batch_size, bool(drop_last)
        self.shuffle = shuffle
        if sampler is None and not iterable:
            sampler = (
                RandomSampler(dataset, generator=self._rng)
                if shuffle
                else (SequentialSampler(dataset))
            )
        self.sampler = sampler
        if batch_sampler is None and batch_size is not None and not iterable:
            batch_sampler = BatchSampler(sampler, batch_size, self.drop_last)
        self.batch_sampler = batch_sampler
        self._iterable = iterable
        self.collate_fn: Callable[[Any], Any] = collate_fn or (
            default_collate if self._auto_collation else default_convert
        )
        self._persistent: _WorkerIterator | None = None

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None or (self._iterable and self.batch_size is not None)

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        index_sampler = self.batch_sampler if self.batch_sampler is not None else self.sampler
        return len(index_sampler)

    def _tasks(self) -> Iterator[Any]:
        """This epoch's tasks: index lists, single indices, or (iterable datasets) how many
        samples to take -- ``batch_size``, or None for one uncollated sample."""
        if self._iterable:
            return itertools.repeat(self.batch_size)
        return iter(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def _base_seed(self) -> int:
        if self._rng is not None:
            return int(self._rng.integers(2**63))
        from convlab._random import host_generator

        return int(host_generator().integers(2**63))

    def _fetch(self, source: Any, task: Any, base: int, number: int) -> Any:
        """Load and collate one batch; ``source`` is the dataset or, for an iterable one,
        its iterator. Raises StopIteration when an iterable dataset has no sample left."""
        _local.rng = np.random.default_rng((base, number))
        try:
            if self._iterable:
                if task is None:
                    return self.collate_fn(next(source))
                samples = list(itertools.islice(source, task))
                if not samples or (self.drop_last and len(samples) < task):
                    raise StopIteration
            elif not self._auto_collation:
                return self.collate_fn(source[task])
            elif hasattr(source, "__getitems__"):
                samples = source.__getitems__(task)
            else:
                samples = [source[int(i)] for i in task]
            return self.collate_fn(samples)
        finally:
            _local.rng = None

    def _single_process(self, tasks: Iterator[Any], base: int) -> Iterator[Any]:
        source = iter(self.dataset) if self._iterable else self.dataset
        for number, task in enumerate(tasks):
            try:
                batch = self._fetch(source, task, base, number)
            except StopIteration:
                return
            yield _pin(batch) if self.pin_memory else batch

    def __iter__(self) -> Iterator[Any]:
        tasks = self._tasks()  # a random sampler draws its order here, before the base seed
        base = self._base_seed()
        if self.num_workers == 0:
            batches = self._single_process(tasks, base)
            return batches if self.prefetch == 0 else _Prefetcher(batches, self.prefetch)
        if self.persistent_workers:
            if self._persistent is None or self._persistent.closed:
                self._persistent = _WorkerIterator(self, base)
            self._persistent.start_epoch(tasks, base)
            return self._persistent
        iterator = _WorkerIterator(self, base)
        iterator.start_epoch(tasks, base)
        return iterator

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_persistent"] = None  # the processes stay with this loader (spawned workers)
        return state

    def __del__(self) -> None:
        workers = getattr(self, "_persistent", None)
        if workers is not None:
            workers.close()

    def __repr__(self) -> str:
        size = len(self.dataset) if hasattr(self.dataset, "__len__") else "?"
        return (
            f"DataLoader({type(self.dataset).__name__} of {size}, "
            f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, num_workers={self.num_workers}, "
            f"prefetch={self.prefetch})"
        )


def _pin(data: Any) -> Any:
    """``data`` with its CPU tensors copied into page-locked memory; unchanged without a GPU."""
    from convlab._tensor import Tensor
    from convlab.backend import get_backend

    gpu = get_backend("gpu")
    if not gpu.is_available():
        return data
    import cupyx

    import convlab

    def pin(x: Any) -> Any:
        if isinstance(x, Tensor):
            if x.device != "cpu":
                return x
            array = x.numpy()
            pinned = cupyx.empty_pinned(array.shape, array.dtype)
            pinned[...] = array
            return convlab.from_numpy(pinned)
        if isinstance(x, Mapping):
            out = {k: pin(v) for k, v in x.items()}
            try:
                return type(x)(out)  # type: ignore[call-arg]
            except Exception:  # noqa: BLE001
                return out
        if isinstance(x, tuple) and hasattr(x, "_fields"):
            return type(x)(*(pin(v) for v in x))
        if isinstance(x, (list, tuple)):
            return type(x)(pin(v) for v in x)
        return x

    return pin(data)


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


def _produce(batches: Iterator[Any], out: queue.Queue[Any], stop: threading.Event) -> None:
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

    while not stop.is_set():
        try:
            item = next(batches)
        except StopIteration:
            put(_END)
            return
        except BaseException as err:  # handed to the main thread, raised there
            put(_Failure(err))
            return
        if not put(item):
            return


class _Prefetcher:
    """Runs the batch generator on a daemon thread, ``prefetch`` batches ahead."""

    def __init__(self, batches: Iterator[Any], prefetch: int) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._done = False
        threading.Thread(
            target=_produce,
            args=(batches, self._queue, self._stop),
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
