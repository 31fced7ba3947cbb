"""The worker processes behind ``DataLoader(num_workers > 0)`` and :func:`get_worker_info`.

Protocol: the main process sends each worker, on its own index queue, tasks
``(epoch, number, task)`` round-robin over the workers that still have data, at most
``prefetch_factor * num_workers`` outstanding; each worker answers every task on the shared
result queue with ``(epoch, number, worker_id, kind, payload)`` where ``kind`` is ``"ok"``
(payload: the batch, pickled in the worker), ``"error"`` (the exception's type, pickled when
it can be, and its traceback text) or ``"end"`` (an iterable dataset's copy in that worker
is exhausted). The main process reorders the answers by ``number``, so batches come out in
the order they were planned. ``None`` on an index queue stops the worker.

Pickle only crosses between the loader and its own workers (the batches a worker built, never
a file or socket a user supplies).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import queue
import random
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["WorkerInfo", "get_worker_info"]

_POLL_S = 0.2  # how often a waiting process checks that its peers are alive

_worker_info: WorkerInfo | None = None


class WorkerInfo:
    """What :func:`get_worker_info` returns inside a worker process (read-only).

    Attributes:
        id: This worker's number, ``0 .. num_workers - 1``.
        num_workers: How many workers the loader runs.
        seed: The seed this worker's generators were seeded with (base seed + ``id``).
        dataset: This worker's copy of the dataset.
    """

    id: int
    num_workers: int
    seed: int
    dataset: Any

    def __init__(self, **kwargs: Any) -> None:
        for k, v in kwargs.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_frozen", True)

    def __setattr__(self, name: str, value: Any) -> None:
        raise RuntimeError(f"{type(self).__name__} is read-only: cannot set {name!r}")

    def __repr__(self) -> str:
        return (
            f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed}, "
            f"dataset={type(self.dataset).__name__})"
        )


def get_worker_info() -> WorkerInfo | None:
    """In a :class:`~convlab.data.DataLoader` worker process, its :class:`WorkerInfo`
    (``id``, ``num_workers``, ``seed``, ``dataset``); None in the main process.

    An :class:`~convlab.data.IterableDataset` uses it to give each worker its share.
    """
    return _worker_info


def _seed_worker(seed: int) -> None:
    """Seed what a worker may draw from, as PyTorch does: ``random``, NumPy's legacy global
    generator and convlab's generator (CPU only: a forked child must not touch the GPU)."""
    import convlab._random as _random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    _random._host = np.random.default_rng(seed)


def _error_payload(err: BaseException, worker_id: int) -> tuple[bytes | None, str, str]:
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    try:
        kind: bytes | None = pickle.dumps(type(err))
    except Exception:  # noqa: BLE001 - a class pickle cannot name: re-raised as RuntimeError
        kind = None
    return (
        kind,
        type(err).__name__,
        (f"Caught {type(err).__name__} in DataLoader worker process {worker_id}.\nOriginal {text}"),
    )


def _worker_loop(
    loader: Any,
    index_queue: Any,
    result_queue: Any,
    done: Any,
    seed: int,
    worker_id: int,
    num_workers: int,
    parent: int,
) -> None:
    global _worker_info
    try:
        from convlab._settings import set_num_threads

        set_num_threads(1)  # an OpenMP pool inherited through fork is not usable here
    except Exception:  # noqa: BLE001 - no compiled runtime: nothing to limit
        pass
    _seed_worker(seed)
    _worker_info = WorkerInfo(
        id=worker_id, num_workers=num_workers, seed=seed, dataset=loader.dataset
    )
    init_error: BaseException | None = None
    if loader.worker_init_fn is not None:
        try:
            loader.worker_init_fn(worker_id)
        except Exception as err:  # noqa: BLE001 - answered to the first task
            init_error = err
    epoch, source, exhausted = -1, None, False
    try:
        while not done.is_set():
            try:
                message = index_queue.get(timeout=_POLL_S)
            except queue.Empty:
                if os.getppid() != parent:
                    break  # the main process is gone
                continue
            if message is None:
                break
            task_epoch, number, task, base = message
            if task_epoch != epoch:
                epoch, exhausted = task_epoch, False
                source = None
            kind: str
            payload: Any
            if init_error is not None:
                kind, payload = "error", _error_payload(init_error, worker_id)
                init_error = None
            elif exhausted:
                kind, payload = "end", None
            else:
                try:
                    if source is None:
                        source = iter(loader.dataset) if loader._iterable else loader.dataset
                    batch = loader._fetch(source, task, base, number)
                    kind, payload = "ok", pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
                except StopIteration:
                    exhausted = True
                    kind, payload = "end", None
                except Exception as err:  # noqa: BLE001 - re-raised in the main process
                    kind, payload = "error", _error_payload(err, worker_id)
            result_queue.put((task_epoch, number, worker_id, kind, payload))
    except KeyboardInterrupt:
        pass
    if done.is_set():
        result_queue.cancel_join_thread()
    result_queue.close()


def _context(spec: Any) -> Any:
    if spec is None:
        methods = multiprocessing.get_all_start_methods()
        return multiprocessing.get_context(
            "fork" if sys.platform.startswith("linux") and "fork" in methods else None
        )
    if isinstance(spec, str):
        return multiprocessing.get_context(spec)
    return spec


class _KeyErrorMessage(str):
    """A KeyError's message printed as it is (KeyError shows its argument's repr)."""

    def __repr__(self) -> str:
        return str(self)


def _raise(payload: tuple[bytes | None, str, str]) -> None:
    kind, name, message = payload
    error_type: Any = RuntimeError
    if kind is not None:
        try:
            error_type = pickle.loads(kind)
        except Exception:  # noqa: BLE001
            error_type = RuntimeError
    if isinstance(error_type, type) and issubclass(error_type, KeyError):
        message = _KeyErrorMessage(message)
    try:
        error = error_type(message)
    except Exception:  # noqa: BLE001 - a constructor that needs other arguments
        error = RuntimeError(message)
    if not isinstance(error, BaseException):
        error = RuntimeError(message)
    raise error


class _WorkerIterator:
    """Runs ``loader.num_workers`` worker processes and hands their batches out in order.

    One object per epoch, or, with ``persistent_workers``, one per loader whose
    :meth:`start_epoch` begins each epoch on the same processes.
    """

    def __init__(self, loader: Any, base: int) -> None:
        ctx = _context(loader.multiprocessing_context)
        self._n = loader.num_workers
        self._capacity = loader.prefetch_factor * self._n
        self._timeout = loader.timeout
        self._pin = loader.pin_memory
        self._persistent = loader.persistent_workers
        self._result_queue = ctx.Queue()
        self._done = ctx.Event()
        self._index_queues: list[Any] = []
        self._workers: list[Any] = []
        self.closed = False
        self._owner = os.getpid()  # a forked child's copy of this object must not close it
        self._epoch = -1
        try:
            for i in range(self._n):
                index_queue = ctx.Queue()
                index_queue.cancel_join_thread()
                worker = ctx.Process(
                    target=_worker_loop,
                    args=(
                        loader,
                        index_queue,
                        self._result_queue,
                        self._done,
                        base + i,
                        i,
                        self._n,
                        os.getpid(),
                    ),
                    name=f"convlab-loader-{i}",
                    daemon=True,
                )
                worker.start()
                self._index_queues.append(index_queue)
                self._workers.append(worker)
        except BaseException:
            self.close()
            raise

    def start_epoch(self, tasks: Iterator[Any], base: int) -> None:
        """Begin an epoch: answers still due from an earlier one are dropped."""
        self._epoch += 1
        self._tasks = tasks
        self._base = base
        self._sent = self._received = self._outstanding = 0
        self._ready: dict[int, tuple[int, str, Any]] = {}
        self._active = [True] * self._n
        self._cycle = itertools.cycle(range(self._n))
        for _ in range(self._capacity):
            self._send()

    def _send(self) -> None:
        if self._outstanding >= self._capacity:
            return
        for _ in range(self._n):
            worker = next(self._cycle)
            if self._active[worker]:
                break
        else:
            return
        try:
            task = next(self._tasks)
        except StopIteration:
            return
        self._index_queues[worker].put((self._epoch, self._sent, task, self._base))
        self._sent += 1
        self._outstanding += 1

    def _get(self) -> tuple[int, int, int, str, Any]:
        deadline = time.monotonic() + self._timeout if self._timeout > 0 else None
        while True:
            wait = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
            try:
                item: tuple[int, int, int, str, Any] = self._result_queue.get(
                    timeout=max(wait, 0.0)
                )
                return item
            except queue.Empty:
                dead = [w for w in self._workers if not w.is_alive()]
                if dead:
                    self.close()
                    details = ", ".join(f"pid {w.pid}, exit code {w.exitcode}" for w in dead)
                    raise RuntimeError(
                        f"DataLoader worker ({details}) exited unexpectedly"
                    ) from None
                if deadline is not None and time.monotonic() >= deadline:
                    self.close()
                    raise RuntimeError(
                        f"DataLoader timed out after {self._timeout:g} seconds"
                    ) from None

    def __iter__(self) -> _WorkerIterator:
        return self

    def __next__(self) -> Any:
        if self.closed:
            raise StopIteration
        while True:
            if self._received in self._ready:
                worker, kind, payload = self._ready.pop(self._received)
                self._received += 1
                if kind == "end":
                    self._active[worker] = False
                    self._send()
                    continue
                self._send()
                if kind == "error":
                    if not self._persistent:
                        self.close()
                    _raise(payload)
                batch = pickle.loads(payload)
                if self._pin:
                    from convlab.data.loader import _pin

                    batch = _pin(batch)
                return batch
            if self._received >= self._sent:
                if not self._persistent:
                    self.close()
                raise StopIteration
            epoch, number, worker, kind, payload = self._get()
            if epoch != self._epoch:
                continue
            self._outstanding -= 1
            self._ready[number] = (worker, kind, payload)

    def close(self) -> None:
        """Stop the workers and wait for them (also done when the iterator is dropped)."""
        if self.closed or os.getpid() != self._owner:
            return
        self.closed = True
        self._done.set()
        for q in self._index_queues:
            try:
                q.put(None)
            except Exception:  # noqa: BLE001 - a queue already closed
                pass
        for w in self._workers:
            w.join(timeout=2)
            if w.is_alive():
                w.terminate()
                w.join(timeout=2)
        for q in (*self._index_queues, self._result_queue):
            q.cancel_join_thread()
            q.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: the processes are daemons
            pass
