"""Argument checks shared by every backend.

Each check raises ``TypeError`` / ``ValueError`` with a message that names the argument, what was
expected and what came, before any compiled code sees the data.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# Geometry reaches the kernels as C ints.
_INT_LIMIT = 2**31 - 1


def pair(value: Any, name: str) -> tuple[int, int]:
    """Normalise an int or a pair of ints (PyTorch's ``_pair``)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if isinstance(value, numbers.Integral):
        result = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
            for v in value):
        result = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if max(abs(v) for v in result) > _INT_LIMIT:
        raise ValueError(f"{name}: expected values below 2**31, got {value!r}")
    return result


def integer(value: Any, name: str, minimum: int = 0) -> int:
    """An int (not a bool) that is at least ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def positive(value: Any, name: str) -> int:
    """An int >= 1."""
    return integer(value, name, 1)


def nonnegative(value: Any, name: str) -> int:
    """An int >= 0."""
    return integer(value, name, 0)


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
    try:
        result = tuple(int(v) for v in value)
        ok = len(result) == ndim and all(
            isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
            for v in value)
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
            raise TypeError(f"{name}: expected dtype {dtype} (the dtype of {first}), "
                            f"got {a.dtype}")
    return dtype


def conv_output_size(size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                     padding: tuple[int, int], dilation: tuple[int, int],
                     what: str = "conv2d") -> tuple[int, int]:
    """Output (OH, OW) of a convolution; a kernel larger than the padded input is an error."""
    out = []
    for axis in range(2):
        extent = dilation[axis] * (kernel[axis] - 1) + 1
        padded = size[axis] + 2 * padding[axis]
        if extent > padded:
            raise ValueError(
                f"{what}: kernel_size {kernel} with dilation {dilation} spans "
                f"({dilation[0] * (kernel[0] - 1) + 1}, {dilation[1] * (kernel[1] - 1) + 1}) "
                f"pixels, larger than the padded input "
                f"({size[0] + 2 * padding[0]}, {size[1] + 2 * padding[1]})")
        out.append((padded - extent) // stride[axis] + 1)
    return out[0], out[1]


def pool_params(kernel_size: Any, stride: Any, padding: Any, dilation: Any = 1,
                what: str = "pool2d") -> tuple[tuple[int, int], ...]:
    """Normalise pooling arguments with PyTorch's rules (stride defaults to the kernel)."""
    kernel = positive_pair(kernel_size, "kernel_size")
    strides = kernel if stride is None or (isinstance(stride, (tuple, list)) and
                                           len(stride) == 0) else positive_pair(stride, "stride")
    pad = nonnegative_pair(padding, "padding")
    dil = positive_pair(dilation, "dilation")
    for axis in range(2):
        extent = (kernel[axis] - 1) * dil[axis] + 1
        if pad[axis] > extent // 2:
            raise ValueError(f"{what}: padding should be at most half of the effective kernel "
                             f"size, got padding={pad}, kernel_size={kernel}, dilation={dil}")
    return kernel, strides, pad, dil


def pool_output_size(size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                     padding: tuple[int, int], dilation: tuple[int, int], ceil_mode: bool,
                     what: str = "pool2d") -> tuple[int, int]:
    """Output (OH, OW) of a pooling layer, PyTorch's ``pooling_output_shape``."""
    out = []
    for axis in range(2):
        numerator = (size[axis] + 2 * padding[axis] - dilation[axis] * (kernel[axis] - 1) - 1
                     + (stride[axis] - 1 if ceil_mode else 0))
        length = numerator // stride[axis] + 1
        # the last window must start inside the input or its left padding
        if ceil_mode and (length - 1) * stride[axis] >= size[axis] + padding[axis]:
            length -= 1
        out.append(length)
    if min(out) < 1:
        raise ValueError(f"{what}: input of size {tuple(size)} is too small for kernel_size "
                         f"{kernel}, stride {stride}, padding {padding}, dilation {dilation}: "
                         f"the output would be {tuple(out)}")
    return out[0], out[1]
