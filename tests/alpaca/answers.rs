//! Answers the official spec allows and our happy-path fake never gave (issue 15): the real
//! `avwap-execution` binary in alpaca-paper against the fake, whose answers are rewritten the
//! ways `trading-api.json` permits — another order in a POST answer, foreign orders of other
//! kinds in the open-order list, a position whose numbers do not read, an account without the
//! numbers sizing needs, a refused cancel during `flatten`, a configuration answer saying
//! something else than was asked. Each test names the finding it answers.

use super::execution::{
    breakout, config, cycle, exec, state_with_watchlist, stderr, tradable, DAY,
};
use super::fake_alpaca::{self, FakeAlpaca};

use avwap::execution::db::StateDb;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn db(dir: &Path) -> StateDb {
    StateDb::open(&dir.join("execution.sqlite")).unwrap()
}

fn event_kinds(dir: &Path) -> Vec<(String, Option<String>, String)> {
    db(dir)
        .events(None)
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.symbol, e.message))
        .collect()
}

fn order_posts(fake: &FakeAlpaca) -> Vec<Value> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v2/orders")
        .filter_map(|r| r.body)
        .collect()
}

/// Another account's order, spelled the way Alpaca spells orders (`fields` override).
fn someone_elses_order(fields: Value) -> Value {
    let mut order = json!({
        "id": "0f6d2a4e-1111-4c3b-9d2a-5f1f5a9e0001",
        "client_order_id": "someone-else-1",
        "created_at": "2010-08-09T14:00:00Z",
        "updated_at": "2010-08-09T14:00:00Z",
        "submitted_at": "2010-08-09T14:00:00Z",
        "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
        "symbol": "AAPL",
        "asset_class": "us_equity",
        "notional": null,
        "qty": "10",
        "filled_qty": "0",
        "filled_avg_price": null,
        "order_class": "",
        "type": "limit",
        "side": "buy",
        "time_in_force": "day",
        "limit_price": "250.00",
        "stop_price": null,
        "status": "new",
        "extended_hours": false,
    });
    if let (Some(order), Some(fields)) = (order.as_object_mut(), fields.as_object()) {
        for (k, v) in fields {
            if v.is_null() && k.starts_with('-') {
                order.remove(&k[1..]);
            } else {
                order.insert(k.clone(), v.clone());
            }
        }
    }
    order
}

/// Enter `row` at 10:05 and fill it, protect it at 10:15: returns (client order id, qty).
fn owned_and_protected(
    fake: &FakeAlpaca,
    cfg: &Path,
    dir: &Path,
    symbol: &str,
) -> (String, Decimal) {
    let out = cycle(cfg, dir, "10:05");
    assert!(out.status.success(), "{}", stderr(&out));
    let entry = fake
        .orders()
        .into_iter()
        .find(|o| o.symbol == symbol && o.side == "buy")
        .expect("an entry order");
    fake.fill(&entry.id, entry.qty, entry.limit_price.unwrap());
    let out = cycle(cfg, dir, "10:15");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        fake.orders()
            .iter()
            .any(|o| o.symbol == symbol && o.order_type == "stop" && o.status == "new"),
        "the fill is protected: {:?}",
        fake.orders()
    );
    (entry.client_order_id, entry.qty)
}

/// Finding 1: a POST answer that is another order (AAPL for our entry; a crypto pair) is not
/// booked: no AAPL position, no stop for it; the order is looked up by its client order id
/// next cycle and recorded as what it really is.
#[test]
fn an_order_answer_that_is_another_order_is_never_booked() {
    let variants = [
        ("another symbol", json!({})),
        (
            "a crypto order",
            json!({"symbol": "ETH/USD", "asset_class": "crypto", "qty": "0.02",
                   "type": "market", "time_in_force": "gtc", "limit_price": null}),
        ),
    ];
    for (label, fields) in variants {
        let fake = FakeAlpaca::start();
        let (dir, rows) = state_with_watchlist();
        let row = tradable(&rows);
        breakout(&fake, row);
        let cfg = config(dir.path(), "alpaca-paper", &fake.url(), &fake.url());
        let foreign = someone_elses_order(fields);
        fake.rewrite_answers("POST", "/v2/orders", 1, move |_| foreign.clone());

        let out = cycle(&cfg, dir.path(), "10:05");
        assert!(out.status.success(), "{label}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("different one"),
            "{label}: {}",
            stderr(&out)
        );
        let ours = fake
            .orders()
            .into_iter()
            .find(|o| o.symbol == row.symbol)
            .expect("our entry exists at the broker");
        let journal = db(dir.path());
        let booked: Vec<String> = journal
            .all_orders()
            .unwrap()
            .into_iter()
            .map(|o| o.order.symbol)
            .collect();
        assert!(booked.is_empty(), "{label}: nothing booked: {booked:?}");
        assert!(journal.open_positions().unwrap().is_empty(), "{label}");
        assert!(
            event_kinds(dir.path())
                .iter()
                .any(|(k, s, _)| k == "order_answer_mismatch"
                    && s.as_deref() == Some(row.symbol.as_str())),
            "{label}: the mismatch is an event (and an alert)"
        );

        // The next cycle looks it up by its client order id, records the real one; its fill
        // is protected by a stop for our symbol, never for AAPL.
        fake.fill(&ours.id, ours.qty, ours.limit_price.unwrap());
        let out = cycle(&cfg, dir.path(), "10:15");
        assert!(out.status.success(), "{label}: {}", stderr(&out));
        let posts = order_posts(&fake);
        assert!(
            posts.iter().all(|p| p["symbol"] == row.symbol.as_str()),
            "{label}: only orders for {}: {posts:?}",
            row.symbol
        );
        assert_eq!(
            posts.len(),
            2,
            "{label}: the entry once, then its stop: {posts:?}"
        );
        assert_eq!(posts[1]["type"], "stop");
        let journal = db(dir.path());
        let positions = journal.open_positions().unwrap();
        assert_eq!(positions.len(), 1, "{label}");
        assert_eq!(positions[0].symbol, row.symbol);
        assert_eq!(positions[0].qty, ours.qty);
        fake_alpaca::contract::assert_all_conform(&fake.requests());
    }
}

/// Finding 2: open orders of kinds we do not trade (trailing stop, stop limit, ioc, fok, opg,
/// cls, notional with `qty: null`, no `client_order_id`, no `created_at`, extra fields) are
/// reported and never touched; the list still reads, so our own orders are refreshed and the
/// cycle is complete.
#[test]
fn foreign_open_orders_of_other_kinds_are_reported_and_the_list_still_reads() {
    let fake = FakeAlpaca::start();
    let (dir, rows) = state_with_watchlist();
    let row = tradable(&rows);
    breakout(&fake, row);
    let cfg = config(dir.path(), "alpaca-paper", &fake.url(), &fake.url());
    let foreign: Vec<Value> = vec![
        someone_elses_order(
            json!({"id": "f-1", "symbol": "TS1", "type": "trailing_stop",
            "side": "sell", "trail_percent": "2.5", "hwm": "10"}),
        ),
        someone_elses_order(json!({"id": "f-2", "symbol": "SL1", "type": "stop_limit",
            "stop_price": "9.5"})),
        someone_elses_order(json!({"id": "f-3", "symbol": "IOC1", "time_in_force": "ioc"})),
        someone_elses_order(json!({"id": "f-4", "symbol": "FOK1", "time_in_force": "fok"})),
        someone_elses_order(json!({"id": "f-5", "symbol": "OPG1", "time_in_force": "opg"})),
        someone_elses_order(json!({"id": "f-6", "symbol": "CLS1", "time_in_force": "cls"})),
        someone_elses_order(json!({"id": "f-7", "symbol": "NOT1", "qty": null,
            "notional": "500", "type": "market"})),
        someone_elses_order(json!({"id": "f-8", "symbol": "NOID", "-client_order_id": null})),
        someone_elses_order(json!({"id": "f-9", "symbol": "NOCR", "-created_at": null,
            "-submitted_at": null, "a_field_from_the_future": {"x": [1, 2]}})),
    ];
    let appended = foreign.clone();
    fake.rewrite_answers("GET", "/v2/orders", usize::MAX, move |body| match body {
        // Only the list (not a lookup by client order id, which shares the prefix).
        Value::Array(mut list) => {
            list.extend(appended.iter().cloned());
            Value::Array(list)
        }
        other => other,
    });

    let (client_id, qty) = owned_and_protected(&fake, &cfg, dir.path(), &row.symbol);
    let out = cycle(&cfg, dir.path(), "10:25");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(!text.contains("open orders unavailable"), "{text}");
    let events = event_kinds(dir.path());
    for symbol in [
        "TS1", "SL1", "IOC1", "FOK1", "OPG1", "CLS1", "NOT1", "NOID", "NOCR",
    ] {
        assert!(
            events
                .iter()
                .any(|(k, s, _)| k == "foreign_order" && s.as_deref() == Some(symbol)),
            "{symbol} reported: {events:?}"
        );
    }
    // Never touched: no request names a foreign order's id.
    for r in fake.requests() {
        assert!(
            !r.path.contains("/f-"),
            "a foreign order was touched: {} {}",
            r.method,
            r.path
        );
    }
    // Our order and its fill are known; the stop covers the position; nothing was resent.
    let journal = db(dir.path());
    assert_eq!(journal.open_positions().unwrap()[0].qty, qty);
    assert!(journal.order(&client_id).unwrap().is_some());
    assert_eq!(order_posts(&fake).len(), 2, "the entry and its stop only");
    let verdict = journal.last_verdict().unwrap().expect("a verdict");
    assert!(verdict.open_orders_read, "{verdict:?}");
    fake_alpaca::contract::assert_all_conform(&fake.requests());
}

/// Finding 2 (positions): one position whose `qty` is not a number holds back its symbol only;
/// the other positions read, and the cycle still trades everything else.
#[test]
fn a_position_that_does_not_read_holds_back_its_symbol_only() {
    for (unreadable_symbol, entry_expected) in [("own", false), ("ZZZ", true)] {
        let fake = FakeAlpaca::start();
        let (dir, rows) = state_with_watchlist();
        let row = tradable(&rows);
        breakout(&fake, row);
        let cfg = config(dir.path(), "alpaca-paper", &fake.url(), &fake.url());
        let symbol = if unreadable_symbol == "own" {
            row.symbol.clone()
        } else {
            unreadable_symbol.to_string()
        };
        let position = json!({"symbol": symbol, "asset_class": "us_equity",
            "exchange": "NYSE", "qty": "a lot", "avg_entry_price": "12.00", "side": "long"});
        fake.rewrite_answers("GET", "/v2/positions", usize::MAX, move |body| match body {
            Value::Array(mut list) => {
                list.push(position.clone());
                Value::Array(list)
            }
            other => other,
        });
        let out = cycle(&cfg, dir.path(), "10:05");
        assert!(out.status.success(), "{symbol}: {}", stderr(&out));
        let text = stderr(&out);
        assert!(!text.contains("positions unavailable"), "{text}");
        assert!(
            text.contains(&format!("{symbol} position whose numbers do not read")),
            "{text}"
        );
        let posts = order_posts(&fake);
        if entry_expected {
            assert_eq!(posts.len(), 1, "{symbol}: the other symbol still enters");
            assert_eq!(posts[0]["symbol"], row.symbol.as_str());
        } else {
            assert!(posts.is_empty(), "held back: {posts:?}");
            let out = exec(&cfg, dir.path(), &["report", "--date", DAY, "--json"])
                .output()
                .unwrap();
            assert!(
                stdout(&out).contains("broker_position_unreadable"),
                "{}",
                stdout(&out)
            );
        }
        assert!(event_kinds(dir.path())
            .iter()
            .any(|(k, s, _)| k == "broker_position_unreadable" && s.as_deref() == Some(&symbol)));
    }
}

/// Finding 3: an account answer without `equity` or `buying_power` (the spec requires only
/// `id` and `status`) stops the start with a message naming the field and saying it is the
/// broker's answer — not advice to check the network and the keys.
#[test]
fn an_account_answer_without_the_numbers_names_the_field_not_the_network() {
    for field in ["equity", "buying_power"] {
        let fake = FakeAlpaca::start();
        let (dir, _rows) = state_with_watchlist();
        let cfg = config(dir.path(), "alpaca-paper", &fake.url(), &fake.url());
        fake.rewrite_answers("GET", "/v2/account", usize::MAX, move |mut body| {
            if let Some(account) = body.as_object_mut() {
                account.remove(field);
            }
            body
        });
        let out = cycle(&cfg, dir.path(), "10:05");
        assert_eq!(out.status.code(), Some(12), "{field}: {}", stderr(&out));
        let text = stderr(&out);
        assert!(
            text.contains(&format!("the account has no {field}")),
            "{text}"
        );
        assert!(text.contains("not the network or the keys"), "{text}");
        assert!(!text.contains("Check the network"), "{text}");
        assert!(order_posts(&fake).is_empty());
    }
}

/// Finding 4: `flatten` exits non-zero and prints what remains when the stop's cancel is
/// refused (422), and when the sell's answer is unreadable (the sell may exist).
#[test]
fn flatten_exits_non_zero_and_prints_what_remains() {
    let flatten = |cfg: &Path, dir: &Path| {
        exec(cfg, dir, &["flatten", "--at", &format!("{DAY}T10:35")])
            .output()
            .unwrap()
    };

    // The cancel is refused: nothing sold, the stop still holds, exit 12.
    let fake = FakeAlpaca::start();
    let (dir, rows) = state_with_watchlist();
    let row = tradable(&rows);
    breakout(&fake, row);
    let cfg = config(dir.path(), "alpaca-paper", &fake.url(), &fake.url());
    let (_, qty) = owned_and_protected(&fake, &cfg, dir.path(), &row.symbol);
    fake.inject("DELETE", "/v2/orders/", fake_alpaca::Fault::Status(422), 1);
    let out = flatten(&cfg, dir.path());
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.contains("flatten: 0 sell orders sent"), "{printed}");
    assert!(
        printed.contains(&format!("NOT CLOSED {qty} {}", row.symbol)),
        "{printed}"
    );
    assert!(printed.contains("could not be cancelled"), "{printed}");
    assert!(stderr(&out).contains("flatten did not close everything"));
    assert_eq!(
        order_posts(&fake)
            .iter()
            .filter(|p| p["type"] == "market")
            .count(),
        0
    );

    // The sell's answer is unreadable: it may exist, so the outcome is unknown, exit 12.
    let fake = FakeAlpaca::start();
    let (dir, rows) = state_with_watchlist();
    let row = tradable(&rows);
    breakout(&fake, row);
    let cfg = config(dir.path(), "alpaca-paper", &fake.url(), &fake.url());
    owned_and_protected(&fake, &cfg, dir.path(), &row.symbol);
    fake.rewrite_answers("POST", "/v2/orders", 1, |_| json!("ok"));
    let out = flatten(&cfg, dir.path());
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.contains("outcome is unknown"), "{printed}");
    assert!(printed.contains("NOT CLOSED"), "{printed}");

    // Run again: the sell is found by its client order id and is working, so nothing is
    // left open and nothing is sent twice: exit 0.
    let sells_before = order_posts(&fake).len();
    let out = flatten(&cfg, dir.path());
    let printed = stdout(&out);
    assert!(out.status.success(), "{printed} {}", stderr(&out));
    assert!(printed.contains("already being sold"), "{printed}");
    assert_eq!(order_posts(&fake).len(), sells_before, "no second sell");
    fake_alpaca::contract::assert_all_conform(&fake.requests());
}

/// Finding 5: `suspend-trading` takes the state from the PATCH answer's `suspend_trade`: an
/// account without the optional `trade_suspended_by_user` no longer fails a successful
/// suspend, an answer saying otherwise than asked fails (exit 12), and `--resume` with an
/// answer that does not say is not reported as done.
#[test]
fn suspend_trading_reads_suspend_trade_from_the_patch_answer() {
    let fake = FakeAlpaca::start();
    let (dir, _rows) = state_with_watchlist();
    let cfg = config(dir.path(), "alpaca-paper", &fake.url(), &fake.url());
    fake.rewrite_answers("GET", "/v2/account", usize::MAX, |mut body| {
        if let Some(account) = body.as_object_mut() {
            account.remove("trade_suspended_by_user");
        }
        body
    });
    let out = exec(&cfg, dir.path(), &["suspend-trading"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("SUSPENDED"), "{}", stdout(&out));

    // Alpaca's answer says new orders are still allowed: not done.
    fake.rewrite_answers("PATCH", "/v2/account/configurations", 1, |mut body| {
        body["suspend_trade"] = json!(false);
        body
    });
    let out = exec(&cfg, dir.path(), &["suspend-trading"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("suspend_trade = false"),
        "{}",
        stderr(&out)
    );

    // An answer without suspend_trade: the state is unknown, never "resumed".
    fake.rewrite_answers("PATCH", "/v2/account/configurations", 1, |mut body| {
        if let Some(config) = body.as_object_mut() {
            config.remove("suspend_trade");
        }
        body
    });
    let out = exec(&cfg, dir.path(), &["suspend-trading", "--resume"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no suspend_trade"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("allowed"), "{}", stdout(&out));
    fake_alpaca::contract::assert_all_conform(&fake.requests());
}
