"""The GPU backend: CuPy arrays, with the heavy kernels our own CUDA (``kernels/*.cu``).

It exists on every machine, so code can ask ``get_backend("gpu").is_available()`` without
importing CuPy; CuPy is imported on the first real use. Convolutions follow the CPU backend's
rule of a bounded workspace: the column matrix is built for as many images at a time as fit
in :func:`convlab.get_workspace_limit`.
"""
from __future__ import annotations

import functools
import importlib.util
from types import ModuleType
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from convlab import _config
from convlab import _validate as check
from convlab._random import dropout_threshold
from convlab._binary_patterns import sum_row_runs, taps_from_histogram
from convlab.backend import BackendUnavailableError

__all__ = ["GPUBackend", "DeviceMemoryError"]

_THREADS = 256
# launch constants of kernels/binary_conv.cu (BIN_CHANNELS, BIN_SUM_THREADS, BIN_GROUP)
_BINARY_CHANNELS = 16
_BINARY_SUM_THREADS = 128
_BINARY_GROUP = 5
# a GEMM whose result has fewer tiles than half of _GEMM_BLOCKS (blocks to keep a large device
# busy) is cut along its depth into slices of at least _GEMM_MIN_DEPTH, whose products
# (at most _GEMM_SPLIT_BYTES of them) are added afterwards
_GEMM_BLOCKS = 512
_GEMM_MIN_DEPTH = 256
_GEMM_SPLIT_BYTES = 64 << 20
# the histogram's grid: blocks wanted (a few per multiprocessor of the largest devices), and
# the most pixels a thread sums in float32
_BINARY_BLOCKS = 1024
_BINARY_PIXELS_PER_THREAD = 256


class DeviceMemoryError(MemoryError):
    """The GPU ran out of memory (the message says how much was asked for)."""


def _grid(total: int) -> tuple:
    # grid-stride loops in the kernels: cap the grid, every element is still visited
    return (max(1, min(-(-int(total) // _THREADS), 65535 * 8)),)


def _guard(method):
    """Turn CuPy's out-of-memory error into one that says what to do."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as err:
            cupy = self._cupy
            if cupy is not None and isinstance(err, cupy.cuda.memory.OutOfMemoryError):
                raise DeviceMemoryError(
                    f"gpu: out of memory in {method.__name__} ({err}); use a smaller batch "
                    f"or convlab.set_workspace_limit() to cap the convolution workspace"
                ) from None
            raise
    return wrapper


class GPUBackend:
    """Kernels for CuPy arrays on an NVIDIA GPU (float32 and float64, NCHW / OIHW)."""

    name = "gpu"

    def __init__(self) -> None:
        self._cupy: Optional[ModuleType] = None
        self._status: Optional[str] = None      # None: not probed; "": available

    # -- availability ---------------------------------------------------------------------
    def _probe(self) -> str:
        if self._status is None:
            if importlib.util.find_spec("cupy") is None:
                self._status = ("CuPy is not installed (pip install 'convlab[cuda12]' or "
                                "'convlab[cuda13]')")
            else:
                try:
                    import cupy
                    count = cupy.cuda.runtime.getDeviceCount()
                    self._status = "" if count > 0 else "CuPy found no CUDA device"
                    self._cupy = cupy if count > 0 else None
                except Exception as err:       # no driver, no device, broken install
                    self._status = f"CuPy cannot reach a CUDA device ({type(err).__name__}: " \
                                   f"{err})"
        return self._status

    def is_available(self) -> bool:
        """True when CuPy is installed and sees a CUDA device (never raises)."""
        return self._probe() == ""

    def describe(self) -> str:
        """The device's name and memory, or why the backend is unavailable."""
        why = self._probe()
        if why:
            return f"not available ({why})"
        cupy = self._cupy
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        free, total = cupy.cuda.runtime.memGetInfo()
        return (f"{name}, {total / 2**30:.0f} GiB ({free / 2**30:.0f} GiB free), "
                f"CuPy {cupy.__version__}")

    def _require(self) -> ModuleType:
        why = self._probe()
        if why:
            raise BackendUnavailableError(f"gpu backend: {why}")
        return self._cupy

    @property
    def xp(self) -> ModuleType:
        """The array module: ``cupy``."""
        return self._require()

    # -- transfers ------------------------------------------------------------------------
    @_guard
    def asarray(self, data: Any, dtype: Any = None) -> Any:
        """A CuPy array of ``data`` (host data is copied to the device)."""
        return self._require().asarray(data, dtype=dtype)

    def to_numpy(self, array: Any) -> np.ndarray:
        """A NumPy copy of a device array."""
        return self._require().asnumpy(array)

    def synchronize(self) -> None:
        """Wait for every queued kernel (for timing)."""
        self._require().cuda.get_current_stream().synchronize()

    def _launch(self, family: str, name: str, dtype: Any, total: int, args: tuple,
                block: int = _THREADS, grid: Optional[tuple] = None) -> None:
        from convlab._gpu.modules import kernel
        kernel(family, name, dtype)(grid or _grid(total), (block,), args)

    def _contiguous(self, array: Any) -> Any:
        return self._require().ascontiguousarray(array)

    # -- GEMM -----------------------------------------------------------------------------
    def _gemm(self, a: Any, b: Any, c: Any, accumulate: bool = False) -> None:
        """``c[i] (+)= a[i] @ b[i]`` over a leading batch axis (3-D operands; strides any)."""
        batch, m, k = a.shape
        n = b.shape[2]
        if m == 0 or n == 0 or batch == 0:
            return
        isz = a.itemsize
        if any(s % isz for x in (a, b) for s in x.strides):
            raise ValueError("matmul: operands must have element-aligned strides")
        sa, sb, sc = (tuple(s // isz for s in x.strides) for x in (a, b, c))
        slices = self._depth_slices(m, n, k, a.dtype) if batch == 1 else 1
        if slices > 1:
            self._gemm_by_depth(a, sa, b, sb, c, accumulate, slices)
            return
        for b0 in range(0, batch, 65535):           # gridDim.z is at most 65535
            count = min(65535, batch - b0)
            self._gemm_launch(count, m, n, k, a[b0:b0 + count], sa, b[b0:b0 + count], sb,
                              c[b0:b0 + count], sc, accumulate)

    @staticmethod
    def _gemm_kernel(m: int, dtype: Any) -> tuple:
        """The GEMM entry point for a C of ``m`` rows, and the rows and columns of C one of
        its blocks computes (gemm.cu): 128 x 128 in float32, 64 x 128 (``gemm_m64``) for at
        most 64 rows; 64 x 64 in float64."""
        single = np.dtype(dtype) == np.float32
        if m <= 64:
            return "gemm_m64", 64, (128 if single else 64)
        return "gemm", (128 if single else 64), (128 if single else 64)

    def _gemm_launch(self, count: int, m: int, n: int, k: int, a: Any, sa: tuple, b: Any,
                     sb: tuple, c: Any, sc: tuple, accumulate: bool) -> None:
        """One launch over ``count`` products; operands as base arrays and element strides."""
        from convlab._gpu.modules import kernel
        name, tile_m, tile_n = self._gemm_kernel(m, a.dtype)
        gemm = kernel("gemm", name, a.dtype)
        gemm((-(-n // tile_n), -(-m // tile_m), count), (_THREADS,),
             (np.int32(m), np.int32(n), np.int32(k), a, np.int64(sa[0]), np.int64(sa[1]),
              np.int64(sa[2]), b, np.int64(sb[0]), np.int64(sb[1]), np.int64(sb[2]), c,
              np.int64(sc[0]), np.int64(sc[1]), np.int32(bool(accumulate))))

    def _depth_slices(self, m: int, n: int, k: int, dtype: Any) -> int:
        """Into how many slices to cut the depth of one product whose C has too few tiles to
        fill the device (a weight gradient: C is the small weight, the depth every pixel of
        the batch; a fully connected layer's forward), 1 for none."""
        _, tile_m, tile_n = self._gemm_kernel(m, dtype)
        tiles = -(-m // tile_m) * -(-n // tile_n)
        if tiles >= _GEMM_BLOCKS // 2 or k < 2 * _GEMM_MIN_DEPTH:
            return 1
        room = min(_GEMM_SPLIT_BYTES, _config.get_workspace_limit()) // \
            (m * n * np.dtype(dtype).itemsize)
        return max(1, min(-(-_GEMM_BLOCKS // tiles), k // _GEMM_MIN_DEPTH, room))

    def _gemm_by_depth(self, a: Any, sa: tuple, b: Any, sb: tuple, c: Any, accumulate: bool,
                       slices: int) -> None:
        """``c[0] (+)= a[0] @ b[0]`` as ``slices`` products over stretches of the depth, run
        side by side as one batch and added in order afterwards (deterministic)."""
        cp = self._require()
        _, m, k = a.shape
        n = b.shape[2]
        depth = -(-k // slices)
        full = k // depth
        rest = k - full * depth
        partial = cp.empty((full + (rest > 0), m, n), c.dtype)
        # product s reads a[0, :, s*depth:(s+1)*depth] and b[0, s*depth:(s+1)*depth, :]: the
        # batch strides step along the depth
        self._gemm_launch(full, m, n, depth, a, (depth * sa[2], sa[1], sa[2]), b,
                          (depth * sb[1], sb[1], sb[2]), partial, (m * n, n, 1), False)
        if rest:
            self._gemm_launch(1, m, n, rest, a[:, :, full * depth:], sa,
                              b[:, full * depth:, :], sb, partial[full:], (m * n, n, 1), False)
        total = partial.sum(axis=0)
        if accumulate:
            c[0] += total
        else:
            c[0][...] = total

    @_guard
    def matmul(self, a: Any, b: Any, out: Any = None, trans_a: bool = False,
               trans_b: bool = False) -> Any:
        """``op(a) @ op(b)`` with ``numpy.matmul`` semantics (see the CPU backend)."""
        cp = self._require()
        a2, b2, batch, (m, k, n), shape, dtype = check.matmul_operands(a, b, trans_a, trans_b)
        full_shape = batch + (m, n)
        if out is not None:
            check.out_array(out, shape, dtype, cp.ndarray)
        count = int(np.prod(batch)) if batch else 1
        a3 = cp.broadcast_to(a2, batch + (m, k)).reshape(count, m, k) if batch else a2[None]
        b3 = cp.broadcast_to(b2, batch + (k, n)).reshape(count, k, n) if batch else b2[None]
        c = cp.empty((count, m, n), dtype)
        if k == 0:
            c[...] = 0
        else:
            self._gemm(a3, b3, c)
        result = c.reshape(full_shape).reshape(shape)
        if out is not None:
            out[...] = result           # via the result: out may alias a or b
            return out
        return result

    # -- im2col / col2im ------------------------------------------------------------------
    def _geom_args(self, n: int, c: int, hw: tuple, kernel: tuple, stride: tuple,
                   padding: tuple, dilation: tuple, out_hw: tuple) -> tuple:
        return tuple(np.int32(v) for v in (n, c, *hw, *kernel, *stride, *padding, *dilation,
                                           *out_hw))

    def _im2col_into(self, x: Any, cols: Any, geom: tuple, sn: int, sk: int) -> None:
        # geom = (N, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW)
        n, c, kh, kw, oh, ow = (int(geom[i]) for i in (0, 1, 4, 5, 12, 13))
        total = n * c * kh * kw * oh * ow
        self._launch("im2col", "im2col", x.dtype, total,
                     (x, cols, *geom, np.int64(sn), np.int64(sk)))

    def _col2im_into(self, cols: Any, x: Any, geom: tuple, sn: int, sk: int) -> None:
        self._launch("im2col", "col2im", x.dtype, x.size,
                     (cols, x, *geom, np.int64(sn), np.int64(sk)))

    @_guard
    def im2col(self, x: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0,
               dilation: Any = 1) -> Any:
        """(N, C, H, W) -> (N, C*KH*KW, OH*OW) (``torch.nn.functional.unfold``)."""
        cp = self._require()
        check.float_array(x, "x", 4, "(N, C, H, W)")
        kernel = check.positive_pair(kernel_size, "kernel_size")
        stride, padding, dilation, out_hw = check.conv_geometry(
            x.shape, kernel, stride, padding, dilation, "im2col")
        k, p = x.shape[1] * kernel[0] * kernel[1], out_hw[0] * out_hw[1]
        cols = cp.empty((x.shape[0], k, p), x.dtype)
        if cols.size:
            geom = self._geom_args(x.shape[0], x.shape[1], x.shape[2:], kernel, stride,
                                   padding, dilation, out_hw)
            self._im2col_into(self._contiguous(x), cols, geom, k * p, p)
        return cols

    @_guard
    def col2im(self, cols: Any, output_size: Any, kernel_size: Any, stride: Any = 1,
               padding: Any = 0, dilation: Any = 1) -> Any:
        """Sum (N, C*KH*KW, L) columns into (N, C, H, W) (``fold``), without atomics."""
        cp = self._require()
        shape, kernel, stride, padding, dilation, out_hw = check.col2im_operands(
            cols, output_size, kernel_size, stride, padding, dilation)
        x = cp.empty(shape, cols.dtype)
        if x.size:
            geom = self._geom_args(*shape[:2], shape[2:], kernel, stride, padding, dilation,
                                   out_hw)
            self._col2im_into(self._contiguous(cols), x, geom, cols.shape[1] * cols.shape[2],
                              cols.shape[2])
        return x

    # -- conv2d ---------------------------------------------------------------------------
    def _chunk(self, n: int, per_image: int, itemsize: int) -> int:
        return max(1, min(n, _config.get_workspace_limit() // max(per_image * itemsize, 1)))

    @_guard
    def conv2d_forward(self, x: Any, weight: Any, bias: Any = None, stride: Any = 1,
                       padding: Any = 0, dilation: Any = 1, out: Any = None) -> Any:
        """2-D cross-correlation: im2col of a chunk of images, then one batched GEMM."""
        cp = self._require()
        dtype, stride, padding, dilation, out_hw = check.conv_forward_operands(
            x, weight, bias, stride, padding, dilation)
        kernel = tuple(weight.shape[2:])
        n, o = x.shape[0], weight.shape[0]
        k, p = x.shape[1] * kernel[0] * kernel[1], out_hw[0] * out_hw[1]
        y = cp.empty((n, o) + out_hw, dtype) if out is None else \
            check.out_array(out, (n, o) + out_hw, dtype, cp.ndarray)
        if y.size == 0:
            return y
        if k == 0:
            y[...] = 0 if bias is None else bias[:, None, None]
            return y
        x = self._contiguous(x)
        w2 = self._contiguous(weight).reshape(o, k)
        y3 = y.reshape(n, o, p)
        step = self._chunk(n, k * p, x.itemsize)
        cols = cp.empty((step, k, p), dtype)
        for n0 in range(0, n, step):
            m = min(step, n - n0)
            geom = self._geom_args(m, x.shape[1], x.shape[2:], kernel, stride, padding,
                                   dilation, out_hw)
            self._im2col_into(x[n0:n0 + m], cols[:m], geom, k * p, p)
            # Y[i] = W @ cols[i]: the weight with batch stride 0
            self._gemm(cp.broadcast_to(w2, (m, o, k)), cols[:m], y3[n0:n0 + m])
        if bias is not None:
            y += bias[:, None, None]
        return y

    @_guard
    def conv2d_backward_data(self, grad_output: Any, weight: Any, input_shape: Sequence[int],
                             stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                             algorithm: str = "auto") -> Any:
        """Input gradient: ``W^T @ dY`` per chunk of images, then col2im (gather).

        ``algorithm`` is checked as on the CPU, so code that picks one runs on both backends;
        the GPU has one way to compute it (the GEMM), which every choice gets.
        """
        cp = self._require()
        dtype, shape, stride, padding, dilation, out_hw = check.conv_data_grad_operands(
            grad_output, weight, input_shape, stride, padding, dilation)
        check.data_grad_algorithm(algorithm, stride)
        kernel = tuple(weight.shape[2:])
        n, o = shape[0], weight.shape[0]
        k, p = shape[1] * kernel[0] * kernel[1], out_hw[0] * out_hw[1]
        dx = cp.empty(shape, dtype)
        if dx.size == 0:
            return dx
        if grad_output.size == 0 or o == 0:
            dx[...] = 0
            return dx
        dy = self._contiguous(grad_output).reshape(n, o, p)
        w_t = self._contiguous(weight).reshape(o, k).T           # (K, O) view
        step = self._chunk(n, k * p, dx.itemsize)
        cols = cp.empty((step, k, p), dtype)
        for n0 in range(0, n, step):
            m = min(step, n - n0)
            self._gemm(cp.broadcast_to(w_t, (m, k, o)), dy[n0:n0 + m], cols[:m])
            geom = self._geom_args(m, shape[1], shape[2:], kernel, stride, padding, dilation,
                                   out_hw)
            self._col2im_into(cols[:m], dx[n0:n0 + m], geom, k * p, p)
        return dx

    @_guard
    def conv2d_backward_weight(self, grad_output: Any, x: Any, weight_shape: Sequence[int],
                               stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                               bias: bool = True) -> Tuple[Any, Optional[Any]]:
        """Weight (and bias) gradient: one GEMM per chunk over all its pixels, accumulated."""
        cp = self._require()
        dtype, wshape, stride, padding, dilation, out_hw = check.conv_weight_grad_operands(
            grad_output, x, weight_shape, stride, padding, dilation)
        kernel = tuple(wshape[2:])
        n, o = x.shape[0], wshape[0]
        k, p = x.shape[1] * kernel[0] * kernel[1], out_hw[0] * out_hw[1]
        dw = cp.zeros((o, k), dtype)
        db = grad_output.sum(axis=(0, 2, 3)) if bias else None
        if n * p and k and o:
            x = self._contiguous(x)
            dy = self._contiguous(grad_output).reshape(n, o, p)
            step = self._chunk(n, k * p + o * p, x.itemsize)
            cols = cp.empty((k, step * p), dtype)
            for n0 in range(0, n, step):
                m = min(step, n - n0)
                # columns of the chunk's images side by side: (K, m*P), and dY as (O, m*P)
                geom = self._geom_args(m, x.shape[1], x.shape[2:], kernel, stride, padding,
                                       dilation, out_hw)
                part = cols[:, :m * p]
                # row stride of the slice: the full buffer's step * P
                self._im2col_into(x[n0:n0 + m], part, geom, p, cols.shape[1])
                dy_rows = cp.ascontiguousarray(dy[n0:n0 + m].transpose(1, 0, 2)).reshape(o, -1)
                self._gemm(dy_rows[None], part.T[None], dw[None], accumulate=n0 > 0)
        return dw.reshape(wshape), db

    # -- pooling --------------------------------------------------------------------------
    @staticmethod
    def _pool_args(shape: tuple, out_hw: tuple, kernel: tuple, stride: tuple, padding: tuple,
                   dilation: tuple) -> tuple:
        return tuple(np.int32(v) for v in (shape[0] * shape[1], *shape[2:], *out_hw, *kernel,
                                           *stride, *padding, *dilation))

    @_guard
    def max_pool2d(self, x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
                   dilation: Any = 1, ceil_mode: bool = False) -> Tuple[Any, Any]:
        """Max pooling (see the CPU backend for the semantics); returns ``(values, argmax)``."""
        cp = self._require()
        check.float_array(x, "x", 4, "(N, C, H, W)")
        kernel, stride, padding, dilation, out_hw = check.pool_geometry(
            x.shape, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
        shape = x.shape[:2] + out_hw
        y = cp.empty(shape, x.dtype)
        index = cp.empty(shape, cp.int32)
        if y.size:
            self._launch("pool", "max_pool2d", x.dtype, y.size,
                         (self._contiguous(x), y, index,
                          *self._pool_args(x.shape, out_hw, kernel, stride, padding, dilation)))
        return y, index.astype(check.argmax_dtype(kernel), copy=False)

    @_guard
    def max_pool2d_backward(self, grad_output: Any, argmax: Any, input_shape: Sequence[int],
                            kernel_size: Any, stride: Any = None, padding: Any = 0,
                            dilation: Any = 1, ceil_mode: bool = False) -> Any:
        """Each output's gradient goes to its argmax (gathered per input element)."""
        cp = self._require()
        check.float_array(grad_output, "grad_output", 4, "(N, C, OH, OW)")
        shape = check.shape_tuple(input_shape, "input_shape", 4)
        kernel, stride, padding, dilation, out_hw = check.pool_geometry(
            shape, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d_backward")
        check.max_pool_grad_operands(grad_output, argmax, shape, kernel, out_hw)
        dx = cp.empty(shape, grad_output.dtype)
        if dx.size:
            self._launch("pool", "max_pool2d_backward", dx.dtype, dx.size,
                         (self._contiguous(grad_output),
                          cp.ascontiguousarray(argmax, dtype=cp.int32), dx,
                          *self._pool_args(shape, out_hw, kernel, stride, padding, dilation)))
        return dx

    @_guard
    def avg_pool2d(self, x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
                   ceil_mode: bool = False, count_include_pad: bool = True,
                   divisor_override: Optional[int] = None) -> Any:
        """Average pooling with PyTorch's semantics."""
        cp = self._require()
        check.float_array(x, "x", 4, "(N, C, H, W)")
        divisor = check.avg_divisor(divisor_override)
        kernel, stride, padding, dilation, out_hw = check.pool_geometry(
            x.shape, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
        y = cp.empty(x.shape[:2] + out_hw, x.dtype)
        if y.size:
            self._launch("pool", "avg_pool2d", x.dtype, y.size,
                         (self._contiguous(x), y,
                          *self._pool_args(x.shape, out_hw, kernel, stride, padding, dilation),
                          np.int32(bool(count_include_pad)), np.int32(divisor)))
        return y

    @_guard
    def avg_pool2d_backward(self, grad_output: Any, input_shape: Sequence[int],
                            kernel_size: Any, stride: Any = None, padding: Any = 0,
                            ceil_mode: bool = False, count_include_pad: bool = True,
                            divisor_override: Optional[int] = None) -> Any:
        """Gradient of :meth:`avg_pool2d` (gathered per input element)."""
        cp = self._require()
        check.float_array(grad_output, "grad_output", 4, "(N, C, OH, OW)")
        shape = check.shape_tuple(input_shape, "input_shape", 4)
        divisor = check.avg_divisor(divisor_override)
        kernel, stride, padding, dilation, out_hw = check.pool_geometry(
            shape, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d_backward")
        check.grad_output_shape(grad_output, shape[0], shape[1], out_hw, "avg_pool2d_backward")
        dx = cp.empty(shape, grad_output.dtype)
        if dx.size:
            self._launch("pool", "avg_pool2d_backward", dx.dtype, dx.size,
                         (self._contiguous(grad_output), dx,
                          *self._pool_args(shape, out_hw, kernel, stride, padding, dilation),
                          np.int32(bool(count_include_pad)), np.int32(divisor)))
        return dx

    # -- binary first-layer convolution ---------------------------------------------------
    @staticmethod
    def _binary_args(chw: tuple, kernel: tuple, stride: tuple, padding: tuple,
                     dilation: tuple, out_hw: tuple, packed: bool) -> tuple:
        return tuple(np.int32(v) for v in (*chw, *kernel, *stride, *padding, *dilation,
                                           *out_hw, bool(packed)))

    @_guard
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
            pixel_blocks = -(-(y.size // cout) // _THREADS)
            self._launch("binary_conv", "binary_conv2d_forward", dtype, y.size,
                         (x, self._contiguous(tables), base, y, np.int32(x.shape[0]),
                          np.int32(cout), *geom),
                         grid=(pixel_blocks * -(-cout // _BINARY_CHANNELS),))
        return y

    @_guard
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
            slices = max(-(-_BINARY_BLOCKS // (groups * cout)),
                         -(-pixels // (_BINARY_SUM_THREADS * _BINARY_PIXELS_PER_THREAD)))
            slices = max(1, min(slices, n, 65535))
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

    # -- fused elementwise ----------------------------------------------------------------
    @_guard
    def leaky_relu_backward(self, grad: Any, positive: Any, slope: float) -> Any:
        """``grad`` where ``positive``, ``slope * grad`` elsewhere, in one pass."""
        return self._masked_scale(grad, positive, "positive", 1.0,
                                  check.finite_number(slope, "slope"))

    @_guard
    def dropout_forward(self, x: Any, p: float, seed: int) -> Tuple[Any, Any]:
        """Dropout in one pass: ``(x * keep / (1 - p), keep)`` from the CPU backend's
        SplitMix64 stream, so the same ``seed`` (a uint64) gives the same mask on both.

        Raises:
            ValueError: If ``p`` is not in [0, 1).
        """
        cp = self._require()
        p, seed = check.dropout_operands(x, p, seed)
        x = self._contiguous(x)
        out, keep = cp.empty_like(x), cp.empty(x.shape, cp.bool_)
        if x.size:
            self._launch("elementwise", "dropout_forward", x.dtype, -(-x.size // 2),
                         (x, out, keep, np.uint64(seed),
                          np.uint32(dropout_threshold(p)), x.dtype.type(1.0 / (1.0 - p)),
                          np.int64(x.size)))
        return out, keep

    @_guard
    def dropout_backward(self, grad: Any, keep: Any, p: float) -> Any:
        """Dropout gradient: ``grad / (1 - p)`` where the bool mask ``keep``, else 0."""
        return self._masked_scale(grad, keep, "keep", 1.0 / (1.0 - check.probability(p)), 0.0)

    def _masked_scale(self, grad: Any, mask: Any, mask_name: str, if_set: float,
                      if_clear: float) -> Any:
        """``grad * if_set`` where the bool ``mask``, ``grad * if_clear`` elsewhere."""
        cp = self._require()
        grad = self._contiguous(check.float_array(grad, "grad"))
        check.bool_mask(mask, mask_name, grad.shape)
        dx = cp.empty_like(grad)
        if dx.size:
            t = grad.dtype.type
            self._launch("elementwise", "masked_scale", grad.dtype, grad.size,
                         (grad, self._contiguous(mask), dx, t(if_set), t(if_clear),
                          np.int64(grad.size)))
        return dx

    @_guard
    def adam_step(self, param: Any, grad: Any, exp_avg: Any, exp_avg_sq: Any, lr: float,
                  betas: tuple, eps: float, weight_decay: float, decoupled: bool,
                  step: int) -> bool:
        """One Adam / AdamW update of ``param`` and its moments in place, in one pass.

        Returns False, leaving the update to CuPy, for arrays the kernel cannot update in
        place (not C-contiguous), as the CPU backend's does.

        Raises:
            ValueError: If ``grad`` or a moment differs from ``param`` in shape or dtype, or a
                hyper-parameter is out of range.
        """
        cp = self._require()
        lr, beta1, beta2, eps, weight_decay, step = check.adam_operands(
            param, grad, exp_avg, exp_avg_sq, lr, betas, eps, weight_decay, step)
        if not all(isinstance(a, cp.ndarray) and a.flags.c_contiguous
                   for a in (param, exp_avg, exp_avg_sq)):
            return False
        t = param.dtype.type
        bc1, bc2 = 1 - beta1 ** step, 1 - beta2 ** step
        self._launch("elementwise", "adam_step", param.dtype, param.size,
                     (param, self._contiguous(grad), exp_avg, exp_avg_sq, t(lr), t(beta1),
                      t(beta2), t(eps), t(0 if decoupled else weight_decay),
                      t(weight_decay if decoupled else 0), t(lr / bc1), t(bc2 ** 0.5),
                      np.int64(param.size)))
        return True
