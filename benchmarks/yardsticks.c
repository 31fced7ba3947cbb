/*
 * The benchmarks' yardsticks, compiled on first use by yardsticks.py (not part of convlab):
 *
 * - the machine's single-precision FMA peak, the GEMM rows' "% of peak": `n` rounds of 24
 *   independent fused multiply-adds on the widest vectors of an instruction set, no memory
 *   traffic;
 * - the binary layer's memory floor, its rows' "% of memory floor": the layer's compulsory
 *   traffic and nothing else -- its output written once (16 floats at a time, streamed past
 *   the caches when it is larger than 8 MB; the values vary, as outputs do: a store loop of one
 *   repeated value can run faster), then its output gradient read once, in order.
 */
#include <stdint.h>
#include <string.h>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define YS_X86 1
#include <immintrin.h>
#else
#define YS_X86 0
#endif

#if defined(__clang__)
#define YS_UNROLL _Pragma("unroll")
#else
#define YS_UNROLL _Pragma("GCC unroll 32")
#endif

#define YS_STREAM_MIN_BYTES ((int64_t)8 << 20)

/* isa: 0 generic, 1 AVX2, 2 AVX-512 (convlab's codes) */
#if YS_X86
#define YS_PEAK(NAME, TGT, VT, LANES, SET1, FMA, ADD)                                           \
    __attribute__((target(TGT))) static double NAME(int64_t n, float seed)                     \
    {                                                                                          \
        VT acc[24];                                                                            \
        const VT a = SET1(0.999999f), b = SET1(1e-7f);                                         \
        YS_UNROLL for (int i = 0; i < 24; i++) acc[i] = SET1(seed + i);                        \
        for (int64_t r = 0; r < n; r++) {                                                      \
            YS_UNROLL for (int i = 0; i < 24; i++) acc[i] = FMA(acc[i], a, b);                 \
        }                                                                                      \
        VT total = acc[0];                                                                     \
        for (int i = 1; i < 24; i++) total = ADD(total, acc[i]);                               \
        float lanes[LANES];                                                                    \
        memcpy(lanes, &total, sizeof(lanes));                                                  \
        /* the result feeds the return value so the loop cannot be optimised away */          \
        return 48.0 * LANES * (double)n + (lanes[0] == -1.0f ? 1.0 : 0.0);                     \
    }
YS_PEAK(peak_avx512, "avx512f,avx512vl,avx2,fma", __m512, 16, _mm512_set1_ps, _mm512_fmadd_ps,
        _mm512_add_ps)
YS_PEAK(peak_avx2, "avx2,fma", __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps)
#endif

static double peak_generic(int64_t n, float seed)
{
    float acc[24];
    for (int i = 0; i < 24; i++) acc[i] = seed + i;
    for (int64_t r = 0; r < n; r++)
        for (int i = 0; i < 24; i++) acc[i] = acc[i] * 0.999999f + 1e-7f;
    float total = 0;
    for (int i = 0; i < 24; i++) total += acc[i];
    return 48.0 * (double)n + (total == -1.0f ? 1.0 : 0.0);
}

static double peak_probe(int isa, int64_t n, float seed)
{
#if YS_X86
    if (isa == 2) return peak_avx512(n, seed);
    if (isa == 1) return peak_avx2(n, seed);
#endif
    return peak_generic(n, seed);
}

/* Runs `rounds` probe rounds on each of `threads` threads at once; flops[t]: thread t's. */
void ys_peak(int isa, int64_t rounds, int threads, double *flops)
{
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int t = 0; t < threads; t++) flops[t] = peak_probe(isa, rounds, 1.0f + (float)t);
}

#if YS_X86
__attribute__((target("avx512f"))) static void write_avx512(float *out, int64_t n, int stream)
{
    __m512 v = _mm512_setr_ps(0.5f, -1.25f, 2.0f, 0.75f, -0.5f, 1.5f, -2.25f, 0.25f, 1.0f,
                              -0.75f, 1.75f, -1.5f, 0.125f, 2.5f, -1.0f, 0.625f);
    const __m512 step = _mm512_set1_ps(0.0625f);
    int64_t i = 0;
    for (; i < n && ((uintptr_t)(out + i) & 63); i++) out[i] = (float)i;
    for (; i + 16 <= n; i += 16) {
        v = _mm512_add_ps(v, step);
        if (stream) _mm512_stream_ps(out + i, v);
        else _mm512_store_ps(out + i, v);
    }
    for (; i < n; i++) out[i] = (float)i;
    if (stream) _mm_sfence();
}

__attribute__((target("avx512f"))) static float read_avx512(const float *in, int64_t n)
{
    __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a = _mm512_add_ps(a, _mm512_loadu_ps(in + i));
        b = _mm512_add_ps(b, _mm512_loadu_ps(in + i + 16));
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(a, b));
    for (; i < n; i++) sum += in[i];
    return sum;
}
#endif

static void write_generic(float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++) out[i] = (float)(i & 1023) * 0.0625f;
}

static float read_generic(const float *in, int64_t n)
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += in[i];
    return sum;
}

/* Writes every float of out[0 .. n_out), then returns the sum of grad[0 .. n_in), each in
 * chunks shared out over `threads` threads. avx512: whether the AVX-512 loops may run. */
double ys_memory_floor(float *out, int64_t n_out, const float *grad, int64_t n_in, int threads,
                       int avx512)
{
    const int64_t chunk = (int64_t)1 << 16;
    const int stream = n_out * (int64_t)sizeof(float) > YS_STREAM_MIN_BYTES;
    double total = 0.0;
#pragma omp parallel for num_threads(threads) schedule(dynamic)
    for (int64_t c = 0; c < (n_out + chunk - 1) / chunk; c++) {
        const int64_t len = n_out - c * chunk < chunk ? n_out - c * chunk : chunk;
#if YS_X86
        if (avx512) {
            write_avx512(out + c * chunk, len, stream);
            continue;
        }
#endif
        write_generic(out + c * chunk, len);
    }
#pragma omp parallel for num_threads(threads) schedule(dynamic) reduction(+ : total)
    for (int64_t c = 0; c < (n_in + chunk - 1) / chunk; c++) {
        const int64_t len = n_in - c * chunk < chunk ? n_in - c * chunk : chunk;
#if YS_X86
        if (avx512) {
            total += read_avx512(grad + c * chunk, len);
            continue;
        }
#endif
        total += read_generic(grad + c * chunk, len);
    }
    return total;
}

/*
 * The bfloat16 dot-product peak (avx512_bf16), the bf16 GEMM rows' "% of peak": `n` rounds of
 * 24 independent VDPBF16PS (16 lanes x 2 products x 2 flops each), no memory traffic. flops[t]
 * is 0 where the CPU has no avx512_bf16.
 */
#if YS_X86
__attribute__((target("avx512f,avx512bf16"))) static double peak_bf16(int64_t n, float seed)
{
    __m512 acc[24];
    const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
    YS_UNROLL for (int i = 0; i < 24; i++) acc[i] = _mm512_set1_ps(seed + i);
    for (int64_t r = 0; r < n; r++) {
        YS_UNROLL for (int i = 0; i < 24; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, a);
    }
    __m512 total = acc[0];
    for (int i = 1; i < 24; i++) total = _mm512_add_ps(total, acc[i]);
    float lanes[16];
    memcpy(lanes, &total, sizeof(lanes));
    return 24.0 * 64.0 * (double)n + (lanes[0] == -1.0f ? 1.0 : 0.0);
}
#endif

void ys_bf16_peak(int64_t rounds, int threads, double *flops)
{
#if YS_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f")) {
#pragma omp parallel for num_threads(threads) schedule(static, 1)
        for (int t = 0; t < threads; t++) flops[t] = peak_bf16(rounds, 1.0f + (float)t);
        return;
    }
#endif
    for (int t = 0; t < threads; t++) flops[t] = 0.0;
}
