//! The configuration file as the binaries load it: numbers out of their range are refused with
//! exit 10 naming the key and the range (by `avwap-gate --config` too, the NixOS module's
//! build-time check), a broken file never shows a value, and every end of every range runs
//! the scan and the execution phases without a panic.

use avwap::config::limits::{Bounds, Limit, LIMITS};
use avwap::config::Config;
use avwap::scan::config::MissingBenchmark;
use avwap::scan::demo::{demo_config, demo_source, DEMO_SCAN_DATE};
use avwap::scan::run::{run_scan, MemorySource, PipelineError, ScanPlan};
use proptest::prelude::*;
use std::path::Path;
use std::process::{Command, Output};

const GATE: &str = env!("CARGO_BIN_EXE_avwap-gate");
const SCAN: &str = env!("CARGO_BIN_EXE_avwap-scan");
const EXEC: &str = env!("CARGO_BIN_EXE_avwap-execution");
const CHECK: &str = env!("CARGO_BIN_EXE_avwap-check");

const SECRET: &str = "FAKE-SECRET-zq8Xw3vLeak-canary";

fn run(binary: &str, args: &[&str], config: &Path, state: &Path) -> Output {
    Command::new(binary)
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .env_remove("AVWAP_CONFIG")
        .env_remove("AVWAP_STATE_DIR")
        .env_remove("AVWAP_MODE")
        .env_remove("NOTIFY_SOCKET")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run an avwap binary")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The values of the issue that used to load and then panic (exit 101), mislead, or surface
/// late; each with the key its refusal must name.
const OUT_OF_RANGE: &[(&str, &str)] = &[
    (
        "[execution]\nmax_bar_age_minutes = 9223372036854775807\n",
        "[execution] max_bar_age_minutes",
    ),
    (
        "[execution]\nentry_start_minutes_after_open = -9223372036854775808\n",
        "[execution] entry_start_minutes_after_open",
    ),
    (
        "[execution]\nentry_end_minutes_before_close = 9223372036854775807\n",
        "[execution] entry_end_minutes_before_close",
    ),
    (
        "[execution]\nrisk_per_trade = \"79228162514264337593543950335\"\n",
        "[execution] risk_per_trade",
    ),
    (
        "[execution]\nrisk_per_trade = \"5\"\n",
        "[execution] risk_per_trade",
    ),
    (
        "[execution]\nmax_entry_drift_pct = \"79228162514264337593543950335\"\n",
        "[execution] max_entry_drift_pct",
    ),
    (
        "[execution]\ntrim_fraction = \"-79228162514264337593543950335\"\n",
        "[execution] trim_fraction",
    ),
    (
        "[scan]\nhistory_days = 9223372036854775807\n",
        "[scan] history_days",
    ),
    (
        "[scan]\nhistory_days = -9223372036854775808\n",
        "[scan] history_days",
    ),
    ("[scan]\nmin_coverage = 7\n", "[scan] min_coverage"),
    (
        "[scan.liquidity]\nwindow_calendar_days = 9223372036854775807\n",
        "[scan.liquidity] window_calendar_days",
    ),
    (
        "[alerts]\nrate_limit_minutes = 9223372036854775807\n",
        "[alerts] rate_limit_minutes",
    ),
    (
        "[alpaca]\nrequests_per_minute = 0\n",
        "[alpaca] requests_per_minute",
    ),
    ("[scan.stop]\nbuffer = nan\n", "[scan.stop] buffer"),
];

#[test]
fn out_of_range_values_are_refused_at_load_by_every_binary() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("avwap.toml");
    for (text, key) in OUT_OF_RANGE {
        std::fs::write(&config, text).unwrap();
        let out = run(GATE, &[], &config, &state);
        let msg = stderr(&out);
        assert_eq!(out.status.code(), Some(10), "{text}: {msg}");
        assert!(
            msg.contains(key) && msg.contains("out of range: allowed"),
            "{text}: {msg}"
        );
        assert!(!msg.contains("panicked"), "{msg}");
    }
    // The same file stops the scan, the execution service and the check before they start.
    std::fs::write(
        &config,
        "[execution]\nrisk_per_trade = \"5\"\n[scan]\nmin_coverage = 7\n",
    )
    .unwrap();
    for (binary, args) in [
        (SCAN, &["--demo"][..]),
        (EXEC, &["--once"][..]),
        (CHECK, &[][..]),
    ] {
        let out = run(binary, args, &config, &state);
        let msg = stderr(&out);
        assert_eq!(out.status.code(), Some(10), "{binary}: {msg}");
        assert!(
            msg.contains(
                "[execution] risk_per_trade = 5 is out of range: allowed above 0, up to 0.05"
            ) && msg.contains("[scan] min_coverage = 7 is out of range"),
            "{binary}: {msg}"
        );
    }
    assert!(
        !state.exists(),
        "nothing may be created from a refused configuration"
    );
}

#[test]
fn a_broken_file_never_shows_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("avwap.toml");
    for text in [
        format!("[alpaca]\nsecret_key = \"{SECRET}\"\n"),
        format!("[alpaca]\nfeed = \"{SECRET}\n"),
        format!("[alpaca]\nrequests_per_minute = \"{SECRET}\"\n"),
        format!("mode = \"{SECRET}\"\n"),
    ] {
        std::fs::write(&config, &text).unwrap();
        let out = run(GATE, &[], &config, dir.path());
        let msg = stderr(&out);
        assert_eq!(out.status.code(), Some(10), "{msg}");
        assert!(
            !msg.contains(SECRET) && !msg.contains("zq8Xw3vLeak"),
            "{msg}"
        );
        assert!(msg.contains("line ") && msg.contains("avwap.toml"), "{msg}");
    }
    let out = Command::new(GATE)
        .env("AVWAP_MODE", SECRET)
        .env_remove("AVWAP_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(10));
    assert!(!stderr(&out).contains(SECRET), "{}", stderr(&out));
}

/// The TOML text of a number at each end of `limit`'s range (an open lower end: just above).
fn range_ends(limit: &Limit) -> [String; 2] {
    match limit.bounds {
        Bounds::Int { min, max } => [min.to_string(), max.to_string()],
        Bounds::Float { min, open_min, max } => {
            let low = if open_min { min + 1e-9 } else { min };
            [format!("{low:?}"), format!("{max:?}")]
        }
        Bounds::Decimal { min, open_min, max } => {
            let d = |(m, s): (i64, u32)| rust_decimal::Decimal::new(m, s);
            let low = if open_min {
                d(min) + rust_decimal::Decimal::new(1, 6)
            } else {
                d(min)
            };
            [format!("\"{low}\""), format!("\"{}\"", d(max))]
        }
    }
}

/// Settings another key's end needs to be accepted (the cross-checks), so every end is
/// reachable.
fn companions(section: &str, key: &str) -> &'static [(&'static str, &'static str, &'static str)] {
    match (section, key) {
        ("execution", "entry_start_minutes_after_open") => {
            &[("execution", "entry_end_minutes_before_close", "0")]
        }
        ("execution", "entry_end_minutes_before_close") => {
            &[("execution", "entry_start_minutes_after_open", "0")]
        }
        ("scan.liquidity", "min_bars_in_window") => {
            &[("scan.liquidity", "window_calendar_days", "366")]
        }
        ("scan.liquidity", "window_calendar_days") => {
            &[("scan.liquidity", "min_bars_in_window", "0")]
        }
        ("scan.selection", "near_bonus_min_dist_pct") => {
            &[("scan.selection", "near_bonus_max_dist_pct", "100.0")]
        }
        ("scan.selection", "near_bonus_max_dist_pct") => {
            &[("scan.selection", "near_bonus_min_dist_pct", "0.0")]
        }
        ("scan", "history_days") => &[
            ("scan.gates", "min_bars", "1"),
            ("scan.regime", "sma_len", "1"),
        ],
        ("scan.gates", "min_bars") | ("scan.regime", "sma_len") => {
            &[("scan", "history_days", "3660")]
        }
        _ => &[],
    }
}

/// A file setting `values` (section, key, TOML text), grouped by section.
fn toml_of(values: &[(&str, &str, String)]) -> String {
    let mut sections: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for (section, key, value) in values {
        sections
            .entry(section)
            .or_default()
            .push(format!("{key} = {value}"));
    }
    sections
        .into_iter()
        .map(|(section, lines)| format!("[{section}]\n{}\n", lines.join("\n")))
        .collect()
}

/// About twenty demo symbols: enough to pass through every gate, cheap enough for 180 scans.
fn small_demo() -> MemorySource {
    let mut source = demo_source().unwrap();
    source.bars = std::mem::take(&mut source.bars)
        .into_iter()
        .step_by(25)
        .collect();
    source
}

/// What the services compute from an accepted configuration: a demo scan (its per-symbol
/// panics are caught and counted as failures, so those are asserted too) and the execution
/// phases over a regular day and an early close.
/// Returns whether the scan got as far as evaluating the symbols.
fn exercise(config: &Config, source: &MemorySource, what: &str) -> bool {
    let mut scan = demo_config(&config.scan);
    let mut scanned = false;
    if let Ok(plan) = ScanPlan::for_session(DEMO_SCAN_DATE, &scan) {
        let mut outcome = run_scan(&mut source.clone(), &plan, &scan);
        // Refused after every symbol was evaluated (a coverage floor of 100 %, a regime SMA
        // longer than the demo): evaluate again without those refusals to see the failures.
        if matches!(
            outcome,
            Err(PipelineError::Coverage { .. } | PipelineError::MissingBenchmark { .. })
        ) {
            scan.min_coverage = f64::MIN_POSITIVE;
            scan.regime.on_missing_benchmark = MissingBenchmark::SkipRegime;
            outcome = run_scan(&mut source.clone(), &plan, &scan);
        }
        if let Ok(outcome) = outcome {
            assert!(
                outcome.failures.is_empty(),
                "{what}: {:?}",
                outcome.failures
            );
            scanned = true;
        }
    }
    for at in [
        "2026-11-30T14:00:00Z",
        "2026-11-30T14:30:00Z",
        "2026-11-30T17:00:00Z",
        "2026-11-30T20:59:00Z",
        "2026-11-27T17:59:00Z",
        "2026-11-28T12:00:00Z",
    ] {
        let now: chrono::DateTime<chrono::Utc> = at.parse().unwrap();
        let _ = avwap::execution::phases::phase(now, &config.execution);
        let wait = avwap::execution::phases::poll_interval(now, &config.execution);
        assert!(
            wait.as_secs() >= 1 && wait.as_secs() <= 24 * 3600,
            "{what}: {wait:?}"
        );
    }
    scanned
}

#[test]
fn every_end_of_every_range_is_accepted_and_runs_the_scan_and_the_phases() {
    let source = small_demo();
    let (mut cases, mut scanned, mut not_scanned) = (0, 0, Vec::new());
    for limit in LIMITS {
        for end in range_ends(limit) {
            let mut values = vec![(limit.section, limit.key, end.clone())];
            for (section, key, value) in companions(limit.section, limit.key) {
                values.push((section, key, value.to_string()));
            }
            let text = toml_of(&values);
            let what = format!("{} = {end}", limit.full_key());
            let config = Config::from_toml(&text, Path::new("ends.toml"))
                .unwrap_or_else(|e| panic!("{what} refused: {e}"));
            cases += 1;
            if exercise(&config, &source, &what) {
                scanned += 1;
            } else {
                not_scanned.push(what);
            }
        }
    }
    // Every case must have reached the symbols (a scan refusing early proves nothing).
    assert_eq!(
        scanned, cases,
        "{scanned} of {cases} configurations scanned; not: {not_scanned:?}"
    );
}

/// A value inside `limit`'s range, from `seed`.
fn inside(limit: &Limit, seed: u64) -> String {
    let fraction = (seed % 1_000_001) as f64 / 1_000_000.0;
    match limit.bounds {
        Bounds::Int { min, max } => {
            let span = (max - min) as u64 + 1;
            (min + (seed % span) as i64).to_string()
        }
        Bounds::Float { min, max, .. } => {
            format!("{:?}", (min + (max - min) * fraction).max(min + 1e-9))
        }
        Bounds::Decimal { min, max, .. } => {
            let d = |(m, s): (i64, u32)| rust_decimal::Decimal::new(m, s);
            let f = rust_decimal::Decimal::new((seed % 1_000_001) as i64, 6);
            let v = (d(min) + (d(max) - d(min)) * f).max(d(min) + rust_decimal::Decimal::new(1, 6));
            format!("\"{}\"", v.round_dp(6))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random values inside the ranges, several keys at once: accepted ones (the cross-checks
    /// refuse some combinations) run the scan and the phases without a panic.
    #[test]
    fn values_inside_the_ranges_never_panic(seeds in proptest::collection::vec(any::<u64>(), 12)) {
        let source = small_demo();
        let values: Vec<(&str, &str, String)> = seeds
            .chunks(2)
            .map(|pair| {
                let limit = &LIMITS[(pair[0] % LIMITS.len() as u64) as usize];
                (limit.section, limit.key, inside(limit, pair[1]))
            })
            .collect();
        // A key drawn twice keeps its first value (TOML refuses duplicates).
        let mut seen = std::collections::HashSet::new();
        let values: Vec<_> = values.into_iter().filter(|(s, k, _)| seen.insert((*s, *k))).collect();
        let text = toml_of(&values);
        if let Ok(config) = Config::from_toml(&text, Path::new("inside.toml")) {
            let _ = exercise(&config, &source, &text);
        }
    }
}
