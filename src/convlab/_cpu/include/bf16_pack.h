/*
 * float32 -> bfloat16 panels for the avx512_bf16 micro-kernel (include/ukernels.h).
 *
 * Rounding is to nearest, ties to even, on the bit pattern: adding 0x7FFF plus the lowest kept
 * bit and dropping the low 16 bits rounds the 24-bit significand to 8 bits, carrying into the
 * exponent as it should (the largest floats round to infinity). NaNs are made quiet first, so
 * that the carry cannot turn one into an infinity. Subnormals round like any other value (the
 * hardware's VCVTNEPS2BF16 would flush them to zero), so the one scalar routine here and the
 * vector one give the same bits.
 *
 * Panel layout (the kernels consume depth pairs): element (k, i) of a panel `width` wide goes
 * to [(k / 2) * 2 * width + 2 * i + (k & 1)]; an odd depth gets a zero last row.
 */
#ifndef CONVLAB_BF16_PACK_H
#define CONVLAB_BF16_PACK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ukernels.h"

static inline uint32_t convlab_bf16_round_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC00000u; /* NaN -> quiet NaN */
    return (x + 0x7FFFu + ((x >> 16) & 1u)) & 0xFFFF0000u;
}

/* The bfloat16 nearest to f (ties to even), as its 16 bits. */
static inline uint16_t convlab_bf16_round(float f) { return (uint16_t)(convlab_bf16_round_bits(f) >> 16); }

/* Rows [rows, mr) and the odd depth's last row are zero. `a` is row-major (row stride lda). */
static void convlab_bf16_pack_a_rows_scalar(const float *a, ptrdiff_t lda, ptrdiff_t rows,
                                            ptrdiff_t kc, uint16_t *out, ptrdiff_t mr)
{
    const ptrdiff_t kp = (kc + 1) / 2;
    for (ptrdiff_t p = 0; p < kp; p++) {
        uint16_t *o = out + p * 2 * mr;
        const ptrdiff_t k = 2 * p;
        for (ptrdiff_t i = 0; i < rows; i++) {
            const float *r = a + i * lda;
            o[2 * i] = convlab_bf16_round(r[k]);
            o[2 * i + 1] = k + 1 < kc ? convlab_bf16_round(r[k + 1]) : 0;
        }
        for (ptrdiff_t i = rows; i < mr; i++) o[2 * i] = o[2 * i + 1] = 0;
    }
}

#if CONVLAB_X86
__attribute__((target("avx512f"))) static inline __m512i convlab_bf16_round16(__m512i x)
{
    const __m512i abs = _mm512_and_si512(x, _mm512_set1_epi32(0x7FFFFFFF));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(abs, _mm512_set1_epi32(0x7F800000));
    x = _mm512_mask_mov_epi32(x, nan, _mm512_set1_epi32(0x7FC00000));
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
    return _mm512_add_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(0x7FFF)), odd);
}

/* 16 depth pairs as 32-bit words: lo's rounded bfloat16 in the low half, hi's in the high one
 * (the pair layout's word for rows 2p and 2p + 1). */
__attribute__((target("avx512f"))) static inline __m512i convlab_bf16_pair16(__m512i lo,
                                                                             __m512i hi)
{
    return _mm512_or_si512(
        _mm512_and_si512(_mm512_srli_epi32(convlab_bf16_round16(lo), 16),
                         _mm512_set1_epi32(0xFFFF)),
        _mm512_and_si512(convlab_bf16_round16(hi), _mm512_set1_epi32((int)0xFFFF0000u)));
}

/* convlab_bf16_pack_a_rows with AVX-512, four rows x 16 depths at a time: each row's 16 values
 * are rounded and their 8 depth pairs gathered into one 256-bit vector (the high halves of the
 * rounded words, vpermw), then the 4 x 8 block of pairs is transposed in registers (unpacks)
 * so that each pair's 4 rows are one 128-bit store. A masked load pads the depth tail (and an
 * odd depth) with zeros; missing rows of the last group are zero vectors, not stored. */
__attribute__((target("avx512f,avx512vl,avx512bw"))) static void
convlab_bf16_pack_a_rows_avx512(const float *a, ptrdiff_t lda, ptrdiff_t rows, ptrdiff_t kc,
                                uint16_t *out, ptrdiff_t mr)
{
    static const uint16_t high_words[32] = {1,  3,  5,  7,  9,  11, 13, 15, 17, 19, 21,
                                            23, 25, 27, 29, 31, 1,  3,  5,  7,  9,  11,
                                            13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
    const __m512i pick = _mm512_loadu_si512((const void *)high_words);
    const ptrdiff_t kp = (kc + 1) / 2;
    uint32_t *o32 = (uint32_t *)out;
    for (ptrdiff_t i = 0; i < rows; i += 4) {
        const int here = rows - i >= 4 ? 4 : (int)(rows - i);
        const __mmask8 row_mask = (__mmask8)((1u << here) - 1u);
        for (ptrdiff_t k = 0; k < kc; k += 16) {
            const __mmask16 m = kc - k >= 16 ? (__mmask16)0xFFFF
                                             : (__mmask16)((1u << (kc - k)) - 1u);
            __m256i w[4];
            for (int j = 0; j < 4; j++) {
                if (j < here) {
                    const __m512i v = convlab_bf16_round16(
                        _mm512_maskz_loadu_epi32(m, a + (i + j) * lda + k));
                    w[j] = _mm512_castsi512_si256(_mm512_permutexvar_epi16(pick, v));
                } else {
                    w[j] = _mm256_setzero_si256();
                }
            }
            const __m256i t0 = _mm256_unpacklo_epi32(w[0], w[1]);
            const __m256i t1 = _mm256_unpackhi_epi32(w[0], w[1]);
            const __m256i t2 = _mm256_unpacklo_epi32(w[2], w[3]);
            const __m256i t3 = _mm256_unpackhi_epi32(w[2], w[3]);
            /* u[q]: pair q (low 128 bits) and pair q + 4 (high), rows i .. i + 3 */
            const __m256i u[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                                  _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
            const ptrdiff_t p0 = k / 2;
            for (int q = 0; q < 4; q++) {
                if (p0 + q < kp)
                    _mm_mask_storeu_epi32(o32 + (p0 + q) * mr + i, row_mask,
                                          _mm256_castsi256_si128(u[q]));
                if (p0 + q + 4 < kp)
                    _mm_mask_storeu_epi32(o32 + (p0 + q + 4) * mr + i, row_mask,
                                          _mm256_extracti128_si256(u[q], 1));
            }
        }
    }
    for (ptrdiff_t i = rows; i < mr; i++)
        for (ptrdiff_t p = 0; p < kp; p++) o32[p * mr + i] = 0;
}

/* Convert, in place, one float32 panel (row k of `width` floats at panel + k * width, depth
 * kc) to the bf16 pair layout. Rows outside [lo, hi) are read as zero: packers leave rows that
 * no micro-tile reads unpacked, and the pairs must not pick them up. Safe in place: pair p is
 * written over floats [p * width, (p + 1) * width), which hold rows <= 2p, all read by then
 * (row 2p's 16 lanes just before their own store). */
__attribute__((target("avx512f"))) static void convlab_bf16_panel_inplace(float *panel,
                                                                         ptrdiff_t kc,
                                                                         ptrdiff_t width,
                                                                         ptrdiff_t lo,
                                                                         ptrdiff_t hi)
{
    const ptrdiff_t kp = (kc + 1) / 2;
    uint32_t *out = (uint32_t *)panel;
    for (ptrdiff_t p = 0; p < kp; p++) {
        const ptrdiff_t k = 2 * p;
        const int use0 = k >= lo && k < hi && k < kc;
        const int use1 = k + 1 >= lo && k + 1 < hi && k + 1 < kc;
        for (ptrdiff_t i = 0; i < width; i += 16) {
            const __mmask16 m = width - i >= 16 ? (__mmask16)0xFFFF
                                                : (__mmask16)((1u << (width - i)) - 1u);
            const __m512i r0 = use0 ? _mm512_maskz_loadu_epi32(m, panel + k * width + i)
                                    : _mm512_setzero_si512();
            const __m512i r1 = use1 ? _mm512_maskz_loadu_epi32(m, panel + (k + 1) * width + i)
                                    : _mm512_setzero_si512();
            _mm512_mask_storeu_epi32(out + p * width + i, m, convlab_bf16_pair16(r0, r1));
        }
    }
}
#else
static void convlab_bf16_panel_inplace(float *panel, ptrdiff_t kc, ptrdiff_t width, ptrdiff_t lo,
                                       ptrdiff_t hi)
{
    (void)panel; (void)kc; (void)width; (void)lo; (void)hi; /* never called: no bf16 kernel */
}
#endif

/* An MR-row panel of a row-major A (row stride lda) in the bf16 pair layout; only called
 * where the bf16 kernel runs, so AVX-512 is there. */
static void convlab_bf16_pack_a_rows(const float *a, ptrdiff_t lda, ptrdiff_t rows, ptrdiff_t kc,
                                     uint16_t *out, ptrdiff_t mr)
{
#if CONVLAB_X86
    convlab_bf16_pack_a_rows_avx512(a, lda, rows, kc, out, mr);
#else
    convlab_bf16_pack_a_rows_scalar(a, lda, rows, kc, out, mr);
#endif
}

/* `panels` consecutive panels of `width` x kc floats each (panel q at base + q * width * kc). */
static void convlab_bf16_panels_inplace(float *base, ptrdiff_t panels, ptrdiff_t kc,
                                        ptrdiff_t width, ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t q = 0; q < panels; q++)
        convlab_bf16_panel_inplace(base + q * width * kc, kc, width, lo, hi);
}

#endif /* CONVLAB_BF16_PACK_H */
