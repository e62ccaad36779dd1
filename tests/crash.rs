//! The crash-safety suite of the execution service: the real `avwap-execution` binary trading
//! the demo day cycle by cycle, killed or faulted at every step of an order's life and
//! restarted, in `sim` mode (`tests/crash/sim.rs`, with the process-lifecycle tests) and in
//! `alpaca-paper` mode through an Alpaca-shaped HTTP front over the same simulated broker
//! (`tests/crash/alpaca.rs`). The cases are written once (`tests/crash/cases.rs`).
//!
//! One test binary; run one venue with a filter, e.g. `cargo test --test crash crash::sim::`.

mod common;

// Named like this file, see `tests/alpaca.rs`.
mod crash {
    mod alpaca;
    mod alpaca_front;
    mod cases;
    mod harness;
    mod sim;
}
