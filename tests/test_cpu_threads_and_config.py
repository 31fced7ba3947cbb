"""Thread control (OpenMP, OMP_NUM_THREADS, threadpoolctl), show_config and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import convlab
from convlab._cpu import _gemm, _runtime


def run_python(code, **env):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}
    )


def test_set_and_get_num_threads():
    before = convlab.get_num_threads()
    try:
        convlab.set_num_threads(1)
        assert convlab.get_num_threads() == 1
        convlab.set_num_threads(3)
        # a build without OpenMP runs every kernel on the calling thread, whatever is asked
        assert convlab.get_num_threads() == (3 if _runtime.openmp_enabled() else 1)
    finally:
        convlab.set_num_threads(before)


@pytest.mark.parametrize(
    "value,error",
    [(0, ValueError), (-2, ValueError), (1.5, TypeError), ("2", TypeError), (True, TypeError)],
)
def test_bad_thread_counts_are_clear_errors(value, error):
    with pytest.raises(error, match="n: expected"):
        convlab.set_num_threads(value)


def test_omp_num_threads_is_respected():
    result = run_python("import convlab; print(convlab.get_num_threads())", OMP_NUM_THREADS="1")
    assert result.stdout.strip() == "1", result.stderr


def test_default_is_the_cpus_we_may_run_on():
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    result = subprocess.run(
        [sys.executable, "-c", "import convlab; print(convlab.get_num_threads())"],
        capture_output=True,
        text=True,
        env=env,
    )
    if not _runtime.openmp_enabled():
        pytest.skip("serial build")
    assert int(result.stdout) == len(os.sched_getaffinity(0))


def test_threadpoolctl_sees_and_limits_our_pool():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not _runtime.openmp_enabled():
        pytest.skip("serial build: no OpenMP pool")
    assert _gemm.get_isa()  # our extension (and its OpenMP runtime) is loaded
    apis = {info["user_api"] for info in threadpoolctl.threadpool_info()}
    assert "openmp" in apis
    before = convlab.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert convlab.get_num_threads() == 1
    assert convlab.get_num_threads() == before


def test_workspace_limit():
    before = convlab.get_workspace_limit()
    assert before == 128 * 2**20  # the documented default
    try:
        convlab.set_workspace_limit(8 * 2**20)
        assert convlab.get_workspace_limit() == 8 * 2**20
        with pytest.raises(ValueError, match="nbytes: expected at least 1 MiB"):
            convlab.set_workspace_limit(1000)
        with pytest.raises(TypeError, match="nbytes: expected an int"):
            convlab.set_workspace_limit(2.5e6)
    finally:
        convlab.set_workspace_limit(before)


def test_show_config_reports_build_and_runtime(capsys):
    convlab.show_config()
    text = capsys.readouterr().out
    for needle in (
        "convlab " + convlab.__version__,
        "build flags: ",
        "-O3",
        "OpenMP: ",
        "CPU kernels: " + convlab.get_backend("cpu").isa,
        "threads: ",
        "GPU: ",
    ):
        assert needle in text
    assert "-ffast-math" not in text


def test_cli_info():
    result = subprocess.run(
        [sys.executable, "-m", "convlab.cli", "info"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "OpenMP" in result.stdout
    result = subprocess.run([sys.executable, "-m", "convlab.cli"], capture_output=True, text=True)
    assert result.returncode == 2 and "usage" in result.stderr


def test_kernels_agree_across_thread_counts(rng):
    """Forward conv and pooling split work without changing any sum's order: bit-identical."""
    cpu = convlab.get_backend("cpu")
    x = rng.standard_normal((6, 8, 13, 20)).astype(np.float32)
    w = rng.standard_normal((16, 8, 5, 3)).astype(np.float32)
    results = []
    before = convlab.get_num_threads()
    try:
        for n in (1, 2, 3):
            convlab.set_num_threads(n)
            results.append(
                (cpu.conv2d_forward(x, w, None, 1, (2, 1)), cpu.max_pool2d(x, (2, 1))[0])
            )
    finally:
        convlab.set_num_threads(before)
    for other in results[1:]:
        np.testing.assert_array_equal(results[0][0], other[0])
        np.testing.assert_array_equal(results[0][1], other[1])


def test_allocator_policy_is_an_explicit_setting():
    before = convlab.get_allocator_policy()
    try:
        for policy in ("system", "reuse"):
            convlab.set_allocator_policy(policy)
            assert convlab.get_allocator_policy() == policy
    finally:
        convlab.set_allocator_policy(before)
    with pytest.raises(ValueError, match=r"policy: expected one of 'reuse', 'system', got 'x'"):
        convlab.set_allocator_policy("x")


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, "reuse"),
        ({"CONVLAB_ALLOCATOR": "system"}, "system"),
        ({"CONVLAB_KEEP_LARGE_BLOCKS": "0"}, "system"),
    ],
)
def test_allocator_policy_starts_from_the_environment_and_import_leaves_the_heap(env, expected):
    code = (
        "import convlab, convlab._settings as s; assert s._allocator_policy is None, "
        "'import changed the heap'; convlab.zeros(2) + 1; "
        "print(s._allocator_policy, convlab.get_allocator_policy())"
    )
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CONVLAB_ALLOCATOR", "CONVLAB_KEEP_LARGE_BLOCKS")
    }
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**clean, **env}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [expected, expected]
