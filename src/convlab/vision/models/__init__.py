"""torchvision.models' names: the ResNet family (``resnet18``, ``resnet34``, ``resnet50``).

Same module tree, parameter names and initialisation as torchvision, so a torchvision
``state_dict`` loads into them (see :func:`convlab.utils.from_torch_state_dict`).
Pretrained weights are not downloaded: ``weights`` must be None.
"""

from __future__ import annotations

from convlab.vision.models.resnet import (
    BasicBlock,
    Bottleneck,
    ResNet,
    resnet18,
    resnet34,
    resnet50,
)

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50"]
