/*
 * Batch normalisation, one channel of an (N, C, L) array per call: the caller runs channels in
 * parallel, so each channel's sums run in one fixed order (deterministic for any thread count).
 *
 * The extension is compiled for baseline x86-64, where these loops run two doubles at a time;
 * so each function is also compiled for AVX2 and AVX-512 and picked at run time by the `isa`
 * argument (the GEMM's choice, see ukernels.h). Every version gives the same floats:
 *   - sums run in double over CONVLAB_BN_LANES fixed partial sums (element i of a row goes to
 *     partial i % LANES), combined in one fixed order at the end; the compiler turns the
 *     partials into vector registers of whatever width the ISA has without reordering a sum;
 *   - contraction is off, so no ISA fuses a multiply-add that another rounds twice.
 */
#ifndef CONVLAB_BATCH_NORM_H
#define CONVLAB_BATCH_NORM_H

#include <stddef.h>

#include "ukernels.h"

#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

#define CONVLAB_BN_LANES 16

/* acc[j] (+)= f(i + j) for one row of n values, element i to partial i % LANES. */
#define CONVLAB_BN_ROW_SUM(n, ACC_STMT)                                                         \
    do {                                                                                        \
        ptrdiff_t i_ = 0;                                                                       \
        for (; i_ + CONVLAB_BN_LANES <= (n); i_ += CONVLAB_BN_LANES)                            \
            for (int j = 0; j < CONVLAB_BN_LANES; j++) {                                        \
                const ptrdiff_t i = i_ + j;                                                     \
                ACC_STMT;                                                                       \
            }                                                                                   \
        for (int j = 0; i_ + j < (n); j++) {                                                    \
            const ptrdiff_t i = i_ + j;                                                         \
            ACC_STMT;                                                                           \
        }                                                                                       \
    } while (0)

/* Ask for row n + 1 of channel c while row n is summed: rows of one channel lie C * L apart,
 * so each is a fresh stream that the hardware prefetcher only picks up after its first misses
 * (the first pass over a channel is the one that reads from memory). */
#define CONVLAB_BN_PREFETCH_NEXT_ROW(T, base, n, N, C, L)                                       \
    do {                                                                                        \
        if ((n) + 1 < (N)) {                                                                    \
            const char *next_ = (const char *)((base) + (C) * (L));                             \
            for (ptrdiff_t b_ = 0; b_ < (L) * (ptrdiff_t)sizeof(T); b_ += 64)                   \
                __builtin_prefetch(next_ + b_);                                                 \
        }                                                                                       \
    } while (0)

/* The partials' total, in one fixed (pairwise) order. */
static inline double convlab_bn_total(const double *acc)
{
    double h[CONVLAB_BN_LANES / 2];
    for (int j = 0; j < CONVLAB_BN_LANES / 2; j++) h[j] = acc[j] + acc[j + CONVLAB_BN_LANES / 2];
    for (int w = CONVLAB_BN_LANES / 4; w >= 1; w /= 2)
        for (int j = 0; j < w; j++) h[j] = h[j] + h[j + w];
    return h[0];
}

#define CONVLAB_BN(T, SUF, ATTR)                                                                \
    /* biased mean and variance of channel c (two passes: no cancellation) */                   \
    ATTR static void convlab_bn_stats_##SUF(const T *x, ptrdiff_t N, ptrdiff_t C, ptrdiff_t L,  \
                                            ptrdiff_t c, double *mean, double *var)             \
    {                                                                                           \
        double s[CONVLAB_BN_LANES] = {0}, q[CONVLAB_BN_LANES] = {0}, m;                         \
        for (ptrdiff_t n = 0; n < N; n++) {                                                     \
            const T *r = x + (n * C + c) * L;                                                   \
            CONVLAB_BN_PREFETCH_NEXT_ROW(T, r, n, N, C, L);                                     \
            CONVLAB_BN_ROW_SUM(L, s[j] += (double)r[i]);                                        \
        }                                                                                       \
        m = convlab_bn_total(s) / (double)(N * L);                                              \
        for (ptrdiff_t n = 0; n < N; n++) {                                                     \
            const T *r = x + (n * C + c) * L;                                                   \
            CONVLAB_BN_ROW_SUM(L, {                                                             \
                const double d = (double)r[i] - m;                                              \
                q[j] += d * d;                                                                  \
            });                                                                                 \
        }                                                                                       \
        *mean = m;                                                                              \
        *var = convlab_bn_total(q) / (double)(N * L);                                           \
    }                                                                                           \
    /* y = (x - mean) * scale + shift over channel c */                                          \
    ATTR static void convlab_bn_apply_##SUF(const T *x, T *y, ptrdiff_t N, ptrdiff_t C,         \
                                            ptrdiff_t L, ptrdiff_t c, T mean, T scale, T shift) \
    {                                                                                           \
        for (ptrdiff_t n = 0; n < N; n++) {                                                     \
            const T *r = x + (n * C + c) * L;                                                   \
            T *o = y + (n * C + c) * L;                                                         \
            for (ptrdiff_t i = 0; i < L; i++) o[i] = (r[i] - mean) * scale + shift;             \
        }                                                                                       \
    }                                                                                           \
    /* sum of g and of g * (x - mean) over channel c */                                          \
    ATTR static void convlab_bn_grad_sums_##SUF(const T *g, const T *x, ptrdiff_t N,            \
                                                ptrdiff_t C, ptrdiff_t L, ptrdiff_t c,          \
                                                double mean, double *sum_g, double *sum_gx)     \
    {                                                                                           \
        double s[CONVLAB_BN_LANES] = {0}, q[CONVLAB_BN_LANES] = {0};                            \
        for (ptrdiff_t n = 0; n < N; n++) {                                                     \
            const T *gr = g + (n * C + c) * L, *xr = x + (n * C + c) * L;                       \
            CONVLAB_BN_PREFETCH_NEXT_ROW(T, gr, n, N, C, L);                                    \
            CONVLAB_BN_PREFETCH_NEXT_ROW(T, xr, n, N, C, L);                                    \
            CONVLAB_BN_ROW_SUM(L, {                                                             \
                const double gi = (double)gr[i];                                                \
                s[j] += gi;                                                                     \
                q[j] += gi * ((double)xr[i] - mean);                                            \
            });                                                                                 \
        }                                                                                       \
        *sum_g = convlab_bn_total(s);                                                           \
        *sum_gx = convlab_bn_total(q);                                                          \
    }                                                                                           \
    /* gx = a * g over channel c (running statistics: x does not enter, so an inf in it must    \
     * not become 0 * inf = NaN)                                                                \
     */                                                                                         \
    ATTR static void convlab_bn_grad_scale_##SUF(const T *g, T *gx, ptrdiff_t N, ptrdiff_t C,   \
                                                 ptrdiff_t L, ptrdiff_t c, T a)                 \
    {                                                                                           \
        for (ptrdiff_t n = 0; n < N; n++) {                                                     \
            const T *gr = g + (n * C + c) * L;                                                  \
            T *o = gx + (n * C + c) * L;                                                        \
            for (ptrdiff_t i = 0; i < L; i++) o[i] = a * gr[i];                                 \
        }                                                                                       \
    }                                                                                           \
    /* gx = a * g + b * (x - mean) + k over channel c */                                         \
    ATTR static void convlab_bn_grad_input_##SUF(const T *g, const T *x, T *gx, ptrdiff_t N,    \
                                                 ptrdiff_t C, ptrdiff_t L, ptrdiff_t c, T mean, \
                                                 T a, T b, T k)                                 \
    {                                                                                           \
        for (ptrdiff_t n = 0; n < N; n++) {                                                     \
            const T *gr = g + (n * C + c) * L, *xr = x + (n * C + c) * L;                       \
            T *o = gx + (n * C + c) * L;                                                        \
            for (ptrdiff_t i = 0; i < L; i++) o[i] = a * gr[i] + b * (xr[i] - mean) + k;        \
        }                                                                                       \
    }

#define CONVLAB_BN_GENERIC
CONVLAB_BN(float, f32_generic, CONVLAB_BN_GENERIC)
CONVLAB_BN(double, f64_generic, CONVLAB_BN_GENERIC)
#if CONVLAB_X86
#define CONVLAB_BN_AVX2 __attribute__((target("avx2,fma")))
#define CONVLAB_BN_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))
CONVLAB_BN(float, f32_avx2, CONVLAB_BN_AVX2)
CONVLAB_BN(double, f64_avx2, CONVLAB_BN_AVX2)
CONVLAB_BN(float, f32_avx512, CONVLAB_BN_AVX512)
CONVLAB_BN(double, f64_avx512, CONVLAB_BN_AVX512)
#define CONVLAB_BN_PICK(SUF, NAME, ...)                                                         \
    (isa == CONVLAB_ISA_AVX512   ? convlab_bn_##NAME##_##SUF##_avx512(__VA_ARGS__)             \
     : isa == CONVLAB_ISA_AVX2   ? convlab_bn_##NAME##_##SUF##_avx2(__VA_ARGS__)               \
                                 : convlab_bn_##NAME##_##SUF##_generic(__VA_ARGS__))
#else
#define CONVLAB_BN_PICK(SUF, NAME, ...) convlab_bn_##NAME##_##SUF##_generic(__VA_ARGS__)
#endif

/* The entry points: the version for `isa` (a CONVLAB_ISA_* code the CPU runs). */
#define CONVLAB_BN_DISPATCH(T, SUF)                                                             \
    static void convlab_bn_stats_##SUF(int isa, const T *x, ptrdiff_t N, ptrdiff_t C,           \
                                       ptrdiff_t L, ptrdiff_t c, double *mean, double *var)     \
    {                                                                                           \
        CONVLAB_BN_PICK(SUF, stats, x, N, C, L, c, mean, var);                                  \
    }                                                                                           \
    static void convlab_bn_apply_##SUF(int isa, const T *x, T *y, ptrdiff_t N, ptrdiff_t C,     \
                                       ptrdiff_t L, ptrdiff_t c, T mean, T scale, T shift)      \
    {                                                                                           \
        CONVLAB_BN_PICK(SUF, apply, x, y, N, C, L, c, mean, scale, shift);                      \
    }                                                                                           \
    static void convlab_bn_grad_sums_##SUF(int isa, const T *g, const T *x, ptrdiff_t N,        \
                                           ptrdiff_t C, ptrdiff_t L, ptrdiff_t c, double mean,  \
                                           double *sum_g, double *sum_gx)                       \
    {                                                                                           \
        CONVLAB_BN_PICK(SUF, grad_sums, g, x, N, C, L, c, mean, sum_g, sum_gx);                 \
    }                                                                                           \
    static void convlab_bn_grad_scale_##SUF(int isa, const T *g, T *gx, ptrdiff_t N,            \
                                            ptrdiff_t C, ptrdiff_t L, ptrdiff_t c, T a)         \
    {                                                                                           \
        CONVLAB_BN_PICK(SUF, grad_scale, g, gx, N, C, L, c, a);                                 \
    }                                                                                           \
    static void convlab_bn_grad_input_##SUF(int isa, const T *g, const T *x, T *gx,             \
                                            ptrdiff_t N, ptrdiff_t C, ptrdiff_t L, ptrdiff_t c, \
                                            T mean, T a, T b, T k)                              \
    {                                                                                           \
        CONVLAB_BN_PICK(SUF, grad_input, g, x, gx, N, C, L, c, mean, a, b, k);                  \
    }

CONVLAB_BN_DISPATCH(float, f32)
CONVLAB_BN_DISPATCH(double, f64)

#pragma GCC pop_options

#endif
