/*
 * im2col_fill: the packing step of every convolution kernel. Writes `count` consecutive output
 * pixels of one column-matrix row (one kernel tap) into a destination layout: consecutive
 * pixels `step` apart, and after every `panel` pixels a further `jump` (GEMM panel layout).
 *
 * Runs are short (one feature-map row, at most one panel), so the copies are vectorised with
 * masked loads on AVX-512 rather than left to memcpy calls or scalar tails; the function is
 * compiled once per ISA and picked at run time with the micro-kernels.
 *
 * `slack`: the destination may be written up to one vector past each run (the packing buffers
 * are, and later runs overwrite that spill in order). Then tails are stored whole: a masked
 * store costs several times a plain one on AMD Zen 4. Without slack (a caller's array) tails
 * are stored with a mask.
 */
#ifndef CONVLAB_IM2COL_FILL_H
#define CONVLAB_IM2COL_FILL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ukernels.h"

typedef struct {
    ptrdiff_t C, H, W;     /* input channels and spatial size of one image */
    ptrdiff_t KH, KW;      /* kernel */
    ptrdiff_t SH, SW;      /* stride */
    ptrdiff_t PH, PW;      /* zero padding (may be negative: the transposed conv crops) */
    ptrdiff_t DH, DW;      /* dilation */
    ptrdiff_t OH, OW;      /* output size */
} convlab_conv_geom;

typedef void (*convlab_fill_f32)(const float *plane, const convlab_conv_geom *g, ptrdiff_t kh,
                                 ptrdiff_t kw, ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t count,
                                 float *dst, ptrdiff_t step, ptrdiff_t panel, ptrdiff_t jump,
                                 int slack);
typedef void (*convlab_fill_f64)(const double *plane, const convlab_conv_geom *g, ptrdiff_t kh,
                                 ptrdiff_t kw, ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t count,
                                 double *dst, ptrdiff_t step, ptrdiff_t panel, ptrdiff_t jump,
                                 int slack);

/* `plane` is the tap's input channel; (oh, ow) the first output pixel. */
#define CONVLAB_FILL_BODY(T, COPY, ZERO)                                                       \
    {                                                                                          \
        ptrdiff_t done = 0, in_panel = 0;                                                      \
        (void)slack;                                                                           \
        const ptrdiff_t row_off = kh * g->DH - g->PH, col_off = kw * g->DW - g->PW;            \
        while (done < count) {                                                                 \
            /* a run stays inside one output row and one destination panel */                 \
            ptrdiff_t run = g->OW - ow;                                                        \
            if (count - done < run) run = count - done;                                        \
            if (panel - in_panel < run) run = panel - in_panel;                                \
            const ptrdiff_t ih = oh * g->SH + row_off, iw0 = ow * g->SW + col_off;             \
            if (ih < 0 || ih >= g->H) {                                                        \
                if (step == 1) ZERO(dst, run);                                                 \
                else for (ptrdiff_t t = 0; t < run; t++) dst[t * step] = 0;                    \
            } else if (g->SW == 1) {                                                           \
                const T *row = plane + ih * g->W + iw0;                                        \
                ptrdiff_t lo = -iw0, hi = g->W - iw0;                                          \
                lo = lo < 0 ? 0 : (lo > run ? run : lo);                                       \
                hi = hi < lo ? lo : (hi > run ? run : hi);                                     \
                if (step == 1) {                                                               \
                    ZERO(dst, lo);                                                             \
                    COPY(dst + lo, row + lo, hi - lo);                                         \
                    ZERO(dst + hi, run - hi);                                                  \
                } else {                                                                       \
                    for (ptrdiff_t t = 0; t < lo; t++) dst[t * step] = 0;                      \
                    for (ptrdiff_t t = lo; t < hi; t++) dst[t * step] = row[t];                \
                    for (ptrdiff_t t = hi; t < run; t++) dst[t * step] = 0;                    \
                }                                                                              \
            } else {                                                                           \
                const T *row = plane + ih * g->W;                                              \
                for (ptrdiff_t t = 0; t < run; t++) {                                          \
                    const ptrdiff_t iw = iw0 + t * g->SW;                                      \
                    dst[t * step] = (iw >= 0 && iw < g->W) ? row[iw] : (T)0;                   \
                }                                                                              \
            }                                                                                  \
            dst += run * step;                                                                 \
            done += run;                                                                       \
            ow += run;                                                                         \
            if (ow == g->OW) { ow = 0; oh++; }                                                 \
            in_panel += run;                                                                   \
            if (in_panel == panel) { in_panel = 0; dst += jump; }                              \
        }                                                                                      \
    }

#define CONVLAB_FILL_SIGNATURE(NAME, T)                                                        \
    static void NAME(const T *plane, const convlab_conv_geom *g, ptrdiff_t kh, ptrdiff_t kw,   \
                     ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t count, T *dst, ptrdiff_t step,      \
                     ptrdiff_t panel, ptrdiff_t jump, int slack)

#define CONVLAB_COPY_LOOP(d, s, n) for (ptrdiff_t t_ = 0; t_ < (n); t_++) (d)[t_] = (s)[t_]
#define CONVLAB_ZERO_LOOP(d, n) for (ptrdiff_t t_ = 0; t_ < (n); t_++) (d)[t_] = 0
#define CONVLAB_COPY_PLAIN(d, s, n) CONVLAB_COPY_LOOP(d, s, n)
#define CONVLAB_ZERO_PLAIN(d, n) CONVLAB_ZERO_LOOP(d, n)

CONVLAB_FILL_SIGNATURE(convlab_fill_generic_f32, float)
CONVLAB_FILL_BODY(float, CONVLAB_COPY_PLAIN, CONVLAB_ZERO_PLAIN)
CONVLAB_FILL_SIGNATURE(convlab_fill_generic_f64, double)
CONVLAB_FILL_BODY(double, CONVLAB_COPY_PLAIN, CONVLAB_ZERO_PLAIN)

#if CONVLAB_X86
/* AVX-512: whole vectors, then the tail: loaded with a mask (never reads past the source),
 * stored whole when the destination has slack, else with a mask. */
#define CONVLAB_RUNS_512(NAME, T, LANES, MASK_T, LOAD, STORE, MLOAD, MSTORE, ZEROV)             \
    __attribute__((target(CONVLAB_AVX512))) static inline void NAME##_copy(                     \
        T *d, const T *s, ptrdiff_t n, int slack)                                              \
    {                                                                                          \
        for (; n >= LANES; n -= LANES, d += LANES, s += LANES) STORE(d, LOAD(s));              \
        if (n > 0) {                                                                           \
            const MASK_T m = (MASK_T)((1u << n) - 1u);                                         \
            if (slack) STORE(d, MLOAD(m, s));                                                  \
            else MSTORE(d, m, MLOAD(m, s));                                                    \
        }                                                                                      \
    }                                                                                          \
    __attribute__((target(CONVLAB_AVX512))) static inline void NAME##_zero(T *d, ptrdiff_t n,   \
                                                                            int slack)         \
    {                                                                                          \
        for (; n >= LANES; n -= LANES, d += LANES) STORE(d, ZEROV());                          \
        if (n > 0) {                                                                           \
            if (slack) STORE(d, ZEROV());                                                      \
            else MSTORE(d, (MASK_T)((1u << n) - 1u), ZEROV());                                 \
        }                                                                                      \
    }
CONVLAB_RUNS_512(convlab_run512_f32, float, 16, __mmask16, _mm512_loadu_ps, _mm512_storeu_ps,
                 _mm512_maskz_loadu_ps, _mm512_mask_storeu_ps, _mm512_setzero_ps)
CONVLAB_RUNS_512(convlab_run512_f64, double, 8, __mmask8, _mm512_loadu_pd, _mm512_storeu_pd,
                 _mm512_maskz_loadu_pd, _mm512_mask_storeu_pd, _mm512_setzero_pd)
#define CONVLAB_COPY_512_F32(d, s, n) convlab_run512_f32_copy(d, s, n, slack)
#define CONVLAB_ZERO_512_F32(d, n) convlab_run512_f32_zero(d, n, slack)
#define CONVLAB_COPY_512_F64(d, s, n) convlab_run512_f64_copy(d, s, n, slack)
#define CONVLAB_ZERO_512_F64(d, n) convlab_run512_f64_zero(d, n, slack)

__attribute__((target(CONVLAB_AVX512)))
CONVLAB_FILL_SIGNATURE(convlab_fill_avx512_f32, float)
CONVLAB_FILL_BODY(float, CONVLAB_COPY_512_F32, CONVLAB_ZERO_512_F32)
__attribute__((target(CONVLAB_AVX512)))
CONVLAB_FILL_SIGNATURE(convlab_fill_avx512_f64, double)
CONVLAB_FILL_BODY(double, CONVLAB_COPY_512_F64, CONVLAB_ZERO_512_F64)

/* AVX2: the compiler vectorises the plain loops 256 bits wide. */
__attribute__((target(CONVLAB_AVX2)))
CONVLAB_FILL_SIGNATURE(convlab_fill_avx2_f32, float)
CONVLAB_FILL_BODY(float, CONVLAB_COPY_PLAIN, CONVLAB_ZERO_PLAIN)
__attribute__((target(CONVLAB_AVX2)))
CONVLAB_FILL_SIGNATURE(convlab_fill_avx2_f64, double)
CONVLAB_FILL_BODY(double, CONVLAB_COPY_PLAIN, CONVLAB_ZERO_PLAIN)
#endif /* CONVLAB_X86 */

/* The fill for an ISA (as returned by convlab_best_isa and friends). */
static convlab_fill_f32 convlab_fill_for_f32(int isa)
{
#if CONVLAB_X86
    if (isa == CONVLAB_ISA_AVX512) return convlab_fill_avx512_f32;
    if (isa == CONVLAB_ISA_AVX2) return convlab_fill_avx2_f32;
#endif
    (void)isa;
    return convlab_fill_generic_f32;
}

static convlab_fill_f64 convlab_fill_for_f64(int isa)
{
#if CONVLAB_X86
    if (isa == CONVLAB_ISA_AVX512) return convlab_fill_avx512_f64;
    if (isa == CONVLAB_ISA_AVX2) return convlab_fill_avx2_f64;
#endif
    (void)isa;
    return convlab_fill_generic_f64;
}

/* ------------------------------------------------------------------------------------------ */
/* Segment gathers: the fast path of the packing when the image has been copied with its zero  */
/* padding (so no tap ever falls outside it) and the width stride is 1. The output pixels of a */
/* block are cut once into runs (one output row, one destination panel); each run is one      */
/* contiguous copy for every tap, so the per-tap work is a short loop of vector copies.        */
/* ------------------------------------------------------------------------------------------ */
typedef struct {
    ptrdiff_t panel;   /* destination panel */
    ptrdiff_t offset;  /* first destination element inside the panel row */
    ptrdiff_t src;     /* first source element, for tap (0, 0), in the padded channel */
    ptrdiff_t len;     /* pixels */
} convlab_segment;

/* Runs of output pixels [p0, p0 + count) for panels of `panel` pixels; `wp` is the padded
 * width. Returns the number of segments written (at most count + count / panel + 1). */
static ptrdiff_t convlab_segments(const convlab_conv_geom *g, ptrdiff_t wp, ptrdiff_t p0,
                                  ptrdiff_t count, ptrdiff_t panel, convlab_segment *seg)
{
    ptrdiff_t n = 0, done = 0, in_panel = 0, q = 0, oh = p0 / g->OW, ow = p0 % g->OW;
    while (done < count) {
        ptrdiff_t run = g->OW - ow;
        if (count - done < run) run = count - done;
        if (panel - in_panel < run) run = panel - in_panel;
        seg[n].panel = q;
        seg[n].offset = in_panel;
        seg[n].src = oh * g->SH * wp + ow;
        seg[n].len = run;
        n++;
        done += run;
        ow += run;
        if (ow == g->OW) { ow = 0; oh++; }
        in_panel += run;
        if (in_panel == panel) { in_panel = 0; q++; }
    }
    return n;
}

/* dst[seg.panel * stride + seg.offset + t] = src[seg.src + t] for every segment; with `slack`
 * a tail may be stored whole (see the slack rule at the top of this file). */
typedef void (*convlab_gather_f32)(const float *src, float *dst, ptrdiff_t stride,
                                   const convlab_segment *seg, ptrdiff_t n, int slack);
typedef void (*convlab_gather_f64)(const double *src, double *dst, ptrdiff_t stride,
                                   const convlab_segment *seg, ptrdiff_t n, int slack);

#define CONVLAB_GATHER(NAME, ATTR, T, COPY)                                                    \
    ATTR static void NAME(const T *src, T *dst, ptrdiff_t stride, const convlab_segment *seg,  \
                          ptrdiff_t n, int slack)                                              \
    {                                                                                          \
        (void)slack;                                                                           \
        for (ptrdiff_t i = 0; i < n; i++)                                                      \
            COPY(dst + seg[i].panel * stride + seg[i].offset, src + seg[i].src, seg[i].len);   \
    }

CONVLAB_GATHER(convlab_gather_generic_f32, , float, CONVLAB_COPY_PLAIN)
CONVLAB_GATHER(convlab_gather_generic_f64, , double, CONVLAB_COPY_PLAIN)
#if CONVLAB_X86
CONVLAB_GATHER(convlab_gather_avx512_f32, __attribute__((target(CONVLAB_AVX512))), float,
               CONVLAB_COPY_512_F32)
CONVLAB_GATHER(convlab_gather_avx512_f64, __attribute__((target(CONVLAB_AVX512))), double,
               CONVLAB_COPY_512_F64)
CONVLAB_GATHER(convlab_gather_avx2_f32, __attribute__((target(CONVLAB_AVX2))), float,
               CONVLAB_COPY_PLAIN)
CONVLAB_GATHER(convlab_gather_avx2_f64, __attribute__((target(CONVLAB_AVX2))), double,
               CONVLAB_COPY_PLAIN)
#endif

static convlab_gather_f32 convlab_gather_for_f32(int isa)
{
#if CONVLAB_X86
    if (isa == CONVLAB_ISA_AVX512) return convlab_gather_avx512_f32;
    if (isa == CONVLAB_ISA_AVX2) return convlab_gather_avx2_f32;
#endif
    (void)isa;
    return convlab_gather_generic_f32;
}

static convlab_gather_f64 convlab_gather_for_f64(int isa)
{
#if CONVLAB_X86
    if (isa == CONVLAB_ISA_AVX512) return convlab_gather_avx512_f64;
    if (isa == CONVLAB_ISA_AVX2) return convlab_gather_avx2_f64;
#endif
    (void)isa;
    return convlab_gather_generic_f64;
}

/* Copy one channel plane (H x W) into the middle of a zero-padded (H + 2 ph) x (W + 2 pw)
 * plane. */
#define CONVLAB_PAD_PLANE(NAME, T)                                                             \
    static void NAME(const T *x, ptrdiff_t h, ptrdiff_t w, ptrdiff_t ph, ptrdiff_t pw, T *out) \
    {                                                                                          \
        const ptrdiff_t wp = w + 2 * pw;                                                       \
        memset(out, 0, (size_t)(ph * wp) * sizeof(T));                                         \
        for (ptrdiff_t i = 0; i < h; i++) {                                                    \
            T *row = out + (ph + i) * wp;                                                      \
            for (ptrdiff_t j = 0; j < pw; j++) row[j] = 0;                                     \
            memcpy(row + pw, x + i * w, (size_t)w * sizeof(T));                                \
            for (ptrdiff_t j = pw + w; j < wp; j++) row[j] = 0;                                \
        }                                                                                      \
        memset(out + (ph + h) * wp, 0, (size_t)(ph * wp) * sizeof(T));                         \
    }
CONVLAB_PAD_PLANE(convlab_pad_plane_f32, float)
CONVLAB_PAD_PLANE(convlab_pad_plane_f64, double)

#endif /* CONVLAB_IM2COL_FILL_H */
