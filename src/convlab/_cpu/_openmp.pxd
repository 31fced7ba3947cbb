# OpenMP shim (scikit-learn's pattern): without OpenMP the pragmas Cython emits for prange are
# ignored by the compiler and these stand-ins make the runtime calls serial no-ops, so the
# package still builds and runs on one thread.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define CONVLAB_OPENMP 1
    #else
    #define CONVLAB_OPENMP 0
    static inline int omp_get_max_threads(void) { return 1; }
    static inline void omp_set_num_threads(int n) { (void)n; }
    static inline int omp_get_thread_num(void) { return 0; }
    #endif
    """
    bint CONVLAB_OPENMP
    int omp_get_max_threads() noexcept nogil
    void omp_set_num_threads(int n) noexcept nogil
    int omp_get_thread_num() noexcept nogil
