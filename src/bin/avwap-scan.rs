//! `avwap-scan`: computes Anchored VWAP over the universe and writes the ranked watchlist.
//! All logic lives in `avwap::scan`; this file wires arguments, clock and files.

use anyhow::Context;
use avwap::calendar::{self, Clock, SystemClock};
use avwap::config::Config;
use avwap::credentials::process_env;
use avwap::exit::ExitCode;
use avwap::market_data::{bar_store_path, read_long_csv, BarStore};
use avwap::ops::alerts::{AlertKind, Alerts};
use avwap::scan::output;
use avwap::scan::providers::StoreSource;
use avwap::scan::run::{run_scan, BarSource, MemorySource, ScanError, ScanPlan};
use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

const AFTER_HELP: &str = "\
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

/// Scan the universe and write today's watchlist.
#[derive(Debug, Parser)]
#[command(name = "avwap-scan", version, after_help = AFTER_HELP)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file [env: AVWAP_CONFIG]
    #[arg(long, value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    /// State directory [env: AVWAP_STATE_DIR] [default: /var/lib/avwap; with --demo a new temporary directory]
    #[arg(long, value_name = "DIR", global = true)]
    state_dir: Option<PathBuf>,
    /// Log format: auto (journald under systemd, else text), text, json, journald
    #[arg(long, value_enum, value_name = "FORMAT", env = avwap::ops::logging::ENV_LOG_FORMAT, default_value_t = avwap::ops::logging::LogFormat::Auto, global = true)]
    log_format: avwap::ops::logging::LogFormat,
    /// Scan as if on the morning of this New York session (YYYY-MM-DD); only earlier bars are read
    #[arg(long, value_name = "DATE")]
    as_of: Option<NaiveDate>,
    /// Where bars come from
    #[arg(long, value_enum, default_value_t = Provider::Store)]
    provider: Provider,
    /// Long-format CSV (Date,Symbol,Open,High,Low,Close,Volume; .gz allowed) for --provider csv
    #[arg(long, value_name = "PATH")]
    csv: Option<PathBuf>,
    /// Scan the bundled demo data set (S&P 500, 2009-08-21..2010-08-20) and print the table
    #[arg(long)]
    demo: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Provider {
    /// The SQLite bar store in the state directory (bars.sqlite)
    Store,
    /// A CSV file given with --csv, read into memory
    Csv,
    /// A seeded synthetic market ending at the data date (offline end-to-end tests; not real data)
    Synthetic,
    /// Production: the universe from iShares (cached), bars topped up from Alpaca into the store
    Alpaca,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import CSV bars into the bar store (long format, or one file per symbol named SYMBOL.csv)
    Import {
        /// Files to import (.csv or .csv.gz)
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let args: Args = avwap::cli::parse_args();
    avwap::ops::logging::init("avwap-scan", args.log_format);
    let mut alerts = None;
    let result = run(args, &mut alerts);
    let code = match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("avwap-scan: {:#}", failure.error);
            if let Some(alerts) = &alerts {
                alerts.send(
                    AlertKind::ScanFailed,
                    "scan",
                    &format!(
                        "scan failed (exit {}): {:#}",
                        failure.code.code(),
                        failure.error
                    ),
                );
            }
            failure.code
        }
    };
    if let Some(alerts) = &alerts {
        alerts.flush(avwap::ops::alerts::EXIT_FLUSH_TIMEOUT);
    }
    code.into()
}

struct Failure {
    code: ExitCode,
    error: anyhow::Error,
}

fn fail(code: ExitCode) -> impl FnOnce(anyhow::Error) -> Failure {
    move |error| Failure { code, error }
}

fn run(args: Args, alerts: &mut Option<Alerts>) -> Result<ExitCode, Failure> {
    let mut config = Config::load(args.config.as_deref(), &process_env)
        .map_err(|e| fail(ExitCode::ConfigError)(e.into()))?;
    // The demo never alerts: it is not the production scan.
    if !args.demo {
        *alerts = Some(Alerts::from_config(&config.alerts));
    }
    if let Some(dir) = &args.state_dir {
        config.state_dir = dir.clone();
    }
    if let Some(Command::Import { files }) = &args.command {
        return import(&config, files);
    }
    let started = Instant::now();
    let mut scan_config = config.scan.clone();
    let scan_date = match args.as_of {
        Some(date) => date,
        None if args.demo => avwap::scan::demo::DEMO_SCAN_DATE,
        None => calendar::ny_date(SystemClock.now()),
    };
    let plan = match ScanPlan::for_session(scan_date, &scan_config) {
        Ok(plan) => plan,
        Err(ScanError::NotASession { date }) => {
            println!(
                "{date} (New York) is not an NYSE session: no watchlist is needed; the existing one (if any) was left unchanged."
            );
            return Ok(ExitCode::Ok);
        }
        Err(e) => return Err(fail(ExitCode::InputError)(e.into())),
    };
    let (mut source, sectors, universe_source): (
        Box<dyn BarSource>,
        HashMap<String, String>,
        String,
    ) = if args.demo {
        if args.state_dir.is_none() {
            config.state_dir = avwap::scan::demo::temporary_state_dir()
                .context("cannot create a temporary state directory for the demo")
                .map_err(fail(ExitCode::InputError))?;
        }
        scan_config = avwap::scan::demo::demo_config(&scan_config);
        let source = avwap::scan::demo::demo_source()
            .context("the bundled demo data set is unreadable")
            .map_err(fail(ExitCode::Internal))?;
        let sectors =
            avwap::scan::demo::demo_sectors().map_err(|e| fail(ExitCode::Internal)(e.into()))?;
        (
            Box::new(source),
            sectors,
            avwap::scan::demo::DEMO_UNIVERSE.to_string(),
        )
    } else {
        let sectors = match scan_config.sectors_path(&config.state_dir) {
            Some(path) => {
                output::read_sectors(&path).map_err(|e| fail(ExitCode::InputError)(e.into()))?
            }
            None => HashMap::new(),
        };
        let mut alpaca_universe = None;
        let source: Box<dyn BarSource> = match args.provider {
            Provider::Store => {
                let path = bar_store_path(&config.state_dir);
                if !path.exists() {
                    return Err(fail(ExitCode::InputError)(anyhow::anyhow!(
                            "no bar store at {}: import bars first with `avwap-scan import FILE.csv` (or use --provider csv --csv FILE, or --demo)",
                            path.display()
                        )));
                }
                let store =
                    BarStore::open(&path).map_err(|e| fail(ExitCode::InputError)(e.into()))?;
                Box::new(StoreSource::new(store))
            }
            Provider::Alpaca => {
                let prepared = avwap::scan::providers::prepare_alpaca(
                    &config,
                    &scan_config,
                    plan.data_as_of,
                    SystemClock.now(),
                )
                .map_err(|e| {
                    use avwap::scan::providers::AlpacaProviderError as E;
                    let code = match &e {
                        E::Config(_) | E::Url(_) => ExitCode::ConfigError,
                        E::Universe(_) | E::Store(_) => ExitCode::InputError,
                        E::Alpaca(_) | E::TopUp(_) | E::Credentials(_) => {
                            ExitCode::BrokerUnavailable
                        }
                    };
                    fail(code)(e.into())
                })?;
                tracing::info!(
                    requests = prepared.requests,
                    bars_written = prepared.bars_written,
                    universe = %prepared.universe_source,
                    "Alpaca data ready"
                );
                alpaca_universe = Some((prepared.sectors, prepared.universe_source));
                Box::new(prepared.source)
            }
            Provider::Synthetic => {
                scan_config = avwap::scan::demo::demo_config(&scan_config);
                let source = avwap::scan::demo::synthetic_source(plan.data_as_of)
                    .map_err(|e| fail(ExitCode::InputError)(e.into()))?;
                Box::new(source)
            }
            Provider::Csv => {
                let path = args.csv.clone().ok_or_else(|| {
                    fail(ExitCode::ConfigError)(anyhow::anyhow!("--provider csv needs --csv PATH"))
                })?;
                let (bars, report) =
                    read_long_csv(&path).map_err(|e| fail(ExitCode::InputError)(e.into()))?;
                if !report.rejected.is_empty() {
                    tracing::warn!(rejected = report.rejected_count(), file = %path.display(), "rows rejected while reading CSV; the first: {}", report.rejected[0]);
                }
                Box::new(MemorySource {
                    label: format!("csv:{}", path.display()),
                    bars,
                })
            }
        };
        match alpaca_universe {
            // The universe's sectors, unless the operator configured a sectors file.
            Some((universe_sectors, universe_source)) => {
                let sectors = if sectors.is_empty() {
                    universe_sectors
                } else {
                    sectors
                };
                (source, sectors, universe_source)
            }
            None => (source, sectors, "all symbols of the bar source".to_string()),
        }
    };

    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| {
            format!(
                "cannot create the state directory {}",
                config.state_dir.display()
            )
        })
        .map_err(fail(ExitCode::InputError))?;

    let progress = std::io::stderr().is_terminal();
    if progress {
        eprint!(
            "scanning {} for {} (bars up to {})…\r",
            source.describe(),
            plan.scan_date,
            plan.data_as_of
        );
    }
    let outcome = run_scan(source.as_mut(), &plan, &scan_config)
        .map_err(|e| fail(ExitCode::InputError)(e.into()))?;
    if progress {
        eprint!("\x1b[2K");
    }
    let rows = output::write_scan(
        &config.state_dir,
        &outcome,
        &scan_config,
        &sectors,
        &universe_source,
        started,
    )
    .map_err(|e| fail(ExitCode::InputError)(e.into()))?;

    if let Some(alerts) = alerts {
        let (kind, text) = if rows.is_empty() {
            (
                AlertKind::ScanEmpty,
                format!(
                    "scan {}: empty watchlist (regime {} on {}; {} passed the gates): no entries today",
                    plan.scan_date, outcome.regime.state, outcome.regime.benchmark, outcome.passed_gates
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
    tracing::info!(
        scan_date = %plan.scan_date,
        data_as_of = %plan.data_as_of,
        universe = outcome.universe,
        passed_gates = outcome.passed_gates,
        written = rows.len(),
        regime = outcome.regime.state,
        "scan complete"
    );
    if args.demo || std::io::stdout().is_terminal() {
        if outcome.held_back_by_regime.is_empty() {
            print!("{}", output::table(&rows));
        } else {
            let held = output::rows(&outcome.held_back_by_regime, plan.scan_date, &sectors)
                .map_err(|e| fail(ExitCode::Internal)(e.into()))?;
            println!(
                "The regime filter is {} ({} close {:.2} vs SMA {:.2}): the watchlist is empty, no entries today.\n\
                 For reference only, the ranked symbols that passed every other gate:",
                outcome.regime.state,
                outcome.regime.benchmark,
                outcome.regime.close.unwrap_or(f64::NAN),
                outcome.regime.sma.unwrap_or(f64::NAN),
            );
            print!("{}", output::table(&held));
        }
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
    Ok(ExitCode::Ok)
}

fn import(config: &Config, files: &[PathBuf]) -> Result<ExitCode, Failure> {
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| {
            format!(
                "cannot create the state directory {}",
                config.state_dir.display()
            )
        })
        .map_err(fail(ExitCode::InputError))?;
    let path = bar_store_path(&config.state_dir);
    let mut store = BarStore::open(&path).map_err(|e| fail(ExitCode::InputError)(e.into()))?;
    let report = avwap::market_data::import_files(&mut store, files)
        .map_err(|e| fail(ExitCode::InputError)(e.into()))?;
    for rejected in report.rejected.iter().take(20) {
        eprintln!("rejected: {rejected}");
    }
    println!(
        "imported {} of {} rows ({} symbols) into {}; {} rows rejected",
        report.rows_imported,
        report.rows_read,
        report.symbols,
        path.display(),
        report.rejected_count()
    );
    Ok(ExitCode::Ok)
}
