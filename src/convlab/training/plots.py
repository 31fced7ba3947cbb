"""PNG figures of a training run: learning curves with matplotlib (Agg, no display needed),
chart samples with Pillow."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convlab._atomic import atomic_open
from convlab.data.preview import draw_grid, save_png

# (history key, panel title, y-axis label) of each panel, drawn where the histories have it
_PANELS = (("loss", "Loss", "cross-entropy loss"), ("accuracy", "Accuracy", "accuracy"))


def learning_curves_figure(
    histories: Sequence[dict],
    held_out: str = "validation",
    title: str = "Learning curves",
    size: tuple = (960, 420),
) -> Any:
    """A matplotlib ``Figure`` of the loss (and accuracy, where recorded) per epoch: train
    dashed, ``held_out`` (the ``val_*`` series) solid, one colour per model.

    Args:
        histories: One dict per model with ``train_loss`` / ``val_loss`` (and optionally
            ``train_accuracy`` / ``val_accuracy``) lists, one value per epoch.
        held_out: What the ``val_*`` series measure (``"validation"``, ``"test"``).
        title: The figure's title.
        size: Width and height in pixels (at 100 dpi).

    Raises:
        ImportError: Without matplotlib (``pip install 'convlab[data]'``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [
        p for p in _PANELS if any(h.get(f"train_{p[0]}") or h.get(f"val_{p[0]}") for h in histories)
    ] or [_PANELS[0]]
    # a Figure of its own, not pyplot: no global state, no interactive backend, thread-safe
    figure = Figure(figsize=(size[0] / 100, size[1] / 100), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title)
    for axes, (key, name, label) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
        for k, history in enumerate(histories):
            colour = f"C{k % 10}"
            model = f"model {k + 1} " if len(histories) > 1 else ""
            for series, style, what in (("train", "--", "train"), ("val", "-", held_out)):
                values = np.asarray(history.get(f"{series}_{key}", []), dtype=np.float64)
                if values.size:
                    axes.plot(
                        np.arange(1, values.size + 1),
                        values,
                        style,
                        color=colour,
                        marker="o",
                        markersize=3,
                        label=f"{model}{what}",
                    )
        axes.set_title(name)
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(True, alpha=0.3)
        if axes.lines:
            axes.legend(fontsize="small")
    return figure


def learning_curves(
    histories: Sequence[dict],
    path: Any,
    held_out: str = "validation",
    title: str = "Learning curves",
    size: tuple = (960, 420),
) -> Path:
    """Write :func:`learning_curves_figure` as a PNG at ``path``, atomically.

    Raises:
        ImportError: Without matplotlib (``pip install 'convlab[data]'``).
    """
    figure = learning_curves_figure(histories, held_out, title, size)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getvalue())
    return path


def sample_predictions(
    images: np.ndarray,
    p_up: np.ndarray,
    labels: np.ndarray,
    path: Any,
    columns: int = 4,
    scale: int = 3,
) -> Path:
    """A grid of chart images, each captioned with the predicted up-probability and outcome."""
    outcome = {1: "up", 0: "down"}
    captions = [f"p_up {p:.3f} -> {outcome.get(int(y), '?')}" for p, y in zip(p_up, labels)]
    colours = [
        (120, 220, 120) if (p > 0.5) == (y == 1) else (240, 120, 120) for p, y in zip(p_up, labels)
    ]
    return save_png(draw_grid(images[:, 0], captions, colours, columns, scale), path)
