// Tensor-core GEMM for float32 tensors: C[b] = op(A)[b] @ op(B)[b] (+ C[b] when accumulate),
// any strides, computed in TF32 ("high") or bf16 ("medium") with float32 accumulation.
//
// Same contract as gemm.cu (operands addressed as base + batch*sb + row*sr + col*sc, C with
// unit column stride and row stride ldc): the GPU backend picks this family instead of gemm.cu
// when convlab.set_float32_matmul_precision asks for less than "highest" and the device has
// compute capability 8.0 or newer. Tensors stay float32; only the inputs of each product are
// rounded, while the tiles are staged in shared memory: to TF32 (10-bit mantissa, round to
// nearest with ties away, __float_to_tf32) or to bf16 (7-bit mantissa, round to nearest even,
// __float2bfloat16). Products of rounded inputs are exact in float32 and are summed in the
// float32 accumulator fragments.
//
// A block of GEMM_TC_THREADS threads (GEMM_TC_WARPS_M x GEMM_TC_WARPS_N warps) computes a
// GEMM_TC_BM x GEMM_TC_BN tile of C (GEMM_TC_M64_BM rows in the gemm_m64_* entry points, for
// a C of at most that many rows: a 64-channel layer) over GEMM_TC_BK-deep slices; each warp
// holds a (BM / WARPS_M) x (BN / WARPS_N) piece as 16 x 16 accumulator fragments. The wmma calls are
// warp-collective: every lane of a warp makes the same calls with the same pointers. Edges
// are zero-padded in shared memory; the result goes out through a per-warp 16 x 16 scratch
// tile so that partial tiles, any ldc and accumulate need no alignment of C.
//
// nvcuda::wmma comes from mma.h, which launch.py names as a --pre-include option (NVRTC and
// nvcc), so the source needs no #include; the tests' CUDA emulator supplies its own wmma.
// Below compute capability 8.0 there are no tf32 / bf16 fragments: the entry points compile
// to empty kernels there and the backend never launches them.
#if !defined(GEMM_TC_THREADS) || !defined(GEMM_TC_BM) || !defined(GEMM_TC_BN) ||          \
    !defined(GEMM_TC_BK) || !defined(GEMM_TC_WARPS_M) || !defined(GEMM_TC_WARPS_N) ||     \
    !defined(GEMM_TC_PAD) || !defined(GEMM_TC_M64_BM)
#error "gemm_tc.cu needs its launch constants (python -m convlab._gpu.launch --nvcc-options gemm_tc)"
#endif

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800

// The input format of one precision: the type tiles are staged in, the fragment element type
// and the fragment depth (m16n16k8 for TF32, m16n16k16 for bf16).
struct Tf32Format {
    typedef float stage_t;
    typedef nvcuda::wmma::precision::tf32 fragment_t;
    static constexpr int FK = 8;
    static __device__ __forceinline__ float round(float v)
    {
        return nvcuda::wmma::__float_to_tf32(v);
    }
    static __device__ __forceinline__ float zero() { return 0.0f; }
};

struct Bf16Format {
    typedef __nv_bfloat16 stage_t;
    typedef __nv_bfloat16 fragment_t;
    static constexpr int FK = 16;
    static __device__ __forceinline__ __nv_bfloat16 round(float v) { return __float2bfloat16(v); }
    static __device__ __forceinline__ __nv_bfloat16 zero() { return __float2bfloat16(0.0f); }
};

// Fragment edge (both formats use 16 x 16 tiles of C).
constexpr int FRAG = 16;
constexpr int WARP = 32;
constexpr int WN = GEMM_TC_BN / GEMM_TC_WARPS_N;  // columns of C a warp computes
constexpr int FN = WN / FRAG;                     // its fragments along the columns
// Leading dimensions of the shared tiles, padded against bank conflicts: wmma wants each a
// multiple of 16 bytes and every fragment's first element 32-byte aligned, which PAD keeps
// (launch.py) for both 4- and 2-byte elements.
constexpr int LDA = GEMM_TC_BK + GEMM_TC_PAD;
constexpr int LDB = GEMM_TC_BN + GEMM_TC_PAD;
constexpr int LDS = FRAG + GEMM_TC_PAD / 2;

static_assert(GEMM_TC_WARPS_M * GEMM_TC_WARPS_N * WARP == GEMM_TC_THREADS, "one piece a warp");
static_assert(WN % FRAG == 0, "warp pieces are whole fragments");
static_assert(GEMM_TC_BK % 16 == 0, "slices hold whole fragments of both formats");

template <typename F, int BM>
__device__ __forceinline__ void stage_a(typename F::stage_t (*tile)[LDA], const float *a,
                                        long long sr, long long sc, int m0, int k0, int rows,
                                        int depth)
{
    // tile[r][k] = round(op(A)[m0 + r][k0 + k]), zero outside; consecutive threads walk the
    // operand's unit-stride direction so the global reads coalesce
    const bool k_inner = sc == 1;
    for (int e = threadIdx.x; e < BM * GEMM_TC_BK; e += GEMM_TC_THREADS) {
        const int r = k_inner ? e / GEMM_TC_BK : e % BM;
        const int k = k_inner ? e % GEMM_TC_BK : e / BM;
        const int gr = m0 + r, gk = k0 + k;
        tile[r][k] = (gr < rows && gk < depth) ? F::round(a[gr * sr + gk * sc]) : F::zero();
    }
}

template <typename F>
__device__ __forceinline__ void stage_b(typename F::stage_t (*tile)[LDB], const float *b,
                                        long long sr, long long sc, int n0, int k0, int cols,
                                        int depth)
{
    // tile[k][n] = round(op(B)[k0 + k][n0 + n]), zero outside
    const bool n_inner = sc == 1;
    for (int e = threadIdx.x; e < GEMM_TC_BK * GEMM_TC_BN; e += GEMM_TC_THREADS) {
        const int n = n_inner ? e % GEMM_TC_BN : e / GEMM_TC_BK;
        const int k = n_inner ? e / GEMM_TC_BN : e % GEMM_TC_BK;
        const int gn = n0 + n, gk = k0 + k;
        tile[k][n] = (gn < cols && gk < depth) ? F::round(b[gk * sr + gn * sc]) : F::zero();
    }
}

// BM: the rows of C a block computes (GEMM_TC_BM, or GEMM_TC_M64_BM for a C of at most that
// many rows, where taller tiles would compute zero rows)
template <typename F, int BM>
__device__ void gemm_tc_block(int M, int N, int K, const float *A, long long sab, long long sar,
                              long long sac, const float *B, long long sbb, long long sbr,
                              long long sbc, float *C, long long scb, long long ldc,
                              int accumulate)
{
    namespace wmma = nvcuda::wmma;
    typedef typename F::stage_t S;
    constexpr int WM = BM / GEMM_TC_WARPS_M;  // rows of C a warp computes
    constexpr int FM = WM / FRAG;             // its fragments along the rows
    static_assert(WM % FRAG == 0, "warp pieces are whole fragments");
    __shared__ __align__(32) S As[BM][LDA];
    __shared__ __align__(32) S Bs[GEMM_TC_BK][LDB];
    __shared__ __align__(32) float scratch[GEMM_TC_THREADS / WARP][FRAG][LDS];
    const int b = blockIdx.z;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * GEMM_TC_BN;
    const float *a = A + b * sab;
    const float *bm = B + b * sbb;
    float *c = C + b * scb;
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    const int wr = (warp / GEMM_TC_WARPS_N) * WM, wc = (warp % GEMM_TC_WARPS_N) * WN;

    wmma::fragment<wmma::accumulator, FRAG, FRAG, F::FK, float> acc[FM][FN];
    // fragment arrays indexed only by unrolled loops stay in registers
#pragma unroll
    for (int i = 0; i < FM; i++)
#pragma unroll
        for (int j = 0; j < FN; j++) wmma::fill_fragment(acc[i][j], 0.0f);

    for (int k0 = 0; k0 < K; k0 += GEMM_TC_BK) {
        stage_a<F, BM>(As, a, sar, sac, m0, k0, M, K);
        stage_b<F>(Bs, bm, sbr, sbc, n0, k0, N, K);
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < GEMM_TC_BK; kk += F::FK) {
            wmma::fragment<wmma::matrix_a, FRAG, FRAG, F::FK, typename F::fragment_t,
                           wmma::row_major>
                fa[FM];
            wmma::fragment<wmma::matrix_b, FRAG, FRAG, F::FK, typename F::fragment_t,
                           wmma::row_major>
                fb[FN];
#pragma unroll
            for (int i = 0; i < FM; i++)
                wmma::load_matrix_sync(fa[i], &As[wr + i * FRAG][kk], LDA);
#pragma unroll
            for (int j = 0; j < FN; j++)
                wmma::load_matrix_sync(fb[j], &Bs[kk][wc + j * FRAG], LDB);
#pragma unroll
            for (int i = 0; i < FM; i++)
#pragma unroll
                for (int j = 0; j < FN; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        __syncthreads();
    }

    // out through the warp's scratch tile: edges, any ldc, and accumulate
#pragma unroll
    for (int i = 0; i < FM; i++) {
#pragma unroll
        for (int j = 0; j < FN; j++) {
            const int row0 = m0 + wr + i * FRAG, col0 = n0 + wc + j * FRAG;
            if (row0 >= M || col0 >= N) continue;  // warp-uniform: the whole warp skips
            wmma::store_matrix_sync(&scratch[warp][0][0], acc[i][j], LDS, wmma::mem_row_major);
            __syncwarp();
            for (int e = lane; e < FRAG * FRAG; e += WARP) {
                const int row = row0 + e / FRAG, col = col0 + e % FRAG;
                if (row < M && col < N) {
                    float *dst = c + row * ldc + col;
                    const float v = scratch[warp][e / FRAG][e % FRAG];
                    *dst = accumulate ? *dst + v : v;
                }
            }
            __syncwarp();
        }
    }
}

#define GEMM_TC_BODY(FORMAT, BM)                                                          \
    gemm_tc_block<FORMAT, BM>(M, N, K, A, sab, sar, sac, B, sbb, sbr, sbc, C, scb, ldc,   \
                              accumulate)
#else
// no tf32 / bf16 fragments below compute capability 8.0: never launched there
#define GEMM_TC_BODY(FORMAT, BM)
#endif

#define GEMM_TC_ENTRY(NAME, FORMAT, BM)                                                   \
    extern "C" __global__ void __launch_bounds__(GEMM_TC_THREADS)                         \
        NAME(int M, int N, int K, const float *A, long long sab, long long sar, long long sac, \
             const float *B, long long sbb, long long sbr, long long sbc, float *C,       \
             long long scb, long long ldc, int accumulate)                                \
    {                                                                                     \
        GEMM_TC_BODY(FORMAT, BM);                                                         \
    }

GEMM_TC_ENTRY(gemm_tf32_f32, Tf32Format, GEMM_TC_BM)
GEMM_TC_ENTRY(gemm_bf16_f32, Bf16Format, GEMM_TC_BM)
GEMM_TC_ENTRY(gemm_m64_tf32_f32, Tf32Format, GEMM_TC_M64_BM)
GEMM_TC_ENTRY(gemm_m64_bf16_f32, Bf16Format, GEMM_TC_M64_BM)
