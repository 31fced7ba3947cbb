/* The LSTM's time loops in one OpenMP parallel region each: backpropagation through time
 * with the recurrent product and the cell gradient fused per column panel, and the forward
 * loop (at the end) as two passes per step.
 *
 * rnn_cells.h runs each backward step as two parallel loops: the product dgates_next @ W_hh
 * into a B x H buffer, then the cell gradient over it. Here a panel of 16 hidden units
 * computes its part of that product into a small tile and right away the cell gradient of
 * those units, so the buffer and its second pass are gone, and the thread team is started
 * once per sequence and meets once per step (the next step's product reads every unit).
 * (The same fusion of the forward step, with W_hh packed so that a panel holds the four
 * gates of its units, measured slower than rnn_cells.h's two passes: the cell step then reads
 * xg in short pieces of rows, from L3.)
 *
 * Every output element is computed by the same code in the same order whatever the thread
 * count, so 1 and 2 threads give identical results.
 */
#ifndef CONVLAB_LSTM_SEQ_H
#define CONVLAB_LSTM_SEQ_H

#include <stddef.h>
#include <string.h>

#include "rnn_cells.h"

/* hidden units per backward panel */
#define CONVLAB_LSTM_BU 16

/* Backward packing: W_hh (4H x H) itself for dgates @ W_hh, columns (units) 16p .. on,
 * k-major, zero past H: one panel of the GEMM's row-major B packing (pack.h). */
#define CONVLAB_LSTM_PACK_BWD(T, SUF)                                                           \
    static void convlab_lstm_pack_bwd_##SUF(const T *w, ptrdiff_t H, T *P, ptrdiff_t p)         \
    {                                                                                           \
        ptrdiff_t u0 = p * CONVLAB_LSTM_BU;                                                     \
        convlab_pack_b_rows_##SUF(w + u0, H, 0, 4 * H, 4 * H,                                   \
                                  H - u0 < CONVLAB_LSTM_BU ? H - u0 : CONVLAB_LSTM_BU,          \
                                  P + p * 4 * H * CONVLAB_LSTM_BU, CONVLAB_LSTM_BU);            \
    }

CONVLAB_LSTM_PACK_BWD(float, f32)
CONVLAB_LSTM_PACK_BWD(double, f64)

/* tile (rows x NR, rows <= MR) = A (rows x K, row stride lda) @ one packed panel (K x NR):
 * MR x NR accumulators in vector registers; a short block repeats its last row so that the
 * block stays a compile-time MR rows (the repeated rows' results are not read). */
#define CONVLAB_LSTM_TILE(T, VT, MR, NR)                                                        \
    do {                                                                                        \
        enum { VL_ = sizeof(VT) / sizeof(T), NV_ = (NR) / VL_ };                                \
        typedef VT __attribute__((aligned(sizeof(T)))) VU_;                                     \
        VT acc_[MR][NV_];                                                                       \
        for (int i_ = 0; i_ < (MR); i_++)                                                       \
            for (int v_ = 0; v_ < NV_; v_++) acc_[i_][v_] = (VT){0};                            \
        const T *arow_[MR];                                                                     \
        for (int i_ = 0; i_ < (MR); i_++)                                                       \
            arow_[i_] = tile_a + (i_ < tile_rows ? i_ : tile_rows - 1) * tile_lda;              \
        for (ptrdiff_t k_ = 0; k_ < tile_k; k_++) {                                             \
            VT b_[NV_];                                                                         \
            for (int v_ = 0; v_ < NV_; v_++)                                                    \
                b_[v_] = *(const VU_ *)(tile_p + k_ * (NR) + v_ * VL_);                         \
            for (int i_ = 0; i_ < (MR); i_++) {                                                 \
                T a_ = arow_[i_][k_];                                                           \
                for (int v_ = 0; v_ < NV_; v_++) acc_[i_][v_] += a_ * b_[v_];                   \
            }                                                                                   \
        }                                                                                       \
        for (int i_ = 0; i_ < (MR); i_++) memcpy(tile + i_ * (NR), acc_[i_], sizeof(acc_[i_])); \
    } while (0)

/* The cell gradient of unit u (column u0 + u) of row r, h's gradient from the next step in
 * dr[u] (rnn_cells.h's formula, the same bits as convlab_lstm_bwd). */
#define CONVLAB_LSTM_BWD_UNIT(T, TANH) CONVLAB_LSTM_CELL_GRAD(T, TANH, (u0 + u), dr[u])

typedef void (*convlab_lstm_bwd_panel_f32)(const float *, const float *, const float *,
                                           const float *, const float *, const float *,
                                           const float *, const float *, float *, float *,
                                           ptrdiff_t, ptrdiff_t, ptrdiff_t);
typedef void (*convlab_lstm_bwd_panel_f64)(const double *, const double *, const double *,
                                           const double *, const double *, const double *,
                                           const double *, const double *, double *, double *,
                                           ptrdiff_t, ptrdiff_t, ptrdiff_t);

/* One backward panel (units 16p ..) of every row: dgn (B x 4H) the next-processed step's
 * gate gradients, or NULL at the first step processed, whose h gradient from later steps is
 * dhf (B x H); gates (B x 4H), cp / c (B x H) the step's saved gates and cell states, dh the
 * step output's gradient; dc (B x H) holds c's gradient on entry and c_prev's on exit; writes
 * the gate gradients dg (B x 4H) of those units. */
#define CONVLAB_LSTM_BWD_PANEL(NAME, T, VT, MR, TANH, ATTR)                                     \
    ATTR static void NAME(const T *dgn, const T *dhf, const T *P, const T *gates, const T *gn,  \
                          const T *cp, const T *c, const T *dh, T *dc, T *dg, ptrdiff_t B,      \
                          ptrdiff_t H, ptrdiff_t p)                                             \
    {                                                                                           \
        enum { NR = CONVLAB_LSTM_BU };                                                          \
        ptrdiff_t u0 = p * CONVLAB_LSTM_BU;                                                     \
        ptrdiff_t units = H - u0 < CONVLAB_LSTM_BU ? H - u0 : CONVLAB_LSTM_BU;                  \
        T tile[(MR) * NR];                                                                      \
        /* what the cell gradient reads, saved long ago by forward, in pieces of rows that the \
         * hardware prefetcher misses: fetch the next step's gates into L2 while this one runs  \
         * (its cell states and output gradients are the rows just before this step's) */     \
        if (gn)                                                                                 \
            for (ptrdiff_t r = 0; r < B; r++)                                                   \
                for (int q = 0; q < 4; q++) {                                                   \
                    __builtin_prefetch(gn + r * 4 * H + q * H + u0, 0, 2);                      \
                    __builtin_prefetch(gn + r * 4 * H + q * H + u0 + units - 1, 0, 2);          \
                }                                                                               \
        for (ptrdiff_t i0 = 0; i0 < B; i0 += (MR)) {                                            \
            ptrdiff_t tile_rows = B - i0 < (MR) ? B - i0 : (MR), tile_lda = 4 * H;              \
            ptrdiff_t tile_k = 4 * H;                                                           \
            if (dgn) {                                                                          \
                const T *tile_a = dgn + i0 * 4 * H, *tile_p = P + p * 4 * H * NR;               \
                CONVLAB_LSTM_TILE(T, VT, MR, NR);                                               \
            }                                                                                   \
            for (ptrdiff_t i = 0; i < tile_rows; i++) {                                         \
                ptrdiff_t r = i0 + i;                                                           \
                const T *dr = dgn ? tile + i * NR : dhf + r * H + u0;                           \
                const T *g = gates + r * 4 * H, *cq = cp + r * H, *cr = c + r * H;              \
                const T *d1 = dh + r * H;                                                       \
                T *dcr = dc + r * H, *d = dg + r * 4 * H;                                       \
                if (units == CONVLAB_LSTM_BU) {                                                 \
                    _Pragma("omp simd")                                                         \
                    for (ptrdiff_t u = 0; u < CONVLAB_LSTM_BU; u++)                             \
                        CONVLAB_LSTM_BWD_UNIT(T, TANH)                                          \
                } else {                                                                        \
                    for (ptrdiff_t u = 0; u < units; u++) CONVLAB_LSTM_BWD_UNIT(T, TANH)        \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }

/* float64 (the gradient checks' dtype): one portable build */
CONVLAB_LSTM_BWD_PANEL(convlab_lstm_bwd_panel_generic_f64, double, convlab_rnn_v2d, 4,
                       convlab_rnn_tanhd, )
/* float32: baseline, AVX2 + FMA, AVX-512 (row blocks for batches that 6 / 10 do not divide) */
CONVLAB_LSTM_BWD_PANEL(convlab_lstm_bwd_panel_generic_f32, float, convlab_rnn_v4f, 2,
                       convlab_rnn_tanhf, )
#if CONVLAB_RNN_X86
#define CONVLAB_LSTM_AVX2 __attribute__((target("avx2,fma")))
#define CONVLAB_LSTM_AVX512 __attribute__((target("avx512f,avx2,fma")))
CONVLAB_LSTM_BWD_PANEL(convlab_lstm_bwd_panel_avx2_f32, float, convlab_rnn_v8f, 6,
                       convlab_rnn_tanhf, CONVLAB_LSTM_AVX2)
CONVLAB_LSTM_BWD_PANEL(convlab_lstm_bwd_panel_avx512_mr10_f32, float, convlab_rnn_v16f, 10,
                       convlab_rnn_tanhf, CONVLAB_LSTM_AVX512)
CONVLAB_LSTM_BWD_PANEL(convlab_lstm_bwd_panel_avx512_mr8_f32, float, convlab_rnn_v16f, 8,
                       convlab_rnn_tanhf, CONVLAB_LSTM_AVX512)
CONVLAB_LSTM_BWD_PANEL(convlab_lstm_bwd_panel_avx512_mr6_f32, float, convlab_rnn_v16f, 6,
                       convlab_rnn_tanhf, CONVLAB_LSTM_AVX512)
#endif

/* of row blocks a, b, c (a > b > c), the one that repeats the fewest rows for B rows */
static int convlab_lstm_block(ptrdiff_t B, int a, int b, int c)
{
    int wa = (int)((a - B % a) % a), wb = (int)((b - B % b) % b), wc = (int)((c - B % c) % c);
    return wa <= wb && wa <= wc ? a : (wb <= wc ? b : c);
}

static convlab_lstm_bwd_panel_f32 convlab_lstm_bwd_pick_f32(int isa, ptrdiff_t B)
{
#if CONVLAB_RNN_X86
    if (isa == 2) {
        int mr = convlab_lstm_block(B, 10, 8, 6);
        return mr == 10  ? convlab_lstm_bwd_panel_avx512_mr10_f32
               : mr == 8 ? convlab_lstm_bwd_panel_avx512_mr8_f32
                         : convlab_lstm_bwd_panel_avx512_mr6_f32;
    }
    if (isa == 1) return convlab_lstm_bwd_panel_avx2_f32;
#endif
    (void)isa;
    (void)B;
    return convlab_lstm_bwd_panel_generic_f32;
}

static convlab_lstm_bwd_panel_f64 convlab_lstm_bwd_pick_f64(int isa, ptrdiff_t B)
{
    (void)isa;
    (void)B;
    return convlab_lstm_bwd_panel_generic_f64;
}

/* Size of the packed-weight buffer the caller allocates (elements). */
static inline ptrdiff_t convlab_lstm_packed_bwd_size(ptrdiff_t H)
{
    return (H + CONVLAB_LSTM_BU - 1) / CONVLAB_LSTM_BU * 4 * H * CONVLAB_LSTM_BU;
}

/* Whether a time loop splits the batch rows over the threads rather than each step's columns.
 * Batch rows never meet in a recurrence, so with a row split every thread runs the whole loop
 * on its rows with no barrier at all (on a loaded machine each barrier waits for the slowest
 * thread's time slice); but every thread then streams the whole packed weight each step, so
 * the split is taken only while that stays in a core's L2 (1 MiB here: hidden ~250 and below)
 * and the rows make blocks of 4 or more. */
static int convlab_lstm_split_rows(ptrdiff_t B, ptrdiff_t packed_bytes, int threads)
{
    return threads > 1 && B >= 4 * (ptrdiff_t)threads && packed_bytes <= ((ptrdiff_t)1 << 20);
}

/* The backward time loop: grad (steps x B x H: the outputs' gradients),
 * gates / cells as forward saved them, c0, w_hh; dhf (B x H) the final h's gradient, dc the
 * final c's on entry and c0's on exit; writes dg (steps x B x 4H); P a buffer of
 * convlab_lstm_packed_bwd_size(H). reverse walks the steps from last to first. */
#define CONVLAB_LSTM_SEQ(T, SUF)                                                                \
    static void convlab_lstm_seq_bwd_##SUF(int isa, const T *grad, const T *gates,              \
                                           const T *cells, const T *c0, const T *w,             \
                                           const T *dhf, T *dc, T *dg, T *P, ptrdiff_t steps,   \
                                           ptrdiff_t B, ptrdiff_t H, int reverse, int threads)  \
    {                                                                                           \
        convlab_lstm_bwd_panel_##SUF panel = convlab_lstm_bwd_pick_##SUF(isa, B);               \
        ptrdiff_t panels = (H + CONVLAB_LSTM_BU - 1) / CONVLAB_LSTM_BU, BH = B * H;             \
        ptrdiff_t bytes = convlab_lstm_packed_bwd_size(H) * (ptrdiff_t)sizeof(T);               \
        if (convlab_lstm_split_rows(B, bytes, threads)) {                                       \
            _Pragma("omp parallel for schedule(static) num_threads(threads)")                   \
            for (ptrdiff_t p = 0; p < panels; p++) convlab_lstm_pack_bwd_##SUF(w, H, P, p);     \
            _Pragma("omp parallel for schedule(static) num_threads(threads)")                   \
            for (int part = 0; part < threads; part++) {                                        \
                ptrdiff_t r0 = part * B / threads, rows = (part + 1) * B / threads - r0;        \
                convlab_lstm_bwd_panel_##SUF mine = convlab_lstm_bwd_pick_##SUF(isa, rows);     \
                for (ptrdiff_t k = 0; k < steps; k++) {                                         \
                    ptrdiff_t t = reverse ? k : steps - 1 - k;                                  \
                    ptrdiff_t tn = reverse ? t - 1 : t + 1, tp = reverse ? t + 1 : t - 1;       \
                    const T *cp = (k == steps - 1 ? c0 : cells + tp * BH) + r0 * H;             \
                    const T *dgn = k ? dg + tn * 4 * BH + r0 * 4 * H : NULL;                    \
                    const T *gn = k + 1 < steps ? gates + tp * 4 * BH + r0 * 4 * H : NULL;      \
                    for (ptrdiff_t p = 0; p < panels; p++)                                      \
                        mine(dgn, dhf + r0 * H, P, gates + t * 4 * BH + r0 * 4 * H, gn, cp,     \
                             cells + t * BH + r0 * H, grad + t * BH + r0 * H, dc + r0 * H,      \
                             dg + t * 4 * BH + r0 * 4 * H, rows, H, p);                         \
                }                                                                               \
            }                                                                                   \
            return;                                                                             \
        }                                                                                       \
        _Pragma("omp parallel num_threads(threads)")                                            \
        {                                                                                       \
            _Pragma("omp for schedule(static)")                                                 \
            for (ptrdiff_t p = 0; p < panels; p++) convlab_lstm_pack_bwd_##SUF(w, H, P, p);     \
            for (ptrdiff_t k = 0; k < steps; k++) {                                             \
                ptrdiff_t t = reverse ? k : steps - 1 - k;                                      \
                ptrdiff_t tn = reverse ? t - 1 : t + 1, tp = reverse ? t + 1 : t - 1;           \
                const T *cp = k == steps - 1 ? c0 : cells + tp * BH;                            \
                const T *dgn = k ? dg + tn * 4 * BH : NULL;                                     \
                const T *gn = k + 1 < steps ? gates + tp * 4 * BH : NULL;                       \
                _Pragma("omp for schedule(static)")                                             \
                for (ptrdiff_t p = 0; p < panels; p++)                                          \
                    panel(dgn, dhf, P, gates + t * 4 * BH, gn, cp, cells + t * BH,              \
                          grad + t * BH, dc, dg + t * 4 * BH, B, H, p);                         \
            }                                                                                   \
        }                                                                                       \
    }

CONVLAB_LSTM_SEQ(float, f32)
CONVLAB_LSTM_SEQ(double, f64)

/* The LSTM's forward loop as rnn_cells.h's two passes per step -- the product h_prev @ W_hh^T
 * over column panels into hg (B x 4H), then the cell step over row ranges -- but in one
 * thread team for the whole sequence (two barriers per step instead of two team starts).
 * P holds W_hh packed by convlab_rnn_pack (panels of CONVLAB_RNN_NR columns); xg, out,
 * cells, gates as convlab_lstm_seq_bwd's; b the summed bias. Each element is computed by the
 * same code in the same order under either split (columns per step, or rows when
 * convlab_lstm_split_rows says so), so the results are the per-step loops' bit for bit. */
#define CONVLAB_LSTM_SEQ_FWD(T, SUF, CELL)                                                      \
    static void convlab_lstm_seq_fwd_##SUF(int isa, const T *xg, const T *P, const T *b,        \
                                           const T *h0, const T *c0, T *out, T *cells,          \
                                           T *gates, T *hg, ptrdiff_t steps, ptrdiff_t B,       \
                                           ptrdiff_t H, int reverse, int threads)               \
    {                                                                                           \
        ptrdiff_t N = 4 * H, BH = B * H;                                                        \
        ptrdiff_t panels = (N + CONVLAB_RNN_NR - 1) / CONVLAB_RNN_NR;                           \
        ptrdiff_t parts = threads < B ? threads : B;                                            \
        if (parts < 1) parts = 1;                                                               \
        if (convlab_lstm_split_rows(B, panels * H * CONVLAB_RNN_NR * (ptrdiff_t)sizeof(T),      \
                                    threads)) {                                                 \
            _Pragma("omp parallel for schedule(static) num_threads(threads)")                   \
            for (int part = 0; part < threads; part++) {                                        \
                ptrdiff_t r0 = part * B / threads, r1 = (part + 1) * B / threads;               \
                for (ptrdiff_t k = 0; k < steps; k++) {                                         \
                    ptrdiff_t t = reverse ? steps - 1 - k : k, tp = reverse ? t + 1 : t - 1;    \
                    const T *hp = k ? out + tp * BH : h0, *cp = k ? cells + tp * BH : c0;       \
                    convlab_rnn_gemm_##SUF(isa, hp + r0 * H, H, r1 - r0, H, P, N, hg + r0 * N,  \
                                           N, 0, panels);                                       \
                    CELL(isa, xg + t * 4 * BH, hg, b, cp, out + t * BH, cells + t * BH,         \
                         gates + t * 4 * BH, H, r0, r1);                                        \
                }                                                                               \
            }                                                                                   \
            return;                                                                             \
        }                                                                                       \
        _Pragma("omp parallel num_threads(threads)")                                            \
        for (ptrdiff_t k = 0; k < steps; k++) {                                                 \
            ptrdiff_t t = reverse ? steps - 1 - k : k, tp = reverse ? t + 1 : t - 1;            \
            const T *hp = k ? out + tp * BH : h0, *cp = k ? cells + tp * BH : c0;               \
            _Pragma("omp for schedule(static)")                                                 \
            for (ptrdiff_t p = 0; p < panels; p++)                                              \
                convlab_rnn_gemm_##SUF(isa, hp, H, B, H, P, N, hg, N, p, p + 1);                \
            _Pragma("omp for schedule(static)")                                                 \
            for (ptrdiff_t part = 0; part < parts; part++)                                      \
                CELL(isa, xg + t * 4 * BH, hg, b, cp, out + t * BH, cells + t * BH,             \
                     gates + t * 4 * BH, H, part * B / parts, (part + 1) * B / parts);          \
        }                                                                                       \
    }

#define CONVLAB_LSTM_CELL_F64(isa, ...) convlab_lstm_fwd_f64(__VA_ARGS__)
CONVLAB_LSTM_SEQ_FWD(float, f32, convlab_lstm_fwd_isa_f32)
CONVLAB_LSTM_SEQ_FWD(double, f64, CONVLAB_LSTM_CELL_F64)

#endif
