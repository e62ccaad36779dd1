#!/usr/bin/env python3
"""Write the golden NYSE session table that tests/cli/calendar_golden.rs checks avwap against.

The reference is the XNYS calendar of the PyPI package `exchange_calendars`, an
independent, sourced implementation of NYSE holidays, early closes and special
closures. The Rust calendar is written from the rules; this table catches mistakes in
either.

How to run (from the repository root; keep the venv out of the repository):

    python3 -m venv /tmp/xcal-venv
    /tmp/xcal-venv/bin/pip install exchange_calendars==4.13.2
    /tmp/xcal-venv/bin/python tools/calendar_golden.py

It writes tests/data/nyse_sessions_2000_2035.csv (or the path given as the first
argument) with the header `date,open_utc,close_utc` and one row per XNYS session from
2000-01-01 to 2035-12-31, instants in ISO-8601 UTC (e.g. 2026-11-27T14:30:00Z).

The committed file was produced with exchange_calendars 4.13.2 (pandas 3.1.1,
Python 3.11.7).
"""

import csv
import sys
from pathlib import Path

import exchange_calendars as xcals

FIRST = "2000-01-01"
LAST = "2035-12-31"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "nyse_sessions_2000_2035.csv"


def iso_utc(ts) -> str:
    # exchange_calendars returns tz-aware UTC timestamps; normalise to a "Z" suffix so
    # the Rust side can parse it with DateTime<Utc>::from_str.
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    # The default calendar start is only ~20 years back, so the bounds must be explicit.
    cal = xcals.get_calendar("XNYS", start=FIRST, end=LAST)
    schedule = cal.schedule.loc[FIRST:LAST]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["date", "open_utc", "close_utc"])
        for day, row in schedule.iterrows():
            writer.writerow([day.strftime("%Y-%m-%d"), iso_utc(row["open"]), iso_utc(row["close"])])
    print(f"wrote {len(schedule)} sessions to {out} (exchange_calendars {xcals.__version__})")


if __name__ == "__main__":
    main()
