"""Decile portfolios against an independent pandas implementation (groupby + qcut) written here."""

from __future__ import annotations

import math

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from convlab.finance import portfolios as pf  # noqa: E402


def _universe(seed: int = 0, periods: int = 24, stocks: int = 37) -> object:
    """Random signals / returns / market equity, with ties, gaps and thin periods."""
    rng = np.random.default_rng(seed)
    rows = []
    dates = pd.date_range("2015-01-31", periods=periods, freq="ME")
    for t, day in enumerate(dates):
        n = 7 if t == 5 else stocks  # one period with too few stocks
        names = rng.choice(stocks + 10, n, replace=False)  # stocks come and go
        signal = np.round(rng.uniform(0, 1, n), 3)  # 3 decimals: the odd chance tie
        signal[:3] = -1.0  # a tie group of three (at the bottom: no qcut edge inside)
        ret = rng.normal(0.01, 0.08, n)
        ret[rng.uniform(size=n) < 0.05] = np.nan  # missing returns
        me = rng.lognormal(5, 1, n)
        me[rng.uniform(size=n) < 0.05] = np.nan  # missing market equity
        for k in range(n):
            rows.append((day, f"S{names[k]}", signal[k], ret[k], me[k]))
    return pd.DataFrame(rows, columns=["date", "ticker", "signal", "ret", "me"])


def _reference(frame: object, min_stocks: int = 10) -> tuple:
    """Decile returns and per-date weights, written independently with groupby + qcut."""
    data = frame.dropna(subset=["signal", "ret"]).copy()
    sizes = data.groupby("date")["ticker"].transform("size")
    data = data[sizes >= min_stocks].copy()
    data["decile"] = data.groupby("date")["signal"].transform(
        lambda s: pd.qcut(s, 10, labels=False) + 1
    )
    ew = data.groupby(["date", "decile"])["ret"].mean().unstack()
    vw_data = data[data["me"] > 0].copy()
    vw_data["me_ret"] = vw_data["me"] * vw_data["ret"]
    g = vw_data.groupby(["date", "decile"])
    vw = (g["me_ret"].sum() / g["me"].sum()).unstack()
    return data, ew, vw


def _reference_turnover(data: object, value: bool, deciles: list) -> float:
    """The paper's turnover (M = 1, or 2 for a long-short pair of deciles) written in pandas."""
    weights = {}
    rets = {}
    for day, g in data.groupby("date"):
        rets[day] = g.set_index("ticker")["ret"]
        w = pd.Series(0.0, index=g["ticker"].to_numpy())
        for sign, k in deciles:
            sel = g[g["decile"] == k]
            if value:
                sel = sel[sel["me"] > 0]
                part = sel.set_index("ticker")["me"] / sel["me"].sum()
            else:
                part = pd.Series(1.0 / len(sel), index=sel["ticker"].to_numpy())
            w = w.add(sign * part, fill_value=0.0)
        weights[day] = w[w != 0]
    days = sorted(weights)
    terms = []
    for a, b in zip(days[:-1], days[1:]):
        wa, wb, ra = weights[a], weights[b], rets[a]
        growth = 1 + (wa * ra.reindex(wa.index)).sum()
        drifted = wa * (1 + ra.reindex(wa.index)) / growth
        diff = wb.reindex(wb.index.union(drifted.index), fill_value=0.0) - drifted.reindex(
            wb.index.union(drifted.index), fill_value=0.0
        )
        terms.append(diff.abs().sum() / len(deciles))
    return float(np.mean(terms))


def test_assign_deciles_matches_qcut_and_ties_share_a_decile():
    frame = _universe(1)
    got = pf.assign_deciles(frame, "signal")
    data = frame.dropna(subset=["signal"])
    for _day, g in data.groupby("date"):
        if len(g) < 10:
            assert got[g.index].isna().all()
            continue
        expected = pd.qcut(g["signal"], 10, labels=False) + 1
        np.testing.assert_array_equal(got[g.index].to_numpy(), expected.to_numpy())
        first = g.index[:3]  # the tie group of three
        assert got[first].nunique() == 1


def test_deciles_when_qcut_refuses_many_ties():
    # 12 stocks, 8 of them tied: qcut has duplicate edges; ranks "min" decide
    frame = pd.DataFrame(
        {"date": "2020-01-31", "ticker": list("abcdefghijkl"), "signal": [0.5] * 8 + [1, 2, 3, 4]}
    )
    with pytest.raises(ValueError):
        pd.qcut(frame["signal"], 10, labels=False)
    got = pf.assign_deciles(frame)
    # rank min: tied = 1, then 9, 10, 11, 12; decile = max(1, ceil((rank-1)*10/11))
    expected = [1] * 8 + [math.ceil(8 * 10 / 11), math.ceil(90 / 11), math.ceil(100 / 11), 10]
    np.testing.assert_array_equal(got.to_numpy(), expected)


def test_decile_returns_against_pandas_reference():
    frame = _universe(2)
    sorts = pf.decile_portfolios(frame, periods_per_year=12)
    data, ew, vw = _reference(frame)
    assert list(sorts.returns.index) == sorted(data["date"].unique())
    assert sorts.skipped == [pd.Timestamp(frame["date"].unique()[5])]
    for k in range(1, 11):
        np.testing.assert_allclose(sorts.returns[f"EW {k}"], ew[k].reindex(sorts.returns.index))
        np.testing.assert_allclose(sorts.returns[f"VW {k}"], vw[k].reindex(sorts.returns.index))
    np.testing.assert_allclose(sorts.returns["EW H-L"], (ew[10] - ew[1]).to_numpy())
    np.testing.assert_allclose(sorts.returns["VW H-L"], (vw[10] - vw[1]).to_numpy())
    counts = data.groupby("date").size()
    np.testing.assert_array_equal(sorts.counts.to_numpy(), counts.to_numpy())


def test_sharpe_volatility_and_table_layout():
    frame = _universe(3)
    sorts = pf.decile_portfolios(frame, periods_per_year=12)
    _, ew, vw = _reference(frame)
    table = sorts.table()
    assert list(table.index) == ["Low", "2", "3", "4", "5", "6", "7", "8", "9", "High", "H-L"]
    assert list(table.columns) == [
        "EW Ret", "EW SD", "EW SR", "EW Turnover", "VW Ret", "VW SD", "VW SR", "VW Turnover",
    ]  # fmt: skip
    for prefix, ref in (("EW", ew), ("VW", vw)):
        hl = (ref[10] - ref[1]).dropna()
        mean, sd = hl.mean() * 12, hl.std(ddof=1) * math.sqrt(12)
        assert table.loc["H-L", f"{prefix} Ret"] == pytest.approx(mean)
        assert table.loc["H-L", f"{prefix} SD"] == pytest.approx(sd)
        assert table.loc["H-L", f"{prefix} SR"] == pytest.approx(mean / sd)
        low = ref[1].dropna()
        assert table.loc["Low", f"{prefix} Ret"] == pytest.approx(low.mean() * 12)
    summary = sorts.summary()
    assert summary["EW"]["hl_sharpe"] == pytest.approx(table.loc["H-L", "EW SR"])
    assert summary["skipped_periods"] == 1


def test_turnover_against_pandas_reference():
    frame = _universe(4)
    sorts = pf.decile_portfolios(frame, periods_per_year=12)
    data, _, _ = _reference(frame)
    for value, prefix in ((False, "EW"), (True, "VW")):
        assert sorts.turnover.loc["H-L", prefix] == pytest.approx(
            _reference_turnover(data, value, [(1, 10), (-1, 1)])
        )
        for k in (1, 5, 10):
            assert sorts.turnover.loc[str(k), prefix] == pytest.approx(
                _reference_turnover(data, value, [(1, k)])
            )


def test_turnover_by_hand():
    # two stocks per decile, two dates; decile 10 keeps one stock and swaps the other
    day1 = pd.DataFrame(
        {"date": "2020-01-31", "ticker": [f"T{i}" for i in range(20)], "signal": range(20)}
    )
    day1["ret"] = 0.0
    day1.loc[19, "ret"] = 1.0  # T19 doubles
    day2 = day1.copy()
    day2["date"] = "2020-02-29"
    day2["signal"] = list(range(17)) + [18, 17, 19]  # T17 and T18 swap around the edge
    day2["signal"] = day2["signal"].astype(float)
    day2.loc[18, "signal"] = 17.5  # T18 now below T17: T17 (17 -> 18) enters decile 10
    sorts = pf.decile_portfolios(pd.concat([day1, day2]), periods_per_year=12, weight=None)
    # decile 10 on day 1: T18, T19 at 1/2 each; T19 doubles -> drifted 1/3, 2/3
    # day 2: T17 and T19 (signals 18.0 and 19): |1/2 - 0| + |0 - 1/3| + |1/2 - 2/3| = 1
    assert sorts.turnover.loc["10", "EW"] == pytest.approx(1.0)
    assert np.isnan(sorts.returns["VW 10"]).all()


def test_compare_signals_and_csv(tmp_path):
    a = pf.decile_portfolios(_universe(5), periods_per_year=12, name="CNN")
    b = pf.decile_portfolios(_universe(6), periods_per_year=12, name="MOM")
    table = pf.compare_signals([a, b])
    assert list(table.index) == ["CNN", "MOM"]
    assert table.loc["MOM", "EW SR"] == pytest.approx(b.table().loc["H-L", "EW SR"])
    paths = a.write_csv(tmp_path)
    back = pd.read_csv(paths["table1"], index_col=0)
    np.testing.assert_allclose(back.to_numpy(), a.table().to_numpy(), equal_nan=True)
    assert pd.read_csv(paths["returns"]).shape[0] == len(a.returns)


def test_cumulative_and_periods_per_year():
    sorts = pf.decile_portfolios(_universe(7), periods_per_year=52)
    cum = sorts.cumulative("EW")
    assert cum.iloc[-1] == pytest.approx(sorts.returns["EW H-L"].sum())
    assert pf.periods_per_year("week") == 52 and pf.periods_per_year(20) == 12.6
    with pytest.raises(ValueError, match="period"):
        pf.periods_per_year("year")


def test_bad_input_is_named():
    frame = _universe(8)
    with pytest.raises(ValueError, match="missing column"):
        pf.decile_portfolios(frame.drop(columns="ret"), periods_per_year=12)
    with pytest.raises(ValueError, match="repeats"):
        pf.decile_portfolios(pd.concat([frame, frame.iloc[:1]]), periods_per_year=12)
    with pytest.raises(ValueError, match="min_stocks"):
        pf.decile_portfolios(frame, periods_per_year=12, min_stocks=5)
