//! The allowed range of every number in the configuration file, checked when the file is
//! loaded ([`super::Config::from_toml`]), so `avwap-gate --config` (the NixOS module's
//! build-time check) refuses what would later crash or mislead a service.
//!
//! Why here and not at each use: a value that parses but makes a service panic (a minute count
//! that overflows time arithmetic, a risk fraction of 500 %) turns `Restart=on-failure` into a
//! crash loop, and one that only fails later (a coverage floor above 100 %) fails at 06:00
//! instead of at deploy time. One table ([`LIMITS`]) also documents the ranges: the tests keep
//! it covering every numeric key and every default inside its range.
//!
//! The ranges are what a careful operator would expect, with room on both sides of the
//! defaults; each entry's comment says why its ends are where they are. Errors name the full key
//! (`[execution] risk_per_trade`), the offending number and the allowed range.

use super::Config;
use rust_decimal::Decimal;
use std::fmt;
use std::str::FromStr;

/// Minutes of a regular NYSE session (09:30–16:00): the entry window lies inside it.
pub const SESSION_MINUTES: i64 = 390;

/// About ten years of sessions (252 a year): the most any bar-count setting may ask for, and
/// no more than the longest history ([`MAX_HISTORY_DAYS`]) holds by the estimate below.
pub const MAX_SESSIONS: i64 = 2500;

/// Calendar days in ten years (with leap days): the most history a scan reads.
pub const MAX_HISTORY_DAYS: i64 = 3660;

/// Sessions per calendar year, for the estimate of how many sessions `history_days` holds
/// (252 sessions a year, rounded down so the estimate errs towards "too few").
const SESSIONS_PER_YEAR: i64 = 250;

/// A number's allowed range: lower ends may be open ("above 0"), upper ends are closed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bounds {
    /// A whole number in `min..=max`.
    Int { min: i64, max: i64 },
    /// A float in `min..=max` (`min` itself excluded when `open_min`); never NaN or infinite.
    Float { min: f64, open_min: bool, max: f64 },
    /// A decimal (the file writes it as a string, e.g. `"0.005"`) in `min..=max` (`min`
    /// excluded when `open_min`); bounds as (mantissa, scale): (5, 3) is 0.005.
    Decimal {
        min: (i64, u32),
        open_min: bool,
        max: (i64, u32),
    },
}

const fn int(min: i64, max: i64) -> Bounds {
    Bounds::Int { min, max }
}

const fn float(min: f64, max: f64) -> Bounds {
    Bounds::Float {
        min,
        open_min: false,
        max,
    }
}

/// Above `min` (excluded), up to `max`.
const fn float_above(min: f64, max: f64) -> Bounds {
    Bounds::Float {
        min,
        open_min: true,
        max,
    }
}

const fn dec(min: (i64, u32), max: (i64, u32)) -> Bounds {
    Bounds::Decimal {
        min,
        open_min: false,
        max,
    }
}

/// Above `min` (excluded), up to `max`.
const fn dec_above(min: (i64, u32), max: (i64, u32)) -> Bounds {
    Bounds::Decimal {
        min,
        open_min: true,
        max,
    }
}

fn decimal((mantissa, scale): (i64, u32)) -> Decimal {
    // The table's scales are all far below Decimal's maximum of 28 (a test builds every bound).
    Decimal::try_new(mantissa, scale).unwrap_or(Decimal::ZERO)
}

/// One numeric key and its range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// The TOML table: `execution`, `scan`, `scan.liquidity`, …
    pub section: &'static str,
    pub key: &'static str,
    pub bounds: Bounds,
    /// What the number counts, shown after the range.
    pub unit: &'static str,
}

const fn limit(
    section: &'static str,
    key: &'static str,
    bounds: Bounds,
    unit: &'static str,
) -> Limit {
    Limit {
        section,
        key,
        bounds,
        unit,
    }
}

/// Bars, sessions or weeks a lookback covers: at least one, at most ten years of sessions.
const LOOKBACK: Bounds = int(1, MAX_SESSIONS);
const BARS: &str = "daily bars";
/// A percentage of a price: 0 to 100 %.
const PERCENT: Bounds = float(0.0, 100.0);
/// A weight or bonus added to a score: 0 to 1000 (the anchor priorities are 40–100).
const SCORE: Bounds = float(0.0, 1000.0);

/// Every numeric key of the file with its range. `[gate]` has no numeric key.
// One key per line: the table reads as the documentation it is.
#[rustfmt::skip]
pub const LIMITS: &[Limit] = &[
    // [scan]
    // One day's list: more rows than 1000 is no watchlist a person reviews.
    limit("scan", "max_candidates", int(1, 1000), "rows"),
    // A fraction; 0 would disable the stale-data floor, above 1 no scan could ever pass.
    limit("scan", "min_coverage", float_above(0.0, 1.0), "a fraction of the universe, 0.9 = 90 %"),
    // At least a month; at most ten years (more than any lookback below can use).
    limit("scan", "history_days", int(30, MAX_HISTORY_DAYS), "calendar days"),
    // [scan.universe]: the Russell 3000 holds about 3000 names; a floor above 5000 refuses
    // every real holdings file.
    limit("scan.universe", "min_members", int(1, 5000), "equity rows"),
    // [scan.regime]
    limit("scan.regime", "sma_len", LOOKBACK, BARS),
    // [scan.liquidity]: "recent" is at most a year back (beyond that the date arithmetic
    // only burns time: a year is longer than every sensible liquidity window).
    limit("scan.liquidity", "window_calendar_days", int(1, 366), "calendar days"),
    // 0 disables the check; a year-long window holds at most 262 weekdays (and the window
    // must hold as many as asked: checked below).
    limit("scan.liquidity", "min_bars_in_window", int(0, 262), BARS),
    limit("scan.liquidity", "average_bars", LOOKBACK, BARS),
    // Minimums: 0 disables each; the maxima are above every listed stock's real figures.
    limit("scan.liquidity", "min_avg_volume", float(0.0, 1e10), "shares a day"),
    limit("scan.liquidity", "min_avg_dollar_volume", float(0.0, 1e13), "dollars a day"),
    limit("scan.liquidity", "min_price", float(0.0, 1e6), "dollars"),
    // [scan.gates]
    limit("scan.gates", "min_bars", LOOKBACK, BARS),
    limit("scan.gates", "weekly_min_bars", LOOKBACK, BARS),
    // Ten years of weeks.
    limit("scan.gates", "weekly_min_weeks", int(1, 520), "weeks"),
    limit("scan.gates", "weekly_sma_fast", int(1, 520), "weeks"),
    limit("scan.gates", "weekly_sma_slow", int(1, 520), "weeks"),
    limit("scan.gates", "tier_sma_fast", LOOKBACK, BARS),
    limit("scan.gates", "tier_sma_slow", LOOKBACK, BARS),
    limit("scan.gates", "atr_len", LOOKBACK, BARS),
    limit("scan.gates", "min_atr_dollars", float(0.0, 10_000.0), "dollars"),
    // A cap: 0 would refuse every symbol.
    limit("scan.gates", "max_atr_pct", float_above(0.0, 100.0), "percent of the close"),
    limit("scan.gates", "atr_pct_median_window", LOOKBACK, BARS),
    limit("scan.gates", "max_atr_pct_vs_median", float_above(0.0, 100.0), "times the median"),
    // [scan.anchors]
    limit("scan.anchors", "lookback", LOOKBACK, BARS),
    limit("scan.anchors", "swing_lookback", LOOKBACK, BARS),
    // A gap of 0 would make every bar a gap; 1 is a 100 % gap.
    limit("scan.anchors", "gap_fraction", float_above(0.0, 1.0), "a fraction, 0.04 = 4 %"),
    limit("scan.anchors", "volume_spike_mult", float_above(0.0, 1000.0), "times the volume SMA"),
    limit("scan.anchors", "volume_sma_len", LOOKBACK, BARS),
    // Where in the bar's high−low range the close lies: 0 = at the low, 1 = at the high.
    limit("scan.anchors", "breakout_close_location", float(0.0, 1.0), "a fraction of the range"),
    limit("scan.anchors", "breakout_high_lookback", LOOKBACK, BARS),
    // Priorities are score points; 1000 is ten times the largest default.
    limit("scan.anchors", "ytd_priority", int(0, 1000), "score points"),
    limit("scan.anchors", "gap_priority", int(0, 1000), "score points"),
    limit("scan.anchors", "volume_breakout_priority", int(0, 1000), "score points"),
    limit("scan.anchors", "mtd_priority", int(0, 1000), "score points"),
    limit("scan.anchors", "swing_low_priority", int(0, 1000), "score points"),
    limit("scan.anchors", "swing_high_priority", int(0, 1000), "score points"),
    // [scan.selection]
    limit("scan.selection", "avwap_slope_lookback", LOOKBACK, BARS),
    // A fractional change: the AVWAP cannot fall by more than 100 %; +100 % is already absurd.
    limit("scan.selection", "min_avwap_slope", float(-1.0, 1.0), "a fraction, -0.03 = -3 %"),
    // A cap on the distance above the AVWAP: 0 would refuse every symbol.
    limit("scan.selection", "max_dist_pct", float_above(0.0, 100.0), "percent"),
    limit("scan.selection", "trend_score_weight", SCORE, "score points per TrendScore point"),
    limit("scan.selection", "near_bonus_min_dist_pct", PERCENT, "percent"),
    limit("scan.selection", "near_bonus_max_dist_pct", PERCENT, "percent"),
    limit("scan.selection", "near_bonus", SCORE, "score points"),
    limit("scan.selection", "reclaim_bonus", SCORE, "score points"),
    // [scan.stop]
    limit("scan.stop", "sma_len", LOOKBACK, BARS),
    limit("scan.stop", "low_lookback", LOOKBACK, BARS),
    // The stop is the structural level times this: above 1 would put it above the level.
    limit("scan.stop", "buffer", float_above(0.0, 1.0), "a factor, 0.997 = 0.3 % below"),
    // [scan.trend_score]
    limit("scan.trend_score", "sma_len", LOOKBACK, BARS),
    limit("scan.trend_score", "slope_lookback", LOOKBACK, BARS),
    limit("scan.trend_score", "adx_len", LOOKBACK, BARS),
    limit("scan.trend_score", "atr_len", LOOKBACK, BARS),
    limit("scan.trend_score", "atr_window", LOOKBACK, BARS),
    limit("scan.trend_score", "slope_weight", SCORE, "a weight"),
    limit("scan.trend_score", "adx_weight", SCORE, "a weight"),
    limit("scan.trend_score", "vol_ratio_weight", SCORE, "a weight"),
    // [scan.context]
    limit("scan.context", "vwap_lookback", LOOKBACK, BARS),
    limit("scan.context", "control_buffer_pct", PERCENT, "percent"),
    limit("scan.context", "acceptance_bars", LOOKBACK, BARS),
    limit("scan.context", "balanced_pct", PERCENT, "percent"),
    limit("scan.context", "extended_pct", PERCENT, "percent"),
    limit("scan.context", "gap_reset_lookback", LOOKBACK, BARS),
    limit("scan.context", "gap_reset_pct", PERCENT, "percent"),
    limit("scan.context", "gap_reset_window", LOOKBACK, BARS),
    limit("scan.context", "structure_sma_fast", LOOKBACK, BARS),
    limit("scan.context", "structure_sma_slow", LOOKBACK, BARS),
    limit("scan.context", "structure_slope_lookback", LOOKBACK, BARS),
    // [execution]
    // 10-minute bars: polling less often than every 10 minutes while open misses whole bars
    // and manages stops late.
    limit("execution", "poll_seconds_open", int(1, 600), "seconds"),
    // Closed: reconciliation and heartbeat only, but avwap-check calls a heartbeat older than
    // three polls stale, so at most an hour.
    limit("execution", "poll_seconds_closed", int(1, 3600), "seconds"),
    // Minutes within a regular session (390 minutes), leaving at least one minute of window
    // (their sum is checked below).
    limit("execution", "entry_start_minutes_after_open", int(0, SESSION_MINUTES - 1), "minutes"),
    limit("execution", "entry_end_minutes_before_close", int(0, SESSION_MINUTES - 1), "minutes"),
    // A swing trade risks a fraction of a percent; 5 % of equity on one trade is already far
    // beyond any sizing rule, and 0 would size every position to nothing.
    limit("execution", "risk_per_trade", dec_above((0, 0), (5, 2)), "a fraction of equity, 0.005 = 0.5 %"),
    limit("execution", "max_positions", int(1, 100), "positions"),
    // Dollar caps: above 0 (0 would allow nothing), at most a billion.
    limit("execution", "max_gross_notional", dec_above((0, 0), (1_000_000_000, 0)), "dollars"),
    limit("execution", "max_notional_per_symbol", dec_above((0, 0), (1_000_000_000, 0)), "dollars"),
    limit("execution", "max_entries_per_day", int(1, 100), "entries"),
    // Basis points over the last price for the entry limit: at most 5 %.
    limit("execution", "entry_slippage_bps", dec((0, 0), (500, 0)), "basis points"),
    limit("execution", "max_entry_drift_pct", dec((0, 0), (100, 0)), "percent"),
    // A stop more than 100 % below the price is no stop; 0 would refuse every entry.
    limit("execution", "max_risk_pct", dec_above((0, 0), (100, 0)), "percent"),
    // A bar older than a whole session is never "fresh"; 0 would refuse every bar.
    limit("execution", "max_bar_age_minutes", int(1, SESSION_MINUTES), "minutes"),
    // 0 disables the trim; 1 sells the whole position at R1.
    limit("execution", "trim_fraction", dec((0, 0), (1, 0)), "a fraction of the position"),
    // Shorter than a few seconds would take an order still on its way through Alpaca for one
    // never placed (and place it again); longer than an hour keeps a lost order blocking.
    limit("execution", "unknown_outcome_grace_seconds", int(5, 3600), "seconds"),
    limit("execution", "sim_starting_cash", dec_above((0, 0), (1_000_000_000, 0)), "dollars"),
    // Must also stay below half the unit's WatchdogSec (the service checks it at start).
    limit("execution", "cycle_deadline_seconds", int(1, 600), "seconds, and below half the unit's WatchdogSec"),
    // [backtest]: the same range as the simulated broker's cash.
    limit("backtest", "starting_cash", dec_above((0, 0), (1_000_000_000, 0)), "dollars"),
    // US brokers charge 0 to about 0.01 $ a share; 1 $ a share is no commission schedule.
    limit("backtest", "commission_per_share", dec((0, 0), (1, 0)), "dollars a share"),
    // 5 % worse on every fill is already far beyond any liquid stock's spread.
    limit("backtest", "slippage_bps", dec((0, 0), (500, 0)), "basis points"),
    // [alerts]: 0 sends every alert; at most a day, so a lasting problem is repeated daily.
    limit("alerts", "rate_limit_minutes", int(0, 1440), "minutes"),
    // [alpaca]: Alpaca's plans allow 200 (free) to 10000 (Algo Trader Plus) requests a minute.
    limit("alpaca", "requests_per_minute", int(1, 10_000), "requests a minute"),
];

/// The string keys with a fixed set of values, checked at load like the numbers (the Alpaca
/// client parses the same words: a test in `alpaca::market_data` keeps the lists equal). An
/// unknown value is refused without quoting it: a string may be a misplaced secret.
pub const CHOICES: &[(&str, &str, &[&str])] = &[
    ("alpaca", "feed", FEEDS),
    ("alpaca", "intraday_feed", FEEDS),
    ("alpaca", "adjustment", &["raw", "split", "dividend", "all"]),
];

/// Alpaca's stock data feeds.
const FEEDS: &[&str] = &["sip", "iex", "boats", "otc"];

/// One setting that is out of range, or two that contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} {problem}")]
pub struct SettingError {
    /// The full key: `[execution] risk_per_trade`.
    pub key: String,
    /// What is wrong with it and what is allowed (numbers only, never a string's text).
    pub problem: String,
}

impl Limit {
    /// `[section] key`, as the operator finds it in the file.
    pub fn full_key(&self) -> String {
        format!("[{}] {}", self.section, self.key)
    }

    /// The allowed range in words: `1 to 600 seconds`, `above 0, up to 0.05 (a fraction …)`.
    pub fn allowed(&self) -> String {
        let range = match self.bounds {
            Bounds::Int { min, max } => format!("{min} to {max}"),
            Bounds::Float { min, open_min, max } => range_text(min, open_min, max),
            Bounds::Decimal { min, open_min, max } => {
                range_text(decimal(min), open_min, decimal(max))
            }
        };
        format!("{range} ({})", self.unit)
    }

    /// Whether `value` (as serialised from the typed configuration) lies in the range; the
    /// number as shown in the error otherwise. `None` when the value is not of this kind.
    fn check(&self, value: &toml::Value) -> Option<Result<(), String>> {
        match (self.bounds, value) {
            (Bounds::Int { min, max }, toml::Value::Integer(v)) => {
                Some(if (min..=max).contains(v) {
                    Ok(())
                } else {
                    Err(v.to_string())
                })
            }
            (Bounds::Float { min, open_min, max }, toml::Value::Float(v)) => {
                let low_ok = if open_min { *v > min } else { *v >= min };
                // NaN fails both comparisons; infinities fail the upper bound or the lower.
                Some(if v.is_finite() && low_ok && *v <= max {
                    Ok(())
                } else {
                    Err(number_text(*v))
                })
            }
            (Bounds::Decimal { min, open_min, max }, toml::Value::String(s)) => {
                let Ok(v) = Decimal::from_str(s) else {
                    // Serialised by rust_decimal itself: always a number. Not echoed anyway.
                    return Some(Err("(not a number)".to_string()));
                };
                let (min, max) = (decimal(min), decimal(max));
                let low_ok = if open_min { v > min } else { v >= min };
                Some(if low_ok && v <= max {
                    Ok(())
                } else {
                    Err(v.normalize().to_string())
                })
            }
            _ => None,
        }
    }
}

fn range_text<T: fmt::Display>(min: T, open_min: bool, max: T) -> String {
    if open_min {
        format!("above {min}, up to {max}")
    } else {
        format!("{min} to {max}")
    }
}

/// A float as the error shows it: plain unless that is long (1e300 has 301 digits).
fn number_text(v: f64) -> String {
    let plain = v.to_string();
    if plain.len() <= 24 {
        plain
    } else {
        format!("{v:e}")
    }
}

/// The value of `section.key` in the serialised configuration.
fn lookup<'a>(table: &'a toml::Table, section: &str, key: &str) -> Option<&'a toml::Value> {
    let mut current = table;
    for part in section.split('.') {
        current = current.get(part)?.as_table()?;
    }
    current.get(key)
}

/// Every range of [`LIMITS`] and the cross-checks, in file order; empty when all is well.
pub fn check(config: &Config) -> Vec<SettingError> {
    let table = match toml::Table::try_from(config) {
        Ok(table) => table,
        // Only a configuration built in code can fail here (a u64 above i64::MAX has no TOML
        // form); say so rather than pass it unchecked.
        Err(_) => {
            return vec![SettingError {
                key: "(configuration)".to_string(),
                problem: "holds a number TOML cannot represent (above 9223372036854775807)"
                    .to_string(),
            }]
        }
    };
    let mut errors = Vec::new();
    for limit in LIMITS {
        let Some(value) = lookup(&table, limit.section, limit.key) else {
            continue; // a test keeps every limit pointing at a key
        };
        let outcome = limit
            .check(value)
            .unwrap_or(Err("(not a number)".to_string()));
        if let Err(shown) = outcome {
            errors.push(SettingError {
                key: limit.full_key(),
                problem: format!("= {shown} is out of range: allowed {}", limit.allowed()),
            });
        }
    }
    for (section, key, choices) in CHOICES {
        let value = lookup(&table, section, key).and_then(toml::Value::as_str);
        if !value.is_some_and(|v| choices.contains(&v)) {
            errors.push(SettingError {
                key: format!("[{section}] {key}"),
                problem: format!(
                    "is not one of {} (the value is not shown)",
                    choices.join(", ")
                ),
            });
        }
    }
    // The cross-checks only make sense once each value is in its own range.
    if errors.is_empty() {
        cross_checks(config, &mut errors);
    }
    errors
}

/// Settings that are each in range but together leave nothing to do.
fn cross_checks(config: &Config, errors: &mut Vec<SettingError>) {
    let exec = &config.execution;
    let window = exec.entry_start_minutes_after_open + exec.entry_end_minutes_before_close;
    if window >= SESSION_MINUTES {
        errors.push(SettingError {
            key: "[execution] entry_start_minutes_after_open + entry_end_minutes_before_close"
                .to_string(),
            problem: format!(
                "= {window} leaves no entry window in a regular session ({SESSION_MINUTES} \
                 minutes, 09:30-16:00); keep the sum below {SESSION_MINUTES}"
            ),
        });
    }

    let liq = &config.scan.liquidity;
    // Sessions fall on weekdays: a window of N calendar days holds at most this many.
    let days = liq.window_calendar_days.max(0);
    let weekdays = days / 7 * 5 + (days % 7).min(5);
    if i64::try_from(liq.min_bars_in_window).unwrap_or(i64::MAX) > weekdays {
        errors.push(SettingError {
            key: "[scan.liquidity] min_bars_in_window".to_string(),
            problem: format!(
                "= {} is more bars than window_calendar_days = {} can hold (at most {weekdays} \
                 weekdays): every symbol would be refused; lower it or widen the window",
                liq.min_bars_in_window, liq.window_calendar_days
            ),
        });
    }

    let sel = &config.scan.selection;
    if sel.near_bonus_min_dist_pct > sel.near_bonus_max_dist_pct {
        errors.push(SettingError {
            key: "[scan.selection] near_bonus_min_dist_pct".to_string(),
            problem: format!(
                "= {} is above near_bonus_max_dist_pct = {}: the near bonus could never apply; \
                 swap them",
                number_text(sel.near_bonus_min_dist_pct),
                number_text(sel.near_bonus_max_dist_pct)
            ),
        });
    }

    // The scan refuses a symbol with fewer than min_bars bars and the regime needs sma_len
    // benchmark bars: a history too short for them gives an empty list every day, silently.
    let scan = &config.scan;
    let needed = [
        ("[scan.gates] min_bars", scan.gates.min_bars),
        ("[scan.regime] sma_len", scan.regime.sma_len),
    ]
    .into_iter()
    .max_by_key(|(_, bars)| *bars);
    if let Some((needed_by, bars)) = needed {
        let bars = i64::try_from(bars).unwrap_or(i64::MAX);
        let sessions = scan.history_days.saturating_mul(SESSIONS_PER_YEAR) / 365;
        if sessions < bars {
            // Rounded up: the smallest history_days whose estimate holds `bars` sessions.
            let days = bars
                .saturating_mul(365)
                .saturating_add(SESSIONS_PER_YEAR - 1)
                / SESSIONS_PER_YEAR;
            errors.push(SettingError {
                key: "[scan] history_days".to_string(),
                problem: format!(
                    "= {} holds about {sessions} sessions, fewer than the {bars} bars \
                     {needed_by} needs: the scan would refuse every symbol; raise history_days \
                     to at least {days}",
                    scan.history_days
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every numeric leaf of the serialised defaults (decimals are strings that parse).
    fn numeric_leaves(table: &toml::Table, prefix: &str, out: &mut Vec<(String, String)>) {
        for (key, value) in table {
            match value {
                toml::Value::Table(t) => {
                    let section = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    numeric_leaves(t, &section, out);
                }
                toml::Value::Integer(_) | toml::Value::Float(_) => {
                    out.push((prefix.to_string(), key.clone()))
                }
                toml::Value::String(s) if Decimal::from_str(s).is_ok() => {
                    out.push((prefix.to_string(), key.clone()))
                }
                _ => {}
            }
        }
    }

    #[test]
    fn every_numeric_key_has_exactly_one_limit_and_every_limit_a_key() {
        let table = toml::Table::try_from(Config::default()).unwrap();
        let mut leaves = Vec::new();
        numeric_leaves(&table, "", &mut leaves);
        for (section, key) in &leaves {
            let n = LIMITS
                .iter()
                .filter(|l| l.section == section && l.key == key)
                .count();
            assert_eq!(n, 1, "[{section}] {key} has {n} limits in LIMITS");
        }
        for l in LIMITS {
            assert!(
                leaves.iter().any(|(s, k)| s == l.section && k == l.key),
                "{} names no numeric key of the configuration",
                l.full_key()
            );
            // Every bound is representable and the range is not empty.
            match l.bounds {
                Bounds::Int { min, max } => assert!(min <= max, "{}", l.full_key()),
                Bounds::Float { min, max, .. } => assert!(min < max, "{}", l.full_key()),
                Bounds::Decimal { min, max, .. } => {
                    assert!(Decimal::try_new(min.0, min.1).is_ok());
                    assert!(Decimal::try_new(max.0, max.1).is_ok());
                    assert!(decimal(min) < decimal(max), "{}", l.full_key());
                }
            }
        }
        assert!(
            !leaves.iter().any(|(s, _)| s == "gate"),
            "[gate] gained a number"
        );
    }

    #[test]
    fn unknown_choices_are_refused_without_their_value() {
        let mut c = Config::default();
        c.alpaca.feed = "PKSECRET0123456789".into();
        c.alpaca.adjustment = "Split".into();
        let text: Vec<String> = check(&c).iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "[alpaca] feed is not one of sip, iex, boats, otc (the value is not shown)",
                "[alpaca] adjustment is not one of raw, split, dividend, all (the value is not shown)",
            ]
        );
        c = Config::default();
        c.alpaca.intraday_feed = "sip".into();
        assert!(check(&c).is_empty());
    }

    #[test]
    fn the_defaults_are_inside_every_range() {
        assert_eq!(check(&Config::default()), Vec::new());
    }

    #[test]
    fn errors_name_the_key_the_number_and_the_range() {
        let mut c = Config::default();
        c.execution.risk_per_trade = Decimal::new(5, 0);
        c.scan.min_coverage = 7.0;
        c.scan.liquidity.window_calendar_days = i64::MAX;
        c.execution.max_bar_age_minutes = i64::MIN;
        let errors = check(&c);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "[scan] min_coverage = 7 is out of range: allowed above 0, up to 1 (a fraction of the universe, 0.9 = 90 %)",
                "[scan.liquidity] window_calendar_days = 9223372036854775807 is out of range: allowed 1 to 366 (calendar days)",
                "[execution] risk_per_trade = 5 is out of range: allowed above 0, up to 0.05 (a fraction of equity, 0.005 = 0.5 %)",
                "[execution] max_bar_age_minutes = -9223372036854775808 is out of range: allowed 1 to 390 (minutes)",
            ]
        );
    }

    #[test]
    fn floats_outside_are_refused_whatever_their_form() {
        let mut c = Config::default();
        for bad in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            1.0 + 1e-9,
            1e300,
        ] {
            c.scan.min_coverage = bad;
            let errors = check(&c);
            assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
            assert!(errors[0].to_string().len() < 200, "{}", errors[0]);
        }
        c.scan.min_coverage = 1.0;
        assert!(check(&c).is_empty());
    }

    #[test]
    fn decimals_are_compared_exactly() {
        let mut c = Config::default();
        c.execution.risk_per_trade = Decimal::from_str("0.05").unwrap();
        assert!(check(&c).is_empty());
        c.execution.risk_per_trade = Decimal::from_str("0.0500000000000000000000000001").unwrap();
        assert_eq!(check(&c).len(), 1);
        c.execution.risk_per_trade = Decimal::ZERO;
        assert_eq!(check(&c).len(), 1);
        c.execution.risk_per_trade = Decimal::MAX;
        assert_eq!(check(&c).len(), 1);
    }

    #[test]
    fn cross_checks_catch_settings_that_leave_nothing_to_do() {
        let mut c = Config::default();
        c.execution.entry_start_minutes_after_open = 200;
        c.execution.entry_end_minutes_before_close = 190;
        let e = check(&c);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].to_string().contains("no entry window"), "{}", e[0]);
        c.execution.entry_end_minutes_before_close = 189;
        assert!(check(&c).is_empty());

        let mut c = Config::default();
        c.scan.liquidity.min_bars_in_window = 34; // 45 days hold at most 33 weekdays
        assert!(check(&c)[0]
            .to_string()
            .contains("window_calendar_days = 45"));
        c.scan.liquidity.min_bars_in_window = 33;
        assert!(check(&c).is_empty());

        let mut c = Config::default();
        c.scan.selection.near_bonus_min_dist_pct = 2.0;
        assert!(check(&c)[0].to_string().contains("swap them"));

        let mut c = Config::default();
        c.scan.history_days = 200; // about 136 sessions, the regime SMA needs 200
        let e = check(&c);
        assert!(
            e[0].to_string().contains("[scan.regime] sma_len")
                && e[0].to_string().contains("at least 292"),
            "{}",
            e[0]
        );
        c.scan.history_days = 292;
        assert!(check(&c).is_empty(), "{:?}", check(&c));
    }
}
