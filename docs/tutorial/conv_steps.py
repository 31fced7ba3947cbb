"""The convolution tutorial's steps, each a function ``(x, w) -> y`` for NCHW ``x``, OIHW ``w``,
stride 1 and no padding. ``python docs/tutorial/conv_steps.py`` times them on your machine."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def conv_loops(x, w):
    """Step 1: a loop over output pixels; each is a dot product of a patch with the kernel."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    y = np.zeros((n, o, h - kh + 1, wd - kw + 1), x.dtype)
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            patch = x[:, :, i:i + kh, j:j + kw]                     # (n, c, kh, kw)
            y[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return y


def conv_offsets(x, w):
    """Step 2: one matrix product per kernel offset (needle hw4): shift the image by
    (a, b), multiply its channels by ``w[:, :, a, b]``, add up."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = h - kh + 1, wd - kw + 1
    xt = x.transpose(0, 2, 3, 1)                                    # NHWC: channels last
    y = np.zeros((n, oh, ow, o), x.dtype)
    for a in range(kh):
        for b in range(kw):
            y += xt[:, a:a + oh, b:b + ow, :] @ w[:, :, a, b].T    # (n,oh,ow,c) @ (c,o)
    return y.transpose(0, 3, 1, 2)


def conv_im2col(x, w):
    """Step 3: im2col with strides -- a (n, oh, ow, c, kh, kw) view of x, no copy until the
    one big matrix product."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = h - kh + 1, wd - kw + 1
    s = x.strides
    cols = as_strided(x, (n, oh, ow, c, kh, kw), (s[0], s[2], s[3], s[1], s[2], s[3]))
    y = cols.reshape(n * oh * ow, c * kh * kw) @ w.reshape(o, -1).T
    return y.reshape(n, oh, ow, o).transpose(0, 3, 1, 2)


def conv_convlab(x, w):
    """Step 4: convlab's kernel -- implicit GEMM: packed, tiled, vectorised, OpenMP threads,
    and the column matrix never built."""
    import convlab
    return convlab.nn.functional.conv2d(convlab.from_numpy(x), convlab.from_numpy(w)).numpy()


def conv_binary(x_bits, w, stride=1, padding=0, dilation=1):
    """Step 5: when the input is 0/1 (chart images), table lookups instead of multiply-adds."""
    import convlab
    return convlab.nn.functional.binary_conv2d(convlab.from_numpy(x_bits), convlab.from_numpy(w),
                                               None, stride, padding, dilation).numpy()


def _layer_one_step(x, w, binary):
    """Forward + weight gradient of the I20 chart CNN's first layer (stride (3, 1), padding
    (2, 1), dilation (2, 1)), dense or binary."""
    import convlab
    wt = convlab.tensor(w, requires_grad=True)
    conv = convlab.nn.functional.binary_conv2d if binary else convlab.nn.functional.conv2d
    y = conv(convlab.from_numpy(x), wt, None, (3, 1), (2, 1), (2, 1))
    y.backward(y)
    return wt.grad.numpy()


def main() -> None:
    import time
    import convlab
    rng = np.random.default_rng(0)
    # a chart-CNN layer-2-like shape, small enough for the loops: batch 16, 16 -> 32 channels,
    # 5x3 kernel, 32 x 30 images
    x = rng.standard_normal((16, 16, 32, 30)).astype(np.float32)
    w = rng.standard_normal((32, 16, 5, 3)).astype(np.float32)
    # 128 rendered 20-day charts (64 x 60, about 10 % white) for step 5
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from cases import _chart_images
    bits = _chart_images(20, 128)
    w1 = (rng.standard_normal((64, 1, 5, 3)) * 0.1).astype(np.float32)
    def best(fn, *args, repeats=5):
        fn(*args)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn(*args)
            times.append(time.perf_counter() - start)
        return min(times)

    print(f"convlab {convlab.__version__}, {convlab.get_num_threads()} threads")
    print("| step | time | speed-up over loops |")
    print("|---|---:|---:|")
    base = best(conv_loops, x, w, repeats=2)
    for name, fn in (("1 loops over pixels", conv_loops), ("2 matmul per offset", conv_offsets),
                     ("3 im2col + one matmul", conv_im2col), ("4 convlab conv2d", conv_convlab)):
        t = base if fn is conv_loops else best(fn, x, w)
        print(f"| {name} | {t * 1e3:.2f} ms | {base / t:.0f}x |")
    dense = best(_layer_one_step, bits.astype(np.float32), w1, False)
    binary = best(_layer_one_step, bits, w1, True)
    print(f"| 5 I20 layer 1, batch 128, forward + weight gradient: dense conv2d | "
          f"{dense * 1e3:.2f} ms | |")
    print(f"| 5 the same with binary_conv2d | {binary * 1e3:.2f} ms | {dense / binary:.1f}x "
          f"over dense |")


if __name__ == "__main__":
    main()
