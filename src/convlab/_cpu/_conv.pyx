# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""2-D convolution as implicit GEMM: the GEMM engine fills its panels straight from the image
(``im2col_fill``), so no column matrix is ever built.

The GEMM depth runs over kernel taps in ``(kh, c, kw)`` order rather than PyTorch's
``(c, kh, kw)``: then, for a panel of output pixels, the taps that land in the image form one
contiguous depth range, and the micro-kernels skip the taps that only see zero padding. On the
chart CNN's short feature maps (4-13 rows under a 5-row kernel) that is 9-30 % of the work.

* forward, per image ``n``: ``Y[n] (Cout x P) = W (Cout x K) @ cols(X[n]) (K x P)``. W is packed
  once; B panels of ``KC x NC`` are packed per image and pixel block.
* weight gradient: ``dW^T (K x Cout) = sum_n cols(X[n]) (K x P) @ dY[n]^T (P x Cout)``. Rows of
  ``cols`` are filled MR at a time into a small buffer the kernel reads in place, so they are
  still in L1 when used; dY^T is packed once per pixel chunk. Each thread owns a contiguous range
  of images and a private dW, summed in thread order at the end: the result is deterministic for
  a given thread count.
* data gradient, two ways (the CPU backend picks by a cost estimate): with stride 1, the forward
  convolution of dY with the flipped, transposed weight (``flip_transpose``), which skips the
  padding taps; or ``dcols = W^T @ dY[n]`` in pixel chunks that fit the workspace budget, each
  summed back into dX[n] by ``col2im_add`` (any stride; cheaper when in_channels is small).
"""
from cython.parallel cimport prange
from libc.stdlib cimport calloc, free, malloc
from libc.stdint cimport uint32_t
from libc.string cimport memset

from convlab._cpu._gemm cimport (Tiling, bf16_panels, bf16_requested, buffer_alloc,
                                 macro_kernel, pack_a_full, pack_b, real, round_up, tiling_for)
from convlab._cpu._im2col cimport (ConvGeom, Segment, can_gather, col2im_add, gather_tap,
                                   im2col_fill, make_geom, make_segments, pad_image,
                                   padded_size, rows_hi, rows_lo, tap_source, taps_hi,
                                   taps_lo)
from convlab._cpu._openmp cimport omp_get_thread_num


cdef extern from "bf16_gather.h" nogil:
    void convlab_gather_pair_bf16(const float* src0, const float* src1, uint32_t* dst,
                                  Py_ssize_t stride, const Segment* seg, Py_ssize_t n)


cdef enum:
    # taps x outputs per block of the weight gradient's final reduction
    REDUCE_BLOCK = 16


cdef inline Py_ssize_t _cdiv(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return (a + b - 1) // b


cdef inline Py_ssize_t _clamp(Py_ssize_t v, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    return lo if v < lo else (hi if v > hi else v)


# Depth index k <-> tap (c, kh, kw) in (kh, c, kw) order. Functions rather than output
# pointers: variables assigned through pointers inside a prange body would be shared.
cdef inline Py_ssize_t _tap_kh(const ConvGeom* g, Py_ssize_t k) noexcept nogil:
    return k // (g.KW * g.C)


cdef inline Py_ssize_t _tap_c(const ConvGeom* g, Py_ssize_t k) noexcept nogil:
    return (k // g.KW) % g.C


cdef inline Py_ssize_t _tap_kw(const ConvGeom* g, Py_ssize_t k) noexcept nogil:
    return k % g.KW


cdef void _permute_weight(const real* w, Py_ssize_t cout, const ConvGeom* g,
                          real* out) noexcept nogil:
    """(cout, C, KH, KW) -> (cout, KH, C, KW): the GEMM depth order."""
    cdef Py_ssize_t o, c, kh, kw
    for o in range(cout):
        for c in range(g.C):
            for kh in range(g.KH):
                for kw in range(g.KW):
                    out[((o * g.KH + kh) * g.C + c) * g.KW + kw] = \
                        w[((o * g.C + c) * g.KH + kh) * g.KW + kw]


cdef void _pack_cols_panels(const real* x, const real* xpad, const ConvGeom* g, Py_ssize_t k0,
                            Py_ssize_t kc, Py_ssize_t row_lo, Py_ssize_t row_hi, Py_ssize_t p0,
                            Py_ssize_t nc, const Segment* seg, Py_ssize_t nseg, real* out,
                            Py_ssize_t pw, Py_ssize_t nr) noexcept nogil:
    """Rows ``[row_lo, row_hi)`` of the block cols(x)[k0:k0+kc, p0:p0+nc] -> B panels of ``pw``
    pixels each, laid out NR wide as ``pack_b`` does. Columns past ``pw`` and rows outside the
    range are left untouched: the micro-kernel never stores results that depend on them.

    With a padded copy ``xpad`` (not NULL) the rows are gathered along the ``seg`` runs;
    otherwise each is filled from ``x`` with the border checks of ``im2col_fill``.
    """
    cdef Py_ssize_t kk, oh = p0 // g.OW, ow = p0 % g.OW
    cdef Py_ssize_t c = _tap_c(g, k0 + row_lo), kh = _tap_kh(g, k0 + row_lo)
    cdef Py_ssize_t kw = _tap_kw(g, k0 + row_lo)
    cdef bint slack
    for kk in range(row_lo, row_hi):
        # a row's spill lands in the next row of its panel, rewritten after it; the last row
        # of a panel would spill into the next panel, packed already: no slack there
        slack = kk != kc - 1
        if xpad != NULL:
            gather_tap(xpad, g, c, kh, kw, out + kk * nr, kc * nr, seg, nseg, slack)
        else:
            im2col_fill(x + c * g.H * g.W, g, kh, kw, oh, ow, nc, out + kk * nr, 1, pw,
                        kc * nr - pw, slack)
        # next tap in (kh, c, kw) order
        kw += 1
        if kw == g.KW:
            kw = 0
            c += 1
            if c == g.C:
                c = 0
                kh += 1


cdef inline const float* _tap_source(const float* xpad, const ConvGeom* g,
                                     Py_ssize_t k) noexcept nogil:
    """Where depth row ``k``'s tap starts in the padded image."""
    return tap_source(xpad, g, _tap_c(g, k), _tap_kh(g, k), _tap_kw(g, k))


cdef void _pack_pairs_bf16(const float* xpad, const ConvGeom* g, Py_ssize_t k0, Py_ssize_t kc,
                           Py_ssize_t row_lo, Py_ssize_t row_hi, const Segment* seg,
                           Py_ssize_t nseg, float* out, Py_ssize_t nr) noexcept nogil:
    """``_pack_cols_panels`` then ``bf16_panels`` in one pass, for the gather path: the depth
    pairs that hold rows ``[row_lo, row_hi)`` of the block, straight in the bfloat16 pair layout
    (a row outside the range, or past an odd depth, as zeros)."""
    cdef Py_ssize_t p, k
    cdef const float* src0
    cdef const float* src1
    for p in range(row_lo // 2, (row_hi + 1) // 2):
        k = 2 * p
        src0 = _tap_source(xpad, g, k0 + k) if k >= row_lo else NULL
        src1 = _tap_source(xpad, g, k0 + k + 1) if k + 1 < row_hi else NULL
        convlab_gather_pair_bf16(src0, src1, <uint32_t*>out + p * nr, kc * nr, seg, nseg)


cdef void _pixel_panel_depths(const ConvGeom* g, Py_ssize_t p0, Py_ssize_t nc, Py_ssize_t pw,
                              Py_ssize_t* depth) noexcept nogil:
    """Per panel of ``pw`` pixels, the depth range ``[lo, hi)`` of taps that can be non-zero."""
    cdef Py_ssize_t q, first, last, lo, hi, per_kh = g.C * g.KW
    for q in range(_cdiv(nc, pw)):
        first = (p0 + q * pw) // g.OW
        last = (p0 + (q * pw + pw if q * pw + pw < nc else nc) - 1) // g.OW
        # lower output rows need later kernel rows: the union is [lo(last row), hi(first row))
        lo = taps_lo(g, last)
        hi = taps_hi(g, first)
        depth[2 * q] = lo * per_kh
        depth[2 * q + 1] = hi * per_kh if hi > lo else lo * per_kh


cdef int forward_core(const real* x, Py_ssize_t N, ConvGeom g, const real* w, Py_ssize_t cout,
                      const real* bias, real* y, int threads, bint bf16) noexcept nogil:
    """y (N, cout, OH, OW) = conv(x (N, C, H, W), w (cout, C, KH, KW)) + bias. -1: no memory.
    ``bf16``: float32 products in bfloat16 (where the CPU can)."""
    cdef Tiling t = tiling_for(sizeof(real), bf16)
    cdef Py_ssize_t K = g.C * g.KH * g.KW, P = g.OH * g.OW, rows = round_up(cout, t.mr)
    cdef Py_ssize_t blocks, ncb, panels, per_thread, item, n, p0, nc, pc, kc, co, j, q, pw
    cdef Py_ssize_t pc_block, k_first, k_last, pad_len, seg_cap, nseg
    cdef bint gather = can_gather(&g)
    cdef bint pairs
    cdef Segment* segs_all
    cdef Segment* segs
    cdef real* xpad
    cdef real* wperm
    cdef real* wpack
    cdef real* buffers
    cdef real* bbuf
    cdef real* yn
    cdef const real* xn
    cdef Py_ssize_t* depth_all
    cdef Py_ssize_t* depth
    cdef Py_ssize_t* local
    # Maps narrower than a panel get panels of whole rows: each panel's taps are skipped for
    # exactly its rows, and it packs as a few whole-row copies.
    pw = t.nr if g.OW >= t.nr else (t.nr // g.OW) * g.OW
    # pixel blocks: big enough to amortise the weight panels, enough of them for all threads
    blocks = _cdiv(P, t.nc)
    if N * blocks < threads:
        blocks = _cdiv(threads, N)
        if blocks > _cdiv(P, pw):
            blocks = _cdiv(P, pw)
    ncb = round_up(_cdiv(P, blocks), pw)
    blocks = _cdiv(P, ncb)
    panels = ncb // pw
    per_thread = round_up(t.kc * panels * t.nr, 16)
    pad_len = round_up(padded_size(&g), 16) if gather else 0
    seg_cap = ncb + panels + 2
    wperm = <real*>malloc(cout * K * sizeof(real))
    wpack = <real*>buffer_alloc(rows * K * sizeof(real))
    buffers = <real*>buffer_alloc(threads * (per_thread + pad_len) * sizeof(real))
    depth_all = <Py_ssize_t*>malloc(threads * 4 * panels * sizeof(Py_ssize_t))
    segs_all = <Segment*>malloc(threads * seg_cap * sizeof(Segment))
    if (wperm == NULL or wpack == NULL or buffers == NULL or depth_all == NULL
            or segs_all == NULL):
        free(wperm)
        free(wpack)
        free(buffers)
        free(depth_all)
        free(segs_all)
        return -1
    # never-packed panel columns are computed on (and their results dropped): keep them finite.
    # Panels narrower than NR leave columns unpacked in every panel: zero all once. Full-width
    # panels leave only a block's partial last panel: zeroed below as it is packed (zeroing
    # the whole buffer cost a pass over megabytes per call, six calls per Winograd chunk).
    if pw < t.nr:
        memset(buffers, 0, threads * (per_thread + pad_len) * sizeof(real))
    _permute_weight(w, cout, &g, wperm)
    pack_a_full(wperm, K, 1, cout, K, wpack, t)
    free(wperm)
    # dynamic: on a shared machine one thread may get less CPU; no sums cross items
    for item in prange(N * blocks, num_threads=threads, schedule="dynamic"):
        n = item // blocks
        p0 = (item % blocks) * ncb
        nc = ncb if P - p0 >= ncb else P - p0
        bbuf = buffers + omp_get_thread_num() * (per_thread + pad_len)
        depth = depth_all + omp_get_thread_num() * 4 * panels
        local = depth + 2 * panels
        xn = x + n * g.C * g.H * g.W
        yn = y + n * cout * P
        _pixel_panel_depths(&g, p0, nc, pw, depth)
        xpad = NULL
        segs = NULL
        nseg = 0
        if gather:
            xpad = bbuf + per_thread
            segs = segs_all + omp_get_thread_num() * seg_cap
            pad_image(xn, &g, xpad)
            nseg = make_segments(&g, p0, nc, pw, segs)
        for pc_block in range(_cdiv(K, t.kc)):
            pc = pc_block * t.kc
            kc = t.kc if K - pc >= t.kc else K - pc
            k_first = kc
            k_last = 0
            for q in range(_cdiv(nc, pw)):
                local[2 * q] = _clamp(depth[2 * q] - pc, 0, kc)
                local[2 * q + 1] = _clamp(depth[2 * q + 1] - pc, 0, kc)
                if local[2 * q + 1] > local[2 * q]:
                    k_first = local[2 * q] if local[2 * q] < k_first else k_first
                    k_last = local[2 * q + 1] if local[2 * q + 1] > k_last else k_last
            if pw == t.nr and nc % pw:
                memset(bbuf + (nc // pw) * kc * t.nr, 0, kc * t.nr * sizeof(real))
            # rows no panel reads are left unpacked
            pairs = False
            if real is float:
                if gather and t.bf16 != NULL:
                    _pack_pairs_bf16(xpad, &g, pc, kc, k_first, k_last, segs, nseg, bbuf, t.nr)
                    pairs = True
            if not pairs:
                _pack_cols_panels(xn, xpad, &g, pc, kc, k_first, k_last, p0, nc, segs, nseg,
                                  bbuf, pw, t.nr)
                # rows left unpacked hold stale values: the bf16 pairs must read them as zeros
                bf16_panels(bbuf, _cdiv(nc, pw), kc, t.nr, k_first, k_last, t)
            macro_kernel(cout, nc, kc, wpack + rows * pc, 0, bbuf, pw, yn + p0, P, pc > 0,
                         NULL, local, NULL, t)
        if bias != NULL:
            for co in range(cout):
                for j in range(p0, p0 + nc):
                    yn[co * P + j] += bias[co]
    free(wpack)
    free(buffers)
    free(depth_all)
    free(segs_all)
    return 0


cdef int backward_weight_core(const real* dy, const real* x, Py_ssize_t N, ConvGeom g,
                              Py_ssize_t cout, real* dw, real* db, int threads,
                              bint bf16) noexcept nogil:
    """dw (cout, C, KH, KW) and db (cout) or NULL from dy (N, cout, OH, OW), x (N, C, H, W).
    ``bf16``: float32 products in bfloat16, summed in float32 (the bias gradient stays
    float32 throughout)."""
    cdef Tiling t = tiling_for(sizeof(real), bf16)
    cdef Py_ssize_t K = g.C * g.KH * g.KW, P = g.OH * g.OW, depth_step = t.kc
    cdef Py_ssize_t splits, chunk, items, used, acc_len, bbuf_len, rows_len, buf_len
    cdef Py_ssize_t tid, item, first, last, n, pstart, pend, pc, kc, co, j, i, pc_block
    cdef Py_ssize_t k0, mc, r, k, ir_block, o, pad_len, seg_cap, nseg = 0
    cdef Py_ssize_t i0_block, i0, o0_block, o0
    cdef bint gather = can_gather(&g)
    cdef Segment* segs_all
    cdef Segment* segs
    cdef real* xpad
    cdef Py_ssize_t* ranges
    cdef Py_ssize_t* depth
    cdef real* acc
    cdef real* buffers
    cdef real* mine
    cdef real* bbuf
    cdef real* arows
    cdef real* abuf
    cdef const real* dyn
    cdef const real* xn
    cdef real total
    # split each image's pixels only when there are fewer images than threads
    splits = 1 if N >= threads else _cdiv(threads, N)
    if splits > P:
        splits = P if P > 0 else 1
    chunk = _cdiv(P, splits)
    items = N * splits
    used = threads if items >= threads else items
    if used < 1:
        used = 1
    acc_len = round_up(K * cout + cout, 16)
    bbuf_len = round_up(depth_step * round_up(cout, t.nr), 16)
    rows_len = round_up(t.mr * depth_step, 16)
    pad_len = round_up(padded_size(&g), 16) if gather else 0
    buf_len = bbuf_len + 2 * rows_len + pad_len
    seg_cap = depth_step + 2
    acc = <real*>calloc(used * acc_len, sizeof(real))
    buffers = <real*>buffer_alloc(used * buf_len * sizeof(real))
    ranges = <Py_ssize_t*>malloc(used * 2 * sizeof(Py_ssize_t))
    segs_all = <Segment*>malloc(used * seg_cap * sizeof(Segment))
    if acc == NULL or buffers == NULL or ranges == NULL or segs_all == NULL:
        free(acc)
        free(buffers)
        free(ranges)
        free(segs_all)
        return -1
    for tid in prange(used, num_threads=used, schedule="static", chunksize=1):
        mine = acc + tid * acc_len
        depth = ranges + 2 * tid
        bbuf = buffers + tid * buf_len
        arows = bbuf + bbuf_len
        abuf = arows + rows_len
        xpad = abuf + rows_len
        segs = segs_all + tid * seg_cap
        first = tid * items // used
        last = (tid + 1) * items // used
        for item in range(first, last):
            n = item // splits
            pstart = (item % splits) * chunk
            pend = pstart + chunk if pstart + chunk < P else P
            dyn = dy + n * cout * P
            xn = x + n * g.C * g.H * g.W
            if gather:
                pad_image(xn, &g, xpad)
            for pc_block in range(_cdiv(pend - pstart, depth_step)):
                pc = pstart + pc_block * depth_step
                kc = depth_step if pend - pc >= depth_step else pend - pc
                if gather:
                    nseg = make_segments(&g, pc, kc, kc, segs)
                # B = dY[n][:, pc:pc+kc]^T, packed once per chunk and reused for all taps
                pack_b(dyn + pc, 1, P, kc, cout, bbuf, t.nr)
                bf16_panels(bbuf, _cdiv(cout, t.nr), kc, t.nr, 0, kc, t)
                for ir_block in range(_cdiv(K, t.mr)):
                    k0 = ir_block * t.mr
                    mc = t.mr if K - k0 >= t.mr else K - k0
                    # pixels this panel's kernel rows can see: [lo(last kh), hi(first kh))
                    depth[0] = _clamp(rows_lo(&g, _tap_kh(&g, k0 + mc - 1)) * g.OW - pc, 0, kc)
                    depth[1] = _clamp(rows_hi(&g, _tap_kh(&g, k0)) * g.OW - pc, 0, kc)
                    if depth[1] <= depth[0]:
                        continue
                    for r in range(mc):
                        k = k0 + r
                        if gather:
                            gather_tap(xpad, &g, _tap_c(&g, k), _tap_kh(&g, k), _tap_kw(&g, k),
                                       arows + r * depth_step, 0, segs, nseg, True)
                        else:
                            im2col_fill(xn + _tap_c(&g, k) * g.H * g.W, &g, _tap_kh(&g, k),
                                        _tap_kw(&g, k), pc // g.OW, pc % g.OW, kc,
                                        arows + r * depth_step, 1, kc, 0, True)
                    macro_kernel(mc, cout, kc, arows, depth_step, bbuf, t.nr, mine + k0 * cout,
                                 cout, True, depth, NULL, abuf, t)
            if db != NULL:
                for co in range(cout):
                    total = 0
                    for j in range(pstart, pend):
                        total = total + dyn[co * P + j]
                    mine[K * cout + co] += total
    # sum the private accumulators in thread order (deterministic) and undo the tap order,
    # in blocks of REDUCE_BLOCK taps x REDUCE_BLOCK outputs: both sides' lines stay in L1 (a
    # loop over one output's taps reads a line per tap, cout apart, and cost more than the
    # products on a chunk of a few images)
    for i0_block in prange(_cdiv(K, REDUCE_BLOCK), num_threads=threads, schedule="static"):
        i0 = i0_block * REDUCE_BLOCK
        for o0_block in range(_cdiv(cout, REDUCE_BLOCK)):
            o0 = o0_block * REDUCE_BLOCK
            for i in range(i0, i0 + REDUCE_BLOCK if K - i0 >= REDUCE_BLOCK else K):
                k = (_tap_c(&g, i) * g.KH + _tap_kh(&g, i)) * g.KW + _tap_kw(&g, i)
                for o in range(o0, o0 + REDUCE_BLOCK if cout - o0 >= REDUCE_BLOCK else cout):
                    total = 0
                    for tid in range(used):
                        total = total + acc[tid * acc_len + i * cout + o]
                    dw[o * K + k] = total
    if db != NULL:
        for o in range(cout):
            total = 0
            for tid in range(used):
                total = total + acc[tid * acc_len + K * cout + o]
            db[o] = total
    free(acc)
    free(buffers)
    free(ranges)
    free(segs_all)
    return 0


cdef int backward_data_gemm_core(const real* dy, const real* w, Py_ssize_t N, ConvGeom g,
                                 Py_ssize_t cout, real* dx, Py_ssize_t workspace_elems,
                                 int threads, bint bf16) noexcept nogil:
    """dx (N, C, H, W) for any stride: dcols = W^T @ dY[n] per pixel chunk, then col2im.

    W^T is packed once for all images; each chunk packs only dY's (cout x chunk) block, so
    packing is cheap when the maps are small and the taps many.
    """
    cdef Tiling t = tiling_for(sizeof(real), bf16)
    cdef Py_ssize_t K = g.C * g.KH * g.KW, P = g.OH * g.OW, rows = round_up(K, t.mr)
    cdef Py_ssize_t chunk, cols_len, bbuf_len, per_thread, n, p0, cnt, chunk_block, pc, kc
    cdef Py_ssize_t pc_block
    cdef real* wt_pack
    cdef real* buffers
    cdef real* cols
    cdef real* bbuf
    chunk = workspace_elems // (threads * K) if K > 0 else P
    if chunk > P:
        chunk = P
    if chunk < 1:
        chunk = 1
    cols_len = round_up(K * chunk, 16)
    bbuf_len = round_up(t.kc * round_up(chunk, t.nr), 16)
    per_thread = cols_len + bbuf_len
    wt_pack = <real*>buffer_alloc(rows * cout * sizeof(real))
    buffers = <real*>buffer_alloc(threads * per_thread * sizeof(real))
    if wt_pack == NULL or buffers == NULL:
        free(wt_pack)
        free(buffers)
        return -1
    # A = W^T (K x cout): element (k, o) is w[o * K + k]
    pack_a_full(w, 1, K, K, cout, wt_pack, t)
    for n in prange(N, num_threads=threads, schedule="dynamic"):
        cols = buffers + omp_get_thread_num() * per_thread
        bbuf = cols + cols_len
        memset(dx + n * g.C * g.H * g.W, 0, g.C * g.H * g.W * sizeof(real))
        for chunk_block in range(_cdiv(P, chunk)):
            p0 = chunk_block * chunk
            cnt = chunk if P - p0 >= chunk else P - p0
            for pc_block in range(_cdiv(cout, t.kc)):
                pc = pc_block * t.kc
                kc = t.kc if cout - pc >= t.kc else cout - pc
                pack_b(dy + n * cout * P + pc * P + p0, P, 1, kc, cnt, bbuf, t.nr)
                bf16_panels(bbuf, _cdiv(cnt, t.nr), kc, t.nr, 0, kc, t)
                macro_kernel(K, cnt, kc, wt_pack + rows * pc, 0, bbuf, t.nr, cols, cnt, pc > 0,
                             NULL, NULL, NULL, t)
            col2im_add(cols, cnt, &g, 0, K, p0, cnt, dx + n * g.C * g.H * g.W)
    free(wt_pack)
    free(buffers)
    return 0


cdef bint _bf16(object request, Py_ssize_t itemsize):
    """A ``bf16`` argument (None: the precision switch) as the kernels take it."""
    if request is None:
        return bf16_requested(itemsize)
    return bool(request) and itemsize == 4


def flip_transpose(const real[:, :, :, ::1] w, real[:, :, :, ::1] out):
    """out[i, o, kh, kw] = w[o, i, KH-1-kh, KW-1-kw]: the weight of the transposed conv."""
    cdef Py_ssize_t O = w.shape[0], I = w.shape[1], KH = w.shape[2], KW = w.shape[3]
    cdef Py_ssize_t o, i, kh, kw
    with nogil:
        for o in range(O):
            for i in range(I):
                for kh in range(KH):
                    for kw in range(KW):
                        out[i, o, kh, kw] = w[o, i, KH - 1 - kh, KW - 1 - kw]


def conv2d_forward(const real[:, :, :, ::1] x, const real[:, :, :, ::1] w, const real[::1] bias,
                   real[:, :, :, ::1] y, int sh, int sw, int ph, int pw, int dh, int dw,
                   int threads, bf16=None):
    """Fill ``y`` with the convolution of ``x`` and ``w`` (+ ``bias``, may be None).

    Arguments are checked by the caller; padding may be negative (cropping). ``bf16``:
    float32 products in bfloat16 (True), float32 (False) or as the precision switch says
    (None).
    """
    cdef bint use_bf16 = _bf16(bf16, sizeof(real))
    cdef ConvGeom g = make_geom(x.shape[1], x.shape[2], x.shape[3], w.shape[2], w.shape[3],
                                sh, sw, ph, pw, dh, dw)
    cdef const real* bias_ptr = &bias[0] if bias is not None else NULL
    cdef int status
    with nogil:
        status = forward_core(&x[0, 0, 0, 0], x.shape[0], g, &w[0, 0, 0, 0], w.shape[0],
                              bias_ptr, &y[0, 0, 0, 0], threads, use_bf16)
    if status:
        raise MemoryError("conv2d: could not allocate the packing buffers")


def conv2d_backward_weight(const real[:, :, :, ::1] dy, const real[:, :, :, ::1] x,
                           real[:, :, :, ::1] dw_out, real[::1] db_out, int sh, int sw, int ph,
                           int pw, int dh, int dw, int threads, bf16=None):
    """Fill ``dw_out`` (and ``db_out`` unless None) with the weight (bias) gradient
    (``bf16`` as in :func:`conv2d_forward`)."""
    cdef bint use_bf16 = _bf16(bf16, sizeof(real))
    cdef ConvGeom g = make_geom(x.shape[1], x.shape[2], x.shape[3], dw_out.shape[2],
                                dw_out.shape[3], sh, sw, ph, pw, dh, dw)
    cdef real* db_ptr = &db_out[0] if db_out is not None else NULL
    cdef int status
    with nogil:
        status = backward_weight_core(&dy[0, 0, 0, 0], &x[0, 0, 0, 0], x.shape[0], g,
                                      dw_out.shape[0], &dw_out[0, 0, 0, 0], db_ptr, threads,
                                      use_bf16)
    if status:
        raise MemoryError("conv2d_backward_weight: could not allocate the accumulators")


def conv2d_backward_data_gemm(const real[:, :, :, ::1] dy, const real[:, :, :, ::1] w,
                              real[:, :, :, ::1] dx, int sh, int sw, int ph, int pw, int dh,
                              int dw, Py_ssize_t workspace_elems, int threads, bf16=None):
    """Fill ``dx`` with the input gradient via GEMM + col2im (any stride; ``bf16`` as in
    :func:`conv2d_forward`)."""
    cdef bint use_bf16 = _bf16(bf16, sizeof(real))
    cdef ConvGeom g = make_geom(dx.shape[1], dx.shape[2], dx.shape[3], w.shape[2], w.shape[3],
                                sh, sw, ph, pw, dh, dw)
    cdef int status
    with nogil:
        status = backward_data_gemm_core(&dy[0, 0, 0, 0], &w[0, 0, 0, 0], dx.shape[0], g,
                                         w.shape[0], &dx[0, 0, 0, 0], workspace_elems, threads,
                                         use_bf16)
    if status:
        raise MemoryError("conv2d_backward_data: could not allocate the column workspace")
