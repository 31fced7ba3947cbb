// Direct grouped convolution, as the CPU backend's include/grouped_direct.h: depthwise layers
// (one input channel per group, any channel multiplier) and groups of a few channels, where
// an im2col + GEMM would be a stack of tiny products. Memory-bound, so one thread per output
// element with consecutive threads on consecutive columns (coalesced reads of each input row):
//
//   forward      one thread per y[n, o, oh, ow]: the group's CG x KH x KW taps
//   input grad   one thread per dx[n, ci, ih, iw]: a gather over the group's OG outputs and the
//                taps that reach it (no atomics, deterministic)
//   weight grad  one block per dw[o, c, kh, kw]: its threads stride over the N x OH x OW
//                products, then a shared-memory tree reduction in a fixed order
//
// GCONV_WGRAD_THREADS (the weight-gradient block size; a power of two) comes from
// convlab/_gpu/launch.py as a -D option.
#if !defined(GCONV_WGRAD_THREADS)
#error "grouped_conv.cu needs its launch constants as -D options (convlab/_gpu/launch.py)"
#endif

struct GConvGeom {
    int N, C, H, W, O, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW, CG, OG;
};

#define GRID_LOOP(i, total)                                                                   \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (total);         \
         i += (long long)gridDim.x * blockDim.x)

template <typename T>
__device__ void gconv_forward(const T *x, const T *w, const T *bias, int has_bias, T *y,
                              GConvGeom g)
{
    GRID_LOOP(i, (long long)g.N * g.O * g.OH * g.OW) {
        const int ow = i % g.OW, oh = (i / g.OW) % g.OH;
        const int o = (i / ((long long)g.OW * g.OH)) % g.O;
        const long long n = i / ((long long)g.OW * g.OH * g.O);
        const int grp = o / g.OG;
        const T *xb = x + (n * g.C + (long long)grp * g.CG) * g.H * g.W;
        const T *wb = w + (long long)o * g.CG * g.KH * g.KW;
        T sum = has_bias ? bias[o] : T(0);
        for (int c = 0; c < g.CG; c++)
            for (int kh = 0; kh < g.KH; kh++) {
                const int ih = oh * g.SH - g.PH + kh * g.DH;
                if (ih < 0 || ih >= g.H) continue;
                const T *xrow = xb + ((long long)c * g.H + ih) * g.W;
                const T *wrow = wb + (c * g.KH + kh) * g.KW;
                for (int kw = 0; kw < g.KW; kw++) {
                    const int iw = ow * g.SW - g.PW + kw * g.DW;
                    if (iw < 0 || iw >= g.W) continue;
                    sum += wrow[kw] * xrow[iw];
                }
            }
        y[i] = sum;
    }
}

template <typename T>
__device__ void gconv_backward_data(const T *dy, const T *w, T *dx, GConvGeom g)
{
    GRID_LOOP(i, (long long)g.N * g.C * g.H * g.W) {
        const int iw = i % g.W, ih = (i / g.W) % g.H;
        const int ci = (i / ((long long)g.W * g.H)) % g.C;
        const long long n = i / ((long long)g.W * g.H * g.C);
        const int grp = ci / g.CG, c = ci % g.CG;
        T sum = T(0);
        for (int m = 0; m < g.OG; m++) {
            const int o = grp * g.OG + m;
            const T *dyp = dy + (n * g.O + o) * g.OH * g.OW;
            const T *wo = w + ((long long)o * g.CG + c) * g.KH * g.KW;
            for (int kh = 0; kh < g.KH; kh++) {
                const int th = ih + g.PH - kh * g.DH;   // = oh * SH
                if (th < 0 || th % g.SH) continue;
                const int oh = th / g.SH;
                if (oh >= g.OH) continue;
                for (int kw = 0; kw < g.KW; kw++) {
                    const int tw = iw + g.PW - kw * g.DW;
                    if (tw < 0 || tw % g.SW) continue;
                    const int ow = tw / g.SW;
                    if (ow >= g.OW) continue;
                    sum += wo[kh * g.KW + kw] * dyp[oh * g.OW + ow];
                }
            }
        }
        dx[i] = sum;
    }
}

// Grid: one block per weight element (o, c, kh, kw).
template <typename T>
__device__ void gconv_backward_weight(const T *dy, const T *x, T *dw, GConvGeom g)
{
    __shared__ T red[GCONV_WGRAD_THREADS];
    const int taps = g.KH * g.KW;
    const int e = blockIdx.x;
    const int kw = e % g.KW, kh = (e / g.KW) % g.KH;
    const int c = (e / taps) % g.CG, o = e / (taps * g.CG);
    const int ci = (o / g.OG) * g.CG + c;
    const long long P = (long long)g.OH * g.OW;
    T sum = T(0);
    for (long long p = threadIdx.x; p < (long long)g.N * P; p += GCONV_WGRAD_THREADS) {
        const long long n = p / P;
        const int q = p % P, oh = q / g.OW, ow = q % g.OW;
        const int ih = oh * g.SH - g.PH + kh * g.DH, iw = ow * g.SW - g.PW + kw * g.DW;
        if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
        sum += dy[(n * g.O + o) * P + q] * x[((n * g.C + ci) * g.H + ih) * (long long)g.W + iw];
    }
    red[threadIdx.x] = sum;
    __syncthreads();
    for (int half = GCONV_WGRAD_THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) red[threadIdx.x] += red[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) dw[e] = red[0];
}

#define GEOM_PARAMS                                                                           \
    int N, int C, int H, int W, int O, int OH, int OW, int KH, int KW, int SH, int SW, int PH, \
        int PW, int DH, int DW, int CG, int OG
#define GEOM {N, C, H, W, O, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW, CG, OG}

#define GCONV_ENTRIES(SUF, T)                                                                 \
    extern "C" __global__ void grouped_conv_forward_f##SUF(const T *x, const T *w,           \
                                                           const T *bias, int has_bias, T *y, \
                                                           GEOM_PARAMS)                       \
    {                                                                                         \
        const GConvGeom g = GEOM;                                                             \
        gconv_forward<T>(x, w, bias, has_bias, y, g);                                         \
    }                                                                                         \
    extern "C" __global__ void grouped_conv_backward_data_f##SUF(const T *dy, const T *w,    \
                                                                 T *dx, GEOM_PARAMS)          \
    {                                                                                         \
        const GConvGeom g = GEOM;                                                             \
        gconv_backward_data<T>(dy, w, dx, g);                                                 \
    }                                                                                         \
    extern "C" __global__ void __launch_bounds__(GCONV_WGRAD_THREADS)                         \
        grouped_conv_backward_weight_f##SUF(const T *dy, const T *x, T *dw, GEOM_PARAMS)      \
    {                                                                                         \
        const GConvGeom g = GEOM;                                                             \
        gconv_backward_weight<T>(dy, x, dw, g);                                               \
    }

GCONV_ENTRIES(32, float)
GCONV_ENTRIES(64, double)
