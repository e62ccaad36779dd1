#!/usr/bin/env python3
"""The backtest metrics, computed independently of avwap from a backtest's equity.csv and
trades.csv, to check src/performance/metrics.rs.

A separate implementation: empyrical-reloaded's functions for CAGR, volatility, Sharpe,
Sortino, max drawdown depth and Calmar (its conventions are ours: 252 periods a year,
risk-free rate 0, sample standard deviation with ddof=1, downside deviation
sqrt(mean(min(r, 0)^2)) over all returns, the running high starting at the starting value,
CAGR = growth^(252 / number of returns) - 1, Calmar = CAGR / |max drawdown|); plain pandas for
the rest (drawdown dates, trade statistics, exposure, turnover, costs, the benchmark's
return and drawdown). The daily returns are pandas' pct_change of the equity with the
starting equity prepended, so the first return is against the starting equity. Money is
read as float (the Rust code sums exact decimals; the comparison allows 1e-9 relative). The
definitions are in docs/backtest.md, "Metrics". An undefined metric (NaN or infinite here)
is null, as in the Rust output.

How to run (from the repository root; keep the venv out of the repository):

    python3 -m venv /tmp/metrics-venv
    /tmp/metrics-venv/bin/pip install pandas==3.1.1 empyrical-reloaded==0.7.1
    /tmp/metrics-venv/bin/python tools/backtest_metrics.py --golden
        rewrites tests/data/backtest/golden_metrics.json from the fixture beside it
        (tests/data/backtest/{equity,trades}.csv, written by tools/backtest_fixture.py)
    /tmp/metrics-venv/bin/python tools/backtest_metrics.py --compare DIR/backtest.json
        recomputes from DIR/equity.csv and DIR/trades.csv with backtest.json's
        "starting_cash" and "benchmark" (the label), and compares with its "metrics"
    /tmp/metrics-venv/bin/python tools/backtest_metrics.py DIR STARTING_EQUITY LABEL
        prints the metrics as JSON

--compare exits 0 when every metric agrees (numbers to 1e-9 relative, 1e-12 absolute near
zero; counts, dates, labels and nulls exactly), 1 naming every metric that differs, 2 when
the files cannot be read.

The committed golden file was produced with pandas 3.1.1, numpy 2.4.6, empyrical-reloaded
0.7.1, scipy 1.17.1, Bottleneck 1.6.1, Python 3.11.7.
"""

import json
import math
import sys
from pathlib import Path

import empyrical as ep
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "data" / "backtest"
GOLDEN_STARTING_EQUITY = "100000"
GOLDEN_LABEL = "SPY"
REL_TOL = 1e-9
ABS_TOL = 1e-12
YEAR = 252
EXIT_REASONS = ["stop", "target_r2", "stop_level", "flatten", "end_of_backtest"]


def num(x):
    """A finite float, or None for NaN / infinity."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def day(ts):
    return None if ts is None else pd.Timestamp(ts).date().isoformat()


def read(directory: Path):
    equity = pd.read_csv(directory / "equity.csv", dtype=str, keep_default_na=False)
    trades = pd.read_csv(directory / "trades.csv", dtype=str, keep_default_na=False)
    expected_e = ["date", "equity", "cash", "long_value", "benchmark"]
    if list(equity.columns) != expected_e:
        raise ValueError(f"equity.csv header {list(equity.columns)}, expected {expected_e}")
    equity["date"] = pd.to_datetime(equity["date"], format="%Y-%m-%d")
    for c in expected_e[1:]:
        equity[c] = equity[c].astype(float)
    equity = equity.set_index("date")
    for c in ["entry_price", "exit_price", "qty", "gross_pnl", "costs", "net_pnl",
              "r_multiple", "traded_notional"]:
        trades[c] = trades[c].astype(float)
    trades["entry_time"] = pd.to_datetime(trades["entry_time"], utc=True, format="ISO8601")
    trades["exit_time"] = pd.to_datetime(trades["exit_time"], utc=True, format="ISO8601")
    trades["trimmed"] = trades["trimmed"].map({"true": True, "false": False})
    return equity, trades


def drawdown(values: pd.Series, start_value, start_is_dated: bool):
    """Max drawdown of `values` with the running high starting at `start_value` (the series'
    first value when `start_is_dated`), by cummax: depth, peak, trough, recovery dates."""
    if len(values) == 0 or not (values > 0).all() or not np.isfinite(values).all():
        return {"depth": None, "peak_date": None, "trough_date": None, "recovery_date": None}
    high = values.cummax().clip(lower=start_value)
    fall = values / high - 1.0
    depth = fall.min()
    if not depth < 0:
        return {"depth": num(depth), "peak_date": None, "trough_date": None,
                "recovery_date": None}
    trough = fall.idxmin()  # the first minimum
    peak_value = high[trough]
    before = values[:trough]
    at_high = before[before == peak_value]
    peak = at_high.index[-1] if len(at_high) else None
    if peak is None and start_is_dated:
        peak = values.index[0]
    after = values[values.index > trough]
    recovered = after[after >= peak_value]
    return {
        "depth": num(depth),
        "peak_date": day(peak),
        "trough_date": day(trough),
        "recovery_date": day(recovered.index[0]) if len(recovered) else None,
    }


def mean_or_none(series: pd.Series):
    return num(series.mean()) if len(series) else None


def compute(equity: pd.DataFrame, trades: pd.DataFrame, starting_equity: float, label: str):
    n = len(equity)
    e = equity["equity"]
    curve_ok = starting_equity > 0 and bool((e > 0).all())
    out = {
        "first_date": day(e.index[0]) if n else None,
        "last_date": day(e.index[-1]) if n else None,
        "sessions": n,
        "starting_equity": starting_equity,
        "ending_equity": float(e.iloc[-1]) if n else starting_equity,
        "net_profit": (float(e.iloc[-1]) if n else starting_equity) - starting_equity,
    }
    if curve_ok and n:
        with_start = pd.concat([pd.Series([starting_equity]), e.reset_index(drop=True)])
        returns = with_start.pct_change().iloc[1:].to_numpy()
        dd = drawdown(e, starting_equity, start_is_dated=False)
        out.update(
            total_return=num(e.iloc[-1] / starting_equity - 1.0),
            cagr=num(ep.cagr(returns)),
            volatility=num(ep.annual_volatility(returns)) if n >= 2 else None,
            sharpe=num(ep.sharpe_ratio(returns)),
            sortino=num(ep.sortino_ratio(returns)),
            calmar=num(ep.calmar_ratio(returns)),
            max_drawdown=dd,
        )
        # empyrical's own depth, from compounded returns: the same number, independently.
        ep_depth = ep.max_drawdown(returns)
        assert math.isclose(ep_depth, dd["depth"], rel_tol=1e-12, abs_tol=1e-15), (
            ep_depth, dd["depth"])
    else:
        out.update(total_return=None, cagr=None, volatility=None, sharpe=None, sortino=None,
                   calmar=None, max_drawdown=drawdown(pd.Series(dtype=float), 0, False))

    count = len(trades)
    net = trades["net_pnl"]
    wins, losses = trades[net > 0], trades[net < 0]
    r = trades["r_multiple"]
    finite_r = np.isfinite(r)
    winning, losing = float(wins["net_pnl"].sum()), float(losses["net_pnl"].sum())
    held_days = (trades["exit_time"] - trades["entry_time"]).dt.total_seconds() / 86400.0
    by_reason = trades["exit_reason"].value_counts()
    out["trades"] = {
        "count": count,
        "wins": len(wins),
        "losses": len(losses),
        "breakeven": count - len(wins) - len(losses),
        "open_at_end": int((trades["exit_reason"] == "end_of_backtest").sum()),
        "trimmed": int(trades["trimmed"].sum()),
        "by_exit_reason": {k: int(by_reason[k]) for k in EXIT_REASONS if k in by_reason},
        "win_rate": len(wins) / count if count else None,
        "winning_pnl": winning,
        "losing_pnl": losing,
        "net_pnl": float(net.sum()),
        "gross_pnl": float(trades["gross_pnl"].sum()),
        "average_win": num(wins["net_pnl"].mean()) if len(wins) else None,
        "average_loss": num(losses["net_pnl"].mean()) if len(losses) else None,
        "expectancy": num(net.mean()) if count else None,
        "profit_factor": num(winning / -losing) if len(losses) else None,
        "expectancy_r": mean_or_none(r[finite_r]),
        "average_win_r": mean_or_none(r[finite_r & (net > 0)]),
        "average_loss_r": mean_or_none(r[finite_r & (net < 0)]),
        "average_holding_days": mean_or_none(held_days),
    }
    out["exposure"] = {
        "time_in_market": float((equity["long_value"] > 0).mean()) if n else None,
        "average_gross": mean_or_none(equity["long_value"] / e) if curve_ok else None,
    }
    traded = float(trades["traded_notional"].sum())
    average_equity = float(e.mean()) if n else None
    turnover = num(traded / average_equity) if average_equity and average_equity > 0 else None
    out["turnover"] = {
        "traded_notional": traded,
        "average_equity": average_equity,
        "turnover": turnover,
        "annual_turnover": num(turnover * YEAR / n) if turnover is not None else None,
    }
    out["costs"] = float(trades["costs"].sum())

    b = equity["benchmark"]
    if n and bool(np.isfinite(b).all()) and bool((b > 0).all()):
        b_returns = b.pct_change().iloc[1:].to_numpy()
        out["benchmark"] = {
            "label": label,
            "total_return": num(b.iloc[-1] / b.iloc[0] - 1.0),
            "volatility": num(ep.annual_volatility(b_returns)) if len(b_returns) >= 2 else None,
            "sharpe": num(ep.sharpe_ratio(b_returns)),
            "max_drawdown": drawdown(b, b.iloc[0], start_is_dated=True),
        }
    else:
        out["benchmark"] = {"label": label, "total_return": None, "volatility": None,
                            "sharpe": None, "max_drawdown": drawdown(pd.Series(dtype=float), 0, False)}
    return out


def flatten(obj, prefix=""):
    if isinstance(obj, dict):
        flat = {}
        for k, v in obj.items():
            flat.update(flatten(v, f"{prefix}{k}."))
        return flat
    return {prefix[:-1]: obj}


def same(ours, theirs) -> bool:
    """Numbers (the Rust side writes decimals as strings) to REL_TOL; the rest exactly."""
    if ours is None or theirs is None:
        return ours is None and theirs is None
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return ours == theirs
    if isinstance(ours, str) and isinstance(theirs, str):
        return ours == theirs
    try:
        a, b = float(ours), float(theirs)
    except (TypeError, ValueError):
        return False
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def differences(expected: dict, actual: dict) -> list:
    exp, act = flatten(expected), flatten(actual)
    lines = []
    for key in sorted(set(exp) | set(act)):
        if key not in act:
            lines.append(f"{key}: missing from backtest.json (recomputed {exp[key]!r})")
        elif key not in exp:
            lines.append(f"{key}: not recomputed by this tool (backtest.json has {act[key]!r})")
        elif not same(act[key], exp[key]):
            lines.append(f"{key}: backtest.json has {act[key]!r}, recomputed {exp[key]!r}")
    return lines


def compare(path: Path) -> int:
    try:
        report = json.loads(path.read_text())
        # backtest.json names them starting_cash and benchmark (older drafts: *_equity, *_label).
        starting_equity = float(report.get("starting_cash", report.get("starting_equity")))
        label = report.get("benchmark", report.get("benchmark_label"))
        metrics = report["metrics"]
        equity, trades = read(path.parent)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"cannot check {path}: {e}", file=sys.stderr)
        return 2
    ours = compute(equity, trades, starting_equity, label)
    diffs = differences(ours, metrics)
    for line in diffs:
        print(f"{path}: {line}", file=sys.stderr)
    if diffs:
        print(f"{len(diffs)} metric(s) differ from the independent implementation",
              file=sys.stderr)
        return 1
    print(f"{path}: all {len(flatten(ours))} metrics agree with the independent "
          f"implementation (1e-9 relative)")
    return 0


def main(argv) -> int:
    if argv[:1] == ["--compare"] and len(argv) == 2:
        return compare(Path(argv[1]))
    if argv == ["--golden"]:
        equity, trades = read(FIXTURE)
        metrics = compute(equity, trades, float(GOLDEN_STARTING_EQUITY), GOLDEN_LABEL)
        golden = {
            "generated_by": "tools/backtest_metrics.py --golden",
            "starting_equity": GOLDEN_STARTING_EQUITY,
            "benchmark_label": GOLDEN_LABEL,
            "metrics": metrics,
        }
        (FIXTURE / "golden_metrics.json").write_text(json.dumps(golden, indent=2) + "\n")
        return 0
    if len(argv) == 3:
        equity, trades = read(Path(argv[0]))
        print(json.dumps(compute(equity, trades, float(argv[1]), argv[2]), indent=2))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
