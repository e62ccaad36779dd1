//! The Alpaca intraday feed against the fake Market Data API (`tests/alpaca/fake_alpaca`,
//! `GET /v2/stocks/bars?timeframe=10Min`, `GET /v2/stocks/trades/latest`): the forming bar is
//! excluded, one request per symbol batch, latest price from trades with the bar-close
//! fallback, failures yield an empty snapshot, and request parameter names match the spec.
//!
//! Conformance: every request is checked against the shared contract
//! (`tests/alpaca/fake_alpaca/contract.rs`, copied from the official spec `market-data-api.json`:
//! `/v2/stocks/bars` with `timeframe=10Min` and `/v2/stocks/trades/latest`, with the
//! `stock_historical_feed` and `stock_latest_feed` enums); the contract is checked against the
//! spec JSON by the `#[ignore]`d walker of `tests/alpaca/market_data.rs`.

use super::fake_alpaca;

use avwap::alpaca::intraday::{AlpacaIntradayFeed, IntradayOptions, LATEST_TRADES_PATH};
use avwap::alpaca::market_data::{Feed, BARS_PATH};
use avwap::alpaca::{AlpacaClient, ClientConfig, Endpoints};
use avwap::credentials::{AlpacaCredentials, CredentialStore};
use avwap::market_data::intraday::IntradayFeed;
use chrono::{DateTime, Duration, Utc};
use fake_alpaca::contract;
use fake_alpaca::{FakeAlpaca, FakeBar, Fault, Recorded, KEY_ID, SECRET};

fn credentials() -> AlpacaCredentials {
    CredentialStore::new(None, |k| match k {
        "APCA_API_KEY_ID" => Some(KEY_ID.to_string()),
        "APCA_API_SECRET_KEY" => Some(SECRET.to_string()),
        _ => None,
    })
    .alpaca()
    .unwrap()
}

fn client(fake: &FakeAlpaca) -> AlpacaClient {
    let mut config = ClientConfig::new(Endpoints::single(&fake.url()));
    config.connect_timeout = Duration::milliseconds(500).to_std().unwrap();
    config.timeout = std::time::Duration::from_secs(10);
    config.requests_per_minute = 600_000;
    config.backoff_base = std::time::Duration::from_millis(10);
    config.max_backoff = std::time::Duration::from_millis(40);
    config.max_get_retries = 3;
    AlpacaClient::new(&credentials(), config).unwrap()
}

fn feed(fake: &FakeAlpaca) -> AlpacaIntradayFeed {
    AlpacaIntradayFeed::new(client(fake), IntradayOptions::default())
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// 10-minute bars starting at `first`, closes `base`, `base + 0.1`, …
fn bars(first: &str, count: usize, base: f64) -> Vec<FakeBar> {
    (0..count)
        .map(|i| {
            let c = base + i as f64 * 0.1;
            FakeBar {
                t: t(first) + Duration::minutes(10 * i as i64),
                o: c - 0.05,
                h: c + 0.2,
                l: c - 0.2,
                c,
                v: 1_000 + i as u64,
            }
        })
        .collect()
}

/// Monday 2026-11-30 (open 14:30Z, close 21:00Z) fully, then Tuesday 2026-12-01 from a
/// pre-market bar at 14:20Z to the bar starting 15:00Z (forming at 15:05Z).
fn seed(fake: &FakeAlpaca, symbol: &str, base: f64) {
    let mut list = bars("2026-11-30T14:30:00Z", 39, base - 10.0);
    list.extend(bars("2026-12-01T14:20:00Z", 5, base - 0.1));
    fake.set_intraday_bars(symbol, list);
}

fn by_path(fake: &FakeAlpaca, path: &str) -> Vec<Recorded> {
    fake.requests()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

fn param<'a>(r: &'a Recorded, name: &str) -> Option<&'a str> {
    r.query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The shared contract (`tests/alpaca/fake_alpaca/contract.rs`), and the request is the operation
/// called `name` (`10-minute bars` or `latest trades`).
fn check(r: &Recorded, name: &str) {
    let op = contract::find_op(&r.method, &r.path, &r.query).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(op.name, name, "{r:?}");
    contract::check_request(r).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn snapshot_excludes_the_forming_bar_and_reads_the_latest_trade() {
    let fake = FakeAlpaca::start();
    seed(&fake, "ACME", 50.0);
    let now = t("2026-12-01T15:05:00Z");
    fake.set_latest_trade("ACME", t("2026-12-01T15:04:59Z"), 50.37, 100);
    let snapshot = feed(&fake).snapshot(&["ACME".to_string()], now, 3);
    let got = snapshot.last_bars("ACME");
    // 14:20 is pre-market, 15:00 is forming: 14:30, 14:40, 14:50 remain.
    let starts: Vec<_> = got.iter().map(|b| b.start).collect();
    assert_eq!(
        starts,
        [
            t("2026-12-01T14:30:00Z"),
            t("2026-12-01T14:40:00Z"),
            t("2026-12-01T14:50:00Z")
        ]
    );
    assert!(got.iter().all(|b| b.end == b.start + Duration::minutes(10)));
    assert!(got.iter().all(|b| b.end <= now));
    assert_eq!(snapshot.latest_price("ACME"), Some(50.37));

    let bars_requests = by_path(&fake, BARS_PATH);
    assert_eq!(bars_requests.len(), 1);
    let r = &bars_requests[0];
    assert_eq!(param(r, "timeframe"), Some("10Min"));
    assert_eq!(param(r, "start"), Some("2026-12-01T14:30:00Z"));
    assert_eq!(param(r, "end"), Some("2026-12-01T15:05:00Z"));
    assert_eq!(param(r, "feed"), Some("iex"));
    assert_eq!(by_path(&fake, LATEST_TRADES_PATH).len(), 1);
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn snapshot_reaches_back_to_the_previous_session_for_n_bars() {
    let fake = FakeAlpaca::start();
    seed(&fake, "ACME", 50.0);
    let now = t("2026-12-01T15:05:00Z");
    let snapshot = feed(&fake).snapshot(&["ACME".to_string()], now, 5);
    let got = snapshot.last_bars("ACME");
    assert_eq!(got.len(), 5);
    assert_eq!(got[0].start, t("2026-11-30T20:40:00Z"));
    assert_eq!(got[1].end, t("2026-11-30T21:00:00Z"));
    assert_eq!(got[4].start, t("2026-12-01T14:50:00Z"));
    let r = &by_path(&fake, BARS_PATH)[0];
    assert_eq!(param(r, "start"), Some("2026-11-30T14:30:00Z"));
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn thirty_symbols_take_one_bars_and_one_trades_request() {
    let fake = FakeAlpaca::start();
    let symbols: Vec<String> = (0..30).map(|i| format!("S{i:03}")).collect();
    for (i, s) in symbols.iter().enumerate() {
        seed(&fake, s, 20.0 + i as f64);
        fake.set_latest_trade(s, t("2026-12-01T15:04:00Z"), 100.0 + i as f64, 10);
    }
    let snapshot = feed(&fake).snapshot(&symbols, t("2026-12-01T15:05:00Z"), 3);
    assert_eq!(by_path(&fake, BARS_PATH).len(), 1);
    assert_eq!(by_path(&fake, LATEST_TRADES_PATH).len(), 1);
    for (i, s) in symbols.iter().enumerate() {
        assert_eq!(snapshot.last_bars(s).len(), 3, "{s}");
        assert_eq!(snapshot.latest_price(s), Some(100.0 + i as f64));
    }
    contract::assert_all_conform(&fake.requests());

    // A small URL budget: one request of each kind per batch.
    let fake = FakeAlpaca::start();
    for s in &symbols {
        seed(&fake, s, 30.0);
    }
    let options = IntradayOptions {
        max_symbols_chars: 40,
        ..IntradayOptions::default()
    };
    let small = AlpacaIntradayFeed::new(client(&fake), options);
    let snapshot = small.snapshot(&symbols, t("2026-12-01T15:05:00Z"), 3);
    // 4 chars + "%2C" per symbol: 6 symbols fit in 40 characters, so 5 batches.
    assert_eq!(by_path(&fake, BARS_PATH).len(), 5);
    assert_eq!(by_path(&fake, LATEST_TRADES_PATH).len(), 5);
    assert!(symbols.iter().all(|s| snapshot.last_bars(s).len() == 3));
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn latest_price_falls_back_to_the_last_closed_bar_close() {
    let fake = FakeAlpaca::start();
    for s in ["NOTR", "OLD", "LATE"] {
        seed(&fake, s, 50.0);
    }
    // OLD: a trade older than the last closed bar; LATE: a trade after `now`.
    fake.set_latest_trade("OLD", t("2026-11-30T20:59:00Z"), 40.0, 1);
    fake.set_latest_trade("LATE", t("2026-12-01T15:06:00Z"), 60.0, 1);
    let symbols: Vec<String> = ["NOTR", "OLD", "LATE", "NONE"].map(String::from).into();
    let now = t("2026-12-01T15:05:00Z");
    let snapshot = feed(&fake).snapshot(&symbols, now, 2);
    // The bar starting 14:50 is the third of today's run (base - 0.1 + 3 × 0.1).
    let close = snapshot.last_bars("NOTR").last().unwrap().close;
    assert!((close - 50.2).abs() < 1e-9, "{close}");
    for s in ["NOTR", "OLD", "LATE"] {
        assert_eq!(snapshot.latest_price(s), Some(close), "{s}");
    }
    assert_eq!(snapshot.latest_price("NONE"), None);
    assert!(snapshot.last_bars("NONE").is_empty());
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn a_5xx_yields_an_empty_snapshot_not_an_error() {
    let fake = FakeAlpaca::start();
    seed(&fake, "ACME", 50.0);
    fake.set_latest_trade("ACME", t("2026-12-01T15:04:00Z"), 50.5, 1);
    fake.inject("GET", "/v2/stocks/", Fault::Status(503), 1_000);
    let feed = feed(&fake);
    let now = t("2026-12-01T15:05:00Z");
    let snapshot = feed.snapshot(&["ACME".to_string()], now, 3);
    assert!(snapshot.last_bars("ACME").is_empty());
    assert_eq!(snapshot.latest_price("ACME"), None);
    assert!(snapshot.bars.is_empty() && snapshot.latest.is_empty());
    assert!(feed.last_closed_bars("ACME", now, 3).is_empty());
    assert!(feed
        .bars_between("ACME", t("2026-12-01T14:00:00Z"), now)
        .is_empty());
    contract::assert_all_conform(&fake.requests());

    // Bars failing alone: the trade still prices the symbol.
    let fake = FakeAlpaca::start();
    seed(&fake, "ACME", 50.0);
    fake.set_latest_trade("ACME", t("2026-12-01T15:04:00Z"), 50.5, 1);
    fake.inject("GET", BARS_PATH, Fault::Status(500), 1_000);
    let snapshot = self::feed(&fake).snapshot(&["ACME".to_string()], now, 3);
    assert!(snapshot.last_bars("ACME").is_empty());
    assert_eq!(snapshot.latest_price("ACME"), Some(50.5));
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn single_symbol_reads_use_the_same_request_path() {
    let fake = FakeAlpaca::start();
    seed(&fake, "ACME", 50.0);
    let feed = feed(&fake);
    let now = t("2026-12-01T15:05:00Z");
    let between = feed.bars_between("ACME", t("2026-12-01T14:40:00Z"), now);
    let ends: Vec<_> = between.iter().map(|b| b.end).collect();
    // (after, up_to]: the bar ending 14:40 is out, the forming bar is out.
    assert_eq!(ends, [t("2026-12-01T14:50:00Z"), t("2026-12-01T15:00:00Z")]);
    let last = feed.last_closed_bars("ACME", now, 4);
    assert_eq!(last.len(), 4);
    assert_eq!(last[0].end, t("2026-11-30T21:00:00Z"));
    assert_eq!(last[3].end, t("2026-12-01T15:00:00Z"));
    assert_eq!(feed.latest_price("ACME", now), Some(last[3].close));
    assert!(by_path(&fake, BARS_PATH)
        .iter()
        .all(|r| param(r, "timeframe") == Some("10Min")));
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn request_parameter_names_match_the_spec() {
    let fake = FakeAlpaca::start();
    seed(&fake, "ACME", 50.0);
    let options = IntradayOptions {
        feed: Feed::Sip,
        page_limit: 2,
        ..IntradayOptions::default()
    };
    let feed = AlpacaIntradayFeed::new(client(&fake), options);
    let now = t("2026-12-01T15:05:00Z");
    // Paging with limit=2 over 5 bars.
    let snapshot = feed.snapshot(&["ACME".to_string()], now, 5);
    assert_eq!(snapshot.last_bars("ACME").len(), 5);
    let requests = fake.requests();
    assert!(requests.len() >= 3);
    for r in &requests {
        match r.path.as_str() {
            BARS_PATH => {
                check(r, "10-minute bars");
                for name in ["symbols", "timeframe", "start", "end"] {
                    assert!(param(r, name).is_some(), "{name} missing");
                }
                for name in ["start", "end"] {
                    let v = param(r, name).unwrap();
                    assert!(v.ends_with('Z') && DateTime::parse_from_rfc3339(v).is_ok());
                }
                assert_eq!(param(r, "feed"), Some("sip"));
            }
            LATEST_TRADES_PATH => {
                check(r, "latest trades");
                assert_eq!(param(r, "symbols"), Some("ACME"));
                assert_eq!(param(r, "feed"), Some("sip"));
            }
            other => panic!("unexpected request to {other}"),
        }
    }
    assert!(by_path(&fake, BARS_PATH)
        .iter()
        .any(|r| param(r, "page_token").is_some()));
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn the_contract_check_catches_violations() {
    let bars = |query: &[(&str, &str)]| Recorded {
        method: "GET".into(),
        path: BARS_PATH.into(),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: None,
        headers: vec![],
    };
    let base = [
        ("symbols", "ACME"),
        ("timeframe", "10Min"),
        ("start", "2026-12-01T14:30:00Z"),
        ("end", "2026-12-01T15:05:00Z"),
    ];
    let ok = bars(&base);
    check(&ok, "10-minute bars");
    let mut trades = bars(&[("symbols", "ACME"), ("feed", "iex")]);
    trades.path = LATEST_TRADES_PATH.into();
    check(&trades, "latest trades");
    let with = |extra: (&'static str, &'static str)| {
        let mut q = base.to_vec();
        q.push(extra);
        bars(&q)
    };
    let mut cases = vec![
        with(("feed", "delayed_sip")), // a latest-feed value, not a historical one
        with(("limit", "0")),
        with(("page", "2")),
        bars(&base[..3]),                                          // no end
        bars(&[base[0], ("timeframe", "5Min"), base[2], base[3]]), // none of ours
        bars(&[base[0], base[1], ("start", "2026-12-01"), base[3]]),
    ];
    for query in [
        vec![("feed", "iex")],
        vec![("symbols", "ACME"), ("feed", "IEX")],
        vec![("symbols", ""), ("feed", "iex")],
        vec![("symbols", "ACME"), ("limit", "5")],
    ] {
        let mut r = bars(&query);
        r.path = LATEST_TRADES_PATH.into();
        cases.push(r);
    }
    for r in &cases {
        assert!(contract::check_request(r).is_err(), "{r:?}");
    }
    assert_eq!(contract::violations(&cases).len(), cases.len());
}
