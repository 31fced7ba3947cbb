# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Fused elementwise kernels: Leaky ReLU, dropout (forward and backward), the Adam update,
the SGD update (``scaled_add``), a gradient norm's sum of squares, and a bias's row kernels
(``add_rows``, ``sum_rows``), one parallel pass each.

NumPy's masked copy (``copyto(where=)``) does not vectorise; on the chart CNN's 40 MB
activations it made this the most expensive op after the convolutions.
"""
import numpy as np

from cython.parallel cimport prange
from libc.math cimport sqrt
from libc.stdint cimport uint8_t, uint32_t, uint64_t

ctypedef fused real:
    float
    double

cdef enum:
    # elements per parallel work item (128 KB of float32); even, so that dropout's pairs of
    # elements never straddle two items
    CHUNK = 1 << 15


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


cdef void _masked_scale(const real* g, const uint8_t* mask, real* dx, Py_ssize_t n,
                        real if_set, real if_clear, int threads) noexcept nogil:
    cdef Py_ssize_t chunk, i, lo, hi
    cdef Py_ssize_t chunks = (n + CHUNK - 1) // CHUNK
    for chunk in prange(chunks, nogil=True, schedule="static", num_threads=threads):
        lo = chunk * CHUNK
        hi = min(n, lo + CHUNK)
        for i in range(lo, hi):
            dx[i] = g[i] * (if_set if mask[i] else if_clear)


def masked_scale(const real[::1] g, const uint8_t[::1] mask, real[::1] dx, double if_set,
                 double if_clear, int threads):
    """dx = g * if_set where the mask is set, g * if_clear elsewhere: the Leaky ReLU gradient
    (1, slope) and the dropout gradient (1 / (1 - p), 0)."""
    _masked_scale(&g[0], &mask[0], &dx[0], g.shape[0], <real>if_set, <real>if_clear, threads)


cdef inline uint64_t _splitmix64(uint64_t z) noexcept nogil:
    # SplitMix64's output function (Steele, Lea & Flood 2014) on its counter-th state
    z = (z ^ (z >> 30)) * <uint64_t>0xbf58476d1ce4e5b9
    z = (z ^ (z >> 27)) * <uint64_t>0x94d049bb133111eb
    return z ^ (z >> 31)


cdef void _dropout(const real* x, real* out, uint8_t* keep, Py_ssize_t n, uint64_t seed,
                   uint32_t threshold, real scale, int threads) noexcept nogil:
    cdef Py_ssize_t chunk, i, j, lo, hi
    cdef Py_ssize_t chunks = (n + CHUNK - 1) // CHUNK
    cdef uint64_t bits
    cdef uint8_t kept
    for chunk in prange(chunks, nogil=True, schedule="static", num_threads=threads):
        lo = chunk * CHUNK
        hi = min(n, lo + CHUNK)
        # elements 2j and 2j + 1 take the low and high halves of the SplitMix64 stream's
        # number j: the mask depends on the seed alone, never on the thread count. A product
        # with the 0/1 bit, not a select: a random branch would mispredict half the time.
        for j in range(lo // 2, (hi + 1) // 2):
            bits = _splitmix64(seed + <uint64_t>(j + 1) * <uint64_t>0x9e3779b97f4a7c15)
            i = 2 * j
            kept = <uint32_t>bits >= threshold
            keep[i] = kept
            out[i] = x[i] * (scale * kept)
            if i + 1 < hi:
                kept = <uint32_t>(bits >> 32) >= threshold
                keep[i + 1] = kept
                out[i + 1] = x[i + 1] * (scale * kept)


def dropout_forward(const real[::1] x, real[::1] out, uint8_t[::1] keep, uint64_t seed,
                    uint32_t threshold, double scale, int threads):
    """keep = (32 random bits >= threshold), out = x * scale where kept, x * 0 elsewhere."""
    _dropout(&x[0], &out[0], &keep[0], x.shape[0], seed, threshold, <real>scale, threads)


def dropout_rows_forward(const real[:, ::1] x, real[:, ::1] out, uint8_t[:, ::1] keep,
                         const uint64_t[::1] seeds, uint32_t threshold, double scale,
                         int threads):
    """dropout_forward on each row of x with its own seed (seeds[r] for row r), in parallel
    over pieces of rows."""
    cdef Py_ssize_t rows = x.shape[0], n = x.shape[1]
    cdef Py_ssize_t per_row = (n + CHUNK - 1) // CHUNK
    cdef Py_ssize_t item, r, lo, hi, i, j
    cdef uint64_t bits, seed
    cdef uint8_t kept
    cdef real s = <real>scale
    if rows == 0 or n == 0:
        return
    for item in prange(rows * per_row, nogil=True, schedule="static", num_threads=threads):
        r = item // per_row
        lo = (item % per_row) * CHUNK  # CHUNK is even: a piece starts on a pair
        hi = min(n, lo + CHUNK)
        seed = seeds[r]
        for j in range(lo // 2, (hi + 1) // 2):
            bits = _splitmix64(seed + <uint64_t>(j + 1) * <uint64_t>0x9e3779b97f4a7c15)
            i = 2 * j
            kept = <uint32_t>bits >= threshold
            keep[r, i] = kept
            out[r, i] = x[r, i] * (s * kept)
            if i + 1 < hi:
                kept = <uint32_t>(bits >> 32) >= threshold
                keep[r, i + 1] = kept
                out[r, i + 1] = x[r, i + 1] * (s * kept)


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


cdef extern from *:
    """
    /* Sum of squares of x[0:n] in double, in 16 lanes combined pairwise: the same bits
     * whatever the ISA (contraction off: the extension's baseline has no FMA, and no other
     * build may fuse what this one rounds twice). */
    #pragma GCC push_options
    #pragma GCC optimize("fp-contract=off")
    #define CONVLAB_SUMSQ(T, SUF)                                                            \\
        static double convlab_sumsq_##SUF(const T *x, Py_ssize_t n)                           \\
        {                                                                                    \\
            double acc[16] = {0};                                                            \\
            Py_ssize_t i = 0;                                                                \\
            for (; i + 16 <= n; i += 16)                                                     \\
                for (int j = 0; j < 16; j++) {                                               \\
                    const double v = (double)x[i + j];                                       \\
                    acc[j] += v * v;                                                         \\
                }                                                                            \\
            for (int j = 0; i < n; i++, j++) {                                               \\
                const double v = (double)x[i];                                               \\
                acc[j] += v * v;                                                             \\
            }                                                                                \\
            for (int w = 8; w >= 1; w /= 2)                                                  \\
                for (int j = 0; j < w; j++) acc[j] = acc[j] + acc[j + w];                    \\
            return acc[0];                                                                   \\
        }
    CONVLAB_SUMSQ(float, f32)
    CONVLAB_SUMSQ(double, f64)
    #pragma GCC pop_options
    """
    double convlab_sumsq_f32(const float* x, Py_ssize_t n) nogil
    double convlab_sumsq_f64(const double* x, Py_ssize_t n) nogil


def sum_of_squares(const real[::1] x, int threads):
    """The sum of ``x * x`` in float64: per CHUNK elements in 16 lanes, the chunks' sums then
    added in order, so the result does not depend on the thread count."""
    cdef Py_ssize_t n = x.shape[0], chunks = (n + CHUNK - 1) // CHUNK, chunk, lo
    cdef double total = 0
    if n == 0:
        return 0.0
    partial = np.empty(chunks, np.float64)
    cdef double[::1] part = partial
    for chunk in prange(chunks, nogil=True, schedule="static", num_threads=threads):
        lo = chunk * CHUNK
        if real is float:
            part[chunk] = convlab_sumsq_f32(&x[lo], min(n, lo + CHUNK) - lo)
        else:
            part[chunk] = convlab_sumsq_f64(&x[lo], min(n, lo + CHUNK) - lo)
    for chunk in range(chunks):
        total = total + part[chunk]
    return total


def scaled_add(real[::1] y, const real[::1] x, double alpha, int threads):
    """``y += alpha * x`` in place, rounded as NumPy's ``y += y.dtype.type(alpha) * x`` (the
    product, then the sum), in one parallel pass."""
    cdef Py_ssize_t n = y.shape[0], chunks = (n + CHUNK - 1) // CHUNK, chunk, i, lo, hi
    cdef real a = <real>alpha
    cdef real t
    # a small array (a bias) in one chunk: no second thread to wake
    for chunk in prange(chunks, nogil=True, schedule="static", num_threads=min(threads, chunks)):
        lo = chunk * CHUNK
        hi = min(n, lo + CHUNK)
        for i in range(lo, hi):
            t = a * x[i]
            y[i] = y[i] + t


cdef extern from *:
    """
    /* Row-wise kernels in AVX-512, AVX2 and baseline builds picked at load time (on data that
     * sits in L3, as a product's output just written does, the baseline's 4-wide SSE2 loop
     * is slower than NumPy's). restrict: the caller passes arrays that do not overlap. */
    /* (clones need the compiler's attribute and glibc's ifunc: musl, macOS and Windows
     * builds get the one portable loop) */
    #if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) \\
        && defined(__has_attribute)
    #if __has_attribute(target_clones)
    #define CONVLAB_ROW_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
    #endif
    #endif
    #ifndef CONVLAB_ROW_CLONES
    #define CONVLAB_ROW_CLONES
    #endif
    /* Column sums of rows x[0 .. rows) (row stride ld), columns [lo, hi), into out[lo, hi):
     * each column summed row after row (NumPy's order for a sum over axis 0). */
    #define CONVLAB_SUM_ROWS(T, SUF)                                                         \\
        CONVLAB_ROW_CLONES static void convlab_sum_rows_##SUF(                               \\
            const T *restrict x, Py_ssize_t ld, Py_ssize_t rows, Py_ssize_t lo,              \\
            Py_ssize_t hi, T *restrict out)                                                  \\
        {                                                                                    \\
            for (Py_ssize_t j = lo; j < hi; j++) out[j] = x[j];                              \\
            for (Py_ssize_t i = 1; i < rows; i++) {                                          \\
                const T *restrict r = x + i * ld;                                            \\
                for (Py_ssize_t j = lo; j < hi; j++) out[j] += r[j];                         \\
            }                                                                                \\
        }
    /* out[0:n] += row[0:n] */
    #define CONVLAB_ADD_ROW(T, SUF)                                                          \\
        CONVLAB_ROW_CLONES static void convlab_add_row_##SUF(T *restrict out,                \\
                                                             const T *restrict row,         \\
                                                             Py_ssize_t n)                  \\
        {                                                                                    \\
            for (Py_ssize_t j = 0; j < n; j++) out[j] += row[j];                             \\
        }
    CONVLAB_SUM_ROWS(float, f32)
    CONVLAB_SUM_ROWS(double, f64)
    CONVLAB_ADD_ROW(float, f32)
    CONVLAB_ADD_ROW(double, f64)
    """
    void convlab_sum_rows_f32(const float* x, Py_ssize_t ld, Py_ssize_t rows, Py_ssize_t lo,
                              Py_ssize_t hi, float* out) nogil
    void convlab_sum_rows_f64(const double* x, Py_ssize_t ld, Py_ssize_t rows, Py_ssize_t lo,
                              Py_ssize_t hi, double* out) nogil
    void convlab_add_row_f32(float* out, const float* row, Py_ssize_t n) nogil
    void convlab_add_row_f64(double* out, const double* row, Py_ssize_t n) nogil


cdef enum:
    # columns per work item of sum_rows: the item's running sums (4 KB of float32) stay in L1
    # while its rows stream past
    SUM_COLUMNS = 1024


def add_rows(real[:, ::1] out, const real[::1] row, int threads):
    """``out += row`` for a (rows, n) ``out`` and an (n,) ``row`` (a bias), rows shared out over
    the threads: NumPy's broadcast add, the same bits."""
    cdef Py_ssize_t rows = out.shape[0], n = out.shape[1], i
    if rows == 0 or n == 0:
        return
    cdef int used = threads if rows * n >= CHUNK else 1
    for i in prange(rows, nogil=True, schedule="static", num_threads=used):
        if real is float:
            convlab_add_row_f32(&out[i, 0], &row[0], n)
        else:
            convlab_add_row_f64(&out[i, 0], &row[0], n)


def sum_rows(const real[:, ::1] x, real[::1] out, int threads):
    """``out = x.sum(axis=0)`` for a (rows, n) ``x`` with at least one row, in NumPy's order for
    that reduction (each column summed row after row in ``x``'s dtype: the same bits), column
    blocks shared out over the threads. ``out`` must not overlap ``x``."""
    cdef Py_ssize_t rows = x.shape[0], n = x.shape[1], blocks, block
    if n == 0 or rows == 0:
        return
    blocks = (n + SUM_COLUMNS - 1) // SUM_COLUMNS
    cdef int used = threads if rows * n >= CHUNK else 1
    if blocks < used:
        # too few full blocks to share: blocks of an equal part of the columns each
        blocks = used if n >= used * 16 else 1
    for block in prange(blocks, nogil=True, schedule="static", num_threads=min(used, blocks)):
        if real is float:
            convlab_sum_rows_f32(&x[0, 0], n, rows, block * n // blocks,
                                 (block + 1) * n // blocks, &out[0])
        else:
            convlab_sum_rows_f64(&x[0, 0], n, rows, block * n // blocks,
                                 (block + 1) * n // blocks, &out[0])
