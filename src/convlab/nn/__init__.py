"""Neural-network layers (``convlab.nn``), with PyTorch's names, arguments and defaults.

Example:
    >>> import convlab
    >>> from convlab import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
    ...                       nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    >>> model(convlab.randn(8, 1, 8, 8)).shape
    (8, 2)
"""

from __future__ import annotations

from convlab.nn import functional, init
from convlab.nn.module import Module
from convlab.nn.modules.activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from convlab.nn.modules.container import ModuleList, Sequential
from convlab.nn.modules.conv import Conv1d, Conv2d
from convlab.nn.modules.conv_transpose import ConvTranspose1d, ConvTranspose2d
from convlab.nn.modules.dropout import Dropout
from convlab.nn.modules.linear import Flatten, Identity, Linear
from convlab.nn.modules.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MarginRankingLoss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from convlab.nn.modules.norm import (
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    LayerNorm,
)
from convlab.nn.modules.pooling import AvgPool2d, MaxPool2d
from convlab.nn.parameter import Parameter

__all__ = [
    "Module",
    "Parameter",
    "Sequential",
    "ModuleList",
    "Conv2d",
    "Conv1d",
    "Linear",
    "BatchNorm1d",
    "BatchNorm2d",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    "MaxPool2d",
    "AvgPool2d",
    "Dropout",
    "Flatten",
    "Identity",
    "CrossEntropyLoss",
    "BCEWithLogitsLoss",
    "MSELoss",
    "NLLLoss",
    "BCELoss",
    "L1Loss",
    "SmoothL1Loss",
    "HuberLoss",
    "KLDivLoss",
    "MarginRankingLoss",
    "ConvTranspose2d",
    "ConvTranspose1d",
    "LayerNorm",
    "GroupNorm",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "functional",
    "init",
]
