# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Fused elementwise kernels: Leaky ReLU forward and backward and the Adam update, one
parallel pass each.

NumPy's masked copy (``copyto(where=)``) does not vectorise; on the chart CNN's 40 MB
activations it made this the most expensive op after the convolutions.
"""
from cython.parallel cimport prange
from libc.math cimport sqrt
from libc.stdint cimport uint8_t

ctypedef fused real:
    float
    double

cdef enum:
    CHUNK = 1 << 15     # elements per parallel work item (128 KB of float32)


cdef void _forward(const real* x, real* out, uint8_t* positive, Py_ssize_t n, real slope,
                   int threads) noexcept nogil:
    cdef Py_ssize_t chunk, i, lo, hi
    cdef Py_ssize_t chunks = (n + CHUNK - 1) // CHUNK
    cdef real v
    for chunk in prange(chunks, nogil=True, schedule="static", num_threads=threads):
        lo = chunk * CHUNK
        hi = min(n, lo + CHUNK)
        for i in range(lo, hi):
            # x[i] read once (the uint8 store may alias it) and a select of factors, not of
            # products: the loop vectorises
            v = x[i]
            out[i] = v * (1 if v > 0 else slope)
            positive[i] = v > 0


def leaky_relu_forward(const real[::1] x, real[::1] out, uint8_t[::1] positive, double slope,
                       int threads):
    """out = x where x > 0, slope * x elsewhere; positive = (x > 0)."""
    _forward(&x[0], &out[0], &positive[0], x.shape[0], <real>slope, threads)


cdef void _backward(const real* g, const uint8_t* positive, real* dx, Py_ssize_t n,
                    real slope, int threads) noexcept nogil:
    cdef Py_ssize_t chunk, i, lo, hi
    cdef Py_ssize_t chunks = (n + CHUNK - 1) // CHUNK
    for chunk in prange(chunks, nogil=True, schedule="static", num_threads=threads):
        lo = chunk * CHUNK
        hi = min(n, lo + CHUNK)
        for i in range(lo, hi):
            dx[i] = g[i] * (1 if positive[i] else slope)


def leaky_relu_backward(real[::1] g, uint8_t[::1] positive, real[::1] dx, double slope,
                        int threads):
    """dx = g where the mask is set, slope * g elsewhere."""
    _backward(&g[0], &positive[0], &dx[0], g.shape[0], <real>slope, threads)


def adam_step(real[::1] p, const real[::1] g, real[::1] m, real[::1] v, double lr,
              double beta1, double beta2, double eps, double wd_l2, double wd_decoupled,
              double step, double sqrt_bc2, int threads):
    """One Adam / AdamW update in place, in one parallel pass (the same arithmetic, in the
    same order and precision, as the NumPy formulation in ``convlab.optim.Adam``)."""
    cdef Py_ssize_t n = p.shape[0], chunk, i, lo, hi
    cdef Py_ssize_t chunks = (n + CHUNK - 1) // CHUNK
    cdef real b1 = <real>(1 - beta1), b2 = <real>beta2, b2c = <real>(1 - beta2)
    cdef real decay = <real>(1 - lr * wd_decoupled), l2 = <real>wd_l2
    cdef real c = <real>sqrt_bc2, e = <real>eps, s = <real>step
    cdef real gi, mi, vi, denom
    cdef bint decoupled = wd_decoupled != 0, coupled = wd_l2 != 0
    for chunk in prange(chunks, nogil=True, schedule="static", num_threads=threads):
        lo = chunk * CHUNK
        hi = min(n, lo + CHUNK)
        for i in range(lo, hi):
            if decoupled:
                p[i] = p[i] * decay
            gi = g[i]
            if coupled:
                gi = gi + l2 * p[i]
            mi = m[i] + b1 * (gi - m[i])
            vi = v[i] * b2 + b2c * gi * gi
            m[i] = mi
            v[i] = vi
            denom = sqrt(vi) / c + e
            p[i] = p[i] - s * (mi / denom)
