//! The real `avwap-check` binary against fake hosts: a fake `systemctl` answering with outputs
//! recorded from systemd 252 (tests/fixtures/systemd/README.md), a fake `/proc` tree (with
//! parent links, users and command lines, so tmux sessions are seen as real ones are), and a
//! real state directory (fresh watchlist, state database with a heartbeat).

use avwap::broker::{
    BrokerError, BrokerOrder, OrderStatus, OrderType, Position, Side, TimeInForce,
};
use avwap::calendar::ny_date;
use avwap::execution::db::{OwnedPosition, StateDb, DB_FILE};
use avwap::execution::verdict::{judge, BrokerView, Verdict};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc, Weekday};
use chrono_tz::America::New_York;
use rust_decimal::Decimal;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CHECK: &str = env!("CARGO_BIN_EXE_avwap-check");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/systemd")
}

/// The next weekday hh:mm in New York after `now`, computed independently of avwap's code
/// (day by day through chrono-tz), in systemd's `show` format.
fn next_weekday(now: DateTime<Utc>, hour: u32, minute: u32) -> String {
    let mut date = now.with_timezone(&New_York).date_naive();
    loop {
        if !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
            let local = New_York
                .with_ymd_and_hms(date.year(), date.month(), date.day(), hour, minute, 0)
                .earliest()
                .expect("08:30/08:40/09:00/09:30 exist every day in New York");
            let t = local.with_timezone(&Utc);
            if t > now {
                return t.format("%a %Y-%m-%d %H:%M:%S UTC").to_string();
            }
        }
        date = date.succ_opt().unwrap();
    }
}

/// Stay away from the instants where the expected next elapse flips (a timer boundary) or the
/// New York date changes, so the fixture and the check agree on "now".
fn avoid_boundaries() {
    loop {
        let now = Utc::now();
        let ny = now.with_timezone(&New_York);
        let secs = i64::from(ny.num_seconds_from_midnight());
        let near = [(8, 30), (8, 40), (9, 0), (9, 30), (0, 0), (24, 0)]
            .iter()
            .any(|(h, m)| {
                let b = h * 3600 + m * 60;
                (b - 5..=b + 1).contains(&secs)
            });
        if !near {
            return;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

use chrono::Timelike;

/// The verdict a cycle at `at` records when the broker reports `positions` and these sell
/// stops (symbol, shares) and the journal owns nothing.
fn verdict(
    at: DateTime<Utc>,
    positions: Result<Vec<(&str, i64)>, BrokerError>,
    stops: &[(&str, i64)],
) -> Verdict {
    verdict_owning(at, positions, stops, &[])
}

/// [`verdict`] with the journal owning `owned` (symbol, shares).
fn verdict_owning(
    at: DateTime<Utc>,
    positions: Result<Vec<(&str, i64)>, BrokerError>,
    stops: &[(&str, i64)],
    owned: &[(&str, i64)],
) -> Verdict {
    let owned: Vec<OwnedPosition> = owned
        .iter()
        .map(|(symbol, qty)| OwnedPosition {
            symbol: symbol.to_string(),
            qty: Decimal::from(*qty),
            avg_price: Decimal::from(50),
            opened_session: ny_date(at),
            entry_client_order_id: format!("avw-20261127-{symbol}-en-1"),
            stop_price: Decimal::from(45),
            target_r1: None,
            target_r2: None,
            trimmed: false,
            open: true,
            realized_pnl: Decimal::ZERO,
        })
        .collect();
    let positions = positions.map(|ps| {
        ps.iter()
            .map(|(symbol, qty)| Position {
                symbol: symbol.to_string(),
                qty: Decimal::from(*qty),
                avg_entry_price: Decimal::from(50),
            })
            .collect::<Vec<_>>()
    });
    let stops: Vec<BrokerOrder> = stops
        .iter()
        .map(|(symbol, qty)| BrokerOrder {
            id: format!("broker-{symbol}"),
            client_order_id: format!("avw-20261127-{symbol}-st1-1"),
            symbol: symbol.to_string(),
            side: Side::Sell,
            qty: Decimal::from(*qty),
            filled_qty: Decimal::ZERO,
            filled_avg_price: None,
            order_type: OrderType::Stop,
            limit_price: None,
            stop_price: Some(Decimal::from(45)),
            time_in_force: TimeInForce::Gtc,
            status: OrderStatus::New,
            submitted_at: at,
            updated_at: at,
            replaced_by: None,
        })
        .collect();
    judge(
        at,
        &BrokerView::new(&positions, &Ok(stops)),
        &owned,
        &Default::default(),
        &[],
    )
}

struct Host {
    _dir: tempfile::TempDir,
    host_dir: PathBuf,
    proc_root: PathBuf,
    state: PathBuf,
}

fn copy_host(name: &str, to: &Path, now: DateTime<Utc>) {
    std::fs::create_dir_all(to).unwrap();
    let from = fixtures().join("hosts").join(name);
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let text = text
            .replace("@NEXT_0830@", &next_weekday(now, 8, 30))
            .replace("@NEXT_0840@", &next_weekday(now, 8, 40))
            .replace("@NEXT_0900@", &next_weekday(now, 9, 0))
            .replace("@NEXT_0930@", &next_weekday(now, 9, 30));
        let dest = to.join(entry.file_name());
        std::fs::write(&dest, text).unwrap();
        if entry.file_name().to_str() == Some("systemctl") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

/// A fake `/proc` from `procs.txt`: `pid|exe|comm|cgroup[|ppid|uid|argv]` (exe empty:
/// unreadable; argv space-separated). Without the last three the parent is PID 1 (0 for PID 1
/// itself), the user root and argv the exe (or comm).
fn build_proc(procs_txt: &Path, root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    for line in std::fs::read_to_string(procs_txt).unwrap().lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        let (pid, exe, comm, cgroup, ppid, uid, argv) = match parts[..] {
            [pid, exe, comm, cgroup] => {
                let ppid = if pid == "1" { "0" } else { "1" };
                let argv = if exe.is_empty() { comm } else { exe };
                (pid, exe, comm, cgroup, ppid, "0", argv)
            }
            [pid, exe, comm, cgroup, ppid, uid, argv] => (pid, exe, comm, cgroup, ppid, uid, argv),
            _ => panic!("bad procs.txt line {line:?}"),
        };
        let dir = root.join(pid);
        std::fs::create_dir_all(&dir).unwrap();
        if !exe.is_empty() {
            std::os::unix::fs::symlink(exe, dir.join("exe")).unwrap();
        }
        std::fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
        std::fs::write(dir.join("cgroup"), format!("0::{cgroup}\n")).unwrap();
        std::fs::write(
            dir.join("status"),
            format!(
                "Name:\t{comm}\nPid:\t{pid}\nPPid:\t{ppid}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"
            ),
        )
        .unwrap();
        let mut cmdline: Vec<u8> = argv
            .split(' ')
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect();
        if argv.is_empty() {
            cmdline.clear();
        }
        std::fs::write(dir.join("cmdline"), cmdline).unwrap();
    }
    // Non-process entries a real /proc has.
    std::fs::create_dir_all(root.join("sys")).unwrap();
    std::fs::write(root.join("uptime"), "100.0 50.0\n").unwrap();
}

fn host(name: &str) -> Host {
    avoid_boundaries();
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let host_dir = dir.path().join("host");
    copy_host(name, &host_dir, now);
    let proc_root = dir.path().join("proc");
    build_proc(&host_dir.join("procs.txt"), &proc_root);
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    // A fresh watchlist: header only (no candidates today) is a valid list.
    avwap::watchlist::write_watchlist(&state.join("daily_candidates.csv"), &[]).unwrap();
    let mut db = StateDb::open(&state.join(DB_FILE)).unwrap();
    let now = Utc::now();
    db.heartbeat(now, "sim", 1).unwrap();
    // What a healthy service records every cycle: the broker read, nothing held anywhere.
    db.record_verdict(&verdict(now, Ok(vec![]), &[])).unwrap();
    drop(db);
    Host {
        _dir: dir,
        host_dir,
        proc_root,
        state,
    }
}

fn command(h: &Host, args: &[&str]) -> Command {
    let mut cmd = Command::new(CHECK);
    cmd.arg("--state-dir")
        .arg(&h.state)
        .args(args)
        .env_remove("AVWAP_CONFIG")
        .env_remove("AVWAP_STATE_DIR")
        .env_remove("AVWAP_MODE")
        .env_remove("AVWAP_LOG_FORMAT")
        .env_remove("JOURNAL_STREAM")
        .env("RUST_LOG", "warn")
        .env("AVWAP_SYSTEMCTL", h.host_dir.join("systemctl"))
        .env("AVWAP_PROC_ROOT", &h.proc_root);
    cmd
}

fn run(h: &Host, args: &[&str]) -> Output {
    command(h, args).output().expect("run avwap-check")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// (status, message) per check name from the human output; asserts the line format.
fn human(o: &Output) -> (String, Vec<(String, String, String)>) {
    let text = stdout(o);
    let mut lines: Vec<&str> = text.lines().collect();
    let verdict = lines.pop().expect("a verdict line").to_string();
    assert!(verdict.starts_with("verdict: "), "{text}");
    let checks = lines
        .iter()
        .map(|line| {
            let (status, rest) = line.split_once(' ').expect(line);
            assert!(
                ["OK", "WARN", "FAIL"].contains(&status),
                "bad status in {line:?}"
            );
            let rest = rest.trim_start();
            let (name, message) = rest.split_once("  ").expect(line);
            (
                status.to_string(),
                name.to_string(),
                message.trim_start().to_string(),
            )
        })
        .collect();
    (verdict, checks)
}

fn json(o: &Output) -> Value {
    let text = stdout(o);
    assert_eq!(
        text.lines().count(),
        1,
        "one JSON object on one line: {text}"
    );
    let v: Value = serde_json::from_str(&text).expect("stdout is JSON");
    let obj = v.as_object().expect("an object");
    let mut keys: Vec<&String> = obj.keys().collect();
    keys.sort();
    assert_eq!(keys, ["checks", "verdict"], "{text}");
    for c in v["checks"].as_array().unwrap() {
        let mut keys: Vec<&String> = c.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["message", "name", "status"], "{c}");
        assert!(["ok", "warn", "fail"].contains(&c["status"].as_str().unwrap()));
    }
    v
}

fn status_of<'a>(
    checks: &'a [(String, String, String)],
    name: &str,
) -> &'a (String, String, String) {
    checks
        .iter()
        .find(|(_, n, _)| n == name)
        .unwrap_or_else(|| panic!("no check {name} in {checks:?}"))
}

const ALL: [&str; 11] = [
    "execution.service",
    "scan.timer",
    "execution-restart.timer",
    "watchlist",
    "execution-process",
    "tmux",
    "state-db",
    "kill-switch",
    "heartbeat",
    "protective-stops",
    "broker-reconciliation",
];

/// Run the host both ways; check the verdict, the exit code, and which checks are not OK.
fn expect(host_name: &str, args: &[&str], verdict: &str, code: i32, not_ok: &[(&str, &str, &str)]) {
    let h = host(host_name);
    expect_on(&h, host_name, args, verdict, code, not_ok);
}

/// [`expect`] on a host already set up.
fn expect_on(
    h: &Host,
    host_name: &str,
    args: &[&str],
    verdict: &str,
    code: i32,
    not_ok: &[(&str, &str, &str)],
) {
    let today = ny_date(Utc::now());
    let out = run(h, args);
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out_json = run(h, &json_args);
    if ny_date(Utc::now()) != today {
        return; // New York midnight passed: the watchlist is no longer today's.
    }
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{host_name}: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out_json.status.code(), Some(code), "{host_name} --json");
    let (verdict_line, checks) = human(&out);
    assert!(
        verdict_line.starts_with(&format!("verdict: {}", verdict.to_uppercase())),
        "{host_name}: {verdict_line}"
    );
    for (status, name, message) in &checks {
        match not_ok.iter().find(|(n, _, _)| n == name) {
            Some((_, want_status, want_text)) => {
                assert_eq!(status, want_status, "{host_name}: {name}: {message}");
                assert!(
                    message.contains(want_text),
                    "{host_name}: {name}: {message:?} lacks {want_text:?}"
                );
            }
            None => assert_eq!(status, "OK", "{host_name}: {name}: {message}"),
        }
    }
    for (name, _, _) in not_ok {
        status_of(&checks, name);
    }
    let v = json(&out_json);
    assert_eq!(v["verdict"], verdict, "{host_name}");
    let json_checks: Vec<(String, String, String)> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["status"].as_str().unwrap().to_uppercase(),
                c["name"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let statuses = |cs: &[(String, String, String)]| {
        cs.iter()
            .map(|(s, n, _)| (s.clone(), n.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        statuses(&json_checks),
        statuses(&checks),
        "{host_name}: human and JSON agree"
    );
}

#[test]
fn healthy_host_is_all_ok() {
    expect("healthy", &[], "ok", 0, &[]);
    let h = host("healthy");
    let (_, checks) = human(&run(&h, &[]));
    let names: Vec<&str> = checks.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(names, ALL);
    let msg = |n| status_of(&checks, n).2.clone();
    assert!(msg("execution.service").contains("main PID 288"));
    assert!(msg("scan.timer").contains("08:30"), "{}", msg("scan.timer"));
    assert!(msg("execution-restart.timer").contains("08:40"));
    assert!(msg("watchlist").starts_with("OK: Watchlist is fresh for today (NY): "));
    assert!(msg("execution-process").contains("pid 288"));
    assert!(msg("state-db").contains("quick_check: ok"));
}

#[test]
fn stopped_host_fails_on_the_service_and_the_process() {
    expect(
        "stopped",
        &[],
        "fail",
        1,
        &[
            ("execution.service", "FAIL", "inactive (dead"),
            (
                "execution-process",
                "FAIL",
                "no avwap-execution process is running",
            ),
        ],
    );
}

#[test]
fn failed_host_fails_and_says_how_to_recover() {
    expect(
        "failed",
        &[],
        "fail",
        1,
        &[
            (
                "execution.service",
                "FAIL",
                "systemctl reset-failed execution.service",
            ),
            ("execution-process", "FAIL", "no avwap-execution process"),
        ],
    );
    let h = host("failed");
    let (_, checks) = human(&run(&h, &[]));
    let msg = &status_of(&checks, "execution.service").2;
    assert!(msg.contains("never ran"), "{msg}");
    assert!(msg.contains("3 automatic restart"), "{msg}");
}

#[test]
fn restarting_host_fails() {
    expect(
        "restarting",
        &[],
        "fail",
        1,
        &[
            ("execution.service", "FAIL", "restarting after a failure"),
            ("execution-process", "FAIL", "no avwap-execution process"),
        ],
    );
}

#[test]
fn another_installed_schedule_is_ok() {
    // services.avwap.schedules.scan = "Mon..Fri 09:00 America/New_York" installed.
    expect("schedule-0900", &[], "ok", 0, &[]);
    let h = host("schedule-0900");
    let (_, checks) = human(&run(&h, &[]));
    let msg = &status_of(&checks, "scan.timer").2;
    assert!(msg.contains(" 09:00 "), "{msg}");
    assert!(
        msg.ends_with("as its OnCalendar=Mon..Fri *-*-* 09:00:00 America/New_York gives"),
        "{msg}"
    );
}

#[test]
fn a_scan_at_the_open_warns() {
    // The recorded drop-in OnCalendar=Mon..Fri 09:30 America/New_York: its own schedule (not a
    // failure), but the watchlist would come after the open, when that day is a session.
    avoid_boundaries();
    let next: DateTime<Utc> = DateTime::parse_from_str(
        &format!("{} +0000", next_weekday(Utc::now(), 9, 30)),
        "%a %Y-%m-%d %H:%M:%S UTC %z",
    )
    .unwrap()
    .with_timezone(&Utc);
    if avwap::calendar::is_session(ny_date(next)).unwrap() {
        expect(
            "wrong-schedule",
            &[],
            "warn",
            2,
            &[("scan.timer", "WARN", "it runs at or after the market open")],
        );
    } else {
        expect("wrong-schedule", &[], "ok", 0, &[]);
    }
    let h = host("wrong-schedule");
    let (_, checks) = human(&run(&h, &[]));
    let msg = &status_of(&checks, "scan.timer").2;
    assert!(
        msg.contains("OnCalendar=Mon..Fri *-*-* 09:30:00 America/New_York"),
        "{msg}"
    );
}

#[test]
fn two_processes_fail_and_name_the_extra_one() {
    expect(
        "two-processes",
        &[],
        "fail",
        1,
        &[("execution-process", "FAIL", "kill 326")],
    );
    let h = host("two-processes");
    let (_, checks) = human(&run(&h, &[]));
    let msg = &status_of(&checks, "execution-process").2;
    assert!(msg.contains("pid 288"), "{msg}");
    assert!(msg.contains("/system.slice/vmtest.service"), "{msg}");
}

#[test]
fn no_systemd_host_warns_once_and_checks_the_rest() {
    expect(
        "no-systemd",
        &[],
        "warn",
        2,
        &[(
            "systemd",
            "WARN",
            "systemd not available: unit checks skipped",
        )],
    );
    let h = host("no-systemd");
    let (_, checks) = human(&run(&h, &[]));
    let names: Vec<&str> = checks.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(names[0], "systemd");
    assert!(!names.contains(&"execution.service"));
    assert!(!names.contains(&"scan.timer"));
    assert_eq!(names.len(), ALL.len() - 3 + 1);
    assert!(status_of(&checks, "systemd")
        .2
        .contains("has not been booted with systemd"));

    // --strict: the warning becomes a failure.
    expect(
        "no-systemd",
        &["--strict"],
        "fail",
        1,
        &[("systemd", "FAIL", "systemd not available")],
    );
}

#[test]
fn no_systemctl_at_all_is_also_no_systemd() {
    let h = host("no-systemd");
    let empty = tempfile::tempdir().unwrap();
    let out = command(&h, &["--json"])
        .env_remove("AVWAP_SYSTEMCTL")
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let v = json(&out);
    assert_eq!(v["verdict"], "warn");
    let first = &v["checks"][0];
    assert_eq!(first["name"], "systemd");
    assert!(first["message"]
        .as_str()
        .unwrap()
        .contains("systemctl is not on PATH"));
}

#[test]
fn avwap_inside_tmux_fails() {
    // avwap-execution started by hand in a tmux pane, and the predecessor's loop in another
    // user's tmux: both named, with how to stop them (the first also fails execution-process).
    expect(
        "tmux",
        &[],
        "fail",
        1,
        &[
            (
                "tmux",
                "FAIL",
                "2 avwap process(es) run inside tmux: pid 31160 avwap-execution (uid 0, in the \
                 tmux of pid 31153 uid 0), pid 32010 python -m execution_v2.execution_main \
                 (uid 1000, in the tmux of pid 32000 uid 1000)",
            ),
            ("execution-process", "FAIL", "kill 31160"),
        ],
    );
    let h = host("tmux");
    let (_, checks) = human(&run(&h, &[]));
    assert!(status_of(&checks, "tmux").2.contains("kill 31160 32010"));
}

#[test]
fn an_unrelated_tmux_session_is_not_a_failure() {
    expect("tmux-unrelated", &[], "ok", 0, &[]);
    let h = host("tmux-unrelated");
    let (_, checks) = human(&run(&h, &[]));
    assert_eq!(
        status_of(&checks, "tmux").2,
        "tmux server(s) pid 31153 (uid 1000): none of the 4 process(es) in their sessions runs \
         avwap (sessions running other programs are fine)"
    );
}

#[test]
fn the_alpaca_scan_reports_its_universe_cache() {
    let h = host("alpaca-scan");
    let cfg = h.state.join("avwap.toml");
    // The small fixture holds 14 members; the real minimum is 1000.
    std::fs::write(&cfg, "[scan.universe]\nmin_members = 10\n").unwrap();
    let args = ["--config", cfg.to_str().unwrap()];
    let cache = h.state.join(avwap::universe::CACHE_FILE);
    expect_on(
        &h,
        "alpaca-scan",
        &args,
        "warn",
        2,
        &[(
            "universe-cache",
            "WARN",
            &format!("no universe cache at {} yet", cache.display()),
        )],
    );
    // What the scan leaves after fetching the holdings two days ago.
    let holdings =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/universe/iwv_raw.csv");
    let mut opts =
        avwap::universe::LoadOptions::new(Some(holdings.display().to_string()), &h.state);
    opts.min_members = 10;
    avwap::universe::load_universe(&opts, Utc::now() - Duration::days(2), None).unwrap();
    expect_on(&h, "alpaca-scan", &args, "ok", 0, &[]);
    let (_, checks) = human(&run(&h, &args));
    let names: Vec<&str> = checks.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(
        names[..5],
        ALL[..4]
            .iter()
            .copied()
            .chain(["universe-cache"])
            .collect::<Vec<_>>()[..]
    );
    let msg = &status_of(&checks, "universe-cache").2;
    assert_eq!(
        msg.split(" (").next().unwrap(),
        format!(
            "{}: 14 members, holdings as of 2026-07-24, fetched 2 days ago",
            cache.display()
        )
    );
    // Nine days without a successful fetch: stale.
    avwap::universe::load_universe(&opts, Utc::now() - Duration::days(9), None).unwrap();
    expect_on(
        &h,
        "alpaca-scan",
        &args,
        "warn",
        2,
        &[("universe-cache", "WARN", "older than 7 days")],
    );
    // Without --provider alpaca (the healthy host runs the store scan) there is no such line.
    let h = host("healthy");
    let (_, checks) = human(&run(&h, &[]));
    assert!(!checks.iter().any(|(_, n, _)| n == "universe-cache"));
}

#[test]
fn kill_switch_warns_and_strict_fails() {
    let h = host("healthy");
    std::fs::write(h.state.join("KILL_SWITCH"), "").unwrap();
    let out = run(&h, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let (verdict, checks) = human(&out);
    assert!(verdict.starts_with("verdict: WARN"), "{verdict}");
    let (status, _, msg) = status_of(&checks, "kill-switch");
    assert_eq!(status, "WARN");
    assert!(msg.contains("kill switch engaged"), "{msg}");
    assert_eq!(run(&h, &["--strict"]).status.code(), Some(1));
    std::fs::remove_file(h.state.join("KILL_SWITCH")).unwrap();
    assert_eq!(run(&h, &[]).status.code(), Some(0));
}

#[test]
fn missing_database_warns_and_corrupt_database_fails() {
    let h = host("healthy");
    let db = h.state.join(DB_FILE);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let out = run(&h, &["--json"]);
    let v = json(&out);
    let check = |name: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(check("state-db")["status"], "warn");
    assert!(check("state-db")["message"]
        .as_str()
        .unwrap()
        .contains("no state database yet"));
    assert_eq!(check("protective-stops")["status"], "warn");
    assert!(["warn", "fail"].contains(&check("heartbeat")["status"].as_str().unwrap()));
    assert!(!db.exists(), "the check must not create the database");

    std::fs::write(&db, b"this is not an sqlite database, just garbage bytes\n").unwrap();
    let out = run(&h, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let state_db = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "state-db")
        .unwrap()
        .clone();
    assert_eq!(state_db["status"], "fail", "{state_db}");
}

#[test]
fn a_stale_heartbeat_is_reported() {
    let h = host("healthy");
    let db = StateDb::open(&h.state.join(DB_FILE)).unwrap();
    db.heartbeat(Utc::now() - Duration::hours(5), "sim", 1)
        .unwrap();
    drop(db);
    let (_, checks) = human(&run(&h, &[]));
    let (status, _, msg) = status_of(&checks, "heartbeat");
    // FAIL while the market is open, WARN while it is closed; either way it says how old.
    assert!(status == "FAIL" || status == "WARN", "{status} {msg}");
    assert!(msg.contains("last heartbeat 5 h"), "{msg}");
}

#[test]
fn bad_configuration_is_exit_10() {
    let h = host("healthy");
    let cfg = h.state.join("bad.toml");
    std::fs::write(&cfg, "no_such_key = 1\n").unwrap();
    let out = run(&h, &["--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(10));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_key"));
}

#[test]
fn the_fixture_timestamps_are_systemds_format() {
    // The placeholder rendering matches what systemd 252 printed in the VM.
    let recorded =
        std::fs::read_to_string(fixtures().join("recorded/run2/healthy/show-scan.timer.txt"))
            .unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 29, 2, 52, 56).unwrap();
    let line = format!("NextElapseUSecRealtime={}", next_weekday(at, 8, 30));
    assert!(
        recorded.lines().any(|l| l == line),
        "{line} not in {recorded}"
    );
}

#[test]
fn a_lost_journal_fails_the_reconciliation_after_two_cycles() {
    // The execution database was lost: the broker holds 100 AAPL under a stop, the journal
    // owns nothing. The journal alone looks healthy ("no owned positions").
    let h = host("healthy");
    let mut db = StateDb::open(&h.state.join(DB_FILE)).unwrap();
    let now = Utc::now();
    db.record_verdict(&verdict(
        now - Duration::seconds(60),
        Ok(vec![("AAPL", 100)]),
        &[("AAPL", 100)],
    ))
    .unwrap();
    let out = run(&h, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let (_, checks) = human(&out);
    let (status, _, msg) = status_of(&checks, "broker-reconciliation");
    assert_eq!(status, "WARN", "{msg}");
    assert!(
        msg.contains("AAPL: the broker holds 100, the journal owns 0 in the last cycle only"),
        "{msg}"
    );
    assert_eq!(
        status_of(&checks, "protective-stops").2,
        "no owned positions"
    );

    // The next cycle sees it again: FAIL, with what to do.
    db.record_verdict(&verdict(now, Ok(vec![("AAPL", 100)]), &[("AAPL", 100)]))
        .unwrap();
    drop(db);
    expect_on(
        &h,
        "healthy",
        &[],
        "fail",
        1,
        &[(
            "broker-reconciliation",
            "FAIL",
            "AAPL: the broker holds 100, the journal owns 0 (first seen ",
        )],
    );
    let (_, checks) = human(&run(&h, &[]));
    let msg = &status_of(&checks, "broker-reconciliation").2;
    assert!(msg.contains("engage the kill switch (touch "), "{msg}");
    assert!(msg.contains("KILL_SWITCH"), "{msg}");
}

#[test]
fn an_uncovered_position_fails_and_an_unread_broker_warns() {
    let h = host("healthy");
    let mut db = StateDb::open(&h.state.join(DB_FILE)).unwrap();
    db.record_verdict(&verdict(
        Utc::now(),
        Ok(vec![("AAPL", 100), ("MSFT", 10)]),
        &[("AAPL", 40), ("MSFT", 10)],
    ))
    .unwrap();
    expect_on(
        &h,
        "healthy",
        &[],
        "fail",
        1,
        &[(
            "broker-reconciliation",
            "FAIL",
            "AAPL: the broker holds 100 shares but its working sell stops (and market sells) cover 40",
        )],
    );
    db.record_verdict(&verdict(
        Utc::now(),
        Err(BrokerError::RetryableRead {
            message: "HTTP 503 from the positions endpoint".into(),
        }),
        &[],
    ))
    .unwrap();
    drop(db);
    expect_on(
        &h,
        "healthy",
        &[],
        "warn",
        2,
        &[(
            "broker-reconciliation",
            "WARN",
            "the last cycle could not read the broker's positions (broker read failed (retryable): HTTP 503 from the positions endpoint)",
        )],
    );
}

/// A position and its working stop in the journal, as the service records them.
fn journal_position(db_path: &Path, symbol: &str, qty: i64) {
    let conn = rusqlite::Connection::open(db_path).unwrap();
    let cid = format!("avw-20261127-{symbol}-st1-1");
    conn.execute(
        "INSERT INTO positions (symbol, qty, avg_price, opened_session, entry_client_order_id,
            stop_price, status, updated_at)
         VALUES (?1, ?2, '50.00', '2026-11-27', ?3, '45.00', 'open', '2026-11-27T15:00:00.000000Z')",
        rusqlite::params![symbol, qty.to_string(), format!("avw-20261127-{symbol}-en-1")],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO stops (symbol, client_order_id, stop_price, qty, updated_at)
         VALUES (?1, ?2, '45.00', ?3, '2026-11-27T15:00:00.000000Z')",
        rusqlite::params![symbol, cid, qty.to_string()],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO orders (client_order_id, broker_order_id, symbol, side, qty, order_type,
            stop_price, time_in_force, status, filled_qty, submitted_at, updated_at)
         VALUES (?1, ?2, ?3, 'sell', ?4, 'stop', '45.00', 'gtc', 'new', '0',
            '2026-11-27T15:00:00.000000Z', '2026-11-27T15:00:00.000000Z')",
        rusqlite::params![cid, format!("broker-{symbol}"), symbol, qty.to_string()],
    )
    .unwrap();
}

#[test]
fn protection_is_said_only_on_the_brokers_word() {
    let h = host("healthy");
    let db_path = h.state.join(DB_FILE);
    let held = [("AAPL", 100), ("MSFT", 10), ("NVDA", 7)];
    for (symbol, qty) in held {
        journal_position(&db_path, symbol, qty);
    }
    let mut db = StateDb::open(&db_path).unwrap();
    db.record_verdict(&verdict_owning(Utc::now(), Ok(held.to_vec()), &held, &held))
        .unwrap();
    expect_on(&h, "healthy", &[], "ok", 0, &[]);
    let (_, checks) = human(&run(&h, &[]));
    assert_eq!(
        status_of(&checks, "protective-stops").2,
        "3 owned position(s), each with a working protective stop (confirmed by the broker's report)"
    );
    let msg = &status_of(&checks, "broker-reconciliation").2;
    assert!(
        msg.starts_with(
            "3 positions at the broker, each covered by a working stop for its full quantity; \
             matches the journal (cycle "
        ),
        "{msg}"
    );

    // The journal still says every stop works, but the broker's stop for AAPL is gone.
    db.record_verdict(&verdict_owning(
        Utc::now(),
        Ok(held.to_vec()),
        &held[1..],
        &held,
    ))
    .unwrap();
    drop(db);
    expect_on(
        &h,
        "healthy",
        &[],
        "fail",
        1,
        &[(
            "broker-reconciliation",
            "FAIL",
            "AAPL: the broker holds 100 shares but its working sell stops (and market sells) cover 0",
        )],
    );
    let (_, checks) = human(&run(&h, &[]));
    let msg = &status_of(&checks, "protective-stops").2;
    assert!(
        msg.contains("not confirmed by the broker: AAPL is uncovered"),
        "{msg}"
    );
    assert!(
        !msg.contains("each with a working protective stop"),
        "{msg}"
    );
}

/// The effective uid, read from /proc so the test needs no libc binding.
fn euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// A group the operator is in and `nobody` is not otherwise.
const SERVICE_GID: u32 = 61_234;
const NOBODY: u32 = 65_534;

/// `cmd` run as `nobody` with `gid` as its only group (as root), or as this user (otherwise).
fn as_other_user(cmd: &Command, gid: u32) -> Command {
    let mut wrapped = if euid() == 0 {
        let mut w = Command::new("setpriv");
        w.arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .arg(cmd.get_program());
        w
    } else {
        Command::new(cmd.get_program())
    };
    wrapped.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    wrapped
}

/// The service's permissions (`StateDirectoryMode=0750`, `UMask=0027`): the directory 0750,
/// its files 0640, owned by the service (here root) and its group. As a non-root user the
/// owner's write bits are removed as well, so the reader can write nothing either way.
fn service_permissions(state: &Path) {
    use std::os::unix::fs::{chown, PermissionsExt};
    let root = euid() == 0;
    let (dir_mode, file_mode) = if root { (0o750, 0o640) } else { (0o550, 0o440) };
    for entry in std::fs::read_dir(state).unwrap() {
        let path = entry.unwrap().path();
        if root {
            chown(&path, None, Some(SERVICE_GID)).unwrap();
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file_mode)).unwrap();
    }
    if root {
        chown(state, None, Some(SERVICE_GID)).unwrap();
    }
    std::fs::set_permissions(state, std::fs::Permissions::from_mode(dir_mode)).unwrap();
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_member_of_the_service_group_can_check_and_report_read_only() {
    use std::os::unix::fs::PermissionsExt;
    let h = host("healthy");
    // The way to the state directory is open to everyone; the directory itself is not.
    std::fs::set_permissions(h._dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db_path = h.state.join(DB_FILE);
    let report = |gid: u32| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_avwap-execution"));
        cmd.args(["report", "--json", "--state-dir"])
            .arg(&h.state)
            .env_remove("AVWAP_CONFIG")
            .env_remove("AVWAP_STATE_DIR")
            .env_remove("AVWAP_MODE")
            .env("RUST_LOG", "warn");
        as_other_user(&cmd, gid).output().unwrap()
    };
    let check = |gid: u32| as_other_user(&command(&h, &[]), gid).output().unwrap();
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // 1. The service is running: its last cycle is in the write-ahead log only (the writer
    //    keeps the database open), and -wal and -shm are the service's, not writable here.
    let mut writer = StateDb::open(&db_path).unwrap();
    let now = Utc::now();
    writer.heartbeat(now, "sim", 2).unwrap();
    writer
        .record_verdict(&verdict(now, Ok(vec![]), &[]))
        .unwrap();
    assert!(
        std::fs::metadata(format!("{}-wal", db_path.display()))
            .unwrap()
            .len()
            > 0,
        "the last cycle is pending in the write-ahead log"
    );
    service_permissions(&h.state);
    let before = listing(&h.state);
    let out = check(SERVICE_GID);
    let text = stdout(&out);
    assert!(
        !text.contains("readonly database") && !stderr(&out).contains("readonly database"),
        "{text}"
    );
    if ny_date(Utc::now()) == ny_date(now) {
        assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    }
    let (_, checks) = human(&out);
    assert!(status_of(&checks, "state-db").2.contains("quick_check: ok"));
    assert_eq!(status_of(&checks, "heartbeat").0, "OK");
    assert_eq!(status_of(&checks, "broker-reconciliation").0, "OK");
    let out = report(SERVICE_GID);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice::<Value>(&out.stdout).expect("report --json is JSON");
    assert_eq!(
        listing(&h.state),
        before,
        "a reader created or removed files"
    );

    // 2. The service stopped cleanly: no -wal or -shm left, and the reader cannot create them.
    //    (The owner may write the directory again for its last close, which removes them.)
    std::fs::set_permissions(&h.state, std::fs::Permissions::from_mode(0o750)).unwrap();
    drop(writer);
    service_permissions(&h.state);
    assert!(!Path::new(&format!("{}-wal", db_path.display())).exists());
    let before = listing(&h.state);
    let out = check(SERVICE_GID);
    let (_, checks) = human(&out);
    assert_eq!(
        status_of(&checks, "state-db").0,
        "OK",
        "{}",
        status_of(&checks, "state-db").2
    );
    assert_eq!(status_of(&checks, "heartbeat").0, "OK", "{}", stdout(&out));
    let out = report(SERVICE_GID);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(listing(&h.state), before, "a reader created files");

    // 3. Someone outside the group: a clear refusal that says what to do.
    if euid() == 0 {
        let out = check(NOBODY);
        let (_, checks) = human(&out);
        let (status, _, msg) = status_of(&checks, "state-db");
        assert_eq!(status, "FAIL", "{msg}");
        assert!(msg.contains("ermission denied"), "{msg}");
        assert!(msg.contains("run it as the service user"), "{msg}");
        let out = report(NOBODY);
        assert_eq!(out.status.code(), Some(13), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("run it as the service user"),
            "{}",
            stderr(&out)
        );
    }
}
