"""``convlab chart explain``: Grad-CAM pictures of a trained chart-CNN run.

The images explained are those of ``--data`` in the run's test period (ending after its
``train_end``; all of them when none does). The ensemble predicts each one; the ``n`` most
confident up predictions (highest p_up) are explained for the "up" class, the ``n`` most
confident down predictions (lowest p_up) for the "down" class, and the maps averaged over the
images predicted up and over those predicted down (at most ``MEAN_IMAGES`` of each, drawn at
random with a fixed seed, to bound the backward passes) show where the evidence usually lies.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

import convlab
from convlab.explain.gradcam import grad_cam
from convlab.models import ChartCNN
from convlab.training import plots
from convlab.training.fields import UserError
from convlab.training.runs import load_checkpoint, load_model_state, log, write_json

__all__ = ["explain", "MEAN_IMAGES"]

#: Images per class averaged into the mean maps.
MEAN_IMAGES = 256


def _members(folder: Path, window: int, ensemble: int | None, device: str) -> list:
    count = ensemble or 0
    paths = (
        [folder / f"model_{k}.npz" for k in range(count)]
        if count
        else sorted(folder.glob("model_*.npz"))
    )
    paths = [p for p in paths if p.exists()]
    if not paths:
        raise UserError(f"--model: {folder} holds no trained model (model_*.npz)")
    models = []
    for path in paths:
        model = ChartCNN(window)
        load_model_state(model, load_checkpoint(path, "checkpoint"), f"checkpoint {path}")
        models.append(model.to(device).eval())
    return models


def _predict(models: list, images: Any, batch_size: int, device: str) -> np.ndarray:
    """The ensemble's mean up-probability of each image."""
    out = np.zeros(len(images))
    with convlab.no_grad():
        for model in models:
            for start in range(0, len(images), batch_size):
                x = convlab.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))
                x = x.to(device) if device != "cpu" else x
                p = convlab.functional.softmax(model(x), dim=1).cpu().numpy()[:, 1]
                out[start : start + batch_size] += p / len(models)
    return out


def explain(
    model_dir: Any,
    data: str,
    out: Any = None,
    n: int = 16,
    device: str = "cpu",
    batch_size: int = 64,
    quiet: bool = False,
) -> Path:
    """Write Grad-CAM grids of a run's most confident predictions and the per-class means.

    Files in ``out`` (default ``<model_dir>/explain``): ``gradcam_up.png``,
    ``gradcam_down.png``, ``gradcam_mean.png`` and ``explain.json`` (the explained images'
    tickers, dates and p_up). When ``out`` is the run's own ``explain`` folder and the run has
    a ``metrics.json``, its ``report.html`` is rewritten to show the maps.

    Args:
        model_dir: A folder written by ``convlab chart train``.
        data: The data source, as ``--data`` of ``chart train``.
        out: The folder for the pictures.
        n: Images in each of the up / down grids.
        device: ``"cpu"`` or ``"gpu"``.
        batch_size: Images per forward/backward pass.
        quiet: No progress lines.

    Returns:
        The folder written.

    Raises:
        UserError: For a folder without a finished run, unreadable data, or ``n < 1``.
    """
    from convlab.training.chart import _Run, load_charts
    from convlab.training.report import write_report

    folder = Path(os.fspath(model_dir))
    if not folder.is_dir():
        raise UserError(f"--model: {model_dir} is not a run folder")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"--n: expected a positive whole number, got {n!r}")
    if device == "gpu" and not convlab.get_backend("gpu").is_available():
        raise UserError(f"--device gpu: {convlab.get_backend('gpu').describe()}")
    # the chart job's own reader: it fills the settings older run folders lack
    config = _Run(folder).read_config("--model", device)
    target = folder / "explain" if out is None else Path(os.fspath(out))
    if target.exists() and not target.is_dir():
        raise UserError(f"--out: {target} is a file (expected a folder for the pictures)")
    models = _members(folder, config.window, config.ensemble, device)
    # the images drawn as the run's were (its sampling of end dates and its labels)
    charts = load_charts(
        data, config.window, config.horizon, every=config.every, label=config.label
    )
    if config.train_end is not None:
        later = np.flatnonzero(charts.end_dates > np.datetime64(config.train_end, "D"))
        if len(later):
            charts = charts.subset(later)
    images = charts.images()
    log(f"explain: {len(charts)} images, {len(models)} model(s)", quiet)
    p_up = _predict(models, images, batch_size * 2, device)
    order = np.argsort(p_up, kind="stable")
    k = min(n, len(order))
    picks = {"up": order[::-1][:k], "down": order[:k]}
    tickers = np.asarray(charts.tickers, dtype=object)[charts.ticker_codes]
    record: dict = {"images": int(len(charts)), "models": len(models), "n": k}
    name = f"I{config.window} chart CNN"
    for label, target_class in (("up", 1), ("down", 0)):
        rows = picks[label]
        maps, _ = grad_cam(models, images[rows], target=target_class, batch_size=batch_size)
        captions = [
            f"{tickers[i]} {str(charts.end_dates[i])[:10]}\np_up {p_up[i]:.3f}" for i in rows
        ]
        plots.gradcam_grid(
            images[rows],
            maps,
            captions,
            target / f"gradcam_{label}.png",
            title=f"{name}: Grad-CAM of the {k} most confident '{label}' predictions",
        )
        record[label] = [
            {
                "ticker": str(tickers[i]),
                "date": str(charts.end_dates[i])[:10],
                "p_up": float(p_up[i]),
            }
            for i in rows
        ]
    rng = np.random.default_rng(0)
    means, mean_images, captions = [], [], []
    for label, target_class, rows in (
        ("up", 1, np.flatnonzero(p_up > 0.5)),
        ("down", 0, np.flatnonzero(p_up <= 0.5)),
    ):
        if len(rows) > MEAN_IMAGES:
            rows = np.sort(rng.choice(rows, MEAN_IMAGES, replace=False))
        if len(rows):
            maps, _ = grad_cam(models, images[rows], target=target_class, batch_size=batch_size)
            means.append(maps.mean(0))
            mean_images.append(images[rows, 0].mean(0))
        else:
            means.append(np.zeros(images.shape[2:]))
            mean_images.append(np.zeros(images.shape[2:]))
        captions.append(f"predicted {label}: mean of {len(rows)}")
        record[f"mean_{label}_images"] = int(len(rows))
    plots.gradcam_grid(
        np.stack(mean_images),
        np.stack(means),
        captions,
        target / "gradcam_mean.png",
        title=f"{name}: mean Grad-CAM per predicted class",
        columns=2,
        colorbar=True,
    )
    write_json(target / "explain.json", _finite(record))
    if target.resolve() == (folder / "explain").resolve() and (folder / "metrics.json").exists():
        write_report(folder)
    log(f"explain: pictures in {target}", quiet)
    return target


def _finite(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
