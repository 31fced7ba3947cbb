# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Global average and max pooling over the rows of an (N*C, H*W) view: the 1x1 output of
adaptive pooling (MobileNetV2, ResNet and EfficientNet end with it); and adaptive max pooling
over bins that do not tile the plane (any other output size), forward and backward.

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


cdef inline void _bin_max(const real* plane, Py_ssize_t W, Py_ssize_t h0, Py_ssize_t h1,
                          Py_ssize_t w0, Py_ssize_t w1, real* value,
                          int64_t* at) noexcept nogil:
    # rows h0..h1-1, columns w0..w1-1 scanned row by row: the first maximum, or the first NaN.
    # Branch-free selects (a new maximum is a coin toss on real data); NaNs, rare, are only
    # noted, and sought again once one is seen.
    cdef Py_ssize_t h, w
    cdef real best = plane[h0 * W + w0], v
    cdef int64_t pos = h0 * W + w0, here
    cdef bint nan = False, larger
    for h in range(h0, h1):
        for w in range(w0, w1):
            v = plane[h * W + w]
            here = h * W + w
            larger = v > best
            best = v if larger else best
            pos = here if larger else pos
            nan = nan | (v != v)
    if nan:
        for h in range(h0, h1):
            for w in range(w0, w1):
                v = plane[h * W + w]
                if v != v:
                    value[0] = v
                    at[0] = h * W + w
                    return
    value[0] = best
    at[0] = pos


def adaptive_max_planes(const real[:, ::1] x, Py_ssize_t W, const int64_t[:, ::1] row_bins,
                        const int64_t[:, ::1] col_bins, real[:, ::1] y, int64_t[:, ::1] index,
                        int threads):
    """Adaptive max pooling of the (N*C, H*W) planes ``x`` (width ``W``) over the bins
    ``row_bins`` (OH, 2) x ``col_bins`` (OW, 2) of ``(start, end)``: ``y`` (N*C, OH*OW) the
    maxima, ``index`` their flat offsets ``h * W + w`` (the first maximum in row-major order,
    or the first NaN: ``numpy.argmax`` over the bin, as PyTorch)."""
    cdef Py_ssize_t planes = x.shape[0], OH = row_bins.shape[0], OW = col_bins.shape[0]
    cdef Py_ssize_t p, i, j
    for p in prange(planes, nogil=True, num_threads=threads, schedule="static"):
        for i in range(OH):
            for j in range(OW):
                _bin_max(&x[p, 0], W, row_bins[i, 0], row_bins[i, 1], col_bins[j, 0],
                         col_bins[j, 1], &y[p, i * OW + j], &index[p, i * OW + j])


def adaptive_max_planes_backward(const real[:, ::1] grad, const int64_t[:, ::1] index,
                                 real[:, ::1] dx, int threads):
    """``dx`` (N*C, H*W) = zeros plus each output's gradient at its maximum's offset, added
    in output order (overlapping bins that share a maximum sum their gradients)."""
    cdef Py_ssize_t planes = dx.shape[0], P = dx.shape[1], Q = grad.shape[1], p, q
    for p in prange(planes, nogil=True, num_threads=threads, schedule="static"):
        for q in range(P):
            dx[p, q] = 0
        for q in range(Q):
            dx[p, index[p, q]] += grad[p, q]
