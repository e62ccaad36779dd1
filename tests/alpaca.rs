//! Integration tests against the fake Alpaca server on loopback (`tests/alpaca/fake_alpaca/`):
//! the Alpaca client and broker, daily and intraday market data, calendar and assets, and the
//! real `avwap-scan` and `avwap-execution` binaries in their Alpaca modes. Every request the
//! fake records is checked against the one request contract (`fake_alpaca::contract`).
//!
//! One test binary; each file under `tests/alpaca/` is a module. Run one of them with a filter,
//! e.g. `cargo test --test alpaca client::`; the `#[ignore]`d spec walkers (`client::`, `market_data::`,
//! `spec_answers::`) and the benchmark with `cargo test --test alpaca -- --ignored`.

mod common;

// The inline module has the name of this file: rustfmt then finds its files under
// `tests/alpaca/` as rustc does (it resolves other inline modules of a test root elsewhere).
mod alpaca {
    mod answers;
    mod calendar_assets;
    mod client;
    mod deadline;
    mod execution;
    pub mod fake_alpaca;
    mod intraday;
    mod market_data;
    mod scan;
    mod spec_answers;
    mod watchdog;
}
