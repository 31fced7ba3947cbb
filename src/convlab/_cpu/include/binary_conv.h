/*
 * Convolution of 0/1 images (the chart CNN's first layer) without multiply-adds.
 *
 * The kernel is cut into "sub-rows" of at most three taps: (input channel, kernel row, three
 * consecutive kernel columns). At one output pixel a sub-row sees a 3-bit pattern of the
 * input, so its contribution to output channel c is one entry of an 8-entry table
 *     T[c][r][p] = sum of the weights of sub-row r at the set bits of p,
 * and the output is  base[c] + sum_r T[c][r][pattern_r]  -- a table lookup and an add per
 * sub-row. The AVX2 kernels work pixel-major: a pixel adds the table row T[r][p][:] (all
 * output channels) of each sub-row whose pattern is not zero, which on chart images (80-93 %
 * black) skips most of them. The generic kernels work row by row and skip sub-rows that are
 * zero along a whole output row.
 *
 * The weight gradient is built the other way round: output gradients are summed into a
 * histogram H[r][p][c] by pattern (zero patterns skipped), and a tap's gradient is the sum of
 * the bins whose pattern has its bit set. Summing a bin is a contiguous add over the output
 * channels, so each image's gradient is first transposed to (pixel, channel) per output row.
 */
#ifndef CONVLAB_BINARY_CONV_H
#define CONVLAB_BINARY_CONV_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define CONVLAB_BIN_X86 1
#include <immintrin.h>
#else
#define CONVLAB_BIN_X86 0
#endif

typedef struct {
    int64_t C, H, W;          /* input channels and size                              */
    int64_t KH, KW;           /* kernel size                                          */
    int64_t SH, SW, PH, PW, DH, DW;
    int64_t OH, OW;           /* output size                                          */
    int64_t WP;               /* padded image row: W + 2 PW + slack for the last taps  */
    int64_t NSEG;             /* sub-rows per kernel row, ceil(KW / 3)                 */
    int64_t R;                /* sub-rows in all: C * KH * NSEG                        */
} convlab_bin_geom;

/* Copy one image into a column-padded byte buffer img[C][H][WP] of 0/1. `packed`: the source
 * is np.packbits of each channel's row-major pixels (most significant bit first). Returns 1
 * when an unpacked pixel is neither 0 nor 1: the forward reports it, which spares a separate
 * pass over the images (a cache-cold 0.5 MB scan cost 50 us per 20-day batch). */
static int convlab_bin_fill(const convlab_bin_geom *g, const uint8_t *restrict src, int packed,
                            uint8_t *restrict img)
{
    /* sizes in locals: stores through a byte pointer may alias *g, which would otherwise be
     * reloaded on every pixel and keep the copy from vectorising */
    const int64_t C = g->C, H = g->H, W = g->W, WP = g->WP, PW = g->PW;
    const int64_t plane_bytes = packed ? (H * W + 7) / 8 : H * W;
    uint8_t seen = 0;   /* every unpacked byte or-ed: a bit above bit 0 means a value > 1 */
    memset(img, 0, (size_t)(C * H * WP));
    for (int64_t c = 0; c < C; c++) {
        const uint8_t *restrict s = src + c * plane_bytes;
        for (int64_t y = 0; y < H; y++) {
            uint8_t *restrict row = img + (c * H + y) * WP + PW;
            if (!packed) {
                const uint8_t *restrict in = s + y * W;
                for (int64_t x = 0; x < W; x++) {
                    row[x] = (uint8_t)(in[x] != 0);
                    seen |= in[x];
                }
                continue;
            }
            int64_t x = 0, k = y * W;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            for (; x < W && (k & 7); x++, k++)
                row[x] = (uint8_t)((s[k >> 3] >> (7 - (k & 7))) & 1);
            /* whole source bytes: the multiply moves bit 7-j of the byte to bit 0 of byte j
             * (after the shift), eight pixels in one store; a pixel at a time was 3x slower */
            for (; x + 8 <= W; x += 8, k += 8) {
                const uint64_t eight = (((uint64_t)s[k >> 3] * 0x8040201008040201ULL) >> 7) &
                                       0x0101010101010101ULL;
                memcpy(row + x, &eight, 8);
            }
#endif
            for (; x < W; x++, k++) row[x] = (uint8_t)((s[k >> 3] >> (7 - (k & 7))) & 1);
        }
    }
    return (seen & 0xFE) != 0;
}

/* Patterns of every sub-row at output row `oh` into pat[R][OW]; the sub-rows that are inside
 * the image and not all zero are listed in `live`. Returns how many there are. */
static int64_t convlab_bin_patterns(const convlab_bin_geom *g, const uint8_t *img, int64_t oh,
                                    int32_t *pat, int32_t *live)
{
    int64_t n_live = 0;
    for (int64_t c = 0; c < g->C; c++) {
        for (int64_t kh = 0; kh < g->KH; kh++) {
            const int64_t ih = oh * g->SH - g->PH + kh * g->DH;
            if (ih < 0 || ih >= g->H) continue;   /* zero padding: contributes nothing */
            const uint8_t *row = img + (c * g->H + ih) * g->WP;
            for (int64_t seg = 0; seg < g->NSEG; seg++) {
                const int64_t r = (c * g->KH + kh) * g->NSEG + seg;
                const int64_t k0 = 3 * seg;
                const int64_t taps = g->KW - k0 < 3 ? g->KW - k0 : 3;
                /* a missing tap reads column 0 of the padded row times zero weight: the
                 * table has no entry for it, so its bit must stay 0 */
                const int64_t o0 = k0 * g->DW, o1 = (k0 + 1) * g->DW, o2 = (k0 + 2) * g->DW;
                int32_t *p = pat + r * g->OW;
                int32_t any = 0;
                for (int64_t ow = 0; ow < g->OW; ow++) {
                    const uint8_t *at = row + ow * g->SW;
                    int32_t v = at[o0];
                    if (taps > 1) v |= (int32_t)at[o1] << 1;
                    if (taps > 2) v |= (int32_t)at[o2] << 2;
                    p[ow] = v;
                    any |= v;
                }
                if (any) live[n_live++] = (int32_t)r;
            }
        }
    }
    return n_live;
}

/* Fill one image and compute the patterns of all its output rows: pat[OH][R][OW],
 * live[OH][R], n_live[OH]. Returns convlab_bin_fill's verdict on the pixels. */
static int convlab_bin_image_patterns(const convlab_bin_geom *g, const uint8_t *src,
                                      int packed, uint8_t *img, int32_t *pat, int32_t *live,
                                      int64_t *n_live)
{
    const int bad = convlab_bin_fill(g, src, packed, img);
    for (int64_t oh = 0; oh < g->OH; oh++)
        n_live[oh] = convlab_bin_patterns(g, img, oh, pat + oh * g->R * g->OW,
                                          live + oh * g->R);
    return bad;
}

/* One thread's buffers: the padded image, its patterns, and `work` bytes for the caller. */
typedef struct {
    uint8_t *img;
    int32_t *pat, *live;
    int64_t *n_live;
    void *work;
} convlab_bin_scratch;

static void convlab_bin_scratch_free(convlab_bin_scratch *s)
{
    if (!s) return;
    free(s->img);
    free(s->pat);
    free(s->live);
    free(s->n_live);
    free(s->work);
    free(s);
}

/* NULL when memory runs out. */
static convlab_bin_scratch *convlab_bin_scratch_new(const convlab_bin_geom *g,
                                                    size_t work_bytes)
{
    convlab_bin_scratch *s = (convlab_bin_scratch *)calloc(1, sizeof(convlab_bin_scratch));
    if (!s) return NULL;
    s->img = (uint8_t *)malloc((size_t)(g->C * g->H * g->WP) + 64);
    s->pat = (int32_t *)malloc((size_t)(g->OH * g->R * g->OW) * sizeof(int32_t) + 64);
    s->live = (int32_t *)malloc((size_t)(g->OH * g->R) * sizeof(int32_t) + 64);
    s->n_live = (int64_t *)malloc((size_t)g->OH * sizeof(int64_t) + 64);
    s->work = malloc(work_bytes + 64);
    if (!s->img || !s->pat || !s->live || !s->n_live || !s->work) {
        convlab_bin_scratch_free(s);
        return NULL;
    }
    return s;
}

/* ---------------------------------------------------------------------------------------- */
/* Forward: out[c][oh][:] = base + sum over live sub-rows of T[c][r][pattern]                */
/* ---------------------------------------------------------------------------------------- */
#define CONVLAB_BIN_FORWARD_GENERIC(T, SUFFIX)                                                 \
    static void convlab_bin_forward_row_##SUFFIX(                                              \
        const convlab_bin_geom *g, int64_t oh, int64_t c0, int64_t c1, const T *tables,        \
        const T *plane, const T *bias, const int32_t *pat, const int32_t *live,                \
        int64_t n_live, T *out)                                                                \
    {                                                                                          \
        for (int64_t c = c0; c < c1; c++) {                                                    \
            T *o = out + (c * g->OH + oh) * g->OW;                                             \
            const T *tc = tables + c * g->R * 8;                                               \
            if (plane) memcpy(o, plane + (c * g->OH + oh) * g->OW, g->OW * sizeof(T));         \
            else for (int64_t ow = 0; ow < g->OW; ow++) o[ow] = bias[c];                       \
            for (int64_t i = 0; i < n_live; i++) {                                             \
                const int64_t r = live[i];                                                     \
                const T *t = tc + r * 8;                                                       \
                const int32_t *p = pat + r * g->OW;                                            \
                for (int64_t ow = 0; ow < g->OW; ow++) o[ow] += t[p[ow]];                      \
            }                                                                                  \
        }                                                                                      \
    }

CONVLAB_BIN_FORWARD_GENERIC(float, f32)
CONVLAB_BIN_FORWARD_GENERIC(double, f64)

#if CONVLAB_BIN_X86
/* dst[j][i] = src[i][j] for an 8 x 8 block (row strides ss and ds). */
__attribute__((target("avx2"))) static inline void convlab_transpose8_avx2(
    const float *src, int64_t ss, float *dst, int64_t ds)
{
    const __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ss),
                 r2 = _mm256_loadu_ps(src + 2 * ss), r3 = _mm256_loadu_ps(src + 3 * ss),
                 r4 = _mm256_loadu_ps(src + 4 * ss), r5 = _mm256_loadu_ps(src + 5 * ss),
                 r6 = _mm256_loadu_ps(src + 6 * ss), r7 = _mm256_loadu_ps(src + 7 * ss);
    const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1),
                 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3),
                 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
                 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
                 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
                 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
                 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + ds, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * ds, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * ds, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * ds, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * ds, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * ds, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * ds, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* Whole image, pixel-major (AVX2, float32, out_channels a multiple of 8): each output pixel
 * starts from its base and adds the table row T[r][p][:] of every sub-row whose pattern p is
 * not zero -- so black regions cost nothing -- into a (pixel, channel) tile, which is then
 * transposed to NCHW 8 x 8 at a time, one channel plane after another. */
__attribute__((target("avx2"))) static void convlab_bin_forward_image_avx2_f32(
    const convlab_bin_geom *g, int64_t cout, const float *tables_pc, const float *base_pc,
    const float *bias, const int32_t *pat, const int32_t *live, const int64_t *n_live,
    float *tile, float *out)
{
    const int64_t OW = g->OW, P = g->OH * g->OW, rows = g->R * g->OW;
    for (int64_t oh = 0; oh < g->OH; oh++) {
        float *trow = tile + oh * OW * cout;
        const int32_t *lv = live + oh * g->R;
        if (cout % 64 == 0) {
            /* 64 channels in eight registers: one store per pixel and channel, however many
             * sub-rows add to it */
            for (int64_t c0 = 0; c0 < cout; c0 += 64) {
                for (int64_t ow = 0; ow < OW; ow++) {
                    const float *b = base_pc ? base_pc + (oh * OW + ow) * cout + c0 : bias + c0;
                    __m256 a[8];
                    for (int k = 0; k < 8; k++) a[k] = _mm256_loadu_ps(b + 8 * k);
                    for (int64_t i = 0; i < n_live[oh]; i++) {
                        const int64_t r = lv[i];
                        const int32_t q = pat[oh * rows + r * g->OW + ow];
                        if (!q) continue;
                        const float *e = tables_pc + (r * 8 + q) * cout + c0;
                        for (int k = 0; k < 8; k++)
                            a[k] = _mm256_add_ps(a[k], _mm256_loadu_ps(e + 8 * k));
                    }
                    float *t = trow + ow * cout + c0;
                    for (int k = 0; k < 8; k++) _mm256_storeu_ps(t + 8 * k, a[k]);
                }
            }
            continue;
        }
        if (base_pc) memcpy(trow, base_pc + oh * OW * cout, (size_t)(OW * cout) * sizeof(float));
        else for (int64_t ow = 0; ow < OW; ow++)
            memcpy(trow + ow * cout, bias, (size_t)cout * sizeof(float));
        for (int64_t i = 0; i < n_live[oh]; i++) {
            const int64_t r = lv[i];
            const int32_t *p = pat + oh * rows + r * g->OW;
            const float *T = tables_pc + r * 8 * cout;
            for (int64_t ow = 0; ow < OW; ow++) {
                const int32_t q = p[ow];
                if (!q) continue;
                const float *e = T + q * cout;
                float *t = trow + ow * cout;
                for (int64_t c = 0; c < cout; c += 8)
                    _mm256_storeu_ps(t + c, _mm256_add_ps(_mm256_loadu_ps(t + c),
                                                          _mm256_loadu_ps(e + c)));
            }
        }
    }
    const int64_t p8 = P / 8 * 8;
    for (int64_t c0 = 0; c0 < cout; c0 += 8) {
        for (int64_t px = 0; px < p8; px += 8)
            convlab_transpose8_avx2(tile + px * cout + c0, cout, out + c0 * P + px, P);
        for (int64_t px = p8; px < P; px++)
            for (int64_t j = 0; j < 8; j++) out[(c0 + j) * P + px] = tile[px * cout + c0 + j];
    }
}

/* The weight-gradient counterpart: transpose the image's gradient to (pixel, channel) once,
 * then add each pixel's channel vector into the bin of every non-zero pattern it sees.
 * colsum: per output row, the gradient of each column class; the most common class
 * (`major`, the interior) is the row total minus the others. */
__attribute__((target("avx2"))) static void convlab_bin_wgrad_image_avx2_f32(
    const convlab_bin_geom *g, int64_t cout, const float *gout, const int32_t *cls,
    int64_t ncls, int32_t major, const int32_t *pat, const int32_t *live,
    const int64_t *n_live, float *gt, float *hist, float *colsum)
{
    const int64_t OW = g->OW, P = g->OH * g->OW, rows = g->R * g->OW, p8 = P / 8 * 8;
    for (int64_t c0 = 0; c0 < cout; c0 += 8) {
        for (int64_t px = 0; px < p8; px += 8)
            convlab_transpose8_avx2(gout + c0 * P + px, P, gt + px * cout + c0, cout);
        for (int64_t px = p8; px < P; px++)
            for (int64_t j = 0; j < 8; j++) gt[px * cout + c0 + j] = gout[(c0 + j) * P + px];
    }
    for (int64_t oh = 0; oh < g->OH; oh++) {
        const float *grow = gt + oh * OW * cout;
        float *cs = colsum + oh * ncls * cout;
        for (int64_t c = 0; c < cout; c += 8) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            int64_t ow = 0;
            for (; ow + 4 <= OW; ow += 4) {
                a0 = _mm256_add_ps(a0, _mm256_loadu_ps(grow + ow * cout + c));
                a1 = _mm256_add_ps(a1, _mm256_loadu_ps(grow + (ow + 1) * cout + c));
                a2 = _mm256_add_ps(a2, _mm256_loadu_ps(grow + (ow + 2) * cout + c));
                a3 = _mm256_add_ps(a3, _mm256_loadu_ps(grow + (ow + 3) * cout + c));
            }
            for (; ow < OW; ow++) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(grow + ow * cout + c));
            float *m = cs + major * cout + c;
            _mm256_storeu_ps(m, _mm256_add_ps(_mm256_loadu_ps(m), _mm256_add_ps(
                _mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))));
        }
        for (int64_t ow = 0; ow < OW; ow++) {
            if (cls[ow] == major) continue;
            float *k = cs + cls[ow] * cout, *m = cs + major * cout;
            const float *v = grow + ow * cout;
            for (int64_t c = 0; c < cout; c += 8) {
                const __m256 x = _mm256_loadu_ps(v + c);
                _mm256_storeu_ps(k + c, _mm256_add_ps(_mm256_loadu_ps(k + c), x));
                _mm256_storeu_ps(m + c, _mm256_sub_ps(_mm256_loadu_ps(m + c), x));
            }
        }
        const int32_t *lv = live + oh * g->R;
        for (int64_t i = 0; i < n_live[oh]; i++) {
            const int64_t r = lv[i];
            const int32_t *p = pat + oh * rows + r * g->OW;
            float *h = hist + r * 8 * cout;
            for (int64_t ow = 0; ow < OW; ow++) {
                const int32_t q = p[ow];
                if (!q) continue;
                float *b = h + q * cout;
                const float *v = grow + ow * cout;
                for (int64_t c = 0; c < cout; c += 8)
                    _mm256_storeu_ps(b + c, _mm256_add_ps(_mm256_loadu_ps(b + c),
                                                          _mm256_loadu_ps(v + c)));
            }
        }
    }
}
#endif

/* 1 when the pixel-major AVX2 image kernels apply */
static inline int convlab_bin_image_kernels(int fast, int64_t cout)
{
    return CONVLAB_BIN_X86 && fast && cout % 8 == 0;
}

#if !CONVLAB_BIN_X86
static void convlab_bin_forward_image_avx2_f32(const convlab_bin_geom *g, int64_t cout,
    const float *t, const float *b, const float *bias, const int32_t *pat, const int32_t *live,
    const int64_t *n_live, float *tile, float *out) {}
static void convlab_bin_wgrad_image_avx2_f32(const convlab_bin_geom *g, int64_t cout,
    const float *gout, const int32_t *cls, int64_t ncls, int32_t major, const int32_t *pat,
    const int32_t *live, const int64_t *n_live, float *gt, float *hist, float *colsum) {}
#endif

/* ---------------------------------------------------------------------------------------- */
/* Weight gradient: histogram of output gradients by pattern                                */
/* ---------------------------------------------------------------------------------------- */
/* One output row of one image. gout: this image's gradient (cout, OH, OW); gt: scratch
 * (OW, cout); hist: (R, 8, cout); colsum: (OH, ncls, cout), the gradient summed per output
 * row and column class (which taps of a row fall inside the image). */
#define CONVLAB_BIN_WGRAD(T, SUFFIX)                                                           \
    static void convlab_bin_wgrad_row_##SUFFIX(                                                \
        const convlab_bin_geom *g, int64_t oh, int64_t cout, const T *gout,                    \
        const int32_t *cls, int64_t ncls, const int32_t *pat, const int32_t *live,             \
        int64_t n_live, T *restrict gt, T *restrict hist, T *restrict colsum)                  \
    {                                                                                          \
        /* gt <- this row's gradient as (pixel, channel), 8 x 8 blocks at a time */            \
        const T *row = gout + oh * g->OW;                                                      \
        const int64_t plane = g->OH * g->OW, c8 = cout / 8 * 8, w8 = g->OW / 8 * 8;            \
        for (int64_t c = 0; c < c8; c += 8)                                                    \
            for (int64_t ow = 0; ow < w8; ow += 8)                                             \
                convlab_transpose8_##SUFFIX(row + c * plane + ow, plane, gt + ow * cout + c,   \
                                            cout);                                             \
        for (int64_t c = 0; c < cout; c++)                                                     \
            for (int64_t ow = c < c8 ? w8 : 0; ow < g->OW; ow++)                               \
                gt[ow * cout + c] = row[c * plane + ow];                                       \
        for (int64_t ow = 0; ow < g->OW; ow++) {                                               \
            const T *restrict v = gt + ow * cout;                                              \
            T *restrict s = colsum + (oh * ncls + cls[ow]) * cout;                             \
            for (int64_t c = 0; c < cout; c++) s[c] += v[c];                                   \
            for (int64_t i = 0; i < n_live; i++) {                                             \
                const int64_t r = live[i];                                                     \
                const int32_t p = pat[r * g->OW + ow];                                         \
                if (!p) continue;                                                              \
                T *restrict h = hist + (r * 8 + p) * cout;                                     \
                for (int64_t c = 0; c < cout; c++) h[c] += v[c];                               \
            }                                                                                  \
        }                                                                                      \
    }

#define CONVLAB_TRANSPOSE8(T, SUFFIX)                                                          \
    static inline void convlab_transpose8_##SUFFIX(const T *src, int64_t ss, T *dst,           \
                                                   int64_t ds)                                 \
    {                                                                                          \
        for (int i = 0; i < 8; i++)                                                            \
            for (int j = 0; j < 8; j++) dst[j * ds + i] = src[i * ss + j];                     \
    }
CONVLAB_TRANSPOSE8(float, f32)
CONVLAB_TRANSPOSE8(double, f64)

CONVLAB_BIN_WGRAD(float, f32)
CONVLAB_BIN_WGRAD(double, f64)

#endif /* CONVLAB_BINARY_CONV_H */
