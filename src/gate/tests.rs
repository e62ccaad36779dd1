use super::*;
use crate::calendar::ny_instant;
use crate::watchlist::{render, WatchlistRow};
use chrono::NaiveTime;
use std::fs::File;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// New York wall time → instant.
fn ny(day: &str, hh: u32, mm: u32) -> DateTime<Utc> {
    ny_instant(date(day), NaiveTime::from_hms_opt(hh, mm, 0).unwrap())
}

fn row_for(scan_date: NaiveDate) -> WatchlistRow {
    let mut row = crate::watchlist::tests_support::sample_row();
    row.scan_date = scan_date;
    row.data_as_of = scan_date.pred_opt().unwrap();
    row.anchor_date = row.data_as_of;
    row
}

/// Write a watchlist whose mtime is `written_at`.
fn write_list(dir: &Path, bytes: &[u8], written_at: DateTime<Utc>) -> PathBuf {
    let path = dir.join("daily_candidates.csv");
    std::fs::write(&path, bytes).unwrap();
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(SystemTime::from(written_at))
        .unwrap();
    path
}

fn list_for(scan_date: NaiveDate) -> Vec<u8> {
    render(&[row_for(scan_date)])
}

#[test]
fn fresh_list_passes_with_the_predecessor_message() {
    let dir = tempfile::tempdir().unwrap();
    let now = ny("2026-11-30", 8, 45);
    let path = write_list(
        dir.path(),
        &list_for(date("2026-11-30")),
        ny("2026-11-30", 8, 31),
    );
    let verdict = check_watchlist(&path, now);
    assert!(verdict.is_fresh(), "{verdict:?}");
    assert_eq!(verdict.exit_code().code(), 0);
    assert_eq!(
        verdict.message(),
        format!(
            "OK: Watchlist is fresh for today (NY): {} (2026-11-30)",
            path.display()
        )
    );
}

#[test]
fn missing_list_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daily_candidates.csv");
    let verdict = check_watchlist(&path, ny("2026-11-30", 8, 45));
    assert_eq!(verdict, GateVerdict::Missing { path: path.clone() });
    assert_eq!(verdict.exit_code().code(), 1);
    assert_eq!(
        verdict.message(),
        format!("Watchlist missing: {}", path.display())
    );
}

#[test]
fn yesterdays_list_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_list(
        dir.path(),
        &list_for(date("2026-11-27")),
        ny("2026-11-27", 8, 31),
    );
    let verdict = check_watchlist(&path, ny("2026-11-30", 8, 40));
    assert_eq!(verdict.exit_code().code(), 2);
    assert_eq!(
        verdict.message(),
        format!(
            "Watchlist is not from today (NY). file_date=2026-11-27 today=2026-11-30 path={}",
            path.display()
        )
    );
}

#[test]
fn written_2359_checked_0001_next_day_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_list(
        dir.path(),
        &list_for(date("2026-12-01")),
        ny("2026-11-30", 23, 59),
    );
    let verdict = check_watchlist(&path, ny("2026-12-01", 0, 1));
    assert_eq!(
        verdict,
        GateVerdict::Stale {
            path,
            file_date: date("2026-11-30"),
            today: date("2026-12-01"),
        }
    );
}

#[test]
fn midnight_ny_is_not_midnight_utc() {
    // 23:30 NY on Nov 30 is already Dec 1 in UTC; the file is still today's in New York.
    let dir = tempfile::tempdir().unwrap();
    let path = write_list(
        dir.path(),
        &list_for(date("2026-11-30")),
        ny("2026-11-30", 0, 5),
    );
    assert!(check_watchlist(&path, ny("2026-11-30", 23, 30)).is_fresh());
    // And 20:00 NY the day before is already "today" in UTC, but not in New York.
    let path = write_list(
        dir.path(),
        &list_for(date("2026-11-30")),
        ny("2026-11-29", 20, 0),
    );
    assert_eq!(
        check_watchlist(&path, ny("2026-11-30", 8, 40))
            .exit_code()
            .code(),
        2
    );
}

#[test]
fn dst_transition_days_2026_and_2027() {
    // Spring-forward and fall-back Sundays, plus the weekdays that follow them.
    for day in ["2026-03-08", "2026-11-01", "2027-03-14", "2027-11-07"] {
        let d = date(day);
        let prev = d.pred_opt().unwrap().to_string();
        let dir = tempfile::tempdir().unwrap();
        // Written just after midnight, checked late the same day: fresh across the change.
        let path = write_list(dir.path(), &list_for(d), ny(day, 0, 1));
        assert!(check_watchlist(&path, ny(day, 23, 59)).is_fresh(), "{day}");
        // Written at 23:59 the evening before, checked just after midnight: stale.
        let path = write_list(dir.path(), &list_for(d), ny(&prev, 23, 59));
        let verdict = check_watchlist(&path, ny(day, 0, 1));
        assert_eq!(verdict.exit_code().code(), 2, "{day}: {verdict:?}");
        // Written in the hour that repeats or is skipped, checked at 08:40.
        let path = write_list(dir.path(), &list_for(d), ny(day, 1, 30));
        assert!(check_watchlist(&path, ny(day, 8, 40)).is_fresh(), "{day}");
        let path = write_list(dir.path(), &list_for(d), ny(day, 3, 0));
        assert!(check_watchlist(&path, ny(day, 8, 40)).is_fresh(), "{day}");
    }
    // The Monday after a change, 08:30 scan / 08:40 gate, from either side of UTC midnight.
    for day in ["2026-03-09", "2026-11-02", "2027-03-15", "2027-11-08"] {
        let dir = tempfile::tempdir().unwrap();
        let path = write_list(dir.path(), &list_for(date(day)), ny(day, 8, 30));
        assert!(check_watchlist(&path, ny(day, 8, 40)).is_fresh(), "{day}");
    }
}

#[test]
fn both_fall_back_occurrences_of_0130_are_the_same_ny_date() {
    let dir = tempfile::tempdir().unwrap();
    let first = ny("2026-11-01", 1, 30); // EDT
    let second = first + chrono::Duration::hours(1); // 01:30 EST
    assert_eq!(ny_date(first), ny_date(second));
    let path = write_list(dir.path(), &list_for(date("2026-11-01")), second);
    assert!(check_watchlist(&path, first).is_fresh());
}

#[test]
fn header_only_list_passes() {
    let dir = tempfile::tempdir().unwrap();
    let now = ny("2026-11-30", 8, 40);
    let path = write_list(dir.path(), &render(&[]), now);
    assert_eq!(
        check_watchlist(&path, now),
        GateVerdict::Fresh {
            path,
            today: date("2026-11-30"),
            candidates: 0
        }
    );
}

#[test]
fn truncated_or_garbage_list_fails_with_its_own_code() {
    let dir = tempfile::tempdir().unwrap();
    let now = ny("2026-11-30", 8, 40);
    let good = list_for(date("2026-11-30"));
    let cases: Vec<Vec<u8>> = vec![
        good[..good.len() - 20].to_vec(),
        Vec::new(),
        b"<html>blocked</html>\n".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x13, b'\n'],
    ];
    for bytes in cases {
        let path = write_list(dir.path(), &bytes, now);
        let verdict = check_watchlist(&path, now);
        assert!(
            matches!(verdict, GateVerdict::Invalid { .. }),
            "{verdict:?}"
        );
        assert_eq!(verdict.exit_code().code(), 3);
        assert!(verdict.message().contains("line "), "{}", verdict.message());
    }
}

#[test]
fn a_list_for_another_session_fails_even_if_written_today() {
    let dir = tempfile::tempdir().unwrap();
    let now = ny("2026-11-30", 8, 40);
    let path = write_list(dir.path(), &list_for(date("2026-11-27")), now);
    let verdict = check_watchlist(&path, now);
    assert_eq!(
        verdict,
        GateVerdict::WrongSession {
            path: path.clone(),
            scan_date: date("2026-11-27"),
            today: date("2026-11-30"),
        }
    );
    assert_eq!(verdict.exit_code().code(), 4);
}

#[test]
fn a_directory_at_the_path_is_not_a_regular_file() {
    // A directory where the file should be: refused by what it is, also as root.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daily_candidates.csv");
    std::fs::create_dir(&path).unwrap();
    let now = DateTime::<Utc>::from(std::fs::metadata(&path).unwrap().modified().unwrap());
    let verdict = check_watchlist(&path, now);
    assert_eq!(
        verdict,
        GateVerdict::NotRegular {
            path: path.clone(),
            kind: "a directory"
        }
    );
    assert_eq!(verdict.exit_code().code(), 5);
    assert_eq!(
        verdict.message(),
        format!(
            "Watchlist cannot be read: it is a directory, not a regular file. path={} \
             (remove it and re-run the scan: systemctl start scan.service)",
            path.display()
        )
    );
}

#[test]
fn a_fifo_at_the_path_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daily_candidates.csv");
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(status.success());
    let started = std::time::Instant::now();
    let verdict = check_watchlist(&path, Utc::now());
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(
        verdict,
        GateVerdict::NotRegular {
            path,
            kind: "a FIFO (named pipe)"
        }
    );
    assert_eq!(verdict.exit_code().code(), 5);
}

#[test]
fn only_line_ends_today_is_invalid_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let now = ny("2026-11-30", 8, 40);
    for bytes in [&b"\n"[..], b"\r\n", b"\xef\xbb\xbf\n"] {
        let path = write_list(dir.path(), bytes, now);
        let verdict = check_watchlist(&path, now);
        assert_eq!(verdict.exit_code().code(), 3, "{bytes:?}: {verdict:?}");
        assert!(
            verdict
                .message()
                .contains("line 1, column (header): the file is empty"),
            "{}",
            verdict.message()
        );
    }
}

#[test]
fn an_oversized_list_is_invalid_and_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let now = ny("2026-11-30", 8, 40);
    let path = write_list(dir.path(), &list_for(date("2026-11-30")), now);
    // Sparse 100 MB: a valid start, then zeros the gate must never read.
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(100_000_000)
        .unwrap();
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(SystemTime::from(now))
        .unwrap();
    let verdict = check_watchlist(&path, now);
    assert!(
        matches!(verdict, GateVerdict::Invalid { .. }),
        "{verdict:?}"
    );
    assert_eq!(verdict.exit_code().code(), 3);
    let message = verdict.message();
    assert!(
        message
            .contains("is 100000000 bytes, more than the 1048576 bytes accepted for a watchlist"),
        "{message}"
    );
    assert!(message.len() < 600, "{message}");
}

#[test]
fn a_huge_header_is_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let now = ny("2026-11-30", 8, 40);
    let mut bytes = vec![b'H'; 1_000_000];
    bytes.push(b'\n');
    let path = write_list(dir.path(), &bytes, now);
    let verdict = check_watchlist(&path, now);
    assert_eq!(verdict.exit_code().code(), 3);
    assert!(verdict.message().len() < 700, "{}", verdict.message());
}

#[test]
fn decision_is_pure_over_observations() {
    let path = Path::new("/var/lib/avwap/daily_candidates.csv");
    let now = ny("2026-11-30", 8, 40);
    let denied = Observed::Unreadable(io::Error::from(io::ErrorKind::PermissionDenied));
    let verdict = decide(path, now, denied);
    assert_eq!(verdict.exit_code().code(), 5);
    assert!(
        verdict.message().contains("ermission denied"),
        "{}",
        verdict.message()
    );
}
