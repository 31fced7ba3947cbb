"""Loss functions and modules against PyTorch (CPU) as the oracle: values and gradients in
float32 and float64, every reduction, class weights, ignore_index, label smoothing, the edge
cases (all targets ignored, empty batches, BCE at 0 and 1), central-difference gradient checks
in float64 and the error cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch

REDUCTIONS = ["none", "mean", "sum"]
DTYPES = [np.float32, np.float64]


def F(lib):
    return lib.nn.functional


def _log_softmax(x, axis=1):
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def _probs(shape):
    return lambda rng: rng.uniform(0.05, 0.95, shape)


def _logp(shape, axis=1):
    return lambda rng: _log_softmax(rng.normal(size=shape), axis)


def _ints(values):
    return lambda rng: np.array(values, dtype=np.int64)


def _normal(shape):
    return lambda rng: rng.normal(size=shape)


# id -> (fn(L, reduction, *tensors), input makers, indices of inputs that get a gradient)
CASES = {
    "nll": (
        lambda L, r, x, t: F(L).nll_loss(x, t, reduction=r),
        (_logp((5, 4)), _ints([0, 3, 1, 1, 2])),
        (0,),
    ),
    "nll_weight_ignore": (
        lambda L, r, x, t, w: F(L).nll_loss(x, t, w, ignore_index=1, reduction=r),
        (_logp((6, 3)), _ints([0, 1, 2, 2, 1, 0]), _probs((3,))),
        (0,),
    ),
    "nll_spatial_weight": (
        lambda L, r, x, t, w: F(L).nll_loss(x, t, w, ignore_index=-100, reduction=r),
        (
            _logp((2, 3, 2, 3)),
            _ints([[[0, 2, 1], [-100, 1, 2]], [[2, 2, 0], [1, -100, 0]]]),
            _probs((3,)),
        ),
        (0,),
    ),
    "nll_1d": (
        lambda L, r, x, t: F(L).nll_loss(x, t, reduction=r),
        (_logp((4,), 0), lambda rng: np.array(2, dtype=np.int64)),
        (0,),
    ),
    "cross_entropy_weight_ignore_smooth": (
        lambda L, r, x, t, w: F(L).cross_entropy(
            x, t, w, ignore_index=2, reduction=r, label_smoothing=0.2
        ),
        (_normal((6, 4)), _ints([0, 2, 3, 1, 2, 0]), _probs((4,))),
        (0,),
    ),
    "cross_entropy_spatial_smooth": (
        lambda L, r, x, t: F(L).cross_entropy(x, t, reduction=r, label_smoothing=0.1),
        (_normal((2, 3, 4)), _ints([[0, 1, 2, -100], [2, 2, 0, 1]])),
        (0,),
    ),
    "cross_entropy_1d": (
        lambda L, r, x, t, w: F(L).cross_entropy(x, t, w, reduction=r, label_smoothing=0.3),
        (_normal((5,)), lambda rng: np.array(3, dtype=np.int64), _probs((5,))),
        (0,),
    ),
    "cross_entropy_probs_weight_smooth": (
        lambda L, r, x, p, w: F(L).cross_entropy(x, p, w, reduction=r, label_smoothing=0.25),
        (_normal((4, 3, 2)), lambda rng: _log_softmax(rng.normal(size=(4, 3, 2))), _probs((3,))),
        (0, 1),
    ),
    "bce": (
        lambda L, r, x, t: F(L).binary_cross_entropy(x, t, reduction=r),
        (_probs((3, 4)), _probs((3, 4))),
        (0, 1),
    ),
    "bce_weight_broadcast": (
        lambda L, r, x, t, w: F(L).binary_cross_entropy(x, t, w, reduction=r),
        (_probs((3, 4)), lambda rng: rng.integers(0, 2, (3, 4)).astype(float), _probs((4,))),
        (0,),
    ),
    "bce_0d": (
        lambda L, r, x, t: F(L).binary_cross_entropy(x, t, reduction=r),
        (lambda rng: np.array(0.3), lambda rng: np.array(0.8)),
        (0, 1),
    ),
    "l1": (
        lambda L, r, a, b: F(L).l1_loss(a, b, reduction=r),
        (_normal((3, 5)), _normal((3, 5))),
        (0, 1),
    ),
    "l1_weight": (
        lambda L, r, a, b, w: F(L).l1_loss(a, b, reduction=r, weight=w),
        (_normal((3, 5)), _normal((3, 5)), _probs((3, 5))),
        (0, 1, 2),
    ),
    "mse_weight": (
        lambda L, r, a, b, w: F(L).mse_loss(a, b, reduction=r, weight=w),
        (_normal((3, 5)), _normal((3, 5)), _probs((3, 5))),
        (0, 1, 2),
    ),
    "smooth_l1": (
        lambda L, r, a, b: F(L).smooth_l1_loss(a, b, reduction=r),
        (_normal((4, 5)), _normal((4, 5))),
        (0, 1),
    ),
    "smooth_l1_beta": (
        lambda L, r, a, b: F(L).smooth_l1_loss(a, b, reduction=r, beta=0.7),
        (_normal((4, 5)), _normal((4, 5))),
        (0, 1),
    ),
    "smooth_l1_beta0": (
        lambda L, r, a, b: F(L).smooth_l1_loss(a, b, reduction=r, beta=0.0),
        (_normal((4, 5)), _normal((4, 5))),
        (0, 1),
    ),
    "huber": (
        lambda L, r, a, b: F(L).huber_loss(a, b, reduction=r),
        (_normal((4, 5)), _normal((4, 5))),
        (0, 1),
    ),
    "huber_delta_weight": (
        lambda L, r, a, b, w: F(L).huber_loss(a, b, reduction=r, delta=0.4, weight=w),
        (_normal((4, 5)), _normal((4, 5)), _probs((4, 5))),
        (0, 1, 2),
    ),
    "kl_div": (
        lambda L, r, x, t: F(L).kl_div(x, t, reduction=r),
        (_logp((3, 4)), _probs((3, 4))),
        (0, 1),
    ),
    "kl_div_log_target_broadcast": (
        lambda L, r, x, t: F(L).kl_div(x, t, reduction=r, log_target=True),
        (_logp((3, 4)), lambda rng: np.log(rng.uniform(0.1, 1.0, (1, 4)))),
        (0, 1),
    ),
    "margin_ranking": (
        lambda L, r, a, b, y: F(L).margin_ranking_loss(a, b, y, margin=0.3, reduction=r),
        (_normal((7,)), _normal((7,)), lambda rng: rng.choice([-1.0, 1.0], 7)),
        (0, 1, 2),
    ),
    "margin_ranking_broadcast": (
        lambda L, r, a, b, y: F(L).margin_ranking_loss(a, b, y, reduction=r),
        (_normal((3, 4)), _normal((1, 4)), lambda rng: rng.choice([-1.0, 1.0], (3, 1))),
        (0, 1, 2),
    ),
}


def _inputs(case, rng, dtype):
    arrays = [make(rng) for make in CASES[case][1]]
    return [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]


def _run(lib, case, reduction, arrays, device="cpu", requires=()):
    if lib is convlab:
        tensors = [
            convlab.tensor(a, device=device, requires_grad=i in requires)
            for i, a in enumerate(arrays)
        ]
    else:
        tensors = [torch.tensor(a, requires_grad=i in requires) for i, a in enumerate(arrays)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's 'mean' warning, on both sides
        return CASES[case][0](lib, reduction, *tensors), tensors


def _tolerance(dtype):
    return {"rtol": 2e-5, "atol": 2e-6} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}


@needs_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(CASES))
def test_values_and_gradients_match_torch(backend, case, dtype, reduction):
    rng = np.random.default_rng(7)
    arrays = _inputs(case, rng, dtype)
    wanted = CASES[case][2]
    ours, ours_in = _run(convlab, case, reduction, arrays, backend.name, wanted)
    theirs, theirs_in = _run(torch, case, reduction, arrays, requires=wanted)
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.numpy().dtype == theirs.detach().numpy().dtype
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), **_tolerance(dtype))
    weights = rng.normal(size=tuple(ours.shape)).astype(dtype)
    # backward(grad) rather than (ours * weights).sum(): on the CUDA emulator a 0-d product is
    # a NumPy scalar (host memory), which real CuPy never gives
    ours.backward(convlab.tensor(weights, device=backend.name))
    (theirs * torch.tensor(weights)).sum().backward()
    for i in wanted:
        assert ours_in[i].grad.numpy().dtype == dtype
        np.testing.assert_allclose(
            ours_in[i].grad.numpy(),
            theirs_in[i].grad.numpy(),
            err_msg=f"gradient of input {i}",
            **_tolerance(dtype),
        )


def _numerical_grad(case, reduction, arrays, index, weights, device, eps=1e-6):
    x = arrays[index]
    grad = np.zeros_like(x)
    flat = x.reshape(-1)
    for k in range(flat.size):
        saved = flat[k]
        values = []
        for delta in (eps, -eps):
            flat[k] = saved + delta
            with convlab.no_grad():
                out, _ = _run(convlab, case, reduction, arrays, device)
            values.append(float((out.numpy() * weights).sum()))
        flat[k] = saved
        grad.reshape(-1)[k] = (values[0] - values[1]) / (2 * eps)
    return grad


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("case", list(CASES))
def test_gradient_matches_central_differences(backend, case, reduction):
    rng = np.random.default_rng(11)
    arrays = _inputs(case, rng, np.float64)
    wanted = CASES[case][2]
    out, tensors = _run(convlab, case, reduction, arrays, backend.name, wanted)
    weights = rng.normal(size=tuple(out.shape))
    out.backward(convlab.tensor(weights, device=backend.name))
    for i in wanted:
        expected = _numerical_grad(
            case, reduction, [a.copy() for a in arrays], i, weights, backend.name
        )
        np.testing.assert_allclose(
            tensors[i].grad.numpy(), expected, rtol=1e-5, atol=1e-6, err_msg=f"input {i}"
        )


# ---------------------------------------------------------------------------------------------
# modules


def _module_cases(L):
    nn = L.nn
    w = L.tensor([0.2, 1.0, 0.5, 2.0], dtype=L.float64)
    return [
        (nn.NLLLoss(w, ignore_index=1), "logp"),
        (nn.NLLLoss(reduction="sum"), "logp"),
        (nn.CrossEntropyLoss(w, label_smoothing=0.1, ignore_index=0), "logits"),
        (nn.BCELoss(), "probs"),
        (nn.BCELoss(L.tensor([1.0, 2.0, 0.5, 1.5], dtype=L.float64), reduction="none"), "probs"),
        (nn.L1Loss(), "pair"),
        (nn.SmoothL1Loss(beta=0.5), "pair"),
        (nn.HuberLoss(reduction="sum", delta=0.3), "pair"),
        (nn.KLDivLoss(reduction="batchmean"), "kl"),
        (nn.KLDivLoss(reduction="sum", log_target=True), "kl_log"),
        (nn.MSELoss(reduction="none"), "pair"),
        (nn.MarginRankingLoss(margin=0.2), "ranking"),
    ]


def _module_inputs(kind, rng):
    x = rng.normal(size=(5, 4))
    p = rng.uniform(0.05, 0.95, (5, 4))
    t = np.array([0, 3, 1, 1, 2])
    return {
        "logp": [_log_softmax(x), t],
        "logits": [x, t],
        "probs": [p, rng.uniform(0, 1, (5, 4))],
        "pair": [x, rng.normal(size=(5, 4))],
        "kl": [_log_softmax(x), p / p.sum(1, keepdims=True)],
        "kl_log": [_log_softmax(x), _log_softmax(rng.normal(size=(5, 4)))],
        "ranking": [x[:, 0], x[:, 1], rng.choice([-1.0, 1.0], 5)],
    }[kind]


@needs_torch
@pytest.mark.parametrize("index", range(12))
def test_modules_match_torch_cpu(index):
    rng = np.random.default_rng(index)
    ours, kind = _module_cases(convlab)[index]
    theirs, _ = _module_cases(torch)[index]
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.reduction == theirs.reduction
    arrays = _module_inputs(kind, rng)
    a = [convlab.tensor(v, requires_grad=v.dtype.kind == "f") for v in arrays]
    b = [torch.tensor(v, requires_grad=v.dtype.kind == "f") for v in arrays]
    out, expected = ours(*a), theirs(*b)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    out.sum().backward()
    expected.sum().backward()
    for x, y in zip(a, b):
        if y.grad is not None:
            np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_module_weights_are_buffers_cpu():
    w = convlab.ones(3)
    for module in (convlab.nn.NLLLoss(w), convlab.nn.BCELoss(w)):
        assert "weight" in dict(module.named_buffers())
        assert not list(module.parameters())


# ---------------------------------------------------------------------------------------------
# edge cases


@needs_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_all_targets_ignored_and_empty_batch_match_torch(backend, reduction, smoothing, weighted):
    rng = np.random.default_rng(3)
    w = rng.uniform(0.5, 2, 4)
    for x, t in (
        (rng.normal(size=(2, 4, 3)), np.full((2, 3), 2)),
        (rng.normal(size=(3, 4)), np.array([2, 2, 2])),
        (np.zeros((0, 4)), np.zeros(0, dtype=np.int64)),
    ):
        ours_x = convlab.tensor(x, device=backend.name, requires_grad=True)
        theirs_x = torch.tensor(x, requires_grad=True)
        ow = convlab.tensor(w, device=backend.name) if weighted else None
        tw = torch.tensor(w) if weighted else None
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no NumPy "invalid value" warnings for 0 / 0
            ours = [
                F(convlab).nll_loss(
                    ours_x,
                    convlab.tensor(t, device=backend.name),
                    ow,
                    ignore_index=2,
                    reduction=reduction,
                ),
                F(convlab).cross_entropy(
                    ours_x,
                    convlab.tensor(t, device=backend.name),
                    ow,
                    ignore_index=2,
                    reduction=reduction,
                    label_smoothing=smoothing,
                ),
            ]
            for o in ours:
                o.sum().backward()
        theirs = [
            F(torch).nll_loss(theirs_x, torch.tensor(t), tw, ignore_index=2, reduction=reduction),
            F(torch).cross_entropy(
                theirs_x,
                torch.tensor(t),
                tw,
                ignore_index=2,
                reduction=reduction,
                label_smoothing=smoothing,
            ),
        ]
        for o in theirs:
            o.sum().backward()
        for o, e in zip(ours, theirs):
            np.testing.assert_allclose(o.numpy(), e.detach().numpy(), rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(
            ours_x.grad.numpy(), theirs_x.grad.numpy(), rtol=1e-12, equal_nan=True
        )


@needs_torch
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
def test_empty_inputs_match_torch_cpu(reduction):
    cases = [
        ("binary_cross_entropy", (np.zeros((0, 3)), np.zeros((0, 3)))),
        ("l1_loss", (np.zeros((0, 3)), np.zeros((0, 3)))),
        ("smooth_l1_loss", (np.zeros(0), np.zeros(0))),
        ("huber_loss", (np.zeros(0), np.zeros(0))),
        ("kl_div", (np.zeros((0, 3)), np.zeros((0, 3)))),
        ("margin_ranking_loss", (np.zeros(0), np.zeros(0), np.zeros(0))),
    ]
    for name, arrays in cases:
        if reduction == "batchmean" and name != "kl_div":
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("error", RuntimeWarning)
            ours = getattr(F(convlab), name)(*map(convlab.tensor, arrays), reduction=reduction)
            theirs = getattr(F(torch), name)(*map(torch.tensor, arrays), reduction=reduction)
        assert tuple(ours.shape) == tuple(theirs.shape), name
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), equal_nan=True, err_msg=name)


@needs_torch
def test_bce_clamps_logs_at_minus_100_and_gradients_at_0_and_1_cpu():
    x = np.array([0.0, 1.0, 0.0, 1.0, 1e-50, 0.5])
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.5])
    ours_x, ours_t = (convlab.tensor(a, requires_grad=True) for a in (x, t))
    theirs_x, theirs_t = (torch.tensor(a, requires_grad=True) for a in (x, t))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = F(convlab).binary_cross_entropy(ours_x, ours_t, reduction="none")
        ours.sum().backward()
    theirs = F(torch).binary_cross_entropy(theirs_x, theirs_t, reduction="none")
    theirs.sum().backward()
    np.testing.assert_array_equal(ours.numpy()[:2], [100.0, 100.0])
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours_x.grad.numpy(), theirs_x.grad.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(ours_t.grad.numpy(), theirs_t.grad.numpy())


@needs_torch
def test_kl_div_zero_and_negative_targets_match_torch_cpu():
    x = np.array([-1.0, -2.0, -0.5, -3.0])
    t = np.array([0.0, 0.5, -0.5, 1.0])
    ours_x, ours_t = (convlab.tensor(a, requires_grad=True) for a in (x, t))
    theirs_x, theirs_t = (torch.tensor(a, requires_grad=True) for a in (x, t))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = F(convlab).kl_div(ours_x, ours_t, reduction="none")
        ours.sum().backward()
    theirs = F(torch).kl_div(theirs_x, theirs_t, reduction="none")
    theirs.sum().backward()
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), equal_nan=True)
    np.testing.assert_allclose(ours_x.grad.numpy(), theirs_x.grad.numpy(), equal_nan=True)
    np.testing.assert_allclose(ours_t.grad.numpy(), theirs_t.grad.numpy(), equal_nan=True)


@needs_torch
def test_kinks_and_dtype_promotion_match_torch_cpu():
    # differences exactly at +-beta, +-delta and 0; an int target; a float64 target
    a = np.array([0.0, 1.0, -1.0, 0.5, 2.0], dtype=np.float32)
    b = np.array([0.0, 0.0, 0.0, 1.0, 0.0], dtype=np.float32)
    for name, kwargs in [
        ("l1_loss", {}),
        ("smooth_l1_loss", {"beta": 1.0}),
        ("huber_loss", {"delta": 1.0}),
        ("smooth_l1_loss", {"beta": 0.5}),
    ]:
        for target in (b, b.astype(np.float64)):
            ours_a, theirs_a = (
                convlab.tensor(a, requires_grad=True),
                torch.tensor(a, requires_grad=True),
            )
            ours = getattr(F(convlab), name)(
                ours_a, convlab.tensor(target), reduction="none", **kwargs
            )
            theirs = getattr(F(torch), name)(
                theirs_a, torch.tensor(target), reduction="none", **kwargs
            )
            assert ours.numpy().dtype == theirs.detach().numpy().dtype, (name, target.dtype)
            np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy())
            if name == "huber_loss" and target.dtype != a.dtype:
                continue  # PyTorch's Huber backward fails on a target of another dtype
            ours.sum().backward()
            theirs.sum().backward()
            np.testing.assert_allclose(ours_a.grad.numpy(), theirs_a.grad.numpy())
    # an integer target takes the input's dtype (PyTorch's forward does too; its backward fails)
    for name in ("l1_loss", "smooth_l1_loss", "huber_loss"):
        ours = getattr(F(convlab), name)(convlab.tensor(a), convlab.tensor(b.astype(np.int64)))
        assert ours.dtype == convlab.float32
        expected = getattr(F(convlab), name)(convlab.tensor(a), convlab.tensor(b))
        np.testing.assert_array_equal(ours.numpy(), expected.numpy())
    # margin ranking: the gradient passes where the clamped argument is exactly 0
    ours_in = [convlab.tensor(v, requires_grad=True) for v in ([1.0, 0.0], [0.0, 0.0], [1.0, 1.0])]
    theirs_in = [torch.tensor(v, requires_grad=True) for v in ([1.0, 0.0], [0.0, 0.0], [1.0, 1.0])]
    F(convlab).margin_ranking_loss(*ours_in, margin=1.0, reduction="sum").backward()
    F(torch).margin_ranking_loss(*theirs_in, margin=1.0, reduction="sum").backward()
    for x, y in zip(ours_in, theirs_in):
        np.testing.assert_array_equal(x.grad.numpy(), y.grad.numpy())


@needs_torch
@pytest.mark.parametrize(
    ("size_average", "reduce"), [(None, False), (False, None), (True, True), (False, True)]
)
def test_legacy_size_average_and_reduce_cpu(size_average, reduce):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    t = np.array([0, 2, 1, 1])
    for name, args in [
        ("nll_loss", (_log_softmax(x), t)),
        ("cross_entropy", (x, t)),
        ("l1_loss", (x, y)),
        ("smooth_l1_loss", (x, y)),
        ("kl_div", (x, np.abs(y))),
        ("binary_cross_entropy", (1 / (1 + np.exp(-x)), 1 / (1 + np.exp(-y)))),
        ("margin_ranking_loss", (x[:, 0], y[:, 0], np.sign(y[:, 1]))),
    ]:
        with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
            ours = getattr(F(convlab), name)(
                *map(convlab.tensor, args), size_average=size_average, reduce=reduce
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = getattr(F(torch), name)(
                *map(torch.tensor, args), size_average=size_average, reduce=reduce
            )
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, err_msg=name)
    with pytest.warns(UserWarning, match="reduction='sum'"):
        assert convlab.nn.NLLLoss(size_average=False).reduction == "sum"


def test_kl_div_mean_warns_as_torch_cpu():
    x = convlab.tensor([[-1.0, -2.0]])
    with pytest.warns(UserWarning, match="batchmean"):
        F(convlab).kl_div(x, convlab.tensor([[0.3, 0.7]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F(convlab).kl_div(x, convlab.tensor([[0.3, 0.7]]), reduction="batchmean")


# ---------------------------------------------------------------------------------------------
# errors


def _t(*values, **kwargs):
    return convlab.tensor(np.array(values) if values else np.zeros(0), **kwargs)


LOGP = np.log(np.full((3, 4), 0.25))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        # nll_loss
        (
            lambda: F(convlab).nll_loss(convlab.tensor(LOGP), _t(0, 1, 4)),
            IndexError,
            r"target: class indices must be in \[0, 4\).*got 4",
        ),
        (lambda: F(convlab).nll_loss(convlab.tensor(LOGP), _t(0, -3, 1)), IndexError, "got -3"),
        (
            lambda: F(convlab).nll_loss(convlab.tensor(LOGP), _t(0, 1, 4)),
            ValueError,
            "out of bounds",
        ),
        (
            lambda: F(convlab).nll_loss(convlab.tensor(LOGP), _t(0.0, 1.0, 2.0)),
            TypeError,
            "target: nll_loss expected integer class indices, got dtype float",
        ),
        (
            lambda: F(convlab).nll_loss(convlab.tensor(LOGP), _t(0, 1)),
            ValueError,
            r"target: expected shape \(3,\) .*\(input batch_size 3, target batch_size 2\)",
        ),
        (
            lambda: F(convlab).nll_loss(convlab.tensor(LOGP), convlab.tensor([[0, 1, 2]])),
            ValueError,
            "batch_size",
        ),
        (
            lambda: F(convlab).nll_loss(convlab.tensor(LOGP), convlab.tensor([[0], [1], [2]])),
            ValueError,
            r"target: expected shape \(3,\)",
        ),
        (
            lambda: F(convlab).nll_loss(
                convlab.zeros(2, 4, 3), convlab.zeros(2, 4, dtype=convlab.int64)
            ),
            ValueError,
            r"target: expected shape \(2, 3\)",
        ),
        (
            lambda: F(convlab).nll_loss(convlab.tensor(LOGP), _t(0, 1, 2), reduction="avg"),
            ValueError,
            "reduction: expected one of",
        ),
        (
            lambda: F(convlab).nll_loss(convlab.tensor(LOGP), _t(0, 1, 2), convlab.ones(3)),
            ValueError,
            r"weight: expected a tensor of shape \(4,\)",
        ),
        (
            lambda: F(convlab).nll_loss(convlab.tensor(LOGP), _t(0, 1, 2), convlab.ones(4)),
            RuntimeError,
            r"weight: expected dtype float64",
        ),
        (
            lambda: F(convlab).nll_loss(convlab.tensor(LOGP), _t(0, 1, 2), convlab.ones(4)),
            TypeError,
            "weight",
        ),
        (
            lambda: F(convlab).nll_loss(convlab.tensor(1.0), convlab.tensor(0)),
            ValueError,
            r"1 or more dimensions \(got 0\)",
        ),
        (
            lambda: F(convlab).nll_loss(convlab.zeros(4), _t(1, 2)),
            ValueError,
            "1D target must have size 1",
        ),
        (
            lambda: F(convlab).nll_loss(_t(0, 1, 2).reshape(1, 3), _t(0)),
            TypeError,
            "nll_loss input: expected a floating-point tensor",
        ),
        # cross_entropy
        (lambda: F(convlab).cross_entropy(convlab.zeros(3, 4), _t(0, 1, 4)), IndexError, "got 4"),
        (
            lambda: F(convlab).cross_entropy(convlab.zeros(3, 4), _t(0, 1, 2), label_smoothing=1.5),
            RuntimeError,
            r"label_smoothing: expected a value in \[0, 1\], got 1.5",
        ),
        (
            lambda: F(convlab).cross_entropy(
                convlab.zeros(3, 4), convlab.zeros(3, 4, dtype=convlab.float64)
            ),
            TypeError,
            "target: expected dtype float32",
        ),
        # binary_cross_entropy
        (
            lambda: F(convlab).binary_cross_entropy(_t(0.5, 1.2), _t(0.0, 1.0)),
            RuntimeError,
            "input: all elements of input should be between 0 and 1",
        ),
        (
            lambda: F(convlab).binary_cross_entropy(_t(0.5, np.nan), _t(0.0, 1.0)),
            ValueError,
            "between 0 and 1",
        ),
        (
            lambda: F(convlab).binary_cross_entropy(_t(0.5, 0.2), _t(0.0, 1.5)),
            RuntimeError,
            "target: all elements of target should be between 0 and 1",
        ),
        (
            lambda: F(convlab).binary_cross_entropy(_t(0.5, 0.2), _t(0.0, 1.0).reshape(2, 1)),
            ValueError,
            "target: using a target size",
        ),
        (
            lambda: F(convlab).binary_cross_entropy(
                _t(0.5, 0.2, dtype=convlab.float32), _t(0.0, 1.0)
            ),
            TypeError,
            "target: expected dtype float32",
        ),
        (
            lambda: F(convlab).binary_cross_entropy(_t(0.5, 0.2), _t(0.0, 1.0), _t(1.0, 2, 3)),
            ValueError,
            "weight: shape",
        ),
        (
            lambda: F(convlab).binary_cross_entropy(_t(0, 1), _t(0, 1)),
            TypeError,
            "binary_cross_entropy input",
        ),
        # regression losses
        (
            lambda: F(convlab).smooth_l1_loss(_t(1.0, 2.0), _t(0.0, 1.0), beta=-1),
            RuntimeError,
            "beta: smooth_l1_loss does not support negative values",
        ),
        (
            lambda: F(convlab).huber_loss(_t(1.0, 2.0), _t(0.0, 1.0), delta=0),
            ValueError,
            "delta: huber_loss does not support non-positive values",
        ),
        (
            lambda: F(convlab).l1_loss(_t(1.0, 2.0), _t(0.0, 1.0).reshape(2, 1)),
            ValueError,
            "l1_loss: input shape",
        ),
        (
            lambda: F(convlab).huber_loss(_t(1.0, 2.0), _t(0.0, 1.0), reduction="bad"),
            ValueError,
            "reduction",
        ),
        (
            lambda: F(convlab).l1_loss(_t(1.0, 2.0), _t(0.0, 1.0), weight=_t(1.0)),
            ValueError,
            "weight: weights and input must have the same size",
        ),
        (lambda: F(convlab).l1_loss(_t(1, 2), _t(0, 1)), TypeError, "l1_loss input"),
        # kl_div, margin_ranking_loss
        (
            lambda: F(convlab).kl_div(_t(1.0, 2.0), _t(0.0, 1.0), reduction="bad"),
            ValueError,
            "reduction: expected one of .*batchmean",
        ),
        (
            lambda: F(convlab).kl_div(_t(1.0, 2.0), _t(0.0, 1.0, 2.0), reduction="sum"),
            ValueError,
            "target: shape",
        ),
        (
            lambda: F(convlab).margin_ranking_loss(
                _t(1.0, 2.0), _t(0.0, 1.0), _t(1.0, 1.0).reshape(1, 2)
            ),
            RuntimeError,
            "same number of dimensions",
        ),
        (
            lambda: F(convlab).margin_ranking_loss(_t(1.0, 2.0), _t(0.0, 1.0), _t(1.0, -1, 1)),
            ValueError,
            "do not broadcast",
        ),
        # modules check the reduction at construction
        (lambda: convlab.nn.L1Loss(reduction="avg"), ValueError, "reduction"),
        (lambda: convlab.nn.KLDivLoss(reduction="avg"), ValueError, "reduction"),
    ],
)
def test_errors_name_the_argument_cpu(call, error, match):
    with pytest.raises(error, match=match):
        call()


@needs_torch
def test_torch_raises_the_same_exception_classes_cpu():
    # what a PyTorch program catches still catches convlab's error
    pairs = [
        (lambda L: F(L).nll_loss(L.tensor(LOGP), L.tensor([0, 1, 4])), IndexError),
        (lambda L: F(L).cross_entropy(L.tensor(LOGP), L.tensor([0, 1, 4])), IndexError),
        (lambda L: F(L).nll_loss(L.tensor(LOGP), L.tensor([0, 1])), ValueError),
        (lambda L: F(L).binary_cross_entropy(L.tensor([1.5]), L.tensor([1.0])), RuntimeError),
        (lambda L: F(L).binary_cross_entropy(L.tensor([0.5]), L.tensor([[1.0]])), ValueError),
        (lambda L: F(L).smooth_l1_loss(L.tensor([0.5]), L.tensor([1.0]), beta=-1.0), RuntimeError),
        (lambda L: F(L).huber_loss(L.tensor([0.5]), L.tensor([1.0]), delta=0.0), RuntimeError),
        (lambda L: F(L).nll_loss(L.tensor(LOGP), L.tensor([0, 1, 2]), L.ones(3)), RuntimeError),
        (
            lambda L: F(L).margin_ranking_loss(L.tensor([1.0]), L.tensor([1.0]), L.tensor([[1.0]])),
            RuntimeError,
        ),
        (lambda L: F(L).l1_loss(L.tensor([1.0]), L.tensor([1.0]), reduction="x"), ValueError),
    ]
    for call, error in pairs:
        for lib in (convlab, torch):
            with pytest.raises(error):
                call(lib)
