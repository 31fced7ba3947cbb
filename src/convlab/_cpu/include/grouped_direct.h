/* Direct grouped convolution: depthwise (one input channel per group, any channel multiplier)
 * and groups of a few channels (ResNeXt's 4 or 8), where a GEMM would be a stack of tiny
 * matrices. The work is memory-bound, so every loop is an element-wise pass over one output
 * row that the compiler vectorises over the output width (unit stride; a stride of 2 is a
 * strided load or store):
 *
 * Equal strides (SH == SW) take the flat path below: whole zero-padded planes as one vector.
 * Other strides take the row path:
 *
 *   forward        one (n, o) output plane:  y[oh, :] += w[c, kh, kw] * x[c, ih, ow*SW + off]
 *   input grad     one (n, ci) input plane:  dx[ih, ow*SW + off] += w * dy[o, oh, :]
 *   weight grad    one output channel o:     acc[tap, ow] += dy[oh, ow] * x[ih, ow*SW + off],
 *                  the lanes summed per image into double totals (fixed order: deterministic)
 *
 * where off = kw*DW - PW, and [ow0, ow1) is the range of output columns whose input column
 * lies inside the row (no padding is materialised). Each unit writes only its own plane or
 * channel, so the callers run units in parallel without atomics.
 *
 * Instruction sets: each kernel is compiled three times, for the baseline, for AVX2 + FMA and
 * for AVX-512 (`target` attributes; the extension itself is built for baseline x86-64), and
 * the caller passes the ISA convlab's micro-kernels use (convlab._cpu._gemm.get_isa()), so
 * `convlab.backend.get_backend("cpu").set_isa` governs these kernels too.
 */
#ifndef CONVLAB_GROUPED_DIRECT_H
#define CONVLAB_GROUPED_DIRECT_H

#include <stddef.h>
#include <string.h>

typedef struct {
    ptrdiff_t N, C, H, W, O, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW, CG, OG;
} convlab_gconv_geom;

/* Output columns [*ow0, *ow1) whose input column ow*SW + off lies in [0, W). */
static inline void convlab_gconv_cols(const convlab_gconv_geom *g, ptrdiff_t off,
                                      ptrdiff_t *ow0, ptrdiff_t *ow1)
{
    ptrdiff_t lo = off >= 0 ? 0 : (-off + g->SW - 1) / g->SW;
    ptrdiff_t hi = (g->W - 1 - off) >= 0 ? (g->W - 1 - off) / g->SW + 1 : 0;
    if (hi > g->OW) hi = g->OW;
    *ow0 = lo;
    *ow1 = hi > lo ? hi : lo;
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define CONVLAB_GCONV_X86 1
#define CONVLAB_GCONV_AVX2 __attribute__((target("avx2,fma")))
#define CONVLAB_GCONV_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))
#else
#define CONVLAB_GCONV_X86 0
#endif

#define CONVLAB_GCONV_KERNELS(NAME, T, ATTR)                                                   \
    ATTR static void convlab_gconv_fwd_##NAME(const T *x, const T *w, const T *bias, T *y,      \
                                              const convlab_gconv_geom *g, ptrdiff_t n,         \
                                              ptrdiff_t o)                                      \
    {                                                                                          \
        const ptrdiff_t grp = o / g->OG, taps = g->KH * g->KW;                                 \
        const T *xb = x + (n * g->C + grp * g->CG) * g->H * g->W;                              \
        const T *wb = w + o * g->CG * taps;                                                    \
        T *yp = y + (n * g->O + o) * g->OH * g->OW;                                            \
        const T b0 = bias ? bias[o] : (T)0;                                                    \
        for (ptrdiff_t oh = 0; oh < g->OH; oh++) {                                             \
            T *restrict yrow = yp + oh * g->OW;                                                \
            for (ptrdiff_t ow = 0; ow < g->OW; ow++) yrow[ow] = b0;                            \
            for (ptrdiff_t c = 0; c < g->CG; c++)                                              \
                for (ptrdiff_t kh = 0; kh < g->KH; kh++) {                                     \
                    const ptrdiff_t ih = oh * g->SH - g->PH + kh * g->DH;                      \
                    if (ih < 0 || ih >= g->H) continue;                                        \
                    const T *xrow = xb + (c * g->H + ih) * g->W;                               \
                    for (ptrdiff_t kw = 0; kw < g->KW; kw++) {                                 \
                        const T wv = wb[(c * g->KH + kh) * g->KW + kw];                        \
                        const ptrdiff_t off = kw * g->DW - g->PW;                              \
                        ptrdiff_t ow0, ow1;                                                    \
                        convlab_gconv_cols(g, off, &ow0, &ow1);                                \
                        const T *restrict xr = xrow + ow0 * g->SW + off;                       \
                        T *restrict yr = yrow + ow0;                                           \
                        const ptrdiff_t len = ow1 - ow0;                                       \
                        if (g->SW == 1)                                                        \
                            for (ptrdiff_t i = 0; i < len; i++) yr[i] += wv * xr[i];           \
                        else if (g->SW == 2)                                                   \
                            for (ptrdiff_t i = 0; i < len; i++) yr[i] += wv * xr[2 * i];       \
                        else                                                                   \
                            for (ptrdiff_t i = 0; i < len; i++) yr[i] += wv * xr[i * g->SW];   \
                    }                                                                          \
                }                                                                              \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    ATTR static void convlab_gconv_bwd_data_##NAME(const T *dy, const T *w, T *dx,              \
                                                   const convlab_gconv_geom *g, ptrdiff_t n,    \
                                                   ptrdiff_t ci)                                \
    {                                                                                          \
        const ptrdiff_t grp = ci / g->CG, c = ci % g->CG, taps = g->KH * g->KW;                \
        T *dxp = dx + (n * g->C + ci) * g->H * g->W;                                           \
        memset(dxp, 0, (size_t)(g->H * g->W) * sizeof(T));                                    \
        for (ptrdiff_t m = 0; m < g->OG; m++) {                                                \
            const ptrdiff_t o = grp * g->OG + m;                                               \
            const T *dyp = dy + (n * g->O + o) * g->OH * g->OW;                                \
            const T *wo = w + (o * g->CG + c) * taps;                                          \
            for (ptrdiff_t oh = 0; oh < g->OH; oh++) {                                         \
                const T *dyrow = dyp + oh * g->OW;                                             \
                for (ptrdiff_t kh = 0; kh < g->KH; kh++) {                                     \
                    const ptrdiff_t ih = oh * g->SH - g->PH + kh * g->DH;                      \
                    if (ih < 0 || ih >= g->H) continue;                                        \
                    T *dxrow = dxp + ih * g->W;                                                \
                    for (ptrdiff_t kw = 0; kw < g->KW; kw++) {                                 \
                        const T wv = wo[kh * g->KW + kw];                                      \
                        const ptrdiff_t off = kw * g->DW - g->PW;                              \
                        ptrdiff_t ow0, ow1;                                                    \
                        convlab_gconv_cols(g, off, &ow0, &ow1);                                \
                        T *restrict dr = dxrow + ow0 * g->SW + off;                            \
                        const T *restrict gr = dyrow + ow0;                                    \
                        const ptrdiff_t len = ow1 - ow0;                                       \
                        if (g->SW == 1)                                                        \
                            for (ptrdiff_t i = 0; i < len; i++) dr[i] += wv * gr[i];           \
                        else                                                                   \
                            for (ptrdiff_t i = 0; i < len; i++) dr[i * g->SW] += wv * gr[i];   \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    ATTR static void convlab_gconv_bwd_weight_##NAME(const T *dy, const T *x, T *dw, T *acc,    \
                                                     double *total,                            \
                                                     const convlab_gconv_geom *g, ptrdiff_t o)  \
    {                                                                                          \
        const ptrdiff_t grp = o / g->OG, taps = g->CG * g->KH * g->KW;                         \
        for (ptrdiff_t t = 0; t < taps; t++) total[t] = 0.0;                                   \
        for (ptrdiff_t n = 0; n < g->N; n++) {                                                 \
            const T *dyp = dy + (n * g->O + o) * g->OH * g->OW;                                \
            const T *xb = x + (n * g->C + grp * g->CG) * g->H * g->W;                          \
            memset(acc, 0, (size_t)(taps * g->OW) * sizeof(T));                                \
            for (ptrdiff_t oh = 0; oh < g->OH; oh++) {                                         \
                const T *dyrow = dyp + oh * g->OW;                                             \
                for (ptrdiff_t c = 0; c < g->CG; c++)                                          \
                    for (ptrdiff_t kh = 0; kh < g->KH; kh++) {                                 \
                        const ptrdiff_t ih = oh * g->SH - g->PH + kh * g->DH;                  \
                        if (ih < 0 || ih >= g->H) continue;                                    \
                        const T *xrow = xb + (c * g->H + ih) * g->W;                           \
                        for (ptrdiff_t kw = 0; kw < g->KW; kw++) {                             \
                            const ptrdiff_t off = kw * g->DW - g->PW;                          \
                            ptrdiff_t ow0, ow1;                                                \
                            convlab_gconv_cols(g, off, &ow0, &ow1);                            \
                            T *restrict ar = acc + ((c * g->KH + kh) * g->KW + kw) * g->OW + ow0; \
                            const T *restrict gr = dyrow + ow0;                                \
                            const T *restrict xr = xrow + ow0 * g->SW + off;                   \
                            const ptrdiff_t len = ow1 - ow0;                                   \
                            if (g->SW == 1)                                                    \
                                for (ptrdiff_t i = 0; i < len; i++) ar[i] += gr[i] * xr[i];    \
                            else if (g->SW == 2)                                               \
                                for (ptrdiff_t i = 0; i < len; i++) ar[i] += gr[i] * xr[2 * i]; \
                            else                                                               \
                                for (ptrdiff_t i = 0; i < len; i++)                            \
                                    ar[i] += gr[i] * xr[i * g->SW];                            \
                        }                                                                      \
                    }                                                                          \
            }                                                                                  \
            /* this image's lanes into the double totals: float sums stay one image long */    \
            for (ptrdiff_t t = 0; t < taps; t++) {                                             \
                const T *ar = acc + t * g->OW;                                                 \
                double s = 0.0;                                                                \
                for (ptrdiff_t i = 0; i < g->OW; i++) s += (double)ar[i];                      \
                total[t] += s;                                                                 \
            }                                                                                  \
        }                                                                                      \
        for (ptrdiff_t t = 0; t < taps; t++) dw[o * taps + t] = (T)total[t];                   \
    }


/* ---- the flat path (SH == SW = S): whole planes as one vector ---------------------------
 * The zero-padded input plane, (H + 2 PH) x (W + 2 PW), is stored as S x S stride phases:
 * padded pixel (r, q) goes to phase (r % S, q % S) at (r / S, q / S), each phase a plane of
 * row pitch Wq = ceil((W + 2 PW) / S). Output (oh, ow) laid out at j = oh * Wq + ow then
 * reads, for tap (kh, kw), phase (kh DH % S, kw DW % S) at j + (kh DH / S) Wq + kw DW / S:
 * every tap is one unit-stride pass over a whole plane, strided or not. The columns
 * ow >= OW of that layout are scratch (discarded, or zero where they are read), so small
 * planes still give loops of OH * Wq elements instead of OH loops of OW. */
typedef struct {
    ptrdiff_t Wq, L, lenQ;   /* phase row pitch, output layout length, length of one phase */
} convlab_gconv_flat;

static inline convlab_gconv_flat convlab_gconv_flat_dims(const convlab_gconv_geom *g)
{
    convlab_gconv_flat f;
    const ptrdiff_t S = g->SW;
    const ptrdiff_t hq = (g->H + 2 * g->PH + S - 1) / S;
    f.Wq = (g->W + 2 * g->PW + S - 1) / S;
    f.L = g->OH * f.Wq;
    /* the farthest read of the last (scratch) output, and the whole phase plane */
    ptrdiff_t len = f.L + ((g->KH - 1) * g->DH / S) * f.Wq + (g->KW - 1) * g->DW / S;
    if (len < hq * f.Wq) len = hq * f.Wq;
    f.lenQ = len;
    return f;
}

/* Offset of tap (kh, kw) in the phase layout. */
static inline ptrdiff_t convlab_gconv_tap(const convlab_gconv_geom *g,
                                          const convlab_gconv_flat *f, ptrdiff_t kh,
                                          ptrdiff_t kw)
{
    const ptrdiff_t S = g->SW, a = kh * g->DH, b = kw * g->DW;
    return ((a % S) * S + b % S) * f->lenQ + (a / S) * f->Wq + b / S;
}

#define CONVLAB_GCONV_FLAT_KERNELS(NAME, T, ATTR, DOTS, DOTS3)                                  \
    /* x (H, W) into the S x S phases of its zero-padded plane */                              \
    ATTR static void convlab_gconv_pad_##NAME(const T *x, T *xph, const convlab_gconv_geom *g,   \
                                              const convlab_gconv_flat *f)                     \
    {                                                                                          \
        const ptrdiff_t S = g->SW;                                                             \
        memset(xph, 0, (size_t)(S * S * f->lenQ) * sizeof(T));                                 \
        for (ptrdiff_t ih = 0; ih < g->H; ih++) {                                              \
            const ptrdiff_t r = ih + g->PH;                                                    \
            T *row = xph + (r % S) * S * f->lenQ + (r / S) * f->Wq;                            \
            const T *xr = x + ih * g->W;                                                       \
            if (S == 1) {                                                                      \
                memcpy(row + g->PW, xr, (size_t)g->W * sizeof(T));                             \
            } else if (S == 2 && g->W % 2 == 0) {                                              \
                /* both column phases in one pass over the row (a vector deinterleave) */      \
                const ptrdiff_t qa = g->PW, qb = g->PW + 1, count = g->W / 2;                  \
                T *restrict da = row + (qa % 2) * f->lenQ + qa / 2;                            \
                T *restrict db = row + (qb % 2) * f->lenQ + qb / 2;                            \
                for (ptrdiff_t t = 0; t < count; t++) {                                        \
                    da[t] = xr[2 * t];                                                         \
                    db[t] = xr[2 * t + 1];                                                     \
                }                                                                              \
            } else {                                                                           \
                /* one strided pass per column phase: no division per element */               \
                for (ptrdiff_t i0 = 0; i0 < S && i0 < g->W; i0++) {                           \
                    const ptrdiff_t q = g->PW + i0, count = (g->W - i0 + S - 1) / S;           \
                    T *restrict dst = row + (q % S) * f->lenQ + q / S;                         \
                    const T *restrict src = xr + i0;                                           \
                    for (ptrdiff_t t = 0; t < count; t++) dst[t] = src[S * t];                 \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    /* the phases' interior back into x (H, W) */                                              \
    ATTR static void convlab_gconv_unpad_##NAME(const T *xph, T *x, const convlab_gconv_geom *g, \
                                                const convlab_gconv_flat *f)                   \
    {                                                                                          \
        const ptrdiff_t S = g->SW;                                                             \
        for (ptrdiff_t ih = 0; ih < g->H; ih++) {                                              \
            const ptrdiff_t r = ih + g->PH;                                                    \
            const T *row = xph + (r % S) * S * f->lenQ + (r / S) * f->Wq;                      \
            T *xr = x + ih * g->W;                                                             \
            if (S == 1) {                                                                      \
                memcpy(xr, row + g->PW, (size_t)g->W * sizeof(T));                             \
            } else if (S == 2 && g->W % 2 == 0) {                                              \
                const ptrdiff_t qa = g->PW, qb = g->PW + 1, count = g->W / 2;                  \
                const T *restrict sa = row + (qa % 2) * f->lenQ + qa / 2;                      \
                const T *restrict sb = row + (qb % 2) * f->lenQ + qb / 2;                      \
                for (ptrdiff_t t = 0; t < count; t++) {                                        \
                    xr[2 * t] = sa[t];                                                         \
                    xr[2 * t + 1] = sb[t];                                                     \
                }                                                                              \
            } else {                                                                           \
                for (ptrdiff_t i0 = 0; i0 < S && i0 < g->W; i0++) {                           \
                    const ptrdiff_t q = g->PW + i0, count = (g->W - i0 + S - 1) / S;           \
                    const T *restrict src = row + (q % S) * f->lenQ + q / S;                   \
                    T *restrict dst = xr + i0;                                                 \
                    for (ptrdiff_t t = 0; t < count; t++) dst[S * t] = src[t];                 \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    /* y (OH, OW) laid out with pitch Wq, zero in the scratch columns */                       \
    ATTR static void convlab_gconv_spread_##NAME(const T *y, T *yext,                          \
                                                 const convlab_gconv_geom *g,                  \
                                                 const convlab_gconv_flat *f)                  \
    {                                                                                          \
        memset(yext, 0, (size_t)f->L * sizeof(T));                                             \
        for (ptrdiff_t oh = 0; oh < g->OH; oh++)                                               \
            memcpy(yext + oh * f->Wq, y + oh * g->OW, (size_t)g->OW * sizeof(T));              \
    }                                                                                          \
                                                                                               \
    ATTR static void convlab_gconv_flat_fwd_##NAME(const T *x, const T *w, const T *bias, T *y, \
                                                   T *xph, T *yext,                            \
                                                   const convlab_gconv_geom *g, ptrdiff_t n,   \
                                                   ptrdiff_t grp)                              \
    {                                                                                          \
        const convlab_gconv_flat f = convlab_gconv_flat_dims(g);                               \
        const ptrdiff_t S = g->SW, L = f.L, plane = S * S * f.lenQ;                            \
        /* tap offsets once per unit: the phase arithmetic divides */                          \
        ptrdiff_t toff[g->KH * g->KW];                                                         \
        for (ptrdiff_t kh = 0; kh < g->KH; kh++)                                               \
            for (ptrdiff_t kw = 0; kw < g->KW; kw++)                                           \
                toff[kh * g->KW + kw] = convlab_gconv_tap(g, &f, kh, kw);                      \
        for (ptrdiff_t c = 0; c < g->CG; c++)                                                  \
            convlab_gconv_pad_##NAME(x + (n * g->C + grp * g->CG + c) * g->H * g->W,           \
                                     xph + c * plane, g, &f);                                  \
        /* every output of the group at once: each pass over an input phase feeds two output  \
         * rows (half the loads per multiply-add of one at a time) */                          \
        for (ptrdiff_t m = 0; m < g->OG; m++) {                                                \
            const T b0 = bias ? bias[grp * g->OG + m] : (T)0;                                  \
            T *restrict ye = yext + m * L;                                                     \
            for (ptrdiff_t j = 0; j < L; j++) ye[j] = b0;                                      \
        }                                                                                      \
        for (ptrdiff_t c = 0; c < g->CG; c++) {                                                \
            const T *xc = xph + c * plane;                                                     \
            for (ptrdiff_t kh = 0; kh < g->KH; kh++) {                                         \
                ptrdiff_t m = 0;                                                               \
                /* 3-wide rows: four outputs per pass (3 loads and 8 load-stores feed 12       \
                 * multiply-adds; 12 weights, 3 inputs and 4 sums still fit the registers) */  \
                if (g->KW == 3)                                                                \
                    for (; m + 4 <= g->OG; m += 4) {                                           \
                        const ptrdiff_t o = grp * g->OG + m, ws = g->CG * g->KH * 3;           \
                        const T *wa = w + ((o * g->CG + c) * g->KH + kh) * 3;                  \
                        const T a0 = wa[0], a1 = wa[1], a2 = wa[2];                            \
                        const T b0 = wa[ws], b1 = wa[ws + 1], b2 = wa[ws + 2];                 \
                        const T c0 = wa[2 * ws], c1 = wa[2 * ws + 1], c2 = wa[2 * ws + 2];     \
                        const T d0 = wa[3 * ws], d1 = wa[3 * ws + 1], d2 = wa[3 * ws + 2];     \
                        const ptrdiff_t *to = toff + kh * 3;                                   \
                        const T *restrict x0 = xc + to[0];                                     \
                        const T *restrict x1 = xc + to[1];                                     \
                        const T *restrict x2 = xc + to[2];                                     \
                        T *restrict ya = yext + m * L;                                         \
                        T *restrict yb = ya + L;                                               \
                        T *restrict yc = yb + L;                                               \
                        T *restrict yd = yc + L;                                               \
                        /* the rows are disjoint: without this GCC would need more alias     \
                         * checks than it versions a loop for, and not vectorise it */         \
                        _Pragma("GCC ivdep")                                                   \
                        for (ptrdiff_t j = 0; j < L; j++) {                                    \
                            const T v0 = x0[j], v1 = x1[j], v2 = x2[j];                        \
                            ya[j] += a0 * v0 + a1 * v1 + a2 * v2;                              \
                            yb[j] += b0 * v0 + b1 * v1 + b2 * v2;                              \
                            yc[j] += c0 * v0 + c1 * v1 + c2 * v2;                              \
                            yd[j] += d0 * v0 + d1 * v1 + d2 * v2;                              \
                        }                                                                      \
                    }                                                                          \
                for (; m + 2 <= g->OG; m += 2) {                                               \
                    const ptrdiff_t o = grp * g->OG + m;                                       \
                    const T *wa = w + ((o * g->CG + c) * g->KH + kh) * g->KW;                  \
                    const T *wb = wa + g->CG * g->KH * g->KW;                                  \
                    T *restrict ya = yext + m * L;                                             \
                    T *restrict yb = ya + L;                                                   \
                    ptrdiff_t kw = 0;                                                          \
                    for (; kw + 3 <= g->KW; kw += 3) {                                         \
                        const ptrdiff_t *to = toff + kh * g->KW + kw;                          \
                        const T *restrict x0 = xc + to[0];                                     \
                        const T *restrict x1 = xc + to[1];                                     \
                        const T *restrict x2 = xc + to[2];                                     \
                        const T a0 = wa[kw], a1 = wa[kw + 1], a2 = wa[kw + 2];                 \
                        const T b0 = wb[kw], b1 = wb[kw + 1], b2 = wb[kw + 2];                 \
                        for (ptrdiff_t j = 0; j < L; j++) {                                    \
                            const T v0 = x0[j], v1 = x1[j], v2 = x2[j];                        \
                            ya[j] += a0 * v0 + a1 * v1 + a2 * v2;                              \
                            yb[j] += b0 * v0 + b1 * v1 + b2 * v2;                              \
                        }                                                                      \
                    }                                                                          \
                    for (; kw < g->KW; kw++) {                                                 \
                        const T *restrict x0 = xc + toff[kh * g->KW + kw];                     \
                        const T a0 = wa[kw], b0 = wb[kw];                                      \
                        for (ptrdiff_t j = 0; j < L; j++) {                                    \
                            ya[j] += a0 * x0[j];                                               \
                            yb[j] += b0 * x0[j];                                               \
                        }                                                                      \
                    }                                                                          \
                }                                                                              \
                for (; m < g->OG; m++) {                                                       \
                    const ptrdiff_t o = grp * g->OG + m;                                       \
                    const T *wr = w + ((o * g->CG + c) * g->KH + kh) * g->KW;                  \
                    T *restrict ye = yext + m * L;                                             \
                    ptrdiff_t kw = 0;                                                          \
                    for (; kw + 3 <= g->KW; kw += 3) {                                         \
                        const ptrdiff_t *to = toff + kh * g->KW + kw;                          \
                        const T *restrict x0 = xc + to[0];                                     \
                        const T *restrict x1 = xc + to[1];                                     \
                        const T *restrict x2 = xc + to[2];                                     \
                        const T w0 = wr[kw], w1 = wr[kw + 1], w2 = wr[kw + 2];                 \
                        for (ptrdiff_t j = 0; j < L; j++)                                      \
                            ye[j] += w0 * x0[j] + w1 * x1[j] + w2 * x2[j];                     \
                    }                                                                          \
                    for (; kw < g->KW; kw++) {                                                 \
                        const T *restrict x0 = xc + toff[kh * g->KW + kw];                     \
                        const T w0 = wr[kw];                                                   \
                        for (ptrdiff_t j = 0; j < L; j++) ye[j] += w0 * x0[j];                 \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        for (ptrdiff_t m = 0; m < g->OG; m++) {                                                \
            T *yp = y + (n * g->O + grp * g->OG + m) * g->OH * g->OW;                          \
            for (ptrdiff_t oh = 0; oh < g->OH; oh++)                                           \
                memcpy(yp + oh * g->OW, yext + m * L + oh * f.Wq,                              \
                       (size_t)g->OW * sizeof(T));                                             \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    ATTR static void convlab_gconv_flat_bwd_data_##NAME(const T *dy, const T *w, T *dx,         \
                                                        T *dxph, T *dyext,                     \
                                                        const convlab_gconv_geom *g,           \
                                                        ptrdiff_t n, ptrdiff_t grp)            \
    {                                                                                          \
        const convlab_gconv_flat f = convlab_gconv_flat_dims(g);                               \
        const ptrdiff_t S = g->SW, L = f.L;                                                    \
        ptrdiff_t toff[g->KH * g->KW];                                                         \
        for (ptrdiff_t kh = 0; kh < g->KH; kh++)                                               \
            for (ptrdiff_t kw = 0; kw < g->KW; kw++)                                           \
                toff[kh * g->KW + kw] = convlab_gconv_tap(g, &f, kh, kw);                      \
        for (ptrdiff_t m = 0; m < g->OG; m++)                                                  \
            convlab_gconv_spread_##NAME(dy + (n * g->O + grp * g->OG + m) * g->OH * g->OW,     \
                                        dyext + m * L, g, &f);                                 \
        for (ptrdiff_t c = 0; c < g->CG; c++) {                                                \
            memset(dxph, 0, (size_t)(S * S * f.lenQ) * sizeof(T));                             \
            const ptrdiff_t wstep = g->CG * g->KH * g->KW; /* o -> o + 1 in the weight */      \
            ptrdiff_t m = 0;                                                                   \
            /* eight, four, then two outputs per pass: one load and store of dx per eight      \
             * (four, two) multiply-adds */                                                    \
            for (; m + 8 <= g->OG; m += 8) {                                                   \
                const ptrdiff_t o = grp * g->OG + m;                                           \
                const T *restrict g0 = dyext + m * L, *restrict g1 = g0 + L;                   \
                const T *restrict g2 = g1 + L, *restrict g3 = g2 + L;                          \
                const T *restrict g4 = g3 + L, *restrict g5 = g4 + L;                          \
                const T *restrict g6 = g5 + L, *restrict g7 = g6 + L;                          \
                for (ptrdiff_t t = 0; t < g->KH * g->KW; t++) {                                \
                    const T *wt = w + (o * g->CG + c) * g->KH * g->KW + t;                     \
                    const T w0 = wt[0], w1 = wt[wstep], w2 = wt[2 * wstep];                    \
                    const T w3 = wt[3 * wstep], w4 = wt[4 * wstep], w5 = wt[5 * wstep];        \
                    const T w6 = wt[6 * wstep], w7 = wt[7 * wstep];                            \
                    T *restrict dr = dxph + toff[t];                                           \
                    /* dr (the padded dx) and the rows (dy) are different buffers */           \
                    _Pragma("GCC ivdep")                                                       \
                    for (ptrdiff_t j = 0; j < L; j++)                                          \
                        dr[j] += ((w0 * g0[j] + w1 * g1[j]) + (w2 * g2[j] + w3 * g3[j])) +     \
                                 ((w4 * g4[j] + w5 * g5[j]) + (w6 * g6[j] + w7 * g7[j]));      \
                }                                                                              \
            }                                                                                  \
            for (; m + 4 <= g->OG; m += 4) {                                                   \
                const ptrdiff_t o = grp * g->OG + m;                                           \
                const T *restrict ga = dyext + m * L;                                          \
                const T *restrict gb = ga + L;                                                 \
                const T *restrict gc = gb + L;                                                 \
                const T *restrict gd = gc + L;                                                 \
                for (ptrdiff_t t = 0; t < g->KH * g->KW; t++) {                                \
                    const ptrdiff_t wi = (o * g->CG + c) * g->KH * g->KW + t;                  \
                    const T wa = w[wi], wb = w[wi + wstep];                                    \
                    const T wc = w[wi + 2 * wstep], wd = w[wi + 3 * wstep];                    \
                    T *restrict dr = dxph + toff[t];                                           \
                    for (ptrdiff_t j = 0; j < L; j++)                                          \
                        dr[j] += (wa * ga[j] + wb * gb[j]) + (wc * gc[j] + wd * gd[j]);        \
                }                                                                              \
            }                                                                                  \
            for (; m + 2 <= g->OG; m += 2) {                                                   \
                const ptrdiff_t o = grp * g->OG + m;                                           \
                const T *restrict ga = dyext + m * L;                                          \
                const T *restrict gb = ga + L;                                                 \
                for (ptrdiff_t t = 0; t < g->KH * g->KW; t++) {                                \
                    const ptrdiff_t wi = (o * g->CG + c) * g->KH * g->KW + t;                  \
                    const T wa = w[wi], wb = w[wi + wstep];                                    \
                    T *restrict dr = dxph + toff[t];                                           \
                    for (ptrdiff_t j = 0; j < L; j++) dr[j] += wa * ga[j] + wb * gb[j];        \
                }                                                                              \
            }                                                                                  \
            for (; m < g->OG; m++) {                                                           \
                const ptrdiff_t o = grp * g->OG + m;                                           \
                const T *restrict gr = dyext + m * L;                                          \
                for (ptrdiff_t t = 0; t < g->KH * g->KW; t++) {                                \
                    const T wv = w[(o * g->CG + c) * g->KH * g->KW + t];                       \
                    T *restrict dr = dxph + toff[t];                                           \
                    for (ptrdiff_t j = 0; j < L; j++) dr[j] += wv * gr[j];                     \
                }                                                                              \
            }                                                                                  \
            convlab_gconv_unpad_##NAME(dxph, dx + (n * g->C + grp * g->CG + c) * g->H * g->W,  \
                                       g, &f);                                                 \
        }                                                                                      \
    }                                                                                          \
                                                                                               \
    /* sum of a[j] * b[j]: 16 partial sums the compiler keeps in vector registers */           \
    ATTR static double convlab_gconv_dot_##NAME(const T *restrict a, const T *restrict b,       \
                                                ptrdiff_t L)                                   \
    {                                                                                          \
        T part[16] = {0};                                                                      \
        ptrdiff_t j = 0;                                                                       \
        for (; j + 16 <= L; j += 16)                                                           \
            for (int k = 0; k < 16; k++) part[k] += a[j + k] * b[j + k];                       \
        double s = 0.0;                                                                        \
        for (; j < L; j++) s += (double)(a[j] * b[j]);                                         \
        for (int k = 0; k < 16; k++) s += (double)part[k];                                     \
        return s;                                                                              \
    }                                                                                          \
                                                                                               \
    /* out[m * stride] += the dot product of row m of (rows, L) dy with x */                   \
    ATTR static void convlab_gconv_dots_##NAME(const T *dy, ptrdiff_t L, ptrdiff_t rows,        \
                                               const T *x, double *out, ptrdiff_t stride)      \
    {                                                                                          \
        for (ptrdiff_t m = 0; m < rows; m++)                                                   \
            out[m * stride] += convlab_gconv_dot_##NAME(dy + m * L, x, L);                     \
    }                                                                                          \
                                                                                               \
    /* out[m * stride + k] += dot(row m of dy, x + off[k]) for the three taps k */               \
    ATTR static void convlab_gconv_dots3_##NAME(const T *dy, ptrdiff_t L, ptrdiff_t rows,       \
                                                const T *x, const ptrdiff_t *off, double *out, \
                                                ptrdiff_t stride)                              \
    {                                                                                          \
        for (int k = 0; k < 3; k++)                                                            \
            DOTS(dy, L, rows, x + off[k], out + k, stride);                                    \
    }                                                                                          \
                                                                                               \
    ATTR static void convlab_gconv_flat_bwd_weight_##NAME(const T *dy, const T *x, T *dw,       \
                                                          T *xph, T *dyext, double *total,     \
                                                          const convlab_gconv_geom *g,         \
                                                          ptrdiff_t grp)                       \
    {                                                                                          \
        const convlab_gconv_flat f = convlab_gconv_flat_dims(g);                               \
        const ptrdiff_t taps = g->CG * g->KH * g->KW, L = f.L, S = g->SW;                      \
        const ptrdiff_t plane = S * S * f.lenQ;                                                \
        ptrdiff_t toff[g->KH * g->KW];                                                         \
        for (ptrdiff_t kh = 0; kh < g->KH; kh++)                                               \
            for (ptrdiff_t kw = 0; kw < g->KW; kw++)                                           \
                toff[kh * g->KW + kw] = convlab_gconv_tap(g, &f, kh, kw);                      \
        for (ptrdiff_t t = 0; t < g->OG * taps; t++) total[t] = 0.0;                           \
        for (ptrdiff_t n = 0; n < g->N; n++) {                                                 \
            for (ptrdiff_t c = 0; c < g->CG; c++)                                              \
                convlab_gconv_pad_##NAME(x + (n * g->C + grp * g->CG + c) * g->H * g->W,       \
                                         xph + c * plane, g, &f);                              \
            for (ptrdiff_t m = 0; m < g->OG; m++)                                              \
                convlab_gconv_spread_##NAME(                                                   \
                    dy + (n * g->O + grp * g->OG + m) * g->OH * g->OW, dyext + m * L, g, &f);  \
            for (ptrdiff_t c = 0; c < g->CG; c++) {                                            \
                ptrdiff_t t = 0;                                                               \
                /* 3-wide rows: three taps per pass over dy (DOTS3) */                         \
                if (g->KW == 3)                                                                \
                    for (; t < g->KH * g->KW; t += 3)                                          \
                        DOTS3(dyext, L, g->OG, xph + c * plane, toff + t,                      \
                              total + c * g->KH * g->KW + t, taps);                            \
                for (; t < g->KH * g->KW; t++)                                                 \
                    DOTS(dyext, L, g->OG, xph + c * plane + toff[t],                           \
                         total + c * g->KH * g->KW + t, taps);                                 \
            }                                                                                  \
        }                                                                                      \
        for (ptrdiff_t t = 0; t < g->OG * taps; t++)                                           \
            dw[grp * g->OG * taps + t] = (T)total[t];                                          \
    }

/* (C, P) <-> (P, C) transposes of one image for the channels-last path: scalar in blocks of
 * 16 channels (each pixel's block one contiguous store), and with AVX2 8 x 8 register
 * transposes (8 loads, 24 shuffles, 8 stores per 64 floats). */
#define CONVLAB_GCONV_SCALAR_TRANSPOSES(SUF, T)                                                \
    static void convlab_gconv_to_cl_##SUF(const T *src, T *dst, ptrdiff_t C, ptrdiff_t P)     \
    {                                                                                          \
        ptrdiff_t c0 = 0;                                                                      \
        for (; c0 + 16 <= C; c0 += 16)                                                         \
            for (ptrdiff_t p = 0; p < P; p++) {                                                \
                T *restrict d = dst + p * C + c0;                                              \
                const T *restrict s = src + c0 * P + p;                                        \
                for (int k = 0; k < 16; k++) d[k] = s[k * P];                                  \
            }                                                                                  \
        for (; c0 < C; c0++)                                                                   \
            for (ptrdiff_t p = 0; p < P; p++) dst[p * C + c0] = src[c0 * P + p];               \
    }                                                                                          \
    static void convlab_gconv_from_cl_##SUF(const T *src, T *dst, ptrdiff_t C, ptrdiff_t P)   \
    {                                                                                          \
        convlab_gconv_to_cl_##SUF(src, dst, P, C);                                             \
    }

CONVLAB_GCONV_SCALAR_TRANSPOSES(f32, float)
CONVLAB_GCONV_SCALAR_TRANSPOSES(f64, double)

#if CONVLAB_GCONV_X86
#include <immintrin.h>

/* rows r[0..7] (8 floats each) -> columns */
CONVLAB_GCONV_AVX2 static inline void convlab_gconv_tr8(__m256 r[8])
{
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/* (R, K) row-major src -> (K, R) dst */
CONVLAB_GCONV_AVX2 static void convlab_gconv_to_cl_avx2(const float *src, float *dst,
                                                        ptrdiff_t R, ptrdiff_t K)
{
    const ptrdiff_t R8 = R - R % 8, K8 = K - K % 8;
    for (ptrdiff_t r0 = 0; r0 < R8; r0 += 8)
        for (ptrdiff_t k0 = 0; k0 < K8; k0 += 8) {
            __m256 v[8];
            for (int i = 0; i < 8; i++) v[i] = _mm256_loadu_ps(src + (r0 + i) * K + k0);
            convlab_gconv_tr8(v);
            for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + (k0 + i) * R + r0, v[i]);
        }
    /* the edges: rows beyond R8 for every column, columns beyond K8 for the first R8 rows */
    for (ptrdiff_t r = R8; r < R; r++)
        for (ptrdiff_t k = 0; k < K; k++) dst[k * R + r] = src[r * K + k];
    for (ptrdiff_t r = 0; r < R8; r++)
        for (ptrdiff_t k = K8; k < K; k++) dst[k * R + r] = src[r * K + k];
}

CONVLAB_GCONV_AVX2 static void convlab_gconv_from_cl_avx2(const float *src, float *dst,
                                                          ptrdiff_t C, ptrdiff_t P)
{
    convlab_gconv_to_cl_avx2(src, dst, P, C);
}

CONVLAB_GCONV_AVX2 static inline double convlab_gconv_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return (double)_mm_cvtss_f32(s);
}

/* out[m * stride] += dot(row m of (rows, L) dy, x): up to 8 rows per pass over x, each an
 * 8-lane accumulator (x loaded once for all of them), the tail in double */
CONVLAB_GCONV_AVX2 static void convlab_gconv_dots_rows_avx2(const float *dy, ptrdiff_t L,
                                                            ptrdiff_t rows, const float *x,
                                                            double *out, ptrdiff_t stride)
{
    const ptrdiff_t L8 = L - L % 8;
    if (rows == 1) {
        /* depthwise: one row, four independent accumulators (an FMA's latency, not one chain) */
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        ptrdiff_t j = 0;
        for (; j + 32 <= L; j += 32) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(dy + j), _mm256_loadu_ps(x + j), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(dy + j + 8), _mm256_loadu_ps(x + j + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(dy + j + 16), _mm256_loadu_ps(x + j + 16), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(dy + j + 24), _mm256_loadu_ps(x + j + 24), a3);
        }
        for (; j < L8; j += 8)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(dy + j), _mm256_loadu_ps(x + j), a0);
        double s = convlab_gconv_hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; j < L; j++) s += (double)(dy[j] * x[j]);
        out[0] += s;
        return;
    }
    for (ptrdiff_t m0 = 0; m0 < rows; m0 += 8) {
        const int count = rows - m0 < 8 ? (int)(rows - m0) : 8;
        const float *d = dy + m0 * L;
        __m256 acc[8];
        for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
        if (count == 8) {
            for (ptrdiff_t j = 0; j < L8; j += 8) {
                const __m256 xv = _mm256_loadu_ps(x + j);
                for (int i = 0; i < 8; i++)
                    acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(d + i * L + j), xv, acc[i]);
            }
        } else {
            for (ptrdiff_t j = 0; j < L8; j += 8) {
                const __m256 xv = _mm256_loadu_ps(x + j);
                for (int i = 0; i < count; i++)
                    acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(d + i * L + j), xv, acc[i]);
            }
        }
        for (int i = 0; i < count; i++) {
            double s = convlab_gconv_hsum(acc[i]);
            for (ptrdiff_t j = L8; j < L; j++) s += (double)(d[i * L + j] * x[j]);
            out[(m0 + i) * stride] += s;
        }
    }
}
/* out[m * stride + k] += dot(row m of (rows, L) dy, x + off[k]), k < 3: four rows by three
 * taps per pass (4 + 3 loads feed 12 multiply-adds, against 9 for 8 one tap at a time); the
 * remaining rows and the tail go through convlab_gconv_dots_rows_avx2 / double */
CONVLAB_GCONV_AVX2 static void convlab_gconv_dots3_rows_avx2(const float *dy, ptrdiff_t L,
                                                             ptrdiff_t rows, const float *x,
                                                             const ptrdiff_t *off, double *out,
                                                             ptrdiff_t stride)
{
    const ptrdiff_t L8 = L - L % 8;
    const float *x0 = x + off[0], *x1 = x + off[1], *x2 = x + off[2];
    ptrdiff_t m0 = 0;
    for (; m0 + 4 <= rows; m0 += 4) {
        const float *d = dy + m0 * L;
        __m256 acc[4][3];
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < 3; k++) acc[i][k] = _mm256_setzero_ps();
        for (ptrdiff_t j = 0; j < L8; j += 8) {
            const __m256 v0 = _mm256_loadu_ps(x0 + j), v1 = _mm256_loadu_ps(x1 + j);
            const __m256 v2 = _mm256_loadu_ps(x2 + j);
            for (int i = 0; i < 4; i++) {
                const __m256 dv = _mm256_loadu_ps(d + i * L + j);
                acc[i][0] = _mm256_fmadd_ps(dv, v0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(dv, v1, acc[i][1]);
                acc[i][2] = _mm256_fmadd_ps(dv, v2, acc[i][2]);
            }
        }
        for (int i = 0; i < 4; i++) {
            const float *xs[3] = {x0, x1, x2};
            for (int k = 0; k < 3; k++) {
                double s = convlab_gconv_hsum(acc[i][k]);
                for (ptrdiff_t j = L8; j < L; j++) s += (double)(d[i * L + j] * xs[k][j]);
                out[(m0 + i) * stride + k] += s;
            }
        }
    }
    if (m0 < rows)
        for (int k = 0; k < 3; k++)
            convlab_gconv_dots_rows_avx2(dy + m0 * L, L, rows - m0, x + off[k],
                                         out + m0 * stride + k, stride);
}
#endif

/* ---- the channels-last path: depthwise (one channel per group, multiplier 1) on small planes
 * A 4 x 4 plane gives even the flat path loops of a few elements; across channels there are
 * hundreds. Each image is transposed to (pixels, C) in per-thread scratch (it fits the L2),
 * every tap is then a pass over the channels (wt: the weight as (taps, C)), and the result is
 * transposed back. Units are images; the weight gradient's per-image sums go to a per-thread
 * double buffer, which the caller adds up in thread order (deterministic for a thread count). */
/* channels per register block of the channels-last forward: 4 AVX-512 vectors of float */
#define CONVLAB_GCONV_CL_BLOCK 64

#define CONVLAB_GCONV_CL_KERNELS(NAME, T, ATTR, TO_CL, FROM_CL)                                 \
    /* one output pixel's channels [c0, c0 + cn) into yr: every tap summed in registers (cn is the \
     * constant CONVLAB_GCONV_CL_BLOCK on the main path, so the accumulators are a few vectors),   \
     * in the order bias, then taps (kh, kw) */                                                    \
    ATTR static inline __attribute__((always_inline)) void convlab_gconv_cl_pixel_##NAME(          \
        const T *xt, const T *wt, const T *bias, T *yr, const convlab_gconv_geom *g, ptrdiff_t oh, \
        ptrdiff_t ow, ptrdiff_t c0, ptrdiff_t cn)                                                  \
    {                                                                                              \
        const ptrdiff_t C = g->C;                                                                  \
        T acc[CONVLAB_GCONV_CL_BLOCK];                                                             \
        for (ptrdiff_t c = 0; c < cn; c++) acc[c] = bias ? bias[c0 + c] : (T)0;                    \
        for (ptrdiff_t kh = 0; kh < g->KH; kh++) {                                                 \
            const ptrdiff_t ih = oh * g->SH - g->PH + kh * g->DH;                                  \
            if (ih < 0 || ih >= g->H) continue;                                                    \
            for (ptrdiff_t kw = 0; kw < g->KW; kw++) {                                             \
                const ptrdiff_t iw = ow * g->SW - g->PW + kw * g->DW;                              \
                if (iw < 0 || iw >= g->W) continue;                                                \
                const T *restrict xr = xt + (ih * g->W + iw) * C + c0;                             \
                const T *restrict wr = wt + (kh * g->KW + kw) * C + c0;                            \
                for (ptrdiff_t c = 0; c < cn; c++) acc[c] += wr[c] * xr[c];                        \
            }                                                                                      \
        }                                                                                          \
        for (ptrdiff_t c = 0; c < cn; c++) yr[c0 + c] = acc[c];                                    \
    }                                                                                              \
                                                                                               \
    ATTR static void convlab_gconv_cl_fwd_##NAME(const T *x, const T *wt, const T *bias, T *y,     \
                                                 T *xt, T *yt, const convlab_gconv_geom *g,        \
                                                 ptrdiff_t n)                                      \
    {                                                                                              \
        const ptrdiff_t C = g->C, P = g->H * g->W, Q = g->OH * g->OW;                              \
        const ptrdiff_t cfull = C - C % CONVLAB_GCONV_CL_BLOCK;                                    \
        TO_CL(x + n * C * P, xt, C, P);                                                            \
        for (ptrdiff_t oh = 0; oh < g->OH; oh++)                                                   \
            for (ptrdiff_t ow = 0; ow < g->OW; ow++) {                                             \
                T *yr = yt + (oh * g->OW + ow) * C;                                                \
                for (ptrdiff_t c0 = 0; c0 < cfull; c0 += CONVLAB_GCONV_CL_BLOCK)                   \
                    convlab_gconv_cl_pixel_##NAME(xt, wt, bias, yr, g, oh, ow, c0,                 \
                                                  CONVLAB_GCONV_CL_BLOCK);                         \
                if (cfull < C)                                                                     \
                    convlab_gconv_cl_pixel_##NAME(xt, wt, bias, yr, g, oh, ow, cfull, C - cfull);  \
            }                                                                                      \
        FROM_CL(yt, y + n * C * Q, C, Q);                                                          \
    }                                                                                              \
                                                                                               \
    ATTR static void convlab_gconv_cl_bwd_data_##NAME(const T *dy, const T *wt, T *dx, T *dxt,  \
                                                      T *dyt, const convlab_gconv_geom *g,     \
                                                      ptrdiff_t n)                             \
    {                                                                                          \
        const ptrdiff_t C = g->C, P = g->H * g->W, Q = g->OH * g->OW;                          \
        TO_CL(dy + n * C * Q, dyt, C, Q);                                                      \
        memset(dxt, 0, (size_t)(P * C) * sizeof(T));                                           \
        for (ptrdiff_t oh = 0; oh < g->OH; oh++)                                               \
            for (ptrdiff_t ow = 0; ow < g->OW; ow++) {                                         \
                const T *restrict gr = dyt + (oh * g->OW + ow) * C;                            \
                for (ptrdiff_t kh = 0; kh < g->KH; kh++) {                                     \
                    const ptrdiff_t ih = oh * g->SH - g->PH + kh * g->DH;                      \
                    if (ih < 0 || ih >= g->H) continue;                                        \
                    for (ptrdiff_t kw = 0; kw < g->KW; kw++) {                                 \
                        const ptrdiff_t iw = ow * g->SW - g->PW + kw * g->DW;                  \
                        if (iw < 0 || iw >= g->W) continue;                                    \
                        T *restrict dr = dxt + (ih * g->W + iw) * C;                           \
                        const T *restrict wr = wt + (kh * g->KW + kw) * C;                     \
                        for (ptrdiff_t c = 0; c < C; c++) dr[c] += wr[c] * gr[c];              \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
        FROM_CL(dxt, dx + n * C * P, C, P);                                                    \
    }                                                                                          \
                                                                                               \
    /* part (taps, C) += this image's weight gradient (summed in T, added in double) */        \
    ATTR static void convlab_gconv_cl_bwd_weight_##NAME(const T *dy, const T *x, double *part,  \
                                                        T *xt, T *dyt, T *acc,                 \
                                                        const convlab_gconv_geom *g,           \
                                                        ptrdiff_t n)                           \
    {                                                                                          \
        const ptrdiff_t C = g->C, P = g->H * g->W, Q = g->OH * g->OW;                          \
        const ptrdiff_t taps = g->KH * g->KW;                                                  \
        TO_CL(x + n * C * P, xt, C, P);                                                        \
        TO_CL(dy + n * C * Q, dyt, C, Q);                                                      \
        memset(acc, 0, (size_t)(taps * C) * sizeof(T));                                        \
        for (ptrdiff_t oh = 0; oh < g->OH; oh++)                                               \
            for (ptrdiff_t ow = 0; ow < g->OW; ow++) {                                         \
                const T *restrict gr = dyt + (oh * g->OW + ow) * C;                            \
                for (ptrdiff_t kh = 0; kh < g->KH; kh++) {                                     \
                    const ptrdiff_t ih = oh * g->SH - g->PH + kh * g->DH;                      \
                    if (ih < 0 || ih >= g->H) continue;                                        \
                    for (ptrdiff_t kw = 0; kw < g->KW; kw++) {                                 \
                        const ptrdiff_t iw = ow * g->SW - g->PW + kw * g->DW;                  \
                        if (iw < 0 || iw >= g->W) continue;                                    \
                        const T *restrict xr = xt + (ih * g->W + iw) * C;                      \
                        T *restrict ar = acc + (kh * g->KW + kw) * C;                          \
                        for (ptrdiff_t c = 0; c < C; c++) ar[c] += gr[c] * xr[c];              \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
        for (ptrdiff_t i = 0; i < taps * C; i++) part[i] += (double)acc[i];                    \
    }

#define CONVLAB_GCONV_ALL(NAME, T, ATTR, TO_CL, FROM_CL, DOTS, DOTS3)                              \
    CONVLAB_GCONV_KERNELS(NAME, T, ATTR)                                                       \
    CONVLAB_GCONV_FLAT_KERNELS(NAME, T, ATTR, DOTS, DOTS3)                                     \
    CONVLAB_GCONV_CL_KERNELS(NAME, T, ATTR, TO_CL, FROM_CL)

/* The weight gradient's dot products (DOTS): the macro's own loop, or AVX2 rows at a time. */
#define CONVLAB_GCONV_OWN_DOTS(NAME) convlab_gconv_dots_##NAME
#define CONVLAB_GCONV_OWN_DOTS3(NAME) convlab_gconv_dots3_##NAME

CONVLAB_GCONV_ALL(generic_f32, float, , convlab_gconv_to_cl_f32, convlab_gconv_from_cl_f32,
                  CONVLAB_GCONV_OWN_DOTS(generic_f32),
                  CONVLAB_GCONV_OWN_DOTS3(generic_f32))
CONVLAB_GCONV_ALL(generic_f64, double, , convlab_gconv_to_cl_f64, convlab_gconv_from_cl_f64,
                  CONVLAB_GCONV_OWN_DOTS(generic_f64),
                  CONVLAB_GCONV_OWN_DOTS3(generic_f64))
#if CONVLAB_GCONV_X86
CONVLAB_GCONV_ALL(avx2_f32, float, CONVLAB_GCONV_AVX2, convlab_gconv_to_cl_avx2,
                  convlab_gconv_from_cl_avx2, convlab_gconv_dots_rows_avx2,
                  convlab_gconv_dots3_rows_avx2)
CONVLAB_GCONV_ALL(avx2_f64, double, CONVLAB_GCONV_AVX2, convlab_gconv_to_cl_f64,
                  convlab_gconv_from_cl_f64, CONVLAB_GCONV_OWN_DOTS(avx2_f64),
                  CONVLAB_GCONV_OWN_DOTS3(avx2_f64))
CONVLAB_GCONV_ALL(avx512_f32, float, CONVLAB_GCONV_AVX512, convlab_gconv_to_cl_avx2,
                  convlab_gconv_from_cl_avx2, convlab_gconv_dots_rows_avx2,
                  convlab_gconv_dots3_rows_avx2)
CONVLAB_GCONV_ALL(avx512_f64, double, CONVLAB_GCONV_AVX512, convlab_gconv_to_cl_f64,
                  convlab_gconv_from_cl_f64, CONVLAB_GCONV_OWN_DOTS(avx512_f64),
                  CONVLAB_GCONV_OWN_DOTS3(avx512_f64))
#endif

#if CONVLAB_GCONV_X86
/* ---- tiny planes (AVX-512, float32 depthwise with one output per channel) ----------------
 * An input plane of at most 16 pixels (MobileNetV2's 4 x 4 maps) is one register: each tap
 * is a masked permute of it (the lanes of the taps outside the image zeroed) times the tap's
 * weight, so a channel costs one load, KH*KW permutes and FMAs and one store, straight from
 * and to NCHW (the channels-last path spends more on its two transposes than on the taps).
 * Sum order per output: bias, then taps (kh, kw), as on the channels-last path. */
static inline int convlab_gconv_tiny(const convlab_gconv_geom *g)
{
    return g->H * g->W <= 16 && g->OH * g->OW <= 16 && g->KH * g->KW <= 64;
}

CONVLAB_GCONV_AVX512 static void convlab_gconv_tiny_fwd_avx512_f32(
    const float *x, const float *wt, const float *bias, float *y, const convlab_gconv_geom *g,
    ptrdiff_t n)
{
    const ptrdiff_t C = g->C, P = g->H * g->W, Q = g->OH * g->OW, taps = g->KH * g->KW;
    int lanes[64][16];
    __mmask16 keep[64];
    for (ptrdiff_t kh = 0; kh < g->KH; kh++)
        for (ptrdiff_t kw = 0; kw < g->KW; kw++) {
            const ptrdiff_t t = kh * g->KW + kw;
            unsigned bits = 0;
            for (ptrdiff_t q = 0; q < 16; q++) {
                const ptrdiff_t oh = q / (g->OW ? g->OW : 1), ow = q % (g->OW ? g->OW : 1);
                const ptrdiff_t ih = oh * g->SH - g->PH + kh * g->DH;
                const ptrdiff_t iw = ow * g->SW - g->PW + kw * g->DW;
                const int inside = q < Q && ih >= 0 && ih < g->H && iw >= 0 && iw < g->W;
                lanes[t][q] = inside ? (int)(ih * g->W + iw) : 0;
                if (inside) bits |= 1u << q;
            }
            keep[t] = (__mmask16)bits;
        }
    const __mmask16 xm = (__mmask16)((1u << P) - 1), ym = (__mmask16)((1u << Q) - 1);
    for (ptrdiff_t c = 0; c < C; c++) {
        const __m512 xv = _mm512_maskz_loadu_ps(xm, x + (n * C + c) * P);
        __m512 acc = _mm512_set1_ps(bias ? bias[c] : 0.0f);
        for (ptrdiff_t t = 0; t < taps; t++) {
            const __m512i idx = _mm512_loadu_si512((const void *)lanes[t]);
            acc = _mm512_fmadd_ps(_mm512_maskz_permutexvar_ps(keep[t], idx, xv),
                                  _mm512_set1_ps(wt[t * C + c]), acc);
        }
        _mm512_mask_storeu_ps(y + (n * C + c) * Q, ym, acc);
    }
}
#endif

/* isa: 0 baseline, 1 AVX2 + FMA, 2 AVX-512 (the caller checked the CPU runs it). */
#if CONVLAB_GCONV_X86
#define CONVLAB_GCONV_DISPATCH(KIND, T, ...)                                                   \
    do {                                                                                       \
        if (isa == 2) convlab_gconv_##KIND##_avx512_##T(__VA_ARGS__);                          \
        else if (isa == 1) convlab_gconv_##KIND##_avx2_##T(__VA_ARGS__);                       \
        else convlab_gconv_##KIND##_generic_##T(__VA_ARGS__);                                  \
    } while (0)
#else
#define CONVLAB_GCONV_DISPATCH(KIND, T, ...) convlab_gconv_##KIND##_generic_##T(__VA_ARGS__)
#endif

#define CONVLAB_GCONV_ENTRIES(T, CT)                                                           \
    static void convlab_gconv_forward_##T(int isa, const CT *x, const CT *w, const CT *bias,    \
                                          CT *y, const convlab_gconv_geom *g, ptrdiff_t n,      \
                                          ptrdiff_t o)                                          \
    {                                                                                          \
        (void)isa;                                                                             \
        CONVLAB_GCONV_DISPATCH(fwd, T, x, w, bias, y, g, n, o);                                \
    }                                                                                          \
    static void convlab_gconv_backward_data_##T(int isa, const CT *dy, const CT *w, CT *dx,     \
                                                const convlab_gconv_geom *g, ptrdiff_t n,       \
                                                ptrdiff_t ci)                                   \
    {                                                                                          \
        (void)isa;                                                                             \
        CONVLAB_GCONV_DISPATCH(bwd_data, T, dy, w, dx, g, n, ci);                              \
    }                                                                                          \
    static void convlab_gconv_backward_weight_##T(int isa, const CT *dy, const CT *x, CT *dw,   \
                                                  CT *acc, double *total,                      \
                                                  const convlab_gconv_geom *g, ptrdiff_t o)     \
    {                                                                                          \
        (void)isa;                                                                             \
        CONVLAB_GCONV_DISPATCH(bwd_weight, T, dy, x, dw, acc, total, g, o);                    \
    }

#define CONVLAB_GCONV_FLAT_ENTRIES(T, CT)                                                      \
    static void convlab_gconv_flat_forward_##T(int isa, const CT *x, const CT *w,              \
                                               const CT *bias, CT *y, CT *xpad, CT *yext,      \
                                               const convlab_gconv_geom *g, ptrdiff_t n,       \
                                               ptrdiff_t grp)                                  \
    {                                                                                          \
        (void)isa;                                                                             \
        CONVLAB_GCONV_DISPATCH(flat_fwd, T, x, w, bias, y, xpad, yext, g, n, grp);             \
    }                                                                                          \
    static void convlab_gconv_flat_backward_data_##T(int isa, const CT *dy, const CT *w,       \
                                                     CT *dx, CT *dxpad, CT *dyext,             \
                                                     const convlab_gconv_geom *g, ptrdiff_t n, \
                                                     ptrdiff_t grp)                            \
    {                                                                                          \
        (void)isa;                                                                             \
        CONVLAB_GCONV_DISPATCH(flat_bwd_data, T, dy, w, dx, dxpad, dyext, g, n, grp);          \
    }                                                                                          \
    static void convlab_gconv_flat_backward_weight_##T(int isa, const CT *dy, const CT *x,     \
                                                       CT *dw, CT *xpad, CT *dyext,            \
                                                       double *total,                          \
                                                       const convlab_gconv_geom *g,            \
                                                       ptrdiff_t grp)                          \
    {                                                                                          \
        (void)isa;                                                                             \
        CONVLAB_GCONV_DISPATCH(flat_bwd_weight, T, dy, x, dw, xpad, dyext, total, g, grp);     \
    }                                                                                          \
    /* scratch each flat unit needs: (padded planes, laid-out planes) in elements */           \
    static void convlab_gconv_flat_scratch_##T(const convlab_gconv_geom *g, ptrdiff_t *pad,    \
                                               ptrdiff_t *ext)                                 \
    {                                                                                          \
        const convlab_gconv_flat f = convlab_gconv_flat_dims(g);                               \
        *pad = g->SW * g->SW * f.lenQ * g->CG;                                                 \
        *ext = f.L * g->OG;                                                                    \
    }

CONVLAB_GCONV_ENTRIES(f32, float)
CONVLAB_GCONV_ENTRIES(f64, double)
CONVLAB_GCONV_FLAT_ENTRIES(f32, float)
CONVLAB_GCONV_FLAT_ENTRIES(f64, double)

/* whether the channels-last forward takes the tiny-plane kernel: float32 under AVX-512 */
#if CONVLAB_GCONV_X86
#define CONVLAB_GCONV_TINY_f32(isa, g) ((isa) == 2 && convlab_gconv_tiny(g))
#else
#define CONVLAB_GCONV_TINY_f32(isa, g) 0
#define convlab_gconv_tiny_fwd_avx512_f32(...) ((void)0)
#endif
#define CONVLAB_GCONV_TINY_f64(isa, g) 0

#define CONVLAB_GCONV_CL_ENTRIES(T, CT)                                                        \
    static void convlab_gconv_cl_forward_##T(int isa, const CT *x, const CT *wt,               \
                                             const CT *bias, CT *y, CT *xt, CT *yt,            \
                                             const convlab_gconv_geom *g, ptrdiff_t n)         \
    {                                                                                          \
        (void)isa;                                                                             \
        if (CONVLAB_GCONV_TINY_##T(isa, g)) {                                                  \
            convlab_gconv_tiny_fwd_avx512_f32((const float *)x, (const float *)wt,             \
                                              (const float *)bias, (float *)y, g, n);          \
            return;                                                                            \
        }                                                                                      \
        CONVLAB_GCONV_DISPATCH(cl_fwd, T, x, wt, bias, y, xt, yt, g, n);                       \
    }                                                                                          \
    static void convlab_gconv_cl_backward_data_##T(int isa, const CT *dy, const CT *wt,        \
                                                   CT *dx, CT *dxt, CT *dyt,                   \
                                                   const convlab_gconv_geom *g, ptrdiff_t n)   \
    {                                                                                          \
        (void)isa;                                                                             \
        CONVLAB_GCONV_DISPATCH(cl_bwd_data, T, dy, wt, dx, dxt, dyt, g, n);                    \
    }                                                                                          \
    static void convlab_gconv_cl_backward_weight_##T(int isa, const CT *dy, const CT *x,       \
                                                     double *part, CT *xt, CT *dyt, CT *acc,   \
                                                     const convlab_gconv_geom *g, ptrdiff_t n) \
    {                                                                                          \
        (void)isa;                                                                             \
        CONVLAB_GCONV_DISPATCH(cl_bwd_weight, T, dy, x, part, xt, dyt, acc, g, n);             \
    }

CONVLAB_GCONV_CL_ENTRIES(f32, float)
CONVLAB_GCONV_CL_ENTRIES(f64, double)

#endif /* CONVLAB_GROUPED_DIRECT_H */
