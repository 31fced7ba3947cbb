/*
 * Batch norm -> max pool over (k, 1) windows with stride (k, 1) -> ReLU / Leaky ReLU, fused:
 * one channel of an (N, C, H, W) array per call (the caller runs channels in parallel, so each
 * channel's sums run in one fixed order: deterministic for any thread count).
 *
 * The pooled output (N, C, OH, W) is written with one code byte per output: bits 0-6 hold the
 * window row of the maximum (PyTorch's rule: a later row replaces the running max when it is
 * greater or NaN, so ties keep the first), bit 7 whether the activation's derivative there is 1
 * (x > 0; for ReLU also NaN, as PyTorch's) rather than the slope. Pooling before the
 * activation gives the same values as after it: a non-decreasing activation commutes with max.
 *
 * The row helpers take `restrict` rows so the compiler vectorises the selects without alias
 * checks (why this is C and not Cython). The normalised value is `(x - mean) * scale + shift`
 * in T, the same expression as batch_norm.h's apply, so the outputs are bit for bit those of
 * the unfused kernels.
 */
#ifndef CONVLAB_NORM_POOL_H
#define CONVLAB_NORM_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "ukernels.h"

/* the code byte's fields */
#define CONVLAB_NP_POS 0x80
#define CONVLAB_NP_ROW 0x7f
/* the gradient g an output passes to its window's maximum: g, or g * slope where the
 * activation's derivative is the slope */
#define CONVLAB_NP_GRAD(T, g, cj, slope) ((g) * (((cj) & CONVLAB_NP_POS) ? (T)1 : (slope)))
/* the two-row windows' loops run over chunks of this many outputs (16: a vector of code
 * bytes); chunk j0 of a row of W starts at CONVLAB_NP_CHUNK_AT(j0, W), the last one pulled
 * back to end at W */
#define CONVLAB_NP_CHUNK 16
#define CONVLAB_NP_CHUNK_AT(j0, W) ((j0) + CONVLAB_NP_CHUNK <= (W) ? (j0) : (W) - CONVLAB_NP_CHUNK)
/* a row's chunk loops are compiled in a function of their own (one call per row): inlined
 * into the loops over windows and images, GCC turned their selects into branches,
 * mispredicted half the time on real data */
#if defined(__GNUC__)
#define CONVLAB_NP_APART __attribute__((noinline))
#else
#define CONVLAB_NP_APART
#endif

/* The drivers below (forward, grad_sums, grad_input) take the ISA in force and pick, per row,
 * the AVX-512 row functions at the end of this file or the portable ones of the macro. GCC
 * leaves the portable chunk loops scalar (the selects mix float, double and byte lanes), with
 * branches mispredicted on real data, whatever ISA it compiles them for. */
#define CONVLAB_NP_PICK(NAME, SUF)                                                                \
    (isa == CONVLAB_ISA_AVX512 ? convlab_np_##NAME##_##SUF##_avx512 : convlab_np_##NAME##_##SUF)

/* the AVX-512 row functions are defined before the float32 instantiation at the end */
#if CONVLAB_X86
#define CONVLAB_NP_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))
#else
#define convlab_np_pair_row_f32_avx512 convlab_np_pair_row_f32
#define convlab_np_single_row_f32_avx512 convlab_np_single_row_f32
#define convlab_np_sums_row_f32_avx512 convlab_np_sums_row_f32
#define convlab_np_grad_pair_row_f32_avx512 convlab_np_grad_pair_row_f32
#define convlab_np_grad_single_row_f32_avx512 convlab_np_grad_single_row_f32
#endif
/* float64 has the portable functions only */
#define convlab_np_pair_row_f64_avx512 convlab_np_pair_row_f64
#define convlab_np_single_row_f64_avx512 convlab_np_single_row_f64
#define convlab_np_sums_row_f64_avx512 convlab_np_sums_row_f64
#define convlab_np_grad_pair_row_f64_avx512 convlab_np_grad_pair_row_f64
#define convlab_np_grad_single_row_f64_avx512 convlab_np_grad_single_row_f64

#define CONVLAB_NORM_POOL(T, SUF)                                                                 \
    /* y <- normalised row r, code <- 0 (the window's first row) */                               \
    static inline void convlab_np_first_##SUF(const T *restrict r, T *restrict y,                 \
                                              uint8_t *restrict code, ptrdiff_t W, T mean,        \
                                              T scale, T shift)                                   \
    {                                                                                             \
        for (ptrdiff_t j = 0; j < W; j++) {                                                       \
            y[j] = (r[j] - mean) * scale + shift;                                                 \
            code[j] = 0;                                                                          \
        }                                                                                         \
    }                                                                                             \
    /* fold normalised row r (window row i) into the running max y, code */                       \
    static inline void convlab_np_update_##SUF(const T *restrict r, T *restrict y,                \
                                               uint8_t *restrict code, ptrdiff_t W, T mean,       \
                                               T scale, T shift, uint8_t i)                       \
    {                                                                                             \
        for (ptrdiff_t j = 0; j < W; j++) {                                                       \
            const T v = (r[j] - mean) * scale + shift, cur = y[j];                                \
            const int take = (v > cur) | (v != v);                                                \
            y[j] = take ? v : cur;                                                                \
            code[j] = take ? i : code[j];                                                         \
        }                                                                                         \
    }                                                                                             \
    /* the activation of a pooled row, in place, and its derivative's bit in the code: Leaky      \
     * ReLU for slope > 0 (x * slope, as the unfused kernel: -inf stays -inf); ReLU for slope 0   \
     * (max(x, 0) as NumPy's maximum: NaN and -0.0 pass through; PyTorch's ReLU passes the        \
     * gradient where !(x <= 0), NaN included) */                                                 \
    static inline void convlab_np_activate_##SUF(T *restrict y, uint8_t *restrict code,           \
                                                 ptrdiff_t W, T slope)                            \
    {                                                                                             \
        if (slope == (T)0) {                                                                      \
            for (ptrdiff_t j = 0; j < W; j++) {                                                   \
                const T v = y[j];                                                                 \
                y[j] = v < (T)0 ? (T)0 : v;                                                       \
                code[j] = (uint8_t)(code[j] | (v <= (T)0 ? 0 : CONVLAB_NP_POS));                  \
            }                                                                                     \
        } else {                                                                                  \
            for (ptrdiff_t j = 0; j < W; j++) {                                                   \
                const T v = y[j];                                                                 \
                y[j] = v > (T)0 ? v : v * slope;                                                  \
                code[j] = (uint8_t)(code[j] | (v > (T)0 ? CONVLAB_NP_POS : 0));                   \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    /* a whole window of two rows a, b, CONVLAB_NP_CHUNK outputs of it in one loop: the same      \
     * values and codes as first + update + activate, one pass instead of three. A fixed trip     \
     * count vectorises with no scalar remainder (whose unpredictable branches cost more than     \
     * the vector work on random data); the caller covers a row with chunks, the last one         \
     * overlapping its predecessor (each output is a function of the inputs only, so a repeat     \
     * rewrites the same bits). */                                                                \
    static inline void convlab_np_pair_chunk_##SUF(const T *restrict a, const T *restrict b,      \
                                                   T *restrict y, uint8_t *restrict code,         \
                                                   T mean, T scale, T shift, T slope)             \
    {                                                                                             \
        if (slope == (T)0) {                                                                      \
            for (int j = 0; j < CONVLAB_NP_CHUNK; j++) {                                          \
                const T va = (a[j] - mean) * scale + shift, vb = (b[j] - mean) * scale + shift;   \
                const int take = (vb > va) | (vb != vb);                                          \
                const T v = take ? vb : va;                                                       \
                y[j] = v < (T)0 ? (T)0 : v;                                                       \
                code[j] = (uint8_t)((take ? 1 : 0) | (v <= (T)0 ? 0 : CONVLAB_NP_POS));           \
            }                                                                                     \
        } else {                                                                                  \
            for (int j = 0; j < CONVLAB_NP_CHUNK; j++) {                                          \
                const T va = (a[j] - mean) * scale + shift, vb = (b[j] - mean) * scale + shift;   \
                const int take = (vb > va) | (vb != vb);                                          \
                const T v = take ? vb : va;                                                       \
                y[j] = v > (T)0 ? v : v * slope;                                                  \
                code[j] = (uint8_t)((take ? 1 : 0) | (v > (T)0 ? CONVLAB_NP_POS : 0));            \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    /* a row of two-row windows: chunks covering W >= CONVLAB_NP_CHUNK outputs */                 \
    static CONVLAB_NP_APART void convlab_np_pair_row_##SUF(const T *a, const T *b, T *y,          \
                                                           uint8_t *code, ptrdiff_t W, T mean,    \
                                                           T scale, T shift, T slope)             \
    {                                                                                             \
        for (ptrdiff_t j0 = 0; j0 < W; j0 += CONVLAB_NP_CHUNK) {                                  \
            const ptrdiff_t j = CONVLAB_NP_CHUNK_AT(j0, W);                                       \
            convlab_np_pair_chunk_##SUF(a + j, b + j, y + j, code + j, mean, scale, shift,        \
                                        slope);                                                   \
        }                                                                                         \
    }                                                                                             \
    /* a one-row window (the last, partial one in ceil mode), CONVLAB_NP_CHUNK outputs: as        \
     * first + activate, with the pair's fixed trip count */                                      \
    static inline void convlab_np_single_chunk_##SUF(const T *restrict a, T *restrict y,          \
                                                     uint8_t *restrict code, T mean, T scale,     \
                                                     T shift, T slope)                            \
    {                                                                                             \
        if (slope == (T)0) {                                                                      \
            for (int j = 0; j < CONVLAB_NP_CHUNK; j++) {                                          \
                const T v = (a[j] - mean) * scale + shift;                                        \
                y[j] = v < (T)0 ? (T)0 : v;                                                       \
                code[j] = (uint8_t)(v <= (T)0 ? 0 : CONVLAB_NP_POS);                              \
            }                                                                                     \
        } else {                                                                                  \
            for (int j = 0; j < CONVLAB_NP_CHUNK; j++) {                                          \
                const T v = (a[j] - mean) * scale + shift;                                        \
                y[j] = v > (T)0 ? v : v * slope;                                                  \
                code[j] = (uint8_t)(v > (T)0 ? CONVLAB_NP_POS : 0);                               \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    static CONVLAB_NP_APART void convlab_np_single_row_##SUF(const T *a, T *y, uint8_t *code,     \
                                                             ptrdiff_t W, T mean, T scale,        \
                                                             T shift, T slope)                    \
    {                                                                                             \
        for (ptrdiff_t j0 = 0; j0 < W; j0 += CONVLAB_NP_CHUNK) {                                  \
            const ptrdiff_t j = CONVLAB_NP_CHUNK_AT(j0, W);                                       \
            convlab_np_single_chunk_##SUF(a + j, y + j, code + j, mean, scale, shift, slope);     \
        }                                                                                         \
    }                                                                                             \
    /* forward of channel c: normalise, pool, activate; x (N, C, H, W) -> y, code (N, C, OH, W).  \
     * The last window may be partial (ceil mode); rows past OH * k (floor mode) are only in the  \
     * statistics. */                                                                             \
    static void convlab_np_forward_##SUF(int isa, const T *x, T *y, uint8_t *code, ptrdiff_t N,   \
                                         ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OH,     \
                                         ptrdiff_t k, ptrdiff_t c, T mean, T scale, T shift,      \
                                         T slope)                                                 \
    {                                                                                             \
        for (ptrdiff_t n = 0; n < N; n++) {                                                       \
            const T *xp = x + (n * C + c) * H * W;                                                \
            T *yp = y + (n * C + c) * OH * W;                                                     \
            uint8_t *cp = code + (n * C + c) * OH * W;                                            \
            for (ptrdiff_t oh = 0; oh < OH; oh++) {                                               \
                const ptrdiff_t h0 = oh * k, rows = H - h0 < k ? H - h0 : k;                      \
                T *yr = yp + oh * W;                                                              \
                uint8_t *cr = cp + oh * W;                                                        \
                if (rows == 2 && W >= CONVLAB_NP_CHUNK) {                                         \
                    CONVLAB_NP_PICK(pair_row, SUF)(xp + h0 * W, xp + (h0 + 1) * W, yr, cr, W,     \
                                                   mean, scale, shift, slope);                    \
                    continue;                                                                     \
                }                                                                                 \
                if (rows == 1 && W >= CONVLAB_NP_CHUNK) {                                         \
                    CONVLAB_NP_PICK(single_row, SUF)(xp + h0 * W, yr, cr, W, mean, scale, shift,  \
                                                slope);                                           \
                    continue;                                                                     \
                }                                                                                 \
                convlab_np_first_##SUF(xp + h0 * W, yr, cr, W, mean, scale, shift);               \
                for (ptrdiff_t i = 1; i < rows; i++)                                              \
                    convlab_np_update_##SUF(xp + (h0 + i) * W, yr, cr, W, mean, scale, shift,     \
                                            (uint8_t)i);                                          \
                convlab_np_activate_##SUF(yr, cr, W, slope);                                      \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    /* the sums' terms of CONVLAB_NP_CHUNK outputs of a window of one or two rows (b == a for     \
     * one), added lane by lane into the accumulators s, q, z (CONVLAB_NP_CHUNK doubles each,     \
     * summed in a fixed order at the end: deterministic, and elementwise loops vectorise where   \
     * a reduction per chunk would cost more than it sums). One term per output, its maximum      \
     * picked from the rows. A row's other term, 0 * (x - mean), is 0 unless x is inf or NaN      \
     * (then NaN, as in the unfused sum): z, a sum of x - x over those rows, says which. The      \
     * first `skip` outputs were summed by the previous (overlapping) chunk. */                   \
    static inline void convlab_np_sums_chunk_##SUF(const T *restrict g,                           \
                                                   const uint8_t *restrict code,                  \
                                                   const T *restrict a, const T *restrict b,      \
                                                   ptrdiff_t skip, int rows, double mean,         \
                                                   T slope, double *restrict s,                   \
                                                   double *restrict q, double *restrict z)        \
    {                                                                                             \
        T gs[CONVLAB_NP_CHUNK], xs[CONVLAB_NP_CHUNK], zs[CONVLAB_NP_CHUNK];                       \
        const int skip32 = (int)skip; /* 32-bit compares: SSE2 has no 64-bit one */               \
        _Pragma("omp simd")                                                                       \
        for (int j = 0; j < CONVLAB_NP_CHUNK; j++) {                                              \
            /* every operand loaded unconditionally: selects, not branches */                     \
            const int cj = code[j], row = cj & CONVLAB_NP_ROW, fresh = j >= skip32;               \
            const T gv = CONVLAB_NP_GRAD(T, g[j], cj, slope), av = a[j], bv = b[j];               \
            const T chosen = row == 1 ? bv : av, other = row == 1 ? av : bv;                      \
            gs[j] = fresh & (row < rows) ? gv : (T)0;                                             \
            xs[j] = fresh ? chosen : (T)0;                                                        \
            zs[j] = fresh & (rows == 2) ? other - other : (T)0;                                   \
        }                                                                                         \
        for (int j = 0; j < CONVLAB_NP_CHUNK; j++) {                                              \
            s[j] += gs[j];                                                                        \
            q[j] += (double)gs[j] * ((double)xs[j] - mean);                                       \
            z[j] += zs[j];                                                                        \
        }                                                                                         \
    }                                                                                             \
    /* the sums' terms of a row of windows of one or two rows, W >= CONVLAB_NP_CHUNK */           \
    static CONVLAB_NP_APART void convlab_np_sums_row_##SUF(const T *g, const uint8_t *code,       \
                                                           const T *a, const T *b, ptrdiff_t W,   \
                                                           int rows, double mean, T slope,        \
                                                           double *s, double *q, double *z)       \
    {                                                                                             \
        for (ptrdiff_t j0 = 0; j0 < W; j0 += CONVLAB_NP_CHUNK) {                                  \
            const ptrdiff_t at = CONVLAB_NP_CHUNK_AT(j0, W);                                      \
            convlab_np_sums_chunk_##SUF(g + at, code + at, a + at, b + at, j0 - at, rows, mean,   \
                                        slope, s, q, z);                                          \
        }                                                                                         \
    }                                                                                             \
    /* sum of g' and of g' * (x - mean) over channel c, g' the gradient each input element gets   \
     * from the pool and the activation (0 where it is not its window's maximum, so only the      \
     * maxima count; a row outside the window, which only a hand-made code holds, counts for      \
     * nothing) */                                                                                \
    static void convlab_np_grad_sums_##SUF(int isa, const T *g, const uint8_t *code, const T *x,  \
                                           ptrdiff_t N, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,    \
                                           ptrdiff_t OH, ptrdiff_t k, ptrdiff_t c, double mean,   \
                                           T slope, double *sum_g, double *sum_gx)                \
    {                                                                                             \
        double s = 0.0, q = 0.0, z = 0.0;                                                         \
        /* the chunks' lane accumulators (see convlab_np_sums_chunk) */                           \
        double ls[CONVLAB_NP_CHUNK] = {0}, lq[CONVLAB_NP_CHUNK] = {0};                            \
        double lz[CONVLAB_NP_CHUNK] = {0};                                                        \
        for (ptrdiff_t n = 0; n < N; n++) {                                                       \
            const T *xp = x + (n * C + c) * H * W;                                                \
            const T *gp = g + (n * C + c) * OH * W;                                               \
            const uint8_t *cp = code + (n * C + c) * OH * W;                                      \
            for (ptrdiff_t oh = 0; oh < OH; oh++) {                                               \
                const ptrdiff_t h0 = oh * k, rows = H - h0 < k ? H - h0 : k;                      \
                const T *gr = gp + oh * W;                                                        \
                const uint8_t *cr = cp + oh * W;                                                  \
                if (rows <= 2 && W >= CONVLAB_NP_CHUNK) {                                         \
                    const T *a = xp + h0 * W, *b = rows == 2 ? a + W : a;                         \
                    CONVLAB_NP_PICK(sums_row, SUF)(gr, cr, a, b, W, (int)rows, mean, slope, ls,   \
                                                   lq, lz);                                       \
                    continue;                                                                     \
                }                                                                                 \
                for (int i = 0; i < (int)rows; i++) { /* int i: SSE2 has no 64-bit compare */     \
                    const T *xr = xp + (h0 + i) * W;                                              \
                    _Pragma("omp simd reduction(+:s, q)")                                         \
                    for (ptrdiff_t j = 0; j < W; j++) {                                           \
                        const int cj = cr[j];                                                     \
                        const T gv = CONVLAB_NP_GRAD(T, gr[j], cj, slope);                        \
                        const T gs = (cj & CONVLAB_NP_ROW) == i ? gv : (T)0;                      \
                        s += gs;                                                                  \
                        q += (double)gs * ((double)xr[j] - mean);                                 \
                    }                                                                             \
                }                                                                                 \
            }                                                                                     \
            /* rows past the last window (floor mode): their terms are 0 * (x - mean) too */      \
            for (ptrdiff_t h = OH * k; h < H; h++) {                                              \
                const T *xr = xp + h * W;                                                         \
                T zr = 0;                                                                         \
                _Pragma("omp simd reduction(+:zr)")                                               \
                for (ptrdiff_t j = 0; j < W; j++) zr += xr[j] - xr[j];                            \
                z += zr;                                                                          \
            }                                                                                     \
        }                                                                                         \
        for (int j = 0; j < CONVLAB_NP_CHUNK; j++) {                                              \
            s += ls[j];                                                                           \
            q += lq[j];                                                                           \
            z += lz[j];                                                                           \
        }                                                                                         \
        *sum_g = s;                                                                               \
        *sum_gx = q + z;                                                                          \
    }                                                                                             \
    /* gx = a * g' + b * (x - mean) + kk over window row i of an output row (batch_norm.h's       \
     * formula on the scattered gradient g'); without batch statistics (through_stats 0) just     \
     * a * g': x does not enter, so an inf or NaN input does not turn 0 * (x - mean) into NaN     \
     * (PyTorch's evaluation-mode gradient) */                                                    \
    static inline void convlab_np_grad_row_##SUF(const T *restrict gr,                            \
                                                 const uint8_t *restrict cr,                      \
                                                 const T *restrict xr, T *restrict o,             \
                                                 ptrdiff_t W, int i, T mean, T a, T b, T kk,      \
                                                 T slope, int through_stats)                      \
    {                                                                                             \
        if (through_stats) {                                                                      \
            for (ptrdiff_t j = 0; j < W; j++) {                                                   \
                const int cj = cr[j];                                                             \
                const T gv = CONVLAB_NP_GRAD(T, gr[j], cj, slope);                                \
                o[j] = a * ((cj & CONVLAB_NP_ROW) == i ? gv : (T)0) + b * (xr[j] - mean) + kk;    \
            }                                                                                     \
        } else {                                                                                  \
            for (ptrdiff_t j = 0; j < W; j++) {                                                   \
                const int cj = cr[j];                                                             \
                const T gv = CONVLAB_NP_GRAD(T, gr[j], cj, slope);                                \
                o[j] = a * ((cj & CONVLAB_NP_ROW) == i ? gv : (T)0);                              \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    /* both rows of a two-row window, CONVLAB_NP_CHUNK outputs (the forward's chunks): each       \
     * output's code and gradient read once */                                                    \
    static inline void convlab_np_grad_pair_##SUF(const T *restrict gr,                           \
                                                  const uint8_t *restrict cr,                     \
                                                  const T *restrict x0, const T *restrict x1,     \
                                                  T *restrict o0, T *restrict o1, T mean, T a,    \
                                                  T b, T kk, T slope, int through_stats)          \
    {                                                                                             \
        if (through_stats) {                                                                      \
            for (int j = 0; j < CONVLAB_NP_CHUNK; j++) {                                          \
                const int cj = cr[j], row = cj & CONVLAB_NP_ROW;                                  \
                const T gv = CONVLAB_NP_GRAD(T, gr[j], cj, slope);                                \
                o0[j] = a * (row == 0 ? gv : (T)0) + b * (x0[j] - mean) + kk;                     \
                o1[j] = a * (row == 1 ? gv : (T)0) + b * (x1[j] - mean) + kk;                     \
            }                                                                                     \
        } else {                                                                                  \
            for (int j = 0; j < CONVLAB_NP_CHUNK; j++) {                                          \
                const int cj = cr[j], row = cj & CONVLAB_NP_ROW;                                  \
                const T gv = CONVLAB_NP_GRAD(T, gr[j], cj, slope);                                \
                o0[j] = a * (row == 0 ? gv : (T)0);                                               \
                o1[j] = a * (row == 1 ? gv : (T)0);                                               \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    /* the input gradient of a row of two-row windows, W >= CONVLAB_NP_CHUNK */                   \
    static CONVLAB_NP_APART void convlab_np_grad_pair_row_##SUF(const T *gr, const uint8_t *cr,   \
                                                                const T *x0, const T *x1, T *o0,  \
                                                                T *o1, ptrdiff_t W, T mean, T a,  \
                                                                T b, T kk, T slope,               \
                                                                int through_stats)                \
    {                                                                                             \
        for (ptrdiff_t j0 = 0; j0 < W; j0 += CONVLAB_NP_CHUNK) {                                  \
            const ptrdiff_t j = CONVLAB_NP_CHUNK_AT(j0, W);                                       \
            convlab_np_grad_pair_##SUF(gr + j, cr + j, x0 + j, x1 + j, o0 + j, o1 + j, mean, a,   \
                                       b, kk, slope, through_stats);                              \
        }                                                                                         \
    }                                                                                             \
    /* the input gradient of a row of one-row windows, W >= CONVLAB_NP_CHUNK: grad_row's          \
     * formula in the pair's fixed-length chunks */                                               \
    static inline void convlab_np_grad_single_chunk_##SUF(const T *restrict gr,                   \
                                                          const uint8_t *restrict cr,             \
                                                          const T *restrict x0, T *restrict o0,   \
                                                          T mean, T a, T b, T kk, T slope,        \
                                                          int through_stats)                      \
    {                                                                                             \
        if (through_stats) {                                                                      \
            for (int j = 0; j < CONVLAB_NP_CHUNK; j++) {                                          \
                const int cj = cr[j], row = cj & CONVLAB_NP_ROW;                                  \
                const T gv = CONVLAB_NP_GRAD(T, gr[j], cj, slope);                                \
                o0[j] = a * (row == 0 ? gv : (T)0) + b * (x0[j] - mean) + kk;                     \
            }                                                                                     \
        } else {                                                                                  \
            for (int j = 0; j < CONVLAB_NP_CHUNK; j++) {                                          \
                const int cj = cr[j], row = cj & CONVLAB_NP_ROW;                                  \
                const T gv = CONVLAB_NP_GRAD(T, gr[j], cj, slope);                                \
                o0[j] = a * (row == 0 ? gv : (T)0);                                               \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    static CONVLAB_NP_APART void convlab_np_grad_single_row_##SUF(const T *gr,                    \
                                                                  const uint8_t *cr,              \
                                                                  const T *x0, T *o0,             \
                                                                  ptrdiff_t W, T mean, T a, T b,  \
                                                                  T kk, T slope,                  \
                                                                  int through_stats)              \
    {                                                                                             \
        for (ptrdiff_t j0 = 0; j0 < W; j0 += CONVLAB_NP_CHUNK) {                                  \
            const ptrdiff_t j = CONVLAB_NP_CHUNK_AT(j0, W);                                       \
            convlab_np_grad_single_chunk_##SUF(gr + j, cr + j, x0 + j, o0 + j, mean, a, b, kk,    \
                                               slope, through_stats);                             \
        }                                                                                         \
    }                                                                                             \
    static void convlab_np_grad_input_##SUF(int isa, const T *g, const uint8_t *code, const T *x, \
                                            T *gx,                                                \
                                            ptrdiff_t N, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,   \
                                            ptrdiff_t OH, ptrdiff_t k, ptrdiff_t c, T mean, T a,  \
                                            T b, T kk, T slope, int through_stats)                \
    {                                                                                             \
        for (ptrdiff_t n = 0; n < N; n++) {                                                       \
            const T *xp = x + (n * C + c) * H * W;                                                \
            T *op = gx + (n * C + c) * H * W;                                                     \
            const T *gp = g + (n * C + c) * OH * W;                                               \
            const uint8_t *cp = code + (n * C + c) * OH * W;                                      \
            ptrdiff_t h = 0;                                                                      \
            for (ptrdiff_t oh = 0; oh < OH; oh++) {                                               \
                const ptrdiff_t rows = H - h < k ? H - h : k;                                     \
                if (rows == 2 && W >= CONVLAB_NP_CHUNK) {                                         \
                    CONVLAB_NP_PICK(grad_pair_row, SUF)(gp + oh * W, cp + oh * W, xp + h * W,     \
                                                   xp + (h + 1) * W, op + h * W,                  \
                                                   op + (h + 1) * W, W, mean, a, b, kk, slope,    \
                                                   through_stats);                                \
                    h += 2;                                                                       \
                    continue;                                                                     \
                }                                                                                 \
                if (rows == 1 && W >= CONVLAB_NP_CHUNK) {                                         \
                    CONVLAB_NP_PICK(grad_single_row, SUF)(gp + oh * W, cp + oh * W, xp + h * W,   \
                                                     op + h * W, W, mean, a, b, kk, slope,        \
                                                     through_stats);                              \
                    h += 1;                                                                       \
                    continue;                                                                     \
                }                                                                                 \
                for (ptrdiff_t i = 0; i < rows; i++, h++)                                         \
                    convlab_np_grad_row_##SUF(gp + oh * W, cp + oh * W, xp + h * W, op + h * W,   \
                                              W, (int)i, mean, a, b, kk, slope, through_stats);   \
            }                                                                                     \
            /* rows past the last window (floor mode) get no gradient from the pool */            \
            for (; h < H; h++) {                                                                  \
                const T *xr = xp + h * W;                                                         \
                T *o = op + h * W;                                                                \
                for (ptrdiff_t j = 0; j < W; j++)                                                 \
                    o[j] = through_stats ? a * (T)0 + b * (xr[j] - mean) + kk : a * (T)0;         \
            }                                                                                     \
        }                                                                                         \
    }

#if CONVLAB_X86
/* AVX-512 versions of the float32 row functions: one 16-output chunk is one vector, the
 * selects are masks. The same operations in the same order as the portable chunks (contraction
 * off, no fused multiply-add), so the same floats and codes. */
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

/* The normalised values (x - mean) * scale + shift of 16 inputs. */
CONVLAB_NP_AVX512 static inline __m512 convlab_np_norm16(const float *x, __m512 mean,
                                                         __m512 scale, __m512 shift)
{
    return _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x), mean), scale), shift);
}

/* The activation of v into *y and the code bytes (window row `take`, the derivative's bit). */
CONVLAB_NP_AVX512 static inline void convlab_np_activate16(__m512 v, __mmask16 take, float slope,
                                                           float *y, uint8_t *code)
{
    const __m512 zero = _mm512_setzero_ps();
    __m512 out;
    __mmask16 pos;
    if (slope == 0.0f) {
        pos = _mm512_cmp_ps_mask(v, zero, _CMP_NLE_UQ);                 /* !(v <= 0): NaN too */
        out = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, zero);
    } else {
        pos = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
        out = _mm512_mask_blend_ps(pos, _mm512_mul_ps(v, _mm512_set1_ps(slope)), v);
    }
    const __m512i one = _mm512_set1_epi32(1), positive = _mm512_set1_epi32(CONVLAB_NP_POS);
    const __m512i bits = _mm512_or_si512(_mm512_maskz_mov_epi32(take, one),
                                         _mm512_maskz_mov_epi32(pos, positive));
    _mm512_storeu_ps(y, out);
    _mm_storeu_si128((__m128i *)code, _mm512_cvtepi32_epi8(bits));
}

CONVLAB_NP_AVX512 static void convlab_np_pair_row_f32_avx512(const float *a, const float *b,
                                                             float *y, uint8_t *code, ptrdiff_t W,
                                                             float mean, float scale, float shift,
                                                             float slope)
{
    const __m512 m = _mm512_set1_ps(mean), sc = _mm512_set1_ps(scale), sh = _mm512_set1_ps(shift);
    for (ptrdiff_t j0 = 0; j0 < W; j0 += CONVLAB_NP_CHUNK) {
        const ptrdiff_t j = CONVLAB_NP_CHUNK_AT(j0, W);
        const __m512 va = convlab_np_norm16(a + j, m, sc, sh);
        const __m512 vb = convlab_np_norm16(b + j, m, sc, sh);
        const __mmask16 take = _mm512_cmp_ps_mask(vb, va, _CMP_GT_OQ) |
                               _mm512_cmp_ps_mask(vb, vb, _CMP_UNORD_Q);
        convlab_np_activate16(_mm512_mask_blend_ps(take, va, vb), take, slope, y + j, code + j);
    }
}

CONVLAB_NP_AVX512 static void convlab_np_single_row_f32_avx512(const float *a, float *y,
                                                               uint8_t *code, ptrdiff_t W,
                                                               float mean, float scale,
                                                               float shift, float slope)
{
    const __m512 m = _mm512_set1_ps(mean), sc = _mm512_set1_ps(scale), sh = _mm512_set1_ps(shift);
    for (ptrdiff_t j0 = 0; j0 < W; j0 += CONVLAB_NP_CHUNK) {
        const ptrdiff_t j = CONVLAB_NP_CHUNK_AT(j0, W);
        convlab_np_activate16(convlab_np_norm16(a + j, m, sc, sh), 0, slope, y + j, code + j);
    }
}

/* The 16 codes at `code` as int32 lanes. */
CONVLAB_NP_AVX512 static inline __m512i convlab_np_codes16(const uint8_t *code)
{
    return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)code));
}

/* The gradient each output passes to its window's maximum: g, or g * slope. */
CONVLAB_NP_AVX512 static inline __m512 convlab_np_grad16(const float *g, __m512i codes,
                                                         float slope)
{
    const __m512 gv = _mm512_loadu_ps(g);
    const __mmask16 pos = _mm512_test_epi32_mask(codes, _mm512_set1_epi32(CONVLAB_NP_POS));
    return _mm512_mask_blend_ps(pos, _mm512_mul_ps(gv, _mm512_set1_ps(slope)), gv);
}

/* Lanes of window row `row` (the code's row field equal to it). */
CONVLAB_NP_AVX512 static inline __mmask16 convlab_np_row_is(__m512i codes, int row)
{
    return _mm512_cmpeq_epi32_mask(_mm512_and_si512(codes, _mm512_set1_epi32(CONVLAB_NP_ROW)),
                                   _mm512_set1_epi32(row));
}

/* acc[0:8] += lo, acc[8:16] += hi of 16 floats as doubles (the portable lane order). */
CONVLAB_NP_AVX512 static inline __m512d convlab_np_lo_pd(__m512 v)
{
    return _mm512_cvtps_pd(_mm512_castps512_ps256(v));
}
CONVLAB_NP_AVX512 static inline __m512d convlab_np_hi_pd(__m512 v)
{
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

CONVLAB_NP_AVX512 static void convlab_np_sums_row_f32_avx512(const float *g, const uint8_t *code,
                                                             const float *a, const float *b,
                                                             ptrdiff_t W, int rows, double mean,
                                                             float slope, double *s, double *q,
                                                             double *z)
{
    const __m512d md = _mm512_set1_pd(mean);
    __m512d s0 = _mm512_loadu_pd(s), s1 = _mm512_loadu_pd(s + 8);
    __m512d q0 = _mm512_loadu_pd(q), q1 = _mm512_loadu_pd(q + 8);
    __m512d z0 = _mm512_loadu_pd(z), z1 = _mm512_loadu_pd(z + 8);
    for (ptrdiff_t j0 = 0; j0 < W; j0 += CONVLAB_NP_CHUNK) {
        const ptrdiff_t at = CONVLAB_NP_CHUNK_AT(j0, W);
        const __mmask16 fresh = (__mmask16)(0xFFFFu << (j0 - at));
        const __m512i codes = convlab_np_codes16(code + at);
        const __m512 gv = convlab_np_grad16(g + at, codes, slope);
        const __m512 av = _mm512_loadu_ps(a + at), bv = _mm512_loadu_ps(b + at);
        const __mmask16 second = convlab_np_row_is(codes, 1);
        const __mmask16 in_window = _mm512_cmplt_epi32_mask(
            _mm512_and_si512(codes, _mm512_set1_epi32(CONVLAB_NP_ROW)), _mm512_set1_epi32(rows));
        const __m512 chosen = _mm512_mask_blend_ps(second, av, bv);
        const __m512 other = _mm512_mask_blend_ps(second, bv, av);
        const __m512 gs = _mm512_maskz_mov_ps(fresh & in_window, gv);
        const __m512 xs = _mm512_maskz_mov_ps(fresh, chosen);
        const __m512 zs = rows == 2 ? _mm512_maskz_mov_ps(fresh, _mm512_sub_ps(other, other))
                                    : _mm512_setzero_ps();
        s0 = _mm512_add_pd(s0, convlab_np_lo_pd(gs));
        s1 = _mm512_add_pd(s1, convlab_np_hi_pd(gs));
        q0 = _mm512_add_pd(q0, _mm512_mul_pd(convlab_np_lo_pd(gs),
                                             _mm512_sub_pd(convlab_np_lo_pd(xs), md)));
        q1 = _mm512_add_pd(q1, _mm512_mul_pd(convlab_np_hi_pd(gs),
                                             _mm512_sub_pd(convlab_np_hi_pd(xs), md)));
        z0 = _mm512_add_pd(z0, convlab_np_lo_pd(zs));
        z1 = _mm512_add_pd(z1, convlab_np_hi_pd(zs));
    }
    _mm512_storeu_pd(s, s0);
    _mm512_storeu_pd(s + 8, s1);
    _mm512_storeu_pd(q, q0);
    _mm512_storeu_pd(q + 8, q1);
    _mm512_storeu_pd(z, z0);
    _mm512_storeu_pd(z + 8, z1);
}

/* a * g' + b * (x - mean) + kk (or a * g' alone) of the lanes of window row `row`. */
CONVLAB_NP_AVX512 static inline __m512 convlab_np_gx16(__m512 gv, __mmask16 here, const float *x,
                                                       __m512 mean, __m512 a, __m512 b, __m512 kk,
                                                       int through_stats)
{
    const __m512 t = _mm512_mul_ps(a, _mm512_maskz_mov_ps(here, gv));
    if (!through_stats) return t;
    return _mm512_add_ps(
        _mm512_add_ps(t, _mm512_mul_ps(b, _mm512_sub_ps(_mm512_loadu_ps(x), mean))), kk);
}

/* The input gradient of a row of windows of two rows, or of one (x1 and o1 NULL). */
CONVLAB_NP_AVX512 static inline void convlab_np_grad_rows16(
    const float *gr, const uint8_t *cr, const float *x0, const float *x1, float *o0, float *o1,
    ptrdiff_t W, float mean, float a, float b, float kk, float slope, int through_stats)
{
    const __m512 m = _mm512_set1_ps(mean), av = _mm512_set1_ps(a), bv = _mm512_set1_ps(b);
    const __m512 kv = _mm512_set1_ps(kk);
    for (ptrdiff_t j0 = 0; j0 < W; j0 += CONVLAB_NP_CHUNK) {
        const ptrdiff_t j = CONVLAB_NP_CHUNK_AT(j0, W);
        const __m512i codes = convlab_np_codes16(cr + j);
        const __m512 gv = convlab_np_grad16(gr + j, codes, slope);
        _mm512_storeu_ps(o0 + j, convlab_np_gx16(gv, convlab_np_row_is(codes, 0), x0 + j, m, av,
                                                 bv, kv, through_stats));
        if (o1)
            _mm512_storeu_ps(o1 + j, convlab_np_gx16(gv, convlab_np_row_is(codes, 1), x1 + j, m,
                                                     av, bv, kv, through_stats));
    }
}

CONVLAB_NP_AVX512 static void convlab_np_grad_pair_row_f32_avx512(
    const float *gr, const uint8_t *cr, const float *x0, const float *x1, float *o0, float *o1,
    ptrdiff_t W, float mean, float a, float b, float kk, float slope, int through_stats)
{
    convlab_np_grad_rows16(gr, cr, x0, x1, o0, o1, W, mean, a, b, kk, slope, through_stats);
}

CONVLAB_NP_AVX512 static void convlab_np_grad_single_row_f32_avx512(
    const float *gr, const uint8_t *cr, const float *x0, float *o0, ptrdiff_t W, float mean,
    float a, float b, float kk, float slope, int through_stats)
{
    convlab_np_grad_rows16(gr, cr, x0, NULL, o0, NULL, W, mean, a, b, kk, slope, through_stats);
}

#pragma GCC pop_options
#endif /* CONVLAB_X86 */

CONVLAB_NORM_POOL(float, f32)
CONVLAB_NORM_POOL(double, f64)

#endif /* CONVLAB_NORM_POOL_H */
