"""The CUDA emulator (``cuda_emulator.py``) that runs the GPU backend's kernels on the CPU in
CI: it must run correct kernels correctly and stop the launches a GPU would get wrong."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import cuda_emulator as emu

pytestmark = pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None, reason="no C++ compiler"
)

SOURCE = r"""
// block sums by a shared-memory tree (barriers), as the histogram kernel
extern "C" __global__ void __launch_bounds__(128) block_sums(const float *x, float *sums,
                                                             long long n)
{
    __shared__ float part[128];
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    part[threadIdx.x] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) sums[blockIdx.x] = part[0];
}

// a barrier only some threads reach
extern "C" __global__ void divergent(float *y)
{
    if (threadIdx.x < 16) __syncthreads();
    y[threadIdx.x] = 1.0f;
}

// y[i] = a * x[i] over a 2-D grid of 1-D blocks, with one stray write when asked
extern "C" __global__ void scale(const double *x, double *y, double a, int n, int stray)
{
    const int i = (blockIdx.y * gridDim.x + blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i];
    if (stray && i == 0) y[n + stray - 1] = 0.0;
}
"""


@pytest.fixture(scope="module")
def module():
    return emu.RawModule(SOURCE)


def dev(array):
    return np.asarray(array).view(emu.DeviceArray)


def test_barriers_give_every_block_its_tree_sum(module):
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    blocks = -(-x.size // 128)
    sums = dev(np.zeros(blocks, np.float32))
    module.get_function("block_sums")((blocks,), (128,), (dev(x), sums, np.int64(x.size)))
    expected = np.pad(x, (0, blocks * 128 - x.size)).reshape(blocks, 128).sum(1, np.float64)
    np.testing.assert_allclose(np.asarray(sums), expected, rtol=1e-5, atol=1e-5)


def test_two_dimensional_grid_covers_every_element(module):
    x = np.arange(1000, dtype=np.float64)
    y = dev(np.full(1000, np.nan))
    module.get_function("scale")((4, 2), (128,), (dev(x), y, 2.5, np.int32(1000), np.int32(0)))
    np.testing.assert_array_equal(np.asarray(y), 2.5 * x)


@pytest.mark.parametrize(
    "args,match",
    [
        (lambda x, y: (x, y, 2.5, 1000, np.int32(0)), "argument 3 is a i32 parameter, got int"),
        (
            lambda x, y: (x, y, np.float32(2.5), np.int32(1000), np.int32(0)),
            "argument 2 is a f64 parameter, got float32",
        ),
        (
            lambda x, y: (np.asarray(x), y, 2.5, np.int32(1000), np.int32(0)),
            "argument 0 must be a device array",
        ),
        (
            lambda x, y: (x.astype(np.float32), y, 2.5, np.int32(1000), np.int32(0)),
            "argument 0 points to f64, got an array of float32",
        ),
        (lambda x, y: (x, y, 2.5, np.int32(1000)), "expected 5 arguments"),
    ],
)
def test_arguments_are_checked_against_the_kernel_signature(module, args, match):
    x, y = dev(np.zeros(1000)), dev(np.zeros(1000))
    with pytest.raises(emu.EmulatorError, match=match):
        module.get_function("scale")((8,), (128,), args(x, y))


def test_a_write_past_an_array_is_caught(module):
    x, y = dev(np.ones(1000)), dev(np.zeros(1000))
    with pytest.raises(emu.EmulatorError, match="wrote outside an argument's memory"):
        module.get_function("scale")((8,), (128,), (x, y, 1.0, np.int32(1000), np.int32(3)))


def test_a_barrier_not_every_thread_reaches_is_caught(module):
    with pytest.raises(emu.EmulatorError, match=r"__syncthreads\(\) not reached"):
        module.get_function("divergent")((1,), (32,), (dev(np.zeros(32, np.float32)),))


@pytest.mark.parametrize(
    "grid,block,match",
    [
        ((1,), (256,), "block of 256 threads exceeds the limit 128"),
        ((0,), (128,), "grid dimension x = 0"),
        ((1, 70000), (64,), "grid dimension y = 70000"),
        ((1,), (2048,), "block dimension x = 2048"),
    ],
)
def test_launch_dimensions_are_checked(module, grid, block, match):
    x, sums = dev(np.zeros(256, np.float32)), dev(np.zeros(2, np.float32))
    with pytest.raises(emu.EmulatorError, match=match):
        module.get_function("block_sums")(grid, block, (x, sums, np.int64(256)))


def test_host_and_device_arrays_do_not_mix():
    with pytest.raises(TypeError, match="host numpy array next to a device array"):
        dev(np.ones(3)) + np.ones(3)
    assert type(dev(np.ones(3)) + 1.0) is emu.DeviceArray
