"""PNG figures of a training run, drawn with Pillow (no plotting library needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from convlab.data.preview import draw_grid, save_png

_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def learning_curves(histories: Sequence[dict], path: Any, size: tuple = (640, 400),
                    title: str = "loss per epoch: validation (solid), train (dotted)") -> Path:
    """Train (dots) and validation (lines) loss per epoch, one colour per ensemble member."""
    from PIL import Image, ImageDraw
    width, height = size
    left, right, top, bottom = 60, 20, 30, 40
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    values = [v for h in histories for k in ("train_loss", "val_loss") for v in h.get(k, [])
              if np.isfinite(v)]
    epochs = max([len(h.get("val_loss", [])) for h in histories] + [1])
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.01, hi + 0.01

    def xy(epoch: float, value: float) -> tuple:
        x = left + (width - left - right) * (epoch / max(epochs - 1, 1))
        y = top + (height - top - bottom) * (1 - (value - lo) / (hi - lo))
        return x, y

    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for i in range(5):
        value = lo + (hi - lo) * i / 4
        draw.text((4, xy(0, value)[1] - 6), f"{value:.4f}", fill="black")
    for e in range(epochs):
        draw.text((xy(e, lo)[0] - 3, height - bottom + 6), str(e + 1), fill="black")
    draw.text((left, 8), title, fill="black")
    for i, h in enumerate(histories):
        colour = _COLOURS[i % len(_COLOURS)]
        for key, dotted in (("val_loss", False), ("train_loss", True)):
            points = [xy(e, v) for e, v in enumerate(h.get(key, [])) if np.isfinite(v)]
            if dotted:
                for x, y in points:
                    draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
            elif len(points) > 1:
                draw.line(points, fill=colour, width=2)
            elif points:
                x, y = points[0]
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=colour)
    return save_png(image, path)


def sample_predictions(images: np.ndarray, p_up: np.ndarray, labels: np.ndarray, path: Any,
                       columns: int = 4, scale: int = 3) -> Path:
    """A grid of chart images, each captioned with the predicted up-probability and outcome."""
    outcome = {1: "up", 0: "down"}
    captions = [f"p_up {p:.3f} -> {outcome.get(int(y), '?')}" for p, y in zip(p_up, labels)]
    colours = [(120, 220, 120) if (p > 0.5) == (y == 1) else (240, 120, 120)
               for p, y in zip(p_up, labels)]
    return save_png(draw_grid(images[:, 0], captions, colours, columns, scale), path)
