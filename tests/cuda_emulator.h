// Host C++ stand-ins for the CUDA built-ins our kernels use, so that tests can run the
// kernels of src/convlab/_gpu/kernels/*.cu on a machine without a GPU (see cuda_emulator.py).
//
// What it models: the launch geometry (gridDim, blockDim, blockIdx, threadIdx), block-shared
// memory, and __syncthreads: a block whose source synchronises runs each of its threads as a
// fiber (ucontext) on one OS thread, switched at every barrier, so the code before a barrier
// has run in every thread of the block before any thread goes past it. Blocks are spread over
// the cores (OpenMP); within a block, threads between barriers run one at a time. Both go in
// a shuffled order (a correct kernel cannot depend on the order). What it does not model: warps, the memory model of concurrent threads (a race
// stays invisible), timing, and device limits other than the launch dimensions.
#pragma once

#ifdef CONVLAB_EMU_SCAN
// Preprocessing pass that lists the entry points: keep the markers, expand everything else.
#define __global__ CONVLAB_EMU_GLOBAL
#define __launch_bounds__(...) CONVLAB_EMU_BOUNDS(__VA_ARGS__)
#define __device__
#define __forceinline__
#define __shared__
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
    int state;                              // 0 runnable, 1 waiting at a barrier, 2 finished
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
    for (unsigned long long round = 0;; round++) {
        const Shuffle order(threads, seed + 2 + round);
        for (unsigned long long t = 0; t < threads; t++) {
            Fiber &f = pool[order(t)];
            if (f.state == 2) continue;
            f.state = 0;
            current = &f;
            threadIdx = f.index;
            if (!_setjmp(scheduler)) {
                if (f.started) _longjmp(f.resume, 1);
                f.started = true;
                setcontext(&f.context);
            }
        }
        unsigned long long finished = 0;
        for (unsigned long long t = 0; t < threads; t++) finished += pool[t].state == 2;
        if (finished == threads) return;
        if (finished) {
            fail("__syncthreads() not reached by every thread of a block (some threads "
                 "returned while others wait at the barrier: undefined behaviour on a GPU)");
            return;
        }
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
            for (unsigned long long t = 0; t < threads; t++) {
                threadIdx = unflatten(thread_order(t), block_dim);
                body(body_data);
            }
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
