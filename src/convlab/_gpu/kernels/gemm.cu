// Tiled GEMM: C[b] = op(A)[b] @ op(B)[b] (+ C[b] when accumulate), any strides.
//
// Every operand is addressed as base + batch*sb + row*sr + col*sc, so transposes and strided
// views cost nothing. A block computes a BM x BN tile of C with GEMM_THREADS threads, each
// holding a TM x TN register tile; BK-deep slices of A and B are staged through shared memory
// (A stored k-major so the inner product reads both tiles along rows). When an operand's k
// stride is 1 and its rows are 16-byte aligned, a thread loads four consecutive k values with
// one vector load.
//
// The block size and tile sizes come from convlab/_gpu/launch.py as -D options (NVRTC gets
// them from modules.py; nvcc: python -m convlab._gpu.launch --nvcc-options gemm).
#if !defined(GEMM_THREADS) || !defined(GEMM_BK) || !defined(GEMM_F32_BM) ||                  \
    !defined(GEMM_F32_BN) || !defined(GEMM_F32_TM) || !defined(GEMM_F32_TN) ||               \
    !defined(GEMM_M64_F32_BM) || !defined(GEMM_M64_F32_BN) || !defined(GEMM_M64_F32_TM) ||   \
    !defined(GEMM_M64_F32_TN) || !defined(GEMM_F64_BM) || !defined(GEMM_F64_BN) ||           \
    !defined(GEMM_F64_TM) || !defined(GEMM_F64_TN)
#error "gemm.cu needs its launch constants (python -m convlab._gpu.launch --nvcc-options gemm)"
#endif

template <typename T> struct Vec4;
template <> struct Vec4<float> { typedef float4 type; };
template <> struct Vec4<double> { typedef double4 type; };

template <typename T, int ROWS, int BK>
__device__ __forceinline__ void load_tile(T (*tile)[ROWS + 4], const T *base, long long sr,
                                          long long sc, int row0, int k0, int rows, int depth,
                                          bool vec)
{
    // tile[k][r] = op(base)[row0 + r][k0 + k], zero outside the matrix
    const int tid = threadIdx.x;
    if (vec) {
        // groups of 4 consecutive k (k stride 1, aligned rows): ROWS * BK / 4 groups
        for (int g = tid; g < ROWS * BK / 4; g += GEMM_THREADS) {
            const int r = g / (BK / 4), k = (g % (BK / 4)) * 4;
            const int gr = row0 + r, gk = k0 + k;
            if (gr < rows && gk + 3 < depth) {
                typename Vec4<T>::type v =
                    *reinterpret_cast<const typename Vec4<T>::type *>(base + gr * sr + gk);
                tile[k][r] = v.x; tile[k + 1][r] = v.y; tile[k + 2][r] = v.z; tile[k + 3][r] = v.w;
            } else {
                for (int q = 0; q < 4; q++)
                    tile[k + q][r] = (gr < rows && gk + q < depth) ? base[gr * sr + (gk + q)]
                                                                   : T(0);
            }
        }
    } else if (sr == 1) {
        // rows contiguous: consecutive threads walk rows (coalesced)
        for (int e = tid; e < ROWS * BK; e += GEMM_THREADS) {
            const int r = e % ROWS, k = e / ROWS;
            const int gr = row0 + r, gk = k0 + k;
            tile[k][r] = (gr < rows && gk < depth) ? base[gr + gk * sc] : T(0);
        }
    } else {
        for (int e = tid; e < ROWS * BK; e += GEMM_THREADS) {
            const int k = e % BK, r = e / BK;
            const int gr = row0 + r, gk = k0 + k;
            tile[k][r] = (gr < rows && gk < depth) ? base[gr * sr + gk * sc] : T(0);
        }
    }
}

template <typename T, int BM, int BN, int BK, int TM, int TN>
__device__ void gemm_block(int M, int N, int K, const T *A, long long sab, long long sar,
                           long long sac, const T *B, long long sbb, long long sbr,
                           long long sbc, T *C, long long scb, long long ldc, int accumulate)
{
    static_assert((BM / TM) * (BN / TN) == GEMM_THREADS, "one register tile per thread");
    __shared__ T As[BK][BM + 4];
    __shared__ T Bs[BK][BN + 4];
    const int b = blockIdx.z;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    const T *a = A + b * sab;
    const T *bm = B + b * sbb;
    T *c = C + b * scb;
    const int tx = threadIdx.x % (BN / TN), ty = threadIdx.x / (BN / TN);
    // vector loads need k stride 1 and 16-byte aligned rows (row stride a multiple of 4)
    const bool vec_a = sac == 1 && sar % 4 == 0 &&
                       (reinterpret_cast<unsigned long long>(a) % (4 * sizeof(T))) == 0;
    T acc[TM][TN];
    for (int i = 0; i < TM; i++)
        for (int j = 0; j < TN; j++) acc[i][j] = T(0);
    for (int k0 = 0; k0 < K; k0 += BK) {
        load_tile<T, BM, BK>(As, a, sar, sac, m0, k0, M, K, vec_a);
        // B's tile as op(B)^T rows: row n, depth k at bm[k * sbr + n * sbc]
        load_tile<T, BN, BK>(Bs, bm, sbc, sbr, n0, k0, N, K,
                             sbr == 1 && sbc % 4 == 0 &&
                             (reinterpret_cast<unsigned long long>(bm) % (4 * sizeof(T))) == 0);
        __syncthreads();
#pragma unroll
        for (int k = 0; k < BK; k++) {
            T ra[TM], rb[TN];
#pragma unroll
            for (int i = 0; i < TM; i++) ra[i] = As[k][ty * TM + i];
#pragma unroll
            for (int j = 0; j < TN; j++) rb[j] = Bs[k][tx * TN + j];
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++) acc[i][j] += ra[i] * rb[j];
        }
        __syncthreads();
    }
    for (int i = 0; i < TM; i++) {
        const int row = m0 + ty * TM + i;
        if (row >= M) break;
        for (int j = 0; j < TN; j++) {
            const int col = n0 + tx * TN + j;
            if (col < N) {
                T *dst = c + row * ldc + col;
                *dst = accumulate ? *dst + acc[i][j] : acc[i][j];
            }
        }
    }
}

// Tile sizes (launch.py): 128 x 128 x 8 with 8 x 8 per thread (float), 64 x 64 x 8 with 4 x 4
// (double). gemm_m64 is for C with at most 64 rows (a 64-channel layer's forward and weight
// gradient): 64 x 128 tiles with 4 x 8 per thread, where a 128-row tile would compute half its
// rows for nothing (in double the tiles are 64 rows already).
#define GEMM_F32 GEMM_F32_BM, GEMM_F32_BN, GEMM_BK, GEMM_F32_TM, GEMM_F32_TN
#define GEMM_F64 GEMM_F64_BM, GEMM_F64_BN, GEMM_BK, GEMM_F64_TM, GEMM_F64_TN
#define GEMM_M64_F32                                                                          \
    GEMM_M64_F32_BM, GEMM_M64_F32_BN, GEMM_BK, GEMM_M64_F32_TM, GEMM_M64_F32_TN

// One entry point: C(NAME) for element type T with the tile sizes TILES.
#define GEMM_ENTRY(NAME, T, TILES)                                                            \
    extern "C" __global__ void __launch_bounds__(GEMM_THREADS)                                \
        NAME(int M, int N, int K, const T *A, long long sab, long long sar, long long sac,    \
             const T *B, long long sbb, long long sbr, long long sbc, T *C, long long scb,    \
             long long ldc, int accumulate)                                                   \
    {                                                                                         \
        gemm_block<T, TILES>(M, N, K, A, sab, sar, sac, B, sbb, sbr, sbc, C, scb, ldc,        \
                             accumulate);                                                     \
    }

GEMM_ENTRY(gemm_f32, float, GEMM_F32)
GEMM_ENTRY(gemm_f64, double, GEMM_F64)
GEMM_ENTRY(gemm_m64_f32, float, GEMM_M64_F32)
GEMM_ENTRY(gemm_m64_f64, double, GEMM_F64)
