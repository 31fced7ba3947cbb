"""PNG grids of chart images with a caption under each (needs Pillow)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convlab._atomic import atomic_open
from convlab.data.chartset import ChartSet

__all__ = ["save_grid", "draw_grid", "save_png"]


def _pil() -> Any:
    try:
        import PIL.Image
        import PIL.ImageDraw
    except ImportError:
        raise ImportError("chart previews need Pillow: pip install 'convlab[data]'") from None
    return PIL


def draw_grid(
    images: np.ndarray,
    captions: Sequence[str],
    colours: Sequence[tuple[int, int, int]] | None = None,
    columns: int = 4,
    scale: int = 3,
) -> Any:
    """0/1 images (n, H, W), enlarged ``scale`` times, in a grid with a caption under each.

    Returns:
        A ``PIL.Image`` (RGB).
    """
    pil = _pil()
    n, h, w = images.shape
    cell_w, cell_h = w * scale + 8, h * scale + 30
    rows = max(1, -(-n // columns))
    grid = pil.Image.new("RGB", (columns * cell_w, rows * cell_h), (64, 64, 64))
    draw = pil.ImageDraw.Draw(grid)
    for k in range(n):
        x, y = (k % columns) * cell_w + 4, (k // columns) * cell_h + 4
        tile = pil.Image.fromarray((images[k] * 255).astype(np.uint8))
        grid.paste(tile.resize((w * scale, h * scale), pil.Image.NEAREST).convert("RGB"), (x, y))
        draw.text(
            (x, y + h * scale + 3),
            captions[k],
            fill=colours[k] if colours is not None else (255, 255, 255),
        )
    return grid


def save_png(image: Any, path: Any) -> Path:
    """Write a ``PIL.Image`` to ``path`` atomically, creating the folder."""
    target = Path(os.fspath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(target) as handle:
        image.save(handle, format="PNG")
    return target


def save_grid(
    charts: ChartSet,
    path: Any,
    count: int = 16,
    columns: int = 4,
    scale: int = 3,
    seed: int | None = 0,
) -> Path:
    """Write ``count`` randomly chosen charts, enlarged ``scale`` times, to a PNG at ``path``.

    Each chart is captioned with its ticker, end date and label.

    Raises:
        ValueError: If the set is empty.
        ImportError: Without Pillow.
    """
    _pil()
    if len(charts) == 0:
        raise ValueError("save_grid: the chart set is empty")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(charts), size=min(count, len(charts)), replace=False))
    outcome = {1: "up", 0: "down"}
    captions = [
        f"{charts.ticker_of(i)} {charts.end_dates[i]} {outcome.get(int(charts.labels[i]), '?')}"
        for i in pick
    ]
    return save_png(
        draw_grid(charts.images(pick)[:, 0], captions, columns=columns, scale=scale), path
    )
