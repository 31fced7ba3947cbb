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

# (C, H, W, Cout, kernel, stride, padding, dilation): the chart CNN's three first layers, then
# shapes that reach every branch (kernel widths over 3, strides and dilations in width, a
# kernel row entirely in padding, channel counts that are not multiples of 8 / 16 / 64; for
# the AVX-512 column kernels: weight-gradient windows of 4, 8 (4 x 4 kernel, column dilation
# 2) and 16 lanes (9 columns), a window wider than the output row, a one-column kernel,
# output rows of whole 16-pixel vectors, and channel counts that leave 1-3 channels over;
# and padding so wide that the exact normalisation fold has 81 distinct start values, more
# than the column kernels look up from registers).
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
    if fold == "weights":   # padded pixels are black pixels
        xn = np.pad(xn, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2),
                    constant_values=-mean / std)
        padding = (0, 0)
    return xn, padding, ref_conv2d(xn, weight, bias, stride, padding, dilation)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: "x".join(map(str, g[:4])))
@pytest.mark.parametrize("norm", [(0.0, 1.0, "exact"), (0.13, 0.34, "exact"),
                                  (0.13, 0.34, "weights")], ids=["plain", "exact", "weights"])
def test_forward_and_weight_gradient_match_naive_loops(backend, isa, geometry, norm):
    c, h, w, cout, kernel, stride, padding, dilation = geometry
    mean, std, fold = norm
    rng = np.random.default_rng(hash((geometry, norm)) % 2**32)
    x, weight, bias = _data(rng, 3, c, h, w, cout, kernel)
    xn, pad_ref, expected = _reference(x, weight, bias, stride, padding, dilation, mean, std,
                                       fold)
    wt = convlab.tensor(weight, requires_grad=True, device=backend.name)
    bt = convlab.tensor(bias, requires_grad=True, device=backend.name)
    y = F.binary_conv2d(convlab.tensor(x, device=backend.name), wt, bt, stride, padding,
                        dilation, mean=mean, std=std, fold=fold)
    assert y.shape == expected.shape and y.dtype == convlab.float32
    scale = np.abs(weight).sum() / std + np.abs(bias).max() + 1
    np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=2e-6 * scale)
    dy = rng.standard_normal(expected.shape).astype(np.float32)
    y.backward(convlab.tensor(dy, device=backend.name))
    _, dw, db = ref_conv2d_grads(xn, weight, dy, stride, pad_ref, dilation)
    tol = 2e-6 * (np.abs(dy).sum() / cout) * max(1.0, (1 + mean) / std)
    np.testing.assert_allclose(wt.grad.numpy(), dw, rtol=1e-5, atol=tol)
    np.testing.assert_allclose(bt.grad.numpy(), db, rtol=1e-5, atol=tol)


def test_batch_large_enough_to_stream_its_output_matches_reference_cpu(isa):
    # 72 images of the 20-day layer make a 22 MB output: past the size the column kernels
    # write around the caches (16 MB); small batches never reach that branch
    geometry = GEOMETRIES[1]
    c, h, w, cout, kernel, stride, padding, dilation = geometry
    rng = np.random.default_rng(11)
    x, weight, bias = _data(rng, 72, c, h, w, cout, kernel, 0.1)
    xn, pad_ref, expected = _reference(x, weight, bias, stride, padding, dilation, 0.1, 0.3,
                                       "exact")
    wt = convlab.tensor(weight, requires_grad=True)
    y = F.binary_conv2d(convlab.tensor(x), wt, convlab.tensor(bias), stride, padding, dilation,
                        mean=0.1, std=0.3)
    scale = np.abs(weight).sum() / 0.3 + np.abs(bias).max() + 1
    np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=2e-6 * scale)
    dy = rng.standard_normal(expected.shape).astype(np.float32)
    y.backward(convlab.tensor(dy))
    _, dw, _ = ref_conv2d_grads(xn, weight, dy, stride, pad_ref, dilation)
    np.testing.assert_allclose(wt.grad.numpy(), dw, rtol=1e-5,
                               atol=2e-6 * np.abs(dy).sum() / cout * (1.1 / 0.3))


@pytest.mark.parametrize("geometry", [GEOMETRIES[1], GEOMETRIES[2]], ids=["20-day", "60-day"])
def test_batch_of_many_images_matches_reference(backend, geometry):
    # 40 images: the GPU's weight sums share the batch out in slices of several images each
    # (16 slices at 64 channels), and 60-day output rows (180) are longer than a block of
    # threads (128), 20-day ones shorter
    c, h, w, cout, kernel, stride, padding, dilation = geometry
    rng = np.random.default_rng(12)
    x, weight, bias = _data(rng, 40, c, h, w, cout, kernel, 0.1)
    xn, pad_ref, expected = _reference(x, weight, bias, stride, padding, dilation, 0.1, 0.3,
                                       "exact")
    wt = convlab.tensor(weight, requires_grad=True, device=backend.name)
    bt = convlab.tensor(bias, requires_grad=True, device=backend.name)
    y = F.binary_conv2d(convlab.tensor(x, device=backend.name), wt, bt, stride, padding,
                        dilation, mean=0.1, std=0.3)
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
    x, weight, bias = _data(rng, 4, 2, 13, 11, 16, (5, 3))   # 143 bits: a partial last byte
    packed = np.packbits(x.reshape(4, 2, -1), axis=2)
    results = []
    for images, kwargs in ((x, {}), (packed, {"input_size": (13, 11)})):
        wt = convlab.tensor(weight, requires_grad=True)
        y = F.binary_conv2d(convlab.tensor(images), wt, convlab.tensor(bias), 2, 1, 1,
                            mean=0.2, std=0.4, **kwargs)
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
    a = F.binary_conv2d(convlab.tensor(packed), weight, None, (3, 1), (2, 1), (2, 1),
                        input_size=charts.shape)
    b = F.binary_conv2d(convlab.tensor(charts.images()), weight, None, (3, 1), (2, 1), (2, 1))
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("dtype", [np.float64])
def test_float64_and_central_differences_cpu(dtype):
    rng = np.random.default_rng(3)
    x, weight, bias = _data(rng, 2, 1, 10, 9, 6, (5, 3), 0.3, dtype)
    xt = convlab.tensor(x)
    dy = rng.standard_normal((2, 6, 2, 9))

    def loss(wv, bv):
        y = F.binary_conv2d(xt, convlab.tensor(wv), convlab.tensor(bv), (3, 1), (2, 1),
                            (2, 1), mean=0.3, std=0.5)
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
            y = F.binary_conv2d(convlab.tensor(x), wt, convlab.tensor(bias), (3, 1), (2, 1),
                                (2, 1))
            y.backward(convlab.tensor(np.cos(np.arange(y.numel())).reshape(y.shape)
                                      .astype(np.float32)))
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
    y = F.binary_conv2d(convlab.tensor(x), wt, convlab.tensor(bias), stride, padding, dilation,
                        mean=0.12, std=0.32)
    tw = torch.tensor(weight, requires_grad=True)
    ty = torch.nn.functional.conv2d((torch.tensor(x, dtype=torch.float32) - 0.12) / 0.32, tw,
                                    torch.tensor(bias), stride, padding, dilation)
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


@pytest.mark.parametrize("call,error,words", [
    (lambda x, w: F.binary_conv2d(x * 2, w), ValueError, ["x:", "0 or 1"]),
    (lambda x, w: F.binary_conv2d(x, w.to(convlab.int32)), TypeError, ["weight", "float"]),
    (lambda x, w: F.binary_conv2d(x, convlab.ones(4, 2, 3, 3)), ValueError, ["1 input channels", "got 2"]),
    (lambda x, w: F.binary_conv2d(x, w, std=0.0), ValueError, ["std", "positive"]),
    (lambda x, w: F.binary_conv2d(x, w, mean=float("nan")), ValueError, ["mean", "finite"]),
    (lambda x, w: F.binary_conv2d(x, w, fold="both"), ValueError, ["fold", "exact"]),
    (lambda x, w: F.binary_conv2d(x, convlab.ones(4, 1, 9, 3)), ValueError, ["kernel"]),
    (lambda x, w: F.binary_conv2d(x, w, stride=0), ValueError, ["stride"]),
    (lambda x, w: F.binary_conv2d(x, w, padding=-1), ValueError, ["padding"]),
    (lambda x, w: F.binary_conv2d(x[:, :, :, :3], w, input_size=(6, 6)), ValueError,
     ["bit-packed"]),
    (lambda x, w: F.binary_conv2d(convlab.zeros(2, 1, 4, dtype=convlab.uint8), w,
                                  input_size=(6, 6)), ValueError, ["5 bytes", "got 4"]),
    (lambda x, w: F.binary_conv2d(x, w, convlab.ones(3)), ValueError, ["bias", "(4,)"]),
])
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


@pytest.mark.parametrize("geometry", [GEOMETRIES[1], GEOMETRIES[4]], ids=["columns", "generic"])
@pytest.mark.parametrize("value", [2, 255])
def test_pixels_other_than_0_and_1_are_rejected_by_the_forward_cpu(isa, geometry, value):
    # the CPU kernels check the pixels as they copy them: a single bad one, in the last image
    # and channel, must still stop the call, from F and from the backend alike
    c, h, w, cout, kernel, stride, padding, dilation = geometry
    x, weight, _ = _data(np.random.default_rng(8), 9, c, h, w, cout, kernel)
    x[-1, -1, h // 2, w - 1] = value
    with pytest.raises(ValueError) as info:
        F.binary_conv2d(convlab.tensor(x), convlab.tensor(weight), None, stride, padding,
                        dilation)
    assert "x:" in str(info.value) and "0 or 1" in str(info.value)
    cpu = convlab.get_backend("cpu")
    tables = np.zeros((cout, c * kernel[0] * -(-kernel[1] // 3), 8), np.float32)
    with pytest.raises(ValueError, match="0 or 1"):
        cpu.binary_conv2d_forward(x.reshape(len(x), -1), False, tables, None, None,
                                  np.zeros(cout, np.float32), (c, h, w), kernel, stride,
                                  padding, dilation)


def _weight_sums_operands(backend, geometry, rng, n=3, n_classes=3):
    """Images, output gradient and random column classes (``n_classes`` of them) for a direct
    ``binary_conv2d_weight_sums`` call, and the output size."""
    c, h, w, cout, kernel, stride, padding, dilation = geometry
    out_hw = tuple((size + 2 * p - d * (k - 1) - 1) // s + 1 for size, k, s, p, d in
                   zip((h, w), kernel, stride, padding, dilation))
    x, _, _ = _data(rng, n, c, h, w, cout, kernel)
    grad = rng.standard_normal((n, cout) + out_hw).astype(np.float32)
    cls = rng.integers(0, n_classes, out_hw[1]).astype(np.int32)
    xp = backend.xp
    return xp.asarray(x.reshape(n, -1)), xp.asarray(grad), cls, out_hw


@pytest.mark.parametrize("geometry", [GEOMETRIES[1], GEOMETRIES[0], GEOMETRIES[4]],
                         ids=["20-day", "5-day", "generic"])
@pytest.mark.parametrize("runs", ["per-row", "split"])
# 11 classes: more than the AVX-512 column kernels keep in registers (they hand over)
@pytest.mark.parametrize("n_classes", [3, 6, 11])
def test_weight_sums_give_column_class_sums_per_run_of_rows(backend, isa, geometry, runs,
                                                            n_classes):
    rng = np.random.default_rng(21)
    x, grad, cls, (oh, ow) = _weight_sums_operands(backend, geometry, rng, n_classes=n_classes)
    c, h, w, cout, kernel, stride, padding, dilation = geometry
    starts = None if runs == "per-row" else [0, 1, oh // 2, oh]
    _, colsum = backend.binary_conv2d_weight_sums(x, False, grad, cls, n_classes, (c, h, w),
                                                  kernel, stride, padding, dilation,
                                                  row_starts=starts)
    bounds = list(range(oh + 1)) if starts is None else starts
    g = backend.to_numpy(grad).astype(np.float64)
    expected = np.zeros((len(bounds) - 1, n_classes, cout))
    for r in range(len(bounds) - 1):
        for k in range(n_classes):
            expected[r, k] = g[:, :, bounds[r]:bounds[r + 1], cls == k].sum(axis=(0, 2, 3))
    got = backend.to_numpy(colsum)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("starts", [[1, 20], [0, 7, 7, 20], [0, 21], [[0, 20]], [0.0, 20.0],
                                    [0]], ids=["from-1", "repeated", "past-OH", "2-D", "float",
                                                "one-boundary"])
def test_weight_sums_reject_bad_row_runs_cpu(starts):
    cpu = convlab.get_backend("cpu")
    x, grad, cls, _ = _weight_sums_operands(cpu, GEOMETRIES[1], np.random.default_rng(3), 1)
    c, h, w, cout, kernel, stride, padding, dilation = GEOMETRIES[1]
    with pytest.raises(ValueError) as info:
        cpu.binary_conv2d_weight_sums(x, False, grad, cls, 3, (c, h, w), kernel, stride,
                                      padding, dilation, row_starts=starts)
    assert "row_starts" in str(info.value) and "0 to 20" in str(info.value)


@pytest.mark.parametrize("n_out, n_in, offset", [(0, 0, 0), (37, 1000, 1), (70_001, 5, 3),
                                                 (2_300_017, 2_300_017, 2)],
                         ids=["empty", "short", "unaligned", "streamed"])
def test_memory_floor_writes_every_output_and_sums_the_gradient_cpu(isa, n_out, n_in, offset):
    # the benchmarks' yardstick for the binary layer must move every byte it claims to
    from convlab._cpu import _binary
    rng = np.random.default_rng(n_out)
    out = np.full(n_out + offset + 1, np.nan, np.float32)
    grad = rng.standard_normal(n_in + offset).astype(np.float32)
    total = _binary.memory_floor(out[offset:offset + n_out], grad[offset:], 2)
    assert np.isfinite(out[offset:offset + n_out]).all()
    assert np.isnan(out[:offset]).all() and np.isnan(out[offset + n_out:]).all()
    expected = grad[offset:].astype(np.float64).sum()
    assert abs(total - expected) <= 1e-5 * np.abs(grad[offset:]).astype(np.float64).sum() + 1e-6
