# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Recurrent layers: fused cell steps and whole time loops (forward and backpropagation
through time) in one call each.

A layer's time loop is a chain of small steps -- a product of B rows with the recurrent
weight, then an element-wise cell update -- so Python-level dispatch per step would cost as
much as the arithmetic. Here the loop runs without the GIL: the recurrent weight is packed
once per sequence (``rnn_cells.h``), and every step runs its product split over column
panels and its cell update split over batch rows, on ``threads`` OpenMP threads. The LSTM's
time loops run in one thread team per sequence, and its backward loop fuses the product and
the cell gradient per panel of hidden units (``lstm_seq.h``).
"""
import numpy as np

from cython.parallel cimport prange

ctypedef fused real:
    float
    double

cdef extern from "rnn_cells.h" nogil:
    enum: CONVLAB_RNN_NR
    void convlab_lstm_fwd_f32(const float*, const float*, const float*, const float*, float*,
                              float*, float*, Py_ssize_t, Py_ssize_t, Py_ssize_t)
    void convlab_lstm_fwd_f64(const double*, const double*, const double*, const double*,
                              double*, double*, double*, Py_ssize_t, Py_ssize_t, Py_ssize_t)
    void convlab_lstm_bwd_f32(const float*, const float*, const float*, const float*,
                              const float*, float*, float*, Py_ssize_t, Py_ssize_t, Py_ssize_t)
    void convlab_lstm_bwd_f64(const double*, const double*, const double*, const double*,
                              const double*, double*, double*, Py_ssize_t, Py_ssize_t,
                              Py_ssize_t)
    void convlab_gru_fwd_f32(const float*, const float*, const float*, const float*,
                             const float*, float*, float*, Py_ssize_t, Py_ssize_t, Py_ssize_t)
    void convlab_gru_fwd_f64(const double*, const double*, const double*, const double*,
                             const double*, double*, double*, Py_ssize_t, Py_ssize_t,
                             Py_ssize_t)
    void convlab_gru_bwd_f32(const float*, const float*, const float*, const float*, float*,
                             float*, float*, Py_ssize_t, Py_ssize_t, Py_ssize_t)
    void convlab_gru_bwd_f64(const double*, const double*, const double*, const double*,
                             double*, double*, double*, Py_ssize_t, Py_ssize_t, Py_ssize_t)
    void convlab_rnn_fwd_f32(const float*, const float*, const float*, float*, int, Py_ssize_t,
                             Py_ssize_t, Py_ssize_t)
    void convlab_rnn_fwd_f64(const double*, const double*, const double*, double*, int,
                             Py_ssize_t, Py_ssize_t, Py_ssize_t)
    void convlab_rnn_bwd_f32(const float*, const float*, const float*, float*, int, Py_ssize_t,
                             Py_ssize_t, Py_ssize_t)
    void convlab_rnn_bwd_f64(const double*, const double*, const double*, double*, int,
                             Py_ssize_t, Py_ssize_t, Py_ssize_t)
    void convlab_lstm_fwd_isa_f32(int, const float*, const float*, const float*,
                                  const float*, float*, float*, float*, Py_ssize_t,
                                  Py_ssize_t, Py_ssize_t)
    void convlab_lstm_bwd_isa_f32(int, const float*, const float*, const float*,
                                  const float*, const float*, float*, float*, Py_ssize_t,
                                  Py_ssize_t, Py_ssize_t)
    void convlab_gru_fwd_isa_f32(int, const float*, const float*, const float*, const float*,
                                 const float*, float*, float*, Py_ssize_t, Py_ssize_t,
                                 Py_ssize_t)
    void convlab_gru_bwd_isa_f32(int, const float*, const float*, const float*, const float*,
                                 float*, float*, float*, Py_ssize_t, Py_ssize_t, Py_ssize_t)
    void convlab_rnn_fwd_isa_f32(int, const float*, const float*, const float*, float*, int,
                                 Py_ssize_t, Py_ssize_t, Py_ssize_t)
    void convlab_rnn_bwd_isa_f32(int, const float*, const float*, const float*, float*, int,
                                 Py_ssize_t, Py_ssize_t, Py_ssize_t)
    void convlab_rnn_pack_f32(const float*, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                              float*, Py_ssize_t, Py_ssize_t)
    void convlab_rnn_pack_f64(const double*, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                              double*, Py_ssize_t, Py_ssize_t)
    void convlab_rnn_gemm_f32(int, const float*, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                              const float*, Py_ssize_t, float*, Py_ssize_t, Py_ssize_t,
                              Py_ssize_t)
    void convlab_rnn_gemm_f64(int, const double*, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                              const double*, Py_ssize_t, double*, Py_ssize_t, Py_ssize_t,
                              Py_ssize_t)

cdef extern from "lstm_seq.h" nogil:
    void convlab_lstm_seq_fwd_f32(int, const float*, const float*, const float*, const float*,
                                  const float*, float*, float*, float*, float*, Py_ssize_t,
                                  Py_ssize_t, Py_ssize_t, int, int)
    void convlab_lstm_seq_fwd_f64(int, const double*, const double*, const double*,
                                  const double*, const double*, double*, double*, double*,
                                  double*, Py_ssize_t, Py_ssize_t, Py_ssize_t, int, int)
    Py_ssize_t convlab_lstm_packed_bwd_size(Py_ssize_t)
    void convlab_lstm_seq_bwd_f32(int, const float*, const float*, const float*, const float*,
                                  const float*, const float*, float*, float*, float*,
                                  Py_ssize_t, Py_ssize_t, Py_ssize_t, int, int)
    void convlab_lstm_seq_bwd_f64(int, const double*, const double*, const double*,
                                  const double*, const double*, const double*, double*, double*,
                                  double*, Py_ssize_t, Py_ssize_t, Py_ssize_t, int, int)

MODES = {"rnn_tanh": 0, "rnn_relu": 1, "lstm": 2, "gru": 3}
cdef enum:
    TANH = 0
    RELU = 1
    LSTM = 2
    GRU = 3


cdef inline Py_ssize_t _lo(Py_ssize_t part, Py_ssize_t parts, Py_ssize_t n) noexcept nogil:
    return part * n // parts


# ------------------------------------------------------------------------------ one step
cdef void _cell_forward(int isa, int mode, const real* xg, const real* hg, const real* b1,
                        const real* b2, const real* state, real* h, real* c, real* saved,
                        Py_ssize_t H, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """One step's cell update of rows [r0, r1): ``state`` is c_prev (LSTM) or h_prev (GRU);
    ``b1`` the summed bias (LSTM / RNN) or b_ih (GRU), ``b2`` b_hh (GRU)."""
    if real is float:
        if mode == LSTM:
            convlab_lstm_fwd_isa_f32(isa, xg, hg, b1, state, h, c, saved, H, r0, r1)
        elif mode == GRU:
            convlab_gru_fwd_isa_f32(isa, xg, hg, b1, b2, state, h, saved, H, r0, r1)
        else:
            convlab_rnn_fwd_isa_f32(isa, xg, hg, b1, h, mode == RELU, H, r0, r1)
    else:
        if mode == LSTM:
            convlab_lstm_fwd_f64(xg, hg, b1, state, h, c, saved, H, r0, r1)
        elif mode == GRU:
            convlab_gru_fwd_f64(xg, hg, b1, b2, state, h, saved, H, r0, r1)
        else:
            convlab_rnn_fwd_f64(xg, hg, b1, h, mode == RELU, H, r0, r1)


cdef void _cell_backward(int isa, int mode, const real* saved, const real* s1, const real* s2,
                         const real* dh, const real* dhr, real* carry, real* dxg, real* dhg,
                         Py_ssize_t H, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """One step's cell gradient of rows [r0, r1): ``s1, s2`` are (c_prev, c) for the LSTM,
    (h_prev, -) for the GRU and (h, -) for the RNN; ``carry`` is dc (LSTM) / the direct
    h_prev gradient (GRU)."""
    if real is float:
        if mode == LSTM:
            convlab_lstm_bwd_isa_f32(isa, saved, s1, s2, dh, dhr, carry, dxg, H, r0, r1)
        elif mode == GRU:
            convlab_gru_bwd_isa_f32(isa, saved, s1, dh, dhr, carry, dxg, dhg, H, r0, r1)
        else:
            convlab_rnn_bwd_isa_f32(isa, s1, dh, dhr, dxg, mode == RELU, H, r0, r1)
    else:
        if mode == LSTM:
            convlab_lstm_bwd_f64(saved, s1, s2, dh, dhr, carry, dxg, H, r0, r1)
        elif mode == GRU:
            convlab_gru_bwd_f64(saved, s1, dh, dhr, carry, dxg, dhg, H, r0, r1)
        else:
            convlab_rnn_bwd_f64(s1, dh, dhr, dxg, mode == RELU, H, r0, r1)


def cell_forward(str mode, const real[:, ::1] xg, const real[:, ::1] hg, const real[::1] b1,
                 const real[::1] b2, const real[:, ::1] state, real[:, ::1] h, real[:, ::1] c,
                 real[:, ::1] saved, int isa, int threads):
    """One cell step of every row (the backend's ``*_cell_forward``); unused arrays may be any
    array of the dtype. Shapes are checked by the caller."""
    cdef int m = MODES[mode], part, parts = max(1, min(threads, h.shape[0]))
    cdef Py_ssize_t rows = h.shape[0], H = h.shape[1]
    for part in prange(parts, nogil=True, schedule="static", num_threads=parts):
        _cell_forward(isa, m, &xg[0, 0], &hg[0, 0], &b1[0], &b2[0], &state[0, 0], &h[0, 0],
                      &c[0, 0], &saved[0, 0], H, _lo(part, parts, rows),
                      _lo(part + 1, parts, rows))


def cell_backward(str mode, const real[:, ::1] saved, const real[:, ::1] s1,
                  const real[:, ::1] s2, const real[:, ::1] dh, const real[:, ::1] dhr,
                  real[:, ::1] carry, real[:, ::1] dxg, real[:, ::1] dhg, int isa,
                  int threads):
    """One cell-gradient step of every row (the backend's ``*_cell_backward``)."""
    cdef int m = MODES[mode], part, parts = max(1, min(threads, dh.shape[0]))
    cdef Py_ssize_t rows = dh.shape[0], H = dh.shape[1]
    for part in prange(parts, nogil=True, schedule="static", num_threads=parts):
        _cell_backward(isa, m, &saved[0, 0], &s1[0, 0], &s2[0, 0], &dh[0, 0], &dhr[0, 0],
                       &carry[0, 0], &dxg[0, 0], &dhg[0, 0], H, _lo(part, parts, rows),
                       _lo(part + 1, parts, rows))


# ------------------------------------------------------------------------------ time loops
cdef void _pack(const real* w, Py_ssize_t N, Py_ssize_t K, Py_ssize_t rs, Py_ssize_t cs,
                real* P, Py_ssize_t p0, Py_ssize_t p1) noexcept nogil:
    if real is float:
        convlab_rnn_pack_f32(w, N, K, rs, cs, P, p0, p1)
    else:
        convlab_rnn_pack_f64(w, N, K, rs, cs, P, p0, p1)


cdef void _product(int isa, const real* A, Py_ssize_t M, Py_ssize_t K, const real* P,
                   Py_ssize_t N, real* C, Py_ssize_t p0, Py_ssize_t p1) noexcept nogil:
    """C (M x N) = A (M x K) @ the packed weight, panels [p0, p1)."""
    if real is float:
        convlab_rnn_gemm_f32(isa, A, K, M, K, P, N, C, N, p0, p1)
    else:
        convlab_rnn_gemm_f64(isa, A, K, M, K, P, N, C, N, p0, p1)


cdef object _packed(const real[:, ::1] w, bint transpose, int threads):
    """The recurrent weight (G*H, H) packed for ``A @ w.T`` (``transpose``) or ``A @ w``."""
    cdef Py_ssize_t rows = w.shape[0], cols = w.shape[1]
    cdef Py_ssize_t N = rows if transpose else cols, K = cols if transpose else rows
    cdef Py_ssize_t panels = (N + CONVLAB_RNN_NR - 1) // CONVLAB_RNN_NR, p
    dtype = np.float32 if real is float else np.float64
    packed = np.empty(panels * K * CONVLAB_RNN_NR, dtype)
    cdef real[::1] P = packed
    cdef Py_ssize_t rs = cols if transpose else 1, cs = 1 if transpose else cols
    for p in prange(panels, nogil=True, schedule="static", num_threads=threads):
        _pack(&w[0, 0], N, K, rs, cs, &P[0], p, p + 1)
    return packed, panels


def sequence_forward(str mode, const real[:, :, ::1] xg, const real[:, ::1] w_hh,
                     const real[::1] b1, const real[::1] b2, const real[:, ::1] h0,
                     const real[:, ::1] c0, real[:, :, ::1] out, real[:, :, ::1] cells,
                     real[:, :, ::1] saved, bint reverse, int isa, int threads):
    """The forward time loop of one layer and direction.

    ``xg`` (T, B, G*H) holds the input projection of every step; step t's output goes to
    ``out[t]``, the LSTM's cell state to ``cells[t]``, what backward reads to ``saved[t]``
    (LSTM: the activated gates; GRU: r, z, n and W_hn h + b_hn). ``b1`` is b_ih + b_hh (LSTM,
    RNN) or b_ih (GRU), ``b2`` b_hh (GRU); zeros stand for no bias; unused arrays may be any of
    the dtype. The caller writes the final states.
    """
    cdef int m = MODES[mode]
    cdef Py_ssize_t T = xg.shape[0], B = xg.shape[1], N = xg.shape[2], H = out.shape[2]
    cdef Py_ssize_t k, t, tp, p, panels, part
    cdef int parts = max(1, min(threads, B))
    dtype = np.float32 if real is float else np.float64
    packed, panels = _packed(w_hh, True, threads)
    cdef real[::1] P = packed
    cdef real[:, ::1] hg = np.empty((B, N), dtype)
    cdef const real* h_prev
    cdef const real* state
    if m == LSTM:  # the same two passes per step, in one thread team (lstm_seq.h)
        with nogil:
            if real is float:
                convlab_lstm_seq_fwd_f32(isa, &xg[0, 0, 0], &P[0], &b1[0], &h0[0, 0], &c0[0, 0],
                                         &out[0, 0, 0], &cells[0, 0, 0], &saved[0, 0, 0],
                                         &hg[0, 0], T, B, H, reverse, threads)
            else:
                convlab_lstm_seq_fwd_f64(isa, &xg[0, 0, 0], &P[0], &b1[0], &h0[0, 0], &c0[0, 0],
                                         &out[0, 0, 0], &cells[0, 0, 0], &saved[0, 0, 0],
                                         &hg[0, 0], T, B, H, reverse, threads)
        return
    with nogil:
        for k in range(T):
            t = T - 1 - k if reverse else k
            tp = t + 1 if reverse else t - 1
            h_prev = &h0[0, 0] if k == 0 else &out[tp, 0, 0]
            for p in prange(panels, schedule="static", num_threads=threads):
                _product(isa, h_prev, B, H, &P[0], N, &hg[0, 0], p, p + 1)
            if m == LSTM:
                state = &c0[0, 0] if k == 0 else &cells[tp, 0, 0]
            else:
                state = h_prev
            for part in prange(parts, schedule="static", num_threads=parts):
                _cell_forward(isa, m, &xg[t, 0, 0], &hg[0, 0], &b1[0], &b2[0], state, &out[t, 0, 0],
                              &cells[t if m == LSTM else 0, 0, 0],
                              &saved[t if m >= LSTM else 0, 0, 0], H, _lo(part, parts, B),
                              _lo(part + 1, parts, B))


def sequence_backward(str mode, const real[:, :, ::1] grad, const real[:, :, ::1] saved,
                      const real[:, :, ::1] cells, const real[:, :, ::1] out,
                      const real[:, ::1] h0, const real[:, ::1] c0, const real[:, ::1] w_hh,
                      real[:, :, ::1] dxg, real[:, :, ::1] dhg, real[:, ::1] dh_rec,
                      real[:, ::1] carry, bint reverse, int isa, int threads):
    """Backpropagation through time of one layer and direction.

    ``grad`` is the packed output's gradient ((T + 1 (+1), B, H): the steps', then the final
    h's and c's). On entry ``dh_rec`` holds the final h's gradient and ``carry`` the final
    c's (LSTM) or zeros (GRU); on return ``dxg`` (T, B, G*H) and ``dhg`` (GRU; the same array
    otherwise) hold the gradients of the input projection and of the recurrent product of
    every step, ``carry`` the gradient of c0 (LSTM) or h0's direct part (GRU). The caller
    turns these into the weight, input and h0 gradients with a few whole-sequence GEMMs.
    """
    cdef int m = MODES[mode]
    cdef Py_ssize_t T = dxg.shape[0], B = dxg.shape[1], N = dxg.shape[2], H = dh_rec.shape[1]
    cdef Py_ssize_t k, t, tn, tp, p, panels, part
    cdef int parts = max(1, min(threads, B))
    if m == LSTM:
        _lstm_backward(grad, saved, cells, c0, w_hh, dxg, dh_rec, carry, reverse, isa, threads)
        return
    packed, panels = _packed(w_hh, False, threads)
    cdef real[::1] P = packed
    cdef const real* s1
    cdef const real* s2
    with nogil:
        for k in range(T):
            t = k if reverse else T - 1 - k
            tn = t - 1 if reverse else t + 1  # the step processed before this one
            tp = t + 1 if reverse else t - 1  # the step before this one in the recurrence
            if k:
                for p in prange(panels, schedule="static", num_threads=threads):
                    _product(isa, &dhg[tn, 0, 0], B, N, &P[0], H, &dh_rec[0, 0], p, p + 1)
            if m == LSTM:
                s1 = &c0[0, 0] if k == T - 1 else &cells[tp, 0, 0]
                s2 = &cells[t, 0, 0]
            elif m == GRU:
                s1 = &h0[0, 0] if k == T - 1 else &out[tp, 0, 0]
                s2 = s1
            else:
                s1 = &out[t, 0, 0]
                s2 = s1
            for part in prange(parts, schedule="static", num_threads=parts):
                _cell_backward(isa, m, &saved[t if m >= LSTM else 0, 0, 0], s1, s2, &grad[t, 0, 0],
                               &dh_rec[0, 0], &carry[0, 0], &dxg[t, 0, 0], &dhg[t, 0, 0], H,
                               _lo(part, parts, B), _lo(part + 1, parts, B))


# ------------------------------------------------------------------------------ LSTM loops
cdef _lstm_backward(const real[:, :, ::1] grad, const real[:, :, ::1] gates,
                    const real[:, :, ::1] cells, const real[:, ::1] c0,
                    const real[:, ::1] w_hh, real[:, :, ::1] dg, const real[:, ::1] dhf,
                    real[:, ::1] dc, bint reverse, int isa, int threads):
    """The LSTM's backward loop with product and cell gradient fused per panel
    (``lstm_seq.h``): one thread team per sequence, one barrier per step."""
    cdef Py_ssize_t T = dg.shape[0], B = dg.shape[1], H = dhf.shape[1]
    dtype = np.float32 if real is float else np.float64
    packed = np.empty(convlab_lstm_packed_bwd_size(H), dtype)
    cdef real[::1] P = packed
    with nogil:
        if real is float:
            convlab_lstm_seq_bwd_f32(isa, &grad[0, 0, 0], &gates[0, 0, 0], &cells[0, 0, 0],
                                     &c0[0, 0], &w_hh[0, 0], &dhf[0, 0], &dc[0, 0],
                                     &dg[0, 0, 0], &P[0], T, B, H, reverse, threads)
        else:
            convlab_lstm_seq_bwd_f64(isa, &grad[0, 0, 0], &gates[0, 0, 0], &cells[0, 0, 0],
                                     &c0[0, 0], &w_hh[0, 0], &dhf[0, 0], &dc[0, 0],
                                     &dg[0, 0, 0], &P[0], T, B, H, reverse, threads)
