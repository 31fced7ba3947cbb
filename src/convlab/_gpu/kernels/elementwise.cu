// Fused elementwise kernels: one pass where NumPy-style code would make several.
// (Every source here compiles without host headers: CuPy builds them with NVRTC.)
#define GRID_LOOP(i, total)                                                                   \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (total);         \
         i += (long long)gridDim.x * blockDim.x)

// dx = g * if_set where the mask is set, g * if_clear elsewhere: the gradient of Leaky ReLU
// (1, slope) and of dropout (1 / (1 - p), 0).
#define ELEMENTWISE(SUF, T)                                                                   \
    extern "C" __global__ void masked_scale_f##SUF(const T *g, const unsigned char *mask,     \
                                                   T *dx, T if_set, T if_clear, long long n)  \
    {                                                                                         \
        GRID_LOOP(i, n) dx[i] = g[i] * (mask[i] ? if_set : if_clear);                         \
    }                                                                                         \
    /* Adam / AdamW step in place (PyTorch's update; decay 0 gives plain Adam):             \
     * p -= lr * wd_decoupled * p; g += wd_l2 * p; m += (1-b1) (g - m);                      \
     * v = b2 v + (1-b2) g^2; p -= step * m / (sqrt(v) / sqrt_bc2 + eps) */                  \
    extern "C" __global__ void adam_step_f##SUF(T *p, const T *grad, T *m, T *v, T lr,        \
                                                T beta1, T beta2, T eps, T wd_l2,             \
                                                T wd_decoupled, T step, T sqrt_bc2,           \
                                                long long n)                                  \
    {                                                                                         \
        GRID_LOOP(i, n) {                                                                     \
            T pi = p[i];                                                                      \
            if (wd_decoupled != T(0)) pi -= lr * wd_decoupled * pi;                           \
            const T gi = grad[i] + wd_l2 * pi;                                                \
            const T mi = m[i] + (T(1) - beta1) * (gi - m[i]);   /* m.lerp_(g, 1 - b1) */                                  \
            const T vi = beta2 * v[i] + (T(1) - beta2) * gi * gi;                             \
            m[i] = mi;                                                                        \
            v[i] = vi;                                                                        \
            p[i] = pi - step * mi / (sqrt(vi) / sqrt_bc2 + eps);                              \
        }                                                                                     \
    }

ELEMENTWISE(32, float)
ELEMENTWISE(64, double)

// Dropout from the CPU kernel's SplitMix64 stream (convlab._cpu._activation): elements 2j and
// 2j + 1 take the low and high 32 bits of number j, kept where they are >= threshold. The mask
// depends on the seed alone -- the same on every backend and launch shape -- so a seed drawn
// from convlab's generator (manual_seed, a resumed RNG state) decides it.
__device__ __forceinline__ unsigned long long dropout_bits(unsigned long long seed, long long j)
{
    unsigned long long z = seed + (unsigned long long)(j + 1) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define DROPOUT(SUF, T)                                                                       \
    extern "C" __global__ void dropout_forward_f##SUF(const T *x, T *out, unsigned char *keep, \
                                                      unsigned long long seed,                \
                                                      unsigned int threshold, T scale,        \
                                                      long long n)                            \
    {                                                                                         \
        GRID_LOOP(j, (n + 1) / 2) {                                                           \
            const unsigned long long bits = dropout_bits(seed, j);                            \
            const long long i = 2 * j;                                                        \
            unsigned char kept = (unsigned int)bits >= threshold;                             \
            keep[i] = kept;                                                                   \
            out[i] = x[i] * (scale * (T)kept);                                                \
            if (i + 1 < n) {                                                                  \
                kept = (unsigned int)(bits >> 32) >= threshold;                               \
                keep[i + 1] = kept;                                                           \
                out[i + 1] = x[i + 1] * (scale * (T)kept);                                    \
            }                                                                                 \
        }                                                                                     \
    }

DROPOUT(32, float)
DROPOUT(64, double)
