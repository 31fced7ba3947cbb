# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""The fused float32 cross-entropy's row passes (``xent_rows.h``), in parallel over rows:
each row's log-sum-exp (forward) and its softmax scaled by a per-row coefficient (backward).
"""
from cython.parallel cimport prange
from libc.stdint cimport int64_t

cdef extern from "xent_rows.h" nogil:
    enum: CONVLAB_XENT_AVX512
    float convlab_xent_row_lse_f32(const float*, int64_t)
    void convlab_xent_row_softmax_scaled_f32(const float*, float*, int64_t, float, float)

#: whether this build has the AVX-512 row passes (the caller also checks the CPU's ISA)
AVAILABLE = bool(CONVLAB_XENT_AVX512)


def logsumexp_rows(const float[:, ::1] x, float[::1] lse, int threads):
    """``lse[r] = log(sum_j exp(x[r, j]))``, the row's maximum taken out first; NaN for a row
    holding NaN or +inf, -inf for a row of only -inf. Shapes are checked by the caller."""
    cdef Py_ssize_t rows = x.shape[0], n = x.shape[1], r
    if rows == 0 or n == 0:
        return
    for r in prange(rows, nogil=True, schedule="static", num_threads=max(1, threads)):
        lse[r] = convlab_xent_row_lse_f32(&x[r, 0], n)


def softmax_scaled_rows(const float[:, ::1] x, const float[::1] lse, const float[::1] coef,
                        float[:, ::1] out, int threads):
    """``out[r, j] = exp(x[r, j] - lse[r]) * coef[r]`` (NaN rows where ``lse[r]`` is NaN or
    -inf). Shapes are checked by the caller."""
    cdef Py_ssize_t rows = x.shape[0], n = x.shape[1], r
    if rows == 0 or n == 0:
        return
    for r in prange(rows, nogil=True, schedule="static", num_threads=max(1, threads)):
        convlab_xent_row_softmax_scaled_f32(&x[r, 0], &out[r, 0], n, lse[r], coef[r])
