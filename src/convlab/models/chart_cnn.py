"""The price-trend CNN of Jiang, Kelly & Xiu, "(Re-)Imag(in)ing Price Trends" (2023)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from convlab import nn
from convlab._ops.binary import binary_conv2d
from convlab._ops.norm_pool import fused_norm_pool
from convlab._tensor import Tensor
from convlab.data.charts import GEOMETRY

__all__ = ["ChartCNN"]

# The paper's per-window settings: blocks, and the first conv's stride and dilation.
_PAPER = {5: (2, (1, 1), (1, 1)), 20: (3, (3, 1), (2, 1)), 60: (4, (3, 1), (3, 1))}
_ACTIVATIONS = ("leaky_relu", "relu")
# Whether a block's BatchNorm2d -> activation -> (k, 1) MaxPool2d runs as the one fused node
# (convlab._ops.norm_pool): it reads a block's conv output once and writes only the pooled
# output (1.1x on the I20 training step, docs/performance.rst). Its results are the layers'
# (tests/test_norm_pool.py); False runs the three layers.
FUSE_NORM_POOL = True


def _out(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def _pool_out(size: int, kernel: int, ceil_mode: bool) -> int:
    # stride = kernel, no padding: ceil mode keeps a last partial window
    return -(-size // kernel) if ceil_mode else size // kernel


class ChartCNN(nn.Module):
    """The I5 / I20 / I60 model: conv blocks, dropout and a 2-way linear classifier.

    Block = Conv2d(5x3, padding (2,1)) -> BatchNorm2d -> LeakyReLU(0.01) -> MaxPool2d((2,1),
    ceil_mode=True) (computed as pool, then activation: the same values, less work); 2 / 3 / 4
    blocks of 64, 128, 256, 512 channels; the first conv of the 20- and 60-day models has
    stride (3,1) and dilation (2,1) / (3,1). With the defaults the parameter counts are the
    paper's: 155,138 / 708,866 / 2,952,962.

    Binary input (uint8 or bool 0/1 images, e.g. ``ChartSet.dataset(binary=True)``) goes
    through :func:`convlab.functional.binary_conv2d` in the first layer, with the input
    normalisation folded in; float input is normalised and convolved densely. Both give the
    same output.

    Args:
        window: 5, 20 or 60 trading days (image sizes 32x15, 64x60, 96x180).
        channels: Channels per block (default 64, 128, ... as many as the paper's blocks);
            its length sets the number of blocks.
        kernel_size: Conv kernel (the paper's 5x3; robustness variant 3x3).
        pool: Max-pool window (2, 1) (robustness variant (2, 2)).
        activation: ``"leaky_relu"`` (slope 0.01) or ``"relu"``.
        batch_norm: Use BatchNorm2d after each conv.
        dropout: Dropout probability before the classifier.
        ceil_mode: Max-pool ceil mode (the paper's True).
        input_mean, input_std: Pixel normalisation ``(x - mean) / std`` of the input.
        fold: How binary input folds the normalisation (see ``binary_conv2d``).
    """

    def __init__(
        self,
        window: int = 20,
        channels: Sequence[int] | None = None,
        kernel_size: Any = (5, 3),
        pool: Any = (2, 1),
        activation: str = "leaky_relu",
        batch_norm: bool = True,
        dropout: float = 0.5,
        ceil_mode: bool = True,
        input_mean: float = 0.0,
        input_std: float = 1.0,
        fold: str = "exact",
    ) -> None:
        super().__init__()
        if window not in _PAPER:
            raise ValueError(f"window: expected 5, 20 or 60, got {window!r}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation: expected one of {_ACTIVATIONS}, got {activation!r}")
        blocks, first_stride, first_dilation = _PAPER[window]
        channels = list(channels) if channels is not None else [64 * 2**i for i in range(blocks)]
        if not channels or any(int(c) < 1 for c in channels):
            raise ValueError(f"channels: expected positive channel counts, got {channels!r}")
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        ph, pw = (pool, pool) if isinstance(pool, int) else pool
        self.window, self.fold = window, fold
        height, width = GEOMETRY[window]
        layers = []
        previous = 1
        for i, out_channels in enumerate(channels):
            stride, dilation = (first_stride, first_dilation) if i == 0 else ((1, 1), (1, 1))
            padding = (kh // 2, kw // 2)
            block: list[nn.Module] = [
                nn.Conv2d(previous, out_channels, (kh, kw), stride, padding, dilation)
            ]
            if batch_norm:
                block.append(nn.BatchNorm2d(out_channels))
            block.append(nn.LeakyReLU(0.01) if activation == "leaky_relu" else nn.ReLU())
            block.append(nn.MaxPool2d((ph, pw), ceil_mode=ceil_mode))
            layers.append(nn.Sequential(*block))
            height = _pool_out(_out(height, kh, stride[0], padding[0], dilation[0]), ph, ceil_mode)
            width = _pool_out(_out(width, kw, stride[1], padding[1], dilation[1]), pw, ceil_mode)
            if height < 1 or width < 1:
                raise ValueError(
                    f"{len(channels)} blocks shrink a {window}-day image to "
                    f"nothing; use fewer blocks or a smaller pool"
                )
            previous = out_channels
        self.features = nn.Sequential(*layers)
        self.fc_in = previous * height * width
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.fc_in, 2)
        self.register_buffer("input_mean", _scalar(input_mean))
        self.register_buffer("input_std", _scalar(input_std))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights and 0.01 biases (the authors' initialisation)."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0.01)

    def set_normalization(self, mean: float, std: float) -> None:
        """Set the input normalisation (e.g. the training images' pixel mean and std)."""
        if not std > 0:
            raise ValueError(f"std: expected a positive number, got {std!r}")
        self.input_mean._data[...] = mean
        self.input_std._data[...] = std

    def _first_conv(self, x: Tensor) -> Tensor:
        conv = self.features[0][0]
        mean, std = float(self.input_mean.item()), float(self.input_std.item())
        binary = x._data.dtype in (np.uint8, np.bool_) and not x.requires_grad
        if binary:
            return binary_conv2d(
                x,
                conv.weight,
                conv.bias,
                conv.stride,
                conv.padding,
                conv.dilation,
                mean=mean,
                std=std,
                fold=self.fold,
            )
        if mean != 0.0 or std != 1.0:
            x = (x - mean) / std
        out: Tensor = conv(x)
        return out

    @staticmethod
    def _after_conv(block: nn.Sequential, out: Tensor) -> Tensor:
        """A block's layers after its conv. Max pooling commutes with a non-decreasing
        activation (the max of f is f of the max), so it runs first: the activation then sees
        half the values, with the same result. With ``FUSE_NORM_POOL``, a block of
        BatchNorm2d, ReLU / LeakyReLU and a (k, 1) MaxPool2d runs as one fused node
        (convlab._ops.norm_pool) when it can."""
        layers = list(block)[1:]
        if FUSE_NORM_POOL and len(layers) == 3:
            fused = fused_norm_pool(layers[0], layers[1], layers[2], out)
            if fused is not None:
                return cast(Tensor, fused)
        if isinstance(layers[-1], nn.MaxPool2d) and (
            isinstance(layers[-2], nn.ReLU)
            or (isinstance(layers[-2], nn.LeakyReLU) and layers[-2].negative_slope >= 0)
        ):
            layers[-2], layers[-1] = layers[-1], layers[-2]
        for layer in layers:
            out = layer(out)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, 2) for images (N, 1, H, W): index 1 is "up"."""
        blocks = cast("list[nn.Sequential]", list(self.features))  # one Sequential a block
        out = self._after_conv(blocks[0], self._first_conv(x))
        for block in blocks[1:]:
            out = self._after_conv(block, block[0](out))
        logits: Tensor = self.fc(self.dropout(out.flatten(1)))
        return logits

    def extra_repr(self) -> str:
        return f"window={self.window}, fc_in={self.fc_in}"


def _scalar(value: float) -> Tensor:
    import convlab

    return convlab.tensor(float(value), dtype=convlab.float32)
