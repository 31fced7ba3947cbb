"""The GPU kernels' launch constants, written once, and the grid sizes taken from the device.

``CONSTANTS[family]`` holds the numbers ``kernels/<family>.cu`` is compiled with: block sizes
its ``__launch_bounds__`` and shared arrays assume, tile sizes, per-thread work. They reach
the compiler as ``-DNAME=value`` options (:func:`options`): NVRTC through
:mod:`convlab._gpu.modules`, nvcc in CI through
``python -m convlab._gpu.launch --nvcc-options FAMILY``, the tests' CUDA emulator through the
options CuPy's ``RawModule`` is given. A source names its constants in an ``#error`` guard and
defines none of them, so a value exists here only; the launches in
:mod:`convlab._gpu.backend` and :mod:`convlab._gpu.binary` read the same entries.

Grids meant to fill the device are a multiple of its multiprocessor count (queried once per
device) by the ``*_BLOCKS_PER_SM`` occupancy factors below; the hardware's grid limits stay
limits.

This module imports nothing from CuPy until a device is asked about (CI runs it without one).
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence

__all__ = [
    "CONSTANTS",
    "HEADERS",
    "THREADS",
    "MAX_GRID_YZ",
    "GRID_BLOCKS_PER_SM",
    "GEMM_BLOCKS_PER_SM",
    "BIN_HISTOGRAM_BLOCKS_PER_SM",
    "options",
    "multiprocessors",
    "device_blocks",
]

#: family -> the constants its source is compiled with (``-DNAME=value``)
CONSTANTS: dict[str, dict[str, int]] = {
    "gemm": {
        # threads of a block: one BM/TM x BN/TN register tile each (gemm.cu checks it)
        "GEMM_THREADS": 256,
        # depth of the slices of A and B staged through shared memory
        "GEMM_BK": 8,
        # the rows x columns of C a block computes (BM x BN) and a thread holds (TM x TN):
        # float32; float32 with at most 64 rows (gemm_m64); float64 (both entry points)
        "GEMM_F32_BM": 128,
        "GEMM_F32_BN": 128,
        "GEMM_F32_TM": 8,
        "GEMM_F32_TN": 8,
        "GEMM_M64_F32_BM": 64,
        "GEMM_M64_F32_BN": 128,
        "GEMM_M64_F32_TM": 4,
        "GEMM_M64_F32_TN": 8,
        "GEMM_F64_BM": 64,
        "GEMM_F64_BN": 64,
        "GEMM_F64_TM": 4,
        "GEMM_F64_TN": 4,
    },
    "gemm_tc": {
        # tensor-core GEMM (TF32 / bf16 inputs, float32 accumulation): threads of a block as
        # WARPS_M x WARPS_N warps, the BM x BN tile of C it computes over BK-deep slices, and
        # the padding of the shared tiles' rows (elements: keeps wmma's 32-byte fragment
        # alignment for 4- and 2-byte elements and spreads the rows over the banks)
        "GEMM_TC_THREADS": 256,
        "GEMM_TC_WARPS_M": 2,
        "GEMM_TC_WARPS_N": 4,
        "GEMM_TC_BM": 128,
        "GEMM_TC_BN": 128,
        "GEMM_TC_BK": 32,
        "GEMM_TC_PAD": 8,
        # the rows of C a block of the gemm_m64_* entry points computes (C of at most that
        # many rows)
        "GEMM_TC_M64_BM": 64,
    },
    "im2col": {},
    "pool": {},
    "binary_conv": {
        # forward: threads of a block and the blocks a multiprocessor keeps (register budget),
        # and the output channels one thread computes
        "BIN_FORWARD_THREADS": 256,
        "BIN_FORWARD_MIN_BLOCKS": 4,
        "BIN_CHANNELS": 16,
        # the weight-gradient sums: threads of a block, the kernel sub-rows one histogram
        # block takes, the column classes one colsum pass keeps in registers
        "BIN_SUM_THREADS": 128,
        "BIN_GROUP": 5,
        "BIN_CLASSES": 8,
    },
    "elementwise": {},
    "grouped_conv": {
        # the weight gradient's block: its threads split one weight element's N*OH*OW
        # products, then a tree reduction (a power of two)
        "GCONV_WGRAD_THREADS": 256,
    },
    # recurrent cell steps: grid-stride kernels, block size a launch choice (THREADS)
    "rnn": {},
}

#: threads of a block of the grid-stride kernels (im2col, pooling, element-wise, histogram
#: totals): their sources take any block size, so it is a launch choice, not compiled in
THREADS = 256

#: the hardware limit of gridDim.y and gridDim.z (every GPU since compute capability 3.0)
MAX_GRID_YZ = 65535

# Occupancy factors: blocks per multiprocessor that a grid meant to fill the device asks for.
#: grid-stride kernels: their grid is capped at this many blocks per multiprocessor (a few
#: waves of fully resident 256-thread blocks); every thread then loops over the rest
GRID_BLOCKS_PER_SM = 32
#: GEMM: a product whose C has fewer tiles than half of this many blocks per multiprocessor
#: is cut along its depth into slices computed side by side (backend.py)
GEMM_BLOCKS_PER_SM = 4
#: the binary layer's pattern histogram: blocks per multiprocessor its batch slices aim for
BIN_HISTOGRAM_BLOCKS_PER_SM = 8

_STD = "--std=c++17"

#: CUDA headers a family needs, handed to the compiler as ``--pre-include`` options (NVRTC and
#: nvcc both take it; NVRTC finds them on the CUDA include path CuPy gives it) so that the
#: sources themselves include nothing; the tests' CUDA emulator supplies its own versions
HEADERS: dict[str, tuple[str, ...]] = {"gemm_tc": ("mma.h",)}


def options(family: str) -> tuple[str, ...]:
    """The compiler options of ``family``: the C++ standard, one ``-DNAME=value`` per
    constant and one ``--pre-include=HEADER`` per header it needs (NVRTC and nvcc read all)."""
    if family not in CONSTANTS:
        raise ValueError(f"family: expected one of {sorted(CONSTANTS)}, got {family!r}")
    return (
        (_STD,)
        + tuple(f"-D{name}={value}" for name, value in CONSTANTS[family].items())
        + tuple(f"--pre-include={header}" for header in HEADERS.get(family, ()))
    )


@functools.cache
def _multiprocessors(device: int) -> int:
    import cupy

    return int(cupy.cuda.Device(device).attributes["MultiProcessorCount"])


def multiprocessors(device: int | None = None) -> int:
    """The multiprocessor count of ``device`` (default: CuPy's current one), asked once."""
    if device is None:
        import cupy

        device = cupy.cuda.Device().id
    return _multiprocessors(int(device))


def device_blocks(per_sm: int) -> int:
    """``per_sm`` blocks for every multiprocessor of the current device."""
    return per_sm * multiprocessors()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m convlab._gpu.launch",
        description="Print the compiler options a CUDA kernel family is built with.",
    )
    parser.add_argument(
        "--nvcc-options",
        metavar="FAMILY",
        required=True,
        choices=sorted(CONSTANTS),
        help="the family (kernels/FAMILY.cu) whose options to print",
    )
    args = parser.parse_args(argv)
    print(" ".join(options(args.nvcc_options)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
