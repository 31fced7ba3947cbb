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
    /* limit > 0: serve blocks up to limit bytes from the heap (and trim it only above twice
     * that), so freed large blocks are reused with their pages mapped; limit == 0: glibc's
     * documented defaults (128 KiB for both thresholds). */
    static int convlab_large_block_limit(size_t limit) {
        size_t mmap_at = limit ? limit : 128 * 1024, trim_at = limit ? 2 * limit : 128 * 1024;
        return mallopt(M_MMAP_THRESHOLD, (int)mmap_at) && mallopt(M_TRIM_THRESHOLD, (int)trim_at);
    }
    #else
    static int convlab_large_block_limit(size_t limit) { (void)limit; return 0; }
    #endif
    """
    int convlab_large_block_limit(size_t limit)


def set_large_block_limit(size_t limit):
    """Serve allocations up to ``limit`` bytes from the reusable heap, or restore the C
    library's defaults with 0 (glibc only; see ``convlab.set_allocator_policy``).

    Returns True when the allocator accepted the setting.
    """
    return bool(convlab_large_block_limit(limit))
