//! Alpaca: the HTTP client ([`client`]: base URLs, key headers, timeouts, rate limiter, GET-only
//! retries, cycle deadline, typed errors) on the process's one tokio runtime ([`runtime`]), the
//! concurrent reads of an execution cycle ([`reads`]), the Trading API wire shapes ([`types`])
//! and the execution core's `Broker` over Alpaca ([`trading`]), daily bars with the bar-store top-up ([`market_data`]),
//! intraday bars and latest trades ([`intraday`]), Alpaca's market calendar cached and compared
//! with avwap's ([`calendar`]), the active US-equity assets as the universe's last fallback
//! ([`assets`]), and [`access`], the one place clients are built from the configuration and
//! the credentials (URL checks, keys read once).
//!
//! Every request shape follows Alpaca's official OpenAPI specs (`trading-api.json`,
//! `market-data-api.json`); `tests/alpaca/client.rs` checks what the client sends against them.

pub mod access;
pub mod assets;
pub mod calendar;
pub mod client;
pub mod intraday;
pub mod market_data;
pub mod reads;
pub mod runtime;
pub mod trading;
pub mod types;

pub use client::{
    AlpacaClient, AlpacaError, ClientConfig, DeadlineGuard, Endpoints, Environment, DATA_URL,
    LIVE_TRADING_URL, PAPER_TRADING_URL,
};
pub use reads::{read_cycle, CycleReads};
pub use trading::AlpacaBroker;
