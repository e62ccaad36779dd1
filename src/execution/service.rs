//! The `avwap-execution` service: mode checks (fail closed), the state-directory lock, the
//! state database, the broker, startup reconciliation, `READY=1`, the poll loop with watchdog
//! pings and a heartbeat, and a clean exit on SIGTERM/SIGINT after the current step.

use crate::broker::sim::{SimBroker, SimConfig};
use crate::broker::Broker;
use crate::calendar::{self, Clock};
use crate::config::{Config, Mode};
use crate::execution::db::{StateDb, DB_FILE};
use crate::execution::engine::{self, CycleInputs, CycleReport, WatchlistInput};
use crate::execution::lifecycle::{Failpoints, LifecycleError, OrderDesk};
use crate::execution::process::{KillSwitch, Notifier, ShutdownSignal, StateLock};
use crate::exit::ExitCode;
use crate::market_data::intraday::{IntradayFeed, SyntheticIntradayFeed};
use crate::market_data::BarStore;
use crate::scan::providers::bar_store_path;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The simulated broker's own database in the state directory.
pub const SIM_BROKER_FILE: &str = "sim_broker.sqlite";
/// Seed of the synthetic intraday path the simulator trades on (fixed, so runs repeat).
pub const SIM_PATH_SEED: u64 = 20_100_809;

/// A failure that ends the process, with its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ServiceError {
    pub code: ExitCode,
    pub message: String,
}

impl ServiceError {
    fn new(code: ExitCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<LifecycleError> for ServiceError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::Auth(_) => {
                ServiceError::new(ExitCode::BrokerUnavailable, e.to_string())
            }
            LifecycleError::Db(_) => ServiceError::new(ExitCode::Internal, e.to_string()),
        }
    }
}

/// What the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Run the loop (or one cycle with `once`).
    Run { once: bool },
    /// Close every owned position at the market, then exit.
    Flatten,
}

/// Refuse every mode that cannot trade safely in this build. Never falls through to "live".
pub fn check_mode(mode: Mode) -> Result<(), ServiceError> {
    match mode {
        Mode::Sim => Ok(()),
        Mode::DryRun => Err(ServiceError::new(
            ExitCode::NotImplemented,
            "mode dry-run is not yet available: it needs real market data from Alpaca, which this build does not have. Nothing was traded. Use --mode sim.",
        )),
        Mode::AlpacaPaper => Err(ServiceError::new(
            ExitCode::NotImplemented,
            "mode alpaca-paper is not yet available in this build (the Alpaca integration has not landed). Nothing was traded. Use --mode sim.",
        )),
        Mode::AlpacaLive => Err(ServiceError::new(
            ExitCode::NotImplemented,
            "mode alpaca-live is not yet available in this build (the Alpaca integration has not landed); it will also require a separate live confirmation. Nothing was traded.",
        )),
    }
}

/// The watchlist for the engine: valid and for today's New York date, or unavailable with
/// the reason. Judged by content (ScanDate), not by file time, so a simulated clock works;
/// the file-time gate runs before the service starts (`avwap-gate` as `ExecStartPre`).
pub fn watchlist_input(path: &Path, now: DateTime<Utc>) -> WatchlistInput {
    let today = calendar::ny_date(now);
    match crate::watchlist::read_watchlist(path) {
        Ok(rows) => match rows.first() {
            Some(row) if row.scan_date != today => WatchlistInput::Unavailable(format!(
                "watchlist {} is for {}, not today ({today}): no entries; exits continue",
                path.display(),
                row.scan_date
            )),
            _ => WatchlistInput::Fresh(rows),
        },
        Err(e) => WatchlistInput::Unavailable(format!("{e}: no entries; exits continue")),
    }
}

/// Daily bars for the simulator's intraday path: the symbols of the watchlist and of our
/// positions, from the bar store in the state directory (empty when there is none).
fn sim_feed(state_dir: &Path, symbols: &[String]) -> Result<SyntheticIntradayFeed, ServiceError> {
    let path = bar_store_path(state_dir);
    if !path.exists() {
        tracing::warn!(store = %path.display(), "no bar store: the simulator has no prices, so nothing will fill");
        return Ok(SyntheticIntradayFeed::default());
    }
    let store = BarStore::open(&path)
        .map_err(|e| ServiceError::new(ExitCode::InputError, e.to_string()))?;
    SyntheticIntradayFeed::from_store(&store, symbols, None, None, SIM_PATH_SEED)
        .map_err(|e| ServiceError::new(ExitCode::InputError, e.to_string()))
}

fn symbols_of_interest(
    db: &StateDb,
    watchlist: &WatchlistInput,
) -> Result<Vec<String>, ServiceError> {
    let mut symbols: Vec<String> = db
        .open_positions()
        .map_err(|e| ServiceError::new(ExitCode::Internal, e.to_string()))?
        .into_iter()
        .map(|p| p.symbol)
        .collect();
    if let WatchlistInput::Fresh(rows) = watchlist {
        symbols.extend(rows.iter().map(|r| r.symbol.clone()));
    }
    symbols.sort();
    symbols.dedup();
    Ok(symbols)
}

/// Run the service until shutdown (or one cycle / a flatten).
pub fn run(config: &Config, command: Command, clock: &dyn Clock) -> Result<(), ServiceError> {
    check_mode(config.mode)?;
    let state_dir = &config.state_dir;
    std::fs::create_dir_all(state_dir).map_err(|e| {
        ServiceError::new(
            ExitCode::InputError,
            format!(
                "cannot create the state directory {}: {e}",
                state_dir.display()
            ),
        )
    })?;
    let _lock = StateLock::acquire(state_dir)
        .map_err(|e| ServiceError::new(e.exit_code(), e.to_string()))?;
    let shutdown = ShutdownSignal::install()
        .map_err(|e| ServiceError::new(ExitCode::Internal, e.to_string()))?;
    let notifier = Notifier::from_env();
    let failpoints = Failpoints::from_env();
    let mut db = StateDb::open(&state_dir.join(DB_FILE))
        .map_err(|e| ServiceError::new(ExitCode::InputError, e.to_string()))?;
    let watchlist_path = config.watchlist_path();
    let exec = &config.execution;

    let mut cycle: u64 = 0;
    let mut ready_sent = false;
    loop {
        let now = clock.now();
        let watchlist = watchlist_input(&watchlist_path, now);
        let symbols = symbols_of_interest(&db, &watchlist)?;
        let mut feed = sim_feed(state_dir, &symbols)?;
        // The store holds closed sessions only; the simulator needs a path for today too.
        if let Err(e) = feed.extend_through(calendar::ny_date(now)) {
            tracing::warn!("cannot extend the simulated price path to today: {e}");
        }
        let mut broker = SimBroker::open(
            &state_dir.join(SIM_BROKER_FILE),
            SimConfig {
                starting_cash: exec.sim_starting_cash,
                start: Some(now),
                ..SimConfig::default()
            },
            Box::new(feed.clone()),
        )
        .map_err(|e| {
            ServiceError::new(
                ExitCode::BrokerUnavailable,
                format!("simulated broker: {e}"),
            )
        })?;
        broker
            .advance_to(now)
            .map_err(|e| ServiceError::new(ExitCode::Internal, format!("simulated broker: {e}")))?;

        let kill = KillSwitch::check(state_dir, exec.kill_switch);
        let report = run_one(
            &mut db,
            &mut broker,
            &feed,
            now,
            &failpoints,
            config,
            &watchlist,
            kill.reason.clone(),
            command,
        )?;
        cycle += 1;
        if let Err(e) = db.heartbeat(now, config.mode.as_str(), cycle) {
            tracing::warn!("heartbeat not written: {e}");
        }
        log_cycle(cycle, &report, &watchlist);
        if !ready_sent {
            // Startup reconciliation is the first cycle; only then are we ready.
            notifier.ready();
            ready_sent = true;
        }
        notifier.watchdog_ping();
        notifier.status(&format!(
            "cycle {cycle}: market {}, entries {}, exits {}",
            if report.market_open { "open" } else { "closed" },
            report.entries_sent,
            report.exits_sent
        ));
        if matches!(command, Command::Run { once: true } | Command::Flatten) || shutdown.requested()
        {
            break;
        }
        let wait = Duration::from_secs(if report.market_open {
            exec.poll_seconds_open
        } else {
            exec.poll_seconds_closed
        });
        if !sleep_with_watchdog(&shutdown, &notifier, wait) {
            break;
        }
    }
    notifier.stopping();
    tracing::info!(cycles = cycle, "avwap-execution stopped cleanly");
    Ok(())
}

/// Sleep up to `wait`, pinging the watchdog; false when a shutdown was requested.
fn sleep_with_watchdog(shutdown: &ShutdownSignal, notifier: &Notifier, wait: Duration) -> bool {
    let slice = notifier
        .watchdog_interval()
        .unwrap_or(wait)
        .min(wait)
        .max(Duration::from_millis(200));
    let mut left = wait;
    while !left.is_zero() {
        let step = slice.min(left);
        if !shutdown.sleep_until_or_shutdown(step) {
            return false;
        }
        notifier.watchdog_ping();
        left = left.saturating_sub(step);
    }
    !shutdown.requested()
}

#[allow(clippy::too_many_arguments)]
fn run_one(
    db: &mut StateDb,
    broker: &mut dyn Broker,
    feed: &dyn IntradayFeed,
    now: DateTime<Utc>,
    failpoints: &Failpoints,
    config: &Config,
    watchlist: &WatchlistInput,
    kill_switch: Option<String>,
    command: Command,
) -> Result<CycleReport, ServiceError> {
    let mut desk = OrderDesk {
        db,
        broker,
        now,
        failpoints,
        unknown_outcome_grace: Duration::from_secs(config.execution.unknown_outcome_grace_seconds),
    };
    let inputs = CycleInputs {
        watchlist,
        kill_switch,
        feed,
        config: &config.execution,
        allow_entries: command != Command::Flatten,
    };
    let report = engine::run_cycle(&mut desk, &inputs)?;
    if command == Command::Flatten {
        if !report.market_open {
            return Err(ServiceError::new(
                ExitCode::InputError,
                "the market is closed: flatten sends market orders and only runs during a session; protective stops stay in place",
            ));
        }
        let sent = engine::flatten(&mut desk)?;
        println!("flatten: {sent} sell orders sent");
    }
    Ok(report)
}

fn log_cycle(cycle: u64, report: &CycleReport, watchlist: &WatchlistInput) {
    let watchlist_state = match watchlist {
        WatchlistInput::Fresh(rows) => format!("fresh ({} rows)", rows.len()),
        WatchlistInput::Unavailable(why) => format!("unavailable: {why}"),
    };
    tracing::info!(
        cycle,
        market_open = report.market_open,
        entries = report.entries_sent,
        stops_placed = report.stops_placed,
        stops_replaced = report.stops_replaced,
        trims = report.trims_sent,
        exits = report.exits_sent,
        warnings = report.warnings.len(),
        "cycle done; watchlist {watchlist_state}"
    );
    for warning in &report.warnings {
        tracing::warn!("{warning}");
    }
}

/// A fixed clock for `--at` (simulations and tests): refuses to run a broker mode on it.
pub fn fixed_clock_allowed(mode: Mode) -> bool {
    mode == Mode::Sim
}

/// Parse `--at`: RFC 3339, or `YYYY-MM-DDTHH:MM` New York wall time.
pub fn parse_at(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let local = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").ok()?;
    Some(calendar::ny_instant(local.date(), local.time()))
}

/// The state directory's database path (for tools and tests).
pub fn db_path(state_dir: &Path) -> PathBuf {
    state_dir.join(DB_FILE)
}
