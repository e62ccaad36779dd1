//! Scan outputs in the state directory, each written atomically: `daily_candidates.csv` (via
//! the watchlist writer), `tradingview_watchlist.txt` and `scan.json` (provenance, per-stage
//! counts, failures, timings), and `candidates.html` (charts, [`crate::scan::chart`]). Also the
//! sector map and the console table (with risk per share and reward/risk).

use crate::fsutil::{read_regular, write_bytes_atomic, SizeLimit};
use crate::scan::run::ScanOutcome;
use crate::scan::select::Candidate;
use crate::watchlist::{write_watchlist, Direction, WatchlistError, WatchlistRow};
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const CANDIDATES_FILE: &str = "daily_candidates.csv";
pub const TRADINGVIEW_FILE: &str = "tradingview_watchlist.txt";
pub const SCAN_JSON_FILE: &str = "scan.json";
/// One chart per candidate next to its row (see [`crate::scan::chart`]).
pub const CANDIDATES_HTML_FILE: &str = "candidates.html";
pub const UNKNOWN_SECTOR: &str = "Unknown";

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(transparent)]
    Watchlist(#[from] WatchlistError),
    #[error(
        "cannot write {path}: {source} (check that the state directory exists and is writable)"
    )]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the sectors file {path}: {message}")]
    Sectors { path: PathBuf, message: String },
    #[error("a value of {symbol} is not a finite number ({field}); the candidate was not written")]
    NotFinite { symbol: String, field: &'static str },
}

/// An f64 as an exact decimal rounded half-even at `dp` places (the binary value is rounded,
/// as Python's `round` does).
fn decimal(value: f64, dp: u32, symbol: &str, field: &'static str) -> Result<Decimal, OutputError> {
    Decimal::from_f64_retain(value)
        .or_else(|| Decimal::from_f64(value))
        .map(|d| d.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven))
        .ok_or_else(|| OutputError::NotFinite {
            symbol: symbol.to_string(),
            field,
        })
}

/// The longest sector name written: 128 bytes (real ones are under 30). Sector names come from
/// operator files and downloads; a longer one is cut (at a character boundary) so that no row
/// can exceed the watchlist's line limit and make the list unreadable for the gate.
pub const MAX_SECTOR_BYTES: usize = 128;

fn bounded_sector(sector: &str) -> String {
    let mut end = sector.len().min(MAX_SECTOR_BYTES);
    while !sector.is_char_boundary(end) {
        end -= 1;
    }
    sector[..end].to_string()
}

/// The watchlist row of a candidate.
pub fn to_row(
    candidate: &Candidate,
    scan_date: chrono::NaiveDate,
    sectors: &HashMap<String, String>,
) -> Result<WatchlistRow, OutputError> {
    let s = candidate.symbol.as_str();
    let ctx = &candidate.context;
    let opt = |v: Option<f64>, field| v.map(|x| decimal(x, 2, s, field)).transpose();
    Ok(WatchlistRow {
        scan_date,
        symbol: candidate.symbol.clone(),
        direction: Direction::Long,
        trend_tier: candidate.tier,
        price: decimal(candidate.close, 2, s, "Price")?,
        entry_level: decimal(candidate.avwap, 2, s, "Entry_Level")?,
        entry_dist_pct: decimal(candidate.dist_pct, 2, s, "Entry_DistPct")?,
        stop_loss: decimal(candidate.stop, 2, s, "Stop_Loss")?,
        target_r1: decimal(candidate.target_r1, 2, s, "Target_R1")?,
        target_r2: decimal(candidate.target_r2, 2, s, "Target_R2")?,
        trend_score: decimal(candidate.trend_score, 6, s, "TrendScore")?,
        sector: sectors
            .get(&candidate.symbol)
            .map(|sector| bounded_sector(sector))
            .unwrap_or_else(|| UNKNOWN_SECTOR.to_string()),
        anchor: candidate.anchor,
        avwap_slope: decimal(candidate.avwap_slope, 4, s, "AVWAP_Slope")?,
        setup_vwap_control: ctx.vwap_control,
        setup_vwap_reclaim: ctx.vwap_reclaim,
        setup_vwap_acceptance: ctx.vwap_acceptance,
        setup_vwap_dist_pct: opt(ctx.vwap_dist_pct, "Setup_VWAP_DistPct")?,
        setup_avwap_control: ctx.avwap_control,
        setup_avwap_reclaim: ctx.avwap_reclaim,
        setup_avwap_acceptance: ctx.avwap_acceptance,
        setup_avwap_dist_pct: opt(ctx.avwap_dist_pct, "Setup_AVWAP_DistPct")?,
        setup_extension_state: ctx.extension,
        setup_gap_reset: ctx.gap_reset,
        setup_structure_state: ctx.structure,
        data_as_of: candidate.data_as_of,
        anchor_date: candidate.anchor_date,
    })
}

/// Watchlist rows for candidates, in rank order.
pub fn rows(
    candidates: &[Candidate],
    scan_date: chrono::NaiveDate,
    sectors: &HashMap<String, String>,
) -> Result<Vec<WatchlistRow>, OutputError> {
    candidates
        .iter()
        .map(|c| to_row(c, scan_date, sectors))
        .collect()
}

/// Provenance written next to the watchlist.
#[derive(Debug, Serialize)]
pub struct ScanReport<'a> {
    pub avwap_version: &'static str,
    pub scan_date: chrono::NaiveDate,
    pub data_as_of: chrono::NaiveDate,
    pub history_start: chrono::NaiveDate,
    /// sha256 of the effective `[scan]` configuration (TOML).
    pub config_sha256: String,
    pub compat_predecessor: bool,
    pub provider: &'a str,
    pub universe: UniverseReport<'a>,
    pub regime: &'a crate::scan::run::Regime,
    pub counts: Counts<'a>,
    pub candidates: Vec<CandidateReport<'a>>,
    pub failures: &'a [crate::scan::run::SymbolFailure],
    pub data_defects: DefectReport<'a>,
    pub timings: Timings,
}

#[derive(Debug, Serialize)]
pub struct UniverseReport<'a> {
    pub source: &'a str,
    pub size: usize,
    /// Members the source had no bar at all for (counted in `size`, never covered).
    pub without_bars: &'a [String],
}

#[derive(Debug, Serialize)]
pub struct Counts<'a> {
    pub universe: usize,
    /// Members of the universe with no bar at all ("no bars returned").
    pub without_bars: usize,
    pub with_current_data: usize,
    /// Symbols with current data evaluated without an internal error (`scan.min_coverage`
    /// applies to this over `universe`).
    pub covered: usize,
    pub bars_read: usize,
    pub rejected: &'a std::collections::BTreeMap<&'static str, usize>,
    pub passed_gates: usize,
    pub failures: usize,
    pub written: usize,
}

#[derive(Debug, Serialize)]
pub struct DefectReport<'a> {
    pub totals: &'a crate::market_data::DefectCounts,
    pub by_symbol: &'a std::collections::BTreeMap<String, crate::market_data::DefectCounts>,
}

#[derive(Debug, Serialize)]
pub struct CandidateReport<'a> {
    pub rank: usize,
    pub symbol: &'a str,
    pub anchor: &'static str,
    pub anchor_date: chrono::NaiveDate,
    pub avwap: f64,
    /// TradingView-style volume-weighted σ bands around the AVWAP.
    pub band_sigma: f64,
    pub band_upper_1: f64,
    pub band_lower_1: f64,
    pub score: f64,
    pub trend_score: f64,
    pub dist_pct: f64,
    pub reclaim: bool,
}

#[derive(Debug, Serialize)]
pub struct Timings {
    pub load_and_compute_seconds: f64,
    pub total_seconds: f64,
}

/// Build the scan.json report.
pub fn report<'a>(
    outcome: &'a ScanOutcome,
    config_sha256: String,
    compat_predecessor: bool,
    universe_source: &'a str,
    total_seconds: f64,
) -> ScanReport<'a> {
    ScanReport {
        avwap_version: env!("CARGO_PKG_VERSION"),
        scan_date: outcome.plan.scan_date,
        data_as_of: outcome.plan.data_as_of,
        history_start: outcome.plan.history_start,
        config_sha256,
        compat_predecessor,
        provider: &outcome.source,
        universe: UniverseReport {
            source: universe_source,
            size: outcome.universe,
            without_bars: &outcome.without_bars,
        },
        regime: &outcome.regime,
        counts: Counts {
            universe: outcome.universe,
            without_bars: outcome.without_bars.len(),
            with_current_data: outcome.with_current_data,
            covered: outcome.covered,
            bars_read: outcome.bars_read,
            rejected: &outcome.rejections,
            passed_gates: outcome.passed_gates,
            failures: outcome.failures.len(),
            written: outcome.candidates.len(),
        },
        candidates: outcome
            .candidates
            .iter()
            .enumerate()
            .map(|(i, c)| CandidateReport {
                rank: i + 1,
                symbol: &c.symbol,
                anchor: c.anchor.as_str(),
                anchor_date: c.anchor_date,
                avwap: c.avwap,
                band_sigma: c.avwap_sigma,
                band_upper_1: c.avwap + c.avwap_sigma,
                band_lower_1: c.avwap - c.avwap_sigma,
                score: c.score,
                trend_score: c.trend_score,
                dist_pct: c.dist_pct,
                reclaim: c.reclaim,
            })
            .collect(),
        failures: &outcome.failures,
        data_defects: DefectReport {
            totals: &outcome.defect_totals,
            by_symbol: &outcome.defects,
        },
        timings: Timings {
            load_and_compute_seconds: outcome.load_and_compute_seconds,
            total_seconds,
        },
    }
}

/// sha256 of the effective `[scan]` configuration, recorded in scan.json.
pub fn config_sha256(config: &crate::scan::config::ScanConfig) -> String {
    use sha2::Digest;
    let text = toml::to_string(config).unwrap_or_default();
    format!("{:x}", sha2::Sha256::digest(text.as_bytes()))
}

/// Rows, report and files for a finished scan: the last step of every scan run. Writes
/// `candidates.html` first, then [`write_outputs`] (the watchlist last).
pub fn write_scan(
    state_dir: &Path,
    outcome: &ScanOutcome,
    config: &crate::scan::config::ScanConfig,
    sectors: &HashMap<String, String>,
    universe_source: &str,
    started: std::time::Instant,
) -> Result<Vec<WatchlistRow>, OutputError> {
    let rows = rows(&outcome.candidates, outcome.plan.scan_date, sectors)?;
    let report = report(
        outcome,
        config_sha256(config),
        config.compat.predecessor,
        universe_source,
        started.elapsed().as_secs_f64(),
    );
    let held_back = if outcome.candidates.is_empty() {
        self::rows(
            &outcome.held_back_by_regime,
            outcome.plan.scan_date,
            sectors,
        )?
    } else {
        Vec::new()
    };
    let html_path = state_dir.join(CANDIDATES_HTML_FILE);
    let html = crate::scan::chart::candidates_page(outcome, &rows, &held_back);
    write_bytes_atomic(&html_path, html.as_bytes()).map_err(|source| OutputError::Write {
        path: html_path.clone(),
        source,
    })?;
    write_outputs(state_dir, &rows, &report)?;
    Ok(rows)
}

/// Write the three outputs into `state_dir`. The watchlist goes last so a reader that sees
/// a new watchlist also finds its scan.json.
pub fn write_outputs(
    state_dir: &Path,
    rows: &[WatchlistRow],
    report: &ScanReport<'_>,
) -> Result<(), OutputError> {
    let tv_path = state_dir.join(TRADINGVIEW_FILE);
    let mut tv = String::new();
    for row in rows {
        tv.push_str(&row.symbol);
        tv.push('\n');
    }
    write_bytes_atomic(&tv_path, tv.as_bytes()).map_err(|source| OutputError::Write {
        path: tv_path.clone(),
        source,
    })?;
    let json_path = state_dir.join(SCAN_JSON_FILE);
    let mut json = serde_json::to_vec_pretty(report).map_err(|e| OutputError::Write {
        path: json_path.clone(),
        source: std::io::Error::other(e),
    })?;
    json.push(b'\n');
    write_bytes_atomic(&json_path, &json).map_err(|source| OutputError::Write {
        path: json_path.clone(),
        source,
    })?;
    write_watchlist(&state_dir.join(CANDIDATES_FILE), rows)?;
    Ok(())
}

/// The largest sectors file read: 16 MiB. A row per Russell 3000 member is about 200 KB.
pub const MAX_SECTORS_BYTES: u64 = 16 << 20;

/// Read a sector map: a CSV with a header containing `Symbol` and `Sector` columns, from a
/// regular file of at most [`MAX_SECTORS_BYTES`].
pub fn read_sectors(path: &Path) -> Result<HashMap<String, String>, OutputError> {
    let limit = SizeLimit {
        bytes: MAX_SECTORS_BYTES,
        what: "a sectors file",
        hint: "a Symbol,Sector row per Russell 3000 member is about 200 KB, so this is not one",
    };
    let bytes = read_regular(path, limit).map_err(|e| OutputError::Sectors {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    parse_sectors(&bytes, path)
}

pub fn parse_sectors(bytes: &[u8], path: &Path) -> Result<HashMap<String, String>, OutputError> {
    let err = |message: String| OutputError::Sectors {
        path: path.to_path_buf(),
        message,
    };
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
    let headers = reader.headers().map_err(|e| err(e.to_string()))?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
            .ok_or_else(|| err(format!("the header has no {name:?} column")))
    };
    let (symbol_col, sector_col) = (column("Symbol")?, column("Sector")?);
    let mut map = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| err(format!("line {}: {e}", i + 2)))?;
        let symbol = record.get(symbol_col).unwrap_or_default().trim();
        let sector = record.get(sector_col).unwrap_or_default().trim();
        if !symbol.is_empty() && !sector.is_empty() {
            map.insert(symbol.to_string(), sector.to_string());
        }
    }
    Ok(map)
}

/// Dollars at risk per share if bought at the last close: `price − stop`. `None` when the
/// stop is not below the price (no defined risk; the engine refuses such an entry).
pub fn risk_per_share(row: &WatchlistRow) -> Option<Decimal> {
    let risk = row.price - row.stop_loss;
    (risk > Decimal::ZERO).then_some(risk)
}

/// Reward to risk at the last close, in R: `(R2 − price) / (price − stop)`, 2 decimals (the
/// R multiple a full exit at R2 would earn; negative when the price is already above R2).
/// `None` without a defined risk.
pub fn reward_risk(row: &WatchlistRow) -> Option<Decimal> {
    let risk = risk_per_share(row)?;
    (row.target_r2 - row.price)
        .checked_div(risk)
        .map(|r| r.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven))
}

/// The columns of [`table`] (and of the candidates page's table), in order.
pub const TABLE_COLUMNS: [&str; 14] = [
    "rank",
    "symbol",
    "sector",
    "price",
    "avwap",
    "dist%",
    "stop",
    "R1",
    "R2",
    "risk/sh",
    "reward/risk",
    "trend",
    "anchor",
    "anchor date",
];

/// The ranked candidates as a fixed-width table for the terminal. `price` is the last close,
/// `avwap` the anchored VWAP (the watchlist's `Entry_Level`: the engine buys when price holds
/// above it), so a stop may sit above `avwap` but never above `price`; `risk/sh` and
/// `reward/risk` are [`risk_per_share`] and [`reward_risk`] ("—" when undefined).
pub fn table(rows: &[WatchlistRow]) -> String {
    let c = TABLE_COLUMNS;
    let header = format!(
        "{:>4}  {:<7} {:<22} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9} {:>8} {:>11} {:>11}  {:<11} {}\n",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12], c[13]
    );
    let mut out = header;
    let dash = || "—".to_string();
    for (i, r) in rows.iter().enumerate() {
        let sector: String = r.sector.chars().take(22).collect();
        out.push_str(&format!(
            "{:>4}  {:<7} {:<22} {:>9.2} {:>9.2} {:>7.2} {:>9.2} {:>9.2} {:>9.2} {:>8} {:>11} {:>11}  {:<11} {}\n",
            i + 1,
            r.symbol,
            sector,
            r.price,
            r.entry_level,
            r.entry_dist_pct,
            r.stop_loss,
            r.target_r1,
            r.target_r2,
            risk_per_share(r).map_or_else(dash, |v| v.to_string()),
            reward_risk(r).map_or_else(dash, |v| v.to_string()),
            r.trend_score.round_dp(2),
            r.anchor.as_str(),
            r.anchor_date
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_price_avwap_and_the_risk_of_buying_at_the_price() {
        // A stop above the AVWAP (entry level) but below the price: a normal row, which the old
        // "entry" column made look inverted.
        let mut row = crate::watchlist::tests_support::sample_row();
        row.price = Decimal::new(5000, 2);
        row.entry_level = Decimal::new(4950, 2);
        row.stop_loss = Decimal::new(4960, 2);
        row.target_r2 = Decimal::new(5100, 2);
        assert_eq!(risk_per_share(&row), Some(Decimal::new(40, 2)));
        assert_eq!(reward_risk(&row), Some(Decimal::new(250, 2)));
        let text = table(std::slice::from_ref(&row));
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            &header[3..11],
            [
                "price",
                "avwap",
                "dist%",
                "stop",
                "R1",
                "R2",
                "risk/sh",
                "reward/risk"
            ]
        );
        let cells: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(&cells[3..5], ["50.00", "49.50"]);
        assert_eq!(&cells[9..11], ["0.40", "2.50"]);
        // A stop at or above the price has no defined risk: shown as a dash, never a division.
        row.stop_loss = row.price;
        assert_eq!((risk_per_share(&row), reward_risk(&row)), (None, None));
        assert!(table(&[row]).contains("       —           —"));
    }

    #[test]
    fn sector_names_are_bounded_at_a_character_boundary() {
        assert_eq!(bounded_sector("Materials"), "Materials");
        let long = "é".repeat(100);
        let cut = bounded_sector(&long);
        assert!(cut.len() <= MAX_SECTOR_BYTES && cut.len() >= MAX_SECTOR_BYTES - 1);
        assert!(long.starts_with(&cut));
    }

    #[test]
    fn a_fifo_as_the_sectors_file_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sectors.csv");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("mkfifo (coreutils)");
        assert!(status.success());
        let err = read_sectors(&path).unwrap_err();
        assert!(
            err.to_string()
                .contains("is a FIFO (named pipe), not a regular file"),
            "{err}"
        );
    }
}
