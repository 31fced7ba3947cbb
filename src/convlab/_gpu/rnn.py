"""The GPU backend's recurrent cell steps (``kernels/rnn.cu``): one thread per (row, hidden
unit), its gates' whole arithmetic in registers. The time loop around them is
:class:`convlab._backend_base.BackendBase`'s: per step a GEMM (``gemm.cu``) and one of these."""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab._backend_base import BackendBase
from convlab._gpu import launch, modules

__all__ = ["GPURecurrent"]


def kernel(name: str, dtype: Any) -> Any:
    """The compiled recurrent kernel ``name`` for ``dtype`` (the ``rnn`` family of
    :mod:`convlab._gpu.modules`, compiled once and cached with the others)."""
    return modules.kernel("rnn", name, dtype)


def _grid(total: int) -> tuple:
    cap = launch.device_blocks(launch.GRID_BLOCKS_PER_SM)
    return (max(1, min(-(-int(total) // launch.THREADS), cap)),)


class GPURecurrent(BackendBase):
    """Recurrent ``_..._into`` hooks of :class:`convlab._backend_base.BackendBase` in CUDA."""

    def _run(self, name: str, dtype: Any, shape: tuple, args: tuple) -> None:
        """Launch ``name`` over the (rows, hidden) ``shape`` of one step."""
        rows, hidden = shape
        total = rows * hidden
        kernel(name, dtype)(
            _grid(total), (launch.THREADS,), args + (np.int64(rows), np.int64(hidden))
        )

    def _bias(
        self, b_ih: Any | None, b_hh: Any | None, width: int, dtype: Any, summed: bool
    ) -> tuple:
        zeros = self.xp.zeros(width, dtype)
        b1 = zeros if b_ih is None else b_ih
        b2 = zeros if b_hh is None else b_hh
        if summed:
            return (b1 + b2,)
        return b1, b2

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
        (bias,) = self._bias(b_ih, b_hh, xg.shape[1], xg.dtype, True)
        self._run("lstm_cell_forward", xg.dtype, h.shape, (xg, hg, bias, c_prev, h, c, gates))

    def _lstm_cell_backward_into(
        self, gates: Any, c_prev: Any, c: Any, dh: Any, dh_rec: Any, dc: Any, dgates: Any
    ) -> None:
        self._run(
            "lstm_cell_backward", c.dtype, c.shape, (gates, c_prev, c, dh, dh_rec, dc, dgates)
        )

    def _gru_cell_forward_into(
        self, xg: Any, hg: Any, b_ih: Any | None, b_hh: Any | None, h_prev: Any, h: Any, saved: Any
    ) -> None:
        b1, b2 = self._bias(b_ih, b_hh, xg.shape[1], xg.dtype, False)
        self._run("gru_cell_forward", xg.dtype, h.shape, (xg, hg, b1, b2, h_prev, h, saved))

    def _gru_cell_backward_into(
        self, saved: Any, h_prev: Any, dh: Any, dh_rec: Any, dcarry: Any, dxg: Any, dhg: Any
    ) -> None:
        self._run(
            "gru_cell_backward", dh.dtype, dh.shape, (saved, h_prev, dh, dh_rec, dcarry, dxg, dhg)
        )

    def _rnn_cell_forward_into(
        self, xg: Any, hg: Any, b_ih: Any | None, b_hh: Any | None, h: Any, relu: bool
    ) -> None:
        (bias,) = self._bias(b_ih, b_hh, xg.shape[1], xg.dtype, True)
        self._run("rnn_cell_forward", xg.dtype, h.shape, (xg, hg, bias, h, np.int32(relu)))

    def _rnn_cell_backward_into(self, h: Any, dh: Any, dh_rec: Any, dpre: Any, relu: bool) -> None:
        self._run("rnn_cell_backward", h.dtype, h.shape, (h, dh, dh_rec, dpre, np.int32(relu)))
