//! Integration tests that need no Alpaca server: the real binaries (`avwap-gate`, `avwap-scan`,
//! `avwap-execution`, `avwap-check`) as an operator runs them, and the library's edges in
//! process (strategy, bar store, universe, logging, alerts, the calendar and indicator goldens).
//!
//! One test binary; each file under `tests/cli/` is a module. Run one of them with a filter,
//! e.g. `cargo test --test cli gate::`.

// Named like this file, see `tests/alpaca.rs`.
mod cli {
    mod alerts;
    mod bar_store;
    mod calendar_golden;
    mod check;
    mod config;
    mod docs;
    mod execution;
    mod gate;
    mod help;
    mod hostile_inputs;
    mod indicators_golden;
    mod logging;
    mod scan;
    mod simulate;
    mod strategy;
    mod universe;
}
