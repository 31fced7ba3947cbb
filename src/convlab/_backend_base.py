"""The one place where every backend's public kernels are checked, sized and dispatched.

:class:`BackendBase` implements the public surface of :class:`convlab.backend.Backend`: each
method checks its arguments (``convlab._validate``), allocates the result or checks ``out=``,
answers empty inputs, makes the operands contiguous, and only then calls a hook of the backend
(``_..._into``) that writes the result. A backend therefore supplies kernels, never glue:

* **required hooks** (``NotImplementedError`` here): GEMM, im2col / col2im, the three
  convolution kernels, pooling, and the binary layer's two kernels;
* **optional fused kernels** (Leaky ReLU, dropout, batch normalisation, the Adam update): the
  public method is here too, with a default written once against ``self.xp`` that computes
  exactly what the compiled kernels do (dropout draws the same SplitMix64 stream), so a backend
  overrides the ``_..._into`` hook only where a kernel of its own is faster.

Hooks receive contiguous operands (strided ones for the GEMM), non-empty outputs, and the
geometry already checked; they never validate or allocate what the caller sees.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple, TypeVar

import numpy as np

from convlab import _grouped_gemm
from convlab import _validate as check
from convlab._random import dropout_threshold

__all__ = ["BackendBase", "BinaryGeometry", "ConvGeometry", "PoolGeometry"]

_Method = TypeVar("_Method", bound=Callable[..., Any])

# SplitMix64 (Steele, Lea & Flood 2014): the counter stream both compiled dropout kernels use
_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


class ConvGeometry(NamedTuple):
    """A checked 2-D convolution or unfold: pairs of ints, and the output's (OH, OW)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    out_hw: tuple[int, int]


class BinaryGeometry(NamedTuple):
    """A checked binary convolution: the images' (C, H, W), pairs of ints, the output's
    (OH, OW), and whether the images are bit-packed."""

    shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    out_hw: tuple[int, int]
    packed: bool


class PoolGeometry(NamedTuple):
    """A checked 2-D pooling window; ``divisor`` is ``avg_pool2d``'s override (0: none)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    out_hw: tuple[int, int]
    count_include_pad: bool = True
    divisor: int = 0


def public_kernel(method: _Method) -> _Method:
    """Let the backend turn a failure of its device (say, out of memory) into a clear error:
    :meth:`BackendBase._translate_error` sees every exception of a public method."""

    @functools.wraps(method)
    def wrapper(self: BackendBase, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as err:
            replacement = self._translate_error(err, method.__name__)
            if replacement is None:
                raise
            raise replacement from None

    return wrapper  # type: ignore[return-value]


def _stacked(xp: ModuleType, a: Any, batch: tuple[int, ...], count: int) -> Any:
    """``a`` (..., r, c) as (count, r, c) over the broadcast ``batch``: a view; zero strides
    where ``a`` is broadcast (``broadcast_to`` costs microseconds, so only then)."""
    if a.shape[:-2] != batch:
        a = xp.broadcast_to(a, batch + a.shape[-2:])
    return a.reshape((count,) + a.shape[-2:])


def _norm_pool_params(shape: tuple, kernel: Any, ceil_mode: Any, slope: Any) -> tuple:
    """``(k, slope, (OH, W))`` of a fused batch norm -> (k, 1) max pool -> activation; the
    window row must fit the code byte's 7 bits."""
    k = check.integer(kernel, "kernel", 1, 127)
    slope = check.finite_number(slope, "slope", 0.0)
    what = "batch_norm_max_pool"
    out_hw = check.pool_geometry(shape, (k, 1), (k, 1), 0, 1, bool(ceil_mode), what)[4]
    return k, slope, out_hw


def _nonempty_planes(shape: tuple, what: str) -> None:
    if shape[2] * shape[3] == 0:
        raise ValueError(f"{what}: expected non-empty (H, W) planes, got shape {tuple(shape)}")


class BackendBase:
    """Shared glue above the kernels; subclasses supply the ``_..._into`` hooks.

    Attributes:
        name: The backend's name (``"cpu"``, ``"gpu"``, or a test backend's own).
        checks_binary_pixels: True when :meth:`binary_conv2d_forward` rejects uint8 pixels
            other than 0 and 1 itself, so callers need no pass of their own over the images.
    """

    name = "base"
    checks_binary_pixels = False

    # -- identity and transfers (required) -------------------------------------------------
    @property
    def xp(self) -> ModuleType:
        """The array module (``numpy``, ``cupy``, ...)."""
        raise NotImplementedError

    def is_available(self) -> bool:
        """Whether this machine can run the backend's kernels."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line on what runs (instruction set and threads, or the device)."""
        raise NotImplementedError

    def asarray(self, data: Any, dtype: Any = None) -> Any:
        """Convert ``data`` to an array of this backend."""
        return self.xp.asarray(data, dtype=dtype)

    def to_numpy(self, array: Any) -> np.ndarray:
        """Copy (or view) an array of this backend as a NumPy array."""
        return np.asarray(array)

    def synchronize(self) -> None:
        """Wait for all queued kernels to finish (nothing to wait for by default)."""

    def _translate_error(self, err: Exception, method: str) -> Exception | None:
        """The exception to raise instead of ``err`` from public ``method``; None keeps it."""
        return None

    # -- small helpers the glue shares -----------------------------------------------------
    def _contiguous(self, array: Any) -> Any:
        return self.xp.ascontiguousarray(array)

    def _output(self, out: Any, shape: tuple, dtype: Any, name: str = "out") -> Any:
        """A fresh result array, or the caller's ``out`` once it fits exactly."""
        xp = self.xp
        if out is None:
            return xp.empty(shape, dtype)
        return check.out_array(out, shape, np.dtype(dtype), xp.ndarray, name)

    # ====================================================================== matmul
    @public_kernel
    def matmul(
        self, a: Any, b: Any, out: Any = None, trans_a: bool = False, trans_b: bool = False
    ) -> Any:
        """``op(a) @ op(b)`` where ``op`` swaps the last two axes when ``trans_*`` is set.

        Follows ``numpy.matmul``: 1-D operands are promoted and the added axis removed again,
        leading axes broadcast. Strided operands are read without copying where the backend's
        GEMM can.

        Raises:
            TypeError: For non-float or mismatched dtypes.
            ValueError: For mismatched inner dimensions or a bad ``out``.
        """
        xp = self.xp
        a2, b2, batch, (m, k, n), shape, dtype = check.matmul_operands(a, b, trans_a, trans_b)
        result = self._output(out, shape, dtype)
        if out is not None and (xp.may_share_memory(out, a) or xp.may_share_memory(out, b)):
            result = xp.empty(shape, dtype)  # out aliases an operand: write it last
        if result.size == 0 or k == 0:
            # nothing to multiply (reshapes with -1 are ambiguous for empty arrays); an empty
            # sum is 0, as in NumPy
            result.fill(0)
        else:
            count = math.prod(batch)
            self._gemm_into(
                _stacked(xp, a2, batch, count),
                _stacked(xp, b2, batch, count),
                result.reshape((count, m, n)),
            )
        if out is not None and result is not out:
            out[...] = result
            return out
        return result

    def _gemm_into(self, a: Any, b: Any, c: Any) -> None:
        """``c[i] = a[i] @ b[i]`` for (count, m, k) ``a`` and (count, k, n) ``b`` with any
        element strides (zero where broadcast) into contiguous, non-empty (count, m, n) ``c``;
        ``k >= 1``."""
        raise NotImplementedError

    # ====================================================================== im2col / col2im
    @public_kernel
    def im2col(
        self, x: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1
    ) -> Any:
        """Unfold (N, C, H, W) into columns (N, C*KH*KW, OH*OW) (``torch.nn.functional.unfold``).

        Row ``(c*KH + kh)*KW + kw`` holds the input each output pixel sees through tap
        ``(c, kh, kw)``, zero where it falls into the padding.
        """
        check.float_array(x, "x", 4, "(N, C, H, W)")
        kernel = check.positive_pair(kernel_size, "kernel_size")
        stride, padding, dilation, out_hw = check.conv_geometry(
            x.shape, kernel, stride, padding, dilation, "im2col"
        )
        n, c = x.shape[:2]
        cols = self.xp.empty((n, c * kernel[0] * kernel[1], out_hw[0] * out_hw[1]), x.dtype)
        if cols.size:
            self._im2col_into(
                self._contiguous(x), cols, ConvGeometry(kernel, stride, padding, dilation, out_hw)
            )
        return cols

    def _im2col_into(self, x: Any, cols: Any, geom: ConvGeometry) -> None:
        """Fill (N, C*KH*KW, OH*OW) ``cols`` from contiguous (N, C, H, W) ``x``."""
        raise NotImplementedError

    @public_kernel
    def col2im(
        self,
        cols: Any,
        output_size: Any,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
    ) -> Any:
        """Sum columns (N, C*KH*KW, L) back into (N, C, H, W) (``torch.nn.functional.fold``),
        in a fixed order: deterministic, no atomics."""
        shape, kernel, stride, padding, dilation, out_hw = check.col2im_operands(
            cols, output_size, kernel_size, stride, padding, dilation
        )
        x = self.xp.empty(shape, cols.dtype)
        if x.size:
            self._col2im_into(
                self._contiguous(cols), x, ConvGeometry(kernel, stride, padding, dilation, out_hw)
            )
        return x

    def _col2im_into(self, cols: Any, x: Any, geom: ConvGeometry) -> None:
        """Write every element of non-empty (N, C, H, W) ``x``: the sum of its columns."""
        raise NotImplementedError

    # ====================================================================== conv2d
    @public_kernel
    def conv2d_forward(
        self,
        x: Any,
        weight: Any,
        bias: Any = None,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        out: Any = None,
        groups: int = 1,
    ) -> Any:
        """2-D cross-correlation of NCHW ``x`` with OIHW ``weight``, plus ``bias`` (O,).

        With ``groups`` > 1 the channels split into that many groups, each convolved on its
        own (``torch.nn.functional.conv2d``'s ``groups``): ``weight`` is
        (O, C / groups, KH, KW) and output channel ``o`` sees input group
        ``o // (O / groups)``.

        Raises:
            TypeError: For non-float or mismatched dtypes.
            ValueError: For mismatched channels, bad geometry or a kernel larger than the
                padded input.
        """
        if groups != 1:
            return self._grouped_forward(x, weight, bias, stride, padding, dilation, out, groups)
        dtype, stride, padding, dilation, out_hw = check.conv_forward_operands(
            x, weight, bias, stride, padding, dilation
        )
        y = self._output(out, (x.shape[0], weight.shape[0]) + out_hw, dtype)
        if y.size == 0:
            return y
        if x.shape[1] == 0:  # no input channels: the bias alone
            y[...] = 0 if bias is None else bias[:, None, None]
            return y
        geom = ConvGeometry(tuple(weight.shape[2:]), stride, padding, dilation, out_hw)
        self._conv2d_forward_into(
            self._contiguous(x),
            self._contiguous(weight),
            None if bias is None else self._contiguous(bias),
            y,
            geom,
        )
        return y

    def _conv2d_forward_into(
        self, x: Any, weight: Any, bias: Any | None, y: Any, geom: ConvGeometry
    ) -> None:
        """Write the convolution (plus ``bias``) into non-empty ``y``; C >= 1."""
        raise NotImplementedError

    @public_kernel
    def conv2d_backward_data(
        self,
        grad_output: Any,
        weight: Any,
        input_shape: Sequence[int],
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        algorithm: str = "auto",
        groups: int = 1,
    ) -> Any:
        """Gradient of :meth:`conv2d_forward` with respect to ``x`` (shape ``input_shape``).

        ``algorithm``: ``"auto"``, ``"implicit"`` (stride 1 only) or ``"gemm"``, a hint a
        backend with one way of computing it serves with that one (grouped convolutions
        ignore it). ``groups`` as in :meth:`conv2d_forward`.
        """
        if groups != 1:
            return self._grouped_backward_data(
                grad_output, weight, input_shape, stride, padding, dilation, algorithm, groups
            )
        dtype, shape, stride, padding, dilation, out_hw = check.conv_data_grad_operands(
            grad_output, weight, input_shape, stride, padding, dilation
        )
        algorithm = check.data_grad_algorithm(algorithm, stride)
        dx = self.xp.empty(shape, dtype)
        if dx.size == 0:
            return dx
        if grad_output.size == 0 or weight.shape[0] == 0:
            dx[...] = 0
            return dx
        geom = ConvGeometry(tuple(weight.shape[2:]), stride, padding, dilation, out_hw)
        self._conv2d_backward_data_into(
            self._contiguous(grad_output), self._contiguous(weight), dx, geom, algorithm
        )
        return dx

    def _conv2d_backward_data_into(
        self, grad_output: Any, weight: Any, dx: Any, geom: ConvGeometry, algorithm: str
    ) -> None:
        """Write the input gradient into non-empty ``dx``; ``grad_output`` is non-empty."""
        raise NotImplementedError

    @public_kernel
    def conv2d_backward_weight(
        self,
        grad_output: Any,
        x: Any,
        weight_shape: Sequence[int],
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        bias: bool = True,
        groups: int = 1,
    ) -> tuple[Any, Any | None]:
        """Gradients with respect to the weight (shape ``weight_shape``) and, if ``bias``, the
        bias. Deterministic for a given thread count. ``groups`` as in
        :meth:`conv2d_forward`."""
        if groups != 1:
            return self._grouped_backward_weight(
                grad_output, x, weight_shape, stride, padding, dilation, bias, groups
            )
        xp = self.xp
        dtype, wshape, stride, padding, dilation, out_hw = check.conv_weight_grad_operands(
            grad_output, x, weight_shape, stride, padding, dilation
        )
        dw = xp.empty(wshape, dtype)
        db = xp.empty(wshape[0], dtype) if bias else None
        if dw.size == 0 or grad_output.size == 0:
            dw[...] = 0
            if db is not None:
                db[...] = 0 if grad_output.size == 0 else grad_output.sum(axis=(0, 2, 3))
            return dw, db
        geom = ConvGeometry(tuple(wshape[2:]), stride, padding, dilation, out_hw)
        self._conv2d_backward_weight_into(
            self._contiguous(grad_output), self._contiguous(x), dw, db, geom
        )
        return dw, db

    def _conv2d_backward_weight_into(
        self, grad_output: Any, x: Any, dw: Any, db: Any | None, geom: ConvGeometry
    ) -> None:
        """Write the weight gradient into non-empty ``dw`` and, unless None, the bias
        gradient into ``db``; ``grad_output`` is non-empty."""
        raise NotImplementedError

    # ====================================================================== grouped conv2d
    @staticmethod
    def _group_channels(groups: Any, channels: int, weight_shape: tuple, what: str) -> int:
        """Check ``groups`` against the input's ``channels`` and the weight's shape (as
        PyTorch: both channel counts divisible by it); returns it as an int."""
        groups = check.positive(groups, "groups")
        if weight_shape[0] % groups:
            raise ValueError(
                f"{what}: groups={groups} must divide out_channels, but the weight "
                f"{tuple(weight_shape)} has {weight_shape[0]}"
            )
        if channels != weight_shape[1] * groups:
            raise ValueError(
                f"{what}: x has {channels} channels but the weight {tuple(weight_shape)} with "
                f"groups={groups} expects {weight_shape[1] * groups} "
                f"(in_channels / groups = {weight_shape[1]})"
            )
        return groups

    def _grouped_forward(
        self,
        x: Any,
        weight: Any,
        bias: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        out: Any,
        groups: Any,
    ) -> Any:
        check.float_array(x, "x", 4, "(N, C, H, W)")
        check.float_array(weight, "weight", 4, "(out_channels, in_channels / groups, KH, KW)")
        groups = self._group_channels(groups, x.shape[1], tuple(weight.shape), "conv2d")
        # one group's channels stand for the input: the shared checks then see a dense conv
        dtype, stride, padding, dilation, out_hw = check.conv_forward_operands(
            x[:, : weight.shape[1]], weight, bias, stride, padding, dilation
        )
        y = self._output(out, (x.shape[0], weight.shape[0]) + out_hw, dtype)
        if y.size == 0:
            return y
        if x.shape[1] == 0:
            y[...] = 0 if bias is None else bias[:, None, None]
            return y
        geom = ConvGeometry(tuple(weight.shape[2:]), stride, padding, dilation, out_hw)
        self._grouped_conv2d_forward_into(
            self._contiguous(x),
            self._contiguous(weight),
            None if bias is None else self._contiguous(bias),
            y,
            geom,
            groups,
        )
        return y

    def _grouped_backward_data(
        self,
        grad_output: Any,
        weight: Any,
        input_shape: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        algorithm: Any,
        groups: Any,
    ) -> Any:
        check.float_array(weight, "weight", 4, "(out_channels, in_channels / groups, KH, KW)")
        shape = check.shape_tuple(input_shape, "input_shape", 4)
        groups = self._group_channels(groups, shape[1], tuple(weight.shape), "conv2d_backward_data")
        one_group = (shape[0], weight.shape[1]) + shape[2:]
        dtype, _, stride, padding, dilation, out_hw = check.conv_data_grad_operands(
            grad_output, weight, one_group, stride, padding, dilation
        )
        check.data_grad_algorithm(algorithm, stride)
        dx = self.xp.empty(shape, dtype)
        if dx.size == 0:
            return dx
        if grad_output.size == 0:
            dx[...] = 0
            return dx
        geom = ConvGeometry(tuple(weight.shape[2:]), stride, padding, dilation, out_hw)
        self._grouped_conv2d_backward_data_into(
            self._contiguous(grad_output), self._contiguous(weight), dx, geom, groups
        )
        return dx

    def _grouped_backward_weight(
        self,
        grad_output: Any,
        x: Any,
        weight_shape: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        bias: bool,
        groups: Any,
    ) -> tuple[Any, Any | None]:
        xp = self.xp
        check.float_array(x, "x", 4, "(N, C, H, W)")
        wshape = check.shape_tuple(weight_shape, "weight_shape", 4)
        groups = self._group_channels(groups, x.shape[1], wshape, "conv2d_backward_weight")
        dtype, _, stride, padding, dilation, out_hw = check.conv_weight_grad_operands(
            grad_output, x[:, : wshape[1]], wshape, stride, padding, dilation
        )
        dw = xp.empty(wshape, dtype)
        db = xp.empty(wshape[0], dtype) if bias else None
        if dw.size == 0 or grad_output.size == 0:
            dw[...] = 0
            if db is not None:
                db[...] = 0 if grad_output.size == 0 else grad_output.sum(axis=(0, 2, 3))
            return dw, db
        geom = ConvGeometry((wshape[2], wshape[3]), stride, padding, dilation, out_hw)
        self._grouped_conv2d_backward_weight_into(
            self._contiguous(grad_output), self._contiguous(x), dw, db, geom, groups
        )
        return dw, db

    # The grouped hooks are optional: the defaults run every group at once as a batched GEMM
    # over the backend's own im2col / GEMM / col2im hooks (convlab._grouped_gemm); a backend
    # overrides them where a kernel of its own is faster (depthwise convolutions).
    def _grouped_conv2d_forward_into(
        self, x: Any, weight: Any, bias: Any | None, y: Any, geom: ConvGeometry, groups: int
    ) -> None:
        """Write the grouped convolution (plus ``bias``) into non-empty ``y``; C >= 1."""
        _grouped_gemm.forward(self, x, weight, bias, y, geom, groups)

    def _grouped_conv2d_backward_data_into(
        self, grad_output: Any, weight: Any, dx: Any, geom: ConvGeometry, groups: int
    ) -> None:
        """Write the grouped convolution's input gradient into non-empty ``dx``."""
        _grouped_gemm.backward_data(self, grad_output, weight, dx, geom, groups)

    def _grouped_conv2d_backward_weight_into(
        self,
        grad_output: Any,
        x: Any,
        dw: Any,
        db: Any | None,
        geom: ConvGeometry,
        groups: int,
    ) -> None:
        """Write the grouped convolution's weight (and, unless None, bias) gradient."""
        _grouped_gemm.backward_weight(self, grad_output, x, dw, db, geom, groups)

    # ====================================================================== pooling
    @public_kernel
    def max_pool2d(
        self,
        x: Any,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        ceil_mode: bool = False,
    ) -> tuple[Any, Any]:
        """Max pooling of NCHW ``x`` with PyTorch's semantics (NaN propagates, ties go to the
        first element).

        Returns:
            ``(values, argmax)``: ``argmax`` holds each maximum's offset inside its window,
            ``i * KW + j``, as uint8 (int32 for windows of more than 256 elements).
        """
        xp = self.xp
        check.float_array(x, "x", 4, "(N, C, H, W)")
        kernel, stride, padding, dilation, out_hw = check.pool_geometry(
            x.shape, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d"
        )
        shape = x.shape[:2] + out_hw
        y = xp.empty(shape, x.dtype)
        argmax = xp.empty(shape, check.argmax_dtype(kernel))
        if y.size:
            self._max_pool2d_into(
                self._contiguous(x),
                y,
                argmax,
                PoolGeometry(kernel, stride, padding, dilation, out_hw),
            )
        return y, argmax

    def _max_pool2d_into(self, x: Any, y: Any, argmax: Any, geom: PoolGeometry) -> None:
        """Write the maxima into non-empty ``y`` and their window offsets into ``argmax``
        (uint8 or int32, as :func:`convlab._validate.argmax_dtype` says)."""
        raise NotImplementedError

    @public_kernel
    def max_pool2d_backward(
        self,
        grad_output: Any,
        argmax: Any,
        input_shape: Sequence[int],
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        ceil_mode: bool = False,
    ) -> Any:
        """Gradient of :meth:`max_pool2d`: each output's gradient goes to its argmax.

        Offsets outside their window (a hand-made ``argmax``) are ignored, never written.
        """
        check.float_array(grad_output, "grad_output", 4, "(N, C, OH, OW)")
        shape = check.shape_tuple(input_shape, "input_shape", 4)
        kernel, stride, padding, dilation, out_hw = check.pool_geometry(
            shape, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d_backward"
        )
        check.max_pool_grad_operands(grad_output, argmax, shape, kernel, out_hw)
        dx = self.xp.empty(shape, grad_output.dtype)
        if dx.size:
            self._max_pool2d_backward_into(
                self._contiguous(grad_output),
                self._contiguous(argmax),
                dx,
                PoolGeometry(kernel, stride, padding, dilation, out_hw),
            )
        return dx

    def _max_pool2d_backward_into(
        self, grad_output: Any, argmax: Any, dx: Any, geom: PoolGeometry
    ) -> None:
        """Write every element of non-empty ``dx``: the gradients whose argmax it is."""
        raise NotImplementedError

    @public_kernel
    def avg_pool2d(
        self,
        x: Any,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> Any:
        """Average pooling of NCHW ``x`` with PyTorch's semantics."""
        check.float_array(x, "x", 4, "(N, C, H, W)")
        divisor = check.avg_divisor(divisor_override)
        kernel, stride, padding, dilation, out_hw = check.pool_geometry(
            x.shape, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d"
        )
        y = self.xp.empty(x.shape[:2] + out_hw, x.dtype)
        if y.size:
            self._avg_pool2d_into(
                self._contiguous(x),
                y,
                PoolGeometry(
                    kernel, stride, padding, dilation, out_hw, bool(count_include_pad), divisor
                ),
            )
        return y

    def _avg_pool2d_into(self, x: Any, y: Any, geom: PoolGeometry) -> None:
        """Write the window averages into non-empty ``y``."""
        raise NotImplementedError

    @public_kernel
    def avg_pool2d_backward(
        self,
        grad_output: Any,
        input_shape: Sequence[int],
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> Any:
        """Gradient of :meth:`avg_pool2d` with respect to its input."""
        check.float_array(grad_output, "grad_output", 4, "(N, C, OH, OW)")
        shape = check.shape_tuple(input_shape, "input_shape", 4)
        divisor = check.avg_divisor(divisor_override)
        kernel, stride, padding, dilation, out_hw = check.pool_geometry(
            shape, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d_backward"
        )
        check.grad_output_shape(grad_output, shape[0], shape[1], out_hw, "avg_pool2d_backward")
        dx = self.xp.empty(shape, grad_output.dtype)
        if dx.size:
            self._avg_pool2d_backward_into(
                self._contiguous(grad_output),
                dx,
                PoolGeometry(
                    kernel, stride, padding, dilation, out_hw, bool(count_include_pad), divisor
                ),
            )
        return dx

    def _avg_pool2d_backward_into(self, grad_output: Any, dx: Any, geom: PoolGeometry) -> None:
        """Write every element of non-empty ``dx``: its share of each window's gradient."""
        raise NotImplementedError

    # ====================================================================== global pooling
    @public_kernel
    def global_avg_pool2d(self, x: Any) -> Any:
        """The mean of each (H, W) plane of NCHW ``x``, as (N, C, 1, 1) (adaptive average
        pooling to 1x1); H * W >= 1."""
        check.float_array(x, "x", 4, "(N, C, H, W)")
        _nonempty_planes(x.shape, "global_avg_pool2d")
        y = self.xp.empty(x.shape[:2] + (1, 1), x.dtype)
        if y.size:
            self._global_avg_pool2d_into(self._contiguous(x), y)
        return y

    def _global_avg_pool2d_into(self, x: Any, y: Any) -> None:
        """Write the plane means into non-empty ``y``; the default is ``xp``'s mean."""
        y[...] = x.reshape(y.size, -1).mean(axis=1).reshape(y.shape)

    @public_kernel
    def global_max_pool2d(self, x: Any) -> tuple[Any, Any]:
        """The maximum of each (H, W) plane of NCHW ``x`` and its flat offset ``h * W + w``
        (int64), both (N, C, 1, 1); NaN propagates, ties and NaNs go to the first."""
        check.float_array(x, "x", 4, "(N, C, H, W)")
        _nonempty_planes(x.shape, "global_max_pool2d")
        y = self.xp.empty(x.shape[:2] + (1, 1), x.dtype)
        index = self.xp.empty(x.shape[:2] + (1, 1), np.int64)
        if y.size:
            self._global_max_pool2d_into(self._contiguous(x), y, index)
        return y, index

    def _global_max_pool2d_into(self, x: Any, y: Any, index: Any) -> None:
        """Write the plane maxima and their offsets; the default is ``xp``'s argmax."""
        flat = x.reshape(y.size, -1)
        at = flat.argmax(axis=1)
        index[...] = at.reshape(index.shape)
        y[...] = self.xp.take_along_axis(flat, at[:, None], axis=1).reshape(y.shape)

    def _adaptive_max_pool2d_into(
        self, x: Any, row_bins: list, col_bins: list, y: Any, flat: Any
    ) -> None:
        """Adaptive max pooling of contiguous NCHW ``x`` over the bins ``row_bins`` x
        ``col_bins`` (lists of ``(start, end)``) that do not tile the plane: ``y`` (N, C, OH,
        OW) the maxima, ``flat`` (int64, same shape) their offsets ``h * W + w``, the first
        maximum of a bin in row-major order or its first NaN. The default takes one bin at a
        time with ``xp``'s argmax."""
        xp = self.xp
        n, c, _, w = x.shape
        for i, (h0, h1) in enumerate(row_bins):
            for j, (w0, w1) in enumerate(col_bins):
                patch = x[:, :, h0:h1, w0:w1].reshape(n, c, -1)
                best = xp.argmax(patch, axis=2)
                y[:, :, i, j] = xp.take_along_axis(patch, best[:, :, None], axis=2)[:, :, 0]
                flat[:, :, i, j] = (h0 + best // (w1 - w0)) * w + w0 + best % (w1 - w0)

    def _adaptive_max_pool2d_backward_into(self, grad: Any, flat: Any, dx: Any) -> None:
        """``dx`` (N, C, H, W) = the gradient of :meth:`_adaptive_max_pool2d_into`: zeros plus
        each output's gradient at its maximum (bins that share a maximum add up)."""
        xp = self.xp
        n, c = dx.shape[:2]
        d2 = dx.reshape(n * c, -1)
        d2[...] = 0
        rows = xp.arange(n * c)
        g2, i2 = grad.reshape(n * c, -1), flat.reshape(n * c, -1)
        # one output at a time: each plane has one maximum per output, so no index repeats
        # within an update
        for b in range(g2.shape[1]):
            d2[rows, i2[:, b]] += g2[:, b]

    # ====================================================================== fused element-wise
    @public_kernel
    def leaky_relu_forward(self, x: Any, slope: float) -> tuple[Any, Any]:
        """Leaky ReLU and its mask in one pass: ``(where(x > 0, x, slope * x), x > 0)``."""
        xp = self.xp
        x = self._contiguous(check.float_array(x, "x"))
        slope = check.finite_number(slope, "slope")
        out, positive = xp.empty_like(x), xp.empty(x.shape, xp.bool_)
        if x.size:
            self._leaky_relu_into(x, out, positive, slope)
        return out, positive

    def _leaky_relu_into(self, x: Any, out: Any, positive: Any, slope: float) -> None:
        xp = self.xp
        xp.greater(x, 0, out=positive)
        with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 is NaN, as in a kernel
            xp.multiply(x, x.dtype.type(slope), out=out)
        xp.copyto(out, x, where=positive)

    @public_kernel
    def leaky_relu_backward(self, grad: Any, positive: Any, slope: float) -> Any:
        """Leaky ReLU gradient: ``grad`` where the bool mask ``positive``, else ``slope * grad``."""
        return self._masked_scale(
            grad, positive, "positive", 1.0, check.finite_number(slope, "slope")
        )

    @public_kernel
    def dropout_forward(self, x: Any, p: float, seed: int) -> tuple[Any, Any]:
        """Dropout in one pass: ``(x * keep / (1 - p), keep)``, ``keep`` a bool mask set with
        probability ``1 - p`` (to 2**-32).

        The mask comes from a SplitMix64 stream seeded by ``seed`` (a uint64): elements
        ``2j`` and ``2j + 1`` take the low and high halves of the stream's number ``j``, so the
        same seed gives the same mask on every backend and for any thread count.

        Raises:
            ValueError: If ``p`` is not in [0, 1).
        """
        xp = self.xp
        p, seed = check.dropout_operands(x, p, seed)
        x = self._contiguous(x)
        out, keep = xp.empty_like(x), xp.empty(x.shape, xp.bool_)
        if x.size:
            self._dropout_into(x, out, keep, seed, dropout_threshold(p), 1.0 / (1.0 - p))
        return out, keep

    def _dropout_into(
        self, x: Any, out: Any, keep: Any, seed: int, threshold: int, scale: float
    ) -> None:
        # the whole (contiguous) tensor is one row of the per-row stream
        self._dropout_rows_into(
            x.reshape(1, -1),
            out.reshape(1, -1),
            keep.reshape(1, -1),
            np.array([seed], np.uint64),
            threshold,
            scale,
        )

    @public_kernel
    def dropout_rows_forward(self, x: Any, p: float, seeds: Any) -> tuple[Any, Any]:
        """Dropout with a seed per row: row ``r`` of ``x`` (its elements along the other
        dimensions, in C order) takes its mask from the SplitMix64 stream seeded by
        ``seeds[r]``, exactly as ``dropout_forward(x[r], p, seeds[r])`` would, in one pass.

        This is what makes a sample's mask independent of where the sample sits in a batch
        (see :func:`convlab.distributed.sample_indexed_dropout`).

        Raises:
            ValueError: If ``p`` is not in [0, 1), ``x`` has no dimensions or ``seeds`` is not a
                1-D array of ``x.shape[0]`` uint64 values.
        """
        xp = self.xp
        p, _ = check.dropout_operands(x, p, 0)
        if x.ndim == 0:
            raise ValueError("x: expected at least one dimension (the rows), got a 0-d array")
        rows = np.asarray(seeds)
        if rows.shape != (x.shape[0],) or rows.dtype != np.uint64:
            raise ValueError(
                f"seeds: expected a 1-D uint64 array of {x.shape[0]} seeds (one per row of x), "
                f"got {rows.dtype} of shape {rows.shape}"
            )
        x = self._contiguous(x)
        out, keep = xp.empty_like(x), xp.empty(x.shape, xp.bool_)
        if x.size:
            shape = (x.shape[0], x.size // x.shape[0])
            self._dropout_rows_into(
                x.reshape(shape),
                out.reshape(shape),
                keep.reshape(shape),
                np.ascontiguousarray(rows),
                dropout_threshold(p),
                1.0 / (1.0 - p),
            )
        return out, keep

    def _dropout_rows_into(
        self, x: Any, out: Any, keep: Any, seeds: Any, threshold: int, scale: float
    ) -> None:
        """``_dropout_into`` on each row of the 2-D ``x`` with its own seed (broadcast over
        the rows: the same stream arithmetic, one pass)."""
        xp = self.xp
        n = x.shape[1]
        pairs = -(-n // 2)
        with np.errstate(over="ignore"):  # uint64 arithmetic wraps, as in the kernels
            z = xp.arange(1, pairs + 1, dtype=xp.uint64) * _GOLDEN_GAMMA
            z = z[None, :] + xp.asarray(seeds)[:, None]
            z = (z ^ (z >> np.uint64(30))) * _MIX_1
            z = (z ^ (z >> np.uint64(27))) * _MIX_2
            z ^= z >> np.uint64(31)
        halves = xp.stack([z & np.uint64(0xFFFFFFFF), z >> np.uint64(32)], axis=2)
        keep[...] = halves.reshape(x.shape[0], -1)[:, :n] >= np.uint64(threshold)
        t = x.dtype.type
        with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 is NaN, as in a kernel
            xp.multiply(x, xp.where(keep, t(scale), t(0)), out=out)

    @public_kernel
    def dropout_backward(self, grad: Any, keep: Any, p: float) -> Any:
        """Dropout gradient: ``grad / (1 - p)`` where the bool mask ``keep``, else 0."""
        return self._masked_scale(grad, keep, "keep", 1.0 / (1.0 - check.probability(p)), 0.0)

    def _masked_scale(
        self, grad: Any, mask: Any, mask_name: str, if_set: float, if_clear: float
    ) -> Any:
        grad = self._contiguous(check.float_array(grad, "grad"))
        check.bool_mask(mask, mask_name, grad.shape)
        dx = self.xp.empty_like(grad)
        if dx.size:
            self._masked_scale_into(grad, self._contiguous(mask), dx, if_set, if_clear)
        return dx

    def _masked_scale_into(
        self, grad: Any, mask: Any, dx: Any, if_set: float, if_clear: float
    ) -> None:
        """``dx = grad * if_set`` where ``mask``, ``grad * if_clear`` elsewhere: the gradient
        of Leaky ReLU and of dropout."""
        t = grad.dtype.type
        with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 is NaN, as in a kernel
            self.xp.multiply(grad, self.xp.where(mask, t(if_set), t(if_clear)), out=dx)

    # ====================================================================== batch norm
    @public_kernel
    def batch_norm_forward(
        self,
        x: Any,
        weight: Any | None,
        bias: Any | None,
        mean: Any | None,
        var: Any | None,
        eps: float,
    ) -> tuple[Any, Any, Any]:
        """Normalise (N, C, ...) ``x`` per channel: ``(x - mean) / sqrt(var + eps) * weight +
        bias``.

        With ``mean`` / ``var`` None the biased batch statistics are used (accumulated in
        float64); otherwise the given (running) ones.

        Returns:
            ``(y, mean, var)``, the statistics as float64 (C,) arrays.
        """
        xp = self.xp
        c, eps = check.batch_norm_operands(x, weight, bias, mean, var, eps)
        x3 = self._contiguous(x).reshape(x.shape[0], c, math.prod(x.shape[2:]))
        batch_stats = mean is None
        mean64 = xp.empty(c) if batch_stats else xp.asarray(mean, np.float64).reshape(c)
        var64 = xp.empty(c) if batch_stats else xp.asarray(var, np.float64).reshape(c)
        y = xp.empty(x3.shape, x.dtype)
        self._batch_norm_into(
            x3,
            None if weight is None else self._contiguous(weight),
            None if bias is None else self._contiguous(bias),
            y,
            mean64,
            var64,
            batch_stats,
            eps,
        )
        return y.reshape(x.shape), mean64, var64

    def _batch_norm_into(
        self,
        x: Any,
        weight: Any | None,
        bias: Any | None,
        y: Any,
        mean: Any,
        var: Any,
        batch_stats: bool,
        eps: float,
    ) -> None:
        """(N, C, L) ``x`` into ``y``; with ``batch_stats`` the statistics are computed into
        the float64 ``mean`` and ``var``, otherwise read from them."""
        xp = self.xp
        if x.shape[0] * x.shape[2] == 0:
            return
        if batch_stats:
            mean[...] = x.mean(axis=(0, 2), dtype=np.float64)
            centered = x.astype(np.float64) - mean[:, None]
            var[...] = xp.square(centered).mean(axis=(0, 2))
        scale = 1.0 / xp.sqrt(var + eps)
        if weight is not None:
            scale = scale * weight
        shift = xp.zeros_like(scale) if bias is None else bias.astype(np.float64)
        t = x.dtype
        y[...] = (x - mean.astype(t)[:, None]) * scale.astype(t)[:, None] + shift.astype(t)[:, None]

    @public_kernel
    def batch_norm_backward(
        self,
        grad: Any,
        x: Any,
        mean: Any,
        invstd: Any,
        weight: Any | None,
        batch_stats: bool,
        input_grad: bool = True,
    ) -> tuple[Any | None, Any, Any]:
        """Gradients of :meth:`batch_norm_forward`.

        Returns:
            ``(grad_x or None, grad_weight, grad_bias)``; ``grad_x`` flows through the batch
            statistics when ``batch_stats``.
        """
        xp = self.xp
        c = check.batch_norm_grad_operands(grad, x, mean, invstd, weight)
        g3 = self._contiguous(grad).reshape(x.shape[0], c, math.prod(x.shape[2:]))
        x3 = self._contiguous(x).reshape(g3.shape)
        gx = xp.empty(g3.shape, x.dtype) if input_grad else None
        sum_g, sum_gx = xp.empty(c), xp.empty(c)
        self._batch_norm_backward_into(
            g3,
            x3,
            self._contiguous(mean),
            self._contiguous(invstd),
            None if weight is None else self._contiguous(weight),
            gx,
            sum_g,
            sum_gx,
            bool(batch_stats),
        )
        return (
            None if gx is None else gx.reshape(x.shape),
            sum_gx.astype(x.dtype),
            sum_g.astype(x.dtype),
        )

    def _batch_norm_backward_into(
        self,
        grad: Any,
        x: Any,
        mean: Any,
        invstd: Any,
        weight: Any | None,
        gx: Any | None,
        sum_g: Any,
        sum_gx: Any,
        batch_stats: bool,
    ) -> None:
        """The float64 sums ``sum(g)`` and ``sum(g * x_hat)`` per channel of (N, C, L)
        operands and, unless ``gx`` is None, the input gradient."""
        xp = self.xp
        count = x.shape[0] * x.shape[2]
        if count == 0:
            sum_g[...] = 0
            sum_gx[...] = 0
            if gx is not None:
                gx[...] = 0
            return
        g64 = grad.astype(np.float64)
        sum_g[...] = g64.sum(axis=(0, 2))
        sum_gx[...] = (g64 * (x.astype(np.float64) - mean[:, None])).sum(axis=(0, 2)) * invstd
        if gx is None:
            return
        scale = invstd if weight is None else invstd * weight
        t = x.dtype
        if batch_stats:
            b = -scale * invstd * sum_gx / count
            k = -scale * sum_g / count
            gx[...] = (
                scale.astype(t)[:, None] * grad
                + b.astype(t)[:, None] * (x - mean.astype(t)[:, None])
                + k.astype(t)[:, None]
            )
        else:
            xp.multiply(grad, scale.astype(t)[:, None], out=gx)

    # ====================================================================== fused norm + pool
    @public_kernel
    def batch_norm_max_pool_forward(
        self,
        x: Any,
        weight: Any | None,
        bias: Any | None,
        mean: Any | None,
        var: Any | None,
        eps: float,
        kernel: int,
        ceil_mode: bool,
        slope: float,
    ) -> tuple[Any, Any, Any, Any]:
        """Batch norm of NCHW ``x`` (as :meth:`batch_norm_forward`), then max pooling over
        windows of ``kernel`` rows (kernel and stride ``(kernel, 1)``, no padding, PyTorch's
        tie and NaN rules), then Leaky ReLU with ``slope`` (ReLU, ``max(x, 0)``, for 0).

        Returns:
            ``(y, code, mean, var)``: the (N, C, OH, W) output; a uint8 code per output whose
            bits 0-6 are the window row of its maximum and bit 7 whether the activation passes
            its gradient unscaled (a positive maximum; for ReLU also NaN, as PyTorch's); the
            float64 statistics used.

        Raises:
            ValueError: If ``kernel`` is not in [1, 127] or ``slope`` is negative.
        """
        xp = self.xp
        check.float_array(x, "x", 4, "(N, C, H, W)")
        c, eps = check.batch_norm_operands(x, weight, bias, mean, var, eps)
        k, slope, out_hw = _norm_pool_params(x.shape, kernel, ceil_mode, slope)
        batch_stats = mean is None
        mean64 = xp.full(c, np.nan) if batch_stats else xp.asarray(mean, np.float64).reshape(c)
        var64 = xp.full(c, np.nan) if batch_stats else xp.asarray(var, np.float64).reshape(c)
        y = xp.empty(x.shape[:2] + out_hw, x.dtype)
        code = xp.empty(y.shape, np.uint8)
        if x.size:
            self._batch_norm_max_pool_into(
                self._contiguous(x),
                None if weight is None else self._contiguous(weight),
                None if bias is None else self._contiguous(bias),
                y,
                code,
                mean64,
                var64,
                batch_stats,
                eps,
                k,
                bool(ceil_mode),
                slope,
            )
        return y, code, mean64, var64

    def _batch_norm_max_pool_into(
        self,
        x: Any,
        weight: Any | None,
        bias: Any | None,
        y: Any,
        code: Any,
        mean: Any,
        var: Any,
        batch_stats: bool,
        eps: float,
        kernel: int,
        ceil_mode: bool,
        slope: float,
    ) -> None:
        """Fill ``y`` and ``code`` from non-empty ``x`` (and, with ``batch_stats``, the float64
        ``mean`` / ``var``). The default composes the unfused public kernels, so every backend
        has it; a backend overrides it with one pass."""
        xp = self.xp
        given_mean, given_var = (None, None) if batch_stats else (mean, var)
        normed, m, v = self.batch_norm_forward(x, weight, bias, given_mean, given_var, eps)
        pooled, argmax = self.max_pool2d(normed, (kernel, 1), (kernel, 1), 0, 1, ceil_mode)
        if slope == 0:
            y[...] = xp.maximum(pooled, 0)
            positive = ~(pooled <= 0)  # PyTorch's ReLU passes a NaN's gradient
        else:
            y[...], positive = self.leaky_relu_forward(pooled, slope)
        code[...] = argmax.astype(np.uint8) | (positive.astype(np.uint8) << 7)
        mean[...], var[...] = m, v

    @public_kernel
    def batch_norm_max_pool_backward(
        self,
        grad: Any,
        code: Any,
        x: Any,
        mean: Any,
        invstd: Any,
        weight: Any | None,
        batch_stats: bool,
        kernel: int,
        ceil_mode: bool,
        slope: float,
        input_grad: bool = True,
    ) -> tuple[Any | None, Any, Any]:
        """Gradients of :meth:`batch_norm_max_pool_forward` from the output's ``grad`` and the
        forward's ``code``; ``mean`` / ``invstd`` are the float64 statistics it used.

        Returns:
            ``(grad_x or None, grad_weight, grad_bias)`` as :meth:`batch_norm_backward`.
            Rows in ``code`` outside their window are ignored, never followed.
        """
        xp = self.xp
        check.float_array(x, "x", 4, "(N, C, H, W)")
        c = check.batch_norm_grad_operands(x, x, mean, invstd, weight)
        k, slope, out_hw = _norm_pool_params(x.shape, kernel, ceil_mode, slope)
        shape = x.shape[:2] + out_hw
        check.exact_array(grad, "grad", x.dtype, shape)
        check.exact_array(code, "code", np.uint8, shape)
        gx = xp.empty(x.shape, x.dtype) if input_grad else None
        sum_g, sum_gx = xp.zeros(c), xp.zeros(c)
        if x.size:
            self._batch_norm_max_pool_backward_into(
                self._contiguous(grad),
                self._contiguous(code),
                self._contiguous(x),
                self._contiguous(mean),
                self._contiguous(invstd),
                None if weight is None else self._contiguous(weight),
                gx,
                sum_g,
                sum_gx,
                bool(batch_stats),
                k,
                bool(ceil_mode),
                slope,
            )
        return gx, sum_gx.astype(x.dtype), sum_g.astype(x.dtype)

    def _batch_norm_max_pool_backward_into(
        self,
        grad: Any,
        code: Any,
        x: Any,
        mean: Any,
        invstd: Any,
        weight: Any | None,
        gx: Any | None,
        sum_g: Any,
        sum_gx: Any,
        batch_stats: bool,
        kernel: int,
        ceil_mode: bool,
        slope: float,
    ) -> None:
        """The float64 sums ``sum(g')`` and ``sum(g' * x_hat)`` per channel, ``g'`` the
        gradient at the normalised input, and unless ``gx`` is None the input gradient; ``x``
        non-empty. The default composes the unfused public kernels' backwards."""
        # a row outside its window is ignored by max_pool2d_backward, as by the fused kernels
        argmax = code & 0x7F
        g = self.leaky_relu_backward(grad, code >= 0x80, slope)
        g = self.max_pool2d_backward(g, argmax, x.shape, (kernel, 1), (kernel, 1), 0, 1, ceil_mode)
        g3 = g.reshape(x.shape[0], x.shape[1], -1)
        self._batch_norm_backward_into(
            g3,
            x.reshape(g3.shape),
            mean,
            invstd,
            weight,
            None if gx is None else gx.reshape(g3.shape),
            sum_g,
            sum_gx,
            batch_stats,
        )

    # ====================================================================== optimizer
    @public_kernel
    def adam_step(
        self,
        param: Any,
        grad: Any,
        exp_avg: Any,
        exp_avg_sq: Any,
        lr: float,
        betas: tuple[float, float],
        eps: float,
        weight_decay: float,
        decoupled: bool,
        step: int,
    ) -> None:
        """One Adam / AdamW update of ``param`` and its moments, in place.

        Raises:
            ValueError: If ``grad`` or a moment differs from ``param`` in shape or dtype, or a
                hyper-parameter is out of range.
        """
        lr, beta1, beta2, eps, weight_decay, step = check.adam_operands(
            param, grad, exp_avg, exp_avg_sq, lr, betas, eps, weight_decay, step
        )
        self._adam_into(
            param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, decoupled, step
        )

    def _adam_into(
        self,
        param: Any,
        grad: Any,
        exp_avg: Any,
        exp_avg_sq: Any,
        lr: float,
        beta1: float,
        beta2: float,
        eps: float,
        weight_decay: float,
        decoupled: bool,
        step: int,
    ) -> None:
        """The update with checked hyper-parameters; operands of any layout, updated in
        place (as PyTorch's ``_single_tensor_adam`` computes it)."""
        t = param.dtype.type
        if weight_decay:
            if decoupled:
                param *= t(1 - lr * weight_decay)
            else:
                grad = grad + t(weight_decay) * param
        exp_avg += t(1 - beta1) * (grad - exp_avg)  # exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq *= t(beta2)
        exp_avg_sq += t(1 - beta2) * grad * grad
        denom = self.xp.sqrt(exp_avg_sq)
        denom /= t(math.sqrt(1 - beta2**step))
        denom += t(eps)
        param -= t(lr / (1 - beta1**step)) * (exp_avg / denom)

    def _scaled_add_(self, y: Any, x: Any, alpha: float) -> None:
        """``y += alpha * x`` in place (an SGD update), ``alpha`` rounded to ``y``'s dtype:
        the product rounds, then the sum."""
        if alpha == 1:
            y += x  # the same sum, without a temporary for the product
        else:
            y += y.dtype.type(alpha) * x

    def _add_rows_(self, out: Any, row: Any) -> None:
        """``out += row`` in place for a 2-D ``out`` and a 1-D ``row`` of its width (a bias
        added to every row of a product)."""
        out += row

    def _sum_rows(self, a: Any) -> Any:
        """``a.sum(axis=0)`` of a 2-D ``a`` (a bias gradient), in ``a``'s dtype."""
        return a.sum(axis=0)

    def _sum_of_squares(self, a: Any) -> Any:
        """The sum of ``a * a`` over every element (a gradient norm's square), as a 0-d array
        in ``a``'s dtype or wider."""
        return (a * a).sum()

    # ====================================================================== binary first layer
    @public_kernel
    def binary_conv2d_forward(
        self,
        x: Any,
        packed: bool,
        weight: Any,
        base_values: Any,
        base_index: Any,
        shape: Sequence[int],
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        out: Any = None,
    ) -> Any:
        """Convolution of 0/1 images from start values: ``out[n, o, oh, ow] =
        base_values[o, base_index[oh, ow]]`` plus the sum of ``weight[o, c, i, j]`` over the
        taps whose input pixel is 1 (pixels outside the image are 0).

        The binary first layer's forward (``convlab._ops.binary`` folds the input
        normalisation into ``weight`` and the start values); each backend builds its own
        lookup tables from ``weight``.

        Args:
            x: uint8 images flattened per image: 0/1 pixels (N, C*H*W), or when ``packed``
                each channel plane bit-packed (N, C*ceil(H*W/8)) as ``numpy.packbits`` of its
                row-major pixels.
            weight: (Cout, C, KH, KW) float32 or float64.
            base_values: (Cout, K) start values of ``weight``'s dtype; base_index: int32
                (OH, OW), each output pixel's start value in [0, K).
            shape: The images' (C, H, W).

        Raises:
            ValueError: For bad operands; where ``checks_binary_pixels``, also for a uint8
                pixel other than 0 or 1.
        """
        chw, kernel, stride, padding, dilation, out_hw = check.binary_operands(
            x, packed, shape, kernel_size, stride, padding, dilation, "binary_conv2d_forward"
        )
        geom = BinaryGeometry(chw, kernel, stride, padding, dilation, out_hw, bool(packed))
        cout, dtype = check.binary_weight(
            weight, base_values, base_index, geom.shape, geom.kernel, geom.out_hw
        )
        y = self._output(out, (x.shape[0], cout) + geom.out_hw, dtype)
        if y.size == 0:
            return y
        if geom.shape[0] == 0:  # no input channels: the start values alone
            y[...] = base_values[:, base_index]
            return y
        self._binary_conv2d_forward_into(
            self._contiguous(x),
            self._contiguous(weight),
            self._contiguous(base_values),
            self._contiguous(base_index),
            y,
            geom,
        )
        return y

    def _binary_conv2d_forward_into(
        self, x: Any, weight: Any, base_values: Any, base_index: Any, y: Any, geom: BinaryGeometry
    ) -> None:
        """Write the binary convolution into non-empty ``y`` (N, Cout, OH, OW); C >= 1."""
        raise NotImplementedError

    @public_kernel
    def binary_conv2d_weight_sums(
        self,
        x: Any,
        packed: bool,
        grad_output: Any,
        cls: Any,
        n_classes: int,
        shape: Sequence[int],
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        row_starts: Any | None = None,
    ) -> tuple[Any, Any]:
        """The binary layer's weight gradient before the normalisation fold.

        Args:
            x, packed, shape: The images, as for :meth:`binary_conv2d_forward`.
            grad_output: (N, Cout, OH, OW) float.
            cls: (OW,) integer column classes in [0, n_classes).
            row_starts: Boundaries of the runs of output rows (run r: rows
                ``row_starts[r] .. row_starts[r+1] - 1``); None: every row alone.

        Returns:
            ``taps`` (Cout, C, KH, KW): the gradient summed over the output pixels whose
            input pixel under that tap is 1; ``colsum`` (runs, n_classes, Cout): the gradient
            summed per run of output rows and column class ``cls[ow]``.
        """
        chw, kernel, stride, padding, dilation, out_hw, n_classes, cls, row_starts = (
            check.binary_gradient_operands(
                x,
                packed,
                grad_output,
                cls,
                n_classes,
                row_starts,
                shape,
                kernel_size,
                stride,
                padding,
                dilation,
                "binary_conv2d_weight_sums",
                self.xp,
            )
        )
        cout, dtype = grad_output.shape[1], grad_output.dtype
        taps = self.xp.zeros((cout, chw[0]) + kernel, dtype)
        colsum = self.xp.zeros((len(row_starts) - 1, n_classes, cout), dtype)
        if grad_output.size and chw[0]:
            self._binary_weight_sums_into(
                self._contiguous(x),
                self._contiguous(grad_output),
                cls,
                row_starts,
                taps,
                colsum,
                BinaryGeometry(chw, kernel, stride, padding, dilation, out_hw, bool(packed)),
            )
        return taps, colsum

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
        """Write ``taps`` and ``colsum`` (zeroed) of a non-empty ``grad_output``; C >= 1.
        ``cls`` is contiguous int32 of this backend, ``row_starts`` int32 NumPy."""
        raise NotImplementedError

    # ====================================================================== recurrent cells
    # One time step of an RNN / LSTM / GRU layer after its two matrix products: the caller
    # (convlab._ops.rnn) computes the input projection of every step in one GEMM and the
    # recurrent product of each step with matmul; these kernels do the rest of a step -- the
    # bias adds, gate activations and state update, or their gradients -- in one pass, writing
    # into rows of the caller's sequence buffers (so nothing is allocated per step). Gate
    # blocks follow PyTorch: LSTM (i, f, g, o), GRU (r, z, n), each H columns wide.
    @public_kernel
    def lstm_cell_forward(
        self,
        xg: Any,
        hg: Any,
        b_ih: Any | None,
        b_hh: Any | None,
        c_prev: Any,
        h: Any,
        c: Any,
        gates: Any,
    ) -> None:
        """One LSTM step: ``pre = xg + b_ih + hg + b_hh`` (B, 4H) split into (i, f, g, o);
        ``c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g)``, ``h = sigmoid(o) * tanh(c)``.

        Writes ``h`` and ``c`` (B, H) and the activated gates into ``gates`` (B, 4H), which
        :meth:`lstm_cell_backward` reads. Every array is C-contiguous and of one dtype.
        """
        _rnn_operands(
            ("xg", xg, 4),
            ("hg", hg, 4),
            ("b_ih", b_ih, -4),
            ("b_hh", b_hh, -4),
            ("c_prev", c_prev, 1),
            ("h", h, 1),
            ("c", c, 1),
            ("gates", gates, 4),
        )
        if h.size:
            self._lstm_cell_forward_into(xg, hg, b_ih, b_hh, c_prev, h, c, gates)

    def _lstm_cell_forward_into(
        self,
        xg: Any,
        hg: Any,
        b_ih: Any | None,
        b_hh: Any | None,
        c_prev: Any,
        h: Any,
        c: Any,
        gates: Any,
    ) -> None:
        xp, width = self.xp, h.shape[1]
        pre = _biased(xg + hg, b_ih, b_hh)
        with np.errstate(over="ignore"):  # exp overflow saturates the sigmoid at 0, as wanted
            gates[...] = 1 / (1 + xp.exp(-pre))
        gates[:, 2 * width : 3 * width] = xp.tanh(pre[:, 2 * width : 3 * width])
        i, f, g, o = (gates[:, k * width : (k + 1) * width] for k in range(4))
        c[...] = f * c_prev + i * g
        h[...] = o * xp.tanh(c)

    @public_kernel
    def lstm_cell_backward(
        self, gates: Any, c_prev: Any, c: Any, dh: Any, dh_rec: Any, dc: Any, dgates: Any
    ) -> None:
        """Gradient of one :meth:`lstm_cell_forward` step.

        ``dh`` (the output's gradient) and ``dh_rec`` (the next step's, through its recurrent
        product) add up to the gradient of ``h``; ``dc`` holds that of ``c`` on entry and that
        of ``c_prev`` on return. ``dgates`` (B, 4H) receives the gradient of the
        pre-activations (of ``xg``, ``hg`` and both biases alike).
        """
        _rnn_operands(
            ("gates", gates, 4),
            ("c_prev", c_prev, 1),
            ("c", c, 1),
            ("dh", dh, 1),
            ("dh_rec", dh_rec, 1),
            ("dc", dc, 1),
            ("dgates", dgates, 4),
        )
        if dc.size:
            self._lstm_cell_backward_into(gates, c_prev, c, dh, dh_rec, dc, dgates)

    def _lstm_cell_backward_into(
        self, gates: Any, c_prev: Any, c: Any, dh: Any, dh_rec: Any, dc: Any, dgates: Any
    ) -> None:
        xp, width = self.xp, c.shape[1]
        i, f, g, o = (gates[:, k * width : (k + 1) * width] for k in range(4))
        dh_total = dh + dh_rec
        tc = xp.tanh(c)
        dc_total = dc + dh_total * o * (1 - tc * tc)
        dgates[:, :width] = dc_total * g * i * (1 - i)
        dgates[:, width : 2 * width] = dc_total * c_prev * f * (1 - f)
        dgates[:, 2 * width : 3 * width] = dc_total * i * (1 - g * g)
        dgates[:, 3 * width :] = dh_total * tc * o * (1 - o)
        dc[...] = dc_total * f

    @public_kernel
    def gru_cell_forward(
        self,
        xg: Any,
        hg: Any,
        b_ih: Any | None,
        b_hh: Any | None,
        h_prev: Any,
        h: Any,
        saved: Any,
    ) -> None:
        """One GRU step as PyTorch's: with ``a = xg + b_ih`` and ``b = hg + b_hh`` (B, 3H)
        split into (r, z, n) blocks, ``r = sigmoid(a_r + b_r)``, ``z = sigmoid(a_z + b_z)``,
        ``n = tanh(a_n + r * b_n)``, ``h = (1 - z) * n + z * h_prev``.

        Writes ``h`` (B, H) and ``saved`` (B, 4H) = (r, z, n, b_n) for :meth:`gru_cell_backward`.
        """
        _rnn_operands(
            ("xg", xg, 3),
            ("hg", hg, 3),
            ("b_ih", b_ih, -3),
            ("b_hh", b_hh, -3),
            ("h_prev", h_prev, 1),
            ("h", h, 1),
            ("saved", saved, 4),
        )
        if h.size:
            self._gru_cell_forward_into(xg, hg, b_ih, b_hh, h_prev, h, saved)

    def _gru_cell_forward_into(
        self,
        xg: Any,
        hg: Any,
        b_ih: Any | None,
        b_hh: Any | None,
        h_prev: Any,
        h: Any,
        saved: Any,
    ) -> None:
        xp, width = self.xp, h.shape[1]
        a, b = _biased(xg, b_ih, None), _biased(hg, b_hh, None)
        pre = a[:, : 2 * width] + b[:, : 2 * width]
        with np.errstate(over="ignore"):  # exp overflow saturates the sigmoid at 0, as wanted
            saved[:, : 2 * width] = 1 / (1 + xp.exp(-pre))
        r, z = saved[:, :width], saved[:, width : 2 * width]
        saved[:, 3 * width :] = b[:, 2 * width :]
        saved[:, 2 * width : 3 * width] = xp.tanh(a[:, 2 * width :] + r * b[:, 2 * width :])
        n = saved[:, 2 * width : 3 * width]
        h[...] = (1 - z) * n + z * h_prev

    @public_kernel
    def gru_cell_backward(
        self, saved: Any, h_prev: Any, dh: Any, dh_rec: Any, dcarry: Any, dxg: Any, dhg: Any
    ) -> None:
        """Gradient of one :meth:`gru_cell_forward` step.

        ``dh + dh_rec + dcarry`` is the gradient of ``h`` (output, the next step's recurrent
        product, and the next step's direct ``z * h_prev`` path); on return ``dcarry`` holds
        this step's direct part ``z * dh_total`` of the gradient of ``h_prev``. ``dxg`` and
        ``dhg`` (B, 3H) receive the gradients of ``xg`` (and ``b_ih``) and of ``hg`` (and
        ``b_hh``); they differ in the n block, where ``hg`` is scaled by ``r``.
        """
        _rnn_operands(
            ("saved", saved, 4),
            ("h_prev", h_prev, 1),
            ("dh", dh, 1),
            ("dh_rec", dh_rec, 1),
            ("dcarry", dcarry, 1),
            ("dxg", dxg, 3),
            ("dhg", dhg, 3),
        )
        if dcarry.size:
            self._gru_cell_backward_into(saved, h_prev, dh, dh_rec, dcarry, dxg, dhg)

    def _gru_cell_backward_into(
        self, saved: Any, h_prev: Any, dh: Any, dh_rec: Any, dcarry: Any, dxg: Any, dhg: Any
    ) -> None:
        width = h_prev.shape[1]
        r, z, n, bn = (saved[:, k * width : (k + 1) * width] for k in range(4))
        dh_total = dh + dh_rec + dcarry
        dn = dh_total * (1 - z) * (1 - n * n)
        dz = dh_total * (h_prev - n) * z * (1 - z)
        dr = dn * bn * r * (1 - r)
        for target in (dxg, dhg):
            target[:, :width] = dr
            target[:, width : 2 * width] = dz
        dxg[:, 2 * width :] = dn
        dhg[:, 2 * width :] = dn * r
        dcarry[...] = dh_total * z

    @public_kernel
    def rnn_cell_forward(
        self, xg: Any, hg: Any, b_ih: Any | None, b_hh: Any | None, h: Any, relu: bool
    ) -> None:
        """One Elman RNN step: ``h = tanh(xg + b_ih + hg + b_hh)`` (ReLU with ``relu``),
        written into ``h`` (B, H)."""
        _rnn_operands(
            ("xg", xg, 1), ("hg", hg, 1), ("b_ih", b_ih, -1), ("b_hh", b_hh, -1), ("h", h, 1)
        )
        if h.size:
            self._rnn_cell_forward_into(xg, hg, b_ih, b_hh, h, bool(relu))

    def _rnn_cell_forward_into(
        self, xg: Any, hg: Any, b_ih: Any | None, b_hh: Any | None, h: Any, relu: bool
    ) -> None:
        pre = _biased(xg + hg, b_ih, b_hh)
        h[...] = self.xp.maximum(pre, 0) if relu else self.xp.tanh(pre)

    @public_kernel
    def rnn_cell_backward(self, h: Any, dh: Any, dh_rec: Any, dpre: Any, relu: bool) -> None:
        """Gradient of one :meth:`rnn_cell_forward` step: ``dpre = (dh + dh_rec) * act'``,
        the derivative taken from the step's output ``h``."""
        _rnn_operands(("h", h, 1), ("dh", dh, 1), ("dh_rec", dh_rec, 1), ("dpre", dpre, 1))
        if h.size:
            self._rnn_cell_backward_into(h, dh, dh_rec, dpre, bool(relu))

    def _rnn_cell_backward_into(self, h: Any, dh: Any, dh_rec: Any, dpre: Any, relu: bool) -> None:
        slope = (h > 0).astype(h.dtype) if relu else 1 - h * h
        dpre[...] = (dh + dh_rec) * slope

    # -- recurrent time loops (hooks of convlab._ops.rnn; operands checked there) ------------
    def _rnn_sequence_forward_into(
        self,
        mode: str,
        xg: Any,
        w_hh: Any,
        b_ih: Any | None,
        b_hh: Any | None,
        h0: Any,
        c0: Any,
        out: Any,
        cells: Any,
        saved: Any,
        reverse: bool,
    ) -> None:
        """The forward time loop of one layer and direction: ``xg`` (T, B, G*H) the input
        projection of every step; step t writes ``out[t]`` (and the LSTM's ``cells[t]``, the
        saved gates ``saved[t]`` of the LSTM and GRU). The default runs the steps here, each a
        ``matmul`` and a cell hook; a backend may run the whole loop in one kernel call."""
        steps = xg.shape[0]
        hg = self.xp.empty(xg.shape[1:], xg.dtype)
        h_prev, c_prev = h0, c0
        for k in range(steps):
            t = steps - 1 - k if reverse else k
            self.matmul(h_prev, w_hh, out=hg, trans_b=True)
            if mode == "lstm":
                self._lstm_cell_forward_into(
                    xg[t], hg, b_ih, b_hh, c_prev, out[t], cells[t], saved[t]
                )
                c_prev = cells[t]
            elif mode == "gru":
                self._gru_cell_forward_into(xg[t], hg, b_ih, b_hh, h_prev, out[t], saved[t])
            else:
                self._rnn_cell_forward_into(xg[t], hg, b_ih, b_hh, out[t], mode == "rnn_relu")
            h_prev = out[t]

    def _rnn_sequence_backward_into(
        self,
        mode: str,
        grad: Any,
        saved: Any,
        cells: Any,
        out: Any,
        h0: Any,
        c0: Any,
        w_hh: Any,
        dxg: Any,
        dhg: Any,
        dh_rec: Any,
        carry: Any,
        reverse: bool,
    ) -> None:
        """Backpropagation through time of one layer and direction. On entry ``dh_rec`` holds
        the final h's gradient and ``carry`` the final c's (LSTM; zeros otherwise); on return
        ``dxg`` / ``dhg`` (T, B, G*H; one array but for the GRU) hold the gradients of every
        step's input projection and recurrent product, ``carry`` that of c0 (LSTM) or h0's
        direct part (GRU)."""
        steps = dxg.shape[0]
        for k in range(steps):
            t = k if reverse else steps - 1 - k
            before = t + 1 if reverse else t - 1  # the previous step of the recurrence
            if k:
                self.matmul(dhg[t - 1 if reverse else t + 1], w_hh, out=dh_rec)
            if mode == "lstm":
                c_prev = c0 if k == steps - 1 else cells[before]
                self._lstm_cell_backward_into(
                    saved[t], c_prev, cells[t], grad[t], dh_rec, carry, dxg[t]
                )
            elif mode == "gru":
                h_prev = h0 if k == steps - 1 else out[before]
                self._gru_cell_backward_into(
                    saved[t], h_prev, grad[t], dh_rec, carry, dxg[t], dhg[t]
                )
            else:
                self._rnn_cell_backward_into(out[t], grad[t], dh_rec, dxg[t], mode == "rnn_relu")


def _biased(pre: Any, b_ih: Any | None, b_hh: Any | None) -> Any:
    """``pre`` plus whichever biases are given (broadcast over the rows)."""
    if b_ih is not None:
        pre = pre + b_ih
    if b_hh is not None:
        pre = pre + b_hh
    return pre


def _rnn_operands(*arrays: tuple[str, Any, int]) -> None:
    """Check a recurrent cell's operands: ``(name, array, width)`` with ``width`` the number of
    H-wide blocks of its columns (negative: an optional 1-D bias of that many blocks), all
    C-contiguous, one float dtype and one batch size. The first array fixes B and ``gates * H``.
    """
    first = check.float_array(arrays[0][1], arrays[0][0], 2, "(B, columns)")
    rows, width = first.shape[0], first.shape[1] // max(abs(arrays[0][2]), 1)
    for name, array, blocks in arrays:
        if array is None and blocks < 0:
            continue
        check.float_array(array, name)
        if array.dtype != first.dtype:
            raise TypeError(
                f"{name}: expected dtype {first.dtype} (the dtype of "
                f"{arrays[0][0]}), got {array.dtype}"
            )
        want = (-blocks * width,) if blocks < 0 else (rows, blocks * width)
        if tuple(array.shape) != want:
            raise ValueError(f"{name}: expected shape {want}, got {tuple(array.shape)}")
        if not array.flags.c_contiguous:
            raise ValueError(f"{name}: expected a C-contiguous array")
