"""Build the Cython + OpenMP extensions of convlab.

Environment switches (all optional):
    CONVLAB_NO_OPENMP=1  build without OpenMP (kernels run on one thread).
    CONVLAB_NATIVE=1     add -march=native (fastest on this machine; the wheel then only runs on
                         CPUs with the same instruction sets). Without it the wheel is portable
                         and still uses AVX2 / AVX-512 through run-time dispatch.
    CONVLAB_SANITIZE=1   build with AddressSanitizer and UndefinedBehaviorSanitizer (-O1, frame
                         pointers, debug info), to run the tests under them: Python itself is
                         not instrumented, so load the runtime first, e.g.
                         ``LD_PRELOAD="$(gcc -print-file-name=libasan.so)
                         $(gcc -print-file-name=libubsan.so)" ASAN_OPTIONS=detect_leaks=0
                         python -m pytest`` (see "Fuzzing and sanitizers" in
                         docs/backends.rst). Slow: for checking only.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CPU_MODULES = ["_runtime", "_gemm", "_im2col", "_conv", "_pool", "_binary", "_activation",
               "_norm", "_winograd", "_grouped", "_global_pool", "_rnn", "_norm_pool",
               "_xent"]
CYTHON_DIRECTIVES = {"language_level": "3", "embedsignature": True}
OPENMP_PROBE = """
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : 1;
}
"""


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


class BuildExt(build_ext):
    """build_ext that adds optimisation and OpenMP flags the compiler actually accepts."""

    def finalize_options(self) -> None:
        super().finalize_options()
        # one extension per core at a time (pip gives no -j): the build is most of an install
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self) -> None:
        # -fno-trapping-math: a float compare may then be if-converted into a vector select
        # (the elementwise kernels' `x > 0 ? ...` loops stayed scalar without it). Results are
        # unchanged; only the floating-point exception flags, which nothing reads, may differ.
        compile_args = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-Wno-unused-function"]
        link_args: list[str] = []
        if _flag("CONVLAB_SANITIZE"):
            sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                        "-fno-omit-frame-pointer", "-g"]
            compile_args = ["-O1"] + compile_args[1:] + sanitize
            link_args += sanitize
        if _flag("CONVLAB_NATIVE"):
            compile_args.append("-march=native")
        if not _flag("CONVLAB_NO_OPENMP"):
            if self._openmp_works():
                compile_args.append("-fopenmp")
                link_args.append("-fopenmp")
            else:
                print("convlab: the compiler does not support OpenMP; building serial kernels",
                      file=sys.stderr)
        described = " ".join(compile_args)
        self._rebuild_if_flags_changed(described)
        for ext in self.extensions:
            ext.extra_compile_args = list(ext.extra_compile_args) + compile_args
            ext.extra_link_args = list(ext.extra_link_args) + link_args
            ext.define_macros = list(ext.define_macros) + [
                ("CONVLAB_BUILD_FLAGS", f'"{described}"')]
        super().build_extensions()

    def _rebuild_if_flags_changed(self, flags: str) -> None:
        # distutils only compares timestamps: objects built with other flags (say, before
        # CONVLAB_NO_OPENMP=1) would be linked again unless we force a rebuild.
        stamp = os.path.join(self.build_temp, "convlab-build-flags.txt")
        previous = open(stamp).read() if os.path.exists(stamp) else None
        if previous != flags:
            self.force = True
            os.makedirs(self.build_temp, exist_ok=True)
            with open(stamp, "w") as handle:
                handle.write(flags)

    def _openmp_works(self) -> bool:
        tmp = tempfile.mkdtemp(prefix="convlab-omp-")
        try:
            source = os.path.join(tmp, "probe.c")
            with open(source, "w") as handle:
                handle.write(OPENMP_PROBE)
            objects = self.compiler.compile([source], output_dir=tmp,
                                            extra_postargs=["-fopenmp"])
            self.compiler.link_executable(objects, "probe", output_dir=tmp,
                                          extra_postargs=["-fopenmp"])
            return True
        except Exception:  # CompileError, LinkError or a missing compiler driver
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


extensions = [
    Extension(
        f"convlab._cpu.{name}",
        [f"src/convlab/_cpu/{name}.pyx"],
        include_dirs=["src/convlab/_cpu/include"],
    )
    for name in CPU_MODULES
]

setup(
    ext_modules=cythonize(extensions, compiler_directives=CYTHON_DIRECTIVES,
                          include_path=["src"], nthreads=os.cpu_count() or 1),
    cmdclass={"build_ext": BuildExt},
)
