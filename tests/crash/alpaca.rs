//! The crash-safety suite's crash and fault cases (`tests/crash/cases.rs`, see
//! `tests/crash/sim.rs` for what they check) in `alpaca-paper` mode: the real binary trades
//! through `AlpacaBroker` and `AlpacaClient` over HTTP against an Alpaca-shaped front on
//! loopback (`tests/crash/alpaca_front.rs`) whose state is the simulated broker of the case's
//! state directory. Simulator faults arrive as HTTP (no answer, 500, 429 with Retry-After,
//! 403/422 with Alpaca's codes), and a crash after accept kills the binary while it waits for
//! the answer. The invariants and economics are the same as in sim mode.

use super::alpaca_front;
use super::cases::{crash_cases, no_hooks};
use super::harness::*;

/// The cases trade through the Alpaca HTTP front (`--mode alpaca-paper`).
const VENUE: Venue = Venue::AlpacaPaper;

crash_cases!(VENUE);

/// The cases above prove nothing about Alpaca unless the binary really traded through the
/// front: every order the broker holds came from a `POST /v2/orders` or a
/// `PATCH /v2/orders/{id}` over HTTP, and prices came from the data routes.
#[test]
fn the_reference_day_trades_over_http_through_the_front() {
    let dir = fresh_state_dir();
    run_sequence(VENUE, dir.path(), &all_times(), no_hooks);
    let front = alpaca_front::front_for(dir.path());
    let captured = capture(dir.path());
    let orders = &captured.broker.orders;
    let replaced: Vec<_> = orders.iter().filter(|o| o.replaced_by.is_some()).collect();
    assert!(
        orders.len() >= 10 && !replaced.is_empty(),
        "{}",
        captured.summary()
    );
    for old in &replaced {
        assert_eq!(
            front.served("PATCH", &format!("/v2/orders/{}", old.id)),
            1,
            "replace of {} not over HTTP",
            old.client_order_id
        );
    }
    assert_eq!(
        front.served("POST", "/v2/orders") + replaced.len(),
        orders.len(),
        "every other broker order came from one POST over HTTP"
    );
    assert!(front.served("GET", "/v2/stocks/bars") > 0);
    assert!(front.served("GET", "/v2/stocks/trades/latest") > 0);
    assert!(front.served("GET", "/v2/account") >= all_times().len());
}
