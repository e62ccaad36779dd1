//! The real `avwap-check` binary against fake hosts: a fake `systemctl` answering with outputs
//! recorded from systemd 252 (tests/fixtures/systemd/README.md), a fake `/proc` tree, a fake
//! `tmux`, and a real state directory (fresh watchlist, state database with a heartbeat).

use avwap::calendar::ny_date;
use avwap::execution::db::{StateDb, DB_FILE};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc, Weekday};
use chrono_tz::America::New_York;
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
                .expect("08:30/08:40/09:30 exist every day in New York");
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
        let near = [(8, 30), (8, 40), (9, 30), (0, 0), (24, 0)]
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

struct Host {
    _dir: tempfile::TempDir,
    host_dir: PathBuf,
    proc_root: PathBuf,
    state: PathBuf,
    tmux: PathBuf,
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
            .replace("@NEXT_0930@", &next_weekday(now, 9, 30));
        let dest = to.join(entry.file_name());
        std::fs::write(&dest, text).unwrap();
        if matches!(entry.file_name().to_str(), Some("systemctl" | "tmux")) {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

fn build_proc(procs_txt: &Path, root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    for line in std::fs::read_to_string(procs_txt).unwrap().lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        let [pid, exe, comm, cgroup] = parts[..] else {
            panic!("bad procs.txt line {line:?}")
        };
        let dir = root.join(pid);
        std::fs::create_dir_all(&dir).unwrap();
        if !exe.is_empty() {
            std::os::unix::fs::symlink(exe, dir.join("exe")).unwrap();
        }
        std::fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
        std::fs::write(dir.join("cgroup"), format!("0::{cgroup}\n")).unwrap();
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
    let db = StateDb::open(&state.join(DB_FILE)).unwrap();
    db.heartbeat(Utc::now(), "sim", 1).unwrap();
    drop(db);
    let tmux = if host_dir.join("tmux").exists() {
        host_dir.join("tmux")
    } else {
        let t = dir.path().join("tmux-no-server");
        std::fs::copy(fixtures().join("tmux-no-server"), &t).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o755)).unwrap();
        t
    };
    Host {
        _dir: dir,
        host_dir,
        proc_root,
        state,
        tmux,
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
        .env("AVWAP_PROC_ROOT", &h.proc_root)
        .env("AVWAP_TMUX", &h.tmux);
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

const ALL: [&str; 10] = [
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
];

/// Run the host both ways; check the verdict, the exit code, and which checks are not OK.
fn expect(host_name: &str, args: &[&str], verdict: &str, code: i32, not_ok: &[(&str, &str, &str)]) {
    let h = host(host_name);
    let today = ny_date(Utc::now());
    let out = run(&h, args);
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out_json = run(&h, &json_args);
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
fn wrong_schedule_is_computed_not_string_matched() {
    expect(
        "wrong-schedule",
        &[],
        "fail",
        1,
        &[("scan.timer", "FAIL", "09:30")],
    );
    let h = host("wrong-schedule");
    let (_, checks) = human(&run(&h, &[]));
    let msg = &status_of(&checks, "scan.timer").2;
    assert!(msg.contains("expected"), "{msg}");
    assert!(msg.contains("08:30"), "{msg}");
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
fn tmux_sessions_fail() {
    expect(
        "tmux",
        &[],
        "fail",
        1,
        &[("tmux", "FAIL", "1 tmux session(s): avwap")],
    );
    let h = host("tmux");
    let (_, checks) = human(&run(&h, &[]));
    assert!(status_of(&checks, "tmux").2.contains("31153"));
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
