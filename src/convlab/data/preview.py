"""A PNG grid of sample charts with their ticker, end date and label (needs Pillow)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from convlab.data.chartset import ChartSet

__all__ = ["save_grid"]


def save_grid(charts: ChartSet, path: Any, count: int = 16, columns: int = 4, scale: int = 3,
              seed: Optional[int] = 0) -> Path:
    """Write ``count`` randomly chosen charts, enlarged ``scale`` times, to a PNG at ``path``.

    Raises:
        ValueError: If the set is empty.
        ImportError: Without Pillow.
    """
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        raise ImportError("chart previews need Pillow: pip install 'convlab[data]'") from None
    if len(charts) == 0:
        raise ValueError("save_grid: the chart set is empty")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(charts), size=min(count, len(charts)), replace=False))
    h, w = charts.shape
    cell_w, cell_h = w * scale + 8, h * scale + 30
    rows = -(-len(pick) // columns)
    grid = Image.new("L", (columns * cell_w, rows * cell_h), 96)
    draw = ImageDraw.Draw(grid)
    images = charts.images(pick)[:, 0] * 255
    for k, (i, img) in enumerate(zip(pick, images)):
        x, y = (k % columns) * cell_w + 4, (k // columns) * cell_h + 4
        tile = Image.fromarray(img.astype(np.uint8)).resize((w * scale, h * scale),
                                                            Image.NEAREST)
        grid.paste(tile, (x, y))
        label = {1: "up", 0: "down"}.get(int(charts.labels[i]), "?")
        draw.text((x, y + h * scale + 3), f"{charts.ticker_of(i)} {charts.end_dates[i]} {label}",
                  fill=255)
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    grid.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path
