/* Direct grouped convolution: depthwise (one input channel per group, any channel multiplier)
 * and groups of a few channels (ResNeXt's 4 or 8), where a GEMM would be a stack of tiny
 * matrices. The work is memory-bound, so every loop is an element-wise pass over one output
 * row that the compiler vectorises over the output width (unit stride; a stride of 2 is a
 * strided load or store):
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

CONVLAB_GCONV_KERNELS(generic_f32, float, )
CONVLAB_GCONV_KERNELS(generic_f64, double, )
#if CONVLAB_GCONV_X86
CONVLAB_GCONV_KERNELS(avx2_f32, float, CONVLAB_GCONV_AVX2)
CONVLAB_GCONV_KERNELS(avx2_f64, double, CONVLAB_GCONV_AVX2)
CONVLAB_GCONV_KERNELS(avx512_f32, float, CONVLAB_GCONV_AVX512)
CONVLAB_GCONV_KERNELS(avx512_f64, double, CONVLAB_GCONV_AVX512)
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

CONVLAB_GCONV_ENTRIES(f32, float)
CONVLAB_GCONV_ENTRIES(f64, double)

#endif /* CONVLAB_GROUPED_DIRECT_H */
