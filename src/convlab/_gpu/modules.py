"""Load the ``kernels/*.cu`` sources into CuPy ``RawModule`` objects, once per family.

The sources ship as package data; each family is compiled by NVRTC on first use with its launch
constants as ``-D`` options and the CUDA headers it needs as ``--pre-include`` options
(:mod:`convlab._gpu.launch`) and cached (CuPy also keeps the
compiled binary on disk across processes).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from convlab._gpu import launch

# family -> entry points it must export, with an _f32 and an _f64 version each (unless
# SUFFIXES says otherwise)
FAMILIES = {
    "gemm": ["gemm", "gemm_m64"],
    # tensor-core GEMM: TF32 and bf16 compute of float32 tensors (float32 only)
    "gemm_tc": ["gemm_tf32", "gemm_bf16", "gemm_m64_tf32", "gemm_m64_bf16"],
    "im2col": ["im2col", "col2im"],
    "pool": ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward"],
    "binary_conv": [
        "binary_conv2d_forward",
        "binary_conv2d_histogram",
        "binary_conv2d_colsum",
        "binary_conv2d_histogram_total",
    ],
    "elementwise": ["masked_scale", "adam_step", "dropout_forward"],
    "grouped_conv": [
        "grouped_conv_forward",
        "grouped_conv_backward_data",
        "grouped_conv_backward_weight",
    ],
    # recurrent cell steps (convlab._gpu.rnn)
    "rnn": [
        "lstm_cell_forward",
        "lstm_cell_backward",
        "gru_cell_forward",
        "gru_cell_backward",
        "rnn_cell_forward",
        "rnn_cell_backward",
    ],
}

#: the element-type suffixes of a family's entry points where not both ``f32`` and ``f64``
SUFFIXES = {"gemm_tc": ("f32",)}


def source(family: str) -> str:
    """The CUDA source text of one kernel family."""
    if family not in FAMILIES:
        raise ValueError(f"family: expected one of {sorted(FAMILIES)}, got {family!r}")
    return (resources.files("convlab._gpu") / "kernels" / f"{family}.cu").read_text()


def entry_points(family: str) -> list:
    """Every ``extern "C"`` kernel the family must export."""
    suffixes = SUFFIXES.get(family, ("f32", "f64"))
    return [f"{name}_{suffix}" for name in FAMILIES[family] for suffix in suffixes]


def options(family: str) -> tuple[str, ...]:
    """The options ``family`` is compiled with: the C++ standard and its launch constants as
    ``-DNAME=value`` (:data:`convlab._gpu.launch.CONSTANTS`)."""
    if family not in FAMILIES:
        raise ValueError(f"family: expected one of {sorted(FAMILIES)}, got {family!r}")
    return launch.options(family)


@functools.cache
def _module(family: str) -> Any:
    import cupy

    return cupy.RawModule(code=source(family), options=options(family))


def kernel(family: str, name: str, dtype: Any) -> Any:
    """The compiled kernel ``name`` of ``family`` for ``dtype`` (float32 or float64; the
    ``gemm_tc`` family has float32 only)."""
    import numpy as np

    suffix = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}[np.dtype(dtype)]
    return _module(family).get_function(f"{name}_{suffix}")
