//! What the benchmarks share: peak RSS of this process, and the seeded synthetic R3K-sized bar
//! store (built once under `target/bench-data/`, reused while its name matches).

use avwap::market_data::synthetic::SyntheticMarket;
use avwap::market_data::BarStore;
use std::path::Path;
use std::time::Instant;

/// Peak resident set size of this process (VmHWM), in MB.
pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Write `market`'s bars into a new SQLite store at `path` (via a temporary file and a rename,
/// so an interrupted build is never mistaken for a store).
pub fn build_store(path: &Path, market: &SyntheticMarket) {
    let started = Instant::now();
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("bench data dir");
    let tmp = path.with_extension("building");
    let _ = std::fs::remove_file(&tmp);
    let mut store = BarStore::open(&tmp).expect("create bench store");
    let dates = market.session_dates().expect("sessions in calendar range");
    let mut writer = store.writer().expect("write transaction");
    for i in 0..market.symbols {
        let symbol = SyntheticMarket::symbol_name(i);
        for bar in market.bars(i, &dates) {
            writer.insert(&symbol, &bar).expect("insert bar");
        }
    }
    writer.commit().expect("commit");
    drop(store);
    std::fs::rename(&tmp, path).expect("move store into place");
    eprintln!(
        "built {} in {:.1} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
}
