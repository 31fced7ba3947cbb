"""The benchmarks' yardsticks (``yardsticks.c``): the measured FMA peak and the binary layer's
memory floor. Benchmark code only: compiled with the C compiler Python was built with on first
use into the temporary directory (keyed by the source and the compiler), loaded with ctypes.
Without a working compiler ``available()`` is False and the benchmarks print no yardsticks."""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shlex
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

_SOURCE = Path(__file__).resolve().with_name("yardsticks.c")
_ISAS = {"generic": 0, "avx2": 1, "avx512": 2}


def _compilers() -> list[list[str]]:
    """Compiler commands to try: the one Python was built with, $CC, then cc and gcc."""
    names = [sysconfig.get_config_var("CC"), os.environ.get("CC"), "cc", "gcc"]
    commands = [shlex.split(name) for name in names if name]
    return [c for i, c in enumerate(commands) if c and c not in commands[:i]]


def _build(path: Path) -> bool:
    """Compiles yardsticks.c into ``path``: with OpenMP where the compiler has it."""
    scratch = path.with_suffix(f".{os.getpid()}.tmp")
    for compiler in _compilers():
        for flags in (["-fopenmp"], []):
            command = [
                *compiler,
                "-O3",
                "-shared",
                "-fPIC",
                *flags,
                str(_SOURCE),
                "-o",
                str(scratch),
            ]
            try:
                done = subprocess.run(command, capture_output=True, timeout=120)
            except (OSError, subprocess.TimeoutExpired):
                break  # no such compiler: try the next
            if done.returncode == 0:
                os.replace(scratch, path)
                return True
    return False


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    key = hashlib.sha256(_SOURCE.read_bytes() + repr(_compilers()).encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"convlab-yardsticks-{os.getuid()}-{key}.so"
    if not path.exists() and not _build(path):
        return None
    lib = ctypes.CDLL(str(path))
    lib.ys_peak.argtypes = [
        ctypes.c_int,
        ctypes.c_int64,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_double),
    ]
    lib.ys_peak.restype = None
    lib.ys_memory_floor.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_int,
        ctypes.c_int,
    ]
    lib.ys_memory_floor.restype = ctypes.c_double
    return lib


def available() -> bool:
    """Whether the yardsticks could be compiled here."""
    return _library() is not None


def fma_peak_gflops(threads: int, isa: str, seconds: float = 0.2) -> float | None:
    """Single-precision FMA peak (GFLOP/s) on ``threads`` threads with the widest vectors of
    ``isa`` (``"generic"``, ``"avx2"``, ``"avx512"``: the one convlab's kernels use)."""
    lib = _library()
    if lib is None:
        return None
    code = _ISAS.get(isa, 0)
    flops = (ctypes.c_double * threads)()
    rounds = 1 << 16
    lib.ys_peak(code, rounds, 1, flops)  # warm up, then calibrate the round count
    start = time.perf_counter()
    lib.ys_peak(code, rounds, 1, flops)
    elapsed = time.perf_counter() - start
    rounds = max(rounds, int(rounds * seconds / max(elapsed, 1e-6)))
    start = time.perf_counter()
    lib.ys_peak(code, rounds, threads, flops)
    elapsed = time.perf_counter() - start
    return sum(flops) / elapsed / 1e9


def memory_floor(out: np.ndarray, grad: np.ndarray, threads: int, isa: str) -> float:
    """Writes every element of float32 ``out`` as a layer writes its output, then reads float32
    ``grad`` once in order; returns the sum of ``grad`` (so that the reads stay)."""
    lib = _library()
    if lib is None:
        raise RuntimeError("yardsticks: no working C compiler")
    if (
        out.dtype != np.float32
        or grad.dtype != np.float32
        or out.ndim != 1
        or grad.ndim != 1
        or not out.flags.c_contiguous
        or not out.flags.writeable
        or not grad.flags.c_contiguous
    ):
        raise ValueError("memory_floor: expected contiguous 1-D float32 arrays")
    return lib.ys_memory_floor(
        out.ctypes.data, out.size, grad.ctypes.data, grad.size, threads, int(isa == "avx512")
    )
