"""The CPU backend's recurrent kernels (``_rnn.pyx``): the fused cell steps, and whole time
loops -- forward and backpropagation through time -- in one call each, with the recurrent
weight packed once per sequence."""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab import _settings
from convlab._backend_base import BackendBase
from convlab._cpu import _gemm, _rnn

__all__ = ["CPURecurrent"]

_ISA = {"generic": 0, "avx2": 1, "avx512": 2}


def _threads() -> int:
    return _settings.get_num_threads()


def _isa() -> int:
    """convlab's micro-kernel ISA (``set_isa`` governs these kernels too) as the header's
    number."""
    return _ISA[_gemm.get_isa()]


def _summed(b_ih: Any | None, b_hh: Any | None, width: int, dtype: Any) -> np.ndarray:
    """The LSTM / RNN cell's one bias: ``b_ih + b_hh`` (zeros for none)."""
    total = np.zeros(width, dtype)
    for b in (b_ih, b_hh):
        if b is not None:
            total += b
    return total


def _or_zeros(b: Any | None, width: int, dtype: Any) -> np.ndarray:
    return np.zeros(width, dtype) if b is None else b


class CPURecurrent(BackendBase):
    """Recurrent ``_..._into`` hooks of :class:`convlab._backend_base.BackendBase` in Cython."""

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
        bias = _summed(b_ih, b_hh, xg.shape[1], xg.dtype)
        _rnn.cell_forward("lstm", xg, hg, bias, bias, c_prev, h, c, gates, _isa(), _threads())

    def _lstm_cell_backward_into(
        self, gates: Any, c_prev: Any, c: Any, dh: Any, dh_rec: Any, dc: Any, dgates: Any
    ) -> None:
        _rnn.cell_backward(
            "lstm", gates, c_prev, c, dh, dh_rec, dc, dgates, dgates, _isa(), _threads()
        )

    def _gru_cell_forward_into(
        self,
        xg: Any,
        hg: Any,
        b_ih: Any | None,
        b_hh: Any | None,
        h_prev: Any,
        h: Any,
        saved: Any,
    ) -> None:
        width, dtype = xg.shape[1], xg.dtype
        b1, b2 = _or_zeros(b_ih, width, dtype), _or_zeros(b_hh, width, dtype)
        _rnn.cell_forward("gru", xg, hg, b1, b2, h_prev, h, h, saved, _isa(), _threads())

    def _gru_cell_backward_into(
        self, saved: Any, h_prev: Any, dh: Any, dh_rec: Any, dcarry: Any, dxg: Any, dhg: Any
    ) -> None:
        _rnn.cell_backward(
            "gru", saved, h_prev, h_prev, dh, dh_rec, dcarry, dxg, dhg, _isa(), _threads()
        )

    def _rnn_cell_forward_into(
        self, xg: Any, hg: Any, b_ih: Any | None, b_hh: Any | None, h: Any, relu: bool
    ) -> None:
        bias = _summed(b_ih, b_hh, xg.shape[1], xg.dtype)
        mode = "rnn_relu" if relu else "rnn_tanh"
        _rnn.cell_forward(mode, xg, hg, bias, bias, h, h, h, h, _isa(), _threads())

    def _rnn_cell_backward_into(self, h: Any, dh: Any, dh_rec: Any, dpre: Any, relu: bool) -> None:
        mode = "rnn_relu" if relu else "rnn_tanh"
        _rnn.cell_backward(mode, h, h, h, dh, dh_rec, dpre, dpre, dpre, _isa(), _threads())

    def _rnn_sequence_forward_into(
        self,
        mode: str,
        xg: Any,
        w_hh: Any,
        b_ih: Any | None,
        b_hh: Any | None,
        h0: Any,
        c0: Any | None,
        out: Any,
        cells: Any | None,
        saved: Any | None,
        reverse: bool,
    ) -> None:
        width, dtype = xg.shape[2], xg.dtype
        if mode == "gru":
            b1, b2 = _or_zeros(b_ih, width, dtype), _or_zeros(b_hh, width, dtype)
        else:
            b1 = b2 = _summed(b_ih, b_hh, width, dtype)
        _rnn.sequence_forward(
            mode,
            xg,
            w_hh,
            b1,
            b2,
            h0,
            h0 if c0 is None else c0,
            out,
            out if cells is None else cells,
            out if saved is None else saved,
            reverse,
            _isa(),
            _threads(),
        )

    def _rnn_sequence_backward_into(
        self,
        mode: str,
        grad: Any,
        saved: Any | None,
        cells: Any | None,
        out: Any,
        h0: Any,
        c0: Any | None,
        w_hh: Any,
        dxg: Any,
        dhg: Any,
        dh_rec: Any,
        carry: Any,
        reverse: bool,
    ) -> None:
        _rnn.sequence_backward(
            mode,
            grad,
            out if saved is None else saved,
            out if cells is None else cells,
            out,
            h0,
            h0 if c0 is None else c0,
            w_hh,
            dxg,
            dhg,
            dh_rec,
            carry,
            reverse,
            _isa(),
            _threads(),
        )
