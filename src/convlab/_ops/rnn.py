"""One autograd node per layer and direction of an RNN / LSTM / GRU: the time loop runs inside
``forward`` and backpropagation through time inside ``backward``.

The input projection of every time step is one GEMM (``(T*B, I) @ W_ih^T``); the time loop
itself is the backend's (``_rnn_sequence_forward_into``: per step the recurrent product
``h_prev @ W_hh^T`` and one fused cell step that adds the biases, applies the gate
activations and updates the state -- the CPU backend runs the whole loop in one compiled
call). Backward walks the steps in reverse with the matching cell-gradient steps
(``_rnn_sequence_backward_into``) and finishes with GEMMs over the whole sequence: the
input gradient and the ``W_ih`` and ``W_hh`` gradients (for the LSTM / RNN, whose input and
recurrent pre-activations share one gradient, both from that one array). Only what backward
reads is kept: the step outputs, the LSTM cell states and the activated gates.

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

    follows_autocast = True
    fresh_grads = True

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
        x, h0, w_hh = (xp.ascontiguousarray(a) for a in (x, h0, w_hh))
        b_ih, b_hh, c0 = (None if a is None else xp.ascontiguousarray(a) for a in (b_ih, b_hh, c0))
        # the input projection of every step at once: (T*B, I) @ W_ih^T
        # (explicit widths, not -1: an empty batch has no width to infer)
        xg = be.matmul(x.reshape(steps * batch, x.shape[2]), w_ih, trans_b=True)
        xg = xg.reshape(steps, batch, w_ih.shape[0])
        packed = xp.empty((steps + 1 + lstm, batch, hidden), x.dtype)
        cells: Any = xp.empty((steps, batch, hidden), x.dtype) if lstm else None
        saved = xp.empty((steps, batch, 4 * hidden), x.dtype) if mode in ("lstm", "gru") else None
        be._rnn_sequence_forward_into(
            mode, xg, w_hh, b_ih, b_hh, h0, c0, packed, cells, saved, reverse
        )
        last = 0 if reverse else steps - 1
        packed[steps] = packed[last]
        if lstm:
            packed[steps + 1] = cells[last]
        self.x, self.h0, self.c0, self.w_ih, self.w_hh = x, h0, c0, w_ih, w_hh
        self.packed, self.cells, self.saved = packed, cells, saved
        self.mode, self.reverse = mode, reverse
        return packed

    def backward(self, grad: Any) -> tuple:
        be, xp = self.backend, self.backend.xp
        x, h0, w_hh, mode = self.x, self.h0, self.w_hh, self.mode
        steps, batch, _ = x.shape
        hidden, width = w_hh.shape[1], w_hh.shape[0]
        lstm, gru = mode == "lstm", mode == "gru"
        grad = xp.ascontiguousarray(grad)
        dxg = xp.empty((steps, batch, width), x.dtype)
        dhg = xp.empty((steps, batch, width), x.dtype) if gru else dxg
        # the final states' gradients enter as those from a step after the last
        dh_rec = grad[steps].copy()
        carry = grad[steps + 1].copy() if lstm else xp.zeros((batch, hidden), x.dtype)
        be._rnn_sequence_backward_into(
            mode,
            grad,
            self.saved,
            self.cells,
            self.packed,
            h0,
            self.c0,
            w_hh,
            dxg,
            dhg,
            dh_rec,
            carry,
            self.reverse,
        )
        needs = self.needs
        dx = dh0 = dc0 = dw_ih = dw_hh = db_ih = db_hh = None
        rows = steps * batch
        dxg2, dhg2 = dxg.reshape(rows, width), dhg.reshape(rows, width)
        if needs[0]:
            dx = be.matmul(dxg2, self.w_ih).reshape(x.shape)
        if needs[1]:
            dh0 = be.matmul(dhg[steps - 1 if self.reverse else 0], w_hh)
            if gru:
                dh0 += carry  # the first step's direct z * h0 path
        if lstm and needs[2]:
            dc0 = carry
        # two GEMMs into arrays of their own, kept by the engine as the leaves' gradients
        # without a copy (one GEMM over [X | H_prev] side by side gives column views it copies)
        if needs[3]:
            dw_ih = be.matmul(dxg2, x.reshape(rows, x.shape[2]), trans_a=True)
        if needs[4]:
            previous = self._previous_states(h0).reshape(rows, h0.shape[1])
            dw_hh = be.matmul(dhg2, previous, trans_a=True)
        if needs[5] or needs[6]:
            db_ih = be._sum_rows(dxg2)
            # the LSTM / RNN biases add up before the activations: one gradient for both
            db_hh = be._sum_rows(dhg2) if gru else db_ih.copy()
        return dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh

    def _previous_states(self, h0: Any) -> Any:
        """The state each step starts from, (T, B, H): the step outputs shifted by one step,
        and ``h0`` for the first step."""
        xp, packed = self.backend.xp, self.packed
        steps = self.x.shape[0]
        prev = xp.empty((steps,) + h0.shape, h0.dtype)
        if self.reverse:
            prev[: steps - 1], prev[steps - 1] = packed[1:steps], h0
        else:
            prev[0], prev[1:] = h0, packed[: steps - 1]
        return prev


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
