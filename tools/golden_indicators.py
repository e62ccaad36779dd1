#!/usr/bin/env python3
"""Write the golden indicator values that tests/cli/indicators_golden.rs checks avwap against.

The reference is plain pandas, written the way the predecessor scanner computes each
quantity (shared/reference/upstream-scanner.md §3): rolling(n).mean() for SMA and ATR,
ewm(alpha=1/n, adjust=False, min_periods=n) for ADX, rolling(w).quantile(q,
interpolation='linear') for the ATR% median, cumsum from the anchor row for the AVWAP,
resample('W-FRI').last() for weekly closes, and the §3.3 anchor rules on df.tail(...).
The AVWAP σ uses TradingView's raw-moment formula sqrt(max(0, Σtp²v/Σv − vwap²)), a
different algorithm from the Rust code's centred two-pass sum, on purpose.

Input: data/demo/bars.csv.gz (real S&P 500 daily bars, 2009-08-21..2010-08-20).

How to run (from the repository root; keep the venv out of the repository):

    python3 -m venv /tmp/golden-venv
    /tmp/golden-venv/bin/pip install pandas==3.1.1
    /tmp/golden-venv/bin/python tools/golden_indicators.py

It writes tests/data/golden_indicators.csv (or the path given as the first argument) with
the header `symbol,series,param,index,value`:
- `index` is the bar index (0-based) within the symbol's series, except for
  `weekly_close`, where it is the week number (0 = the first bar's week).
- Full series (`sma50`, `atr14`, `adx14`, `atr_pct_median120`, `rolling_vwap20`,
  `weekly_close`, `avwap` with `param` = anchor bar) list only non-NaN values: an index
  that is absent must be NaN.
- Scalars at a truncation point (`param` = number of bars kept): `trend_score`,
  `sma50_slope10_pct`, `atr_pct_median120_last`, and the anchor bars `anchor_gap`,
  `anchor_volbreakout`, `anchor_swinglow`, `anchor_swinghigh` (`nan` = no anchor);
  `avwap_sigma_last` (`param` = anchor bar, `index` = last bar).
- Floats are written with repr(), which round-trips exactly.

The committed file was produced with pandas 3.1.1, numpy 2.4.6, Python 3.11.7.
"""

import csv
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
BARS = ROOT / "data" / "demo" / "bars.csv.gz"
DEFAULT_OUT = ROOT / "tests" / "data" / "golden_indicators.csv"

# Ten symbols with all 245 sessions, plus AAPL (missing days) and ETFC (missing whole weeks,
# so its weekly closes contain NaN).
SYMBOLS = ["XOM", "JPM", "GE", "KO", "WMT", "PG", "BAC", "C", "AIG", "F", "AAPL", "ETFC"]
CUTS = [59, 60, 100, 150, 200, None]  # None = all bars

N_ADX = 14
N_ATR = 14
N_SMA = 50
SLOPE_LOOKBACK = 10
MEDIAN_WINDOW = 120
VWAP_WINDOW = 20
ANCHOR_LOOKBACK = 60
SWING_LOOKBACK = 20
GAP_PCT = 0.04
VOL_SPIKE_MULT = 1.8


def fmt(x) -> str:
    x = float(x)
    return "nan" if math.isnan(x) else repr(x)


def true_range(df: pd.DataFrame) -> pd.Series:
    prev = df["Close"].shift(1)
    return pd.concat(
        [df["High"] - df["Low"], (df["High"] - prev).abs(), (df["Low"] - prev).abs()], axis=1
    ).max(axis=1)


def ewm(s: pd.Series, n: int) -> pd.Series:
    return s.ewm(alpha=1 / n, adjust=False, min_periods=n).mean()


def adx(df: pd.DataFrame, n: int) -> pd.Series:
    up = df["High"].diff()
    down = -df["Low"].diff()
    plus_dm = pd.Series(np.where((up > down) & (up > 0), up, 0.0), index=df.index)
    minus_dm = pd.Series(np.where((down > up) & (down > 0), down, 0.0), index=df.index)
    atr_w = ewm(true_range(df), n)
    plus_di = 100 * ewm(plus_dm, n) / atr_w
    minus_di = 100 * ewm(minus_dm, n) / atr_w
    dx = 100 * (plus_di - minus_di).abs() / (plus_di + minus_di).replace(0, np.nan)
    return ewm(dx, n)


def atr(df: pd.DataFrame, n: int) -> pd.Series:
    return true_range(df).rolling(n).mean()


def atr_pct(df: pd.DataFrame) -> pd.Series:
    return 100 * atr(df, N_ATR) / df["Close"]


def slope_last(s: pd.Series, n: int) -> float:
    s = s.dropna()
    if len(s) < n + 1:
        return np.nan
    start, end = s.iloc[-1 - n], s.iloc[-1]
    if start == 0 or np.isnan(start) or np.isnan(end):
        return np.nan
    return (end - start) / abs(start)


def trend_score(df: pd.DataFrame) -> float:
    slope = slope_last(df["Close"].rolling(N_SMA).mean(), SLOPE_LOOKBACK)
    if np.isnan(slope):
        return np.nan
    slope_pct = 100 * slope
    adx_now = adx(df, N_ADX).iloc[-1]
    ap = atr_pct(df)
    med = ap.rolling(MEDIAN_WINDOW).quantile(0.5, interpolation="linear").iloc[-1]
    vol_ratio = 1.0 if (np.isnan(med) or med == 0) else ap.iloc[-1] / med
    return 2 * slope_pct + 0.7 * adx_now * np.sign(slope_pct) - 10 * vol_ratio


def typical(df: pd.DataFrame) -> pd.Series:
    return (df["High"] + df["Low"] + df["Close"]) / 3


def avwap(df: pd.DataFrame, anchor: int) -> pd.Series:
    w = df.iloc[anchor:]
    tp = typical(w)
    return (tp * w["Volume"]).cumsum() / w["Volume"].cumsum().replace(0, np.nan)


def sigma_tradingview(df: pd.DataFrame, anchor: int) -> float:
    w = df.iloc[anchor:]
    tp = typical(w)
    v = w["Volume"]
    vwap = (tp * v).sum() / v.sum()
    return math.sqrt(max(0.0, (tp * tp * v).sum() / v.sum() - vwap * vwap))


def rolling_vwap(df: pd.DataFrame, n: int) -> pd.Series:
    tp = typical(df)
    return (tp * df["Volume"]).rolling(n).sum() / df["Volume"].rolling(n).sum().replace(0, np.nan)


def gap_anchor(df: pd.DataFrame):
    w = df.tail(ANCHOR_LOOKBACK)
    prev = w["Close"].shift(1).replace(0, np.nan)
    gap = (w["Open"] - prev).abs() / prev
    hits = gap.index[gap >= GAP_PCT]
    return hits[-1] if len(hits) else np.nan


def volbreakout_anchor(df: pd.DataFrame):
    w = df.tail(ANCHOR_LOOKBACK)
    vol_sma = w["Volume"].rolling(20).mean()
    loc = (w["Close"] - w["Low"]) / (w["High"] - w["Low"]).replace(0, np.nan)
    prior_high = w["High"].shift(1).rolling(5).max()
    ok = (w["Volume"] > VOL_SPIKE_MULT * vol_sma) & (loc > 0.7) & (w["Close"] > prior_high)
    hits = w.index[ok]
    return hits[-1] if len(hits) else np.nan


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    bars = pd.read_csv(BARS, parse_dates=["Date"])
    bars = bars[bars["Symbol"].isin(SYMBOLS)]
    # Volume as float, as in the Rust series.
    bars = bars.astype({"Volume": "float64"})
    rows = []

    def series_rows(sym, name, param, s):
        for i, v in enumerate(s.to_numpy()):
            if not np.isnan(v):
                rows.append([sym, name, param, i, fmt(v)])

    for sym in SYMBOLS:
        df = bars[bars["Symbol"] == sym].sort_values("Date").reset_index(drop=True)
        n = len(df)
        assert n >= 200, (sym, n)
        series_rows(sym, "sma50", "", df["Close"].rolling(N_SMA).mean())
        series_rows(sym, "atr14", "", atr(df, N_ATR))
        series_rows(sym, "adx14", "", adx(df, N_ADX))
        series_rows(
            sym,
            "atr_pct_median120",
            "",
            atr_pct(df).rolling(MEDIAN_WINDOW).quantile(0.5, interpolation="linear"),
        )
        series_rows(sym, "rolling_vwap20", "", rolling_vwap(df, VWAP_WINDOW))
        weekly = pd.Series(df["Close"].to_numpy(), index=df["Date"]).resample("W-FRI").last()
        series_rows(sym, "weekly_close", "", weekly)

        first_2010 = int(df.index[df["Date"] >= "2010-01-01"][0])
        for anchor in [0, first_2010, n - 20, n - 5]:
            av = avwap(df, anchor)
            for i, v in zip(av.index, av.to_numpy()):
                if not np.isnan(v):
                    rows.append([sym, "avwap", anchor, int(i), fmt(v)])
            rows.append([sym, "avwap_sigma_last", anchor, n - 1, fmt(sigma_tradingview(df, anchor))])

        for cut in CUTS:
            k = n if cut is None else cut
            part = df.iloc[:k]
            rows.append([sym, "trend_score", k, k - 1, fmt(trend_score(part))])
            slope = slope_last(part["Close"].rolling(N_SMA).mean(), SLOPE_LOOKBACK)
            rows.append([sym, "sma50_slope10_pct", k, k - 1, fmt(100 * slope)])
            med = atr_pct(part).rolling(MEDIAN_WINDOW).quantile(0.5, interpolation="linear")
            rows.append([sym, "atr_pct_median120_last", k, k - 1, fmt(med.iloc[-1])])
            rows.append([sym, "anchor_gap", k, k - 1, fmt(gap_anchor(part))])
            rows.append([sym, "anchor_volbreakout", k, k - 1, fmt(volbreakout_anchor(part))])
            rows.append([sym, "anchor_swinglow", k, k - 1, fmt(part.tail(SWING_LOOKBACK)["Low"].idxmin())])
            rows.append([sym, "anchor_swinghigh", k, k - 1, fmt(part.tail(SWING_LOOKBACK)["High"].idxmax())])

    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["symbol", "series", "param", "index", "value"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows for {len(SYMBOLS)} symbols to {out} (pandas {pd.__version__}, numpy {np.__version__})")


if __name__ == "__main__":
    main()
