"""nn modules: PyTorch's state-dict keys and shapes, parity of forward and backward, running
statistics, initialisation rules, state-dict loading errors, repr and device/dtype moves."""

from __future__ import annotations

import math

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch
from convlab import nn


def chart_block(lib, c_in, c_out):
    n = lib.nn
    return n.Sequential(
        n.Conv2d(c_in, c_out, (5, 3), stride=(3, 1), padding=(12, 1), dilation=(2, 1)),
        n.BatchNorm2d(c_out),
        n.LeakyReLU(0.01),
        n.MaxPool2d((2, 1)),
    )


def small_cnn(lib):
    n = lib.nn
    return n.Sequential(
        chart_block(lib, 1, 4),
        n.Conv2d(4, 6, 3, padding=1),
        n.ReLU(),
        n.AvgPool2d(2),
        n.Flatten(),
        n.Dropout(0.5),
        n.Linear(6 * 2 * 4, 3),
        n.BatchNorm1d(3),
        n.Tanh(),
        n.Linear(3, 2, bias=False),
        n.Sigmoid(),
    )


def _load_from_torch(ours, theirs):
    ours.load_state_dict(convlab.utils.from_torch_state_dict(theirs.state_dict()))


def test_parameters_and_buffers_are_registered_cpu():
    model = small_cnn(convlab)
    names = [k for k, _ in model.named_parameters()]
    assert names[:4] == ["0.0.weight", "0.0.bias", "0.1.weight", "0.1.bias"]
    assert "0.1.running_mean" in model.state_dict()
    assert "0.1.num_batches_tracked" in model.state_dict()
    assert model.state_dict()["0.1.num_batches_tracked"].dtype == convlab.int64
    assert len(list(model.parameters())) == len(names)
    model.eval()
    assert all(not m.training for m in model.modules())


def test_load_state_dict_reports_every_problem_and_changes_nothing_cpu():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    bad = {k: v for k, v in model.state_dict().items() if k != "0.bias"}
    bad["0.weight"] = np.zeros((5, 5), np.float32)
    bad["extra"] = np.zeros(1)
    with pytest.raises(RuntimeError) as err:
        model.load_state_dict(bad)
    text = str(err.value)
    assert "Missing key(s)" in text and "'0.bias'" in text
    assert "Unexpected key(s)" in text and "'extra'" in text
    assert "size mismatch for 0.weight" in text and "(5, 5)" in text and "(2, 3)" in text
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    del bad["0.weight"], bad["extra"]
    result = model.load_state_dict(bad, strict=False)
    assert result.missing_keys == ["0.bias", "0.weight"] or sorted(result.missing_keys) == [
        "0.bias",
        "0.weight",
    ]


def test_load_state_dict_keeps_parameter_identity_cpu():
    model = nn.Linear(3, 2)
    weight = model.weight
    model.load_state_dict({"weight": np.ones((2, 3)), "bias": np.zeros(2)})
    assert model.weight is weight
    np.testing.assert_array_equal(weight.numpy(), np.ones((2, 3), np.float32))


def test_default_initialisation_follows_pytorch_fan_rules_cpu():
    convlab.manual_seed(0)
    conv = nn.Conv2d(16, 32, (5, 3))
    fan_in = 16 * 5 * 3
    bound = math.sqrt(6 / ((1 + 5) * fan_in))  # kaiming_uniform_(a=sqrt(5))
    w = conv.weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    b = conv.bias.numpy()
    assert np.abs(b).max() <= 1 / math.sqrt(fan_in)
    t = convlab.empty(200, 300)
    nn.init.xavier_normal_(t)
    assert abs(t.numpy().std() - math.sqrt(2 / 500)) < 0.02 * math.sqrt(2 / 500)
    nn.init.kaiming_normal_(t, nonlinearity="relu")
    assert abs(t.numpy().std() - math.sqrt(2 / 300)) < 0.02 * math.sqrt(2 / 300)
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))


def test_module_to_dtype_keeps_integer_buffers_cpu():
    model = small_cnn(convlab).double()
    assert model[0][0].weight.dtype == convlab.float64
    assert model[0][1].num_batches_tracked.dtype == convlab.int64
    out = model(convlab.randn(2, 1, 8, 8, dtype=convlab.float64))
    assert out.dtype == convlab.float64


def test_module_errors_are_clear_cpu():
    with pytest.raises(ValueError, match="groups"):
        nn.Conv2d(3, 2, 3, groups=2)  # in_channels not divisible by groups (as PyTorch)
    with pytest.raises(ValueError, match="BatchNorm2d: expected 4D input, got 2D"):
        nn.BatchNorm2d(3)(convlab.ones(2, 3))
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(3, 2)(convlab.ones(2, 4))
    with pytest.raises(ValueError, match="channels"):
        nn.Conv2d(3, 2, 3)(convlab.ones(1, 2, 5, 5))
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign"):
        m.weight = convlab.ones(2, 2)


def _numerical_param_grads(model, x, target_fn, eps=1e-6):
    grads = {}
    for name, p in model.named_parameters():
        g = np.zeros(p.shape)
        flat = p.numpy().reshape(-1)
        for k in range(flat.size):
            saved = flat[k]
            vals = []
            for d in (eps, -eps):
                flat[k] = saved + d
                with convlab.no_grad():
                    vals.append(target_fn(model(x)).item())
            flat[k] = saved
            g.reshape(-1)[k] = (vals[0] - vals[1]) / (2 * eps)
        grads[name] = g
    return grads


def test_module_parameter_gradients_match_central_differences_cpu(rng):
    convlab.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 2, (3, 2), stride=(2, 1), padding=(2, 1), dilation=(2, 1)),
        nn.BatchNorm2d(2),
        nn.LeakyReLU(0.1),
        nn.MaxPool2d((2, 1)),
        nn.Flatten(),
        nn.Linear(2 * 2 * 5, 3),
        nn.BatchNorm1d(3),
    ).double()
    x = convlab.tensor(rng.normal(size=(4, 1, 8, 4)))
    weights = convlab.tensor(rng.normal(size=(4, 3)))

    def target(out):
        return (out * weights).sum()

    # running statistics move in training mode; the check needs a fixed function
    momentum = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d))]
    for m in momentum:
        m.momentum = 0.0
    target(model(x)).backward()
    expected = _numerical_param_grads(model, x, target)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(
            p.grad.numpy(), expected[name], rtol=1e-5, atol=1e-7, err_msg=name
        )


@needs_torch
class TestAgainstPyTorch:
    def test_state_dict_keys_and_shapes_match_cpu(self):
        ours, theirs = small_cnn(convlab), small_cnn(torch)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for (k, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
            assert a.shape == tuple(b.shape), k
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]

    def test_repr_matches_cpu(self):
        assert repr(small_cnn(convlab)) == repr(small_cnn(torch))

    @pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
    def test_forward_backward_and_running_stats_match_cpu(self, training, rng):
        theirs = small_cnn(torch)
        ours = small_cnn(convlab)
        _load_from_torch(ours, theirs)
        # make the running statistics non-trivial first
        with torch.no_grad():
            theirs.train()(torch.tensor(rng.normal(size=(8, 1, 8, 8)).astype(np.float32)))
        _load_from_torch(ours, theirs)
        for m in (ours, theirs):
            m.train(training)
            m[5].p = 0.0  # dropout off: masks come from different RNGs
        x = rng.normal(size=(6, 1, 8, 8)).astype(np.float32)
        xo, xt = convlab.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yo, yt = ours(xo), theirs(xt)
        np.testing.assert_allclose(yo.numpy(), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
        w = rng.normal(size=yo.shape).astype(np.float32)
        (yo * convlab.tensor(w)).sum().backward()
        (yt * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-3, atol=1e-5)
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            np.testing.assert_allclose(
                p.grad.numpy(), q.grad.numpy(), rtol=1e-3, atol=1e-5, err_msg=name
            )
        for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)

    def test_batch_norm_cumulative_average_matches_cpu(self, rng):
        ours, theirs = nn.BatchNorm2d(3, momentum=None), torch.nn.BatchNorm2d(3, momentum=None)
        for _ in range(3):
            x = rng.normal(2.0, 3.0, size=(4, 3, 5, 5)).astype(np.float32)
            ours(convlab.tensor(x))
            theirs(torch.tensor(x))
        for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, err_msg=name)

    def test_state_dict_round_trip_to_torch_cpu(self):
        ours = small_cnn(convlab)
        theirs = small_cnn(torch)
        theirs.load_state_dict(convlab.utils.to_torch_state_dict(ours.state_dict()))
        for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
