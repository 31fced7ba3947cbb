"""binary_conv2d: the table-lookup first layer against naive NumPy loops, PyTorch and
central differences, on every kernel path (ISAs, channel counts, dtypes, packed input)."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
import convlab.functional as F
from conftest import needs_torch, torch
from reference import conv2d as ref_conv2d
from reference import conv2d_grads as ref_conv2d_grads
from reference import out_size as ref_out_size

# (C, H, W, Cout, kernel, stride, padding, dilation): the chart CNN's three first layers, then
# shapes that reach every branch (kernel widths over 3, strides and dilations in width, a
# kernel row entirely in padding; channel counts that are multiples of 64 (the AVX2 kernels'
# register blocks), of 8 only (their vector loop) and neither (the generic kernels); a window
# wider than the output row, a one-column kernel; and padding so wide that the exact
# normalisation fold has 81 distinct start values).
GEOMETRIES = [
    (1, 32, 15, 64, (5, 3), (1, 1), (2, 1), (1, 1)),
    (1, 64, 60, 64, (5, 3), (3, 1), (2, 1), (2, 1)),
    (1, 96, 180, 64, (5, 3), (3, 1), (2, 1), (3, 1)),
    (1, 64, 60, 64, (5, 3), (3, 1), (12, 1), (2, 1)),
    (2, 17, 13, 5, (4, 7), (2, 3), (3, 2), (2, 2)),
    (3, 9, 11, 24, (1, 1), (1, 1), (0, 0), (1, 1)),
    (1, 6, 40, 128, (3, 5), (1, 2), (4, 0), (1, 3)),
    (1, 20, 32, 32, (4, 4), (2, 1), (1, 2), (1, 2)),
    (1, 16, 32, 24, (5, 3), (1, 1), (2, 1), (1, 1)),
    (1, 10, 40, 6, (3, 9), (2, 1), (1, 4), (1, 1)),
    (1, 12, 7, 5, (2, 6), (1, 1), (0, 3), (1, 2)),
    (1, 8, 20, 3, (5, 1), (1, 1), (2, 0), (1, 1)),
    (1, 5, 9, 8, (5, 5), (1, 1), (4, 4), (1, 1)),
]


def _data(rng, n, c, h, w, cout, kernel, density=0.15, dtype=np.float32):
    x = (rng.random((n, c, h, w)) < density).astype(np.uint8)
    weight = rng.standard_normal((cout, c) + kernel).astype(dtype)
    bias = rng.standard_normal(cout).astype(dtype)
    return x, weight, bias


def _reference(x, weight, bias, stride, padding, dilation, mean, std, fold):
    """The dense convolution of the normalised image, in float64 loops."""
    xn = (x.astype(np.float64) - mean) / std
    if fold == "weights":  # padded pixels are black pixels
        xn = np.pad(
            xn, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2), constant_values=-mean / std
        )
        padding = (0, 0)
    return xn, padding, ref_conv2d(xn, weight, bias, stride, padding, dilation)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: "x".join(map(str, g[:4])))
@pytest.mark.parametrize(
    "norm",
    [(0.0, 1.0, "exact"), (0.13, 0.34, "exact"), (0.13, 0.34, "weights")],
    ids=["plain", "exact", "weights"],
)
def test_forward_and_weight_gradient_match_naive_loops(backend, isa, geometry, norm):
    c, h, w, cout, kernel, stride, padding, dilation = geometry
    mean, std, fold = norm
    rng = np.random.default_rng(hash((geometry, norm)) % 2**32)
    x, weight, bias = _data(rng, 3, c, h, w, cout, kernel)
    xn, pad_ref, expected = _reference(x, weight, bias, stride, padding, dilation, mean, std, fold)
    wt = convlab.tensor(weight, requires_grad=True, device=backend.name)
    bt = convlab.tensor(bias, requires_grad=True, device=backend.name)
    y = F.binary_conv2d(
        convlab.tensor(x, device=backend.name),
        wt,
        bt,
        stride,
        padding,
        dilation,
        mean=mean,
        std=std,
        fold=fold,
    )
    assert y.shape == expected.shape and y.dtype == convlab.float32
    scale = np.abs(weight).sum() / std + np.abs(bias).max() + 1
    np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=2e-6 * scale)
    dy = rng.standard_normal(expected.shape).astype(np.float32)
    y.backward(convlab.tensor(dy, device=backend.name))
    _, dw, db = ref_conv2d_grads(xn, weight, dy, stride, pad_ref, dilation)
    tol = 2e-6 * (np.abs(dy).sum() / cout) * max(1.0, (1 + mean) / std)
    np.testing.assert_allclose(wt.grad.numpy(), dw, rtol=1e-5, atol=tol)
    np.testing.assert_allclose(bt.grad.numpy(), db, rtol=1e-5, atol=tol)


@pytest.mark.parametrize("geometry", [GEOMETRIES[1], GEOMETRIES[2]], ids=["20-day", "60-day"])
def test_batch_of_many_images_matches_reference(backend, geometry):
    # 40 images: the GPU's weight sums share the batch out in slices of several images each
    # (16 slices at 64 channels), and 60-day output rows (180) are longer than a block of
    # threads (128), 20-day ones shorter
    c, h, w, cout, kernel, stride, padding, dilation = geometry
    rng = np.random.default_rng(12)
    x, weight, bias = _data(rng, 40, c, h, w, cout, kernel, 0.1)
    xn, pad_ref, expected = _reference(
        x, weight, bias, stride, padding, dilation, 0.1, 0.3, "exact"
    )
    wt = convlab.tensor(weight, requires_grad=True, device=backend.name)
    bt = convlab.tensor(bias, requires_grad=True, device=backend.name)
    y = F.binary_conv2d(
        convlab.tensor(x, device=backend.name), wt, bt, stride, padding, dilation, mean=0.1, std=0.3
    )
    scale = np.abs(weight).sum() / 0.3 + np.abs(bias).max() + 1
    np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=2e-6 * scale)
    dy = rng.standard_normal(expected.shape).astype(np.float32)
    y.backward(convlab.tensor(dy, device=backend.name))
    _, dw, db = ref_conv2d_grads(xn, weight, dy, stride, pad_ref, dilation)
    tol = 2e-6 * np.abs(dy).sum() / cout * (1.1 / 0.3)
    np.testing.assert_allclose(wt.grad.numpy(), dw, rtol=1e-5, atol=tol)
    np.testing.assert_allclose(bt.grad.numpy(), db, rtol=1e-5, atol=tol)


def test_bit_packed_input_gives_the_same_result_cpu(isa):
    rng = np.random.default_rng(1)
    x, weight, bias = _data(rng, 4, 2, 13, 11, 16, (5, 3))  # 143 bits: a partial last byte
    packed = np.packbits(x.reshape(4, 2, -1), axis=2)
    results = []
    for images, kwargs in ((x, {}), (packed, {"input_size": (13, 11)})):
        wt = convlab.tensor(weight, requires_grad=True)
        y = F.binary_conv2d(
            convlab.tensor(images), wt, convlab.tensor(bias), 2, 1, 1, mean=0.2, std=0.4, **kwargs
        )
        y.sum().backward()
        results.append((y.numpy(), wt.grad.numpy()))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_chart_set_layout_is_accepted_directly_cpu():
    from convlab.data import render_charts
    from test_charts import random_walks

    charts = render_charts(random_walks(1, 120, 3), 20)
    rng = np.random.default_rng(2)
    weight = convlab.tensor(rng.standard_normal((64, 1, 5, 3)).astype(np.float32))
    packed = np.asarray(charts.packed)[:, None, :]
    a = F.binary_conv2d(
        convlab.tensor(packed), weight, None, (3, 1), (2, 1), (2, 1), input_size=charts.shape
    )
    b = F.binary_conv2d(convlab.tensor(charts.images()), weight, None, (3, 1), (2, 1), (2, 1))
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("dtype", [np.float64])
def test_float64_and_central_differences_cpu(dtype):
    rng = np.random.default_rng(3)
    x, weight, bias = _data(rng, 2, 1, 10, 9, 6, (5, 3), 0.3, dtype)
    xt = convlab.tensor(x)
    dy = rng.standard_normal((2, 6, 2, 9))

    def loss(wv, bv):
        y = F.binary_conv2d(
            xt, convlab.tensor(wv), convlab.tensor(bv), (3, 1), (2, 1), (2, 1), mean=0.3, std=0.5
        )
        return float((y.numpy() * dy).sum())

    wt, bt = convlab.tensor(weight, requires_grad=True), convlab.tensor(bias, requires_grad=True)
    y = F.binary_conv2d(xt, wt, bt, (3, 1), (2, 1), (2, 1), mean=0.3, std=0.5)
    assert y.dtype == convlab.float64
    y.backward(convlab.tensor(dy))
    eps = 1e-6
    for index in [(0, 0, 0, 0), (3, 0, 2, 1), (5, 0, 4, 2), (1, 0, 1, 0)]:
        plus, minus = weight.copy(), weight.copy()
        plus[index] += eps
        minus[index] -= eps
        numeric = (loss(plus, bias) - loss(minus, bias)) / (2 * eps)
        assert abs(wt.grad.numpy()[index] - numeric) < 1e-6 * max(1, abs(numeric))
    plus, minus = bias.copy(), bias.copy()
    plus[2] += eps
    minus[2] -= eps
    numeric = (loss(weight, plus) - loss(weight, minus)) / (2 * eps)
    assert abs(bt.grad.numpy()[2] - numeric) < 1e-6 * max(1, abs(numeric))


def test_same_result_on_one_and_two_threads_cpu():
    rng = np.random.default_rng(4)
    x, weight, bias = _data(rng, 37, 1, 64, 60, 64, (5, 3))
    results = []
    before = convlab.get_num_threads()
    try:
        for threads in (1, 2):
            convlab.set_num_threads(threads)
            wt = convlab.tensor(weight, requires_grad=True)
            y = F.binary_conv2d(convlab.tensor(x), wt, convlab.tensor(bias), (3, 1), (2, 1), (2, 1))
            y.backward(
                convlab.tensor(np.cos(np.arange(y.numel())).reshape(y.shape).astype(np.float32))
            )
            results.append((y.numpy(), wt.grad.numpy()))
    finally:
        convlab.set_num_threads(before)
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


@needs_torch
@pytest.mark.parametrize("geometry", GEOMETRIES[:4], ids=["I5", "I20", "I60", "I20-pad12"])
def test_matches_pytorch_dense_conv_cpu(geometry):
    c, h, w, cout, kernel, stride, padding, dilation = geometry
    rng = np.random.default_rng(5)
    x, weight, bias = _data(rng, 8, c, h, w, cout, kernel, 0.12)
    wt = convlab.tensor(weight, requires_grad=True)
    y = F.binary_conv2d(
        convlab.tensor(x), wt, convlab.tensor(bias), stride, padding, dilation, mean=0.12, std=0.32
    )
    tw = torch.tensor(weight, requires_grad=True)
    ty = torch.nn.functional.conv2d(
        (torch.tensor(x, dtype=torch.float32) - 0.12) / 0.32,
        tw,
        torch.tensor(bias),
        stride,
        padding,
        dilation,
    )
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-4)
    dy = rng.standard_normal(ty.shape).astype(np.float32)
    y.backward(convlab.tensor(dy))
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(wt.grad.numpy(), tw.grad.numpy(), rtol=1e-4, atol=1e-2)


def test_input_gets_no_gradient_and_bool_or_float_input_works_cpu():
    rng = np.random.default_rng(6)
    x, weight, bias = _data(rng, 2, 1, 8, 8, 8, (3, 3))
    w = convlab.tensor(weight)
    a = F.binary_conv2d(convlab.tensor(x), w, padding=1).numpy()
    b = F.binary_conv2d(convlab.tensor(x.astype(bool)), w, padding=1).numpy()
    c = F.binary_conv2d(convlab.tensor(x.astype(np.float32)), w, padding=1).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    unbatched = F.binary_conv2d(convlab.tensor(x[:1]), w, padding=1)
    assert unbatched.shape == (1, 8, 8, 8)


@pytest.mark.parametrize(
    "call,error,words",
    [
        (lambda x, w: F.binary_conv2d(x * 2, w), ValueError, ["x:", "0 or 1"]),
        (lambda x, w: F.binary_conv2d(x, w.to(convlab.int32)), TypeError, ["weight", "float"]),
        (
            lambda x, w: F.binary_conv2d(x, convlab.ones(4, 2, 3, 3)),
            ValueError,
            ["1 input channels", "got 2"],
        ),
        (lambda x, w: F.binary_conv2d(x, w, std=0.0), ValueError, ["std", "positive"]),
        (lambda x, w: F.binary_conv2d(x, w, mean=float("nan")), ValueError, ["mean", "finite"]),
        (lambda x, w: F.binary_conv2d(x, w, fold="both"), ValueError, ["fold", "exact"]),
        (lambda x, w: F.binary_conv2d(x, convlab.ones(4, 1, 9, 3)), ValueError, ["kernel"]),
        (lambda x, w: F.binary_conv2d(x, w, stride=0), ValueError, ["stride"]),
        (lambda x, w: F.binary_conv2d(x, w, padding=-1), ValueError, ["padding"]),
        (
            lambda x, w: F.binary_conv2d(x[:, :, :, :3], w, input_size=(6, 6)),
            ValueError,
            ["bit-packed"],
        ),
        (
            lambda x, w: F.binary_conv2d(
                convlab.zeros(2, 1, 4, dtype=convlab.uint8), w, input_size=(6, 6)
            ),
            ValueError,
            ["5 bytes", "got 4"],
        ),
        (lambda x, w: F.binary_conv2d(x, w, convlab.ones(3)), ValueError, ["bias", "(4,)"]),
    ],
)
def test_bad_input_gets_a_clear_error_cpu(call, error, words):
    x = convlab.tensor((np.arange(72).reshape(2, 1, 6, 6) % 3 == 0).astype(np.uint8))
    w = convlab.ones(4, 1, 3, 3)
    with pytest.raises(error) as info:
        call(x, w)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("stride", [(1.0, 1), (True, 1), np.float64(1), [1, 1.5]])
def test_bad_stride_is_rejected_after_a_good_one_was_cached_cpu(stride):
    # geometries are cached by their arguments: values equal to a cached int must still fail
    x = convlab.tensor((np.arange(72).reshape(2, 1, 6, 6) % 3 == 0).astype(np.uint8))
    w = convlab.ones(4, 1, 3, 3)
    F.binary_conv2d(x, w, None, (1, 1), 1, 1)
    F.binary_conv2d(x, w, None, 1, 1, 1)
    with pytest.raises(TypeError, match="stride"):
        F.binary_conv2d(x, w, None, stride, 1, 1)


@pytest.mark.parametrize("geometry", [GEOMETRIES[1], GEOMETRIES[4]], ids=["I20", "generic"])
@pytest.mark.parametrize("value", [2, 255])
def test_pixels_other_than_0_and_1_are_rejected_by_the_forward_cpu(isa, geometry, value):
    # the CPU kernels check the pixels as they copy them: a single bad one, in the last image
    # and channel, must still stop the call, from F and from the backend alike
    c, h, w, cout, kernel, stride, padding, dilation = geometry
    x, weight, _ = _data(np.random.default_rng(8), 9, c, h, w, cout, kernel)
    x[-1, -1, h // 2, w - 1] = value
    with pytest.raises(ValueError) as info:
        F.binary_conv2d(convlab.tensor(x), convlab.tensor(weight), None, stride, padding, dilation)
    assert "x:" in str(info.value) and "0 or 1" in str(info.value)
    cpu = convlab.get_backend("cpu")
    if not cpu.checks_binary_pixels:  # a test backend that leaves the check to the caller
        return
    out_hw = tuple(
        ref_out_size(size, k, s, p, d)
        for size, k, s, p, d in zip((h, w), kernel, stride, padding, dilation)
    )
    with pytest.raises(ValueError, match="0 or 1"):
        cpu.binary_conv2d_forward(
            x.reshape(len(x), -1),
            False,
            weight,
            np.zeros((cout, 1), np.float32),
            np.zeros(out_hw, np.int32),
            (c, h, w),
            kernel,
            stride,
            padding,
            dilation,
        )


def _weight_sums_operands(backend, geometry, rng, n=3, n_classes=3):
    """Images, output gradient and random column classes (``n_classes`` of them) for a direct
    ``binary_conv2d_weight_sums`` call, and the output size."""
    c, h, w, cout, kernel, stride, padding, dilation = geometry
    out_hw = tuple(
        (size + 2 * p - d * (k - 1) - 1) // s + 1
        for size, k, s, p, d in zip((h, w), kernel, stride, padding, dilation)
    )
    x, _, _ = _data(rng, n, c, h, w, cout, kernel)
    grad = rng.standard_normal((n, cout) + out_hw).astype(np.float32)
    cls = rng.integers(0, n_classes, out_hw[1]).astype(np.int32)
    xp = backend.xp
    return xp.asarray(x.reshape(n, -1)), xp.asarray(grad), cls, out_hw


@pytest.mark.parametrize(
    "geometry", [GEOMETRIES[1], GEOMETRIES[0], GEOMETRIES[4]], ids=["20-day", "5-day", "generic"]
)
@pytest.mark.parametrize("runs", ["per-row", "split"])
# 11 classes: more than the GPU's column-class sums keep in registers in one pass
@pytest.mark.parametrize("n_classes", [3, 6, 11])
def test_weight_sums_give_column_class_sums_per_run_of_rows(
    backend, isa, geometry, runs, n_classes
):
    rng = np.random.default_rng(21)
    x, grad, cls, (oh, ow) = _weight_sums_operands(backend, geometry, rng, n_classes=n_classes)
    c, h, w, cout, kernel, stride, padding, dilation = geometry
    starts = None if runs == "per-row" else [0, 1, oh // 2, oh]
    _, colsum = backend.binary_conv2d_weight_sums(
        x,
        False,
        grad,
        cls,
        n_classes,
        (c, h, w),
        kernel,
        stride,
        padding,
        dilation,
        row_starts=starts,
    )
    bounds = list(range(oh + 1)) if starts is None else starts
    g = backend.to_numpy(grad).astype(np.float64)
    expected = np.zeros((len(bounds) - 1, n_classes, cout))
    for r in range(len(bounds) - 1):
        for k in range(n_classes):
            expected[r, k] = g[:, :, bounds[r] : bounds[r + 1], cls == k].sum(axis=(0, 2, 3))
    got = backend.to_numpy(colsum)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "starts",
    [[1, 20], [0, 7, 7, 20], [0, 21], [[0, 20]], [0.0, 20.0], [0]],
    ids=["from-1", "repeated", "past-OH", "2-D", "float", "one-boundary"],
)
def test_weight_sums_reject_bad_row_runs_cpu(starts):
    cpu = convlab.get_backend("cpu")
    x, grad, cls, _ = _weight_sums_operands(cpu, GEOMETRIES[1], np.random.default_rng(3), 1)
    c, h, w, cout, kernel, stride, padding, dilation = GEOMETRIES[1]
    with pytest.raises(ValueError) as info:
        cpu.binary_conv2d_weight_sums(
            x, False, grad, cls, 3, (c, h, w), kernel, stride, padding, dilation, row_starts=starts
        )
    assert "row_starts" in str(info.value) and "0 to 20" in str(info.value)


def _seam_operands(backend, geometry, rng, dtype, n=3, n_values=4):
    """Images, weights and random start values for a direct ``binary_conv2d_forward`` call,
    and the output size."""
    c, h, w, cout, kernel, stride, padding, dilation = geometry
    out_hw = tuple(
        ref_out_size(size, k, s, p, d)
        for size, k, s, p, d in zip((h, w), kernel, stride, padding, dilation)
    )
    x, weight, _ = _data(rng, n, c, h, w, cout, kernel, 0.3, dtype)
    values = rng.standard_normal((cout, n_values)).astype(dtype)
    index = rng.integers(0, n_values, out_hw).astype(np.int32)
    return x, weight, values, index, out_hw


@pytest.mark.parametrize(
    "geometry",
    [GEOMETRIES[0], GEOMETRIES[4], GEOMETRIES[6], GEOMETRIES[7]],
    ids=["5-day", "C2", "128ch", "32ch"],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("packed", [False, True], ids=["bytes", "packed"])
def test_forward_kernel_is_start_values_plus_the_taps_on_1_pixels(
    backend, isa, geometry, dtype, packed
):
    # the seam itself: weights and start values in, each backend's own tables underneath
    rng = np.random.default_rng(31)
    c, h, w, cout, kernel, stride, padding, dilation = geometry
    x, weight, values, index, out_hw = _seam_operands(backend, geometry, rng, dtype)
    expected = ref_conv2d(x, weight, None, stride, padding, dilation) + values[:, index]
    images = np.packbits(x.reshape(len(x), c, -1), axis=2) if packed else x
    xp = backend.xp
    y = backend.binary_conv2d_forward(
        xp.asarray(images.reshape(len(x), -1)),
        packed,
        xp.asarray(weight),
        xp.asarray(values),
        xp.asarray(index),
        (c, h, w),
        kernel,
        stride,
        padding,
        dilation,
    )
    got = backend.to_numpy(y)
    assert got.shape == expected.shape and got.dtype == dtype
    tol = (2e-6 if dtype == np.float32 else 1e-12) * (np.abs(weight).sum() / cout + 4)
    np.testing.assert_allclose(got, expected, rtol=0, atol=tol)


@pytest.mark.parametrize(
    "geometry", [GEOMETRIES[1], GEOMETRIES[4], GEOMETRIES[9]], ids=["20-day", "C2", "9-wide"]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_sums_taps_are_the_gradient_summed_over_1_pixels(backend, isa, geometry, dtype):
    rng = np.random.default_rng(32)
    c, h, w, cout, kernel, stride, padding, dilation = geometry
    x, weight, _, _, out_hw = _seam_operands(backend, geometry, rng, dtype)
    grad = rng.standard_normal((len(x), cout) + out_hw).astype(dtype)
    _, expected, _ = ref_conv2d_grads(x, weight, grad, stride, padding, dilation)
    cls = np.zeros(out_hw[1], np.int32)
    xp = backend.xp
    taps, colsum = backend.binary_conv2d_weight_sums(
        xp.asarray(x.reshape(len(x), -1)),
        False,
        xp.asarray(grad),
        cls,
        1,
        (c, h, w),
        kernel,
        stride,
        padding,
        dilation,
    )
    assert taps.shape == expected.shape and taps.dtype == dtype
    tol = (2e-6 if dtype == np.float32 else 1e-12) * np.abs(grad).sum() / cout
    np.testing.assert_allclose(backend.to_numpy(taps), expected, rtol=1e-5, atol=tol)
    np.testing.assert_allclose(
        backend.to_numpy(colsum)[:, 0].sum(axis=0),
        grad.astype(np.float64).sum(axis=(0, 2, 3)),
        rtol=1e-5,
        atol=tol,
    )


def test_kernels_answer_empty_inputs_and_write_out(backend):
    xp = backend.xp
    weight = xp.ones((4, 1, 3, 3), np.float32)
    values, index = xp.zeros((4, 1), np.float32), xp.zeros((6, 6), np.int32)
    images = xp.zeros((0, 36), np.uint8)
    y = backend.binary_conv2d_forward(images, False, weight, values, index, (1, 6, 6), 3, padding=1)
    assert y.shape == (0, 4, 6, 6)
    taps, colsum = backend.binary_conv2d_weight_sums(
        images,
        False,
        xp.zeros((0, 4, 6, 6), np.float32),
        np.zeros(6, np.int32),
        1,
        (1, 6, 6),
        3,
        padding=1,
    )
    assert taps.shape == (4, 1, 3, 3) and colsum.shape == (6, 1, 4)
    assert not backend.to_numpy(taps).any() and not backend.to_numpy(colsum).any()
    out = xp.full((2, 4, 6, 6), np.nan, np.float32)
    ones = xp.ones((2, 36), np.uint8)
    y = backend.binary_conv2d_forward(
        ones, False, weight, values + 1, index, (1, 6, 6), 3, padding=1, out=out
    )
    assert y is out
    got = backend.to_numpy(out)
    assert got[0, 0, 0, 0] == 5 and got[0, 0, 1, 1] == 10  # corner: 4 taps inside, + 1
