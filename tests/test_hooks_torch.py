"""Tensor and Module hooks against PyTorch's (same model, same weights, same calls)."""

import numpy as np
import pytest

import convlab

torch = pytest.importorskip("torch")


def models():
    """The same small CNN in both libraries, with torch's weights copied into ours."""

    def build(lib):
        nn = lib.nn
        return nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(3, 4, 3),
            nn.Flatten(),
            nn.Linear(4 * 4 * 4, 2),
        )

    torch.manual_seed(0)
    theirs = build(torch).double()
    ours = build(convlab).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 6))
    return ours, theirs, x


def test_tensor_hook_sees_and_replaces_the_gradient():
    for lib in (convlab, torch):
        x = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        y = x * 2
        seen = []
        y.register_hook(lambda g, seen=seen: seen.append(g.numpy().copy()))
        h = y.register_hook(lambda g: g * 10)
        (y * y).sum().backward()
        np.testing.assert_allclose(seen[0], [4.0, 8.0, 12.0])
        np.testing.assert_allclose(x.grad.numpy(), [80.0, 160.0, 240.0])
        h.remove()


def test_leaf_hook_runs_before_accumulation():
    grads = {}
    for lib in (convlab, torch):
        x = lib.tensor([1.0, -1.0], dtype=lib.float64, requires_grad=True)
        x.register_hook(lambda g: g.clamp(min=0))
        (x * lib.tensor([3.0, -3.0], dtype=lib.float64)).sum().backward()
        grads[lib.__name__] = x.grad.numpy()
    np.testing.assert_array_equal(grads["convlab"], grads["torch"])


def test_register_hook_on_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="doesn't require"):
        convlab.zeros(2).register_hook(lambda g: g)


def test_retain_grad_matches_torch():
    results = []
    for lib in (convlab, torch):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        y = x * x
        y.retain_grad()
        assert y.retains_grad
        (y * 3).sum().backward()
        results.append((y.grad.numpy(), x.grad.numpy()))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_forward_hooks_match_torch():
    ours, theirs, x = models()
    records = {}
    for lib, model in (("convlab", ours), ("torch", theirs)):
        rec = []
        model[1].register_forward_pre_hook(
            lambda m, args, rec=rec: rec.append(("pre", args[0].shape))
        )
        model[2].register_forward_hook(
            lambda m, args, out, rec=rec: rec.append(("post", tuple(out.shape)))
        )
        # a returned value replaces the output
        model[4].register_forward_hook(lambda m, args, out: out * 2)
        tx = convlab.tensor(x) if lib == "convlab" else torch.tensor(x)
        out = model(tx)
        records[lib] = ([(k, tuple(s)) for k, s in rec], out.detach().numpy())
    assert records["convlab"][0] == records["torch"][0]
    np.testing.assert_allclose(records["convlab"][1], records["torch"][1], rtol=1e-10)


def test_forward_pre_hook_replaces_args_and_kwargs_hooks():
    for lib in (convlab, torch):
        lin = lib.nn.Linear(2, 2)
        lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
        out = lin(lib.ones(1, 2))
        np.testing.assert_allclose(out.detach().numpy(), lin.bias.detach().numpy()[None])
        seen = []
        handle = lin.register_forward_hook(
            lambda m, args, kwargs, out, seen=seen: seen.append(sorted(kwargs)), with_kwargs=True
        )
        lin(lib.ones(1, 2))
        handle.remove()
        lin(lib.ones(1, 2))
        assert seen == [[]]


def test_full_backward_hook_matches_torch_grad_cam_style():
    ours, theirs, x = models()
    got = {}
    for lib, model in (("convlab", ours), ("torch", theirs)):
        store = {}

        def fwd(m, args, out, store=store):
            store["act"] = out.detach().numpy().copy()

        def bwd(m, grad_input, grad_output, store=store):
            store["gout"] = grad_output[0].numpy().copy()
            store["gin"] = None if grad_input[0] is None else grad_input[0].numpy().copy()

        model[2].register_forward_hook(fwd)
        model[2].register_full_backward_hook(bwd)
        tx = (
            convlab.tensor(x, requires_grad=True)
            if lib == "convlab"
            else torch.tensor(x, requires_grad=True)
        )
        model(tx)[:, 1].sum().backward()
        store["xgrad"] = tx.grad.numpy()
        got[lib] = store
    for key in ("act", "gout", "gin", "xgrad"):
        np.testing.assert_allclose(got["convlab"][key], got["torch"][key], rtol=1e-9, atol=1e-12)


def test_full_backward_hook_can_replace_grad_input_and_pre_hook_grad_output():
    ours, theirs, x = models()
    grads = {}
    for lib, model in (("convlab", ours), ("torch", theirs)):
        model[1].register_full_backward_hook(lambda m, gi, go: (gi[0] * 0.5,))
        model[4].register_full_backward_pre_hook(lambda m, go: (go[0] * 3,))
        tx = (
            convlab.tensor(x, requires_grad=True)
            if lib == "convlab"
            else torch.tensor(x, requires_grad=True)
        )
        model(tx).sum().backward()
        grads[lib] = (tx.grad.numpy(), model[0].weight.grad.numpy())
    for a, b in zip(grads["convlab"], grads["torch"]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_backward_hook_on_the_first_layer_gets_none_for_the_data_input():
    for lib in (convlab, torch):
        lin = lib.nn.Linear(3, 1)
        seen = []
        lin.register_full_backward_hook(
            lambda m, gi, go, seen=seen: seen.append((gi[0], go[0].shape))
        )
        lin(lib.ones(2, 3)).sum().backward()
        assert seen[0][0] is None and tuple(seen[0][1]) == (2, 1)


def test_removed_module_hooks_do_not_run():
    lin = convlab.nn.Linear(2, 2)
    calls = []
    h1 = lin.register_forward_hook(lambda *a: calls.append(1))
    h2 = lin.register_full_backward_hook(lambda *a: calls.append(2))
    h1.remove()
    h2.remove()
    lin(convlab.ones(1, 2, requires_grad=True)).sum().backward()
    assert calls == []
