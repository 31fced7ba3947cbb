"""The CRSP daily reader on hand-made CRSP-format files, the expected series worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from convlab.finance.crsp import CRSPError, read_crsp  # noqa: E402

# PERMNO 10001: a normal start (code C), a bid-ask midpoint (negative PRC), a dividend day
# (RET above the price change), zero volume, a missing return ('.'), a 'B' code, an empty RET.
# PERMNO 10002: listed in any order (the reader sorts), numeric missing code -99.
# Column names in mixed case, as a user's export may have them.
CSV = """permno,Date,OpenPrc,askhi,BIDLO,prc,vol,Ret,shrout
10001,2020-01-02,10,11,9,10,1000,C,500
10001,2020-01-03,10.2,10.6,9.8,-10.4,1200,0.04,500
10001,2020-01-06,10.5,10.8,10.1,10.5,0,0.0196153846,500
10001,2020-01-07,10.5,10.9,10.2,10.8,900,.,500
10001,2020-01-08,11,11.2,10.7,11,800,0.05,500
10001,2020-01-09,11,11.5,10.9,-11.2,700,B,510
10001,2020-01-10,11.2,11.4,11,11.4,650,,510
10001,2020-01-13,11.4,11.8,11.3,11.7,600,0.02,510
10002,2020-01-03,50,52,49,51,300,0.02,100
10002,2020-01-02,48,50,47,50,200,C,100
10002,2020-01-06,51,53,50,-52,0,-99,100
10002,2020-01-07,52,54,51,53,400,0.01,100
"""


@pytest.fixture
def crsp_file(tmp_path):
    path = tmp_path / "dsf.csv"
    path.write_text(CSV)
    return path


def _series(frame, permno):
    return frame[frame["ticker"] == permno].reset_index(drop=True)


def test_chained_closes_scaled_prices_and_market_equity(crsp_file):
    daily = read_crsp(crsp_file)
    assert list(daily.columns) == [
        "ticker", "date", "open", "high", "low", "close", "volume", "ret", "me",
    ]  # fmt: skip
    a = _series(daily, "10001")
    assert [str(d.date()) for d in a["date"]] == [
        "2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07",
        "2020-01-08", "2020-01-09", "2020-01-10", "2020-01-13",
    ]  # fmt: skip
    # closes by hand: 10 (first |PRC|), 10 * 1.04 = 10.4, 10.4 * 1.0196153846 = 10.604,
    # '.' -> no close, the chain goes on from 10.604: * 1.05 = 11.1342, B and empty -> no
    # close, then 11.1342 * 1.02 = 11.356884
    closes = [10.0, 10.4, 10.604, math.nan, 11.1342, math.nan, math.nan, 11.356884]
    np.testing.assert_allclose(a["close"], closes, rtol=1e-9)
    # open/high/low scaled by close / |PRC|: day 3 factor 10.604 / 10.5
    f = 10.604 / 10.5
    assert a.loc[2, "open"] == pytest.approx(10.5 * f)
    assert a.loc[2, "high"] == pytest.approx(10.8 * f)
    assert a.loc[2, "low"] == pytest.approx(10.1 * f)
    # day 2: negative PRC -> |PRC| = 10.4 = the chained close: factor 1, raw prices
    assert a.loc[1, ["open", "high", "low"]].tolist() == pytest.approx([10.2, 10.6, 9.8])
    # the last day: factor 11.356884 / 11.7
    f = 11.356884 / 11.7
    assert a.loc[7, ["open", "high", "low"]].tolist() == pytest.approx(
        [11.4 * f, 11.8 * f, 11.3 * f]
    )
    # a day without a close has no open/high/low either
    assert a.loc[[3, 5, 6], ["open", "high", "low"]].isna().all().all()
    # market equity |PRC| x SHROUT, the negative price by its absolute value
    np.testing.assert_allclose(
        a["me"], [5000, 5200, 5250, 5400, 5500, 11.2 * 510, 11.4 * 510, 11.7 * 510]
    )
    # zero volume is missing; returns keep NaN for the codes
    assert np.isnan(a.loc[2, "volume"]) and a.loc[1, "volume"] == 1200
    assert np.isnan(a["ret"].to_numpy()[[0, 3, 5, 6]]).all()
    assert a.loc[1, "ret"] == pytest.approx(0.04)


def test_unsorted_rows_and_numeric_missing_code(crsp_file):
    b = _series(read_crsp(crsp_file), "10002")
    assert [str(d.date()) for d in b["date"]] == [
        "2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07",
    ]  # fmt: skip
    # 50, 50 * 1.02 = 51, -99 -> missing, 51 * 1.01 = 51.51
    np.testing.assert_allclose(b["close"], [50, 51, math.nan, 51.51])
    assert np.isnan(b.loc[2, "ret"]) and np.isnan(b.loc[2, "volume"])
    assert b.loc[2, "me"] == pytest.approx(5200)
    f = 51.51 / 53
    assert b.loc[3, "high"] == pytest.approx(54 * f)


def test_parquet_and_dataframe_give_the_same(tmp_path, crsp_file):
    raw = pd.read_csv(crsp_file, dtype=str, keep_default_na=False)
    raw["permno"] = raw["permno"].astype(int)  # Parquet exports hold PERMNO as an integer
    raw["Date"] = pd.to_datetime(raw["Date"])
    path = tmp_path / "dsf.parquet"
    raw.to_parquet(path)
    expected = read_crsp(crsp_file)
    pd.testing.assert_frame_equal(read_crsp(path), expected)
    pd.testing.assert_frame_equal(read_crsp(raw), expected)


def test_compact_dates(tmp_path):
    path = tmp_path / "dsf.csv"
    path.write_text(CSV.replace("2020-01-", "202001"))
    assert str(read_crsp(path)["date"].iloc[1].date()) == "2020-01-03"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace(",Ret,", ",RETX,"), r"missing CRSP column\(s\) \['RET'\]"),
        (lambda t: t.replace(",0.04,", ",abc,"), r"dsf.csv: column RET row 1 holds 'abc'"),
        (lambda t: t.replace(",0.04,", ",-1.2,"), r"column RET row 1 .* above -1"),
        (lambda t: t.replace(",1200,", ",lots,"), r"column VOL row 1 holds 'lots'"),
        (lambda t: t.replace("-10.4", "x"), r"column PRC row 1 holds 'x'"),
        (lambda t: t.replace("2020-01-06,10.5", "2020-13-06,10.5"), r"column date row 2"),
        (lambda t: t.replace("2020-01-06,10.5", "2020-01-03,10.5"), r"row 2 repeats PERMNO 10001"),
        (lambda t: t.replace("10002,2020-01-07", ",2020-01-07"), r"PERMNO is empty in row 11"),
        (lambda t: t.replace("Date,", "Date,date,").replace("2020-01-02,", "2020-01-02,x,", 1),
         r"columns 'Date' and 'date'"),
    ],
)  # fmt: skip
def test_bad_input_names_file_column_and_row(tmp_path, edit, message):
    path = tmp_path / "dsf.csv"
    path.write_text(edit(CSV))
    with pytest.raises(CRSPError, match=message):
        read_crsp(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_crsp(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CRSPError, match="empty"):
        read_crsp(empty)
