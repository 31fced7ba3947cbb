// Convolution of 0/1 images (the chart CNN's first layer) from lookup tables, as the CPU
// backend's include/binary_conv.h: the kernel is cut into sub-rows of up to three taps
// (channel, kernel row, three consecutive kernel columns); at an output pixel a sub-row sees a
// 3-bit pattern p (bit j = tap 3s + j), and contributes T[o][r][p] to output channel o.
//
// Images come as uint8 0/1 per pixel, or bit-packed per channel plane (np.packbits of the
// row-major pixels, most significant bit first).
//
// Work is laid out so that a pixel's patterns are found once for many output channels, every
// thread has work (the grids scale with the batch), and sums are taken in a fixed order
// (no atomics: the same input gives the same bits on every run).
//
// The launch constants (BIN_*: block sizes, channels per thread, sub-rows per histogram block,
// column classes per pass) come from convlab/_gpu/launch.py as -D options (NVRTC gets them from
// modules.py; nvcc: python -m convlab._gpu.launch --nvcc-options binary_conv).
#if !defined(BIN_FORWARD_THREADS) || !defined(BIN_FORWARD_MIN_BLOCKS) ||                      \
    !defined(BIN_CHANNELS) || !defined(BIN_SUM_THREADS) || !defined(BIN_GROUP) ||             \
    !defined(BIN_CLASSES)
#error "binary_conv.cu needs its launch constants as -D options (convlab/_gpu/launch.py)"
#endif

struct BinGeom {
    int C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW, NSEG, R, packed;
    long long image_bytes;
};

// One sub-row r = (c * KH + kh) * NSEG + seg, decoded once per thread instead of per pixel.
struct BinSubRow {
    int c, row_offset, col_offset, taps;   // input row = oh * SH + row_offset, likewise cols
};

__device__ __forceinline__ BinSubRow bin_sub_row(const BinGeom &g, int r)
{
    const int seg = r % g.NSEG, kh = (r / g.NSEG) % g.KH;
    BinSubRow s;
    s.c = r / (g.NSEG * g.KH);
    s.row_offset = kh * g.DH - g.PH;
    s.col_offset = 3 * seg * g.DW - g.PW;
    s.taps = min(3, g.KW - 3 * seg);
    return s;
}

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

// Pattern of a sub-row at output pixel (oh, ow); 0 when its kernel row is in the padding.
__device__ __forceinline__ int bin_pattern(const unsigned char *img, const BinGeom &g,
                                           const BinSubRow &s, int oh, int ow)
{
    const int ih = oh * g.SH + s.row_offset;
    if (ih < 0 || ih >= g.H) return 0;
    const int w0 = ow * g.SW + s.col_offset;
    int p = 0;
    for (int j = 0; j < s.taps; j++) p |= bin_pixel(img, g, s.c, ih, w0 + j * g.DW) << j;
    return p;
}

// Moves a position (outer, inner) in rows `width` long on by a step of `step_outer` rows and
// `step_inner` (< width) places: the sum kernels' threads walk their pixels this way instead
// of dividing every index.
__device__ __forceinline__ void bin_advance(int &outer, int &inner, int step_outer,
                                            int step_inner, int width)
{
    outer += step_outer;
    inner += step_inner;
    if (inner >= width) {
        inner -= width;
        outer++;
    }
}

// BIN_CHANNELS: output channels per forward thread: the patterns are found once for all of
// them. (Launched with BIN_FORWARD_THREADS threads, BIN_FORWARD_MIN_BLOCKS blocks a
// multiprocessor: 65536 / (threads x blocks) registers a thread, 64 with launch.py's values,
// which the BIN_CHANNELS sums, the pixel's coordinates and the table pointer fit without
// spilling in float32.)

// out[n][o][oh][ow] = plane[o][oh][ow] + sum_r tables[o][r][pattern_r], the sub-rows added in
// order (the caller passes the bias broadcast as the plane when there is no per-pixel base).
// One-dimensional grid: block b covers pixels (b % pixel blocks) * blockDim.x onwards of the
// N * OH * OW, for the output channels (b / pixel blocks) * BIN_CHANNELS onwards. A warp
// covers 32 neighbouring pixels: its stores of one channel are contiguous, and its table
// lookups of one sub-row (8 entries) fall in one cache line.
template <typename T>
__device__ void bin_forward(const unsigned char *x, const T *tables, const T *plane, T *out,
                            int N, int Cout, BinGeom g)
{
    const long long P = (long long)g.OH * g.OW;
    const long long pixel_blocks = (N * P + blockDim.x - 1) / blockDim.x;
    const long long q = (blockIdx.x % pixel_blocks) * blockDim.x + threadIdx.x;
    if (q >= N * P) return;
    const long long n = q / P;
    const int p = (int)(q - n * P), oh = p / g.OW, ow = p - oh * g.OW;
    const int o0 = (int)(blockIdx.x / pixel_blocks) * BIN_CHANNELS;
    const int nc = min(BIN_CHANNELS, Cout - o0);
    const unsigned char *img = x + n * g.image_bytes;
    const long long table_stride = (long long)g.R * 8;
    T acc[BIN_CHANNELS];
#pragma unroll
    for (int j = 0; j < BIN_CHANNELS; j++)
        acc[j] = j < nc ? plane[(long long)(o0 + j) * P + p] : T(0);
    for (int r = 0; r < g.R; r++) {
        const int pat = bin_pattern(img, g, bin_sub_row(g, r), oh, ow);
        if (pat == 0) continue;
        const T *t = tables + o0 * table_stride + r * 8 + pat;
#pragma unroll
        for (int j = 0; j < BIN_CHANNELS; j++)
            if (j < nc) acc[j] += t[j * table_stride];
    }
    T *y = out + (n * Cout + o0) * P + p;
#pragma unroll
    for (int j = 0; j < BIN_CHANNELS; j++)
        if (j < nc) y[j * P] = acc[j];
}

// BIN_SUM_THREADS: threads of the two weight-gradient sum kernels; BIN_GROUP: the sub-rows one
// histogram block takes.

// Sum over a block's threads of `count` per-thread values, in a fixed tree order; thread 0's
// red[k][0] holds sum k afterwards. Every thread of the block must call it.
__device__ __forceinline__ void bin_block_sums(double (*red)[BIN_SUM_THREADS], int count)
{
    __syncthreads();
    for (int half = BIN_SUM_THREADS / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half)
            for (int k = 0; k < count; k++) red[k][threadIdx.x] += red[k][threadIdx.x + half];
        __syncthreads();
    }
}

// part[s][r][p][o] = sum of grad[n][o][oh][ow] over the images n = s, s + S, ... and the
// pixels where sub-row r shows pattern p (p = 1..7; bin 0 is left zero, as on the CPU), for
// the BIN_GROUP sub-rows from r0. Grid: x = (sub-row group, o), y = s (S slices of the batch:
// enough blocks to fill the device, few pixels per thread). Each thread reads its pixels'
// gradient once for all the group's sub-rows and keeps 7 bins per sub-row in registers.
template <typename T>
__device__ void bin_histogram(const unsigned char *x, const T *grad, double *part, int N,
                              int Cout, BinGeom g)
{
    __shared__ double red[BIN_GROUP * 7][BIN_SUM_THREADS];
    const int o = blockIdx.x % Cout, r0 = (blockIdx.x / Cout) * BIN_GROUP;
    const int s = blockIdx.y, S = gridDim.y, tid = threadIdx.x;
    const int rows = min(BIN_GROUP, g.R - r0);
    const int P = g.OH * g.OW;
    BinSubRow sub[BIN_GROUP];
#pragma unroll
    for (int i = 0; i < BIN_GROUP; i++) sub[i] = bin_sub_row(g, i < rows ? r0 + i : r0);
    T bins[BIN_GROUP][7];
#pragma unroll
    for (int i = 0; i < BIN_GROUP; i++)
#pragma unroll
        for (int b = 0; b < 7; b++) bins[i][b] = T(0);
    // (oh, ow) of pixel p, stepped by the block size
    const int step_h = BIN_SUM_THREADS / g.OW, step_w = BIN_SUM_THREADS % g.OW;
    for (int n = s; n < N; n += S) {
        const unsigned char *img = x + n * g.image_bytes;
        const T *gr = grad + ((long long)n * Cout + o) * P;
        int oh = tid / g.OW, ow = tid % g.OW;
        for (int p = tid; p < P; p += BIN_SUM_THREADS) {
            const T v = gr[p];
#pragma unroll
            for (int i = 0; i < BIN_GROUP; i++) {
                if (i >= rows) break;
                const int pat = bin_pattern(img, g, sub[i], oh, ow);
#pragma unroll
                for (int b = 0; b < 7; b++) bins[i][b] += pat == b + 1 ? v : T(0);
            }
            bin_advance(oh, ow, step_h, step_w, g.OW);
        }
    }
#pragma unroll
    for (int i = 0; i < BIN_GROUP; i++)
#pragma unroll
        for (int b = 0; b < 7; b++) red[i * 7 + b][tid] = (double)bins[i][b];
    bin_block_sums(red, rows * 7);
    if (tid < rows * 8) {
        const int i = tid / 8, b = tid % 8;
        part[(((long long)s * g.R + r0 + i) * 8 + b) * Cout + o] = b ? red[i * 7 + b - 1][0]
                                                                      : 0.0;
    }
}

// hist[i] = the S slices' part[s][i] added in slice order.
template <typename T>
__device__ void bin_histogram_total(const double *part, T *hist, long long size, int S)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < size;
         i += (long long)gridDim.x * blockDim.x) {
        double total = 0.0;
        for (int s = 0; s < S; s++) total += part[s * size + i];
        hist[i] = T(total);
    }
}

// BIN_CLASSES: column classes one colsum pass keeps in registers (more take further passes).

// colsum[oh][k][o] = sum of grad[n][o][oh][ow] over n and the columns ow of class k. One
// block per (oh, o): its threads share out the N * OW values of that output row (a warp's
// loads are neighbouring columns), then add their per-class sums in a fixed tree order.
template <typename T>
__device__ void bin_colsum(const T *grad, const int *cls, T *colsum, int N, int Cout, int OH,
                           int OW, int classes)
{
    __shared__ double red[BIN_CLASSES][BIN_SUM_THREADS];
    const int o = blockIdx.x % Cout, oh = blockIdx.x / Cout, tid = threadIdx.x;
    const int step_n = BIN_SUM_THREADS / OW, step_w = BIN_SUM_THREADS % OW;
    for (int k0 = 0; k0 < classes; k0 += BIN_CLASSES) {
        double sums[BIN_CLASSES];
#pragma unroll
        for (int k = 0; k < BIN_CLASSES; k++) sums[k] = 0.0;
        int n = tid / OW, ow = tid % OW;
        while (n < N) {
            const double v = (double)grad[(((long long)n * Cout + o) * OH + oh) * OW + ow];
            const int k = cls[ow] - k0;
#pragma unroll
            for (int j = 0; j < BIN_CLASSES; j++) sums[j] += k == j ? v : 0.0;
            bin_advance(n, ow, step_n, step_w, OW);
        }
        const int count = min(BIN_CLASSES, classes - k0);
#pragma unroll
        for (int k = 0; k < BIN_CLASSES; k++) red[k][tid] = sums[k];
        bin_block_sums(red, count);
        if (tid < count) colsum[((long long)oh * classes + k0 + tid) * Cout + o] = T(red[tid][0]);
        __syncthreads();   // red is reused by the next pass
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
    extern "C" __global__ void __launch_bounds__(BIN_FORWARD_THREADS, BIN_FORWARD_MIN_BLOCKS) \
        binary_conv2d_forward_f##SUF(                                                         \
        const unsigned char *x, const T *tables, const T *plane, T *out, int N, int Cout,      \
        BIN_PARAMS)                                                                           \
    {                                                                                         \
        const BinGeom g = BIN_GEOM;                                                           \
        bin_forward<T>(x, tables, plane, out, N, Cout, g);                                    \
    }                                                                                         \
    extern "C" __global__ void __launch_bounds__(BIN_SUM_THREADS)                             \
        binary_conv2d_histogram_f##SUF(const unsigned char *x, const T *grad, double *part,   \
                                       int N, int Cout, BIN_PARAMS)                           \
    {                                                                                         \
        const BinGeom g = BIN_GEOM;                                                           \
        bin_histogram<T>(x, grad, part, N, Cout, g);                                          \
    }                                                                                         \
    extern "C" __global__ void binary_conv2d_histogram_total_f##SUF(                          \
        const double *part, T *hist, long long size, int S)                                   \
    {                                                                                         \
        bin_histogram_total<T>(part, hist, size, S);                                          \
    }                                                                                         \
    extern "C" __global__ void __launch_bounds__(BIN_SUM_THREADS)                             \
        binary_conv2d_colsum_f##SUF(const T *grad, const int *cls, T *colsum, int N,          \
                                    int Cout, int OH, int OW, int classes)                    \
    {                                                                                         \
        bin_colsum<T>(grad, cls, colsum, N, Cout, OH, OW, classes);                           \
    }

BIN_ENTRIES(32, float)
BIN_ENTRIES(64, double)
