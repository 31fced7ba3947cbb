"""The CPU backend's binary first-layer kernels (``convlab._cpu._binary``): lookup tables of
3-tap bit patterns built from the weights (``convlab._binary_patterns``), looked up and summed
in C; the checks and allocation are :class:`convlab._backend_base.BackendBase`'s."""

from __future__ import annotations

import numpy as np

from convlab import _settings
from convlab._backend_base import BackendBase, BinaryGeometry
from convlab._cpu import _binary

__all__ = ["CPUBinaryKernels"]


class CPUBinaryKernels(BackendBase):
    """The binary layer's hooks of the CPU backend (a mixin of ``CPUBackend``)."""

    # the forward rejects uint8 pixels other than 0 and 1 while it copies them, so callers
    # need no pass of their own over the images
    checks_binary_pixels = True

    def _binary_conv2d_forward_into(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        base_values: np.ndarray,
        base_index: np.ndarray,
        y: np.ndarray,
        geom: BinaryGeometry,
    ) -> None:
        _binary.forward(
            x,
            geom.packed,
            weight,
            base_values,
            base_index,
            y,
            geom.shape,
            geom.kernel,
            geom.stride,
            geom.padding,
            geom.dilation,
            _settings.get_num_threads(),
        )

    def _binary_weight_sums_into(
        self,
        x: np.ndarray,
        grad_output: np.ndarray,
        cls: np.ndarray,
        row_starts: np.ndarray,
        taps: np.ndarray,
        colsum: np.ndarray,
        geom: BinaryGeometry,
    ) -> None:
        _binary.weight_sums(
            x,
            geom.packed,
            grad_output,
            cls,
            row_starts,
            taps,
            colsum,
            geom.shape,
            geom.kernel,
            geom.stride,
            geom.padding,
            geom.dilation,
            _settings.get_num_threads(),
        )
