//! Performance of a trading run: the daily equity curve and the round-trip trade list a
//! backtest produces, their CSV formats (`equity.csv`, `trades.csv`), and the metrics traders
//! expect computed from them (pure functions; formulas documented in `docs/backtest.md`), and
//! the `report.html` page drawn from them ([`report`]).
//!
//! A domain module: plain data in, plain data out. It knows nothing of brokers, scans or
//! files other than its own two CSV formats; the backtest (application) builds the data and
//! writes the files, the report renders them.

pub mod csv;
pub mod metrics;
pub mod report;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

/// The account at one session's close.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EquityPoint {
    /// The New York session date.
    pub date: NaiveDate,
    /// Cash plus the market value of the positions at the session's close.
    pub equity: Decimal,
    pub cash: Decimal,
    /// Market value of the (long) positions at the close: the gross exposure in dollars.
    pub long_value: Decimal,
    /// The benchmark's close that session (SPY from the store, else the data set's
    /// equal-weight index level; `BacktestData::benchmark_label` says which).
    pub benchmark: f64,
}

/// How a round trip ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// The broker-side protective stop filled.
    Stop,
    /// The engine sold the rest at the second target.
    TargetR2,
    /// The engine sold because the price was through the stop level with no stop working.
    StopLevel,
    /// Sold by a flatten (kill switch / operator).
    Flatten,
    /// Still open when the backtest ended: valued at the last close, not sold.
    EndOfBacktest,
}

impl ExitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Stop => "stop",
            ExitReason::TargetR2 => "target_r2",
            ExitReason::StopLevel => "stop_level",
            ExitReason::Flatten => "flatten",
            ExitReason::EndOfBacktest => "end_of_backtest",
        }
    }
}

/// One round trip: from the entry fill that opened a position to the fill that closed it
/// (partial exits such as the R1 trim are folded into the quantity-weighted exit price).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundTrip {
    pub symbol: String,
    /// The watchlist's scan date that produced the entry.
    pub scan_date: NaiveDate,
    /// The session of the chosen anchor bar, and the AVWAP level at the scan (the watchlist's
    /// `entry_level`): what the per-trade chart draws.
    pub anchor_date: NaiveDate,
    pub entry_level: Decimal,
    /// First entry fill and the fill that made the position flat (or the last close).
    pub entry_time: DateTime<Utc>,
    pub exit_time: DateTime<Utc>,
    /// Quantity-weighted average entry fill price.
    pub entry_price: Decimal,
    /// Quantity-weighted average of every exit fill (trim included).
    pub exit_price: Decimal,
    /// Shares bought.
    pub qty: Decimal,
    /// The stop, R1 and R2 of the watchlist row at entry (the initial risk is
    /// `entry_price - initial_stop` per share).
    pub initial_stop: Decimal,
    pub target_r1: Decimal,
    pub target_r2: Decimal,
    /// True when part of the position was sold at R1 before the rest left.
    pub trimmed: bool,
    pub exit_reason: ExitReason,
    /// (exit − entry) × qty, before costs.
    pub gross_pnl: Decimal,
    /// Commissions and slippage paid on the trip's fills, as configured.
    pub costs: Decimal,
    /// `gross_pnl − costs`.
    pub net_pnl: Decimal,
    /// `net_pnl / (qty × (entry_price − initial_stop))`.
    pub r_multiple: f64,
    /// Buy and sell notional of the trip's fills (for turnover).
    pub traded_notional: Decimal,
}
