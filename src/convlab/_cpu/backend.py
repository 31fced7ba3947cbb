"""The CPU backend: NumPy arrays in and out, Cython + OpenMP kernels underneath.

The argument checks, allocation and empty-input answers live once in
:class:`convlab._backend_base.BackendBase`; this module supplies the CPU's kernels for the
GEMM, im2col / col2im and pooling hooks, and assembles the class from the modules that own the
rest: :mod:`~convlab._cpu.convolution` (the algorithm :mod:`~convlab._cpu.conv_plan` picks),
:mod:`~convlab._cpu.elementwise` (fused element-wise kernels) and :mod:`~convlab._cpu.binary`
(the binary first layer). The operands reach the compiled code C-contiguous and checked, so no
input reachable from Python can make a kernel read or write out of bounds.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from convlab import _settings
from convlab._backend_base import BackendBase, ConvGeometry, PoolGeometry
from convlab._cpu import _gemm, _global_pool, _im2col, _pool
from convlab._cpu.binary import CPUBinaryKernels
from convlab._cpu.convolution import CPUConvolution
from convlab._cpu.elementwise import CPUElementwise
from convlab._cpu.rnn import CPURecurrent

__all__ = ["CPUBackend"]


#: Multiply-adds below which one product runs on one thread anyway (``_gemm.pyx``'s
#: ``PARALLEL_MIN_FLOPS``): a stack of such products always shares its products out.
_BATCH_SMALL_MACS = 1 << 18


def _gemm_operand(array: np.ndarray) -> np.ndarray:
    """An operand (a matrix or a stack of them) the packer can read: element strides,
    possibly negative or zero."""
    if any(s % array.itemsize for s in array.strides):
        return np.ascontiguousarray(array)
    return array


class CPUBackend(CPUConvolution, CPUElementwise, CPURecurrent, CPUBinaryKernels, BackendBase):
    """Kernels for NumPy arrays on the CPU (float32 and float64, NCHW / OIHW layouts)."""

    name = "cpu"

    def __init__(self) -> None:
        # the heap policy is a process-wide setting of its own (convlab.set_allocator_policy);
        # the CPU backend's first use is when its starting value matters
        _settings.apply_starting_allocator_policy()

    @property
    def xp(self) -> ModuleType:
        """The array module: ``numpy``."""
        return np

    def is_available(self) -> bool:
        """Always True: the CPU kernels are compiled into the package."""
        return True

    def describe(self) -> str:
        """One line on what runs: ISA path and thread count."""
        return f"{_gemm.get_isa()} kernels, {_settings.get_num_threads()} threads"

    @property
    def isa(self) -> str:
        """Micro-kernel instruction set in use (``"avx512"``, ``"avx2"`` or ``"generic"``)."""
        return _gemm.get_isa()

    def set_isa(self, name: str) -> None:
        """Force a micro-kernel instruction set, or ``"auto"`` for the best one.

        The ``CONVLAB_ISA`` environment variable sets the starting value.

        Raises:
            ValueError: For an unknown name or one this CPU cannot run.
        """
        _gemm.set_isa(name)

    def supported_isas(self) -> list[str]:
        """Instruction sets this CPU can run, best last."""
        return _gemm.supported_isas()

    def asarray(self, data: Any, dtype: Any = None) -> np.ndarray:
        """``numpy.asarray``."""
        return np.asarray(data, dtype=dtype)

    def to_numpy(self, array: Any) -> np.ndarray:
        """The array itself (already NumPy)."""
        return np.asarray(array)

    # -- GEMM ------------------------------------------------------------------------------
    def _gemm_into(self, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
        threads = _settings.get_num_threads()
        count, m, k = a.shape
        if count > 1 and b.strides[0] == 0 and a.flags.c_contiguous:
            # a stack of matrices times one matrix is one tall GEMM
            _gemm.gemm(
                _gemm_operand(a.reshape(count * m, k)),
                _gemm_operand(b[0]),
                c.reshape(count * m, -1),
                False,
                threads,
            )
            return
        n = b.shape[2]
        if count > 1 and (
            m * n * k < _BATCH_SMALL_MACS or count % threads == 0 or count >= 4 * threads
        ):
            # a stack of products: each whole on one thread, the threads taking products in
            # turn (a grouped convolution's thousand small products would otherwise run one
            # after another, each too small to split)
            _gemm.gemm_batched(_gemm_operand(a), _gemm_operand(b), c, False, threads)
            return
        for i in range(count):
            _gemm.gemm(_gemm_operand(a[i]), _gemm_operand(b[i]), c[i], False, threads)

    # -- im2col / col2im -------------------------------------------------------------------
    def _im2col_into(self, x: np.ndarray, cols: np.ndarray, geom: ConvGeometry) -> None:
        _im2col.im2col(
            x,
            cols,
            *geom.kernel,
            *geom.stride,
            *geom.padding,
            *geom.dilation,
            _settings.get_num_threads(),
        )

    def _col2im_into(self, cols: np.ndarray, x: np.ndarray, geom: ConvGeometry) -> None:
        # each output channel plane is summed by one thread in a fixed order
        _im2col.col2im(
            cols,
            x,
            *geom.kernel,
            *geom.stride,
            *geom.padding,
            *geom.dilation,
            _settings.get_num_threads(),
        )

    # -- pooling ---------------------------------------------------------------------------
    def _max_pool2d_into(
        self, x: np.ndarray, y: np.ndarray, argmax: np.ndarray, geom: PoolGeometry
    ) -> None:
        _pool.max_pool2d(
            x,
            y,
            argmax,
            *geom.kernel,
            *geom.stride,
            *geom.padding,
            *geom.dilation,
            _settings.get_num_threads(),
        )

    def _max_pool2d_backward_into(
        self, grad_output: np.ndarray, argmax: np.ndarray, dx: np.ndarray, geom: PoolGeometry
    ) -> None:
        _pool.max_pool2d_backward(
            grad_output,
            argmax,
            dx,
            *geom.kernel,
            *geom.stride,
            *geom.padding,
            *geom.dilation,
            _settings.get_num_threads(),
        )

    def _avg_pool2d_into(self, x: np.ndarray, y: np.ndarray, geom: PoolGeometry) -> None:
        _pool.avg_pool2d(
            x,
            y,
            *geom.kernel,
            *geom.stride,
            *geom.padding,
            geom.count_include_pad,
            geom.divisor,
            _settings.get_num_threads(),
        )

    def _avg_pool2d_backward_into(
        self, grad_output: np.ndarray, dx: np.ndarray, geom: PoolGeometry
    ) -> None:
        _pool.avg_pool2d_backward(
            grad_output,
            dx,
            *geom.kernel,
            *geom.stride,
            *geom.padding,
            geom.count_include_pad,
            geom.divisor,
            _settings.get_num_threads(),
        )

    def _global_avg_pool2d_into(self, x: np.ndarray, y: np.ndarray) -> None:
        _global_pool.mean_rows(x.reshape(y.size, -1), y.reshape(-1), _settings.get_num_threads())

    def _adaptive_max_pool2d_into(
        self, x: np.ndarray, row_bins: list, col_bins: list, y: np.ndarray, flat: np.ndarray
    ) -> None:
        n, c, h, w = x.shape
        _global_pool.adaptive_max_planes(
            x.reshape(n * c, h * w),
            w,
            np.asarray(row_bins, np.int64).reshape(-1, 2),
            np.asarray(col_bins, np.int64).reshape(-1, 2),
            y.reshape(n * c, -1),
            flat.reshape(n * c, -1),
            _settings.get_num_threads(),
        )

    def _adaptive_max_pool2d_backward_into(
        self, grad: np.ndarray, flat: np.ndarray, dx: np.ndarray
    ) -> None:
        n, c = dx.shape[:2]
        _global_pool.adaptive_max_planes_backward(
            np.ascontiguousarray(grad).reshape(n * c, -1),
            flat.reshape(n * c, -1),
            dx.reshape(n * c, -1),
            _settings.get_num_threads(),
        )

    def _global_max_pool2d_into(self, x: np.ndarray, y: np.ndarray, index: np.ndarray) -> None:
        _global_pool.max_rows(
            x.reshape(y.size, -1), y.reshape(-1), index.reshape(-1), _settings.get_num_threads()
        )
