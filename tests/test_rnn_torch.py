"""RNN / LSTM / GRU and their cells against PyTorch with copied weights: outputs, final states
and every gradient (input, initial states, each parameter) in float64 (tight) and float32
(PyTorch's tolerance), over layers, directions, batch_first, bias, unbatched input; every
backend. Plus central-difference gradient checks of the fused time loop in float64, dropout
between layers, truncated BPTT, the state dict and the error messages."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from conftest import needs_torch, to_numpy, torch
from convlab import nn
from convlab._ops.rnn import recurrent_layer

pytestmark = needs_torch

#: (rtol, atol): float64 tight; float32 PyTorch's own assert_close defaults
TOL = {np.float32: (1.3e-6, 1e-5), np.float64: (1e-10, 1e-12)}
MODES = {
    "lstm": (nn.LSTM, "LSTM", {}),
    "gru": (nn.GRU, "GRU", {}),
    "rnn_tanh": (nn.RNN, "RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNN, "RNN", {"nonlinearity": "relu"}),
}


def _pair(backend, mode, dtype, *args, **kw):
    """The same layer in both libraries, PyTorch's weights copied into ours."""
    ours_cls, torch_name, extra = MODES[mode]
    theirs = getattr(torch.nn, torch_name)(*args, **kw, **extra).to(torch.float64)
    theirs = theirs.to(torch.float32 if dtype == np.float32 else torch.float64)
    ours = ours_cls(*args, **kw, **extra, dtype=dtype)
    state = {k: convlab.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()}
    ours.load_state_dict(state)
    return ours.to(backend.name), theirs


def _close(ours, theirs, dtype, what):
    rtol, atol = TOL[dtype]
    assert ours.shape == theirs.shape, what
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=what)


def _run_both(backend, ours, theirs, x, states, dtype, seed=0):
    """Forward both on ``x`` (and the initial ``states``: None, an array, or a pair), then
    backward a random weighting of the output and final states; returns both results as
    NumPy: output, final states, gradients of input and states, parameter gradients."""
    results = []
    for lib in (convlab, torch):
        if lib is convlab:
            make = lambda a: convlab.tensor(a, device=backend.name, requires_grad=True)  # noqa: E731
            to_np = lambda t: to_numpy(backend, t._data)  # noqa: E731
            module = ours
        else:
            make = lambda a: torch.tensor(a, requires_grad=True)  # noqa: E731
            to_np = lambda t: t.detach().numpy()  # noqa: E731
            module = theirs
        xt = make(x)
        if states is None:
            st = None
        elif isinstance(states, tuple):
            st = tuple(make(s) for s in states)
        else:
            st = make(states)
        out, final = module(xt, st)
        finals = final if isinstance(final, tuple) else (final,)
        loss = 0
        local = np.random.default_rng(seed)
        for t in (out,) + finals:
            w = local.standard_normal(tuple(t.shape)).astype(dtype)
            w_t = convlab.tensor(w, device=backend.name) if lib is convlab else torch.tensor(w)
            loss = loss + (t * w_t).sum()
        loss.backward()
        grads = [to_np(xt.grad)]
        if st is not None:
            grads += [to_np(s.grad) for s in (st if isinstance(st, tuple) else (st,))]
        params = [to_np(p.grad) for p in module.parameters()]
        results.append(([to_np(out)] + [to_np(f) for f in finals], grads, params))
    return results


def _compare(results, dtype, names):
    (o1, g1, p1), (o2, g2, p2) = results
    for k, (a, b) in enumerate(zip(o1, o2)):
        _close(a, b, dtype, f"output {k}")
    for k, (a, b) in enumerate(zip(g1, g2)):
        _close(a, b, dtype, f"input/state gradient {k}")
    assert len(p1) == len(p2) == len(names)
    for name, a, b in zip(names, p1, p2):
        _close(a, b, dtype, f"gradient of {name}")


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(
    "layers, bidirectional, batch_first, bias",
    [
        (1, False, False, True),
        (2, True, False, True),
        (2, False, True, False),
        (3, True, True, True),
    ],
    ids=["l1", "l2-bi", "l2-bf-nobias", "l3-bi-bf"],
)
def test_layer_matches_torch(backend, mode, dtype, layers, bidirectional, batch_first, bias):
    rng = np.random.default_rng(1)
    ours, theirs = _pair(
        backend,
        mode,
        dtype,
        4,
        5,
        layers,
        bias=bias,
        batch_first=batch_first,
        bidirectional=bidirectional,
    )
    seq, batch, d = 6, 3, 2 if bidirectional else 1
    x = rng.standard_normal((batch, seq, 4) if batch_first else (seq, batch, 4)).astype(dtype)
    shape = (layers * d, batch, 5)
    h0 = rng.standard_normal(shape).astype(dtype)
    states = (h0, rng.standard_normal(shape).astype(dtype)) if mode == "lstm" else h0
    names = [n for n, _ in theirs.named_parameters()]
    _compare(_run_both(backend, ours, theirs, x, states, dtype), dtype, names)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_layer_without_initial_state_and_unbatched(backend, mode):
    rng = np.random.default_rng(2)
    ours, theirs = _pair(backend, mode, np.float64, 3, 4, 2, bidirectional=True)
    names = [n for n, _ in theirs.named_parameters()]
    x = rng.standard_normal((5, 2, 3))
    _compare(_run_both(backend, ours, theirs, x, None, np.float64), np.float64, names)
    # unbatched (L, H_in) input with 2-D states, as PyTorch
    x1 = rng.standard_normal((5, 3))
    h0 = rng.standard_normal((4, 4))
    states = (h0, rng.standard_normal((4, 4))) if mode == "lstm" else h0
    _compare(_run_both(backend, ours, theirs, x1, states, np.float64), np.float64, names)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_batch_first_unbatched_ignores_batch_first(backend, mode):
    rng = np.random.default_rng(3)
    ours, theirs = _pair(backend, mode, np.float64, 3, 4, 1, batch_first=True)
    names = [n for n, _ in theirs.named_parameters()]
    x = rng.standard_normal((7, 3))  # (L, H_in): the batch_first flag does not apply
    _compare(_run_both(backend, ours, theirs, x, None, np.float64), np.float64, names)


CELLS = {
    "lstm": (nn.LSTMCell, "LSTMCell", {}),
    "gru": (nn.GRUCell, "GRUCell", {}),
    "rnn_tanh": (nn.RNNCell, "RNNCell", {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNNCell, "RNNCell", {"nonlinearity": "relu"}),
}


@pytest.mark.parametrize("mode", sorted(CELLS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("with_state", [True, False], ids=["hx", "nohx"])
def test_cell_matches_torch(backend, mode, dtype, bias, batched, with_state):
    rng = np.random.default_rng(4)
    ours_cls, torch_name, extra = CELLS[mode]
    theirs = getattr(torch.nn, torch_name)(3, 5, bias=bias, **extra)
    theirs = theirs.to(torch.float32 if dtype == np.float32 else torch.float64)
    ours = ours_cls(3, 5, bias=bias, **extra, dtype=dtype)
    ours.load_state_dict(
        {k: convlab.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()}
    )
    ours.to(backend.name)
    lead = (2,) if batched else ()
    x = rng.standard_normal(lead + (3,)).astype(dtype)
    states = [rng.standard_normal(lead + (5,)).astype(dtype) for _ in range(2)]
    results = []
    for lib, module in ((convlab, ours), (torch, theirs)):
        if lib is convlab:
            make = lambda a: convlab.tensor(a, device=backend.name, requires_grad=True)  # noqa: E731
            to_np = lambda t: to_numpy(backend, t._data)  # noqa: E731
        else:
            make = lambda a: torch.tensor(a, requires_grad=True)  # noqa: E731
            to_np = lambda t: t.detach().numpy()  # noqa: E731
        xt = make(x)
        st = [make(s) for s in states]
        hx = None if not with_state else (tuple(st) if mode == "lstm" else st[0])
        out = module(xt, hx)
        outs = out if isinstance(out, tuple) else (out,)
        loss = 0
        local = np.random.default_rng(9)
        for t in outs:
            w = local.standard_normal(tuple(t.shape)).astype(dtype)
            loss = (
                loss
                + (
                    t
                    * (
                        convlab.tensor(w, device=backend.name)
                        if lib is convlab
                        else torch.tensor(w)
                    )
                ).sum()
            )
        loss.backward()
        grads = [to_np(xt.grad)] + ([to_np(s.grad) for s in st[: len(outs)]] if with_state else [])
        results.append(
            [to_np(o) for o in outs] + grads + [to_np(p.grad) for p in module.parameters()]
        )
    assert len(results[0]) == len(results[1])
    for k, (a, b) in enumerate(zip(*results)):
        _close(a, b, dtype, f"result {k}")


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_fused_time_loop_numerical_gradient(backend, mode, reverse):
    """Central differences in float64 of the one-node time loop against its backward: every
    input (sequence, initial states, weights, biases) and every packed output row."""
    rng = np.random.default_rng(5)
    seq, batch, inp, hid = 3, 2, 3, 2
    gates = {"lstm": 4, "gru": 3}.get(mode, 1)
    arrays = [
        rng.standard_normal((seq, batch, inp)),
        rng.standard_normal((batch, hid)),
        rng.standard_normal((batch, hid)) if mode == "lstm" else None,
        rng.standard_normal((gates * hid, inp)) * 0.7,
        rng.standard_normal((gates * hid, hid)) * 0.7,
        rng.standard_normal(gates * hid) * 0.5,
        rng.standard_normal(gates * hid) * 0.5,
    ]
    if mode == "rnn_relu":
        arrays[0] = arrays[0] + 0.3  # keep pre-activations away from ReLU's kink
    rows = seq + 1 + (mode == "lstm")
    weight = rng.standard_normal((rows, batch, hid))

    def loss(values):
        ts = [None if v is None else convlab.tensor(v, device=backend.name) for v in values]
        out = recurrent_layer(*ts, mode=mode, reverse=reverse)
        return float(np.sum(to_numpy(backend, out._data) * weight))

    tensors = [
        None if a is None else convlab.tensor(a, device=backend.name, requires_grad=True)
        for a in arrays
    ]
    out = recurrent_layer(*tensors, mode=mode, reverse=reverse)
    (out * convlab.tensor(weight, device=backend.name)).sum().backward()
    eps = 1e-6
    for k, a in enumerate(arrays):
        if a is None:
            continue
        numeric = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            plus = [v if v is None else v.copy() for v in arrays]
            minus = [v if v is None else v.copy() for v in arrays]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            numeric[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        analytic = to_numpy(backend, tensors[k].grad._data)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8, err_msg=f"input {k}")


def test_state_dict_names_shapes_and_order_match_torch():
    for mode in MODES:
        ours_cls, torch_name, extra = MODES[mode]
        kw = dict(num_layers=2, bidirectional=True)
        ours = ours_cls(3, 4, **kw, **extra)
        theirs = getattr(torch.nn, torch_name)(3, 4, **kw, **extra)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for (n1, p1), (n2, p2) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert n1 == n2 and tuple(p1.shape) == tuple(p2.shape)
    for mode in CELLS:
        ours_cls, torch_name, extra = CELLS[mode]
        ours, theirs = ours_cls(3, 4, **extra), getattr(torch.nn, torch_name)(3, 4, **extra)
        assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == [
            (n, tuple(p.shape)) for n, p in theirs.named_parameters()
        ]
    assert "bias_ih_l0" not in nn.GRU(3, 4, bias=False).state_dict()


def test_initialisation_is_uniform_within_one_over_sqrt_hidden():
    convlab.manual_seed(0)
    lstm = nn.LSTM(30, 64, 2)
    bound = 1 / np.sqrt(64)
    values = np.concatenate([p.detach().numpy().ravel() for p in lstm.parameters()])
    assert np.abs(values).max() <= bound
    # U(-b, b): mean 0, variance b^2 / 3 (n is large: a few standard errors)
    assert abs(values.mean()) < 4 * bound / np.sqrt(3 * values.size)
    assert abs(values.var() / (bound**2 / 3) - 1) < 0.02
    cell = nn.GRUCell(5, 16)
    assert np.abs(cell.weight_hh.detach().numpy()).max() <= 0.25


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_dropout_between_layers(backend, mode):
    rng = np.random.default_rng(6)
    ours, theirs = _pair(backend, mode, np.float64, 4, 8, 2, dropout=0.5)
    x = rng.standard_normal((5, 3, 4))
    xt = convlab.tensor(x, device=backend.name)
    # evaluation: no dropout, PyTorch's numbers, deterministic
    ours.eval()
    theirs.eval()
    eval_out = to_numpy(backend, ours(xt)[0]._data)
    _close(eval_out, theirs(torch.tensor(x))[0].detach().numpy(), np.float64, "eval output")
    np.testing.assert_array_equal(eval_out, to_numpy(backend, ours(xt)[0]._data))
    # training: random masks between the layers (each draw differs), same seed same draw
    ours.train()
    convlab.manual_seed(3)
    a = to_numpy(backend, ours(xt)[0]._data)
    convlab.manual_seed(3)
    b = to_numpy(backend, ours(xt)[0]._data)
    c = to_numpy(backend, ours(xt)[0]._data)
    assert a.shape == (5, 3, 8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and not np.allclose(a, eval_out)
    # dropout=1 zeroes the second layer's input: the output is then that layer run on zeros
    ours.dropout = 1.0
    zero_in, _ = _pair(backend, mode, np.float64, 8, 8, 1)
    state = {k.replace("_l1", "_l0"): v for k, v in ours.state_dict().items() if "_l1" in k}
    zero_in.load_state_dict(state)
    expected = zero_in(convlab.zeros(5, 3, 8, dtype=np.float64, device=backend.name))[0]
    np.testing.assert_allclose(
        to_numpy(backend, ours(xt)[0]._data), to_numpy(backend, expected._data), atol=1e-15
    )


def test_dropout_rate_between_layers(monkeypatch):
    """The mask between layers drops a fraction p of the first layer's outputs."""
    from convlab._ops import activation

    kept = []
    original = activation.dropout

    def spy(x, p, training=True, inplace=False):
        out = original(x, p, training)
        kept.append(float((out.detach().numpy() != 0).mean()))
        return out

    monkeypatch.setattr(activation, "dropout", spy)
    lstm = nn.GRU(3, 500, 3, dropout=0.3)
    lstm(convlab.randn(20, 10, 3))
    assert len(kept) == 2  # between layers 0-1 and 1-2, not after the last
    assert all(abs(k - 0.7) < 0.01 for k in kept)
    kept.clear()
    lstm.eval()
    lstm(convlab.randn(20, 10, 3))
    assert kept == []


def test_truncated_bptt_with_detached_state(backend):
    """Two chunks, the state carried with detach(): the gradients of the second chunk stop at
    the carried state, as in PyTorch."""
    rng = np.random.default_rng(7)
    ours, theirs = _pair(backend, "lstm", np.float64, 3, 4, 2)
    chunks = [rng.standard_normal((4, 2, 3)) for _ in range(2)]
    grads = []
    for lib, module in ((convlab, ours), (torch, theirs)):
        state = None
        module.zero_grad()
        for chunk in chunks:
            xt = (
                convlab.tensor(chunk, device=backend.name)
                if lib is convlab
                else torch.tensor(chunk)
            )
            out, state = module(xt, state)
            (out**2).sum().backward()
            state = tuple(s.detach() for s in state)
        grads.append(
            [
                to_numpy(backend, p.grad._data) if lib is convlab else p.grad.numpy()
                for p in module.parameters()
            ]
        )
    for a, b in zip(*grads):
        _close(a, b, np.float64, "accumulated gradient")


def test_flatten_parameters_and_all_weights():
    lstm = nn.LSTM(3, 4, 2, bidirectional=True)
    lstm.flatten_parameters()
    weights = lstm.all_weights
    assert len(weights) == 4 and all(len(w) == 4 for w in weights)
    assert weights[1][0] is lstm.weight_ih_l0_reverse
    assert repr(lstm) == repr(torch.nn.LSTM(3, 4, 2, bidirectional=True))
    assert repr(nn.RNN(3, 4, nonlinearity="relu", bias=False)) == repr(
        torch.nn.RNN(3, 4, nonlinearity="relu", bias=False)
    )
    assert repr(nn.GRUCell(3, 4)) == repr(torch.nn.GRUCell(3, 4))


# ----------------------------------------------------------------------------------------- errors
def test_wrong_input_rank_and_size():
    lstm = nn.LSTM(3, 4)
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D, got 4D"):
        lstm(convlab.randn(2, 2, 2, 3))
    with pytest.raises(
        RuntimeError, match="input.size\\(-1\\) must be equal to input_size. Expected 3, got 5"
    ):
        lstm(convlab.randn(2, 2, 5))
    with pytest.raises(ValueError, match="Expected input to be 1D or 2D, got 3D"):
        nn.GRUCell(3, 4)(convlab.randn(1, 2, 3))
    with pytest.raises(RuntimeError, match="input has inconsistent input_size: got 2 expected 3"):
        nn.RNNCell(3, 4)(convlab.randn(5, 2))
    with pytest.raises(RuntimeError, match="dtype"):
        lstm(convlab.randn(2, 2, 3, dtype=convlab.float64))


def test_initial_state_shape_mismatch():
    lstm = nn.LSTM(3, 4, 2)
    x = convlab.randn(5, 2, 3)
    h = convlab.zeros(2, 2, 4)
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(2, 2, 4\), got \[1, 2, 4\]"):
        lstm(x, (convlab.zeros(1, 2, 4), h))
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(2, 2, 4\), got \[2, 3, 4\]"):
        lstm(x, (h, convlab.zeros(2, 3, 4)))
    with pytest.raises(RuntimeError, match="For unbatched 2-D input, hx\\[0\\] should also be 2-D"):
        lstm(convlab.randn(5, 3), (h, h))
    with pytest.raises(RuntimeError, match="For batched 3-D input, hx should also be 3-D"):
        nn.GRU(3, 4)(x, convlab.zeros(2, 4))
    with pytest.raises(TypeError, match="tuple of two tensors"):
        lstm(x, h)
    with pytest.raises(RuntimeError, match="hx has inconsistent shape"):
        nn.GRUCell(3, 4)(convlab.randn(2, 3), convlab.zeros(3, 4))


def test_constructor_errors():
    with pytest.raises(ValueError, match="dropout should be a number in range"):
        nn.LSTM(3, 4, 2, dropout=1.5)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.GRU(3, 4, dropout=0.2)
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        nn.LSTM(3, 0)
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(NotImplementedError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=2)


def test_backend_cell_kernels_check_their_operands(backend):
    xp = backend.xp
    z = xp.zeros((2, 8))
    h = xp.zeros((2, 2))
    with pytest.raises(ValueError, match="hg: expected shape \\(2, 8\\)"):
        backend.lstm_cell_forward(z, xp.zeros((2, 6)), None, None, h, h, h.copy(), z.copy())
    with pytest.raises(TypeError, match="c_prev: expected dtype float64"):
        backend.lstm_cell_forward(z, z, None, None, h.astype(np.float32), h, h.copy(), z.copy())
    with pytest.raises(ValueError, match="C-contiguous"):
        backend.rnn_cell_forward(xp.zeros((4, 2))[::2], h, None, None, h.copy(), False)


@pytest.mark.parametrize("batch_first", [False, True], ids=["seq-first", "batch-first"])
@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("padding_value", [0.0, -2.5], ids=["zero", "value"])
def test_pad_sequence_matches_torch(backend, batch_first, padding_side, padding_value):
    from convlab.nn.utils.rnn import pad_sequence

    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal((n, 2, 3)) for n in (4, 1, 3)]
    ours = [convlab.tensor(a, device=backend.name, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    kw = dict(batch_first=batch_first, padding_value=padding_value, padding_side=padding_side)
    out = pad_sequence(ours, **kw)
    expected = torch.nn.utils.rnn.pad_sequence(theirs, **kw)
    np.testing.assert_array_equal(to_numpy(backend, out._data), expected.detach().numpy())
    w = rng.standard_normal(tuple(expected.shape))
    (out * convlab.tensor(w, device=backend.name)).sum().backward()
    (expected * torch.tensor(w)).sum().backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(to_numpy(backend, a.grad._data), b.grad.numpy())


def test_pad_sequence_errors():
    from convlab.nn.utils.rnn import pad_sequence

    with pytest.raises(ValueError, match="padding_side to be one of left or right"):
        pad_sequence([convlab.ones(2)], padding_side="middle")
    with pytest.raises(ValueError, match="sequences\\[1\\] has shape \\(2, 4\\)"):
        pad_sequence([convlab.ones(2, 3), convlab.ones(2, 4)])
    with pytest.raises(ValueError, match="non-empty list"):
        pad_sequence([])


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("batch", [7, 10, 12], ids=["b7", "b10", "b12"])
def test_compiled_kernels_every_isa_cpu(isa, mode, dtype, batch):
    """The CPU time loops on each micro-kernel ISA, at sizes that leave partial register
    blocks and panels (37 hidden: not a multiple of the 32-column panels; 7, 10 and 12 rows
    take each row-block height of the AVX-512 product, and partial blocks elsewhere)."""
    cpu = convlab.get_backend("cpu")
    rng = np.random.default_rng(10)
    ours, theirs = _pair(cpu, mode, dtype, 5, 37, 2, bidirectional=True)
    x = rng.standard_normal((4, batch, 5)).astype(dtype)
    h0 = rng.standard_normal((4, batch, 37)).astype(dtype)
    states = (h0, rng.standard_normal((4, batch, 37)).astype(dtype)) if mode == "lstm" else h0
    names = [n for n, _ in theirs.named_parameters()]
    _compare(_run_both(cpu, ours, theirs, x, states, dtype), dtype, names)


@pytest.mark.parametrize("threads", [1, 2], ids=["t1", "t2"])
def test_compiled_kernels_any_thread_count_cpu(threads):
    """Splitting the steps' products over panels and the cells over rows: same numbers."""
    rng = np.random.default_rng(11)
    lstm = nn.LSTM(6, 40, 2)
    x = convlab.tensor(rng.standard_normal((5, 9, 6)).astype(np.float32))
    before = convlab.get_num_threads()
    try:
        convlab.set_num_threads(1)
        one = lstm(x)[0].detach().numpy()
        convlab.set_num_threads(threads)
        np.testing.assert_array_equal(lstm(x)[0].detach().numpy(), one)
    finally:
        convlab.set_num_threads(before)


@pytest.mark.parametrize("hidden", [37, 48], ids=["h37", "h48"])
@pytest.mark.parametrize("batch", [20, 7], ids=["b20", "b7"])
def test_lstm_backward_same_at_any_thread_count_cpu(hidden, batch):
    """The LSTM's fused backward loop (panels of 16 hidden units split over threads; 37 leaves
    a partial panel, and a 2-thread split of 3 panels is uneven): every gradient at 2 threads
    equals 1 thread's, bit for bit, in both directions, and matches PyTorch."""
    rng = np.random.default_rng(12)
    ours, theirs = _pair(
        convlab.get_backend("cpu"), "lstm", np.float32, 9, hidden, 2, bidirectional=True
    )
    x = rng.standard_normal((6, batch, 9)).astype(np.float32)
    states = tuple(rng.standard_normal((4, batch, hidden)).astype(np.float32) for _ in "hc")
    names = [n for n, _ in theirs.named_parameters()]
    cpu = convlab.get_backend("cpu")
    before = convlab.get_num_threads()
    try:
        convlab.set_num_threads(1)
        one = _run_both(cpu, ours, theirs, x, states, np.float32)
        for p in list(ours.parameters()) + list(theirs.parameters()):
            p.grad = None  # the second run's gradients, not their sum
        convlab.set_num_threads(2)
        two = _run_both(cpu, ours, theirs, x, states, np.float32)
    finally:
        convlab.set_num_threads(before)
    for a, b in zip(one[0], two[0]):  # outputs, input / state gradients, parameter gradients
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    _compare(two, np.float32, names)


@needs_torch
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_an_empty_batch_runs_as_in_torch(kind):
    # batch 0: empty outputs and states, zero parameter gradients (as PyTorch)
    ours = getattr(convlab.nn, kind)(4, 3, 2)
    theirs = getattr(torch.nn, kind)(4, 3, 2)
    x = convlab.zeros(5, 0, 4, requires_grad=True)
    tx = torch.zeros(5, 0, 4, requires_grad=True)
    out, state = ours(x)
    t_out, t_state = theirs(tx)
    assert tuple(out.shape) == tuple(t_out.shape)
    states = state if isinstance(state, tuple) else (state,)
    t_states = t_state if isinstance(t_state, tuple) else (t_state,)
    assert [tuple(s.shape) for s in states] == [tuple(s.shape) for s in t_states]
    out.sum().backward()
    t_out.sum().backward()
    assert tuple(x.grad.shape) == tuple(tx.grad.shape)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
