//! Execution: the state database (order journal, fills, owned positions, stops, event log),
//! deterministic client order ids, the idempotent order lifecycle, reconciliation with the
//! broker, the per-cycle engine, and the process lifecycle of `avwap-execution`.
//!
//! The core (domain layer, no I/O beyond its own database, no clock of its own):
//! - [`db`]: the SQLite state database and its additive migrations.
//! - [`ids`]: deterministic client order ids.
//! - [`config`]: `[execution]` settings.
//! - [`engine`]: one cycle: read (and record what the broker says) → decide → write.
//! - [`plan`]: the cycle's decisions as a pure function of its state.
//! - [`lifecycle`]: journal → send → acknowledge → fills; unknown-outcome resolution.
//! - [`phases`]: session phases and poll cadence.
//! - [`report`]: a session's decisions, orders, fills, stops and P&L.
//! - [`verdict`]: each cycle's reconciliation verdict: the broker's positions and stops
//!   against the journal.
//!
//! Edge: [`process`]: lock, sd_notify, signals, kill switch.
//!
//! Application (see ARCHITECTURE.md):
//! - [`service`]: the `avwap-execution` process: lock, loop, shutdown, its commands and
//!   [`service::ExecutionError`].
//! - [`venue`]: what each mode trades against (simulated book, Alpaca paper/live) and its checks.

pub mod config;
pub mod db;
pub mod engine;
pub mod ids;
pub mod lifecycle;
pub mod phases;
pub mod plan;
pub mod process;
pub mod report;
pub mod service;
pub mod venue;
pub mod verdict;
