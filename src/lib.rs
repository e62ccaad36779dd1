//! avwap: an Anchored-VWAP swing-trading system for US equities.
//!
//! Module map (each module's header says what it owns):
//! - [`alpaca`]: the Alpaca HTTP client, market data and trading.
//! - [`broker`]: the broker interface and error classes; the simulated broker.
//! - [`calendar`]: the injected clock, New York time, the NYSE session calendar.
//! - [`config`]: the one TOML configuration file, its defaults and env overrides.
//! - [`watchlist`]: the `daily_candidates.csv` format: typed rows, atomic writer, validating reader.
//! - [`gate`]: the watchlist freshness gate run before execution starts.
//! - [`market_data`]: daily bars, validation, the SQLite bar store, CSV import.
//! - [`scan`]: indicators, anchors/AVWAP, gates, selection, labels, ranking, the scan pipeline.
//! - [`universe`]: the Russell 3000 universe from iShares holdings, cached, with fallbacks.
//! - [`fsutil`]: atomic file replacement used by every output.
//! - [`cli`]: argument parsing and refusal helpers shared by the binaries.
//! - [`execution`]: state database, order lifecycle, reconciliation, the execution service.
//! - [`exit`]: the process exit codes shared by all binaries.
//! - [`ops`]: logging (journald/stderr/JSON), alerts (webhook), the `avwap-check` health check.

pub mod alpaca;
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
pub mod scan;
pub mod simulation;
pub mod universe;
pub mod watchlist;
