# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Convolution of 0/1 images by table lookup, parallel over images.

Two kernel sets: the AVX-512 column kernels (``include/binary_columns.h``) for one-channel
images with column stride 1 -- the chart CNN's first layers -- and the generic sub-row
kernels (``include/binary_conv.h``) for everything else. The Python side
(``convlab._ops.binary``) builds the lookup tables from the weights and turns the per-tap
gradient sums into weight gradients; these loops only see bytes, tables and sums. Images are
given either as uint8 0/1 (N, C, H, W) or bit-packed per channel plane (N, C, ceil(H*W/8)),
the layout of :class:`convlab.data.ChartSet`.
"""
from cython.parallel cimport parallel, prange
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t

import math

import numpy as np

from convlab._binary_patterns import sum_row_runs, taps_from_histogram

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

cdef extern from "binary_columns.h" nogil:
    enum: CONVLAB_BINCOL_MAX_KH
    ctypedef struct convlab_bincol_wgrad_work:
        int32_t* cp
        float* bins
        float* runcls
    ctypedef struct convlab_bincol_base:
        const float* values
        const int32_t* index
        const float* plane
        const float* bias
    int convlab_bincol_applies(const convlab_bin_geom*, int)
    int convlab_bincol_wgrad_applies(const convlab_bin_geom*, int, int64_t)
    size_t convlab_bincol_forward_bytes(const convlab_bin_geom*)
    int64_t convlab_bincol_index_row(const convlab_bin_geom*)
    int32_t* convlab_bincol_index_at(const convlab_bin_geom*, void*, const float*)
    size_t convlab_bincol_wgrad_bytes(const convlab_bin_geom*, int64_t, int64_t, int64_t)
    convlab_bincol_wgrad_work* convlab_bincol_wgrad_work_init(const convlab_bin_geom*, int64_t,
                                                              int64_t, int64_t, void*)
    void convlab_bincol_wgrad_clear(const convlab_bin_geom*, int64_t, int64_t, int64_t,
                                    convlab_bincol_wgrad_work*)
    void convlab_bincol_class_masks(const convlab_bin_geom*, const int32_t*, int64_t, int32_t,
                                    int64_t, uint16_t*)
    int convlab_bin_fill(const convlab_bin_geom*, const uint8_t*, int, uint8_t*)
    void convlab_bincol_patterns(const convlab_bin_geom*, const uint8_t*, int32_t*)
    void convlab_bincol_column_patterns(const convlab_bin_geom*, const int32_t*, int32_t*)
    void convlab_bincol_group(const convlab_bin_geom*, convlab_bincol_wgrad_work*)
    void convlab_bincol_forward_image(const convlab_bin_geom*, int64_t, const float*,
                                      const convlab_bincol_base*, const int32_t*, int, float*)
    void convlab_bincol_wgrad_image(const convlab_bin_geom*, int64_t, const float*,
                                    const int32_t*, int64_t, int64_t, const uint16_t*, int64_t,
                                    convlab_bincol_wgrad_work*)
    void convlab_bincol_taps_from_bins(const convlab_bin_geom*, int64_t, const float*, float*)
    void convlab_bincol_class_sums(int64_t, const float*, int64_t, int64_t, int32_t, float*)
    void convlab_bincol_floor_write(float*, int64_t, int)
    float convlab_bincol_floor_read(const float*, int64_t)

cdef enum:
    ISA_AVX2 = 1          # convlab_isa codes: 0 generic, 1 AVX2, 2 AVX-512
    ISA_AVX512 = 2
    FAILED_MEMORY = 1     # what the forward kernels report
    FAILED_PIXELS = 2
    # Outputs larger than this (bytes) are written around the caches by the column kernels:
    # they would not stay cached for the next layer anyway. (The 5-day layer's 16 MB output
    # would fit a 32 MB third-level cache; written through it, neither the layer nor the
    # training step got faster: 3.1-3.2x / 1.19-1.24x against 3.1-3.7x / 1.19-1.26x.)
    STREAM_MIN_BYTES = 8 << 20
    # Images per weight-gradient block: each block sums into its own histogram and the blocks
    # are added in order, so the result does not depend on the thread count. (Each block ends
    # with a pass over its bins: with 4 images that was 5% of the 5-day weight sums; 8 leave
    # batch 128 sixteen blocks to share out.)
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
                  const float* tables_pc, const float* base_pc,
                  real[:, :, :, ::1] out, int threads) noexcept nogil:
    """Returns FAILED_MEMORY when a thread could not get its scratch memory, FAILED_PIXELS
    when an image has a pixel other than 0 or 1; else 0. The pixel-major kernels run where
    the caller laid out ``tables_pc`` for them (one decision per call: set_isa may run in
    another thread)."""
    cdef Py_ssize_t n_images = x.shape[0], cout = out.shape[1], n, oh, c0, cb
    cdef Py_ssize_t rows = g.R * g.OW
    cdef bint by_pixel = real is float and tables_pc != NULL
    cdef convlab_bin_scratch* s
    cdef int failed = 0
    cdef int* failed_at = &failed     # written through a pointer: shared, not thread-private
    with parallel(num_threads=threads):
        s = convlab_bin_scratch_new(&g, g.OH * g.OW * cout * sizeof(float) if by_pixel else 0)
        for n in prange(n_images, schedule="dynamic"):
            if s == NULL:
                failed_at[0] = FAILED_MEMORY
                continue
            if convlab_bin_image_patterns(&g, &x[n, 0], packed, s.img, s.pat, s.live,
                                          s.n_live):
                failed_at[0] = FAILED_PIXELS
                continue
            if by_pixel:
                convlab_bin_forward_image_avx2_f32(&g, cout, tables_pc, base_pc,
                                                   <float*>&bias[0], s.pat, s.live, s.n_live,
                                                   <float*>s.work, <float*>&out[n, 0, 0, 0])
                continue
            for cb in range((cout + FORWARD_CHANNELS - 1) // FORWARD_CHANNELS):
                c0 = cb * FORWARD_CHANNELS
                for oh in range(g.OH):
                    _forward_row(&g, oh, c0, min(cout, c0 + FORWARD_CHANNELS),
                                 &tables[0, 0, 0], plane, &bias[0], s.pat + oh * rows,
                                 s.live + oh * g.R, s.n_live[oh], &out[n, 0, 0, 0])
        convlab_bin_scratch_free(s)
    return failed


cdef inline bint _streams(size_t out_bytes) noexcept nogil:
    """Whether the column forward writes an output of this size around the caches."""
    return out_bytes > STREAM_MIN_BYTES


cdef inline bint _by_column(convlab_bin_geom* g) noexcept nogil:
    """Whether the AVX-512 column kernels (float32, ``binary_columns.h``) apply."""
    return convlab_bincol_applies(g, active_isa() >= ISA_AVX512)


cdef int _forward_columns(convlab_bin_geom g, const uint8_t[:, ::1] x, bint packed,
                          const float* tables, const convlab_bincol_base* start,
                          float[:, :, :, ::1] out, int threads) noexcept nogil:
    """Returns FAILED_MEMORY or FAILED_PIXELS as _forward does; else 0."""
    cdef Py_ssize_t n_images = x.shape[0], cout = out.shape[1], n
    cdef int stream = _streams(n_images * cout * g.OH * g.OW * sizeof(float))
    cdef int32_t* cp
    cdef int32_t* idx
    cdef convlab_bin_scratch* s
    cdef int failed = 0
    cdef int* failed_at = &failed
    with parallel(num_threads=threads):
        s = convlab_bin_scratch_new(&g, convlab_bincol_forward_bytes(&g))
        for n in prange(n_images, schedule="dynamic"):
            if s == NULL:
                failed_at[0] = FAILED_MEMORY
                continue
            cp = <int32_t*>s.work
            idx = convlab_bincol_index_at(&g, s.work, &out[n, 0, 0, 0])
            if convlab_bin_fill(&g, &x[n, 0], packed, s.img):
                failed_at[0] = FAILED_PIXELS
                continue
            convlab_bincol_patterns(&g, s.img, cp)
            convlab_bincol_column_patterns(&g, cp, idx)
            convlab_bincol_forward_image(&g, cout, tables, start, idx, stream,
                                         &out[n, 0, 0, 0])
        convlab_bin_scratch_free(s)
    return failed


def _column_tables(const float[:, :, ::1] tables, tuple kernel):
    """(Cout, KW, 32) float32 tables of the column kernels from the 3-tap sub-row tables of
    one input channel: entry p of column kw sums that column's weights at the set bits of p
    (bits from KH up count for nothing), in float64, lowest bit first."""
    cdef int kh = kernel[0], kw = kernel[1], segs = (kernel[1] + 2) // 3
    cdef Py_ssize_t cout = tables.shape[0], c
    cdef int j, i
    cdef double taps[5]
    out = np.empty((cout, kw, 32), np.float32)
    cdef float[:, :, ::1] o = out
    for c in range(cout):
        for j in range(kw):
            # a single-bit pattern's entry is that one tap's (scaled) weight
            for i in range(5):
                taps[i] = tables[c, i * segs + j // 3, 1 << (j % 3)] if i < kh else 0.0
            _pattern_sums(taps, &o[c, j, 0])
    return out


cdef inline void _pattern_sums(const double* taps, float* out) noexcept nogil:
    """out[p]: the sum of taps[i] over the set bits i of the 5-bit pattern p, in float64,
    lowest bit first, rounded to float32 (the column kernels' tables)."""
    cdef double sums[32]
    cdef int i, p, half
    # pattern p = 2^i + q (q < 2^i) sums pattern q and tap i. Bit by bit, the 2^i sums of one
    # bit are independent: pattern by pattern, each waited on a sum just stored (3x slower).
    sums[0] = 0.0
    for i in range(5):
        half = 1 << i
        for p in range(half):
            sums[half + p] = sums[p] + taps[i]
    for p in range(32):
        out[p] = <float>sums[p]


cdef int _raise_failure(int failed) except -1:
    """Turns a kernel's FAILED_* code into its error."""
    if failed == FAILED_PIXELS:
        raise ValueError("x: expected a binary image (every value 0 or 1); found other values "
                         "(use conv2d for general input)")
    if failed:
        raise MemoryError("binary_conv2d: out of memory for the per-thread scratch buffers")
    return 0


def memory_floor(float[::1] out, const float[::1] grad, int threads):
    """The column kernels' compulsory memory traffic alone, the benchmarks' yardstick for
    them: ``out`` written as the forward writes its output (streamed past the caches above
    STREAM_MIN_BYTES), then ``grad`` read once as the weight gradient reads it.

    Returns:
        The sum of ``grad`` (so that the reads are not optimised away).
    """
    cdef Py_ssize_t chunk = 1 << 16, c, n_out = out.shape[0], n_in = grad.shape[0]
    cdef int stream = active_isa() >= ISA_AVX512 and _streams(n_out * sizeof(float))
    cdef double total = 0.0
    with nogil:
        for c in prange((n_out + chunk - 1) // chunk, num_threads=threads, schedule="dynamic"):
            convlab_bincol_floor_write(&out[c * chunk], min(chunk, n_out - c * chunk), stream)
        for c in prange((n_in + chunk - 1) // chunk, num_threads=threads, schedule="dynamic"):
            total += convlab_bincol_floor_read(&grad[c * chunk], min(chunk, n_in - c * chunk))
    return total


def aligned_empty(shape, dtype, Py_ssize_t offset=0):
    """An uninitialised C-contiguous array whose data starts ``offset`` bytes past a 64-byte
    boundary (``offset`` a multiple of the item size)."""
    dtype = np.dtype(dtype)
    count = math.prod(shape) if isinstance(shape, (tuple, list)) else int(shape)
    buffer = np.empty(count * dtype.itemsize + 128, np.uint8)
    cdef uint8_t[::1] raw = buffer     # its address without numpy's ctypes object (slower)
    start = (offset % 64 + 64 - <Py_ssize_t>(<size_t>&raw[0] % 64)) % 64   # C's %: keep >= 0
    return buffer[start:start + count * dtype.itemsize].view(dtype).reshape(shape)


cdef tuple _column_base(base_values, base_index, const float* out, Py_ssize_t pixels):
    """The column kernels' start values: (Cout, 32) values and :func:`_column_index`."""
    cout, count = base_values.shape
    values = np.zeros((cout, 32), np.float32)
    values[:, :count] = base_values
    return values, _column_index(base_index, out, pixels)


cdef _column_index(base_index, const float* out, Py_ssize_t pixels):
    """Each output pixel's start value (row-major ``base_index``) with 16 of zero slack,
    placed at the offset within a cache line of ``out``'s (see convlab_bincol_base)."""
    cdef const int32_t[:, ::1] bi = base_index
    index = aligned_empty(pixels + 16, np.int32, (<size_t>out) % 64)
    cdef int32_t[::1] idx = index
    cdef Py_ssize_t i, j, ow = bi.shape[1]
    for i in range(bi.shape[0]):
        for j in range(ow):
            idx[i * ow + j] = bi[i, j]
    for i in range(pixels, pixels + 16):
        idx[i] = 0
    return index


def forward(x, bint packed, tables, base_values, base_index, bias, tuple shape, tuple kernel,
            tuple stride, tuple padding, tuple dilation, tuple out_hw, out, int threads):
    """Fill ``out`` (N, Cout, OH, OW) with the start values + the table lookups.

    Args:
        x: uint8 images flattened per image, (N, C*H*W) or bit-packed (N, C*ceil(H*W/8)).
        tables: (Cout, R, 8) lookup tables, R = C * KH * ceil(KW / 3).
        base_values, base_index: start value of output pixel (c, oh, ow) is
            ``base_values[c, base_index[oh, ow]]`` ((Cout, K) and (OH, OW) int32); with
            None, every pixel of channel c starts from ``bias[c]``.
    """
    cdef convlab_bin_geom g = _geom(shape, kernel, stride, padding, dilation, out_hw)
    cdef const float[:, :, ::1] p32
    cdef const double[:, :, ::1] p64
    cdef const float[:, :, ::1] t_pc
    cdef const float[:, :, ::1] b_pc
    cdef const float[:, ::1] v32
    cdef const int32_t[::1] i32
    cdef const float[::1] b32
    cdef convlab_bincol_base start
    cdef float[:, :, :, ::1] o32
    cdef int failed
    columns = out.dtype == np.float32 and _by_column(&g)
    few = base_values is not None and base_values.shape[1] <= 32
    # every path but the column kernels' lookup reads a full plane of start values
    plane = None
    if base_values is not None and not (columns and few):
        plane = np.ascontiguousarray(base_values[:, base_index])
    if columns:
        failed = 0
        if out.shape[0] and out.shape[1]:
            o32 = out
            start.values, start.index, start.plane = NULL, NULL, NULL
            if few:
                values, index = _column_base(base_values, base_index, &o32[0, 0, 0, 0],
                                             g.OH * g.OW)
                v32, i32 = values, index
                start.values, start.index = &v32[0, 0], &i32[0]
            elif plane is not None:
                p32 = plane
                start.plane = &p32[0, 0, 0]
            b32 = bias
            start.bias = &b32[0]
            t_pc = _column_tables(tables, kernel)
            failed = _forward_columns(g, x, packed, &t_pc[0, 0, 0], &start, o32, threads)
    elif out.dtype == np.float32:
        p32 = plane
        t_pc = b_pc = None
        if _pixel_major(out.shape[1]):
            # the pixel-major kernels read tables as (R, 8, Cout) and the base as (OH, OW, Cout)
            t_pc = np.ascontiguousarray(tables.transpose(1, 2, 0))
            if plane is not None:
                b_pc = np.ascontiguousarray(plane.transpose(1, 2, 0))
        failed = _forward[float](g, x, packed, tables,
                                 &p32[0, 0, 0] if p32 is not None else NULL, bias,
                                 &t_pc[0, 0, 0] if t_pc is not None else NULL,
                                 &b_pc[0, 0, 0] if b_pc is not None else NULL, out, threads)
    else:
        p64 = plane
        failed = _forward[double](g, x, packed, tables,
                                  &p64[0, 0, 0] if p64 is not None else NULL, bias, NULL, NULL,
                                  out, threads)
    _raise_failure(failed)
    return out


def layer_forward(x, bint packed, weight, bias, double zero_value, double std, run_taps,
                  base_index, tuple shape, tuple kernel, tuple stride, tuple padding,
                  tuple dilation, tuple out_hw, int threads):
    """The whole forward of a float32 binary layer on the column kernels, from its weights.

    Builds the lookup tables and start values in C loops and runs the kernels: the NumPy
    steps of the general path, cache-cold after the previous batch's gradient went through
    the caches, cost 0.2-0.3 ms a call on the 20-day layer.

    Args:
        x: uint8 images flattened per image (or bit-packed), as for :func:`forward`.
        weight: float32 (Cout, 1, KH, KW); bias: float32 (Cout,) or None.
        zero_value: What a black pixel is after normalising (``-mean / std``); the taps
            inside the image see it (the exact fold). std: The normalisation's scale.
        run_taps: float64 (runs, KH*KW): tap (i, j) inside for each run of output pixels
            ``base_index`` (OH, OW) int32 points to.

    Returns:
        The (N, Cout, OH, OW) output, or None when the column kernels do not apply (then
        use the general path).
    """
    cdef convlab_bin_geom g = _geom(shape, kernel, stride, padding, dilation, out_hw)
    if weight.dtype != np.float32 or not _by_column(&g) or run_taps.shape[0] > 32:
        return None
    cdef const float[:, :, :, ::1] w = weight
    cdef const double[:, ::1] rt = run_taps
    cdef Py_ssize_t cout = w.shape[0], n_runs = rt.shape[0], kh = g.KH, kw = g.KW
    cdef Py_ssize_t c, i, j, r, pixels = g.OH * g.OW
    cdef double taps[5]
    cdef double b, acc
    tables = np.empty((cout, kw, 32), np.float32)
    values = np.zeros((cout, 32), np.float32)
    starts = np.empty(cout, np.float32)
    cdef float[:, :, ::1] t = tables
    cdef float[:, ::1] v = values
    cdef float[::1] b32 = starts
    cdef const float[::1] bias_in
    if bias is not None:
        bias_in = bias
    for c in range(cout):
        b = bias_in[c] if bias is not None else 0.0
        b32[c] = <float>b
        # as the general path's tables: one tap's entry is float32(weight / std)
        for j in range(kw):
            for i in range(5):
                taps[i] = <float>(<double>w[c, 0, i, j] / std) if i < kh else 0.0
            _pattern_sums(taps, &t[c, j, 0])
        for r in range(n_runs):
            acc = 0.0
            for i in range(kh):
                for j in range(kw):
                    acc = acc + <double>w[c, 0, i, j] * rt[r, i * kw + j]
            v[c, r] = <float>(b + zero_value * acc)
    out = aligned_empty((x.shape[0], cout) + tuple(out_hw), np.float32)
    cdef float[:, :, :, ::1] o32 = out
    index = _column_index(base_index, &o32[0, 0, 0, 0] if o32.shape[0] else NULL, pixels)
    cdef int32_t[::1] idx = index
    cdef convlab_bincol_base start
    start.values, start.index, start.plane, start.bias = &v[0, 0], &idx[0], NULL, &b32[0]
    cdef int failed = 0
    if x.shape[0] and cout:
        failed = _forward_columns(g, x, packed, &t[0, 0, 0], &start, o32, threads)
    _raise_failure(failed)
    return out


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


cdef int _weight_sums_columns(convlab_bin_geom g, const uint8_t[:, ::1] x, bint packed,
                              const float[:, :, :, ::1] grad, int major,
                              const uint16_t[:, ::1] masks, const int32_t[::1] starts,
                              float[:, :, ::1] taps, float[:, :, :, ::1] colsum,
                              int threads) noexcept nogil:
    """Returns FAILED_MEMORY when a thread could not get its scratch memory; else 0.
    ``masks``: the lanes of the column classes other than ``major``
    (convlab_bincol_class_masks)."""
    cdef Py_ssize_t n_images = x.shape[0], cout = grad.shape[1], ncls = colsum.shape[2]
    cdef Py_ssize_t n_runs = starts.shape[0] - 1
    cdef Py_ssize_t n_blocks = taps.shape[0], b, n
    cdef convlab_bin_scratch* s
    cdef convlab_bincol_wgrad_work* w = NULL
    cdef int failed = 0
    cdef int* failed_at = &failed
    with parallel(num_threads=threads):
        s = convlab_bin_scratch_new(&g, convlab_bincol_wgrad_bytes(&g, cout, n_runs, ncls))
        w = convlab_bincol_wgrad_work_init(&g, cout, n_runs, ncls, s.work) if s != NULL \
            else NULL
        for b in prange(n_blocks, schedule="dynamic"):
            if s == NULL:
                failed_at[0] = FAILED_MEMORY
                continue
            convlab_bincol_wgrad_clear(&g, cout, n_runs, ncls, w)
            for n in range(b * WGRAD_BLOCK, min(n_images, (b + 1) * WGRAD_BLOCK)):
                convlab_bin_fill(&g, &x[n, 0], packed, s.img)
                convlab_bincol_patterns(&g, s.img, w.cp)
                convlab_bincol_group(&g, w)
                convlab_bincol_wgrad_image(&g, cout, &grad[n, 0, 0, 0], &starts[0], n_runs,
                                           ncls, &masks[0, 0], masks.shape[1], w)
            convlab_bincol_taps_from_bins(&g, cout, w.bins, &taps[b, 0, 0])
            convlab_bincol_class_sums(cout, w.runcls, n_runs, ncls, major, &colsum[b, 0, 0, 0])
        convlab_bin_scratch_free(s)
    return failed


def weight_sums(x, bint packed, grad, cls, int ncls, row_starts, tuple shape, tuple kernel,
                tuple stride, tuple padding, tuple dilation, int threads):
    """Output gradients summed per kernel tap where the input is 1, for the weight gradient.

    Args:
        row_starts: int32 boundaries of the runs of output rows the column-class sums are
            taken over: run r is rows ``row_starts[r] .. row_starts[r+1] - 1``.

    Returns:
        ``taps`` (Cout, C, KH, KW): the gradient summed over the output pixels whose input
        pixel under that tap is 1; ``colsum`` (runs, ncls, Cout): the gradient summed per run
        of output rows and column class ``cls[ow]``.
    """
    n_images, cout, oh, ow = grad.shape
    cdef convlab_bin_geom g = _geom(shape, kernel, stride, padding, dilation, (oh, ow))
    cdef const int32_t[::1] classes = cls
    cdef const int32_t[::1] starts = row_starts
    cdef uint16_t[:, ::1] masks
    cdef int major = _major_class(classes, ncls)
    if not (grad.dtype == np.float32 and
            convlab_bincol_wgrad_applies(&g, active_isa() >= ISA_AVX512, ncls)):
        hist, colsum = _histogram_sums(x, packed, grad, cls, ncls, major, g, threads)
        return (taps_from_histogram(hist, shape, kernel, np),
                sum_row_runs(colsum, row_starts, np))
    n_blocks = max(1, (n_images + WGRAD_BLOCK - 1) // WGRAD_BLOCK)
    taps = np.zeros((n_blocks, cout, g.KH * g.KW), np.float32)
    colsum = np.zeros((n_blocks, len(row_starts) - 1, ncls, cout), np.float32)
    cdef Py_ssize_t longest_run = 0, r
    for r in range(starts.shape[0] - 1):
        longest_run = max(longest_run, starts[r + 1] - starts[r])
    # at least one row, for the pointer
    masks = np.empty((max(ncls - 1, 1), (longest_run * g.OW + 15) // 16), np.uint16)
    convlab_bincol_class_masks(&g, &classes[0], ncls, major, masks.shape[1], &masks[0, 0])
    if n_images and cout:
        _raise_failure(_weight_sums_columns(g, x, packed, grad, major, masks, row_starts, taps,
                                            colsum, threads))
    _add_blocks(taps.reshape(n_blocks, -1))
    _add_blocks(colsum.reshape(n_blocks, -1))
    return taps[0].reshape(cout, 1, g.KH, g.KW), colsum[0]


def layer_weight_grad(x, bint packed, grad, cls, int ncls, row_starts, class_run_taps,
                      double zero_value, double std, tuple shape, tuple kernel, tuple stride,
                      tuple padding, tuple dilation, int threads):
    """Weight and bias gradients of a float32 binary layer (:func:`weight_sums`, then the
    normalisation fold in C loops instead of NumPy steps that run cache-cold).

    Args:
        class_run_taps: float64 (runs * ncls, KH*KW): tap (i, j) inside the image for each
            run of rows and column class (the exact fold), or None: every tap sees the black
            pixels (the fold into the weights).

    Returns:
        ``(grad_weight (Cout, 1, KH, KW), grad_bias (Cout,))``, float32; or None when the
        column kernels do not apply (then use the general path).
    """
    n_images, cout, oh, ow = grad.shape
    cdef convlab_bin_geom g = _geom(shape, kernel, stride, padding, dilation, (oh, ow))
    if grad.dtype != np.float32 or not _by_column(&g):
        return None
    taps, colsum = weight_sums(x, packed, grad, cls, ncls, row_starts, shape, kernel, stride,
                               padding, dilation, threads)
    cdef const float[:, ::1] t = taps.reshape(cout, -1)
    cdef const float[:, :, ::1] cs = colsum
    cdef const double[:, ::1] crt
    cdef bint exact = class_run_taps is not None
    if exact:
        crt = class_run_taps
    cdef Py_ssize_t n_runs = cs.shape[0], n_taps = g.KH * g.KW, c, r, k, i
    cdef double total, inside
    grad_weight = np.empty((cout, 1, g.KH, g.KW), np.float32)
    grad_bias = np.empty(cout, np.float32)
    cdef float[:, ::1] gw = grad_weight.reshape(cout, -1)
    cdef float[::1] gb = grad_bias
    for c in range(cout):
        total = 0.0
        for r in range(n_runs):
            for k in range(ncls):
                total = total + cs[r, k, c]
        gb[c] = <float>total
        for i in range(n_taps):
            if exact:   # the gradient summed where tap i is inside the image
                inside = 0.0
                for r in range(n_runs):
                    for k in range(ncls):
                        inside = inside + <double>cs[r, k, c] * crt[r * ncls + k, i]
            else:
                inside = total
            gw[c, i] = <float>(<double>t[c, i] / std + zero_value * inside)
    return grad_weight, grad_bias


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


cdef void _add_blocks(float[:, ::1] blocks) noexcept:
    """blocks[0] += blocks[1] + ... in block order (as numpy's sum over axis 0, ~7 us less)."""
    cdef Py_ssize_t b, i
    for b in range(1, blocks.shape[0]):
        for i in range(blocks.shape[1]):
            blocks[0, i] += blocks[b, i]


cdef tuple _histogram_sums(x, bint packed, grad, cls, int ncls, int major, convlab_bin_geom g,
                           int threads):
    """The generic kernels' pattern histogram (R, 8, Cout) and column-class sums."""
    n_images, cout, oh, ow = grad.shape
    n_blocks = max(1, (n_images + WGRAD_BLOCK - 1) // WGRAD_BLOCK)
    hist = np.zeros((n_blocks, g.R, 8, cout), grad.dtype)
    colsum = np.zeros((n_blocks, oh, ncls, cout), grad.dtype)
    failed = 0
    if n_images:
        if grad.dtype == np.float32:
            failed = _histogram[float](g, x, packed, grad, cls, major, hist, colsum, threads)
        else:
            failed = _histogram[double](g, x, packed, grad, cls, major, hist, colsum, threads)
    _raise_failure(failed)
    return hist.sum(axis=0), colsum.sum(axis=0)
