"""ResNet9 for 32x32 images, in needle hw4's reduced form and in cifar10-fast's standard form."""

from __future__ import annotations

from typing import Any

from convlab import nn
from convlab._tensor import Tensor

__all__ = ["ResNet9", "ConvBN", "Residual"]


class ConvBN(nn.Sequential):
    """Conv2d (padding ``kernel_size // 2``) -> BatchNorm2d -> ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=kernel_size // 2,
                bias=bias,
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )


class Residual(nn.Module):
    """``x + body(x)``."""

    def __init__(self, *body: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*body)

    def forward(self, x: Tensor) -> Tensor:
        body: Tensor = self.body(x)
        return x + body


class _Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = float(factor)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class ResNet9(nn.Sequential):
    """ResNet9 for (N, 3, 32, 32) input.

    ``variant="hw4"`` (default) is needle hw4's network: channels divided by 4, strided convs
    instead of pooling, biased convs, a 128-128-10 head; 431,946 parameters.

    ``variant="standard"`` is David Page's cifar10-fast ResNet9: 64-128-256-512 channels,
    bias-free convs, 2x2 max-pooling, a global 4x4 max-pool and a bias-free linear layer whose
    output is scaled by 0.125; 6,573,120 parameters.

    Args:
        variant: ``"hw4"`` or ``"standard"``.
        num_classes: Outputs of the last layer.
        in_channels: Input channels.

    Raises:
        ValueError: For an unknown variant.
    """

    def __init__(self, variant: str = "hw4", num_classes: int = 10, in_channels: int = 3) -> None:
        if variant == "hw4":
            layers: list[Any] = [
                ConvBN(in_channels, 16, 7, 4),
                ConvBN(16, 32, 3, 2),
                Residual(ConvBN(32, 32), ConvBN(32, 32)),
                ConvBN(32, 64, 3, 2),
                ConvBN(64, 128, 3, 2),
                Residual(ConvBN(128, 128), ConvBN(128, 128)),
                nn.Flatten(),
                nn.Linear(128, 128),
                nn.ReLU(),
                nn.Linear(128, num_classes),
            ]
        elif variant == "standard":

            def block(a: int, b: int) -> ConvBN:
                return ConvBN(a, b, bias=False)

            layers = [
                block(in_channels, 64),
                block(64, 128),
                nn.MaxPool2d(2),
                Residual(block(128, 128), block(128, 128)),
                block(128, 256),
                nn.MaxPool2d(2),
                block(256, 512),
                nn.MaxPool2d(2),
                Residual(block(512, 512), block(512, 512)),
                nn.MaxPool2d(4),
                nn.Flatten(),
                nn.Linear(512, num_classes, bias=False),
                _Scale(0.125),
            ]
        else:
            raise ValueError(f"variant: expected 'hw4' or 'standard', got {variant!r}")
        super().__init__(*layers)
        self.variant = variant
