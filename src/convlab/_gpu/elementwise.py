"""The GPU backend's fused element-wise kernels (``kernels/elementwise.cu``): masked scaling
(the Leaky ReLU and dropout gradients), dropout and the Adam update."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from convlab._backend_base import BackendBase

__all__ = ["GPUElementwise"]


class GPUElementwise(BackendBase):
    """``_..._into`` hooks of :class:`convlab._backend_base.BackendBase` in CUDA."""

    # from the GPU backend this class is mixed into (declared for mypy only: no values here,
    # which would shadow the backend's)
    _launch: Callable[..., None]

    def _masked_scale_into(
        self, grad: Any, mask: Any, dx: Any, if_set: float, if_clear: float
    ) -> None:
        t = grad.dtype.type
        self._launch(
            "elementwise",
            "masked_scale",
            grad.dtype,
            grad.size,
            (grad, mask, dx, t(if_set), t(if_clear), np.int64(grad.size)),
        )

    def _dropout_into(
        self, x: Any, out: Any, keep: Any, seed: int, threshold: int, scale: float
    ) -> None:
        # one thread per pair of elements: the two halves of one SplitMix64 number
        self._launch(
            "elementwise",
            "dropout_forward",
            x.dtype,
            -(-x.size // 2),
            (
                x,
                out,
                keep,
                np.uint64(seed),
                np.uint32(threshold),
                x.dtype.type(scale),
                np.int64(x.size),
            ),
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
        cp = self.xp
        if not all(
            isinstance(a, cp.ndarray) and a.flags.c_contiguous for a in (param, exp_avg, exp_avg_sq)
        ):
            # the kernel updates flat memory in place; the rest takes CuPy
            super()._adam_into(
                param,
                grad,
                exp_avg,
                exp_avg_sq,
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                decoupled,
                step,
            )
            return
        t = param.dtype.type
        bc1, bc2 = 1 - beta1**step, 1 - beta2**step
        self._launch(
            "elementwise",
            "adam_step",
            param.dtype,
            param.size,
            (
                param,
                cp.ascontiguousarray(grad),
                exp_avg,
                exp_avg_sq,
                t(lr),
                t(beta1),
                t(beta2),
                t(eps),
                t(0 if decoupled else weight_decay),
                t(weight_decay if decoupled else 0),
                t(lr / bc1),
                t(bc2**0.5),
                np.int64(param.size),
            ),
        )
