"""Benchmark cases for the recurrent layers, next to PyTorch's on the same threads.

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
    return cases
