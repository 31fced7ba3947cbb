"""Resizing layers: ``Upsample``, ``UpsamplingNearest2d``, ``UpsamplingBilinear2d``,
``PixelShuffle`` and ``PixelUnshuffle``."""

from __future__ import annotations

from typing import Any

from convlab._ops import interpolate as _interp
from convlab._tensor import Tensor
from convlab.nn.module import Module

__all__ = [
    "Upsample",
    "UpsamplingNearest2d",
    "UpsamplingBilinear2d",
    "PixelShuffle",
    "PixelUnshuffle",
]


class Upsample(Module):
    """Resize by :func:`convlab.nn.functional.interpolate` (``torch.nn.Upsample``).

    Args:
        size: Output spatial size (an int or one per spatial dimension).
        scale_factor: Multiplier of the spatial size (a float or one per spatial dimension).
        mode: ``"nearest"``, ``"nearest-exact"``, ``"linear"`` or ``"bilinear"``.
        align_corners: For the linear modes: whether the corner pixels' centres line up.
        recompute_scale_factor: Derive the scale from the output size.

    Example:
        >>> import convlab
        >>> from convlab import nn
        >>> nn.Upsample(scale_factor=2, mode="bilinear")(convlab.zeros(1, 3, 4, 5)).shape
        (1, 3, 8, 10)
    """

    def __init__(
        self,
        size: Any = None,
        scale_factor: Any = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ) -> None:
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        # stored as floats, as PyTorch (its repr shows 2.0 for 2)
        if isinstance(scale_factor, (tuple, list)):
            self.scale_factor: Any = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        return _interp.interpolate(
            input,
            self.size,
            self.scale_factor,
            self.mode,
            self.align_corners,
            recompute_scale_factor=self.recompute_scale_factor,
        )

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return info + f", mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Nearest-neighbour resizing of NCHW inputs (``torch.nn.UpsamplingNearest2d``)."""

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear resizing of NCHW inputs with ``align_corners=True``
    (``torch.nn.UpsamplingBilinear2d``)."""

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class PixelShuffle(Module):
    """``(*, C * r * r, H, W)`` to ``(*, C, H * r, W * r)`` (``torch.nn.PixelShuffle``)."""

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return _interp.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """``(*, C, H * r, W * r)`` to ``(*, C * r * r, H, W)`` (``torch.nn.PixelUnshuffle``)."""

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return _interp.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"
