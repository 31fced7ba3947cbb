"""The CPU backend: NumPy arrays in and out, Cython + OpenMP kernels underneath.

Every public method checks its arguments (``convlab._validate``) and makes inputs C-contiguous
before the compiled code runs, so no input reachable from Python can make a kernel read or
write out of bounds.
"""
from __future__ import annotations

import functools
import math
import os
from types import ModuleType
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from convlab import _config
from convlab import _validate as check
from convlab._random import dropout_threshold
from convlab._cpu import (_activation, _binary, _conv, _gemm, _im2col, _norm, _pool,
                          _runtime)
from convlab._cpu import conv_rows, conv_winograd

__all__ = ["CPUBackend"]

# Windows with more elements than this store their argmax as int32 instead of uint8.


# What one element of packing (the implicit path's im2col fill) or of col2im (the GEMM path)
# costs, in micro-kernel multiply-adds; measured on the chart CNN's layers (Zen 4). The fill is
# cheap when it can gather runs from a zero-padded copy (unit stride, padding that does not
# crop), dearer when it must check every tap against the image border.
_GATHER_COST = 4
_FILL_COST = 14
_COL2IM_COST = 14


@functools.lru_cache(maxsize=256)
def _data_gradient_algorithm(weight_shape: tuple, height: int, padding: tuple,
                             dilation: tuple, mr: int) -> str:
    """``"implicit"`` or ``"gemm"`` for a stride-1 input gradient, from a per-pixel cost
    estimate (other strides always take ``"gemm"``).

    implicit: the transposed convolution; its GEMM has ``in_channels`` rows (rounded up to the
    micro-tile) and ``out_channels*KH*KW`` depth, of which the taps in the padding are skipped,
    and it packs every depth row. gemm: ``W^T @ dY`` has ``in_channels*KH*KW`` rows and
    ``out_channels`` depth, and col2im adds every row back. Per pixel, in multiply-adds;
    ``mr`` is the micro-kernel's row count.
    """
    cout, cin, kh, kw = weight_shape
    pad = dilation[0] * (kh - 1) - padding[0]       # the transposed convolution's padding
    out_h = height + 2 * padding[0] - dilation[0] * (kh - 1)
    inside = sum(sum(0 <= row - pad + tap * dilation[0] < out_h for tap in range(kh))
                 for row in range(height)) / (height * kh) if height else 1.0
    rows = -(-cin // mr) * mr
    gathers = pad >= 0 and dilation[1] * (kw - 1) - padding[1] >= 0
    fill = _GATHER_COST if gathers else _FILL_COST
    implicit = rows * cout * kh * kw * inside + fill * cout * kh * kw
    gemm = cin * kh * kw * cout + _COL2IM_COST * cin * kh * kw
    return "implicit" if implicit < gemm else "gemm"


def _implicit_forward(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray],
                      y: np.ndarray, stride: tuple, padding: tuple, dilation: tuple,
                      threads: int) -> None:
    """The convolution into ``y`` by implicit GEMM, or by Winograd F(4, 3) where it applies
    (contiguous operands; padding may be negative, which only the implicit GEMM takes)."""
    if conv_winograd.applies(x.shape, weight.shape, stride, padding, dilation, y.shape[2:],
                             x.dtype):
        conv_winograd.forward(x, weight, bias, y, padding, dilation[0], threads)
    else:
        _conv.conv2d_forward(x, weight, bias, y, *stride, *padding, *dilation, threads)


def _contiguous(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array)


def _masked_scale(grad: np.ndarray, mask: np.ndarray, mask_name: str, if_set: float,
                  if_clear: float) -> np.ndarray:
    """``grad * if_set`` where the bool ``mask``, ``grad * if_clear`` elsewhere, in one parallel
    pass: the gradient of Leaky ReLU and of dropout."""
    grad = _contiguous(check.float_array(grad, "grad"))
    check.bool_mask(mask, mask_name, grad.shape)
    dx = np.empty_like(grad)
    if grad.size:
        _activation.masked_scale(grad.reshape(-1), _contiguous(mask).reshape(-1).view(np.uint8),
                                 dx.reshape(-1), if_set, if_clear, _config.get_num_threads())
    return dx


def _channel_param(param: Optional[np.ndarray], dtype: np.dtype) -> Optional[np.ndarray]:
    """A per-channel weight or bias as the kernels read it (``dtype``, contiguous)."""
    return None if param is None else _contiguous(param.astype(dtype, copy=False))


def _check_out(out: Any, shape: tuple, dtype: np.dtype, name: str = "out") -> np.ndarray:
    return check.out_array(out, shape, dtype, np.ndarray, name)


def _gemm_operand(array: np.ndarray) -> np.ndarray:
    """A 2-D operand the packer can read: element strides, possibly negative or zero."""
    if any(s % array.itemsize for s in array.strides):
        return np.ascontiguousarray(array)
    return array


class CPUBackend:
    """Kernels for NumPy arrays on the CPU (float32 and float64, NCHW / OIHW layouts)."""

    name = "cpu"
    # binary_conv2d_forward rejects uint8 pixels other than 0 and 1 while it copies them, so
    # callers need no pass of their own over the images
    checks_binary_pixels = True

    def __init__(self) -> None:
        # Activations of 10-40 MB would otherwise be fresh mappings that page-fault in every
        # step; CONVLAB_KEEP_LARGE_BLOCKS=0 keeps the C library's default.
        self.keeps_large_blocks = (
            os.environ.get("CONVLAB_KEEP_LARGE_BLOCKS", "1").strip().lower()
            not in {"0", "false", "no", "off"} and _runtime.keep_large_blocks())

    @property
    def xp(self) -> ModuleType:
        """The array module: ``numpy``."""
        return np

    def is_available(self) -> bool:
        """Always True: the CPU kernels are compiled into the package."""
        return True

    def describe(self) -> str:
        """One line on what runs: ISA path and thread count."""
        return f"{_gemm.get_isa()} kernels, {_config.get_num_threads()} threads"

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

    def synchronize(self) -> None:
        """Nothing to wait for: CPU kernels return when done."""

    # ------------------------------------------------------------------ matmul
    def matmul(self, a: np.ndarray, b: np.ndarray, out: Optional[np.ndarray] = None,
               trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
        """``op(a) @ op(b)`` where ``op`` swaps the last two axes when ``trans_*`` is set.

        Follows ``numpy.matmul``: 1-D operands are promoted and the added axis removed again,
        leading axes broadcast. Any strides are read without copying.

        Raises:
            TypeError: For non-float or mismatched dtypes.
            ValueError: For mismatched inner dimensions or a bad ``out``.
        """
        a2, b2, batch, (m, k, n), shape, dtype = check.matmul_operands(a, b, trans_a, trans_b)
        full_shape = batch + (m, n)
        if out is not None:
            _check_out(out, shape, dtype)
            result = out
            if np.may_share_memory(out, a) or np.may_share_memory(out, b):
                result = np.empty(shape, dtype)
        else:
            result = np.empty(shape, dtype)
        result_full = result.reshape(full_shape)
        threads = _config.get_num_threads()
        count = math.prod(batch)
        if result.size == 0 or k == 0:
            # nothing to multiply (reshapes with -1 are ambiguous for empty arrays); an empty
            # sum is 0, as in NumPy
            result.fill(0)
        elif b2.ndim == 2 and a2.ndim > 2 and a2.flags.c_contiguous:
            # a stack of matrices times one matrix is one tall GEMM
            _gemm.gemm(_gemm_operand(a2.reshape(-1, k)), _gemm_operand(b2),
                       result_full.reshape(-1, n), False, threads)
        elif not batch:
            _gemm.gemm(_gemm_operand(a2), _gemm_operand(b2), result_full, False, threads)
        else:
            a3 = np.broadcast_to(a2, batch + (m, k)).reshape((count, m, k))
            b3 = np.broadcast_to(b2, batch + (k, n)).reshape((count, k, n))
            c3 = result_full.reshape((count, m, n))
            for i in range(c3.shape[0]):
                _gemm.gemm(_gemm_operand(a3[i]), _gemm_operand(b3[i]), c3[i], False, threads)
        if result is not out and out is not None:
            out[...] = result
            return out
        return result

    # ------------------------------------------------------------------ im2col
    def im2col(self, x: np.ndarray, kernel_size: Any, stride: Any = 1, padding: Any = 0,
               dilation: Any = 1) -> np.ndarray:
        """Unfold (N, C, H, W) into columns (N, C*KH*KW, OH*OW) (``torch.nn.functional.unfold``).

        Row ``(c*KH + kh)*KW + kw`` holds the input each output pixel sees through tap
        ``(c, kh, kw)``, zero where it falls into the padding.
        """
        check.float_array(x, "x", 4, "(N, C, H, W)")
        kernel = check.positive_pair(kernel_size, "kernel_size")
        stride, padding, dilation, (oh, ow) = check.conv_geometry(
            x.shape, kernel, stride, padding, dilation, "im2col")
        n, c = x.shape[:2]
        cols = np.empty((n, c * kernel[0] * kernel[1], oh * ow), x.dtype)
        _im2col.im2col(_contiguous(x), cols, *kernel, *stride, *padding, *dilation,
                       _config.get_num_threads())
        return cols

    def col2im(self, cols: np.ndarray, output_size: Any, kernel_size: Any, stride: Any = 1,
               padding: Any = 0, dilation: Any = 1) -> np.ndarray:
        """Sum columns (N, C*KH*KW, L) back into (N, C, H, W) (``torch.nn.functional.fold``).

        Each output channel plane is summed by one thread in a fixed order: deterministic,
        no atomics.
        """
        shape, kernel, stride, padding, dilation, _ = check.col2im_operands(
            cols, output_size, kernel_size, stride, padding, dilation)
        x = np.empty(shape, cols.dtype)
        _im2col.col2im(_contiguous(cols), x, *kernel, *stride, *padding, *dilation,
                       _config.get_num_threads())
        return x

    # ------------------------------------------------------------------ conv2d
    def conv2d_forward(self, x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None,
                       stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                       out: Optional[np.ndarray] = None) -> np.ndarray:
        """2-D cross-correlation of NCHW ``x`` with OIHW ``weight``, plus ``bias`` (O,).

        Implicit GEMM: the column matrix is never built (see ``convlab._cpu._conv``).

        Raises:
            TypeError: For non-float or mismatched dtypes.
            ValueError: For mismatched channels, bad geometry or a kernel larger than the
                padded input.
        """
        dtype, stride, padding, dilation, (oh, ow) = check.conv_forward_operands(
            x, weight, bias, stride, padding, dilation)
        shape = (x.shape[0], weight.shape[0], oh, ow)
        y = np.empty(shape, dtype) if out is None else _check_out(out, shape, dtype)
        if y.size == 0:
            return y
        if x.shape[1] == 0:
            y[...] = 0 if bias is None else bias[:, None, None]
            return y
        if self._small_map(oh * ow, dtype, x.shape[1]):
            conv_rows.forward(_contiguous(x), _contiguous(weight), bias, y,
                              (*weight.shape[2:], *stride, *padding, *dilation),
                              _config.get_num_threads())
            return y
        _implicit_forward(_contiguous(x), _contiguous(weight),
                          None if bias is None else _contiguous(bias), y, stride, padding,
                          dilation, _config.get_num_threads())
        return y

    @staticmethod
    def _small_map(out_pixels: int, dtype: np.dtype, channels: int) -> bool:
        # fewer output pixels per image than a GEMM panel: batch them (see conv_rows)
        return conv_rows.use_rows(out_pixels, _gemm.tile_shape(np.dtype(dtype).itemsize)[1],
                                  channels)

    def conv2d_backward_data(self, grad_output: np.ndarray, weight: np.ndarray,
                             input_shape: Sequence[int], stride: Any = 1, padding: Any = 0,
                             dilation: Any = 1, algorithm: str = "auto") -> np.ndarray:
        """Gradient of ``conv2d_forward`` with respect to ``x`` (shape ``input_shape``).

        ``algorithm``: ``"implicit"`` (stride 1 only: the forward convolution of
        ``grad_output`` with the flipped, transposed weight), ``"gemm"`` (``W^T @ grad_output``
        then col2im, chunked to the workspace limit) or ``"auto"`` (a cost estimate picks).
        """
        dtype, shape, stride, padding, dilation, out_hw = check.conv_data_grad_operands(
            grad_output, weight, input_shape, stride, padding, dilation)
        check.data_grad_algorithm(algorithm, stride)
        dx = np.empty(shape, dtype)
        if dx.size == 0:
            return dx
        if grad_output.size == 0 or weight.shape[0] == 0:
            dx[...] = 0
            return dx
        threads = _config.get_num_threads()
        dy = _contiguous(grad_output)
        if algorithm == "auto" and self._small_map(out_hw[0] * out_hw[1], dtype, shape[1]):
            conv_rows.backward_data(dy, _contiguous(weight), dx,
                                    (*weight.shape[2:], *stride, *padding, *dilation), threads)
            return dx
        if algorithm == "auto":
            algorithm = "gemm" if stride != (1, 1) else _data_gradient_algorithm(
                weight.shape, shape[2], padding, dilation, _gemm.tile_shape(dx.itemsize)[0])
        if algorithm == "gemm":
            _conv.conv2d_backward_data_gemm(
                dy, _contiguous(weight), dx, *stride, *padding, *dilation,
                _config.get_workspace_limit() // dx.itemsize, threads)
            return dx
        flipped = np.empty((weight.shape[1], weight.shape[0]) + weight.shape[2:], dtype)
        _conv.flip_transpose(_contiguous(weight), flipped)
        kh, kw = weight.shape[2:]
        # padding that undoes the forward one; negative means cropping, which the kernel handles
        pad_h = dilation[0] * (kh - 1) - padding[0]
        pad_w = dilation[1] * (kw - 1) - padding[1]
        _implicit_forward(dy, flipped, None, dx, (1, 1), (pad_h, pad_w), dilation, threads)
        return dx

    def conv2d_backward_weight(self, grad_output: np.ndarray, x: np.ndarray,
                               weight_shape: Sequence[int], stride: Any = 1, padding: Any = 0,
                               dilation: Any = 1,
                               bias: bool = True) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Gradients with respect to the weight (shape ``weight_shape``) and, if ``bias``,
        the bias. Deterministic for a given thread count."""
        dtype, wshape, stride, padding, dilation, out_hw = check.conv_weight_grad_operands(
            grad_output, x, weight_shape, stride, padding, dilation)
        dw = np.empty(wshape, dtype)
        db = np.empty(wshape[0], dtype) if bias else None
        if dw.size == 0 or grad_output.size == 0:
            dw[...] = 0
            if db is not None:
                db[...] = 0 if grad_output.size == 0 else grad_output.sum(axis=(0, 2, 3))
            return dw, db
        if self._small_map(out_hw[0] * out_hw[1], dtype, x.shape[1]):
            dy = _contiguous(grad_output)
            conv_rows.backward_weight(dy, _contiguous(x), dw,
                                      (*wshape[2:], *stride, *padding, *dilation),
                                      _config.get_num_threads())
            if db is not None:
                np.sum(dy, axis=(0, 2, 3), out=db)
            return dw, db
        if conv_winograd.applies(x.shape, wshape, stride, padding, dilation, out_hw, dtype):
            conv_winograd.weight_gradient(_contiguous(grad_output), _contiguous(x), dw, db,
                                          padding, dilation[0], _config.get_num_threads())
            return dw, db
        _conv.conv2d_backward_weight(_contiguous(grad_output), _contiguous(x), dw, db, *stride,
                                     *padding, *dilation, _config.get_num_threads())
        return dw, db

    # ------------------------------------------------------------------ batch norm
    def batch_norm_forward(self, x: np.ndarray, weight: Optional[np.ndarray],
                           bias: Optional[np.ndarray], mean: Optional[np.ndarray],
                           var: Optional[np.ndarray], eps: float) -> tuple:
        """Normalise (N, C, ...) ``x`` per channel: ``(x - mean) / sqrt(var + eps) * weight +
        bias``.

        With ``mean`` / ``var`` None the biased batch statistics are used; otherwise the given
        (running) ones.

        Returns:
            ``(y, mean, var)``, the statistics as float64 (C,) arrays.
        """
        c, eps = check.batch_norm_operands(x, weight, bias, mean, var, eps)
        x3 = _contiguous(x).reshape(x.shape[0], c, math.prod(x.shape[2:]))
        batch_stats = mean is None
        mean64 = np.empty(c) if batch_stats else np.asarray(mean, np.float64).reshape(c)
        var64 = np.empty(c) if batch_stats else np.asarray(var, np.float64).reshape(c)
        y = np.empty(x3.shape, x.dtype)
        _norm.forward(x3, _channel_param(weight, x.dtype), _channel_param(bias, x.dtype), y,
                      mean64, var64, batch_stats, float(eps), _config.get_num_threads())
        return y.reshape(x.shape), mean64, var64

    def batch_norm_backward(self, grad: np.ndarray, x: np.ndarray, mean: np.ndarray,
                            invstd: np.ndarray, weight: Optional[np.ndarray], batch_stats: bool,
                            input_grad: bool = True) -> tuple:
        """Gradients of :meth:`batch_norm_forward`.

        Returns:
            ``(grad_x or None, grad_weight, grad_bias)``; ``grad_x`` flows through the batch
            statistics when ``batch_stats``.
        """
        c = check.batch_norm_grad_operands(grad, x, mean, invstd, weight)
        g3 = _contiguous(grad).reshape(x.shape[0], c, math.prod(x.shape[2:]))
        x3 = _contiguous(x).reshape(g3.shape)
        gx = np.empty(g3.shape, x.dtype) if input_grad else None
        sum_g, sum_gx = np.empty(c), np.empty(c)
        _norm.backward(g3, x3, _contiguous(mean), _contiguous(invstd),
                       _channel_param(weight, x.dtype), gx, sum_g, sum_gx, bool(batch_stats),
                       _config.get_num_threads())
        return (None if gx is None else gx.reshape(x.shape), sum_gx.astype(x.dtype),
                sum_g.astype(x.dtype))

    # ------------------------------------------------------------------ pooling
    def max_pool2d(self, x: np.ndarray, kernel_size: Any, stride: Any = None, padding: Any = 0,
                   dilation: Any = 1, ceil_mode: bool = False) -> Tuple[np.ndarray, np.ndarray]:
        """Max pooling of NCHW ``x`` with PyTorch's semantics (NaN propagates, ties go to the
        first element).

        Returns:
            ``(values, argmax)``: ``argmax`` holds each maximum's offset inside its window,
            ``i * KW + j``, as uint8 (int32 for windows of more than 256 elements).
        """
        check.float_array(x, "x", 4, "(N, C, H, W)")
        kernel, stride, padding, dilation, (oh, ow) = check.pool_geometry(
            x.shape, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
        shape = x.shape[:2] + (oh, ow)
        index_dtype = check.argmax_dtype(kernel)
        y = np.empty(shape, x.dtype)
        argmax = np.empty(shape, index_dtype)
        _pool.max_pool2d(_contiguous(x), y, argmax, *kernel, *stride, *padding, *dilation,
                         _config.get_num_threads())
        return y, argmax

    def max_pool2d_backward(self, grad_output: np.ndarray, argmax: np.ndarray,
                            input_shape: Sequence[int], kernel_size: Any, stride: Any = None,
                            padding: Any = 0, dilation: Any = 1,
                            ceil_mode: bool = False) -> np.ndarray:
        """Gradient of ``max_pool2d``: each output's gradient goes to its argmax.

        Offsets outside their window (a hand-made ``argmax``) are ignored, never written.
        """
        check.float_array(grad_output, "grad_output", 4, "(N, C, OH, OW)")
        shape = check.shape_tuple(input_shape, "input_shape", 4)
        kernel, stride, padding, dilation, out_hw = check.pool_geometry(
            shape, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d_backward")
        check.max_pool_grad_operands(grad_output, argmax, shape, kernel, out_hw)
        dx = np.empty(shape, grad_output.dtype)
        _pool.max_pool2d_backward(_contiguous(grad_output), _contiguous(argmax), dx, *kernel,
                                  *stride, *padding, *dilation, _config.get_num_threads())
        return dx

    def avg_pool2d(self, x: np.ndarray, kernel_size: Any, stride: Any = None, padding: Any = 0,
                   ceil_mode: bool = False, count_include_pad: bool = True,
                   divisor_override: Optional[int] = None) -> np.ndarray:
        """Average pooling of NCHW ``x`` with PyTorch's semantics."""
        check.float_array(x, "x", 4, "(N, C, H, W)")
        divisor = check.avg_divisor(divisor_override)
        kernel, stride, padding, _, (oh, ow) = check.pool_geometry(
            x.shape, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
        y = np.empty(x.shape[:2] + (oh, ow), x.dtype)
        _pool.avg_pool2d(_contiguous(x), y, *kernel, *stride, *padding, bool(count_include_pad),
                         divisor, _config.get_num_threads())
        return y

    def avg_pool2d_backward(self, grad_output: np.ndarray, input_shape: Sequence[int],
                            kernel_size: Any, stride: Any = None, padding: Any = 0,
                            ceil_mode: bool = False, count_include_pad: bool = True,
                            divisor_override: Optional[int] = None) -> np.ndarray:
        """Gradient of ``avg_pool2d`` with respect to its input."""
        check.float_array(grad_output, "grad_output", 4, "(N, C, OH, OW)")
        shape = check.shape_tuple(input_shape, "input_shape", 4)
        divisor = check.avg_divisor(divisor_override)
        kernel, stride, padding, _, out_hw = check.pool_geometry(
            shape, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d_backward")
        check.grad_output_shape(grad_output, shape[0], shape[1], out_hw, "avg_pool2d_backward")
        dx = np.empty(shape, grad_output.dtype)
        _pool.avg_pool2d_backward(_contiguous(grad_output), dx, *kernel, *stride, *padding,
                                  bool(count_include_pad), divisor, _config.get_num_threads())
        return dx

    # -- binary first-layer convolution -----------------------------------------------------

    def binary_conv2d_forward(self, x: np.ndarray, packed: bool, tables: np.ndarray,
                              base_values: Optional[np.ndarray],
                              base_index: Optional[np.ndarray], bias: np.ndarray,
                              shape: Sequence[int], kernel_size: Any, stride: Any = 1,
                              padding: Any = 0, dilation: Any = 1,
                              out: Optional[np.ndarray] = None) -> np.ndarray:
        """Binary-image convolution from lookup tables (see ``convlab._ops.binary``).

        Args:
            x: uint8 0/1 images flattened per image (N, C*H*W), or bit-packed per channel
                plane (N, C*ceil(H*W/8)) when ``packed``.
            tables: (Cout, R, 8) sums of weights per 3-tap pattern, R = C*KH*ceil(KW/3).
            base_values, base_index: Optional start values: output pixel (c, oh, ow) starts
                from ``base_values[c, base_index[oh, ow]]`` ((Cout, K), and (OH, OW) int32);
                without them from ``bias[c]`` (Cout,).
        """
        shape, kernel, stride, padding, dilation, out_hw = check.binary_operands(
            x, packed, shape, kernel_size, stride, padding, dilation, "binary_conv2d_forward")
        cout, dtype = check.binary_tables(tables, bias, base_values, base_index, shape, kernel,
                                          out_hw)
        x = _contiguous(x)
        if base_values is not None:
            base_values, base_index = _contiguous(base_values), _contiguous(base_index)
        # whole cache lines: the column kernels' stores and index loads then never straddle two
        out = _check_out(out, (x.shape[0], cout) + out_hw, dtype) if out is not None \
            else _binary.aligned_empty((x.shape[0], cout) + out_hw, dtype)
        return _binary.forward(x, bool(packed), _contiguous(tables), base_values, base_index,
                               _contiguous(bias), shape, kernel, stride, padding, dilation,
                               out_hw, out, _config.get_num_threads())

    def binary_conv2d_weight_sums(self, x: np.ndarray, packed: bool, grad_output: np.ndarray,
                                  cls: np.ndarray, n_classes: int, shape: Sequence[int],
                                  kernel_size: Any, stride: Any = 1, padding: Any = 0,
                                  dilation: Any = 1, row_starts: Optional[Any] = None
                                  ) -> Tuple[np.ndarray, np.ndarray]:
        """Output gradients summed where each kernel tap sees a 1: the weight gradient's raw
        material.

        Args:
            row_starts: Boundaries of the runs of output rows to sum the column classes over
                (run r: rows ``row_starts[r] .. row_starts[r+1] - 1``); None: every row alone.

        Returns:
            ``taps`` (Cout, C, KH, KW), the gradient summed over the output pixels whose input
            pixel under that tap is 1, and ``colsum`` (runs, n_classes, Cout), the gradient
            summed per run of output rows and per column class ``cls[ow]``.
        """
        shape, kernel, stride, padding, dilation, _, n_classes, cls, row_starts = \
            check.binary_gradient_operands(x, packed, grad_output, cls, n_classes, row_starts,
                                           shape, kernel_size, stride, padding, dilation,
                                           "binary_conv2d_weight_sums", np)
        x = _contiguous(x)
        return _binary.weight_sums(x, bool(packed), _contiguous(grad_output), cls, n_classes,
                                   row_starts, shape, kernel, stride, padding, dilation,
                                   _config.get_num_threads())

    def binary_layer_forward(self, x: np.ndarray, packed: bool, weight: np.ndarray,
                             bias: Optional[np.ndarray], zero_value: float, std: float,
                             run_taps: np.ndarray, base_index: np.ndarray,
                             shape: Sequence[int], kernel_size: Any, stride: Any = 1,
                             padding: Any = 0, dilation: Any = 1) -> Optional[np.ndarray]:
        """A one-channel float32 binary layer's forward in one call, from its weights.

        For ``convlab._ops.binary``, which has checked the operands: lookup tables, start
        values and kernels in C, so that no NumPy steps run between two batches' kernels
        (cache-cold there, they cost 0.2-0.3 ms a call on the 20-day layer).

        Args:
            x: uint8 images (N, H*W), 0/1 or bit-packed.
            weight: (Cout, 1, KH, KW); bias: (Cout,) or None.
            zero_value: ``-mean / std``, what the taps in ``run_taps`` see of a 0 pixel.
            run_taps: (runs, KH*KW) float64 taps counted per run of output pixels;
                base_index: (OH, OW) int32, each output pixel's run.

        Returns:
            The (N, Cout, OH, OW) output; None where the AVX-512 column kernels do not apply
            (the caller then takes the general path).
        """
        shape, kernel, stride, padding, dilation, out_hw = check.binary_operands(
            x, packed, shape, kernel_size, stride, padding, dilation, "binary_layer_forward")
        check.binary_layer_operands(weight, bias, zero_value, std, run_taps, base_index,
                                    shape, kernel, out_hw)
        return _binary.layer_forward(
            _contiguous(x), bool(packed), _contiguous(weight),
            None if bias is None else _contiguous(bias), float(zero_value), float(std),
            _contiguous(run_taps), _contiguous(base_index), shape, kernel, stride, padding,
            dilation, out_hw, _config.get_num_threads())

    def binary_layer_weight_grad(self, x: np.ndarray, packed: bool, grad_output: np.ndarray,
                                 cls: np.ndarray, n_classes: int, row_starts: np.ndarray,
                                 class_run_taps: Optional[np.ndarray], zero_value: float,
                                 std: float, shape: Sequence[int], kernel_size: Any,
                                 stride: Any = 1, padding: Any = 0, dilation: Any = 1
                                 ) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """The weight and bias gradients of :meth:`binary_layer_forward`'s layer.

        Args:
            class_run_taps: (runs * n_classes, KH*KW) float64 taps inside the image per run
                of rows (``row_starts``) and column class (``cls``); None when every tap
                sees ``zero_value`` (the fold into the weights).

        Returns:
            ``(grad_weight, grad_bias)``; None where the column kernels do not apply.
        """
        shape, kernel, stride, padding, dilation, _, n_classes, cls, row_starts = \
            check.binary_gradient_operands(x, packed, grad_output, cls, n_classes, row_starts,
                                           shape, kernel_size, stride, padding, dilation,
                                           "binary_layer_weight_grad", np)
        check.binary_fold_operands(class_run_taps, len(row_starts) - 1, n_classes, kernel,
                                   zero_value, std)
        if grad_output.size == 0:      # no images or no channels: nothing flows back
            cout = grad_output.shape[1]
            return (np.zeros((cout, 1) + kernel, grad_output.dtype),
                    np.zeros(cout, grad_output.dtype))
        return _binary.layer_weight_grad(
            _contiguous(x), bool(packed), _contiguous(grad_output), cls, n_classes, row_starts,
            None if class_run_taps is None else _contiguous(class_run_taps),
            float(zero_value), float(std), shape, kernel, stride, padding, dilation,
            _config.get_num_threads())

    # -- fused elementwise ------------------------------------------------------------------

    def adam_step(self, param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray,
                  exp_avg_sq: np.ndarray, lr: float, betas: tuple, eps: float,
                  weight_decay: float, decoupled: bool, step: int) -> bool:
        """One Adam / AdamW update of ``param`` and its moments in place, in one pass.

        Returns False, leaving the update to NumPy, for arrays the kernel cannot update in
        place (not C-contiguous, or read-only).

        Raises:
            ValueError: If ``grad`` or a moment differs from ``param`` in shape or dtype, or a
                hyper-parameter is out of range.
        """
        lr, beta1, beta2, eps, weight_decay, step = check.adam_operands(
            param, grad, exp_avg, exp_avg_sq, lr, betas, eps, weight_decay, step)
        arrays = (param, grad, exp_avg, exp_avg_sq)
        if not all(isinstance(a, np.ndarray) and a.flags.c_contiguous for a in arrays) or \
                not (param.flags.writeable and exp_avg.flags.writeable and
                     exp_avg_sq.flags.writeable):
            return False
        bc1, bc2 = 1 - beta1 ** step, 1 - beta2 ** step
        flat = [a.reshape(-1) for a in arrays]
        _activation.adam_step(*flat, lr, beta1, beta2, eps,
                              0.0 if decoupled else weight_decay,
                              weight_decay if decoupled else 0.0, lr / bc1, bc2 ** 0.5,
                              _config.get_num_threads())
        return True

    def leaky_relu_forward(self, x: np.ndarray, slope: float) -> Tuple[np.ndarray, np.ndarray]:
        """Leaky ReLU and its mask in one pass: ``(where(x > 0, x, slope * x), x > 0)``."""
        x = _contiguous(check.float_array(x, "x"))
        slope = check.finite_number(slope, "slope")
        out, positive = np.empty_like(x), np.empty(x.shape, np.bool_)
        if x.size:
            _activation.leaky_relu_forward(x.reshape(-1), out.reshape(-1),
                                           positive.reshape(-1).view(np.uint8), slope,
                                           _config.get_num_threads())
        return out, positive

    def leaky_relu_backward(self, grad: np.ndarray, positive: np.ndarray,
                            slope: float) -> np.ndarray:
        """Leaky ReLU gradient: ``grad`` where the bool mask ``positive``, else ``slope * grad``."""
        return _masked_scale(grad, positive, "positive", 1.0, check.finite_number(slope, "slope"))

    def dropout_forward(self, x: np.ndarray, p: float,
                        seed: int) -> Tuple[np.ndarray, np.ndarray]:
        """Dropout in one parallel pass: ``(x * keep / (1 - p), keep)``, ``keep`` a bool mask
        set with probability ``1 - p`` (to 2**-32).

        The mask comes from a SplitMix64 stream seeded by ``seed`` (a uint64): the same seed
        gives the same mask for any thread count, and on the GPU backend.

        Raises:
            ValueError: If ``p`` is not in [0, 1).
        """
        p, seed = check.dropout_operands(x, p, seed)
        x = _contiguous(x)
        out, keep = np.empty_like(x), np.empty(x.shape, np.bool_)
        if x.size:
            _activation.dropout_forward(x.reshape(-1), out.reshape(-1),
                                        keep.reshape(-1).view(np.uint8), seed,
                                        dropout_threshold(p), 1.0 / (1.0 - p),
                                        _config.get_num_threads())
        return out, keep

    def dropout_backward(self, grad: np.ndarray, keep: np.ndarray, p: float) -> np.ndarray:
        """Dropout gradient: ``grad / (1 - p)`` where the bool mask ``keep``, else 0."""
        return _masked_scale(grad, keep, "keep", 1.0 / (1.0 - check.probability(p)), 0.0)
