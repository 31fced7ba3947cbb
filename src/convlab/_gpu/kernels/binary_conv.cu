// Convolution of 0/1 images (the chart CNN's first layer) from lookup tables, as the CPU
// backend's include/binary_conv.h: the kernel is cut into sub-rows of up to three taps
// (channel, kernel row, three consecutive kernel columns); at an output pixel a sub-row sees a
// 3-bit pattern p (bit j = tap 3s + j), and contributes T[o][r][p] to output channel o.
//
// Images come as uint8 0/1 per pixel, or bit-packed per channel plane (np.packbits of the
// row-major pixels, most significant bit first).
struct BinGeom {
    int C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW, NSEG, R, packed;
    long long image_bytes;
};

__device__ __forceinline__ int bin_pixel(const unsigned char *img, const BinGeom &g, int c,
                                         int h, int w)
{
    if (w < 0 || w >= g.W) return 0;            // zero padding
    if (g.packed) {
        const long long plane = ((long long)g.H * g.W + 7) / 8;
        const long long k = (long long)h * g.W + w;
        return (img[c * plane + (k >> 3)] >> (7 - (k & 7))) & 1;
    }
    return img[((long long)c * g.H + h) * g.W + w] != 0;
}

// Pattern of sub-row r at output pixel (oh, ow); -1 when its kernel row is in the padding.
__device__ __forceinline__ int bin_pattern(const unsigned char *img, const BinGeom &g, int r,
                                           int oh, int ow)
{
    const int seg = r % g.NSEG, kh = (r / g.NSEG) % g.KH, c = r / (g.NSEG * g.KH);
    const int ih = oh * g.SH - g.PH + kh * g.DH;
    if (ih < 0 || ih >= g.H) return -1;
    const int k0 = 3 * seg, taps = min(3, g.KW - k0);
    const int w0 = ow * g.SW - g.PW + k0 * g.DW;
    int p = 0;
    for (int j = 0; j < taps; j++) p |= bin_pixel(img, g, c, ih, w0 + j * g.DW) << j;
    return p;
}

// out[n][o][oh][ow] = plane[o][oh][ow] + sum_r tables[o][r][pattern] (the caller passes the
// bias broadcast as the plane when there is no per-pixel base). One thread per output
// element; neighbouring threads share a pixel row, so the image bytes they read are cached.
template <typename T>
__device__ void bin_forward(const unsigned char *x, const T *tables, const T *plane, T *out,
                            int N, int Cout, BinGeom g)
{
    const long long P = (long long)g.OH * g.OW;
    const long long total = (long long)N * Cout * P;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const long long p = i % P;
        const int o = (i / P) % Cout;
        const long long n = i / (P * Cout);
        const int oh = p / g.OW, ow = p % g.OW;
        const unsigned char *img = x + n * g.image_bytes;
        T acc = plane[(long long)o * P + p];
        const T *t = tables + (long long)o * g.R * 8;
        for (int r = 0; r < g.R; r++) {
            const int pat = bin_pattern(img, g, r, oh, ow);
            if (pat > 0) acc += t[r * 8 + pat];
        }
        out[i] = acc;
    }
}

// hist[r][p][o] = sum of grad[n][o][oh][ow] over the pixels where sub-row r shows pattern p
// (p = 1..7; bin 0 is left zero, as on the CPU). One block per (r, o): each thread sums a
// strided share of the pixels into 8 private bins, then the block adds the bins in a fixed
// tree order (deterministic, no atomics).
template <typename T>
__device__ void bin_histogram(const unsigned char *x, const T *grad, T *hist, int N, int Cout,
                              BinGeom g)
{
    __shared__ double bins[8][256];
    const int r = blockIdx.x, o = blockIdx.y, tid = threadIdx.x;
    const long long P = (long long)g.OH * g.OW;
    double local[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (long long q = tid; q < (long long)N * P; q += blockDim.x) {
        const long long n = q / P, p = q % P;
        const int pat = bin_pattern(x + n * g.image_bytes, g, r, p / g.OW, p % g.OW);
        if (pat > 0) local[pat] += (double)grad[(n * Cout + o) * P + p];
    }
    for (int b = 0; b < 8; b++) bins[b][tid] = local[b];
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (tid < half)
            for (int b = 0; b < 8; b++) bins[b][tid] += bins[b][tid + half];
        __syncthreads();
    }
    if (tid < 8) hist[((long long)r * 8 + tid) * Cout + o] = tid ? T(bins[tid][0]) : T(0);
}

// colsum[oh][k][o] = sum of grad[n][o][oh][ow] over n and the columns ow of class k.
template <typename T>
__device__ void bin_colsum(const T *grad, const int *cls, T *colsum, int N, int Cout, int OH,
                           int OW, int classes)
{
    const long long total = (long long)OH * classes * Cout;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int o = i % Cout, k = (i / Cout) % classes, oh = i / ((long long)Cout * classes);
        double s = 0.0;
        for (int n = 0; n < N; n++) {
            const T *row = grad + (((long long)n * Cout + o) * OH + oh) * OW;
            for (int ow = 0; ow < OW; ow++)
                if (cls[ow] == k) s += (double)row[ow];
        }
        colsum[i] = T(s);
    }
}

#define BIN_PARAMS                                                                            \
    int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int DH, int DW,      \
        int OH, int OW, int packed
#define BIN_GEOM                                                                              \
    {C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW, (KW + 2) / 3, C * KH * ((KW + 2) / 3),  \
     packed,                                                                                  \
     packed ? (long long)C * (((long long)H * W + 7) / 8) : (long long)C * H * W}

#define BIN_ENTRIES(SUF, T)                                                                   \
    extern "C" __global__ void binary_conv2d_forward_f##SUF(                                  \
        const unsigned char *x, const T *tables, const T *plane, T *out, int N, int Cout,      \
        BIN_PARAMS)                                                                           \
    {                                                                                         \
        const BinGeom g = BIN_GEOM;                                                           \
        bin_forward<T>(x, tables, plane, out, N, Cout, g);                                    \
    }                                                                                         \
    extern "C" __global__ void __launch_bounds__(256) binary_conv2d_histogram_f##SUF(         \
        const unsigned char *x, const T *grad, T *hist, int N, int Cout, BIN_PARAMS)          \
    {                                                                                         \
        const BinGeom g = BIN_GEOM;                                                           \
        bin_histogram<T>(x, grad, hist, N, Cout, g);                                          \
    }                                                                                         \
    extern "C" __global__ void binary_conv2d_colsum_f##SUF(const T *grad, const int *cls,     \
                                                           T *colsum, int N, int Cout,        \
                                                           int OH, int OW, int classes)       \
    {                                                                                         \
        bin_colsum<T>(grad, cls, colsum, N, Cout, OH, OW, classes);                           \
    }

BIN_ENTRIES(32, float)
BIN_ENTRIES(64, double)
