/*
 * Row primitives of the pooling kernels for windows one pixel wide (the chart CNN's 2x1
 * pooling): whole rows are combined at once. In C rather than Cython for `restrict`, which
 * lets the compiler vectorise the mixed float / index selects without run-time alias checks.
 *
 * Max-pool rule (PyTorch's): a later element replaces the running max when it is greater or
 * NaN; ties keep the earlier one.
 */
#ifndef CONVLAB_POOL_ROWS_H
#define CONVLAB_POOL_ROWS_H

#include <stdint.h>

#define CONVLAB_POOL_ROWS(T, I, SUFFIX)                                                        \
    /* y, idx <- max of rows a, b (window offsets la, lb) */                                  \
    static inline void convlab_max2_##SUFFIX(const T *restrict a, const T *restrict b,         \
                                             T *restrict y, I *restrict idx, int64_t n, I la,  \
                                             I lb)                                             \
    {                                                                                          \
        for (int64_t j = 0; j < n; j++) {                                                      \
            const T va = a[j], vb = b[j];                                                      \
            const int take = (vb > va) | (vb != vb);                                           \
            y[j] = take ? vb : va;                                                             \
            idx[j] = take ? lb : la;                                                           \
        }                                                                                      \
    }                                                                                          \
    /* fold row x (window offset l) into the running max y, idx */                            \
    static inline void convlab_max_update_##SUFFIX(const T *restrict x, T *restrict y,         \
                                                   I *restrict idx, int64_t n, I l)            \
    {                                                                                          \
        for (int64_t j = 0; j < n; j++) {                                                      \
            const T v = x[j], cur = y[j];                                                      \
            const int take = (v > cur) | (v != v);                                             \
            y[j] = take ? v : cur;                                                             \
            idx[j] = take ? l : idx[j];                                                        \
        }                                                                                      \
    }                                                                                          \
    /* dx <- dy where the argmax is window offset l, else 0 */                                \
    static inline void convlab_unpool_##SUFFIX(const T *restrict dy, const I *restrict idx,    \
                                               T *restrict dx, int64_t n, I l)                 \
    {                                                                                          \
        for (int64_t j = 0; j < n; j++) {                                                      \
            const T v = dy[j]; /* loaded unconditionally, or the loop does not vectorise */    \
            dx[j] = idx[j] == l ? v : (T)0;                                                    \
        }                                                                                      \
    }

/* 2 x 2 windows with stride 2: output j takes a[2j], a[2j+1], b[2j], b[2j+1] (offsets 0..3, in
 * PyTorch's scan order) from two input rows. */
#define CONVLAB_POOL_2X2(T, I, SUFFIX)                                                         \
    static inline void convlab_max2x2_##SUFFIX(const T *restrict a, const T *restrict b,       \
                                               T *restrict y, I *restrict idx, int64_t n)      \
    {                                                                                          \
        for (int64_t j = 0; j < n; j++) {                                                      \
            const T v0 = a[2 * j], v1 = a[2 * j + 1], v2 = b[2 * j], v3 = b[2 * j + 1];        \
            T best = v0;                                                                       \
            I at = 0;                                                                          \
            int take = (v1 > best) | (v1 != v1);                                               \
            best = take ? v1 : best;                                                           \
            at = take ? (I)1 : at;                                                             \
            take = (v2 > best) | (v2 != v2);                                                   \
            best = take ? v2 : best;                                                           \
            at = take ? (I)2 : at;                                                             \
            take = (v3 > best) | (v3 != v3);                                                   \
            y[j] = take ? v3 : best;                                                           \
            idx[j] = take ? (I)3 : at;                                                         \
        }                                                                                      \
    }                                                                                          \
    static inline void convlab_unpool2x2_##SUFFIX(const T *restrict dy, const I *restrict idx, \
                                                  T *restrict da, T *restrict db, int64_t n)   \
    {                                                                                          \
        for (int64_t j = 0; j < n; j++) {                                                      \
            const T g = dy[j];                                                                 \
            const I at = idx[j];                                                               \
            da[2 * j] = at == 0 ? g : (T)0;                                                    \
            da[2 * j + 1] = at == 1 ? g : (T)0;                                                \
            db[2 * j] = at == 2 ? g : (T)0;                                                    \
            db[2 * j + 1] = at == 3 ? g : (T)0;                                                \
        }                                                                                      \
    }

CONVLAB_POOL_2X2(float, uint8_t, f32_u8)
CONVLAB_POOL_2X2(float, int32_t, f32_i32)
CONVLAB_POOL_2X2(double, uint8_t, f64_u8)
CONVLAB_POOL_2X2(double, int32_t, f64_i32)

CONVLAB_POOL_ROWS(float, uint8_t, f32_u8)
CONVLAB_POOL_ROWS(float, int32_t, f32_i32)
CONVLAB_POOL_ROWS(double, uint8_t, f64_u8)
CONVLAB_POOL_ROWS(double, int32_t, f64_i32)

/* One name per primitive for _pool.pyx, whose fused kernels call it with every value x index
 * pair: C11 _Generic picks the instance from the type of the output value row (never const)
 * and of the index row (const in the unpool primitives). Cython cannot bind one fused
 * declaration to suffixed C names, so it declares these untyped; the C compiler still checks
 * every argument against the instance chosen, and a pair with no instance does not compile. */
#define CONVLAB_POOL_BY_INDEX(idx, F, U8, I32)                                                 \
    _Generic((idx), uint8_t *: F##_##U8, const uint8_t *: F##_##U8, int32_t *: F##_##I32,      \
             const int32_t *: F##_##I32)
#define CONVLAB_POOL_PICK(F, out, idx)                                                         \
    _Generic((out), float *: CONVLAB_POOL_BY_INDEX(idx, F, f32_u8, f32_i32),                   \
             double *: CONVLAB_POOL_BY_INDEX(idx, F, f64_u8, f64_i32))

#define convlab_max2(a, b, y, idx, n, la, lb)                                                  \
    CONVLAB_POOL_PICK(convlab_max2, y, idx)(a, b, y, idx, n, la, lb)
#define convlab_max_update(x, y, idx, n, l)                                                    \
    CONVLAB_POOL_PICK(convlab_max_update, y, idx)(x, y, idx, n, l)
#define convlab_unpool(dy, idx, dx, n, l)                                                      \
    CONVLAB_POOL_PICK(convlab_unpool, dx, idx)(dy, idx, dx, n, l)
#define convlab_max2x2(a, b, y, idx, n) CONVLAB_POOL_PICK(convlab_max2x2, y, idx)(a, b, y, idx, n)
#define convlab_unpool2x2(dy, idx, da, db, n)                                                  \
    CONVLAB_POOL_PICK(convlab_unpool2x2, da, idx)(dy, idx, da, db, n)

#endif /* CONVLAB_POOL_ROWS_H */
