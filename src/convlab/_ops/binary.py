"""Convolution of 0/1 images: the chart CNN's first layer (``F.binary_conv2d``).

The input normalisation ``(x - mean) / std`` is folded in, once and for every backend: the
kernel sees the weights ``w / std``, and what a 0 pixel becomes, ``zero_value = -mean /
std``, goes into a start value per output pixel -- the bias plus ``zero_value`` times the
weights of the taps inside the image, which differ only near the border, so a few values
(one per run of output rows and columns with the same taps inside) and an index say it.
The weight gradient takes the backend's per-tap sums over the 1 pixels and adds the same
fold's part. The backends' kernels (``binary_conv2d_forward``,
``binary_conv2d_weight_sums``) build their lookup tables from the weights themselves; see
docs/binary_layer.rst.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import numpy as np

from convlab import _validate as check
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = ["binary_conv2d"]

_FOLDS = ("exact", "weights")


class _Geometry:
    """Sizes of one binary convolution, and which kernel taps fall inside the image."""

    def __init__(
        self, shape: tuple, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple
    ) -> None:
        self.shape, self.kernel = shape, kernel
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.out_hw = check.conv_output_size(
            shape[1:], kernel, stride, padding, dilation, "binary_conv2d"
        )
        (_, h, w), (kh, kw) = shape, kernel
        # rows_in[oh, i]: kernel row i of output row oh lies inside the image; same for columns
        rows_in = self._inside(self.out_hw[0], kh, stride[0], padding[0], dilation[0], h)
        cols_in = self._inside(self.out_hw[1], kw, stride[1], padding[1], dilation[1], w)
        # output columns fall into a few classes by which taps are inside (2-3 for a 3-wide
        # kernel with padding 1): the weight-gradient kernel sums the gradient per class
        self.class_taps, cls = np.unique(cols_in, axis=0, return_inverse=True)
        self.cls = np.ascontiguousarray(cls.reshape(-1), dtype=np.int32)
        # the same by runs of equal rows / columns: output pixel (oh, ow) starts from the
        # value of its (row run, column run), base_index[oh, ow]
        self.row_runs, row_lengths = self._runs(rows_in)
        self.col_runs, col_lengths = self._runs(cols_in)
        # the weight gradient's column-class sums are taken per run of rows, not per row
        self.row_starts = np.r_[0, np.cumsum(row_lengths)].astype(np.int32)
        row_run = np.repeat(np.arange(len(row_lengths)), row_lengths)
        col_run = np.repeat(np.arange(len(col_lengths)), col_lengths)
        self.base_index = (row_run[:, None] * len(col_lengths) + col_run[None, :]).astype(np.int32)
        # The per-call sums over runs as one small matmul each: a chain of batched products
        # (or an einsum) costs 12-17 us a call, as much as 1% of the 20-day layer's step.
        # run_taps[(r, q), (i, j)]: tap (i, j) is inside for row run r and column run q
        self.run_taps = np.kron(self.row_runs, self.col_runs)
        # class_run_taps[(r, k), (i, j)]: the same for row run r and column class k
        self.class_run_taps = np.kron(self.row_runs, self.class_taps)
        # the fold into the weights as one run where every tap counts
        self.all_taps = np.ones((1, kh * kw))
        self.one_run = np.zeros(self.out_hw, np.int32)
        for array in vars(self).values():  # shared by every call with these sizes
            if isinstance(array, np.ndarray):
                array.flags.writeable = False

    @staticmethod
    def _inside(n_out: int, k: int, s: int, p: int, d: int, size: int) -> np.ndarray:
        pos = np.arange(n_out)[:, None] * s - p + np.arange(k)[None, :] * d
        return ((pos >= 0) & (pos < size)).astype(np.float64)

    @staticmethod
    def _runs(inside: np.ndarray) -> tuple:
        """The distinct rows of ``inside`` in runs of equal consecutive rows, and the run
        lengths."""
        starts = np.flatnonzero(np.r_[True, (inside[1:] != inside[:-1]).any(axis=1)])
        return inside[starts], np.diff(np.r_[starts, len(inside)])

    def args(self) -> tuple:
        return self.shape, self.kernel, self.stride, self.padding, self.dilation


@functools.lru_cache(maxsize=64)
def _geometry(
    shape: tuple, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple
) -> _Geometry:
    """The (immutable) geometry of these sizes: built once, reused every step."""
    return _Geometry(shape, kernel, stride, padding, dilation)


def _checked_geometry(
    chw: tuple, kernel: tuple, stride: Any, padding: Any, dilation: Any
) -> _Geometry:
    return _geometry(
        tuple(int(v) for v in chw),
        tuple(int(v) for v in kernel),
        check.positive_pair(stride, "stride"),
        check.nonnegative_pair(padding, "padding"),
        check.positive_pair(dilation, "dilation"),
    )


_cached_geometry = functools.lru_cache(maxsize=64)(_checked_geometry)


def _plain(value: Any) -> bool:
    """An int, or a tuple of ints (not bools, floats or NumPy scalars, which compare and hash
    equal to ints but must meet the checks)."""
    return type(value) is int or (type(value) is tuple and all(type(v) is int for v in value))


def _layer_geometry(
    chw: tuple, kernel: tuple, stride: Any, padding: Any, dilation: Any
) -> _Geometry:
    """The geometry of these arguments, checked once per distinct set of plain ints (the
    checks otherwise run cache-cold before every batch); anything else is checked every
    call."""
    if all(_plain(v) for v in (chw, kernel, stride, padding, dilation)):
        return _cached_geometry(chw, kernel, stride, padding, dilation)
    return _checked_geometry(chw, kernel, stride, padding, dilation)


class BinaryConv2d(Function):
    def forward(
        self,
        x: Any,
        weight: Any,
        bias: Any = None,
        geom: Any = None,
        packed: bool = False,
        mean: float = 0.0,
        std: float = 1.0,
        fold: str = "exact",
    ) -> Any:
        xp = self.backend.xp
        self.x, self.geom, self.packed, self.std = x, geom, packed, std
        self.has_bias = bias is not None
        # what a black pixel becomes after normalising
        self.zero_value = zero_value = -mean / std
        # "exact": only taps inside the image see a black pixel (the padding stays 0), which
        # differs per run of output pixels; "weights": every tap does, one value per channel
        self.exact = fold == "exact"
        run_taps, index = (
            (geom.run_taps, geom.base_index)
            if self.exact and zero_value
            else (geom.all_taps, geom.one_run)
        )
        base = xp.zeros(weight.shape[0]) if bias is None else bias.astype(np.float64)
        w64 = weight.astype(np.float64)
        # values[c, k]: the bias plus zero_value times the weights of the taps run k sees
        taps = w64.sum(axis=1).reshape(len(w64), -1) @ xp.asarray(run_taps).T
        values = (base[:, None] + zero_value * taps).astype(weight.dtype)
        scaled = weight if std == 1.0 else (w64 / std).astype(weight.dtype)
        return self.backend.binary_conv2d_forward(
            x, packed, scaled, values, xp.asarray(index), *geom.args()
        )

    def backward(self, grad: Any) -> tuple:
        xp, geom = self.backend.xp, self.geom
        taps, colsum = self.backend.binary_conv2d_weight_sums(
            self.x,
            self.packed,
            xp.ascontiguousarray(grad),
            geom.cls,
            len(geom.class_taps),
            *geom.args(),
            row_starts=geom.row_starts,
        )
        # colsum (runs, classes, Cout): the gradient per run of output rows and column class
        total = colsum.sum(axis=(0, 1), dtype=np.float64)
        gw = gb = None
        if self.needs[1]:
            gw = taps.astype(np.float64) / self.std
            if self.zero_value != 0.0 and self.exact:
                # per tap, the gradient summed where the tap is inside the image
                cout = colsum.shape[-1]
                sums = colsum.reshape(colsum.size // max(cout, 1), cout).T
                inside = sums.astype(np.float64) @ xp.asarray(geom.class_run_taps)
                gw = gw + self.zero_value * inside.reshape(cout, 1, *gw.shape[2:])
            elif self.zero_value != 0.0:  # every tap sees the black pixels
                gw = gw + self.zero_value * total[:, None, None, None]
            gw = gw.astype(grad.dtype)
        if self.has_bias and self.needs[2]:
            gb = total.astype(grad.dtype)
        return None, gw, gb


def _as_bits(x: Tensor, input_size: Any | None, xp: Any) -> tuple:
    """The images as (N, bytes per image) uint8 for the kernels, their (C, H, W), packed?"""
    data = x._data
    if input_size is not None:
        h, w = check.positive_pair(input_size, "input_size")
        if data.dtype != np.uint8 or data.ndim != 3:
            raise ValueError(
                f"x: with input_size, expected bit-packed uint8 images (N, C, "
                f"ceil(H*W/8)), got dtype {data.dtype} and shape {data.shape}"
            )
        need = -(-h * w // 8)
        if data.shape[2] != need:
            raise ValueError(
                f"x: {h}x{w} images pack into {need} bytes per channel, got {data.shape[2]}"
            )
        return _per_image(data, xp), (data.shape[1], h, w), True
    if data.ndim != 4:
        raise ValueError(f"x: expected 0/1 images (N, C, H, W), got shape {data.shape}")
    if data.dtype == np.bool_:
        data = data.view(np.uint8)
    elif data.size and (
        data.dtype != np.uint8 or (not x._backend.checks_binary_pixels and int(data.max()) > 1)
    ):
        if not bool(xp.all((data == 0) | (data == 1))):
            raise ValueError(
                "x: expected a binary image (every value 0 or 1); found other "
                "values (use conv2d for general input)"
            )
        data = data.astype(np.uint8)
    return _per_image(data, xp), data.shape[1:], False


def _per_image(data: Any, xp: Any) -> Any:
    """(N, ...) as contiguous (N, bytes per image); sizes spelled out, as -1 is ambiguous for
    an empty batch."""
    return xp.ascontiguousarray(data).reshape(data.shape[0], math.prod(data.shape[1:]))


def binary_conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    *,
    input_size: Any = None,
    mean: float = 0.0,
    std: float = 1.0,
    fold: str = "exact",
) -> Tensor:
    """Convolution of 0/1 images, computed from bit patterns with table lookups.

    Gives the same result as ``conv2d((x - mean) / std, weight, bias, stride, padding,
    dilation)`` (up to float summation order) without any multiply-add over the kernel
    window; the weight gradient is built from the output gradient summed per bit pattern.
    ``x`` never gets a gradient.

    Args:
        x: 0/1 images (N, C, H, W) as uint8, bool or float; or, with ``input_size=(H, W)``,
            bit-packed uint8 (N, C, ceil(H*W/8)) as ``numpy.packbits`` of each row-major
            channel plane (the layout of :class:`convlab.data.ChartSet`).
        weight: (out_channels, C, KH, KW) float weights.
        bias: Optional (out_channels,) bias.
        stride, padding, dilation: As in :func:`conv2d` (ints or pairs).
        input_size: (H, W) of bit-packed input; None for unpacked images.
        mean, std: Input normalisation folded into the layer.
        fold: ``"exact"``: zero padding is applied after normalising, exactly as the dense
            conv of the normalised image. ``"weights"``: the normalisation is folded into
            weights and bias only, so padded pixels count as black pixels (``-mean/std``).

    Returns:
        (N, out_channels, OH, OW) tensor of ``weight``'s dtype.

    Example:
        >>> import convlab as cl
        >>> import convlab.functional as F
        >>> x = cl.tensor([[[[0, 1, 1], [1, 0, 0], [0, 0, 1]]]], dtype=cl.uint8)
        >>> w = cl.ones(2, 1, 3, 3)
        >>> F.binary_conv2d(x, w, padding=1)[0, 0].tolist()
        [[2.0, 3.0, 2.0], [2.0, 4.0, 3.0], [1.0, 2.0, 1.0]]
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a Tensor, got {type(x).__name__}")
    if not isinstance(weight, Tensor) or weight.ndim != 4:
        raise ValueError(
            f"weight: expected a 4-D tensor (out_channels, in_channels, KH, KW), "
            f"got {getattr(weight, 'shape', type(weight).__name__)}"
        )
    if weight._data.dtype not in check.FLOAT_DTYPES:
        raise TypeError(f"weight: expected float32 or float64, got {weight._data.dtype}")
    if bias is not None and (
        not isinstance(bias, Tensor)
        or bias.shape != (weight.shape[0],)
        or bias._data.dtype != weight._data.dtype
    ):
        raise ValueError(
            f"bias: expected a {weight._data.dtype} tensor of shape "
            f"({weight.shape[0]},), got "
            f"{getattr(bias, 'shape', type(bias).__name__)}"
        )
    if x._backend is not weight._backend:
        raise RuntimeError(
            f"binary_conv2d: expected all tensors on one device, got x on "
            f"{x._backend.name} and weight on {weight._backend.name}"
        )
    for name, value in (("mean", mean), ("std", std)):
        if not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if std <= 0:
        raise ValueError(f"std: expected a positive number, got {std!r}")
    if fold not in _FOLDS:
        raise ValueError(f"fold: expected one of {_FOLDS}, got {fold!r}")
    bits, chw, packed = _as_bits(x, input_size, x._backend.xp)
    if chw[0] != weight.shape[1]:
        raise ValueError(
            f"weight: expected {chw[0]} input channels to match x, got {weight.shape[1]}"
        )
    geom = _layer_geometry(tuple(chw), tuple(weight.shape[2:]), stride, padding, dilation)
    images = Tensor._wrap(bits, x._backend)
    return BinaryConv2d.apply(
        images, weight, bias, geom=geom, packed=packed, mean=float(mean), std=float(std), fold=fold
    )
