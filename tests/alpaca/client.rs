//! The Alpaca client and `AlpacaBroker` against the fault-injecting fake Trading API
//! (`tests/alpaca/fake_alpaca`), orders placed through the real `OrderDesk` with an in-memory
//! `StateDb`: no fault yields a duplicate order or a lost fill.
//!
//! Conformance: `every_request_conforms_to_the_contract` drives every request the client can
//! send and validates what the fake recorded against the shared contract
//! (`tests/alpaca/fake_alpaca/contract.rs`), the facts copied from the official spec
//! (`trading-api.json`) — so `cargo test` needs no files outside this repo; every other test here
//! ends by checking its recorded requests against it too. The `#[ignore]`d
//! `every_request_conforms_to_the_official_spec` walks the same requests against the spec JSON
//! itself and checks that the contract's Trading API operations agree with it; run it with
//! `cargo test --test alpaca -- --ignored client::` where `../shared/reference/alpaca/` exists (or
//! point `AVWAP_ALPACA_TRADING_SPEC` at the file).

use super::fake_alpaca;

use avwap::alpaca::{AlpacaBroker, AlpacaClient, AlpacaError, ClientConfig, Endpoints};
use avwap::broker::{
    Broker, BrokerError, OrderRequest, OrderStatus, OrderType, ReplaceRequest, Side, TimeInForce,
};
use avwap::credentials::{AlpacaCredentials, CredentialStore};
use avwap::execution::db::{Intent, IntentState, StateDb};
use avwap::execution::lifecycle::{Failpoints, OrderDesk, Placement};
use chrono::{DateTime, Utc};
use fake_alpaca::contract::{self, Api, Kind};
use fake_alpaca::{FakeAlpaca, Fault, Recorded, KEY_ID, SECRET};
use rust_decimal::Decimal;
use serde_json::Value;
use std::time::{Duration, Instant};

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn store(pairs: &[(&'static str, &'static str)]) -> CredentialStore {
    let pairs: Vec<(&'static str, &'static str)> = pairs.to_vec();
    CredentialStore::new(None, move |k| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
}

fn credentials() -> AlpacaCredentials {
    store(&[("APCA_API_KEY_ID", KEY_ID), ("APCA_API_SECRET_KEY", SECRET)])
        .alpaca()
        .unwrap()
}

fn config(base: &str) -> ClientConfig {
    let mut config = ClientConfig::new(Endpoints::single(base));
    config.connect_timeout = Duration::from_millis(500);
    config.timeout = Duration::from_millis(700);
    config.requests_per_minute = 600_000;
    config.backoff_base = Duration::from_millis(10);
    config.max_backoff = Duration::from_millis(40);
    config.max_get_retries = 3;
    config
}

fn broker(fake: &FakeAlpaca) -> AlpacaBroker {
    let client = AlpacaClient::new(&credentials(), config(&fake.url())).unwrap();
    AlpacaBroker::new(client, "alpaca-paper")
}

const NOW: &str = "2026-11-30T15:00:00Z";

fn buy_intent(cid: &str, qty: &str) -> Intent {
    Intent {
        client_order_id: cid.into(),
        session: "2026-11-30".parse().unwrap(),
        symbol: "AXTA".into(),
        leg: "en".into(),
        attempt: 1,
        side: Side::Buy,
        qty: dec(qty),
        order_type: OrderType::Limit,
        limit_price: Some(dec("33.20")),
        stop_price: None,
        time_in_force: TimeInForce::Day,
        replaces_order_id: None,
        plan: None,
        state: IntentState::Journaled,
        reason: None,
        created_at: t(NOW),
        updated_at: t(NOW),
    }
}

fn desk<'a>(
    db: &'a mut StateDb,
    broker: &'a mut AlpacaBroker,
    now: DateTime<Utc>,
    failpoints: &'a Failpoints,
) -> OrderDesk<'a> {
    OrderDesk {
        db,
        broker,
        now,
        failpoints,
        unknown_outcome_grace: Duration::from_secs(30),
    }
}

fn request(cid: &str, side: Side, qty: &str, order_type: OrderType) -> OrderRequest {
    OrderRequest {
        client_order_id: cid.into(),
        symbol: "AXTA".into(),
        side,
        qty: dec(qty),
        order_type,
        limit_price: (order_type == OrderType::Limit).then(|| dec("33.20")),
        stop_price: (order_type == OrderType::Stop).then(|| dec("31.55")),
        time_in_force: if order_type == OrderType::Stop {
            TimeInForce::Gtc
        } else {
            TimeInForce::Day
        },
    }
}

const CID: &str = "avw-20261130-AXTA-en-1";

fn assert_no_secret(text: &str) {
    assert!(!text.contains(SECRET), "the secret leaked into {text:?}");
    assert!(
        !text.contains("zq8Xw3vLeak"),
        "part of the secret leaked into {text:?}"
    );
}

fn total_filled(db: &StateDb, cid: &str) -> Decimal {
    db.fills()
        .unwrap()
        .iter()
        .filter(|f| f.client_order_id == cid)
        .map(|f| f.qty)
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Faults on order submission: never a duplicate, never a lost fill.
// ---------------------------------------------------------------------------------------------

#[test]
fn timeout_after_accept_is_resolved_by_lookup_without_a_duplicate_or_lost_fill() {
    let fake = FakeAlpaca::start();
    let mut alpaca = broker(&fake);
    let mut db = StateDb::open_in_memory().unwrap();
    let fp = Failpoints::none();
    fake.inject(
        "POST",
        "/v2/orders",
        Fault::TimeoutAfterAccept(Duration::from_millis(1500)),
        1,
    );
    let started = Instant::now();
    let placement = desk(&mut db, &mut alpaca, t(NOW), &fp)
        .place(buy_intent(CID, "100"))
        .unwrap();
    assert!(matches!(placement, Placement::Unknown(_)), "{placement:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "not bounded"
    );
    assert_eq!(fake.count("POST", "/v2/orders"), 1, "the POST was retried");

    // It fills partly while we do not know about it.
    let order = fake.order_by_client_id(CID).expect("the fake accepted it");
    fake.fill(&order.id, dec("40"), dec("33.10"));

    let blocked = desk(&mut db, &mut alpaca, t(NOW), &fp)
        .resolve_unresolved()
        .unwrap();
    assert!(blocked.is_empty(), "{blocked:?}");
    assert_eq!(
        db.intent(CID).unwrap().unwrap().state,
        IntentState::Acknowledged
    );
    assert_eq!(total_filled(&db, CID), dec("40"));

    fake.fill(&order.id, dec("60"), dec("33.12"));
    let open = alpaca.open_orders().unwrap();
    desk(&mut db, &mut alpaca, t(NOW), &fp)
        .refresh_open_orders(Some(&open))
        .unwrap();
    assert_eq!(total_filled(&db, CID), dec("100"));
    assert_eq!(fake.orders().len(), 1);
    assert_eq!(fake.count("POST", "/v2/orders"), 1);
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn server_error_before_accept_ends_not_placed_after_the_grace() {
    let fake = FakeAlpaca::start();
    let mut alpaca = broker(&fake);
    let mut db = StateDb::open_in_memory().unwrap();
    let fp = Failpoints::none();
    fake.inject("POST", "/v2/orders", Fault::Status(503), 1);
    let placement = desk(&mut db, &mut alpaca, t(NOW), &fp)
        .place(buy_intent(CID, "100"))
        .unwrap();
    assert!(matches!(placement, Placement::Unknown(_)), "{placement:?}");
    assert_eq!(
        fake.count("POST", "/v2/orders"),
        1,
        "a 5xx POST was retried"
    );
    assert!(fake.orders().is_empty());

    // Within the grace the symbol stays blocked; after it, the order is proven absent.
    let blocked = desk(&mut db, &mut alpaca, t(NOW), &fp)
        .resolve_unresolved()
        .unwrap();
    assert_eq!(blocked, vec!["AXTA".to_string()]);
    let later = t("2026-11-30T15:01:00Z");
    desk(&mut db, &mut alpaca, later, &fp)
        .resolve_unresolved()
        .unwrap();
    assert_eq!(
        db.intent(CID).unwrap().unwrap().state,
        IntentState::NotPlaced
    );
    assert_eq!(fake.count("POST", "/v2/orders"), 1);
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn server_error_after_accept_is_adopted_by_lookup() {
    let fake = FakeAlpaca::start();
    let mut alpaca = broker(&fake);
    let mut db = StateDb::open_in_memory().unwrap();
    let fp = Failpoints::none();
    fake.inject("POST", "/v2/orders", Fault::StatusAfterAccept(500), 1);
    let placement = desk(&mut db, &mut alpaca, t(NOW), &fp)
        .place(buy_intent(CID, "100"))
        .unwrap();
    assert!(matches!(placement, Placement::Unknown(_)), "{placement:?}");
    let order = fake.order_by_client_id(CID).unwrap();
    fake.fill(&order.id, dec("100"), dec("33.00"));
    desk(&mut db, &mut alpaca, t(NOW), &fp)
        .resolve_unresolved()
        .unwrap();
    assert_eq!(total_filled(&db, CID), dec("100"));
    assert_eq!(fake.orders().len(), 1);
    assert_eq!(fake.count("POST", "/v2/orders"), 1);
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn rate_limited_post_is_not_retried_and_is_resolved() {
    let fake = FakeAlpaca::start();
    let mut alpaca = broker(&fake);
    let mut db = StateDb::open_in_memory().unwrap();
    let fp = Failpoints::none();
    fake.inject(
        "POST",
        "/v2/orders",
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
        1,
    );
    let err = alpaca
        .submit(&request(CID, Side::Buy, "10", OrderType::Limit))
        .unwrap_err();
    assert_eq!(
        err,
        BrokerError::RateLimited {
            retry_after: Some(Duration::from_secs(1))
        }
    );
    assert_eq!(fake.count("POST", "/v2/orders"), 1);
    assert!(fake.orders().is_empty());

    // Through the desk: the same fault is an unknown outcome, resolved by lookup.
    fake.inject(
        "POST",
        "/v2/orders",
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
        1,
    );
    let cid2 = "avw-20261130-AXTA-en-2";
    let placement = desk(&mut db, &mut alpaca, t(NOW), &fp)
        .place(buy_intent(cid2, "10"))
        .unwrap();
    assert!(matches!(placement, Placement::Unknown(_)), "{placement:?}");
    // The limiter honours Retry-After: the lookup waits for it.
    let started = Instant::now();
    desk(&mut db, &mut alpaca, t("2026-11-30T15:05:00Z"), &fp)
        .resolve_unresolved()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(
        db.intent(cid2).unwrap().unwrap().state,
        IntentState::NotPlaced
    );
    assert_eq!(fake.count("POST", "/v2/orders"), 2);
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn duplicate_client_order_id_is_rejected_forever() {
    let fake = FakeAlpaca::start();
    let mut alpaca = broker(&fake);
    let first = alpaca
        .submit(&request(CID, Side::Buy, "10", OrderType::Limit))
        .unwrap();
    alpaca.cancel(&first.id).unwrap();
    let err = alpaca
        .submit(&request(CID, Side::Buy, "10", OrderType::Limit))
        .unwrap_err();
    assert_eq!(
        err,
        BrokerError::Rejected {
            code: Some("40010001".into()),
            message: "client_order_id must be unique".into()
        }
    );
    assert_eq!(fake.orders().len(), 1);
    let again = alpaca.order_by_client_id(CID).unwrap().unwrap();
    assert_eq!(again.status, OrderStatus::Canceled);
    contract::assert_all_conform(&fake.requests());
}

/// The recovery lookup behind a position the journal does not own: every order of one symbol
/// in any state (filled, cancelled, open), oldest first, nothing of another symbol.
#[test]
fn orders_of_one_symbol_in_any_state_are_listed_for_recovery() {
    let fake = FakeAlpaca::start();
    let mut alpaca = broker(&fake);
    let first = alpaca
        .submit(&request(CID, Side::Buy, "10", OrderType::Limit))
        .unwrap();
    alpaca.cancel(&first.id).unwrap();
    let mut other = request("avw-20261130-CCE-en-1", Side::Buy, "5", OrderType::Limit);
    other.symbol = "CCE".into();
    alpaca.submit(&other).unwrap();
    let second = alpaca
        .submit(&request(
            "avw-20261130-AXTA-en-2",
            Side::Buy,
            "10",
            OrderType::Limit,
        ))
        .unwrap();
    let listed = alpaca
        .orders_for_symbol("AXTA", t("2026-10-01T00:00:00Z"))
        .unwrap();
    let ids: Vec<&str> = listed.iter().map(|o| o.client_order_id.as_str()).collect();
    assert_eq!(ids, vec![CID, "avw-20261130-AXTA-en-2"]);
    assert_eq!(listed[0].status, OrderStatus::Canceled);
    assert_eq!(listed[1].id, second.id);
    let list = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/v2/orders" && r.method == "GET")
        .expect("a list request");
    let query = |k: &str| {
        list.query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(query("status"), Some("all"));
    assert_eq!(query("symbols"), Some("AXTA"));
    assert_eq!(query("after"), Some("2026-10-01T00:00:00Z"));
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn shares_held_by_an_open_stop_are_not_available_until_it_is_resized() {
    let fake = FakeAlpaca::start();
    let mut alpaca = broker(&fake);
    let entry = alpaca
        .submit(&request(CID, Side::Buy, "100", OrderType::Limit))
        .unwrap();
    fake.fill(&entry.id, dec("100"), dec("33.00"));
    let stop = alpaca
        .submit(&request(
            "avw-20261130-AXTA-st1-1",
            Side::Sell,
            "100",
            OrderType::Stop,
        ))
        .unwrap();
    assert_eq!(stop.time_in_force, TimeInForce::Gtc);
    let trim = request("avw-20261130-AXTA-tr-1", Side::Sell, "50", OrderType::Limit);
    match alpaca.submit(&trim).unwrap_err() {
        BrokerError::Rejected { code, message } => {
            assert_eq!(code.as_deref(), Some("40310000"));
            assert!(message.contains("insufficient qty"), "{message}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    // Resize the stop first (replace), then the trim fits.
    let resized = alpaca
        .replace(
            &stop.id,
            &ReplaceRequest {
                client_order_id: "avw-20261130-AXTA-st2-1".into(),
                qty: Some(dec("50")),
                limit_price: None,
                stop_price: Some(dec("32.10")),
            },
        )
        .unwrap();
    assert_eq!(resized.qty, dec("50"));
    assert_eq!(resized.stop_price, Some(dec("32.10")));
    let old = alpaca
        .order_by_client_id("avw-20261130-AXTA-st1-1")
        .unwrap()
        .unwrap();
    assert_eq!(old.status, OrderStatus::Replaced);
    assert_eq!(old.replaced_by.as_deref(), Some(resized.id.as_str()));
    // The trim's id was not consumed by the refused attempt? Alpaca refuses before storing it.
    let trim_ok = alpaca.submit(&trim).unwrap();
    assert_eq!(trim_ok.status, OrderStatus::New);
    let positions = alpaca.positions().unwrap();
    assert_eq!(positions.len(), 1);
    assert_eq!(positions[0].qty, dec("100"));
    assert_eq!(positions[0].avg_entry_price, dec("33.00"));
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn cumulative_partial_fills_become_deltas_without_duplicates() {
    let fake = FakeAlpaca::start();
    let mut alpaca = broker(&fake);
    let mut db = StateDb::open_in_memory().unwrap();
    let fp = Failpoints::none();
    let placement = desk(&mut db, &mut alpaca, t(NOW), &fp)
        .place(buy_intent(CID, "100"))
        .unwrap();
    let Placement::Acknowledged(order) = placement else {
        panic!("{placement:?}")
    };
    for (qty, price) in [("30", "33.00"), ("0", ""), ("45", "33.10"), ("0", "")] {
        if qty != "0" {
            fake.fill(&order.id, dec(qty), dec(price));
        }
        let open = alpaca.open_orders().unwrap();
        desk(&mut db, &mut alpaca, t(NOW), &fp)
            .refresh_open_orders(Some(&open))
            .unwrap();
    }
    let fills: Vec<_> = db
        .fills()
        .unwrap()
        .into_iter()
        .filter(|f| f.client_order_id == CID)
        .collect();
    assert_eq!(fills.len(), 2, "{fills:?}");
    assert_eq!(fills[0].qty, dec("30"));
    assert_eq!(fills[1].qty, dec("45"));
    assert_eq!(fills[1].cumulative_qty, dec("75"));
    let wire = alpaca.order_by_client_id(CID).unwrap().unwrap();
    assert_eq!(wire.filled_qty, dec("75"));
    assert_eq!(wire.status, OrderStatus::PartiallyFilled);
    contract::assert_all_conform(&fake.requests());
}

// ---------------------------------------------------------------------------------------------
// Faults on reads: bounded retries, Retry-After and X-RateLimit-* honoured.
// ---------------------------------------------------------------------------------------------

#[test]
fn reads_are_retried_on_5xx_a_bounded_number_of_times() {
    let fake = FakeAlpaca::start();
    let mut alpaca = broker(&fake);
    fake.inject("GET", "/v2/account", Fault::Status(502), 2);
    let account = alpaca.account().unwrap();
    assert_eq!(account.equity, dec("100000.00"));
    assert_eq!(fake.count("GET", "/v2/account"), 3);

    fake.inject("GET", "/v2/clock", Fault::Status(500), 100);
    let err = alpaca.clock().unwrap_err();
    assert!(matches!(err, BrokerError::RetryableRead { .. }), "{err:?}");
    assert_eq!(fake.count("GET", "/v2/clock"), 4, "1 try + 3 retries");
    assert!(err.to_string().contains("500"), "{err}");
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn a_429_on_a_read_waits_for_retry_after_then_succeeds() {
    let fake = FakeAlpaca::start();
    let mut alpaca = broker(&fake);
    fake.inject(
        "GET",
        "/v2/positions",
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
        1,
    );
    let started = Instant::now();
    assert!(alpaca.positions().unwrap().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(950));
    assert_eq!(fake.count("GET", "/v2/positions"), 2);
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn an_exhausted_quota_pauses_the_next_request_until_the_reset() {
    let fake = FakeAlpaca::start();
    let mut alpaca = broker(&fake);
    fake.inject(
        "GET",
        "/v2/clock",
        Fault::QuotaExhausted { reset_in_secs: 1 },
        1,
    );
    alpaca.clock().unwrap();
    let started = Instant::now();
    alpaca.clock().unwrap();
    // Reset is whole seconds: between ~0 and 1 s from now; it must not be zero wait unless
    // the second boundary just passed, so only bound it from above.
    assert!(started.elapsed() <= Duration::from_millis(1500));
    assert_eq!(alpaca.requests_sent(), 2);
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn the_rate_limiter_spaces_requests() {
    let fake = FakeAlpaca::start();
    let mut config = config(&fake.url());
    config.requests_per_minute = 600; // 10/s, burst 60
    let client = AlpacaClient::new(&credentials(), config).unwrap();
    let mut alpaca = AlpacaBroker::new(client, "alpaca-paper");
    let started = Instant::now();
    for _ in 0..65 {
        alpaca.clock().unwrap();
    }
    // 60 from the burst, then 5 at 10/s.
    assert!(started.elapsed() >= Duration::from_millis(450));
    assert_eq!(alpaca.requests_sent(), 65);
    contract::assert_all_conform(&fake.requests());
}

// ---------------------------------------------------------------------------------------------
// Replace, cancel, suspend, open orders, statuses.
// ---------------------------------------------------------------------------------------------

#[test]
fn replace_cancel_and_suspend_trade() {
    let fake = FakeAlpaca::start();
    let mut alpaca = broker(&fake);
    let order = alpaca
        .submit(&request(CID, Side::Buy, "10", OrderType::Limit))
        .unwrap();
    let new = alpaca
        .replace(
            &order.id,
            &ReplaceRequest {
                client_order_id: "avw-20261130-AXTA-en-2".into(),
                qty: None,
                limit_price: Some(dec("33.25")),
                stop_price: None,
            },
        )
        .unwrap();
    assert_eq!(new.limit_price, Some(dec("33.25")));
    assert_eq!(new.qty, dec("10"));
    alpaca.cancel(&new.id).unwrap();
    assert!(matches!(
        alpaca.cancel(&new.id).unwrap_err(),
        BrokerError::Rejected { .. }
    ));
    assert!(matches!(
        alpaca
            .cancel("00000000-0000-4000-8000-999999999999")
            .unwrap_err(),
        BrokerError::NotFound { .. }
    ));
    assert_eq!(fake.count("DELETE", &format!("/v2/orders/{}", new.id)), 2);

    alpaca.suspend_new_orders(true).unwrap();
    assert!(alpaca.account().unwrap().trading_suspended);
    match alpaca
        .submit(&request(
            "avw-20261130-AXTA-en-3",
            Side::Buy,
            "1",
            OrderType::Market,
        ))
        .unwrap_err()
    {
        BrokerError::Rejected { code, .. } => assert_eq!(code.as_deref(), Some("40310000")),
        other => panic!("{other:?}"),
    }
    alpaca.suspend_new_orders(false).unwrap();
    assert!(!alpaca.account().unwrap().trading_suspended);
    alpaca
        .submit(&request(
            "avw-20261130-AXTA-en-4",
            Side::Buy,
            "1",
            OrderType::Market,
        ))
        .unwrap();
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn open_orders_follow_pagination() {
    let fake = FakeAlpaca::start();
    let mut alpaca = broker(&fake);
    for i in 0..502 {
        alpaca
            .submit(&request(
                &format!("avw-20261130-AXTA-en-{i}"),
                Side::Buy,
                "1",
                OrderType::Limit,
            ))
            .unwrap();
    }
    let open = alpaca.open_orders().unwrap();
    assert_eq!(open.len(), 502);
    let mut ids: Vec<_> = open.iter().map(|o| o.id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 502);
    assert_eq!(fake.count("GET", "/v2/orders"), 2);
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn by_client_order_id_404_is_none_and_unknown_statuses_are_errors_not_closed() {
    let fake = FakeAlpaca::start();
    let mut alpaca = broker(&fake);
    assert_eq!(alpaca.order_by_client_id("nope").unwrap(), None);
    let order = alpaca
        .submit(&request(CID, Side::Buy, "10", OrderType::Limit))
        .unwrap();
    fake.set_status(&order.id, "done_for_day");
    let known = alpaca.order_by_client_id(CID).unwrap().unwrap();
    assert!(
        known.status.is_open(),
        "done_for_day may fill the next session"
    );
    fake.set_status(&order.id, "teleported");
    let err = alpaca.order_by_client_id(CID).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("teleported"), "{text}");
    assert!(text.contains("neither treated as open"), "{text}");
    let err = alpaca.open_orders();
    assert!(err.is_err() || err.unwrap().is_empty());
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn live_confirmation_compares_the_account_number() {
    let fake = FakeAlpaca::start();
    let alpaca = broker(&fake);
    let ok = avwap::credentials::Secret::new(fake_alpaca::ACCOUNT_NUMBER.into());
    assert!(alpaca.confirm_live_account(&ok).is_ok());
    let wrong = avwap::credentials::Secret::new("PA999".into());
    let err = alpaca.confirm_live_account(&wrong).unwrap_err();
    assert!(matches!(err, BrokerError::Auth { .. }));
    assert!(!err.to_string().contains(fake_alpaca::ACCOUNT_NUMBER));
    contract::assert_all_conform(&fake.requests());
}

// ---------------------------------------------------------------------------------------------
// Fail fast without credentials or network; secrets never leak.
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_credentials_fail_fast_naming_what_is_missing() {
    let started = Instant::now();
    let err = AlpacaClient::from_store(
        &store(&[("APCA_API_KEY_ID", KEY_ID)]),
        ClientConfig::new(Endpoints::single("http://127.0.0.1:9")),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("alpaca-secret-key"), "{text}");
    assert!(text.contains("APCA_API_SECRET_KEY"), "{text}");
    assert!(started.elapsed() < Duration::from_millis(200));
    let broker_err = BrokerError::from(err);
    assert!(matches!(broker_err, BrokerError::Auth { .. }));

    let text = AlpacaClient::from_store(&store(&[]), ClientConfig::new(Endpoints::single("x")))
        .unwrap_err()
        .to_string();
    assert!(text.contains("alpaca-key-id"), "{text}");
}

#[test]
fn unreachable_base_url_fails_within_the_timeout() {
    // A port nobody listens on: connection refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let mut alpaca = AlpacaBroker::new(
        AlpacaClient::new(&credentials(), config(&url)).unwrap(),
        "alpaca-paper",
    );
    let started = Instant::now();
    let err = alpaca.clock().unwrap_err();
    assert!(matches!(err, BrokerError::RetryableRead { .. }), "{err:?}");
    assert!(err.to_string().contains("could not connect"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    let err = alpaca
        .submit(&request(CID, Side::Buy, "1", OrderType::Market))
        .unwrap_err();
    assert!(matches!(err, BrokerError::UnknownOutcome { .. }), "{err:?}");

    // A server that accepts but never answers: bounded by the read timeout × attempts.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let mut cfg = config(&url);
    cfg.max_get_retries = 1;
    let mut alpaca = AlpacaBroker::new(AlpacaClient::new(&credentials(), cfg).unwrap(), "x");
    let started = Instant::now();
    let err = alpaca.account().unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

#[test]
fn secrets_never_appear_in_debug_output_or_errors() {
    let fake = FakeAlpaca::start();
    let mut alpaca = broker(&fake);
    assert_no_secret(&format!("{alpaca:?}"));
    assert_no_secret(&format!("{:#?}", alpaca.client()));
    assert_no_secret(&format!("{:?}", credentials()));

    // Wrong key: 401 → Auth, and neither key appears.
    let bad = store(&[
        ("APCA_API_KEY_ID", KEY_ID),
        ("APCA_API_SECRET_KEY", "WRONG-zq8Xw3vLeak-other"),
    ])
    .alpaca()
    .unwrap();
    let mut wrong = AlpacaBroker::new(AlpacaClient::new(&bad, config(&fake.url())).unwrap(), "p");
    let err = wrong.account().unwrap_err();
    assert!(matches!(err, BrokerError::Auth { .. }), "{err:?}");
    assert_no_secret(&err.to_string());
    assert_no_secret(&format!("{err:?}"));
    assert!(err.to_string().contains("401"), "{err}");

    // Every error class rendered.
    fake.inject("POST", "/v2/orders", Fault::Status(500), 1);
    let e = alpaca
        .submit(&request(CID, Side::Buy, "1", OrderType::Market))
        .unwrap_err();
    assert_no_secret(&format!("{e} {e:?}"));
    fake.inject("GET", "/v2/clock", Fault::Status(503), 10);
    let e = alpaca.clock().unwrap_err();
    assert_no_secret(&format!("{e} {e:?}"));
    // The key headers were sent (the fake records them, minus the secret).
    let recorded = fake.requests();
    assert!(recorded.iter().all(|r| r
        .headers
        .iter()
        .any(|(n, v)| n == "apca-api-key-id" && v == KEY_ID)));
    contract::assert_all_conform(&fake.requests());
}

/// A proxy that copies the request headers into its error page never gets the key pair into
/// an error message: only Alpaca's `code` and `message` are kept, the keys redacted, the text
/// cut; a non-JSON page becomes a short printable excerpt. Every status class, reads (retried)
/// and an order POST (sent once).
#[test]
fn a_reflecting_proxy_never_puts_the_keys_into_an_error() {
    let fake = FakeAlpaca::start();
    let mut alpaca = broker(&fake);
    let check = |text: &str| {
        assert!(!text.contains(SECRET), "the secret leaked: {text}");
        assert!(!text.contains(KEY_ID), "the key id leaked: {text}");
        assert!(text.contains("[redacted]"), "nothing was redacted: {text}");
        // Alpaca's message is cut to 200 bytes; the rest is our own wording.
        assert!(text.len() < 600, "{} bytes: {text}", text.len());
    };
    for status in [401, 403, 404, 422, 500, 503] {
        for json in [true, false] {
            let fault = Fault::ReflectHeaders { status, json };
            // Reads are tried 4 times on a 5xx, once on a 4xx: exactly as many faults.
            let reads = if status >= 500 { 4 } else { 1 };
            fake.inject("GET", "/v2/account", fault.clone(), reads);
            let err = alpaca.account().unwrap_err();
            check(&format!("{err}"));
            check(&format!("{err:?}"));
            // The same through the client's own error type.
            fake.inject("GET", "/v2/clock", fault.clone(), reads);
            let raw = alpaca
                .client()
                .execute(&avwap::alpaca::client::Request::get(
                    avwap::alpaca::client::Api::Trading,
                    "/v2/clock",
                ))
                .unwrap_err();
            check(&format!("{raw}"));
            check(&format!("{raw:?}"));
            fake.inject("POST", "/v2/orders", fault, 1);
            let err = alpaca
                .submit(&request(CID, Side::Buy, "1", OrderType::Market))
                .unwrap_err();
            check(&format!("{err}"));
            check(&format!("{err:?}"));
        }
    }
    // 4xx: 1 + 1 + 1 requests, 5xx: 4 + 4 + 1; for 4 + 2 statuses, JSON and not: every
    // injected fault was answered, none left over.
    assert_eq!(fake.requests().len(), 2 * (4 * 3 + 2 * 9));
    // Alpaca's message still comes through (what the operator needs), cut and redacted.
    fake.inject(
        "GET",
        "/v2/account",
        Fault::ReflectHeaders {
            status: 401,
            json: true,
        },
        1,
    );
    let err = alpaca.account().unwrap_err().to_string();
    assert!(
        err.contains("proxy saw:") && err.contains("apca-api-key-id: [redacted]"),
        "{err}"
    );
}

#[test]
fn subscription_errors_say_so() {
    let err = AlpacaError::Forbidden {
        code: None,
        message: "subscription does not permit querying recent SIP data".into(),
        subscription: true,
    };
    let text = BrokerError::from(err).to_string();
    assert!(text.contains("data subscription"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Conformance with the official spec.
// ---------------------------------------------------------------------------------------------

/// Sends every kind of request the client can send; returns what the fake recorded.
fn exercise_every_request() -> Vec<Recorded> {
    let fake = FakeAlpaca::start();
    let mut alpaca = broker(&fake);
    alpaca.clock().unwrap();
    alpaca.account().unwrap();
    alpaca.positions().unwrap();
    alpaca.open_orders().unwrap();
    let mut ids = Vec::new();
    for (i, (side, order_type)) in [
        (Side::Buy, OrderType::Limit),
        (Side::Buy, OrderType::Market),
        (Side::Buy, OrderType::Stop),
    ]
    .into_iter()
    .enumerate()
    {
        let order = alpaca
            .submit(&request(&format!("{CID}{i}"), side, "7", order_type))
            .unwrap();
        ids.push(order.id);
    }
    fake.fill(&ids[1], dec("7"), dec("33"));
    alpaca
        .submit(&request("sell-1", Side::Sell, "7", OrderType::Stop))
        .unwrap();
    alpaca.order_by_client_id(&format!("{CID}0")).unwrap();
    alpaca.order_by_client_id("absent").unwrap();
    alpaca
        .replace(
            &ids[0],
            &ReplaceRequest {
                client_order_id: "r-1".into(),
                qty: Some(dec("5")),
                limit_price: Some(dec("33.3")),
                stop_price: None,
            },
        )
        .unwrap();
    alpaca
        .replace(
            &ids[2],
            &ReplaceRequest {
                client_order_id: "r-2".into(),
                qty: None,
                limit_price: None,
                stop_price: Some(dec("31.9")),
            },
        )
        .unwrap();
    alpaca.cancel(&ids[2]).unwrap_err(); // replaced: not cancelable, still a valid request
    alpaca.suspend_new_orders(true).unwrap();
    alpaca.suspend_new_orders(false).unwrap();
    fake.set_calendar(vec![fake_alpaca::FakeCalendarDay::new(
        "2026-11-27".parse().unwrap(),
        "09:30",
        "13:00",
    )]);
    let (_, days) = avwap::alpaca::calendar::fetch_calendar(
        alpaca.client(),
        "2026-11-25".parse().unwrap(),
        "2027-01-29".parse().unwrap(),
    )
    .unwrap();
    assert_eq!(days.len(), 1);
    fake.set_assets(vec![fake_alpaca::FakeAsset::equity("AXTA", "NYSE")]);
    let assets = avwap::alpaca::assets::fetch_tradable_equities(alpaca.client()).unwrap();
    assert_eq!(assets.members.len(), 1);
    let recorded = fake.requests();
    // Every Trading API operation of the contract was exercised.
    let missed = contract::unexercised(&recorded, Api::Trading);
    assert!(missed.is_empty(), "not exercised: {missed:?}");
    recorded
}

#[test]
fn every_request_conforms_to_the_contract() {
    let recorded = exercise_every_request();
    contract::assert_all_conform(&recorded);
    // Decimals travel as strings.
    let post = recorded
        .iter()
        .find(|r| r.method == "POST" && r.body.as_ref().is_some_and(|b| b["type"] == "limit"))
        .unwrap();
    let body = post.body.as_ref().unwrap();
    assert_eq!(body["qty"], Value::String("7".into()));
    assert_eq!(body["limit_price"], Value::String("33.20".into()));
}

fn recorded(method: &str, path: &str, query: &[(&str, &str)], body: Option<Value>) -> Recorded {
    Recorded {
        method: method.into(),
        path: path.into(),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body,
        headers: Vec::new(),
    }
}

#[test]
fn the_contract_check_catches_violations() {
    let bad = recorded;
    let cases = [
        bad("GET", "/v2/orders", &[("status", "working")], None),
        bad("GET", "/v2/orders", &[("page_size", "5")], None),
        bad("GET", "/v2/orders/by_client_order_id", &[], None),
        bad("GET", "/v2/orders:by_client_order_id", &[], None),
        bad("GET", "/v2/calendar", &[("date_type", "trading")], None),
        bad("GET", "/v2/calendar", &[("from", "2026-11-25")], None),
        bad("GET", "/v2/assets", &[("class", "us_equity")], None),
        bad(
            "POST",
            "/v2/orders",
            &[],
            Some(serde_json::json!({"type":"limit","time_in_force":"day","qty":7})),
        ),
        bad(
            "POST",
            "/v2/orders",
            &[],
            Some(serde_json::json!({"type":"stop_market","time_in_force":"day"})),
        ),
        bad(
            "POST",
            "/v2/orders",
            &[],
            Some(serde_json::json!({"type":"limit","qty":"7"})),
        ),
        bad("POST", "/v2/orders", &[], None),
        bad(
            "PATCH",
            "/v2/account/configurations",
            &[],
            Some(serde_json::json!({"suspend_trade":"true"})),
        ),
        bad(
            "GET",
            "/v2/clock",
            &[],
            Some(serde_json::json!({"suspend_trade":true})),
        ),
    ];
    for r in &cases {
        assert!(contract::check_request(r).is_err(), "{r:?}");
    }
    // The aggregate assertion lists every violation, not only the first.
    let message = std::panic::catch_unwind(|| contract::assert_all_conform(&cases))
        .expect_err("violations must fail the assertion");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains(&format!("{} of {}", cases.len(), cases.len())),
        "{message}"
    );
    assert!(
        message.contains("page_size") && message.contains("suspend_trade"),
        "{message}"
    );
    // A conforming request passes.
    assert_eq!(
        contract::check_request(&recorded(
            "GET",
            "/v2/orders",
            &[("status", "open"), ("limit", "500"), ("nested", "false")],
            None
        )),
        Ok(())
    );
}

#[test]
#[ignore = "needs ../shared/reference/alpaca/trading-api.json (or AVWAP_ALPACA_TRADING_SPEC); \
            the hard-coded contract test covers the same requests without it"]
fn every_request_conforms_to_the_official_spec() {
    let spec = contract::load_spec(Api::Trading);

    // 1. What the client sends, against the spec itself.
    let recorded = exercise_every_request();
    let errors: Vec<String> = recorded
        .iter()
        .filter_map(|r| contract::check_against_spec(&spec, r).err())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The walker itself catches violations.
    let mut bad = recorded
        .iter()
        .find(|r| r.method == "POST")
        .unwrap()
        .clone();
    bad.body.as_mut().unwrap()["qty"] = Value::from(7);
    assert!(contract::check_against_spec(&spec, &bad).is_err());
    bad.body.as_mut().unwrap()["qty"] = Value::from("7");
    bad.body.as_mut().unwrap()["type"] = Value::from("stop_market");
    assert!(contract::check_against_spec(&spec, &bad).is_err());
    bad.path = "/v2/orders/by_client_order_id/x".into();
    assert!(contract::check_against_spec(&spec, &bad).is_err());

    // 2. The hard-coded contract's Trading API operations agree with the spec (paths, methods,
    // names, kinds, enums, required parameters and fields).
    let errors = contract::disagreements_with_spec(&spec, contract::ops(Api::Trading));
    assert!(errors.is_empty(), "{errors:#?}");
    // … and that check catches disagreements.
    let wrong = [
        contract::Op {
            query: &[
                ("status", Kind::Enum(&["open", "working"])),
                ("limit", Kind::Bool),
                ("page_size", Kind::Int),
            ],
            ..*contract::op("list orders")
        },
        contract::Op {
            required_query: &[],
            ..*contract::op("order by client order id")
        },
        contract::Op {
            body: &[
                ("type", Kind::Enum(&["market", "limit"])),
                ("time_in_force", Kind::Str),
                ("qty", Kind::Int),
                ("notional_usd", Kind::DecimalStr),
            ],
            required_body: &["type"],
            ..*contract::op("submit order")
        },
        contract::Op {
            path: "/v2/orders/{order_id}/legs",
            ..*contract::op("cancel order")
        },
    ];
    let errors = contract::disagreements_with_spec(&spec, &wrong);
    for expected in [
        "query status: enum",
        "query limit: Bool",
        "query page_size not in the spec",
        "requires query client_order_id",
        "body type: enum",
        "body qty: Int",
        "body field notional_usd not in the spec",
        "requires body field time_in_force",
        "/legs (cancel order): not in the spec",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{expected:?} not caught: {errors:#?}"
        );
    }
}
