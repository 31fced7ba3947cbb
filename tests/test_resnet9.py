"""ResNet9 (needle hw4 and cifar10-fast forms) and the ``convlab train cifar10`` command."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch
from convlab.models import ResNet9
from data_files import CIFAR_NAMES, cifar_batch, write_cifar_bin


def test_parameter_counts_and_shapes():
    hw4, standard = ResNet9(), ResNet9("standard", num_classes=7)
    assert sum(p.numel() for p in hw4.parameters()) == 431_946
    # cifar10-fast: 64-128-256-512 bias-free convs with BN, bias-free 512 -> classes head
    convs = [
        (3, 64),
        (64, 128),
        (128, 128),
        (128, 128),
        (128, 256),
        (256, 512),
        (512, 512),
        (512, 512),
    ]
    expected = sum(9 * a * b + 2 * b for a, b in convs) + 512 * 7
    assert sum(p.numel() for p in standard.parameters()) == expected
    x = convlab.randn(2, 3, 32, 32)
    assert hw4(x).shape == (2, 10) and standard(x).shape == (2, 7)
    with pytest.raises(ValueError, match="variant: expected 'hw4' or 'standard'"):
        ResNet9("resnet50")


def _torch_hw4():
    tn = torch.nn

    def conv_bn(a, b, k=3, s=1):
        return tn.Sequential(tn.Conv2d(a, b, k, s, k // 2), tn.BatchNorm2d(b), tn.ReLU())

    class Residual(tn.Module):
        def __init__(self, *body):
            super().__init__()
            self.body = tn.Sequential(*body)

        def forward(self, x):
            return x + self.body(x)

    return tn.Sequential(
        conv_bn(3, 16, 7, 4),
        conv_bn(16, 32, 3, 2),
        Residual(conv_bn(32, 32), conv_bn(32, 32)),
        conv_bn(32, 64, 3, 2),
        conv_bn(64, 128, 3, 2),
        Residual(conv_bn(128, 128), conv_bn(128, 128)),
        tn.Flatten(),
        tn.Linear(128, 128),
        tn.ReLU(),
        tn.Linear(128, 10),
    )


@needs_torch
def test_hw4_forward_and_gradients_match_pytorch(rng):
    convlab.manual_seed(1)
    ours, theirs = ResNet9(), _torch_hw4()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    x = rng.normal(size=(16, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    loss = convlab.nn.functional.cross_entropy(ours(convlab.tensor(x)), convlab.tensor(y))
    loss.backward()
    tloss = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
    tloss.backward()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
    # a conv bias before a BatchNorm has a zero gradient up to rounding (~1e-8): compare
    # every gradient to within rounding of the model's largest one
    scale = max(float(np.abs(q.grad.numpy()).max()) for q in theirs.parameters())
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(
            p.grad.numpy(), q.grad.numpy(), rtol=1e-3, atol=1e-5 * scale, err_msg=name
        )


def _cifar(tmp_path, rng, n=24):
    write_cifar_bin(tmp_path, {name: cifar_batch(rng, n) for name in CIFAR_NAMES})
    return tmp_path


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "convlab.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_train_cifar10_command_writes_metrics_checkpoints_and_curves(tmp_path, rng):
    from convlab.training.cifar import CifarTrainConfig, train_cifar10

    data = _cifar(tmp_path / "data", rng)
    out = tmp_path / "run"
    config = CifarTrainConfig(data=str(data), epochs=2, batch_size=16, limit=40)
    metrics = train_cifar10(config, out, quiet=True)
    assert metrics["epochs_done"] == 2 and len(metrics["test_accuracy"]) == 2
    assert all(np.isfinite(metrics["train_loss"]))
    for name in ("model.npz", "state.npz", "metrics.json", "learning_curves.png", "config.json"):
        assert (out / name).exists(), name
    model = ResNet9()
    model.load_state_dict(convlab.load(out / "model.npz"))
    # an exact resume: a 3-epoch run interrupted after 2 equals an uninterrupted one
    config3 = CifarTrainConfig(data=str(data), epochs=3, batch_size=16, limit=40)
    resumed = train_cifar10(config3, out, resume=True, quiet=True)
    straight = train_cifar10(config3, tmp_path / "straight", quiet=True)
    assert resumed["train_loss"] == straight["train_loss"]
    assert resumed["test_loss"] == straight["test_loss"]


def test_train_cifar10_cli_user_errors(tmp_path, rng):
    result = _cli(
        "train", "cifar10", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r")
    )
    assert result.returncode == 2
    assert "no CIFAR-10 files" in result.stderr and "run with --download" in result.stderr
    assert "Traceback" not in result.stderr
    data = _cifar(tmp_path / "data", rng, n=4)
    result = _cli("train", "cifar10", "--data", str(data), "--epochs", "0")
    assert result.returncode == 2 and "--epochs: expected a positive integer" in result.stderr
    out = tmp_path / "run"
    result = _cli(
        "train",
        "cifar10",
        "--data",
        str(data),
        "--epochs",
        "1",
        "--limit",
        "8",
        "--batch-size",
        "4",
        "--out",
        str(out),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "metrics.json").read_text())["epochs_done"] == 1
    result = _cli("train", "cifar10", "--data", str(data), "--out", str(out), "--quiet")
    assert result.returncode == 2 and "already holds a run" in result.stderr
    (out / "state.npz").write_bytes(b"not a checkpoint")
    result = _cli(
        "train",
        "cifar10",
        "--data",
        str(data),
        "--epochs",
        "2",
        "--limit",
        "8",
        "--batch-size",
        "4",
        "--out",
        str(out),
        "--resume",
    )
    assert result.returncode == 2 and "corrupted" in result.stderr
