"""MOM / STR / WSTR on constructed series with known values; TREND against a reference written
here (pandas rolling means + NumPy least squares)."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from convlab.finance import portfolios as pf  # noqa: E402
from convlab.finance.signals import benchmark_signals  # noqa: E402


def _linear(ticker: str, days: int, slope: float) -> object:
    """close[k] = 100 + slope * k on consecutive business days."""
    dates = pd.bdate_range("2010-01-04", periods=days)
    return pd.DataFrame({"ticker": ticker, "date": dates, "close": 100.0 + slope * np.arange(days)})


def test_mom_str_wstr_by_hand():
    daily = pd.concat([_linear("A", 300, 1.0), _linear("B", 300, -0.2)], ignore_index=True)
    points = daily[daily.index.isin([299, 260, 100, 300 + 299])][["ticker", "date"]]
    got = benchmark_signals(daily, points, names=("MOM", "STR", "WSTR"))
    a = got.loc[299]
    # A at k = 299: close 399; k-21 = 278 -> 378; k-252 = 47 -> 147; k-5 = 294 -> 394
    assert a["MOM"] == pytest.approx(378 / 147 - 1)
    assert a["STR"] == pytest.approx(-(399 / 378 - 1))
    assert a["WSTR"] == pytest.approx(-(399 / 394 - 1))
    b = got.loc[599]  # B: close 100 - 0.2 k
    assert b["MOM"] == pytest.approx((100 - 0.2 * 278) / (100 - 0.2 * 47) - 1)
    assert b["STR"] == pytest.approx(-((100 - 0.2 * 299) / (100 - 0.2 * 278) - 1))
    # k = 100 is less than a year in: no MOM, but STR and WSTR
    early = got.loc[100]
    assert np.isnan(early["MOM"])
    assert early["WSTR"] == pytest.approx(-(200 / 195 - 1))
    assert got.loc[260, "MOM"] == pytest.approx(339 / 108 - 1)


def test_missing_close_makes_the_signal_missing():
    daily = _linear("A", 300, 1.0)
    daily.loc[278, "close"] = np.nan  # the day MOM's numerator and STR's base need
    points = daily.iloc[[299, 298]][["ticker", "date"]]
    got = benchmark_signals(daily, points, names=("MOM", "STR", "WSTR"))
    assert np.isnan(got.loc[299, "MOM"]) and np.isnan(got.loc[299, "STR"])
    assert got.loc[299, "WSTR"] == pytest.approx(-(399 / 394 - 1))
    assert got.loc[298, "MOM"] == pytest.approx(377 / 146 - 1)


def _trend_reference(daily, points, lags, average):
    """Han-Zhou-Zhu TREND written directly: rolling means on a wide table, one lstsq per date."""
    wide = daily.pivot(index="date", columns="ticker", values="close").ffill()
    norm = {lag: wide.rolling(lag, min_periods=lag).mean() / wide for lag in lags}
    days = sorted(points["date"].unique())
    held = {d: set(points.loc[points["date"] == d, "ticker"]) for d in days}
    slopes = {}
    for prev, day in zip(days[:-1], days[1:]):
        names = sorted(held[prev] & held[day])
        r = (wide.loc[day, names] / wide.loc[prev, names] - 1).to_numpy()
        x = np.column_stack([norm[lag].loc[prev, names].to_numpy() for lag in lags])
        ok = np.isfinite(r) & np.isfinite(x).all(1)
        if ok.sum() >= len(lags) + 2:
            design = np.column_stack([np.ones(ok.sum()), x[ok]])
            slopes[day] = np.linalg.lstsq(design, r[ok], rcond=None)[0][1:]
    out = []
    for _, row in points.iterrows():
        k = days.index(row["date"])
        window = days[k - average + 1 : k + 1] if k >= average - 1 else []
        if len(window) < average or any(d not in slopes for d in window):
            out.append(np.nan)
            continue
        beta = np.mean([slopes[d] for d in window], axis=0)
        a = np.array([norm[lag].loc[row["date"], row["ticker"]] for lag in lags])
        out.append(float(beta @ a))
    return np.array(out)


def test_trend_against_reference():
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2012-01-02", periods=260)
    frames = []
    for i in range(30):
        close = 50 * np.cumprod(1 + rng.normal(0.0005, 0.02, len(dates)))
        start = int(rng.integers(0, 40))  # stocks list at different times
        frames.append(
            pd.DataFrame({"ticker": f"S{i:02d}", "date": dates[start:], "close": close[start:]})
        )
    daily = pd.concat(frames, ignore_index=True)
    daily.loc[rng.choice(len(daily), 40, replace=False), "close"] = np.nan  # gaps
    ends = daily["date"].dt.to_period("W").ne(daily["date"].dt.to_period("W").shift(-1))
    points = daily.loc[ends, ["ticker", "date"]]
    lags = (3, 5, 10, 20)
    got = benchmark_signals(daily, points, names=("TREND",), trend_lags=lags, average=4)
    expected = _trend_reference(daily, points, lags, 4)
    assert np.isfinite(expected).sum() > 500
    np.testing.assert_allclose(got["TREND"].to_numpy(), expected, rtol=1e-9, atol=1e-12)


def test_signals_sort_into_deciles_like_the_cnn():
    # 20 stocks with constant daily growth g_i: WSTR = -(growth over 5 days), so the two
    # fastest growers form decile 1 and the two slowest decile 10; H-L buys the slowest
    dates = pd.bdate_range("2015-01-05", periods=40)
    rates = np.linspace(-0.01, 0.01, 20)
    daily = pd.concat(
        [
            pd.DataFrame({"ticker": f"T{i}", "date": dates, "close": (1 + g) ** np.arange(40)})
            for i, g in enumerate(rates)
        ],
        ignore_index=True,
    )
    points = daily[daily["date"] == dates[19]][["ticker", "date"]].copy()
    sig = benchmark_signals(daily, points, names=("WSTR",))
    sig["ret"] = (1 + rates) ** 5 - 1
    sorts = pf.decile_portfolios(sig, periods_per_year=52, signal="WSTR", weight=None)
    low, high = (1 + rates[18:]) ** 5 - 1, (1 + rates[:2]) ** 5 - 1
    assert sorts.returns["EW H-L"].iloc[0] == pytest.approx(high.mean() - low.mean())


def test_bad_arguments():
    daily = _linear("A", 30, 1.0)
    with pytest.raises(ValueError, match="unknown signal"):
        benchmark_signals(daily, daily[["ticker", "date"]], names=("RSI",))
    with pytest.raises(ValueError, match="daily: missing column"):
        benchmark_signals(daily.drop(columns="close"), daily[["ticker", "date"]])
    with pytest.raises(ValueError, match="trend_lags"):
        benchmark_signals(daily, daily[["ticker", "date"]], trend_lags=())
