//! The `avwap-scan` application: pick the bar source the operator asked for (bar store, CSV,
//! synthetic, the bundled demo, or production's Alpaca top-up over the iShares universe), run
//! the scan pipeline for one New York session, write the watchlist and its provenance, alert
//! and print the summary; or import CSV bars into the bar store.
//!
//! This is the scanner's application part (layer `application` in ARCHITECTURE.md): it may use
//! the Alpaca client, the universe loader, alerts and the configuration; the scan core
//! (`indicators`, `anchors`, `select`, `run`, `output`, …) may not. Every failure is a typed
//! [`ScanError`] that knows its exit code.

use crate::alpaca::access::{AccessError, AlpacaAccess, AlpacaUse, UrlError};
use crate::alpaca::assets::AlpacaAssetsFallback;
use crate::alpaca::market_data::{top_up, Adjustment, BarsOptions, Feed, TopUpError};
use crate::alpaca::AlpacaError;
use crate::calendar::{self, CalendarError, Clock};
use crate::config::Config;
use crate::credentials::{CredentialError, CredentialStore};
use crate::exit::{with_causes, ExitCode, Failure};
use crate::market_data::{
    bar_store_path, import_files, read_long_csv, BarStore, ImportError, StoreError,
};
use crate::ops::alerts::{AlertKind, Alerts, EXIT_FLUSH_TIMEOUT};
use crate::scan::config::{ScanConfig, EQUAL_WEIGHT_BENCHMARK};
use crate::scan::demo;
use crate::scan::output::{self, OutputError};
use crate::scan::providers::StoreSource;
use crate::scan::run::{run_scan, BarSource, MemorySource, PipelineError, ScanOutcome, ScanPlan};
use crate::universe::{load_universe, LoadOptions, UniverseError};
use crate::watchlist::WatchlistRow;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The `after_help` of `avwap-scan`: the session rule and the exit codes of
/// [`ScanError`].
pub const AFTER_HELP: &str = "\
The watchlist is for the New York session given by --as-of (default: today in New York) and
uses only bars of earlier sessions. On a day that is not an NYSE session the scan says so and
exits 0 without touching the existing watchlist.

Exit codes:
  0   watchlist written (possibly empty), or no session today
  10  bad command line or configuration
  12  Alpaca unreachable or credentials missing/refused (--provider alpaca); nothing written
  13  input problem: no bars, stale or incomplete data below scan.min_coverage, missing
      regime benchmark, unreadable bar store or CSV; the previous watchlist is left in place
  70  internal error";

/// Where bars come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    /// The SQLite bar store in the state directory (bars.sqlite)
    Store,
    /// A CSV file given with --csv, read into memory
    Csv,
    /// A seeded synthetic market ending at the data date (offline end-to-end tests; not real data)
    Synthetic,
    /// Production: the universe from iShares (cached), bars topped up from Alpaca into the store
    Alpaca,
}

/// What the operator asked `avwap-scan` for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    /// `--state-dir`: overrides the configuration; without it the demo scan writes into a new
    /// temporary directory.
    pub state_dir: Option<PathBuf>,
    /// `--demo`: the bundled demo data set; never alerts (it is not the production scan).
    pub demo: bool,
    pub action: ScanAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanAction {
    /// Scan and write the watchlist for `as_of` (default: today in New York).
    Scan {
        as_of: Option<NaiveDate>,
        provider: Provider,
        /// The file of `--provider csv`.
        csv: Option<PathBuf>,
    },
    /// Import CSV bars into the bar store.
    Import { files: Vec<PathBuf> },
}

/// Why `avwap-scan` fails; each variant knows its exit code. The operator reads the message
/// followed by its causes ([`with_causes`]).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot create a temporary state directory for the demo")]
    DemoStateDir(#[source] std::io::Error),
    #[error("the bundled demo data set is unreadable")]
    DemoData(#[source] ImportError),
    /// The bundled demo sectors are unreadable (a build defect, exit 70).
    #[error(transparent)]
    DemoSectors(OutputError),
    #[error("cannot create the state directory {}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("no bar store at {}: import bars first with `avwap-scan import FILE.csv` (or use --provider csv --csv FILE, or --demo)", path.display())]
    NoBarStore { path: PathBuf },
    #[error(transparent)]
    BarStore(#[from] StoreError),
    #[error("--provider csv needs --csv PATH")]
    CsvPathMissing,
    /// A CSV file (`--provider csv`, `import`) cannot be read.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The synthetic market's sessions are outside the calendar avwap knows.
    #[error(transparent)]
    Synthetic(#[from] CalendarError),
    /// `--provider alpaca` could not prepare its data.
    #[error(transparent)]
    Alpaca(#[from] AlpacaProviderError),
    /// The pipeline refused (coverage, empty source, missing benchmark, no such session).
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The sectors file or the outputs could not be read or written.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The reference table of symbols held back by the regime could not be built (exit 70).
    #[error(transparent)]
    HeldBackRows(OutputError),
}

impl Failure for ScanError {
    fn exit_code(&self) -> ExitCode {
        match self {
            ScanError::DemoData(_) | ScanError::DemoSectors(_) | ScanError::HeldBackRows(_) => {
                ExitCode::Internal
            }
            ScanError::CsvPathMissing => ExitCode::ConfigError,
            ScanError::Alpaca(e) => e.exit_code(),
            ScanError::DemoStateDir(_)
            | ScanError::StateDir { .. }
            | ScanError::NoBarStore { .. }
            | ScanError::BarStore(_)
            | ScanError::Import(_)
            | ScanError::Synthetic(_)
            | ScanError::Pipeline(_)
            | ScanError::Output(_) => ExitCode::InputError,
        }
    }
}

/// Errors of the Alpaca provider: each says what failed and what to do.
#[derive(Debug, thiserror::Error)]
pub enum AlpacaProviderError {
    #[error(transparent)]
    Alpaca(#[from] AlpacaError),
    #[error(transparent)]
    Universe(#[from] UniverseError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    TopUp(#[from] TopUpError),
    #[error("invalid [alpaca] setting: {0}")]
    Config(String),
    #[error(transparent)]
    Url(#[from] UrlError),
    /// Not a `#[source]`: the text already carries the credential error.
    #[error("Alpaca credentials unavailable: {0}")]
    Credentials(CredentialError),
}

impl AlpacaProviderError {
    /// Missing or refused credentials are "Alpaca unavailable" for the scan (exit 12), as its
    /// help documents.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            AlpacaProviderError::Config(_) | AlpacaProviderError::Url(_) => ExitCode::ConfigError,
            AlpacaProviderError::Universe(_) | AlpacaProviderError::Store(_) => {
                ExitCode::InputError
            }
            AlpacaProviderError::Alpaca(_)
            | AlpacaProviderError::TopUp(_)
            | AlpacaProviderError::Credentials(_) => ExitCode::BrokerUnavailable,
        }
    }
}

impl From<AccessError> for AlpacaProviderError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Url(e) => AlpacaProviderError::Url(e),
            AccessError::Credentials(e) => AlpacaProviderError::Credentials(e),
            AccessError::Client(e) => AlpacaProviderError::Alpaca(e),
        }
    }
}

/// Run `avwap-scan`: the scan (or import) of `request`, then the alert saying how it went
/// (outside the demo) and a bounded wait for the alert to leave.
pub fn run(mut config: Config, request: ScanRequest, clock: &dyn Clock) -> Result<(), ScanError> {
    let alerts = if request.demo {
        Alerts::disabled()
    } else {
        Alerts::from_config(&config.alerts)
    };
    let state_dir_given = request.state_dir.is_some();
    if let Some(dir) = request.state_dir {
        config.state_dir = dir;
    }
    let result = match request.action {
        ScanAction::Import { files } => import(&config, &files),
        ScanAction::Scan {
            as_of,
            provider,
            csv,
        } => {
            let scan_date = match as_of {
                Some(date) => date,
                None if request.demo => demo::DEMO_SCAN_DATE,
                None => calendar::ny_date(clock.now()),
            };
            let source = SourceRequest {
                provider,
                csv,
                demo: request.demo,
                temporary_state_dir: request.demo && !state_dir_given,
            };
            scan(&mut config, scan_date, &source, clock.now(), &alerts)
        }
    };
    if let Err(e) = &result {
        alerts.send(
            AlertKind::ScanFailed,
            "scan",
            &format!(
                "scan failed (exit {}): {}",
                e.exit_code().code(),
                with_causes(e)
            ),
        );
    }
    alerts.flush(EXIT_FLUSH_TIMEOUT);
    result
}

/// Where the scan's bars come from.
struct SourceRequest {
    provider: Provider,
    csv: Option<PathBuf>,
    demo: bool,
    /// The demo without `--state-dir` writes into a new temporary directory.
    temporary_state_dir: bool,
}

/// What the scan reads: the bars, the sectors for the watchlist, the universe's description
/// for scan.json, and the scan settings (the demo and synthetic data adapt them).
struct Inputs {
    source: Box<dyn BarSource>,
    sectors: HashMap<String, String>,
    universe_source: String,
    scan_config: ScanConfig,
}

fn scan(
    config: &mut Config,
    scan_date: NaiveDate,
    request: &SourceRequest,
    now: DateTime<Utc>,
    alerts: &Alerts,
) -> Result<(), ScanError> {
    let started = Instant::now();
    let plan = match ScanPlan::for_session(scan_date, &config.scan) {
        Ok(plan) => plan,
        Err(PipelineError::NotASession { date }) => {
            println!(
                "{date} (New York) is not an NYSE session: no watchlist is needed; the existing one (if any) was left unchanged."
            );
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let mut inputs = open_inputs(config, &plan, request, now)?;
    create_state_dir(&config.state_dir)?;

    let progress = std::io::stderr().is_terminal();
    if progress {
        eprint!(
            "scanning {} for {} (bars up to {})…\r",
            inputs.source.describe(),
            plan.scan_date,
            plan.data_as_of
        );
    }
    let outcome = run_scan(inputs.source.as_mut(), &plan, &inputs.scan_config)?;
    if progress {
        eprint!("\x1b[2K");
    }
    let rows = output::write_scan(
        &config.state_dir,
        &outcome,
        &inputs.scan_config,
        &inputs.sectors,
        &inputs.universe_source,
        started,
    )?;
    alert_done(alerts, &plan, &outcome, &rows);
    tracing::info!(
        scan_date = %plan.scan_date,
        data_as_of = %plan.data_as_of,
        universe = outcome.universe,
        passed_gates = outcome.passed_gates,
        written = rows.len(),
        regime = outcome.regime.state,
        "scan complete"
    );
    if request.demo || std::io::stdout().is_terminal() {
        print_table(&plan, &outcome, &rows, &inputs.sectors)?;
    }
    println!(
        "{} candidates for {} (bars up to {}; universe {}, passed gates {}, regime {} on {}) written to {}",
        rows.len(),
        plan.scan_date,
        plan.data_as_of,
        outcome.universe,
        outcome.passed_gates,
        outcome.regime.state,
        outcome.regime.benchmark,
        config.state_dir.join(output::CANDIDATES_FILE).display()
    );
    Ok(())
}

/// Open the bar source of `request` (and for the demo, its temporary state directory).
fn open_inputs(
    config: &mut Config,
    plan: &ScanPlan,
    request: &SourceRequest,
    now: DateTime<Utc>,
) -> Result<Inputs, ScanError> {
    if request.demo {
        if request.temporary_state_dir {
            config.state_dir = demo::temporary_state_dir().map_err(ScanError::DemoStateDir)?;
        }
        return Ok(Inputs {
            source: Box::new(demo::demo_source().map_err(ScanError::DemoData)?),
            sectors: demo::demo_sectors().map_err(ScanError::DemoSectors)?,
            universe_source: demo::DEMO_UNIVERSE.to_string(),
            scan_config: demo::demo_config(&config.scan),
        });
    }
    let configured_sectors = match config.scan.sectors_path(&config.state_dir) {
        Some(path) => output::read_sectors(&path)?,
        None => HashMap::new(),
    };
    let all_symbols = |source: Box<dyn BarSource>, scan_config: ScanConfig| Inputs {
        source,
        sectors: configured_sectors.clone(),
        universe_source: "all symbols of the bar source".to_string(),
        scan_config,
    };
    Ok(match request.provider {
        Provider::Store => {
            let path = bar_store_path(&config.state_dir);
            if !path.exists() {
                return Err(ScanError::NoBarStore { path });
            }
            let source = StoreSource::new(BarStore::open(&path)?);
            all_symbols(Box::new(source), config.scan.clone())
        }
        Provider::Alpaca => {
            let prepared = prepare_alpaca(config, &config.scan, plan.data_as_of, now)?;
            tracing::info!(
                requests = prepared.requests,
                bars_written = prepared.bars_written,
                universe = %prepared.universe_source,
                "Alpaca data ready"
            );
            Inputs {
                source: Box::new(prepared.source),
                // The universe's sectors, unless the operator configured a sectors file.
                sectors: if configured_sectors.is_empty() {
                    prepared.sectors
                } else {
                    configured_sectors
                },
                universe_source: prepared.universe_source,
                scan_config: config.scan.clone(),
            }
        }
        Provider::Synthetic => {
            let source = demo::synthetic_source(plan.data_as_of)?;
            all_symbols(Box::new(source), demo::demo_config(&config.scan))
        }
        Provider::Csv => {
            let path = request.csv.as_ref().ok_or(ScanError::CsvPathMissing)?;
            let (bars, report) = read_long_csv(path)?;
            if let Some(first) = report.rejected.first() {
                tracing::warn!(rejected = report.rejected_count(), file = %path.display(), "rows rejected while reading CSV; the first: {first}");
            }
            let source = MemorySource {
                label: format!("csv:{}", path.display()),
                bars,
            };
            all_symbols(Box::new(source), config.scan.clone())
        }
    })
}

fn create_state_dir(state_dir: &Path) -> Result<(), ScanError> {
    std::fs::create_dir_all(state_dir).map_err(|error| ScanError::StateDir {
        path: state_dir.to_path_buf(),
        error,
    })
}

/// The alert of a finished scan: the candidates, or why the list is empty.
fn alert_done(alerts: &Alerts, plan: &ScanPlan, outcome: &ScanOutcome, rows: &[WatchlistRow]) {
    let (kind, text) = if rows.is_empty() {
        (
            AlertKind::ScanEmpty,
            format!(
                "scan {}: empty watchlist (regime {} on {}; {} passed the gates): no entries today",
                plan.scan_date,
                outcome.regime.state,
                outcome.regime.benchmark,
                outcome.passed_gates
            ),
        )
    } else {
        (
            AlertKind::ScanDone,
            format!(
                "scan {}: {} candidates (universe {}, data as of {})",
                plan.scan_date,
                rows.len(),
                outcome.universe,
                plan.data_as_of
            ),
        )
    };
    alerts.send(kind, "scan", &text);
}

/// The console table: the watchlist, or when the regime emptied it, the symbols it held back
/// (for reference only).
fn print_table(
    plan: &ScanPlan,
    outcome: &ScanOutcome,
    rows: &[WatchlistRow],
    sectors: &HashMap<String, String>,
) -> Result<(), ScanError> {
    if outcome.held_back_by_regime.is_empty() {
        print!("{}", output::table(rows));
        return Ok(());
    }
    let held = output::rows(&outcome.held_back_by_regime, plan.scan_date, sectors)
        .map_err(ScanError::HeldBackRows)?;
    println!(
        "The regime filter is {} ({} close {:.2} vs SMA {:.2}): the watchlist is empty, no entries today.\n\
         For reference only, the ranked symbols that passed every other gate:",
        outcome.regime.state,
        outcome.regime.benchmark,
        outcome.regime.close.unwrap_or(f64::NAN),
        outcome.regime.sma.unwrap_or(f64::NAN),
    );
    print!("{}", output::table(&held));
    Ok(())
}

/// Rejected rows listed on stderr by `avwap-scan import`; all are counted in the summary.
const REJECTED_PRINTED: usize = 20;

/// `avwap-scan import FILES…`: CSV bars into the bar store of the state directory. Rejected
/// rows (unparseable, duplicate, or a defective bar) are listed and counted; they do not make
/// the import fail (exit 0), as a file-level problem does (exit 13).
fn import(config: &Config, files: &[PathBuf]) -> Result<(), ScanError> {
    create_state_dir(&config.state_dir)?;
    let path = bar_store_path(&config.state_dir);
    let mut store = BarStore::open(&path)?;
    let report = import_files(&mut store, files)?;
    for rejected in report.rejected.iter().take(REJECTED_PRINTED) {
        eprintln!("rejected: {rejected}");
    }
    let unlisted = report
        .rejected_count()
        .saturating_sub(REJECTED_PRINTED as u64);
    if unlisted > 0 {
        eprintln!("rejected: … and {unlisted} more rows (the first {REJECTED_PRINTED} are listed)");
    }
    let defective = if report.rows_defective > 0 {
        format!(
            " ({} of them defective bars the scanner would drop; stored bars for their dates were kept)",
            report.rows_defective
        )
    } else {
        String::new()
    };
    println!(
        "imported {} of {} rows ({} symbols) into {}; {} rows rejected{defective}",
        report.rows_imported,
        report.rows_read,
        report.symbols,
        path.display(),
        report.rejected_count()
    );
    Ok(())
}

/// What `--provider alpaca` prepared for the scan.
pub struct AlpacaPrepared {
    pub source: StoreSource,
    pub sectors: HashMap<String, String>,
    /// The universe source for scan.json (which of configured / cache / fallback was used;
    /// a cache or fallback is marked `[degraded: …]`).
    pub universe_source: String,
    pub requests: u64,
    pub bars_written: usize,
}

/// The production path of `scan.service`: load the universe (configured source, else the
/// cached copy, else Alpaca's active tradable US-equity assets, supplied here as the loader's
/// fallback), top up the bar store from Alpaca for its members and the benchmark (only the
/// sessions missing up to the data date), and scan the store restricted to the universe.
pub fn prepare_alpaca(
    config: &Config,
    scan: &ScanConfig,
    data_as_of: NaiveDate,
    now: DateTime<Utc>,
) -> Result<AlpacaPrepared, AlpacaProviderError> {
    let a = &config.alpaca;
    let options = BarsOptions {
        feed: a
            .feed
            .parse::<Feed>()
            .map_err(AlpacaProviderError::Config)?,
        adjustment: a
            .adjustment
            .parse::<Adjustment>()
            .map_err(AlpacaProviderError::Config)?,
        ..BarsOptions::default()
    };
    // URLs and credentials first: without them nothing is fetched (fail fast, name what is
    // missing).
    let credentials = CredentialStore::from_process_env();
    let client = AlpacaAccess::open(a, AlpacaUse::Scan, &credentials)?.client();

    let source = (!scan.universe.source.is_empty()).then(|| {
        let s = &scan.universe.source;
        if s.contains("://") || Path::new(s).is_absolute() {
            s.clone()
        } else {
            config.state_dir.join(s).display().to_string()
        }
    });
    let mut load = LoadOptions::new(source, &config.state_dir);
    load.min_members = scan.universe.min_members;
    let mut assets_fallback = AlpacaAssetsFallback::new(&client);
    let loaded = load_universe(&load, now, Some(&mut assets_fallback))?;
    for skipped in &loaded.skipped {
        tracing::warn!("universe source not used: {skipped}");
    }
    if let Some(e) = &loaded.cache_error {
        tracing::warn!("the universe could not be cached: {e}");
    }
    let universe = loaded.universe;
    if universe.source.is_degraded() {
        tracing::warn!(source = %universe.source, "scanning a degraded universe source");
    }
    let mut symbols: Vec<String> = universe.members.iter().map(|m| m.symbol.clone()).collect();
    if scan.regime.benchmark != EQUAL_WEIGHT_BENCHMARK {
        symbols.push(scan.regime.benchmark.clone());
    }
    symbols.sort();
    symbols.dedup();

    let mut store = BarStore::open(&bar_store_path(&config.state_dir))?;
    let report = top_up(
        &client,
        &mut store,
        &symbols,
        data_as_of,
        scan.history_days,
        &options,
    )?;
    tracing::info!(
        requests = report.requests,
        bars_written = report.bars_written,
        symbols = symbols.len(),
        "bar store topped up from Alpaca"
    );
    if let Some(first) = report.symbols_without_data.first() {
        // The scan counts each of them against scan.min_coverage (no bars, or stale ones).
        tracing::warn!(
            without_data = report.symbols_without_data.len(),
            requested = symbols.len(),
            "Alpaca returned no bars for {} of the {} symbols requested (first {first}); they count against scan.min_coverage",
            report.symbols_without_data.len(),
            symbols.len(),
        );
    }
    let sectors = universe
        .members
        .iter()
        .filter(|m| !m.sector.is_empty())
        .map(|m| (m.symbol.clone(), m.sector.clone()))
        .collect();
    Ok(AlpacaPrepared {
        source: StoreSource {
            store,
            only: Some(symbols.into_iter().collect()),
        },
        sectors,
        universe_source: if universe.source.is_degraded() {
            format!("{} [degraded: not the configured source]", universe.source)
        } else {
            universe.source.to_string()
        },
        requests: report.requests,
        bars_written: report.bars_written,
    })
}
