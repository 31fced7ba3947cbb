"""The price-trend benchmarks the paper sets beside the CNN: MOM, STR, WSTR and TREND.

Each signal is computed from the same daily series the charts are drawn from (the ``close``
column; for CRSP data the return-chained close, so dividends count), at the same formation
points (stock, date), and sorted into deciles the same way (:mod:`convlab.finance.portfolios`).
Months are 21 trading days and a year 252, since the series are daily. Every signal is signed
so that a *high* value is the side the strategy buys (decile 10 is long in H-L):

* ``MOM`` (2-12 month momentum): ``close[t-21] / close[t-252] - 1``, the return from twelve
  months to one month ago (the last month is skipped, as in Jegadeesh-Titman style momentum).
* ``STR`` (short-term reversal, one month): ``-(close[t] / close[t-21] - 1)``: last month's
  losers are bought.
* ``WSTR`` (weekly short-term reversal): ``-(close[t] / close[t-5] - 1)``.
* ``TREND`` (Han, Zhou & Zhu 2016): normalised moving averages ``A[L] = MA_L(close) / close``
  for lags ``L`` = 3, 5, 10, 20, 50, 100, 200, 400, 600, 800, 1000 days. At every formation date
  ``t`` the stocks' returns since the previous formation date are regressed cross-sectionally
  (OLS with an intercept) on their ``A`` at that previous date, giving slopes ``b[t]``; the
  signal is ``mean(b[t-11..t]) . A[t]``, the average of the last 12 slopes (``average``) applied
  to today's averages: only information up to ``t`` is used.

Missing data: a close that is missing on a needed day makes the signal missing for that point
(MOM, STR, WSTR); for the moving averages a day without a close carries the last close forward
(no trade: the last price stands), and so does TREND's return between formation dates; an
average needs its full ``L`` days of history. A TREND regression needs more stocks than
regressors (``len(lags) + 2``); with fewer, that date has no slope.

Example:
    >>> import numpy as np, pandas as pd
    >>> days = pd.bdate_range("2020-01-01", periods=30)
    >>> daily = pd.DataFrame({"ticker": "A", "date": days, "close": 1.01 ** np.arange(30)})
    >>> points = daily.iloc[[29]][["ticker", "date"]]
    >>> round(float(benchmark_signals(daily, points, names=("WSTR",))["WSTR"].iloc[0]), 6)
    -0.05101
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["benchmark_signals", "SIGNALS", "TREND_LAGS", "MONTH", "YEAR", "WEEK"]

#: The benchmark signals, in the paper's order.
SIGNALS = ("MOM", "STR", "WSTR", "TREND")
#: Han, Zhou & Zhu's moving-average lags (trading days).
TREND_LAGS = (3, 5, 10, 20, 50, 100, 200, 400, 600, 800, 1000)
#: Trading days per week, month and year.
WEEK, MONTH, YEAR = 5, 21, 252


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("convlab.finance needs pandas: pip install 'convlab[data]'") from None
    return pandas


def _lagged(close: np.ndarray, at: np.ndarray, lag: int) -> np.ndarray:
    """``close[at - lag]`` (NaN where that is before the series starts)."""
    src = at - lag
    out = np.full(len(at), np.nan)
    ok = src >= 0
    out[ok] = close[src[ok]]
    return out


def _moving_averages(close: np.ndarray, at: np.ndarray, lags: tuple) -> np.ndarray:
    """(len(at), len(lags)) of ``MA_L / close`` with closes carried forward over gaps."""
    pd = _pandas()
    filled = pd.Series(close).ffill()
    out = np.empty((len(at), len(lags)))
    for j, lag in enumerate(lags):
        ma = filled.rolling(lag, min_periods=lag).mean().to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, j] = ma[at] / filled.to_numpy()[at]
    return out


def _trend(points: Any, averages: np.ndarray, closes: np.ndarray, average: int) -> np.ndarray:
    """TREND at every point from its normalised averages and close (module notes)."""
    n_lags = averages.shape[1]
    days = np.sort(points["date"].unique())
    position = {d: i for i, d in enumerate(days)}
    period = points["date"].map(position).to_numpy()
    tickers = points["ticker"].to_numpy()
    by_key = {(tickers[i], period[i]): i for i in range(len(points))}
    slopes = np.full((len(days), n_lags), np.nan)
    for t in range(1, len(days)):
        rows, prev = [], []
        for i in np.flatnonzero(period == t):
            j = by_key.get((tickers[i], t - 1))
            if j is not None:
                rows.append(i)
                prev.append(j)
        if not rows:
            continue
        rows_a, prev_a = np.asarray(rows), np.asarray(prev)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = closes[rows_a] / closes[prev_a] - 1.0
        x = averages[prev_a]
        ok = np.isfinite(r) & np.isfinite(x).all(axis=1)
        if ok.sum() < n_lags + 2:
            continue
        design = np.column_stack([np.ones(int(ok.sum())), x[ok]])
        coef = np.linalg.lstsq(design, r[ok], rcond=None)[0]
        slopes[t] = coef[1:]
    expected = np.full((len(days), n_lags), np.nan)
    for t in range(average - 1, len(days)):
        window = slopes[t - average + 1 : t + 1]
        if np.isfinite(window).all():
            expected[t] = window.mean(axis=0)
    return np.einsum("ij,ij->i", expected[period], averages)


def benchmark_signals(
    daily: Any,
    points: Any,
    names: tuple = SIGNALS,
    trend_lags: tuple = TREND_LAGS,
    average: int = 12,
) -> Any:
    """The benchmark signals at each formation point.

    Args:
        daily: The daily series: columns ``ticker``, ``date``, ``close`` (e.g. from
            :func:`convlab.finance.crsp.read_crsp` or :func:`convlab.data.load_ohlcv`),
            one row per stock and trading day.
        points: Formation points: columns ``ticker`` and ``date`` (each a trading day of that
            stock in ``daily``; other dates get missing signals).
        names: Which of ``"MOM"``, ``"STR"``, ``"WSTR"``, ``"TREND"`` to compute.
        trend_lags: TREND's moving-average lags in trading days.
        average: TREND's number of past slopes averaged (12 formation dates).

    Returns:
        A copy of ``points`` (same index) with one float column per signal (NaN where it is
        unknown), signed so that high values are bought (module notes).

    Raises:
        ValueError: For an unknown signal name, missing columns, empty or non-integer lags,
            or ``average`` below 1.
    """
    pd = _pandas()
    unknown = [n for n in names if n not in SIGNALS]
    if unknown:
        raise ValueError(f"names: unknown signal(s) {unknown}; expected some of {SIGNALS}")
    for where, frame, need in (
        ("daily", daily, ("ticker", "date", "close")),
        ("points", points, ("ticker", "date")),
    ):
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise ValueError(f"{where}: missing column(s) {missing}; found {list(frame.columns)}")
    lags = tuple(int(v) for v in trend_lags)
    if not lags or any(v < 1 for v in lags) or any(int(v) != v for v in trend_lags):
        raise ValueError(f"trend_lags: expected positive whole numbers of days, got {trend_lags!r}")
    if isinstance(average, bool) or not isinstance(average, (int, np.integer)) or average < 1:
        raise ValueError(f"average: expected an int >= 1, got {average!r}")
    out = points.copy()
    pts = pd.DataFrame(
        {
            "ticker": points["ticker"].astype(str).to_numpy(),
            "date": pd.to_datetime(points["date"]).to_numpy(),
        }
    )
    n = len(pts)
    values = {name: np.full(n, np.nan) for name in names}
    closes = np.full(n, np.nan)
    averages = np.full((n, len(lags)), np.nan)
    groups = pts.groupby("ticker", sort=False).indices
    daily_t = daily.assign(ticker=daily["ticker"].astype(str), date=pd.to_datetime(daily["date"]))
    for ticker, series in daily_t.groupby("ticker", sort=False):
        rows = groups.get(ticker)
        if rows is None:
            continue
        series = series.sort_values("date")
        dates = series["date"].to_numpy()
        close = series["close"].to_numpy(dtype=np.float64)
        want = pts["date"].to_numpy()[rows]
        at = np.searchsorted(dates, want)
        found = (at < len(dates)) & (dates[np.minimum(at, len(dates) - 1)] == want)
        rows, at = rows[found], at[found]
        now = close[at]
        # TREND's period returns, like its averages, take the last close over a gap
        closes[rows] = pd.Series(close).ffill().to_numpy()[at]
        with np.errstate(invalid="ignore", divide="ignore"):
            if "MOM" in values:
                values["MOM"][rows] = _lagged(close, at, MONTH) / _lagged(close, at, YEAR) - 1
            if "STR" in values:
                values["STR"][rows] = -(now / _lagged(close, at, MONTH) - 1)
            if "WSTR" in values:
                values["WSTR"][rows] = -(now / _lagged(close, at, WEEK) - 1)
        if "TREND" in values:
            averages[rows] = _moving_averages(close, at, lags)
    if "TREND" in values:
        values["TREND"] = _trend(pts, averages, closes, average)
    for name in names:
        out[name] = values[name]
    return out
