#!/usr/bin/env python3
"""Write the deterministic backtest fixture that the metrics golden test reads:
tests/data/backtest/equity.csv and tests/data/backtest/trades.csv, in the formats that
src/performance/csv.rs writes (exact decimals, RFC 3339 UTC times, floats as repr()).

A made-up but realistic run (seed 17, standard library only): 120 NYSE sessions from
2010-03-01 (Good Friday, Memorial Day and Independence Day skipped), $100,000 starting
equity, 40 round trips of 1-8 sessions each with the strategy's shapes: protective stops,
R1 trims followed by an R2 exit, stop-level sells, a flatten, and one trip still open at
the end (valued at the last close). Costs are $0.005 per share commission (minimum $1) plus
$0.01 per share slippage on every fill. The equity curve is the cash and the positions
marked at each close along a noisy path from entry to exit; the benchmark is a random walk
from 111.44 (an SPY-like level).

How to run (from the repository root): python3 tools/backtest_fixture.py
Then regenerate the golden metrics with tools/backtest_metrics.py --golden.
"""

import csv
import datetime as dt
import random
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "backtest"
START_EQUITY = Decimal("100000")
HOLIDAYS = {dt.date(2010, 4, 2), dt.date(2010, 5, 31), dt.date(2010, 7, 5)}
SYMBOLS = ["AAPL", "MSFT", "XOM", "JPM", "GE", "KO", "WMT", "PG", "BAC", "C", "F", "BRK.B"]
CENT = Decimal("0.01")


def sessions(first: dt.date, count: int) -> list:
    days, day = [], first
    while len(days) < count:
        if day.weekday() < 5 and day not in HOLIDAYS:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def cents(x: float) -> Decimal:
    return Decimal(repr(x)).quantize(CENT, rounding=ROUND_HALF_EVEN)


def fill_cost(qty: Decimal) -> Decimal:
    return max(Decimal("1"), qty * Decimal("0.005")) + qty * CENT


def utc(day: dt.date, hour: int, minute: int) -> str:
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}:00Z"


def main() -> None:
    rng = random.Random(17)
    days = sessions(dt.date(2010, 3, 1), 120)
    n = len(days)
    trips, marks = [], []  # marks: per trip, {session index: close price while held}
    reasons = ["stop"] * 15 + ["target_r2"] * 10 + ["stop_level"] * 6 + ["flatten"] * 1
    reasons += [rng.choice(["stop", "target_r2"]) for _ in range(7)]
    rng.shuffle(reasons)
    reasons.append("end_of_backtest")
    for k, reason in enumerate(reasons):
        hold = rng.randint(1, 8)
        if reason == "end_of_backtest":
            entry_i = n - 1 - hold
        else:
            entry_i = rng.randrange(1, n - 1 - hold)
        exit_i = min(entry_i + hold, n - 1)
        level = cents(rng.uniform(15, 250))
        entry = level + cents(float(level) * rng.uniform(0.0, 0.004))
        risk = cents(float(entry) * rng.uniform(0.02, 0.05))
        stop = entry - risk
        r1, r2 = entry + risk, entry + 2 * risk
        qty = Decimal(int(Decimal("500") / risk))
        trimmed = False
        if reason in ("stop", "stop_level"):
            exit_price = stop - cents(rng.uniform(0, 0.3) * float(risk))
            if rng.random() < 0.3:  # trimmed at R1 first, then stopped at break-even-ish
                trimmed = True
                half = (qty / 2).to_integral_value()
                rest_exit = entry - cents(rng.uniform(0, 0.2) * float(risk))
                exit_price = ((r1 * half + rest_exit * (qty - half)) / qty).quantize(Decimal("0.0001"))
        elif reason == "target_r2":
            half = (qty / 2).to_integral_value()
            trimmed = True
            exit_price = ((r1 * half + r2 * (qty - half)) / qty).quantize(Decimal("0.0001"))
        elif reason == "flatten":
            exit_price = entry + cents(rng.uniform(-0.5, 0.8) * float(risk))
        else:
            exit_price = entry + cents(rng.uniform(-0.8, 1.5) * float(risk))
        fills = 3 if trimmed else 2
        costs = fill_cost(qty) * fills if reason != "end_of_backtest" else fill_cost(qty)
        gross = (exit_price - entry) * qty
        net = gross - costs
        r_multiple = float(net / (qty * (entry - stop)))
        notional = entry * qty + (exit_price * qty if reason != "end_of_backtest" else 0)
        entry_minute = 40 + 10 * rng.randrange(0, 30)
        entry_time = utc(days[entry_i], 13 + entry_minute // 60, entry_minute % 60)
        if reason == "end_of_backtest":
            exit_time = utc(days[exit_i], 20, 0)
        else:
            exit_minute = 40 + 10 * rng.randrange(0, 36)
            exit_time = utc(days[exit_i], 13 + exit_minute // 60, exit_minute % 60)
        anchor = days[max(0, entry_i - rng.randint(5, 40))] if entry_i >= 5 else days[0] - dt.timedelta(days=28)
        trips.append(
            dict(
                symbol=SYMBOLS[k % len(SYMBOLS)],
                scan_date=days[entry_i - 1].isoformat(),
                anchor_date=anchor.isoformat(),
                entry_level=level,
                entry_time=entry_time,
                exit_time=exit_time,
                entry_price=entry,
                exit_price=exit_price,
                qty=qty,
                initial_stop=stop,
                target_r1=r1,
                target_r2=r2,
                trimmed="true" if trimmed else "false",
                exit_reason=reason,
                gross_pnl=gross,
                costs=costs,
                net_pnl=net,
                r_multiple=repr(r_multiple),
                traded_notional=notional,
                _entry_i=entry_i,
                _exit_i=exit_i,
            )
        )
        # Closes while held: a noisy line from entry to exit (the last close for the open trip).
        held = {}
        last = exit_i if reason == "end_of_backtest" else exit_i - 1
        for i in range(entry_i, last + 1):
            t = (i - entry_i + 1) / (exit_i - entry_i + 1)
            path = float(entry) + t * float(exit_price - entry)
            held[i] = cents(path + rng.gauss(0, 0.3) * float(risk))
        if reason == "end_of_backtest":
            held[exit_i] = exit_price
        marks.append(held)

    rows, bench = [], 111.44
    for i, day in enumerate(days):
        cash = START_EQUITY
        long_value = Decimal(0)
        for trip, held in zip(trips, marks):
            if trip["_entry_i"] <= i:
                cash -= trip["entry_price"] * trip["qty"] + fill_cost(trip["qty"])
            if trip["_exit_i"] <= i and trip["exit_reason"] != "end_of_backtest":
                cash += trip["exit_price"] * trip["qty"] - (trip["costs"] - fill_cost(trip["qty"]))
            if i in held:
                long_value += held[i] * trip["qty"]
        if i > 0:
            bench = round(bench * (1 + rng.gauss(0.0003, 0.011)), 2)
        rows.append([day.isoformat(), cash + long_value, cash, long_value, repr(bench)])

    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "equity.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["date", "equity", "cash", "long_value", "benchmark"])
        w.writerows([[str(c) for c in row] for row in rows])
    columns = [c for c in trips[0] if not c.startswith("_")]
    trips.sort(key=lambda t: (t["entry_time"], t["symbol"]))
    with open(OUT / "trades.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        w.writerows([[str(t[c]) for c in columns] for t in trips])


if __name__ == "__main__":
    main()
