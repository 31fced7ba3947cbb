"""Argument checks shared by every backend.

Each check raises ``TypeError`` / ``ValueError`` with a message that names the argument, what was
expected and what came, before any compiled code sees the data.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# Geometry reaches the kernels as C ints.
_INT_LIMIT = 2**31 - 1


def pair(value: Any, name: str) -> tuple[int, int]:
    """Normalise an int or a pair of ints (PyTorch's ``_pair``)."""
    # plain ints first: the abstract-class checks below cost microseconds, and every layer of
    # every step passes through here several times
    kind = type(value)
    if kind is int:
        result = (value, value)
    elif kind is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int:
        result = value
    elif isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    elif isinstance(value, numbers.Integral):
        result = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(
            isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in value
        )
    ):
        result = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if min(result) < -_INT_LIMIT or max(result) > _INT_LIMIT:
        raise ValueError(f"{name}: expected values below 2**31, got {value!r}")
    return result


def integer(value: Any, name: str, minimum: int = 0, maximum: int | None = _INT_LIMIT) -> int:
    """An int (not a bool) from ``minimum`` to ``maximum`` (default: what a C int holds, as
    sizes and counts reach the kernels as C ints; None: no upper bound)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    # typeshed's numbers.Integral declares only < and <=: mypy refuses ``Integral > int``
    if maximum is not None and value > maximum:  # type: ignore[operator]
        raise ValueError(f"{name}: expected an int <= {maximum}, got {value}")
    return int(value)


def positive(value: Any, name: str, maximum: int | None = _INT_LIMIT) -> int:
    """An int >= 1 (and <= ``maximum``)."""
    return integer(value, name, 1, maximum)


def nonnegative(value: Any, name: str, maximum: int | None = _INT_LIMIT) -> int:
    """An int >= 0 (and <= ``maximum``)."""
    return integer(value, name, 0, maximum)


def positive_pair(value: Any, name: str) -> tuple[int, int]:
    """A pair of ints that are all >= 1."""
    result = pair(value, name)
    if min(result) < 1:
        raise ValueError(f"{name}: expected values >= 1, got {value!r}")
    return result


def nonnegative_pair(value: Any, name: str) -> tuple[int, int]:
    """A pair of ints that are all >= 0."""
    result = pair(value, name)
    if min(result) < 0:
        raise ValueError(f"{name}: expected values >= 0, got {value!r}")
    return result


def shape_tuple(value: Any, name: str, ndim: int) -> tuple[int, ...]:
    """A shape of ``ndim`` non-negative ints."""
    if type(value) is tuple and len(value) == ndim and all(type(v) is int for v in value):
        result, ok = value, True  # the common case, without the abstract-class checks
    else:
        try:
            result = tuple(int(v) for v in value)
            ok = len(result) == ndim and all(
                isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
                for v in value
            )
        except TypeError:
            ok = False
    if not ok:
        raise TypeError(f"{name}: expected a tuple of {ndim} ints, got {value!r}")
    if min(result, default=0) < 0:
        raise ValueError(f"{name}: expected non-negative sizes, got {value!r}")
    return result


def float_array(array: Any, name: str, ndim: int | None = None, layout: str = "") -> Any:
    """Check an array's type, float dtype and rank; returns it unchanged."""
    if not hasattr(array, "dtype") or not hasattr(array, "shape"):
        raise TypeError(f"{name}: expected an array, got {type(array).__name__}")
    if array.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {array.dtype}")
    if ndim is not None and array.ndim != ndim:
        what = f"a {ndim}-D {layout} array".replace("  ", " ")
        raise ValueError(f"{name}: expected {what.strip()}, got shape {tuple(array.shape)}")
    return array


def same_dtype(**arrays: Any) -> np.dtype:
    """All given arrays share one dtype; returns it."""
    items = [(name, a) for name, a in arrays.items() if a is not None]
    dtype = items[0][1].dtype
    for name, a in items[1:]:
        if a.dtype != dtype:
            first = items[0][0]
            raise TypeError(f"{name}: expected dtype {dtype} (the dtype of {first}), got {a.dtype}")
    return dtype


def conv_output_size(
    size: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    what: str = "conv2d",
) -> tuple[int, int]:
    """Output (OH, OW) of a convolution; a kernel larger than the padded input is an error,
    and so is an empty kernel (PyTorch's rule: its output would be all bias)."""
    if min(kernel) < 1:
        raise ValueError(
            f"{what}: kernel_size: expected sizes >= 1, got {tuple(kernel)} (a "
            f"weight of shape (out_channels, in_channels, KH, KW) with KH, KW "
            f">= 1)"
        )
    _index_range(size, padding, what)
    out = []
    for axis in range(2):
        extent = dilation[axis] * (kernel[axis] - 1) + 1
        padded = size[axis] + 2 * padding[axis]
        if extent > padded:
            raise ValueError(
                f"{what}: kernel_size {kernel} with dilation {dilation} spans "
                f"({dilation[0] * (kernel[0] - 1) + 1}, {dilation[1] * (kernel[1] - 1) + 1}) "
                f"pixels, larger than the padded input "
                f"({size[0] + 2 * padding[0]}, {size[1] + 2 * padding[1]})"
            )
        out.append((padded - extent) // stride[axis] + 1)
    return out[0], out[1]


def _index_range(size: tuple, padding: tuple, what: str) -> None:
    """The padded input's rows and columns must be indexable with 32-bit ints, as the
    kernels' geometry is."""
    for axis in range(2):
        if size[axis] + 2 * padding[axis] > _INT_LIMIT:
            raise ValueError(
                f"{what}: input size {tuple(size)} with padding {tuple(padding)} "
                f"spans more than 2**31 - 1 rows or columns"
            )


def pool_params(
    kernel_size: Any, stride: Any, padding: Any, dilation: Any = 1, what: str = "pool2d"
) -> tuple[tuple[int, int], ...]:
    """Normalise pooling arguments with PyTorch's rules (stride defaults to the kernel)."""
    kernel = positive_pair(kernel_size, "kernel_size")
    strides = (
        kernel
        if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
        else positive_pair(stride, "stride")
    )
    pad = nonnegative_pair(padding, "padding")
    dil = positive_pair(dilation, "dilation")
    for axis in range(2):
        extent = (kernel[axis] - 1) * dil[axis] + 1
        if pad[axis] > extent // 2:
            raise ValueError(
                f"{what}: padding should be at most half of the effective kernel "
                f"size, got padding={pad}, kernel_size={kernel}, dilation={dil}"
            )
    return kernel, strides, pad, dil


def pool_output_size(
    size: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    ceil_mode: bool,
    what: str = "pool2d",
) -> tuple[int, int]:
    """Output (OH, OW) of a pooling layer, PyTorch's ``pooling_output_shape``."""
    _index_range(size, padding, what)
    if kernel[0] * kernel[1] > _INT_LIMIT:
        raise ValueError(
            f"{what}: kernel_size {tuple(kernel)} makes windows of "
            f"{kernel[0] * kernel[1]} elements; at most 2**31 - 1 are supported "
            f"(the kernels index a window with 32-bit ints)"
        )
    out = []
    for axis in range(2):
        numerator = (
            size[axis]
            + 2 * padding[axis]
            - dilation[axis] * (kernel[axis] - 1)
            - 1
            + (stride[axis] - 1 if ceil_mode else 0)
        )
        length = numerator // stride[axis] + 1
        # the last window must start inside the input or its left padding
        if ceil_mode and (length - 1) * stride[axis] >= size[axis] + padding[axis]:
            length -= 1
        out.append(length)
    if min(out) < 1:
        raise ValueError(
            f"{what}: input of size {tuple(size)} is too small for kernel_size "
            f"{kernel}, stride {stride}, padding {padding}, dilation {dilation}: "
            f"the output would be {tuple(out)}"
        )
    return out[0], out[1]


# ---------------------------------------------------------------- kernel operands
# The checks every backend runs before its kernels: one copy, so CPU and GPU reject the same
# input with the same message.


def matmul_operands(a: Any, b: Any, trans_a: bool, trans_b: bool) -> tuple:
    """Check ``op(a) @ op(b)`` (``numpy.matmul`` rules, 1-D operands promoted).

    Returns:
        ``(a2, b2, batch, (m, k, n), shape, dtype)``: the operands as (..., m, k) and
        (..., k, n) views, the broadcast batch shape and the result's shape.
    """
    float_array(a, "a")
    float_array(b, "b")
    dtype = same_dtype(a=a, b=b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: a and b must have at least one dimension, got shapes {a.shape} and {b.shape}"
        )
    for flag, arr, name in ((trans_a, a, "trans_a"), (trans_b, b, "trans_b")):
        if flag and arr.ndim < 2:
            raise ValueError(
                f"{name}: needs an array with at least 2 dimensions, got shape {arr.shape}"
            )
    a2 = a[None, :] if a.ndim == 1 else (a.swapaxes(-1, -2) if trans_a else a)
    b2 = b[:, None] if b.ndim == 1 else (b.swapaxes(-1, -2) if trans_b else b)
    m, k = a2.shape[-2:]
    k2, n = b2.shape[-2:]
    if k != k2:
        raise ValueError(
            f"matmul: inner dimensions differ: op(a) has shape {a2.shape} and "
            f"op(b) has shape {b2.shape} ({k} != {k2})"
        )
    try:
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(
            f"matmul: batch dimensions {a2.shape[:-2]} and {b2.shape[:-2]} do not broadcast"
        ) from None
    shape = batch + (m, n)
    if a.ndim == 1:
        shape = shape[:-2] + shape[-1:]
    if b.ndim == 1:
        shape = shape[:-1]
    return a2, b2, batch, (m, k, n), shape, dtype


def conv_geometry(
    x_shape: tuple, kernel: tuple, stride: Any, padding: Any, dilation: Any, what: str
) -> tuple:
    """``(stride, padding, dilation, (OH, OW))`` of a convolution of an NCHW ``x_shape``."""
    stride = positive_pair(stride, "stride")
    padding = nonnegative_pair(padding, "padding")
    dilation = positive_pair(dilation, "dilation")
    out_hw = conv_output_size(tuple(x_shape[2:]), kernel, stride, padding, dilation, what)
    return stride, padding, dilation, out_hw


def grad_output_shape(grad_output: Any, n: int, channels: int, out_hw: tuple, what: str) -> None:
    """``grad_output`` must have the shape (N, channels, OH, OW) of the forward output."""
    expected = (n, channels) + tuple(out_hw)
    if tuple(grad_output.shape) != expected:
        raise ValueError(f"{what}: grad_output: expected shape {expected}, got {grad_output.shape}")


def pool_geometry(
    shape: tuple,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: bool,
    what: str,
) -> tuple:
    """``(kernel, stride, padding, dilation, (OH, OW))`` of a pooling of an NCHW ``shape``."""
    kernel, stride, padding, dilation = pool_params(kernel_size, stride, padding, dilation, what)
    out_hw = pool_output_size(
        tuple(shape[2:]), kernel, stride, padding, dilation, bool(ceil_mode), what
    )
    return kernel, stride, padding, dilation, out_hw


def avg_divisor(divisor_override: Any) -> int:
    """``avg_pool2d``'s ``divisor_override`` as the kernels take it (0: none)."""
    if divisor_override is None:
        return 0
    if isinstance(divisor_override, bool) or not isinstance(
        divisor_override, (numbers.Integral, np.integer)
    ):
        raise TypeError(f"divisor_override: expected an int or None, got {divisor_override!r}")
    if divisor_override == 0 or abs(divisor_override) > _INT_LIMIT:
        raise ValueError(
            f"divisor_override: expected a non-zero int below 2**31 in size, got {divisor_override}"
        )
    return int(divisor_override)


def col2im_operands(
    cols: Any, output_size: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any
) -> tuple:
    """Check ``col2im``'s columns against the output they fold into.

    Returns:
        ``((N, C, H, W), kernel, stride, padding, dilation, (OH, OW))``.
    """
    float_array(cols, "cols", 3, "(N, C*KH*KW, L)")
    size = positive_pair(output_size, "output_size")
    kernel = positive_pair(kernel_size, "kernel_size")
    n, rows, length = cols.shape
    if rows % (kernel[0] * kernel[1]):
        raise ValueError(
            f"cols: expected dimension 1 to be a multiple of KH*KW = "
            f"{kernel[0] * kernel[1]}, got shape {cols.shape}"
        )
    shape = (n, rows // (kernel[0] * kernel[1])) + size
    stride, padding, dilation, out_hw = conv_geometry(
        shape, kernel, stride, padding, dilation, "col2im"
    )
    if length != out_hw[0] * out_hw[1]:
        raise ValueError(
            f"cols: expected {out_hw[0] * out_hw[1]} columns (blocks of an {size} "
            f"output), got shape {cols.shape}"
        )
    return shape, kernel, stride, padding, dilation, out_hw


def binary_operands(
    x: Any,
    packed: bool,
    shape: Any,
    kernel: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    what: str,
) -> tuple:
    """Check the 0/1 images of a binary convolution.

    Returns:
        ``((C, H, W), kernel, stride, padding, dilation, (OH, OW))``.
    """
    c, h, w = shape_tuple(shape, "shape", 3)
    kernel = positive_pair(kernel, "kernel_size")
    stride = positive_pair(stride, "stride")
    padding = nonnegative_pair(padding, "padding")
    dilation = positive_pair(dilation, "dilation")
    out_hw = conv_output_size((h, w), kernel, stride, padding, dilation, what)
    per_image = c * (-(-h * w // 8) if packed else h * w)
    if getattr(x, "dtype", None) != np.uint8 or x.ndim != 2 or x.shape[1] != per_image:
        raise ValueError(
            f"{what}: x: expected uint8 (N, {per_image}) images, got "
            f"{getattr(x, 'dtype', type(x).__name__)} "
            f"{getattr(x, 'shape', '')}"
        )
    return (c, h, w), kernel, stride, padding, dilation, out_hw


def binary_weight(
    weight: Any, base_values: Any, base_index: Any, chw: Sequence[int], kernel: tuple, out_hw: tuple
) -> tuple:
    """Check a binary convolution's weights (Cout, C, KH, KW) and its start values: float
    ``base_values`` (Cout, K >= 1) of the weight's dtype, and ``base_index``, int32 (OH, OW)
    values in [0, K).

    Returns:
        ``(Cout, dtype)``.
    """
    float_array(weight, "weight", 4, "(Cout, C, KH, KW)")
    cout, dtype = weight.shape[0], weight.dtype
    exact_array(weight, "weight", dtype, (cout, chw[0]) + tuple(kernel))
    float_array(base_values, "base_values", 2, "(Cout, K)")
    if base_values.shape[0] != cout or base_values.shape[1] < 1 or base_values.dtype != dtype:
        raise ValueError(
            f"base_values: expected {dtype} ({cout}, K >= 1), got "
            f"{base_values.dtype} {base_values.shape}"
        )
    run_indices(base_index, "base_index", tuple(out_hw), base_values.shape[1])
    return cout, dtype


def binary_histogram_operands(
    grad_output: Any, n: int, out_hw: tuple, n_classes: Any, cls: Any, xp: Any
) -> tuple:
    """Check a binary convolution's output gradient and column classes (an integer array of
    ``OW`` class ids below ``n_classes``, of the backend's array module ``xp``).

    Returns:
        ``(n_classes, cls)``, the classes as contiguous int32.
    """
    float_array(grad_output, "grad_output", 4, "(N, Cout, OH, OW)")
    if grad_output.shape[0] != n or tuple(grad_output.shape[2:]) != tuple(out_hw):
        raise ValueError(
            f"grad_output: expected shape ({n}, Cout, {out_hw[0]}, "
            f"{out_hw[1]}), got {grad_output.shape}"
        )
    n_classes = positive(n_classes, "n_classes")
    if (
        getattr(getattr(cls, "dtype", None), "kind", "") not in ("i", "u")
        or tuple(cls.shape) != (out_hw[1],)
        or (cls.size and (int(cls.min()) < 0 or int(cls.max()) >= n_classes))
    ):
        raise ValueError(
            f"cls: expected an integer array of {out_hw[1]} class ids in [0, "
            f"{n_classes}), got {_describe(cls)}"
        )
    return n_classes, xp.ascontiguousarray(xp.asarray(cls), dtype=np.int32)


def binary_gradient_operands(
    x: Any,
    packed: bool,
    grad_output: Any,
    cls: Any,
    n_classes: Any,
    row_starts: Any,
    shape: Any,
    kernel: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    what: str,
    xp: Any,
) -> tuple:
    """Check the operands of a binary convolution's weight-gradient sums: the images, the
    output gradient, the column classes and the runs of rows.

    Returns:
        ``((C, H, W), kernel, stride, padding, dilation, (OH, OW), n_classes, cls,
        row_starts)``, ``cls`` contiguous int32 of ``xp``, ``row_starts`` int32 (NumPy).
    """
    geometry = binary_operands(x, packed, shape, kernel, stride, padding, dilation, what)
    out_hw = geometry[-1]
    n_classes, cls = binary_histogram_operands(grad_output, x.shape[0], out_hw, n_classes, cls, xp)
    return geometry + (n_classes, cls, binary_row_starts(row_starts, out_hw[0]))


def binary_row_starts(row_starts: Any, oh: int) -> np.ndarray:
    """Check the runs of output rows a binary weight gradient sums over (None: one run per
    row); returns them as int32 boundaries ``0 = s[0] < s[1] < ... < s[-1] = OH``."""
    if row_starts is None:
        return np.arange(oh + 1, dtype=np.int32)
    starts = np.asarray(row_starts)
    bounds = starts.tolist() if starts.ndim == 1 and starts.dtype.kind in "iu" else []
    # plain Python on the few boundaries: a third of the time of np.diff and np.any
    if (
        len(bounds) < 2
        or bounds[0] != 0
        or bounds[-1] != oh
        or any(b <= a for a, b in zip(bounds, bounds[1:]))
    ):
        raise ValueError(
            f"row_starts: expected increasing integer row boundaries from 0 to "
            f"{oh} (OH), got {starts.tolist() if starts.size <= 16 else starts.shape}"
        )
    return np.ascontiguousarray(starts, dtype=np.int32)


def _conv_channels(x_shape: tuple, weight_shape: tuple, what: str) -> None:
    if x_shape[1] != weight_shape[1]:
        raise ValueError(
            f"{what}: x has {x_shape[1]} channels (shape {tuple(x_shape)}) "
            f"but the weight expects {weight_shape[1]} (shape {weight_shape})"
        )


def conv_forward_operands(
    x: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any
) -> tuple:
    """Check ``conv2d_forward``'s operands.

    Returns:
        ``(dtype, stride, padding, dilation, (OH, OW))``.
    """
    float_array(x, "x", 4, "(N, C, H, W)")
    float_array(weight, "weight", 4, "(out_channels, in_channels, KH, KW)")
    if bias is not None:
        float_array(bias, "bias", 1)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias: expected shape ({weight.shape[0]},), got {bias.shape}")
    dtype = same_dtype(x=x, weight=weight, bias=bias)
    _conv_channels(x.shape, tuple(weight.shape), "conv2d")
    return (dtype,) + conv_geometry(
        x.shape, tuple(weight.shape[2:]), stride, padding, dilation, "conv2d"
    )


def conv_data_grad_operands(
    grad_output: Any, weight: Any, input_shape: Any, stride: Any, padding: Any, dilation: Any
) -> tuple:
    """Check ``conv2d_backward_data``'s operands.

    Returns:
        ``(dtype, input_shape, stride, padding, dilation, (OH, OW))``.
    """
    what = "conv2d_backward_data"
    float_array(grad_output, "grad_output", 4, "(N, out_channels, OH, OW)")
    float_array(weight, "weight", 4, "(out_channels, in_channels, KH, KW)")
    dtype = same_dtype(grad_output=grad_output, weight=weight)
    shape = shape_tuple(input_shape, "input_shape", 4)
    geometry = conv_geometry(shape, tuple(weight.shape[2:]), stride, padding, dilation, what)
    grad_output_shape(grad_output, shape[0], weight.shape[0], geometry[3], what)
    if shape[1] != weight.shape[1]:
        raise ValueError(
            f"{what}: input_shape {shape} has {shape[1]} channels but the weight "
            f"expects {weight.shape[1]} (shape {tuple(weight.shape)})"
        )
    return (dtype, shape) + geometry


def data_grad_algorithm(algorithm: Any, stride: tuple) -> str:
    """Check ``conv2d_backward_data``'s ``algorithm`` (``"auto"``, ``"implicit"``, ``"gemm"``)."""
    if algorithm not in ("auto", "implicit", "gemm"):
        raise ValueError(f"algorithm: expected 'auto', 'implicit' or 'gemm', got {algorithm!r}")
    if algorithm == "implicit" and tuple(stride) != (1, 1):
        raise ValueError(f"algorithm: 'implicit' needs stride (1, 1), got {tuple(stride)}")
    return algorithm


def out_array(
    out: Any, shape: tuple[int, ...], dtype: np.dtype, array_type: type[Any], name: str = "out"
) -> Any:
    """Check an ``out=`` array: the backend's array type, the result's shape and dtype, and
    writeable C-contiguous memory (the kernels write it flat; a copy would lose the result)."""
    if not isinstance(out, array_type):
        raise TypeError(
            f"{name}: expected a {array_type.__module__.split('.')[0]}."
            f"{array_type.__name__}, got {type(out).__name__}"
        )
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(out.shape)}")
    if out.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {out.dtype}")
    if not out.flags.c_contiguous or not getattr(out.flags, "writeable", True):
        raise ValueError(f"{name}: expected a writeable C-contiguous array")
    return out


def conv_weight_grad_operands(
    grad_output: Any, x: Any, weight_shape: Any, stride: Any, padding: Any, dilation: Any
) -> tuple:
    """Check ``conv2d_backward_weight``'s operands.

    Returns:
        ``(dtype, weight_shape, stride, padding, dilation, (OH, OW))``.
    """
    what = "conv2d_backward_weight"
    float_array(grad_output, "grad_output", 4, "(N, out_channels, OH, OW)")
    float_array(x, "x", 4, "(N, C, H, W)")
    dtype = same_dtype(grad_output=grad_output, x=x)
    wshape = shape_tuple(weight_shape, "weight_shape", 4)
    _conv_channels(x.shape, wshape, what)
    geometry = conv_geometry(x.shape, wshape[2:], stride, padding, dilation, what)
    grad_output_shape(grad_output, x.shape[0], wshape[0], geometry[3], what)
    return (dtype, wshape) + geometry


# Max pooling stores each argmax as its offset inside the window: one byte while it fits.
_BYTE_WINDOW = 256


def argmax_dtype(kernel: tuple) -> np.dtype:
    """The dtype of ``max_pool2d``'s argmax for a ``kernel`` window."""
    return np.dtype(np.uint8 if kernel[0] * kernel[1] <= _BYTE_WINDOW else np.int32)


def max_pool_grad_operands(
    grad_output: Any, argmax: Any, shape: tuple, kernel: tuple, out_hw: tuple
) -> None:
    """``max_pool2d_backward``'s gradient and argmax must match the forward output."""
    grad_output_shape(grad_output, shape[0], shape[1], out_hw, "max_pool2d_backward")
    dtype = argmax_dtype(kernel)
    if getattr(argmax, "dtype", None) != dtype:
        got = argmax.dtype if hasattr(argmax, "dtype") else type(argmax).__name__
        raise TypeError(f"argmax: expected a {dtype} array (as returned by max_pool2d), got {got}")
    expected = tuple(shape[:2]) + tuple(out_hw)
    if tuple(argmax.shape) != expected:
        raise ValueError(f"argmax: expected shape {expected}, got {argmax.shape}")


# ---------------------------------------------------------------- fused-kernel operands


def _describe(array: Any) -> str:
    """``dtype shape`` of an array, or the type's name of anything else (for messages)."""
    if hasattr(array, "dtype") and hasattr(array, "shape"):
        return f"{array.dtype} {tuple(array.shape)}"
    return type(array).__name__


def exact_array(array: Any, name: str, dtype: Any, shape: tuple) -> Any:
    """An array of exactly ``dtype`` and ``shape`` (what a kernel reads without looking at its
    size); returns it unchanged."""
    if (
        not hasattr(array, "dtype")
        or not hasattr(array, "shape")
        or array.dtype != np.dtype(dtype)
        or tuple(array.shape) != tuple(shape)
    ):
        raise ValueError(
            f"{name}: expected a {np.dtype(dtype)} array of shape {tuple(shape)}, "
            f"got {_describe(array)}"
        )
    return array


def finite_number(
    value: Any,
    name: str,
    minimum: float | None = None,
    nonzero: bool = False,
    below: float | None = None,
) -> float:
    """A finite real number (not a bool), at least ``minimum``, below ``below`` and non-zero
    if asked."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    result = float(value)
    if (
        not math.isfinite(result)
        or (minimum is not None and result < minimum)
        or (below is not None and result >= below)
        or (nonzero and result == 0)
    ):
        bound = ("" if minimum is None else f" >= {minimum:g}") + (
            "" if below is None else f" and < {below:g}"
        )
        raise ValueError(
            f"{name}: expected a finite{' non-zero' if nonzero else ''} "
            f"number{bound}, got {value!r}"
        )
    return result


def flag(value: Any, name: str) -> bool:
    """A bool: True / False (NumPy's too), or the ints 0 / 1 that JSON may bring back."""
    if isinstance(value, (bool, np.bool_)) or (
        isinstance(value, numbers.Integral) and value in (0, 1)
    ):
        return bool(value)
    raise ValueError(f"{name}: expected True or False, got {value!r}")


def adam_operands(
    param: Any,
    grad: Any,
    exp_avg: Any,
    exp_avg_sq: Any,
    lr: Any,
    betas: Any,
    eps: Any,
    weight_decay: Any,
    step: Any,
) -> tuple:
    """Check a fused Adam step: the gradient and both moments have the parameter's dtype and
    shape (the kernel updates ``param.size`` elements of each).

    Returns:
        ``(lr, beta1, beta2, eps, weight_decay, step)`` as Python numbers.
    """
    float_array(param, "param")
    for name, array in (("grad", grad), ("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq)):
        exact_array(array, name, param.dtype, param.shape)
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas: expected a pair of numbers, got {betas!r}")
    beta1, beta2 = (finite_number(b, f"betas[{i}]", 0.0) for i, b in enumerate(betas))
    if beta1 >= 1 or beta2 >= 1:
        raise ValueError(f"betas: expected values in [0, 1), got {tuple(betas)}")
    return (
        finite_number(lr, "lr", 0.0),
        beta1,
        beta2,
        finite_number(eps, "eps", 0.0),
        finite_number(weight_decay, "weight_decay", 0.0),
        positive(step, "step", None),
    )


def channel_vector(array: Any, name: str, channels: int, dtype: Any = None) -> Any:
    """``None`` or a 1-D float array of ``channels`` values (a per-channel weight, bias or
    statistic); ``dtype``, when given, is the one it must have."""
    if array is None:
        return None
    float_array(array, name)
    if tuple(array.shape) != (channels,) or (dtype is not None and array.dtype != dtype):
        want = f"{np.dtype(dtype)} " if dtype is not None else ""
        raise ValueError(
            f"{name}: expected a {want}array of shape ({channels},) (one value "
            f"per channel), got {_describe(array)}"
        )
    return array


def batch_norm_operands(x: Any, weight: Any, bias: Any, mean: Any, var: Any, eps: Any) -> tuple:
    """Check ``batch_norm_forward``'s operands: (N, C, ...) ``x``, per-channel ``weight`` /
    ``bias`` of ``x``'s dtype, and running ``mean`` / ``var`` both given or neither.

    Returns:
        ``(C, eps)``.
    """
    float_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x: expected (N, C, ...), got shape {tuple(x.shape)}")
    c = x.shape[1]
    channel_vector(weight, "weight", c, x.dtype)
    channel_vector(bias, "bias", c, x.dtype)
    if (mean is None) != (var is None):
        raise ValueError(
            "mean, var: expected both (running statistics) or neither (batch "
            f"statistics), got {type(mean).__name__} and {type(var).__name__}"
        )
    channel_vector(mean, "mean", c)
    channel_vector(var, "var", c)
    return c, finite_number(eps, "eps", 0.0)


def batch_norm_grad_operands(grad: Any, x: Any, mean: Any, invstd: Any, weight: Any) -> int:
    """Check ``batch_norm_backward``'s operands against (N, C, ...) ``x``; returns C."""
    float_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x: expected (N, C, ...), got shape {tuple(x.shape)}")
    exact_array(grad, "grad", x.dtype, x.shape)
    c = x.shape[1]
    channel_vector(mean, "mean", c, np.float64)
    channel_vector(invstd, "invstd", c, np.float64)
    if mean is None or invstd is None:
        raise ValueError(
            "mean, invstd: expected the float64 statistics batch_norm_forward used, got None"
        )
    channel_vector(weight, "weight", c, x.dtype)
    return c


def run_indices(index: Any, name: str, shape: tuple, bound: int) -> Any:
    """An int32 array of ``shape`` whose values index ``bound`` entries."""
    exact_array(index, name, np.int32, shape)
    if index.size and (int(index.min()) < 0 or int(index.max()) >= bound):
        raise ValueError(
            f"{name}: expected values in [0, {bound}), got [{int(index.min())}, {int(index.max())}]"
        )
    return index


def bool_mask(mask: Any, name: str, shape: tuple) -> Any:
    """A bool array of ``shape`` (the mask a fused activation's forward returned)."""
    if getattr(mask, "dtype", None) != np.bool_ or tuple(mask.shape) != tuple(shape):
        raise ValueError(
            f"{name}: expected a bool mask of shape {tuple(shape)}, got {_describe(mask)}"
        )
    return mask


def dropout_operands(x: Any, p: Any, seed: Any) -> tuple:
    """Check a fused dropout's float ``x``, probability ``p`` and uint64 ``seed``; returns
    ``(p, seed)``."""
    float_array(x, "x")
    return probability(p), nonnegative(seed, "seed", None) % 2**64


def probability(p: Any, name: str = "p") -> float:
    """A drop probability in [0, 1) (1 would divide the kept values by zero)."""
    value = finite_number(p, name, 0.0)
    if value >= 1:
        raise ValueError(f"{name}: expected a probability in [0, 1), got {p!r}")
    return value
