"""SyncBatchNorm without a process group (or alone) is BatchNorm: against torch, with
gradients; convert_sync_batchnorm swaps the layers and keeps their parameters."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch
from convlab import nn


@needs_torch
@pytest.mark.parametrize("shape", [(4, 3), (4, 3, 5), (2, 3, 4, 5), (2, 3, 2, 2, 2)])
def test_without_a_process_group_it_is_batch_norm(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) * 2 + 1
    upstream = rng.standard_normal(shape)
    ours = nn.SyncBatchNorm(3).double()
    theirs = torch.nn.SyncBatchNorm(3).double()  # runs as BatchNorm without a group (CPU)
    xs, tx = convlab.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (ours(xs) * convlab.tensor(upstream)).sum().backward()
    y = torch.nn.functional.batch_norm(
        tx, theirs.running_mean, theirs.running_var, theirs.weight, theirs.bias, True, 0.1, 1e-5
    )
    (y * torch.from_numpy(upstream)).sum().backward()
    np.testing.assert_allclose(xs.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-9)
    np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-9)
    np.testing.assert_allclose(ours.running_var.numpy(), theirs.running_var.numpy(), rtol=1e-9)


def test_convert_sync_batchnorm_shares_parameters_and_buffers():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Sequential(nn.BatchNorm1d(4)))
    model[1].eval()
    weight, running = model[1].weight, model[1].running_mean
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model
    assert isinstance(model[1], nn.SyncBatchNorm) and isinstance(model[2][0], nn.SyncBatchNorm)
    assert model[1].weight is weight and model[1].running_mean is running
    assert not model[1].training and model[2][0].training
    assert isinstance(model[0], nn.Conv2d)
    alone = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm2d(3, momentum=None))
    assert isinstance(alone, nn.SyncBatchNorm) and alone.momentum is None
    assert list(model.state_dict()) == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
        "2.0.weight",
        "2.0.bias",
        "2.0.running_mean",
        "2.0.running_var",
        "2.0.num_batches_tracked",
    ]


def test_argument_errors():
    with pytest.raises(ValueError, match="SyncBatchNorm: expected 2D or 3D"):
        nn.SyncBatchNorm(3)(convlab.ones(3))
    with pytest.raises(ValueError, match="3 channels in dimension 1"):
        nn.SyncBatchNorm(3)(convlab.ones(2, 4, 2))
