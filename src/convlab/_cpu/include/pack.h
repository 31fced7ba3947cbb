/*
 * Packing a row-major block of A into MR-row panels: out[k * mr + i] = a[i * lda + k].
 *
 * This is a transpose; done element by element it costs a scattered store per element. Here
 * groups of rows are transposed in registers (4 x 4 floats or 2 x 2 doubles with SSE2, which
 * every x86-64 CPU has) so that loads and stores are whole vectors.
 */
#ifndef CONVLAB_PACK_H
#define CONVLAB_PACK_H

#include <stddef.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <emmintrin.h>
#define CONVLAB_SSE2 1
#else
#define CONVLAB_SSE2 0
#endif

/* Rows [i, rows) one element at a time, then zeros up to mr. */
#define CONVLAB_PACK_A_TAIL(T)                                                                 \
    for (; i < rows; i++) {                                                                    \
        const T *r = a + i * lda;                                                              \
        for (ptrdiff_t k = 0; k < kc; k++) out[k * mr + i] = r[k];                             \
    }                                                                                          \
    for (ptrdiff_t k = 0; k < kc && rows < mr; k++)                                            \
        for (ptrdiff_t j = rows; j < mr; j++) out[k * mr + j] = 0;

/* rows <= mr rows of A (row stride lda, unit column stride), kc columns; rows mr - rows of each
 * k are zero-filled. */
static void convlab_pack_a_rows_f32(const float *a, ptrdiff_t lda, ptrdiff_t rows, ptrdiff_t kc,
                                    float *out, ptrdiff_t mr)
{
    ptrdiff_t i = 0;
#if CONVLAB_SSE2
    for (; i + 4 <= rows; i += 4) {
        const float *r0 = a + i * lda, *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
        ptrdiff_t k = 0;
        for (; k + 4 <= kc; k += 4) {
            __m128 v0 = _mm_loadu_ps(r0 + k), v1 = _mm_loadu_ps(r1 + k);
            __m128 v2 = _mm_loadu_ps(r2 + k), v3 = _mm_loadu_ps(r3 + k);
            _MM_TRANSPOSE4_PS(v0, v1, v2, v3);
            _mm_storeu_ps(out + (k + 0) * mr + i, v0);
            _mm_storeu_ps(out + (k + 1) * mr + i, v1);
            _mm_storeu_ps(out + (k + 2) * mr + i, v2);
            _mm_storeu_ps(out + (k + 3) * mr + i, v3);
        }
        for (; k < kc; k++) {
            out[k * mr + i] = r0[k];
            out[k * mr + i + 1] = r1[k];
            out[k * mr + i + 2] = r2[k];
            out[k * mr + i + 3] = r3[k];
        }
    }
#endif
    CONVLAB_PACK_A_TAIL(float)
}

static void convlab_pack_a_rows_f64(const double *a, ptrdiff_t lda, ptrdiff_t rows,
                                    ptrdiff_t kc, double *out, ptrdiff_t mr)
{
    ptrdiff_t i = 0;
#if CONVLAB_SSE2
    for (; i + 2 <= rows; i += 2) {
        const double *r0 = a + i * lda, *r1 = r0 + lda;
        ptrdiff_t k = 0;
        for (; k + 2 <= kc; k += 2) {
            const __m128d v0 = _mm_loadu_pd(r0 + k), v1 = _mm_loadu_pd(r1 + k);
            _mm_storeu_pd(out + k * mr + i, _mm_unpacklo_pd(v0, v1));
            _mm_storeu_pd(out + (k + 1) * mr + i, _mm_unpackhi_pd(v0, v1));
        }
        for (; k < kc; k++) {
            out[k * mr + i] = r0[k];
            out[k * mr + i + 1] = r1[k];
        }
    }
#endif
    CONVLAB_PACK_A_TAIL(double)
}

/* A column-major block of A (element (i, k) at a[i + k * cs], as the transpose of a row-major
 * matrix arrives: a weight gradient's dY^T) into MR-row panels: out[p * kc + k * mr + i] =
 * a[(p + i) + k * cs]. Column k of the whole block is one contiguous run, read once in order
 * and dealt out to the panels, so every line fetched is used whole while it is in L1 (panel
 * by panel, each column's line would be fetched again for every panel, kc lines apart). */
#define CONVLAB_PACK_A_COLS(T, SUF)                                                            \
    static void convlab_pack_a_cols_##SUF(const T *a, ptrdiff_t cs, ptrdiff_t mc, ptrdiff_t kc,\
                                          T *out, ptrdiff_t mr)                                \
    {                                                                                          \
        const ptrdiff_t full = mc / mr, tail = mc - full * mr;                                 \
        for (ptrdiff_t k = 0; k < kc; k++) {                                                   \
            const T *src = a + k * cs;                                                         \
            T *dst = out + k * mr;                                                             \
            if (mr == 12) /* the AVX-512 tile: a copy of constant size, inlined */            \
                for (ptrdiff_t q = 0; q < full; q++)                                           \
                    memcpy(dst + q * 12 * kc, src + q * 12, 12 * sizeof(T));                   \
            else                                                                               \
                for (ptrdiff_t q = 0; q < full; q++)                                           \
                    memcpy(dst + q * mr * kc, src + q * mr, (size_t)mr * sizeof(T));           \
            if (tail) {                                                                        \
                T *d = dst + full * mr * kc;                                                   \
                memcpy(d, src + full * mr, (size_t)tail * sizeof(T));                          \
                memset(d + tail, 0, (size_t)(mr - tail) * sizeof(T));                         \
            }                                                                                  \
        }                                                                                      \
    }

CONVLAB_PACK_A_COLS(float, f32)
CONVLAB_PACK_A_COLS(double, f64)

/* Rows [k0, k1) of a row-major block of B (element (k, j) at b[k * rs + j], kc rows, nc
 * columns) into NR-column panels, each kc x NR: out[q * kc * nr + k * nr + l] =
 * b[k * rs + q * nr + l], columns past nc zero. Like pack_a_cols, each row of B is read once,
 * in order, and dealt out to the panels: panel by panel, every panel would read a short run of
 * each of kc rows, a strided walk that the prefetchers follow poorly (measured 5x slower on
 * a 2600-wide B). Full runs of 64 or 128 bytes (the kernels' widths) are copies of constant
 * size, which the compiler inlines. */
#define CONVLAB_PACK_B_ROWS(T, SUF)                                                            \
    static void convlab_pack_b_rows_##SUF(const T *b, ptrdiff_t rs, ptrdiff_t k0, ptrdiff_t k1,\
                                          ptrdiff_t kc, ptrdiff_t nc, T *out, ptrdiff_t nr)    \
    {                                                                                          \
        const ptrdiff_t full = nc / nr, tail = nc - full * nr, step = kc * nr;                 \
        const size_t run = (size_t)nr * sizeof(T);                                             \
        for (ptrdiff_t k = k0; k < k1; k++) {                                                  \
            const T *src = b + k * rs;                                                         \
            T *dst = out + k * nr;                                                             \
            if (run == 128)                                                                    \
                for (ptrdiff_t q = 0; q < full; q++) memcpy(dst + q * step, src + q * nr, 128);\
            else if (run == 64)                                                                \
                for (ptrdiff_t q = 0; q < full; q++) memcpy(dst + q * step, src + q * nr, 64); \
            else                                                                               \
                for (ptrdiff_t q = 0; q < full; q++) memcpy(dst + q * step, src + q * nr, run);\
            if (tail) {                                                                        \
                T *d = dst + full * step;                                                      \
                memcpy(d, src + full * nr, (size_t)tail * sizeof(T));                          \
                memset(d + tail, 0, (size_t)(nr - tail) * sizeof(T));                          \
            }                                                                                  \
        }                                                                                      \
    }

CONVLAB_PACK_B_ROWS(float, f32)
CONVLAB_PACK_B_ROWS(double, f64)

#endif /* CONVLAB_PACK_H */
