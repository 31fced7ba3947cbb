"""A slow, independent chart renderer: plain Python loops, PIL's ImageDraw.line for the MA.

Written from the spec (chart_images.md sections 2-4), sharing no code with convlab.data.
"""

from __future__ import annotations

import math

import numpy as np

SIZES = {5: (32, 15), 20: (64, 60), 60: (96, 180)}


def _missing(x):
    # the spec: zero or negative prices and zero volume count as missing
    return x is None or math.isnan(x) or x <= 0


def render_window(o, h, l, c, v, ma, window, volume=True):
    """One image (H, W) uint8 from per-day lists (None/NaN = missing), or None if undrawable."""
    from PIL import Image, ImageDraw

    height, width = SIZES[window]
    vrows = height // 5
    prows = height - vrows - 1
    base = c[0]
    norm = lambda x: None if _missing(x) else x / base  # noqa: E731
    o, h, l, c = ([norm(x) for x in seq] for seq in (o, h, l, c))
    ma = [None] * window if ma is None else [norm(x) for x in ma]
    values = [x for seq in (o, h, l, c, ma) for x in seq if x is not None]
    if not values:
        return None
    lo, hi = min(values), max(values)
    if not hi > lo:
        return None

    def row(p):  # image row (0 = top)
        return prows - 1 - int(round((p - lo) * (prows - 1) / (hi - lo)))

    img = Image.new("L", (width, height), 0)
    px = img.load()
    for d in range(window):
        if h[d] is None or l[d] is None:
            continue
        for r in range(row(h[d]), row(l[d]) + 1):
            px[3 * d + 1, r] = 255
        if o[d] is not None:
            px[3 * d, row(o[d])] = 255
        if c[d] is not None:
            px[3 * d + 2, row(c[d])] = 255
    draw = ImageDraw.Draw(img)
    for d in range(window - 1):
        if ma[d] is not None and ma[d + 1] is not None:
            draw.line([(3 * d + 1, row(ma[d])), (3 * d + 4, row(ma[d + 1]))], fill=255, width=1)
    if volume:
        vols = [x for x in v if not _missing(x)]
        vmax = max(vols) if vols else 0
        if vmax > 0:
            for d in range(window):
                if _missing(v[d]):
                    continue
                bar = max(1, int(round(v[d] / vmax * vrows)))
                for r in range(height - bar, height):
                    px[3 * d + 1, r] = 255
    return (np.array(img) > 0).astype(np.uint8)


def render_frame(frame, window, ma=True, volume=True):
    """All daily windows of a tidy frame: list of (ticker, end date, image)."""
    out = []
    for ticker, g in frame.groupby("ticker", sort=True):
        cols = {
            k: [None if _missing(x) else x for x in g[k].astype(float)]
            for k in ("open", "high", "low", "close", "volume")
        }
        dates = list(g["date"])
        for end in range(window - 1, len(dates)):
            start = end - window + 1
            c = cols["close"]
            if c[start] is None or c[end] is None:
                continue
            span = slice(start, end + 1)
            m = None
            if ma and start >= window - 1:
                m = []
                for d in range(start, end + 1):
                    hist = c[d - window + 1 : d + 1]
                    m.append(None if any(x is None for x in hist) else sum(hist) / window)
            img = render_window(
                cols["open"][span],
                cols["high"][span],
                cols["low"][span],
                c[span],
                cols["volume"][span],
                m,
                window,
                volume,
            )
            if img is not None:
                out.append((ticker, np.datetime64(dates[end], "D"), img))
    return out
