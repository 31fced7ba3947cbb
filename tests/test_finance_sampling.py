"""The paper's sampling on a constructed calendar: period-end image dates (holidays included),
trading-day and calendar-period labels, the end-of-training purge and the 70/30 split."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from convlab.data import render_charts  # noqa: E402
from convlab.finance.sampling import default_every, label_horizon  # noqa: E402

# Holidays that move period ends: Good Friday 2020-04-10 ends its week on Thursday, 2020-07-03
# (Friday) likewise; 2020-01-01 and 2019-12-25 are mid-week; 2020-05-29 is removed so May ends
# on Thursday the 28th.
HOLIDAYS = ["2019-12-25", "2020-01-01", "2020-04-10", "2020-05-29", "2020-07-03"]


def _calendar() -> object:
    days = pd.bdate_range("2019-11-04", "2020-09-30")
    return days[~days.isin(pd.to_datetime(HOLIDAYS))]


def _frame(tickers: int = 3, seed: int = 0) -> object:
    rng = np.random.default_rng(seed)
    days = _calendar()
    parts = []
    for i in range(tickers):
        close = 20 * np.cumprod(1 + rng.normal(0, 0.02, len(days)))
        parts.append(
            pd.DataFrame(
                {
                    "ticker": f"T{i}",
                    "date": days,
                    "open": close * (1 + rng.normal(0, 0.005, len(days))),
                    "high": close * 1.02,
                    "low": close * 0.98,
                    "close": close,
                    "volume": rng.uniform(1e5, 2e5, len(days)),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _reference_ends(days, freq: str) -> list:
    """Last trading day of each calendar period, by pandas periods (weeks Monday-Sunday)."""
    return list(days.to_series().groupby(days.to_period(freq)).max())


@pytest.mark.parametrize("every, freq", [("week", "W"), ("month", "M"), ("quarter", "Q")])
def test_images_on_the_last_trading_day_of_each_period(every, freq):
    frame = _frame(1)
    charts = render_charts(frame, window=5, every=every, horizon=5)
    days = _calendar()
    expected = [d for d in _reference_ends(days, freq) if days.get_loc(d) >= 4]
    assert [pd.Timestamp(d) for d in charts.end_dates] == expected
    if every == "week":
        assert pd.Timestamp("2020-04-09") in expected  # Thursday before Good Friday
    if every == "month":
        assert pd.Timestamp("2020-05-28") in expected


def test_trading_day_labels():
    frame = _frame(1)
    charts = render_charts(frame, window=20, every="month", horizon=20)
    close = frame.set_index("date")["close"]
    days = _calendar()
    for end, ret, label, when in zip(
        charts.end_dates, charts.returns, charts.labels, charts.label_dates
    ):
        k = days.get_loc(pd.Timestamp(end))
        if k + 20 >= len(days):
            assert np.isnan(ret) and label == -1 and np.isnat(when)
            continue
        expected = close.iloc[k + 20] / close.iloc[k] - 1
        assert ret == pytest.approx(expected)
        assert label == int(expected > 0) and pd.Timestamp(when) == days[k + 20]


@pytest.mark.parametrize("every, freq", [("week", "W"), ("month", "M"), ("quarter", "Q")])
def test_calendar_period_labels(every, freq):
    frame = _frame(1, seed=3)
    charts = render_charts(frame, window=5, every=every, horizon=label_horizon(5, every, "period"))
    assert charts.info["horizon"] == every
    close = frame.set_index("date")["close"]
    days = _calendar()
    ends = _reference_ends(days, freq)
    for end, ret, when in zip(charts.end_dates, charts.returns, charts.label_dates):
        i = ends.index(pd.Timestamp(end))
        # the next period's last trading day, known only once a later day exists
        if i + 1 >= len(ends) or ends[i + 1] == days[-1]:
            assert np.isnan(ret) and np.isnat(when)
            continue
        assert pd.Timestamp(when) == ends[i + 1]
        assert ret == pytest.approx(close[ends[i + 1]] / close[pd.Timestamp(end)] - 1)


def test_calendar_label_missing_when_the_next_period_has_no_trading():
    frame = _frame(1)
    frame = frame[~frame["date"].dt.strftime("%Y-%m").eq("2020-03")]  # no trading in March
    charts = render_charts(frame, window=5, every="month", horizon="month")
    at = {str(d): r for d, r in zip(charts.end_dates, charts.returns)}
    assert np.isnan(at["2020-02-28"])
    assert not np.isnan(at["2020-01-31"]) and not np.isnan(at["2020-04-30"])


def test_purge_and_random_70_30_split():
    frame = _frame(4, seed=5)
    charts = render_charts(frame, window=5, every="week", horizon=20)
    train_end = "2020-05-29"
    train, val, test = charts.split("date", train_end, 0.3, seed=1)
    end = np.datetime64(train_end)
    for s in (train, val):
        assert (s.label_dates <= end).all()  # no training label crosses into the test period
    assert (test.end_dates > end).all()
    # the purged images: end on or before train_end but labelled after it
    crossing = (charts.end_dates <= end) & ~(charts.label_dates <= end)
    assert crossing.sum() >= 4 * 3  # a 20-day label spans ~4 weekly ends per ticker
    assert len(train) + len(val) + len(test) == len(charts) - crossing.sum()
    assert len(val) == round(0.3 * (len(train) + len(val)))
    keys = {(t, d) for t, d in zip(train.ticker_codes, train.end_dates)}
    assert not keys & {(t, d) for t, d in zip(val.ticker_codes, val.end_dates)}
    # random, not by date: validation images are spread over the training years
    assert val.end_dates.min() < np.datetime64("2020-01-31") < val.end_dates.max()


def test_default_sampling_and_label_choice():
    assert default_every(20, 500) == "month" and default_every(5, 10) == "week"
    assert default_every(60, 10) == "quarter"
    assert default_every(20, 2) == "day"  # the bundled two index series keep daily images
    assert default_every(7, 500) == "day"
    assert label_horizon(20, "month", "days") == 20
    assert label_horizon(20, "month", "period") == "month"
    with pytest.raises(ValueError, match="needs --every week, month or quarter"):
        label_horizon(20, "day", "period")
    with pytest.raises(ValueError, match="label"):
        label_horizon(20, "month", "calendar")
    with pytest.raises(ValueError, match="horizon"):
        render_charts(_frame(1), window=5, horizon="year")
