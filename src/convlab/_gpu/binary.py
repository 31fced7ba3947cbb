"""The GPU backend's binary first-layer convolution (``kernels/binary_conv.cu``)."""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np

from convlab import _validate as check
from convlab._backend_base import public_kernel
from convlab._binary_patterns import sum_row_runs, taps_from_histogram
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


class GPUBinaryKernels:
    """The binary layer's kernels of the GPU backend (a mixin of ``GPUBackend``)."""

    @staticmethod
    def _binary_args(chw: tuple, kernel: tuple, stride: tuple, padding: tuple,
                     dilation: tuple, out_hw: tuple, packed: bool) -> tuple:
        return tuple(np.int32(v) for v in (*chw, *kernel, *stride, *padding, *dilation,
                                           *out_hw, bool(packed)))

    @public_kernel
    def binary_conv2d_forward(self, x: Any, packed: bool, tables: Any,
                              base_values: Optional[Any], base_index: Optional[Any], bias: Any,
                              shape: Sequence[int], kernel_size: Any, stride: Any = 1,
                              padding: Any = 0, dilation: Any = 1, out: Any = None) -> Any:
        """Binary-image convolution from lookup tables (see the CPU backend)."""
        cp = self._require()
        chw, kernel, stride, padding, dilation, out_hw = check.binary_operands(
            x, packed, shape, kernel_size, stride, padding, dilation, "binary_conv2d_forward")
        cout, dtype = check.binary_tables(tables, bias, base_values, base_index, chw, kernel,
                                          out_hw)
        x = self._contiguous(x)
        geom = self._binary_args(chw, kernel, stride, padding, dilation, out_hw, packed)
        # the kernel reads a full (Cout, OH, OW) plane of start values
        base = base_values[:, base_index] if base_values is not None else \
            cp.broadcast_to(bias[:, None, None], (cout,) + out_hw)
        base = cp.ascontiguousarray(base, dtype=dtype)
        y = cp.empty((x.shape[0], cout) + out_hw, dtype) if out is None else \
            check.out_array(out, (x.shape[0], cout) + out_hw, dtype, cp.ndarray)
        if y.size:
            pixel_blocks = -(-(y.size // cout) // _BINARY_FORWARD_THREADS)
            self._launch("binary_conv", "binary_conv2d_forward", dtype, y.size,
                         (x, self._contiguous(tables), base, y, np.int32(x.shape[0]),
                          np.int32(cout), *geom), block=_BINARY_FORWARD_THREADS,
                         grid=(pixel_blocks * -(-cout // _BINARY_CHANNELS),))
        return y

    @public_kernel
    def binary_conv2d_weight_sums(self, x: Any, packed: bool, grad_output: Any, cls: Any,
                                  n_classes: int, shape: Sequence[int], kernel_size: Any,
                                  stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                                  row_starts: Optional[Any] = None) -> Tuple[Any, Any]:
        """Output gradients summed per kernel tap where the input is 1 (Cout, C, KH, KW), and
        per run of output rows and column class (runs, n_classes, Cout); see the CPU
        backend."""
        cp = self._require()
        chw, kernel, stride, padding, dilation, out_hw, n_classes, cls, row_starts = \
            check.binary_gradient_operands(x, packed, grad_output, cls, n_classes, row_starts,
                                           shape, kernel_size, stride, padding, dilation,
                                           "binary_conv2d_weight_sums", cp)
        x, grad = self._contiguous(x), self._contiguous(grad_output)
        geom = self._binary_args(chw, kernel, stride, padding, dilation, out_hw, packed)
        n, cout = grad.shape[:2]
        rows = chw[0] * kernel[0] * -(-kernel[1] // 3)
        hist = cp.zeros((rows, 8, cout), grad.dtype)
        colsum = cp.zeros((out_hw[0], int(n_classes), cout), grad.dtype)
        if rows and cout and n:
            groups = -(-rows // _BINARY_GROUP)
            # slices of the batch: enough blocks to fill a large device, and few enough
            # pixels per thread that its float32 bins round by ~1e-5 at most before the float64
            # sums across threads and slices
            pixels = n * out_hw[0] * out_hw[1]
            blocks = launch.device_blocks(launch.BIN_HISTOGRAM_BLOCKS_PER_SM)
            slices = max(-(-blocks // (groups * cout)),
                         -(-pixels // (_BINARY_SUM_THREADS * _BINARY_PIXELS_PER_THREAD)))
            slices = max(1, min(slices, n, launch.MAX_GRID_YZ))     # slices are gridDim.y
            part = cp.empty((slices, rows, 8, cout), np.float64)
            self._launch("binary_conv", "binary_conv2d_histogram", grad.dtype, 0,
                         (x, grad, part, np.int32(n), np.int32(cout), *geom),
                         block=_BINARY_SUM_THREADS, grid=(groups * cout, slices))
            self._launch("binary_conv", "binary_conv2d_histogram_total", grad.dtype, hist.size,
                         (part, hist, np.int64(hist.size), np.int32(slices)))
        if colsum.size and n:
            self._launch("binary_conv", "binary_conv2d_colsum", grad.dtype, 0,
                         (grad, cls, colsum, np.int32(n),
                          np.int32(cout), np.int32(out_hw[0]), np.int32(out_hw[1]),
                          np.int32(n_classes)),
                         block=_BINARY_SUM_THREADS, grid=(out_hw[0] * cout,))
        return taps_from_histogram(hist, chw, kernel, cp), sum_row_runs(colsum, row_starts, cp)
