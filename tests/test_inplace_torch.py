"""In-place ops, ``Tensor.data`` and version counters, against PyTorch's behaviour."""

import numpy as np
import pytest

import convlab

torch = pytest.importorskip("torch")


def pair(values, requires_grad=False, dtype=np.float64):
    a = np.asarray(values, dtype=dtype)
    return (
        convlab.tensor(a.copy(), requires_grad=requires_grad),
        torch.tensor(a.copy(), requires_grad=requires_grad),
    )


INPLACE_CASES = [
    ("add_", lambda t, m: t.add_(m.tensor([1.0, 2.0, 3.0]), alpha=2)),
    ("sub_", lambda t, m: t.sub_(0.5)),
    ("mul_", lambda t, m: t.mul_(m.tensor([2.0, -1.0, 0.5]))),
    ("div_", lambda t, m: t.div_(4.0)),
    ("div_floor", lambda t, m: t.div_(0.7, rounding_mode="floor")),
    ("div_trunc", lambda t, m: t.div_(-0.7, rounding_mode="trunc")),
    ("pow_", lambda t, m: t.pow_(2)),
    ("neg_", lambda t, m: t.neg_()),
    ("abs_", lambda t, m: t.abs_()),
    ("exp_", lambda t, m: t.exp_()),
    ("clamp_", lambda t, m: t.clamp_(-0.2, 0.3)),
    ("clamp_min_", lambda t, m: t.clamp_(min=0.0)),
    ("clamp_max_", lambda t, m: t.clamp_(max=0.1)),
    ("relu_", lambda t, m: t.relu_()),
    ("sigmoid_", lambda t, m: t.sigmoid_()),
    ("tanh_", lambda t, m: t.tanh_()),
    ("zero_", lambda t, m: t.zero_()),
    ("fill_", lambda t, m: t.fill_(2.5)),
    ("copy_", lambda t, m: t.copy_(m.tensor([7.0]))),
    ("addcmul_", lambda t, m: t.addcmul_(m.tensor([1.0, 2, 3]), m.tensor([2.0, 2, 2]), value=0.5)),
    ("addcdiv_", lambda t, m: t.addcdiv_(m.tensor([1.0, 2, 3]), m.tensor([2.0, 4, 8]), value=2)),
    ("lerp_", lambda t, m: t.lerp_(m.ones(3, dtype=t.dtype), 0.25)),
    ("iadd", lambda t, m: t.__iadd__(1.5)),
    ("isub", lambda t, m: t.__isub__(m.tensor([1.0, 0, 0]))),
    ("imul", lambda t, m: t.__imul__(3)),
    ("itruediv", lambda t, m: t.__itruediv__(2)),
    ("masked_fill_", lambda t, m: t.masked_fill_(m.tensor([True, False, True]), -1.0)),
]


@pytest.mark.parametrize("name, op", INPLACE_CASES, ids=[c[0] for c in INPLACE_CASES])
def test_inplace_values_and_aliasing_match_torch(name, op):
    ours, theirs = pair([-0.5, 0.25, 1.5])
    alias_ours, alias_theirs = ours.view(3), theirs.view(3)
    result = op(ours, convlab)
    op(theirs, torch)
    assert result is ours
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    # the write went into the memory: a view taken before sees it, as in PyTorch
    np.testing.assert_allclose(alias_ours.numpy(), alias_theirs.numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    "name, op",
    [c for c in INPLACE_CASES if c[0] not in ("zero_", "fill_", "copy_")],
    ids=[c[0] for c in INPLACE_CASES if c[0] not in ("zero_", "fill_", "copy_")],
)
def test_inplace_on_a_non_leaf_is_recorded_as_torch(name, op):
    ours_leaf, theirs_leaf = pair([-0.5, 0.25, 1.5], requires_grad=True)
    ours = ours_leaf * 1.5
    theirs = theirs_leaf * 1.5
    op(ours, convlab)
    op(theirs, torch)
    weights = np.array([1.0, -2.0, 0.5])
    (ours * convlab.tensor(weights)).sum().backward()
    (theirs * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours_leaf.grad.numpy(), theirs_leaf.grad.numpy(), rtol=1e-12)


def test_inplace_on_a_leaf_that_requires_grad_raises_as_torch():
    ours, theirs = pair([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        theirs.add_(1)
    with pytest.raises(RuntimeError, match="leaf"):
        ours.add_(1)
    with pytest.raises(RuntimeError, match="leaf"):
        ours += 1
    with pytest.raises(RuntimeError, match="leaf"):
        ours[0] = 3.0


def test_no_grad_sgd_step_updates_the_parameter_in_place():
    model = convlab.nn.Linear(3, 2)
    before = model.weight.numpy().copy()
    x = convlab.randn(4, 3)
    model(x).sum().backward()
    weight = model.weight
    with convlab.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    assert model.weight is weight
    np.testing.assert_allclose(model.weight.numpy(), before - 0.1 * weight.grad.numpy())


def test_data_is_a_detached_tensor_sharing_memory():
    p = convlab.nn.Parameter(convlab.zeros(2, 3))
    d = p.data
    assert isinstance(d, convlab.Tensor) and not d.requires_grad and d.grad_fn is None
    d.fill_(0.5)
    np.testing.assert_array_equal(p.numpy(), np.full((2, 3), 0.5))
    p.data.normal_(0.0, 0.02)
    assert p.requires_grad and p.is_leaf and 0 < float(p.detach().abs().max()) < 0.2
    p.data.uniform_(-1, 1)
    assert float(p.detach().abs().max()) <= 1.0
    p.data = convlab.ones(4)
    assert p.shape == (4,) and p.requires_grad


def test_data_setter_rejects_other_things():
    t = convlab.zeros(2)
    with pytest.raises(TypeError, match="data"):
        t.data = [1, 2]


def test_modified_saved_tensor_raises_at_backward_as_torch():
    for lib in (convlab, torch):
        w = lib.ones(3, requires_grad=True)
        y = (w * w).sum()  # mul saves w
        with lib.no_grad():
            w.add_(1)
        with pytest.raises(RuntimeError, match="modified by an in-?place operation"):
            y.backward()


def test_modification_through_data_or_a_view_is_seen_by_the_version_check():
    w = convlab.ones(4, requires_grad=True)
    y = (w * w).sum()
    w.data[1:3].mul_(2)  # a view of the same memory
    with pytest.raises(RuntimeError, match="in-place"):
        y.backward()


def test_unrelated_inplace_writes_do_not_break_backward():
    w = convlab.ones(3, requires_grad=True)
    other = convlab.ones(3)
    y = (w * w).sum()
    other.add_(1)
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0, 2.0])


def test_int_tensor_refuses_a_float_result_as_torch():
    ours, theirs = convlab.tensor([1, 2]), torch.tensor([1, 2])
    with pytest.raises(RuntimeError):
        theirs.add_(0.5)
    with pytest.raises(RuntimeError, match="can't be cast"):
        ours.add_(0.5)
    ours.add_(2)
    assert ours.tolist() == [3, 4] and ours.dtype == convlab.int64


def test_shape_changing_inplace_is_refused():
    t = convlab.zeros(3)
    with pytest.raises(RuntimeError, match="shape"):
        t.add_(convlab.zeros(2, 3))


def test_setitem_with_history_matches_torch():
    ours_leaf, theirs_leaf = pair(np.arange(6.0).reshape(2, 3), requires_grad=True)
    ours_v, theirs_v = pair([10.0, 20.0, 30.0], requires_grad=True)
    ours = ours_leaf * 2
    theirs = theirs_leaf * 2
    ours[1] = ours_v * 3
    theirs[1] = theirs_v * 3
    (ours**2).sum().backward()
    (theirs**2).sum().backward()
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy())
    np.testing.assert_allclose(ours_leaf.grad.numpy(), theirs_leaf.grad.numpy())
    np.testing.assert_allclose(ours_v.grad.numpy(), theirs_v.grad.numpy())


def test_residual_add_in_place_trains_like_torch():
    ours_x, theirs_x = pair(np.linspace(-1, 1, 12).reshape(3, 4), requires_grad=True)
    ours_out, theirs_out = ours_x * 3.0, theirs_x * 3.0
    ours_out += ours_x
    theirs_out += theirs_x
    ours_out.relu_()
    theirs_out.relu_()
    ours_out.sum().backward()
    theirs_out.sum().backward()
    np.testing.assert_allclose(ours_x.grad.numpy(), theirs_x.grad.numpy(), rtol=1e-12)


def test_random_fills_are_seeded():
    convlab.manual_seed(3)
    a = convlab.empty(5).normal_()
    convlab.manual_seed(3)
    b = convlab.empty(5).normal_()
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    bern = convlab.empty(10000).bernoulli_(0.3)
    assert set(np.unique(bern.numpy())) <= {0.0, 1.0} and abs(bern.numpy().mean() - 0.3) < 0.03
    e = convlab.empty(10000).exponential_(2.0)
    assert abs(e.numpy().mean() - 0.5) < 0.05
    r = convlab.zeros(1000, dtype=convlab.int64).random_(3, 7)
    assert set(np.unique(r.numpy())) == {3, 4, 5, 6}
    with pytest.raises(RuntimeError, match="floating"):
        convlab.zeros(3, dtype=convlab.int64).normal_()


def test_deepcopy_keeps_device_and_values():
    import copy

    model = convlab.nn.Sequential(convlab.nn.Linear(3, 2), convlab.nn.BatchNorm1d(2))
    clone = copy.deepcopy(model)
    x = convlab.randn(4, 3)
    np.testing.assert_array_equal(clone(x).detach().numpy(), model(x).detach().numpy())
    assert isinstance(clone[0].weight, convlab.nn.Parameter)
    clone[0].weight.data.zero_()
    assert float(model[0].weight.detach().abs().sum()) > 0
    with pytest.raises(RuntimeError, match="leaves"):
        copy.deepcopy(model[0].weight * 2)


def test_inplace_ops_on_each_device(backend):
    backend = backend.name
    x = convlab.tensor([[-1.0, 2.0], [3.0, -4.0]], device=backend)
    alias = x.view(4)
    x.add_(1).mul_(2).clamp_(min=0)
    x[0, 0] = 7.0
    x.masked_fill_(x > 9, 9.0)
    expected = np.array([[7.0, 6.0], [8.0, 0.0]])
    np.testing.assert_array_equal(x.numpy(), expected)
    np.testing.assert_array_equal(alias.numpy(), expected.reshape(4))
    assert x.device == backend and x.is_cuda == (backend == "gpu")
    w = convlab.ones(3, device=backend, requires_grad=True)
    y = (w * w).sum()
    with convlab.no_grad():
        w -= 0.5 * convlab.ones(3, device=backend)
    with pytest.raises(RuntimeError, match="in-place"):
        y.backward()
    np.testing.assert_array_equal(w.numpy(), [0.5, 0.5, 0.5])
    h = convlab.ones(2, device=backend, requires_grad=True) * 3
    h.relu_()
    h.sum().backward()
