//! Checks the NYSE calendar against every XNYS session of exchange_calendars, both ways:
//! each golden session must be a session here with the same open and close, and each
//! other date of 2000–2035 must be closed here.
//!
//! The golden file is produced by `tools/calendar_golden.py` (see its header for the
//! version); regenerate it rather than editing it by hand.

use std::collections::BTreeSet;

use avwap::calendar::{is_session, session, FIRST_YEAR, LAST_YEAR};
use chrono::{DateTime, NaiveDate, Utc};

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/nyse_sessions_2000_2035.csv"
);

/// Dates where avwap deliberately disagrees with exchange_calendars because the
/// reference is wrong, each with the source that says so. Empty: every difference found
/// so far was a bug on our side.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

struct GoldenRow {
    date: NaiveDate,
    open: DateTime<Utc>,
    close: DateTime<Utc>,
}

fn read_golden() -> Vec<GoldenRow> {
    let text = std::fs::read_to_string(GOLDEN)
        .unwrap_or_else(|e| panic!("cannot read {GOLDEN}: {e} (run tools/calendar_golden.py)"));
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("date,open_utc,close_utc"),
        "{GOLDEN}: header"
    );
    lines
        .enumerate()
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split(',').collect();
            let [date, open, close] = fields[..] else {
                panic!("{GOLDEN}:{}: expected 3 fields: {line}", i + 2)
            };
            let bad = |what: &str| format!("{GOLDEN}:{}: bad {what}: {line}", i + 2);
            GoldenRow {
                date: date.parse().unwrap_or_else(|_| panic!("{}", bad("date"))),
                open: open.parse().unwrap_or_else(|_| panic!("{}", bad("open"))),
                close: close.parse().unwrap_or_else(|_| panic!("{}", bad("close"))),
            }
        })
        .collect()
}

fn known_difference(date: NaiveDate) -> bool {
    let text = date.to_string();
    KNOWN_DIFFERENCES.iter().any(|(d, _)| *d == text)
}

#[test]
fn calendar_matches_exchange_calendars_xnys_2000_2035() {
    let golden = read_golden();
    let first = NaiveDate::from_ymd_opt(FIRST_YEAR, 1, 1).unwrap();
    let last = NaiveDate::from_ymd_opt(LAST_YEAR, 12, 31).unwrap();
    // A truncated file would otherwise pass the "golden rows are sessions" half.
    assert_eq!(
        golden.first().map(|r| r.date),
        NaiveDate::from_ymd_opt(2000, 1, 3)
    );
    assert_eq!(golden.last().map(|r| r.date), Some(last));

    let mut mismatches = Vec::new();
    let mut golden_dates = BTreeSet::new();
    for row in &golden {
        golden_dates.insert(row.date);
        if known_difference(row.date) {
            continue;
        }
        match session(row.date) {
            Ok(Some(s)) => {
                if s.open != row.open || s.close != row.close {
                    mismatches.push(format!(
                        "{}: ours {}..{} (early_close={}), golden {}..{}",
                        row.date, s.open, s.close, s.early_close, row.open, row.close
                    ));
                } else if s.early_close != (s.close - s.open < chrono::Duration::hours(6)) {
                    mismatches.push(format!(
                        "{}: early_close={} disagrees with close {}",
                        row.date, s.early_close, s.close
                    ));
                }
            }
            Ok(None) => mismatches.push(format!(
                "{}: ours closed, golden session {}..{}",
                row.date, row.open, row.close
            )),
            Err(e) => mismatches.push(format!("{}: ours error {e}", row.date)),
        }
    }
    assert_eq!(
        golden_dates.len(),
        golden.len(),
        "duplicate dates in {GOLDEN}"
    );

    let mut compared_closed = 0usize;
    for date in first.iter_days().take_while(|d| *d <= last) {
        if golden_dates.contains(&date) || known_difference(date) {
            continue;
        }
        compared_closed += 1;
        match is_session(date) {
            Ok(false) => {}
            Ok(true) => mismatches.push(format!("{date}: ours session, golden closed")),
            Err(e) => mismatches.push(format!("{date}: ours error {e}")),
        }
    }

    println!(
        "compared {} golden sessions and {compared_closed} closed dates ({} known differences)",
        golden.len(),
        KNOWN_DIFFERENCES.len()
    );
    if !mismatches.is_empty() {
        panic!(
            "{} mismatches against {GOLDEN} (first 20):\n{}",
            mismatches.len(),
            mismatches
                .iter()
                .take(20)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
