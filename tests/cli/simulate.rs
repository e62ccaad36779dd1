//! `avwap-execution simulate` and `report` as an operator runs them, from a fresh directory,
//! offline: two simulated sessions of the demo data (2010-08-09 and 2010-08-10) with entries,
//! stops, a trim and exits; a SIGKILL at the first trim send followed by a restart gives the
//! same outcome; `report` on an empty state directory is an input error (13); `report` gives
//! New York times, each candidate's reason, positions replayed from the fills that match the
//! journal, a range summary with totals, and refuses bad dates with exit 10.

use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const EXEC: &str = env!("CARGO_BIN_EXE_avwap-execution");
const FIRST: &str = "2010-08-09";
const DAYS: [&str; 2] = ["2010-08-09", "2010-08-10"];
const SIGKILL: i32 = 9;

/// The binary with a clean environment: no AVWAP_* variable, no sd_notify socket or watchdog
/// inherited from the test's environment; warnings only in the log.
pub(super) fn exec(cwd: &Path) -> Command {
    let mut cmd = Command::new(EXEC);
    cmd.current_dir(cwd);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AVWAP_") {
            cmd.env_remove(&name);
        }
    }
    cmd.env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env("RUST_LOG", "warn");
    cmd
}

pub(super) fn describe(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn simulate(cwd: &Path, state: &str, crash_at: Option<&str>) -> Output {
    let mut cmd = exec(cwd);
    cmd.args([
        "simulate",
        "--date",
        FIRST,
        "--days",
        "2",
        "--state-dir",
        state,
    ]);
    if let Some(point) = crash_at {
        cmd.env("AVWAP_TEST_CRASH_AT", point);
    }
    cmd.output().expect("run avwap-execution simulate")
}

fn report(cwd: &Path, state: &str, day: &str) -> Value {
    let out = exec(cwd)
        .args(["report", "--date", day, "--json", "--state-dir", state])
        .output()
        .expect("run avwap-execution report");
    assert!(out.status.success(), "report {day}: {}", describe(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("report {day}: {e}"))
}

/// A fresh directory for one run (under Cargo's per-target temporary directory).
fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("simulate_cli")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Directories `<name>-<pid>` left by test processes that are gone (a static is never
/// dropped, so run A's directory outlives its process).
fn remove_stale(name: &str) {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("simulate_cli");
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let pid = file.strip_prefix(name).and_then(|r| r.strip_prefix('-'));
        if let Some(pid) = pid {
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Run A: the two days without interruption, once per test process.
fn run_a() -> &'static (PathBuf, Vec<Value>) {
    static A: OnceLock<(PathBuf, Vec<Value>)> = OnceLock::new();
    A.get_or_init(|| {
        remove_stale("A");
        let cwd = fresh_dir("A");
        let out = simulate(&cwd, "A", None);
        assert!(out.status.success(), "simulate A: {}", describe(&out));
        let reports = DAYS.iter().map(|day| report(&cwd, "A", day)).collect();
        (cwd, reports)
    })
}

fn items<'a>(report: &'a Value, key: &str) -> &'a Vec<Value> {
    report[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not a list"))
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn dec(v: &Value, key: &str) -> f64 {
    v[key]
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v[key].as_f64())
        .unwrap_or(0.0)
}

/// The leg of one of our client order ids: `avw-YYYYMMDD-SYMBOL-<leg>-<attempt>`.
fn leg(client_order_id: &str) -> &str {
    let mut parts = client_order_id.rsplit('-');
    parts.next();
    parts.next().unwrap_or("")
}

#[test]
fn simulated_days_show_entries_stops_a_trim_and_exits() {
    let (_, reports) = run_a();
    let orders: Vec<&Value> = reports.iter().flat_map(|r| items(r, "orders")).collect();
    let fills: Vec<&Value> = reports.iter().flat_map(|r| items(r, "fills")).collect();
    let filled = |want: &dyn Fn(&str) -> bool| {
        orders
            .iter()
            .filter(|o| want(leg(str_of(o, "client_order_id"))) && dec(o, "filled_qty") > 0.0)
            .count()
    };
    for (day, r) in DAYS.iter().zip(reports) {
        assert_eq!(str_of(r, "date"), *day);
        assert!(
            !items(r, "entries_taken").is_empty(),
            "{day}: no entry decision"
        );
        assert!(
            r["skipped_by_reason"]
                .as_object()
                .is_some_and(|m| !m.is_empty()),
            "{day}: no skip reasons"
        );
    }
    assert!(filled(&|l| l == "en") >= 2, "entries filled");
    assert!(
        orders
            .iter()
            .any(|o| leg(str_of(o, "client_order_id")).starts_with("st")
                && str_of(o, "order_type") == "stop"),
        "protective stops"
    );
    assert!(filled(&|l| l == "tr") >= 1, "a trim filled");
    let exits = filled(&|l| l == "ex") + filled(&|l| l.starts_with("st"));
    assert!(exits >= 1, "an exit or a stop-out filled");
    assert!(
        fills.iter().any(|f| str_of(f, "side") == "buy")
            && fills.iter().any(|f| str_of(f, "side") == "sell"),
        "buys and sells recorded"
    );
    // Positions carried over: the second day's report has positions opened on the first.
    assert!(items(&reports[1], "positions")
        .iter()
        .any(|p| str_of(p, "opened_session") == DAYS[0]));
    assert!(items(&reports[1], "positions")
        .iter()
        .any(|p| str_of(p, "status") == "closed" && dec(p, "realized_pnl") != 0.0));
}

#[test]
fn report_of_the_first_day_lists_only_what_existed_that_day() {
    // The second day opens new positions (and their stops); the first day's report must not
    // show them.
    let (_, reports) = run_a();
    let first = &reports[0];
    let later: Vec<&Value> = items(first, "positions")
        .iter()
        .filter(|p| str_of(p, "opened_session") > DAYS[0])
        .collect();
    assert!(
        later.is_empty(),
        "{}'s report lists positions opened later: {later:#?}",
        DAYS[0]
    );
    let later_stops: Vec<&Value> = items(first, "stops")
        .iter()
        .filter(|s| !str_of(s, "client_order_id").contains("-20100809-"))
        .collect();
    assert!(
        later_stops.is_empty(),
        "{}'s report lists stops placed later: {later_stops:#?}",
        DAYS[0]
    );
}

/// The parts of a day's report that describe the trading outcome.
///
/// Compared in full: orders (client order id, symbol, side, type, qty, filled qty, average
/// fill price, limit and stop prices, status), positions, protective stops, realized P&L,
/// and the entry decisions and each symbol's last skip reason. Left out:
/// - `fills[].at`: the instant the fill was *recorded* (the cycle that saw it), not when it
///   happened; after a restart a fill may be recorded by a different cycle than it would
///   have been without the crash;
/// - `entries_taken[].at`: decision stamps, for the same reason;
/// - `events` and `skipped_by_reason`: counts of log lines; the interrupted cycle is run again
///   after the restart, so its skip events are written twice and the lookups of the order
///   whose answer was lost add `order_resolved` events. They are not the outcome.
fn outcome(report: &Value) -> Value {
    let strip = |list: &Vec<Value>, key: &str| -> Vec<Value> {
        list.iter()
            .map(|v| {
                let mut v = v.clone();
                if let Some(m) = v.as_object_mut() {
                    m.remove(key);
                }
                v
            })
            .collect()
    };
    serde_json::json!({
        "date": report["date"],
        "orders": report["orders"],
        "fills": strip(items(report, "fills"), "at"),
        "positions": report["positions"],
        "stops": report["stops"],
        "realized_pnl_today": report["realized_pnl_today"],
        "entries_taken": strip(items(report, "entries_taken"), "at"),
        "last_skip_by_symbol": report["last_skip_by_symbol"],
    })
}

/// Per section: the entries only in the run without the crash (`-`) and only in the run
/// with it (`+`).
fn differences(want: &Value, got: &Value) -> String {
    let mut out = String::new();
    for (key, w) in want.as_object().unwrap() {
        let g = &got[key];
        if w == g {
            continue;
        }
        match (w.as_array(), g.as_array()) {
            (Some(w), Some(g)) => {
                for v in w.iter().filter(|v| !g.contains(v)) {
                    out.push_str(&format!("- {key}: {v}\n"));
                }
                for v in g.iter().filter(|v| !w.contains(v)) {
                    out.push_str(&format!("+ {key}: {v}\n"));
                }
            }
            _ => out.push_str(&format!("- {key}: {w}\n+ {key}: {g}\n")),
        }
    }
    out
}

#[test]
fn sigkill_at_the_first_trim_send_then_restart_changes_nothing() {
    let cwd = fresh_dir("B");
    let crashed = simulate(&cwd, "B", Some("sent:tr"));
    assert_eq!(
        crashed.status.signal(),
        Some(SIGKILL),
        "the run must kill itself at the trim send: {}",
        describe(&crashed)
    );
    assert!(String::from_utf8_lossy(&crashed.stderr).contains("AVWAP_TEST_CRASH_AT=sent:tr"));
    // Killed in the middle of a session: some of the first day was recorded, not all of it.
    let partial = report(&cwd, "B", DAYS[0]);
    assert!(!items(&partial, "orders").is_empty());

    let restarted = simulate(&cwd, "B", None);
    assert!(restarted.status.success(), "{}", describe(&restarted));

    let (_, a) = run_a();
    for (i, day) in DAYS.iter().enumerate() {
        let b = report(&cwd, "B", day);
        let (want, got) = (outcome(&a[i]), outcome(&b));
        assert!(
            want == got,
            "{day}: the crash and restart changed the outcome:\n{}",
            differences(&want, &got)
        );
    }
    let _ = std::fs::remove_dir_all(&cwd);
}

#[test]
fn report_on_an_empty_state_dir_is_a_clear_input_error() {
    let cwd = fresh_dir("empty");
    std::fs::create_dir_all(cwd.join("state")).unwrap();
    let out = exec(&cwd)
        .args(["report", "--date", FIRST, "--json", "--state-dir", "state"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(13), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no execution database") && stderr.contains("state"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no partial JSON on stdout");
    assert_eq!(
        std::fs::read_dir(cwd.join("state")).unwrap().count(),
        0,
        "report created files"
    );
    let _ = std::fs::remove_dir_all(&cwd);
}

/// One `avwap-execution --once` cycle in sim mode at `at` (New York wall time).
fn once(cwd: &Path, state: &str, at: &str) {
    let out = exec(cwd)
        .args(["--mode", "sim", "--once", "--at", at, "--state-dir", state])
        .output()
        .expect("run avwap-execution --once");
    assert!(out.status.success(), "--once at {at}: {}", describe(&out));
}

#[test]
fn every_cycle_records_the_broker_against_the_journal_and_a_lost_journal_is_rebuilt() {
    use avwap::execution::db::{StateDb, DB_FILE};
    use avwap::execution::verdict::RowStatus;
    let (cwd, _) = run_a();
    // After two simulated days every position at the broker is ours and covered by its stop.
    let a = StateDb::open_read_only_current(&cwd.join("A").join(DB_FILE)).unwrap();
    let end = a
        .last_verdict()
        .unwrap()
        .expect("the service recorded a verdict");
    drop(a);
    assert!(end.broker_positions_read && end.open_orders_read, "{end:?}");
    assert!(
        !end.rows.is_empty(),
        "positions are held overnight: {end:?}"
    );
    for row in &end.rows {
        assert_eq!(row.status, RowStatus::Ok, "{row:?}");
        assert_eq!(row.broker_qty, Some(row.owned_qty), "{row:?}");
        assert!(row.stops_cover(), "{row:?}");
    }

    // The execution database is lost; the broker's book (and the prices) remain.
    let lost = fresh_dir("lost");
    std::fs::create_dir_all(lost.join("L")).unwrap();
    for file in [
        avwap::execution::service::SIM_BROKER_FILE,
        avwap::market_data::BAR_STORE_FILE,
    ] {
        std::fs::copy(cwd.join("A").join(file), lost.join("L").join(file)).unwrap();
    }
    once(&lost, "L", "2010-08-11T10:00");
    once(&lost, "L", "2010-08-11T10:10");
    let db = StateDb::open_read_only_current(&lost.join("L").join(DB_FILE)).unwrap();
    let v = db.last_verdict().unwrap().expect("a verdict");
    assert_eq!(v.at.to_rfc3339(), "2010-08-11T14:10:00+00:00");
    let symbols = |v: &avwap::execution::verdict::Verdict| {
        v.rows.iter().map(|r| r.symbol.clone()).collect::<Vec<_>>()
    };
    // The broker is the source of truth: the first cycle without the journal rebuilds every
    // position from our orders found at the broker (their working stops adopted by id), so the
    // journal owns again exactly what the broker holds. (A position may have been sold since
    // the end of day two: the strategy manages it again.)
    let before = symbols(&end);
    assert!(
        symbols(&v).iter().all(|s| before.contains(s)),
        "{:?} vs {before:?}",
        symbols(&v)
    );
    assert!(!v.rows.is_empty(), "positions are still held: {v:?}");
    for row in &v.rows {
        assert_eq!(row.status, RowStatus::Ok, "{row:?}");
        assert_eq!(row.broker_qty, Some(row.owned_qty), "{row:?}");
        assert!(row.stops_cover(), "{row:?}");
    }
    let recovered = db
        .events(None)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "position_recovered")
        .count();
    assert_eq!(
        recovered,
        before.len(),
        "one recovery per position held at the loss"
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&lost);
}

#[test]
fn report_times_are_new_york_each_candidate_has_its_reason_and_the_replay_matches_the_journal() {
    use avwap::execution::db::{StateDb, DB_FILE};
    use avwap::execution::report::{holdings_at, Journal};
    let (cwd, reports) = run_a();
    for (day, r) in DAYS.iter().zip(reports) {
        assert_eq!(str_of(r, "time_zone"), "America/New_York");
        assert_eq!(str_of(&r["as_of"], "basis"), "at_close", "{day}");
        // August: EDT.
        for f in items(r, "fills") {
            assert!(str_of(f, "at").ends_with("-04:00"), "{day}: {f}");
        }
        // Every watchlist row was decided on (20 a day), each entered or with its reason.
        let candidates = items(r, "candidates");
        assert_eq!(candidates.len(), 20, "{day}");
        for c in candidates {
            match str_of(c, "outcome") {
                "entered" => assert!(!str_of(c, "entered_at").is_empty(), "{c}"),
                _ => {
                    assert!(!str_of(c, "last_reason").is_empty(), "{c}");
                    assert!(c["cycles_with_last_reason"].as_u64() >= Some(1), "{c}");
                }
            }
        }
        assert_eq!(
            candidates
                .iter()
                .filter(|c| str_of(c, "outcome") == "entered")
                .count(),
            items(r, "entries_taken").len(),
            "{day}"
        );
    }
    // Replayed to now, the fills give exactly the positions the journal holds.
    let db = StateDb::open_read_only_current(&cwd.join("A").join(DB_FILE)).unwrap();
    let journal = Journal::read(&db).unwrap();
    let far = "2030-01-01T00:00:00Z".parse().unwrap();
    let replayed: Vec<_> = holdings_at(&journal.fills, far)
        .into_iter()
        .filter(|h| h.open())
        .map(|h| {
            (
                h.symbol,
                h.qty,
                h.avg_price,
                h.opened_session,
                h.realized_pnl,
            )
        })
        .collect();
    let mut held: Vec<_> = db
        .open_positions()
        .unwrap()
        .into_iter()
        .map(|p| {
            (
                p.symbol,
                p.qty,
                p.avg_price,
                p.opened_session,
                p.realized_pnl,
            )
        })
        .collect();
    held.sort_by(|a, b| {
        let key = |s: &str| replayed.iter().position(|r| r.0 == s);
        key(&a.0).cmp(&key(&b.0))
    });
    assert!(!held.is_empty());
    assert_eq!(replayed, held);
    // Day two's open positions at its close are those same positions.
    let open: Vec<&str> = items(&reports[1], "positions")
        .iter()
        .filter(|p| str_of(p, "status") == "open")
        .map(|p| str_of(p, "symbol"))
        .collect();
    assert_eq!(open, held.iter().map(|h| h.0.as_str()).collect::<Vec<_>>());
}

fn report_args(cwd: &Path, args: &[&str]) -> Output {
    exec(cwd)
        .args(["report", "--state-dir", "A"])
        .args(args)
        .output()
        .expect("run avwap-execution report")
}

#[test]
fn report_of_a_range_summarises_each_session_and_totals_them() {
    let (cwd, reports) = run_a();
    let out = report_args(
        cwd,
        &["--from", "2010-08-07", "--to", "2010-08-10", "--json"],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sessions = items(&r, "sessions");
    // Saturday and Sunday are not sessions.
    let dates: Vec<&str> = sessions.iter().map(|s| str_of(s, "date")).collect();
    assert_eq!(dates, DAYS);
    for (s, day) in sessions.iter().zip(reports) {
        assert_eq!(dec(s, "realized_pnl"), dec(day, "realized_pnl_today"));
        let open = items(day, "positions")
            .iter()
            .filter(|p| str_of(p, "status") == "open")
            .count();
        assert_eq!(items(s, "open_at_close").len(), open);
    }
    let totals = &r["totals"];
    let sum: f64 = sessions.iter().map(|s| dec(s, "realized_pnl")).sum();
    assert!((dec(totals, "realized_pnl") - sum).abs() < 1e-9);
    assert!(totals["entries"].as_u64() >= Some(2), "{totals}");

    let out = report_args(cwd, &["--from", "2010-08-09", "--to", "2010-08-10"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("avwap execution report 2010-08-09..2010-08-10: 2 session(s)"),
        "{text}"
    );
    assert!(text.contains("\n  total "), "{text}");
}

#[test]
fn report_refuses_bad_dates_with_exit_10() {
    let (cwd, _) = run_a();
    for (args, says) in [
        (
            &["--from", "2010-08-10", "--to", "2010-08-09"][..],
            "ends before it starts",
        ),
        (
            &["--from", "2010-08-07", "--to", "2010-08-08"][..],
            "no NYSE session",
        ),
        (
            &["--from", "2010-08-09", "--to", "2099-01-04"][..],
            "is after today",
        ),
        (&["--date", "1999-12-31"][..], "outside the NYSE calendar"),
        (&["--from", "2010-08-09"][..], "--to"),
        (
            &[
                "--date",
                "2010-08-09",
                "--from",
                "2010-08-09",
                "--to",
                "2010-08-10",
            ][..],
            "cannot be used with",
        ),
    ] {
        let out = report_args(cwd, args);
        assert_eq!(out.status.code(), Some(10), "{args:?}: {}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
