"""End to end: a synthetic CRSP universe (random walks, 100 stocks, 2.5 years) through
``convlab chart train`` and ``convlab chart explain``; the run folder holds the full report,
every figure and table, and report.html shows exactly the numbers of metrics.json."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")
PIL = pytest.importorskip("PIL.Image")

from convlab.cli import main  # noqa: E402
from test_chart_report import expected_numbers, shown_numbers  # noqa: E402

STOCKS = 100
FIGURES = [
    "learning_curves.png",
    "calibration.png",
    "deciles.png",
    "cumulative_hl.png",
    "samples.png",
    "explain/gradcam_up.png",
    "explain/gradcam_down.png",
    "explain/gradcam_mean.png",
]


def crsp_universe(path) -> None:
    """A WRDS-style daily file: random-walk returns, the first day's RET coded 'C' (no
    previous price), some bid-ask midpoints (negative PRC) and zero-volume days."""
    rng = np.random.default_rng(7)
    dates = pd.bdate_range("2015-01-01", "2016-12-31")
    frames = []
    for permno in range(10001, 10001 + STOCKS):
        ret = rng.normal(0.0004, 0.02, len(dates))
        prc = 30.0 * np.exp(np.cumsum(np.log1p(ret)))
        openprc = prc * np.exp(rng.normal(0, 0.006, len(dates)))
        high = np.maximum(openprc, prc) * np.exp(np.abs(rng.normal(0, 0.01, len(dates))))
        low = np.minimum(openprc, prc) * np.exp(-np.abs(rng.normal(0, 0.01, len(dates))))
        sign = np.where(rng.random(len(dates)) < 0.02, -1.0, 1.0)
        vol = np.where(rng.random(len(dates)) < 0.01, 0, rng.integers(1e3, 1e6, len(dates)))
        text_ret = [f"{r:.6f}" for r in ret]
        text_ret[0] = "C"
        frames.append(
            pd.DataFrame(
                {
                    "PERMNO": permno,
                    "date": dates.strftime("%Y%m%d"),
                    "OPENPRC": openprc.round(4),
                    "ASKHI": high.round(4),
                    "BIDLO": low.round(4),
                    "PRC": (sign * prc).round(4),
                    "VOL": vol,
                    "RET": text_ret,
                    "SHROUT": rng.integers(1_000, 50_000),
                }
            )
        )
    pd.concat(frames).to_csv(path, index=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    crsp_universe(base / "dsf.csv")
    data = f"crsp:{base / 'dsf.csv'}"
    folder = base / "run"
    train = [
        "chart", "train", "--data", data, "--window", "5", "--horizon", "5",
        "--every", "month", "--epochs", "1", "--ensemble", "2", "--batch-size", "64",
        "--train-end", "2015-12-31", "--out", str(folder), "--quiet",
    ]  # fmt: skip
    assert main(train) == 0
    explain = ["chart", "explain", "--model", str(folder), "--data", data, "--n", "8", "--quiet"]
    assert main(explain) == 0
    return folder


def test_the_run_folder_holds_every_figure_and_table(run):
    for name in FIGURES:
        with PIL.open(run / name) as image:
            assert image.format == "PNG" and min(image.size) >= 200, name
    for name in ("metrics.json", "config.json", "report.html", "test_predictions.csv"):
        assert (run / name).is_file(), name
    assert (run / "CNN_table1.csv").is_file() and (run / "comparison.csv").is_file()
    config = json.loads((run / "config.json").read_text())
    assert (config["every"], config["window"], config["ensemble"]) == ("month", 5, 2)
    explained = json.loads((run / "explain" / "explain.json").read_text())
    assert len(explained["up"]) == len(explained["down"]) == 8
    assert min(e["p_up"] for e in explained["up"]) >= max(e["p_up"] for e in explained["down"])


def test_report_embeds_every_figure_and_shows_the_tables(run):
    page = (run / "report.html").read_text()
    embedded = re.findall(r'alt="([^"]+)" src="data:image/png;base64,', page)
    assert sorted(embedded) == sorted(FIGURES)
    table1 = pd.read_csv(run / "CNN_table1.csv", index_col=0)
    assert list(table1.index) == ["Low", "2", "3", "4", "5", "6", "7", "8", "9", "High", "H-L"]
    assert "<h3>CNN_table1.csv</h3>" in page
    for label in table1.index:  # Table 1's rows, deciles Low..High and H-L
        assert f"<td>{label}</td>" in page
    assert "The CNN beside the benchmark signals" in page
    comparison = pd.read_csv(run / "comparison.csv", index_col=0)
    for signal in comparison.index:  # the CNN and the benchmarks, each a row of the table
        assert f'data-key="comparison.{signal}.EW SR"' in page
    # TREND needs 1000 trading days of history (Han, Zhou & Zhu's longest average): two
    # years have none, and the report says so
    assert {"CNN", "MOM", "STR", "WSTR"} <= set(comparison.index)
    assert "TREND: " in page
    assert "No decile portfolios" not in page  # a real cross-section
    assert "Not computed yet" not in page  # explain rewrote the page with the maps


def test_report_numbers_equal_metrics_json(run):
    metrics = json.loads((run / "metrics.json").read_text())
    page = (run / "report.html").read_text()
    assert shown_numbers(page) == expected_numbers(metrics)
    assert metrics["portfolios"]["EW"]["hl_sharpe"] is not None
    assert len(metrics["histories"]) == 2


def test_two_index_series_report_says_why_there_are_no_portfolios(tmp_path):
    """As the bundled data (two index series): no cross-section, so no decile sorts; the page
    says why and still shows the rest."""
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2018-01-01", "2019-03-31")
    frames = []
    for ticker in ("SP500", "NASDAQ"):
        close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, len(dates))))
        opening = close * np.exp(rng.normal(0, 0.004, len(dates)))
        frames.append(
            pd.DataFrame(
                {
                    "ticker": ticker,
                    "date": dates,
                    "open": opening,
                    "high": np.maximum(opening, close) * 1.004,
                    "low": np.minimum(opening, close) * 0.996,
                    "close": close,
                    "volume": rng.integers(1_000, 9_000, len(dates)),
                }
            )
        )
    pd.concat(frames).to_csv(tmp_path / "two.csv", index=False)
    folder = tmp_path / "run"
    train = [
        "chart", "train", "--data", str(tmp_path / "two.csv"), "--window", "5", "--epochs", "1",
        "--ensemble", "1", "--batch-size", "64", "--out", str(folder), "--quiet",
    ]  # fmt: skip
    assert main(train) == 0
    metrics = json.loads((folder / "metrics.json").read_text())
    page = (folder / "report.html").read_text()
    assert "No decile portfolios" in metrics["portfolios"]["reason"]
    assert f'<p class="note">{html.escape(metrics["portfolios"]["reason"])}</p>' in page
    assert not (folder / "deciles.png").exists() and not (folder / "cumulative_hl.png").exists()
    embedded = re.findall(r'alt="([^"]+)" src="data:image/png;base64,', page)
    assert embedded == ["learning_curves.png", "calibration.png", "samples.png"]
    assert shown_numbers(page) == expected_numbers(metrics)
