"""Layers of issue 29 item 8 against PyTorch (CPU) as the oracle: transposed convolution,
layer / group / instance norm, interpolation, padding and activations. Values and gradients
of every input (data, weight, bias) in float32 and float64 on each backend, odd shapes, and the
error cases."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch

DTYPES = [np.float32, np.float64]

# the deprecated upsample_* aliases warn on both sides (test_upsample_aliases_warn checks ours)
pytestmark = pytest.mark.filterwarnings("ignore:`nn.functional.upsample")


def F(lib):
    return lib.nn.functional


def _normal(*shape, scale=1.0, shift=0.0):
    return lambda rng: rng.normal(size=shape) * scale + shift


# id -> (fn(L, *tensors), input makers, indices of inputs that get a gradient)
CASES: dict = {
    "conv_transpose2d": (
        lambda L, x, w, b: F(L).conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
        (_normal(2, 3, 5, 4), _normal(3, 4, 3, 3), _normal(4)),
        (0, 1, 2),
    ),
    "conv_transpose2d_rect_dilated": (
        lambda L, x, w: F(L).conv_transpose2d(x, w, None, (1, 3), (0, 2), (0, 2), 1, (2, 1)),
        (_normal(1, 2, 3, 4), _normal(2, 3, 2, 5)),
        (0, 1),
    ),
    "conv_transpose2d_output_padding_below_dilation": (
        # output_padding 1 >= stride 1 but < dilation 2: a row and column of bias only
        lambda L, x, w, b: F(L).conv_transpose2d(x, w, b, 1, 0, 1, 1, 2),
        (_normal(2, 2, 3, 3), _normal(2, 3, 3, 3), _normal(3)),
        (0, 1, 2),
    ),
    "conv_transpose2d_unbatched": (
        lambda L, x, w, b: F(L).conv_transpose2d(x, w, b, stride=3),
        (_normal(2, 2, 3), _normal(2, 1, 4, 4), _normal(1)),
        (0, 1, 2),
    ),
    "conv_transpose2d_grouped": (
        lambda L, x, w, b: F(L).conv_transpose2d(x, w, b, 2, 1, 1, 3, 1),
        (_normal(2, 6, 4, 3), _normal(6, 2, 3, 3), _normal(6)),
        (0, 1, 2),
    ),
    "conv_transpose2d_depthwise": (
        lambda L, x, w: F(L).conv_transpose2d(x, w, None, 1, 1, 0, 4, (1, 2)),
        (_normal(1, 4, 5, 5), _normal(4, 1, 3, 2)),
        (0, 1),
    ),
    "conv_transpose1d_grouped": (
        lambda L, x, w, b: F(L).conv_transpose1d(x, w, b, 2, 0, 0, 2),
        (_normal(2, 4, 5), _normal(4, 3, 3), _normal(6)),
        (0, 1, 2),
    ),
    "conv_transpose1d": (
        lambda L, x, w, b: F(L).conv_transpose1d(x, w, b, 2, 1, 1, 1, 2),
        (_normal(2, 3, 7), _normal(3, 2, 3), _normal(2)),
        (0, 1, 2),
    ),
    "layer_norm": (
        lambda L, x, w, b: F(L).layer_norm(x, (5, 6), w, b),
        (_normal(3, 4, 5, 6, scale=3, shift=2), _normal(5, 6), _normal(5, 6)),
        (0, 1, 2),
    ),
    "layer_norm_plain_eps": (
        lambda L, x: F(L).layer_norm(x, [7], eps=0.1),
        (_normal(2, 7, scale=0.5),),
        (0,),
    ),
    "layer_norm_1d_input": (
        lambda L, x, w: F(L).layer_norm(x, (9,), w),
        (_normal(9), _normal(9)),
        (0, 1),
    ),
    "group_norm": (
        lambda L, x, w, b: F(L).group_norm(x, 3, w, b),
        (_normal(2, 6, 5, 3, scale=2, shift=-1), _normal(6), _normal(6)),
        (0, 1, 2),
    ),
    "group_norm_3d_no_affine": (
        lambda L, x: F(L).group_norm(x, 2, eps=1e-3),
        (_normal(3, 4, 5),),
        (0,),
    ),
    "group_norm_2d_one_group": (
        lambda L, x, w, b: F(L).group_norm(x, 1, w, b),
        (_normal(4, 5), _normal(5), _normal(5)),
        (0, 1, 2),
    ),
    "instance_norm": (
        lambda L, x, w, b: F(L).instance_norm(x, weight=w, bias=b),
        (_normal(2, 3, 4, 5, scale=4), _normal(3), _normal(3)),
        (0, 1, 2),
    ),
    "instance_norm_1d": (
        lambda L, x: F(L).instance_norm(x, eps=0.01),
        (_normal(3, 2, 6),),
        (0,),
    ),
}


def _with_zero_rows(*shape):
    def make(rng):
        x = rng.normal(size=shape)
        x[0, ..., 0] = 0  # a zero slice: the norm is clamped to eps there
        return x

    return make


for _p in (2.0, 1.0, 3.0, 0.5, float("inf")):
    for _dim in (1, -1, 0):
        CASES[f"normalize_p{_p}_dim{_dim}"] = (
            lambda L, x, p=_p, dim=_dim: F(L).normalize(x, p, dim),
            (_with_zero_rows(3, 4, 5),),
            (0,),
        )
CASES["normalize_eps"] = (
    lambda L, x: F(L).normalize(x, eps=0.5),
    (_normal(6, 3, scale=0.2),),
    (0,),
)

# interpolation: every mode, size and scale_factor, up and down, odd ratios
_RESIZES = {
    "scale2": ((2, 3, 5, 7), {"scale_factor": 2}),
    "size_odd": ((2, 3, 5, 7), {"size": (3, 11)}),
    "scale_pair_down_up": ((1, 2, 4, 6), {"scale_factor": (0.5, 1.7)}),
    "scale_recomputed": ((1, 2, 6, 5), {"scale_factor": 1.3, "recompute_scale_factor": True}),
    "same_size_odd_scale": ((1, 2, 5, 7), {"scale_factor": (2.0, 1.1)}),
    "to_one": ((1, 1, 3, 4), {"size": (1, 1)}),
    "from_one": ((1, 2, 1, 1), {"size": (3, 2)}),
}
for _name, (_shape, _kw) in _RESIZES.items():
    for _mode, _ac in [
        ("nearest", None),
        ("nearest-exact", None),
        ("bilinear", False),
        ("bilinear", True),
        ("bicubic", False),
        ("bicubic", True),
        ("area", None),
    ]:
        CASES[f"interpolate_{_name}_{_mode}_{_ac}"] = (
            lambda L, x, kw=_kw, mode=_mode, ac=_ac: F(L).interpolate(
                x, mode=mode, align_corners=ac, **kw
            ),
            (_normal(*_shape),),
            (0,),
        )
for _mode, _ac in [("nearest", None), ("nearest-exact", None), ("linear", False), ("linear", True)]:
    for _kw in ({"size": 13}, {"scale_factor": 0.6}, {"scale_factor": 1.1}):
        if _mode == "nearest" and _kw == {"scale_factor": 1.1}:
            # PyTorch's 1-D nearest forward reads floor(j / 1.1) but its backward treats the
            # same-size axis as a copy; convlab's gradient is the forward's true adjoint
            continue
        CASES[f"interpolate_1d_{_mode}_{_ac}_{_kw}"] = (
            lambda L, x, kw=_kw, mode=_mode, ac=_ac: F(L).interpolate(
                x, mode=mode, align_corners=ac, **kw
            ),
            (_normal(2, 3, 7),),
            (0,),
        )
for _kw in ({"scale_factor": 2}, {"size": (3, 5, 4)}, {"scale_factor": (1.0, 1.1, 0.6)}):
    for _ac in (False, True):
        CASES[f"interpolate_trilinear_{_kw}_{_ac}"] = (
            lambda L, x, kw=_kw, ac=_ac: F(L).interpolate(
                x, mode="trilinear", align_corners=ac, **kw
            ),
            (_normal(1, 2, 2, 3, 4),),
            (0,),
        )
CASES["interpolate_area_1d"] = (
    lambda L, x: F(L).interpolate(x, scale_factor=0.5, mode="area"),
    (_normal(2, 3, 9),),
    (0,),
)
for _lead, _r in (((2,), 2), ((2, 3), 3), ((), 2)):
    CASES[f"pixel_shuffle_{_lead}_{_r}"] = (
        lambda L, x, r=_r: F(L).pixel_shuffle(x, r),
        (_normal(*_lead, 2 * _r * _r, 3, 4),),
        (0,),
    )
    CASES[f"pixel_unshuffle_{_lead}_{_r}"] = (
        lambda L, x, r=_r: F(L).pixel_unshuffle(x, r),
        (_normal(*_lead, 2, 3 * _r, 2 * _r),),
        (0,),
    )
CASES["interpolate_3d_nearest"] = (
    lambda L, x: F(L).interpolate(x, scale_factor=(2, 1.5, 0.8)),
    (_normal(1, 2, 2, 3, 5),),
    (0,),
)
CASES["upsample_bilinear_deprecated"] = (
    lambda L, x: F(L).upsample_bilinear(x, scale_factor=2),
    (_normal(1, 2, 3, 4),),
    (0,),
)

# padding: every mode, one to three padded dimensions, batched and not, cropping
for _mode in ("constant", "reflect", "replicate", "circular"):
    for _shape, _pad in [
        ((2, 3, 5), (2, 1)),
        ((3, 5), (0, 4)),
        ((2, 3, 4, 5), (1, 2, 3, 0)),
        ((3, 4, 5), (2, 2, 1, 1)),
        ((1, 2, 3, 4, 5), (1, 0, 2, 1, 1, 2)),
        ((2, 3, 4, 6), (-1, 2, 1, -2)),
    ]:
        CASES[f"pad_{_mode}_{_shape}_{_pad}"] = (
            lambda L, x, pad=_pad, mode=_mode: F(L).pad(x, pad, mode),
            (_normal(*_shape),),
            (0,),
        )
CASES["pad_constant_value_all_dims"] = (
    lambda L, x: F(L).pad(x, (1, 1, 0, 2, -1, 1), value=-2.5),
    (_normal(3, 2, 4),),
    (0,),
)


def _inputs(case, rng, dtype):
    return [make(rng).astype(dtype) for make in CASES[case][1]]


def _run(lib, case, arrays, device="cpu", requires=()):
    if lib is convlab:
        tensors = [
            convlab.tensor(a, device=device, requires_grad=i in requires)
            for i, a in enumerate(arrays)
        ]
    else:
        tensors = [torch.tensor(a, requires_grad=i in requires) for i, a in enumerate(arrays)]
    return CASES[case][0](lib, *tensors), tensors


def _tolerance(dtype):
    return {"rtol": 1e-4, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-11}


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(CASES))
def test_values_and_gradients_match_torch(backend, case, dtype):
    rng = np.random.default_rng(3)
    arrays = _inputs(case, rng, dtype)
    wanted = CASES[case][2]
    ours, ours_in = _run(convlab, case, arrays, backend.name, wanted)
    theirs, theirs_in = _run(torch, case, arrays, requires=wanted)
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.numpy().dtype == dtype
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), **_tolerance(dtype))
    weights = rng.normal(size=tuple(ours.shape)).astype(dtype)
    ours.backward(convlab.tensor(weights, device=backend.name))
    theirs.backward(torch.tensor(weights))
    for i in wanted:
        assert ours_in[i].grad.numpy().dtype == dtype
        np.testing.assert_allclose(
            ours_in[i].grad.numpy(),
            theirs_in[i].grad.numpy(),
            err_msg=f"gradient of input {i}",
            **_tolerance(dtype),
        )


# ---------------------------------------------------------------------------------------------
# modules: PyTorch's weights copied in, outputs, gradients and running statistics compared


def _copy_state(ours, theirs, device):
    """Copy every parameter and buffer of the torch module into ours (same names)."""
    theirs_state = theirs.state_dict()
    ours_state = ours.state_dict()
    assert sorted(ours_state) == sorted(theirs_state)
    for name, value in theirs_state.items():
        ours_state[name]._data[...] = convlab.tensor(value.numpy(), device=device)._data


MODULES: dict = {
    "ConvTranspose2d": (
        lambda L: L.nn.ConvTranspose2d(3, 5, (3, 2), stride=2, padding=(1, 0), output_padding=1),
        (2, 3, 4, 5),
    ),
    "ConvTranspose2d_no_bias": (
        lambda L: L.nn.ConvTranspose2d(2, 3, 4, stride=2, padding=1, bias=False, dilation=1),
        (1, 2, 3, 3),
    ),
    "ConvTranspose1d": (
        lambda L: L.nn.ConvTranspose1d(4, 2, 5, stride=3, padding=2),
        (2, 4, 6),
    ),
    "ConvTranspose2d_groups": (
        lambda L: L.nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2, dilation=2),
        (2, 4, 3, 4),
    ),
    "LayerNorm": (lambda L: L.nn.LayerNorm([4, 3]), (2, 5, 4, 3)),
    "LayerNorm_no_bias": (lambda L: L.nn.LayerNorm(3, eps=1e-3, bias=False), (2, 3)),
    "LayerNorm_no_affine": (lambda L: L.nn.LayerNorm(6, elementwise_affine=False), (4, 6)),
    "GroupNorm": (lambda L: L.nn.GroupNorm(2, 4), (3, 4, 5, 2)),
    "GroupNorm_no_affine": (lambda L: L.nn.GroupNorm(3, 6, affine=False), (2, 6, 3)),
    "GroupNorm_no_bias": (lambda L: L.nn.GroupNorm(1, 3, bias=False), (2, 3, 2, 2)),
    "InstanceNorm2d": (lambda L: L.nn.InstanceNorm2d(3), (2, 3, 4, 5)),
    "InstanceNorm2d_affine_tracked": (
        lambda L: L.nn.InstanceNorm2d(3, affine=True, track_running_stats=True, momentum=0.3),
        (2, 3, 4, 5),
    ),
    "InstanceNorm2d_unbatched": (
        lambda L: L.nn.InstanceNorm2d(2, track_running_stats=True),
        (2, 3, 3),
    ),
    "InstanceNorm1d_cumulative": (
        lambda L: L.nn.InstanceNorm1d(3, affine=True, track_running_stats=True, momentum=None),
        (2, 3, 7),
    ),
}


def _module_pair(name, dtype, device):
    theirs = MODULES[name][0](torch).to(torch.float64 if dtype == np.float64 else torch.float32)
    ours = MODULES[name][0](convlab).to(device)
    if dtype == np.float64:
        ours = ours.double()
    _copy_state(ours, theirs, device)
    return ours, theirs


def _randomize(module, rng):
    """Random parameters, so a wrong weight / bias broadcast cannot pass unseen."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.tensor(rng.normal(size=tuple(p.shape))))


_UPSAMPLE = {
    "Upsample_nearest": lambda L: L.nn.Upsample(scale_factor=2),
    "Upsample_bilinear": lambda L: L.nn.Upsample(size=(7, 5), mode="bilinear"),
    "UpsamplingNearest2d": lambda L: L.nn.UpsamplingNearest2d(scale_factor=3),
    "UpsamplingBilinear2d": lambda L: L.nn.UpsamplingBilinear2d(size=(5, 9)),
    "ZeroPad2d": lambda L: L.nn.ZeroPad2d((1, 2, 0, 3)),
    "ConstantPad2d": lambda L: L.nn.ConstantPad2d(2, 3.5),
    "ConstantPad1d": lambda L: L.nn.ConstantPad1d((3, 1), -1.0),
    "ZeroPad1d": lambda L: L.nn.ZeroPad1d(2),
    "ReflectionPad2d": lambda L: L.nn.ReflectionPad2d((1, 2, 2, 1)),
    "ReflectionPad1d": lambda L: L.nn.ReflectionPad1d(3),
    "ReplicationPad2d": lambda L: L.nn.ReplicationPad2d(3),
    "ReplicationPad1d": lambda L: L.nn.ReplicationPad1d((0, 2)),
    "CircularPad2d": lambda L: L.nn.CircularPad2d((2, 0, 1, 3)),
    "CircularPad1d": lambda L: L.nn.CircularPad1d(1),
    "Upsample_bicubic_align": lambda L: L.nn.Upsample(
        scale_factor=(1.5, 2), mode="bicubic", align_corners=True
    ),
    "PixelShuffle": lambda L: L.nn.PixelShuffle(1),
    "PixelUnshuffle": lambda L: L.nn.PixelUnshuffle(2),
}


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(MODULES))
def test_modules_match_torch(backend, name, dtype):
    rng = np.random.default_rng(5)
    theirs_only = MODULES[name][0](torch)
    _randomize(theirs_only, rng)
    ours, theirs = _module_pair(name, dtype, backend.name)
    with torch.no_grad():
        for p, q in zip(theirs.parameters(), theirs_only.parameters()):
            p.copy_(q)
    _copy_state(ours, theirs, backend.name)
    tol = _tolerance(dtype)
    for mode in ("train", "eval", "train"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        x = rng.normal(size=MODULES[name][1]).astype(dtype) * 2 + 0.5
        ox = convlab.tensor(x, device=backend.name, requires_grad=True)
        tx = torch.tensor(x, requires_grad=True)
        oy, ty = ours(ox), theirs(tx)
        np.testing.assert_allclose(oy.numpy(), ty.detach().numpy(), **tol, err_msg=mode)
        g = rng.normal(size=tuple(ty.shape)).astype(dtype)
        oy.backward(convlab.tensor(g, device=backend.name))
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), **tol, err_msg=mode)
        for (pname, p), q in zip(ours.named_parameters(), theirs.parameters()):
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), **tol, err_msg=pname)
            p.grad = None
            q.grad = None
        for (bname, b), c in zip(ours.named_buffers(), theirs.buffers()):
            np.testing.assert_allclose(b.numpy(), c.numpy(), **tol, err_msg=bname)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


@needs_torch
@pytest.mark.parametrize(
    "name",
    [
        "ConvTranspose2d",
        "ConvTranspose1d",
        "ConvTranspose2d_groups",
        "LayerNorm",
        "LayerNorm_no_bias",
        "GroupNorm",
        "GroupNorm_no_bias",
        "InstanceNorm2d",
        "InstanceNorm2d_affine_tracked",
    ],
)
def test_module_repr_matches_torch(name):
    assert repr(MODULES[name][0](convlab)) == repr(MODULES[name][0](torch))


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(_UPSAMPLE))
def test_resizing_and_padding_modules_match_torch(backend, name, dtype):
    rng = np.random.default_rng(2)
    ours, theirs = _UPSAMPLE[name](convlab), _UPSAMPLE[name](torch)
    assert repr(ours) == repr(theirs)
    shape = (2, 3, 4) if name.endswith("1d") else (2, 3, 4, 6)
    x = rng.normal(size=shape).astype(dtype)
    ox = convlab.tensor(x, device=backend.name, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    oy, ty = ours(ox), theirs(tx)
    np.testing.assert_allclose(oy.numpy(), ty.detach().numpy(), **_tolerance(dtype))
    g = rng.normal(size=tuple(ty.shape)).astype(dtype)
    oy.backward(convlab.tensor(g, device=backend.name))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), **_tolerance(dtype))


@needs_torch
def test_conv_transpose_default_init_matches_torch_bounds():
    # kaiming_uniform(a=sqrt(5)) on fan_in = weight.shape[1] * K: bound 1/sqrt(fan_in)
    m = convlab.nn.ConvTranspose2d(16, 3, 4)
    fan_in = 3 * 16
    w, b = m.weight.numpy(), m.bias.numpy()
    assert w.shape == tuple(torch.nn.ConvTranspose2d(16, 3, 4).weight.shape)
    assert np.abs(w).max() <= 1 / np.sqrt(fan_in) and np.abs(w).max() > 0.8 / np.sqrt(fan_in)
    assert np.abs(b).max() <= 1 / np.sqrt(fan_in)


@needs_torch
@pytest.mark.parametrize("output_size", [(9, 11), (10, 12), [2, 5, 10, 11]])
def test_conv_transpose_output_size_matches_torch(output_size):
    rng = np.random.default_rng(1)
    theirs = torch.nn.ConvTranspose2d(3, 5, 3, stride=2, padding=1).double()
    ours = convlab.nn.ConvTranspose2d(3, 5, 3, stride=2, padding=1).double()
    _copy_state(ours, theirs, "cpu")
    x = rng.normal(size=(2, 3, 5, 6))
    ty = theirs(torch.tensor(x), output_size=output_size)
    oy = ours(convlab.tensor(x), output_size=output_size)
    assert tuple(oy.shape) == tuple(ty.shape)
    np.testing.assert_allclose(oy.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# errors: PyTorch's exception types, messages naming the argument


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: F(convlab).conv_transpose2d(
                convlab.zeros(1, 2, 3, 3), convlab.zeros(3, 2, 3, 3)
            ),
            ValueError,
            "weight",
        ),
        (
            lambda: F(convlab).conv_transpose2d(
                convlab.zeros(1, 2, 3, 3), convlab.zeros(2, 2, 3, 3), output_padding=1
            ),
            ValueError,
            "output_padding",
        ),
        (
            lambda: F(convlab).conv_transpose2d(
                convlab.zeros(1, 2, 3, 3), convlab.zeros(2, 2, 3, 3), convlab.zeros(3)
            ),
            ValueError,
            "bias",
        ),
        (
            lambda: F(convlab).conv_transpose2d(
                convlab.zeros(1, 2, 1, 1), convlab.zeros(2, 2, 1, 1), padding=1
            ),
            ValueError,
            "output size",
        ),
        (
            lambda: F(convlab).conv_transpose2d(convlab.zeros(2, 3, 3), convlab.zeros(2, 3)),
            ValueError,
            "weight",
        ),
        (
            lambda: F(convlab).conv_transpose2d(
                convlab.zeros(1, 2, 3, 3, dtype=convlab.float64), convlab.zeros(2, 2, 3, 3)
            ),
            TypeError,
            "dtype",
        ),
        (lambda: F(convlab).layer_norm(convlab.zeros(2, 3), (4,)), ValueError, "normalized"),
        (
            lambda: F(convlab).layer_norm(convlab.zeros(2, 3), 3, convlab.zeros(4)),
            ValueError,
            "weight",
        ),
        (lambda: F(convlab).group_norm(convlab.zeros(2, 6, 3), 4), ValueError, "num_groups"),
        (
            lambda: F(convlab).group_norm(
                convlab.zeros(2, 6, 3), 3, convlab.zeros(6, dtype=convlab.float64)
            ),
            TypeError,
            "dtype",
        ),
        (
            lambda: F(convlab).layer_norm(
                convlab.zeros(2, 3), (3,), None, convlab.zeros(3, dtype=convlab.float64)
            ),
            TypeError,
            "dtype",
        ),
        (lambda: F(convlab).group_norm(convlab.zeros(6), 2), ValueError, "2 dimensions"),
        (
            lambda: F(convlab).group_norm(convlab.zeros(2, 6), 3, None, convlab.zeros(5)),
            ValueError,
            "bias",
        ),
        (lambda: F(convlab).instance_norm(convlab.zeros(2, 3, 1)), ValueError, "spatial"),
        (lambda: F(convlab).instance_norm(convlab.zeros(2, 3)), ValueError, "3 dimensions"),
        (
            lambda: F(convlab).instance_norm(convlab.zeros(2, 3, 4), use_input_stats=False),
            ValueError,
            "running_mean",
        ),
        (lambda: convlab.nn.GroupNorm(4, 6), ValueError, "num_channels"),
        (lambda: convlab.nn.InstanceNorm2d(3)(convlab.zeros(2, 3)), ValueError, "4D"),
        (
            lambda: convlab.nn.InstanceNorm2d(3, affine=True)(convlab.zeros(1, 4, 2, 2)),
            ValueError,
            "num_features",
        ),
        (lambda: convlab.nn.ConvTranspose2d(4, 2, 3, groups=3), ValueError, "groups"),
        (lambda: convlab.nn.ConvTranspose2d(4, 3, 3, groups=2), ValueError, "out_channels"),
        (
            lambda: F(convlab).conv_transpose2d(
                convlab.zeros(1, 4, 3, 3), convlab.zeros(4, 2, 3, 3), groups=3
            ),
            ValueError,
            "groups",
        ),
        (
            lambda: F(convlab).conv_transpose2d(
                convlab.zeros(1, 4, 3, 3), convlab.zeros(4, 2, 3, 3), convlab.zeros(2), groups=2
            ),
            ValueError,
            r"bias: expected shape \(4,\)",
        ),
        (
            lambda: convlab.nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect"),
            ValueError,
            "padding_mode",
        ),
        (
            lambda: convlab.nn.ConvTranspose2d(2, 2, 3, stride=2)(
                convlab.zeros(1, 2, 4, 4), output_size=(12, 12)
            ),
            ValueError,
            "output_size",
        ),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


_X4 = convlab.zeros(1, 2, 3, 4)
_X3 = convlab.zeros(2, 3, 4)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: F(convlab).interpolate(_X4), ValueError, "size or scale_factor"),
        (lambda: F(convlab).interpolate(_X4, 2, 2.0), ValueError, "only one"),
        (lambda: F(convlab).interpolate(_X4, (2, 3, 4)), ValueError, "size"),
        (lambda: F(convlab).interpolate(_X4, scale_factor=(2.0,)), ValueError, "scale_factor"),
        (lambda: F(convlab).interpolate(_X4, 2, mode="cubic"), ValueError, "mode"),
        (lambda: F(convlab).interpolate(_X4, 2, mode="lanczos"), NotImplementedError, "lanczos"),
        (
            lambda: F(convlab).interpolate(_X4, 2, mode="bilinear", antialias=True),
            NotImplementedError,
            "antialias",
        ),
        (
            lambda: F(convlab).interpolate(convlab.zeros(1, 1, 2, 2, 2), 4, mode="area"),
            NotImplementedError,
            "5D input",
        ),
        (
            lambda: F(convlab).interpolate(_X4, 2, mode="area", align_corners=False),
            ValueError,
            "align_corners",
        ),
        (lambda: F(convlab).pixel_shuffle(_X4, 2), ValueError, "divisible"),
        (lambda: F(convlab).pixel_unshuffle(_X4, 2), ValueError, "divisible"),
        (lambda: F(convlab).pixel_shuffle(convlab.zeros(4, 2), 2), ValueError, "3 dimensions"),
        (lambda: F(convlab).pixel_shuffle(_X4, 0), ValueError, "positive"),
        (lambda: F(convlab).pixel_shuffle(_X4, 1.5), TypeError, "int"),
        (lambda: F(convlab).interpolate(_X4, 2, align_corners=True), ValueError, "align_corners"),
        (lambda: F(convlab).interpolate(_X4, 2, mode="linear"), NotImplementedError, "4D input"),
        (
            lambda: F(convlab).interpolate(convlab.zeros(1, 2, 3), 4, mode="bilinear"),
            NotImplementedError,
            "3D input",
        ),
        (
            lambda: F(convlab).interpolate(_X4, 5, recompute_scale_factor=True),
            ValueError,
            "recompute_scale_factor",
        ),
        (lambda: F(convlab).interpolate(_X4, scale_factor=0.1), ValueError, "empty"),
        (lambda: F(convlab).pad(_X4, (1,)), RuntimeError, "divisible by 2"),
        (lambda: F(convlab).pad(_X4, (1,) * 10), RuntimeError, "less than or equal"),
        (lambda: F(convlab).pad(_X4, (1, 1), "wrap"), NotImplementedError, "wrap"),
        (lambda: F(convlab).pad(_X3, (4, 1), "reflect"), RuntimeError, "less than"),
        (lambda: F(convlab).pad(_X3, (5, 1), "circular"), RuntimeError, "at most"),
        (lambda: F(convlab).pad(_X3, (1, 1) * 3, "reflect"), NotImplementedError, "3D"),
        (lambda: F(convlab).pad(convlab.zeros(3), (1, 1), "replicate"), NotImplementedError, "1D"),
        (lambda: F(convlab).pad(_X4, (1, 1), "reflect", 2.0), ValueError, "value"),
        (lambda: F(convlab).pad(_X4, (-3, -2)), RuntimeError, "negative"),
        (lambda: F(convlab).pad(_X4, (1.5, 1)), TypeError, "ints"),
    ],
)
def test_resize_and_pad_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@needs_torch
def test_instance_norm_mismatched_channels_without_affine_warns_like_torch():
    x = np.random.default_rng(0).normal(size=(2, 4, 3, 3)).astype(np.float32)
    with pytest.warns(UserWarning, match="num_features"):
        ours = convlab.nn.InstanceNorm2d(3)(convlab.tensor(x))
    with pytest.warns(UserWarning, match="num_features"):
        theirs = torch.nn.InstanceNorm2d(3)(torch.tensor(x))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["upsample", "upsample_nearest", "upsample_bilinear"])
def test_upsample_aliases_warn(name):
    with pytest.warns(UserWarning, match=f"`nn.functional.{name}` is deprecated"):
        out = getattr(F(convlab), name)(convlab.ones(1, 1, 2, 2), scale_factor=2)
    assert out.shape == (1, 1, 4, 4)
    np.testing.assert_array_equal(out.numpy(), np.ones((1, 1, 4, 4), np.float32))


def _dcgan_generator(L, nz=6, ngf=4, nc=3):
    # pytorch/examples dcgan's generator (scaled down), as written there
    nn = L.nn
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * 4),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 2),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, nc, 4, 2, 1, bias=False),
        nn.Tanh(),
    )


def _autoencoder(L):
    # an autoencoder / U-Net style decoder: reflection padding, group and instance norm,
    # upsampling, SiLU / GELU / PReLU, channel dropout (evaluated in eval mode)
    nn = L.nn
    return nn.Sequential(
        nn.ReflectionPad2d(1),
        nn.Conv2d(3, 8, 3),
        nn.GroupNorm(2, 8),
        nn.SiLU(inplace=True),
        nn.Conv2d(8, 8, 3, stride=2, padding=1),
        nn.InstanceNorm2d(8, affine=True),
        nn.GELU(),
        nn.Dropout2d(0.3),
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.ReplicationPad2d((0, 1, 1, 0)),
        nn.Conv2d(8, 4, 2),
        nn.PReLU(4),
        nn.Flatten(),
        nn.Unflatten(1, (4, 6, 6)),
        nn.LayerNorm([6, 6]),
        nn.ConvTranspose2d(4, 3, 3, stride=1, padding=1),
        nn.Hardswish(),
    )


@needs_torch
@pytest.mark.parametrize(
    "build, shape", [(_dcgan_generator, (3, 6, 1, 1)), (_autoencoder, (2, 3, 6, 6))]
)
def test_small_programs_match_torch(backend, build, shape):
    rng = np.random.default_rng(12)
    theirs = build(torch).double()
    _randomize(theirs, rng)
    ours = build(convlab).to(backend.name).double()
    _copy_state(ours, theirs, backend.name)
    for mode in ("train", "eval"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        if build is _autoencoder and mode == "train":
            continue  # Dropout2d's draws differ from PyTorch's; eval mode compares it
        x = rng.normal(size=shape)
        ox = convlab.tensor(x, device=backend.name, requires_grad=True)
        tx = torch.tensor(x, requires_grad=True)
        oy, ty = ours(ox), theirs(tx)
        np.testing.assert_allclose(oy.numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-11)
        (oy * oy).sum().backward()
        (ty * ty).sum().backward()
        np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-10)
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            np.testing.assert_allclose(
                p.grad.numpy(), q.grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name
            )
            p.grad = q.grad = None


@needs_torch
@pytest.mark.parametrize(
    "shape, num_classes", [((5,), -1), ((2, 3), -1), ((5,), 7), ((2, 3), 7), ((0,), 7)]
)
def test_one_hot_matches_torch(backend, shape, num_classes):
    idx = np.random.default_rng(0).integers(0, 5, shape).astype(np.int64)
    ours = F(convlab).one_hot(convlab.tensor(idx, device=backend.name), num_classes)
    theirs = F(torch).one_hot(torch.tensor(idx), num_classes)
    assert ours.numpy().dtype == np.int64
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: F(convlab).one_hot(convlab.tensor([0.0, 1.0])), RuntimeError, "LongTensor"),
        (
            lambda: F(convlab).one_hot(convlab.tensor([1], dtype=convlab.int32)),
            RuntimeError,
            "LongTensor",
        ),
        (lambda: F(convlab).one_hot(convlab.tensor([-1, 2])), RuntimeError, "non-negative"),
        (lambda: F(convlab).one_hot(convlab.tensor([3]), 3), RuntimeError, "smaller than"),
        (
            lambda: F(convlab).one_hot(convlab.tensor(np.zeros(0, np.int64))),
            RuntimeError,
            "empty",
        ),
        (lambda: F(convlab).normalize(convlab.zeros(2, 3), p=0), ValueError, "p"),
        (lambda: F(convlab).normalize(convlab.zeros(2, 3), dim=2), IndexError, "dim"),
        (lambda: F(convlab).normalize(convlab.tensor([1, 2])), TypeError, "floating"),
    ],
)
def test_one_hot_and_normalize_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
