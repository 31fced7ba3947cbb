"""report.html: every number of metrics.json shown with its exact value, text escaped,
figures embedded, and the reason why a run has no decile portfolios."""

from __future__ import annotations

import base64
import html
import json
import re

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from convlab.training import evaluate, plots, report  # noqa: E402

METRICS = evaluate.json_safe(
    {
        "config": {
            "data": "<script>alert('x')</script>.csv",
            "window": 5,
            "horizon": 5,
            "notes": ["small & <data>"],
        },
        "ensemble": 2,
        "train": {"loss": 0.69, "accuracy": 0.52, "n": 1000, "up_fraction": 0.51},
        "validation": {"loss": 0.7, "accuracy": 0.5, "n": 400, "up_fraction": 0.5},
        "test": {
            "loss": 0.71,
            "accuracy": 0.49,
            "n": 600,
            "up_fraction": 0.52,
            "pearson": -0.0123456789,
            "spearman": None,
        },
        "backtest": {
            "kind": "long/flat vs buy-and-hold",
            "horizon_days": 5,
            "strategy": {"sharpe": 0.25, "periods": 30},
            "time_in_market": 0.4,
        },
        "calibration": plots.calibration_table(np.array([0.2, 0.6, 0.65]), np.array([0, 1, 0])),
        "histories": [{"train_loss": [0.7, 0.69], "val_loss": [0.71, 0.7]}],
        "seconds": 12.5,
    }
)


def _leaves(obj, prefix=""):
    """Independent walk of the JSON: (dotted path, value) of every number or null."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{prefix}.{i}")
    elif obj is None or (isinstance(obj, (int, float)) and not isinstance(obj, bool)):
        yield prefix, obj


def shown_numbers(page: str) -> dict:
    """{data-key: value} of the cells of a report page."""
    cells = re.findall(r'data-key="([^"]*)" data-value="([^"]*)"', page)
    return {html.unescape(k): json.loads(html.unescape(v)) for k, v in cells}


def expected_numbers(metrics: dict) -> dict:
    return {k: v for k, v in _leaves(metrics) if not k.startswith("config.")}


def _run_folder(tmp_path, metrics=METRICS):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_every_number_of_metrics_json_is_shown_once_with_its_exact_value(tmp_path):
    page = report.write_report(_run_folder(tmp_path)).read_text()
    cells = re.findall(r'data-key="([^"]*)"', page)
    assert len(cells) == len(set(cells))  # each number once
    assert shown_numbers(page) == expected_numbers(METRICS)
    # and the visible text is the rounded value
    assert 'data-key="test.accuracy" data-value="0.49">0.4900<' in page
    assert 'data-key="test.spearman" data-value="null">n/a<' in page


def test_text_from_the_data_is_escaped(tmp_path):
    page = report.write_report(_run_folder(tmp_path)).read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;.csv" in page
    assert "small &amp; &lt;data&gt;" in page


def test_without_a_cross_section_the_report_says_why(tmp_path):
    page = report.write_report(_run_folder(tmp_path)).read_text()
    assert "No decile portfolios" in page and "two index series" in page
    assert "convlab chart explain --model" in page  # no maps yet: how to make them
    decile = dict(METRICS, backtest={"kind": "decile long-short", "sharpe": 1.0})
    assert report.absent_reason(decile) is None
    told = dict(METRICS, portfolios={"reason": "only 3 stocks"})
    assert report.absent_reason(told) == "only 3 stocks"


def test_figures_are_embedded_as_png_and_csv_tables_shown(tmp_path):
    folder = _run_folder(tmp_path)
    plots.learning_curves(METRICS["histories"], folder / "learning_curves.png")
    (folder / "cnn_table1.csv").write_text("decile,EW Ret\nLow,-0.125\nH-L,<b>\n")
    page = report.write_report(folder).read_text()
    embedded = re.findall(r'alt="([^"]+)" src="data:image/png;base64,([^"]+)"', page)
    assert [name for name, _ in embedded] == ["learning_curves.png"]
    assert base64.b64decode(embedded[0][1]) == (folder / "learning_curves.png").read_bytes()
    assert "cnn_table1.csv" in page and ">-0.1250<" in page and "&lt;b&gt;" in page
    assert "calibration.png" not in page  # absent figures are left out, not broken links
    assert sorted(p.name for p in folder.iterdir()) == [
        "cnn_table1.csv",
        "learning_curves.png",
        "metrics.json",
        "report.html",
    ]


def test_explain_refuses_what_is_not_a_finished_run(tmp_path, capsys):
    from convlab.cli import main

    assert main(["chart", "explain", "--model", str(tmp_path / "absent")]) == 2
    assert "--model: " in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["chart", "explain", "--model", str(tmp_path / "empty")]) == 2
    assert "has no config.json (not a chart run)" in capsys.readouterr().err
    assert main(["chart", "explain", "--model", str(tmp_path), "--n", "0"]) == 2
    assert "--n" in capsys.readouterr().err
