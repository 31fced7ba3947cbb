"""Functional interface (``convlab.nn.functional``, also ``convlab.functional``).

Same names, argument order and defaults as ``torch.nn.functional``. Convolution and pooling run
on the backend's hand-written kernels; everything else is written once against ``backend.xp``.

Example:
    >>> import convlab
    >>> import convlab.nn.functional as F
    >>> x = convlab.randn(2, 1, 8, 8)
    >>> w = convlab.randn(4, 1, 3, 3)
    >>> F.max_pool2d(F.relu(F.conv2d(x, w, padding=1)), 2).shape
    (2, 4, 4, 4)
"""

from __future__ import annotations

from convlab._ops.activation import (
    alpha_dropout,
    celu,
    dropout,
    dropout1d,
    dropout2d,
    dropout3d,
    elu,
    gelu,
    glu,
    hardshrink,
    hardsigmoid,
    hardswish,
    hardtanh,
    leaky_relu,
    log_softmax,
    logsigmoid,
    mish,
    prelu,
    relu,
    relu6,
    rrelu,
    selu,
    sigmoid,
    silu,
    softmax,
    softmin,
    softplus,
    softshrink,
    softsign,
    tanh,
    tanhshrink,
    threshold,
)
from convlab._ops.adaptive_pool import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
)
from convlab._ops.bilinear import bilinear
from convlab._ops.binary import binary_conv2d
from convlab._ops.channel import channel_shuffle, local_response_norm
from convlab._ops.conv import avg_pool1d, avg_pool2d, conv1d, conv2d, max_pool1d, max_pool2d
from convlab._ops.conv_transpose import conv_transpose1d, conv_transpose2d
from convlab._ops.distance import (
    cosine_embedding_loss,
    cosine_similarity,
    pairwise_distance,
    triplet_margin_loss,
)
from convlab._ops.embedding import embedding
from convlab._ops.encoding import one_hot
from convlab._ops.fold import fold, unfold
from convlab._ops.interpolate import (
    interpolate,
    pixel_shuffle,
    pixel_unshuffle,
    upsample,
    upsample_bilinear,
    upsample_nearest,
)
from convlab._ops.linalg import linear
from convlab._ops.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    gaussian_nll_loss,
    hinge_embedding_loss,
    huber_loss,
    kl_div,
    l1_loss,
    margin_ranking_loss,
    mse_loss,
    multi_margin_loss,
    multilabel_soft_margin_loss,
    nll_loss,
    poisson_nll_loss,
    smooth_l1_loss,
    soft_margin_loss,
)
from convlab._ops.norm import batch_norm, group_norm, instance_norm, layer_norm, normalize
from convlab._ops.padding import pad
from convlab._ops.unpool import max_unpool1d, max_unpool2d

__all__ = [
    "conv2d",
    "binary_conv2d",
    "conv1d",
    "max_pool2d",
    "avg_pool2d",
    "max_pool1d",
    "avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "adaptive_avg_pool1d",
    "adaptive_max_pool1d",
    "linear",
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "dropout",
    "batch_norm",
    "cross_entropy",
    "binary_cross_entropy_with_logits",
    "mse_loss",
    "nll_loss",
    "binary_cross_entropy",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "kl_div",
    "margin_ranking_loss",
    "conv_transpose2d",
    "conv_transpose1d",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "relu6",
    "hardtanh",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "mish",
    "hardswish",
    "hardsigmoid",
    "softplus",
    "logsigmoid",
    "softsign",
    "prelu",
    "threshold",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "alpha_dropout",
    "interpolate",
    "upsample",
    "upsample_nearest",
    "upsample_bilinear",
    "pad",
    "normalize",
    "one_hot",
    "embedding",
    "pixel_shuffle",
    "pixel_unshuffle",
    "hardshrink",
    "softshrink",
    "tanhshrink",
    "softmin",
    "glu",
    "rrelu",
    "cosine_similarity",
    "pairwise_distance",
    "triplet_margin_loss",
    "cosine_embedding_loss",
    "soft_margin_loss",
    "multilabel_soft_margin_loss",
    "multi_margin_loss",
    "hinge_embedding_loss",
    "poisson_nll_loss",
    "gaussian_nll_loss",
    "local_response_norm",
    "channel_shuffle",
    "unfold",
    "fold",
    "max_unpool2d",
    "max_unpool1d",
    "bilinear",
]
