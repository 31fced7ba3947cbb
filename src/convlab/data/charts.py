"""Black-and-white stock-chart images from OHLCV tables, drawn as Jiang, Kelly & Xiu draw them.

Geometry, normalisation and drawing rules follow ``chart_images.md`` (sections 2-4): per day three
columns (open tick, high-low bar, close tick), the moving average as a PIL-style Bresenham
polyline through the middle columns, volume bars at the bottom. The renderer is vectorised over
all windows of an instrument: every rule is an array operation on (windows, days) tables.

Example:
    >>> import numpy as np, pandas as pd
    >>> from convlab.data import render_charts
    >>> days = pd.bdate_range("2020-01-01", periods=60)
    >>> close = 100 * np.cumprod(1 + np.random.default_rng(0).normal(0, 0.01, 60))
    >>> frame = pd.DataFrame({"ticker": "X", "date": days, "open": close, "high": close * 1.01,
    ...                       "low": close * 0.99, "close": close, "volume": 1000.0})
    >>> charts = render_charts(frame, window=5, every="week")
    >>> charts.images().shape[1:]
    (1, 32, 15)
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

from convlab.data.chartset import ChartSet

__all__ = ["render_charts", "image_geometry", "GEOMETRY", "draw_window_arrays"]

#: window -> (height, width) of its image.
GEOMETRY = {5: (32, 15), 20: (64, 60), 60: (96, 180)}
_EVERY = ("day", "week", "month", "quarter")


def image_geometry(window: int) -> tuple[int, int, int, int]:
    """``(H, W, price_rows, volume_rows)`` of a window's image.

    Raises:
        ValueError: For a window other than 5, 20 or 60.
    """
    if window not in GEOMETRY:
        raise ValueError(f"window: expected 5, 20 or 60, got {window!r}")
    h, w = GEOMETRY[window]
    volume_rows = h // 5
    return h, w, h - volume_rows - 1, volume_rows


@functools.cache
def _segment_offsets(max_dy: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of a 3-column MA segment for every rise ``dy`` in [-max_dy, max_dy].

    PIL's ``ImageDraw.line`` (width 1) steps along the major axis with an integer error term and
    draws both end points; consecutive MA points are always 3 columns apart, so a segment's
    pixels depend on ``dy`` alone. Returns (dx, dy, valid) tables of shape (2*max_dy+1, L),
    indexed by ``dy + max_dy``, offsets relative to the segment's start.
    """
    rows = []
    for dy in range(-max_dy, max_dy + 1):
        rows.append(_bresenham(0, 0, 3, dy))
    length = max(len(r) for r in rows)
    dxs = np.zeros((len(rows), length), np.int64)
    dys = np.zeros((len(rows), length), np.int64)
    valid = np.zeros((len(rows), length), bool)
    for i, pts in enumerate(rows):
        for j, (x, y) in enumerate(pts):
            dxs[i, j], dys[i, j], valid[i, j] = x, y, True
    return dxs, dys, valid


def _bresenham(x0: int, y0: int, x1: int, y1: int) -> list[tuple[int, int]]:
    """The pixels PIL draws for a width-1 line from (x0, y0) to (x1, y1), end points included."""
    dx, dy = abs(x1 - x0), abs(y1 - y0)
    xs = 1 if x1 >= x0 else -1
    ys = 1 if y1 >= y0 else -1
    points = []
    x, y = x0, y0
    if dx >= dy:
        e = 2 * dy - dx
        for _ in range(dx + 1):
            points.append((x, y))
            if e >= 0 and dx:
                y += ys
                e -= 2 * dx
            e += 2 * dy
            x += xs
    else:
        e = 2 * dx - dy
        for _ in range(dy + 1):
            points.append((x, y))
            if e >= 0:
                x += xs
                e -= 2 * dy
            e += 2 * dx
            y += ys
    return points


def _round_rows(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, rows: int) -> np.ndarray:
    """Price -> row counted from the bottom, NumPy rounding (half to even); -1 where missing."""
    with np.errstate(invalid="ignore"):
        scaled = np.round((values - lo) * (rows - 1) / (hi - lo))
    return np.where(np.isnan(scaled), -1, scaled).astype(np.int64)


def draw_window_arrays(
    o: np.ndarray,
    h: np.ndarray,
    l: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    ma: np.ndarray | None,
    window: int,
    volume: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a batch of windows already normalised; arrays are (N, window) with NaN = missing.

    Returns ``(images, ok)``: uint8 images (N, H, W) with 1 = white, and which windows make a
    valid image (``hi > lo`` and finite extremes).
    """
    n = o.shape[0]
    height, width, price_rows, volume_rows = image_geometry(window)
    columns = [o, h, l, c] + ([ma] if ma is not None else [])
    stacked = np.stack(columns, axis=2)  # (N, D, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: no image
        lo = np.nanmin(stacked, axis=(1, 2))
        hi = np.nanmax(stacked, axis=(1, 2))
    ok = np.isfinite(lo) & np.isfinite(hi) & (hi > lo)
    lo_b, hi_b = lo[:, None], np.where(ok, hi, lo + 1)[:, None]
    images = np.zeros((n, height, width), np.uint8)
    top = price_rows - 1  # image row of price 0
    has_bar = ~(np.isnan(h) | np.isnan(l))
    r_high = _round_rows(h, lo_b, hi_b, price_rows)
    r_low = _round_rows(l, lo_b, hi_b, price_rows)
    # high-low bars: image rows top - r_high .. top - r_low in column 3d + 1
    grid = np.arange(price_rows)[None, :, None]  # (1, P, 1)
    bar = (
        (grid >= (top - r_high)[:, None, :])
        & (grid <= (top - r_low)[:, None, :])
        & has_bar[:, None, :]
    )
    images[:, :price_rows, 1::3] = bar
    flat = images.reshape(n, images[0].size if n else 0)
    days = np.arange(window)[None, :]
    windows = np.arange(n)[:, None]
    for values, col in ((o, 0), (c, 2)):
        rows = _round_rows(values, lo_b, hi_b, price_rows)
        draw = has_bar & (rows >= 0)
        idx = (top - rows) * width + 3 * days + col
        flat[np.broadcast_to(windows, draw.shape)[draw], idx[draw]] = 1
    if ma is not None:
        r_ma = _round_rows(ma, lo_b, hi_b, price_rows)
        start, end = r_ma[:, :-1], r_ma[:, 1:]
        seg = (start >= 0) & (end >= 0)
        if seg.any():
            dxs, dys, valid = _segment_offsets(price_rows - 1)
            w_idx, d_idx = np.nonzero(seg)
            y0 = top - start[w_idx, d_idx]
            rise = -(end[w_idx, d_idx] - start[w_idx, d_idx])  # image rows grow down
            k = rise + price_rows - 1
            xs = 3 * d_idx[:, None] + 1 + dxs[k]
            ys = y0[:, None] + dys[k]
            m = valid[k]
            flat[np.broadcast_to(w_idx[:, None], m.shape)[m], (ys * width + xs)[m]] = 1
    if volume:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            vmax = np.nanmax(v, axis=1)
        usable = np.isfinite(vmax) & (vmax > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            heights = np.round(v / np.where(usable, vmax, 1)[:, None] * volume_rows)
        heights = np.where(np.isnan(v) | ~usable[:, None], 0, np.maximum(1, heights))
        vgrid = np.arange(volume_rows)[None, :, None]  # 0 = top of the panel
        vbar = vgrid >= (volume_rows - heights.astype(np.int64))[:, None, :]
        images[:, height - volume_rows :, 1::3] = vbar
    return images, ok


def _period_key(dates: np.ndarray, every: str) -> np.ndarray:
    """A number per date, the same within a calendar week / month / quarter and one higher in
    the next one (so ``key + 1`` is the following period)."""
    d = dates.astype("datetime64[D]")
    if every == "week":
        # weeks start on Monday: 1970-01-01 was a Thursday
        return (d.astype(np.int64) + 3) // 7
    month = d.astype("datetime64[M]").astype(np.int64)
    return month if every == "month" else month // 3


def _period_ends(dates: np.ndarray, every: str) -> np.ndarray:
    """Indices of the last trading day of each calendar period."""
    if every == "day":
        return np.arange(len(dates))
    key = _period_key(dates, every)
    last = np.ones(len(dates), bool)
    last[:-1] = key[1:] != key[:-1]
    return np.flatnonzero(last)


def _label_index(dates: np.ndarray, end_idx: np.ndarray, horizon: int | str) -> np.ndarray:
    """Index of the day each forward return ends on; ``len(dates)`` where it is unknown.

    A number of trading days counts rows. A calendar period (``"week"`` / ``"month"`` /
    ``"quarter"``) ends on the last trading day of the period after the end date's; it is known
    only if the instrument trades in that period and on a later day (so the period is complete).
    """
    t = len(dates)
    if not isinstance(horizon, str):
        return end_idx + int(horizon)
    key = _period_key(dates, horizon)
    target = key[end_idx] + 1
    last = np.searchsorted(key, target, side="right") - 1
    known = (last >= 0) & (key[np.maximum(last, 0)] == target) & (last + 1 < t)
    return np.where(known, last, t)


def _moving_average(close: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` closes (NaN unless all of them are present)."""
    out = np.full(close.shape, np.nan)
    if len(close) < window:
        return out
    valid = ~np.isnan(close)
    filled = np.where(valid, close, 0.0)
    csum = np.concatenate([[0.0], np.cumsum(filled)])
    ccount = np.concatenate([[0], np.cumsum(valid)])
    sums = csum[window:] - csum[:-window]
    counts = ccount[window:] - ccount[:-window]
    out[window - 1 :] = np.where(counts == window, sums / window, np.nan)
    return out


def render_charts(
    frame: Any,
    window: int = 20,
    ma: bool = True,
    volume: bool = True,
    every: str = "day",
    stride: int = 1,
    horizon: int | str | None = None,
    chunk: int = 4096,
) -> ChartSet:
    """Draw one chart per (instrument, end date) from a tidy OHLCV frame.

    Args:
        frame: Output of :func:`convlab.data.load_ohlcv` (or any frame with its columns).
        window: 5, 20 or 60 trading days per image (32x15, 64x60, 96x180 pixels).
        ma: Draw the moving average (window-day mean of the close, using the days before the
            window; images whose history is too short are drawn without it).
        volume: Draw the volume bars (the panel stays empty otherwise; the size is unchanged).
        every: End dates: every ``"day"``, or the last trading day of each ``"week"``,
            ``"month"`` or ``"quarter"``.
        stride: Keep every ``stride``-th of those end dates.
        horizon: The forward return behind the label: a number of trading days (default:
            ``window``), or ``"week"`` / ``"month"`` / ``"quarter"`` for the calendar period
            after the end date's (from the end date's close to the close on the last trading
            day of the next period; unknown unless the instrument trades after that period).
        chunk: Windows drawn per vectorised batch (bounds the scratch memory).

    A window is drawn only if all its trading days lie inside the instrument's table and it has
    a close on its first and last day (windows where trading starts or stops are excluded).
    Windows whose prices are all equal or all missing give no image.

    Returns:
        A :class:`ChartSet` with bit-packed images, labels (1 up, 0 not up, -1 unknown), forward
        returns, tickers and end dates.

    Raises:
        ValueError: For a bad window, ``every``, ``stride`` or ``horizon``, or missing columns.
    """
    height, width, _, _ = image_geometry(window)
    if every not in _EVERY:
        raise ValueError(f"every: expected one of {_EVERY}, got {every!r}")
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride: expected an int >= 1, got {stride!r}")
    horizon = window if horizon is None else horizon
    if isinstance(horizon, str):
        if horizon not in _EVERY[1:]:
            raise ValueError(
                f"horizon: expected a number of trading days or 'week', 'month', 'quarter', "
                f"got {horizon!r}"
            )
    elif isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon: expected a number of trading days >= 1, got {horizon!r}")
    missing = [
        c
        for c in ("ticker", "date", "open", "high", "low", "close", "volume")
        if c not in frame.columns
    ]
    if missing:
        raise ValueError(f"frame: missing column(s) {missing} (use convlab.data.load_ohlcv)")
    packed, labels, returns, tickers, ends, label_ends = [], [], [], [], [], []
    names = []
    for code, (name, group) in enumerate(frame.groupby("ticker", sort=True)):
        names.append(str(name))
        dates = group["date"].to_numpy().astype("datetime64[D]")
        prices = {
            k: group[k].to_numpy(dtype=np.float64, copy=True)
            for k in ("open", "high", "low", "close", "volume")
        }
        for values in prices.values():  # zero / negative prices and volume are missing
            with np.errstate(invalid="ignore"):
                values[values <= 0] = np.nan
        close = prices["close"]
        ma_all = _moving_average(close, window) if ma else None
        t = len(dates)
        end_idx = _period_ends(dates, every)
        end_idx = end_idx[end_idx >= window - 1][::stride]
        start_idx = end_idx - (window - 1)
        keep = ~np.isnan(close[start_idx]) & ~np.isnan(close[end_idx])
        end_idx, start_idx = end_idx[keep], start_idx[keep]
        fwd = _label_index(dates, end_idx, horizon)
        has_fwd = fwd < t
        with np.errstate(invalid="ignore", divide="ignore"):
            ret = np.where(has_fwd, close[np.minimum(fwd, t - 1)] / close[end_idx] - 1, np.nan)
        for lo in range(0, len(end_idx), chunk):
            s = start_idx[lo : lo + chunk]
            span = s[:, None] + np.arange(window)[None, :]
            base = close[s][:, None]  # normalise: first close = 1
            o, h, l, c = (prices[k][span] / base for k in ("open", "high", "low", "close"))
            m = None
            if ma_all is not None:
                m = ma_all[span] / base
                # no history before the window: draw the image without its MA
                m[s < window - 1] = np.nan
            images, ok = draw_window_arrays(o, h, l, c, prices["volume"][span], m, window, volume)
            packed.append(np.packbits(images[ok].reshape(int(ok.sum()), height * width), axis=1))
            r = ret[lo : lo + chunk][ok]
            returns.append(r)
            labels.append(np.where(np.isnan(r), -1, r > 0).astype(np.int8))
            tickers.append(np.full(int(ok.sum()), code, np.int32))
            e = end_idx[lo : lo + chunk][ok]
            ends.append(dates[e])
            f = fwd[lo : lo + chunk][ok]
            label_ends.append(
                np.where(f < t, dates[np.minimum(f, t - 1)], np.datetime64("NaT")).astype(
                    "datetime64[D]"
                )
            )
    nbytes = height * width // 8

    def join(parts: list[np.ndarray], dtype: Any, shape: tuple[int, ...] = ()) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros((0,) + shape, dtype)

    return ChartSet(
        join(packed, np.uint8, (nbytes,)),
        window,
        join(labels, np.int8),
        join(returns, np.float64),
        join(tickers, np.int32),
        names,
        join(ends, "datetime64[D]"),
        join(label_ends, "datetime64[D]"),
        info={
            "ma": bool(ma),
            "volume": bool(volume),
            "every": every,
            "stride": int(stride),
            "horizon": horizon if isinstance(horizon, str) else int(horizon),
        },
    )
