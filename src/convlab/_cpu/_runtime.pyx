# cython: language_level=3
"""Thread count and build facts of the compiled CPU kernels."""
from convlab._cpu._openmp cimport (CONVLAB_OPENMP, omp_get_max_threads,
                                   omp_set_num_threads)

cdef extern from *:
    """
    #ifndef CONVLAB_BUILD_FLAGS
    #define CONVLAB_BUILD_FLAGS "unknown"
    #endif
    #if defined(__clang__)
    #define CONVLAB_COMPILER "clang " __clang_version__
    #elif defined(__GNUC__)
    #define CONVLAB_COMPILER "gcc " __VERSION__
    #else
    #define CONVLAB_COMPILER "unknown"
    #endif
    """
    const char* CONVLAB_BUILD_FLAGS
    const char* CONVLAB_COMPILER


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(CONVLAB_OPENMP)


def get_num_threads():
    """Threads the next kernel call will use (OpenMP's ``max_threads``)."""
    return omp_get_max_threads()


def set_num_threads(int n):
    """Set the OpenMP thread count for kernels called from this thread."""
    omp_set_num_threads(n)


def build_flags():
    """Compiler flags the extensions were built with."""
    return CONVLAB_BUILD_FLAGS.decode()


def compiler():
    """Compiler name and version used for the extensions."""
    return CONVLAB_COMPILER.decode()


cdef extern from *:
    """
    #if defined(__GLIBC__)
    #include <malloc.h>
    /* Large arrays (a chart CNN activation is 10-40 MB) are above glibc's mmap threshold, so
     * each one is a fresh mapping whose pages fault in on first touch, every training step:
     * ~3 ms of kernel time per 40 MB. Serving them from the heap lets freed blocks be reused
     * with their pages already mapped (PyTorch gets the same effect from its allocator). */
    static int convlab_keep_large_blocks(size_t limit) {
        return mallopt(M_MMAP_THRESHOLD, (int)limit) && mallopt(M_TRIM_THRESHOLD, (int)(2 * limit));
    }
    #else
    static int convlab_keep_large_blocks(size_t limit) { (void)limit; return 0; }
    #endif
    """
    int convlab_keep_large_blocks(size_t limit)


def keep_large_blocks(size_t limit=512 * 1024 * 1024):
    """Serve allocations up to ``limit`` bytes from the reusable heap (glibc only).

    Returns True when the allocator accepted the setting.
    """
    return bool(convlab_keep_large_blocks(limit))
