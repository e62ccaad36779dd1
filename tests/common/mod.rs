//! Test code shared by the `alpaca` and `crash` test binaries (each declares `mod common;` and
//! uses all of it): the loopback HTTP of the test servers and Alpaca's order shape, spoken by
//! the fake Alpaca server (`tests/alpaca/fake_alpaca/`) and by the crash suite's Alpaca front
//! (`tests/crash/alpaca_front.rs`).

pub mod alpaca_order;
pub mod http;
