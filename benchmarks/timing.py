"""Interleaved timing: every contender of a case runs in turn, A B C A B C ..., so drift on a
shared, noisy machine hits all of them alike; we keep medians and compare ratios only.

Two effects of small virtual machines shape the method:

* BLAS and OpenMP worker threads keep spinning after a call (OpenBLAS: up to 2^28 cycles,
  about 70-100 ms) and steal cycles from whatever runs next: between samples we wait, busily
  (a sleeping process lets the hypervisor park the virtual CPUs, and waking them costs
  milliseconds that would land on the next call).
* Waking worker threads costs up to a millisecond: one sample runs the call back to back
  enough times to last about 20 ms and reports the mean, as a training loop would see it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

PAUSE_S = 0.15
SAMPLE_S = 0.02


def _busy_wait(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _calls_per_sample(fn: Callable[[], object]) -> int:
    # time warm calls: the first after a pause also wakes threads and would skew the estimate
    fn()
    calls, start = 0, time.perf_counter()
    while calls < 100 and time.perf_counter() - start < SAMPLE_S / 2:
        fn()
        calls += 1
    once = (time.perf_counter() - start) / calls
    return max(1, min(100, int(SAMPLE_S / max(once, 1e-6))))


def interleaved(
    contenders: dict[str, Callable[[], object] | None], repeats: int, warmup: int = 1
) -> dict[str, float | None]:
    """Median seconds per call of each contender (None where the contender is missing)."""
    active = {name: fn for name, fn in contenders.items() if fn is not None}
    for _ in range(warmup):
        for fn in active.values():
            fn()
    calls = {name: _calls_per_sample(fn) for name, fn in active.items()}
    samples: dict[str, list] = {name: [] for name in active}
    names = list(active)
    for rep in range(repeats):
        for name in names if rep % 2 == 0 else names[::-1]:
            fn, count = active[name], calls[name]
            _busy_wait(PAUSE_S)
            start = time.perf_counter()
            for _ in range(count):
                fn()
            samples[name].append((time.perf_counter() - start) / count)
    return {
        name: (statistics.median(samples[name]) if name in samples else None) for name in contenders
    }
