//! The real `avwap-gate` binary: exit codes, messages and time-zone independence.

use avwap::calendar::ny_date;
use avwap::watchlist::COLUMNS;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::path::Path;
use std::process::{Command, Output};
use std::time::SystemTime;

const GATE: &str = env!("CARGO_BIN_EXE_avwap-gate");

fn run_gate(args: &[&str], tz: &str) -> Output {
    Command::new(GATE)
        .args(args)
        .env("TZ", tz)
        .env_remove("AVWAP_CONFIG")
        .env_remove("AVWAP_STATE_DIR")
        .output()
        .expect("run avwap-gate")
}

fn header_only() -> String {
    format!("{}\n", COLUMNS.join(","))
}

fn one_row(scan_date: NaiveDate) -> String {
    let as_of = scan_date - Duration::days(1);
    format!(
        "{}1,{scan_date},AXTA,Long,A,33.02,32.43,1.82,32.10,33.34,33.67,21.734512,Materials,SwingLow20,0.0125,bullish,none,bullish,1.05,bullish,none,bullish,1.82,moderate,none,bullish,{as_of},{as_of}\n",
        header_only()
    )
}

fn set_mtime(path: &Path, at: DateTime<Utc>) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::from(at))
        .unwrap();
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const ZONES: [&str; 4] = [
    "UTC",
    "Asia/Tokyo",
    "America/Los_Angeles",
    "Pacific/Kiritimati",
];

#[test]
fn same_answers_whatever_the_process_tz() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let path = dir.path().join("daily_candidates.csv");

    // Missing.
    for tz in ZONES {
        let out = run_gate(&["--state-dir", state], tz);
        assert_eq!(out.status.code(), Some(1), "{tz}");
        assert_eq!(
            stderr(&out),
            format!("Watchlist missing: {}\n", path.display())
        );
    }

    // Fresh: written now with today's New York ScanDate.
    let today = ny_date(Utc::now());
    std::fs::write(&path, one_row(today)).unwrap();
    for tz in ZONES {
        let out = run_gate(&["--state-dir", state], tz);
        if ny_date(Utc::now()) != today {
            return; // New York midnight passed during the test; the answers below would differ.
        }
        assert_eq!(out.status.code(), Some(0), "{tz}: {}", stderr(&out));
        assert_eq!(
            stdout(&out),
            format!(
                "OK: Watchlist is fresh for today (NY): {} ({today})\n",
                path.display()
            )
        );
    }

    // Stale: written 26 hours ago, so its New York date is yesterday's or earlier.
    let written = Utc::now() - Duration::hours(26);
    set_mtime(&path, written);
    for tz in ZONES {
        let out = run_gate(&["--state-dir", state], tz);
        assert_eq!(out.status.code(), Some(2), "{tz}");
        let expected = format!(
            "Watchlist is not from today (NY). file_date={} today={} path={}\n",
            ny_date(written),
            ny_date(Utc::now()),
            path.display()
        );
        assert_eq!(stderr(&out), expected, "{tz}");
    }
}

#[test]
fn explicit_watchlist_path_and_env_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custom.csv");
    std::fs::write(&path, header_only()).unwrap();
    let out = run_gate(&["--watchlist", path.to_str().unwrap()], "UTC");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = Command::new(GATE)
        .env("AVWAP_STATE_DIR", dir.path())
        .env_remove("AVWAP_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(
        &dir.path()
            .join("daily_candidates.csv")
            .display()
            .to_string()
    ));
}

#[test]
fn garbage_wrong_session_and_usage_errors_have_their_own_codes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daily_candidates.csv");
    let p = path.to_str().unwrap();

    std::fs::write(&path, "Ticker,Price\nAAPL,1\n").unwrap();
    let out = run_gate(&["--watchlist", p], "UTC");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("line 1, column SchemaVersion"),
        "{}",
        stderr(&out)
    );

    let last_week = ny_date(Utc::now()) - Duration::days(7);
    std::fs::write(&path, one_row(last_week)).unwrap();
    let out = run_gate(&["--watchlist", p], "UTC");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("scan_date={last_week}")));

    let out = run_gate(&["--no-such-flag"], "UTC");
    assert_eq!(out.status.code(), Some(10));
    let out = run_gate(&["--config", "/nonexistent/avwap.toml"], "UTC");
    assert_eq!(out.status.code(), Some(10));
    assert!(stderr(&out).contains("/nonexistent/avwap.toml"));
}

#[test]
fn help_documents_every_exit_code() {
    let out = run_gate(&["--help"], "UTC");
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for code in ["0", "1", "2", "3", "4", "5", "10"] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{code} "))),
            "exit code {code} not documented in --help:\n{help}"
        );
    }
}

/// As root, permissions do not stop reads, so the gate is run as `nobody` via setpriv.
#[test]
fn unreadable_watchlist_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daily_candidates.csv");
    std::fs::write(&path, header_only()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    // The directory must be traversable by the unprivileged user; the file itself is not readable.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let is_root = unsafe_free_euid() == 0;
    let out = if is_root {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", GATE])
            .args(["--watchlist", path.to_str().unwrap()])
            .output()
            .expect("setpriv (util-linux) is needed to drop root for this test")
    } else {
        run_gate(&["--watchlist", path.to_str().unwrap()], "UTC")
    };
    if is_root && out.status.code() == Some(127) {
        panic!("cannot run the gate as nobody: {}", stderr(&out));
    }
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let msg = stderr(&out);
    assert!(
        msg.contains("cannot be read") && msg.contains("ermission denied"),
        "{msg}"
    );
}

/// The effective uid, read from /proc so the test needs no libc binding.
fn unsafe_free_euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}
