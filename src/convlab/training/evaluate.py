"""What a trained chart model is judged by: loss, accuracy, correlations, a backtest."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["classification_metrics", "correlations", "backtest"]

TRADING_DAYS = 252


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


def _summary(period_returns: np.ndarray, periods_per_year: float) -> dict:
    r = np.asarray(period_returns, np.float64)
    if len(r) < 2:
        return {
            "annual_return": math.nan,
            "annual_volatility": math.nan,
            "sharpe": math.nan,
            "periods": int(len(r)),
        }
    mean, vol = r.mean() * periods_per_year, r.std(ddof=1) * math.sqrt(periods_per_year)
    return {
        "annual_return": float(mean),
        "annual_volatility": float(vol),
        "sharpe": float(mean / vol) if vol > 0 else math.nan,
        "periods": int(len(r)),
    }


def backtest(
    p_up: np.ndarray,
    returns: np.ndarray,
    dates: np.ndarray,
    tickers: np.ndarray,
    horizon: int,
    min_cross_section: int = 10,
) -> dict:
    """Trade the predictions over non-overlapping holding periods of ``horizon`` days.

    With at least ``min_cross_section`` instruments per date (median), an equal-weight
    long-short portfolio of the top minus the bottom decile of ``p_up``; otherwise each
    instrument is held long when ``p_up > 0.5`` and flat otherwise, against buy-and-hold
    (equal weight across instruments). Annualised with 252 trading days.
    """
    p, r = np.asarray(p_up, np.float64), np.asarray(returns, np.float64)
    dates, tickers = np.asarray(dates), np.asarray(tickers)
    keep = np.isfinite(r) & np.isfinite(p)
    p, r, dates, tickers = p[keep], r[keep], dates[keep], tickers[keep]
    rebalance = np.unique(dates)[:: max(int(horizon), 1)]
    per_year = TRADING_DAYS / max(int(horizon), 1)
    if len(rebalance) == 0:
        return {"kind": "none", "periods": 0}
    counts = [int(np.sum(dates == d)) for d in rebalance]
    if np.median(counts) >= min_cross_section:
        long_short = []
        for d in rebalance:
            at = dates == d
            if at.sum() < min_cross_section:
                continue
            pd_, rd = p[at], r[at]
            low, high = np.quantile(pd_, [0.1, 0.9])
            top, bottom = rd[pd_ >= high], rd[pd_ <= low]
            long_short.append(top.mean() - bottom.mean())
        return {
            "kind": "decile long-short",
            "horizon_days": int(horizon),
            **_summary(np.asarray(long_short), per_year),
        }
    strategy, hold = [], []
    for d in rebalance:
        at = dates == d
        strategy.append(np.mean(np.where(p[at] > 0.5, r[at], 0.0)))
        hold.append(np.mean(r[at]))
    return {
        "kind": "long/flat vs buy-and-hold",
        "horizon_days": int(horizon),
        "strategy": _summary(np.asarray(strategy), per_year),
        "buy_and_hold": _summary(np.asarray(hold), per_year),
        "time_in_market": float(np.mean(p > 0.5)),
    }


def json_safe(obj: Any) -> Any:
    """Replace NaN/inf by None so the result is strict JSON."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
