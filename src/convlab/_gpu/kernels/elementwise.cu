// Fused elementwise kernels: one pass where NumPy-style code would make several.
// (Every source here compiles without host headers: CuPy builds them with NVRTC.)
#define GRID_LOOP(i, total)                                                                   \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (total);         \
         i += (long long)gridDim.x * blockDim.x)

// Leaky ReLU backward: dx = g where the forward input was positive, slope * g elsewhere.
#define LEAKY(SUF, T)                                                                         \
    extern "C" __global__ void leaky_relu_backward_f##SUF(const T *g, const unsigned char *pos, \
                                                          T *dx, T slope, long long n)        \
    {                                                                                         \
        GRID_LOOP(i, n) dx[i] = pos[i] ? g[i] : g[i] * slope;                                 \
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

LEAKY(32, float)
LEAKY(64, double)
