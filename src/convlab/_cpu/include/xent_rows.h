/* The two row passes of a fused float32 cross-entropy over (rows x n) logits: forward, each
 * row's log-sum-exp; backward, the softmax scaled per row, exp(x - lse) * coef.
 *
 * A language model's decoder gives (bptt * batch) x vocabulary logits (700 x 10000 at the
 * usual sizes). NumPy's log-softmax makes about eight passes over them with four temporaries;
 * here forward reads each row twice (its maximum, then the sum of exponentials while the row
 * is still in cache) and keeps one number per row, and backward writes the gradient in one
 * pass. The exponential is written with AVX-512 intrinsics: an earlier version relied on the
 * compiler vectorising a scalar exp and lost to NumPy's own SIMD exp. Machines without
 * AVX-512 keep NumPy's formulation (the caller checks convlab's ISA).
 */
#ifndef CONVLAB_XENT_ROWS_H
#define CONVLAB_XENT_ROWS_H

#include <math.h>
#include <stdint.h>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define CONVLAB_XENT_AVX512 1
#define CONVLAB_XENT_TARGET __attribute__((target("avx512f")))

/* exp of 16 float32 arguments that are <= 0 up to rounding (x - max, x - lse): the argument is
 * clamped at -104 (exp is 0 in float32 below about -103.3), n = round(x / ln 2), a two-part
 * ln 2 reduction, a degree-6 polynomial on the remainder (relative error below 1e-7), and the
 * scaling by 2^n with vscalefps, which underflows gracefully to denormals and 0. A NaN argument
 * is not propagated here (the maximum instruction drops it): callers test rows for NaN. */
CONVLAB_XENT_TARGET static inline __m512 convlab_xent_exp16(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* log(sum(exp(x))) of one row, its maximum taken out first so that no term overflows. As
 * NumPy's max-shifted formula: a row holding NaN or +inf gives NaN, a row of only -inf -inf. */
CONVLAB_XENT_TARGET static float convlab_xent_row_lse_f32(const float *x, int64_t n)
{
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    __mmask16 nan = 0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        vmax = _mm512_max_ps(vmax, v);
    }
    if (i < n) {
        __mmask16 tail = (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail, x + i);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        vmax = _mm512_max_ps(vmax, v);
    }
    float m = _mm512_reduce_max_ps(vmax);
    if (nan || m == INFINITY) return NAN;
    if (m == -INFINITY) return m;
    /* two accumulators: the adds' latency, not the exp, would otherwise bound the loop */
    __m512 vm = _mm512_set1_ps(m), s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_add_ps(s0, convlab_xent_exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm)));
        s1 = _mm512_add_ps(s1,
                           convlab_xent_exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm)));
    }
    for (; i < n; i += 16) {
        int64_t left = n - i < 16 ? n - i : 16;
        __mmask16 mask = (__mmask16)((1u << left) - 1u);
        __m512 e = convlab_xent_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + i), vm));
        s0 = _mm512_add_ps(s0, _mm512_maskz_mov_ps(mask, e));
    }
    return m + logf(_mm512_reduce_add_ps(_mm512_add_ps(s0, s1)));
}

/* out = exp(x - lse) * coef over one row; a row whose lse is NaN or -inf (NaN, +inf or only
 * -inf among its logits) is NaN, as NumPy's formulation gives */
CONVLAB_XENT_TARGET static void convlab_xent_row_softmax_scaled_f32(const float *x, float *out,
                                                                    int64_t n, float lse,
                                                                    float coef)
{
    if (lse != lse || lse == -INFINITY) {
        for (int64_t i = 0; i < n; i++) out[i] = NAN;
        return;
    }
    __m512 vl = _mm512_set1_ps(lse), vc = _mm512_set1_ps(coef);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = convlab_xent_exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vl));
        _mm512_storeu_ps(out + i, _mm512_mul_ps(e, vc));
    }
    if (i < n) {
        __mmask16 tail = (__mmask16)((1u << (n - i)) - 1u);
        __m512 e = convlab_xent_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + i), vl));
        _mm512_mask_storeu_ps(out + i, tail, _mm512_mul_ps(e, vc));
    }
}

#else
#define CONVLAB_XENT_AVX512 0

/* Not x86-64 with GCC: never called (the caller keeps NumPy's path), present so that the
 * module links. */
static float convlab_xent_row_lse_f32(const float *x, int64_t n)
{
    (void)x;
    (void)n;
    return NAN;
}

static void convlab_xent_row_softmax_scaled_f32(const float *x, float *out, int64_t n,
                                                float lse, float coef)
{
    (void)x;
    (void)out;
    (void)n;
    (void)lse;
    (void)coef;
}
#endif

#endif
