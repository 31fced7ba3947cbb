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
