"""The CPU backend's fused element-wise kernels: Leaky ReLU, dropout, batch normalisation (also
fused with a (k, 1) max pool and an activation), the Adam and SGD updates and a gradient norm's
sum of squares, each one parallel pass where NumPy needs several on one thread."""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab import _settings
from convlab._backend_base import BackendBase
from convlab._cpu import _activation, _norm, _norm_pool

__all__ = ["CPUElementwise"]

#: below this many elements a row-wise kernel runs NumPy's loop: a thread team costs more
_SPLIT_MIN = 1 << 15


def _flat_bytes(mask: np.ndarray) -> np.ndarray:
    return mask.reshape(-1).view(np.uint8)


class CPUElementwise(BackendBase):
    """``_..._into`` hooks of :class:`convlab._backend_base.BackendBase` in Cython."""

    def _leaky_relu_into(
        self, x: np.ndarray, out: np.ndarray, positive: np.ndarray, slope: float
    ) -> None:
        _activation.leaky_relu_forward(
            x.reshape(-1),
            out.reshape(-1),
            _flat_bytes(positive),
            slope,
            _settings.get_num_threads(),
        )

    def _masked_scale_into(
        self, grad: np.ndarray, mask: np.ndarray, dx: np.ndarray, if_set: float, if_clear: float
    ) -> None:
        _activation.masked_scale(
            grad.reshape(-1),
            _flat_bytes(mask),
            dx.reshape(-1),
            if_set,
            if_clear,
            _settings.get_num_threads(),
        )

    def _dropout_into(
        self,
        x: np.ndarray,
        out: np.ndarray,
        keep: np.ndarray,
        seed: int,
        threshold: int,
        scale: float,
    ) -> None:
        _activation.dropout_forward(
            x.reshape(-1),
            out.reshape(-1),
            _flat_bytes(keep),
            seed,
            threshold,
            scale,
            _settings.get_num_threads(),
        )

    def _dropout_rows_into(
        self,
        x: np.ndarray,
        out: np.ndarray,
        keep: np.ndarray,
        seeds: np.ndarray,
        threshold: int,
        scale: float,
    ) -> None:
        _activation.dropout_rows_forward(
            x,
            out,
            keep.view(np.uint8),
            seeds,
            threshold,
            scale,
            _settings.get_num_threads(),
        )

    def _batch_norm_into(
        self,
        x: np.ndarray,
        weight: np.ndarray | None,
        bias: np.ndarray | None,
        y: np.ndarray,
        mean: np.ndarray,
        var: np.ndarray,
        batch_stats: bool,
        eps: float,
    ) -> None:
        _norm.forward(
            x, weight, bias, y, mean, var, batch_stats, float(eps), _settings.get_num_threads()
        )

    def _batch_norm_backward_into(
        self,
        grad: np.ndarray,
        x: np.ndarray,
        mean: np.ndarray,
        invstd: np.ndarray,
        weight: np.ndarray | None,
        gx: np.ndarray | None,
        sum_g: np.ndarray,
        sum_gx: np.ndarray,
        batch_stats: bool,
    ) -> None:
        _norm.backward(
            grad,
            x,
            mean,
            invstd,
            weight,
            gx,
            sum_g,
            sum_gx,
            batch_stats,
            _settings.get_num_threads(),
        )

    def _batch_norm_max_pool_into(
        self,
        x: np.ndarray,
        weight: np.ndarray | None,
        bias: np.ndarray | None,
        y: np.ndarray,
        code: np.ndarray,
        mean: np.ndarray,
        var: np.ndarray,
        batch_stats: bool,
        eps: float,
        kernel: int,
        ceil_mode: bool,
        slope: float,
    ) -> None:
        # ceil_mode is in y's height already: the kernel pools rows up to OH * kernel
        _norm_pool.forward(
            x,
            weight,
            bias,
            y,
            code,
            mean,
            var,
            batch_stats,
            float(eps),
            kernel,
            slope,
            _settings.get_num_threads(),
        )

    def _batch_norm_max_pool_backward_into(
        self,
        grad: np.ndarray,
        code: np.ndarray,
        x: np.ndarray,
        mean: np.ndarray,
        invstd: np.ndarray,
        weight: np.ndarray | None,
        gx: np.ndarray | None,
        sum_g: np.ndarray,
        sum_gx: np.ndarray,
        batch_stats: bool,
        kernel: int,
        ceil_mode: bool,
        slope: float,
    ) -> None:
        _norm_pool.backward(
            grad,
            code,
            x,
            mean,
            invstd,
            weight,
            gx,
            sum_g,
            sum_gx,
            batch_stats,
            kernel,
            slope,
            _settings.get_num_threads(),
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
        arrays = (param, grad, exp_avg, exp_avg_sq)
        if not all(isinstance(a, np.ndarray) and a.flags.c_contiguous for a in arrays) or not (
            param.flags.writeable and exp_avg.flags.writeable and exp_avg_sq.flags.writeable
        ):
            # the kernel updates flat, writeable memory in place; the rest takes NumPy
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
        bc1, bc2 = 1 - beta1**step, 1 - beta2**step
        _activation.adam_step(
            *(a.reshape(-1) for a in arrays),
            lr,
            beta1,
            beta2,
            eps,
            0.0 if decoupled else weight_decay,
            weight_decay if decoupled else 0.0,
            lr / bc1,
            bc2**0.5,
            _settings.get_num_threads(),
        )

    def _scaled_add_(self, y: Any, x: Any, alpha: float) -> None:
        if not (
            isinstance(y, np.ndarray)
            and isinstance(x, np.ndarray)
            and y.dtype == x.dtype
            and y.dtype in (np.float32, np.float64)
            and y.shape == x.shape
            and y.flags.c_contiguous
            and y.flags.writeable
            and x.flags.c_contiguous
            and not np.may_share_memory(x, y)
        ):
            super()._scaled_add_(y, x, alpha)  # broadcasting, aliasing, other dtypes: NumPy
            return
        _activation.scaled_add(
            y.reshape(-1), x.reshape(-1), float(alpha), _settings.get_num_threads()
        )

    def _add_rows_(self, out: Any, row: Any) -> None:
        if not (
            isinstance(out, np.ndarray)
            and out.size >= _SPLIT_MIN
            and isinstance(row, np.ndarray)
            and out.ndim == 2
            and out.dtype == row.dtype
            and out.dtype in (np.float32, np.float64)
            and row.shape == out.shape[1:]
            and out.flags.c_contiguous
            and out.flags.writeable
            and row.flags.c_contiguous
            and not np.may_share_memory(out, row)
        ):
            # small (not worth a thread), other shapes, dtypes, layouts, aliasing: NumPy
            super()._add_rows_(out, row)
            return
        _activation.add_rows(out, row, _settings.get_num_threads())

    def _sum_rows(self, a: Any) -> Any:
        if not (
            isinstance(a, np.ndarray)
            and a.size >= _SPLIT_MIN
            and a.ndim == 2
            and a.shape[1] >= 16
            and a.dtype in (np.float32, np.float64)
            and a.flags.c_contiguous
        ):
            # small, narrow (NumPy sums a single column pairwise), other layouts: NumPy
            return super()._sum_rows(a)
        out = np.empty(a.shape[1], a.dtype)
        _activation.sum_rows(a, out, _settings.get_num_threads())
        return out

    def _sum_of_squares(self, a: Any) -> Any:
        if not (
            isinstance(a, np.ndarray)
            and a.dtype in (np.float32, np.float64)
            and a.flags.c_contiguous
        ):
            return super()._sum_of_squares(a)
        # float64 sums: more accurate than NumPy's float32 pairwise sum, and the same bits
        # for any thread count
        return np.float64(_activation.sum_of_squares(a.reshape(-1), _settings.get_num_threads()))
