# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Winograd F(4, 3) transforms along image rows, for 3-wide kernels at stride 1.

A 3-tap correlation gives 4 outputs from 6 inputs with 6 multiplications instead of 12:
``y = A^T [(G g) * (B^T d)]``. Applied along the width only, a KH x 3 convolution becomes six
KH x 1 convolutions (one per transform point) of transformed inputs with transformed weights,
which the GEMM kernels run at their usual speed on half the multiply-adds. The transforms here
are the memory-bound part: input rows -> ``V[xi]``, and ``M[xi]`` -> output rows.

A KH x 1 convolution never mixes columns, so the transformed images of a group of ``group``
images are laid side by side: ``V[xi]`` is (N / group, C, H, group * T), and the GEMM kernels
see a few wide images instead of many 15-tile ones (full pixel panels, deeper weight-gradient
sums). Row ``q`` of image ``n`` (rows counted per image) lands in row
``(n // group) * rows_per_image + q`` at column ``(n % group) * T``.

The interpolation points are 0, +-1, +-2 and infinity::

    B^T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
           [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
    G   = [[1/4, 0, 0], [-1/6, -1/6, -1/6], [-1/6, 1/6, -1/6],
           [1/24, 1/12, 1/6], [1/24, -1/12, 1/6], [0, 0, 1]]
    A^T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
           [0, 1, -1, 8, -8, 1]]
"""
from cython.parallel cimport prange

from convlab._cpu._gemm cimport active_isa


cdef extern from "winograd_rows.h" nogil:
    # AVX-512 row transforms, 16 tiles a step (the loops below are the other ISAs' path)
    int CONVLAB_WINOGRAD_ROWS_AVX512
    int CONVLAB_ISA_AVX512
    int convlab_winograd_input_row(const float* row, Py_ssize_t width, Py_ssize_t pad,
                                   Py_ssize_t tiles, float* v, Py_ssize_t point_stride)
    void convlab_winograd_output_row(const float* m, Py_ssize_t point_stride, Py_ssize_t tiles,
                                     float bias, float* row, Py_ssize_t width)
    int convlab_winograd_gradient_row(const float* row, Py_ssize_t width, Py_ssize_t tiles,
                                      float* t, Py_ssize_t point_stride)


cdef inline bint _rows_avx512(Py_ssize_t inner_stride) noexcept nogil:
    """Whether the AVX-512 row functions run: the ISA in force has them and the transformed
    side's rows are contiguous."""
    return (CONVLAB_WINOGRAD_ROWS_AVX512 and active_isa() == CONVLAB_ISA_AVX512
            and inner_stride == sizeof(float))


# The transforms' coefficients: every transform computes in float32 (a bare literal
# would make Cython compute in double), the same operations in the same order as the AVX-512
# row functions of include/winograd_rows.h, so that every ISA gives the same floats.
# (C converts an int operand to the float one: enum constants keep the sums in float)
cdef enum:
    F2 = 2
    F4 = 4
    F5 = 5
    F8 = 8


cdef inline Py_ssize_t _image_row(Py_ssize_t grouped, Py_ssize_t rows_per_image,
                                  Py_ssize_t group, Py_ssize_t j) noexcept nogil:
    """The row, counted over (image, row of the image), that image ``j`` of its group puts in
    row ``grouped`` of the grouped layout."""
    return ((grouped // rows_per_image) * group + j) * rows_per_image + grouped % rows_per_image


def input_transform(const float[:, ::1] x, float[:, :, :] v, Py_ssize_t pad,
                    Py_ssize_t rows_per_image, Py_ssize_t group, int threads):
    """``v[xi, row(r), column(r) + t] = (B^T d)[xi]`` for the 6 inputs
    ``d[j] = x[r, 4t - pad + j]`` (zero outside the row), for every row ``r`` of ``x``
    (rows, W) and tile ``t`` < T; ``v`` is (6, rows, group * T) in the grouped layout.

    Returns:
        True when every input read was finite. The transforms add and subtract inputs of one
        tile, so a single inf or NaN spoils all 4 outputs of every tile that reads it (inf -
        inf = NaN) where the direct sum spoils only the outputs whose window holds it; the
        caller then takes the direct path. Points 0 and 5 together read all six inputs, and
        ``0 * v`` is NaN exactly when ``v`` is not finite, so the check is one multiply-add
        per tile on values already in registers.
    """
    cdef Py_ssize_t dests = v.shape[1], width = x.shape[1], tiles = v.shape[2] // group
    cdef Py_ssize_t r, t, col, j, dest, base
    cdef float d0, d1, d2, d3, d4, d5, v0, v5
    cdef float nonfinite = 0
    cdef int bad = 0
    if dests and tiles and _rows_avx512(v.strides[2]):
        for dest in prange(dests, nogil=True, num_threads=threads, schedule="static"):
            for j in range(group):
                r = _image_row(dest, rows_per_image, group, j)
                bad += convlab_winograd_input_row(&x[r, 0], width, pad, tiles,
                                                  &v[0, dest, j * tiles],
                                                  v.strides[0] // sizeof(float))
        return bad == 0
    # by destination row, each written whole and in order: by source row, every line of v
    # would be written in pieces far apart in time
    for dest in prange(dests, nogil=True, num_threads=threads, schedule="static"):
        for j in range(group):
            r = _image_row(dest, rows_per_image, group, j)
            base = j * tiles
            for t in range(tiles):
                col = 4 * t - pad
                if col >= 0 and col + 6 <= width:
                    d0 = x[r, col]
                    d1 = x[r, col + 1]
                    d2 = x[r, col + 2]
                    d3 = x[r, col + 3]
                    d4 = x[r, col + 4]
                    d5 = x[r, col + 5]
                else:
                    d0 = x[r, col] if 0 <= col < width else 0
                    d1 = x[r, col + 1] if 0 <= col + 1 < width else 0
                    d2 = x[r, col + 2] if 0 <= col + 2 < width else 0
                    d3 = x[r, col + 3] if 0 <= col + 3 < width else 0
                    d4 = x[r, col + 4] if 0 <= col + 4 < width else 0
                    d5 = x[r, col + 5] if 0 <= col + 5 < width else 0
                v0 = F4 * d0 - F5 * d2 + d4
                v5 = F4 * d1 - F5 * d3 + d5
                nonfinite += (v0 + v5) * 0
                v[0, dest, base + t] = v0
                v[1, dest, base + t] = -F4 * (d1 + d2) + d3 + d4
                v[2, dest, base + t] = F4 * (d1 - d2) - d3 + d4
                v[3, dest, base + t] = F2 * (d3 - d1) + d4 - d2
                v[4, dest, base + t] = F2 * (d1 - d3) + d4 - d2
                v[5, dest, base + t] = v5
    return nonfinite == 0


def output_transform(const float[:, :, :] m, float[:, ::1] y, const float[::1] bias,
                     Py_ssize_t rows_per_channel, Py_ssize_t channels, Py_ssize_t group,
                     int threads):
    """``y[r, 4t + i] = (A^T m[:, row(r), column(r) + t])[i] + bias[channel of r]`` for every
    row ``r`` of ``y`` (rows, OW); ``m`` is (6, rows, group * T) in the grouped layout. Rows
    run over (image, channel, output row)."""
    cdef Py_ssize_t sources = m.shape[1], width = y.shape[1], tiles = m.shape[2] // group
    cdef Py_ssize_t rows_per_image = rows_per_channel * channels, r, t, col, j, src, base
    cdef float m0, m1, m2, m3, m4, m5, b, a13, s13, a24, s24
    cdef bint with_bias = bias is not None
    if sources and tiles and _rows_avx512(m.strides[2]):
        for src in prange(sources, nogil=True, num_threads=threads, schedule="static"):
            b = bias[(src // rows_per_channel) % channels] if with_bias else 0
            for j in range(group):
                r = _image_row(src, rows_per_image, group, j)
                convlab_winograd_output_row(&m[0, src, j * tiles], m.strides[0] // sizeof(float),
                                            tiles, b, &y[r, 0], width)
        return
    # by source row, each read whole and in order (see input_transform)
    for src in prange(sources, nogil=True, num_threads=threads, schedule="static"):
        b = bias[(src // rows_per_channel) % channels] if with_bias else 0
        for j in range(group):
            r = _image_row(src, rows_per_image, group, j)
            base = j * tiles
            for t in range(tiles):
                m0 = m[0, src, base + t]
                m1 = m[1, src, base + t]
                m2 = m[2, src, base + t]
                m3 = m[3, src, base + t]
                m4 = m[4, src, base + t]
                m5 = m[5, src, base + t]
                a13 = m1 + m2
                s13 = m1 - m2
                a24 = m3 + m4
                s24 = m3 - m4
                col = 4 * t
                y[r, col] = m0 + a13 + a24 + b
                if col + 1 < width:
                    y[r, col + 1] = s13 + F2 * s24 + b
                if col + 2 < width:
                    y[r, col + 2] = a13 + F4 * a24 + b
                if col + 3 < width:
                    y[r, col + 3] = s13 + F8 * s24 + m5 + b


def gradient_transform(const float[:, ::1] dy, float[:, :, :] t, Py_ssize_t rows_per_image,
                       Py_ssize_t group, int threads):
    """``t[xi, row(r), column(r) + k] = (A e)[xi]`` for the 4 output gradients
    ``e[i] = dy[r, 4k + i]`` (zero past the row), for every row ``r`` of ``dy`` (rows, OW) and
    tile ``k`` < T; ``t`` is (6, rows, group * T) in the grouped layout. This is the weight
    gradient's side of ``y = A^T [(G g) * (B^T d)]``, whose derivative in ``g`` is
    ``G^T [(A dy) * (B^T d)]``.

    Returns:
        True when every gradient read was finite (point 1 sums all four; see
        :func:`input_transform`).
    """
    cdef Py_ssize_t dests = t.shape[1], width = dy.shape[1], tiles = t.shape[2] // group
    cdef Py_ssize_t r, k, col, j, dest, base
    cdef float e0, e1, e2, e3, s02, s13, q02, q13
    cdef float nonfinite = 0
    cdef int bad = 0
    if dests and tiles and _rows_avx512(t.strides[2]):
        for dest in prange(dests, nogil=True, num_threads=threads, schedule="static"):
            for j in range(group):
                r = _image_row(dest, rows_per_image, group, j)
                bad += convlab_winograd_gradient_row(&dy[r, 0], width, tiles,
                                                     &t[0, dest, j * tiles],
                                                     t.strides[0] // sizeof(float))
        return bad == 0
    # by destination row (see input_transform)
    for dest in prange(dests, nogil=True, num_threads=threads, schedule="static"):
        for j in range(group):
            r = _image_row(dest, rows_per_image, group, j)
            base = j * tiles
            for k in range(tiles):
                col = 4 * k
                if col + 4 <= width:
                    e0 = dy[r, col]
                    e1 = dy[r, col + 1]
                    e2 = dy[r, col + 2]
                    e3 = dy[r, col + 3]
                else:
                    e0 = dy[r, col]
                    e1 = dy[r, col + 1] if col + 1 < width else 0
                    e2 = dy[r, col + 2] if col + 2 < width else 0
                    e3 = dy[r, col + 3] if col + 3 < width else 0
                s02 = e0 + e2
                s13 = e1 + e3
                q02 = e0 + F4 * e2
                q13 = F2 * e1 + F8 * e3
                nonfinite += (s02 + s13) * 0
                t[0, dest, base + k] = e0
                t[1, dest, base + k] = s02 + s13
                t[2, dest, base + k] = s02 - s13
                t[3, dest, base + k] = q02 + q13
                t[4, dest, base + k] = q02 - q13
                t[5, dest, base + k] = e3
    return nonfinite == 0


def weight_transform(const float[:, ::1] w, float[:, ::1] u, int threads):
    """``u[xi, r] = (G w[r])[xi]`` for every kernel row ``r`` of ``w`` (rows, 3) into ``u``
    (6, rows), in double before the one rounding to float."""
    cdef Py_ssize_t rows = w.shape[0], r
    cdef double w0, w1, w2, even, odd
    for r in prange(rows, nogil=True, num_threads=threads, schedule="static"):
        w0 = w[r, 0]
        w1 = w[r, 1]
        w2 = w[r, 2]
        even = w0 + w2
        odd = w0 / 24 + w2 / 6
        u[0, r] = <float>(w0 / 4)
        u[1, r] = <float>(-(even + w1) / 6)
        u[2, r] = <float>(-(even - w1) / 6)
        u[3, r] = <float>(odd + w1 / 12)
        u[4, r] = <float>(odd - w1 / 12)
        u[5, r] = <float>w2


def weight_gradient_transform(const float[:, ::1] du, float[:, ::1] dw, int threads):
    """``dw[r] = G^T du[:, r]`` for every kernel row ``r``: ``du`` (6, rows) holds the six
    transform points' sums, ``dw`` (rows, 3) the 3 taps; in double before the one rounding."""
    cdef Py_ssize_t rows = dw.shape[0], r
    cdef double d0, d1, d2, d3, d4, d5, a12, s12, a34, s34
    for r in prange(rows, nogil=True, num_threads=threads, schedule="static"):
        d0 = du[0, r]
        d1 = du[1, r]
        d2 = du[2, r]
        d3 = du[3, r]
        d4 = du[4, r]
        d5 = du[5, r]
        a12 = d1 + d2
        s12 = d2 - d1
        a34 = d3 + d4
        s34 = d3 - d4
        dw[r, 0] = <float>(d0 / 4 - a12 / 6 + a34 / 24)
        dw[r, 1] = <float>(s12 / 6 + s34 / 12)
        dw[r, 2] = <float>((a34 - a12) / 6 + d5)
