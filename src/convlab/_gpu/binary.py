"""The GPU backend's binary first-layer kernels (``kernels/binary_conv.cu``): lookup tables of
3-tap bit patterns built from the weights (``convlab._binary_patterns``), looked up and summed
on the device."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from convlab._backend_base import BackendBase, BinaryGeometry
from convlab._binary_patterns import sub_row_tables, sum_row_runs, taps_from_histogram
from convlab._gpu import launch

__all__ = ["GPUBinaryKernels"]

# launch constants kernels/binary_conv.cu is compiled with (launch.py)
_BINARY = launch.CONSTANTS["binary_conv"]
_BINARY_FORWARD_THREADS = _BINARY["BIN_FORWARD_THREADS"]
_BINARY_CHANNELS = _BINARY["BIN_CHANNELS"]
_BINARY_SUM_THREADS = _BINARY["BIN_SUM_THREADS"]
_BINARY_GROUP = _BINARY["BIN_GROUP"]
# the histogram's grid: blocks wanted (launch.BIN_HISTOGRAM_BLOCKS_PER_SM per multiprocessor
# of the device), and the most pixels a thread sums in float32
_BINARY_PIXELS_PER_THREAD = 256


class GPUBinaryKernels(BackendBase):
    """The binary layer's hooks of the GPU backend (a mixin of ``GPUBackend``); the checks and
    allocation are :class:`convlab._backend_base.BackendBase`'s."""

    # from the GPU backend this class is mixed into (declared for mypy only: no values here,
    # which would shadow the backend's)
    _launch: Callable[..., None]

    @staticmethod
    def _binary_args(geom: BinaryGeometry) -> tuple:
        return tuple(
            np.int32(v)
            for v in (
                *geom.shape,
                *geom.kernel,
                *geom.stride,
                *geom.padding,
                *geom.dilation,
                *geom.out_hw,
                geom.packed,
            )
        )

    def _binary_conv2d_forward_into(
        self, x: Any, weight: Any, base_values: Any, base_index: Any, y: Any, geom: BinaryGeometry
    ) -> None:
        cp = self.xp
        n, cout = y.shape[:2]
        # the kernel reads (Cout, R, 8) tables and a full (Cout, OH, OW) plane of start values
        tables = sub_row_tables(weight, cp)
        base = cp.ascontiguousarray(base_values[:, base_index])
        pixel_blocks = -(-(y.size // cout) // _BINARY_FORWARD_THREADS)
        self._launch(
            "binary_conv",
            "binary_conv2d_forward",
            y.dtype,
            y.size,
            (x, tables, base, y, np.int32(n), np.int32(cout), *self._binary_args(geom)),
            block=_BINARY_FORWARD_THREADS,
            grid=(pixel_blocks * -(-cout // _BINARY_CHANNELS),),
        )

    def _binary_weight_sums_into(
        self,
        x: Any,
        grad_output: Any,
        cls: Any,
        row_starts: Any,
        taps: Any,
        colsum: Any,
        geom: BinaryGeometry,
    ) -> None:
        cp = self.xp
        grad, args = grad_output, self._binary_args(geom)
        n, cout = grad.shape[:2]
        n_classes = colsum.shape[1]
        oh, ow = geom.out_hw
        rows = geom.shape[0] * geom.kernel[0] * -(-geom.kernel[1] // 3)
        hist = cp.empty((rows, 8, cout), grad.dtype)
        groups = -(-rows // _BINARY_GROUP)
        # slices of the batch: enough blocks to fill a large device, and few enough pixels per
        # thread that its float32 bins round by ~1e-5 at most before the float64 sums across
        # threads and slices
        blocks = launch.device_blocks(launch.BIN_HISTOGRAM_BLOCKS_PER_SM)
        slices = max(
            -(-blocks // (groups * cout)),
            -(-(n * oh * ow) // (_BINARY_SUM_THREADS * _BINARY_PIXELS_PER_THREAD)),
        )
        slices = max(1, min(slices, n, launch.MAX_GRID_YZ))  # slices are gridDim.y
        part = cp.empty((slices, rows, 8, cout), np.float64)
        self._launch(
            "binary_conv",
            "binary_conv2d_histogram",
            grad.dtype,
            0,
            (x, grad, part, np.int32(n), np.int32(cout), *args),
            block=_BINARY_SUM_THREADS,
            grid=(groups * cout, slices),
        )
        self._launch(
            "binary_conv",
            "binary_conv2d_histogram_total",
            grad.dtype,
            hist.size,
            (part, hist, np.int64(hist.size), np.int32(slices)),
        )
        per_row = cp.empty((oh, n_classes, cout), grad.dtype)
        self._launch(
            "binary_conv",
            "binary_conv2d_colsum",
            grad.dtype,
            0,
            (
                grad,
                cls,
                per_row,
                np.int32(n),
                np.int32(cout),
                np.int32(oh),
                np.int32(ow),
                np.int32(n_classes),
            ),
            block=_BINARY_SUM_THREADS,
            grid=(oh * cout,),
        )
        taps[...] = taps_from_histogram(hist, geom.shape, geom.kernel, cp)
        colsum[...] = sum_row_runs(per_row, row_starts, cp)
