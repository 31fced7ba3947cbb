"""Run-time settings: CPU threads, the convolution workspace budget, the heap policy.

The store sits below the backends (they read it); :func:`convlab.show_config`, which reports
on every backend, lives above them in :mod:`convlab._show_config`.
"""

from __future__ import annotations

import numbers
import os

__all__ = [
    "set_num_threads",
    "get_num_threads",
    "max_threads",
    "set_workspace_limit",
    "get_workspace_limit",
    "set_allocator_policy",
    "get_allocator_policy",
]

_DEFAULT_WORKSPACE = 128 * 2**20
_THREAD_FLOOR = 64
_workspace_limit = _DEFAULT_WORKSPACE


def set_num_threads(n: int) -> None:
    """Set how many threads the CPU kernels use (OpenMP).

    ``OMP_NUM_THREADS`` sets the starting value; without it, all CPUs this process may run on.
    ``threadpoolctl.threadpool_limits`` limits the same pool. Like OpenMP itself, the setting
    belongs to the calling thread.

    Raises:
        TypeError: If ``n`` is not an int.
        ValueError: If ``n`` is not in ``[1, max_threads()]``.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n: expected an int, got {n!r}")
    limit = max_threads()
    if not 1 <= n <= limit:
        raise ValueError(
            f"n: expected a thread count from 1 to {limit} (see max_threads()), got {n}"
        )
    from convlab._cpu import _runtime

    _runtime.set_num_threads(int(n))


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity
        return os.cpu_count() or 1


def max_threads() -> int:
    """The largest thread count :func:`set_num_threads` takes: 4 x the CPUs this process may
    run on, and at least 64. More threads than that only wait for each other (each holds its
    own packing buffers), and the OpenMP runtime fails outright -- the process exits -- well
    before its own limit of threads."""
    return max(_THREAD_FLOOR, 4 * _usable_cpus())


def get_num_threads() -> int:
    """Number of threads the next CPU kernel call will use."""
    from convlab._cpu import _runtime

    return _runtime.get_num_threads()


def set_workspace_limit(nbytes: int) -> None:
    """Cap the scratch memory a convolution may use for column buffers (default 128 MiB).

    Kernels process the batch in chunks so that no column buffer exceeds the cap.

    Raises:
        TypeError: If ``nbytes`` is not an int.
        ValueError: If ``nbytes`` is below 1 MiB.
    """
    global _workspace_limit
    if isinstance(nbytes, bool) or not isinstance(nbytes, numbers.Integral):
        raise TypeError(f"nbytes: expected an int, got {nbytes!r}")
    if nbytes < 2**20:
        raise ValueError(f"nbytes: expected at least 1 MiB (1048576), got {nbytes}")
    _workspace_limit = int(nbytes)


def get_workspace_limit() -> int:
    """The convolution workspace cap in bytes."""
    return _workspace_limit


_ALLOCATOR_POLICIES = ("reuse", "system")
_allocator_policy: str | None = None  # None: the starting value is not applied yet


def _starting_allocator_policy() -> str:
    value = os.environ.get("CONVLAB_ALLOCATOR", "").strip().lower()
    if value in _ALLOCATOR_POLICIES:
        return value
    # the older switch: CONVLAB_KEEP_LARGE_BLOCKS=0 keeps the C library's default
    keep = os.environ.get("CONVLAB_KEEP_LARGE_BLOCKS", "1").strip().lower()
    return "system" if keep in {"0", "false", "no", "off"} else "reuse"


def set_allocator_policy(policy: str) -> None:
    """Choose how the C library's heap serves large arrays (process-wide; glibc only).

    * ``"reuse"`` (the default): arrays up to 512 MiB come from the heap, so a freed
      activation's pages are reused, already mapped, by the next step's. Without it each
      array above glibc's mmap threshold is a fresh mapping whose pages fault in on first
      touch, every training step (~3 ms per 40 MB; PyTorch's allocator reuses blocks too).
    * ``"system"``: glibc's documented defaults (128 KiB thresholds).

    ``CONVLAB_ALLOCATOR`` sets the starting value, applied when the CPU backend is first
    used; elsewhere than glibc the setting is recorded and changes nothing.

    Raises:
        ValueError: For another name.
    """
    global _allocator_policy
    if policy not in _ALLOCATOR_POLICIES:
        raise ValueError(
            f"policy: expected one of {', '.join(map(repr, _ALLOCATOR_POLICIES))}, got {policy!r}"
        )
    from convlab._cpu import _runtime

    _runtime.set_large_block_limit(512 * 2**20 if policy == "reuse" else 0)
    _allocator_policy = policy


def get_allocator_policy() -> str:
    """The heap policy in force (``"reuse"`` or ``"system"``), see
    :func:`set_allocator_policy`."""
    return _allocator_policy or _starting_allocator_policy()


def apply_starting_allocator_policy() -> None:
    """Put the starting heap policy in force, once (called as the CPU backend is created)."""
    if _allocator_policy is None:
        set_allocator_policy(_starting_allocator_policy())
