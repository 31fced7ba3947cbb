"""Run-time settings: CPU threads, the convolution workspace budget, and ``show_config``."""
from __future__ import annotations

import numbers
import os
import platform
import sys

__all__ = ["set_num_threads", "get_num_threads", "max_threads", "set_workspace_limit",
           "get_workspace_limit", "show_config"]

_DEFAULT_WORKSPACE = 64 * 2**20
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
        raise ValueError(f"n: expected a thread count from 1 to {limit} (see max_threads()), "
                         f"got {n}")
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
    """Cap the scratch memory a convolution may use for column buffers (default 64 MiB).

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


def _config_lines() -> list[str]:
    from convlab import __version__
    from convlab._cpu import _gemm, _runtime
    from convlab.backend import get_backend

    gpu = get_backend("gpu")
    lines = [
        f"convlab {__version__}",
        f"python {sys.version.split()[0]} on {platform.machine()} ({platform.system()})",
        f"numpy {__import__('numpy').__version__}",
        f"compiler: {_runtime.compiler()}",
        f"build flags: {_runtime.build_flags()}",
        f"OpenMP: {'on' if _runtime.openmp_enabled() else 'off (serial build)'}",
        f"CPU kernels: {_gemm.get_isa()} (this CPU supports: {', '.join(_gemm.supported_isas())})",
        f"threads: {get_num_threads()} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})",
        f"workspace limit: {get_workspace_limit() / 2**20:g} MiB",
        f"large arrays reuse freed heap blocks: "
        f"{'yes' if get_backend('cpu').keeps_large_blocks else 'no'}",
        f"GPU: {gpu.describe()}",
    ]
    return lines


def show_config() -> None:
    """Print the version, build flags, OpenMP, ISA path, threads and GPU availability."""
    print("\n".join(_config_lines()))
