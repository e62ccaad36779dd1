//! `avwap-execution backtest`: the live scan and the live engine over a range of past
//! sessions, on the simulated broker, with a fresh book every run.
//!
//! An application module. Each session D: the scan runs as of D's morning on bars dated
//! before D only (the same pipeline, configuration and no-lookahead rule as `avwap-scan`,
//! through [`data::AsOfView`]); the engine trades that watchlist through the simulated broker
//! on D's synthetic 10-minute path, a cycle every 10 minutes from the open + 5 min to the
//! close + 10 min (as `simulate` does), carrying positions, stops and the journal across days.
//! The scan of the next session runs on a second thread while the engine trades the current
//! one (it needs only bars through today's close, which trading does not change). The journal
//! and the broker live in memory; every daily bar is read once.
//!
//! Out: a [`BacktestRun`] (equity at each close, round trips, the sessions' candidates) and
//! the files of [`outputs`]. The layout of the directory and the refusal rules are in
//! `docs/backtest.md`.

pub mod data;
pub mod outputs;
pub mod rendered;
#[cfg(test)]
mod tests;
pub mod trips;

use crate::broker::sim::{SimBroker, SimConfig, SimError};
use crate::broker::{Broker, BrokerError};
use crate::calendar::{self, CalendarError, Session};
use crate::config::Config;
use crate::execution::db::{DbError, StateDb};
use crate::execution::engine::{self, CycleInputs, WatchlistInput};
use crate::execution::ids::{ClientOrderId, Leg};
use crate::execution::lifecycle::{Failpoints, LifecycleError, OrderDesk};
use crate::execution::service::SIM_PATH_SEED;
use crate::exit::{ExitCode, Failure};
use crate::market_data::bar_store_path;
use crate::performance::{EquityPoint, ExitReason, RoundTrip};
use crate::scan::output;
use crate::scan::run::{run_scan, ScanPlan};
use crate::watchlist::WatchlistRow;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use data::{BacktestData, DataError, SessionFeed};
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

/// Minutes between cycles, the first after the open and the last after the close.
const CYCLE_MINUTES: i64 = 10;
const FIRST_CYCLE_AFTER_OPEN: i64 = 5;
const LAST_CYCLE_AFTER_CLOSE: i64 = 10;

/// Why a backtest stops; each variant knows its exit code.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error("--from {from} is after --to {to}; give the first session first")]
    Range { from: NaiveDate, to: NaiveDate },
    #[error("there is no NYSE session between {from} and {to}")]
    NoSessions { from: NaiveDate, to: NaiveDate },
    #[error("the data set ({source_name}) has no bars up to {to}: nothing to backtest")]
    NoData { source_name: String, to: NaiveDate },
    #[error(transparent)]
    Data(#[from] DataError),
    /// The range lies outside the NYSE calendar avwap knows.
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    #[error("the output directory {} already holds a backtest (backtest.json); choose a new directory, or pass --resume to recompute into it with the same configuration", dir.display())]
    DirHoldsBacktest { dir: PathBuf },
    #[error("the output directory {} holds a backtest of another configuration (fingerprint {} there, {} now); --resume only continues the same configuration: choose a new directory", dir.display(), short(previous), short(current))]
    FingerprintMismatch {
        dir: PathBuf,
        previous: String,
        current: String,
    },
    #[error("the output directory {} is not empty and holds no backtest.json (another program's files, or a backtest that did not finish); choose a new or empty directory, or delete it", dir.display())]
    DirNotEmpty { dir: PathBuf },
    #[error("cannot use the output directory {}: {error}", dir.display())]
    OutputDir { dir: PathBuf, error: std::io::Error },
    #[error("cannot read the previous {}: {message}; move it aside or choose a new directory", path.display())]
    PreviousUnreadable { path: PathBuf, message: String },
    #[error("cannot write {}: {error} (check that the output directory is writable)", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The in-memory simulated broker failed (a bug: report it).
    #[error("simulated broker: {0}")]
    Broker(#[from] SimError),
    #[error("simulated broker: {0}")]
    BrokerRead(#[from] BrokerError),
    /// The in-memory journal failed (a bug: report it).
    #[error("execution journal: {0}")]
    Journal(#[from] DbError),
    #[error("execution cycle: {0}")]
    Cycle(#[from] LifecycleError),
    #[error("the scan thread stopped unexpectedly (a bug: please report it)")]
    ScanThread,
    /// The configured `scan.sectors_file` cannot be read.
    #[error(transparent)]
    Sectors(crate::scan::output::OutputError),
    /// The metrics, CSV files or report could not be rendered (a bug: report it).
    #[error("{0} (a bug: please report it)")]
    Render(String),
}

fn short(fingerprint: &str) -> &str {
    fingerprint.get(..12).unwrap_or(fingerprint)
}

impl Failure for BacktestError {
    fn exit_code(&self) -> ExitCode {
        match self {
            BacktestError::Range { .. } | BacktestError::NoSessions { .. } => ExitCode::ConfigError,
            BacktestError::NoData { .. }
            | BacktestError::Data(_)
            | BacktestError::Calendar(_)
            | BacktestError::DirHoldsBacktest { .. }
            | BacktestError::FingerprintMismatch { .. }
            | BacktestError::DirNotEmpty { .. }
            | BacktestError::OutputDir { .. }
            | BacktestError::PreviousUnreadable { .. }
            | BacktestError::Sectors(_)
            | BacktestError::Write { .. } => ExitCode::InputError,
            BacktestError::Broker(_)
            | BacktestError::BrokerRead(_)
            | BacktestError::Journal(_)
            | BacktestError::Cycle(_)
            | BacktestError::ScanThread
            | BacktestError::Render(_) => ExitCode::Internal,
        }
    }
}

/// What the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BacktestRequest {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub out: PathBuf,
    /// The bundled demo data instead of the state directory's bar store.
    pub demo: bool,
    /// Recompute into a directory that holds a backtest of the same configuration.
    pub resume: bool,
}

/// One session of a run: what the morning scan produced.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub date: NaiveDate,
    /// The watchlist rows the engine traded (empty when the regime held entries back).
    pub candidates: Vec<WatchlistRow>,
    /// The scan's regime state ("bullish", "bearish", …), or "none" without a scan.
    pub regime: String,
    /// Why the scan produced no watchlist that morning (the engine then made no entries).
    pub scan_error: Option<String>,
}

/// Everything one backtest produced.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestRun {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub sessions: Vec<SessionRecord>,
    /// One point per session, at its close.
    pub equity: Vec<EquityPoint>,
    pub trips: Vec<RoundTrip>,
    pub benchmark_label: String,
    pub fingerprint: String,
    pub data_label: String,
    pub data_symbols: usize,
    pub data_range: Option<(NaiveDate, NaiveDate)>,
    pub starting_cash: Decimal,
    /// Fills at the simulated broker.
    pub fills: usize,
    /// Candidate-days the engine skipped, per reason (a candidate skipped for two reasons
    /// during one day counts under both).
    pub skip_reasons: BTreeMap<String, usize>,
    pub cycle_warnings: usize,
}

impl BacktestRun {
    /// Equity at the last close (the starting cash when no session ran).
    pub fn final_equity(&self) -> Decimal {
        self.equity.last().map_or(self.starting_cash, |p| p.equity)
    }
}

/// `avwap-execution backtest`: load the data, check the output directory, run, write the
/// outputs and print one line per result.
pub fn run(config: &Config, request: &BacktestRequest) -> Result<BacktestRun, BacktestError> {
    if request.from > request.to {
        return Err(BacktestError::Range {
            from: request.from,
            to: request.to,
        });
    }
    let data = if request.demo {
        BacktestData::demo(&config.scan, request.to)?
    } else {
        let mut data =
            BacktestData::from_store(&bar_store_path(&config.state_dir), &config.scan, request.to)?;
        // As `avwap-scan --provider store` labels its rows: the configured sectors file.
        if let Some(path) = config.scan.sectors_path(&config.state_dir) {
            data.sectors = output::read_sectors(&path).map_err(BacktestError::Sectors)?;
        }
        data
    };
    let fingerprint = outputs::fingerprint(&data.scan, config, &data.label);
    outputs::prepare_dir(&request.out, &fingerprint, request.resume)?;
    let run = backtest(config, &data, request.from, request.to)?;
    let rendered = rendered::render(&run, &data)?;
    outputs::write_outputs(&request.out, &run, rendered)?;
    println!(
        "backtest {}..{}: {} session(s), {} round trip(s), final equity {} (starting {}); benchmark: {}; outputs in {}",
        request.from,
        request.to,
        run.sessions.len(),
        run.trips.len(),
        run.final_equity().round_dp(2),
        run.starting_cash,
        run.benchmark_label,
        request.out.display()
    );
    if let Some(first) = run.sessions.iter().find(|s| s.scan_error.is_some()) {
        let count = run
            .sessions
            .iter()
            .filter(|s| s.scan_error.is_some())
            .count();
        println!(
            "{count} session(s) had no watchlist (no entries those days); first {}: {}",
            first.date,
            first.scan_error.as_deref().unwrap_or("")
        );
    }
    Ok(run)
}

/// The morning scan of one session, as `avwap-scan --as-of` would make it.
struct MorningScan {
    rows: Result<Vec<WatchlistRow>, String>,
    regime: String,
}

fn morning_scan(data: &BacktestData, date: NaiveDate) -> MorningScan {
    let outcome = ScanPlan::for_session(date, &data.scan)
        .and_then(|plan| run_scan(&mut data.as_of(date), &plan, &data.scan));
    match outcome {
        Ok(outcome) => MorningScan {
            rows: output::rows(&outcome.candidates, date, &data.sectors).map_err(|e| e.to_string()),
            regime: outcome.regime.state.to_string(),
        },
        Err(e) => MorningScan {
            rows: Err(e.to_string()),
            regime: "none".to_string(),
        },
    }
}

/// Run the backtest of `[from, to]` on `data` (the sessions of the NYSE calendar in that
/// range) with `config`'s `[execution]` and `[backtest]` settings: a fresh in-memory book.
pub fn backtest(
    config: &Config,
    data: &BacktestData,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<BacktestRun, BacktestError> {
    if from > to {
        return Err(BacktestError::Range { from, to });
    }
    let sessions = calendar::sessions_between(from, to)?;
    let Some(first) = sessions.first() else {
        return Err(BacktestError::NoSessions { from, to });
    };
    if data.bars.is_empty() {
        return Err(BacktestError::NoData {
            source_name: data.label.clone(),
            to,
        });
    }
    let costs = &config.backtest;
    let feed = SessionFeed::default();
    let mut broker = SimBroker::open_in_memory(
        SimConfig {
            starting_cash: costs.starting_cash,
            partial_fill_ratio: Decimal::ONE,
            start: Some(first.open - Duration::hours(1)),
            commission_per_share: costs.commission_per_share,
            slippage_bps: costs.slippage_bps,
        },
        Box::new(feed.clone()),
    )?;
    let mut db = StateDb::open_in_memory()?;
    let benchmark = data.benchmark(&config.backtest.benchmark);
    let mut trader = Trader {
        config,
        data,
        feed: &feed,
        broker: &mut broker,
        db: &mut db,
        failpoints: Failpoints::none(),
        rows: HashMap::new(),
        warnings: 0,
    };
    let mut records = Vec::with_capacity(sessions.len());
    let mut equity = Vec::with_capacity(sessions.len());
    std::thread::scope(|scope| -> Result<(), BacktestError> {
        // One session ahead: the scan of D+1 runs while D is traded.
        let (send, receive) = std::sync::mpsc::sync_channel::<MorningScan>(1);
        let dates: Vec<NaiveDate> = sessions.iter().map(|s| s.date).collect();
        scope.spawn(move || {
            for date in dates {
                if send.send(morning_scan(data, date)).is_err() {
                    return;
                }
            }
        });
        for session in &sessions {
            let scan = receive.recv().map_err(|_| BacktestError::ScanThread)?;
            let point = trader.trade_session(session, &scan)?;
            equity.push(EquityPoint {
                benchmark: benchmark.on(session.date),
                ..point
            });
            records.push(SessionRecord {
                date: session.date,
                candidates: scan.rows.clone().unwrap_or_default(),
                regime: scan.regime,
                scan_error: scan.rows.err(),
            });
        }
        Ok(())
    })?;
    let Trader { rows, warnings, .. } = trader;
    let last = sessions.last().unwrap_or(first);
    let trips = round_trips(&mut broker, &db, data, &rows, last)?;
    Ok(BacktestRun {
        from,
        to,
        sessions: records,
        equity,
        trips,
        benchmark_label: benchmark.label,
        fingerprint: outputs::fingerprint(&data.scan, config, &data.label),
        data_label: data.label.clone(),
        data_symbols: data.bars.len(),
        data_range: data.date_range(),
        starting_cash: costs.starting_cash,
        fills: broker.fills()?.len(),
        skip_reasons: skip_reasons(&db)?,
        cycle_warnings: warnings,
    })
}

/// The engine's side of a run: the book, the journal and the watchlist rows it traded.
struct Trader<'a> {
    config: &'a Config,
    data: &'a BacktestData,
    feed: &'a SessionFeed,
    broker: &'a mut SimBroker,
    db: &'a mut StateDb,
    failpoints: Failpoints,
    /// Every watchlist row by (scan date, symbol): round trips take their plan from it.
    rows: HashMap<(NaiveDate, String), WatchlistRow>,
    warnings: usize,
}

impl Trader<'_> {
    /// Trade one session on its watchlist; the account at its close (benchmark not set).
    fn trade_session(
        &mut self,
        session: &Session,
        scan: &MorningScan,
    ) -> Result<EquityPoint, BacktestError> {
        let exec = &self.config.execution;
        let watchlist = match &scan.rows {
            Ok(rows) => {
                for row in rows {
                    self.rows
                        .insert((row.scan_date, row.symbol.clone()), row.clone());
                }
                WatchlistInput::Fresh(rows.clone())
            }
            Err(why) => WatchlistInput::Unavailable(format!(
                "no watchlist: {why}: no entries; exits continue"
            )),
        };
        let symbols = engine::symbols_of_interest(self.db, &watchlist)?;
        let previous = calendar::previous_session(session.date)
            .ok()
            .and_then(|d| calendar::session(d).ok().flatten());
        let days: Vec<Session> = previous.into_iter().chain([*session]).collect();
        self.feed.load(self.data, &symbols, &days, SIM_PATH_SEED);
        let kill_switch = exec
            .kill_switch
            .then(|| "execution.kill_switch = true in the configuration".to_string());
        let mut now = session.open + Duration::minutes(FIRST_CYCLE_AFTER_OPEN);
        while now <= session.close + Duration::minutes(LAST_CYCLE_AFTER_CLOSE) {
            self.broker.advance_to(now)?;
            let mut desk = OrderDesk {
                db: self.db,
                broker: self.broker,
                now,
                failpoints: &self.failpoints,
                unknown_outcome_grace: std::time::Duration::from_secs(
                    exec.unknown_outcome_grace_seconds,
                ),
            };
            let inputs = CycleInputs {
                watchlist: &watchlist,
                kill_switch: kill_switch.clone(),
                feed: self.feed,
                config: exec,
                allow_entries: true,
            };
            let report = engine::run_cycle(&mut desk, &inputs)?;
            self.warnings += report.warnings.len();
            now += Duration::minutes(CYCLE_MINUTES);
        }
        let cash = self.broker.cash()?;
        let mut long_value = Decimal::ZERO;
        for position in self.broker.positions()? {
            let close = close_decimal(self.data, &position.symbol, session.date)
                .unwrap_or(position.avg_entry_price);
            long_value += position.qty * close;
        }
        Ok(EquityPoint {
            date: session.date,
            equity: cash + long_value,
            cash,
            long_value,
            benchmark: f64::NAN,
        })
    }
}

/// `symbol`'s close on `date` (or the last before it) as a decimal on the cent grid the data
/// is quoted in.
fn close_decimal(data: &BacktestData, symbol: &str, date: NaiveDate) -> Option<Decimal> {
    data.close_on_or_before(symbol, date)
        .and_then(Decimal::from_f64)
        .map(|d| d.round_dp(6).normalize())
}

/// The run's round trips from the broker's fills, the journal's exit decisions and the
/// watchlist rows; open positions are valued at the last session's close.
fn round_trips(
    broker: &mut SimBroker,
    db: &StateDb,
    data: &BacktestData,
    rows: &HashMap<(NaiveDate, String), WatchlistRow>,
    last: &Session,
) -> Result<Vec<RoundTrip>, BacktestError> {
    let fills = broker.fills()?;
    // The engine sells at R2 and below the stop level with one leg (`ex`); its decision
    // event, journaled at the instant the order was sent, says which.
    let r2_decisions: BTreeSet<(String, DateTime<Utc>)> = db
        .events(None)?
        .into_iter()
        .filter(|e| e.kind == "exit_decision" && e.message.contains("R2 reached"))
        .filter_map(|e| e.symbol.map(|s| (s, e.at)))
        .collect();
    let exit_reasons: HashMap<String, ExitReason> = broker
        .all_orders()?
        .into_iter()
        .filter(|o| ClientOrderId::parse(&o.client_order_id).is_some_and(|id| id.leg == Leg::Exit))
        .map(|o| {
            let reason = if r2_decisions.contains(&(o.symbol.clone(), o.submitted_at)) {
                ExitReason::TargetR2
            } else {
                ExitReason::StopLevel
            };
            (o.client_order_id, reason)
        })
        .collect();
    let closes: HashMap<String, Decimal> = broker
        .positions()?
        .into_iter()
        .filter_map(|p| close_decimal(data, &p.symbol, last.date).map(|c| (p.symbol, c)))
        .collect();
    Ok(trips::round_trips(
        &fills,
        &exit_reasons,
        rows,
        &trips::EndOfRun {
            at: last.close,
            closes: &closes,
        },
    ))
}

/// Candidate-days skipped per reason, from the journal's `entry_skipped` events.
fn skip_reasons(db: &StateDb) -> Result<BTreeMap<String, usize>, BacktestError> {
    let mut seen: BTreeSet<(Option<NaiveDate>, String, String)> = BTreeSet::new();
    for event in db.events(None)? {
        if event.kind != "entry_skipped" {
            continue;
        }
        let reason = event
            .details
            .as_deref()
            .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_string))
            .unwrap_or_else(|| "unknown".to_string());
        seen.insert((event.session, event.symbol.unwrap_or_default(), reason));
    }
    let mut counts = BTreeMap::new();
    for (_, _, reason) in seen {
        *counts.entry(reason).or_insert(0) += 1;
    }
    Ok(counts)
}
