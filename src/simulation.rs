//! `avwap-execution simulate`: whole sessions of the bundled demo data set traded on the
//! simulated broker and a simulated clock, for trying the system (and testing it) offline.
//!
//! An application module: it drives both the scan (each session's watchlist, exactly as
//! `avwap-scan --demo --as-of <session>` writes it) and the execution service (a cycle every
//! 10 minutes). Those two never import each other; the watchlist file in the state directory
//! is their only contract, here as in production.

use crate::calendar::{self, CalendarError};
use crate::config::{Config, Mode};
use crate::execution::db::DbError;
use crate::execution::service::{Command, ExecutionError, Service};
use crate::exit::{ExitCode, Failure};
use crate::market_data::{bar_store_path, BarStore, ImportError, StoreError};
use crate::scan::config::ScanConfig;
use crate::scan::demo::{demo_config, demo_sectors, demo_source, DEMO_UNIVERSE};
use crate::scan::output::{write_scan, OutputError};
use crate::scan::run::{run_scan, PipelineError, ScanOutcome, ScanPlan};
use chrono::NaiveDate;
use std::path::{Path, PathBuf};

/// Why a simulation stops; each variant knows its exit code.
#[derive(Debug, thiserror::Error)]
pub enum SimulationError {
    #[error(
        "simulate runs in sim mode only (the configured mode is {mode}); run it with --mode sim"
    )]
    NotSimMode { mode: Mode },
    #[error("cannot create the state directory {}: {error}", path.display())]
    StateDir {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The bundled demo data set cannot be read.
    #[error(transparent)]
    DemoData(#[from] ImportError),
    /// The state directory's bar store cannot be opened or filled.
    #[error(transparent)]
    BarStore(#[from] StoreError),
    /// The demo scan of a session failed.
    #[error(transparent)]
    DemoScan(#[from] PipelineError),
    /// A session's watchlist (or the demo sectors) could not be read or written.
    #[error(transparent)]
    DemoOutput(#[from] OutputError),
    /// The execution service refused to open or a cycle failed.
    #[error(transparent)]
    Execution(#[from] ExecutionError),
    /// The sessions to simulate are outside the NYSE calendar avwap knows.
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    #[error("{date} is not an NYSE session; start the simulation on a session date")]
    NotASession { date: NaiveDate },
    /// The journal of completed cycles cannot be read, so resuming would be a guess.
    #[error(transparent)]
    Journal(#[from] DbError),
    #[error("the state directory {} holds a simulation made with another [scan]/[execution] configuration; its sessions would be reused, not simulated again. Use a new state directory (or delete this one) for the new configuration", state_dir.display())]
    OtherConfig { state_dir: PathBuf },
    #[error("cannot read or write the simulation's configuration fingerprint {}: {error}", path.display())]
    Fingerprint {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl Failure for SimulationError {
    fn exit_code(&self) -> ExitCode {
        match self {
            SimulationError::NotSimMode { .. } => ExitCode::ConfigError,
            SimulationError::Execution(e) => e.exit_code(),
            SimulationError::StateDir { .. }
            | SimulationError::DemoData(_)
            | SimulationError::BarStore(_)
            | SimulationError::DemoScan(_)
            | SimulationError::DemoOutput(_)
            | SimulationError::Calendar(_)
            | SimulationError::NotASession { .. }
            | SimulationError::Journal(_)
            | SimulationError::OtherConfig { .. }
            | SimulationError::Fingerprint { .. } => ExitCode::InputError,
        }
    }
}

/// `avwap-execution simulate`: [`simulate`], then one line naming the sessions and how to
/// look at them.
pub fn run(config: &Config, first: NaiveDate, days: u32) -> Result<(), SimulationError> {
    let sessions = simulate(config, first, days)?;
    println!(
        "simulated {} session(s): {}; see: avwap-execution report --date D --state-dir {}",
        sessions.len(),
        sessions
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        config.state_dir.display()
    );
    Ok(())
}

/// Simulate `days` whole sessions from `first` on the demo data with the simulated broker, on
/// a simulated clock (a cycle every 10 minutes from the open to just after the close). Each
/// session's watchlist is the one `avwap-scan --demo --as-of <session>` writes. Resumable: a
/// rerun after a crash continues after the last completed cycle, with the same outcome.
pub fn simulate(
    config: &Config,
    first: NaiveDate,
    days: u32,
) -> Result<Vec<NaiveDate>, SimulationError> {
    if config.mode != Mode::Sim {
        return Err(SimulationError::NotSimMode { mode: config.mode });
    }
    std::fs::create_dir_all(&config.state_dir).map_err(|error| SimulationError::StateDir {
        path: config.state_dir.clone(),
        error,
    })?;
    ensure_demo_store(&bar_store_path(&config.state_dir))?;
    let mut service = Service::open(config)?;
    check_fingerprint(config)?;
    let last_done = service.db().last_heartbeat()?;
    let mut sessions = Vec::new();
    let mut date = calendar::session_on_or_after(first)?;
    for _ in 0..days {
        let session = calendar::session(date)?.ok_or(SimulationError::NotASession { date })?;
        let watchlist = config.watchlist_path();
        let current = crate::watchlist::read_watchlist(&watchlist)
            .ok()
            .and_then(|rows| rows.first().map(|r| r.scan_date));
        if current != Some(date) && last_done.is_none_or(|t| t < session.close) {
            write_demo_watchlist(&config.state_dir, date, &config.scan)?;
        }
        let mut now = session.open + chrono::Duration::minutes(5);
        while now <= session.close + chrono::Duration::minutes(10) {
            if last_done.is_none_or(|t| now > t) {
                service.cycle(now, Command::Run { once: true })?;
            }
            now += chrono::Duration::minutes(10);
        }
        sessions.push(date);
        date = calendar::next_session(date)?;
    }
    Ok(sessions)
}

/// The file in the state directory that records which configuration the simulation ran with.
pub const FINGERPRINT_FILE: &str = "simulate.fingerprint";

/// sha256 of what decides a simulation's outcome: the demo scan's and the engine's settings.
fn fingerprint(config: &Config) -> String {
    use sha2::Digest;
    let text =
        serde_json::to_string(&(demo_config(&config.scan), &config.execution)).unwrap_or_default();
    format!("{:x}", sha2::Sha256::digest(text.as_bytes()))
}

/// A simulation continues only with the configuration it started with: completed cycles are
/// never run again, so a new configuration in the same directory would silently reuse them.
/// The first run records the fingerprint; a run with another one is refused.
fn check_fingerprint(config: &Config) -> Result<(), SimulationError> {
    let path = config.state_dir.join(FINGERPRINT_FILE);
    let current = fingerprint(config);
    let io = |error| SimulationError::Fingerprint {
        path: path.clone(),
        error,
    };
    match std::fs::read_to_string(&path) {
        Ok(previous) if previous.trim() == current => Ok(()),
        Ok(_) => Err(SimulationError::OtherConfig {
            state_dir: config.state_dir.clone(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::fsutil::write_bytes_atomic(&path, format!("{current}\n").as_bytes()).map_err(io)
        }
        Err(e) => Err(io(e)),
    }
}

/// Fill the bar store at `path` with the demo data set unless it already holds bars (the
/// simulated broker trades on the same bars the demo scan reads).
pub fn ensure_demo_store(path: &Path) -> Result<(), SimulationError> {
    let mut store = BarStore::open(path)?;
    if store.row_count()? > 0 {
        return Ok(());
    }
    let source = demo_source()?;
    store.upsert_many(source.bars.iter().map(|(s, b)| (s.as_str(), b.as_slice())))?;
    Ok(())
}

/// Scan the demo data as of `scan_date` and write the outputs into `state_dir`, exactly as
/// `avwap-scan --demo --as-of <scan_date> --state-dir <state_dir>` does.
pub fn write_demo_watchlist(
    state_dir: &Path,
    scan_date: NaiveDate,
    base: &ScanConfig,
) -> Result<ScanOutcome, SimulationError> {
    let started = std::time::Instant::now();
    let config = demo_config(base);
    let plan = ScanPlan::for_session(scan_date, &config)?;
    let mut source = demo_source()?;
    let outcome = run_scan(&mut source, &plan, &config)?;
    write_scan(
        state_dir,
        &outcome,
        &config,
        &demo_sectors()?,
        DEMO_UNIVERSE,
        started,
    )?;
    Ok(outcome)
}
