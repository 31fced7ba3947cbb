# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""im2col / col2im in PyTorch's ``unfold`` / ``fold`` layout ``(N, C*KH*KW, OH*OW)``.

Row ``k = (c*KH + kh)*KW + kw`` of the column matrix holds, for every output pixel
``p = oh*OW + ow``, the input value ``x[c, oh*SH - PH + kh*DH, ow*SW - PW + kw*DW]`` (zero outside
the image). ``im2col_fill`` writes any run of one row into any of the layouts the kernels need
(a plain row, NR-wide packed GEMM panels, a transposed panel), so the convolutions never build
the full column matrix.
"""
from cython.parallel cimport prange
from libc.string cimport memcpy, memset

from convlab._cpu._gemm cimport active_isa, real

cdef extern from "im2col_fill.h" nogil:
    ctypedef void (*convlab_fill_f32)(const float*, const ConvGeom*, Py_ssize_t, Py_ssize_t,
                                      Py_ssize_t, Py_ssize_t, Py_ssize_t, float*, Py_ssize_t,
                                      Py_ssize_t, Py_ssize_t, int) noexcept nogil
    ctypedef void (*convlab_fill_f64)(const double*, const ConvGeom*, Py_ssize_t, Py_ssize_t,
                                      Py_ssize_t, Py_ssize_t, Py_ssize_t, double*, Py_ssize_t,
                                      Py_ssize_t, Py_ssize_t, int) noexcept nogil
    convlab_fill_f32 convlab_fill_for_f32(int isa)
    convlab_fill_f64 convlab_fill_for_f64(int isa)
    ctypedef void (*convlab_gather_f32)(const float*, float*, Py_ssize_t, const Segment*,
                                        Py_ssize_t, int) noexcept nogil
    ctypedef void (*convlab_gather_f64)(const double*, double*, Py_ssize_t, const Segment*,
                                        Py_ssize_t, int) noexcept nogil
    convlab_gather_f32 convlab_gather_for_f32(int isa)
    convlab_gather_f64 convlab_gather_for_f64(int isa)
    Py_ssize_t convlab_segments(const ConvGeom* g, Py_ssize_t wp, Py_ssize_t p0,
                                Py_ssize_t count, Py_ssize_t panel, Segment* seg)
    void convlab_pad_plane_f32(const float* x, Py_ssize_t h, Py_ssize_t w, Py_ssize_t ph,
                               Py_ssize_t pw, float* out)
    void convlab_pad_plane_f64(const double* x, Py_ssize_t h, Py_ssize_t w, Py_ssize_t ph,
                               Py_ssize_t pw, double* out)


cdef ConvGeom make_geom(Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t KH, Py_ssize_t KW,
                        Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW,
                        Py_ssize_t DH, Py_ssize_t DW) noexcept nogil:
    cdef ConvGeom g
    g.C = C
    g.H = H
    g.W = W
    g.KH = KH
    g.KW = KW
    g.SH = SH
    g.SW = SW
    g.PH = PH
    g.PW = PW
    g.DH = DH
    g.DW = DW
    g.OH = (H + 2 * PH - DH * (KH - 1) - 1) // SH + 1
    g.OW = (W + 2 * PW - DW * (KW - 1) - 1) // SW + 1
    return g


cdef Py_ssize_t floor_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Floor division for b > 0 (C division truncates toward zero)."""
    cdef Py_ssize_t q = a // b
    return q - 1 if (a % b != 0 and a < 0) else q


# The valid-range helpers return one bound each (no output pointers): a variable assigned only
# through a pointer inside a prange body would be shared between the threads.
cdef Py_ssize_t taps_lo(const ConvGeom* g, Py_ssize_t oh) noexcept nogil:
    """First kernel row that lands inside the image for output row ``oh``."""
    cdef Py_ssize_t top = oh * g.SH - g.PH   # input row of kernel row 0
    return -floor_div(top, g.DH) if top < 0 else 0


cdef Py_ssize_t taps_hi(const ConvGeom* g, Py_ssize_t oh) noexcept nogil:
    """One past the last kernel row inside the image for output row ``oh`` (may be <= lo)."""
    cdef Py_ssize_t hi = floor_div(g.H - 1 - (oh * g.SH - g.PH), g.DH) + 1
    return g.KH if hi > g.KH else hi


cdef Py_ssize_t rows_lo(const ConvGeom* g, Py_ssize_t kh) noexcept nogil:
    """First output row for which kernel row ``kh`` lands inside the image."""
    cdef Py_ssize_t offset = kh * g.DH - g.PH   # input row of output row 0
    return -floor_div(offset, g.SH) if offset < 0 else 0


cdef Py_ssize_t rows_hi(const ConvGeom* g, Py_ssize_t kh) noexcept nogil:
    """One past the last such output row (may be <= ``rows_lo``)."""
    cdef Py_ssize_t hi = floor_div(g.H - 1 - (kh * g.DH - g.PH), g.SH) + 1
    return g.OH if hi > g.OH else hi


cdef inline Py_ssize_t _clamp(Py_ssize_t v, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    return lo if v < lo else (hi if v > hi else v)


cdef void im2col_fill(const real* plane, const ConvGeom* g, Py_ssize_t kh, Py_ssize_t kw,
                      Py_ssize_t oh, Py_ssize_t ow, Py_ssize_t count, real* dst, Py_ssize_t step,
                      Py_ssize_t panel, Py_ssize_t jump, bint slack) noexcept nogil:
    """Write ``count`` consecutive output pixels, from ``(oh, ow)`` on, of the column-matrix row
    of tap ``(c, kh, kw)`` to ``dst``; ``plane`` is channel ``c`` of the image.

    Consecutive pixels land ``step`` elements apart; after every ``panel`` pixels the
    destination skips ``jump`` more elements (how GEMM panels are laid out). The caller passes
    the start pixel as ``(oh, ow)`` and the tap unpacked: no divisions on this hot path.
    ``slack``: ``dst`` may be written up to one vector (64 bytes) past each run (true for our
    packing buffers, false for a caller's array). The work is done by
    ``include/im2col_fill.h``, compiled for each ISA.
    """
    if real is float:
        convlab_fill_for_f32(active_isa())(plane, g, kh, kw, oh, ow, count, dst, step, panel,
                                           jump, slack)
    else:
        convlab_fill_for_f64(active_isa())(plane, g, kh, kw, oh, ow, count, dst, step, panel,
                                           jump, slack)


# The fast path of the packing: copy the image once with its zero padding, cut the block's
# output pixels into runs once, then every tap is a short loop of vector copies
# (include/im2col_fill.h). Needs unit width stride and non-negative padding.
cdef bint can_gather(const ConvGeom* g) noexcept nogil:
    return g.SW == 1 and g.PH >= 0 and g.PW >= 0


cdef Py_ssize_t padded_size(const ConvGeom* g) noexcept nogil:
    """Elements of the padded copy of one image."""
    return g.C * (g.H + 2 * g.PH) * (g.W + 2 * g.PW)


cdef void pad_image(const real* x, const ConvGeom* g, real* out) noexcept nogil:
    cdef Py_ssize_t c, plane = (g.H + 2 * g.PH) * (g.W + 2 * g.PW)
    for c in range(g.C):
        if real is float:
            convlab_pad_plane_f32(x + c * g.H * g.W, g.H, g.W, g.PH, g.PW, out + c * plane)
        else:
            convlab_pad_plane_f64(x + c * g.H * g.W, g.H, g.W, g.PH, g.PW, out + c * plane)


cdef Py_ssize_t make_segments(const ConvGeom* g, Py_ssize_t p0, Py_ssize_t count,
                              Py_ssize_t panel, Segment* seg) noexcept nogil:
    """Runs of output pixels ``[p0, p0 + count)`` (at most ``count + count // panel + 1``)."""
    return convlab_segments(g, g.W + 2 * g.PW, p0, count, panel, seg)


cdef const real* tap_source(const real* xpad, const ConvGeom* g, Py_ssize_t c, Py_ssize_t kh,
                            Py_ssize_t kw) noexcept nogil:
    """Where tap ``(c, kh, kw)``'s segments start in the padded image ``xpad``."""
    cdef Py_ssize_t wp = g.W + 2 * g.PW
    return xpad + (c * (g.H + 2 * g.PH) + kh * g.DH) * wp + kw * g.DW


cdef void gather_tap(const real* xpad, const ConvGeom* g, Py_ssize_t c, Py_ssize_t kh,
                     Py_ssize_t kw, real* dst, Py_ssize_t stride, const Segment* seg,
                     Py_ssize_t n, bint slack) noexcept nogil:
    """The column-matrix row of tap ``(c, kh, kw)`` over the segments' pixels, from the padded
    image ``xpad``: run ``i`` lands at ``dst + seg[i].panel * stride + seg[i].offset``."""
    cdef const real* src = tap_source(xpad, g, c, kh, kw)
    if real is float:
        convlab_gather_for_f32(active_isa())(src, dst, stride, seg, n, slack)
    else:
        convlab_gather_for_f64(active_isa())(src, dst, stride, seg, n, slack)


cdef void col2im_add(const real* cols, Py_ssize_t ld, const ConvGeom* g, Py_ssize_t k0,
                     Py_ssize_t k1, Py_ssize_t p0, Py_ssize_t count, real* x) noexcept nogil:
    """Add rows ``k0..k1`` of a column block (pixels ``p0..p0+count``, row stride ``ld``) into
    image ``x``. The caller gives each image (or channel) to one thread, so the order of the
    sums is fixed: results are deterministic without atomics."""
    cdef Py_ssize_t k, kh, kw, oh, ow, ih, iw0, run, lo, hi, t, done
    cdef const real* src
    cdef real* plane
    cdef real* dst
    for k in range(k0, k1):
        kw = k % g.KW
        kh = (k // g.KW) % g.KH
        plane = x + (k // (g.KW * g.KH)) * g.H * g.W
        src = cols + (k - k0) * ld
        oh = p0 // g.OW
        ow = p0 % g.OW
        done = 0
        while done < count:
            run = g.OW - ow if g.OW - ow < count - done else count - done
            ih = oh * g.SH - g.PH + kh * g.DH
            iw0 = ow * g.SW - g.PW + kw * g.DW
            if 0 <= ih < g.H:
                dst = plane + ih * g.W
                if g.SW == 1:
                    # the output pixels of this run that land inside the row: one vector add
                    lo = _clamp(-iw0, 0, run)
                    hi = _clamp(g.W - iw0, lo, run)
                    for t in range(lo, hi):
                        dst[iw0 + t] += src[done + t]
                else:
                    for t in range(run):
                        if 0 <= iw0 + t * g.SW < g.W:
                            dst[iw0 + t * g.SW] += src[done + t]
            done += run
            ow = 0
            oh += 1


def im2col(const real[:, :, :, ::1] x, real[:, :, ::1] cols, int kh, int kw, int sh, int sw,
           int ph, int pw, int dh, int dw, int threads):
    """Fill ``cols`` (N, C*KH*KW, OH*OW) from ``x`` (N, C, H, W). Arguments are pre-checked."""
    cdef ConvGeom g = make_geom(x.shape[1], x.shape[2], x.shape[3], kh, kw, sh, sw, ph, pw,
                                dh, dw)
    cdef Py_ssize_t n_rows = cols.shape[1], P = cols.shape[2], row, n, k
    cdef Py_ssize_t total = x.shape[0] * n_rows
    if total == 0 or P == 0:
        return
    for row in prange(total, nogil=True, num_threads=threads, schedule="dynamic", chunksize=16):
        n = row // n_rows
        k = row % n_rows
        im2col_fill(&x[n, k // (kh * kw), 0, 0], &g, (k // kw) % kh, k % kw, 0, 0, P,
                    &cols[n, k, 0], 1, P, 0, False)


def col2im(const real[:, :, ::1] cols, real[:, :, :, ::1] x, int kh, int kw, int sh, int sw,
           int ph, int pw, int dh, int dw, int threads):
    """Sum ``cols`` (N, C*KH*KW, OH*OW) back into ``x`` (N, C, H, W), overwriting ``x``."""
    cdef ConvGeom g = make_geom(x.shape[1], x.shape[2], x.shape[3], kh, kw, sh, sw, ph, pw,
                                dh, dw)
    cdef Py_ssize_t C = x.shape[1], P = cols.shape[2], KK = kh * kw, plane, n, c
    cdef Py_ssize_t total = x.shape[0] * C
    if total == 0:
        return
    for plane in prange(total, nogil=True, num_threads=threads, schedule="dynamic", chunksize=16):
        n = plane // C
        c = plane % C
        memset(&x[n, c, 0, 0], 0, g.H * g.W * sizeof(real))
        if P > 0:
            col2im_add(&cols[n, c * KK, 0], P, &g, c * KK, (c + 1) * KK, 0, P, &x[n, 0, 0, 0])


# Row layout for small feature maps: one row per output pixel of the whole batch,
# (N*OH*OW, KH*KW*C), read from channels-last images. The taps are ordered (kh, kw, c), so
# every tap is one contiguous run of C values: a copy (or a zero fill in the padding) per tap
# instead of one strided element per tap and pixel.
def im2col_rows(const real[:, :, :, ::1] x_hwc, real[:, ::1] rows, int kh, int kw, int sh,
                int sw, int ph, int pw, int dh, int dw, Py_ssize_t n0, int i0, int i1, int j0,
                int j1, int threads):
    """Fill ``rows`` (n*OH*OW, taps*C) from images ``n0 .. n0 + n`` of ``x_hwc`` (N, H, W, C),
    for the kernel taps ``[i0, i1) x [j0, j1)`` only (the caller leaves out taps that fall in
    the padding for every pixel)."""
    cdef ConvGeom g = make_geom(x_hwc.shape[3], x_hwc.shape[1], x_hwc.shape[2], kh, kw, sh, sw,
                                ph, pw, dh, dw)
    cdef Py_ssize_t C = g.C, P = g.OH * g.OW, item, n, oh, ow, i, j, ih, iw, lo, hi
    cdef Py_ssize_t images = rows.shape[0] // P if P else 0, taps_w = j1 - j0
    cdef real* dst
    if images == 0 or rows.shape[1] == 0:
        return
    for item in prange(images * g.OH, nogil=True, num_threads=threads, schedule="static"):
        n = item // g.OH
        oh = item % g.OH
        for ow in range(g.OW):
            dst = &rows[n * P + oh * g.OW + ow, 0]
            for i in range(i0, i1):
                ih = oh * sh - ph + i * dh
                if ih < 0 or ih >= g.H:
                    memset(dst, 0, taps_w * C * sizeof(real))
                elif dw == 1:
                    # a kernel row is one run of taps_w * C values: copy its part on the image
                    iw = ow * sw - pw + j0
                    lo = _clamp(-iw, 0, taps_w)
                    hi = _clamp(g.W - iw, lo, taps_w)
                    if lo > 0:
                        memset(dst, 0, lo * C * sizeof(real))
                    if hi > lo:
                        memcpy(dst + lo * C, &x_hwc[n0 + n, ih, iw + lo, 0],
                               (hi - lo) * C * sizeof(real))
                    if hi < taps_w:
                        memset(dst + hi * C, 0, (taps_w - hi) * C * sizeof(real))
                else:
                    for j in range(j0, j1):
                        iw = ow * sw - pw + j * dw
                        if 0 <= iw < g.W:
                            memcpy(dst + (j - j0) * C, &x_hwc[n0 + n, ih, iw, 0],
                                   C * sizeof(real))
                        else:
                            memset(dst + (j - j0) * C, 0, C * sizeof(real))
                dst = dst + taps_w * C


def col2im_rows(const real[:, ::1] rows, real[:, :, :, ::1] dx_hwc, int kh, int kw, int sh,
                int sw, int ph, int pw, int dh, int dw, Py_ssize_t n0, int i0, int i1, int j0,
                int j1, int threads):
    """Sum ``rows`` (n*OH*OW, taps*C), taps ``[i0, i1) x [j0, j1)``, into images
    ``n0 .. n0 + n`` of ``dx_hwc`` (N, H, W, C), overwriting them. One thread per image:
    deterministic, no atomics."""
    cdef ConvGeom g = make_geom(dx_hwc.shape[3], dx_hwc.shape[1], dx_hwc.shape[2], kh, kw, sh,
                                sw, ph, pw, dh, dw)
    cdef Py_ssize_t C = g.C, P = g.OH * g.OW, n, oh, ow, i, j, ih, iw, c
    cdef Py_ssize_t images = rows.shape[0] // P if P else 0
    cdef const real* src
    cdef real* dst
    if images == 0:
        return
    for n in prange(images, nogil=True, num_threads=threads, schedule="static"):
        memset(&dx_hwc[n0 + n, 0, 0, 0], 0, g.H * g.W * C * sizeof(real))
        for oh in range(g.OH):
            for ow in range(g.OW):
                src = &rows[n * P + oh * g.OW + ow, 0]
                for i in range(i0, i1):
                    ih = oh * sh - ph + i * dh
                    for j in range(j0, j1):
                        iw = ow * sw - pw + j * dw
                        if 0 <= ih < g.H and 0 <= iw < g.W:
                            dst = &dx_hwc[n0 + n, ih, iw, 0]
                            for c in range(C):
                                dst[c] += src[c]
                        src = src + C


def to_channels_last(const real[:, :, :, ::1] x, real[:, :, :, ::1] out, int threads):
    """``out[n, h, w, c] = x[n, c, h, w]``, one (image, row) per work item."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t item, n, h, w, c
    for item in prange(N * H, nogil=True, num_threads=threads, schedule="static"):
        n = item // H
        h = item % H
        for c in range(C):
            for w in range(W):
                out[n, h, w, c] = x[n, c, h, w]


def from_channels_last(const real[:, :, :, ::1] x_hwc, real[:, :, :, ::1] out, int threads):
    """``out[n, c, h, w] = x_hwc[n, h, w, c]``, one (image, channel) plane per work item."""
    cdef Py_ssize_t N = out.shape[0], C = out.shape[1], H = out.shape[2], W = out.shape[3]
    cdef Py_ssize_t item, n, h, w, c
    for item in prange(N * C, nogil=True, num_threads=threads, schedule="static"):
        n = item // C
        c = item % C
        for h in range(H):
            for w in range(W):
                out[n, c, h, w] = x_hwc[n, h, w, c]
