"""torchvision.utils' ``make_grid`` and ``save_image`` (PNG, written without PIL)."""

from __future__ import annotations

import math
import os
import struct
import zlib
from typing import Any

import numpy as np

__all__ = ["make_grid", "save_image"]


def _as_numpy(tensor: Any, name: str) -> np.ndarray:
    """A float array of a tensor, array, or list of same-shaped (C, H, W) images."""
    from convlab._tensor import Tensor

    if isinstance(tensor, (list, tuple)):
        return np.stack([_as_numpy(t, f"{name}[{k}]") for k, t in enumerate(tensor)])
    if isinstance(tensor, Tensor):
        return np.asarray(tensor.detach().cpu().numpy())
    if isinstance(tensor, np.ndarray):
        return tensor
    raise TypeError(
        f"{name}: expected a tensor, an array or a list of them, got {type(tensor).__name__}"
    )


def _grid(
    images: np.ndarray,
    nrow: int,
    padding: int,
    normalize: bool,
    value_range: tuple[float, float] | None,
    scale_each: bool,
    pad_value: float,
) -> np.ndarray:
    """torchvision's make_grid on NumPy: (C, H', W') or, for one image, (C, H, W)."""
    if images.ndim == 2:
        images = images[None]
    if images.ndim == 3:
        images = (np.concatenate([images] * 3) if images.shape[0] == 1 else images)[None]
    if images.ndim != 4:
        raise ValueError(f"tensor: expected 2 to 4 dimensions, got shape {images.shape}")
    if images.shape[1] == 1:  # grey becomes RGB, as torchvision
        images = np.concatenate([images] * 3, axis=1)
    if normalize:
        if value_range is not None and not isinstance(value_range, tuple):
            raise TypeError(f"value_range: expected a tuple (low, high), got {value_range!r}")
        images = images.astype(np.result_type(images.dtype, np.float32), copy=True)
        parts = list(images) if scale_each else [images]
        for part in parts:  # views: normalised in place
            low, high = value_range or (float(part.min()), float(part.max()))
            np.clip(part, low, high, out=part)
            part -= low
            part /= max(high - low, 1e-5)
    if images.shape[0] == 1:
        return images[0]
    count, channels, h, w = images.shape
    cols = min(nrow, count)
    rows = int(math.ceil(count / cols))
    cell_h, cell_w = h + padding, w + padding
    grid = np.full((channels, cell_h * rows + padding, cell_w * cols + padding), pad_value)
    grid = grid.astype(images.dtype)
    for k in range(count):
        y, x = divmod(k, cols)
        top, left = y * cell_h + padding, x * cell_w + padding
        grid[:, top : top + h, left : left + w] = images[k]
    return grid


def make_grid(
    tensor: Any,
    nrow: int = 8,
    padding: int = 2,
    normalize: bool = False,
    value_range: tuple[float, float] | None = None,
    scale_each: bool = False,
    pad_value: float = 0.0,
) -> Any:
    """Tile a batch of images into one image, as torchvision.

    Args:
        tensor: (B, C, H, W) images (or a list of (C, H, W) ones, or one image); one
            channel is repeated into three.
        nrow: Images per row.
        padding: Pixels between and around images.
        normalize: Shift and scale to [0, 1] by ``value_range`` (else the min and max).
        value_range: (low, high) for ``normalize``; values outside are clipped.
        scale_each: Normalise each image by its own min and max.
        pad_value: Value of the padding pixels.

    Returns:
        A (C, H', W') tensor.
    """
    import convlab

    grid = _grid(
        _as_numpy(tensor, "tensor"), nrow, padding, normalize, value_range, scale_each, pad_value
    )
    return convlab.from_numpy(np.ascontiguousarray(grid))


def _png(pixels: np.ndarray) -> bytes:
    """An 8-bit RGB or grey PNG of an (H, W, 3) or (H, W) uint8 array (filter 0, zlib)."""
    h, w = pixels.shape[:2]
    color = 2 if pixels.ndim == 3 else 0
    rows = np.concatenate([np.zeros((h, 1), np.uint8), pixels.reshape(h, -1)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def save_image(tensor: Any, fp: Any, format: str | None = None, **kwargs: Any) -> None:
    """Save images as one PNG (through :func:`make_grid`), as torchvision.

    Args:
        tensor: Images for :func:`make_grid`, values in [0, 1].
        fp: A file name or a binary file object.
        format: ``"png"`` (or None: taken from the name, which must end in ``.png``).
        **kwargs: :func:`make_grid`'s options.

    Pixels are ``clip(value * 255 + 0.5, 0, 255)`` truncated to uint8, as torchvision.

    Raises:
        ValueError: For a format other than PNG.
    """
    name = os.fspath(fp) if isinstance(fp, (str, os.PathLike)) else None
    kind = (format or (os.path.splitext(str(name))[1][1:] if name is not None else "")).lower()
    if kind != "png":
        raise ValueError(
            f"format: convlab writes PNG only, got {format or name!r} (name the file *.png)"
        )
    grid = _grid(_as_numpy(tensor, "tensor"), **_grid_options(kwargs))
    pixels = np.clip(grid.astype(np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)
    blob = _png(np.ascontiguousarray(pixels.transpose(1, 2, 0)))
    if name is not None:
        with open(name, "wb") as f:
            f.write(blob)
    else:
        fp.write(blob)


def _grid_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """make_grid's defaults updated by ``kwargs`` (unknown names are a TypeError)."""
    options: dict[str, Any] = {
        "nrow": 8,
        "padding": 2,
        "normalize": False,
        "value_range": None,
        "scale_each": False,
        "pad_value": 0.0,
    }
    unknown = set(kwargs) - set(options)
    if unknown:
        raise TypeError(f"save_image: unexpected arguments {sorted(unknown)}")
    options.update(kwargs)
    return options
