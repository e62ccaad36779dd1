//! Backtest benchmark: the live scan and engine over many sessions, in a fresh child process
//! per size (so peak RSS is that run's own).
//!
//! `cargo bench --bench backtest` prints, for each size, the time to load the data, the time
//! of the backtest itself (scan each morning on a second thread, the engine's cycles every 10
//! minutes on the in-memory book), the time to render the outputs (metrics, CSV files,
//! report.html), the sessions and round trips, and peak RSS (VmHWM); and the
//! machine's load (`/proc/loadavg`) before and after.
//!
//! - `demo`: the bundled demo data, 2010-03-01..2010-08-20 (122 sessions). Target ≤ 5 s.
//! - `r3k`: 3,000 synthetic symbols × 520 sessions (the store `benches/scan.rs` builds, built
//!   here too when missing), backtesting the last 250 sessions with the equal-weight regime.
//!   Target ≤ 30 s on 2 cores, peak RSS ≤ 1 GB.

use avwap::backtest::backtest;
use avwap::backtest::data::BacktestData;
use avwap::config::Config;
use avwap::market_data::synthetic::SyntheticMarket;
use avwap::scan::config::{ScanConfig, EQUAL_WEIGHT_BENCHMARK};
use chrono::NaiveDate;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;
use common::{build_store, peak_rss_mb};

const CHILD_ENV: &str = "AVWAP_BACKTEST_BENCH_CHILD";
const BACKTEST_SESSIONS: usize = 250;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("valid date")
}

fn r3k_last_session() -> NaiveDate {
    day("2026-11-25")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

fn store_path(market: &SyntheticMarket) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-data")
        .join(format!(
            "r3k-seed{}-{}x{}.sqlite",
            market.seed, market.symbols, market.sessions
        ))
}

/// Child: load, run, print one line.
fn child(size: &str) {
    let config = Config::default();
    let started = Instant::now();
    let (data, from, to) = match size {
        "demo" => {
            let (from, to) = (day("2010-03-01"), day("2010-08-20"));
            (
                BacktestData::demo(&config.scan, to).expect("demo data"),
                from,
                to,
            )
        }
        "r3k" => {
            let market = SyntheticMarket::russell_3000(r3k_last_session());
            let dates = market.session_dates().expect("sessions");
            let mut scan = ScanConfig::default();
            scan.regime.benchmark = EQUAL_WEIGHT_BENCHMARK.to_string();
            let to = dates[dates.len() - 1];
            let from = dates[dates.len() - BACKTEST_SESSIONS];
            (
                BacktestData::from_store(&store_path(&market), &scan, to).expect("bench store"),
                from,
                to,
            )
        }
        other => panic!("unknown size {other}"),
    };
    let load = started.elapsed().as_secs_f64();
    let rss_loaded = peak_rss_mb();
    let started = Instant::now();
    let run = backtest(&config, &data, from, to).expect("backtest");
    let seconds = started.elapsed().as_secs_f64();
    // What the command adds: metrics, the CSV files and report.html (one chart per trip).
    let started = Instant::now();
    let rendered = avwap::backtest::rendered::render(&run, &data).expect("render outputs");
    let render = started.elapsed().as_secs_f64();
    let report_kb = rendered
        .files
        .iter()
        .find(|(name, _)| name == avwap::backtest::rendered::REPORT_HTML)
        .map_or(0, |(_, bytes)| bytes.len() / 1024);
    println!(
        "{size:<5} {} symbols, {} sessions {from}..{to}: load {load:6.2} s, backtest {seconds:6.2} s ({:5.1} ms/session), outputs {render:5.2} s (report.html {report_kb} KB), {} round trips, {} sessions without a watchlist, final equity {} | peak RSS after load {rss_loaded:6.1} MB, after the run {:6.1} MB",
        data.bars.len(),
        run.sessions.len(),
        seconds * 1e3 / run.sessions.len().max(1) as f64,
        run.trips.len(),
        run.sessions.iter().filter(|s| s.scan_error.is_some()).count(),
        run.final_equity().round_dp(2),
        peak_rss_mb(),
    );
}

fn main() {
    if let Ok(size) = std::env::var(CHILD_ENV) {
        child(&size);
        return;
    }
    let market = SyntheticMarket::russell_3000(r3k_last_session());
    let path = store_path(&market);
    if !path.exists() {
        build_store(&path, &market);
    }
    let exe = std::env::current_exe().expect("own path");
    println!("backtest benchmark (targets: demo ≤ 5 s; r3k ≤ 30 s and peak RSS ≤ 1 GB on 2 cores)");
    println!("load average before: {}", load_average());
    for size in ["demo", "r3k"] {
        let out = Command::new(&exe)
            .env(CHILD_ENV, size)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run the benchmark child");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            panic!("the {size} benchmark failed: {:?}", out.status);
        }
    }
    println!("load average after: {}", load_average());
}
