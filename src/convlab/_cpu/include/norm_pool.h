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

#define CONVLAB_NORM_POOL_POSITIVE 0x80
#define CONVLAB_NORM_POOL_ROW 0x7f

#define CONVLAB_NORM_POOL(T, SUF)                                                              \
    /* y <- normalised row r, code <- 0 (the window's first row) */                           \
    static inline void convlab_np_first_##SUF(const T *restrict r, T *restrict y,             \
                                              uint8_t *restrict code, ptrdiff_t W, T mean,    \
                                              T scale, T shift)                               \
    {                                                                                          \
        for (ptrdiff_t j = 0; j < W; j++) {                                                    \
            y[j] = (r[j] - mean) * scale + shift;                                              \
            code[j] = 0;                                                                       \
        }                                                                                      \
    }                                                                                          \
    /* fold normalised row r (window row i) into the running max y, code */                   \
    static inline void convlab_np_update_##SUF(const T *restrict r, T *restrict y,            \
                                               uint8_t *restrict code, ptrdiff_t W, T mean,   \
                                               T scale, T shift, uint8_t i)                   \
    {                                                                                          \
        for (ptrdiff_t j = 0; j < W; j++) {                                                    \
            const T v = (r[j] - mean) * scale + shift, cur = y[j];                             \
            const int take = (v > cur) | (v != v);                                             \
            y[j] = take ? v : cur;                                                             \
            code[j] = take ? i : code[j];                                                      \
        }                                                                                      \
    }                                                                                          \
    /* activation of the pooled row, its sign into bit 7 of the code: leaky ReLU for         \
     * slope > 0 (x * slope, as the unfused kernel: -inf stays -inf), ReLU for slope 0       \
     * (max(x, 0) as NumPy's maximum: NaN and -0.0 pass through) */                           \
    static inline void convlab_np_activate_##SUF(T *restrict y, uint8_t *restrict code,       \
                                                 ptrdiff_t W, T slope)                        \
    {                                                                                          \
        if (slope == (T)0) {                                                                   \
            for (ptrdiff_t j = 0; j < W; j++) {                                                \
                const T v = y[j];                                                              \
                y[j] = v < (T)0 ? (T)0 : v;                                                    \
                /* PyTorch's ReLU passes the gradient where !(x <= 0): NaN included */         \
                code[j] = (uint8_t)(code[j] | (v <= (T)0 ? 0 : CONVLAB_NORM_POOL_POSITIVE));   \
            }                                                                                  \
        } else {                                                                               \
            for (ptrdiff_t j = 0; j < W; j++) {                                                \
                const T v = y[j];                                                              \
                y[j] = v > (T)0 ? v : v * slope;                                               \
                code[j] = (uint8_t)(code[j] | (v > (T)0 ? CONVLAB_NORM_POOL_POSITIVE : 0));    \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    /* forward of channel c: normalise, pool, activate; x (N, C, H, W) -> y, code (N, C, OH, \
     * W). The last window may be partial (ceil mode); rows past OH * k (floor mode) are only \
     * in the statistics. */                                                                   \
    static void convlab_np_forward_##SUF(const T *x, T *y, uint8_t *code, ptrdiff_t N,        \
                                         ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t OH, \
                                         ptrdiff_t k, ptrdiff_t c, T mean, T scale, T shift,  \
                                         T slope)                                              \
    {                                                                                          \
        for (ptrdiff_t n = 0; n < N; n++) {                                                    \
            const T *xp = x + (n * C + c) * H * W;                                             \
            T *yp = y + (n * C + c) * OH * W;                                                  \
            uint8_t *cp = code + (n * C + c) * OH * W;                                         \
            for (ptrdiff_t oh = 0; oh < OH; oh++) {                                            \
                const ptrdiff_t h0 = oh * k, rows = H - h0 < k ? H - h0 : k;                   \
                T *yr = yp + oh * W;                                                           \
                uint8_t *cr = cp + oh * W;                                                     \
                convlab_np_first_##SUF(xp + h0 * W, yr, cr, W, mean, scale, shift);            \
                for (ptrdiff_t i = 1; i < rows; i++)                                           \
                    convlab_np_update_##SUF(xp + (h0 + i) * W, yr, cr, W, mean, scale, shift,  \
                                            (uint8_t)i);                                       \
                convlab_np_activate_##SUF(yr, cr, W, slope);                                   \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    /* sum of g' and of g' * (x - mean) over channel c, g' the gradient each input element   \
     * gets from the pool and activation (g * 1 or g * slope at its window's maximum, else   \
     * 0); rows that are no window's maximum add nothing, so only the pooled rows are read */ \
    static void convlab_np_grad_sums_##SUF(const T *g, const uint8_t *code, const T *x,        \
                                           ptrdiff_t N, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, \
                                           ptrdiff_t OH, ptrdiff_t k, ptrdiff_t c,             \
                                           double mean, T slope, double *sum_g,                \
                                           double *sum_gx)                                     \
    {                                                                                          \
        double s = 0.0, q = 0.0;                                                               \
        for (ptrdiff_t n = 0; n < N; n++) {                                                    \
            const T *xp = x + (n * C + c) * H * W;                                             \
            const T *gp = g + (n * C + c) * OH * W;                                            \
            const uint8_t *cp = code + (n * C + c) * OH * W;                                   \
            for (ptrdiff_t oh = 0; oh < OH; oh++) {                                            \
                const ptrdiff_t h0 = oh * k, rows = H - h0 < k ? H - h0 : k;                   \
                const T *gr = gp + oh * W;                                                     \
                const uint8_t *cr = cp + oh * W;                                               \
                for (ptrdiff_t i = 0; i < rows; i++) {                                         \
                    const T *xr = xp + (h0 + i) * W;                                           \
                    _Pragma("omp simd reduction(+:s, q)")                                      \
                    for (ptrdiff_t j = 0; j < W; j++) {                                        \
                        const int cj = cr[j];                                                  \
                        const T gv = gr[j] * ((cj & CONVLAB_NORM_POOL_POSITIVE) ? (T)1 : slope); \
                        const T gs = (cj & CONVLAB_NORM_POOL_ROW) == i ? gv : (T)0;            \
                        s += gs;                                                               \
                        q += (double)gs * ((double)xr[j] - mean);                              \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        *sum_g = s;                                                                            \
        *sum_gx = q;                                                                           \
    }                                                                                          \
    /* gx = a * g' + b * (x - mean) + kk over channel c (batch_norm.h's formula on the       \
     * scattered gradient g'); without batch statistics (through_stats 0) just a * g': x does \
     * not enter, so an inf or NaN input does not turn 0 * (x - mean) into NaN (PyTorch's    \
     * evaluation-mode gradient) */                                                            \
    static inline void convlab_np_grad_row_##SUF(const T *restrict gr,                        \
                                                 const uint8_t *restrict cr,                  \
                                                 const T *restrict xr, T *restrict o,         \
                                                 ptrdiff_t W, int i, T mean, T a, T b, T kk,  \
                                                 T slope, int through_stats)                   \
    {                                                                                          \
        if (through_stats) {                                                                   \
            for (ptrdiff_t j = 0; j < W; j++) {                                                \
                const int cj = cr[j];                                                          \
                const T gv = gr[j] * ((cj & CONVLAB_NORM_POOL_POSITIVE) ? (T)1 : slope);       \
                const T gs = (cj & CONVLAB_NORM_POOL_ROW) == i ? gv : (T)0;                    \
                o[j] = a * gs + b * (xr[j] - mean) + kk;                                       \
            }                                                                                  \
        } else {                                                                               \
            for (ptrdiff_t j = 0; j < W; j++) {                                                \
                const int cj = cr[j];                                                          \
                const T gv = gr[j] * ((cj & CONVLAB_NORM_POOL_POSITIVE) ? (T)1 : slope);       \
                o[j] = a * ((cj & CONVLAB_NORM_POOL_ROW) == i ? gv : (T)0);                    \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    static void convlab_np_grad_input_##SUF(const T *g, const uint8_t *code, const T *x,       \
                                            T *gx, ptrdiff_t N, ptrdiff_t C, ptrdiff_t H,      \
                                            ptrdiff_t W, ptrdiff_t OH, ptrdiff_t k,            \
                                            ptrdiff_t c, T mean, T a, T b, T kk, T slope,      \
                                            int through_stats)                                 \
    {                                                                                          \
        for (ptrdiff_t n = 0; n < N; n++) {                                                    \
            const T *xp = x + (n * C + c) * H * W;                                             \
            T *op = gx + (n * C + c) * H * W;                                                  \
            const T *gp = g + (n * C + c) * OH * W;                                            \
            const uint8_t *cp = code + (n * C + c) * OH * W;                                   \
            ptrdiff_t h = 0;                                                                   \
            for (ptrdiff_t oh = 0; oh < OH; oh++) {                                            \
                const ptrdiff_t rows = H - h < k ? H - h : k;                                  \
                for (ptrdiff_t i = 0; i < rows; i++, h++)                                      \
                    convlab_np_grad_row_##SUF(gp + oh * W, cp + oh * W, xp + h * W,            \
                                              op + h * W, W, (int)i, mean, a, b, kk, slope,    \
                                              through_stats);                                  \
            }                                                                                  \
            /* rows past the last window (floor mode) get no gradient from the pool */        \
            for (; h < H; h++) {                                                               \
                const T *xr = xp + h * W;                                                      \
                T *o = op + h * W;                                                             \
                for (ptrdiff_t j = 0; j < W; j++)                                              \
                    o[j] = through_stats ? a * (T)0 + b * (xr[j] - mean) + kk : a * (T)0;      \
            }                                                                                  \
        }                                                                                      \
    }

CONVLAB_NORM_POOL(float, f32)
CONVLAB_NORM_POOL(double, f64)

#endif /* CONVLAB_NORM_POOL_H */
