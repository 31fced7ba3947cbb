// max_pool2d / avg_pool2d forward and backward with PyTorch's semantics (the CPU backend's):
// NaN propagates (the last NaN in the window wins, as in PyTorch), ties go to the first
// element, argmax is the offset i*KW + j inside the window. Backward passes are gathers (one
// thread per input element, summing the windows that contain it): no atomics, deterministic.
struct PoolGeom {
    int NC, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW;
};

#define GRID_LOOP(i, total)                                                                   \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (total);         \
         i += (long long)gridDim.x * blockDim.x)

template <typename T>
__device__ void max_forward(const T *x, T *y, int *argmax, PoolGeom g)
{
    GRID_LOOP(i, (long long)g.NC * g.OH * g.OW) {
        const int ow = i % g.OW, oh = (i / g.OW) % g.OH;
        const long long plane = i / ((long long)g.OW * g.OH);
        const T *xp = x + plane * g.H * g.W;
        const int hstart = oh * g.SH - g.PH, wstart = ow * g.SW - g.PW;
        T best = T(0);
        int best_i = -1;
        for (int a = 0; a < g.KH; a++) {
            const int h = hstart + a * g.DH;
            if (h < 0 || h >= g.H) continue;
            for (int b = 0; b < g.KW; b++) {
                const int w = wstart + b * g.DW;
                if (w < 0 || w >= g.W) continue;
                const T v = xp[h * g.W + w];
                if (best_i < 0 || v > best || v != v) {
                    best = v;
                    best_i = a * g.KW + b;
                }
            }
        }
        if (best_i < 0) {
            // a dilated window can miss the image entirely: -inf (spelled without <math.h>:
            // NVRTC compiles without the host headers), and PyTorch's argmax, the first tap
            // at or after row / column 0 (as the CPU backend)
            best = T(-__longlong_as_double(0x7ff0000000000000LL));
            const int first_a = hstart < 0 ? (-hstart + g.DH - 1) / g.DH : 0;
            const int first_b = wstart < 0 ? (-wstart + g.DW - 1) / g.DW : 0;
            best_i = first_a * g.KW + first_b;
        }
        y[i] = best;
        argmax[i] = best_i;
    }
}

template <typename T>
__device__ void max_backward(const T *dy, const int *argmax, T *dx, PoolGeom g)
{
    GRID_LOOP(i, (long long)g.NC * g.H * g.W) {
        const int w = i % g.W, h = (i / g.W) % g.H;
        const long long plane = i / ((long long)g.W * g.H);
        const long long base = plane * g.OH * g.OW;
        T sum = T(0);
        for (int a = 0; a < g.KH; a++) {
            const int th = h + g.PH - a * g.DH;
            if (th < 0 || th % g.SH) continue;
            const int oh = th / g.SH;
            if (oh >= g.OH) continue;
            for (int b = 0; b < g.KW; b++) {
                const int tw = w + g.PW - b * g.DW;
                if (tw < 0 || tw % g.SW) continue;
                const int ow = tw / g.SW;
                if (ow >= g.OW) continue;
                const long long o = base + (long long)oh * g.OW + ow;
                if (argmax[o] == a * g.KW + b) sum += dy[o];
            }
        }
        dx[i] = sum;
    }
}

// PyTorch's avg_pool2d window: clipped to the padded image for the divisor with padding,
// to the image for the sum and the divisor without it.
__device__ __forceinline__ void avg_window(const PoolGeom &g, int oh, int ow, int include_pad,
                                           int divisor_override, int *b)
{
    const int hstart = oh * g.SH - g.PH, wstart = ow * g.SW - g.PW;
    const int hend = min(hstart + g.KH, g.H + g.PH), wend = min(wstart + g.KW, g.W + g.PW);
    const int padded = (hend - hstart) * (wend - wstart);
    b[0] = max(hstart, 0);
    b[1] = min(hend, g.H);
    b[2] = max(wstart, 0);
    b[3] = min(wend, g.W);
    b[4] = divisor_override ? divisor_override
                            : (include_pad ? padded : (b[1] - b[0]) * (b[3] - b[2]));
}

template <typename T>
__device__ void avg_forward(const T *x, T *y, PoolGeom g, int include_pad, int divisor_override)
{
    GRID_LOOP(i, (long long)g.NC * g.OH * g.OW) {
        const int ow = i % g.OW, oh = (i / g.OW) % g.OH;
        const T *xp = x + (i / ((long long)g.OW * g.OH)) * g.H * g.W;
        int b[5];
        avg_window(g, oh, ow, include_pad, divisor_override, b);
        T total = T(0);
        for (int h = b[0]; h < b[1]; h++)
            for (int w = b[2]; w < b[3]; w++) total += xp[h * g.W + w];
        y[i] = (b[1] <= b[0] || b[3] <= b[2]) ? T(0) : total / T(b[4]);
    }
}

template <typename T>
__device__ void avg_backward(const T *dy, T *dx, PoolGeom g, int include_pad,
                             int divisor_override)
{
    GRID_LOOP(i, (long long)g.NC * g.H * g.W) {
        const int w = i % g.W, h = (i / g.W) % g.H;
        const long long base = (i / ((long long)g.W * g.H)) * g.OH * g.OW;
        // windows that can contain (h, w): oh*SH - PH <= h < oh*SH - PH + KH
        const int oh_lo = max(0, (h + g.PH - g.KH) / g.SH), ow_lo = max(0, (w + g.PW - g.KW) / g.SW);
        const int oh_hi = min(g.OH - 1, (h + g.PH) / g.SH), ow_hi = min(g.OW - 1, (w + g.PW) / g.SW);
        T sum = T(0);
        for (int oh = oh_lo; oh <= oh_hi; oh++)
            for (int ow = ow_lo; ow <= ow_hi; ow++) {
                int b[5];
                avg_window(g, oh, ow, include_pad, divisor_override, b);
                if (h >= b[0] && h < b[1] && w >= b[2] && w < b[3])
                    sum += dy[base + (long long)oh * g.OW + ow] / T(b[4]);
            }
        dx[i] = sum;
    }
}

#define GEOM_PARAMS                                                                           \
    int NC, int H, int W, int OH, int OW, int KH, int KW, int SH, int SW, int PH, int PW,     \
        int DH, int DW
#define GEOM {NC, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW}

#define POOL_ENTRIES(SUF, T)                                                                  \
    extern "C" __global__ void max_pool2d_f##SUF(const T *x, T *y, int *argmax, GEOM_PARAMS) \
    {                                                                                         \
        const PoolGeom g = GEOM;                                                              \
        max_forward<T>(x, y, argmax, g);                                                      \
    }                                                                                         \
    extern "C" __global__ void max_pool2d_backward_f##SUF(const T *dy, const int *argmax,    \
                                                          T *dx, GEOM_PARAMS)                 \
    {                                                                                         \
        const PoolGeom g = GEOM;                                                              \
        max_backward<T>(dy, argmax, dx, g);                                                   \
    }                                                                                         \
    extern "C" __global__ void avg_pool2d_f##SUF(const T *x, T *y, GEOM_PARAMS,              \
                                                 int include_pad, int divisor_override)       \
    {                                                                                         \
        const PoolGeom g = GEOM;                                                              \
        avg_forward<T>(x, y, g, include_pad, divisor_override);                               \
    }                                                                                         \
    extern "C" __global__ void avg_pool2d_backward_f##SUF(const T *dy, T *dx, GEOM_PARAMS,   \
                                                          int include_pad,                    \
                                                          int divisor_override)               \
    {                                                                                         \
        const PoolGeom g = GEOM;                                                              \
        avg_backward<T>(dy, dx, g, include_pad, divisor_override);                            \
    }

POOL_ENTRIES(32, float)
POOL_ENTRIES(64, double)
