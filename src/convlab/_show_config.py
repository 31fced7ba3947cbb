"""``convlab.show_config``: what this build and process run with, from every backend."""

from __future__ import annotations

import os
import platform
import sys

from convlab import _settings

__all__ = ["show_config"]


def _bf16_line() -> str:
    from convlab import _precision

    precision = _precision.get_float32_matmul_precision()
    if _precision.cpu_bf16_supported():
        return f"bf16 compute: avx512_bf16 kernels (matmul precision {precision!r})"
    return (
        f"bf16 compute: unavailable, this CPU lacks avx512_bf16 "
        f"(matmul precision {precision!r} computes in float32 here)"
    )


def _config_lines() -> list[str]:
    import numpy

    from convlab import __version__
    from convlab._cpu import _gemm, _runtime
    from convlab.backend import get_backend

    gpu = get_backend("gpu")
    omp = os.environ.get("OMP_NUM_THREADS", "unset")
    return [
        f"convlab {__version__}",
        f"python {sys.version.split()[0]} on {platform.machine()} ({platform.system()})",
        f"numpy {numpy.__version__}",
        f"compiler: {_runtime.compiler()}",
        f"build flags: {_runtime.build_flags()}",
        f"OpenMP: {'on' if _runtime.openmp_enabled() else 'off (serial build)'}",
        f"CPU kernels: {_gemm.get_isa()} (this CPU supports: {', '.join(_gemm.supported_isas())})",
        f"threads: {_settings.get_num_threads()} (OMP_NUM_THREADS={omp})",
        f"workspace limit: {_settings.get_workspace_limit() / 2**20:g} MiB",
        f"allocator policy: {_settings.get_allocator_policy()}",
        _bf16_line(),
        f"GPU: {gpu.describe()}",
    ]


def show_config() -> None:
    """Print the version, build flags, OpenMP, ISA path, threads, heap policy and GPU
    availability."""
    print("\n".join(_config_lines()))
