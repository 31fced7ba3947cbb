"""The chart job's figures and its one-page ``report.html``.

:func:`run_figures` draws the PNGs of a finished run (learning curves, calibration, decile
returns, cumulative long-short returns, sample predictions) and :func:`write_report` ties them to
the numbers of ``metrics.json`` (which stays the machine-readable record) in one self-contained
HTML page: images embedded as base64 PNG, every text from the data escaped, and every number of
``metrics.json`` shown in a cell that carries its JSON path and exact value
(``data-key="test.accuracy" data-value="0.5312"``), so the page and the record can be compared.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convlab._atomic import atomic_open
from convlab.training import plots

__all__ = ["run_figures", "write_report", "REPORT_NAME", "FIGURES", "absent_reason"]

REPORT_NAME = "report.html"

#: The figures a run folder may hold (file name -> caption), in the order the report shows them.
FIGURES = {
    "learning_curves.png": "Learning curves: loss and accuracy per epoch, one colour per "
    "ensemble member (train dashed, validation solid).",
    "calibration.png": "Calibration of the test-set p_up: observed share of up moves per bin "
    "of predicted probability; the diagonal is perfect calibration.",
    "deciles.png": "Annualised mean return of the ten p_up-decile portfolios and H-L, "
    "equal- and value-weighted (test period).",
    "cumulative_hl.png": "Cumulative H-L return (sum of period returns) of the CNN and the "
    "benchmark signals, equal-weighted (test period).",
    "samples.png": "Randomly chosen test images with the ensemble's p_up and the realised "
    "direction (green: right, red: wrong).",
    "explain/gradcam_up.png": "Grad-CAM of the most confident up predictions: where the last "
    "conv block's evidence for 'up' lies.",
    "explain/gradcam_down.png": "Grad-CAM of the most confident down predictions (the 'down' "
    "class explained).",
    "explain/gradcam_mean.png": "Grad-CAM averaged over the images predicted up and those "
    "predicted down.",
}


# -- figures ---------------------------------------------------------------------------------


def run_figures(
    folder: Any,
    histories: Sequence[dict],
    window: int,
    p_test: np.ndarray,
    labels_test: np.ndarray,
    samples: tuple | None = None,
    portfolios: Sequence[Any] | None = None,
) -> dict:
    """Write a run's figures into ``folder``; returns the numbers behind them for
    ``metrics.json`` (``{"calibration": ...}``).

    Args:
        folder: The run folder.
        histories: One training history per ensemble member.
        window: Image window (the figures' titles say I5 / I20 / I60).
        p_test: The ensemble's up-probability of each test image.
        labels_test: Their labels (1 up, 0 down).
        samples: ``(images, p_up, labels)`` of the images to show, or None.
        portfolios: Decile sorts (``convlab.finance.portfolios.DecileSorts``), the CNN's
            first and the benchmark signals after it; None (no cross-section) draws no
            portfolio figures.
    """
    folder = Path(os.fspath(folder))
    name = f"I{window} chart CNN"
    plots.learning_curves(histories, folder / "learning_curves.png", title=f"{name} ensemble")
    extra: dict = {}
    if len(p_test):
        plots.calibration(
            p_test, labels_test, folder / "calibration.png", title=f"{name}: calibration (test)"
        )
        extra["calibration"] = plots.calibration_table(p_test, labels_test)
    if samples is not None and len(samples[0]):
        images, p_up, labels = samples
        plots.sample_predictions(images, p_up, labels, folder / "samples.png")
    if portfolios:
        cnn = portfolios[0]
        bars = {w: cnn.stats(w)["ret"] for w in ("EW", "VW")}
        table = _frame(bars, ["equal", "value"])
        plots.decile_returns(
            table,
            folder / "deciles.png",
            title=f"{name}: p_up decile portfolios (test)",
            ylabel="annualised mean return",
        )
        lines = {f"{s.name} H-L (EW)": s.returns["EW H-L"] for s in portfolios}
        plots.cumulative_returns(
            lines, folder / "cumulative_hl.png", title=f"{name} vs benchmarks: cumulative H-L"
        )
    return extra


def _frame(columns: dict, names: list) -> Any:
    import pandas as pd

    return pd.DataFrame({n: c for n, c in zip(names, columns.values())})


# -- the page --------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0 1.2em}
th,td{border:1px solid #ccc;padding:.25em .6em}th{background:#f4f4f4;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.92em}.note{background:#fff8e1;border-left:4px solid #f0b400;
padding:.5em 1em}code{background:#f4f4f4;padding:0 .2em}details{margin:.5em 0}
"""


class _Page:
    """The HTML being built; remembers which ``metrics.json`` numbers it has shown."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.shown: set[str] = set()

    def add(self, text: str) -> None:
        self.parts.append(text)

    def text(self, tag: str, value: Any, cls: str = "") -> None:
        attr = f' class="{cls}"' if cls else ""
        self.add(f"<{tag}{attr}>{html.escape(str(value))}</{tag}>")

    def number(self, key: str, value: Any, digits: int = 4) -> str:
        """A table cell for the number at ``key`` of metrics.json (its exact value kept)."""
        self.shown.add(key)
        return (
            f'<td class="num" data-key="{html.escape(key)}" '
            f'data-value="{html.escape(json.dumps(value))}">{_fmt(value, digits)}</td>'
        )

    def table(self, header: Sequence[str], rows: list[list[str]]) -> None:
        """``rows`` hold ready cells (``<td>`` strings); the header is escaped here."""
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join(f"<tr>{''.join(r)}</tr>" for r in rows)
        self.add(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:.{digits}f}" if abs(value) < 1e5 else f"{value:.4g}"
    return html.escape(str(value))


def _cell(text: Any) -> str:
    return f"<td>{html.escape(str(text))}</td>"


def _leaves(obj: Any, prefix: str = "", text: bool = False) -> Iterator[tuple[str, Any]]:
    """``(json path, number)`` of every number (or null) in ``obj``, paths joined by dots;
    with ``text`` also the strings and booleans."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k), text)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{prefix}.{i}", text)
    elif obj is None or (isinstance(obj, (int, float)) and not isinstance(obj, bool)):
        yield prefix, obj
    elif text:
        yield prefix, obj


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def absent_reason(metrics: dict) -> str | None:
    """Why a run has no decile portfolios (None when it has them).

    The evaluation may say so itself (a string under ``portfolios.reason``); otherwise the
    reason is read from the backtest it fell back to.
    """
    portfolios = metrics.get("portfolios")
    if isinstance(portfolios, dict):
        reason = portfolios.get("reason") or portfolios.get("absent")
        if isinstance(reason, str):
            return reason
        return None
    backtest = metrics.get("backtest", {})
    if isinstance(backtest, dict) and backtest.get("kind") == "decile long-short":
        return None
    return (
        "No decile portfolios: the test period has fewer than ten instruments per date "
        "(the bundled data are two index series, S&P 500 and NASDAQ), so there is no "
        "cross-section to sort on p_up and no benchmark signals to compare. Give "
        "multi-ticker data (an OHLCV table with a ticker column, or crsp:FILE) for the "
        "paper's evaluation."
    )


def _figure(page: _Page, folder: Path, name: str) -> None:
    path = folder / name
    if not path.is_file():
        return
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    page.add(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
        f"<figcaption><code>{html.escape(name)}</code>: {html.escape(FIGURES[name])}"
        f"</figcaption></figure>"
    )


def _csv_table(page: _Page, path: Path, limit: int = 60) -> None:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    body = rows[1 : limit + 1]
    page.text("h3", path.name)
    # the first column labels the rows (deciles "Low", "2", ..., "H-L"): text, not numbers
    cells = [[_cell(row[0])] + [_csv_cell(v) for v in row[1:]] for row in body if row]
    page.table(rows[0], cells)
    if len(rows) - 1 > limit:
        page.text("p", f"... {len(rows) - 1 - limit} more rows in {path.name}")


def _csv_cell(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return _cell(value)
    return f'<td class="num">{_fmt(number)}</td>'


def _classification(page: _Page, metrics: dict) -> None:
    rows = []
    for split in ("train", "validation", "test"):
        part = metrics.get(split)
        if not isinstance(part, dict):
            continue
        rows.append(
            [_cell(split)]
            + [
                page.number(f"{split}.{k}", part.get(k))
                for k in ("n", "loss", "accuracy", "up_fraction")
                if k in part
            ]
        )
    page.text("h2", "Classification")
    page.table(["set", "images", "cross-entropy", "accuracy", "share of up labels"], rows)
    page.text(
        "p",
        "The paper reports test accuracy of about 0.52-0.54 on US stocks; about 0.50 means a "
        "pipeline problem or too little data.",
    )
    test = metrics.get("test", {})
    if "pearson" in test or "spearman" in test:
        page.text("h3", "Correlation of p_up with the realised return (test)")
        page.table(
            ["Pearson", "Spearman"],
            [[page.number(f"test.{k}", test.get(k)) for k in ("pearson", "spearman")]],
        )


def _calibration(page: _Page, folder: Path, metrics: dict) -> None:
    table = metrics.get("calibration")
    page.text("h2", "Calibration")
    _figure(page, folder, "calibration.png")
    if not isinstance(table, dict):
        return
    rows = []
    for i in range(len(table.get("count", []))):
        rows.append(
            [
                page.number(f"calibration.lower.{i}", table["lower"][i], 2),
                page.number(f"calibration.upper.{i}", table["upper"][i], 2),
                page.number(f"calibration.count.{i}", table["count"][i]),
                page.number(f"calibration.mean_p_up.{i}", table["mean_p_up"][i]),
                page.number(f"calibration.up_fraction.{i}", table["up_fraction"][i]),
            ]
        )
    page.add("<details><summary>Calibration table</summary>")
    page.table(["p_up from", "to", "images", "mean p_up", "observed up share"], rows)
    page.add("</details>")


def _portfolios(page: _Page, folder: Path, metrics: dict) -> None:
    page.text("h2", "Portfolios: the paper's evaluation")
    reason = absent_reason(metrics)
    if reason is not None:
        page.text("p", reason, "note")
    _figure(page, folder, "deciles.png")
    # Table 1 of the paper (deciles as rows), as the evaluation wrote it
    for path in sorted(folder.glob("*table1*.csv")):
        _csv_table(page, path)
    _figure(page, folder, "cumulative_hl.png")
    comparison = metrics.get("comparison")
    if isinstance(comparison, dict) and comparison:
        page.text("h3", "The CNN beside the benchmark signals (H-L portfolios)")
        columns: list[str] = []
        for row in comparison.values():
            columns += [c for c in (row if isinstance(row, dict) else {}) if c not in columns]
        rows = [
            [_cell(signal)] + [page.number(f"comparison.{signal}.{c}", row.get(c)) for c in columns]
            for signal, row in comparison.items()
            if isinstance(row, dict)
        ]
        page.table(["signal", *columns], rows)
    benchmarks = metrics.get("benchmarks")
    for signal, result in benchmarks.items() if isinstance(benchmarks, dict) else []:
        if isinstance(result, dict) and isinstance(result.get("reason"), str):
            page.text("p", f"{signal}: {result['reason']}", "note")
            page.shown.add(f"benchmarks.{signal}.reason")


def _nested(page: _Page, title: str, obj: Any, prefix: str) -> None:
    """Every number (and text) under ``prefix`` not shown yet, as a two-column table."""
    rows = [
        [
            _cell(key[len(prefix) + 1 :] if prefix else key),
            page.number(key, value) if _is_number(value) else _cell(value),
        ]
        for key, value in _leaves(obj, prefix, text=True)
        if key not in page.shown
    ]
    page.shown.update(key for key, _ in _leaves(obj, prefix, text=True))
    if rows:
        page.text("h3", title)
        page.table(["metric", "value"], rows)


def _config(page: _Page, metrics: dict) -> None:
    config = metrics.get("config", {})
    if not isinstance(config, dict):
        return
    page.text("h2", "Settings")
    rows = [
        [_cell(k), _cell(json.dumps(v) if not isinstance(v, str) else v)]
        for k, v in config.items()
        if k != "notes"
    ]
    page.table(["setting", "value"], rows)
    for note in config.get("notes", []) or []:
        page.text("p", f"note: {note}", "note")


def write_report(folder: Any) -> Path:
    """Write ``report.html`` into a run folder from its ``metrics.json`` and figures.

    Returns:
        The path of the page.

    Raises:
        FileNotFoundError: If the folder has no ``metrics.json``.
    """
    folder = Path(os.fspath(folder)).resolve()
    with open(folder / "metrics.json") as handle:
        metrics = json.load(handle)
    config = metrics.get("config", {}) if isinstance(metrics.get("config"), dict) else {}
    title = f"I{config.get('window', '?')} chart CNN: run report"
    page = _Page()
    page.add(
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
    )
    page.text("h1", title)
    page.text(
        "p",
        f"Run folder {folder.name}; data {config.get('data', '?')}; window "
        f"{config.get('window', '?')} days, horizon {config.get('horizon', '?')} days; "
        f"{metrics.get('ensemble', '?')} model(s). metrics.json is the machine-readable "
        f"record of every number below.",
    )
    _classification(page, metrics)
    page.text("h2", "Training")
    _figure(page, folder, "learning_curves.png")
    _calibration(page, folder, metrics)
    _portfolios(page, folder, metrics)
    keys = [k for k in ("portfolios", "benchmarks", "comparison", "backtest") if k in metrics]
    if keys:
        page.add("<details><summary>The evaluation's numbers in metrics.json</summary>")
        for key in keys:
            _nested(page, key, metrics[key], key)
        page.add("</details>")
    page.text("h2", "What the network looks at (Grad-CAM)")
    if (folder / "explain" / "gradcam_up.png").is_file():
        for name in ("explain/gradcam_up.png", "explain/gradcam_down.png"):
            _figure(page, folder, name)
        _figure(page, folder, "explain/gradcam_mean.png")
    else:
        page.text(
            "p",
            f"Not computed yet: run  convlab chart explain --model {folder} --data "
            f"{config.get('data', 'DATA')}  and this page is rewritten with the maps.",
            "note",
        )
    page.text("h2", "Sample predictions")
    _figure(page, folder, "samples.png")
    _config(page, metrics)
    # everything else in metrics.json, so that the page holds every number of the record
    rest = {k: v for k, v in metrics.items() if k not in ("config", "histories")}
    page.add("<details><summary>All other numbers in metrics.json</summary>")
    _nested(page, "metrics", rest, "")
    _nested(page, "per-epoch histories", metrics.get("histories", []), "histories")
    page.add("</details>")
    page.text("p", "Files: " + ", ".join(sorted(p.name for p in folder.iterdir() if p.is_file())))
    page.add("</body></html>")
    target = folder / REPORT_NAME
    with atomic_open(target, "w") as handle:
        handle.write("\n".join(page.parts))
    return target
