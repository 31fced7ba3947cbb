/*
 * The convolutions' B packing straight into the bfloat16 pair layout (include/bf16_pack.h):
 * two taps' rows gathered along the same segments (include/im2col_fill.h) and rounded into
 * one 32-bit word per pixel, depth row 2p in the low half, 2p + 1 in the high one.
 *
 * The float32 path gathers each tap into its panel row, then a second pass converts the
 * panels in place; here one pass writes half the bytes and reads nothing back. The rounding
 * is bf16_pack.h's, so the panels hold the same bits either way.
 */
#ifndef CONVLAB_BF16_GATHER_H
#define CONVLAB_BF16_GATHER_H

#include <stddef.h>
#include <stdint.h>

#include "bf16_pack.h"
#include "im2col_fill.h"

#if CONVLAB_X86
/* For every segment: dst[seg.panel * stride + seg.offset + t] = the pair (src0[seg.src + t],
 * src1[seg.src + t]) rounded to bfloat16; a NULL source gives zeros in its half. `dst` is the
 * pair row of the first panel, `stride` the panel stride, both in 32-bit words. */
__attribute__((target("avx512f,avx512vl,avx512bw"))) static void
convlab_gather_pair_bf16(const float *src0, const float *src1, uint32_t *dst, ptrdiff_t stride,
                         const convlab_segment *seg, ptrdiff_t n)
{
    for (ptrdiff_t s = 0; s < n; s++) {
        const float *a = src0 ? src0 + seg[s].src : NULL;
        const float *b = src1 ? src1 + seg[s].src : NULL;
        uint32_t *d = dst + seg[s].panel * stride + seg[s].offset;
        const ptrdiff_t len = seg[s].len;
        for (ptrdiff_t t = 0; t < len; t += 16) {
            const __mmask16 m = len - t >= 16 ? (__mmask16)0xFFFF
                                              : (__mmask16)((1u << (len - t)) - 1u);
            const __m512i r0 = a ? _mm512_maskz_loadu_epi32(m, a + t) : _mm512_setzero_si512();
            const __m512i r1 = b ? _mm512_maskz_loadu_epi32(m, b + t) : _mm512_setzero_si512();
            _mm512_mask_storeu_epi32(d + t, m, convlab_bf16_pair16(r0, r1));
        }
    }
}
#else
static void convlab_gather_pair_bf16(const float *src0, const float *src1, uint32_t *dst,
                                     ptrdiff_t stride, const convlab_segment *seg, ptrdiff_t n)
{
    /* never called: no bf16 kernel without x86 AVX-512 */
    (void)src0; (void)src1; (void)dst; (void)stride; (void)seg; (void)n;
}
#endif

#endif /* CONVLAB_BF16_GATHER_H */
