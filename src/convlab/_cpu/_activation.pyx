# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Leaky ReLU backward in one parallel pass.

NumPy's masked copy (``copyto(where=)``) does not vectorise; on the chart CNN's 40 MB
activations it made this the most expensive op after the convolutions.
"""
from cython.parallel cimport prange
from libc.stdint cimport uint8_t

ctypedef fused real:
    float
    double

cdef enum:
    CHUNK = 1 << 15     # elements per parallel work item (128 KB of float32)


cdef void _backward(const real* g, const uint8_t* positive, real* dx, Py_ssize_t n,
                    real slope, int threads) noexcept nogil:
    cdef Py_ssize_t chunk, i, lo, hi
    cdef Py_ssize_t chunks = (n + CHUNK - 1) // CHUNK
    for chunk in prange(chunks, nogil=True, schedule="static", num_threads=threads):
        lo = chunk * CHUNK
        hi = min(n, lo + CHUNK)
        for i in range(lo, hi):
            dx[i] = g[i] if positive[i] else g[i] * slope


def leaky_relu_backward(real[::1] g, uint8_t[::1] positive, real[::1] dx, double slope,
                        int threads):
    """dx = g where the mask is set, slope * g elsewhere."""
    _backward(&g[0], &positive[0], &dx[0], g.shape[0], <real>slope, threads)
