/*
 * Batch normalisation, one channel of an (N, C, L) array per call: the caller runs channels in
 * parallel, so each channel's sums run in one fixed order (deterministic for any thread count).
 * Sums are accumulated in double; "omp simd" lets the compiler vectorise them (ignored, and
 * still correct, in a build without OpenMP).
 */
#ifndef CONVLAB_BATCH_NORM_H
#define CONVLAB_BATCH_NORM_H

#include <stddef.h>

#define CONVLAB_BN(T, SUF)                                                                     \
    /* biased mean and variance of channel c (two passes: no cancellation) */                  \
    static void convlab_bn_stats_##SUF(const T *x, ptrdiff_t N, ptrdiff_t C, ptrdiff_t L,       \
                                       ptrdiff_t c, double *mean, double *var)                 \
    {                                                                                          \
        double s = 0.0, q = 0.0, m;                                                            \
        for (ptrdiff_t n = 0; n < N; n++) {                                                    \
            const T *r = x + (n * C + c) * L;                                                  \
            _Pragma("omp simd reduction(+:s)")                                                 \
            for (ptrdiff_t i = 0; i < L; i++) s += r[i];                                       \
        }                                                                                      \
        m = s / (double)(N * L);                                                               \
        for (ptrdiff_t n = 0; n < N; n++) {                                                    \
            const T *r = x + (n * C + c) * L;                                                  \
            _Pragma("omp simd reduction(+:q)")                                                 \
            for (ptrdiff_t i = 0; i < L; i++) {                                                \
                double d = (double)r[i] - m;                                                   \
                q += d * d;                                                                    \
            }                                                                                  \
        }                                                                                      \
        *mean = m;                                                                             \
        *var = q / (double)(N * L);                                                            \
    }                                                                                          \
    /* y = (x - mean) * scale + shift over channel c */                                         \
    static void convlab_bn_apply_##SUF(const T *x, T *y, ptrdiff_t N, ptrdiff_t C, ptrdiff_t L, \
                                       ptrdiff_t c, T mean, T scale, T shift)                  \
    {                                                                                          \
        for (ptrdiff_t n = 0; n < N; n++) {                                                    \
            const T *r = x + (n * C + c) * L;                                                  \
            T *o = y + (n * C + c) * L;                                                        \
            _Pragma("omp simd")                                                                \
            for (ptrdiff_t i = 0; i < L; i++) o[i] = (r[i] - mean) * scale + shift;            \
        }                                                                                      \
    }                                                                                          \
    /* sum of g and of g * (x - mean) over channel c */                                         \
    static void convlab_bn_grad_sums_##SUF(const T *g, const T *x, ptrdiff_t N, ptrdiff_t C,    \
                                           ptrdiff_t L, ptrdiff_t c, double mean,              \
                                           double *sum_g, double *sum_gx)                      \
    {                                                                                          \
        double s = 0.0, q = 0.0;                                                               \
        for (ptrdiff_t n = 0; n < N; n++) {                                                    \
            const T *gr = g + (n * C + c) * L, *xr = x + (n * C + c) * L;                      \
            _Pragma("omp simd reduction(+:s, q)")                                              \
            for (ptrdiff_t i = 0; i < L; i++) {                                                \
                s += gr[i];                                                                    \
                q += (double)gr[i] * ((double)xr[i] - mean);                                   \
            }                                                                                  \
        }                                                                                      \
        *sum_g = s;                                                                            \
        *sum_gx = q;                                                                           \
    }                                                                                          \
    /* gx = a * g over channel c (running statistics: x does not enter, so an inf in it must   \
     * not become 0 * inf = NaN)                                                             \
     */                                                                                      \
    static void convlab_bn_grad_scale_##SUF(const T *g, T *gx, ptrdiff_t N, ptrdiff_t C,        \
                                            ptrdiff_t L, ptrdiff_t c, T a)                     \
    {                                                                                          \
        for (ptrdiff_t n = 0; n < N; n++) {                                                    \
            const T *gr = g + (n * C + c) * L;                                                 \
            T *o = gx + (n * C + c) * L;                                                       \
            _Pragma("omp simd")                                                                \
            for (ptrdiff_t i = 0; i < L; i++) o[i] = a * gr[i];                                \
        }                                                                                      \
    }                                                                                          \
    /* gx = a * g + b * (x - mean) + k over channel c */                                        \
    static void convlab_bn_grad_input_##SUF(const T *g, const T *x, T *gx, ptrdiff_t N,         \
                                            ptrdiff_t C, ptrdiff_t L, ptrdiff_t c, T mean,     \
                                            T a, T b, T k)                                     \
    {                                                                                          \
        for (ptrdiff_t n = 0; n < N; n++) {                                                    \
            const T *gr = g + (n * C + c) * L, *xr = x + (n * C + c) * L;                      \
            T *o = gx + (n * C + c) * L;                                                       \
            _Pragma("omp simd")                                                                \
            for (ptrdiff_t i = 0; i < L; i++) o[i] = a * gr[i] + b * (xr[i] - mean) + k;       \
        }                                                                                      \
    }

CONVLAB_BN(float, f32)
CONVLAB_BN(double, f64)

#endif
