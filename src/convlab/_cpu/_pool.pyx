# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Max and average pooling over NCHW planes, with PyTorch's semantics.

Each (n, c) plane is one unit of parallel work, so backward passes can scatter into their own
plane without atomics and the sums happen in a fixed order.

Max pooling stores the argmax as the offset *inside the window* (``i * KW + j``) in one byte
when the window has at most 256 elements, instead of PyTorch's int64 plane offset: 8x less
memory traffic on the pass that is pure memory traffic.

Windows one pixel wide with unit width stride (the chart CNN's 2x1 pooling) and tiled 2x2
windows take row-wise paths (``include/pool_rows.h``) that the compiler vectorises.
"""
from cython.parallel cimport prange
from libc.math cimport INFINITY
from libc.stdint cimport int32_t, uint8_t
from libc.string cimport memcpy, memset

ctypedef fused real:
    float
    double

ctypedef fused index_t:
    uint8_t
    int32_t

# Row primitives of include/pool_rows.h, one generic name each for every value x index pair.
# Declared untyped (`...`) because Cython can only bind a fused declaration to names it mangles
# itself; the header's _Generic picks the instance from the argument types, so the C compiler
# still checks each call.
cdef extern from "pool_rows.h" nogil:
    void convlab_max2(...)          # (a, b, y, idx, n, la, lb): y, idx <- max of rows a, b
    void convlab_max_update(...)    # (x, y, idx, n, l): fold row x into the running max
    void convlab_unpool(...)        # (dy, idx, dx, n, l): dx <- dy where idx == l, else 0
    void convlab_max2x2(...)        # (a, b, y, idx, n): tiled 2 x 2 max of rows a, b
    void convlab_unpool2x2(...)     # (dy, idx, da, db, n): 2 x 2 scatter into rows da, db


cdef struct PoolGeom:
    Py_ssize_t H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW


cdef inline bint _column_windows(const PoolGeom* g) noexcept nogil:
    return g.KW == 1 and g.SW == 1 and g.PW == 0 and g.DW == 1 and g.OW == g.W


cdef inline bint _tiled_2x2(const PoolGeom* g) noexcept nogil:
    """2 x 2 windows, stride 2, no padding or dilation, all inside the input."""
    return (g.KH == 2 and g.KW == 2 and g.SH == 2 and g.SW == 2 and g.PH == 0 and g.PW == 0
            and g.DH == 1 and g.DW == 1 and 2 * g.OH <= g.H and 2 * g.OW <= g.W)


cdef inline Py_ssize_t _first_inside(Py_ssize_t start, Py_ssize_t step) noexcept nogil:
    """First window position >= 0 reachable from ``start`` in steps of ``step``."""
    while start < 0:
        start += step
    return start


cdef void _max_plane(const real* x, real* y, index_t* idx, const PoolGeom* g) noexcept nogil:
    cdef Py_ssize_t oh, ow, h, w, hstart, wstart, hend, wend, h0, w0, j
    cdef index_t best_i
    cdef real v, best
    cdef real* yrow
    cdef index_t* irow
    if _column_windows(g):
        for oh in range(g.OH):
            hstart = oh * g.SH - g.PH
            hend = hstart + (g.KH - 1) * g.DH + 1
            if hend > g.H:
                hend = g.H
            h0 = _first_inside(hstart, g.DH)
            yrow = y + oh * g.OW
            irow = idx + oh * g.OW
            h = h0 + g.DH
            if h0 >= hend:
                # a dilated window can miss the image entirely: -inf, as PyTorch
                for j in range(g.W):
                    yrow[j] = -INFINITY
                    irow[j] = <index_t>((h0 - hstart) // g.DH)
            elif h < hend:
                convlab_max2(x + h0 * g.W, x + h * g.W, yrow, irow, g.W,
                             <index_t>((h0 - hstart) // g.DH), <index_t>((h - hstart) // g.DH))
                h += g.DH
            else:
                memcpy(yrow, x + h0 * g.W, g.W * sizeof(real))
                for j in range(g.W):
                    irow[j] = <index_t>((h0 - hstart) // g.DH)
            while h < hend:
                convlab_max_update(x + h * g.W, yrow, irow, g.W,
                                   <index_t>((h - hstart) // g.DH))
                h += g.DH
        return
    if _tiled_2x2(g):
        for oh in range(g.OH):
            convlab_max2x2(x + 2 * oh * g.W, x + (2 * oh + 1) * g.W, y + oh * g.OW,
                           idx + oh * g.OW, g.OW)
        return
    for oh in range(g.OH):
        hstart = oh * g.SH - g.PH
        hend = hstart + (g.KH - 1) * g.DH + 1
        if hend > g.H:
            hend = g.H
        h0 = _first_inside(hstart, g.DH)
        for ow in range(g.OW):
            wstart = ow * g.SW - g.PW
            wend = wstart + (g.KW - 1) * g.DW + 1
            if wend > g.W:
                wend = g.W
            w0 = _first_inside(wstart, g.DW)
            best_i = <index_t>(((h0 - hstart) // g.DH) * g.KW + (w0 - wstart) // g.DW)
            if h0 >= hend or w0 >= wend:
                # a dilated window can miss the image entirely: -inf, as PyTorch
                y[oh * g.OW + ow] = -INFINITY
                idx[oh * g.OW + ow] = best_i
                continue
            best = x[h0 * g.W + w0]
            h = h0
            while h < hend:
                w = w0
                while w < wend:
                    v = x[h * g.W + w]
                    if v > best or v != v:
                        best = v
                        best_i = <index_t>(((h - hstart) // g.DH) * g.KW + (w - wstart) // g.DW)
                    w += g.DW
                h += g.DH
            y[oh * g.OW + ow] = best
            idx[oh * g.OW + ow] = best_i


cdef void _max_plane_backward(const real* dy, const index_t* idx, real* dx,
                              const PoolGeom* g) noexcept nogil:
    cdef Py_ssize_t oh, ow, h, j, hstart, next_row, first, stop, local
    cdef const real* grow
    cdef const index_t* irow
    if _column_windows(g) and g.SH >= (g.KH - 1) * g.DH + 1 and g.DH == 1:
        # windows do not overlap: every input row is written exactly once, no zero pass
        next_row = 0
        for oh in range(g.OH):
            hstart = oh * g.SH - g.PH
            first = hstart if hstart > 0 else 0
            stop = hstart + g.KH if hstart + g.KH < g.H else g.H
            if first > next_row:
                memset(dx + next_row * g.W, 0, (first - next_row) * g.W * sizeof(real))
            grow = dy + oh * g.OW
            irow = idx + oh * g.OW
            for h in range(first, stop):
                convlab_unpool(grow, irow, dx + h * g.W, g.W, <index_t>(h - hstart))
            next_row = stop if stop > next_row else next_row
        if next_row < g.H:
            memset(dx + next_row * g.W, 0, (g.H - next_row) * g.W * sizeof(real))
        return
    if _tiled_2x2(g):
        # every covered input pixel written once; only an odd last row / column needs zeros
        for oh in range(g.OH):
            convlab_unpool2x2(dy + oh * g.OW, idx + oh * g.OW, dx + 2 * oh * g.W,
                              dx + (2 * oh + 1) * g.W, g.OW)
            if 2 * g.OW < g.W:
                dx[2 * oh * g.W + g.W - 1] = 0
                dx[(2 * oh + 1) * g.W + g.W - 1] = 0
        if 2 * g.OH < g.H:
            memset(dx + (g.H - 1) * g.W, 0, g.W * sizeof(real))
        return
    memset(dx, 0, g.H * g.W * sizeof(real))
    for oh in range(g.OH):
        hstart = oh * g.SH - g.PH
        for ow in range(g.OW):
            local = idx[oh * g.OW + ow]
            # a hand-made argmax may point outside its window or the image: never write there
            if local < 0 or local >= g.KH * g.KW:
                continue
            h = hstart + (local // g.KW) * g.DH
            j = ow * g.SW - g.PW + (local % g.KW) * g.DW
            if 0 <= h < g.H and 0 <= j < g.W:
                dx[h * g.W + j] += dy[oh * g.OW + ow]


cdef inline void _avg_window(const PoolGeom* g, Py_ssize_t oh, Py_ssize_t ow,
                             bint count_include_pad, Py_ssize_t divisor_override,
                             Py_ssize_t* bounds) noexcept nogil:
    """bounds <- [h0, h1, w0, w1, divisor] of one output (PyTorch's avg_pool2d rules)."""
    cdef Py_ssize_t hstart = oh * g.SH - g.PH, wstart = ow * g.SW - g.PW
    cdef Py_ssize_t hend = hstart + g.KH, wend = wstart + g.KW
    if hend > g.H + g.PH:
        hend = g.H + g.PH
    if wend > g.W + g.PW:
        wend = g.W + g.PW
    cdef Py_ssize_t padded = (hend - hstart) * (wend - wstart)
    bounds[0] = hstart if hstart > 0 else 0
    bounds[1] = hend if hend < g.H else g.H
    bounds[2] = wstart if wstart > 0 else 0
    bounds[3] = wend if wend < g.W else g.W
    if divisor_override:
        bounds[4] = divisor_override
    elif count_include_pad:
        bounds[4] = padded
    else:
        bounds[4] = (bounds[1] - bounds[0]) * (bounds[3] - bounds[2])


cdef void _avg_plane(const real* x, real* y, const PoolGeom* g, bint count_include_pad,
                     Py_ssize_t divisor_override) noexcept nogil:
    cdef Py_ssize_t oh, ow, h, w
    cdef Py_ssize_t bounds[5]
    cdef real total
    for oh in range(g.OH):
        for ow in range(g.OW):
            _avg_window(g, oh, ow, count_include_pad, divisor_override, bounds)
            if bounds[1] <= bounds[0] or bounds[3] <= bounds[2]:
                y[oh * g.OW + ow] = 0
                continue
            total = 0
            for h in range(bounds[0], bounds[1]):
                for w in range(bounds[2], bounds[3]):
                    total = total + x[h * g.W + w]
            y[oh * g.OW + ow] = total / bounds[4]


cdef void _avg_plane_backward(const real* dy, real* dx, const PoolGeom* g,
                              bint count_include_pad, Py_ssize_t divisor_override) noexcept nogil:
    cdef Py_ssize_t oh, ow, h, w
    cdef Py_ssize_t bounds[5]
    cdef real share
    memset(dx, 0, g.H * g.W * sizeof(real))
    for oh in range(g.OH):
        for ow in range(g.OW):
            _avg_window(g, oh, ow, count_include_pad, divisor_override, bounds)
            if bounds[1] <= bounds[0] or bounds[3] <= bounds[2]:
                continue
            share = dy[oh * g.OW + ow] / bounds[4]
            for h in range(bounds[0], bounds[1]):
                for w in range(bounds[2], bounds[3]):
                    dx[h * g.W + w] += share


cdef PoolGeom _geom(Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, int kh, int kw,
                    int sh, int sw, int ph, int pw, int dh, int dw) noexcept nogil:
    cdef PoolGeom g
    g.H = H
    g.W = W
    g.OH = OH
    g.OW = OW
    g.KH = kh
    g.KW = kw
    g.SH = sh
    g.SW = sw
    g.PH = ph
    g.PW = pw
    g.DH = dh
    g.DW = dw
    return g


def max_pool2d(const real[:, :, :, ::1] x, real[:, :, :, ::1] y, index_t[:, :, :, ::1] idx,
               int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int threads):
    """Fill ``y`` and the in-window argmax ``idx`` (N, C, OH, OW). Arguments are pre-checked."""
    cdef PoolGeom g = _geom(x.shape[2], x.shape[3], y.shape[2], y.shape[3], kh, kw, sh, sw,
                            ph, pw, dh, dw)
    cdef Py_ssize_t C = x.shape[1], planes = x.shape[0] * x.shape[1], p
    if planes == 0 or g.OH == 0 or g.OW == 0:
        return
    for p in prange(planes, nogil=True, num_threads=threads, schedule="dynamic", chunksize=16):
        _max_plane(&x[p // C, p % C, 0, 0], &y[p // C, p % C, 0, 0], &idx[p // C, p % C, 0, 0],
                   &g)


def max_pool2d_backward(const real[:, :, :, ::1] dy, const index_t[:, :, :, ::1] idx,
                        real[:, :, :, ::1] dx, int kh, int kw, int sh, int sw, int ph, int pw,
                        int dh, int dw, int threads):
    """Fill ``dx`` (N, C, H, W) with the max-pool input gradient."""
    cdef PoolGeom g = _geom(dx.shape[2], dx.shape[3], dy.shape[2], dy.shape[3], kh, kw, sh, sw,
                            ph, pw, dh, dw)
    cdef Py_ssize_t C = dx.shape[1], planes = dx.shape[0] * dx.shape[1], p
    if planes == 0 or g.H == 0 or g.W == 0:
        return
    for p in prange(planes, nogil=True, num_threads=threads, schedule="dynamic", chunksize=16):
        _max_plane_backward(&dy[p // C, p % C, 0, 0], &idx[p // C, p % C, 0, 0],
                            &dx[p // C, p % C, 0, 0], &g)


def avg_pool2d(const real[:, :, :, ::1] x, real[:, :, :, ::1] y, int kh, int kw, int sh, int sw,
               int ph, int pw, bint count_include_pad, Py_ssize_t divisor_override,
               int threads):
    """Fill ``y`` (N, C, OH, OW); ``divisor_override`` 0 means none."""
    cdef PoolGeom g = _geom(x.shape[2], x.shape[3], y.shape[2], y.shape[3], kh, kw, sh, sw,
                            ph, pw, 1, 1)
    cdef Py_ssize_t C = x.shape[1], planes = x.shape[0] * x.shape[1], p
    if planes == 0 or g.OH == 0 or g.OW == 0:
        return
    for p in prange(planes, nogil=True, num_threads=threads, schedule="dynamic", chunksize=16):
        _avg_plane(&x[p // C, p % C, 0, 0], &y[p // C, p % C, 0, 0], &g, count_include_pad,
                   divisor_override)


def avg_pool2d_backward(const real[:, :, :, ::1] dy, real[:, :, :, ::1] dx, int kh, int kw,
                        int sh, int sw, int ph, int pw, bint count_include_pad,
                        Py_ssize_t divisor_override, int threads):
    """Fill ``dx`` (N, C, H, W) with the avg-pool input gradient."""
    cdef PoolGeom g = _geom(dx.shape[2], dx.shape[3], dy.shape[2], dy.shape[3], kh, kw, sh, sw,
                            ph, pw, 1, 1)
    cdef Py_ssize_t C = dx.shape[1], planes = dx.shape[0] * dx.shape[1], p
    if planes == 0 or g.H == 0 or g.W == 0:
        return
    for p in prange(planes, nogil=True, num_threads=threads, schedule="dynamic", chunksize=16):
        _avg_plane_backward(&dy[p // C, p % C, 0, 0], &dx[p // C, p % C, 0, 0], &g,
                            count_include_pad, divisor_override)
