"""The chart job's evaluation: crsp:FILE as a data source, decile portfolios of test predictions
(checked against groupby + qcut written here), the no-cross-section reason, prediction deciles."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from convlab.finance.crsp import read_crsp  # noqa: E402
from convlab.training import evaluate  # noqa: E402
from convlab.training.chart import load_charts  # noqa: E402
from convlab.training.fields import UserError  # noqa: E402


def _crsp_csv(path, stocks: int = 14, days: int = 300, seed: int = 0):
    """A CRSP-format export of random walks (with the odd code, midpoint and zero volume)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2018-01-02", periods=days)
    parts = []
    for i in range(stocks):
        r = rng.normal(0.0003, 0.02, days)
        price = 30 * np.cumprod(1 + r)
        ret = np.round(r, 8).astype(object)
        ret[0] = "C"
        ret[rng.integers(5, days)] = "B"
        prc = np.where(rng.uniform(size=days) < 0.05, -price, price)
        parts.append(
            pd.DataFrame(
                {
                    "PERMNO": 10000 + i,
                    "date": dates.strftime("%Y%m%d"),
                    "OPENPRC": price * (1 + rng.normal(0, 0.004, days)),
                    "ASKHI": price * 1.01,
                    "BIDLO": price * 0.99,
                    "PRC": prc,
                    "VOL": rng.integers(0, 5000, days),
                    "RET": ret,
                    "SHROUT": int(rng.integers(1000, 9000)),
                }
            )
        )
    pd.concat(parts).to_csv(path, index=False)
    return path


def test_crsp_source_gives_weekly_images_with_market_equity(tmp_path):
    path = _crsp_csv(tmp_path / "dsf.csv")
    charts = load_charts(f"crsp:{path}", 5, 5)
    assert charts.info["every"] == "week"  # 14 stocks: the paper's sampling
    ends = pd.to_datetime(charts.end_dates)
    assert (ends.day_of_week == 4).mean() > 0.9  # Fridays (but for holidays)
    daily = evaluate.daily_frame(f"crsp:{path}")
    pd.testing.assert_frame_equal(daily, read_crsp(path))
    # the label is the 5-day return of the chained close
    t = charts.tickers[charts.ticker_codes[10]]
    series = daily[daily["ticker"] == t].reset_index(drop=True)
    k = int(np.flatnonzero(series["date"] == pd.Timestamp(charts.end_dates[10]))[0])
    expected = series["close"][k + 5] / series["close"][k] - 1
    assert charts.returns[10] == pytest.approx(expected)
    daily_images = load_charts(f"crsp:{path}", 5, 5, every="day")
    assert len(daily_images) > 4 * len(charts)
    with pytest.raises(UserError, match="--data: .*nope.csv does not exist"):
        load_charts(f"crsp:{tmp_path / 'nope.csv'}", 5, 5)
    bad = tmp_path / "bad.csv"
    bad.write_text(path.read_text().replace("SHROUT", "SHARES"))
    with pytest.raises(
        UserError, match=r"--data: .*bad.csv: missing CRSP column\(s\) \['SHROUT'\]"
    ):
        load_charts(f"crsp:{bad}", 5, 5)


def test_render_command_reads_crsp(tmp_path):
    path = _crsp_csv(tmp_path / "dsf.csv", stocks=3, days=80)
    done = subprocess.run(
        [sys.executable, "-m", "convlab.cli", "chart", "render", "--data", f"crsp:{path}",
         "--window", "5", "--every", "month", "--label", "period", "--out", tmp_path / "set"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    meta = json.loads((tmp_path / "set" / "meta.json").read_text())
    assert meta["info"]["every"] == "month" and meta["info"]["horizon"] == "month"
    assert meta["tickers"] == ["10000", "10001", "10002"]


def test_portfolio_evaluation_against_qcut(tmp_path):
    path = _crsp_csv(tmp_path / "dsf.csv", stocks=16, days=320, seed=1)
    charts = load_charts(f"crsp:{path}", 5, 5)
    charts = charts.subset(np.flatnonzero(charts.labels >= 0))
    p_up = np.random.default_rng(2).uniform(0.3, 0.7, len(charts))
    daily = evaluate.daily_frame(f"crsp:{path}")
    metrics, sorts = evaluate.portfolio_evaluation(p_up, charts, daily, 5, tmp_path)
    # the reference: weekly formation dates, qcut deciles, EW and ME-weighted means
    frame = pd.DataFrame(
        {
            "ticker": np.asarray(charts.tickers)[charts.ticker_codes],
            "date": pd.to_datetime(charts.end_dates),
            "p": p_up,
            "r": charts.returns,
        }
    ).merge(daily[["ticker", "date", "me"]], on=["ticker", "date"])
    frame["d"] = frame.groupby("date")["p"].transform(lambda s: pd.qcut(s, 10, labels=False) + 1)
    ew = frame.groupby(["date", "d"])["r"].mean().unstack()
    hl = (ew[10] - ew[1]).to_numpy()
    np.testing.assert_allclose(sorts[0].returns["EW H-L"].to_numpy(), hl)
    frame["mr"] = frame["me"] * frame["r"]
    g = frame.groupby(["date", "d"])
    vw = (g["mr"].sum() / g["me"].sum()).unstack()
    np.testing.assert_allclose(sorts[0].returns["VW 10"].to_numpy(), vw[10].to_numpy())
    sharpe = hl.mean() * 52 / (hl.std(ddof=1) * np.sqrt(52))
    assert metrics["portfolios"]["EW"]["hl_sharpe"] == pytest.approx(sharpe)
    assert metrics["portfolios"]["rebalancing"] == "week"
    assert [s.name for s in sorts] == ["CNN", "MOM", "STR", "WSTR"]  # TREND: too little history
    assert "reason" in metrics["benchmarks"]["TREND"]
    assert metrics["comparison"]["STR"]["EW SR"] == pytest.approx(
        metrics["benchmarks"]["STR"]["EW"]["hl_sharpe"]
    )
    for name in (
        "CNN_table1.csv",
        "CNN_returns.csv",
        "comparison.csv",
        "benchmarks/MOM_table1.csv",
    ):
        assert (tmp_path / name).is_file()
    table = pd.read_csv(tmp_path / "CNN_table1.csv", index_col=0)
    assert table.loc["H-L", "EW SR"] == pytest.approx(sharpe)


def test_daily_images_rebalance_every_horizon_days_and_no_cross_section_reason(tmp_path):
    path = _crsp_csv(tmp_path / "dsf.csv", stocks=12, days=200, seed=3)
    charts = load_charts(f"crsp:{path}", 5, 5, every="day")
    charts = charts.subset(np.flatnonzero(charts.labels >= 0))
    p_up = np.random.default_rng(0).uniform(size=len(charts))
    metrics, sorts = evaluate.portfolio_evaluation(p_up, charts, None, 5)
    dates = np.unique(charts.end_dates)
    assert list(sorts[0].returns.index) == list(pd.to_datetime(dates[::5]))
    assert sorts[0].periods_per_year == pytest.approx(252 / 5)
    assert "no daily prices" in metrics["benchmarks"]["reason"] and len(sorts) == 1
    two = charts.subset(np.flatnonzero(charts.ticker_codes < 2))
    metrics, sorts = evaluate.portfolio_evaluation(p_up[: len(two)], two, None, 5)
    assert sorts == [] and "at most 2 instrument(s) per date" in metrics["portfolios"]["reason"]


def test_prediction_deciles():
    dates = ["2020-01-31"] * 12 + ["2020-02-28"] * 3
    p = np.r_[np.arange(12) / 12, [0.1, 0.2, 0.3]]
    got = evaluate.prediction_deciles([f"T{i}" for i in range(15)], dates, p)
    expected = pd.qcut(pd.Series(p[:12]), 10, labels=False).to_numpy() + 1
    np.testing.assert_array_equal(got[:12], expected)
    np.testing.assert_array_equal(got[12:], 0)


def test_config_checks_sampling_choices():
    from convlab.training.chart import ChartTrainConfig

    ChartTrainConfig(every="month", label="period").check()
    with pytest.raises(UserError, match="--label"):
        ChartTrainConfig(label="calendar").check()
    with pytest.raises(UserError, match="--every"):
        ChartTrainConfig(every="year").check()
    with pytest.raises(UserError, match="--label: .*needs --every week, month or quarter"):
        load_charts("sp500", 5, 5, every="day", label="period")


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "convlab.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_train_and_predict_on_crsp_through_the_cli(tmp_path):
    path = _crsp_csv(tmp_path / "dsf.csv", stocks=12, days=320, seed=4)
    out = tmp_path / "run"
    done = _cli(
        "chart", "train", "--data", f"crsp:{path}", "--window", 5, "--epochs", 1,
        "--ensemble", 1, "--batch-size", 32, "--lr", 1e-3, "--out", out, "--quiet",
        "--threads", 1,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["every"] == "week" and config["label"] == "days"
    metrics = json.loads((out / "metrics.json").read_text())
    portfolios = metrics["portfolios"]
    assert portfolios["periods"] > 10 and portfolios["periods_per_year"] == 52
    assert set(metrics["comparison"]) == {"CNN", "MOM", "STR", "WSTR"}
    table = pd.read_csv(out / "CNN_table1.csv", index_col=0)
    assert table.loc["H-L", "EW SR"] == pytest.approx(portfolios["EW"]["hl_sharpe"])
    test = pd.read_csv(out / "test_predictions.csv")
    assert list(test.columns) == ["ticker", "date", "p_up", "decile"]
    assert test["decile"].between(1, 10).all()  # 12 stocks every week
    done = _cli("chart", "predict", "--model", out, "--data", f"crsp:{path}", "--out",
                tmp_path / "p.csv")  # fmt: skip
    assert done.returncode == 0, done.stderr
    pred = pd.read_csv(tmp_path / "p.csv")
    expected = pred.groupby("date")["p_up"].transform(lambda s: pd.qcut(s, 10, labels=False) + 1)
    np.testing.assert_array_equal(pred["decile"], expected)


def test_weekly_images_held_twenty_days_rebalance_every_fourth_week(tmp_path):
    path = _crsp_csv(tmp_path / "dsf.csv", stocks=12, days=260, seed=5)
    charts = load_charts(f"crsp:{path}", 5, 20, every="week")
    charts = charts.subset(np.flatnonzero(charts.labels >= 0))
    p_up = np.random.default_rng(1).uniform(size=len(charts))
    metrics, sorts = evaluate.portfolio_evaluation(p_up, charts, None, 20)
    weeks = np.unique(charts.end_dates)
    assert list(sorts[0].returns.index) == list(pd.to_datetime(weeks[::4]))
    assert sorts[0].periods_per_year == 13
    assert metrics["portfolios"]["rebalancing"] == "every 4th week end (20-day holding)"
