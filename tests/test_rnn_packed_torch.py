"""Packed sequences (``nn.utils.rnn.pack_padded_sequence`` and friends) and the recurrent
layers on packed input, against PyTorch with copied weights: values, final states and every
gradient."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch

pytestmark = needs_torch

LENGTHS = [2, 5, 3, 5, 1]  # unsorted, with ties


def _padded(rng, steps=5, batch=5, features=3, dtype=np.float64):
    return rng.standard_normal((steps, batch, features)).astype(dtype)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_pack_and_pad_round_trip_like_torch(batch_first, enforce_sorted):
    rng = np.random.default_rng(0)
    x = _padded(rng)
    lengths = sorted(LENGTHS, reverse=True) if enforce_sorted else LENGTHS
    if batch_first:
        x = x.transpose(1, 0, 2).copy()
    ours = convlab.nn.utils.rnn.pack_padded_sequence(
        convlab.tensor(x), lengths, batch_first=batch_first, enforce_sorted=enforce_sorted
    )
    theirs = torch.nn.utils.rnn.pack_padded_sequence(
        torch.tensor(x), torch.tensor(lengths), batch_first, enforce_sorted
    )
    np.testing.assert_array_equal(ours.data.numpy(), theirs.data.numpy())
    np.testing.assert_array_equal(ours.batch_sizes.numpy(), theirs.batch_sizes.numpy())
    for a, b in ((ours.sorted_indices, theirs.sorted_indices),
                 (ours.unsorted_indices, theirs.unsorted_indices)):  # fmt: skip
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    for total in (None, 7):
        p, n = convlab.nn.utils.rnn.pad_packed_sequence(
            ours, batch_first=batch_first, padding_value=-1.5, total_length=total
        )
        tp, tn = torch.nn.utils.rnn.pad_packed_sequence(
            theirs, batch_first=batch_first, padding_value=-1.5, total_length=total
        )
        np.testing.assert_array_equal(p.numpy(), tp.numpy())
        np.testing.assert_array_equal(n.numpy(), tn.numpy())
    seqs = convlab.nn.utils.rnn.unpack_sequence(ours)
    tseqs = torch.nn.utils.rnn.unpack_sequence(theirs)
    assert [tuple(s.shape) for s in seqs] == [tuple(s.shape) for s in tseqs]
    for s, t in zip(seqs, tseqs):
        np.testing.assert_array_equal(s.numpy(), t.numpy())


def test_pack_sequence_and_errors():
    rng = np.random.default_rng(1)
    seqs = [rng.standard_normal((n, 2)) for n in (4, 2, 3)]
    ours = convlab.nn.utils.rnn.pack_sequence([convlab.tensor(s) for s in seqs], False)
    theirs = torch.nn.utils.rnn.pack_sequence([torch.tensor(s) for s in seqs], False)
    np.testing.assert_array_equal(ours.data.numpy(), theirs.data.numpy())
    x = convlab.zeros(4, 3, 2)
    with pytest.raises(RuntimeError, match="must be sorted in decreasing order"):
        convlab.nn.utils.rnn.pack_padded_sequence(x, [2, 4, 1])
    with pytest.raises(RuntimeError, match="greater than 0"):
        convlab.nn.utils.rnn.pack_padded_sequence(x, [4, 2, 0])
    with pytest.raises(ValueError, match="lengths: expected a 1-D sequence of 3 ints"):
        convlab.nn.utils.rnn.pack_padded_sequence(x, [4, 2])
    with pytest.raises(ValueError, match="exceeds the 4 time steps"):
        convlab.nn.utils.rnn.pack_padded_sequence(x, [5, 2, 1])
    packed = convlab.nn.utils.rnn.pack_padded_sequence(x, [4, 2, 1])
    with pytest.raises(ValueError, match="total_length"):
        convlab.nn.utils.rnn.pad_packed_sequence(packed, total_length=3)


def _copy(ours, theirs):
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            p.copy_(torch.from_numpy(getattr(ours, name).detach().numpy()))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_recurrent_layers_on_packed_input_match_torch(kind, bidirectional, enforce_sorted):
    """Output data, final states (each sequence's own last step) and the gradients of the
    padded input, the initial states and every parameter (float64)."""
    rng = np.random.default_rng(2)
    x = _padded(rng)
    lengths = sorted(LENGTHS, reverse=True) if enforce_sorted else LENGTHS
    ours = getattr(convlab.nn, kind)(3, 4, num_layers=2, bidirectional=bidirectional).double()
    theirs = getattr(torch.nn, kind)(3, 4, num_layers=2, bidirectional=bidirectional).double()
    _copy(ours, theirs)
    shape = (2 * (2 if bidirectional else 1), 5, 4)
    h0 = rng.standard_normal(shape)
    c0 = rng.standard_normal(shape)
    results = []
    for lib, net in ((convlab, ours), (torch, theirs)):
        xs = lib.tensor(x, requires_grad=True)
        hs = lib.tensor(h0, requires_grad=True)
        cs = lib.tensor(c0, requires_grad=True)
        lens = lengths if lib is convlab else torch.tensor(lengths)
        packed = lib.nn.utils.rnn.pack_padded_sequence(xs, lens, enforce_sorted=enforce_sorted)
        out, state = net(packed, (hs, cs) if kind == "LSTM" else hs)
        states = state if kind == "LSTM" else (state,)
        padded, _ = lib.nn.utils.rnn.pad_packed_sequence(out)
        loss = (padded * padded).sum() + sum((s * s * 0.5).sum() for s in states)
        loss.backward()
        grads = [xs.grad, hs.grad] + ([cs.grad] if kind == "LSTM" else [])
        grads += [p.grad for p in net.parameters()]
        results.append(
            [out.data.detach().numpy()]
            + [s.detach().numpy() for s in states]
            + [g.numpy() for g in grads]
        )
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
