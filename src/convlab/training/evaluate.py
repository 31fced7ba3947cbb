"""What a trained chart model is judged by: loss, accuracy, correlations, and the paper's
portfolio evaluation (:mod:`convlab.finance`: decile sorts of p_up beside the benchmark signals).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from convlab.finance.portfolios import (
    assign_deciles,
    compare_signals,
    decile_portfolios,
    periods_per_year,
    write_frame,
)
from convlab.training.fields import UserError

__all__ = [
    "classification_metrics",
    "correlations",
    "portfolio_evaluation",
    "prediction_deciles",
    "json_safe",
    "daily_frame",
]


def classification_metrics(p_up: np.ndarray, labels: np.ndarray) -> dict:
    """Cross-entropy of the predicted probabilities and accuracy at 0.5."""
    p = np.clip(np.asarray(p_up, np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(labels)
    if len(y) == 0:
        return {"loss": math.nan, "accuracy": math.nan, "n": 0}
    loss = -np.mean(np.where(y == 1, np.log(p), np.log1p(-p)))
    return {
        "loss": float(loss),
        "accuracy": float(np.mean((p > 0.5) == (y == 1))),
        "n": int(len(y)),
    }


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (as ``scipy.stats.rankdata``)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), np.float64)
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e - 1) / 2.0
    return ranks


def correlations(p_up: np.ndarray, returns: np.ndarray) -> dict:
    """Pearson and Spearman correlation of the up-probability with the realised return."""
    p, r = np.asarray(p_up, np.float64), np.asarray(returns, np.float64)
    keep = np.isfinite(p) & np.isfinite(r)
    p, r = p[keep], r[keep]
    if len(p) < 3 or np.std(p) == 0 or np.std(r) == 0:
        return {"pearson": math.nan, "spearman": math.nan}
    return {
        "pearson": float(np.corrcoef(p, r)[0, 1]),
        "spearman": float(np.corrcoef(_ranks(p), _ranks(r))[0, 1]),
    }


def _points(p_up: np.ndarray, charts: Any) -> Any:
    """One row per test image: ticker, formation date, p_up and the holding-period return."""
    import pandas as pd

    return pd.DataFrame(
        {
            "ticker": np.asarray(charts.tickers, dtype=object)[charts.ticker_codes].astype(str),
            "date": pd.to_datetime(charts.end_dates),
            "p_up": np.asarray(p_up, np.float64),
            "ret": charts.returns,
        }
    )


# trading days of a sampling period, to count a horizon in periods
_PERIOD_DAYS = {"week": 5, "month": 21, "quarter": 63}


def _rebalancing(points: Any, every: str, horizon: Any) -> tuple[Any, float, str]:
    """The formation dates portfolios are held from, how many there are per year, and how
    they were chosen (in words).

    Period-end images held for that period (the paper's pairs: 5 days / weeks, 20 / months,
    60 / quarters, or the calendar label) are one holding period apart already. Otherwise
    consecutive holdings would overlap and count each day's return several times: only every
    k-th date starts a holding period, k = the horizon in sampling periods (trading days for
    daily images; weeks, months, quarters taken as 5, 21, 63 trading days).
    """
    dates = np.sort(points["date"].unique())
    if every != "day":
        if isinstance(horizon, str):
            return points, periods_per_year(horizon), every
        k = max(1, round(int(horizon) / _PERIOD_DAYS[every]))
        if k == 1:
            return points, periods_per_year(every), every
        return (
            points[points["date"].isin(dates[::k])],
            periods_per_year(every) / k,
            f"every {k}th {every} end ({int(horizon)}-day holding)",
        )
    gap = float(np.median(np.diff(dates) / np.timedelta64(1, "D"))) if len(dates) > 1 else 1.0
    if gap >= 0.9 * int(horizon) * 7 / 5:
        # dates already a holding period apart although not sampled here (e.g. the authors'
        # month-end jkx: images): keep them all, as weeks, months or quarters
        period = "week" if gap <= 10 else "month" if gap <= 45 else "quarter"
        return points, periods_per_year(period), f"every image date (about one a {period})"
    keep = dates[:: int(horizon)]
    return (
        points[points["date"].isin(keep)],
        periods_per_year(int(horizon)),
        f"every {int(horizon)} trading days",
    )


def _absent(reason: str) -> dict:
    return {"portfolios": {"reason": reason}, "benchmarks": {"reason": reason}}


def portfolio_evaluation(
    p_up: np.ndarray,
    charts: Any,
    daily: Any,
    horizon: Any,
    folder: Any = None,
) -> tuple[dict, list]:
    """The paper's evaluation of test predictions: decile portfolios of p_up and of the
    benchmark signals (MOM, STR, WSTR, TREND), written as CSV tables.

    Args:
        p_up: The ensemble's up-probability of each image of ``charts``.
        charts: The test :class:`~convlab.data.ChartSet` (labelled images).
        daily: The daily series the images were drawn from (``ticker, date, close`` and, for
            value weights, ``me``), or None (no benchmarks, no value weights).
        horizon: The label's holding period: trading days or ``"week"`` / ``"month"`` /
            ``"quarter"``.
        folder: Where to write ``CNN_table1.csv``, ``CNN_returns.csv``, ``comparison.csv``
            and ``benchmarks/<signal>_table1.csv`` / ``_returns.csv``; None writes nothing.

    Returns:
        ``(metrics, sorts)``: ``metrics`` holds ``portfolios`` (the CNN's
        :meth:`~convlab.finance.portfolios.DecileSorts.summary`), ``benchmarks`` (one summary
        per signal) and ``comparison`` (H-L statistics per signal), or, under ``portfolios``
        and ``benchmarks``, a ``reason`` when there is no cross-section to sort (fewer than
        ten instruments on every formation date, as in the bundled two-index data); ``sorts``
        lists the :class:`~convlab.finance.portfolios.DecileSorts`, the CNN's first (empty
        without a cross-section).
    """
    from convlab.finance.sampling import MIN_CROSS_SECTION
    from convlab.finance.signals import SIGNALS, benchmark_signals

    if len(charts) == 0:
        return _absent("No test images: nothing to sort into portfolios."), []
    points = _points(p_up, charts)
    widest = int(points.groupby("date").size().max())
    if widest < MIN_CROSS_SECTION:
        return (
            _absent(
                f"No decile portfolios: the test images have at most {widest} instrument(s) "
                f"per date (ten deciles need at least {MIN_CROSS_SECTION}); the bundled data "
                f"are two index series (S&P 500, NASDAQ). Give multi-ticker data (an OHLCV "
                f"table with a ticker column, or crsp:FILE) for the paper's evaluation."
            ),
            [],
        )
    every = str(charts.info.get("every", "day"))
    points, per_year, rebalancing = _rebalancing(points, every, horizon)
    if daily is not None and "me" in daily.columns:
        me = daily[["ticker", "date", "me"]].assign(ticker=daily["ticker"].astype(str))
        points = points.merge(me, on=["ticker", "date"], how="left")
    cnn = decile_portfolios(points, per_year, signal="p_up", name="CNN")
    sorts = [cnn]
    benchmarks: dict = {}
    if daily is None:
        benchmarks["reason"] = "the data source has no daily prices (jkx: image files)"
    else:
        signals = benchmark_signals(daily, points[["ticker", "date"]])
        for name in SIGNALS:
            frame = points.assign(**{name: signals[name].to_numpy()})
            s = decile_portfolios(frame, per_year, signal=name, name=name)
            if len(s.returns) == 0:
                benchmarks[name] = {
                    "reason": f"no formation date has {MIN_CROSS_SECTION} stocks with a "
                    f"{name} value (too little history before the test period)"
                }
                continue
            benchmarks[name] = s.summary()
            sorts.append(s)
    comparison = compare_signals(sorts)
    if folder is not None:
        folder = Path(folder)
        cnn.write_csv(folder)
        write_frame(comparison, folder / "comparison.csv")
        if len(sorts) > 1:
            (folder / "benchmarks").mkdir(exist_ok=True)
        for s in sorts[1:]:
            s.write_csv(folder / "benchmarks")
    metrics = {
        "portfolios": {
            **cnn.summary(),
            "signal": "p_up",
            "rebalancing": rebalancing,
        },
        "benchmarks": benchmarks,
        "comparison": {
            str(name): {str(k): float(v) for k, v in row.items()}
            for name, row in comparison.to_dict(orient="index").items()
        },
    }
    return metrics, sorts


def prediction_deciles(tickers: Any, dates: Any, p_up: np.ndarray) -> np.ndarray:
    """Each prediction's decile of p_up among the predictions of its date: 1 (lowest) .. 10,
    0 where the date has fewer than ten instruments (see
    :func:`convlab.finance.portfolios.assign_deciles`)."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "date": np.asarray(dates),
            "ticker": np.asarray(tickers, dtype=object),
            "signal": np.asarray(p_up, np.float64),
        }
    )
    return assign_deciles(frame).fillna(0).to_numpy(dtype=np.int64)


def json_safe(obj: Any) -> Any:
    """Replace NaN/inf by None so the result is strict JSON."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def daily_frame(data: str) -> Any:
    """The daily series of a ``--data`` source (:func:`convlab.finance.sources.load_daily`,
    read once per process), None for ``jkx:DIR``.

    Raises:
        UserError: Naming ``--data``, for a missing path or a table that cannot be used.
    """
    from convlab.data import OHLCVError
    from convlab.finance.crsp import CRSPError
    from convlab.finance.sources import CRSP_PREFIX, load_daily

    try:
        return load_daily(data)
    except FileNotFoundError:
        path = data[len(CRSP_PREFIX) :] if data.startswith(CRSP_PREFIX) else data
        raise UserError(
            f"--data: {path} does not exist (give an OHLCV CSV / Parquet file or folder, "
            f"crsp:FILE, 'default', 'sp500', 'nasdaq' or jkx:DIR)"
        ) from None
    except (OHLCVError, CRSPError) as err:
        raise UserError(f"--data: {err}") from None
