//! Alpaca's calendar (fetched, cached in the state dir, compared with avwap's; the cache used
//! when a fetch fails; mismatches logged at execution start without failing it) and Alpaca's
//! active US-equity assets as the universe's last fallback, against the fake Alpaca server.

use super::fake_alpaca;

use avwap::alpaca::assets::{AlpacaAssetsFallback, FALLBACK_NAME};
use avwap::alpaca::calendar::{
    cache_path, check_calendar_and_log, sync_calendar, CalendarMismatch, CalendarSource,
    CalendarSyncError, CALENDAR_CACHE_FILE,
};
use avwap::alpaca::{AlpacaClient, ClientConfig, Endpoints};
use avwap::calendar::{ny_datetime, sessions_between};
use avwap::credentials::CredentialStore;
use avwap::universe::{load_universe, LoadOptions, UniverseError, UniverseSource};
use chrono::{DateTime, NaiveDate, Utc};
use fake_alpaca::{FakeAlpaca, FakeAsset, FakeCalendarDay, Fault, Quirks, KEY_ID, SECRET};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn client(fake: &FakeAlpaca) -> AlpacaClient {
    let store = CredentialStore::new(None, |k| match k {
        "APCA_API_KEY_ID" => Some(KEY_ID.to_string()),
        "APCA_API_SECRET_KEY" => Some(SECRET.to_string()),
        _ => None,
    });
    let mut config = ClientConfig::new(Endpoints::single(&fake.url()));
    config.connect_timeout = Duration::from_millis(500);
    config.timeout = Duration::from_millis(1500);
    config.requests_per_minute = 600_000;
    config.backoff_base = Duration::from_millis(5);
    config.max_backoff = Duration::from_millis(20);
    AlpacaClient::from_store(&store, config).unwrap()
}

/// avwap's own sessions for `from..=to`, as Alpaca would serve them.
fn avwap_days(from: &str, to: &str) -> Vec<FakeCalendarDay> {
    sessions_between(d(from), d(to))
        .unwrap()
        .into_iter()
        .map(|s| {
            FakeCalendarDay::new(
                s.date,
                &ny_datetime(s.open).format("%H:%M").to_string(),
                &ny_datetime(s.close).format("%H:%M").to_string(),
            )
        })
        .collect()
}

/// Everything logged at WARN or above while `f` runs, as text.
fn capture_warnings<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer(Arc::new(Mutex::new(Vec::new())));
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned();
    (result, text)
}

#[test]
fn the_calendar_is_fetched_cached_and_agrees_with_ours() {
    let fake = FakeAlpaca::start();
    fake.set_calendar(avwap_days("2026-11-01", "2027-02-28"));
    let state = tempfile::tempdir().unwrap();
    let check = sync_calendar(
        &client(&fake),
        state.path(),
        d("2026-11-25"),
        d("2027-01-29"),
    )
    .unwrap();
    assert_eq!(check.source, CalendarSource::Fetched);
    assert_eq!(check.mismatches, vec![], "{:#?}", check.mismatches);
    assert_eq!(
        (check.compared_from, check.compared_to),
        (d("2026-11-25"), d("2027-01-29"))
    );
    assert_eq!(check.cache_error, None);
    assert!(check.alpaca_days.iter().all(|x| x.date >= d("2026-11-25")));
    assert!(cache_path(state.path()).exists());
    // The request: dates as YYYY-MM-DD, nothing else.
    let requests = fake.requests();
    let calendar: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/v2/calendar")
        .collect();
    assert_eq!(calendar.len(), 1);
    assert_eq!(
        calendar[0].query,
        vec![
            ("start".to_string(), "2026-11-25".to_string()),
            ("end".to_string(), "2027-01-29".to_string())
        ]
    );
    // Only the cache was written to the state dir (atomically: no temp file left).
    let names: Vec<_> = std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![CALENDAR_CACHE_FILE.to_string()]);
    fake_alpaca::contract::assert_all_conform(&fake.requests());
}

#[test]
fn differences_are_reported_as_mismatches() {
    let fake = FakeAlpaca::start();
    let mut days = avwap_days("2026-11-20", "2026-12-31");
    // Alpaca: the day after Thanksgiving is a full day; Dec 9 closed (a day of mourning);
    // open on Christmas.
    for day in &mut days {
        if day.date == d("2026-11-27") {
            day.close = "16:00".into();
        }
    }
    days.retain(|x| x.date != d("2026-12-09"));
    days.push(FakeCalendarDay::new(d("2026-12-25"), "09:30", "16:00"));
    fake.set_calendar(days);
    let state = tempfile::tempdir().unwrap();
    let check = sync_calendar(
        &client(&fake),
        state.path(),
        d("2026-11-20"),
        d("2026-12-31"),
    )
    .unwrap();
    let kinds: Vec<(NaiveDate, &str)> = check
        .mismatches
        .iter()
        .map(|m| {
            let kind = match m {
                CalendarMismatch::DifferentHours { .. } => "hours",
                CalendarMismatch::MissingSession { .. } => "missing",
                CalendarMismatch::UnexpectedSession { .. } => "extra",
                _ => "other",
            };
            (m.date(), kind)
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (d("2026-11-27"), "hours"),
            (d("2026-12-09"), "missing"),
            (d("2026-12-25"), "extra"),
        ]
    );
    for m in &check.mismatches {
        let text = m.to_string();
        assert!(text.contains("avwap trades by its own calendar"), "{text}");
        assert!(text.contains("update avwap"), "{text}");
    }
    fake_alpaca::contract::assert_all_conform(&fake.requests());
}

#[test]
fn a_failed_fetch_falls_back_to_the_cached_copy() {
    let fake = FakeAlpaca::start();
    fake.set_calendar(avwap_days("2026-11-01", "2027-03-31"));
    let state = tempfile::tempdir().unwrap();
    let alpaca = client(&fake);
    sync_calendar(&alpaca, state.path(), d("2026-11-25"), d("2027-01-29")).unwrap();
    let cached = std::fs::read(cache_path(state.path())).unwrap();

    // Alpaca is down: every attempt answers 503.
    fake.inject("GET", "/v2/calendar", Fault::Status(503), 100);
    let check = sync_calendar(&alpaca, state.path(), d("2026-11-30"), d("2027-02-03")).unwrap();
    match &check.source {
        CalendarSource::Cache { fetch_error, .. } => {
            assert!(fetch_error.contains("503"), "{fetch_error}")
        }
        other => panic!("{other:?}"),
    }
    // Compared over the overlap of the cached window and the requested one.
    assert_eq!(
        (check.compared_from, check.compared_to),
        (d("2026-11-30"), d("2027-01-29"))
    );
    assert_eq!(check.mismatches, vec![]);
    assert_eq!(
        std::fs::read(cache_path(state.path())).unwrap(),
        cached,
        "cache kept"
    );

    // An answer that is not what the spec promises also leaves the cache alone.
    let fake2 = FakeAlpaca::start();
    fake2.set_calendar(vec![FakeCalendarDay::new(
        d("2026-12-01"),
        "9.30am",
        "16:00",
    )]);
    let check = sync_calendar(
        &client(&fake2),
        state.path(),
        d("2026-11-30"),
        d("2027-01-10"),
    )
    .unwrap();
    match &check.source {
        CalendarSource::Cache { fetch_error, .. } => {
            assert!(fetch_error.contains("9.30am"), "{fetch_error}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(cache_path(state.path())).unwrap(), cached);
    fake_alpaca::contract::assert_all_conform(&fake.requests());
    fake_alpaca::contract::assert_all_conform(&fake2.requests());
}

#[test]
fn without_fetch_and_cache_the_check_fails_and_the_caller_does_not() {
    let fake = FakeAlpaca::start();
    fake.inject("GET", "/v2/calendar", Fault::Status(500), 100);
    let state = tempfile::tempdir().unwrap();
    let alpaca = client(&fake);
    let err = sync_calendar(&alpaca, state.path(), d("2026-11-25"), d("2027-01-29")).unwrap_err();
    assert!(
        matches!(err, CalendarSyncError::Unavailable { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("no cached copy") && text.contains("own calendar"),
        "{text}"
    );
    assert!(!text.contains(SECRET));

    let (check, logged) =
        capture_warnings(|| check_calendar_and_log(&alpaca, state.path(), d("2026-11-30")));
    assert!(check.is_none());
    assert!(logged.contains("could not be checked"), "{logged}");
    assert!(!logged.contains(SECRET), "{logged}");

    // A cache that covers none of the window is not used.
    let fresh = FakeAlpaca::start();
    fresh.set_calendar(avwap_days("2026-01-01", "2026-01-31"));
    sync_calendar(
        &client(&fresh),
        state.path(),
        d("2026-01-01"),
        d("2026-01-31"),
    )
    .unwrap();
    let err = sync_calendar(&alpaca, state.path(), d("2026-11-25"), d("2027-01-29")).unwrap_err();
    assert!(err.to_string().contains("not the window"), "{err}");

    let err = sync_calendar(&alpaca, state.path(), d("2026-12-01"), d("2026-11-01")).unwrap_err();
    assert!(
        matches!(err, CalendarSyncError::InvalidWindow { .. }),
        "{err}"
    );
    fake_alpaca::contract::assert_all_conform(&fake.requests());
    fake_alpaca::contract::assert_all_conform(&fresh.requests());
}

#[test]
fn check_and_log_warns_once_per_mismatch_over_the_execution_window() {
    let fake = FakeAlpaca::start();
    let mut days = avwap_days("2026-11-01", "2027-02-28");
    days.retain(|x| x.date != d("2026-12-09"));
    fake.set_calendar(days);
    let state = tempfile::tempdir().unwrap();
    let alpaca = client(&fake);
    let (check, logged) =
        capture_warnings(|| check_calendar_and_log(&alpaca, state.path(), d("2026-11-30")));
    let check = check.expect("checked");
    assert_eq!(
        (check.compared_from, check.compared_to),
        (d("2026-11-25"), d("2027-01-29"))
    );
    assert_eq!(check.mismatches.len(), 1);
    assert_eq!(logged.matches("calendar mismatch").count(), 1, "{logged}");
    assert!(
        logged.contains("WARN") && logged.contains("2026-12-09"),
        "{logged}"
    );
    let request = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/v2/calendar")
        .unwrap();
    assert_eq!(
        request.query,
        vec![
            ("start".to_string(), "2026-11-25".to_string()),
            ("end".to_string(), "2027-01-29".to_string())
        ]
    );

    // The fetch fails next time: the cached copy is compared, and that is said.
    fake.inject("GET", "/v2/calendar", Fault::Status(503), 100);
    let (check, logged) =
        capture_warnings(|| check_calendar_and_log(&alpaca, state.path(), d("2026-12-01")));
    assert!(matches!(
        check.unwrap().source,
        CalendarSource::Cache { .. }
    ));
    assert!(logged.contains("cached copy"), "{logged}");
    assert_eq!(logged.matches("calendar mismatch").count(), 1, "{logged}");

    // An empty answer (Alpaca's list ends) is one warning, not one per session.
    let empty = FakeAlpaca::start();
    let (check, logged) =
        capture_warnings(|| check_calendar_and_log(&client(&empty), state.path(), d("2026-11-30")));
    assert_eq!(check.unwrap().mismatches.len(), 1);
    assert_eq!(logged.matches("calendar mismatch").count(), 1, "{logged}");
    fake_alpaca::contract::assert_all_conform(&fake.requests());
    fake_alpaca::contract::assert_all_conform(&empty.requests());
}

/// Issue 15 finding 8: an answer of `GET /v2/calendar` that is not the spec's shape is named as
/// Alpaca's malformed answer, with the day and the field; nothing points at the network or the
/// keys. Unknown extra fields are not a malformed answer.
#[test]
fn an_unreadable_calendar_answer_names_the_field_not_the_network() {
    let fake = FakeAlpaca::start();
    let state = tempfile::tempdir().unwrap();
    let alpaca = client(&fake);
    let day = |date: &str, open: serde_json::Value, close: Option<&str>| {
        let mut day = serde_json::json!({"date": date, "open": open, "session_open": "0400",
            "session_close": "2000", "settlement_date": "2026-12-02"});
        if let Some(close) = close {
            day["close"] = close.into();
        }
        day
    };
    let cases = [
        (
            serde_json::json!([
                day("2026-11-30", "09:30".into(), Some("16:00")),
                day("2026-12-01", "09:30".into(), None)
            ]),
            "calendar day 1 (2026-12-01): missing field `close`",
        ),
        (
            serde_json::json!([day("2026-12-01", 930.into(), Some("16:00"))]),
            "calendar day 0 (2026-12-01): invalid type: integer `930`, expected a string",
        ),
        (
            serde_json::json!([day("2026-12-01", "9.30am".into(), Some("16:00"))]),
            "calendar day 2026-12-01: open \"9.30am\" is not an HH:MM time",
        ),
        (
            serde_json::json!({"calendar": []}),
            "the answer is an object, not a list of calendar days",
        ),
    ];
    for (body, expected) in cases {
        fake.set_quirks(Quirks {
            calendar_body: Some(body),
            ..Quirks::default()
        });
        let err =
            sync_calendar(&alpaca, state.path(), d("2026-11-25"), d("2027-01-29")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("Alpaca's answer to /v2/calendar is malformed: "),
            "{text}"
        );
        assert!(text.contains(expected), "{expected:?} not in {text}");
        for elsewhere in ["network", "credential", "keys"] {
            assert!(!text.contains(elsewhere), "{elsewhere:?} in {text}");
        }
        // Execution start logs the same words, and goes on.
        let (check, logged) =
            capture_warnings(|| check_calendar_and_log(&alpaca, state.path(), d("2026-11-30")));
        assert!(check.is_none());
        assert!(logged.contains(expected), "{logged}");
        assert!(!logged.contains("network"), "{logged}");
    }

    // Extra fields the spec does not list yet are ignored.
    fake.set_quirks(Quirks {
        extra_fields: true,
        ..Quirks::default()
    });
    fake.set_calendar(avwap_days("2026-11-01", "2027-02-28"));
    let check = sync_calendar(&alpaca, state.path(), d("2026-11-25"), d("2027-01-29")).unwrap();
    assert_eq!(check.source, CalendarSource::Fetched);
    assert_eq!(check.mismatches, vec![]);
    fake_alpaca::contract::assert_all_conform(&fake.requests());
}

fn universe_options(state: &std::path::Path, min_members: usize) -> LoadOptions {
    let mut options = LoadOptions::new(None, state);
    options.min_members = min_members;
    options
}

fn now() -> DateTime<Utc> {
    "2026-11-30T13:00:00Z".parse().unwrap()
}

#[test]
fn the_asset_list_is_the_last_universe_fallback() {
    let fake = FakeAlpaca::start();
    let mut assets = vec![
        FakeAsset::equity("AAPL", "NASDAQ"),
        FakeAsset::equity("BRK.B", "NYSE"),
        FakeAsset::equity("SPY", "ARCA"),
        FakeAsset::equity("IWM", "NYSEARCA"),
        FakeAsset::equity("CBOE", "BATS"),
        FakeAsset::equity("IMO", "AMEX"),
        FakeAsset::equity("GBTC", "OTC"),
    ];
    let mut inactive = FakeAsset::equity("GONE", "NYSE");
    inactive.status = "inactive".into();
    let mut untradable = FakeAsset::equity("HALT", "NASDAQ");
    untradable.tradable = false;
    let mut crypto = FakeAsset::equity("BTC/USD", "CRYPTO");
    crypto.class = "crypto".into();
    assets.extend([inactive, untradable, crypto]);
    fake.set_assets(assets);
    let state = tempfile::tempdir().unwrap();
    let alpaca = client(&fake);
    let mut fallback = AlpacaAssetsFallback::new(&alpaca);

    let out = load_universe(
        &universe_options(state.path(), 5),
        now(),
        Some(&mut fallback),
    )
    .unwrap();
    assert_eq!(
        out.universe.source,
        UniverseSource::Fallback(FALLBACK_NAME.to_string())
    );
    assert!(out.universe.source.is_degraded());
    let symbols: Vec<&str> = out.universe.symbols().collect();
    assert_eq!(symbols, ["AAPL", "BRK.B", "CBOE", "IMO", "IWM", "SPY"]);
    assert_eq!(out.universe.members[0].name, "AAPL Inc. Common Stock");
    assert!(out
        .universe
        .members
        .iter()
        .all(|m| m.sector.is_empty() && m.weight.is_none()));
    assert!(
        out.skipped.iter().any(|s| s.contains("no cached copy")),
        "{:?}",
        out.skipped
    );
    let request = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/v2/assets")
        .unwrap();
    assert_eq!(
        request.query,
        vec![
            ("status".to_string(), "active".to_string()),
            ("asset_class".to_string(), "us_equity".to_string())
        ]
    );
    // A fallback list is not cached as holdings.
    assert!(!state.path().join(avwap::universe::CACHE_FILE).exists());

    // min_members still applies to the fallback.
    let err = load_universe(
        &universe_options(state.path(), 7),
        now(),
        Some(&mut fallback),
    )
    .unwrap_err();
    let UniverseError::NoSource { attempts, .. } = &err;
    assert!(
        attempts.iter().any(|a| a.contains("only 6 valid symbols")),
        "{err}"
    );
    fake_alpaca::contract::assert_all_conform(&fake.requests());
}

#[test]
fn an_unreachable_asset_list_is_reported_with_the_other_sources() {
    let fake = FakeAlpaca::start();
    fake.inject("GET", "/v2/assets", Fault::Status(502), 100);
    let state = tempfile::tempdir().unwrap();
    let alpaca = client(&fake);
    let mut fallback = AlpacaAssetsFallback::new(&alpaca);
    let err = load_universe(
        &universe_options(state.path(), 1),
        now(),
        Some(&mut fallback),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("fallback alpaca assets"), "{text}");
    assert!(text.contains("502"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
    assert_eq!(fake.count("GET", "/v2/assets"), 4, "1 try + 3 retries");
    fake_alpaca::contract::assert_all_conform(&fake.requests());
}
