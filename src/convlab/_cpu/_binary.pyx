# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Convolution of 0/1 images by table lookup, parallel over images (``include/binary_conv.h``).

The tables are built here from the weights (``convlab._binary_patterns``); the loops only
see bytes, tables and sums. Two kernel sets: pixel-major AVX2 kernels for float32 with a
multiple of 8 output channels (the chart CNN's first layers), and row-wise generic C for
everything else. Images come as uint8 0/1 (N, C*H*W) or bit-packed per channel plane
(N, C*ceil(H*W/8)), the layout of :class:`convlab.data.ChartSet`. The operands arrive checked
and C-contiguous (``convlab._backend_base``).
"""
from cython.parallel cimport parallel, prange
from libc.stdint cimport int32_t, int64_t, uint8_t

import numpy as np

from convlab._binary_patterns import sub_row_tables, sum_row_runs, taps_from_histogram

from convlab._cpu._gemm cimport active_isa, real

cdef extern from "binary_conv.h" nogil:
    ctypedef struct convlab_bin_geom:
        int64_t C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW, WP, NSEG, R
    ctypedef struct convlab_bin_scratch:
        uint8_t* img
        int32_t* pat
        int32_t* live
        int64_t* n_live
        void* work
    convlab_bin_scratch* convlab_bin_scratch_new(const convlab_bin_geom*, size_t)
    void convlab_bin_scratch_free(convlab_bin_scratch*)
    int convlab_bin_image_patterns(const convlab_bin_geom*, const uint8_t*, int, uint8_t*,
                                   int32_t*, int32_t*, int64_t*)
    void convlab_bin_forward_row_f32(const convlab_bin_geom*, int64_t, int64_t, int64_t,
                                     const float*, const float*, const float*, const int32_t*,
                                     const int32_t*, int64_t, float*)
    void convlab_bin_forward_row_f64(const convlab_bin_geom*, int64_t, int64_t, int64_t,
                                     const double*, const double*, const double*,
                                     const int32_t*, const int32_t*, int64_t, double*)
    int convlab_bin_image_kernels(int, int64_t)
    void convlab_bin_forward_image_avx2_f32(const convlab_bin_geom*, int64_t, const float*,
                                            const float*, const float*, const int32_t*,
                                            const int32_t*, const int64_t*, float*, float*)
    void convlab_bin_wgrad_image_avx2_f32(const convlab_bin_geom*, int64_t, const float*,
                                          const int32_t*, int64_t, int32_t, const int32_t*,
                                          const int32_t*, const int64_t*, float*, float*,
                                          float*)
    void convlab_bin_wgrad_row_f32(const convlab_bin_geom*, int64_t, int64_t, const float*,
                                   const int32_t*, int64_t, const int32_t*, const int32_t*,
                                   int64_t, float*, float*, float*)
    void convlab_bin_wgrad_row_f64(const convlab_bin_geom*, int64_t, int64_t, const double*,
                                   const int32_t*, int64_t, const int32_t*, const int32_t*,
                                   int64_t, double*, double*, double*)

cdef enum:
    ISA_AVX2 = 1          # convlab_isa codes: 0 generic, 1 AVX2, 2 AVX-512
    FAILED_MEMORY = 1     # what the forward kernels report
    FAILED_PIXELS = 2
    # Images per weight-gradient block: each block sums into its own histogram and the blocks
    # are added in order, so the result does not depend on the thread count.
    WGRAD_BLOCK = 8
    # Output channels per pass of the row-wise forward: the output is written as a few
    # sequential streams (64 interleaved ones defeat the store buffers).
    FORWARD_CHANNELS = 4


cdef convlab_bin_geom _geom(tuple shape, tuple kernel, tuple stride, tuple padding,
                            tuple dilation, tuple out_hw):
    cdef convlab_bin_geom g
    g.C, g.H, g.W = shape
    g.KH, g.KW = kernel
    g.SH, g.SW = stride
    g.PH, g.PW = padding
    g.DH, g.DW = dilation
    g.OH, g.OW = out_hw
    g.WP = g.W + 2 * g.PW
    g.NSEG = (g.KW + 2) // 3
    g.R = g.C * g.KH * g.NSEG
    return g


cdef inline bint _pixel_major(Py_ssize_t cout) noexcept nogil:
    """Whether the AVX2 pixel-major image kernels (float32) apply."""
    return convlab_bin_image_kernels(active_isa() >= ISA_AVX2, cout)


cdef inline void _forward_row(convlab_bin_geom* g, Py_ssize_t oh, Py_ssize_t c0,
                              Py_ssize_t c1, const real* tables, const real* plane,
                              const real* bias, int32_t* pat, int32_t* live, Py_ssize_t n_live,
                              real* out) noexcept nogil:
    if real is float:
        convlab_bin_forward_row_f32(g, oh, c0, c1, tables, plane, bias, pat, live, n_live, out)
    else:
        convlab_bin_forward_row_f64(g, oh, c0, c1, tables, plane, bias, pat, live, n_live, out)


cdef inline void _wgrad_row(convlab_bin_geom* g, Py_ssize_t oh, Py_ssize_t cout,
                            const real* gout, const int32_t* cls, Py_ssize_t ncls,
                            int32_t* pat, int32_t* live, Py_ssize_t n_live, real* gt,
                            real* hist, real* colsum) noexcept nogil:
    if real is float:
        convlab_bin_wgrad_row_f32(g, oh, cout, gout, cls, ncls, pat, live, n_live, gt, hist,
                                  colsum)
    else:
        convlab_bin_wgrad_row_f64(g, oh, cout, gout, cls, ncls, pat, live, n_live, gt, hist,
                                  colsum)


cdef int _forward(convlab_bin_geom g, const uint8_t[:, ::1] x, bint packed,
                  const real[:, :, ::1] tables, const real* plane, const real[::1] bias,
                  bint by_pixel, real[:, :, :, ::1] out, int threads) noexcept nogil:
    """Returns FAILED_MEMORY when a thread could not get its scratch memory, FAILED_PIXELS
    when an image has a pixel other than 0 or 1; else 0. ``by_pixel``: the AVX2 kernels, with
    ``tables`` laid out (R, 8, Cout) and ``plane`` (OH, OW, Cout) (or NULL: ``bias``)."""
    cdef Py_ssize_t n_images = x.shape[0], cout = out.shape[1], n, oh, c0, cb
    cdef Py_ssize_t rows = g.R * g.OW
    cdef convlab_bin_scratch* s
    cdef int failed = 0
    cdef int* failed_at = &failed     # written through a pointer: shared, not thread-private
    with parallel(num_threads=threads):
        # work: the AVX2 kernels' (pixel, channel) tile of the output
        s = convlab_bin_scratch_new(&g, g.OH * g.OW * cout * sizeof(float) if by_pixel else 0)
        for n in prange(n_images, schedule="dynamic"):
            if s == NULL:
                failed_at[0] = FAILED_MEMORY
                continue
            if convlab_bin_image_patterns(&g, &x[n, 0], packed, s.img, s.pat, s.live,
                                          s.n_live):
                failed_at[0] = FAILED_PIXELS
                continue
            if real is float and by_pixel:
                convlab_bin_forward_image_avx2_f32(&g, cout, &tables[0, 0, 0], plane, &bias[0],
                                                   s.pat, s.live, s.n_live, <float*>s.work,
                                                   &out[n, 0, 0, 0])
                continue
            for cb in range((cout + FORWARD_CHANNELS - 1) // FORWARD_CHANNELS):
                c0 = cb * FORWARD_CHANNELS
                for oh in range(g.OH):
                    _forward_row(&g, oh, c0, min(cout, c0 + FORWARD_CHANNELS),
                                 &tables[0, 0, 0], plane, &bias[0], s.pat + oh * rows,
                                 s.live + oh * g.R, s.n_live[oh], &out[n, 0, 0, 0])
        convlab_bin_scratch_free(s)
    return failed


cdef int _raise_failure(int failed) except -1:
    """Turns a kernel's FAILED_* code into its error."""
    if failed == FAILED_PIXELS:
        raise ValueError("x: expected a binary image (every value 0 or 1); found other values "
                         "(use conv2d for general input)")
    if failed:
        raise MemoryError("binary_conv2d: out of memory for the per-thread scratch buffers")
    return 0


def forward(x, bint packed, weight, base_values, base_index, out, tuple shape, tuple kernel,
            tuple stride, tuple padding, tuple dilation, int threads):
    """Fill ``out`` (N, Cout, OH, OW) with the start values ``base_values[c, base_index[oh,
    ow]]`` plus the weights of the taps that see a 1, by table lookup.

    Args:
        x: uint8 images flattened per image, (N, C*H*W) or bit-packed (N, C*ceil(H*W/8)).
        weight: (Cout, C, KH, KW); base_values: (Cout, K) of its dtype; base_index: int32
            (OH, OW).
    """
    cdef convlab_bin_geom g = _geom(shape, kernel, stride, padding, dilation,
                                    tuple(out.shape[2:]))
    cdef const float[:, :, ::1] p32
    cdef const double[:, :, ::1] p64
    cdef int failed
    tables = sub_row_tables(weight, np)          # (Cout, R, 8)
    bias = np.ascontiguousarray(base_values[:, 0])
    plane = None
    by_pixel = out.dtype == np.float32 and _pixel_major(out.shape[1])
    if by_pixel:
        # the pixel-major kernels read the tables as (R, 8, Cout), the start values as
        # (OH, OW, Cout)
        tables = np.ascontiguousarray(tables.transpose(1, 2, 0))
        if base_values.shape[1] > 1:
            plane = np.ascontiguousarray(base_values.T[base_index])
    elif base_values.shape[1] > 1:
        plane = np.ascontiguousarray(base_values[:, base_index])
    if out.dtype == np.float32:
        p32 = plane
        failed = _forward[float](g, x, packed, tables,
                                 &p32[0, 0, 0] if plane is not None else NULL, bias, by_pixel,
                                 out, threads)
    else:
        p64 = plane
        failed = _forward[double](g, x, packed, tables,
                                  &p64[0, 0, 0] if plane is not None else NULL, bias, False,
                                  out, threads)
    _raise_failure(failed)


cdef int _histogram(convlab_bin_geom g, const uint8_t[:, ::1] x, bint packed,
                    const real[:, :, :, ::1] grad, const int32_t[::1] cls, int major,
                    real[:, :, :, ::1] hist, real[:, :, :, ::1] colsum,
                    int threads) noexcept nogil:
    """Returns FAILED_MEMORY when a thread could not get its scratch memory; else 0."""
    cdef Py_ssize_t n_images = x.shape[0], cout = grad.shape[1], ncls = colsum.shape[2]
    cdef Py_ssize_t n_blocks = hist.shape[0], b, n, oh
    cdef Py_ssize_t rows = g.R * g.OW
    cdef bint by_pixel = real is float and _pixel_major(cout)
    cdef convlab_bin_scratch* s
    cdef int failed = 0
    cdef int* failed_at = &failed
    with parallel(num_threads=threads):
        # work: the gradient transposed to (pixel, channel), a whole image or one row of it
        s = convlab_bin_scratch_new(&g, (g.OH if by_pixel else 1) * g.OW * cout * sizeof(real))
        for b in prange(n_blocks, schedule="dynamic"):
            if s == NULL:
                failed_at[0] = FAILED_MEMORY
                continue
            for n in range(b * WGRAD_BLOCK, min(n_images, (b + 1) * WGRAD_BLOCK)):
                convlab_bin_image_patterns(&g, &x[n, 0], packed, s.img, s.pat, s.live,
                                           s.n_live)
                if by_pixel:
                    convlab_bin_wgrad_image_avx2_f32(
                        &g, cout, <float*>&grad[n, 0, 0, 0], &cls[0], ncls, major, s.pat,
                        s.live, s.n_live, <float*>s.work, <float*>&hist[b, 0, 0, 0],
                        <float*>&colsum[b, 0, 0, 0])
                    continue
                for oh in range(g.OH):
                    _wgrad_row(&g, oh, cout, &grad[n, 0, 0, 0], &cls[0], ncls,
                               s.pat + oh * rows, s.live + oh * g.R, s.n_live[oh],
                               <real*>s.work, &hist[b, 0, 0, 0], &colsum[b, 0, 0, 0])
        convlab_bin_scratch_free(s)
    return failed


cdef int _major_class(const int32_t[::1] cls, int ncls) except -1:
    """The most frequent column class (the lowest of equals)."""
    counts = np.zeros(max(ncls, 1), np.int64)
    cdef int64_t[::1] c = counts
    cdef Py_ssize_t i, best = 0
    for i in range(cls.shape[0]):
        if 0 <= cls[i] < ncls:   # checked by the backend; never written out of bounds
            c[cls[i]] += 1
    for i in range(1, ncls):
        if c[i] > c[best]:
            best = i
    return <int>best


def weight_sums(x, bint packed, grad, cls, row_starts, taps, colsum, tuple shape,
                tuple kernel, tuple stride, tuple padding, tuple dilation, int threads):
    """Output gradients summed where each kernel tap sees a 1 into ``taps`` (Cout, C, KH, KW),
    and per run of output rows (``row_starts``) and column class (``cls``) into ``colsum``
    (runs, n_classes, Cout), from a histogram of the gradient by 3-tap pattern (R, 8, Cout)
    and per-row class sums."""
    n_images, cout, oh, ow = grad.shape
    cdef convlab_bin_geom g = _geom(shape, kernel, stride, padding, dilation, (oh, ow))
    cdef int ncls = colsum.shape[1]
    cdef int major = _major_class(cls, ncls)
    n_blocks = max(1, (n_images + WGRAD_BLOCK - 1) // WGRAD_BLOCK)
    hist = np.zeros((n_blocks, g.R, 8, cout), grad.dtype)
    rows = np.zeros((n_blocks, oh, ncls, cout), grad.dtype)
    if grad.dtype == np.float32:
        failed = _histogram[float](g, x, packed, grad, cls, major, hist, rows, threads)
    else:
        failed = _histogram[double](g, x, packed, grad, cls, major, hist, rows, threads)
    _raise_failure(failed)
    taps[...] = taps_from_histogram(hist.sum(axis=0), shape, kernel, np)
    colsum[...] = sum_row_runs(rows.sum(axis=0), row_starts, np)
