//! Alpaca daily bars and the bar-store top-up against the fake Market Data API
//! (`tests/alpaca/fake_alpaca`, `GET /v2/stocks/bars`): pagination, symbol batches by URL length,
//! New York session dates across EST/EDT, the IEX warning, request conformance, incremental
//! top-up and GET retries.
//!
//! Conformance: every recorded bars request is checked against the shared contract
//! (`tests/alpaca/fake_alpaca/contract.rs`: the facts copied from the official spec
//! `market-data-api.json` — parameter names, `limit` 1..=10000, the `stock_historical_feed` and
//! `sort` enums, RFC 3339 UTC start/end, `timeframe=1Day` for daily bars), so `cargo test` needs
//! no files outside this repo. The `#[ignore]`d `bars_contract_agrees_with_the_official_spec`
//! checks the contract's Market Data operations (daily bars, 10-minute bars, latest trades)
//! against the spec JSON itself, and what the bars and intraday code sends against it too:
//! `cargo test --test alpaca -- --ignored bars_contract` where
//! `../shared/reference/alpaca/` exists (or point `AVWAP_ALPACA_MARKET_DATA_SPEC` at the file).
//!
//! The `#[ignore]`d `benchmark_cold_fill_and_one_session_top_up` reports requests and time for
//! 3,000 symbols × 2 years and a one-session top-up:
//! `cargo test --release --test alpaca -- --ignored --nocapture market_data::benchmark`.

use super::fake_alpaca;

use avwap::alpaca::market_data::{
    daily_bars, daily_bars_detailed, end_param, start_param, top_up, Adjustment, BarsOptions, Feed,
    BARS_PATH,
};
use avwap::alpaca::{AlpacaClient, AlpacaError, ClientConfig, Endpoints};
use avwap::calendar;
use avwap::credentials::{AlpacaCredentials, CredentialStore};
use avwap::market_data::intraday::IntradayFeed;
use avwap::market_data::{BarStore, DailyBar};
use chrono::{DateTime, NaiveDate, Utc};
use fake_alpaca::contract::{self, Api, Kind};
use fake_alpaca::{FakeAlpaca, FakeBar, Fault, Quirks, Recorded, KEY_ID, SECRET};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    config.connect_timeout = Duration::from_millis(500);
    config.timeout = Duration::from_secs(10);
    config.requests_per_minute = 600_000;
    config.backoff_base = Duration::from_millis(10);
    config.max_backoff = Duration::from_millis(40);
    config.max_get_retries = 3;
    AlpacaClient::new(&credentials(), config).unwrap()
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn sessions(start: &str, end: &str) -> Vec<NaiveDate> {
    calendar::sessions_between(d(start), d(end))
        .unwrap()
        .into_iter()
        .map(|s| s.date)
        .collect()
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

fn bars_requests(fake: &FakeAlpaca) -> Vec<Recorded> {
    fake.requests()
        .into_iter()
        .filter(|r| r.path == BARS_PATH)
        .collect()
}

fn param<'a>(r: &'a Recorded, name: &str) -> Option<&'a str> {
    r.query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The shared contract (`tests/alpaca/fake_alpaca/contract.rs`), and the request is its daily-bars
/// operation (`GET /v2/stocks/bars`, `timeframe=1Day`).
fn check_daily_bars(r: &Recorded) -> Result<(), String> {
    let op = contract::find_op(&r.method, &r.path, &r.query)?;
    if op.name != "daily bars" {
        return Err(format!(
            "{} {} is {}, not daily bars",
            r.method, r.path, op.name
        ));
    }
    contract::check_request(r)
}

#[test]
fn the_contract_check_catches_violations() {
    let mut r = Recorded {
        method: "GET".into(),
        path: BARS_PATH.into(),
        query: vec![
            ("symbols".into(), "AAPL".into()),
            ("timeframe".into(), "1Day".into()),
            ("start".into(), "2024-01-03T05:00:00Z".into()),
            ("end".into(), "2024-01-04T04:59:59Z".into()),
        ],
        body: None,
        headers: vec![],
    };
    assert_eq!(check_daily_bars(&r), Ok(()));
    for (name, value) in [
        ("feed", "SIP"),
        ("adjustments", "split"),
        ("limit", "10001"),
        ("limit", "0"),
        ("adjustment", "split,dividend"),
        ("sort", "newest"),
    ] {
        r.query.push((name.into(), value.into()));
        assert!(check_daily_bars(&r).is_err(), "{name}={value}");
        r.query.pop();
    }
    // Daily bars: timeframe 1Day (10Min is the intraday operation; others are none of ours),
    // explicit RFC 3339 UTC bounds, no empty symbol.
    for (index, name, value) in [
        (1, "timeframe", "1Hour"),
        (1, "timeframe", "1D"),
        (1, "timeframe", "10Min"),
        (2, "start", "2024-01-03"),
        (3, "end", "2024-01-04T04:59:59-05:00"),
        (0, "symbols", "AAPL,,MSFT"),
    ] {
        let saved = std::mem::replace(&mut r.query[index], (name.into(), value.into()));
        assert!(check_daily_bars(&r).is_err(), "{name}={value}");
        r.query[index] = saved;
    }
    for missing in 0..4 {
        let saved = r.query.remove(missing);
        assert!(check_daily_bars(&r).is_err(), "{} missing", saved.0);
        r.query.insert(missing, saved);
    }
    assert_eq!(check_daily_bars(&r), Ok(()));
    // The shared check alone refuses a timeframe that selects none of our operations.
    r.query[1].1 = "1Hour".into();
    assert!(contract::check_request(&r).is_err());
    r.query[1].1 = "1Day".into();
    r.method = "POST".into();
    assert!(check_daily_bars(&r).is_err());
    assert!(contract::check_request(&r).is_err());
}

#[test]
fn requests_conform_to_the_spec_with_default_options() {
    let fake = FakeAlpaca::start();
    let days = sessions("2024-01-02", "2024-03-28");
    fake.add_daily_bars(&names("A", 5), &days);
    let client = client(&fake);
    let opts = BarsOptions {
        page_limit: 100,
        ..BarsOptions::default()
    };
    let bars = daily_bars(
        &client,
        &names("A", 5),
        days[0],
        days[days.len() - 1],
        &opts,
    )
    .unwrap();
    assert_eq!(bars.len(), 5);
    let requests = bars_requests(&fake);
    assert!(requests.len() > 1);
    for r in &requests {
        check_daily_bars(r).unwrap_or_else(|e| panic!("{e}: {r:?}"));
        assert_eq!(param(r, "timeframe"), Some("1Day"));
        assert_eq!(param(r, "adjustment"), Some("split"));
        assert_eq!(param(r, "feed"), Some("sip"));
        assert_eq!(param(r, "sort"), Some("asc"));
        assert_eq!(param(r, "start"), Some("2024-01-02T05:00:00Z"));
        assert_eq!(param(r, "end"), Some("2024-03-29T03:59:59Z"));
    }
    // The production default page size is the spec maximum.
    let client2 = self::client(&fake);
    daily_bars(
        &client2,
        &names("A", 1),
        days[0],
        days[0],
        &BarsOptions::default(),
    )
    .unwrap();
    let last = bars_requests(&fake).pop().unwrap();
    check_daily_bars(&last).unwrap();
    assert_eq!(param(&last, "limit"), Some("10000"));
    // Other adjustments travel with their spec names.
    for (adj, text) in [
        (Adjustment::Raw, "raw"),
        (Adjustment::Dividend, "dividend"),
        (Adjustment::All, "all"),
    ] {
        let opts = BarsOptions {
            adjustment: adj,
            ..BarsOptions::default()
        };
        daily_bars(&client2, &names("A", 1), days[0], days[0], &opts).unwrap();
        let last = bars_requests(&fake).pop().unwrap();
        check_daily_bars(&last).unwrap();
        assert_eq!(param(&last, "adjustment"), Some(text));
    }
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn pagination_follows_next_page_token_across_pages() {
    let fake = FakeAlpaca::start();
    let days = sessions("2024-02-01", "2024-03-13"); // 29 sessions
    assert_eq!(days.len(), 29);
    let symbols = names("P", 3);
    fake.add_daily_bars(&symbols, &days);
    let client = client(&fake);
    let opts = BarsOptions {
        page_limit: 20,
        ..BarsOptions::default()
    };
    let result =
        daily_bars_detailed(&client, &symbols, days[0], days[days.len() - 1], &opts).unwrap();
    // 87 bars, 20 a page → 5 pages.
    assert_eq!(result.pages, 5);
    assert_eq!(result.batches, 1);
    assert_eq!(client.requests_sent(), 5);
    for s in &symbols {
        let got: Vec<NaiveDate> = result.bars[s].iter().map(|b| b.date).collect();
        assert_eq!(got, days, "{s}");
    }
    let requests = bars_requests(&fake);
    assert_eq!(param(&requests[0], "page_token"), None);
    for r in &requests[1..] {
        assert!(param(r, "page_token").is_some());
        check_daily_bars(r).unwrap();
    }
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn symbol_batches_keep_the_url_under_the_limit() {
    let fake = FakeAlpaca::start();
    let days = sessions("2024-05-01", "2024-05-03");
    let symbols = names("BATCH", 60); // 9 chars each
    fake.add_daily_bars(&symbols, &days);
    let client = client(&fake);
    let opts = BarsOptions {
        max_symbols_chars: 120,
        ..BarsOptions::default()
    };
    let result = daily_bars_detailed(&client, &symbols, days[0], days[2], &opts).unwrap();
    assert_eq!(result.bars.len(), 60);
    assert!(result.bars.values().all(|b| b.len() == 3));
    let requests = bars_requests(&fake);
    // 9 chars + 3 for each encoded comma: 10 symbols (117 chars) per batch.
    assert_eq!(requests.len(), 6);
    assert_eq!(result.batches, 6);
    let mut seen = Vec::new();
    for r in &requests {
        let list = param(r, "symbols").unwrap();
        let n = list.split(',').count();
        let encoded = list.len() + 2 * (n - 1); // ',' travels as %2C
        assert!(encoded <= 120, "{encoded}: {list}");
        seen.extend(list.split(',').map(str::to_string));
    }
    assert_eq!(seen, symbols);

    // The default budget puts 600 short symbols in one request.
    let many = names("Q", 600);
    fake.add_daily_bars(&many, &days[..1]);
    let before = client.requests_sent();
    let bars = daily_bars(&client, &many, days[0], days[0], &BarsOptions::default()).unwrap();
    assert_eq!(bars.len(), 600);
    assert_eq!(client.requests_sent() - before, 1);
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn est_and_edt_timestamps_map_to_new_york_session_dates() {
    let fake = FakeAlpaca::start();
    let bar = |ts: &str, c: f64| FakeBar {
        t: t(ts),
        o: c,
        h: c + 1.0,
        l: c - 1.0,
        c,
        v: 1000,
    };
    fake.set_bars(
        "TZ",
        vec![
            bar("2024-01-03T05:00:00Z", 10.0), // EST midnight → Wed 2024-01-03
            bar("2024-01-06T05:00:00Z", 11.0), // Saturday: not a session
            bar("2024-03-11T04:00:00Z", 12.0), // EDT, first Monday after the switch
            bar("2024-07-03T04:00:00Z", 13.0), // EDT midnight → 2024-07-03 (early close)
            bar("2024-07-04T04:00:00Z", 14.0), // Independence Day: not a session
            bar("2024-11-04T05:00:00Z", 15.0), // EST again after fall-back
        ],
    );
    let client = client(&fake);
    let result = daily_bars_detailed(
        &client,
        &["TZ".to_string()],
        d("2024-01-02"),
        d("2024-11-04"),
        &BarsOptions::default(),
    )
    .unwrap();
    let got: Vec<(NaiveDate, f64)> = result.bars["TZ"]
        .iter()
        .map(|b| (b.date, b.close))
        .collect();
    assert_eq!(
        got,
        vec![
            (d("2024-01-03"), 10.0),
            (d("2024-03-11"), 12.0),
            (d("2024-07-03"), 13.0),
            (d("2024-11-04"), 15.0),
        ]
    );
    assert_eq!(result.dropped_non_session, 2);
    // The request's bounds are New York days in UTC: EST start, EST end.
    let r = &bars_requests(&fake)[0];
    assert_eq!(param(r, "start"), Some("2024-01-02T05:00:00Z"));
    assert_eq!(param(r, "end"), Some("2024-11-05T04:59:59Z"));
    assert_eq!(start_param(d("2024-07-03")), "2024-07-03T04:00:00Z");
    assert_eq!(end_param(d("2024-07-03")), "2024-07-04T03:59:59Z");
    contract::assert_all_conform(&fake.requests());
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn iex_feed_is_sent_and_warns_loudly_sip_does_not() {
    let fake = FakeAlpaca::start();
    let days = sessions("2024-05-01", "2024-05-02");
    fake.add_daily_bars(&names("I", 2), &days);
    let client = client(&fake);
    let run = |feed: Feed| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let opts = BarsOptions {
                feed,
                ..BarsOptions::default()
            };
            daily_bars(&client, &names("I", 2), days[0], days[1], &opts).unwrap();
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text
    };
    let iex = run(Feed::Iex);
    assert!(iex.contains("WARN"), "{iex}");
    assert!(iex.contains("IEX") && iex.contains("volume"), "{iex}");
    let last = bars_requests(&fake).pop().unwrap();
    assert_eq!(param(&last, "feed"), Some("iex"));
    check_daily_bars(&last).unwrap();
    let sip = run(Feed::Sip);
    assert!(!sip.contains("IEX"), "{sip}");
    assert_eq!(
        param(&bars_requests(&fake).pop().unwrap(), "feed"),
        Some("sip")
    );
    contract::assert_all_conform(&fake.requests());
}

fn stored_bar(date: NaiveDate) -> DailyBar {
    DailyBar {
        date,
        open: 10.0,
        high: 11.0,
        low: 9.0,
        close: 10.5,
        volume: 1000.0,
    }
}

#[test]
fn top_up_requests_only_missing_sessions_once_per_start() {
    let fake = FakeAlpaca::start();
    let data_date = d("2024-06-14");
    let all = sessions("2024-03-01", "2024-06-14");
    let served: Vec<String> = ["A", "B", "C", "D", "E"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    fake.add_daily_bars(&served, &all);
    let mut store = BarStore::open_in_memory().unwrap();
    // A and B stop at 2024-06-12, C at 2024-06-13, D is current, E and NODATA have nothing.
    for (s, last) in [
        ("A", "2024-06-12"),
        ("B", "2024-06-12"),
        ("C", "2024-06-13"),
    ] {
        let bars: Vec<DailyBar> = sessions("2024-06-03", last)
            .into_iter()
            .map(stored_bar)
            .collect();
        store.upsert(s, &bars).unwrap();
    }
    store.upsert("D", &[stored_bar(data_date)]).unwrap();
    let symbols: Vec<String> = ["A", "B", "C", "D", "E", "NODATA"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let client = client(&fake);
    let report = top_up(
        &client,
        &mut store,
        &symbols,
        data_date,
        30,
        &BarsOptions::default(),
    )
    .unwrap();
    // Starts: 2024-06-13 (A, B), 2024-06-14 (C), 2024-05-15 (E, NODATA: 30 days back).
    assert_eq!(report.start_groups, 3);
    assert_eq!(report.requests, 3);
    assert_eq!(report.up_to_date, 1);
    assert_eq!(report.symbols_without_data, vec!["NODATA".to_string()]);
    let e_window = sessions("2024-05-15", "2024-06-14").len();
    assert_eq!(report.bars_written, 2 * 2 + 1 + e_window);
    let mut starts: Vec<(String, String)> = bars_requests(&fake)
        .iter()
        .map(|r| {
            check_daily_bars(r).unwrap();
            assert_eq!(param(r, "end"), Some("2024-06-15T03:59:59Z"));
            (
                param(r, "start").unwrap().to_string(),
                param(r, "symbols").unwrap().to_string(),
            )
        })
        .collect();
    starts.sort();
    assert_eq!(
        starts,
        vec![
            ("2024-05-15T04:00:00Z".to_string(), "E,NODATA".to_string()),
            ("2024-06-13T04:00:00Z".to_string(), "A,B".to_string()),
            ("2024-06-14T04:00:00Z".to_string(), "C".to_string()),
        ]
    );
    for s in ["A", "B", "C", "D", "E"] {
        assert_eq!(store.last_stored_date(s).unwrap(), Some(data_date), "{s}");
    }

    // Up to date now: only the symbol with no data is asked again, in one request.
    let before = fake.requests().len();
    let again = top_up(
        &client,
        &mut store,
        &symbols,
        data_date,
        30,
        &BarsOptions::default(),
    )
    .unwrap();
    assert_eq!(again.requests, 1);
    assert_eq!(again.bars_written, 0);
    assert_eq!(again.up_to_date, 5);
    let new: Vec<Recorded> = fake.requests()[before..].to_vec();
    assert_eq!(param(&new[0], "symbols"), Some("NODATA"));

    // Without NODATA an up-to-date store sends nothing at all.
    let quiet = top_up(
        &client,
        &mut store,
        &symbols[..5],
        data_date,
        30,
        &BarsOptions::default(),
    )
    .unwrap();
    assert_eq!(quiet.requests, 0);
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn a_429_with_retry_after_on_bars_is_retried() {
    let fake = FakeAlpaca::start();
    let days = sessions("2024-05-01", "2024-05-02");
    fake.add_daily_bars(&names("R", 2), &days);
    fake.inject(
        "GET",
        BARS_PATH,
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
        1,
    );
    let client = client(&fake);
    let started = Instant::now();
    let bars = daily_bars(
        &client,
        &names("R", 2),
        days[0],
        days[1],
        &BarsOptions::default(),
    )
    .unwrap();
    assert_eq!(bars.len(), 2);
    assert_eq!(client.requests_sent(), 2);
    assert!(started.elapsed() >= Duration::from_millis(900));
    contract::assert_all_conform(&fake.requests());
}

#[test]
fn server_errors_are_retried_then_fail_clearly() {
    let fake = FakeAlpaca::start();
    let days = sessions("2024-05-01", "2024-05-02");
    fake.add_daily_bars(&names("X", 2), &days);
    let client = client(&fake);
    fake.inject("GET", BARS_PATH, Fault::Status(502), 2);
    let bars = daily_bars(
        &client,
        &names("X", 2),
        days[0],
        days[1],
        &BarsOptions::default(),
    )
    .unwrap();
    assert_eq!(bars.len(), 2);
    assert_eq!(client.requests_sent(), 3);

    fake.inject("GET", BARS_PATH, Fault::Status(503), 100);
    let error = daily_bars(
        &client,
        &names("X", 2),
        days[0],
        days[1],
        &BarsOptions::default(),
    )
    .unwrap_err();
    match &error {
        AlpacaError::ReadFailed { attempts, message } => {
            assert_eq!(*attempts, 4);
            assert!(
                message.contains(BARS_PATH) && message.contains("503"),
                "{message}"
            );
        }
        other => panic!("expected ReadFailed, got {other:?}"),
    }
    let text = error.to_string();
    assert!(text.contains("after 4 attempt(s)"), "{text}");
    assert!(!text.contains(SECRET));
    contract::assert_all_conform(&fake.requests());
}

/// Cold fill of 3,000 symbols × 2 years and a one-session top-up against the fake, with
/// Alpaca's page size. Targets (issue 8 item 7): top-up ≤ 20 requests, cold fill ≤ 1.2× the
/// pagination minimum.
#[test]
#[ignore = "benchmark (1.5M bars in the fake): run in release with --ignored --nocapture"]
fn benchmark_cold_fill_and_one_session_top_up() {
    let fake = FakeAlpaca::start();
    let data_date = d("2026-11-25");
    let history_days = 730;
    let window = sessions("2024-11-25", "2026-11-25");
    // Realistic symbol lengths: 1–5 characters, mostly 3–4.
    let symbols: Vec<String> = (0..3000usize)
        .map(|i| {
            let letters: Vec<char> = ('A'..='Z').collect();
            let len = [3, 4, 4, 3, 2, 4, 3, 5, 1, 4][i % 10];
            let mut n = i;
            let mut s = String::new();
            for _ in 0..len {
                s.push(letters[n % 26]);
                n /= 26;
            }
            format!("{s}{}", i / 100) // unique
        })
        .collect();
    fake.add_daily_bars(&symbols, &window);
    let client = client(&fake);
    let mut store = BarStore::open_in_memory().unwrap();
    let started = Instant::now();
    let cold = top_up(
        &client,
        &mut store,
        &symbols,
        data_date,
        history_days,
        &BarsOptions::default(),
    )
    .unwrap();
    let cold_time = started.elapsed();
    let bars = cold.bars_written;
    let minimum = bars.div_ceil(10_000);
    println!(
        "cold fill: {} symbols × {} sessions = {bars} bars, {} requests ({} pages) in {:.2} s; \
         pagination minimum {minimum}; ratio {:.3}",
        symbols.len(),
        window.len(),
        cold.requests,
        cold.pages,
        cold_time.as_secs_f64(),
        cold.requests as f64 / minimum as f64
    );
    assert_eq!(bars, symbols.len() * window.len());
    assert!(cold.requests as f64 <= 1.2 * minimum as f64);

    let next = calendar::next_session(data_date).unwrap();
    fake.add_daily_bars(&symbols, &[next]);
    let started = Instant::now();
    let top = top_up(
        &client,
        &mut store,
        &symbols,
        next,
        history_days,
        &BarsOptions::default(),
    )
    .unwrap();
    println!(
        "one-session top-up to {next}: {} bars, {} requests in {:.3} s",
        top.bars_written,
        top.requests,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(top.bars_written, symbols.len());
    assert!(top.requests <= 20);
    contract::assert_all_conform(&fake.requests());
}

#[test]
#[ignore = "needs ../shared/reference/alpaca/market-data-api.json (or \
            AVWAP_ALPACA_MARKET_DATA_SPEC); the shared contract covers the same facts without it"]
fn bars_contract_agrees_with_the_official_spec() {
    let spec = contract::load_spec(Api::MarketData);

    // 1. Every Market Data operation of the contract (daily bars, 10-minute bars, latest
    // trades) agrees with the spec: names, kinds, enums (or documented values), ranges, formats,
    // required parameters.
    let errors = contract::disagreements_with_spec(&spec, contract::ops(Api::MarketData));
    assert!(errors.is_empty(), "{errors:#?}");
    for op in contract::ops(Api::MarketData) {
        // Each lists every parameter of the spec, in the spec's order.
        let o = &spec["paths"][op.path]["get"];
        let spec_names: Vec<&str> = o["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| contract::resolve(&spec, p)["name"].as_str().unwrap())
            .collect();
        let ours: Vec<&str> = op.query.iter().map(|(n, _)| *n).collect();
        assert_eq!(spec_names, ours, "{}", op.name);
    }
    // … and that check catches disagreements.
    let daily = contract::op("daily bars");
    let wrong = [
        contract::Op {
            query: &[
                ("symbols", Kind::CommaList),
                ("timeframe", Kind::Enum(&["1Dayz"])),
                ("start", Kind::Str),
                ("limit", Kind::IntRange(1, 20_000)),
                ("asof", Kind::UtcDateTime),
                ("feed", Kind::Enum(&["iex", "sip"])),
                ("adjustment", Kind::Enum(&["split", "splits"])),
            ],
            required_query: &["symbols"],
            ..*daily
        },
        contract::Op {
            path: "/v2/stocks/bars/latest/none",
            ..*daily
        },
    ];
    let errors = contract::disagreements_with_spec(&spec, &wrong);
    for expected in [
        "query timeframe: [\"1Dayz\"] neither in an enum nor documented",
        "query limit: 1..=20000 outside",
        "query asof: the spec format",
        "query feed: enum",
        "query adjustment: [\"splits\"] neither",
        "the spec requires query timeframe",
        "/none (daily bars): not in the spec",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{expected:?} not caught: {errors:#?}"
        );
    }

    // 2. The spec facts the bars code relies on.
    let op = &spec["paths"]["/v2/stocks/bars"]["get"];
    let params: Vec<&serde_json::Value> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| contract::resolve(&spec, p))
        .collect();
    for p in &params {
        let name = p["name"].as_str().unwrap();
        let schema = contract::resolve(&spec, &p["schema"]);
        match name {
            "symbols" | "timeframe" => assert_eq!(p["required"], true, "{name}"),
            "start" | "end" => assert_eq!(schema["format"], "date-time", "{name}"),
            "limit" => {
                assert_eq!(schema["type"], "integer");
                assert_eq!(schema["minimum"], 1);
                assert_eq!(schema["maximum"], 10_000);
            }
            _ => {}
        }
    }
    // The 1Day timeframe is documented, and the answer carries `bars` and `next_page_token`.
    let timeframe = params.iter().find(|p| p["name"] == "timeframe").unwrap();
    assert!(timeframe["description"]
        .as_str()
        .unwrap()
        .contains("`1Day`"));
    let resp = contract::resolve(
        &spec,
        &op["responses"]["200"]["content"]["application/json"]["schema"],
    );
    let required: Vec<&str> = resp["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(required.contains(&"bars") && required.contains(&"next_page_token"));
    let bar = contract::resolve(
        &spec,
        &resp["properties"]["bars"]["additionalProperties"]["items"],
    );
    for field in ["t", "o", "h", "l", "c", "v", "n", "vw"] {
        assert!(bar["properties"].get(field).is_some(), "bar field {field}");
    }

    // 3. What the bars and intraday code sends, against the spec itself.
    let fake = FakeAlpaca::start();
    let days = sessions("2024-01-02", "2024-01-31");
    fake.add_daily_bars(&names("S", 3), &days);
    let client = client(&fake);
    let opts = BarsOptions {
        page_limit: 10,
        ..BarsOptions::default()
    };
    daily_bars(
        &client,
        &names("S", 3),
        days[0],
        days[days.len() - 1],
        &opts,
    )
    .unwrap();
    let intraday = avwap::alpaca::intraday::AlpacaIntradayFeed::new(
        self::client(&fake),
        avwap::alpaca::intraday::IntradayOptions::default(),
    );
    intraday.snapshot(&names("S", 3), t("2024-01-31T15:05:00Z"), 3);
    let recorded = fake.requests();
    let missed = contract::unexercised(&recorded, Api::MarketData);
    assert!(missed.is_empty(), "not exercised: {missed:?}");
    contract::assert_all_conform(&recorded);
    let errors: Vec<String> = recorded
        .iter()
        .filter_map(|r| contract::check_against_spec(&spec, r).err())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let mut bad = recorded[0].clone();
    bad.query.push(("feed".into(), "SIP".into()));
    assert!(contract::check_against_spec(&spec, &bad).is_err());
    bad.query.pop();
    bad.query.retain(|(k, _)| k != "timeframe");
    assert!(contract::check_against_spec(&spec, &bad).is_err());
}

/// Everything logged at WARN or above while `f` runs, as text.
fn capture_warnings<T>(f: impl FnOnce() -> T) -> (T, String) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    (result, text)
}

/// A valid daily bar of `date` closing at `close`, stamped as Alpaca stamps daily bars.
fn daily(date: NaiveDate, close: f64) -> FakeBar {
    FakeBar {
        t: calendar::ny_instant(date, chrono::NaiveTime::MIN),
        o: close,
        h: close + 1.0,
        l: close - 1.0,
        c: close,
        v: 50_000,
    }
}

/// Issue 15 finding 7: `bars` is a free map, and a symbol nobody asked for is ignored, counted
/// and logged, never written to the bar store (nor handed to the 10-minute feed).
#[test]
fn unrequested_symbols_are_not_stored_and_are_counted() {
    let fake = FakeAlpaca::start();
    let days = sessions("2024-06-03", "2024-06-14");
    let requested: Vec<String> = ["A", "B", "NODATA"].map(String::from).to_vec();
    fake.add_daily_bars(
        &["A".into(), "B".into(), "EXTRA".into(), "ZZZ".into()],
        &days,
    );
    fake.set_quirks(Quirks {
        unrequested_bars: vec!["EXTRA".into(), "ZZZ".into()],
        ..Quirks::default()
    });
    let client = client(&fake);
    // Small pages: the unrequested symbols' bars come on pages of their own and mixed with ours.
    let opts = BarsOptions {
        page_limit: 7,
        ..BarsOptions::default()
    };

    let detailed = daily_bars_detailed(&client, &requested, days[0], days[9], &opts).unwrap();
    assert_eq!(detailed.bars.keys().collect::<Vec<_>>(), ["A", "B"]);
    assert_eq!(detailed.unrequested_symbols, ["EXTRA", "ZZZ"]);
    assert_eq!(detailed.unrequested_bars, 2 * days.len() as u64);

    let mut store = BarStore::open_in_memory().unwrap();
    let (report, logged) =
        capture_warnings(|| top_up(&client, &mut store, &requested, days[9], 30, &opts).unwrap());
    assert_eq!(store.symbols().unwrap(), ["A", "B"]);
    assert_eq!(report.bars_written, 2 * days.len());
    assert_eq!(report.unrequested_symbols, ["EXTRA", "ZZZ"]);
    assert_eq!(report.unrequested_bars, 2 * days.len() as u64);
    assert_eq!(report.symbols_without_data, ["NODATA"]);
    assert!(
        logged
            .contains("2 symbol(s) we did not request (EXTRA, ZZZ; 20 bars): ignored, not stored"),
        "{logged}"
    );

    // The 10-minute feed reads the same answers the same way.
    let start = t("2024-06-14T13:30:00Z");
    fake.set_intraday_bars(
        "EXTRA",
        (0..3)
            .map(|i| FakeBar {
                t: start + chrono::Duration::minutes(10 * i),
                ..daily(days[9], 20.0)
            })
            .collect(),
    );
    fake.set_intraday_bars(
        "A",
        vec![FakeBar {
            t: start,
            ..daily(days[9], 30.0)
        }],
    );
    let feed = avwap::alpaca::intraday::AlpacaIntradayFeed::new(
        self::client(&fake),
        avwap::alpaca::intraday::IntradayOptions::default(),
    );
    let (snapshot, logged) =
        capture_warnings(|| feed.snapshot(&["A".to_string()], t("2024-06-14T14:05:00Z"), 3));
    assert_eq!(snapshot.bars.keys().collect::<Vec<_>>(), ["A"]);
    assert!(logged.contains("we did not request (EXTRA"), "{logged}");
    contract::assert_all_conform(&fake.requests());
}

/// The spec's objects are open: unknown fields in a bars page and in each bar change nothing.
#[test]
fn unknown_fields_in_a_bars_answer_are_ignored() {
    let fake = FakeAlpaca::start();
    let days = sessions("2024-06-03", "2024-06-07");
    fake.add_daily_bars(&names("U", 2), &days);
    let client = client(&fake);
    let plain = daily_bars(
        &client,
        &names("U", 2),
        days[0],
        days[4],
        &BarsOptions::default(),
    )
    .unwrap();
    fake.set_quirks(Quirks {
        extra_fields: true,
        ..Quirks::default()
    });
    let extra = daily_bars(
        &client,
        &names("U", 2),
        days[0],
        days[4],
        &BarsOptions::default(),
    )
    .unwrap();
    assert_eq!(extra, plain);
    assert_eq!(extra["U0000"].len(), 5);
    contract::assert_all_conform(&fake.requests());
}

/// Issue 15 finding 7: one duplicate rule for every path. The FIRST copy of a (symbol, date) is
/// kept: across the pages of one Alpaca answer, in the bar store, in a CSV import, in the CSV
/// provider and in the scan's validation.
#[test]
fn duplicate_bar_dates_keep_the_first_copy_on_every_path() {
    let days = sessions("2024-06-03", "2024-06-06");
    let (first, second) = (21.0, 99.0);

    // Alpaca: two bars of days[1], the page boundary between them (2 bars a page).
    let fake = FakeAlpaca::start();
    fake.set_bars(
        "DUP",
        vec![
            daily(days[0], 20.0),
            daily(days[1], first),
            daily(days[1], second),
            daily(days[2], 22.0),
        ],
    );
    let client = client(&fake);
    let opts = BarsOptions {
        page_limit: 2,
        ..BarsOptions::default()
    };
    let mut store = BarStore::open_in_memory().unwrap();
    let (report, logged) = capture_warnings(|| {
        top_up(
            &client,
            &mut store,
            &["DUP".to_string()],
            days[2],
            10,
            &opts,
        )
        .unwrap()
    });
    assert_eq!(report.pages, 2);
    assert_eq!(report.duplicate_dates, 1);
    assert_eq!(report.bars_written, 3);
    let stored = store.bars("DUP", Some(days[1]), Some(days[1])).unwrap();
    assert_eq!(stored[0].close, first);
    assert!(
        logged.contains("the first copy of each was kept"),
        "{logged}"
    );

    // The bar store, within one write.
    let bar = |close: f64| DailyBar {
        date: days[1],
        open: close,
        high: close + 1.0,
        low: close - 1.0,
        close,
        volume: 1000.0,
    };
    let mut store = BarStore::open_in_memory().unwrap();
    let written = store
        .write_bars([("DUP", vec![bar(first), bar(second)])])
        .unwrap();
    assert_eq!((written.rows, written.duplicates), (1, 1));
    assert_eq!(store.bars("DUP", None, None).unwrap(), vec![bar(first)]);

    // A CSV import and the CSV provider.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("dup.csv");
    std::fs::write(
        &csv,
        format!(
            "Date,Symbol,Open,High,Low,Close,Volume\n\
             {d},DUP,{first},{},{},{first},1000\n\
             {d},DUP,{second},{},{},{second},1000\n",
            first + 1.0,
            first - 1.0,
            second + 1.0,
            second - 1.0,
            d = days[1]
        ),
    )
    .unwrap();
    let mut store = BarStore::open_in_memory().unwrap();
    let imported = avwap::market_data::import_files(&mut store, &[&csv]).unwrap();
    assert_eq!((imported.rows_imported, imported.rows_rejected), (1, 1));
    assert!(imported.rejected[0].reason.contains("duplicate of line 2"));
    assert_eq!(store.bars("DUP", None, None).unwrap()[0].close, first);
    let (read, _) = avwap::market_data::read_long_csv(&csv).unwrap();
    assert_eq!(read["DUP"].len(), 1);
    assert_eq!(read["DUP"][0].close, first);

    // The scan's validation of whatever a source hands it.
    let (series, defects) =
        avwap::market_data::validate_series("DUP", vec![bar(first), bar(second)]);
    assert_eq!(series.close, vec![first]);
    assert_eq!(defects.duplicate_date, 1);
    contract::assert_all_conform(&fake.requests());
}

/// Issue 15 finding 8, bars: a malformed bars answer is named as Alpaca's answer, with the
/// symbol, the bar and the field, never as a network or key problem.
#[test]
fn an_unreadable_bars_answer_names_the_symbol_bar_and_field() {
    let fake = FakeAlpaca::start();
    let client = client(&fake);
    let days = sessions("2024-06-03", "2024-06-04");
    let symbols = vec!["AAA".to_string()];
    let cases = [
        (
            serde_json::json!({"bars": {"AAA": [
                {"t": "2024-06-03T04:00:00Z", "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 10, "n": 1, "vw": 1.2},
                {"t": "2024-06-04T04:00:00Z", "o": 1.0, "h": 2.0, "l": 0.5, "v": 10, "n": 1, "vw": 1.2}
            ]}, "next_page_token": null}),
            "`bars.AAA[1]` (t 2024-06-04T04:00:00Z): missing field `c`",
        ),
        (
            serde_json::json!({"bars": {"AAA": [
                {"t": "2024-06-03T04:00:00Z", "o": "1.0", "h": 2.0, "l": 0.5, "c": 1.5, "v": 10}
            ]}, "next_page_token": null}),
            "`bars.AAA[0]` (t 2024-06-03T04:00:00Z): invalid type: string \"1.0\", expected f64",
        ),
        (
            serde_json::json!({"bars": {"AAA": {"t": "x"}}, "next_page_token": null}),
            "`bars.AAA` is an object, not a list of bars",
        ),
        (
            serde_json::json!({"bars": [], "next_page_token": null}),
            "`bars` is a list, not an object of symbol to bars",
        ),
        (
            serde_json::json!({"bars": {}, "next_page_token": 7}),
            "`next_page_token` is a number, not a string or null",
        ),
        (serde_json::json!([]), "the answer is a list, not an object"),
    ];
    for (body, expected) in cases {
        fake.set_quirks(Quirks {
            bars_body: Some(body),
            ..Quirks::default()
        });
        let error =
            daily_bars(&client, &symbols, days[0], days[1], &BarsOptions::default()).unwrap_err();
        assert!(matches!(error, AlpacaError::Decode { .. }), "{error:?}");
        let text = error.to_string();
        assert!(
            text.starts_with("Alpaca's answer to /v2/stocks/bars is malformed: "),
            "{text}"
        );
        assert!(text.contains(expected), "{expected:?} not in {text}");
        for elsewhere in ["network", "credential", "key"] {
            assert!(!text.contains(elsewhere), "{elsewhere:?} in {text}");
        }
    }
    // A malformed bar of a symbol nobody asked for does not fail the answer.
    fake.set_quirks(Quirks {
        bars_body: Some(serde_json::json!({"bars": {
            "AAA": [{"t": "2024-06-03T04:00:00Z", "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 10}],
            "OTHER": [{"garbage": true}]
        }, "next_page_token": null})),
        ..Quirks::default()
    });
    let bars = daily_bars(&client, &symbols, days[0], days[1], &BarsOptions::default()).unwrap();
    assert_eq!(bars.keys().collect::<Vec<_>>(), ["AAA"]);
    contract::assert_all_conform(&fake.requests());
}
