//! `[execution]` configuration: loop cadence, entry window, sizing caps, slippage, exits and
//! the kill switch. Every field has a documented default (examples/avwap.toml); the ranges are
//! checked when the file is loaded (`config::limits`).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionConfig {
    /// Seconds between cycles while the market is open.
    pub poll_seconds_open: u64,
    /// Seconds between cycles while it is closed (reconciliation and heartbeat only).
    pub poll_seconds_closed: u64,
    /// Entries start this many minutes after the open ...
    pub entry_start_minutes_after_open: i64,
    /// ... and stop this many minutes before the close (early closes respected).
    pub entry_end_minutes_before_close: i64,
    /// Fraction of equity risked per trade: shares = equity × risk ÷ (entry − stop).
    pub risk_per_trade: Decimal,
    pub max_positions: usize,
    pub max_gross_notional: Decimal,
    pub max_notional_per_symbol: Decimal,
    pub max_entries_per_day: u32,
    /// The entry limit is the last price plus this many basis points.
    pub entry_slippage_bps: Decimal,
    /// Skip an entry when the price has run more than this percent above the entry level.
    pub max_entry_drift_pct: Decimal,
    /// Skip an entry whose stop is more than this percent below the price (risk too wide).
    pub max_risk_pct: Decimal,
    /// Skip an entry when the newest closed 10-minute bar is older than this (stale data).
    pub max_bar_age_minutes: i64,
    /// Fraction of the position sold at R1 (0 disables the trim).
    pub trim_fraction: Decimal,
    /// After the R1 trim, raise the stop to the average entry price.
    pub breakeven_after_trim: bool,
    /// Halt all new entries (exits keep running). Same effect as the KILL_SWITCH file.
    pub kill_switch: bool,
    /// Seconds an order with an unknown outcome must stay absent at the broker before it is
    /// taken as never placed.
    pub unknown_outcome_grace_seconds: u64,
    /// Starting cash of the simulated broker (mode `sim`).
    pub sim_starting_cash: Decimal,
    /// Every cycle ends within this many seconds: broker reads still unanswered then are given
    /// up (the cycle makes no entries), orders not yet sent are not sent (decided again next
    /// cycle). Must stay below half the unit's `WatchdogSec`, so a hung broker never trips the
    /// watchdog.
    pub cycle_deadline_seconds: u64,
}

impl ExecutionConfig {
    /// The cycle deadline as a duration. Capped at a day: the range (at most 600 s) is checked
    /// at load, but a value built in code must not overflow `Instant + deadline` into a panic.
    pub fn cycle_deadline(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.cycle_deadline_seconds.min(86_400))
    }
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        Self {
            poll_seconds_open: 60,
            poll_seconds_closed: 300,
            entry_start_minutes_after_open: 20,
            entry_end_minutes_before_close: 15,
            risk_per_trade: Decimal::new(5, 3),
            max_positions: 5,
            max_gross_notional: Decimal::new(50_000, 0),
            max_notional_per_symbol: Decimal::new(10_000, 0),
            max_entries_per_day: 5,
            entry_slippage_bps: Decimal::new(10, 0),
            max_entry_drift_pct: Decimal::new(3, 0),
            max_risk_pct: Decimal::new(8, 0),
            max_bar_age_minutes: 15,
            trim_fraction: Decimal::new(5, 1),
            breakeven_after_trim: true,
            kill_switch: false,
            unknown_outcome_grace_seconds: 30,
            sim_starting_cash: Decimal::new(100_000, 0),
            cycle_deadline_seconds: 20,
        }
    }
}
