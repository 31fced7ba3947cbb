"""Decile portfolios sorted on a signal, as Jiang, Kelly & Xiu evaluate the chart CNN.

Each period (a formation date), the stocks with a known signal and a known holding-period return
are ranked on the signal and split into ten deciles; decile 10 ("High") holds the highest signal,
and H-L is decile 10 minus decile 1. Every decile is held equal-weighted (EW) and value-weighted
(VW, weights = market equity at formation) for one holding period.

Rules (what the paper leaves to the implementation):

* **Deciles.** A stock's decile is the bin ``pandas.qcut(signal, 10)`` puts it in: with ``N``
  stocks and ``rank`` counted from 1 with ties at their lowest position (``method="min"``),
  ``decile = max(1, ceil((rank - 1) * 10 / (N - 1)))``. With distinct signals the deciles hold
  ``N / 10`` stocks each (sizes differ by at most one); tied signals always share a decile, which
  may leave a neighbouring decile empty that period (its return is then missing, not zero).
  Where ``pandas.qcut`` refuses (many ties: duplicate bin edges) the formula still applies.
* **Too few stocks.** A period with fewer than ``min_stocks`` (default 10) sortable stocks is
  left out entirely (listed in :attr:`DecileSorts.skipped`): ten deciles need ten stocks.
* **Missing data.** A stock whose signal or holding-period return is missing is not sorted that
  period (it cannot be held with an unknown return). For VW, a stock without a positive market
  equity keeps its decile but carries no weight; a decile without any weight has no VW return.
* **Statistics.** Annualised mean = mean period return x periods per year; volatility = sample
  standard deviation (ddof 1) x sqrt(periods per year); Sharpe = their ratio (no risk-free rate
  is subtracted: H-L is a zero-investment portfolio). Periods where a portfolio has no return
  are left out of its statistics.
* **Turnover** (the paper's definition, averaged over consecutive formation dates)::

      turnover = 1/M * 1/(T-1) * sum_t sum_i | w[i,t+1] - w[i,t] (1 + r[i,t+1])
                                                         / (1 + sum_j w[j,t] r[j,t+1]) |

  with ``M = 1`` for a decile (long only, weights summing to 1) and ``M = 2`` for H-L (weights
  +1 on decile 10 and -1 on decile 1); ``r[i,t+1]`` is stock i's return over the holding period
  that starts at t; a stock absent at t+1 has weight 0 there. Pairs of formation dates where
  either portfolio is empty are skipped.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"date": ["2020-01-31"] * 10, "ticker": list("abcdefghij"),
    ...                       "signal": range(10), "ret": [0.01 * k for k in range(10)]})
    >>> sorts = decile_portfolios(frame, periods_per_year=12)
    >>> float(sorts.returns.loc[pd.Timestamp("2020-01-31"), "EW H-L"])
    0.09
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convlab._atomic import atomic_open

__all__ = [
    "DecileSorts",
    "assign_deciles",
    "decile_portfolios",
    "compare_signals",
    "periods_per_year",
    "write_frame",
    "PORTFOLIOS",
    "WEIGHTINGS",
]

#: Portfolio names in column order: deciles "1" (Low) .. "10" (High), then "H-L".
PORTFOLIOS = [str(k) for k in range(1, 11)] + ["H-L"]
#: Weighting prefixes of the return columns: equal and value weights.
WEIGHTINGS = ("EW", "VW")
_ROW_NAMES = ["Low"] + [str(k) for k in range(2, 10)] + ["High", "H-L"]
_CALENDAR = {"week": 52.0, "month": 12.0, "quarter": 4.0}
_TRADING_DAYS = 252.0


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("convlab.finance needs pandas: pip install 'convlab[data]'") from None
    return pandas


def periods_per_year(period: str | int) -> float:
    """Holding periods per year: 52 / 12 / 4 for ``"week"`` / ``"month"`` / ``"quarter"``,
    ``252 / h`` for a horizon of ``h`` trading days.

    Raises:
        ValueError: For another name or a horizon below 1.
    """
    if isinstance(period, str):
        if period not in _CALENDAR:
            raise ValueError(
                f"period: expected 'week', 'month', 'quarter' or a number of trading days, "
                f"got {period!r}"
            )
        return _CALENDAR[period]
    if isinstance(period, bool) or not isinstance(period, (int, np.integer)) or period < 1:
        raise ValueError(f"period: expected a number of trading days >= 1, got {period!r}")
    return _TRADING_DAYS / int(period)


def _decile_of_ranks(ranks: np.ndarray, n_groups: int) -> np.ndarray:
    """``max(1, ceil((rank - 1) * n / (N - 1)))`` for "min" ranks, in integer arithmetic so
    that a stock exactly on a bin edge is never moved by rounding."""
    below = np.rint(ranks).astype(np.int64) - 1
    return np.maximum(1, -(-(below * n_groups) // (len(ranks) - 1)))


def assign_deciles(
    frame: Any,
    signal: str = "signal",
    date: str = "date",
    n_groups: int = 10,
    min_stocks: int = 10,
) -> Any:
    """The decile (1 = lowest signal .. ``n_groups``) of every row within its date.

    Args:
        frame: A DataFrame with a ``date`` and a ``signal`` column.
        signal: The column sorted on.
        date: The column naming the period.
        n_groups: Number of groups (10: deciles).
        min_stocks: Dates with fewer rows with a signal get no decile.

    Returns:
        A float Series aligned with ``frame`` (NaN where the signal is missing or the date has
        too few stocks); see the module notes for ties.

    Raises:
        ValueError: For a missing column or ``n_groups`` / ``min_stocks`` below 2 or
            ``min_stocks < n_groups``.
    """
    pd = _pandas()
    _check_columns(frame, (date, signal), "frame")
    _check_counts(n_groups, min_stocks)
    values = pd.to_numeric(frame[signal], errors="coerce").astype(float)
    out = pd.Series(np.nan, index=frame.index, dtype=float)
    usable = values.notna() & np.isfinite(values)
    for _, rows in values[usable].groupby(frame.loc[usable, date], sort=False):
        if len(rows) < min_stocks:
            continue
        ranks = rows.rank(method="min").to_numpy()
        out.loc[rows.index] = _decile_of_ranks(ranks, n_groups).astype(float)
    return out


@dataclass
class DecileSorts:
    """Returns and statistics of the decile portfolios of one signal.

    Attributes:
        returns: One row per formation date (index ``date``, sorted); columns ``"EW 1"`` ..
            ``"EW 10"``, ``"EW H-L"``, ``"VW 1"`` .. ``"VW H-L"``: the portfolios' returns over
            the holding period that starts at that date (NaN where a portfolio is empty).
        counts: Stocks sorted per formation date (Series, same index).
        turnover: Average turnover (rows ``"1"`` .. ``"10"``, ``"H-L"``; columns ``"EW"``,
            ``"VW"``), the paper's definition (module notes).
        periods_per_year: Used to annualise.
        skipped: Formation dates left out for having fewer than ``min_stocks`` stocks.
        name: The signal's name (a label in comparison tables).
    """

    returns: Any
    counts: Any
    turnover: Any
    periods_per_year: float
    skipped: list = field(default_factory=list)
    name: str = "signal"

    def stats(self, weighting: str = "EW") -> Any:
        """Annualised mean, volatility and Sharpe of each portfolio.

        Returns:
            DataFrame indexed by portfolio (``"1"`` .. ``"10"``, ``"H-L"``) with columns
            ``ret``, ``sd``, ``sr``, ``periods``.

        Raises:
            ValueError: For a weighting other than ``"EW"`` / ``"VW"``.
        """
        pd = _pandas()
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting: expected 'EW' or 'VW', got {weighting!r}")
        rows = {}
        for p in PORTFOLIOS:
            rows[p] = _annualise(self.returns[f"{weighting} {p}"].to_numpy(), self.periods_per_year)
        table = pd.DataFrame.from_dict(rows, orient="index", columns=["ret", "sd", "sr", "periods"])
        table.index.name = "portfolio"
        return table

    def table(self) -> Any:
        """The paper's Table-1 layout: deciles as rows, EW and VW statistics as columns.

        Returns:
            DataFrame with index ``"Low"``, ``"2"`` .. ``"9"``, ``"High"``, ``"H-L"`` (name
            ``decile``) and columns ``"EW Ret"``, ``"EW SD"``, ``"EW SR"``, ``"EW Turnover"``,
            ``"VW Ret"``, ``"VW SD"``, ``"VW SR"``, ``"VW Turnover"`` (annualised mean return
            and volatility as fractions, Sharpe ratio, average turnover per period).
        """
        pd = _pandas()
        columns = {}
        for w in WEIGHTINGS:
            s = self.stats(w)
            columns[f"{w} Ret"] = s["ret"].to_numpy()
            columns[f"{w} SD"] = s["sd"].to_numpy()
            columns[f"{w} SR"] = s["sr"].to_numpy()
            columns[f"{w} Turnover"] = self.turnover[w].to_numpy()
        table = pd.DataFrame(columns, index=pd.Index(_ROW_NAMES, name="decile"))
        return table[[f"{w} {c}" for w in WEIGHTINGS for c in ("Ret", "SD", "SR", "Turnover")]]

    def cumulative(self, weighting: str = "EW", portfolio: str = "H-L") -> Any:
        """Cumulative sum of a portfolio's period returns (missing periods add 0), indexed by
        formation date: what a long-short return plot shows.

        Raises:
            ValueError: For an unknown weighting or portfolio.
        """
        column = f"{weighting} {portfolio}"
        if weighting not in WEIGHTINGS or portfolio not in PORTFOLIOS:
            raise ValueError(
                f"weighting / portfolio: expected one of {WEIGHTINGS} and {PORTFOLIOS}, "
                f"got {weighting!r} / {portfolio!r}"
            )
        return self.returns[column].fillna(0.0).cumsum().rename(f"{self.name} {column}")

    def summary(self) -> dict:
        """Plain numbers for ``metrics.json``: per weighting the H-L annualised return,
        volatility, Sharpe and turnover, plus the decile mean returns (annualised)."""
        out: dict = {
            "periods": int(len(self.returns)),
            "skipped_periods": len(self.skipped),
            "periods_per_year": float(self.periods_per_year),
            "mean_stocks": float(self.counts.mean()) if len(self.counts) else math.nan,
        }
        for w in WEIGHTINGS:
            s = self.stats(w)
            out[w] = {
                "hl_return": float(s.loc["H-L", "ret"]),
                "hl_volatility": float(s.loc["H-L", "sd"]),
                "hl_sharpe": float(s.loc["H-L", "sr"]),
                "hl_turnover": float(self.turnover.loc["H-L", w]),
                "decile_returns": [float(v) for v in s["ret"].to_numpy()[:10]],
            }
        return out

    def write_csv(self, folder: Any, prefix: str | None = None, overwrite: bool = True) -> dict:
        """Write ``<prefix>_table1.csv`` (the Table-1 layout) and ``<prefix>_returns.csv``
        (period returns) into ``folder`` atomically; returns ``{kind: path}``."""
        prefix = self.name if prefix is None else prefix
        folder = Path(folder)
        paths = {
            "table1": folder / f"{prefix}_table1.csv",
            "returns": folder / f"{prefix}_returns.csv",
        }
        write_frame(self.table(), paths["table1"], overwrite)
        returns = self.returns.copy()
        returns.insert(0, "stocks", self.counts)
        write_frame(returns, paths["returns"], overwrite)
        return paths


def write_frame(frame: Any, path: Any, overwrite: bool = True) -> None:
    """Write a DataFrame (with its index) as CSV atomically."""
    with atomic_open(Path(path), "w", overwrite=overwrite, newline="") as handle:
        frame.to_csv(handle)


def _annualise(r: np.ndarray, per_year: float) -> tuple:
    r = r[np.isfinite(r)]
    if len(r) == 0:
        return (math.nan, math.nan, math.nan, 0)
    if len(r) == 1:  # a mean, but no spread to measure
        return (float(r[0] * per_year), math.nan, math.nan, 1)
    mean, sd = r.mean() * per_year, r.std(ddof=1) * math.sqrt(per_year)
    return (float(mean), float(sd), float(mean / sd) if sd > 0 else math.nan, int(len(r)))


def _check_columns(frame: Any, names: tuple, where: str) -> None:
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; found {list(frame.columns)}")


def _check_counts(n_groups: int, min_stocks: int) -> None:
    for name, value in (("n_groups", n_groups), ("min_stocks", min_stocks)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
            raise ValueError(f"{name}: expected an int >= 2, got {value!r}")
    if min_stocks < n_groups:
        raise ValueError(
            f"min_stocks: expected at least n_groups ({n_groups}) stocks, got {min_stocks}"
        )


class _Holding:
    """One formation date's sorted stocks: ticker codes, returns, deciles and each stock's
    weight inside its decile (equal, and by market equity: 0 without one)."""

    def __init__(self, codes: np.ndarray, ret: np.ndarray, deciles: np.ndarray, me: np.ndarray):
        self.codes, self.ret, self.deciles = codes, ret, deciles
        size = np.bincount(deciles, minlength=11).astype(np.float64)
        self.weights = {"EW": 1.0 / size[deciles]}
        usable = np.where(np.isfinite(me) & (me > 0), me, 0.0)
        total = np.bincount(deciles, weights=usable, minlength=11)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.weights["VW"] = np.where(usable > 0, usable / total[deciles], 0.0)

    def vector(self, weighting: str, portfolio: str) -> np.ndarray | None:
        """The portfolio's weight on every sorted stock (None if it holds nothing)."""
        w = self.weights[weighting]
        if portfolio == "H-L":
            high, low = self.vector(weighting, "10"), self.vector(weighting, "1")
            return None if high is None or low is None else high - low
        out = np.where(self.deciles == int(portfolio), w, 0.0)
        return out if out.any() else None


def _turnover(
    before: _Holding, after: _Holding, weighting: str, portfolio: str, scratch: np.ndarray
) -> float:
    """One term of the paper's turnover: weights drifted by the period's returns vs the next
    period's (``scratch``: zeros, one per ticker code; left as zeros)."""
    w0, w1 = before.vector(weighting, portfolio), after.vector(weighting, portfolio)
    if w0 is None or w1 is None:
        return math.nan
    drifted = w0 * (1.0 + before.ret) / (1.0 + float(w0 @ before.ret))
    scratch[after.codes] = w1
    scratch[before.codes] -= drifted  # codes are unique within a date
    # each ticker counted once: those held after, then (zeroed on the way) the rest of before
    total = float(np.abs(scratch[after.codes]).sum())
    scratch[after.codes] = 0.0
    total += float(np.abs(scratch[before.codes]).sum())
    scratch[before.codes] = 0.0
    return total / (2.0 if portfolio == "H-L" else 1.0)


def _period_returns(h: _Holding) -> dict:
    row = {}
    for w in WEIGHTINGS:
        weights = h.weights[w]
        held = np.bincount(h.deciles, weights=weights, minlength=11)
        earned = np.bincount(h.deciles, weights=weights * h.ret, minlength=11)
        for k in range(1, 11):
            # a decile with no stock (ties) or no market equity (VW) has no return
            row[f"{w} {k}"] = earned[k] if held[k] > 0 else math.nan
        row[f"{w} H-L"] = row[f"{w} 10"] - row[f"{w} 1"]
    return row


def decile_portfolios(
    frame: Any,
    periods_per_year: float,
    signal: str = "signal",
    ret: str = "ret",
    weight: str | None = "me",
    n_groups: int = 10,
    min_stocks: int = 10,
    name: str = "signal",
) -> DecileSorts:
    """Sort stocks into deciles of ``signal`` each period and follow the portfolios.

    Args:
        frame: One row per (stock, formation date): columns ``date``, ``ticker``, the signal,
            the holding-period return ``ret`` (realised after ``date``) and, for value weights,
            the market equity at formation (``weight``; None or an absent column: VW columns
            are all NaN).
        periods_per_year: Holding periods per year (see :func:`periods_per_year`).
        signal: The column sorted on (high = long).
        ret: The holding-period return column.
        weight: The market-equity column for VW.
        n_groups: 10 for deciles (the statistics and tables assume 10).
        min_stocks: Periods with fewer sortable stocks are skipped.
        name: A label for the result (tables, file names).

    Returns:
        A :class:`DecileSorts`.

    Raises:
        ValueError: For missing columns, ``n_groups`` other than 10, a bad ``min_stocks`` or
            ``periods_per_year``, or a (date, ticker) pair that occurs twice.
    """
    pd = _pandas()
    _check_columns(frame, ("date", "ticker", signal, ret), "frame")
    if n_groups != 10:
        raise ValueError(f"n_groups: the tables are decile tables, expected 10, got {n_groups!r}")
    _check_counts(n_groups, min_stocks)
    if not (isinstance(periods_per_year, (int, float)) and periods_per_year > 0):
        raise ValueError(f"periods_per_year: expected a number > 0, got {periods_per_year!r}")
    data = pd.DataFrame(
        {
            "date": pd.to_datetime(frame["date"]).to_numpy(),
            "ticker": frame["ticker"].to_numpy(),
            "signal": pd.to_numeric(frame[signal], errors="coerce").to_numpy(dtype=float),
            "ret": pd.to_numeric(frame[ret], errors="coerce").to_numpy(dtype=float),
        }
    )
    if weight is not None and weight in frame.columns:
        data["me"] = pd.to_numeric(frame[weight], errors="coerce").to_numpy(dtype=float)
    else:
        data["me"] = np.nan
    dup = data.duplicated(["date", "ticker"])
    if dup.any():
        first = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(
            f"frame: row {first} repeats (date {data['date'].iloc[first].date()}, ticker "
            f"{data['ticker'].iloc[first]!r}); one row per stock and date"
        )
    data = data[np.isfinite(data["signal"]) & np.isfinite(data["ret"])]
    codes, _ = pd.factorize(data["ticker"])
    data = data.assign(code=codes)
    scratch = np.zeros(int(codes.max()) + 1 if len(codes) else 0)
    records, counts, skipped = [], [], []
    sums = {(w, p): [0.0, 0] for w in WEIGHTINGS for p in PORTFOLIOS}
    before: _Holding | None = None
    for day, group in data.groupby("date", sort=True):
        if len(group) < min_stocks:
            skipped.append(day)
            continue
        deciles = _decile_of_ranks(group["signal"].rank(method="min").to_numpy(), n_groups)
        now = _Holding(
            group["code"].to_numpy(), group["ret"].to_numpy(), deciles, group["me"].to_numpy()
        )
        records.append(_period_returns(now))
        counts.append((day, len(group)))
        if before is not None:
            for (w, p), acc in sums.items():
                term = _turnover(before, now, w, p, scratch)
                if math.isfinite(term):
                    acc[0] += term
                    acc[1] += 1
        before = now
    columns = [f"{w} {p}" for w in WEIGHTINGS for p in PORTFOLIOS]
    index = pd.DatetimeIndex([d for d, _ in counts], name="date")
    returns = pd.DataFrame(records, index=index, columns=columns, dtype=float)
    turnover = {
        w: [sums[w, p][0] / sums[w, p][1] if sums[w, p][1] else math.nan for p in PORTFOLIOS]
        for w in WEIGHTINGS
    }
    return DecileSorts(
        returns=returns,
        counts=pd.Series([c for _, c in counts], index=index, name="stocks", dtype=int),
        turnover=pd.DataFrame(turnover, index=pd.Index(PORTFOLIOS, name="portfolio")),
        periods_per_year=float(periods_per_year),
        skipped=skipped,
        name=name,
    )


def compare_signals(sorts: list) -> Any:
    """One row per signal: its H-L annualised return, volatility, Sharpe and turnover.

    Args:
        sorts: :class:`DecileSorts` of each signal (the CNN and the benchmarks).

    Returns:
        DataFrame indexed by signal name (``signal``) with columns ``"EW Ret"``, ``"EW SD"``,
        ``"EW SR"``, ``"EW Turnover"``, the same for ``VW``, and ``"Periods"``.
    """
    pd = _pandas()
    rows = {}
    for s in sorts:
        t = s.table().loc["H-L"]
        rows[s.name] = {**t.to_dict(), "Periods": int(len(s.returns))}
    columns = [f"{w} {c}" for w in WEIGHTINGS for c in ("Ret", "SD", "SR", "Turnover")]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns + ["Periods"])
    table.index.name = "signal"
    return table
