//! avwap: an Anchored-VWAP swing-trading system for US equities.
//!
//! Module map, by layer bottom-up (ARCHITECTURE.md has the rules and the import table that
//! `architecture.rs` enforces; each module's header says what it owns):
//!
//! - foundation: [`exit`] (exit codes; [`exit::Failure`], an error that carries its code),
//!   [`fsutil`] (atomic file replacement; inputs read only from regular files, within a size
//!   limit; bounded excerpts of inputs for messages), [`calendar`] (the injected clock, New York
//!   time, the NYSE calendar), [`credentials`] (secrets, and `process_env`), [`svg`] (hand-built
//!   SVG charts for the HTML reports).
//! - domain: [`watchlist`] (the `daily_candidates.csv` format), [`market_data`] (daily bars,
//!   validation, the SQLite bar store, CSV import, intraday feeds), [`broker`] (the broker
//!   interface and error classes; the simulated broker), [`universe`] (the Russell 3000
//!   universe from iShares holdings, cached, with a caller-supplied fallback), [`scan`] (its
//!   core: indicators, anchors/AVWAP, gates, selection, labels, ranking, the pipeline, outputs),
//!   [`execution`] (its core: state database, ids, order lifecycle, reconciliation, the engine).
//! - config: [`config`] (the one TOML file as data, its defaults and env overrides).
//! - edge: [`alpaca`] (the HTTP client, market data, trading; `alpaca::access` builds every
//!   client), [`ops`] (logging, alerts, systemd and `/proc` queries),
//!   `execution::process` (lock, sd_notify, signals, kill switch).
//! - application: `scan::service` (`avwap-scan`), `execution::service` and
//!   `execution::venue` (`avwap-execution`), [`simulation`] (`avwap-execution simulate`),
//!   [`backtest`] (`avwap-execution backtest`),
//!   [`gate`] (`avwap-gate`), `ops::check` (`avwap-check`), [`cli`] (what the binaries share).

pub mod alpaca;
#[cfg(test)]
mod architecture;
pub mod backtest;
pub mod broker;
pub mod calendar;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod execution;
pub mod exit;
pub mod fsutil;
pub mod gate;
pub mod market_data;
pub mod ops;
pub mod performance;
pub mod scan;
pub mod simulation;
pub mod svg;
pub mod universe;
pub mod watchlist;
