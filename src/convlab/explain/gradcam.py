"""Grad-CAM (Selvaraju et al., 2017) computed with convlab's autograd.

For a class score ``y_c`` (the pre-softmax logit) and the activations ``A`` (N, K, h, w) of a
layer, the channel weights are the spatially averaged gradients
``alpha_k = mean_{i,j} dy_c / dA_k[i, j]``, and the map is ``ReLU(sum_k alpha_k A_k)``, upsampled
bilinearly (half-pixel centres, PyTorch's ``align_corners=False``) to the input's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import convlab
from convlab import nn
from convlab._tensor import Tensor
from convlab.nn import functional as F

__all__ = ["GradCAM", "grad_cam", "default_layer"]


def default_layer(model: nn.Module) -> nn.Module:
    """The layer Grad-CAM looks at by default: the last conv block of a ``ChartCNN`` (its
    ``features[-1]``), else the model's last ``Conv2d``.

    Raises:
        ValueError: If the model has neither.
    """
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential) and len(features):
        last: nn.Module = features[len(features) - 1]
        return last
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(
            f"layer: {type(model).__name__} has no conv layer; pass the layer to explain"
        )
    return convs[-1]


class _Recorder:
    """Forward hooks on a layer and everything inside it, keeping the last output seen.

    A container's output is its own hook's value when the model calls it; ``ChartCNN`` calls
    the layers of a block one by one (and reorders pooling and activation), so then the block's
    output is whatever its last-run sub-layer returned.
    """

    def __init__(self, layer: nn.Module) -> None:
        self.layer = layer
        self.own: Tensor | None = None
        self.last: Tensor | None = None
        self.handles = [layer.register_forward_hook(self._own)]
        self.handles += [
            m.register_forward_hook(self._inner) for m in layer.modules() if m is not layer
        ]

    def _own(self, module: nn.Module, args: Any, output: Any) -> None:
        self.own = output

    def _inner(self, module: nn.Module, args: Any, output: Any) -> None:
        self.last = output

    def output(self) -> Tensor:
        out = self.own if self.own is not None else self.last
        if not isinstance(out, Tensor):
            raise ValueError(
                f"layer: {type(self.layer).__name__} did not run in the model's forward "
                f"(or returned {type(out).__name__}, not a tensor)"
            )
        return out

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


class GradCAM:
    """Grad-CAM heat maps of one model at one layer.

    Args:
        model: A classifier returning logits (N, classes). It is put in eval mode while maps
            are computed (batch-norm running statistics, no dropout) and restored afterwards.
        layer: The layer whose activations are explained (default :func:`default_layer`:
            the last conv block of a ``ChartCNN``).

    Example:
        >>> cam = GradCAM(model)                               # doctest: +SKIP
        >>> maps, logits = cam(images, target=1)               # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, layer: nn.Module | None = None) -> None:
        self.model = model
        self.layer = default_layer(model) if layer is None else layer
        if not any(m is self.layer for m in model.modules()):
            raise ValueError(f"layer: {type(self.layer).__name__} is not a part of the model")

    def __call__(
        self, images: Any, target: int | Sequence[int] | np.ndarray = 1, upsample: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Maps and logits for a batch.

        Args:
            images: Input batch (N, C, H, W): a Tensor or array (uint8 0/1 chart images work).
            target: The class explained: one index for all images, or one per image.
            upsample: Resize the maps to (H, W); otherwise they have the layer's size.

        Returns:
            ``(maps, logits)``: float64 arrays (N, H, W) (non-negative) and (N, classes).

        Raises:
            ValueError: For images that are not 4-D, or a target outside the classes.
        """
        x = images if isinstance(images, Tensor) else convlab.from_numpy(np.asarray(images))
        if x.dim() != 4:
            raise ValueError(f"images: expected a 4-D batch (N, C, H, W), got shape {x.shape}")
        recorder = _Recorder(self.layer)
        training = self.model.training
        self.model.eval()
        try:
            with convlab.enable_grad():
                logits = self.model(x)
                activations = recorder.output()
                n, classes = logits.shape[0], logits.shape[1]
                chosen = np.broadcast_to(np.asarray(target, dtype=np.int64), (n,))
                if np.any((chosen < 0) | (chosen >= classes)):
                    raise ValueError(
                        f"target: expected class indices in [0, {classes}), got {target!r}"
                    )
                # d(sum over images of each one's own class score): the images are independent
                # in eval mode, so each gets the gradient of its own score
                pick = np.zeros((n, classes), np.float32)
                pick[np.arange(n), chosen] = 1.0
                seed = convlab.from_numpy(pick).to(logits.device)
                (grads,) = convlab.autograd.grad(logits, activations, grad_outputs=seed)
        finally:
            recorder.remove()
            self.model.train(training)
        assert grads is not None
        weights = grads.detach().mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * activations.detach()).sum(dim=1, keepdim=True))
        if upsample and tuple(cam.shape[2:]) != tuple(x.shape[2:]):
            cam = F.interpolate(cam, size=tuple(x.shape[2:]), mode="bilinear", align_corners=False)
            cam = F.relu(cam)  # bilinear weights are non-negative: guards rounding only
        maps = cam[:, 0].cpu().numpy().astype(np.float64)
        return maps, logits.detach().cpu().numpy().astype(np.float64)


def grad_cam(
    models: nn.Module | Sequence[nn.Module],
    images: Any,
    target: int | Sequence[int] | np.ndarray = 1,
    layer: nn.Module | None = None,
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM maps of a model or an ensemble, in batches.

    An ensemble's map is the mean of its members' maps at their default layers (each member
    explains its own score), and the returned up-probability is the mean of their softmax
    outputs: the ensemble's prediction.

    Args:
        models: One model or a list of them (an ensemble).
        images: (N, C, H, W) array or Tensor.
        target: Class explained (one index, or one per image).
        layer: The layer of a single model (default :func:`default_layer`).
        batch_size: Images per forward/backward pass.

    Returns:
        ``(maps, probabilities)``: (N, H, W) and (N, classes) float64 arrays.

    Raises:
        ValueError: For an empty ensemble, a layer given with several models, or bad images.
    """
    members = [models] if isinstance(models, nn.Module) else list(models)
    if not members:
        raise ValueError("models: expected a model or a non-empty list of models")
    if layer is not None and len(members) > 1:
        raise ValueError("layer: give it only with a single model (each member has its own)")
    array = images.cpu().numpy() if isinstance(images, Tensor) else np.asarray(images)
    n = len(array)
    targets = np.broadcast_to(np.asarray(target, dtype=np.int64), (n,))
    maps: np.ndarray | None = None
    probs: np.ndarray | None = None
    for model in members:
        cam = GradCAM(model, layer)
        device = next(iter(model.parameters())).device
        for start in range(0, n, batch_size):
            rows = slice(start, start + batch_size)
            batch = convlab.from_numpy(np.ascontiguousarray(array[rows]))
            batch = batch.to(device) if str(device) != "cpu" else batch
            m, logits = cam(batch, targets[rows])
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            p = shifted / shifted.sum(axis=1, keepdims=True)
            if maps is None or probs is None:
                maps = np.zeros((n, *m.shape[1:]))
                probs = np.zeros((n, logits.shape[1]))
            maps[rows] += m / len(members)
            probs[rows] += p / len(members)
    if maps is None or probs is None:  # no images
        return np.zeros((0, *array.shape[2:])), np.zeros((0, 0))
    return maps, probs
