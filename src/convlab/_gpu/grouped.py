"""The GPU backend's direct grouped / depthwise convolution kernels (``kernels/grouped_conv.cu``).

Groups whose filters have few taps (depthwise layers, ResNeXt's 4-, 8- and 16-channel groups)
run one thread per output or input element and one block per weight element; larger
groups take the base class's batched GEMM over the GPU's im2col / GEMM / col2im.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from convlab._backend_base import BackendBase, ConvGeometry
from convlab._gpu import launch

__all__ = ["GPUGroupedKernels", "direct_grouped"]

_WGRAD_THREADS = launch.CONSTANTS["grouped_conv"]["GCONV_WGRAD_THREADS"]
# a group's filter taps (C/groups * KH * KW) up to which one thread per element beats the
# batched GEMM's tiny tiles (an estimate: not yet measured on a GPU)
_DIRECT_GROUP_TAPS = 144


def direct_grouped(weight_shape: tuple) -> bool:
    """Whether a grouped convolution with this (O, C/groups, KH, KW) weight runs the direct
    kernels (True) or the batched GEMM (False)."""
    return weight_shape[1] * weight_shape[2] * weight_shape[3] <= _DIRECT_GROUP_TAPS


def _geom_args(x_shape: tuple, w_shape: tuple, geom: ConvGeometry, groups: int) -> tuple:
    n, c, h, w = x_shape
    o, cg, kh, kw = w_shape
    return tuple(
        np.int32(v)
        for v in (
            n,
            c,
            h,
            w,
            o,
            *geom.out_hw,
            kh,
            kw,
            *geom.stride,
            *geom.padding,
            *geom.dilation,
            cg,
            o // groups,
        )
    )


class GPUGroupedKernels(BackendBase):
    """The grouped-convolution hooks of the GPU backend (a mixin of ``GPUBackend``)."""

    # from the GPU backend this class is mixed into (declared for mypy only)
    _launch: Callable[..., None]

    def _grouped_conv2d_forward_into(
        self, x: Any, weight: Any, bias: Any | None, y: Any, geom: ConvGeometry, groups: int
    ) -> None:
        if not direct_grouped(weight.shape):
            super()._grouped_conv2d_forward_into(x, weight, bias, y, geom, groups)
            return
        self._launch(
            "grouped_conv",
            "grouped_conv_forward",
            x.dtype,
            y.size,
            (
                x,
                weight,
                weight if bias is None else bias,  # never read without a bias
                np.int32(bias is not None),
                y,
                *_geom_args(x.shape, weight.shape, geom, groups),
            ),
        )

    def _grouped_conv2d_backward_data_into(
        self, grad_output: Any, weight: Any, dx: Any, geom: ConvGeometry, groups: int
    ) -> None:
        if not direct_grouped(weight.shape):
            super()._grouped_conv2d_backward_data_into(grad_output, weight, dx, geom, groups)
            return
        self._launch(
            "grouped_conv",
            "grouped_conv_backward_data",
            dx.dtype,
            dx.size,
            (grad_output, weight, dx, *_geom_args(dx.shape, weight.shape, geom, groups)),
        )

    def _grouped_conv2d_backward_weight_into(
        self,
        grad_output: Any,
        x: Any,
        dw: Any,
        db: Any | None,
        geom: ConvGeometry,
        groups: int,
    ) -> None:
        if not direct_grouped(dw.shape):
            super()._grouped_conv2d_backward_weight_into(grad_output, x, dw, db, geom, groups)
            return
        self._launch(
            "grouped_conv",
            "grouped_conv_backward_weight",
            x.dtype,
            dw.size,
            (grad_output, x, dw, *_geom_args(x.shape, dw.shape, geom, groups)),
            block=_WGRAD_THREADS,
            grid=(dw.size,),
        )
        if db is not None:
            db[...] = grad_output.sum(axis=(0, 2, 3))
