/*
 * GEMM micro-kernels for convlab's CPU backend, with runtime ISA dispatch.
 *
 * A micro-kernel computes one MR x NR tile of a row-major C from packed panels:
 *     C[MR][NR] (+)= sum_k A[k][0:MR] (broadcast) * B[k][0:NR] (vector load)
 * A panels hold MR values per k, B panels NR values per k (see _gemm.pyx for the packing).
 *
 * These live in C rather than Cython because they need SIMD intrinsics and per-function
 * `target` attributes: the extension is compiled for the baseline x86-64 ISA (so the wheel runs
 * anywhere) and only these functions are compiled for AVX2 / AVX-512, picked at run time from
 * CPUID. Everything around them (packing, blocking, OpenMP loops) is Cython.
 */
#ifndef CONVLAB_UKERNELS_H
#define CONVLAB_UKERNELS_H

#include <stdint.h>
#include <string.h>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define CONVLAB_X86 1
#include <immintrin.h>
#else
#define CONVLAB_X86 0
#endif

#if defined(__clang__)
#define CONVLAB_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define CONVLAB_UNROLL _Pragma("GCC unroll 32")
#else
#define CONVLAB_UNROLL
#endif

enum { CONVLAB_ISA_GENERIC = 0, CONVLAB_ISA_AVX2 = 1, CONVLAB_ISA_AVX512 = 2 };

/* A kernel reads A either packed (MR values per k, `lda` ignored) or, for the "direct" kernels,
 * straight from a row-major matrix with row stride `lda` (A[i * lda + k]): when B has only a few
 * panels, packing A would cost more than it saves. It always computes a full MR x NR tile (the
 * packed panels are zero-padded) but stores only the first `rows` x `cols` of it, so edge tiles
 * need no scratch buffer. */
typedef void (*convlab_ukr_f32)(int64_t kc, const float *A, int64_t lda, const float *B,
                                float *C, int64_t ldc, int accumulate, int rows, int cols);
typedef void (*convlab_ukr_f64)(int64_t kc, const double *A, int64_t lda, const double *B,
                                double *C, int64_t ldc, int accumulate, int rows, int cols);

/* How the kernels step through A. */
#define CONVLAB_A_PACKED(i) A[i]
#define CONVLAB_A_PACKED_NEXT(mr) A += (mr)
#define CONVLAB_A_DIRECT(i) A[(i) * lda]
#define CONVLAB_A_DIRECT_NEXT(mr) A += 1

/* ------------------------------------------------------------------------------------------ */
/* Portable kernels: plain C the compiler vectorises for the baseline ISA.                     */
/* ------------------------------------------------------------------------------------------ */
#define CONVLAB_GENERIC_KERNEL(NAME, T, MR, NR, A_AT, A_NEXT)                                  \
    static void NAME(int64_t kc, const T *A, int64_t lda, const T *B, T *C, int64_t ldc,       \
                     int accumulate, int rows, int cols)                                       \
    {                                                                                          \
        (void)lda;                                                                             \
        T acc[MR][NR];                                                                         \
        memset(acc, 0, sizeof(acc));                                                           \
        for (int64_t k = 0; k < kc; k++) {                                                     \
            CONVLAB_UNROLL for (int i = 0; i < MR; i++) {                                      \
                const T a = A_AT(i);                                                           \
                CONVLAB_UNROLL for (int j = 0; j < NR; j++) acc[i][j] += a * B[j];             \
            }                                                                                  \
            A_NEXT(MR);                                                                        \
            B += NR;                                                                           \
        }                                                                                      \
        for (int i = 0; i < rows; i++) {                                                       \
            T *c = C + i * ldc;                                                                \
            if (accumulate)                                                                    \
                for (int j = 0; j < cols; j++) c[j] += acc[i][j];                              \
            else                                                                               \
                for (int j = 0; j < cols; j++) c[j] = acc[i][j];                               \
        }                                                                                      \
    }

CONVLAB_GENERIC_KERNEL(convlab_ukr_generic_f32, float, 4, 8, CONVLAB_A_PACKED,
                       CONVLAB_A_PACKED_NEXT)
CONVLAB_GENERIC_KERNEL(convlab_ukr_generic_f64, double, 4, 4, CONVLAB_A_PACKED,
                       CONVLAB_A_PACKED_NEXT)
CONVLAB_GENERIC_KERNEL(convlab_ukd_generic_f32, float, 4, 8, CONVLAB_A_DIRECT,
                       CONVLAB_A_DIRECT_NEXT)
CONVLAB_GENERIC_KERNEL(convlab_ukd_generic_f64, double, 4, 4, CONVLAB_A_DIRECT,
                       CONVLAB_A_DIRECT_NEXT)

#if CONVLAB_X86
/* ------------------------------------------------------------------------------------------ */
/* Vector kernels. Each keeps MR x (NR / lanes) accumulators in registers; B rows are two      */
/* vector loads, A values are broadcasts. Tile sizes fill the register file without spills:   */
/* AVX-512 has 32 registers (24 accumulators), AVX2 has 16 (12 accumulators).                 */
/*                                                                                            */
/* Partial tiles: AVX-512 stores with lane masks; AVX2 (whose masked moves are slow on some    */
/* CPUs) spills the tile to the stack and copies the valid part. Loops over the accumulators   */
/* keep constant indices (unrolled, guarded by `i < rows`) so they stay in registers.          */
/* ------------------------------------------------------------------------------------------ */
#define CONVLAB_VEC_KERNEL(NAME, TGT, T, VT, LANES, MR, A_AT, A_NEXT, SET1, LOAD, STORE, FMA,  \
                           ADD, ZERO, PARTIAL)                                                 \
    __attribute__((target(TGT))) static void NAME(int64_t kc, const T *A, int64_t lda,         \
                                                   const T *B, T *C, int64_t ldc,              \
                                                   int accumulate, int rows, int cols)         \
    {                                                                                          \
        (void)lda;                                                                             \
        VT c0[MR], c1[MR];                                                                     \
        CONVLAB_UNROLL for (int i = 0; i < MR; i++) {                                          \
            c0[i] = ZERO();                                                                    \
            c1[i] = ZERO();                                                                    \
            if (i < rows) {                                                                    \
                _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);                        \
                _mm_prefetch((const char *)(C + i * ldc + 2 * LANES - 1), _MM_HINT_T0);        \
            }                                                                                  \
        }                                                                                      \
        if (cols <= LANES) {                                                                   \
            /* a narrow tile (the last panel of an N just past a multiple of NR): half the     \
             * multiply-adds; the zero right half of the panel is not read */                 \
            for (int64_t k = 0; k < kc; k++) {                                                 \
                const VT b0 = LOAD(B);                                                         \
                CONVLAB_UNROLL for (int i = 0; i < MR; i++)                                    \
                    c0[i] = FMA(SET1(A_AT(i)), b0, c0[i]);                                     \
                A_NEXT(MR);                                                                    \
                B += 2 * LANES;                                                                \
            }                                                                                  \
        } else {                                                                               \
            for (int64_t k = 0; k < kc; k++) {                                                 \
                const VT b0 = LOAD(B), b1 = LOAD(B + LANES);                                   \
                CONVLAB_UNROLL for (int i = 0; i < MR; i++) {                                  \
                    const VT a = SET1(A_AT(i));                                                \
                    c0[i] = FMA(a, b0, c0[i]);                                                 \
                    c1[i] = FMA(a, b1, c1[i]);                                                 \
                }                                                                              \
                A_NEXT(MR);                                                                    \
                B += 2 * LANES;                                                                \
            }                                                                                  \
        }                                                                                      \
        if (rows == MR && cols == 2 * LANES) {                                                 \
            CONVLAB_UNROLL for (int i = 0; i < MR; i++) {                                      \
                T *c = C + i * ldc;                                                            \
                if (accumulate) {                                                              \
                    c0[i] = ADD(c0[i], LOAD(c));                                               \
                    c1[i] = ADD(c1[i], LOAD(c + LANES));                                       \
                }                                                                              \
                STORE(c, c0[i]);                                                               \
                STORE(c + LANES, c1[i]);                                                       \
            }                                                                                  \
            return;                                                                            \
        }                                                                                      \
        PARTIAL(T, VT, LANES, MR)                                                              \
    }

#define CONVLAB_PARTIAL_MASKED(T, VT, LANES, MR, MASK_T, MASKZ_LOAD, MASK_STORE, ADD)           \
    {                                                                                          \
        const MASK_T m0 = (MASK_T)(cols >= LANES ? ~0u : (1u << cols) - 1u);                   \
        const MASK_T m1 = (MASK_T)(cols >= 2 * LANES ? ~0u                                     \
                                   : cols > LANES ? (1u << (cols - LANES)) - 1u : 0u);         \
        CONVLAB_UNROLL for (int i = 0; i < MR; i++) {                                          \
            if (i < rows) {                                                                    \
                T *c = C + i * ldc;                                                            \
                if (accumulate) {                                                              \
                    c0[i] = ADD(c0[i], MASKZ_LOAD(m0, c));                                     \
                    c1[i] = ADD(c1[i], MASKZ_LOAD(m1, c + LANES));                             \
                }                                                                              \
                MASK_STORE(c, m0, c0[i]);                                                      \
                MASK_STORE(c + LANES, m1, c1[i]);                                              \
            }                                                                                  \
        }                                                                                      \
    }
#define CONVLAB_PARTIAL_512_PS(T, VT, LANES, MR)                                                \
    CONVLAB_PARTIAL_MASKED(T, VT, LANES, MR, __mmask16, _mm512_maskz_loadu_ps,                  \
                           _mm512_mask_storeu_ps, _mm512_add_ps)
#define CONVLAB_PARTIAL_512_PD(T, VT, LANES, MR)                                                \
    CONVLAB_PARTIAL_MASKED(T, VT, LANES, MR, __mmask8, _mm512_maskz_loadu_pd,                   \
                           _mm512_mask_storeu_pd, _mm512_add_pd)
#define CONVLAB_PARTIAL_SPILL(T, VT, LANES, MR)                                                 \
    {                                                                                          \
        T tile[MR][2 * LANES];                                                                 \
        CONVLAB_UNROLL for (int i = 0; i < MR; i++) {                                          \
            memcpy(tile[i], &c0[i], sizeof(VT));                                               \
            memcpy(tile[i] + LANES, &c1[i], sizeof(VT));                                       \
        }                                                                                      \
        for (int i = 0; i < rows; i++) {                                                       \
            T *c = C + i * ldc;                                                                \
            if (accumulate)                                                                    \
                for (int j = 0; j < cols; j++) c[j] += tile[i][j];                             \
            else                                                                               \
                for (int j = 0; j < cols; j++) c[j] = tile[i][j];                              \
        }                                                                                      \
    }

#define CONVLAB_AVX512 "avx512f,avx512vl,avx2,fma"
#define CONVLAB_AVX2 "avx2,fma"

#define CONVLAB_AVX512_KERNELS(SUFFIX, A_AT, A_NEXT)                                           \
    CONVLAB_VEC_KERNEL(convlab_##SUFFIX##_avx512_f32, CONVLAB_AVX512, float, __m512, 16, 12,     \
                       A_AT, A_NEXT, _mm512_set1_ps, _mm512_loadu_ps, _mm512_storeu_ps,         \
                       _mm512_fmadd_ps, _mm512_add_ps, _mm512_setzero_ps,                       \
                       CONVLAB_PARTIAL_512_PS)                                                  \
    CONVLAB_VEC_KERNEL(convlab_##SUFFIX##_avx512_f64, CONVLAB_AVX512, double, __m512d, 8, 12,    \
                       A_AT, A_NEXT, _mm512_set1_pd, _mm512_loadu_pd, _mm512_storeu_pd,         \
                       _mm512_fmadd_pd, _mm512_add_pd, _mm512_setzero_pd,                       \
                       CONVLAB_PARTIAL_512_PD)
#define CONVLAB_AVX2_KERNELS(SUFFIX, A_AT, A_NEXT)                                             \
    CONVLAB_VEC_KERNEL(convlab_##SUFFIX##_avx2_f32, CONVLAB_AVX2, float, __m256, 8, 6, A_AT,     \
                       A_NEXT, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps,               \
                       _mm256_fmadd_ps, _mm256_add_ps, _mm256_setzero_ps,                       \
                       CONVLAB_PARTIAL_SPILL)                                                   \
    CONVLAB_VEC_KERNEL(convlab_##SUFFIX##_avx2_f64, CONVLAB_AVX2, double, __m256d, 4, 6, A_AT,   \
                       A_NEXT, _mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd,               \
                       _mm256_fmadd_pd, _mm256_add_pd, _mm256_setzero_pd,                       \
                       CONVLAB_PARTIAL_SPILL)

CONVLAB_AVX512_KERNELS(ukr, CONVLAB_A_PACKED, CONVLAB_A_PACKED_NEXT)
CONVLAB_AVX512_KERNELS(ukd, CONVLAB_A_DIRECT, CONVLAB_A_DIRECT_NEXT)
CONVLAB_AVX2_KERNELS(ukr, CONVLAB_A_PACKED, CONVLAB_A_PACKED_NEXT)
CONVLAB_AVX2_KERNELS(ukd, CONVLAB_A_DIRECT, CONVLAB_A_DIRECT_NEXT)
#endif /* CONVLAB_X86 */

/* ------------------------------------------------------------------------------------------ */
/* Dispatch                                                                                   */
/* ------------------------------------------------------------------------------------------ */
typedef struct {
    int isa;
    int mr32, nr32, mr64, nr64;
    convlab_ukr_f32 f32, direct_f32;
    convlab_ukr_f64 f64, direct_f64;
} convlab_kernel_set;

/* 1 when this CPU (and OS) can run the given ISA's kernels. */
static int convlab_isa_supported(int isa)
{
    if (isa == CONVLAB_ISA_GENERIC) return 1;
#if CONVLAB_X86
    __builtin_cpu_init();
    if (isa == CONVLAB_ISA_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == CONVLAB_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("fma");
#endif
    return 0;
}

/* The kernel set for `isa`; the caller checks convlab_isa_supported first. */
static convlab_kernel_set convlab_kernels_for(int isa)
{
    convlab_kernel_set k;
#if CONVLAB_X86
    if (isa == CONVLAB_ISA_AVX512) {
        k.isa = isa; k.mr32 = 12; k.nr32 = 32; k.mr64 = 12; k.nr64 = 16;
        k.f32 = convlab_ukr_avx512_f32; k.f64 = convlab_ukr_avx512_f64;
        k.direct_f32 = convlab_ukd_avx512_f32; k.direct_f64 = convlab_ukd_avx512_f64;
        return k;
    }
    if (isa == CONVLAB_ISA_AVX2) {
        k.isa = isa; k.mr32 = 6; k.nr32 = 16; k.mr64 = 6; k.nr64 = 8;
        k.f32 = convlab_ukr_avx2_f32; k.f64 = convlab_ukr_avx2_f64;
        k.direct_f32 = convlab_ukd_avx2_f32; k.direct_f64 = convlab_ukd_avx2_f64;
        return k;
    }
#endif
    k.isa = CONVLAB_ISA_GENERIC; k.mr32 = 4; k.nr32 = 8; k.mr64 = 4; k.nr64 = 4;
    k.f32 = convlab_ukr_generic_f32; k.f64 = convlab_ukr_generic_f64;
    k.direct_f32 = convlab_ukd_generic_f32; k.direct_f64 = convlab_ukd_generic_f64;
    return k;
}

/* The best ISA this CPU supports. */
static int convlab_best_isa(void)
{
    if (convlab_isa_supported(CONVLAB_ISA_AVX512)) return CONVLAB_ISA_AVX512;
    if (convlab_isa_supported(CONVLAB_ISA_AVX2)) return CONVLAB_ISA_AVX2;
    return CONVLAB_ISA_GENERIC;
}

/* ------------------------------------------------------------------------------------------ */
/* bfloat16 compute (avx512_bf16): panels rounded to bf16, products summed in float32          */
/* ------------------------------------------------------------------------------------------ */
/* vdpbf16ps multiplies *pairs* of bf16 values along the depth and adds both products into one
 * float32 lane, so bf16 panels interleave depth pairs: element (k, i) of a panel `width` wide
 * sits at [(k / 2) * 2 * width + 2 * i + (k & 1)] (an odd depth gets a zero last row). A bf16
 * panel of depth kc takes no more bytes than the float32 one, so it is written over it, in
 * place, right after packing (include/bf16_pack.h). The kernels read `kp` = ceil(kc / 2) depth
 * pairs; A values of a pair are broadcast as one 32-bit word. */
typedef void (*convlab_ukr_bf16)(int64_t kp, const uint16_t *A, const uint16_t *B, float *C,
                                 int64_t ldc, int accumulate, int rows, int cols);

/* 1 when this CPU (and OS) runs avx512_bf16 (with the AVX-512 foundation the kernels use). */
static int convlab_bf16_supported(void)
{
#if CONVLAB_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && convlab_isa_supported(CONVLAB_ISA_AVX512);
#else
    return 0;
#endif
}

#define CONVLAB_BF16_MR 12
#define CONVLAB_BF16_NR 32

#if CONVLAB_X86
#define CONVLAB_AVX512_BF16 "avx512f,avx512vl,avx512bw,avx512bf16,avx2,fma"
/* MR x 32 tile: 24 float32 accumulators, two 16-lane B loads (32 bf16 each: 16 columns x a
 * depth pair) per pair step, one 32-bit broadcast per row. */
__attribute__((target(CONVLAB_AVX512_BF16))) static void
convlab_ukr_avx512_bf16(int64_t kp, const uint16_t *A, const uint16_t *B, float *C, int64_t ldc,
                        int accumulate, int rows, int cols)
{
    enum { MR = CONVLAB_BF16_MR, LANES = 16 };
    __m512 c0[MR], c1[MR];
    CONVLAB_UNROLL for (int i = 0; i < MR; i++) {
        c0[i] = _mm512_setzero_ps();
        c1[i] = _mm512_setzero_ps();
        if (i < rows) {
            _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(C + i * ldc + 2 * LANES - 1), _MM_HINT_T0);
        }
    }
    const uint32_t *a32 = (const uint32_t *)A;
    if (cols <= LANES) { /* a narrow tile: half the products (see CONVLAB_VEC_KERNEL) */
        for (int64_t p = 0; p < kp; p++) {
            const __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)B);
            CONVLAB_UNROLL for (int i = 0; i < MR; i++)
                c0[i] = _mm512_dpbf16_ps(c0[i], (__m512bh)_mm512_set1_epi32((int)a32[i]), b0);
            a32 += MR;
            B += 4 * LANES;
        }
    } else {
        for (int64_t p = 0; p < kp; p++) {
            const __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)B);
            const __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(B + 2 * LANES));
            CONVLAB_UNROLL for (int i = 0; i < MR; i++) {
                const __m512bh a = (__m512bh)_mm512_set1_epi32((int)a32[i]);
                c0[i] = _mm512_dpbf16_ps(c0[i], a, b0);
                c1[i] = _mm512_dpbf16_ps(c1[i], a, b1);
            }
            a32 += MR;
            B += 4 * LANES;
        }
    }
    if (rows == MR && cols == 2 * LANES) {
        CONVLAB_UNROLL for (int i = 0; i < MR; i++) {
            float *c = C + i * ldc;
            if (accumulate) {
                c0[i] = _mm512_add_ps(c0[i], _mm512_loadu_ps(c));
                c1[i] = _mm512_add_ps(c1[i], _mm512_loadu_ps(c + LANES));
            }
            _mm512_storeu_ps(c, c0[i]);
            _mm512_storeu_ps(c + LANES, c1[i]);
        }
        return;
    }
    CONVLAB_PARTIAL_512_PS(float, __m512, LANES, MR)
}
#endif /* CONVLAB_X86 */

/* The bf16 kernel, or NULL where the CPU has none (the caller then keeps float32). */
static convlab_ukr_bf16 convlab_bf16_kernel(void)
{
#if CONVLAB_X86
    if (convlab_bf16_supported()) return convlab_ukr_avx512_bf16;
#endif
    return 0;
}

#endif /* CONVLAB_UKERNELS_H */
