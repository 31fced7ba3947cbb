"""One autograd node per layer and direction of an RNN / LSTM / GRU: the time loop runs inside
``forward`` and backpropagation through time inside ``backward``.

The input projection of every time step is one GEMM (``(T*B, I) @ W_ih^T``); each step then
needs only its recurrent product ``h_prev @ W_hh^T`` and one fused cell kernel of the backend
(``lstm_cell_forward`` ...), which adds the biases, applies the gate activations and updates
the state in one pass. Backward walks the steps in reverse with the matching cell-gradient
kernels and finishes with three GEMMs over the whole sequence (input gradient, ``W_ih`` and
``W_hh`` gradients). Only what backward reads is kept: the step outputs, the LSTM cell states
and the activated gates.

The node's single output packs the step outputs and the final states so that one node serves
all of them: ``(T + 1, B, H)`` rows ``0..T-1`` the outputs, row ``T`` the final ``h`` (and for
the LSTM a row ``T + 1`` the final ``c``). Callers slice it (views; their gradients meet here).
"""

from __future__ import annotations

from typing import Any

from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = ["recurrent_layer", "GATES"]

#: gate blocks per mode: the rows of ``weight_ih`` / ``weight_hh`` are ``GATES[mode] * H``
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


class _Recurrent(Function):
    """``forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, mode=, reverse=)`` -> packed outputs."""

    def forward(
        self,
        x: Any,
        h0: Any,
        c0: Any | None,
        w_ih: Any,
        w_hh: Any,
        b_ih: Any | None,
        b_hh: Any | None,
        mode: str = "lstm",
        reverse: bool = False,
    ) -> Any:
        be, xp = self.backend, self.backend.xp
        steps, batch, _ = x.shape
        hidden = w_hh.shape[1]
        lstm = mode == "lstm"
        x = xp.ascontiguousarray(x)
        h0 = xp.ascontiguousarray(h0)
        # the input projection of every step at once: (T*B, I) @ W_ih^T
        xg = be.matmul(x.reshape(steps * batch, -1), w_ih, trans_b=True).reshape(steps, batch, -1)
        packed = xp.empty((steps + 1 + lstm, batch, hidden), x.dtype)
        hg = xp.empty((batch, w_hh.shape[0]), x.dtype)
        if lstm:
            c0 = xp.ascontiguousarray(c0)
            cells = xp.empty((steps, batch, hidden), x.dtype)
            saved = xp.empty((steps, batch, 4 * hidden), x.dtype)
        elif mode == "gru":
            saved = xp.empty((steps, batch, 4 * hidden), x.dtype)
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        h_prev, c_prev = h0, c0
        for t in order:
            be.matmul(h_prev, w_hh, out=hg, trans_b=True)
            if lstm:
                be.lstm_cell_forward(xg[t], hg, b_ih, b_hh, c_prev, packed[t], cells[t], saved[t])
                c_prev = cells[t]
            elif mode == "gru":
                be.gru_cell_forward(xg[t], hg, b_ih, b_hh, h_prev, packed[t], saved[t])
            else:
                be.rnn_cell_forward(xg[t], hg, b_ih, b_hh, packed[t], mode == "rnn_relu")
            h_prev = packed[t]
        packed[steps] = h_prev if steps else h0
        if lstm:
            packed[steps + 1] = c_prev
        self.x, self.h0, self.c0, self.w_ih, self.w_hh = x, h0, c0, w_ih, w_hh
        self.packed, self.mode, self.reverse = packed, mode, reverse
        self.has_bias = b_ih is not None, b_hh is not None
        if lstm:
            self.cells, self.saved = cells, saved
        elif mode == "gru":
            self.saved = saved
        return packed

    def backward(self, grad: Any) -> tuple:
        be, xp = self.backend, self.backend.xp
        x, h0, w_ih, w_hh, packed, mode = (
            self.x,
            self.h0,
            self.w_ih,
            self.w_hh,
            self.packed,
            self.mode,
        )
        steps, batch, _ = x.shape
        hidden = w_hh.shape[1]
        lstm, gru = mode == "lstm", mode == "gru"
        grad = xp.ascontiguousarray(grad)
        width = w_hh.shape[0]
        dxg = xp.empty((steps, batch, width), x.dtype)
        dhg = xp.empty((steps, batch, width), x.dtype) if gru else dxg
        # the final states' gradients enter as the "next step's" recurrent gradients
        dh_rec = grad[steps].copy()
        carry = grad[steps + 1].copy() if lstm else xp.zeros((batch, hidden), x.dtype)
        order = list(range(steps)) if self.reverse else list(range(steps - 1, -1, -1))

        def h_before(t: int) -> Any:
            before = t + 1 if self.reverse else t - 1
            return h0 if before < 0 or before >= steps else packed[before]

        for k, t in enumerate(order):
            if k:
                be.matmul(dhg[order[k - 1]], w_hh, out=dh_rec)
            if lstm:
                before = t + 1 if self.reverse else t - 1
                c_prev = self.c0 if before < 0 or before >= steps else self.cells[before]
                be.lstm_cell_backward(
                    self.saved[t], c_prev, self.cells[t], grad[t], dh_rec, carry, dxg[t]
                )
            elif gru:
                be.gru_cell_backward(
                    self.saved[t], h_before(t), grad[t], dh_rec, carry, dxg[t], dhg[t]
                )
            else:
                be.rnn_cell_backward(packed[t], grad[t], dh_rec, dxg[t], mode == "rnn_relu")
        needs = self.needs
        dx = dh0 = dc0 = dw_ih = dw_hh = db_ih = db_hh = None
        rows = steps * batch
        dxg2, dhg2 = dxg.reshape(rows, width), dhg.reshape(rows, width)
        if needs[0]:
            dx = be.matmul(dxg2, w_ih).reshape(x.shape)
        if needs[1]:
            if steps:
                dh0 = be.matmul(dhg[order[-1]], w_hh)
                if gru:
                    dh0 += carry  # the first step's direct z * h0 path
            else:
                dh0 = grad[steps].copy()
        if lstm and needs[2]:
            dc0 = carry
        if needs[3]:
            dw_ih = be.matmul(dxg2, x.reshape(rows, -1), trans_a=True)
        if needs[4]:
            dw_hh = self._weight_hh_grad(dhg, h0)
        if needs[5]:
            db_ih = dxg2.sum(axis=0)
        if needs[6]:
            db_hh = dhg2.sum(axis=0)
        return dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh

    def _weight_hh_grad(self, dhg: Any, h0: Any) -> Any:
        """``sum_t dhg[t]^T @ h_prev[t]``: one GEMM over the steps whose previous state is a
        step output, plus the first step's product with ``h0``."""
        be, packed = self.backend, self.packed
        steps, batch, width = dhg.shape
        first = steps - 1 if self.reverse else 0
        dw = be.matmul(dhg[first], h0, trans_a=True)
        if steps > 1:
            rows = (steps - 1) * batch
            if self.reverse:
                g, h = dhg[: steps - 1], packed[1:steps]
            else:
                g, h = dhg[1:], packed[: steps - 1]
            dw += be.matmul(g.reshape(rows, width), h.reshape(rows, -1), trans_a=True)
        return dw


def recurrent_layer(
    x: Tensor,
    h0: Tensor,
    c0: Tensor | None,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    mode: str,
    reverse: bool = False,
) -> Tensor:
    """Run one layer in one direction over time-major ``x`` (T, B, I) from ``h0`` (B, H)
    (and ``c0`` for ``mode="lstm"``).

    Args:
        mode: ``"lstm"``, ``"gru"``, ``"rnn_tanh"`` or ``"rnn_relu"``.
        reverse: Walk the steps from last to first (the backward direction of a
            bidirectional layer); the outputs stay in time order.

    Returns:
        The packed ``(T + 1 (+1 for LSTM), B, H)`` tensor described in the module docstring.
    """
    return _Recurrent.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, mode=mode, reverse=reverse)
