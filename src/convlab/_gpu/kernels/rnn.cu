// Recurrent cell steps: one thread per (row, hidden unit) of a B x H step, each thread doing
// its unit's whole gate arithmetic (bias adds, sigmoid / tanh, state update) or its gradient
// in registers -- one pass over the step's gate blocks, laid out as PyTorch's (LSTM i, f, g, o;
// GRU r, z, n; each H columns of a row of G*H). The step's matrix products are the GEMM
// kernel's (gemm.cu). Biases are never null: the caller passes zeros for a layer without.
// (Every source here compiles without host headers: CuPy builds them with NVRTC.)
#define GRID_LOOP(i, total)                                                                   \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (total);         \
         i += (long long)gridDim.x * blockDim.x)

template <typename T> __device__ __forceinline__ T rnn_sigmoid(T x)
{
    return T(1) / (T(1) + exp(-x));
}

#define RNN_CELLS(SUF, T)                                                                     \
    /* LSTM: pre = xg + hg + b; c = f c_prev + i g; h = o tanh(c); gates = (i, f, g, o) */   \
    extern "C" __global__ void lstm_cell_forward_f##SUF(                                      \
        const T *xg, const T *hg, const T *b, const T *cp, T *h, T *c, T *gates,             \
        long long rows, long long H)                                                          \
    {                                                                                         \
        GRID_LOOP(e, rows * H) {                                                              \
            const long long r = e / H, j = e - r * H, g0 = r * 4 * H + j;                     \
            const T gi = rnn_sigmoid<T>(xg[g0] + hg[g0] + b[j]);                              \
            const T gf = rnn_sigmoid<T>(xg[g0 + H] + hg[g0 + H] + b[H + j]);                  \
            const T gg = tanh(xg[g0 + 2 * H] + hg[g0 + 2 * H] + b[2 * H + j]);                \
            const T go = rnn_sigmoid<T>(xg[g0 + 3 * H] + hg[g0 + 3 * H] + b[3 * H + j]);      \
            const T cv = gf * cp[e] + gi * gg;                                                \
            c[e] = cv;                                                                        \
            h[e] = go * tanh(cv);                                                             \
            gates[g0] = gi;                                                                   \
            gates[g0 + H] = gf;                                                               \
            gates[g0 + 2 * H] = gg;                                                           \
            gates[g0 + 3 * H] = go;                                                           \
        }                                                                                     \
    }                                                                                         \
    /* LSTM gradient: dh + dhr is h's; dc holds c's on entry, c_prev's on exit */            \
    extern "C" __global__ void lstm_cell_backward_f##SUF(                                     \
        const T *gates, const T *cp, const T *c, const T *dh, const T *dhr, T *dc, T *dg,    \
        long long rows, long long H)                                                          \
    {                                                                                         \
        GRID_LOOP(e, rows * H) {                                                              \
            const long long r = e / H, j = e - r * H, g0 = r * 4 * H + j;                     \
            const T gi = gates[g0], gf = gates[g0 + H];                                       \
            const T gg = gates[g0 + 2 * H], go = gates[g0 + 3 * H];                           \
            const T dht = dh[e] + dhr[e];                                                     \
            const T tc = tanh(c[e]);                                                          \
            const T dct = dc[e] + dht * go * (T(1) - tc * tc);                                \
            dg[g0] = dct * gg * gi * (T(1) - gi);                                             \
            dg[g0 + H] = dct * cp[e] * gf * (T(1) - gf);                                      \
            dg[g0 + 2 * H] = dct * gi * (T(1) - gg * gg);                                     \
            dg[g0 + 3 * H] = dht * tc * go * (T(1) - go);                                     \
            dc[e] = dct * gf;                                                                 \
        }                                                                                     \
    }                                                                                         \
    /* GRU: r, z = sig(xg + b_ih + hg + b_hh); n = tanh(xg_n + b_in + r (hg_n + b_hn));      \
     * h = (1 - z) n + z h_prev; saved = (r, z, n, hg_n + b_hn) */                            \
    extern "C" __global__ void gru_cell_forward_f##SUF(                                       \
        const T *xg, const T *hg, const T *bi, const T *bh, const T *hp, T *h, T *saved,     \
        long long rows, long long H)                                                          \
    {                                                                                         \
        GRID_LOOP(e, rows * H) {                                                              \
            const long long r = e / H, j = e - r * H, g0 = r * 3 * H + j, s0 = r * 4 * H + j; \
            const T gr = rnn_sigmoid<T>(xg[g0] + bi[j] + hg[g0] + bh[j]);                     \
            const T gz = rnn_sigmoid<T>(xg[g0 + H] + bi[H + j] + hg[g0 + H] + bh[H + j]);     \
            const T bn = hg[g0 + 2 * H] + bh[2 * H + j];                                      \
            const T gn = tanh(xg[g0 + 2 * H] + bi[2 * H + j] + gr * bn);                      \
            h[e] = (T(1) - gz) * gn + gz * hp[e];                                             \
            saved[s0] = gr;                                                                   \
            saved[s0 + H] = gz;                                                               \
            saved[s0 + 2 * H] = gn;                                                           \
            saved[s0 + 3 * H] = bn;                                                           \
        }                                                                                     \
    }                                                                                         \
    /* GRU gradient: dh + dhr + carry is h's; carry becomes z times that */                  \
    extern "C" __global__ void gru_cell_backward_f##SUF(                                      \
        const T *saved, const T *hp, const T *dh, const T *dhr, T *carry, T *dxg, T *dhg,    \
        long long rows, long long H)                                                          \
    {                                                                                         \
        GRID_LOOP(e, rows * H) {                                                              \
            const long long r = e / H, j = e - r * H, g0 = r * 3 * H + j, s0 = r * 4 * H + j; \
            const T gr = saved[s0], gz = saved[s0 + H];                                       \
            const T gn = saved[s0 + 2 * H], bn = saved[s0 + 3 * H];                           \
            const T dht = dh[e] + dhr[e] + carry[e];                                          \
            const T dn = dht * (T(1) - gz) * (T(1) - gn * gn);                                \
            const T dz = dht * (hp[e] - gn) * gz * (T(1) - gz);                               \
            const T dr = dn * bn * gr * (T(1) - gr);                                          \
            dxg[g0] = dr;                                                                     \
            dhg[g0] = dr;                                                                     \
            dxg[g0 + H] = dz;                                                                 \
            dhg[g0 + H] = dz;                                                                 \
            dxg[g0 + 2 * H] = dn;                                                             \
            dhg[g0 + 2 * H] = dn * gr;                                                        \
            carry[e] = dht * gz;                                                              \
        }                                                                                     \
    }                                                                                         \
    /* Elman: h = tanh(xg + hg + b), or ReLU */                                               \
    extern "C" __global__ void rnn_cell_forward_f##SUF(const T *xg, const T *hg, const T *b, \
                                                       T *h, int relu, long long rows,        \
                                                       long long H)                           \
    {                                                                                         \
        GRID_LOOP(e, rows * H) {                                                              \
            const T v = xg[e] + hg[e] + b[e % H];                                             \
            h[e] = relu ? (v > T(0) ? v : T(0)) : tanh(v);                                    \
        }                                                                                     \
    }                                                                                         \
    extern "C" __global__ void rnn_cell_backward_f##SUF(const T *h, const T *dh,              \
                                                        const T *dhr, T *dpre, int relu,      \
                                                        long long rows, long long H)          \
    {                                                                                         \
        GRID_LOOP(e, rows * H) {                                                              \
            const T slope = relu ? T(h[e] > T(0)) : T(1) - h[e] * h[e];                       \
            dpre[e] = (dh[e] + dhr[e]) * slope;                                               \
        }                                                                                     \
    }

RNN_CELLS(32, float)
RNN_CELLS(64, double)
