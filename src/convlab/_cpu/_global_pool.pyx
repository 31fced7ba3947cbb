# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Global average and max pooling over the rows of an (N*C, H*W) view: the 1x1 output of
adaptive pooling (MobileNetV2, ResNet and EfficientNet end with it).

Every row is one short contiguous reduction, parallel over rows; NumPy's reductions over a
short last axis run near 1 GB/s. The sum keeps 8 partial sums (vectorised, fixed order), the
maximum propagates NaN and reports the first maximum (or the first NaN), as ``numpy.argmax``.
"""
from cython.parallel cimport prange
from libc.stdint cimport int64_t

ctypedef fused real:
    float
    double


cdef inline real _row_sum(const real* r, Py_ssize_t P) noexcept nogil:
    # 8 partial sums the compiler keeps in one vector register; a fixed order
    cdef real part[8]
    cdef real s = 0
    cdef Py_ssize_t j = 0, k
    for k in range(8):
        part[k] = 0
    while j + 8 <= P:
        for k in range(8):
            part[k] += r[j + k]
        j += 8
    while j < P:
        s += r[j]
        j += 1
    for k in range(8):
        s += part[k]
    return s


cdef inline Py_ssize_t _row_argmax(const real* r, Py_ssize_t P) noexcept nogil:
    # the first maximum, or the first NaN (NaN propagates; numpy.argmax's choice)
    cdef Py_ssize_t j, at = 0
    cdef real best = r[0]
    if best != best:
        return 0
    for j in range(1, P):
        if r[j] > best:
            best = r[j]
            at = j
        elif r[j] != r[j]:
            return j
    return at


def mean_rows(const real[:, ::1] x, real[::1] y, int threads):
    """``y[i]`` = the mean of row ``i`` of ``x`` (at least one column)."""
    cdef Py_ssize_t rows = x.shape[0], P = x.shape[1], i
    cdef real scale = <real>(1.0 / P)
    for i in prange(rows, nogil=True, num_threads=threads, schedule="static"):
        y[i] = _row_sum(&x[i, 0], P) * scale


def max_rows(const real[:, ::1] x, real[::1] y, int64_t[::1] index, int threads):
    """``y[i]`` = the maximum of row ``i`` of ``x`` (at least one column), ``index[i]`` its
    position."""
    cdef Py_ssize_t rows = x.shape[0], P = x.shape[1], i, at
    for i in prange(rows, nogil=True, num_threads=threads, schedule="static"):
        at = _row_argmax(&x[i, 0], P)
        y[i] = x[i, at]
        index[i] = at
