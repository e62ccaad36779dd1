//! The metrics of a trading run, computed from its daily equity curve and its round trips:
//! returns and risk (total return, CAGR, volatility, max drawdown, Sharpe, Sortino, Calmar),
//! trade statistics (win rate, average win/loss, R multiples, expectancy, profit factor,
//! holding time), exposure, turnover, costs, and the benchmark's return, drawdown and Sharpe.
//!
//! Conventions (each formula is in `docs/backtest.md`, "Metrics"): simple daily returns of
//! the close-to-close equity, the first against the starting equity; 252 sessions a year;
//! risk-free rate 0; sample standard deviation (n − 1). A metric that is undefined for the
//! data (no trades, no losses, one session, flat equity, a non-positive equity) is `None`
//! (`null` in JSON), never NaN or infinity; nothing here panics on any input.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use super::{EquityPoint, ExitReason, RoundTrip};

/// Sessions in a year, for annualising (the NYSE has 250–253).
pub const SESSIONS_PER_YEAR: f64 = 252.0;

/// Everything a backtest reports about its run. Money is `Decimal` (exact sums of the
/// trips' and the curve's decimals); ratios are `f64`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// The first and last session of the equity curve, and how many sessions it has.
    pub first_date: Option<NaiveDate>,
    pub last_date: Option<NaiveDate>,
    pub sessions: usize,
    pub starting_equity: Decimal,
    /// The last session's equity (the starting equity when there is no session).
    pub ending_equity: Decimal,
    /// `ending_equity − starting_equity`.
    pub net_profit: Option<Decimal>,
    /// `ending_equity / starting_equity − 1`.
    pub total_return: Option<f64>,
    /// `(ending_equity / starting_equity)^(252 / sessions) − 1`.
    pub cagr: Option<f64>,
    /// Sample standard deviation of the daily returns × √252.
    pub volatility: Option<f64>,
    /// Mean daily return / its sample standard deviation × √252 (risk-free rate 0).
    pub sharpe: Option<f64>,
    /// Mean daily return / downside deviation × √252; the downside deviation is
    /// `√(Σ min(r, 0)² / n)` over all n daily returns (target 0).
    pub sortino: Option<f64>,
    /// `cagr / |max_drawdown.depth|`.
    pub calmar: Option<f64>,
    pub max_drawdown: Drawdown,
    pub trades: TradeStats,
    pub exposure: Exposure,
    pub turnover: Turnover,
    /// Commissions and slippage of all round trips (`Σ costs`).
    pub costs: Option<Decimal>,
    pub benchmark: Benchmark,
}

/// The deepest fall of a series below its running high.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drawdown {
    /// `min(value / running high − 1)`, in [−1, 0]; 0 when the series never fell below a
    /// high; `None` when the series is undefined (no session, a non-positive value).
    pub depth: Option<f64>,
    /// The last session at the high the deepest drawdown fell from; `None` when that high is
    /// the starting equity (before the first session) or when there is no drawdown.
    pub peak_date: Option<NaiveDate>,
    /// The session of the lowest point (the first one, if tied); `None` without a drawdown.
    pub trough_date: Option<NaiveDate>,
    /// The first session after the trough back at or above the high; `None` when the series
    /// has not recovered (or there is no drawdown).
    pub recovery_date: Option<NaiveDate>,
}

/// Statistics of the round trips (trips still open at the end count, valued at the last
/// close). A win has `net_pnl > 0`, a loss `net_pnl < 0`; a trip at exactly 0 is neither but
/// counts in `count`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TradeStats {
    pub count: usize,
    pub wins: usize,
    pub losses: usize,
    pub breakeven: usize,
    /// Trips with exit reason `end_of_backtest`.
    pub open_at_end: usize,
    /// Trips that sold part of the position at R1.
    pub trimmed: usize,
    pub by_exit_reason: BTreeMap<ExitReason, usize>,
    /// `wins / count`.
    pub win_rate: Option<f64>,
    /// `Σ net_pnl` of the wins (≥ 0), of the losses (≤ 0), and of all trips.
    pub winning_pnl: Option<Decimal>,
    pub losing_pnl: Option<Decimal>,
    pub net_pnl: Option<Decimal>,
    /// `Σ gross_pnl` of all trips (before costs).
    pub gross_pnl: Option<Decimal>,
    /// `winning_pnl / wins` and `losing_pnl / losses` (negative).
    pub average_win: Option<Decimal>,
    pub average_loss: Option<Decimal>,
    /// Expectancy in dollars: `net_pnl / count`.
    pub expectancy: Option<Decimal>,
    /// `winning_pnl / |losing_pnl|`; `None` without a loss.
    pub profit_factor: Option<f64>,
    /// Expectancy in R: the mean R multiple of the trips whose R multiple is finite.
    pub expectancy_r: Option<f64>,
    /// Mean R multiple of the wins and of the losses (finite R multiples only).
    pub average_win_r: Option<f64>,
    pub average_loss_r: Option<f64>,
    /// Mean of `exit_time − entry_time`, in calendar days (24 h).
    pub average_holding_days: Option<f64>,
}

/// How much of the account was in the market.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exposure {
    /// Share of sessions with a position at the close (`long_value > 0`).
    pub time_in_market: Option<f64>,
    /// Mean over sessions of `long_value / equity`.
    pub average_gross: Option<f64>,
}

/// How much was traded relative to the account. Two-sided: buying and later selling the
/// whole account once is a turnover of 2.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Turnover {
    /// `Σ traded_notional` of the trips (buys and sells).
    pub traded_notional: Option<Decimal>,
    /// Mean of the sessions' equity.
    pub average_equity: Option<Decimal>,
    /// `traded_notional / average_equity` over the whole run.
    pub turnover: Option<f64>,
    /// `turnover × 252 / sessions`.
    pub annual_turnover: Option<f64>,
}

/// The benchmark over the same sessions. Its returns start from its first session's close
/// (it has no value before the first session), so it has one return fewer than the equity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Benchmark {
    /// What the series is: e.g. "SPY" or "equal-weight index of the data set".
    pub label: String,
    /// `last / first − 1`.
    pub total_return: Option<f64>,
    pub volatility: Option<f64>,
    pub sharpe: Option<f64>,
    pub max_drawdown: Drawdown,
}

/// Computes every metric of a run that started with `starting_equity` and produced the daily
/// `equity` curve (one point per session, in date order) and the round `trips`.
pub fn compute(
    starting_equity: Decimal,
    equity: &[EquityPoint],
    trips: &[RoundTrip],
    benchmark_label: &str,
) -> Metrics {
    let ending_equity = equity.last().map_or(starting_equity, |p| p.equity);
    let start = float(starting_equity);
    // The equity curve as floats, `None` unless the starting equity and every session's
    // equity are positive (a return against a non-positive equity means nothing).
    let curve: Option<Vec<f64>> = (starting_equity > Decimal::ZERO
        && equity.iter().all(|p| p.equity > Decimal::ZERO))
    .then(|| equity.iter().map(|p| float(p.equity)).collect());
    let returns: Option<Vec<f64>> = curve.as_ref().map(|values| {
        std::iter::once(start)
            .chain(values.iter().copied())
            .zip(values.iter())
            .map(|(before, after)| after / before - 1.0)
            .collect()
    });
    let sessions = equity.len();
    let growth = curve
        .as_ref()
        .filter(|_| sessions > 0)
        .and_then(|_| finite(float(ending_equity) / start));
    let total_return = growth.map(|g| g - 1.0);
    let cagr = growth.and_then(|g| finite(g.powf(SESSIONS_PER_YEAR / sessions as f64) - 1.0));
    let dated: Vec<(NaiveDate, f64)> = match &curve {
        Some(values) => equity
            .iter()
            .map(|p| p.date)
            .zip(values.iter().copied())
            .collect(),
        None => Vec::new(),
    };
    let max_drawdown = match &curve {
        Some(_) if sessions > 0 => drawdown(start, None, &dated),
        _ => Drawdown::undefined(),
    };
    let calmar = match (cagr, max_drawdown.depth) {
        (Some(cagr), Some(depth)) if depth < 0.0 => finite(cagr / -depth),
        _ => None,
    };
    let returns = returns.unwrap_or_default();
    Metrics {
        first_date: equity.first().map(|p| p.date),
        last_date: equity.last().map(|p| p.date),
        sessions,
        starting_equity,
        ending_equity,
        net_profit: ending_equity.checked_sub(starting_equity),
        total_return,
        cagr,
        volatility: volatility(&returns),
        sharpe: sharpe(&returns),
        sortino: sortino(&returns),
        calmar,
        max_drawdown,
        trades: trade_stats(trips),
        exposure: exposure(equity, curve.is_some()),
        turnover: turnover(equity, trips),
        costs: sum(trips.iter().map(|t| t.costs)),
        benchmark: benchmark(equity, benchmark_label),
    }
}

impl Drawdown {
    fn undefined() -> Drawdown {
        Drawdown {
            depth: None,
            peak_date: None,
            trough_date: None,
            recovery_date: None,
        }
    }
}

/// A decimal as the nearest f64 (through its text, so exactly what Python's `float()` of the
/// CSV field gives: the independent check compares like with like).
fn float(d: Decimal) -> f64 {
    d.to_string().parse().unwrap_or(f64::NAN)
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn sum(values: impl IntoIterator<Item = Decimal>) -> Option<Decimal> {
    values
        .into_iter()
        .try_fold(Decimal::ZERO, |total, v| total.checked_add(v))
}

fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    finite(values.iter().sum::<f64>() / values.len() as f64)
}

/// Sample standard deviation (n − 1); needs two values; exactly 0 when they are all equal.
fn sample_std(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let m = mean(values)?;
    // Identical values have no spread; the float mean can differ from them in the last bit,
    // and dividing by that residue (≈1e-18) would turn "undefined" into a huge ratio.
    if values.iter().all(|v| *v == values[0]) {
        return Some(0.0);
    }
    let squares: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    finite((squares / (values.len() - 1) as f64).sqrt())
}

fn volatility(returns: &[f64]) -> Option<f64> {
    sample_std(returns).and_then(|s| finite(s * SESSIONS_PER_YEAR.sqrt()))
}

/// `None` for fewer than two returns or returns without variation (flat equity).
fn sharpe(returns: &[f64]) -> Option<f64> {
    let std = sample_std(returns).filter(|s| *s > 0.0)?;
    finite(mean(returns)? / std * SESSIONS_PER_YEAR.sqrt())
}

/// `None` for fewer than two returns or without a negative return.
fn sortino(returns: &[f64]) -> Option<f64> {
    if returns.len() < 2 {
        return None;
    }
    let downside_squares: f64 = returns.iter().map(|r| r.min(0.0) * r.min(0.0)).sum();
    let downside = (downside_squares / returns.len() as f64).sqrt();
    if downside <= 0.0 || !downside.is_finite() {
        return None;
    }
    finite(mean(returns)? / downside * SESSIONS_PER_YEAR.sqrt())
}

/// The max drawdown of `series` (positive values in date order), whose running high starts at
/// `start` (dated `start_date`, `None` = before the first session).
fn drawdown(start: f64, start_date: Option<NaiveDate>, series: &[(NaiveDate, f64)]) -> Drawdown {
    let mut high = start;
    let mut high_date = start_date;
    let mut depth = 0.0;
    let mut deepest: Option<(usize, f64, Option<NaiveDate>)> = None;
    for (i, (date, value)) in series.iter().enumerate() {
        if *value >= high {
            high = *value;
            high_date = Some(*date);
        }
        let fall = value / high - 1.0;
        if fall < depth {
            depth = fall;
            deepest = Some((i, high, high_date));
        }
    }
    let Some((trough, high, peak_date)) = deepest else {
        return Drawdown {
            depth: finite(depth),
            peak_date: None,
            trough_date: None,
            recovery_date: None,
        };
    };
    Drawdown {
        depth: finite(depth),
        peak_date,
        trough_date: series.get(trough).map(|(d, _)| *d),
        recovery_date: series
            .iter()
            .skip(trough + 1)
            .find(|(_, v)| *v >= high)
            .map(|(d, _)| *d),
    }
}

fn trade_stats(trips: &[RoundTrip]) -> TradeStats {
    let count = trips.len();
    let wins: Vec<&RoundTrip> = trips.iter().filter(|t| t.net_pnl > Decimal::ZERO).collect();
    let losses: Vec<&RoundTrip> = trips.iter().filter(|t| t.net_pnl < Decimal::ZERO).collect();
    let mut by_exit_reason = BTreeMap::new();
    for t in trips {
        *by_exit_reason.entry(t.exit_reason).or_insert(0) += 1;
    }
    let winning_pnl = sum(wins.iter().map(|t| t.net_pnl));
    let losing_pnl = sum(losses.iter().map(|t| t.net_pnl));
    let net_pnl = sum(trips.iter().map(|t| t.net_pnl));
    let average = |total: Option<Decimal>, n: usize| {
        total.and_then(|total| match n {
            0 => None,
            n => total.checked_div(Decimal::from(n)),
        })
    };
    let profit_factor = match (winning_pnl, losing_pnl) {
        (Some(won), Some(lost)) if lost < Decimal::ZERO => finite(float(won) / -float(lost)),
        _ => None,
    };
    let finite_r = |of: &[&RoundTrip]| -> Vec<f64> {
        of.iter()
            .map(|t| t.r_multiple)
            .filter(|r| r.is_finite())
            .collect()
    };
    let all: Vec<&RoundTrip> = trips.iter().collect();
    let holding_days: Vec<f64> = trips
        .iter()
        .map(|t| {
            let held = t.exit_time.signed_duration_since(t.entry_time);
            (held.num_seconds() as f64 + f64::from(held.subsec_nanos()) * 1e-9) / 86_400.0
        })
        .collect();
    TradeStats {
        count,
        wins: wins.len(),
        losses: losses.len(),
        breakeven: count - wins.len() - losses.len(),
        open_at_end: trips
            .iter()
            .filter(|t| t.exit_reason == ExitReason::EndOfBacktest)
            .count(),
        trimmed: trips.iter().filter(|t| t.trimmed).count(),
        by_exit_reason,
        win_rate: (count > 0).then(|| wins.len() as f64 / count as f64),
        winning_pnl,
        losing_pnl,
        net_pnl,
        gross_pnl: sum(trips.iter().map(|t| t.gross_pnl)),
        average_win: average(winning_pnl, wins.len()),
        average_loss: average(losing_pnl, losses.len()),
        expectancy: average(net_pnl, count),
        profit_factor,
        expectancy_r: mean(&finite_r(&all)),
        average_win_r: mean(&finite_r(&wins)),
        average_loss_r: mean(&finite_r(&losses)),
        average_holding_days: mean(&holding_days),
    }
}

/// `curve_defined`: every session's equity is positive (else the gross share is undefined).
fn exposure(equity: &[EquityPoint], curve_defined: bool) -> Exposure {
    let n = equity.len();
    let in_market = equity
        .iter()
        .filter(|p| p.long_value > Decimal::ZERO)
        .count();
    let gross: Vec<f64> = equity
        .iter()
        .map(|p| float(p.long_value) / float(p.equity))
        .collect();
    Exposure {
        time_in_market: (n > 0).then(|| in_market as f64 / n as f64),
        average_gross: if curve_defined { mean(&gross) } else { None },
    }
}

fn turnover(equity: &[EquityPoint], trips: &[RoundTrip]) -> Turnover {
    let traded_notional = sum(trips.iter().map(|t| t.traded_notional));
    let average_equity = match equity.len() {
        0 => None,
        n => sum(equity.iter().map(|p| p.equity))
            .and_then(|total| total.checked_div(Decimal::from(n))),
    };
    let turnover = match (traded_notional, average_equity) {
        (Some(traded), Some(avg)) if avg > Decimal::ZERO => finite(float(traded) / float(avg)),
        _ => None,
    };
    Turnover {
        traded_notional,
        average_equity,
        turnover,
        annual_turnover: turnover.and_then(|t| finite(t * SESSIONS_PER_YEAR / equity.len() as f64)),
    }
}

/// The benchmark's metrics: defined when every session's value is finite and positive.
fn benchmark(equity: &[EquityPoint], label: &str) -> Benchmark {
    let series: Vec<(NaiveDate, f64)> = equity.iter().map(|p| (p.date, p.benchmark)).collect();
    let undefined = Benchmark {
        label: label.to_string(),
        total_return: None,
        volatility: None,
        sharpe: None,
        max_drawdown: Drawdown::undefined(),
    };
    if !series.iter().all(|(_, v)| v.is_finite() && *v > 0.0) {
        return undefined;
    }
    let (Some(&(first_date, first)), Some(&(_, last))) = (series.first(), series.last()) else {
        return undefined;
    };
    let returns: Vec<f64> = series.windows(2).map(|w| w[1].1 / w[0].1 - 1.0).collect();
    Benchmark {
        label: label.to_string(),
        total_return: finite(last / first - 1.0),
        volatility: volatility(&returns),
        sharpe: sharpe(&returns),
        max_drawdown: drawdown(first, Some(first_date), &series),
    }
}

#[cfg(test)]
mod tests;
