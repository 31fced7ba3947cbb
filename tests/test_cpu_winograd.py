"""The CPU backend's Winograd F(4, 3) convolution path against the tap-loop reference.

The reference transforms below are written out from Lavin & Gray (2016), independently of
``convlab._cpu.conv_winograd``; they are used only to size the rounding bound.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import convlab
import reference as ref
from convlab._cpu import conv_winograd

# y = A^T [(G g) * (B^T d)] for 4 outputs of a 3-tap correlation (points 0, 1, -1, 2, -2, inf)
B_T = np.array(
    [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    float,
)
G = np.array(
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ]
)
A_T = np.array(
    [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], float
)

# (N, C, H, W, O, KH, padding, dilation_h): widths that are and are not multiples of 4,
# every width padding the path takes, short and dilated kernels, the chart CNN's layer 3
CASES = [
    (2, 64, 13, 60, 64, 5, (2, 1), 1),
    (2, 64, 10, 34, 72, 3, (1, 0), 1),
    (1, 128, 16, 15, 128, 5, (2, 2), 1),
    (2, 64, 8, 37, 64, 1, (0, 1), 1),
    (1, 64, 12, 40, 64, 3, (2, 1), 2),
    (1, 128, 6, 60, 256, 5, (2, 1), 1),
]


@contextlib.contextmanager
def workspace_limit(nbytes):
    """``convlab.set_workspace_limit(nbytes)`` for the block, restored after it."""
    before = convlab.get_workspace_limit()
    convlab.set_workspace_limit(nbytes)
    try:
        yield
    finally:
        convlab.set_workspace_limit(before)


def winograd_magnitude(x, w, padding, dilation_h):
    """The Winograd computation of the output on |values| at every step: what its rounding
    errors are proportional to (the analogue of |x| * |w| for the direct sum)."""
    n, c, h, wd = x.shape
    ow = wd + 2 * padding[1] - 2
    tiles = -(-ow // 4)
    xp = np.zeros((n, c, h, 4 * tiles + 2))
    xp[..., padding[1] : padding[1] + wd] = np.abs(x)
    d = np.stack([xp[..., j : j + 4 * tiles : 4] for j in range(6)], axis=-1)  # (..., T, 6)
    v = d @ np.abs(B_T).T  # (..., T, 6)
    u = np.einsum("xk,ochk->xoch", np.abs(G), np.abs(w.astype(float)))
    m = np.stack(
        [
            ref.conv2d(
                np.ascontiguousarray(v[..., xi]),
                u[xi][..., None],
                None,
                (1, 1),
                (padding[0], 0),
                (dilation_h, 1),
            )
            for xi in range(6)
        ],
        axis=-1,
    )
    y = m @ np.abs(A_T).T  # (..., T, 4)
    return y.reshape(y.shape[:-2] + (-1,))[..., :ow]


def bound(x, w, b, padding, dilation_h):
    # K products summed, plus at most 12 roundings in the transforms and the bias; doubled
    # for the second-order terms, as the direct convolution's bound in test_conv.py is
    k = w.shape[1] * w.shape[2] + 12
    magnitude = winograd_magnitude(x, w, padding, dilation_h)
    if b is not None:
        magnitude = magnitude + np.abs(b)[:, None, None]
    return 2 * k * np.finfo(np.float32).eps / 2 * magnitude + np.finfo(np.float32).tiny


@pytest.mark.parametrize("case", CASES, ids=[str(c[:6]) for c in CASES])
def test_forward_matches_reference(case, threads):
    n, c, h, wd, o, kh, padding, dh = case
    rng = np.random.default_rng(sum(case[:6]))
    x = rng.standard_normal((n, c, h, wd)).astype(np.float32)
    w = rng.standard_normal((o, c, kh, 3)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    y = convlab.get_backend("cpu").conv2d_forward(x, w, b, 1, padding, (dh, 1))
    assert conv_winograd.applies(
        x.shape, w.shape, (1, 1), padding, (dh, 1), y.shape[2:], np.float32
    )
    exact = ref.conv2d(x, w, b, (1, 1), padding, (dh, 1))
    assert y.shape == exact.shape
    excess = np.abs(y - exact) - bound(x, w, b, padding, dh)
    assert np.all(excess <= 0), f"error beyond the rounding bound by {excess.max()}"


def test_chunks_under_a_small_workspace_limit():
    """A budget of one image's transforms makes the path run image by image."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 64, 20, 60)).astype(np.float32)
    w = rng.standard_normal((64, 64, 5, 3)).astype(np.float32)
    with workspace_limit(2**20):  # one image's transforms: 6 * (64*20 * 2) * 15 floats
        y = convlab.get_backend("cpu").conv2d_forward(x, w, None, 1, (2, 1), 1)
    exact = ref.conv2d(x, w, None, (1, 1), (2, 1), (1, 1))
    assert np.all(np.abs(y - exact) <= bound(x, w, None, (2, 1), 1))


def test_data_gradient_through_winograd():
    """At stride 1 the input gradient is a convolution of dY with the flipped weight: it takes
    the Winograd path too, and must match the reference."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 64, 12, 40)).astype(np.float32)
    w = rng.standard_normal((72, 64, 5, 3)).astype(np.float32)
    dy = rng.standard_normal((2, 72, 12, 40)).astype(np.float32)
    cpu = convlab.get_backend("cpu")
    dx = cpu.conv2d_backward_data(dy, w, x.shape, 1, (2, 1), 1, algorithm="implicit")
    flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    assert conv_winograd.applies(
        dy.shape, flipped.shape, (1, 1), (2, 1), (1, 1), x.shape[2:], np.float32
    )
    exact = ref.conv2d_grads(x, w, dy, (1, 1), (2, 1), (1, 1))[0]
    # the same computation as a forward Winograd convolution of dY, so the same bound
    assert np.all(np.abs(dx - exact) <= bound(dy, flipped, None, (2, 1), 1))


def weight_gradient_magnitude(x, dy, kh, padding, dilation_h):
    """The Winograd weight gradient ``G^T [sum over tiles of (A dy) * (B^T d)]`` on |values|
    at every step: what its rounding errors are proportional to."""
    n, c, h, wd = x.shape
    ow = dy.shape[3]
    tiles = -(-ow // 4)
    xp = np.zeros((n, c, h, 4 * tiles + 2))
    xp[..., padding[1] : padding[1] + wd] = np.abs(x)
    d = np.stack([xp[..., j : j + 4 * tiles : 4] for j in range(6)], axis=-1)  # (..., T, 6)
    v = d @ np.abs(B_T).T
    e = np.zeros(dy.shape[:3] + (4 * tiles,))
    e[..., :ow] = np.abs(dy)
    t = e.reshape(e.shape[:3] + (tiles, 4)) @ np.abs(A_T)  # (..., T, 6)
    dummy = np.zeros((dy.shape[1], c, kh, 1))
    m = np.stack(
        [
            ref.conv2d_grads(
                v[..., xi], dummy, t[..., xi], (1, 1), (padding[0], 0), (dilation_h, 1)
            )[1][..., 0]
            for xi in range(6)
        ]
    )
    return np.einsum("xk,xoch->ochk", np.abs(G), m)


def weight_gradient_bound(x, dy, kh, padding, dilation_h):
    # every tile of every output row of every image summed, plus the transforms' roundings
    k = dy.shape[0] * dy.shape[2] * -(-dy.shape[3] // 4) + 6 + 12
    magnitude = weight_gradient_magnitude(x, dy, kh, padding, dilation_h)
    return 2 * k * np.finfo(np.float32).eps / 2 * magnitude + np.finfo(np.float32).tiny


@pytest.mark.parametrize("case", CASES, ids=[str(c[:6]) for c in CASES])
def test_weight_gradient_matches_reference(case, threads):
    n, c, h, wd, o, kh, padding, dh = case
    rng = np.random.default_rng(sum(case[:6]) + 1)
    x = rng.standard_normal((n, c, h, wd)).astype(np.float32)
    oh, ow = h + 2 * padding[0] - dh * (kh - 1), wd + 2 * padding[1] - 2
    dy = rng.standard_normal((n, o, oh, ow)).astype(np.float32)
    dw, db = convlab.get_backend("cpu").conv2d_backward_weight(
        dy, x, (o, c, kh, 3), 1, padding, (dh, 1)
    )
    assert conv_winograd.applies(
        x.shape, (o, c, kh, 3), (1, 1), padding, (dh, 1), (oh, ow), np.float32
    )
    _, exact_dw, exact_db = ref.conv2d_grads(
        x, np.zeros((o, c, kh, 3)), dy, (1, 1), padding, (dh, 1)
    )
    excess = np.abs(dw - exact_dw) - weight_gradient_bound(x, dy, kh, padding, dh)
    assert np.all(excess <= 0), f"error beyond the rounding bound by {excess.max()}"
    # the bias gradient is the sum of each tile's 4 gradients (A's point 1): 4 roundings more
    k = n * oh * (-(-ow // 4) + 4)
    assert np.all(
        np.abs(db - exact_db) <= k * np.finfo(np.float32).eps * np.abs(dy).sum(axis=(0, 2, 3))
    )


def test_weight_gradient_in_chunks_and_without_bias():
    """A budget of one image's transforms: the six sums are carried across chunks."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 64, 20, 58)).astype(np.float32)
    dy = rng.standard_normal((3, 64, 20, 56)).astype(np.float32)
    cpu = convlab.get_backend("cpu")
    with workspace_limit(2**20):
        dw, db = cpu.conv2d_backward_weight(dy, x, (64, 64, 5, 3), 1, (2, 0), 1, bias=False)
        _, with_bias = cpu.conv2d_backward_weight(dy, x, (64, 64, 5, 3), 1, (2, 0), 1)
    assert db is None
    _, exact_dw, exact_db = ref.conv2d_grads(
        x, np.zeros((64, 64, 5, 3)), dy, (1, 1), (2, 0), (1, 1)
    )
    assert np.all(np.abs(dw - exact_dw) <= weight_gradient_bound(x, dy, 5, (2, 0), 1))
    np.testing.assert_allclose(with_bias, exact_db, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("kh, padding", [(1, (0, 0)), (2, (1, 1)), (3, (1, 2))])
def test_weight_gradient_on_a_shallow_sum(kh, padding):
    """Called directly on a short reduction (one image, two rows): a tight bound, so any
    wrong coefficient of ``A`` or ``G^T`` shows."""
    rng = np.random.default_rng(10 + kh)
    x = rng.standard_normal((1, 2, 2, 23)).astype(np.float32)
    oh, ow = 2 + 2 * padding[0] - kh + 1, 23 + 2 * padding[1] - 2
    dy = rng.standard_normal((1, 3, oh, ow)).astype(np.float32)
    dw = np.empty((3, 2, kh, 3), np.float32)
    db = np.empty(3, np.float32)
    conv_winograd.weight_gradient(dy, x, dw, db, padding, 1, 2)
    _, exact_dw, exact_db = ref.conv2d_grads(x, np.zeros(dw.shape), dy, (1, 1), padding, (1, 1))
    assert np.all(np.abs(dw - exact_dw) <= weight_gradient_bound(x, dy, kh, padding, 1))
    np.testing.assert_allclose(db, exact_db, rtol=1e-5, atol=1e-5)


# (images, width, workspace limit): 8-image groups and a 3-image tail; 5-image chunks and a
# 1-image tail; 4-image groups with a tail that splits into a group and 2 images
GROUPINGS = [(11, 92, None), (11, 92, 5), (14, 100, 8)]


@pytest.mark.parametrize("n, width, images_per_chunk", GROUPINGS)
def test_images_side_by_side_in_groups(n, width, images_per_chunk):
    """The transforms lay groups of images side by side; every chunk plan (full groups,
    short tails, remainders) must give each image its own output and gradient."""
    rng = np.random.default_rng(n + width)
    c, o, h, kh, padding = 4, 4, 48, 3, (1, 1)  # one image: 200+ KB of transforms
    x = rng.standard_normal((n, c, h, width)).astype(np.float32)
    w = rng.standard_normal((o, c, kh, 3)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    oh, ow = h, width
    dy = rng.standard_normal((n, o, oh, ow)).astype(np.float32)
    tiles = -(-ow // 4)
    per_image = 6 * (c * h + o * oh) * tiles * 4
    limit = (
        convlab.get_workspace_limit() if images_per_chunk is None else images_per_chunk * per_image
    )
    with workspace_limit(limit):
        plan = list(conv_winograd._chunks(n, per_image, tiles))
        y = np.empty((n, o, oh, ow), np.float32)
        conv_winograd.forward(x, w, b, y, padding, 1, 2)
        dw, db = np.empty(w.shape, np.float32), np.empty(o, np.float32)
        conv_winograd.weight_gradient(dy, x, dw, db, padding, 1, 2)
    assert [k for _, k, _ in plan] and sum(k for _, k, _ in plan) == n
    assert max(g for _, _, g in plan) > 1 and len({g for _, _, g in plan}) > 1
    exact = ref.conv2d(x, w, b, (1, 1), padding, (1, 1))
    assert np.all(np.abs(y - exact) <= bound(x, w, b, padding, 1))
    _, exact_dw, exact_db = ref.conv2d_grads(x, w, dy, (1, 1), padding, (1, 1))
    assert np.all(np.abs(dw - exact_dw) <= weight_gradient_bound(x, dy, kh, padding, 1))
    np.testing.assert_allclose(db, exact_db, rtol=1e-4, atol=1e-4)


def test_other_shapes_keep_the_direct_path():
    f32 = np.float32
    assert not conv_winograd.applies(
        (2, 16, 10, 60), (16, 16, 5, 3), (1, 2), (2, 1), (1, 1), (10, 30), f32
    )  # stride
    assert not conv_winograd.applies(
        (2, 16, 10, 60), (16, 16, 5, 5), (1, 1), (2, 2), (1, 1), (10, 60), f32
    )  # kernel width
    assert not conv_winograd.applies(
        (2, 3, 10, 60), (16, 3, 5, 3), (1, 1), (2, 1), (1, 1), (10, 60), f32
    )  # few channels
    assert not conv_winograd.applies(
        (2, 16, 10, 60), (16, 16, 5, 3), (1, 1), (2, 1), (1, 1), (10, 60), np.float64
    )  # float64 keeps the exact sum
    assert not conv_winograd.applies(
        (2, 128, 8, 8), (128, 128, 3, 3), (1, 1), (1, 1), (1, 1), (8, 8), f32
    )  # map too small to fill the panels


def test_short_rows_with_64_channels_take_winograd():
    """The I5 model's layer 2 (4 tiles a row): measured faster than the direct path."""
    assert conv_winograd.applies(
        (2, 64, 16, 15), (128, 64, 5, 3), (1, 1), (2, 1), (1, 1), (16, 15), np.float32
    )


@pytest.mark.parametrize("kh, padding", [(1, (0, 0)), (2, (1, 1)), (3, (1, 2))])
def test_transforms_on_a_shallow_sum(kh, padding):
    """Called directly (the backend keeps such small convolutions direct), a depth of a few
    products leaves a tight bound: any wrong transform coefficient shows."""
    rng = np.random.default_rng(kh)
    x = rng.standard_normal((2, 2, 5, 23)).astype(np.float32)
    w = rng.standard_normal((3, 2, kh, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    exact = ref.conv2d(x, w, b, (1, 1), padding, (1, 1))
    y = np.empty(exact.shape, np.float32)
    conv_winograd.forward(x, w, b, y, padding, 1, 2)
    assert np.all(np.abs(y - exact) <= bound(x, w, b, padding, 1))


def _grouped_rows(rows_per_image, n, group, tiles):
    """(destination row, column offset) of every source row in _winograd's grouped layout."""
    out = []
    for r in range(n * rows_per_image):
        image, q = divmod(r, rows_per_image)
        out.append(((image // group) * rows_per_image + q, (image % group) * tiles))
    return out


@contextlib.contextmanager
def isa(name):
    from convlab._cpu import _gemm

    before = _gemm.get_isa()
    _gemm.set_isa(name)
    try:
        yield
    finally:
        _gemm.set_isa(before)


# (images, rows per image, width, pad, group): 15 tiles (the chart rows), 45 tiles (I60:
# three 16-tile steps), widths that are not multiples of 4, every padding
ROW_CASES = [
    (4, 3, 60, 1, 2),
    (2, 2, 180, 1, 1),
    (3, 2, 23, 0, 3),
    (2, 1, 37, 2, 2),
    (1, 1, 5, 1, 1),
]


@pytest.mark.parametrize("n, rows, width, pad, group", ROW_CASES)
def test_row_transforms_against_the_matrices_on_every_isa(n, rows, width, pad, group):
    from convlab._cpu import _gemm, _winograd

    rng = np.random.default_rng(width)
    ow = width + 2 * pad - 2
    tiles = -(-ow // 4)
    x = rng.standard_normal((n * rows, width)).astype(np.float32)
    dy = rng.standard_normal((n * rows, ow)).astype(np.float32)
    m = rng.standard_normal((6, n // group * rows, group * tiles)).astype(np.float32)
    bias = rng.standard_normal(rows).astype(np.float32)  # one channel per row here
    # the references, in float64 from the matrices
    xp = np.zeros((n * rows, 4 * tiles + 2))
    xp[:, pad : pad + width] = x
    d = np.stack([xp[:, j : j + 4 * tiles : 4] for j in range(6)], axis=-1)  # (rows, T, 6)
    e = np.zeros((n * rows, 4 * tiles))
    e[:, :ow] = dy
    e = e.reshape(n * rows, tiles, 4)
    v_ref = np.zeros((6,) + m.shape[1:])
    t_ref = np.zeros((6,) + m.shape[1:])
    y_ref = np.zeros((n * rows, ow))
    for r, (dest, col) in enumerate(_grouped_rows(rows, n, group, tiles)):
        v_ref[:, dest, col : col + tiles] = (d[r] @ B_T.T).T
        t_ref[:, dest, col : col + tiles] = (e[r] @ A_T).T
        tile_out = m[:, dest, col : col + tiles].T.astype(float) @ A_T.T  # (T, 4)
        y_ref[r] = tile_out.reshape(-1)[:ow] + bias[r % rows]
    results = {}
    for name in _gemm.supported_isas():
        with isa(name):
            v = np.full((6,) + m.shape[1:], np.nan, np.float32)
            t = np.full((6,) + m.shape[1:], np.nan, np.float32)
            y = np.full((n * rows, ow), np.nan, np.float32)
            assert _winograd.input_transform(x, v, pad, rows, group, 2)
            assert _winograd.gradient_transform(dy, t, rows, group, 2)
            _winograd.output_transform(m, y, bias, 1, rows, group, 2)
        # a few float32 roundings of values the size of |B^T| |d|
        np.testing.assert_allclose(v, v_ref, rtol=0, atol=1e-5 * (np.abs(d) @ np.abs(B_T).T).max())
        np.testing.assert_allclose(t, t_ref, rtol=0, atol=1e-5 * 15 * np.abs(dy).max())
        np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-5 * 15 * np.abs(m).max())
        results[name] = (v, t, y)
    # the same operations in the same order on every ISA: the same floats
    first = next(iter(results.values()))
    for name, got in results.items():
        for a, b in zip(got, first):
            np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("where", [0, 17, 59])
def test_row_transforms_report_non_finite_values_on_every_isa(value, where):
    from convlab._cpu import _gemm, _winograd

    x = np.ones((3, 60), np.float32)
    x[1, where] = value
    for name in _gemm.supported_isas():
        with isa(name):
            v = np.empty((6, 3, 15), np.float32)
            t = np.empty((6, 3, 15), np.float32)
            assert not _winograd.input_transform(x, v, 1, 3, 1, 2), name
            assert not _winograd.gradient_transform(x, t, 3, 1, 2), name
            assert _winograd.input_transform(np.ones_like(x), v, 1, 3, 1, 2), name
