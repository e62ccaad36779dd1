//! The real `avwap-scan` binary: demo, determinism, no lookahead, providers, broken inputs.

use avwap::market_data::{BarStore, DailyBar};
use avwap::watchlist::read_watchlist;
use chrono::NaiveDate;
use std::path::Path;
use std::process::{Command, Output};

const SCAN: &str = env!("CARGO_BIN_EXE_avwap-scan");
const DEMO_BARS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/demo/bars.csv.gz");

fn scan(args: &[&str], state_dir: &Path) -> Output {
    Command::new(SCAN)
        .args(args)
        .arg("--state-dir")
        .arg(state_dir)
        .env_remove("AVWAP_CONFIG")
        .env_remove("AVWAP_STATE_DIR")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run avwap-scan")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn scan_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("scan.json")).unwrap()).unwrap()
}

/// A config file selecting the equal-weight benchmark (the demo data has no SPY).
fn equal_weight_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("avwap.toml");
    std::fs::write(
        &path,
        format!("[scan.regime]\nbenchmark = \"equal-weight\"\n{extra}"),
    )
    .unwrap();
    path
}

#[test]
fn demo_runs_offline_and_its_csv_passes_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let out = scan(&["--demo"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = read_watchlist(&dir.path().join("daily_candidates.csv")).unwrap();
    // 2010-08-20: the equal-weight index is below its 200-day SMA, so the list is empty and
    // the demo shows what the regime held back.
    assert!(rows.is_empty());
    assert!(
        stdout(&out).contains("regime filter is bearish"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("GENZ"), "{}", stdout(&out));
    // candidates.html says so too and charts the 18 held-back symbols, for reference.
    let html = std::fs::read_to_string(dir.path().join("candidates.html")).unwrap();
    assert!(html.contains("For reference only"), "{html}");
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 18);
    let json = scan_json(dir.path());
    assert_eq!(json["scan_date"], "2010-08-23");
    assert_eq!(json["data_as_of"], "2010-08-20");
    assert_eq!(json["counts"]["universe"], 524);
    assert_eq!(json["data_defects"]["totals"]["open_outside_range"], 78);
    assert_eq!(json["regime"]["state"], "bearish");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tradingview_watchlist.txt")).unwrap(),
        ""
    );
}

#[test]
fn demo_on_a_bullish_session_writes_twenty_ranked_rows() {
    let dir = tempfile::tempdir().unwrap();
    let out = scan(&["--demo", "--as-of", "2010-08-09"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = read_watchlist(&dir.path().join("daily_candidates.csv")).unwrap();
    assert_eq!(rows.len(), 20);
    for row in &rows {
        assert_eq!(row.scan_date, date("2010-08-09"));
        assert_eq!(row.data_as_of, date("2010-08-06"));
        assert!(row.entry_dist_pct > rust_decimal::Decimal::ZERO);
        assert!(row.stop_loss < row.price);
        assert!(row.target_r2 >= row.target_r1);
    }
    // Ranked by TrendScore, descending (all Tier A).
    assert!(rows
        .windows(2)
        .all(|w| w[0].trend_score >= w[1].trend_score));
    let tv = std::fs::read_to_string(dir.path().join("tradingview_watchlist.txt")).unwrap();
    let symbols: Vec<&str> = tv.lines().collect();
    assert_eq!(
        symbols,
        rows.iter().map(|r| r.symbol.as_str()).collect::<Vec<_>>()
    );
    let json = scan_json(dir.path());
    assert_eq!(json["counts"]["written"], 20);
    assert!(json["counts"]["passed_gates"].as_u64().unwrap() >= 20);
    assert_eq!(json["candidates"].as_array().unwrap().len(), 20);
    // candidates.html: one chart per candidate, each next to its row; self-contained.
    let html = std::fs::read_to_string(dir.path().join("candidates.html")).unwrap();
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 20);
    for row in &rows {
        assert!(
            html.contains(&format!("<h2 id=\"{}\">", row.symbol)),
            "{}",
            row.symbol
        );
    }
    assert!(
        !html.contains("NaN")
            && !html.contains("<script")
            && !html.contains("src=")
            && !html.contains("href=")
    );
    // The terminal table names its columns for what they are: the AVWAP is not the price.
    let table = stdout(&out);
    let header = table.lines().find(|l| l.starts_with("rank")).unwrap();
    for column in [
        "price",
        "avwap",
        "stop",
        "R1",
        "R2",
        "risk/sh",
        "reward/risk",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert!(!header.contains("entry"), "{header}");
}

#[test]
fn same_scan_on_same_data_is_byte_identical() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for dir in [a.path(), b.path(), a.path()] {
        let out = scan(&["--demo", "--as-of", "2010-07-26"], dir);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let first = std::fs::read(a.path().join("daily_candidates.csv")).unwrap();
    let second = std::fs::read(b.path().join("daily_candidates.csv")).unwrap();
    assert!(first.len() > 1000, "expected candidates");
    assert_eq!(first, second);
}

#[test]
fn as_of_never_reads_later_bars_and_store_matches_csv_provider() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let config = equal_weight_config(state, "");
    let config = config.to_str().unwrap();
    let out = scan(&["import", DEMO_BARS], state);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("imported 122574 of 122574 rows (524 symbols)"),
        "{}",
        stdout(&out)
    );

    let as_of = "2010-08-09";
    let out = scan(&["--config", config, "--as-of", as_of], state);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = std::fs::read(state.join("daily_candidates.csv")).unwrap();
    assert!(
        read_watchlist(&state.join("daily_candidates.csv"))
            .unwrap()
            .len()
            == 20
    );

    // The CSV provider on the same file gives the same list.
    let csv_dir = tempfile::tempdir().unwrap();
    let out = scan(
        &[
            "--config",
            config,
            "--as-of",
            as_of,
            "--provider",
            "csv",
            "--csv",
            DEMO_BARS,
        ],
        csv_dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(csv_dir.path().join("daily_candidates.csv")).unwrap(),
        before
    );

    // Wreck every bar from the scan date on (wild prices, zero volume, a crash) ...
    let mut store = BarStore::open(&state.join("bars.sqlite")).unwrap();
    let first_later = date(as_of);
    let mut wrecked = 0;
    for symbol in store.symbols().unwrap() {
        let later: Vec<DailyBar> = store
            .bars(&symbol, Some(first_later), None)
            .unwrap()
            .into_iter()
            .map(|b| DailyBar {
                open: b.open * 3.0,
                high: b.high * 5.0,
                low: b.low * 0.1,
                close: b.close * 0.2,
                volume: 0.0,
                ..b
            })
            .collect();
        wrecked += later.len();
        store.upsert(&symbol, &later).unwrap();
    }
    drop(store);
    assert!(wrecked > 4000, "{wrecked}");
    // ... and the scan as of that date does not change by a byte.
    let out = scan(&["--config", config, "--as-of", as_of], state);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(state.join("daily_candidates.csv")).unwrap(),
        before
    );
}

#[test]
fn non_session_day_says_so_and_leaves_the_list_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("daily_candidates.csv"), "sentinel").unwrap();
    for day in ["2010-08-21", "2010-07-05"] {
        let out = scan(&["--demo", "--as-of", day], dir.path());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            stdout(&out).contains("is not an NYSE session"),
            "{}",
            stdout(&out)
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("daily_candidates.csv")).unwrap(),
        "sentinel"
    );
}

#[test]
fn broken_inputs_give_clear_errors_and_keep_the_old_list() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    std::fs::write(state.join("daily_candidates.csv"), "old").unwrap();

    // No store at all.
    let out = scan(&["--as-of", "2010-08-09"], state);
    assert_eq!(out.status.code(), Some(13));
    assert!(stderr(&out).contains("no bar store"), "{}", stderr(&out));

    // An empty store.
    BarStore::open(&state.join("bars.sqlite")).unwrap();
    let out = scan(&["--as-of", "2010-08-09"], state);
    assert_eq!(out.status.code(), Some(13));
    assert!(stderr(&out).contains("no bars at all"), "{}", stderr(&out));

    // A CSV with the wrong columns.
    let bad = state.join("bad.csv");
    std::fs::write(&bad, "Ticker,When,Price\nAAPL,2010-08-02,10\n").unwrap();
    let out = scan(
        &[
            "--provider",
            "csv",
            "--csv",
            bad.to_str().unwrap(),
            "--as-of",
            "2010-08-09",
        ],
        state,
    );
    assert_eq!(out.status.code(), Some(13));
    assert!(stderr(&out).contains("Date"), "{}", stderr(&out));
    let out = scan(&["import", bad.to_str().unwrap()], state);
    assert_eq!(out.status.code(), Some(13));

    // A non-numeric cell is rejected with its line number; the rest is imported.
    let cell = state.join("cell.csv");
    std::fs::write(
        &cell,
        "Date,Symbol,Open,High,Low,Close,Volume\n2010-08-02,AAA,10,11,9,10.5,1000\n2010-08-03,AAA,10,eleven,9,10.5,1000\n",
    )
    .unwrap();
    let out = scan(&["import", cell.to_str().unwrap()], state);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains(":3:"), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("imported 1 of 2 rows"),
        "{}",
        stdout(&out)
    );

    // Data that stops before the data date: coverage below the floor.
    let out = scan(&["--as-of", "2010-08-09"], state);
    assert_eq!(out.status.code(), Some(13));
    assert!(
        stderr(&out).contains("scan.min_coverage"),
        "{}",
        stderr(&out)
    );

    // SPY missing while it is the configured benchmark.
    let out = scan(
        &[
            "--provider",
            "csv",
            "--csv",
            DEMO_BARS,
            "--as-of",
            "2010-08-09",
        ],
        state,
    );
    assert_eq!(out.status.code(), Some(13));
    assert!(stderr(&out).contains("benchmark SPY"), "{}", stderr(&out));

    // An unknown config key.
    let cfg = state.join("typo.toml");
    std::fs::write(&cfg, "[scan]\nmax_candidate = 5\n").unwrap();
    let out = scan(&["--config", cfg.to_str().unwrap(), "--demo"], state);
    assert_eq!(out.status.code(), Some(10));
    assert!(stderr(&out).contains("max_candidate"), "{}", stderr(&out));

    assert_eq!(
        std::fs::read_to_string(state.join("daily_candidates.csv")).unwrap(),
        "old"
    );
}

#[test]
fn defects_are_counted_and_reported_never_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    // Real demo bars plus one extra symbol carrying every defect.
    let mut text = String::from("Date,Symbol,Open,High,Low,Close,Volume\n");
    let rows = [
        "2010-08-02,ZZZ,10,11,9,10.5,1000",
        "2010-08-03,ZZZ,10,9,11,10.5,1000", // high < low
        "2010-08-04,ZZZ,12,11,9,10.5,1000", // open outside range
        "2010-08-05,ZZZ,10,11,9,12,1000",   // close outside range
        "2010-08-06,ZZZ,0,11,9,10.5,1000",  // non-positive price
        "2010-08-09,ZZZ,10,11,9,10.5,0",    // zero volume
        "2010-08-10,ZZZ,10,11,9,10.5,-5",   // negative volume
        "2010-08-07,ZZZ,10,11,9,10.5,1000", // Saturday
        "2010-08-13,ZZZ,10,11,9,10.5,1000", // gap: 08-11 and 08-12 missing
    ];
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    let extra = state.join("zzz.csv");
    std::fs::write(&extra, text).unwrap();
    let cfg = equal_weight_config(state, "");
    let out = scan(&["import", DEMO_BARS, extra.to_str().unwrap()], state);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The import applies the same policy: the five bars the scanner drops are rejected with
    // their line numbers; the clamped open, the zero volume and the gap are stored as written.
    assert!(
        stdout(&out).contains("5 rows rejected (5 of them defective bars"),
        "{}",
        stdout(&out)
    );
    for line in [3, 5, 6, 8, 9] {
        assert!(
            stderr(&out).contains(&format!("zzz.csv:{line}: ")),
            "{line}: {}",
            stderr(&out)
        );
    }
    // A store written by another tool (or an older avwap) may still hold such bars: the scan
    // drops and counts them.
    let defective: Vec<DailyBar> = rows
        .iter()
        .map(|r| {
            let f: Vec<&str> = r.split(',').collect();
            let n = |i: usize| f[i].parse::<f64>().unwrap();
            DailyBar {
                date: date(f[0]),
                open: n(2),
                high: n(3),
                low: n(4),
                close: n(5),
                volume: n(6),
            }
        })
        .collect();
    BarStore::open(&state.join("bars.sqlite"))
        .unwrap()
        .upsert("ZZZ", &defective)
        .unwrap();
    let out = scan(
        &["--config", cfg.to_str().unwrap(), "--as-of", "2010-08-16"],
        state,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json = scan_json(state);
    let zzz = &json["data_defects"]["by_symbol"]["ZZZ"];
    for (field, n) in [
        ("high_below_low", 1),
        ("open_outside_range", 1),
        ("close_outside_range", 1),
        ("bad_price", 1),
        ("zero_volume", 1),
        ("bad_volume", 1),
        ("non_session_date", 1),
    ] {
        assert_eq!(zzz[field], n, "{field}: {zzz}");
    }
    assert!(zzz["missing_sessions"].as_u64().unwrap() >= 2, "{zzz}");
    // ZZZ has a handful of bars: rejected for its short recent history, not an error.
    assert!(
        json["counts"]["rejected"]["too_few_recent_bars"]
            .as_u64()
            .unwrap()
            >= 1,
        "{}",
        json["counts"]
    );
}

#[test]
fn predecessor_compat_mode_anchors_calendar_anchors_at_the_first_bar() {
    let normal = tempfile::tempdir().unwrap();
    let compat = tempfile::tempdir().unwrap();
    let cfg = compat.path().join("compat.toml");
    std::fs::write(&cfg, "[scan.compat]\npredecessor = true\n").unwrap();

    let out_normal = scan(&["--demo"], normal.path());
    let out_compat = scan(
        &["--demo", "--config", cfg.to_str().unwrap()],
        compat.path(),
    );
    assert_eq!(out_normal.status.code(), Some(0), "{}", stderr(&out_normal));
    assert_eq!(out_compat.status.code(), Some(0), "{}", stderr(&out_compat));
    // Our MTD anchor is the first session of August 2010; the predecessor's MTD shared bar 0
    // with YTD and was deduplicated away, so it never appears.
    let (a, b) = (stdout(&out_normal), stdout(&out_compat));
    assert!(a.contains("MTD         2010-08-02"), "{a}");
    assert!(!b.contains("MTD"), "{b}");
    assert_eq!(scan_json(compat.path())["compat_predecessor"], true);
    assert_eq!(scan_json(normal.path())["compat_predecessor"], false);
}

#[test]
fn synthetic_provider_scans_up_to_the_previous_session() {
    let dir = tempfile::tempdir().unwrap();
    // Monday after Thanksgiving weekend: the data date is the early-close Friday.
    let out = scan(
        &["--provider", "synthetic", "--as-of", "2026-11-30"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = read_watchlist(&dir.path().join("daily_candidates.csv")).unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r.data_as_of == date("2026-11-27")));
    let json = scan_json(dir.path());
    assert!(json["provider"].as_str().unwrap().contains("not real data"));
}
