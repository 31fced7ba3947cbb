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

from convlab.nn import functional, init, parallel
from convlab.nn.module import Module
from convlab.nn.modules.activation import (
    CELU,
    ELU,
    GELU,
    SELU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    PReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softmax2d,
    Softplus,
    Softsign,
    Tanh,
    Threshold,
)
from convlab.nn.modules.container import (
    ModuleDict,
    ModuleList,
    ParameterDict,
    ParameterList,
    Sequential,
)
from convlab.nn.modules.conv import Conv1d, Conv2d
from convlab.nn.modules.conv_transpose import ConvTranspose1d, ConvTranspose2d
from convlab.nn.modules.dropout import AlphaDropout, Dropout, Dropout1d, Dropout2d, Dropout3d
from convlab.nn.modules.linear import Flatten, Identity, Linear, Unflatten
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
from convlab.nn.modules.padding import (
    CircularPad1d,
    CircularPad2d,
    ConstantPad1d,
    ConstantPad2d,
    ReflectionPad1d,
    ReflectionPad2d,
    ReplicationPad1d,
    ReplicationPad2d,
    ZeroPad1d,
    ZeroPad2d,
)
from convlab.nn.modules.pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
)
from convlab.nn.modules.upsample import (
    PixelShuffle,
    PixelUnshuffle,
    Upsample,
    UpsamplingBilinear2d,
    UpsamplingNearest2d,
)
from convlab.nn.parallel import DataParallel
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
    "MaxPool1d",
    "AvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "AdaptiveAvgPool1d",
    "AdaptiveMaxPool1d",
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
    "ModuleDict",
    "ParameterList",
    "ParameterDict",
    "ReLU6",
    "Hardtanh",
    "ELU",
    "SELU",
    "CELU",
    "GELU",
    "SiLU",
    "Mish",
    "Hardswish",
    "Hardsigmoid",
    "Softplus",
    "LogSigmoid",
    "Softsign",
    "PReLU",
    "Threshold",
    "Softmax2d",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "Unflatten",
    "ZeroPad1d",
    "ZeroPad2d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "CircularPad1d",
    "CircularPad2d",
    "Upsample",
    "UpsamplingNearest2d",
    "UpsamplingBilinear2d",
    "PixelShuffle",
    "PixelUnshuffle",
    "functional",
    "parallel",
    "DataParallel",
    "init",
]
