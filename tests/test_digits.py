"""The whole stack learns: a small CNN on scikit-learn's real handwritten digits (UCI, 8x8).

scikit-learn ships the 1,797 images, so nothing is downloaded. The same run in PyTorch, from the
same initial weights on the same batches, must give the same loss curve.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import convlab
from conftest import needs_gpu, needs_torch, torch
from convlab import nn
from convlab.data import DataLoader, TensorDataset

sklearn_datasets = pytest.importorskip("sklearn.datasets")

EPOCHS, BATCH, LR = 4, 64, 3e-3
#: the GPU backend on the CUDA emulator (tests/cuda_emulator.py): kernels run as host code
EMULATED_GPU = os.environ.get("CONVLAB_CUDA_EMULATOR") == "1"


def _digits():
    digits = sklearn_datasets.load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    test, train = order[:360], order[360:]
    return images[train], labels[train], images[test], labels[test]


# Convs before a BatchNorm have no bias: its gradient is zero up to rounding, and Adam would
# turn that rounding noise into full-size steps that differ between any two libraries.
def _model(n=nn):
    """The CNN in ``n`` (``convlab.nn`` or ``torch.nn``: the same names and arguments)."""
    return n.Sequential(
        n.Conv2d(1, 32, 3, padding=1, bias=False),
        n.BatchNorm2d(32),
        n.ReLU(),
        n.Conv2d(32, 64, 3, padding=1, bias=False),
        n.BatchNorm2d(64),
        n.ReLU(),
        n.MaxPool2d(2),
        n.Conv2d(64, 64, 3, padding=1, bias=False),
        n.BatchNorm2d(64),
        n.ReLU(),
        n.MaxPool2d(2),
        n.Flatten(),
        n.Linear(64 * 2 * 2, 10),
    )


def _train(model, x_train, y_train, device, steps_out=None, epochs=EPOCHS):
    loader = DataLoader(TensorDataset(x_train, y_train), BATCH, shuffle=True, seed=1)
    optimizer = convlab.optim.Adam(model.parameters(), lr=LR)
    losses, batches = [], []
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            if steps_out is not None:
                batches.append((x.numpy().copy(), y.numpy().copy()))
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.item()))
    if steps_out is not None:
        steps_out.extend(batches)
    return losses


def _accuracy(model, x, y, device):
    model.eval()
    with convlab.no_grad():
        logits = model(convlab.tensor(x, device=device))
    return float((logits.cpu().numpy().argmax(1) == y).mean())


def test_small_cnn_learns_real_digits(backend):
    if backend.name == "gpu" and EMULATED_GPU:
        # 90 s of CI's emulator run; there test_gpu_training_steps_follow_the_cpu checks the
        # same kernels step by step, and a real GPU runs this (benchmarks/gpu_check.sh)
        pytest.skip("the whole training run is for a real GPU, not the CUDA emulator")
    x_train, y_train, x_test, y_test = _digits()
    convlab.manual_seed(0)
    model = _model().to(backend.name)
    start = time.perf_counter()
    losses = _train(model, x_train, y_train, backend.name)
    accuracy = _accuracy(model, x_test, y_test, backend.name)
    seconds = time.perf_counter() - start
    print(
        f"digits on {backend.name}: test accuracy {accuracy:.3f} after {EPOCHS} epochs "
        f"in {seconds:.1f} s"
    )
    assert np.mean(losses[-5:]) < 0.25 * np.mean(losses[:5])
    assert accuracy >= 0.95, f"test accuracy {accuracy:.3f} < 0.95"


@needs_gpu
def test_gpu_training_steps_follow_the_cpu():
    """The first 10 training steps on the GPU and on the CPU, from the same weights on the
    same batches: the same losses and weights up to rounding (the GPU kernels' forward,
    backward and Adam update, each step feeding the next; Adam amplifies the two backends'
    different summation orders step by step, so later steps drift further apart)."""
    x_train, y_train, _, _ = _digits()
    steps = 10
    x_train, y_train = x_train[: steps * BATCH], y_train[: steps * BATCH]
    convlab.manual_seed(0)
    cpu_model = _model()
    gpu_model = _model()
    gpu_model.load_state_dict(cpu_model.state_dict())
    gpu_model.to("gpu")
    cpu_losses = _train(cpu_model, x_train, y_train, "cpu", epochs=1)
    gpu_losses = _train(gpu_model, x_train, y_train, "gpu", epochs=1)
    assert len(cpu_losses) == len(gpu_losses) == steps
    assert cpu_losses[-1] < 0.8 * cpu_losses[0]  # the steps train: a later loss is lower
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=2e-3, atol=1e-5)
    for (name, a), b in zip(cpu_model.state_dict().items(), gpu_model.state_dict().values()):
        np.testing.assert_allclose(b.cpu().numpy(), a.numpy(), rtol=1e-2, atol=1e-3, err_msg=name)


@needs_torch
def test_pytorch_gives_the_same_loss_curve_from_the_same_start():
    x_train, y_train, _, _ = _digits()
    convlab.manual_seed(0)
    ours = _model()
    theirs = _model(torch.nn)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    batches = []
    our_losses = _train(ours, x_train, y_train, "cpu", steps_out=batches)
    optimizer = torch.optim.Adam(theirs.parameters(), lr=LR)
    their_losses = []
    for x, y in batches:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
        loss.backward()
        optimizer.step()
        their_losses.append(float(loss.detach()))
    assert len(our_losses) == len(their_losses) == EPOCHS * -(-len(y_train) // BATCH)
    np.testing.assert_allclose(our_losses, their_losses, rtol=1e-3, atol=1e-5)
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-2, atol=1e-3, err_msg=name)
