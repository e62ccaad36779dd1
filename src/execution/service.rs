//! The `avwap-execution` service: mode checks (fail closed), the state-directory lock, the
//! state database, the broker, startup reconciliation, `READY=1`, the poll loop with watchdog
//! pings and a heartbeat, and a clean exit on SIGTERM/SIGINT after the current step. Also the
//! binary's other commands (`report`, `suspend-trading`, the `--at` clock) and
//! [`ExecutionError`], every way the process can fail, each with its exit code.

use crate::alpaca::{read_cycle, DeadlineGuard};
use crate::broker::sim::{SimBroker, SimConfig, SimError};
use crate::broker::{Broker, BrokerError, CycleReads};
use crate::calendar::{self, Clock, FixedClock};
use crate::config::{Config, Mode};
use crate::credentials::CredentialStore;
use crate::execution::db::{DbError, StateDb, DB_FILE};
use crate::execution::engine::{self, CycleInputs, CycleReport, WatchlistInput, SNAPSHOT_BARS};
use crate::execution::lifecycle::{Failpoints, LifecycleError, OrderDesk};
use crate::execution::process::{
    KillSwitch, LockError, Notifier, ShutdownError, ShutdownSignal, StateLock,
};
use crate::execution::venue::{self, SharedFeed, VenueError, DRY_RUN_BROKER_FILE};
use crate::exit::{ExitCode, Failure};
use crate::market_data::intraday::{IntradayFeed, SyntheticIntradayFeed};
use crate::market_data::{bar_store_path, BarStore, StoreError};
use crate::ops::alerts::{AlertKind, Alerts};

use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The simulated broker's own database in the state directory.
pub const SIM_BROKER_FILE: &str = "sim_broker.sqlite";
/// Seed of the synthetic intraday path the simulator trades on (fixed, so runs repeat).
pub const SIM_PATH_SEED: u64 = 20_100_809;

/// The `after_help` of `avwap-execution`: modes, kill switch and the exit codes of
/// [`ExecutionError`].
pub const AFTER_HELP: &str = "\
Modes: sim (default; built-in simulated broker, no credentials), dry-run, alpaca-paper,
alpaca-live. An unknown mode is a configuration error, never live. dry-run reads Alpaca market
data and records orders in a local book (dry_run_broker.sqlite), never sending them.
dry-run, alpaca-paper and alpaca-live need the keys (credentials alpaca-key-id /
alpaca-secret-key, or APCA_API_KEY_ID / APCA_API_SECRET_KEY); alpaca-live also the account
number in alpaca-live-account (or AVWAP_LIVE_ACCOUNT), which must match the account of the keys.

Kill switch: create the file KILL_SWITCH in the state directory (or set
execution.kill_switch = true) to stop all new entries at once; exits and stops keep working.

Exit codes:
  0   stopped cleanly (SIGTERM/SIGINT after the current step, or --once / flatten done)
  10  bad command line, configuration or missing credentials (never restarted)
  11  another avwap-execution holds the state-directory lock
  12  the broker is unreachable, refused our credentials or answered in a way that cannot be
      acted on; flatten left a position open or a sell of unknown outcome (printed)
  13  input problem (state directory, database of a newer avwap, bar store)
  70  internal error";

/// Why `avwap-execution` stops with a failure; each variant knows its exit code
/// ([`Failure::exit_code`]) and its text is what the operator reads.
#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    /// The mode cannot start: settings, credentials, account (exit 10 or 12).
    #[error(transparent)]
    Venue(#[from] VenueError),
    /// The broker refused our credentials mid-run (exit 12) or the journal failed (exit 70).
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error("cannot create the state directory {}: {error}", path.display())]
    StateDir {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Another instance holds the lock (exit 11), or the lock file is unusable (exit 13).
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The state database cannot be opened or is of a newer avwap (exit 13).
    #[error(transparent)]
    OpenDatabase(DbError),
    /// A read of the open state database failed (exit 70).
    #[error(transparent)]
    Database(DbError),
    #[error(
        "the state directory {} was last run in mode {previous} and still holds {positions} open position(s) and {orders} open order(s) of that mode; \
         refusing to reconcile them against mode {mode}. Use a separate state directory per mode (or flatten in mode {previous} first).",
        state_dir.display()
    )]
    ModeMismatch {
        state_dir: PathBuf,
        previous: String,
        positions: usize,
        orders: usize,
        mode: Mode,
    },
    /// The bar store the simulator's prices come from is unreadable (exit 13).
    #[error(transparent)]
    SimPrices(StoreError),
    #[error("no broker for this mode (a bug: please report it)")]
    NoBroker,
    #[error(
        "[execution] cycle_deadline_seconds = {deadline_seconds} is not below half the unit's WatchdogSec ({watchdog_seconds} s): \
         a cycle against a hung broker could outlast the watchdog. Lower cycle_deadline_seconds below {} or raise WatchdogSec.",
        watchdog_seconds / 2
    )]
    DeadlineOutlastsWatchdog {
        deadline_seconds: u64,
        watchdog_seconds: u64,
    },
    /// The local order book (sim, dry-run) cannot be opened (exit 12).
    #[error("local order book {}: {error}", path.display())]
    OpenLocalBook { path: PathBuf, error: Box<SimError> },
    /// The local order book cannot be advanced to now (exit 70).
    #[error("local order book {}: {error}", path.display())]
    AdvanceLocalBook { path: PathBuf, error: Box<SimError> },
    #[error(transparent)]
    Signals(#[from] ShutdownError),
    #[error("flatten did not close everything: {sent} sell order(s) acknowledged, but {remaining} remain open or have a sell of unknown outcome (each is printed above with why). Check the account at the broker; run flatten again once the cause is fixed")]
    FlattenIncomplete { sent: u32, remaining: String },
    #[error("the market is closed: flatten sends market orders and only runs during a session; protective stops stay in place")]
    FlattenWhileClosed,
    #[error(
        "suspend-trading acts on an Alpaca account (modes alpaca-paper, alpaca-live); mode {mode} has none. \
         To stop new entries here create the file KILL_SWITCH in the state directory."
    )]
    NoBrokerAccount { mode: Mode },
    #[error("Alpaca did not take the change: {0}. Check the account in Alpaca's dashboard.")]
    SuspensionRefused(BrokerError),
    #[error("asked to {} new orders, but Alpaca's answer to the change says suspend_trade = {reported}; check the account in Alpaca's dashboard", if *.asked { "suspend" } else { "allow" })]
    SuspensionUnchanged { asked: bool, reported: bool },
    #[error("--at is only allowed in sim mode (and in dry-run/alpaca-paper against a server on this machine, for tests)")]
    FixedClockRefused,
    #[error("--at {text:?} is not a time (use 2026-11-30T10:05 New York, or RFC 3339)")]
    NotATime { text: String },
    #[error("no execution database at {}: nothing has run in this state directory", path.display())]
    NoDatabase { path: PathBuf },
    /// `report`: the database cannot be opened or read (exit 13).
    #[error(transparent)]
    Report(DbError),
}

impl Failure for ExecutionError {
    fn exit_code(&self) -> ExitCode {
        match self {
            ExecutionError::Venue(e) => e.exit_code(),
            ExecutionError::Lifecycle(LifecycleError::Auth(_)) => ExitCode::BrokerUnavailable,
            ExecutionError::Lifecycle(LifecycleError::Db(_)) => ExitCode::Internal,
            ExecutionError::Lock(e) => e.exit_code(),
            ExecutionError::StateDir { .. }
            | ExecutionError::OpenDatabase(_)
            | ExecutionError::SimPrices(_)
            | ExecutionError::FlattenWhileClosed
            | ExecutionError::NoDatabase { .. }
            | ExecutionError::Report(_) => ExitCode::InputError,
            ExecutionError::ModeMismatch { .. }
            | ExecutionError::NoBrokerAccount { .. }
            | ExecutionError::FixedClockRefused
            | ExecutionError::DeadlineOutlastsWatchdog { .. }
            | ExecutionError::NotATime { .. } => ExitCode::ConfigError,
            ExecutionError::OpenLocalBook { .. }
            | ExecutionError::SuspensionRefused(_)
            | ExecutionError::SuspensionUnchanged { .. }
            | ExecutionError::FlattenIncomplete { .. } => ExitCode::BrokerUnavailable,
            ExecutionError::Database(_)
            | ExecutionError::NoBroker
            | ExecutionError::AdvanceLocalBook { .. }
            | ExecutionError::Signals(_) => ExitCode::Internal,
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

/// The market `sim` trades on: the seeded synthetic 10-minute path of `symbols` from the bar
/// store in the state directory, extended through `today` (the store holds closed sessions
/// only). Empty when there is no store. Public for test servers that must show a client the
/// same prices.
pub fn sim_market(
    state_dir: &Path,
    symbols: &[String],
    today: chrono::NaiveDate,
) -> Result<SyntheticIntradayFeed, ExecutionError> {
    let mut feed = sim_feed(state_dir, symbols)?;
    if let Err(e) = feed.extend_through(today) {
        tracing::warn!("cannot extend the simulated price path to {today}: {e}");
    }
    Ok(feed)
}

/// Daily bars for the simulator's intraday path, from the bar store in the state directory
/// (empty when there is none).
fn sim_feed(state_dir: &Path, symbols: &[String]) -> Result<SyntheticIntradayFeed, ExecutionError> {
    let path = bar_store_path(state_dir);
    if !path.exists() {
        tracing::warn!(store = %path.display(), "no bar store: the simulator has no prices, so nothing will fill");
        return Ok(SyntheticIntradayFeed::default());
    }
    let store = BarStore::open(&path).map_err(ExecutionError::SimPrices)?;
    SyntheticIntradayFeed::from_store(&store, symbols, None, None, SIM_PATH_SEED)
        .map_err(ExecutionError::SimPrices)
}

/// The prices a local book fills on (and the engine reads) in sim and dry-run.
type LocalFeed = Arc<dyn IntradayFeed + Send + Sync>;

/// What the opened service trades against (see [`venue`]).
enum Venue {
    /// Simulated broker and synthetic prices, reopened from their files each cycle.
    Sim,
    /// Alpaca market data; orders go to the local book in [`DRY_RUN_BROKER_FILE`].
    DryRun { feed: SharedFeed },
    /// Alpaca's Trading API (paper or live) and market data.
    Alpaca {
        broker: Box<crate::alpaca::AlpacaBroker>,
        feed: SharedFeed,
    },
}

/// An opened service: lock held, database open. One `cycle` per poll.
pub struct Service<'a> {
    config: &'a Config,
    venue: Venue,
    db: StateDb,
    failpoints: Failpoints,
    cycles: u64,
    alerts: Alerts,
    /// Watchdog pings between the phases of a cycle (disabled outside systemd).
    notifier: Notifier,
    kill_switch_was_engaged: bool,
    _lock: StateLock,
}

impl<'a> Service<'a> {
    /// Check the mode, take the lock and open the database.
    pub fn open(config: &'a Config) -> Result<Self, ExecutionError> {
        // URLs, credentials, account and live confirmation before anything is created on disk.
        let venue = open_venue(config)?;
        let state_dir = &config.state_dir;
        std::fs::create_dir_all(state_dir).map_err(|error| ExecutionError::StateDir {
            path: state_dir.clone(),
            error,
        })?;
        let lock = StateLock::acquire(state_dir)?;
        let db = StateDb::open(&state_dir.join(DB_FILE)).map_err(ExecutionError::OpenDatabase)?;
        check_same_mode(&db, config)?;
        Ok(Self {
            config,
            venue,
            db,
            failpoints: Failpoints::from_env(),
            cycles: 0,
            alerts: Alerts::disabled(),
            notifier: Notifier::disabled(),
            kill_switch_was_engaged: false,
            _lock: lock,
        })
    }

    pub fn db(&self) -> &StateDb {
        &self.db
    }

    /// HTTP requests sent to Alpaca since start (trading and data), for the cycle log.
    pub fn alpaca_requests(&self) -> Option<u64> {
        match &self.venue {
            Venue::Sim => None,
            Venue::DryRun { feed } => Some(feed.client.requests_sent()),
            Venue::Alpaca { broker, feed } => {
                Some(broker.requests_sent() + feed.client.requests_sent())
            }
        }
    }

    /// Alpaca modes: fetch Alpaca's calendar (cached in the state directory) and log every
    /// day it disagrees with ours. We trade by our own calendar; a mismatch is for the
    /// operator to look into, never a reason to stop.
    pub fn compare_broker_calendar(&self, now: DateTime<Utc>) {
        if let Venue::Alpaca { broker, .. } = &self.venue {
            let today = calendar::ny_date(now);
            if let Some(check) = crate::alpaca::calendar::check_calendar_and_log(
                broker.client(),
                &self.config.state_dir,
                today,
            ) {
                tracing::info!(
                    mismatches = check.mismatches.len(),
                    "Alpaca's calendar compared with avwap's"
                );
            }
        }
    }

    /// Ping the systemd watchdog through this notifier between the phases of every cycle.
    pub fn with_notifier(mut self, notifier: Notifier) -> Self {
        self.notifier = notifier;
        self
    }

    /// Send alerts (fills, stop moves, kill switch, errors) through this sender.
    pub fn with_alerts(mut self, alerts: Alerts) -> Self {
        self.alerts = alerts;
        self
    }

    /// Alerts for what the cycle at `now` did (the webhook runs off the trading path).
    fn alert_cycle(
        &mut self,
        now: DateTime<Utc>,
        report: &CycleReport,
        kill: &crate::execution::process::KillSwitchState,
    ) {
        if !self.alerts.enabled() {
            return;
        }
        if kill.engaged && !self.kill_switch_was_engaged {
            self.alerts.send(
                AlertKind::KillSwitch,
                kill.source.map_or("kill-switch", |s| s.as_str()),
                &kill.to_string(),
            );
        }
        self.kill_switch_was_engaged = kill.engaged;
        if let Ok(fills) = self.db.fills() {
            for f in fills.iter().filter(|f| f.recorded_at == now) {
                self.alerts.send(
                    AlertKind::OrderFilled,
                    &f.client_order_id,
                    &format!(
                        "{} {} {} @ {} ({})",
                        f.side.as_str(),
                        f.qty,
                        f.symbol,
                        f.price,
                        f.client_order_id
                    ),
                );
            }
        }
        if let Ok(events) = self.db.events(Some(calendar::ny_date(now))) {
            for e in events.iter().filter(|e| e.at == now) {
                let symbol = e.symbol.as_deref().unwrap_or("?");
                let kind = match e.kind.as_str() {
                    "stop_raised" => AlertKind::StopMoved,
                    // The broker answered with another order: someone must look at the account.
                    crate::execution::lifecycle::ANSWER_MISMATCH => AlertKind::Error,
                    _ => continue,
                };
                self.alerts
                    .send(kind, symbol, &format!("{symbol}: {}", e.message));
            }
        }
        for warning in &report.warnings {
            self.alerts.send(
                AlertKind::Error,
                warning.split(':').next().unwrap_or("cycle"),
                warning,
            );
        }
    }

    /// One cycle at `now`: advance a local book, read (concurrently for Alpaca), decide,
    /// write. Everything the cycle asks of Alpaca ends by `[execution] cycle_deadline_seconds`
    /// from its start, and the watchdog is pinged between the phases.
    pub fn cycle(
        &mut self,
        now: DateTime<Utc>,
        command: Command,
    ) -> Result<CycleReport, ExecutionError> {
        let config = self.config;
        let state_dir = &config.state_dir;
        let exec = &config.execution;
        let deadline = Instant::now() + exec.cycle_deadline();
        self.notifier.watchdog_ping();
        let watchlist = watchlist_input(&config.watchlist_path(), now);
        let symbols =
            engine::symbols_of_interest(&self.db, &watchlist).map_err(ExecutionError::Database)?;
        let kill = KillSwitch::check(state_dir, exec.kill_switch);
        if kill.engaged {
            tracing::warn!(
                source = kill.source.map(|s| s.as_str()),
                "kill switch engaged: no new entries; stops and exits continue ({})",
                kill.reason.as_deref().unwrap_or("")
            );
        }
        // A local book (sim, dry-run) is reopened from its file each cycle and advanced to
        // `now`; Alpaca is one long-lived client.
        let local: Option<(&str, LocalFeed)> = match &self.venue {
            Venue::Sim => Some((
                SIM_BROKER_FILE,
                Arc::new(sim_market(state_dir, &symbols, calendar::ny_date(now))?),
            )),
            Venue::DryRun { feed } => Some((DRY_RUN_BROKER_FILE, feed.clone())),
            Venue::Alpaca { .. } => None,
        };
        let mut local_book = match &local {
            Some((file, feed)) => Some(open_local_book(
                &state_dir.join(file),
                config,
                now,
                feed.clone(),
            )?),
            None => None,
        };
        // The read phase. For Alpaca the deadline also bounds the write phase (the guard lives
        // until the end of the cycle): an order not sent by then is not sent at all.
        let (_deadline_guard, broker, feed, reads): (
            Option<DeadlineGuard>,
            &mut dyn Broker,
            &dyn IntradayFeed,
            CycleReads,
        ) = match (&mut self.venue, local_book.as_mut(), &local) {
            (Venue::Alpaca { broker, feed }, _, _) => {
                let guard = broker.client().deadline_until(deadline);
                let reads = read_cycle(broker, feed, &symbols, now, SNAPSHOT_BARS, deadline);
                (Some(guard), broker.as_mut(), &**feed, reads)
            }
            (Venue::DryRun { feed }, Some(book), Some((_, local_feed))) => {
                let guard = feed.client.deadline_until(deadline);
                let (market, market_complete) =
                    feed.snapshot_until(&symbols, now, SNAPSHOT_BARS, deadline);
                let reads = CycleReads::from_lists(
                    book.account(),
                    book.position_list(),
                    book.open_order_list(),
                    market,
                    market_complete,
                );
                (Some(guard), book, &**local_feed, reads)
            }
            (Venue::Sim, Some(book), Some((_, feed))) => {
                let reads = CycleReads::sequential(book, &**feed, &symbols, now, SNAPSHOT_BARS);
                (None, book, &**feed, reads)
            }
            _ => return Err(ExecutionError::NoBroker),
        };
        self.notifier.watchdog_ping();
        let mut desk = OrderDesk {
            db: &mut self.db,
            broker,
            now,
            failpoints: &self.failpoints,
            unknown_outcome_grace: Duration::from_secs(exec.unknown_outcome_grace_seconds),
        };
        let inputs = CycleInputs {
            watchlist: &watchlist,
            kill_switch: kill.reason.clone(),
            feed,
            config: exec,
            allow_entries: command != Command::Flatten,
        };
        let notifier = &self.notifier;
        let report =
            engine::run_cycle_with(&mut desk, &inputs, reads, &mut |_| notifier.watchdog_ping())?;
        if command == Command::Flatten {
            if !report.market_open {
                return Err(ExecutionError::FlattenWhileClosed);
            }
            let held_back: BTreeSet<String> = report
                .blocked_symbols
                .iter()
                .chain(&report.unreadable_positions)
                .cloned()
                .collect();
            let outcome = engine::flatten(&mut desk, &held_back)?;
            println!("flatten: {} sell orders sent", outcome.sells_sent);
            for symbol in &outcome.already_selling {
                println!("flatten: {symbol} is already being sold by a working sell order of ours");
            }
            for left in &outcome.remaining {
                println!(
                    "flatten: NOT CLOSED {} {}: {}",
                    left.qty, left.symbol, left.why
                );
            }
            if !outcome.complete() {
                return Err(ExecutionError::FlattenIncomplete {
                    sent: outcome.sells_sent,
                    remaining: outcome
                        .remaining
                        .iter()
                        .map(|r| format!("{} {}", r.qty, r.symbol))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        drop(_deadline_guard);
        self.notifier.watchdog_ping();
        if Instant::now() > deadline + DEADLINE_OVERRUN_WARNING {
            tracing::warn!(
                deadline_seconds = exec.cycle_deadline_seconds,
                "the cycle outlasted its deadline by more than {} s (local work: database or local book)",
                DEADLINE_OVERRUN_WARNING.as_secs()
            );
        }
        self.cycles += 1;
        if let Err(e) = self.db.heartbeat(now, config.mode.as_str(), self.cycles) {
            tracing::warn!("heartbeat not written: {e}");
        }
        // avwap-check reads it; a verdict not written shows there as stale.
        if let Some(verdict) = &report.verdict {
            match self.db.record_verdict(verdict) {
                Ok(stored) => log_new_problems(&stored),
                Err(e) => tracing::warn!("reconciliation verdict not recorded: {e}"),
            }
        }
        self.alert_cycle(now, &report, &kill);
        let requests = self.alpaca_requests();
        log_cycle(self.cycles, &report, &watchlist, requests);
        Ok(report)
    }
}

/// A reconciliation problem is logged once, in the cycle that first sees it (avwap-check
/// reports it for as long as it lasts).
fn log_new_problems(verdict: &crate::execution::verdict::Verdict) {
    for row in verdict
        .problems()
        .filter(|r| r.first_seen == Some(verdict.at))
    {
        let quantity = |q: Option<rust_decimal::Decimal>| q.map(|q| q.to_string());
        tracing::warn!(
            symbol = %row.symbol,
            status = row.status.as_str(),
            broker_qty = quantity(row.broker_qty),
            owned_qty = %row.owned_qty,
            stop_qty = quantity(row.stop_qty),
            "reconciliation: {} {} (broker {}, journal {}, covered by broker stops and market sells {})",
            row.symbol,
            row.status.as_str(),
            quantity(row.broker_qty).unwrap_or_else(|| "unread".into()),
            row.owned_qty,
            quantity(row.covered_qty()).unwrap_or_else(|| "unread".into()),
        );
    }
}

/// How far past its deadline a cycle may run (local database work) before it is logged.
const DEADLINE_OVERRUN_WARNING: Duration = Duration::from_secs(2);

/// A simulated order book in `path`, advanced to `now`, filling on `feed`'s prices (`sim`:
/// the synthetic path; `dry-run`: Alpaca's real bars). Public for test servers.
pub fn open_local_book(
    path: &Path,
    config: &Config,
    now: DateTime<Utc>,
    feed: impl IntradayFeed + Send + 'static,
) -> Result<SimBroker, ExecutionError> {
    let mut broker = SimBroker::open(
        path,
        SimConfig {
            starting_cash: config.execution.sim_starting_cash,
            start: Some(now),
            ..SimConfig::default()
        },
        Box::new(feed),
    )
    .map_err(|error| ExecutionError::OpenLocalBook {
        path: path.to_path_buf(),
        error: Box::new(error),
    })?;
    broker
        .advance_to(now)
        .map_err(|error| ExecutionError::AdvanceLocalBook {
            path: path.to_path_buf(),
            error: Box::new(error),
        })?;
    Ok(broker)
}

/// Build what the mode trades against; every refusal comes before the first order request.
fn open_venue(config: &Config) -> Result<Venue, ExecutionError> {
    let credentials = CredentialStore::from_process_env();
    match config.mode {
        Mode::Sim => Ok(Venue::Sim),
        Mode::DryRun => {
            let feed = venue::open_dry_run_feed(config, &credentials)?;
            tracing::warn!(
                book = DRY_RUN_BROKER_FILE,
                "dry-run: real Alpaca market data; orders are recorded in the local book and never sent to Alpaca"
            );
            Ok(Venue::DryRun { feed })
        }
        Mode::AlpacaPaper | Mode::AlpacaLive => {
            let (broker, feed) = venue::open_alpaca(config, &credentials)?;
            Ok(Venue::Alpaca {
                broker: Box::new(broker),
                feed,
            })
        }
    }
}

/// A state database keeps the records of one mode: positions and orders of another mode
/// (say sim) must never be reconciled against a real account.
fn check_same_mode(db: &StateDb, config: &Config) -> Result<(), ExecutionError> {
    let Some(previous) = db.last_heartbeat_mode().map_err(ExecutionError::Database)? else {
        return Ok(());
    };
    if previous == config.mode.as_str() {
        return Ok(());
    }
    let positions = db.open_positions().map_err(ExecutionError::Database)?.len();
    let orders = db.open_orders().map_err(ExecutionError::Database)?.len();
    if positions == 0 && orders == 0 {
        tracing::warn!(
            previous,
            mode = %config.mode,
            "this state directory was last used in another mode; it holds no open positions or orders, so continuing"
        );
        return Ok(());
    }
    Err(ExecutionError::ModeMismatch {
        state_dir: config.state_dir.clone(),
        previous,
        positions,
        orders,
        mode: config.mode,
    })
}

/// The broker-side kill switch: set (or with `suspend = false` lift) Alpaca's
/// `suspend_trade`, which makes Alpaca refuse every new order of the account, ours and
/// anyone's, until lifted. Working orders (our protective stops included) stay in force.
/// Does not take the state lock, so it works while the service runs. Returns whether new
/// orders are suspended as Alpaca's answer to the change says (its `suspend_trade`; the
/// account's optional `trade_suspended_by_user` is not the field that was set).
pub fn set_broker_suspension(config: &Config, suspend: bool) -> Result<bool, ExecutionError> {
    if matches!(config.mode, Mode::Sim | Mode::DryRun) {
        return Err(ExecutionError::NoBrokerAccount { mode: config.mode });
    }
    let credentials = CredentialStore::from_process_env();
    let mut broker = venue::open_alpaca_broker(config, &credentials)?;
    let suspended = broker
        .suspend_new_orders(suspend)
        .map_err(ExecutionError::SuspensionRefused)?;
    tracing::warn!(
        mode = %config.mode,
        suspended,
        "broker-side kill switch {}",
        if suspend { "set" } else { "lifted" }
    );
    Ok(suspended)
}

/// Run the service until shutdown (or one cycle / a flatten).
pub fn run(config: &Config, command: Command, clock: &dyn Clock) -> Result<(), ExecutionError> {
    tracing::info!(mode = %config.mode, state_dir = %config.state_dir.display(), "avwap-execution starting");
    let alerts = Alerts::from_config(&config.alerts);
    let result = run_with_alerts(config, command, clock, alerts.clone());
    if let Err(e) = &result {
        alerts.send(
            AlertKind::Error,
            "service",
            &format!("avwap-execution stopped: {e}"),
        );
    }
    alerts.flush(crate::ops::alerts::EXIT_FLUSH_TIMEOUT);
    result
}

fn run_with_alerts(
    config: &Config,
    command: Command,
    clock: &dyn Clock,
    alerts: Alerts,
) -> Result<(), ExecutionError> {
    let notifier = Notifier::from_env();
    check_deadline_fits_watchdog(&config.execution, notifier.watchdog_interval())?;
    let mut service = Service::open(config)?
        .with_alerts(alerts.clone())
        .with_notifier(notifier.clone());
    service.compare_broker_calendar(clock.now());
    let shutdown = ShutdownSignal::install()?;
    let mut ready_sent = false;
    loop {
        let report = service.cycle(clock.now(), command)?;
        if !ready_sent {
            // Startup reconciliation is the first cycle; only then are we ready.
            notifier.ready();
            ready_sent = true;
            if matches!(command, Command::Run { once: false }) {
                alerts.send(
                    AlertKind::ExecutionStarted,
                    "started",
                    &format!("avwap-execution started (mode {})", config.mode),
                );
            }
        }
        notifier.watchdog_ping();
        notifier.status(&format!(
            "cycle {}: {}, entries {}, exits {}",
            service.cycles, report.phase, report.entries_sent, report.exits_sent
        ));
        if matches!(command, Command::Run { once: true } | Command::Flatten) || shutdown.requested()
        {
            break;
        }
        let wait = crate::execution::phases::poll_interval(clock.now(), &config.execution);
        if !sleep_with_watchdog(&shutdown, &notifier, wait) {
            break;
        }
    }
    notifier.stopping();
    tracing::info!(cycles = service.cycles, "avwap-execution stopped cleanly");
    Ok(())
}

/// A cycle must end well inside the watchdog: refuse a deadline that is not below the ping
/// interval systemd asks for (half of `WatchdogSec`).
pub fn check_deadline_fits_watchdog(
    execution: &crate::execution::config::ExecutionConfig,
    ping_interval: Option<Duration>,
) -> Result<(), ExecutionError> {
    match ping_interval {
        Some(interval) if execution.cycle_deadline() >= interval => {
            Err(ExecutionError::DeadlineOutlastsWatchdog {
                deadline_seconds: execution.cycle_deadline_seconds,
                watchdog_seconds: interval.saturating_mul(2).as_secs(),
            })
        }
        _ => Ok(()),
    }
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
        if shutdown.sleep_until_or_shutdown(step) {
            return false;
        }
        notifier.watchdog_ping();
        left = left.saturating_sub(step);
    }
    !shutdown.requested()
}

fn log_cycle(
    cycle: u64,
    report: &CycleReport,
    watchlist: &WatchlistInput,
    alpaca_requests: Option<u64>,
) {
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
        alpaca_requests,
        "cycle done; watchlist {watchlist_state}"
    );
    for warning in &report.warnings {
        tracing::warn!("{warning}");
    }
}

/// `suspend-trading` (`suspend = true`) or `suspend-trading --resume`: set the broker-side
/// kill switch, print what Alpaca now reports, and fail when the account did not change as
/// asked.
pub fn suspend_trading(config: &Config, suspend: bool) -> Result<(), ExecutionError> {
    let suspended = set_broker_suspension(config, suspend)?;
    println!(
        "{}: Alpaca reports new orders {}",
        config.mode,
        if suspended {
            "SUSPENDED (broker-side kill switch on)"
        } else {
            "allowed"
        }
    );
    if suspended != suspend {
        return Err(ExecutionError::SuspensionUnchanged {
            asked: suspend,
            reported: suspended,
        });
    }
    Ok(())
}

/// `report`: print one session's decisions, orders, fills, stops and P&L (a table, or one
/// JSON object). The session defaults to the last one with a heartbeat, else today in New
/// York at `now`.
pub fn print_report(
    config: &Config,
    date: Option<chrono::NaiveDate>,
    json: bool,
    now: DateTime<Utc>,
) -> Result<(), ExecutionError> {
    let path = db_path(&config.state_dir);
    // Only "not found" means no database: a directory this user may not enter is not empty.
    if std::fs::metadata(&path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Err(ExecutionError::NoDatabase { path });
    }
    // Read-only: an operator in the service's group may read the journal, never write it, and
    // a report never migrates a database under the running service.
    let db = StateDb::open_read_only_current(&path).map_err(ExecutionError::Report)?;
    let date = date.unwrap_or_else(|| {
        // A heartbeat that cannot be read only changes the default date, never the answer.
        db.last_heartbeat()
            .ok()
            .flatten()
            .map(calendar::ny_date)
            .unwrap_or_else(|| calendar::ny_date(now))
    });
    let report = crate::execution::report::day_report(&db, date).map_err(ExecutionError::Report)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", crate::execution::report::render_table(&report));
    }
    Ok(())
}

/// The fixed clock of `--at TIME`, where that is allowed (see [`fixed_clock_allowed`]); the
/// binary uses the system clock without `--at`.
pub fn fixed_clock(config: &Config, at: &str) -> Result<FixedClock, ExecutionError> {
    if !fixed_clock_allowed(config) {
        return Err(ExecutionError::FixedClockRefused);
    }
    parse_at(at)
        .map(FixedClock::new)
        .ok_or_else(|| ExecutionError::NotATime {
            text: at.to_string(),
        })
}

/// A fixed clock for `--at` (simulations and tests): see [`venue::fixed_clock_allowed`].
pub fn fixed_clock_allowed(config: &Config) -> bool {
    venue::fixed_clock_allowed(config)
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
