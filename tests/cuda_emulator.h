// Host C++ stand-ins for the CUDA built-ins our kernels use, so that tests can run the
// kernels of src/convlab/_gpu/kernels/*.cu on a machine without a GPU (see cuda_emulator.py).
//
// What it models: the launch geometry (gridDim, blockDim, blockIdx, threadIdx), block-shared
// memory, __syncthreads, and warp-collective calls: a block whose source synchronises runs
// each of its threads as a fiber (ucontext) on one OS thread, switched at every barrier, so
// the code before a barrier has run in every thread of the block before any thread goes past
// it. A warp-collective call (wmma, __syncwarp) is a barrier of the 32 lanes of its warp.
// Blocks are spread over the cores (OpenMP); within a block, threads between barriers run
// one at a time. Both go in a shuffled order (a correct kernel cannot depend on the order).
// What it does not model: the warps' lock-step execution otherwise, the memory model of
// concurrent threads (a race stays invisible), timing, and device limits other than the
// launch dimensions.
#pragma once

#ifdef CONVLAB_EMU_SCAN
// Preprocessing pass that lists the entry points: keep the markers, expand everything else.
#define __global__ CONVLAB_EMU_GLOBAL
#define __launch_bounds__(...) CONVLAB_EMU_BOUNDS(__VA_ARGS__)
#define __device__
#define __forceinline__
#define __shared__
#define __align__(...)
#else

#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <ucontext.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// Shared memory is per block; an OS thread runs one block at a time, so one copy per OS
// thread serves all.
#define __shared__ static thread_local
#define __restrict__ __restrict
#define __align__(n) __attribute__((aligned(n)))

struct uint3 { unsigned int x, y, z; };
struct dim3 { unsigned int x, y, z; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) double4 { double x, y, z, w; };

// The launch geometry of the thread now running on this OS thread.
inline thread_local uint3 threadIdx, blockIdx;
inline thread_local dim3 blockDim, gridDim;

// CUDA's min / max overloads accept mixed argument types (the usual arithmetic conversions).
template <typename A, typename B>
inline std::common_type_t<A, B> min(A a, B b) { return b < a ? b : a; }
template <typename A, typename B>
inline std::common_type_t<A, B> max(A a, B b) { return a < b ? b : a; }

inline double __longlong_as_double(long long bits)
{
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
}

namespace convlab_emu {

// A fiber starts once through its ucontext; every later switch is _setjmp / _longjmp, which
// (unlike swapcontext) makes no system call: a GEMM tile crosses thousands of barriers.
struct Fiber {
    ucontext_t context;
    jmp_buf resume;
    std::vector<char> stack;
    uint3 index;
    int state;  // 0 runnable, 1 waiting at __syncthreads, 2 finished, 3 at a warp-collective call
    bool started;
};

inline thread_local jmp_buf scheduler;
inline thread_local Fiber *current = nullptr;
inline bool fiber_mode = false;
inline int failed = 0;
inline void (*body)(void *) = nullptr;      // the kernel call with its unpacked arguments
inline void *body_data = nullptr;
inline char *error_text = nullptr;
inline int error_size = 0;

inline void fail(const char *message)
{
#pragma omp critical(convlab_emu_fail)
    if (!failed) {
        failed = 1;
        if (error_text && error_size > 0) std::snprintf(error_text, error_size, "%s", message);
    }
}

inline void fiber_main()
{
    body(body_data);
    current->state = 2;
    _longjmp(scheduler, 1);
}

}  // namespace convlab_emu

inline void __syncthreads()
{
    using namespace convlab_emu;
    if (!fiber_mode) {
        // the launcher runs fibers for any source that names __syncthreads, so this is a bug
        // of the emulator itself; stopping beats returning wrong numbers
        std::fputs("cuda emulator: __syncthreads outside a fiber\n", stderr);
        std::abort();
    }
    current->state = 1;
    if (!_setjmp(current->resume)) _longjmp(scheduler, 1);
}

namespace convlab_emu {

// A visiting order of 0..n-1 that is not 0, 1, 2, ...: i -> (i * step + offset) mod n with
// step coprime to n.
struct Shuffle {
    unsigned long long n, step, offset;
    Shuffle(unsigned long long n_, unsigned long long seed) : n(n_), step(1), offset(0)
    {
        if (n < 2) return;
        offset = (seed * 0x9E3779B97F4A7C15ULL) % n;
        step = (seed % n) | 1;
        auto gcd = [](unsigned long long a, unsigned long long b) {
            while (b) { unsigned long long t = a % b; a = b; b = t; }
            return a;
        };
        while (gcd(step, n) != 1) step += 2;
        step %= n;
        if (step == 0) step = 1;
    }
    unsigned long long operator()(unsigned long long i) const
    {
        return n < 2 ? i : (i * step + offset) % n;
    }
};

inline uint3 unflatten(unsigned long long i, const dim3 &d)
{
    return {unsigned(i % d.x), unsigned(i / d.x % d.y), unsigned(i / (1ULL * d.x * d.y))};
}

// Warp-collective calls (wmma, __syncwarp). The emulator has no warps: a block's threads run
// one at a time. What it can check is the contract: every lane of a warp makes the same
// sequence of collective calls with the same pointers and leading dimensions. Each warp
// keeps the sequence of its first lane to get there; the others must match it call by call,
// and at the end of the block every lane must have made as many calls as the log holds.
struct WarpCall {
    int op;
    const void *pointer;
    unsigned ldm;
    int layout;
};
inline thread_local std::vector<std::vector<WarpCall>> warp_logs;  // per warp of the block
inline thread_local std::vector<unsigned> lane_calls;              // per thread of the block
inline thread_local bool warp_calls_made = false;

inline unsigned long long linear_thread()
{
    return threadIdx.x + 1ULL * blockDim.x * (threadIdx.y + 1ULL * blockDim.y * threadIdx.z);
}

inline void warps_begin(unsigned long long threads)
{
    if (!warp_calls_made && lane_calls.size() == threads) return;  // nothing to clear
    warp_logs.assign((threads + 31) / 32, {});
    lane_calls.assign(threads, 0);
    warp_calls_made = false;
}

inline void warp_call(const char *name, int op, const void *pointer, unsigned ldm, int layout)
{
    // a warp barrier first: no lane makes call i before every lane of its warp has got
    // there, so what the lanes did before (stores a load reads, loads a store overwrites) is
    // done, as when a warp executes the call together
    if (fiber_mode) {
        current->state = 3;
        if (!_setjmp(current->resume)) _longjmp(scheduler, 1);
    }
    const unsigned long long t = linear_thread();
    if (t >= lane_calls.size()) {  // a kernel called outside run_block / run_grid
        fail("cuda emulator: a warp-collective call outside a launch");
        return;
    }
    warp_calls_made = true;
    std::vector<WarpCall> &log = warp_logs[t / 32];
    const unsigned i = lane_calls[t]++;
    const WarpCall call{op, pointer, ldm, layout};
    if (i == log.size()) {
        log.push_back(call);
        return;
    }
    const WarpCall &first = log[i];
    if (first.op != op || first.pointer != pointer || first.ldm != ldm || first.layout != layout) {
        char text[256];
        std::snprintf(text, sizeof text,
                      "lanes of one warp made different warp-collective calls (call %u of "
                      "lane %llu is %s; every lane of a warp must make the same call with the "
                      "same pointer, ldm and layout)",
                      i, t % 32, name);
        fail(text);
    }
}

inline void warps_end()
{
    if (!warp_calls_made) return;
    for (unsigned long long t = 0; t < lane_calls.size(); t++) {
        if (lane_calls[t] != warp_logs[t / 32].size()) {
            char text[256];
            std::snprintf(text, sizeof text,
                          "lane %llu of warp %llu made %u warp-collective calls, another lane "
                          "%zu (wmma and __syncwarp need every lane of the warp)",
                          t % 32, t / 32, lane_calls[t], warp_logs[t / 32].size());
            fail(text);
            return;
        }
    }
}

// Runs every thread of one block (fibers switched at each barrier); an error goes to fail().
inline void run_block(const uint3 &block_index, unsigned long long threads, unsigned seed)
{
    blockIdx = block_index;
    // kept between launches: allocating (and zeroing) the stacks each time costs more than
    // a small kernel; 128 KiB holds the kernels' register tiles and local arrays
    static thread_local std::vector<Fiber> pool;
    static thread_local ucontext_t blank;
    if (pool.size() < threads) {
        pool = std::vector<Fiber>(threads);
        for (auto &f : pool) f.stack.resize(128 << 10);
        getcontext(&blank);
    }
    for (unsigned long long t = 0; t < threads; t++) {
        Fiber &f = pool[t];
        f.index = unflatten(t, blockDim);
        f.state = 0;
        f.started = false;
        f.context = blank;
        f.context.uc_stack.ss_sp = f.stack.data();
        f.context.uc_stack.ss_size = f.stack.size();
        f.context.uc_link = nullptr;
        makecontext(&f.context, fiber_main, 0);
    }
    warps_begin(threads);
    for (unsigned long long round = 0;; round++) {
        // run every runnable thread up to its next barrier (block or warp), in a shuffled order
        const Shuffle order(threads, seed + 2 + round);
        for (unsigned long long t = 0; t < threads; t++) {
            Fiber &f = pool[order(t)];
            if (f.state != 0) continue;
            current = &f;
            threadIdx = f.index;
            if (!_setjmp(scheduler)) {
                if (f.started) _longjmp(f.resume, 1);
                f.started = true;
                setcontext(&f.context);
            }
        }
        unsigned long long finished = 0, at_warp = 0;
        for (unsigned long long t = 0; t < threads; t++) {
            finished += pool[t].state == 2;
            at_warp += pool[t].state == 3;
        }
        if (finished == threads) {
            warps_end();
            return;
        }
        // a warp whose every running lane waits at a warp-collective call goes on
        bool released = false;
        for (unsigned long long w0 = 0; w0 < threads; w0 += 32) {
            const unsigned long long w1 = w0 + 32 < threads ? w0 + 32 : threads;
            bool all = true, any = false;
            for (unsigned long long t = w0; t < w1; t++) {
                all = all && (pool[t].state == 3 || pool[t].state == 2);
                any = any || pool[t].state == 3;
            }
            if (all && any) {
                for (unsigned long long t = w0; t < w1; t++)
                    if (pool[t].state == 3) pool[t].state = 0;
                released = true;
            }
        }
        if (released) continue;
        if (at_warp) {
            fail("a warp-collective call (wmma, __syncwarp) not reached by every lane of its "
                 "warp (others wait at __syncthreads)");
            return;
        }
        if (finished) {
            fail("__syncthreads() not reached by every thread of a block (some threads "
                 "returned while others wait at the barrier: undefined behaviour on a GPU)");
            return;
        }
        for (unsigned long long t = 0; t < threads; t++) pool[t].state = 0;  // past the barrier
    }
}

// Runs body(data) once per thread of the grid; returns 0, or 1 with error_text set.
inline int run_grid(const unsigned *grid, const unsigned *block, int fibers, unsigned seed,
                    int cores)
{
    const dim3 grid_dim{grid[0], grid[1], grid[2]}, block_dim{block[0], block[1], block[2]};
    const long long blocks = 1LL * grid[0] * grid[1] * grid[2];
    const unsigned long long threads = 1ULL * block[0] * block[1] * block[2];
    const Shuffle block_order(blocks, seed), thread_order(threads, seed + 1);
    fiber_mode = fibers != 0;
    failed = 0;
    // its own thread count: convlab.set_num_threads sets the process's OpenMP default
#pragma omp parallel num_threads(cores)
    {
        gridDim = grid_dim;
        blockDim = block_dim;
#pragma omp for schedule(dynamic, 1)
        for (long long b = 0; b < blocks; b++) {
            if (failed) continue;
            const uint3 index = unflatten(block_order(b), grid_dim);
            if (fiber_mode) {
                run_block(index, threads, seed);
                continue;
            }
            blockIdx = index;
            warps_begin(threads);
            for (unsigned long long t = 0; t < threads; t++) {
                threadIdx = unflatten(thread_order(t), block_dim);
                body(body_data);
            }
            warps_end();
        }
    }
    return failed;
}

template <typename T> T load_arg(void *p)
{
    T value;
    std::memcpy(&value, p, sizeof(T));
    return value;
}

template <typename... A> struct Call {
    void (*kernel)(A...);
    std::tuple<A...> args;
    static void run(void *self)
    {
        auto *c = static_cast<Call *>(self);
        std::apply(c->kernel, c->args);
    }
};

template <typename... A, std::size_t... I>
std::tuple<A...> unpack(void **args, std::index_sequence<I...>)
{
    return std::tuple<A...>(load_arg<A>(args[I])...);
}

template <typename... A>
int launch(void (*kernel)(A...), const unsigned *grid, const unsigned *block, void **args,
           int fibers, unsigned seed, int cores, char *error, int error_len)
{
    Call<A...> call{kernel, unpack<A...>(args, std::index_sequence_for<A...>{})};
    body = &Call<A...>::run;
    body_data = &call;
    error_text = error;
    error_size = error_len;
    return run_grid(grid, block, fibers, seed, cores);
}

// Parameter types as the launcher checks them: i32 i64 u8 f32 f64 ..., '*' for pointers.
template <typename T> struct Code { static std::string get() { return "?"; } };
template <> struct Code<bool> { static std::string get() { return "b1"; } };
template <> struct Code<char> { static std::string get() { return "i8"; } };
template <> struct Code<signed char> { static std::string get() { return "i8"; } };
template <> struct Code<unsigned char> { static std::string get() { return "u8"; } };
template <> struct Code<short> { static std::string get() { return "i16"; } };
template <> struct Code<unsigned short> { static std::string get() { return "u16"; } };
template <> struct Code<int> { static std::string get() { return "i32"; } };
template <> struct Code<unsigned int> { static std::string get() { return "u32"; } };
template <> struct Code<long> { static std::string get() { return "i64"; } };
template <> struct Code<unsigned long> { static std::string get() { return "u64"; } };
template <> struct Code<long long> { static std::string get() { return "i64"; } };
template <> struct Code<unsigned long long> { static std::string get() { return "u64"; } };
template <> struct Code<float> { static std::string get() { return "f32"; } };
template <> struct Code<double> { static std::string get() { return "f64"; } };
template <typename T> struct Code<T *> {
    static std::string get() { return "*" + Code<std::remove_cv_t<T>>::get(); }
};

template <typename... A> std::string signature(void (*)(A...))
{
    std::string s;
    ((s += Code<A>::get() + ","), ...);
    return s;
}

}  // namespace convlab_emu

// -- bf16 and the wmma fragment API (mma.h), as the tensor-core GEMM uses them -------------
//
// __nv_bfloat16 is the upper half of a float32; __float2bfloat16 rounds to nearest even.
// nvcuda::wmma models the fragment API with one difference a correct kernel cannot see: a
// fragment holds its whole tile in every lane (on a GPU each lane holds a share, in an order
// the API leaves unspecified), so num_elements is the tile's size and a kernel may only touch
// x[] element-wise, the same way for every element, as CUDA requires. Loads, stores and
// mma_sync are warp-collective: every lane must call them with the same arguments
// (warp_call checks), and then every lane computes the whole tile. Pointers must be 32-byte
// aligned and ldm a multiple of 16 bytes, as on the GPU. Inputs of a TF32 product are taken
// with their low 13 mantissa bits dropped (a value not passed through __float_to_tf32 loses
// them); products of TF32 or bf16 inputs are exact in float32 and are added to the float32
// accumulator one at a time along k.
struct __nv_bfloat16 {
    unsigned short __x;
};

inline __nv_bfloat16 __float2bfloat16(float f)
{
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u)  // NaN stays NaN (quiet)
        return __nv_bfloat16{static_cast<unsigned short>((bits >> 16) | 0x0040u)};
    bits += 0x7FFFu + ((bits >> 16) & 1u);  // round to nearest, ties to even
    return __nv_bfloat16{static_cast<unsigned short>(bits >> 16)};
}

inline float __bfloat162float(__nv_bfloat16 h)
{
    const uint32_t bits = static_cast<uint32_t>(h.__x) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

inline void __syncwarp(unsigned mask = 0xFFFFFFFFu)
{
    // lanes run one at a time here, so there is nothing to wait for; the call is still
    // warp-collective (every lane must make it)
    convlab_emu::warp_call("__syncwarp", 1, nullptr, mask, 0);
}

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
namespace precision {
struct tf32 {};
}  // namespace precision

inline float __float_to_tf32(float f)
{
    // cvt.rna.tf32.f32: round to nearest, ties away from zero, to a 10-bit mantissa (the
    // value stays a float32 whose low 13 bits are zero)
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7F800000u) == 0x7F800000u) return f;  // inf and NaN as they are
    bits = (bits + 0x1000u) & 0xFFFFE000u;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

template <typename T> struct Storage { typedef T type; };
template <> struct Storage<precision::tf32> { typedef float type; };

template <typename Use, int M, int N, int K> struct Shape;
template <int M, int N, int K> struct Shape<matrix_a, M, N, K> {
    static constexpr int rows = M, cols = K;
};
template <int M, int N, int K> struct Shape<matrix_b, M, N, K> {
    static constexpr int rows = K, cols = N;
};
template <int M, int N, int K> struct Shape<accumulator, M, N, K> {
    static constexpr int rows = M, cols = N;
};

// the shapes sm_80 offers for the element types emulated here
template <typename T, int M, int N, int K> constexpr bool valid_shape()
{
    if (std::is_same<T, precision::tf32>::value) return M == 16 && N == 16 && K == 8;
    if (std::is_same<T, __nv_bfloat16>::value)
        return K == 16 && ((M == 16 && N == 16) || (M == 32 && N == 8) || (M == 8 && N == 32));
    if (std::is_same<T, float>::value)
        return (M == 16 && N == 16 && (K == 8 || K == 16)) ||
               (K == 16 && ((M == 32 && N == 8) || (M == 8 && N == 32)));
    return false;
}

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
    static_assert(valid_shape<T, M, N, K>(), "wmma: no fragment of this shape and type");
    static_assert(std::is_same<Use, accumulator>::value == std::is_same<Layout, void>::value,
                  "wmma: matrix_a / matrix_b fragments need a layout, accumulators none");
    static_assert(!std::is_same<Use, accumulator>::value || std::is_same<T, float>::value,
                  "wmma: the emulated accumulators are float");
    typedef typename Storage<T>::type element_type;
    static constexpr int rows = Shape<Use, M, N, K>::rows, cols = Shape<Use, M, N, K>::cols;
    static constexpr int num_elements = rows * cols;
    element_type x[num_elements];
};

inline bool check_matrix_pointer(const char *name, const void *p, unsigned ldm, size_t size)
{
    if (reinterpret_cast<uintptr_t>(p) % 32) {
        convlab_emu::fail("wmma: a load_matrix_sync / store_matrix_sync pointer is not "
                          "256-bit (32-byte) aligned");
        return false;
    }
    if (ldm * size % 16) {
        convlab_emu::fail("wmma: ldm is not a multiple of 16 bytes (8 half / bf16 or 4 float "
                          "elements)");
        return false;
    }
    (void)name;
    return true;
}

template <typename Use, int M, int N, int K, typename T, typename Layout, typename P>
inline void load_matrix_sync(fragment<Use, M, N, K, T, Layout> &f, const P *p, unsigned ldm)
{
    typedef fragment<Use, M, N, K, T, Layout> F;
    static_assert(!std::is_same<Use, accumulator>::value,
                  "wmma: an accumulator's load_matrix_sync takes a layout_t");
    static_assert(std::is_same<P, typename F::element_type>::value,
                  "wmma: the pointer's element type is not the fragment's");
    const int col = std::is_same<Layout, col_major>::value;
    convlab_emu::warp_call("load_matrix_sync", 2, p, ldm, col);
    if (!check_matrix_pointer("load_matrix_sync", p, ldm, sizeof(P))) return;
    for (int r = 0; r < F::rows; r++)
        for (int c = 0; c < F::cols; c++)
            f.x[r * F::cols + c] = col ? p[c * ldm + r] : p[r * ldm + c];
}

template <int M, int N, int K>
inline void load_matrix_sync(fragment<accumulator, M, N, K, float> &f, const float *p,
                             unsigned ldm, layout_t layout)
{
    typedef fragment<accumulator, M, N, K, float> F;
    convlab_emu::warp_call("load_matrix_sync", 3, p, ldm, layout);
    if (!check_matrix_pointer("load_matrix_sync", p, ldm, sizeof(float))) return;
    for (int r = 0; r < F::rows; r++)
        for (int c = 0; c < F::cols; c++)
            f.x[r * F::cols + c] = layout == mem_col_major ? p[c * ldm + r] : p[r * ldm + c];
}

template <int M, int N, int K>
inline void store_matrix_sync(float *p, const fragment<accumulator, M, N, K, float> &f,
                              unsigned ldm, layout_t layout)
{
    typedef fragment<accumulator, M, N, K, float> F;
    convlab_emu::warp_call("store_matrix_sync", 4, p, ldm, layout);
    if (!check_matrix_pointer("store_matrix_sync", p, ldm, sizeof(float))) return;
    for (int r = 0; r < F::rows; r++)
        for (int c = 0; c < F::cols; c++)
            (layout == mem_col_major ? p[c * ldm + r] : p[r * ldm + c]) = f.x[r * F::cols + c];
}

template <typename Use, int M, int N, int K, typename T, typename Layout, typename V>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout> &f, const V &v)
{
    convlab_emu::warp_call("fill_fragment", 5, nullptr, 0, 0);
    for (int i = 0; i < f.num_elements; i++)
        f.x[i] = static_cast<typename fragment<Use, M, N, K, T, Layout>::element_type>(v);
}

inline float product_input(float v)
{
    // the tensor cores read a TF32 operand's upper 19 bits
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    bits &= 0xFFFFE000u;
    std::memcpy(&v, &bits, sizeof v);
    return v;
}
inline float product_input(__nv_bfloat16 v) { return __bfloat162float(v); }

template <int M, int N, int K, typename T, typename LA, typename LB>
inline void mma_sync(fragment<accumulator, M, N, K, float> &d,
                     const fragment<matrix_a, M, N, K, T, LA> &a,
                     const fragment<matrix_b, M, N, K, T, LB> &b,
                     const fragment<accumulator, M, N, K, float> &c)
{
    convlab_emu::warp_call("mma_sync", 6, nullptr, 0, 0);
    float out[M * N];  // d may be c
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float sum = c.x[m * N + n];
            for (int k = 0; k < K; k++)
                sum += product_input(a.x[m * K + k]) * product_input(b.x[k * N + n]);
            out[m * N + n] = sum;
        }
    for (int i = 0; i < M * N; i++) d.x[i] = out[i];
}

}  // namespace wmma
}  // namespace nvcuda

#define CONVLAB_EMU_EXPORT(NAME)                                                              \
    extern "C" int convlab_emu_launch_##NAME(const unsigned *grid, const unsigned *block,      \
                                             void **args, int fibers, unsigned seed,          \
                                             int cores, char *error, int error_len)           \
    {                                                                                         \
        return convlab_emu::launch(NAME, grid, block, args, fibers, seed, cores, error,       \
                                   error_len);                                                \
    }                                                                                         \
    extern "C" const char *convlab_emu_signature_##NAME()                                     \
    {                                                                                         \
        static const std::string s = convlab_emu::signature(NAME);                            \
        return s.c_str();                                                                     \
    }

#endif  // CONVLAB_EMU_SCAN
