//! The real `avwap-execution` binary in the Alpaca modes against the fake Alpaca server on
//! loopback: alpaca-paper places, protects and never duplicates; dry-run reads real data and
//! never touches the Trading API; alpaca-live refuses without its separate confirmation;
//! missing keys, unreachable servers and the wrong environment fail fast before any order.

use super::fake_alpaca;

use avwap::watchlist::WatchlistRow;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use fake_alpaca::{FakeAlpaca, FakeBar, ACCOUNT_NUMBER, KEY_ID, SECRET};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub(super) const EXEC: &str = env!("CARGO_BIN_EXE_avwap-execution");
const SCAN: &str = env!("CARGO_BIN_EXE_avwap-scan");
pub(super) const DAY: &str = "2010-08-09";

fn day() -> NaiveDate {
    DAY.parse().unwrap()
}

pub(super) fn at(time: &str) -> DateTime<Utc> {
    let t = NaiveTime::parse_from_str(time, "%H:%M").unwrap();
    avwap::calendar::ny_instant(day(), t)
}

pub(super) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A state directory with the demo watchlist for 2010-08-09 (the real scanner, offline).
pub(super) fn state_with_watchlist() -> (tempfile::TempDir, Vec<WatchlistRow>) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(SCAN)
        .args(["--demo", "--as-of", DAY, "--state-dir"])
        .arg(dir.path())
        .env_remove("AVWAP_CONFIG")
        .env_remove("AVWAP_STATE_DIR")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "scan: {}", stderr(&out));
    let rows = avwap::watchlist::read_watchlist(&dir.path().join("daily_candidates.csv")).unwrap();
    assert!(!rows.is_empty(), "the demo scan for {DAY} gave no rows");
    (dir, rows)
}

/// A configuration pointing `mode` at the fake (or at `trading`/`data` when given).
pub(super) fn config(dir: &Path, mode: &str, trading: &str, data: &str) -> PathBuf {
    let path = dir.join("avwap.toml");
    std::fs::write(
        &path,
        format!(
            "mode = \"{mode}\"\n[alpaca]\ntrading_url = \"{trading}\"\nlive_trading_url = \"{trading}\"\ndata_url = \"{data}\"\n"
        ),
    )
    .unwrap();
    path
}

pub(super) fn exec(config: &Path, state: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(EXEC);
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .env_remove("AVWAP_CONFIG")
        .env_remove("AVWAP_STATE_DIR")
        .env_remove("AVWAP_MODE")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("AVWAP_TEST_CRASH_AT")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("AVWAP_LIVE_ACCOUNT")
        .env("APCA_API_KEY_ID", KEY_ID)
        .env("APCA_API_SECRET_KEY", SECRET)
        .env("RUST_LOG", "info")
        .env("AVWAP_LOG_FORMAT", "text");
    cmd
}

pub(super) fn cycle(config: &Path, state: &Path, time: &str) -> Output {
    let when = format!("{DAY}T{time}");
    exec(config, state, &["--once", "--at", &when])
        .output()
        .unwrap()
}

fn bar(start: &str, close: f64) -> FakeBar {
    FakeBar {
        t: at(start),
        o: close * 0.999,
        h: close * 1.001,
        l: close * 0.998,
        c: close,
        v: 50_000,
    }
}

/// 10-minute bars of `row` that break out above its entry level and hold (09:30–09:50), and a
/// latest trade at 10:04 just above it.
pub(super) fn breakout(fake: &FakeAlpaca, row: &WatchlistRow) -> f64 {
    let entry = row.entry_level.to_f64().unwrap();
    let (first, second) = (entry * 1.004, entry * 1.005);
    fake.set_intraday_bars(
        &row.symbol,
        vec![
            bar("09:30", entry * 0.99),
            bar("09:40", first),
            bar("09:50", second),
        ],
    );
    fake.set_latest_trade(&row.symbol, at("10:04"), second, 100);
    second
}

/// A row whose stop lies clearly below its entry level (some demo rows have the stop above
/// the level, which the engine rightly skips as `risk_invalid` at the level's price).
pub(super) fn tradable(rows: &[WatchlistRow]) -> &WatchlistRow {
    let below = Decimal::new(995, 3);
    rows.iter()
        .find(|r| r.stop_loss < r.entry_level * below)
        .expect("a demo row with its stop below the entry level")
}

fn order_posts(fake: &FakeAlpaca) -> Vec<serde_json::Value> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v2/orders")
        .filter_map(|r| r.body)
        .collect()
}

fn no_secret_in(text: &str) {
    assert!(!text.contains(SECRET), "the secret key leaked: {text}");
}

#[test]
fn paper_enters_once_protects_the_fill_and_never_duplicates() {
    let fake = FakeAlpaca::start();
    let (dir, rows) = state_with_watchlist();
    let row = tradable(&rows);
    let price = breakout(&fake, row);
    let cfg = config(dir.path(), "alpaca-paper", &fake.url(), &fake.url());

    let out = cycle(&cfg, dir.path(), "10:05");
    assert!(out.status.success(), "{}", stderr(&out));
    no_secret_in(&stderr(&out));
    let posts = order_posts(&fake);

    assert_eq!(posts.len(), 1, "one entry order: {posts:?}");
    let entry = &posts[0];
    let client_id = entry["client_order_id"].as_str().unwrap().to_string();
    assert!(
        client_id.starts_with(&format!("avw-20100809-{}-en-", row.symbol)),
        "{client_id}"
    );
    assert_eq!(entry["side"], "buy");
    assert_eq!(entry["type"], "limit");
    assert_eq!(entry["time_in_force"], "day");
    // Decimal strings, whole shares, a tick-size limit price.
    let qty: Decimal = entry["qty"].as_str().unwrap().parse().unwrap();
    assert!(qty > Decimal::ZERO && qty.fract().is_zero(), "{qty}");
    let limit: Decimal = entry["limit_price"].as_str().unwrap().parse().unwrap();
    assert!(limit.scale() <= 2, "limit {limit} is not on a cent tick");
    assert!(
        limit.to_f64().unwrap() >= price,
        "a marketable limit: {limit} vs {price}"
    );

    // At start Alpaca's calendar is fetched, cached and compared with ours.
    assert_eq!(fake.count("GET", "/v2/calendar"), 1);
    assert!(dir.path().join("alpaca_calendar.json").exists());

    // The same cycle again (a restart): no second order.
    let out = cycle(&cfg, dir.path(), "10:05");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(order_posts(&fake).len(), 1, "a rerun must not resend");

    // Alpaca fills it in two parts; the next cycles protect exactly the filled shares.
    let order = fake.order_by_client_id(&client_id).unwrap();
    let half = (qty / Decimal::from(2)).floor();
    fake.fill(&order.id, half, limit);
    let out = cycle(&cfg, dir.path(), "10:15");
    assert!(out.status.success(), "{}", stderr(&out));
    fake.fill(&order.id, qty - half, limit);
    let out = cycle(&cfg, dir.path(), "10:25");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cycle(&cfg, dir.path(), "10:35");
    assert!(out.status.success(), "{}", stderr(&out));

    let orders = fake.orders();
    let entries: Vec<_> = orders.iter().filter(|o| o.side == "buy").collect();
    assert_eq!(entries.len(), 1, "{orders:?}");
    let open_stops: Vec<_> = orders
        .iter()
        .filter(|o| {
            o.side == "sell"
                && o.order_type == "stop"
                && matches!(o.status.as_str(), "new" | "accepted")
        })
        .collect();
    assert_eq!(open_stops.len(), 1, "one live stop: {orders:?}");
    let stop = open_stops[0];
    assert_eq!(stop.qty, qty, "the stop covers the whole position");
    assert_eq!(stop.time_in_force, "gtc");
    assert!(stop.stop_price.unwrap().scale() <= 2);
    assert_eq!(fake.position(&row.symbol).unwrap().0, qty);
    // Every order at the broker carries one of our ids and is known to the state database.
    let db = avwap::execution::db::StateDb::open(&dir.path().join("execution.sqlite")).unwrap();
    let known: Vec<String> = db
        .all_orders()
        .unwrap()
        .into_iter()
        .map(|o| o.order.client_order_id)
        .collect();
    for o in &orders {
        assert!(
            known.contains(&o.client_order_id),
            "{} unknown",
            o.client_order_id
        );
    }
    let fills: Decimal = db
        .fills()
        .unwrap()
        .iter()
        .filter(|f| f.client_order_id == client_id)
        .map(|f| f.qty)
        .sum();
    assert_eq!(fills, qty, "both partial fills recorded once");

    // The report reads the same database.
    let out = exec(&cfg, dir.path(), &["report", "--date", DAY, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report.to_string().contains(&client_id), "{report}");
    fake_alpaca::contract::assert_all_conform(&fake.requests());
}

#[test]
fn dry_run_reads_alpaca_data_and_never_calls_the_trading_api() {
    let fake = FakeAlpaca::start();
    let (dir, rows) = state_with_watchlist();
    let row = tradable(&rows);
    breakout(&fake, row);
    // The trading URL is unroutable on purpose: dry-run must never need it.
    let cfg = config(dir.path(), "dry-run", "http://127.0.0.1:9", &fake.url());
    for time in ["10:05", "10:15", "10:25"] {
        let out = cycle(&cfg, dir.path(), time);
        assert!(out.status.success(), "{time}: {}", stderr(&out));
    }
    let requests = fake.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert!(
            r.path.starts_with("/v2/stocks/"),
            "dry-run sent {} {} to Alpaca",
            r.method,
            r.path
        );
    }
    assert!(dir.path().join("dry_run_broker.sqlite").exists());
    assert!(!dir.path().join("sim_broker.sqlite").exists());
    let db = avwap::execution::db::StateDb::open(&dir.path().join("execution.sqlite")).unwrap();
    let orders = db.all_orders().unwrap();
    assert!(
        orders.iter().any(|o| o
            .order
            .client_order_id
            .contains(&format!("-{}-en-", row.symbol))),
        "the entry is recorded: {orders:?}"
    );
    fake_alpaca::contract::assert_all_conform(&fake.requests());
}

/// dry-run checks the keys with one data request before anything exists: refused keys (401)
/// or data (403) end the start with exit 12; no answer (5xx, timeout) starts anyway.
#[test]
fn dry_run_refused_keys_exit_12_at_start_and_an_outage_still_starts() {
    let fake = FakeAlpaca::start();
    let (dir, rows) = state_with_watchlist();
    let cfg = config(dir.path(), "dry-run", "http://127.0.0.1:9", &fake.url());
    let when = format!("{DAY}T10:05");
    let latest = "/v2/stocks/trades/latest";

    // Wrong secret: the fake answers 401.
    let state = dir.path().join("refused");
    let out = exec(&cfg, &state, &["--once", "--at", &when])
        .env("APCA_API_SECRET_KEY", "WRONG-secret-zq8Xw3vLeak-other")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("refused the start check")
            && text.contains("HTTP 401")
            && text.contains("Nothing was started"),
        "{text}"
    );
    assert!(!text.contains("WRONG-secret"), "{text}");
    assert!(!state.exists(), "nothing may be created before the check");
    let sent: Vec<_> = fake.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(sent, vec![latest.to_string()], "one request, then the end");

    // A proxy answering 403 with the request headers in its page: exit 12, no key shown.
    fake.inject(
        "GET",
        latest,
        fake_alpaca::Fault::ReflectHeaders {
            status: 403,
            json: false,
        },
        1,
    );
    let out = exec(&cfg, &state, &["--once", "--at", &when])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    no_secret_in(&stderr(&out));
    assert!(!stderr(&out).contains(KEY_ID), "{}", stderr(&out));
    assert!(!state.exists());

    // No answer (503 on every try): the service starts and the cycle runs.
    fake.inject("GET", latest, fake_alpaca::Fault::Status(503), 4);
    let row = tradable(&rows);
    breakout(&fake, row);
    let out = exec(&cfg, &state, &["--once", "--at", &when])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("starting anyway"), "{}", stderr(&out));
    assert!(state.join("execution.sqlite").exists());
    fake_alpaca::contract::assert_all_conform(&fake.requests());
}

#[test]
fn live_refuses_without_or_with_a_wrong_confirmation_and_runs_with_the_right_one() {
    let fake = FakeAlpaca::start();
    let (dir, _) = state_with_watchlist();
    let cfg = config(dir.path(), "alpaca-live", &fake.url(), &fake.url());
    let state = dir.path().join("live-state");

    let out = exec(&cfg, &state, &["--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("alpaca-live-account"),
        "{}",
        stderr(&out)
    );
    assert!(
        fake.requests().is_empty(),
        "nothing may be sent without the confirmation"
    );
    assert!(!state.exists());

    let out = exec(&cfg, &state, &["--once"])
        .env("AVWAP_LIVE_ACCOUNT", "PA0000WRONG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not match"), "{}", stderr(&out));
    assert!(!stderr(&out).contains(ACCOUNT_NUMBER), "{}", stderr(&out));
    let sent: Vec<_> = fake.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        sent,
        vec!["/v2/account".to_string()],
        "only the account was read"
    );
    assert!(!state.exists());

    // With the right number one cycle runs (on the wall clock: `--at` is refused in live).
    let when = format!("{DAY}T10:05");
    let out = exec(&cfg, &state, &["--once", "--at", &when])
        .env("AVWAP_LIVE_ACCOUNT", ACCOUNT_NUMBER)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(10),
        "--at in live: {}",
        stderr(&out)
    );
    let out = exec(&cfg, &state, &["--once"])
        .env("AVWAP_LIVE_ACCOUNT", ACCOUNT_NUMBER)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // The watchlist is from 2010, so no entries: the live cycle only read.
    assert!(order_posts(&fake).is_empty());
    assert!(state.join("execution.sqlite").exists());
    fake_alpaca::contract::assert_all_conform(&fake.requests());
}

#[test]
fn unreachable_alpaca_fails_fast_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // Port 9 (discard) on loopback: connection refused.
    let cfg = config(
        dir.path(),
        "alpaca-paper",
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
    );
    let started = Instant::now();
    let out = exec(&cfg, &state, &["--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(stderr(&out).contains("127.0.0.1:9"), "{}", stderr(&out));
    no_secret_in(&stderr(&out));
    assert!(!state.exists());
}

#[test]
fn paper_refuses_the_live_host_before_sending_anything() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let cfg = config(
        dir.path(),
        "alpaca-paper",
        "https://api.alpaca.markets",
        "https://data.alpaca.markets",
    );
    let started = Instant::now();
    let out = exec(&cfg, &state, &["--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(stderr(&out).contains("LIVE"), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!state.exists());
}

#[test]
fn a_state_dir_with_open_sim_positions_is_not_reconciled_against_alpaca() {
    let fake = FakeAlpaca::start();
    let (dir, rows) = state_with_watchlist();
    // Sim trades the demo day and carries positions overnight.
    let sim_cfg = config(dir.path(), "sim", &fake.url(), &fake.url());
    let out = exec(&sim_cfg, dir.path(), &["simulate", "--date", DAY])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let db = avwap::execution::db::StateDb::open(&dir.path().join("execution.sqlite")).unwrap();
    let open = db.open_positions().unwrap().len() + db.open_orders().unwrap().len();
    drop(db);
    assert!(
        open > 0,
        "the demo day should leave positions or stops open"
    );
    let _ = rows;

    let cfg = config(dir.path(), "alpaca-paper", &fake.url(), &fake.url());
    let out = cycle(&cfg, dir.path(), "10:05");
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("last run in mode sim"),
        "{}",
        stderr(&out)
    );
    assert!(order_posts(&fake).is_empty());
    fake_alpaca::contract::assert_all_conform(&fake.requests());
}

#[test]
fn the_broker_side_kill_switch_suspends_and_entries_respect_it() {
    let fake = FakeAlpaca::start();
    let (dir, rows) = state_with_watchlist();
    let row = tradable(&rows);
    breakout(&fake, row);
    let cfg = config(dir.path(), "alpaca-paper", &fake.url(), &fake.url());

    let out = exec(&cfg, dir.path(), &["suspend-trading"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUSPENDED"));
    let patch: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path == "/v2/account/configurations")
        .collect();
    assert_eq!(patch.len(), 1);
    assert_eq!(
        patch[0].body,
        Some(serde_json::json!({"suspend_trade": true}))
    );

    // Suspended: the breakout is skipped with its reason, nothing is sent.
    let out = cycle(&cfg, dir.path(), "10:05");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(order_posts(&fake).is_empty());
    let out = exec(&cfg, dir.path(), &["report", "--date", DAY, "--json"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("broker_suspended"));

    let out = exec(&cfg, dir.path(), &["suspend-trading", "--resume"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("allowed"));
    let out = cycle(&cfg, dir.path(), "10:15");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(order_posts(&fake).len(), 1, "entries resume");

    // Sim and dry-run have no broker account to suspend.
    let sim = config(dir.path(), "sim", &fake.url(), &fake.url());
    let out = exec(&sim, dir.path(), &["suspend-trading"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(stderr(&out).contains("KILL_SWITCH"), "{}", stderr(&out));
    fake_alpaca::contract::assert_all_conform(&fake.requests());
}
