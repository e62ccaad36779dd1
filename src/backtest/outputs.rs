//! The backtest's output directory: a fresh one every run (a directory that already holds a
//! backtest is refused unless `--resume` with the same configuration fingerprint), the
//! configuration fingerprint itself, and `backtest.json` (fingerprint, data range, sessions,
//! version, benchmark, counts). No wall-clock time is written anywhere: two runs of the same
//! backtest give identical bytes.
//!
//! The metrics, `equity.csv`, `trades.csv` and `report.html` come from `performance` and the
//! report renderer; [`write_outputs`] takes them through [`OutputsExtra`].

use super::{BacktestError, BacktestRun};
use crate::config::{BacktestConfig, Config};
use crate::execution::config::ExecutionConfig;
use crate::fsutil::{read_regular, write_bytes_atomic, SizeLimit};
use crate::scan::config::ScanConfig;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The file that marks a directory as holding a backtest (written last).
pub const BACKTEST_JSON: &str = "backtest.json";

/// Version of backtest.json's layout.
pub const BACKTEST_JSON_FORMAT: u32 = 1;

/// A previous backtest.json is read only to find its fingerprint.
const PREVIOUS_LIMIT: SizeLimit = SizeLimit {
    bytes: 16 << 20,
    what: "a backtest.json",
    hint: "the output directory should hold only what avwap-execution backtest wrote",
};

/// sha256 of everything that decides a backtest's results besides its date range: the
/// effective `[scan]`, `[execution]` and `[backtest]` settings and the data source.
pub fn fingerprint(scan: &ScanConfig, config: &Config, data_label: &str) -> String {
    use sha2::Digest;
    #[derive(Serialize)]
    struct Decisive<'a> {
        scan: &'a ScanConfig,
        execution: &'a ExecutionConfig,
        backtest: &'a BacktestConfig,
        data: &'a str,
    }
    let text = serde_json::to_string(&Decisive {
        scan,
        execution: &config.execution,
        backtest: &config.backtest,
        data: data_label,
    })
    .unwrap_or_default();
    format!("{:x}", sha2::Sha256::digest(text.as_bytes()))
}

/// Make sure `dir` may take this run's outputs: a new or empty directory, or (with
/// `resume`) one holding a backtest with the same fingerprint. Creates it when missing.
pub fn prepare_dir(dir: &Path, fingerprint: &str, resume: bool) -> Result<(), BacktestError> {
    let io = |error| BacktestError::OutputDir {
        dir: dir.to_path_buf(),
        error,
    };
    if !dir.exists() {
        return std::fs::create_dir_all(dir).map_err(io);
    }
    let marker = dir.join(BACKTEST_JSON);
    if marker.exists() {
        let previous = previous_fingerprint(&marker)?;
        if !resume {
            return Err(BacktestError::DirHoldsBacktest {
                dir: dir.to_path_buf(),
            });
        }
        if previous != fingerprint {
            return Err(BacktestError::FingerprintMismatch {
                dir: dir.to_path_buf(),
                previous,
                current: fingerprint.to_string(),
            });
        }
        return Ok(());
    }
    let mut entries = std::fs::read_dir(dir).map_err(io)?;
    if entries.next().is_some() {
        return Err(BacktestError::DirNotEmpty {
            dir: dir.to_path_buf(),
        });
    }
    Ok(())
}

fn previous_fingerprint(path: &Path) -> Result<String, BacktestError> {
    let unreadable = |message: String| BacktestError::PreviousUnreadable {
        path: path.to_path_buf(),
        message,
    };
    let bytes = read_regular(path, PREVIOUS_LIMIT).map_err(|e| unreadable(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
    value
        .get("config_fingerprint")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| unreadable("it has no config_fingerprint".to_string()))
}

/// What the rest of the system adds to a backtest's outputs: files rendered from the run
/// (`equity.csv`, `trades.csv`, `report.html`) and the metrics, placed in backtest.json under
/// `metrics`.
#[derive(Debug, Default)]
pub struct OutputsExtra {
    /// (file name in the output directory, its bytes), written before backtest.json.
    pub files: Vec<(String, Vec<u8>)>,
    pub metrics: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct BacktestJson<'a> {
    format: u32,
    avwap_version: &'static str,
    config_fingerprint: &'a str,
    data: DataJson<'a>,
    range: RangeJson,
    benchmark: &'a str,
    starting_cash: Decimal,
    final_equity: Decimal,
    counts: CountsJson<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<&'a serde_json::Value>,
}

#[derive(Serialize)]
struct DataJson<'a> {
    source: &'a str,
    symbols: usize,
    first_bar: Option<NaiveDate>,
    last_bar: Option<NaiveDate>,
}

#[derive(Serialize)]
struct RangeJson {
    from: NaiveDate,
    to: NaiveDate,
    sessions: usize,
    first_session: Option<NaiveDate>,
    last_session: Option<NaiveDate>,
}

#[derive(Serialize)]
struct CountsJson<'a> {
    round_trips: usize,
    open_at_end: usize,
    fills: usize,
    /// Watchlist rows over all sessions (the morning scans' candidates).
    candidates: usize,
    /// Sessions whose scan produced no watchlist (the reason is in the run's session list).
    sessions_without_watchlist: usize,
    /// Candidate-days skipped by the engine, per reason.
    skip_reasons: &'a BTreeMap<String, usize>,
    /// Engine warnings over all cycles.
    cycle_warnings: usize,
}

/// backtest.json's bytes for `run` (pretty JSON, newline-terminated; no wall-clock time).
pub fn backtest_json(run: &BacktestRun, metrics: Option<&serde_json::Value>) -> Vec<u8> {
    let json = BacktestJson {
        format: BACKTEST_JSON_FORMAT,
        avwap_version: env!("CARGO_PKG_VERSION"),
        config_fingerprint: &run.fingerprint,
        data: DataJson {
            source: &run.data_label,
            symbols: run.data_symbols,
            first_bar: run.data_range.map(|r| r.0),
            last_bar: run.data_range.map(|r| r.1),
        },
        range: RangeJson {
            from: run.from,
            to: run.to,
            sessions: run.sessions.len(),
            first_session: run.sessions.first().map(|s| s.date),
            last_session: run.sessions.last().map(|s| s.date),
        },
        benchmark: &run.benchmark_label,
        starting_cash: run.starting_cash,
        final_equity: run.final_equity(),
        counts: CountsJson {
            round_trips: run.trips.len(),
            open_at_end: run
                .trips
                .iter()
                .filter(|t| t.exit_reason == crate::performance::ExitReason::EndOfBacktest)
                .count(),
            fills: run.fills,
            candidates: run.sessions.iter().map(|s| s.candidates.len()).sum(),
            sessions_without_watchlist: run
                .sessions
                .iter()
                .filter(|s| s.scan_error.is_some())
                .count(),
            skip_reasons: &run.skip_reasons,
            cycle_warnings: run.cycle_warnings,
        },
        metrics,
    };
    let mut bytes = serde_json::to_vec_pretty(&json).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Write the run's outputs into `dir` (already checked by [`prepare_dir`]), each atomically;
/// backtest.json goes last, so a directory with one holds a finished backtest.
pub fn write_outputs(
    dir: &Path,
    run: &BacktestRun,
    extra: OutputsExtra,
) -> Result<(), BacktestError> {
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        write_bytes_atomic(&path, bytes).map_err(|error| BacktestError::Write { path, error })
    };
    for (name, bytes) in &extra.files {
        write(name, bytes)?;
    }
    write(BACKTEST_JSON, &backtest_json(run, extra.metrics.as_ref()))
}
