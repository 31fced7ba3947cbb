/* Recurrent layers: the fused element-wise cell steps (LSTM, GRU, Elman RNN; forward and
 * backward) and the small matrix product of each time step against a weight packed once.
 *
 * Cell steps work on row ranges [r0, r1) of B x (gates * H) pre-activation blocks laid out as
 * PyTorch's (LSTM i, f, g, o; GRU r, z, n): the caller splits the batch rows over threads.
 * Every loop runs over the H columns of one row with unit stride; the float32 activations use
 * the branch-free exp below so that the compiler vectorises them (libm's expf is a call per
 * element), float64 uses libm (its callers are the gradient checks, not the fast path).
 *
 * The recurrent product h_{t-1} (B x K) @ W (K x N) has few rows (the batch) and the same W at
 * every step, so W is packed once per sequence into column panels of RNN_NR columns (k-major,
 * zero-padded), and each step computes C = A @ P panel by panel, a few rows of C at a time held
 * in vector registers (AVX-512, AVX2 + FMA and baseline builds of the same code through GCC
 * vector extensions; the caller passes convlab's micro-kernel ISA).
 */
#ifndef CONVLAB_RNN_CELLS_H
#define CONVLAB_RNN_CELLS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pack.h"

/* ---------------------------------------------------------------- activations */
/* exp for float32 in [-87, 88] (clamped: sigmoid / tanh saturate there anyway): round
 * x / ln 2 to n with the 1.5 * 2^23 trick, reduce with a two-part ln 2, a degree-6
 * polynomial on the remainder, and scale by 2^n through the exponent bits. Relative error
 * below 1e-7 (measured over the range); no branches, no calls: it vectorises. */
static inline float convlab_rnn_expf(float x)
{
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } scale;
    scale.i = ((int32_t)n + 127) << 23;
    return p * scale.f;
}

static inline float convlab_rnn_sigmoidf(float x) { return 1.0f / (1.0f + convlab_rnn_expf(-x)); }

/* tanh: an odd polynomial near 0 (where 1 - 2 / (e^2x + 1) would cancel), the exp form
 * elsewhere; both computed and one selected, so the loop stays branch-free. */
static inline float convlab_rnn_tanhf(float x)
{
    float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z + -5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z + -3.33332819422e-1f;
    float small = p * z * x + x;
    float big = 1.0f - 2.0f / (convlab_rnn_expf(2.0f * x) + 1.0f);
    return (x < 0.625f && x > -0.625f) ? small : big;
}

static inline double convlab_rnn_sigmoidd(double x) { return 1.0 / (1.0 + exp(-x)); }
static inline double convlab_rnn_tanhd(double x) { return tanh(x); }

/* ---------------------------------------------------------------- cell steps */
/* The LSTM cell gradient of column j of one row: g the row's gates (i, f, g, o), cq / cr its
 * previous and current cell state, d1[j] + DHR h's gradient, dcr c's gradient (c_prev's on
 * exit), d the gates' gradients. One copy for the per-step kernel below and the fused BPTT
 * panels of lstm_seq.h, so both give the same bits. */
#define CONVLAB_LSTM_CELL_GRAD(T, TANH, j, DHR)                                                 \
    {                                                                                           \
        T gi = g[j], gf = g[H + j], gg = g[2 * H + j], go = g[3 * H + j];                       \
        T dht = d1[j] + (DHR);                                                                  \
        T tc = TANH(cr[j]);                                                                     \
        T dct = dcr[j] + dht * go * (1 - tc * tc);                                              \
        d[j] = dct * gg * gi * (1 - gi);                                                        \
        d[H + j] = dct * cq[j] * gf * (1 - gf);                                                 \
        d[2 * H + j] = dct * gi * (1 - gg * gg);                                                \
        d[3 * H + j] = dht * tc * go * (1 - go);                                                \
        dcr[j] = dct * gf;                                                                      \
    }

#define CONVLAB_RNN_CELLS(T, SUF, SIG, TANH, ATTR)                                              \
    /* LSTM: pre = xg + hg + b (b = b_ih + b_hh); c = f c_prev + i g; h = o tanh(c) */          \
    ATTR static void convlab_lstm_fwd_##SUF(const T *xg, const T *hg, const T *b, const T *cp,  \
                                       T *h, T *c, T *gates, ptrdiff_t H, ptrdiff_t r0,         \
                                       ptrdiff_t r1)                                            \
    {                                                                                           \
        for (ptrdiff_t r = r0; r < r1; r++) {                                                   \
            const T *x = xg + r * 4 * H, *y = hg + r * 4 * H, *cq = cp + r * H;                 \
            T *g = gates + r * 4 * H, *hr = h + r * H, *cr = c + r * H;                         \
            _Pragma("omp simd")                                                                 \
            for (ptrdiff_t j = 0; j < H; j++) {                                                 \
                T gi = SIG(x[j] + y[j] + b[j]);                                                 \
                T gf = SIG(x[H + j] + y[H + j] + b[H + j]);                                     \
                T gg = TANH(x[2 * H + j] + y[2 * H + j] + b[2 * H + j]);                        \
                T go = SIG(x[3 * H + j] + y[3 * H + j] + b[3 * H + j]);                         \
                T cv = gf * cq[j] + gi * gg;                                                    \
                cr[j] = cv;                                                                     \
                hr[j] = go * TANH(cv);                                                          \
                g[j] = gi;                                                                      \
                g[H + j] = gf;                                                                  \
                g[2 * H + j] = gg;                                                              \
                g[3 * H + j] = go;                                                              \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
    /* LSTM gradient: dh + dhr is h's gradient, dc holds c's on entry and c_prev's on exit */   \
    ATTR static void convlab_lstm_bwd_##SUF(const T *gates, const T *cp, const T *c, const T *dh, \
                                       const T *dhr, T *dc, T *dg, ptrdiff_t H, ptrdiff_t r0,   \
                                       ptrdiff_t r1)                                            \
    {                                                                                           \
        for (ptrdiff_t r = r0; r < r1; r++) {                                                   \
            const T *g = gates + r * 4 * H, *cq = cp + r * H, *cr = c + r * H;                  \
            const T *d1 = dh + r * H, *d2 = dhr + r * H;                                        \
            T *dcr = dc + r * H, *d = dg + r * 4 * H;                                           \
            _Pragma("omp simd")                                                                 \
            for (ptrdiff_t j = 0; j < H; j++) CONVLAB_LSTM_CELL_GRAD(T, TANH, j, d2[j])         \
        }                                                                                       \
    }                                                                                           \
    /* GRU: a = xg + b_ih, b = hg + b_hh; r, z = sig(a + b); n = tanh(a_n + r b_n);             \
     * h = (1 - z) n + z h_prev; saved = (r, z, n, b_n) */                                      \
    ATTR static void convlab_gru_fwd_##SUF(const T *xg, const T *hg, const T *bi, const T *bh,  \
                                      const T *hp, T *h, T *saved, ptrdiff_t H, ptrdiff_t r0,   \
                                      ptrdiff_t r1)                                             \
    {                                                                                           \
        for (ptrdiff_t r = r0; r < r1; r++) {                                                   \
            const T *x = xg + r * 3 * H, *y = hg + r * 3 * H, *hq = hp + r * H;                 \
            T *s = saved + r * 4 * H, *hr = h + r * H;                                          \
            _Pragma("omp simd")                                                                 \
            for (ptrdiff_t j = 0; j < H; j++) {                                                 \
                T gr = SIG(x[j] + bi[j] + y[j] + bh[j]);                                        \
                T gz = SIG(x[H + j] + bi[H + j] + y[H + j] + bh[H + j]);                        \
                T bn = y[2 * H + j] + bh[2 * H + j];                                            \
                T gn = TANH(x[2 * H + j] + bi[2 * H + j] + gr * bn);                            \
                hr[j] = (1 - gz) * gn + gz * hq[j];                                             \
                s[j] = gr;                                                                      \
                s[H + j] = gz;                                                                  \
                s[2 * H + j] = gn;                                                              \
                s[3 * H + j] = bn;                                                              \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
    /* GRU gradient: dh + dhr + carry is h's gradient; carry becomes z * that (h_prev's         \
     * direct part); dxg / dhg are the gradients of xg and hg (n block: dhg = dxg * r) */       \
    ATTR static void convlab_gru_bwd_##SUF(const T *saved, const T *hp, const T *dh, const T *dhr, \
                                      T *carry, T *dxg, T *dhg, ptrdiff_t H, ptrdiff_t r0,      \
                                      ptrdiff_t r1)                                             \
    {                                                                                           \
        for (ptrdiff_t r = r0; r < r1; r++) {                                                   \
            const T *s = saved + r * 4 * H, *hq = hp + r * H;                                   \
            const T *d1 = dh + r * H, *d2 = dhr + r * H;                                        \
            T *cr = carry + r * H, *dx = dxg + r * 3 * H, *dy = dhg + r * 3 * H;                \
            _Pragma("omp simd")                                                                 \
            for (ptrdiff_t j = 0; j < H; j++) {                                                 \
                T gr = s[j], gz = s[H + j], gn = s[2 * H + j], bn = s[3 * H + j];               \
                T dht = d1[j] + d2[j] + cr[j];                                                  \
                T dn = dht * (1 - gz) * (1 - gn * gn);                                          \
                T dz = dht * (hq[j] - gn) * gz * (1 - gz);                                      \
                T dr = dn * bn * gr * (1 - gr);                                                 \
                dx[j] = dr;                                                                     \
                dy[j] = dr;                                                                     \
                dx[H + j] = dz;                                                                 \
                dy[H + j] = dz;                                                                 \
                dx[2 * H + j] = dn;                                                             \
                dy[2 * H + j] = dn * gr;                                                        \
                cr[j] = dht * gz;                                                               \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
    /* Elman: h = tanh(xg + hg + b) or relu */                                                  \
    ATTR static void convlab_rnn_fwd_##SUF(const T *xg, const T *hg, const T *b, T *h, int relu, \
                                      ptrdiff_t H, ptrdiff_t r0, ptrdiff_t r1)                  \
    {                                                                                           \
        for (ptrdiff_t r = r0; r < r1; r++) {                                                   \
            const T *x = xg + r * H, *y = hg + r * H;                                           \
            T *hr = h + r * H;                                                                  \
            if (relu) {                                                                         \
                _Pragma("omp simd")                                                             \
                for (ptrdiff_t j = 0; j < H; j++) {                                             \
                    T v = x[j] + y[j] + b[j];                                                   \
                    hr[j] = v > 0 ? v : 0;                                                      \
                }                                                                               \
            } else {                                                                            \
                _Pragma("omp simd")                                                             \
                for (ptrdiff_t j = 0; j < H; j++) hr[j] = TANH(x[j] + y[j] + b[j]);             \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
    ATTR static void convlab_rnn_bwd_##SUF(const T *h, const T *dh, const T *dhr, T *dpre,        \
                                           int relu,                                            \
                                      ptrdiff_t H, ptrdiff_t r0, ptrdiff_t r1)                  \
    {                                                                                           \
        for (ptrdiff_t r = r0; r < r1; r++) {                                                   \
            const T *hr = h + r * H, *d1 = dh + r * H, *d2 = dhr + r * H;                       \
            T *dp = dpre + r * H;                                                               \
            _Pragma("omp simd")                                                                 \
            for (ptrdiff_t j = 0; j < H; j++) {                                                 \
                T slope = relu ? (T)(hr[j] > 0) : 1 - hr[j] * hr[j];                            \
                dp[j] = (d1[j] + d2[j]) * slope;                                                \
            }                                                                                   \
        }                                                                                       \
    }

/* float32 cells for each instruction set (the vector width is the whole speed-up: the
 * activations are pure arithmetic); float64 only for the baseline (libm calls). */
CONVLAB_RNN_CELLS(float, f32, convlab_rnn_sigmoidf, convlab_rnn_tanhf, )
CONVLAB_RNN_CELLS(double, f64, convlab_rnn_sigmoidd, convlab_rnn_tanhd, )
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
CONVLAB_RNN_CELLS(float, avx2_f32, convlab_rnn_sigmoidf, convlab_rnn_tanhf,
                  __attribute__((target("avx2,fma"))))
CONVLAB_RNN_CELLS(float, avx512_f32, convlab_rnn_sigmoidf, convlab_rnn_tanhf,
                  __attribute__((target("avx512f,avx2,fma"))))
#else
#define convlab_lstm_fwd_avx2_f32 convlab_lstm_fwd_f32
#define convlab_lstm_bwd_avx2_f32 convlab_lstm_bwd_f32
#define convlab_gru_fwd_avx2_f32 convlab_gru_fwd_f32
#define convlab_gru_bwd_avx2_f32 convlab_gru_bwd_f32
#define convlab_rnn_fwd_avx2_f32 convlab_rnn_fwd_f32
#define convlab_rnn_bwd_avx2_f32 convlab_rnn_bwd_f32
#define convlab_lstm_fwd_avx512_f32 convlab_lstm_fwd_f32
#define convlab_lstm_bwd_avx512_f32 convlab_lstm_bwd_f32
#define convlab_gru_fwd_avx512_f32 convlab_gru_fwd_f32
#define convlab_gru_bwd_avx512_f32 convlab_gru_bwd_f32
#define convlab_rnn_fwd_avx512_f32 convlab_rnn_fwd_f32
#define convlab_rnn_bwd_avx512_f32 convlab_rnn_bwd_f32
#endif

/* The float32 cell steps for ``isa`` (0 baseline, 1 AVX2 + FMA, 2 AVX-512). */
#define CONVLAB_RNN_CELL_DISPATCH(NAME, PARAMS, ARGS)                                           \
    static void convlab_##NAME##_isa_f32 PARAMS                                                 \
    {                                                                                           \
        if (isa == 2)                                                                           \
            convlab_##NAME##_avx512_f32 ARGS;                                                   \
        else if (isa == 1)                                                                      \
            convlab_##NAME##_avx2_f32 ARGS;                                                     \
        else                                                                                    \
            convlab_##NAME##_f32 ARGS;                                                          \
    }

CONVLAB_RNN_CELL_DISPATCH(lstm_fwd,
                          (int isa, const float *xg, const float *hg, const float *b,
                           const float *cp, float *h, float *c, float *gates, ptrdiff_t H,
                           ptrdiff_t r0, ptrdiff_t r1),
                          (xg, hg, b, cp, h, c, gates, H, r0, r1))
CONVLAB_RNN_CELL_DISPATCH(lstm_bwd,
                          (int isa, const float *gates, const float *cp, const float *c,
                           const float *dh, const float *dhr, float *dc, float *dg, ptrdiff_t H,
                           ptrdiff_t r0, ptrdiff_t r1),
                          (gates, cp, c, dh, dhr, dc, dg, H, r0, r1))
CONVLAB_RNN_CELL_DISPATCH(gru_fwd,
                          (int isa, const float *xg, const float *hg, const float *bi,
                           const float *bh, const float *hp, float *h, float *saved,
                           ptrdiff_t H, ptrdiff_t r0, ptrdiff_t r1),
                          (xg, hg, bi, bh, hp, h, saved, H, r0, r1))
CONVLAB_RNN_CELL_DISPATCH(gru_bwd,
                          (int isa, const float *saved, const float *hp, const float *dh,
                           const float *dhr, float *carry, float *dxg, float *dhg, ptrdiff_t H,
                           ptrdiff_t r0, ptrdiff_t r1),
                          (saved, hp, dh, dhr, carry, dxg, dhg, H, r0, r1))
CONVLAB_RNN_CELL_DISPATCH(rnn_fwd,
                          (int isa, const float *xg, const float *hg, const float *b, float *h,
                           int relu, ptrdiff_t H, ptrdiff_t r0, ptrdiff_t r1),
                          (xg, hg, b, h, relu, H, r0, r1))
CONVLAB_RNN_CELL_DISPATCH(rnn_bwd,
                          (int isa, const float *h, const float *dh, const float *dhr,
                           float *dpre, int relu, ptrdiff_t H, ptrdiff_t r0, ptrdiff_t r1),
                          (h, dh, dhr, dpre, relu, H, r0, r1))

/* ---------------------------------------------------------------- recurrent product */
/* Columns per packed panel (each ISA's kernel holds MR rows x NR columns of C in registers:
 * MR is chosen per vector width so that the accumulators and one row of P fit). */
#define CONVLAB_RNN_NR 32

/* Pack W (N x K as element (n, k) at w[n * rs + k * cs]) into ceil(N / NR) panels, panel p
 * holding W[p*NR .. p*NR+NR)[k] for each k, k-major: P[(p * K + k) * NR + l]; columns past N
 * are zero. (rs, cs) is (K, 1) -- the product is then A @ W^T, the forward's h @ W_hh^T -- or
 * (1, N), A @ W for a K x N row-major W (the backward's dgates @ W_hh). Both are the GEMM's
 * packings (pack.h): W's rows as a row-major A's, or runs of a row-major B's rows. */
#define CONVLAB_RNN_PACK(T, SUF)                                                                \
    static void convlab_rnn_pack_##SUF(const T *w, ptrdiff_t N, ptrdiff_t K, ptrdiff_t rs,      \
                                       ptrdiff_t cs, T *P, ptrdiff_t p0, ptrdiff_t p1)          \
    {                                                                                           \
        for (ptrdiff_t p = p0; p < p1; p++) {                                                   \
            T *dst = P + p * K * CONVLAB_RNN_NR;                                                \
            ptrdiff_t n0 = p * CONVLAB_RNN_NR;                                                  \
            ptrdiff_t width = N - n0 < CONVLAB_RNN_NR ? N - n0 : CONVLAB_RNN_NR;                \
            if (cs == 1)                                                                        \
                convlab_pack_a_rows_##SUF(w + n0 * rs, rs, width, K, dst, CONVLAB_RNN_NR);      \
            else                                                                                \
                convlab_pack_b_rows_##SUF(w + n0, cs, 0, K, K, width, dst, CONVLAB_RNN_NR);     \
        }                                                                                       \
    }

CONVLAB_RNN_PACK(float, f32)
CONVLAB_RNN_PACK(double, f64)

/* acc[i][0:NVX] += A's row block x the first NVX vectors of panel pp, over the depth K */
#define CONVLAB_RNN_PANEL_LOOP(T, VT, VU, VL, MR, NVX)                                          \
    for (ptrdiff_t k = 0; k < K; k++) {                                                         \
        VT b[NVX];                                                                              \
        for (int v = 0; v < (NVX); v++)                                                         \
            b[v] = *(const VU *)(pp + k * CONVLAB_RNN_NR + v * (VL));                           \
        for (int i = 0; i < (MR); i++) {                                                        \
            T a = arow[i][k];                                                                   \
            for (int v = 0; v < (NVX); v++) acc[i][v] += a * b[v];                              \
        }                                                                                       \
    }

/* C[rows, panel p] = A[rows, :] @ P[:, panel p] for panels [p0, p1): MR rows at a time, each
 * row's NR accumulators a few vectors of VT. A is (M x K) with row stride lda, C (M x N) with
 * row stride ldc. */
#define CONVLAB_RNN_GEMM(NAME, T, VT, MR, ATTR)                                                 \
    ATTR static void NAME(const T *A, ptrdiff_t lda, ptrdiff_t M, ptrdiff_t K, const T *P,      \
                          ptrdiff_t N, T *C, ptrdiff_t ldc, ptrdiff_t p0, ptrdiff_t p1)         \
    {                                                                                           \
        enum { VL = sizeof(VT) / sizeof(T), NV = CONVLAB_RNN_NR / VL };                         \
        typedef VT __attribute__((aligned(sizeof(T)))) VU;                                      \
        for (ptrdiff_t p = p0; p < p1; p++) {                                                   \
            const T *pp = P + p * K * CONVLAB_RNN_NR;                                           \
            ptrdiff_t n0 = p * CONVLAB_RNN_NR;                                                  \
            ptrdiff_t width = N - n0 < CONVLAB_RNN_NR ? N - n0 : CONVLAB_RNN_NR;                \
            for (ptrdiff_t i0 = 0; i0 < M; i0 += MR) {                                          \
                ptrdiff_t rows = M - i0 < MR ? M - i0 : MR;                                     \
                VT acc[MR][NV];                                                                 \
                for (int i = 0; i < MR; i++)                                                    \
                    for (int v = 0; v < NV; v++) acc[i][v] = (VT){0};                           \
                /* a short last block repeats its last row (results dropped): the block         \
                 * stays a compile-time MR rows held in registers */                            \
                const T *arow[MR];                                                              \
                for (int i = 0; i < MR; i++)                                                    \
                    arow[i] = A + (i0 + (i < rows ? i : rows - 1)) * lda;                       \
                /* a panel at most half full (N just past a multiple of NR) takes half the     \
                 * multiply-adds; the acc vectors it leaves at zero are never stored */         \
                if (NV > 1 && 2 * width <= CONVLAB_RNN_NR)                                      \
                    CONVLAB_RNN_PANEL_LOOP(T, VT, VU, VL, MR, NV / 2)                           \
                else                                                                            \
                    CONVLAB_RNN_PANEL_LOOP(T, VT, VU, VL, MR, NV)                               \
                /* through a tile written at constant indices: acc stays in registers */        \
                T tile[MR][CONVLAB_RNN_NR];                                                     \
                for (int i = 0; i < MR; i++) memcpy(tile[i], acc[i], sizeof(tile[i]));          \
                if (width == CONVLAB_RNN_NR) /* a copy of constant size: inlined */          \
                    for (int i = 0; i < rows; i++)                                              \
                        memcpy(C + (i0 + i) * ldc + n0, tile[i], sizeof(tile[i]));              \
                else                                                                            \
                    for (int i = 0; i < rows; i++)                                              \
                        memcpy(C + (i0 + i) * ldc + n0, tile[i], (size_t)width * sizeof(T));    \
            }                                                                                   \
        }                                                                                       \
    }

typedef float convlab_rnn_v4f __attribute__((vector_size(16)));
typedef float convlab_rnn_v8f __attribute__((vector_size(32)));
typedef float convlab_rnn_v16f __attribute__((vector_size(64)));
typedef double convlab_rnn_v2d __attribute__((vector_size(16)));
typedef double convlab_rnn_v4d __attribute__((vector_size(32)));
typedef double convlab_rnn_v8d __attribute__((vector_size(64)));

CONVLAB_RNN_GEMM(convlab_rnn_gemm_generic_f32, float, convlab_rnn_v4f, 1, )
CONVLAB_RNN_GEMM(convlab_rnn_gemm_generic_f64, double, convlab_rnn_v2d, 1, )
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define CONVLAB_RNN_X86 1
CONVLAB_RNN_GEMM(convlab_rnn_gemm_avx2_f32, float, convlab_rnn_v8f, 3,
                 __attribute__((target("avx2,fma"))))
CONVLAB_RNN_GEMM(convlab_rnn_gemm_avx2_f64, double, convlab_rnn_v4d, 1,
                 __attribute__((target("avx2,fma"))))
CONVLAB_RNN_GEMM(convlab_rnn_gemm_avx512_f32, float, convlab_rnn_v16f, 6,
                 __attribute__((target("avx512f,avx2,fma"))))
CONVLAB_RNN_GEMM(convlab_rnn_gemm_avx512_mr10_f32, float, convlab_rnn_v16f, 10,
                 __attribute__((target("avx512f,avx2,fma"))))
/* 5- and 4-row blocks, for batches that 6 does not divide (20 = 4 x 5: no repeated rows) */
CONVLAB_RNN_GEMM(convlab_rnn_gemm_avx512_mr5_f32, float, convlab_rnn_v16f, 5,
                 __attribute__((target("avx512f,avx2,fma"))))
CONVLAB_RNN_GEMM(convlab_rnn_gemm_avx512_mr4_f32, float, convlab_rnn_v16f, 4,
                 __attribute__((target("avx512f,avx2,fma"))))
CONVLAB_RNN_GEMM(convlab_rnn_gemm_avx512_f64, double, convlab_rnn_v8d, 6,
                 __attribute__((target("avx512f,avx2,fma"))))
#else
#define CONVLAB_RNN_X86 0
#endif

/* AVX-512 float32: 10-row blocks where 10 divides M (each pass over a weight panel serves
 * more rows: the panel streams from L2 half as often as with 5), else the row block (6, 5 or
 * 4) that repeats the fewest rows. */
static void convlab_rnn_gemm_avx512_rows_f32(const float *A, ptrdiff_t lda, ptrdiff_t M,
                                             ptrdiff_t K, const float *P, ptrdiff_t N, float *C,
                                             ptrdiff_t ldc, ptrdiff_t p0, ptrdiff_t p1)
{
    ptrdiff_t waste6 = (6 - M % 6) % 6, waste5 = (5 - M % 5) % 5, waste4 = (4 - M % 4) % 4;
    if (M % 10 == 0)
        convlab_rnn_gemm_avx512_mr10_f32(A, lda, M, K, P, N, C, ldc, p0, p1);
    else if (waste6 <= waste5 && waste6 <= waste4)
        convlab_rnn_gemm_avx512_f32(A, lda, M, K, P, N, C, ldc, p0, p1);
    else if (waste5 <= waste4)
        convlab_rnn_gemm_avx512_mr5_f32(A, lda, M, K, P, N, C, ldc, p0, p1);
    else
        convlab_rnn_gemm_avx512_mr4_f32(A, lda, M, K, P, N, C, ldc, p0, p1);
}
#define convlab_rnn_gemm_avx512_rows_f64 convlab_rnn_gemm_avx512_f64

/* isa: 0 generic, 1 AVX2 + FMA, 2 AVX-512 (the caller passes what this CPU supports). */
#define CONVLAB_RNN_DISPATCH(T, SUF)                                                            \
    static void convlab_rnn_gemm_##SUF(int isa, const T *A, ptrdiff_t lda, ptrdiff_t M,         \
                                       ptrdiff_t K, const T *P, ptrdiff_t N, T *C,              \
                                       ptrdiff_t ldc, ptrdiff_t p0, ptrdiff_t p1)               \
    {                                                                                           \
        if (CONVLAB_RNN_X86 && isa == 2)                                                        \
            convlab_rnn_gemm_avx512_rows_##SUF(A, lda, M, K, P, N, C, ldc, p0, p1);             \
        else if (CONVLAB_RNN_X86 && isa == 1)                                                   \
            convlab_rnn_gemm_avx2_##SUF(A, lda, M, K, P, N, C, ldc, p0, p1);                    \
        else                                                                                    \
            convlab_rnn_gemm_generic_##SUF(A, lda, M, K, P, N, C, ldc, p0, p1);                 \
    }

#if !(defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)))
#define convlab_rnn_gemm_avx512_f32 convlab_rnn_gemm_generic_f32
#define convlab_rnn_gemm_avx512_mr5_f32 convlab_rnn_gemm_generic_f32
#define convlab_rnn_gemm_avx512_mr4_f32 convlab_rnn_gemm_generic_f32
#define convlab_rnn_gemm_avx2_f32 convlab_rnn_gemm_generic_f32
#define convlab_rnn_gemm_avx512_f64 convlab_rnn_gemm_generic_f64
#define convlab_rnn_gemm_avx2_f64 convlab_rnn_gemm_generic_f64
#endif

CONVLAB_RNN_DISPATCH(float, f32)
CONVLAB_RNN_DISPATCH(double, f64)

#endif
