"""Benchmark cases for the recurrent layers and the word-level language model's training
step, next to PyTorch's on the same threads.

The shapes are the word-level language model's (Zaremba et al.'s small and medium
configurations, pytorch/examples' ``word_language_model`` defaults): two stacked layers,
hidden 200 and 650, batch 20, 35 steps of truncated backpropagation, input size = hidden
(the embedding). Each case is one forward and backward of the layer stack in float32, the
gradient reaching the input, the initial states and every parameter.
"""

from __future__ import annotations

import numpy as np

import convlab
from cases import Case, _torch

RNN_BATCH, RNN_STEPS, RNN_LAYERS = 20, 35, 2
# (layer type, hidden size); hidden 650 is the medium model
RNN_LAYERS_CASES = [("LSTM", 200), ("LSTM", 650), ("GRU", 200), ("GRU", 650)]
QUICK_RNN = {("LSTM", 200), ("GRU", 200)}
GATES = {"LSTM": 4, "GRU": 3}


def rnn_cases(quick: bool) -> list[Case]:
    torch = _torch()
    rng = np.random.default_rng(11)
    cases = []
    for kind, hidden in RNN_LAYERS_CASES:
        if quick and (kind, hidden) not in QUICK_RNN:
            continue
        ours = getattr(convlab.nn, kind)(hidden, hidden, RNN_LAYERS)
        shape = (RNN_STEPS, RNN_BATCH, hidden)
        x = rng.standard_normal(shape, dtype=np.float32)
        dy = rng.standard_normal(shape, dtype=np.float32)
        # per layer and step: the input and recurrent products, forward (1x) and backward
        # (2x: input and weight gradients)
        flops = 3 * 2.0 * RNN_LAYERS * RNN_STEPS * RNN_BATCH * 2 * hidden * GATES[kind] * hidden
        ox, ody = convlab.tensor(x), convlab.tensor(dy)

        def ours_fwd_bwd(module=ours, ox=ox, ody=ody):
            xx = ox.detach().requires_grad_()
            out, _ = module(xx)
            out.backward(ody)

        torch_fwd_bwd = None
        if torch:
            theirs = getattr(torch.nn, kind)(hidden, hidden, RNN_LAYERS)
            with torch.no_grad():
                for p, q in zip(theirs.parameters(), ours.parameters()):
                    p.copy_(torch.from_numpy(q.detach().numpy()))
            tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)

            def torch_fwd_bwd(module=theirs, tx=tx, tdy=tdy):
                xx = tx.detach().requires_grad_()
                out, _ = module(xx)
                out.backward(tdy)

        label = f"{kind} {RNN_LAYERS}x{hidden} batch {RNN_BATCH} bptt {RNN_STEPS} fwd+bwd"
        cases.append(Case("rnn", label, ours_fwd_bwd, torch_fwd_bwd, None, flops, "GFLOP/s"))
    return cases + language_model_cases(quick)


LM_VOCAB, LM_HIDDEN = 10_000, 200


def _torch_language_model(torch, vocab: int, hidden: int, layers: int):
    """The same network in PyTorch (pytorch/examples' word_language_model's submodule names,
    so our state dict loads into it)."""

    class WordModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = torch.nn.Embedding(vocab, hidden)
            self.rnn = torch.nn.LSTM(hidden, hidden, layers)
            self.decoder = torch.nn.Linear(hidden, vocab)

        def forward(self, x, h):
            out, h = self.rnn(self.encoder(x), h)
            return self.decoder(out).reshape(-1, vocab), h

    return WordModel()


def language_model_cases(quick: bool) -> list[Case]:
    """One training step of the word-level language model (``convlab train ptb``'s defaults:
    vocabulary 10k, embedding = hidden = 200, 2 LSTM layers, batch 20, bptt 35): embedding,
    LSTM, decoder, cross-entropy, backward, gradient clipping at 0.25, SGD. Dropout off, so
    both libraries do the same work."""
    from convlab.models import LanguageModel

    torch = _torch()
    rng = np.random.default_rng(12)
    x = rng.integers(0, LM_VOCAB, (RNN_STEPS, RNN_BATCH))
    y = rng.integers(0, LM_VOCAB, RNN_STEPS * RNN_BATCH)
    ours = LanguageModel(LM_HIDDEN, LM_VOCAB, LM_HIDDEN, RNN_LAYERS, "lstm")
    ox, oy = convlab.tensor(x), convlab.tensor(y)
    o_opt = convlab.optim.SGD(ours.parameters(), lr=0.1)

    def ours_step() -> None:
        o_opt.zero_grad()
        logits, _ = ours(ox, ours.init_hidden(RNN_BATCH))
        convlab.nn.functional.cross_entropy(logits, oy).backward()
        convlab.nn.utils.clip_grad_norm_(ours.parameters(), 0.25)
        o_opt.step()

    torch_step = None
    if torch:
        theirs = _torch_language_model(torch, LM_VOCAB, LM_HIDDEN, RNN_LAYERS)
        theirs.load_state_dict(
            {k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
        )
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        t_opt = torch.optim.SGD(theirs.parameters(), lr=0.1)

        def torch_step() -> None:
            t_opt.zero_grad()
            logits, _ = theirs(tx, None)
            torch.nn.functional.cross_entropy(logits, ty).backward()
            torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.25)
            t_opt.step()

    label = (
        f"word LM step: vocab {LM_VOCAB // 1000}k, {RNN_LAYERS}x{LM_HIDDEN} LSTM, "
        f"batch {RNN_BATCH} bptt {RNN_STEPS}, SGD"
    )
    words = RNN_STEPS * RNN_BATCH
    return [Case("rnn", label, ours_step, torch_step, None, words, "words/s")]
