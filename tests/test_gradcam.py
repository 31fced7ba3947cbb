"""Grad-CAM: a toy model whose answer is known, and the paper's CNN against the same
computation done with torch autograd on copied weights."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from convlab import nn
from convlab.explain import GradCAM, grad_cam
from convlab.models import ChartCNN

torch = pytest.importorskip("torch")


class _LastColumns(nn.Module):
    """Sees only the last five columns: the input is masked before a 1x1 conv (no bias), so
    the explained layer's activations, and hence the map, are zero everywhere else."""

    def __init__(self, width: int = 15) -> None:
        super().__init__()
        mask = np.zeros((1, 1, 1, width), np.float32)
        mask[..., -5:] = 1.0
        self.register_buffer("mask", convlab.from_numpy(mask))
        self.body = nn.Sequential(nn.Conv2d(1, 3, 1, bias=False), nn.ReLU())
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        a = self.body(x * self.mask)
        return self.fc(a.mean(dim=(2, 3)))


def test_a_model_that_sees_the_last_five_columns_is_explained_there_only():
    convlab.manual_seed(0)
    model = _LastColumns()
    with convlab.no_grad():
        model.body[0].weight.copy_(convlab.tensor([[[[1.0]]], [[[2.0]]], [[[0.5]]]]))
        model.fc.weight.copy_(convlab.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]))
    images = (np.random.default_rng(1).random((6, 1, 32, 15)) < 0.3).astype(np.float32)
    maps, logits = GradCAM(model, model.body)(images, target=1)
    assert maps.shape == (6, 32, 15)
    assert np.all(maps[:, :, :-5] == 0.0)
    # score = mean of the 3 channels' activations: every gradient is 1 / (32 * 15), so the map
    # is (1 + 2 + 0.5) * x / 480 on the seen columns
    np.testing.assert_allclose(maps[:, :, -5:], 3.5 * images[:, 0, :, -5:] / 480, rtol=1e-6)
    seen = images[:, 0, :, -5:].sum((1, 2))
    np.testing.assert_allclose(logits[:, 1], 3.5 * seen / 480 + float(model.fc.bias[1]), atol=1e-6)
    # class 0's score ignores the activations: no gradient, an all-zero map
    zero, _ = GradCAM(model, model.body)(images, target=0)
    assert np.all(zero == 0.0)


def _torch_chart_cnn(model: ChartCNN):
    """The same network in torch, weights copied (conv -> BN -> LeakyReLU -> max pool)."""
    blocks = []
    for block in model.features:
        conv, bn = block[0], block[1]
        t_conv = torch.nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
        )
        t_bn = torch.nn.BatchNorm2d(bn.num_features)
        with torch.no_grad():
            t_conv.weight.copy_(torch.from_numpy(conv.weight.numpy()))
            t_conv.bias.copy_(torch.from_numpy(conv.bias.numpy()))
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(t_bn, name).copy_(torch.from_numpy(getattr(bn, name).numpy()))
        blocks.append(
            torch.nn.Sequential(
                t_conv, t_bn, torch.nn.LeakyReLU(0.01), torch.nn.MaxPool2d((2, 1), ceil_mode=True)
            )
        )
    fc = torch.nn.Linear(model.fc.in_features, 2)
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(model.fc.weight.numpy()))
        fc.bias.copy_(torch.from_numpy(model.fc.bias.numpy()))
    return torch.nn.Sequential(*blocks).double().eval(), fc.double().eval()


def _torch_grad_cam(model: ChartCNN, images: np.ndarray, target: np.ndarray) -> np.ndarray:
    features, fc = _torch_chart_cnn(model)
    mean, std = float(model.input_mean.item()), float(model.input_std.item())
    x = (torch.from_numpy(images.astype(np.float64)) - mean) / std
    a = features(x)
    logits = fc(a.flatten(1))
    score = logits[torch.arange(len(images)), torch.from_numpy(target)].sum()
    (g,) = torch.autograd.grad(score, a)
    cam = torch.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(1, keepdim=True))
    up = torch.nn.functional.interpolate(
        cam, size=images.shape[2:], mode="bilinear", align_corners=False
    )
    return up[:, 0].detach().numpy()


@pytest.mark.parametrize("window", [5, 20])
def test_chart_cnn_grad_cam_matches_torch_autograd(window):
    convlab.manual_seed(window)
    model = ChartCNN(
        window, channels=[4, 6, 5][: 2 if window == 5 else 3], input_mean=0.12, input_std=0.33
    )
    rng = np.random.default_rng(window)
    for block in model.features:  # non-trivial running statistics and affine parameters
        bn = block[1]
        c = bn.num_features
        bn.running_mean._data[...] = rng.normal(0, 0.3, c)
        bn.running_var._data[...] = rng.uniform(0.5, 2.0, c)
        bn.weight._data[...] = rng.uniform(0.5, 1.5, c)
        bn.bias._data[...] = rng.normal(0, 0.2, c)
    h, w = {5: (32, 15), 20: (64, 60)}[window]
    images = (rng.random((5, 1, h, w)) < 0.2).astype(np.uint8)
    target = np.array([1, 0, 1, 1, 0])
    model.train()
    maps, logits = GradCAM(model)(images, target=target)
    assert model.training  # restored
    expected = _torch_grad_cam(model, images, target)
    assert maps.shape == expected.shape == (5, h, w)
    assert expected.max() > 0
    np.testing.assert_allclose(maps, expected, rtol=2e-4, atol=2e-5 * expected.max())


def test_ensemble_map_is_the_members_mean_and_probabilities_are_averaged():
    convlab.manual_seed(3)
    members = [ChartCNN(5, channels=[3, 4]) for _ in range(2)]
    images = (np.random.default_rng(2).random((3, 1, 32, 15)) < 0.2).astype(np.uint8)
    maps, probs = grad_cam(members, images, target=1, batch_size=2)
    parts = [_torch_grad_cam(m, images, np.ones(3, np.int64)) for m in members]
    np.testing.assert_allclose(maps, (parts[0] + parts[1]) / 2, rtol=2e-4, atol=1e-7)
    expected = []
    for m in members:
        features, fc = _torch_chart_cnn(m)
        with torch.no_grad():
            expected.append(
                torch.softmax(fc(features(torch.from_numpy(images).double()).flatten(1)), 1).numpy()
            )
    np.testing.assert_allclose(probs, np.mean(expected, 0), rtol=1e-5)


def test_bad_arguments_name_what_was_expected():
    model = ChartCNN(5, channels=[2, 2])
    with pytest.raises(ValueError, match="target: expected class indices in \\[0, 2\\)"):
        GradCAM(model)(np.zeros((1, 1, 32, 15), np.uint8), target=2)
    with pytest.raises(ValueError, match="images: expected a 4-D batch"):
        GradCAM(model)(np.zeros((32, 15), np.uint8))
    with pytest.raises(ValueError, match="layer: Linear is not a part of the model"):
        GradCAM(model, nn.Linear(2, 2))
    with pytest.raises(ValueError, match="layer: give it only with a single model"):
        grad_cam([model, model], np.zeros((1, 1, 32, 15)), layer=model.fc)
    with pytest.raises(ValueError, match="layer: Sequential has no conv layer"):
        GradCAM(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))


def test_grad_cam_on_each_backend_matches_torch(backend):
    """The same maps from a model on the GPU (the CUDA emulator here) as from torch."""
    convlab.manual_seed(4)
    model = ChartCNN(5, channels=[3, 4])
    images = (np.random.default_rng(4).random((3, 1, 32, 15)) < 0.2).astype(np.uint8)
    expected = _torch_grad_cam(model, images, np.ones(3, np.int64))
    maps, probs = grad_cam(model.to(backend.name), images, target=1)
    np.testing.assert_allclose(maps, expected, rtol=2e-4, atol=2e-5 * expected.max())
    assert probs.shape == (3, 2)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
