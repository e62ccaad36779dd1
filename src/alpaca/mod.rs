//! Alpaca: the HTTP client ([`client`]: base URLs, key headers, timeouts, rate limiter, GET-only
//! retries, typed errors), the Trading API wire shapes ([`types`]) and the execution core's
//! `Broker` over Alpaca ([`trading`]), and daily bars with the bar-store top-up
//! ([`market_data`]). The universe fallback is still to come (issue 8).
//!
//! Every request shape follows Alpaca's official OpenAPI specs (`trading-api.json`,
//! `market-data-api.json`); `tests/alpaca_client.rs` checks what the client sends against them.

pub mod client;
pub mod intraday;
pub mod market_data;
pub mod trading;
pub mod types;

pub use client::{AlpacaClient, AlpacaError, ClientConfig, Endpoints, Environment};
pub use trading::AlpacaBroker;
