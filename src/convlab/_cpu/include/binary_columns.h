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
 * and past the caches when the output is large: the forward is bound by writing it). Mind
 * the data when timing it: on the shared VMs we measure on, a plane of zeros is written
 * faster than one of other values (a streamed store loop: 92 against 28 GB/s), so a variant
 * that writes more zeros looks faster for nothing -- a 14% "gain" from dropping the start
 * values was only that; with the same values written, three lookups and four measure the
 * same.
 *
 * Weight gradient: a tap (kh, kw) sums the output gradient over the pixels (oh, ow) whose
 * column pattern cp[oh][ow + kw*DW] has bit kh set. Turned around, a non-zero pattern at
 * padded column j adds the gradient of the L = (KW-1)*DW + 1 output columns j-L+1 .. j (one
 * per kernel column, DW apart) to "its" bin bins[pattern] -- one short vector load and add per
 * channel. Each image's non-zero patterns (a quarter of them on 20-day charts) are grouped by
 * pattern once. The image's gradient is read once, in order, by the sums per column class
 * over the runs of output rows that see the same padding (which the exact normalisation fold
 * and the bias need anyway); then, eight channels at a time, each group is
 * summed in registers from the cached NCHW planes -- no transpose. (Eight share the loads of
 * the group's offsets and its loop; four were 5-10% slower, sixteen no faster.) The bins become
 * taps once per block of images. (Prefetching the next image, or interleaving its run sums
 * with the group sums, was measured slower on the 20-day layer, whose image's gradient fits
 * the second-level cache: the gradient wants to be one plain sequential stream; re-measured
 * with a slice of the stream after every group: 1.5x slower, and with each 8-channel block's
 * stretch just before its groups: 1.8x; software prefetches of the next image issued during
 * the groups only move time from the run sums to the groups. Larger images are streamed in
 * chunks of channels that fit: see convlab_bincol_wgrad_image.)
 */
#ifndef CONVLAB_BINARY_COLUMNS_H
#define CONVLAB_BINARY_COLUMNS_H

#include <stdint.h>
#include "binary_conv.h"

#define CONVLAB_BINCOL_MAX_KH 5
#define CONVLAB_BINCOL_MAX_KW 16

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

/* Ints per row of the per-kernel-column patterns: the plane, at least 16 of slack, whole
 * cache lines. */
static inline int64_t convlab_bincol_index_row(const convlab_bin_geom *g)
{
    return (convlab_bincol_plane(g) + 16 + 15) & ~(int64_t)15;
}

/* Bytes of one thread's scratch for the forward: patterns, then per-kernel-column patterns
 * of every output pixel (placed by convlab_bincol_index_at). */
static inline size_t convlab_bincol_forward_bytes(const convlab_bin_geom *g)
{
    return (size_t)(g->OH * g->WP + g->KW * convlab_bincol_index_row(g)) * sizeof(int32_t) +
           128;
}

/* Where the per-kernel-column patterns go in a forward scratch `work`: after the patterns,
 * at the offset within a cache line that `out` has. The lookups then load their indices from
 * the same line offsets as they store outputs, and neither a load nor a store straddles two
 * lines (a straddling load costs twice; with them the 20-day forward was 15% slower). */
static inline int32_t *convlab_bincol_index_at(const convlab_bin_geom *g, void *work,
                                               const float *out)
{
    uintptr_t at = (uintptr_t)((int32_t *)work + g->OH * g->WP);
    at = (at + 63) & ~(uintptr_t)63;
    return (int32_t *)(at + ((uintptr_t)out & 63));
}

/* Output columns a pattern reaches in the weight gradient, and the vector width that holds
 * them (4, 8 or 16 floats). */
static inline int64_t convlab_bincol_window(const convlab_bin_geom *g)
{
    return (g->KW - 1) * g->DW + 1;
}

static inline int64_t convlab_bincol_lanes(const convlab_bin_geom *g)
{
    const int64_t L = convlab_bincol_window(g);
    return L <= 4 ? 4 : L <= 8 ? 8 : 16;
}

/* Column classes the run sums keep apart in registers. */
#define CONVLAB_BINCOL_MAX_CLASSES 8

/* 1 when the column weight gradient applies: the column kernels do, a pattern's window fits
 * one register, and there are at most CONVLAB_BINCOL_MAX_CLASSES column classes. */
static inline int convlab_bincol_wgrad_applies(const convlab_bin_geom *g, int avx512,
                                               int64_t ncls)
{
    return convlab_bincol_applies(g, avx512) && convlab_bincol_window(g) <= 16 &&
           ncls <= CONVLAB_BINCOL_MAX_CLASSES;
}

/* One thread's weight-gradient scratch, laid out in one buffer by
 * convlab_bincol_wgrad_work_init. */
typedef struct {
    int32_t *cp;          /* (OH, WP) column patterns of the image                          */
    int32_t *nz;          /* gradient offsets of the windows of non-zero patterns, then...   */
    int32_t *nz_pat;      /* ... their patterns, in pixel order                              */
    int32_t *off;         /* the same offsets grouped by pattern:                            */
    int32_t start[33];    /*   pattern p's are off[start[p] .. start[p+1])                    */
    int32_t *edge_off;    /* windows cut by the row ends, grouped by pattern like off[], and */
    int32_t *edge_mask;   /*   their lanes inside the row: edge_start[p] .. edge_start[p+1]   */
    int32_t edge_start[33];
    int32_t *edge_px;     /* the same offsets, patterns and lanes in pixel order, before      */
    int32_t *edge_pat;    /*   grouping                                                       */
    int32_t *edge_lanes;
    int32_t *lanes_of_j;  /* (WP) the lanes of column j's window that lie inside its row     */
    float *bins;          /* (32, cout, lanes): gradient windows summed per pattern          */
    float *runcls;        /* (cout, runs, classes, 4): class sums per run, in four lanes     */
} convlab_bincol_wgrad_work;

/* Bytes of one thread's weight-gradient scratch for `n_runs` runs of output rows and `ncls`
 * column classes. */
static inline size_t convlab_bincol_wgrad_bytes(const convlab_bin_geom *g, int64_t cout,
                                                int64_t n_runs, int64_t ncls)
{
    const size_t cells = (size_t)(g->OH * g->WP) + 16;   /* slack: 16-wide stores */
    return cells * 9 * sizeof(int32_t) + (size_t)g->WP * sizeof(int32_t) +
           (size_t)(32 * convlab_bincol_lanes(g) + n_runs * ncls * 4) * (size_t)cout *
               sizeof(float) +
           sizeof(convlab_bincol_wgrad_work) + 256;
}

/* Lays out a thread's weight-gradient scratch in `buffer` (convlab_bincol_wgrad_bytes): the
 * struct itself, then its arrays. */
static convlab_bincol_wgrad_work *convlab_bincol_wgrad_work_init(const convlab_bin_geom *g,
                                                                 int64_t cout, int64_t n_runs,
                                                                 int64_t ncls, void *buffer)
{
    const int64_t cells = g->OH * g->WP + 16, L = convlab_bincol_window(g);
    convlab_bincol_wgrad_work *w = (convlab_bincol_wgrad_work *)buffer;
    /* the float arrays first: 64-byte aligned */
    w->bins = (float *)(((uintptr_t)(w + 1) + 63) & ~(uintptr_t)63);
    w->runcls = w->bins + 32 * convlab_bincol_lanes(g) * cout;
    w->cp = (int32_t *)(w->runcls + n_runs * cout * ncls * 4);
    w->nz = w->cp + cells;
    w->nz_pat = w->nz + cells;
    w->off = w->nz_pat + cells;
    w->edge_off = w->off + cells;
    w->edge_mask = w->edge_off + cells;
    w->edge_px = w->edge_mask + cells;
    w->edge_pat = w->edge_px + cells;
    w->edge_lanes = w->edge_pat + cells;
    w->lanes_of_j = w->edge_lanes + cells;
    /* lanes past the window (l >= L) are never summed into taps: left out, they are not read */
    for (int64_t j = 0; j < g->WP; j++) {
        int32_t lanes = 0;
        for (int64_t l = 0; l < L; l++) {
            const int64_t ow = j - (L - 1) + l;
            if (ow >= 0 && ow < g->OW) lanes |= 1 << l;
        }
        w->lanes_of_j[j] = lanes;
    }
    return w;
}

/* Clears the bins and the run class sums for a new block of images. */
static void convlab_bincol_wgrad_clear(const convlab_bin_geom *g, int64_t cout, int64_t n_runs,
                                       int64_t ncls, convlab_bincol_wgrad_work *w)
{
    memset(w->bins, 0, (size_t)(32 * convlab_bincol_lanes(g) * cout) * sizeof(float));
    memset(w->runcls, 0, (size_t)(n_runs * cout * ncls * 4) * sizeof(float));
}

/* Lane masks of the column classes other than `major` (in class order) in a run of output
 * rows read 16 floats at a time: masks[e * n_vec + v] has lane l set when column
 * (16 v + l) % OW is of the e-th of them, for the n_vec vectors of the longest run. */
static void convlab_bincol_class_masks(const convlab_bin_geom *g, const int32_t *cls,
                                       int64_t ncls, int32_t major, int64_t n_vec,
                                       uint16_t *masks)
{
    memset(masks, 0, (size_t)((ncls - 1) * n_vec) * sizeof(uint16_t));
    for (int64_t v = 0; v < n_vec; v++)
        for (int64_t l = 0; l < 16; l++) {
            const int32_t k = cls[(16 * v + l) % g->OW];
            if (k != major) masks[(k < major ? k : k - 1) * n_vec + v] |= (uint16_t)(1u << l);
        }
}

/* colsum[r][k][c] += the run sums of convlab_bincol_run_classes, lanes added: each class
 * other than `major` its own, `major` the rest of the total. Once per block of images. */
static void convlab_bincol_class_sums(int64_t cout, const float *runcls, int64_t n_runs,
                                      int64_t ncls, int32_t major, float *colsum)
{
    for (int64_t r = 0; r < n_runs; r++)
        for (int64_t c = 0; c < cout; c++) {
            const float *sum = runcls + (c * n_runs + r) * ncls * 4;
            float rest = sum[0] + sum[1] + sum[2] + sum[3];
            for (int64_t e = 1; e < ncls; e++) {
                const float *lanes = sum + 4 * e;
                const float part = lanes[0] + lanes[1] + lanes[2] + lanes[3];
                colsum[(r * ncls + (e - 1 < major ? e - 1 : e)) * cout + c] += part;
                rest -= part;
            }
            colsum[(r * ncls + major) * cout + c] += rest;
        }
}

/* idx[kw][px]: the pattern kernel column kw sees at output pixel px (row-major), rows of
 * convlab_bincol_index_row with a zero tail. */
static void convlab_bincol_column_patterns(const convlab_bin_geom *g, const int32_t *cp,
                                           int32_t *idx)
{
    const int64_t P = convlab_bincol_plane(g), OW = g->OW, row = convlab_bincol_index_row(g);
    for (int64_t kw = 0; kw < g->KW; kw++) {
        int32_t *dst = idx + kw * row;
        for (int64_t oh = 0; oh < g->OH; oh++)
            memcpy(dst + oh * OW, cp + oh * g->WP + kw * g->DW, (size_t)OW * sizeof(int32_t));
        memset(dst + P, 0, (size_t)(row - P) * sizeof(int32_t));
    }
}

/* Where an output pixel's start value comes from: one of up to 32 values per channel, looked
 * up like the patterns (base_values (cout, 32), base_index (P + 16) per pixel); else a full
 * (cout, OH, OW) plane; else the bias. */
typedef struct {
    const float *values;
    const int32_t *index;
    const float *plane;
    const float *bias;
} convlab_bincol_base;

#if CONVLAB_BIN_X86
#define CONVLAB_BINCOL_TARGET __attribute__((target("avx512f,avx512vl,avx2,fma")))
/* the register arrays below only stay in registers when their loops are fully unrolled */
#if defined(__clang__)
#define CONVLAB_BINCOL_UNROLL _Pragma("unroll")
#else
#define CONVLAB_BINCOL_UNROLL _Pragma("GCC unroll 16")
#endif

/* cp[oh][j]: bit kh set when padded column j of input row oh*SH - PH + kh*DH is 1; rows in
 * the padding leave their bit 0 (the caller's base plane accounts for them). `img` is the
 * column-padded 0/1 image of convlab_bin_fill, whose buffer has 64 bytes of slack: the
 * 16-byte loads may run past a row, and what they read there is not stored. */
CONVLAB_BINCOL_TARGET static void convlab_bincol_patterns(const convlab_bin_geom *g,
                                                          const uint8_t *img, int32_t *cp)
{
    const int64_t WP = g->WP;
    for (int64_t oh = 0; oh < g->OH; oh++) {
        const uint8_t *rows[CONVLAB_BINCOL_MAX_KH];
        int64_t n_rows = 0;
        int32_t bits[CONVLAB_BINCOL_MAX_KH];
        for (int64_t kh = 0; kh < g->KH; kh++) {
            const int64_t ih = oh * g->SH - g->PH + kh * g->DH;
            if (ih < 0 || ih >= g->H) continue;
            rows[n_rows] = img + ih * WP;
            bits[n_rows++] = (int32_t)kh;
        }
        for (int64_t j = 0; j < WP; j += 16) {
            __m512i acc = _mm512_setzero_si512();
            for (int64_t r = 0; r < n_rows; r++) {
                const __m512i v = _mm512_cvtepu8_epi32(
                    _mm_loadu_si128((const __m128i *)(rows[r] + j)));
                acc = _mm512_or_si512(acc, _mm512_sll_epi32(v, _mm_cvtsi32_si128(bits[r])));
            }
            const __mmask16 m = WP - j >= 16 ? (__mmask16)0xFFFF
                                             : (__mmask16)((1u << (WP - j)) - 1u);
            _mm512_mask_storeu_epi32(cp + oh * WP + j, m, acc);
        }
    }
}

/* Counting sort by pattern: out[start[p] .. start[p+1]) = the values whose pattern (key) is p,
 * in their order; the same for values2 into out2 when given. */
static void convlab_bincol_sort(int64_t n, const int32_t *keys, const int32_t *values,
                                const int32_t *values2, int32_t *start, int32_t *out,
                                int32_t *out2)
{
    int32_t at[33] = {0};
    for (int64_t i = 0; i < n; i++) at[keys[i] + 1]++;
    start[0] = 0;
    for (int64_t k = 0; k < 32; k++) start[k + 1] = start[k] + at[k + 1];
    memcpy(at, start, 32 * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) {
        const int32_t to = at[keys[i]]++;
        out[to] = values[i];
        if (values2) out2[to] = values2[i];
    }
}

/* Groups one image's non-zero column patterns (w->cp) by pattern. A pattern at padded column
 * j of row oh owns the window of output columns j-L+1 .. j-L+lanes; windows wholly inside
 * the row go to off[] (a plain vector load each), the others to the edge lists, grouped by
 * which of their lanes lie inside the row and by pattern (a masked load each). */
CONVLAB_BINCOL_TARGET static void convlab_bincol_group(const convlab_bin_geom *g,
                                                       convlab_bincol_wgrad_work *w)
{
    const int64_t L = convlab_bincol_window(g), V = convlab_bincol_lanes(g), OW = g->OW;
    /* j in [lo, hi): the whole window lies inside the row */
    const int64_t lo = L - 1, hi = OW - V + L > lo ? OW - V + L : lo;
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                           15);
    int64_t n = 0, n_edge = 0;
    for (int64_t oh = 0; oh < g->OH; oh++) {
        const int32_t *row = w->cp + oh * g->WP;
        const int32_t o0 = (int32_t)(oh * OW - (L - 1));   /* offset of column j: o0 + j */
        for (int64_t j = 0; j < g->WP; j++) {
            if (j == lo) j = hi;   /* past the interior, to the right edge */
            if (j >= g->WP) break;
            if (!row[j]) continue;
            w->edge_pat[n_edge] = row[j];
            w->edge_lanes[n_edge] = w->lanes_of_j[j];
            w->edge_px[n_edge++] = o0 + (int32_t)j;
        }
        /* the interior: compress the non-zero patterns and their offsets, 16 at a time */
        for (int64_t j = lo; j < hi; j += 16) {
            const __mmask16 in = hi - j >= 16 ? (__mmask16)0xFFFF
                                              : (__mmask16)((1u << (hi - j)) - 1u);
            const __m512i p = _mm512_maskz_loadu_epi32(in, row + j);
            const __mmask16 m = _mm512_test_epi32_mask(p, p);
            const __m512i o = _mm512_add_epi32(iota, _mm512_set1_epi32(o0 + (int32_t)j));
            _mm512_storeu_si512((void *)(w->nz + n), _mm512_maskz_compress_epi32(m, o));
            _mm512_storeu_si512((void *)(w->nz_pat + n), _mm512_maskz_compress_epi32(m, p));
            n += __builtin_popcount((unsigned)m);
        }
    }
    convlab_bincol_sort(n, w->nz_pat, w->nz, NULL, w->start, w->off, NULL);
    convlab_bincol_sort(n_edge, w->edge_pat, w->edge_px, w->edge_lanes, w->edge_start,
                        w->edge_off, w->edge_mask);
}

/* taps[c][kh*KW + kw] += the bins whose pattern has bit kh set, at the lane of kernel
 * column kw (lane L-1-kw*DW: a window runs from output column j-L+1 up). Bins (32, cout, V)
 * are summed 16 floats at a time for all five bits, then spread over the taps. */
CONVLAB_BINCOL_TARGET static void convlab_bincol_taps_from_bins(const convlab_bin_geom *g,
    int64_t cout, const float *bins, float *taps)
{
    const int64_t n_taps = g->KH * g->KW, V = convlab_bincol_lanes(g);
    const int64_t L = convlab_bincol_window(g), size = cout * V, n_pat = (int64_t)1 << g->KH;
    __attribute__((aligned(64))) float sums[CONVLAB_BINCOL_MAX_KH][16];
    for (int64_t x = 0; x < size; x += 16) {
        const __mmask16 m = size - x >= 16 ? (__mmask16)0xFFFF
                                           : (__mmask16)((1u << (size - x)) - 1u);
        __m512 s[CONVLAB_BINCOL_MAX_KH];
        for (int64_t kh = 0; kh < CONVLAB_BINCOL_MAX_KH; kh++) s[kh] = _mm512_setzero_ps();
        for (int64_t p = 1; p < n_pat; p++) {
            const __m512 v = _mm512_maskz_loadu_ps(m, bins + p * size + x);
            CONVLAB_BINCOL_UNROLL
            for (int kh = 0; kh < CONVLAB_BINCOL_MAX_KH; kh++)
                if ((p >> kh) & 1) s[kh] = _mm512_add_ps(s[kh], v);
        }
        for (int64_t kh = 0; kh < g->KH; kh++) _mm512_store_ps(sums[kh], s[kh]);
        /* the 16 floats hold channels x / V .. (x + 16) / V */
        for (int64_t c = x / V; c < (x + 16) / V && c < cout; c++)
            for (int64_t kh = 0; kh < g->KH; kh++)
                for (int64_t kw = 0; kw < g->KW; kw++)
                    taps[c * n_taps + kh * g->KW + kw] +=
                        sums[kh][c * V - x + L - 1 - kw * g->DW];
    }
}

/* One output plane (channel c): the start value + the KW table lookups, 16 pixels at a time.
 * KW is a parameter so that the common 3-wide kernel gets its loops unrolled and its six
 * table registers kept. The first vector is cut short so that the others store to whole
 * cache lines; `stream` writes them around the caches. The start values are one more lookup
 * when they are few (the normalisation fold differs only near the image border), else a
 * plane. */
CONVLAB_BINCOL_TARGET static inline __attribute__((always_inline)) void
convlab_bincol_forward_plane(int64_t P, int64_t row, const int64_t KW, const float *table,
                             const convlab_bincol_base *start, int64_t c, const int32_t *idx,
                             int stream, float *out)
{
    __m512 lo[CONVLAB_BINCOL_MAX_KW], hi[CONVLAB_BINCOL_MAX_KW];
    CONVLAB_BINCOL_UNROLL
    for (int64_t kw = 0; kw < KW; kw++) {
        lo[kw] = _mm512_loadu_ps(table + 32 * kw);
        hi[kw] = _mm512_loadu_ps(table + 32 * kw + 16);
    }
    const float *values = start->values ? start->values + 32 * c : NULL;
    const int32_t *index = start->index;
    const float *base = start->plane ? start->plane + c * P : NULL;
    const __m512 b = _mm512_set1_ps(start->bias[c]);
    const __m512 blo = values ? _mm512_loadu_ps(values) : b;
    const __m512 bhi = values ? _mm512_loadu_ps(values + 16) : b;
    int64_t head = (int64_t)(((64 - ((uintptr_t)out & 63)) & 63) / sizeof(float));
    if (head > P) head = P;
    int64_t px = 0;
#define CONVLAB_BINCOL_LOOKUP(MASK)                                                            \
    __m512 acc = values ? _mm512_permutex2var_ps(                                              \
                              blo, _mm512_loadu_si512((const void *)(index + px)), bhi)      \
                 : base ? _mm512_maskz_loadu_ps(MASK, base + px) : b;                          \
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

/* Forward of one image: out (cout, OH, OW) from tables (cout, KW, 32), the start values and
 * the per-column patterns of convlab_bincol_column_patterns. */
CONVLAB_BINCOL_TARGET static void convlab_bincol_forward_image(
    const convlab_bin_geom *g, int64_t cout, const float *tables,
    const convlab_bincol_base *start, const int32_t *idx, int stream, float *out)
{
    const int64_t P = convlab_bincol_plane(g), row = convlab_bincol_index_row(g);
    for (int64_t c = 0; c < cout; c++) {
        const float *t = tables + c * g->KW * 32;
        if (g->KW == 3)
            convlab_bincol_forward_plane(P, row, 3, t, start, c, idx, stream, out + c * P);
        else
            convlab_bincol_forward_plane(P, row, g->KW, t, start, c, idx, stream, out + c * P);
    }
    if (stream) _mm_sfence();   /* streamed stores are weakly ordered */
}

/* Sums of eight (or `nc` < 8) channels' gradient windows per pattern group, added into the
 * bins; VT is the window's vector type. Two sets of sums alternate so that the adds of a
 * group do not wait on each other. A pattern's windows cut by the row ends join its group as
 * masked loads (as groups of their own, by pattern and mask, they cost a third more
 * grouping and 5% of the gradient). */
#define CONVLAB_BINCOL_WGRAD_GROUPS(VT, SUFFIX, LOADU, MASKZ_LOADU, ADD, ZERO, STOREU)         \
    CONVLAB_BINCOL_TARGET static inline __attribute__((always_inline)) void                    \
    convlab_bincol_groups_##SUFFIX(const int64_t nc, int64_t cout, int64_t P,                  \
                                   const float *grad, const convlab_bincol_wgrad_work *w,      \
                                   float *bins)                                                \
    {                                                                                          \
        const int64_t V = (int64_t)(sizeof(VT) / sizeof(float));                              \
        /* one base register per plane: the compiler would otherwise add i * P to every     \
         * offset (an extra instruction per load) */                                         \
        const float *plane[8];                                                                 \
        CONVLAB_BINCOL_UNROLL                                                                  \
        for (int i = 0; i < nc; i++) {                                                         \
            plane[i] = grad + i * P;                                                           \
            __asm__("" : "+r"(plane[i]));                                                      \
        }                                                                                      \
        for (int p = 1; p < 32; p++) {                                                         \
            const int32_t *e = w->off + w->start[p], *end = w->off + w->start[p + 1];          \
            const int32_t *x = w->edge_off + w->edge_start[p];                                 \
            const int32_t *x_end = w->edge_off + w->edge_start[p + 1];                         \
            if (e == end && x == x_end) continue;                                              \
            VT a[8], b[8];                                                                     \
            CONVLAB_BINCOL_UNROLL                                                              \
            for (int i = 0; i < nc; i++) a[i] = b[i] = ZERO();                                 \
            for (; e + 2 <= end; e += 2) {                                                     \
                CONVLAB_BINCOL_UNROLL                                                          \
                for (int i = 0; i < nc; i++) {                                                 \
                    a[i] = ADD(a[i], LOADU(plane[i] + e[0]));                                  \
                    b[i] = ADD(b[i], LOADU(plane[i] + e[1]));                                  \
                }                                                                              \
            }                                                                                  \
            if (e < end) {                                                                     \
                CONVLAB_BINCOL_UNROLL                                                          \
                for (int i = 0; i < nc; i++) a[i] = ADD(a[i], LOADU(plane[i] + e[0]));         \
            }                                                                                  \
            /* windows cut by the row ends: lanes outside the row are masked off, and their  \
             * addresses not read */                                                           \
            for (const int32_t *m = w->edge_mask + (x - w->edge_off); x < x_end; x++, m++) {   \
                CONVLAB_BINCOL_UNROLL                                                          \
                for (int i = 0; i < nc; i++)                                                   \
                    b[i] = ADD(b[i], MASKZ_LOADU((unsigned)*m, plane[i] + x[0]));              \
            }                                                                                  \
            CONVLAB_BINCOL_UNROLL                                                              \
            for (int i = 0; i < nc; i++) {                                                     \
                float *bin = bins + (p * cout + i) * V;                                        \
                STOREU(bin, ADD(LOADU(bin), ADD(a[i], b[i])));                                 \
            }                                                                                  \
        }                                                                                      \
    }

CONVLAB_BINCOL_WGRAD_GROUPS(__m128, 4, _mm_loadu_ps, _mm_maskz_loadu_ps, _mm_add_ps,
                            _mm_setzero_ps, _mm_storeu_ps)
CONVLAB_BINCOL_WGRAD_GROUPS(__m256, 8, _mm256_loadu_ps, _mm256_maskz_loadu_ps, _mm256_add_ps,
                            _mm256_setzero_ps, _mm256_storeu_ps)
CONVLAB_BINCOL_WGRAD_GROUPS(__m512, 16, _mm512_loadu_ps, _mm512_maskz_loadu_ps, _mm512_add_ps,
                            _mm512_setzero_ps, _mm512_storeu_ps)
#undef CONVLAB_BINCOL_WGRAD_GROUPS

/* The group sums of channels c .. c+nc-1 at the window width V. Called with a constant `nc`
 * so that each width's register arrays stay in registers. */
CONVLAB_BINCOL_TARGET static inline __attribute__((always_inline)) void
convlab_bincol_groups(int64_t V, const int64_t nc, int64_t cout, int64_t P, const float *grad,
                      convlab_bincol_wgrad_work *w, int64_t c)
{
    if (V == 4) convlab_bincol_groups_4(nc, cout, P, grad + c * P, w, w->bins + c * V);
    else if (V == 8) convlab_bincol_groups_8(nc, cout, P, grad + c * P, w, w->bins + c * V);
    else convlab_bincol_groups_16(nc, cout, P, grad + c * P, w, w->bins + c * V);
}

/* runcls[((c * n_runs + r) * ncls + e) * 4 + l] += a quarter (four lanes) of the gradient of
 * channel c in the rows of run r (starts[r] .. starts[r+1]-1): all of it for e = 0, the
 * columns of the e-th class other than the major one for e >= 1 (`masks` of
 * convlab_bincol_class_masks). The image's gradient is read once, in order, a plain stream
 * per run. Kept in four lanes until the block ends, the sums need no full reduction per run
 * and image, and stay few enough for the first-level cache (kept in 16 lanes, the 5-day
 * weight gradient was 14% slower). Against the run totals reduced per image, with the edge
 * columns gathered a plane apart afterwards: 5-day 0.95, 20-day 0.82 of the time; with the
 * edge columns gathered for 16 channels at once (vgatherdps), 1.02 and 1.05; column sums
 * row by row, whose loads straddle cache lines, 1.11 and 1.06. The number of edge classes
 * `ne` is a constant in each caller, so that the sums stay in registers. */
CONVLAB_BINCOL_TARGET static inline __attribute__((always_inline)) void
convlab_bincol_run_classes_n(const convlab_bin_geom *g, int64_t cout, const float *grad,
                             const int32_t *starts, int64_t n_runs, const int ne,
                             const uint16_t *masks, int64_t n_vec, float *runcls)
{
    const int64_t P = convlab_bincol_plane(g), OW = g->OW;
    for (int64_t c = 0; c < cout; c++)
        for (int64_t r = 0; r < n_runs; r++) {
            const float *x = grad + c * P + starts[r] * OW;
            const int64_t n = (starts[r + 1] - starts[r]) * OW;
            /* two sums each, even and odd vectors, so that the adds overlap */
            __m512 a[CONVLAB_BINCOL_MAX_CLASSES], b[CONVLAB_BINCOL_MAX_CLASSES];
            CONVLAB_BINCOL_UNROLL
            for (int e = 0; e <= ne; e++) a[e] = b[e] = _mm512_setzero_ps();
            int64_t i = 0, v = 0;
            for (; i + 32 <= n; i += 32, v += 2) {
                const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
                a[0] = _mm512_add_ps(a[0], x0);
                b[0] = _mm512_add_ps(b[0], x1);
                CONVLAB_BINCOL_UNROLL
                for (int e = 1; e <= ne; e++) {
                    const uint16_t *m = masks + (e - 1) * n_vec + v;
                    a[e] = _mm512_mask_add_ps(a[e], m[0], a[e], x0);
                    b[e] = _mm512_mask_add_ps(b[e], m[1], b[e], x1);
                }
            }
            for (; i < n; i += 16, v++) {
                const __mmask16 in = n - i >= 16 ? (__mmask16)0xFFFF
                                                 : (__mmask16)((1u << (n - i)) - 1u);
                const __m512 x0 = _mm512_maskz_loadu_ps(in, x + i);
                a[0] = _mm512_add_ps(a[0], x0);
                CONVLAB_BINCOL_UNROLL
                for (int e = 1; e <= ne; e++)
                    a[e] = _mm512_mask_add_ps(a[e], masks[(e - 1) * n_vec + v], a[e], x0);
            }
            float *sum = runcls + (c * n_runs + r) * (ne + 1) * 4;
            CONVLAB_BINCOL_UNROLL
            for (int e = 0; e <= ne; e++) {
                const __m512 t = _mm512_add_ps(a[e], b[e]);
                const __m256 h = _mm256_add_ps(
                    _mm512_castps512_ps256(t),
                    _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(t), 1)));
                const __m128 q = _mm_add_ps(_mm256_castps256_ps128(h),
                                            _mm256_extractf128_ps(h, 1));
                _mm_store_ps(sum + 4 * e, _mm_add_ps(_mm_load_ps(sum + 4 * e), q));
            }
        }
}

/* convlab_bincol_run_classes_n for `ncls` classes (at most CONVLAB_BINCOL_MAX_CLASSES), the
 * count made a constant per case. */
CONVLAB_BINCOL_TARGET static void convlab_bincol_run_classes(const convlab_bin_geom *g,
    int64_t cout, const float *grad, const int32_t *starts, int64_t n_runs, int64_t ncls,
    const uint16_t *masks, int64_t n_vec, float *runcls)
{
#define CONVLAB_BINCOL_CLASSES(NE)                                                             \
    case NE + 1:                                                                               \
        convlab_bincol_run_classes_n(g, cout, grad, starts, n_runs, NE, masks, n_vec, runcls);\
        break;
    switch (ncls) {
        CONVLAB_BINCOL_CLASSES(0) CONVLAB_BINCOL_CLASSES(1) CONVLAB_BINCOL_CLASSES(2)
        CONVLAB_BINCOL_CLASSES(3) CONVLAB_BINCOL_CLASSES(4) CONVLAB_BINCOL_CLASSES(5)
        CONVLAB_BINCOL_CLASSES(6) CONVLAB_BINCOL_CLASSES(7)
    }
#undef CONVLAB_BINCOL_CLASSES
}

/* Bytes of gradient the weight gradient streams before gathering from it: within half of a
 * second-level cache (1 MB on the CPUs we measure), so the groups find it there. */
#define CONVLAB_BINCOL_WGRAD_CHUNK_BYTES ((int64_t)512 << 10)

/* Weight-gradient sums of one image: grad (cout, OH, OW), the patterns grouped by
 * convlab_bincol_group, the runs of output rows `starts` and the class masks of
 * convlab_bincol_class_masks; adds into w->bins and w->runcls. The run class sums stream the
 * gradient into the caches, as many channels as fit CONVLAB_BINCOL_WGRAD_CHUNK_BYTES (a
 * multiple of eight; all of an image up to 20-day charts); the groups then gather from there.
 * (The 60-day image's 1.4 MB in one stream left the groups reading from the third level.) */
CONVLAB_BINCOL_TARGET static void convlab_bincol_wgrad_image(const convlab_bin_geom *g,
    int64_t cout, const float *grad, const int32_t *starts, int64_t n_runs, int64_t ncls,
    const uint16_t *masks, int64_t n_vec, convlab_bincol_wgrad_work *w)
{
    const int64_t P = convlab_bincol_plane(g), V = convlab_bincol_lanes(g);
    int64_t chunk = CONVLAB_BINCOL_WGRAD_CHUNK_BYTES / (P * (int64_t)sizeof(float)) / 8 * 8;
    if (chunk < 8) chunk = 8;
    for (int64_t c0 = 0; c0 < cout; c0 += chunk) {
        const int64_t end = c0 + chunk < cout ? c0 + chunk : cout;
        convlab_bincol_run_classes(g, end - c0, grad + c0 * P, starts, n_runs, ncls, masks,
                                   n_vec, w->runcls + c0 * n_runs * ncls * 4);
        /* eight channels per pass while they last, then four, then one at a time */
        int64_t c = c0;
        for (; c + 8 <= end; c += 8) convlab_bincol_groups(V, 8, cout, P, grad, w, c);
        if (c + 4 <= end) {
            convlab_bincol_groups(V, 4, cout, P, grad, w, c);
            c += 4;
        }
        for (; c < end; c++) convlab_bincol_groups(V, 1, cout, P, grad, w, c);
    }
}
#else
static void convlab_bincol_patterns(const convlab_bin_geom *g, const uint8_t *img,
                                    int32_t *cp) {}
static void convlab_bincol_group(const convlab_bin_geom *g, convlab_bincol_wgrad_work *w) {}
static void convlab_bincol_taps_from_bins(const convlab_bin_geom *g, int64_t cout,
                                          const float *bins, float *taps) {}
static void convlab_bincol_forward_image(const convlab_bin_geom *g, int64_t cout,
    const float *tables, const convlab_bincol_base *start, const int32_t *idx, int stream,
    float *out) {}
static void convlab_bincol_wgrad_image(const convlab_bin_geom *g, int64_t cout,
    const float *grad, const int32_t *starts, int64_t n_runs, int64_t ncls,
    const uint16_t *masks, int64_t n_vec, convlab_bincol_wgrad_work *w) {}
#endif

/* The benchmarks' yardstick for the column kernels, which are bound by memory: the layer's
 * compulsory traffic and nothing else. convlab_bincol_floor_write stores n floats into `out`
 * the way the forward stores its output (16 at a time, streamed past the caches when `stream`;
 * the values vary, as outputs do: a store loop of one repeated value can run faster);
 * convlab_bincol_floor_read reads n floats once, in order, as the weight gradient reads the
 * output gradient, and returns their sum so that the loads are not optimised away. */
#if CONVLAB_BIN_X86
CONVLAB_BINCOL_TARGET static void convlab_bincol_floor_write(float *out, int64_t n, int stream)
{
    __m512 v = _mm512_setr_ps(0.5f, -1.25f, 2.0f, 0.75f, -0.5f, 1.5f, -2.25f, 0.25f, 1.0f,
                              -0.75f, 1.75f, -1.5f, 0.125f, 2.5f, -1.0f, 0.625f);
    const __m512 step = _mm512_set1_ps(0.0625f);
    int64_t i = 0;
    for (; i < n && ((uintptr_t)(out + i) & 63); i++) out[i] = (float)i;
    for (; i + 16 <= n; i += 16) {
        v = _mm512_add_ps(v, step);
        if (stream) _mm512_stream_ps(out + i, v);
        else _mm512_store_ps(out + i, v);
    }
    for (; i < n; i++) out[i] = (float)i;
    if (stream) _mm_sfence();
}

CONVLAB_BINCOL_TARGET static float convlab_bincol_floor_read(const float *in, int64_t n)
{
    __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a = _mm512_add_ps(a, _mm512_loadu_ps(in + i));
        b = _mm512_add_ps(b, _mm512_loadu_ps(in + i + 16));
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(a, b));
    for (; i < n; i++) sum += in[i];
    return sum;
}
#else
static void convlab_bincol_floor_write(float *out, int64_t n, int stream)
{
    for (int64_t i = 0; i < n; i++) out[i] = (float)(i & 1023) * 0.0625f;
}

static float convlab_bincol_floor_read(const float *in, int64_t n)
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += in[i];
    return sum;
}
#endif

#endif /* CONVLAB_BINARY_COLUMNS_H */
