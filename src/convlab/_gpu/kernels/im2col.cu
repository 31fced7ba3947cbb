// im2col / col2im in PyTorch's unfold layout, both in gather form: every thread writes one
// output element and reads what it needs, so col2im needs no atomics and is deterministic.
//
// cols element (n, k, p), k = (c*KH + kh)*KW + kw, p = oh*OW + ow, lives at
// cols[n*sn + k*sk + p]: (sn, sk) = (K*P, P) is the (N, K, P) unfold layout, (P, N*P) puts
// the pixels of all images side by side in one (K, N*P) matrix (one GEMM for a chunk).
struct ConvGeom {
    int N, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW;
};

template <typename T>
__device__ void im2col_body(const T *x, T *cols, ConvGeom g, long long sn, long long sk)
{
    const long long P = (long long)g.OH * g.OW, K = (long long)g.C * g.KH * g.KW;
    const long long total = (long long)g.N * K * P;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const long long p = i % P, k = (i / P) % K, n = i / (P * K);
        const int kw = k % g.KW, kh = (k / g.KW) % g.KH, c = k / (g.KW * g.KH);
        const int oh = p / g.OW, ow = p % g.OW;
        const int ih = oh * g.SH - g.PH + kh * g.DH, iw = ow * g.SW - g.PW + kw * g.DW;
        T v = T(0);
        if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
            v = x[((n * g.C + c) * g.H + ih) * (long long)g.W + iw];
        cols[n * sn + k * sk + p] = v;
    }
}

template <typename T>
__device__ void col2im_body(const T *cols, T *x, ConvGeom g, long long sn, long long sk)
{
    const long long total = (long long)g.N * g.C * g.H * g.W;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int w = i % g.W, h = (i / g.W) % g.H, c = (i / ((long long)g.W * g.H)) % g.C;
        const long long n = i / ((long long)g.W * g.H * g.C);
        T sum = T(0);
        for (int kh = 0; kh < g.KH; kh++) {
            const int th = h + g.PH - kh * g.DH;
            if (th < 0 || th % g.SH) continue;
            const int oh = th / g.SH;
            if (oh >= g.OH) continue;
            for (int kw = 0; kw < g.KW; kw++) {
                const int tw = w + g.PW - kw * g.DW;
                if (tw < 0 || tw % g.SW) continue;
                const int ow = tw / g.SW;
                if (ow >= g.OW) continue;
                const long long k = ((long long)c * g.KH + kh) * g.KW + kw;
                sum += cols[n * sn + k * sk + (long long)oh * g.OW + ow];
            }
        }
        x[i] = sum;
    }
}

// The geometry travels as 14 ints (plain scalars: no struct layout to agree on with CuPy).
#define ENTRY(NAME, T, BODY, IN, OUT)                                                         \
    extern "C" __global__ void NAME(const T *IN, T *OUT, int N, int C, int H, int W, int KH, \
                                    int KW, int SH, int SW, int PH, int PW, int DH, int DW,  \
                                    int OH, int OW, long long sn, long long sk)              \
    {                                                                                        \
        const ConvGeom g = {N, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW};             \
        BODY<T>(IN, OUT, g, sn, sk);                                                         \
    }

ENTRY(im2col_f32, float, im2col_body, x, cols)
ENTRY(im2col_f64, double, im2col_body, x, cols)
ENTRY(col2im_f32, float, col2im_body, cols, x)
ENTRY(col2im_f64, double, col2im_body, cols, x)
