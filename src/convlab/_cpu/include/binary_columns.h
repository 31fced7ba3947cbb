/*
 * Binary convolution of one-channel 0/1 images by kernel column (AVX-512, float32): the chart
 * CNN's first layer, where the generic kernels of binary_conv.h are bound by their transposes.
 *
 * With column stride 1, the KH taps of kernel column kw at output pixel (oh, ow) read one
 * input column: their bits form a KH-bit "column pattern" cp[oh][ow + kw*DW] (KH <= 5, so at
 * most 32 patterns). Every kernel column shares the one pattern row, shifted.
 *
 * Forward, per output channel: out = base + sum over kw of T[kw][pattern], where T[kw] is a
 * 32-entry table held in two registers and looked up for 16 pixels at once by vpermt2ps --
 * three lookups and three adds per 16 outputs, stored straight into the NCHW plane (aligned,
 * and past the caches when the output is large: the forward is bound by writing it).
 *
 * Weight gradient: a tap's sum is that of the output gradient over the pixels whose pattern
 * has its bit set. 16 channels at a time, the gradient is transposed 16 pixels by 16 in
 * registers; each pixel then adds its 16-channel vector into the bin bins[kw][pattern] of
 * every kernel column whose pattern is not zero (a quarter of them on 20-day charts), and the
 * bins are turned into taps once per block of images. The gradient is read once, as 16
 * sequential streams.
 */
#ifndef CONVLAB_BINARY_COLUMNS_H
#define CONVLAB_BINARY_COLUMNS_H

#include <stdint.h>
#include "binary_conv.h"

#define CONVLAB_BINCOL_MAX_KH 5
#define CONVLAB_BINCOL_MAX_KW 16
#ifndef CONVLAB_BINCOL_AHEAD
#define CONVLAB_BINCOL_AHEAD 128
#endif

/* 1 when the column kernels apply: AVX-512 on, one input channel, column stride 1, at most
 * 5 kernel rows (32 patterns, two registers per table) and 16 kernel columns. */
static inline int convlab_bincol_applies(const convlab_bin_geom *g, int avx512)
{
    return CONVLAB_BIN_X86 && avx512 && g->C == 1 && g->SW == 1 &&
           g->KH <= CONVLAB_BINCOL_MAX_KH && g->KW <= CONVLAB_BINCOL_MAX_KW;
}

/* Pixels of an output plane. */
static inline int64_t convlab_bincol_plane(const convlab_bin_geom *g)
{
    return g->OH * g->OW;
}

/* Bytes of one thread's scratch for the forward: patterns, then per-kernel-column patterns
 * of every output pixel. */
static inline size_t convlab_bincol_forward_bytes(const convlab_bin_geom *g)
{
    return (size_t)(g->OH * g->WP + g->KW * (convlab_bincol_plane(g) + 16)) *
           sizeof(int32_t) + 64;
}

/* Bytes of one thread's scratch for the weight gradient: patterns, the (pixel, pattern)
 * pairs and their counts, the bins (KW, 32, cout) and the row sums (OH, cout). */
static inline size_t convlab_bincol_wgrad_bytes(const convlab_bin_geom *g, int64_t cout)
{
    return (size_t)(g->OH * g->WP + 2 * g->KW * convlab_bincol_plane(g)) * sizeof(int32_t) +
           (size_t)g->KW * sizeof(int64_t) +
           (size_t)((g->KW * 32 + g->OH) * cout) * sizeof(float) + 128;
}

/* cp[oh][j]: bit kh set when padded column j of input row oh*SH - PH + kh*DH is 1; rows in
 * the padding leave their bit 0 (the caller's base plane accounts for them). `img` is the
 * column-padded image of convlab_bin_fill. */
static void convlab_bincol_patterns(const convlab_bin_geom *g, const uint8_t *img,
                                    int32_t *cp)
{
    memset(cp, 0, (size_t)(g->OH * g->WP) * sizeof(int32_t));
    for (int64_t oh = 0; oh < g->OH; oh++) {
        int32_t *row = cp + oh * g->WP;
        for (int64_t kh = 0; kh < g->KH; kh++) {
            const int64_t ih = oh * g->SH - g->PH + kh * g->DH;
            if (ih < 0 || ih >= g->H) continue;
            const uint8_t *in = img + ih * g->WP;
            for (int64_t j = 0; j < g->WP; j++) row[j] |= (int32_t)in[j] << kh;
        }
    }
}

/* idx[kw][px]: the pattern kernel column kw sees at output pixel px (row-major), rows of
 * P + 16 with a zero tail. */
static void convlab_bincol_column_patterns(const convlab_bin_geom *g, const int32_t *cp,
                                           int32_t *idx)
{
    const int64_t P = convlab_bincol_plane(g), OW = g->OW;
    for (int64_t kw = 0; kw < g->KW; kw++) {
        int32_t *dst = idx + kw * (P + 16);
        for (int64_t oh = 0; oh < g->OH; oh++)
            memcpy(dst + oh * OW, cp + oh * g->WP + kw * g->DW, (size_t)OW * sizeof(int32_t));
        memset(dst + P, 0, 16 * sizeof(int32_t));
    }
}

/* The pixels of one image where kernel column kw sees a pattern that is not zero, in pixel
 * order: pair_px[kw][i] and that pattern pair_pat[kw][i] (rows of P entries); count[kw] how
 * many. */
static void convlab_bincol_pairs(const convlab_bin_geom *g, const int32_t *cp,
                                 int32_t *pair_px, int32_t *pair_pat, int64_t *count)
{
    const int64_t P = convlab_bincol_plane(g);
    for (int64_t kw = 0; kw < g->KW; kw++) {
        int32_t *px = pair_px + kw * P, *pat = pair_pat + kw * P;
        int64_t n = 0;
        for (int64_t oh = 0; oh < g->OH; oh++) {
            const int32_t *row = cp + oh * g->WP + kw * g->DW;
            for (int64_t ow = 0; ow < g->OW; ow++) {
                /* written unconditionally, kept only when the pattern is not zero: no
                 * unpredictable branch */
                px[n] = (int32_t)(oh * g->OW + ow);
                pat[n] = row[ow];
                n += row[ow] != 0;
            }
        }
        count[kw] = n;
    }
}

/* taps[c][kh*KW + kw] += the bins of column kw whose pattern has bit kh set; bins
 * (KW, 32, cout). */
static void convlab_bincol_taps_from_bins(const convlab_bin_geom *g, int64_t cout,
                                          const float *bins, float *taps)
{
    const int64_t n_taps = g->KH * g->KW;
    for (int64_t kw = 0; kw < g->KW; kw++)
        for (int64_t p = 1; p < (1 << g->KH); p++) {
            const float *bin = bins + (kw * 32 + p) * cout;
            for (int64_t kh = 0; kh < g->KH; kh++) {
                if (!((p >> kh) & 1)) continue;
                float *t = taps + kh * g->KW + kw;
                for (int64_t c = 0; c < cout; c++) t[c * n_taps] += bin[c];
            }
        }
}

/* colsum[oh][k][c] += the gradient of channel c summed over the output columns of class k in
 * row oh: the edge columns (the few not of class `major`) one by one, the interior as the row
 * sum less them. grad (cout, OH, OW), rowsum (OH, cout). */
static void convlab_bincol_colsum(const convlab_bin_geom *g, int64_t cout, const float *grad,
                                  const float *rowsum, const int32_t *cls, int64_t ncls,
                                  int32_t major, const int32_t *edges, int64_t n_edges,
                                  float *colsum)
{
    const int64_t P = convlab_bincol_plane(g);
    for (int64_t oh = 0; oh < g->OH; oh++) {
        float *cs = colsum + oh * ncls * cout;
        for (int64_t c = 0; c < cout; c++) {
            float interior = rowsum[oh * cout + c];
            for (int64_t e = 0; e < n_edges; e++) {
                const float v = grad[c * P + oh * g->OW + edges[e]];
                cs[cls[edges[e]] * cout + c] += v;
                interior -= v;
            }
            cs[major * cout + c] += interior;
        }
    }
}

#if CONVLAB_BIN_X86
#define CONVLAB_BINCOL_TARGET __attribute__((target("avx512f,avx2,fma")))
/* the register arrays below only stay in registers when their loops are fully unrolled */
#if defined(__clang__)
#define CONVLAB_BINCOL_UNROLL _Pragma("unroll")
#else
#define CONVLAB_BINCOL_UNROLL _Pragma("GCC unroll 16")
#endif

/* One output plane: base (or bias) + the KW table lookups, 16 pixels at a time. KW is a
 * parameter so that the common 3-wide kernel gets its loops unrolled and its six table
 * registers kept. The first vector is cut short so that the others store to whole cache
 * lines; `stream` writes them around the caches. */
CONVLAB_BINCOL_TARGET static inline __attribute__((always_inline)) void
convlab_bincol_forward_plane(int64_t P, const int64_t KW, const float *table, const float *base,
                             float bias, const int32_t *idx, int stream, float *out)
{
    __m512 lo[CONVLAB_BINCOL_MAX_KW], hi[CONVLAB_BINCOL_MAX_KW];
    CONVLAB_BINCOL_UNROLL
    for (int64_t kw = 0; kw < KW; kw++) {
        lo[kw] = _mm512_loadu_ps(table + 32 * kw);
        hi[kw] = _mm512_loadu_ps(table + 32 * kw + 16);
    }
    const __m512 b = _mm512_set1_ps(bias);
    const int64_t row = P + 16;
    int64_t head = (int64_t)(((64 - ((uintptr_t)out & 63)) & 63) / sizeof(float));
    if (head > P) head = P;
    int64_t px = 0;
#define CONVLAB_BINCOL_LOOKUP(MASK)                                                            \
    __m512 acc = base ? _mm512_maskz_loadu_ps(MASK, base + px) : b;                            \
    CONVLAB_BINCOL_UNROLL                                                                      \
    for (int64_t kw = 0; kw < KW; kw++) {                                                      \
        const __m512i i = _mm512_loadu_si512((const void *)(idx + kw * row + px));             \
        acc = _mm512_add_ps(acc, _mm512_permutex2var_ps(lo[kw], i, hi[kw]));                   \
    }
    if (head) {
        const __mmask16 m = (__mmask16)((1u << head) - 1u);
        CONVLAB_BINCOL_LOOKUP(m)
        _mm512_mask_storeu_ps(out, m, acc);
        px = head;
    }
    for (; px + 16 <= P; px += 16) {
        CONVLAB_BINCOL_LOOKUP((__mmask16)0xFFFF)
        if (stream) _mm512_stream_ps(out + px, acc);
        else _mm512_store_ps(out + px, acc);
    }
    if (px < P) {
        const __mmask16 m = (__mmask16)((1u << (P - px)) - 1u);
        CONVLAB_BINCOL_LOOKUP(m)
        _mm512_mask_storeu_ps(out + px, m, acc);
    }
#undef CONVLAB_BINCOL_LOOKUP
}

/* Forward of one image: out (cout, OH, OW) from tables (cout, KW, 32), base (cout, OH, OW)
 * or the bias, and the per-column patterns of convlab_bincol_column_patterns. */
CONVLAB_BINCOL_TARGET static void convlab_bincol_forward_image(
    const convlab_bin_geom *g, int64_t cout, const float *tables, const float *base,
    const float *bias, const int32_t *idx, int stream, float *out)
{
    const int64_t P = convlab_bincol_plane(g);
    for (int64_t c = 0; c < cout; c++) {
        const float *t = tables + c * g->KW * 32;
        const float *bp = base ? base + c * P : NULL;
        if (g->KW == 3)
            convlab_bincol_forward_plane(P, 3, t, bp, bias[c], idx, stream, out + c * P);
        else
            convlab_bincol_forward_plane(P, g->KW, t, bp, bias[c], idx, stream, out + c * P);
    }
    if (stream) _mm_sfence();   /* streamed stores are weakly ordered */
}

/* r[j] <- column j of the 16 x 16 block whose row i is r[i]: three rounds of shuffles. */
CONVLAB_BINCOL_TARGET static inline __attribute__((always_inline)) void
convlab_bincol_transpose16(__m512 r[16])
{
    __m512 a[16], b[16];
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* b[4i + j], 128-bit lane l: rows 4i..4i+3 at column 4l + j */
    for (int i = 0; i < 4; i++) {
        b[4 * i] = _mm512_shuffle_ps(a[4 * i], a[4 * i + 2], 0x44);
        b[4 * i + 1] = _mm512_shuffle_ps(a[4 * i], a[4 * i + 2], 0xEE);
        b[4 * i + 2] = _mm512_shuffle_ps(a[4 * i + 1], a[4 * i + 3], 0x44);
        b[4 * i + 3] = _mm512_shuffle_ps(a[4 * i + 1], a[4 * i + 3], 0xEE);
    }
    /* a 4 x 4 transpose of the 128-bit lanes gathers each column's four row groups */
    for (int j = 0; j < 4; j++) {
        const __m512 c0 = _mm512_shuffle_f32x4(b[j], b[4 + j], 0x44);
        const __m512 c1 = _mm512_shuffle_f32x4(b[j], b[4 + j], 0xEE);
        const __m512 c2 = _mm512_shuffle_f32x4(b[8 + j], b[12 + j], 0x44);
        const __m512 c3 = _mm512_shuffle_f32x4(b[8 + j], b[12 + j], 0xEE);
        r[j] = _mm512_shuffle_f32x4(c0, c2, 0x88);
        r[4 + j] = _mm512_shuffle_f32x4(c0, c2, 0xDD);
        r[8 + j] = _mm512_shuffle_f32x4(c1, c3, 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(c1, c3, 0xDD);
    }
}

/* Weight-gradient sums of one image (cout a multiple of 16). grad (cout, OH, OW); the pairs
 * of convlab_bincol_pairs; bins (KW, 32, cout) are added into; rowsum (OH, cout) is set to
 * the gradient summed over each output row. Consecutive pixels of a kernel column often show
 * the same pattern: their vectors are summed in a register and added to the bin once, which
 * also keeps the adds to one bin from waiting on each other. */
CONVLAB_BINCOL_TARGET static void convlab_bincol_wgrad_image(
    const convlab_bin_geom *g, int64_t cout, const float *grad, const int32_t *pair_px,
    const int32_t *pair_pat, const int64_t *count, float *bins, float *rowsum)
{
    const int64_t P = convlab_bincol_plane(g), OW = g->OW, KW = g->KW;
    __attribute__((aligned(64))) float tile[16 * 16];
    for (int64_t c0 = 0; c0 < cout; c0 += 16) {
        const float *src = grad + c0 * P;
        int64_t oh = 0, row_end = OW;
        int64_t next[CONVLAB_BINCOL_MAX_KW];
        int32_t held[CONVLAB_BINCOL_MAX_KW];   /* the pattern whose sum `run` holds, 0: none */
        __m512 sums[CONVLAB_BINCOL_MAX_KW];
        for (int64_t kw = 0; kw < KW; kw++) {
            next[kw] = 0;
            held[kw] = 0;
            sums[kw] = _mm512_setzero_ps();
        }
        __m512 run = _mm512_setzero_ps();
        for (int64_t pb = 0; pb < P; pb += 16) {
            const int64_t n = P - pb < 16 ? P - pb : 16;
            const __mmask16 m = (__mmask16)((1u << n) - 1u);
            __m512 r[16];
            CONVLAB_BINCOL_UNROLL
            for (int i = 0; i < 16; i++) {
                r[i] = _mm512_maskz_loadu_ps(m, src + i * P + pb);
                /* sixteen streams 4.8 KB apart outrun the hardware prefetchers */
                _mm_prefetch((const char *)(src + i * P + pb + CONVLAB_BINCOL_AHEAD), _MM_HINT_T0);
            }
            convlab_bincol_transpose16(r);
            CONVLAB_BINCOL_UNROLL
            for (int j = 0; j < 16; j++) _mm512_store_ps(tile + 16 * j, r[j]);
            /* row sums: pixels pb.. run along output rows, which end every OW pixels */
            for (int64_t j = 0; j < n;) {
                const int64_t stop = row_end - pb < n ? row_end - pb : n;
                for (; j < stop; j++) run = _mm512_add_ps(run, _mm512_load_ps(tile + 16 * j));
                if (pb + j == row_end) {
                    _mm512_storeu_ps(rowsum + oh * cout + c0, run);
                    run = _mm512_setzero_ps();
                    oh++;
                    row_end += OW;
                }
            }
            for (int64_t kw = 0; kw < KW; kw++) {
                const int32_t *px = pair_px + kw * P, *pat = pair_pat + kw * P;
                int64_t k = next[kw];
                for (; k < count[kw] && px[k] < pb + n; k++) {
                    const __m512 v = _mm512_load_ps(tile + 16 * (px[k] - pb));
                    if (pat[k] == held[kw]) {
                        sums[kw] = _mm512_add_ps(sums[kw], v);
                        continue;
                    }
                    if (held[kw]) {
                        float *bin = bins + (kw * 32 + held[kw]) * cout + c0;
                        _mm512_storeu_ps(bin, _mm512_add_ps(_mm512_loadu_ps(bin), sums[kw]));
                    }
                    held[kw] = pat[k];
                    sums[kw] = v;
                }
                next[kw] = k;
            }
        }
        for (int64_t kw = 0; kw < KW; kw++)
            if (held[kw]) {
                float *bin = bins + (kw * 32 + held[kw]) * cout + c0;
                _mm512_storeu_ps(bin, _mm512_add_ps(_mm512_loadu_ps(bin), sums[kw]));
            }
    }
}
#else
static void convlab_bincol_forward_image(const convlab_bin_geom *g, int64_t cout,
    const float *tables, const float *base, const float *bias, const int32_t *idx,
    int stream, float *out) {}
static void convlab_bincol_wgrad_image(const convlab_bin_geom *g, int64_t cout,
    const float *grad, const int32_t *pair_px, const int32_t *pair_pat, const int64_t *count,
    float *bins, float *rowsum) {}
#endif

#endif /* CONVLAB_BINARY_COLUMNS_H */
