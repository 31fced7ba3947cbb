/*
 * AVX-512 versions of _winograd.pyx's row transforms (Winograd F(4, 3) along image rows),
 * 16 tiles per step.
 *
 * A tile t of a row reads inputs 4t .. 4t + 5 (input side) or writes outputs 4t .. 4t + 3: a
 * stride-4 pattern, which scalar code reads one value at a time. Here 64 consecutive row values
 * are loaded as 4 vectors and split into 4 "phase" vectors (phase j holds value 4t + j of tiles
 * t = 0..15) with two-source permutes; the last two inputs of each tile are phases 0 and 1
 * shifted by one tile. The arithmetic is then the scalar code's, 16 tiles at once, and each
 * transform point is one contiguous (masked) store. Rows are read with masked loads, which also
 * supply the zero padding past either end.
 *
 * The operations and their order are the scalar code's, so the results are the same floats
 * (the file is compiled with contraction off: a fused multiply-add would round differently).
 */
#ifndef CONVLAB_WINOGRAD_ROWS_H
#define CONVLAB_WINOGRAD_ROWS_H

#include <stddef.h>

#include "ukernels.h"

#if CONVLAB_X86
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

#define CONVLAB_WR_TARGET __attribute__((target("avx512f")))

/* Lanes [0, n) of a 16-lane mask (n clamped to [0, 16]). */
CONVLAB_WR_TARGET static inline __mmask16 convlab_wr_first(ptrdiff_t n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* Values row[start + lane] for lanes whose index lies in [0, width), zero elsewhere. */
CONVLAB_WR_TARGET static inline __m512 convlab_wr_load(const float *row, ptrdiff_t width,
                                                       ptrdiff_t start)
{
    const ptrdiff_t lo = start < 0 ? -start : 0;
    __mmask16 m = convlab_wr_first(width - start);
    m = (__mmask16)(m & ~convlab_wr_first(lo));
    /* masked-off lanes are never read, so the address may lie before the row */
    return _mm512_maskz_loadu_ps(m, (const char *)row + start * (ptrdiff_t)sizeof(float));
}

/* Phase j (value 4t + j of tiles t = 0..15) of the 64 values r0 | r1 | r2 | r3. */
CONVLAB_WR_TARGET static inline __m512 convlab_wr_phase(__m512 r0, __m512 r1, __m512 r2,
                                                        __m512 r3, int j)
{
    const __m512i idx = _mm512_add_epi32(
        _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28),
        _mm512_set1_epi32(j));
    return _mm512_mask_blend_ps((__mmask16)0xFF00, _mm512_permutex2var_ps(r0, idx, r1),
                                _mm512_permutex2var_ps(r2, idx, r3));
}

/* v[xi * point_stride + t] = (B^T d_t)[xi] for the tiles of one row, d_t[j] = row[4t - pad + j]
 * (zero outside [0, width)). Returns 0 when every value read was finite. */
CONVLAB_WR_TARGET static int convlab_winograd_input_row(const float *row, ptrdiff_t width,
                                                        ptrdiff_t pad, ptrdiff_t tiles, float *v,
                                                        ptrdiff_t point_stride)
{
    const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f);
    const __m512 two = _mm512_set1_ps(2.0f), zero = _mm512_setzero_ps();
    const __m512i next0 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    const __m512i next1 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17);
    __m512 bad = zero;
    for (ptrdiff_t t0 = 0; t0 < tiles; t0 += 16) {
        const ptrdiff_t s = 4 * t0 - pad;
        const __m512 r0 = convlab_wr_load(row, width, s);
        const __m512 r1 = convlab_wr_load(row, width, s + 16);
        const __m512 r2 = convlab_wr_load(row, width, s + 32);
        const __m512 r3 = convlab_wr_load(row, width, s + 48);
        const __m512 r4 = convlab_wr_load(row, width < s + 66 ? width : s + 66, s + 64);
        const __m512 d0 = convlab_wr_phase(r0, r1, r2, r3, 0);
        const __m512 d1 = convlab_wr_phase(r0, r1, r2, r3, 1);
        const __m512 d2 = convlab_wr_phase(r0, r1, r2, r3, 2);
        const __m512 d3 = convlab_wr_phase(r0, r1, r2, r3, 3);
        const __m512 d4 = _mm512_permutex2var_ps(d0, next0, r4);
        const __m512 d5 = _mm512_permutex2var_ps(d1, next1, r4);
        const __mmask16 m = convlab_wr_first(tiles - t0);
        /* v0 = 4 d0 - 5 d2 + d4, v5 = 4 d1 - 5 d3 + d5 (the scalar code's order) */
        const __m512 v0 = _mm512_add_ps(
            _mm512_sub_ps(_mm512_mul_ps(four, d0), _mm512_mul_ps(five, d2)), d4);
        const __m512 v5 = _mm512_add_ps(
            _mm512_sub_ps(_mm512_mul_ps(four, d1), _mm512_mul_ps(five, d3)), d5);
        bad = _mm512_add_ps(bad, _mm512_mul_ps(_mm512_add_ps(v0, v5), zero));
        const __m512 s12 = _mm512_add_ps(d1, d2);
        const __m512 v1 = _mm512_add_ps(
            _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(-4.0f), s12), d3), d4);
        const __m512 v2 = _mm512_add_ps(
            _mm512_sub_ps(_mm512_mul_ps(four, _mm512_sub_ps(d1, d2)), d3), d4);
        const __m512 v3 = _mm512_sub_ps(
            _mm512_add_ps(_mm512_mul_ps(two, _mm512_sub_ps(d3, d1)), d4), d2);
        const __m512 v4 = _mm512_sub_ps(
            _mm512_add_ps(_mm512_mul_ps(two, _mm512_sub_ps(d1, d3)), d4), d2);
        float *o = v + t0;
        _mm512_mask_storeu_ps(o, m, v0);
        _mm512_mask_storeu_ps(o + point_stride, m, v1);
        _mm512_mask_storeu_ps(o + 2 * point_stride, m, v2);
        _mm512_mask_storeu_ps(o + 3 * point_stride, m, v3);
        _mm512_mask_storeu_ps(o + 4 * point_stride, m, v4);
        _mm512_mask_storeu_ps(o + 5 * point_stride, m, v5);
    }
    /* masked-off lanes computed on zeros: finite */
    return _mm512_cmp_ps_mask(bad, bad, _CMP_UNORD_Q) != 0;
}

/* row[4t + i] = (A^T m_t)[i] + bias for the tiles of one output row, m_t[xi] =
 * m[xi * point_stride + t]; outputs at or past `width` are not written. */
CONVLAB_WR_TARGET static void convlab_winograd_output_row(const float *m, ptrdiff_t point_stride,
                                                          ptrdiff_t tiles, float bias, float *row,
                                                          ptrdiff_t width)
{
    const __m512 b = _mm512_set1_ps(bias), two = _mm512_set1_ps(2.0f);
    const __m512 four = _mm512_set1_ps(4.0f), eight = _mm512_set1_ps(8.0f);
    /* interleave: pairs (a[t], b[t]) of tiles 0..7 / 8..15, then pairs of pairs */
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    const __m512i q0 = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    const __m512i q1 = _mm512_add_epi32(q0, _mm512_set1_epi32(8));
    for (ptrdiff_t t0 = 0; t0 < tiles; t0 += 16) {
        const __mmask16 mk = convlab_wr_first(tiles - t0);
        const float *p = m + t0;
        const __m512 m0 = _mm512_maskz_loadu_ps(mk, p);
        const __m512 m1 = _mm512_maskz_loadu_ps(mk, p + point_stride);
        const __m512 m2 = _mm512_maskz_loadu_ps(mk, p + 2 * point_stride);
        const __m512 m3 = _mm512_maskz_loadu_ps(mk, p + 3 * point_stride);
        const __m512 m4 = _mm512_maskz_loadu_ps(mk, p + 4 * point_stride);
        const __m512 m5 = _mm512_maskz_loadu_ps(mk, p + 5 * point_stride);
        const __m512 a13 = _mm512_add_ps(m1, m2), s13 = _mm512_sub_ps(m1, m2);
        const __m512 a24 = _mm512_add_ps(m3, m4), s24 = _mm512_sub_ps(m3, m4);
        const __m512 y0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(m0, a13), a24), b);
        const __m512 y1 = _mm512_add_ps(_mm512_add_ps(s13, _mm512_mul_ps(two, s24)), b);
        const __m512 y2 = _mm512_add_ps(_mm512_add_ps(a13, _mm512_mul_ps(four, a24)), b);
        const __m512 y3 = _mm512_add_ps(
            _mm512_add_ps(_mm512_add_ps(s13, _mm512_mul_ps(eight, s24)), m5), b);
        const __m512 y01l = _mm512_permutex2var_ps(y0, lo, y1);
        const __m512 y01h = _mm512_permutex2var_ps(y0, hi, y1);
        const __m512 y23l = _mm512_permutex2var_ps(y2, lo, y3);
        const __m512 y23h = _mm512_permutex2var_ps(y2, hi, y3);
        const ptrdiff_t c = 4 * t0;
        float *o = row + c;
        _mm512_mask_storeu_ps(o, convlab_wr_first(width - c), _mm512_permutex2var_ps(y01l, q0, y23l));
        _mm512_mask_storeu_ps(o + 16, convlab_wr_first(width - c - 16),
                              _mm512_permutex2var_ps(y01l, q1, y23l));
        _mm512_mask_storeu_ps(o + 32, convlab_wr_first(width - c - 32),
                              _mm512_permutex2var_ps(y01h, q0, y23h));
        _mm512_mask_storeu_ps(o + 48, convlab_wr_first(width - c - 48),
                              _mm512_permutex2var_ps(y01h, q1, y23h));
    }
}

/* t[xi * point_stride + k] = (A e_k)[xi] for the tiles of one output-gradient row, e_k[i] =
 * row[4k + i] (zero past `width`). Returns 0 when every value read was finite. */
CONVLAB_WR_TARGET static int convlab_winograd_gradient_row(const float *row, ptrdiff_t width,
                                                           ptrdiff_t tiles, float *t,
                                                           ptrdiff_t point_stride)
{
    const __m512 four = _mm512_set1_ps(4.0f), two = _mm512_set1_ps(2.0f);
    const __m512 eight = _mm512_set1_ps(8.0f), zero = _mm512_setzero_ps();
    __m512 bad = zero;
    for (ptrdiff_t k0 = 0; k0 < tiles; k0 += 16) {
        const ptrdiff_t s = 4 * k0;
        const __m512 r0 = convlab_wr_load(row, width, s);
        const __m512 r1 = convlab_wr_load(row, width, s + 16);
        const __m512 r2 = convlab_wr_load(row, width, s + 32);
        const __m512 r3 = convlab_wr_load(row, width, s + 48);
        const __m512 e0 = convlab_wr_phase(r0, r1, r2, r3, 0);
        const __m512 e1 = convlab_wr_phase(r0, r1, r2, r3, 1);
        const __m512 e2 = convlab_wr_phase(r0, r1, r2, r3, 2);
        const __m512 e3 = convlab_wr_phase(r0, r1, r2, r3, 3);
        const __mmask16 m = convlab_wr_first(tiles - k0);
        const __m512 s02 = _mm512_add_ps(e0, e2), s13 = _mm512_add_ps(e1, e3);
        const __m512 q02 = _mm512_add_ps(e0, _mm512_mul_ps(four, e2));
        const __m512 q13 = _mm512_add_ps(_mm512_mul_ps(two, e1), _mm512_mul_ps(eight, e3));
        bad = _mm512_add_ps(bad, _mm512_mul_ps(_mm512_add_ps(s02, s13), zero));
        float *o = t + k0;
        _mm512_mask_storeu_ps(o, m, e0);
        _mm512_mask_storeu_ps(o + point_stride, m, _mm512_add_ps(s02, s13));
        _mm512_mask_storeu_ps(o + 2 * point_stride, m, _mm512_sub_ps(s02, s13));
        _mm512_mask_storeu_ps(o + 3 * point_stride, m, _mm512_add_ps(q02, q13));
        _mm512_mask_storeu_ps(o + 4 * point_stride, m, _mm512_sub_ps(q02, q13));
        _mm512_mask_storeu_ps(o + 5 * point_stride, m, e3);
    }
    return _mm512_cmp_ps_mask(bad, bad, _CMP_UNORD_Q) != 0;
}

#pragma GCC pop_options
#define CONVLAB_WINOGRAD_ROWS_AVX512 1
#else
#define CONVLAB_WINOGRAD_ROWS_AVX512 0
static int convlab_winograd_input_row(const float *row, ptrdiff_t width, ptrdiff_t pad,
                                      ptrdiff_t tiles, float *v, ptrdiff_t point_stride)
{
    (void)row; (void)width; (void)pad; (void)tiles; (void)v; (void)point_stride;
    return 1; /* never called: the Cython loops run where AVX-512 is absent */
}
static void convlab_winograd_output_row(const float *m, ptrdiff_t point_stride, ptrdiff_t tiles,
                                        float bias, float *row, ptrdiff_t width)
{
    (void)m; (void)point_stride; (void)tiles; (void)bias; (void)row; (void)width;
}
static int convlab_winograd_gradient_row(const float *row, ptrdiff_t width, ptrdiff_t tiles,
                                         float *t, ptrdiff_t point_stride)
{
    (void)row; (void)width; (void)tiles; (void)t; (void)point_stride;
    return 1;
}
#endif

#endif /* CONVLAB_WINOGRAD_ROWS_H */
