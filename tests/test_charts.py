"""Chart images: one golden test per drawing rule (pixels worked out by hand), agreement with
an independent slow renderer on thousands of random-walk windows, chart sets on disk, splits,
the authors' file format, and bad input files."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("PIL")

from chart_reference import render_frame  # noqa: E402
from convlab import data  # noqa: E402
from convlab.data import OHLCVError, render_charts  # noqa: E402


def frame_of(rows, ticker="T", start="2020-01-06"):
    """rows: (open, high, low, close, volume) per day; None = missing."""
    f = pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"], dtype=float)
    f.insert(0, "date", pd.bdate_range(start, periods=len(rows)))
    f.insert(0, "ticker", ticker)
    return f


def only_image(rows, **kw):
    charts = render_charts(frame_of(rows), window=5, **{"every": "day", "ma": False, **kw})
    assert len(charts) >= 1
    return charts.images()[-1, 0]


# 5-day geometry: 32 x 15, price rows 0..24 (row 24 = lowest price), gap row 25, volume 26..31.
FLAT_VOLUME = 100.0


def test_geometry_of_each_window_cpu():
    assert data.image_geometry(5) == (32, 15, 25, 6)
    assert data.image_geometry(20) == (64, 60, 51, 12)
    assert data.image_geometry(60) == (96, 180, 76, 19)
    with pytest.raises(ValueError, match="window"):
        data.image_geometry(10)


def test_bars_ticks_and_scaling_by_hand_cpu():
    # prices 1..25 map exactly to rows: lo = 1, hi = 25, (P - 1) / (hi - lo) = 1
    rows = [
        (2, 5, 1, 4, 10),
        (6, 9, 5, 7, 20),
        (10, 12, 10, 11, 30),
        (20, 25, 15, 16, 40),
        (13, 14, 12, 13, 60),
    ]
    img = only_image(rows)
    top = 24
    for d, (o, h, low, c, _) in enumerate(rows):
        bar = np.flatnonzero(img[:25, 3 * d + 1])
        np.testing.assert_array_equal(bar, np.arange(top - (h - 1), top - (low - 1) + 1))
        assert np.flatnonzero(img[:25, 3 * d]).tolist() == [top - (o - 1)]
        assert np.flatnonzero(img[:25, 3 * d + 2]).tolist() == [top - (c - 1)]
    assert not img[25].any()  # the gap row stays black
    # volume: max 60 -> 6 rows; 10 -> round(1.0) = 1; 20 -> 2; 30 -> 3; 40 -> round(4.0) = 4
    heights = [int(img[26:, 3 * d + 1].sum()) for d in range(5)]
    assert heights == [1, 2, 3, 4, 6]
    assert img[26:, 0::3].sum() == 0 and img[26:, 2::3].sum() == 0


def test_rounding_half_to_even_cpu():
    # lo = 1, hi = 49: row = (p - 1) * 24 / 48 = (p - 1) / 2 hits .5 exactly:
    # p = 4 -> 1.5 -> 2 (even), p = 6 -> 2.5 -> 2, p = 8 -> 3.5 -> 4, p = 2 -> 0.5 -> 0
    rows = [(1, 49, 1, 4, 1), (6, 6, 6, 6, 1), (8, 8, 8, 8, 1), (2, 2, 2, 2, 1), (3, 3, 3, 3, 1)]
    img = only_image(rows)
    top = 24
    assert np.flatnonzero(img[:25, 2]).tolist() == [top - 2]  # close 4 -> row 2
    assert np.flatnonzero(img[:25, 4]).tolist() == [top - 2]  # 6 -> 2.5 -> 2
    assert np.flatnonzero(img[:25, 7]).tolist() == [top - 4]  # 8 -> 3.5 -> 4
    assert np.flatnonzero(img[:25, 10]).tolist() == [top - 0]  # 2 -> 0.5 -> 0


def test_rounding_exact_value_cpu():
    # p = 3 -> (3 - 1) / 2 = 1.0 exactly -> row 1
    rows = [(1, 49, 1, 4, 1), (6, 6, 6, 6, 1), (8, 8, 8, 8, 1), (2, 2, 2, 2, 1), (3, 3, 3, 3, 1)]
    img = only_image(rows)
    assert np.flatnonzero(img[:25, 13]).tolist() == [24 - 1]


def test_minimum_volume_pixel_and_missing_volume_cpu():
    rows = [
        (1, 2, 1, 2, 1000),
        (1, 2, 1, 2, 1),
        (1, 2, 1, 2, None),
        (1, 2, 1, 2, 0),
        (1, 2, 1, 2, 500),
    ]
    img = only_image(rows)
    heights = [int(img[26:, 3 * d + 1].sum()) for d in range(5)]
    assert heights == [6, 1, 0, 0, 3]  # tiny volume still 1 pixel; missing / zero: none


def test_all_volume_missing_leaves_panel_empty_cpu():
    rows = [(1, 2, 1, 2, None)] * 5
    assert only_image(rows)[26:].sum() == 0


def test_missing_prices_cpu():
    rows = [
        (2, 5, 1, 4, 1),
        (None, 9, 5, 7, 1),
        (10, None, 10, 11, 1),
        (20, 25, 15, None, 1),
        (13, 14, 12, 13, 1),
    ]
    img = only_image(rows)
    assert img[:25, 3].sum() == 0  # missing open: no open tick
    assert img[:25, 4].sum() == 5  # ... the bar stays (rows 9..5)
    assert img[:25, 6:9].sum() == 0  # missing high: no bar, no ticks
    assert img[:25, 11].sum() == 0  # missing close: no close tick
    assert img[:25, 9].sum() == 1 and img[:25, 10].sum() == 11


def test_flat_window_gives_no_image_cpu():
    charts = render_charts(frame_of([(5, 5, 5, 5, 1)] * 5), window=5, ma=False)
    assert len(charts) == 0


def test_windows_without_first_or_last_close_are_excluded_cpu():
    rows = [(1, 2, 1, 2, 1)] * 3 + [(1, 3, 1, None, 1)] + [(1, 2, 1, 2, 1)] * 5
    charts = render_charts(frame_of(rows), window=5, ma=False)
    starts = [np.busday_count(np.datetime64("2020-01-06"), e) - 4 for e in charts.end_dates]
    assert 3 not in starts and 3 + 4 not in [s + 4 for s in starts if s + 4 == 3]
    ends = [np.busday_count(np.datetime64("2020-01-06"), e) for e in charts.end_dates]
    assert 3 not in ends and all(e - 4 != 3 for e in ends)


def test_moving_average_line_by_hand_cpu():
    # 10 days; the last window (days 5..9) has a 5-day MA from days 1..9
    closes = [1, 1, 1, 1, 1, 1, 1, 1, 1, 26]
    rows = [(c, c, c, c, 1) for c in closes]
    with_ma = render_charts(frame_of(rows), window=5, ma=True).images()[-1, 0]
    without = render_charts(frame_of(rows), window=5, ma=False).images()[-1, 0]
    # window closes 1,1,1,1,26 -> lo 1, hi 26, row = (p - 1) * 24 / 25 from the bottom.
    # MA_d = 1,1,1,1,6 -> rows 0,0,0,0,round(4.8) = 5. Points at columns 1,4,7,10,13.
    # Flat part: image row 24, columns 1..10. Last segment (10,24) -> (13,19), steep, PIL's
    # Bresenham: (10,24) (11,23) (11,22) (12,21) (12,20) (13,19).
    expected = {(24, x) for x in range(1, 11)}
    expected |= {(24, 10), (23, 11), (22, 11), (21, 12), (20, 12), (19, 13)}
    for y, x in expected:
        assert with_ma[y, x] == 1, (y, x)
    added = {tuple(p) for p in np.argwhere(with_ma & ~without.astype(bool))}
    assert added <= expected
    assert (with_ma | without).sum() == with_ma.sum()  # the MA only adds pixels


def test_ma_needs_history_cpu():
    rows = [(1 + i % 3, 3 + i % 3, 1, 2 + i % 3, 1) for i in range(9)]
    with_ma = render_charts(frame_of(rows), window=5, ma=True)
    without = render_charts(frame_of(rows), window=5, ma=False)
    imgs_ma, imgs = with_ma.images(), without.images()
    # the first window (days 0..4) has no history before it: drawn without the MA
    np.testing.assert_array_equal(imgs_ma[0], imgs[0])
    assert (imgs_ma[-1] != imgs[-1]).any()


def random_walks(count, days, seed, missing=0.0):
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(count):
        c = 40 * np.exp(np.cumsum(rng.normal(0, 0.02, days)))
        o = c * np.exp(rng.normal(0, 0.01, days))
        h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0, 0.01, days)))
        low = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0, 0.01, days)))
        v = rng.integers(1, 10**6, days).astype(float)
        f = frame_of(np.stack([o, h, low, c, v], 1), ticker=f"W{seed}_{k}")
        for col in ("open", "high", "low", "close", "volume"):
            f.loc[rng.random(days) < missing, col] = np.nan
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("window,days", [(5, 400), (20, 420), (60, 330)])
def test_fast_renderer_matches_reference_pixel_for_pixel_cpu(window, days):
    frame = pd.concat(
        [random_walks(3, days, window), random_walks(2, days, window + 1, 0.03)], ignore_index=True
    )
    expected = render_frame(frame, window)
    charts = render_charts(frame, window)
    assert len(charts) == len(expected) > 1000
    images = charts.images()[:, 0]
    for i, (ticker, end, img) in enumerate(expected):
        assert charts.ticker_of(i) == ticker and charts.end_dates[i] == end
        if not np.array_equal(images[i], img):
            diff = np.argwhere(images[i] != img)[:5].tolist()
            pytest.fail(f"image {i} ({ticker} {end}) differs at (row, col) {diff}")


def test_labels_returns_and_sampling_cpu():
    frame = random_walks(1, 200, 7)
    close = frame["close"].to_numpy()
    charts = render_charts(frame, window=20, every="month", horizon=5)
    dates = frame["date"].to_numpy().astype("datetime64[D]")
    for i in range(len(charts)):
        t = int(np.flatnonzero(dates == charts.end_dates[i])[0])
        month = charts.end_dates[i].astype("datetime64[M]")
        assert t + 1 == len(dates) or dates[t + 1].astype("datetime64[M]") != month
        if t + 5 < len(close):
            assert charts.returns[i] == pytest.approx(close[t + 5] / close[t] - 1)
            assert charts.labels[i] == int(close[t + 5] > close[t])
            assert charts.label_dates[i] == dates[t + 5]
        else:
            assert charts.labels[i] == -1 and np.isnan(charts.returns[i])
    daily = render_charts(frame, window=20, stride=3)
    assert len(daily) == len(range(19, 200, 3))


def test_chart_set_save_load_split_and_dataset_cpu(tmp_path):
    charts = render_charts(random_walks(2, 300, 3), window=20)
    charts.save(tmp_path / "set")
    charts.save(tmp_path / "set", overwrite=True)  # replacing an existing set works
    back = data.ChartSet.load(tmp_path / "set")
    assert isinstance(back.packed, np.memmap)
    np.testing.assert_array_equal(back.images(), charts.images())
    np.testing.assert_array_equal(back.labels, charts.labels)
    assert back.tickers == charts.tickers
    train_end = np.sort(charts.end_dates)[len(charts) // 2]
    train, val, test = back.split(train_end=str(train_end), val_fraction=0.3, seed=0)
    assert len(val) == pytest.approx(0.3 * (len(train) + len(val)), abs=1)
    assert (train.label_dates <= train_end).all() and (val.label_dates <= train_end).all()
    assert (test.end_dates > train_end).all()
    ds = train.dataset()
    x, y = ds[0:8]
    assert x.shape == (8, 1, 64, 60) and x.dtype.name == "float32" and y.shape == (8,)
    assert set(np.unique(x.numpy())) <= {0.0, 1.0}
    xb, _ = train.dataset(binary=True)[3]
    assert xb.shape == (1, 64, 60) and xb.dtype.name == "uint8"
    with pytest.raises(ValueError, match="by"):
        back.split(by="random", train_end="2001-01-01")


def test_broken_chart_set_is_a_clear_error_cpu(tmp_path):
    render_charts(random_walks(1, 60, 1), window=5).save(tmp_path / "s")
    (tmp_path / "s" / "meta.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a valid chart set"):
        data.ChartSet.load(tmp_path / "s")
    with pytest.raises(FileNotFoundError):
        data.ChartSet.load(tmp_path / "nothing")


def test_reads_the_authors_file_format_cpu(tmp_path):
    charts = render_charts(random_walks(2, 120, 5), window=20, every="week")
    raw = charts.images()[:, 0] * 255
    path = tmp_path / "20d_week_has_vb_[20]_ma_2001_images.dat"
    raw.astype(np.uint8).tofile(path)
    labels = pd.DataFrame(
        {
            "Date": charts.end_dates.astype("datetime64[ns]"),
            "StockID": [charts.ticker_of(i) for i in range(len(charts))],
            "Ret_20d": charts.returns,
        }
    )
    pytest.importorskip("pyarrow")
    labels.to_feather(tmp_path / "labels.feather")
    back = data.read_jkx_images(path, tmp_path / "labels.feather")
    np.testing.assert_array_equal(back.images(), charts.images())
    np.testing.assert_array_equal(back.labels, charts.labels)
    np.testing.assert_array_equal(back.end_dates, charts.end_dates)
    with pytest.raises(ValueError, match="whole number"):
        (tmp_path / "20d_bad_images.dat").write_bytes(b"x" * 100)
        data.read_jkx_images(tmp_path / "20d_bad_images.dat")


def test_load_ohlcv_normalises_sources_cpu(tmp_path):
    yahoo = pd.DataFrame(
        {
            "Date": ["2020-01-02", "2020-01-03"],
            "Open": [10.0, 12.0],
            "High": [11, 13],
            "Low": [9, 11],
            "Close": [10, 12],
            "Adj Close": [5, 6],
            "Volume": [0, 7],
        }
    )
    tidy = data.load_ohlcv(yahoo, ticker="Y")
    assert list(tidy.columns) == data.COLUMNS
    np.testing.assert_allclose(tidy["open"], [5, 6])
    assert np.isnan(tidy["volume"][0])  # zero volume counts as missing
    tiingo = pd.DataFrame(
        {
            "date": ["2020-01-02"],
            "adjOpen": [1.0],
            "adjHigh": [2.0],
            "adjLow": [0.5],
            "adjClose": [1.5],
            "adjVolume": [10],
            "open": [9],
            "high": [9],
            "low": [9],
            "close": [9],
            "volume": [9],
        }
    )
    assert data.load_ohlcv(tiingo, ticker="T")["close"].tolist() == [1.5]
    folder = tmp_path / "prices"
    folder.mkdir()
    yahoo.to_csv(folder / "aaa.csv", index=False)
    yahoo.set_index("Date").to_parquet(folder / "bbb.parquet")
    both = data.load_ohlcv(folder)
    assert sorted(both["ticker"].unique()) == ["AAA", "BBB"]
    long = pd.concat([yahoo.assign(symbol="X"), yahoo.assign(symbol="Z")])
    assert sorted(data.load_ohlcv(long)["ticker"].unique()) == ["X", "Z"]


def test_bad_ohlcv_files_get_clear_errors_cpu(tmp_path):
    good = "date,open,high,low,close,volume\n2020-01-02,1,2,1,2,5\n2020-01-03,1,2,1,2,5\n"
    cases = {
        "missing.csv": ("date,open,high,low,volume\n2020-01-02,1,2,1,5\n", "missing column"),
        "text.csv": (good + "2020-01-06,1,abc,1,2,5\n", r"'high' row 2 holds 'abc'"),
        "empty.csv": ("", "empty"),
        "dup.csv": (good + "2020-01-03,1,2,1,2,5\n", "duplicated date 2020-01-03"),
        "unsorted.csv": (
            "date,open,high,low,close,volume\n2020-01-03,1,2,1,2,5\n2020-01-02,1,2,1,2,5\n",
            "unsorted dates",
        ),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(OHLCVError, match=message) as err:
            data.load_ohlcv(path)
        assert name in str(err.value)
    assert len(data.load_ohlcv(tmp_path / "unsorted.csv", sort=True)) == 2
    with pytest.raises(FileNotFoundError):
        data.load_ohlcv(tmp_path / "nope.csv")


def test_cli_render_and_show_cpu(tmp_path):
    from convlab.cli import main

    csv = tmp_path / "abc.csv"
    random_walks(1, 150, 2).drop(columns="ticker").to_csv(csv, index=False)
    assert (
        main(
            [
                "chart",
                "render",
                "--data",
                str(csv),
                "--window",
                "20",
                "--out",
                str(tmp_path / "charts"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "chart",
                "show",
                "--charts",
                str(tmp_path / "charts"),
                "--out",
                str(tmp_path / "grid.png"),
                "--count",
                "4",
            ]
        )
        == 0
    )
    from PIL import Image

    assert Image.open(tmp_path / "grid.png").size[0] > 60
    assert (
        main(
            ["chart", "render", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path / "x")]
        )
        == 2
    )  # user errors exit 2 (issue 5)
