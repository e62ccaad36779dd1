//! Scan benchmark on an R3K-sized synthetic store (3,000 symbols × 520 sessions, seeded).
//!
//! `cargo bench --bench scan` builds the store once under `target/bench-data/`, then measures
//! in fresh child processes (so peak RSS is the scan's own):
//! - end to end: open the SQLite store, read, validate, evaluate, rank, write the outputs;
//! - compute only: the same scan over bars already in memory (validation + indicators);
//! - bars per second of the compute-only pass, and peak RSS (VmHWM) of the end-to-end run.
//!
//! Targets on the 2-core reference machine: end to end ≤ 1.0 s, compute ≤ 0.3 s, RSS ≤ 256 MB.

use avwap::market_data::synthetic::SyntheticMarket;
use avwap::market_data::{BarStore, DailyBar};
use avwap::scan::config::{ScanConfig, EQUAL_WEIGHT_BENCHMARK};
use avwap::scan::output;
use avwap::scan::providers::StoreSource;
use avwap::scan::run::{run_scan, MemorySource, ScanPlan};
use chrono::NaiveDate;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;
use common::{build_store, peak_rss_mb};

const RUNS: usize = 5;

fn last_session() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 25).expect("valid date")
}

fn scan_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 27).expect("valid date")
}

fn config() -> ScanConfig {
    let mut config = ScanConfig::default();
    config.regime.benchmark = EQUAL_WEIGHT_BENCHMARK.to_string();
    config
}

fn measure(store_path: &Path, out_dir: &Path) {
    let config = config();
    let plan = ScanPlan::for_session(scan_date(), &config).expect("plan");

    let started = Instant::now();
    let store = BarStore::open(store_path).expect("open store");
    let mut source = StoreSource::new(store);
    let outcome = run_scan(&mut source, &plan, &config).expect("scan");
    let rows = output::rows(&outcome.candidates, plan.scan_date, &HashMap::new()).expect("rows");
    let report = output::report(&outcome, String::new(), false, "bench", 0.0);
    output::write_outputs(out_dir, &rows, &report).expect("write outputs");
    let end_to_end = started.elapsed().as_secs_f64();
    let rss_end_to_end = peak_rss_mb();

    let mut bars: BTreeMap<String, Vec<DailyBar>> = BTreeMap::new();
    source
        .store
        .for_each_symbol(Some(plan.history_start), plan.data_as_of, |s, b| {
            bars.insert(s.to_string(), b);
        })
        .expect("load");
    let mut memory = MemorySource {
        label: "memory".into(),
        bars,
    };
    let started = Instant::now();
    let again = run_scan(&mut memory, &plan, &config).expect("scan");
    let compute = started.elapsed().as_secs_f64();
    assert_eq!(again.passed_gates, outcome.passed_gates);
    println!(
        "{end_to_end} {compute} {} {rss_end_to_end} {} {}",
        outcome.bars_read, outcome.universe, outcome.passed_gates
    );
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--measure") {
        measure(Path::new(&args[i + 1]), Path::new(&args[i + 2]));
        return;
    }
    let market = SyntheticMarket::russell_3000(last_session());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).expect("bench data dir");
    let store_path = dir.join(format!(
        "r3k-seed{}-{}x{}.sqlite",
        market.seed, market.symbols, market.sessions
    ));
    if !store_path.exists() {
        build_store(&store_path, &market);
    }
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).expect("bench output dir");

    let exe = std::env::current_exe().expect("own path");
    let mut results: Vec<[f64; 6]> = Vec::new();
    for _ in 0..RUNS {
        let out = Command::new(&exe)
            .arg("--measure")
            .arg(&store_path)
            .arg(&out_dir)
            .output()
            .expect("run measurement child");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8_lossy(&out.stdout);
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(f64::NAN))
            .collect();
        results.push([v[0], v[1], v[2], v[3], v[4], v[5]]);
    }
    let col = |k: usize| results.iter().map(|r| r[k]).collect::<Vec<_>>();
    let end_to_end = median(col(0));
    let compute = median(col(1));
    let bars = results[0][2];
    let rss = col(3).into_iter().fold(0.0, f64::max);
    println!(
        "scan benchmark: {} symbols × {} sessions (seed {}), {RUNS} runs, median",
        market.symbols, market.sessions, market.seed
    );
    println!(
        "  universe {}, passed gates {}, bars read {}",
        results[0][4], results[0][5], bars
    );
    println!(
        "  end to end (SQLite → outputs): {:>8.3} s   target ≤ 1.0 s",
        end_to_end
    );
    println!(
        "  compute only (in memory):      {:>8.3} s   target ≤ 0.3 s",
        compute
    );
    println!(
        "  compute throughput:            {:>8.2} M bars/s",
        bars / compute / 1e6
    );
    println!(
        "  peak RSS (end-to-end run):     {:>8.1} MB  target ≤ 256 MB",
        rss
    );
}
