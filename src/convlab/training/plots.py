"""PNG figures of a training run, drawn with Pillow (no plotting library needed)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def _save_atomic(image: Any, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def learning_curves(histories: Sequence[dict], path: Any, size: tuple = (640, 400)) -> Path:
    """Train (dashed) and validation (solid) loss per epoch, one colour per ensemble member."""
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
    draw.text((left, 8), "loss per epoch: validation (solid), train (dotted)", fill="black")
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
    return _save_atomic(image, Path(path))


def sample_predictions(images: np.ndarray, p_up: np.ndarray, labels: np.ndarray, path: Any,
                       columns: int = 4, scale: int = 3) -> Path:
    """A grid of chart images, each captioned with the predicted up-probability and outcome."""
    from PIL import Image, ImageDraw
    n, _, h, w = images.shape
    rows = max(1, -(-n // columns))
    cell_w, cell_h = w * scale + 8, h * scale + 22
    canvas = Image.new("RGB", (columns * cell_w, rows * cell_h), (40, 40, 40))
    draw = ImageDraw.Draw(canvas)
    for i in range(n):
        tile = Image.fromarray((images[i, 0] * 255).astype(np.uint8), "L")
        tile = tile.resize((w * scale, h * scale), Image.NEAREST)
        x, y = (i % columns) * cell_w + 4, (i // columns) * cell_h + 4
        canvas.paste(tile.convert("RGB"), (x, y))
        outcome = {1: "up", 0: "down"}.get(int(labels[i]), "?")
        right = (p_up[i] > 0.5) == (labels[i] == 1)
        draw.text((x, y + h * scale + 2), f"p_up {p_up[i]:.3f} -> {outcome}",
                  fill=(120, 220, 120) if right else (240, 120, 120))
    return _save_atomic(canvas, Path(path))
