//! The cycle deadline and the concurrent reads of the Alpaca client (issue 13, part 4) against
//! the loopback fake (`tests/alpaca/fake_alpaca`), slowed down (`set_answer_delay`) or hung
//! (`set_stalled`):
//!
//! - `read_cycle` runs account, positions, open orders and the market snapshot concurrently:
//!   its wall time is about the slowest single read, not their sum.
//! - Against a hung server it returns at the deadline, every read a `RetryableRead`.
//! - A POST the deadline stops before it is sent is `NotSent` (nothing reached the server); one
//!   already sent is `UnknownOutcome` and is found again by its client order id.
//! - Rate-limit pauses, `Retry-After`, limiter spacing and retry backoffs are cut at the
//!   deadline: the call fails at once instead of sleeping into or past it.
//! - The broker and the data feed of one process (one access, `open_alpaca`) are siblings:
//!   one request budget, one deadline.

use super::fake_alpaca;

use avwap::alpaca::client::{Api, Request};
use avwap::alpaca::intraday::{AlpacaIntradayFeed, IntradayOptions};
use avwap::alpaca::{
    read_cycle, AlpacaBroker, AlpacaClient, AlpacaError, ClientConfig, CycleReads, Endpoints,
};
use avwap::broker::{Broker, BrokerError, OrderRequest, OrderType, Side, TimeInForce};
use avwap::config::{Config, Mode};
use avwap::credentials::{AlpacaCredentials, CredentialStore};
use avwap::market_data::intraday::IntradayFeed;
use chrono::{DateTime, Utc};
use fake_alpaca::{FakeAlpaca, FakeBar, Fault, KEY_ID, SECRET};
use rust_decimal::Decimal;
use std::time::{Duration, Instant};

/// How late after its deadline a bounded call may return (scheduling, tearing down sockets).
/// The brief allows 0.5 s; the client needs a few milliseconds.
const EPSILON: Duration = Duration::from_millis(500);

fn store() -> CredentialStore {
    CredentialStore::new(None, |k| match k {
        "APCA_API_KEY_ID" => Some(KEY_ID.to_string()),
        "APCA_API_SECRET_KEY" => Some(SECRET.to_string()),
        _ => None,
    })
}

fn credentials() -> AlpacaCredentials {
    store().alpaca().unwrap()
}

/// Production timeouts and backoffs (5 s connect, 15 s request, 500 ms…8 s backoff, 3
/// retries): only the deadline may keep a call short.
fn production_config(fake: &FakeAlpaca) -> ClientConfig {
    let mut config = ClientConfig::new(Endpoints::single(&fake.url()));
    config.requests_per_minute = 600_000;
    config
}

/// A broker and a feed of one client family.
fn venue(config: ClientConfig) -> (AlpacaBroker, AlpacaIntradayFeed) {
    let client = AlpacaClient::new(&credentials(), config).unwrap();
    let feed = AlpacaIntradayFeed::new(client.sibling(), IntradayOptions::default());
    (AlpacaBroker::new(client, "alpaca-paper"), feed)
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// 2026-12-01 (open 14:30Z): five 10-minute bars from 14:30Z; "now" is 15:25Z.
const NOW: &str = "2026-12-01T15:25:00Z";

fn symbols() -> Vec<String> {
    ["ACME", "BOLT", "CRUX"].map(String::from).to_vec()
}

/// Positions, an open order, bars and latest trades.
fn seed(fake: &FakeAlpaca) {
    fake.set_position("ACME", dec("10"), dec("50"));
    for (k, symbol) in symbols().iter().enumerate() {
        let base = 20.0 + 10.0 * k as f64;
        let bars = (0..5)
            .map(|i| {
                let c = base + i as f64 * 0.1;
                FakeBar {
                    t: t("2026-12-01T14:30:00Z") + chrono::Duration::minutes(10 * i),
                    o: c,
                    h: c + 0.2,
                    l: c - 0.2,
                    c,
                    v: 1_000,
                }
            })
            .collect();
        fake.set_intraday_bars(symbol, bars);
        fake.set_latest_trade(symbol, t("2026-12-01T15:24:30Z"), base + 1.0, 100);
    }
}

fn buy(cid: &str) -> OrderRequest {
    OrderRequest {
        client_order_id: cid.into(),
        symbol: "ACME".into(),
        side: Side::Buy,
        qty: dec("1"),
        order_type: OrderType::Limit,
        limit_price: Some(dec("50.10")),
        stop_price: None,
        time_in_force: TimeInForce::Day,
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[test]
fn read_cycle_runs_the_reads_concurrently() {
    let fake = FakeAlpaca::start();
    seed(&fake);
    let (mut broker, feed) = venue(production_config(&fake));
    broker.submit(&buy("avw-20261201-ACME-en-1")).unwrap();
    let now = t(NOW);
    fake.set_answer_delay(Duration::from_millis(300));

    // Each read alone (the snapshot is one bars and one trades request, themselves concurrent).
    let (account, t_account) = timed(|| broker.account().unwrap());
    let (positions, t_positions) = timed(|| broker.positions().unwrap());
    let (orders, t_orders) = timed(|| broker.open_orders().unwrap());
    let (market, t_market) = timed(|| feed.snapshot(&symbols(), now, 3));
    let slowest = t_account.max(t_positions).max(t_orders).max(t_market);
    let sum = t_account + t_positions + t_orders + t_market;

    let deadline = Instant::now() + Duration::from_secs(10);
    let (reads, wall): (CycleReads, Duration) =
        timed(|| read_cycle(&broker, &feed, &symbols(), now, 3, deadline));
    println!(
        "answer delay 300 ms: account {:.0} ms, positions {:.0} ms, open orders {:.0} ms, \
         snapshot {:.0} ms (sequential sum {:.0} ms); read_cycle {:.0} ms = {:.2} x the slowest",
        ms(t_account),
        ms(t_positions),
        ms(t_orders),
        ms(t_market),
        ms(sum),
        ms(wall),
        wall.as_secs_f64() / slowest.as_secs_f64()
    );
    // The same results as the reads one by one.
    assert_eq!(reads.account.unwrap(), account);
    assert_eq!(reads.positions.unwrap(), positions);
    assert_eq!(reads.open_orders.unwrap(), orders);
    assert_eq!(reads.market, market);
    assert!(reads.market_complete);
    assert_eq!(market.last_bars("BOLT").len(), 3);
    assert_eq!(market.latest_price("CRUX"), Some(41.0));
    // Sequential would be about the sum (4 × ≥ 300 ms); concurrent is about one read. The
    // reference is measured in this test on this machine, so a slow machine slows both; the
    // margin (≥ 150 ms on a ≥ 300 ms read) absorbs thread start-up and scheduling noise.
    assert!(
        wall < slowest.mul_f64(1.5),
        "read_cycle took {wall:?}, the slowest single read {slowest:?}"
    );
}

#[test]
fn read_cycle_returns_at_the_deadline_from_a_hung_server() {
    let fake = FakeAlpaca::start();
    seed(&fake);
    let (broker, feed) = venue(production_config(&fake));
    fake.set_stalled(true);
    let budget = Duration::from_secs(2);
    let deadline = Instant::now() + budget;
    let (reads, wall) = timed(|| read_cycle(&broker, &feed, &symbols(), t(NOW), 3, deadline));
    println!(
        "hung server, deadline {:.0} ms: read_cycle returned after {:.0} ms",
        ms(budget),
        ms(wall)
    );
    assert!(wall <= budget + EPSILON, "took {wall:?}");
    for (name, error) in [
        ("account", reads.account.err()),
        ("positions", reads.positions.err()),
        ("open orders", reads.open_orders.err()),
    ] {
        match error {
            Some(BrokerError::RetryableRead { message }) => {
                assert!(message.contains("deadline"), "{name}: {message}");
                assert!(!message.contains(SECRET), "{name}: {message}");
            }
            other => panic!("{name}: expected RetryableRead, got {other:?}"),
        }
    }
    assert!(!reads.market_complete);
    assert!(reads.market.bars.is_empty() && reads.market.latest.is_empty());
    // Every read reached the server once (nothing was retried into the deadline).
    assert_eq!(fake.count("GET", "/v2/account"), 1);
    assert_eq!(fake.count("GET", "/v2/stocks/bars"), 1);
}

#[test]
fn the_feed_alone_is_bounded_too() {
    let fake = FakeAlpaca::start();
    seed(&fake);
    let (_, feed) = venue(production_config(&fake));
    // In time: the whole snapshot, complete.
    let (full, complete) = feed.snapshot_until(
        &symbols(),
        t(NOW),
        3,
        Instant::now() + Duration::from_secs(5),
    );
    assert!(complete);
    assert_eq!(full.last_bars("ACME").len(), 3);
    // Bars refused (a 403 is not retried), trades arrive: fail-soft as before, but reported.
    fake.inject("GET", "/v2/stocks/bars", Fault::Status(403), 1);
    let (partial, complete) = feed.snapshot_until(
        &symbols(),
        t(NOW),
        3,
        Instant::now() + Duration::from_secs(5),
    );
    assert!(!complete);
    assert!(partial.bars.is_empty());
    assert_eq!(partial.latest_price("ACME"), Some(21.0));
    // Hung: back by the deadline with nothing.
    fake.set_stalled(true);
    let budget = Duration::from_millis(800);
    let ((empty, complete), wall) =
        timed(|| feed.snapshot_until(&symbols(), t(NOW), 3, Instant::now() + budget));
    println!(
        "hung server, feed deadline 800 ms: returned after {:.0} ms",
        ms(wall)
    );
    assert!(wall <= budget + EPSILON, "took {wall:?}");
    assert!(!complete);
    assert!(empty.bars.is_empty() && empty.latest.is_empty());
}

#[test]
fn the_family_deadline_bounds_the_synchronous_broker_calls() {
    let fake = FakeAlpaca::start();
    let (mut broker, feed) = venue(production_config(&fake));
    fake.set_stalled(true);
    let budget = Duration::from_millis(700);
    {
        // Set through the broker's client; the feed is a sibling: bound as well.
        let _cycle = broker.client().deadline_until(Instant::now() + budget);
        assert_eq!(feed.client.deadline(), broker.client().deadline());
        let (result, wall) = timed(|| broker.positions());
        assert!(wall <= budget + EPSILON, "took {wall:?}");
        match result {
            Err(BrokerError::RetryableRead { message }) => {
                assert!(message.contains("deadline"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        let (prices, wall) = timed(|| feed.latest_price("ACME", t(NOW)));
        assert!(prices.is_none());
        assert!(wall <= budget + EPSILON, "took {wall:?}");
    }
    // The guard is gone: no deadline any more.
    assert_eq!(broker.client().deadline(), None);
    assert_eq!(feed.client.deadline(), None);
    // A nested guard only tightens; dropping it restores the outer deadline.
    let outer = Instant::now() + Duration::from_secs(60);
    let _outer = broker.client().deadline_until(outer);
    {
        let _later = feed.client.deadline_until(outer + Duration::from_secs(60));
        assert_eq!(broker.client().deadline(), Some(outer));
        let inner = Instant::now() + Duration::from_secs(1);
        let _inner = feed.client.deadline_until(inner);
        assert_eq!(broker.client().deadline(), Some(inner));
    }
    assert_eq!(broker.client().deadline(), Some(outer));
}

#[test]
fn a_post_stopped_before_it_is_sent_is_not_sent() {
    let fake = FakeAlpaca::start();
    let (mut broker, _) = venue(production_config(&fake));
    // The account's quota is exhausted for the next few seconds: the limiter is paused.
    fake.inject(
        "GET",
        "/v2/account",
        Fault::QuotaExhausted { reset_in_secs: 5 },
        1,
    );
    broker.account().unwrap();
    let budget = Duration::from_millis(800);
    let (result, wall) = {
        let _cycle = broker.client().deadline_until(Instant::now() + budget);
        timed(|| broker.submit(&buy("avw-20261201-ACME-en-1")))
    };
    println!(
        "limiter paused ~5 s, deadline 800 ms: submit refused after {:.0} ms",
        ms(wall)
    );
    // Refused at once: the token would only come after the deadline.
    assert!(wall < budget, "took {wall:?}");
    match result {
        Err(BrokerError::NotSent { message }) => {
            assert!(message.contains("POST /v2/orders"), "{message}");
            assert!(message.contains("nothing was changed"), "{message}");
        }
        other => panic!("expected NotSent, got {other:?}"),
    }
    assert_eq!(
        fake.count("POST", "/v2/orders"),
        0,
        "nothing reached Alpaca"
    );
    assert!(fake.orders().is_empty());

    // A deadline already past: not sent either (and no token is spent waiting).
    let fresh = FakeAlpaca::start();
    let (mut broker, _) = venue(production_config(&fresh));
    broker.client().set_deadline(Some(Instant::now()));
    assert!(matches!(
        broker.submit(&buy("avw-20261201-ACME-en-2")),
        Err(BrokerError::NotSent { .. })
    ));
    let cancel = Request {
        api: Api::Trading,
        method: reqwest::Method::DELETE,
        path: "/v2/orders/00000000-0000-4000-8000-000000000001",
        query: Vec::new(),
        body: None,
    };
    assert!(matches!(
        broker.client().execute(&cancel),
        Err(AlpacaError::NotSent { .. })
    ));
    assert!(fresh.requests().is_empty());
}

#[test]
fn a_post_sent_before_the_deadline_is_an_unknown_outcome_looked_up_later() {
    let fake = FakeAlpaca::start();
    let (mut broker, _) = venue(production_config(&fake));
    // The order is placed, then the answer never comes (within the client's 15 s timeout).
    fake.inject(
        "POST",
        "/v2/orders",
        Fault::TimeoutAfterAccept(Duration::from_secs(5)),
        1,
    );
    let budget = Duration::from_millis(800);
    let cid = "avw-20261201-ACME-en-1";
    let (result, wall) = {
        let _cycle = broker.client().deadline_until(Instant::now() + budget);
        timed(|| broker.submit(&buy(cid)))
    };
    println!(
        "POST placed but unanswered, deadline 800 ms: UnknownOutcome after {:.0} ms",
        ms(wall)
    );
    assert!(wall <= budget + EPSILON, "took {wall:?}");
    match result {
        Err(BrokerError::UnknownOutcome { message }) => {
            assert!(message.contains("deadline"), "{message}")
        }
        other => panic!("expected UnknownOutcome, got {other:?}"),
    }
    assert_eq!(
        fake.count("POST", "/v2/orders"),
        1,
        "sent once, never resent"
    );
    // Outside the deadline the order desk finds it by its client order id.
    let found = broker.order_by_client_id(cid).unwrap().expect("placed");
    assert_eq!(found.client_order_id, cid);
    assert_eq!(fake.count("POST", "/v2/orders"), 1);

    // The same against a hung server (the request reached it, nothing was processed): still
    // unknown to the client, which cannot tell the two apart.
    fake.set_stalled(true);
    let (result, wall) = {
        let _cycle = broker.client().deadline_until(Instant::now() + budget);
        timed(|| broker.submit(&buy("avw-20261201-ACME-en-2")))
    };
    assert!(wall <= budget + EPSILON, "took {wall:?}");
    assert!(
        matches!(result, Err(BrokerError::UnknownOutcome { .. })),
        "{result:?}"
    );
    assert_eq!(fake.count("POST", "/v2/orders"), 2);
}

#[test]
fn rate_limit_waits_and_backoffs_never_run_past_the_deadline() {
    let fake = FakeAlpaca::start();
    let budget = Duration::from_millis(1000);

    // 429 with Retry-After 5 s: the read gives up at once instead of sleeping past the
    // deadline (without one it would wait the 5 s and succeed, see alpaca_client.rs).
    let (mut broker, _) = venue(production_config(&fake));
    fake.inject(
        "GET",
        "/v2/positions",
        Fault::TooManyRequests {
            retry_after_secs: 5,
        },
        1,
    );
    let (result, wall) = {
        let _cycle = broker.client().deadline_until(Instant::now() + budget);
        timed(|| broker.positions())
    };
    println!(
        "429 Retry-After 5 s, deadline 1 s: gave up after {:.0} ms",
        ms(wall)
    );
    assert!(wall < budget, "took {wall:?}");
    assert!(
        matches!(&result, Err(BrokerError::RetryableRead { message }) if message.contains("rate limiter")),
        "{result:?}"
    );
    assert_eq!(fake.count("GET", "/v2/positions"), 1);

    // 503 with a 2 s backoff: no retry is slept into the deadline.
    let mut config = production_config(&fake);
    config.backoff_base = Duration::from_secs(2);
    let (mut broker, _) = venue(config);
    fake.inject("GET", "/v2/clock", Fault::Status(503), 1);
    let (result, wall) = {
        let _cycle = broker.client().deadline_until(Instant::now() + budget);
        timed(|| broker.clock())
    };
    println!(
        "503 with a 2 s backoff, deadline 1 s: gave up after {:.0} ms",
        ms(wall)
    );
    assert!(wall < budget, "took {wall:?}");
    assert!(
        matches!(&result, Err(BrokerError::RetryableRead { message }) if message.contains("backoff")),
        "{result:?}"
    );
    assert_eq!(fake.count("GET", "/v2/clock"), 1);

    // The limiter's spacing (10 a second after a burst of 60): requests go while their token
    // comes before the deadline; the first whose token would come later is refused unsent at
    // once (or, had its token come just before the deadline, cut at the deadline itself).
    let mut config = production_config(&fake);
    config.requests_per_minute = 600;
    let (mut broker, _) = venue(config);
    for _ in 0..60 {
        broker.clock().unwrap();
    }
    let before = fake.count("GET", "/v2/clock");
    let budget = Duration::from_millis(350);
    let started = Instant::now();
    let _cycle = broker.client().deadline_until(started + budget);
    let error = loop {
        if let Err(e) = broker.clock() {
            break e;
        }
    };
    let wall = started.elapsed();
    let spaced = fake.count("GET", "/v2/clock") - before;
    println!(
        "limiter 10/s, deadline 350 ms: {spaced} more request(s), refused after {:.0} ms",
        ms(wall)
    );
    assert!(wall <= budget + EPSILON, "took {wall:?}");
    assert!(
        spaced >= 1,
        "the limiter let nothing through before the deadline"
    );
    assert!(
        matches!(&error, BrokerError::RetryableRead { message } if message.contains("deadline")),
        "{error:?}"
    );
}

#[test]
fn the_broker_and_the_feed_of_one_access_share_the_request_budget() {
    let fake = FakeAlpaca::start();
    let mut config = Config {
        mode: Mode::AlpacaPaper,
        ..Config::default()
    };
    config.alpaca.trading_url = fake.url();
    config.alpaca.data_url = fake.url();
    // 60 a minute: a burst of 6, then one a second.
    config.alpaca.requests_per_minute = 60;
    let (mut broker, feed) = avwap::execution::venue::open_alpaca(&config, &store()).unwrap();
    assert!(broker.client().is_sibling_of(&feed.client));
    // The account check at opening took one token; the broker takes the other five.
    for _ in 0..5 {
        broker.clock().unwrap();
    }
    // The feed has no token left within the next 300 ms: the broker spent the budget (the
    // next token comes a second after the burst began).
    let (snapshot, complete) = feed.snapshot_until(
        &symbols(),
        t(NOW),
        3,
        Instant::now() + Duration::from_millis(300),
    );
    assert!(!complete);
    assert!(snapshot.latest.is_empty());
    assert_eq!(fake.count("GET", "/v2/stocks/trades/latest"), 0);
    // Counted apart: the service reports broker + feed requests without double counting.
    assert_eq!(broker.requests_sent(), 6);
    assert_eq!(feed.client.requests_sent(), 0);

    // Control: a client of another family (another process, say) has its own budget.
    let mut other = ClientConfig::new(Endpoints::single(&fake.url()));
    other.requests_per_minute = 60;
    let (_, stranger) = venue(other);
    let (_, complete) = stranger.snapshot_until(
        &symbols(),
        t(NOW),
        3,
        Instant::now() + Duration::from_millis(500),
    );
    assert!(complete);
}
