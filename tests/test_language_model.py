"""The word-level LanguageModel: shapes, tied weights, dropout, errors, and values and every
gradient against the same model composed of PyTorch layers with copied weights."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch
from convlab.models.language_model import LanguageModel, detach_hidden

VOCAB, EMB, HID, SEQ, BATCH = 23, 6, 5, 7, 3


def _tokens(rng, seq=SEQ, batch=BATCH):
    return rng.integers(0, VOCAB, size=(seq, batch))


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn", "rnn_relu"])
@pytest.mark.parametrize("layers", [1, 2])
def test_shapes_and_init_hidden(kind, layers):
    model = LanguageModel(EMB, VOCAB, HID, layers, seq_model=kind)
    x = convlab.tensor(_tokens(np.random.default_rng(0)))
    logits, hidden = model(x, model.init_hidden(BATCH))
    assert tuple(logits.shape) == (SEQ * BATCH, VOCAB)
    states = hidden if kind == "lstm" else (hidden,)
    assert len(states) == (2 if kind == "lstm" else 1)
    for h in states:
        assert tuple(h.shape) == (layers, BATCH, HID)
    zero = model.init_hidden(4)
    for h in zero if kind == "lstm" else (zero,):
        assert tuple(h.shape) == (layers, 4, HID) and h.dtype == convlab.float32
        assert not h.numpy().any()
    # no state given starts from zeros, as an explicit zero state does
    again, _ = model(x)
    np.testing.assert_array_equal(again.numpy(), logits.numpy())


def test_hw4_call_and_float64():
    model = LanguageModel(30, 100, hidden_size=10, num_layers=2, seq_model="rnn", dtype="float64")
    logits, h = model(convlab.zeros(4, 2, dtype=convlab.int64))
    assert logits.dtype == convlab.float64 and tuple(h.shape) == (2, 2, 10)
    assert model.init_hidden(2).dtype == convlab.float64


def test_initialisation_ranges():
    model = LanguageModel(EMB, 500, HID)
    for w in (model.encoder.weight, model.decoder.weight):
        values = w.numpy()
        assert np.abs(values).max() <= 0.1 and values.std() > 0.04  # uniform(-0.1, 0.1): std .058
    assert not model.decoder.bias.numpy().any()


def test_tied_weights_share_memory_and_stay_shared():
    model = LanguageModel(HID, VOCAB, HID, seq_model="gru", tied=True)
    assert model.decoder.weight is model.encoder.weight
    names = [n for n, _ in model.named_parameters()]
    assert "decoder.weight" not in names and "encoder.weight" in names
    assert "decoder.weight" in model.state_dict()  # as PyTorch: both names, one tensor
    opt = convlab.optim.SGD(model.parameters(), lr=0.5)
    x = convlab.tensor(_tokens(np.random.default_rng(1)))
    logits, _ = model(x)
    convlab.nn.functional.cross_entropy(
        logits, convlab.tensor(np.arange(SEQ * BATCH) % VOCAB)
    ).backward()
    before = model.encoder.weight.numpy().copy()
    opt.step()
    after = model.encoder.weight.numpy()
    assert not np.array_equal(before, after)
    assert np.shares_memory(model.decoder.weight.numpy(), model.encoder.weight.numpy())
    # a state dict of a tied model loads back into a tied model
    other = LanguageModel(HID, VOCAB, HID, seq_model="gru", tied=True)
    other.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(other.decoder.weight.numpy(), after)


def test_detach_hidden():
    h = convlab.ones(1, 2, 3, requires_grad=True) * 2
    c = convlab.ones(1, 2, 3, requires_grad=True) * 3
    dh, dc = detach_hidden((h, c))
    assert not dh.requires_grad and not dc.requires_grad
    np.testing.assert_array_equal(dc.numpy(), c.detach().numpy())
    assert not detach_hidden(h).requires_grad


def test_dropout_only_in_training():
    model = LanguageModel(EMB, VOCAB, HID, 2, "lstm", dropout=0.5)
    x = convlab.tensor(_tokens(np.random.default_rng(2)))
    convlab.manual_seed(0)
    a, _ = model(x)
    b, _ = model(x)
    assert not np.allclose(a.numpy(), b.numpy())
    model.eval()
    c, _ = model(x)
    d, _ = model(x)
    np.testing.assert_array_equal(c.numpy(), d.numpy())


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"seq_model": "transformer"}, ValueError, "seq_model: expected one of rnn"),
        ({"dropout": 1.5}, ValueError, r"dropout: expected a probability in \[0, 1\]"),
        ({"tied": True}, ValueError, "tied: .*hidden_size == embedding_size, got 5 and 6"),
    ],
)
def test_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        LanguageModel(EMB, VOCAB, HID, **kwargs)


def test_hw4_float_token_ids():
    # hw4: batchify(corpus.train, 16, device, dtype="float32") feeds float ids to the model
    from convlab.data import batchify, get_batch

    model = LanguageModel(EMB, VOCAB, HID, seq_model="rnn")
    ids = np.random.default_rng(4).integers(0, VOCAB, 60)
    x, _ = get_batch(batchify(ids, 4, None, "float32"), 0, 5)
    assert x.dtype == convlab.float32
    logits, _ = model(x)
    expected, _ = model(convlab.tensor(x.numpy().astype(np.int64)))
    np.testing.assert_array_equal(logits.numpy(), expected.numpy())
    with pytest.raises(TypeError, match="fractional part"):
        model(x + 0.5)


def test_token_outside_vocabulary_is_index_error():
    model = LanguageModel(EMB, VOCAB, HID)
    with pytest.raises(IndexError):
        model(convlab.tensor(np.full((2, 2), VOCAB)))


# ---------------------------------------------------------------- against PyTorch
def _torch_model(kind, layers, tied):
    """The same architecture from PyTorch's own layers (the reference)."""
    rnn_kind = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN", "rnn_relu": "RNN"}[kind]
    extra = {"nonlinearity": "relu"} if kind == "rnn_relu" else {}

    class Reference(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Embedding(VOCAB, HID if tied else EMB)
            self.rnn = getattr(torch.nn, rnn_kind)(HID if tied else EMB, HID, layers, **extra)
            self.decoder = torch.nn.Linear(HID, VOCAB)
            if tied:
                self.decoder.weight = self.encoder.weight

        def forward(self, x, h):
            out, h = self.rnn(self.encoder(x), h)
            return self.decoder(out).reshape(-1, VOCAB), h

    return Reference().double()


@needs_torch
@pytest.mark.parametrize(
    "kind,layers,tied",
    [("lstm", 2, False), ("gru", 1, False), ("rnn", 2, True), ("rnn_relu", 1, False)],
)
def test_values_and_gradients_match_torch(kind, layers, tied):
    rng = np.random.default_rng(3)
    emb = HID if tied else EMB
    ours = LanguageModel(emb, VOCAB, HID, layers, seq_model=kind, tied=tied, dtype="float64")
    ref = _torch_model(kind, layers, tied)
    state = {k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
    ref.load_state_dict(state)
    if tied:
        assert ref.decoder.weight is ref.encoder.weight
    x = _tokens(rng)
    y = rng.integers(0, VOCAB, size=SEQ * BATCH)
    shape = (layers, BATCH, HID)
    h0 = [rng.normal(size=shape) for _ in range(2 if kind == "lstm" else 1)]

    ours_h = [convlab.tensor(h, requires_grad=True) for h in h0]
    ref_h = [torch.tensor(h, requires_grad=True) for h in h0]
    logits, hn = ours(convlab.tensor(x), tuple(ours_h) if kind == "lstm" else ours_h[0])
    ref_logits, ref_hn = ref(torch.from_numpy(x), tuple(ref_h) if kind == "lstm" else ref_h[0])
    np.testing.assert_allclose(logits.numpy(), ref_logits.detach().numpy(), rtol=1e-10, atol=1e-12)
    for a, b in zip(hn if kind == "lstm" else (hn,), ref_hn if kind == "lstm" else (ref_hn,)):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)

    convlab.nn.functional.cross_entropy(logits, convlab.tensor(y)).backward()
    torch.nn.functional.cross_entropy(ref_logits, torch.from_numpy(y)).backward()
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(
            p.grad.numpy(), ref_params[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name
        )
    for a, b in zip(ours_h, ref_h):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-12)
