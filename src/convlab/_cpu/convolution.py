"""The CPU convolution kernels behind :class:`convlab._cpu.backend.CPUBackend`: each product
runs the algorithm :func:`convlab._cpu.conv_plan.plan_conv2d` names."""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab import _settings
from convlab import _validate as check
from convlab._backend_base import BackendBase, ConvGeometry
from convlab._cpu import _conv, _gemm, _grouped, conv_rows, conv_winograd
from convlab._cpu.conv_plan import ConvPlan, plan_conv2d, transposed_padding

__all__ = ["CPUConvolution", "direct_grouped"]

# A group whose filters have at most this many taps (in_channels / groups * KH * KW) runs the
# direct kernels (_grouped.pyx): depthwise 3x3 has 9, ResNeXt's 4- and 8-channel groups 36
# and 72.
DIRECT_GROUP_TAPS = 72
# Up to this many taps, a group with a spatial kernel and fewer than DIRECT_MAX_OUT_PER_GROUP
# output channels runs the direct kernels too: the batched GEMM's products are then at most
# a few dozen rows tall and its im2col pass costs more than the products (ResNeXt's 16- and
# 32-channel 3x3 groups, 8-channel 5x5 groups: the direct kernels 1.3x - 2.3x faster, forward
# + backward; about even at 64 outputs per group, which stay on the GEMM). A 1x1 group needs
# no im2col: the GEMM stays (2x faster there). See docs/performance.rst.
DIRECT_WIDE_GROUP_TAPS = 800
DIRECT_MAX_OUT_PER_GROUP = 64

_ISA_CODES = {"generic": 0, "avx2": 1, "avx512": 2}

# Depthwise layers (one output per channel) on planes of at most this many input pixels run
# channels-last (MobileNetV2's 8x8 and 4x4 maps): the flat path's loops would be a few
# elements long, the channels give hundreds.
CHANNELS_LAST_PIXELS = 64
# Planes up to 16 x 16 run channels-last too when there are at least this many channels:
# MobileNetV2's 192-channel 16x16 layers forward + backward 1.6x - 2x faster than on the flat
# path (whose per-plane padding into stride phases outweighs its nine taps there); at 32
# channels the flat path stays ahead.
CHANNELS_LAST_WIDE_PIXELS = 256
CHANNELS_LAST_WIDE_MIN_CHANNELS = 64


def direct_grouped(weight_shape: tuple, groups: int) -> bool:
    """Whether a grouped convolution with this (O, C/groups, KH, KW) weight in ``groups``
    groups runs the direct kernels (True) or the batched GEMM (False)."""
    out, per_group, kh, kw = weight_shape
    taps = per_group * kh * kw
    if taps <= DIRECT_GROUP_TAPS:
        return True
    return (
        kh * kw > 1 and out // groups < DIRECT_MAX_OUT_PER_GROUP and taps <= DIRECT_WIDE_GROUP_TAPS
    )


def _direct_params(geom: ConvGeometry) -> tuple:
    return (*geom.stride, *geom.padding, *geom.dilation)


def channels_last(x_shape: tuple, weight_shape: tuple, groups: int) -> bool:
    """Whether a grouped convolution runs the channels-last depthwise kernels."""
    if not (weight_shape[1] == 1 and groups == x_shape[1] == weight_shape[0]):
        return False
    pixels = x_shape[2] * x_shape[3]
    return pixels <= CHANNELS_LAST_PIXELS or (
        pixels <= CHANNELS_LAST_WIDE_PIXELS and x_shape[1] >= CHANNELS_LAST_WIDE_MIN_CHANNELS
    )


def _taps_by_channel(weight: np.ndarray) -> np.ndarray:
    """A depthwise (C, 1, KH, KW) weight as the (KH*KW, C) rows the channels-last kernels read."""
    return np.ascontiguousarray(weight.reshape(weight.shape[0], -1).T)


def _plan(
    x_shape: tuple,
    weight_shape: tuple,
    geom: ConvGeometry,
    dtype: Any,
    data_algorithm: str = "auto",
) -> ConvPlan:
    return plan_conv2d(
        tuple(x_shape),
        tuple(weight_shape),
        geom.stride,
        geom.padding,
        geom.dilation,
        np.dtype(dtype).name,
        data_algorithm,
    )


class CPUConvolution(BackendBase):
    """``_conv2d_*_into`` hooks of the CPU backend (NCHW / OIHW, float32 and float64)."""

    def conv2d_plan(
        self,
        x_shape: tuple,
        weight_shape: tuple,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        dtype: Any = np.float32,
        data_algorithm: str = "auto",
    ) -> ConvPlan:
        """Which algorithm each product of this convolution takes (see
        :mod:`convlab._cpu.conv_plan`).

        Raises:
            TypeError: For a dtype other than float32 and float64.
            ValueError: For bad geometry, as :meth:`conv2d_forward` would.
        """
        x_shape = check.shape_tuple(x_shape, "x_shape", 4)
        weight_shape = check.shape_tuple(weight_shape, "weight_shape", 4)
        stride, padding, dilation, out_hw = check.conv_geometry(
            x_shape, weight_shape[2:], stride, padding, dilation, "conv2d_plan"
        )
        check.data_grad_algorithm(data_algorithm, stride)
        if (
            not isinstance(dtype, (str, type, np.dtype))
            or np.dtype(dtype) not in check.FLOAT_DTYPES
        ):
            raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}")
        geom = ConvGeometry((weight_shape[2], weight_shape[3]), stride, padding, dilation, out_hw)
        return _plan(x_shape, weight_shape, geom, dtype, data_algorithm)

    def _conv2d_forward_into(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None,
        y: np.ndarray,
        geom: ConvGeometry,
    ) -> None:
        threads = _settings.get_num_threads()
        algorithm = _plan(x.shape, weight.shape, geom, x.dtype).forward
        if algorithm == "rows":
            conv_rows.forward(
                x,
                weight,
                bias,
                y,
                (*geom.kernel, *geom.stride, *geom.padding, *geom.dilation),
                threads,
            )
        elif algorithm == "winograd":
            conv_winograd.forward(x, weight, bias, y, geom.padding, geom.dilation[0], threads)
        else:
            _conv.conv2d_forward(
                x, weight, bias, y, *geom.stride, *geom.padding, *geom.dilation, threads
            )

    def _conv2d_backward_data_into(
        self,
        grad_output: np.ndarray,
        weight: np.ndarray,
        dx: np.ndarray,
        geom: ConvGeometry,
        algorithm: str,
    ) -> None:
        threads = _settings.get_num_threads()
        algorithm = _plan(dx.shape, weight.shape, geom, dx.dtype, algorithm).data_gradient
        if algorithm == "rows":
            conv_rows.backward_data(
                grad_output,
                weight,
                dx,
                (*geom.kernel, *geom.stride, *geom.padding, *geom.dilation),
                threads,
            )
        elif algorithm == "gemm":
            _conv.conv2d_backward_data_gemm(
                grad_output,
                weight,
                dx,
                *geom.stride,
                *geom.padding,
                *geom.dilation,
                _settings.get_workspace_limit() // dx.itemsize,
                threads,
            )
        else:
            # the stride-1 gradient is the forward convolution of grad_output with the
            # flipped, transposed weight, its padding undoing the forward one
            flipped = np.empty((weight.shape[1], weight.shape[0]) + weight.shape[2:], dx.dtype)
            _conv.flip_transpose(weight, flipped)
            padding = transposed_padding(weight.shape, geom.padding, geom.dilation)
            if algorithm == "winograd":
                conv_winograd.forward(
                    grad_output, flipped, None, dx, padding, geom.dilation[0], threads
                )
            else:
                _conv.conv2d_forward(
                    grad_output, flipped, None, dx, 1, 1, *padding, *geom.dilation, threads
                )

    def _conv2d_backward_weight_into(
        self,
        grad_output: np.ndarray,
        x: np.ndarray,
        dw: np.ndarray,
        db: np.ndarray | None,
        geom: ConvGeometry,
    ) -> None:
        threads = _settings.get_num_threads()
        algorithm = _plan(x.shape, dw.shape, geom, x.dtype).weight_gradient
        if algorithm == "rows":
            conv_rows.backward_weight(
                grad_output,
                x,
                dw,
                (*geom.kernel, *geom.stride, *geom.padding, *geom.dilation),
                threads,
            )
            if db is not None:
                np.sum(grad_output, axis=(0, 2, 3), out=db)
        elif algorithm == "winograd":
            conv_winograd.weight_gradient(
                grad_output, x, dw, db, geom.padding, geom.dilation[0], threads
            )
        else:
            _conv.conv2d_backward_weight(
                grad_output, x, dw, db, *geom.stride, *geom.padding, *geom.dilation, threads
            )

    # -- grouped and depthwise ---------------------------------------------------------------
    def _grouped_conv2d_forward_into(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None,
        y: np.ndarray,
        geom: ConvGeometry,
        groups: int,
    ) -> None:
        if channels_last(x.shape, weight.shape, groups):
            _grouped.forward_cl(
                x,
                _taps_by_channel(weight),
                bias,
                y,
                (*_direct_params(geom), *geom.kernel),
                _ISA_CODES[_gemm.get_isa()],
                _settings.get_num_threads(),
            )
            return
        if not direct_grouped(weight.shape, groups):
            super()._grouped_conv2d_forward_into(x, weight, bias, y, geom, groups)
            return
        _grouped.forward(
            x,
            weight,
            bias,
            y,
            _direct_params(geom),
            groups,
            _ISA_CODES[_gemm.get_isa()],
            _settings.get_num_threads(),
        )

    def _grouped_conv2d_backward_data_into(
        self,
        grad_output: np.ndarray,
        weight: np.ndarray,
        dx: np.ndarray,
        geom: ConvGeometry,
        groups: int,
    ) -> None:
        if channels_last(dx.shape, weight.shape, groups):
            _grouped.backward_data_cl(
                grad_output,
                _taps_by_channel(weight),
                dx,
                (*_direct_params(geom), *geom.kernel),
                _ISA_CODES[_gemm.get_isa()],
                _settings.get_num_threads(),
            )
            return
        if not direct_grouped(weight.shape, groups):
            super()._grouped_conv2d_backward_data_into(grad_output, weight, dx, geom, groups)
            return
        _grouped.backward_data(
            grad_output,
            weight,
            dx,
            _direct_params(geom),
            groups,
            _ISA_CODES[_gemm.get_isa()],
            _settings.get_num_threads(),
        )

    def _grouped_conv2d_backward_weight_into(
        self,
        grad_output: np.ndarray,
        x: np.ndarray,
        dw: np.ndarray,
        db: np.ndarray | None,
        geom: ConvGeometry,
        groups: int,
    ) -> None:
        if channels_last(x.shape, dw.shape, groups):
            parts = _grouped.backward_weight_cl(
                grad_output,
                x,
                (*_direct_params(geom), *geom.kernel),
                _ISA_CODES[_gemm.get_isa()],
                _settings.get_num_threads(),
            )
            # the threads' partial sums in thread order: deterministic for a thread count
            total = parts[0]
            for part in parts[1:]:
                total = total + part
            dw[...] = total.T.reshape(dw.shape)
            if db is not None:
                np.sum(grad_output, axis=(0, 2, 3), out=db)
            return
        if not direct_grouped(dw.shape, groups):
            super()._grouped_conv2d_backward_weight_into(grad_output, x, dw, db, geom, groups)
            return
        _grouped.backward_weight(
            grad_output,
            x,
            dw,
            _direct_params(geom),
            groups,
            _ISA_CODES[_gemm.get_isa()],
            _settings.get_num_threads(),
        )
        if db is not None:
            np.sum(grad_output, axis=(0, 2, 3), out=db)
