"""A third backend made of exactly the required hooks, each a NumPy reference (tests/reference.py).

It proves the backend contract is complete: with ``CONVLAB_TEST_BACKEND=reference`` the test
session runs every "cpu" tensor on this backend instead of the compiled one (conftest.py), and
the op, module and chart-CNN tests must pass unchanged. Nothing here is fast or shared with
convlab's kernels; only :class:`convlab._backend_base.BackendBase` (the glue every backend
inherits) is convlab's.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

import reference as ref
from convlab._backend_base import BackendBase

__all__ = ["ReferenceBackend"]


def _ceil_mode(size: tuple, geom) -> bool:
    """Whether the window count ``geom.out_hw`` took ``ceil_mode`` (the hooks get the count)."""
    return any(
        ref.pool_out_size(s, k, st, p, d, False) != o
        for s, k, st, p, d, o in zip(
            size, geom.kernel, geom.stride, geom.padding, geom.dilation, geom.out_hw
        )
    )


class ReferenceBackend(BackendBase):
    """NumPy arrays; every required kernel a loop over taps or windows, in float64."""

    name = "cpu"

    @property
    def xp(self) -> ModuleType:
        return np

    def is_available(self) -> bool:
        return True

    def describe(self) -> str:
        return "NumPy reference kernels (tests/reference.py)"

    # -- required hooks ----------------------------------------------------------------------
    def _gemm_into(self, a, b, c):
        c[...] = np.matmul(a.astype(np.float64), b.astype(np.float64))

    def _im2col_into(self, x, cols, geom):
        cols[...] = ref.unfold(x, geom.kernel, geom.stride, geom.padding, geom.dilation)

    def _col2im_into(self, cols, x, geom):
        x[...] = ref.fold(cols, x.shape[2:], geom.kernel, geom.stride, geom.padding, geom.dilation)

    def _conv2d_forward_into(self, x, weight, bias, y, geom):
        y[...] = ref.conv2d(x, weight, bias, geom.stride, geom.padding, geom.dilation)

    def _conv2d_backward_data_into(self, grad_output, weight, dx, geom, algorithm):
        zeros = np.zeros(dx.shape)  # the input gradient does not depend on the input
        dx[...] = ref.conv2d_grads(
            zeros, weight, grad_output, geom.stride, geom.padding, geom.dilation
        )[0]

    def _conv2d_backward_weight_into(self, grad_output, x, dw, db, geom):
        weight = np.zeros(dw.shape)
        _, dw[...], bias_grad = ref.conv2d_grads(
            x, weight, grad_output, geom.stride, geom.padding, geom.dilation
        )
        if db is not None:
            db[...] = bias_grad

    # -- grouped convolution (optional hooks; references here, so the glue above them is
    # -- tested against independent kernels too): each group a dense reference of its own
    def _grouped_conv2d_forward_into(self, x, weight, bias, y, geom, groups):
        cg, og = weight.shape[1], weight.shape[0] // groups
        for g in range(groups):
            y[:, g * og : (g + 1) * og] = ref.conv2d(
                x[:, g * cg : (g + 1) * cg],
                weight[g * og : (g + 1) * og],
                None if bias is None else bias[g * og : (g + 1) * og],
                geom.stride,
                geom.padding,
                geom.dilation,
            )

    def _grouped_conv2d_backward_data_into(self, grad_output, weight, dx, geom, groups):
        cg, og = weight.shape[1], weight.shape[0] // groups
        zeros = np.zeros((dx.shape[0], cg) + dx.shape[2:])
        for g in range(groups):
            dx[:, g * cg : (g + 1) * cg] = ref.conv2d_grads(
                zeros,
                weight[g * og : (g + 1) * og],
                grad_output[:, g * og : (g + 1) * og],
                geom.stride,
                geom.padding,
                geom.dilation,
            )[0]

    def _grouped_conv2d_backward_weight_into(self, grad_output, x, dw, db, geom, groups):
        cg, og = dw.shape[1], dw.shape[0] // groups
        for g in range(groups):
            _, dw[g * og : (g + 1) * og], bias_grad = ref.conv2d_grads(
                x[:, g * cg : (g + 1) * cg],
                np.zeros((og,) + dw.shape[1:]),
                grad_output[:, g * og : (g + 1) * og],
                geom.stride,
                geom.padding,
                geom.dilation,
            )
            if db is not None:
                db[g * og : (g + 1) * og] = bias_grad

    def _max_pool2d_into(self, x, y, argmax, geom):
        y[...], argmax[...] = ref.max_pool2d(
            x, geom.kernel, geom.stride, geom.padding, geom.dilation, _ceil_mode(x.shape[2:], geom)
        )

    def _max_pool2d_backward_into(self, grad_output, argmax, dx, geom):
        # offsets outside the window (a hand-made argmax) are ignored, as the contract says
        arg = argmax.astype(np.int64)
        inside = (arg >= 0) & (arg < geom.kernel[0] * geom.kernel[1])
        dx[...] = ref.max_pool2d_backward(
            np.where(inside, grad_output, 0),
            np.where(inside, arg, 0),
            dx.shape,
            geom.kernel,
            geom.stride,
            geom.padding,
            geom.dilation,
        )

    def _avg_pool2d_into(self, x, y, geom):
        y[...] = ref.avg_pool2d(
            x,
            geom.kernel,
            geom.stride,
            geom.padding,
            _ceil_mode(x.shape[2:], geom),
            geom.count_include_pad,
            geom.divisor or None,
        )[0]

    def _avg_pool2d_backward_into(self, grad_output, dx, geom):
        _, divisors = ref.avg_pool2d(
            np.zeros((1, 1) + dx.shape[2:]),
            geom.kernel,
            geom.stride,
            geom.padding,
            _ceil_mode(dx.shape[2:], geom),
            geom.count_include_pad,
            geom.divisor or None,
        )
        dx[...] = ref.avg_pool2d_backward(
            grad_output, dx.shape, geom.kernel, geom.stride, geom.padding, divisors
        )

    def _binary_conv2d_forward_into(self, x, weight, base_values, base_index, y, geom):
        y[...] = (
            ref.conv2d(
                _binary_images(x, geom), weight, None, geom.stride, geom.padding, geom.dilation
            )
            + base_values[:, base_index]
        )

    def _binary_weight_sums_into(self, x, grad_output, cls, row_starts, taps, colsum, geom):
        images = _binary_images(x, geom)
        taps[...] = ref.conv2d_grads(
            images, np.zeros(taps.shape), grad_output, geom.stride, geom.padding, geom.dilation
        )[1]
        grad = grad_output.astype(np.float64)
        for r, (a, b) in enumerate(zip(row_starts[:-1], row_starts[1:])):
            for k in range(colsum.shape[1]):
                colsum[r, k] = grad[:, :, a:b, cls == k].sum(axis=(0, 2, 3))


def _binary_images(x, geom):
    """The (N, C, H, W) 0/1 float64 images of a binary kernel's flattened (or packed) bytes."""
    c, h, w = geom.shape
    if geom.packed:
        x = np.unpackbits(x.reshape(len(x), c, -1), axis=2, count=h * w)
    return x.reshape(len(x), c, h, w).astype(np.float64)
