"""PNG figures of a training run, drawn with matplotlib (Agg, no display needed).

Every ``*_figure`` function returns a ``matplotlib.figure.Figure`` made without pyplot (no global
state, nothing left open, thread-safe); the function of the same name without ``_figure``
writes it as a PNG atomically (:func:`save_figure`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convlab._atomic import atomic_open

__all__ = [
    "save_figure",
    "learning_curves_figure",
    "learning_curves",
    "cumulative_returns_figure",
    "cumulative_returns",
    "decile_returns_figure",
    "decile_returns",
    "calibration_table",
    "calibration_figure",
    "calibration",
    "gradcam_grid_figure",
    "gradcam_grid",
    "sample_predictions_figure",
    "sample_predictions",
]

# (history key, panel title, y-axis label) of each panel, drawn where the histories have it
_PANELS = (("loss", "Loss", "cross-entropy loss"), ("accuracy", "Accuracy", "accuracy"))
_UP, _DOWN, _WRONG = "#2a9d4b", "#c0392b", "#c0392b"


def _figure(width: float, height: float, title: str) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("figures need matplotlib: pip install 'convlab[data]'") from None
    # a Figure of its own, not pyplot: no global state, no interactive backend
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    if title:
        figure.suptitle(title)
    return figure


def save_figure(figure: Any, path: Any) -> Path:
    """Write a matplotlib figure as a PNG at ``path`` atomically (creating the folder).

    Returns:
        The path written.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    target = Path(os.fspath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(target, "wb") as handle:
        handle.write(buffer.getvalue())
    return target


# -- learning curves -------------------------------------------------------------------------


def learning_curves_figure(
    histories: Sequence[dict],
    held_out: str = "validation",
    title: str = "Learning curves",
    size: tuple = (960, 420),
) -> Any:
    """The loss (and accuracy, where recorded) per epoch: train dashed, ``held_out`` (the
    ``val_*`` series) solid, one colour per model.

    Args:
        histories: One dict per model with ``train_loss`` / ``val_loss`` (and optionally
            ``train_accuracy`` / ``val_accuracy``) lists, one value per epoch.
        held_out: What the ``val_*`` series measure (``"validation"``, ``"test"``).
        title: The figure's title.
        size: Width and height in pixels (at 100 dpi).

    Raises:
        ImportError: Without matplotlib (``pip install 'convlab[data]'``).
    """
    panels = [
        p for p in _PANELS if any(h.get(f"train_{p[0]}") or h.get(f"val_{p[0]}") for h in histories)
    ] or [_PANELS[0]]
    figure = _figure(size[0] / 100, size[1] / 100, title)
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
        epochs = max((len(h.get(f"train_{key}", [])) for h in histories), default=0)
        if 0 < epochs <= 12:  # every epoch a tick (a lone epoch otherwise gets 0.96, 0.98...)
            axes.set_xticks(range(1, epochs + 1))
            axes.set_xlim(0.5, epochs + 0.5)
        else:
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
    return save_figure(learning_curves_figure(histories, held_out, title, size), path)


# -- portfolios ------------------------------------------------------------------------------


def cumulative_returns_figure(
    returns: Mapping[str, Any],
    title: str = "Cumulative long-short (H-L) returns",
    ylabel: str = "cumulative return (sum of period returns)",
) -> Any:
    """One line per strategy: the running sum of its period returns over time.

    Args:
        returns: Strategy name -> a pandas Series of period returns indexed by date (or a
            ``(dates, returns)`` pair). Missing returns count as 0 in the sum.
        title: The figure's title.
        ylabel: The y-axis label.

    Raises:
        ImportError: Without matplotlib.
    """
    figure = _figure(9.6, 4.6, title)
    axes = figure.subplots()
    for k, (name, series) in enumerate(returns.items()):
        dates, values = _dates_values(series)
        order = np.argsort(dates, kind="stable")
        total = np.cumsum(np.nan_to_num(values[order]))
        # the strategy under study drawn first and thicker, the benchmarks thinner
        axes.plot(dates[order], total, color=f"C{k % 10}", lw=2.2 if k == 0 else 1.3, label=name)
    axes.axhline(0.0, color="black", lw=0.8)
    axes.set_xlabel("date")
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    if axes.lines[:-1]:
        axes.legend(fontsize="small")
    return figure


def _dates_values(series: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(series, tuple):
        dates, values = series
    else:
        dates, values = series.index, series
    return np.asarray(dates, dtype="datetime64[ns]"), np.asarray(values, dtype=np.float64)


def cumulative_returns(returns: Mapping[str, Any], path: Any, **kwargs: Any) -> Path:
    """Write :func:`cumulative_returns_figure` as a PNG at ``path``."""
    return save_figure(cumulative_returns_figure(returns, **kwargs), path)


def decile_returns_figure(
    table: Any,
    title: str = "Mean return per p_up decile",
    ylabel: str = "mean period return",
) -> Any:
    """Grouped bars: one group per portfolio (rows: deciles 1..10, then H-L), one bar per
    weighting (columns, e.g. ``equal`` and ``value``).

    Args:
        table: A pandas DataFrame, portfolios as rows and weightings as columns.
        title: The figure's title.
        ylabel: The y-axis label.

    Raises:
        ImportError: Without matplotlib.
    """
    figure = _figure(9.6, 4.2, title)
    axes = figure.subplots()
    rows = [str(r) for r in table.index]
    columns = list(table.columns)
    width = 0.8 / max(len(columns), 1)
    x = np.arange(len(rows))
    for k, column in enumerate(columns):
        values = np.asarray(table[column], dtype=np.float64)
        axes.bar(x + (k - (len(columns) - 1) / 2) * width, values, width, label=str(column))
    axes.axhline(0.0, color="black", lw=0.8)
    axes.set_xticks(x, rows)
    axes.set_xlabel("decile of p_up (1 = lowest)")
    axes.set_ylabel(ylabel)
    axes.grid(True, axis="y", alpha=0.3)
    if columns:
        axes.legend(title="weighting", fontsize="small")
    return figure


def decile_returns(table: Any, path: Any, **kwargs: Any) -> Path:
    """Write :func:`decile_returns_figure` as a PNG at ``path``."""
    return save_figure(decile_returns_figure(table, **kwargs), path)


# -- calibration -----------------------------------------------------------------------------


def calibration_table(p_up: np.ndarray, labels: np.ndarray, bins: int = 10) -> dict:
    """A reliability table: images grouped by predicted up-probability into ``bins`` equal
    bins of [0, 1] (a probability on an inner edge goes to the upper bin, 1.0 to the last).

    Returns:
        Lists ``lower``, ``upper``, ``count``, ``mean_p_up`` and ``up_fraction`` (NaN for
        an empty bin), one entry per bin.
    """
    p, y = np.asarray(p_up, np.float64), np.asarray(labels)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(which, weights=p, minlength=bins) / count
        up = np.bincount(which, weights=(y == 1).astype(np.float64), minlength=bins) / count
    edges = np.linspace(0.0, 1.0, bins + 1)
    return {
        "lower": edges[:-1].tolist(),
        "upper": edges[1:].tolist(),
        "count": count.tolist(),
        "mean_p_up": mean_p.tolist(),
        "up_fraction": up.tolist(),
    }


def calibration_figure(
    p_up: np.ndarray,
    labels: np.ndarray,
    bins: int = 10,
    title: str = "Calibration of p_up (test set)",
) -> Any:
    """Reliability diagram: the observed share of up moves against the mean predicted p_up of
    each bin (a calibrated model lies on the diagonal), over a histogram of the predictions.

    Raises:
        ImportError: Without matplotlib.
    """
    table = calibration_table(p_up, labels, bins)
    figure = _figure(6.4, 6.4, title)
    top, bottom = figure.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    top.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    top.plot(table["mean_p_up"], table["up_fraction"], "o-", color="C0", label="model (per bin)")
    top.set_ylabel("observed share of up moves")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.grid(True, alpha=0.3)
    top.legend(fontsize="small", loc="upper left")
    centres = (np.asarray(table["lower"]) + np.asarray(table["upper"])) / 2
    bottom.bar(centres, table["count"], width=1.0 / bins, color="C0", alpha=0.6, label="images")
    bottom.set_xlabel("predicted up-probability p_up")
    bottom.set_ylabel("images")
    bottom.legend(fontsize="small")
    return figure


def calibration(p_up: np.ndarray, labels: np.ndarray, path: Any, **kwargs: Any) -> Path:
    """Write :func:`calibration_figure` as a PNG at ``path``."""
    return save_figure(calibration_figure(p_up, labels, **kwargs), path)


# -- images ----------------------------------------------------------------------------------


def _image_grid(count: int, columns: int, cell: tuple, title: str) -> tuple[Any, list]:
    rows = max(1, -(-count // columns))
    # at least 6.4 inches wide: room for the title over a grid of a few narrow charts
    figure = _figure(max(cell[0] * columns, 6.4), cell[1] * rows + 0.5, title)
    axes = list(figure.subplots(rows, columns, squeeze=False).ravel())
    for spare in axes[count:]:
        spare.set_axis_off()
    return figure, axes[:count]


def _cell(shape: tuple) -> tuple:
    h, w = shape
    return (max(1.6, 1.6 * min(w / h, 3.0)), 2.0)


def gradcam_grid_figure(
    images: np.ndarray,
    maps: np.ndarray,
    captions: Sequence[str],
    title: str = "Grad-CAM",
    columns: int = 4,
    alpha: float = 0.55,
    colorbar: bool = False,
) -> Any:
    """Heat maps over chart images: each image in grey with its map (scaled to its own
    maximum) overlaid in colour, a caption above.

    Args:
        images: (n, H, W) or (n, 1, H, W) images.
        maps: (n, H, W) non-negative Grad-CAM maps.
        captions: One caption per image.
        title: The figure's title.
        columns: Panels per row.
        alpha: Opacity of the heat map.
        colorbar: Add a colour bar (the map relative to its maximum) beside each panel.

    Raises:
        ImportError: Without matplotlib.
    """
    images = np.asarray(images)
    images = images[:, 0] if images.ndim == 4 else images
    maps = np.asarray(maps, np.float64)
    figure, axes = _image_grid(len(images), columns, _cell(images.shape[1:]), title)
    for ax, image, heat, caption in zip(axes, images, maps, captions):
        peak = heat.max()
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        overlay = ax.imshow(
            heat / peak if peak > 0 else heat,
            cmap="jet",
            vmin=0,
            vmax=1,
            alpha=alpha,
            interpolation="bilinear",
        )
        ax.set_title(caption, fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
        if colorbar:
            figure.colorbar(overlay, ax=ax, label="Grad-CAM / its maximum", shrink=0.9)
    return figure


def gradcam_grid(
    images: np.ndarray, maps: np.ndarray, captions: Sequence[str], path: Any, **kwargs: Any
) -> Path:
    """Write :func:`gradcam_grid_figure` as a PNG at ``path``."""
    return save_figure(gradcam_grid_figure(images, maps, captions, **kwargs), path)


def sample_predictions_figure(
    images: np.ndarray,
    p_up: np.ndarray,
    labels: np.ndarray,
    columns: int = 4,
    title: str = "Sample test predictions",
) -> Any:
    """Chart images captioned with the predicted up-probability and the outcome; the caption
    is green when the prediction (p_up > 0.5 means up) was right, red when wrong.

    Raises:
        ImportError: Without matplotlib.
    """
    images = np.asarray(images)
    images = images[:, 0] if images.ndim == 4 else images
    figure, axes = _image_grid(len(images), columns, _cell(images.shape[1:]), title)
    outcome = {1: "up", 0: "down"}
    for ax, image, p, y in zip(axes, images, p_up, labels):
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        right = (p > 0.5) == (int(y) == 1)
        ax.set_title(
            f"p_up {p:.3f}, went {outcome.get(int(y), '?')}",
            fontsize="small",
            color=_UP if right else _WRONG,
        )
        ax.set_xticks([])
        ax.set_yticks([])
    return figure


def sample_predictions(
    images: np.ndarray,
    p_up: np.ndarray,
    labels: np.ndarray,
    path: Any,
    columns: int = 4,
    scale: int = 3,
) -> Path:
    """Write :func:`sample_predictions_figure` as a PNG at ``path``.

    Args:
        scale: Kept for callers of the earlier Pillow version; the figure sizes itself.
    """
    return save_figure(sample_predictions_figure(images, p_up, labels, columns), path)
