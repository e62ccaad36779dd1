//! The simulated broker (mode `sim`): a deterministic, persistent [`Broker`] that fills orders
//! against intraday bars and behaves like Alpaca where execution depends on it.
//!
//! # State and time
//!
//! All state (orders, fills, positions, cash, the suspend flag, the simulated "now" and queued
//! test faults) lives in one SQLite file (conventionally [`SIM_BROKER_FILE`] in the state
//! dir), in WAL mode with `synchronous=FULL`. Every call is one `BEGIN IMMEDIATE` transaction,
//! so the file survives a SIGKILL at any instant and several processes may open it (writers
//! wait up to 10 s for each other). Nothing is cached in memory: a reopened broker continues
//! exactly where the previous process stopped.
//!
//! The broker has a simulated "now" that only [`SimBroker::advance_to`] moves forward (an
//! earlier instant is a no-op). It starts at [`SimConfig::start`] (or the wall clock when that
//! is `None`) when the file is created. Orders are stamped with that now; [`Broker::clock`]
//! reports it with `is_open`/`next_open`/`next_close` from the NYSE calendar.
//! `advance_to(t)` processes, in time order, every bar that ended in `(now, t]` for the
//! symbols that have open orders, then DAY expiries, and persists `t` — all in one
//! transaction. Bars come from an [`IntradayFeed`] (the synthetic feed in `sim` mode).
//!
//! # Fill rules
//!
//! - **Next bar only.** An order placed at `t` is matched only against bars that *start* at or
//!   after `t` (so an order placed at 10:03 first meets the 10:10–10:20 bar, and the fill is
//!   known once that bar closes). An order placed while the market is closed therefore waits
//!   for the next session's first bar.
//! - Bar prices are read as decimals rounded to the tick, half to even; every comparison and
//!   fill price uses those, so fill prices are always on the tick.
//! - **Market**: fills at the bar's open.
//! - **Limit buy**: at the open if open ≤ limit; otherwise at the limit if low ≤ limit.
//!   **Limit sell**: at the open if open ≥ limit; otherwise at the limit if high ≥ limit.
//!   (A marketable limit above the next open fills at the open.)
//! - **Sell stop** (stop-market): triggers when the bar's low ≤ stop and fills at
//!   min(open, stop) — a gap down through the stop fills at the open. **Buy stop**: triggers
//!   when high ≥ stop, fills at max(open, stop). A triggered stop's unfilled remainder fills
//!   like a market order at the following bars' opens.
//! - **Partial fills**: each bar that fills an order fills ceil(`partial_fill_ratio` ×
//!   remaining) shares (at least 1); ratio 1 fills everything at once. `filled_qty` is
//!   cumulative and `filled_avg_price` is the volume-weighted average of all fills (6 dp).
//!   A fill is stamped with the end of its bar.
//! - Orders of one symbol are matched in (submitted_at, id) order; bars of different symbols
//!   ending at the same instant in symbol order.
//! - **DAY** orders expire (`expired`, partial fills kept) at the close of the session they
//!   belong to: the session in progress, or — when placed while the market is closed,
//!   including after today's close — the next session (16:00, or 13:00 on early-close days).
//!   **GTC** orders never expire (Alpaca's 90-day GTC limit is not simulated).
//!
//! # Requests (Alpaca's codes and messages)
//!
//! - qty must be a positive whole number of shares (avwap never sends fractional orders);
//!   limit orders take exactly a limit price, stop orders exactly a stop price, market orders
//!   neither; prices must be positive and on the tick ($0.01 at ≥ $1, $0.0001 below) — all
//!   else is `Rejected` with code `42210000` (e.g. "invalid limit_price 50.123. sub-penny
//!   increment does not fulfill minimum pricing criteria").
//! - `client_order_id` is required (≤ 128 chars) and unique **forever**: reusing the id of any
//!   order, even a canceled or filled one, gives `40010001` "client_order_id must be unique".
//!   A rejected request creates no order, so its id stays free.
//! - **No shorting, and shares held by open sell orders are not available**: a sell whose qty
//!   exceeds position − remaining qty of the other open sell orders gives `40310000`
//!   "insufficient qty available for order (requested: N, available: M)".
//! - **Buying power** = cash − Σ open buy orders' reserved notional (remaining × limit, stop,
//!   or for market orders the latest price); a buy above it gives `40310000` "insufficient
//!   buying power". A market buy with no known price is rejected (`42210000`). No margin.
//!   A market buy that gaps up can take cash below zero.
//! - **Replace** (an open order only): creates a new order (new id, the request's client
//!   order id, same symbol/side/type/time in force, qty = the request's or the old order's
//!   remaining qty, prices = the request's or the old ones); the old order becomes `replaced`
//!   with `replaced_by`. A sell replace is subject to the availability check excluding the
//!   order being replaced; a buy replace to the buying-power check with its own reservation
//!   released. Replacing an order that is not open gives `42210000` "order is not open
//!   (status: …)"; an unknown id gives `NotFound`.
//! - **Cancel**: an open order becomes `canceled` at once; a closed one gives `42210000`
//!   `order is already in "filled" state` (etc.); an unknown id gives `NotFound`.
//! - **Suspend** ([`Broker::suspend_new_orders`], persisted): new submissions give `40310000`
//!   "new orders are rejected by user request". Cancels always work. Replaces of *sell* orders
//!   still work (that is how protective stops move and shrink); replaces of *buy* orders are
//!   rejected like new orders, since they would change entry exposure.
//! - Positions: qty and weighted average entry price (6 dp); removed when flat. Account
//!   equity = cash + Σ qty × latest bar close at or before now (the average entry price when
//!   the feed has none).
//! - Order ids are `sim-000001`, `sim-000002`, … in submission order.
//!
//! # Fault injection (tests)
//!
//! [`SimBroker::inject_fault`] queues a [`SimFault`] for the next call of one [`SimMethod`];
//! the queue is in the file, so another process (the crash-safety harness, the execution
//! binary) sees it. A call consumes the oldest fault queued for its method.
//!
//! # Errors
//!
//! A storage failure during a read is `RetryableRead`; during a submit/replace/cancel it is
//! `UnknownOutcome` (the transaction rolled back, but the caller must look the order up
//! anyway). A clock outside the calendar's 2000–2035 range is a `RetryableRead` on `clock`
//! and a `Rejected` without a code on submit.

mod rules;
mod store;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use rules::{CODE_FORBIDDEN, CODE_INVALID_REQUEST, CODE_UNPROCESSABLE};

use super::{
    Account, Broker, BrokerError, BrokerOrder, MarketClock, OrderRequest, OrderStatus, OrderType,
    Position, ReplaceRequest, Side, TimeInForce,
};
use crate::calendar::{self, CalendarError};
use crate::market_data::intraday::{IntradayBar, IntradayFeed};
use rules::{rejected, BarPrices};
use store::OrderRow;

/// The simulated broker's file name in the state directory.
pub const SIM_BROKER_FILE: &str = "sim_broker.sqlite";

/// Longest `client_order_id` accepted (Alpaca's limit).
pub const MAX_CLIENT_ORDER_ID_LEN: usize = 128;

/// Simulation parameters. `starting_cash` and `start` apply only when the file is created;
/// `partial_fill_ratio` is taken from the config at every open (pass the same one to keep a
/// run deterministic).
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub starting_cash: Decimal,
    /// Share of the remaining quantity filled per bar, in (0, 1]; 1 = full fills.
    pub partial_fill_ratio: Decimal,
    /// The simulated "now" of a new file; `None` = the wall clock at creation.
    pub start: Option<DateTime<Utc>>,
    /// Dollars per share taken from cash on every fill (a backtest's commission; 0 in `sim`).
    pub commission_per_share: Decimal,
    /// Basis points of the bar's price every fill is worse by: buys pay more, sells receive
    /// less (a limit never fills beyond its limit). 0 in `sim`.
    pub slippage_bps: Decimal,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            starting_cash: Decimal::from(100_000),
            partial_fill_ratio: Decimal::ONE,
            start: None,
            commission_per_share: Decimal::ZERO,
            slippage_bps: Decimal::ZERO,
        }
    }
}

/// The broker calls a fault can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimMethod {
    Clock,
    Account,
    Positions,
    OpenOrders,
    Submit,
    OrderByClientId,
    Replace,
    Cancel,
    SuspendNewOrders,
}

impl SimMethod {
    pub const ALL: [SimMethod; 9] = [
        SimMethod::Clock,
        SimMethod::Account,
        SimMethod::Positions,
        SimMethod::OpenOrders,
        SimMethod::Submit,
        SimMethod::OrderByClientId,
        SimMethod::Replace,
        SimMethod::Cancel,
        SimMethod::SuspendNewOrders,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SimMethod::Clock => "clock",
            SimMethod::Account => "account",
            SimMethod::Positions => "positions",
            SimMethod::OpenOrders => "open_orders",
            SimMethod::Submit => "submit",
            SimMethod::OrderByClientId => "order_by_client_id",
            SimMethod::Replace => "replace",
            SimMethod::Cancel => "cancel",
            SimMethod::SuspendNewOrders => "suspend_new_orders",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Calls that change broker state.
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            SimMethod::Submit
                | SimMethod::Replace
                | SimMethod::Cancel
                | SimMethod::SuspendNewOrders
        )
    }
}

impl fmt::Display for SimMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error the next call of a method returns (see [`SimBroker::inject_fault`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SimFault {
    /// Mutating calls only: the call takes effect (order placed / replaced / canceled) and
    /// is committed, then returns `BrokerError::UnknownOutcome` (a timeout after send).
    UnknownOutcomeAfterAccept,
    /// Mutating calls only: nothing happens; returns `BrokerError::UnknownOutcome`.
    UnknownOutcomeBeforeAccept,
    /// Mutating calls only: the call takes effect and is committed, then the process aborts
    /// (`std::process::abort`) before answering. For the subprocess crash-safety suite;
    /// never inject it into an in-process test.
    CrashAfterAccept,
    /// Mutating calls only: nothing happens; returns `Rejected` with code `40310000` and a
    /// message naming the injection.
    RejectNext,
    /// Read calls only: returns `BrokerError::RetryableRead`.
    ReadError,
    /// Any call: nothing happens; returns `BrokerError::RateLimited` with this retry-after.
    RateLimited { retry_after_secs: u64 },
    /// Any call: nothing happens; returns `BrokerError::Auth`.
    Auth,
}

impl SimFault {
    /// Takes effect only after the call's own work has been committed.
    fn acts_after(&self) -> bool {
        matches!(
            self,
            SimFault::UnknownOutcomeAfterAccept | SimFault::CrashAfterAccept
        )
    }

    fn check(&self, method: SimMethod) -> Result<(), &'static str> {
        match self {
            SimFault::UnknownOutcomeAfterAccept
            | SimFault::UnknownOutcomeBeforeAccept
            | SimFault::CrashAfterAccept
            | SimFault::RejectNext
                if !method.is_mutating() =>
            {
                Err("only submit, replace, cancel and suspend_new_orders take this fault")
            }
            SimFault::ReadError if method.is_mutating() => {
                Err("only reads take ReadError (a failed write is UnknownOutcome*)")
            }
            _ => Ok(()),
        }
    }

    fn error(&self, method: SimMethod) -> BrokerError {
        match self {
            SimFault::UnknownOutcomeAfterAccept
            | SimFault::UnknownOutcomeBeforeAccept
            | SimFault::CrashAfterAccept => BrokerError::UnknownOutcome {
                message: format!("simulated timeout on {method} (injected fault)"),
            },
            SimFault::RejectNext => rejected(
                CODE_FORBIDDEN,
                format!("{method} rejected by the simulator (injected fault)"),
            ),
            SimFault::ReadError => BrokerError::RetryableRead {
                message: format!("simulated read failure on {method} (injected fault)"),
            },
            SimFault::RateLimited { retry_after_secs } => BrokerError::RateLimited {
                retry_after: Some(Duration::from_secs(*retry_after_secs)),
            },
            SimFault::Auth => BrokerError::Auth {
                message: format!("simulated credential failure on {method} (injected fault)"),
            },
        }
    }
}

/// One execution against one bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimFill {
    /// Position in the file's fill journal, from 1.
    pub seq: i64,
    pub order_id: String,
    pub client_order_id: String,
    pub symbol: String,
    pub side: Side,
    pub qty: Decimal,
    /// The execution price (slippage included).
    pub price: Decimal,
    /// The end of the bar the fill happened in.
    pub at: DateTime<Utc>,
    /// Commission taken from cash for this fill (`qty × commission_per_share`).
    pub commission: Decimal,
    /// What slippage cost this fill: `qty × |price − the bar's price|`.
    pub slippage: Decimal,
}

/// What [`SimBroker::advance_to`] did, in time order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SimEvent {
    Fill {
        fill: SimFill,
        /// The order's cumulative filled quantity after this fill.
        filled_qty: Decimal,
        /// The order's status after this fill (`partially_filled` or `filled`).
        status: OrderStatus,
    },
    Expired {
        order_id: String,
        client_order_id: String,
        symbol: String,
        at: DateTime<Utc>,
    },
}

/// Everything the simulated broker holds, for comparisons and reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimSnapshot {
    pub now: DateTime<Utc>,
    pub cash: Decimal,
    pub trading_suspended: bool,
    /// Every order ever accepted, in id order.
    pub orders: Vec<BrokerOrder>,
    pub fills: Vec<SimFill>,
    pub positions: Vec<Position>,
    pub pending_faults: Vec<(SimMethod, SimFault)>,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot open the simulated broker file {}: {source}; check that the state directory exists and is writable", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("simulated broker file {} was written by a newer avwap (schema {found} > {known}); upgrade avwap or move the file aside", path.display())]
    NewerSchema {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("simulated broker file {}: {action} failed: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        action: &'static str,
        source: rusqlite::Error,
    },
    #[error("invalid simulated broker configuration: {0}")]
    Config(String),
    #[error("cannot inject {fault:?} into {method}: {reason}")]
    InvalidFault {
        method: SimMethod,
        fault: SimFault,
        reason: &'static str,
    },
}

/// The simulated broker. See the module documentation for its rules.
pub struct SimBroker {
    conn: Connection,
    path: PathBuf,
    config: SimConfig,
    feed: Box<dyn IntradayFeed + Send>,
    /// Runs for [`SimFault::CrashAfterAccept`] once the call is committed; `None` aborts the
    /// process. A test server in front of the simulator kills its client instead.
    crash_hook: Option<Box<dyn Fn() + Send>>,
}

impl fmt::Debug for SimBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimBroker")
            .field("path", &self.path)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What an operation inside a call can fail with: a broker answer (the operation wrote
/// nothing) or a storage error (the whole call rolls back).
enum OpError {
    Broker(BrokerError),
    Sql(rusqlite::Error),
}

impl From<BrokerError> for OpError {
    fn from(e: BrokerError) -> Self {
        OpError::Broker(e)
    }
}

impl From<rusqlite::Error> for OpError {
    fn from(e: rusqlite::Error) -> Self {
        OpError::Sql(e)
    }
}

/// The read-only context of an operation.
struct Env<'a> {
    feed: &'a dyn IntradayFeed,
}

impl Env<'_> {
    /// The latest bar close at or before `now`, on the tick.
    fn price(&self, symbol: &str, now: DateTime<Utc>) -> Option<Decimal> {
        self.feed
            .latest_price(symbol, now)
            .and_then(rules::bar_price)
    }
}

impl SimBroker {
    /// Opens (creating if absent) the simulated broker file at `path`.
    pub fn open(
        path: &Path,
        config: SimConfig,
        feed: Box<dyn IntradayFeed + Send>,
    ) -> Result<Self, SimError> {
        check_config(&config)?;
        let open_err = |source| SimError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        Self::init(conn, path.to_path_buf(), config, feed)
    }

    /// A broker that lives only as long as the value (tests).
    pub fn open_in_memory(
        config: SimConfig,
        feed: Box<dyn IntradayFeed + Send>,
    ) -> Result<Self, SimError> {
        check_config(&config)?;
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| SimError::Open {
            path: path.clone(),
            source,
        })?;
        Self::init(conn, path, config, feed)
    }

    fn init(
        mut conn: Connection,
        path: PathBuf,
        config: SimConfig,
        feed: Box<dyn IntradayFeed + Send>,
    ) -> Result<Self, SimError> {
        let sql = |action| {
            let path = path.clone();
            move |source| SimError::Sqlite {
                path,
                action,
                source,
            }
        };
        let known = store::MIGRATIONS.len() as u32;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("opening a transaction"))?;
        let found: u32 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|source| SimError::Open {
                path: path.clone(),
                source,
            })?;
        if found > known {
            return Err(SimError::NewerSchema { path, found, known });
        }
        for migration in &store::MIGRATIONS[found as usize..] {
            tx.execute_batch(migration)
                .map_err(sql("migrating the schema"))?;
        }
        tx.pragma_update(None, "user_version", known)
            .map_err(sql("recording the schema version"))?;
        if store::meta(&tx, store::KEY_NOW)
            .map_err(sql("reading the clock"))?
            .is_none()
        {
            let start = config.start.unwrap_or_else(Utc::now);
            let start = store::time(store::micros(start)).map_err(sql("initialising"))?;
            store::set_now(&tx, start).map_err(sql("initialising"))?;
            store::set_cash(&tx, config.starting_cash).map_err(sql("initialising"))?;
            store::set_meta(
                &tx,
                store::KEY_STARTING_CASH,
                &config.starting_cash.to_string(),
            )
            .map_err(sql("initialising"))?;
            store::set_suspended(&tx, false).map_err(sql("initialising"))?;
        }
        tx.commit().map_err(sql("committing the schema"))?;
        Ok(Self {
            conn,
            path,
            config,
            feed,
            crash_hook: None,
        })
    }

    /// Instead of aborting this process on [`SimFault::CrashAfterAccept`], run `hook` and
    /// answer `UnknownOutcome` (for a server in front of the simulator, whose client is the
    /// process that must crash).
    pub fn set_crash_hook(&mut self, hook: Box<dyn Fn() + Send>) {
        self.crash_hook = Some(hook);
    }

    /// The file this broker lives in (`:memory:` for an in-memory one).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The intraday feed the broker fills from (execution may read the same bars).
    pub fn feed(&self) -> &dyn IntradayFeed {
        &*self.feed
    }

    fn sql_error(&self, action: &'static str) -> impl Fn(rusqlite::Error) -> SimError + '_ {
        move |source| SimError::Sqlite {
            path: self.path.clone(),
            action,
            source,
        }
    }

    /// The simulated now.
    pub fn now(&self) -> Result<DateTime<Utc>, SimError> {
        store::now(&self.conn).map_err(self.sql_error("reading the clock"))
    }

    pub fn cash(&self) -> Result<Decimal, SimError> {
        store::cash(&self.conn).map_err(self.sql_error("reading cash"))
    }

    /// Every order ever accepted, in any state, in id order (no faults apply).
    pub fn all_orders(&self) -> Result<Vec<BrokerOrder>, SimError> {
        Ok(store::all_orders(&self.conn)
            .map_err(self.sql_error("reading orders"))?
            .iter()
            .map(OrderRow::to_broker)
            .collect())
    }

    /// Every fill, in the order they happened (no faults apply).
    pub fn fills(&self) -> Result<Vec<SimFill>, SimError> {
        store::fills(&self.conn).map_err(self.sql_error("reading fills"))
    }

    /// The whole state in one consistent read (no faults apply).
    pub fn snapshot(&self) -> Result<SimSnapshot, SimError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(self.sql_error("opening a read transaction"))?;
        let fail = self.sql_error("reading a snapshot");
        Ok(SimSnapshot {
            now: store::now(&tx).map_err(&fail)?,
            cash: store::cash(&tx).map_err(&fail)?,
            trading_suspended: store::suspended(&tx).map_err(&fail)?,
            orders: store::all_orders(&tx)
                .map_err(&fail)?
                .iter()
                .map(OrderRow::to_broker)
                .collect(),
            fills: store::fills(&tx).map_err(&fail)?,
            positions: store::positions(&tx).map_err(&fail)?,
            pending_faults: store::faults(&tx).map_err(&fail)?,
        })
    }

    /// Queues `fault` for the next call of `method` (persisted in the file). Faults that make
    /// no sense for the method (a read error on a submit, an unknown outcome on a read) are
    /// refused.
    pub fn inject_fault(&mut self, method: SimMethod, fault: SimFault) -> Result<(), SimError> {
        if let Err(reason) = fault.check(method) {
            return Err(SimError::InvalidFault {
                method,
                fault,
                reason,
            });
        }
        let path = self.path.clone();
        let sql = |source| SimError::Sqlite {
            path: path.clone(),
            action: "queueing a fault",
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        store::push_fault(&tx, method, &fault).map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// The faults still queued, oldest first.
    pub fn pending_faults(&self) -> Result<Vec<(SimMethod, SimFault)>, SimError> {
        store::faults(&self.conn).map_err(self.sql_error("reading faults"))
    }

    /// Drops every queued fault.
    pub fn clear_faults(&mut self) -> Result<(), SimError> {
        store::clear_faults(&self.conn).map_err(self.sql_error("clearing faults"))
    }

    /// Moves the simulated now to `now`: fills and expires orders for every bar that ended in
    /// `(previous now, now]`, in time order, in one transaction. An instant at or before the
    /// current now changes nothing.
    pub fn advance_to(&mut self, now: DateTime<Utc>) -> Result<Vec<SimEvent>, SimError> {
        let path = self.path.clone();
        let sql = move |action: &'static str| {
            let path = path.clone();
            move |source| SimError::Sqlite {
                path,
                action,
                source,
            }
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("opening a transaction"))?;
        let last = store::now(&tx).map_err(sql("reading the clock"))?;
        let now = store::time(store::micros(now)).map_err(sql("reading the clock"))?;
        if now <= last {
            return Ok(Vec::new());
        }
        let events =
            advance(&tx, &self.config, &*self.feed, last, now).map_err(sql("processing bars"))?;
        store::set_now(&tx, now).map_err(sql("storing the clock"))?;
        tx.commit().map_err(sql("committing"))?;
        Ok(events)
    }

    /// Runs one broker call as one transaction: consume the method's next fault, run `op`
    /// (rolled back if it answers with an error), commit, then apply an after-the-fact fault.
    fn call<T>(
        &mut self,
        method: SimMethod,
        op: impl FnOnce(&Connection, &Env<'_>) -> Result<T, OpError>,
    ) -> Result<T, BrokerError> {
        let sql_error = move |e: rusqlite::Error| {
            if method.is_mutating() {
                BrokerError::UnknownOutcome {
                    message: format!("simulated broker storage failed during {method}: {e}"),
                }
            } else {
                BrokerError::RetryableRead {
                    message: format!("simulated broker storage failed during {method}: {e}"),
                }
            }
        };
        let env = Env { feed: &*self.feed };
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_error)?;
        let fault = store::take_fault(&tx, method).map_err(sql_error)?;
        if let Some(fault) = fault.as_ref().filter(|f| !f.acts_after()) {
            tx.commit().map_err(sql_error)?;
            return Err(fault.error(method));
        }
        let result = {
            let savepoint = tx.savepoint().map_err(sql_error)?;
            match op(&savepoint, &env) {
                Ok(value) => {
                    savepoint.commit().map_err(sql_error)?;
                    Ok(value)
                }
                // Dropping the savepoint rolls the operation back; the fault stays consumed.
                Err(OpError::Broker(e)) => Err(e),
                Err(OpError::Sql(e)) => return Err(sql_error(e)),
            }
        };
        tx.commit().map_err(sql_error)?;
        match (result, fault) {
            (Ok(_), Some(SimFault::CrashAfterAccept)) => match &self.crash_hook {
                Some(hook) => {
                    hook();
                    Err(BrokerError::UnknownOutcome {
                        message: "simulated crash after accept".to_string(),
                    })
                }
                None => std::process::abort(),
            },
            (Ok(_), Some(fault)) => Err(fault.error(method)),
            (result, _) => result,
        }
    }
}

fn check_config(config: &SimConfig) -> Result<(), SimError> {
    let ratio = config.partial_fill_ratio;
    if ratio <= Decimal::ZERO || ratio > Decimal::ONE {
        return Err(SimError::Config(format!(
            "partial_fill_ratio must be in (0, 1], got {ratio}"
        )));
    }
    if config.commission_per_share < Decimal::ZERO {
        return Err(SimError::Config(format!(
            "commission_per_share must not be negative, got {}",
            config.commission_per_share
        )));
    }
    if config.slippage_bps < Decimal::ZERO || config.slippage_bps >= Decimal::from(10_000) {
        return Err(SimError::Config(format!(
            "slippage_bps must be in [0, 10000), got {}",
            config.slippage_bps
        )));
    }
    if config.starting_cash < Decimal::ZERO {
        return Err(SimError::Config(format!(
            "starting_cash must not be negative, got {}",
            config.starting_cash
        )));
    }
    Ok(())
}

fn market_clock(now: DateTime<Utc>) -> Result<MarketClock, CalendarError> {
    let session = calendar::current_or_next_session(now)?;
    if now >= session.open {
        let next_date = calendar::next_session(session.date)?;
        let next =
            calendar::session(next_date)?.ok_or(CalendarError::OutOfRange { date: next_date })?;
        Ok(MarketClock {
            timestamp: now,
            is_open: true,
            next_open: next.open,
            next_close: session.close,
        })
    } else {
        Ok(MarketClock {
            timestamp: now,
            is_open: false,
            next_open: session.open,
            next_close: session.close,
        })
    }
}

/// The close at which a DAY order placed at `now` expires.
fn day_expiry(now: DateTime<Utc>) -> Result<DateTime<Utc>, BrokerError> {
    calendar::current_or_next_session(now)
        .map(|s| s.close)
        .map_err(|e| BrokerError::Rejected {
            code: None,
            message: format!("the simulator cannot place a DAY order at {now}: {e}"),
        })
}

fn check_client_order_id(conn: &Connection, client_order_id: &str) -> Result<(), OpError> {
    if client_order_id.is_empty() {
        return Err(rejected(
            CODE_INVALID_REQUEST,
            "client_order_id is required by the simulator",
        )
        .into());
    }
    if client_order_id.chars().count() > MAX_CLIENT_ORDER_ID_LEN {
        return Err(rejected(
            CODE_INVALID_REQUEST,
            format!("client_order_id must be no more than {MAX_CLIENT_ORDER_ID_LEN} characters"),
        )
        .into());
    }
    if store::client_id_exists(conn, client_order_id)? {
        return Err(rejected(CODE_INVALID_REQUEST, "client_order_id must be unique").into());
    }
    Ok(())
}

/// Shares of `symbol` a new sell of `qty` may use: the position less the remaining qty of
/// the open sell orders other than `exclude`.
fn check_sell_available(
    conn: &Connection,
    symbol: &str,
    qty: Decimal,
    exclude: Option<&str>,
) -> Result<(), OpError> {
    let position = store::position(conn, symbol)?
        .map(|p| p.qty)
        .unwrap_or(Decimal::ZERO);
    let held: Decimal = store::open_orders(conn)?
        .iter()
        .filter(|o| o.symbol == symbol && o.side == Side::Sell && Some(o.id.as_str()) != exclude)
        .map(OrderRow::remaining)
        .sum();
    let available = (position - held).max(Decimal::ZERO);
    if qty > available {
        return Err(rejected(
            CODE_FORBIDDEN,
            format!(
                "insufficient qty available for order (requested: {}, available: {})",
                rules::show_qty(qty),
                rules::show_qty(available)
            ),
        )
        .into());
    }
    Ok(())
}

/// The notional a buy reserves: remaining × its limit, its stop, or (market) the latest price.
fn reserved_notional(
    env: &Env<'_>,
    now: DateTime<Utc>,
    symbol: &str,
    order_type: OrderType,
    limit_price: Option<Decimal>,
    stop_price: Option<Decimal>,
    remaining: Decimal,
) -> Option<Decimal> {
    let price = match order_type {
        OrderType::Limit => limit_price,
        OrderType::Stop => stop_price,
        OrderType::Market => env.price(symbol, now),
    }?;
    Some(price * remaining)
}

/// Cash less the notional reserved by open buy orders other than `exclude`.
fn buying_power(
    conn: &Connection,
    env: &Env<'_>,
    now: DateTime<Utc>,
    exclude: Option<&str>,
) -> rusqlite::Result<Decimal> {
    let cash = store::cash(conn)?;
    let reserved: Decimal = store::open_orders(conn)?
        .iter()
        .filter(|o| o.side == Side::Buy && Some(o.id.as_str()) != exclude)
        .filter_map(|o| {
            reserved_notional(
                env,
                now,
                &o.symbol,
                o.order_type,
                o.limit_price,
                o.stop_price,
                o.remaining(),
            )
        })
        .sum();
    Ok(cash - reserved)
}

#[allow(clippy::too_many_arguments)]
fn check_buying_power(
    conn: &Connection,
    env: &Env<'_>,
    now: DateTime<Utc>,
    symbol: &str,
    order_type: OrderType,
    limit_price: Option<Decimal>,
    stop_price: Option<Decimal>,
    qty: Decimal,
    exclude: Option<&str>,
) -> Result<(), OpError> {
    let notional = reserved_notional(env, now, symbol, order_type, limit_price, stop_price, qty)
        .ok_or_else(|| {
            rejected(
                CODE_UNPROCESSABLE,
                format!("no recent price for {symbol}: the simulator cannot value a market buy"),
            )
        })?;
    if notional > buying_power(conn, env, now, exclude)? {
        return Err(rejected(CODE_FORBIDDEN, "insufficient buying power").into());
    }
    Ok(())
}

const SUSPENDED_MESSAGE: &str = "new orders are rejected by user request";

fn submit_op(conn: &Connection, env: &Env<'_>, req: &OrderRequest) -> Result<OrderRow, OpError> {
    if store::suspended(conn)? {
        return Err(rejected(CODE_FORBIDDEN, SUSPENDED_MESSAGE).into());
    }
    if req.symbol.trim().is_empty() {
        return Err(rejected(CODE_UNPROCESSABLE, "symbol is required").into());
    }
    rules::check_qty(req.qty)?;
    rules::check_prices(req.order_type, req.limit_price, req.stop_price)?;
    check_client_order_id(conn, &req.client_order_id)?;
    let now = store::now(conn)?;
    match req.side {
        Side::Sell => check_sell_available(conn, &req.symbol, req.qty, None)?,
        Side::Buy => check_buying_power(
            conn,
            env,
            now,
            &req.symbol,
            req.order_type,
            req.limit_price,
            req.stop_price,
            req.qty,
            None,
        )?,
    }
    let expires_at = match req.time_in_force {
        TimeInForce::Day => Some(day_expiry(now)?),
        TimeInForce::Gtc => None,
    };
    let seq = store::next_seq(conn)?;
    let row = OrderRow {
        seq,
        id: format!("sim-{seq:06}"),
        client_order_id: req.client_order_id.clone(),
        symbol: req.symbol.clone(),
        side: req.side,
        order_type: req.order_type,
        time_in_force: req.time_in_force,
        qty: req.qty,
        filled_qty: Decimal::ZERO,
        filled_notional: Decimal::ZERO,
        limit_price: req.limit_price,
        stop_price: req.stop_price,
        status: OrderStatus::New,
        submitted_at: now,
        updated_at: now,
        active_from: now,
        expires_at,
        stop_triggered: false,
        replaces: None,
        replaced_by: None,
    };
    store::insert_order(conn, &row)?;
    Ok(row)
}

fn not_found(order_id: &str) -> BrokerError {
    BrokerError::NotFound {
        message: format!("order {order_id} not found"),
    }
}

fn replace_op(
    conn: &Connection,
    env: &Env<'_>,
    order_id: &str,
    req: &ReplaceRequest,
) -> Result<OrderRow, OpError> {
    let mut old = store::order_by_id(conn, order_id)?.ok_or_else(|| not_found(order_id))?;
    if !old.status.is_open() {
        return Err(rejected(
            CODE_UNPROCESSABLE,
            format!("order is not open (status: {})", old.status),
        )
        .into());
    }
    if old.side == Side::Buy && store::suspended(conn)? {
        return Err(rejected(CODE_FORBIDDEN, SUSPENDED_MESSAGE).into());
    }
    let name = store::type_str(old.order_type);
    if req.limit_price.is_some() && old.order_type != OrderType::Limit {
        return Err(rejected(
            CODE_UNPROCESSABLE,
            format!("limit_price is not applicable to {name} orders"),
        )
        .into());
    }
    if req.stop_price.is_some() && old.order_type != OrderType::Stop {
        return Err(rejected(
            CODE_UNPROCESSABLE,
            format!("stop_price is not applicable to {name} orders"),
        )
        .into());
    }
    let qty = req.qty.unwrap_or_else(|| old.remaining());
    let limit_price = req.limit_price.or(old.limit_price);
    let stop_price = req.stop_price.or(old.stop_price);
    rules::check_qty(qty)?;
    rules::check_prices(old.order_type, limit_price, stop_price)?;
    check_client_order_id(conn, &req.client_order_id)?;
    let now = store::now(conn)?;
    match old.side {
        Side::Sell => check_sell_available(conn, &old.symbol, qty, Some(&old.id))?,
        Side::Buy => check_buying_power(
            conn,
            env,
            now,
            &old.symbol,
            old.order_type,
            limit_price,
            stop_price,
            qty,
            Some(&old.id),
        )?,
    }
    let expires_at = match old.time_in_force {
        TimeInForce::Day => Some(day_expiry(now)?),
        TimeInForce::Gtc => None,
    };
    let seq = store::next_seq(conn)?;
    let new = OrderRow {
        seq,
        id: format!("sim-{seq:06}"),
        client_order_id: req.client_order_id.clone(),
        symbol: old.symbol.clone(),
        side: old.side,
        order_type: old.order_type,
        time_in_force: old.time_in_force,
        qty,
        filled_qty: Decimal::ZERO,
        filled_notional: Decimal::ZERO,
        limit_price,
        stop_price,
        status: OrderStatus::New,
        submitted_at: now,
        updated_at: now,
        active_from: now,
        expires_at,
        stop_triggered: false,
        replaces: Some(old.id.clone()),
        replaced_by: None,
    };
    old.status = OrderStatus::Replaced;
    old.replaced_by = Some(new.id.clone());
    old.updated_at = now;
    store::update_order(conn, &old)?;
    store::insert_order(conn, &new)?;
    Ok(new)
}

fn cancel_op(conn: &Connection, order_id: &str) -> Result<(), OpError> {
    let mut order = store::order_by_id(conn, order_id)?.ok_or_else(|| not_found(order_id))?;
    if !order.status.is_open() {
        return Err(rejected(
            CODE_UNPROCESSABLE,
            format!("order is already in \"{}\" state", order.status),
        )
        .into());
    }
    order.status = OrderStatus::Canceled;
    order.updated_at = store::now(conn)?;
    store::update_order(conn, &order)?;
    Ok(())
}

fn account_op(conn: &Connection, env: &Env<'_>) -> Result<Account, OpError> {
    let now = store::now(conn)?;
    let cash = store::cash(conn)?;
    let mut equity = cash;
    for position in store::positions(conn)? {
        let price = env
            .price(&position.symbol, now)
            .unwrap_or(position.avg_entry_price);
        equity += position.qty * price;
    }
    Ok(Account {
        equity,
        buying_power: buying_power(conn, env, now, None)?.max(Decimal::ZERO),
        trading_suspended: store::suspended(conn)?,
    })
}

/// The order of steps within an advance: (instant, bars before expiries, symbol, order seq).
type StepKey = (DateTime<Utc>, u8, String, i64);

/// One step of an advance: a bar closing, or a DAY order's session closing.
enum Step {
    Bar(IntradayBar),
    Expire(usize),
}

fn advance(
    conn: &Connection,
    config: &SimConfig,
    feed: &dyn IntradayFeed,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
) -> rusqlite::Result<Vec<SimEvent>> {
    let mut open = store::open_orders(conn)?;
    if open.is_empty() {
        return Ok(Vec::new());
    }
    let symbols: BTreeSet<String> = open.iter().map(|o| o.symbol.clone()).collect();
    let mut steps: Vec<(StepKey, Step)> = Vec::new();
    for symbol in &symbols {
        for bar in feed.bars_between(symbol, last, now) {
            // Defensive: a feed must not return bars outside the window.
            if bar.end > last && bar.end <= now && bar.symbol == *symbol {
                steps.push(((bar.end, 0, symbol.clone(), 0), Step::Bar(bar)));
            }
        }
    }
    for (index, order) in open.iter().enumerate() {
        if let Some(expires_at) = order.expires_at.filter(|t| *t <= now) {
            steps.push((
                (expires_at, 1, order.symbol.clone(), order.seq),
                Step::Expire(index),
            ));
        }
    }
    steps.sort_by(|a, b| a.0.cmp(&b.0));

    let mut events = Vec::new();
    for ((at, ..), step) in steps {
        match step {
            Step::Bar(bar) => {
                let Some(prices) = BarPrices::of(&bar) else {
                    continue;
                };
                for order in open.iter_mut() {
                    if order.symbol != bar.symbol
                        || !order.status.is_open()
                        || bar.start < order.active_from
                    {
                        continue;
                    }
                    let Some(fill) = rules::fill_price(
                        order.order_type,
                        order.side,
                        order.limit_price,
                        order.stop_price,
                        order.stop_triggered,
                        prices,
                    ) else {
                        continue;
                    };
                    if let Some(event) = apply_fill(conn, config, order, &bar, fill)? {
                        events.push(event);
                    }
                }
            }
            Step::Expire(index) => {
                let order = &mut open[index];
                if order.status.is_open() {
                    order.status = OrderStatus::Expired;
                    order.updated_at = at;
                    store::update_order(conn, order)?;
                    events.push(SimEvent::Expired {
                        order_id: order.id.clone(),
                        client_order_id: order.client_order_id.clone(),
                        symbol: order.symbol.clone(),
                        at,
                    });
                }
            }
        }
    }
    Ok(events)
}

fn apply_fill(
    conn: &Connection,
    config: &SimConfig,
    order: &mut OrderRow,
    bar: &IntradayBar,
    fill: rules::BarFill,
) -> rusqlite::Result<Option<SimEvent>> {
    if fill.triggers {
        order.stop_triggered = true;
    }
    let mut position = store::position(conn, &order.symbol)?.unwrap_or(Position {
        symbol: order.symbol.clone(),
        qty: Decimal::ZERO,
        avg_entry_price: Decimal::ZERO,
    });
    let mut qty = rules::fill_qty(order.remaining(), config.partial_fill_ratio);
    if order.side == Side::Sell {
        // Cannot happen given the availability check at submit; never sell short anyway.
        qty = qty.min(position.qty);
    }
    if qty <= Decimal::ZERO {
        store::update_order(conn, order)?;
        return Ok(None);
    }
    let price = rules::slipped_price(
        fill.price,
        order.side,
        config.slippage_bps,
        (order.order_type == OrderType::Limit)
            .then_some(order.limit_price)
            .flatten(),
    );
    let slippage = qty * (price - fill.price).abs();
    let commission = qty * config.commission_per_share;
    let notional = qty * price;
    order.filled_qty += qty;
    order.filled_notional += notional;
    order.status = if order.filled_qty >= order.qty {
        OrderStatus::Filled
    } else {
        OrderStatus::PartiallyFilled
    };
    order.updated_at = bar.end;
    store::update_order(conn, order)?;

    let cash = store::cash(conn)?;
    match order.side {
        Side::Buy => {
            store::set_cash(conn, cash - notional - commission)?;
            let new_qty = position.qty + qty;
            position.avg_entry_price =
                rules::average(position.qty * position.avg_entry_price + notional, new_qty);
            position.qty = new_qty;
        }
        Side::Sell => {
            store::set_cash(conn, cash + notional - commission)?;
            position.qty -= qty;
        }
    }
    store::put_position(conn, &position)?;

    let mut fill = SimFill {
        seq: 0,
        order_id: order.id.clone(),
        client_order_id: order.client_order_id.clone(),
        symbol: order.symbol.clone(),
        side: order.side,
        qty,
        price,
        at: bar.end,
        commission,
        slippage,
    };
    fill.seq = store::insert_fill(conn, &fill)?;
    Ok(Some(SimEvent::Fill {
        fill,
        filled_qty: order.filled_qty,
        status: order.status,
    }))
}

impl Broker for SimBroker {
    fn name(&self) -> &str {
        "sim"
    }

    fn clock(&mut self) -> Result<MarketClock, BrokerError> {
        self.call(SimMethod::Clock, |conn, _| {
            let now = store::now(conn)?;
            market_clock(now).map_err(|e| {
                OpError::Broker(BrokerError::RetryableRead {
                    message: format!("simulated clock {now}: {e}"),
                })
            })
        })
    }

    fn account(&mut self) -> Result<Account, BrokerError> {
        self.call(SimMethod::Account, account_op)
    }

    fn positions(&mut self) -> Result<Vec<Position>, BrokerError> {
        self.call(SimMethod::Positions, |conn, _| Ok(store::positions(conn)?))
    }

    fn open_orders(&mut self) -> Result<Vec<BrokerOrder>, BrokerError> {
        self.call(SimMethod::OpenOrders, |conn, _| {
            Ok(store::open_orders(conn)?
                .iter()
                .map(OrderRow::to_broker)
                .collect())
        })
    }

    fn submit(&mut self, request: &OrderRequest) -> Result<BrokerOrder, BrokerError> {
        self.call(SimMethod::Submit, |conn, env| {
            submit_op(conn, env, request).map(|row| row.to_broker())
        })
    }

    fn orders_for_symbol(
        &mut self,
        symbol: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<BrokerOrder>, BrokerError> {
        // A list read like the open-order list: it shares that method's injected faults.
        self.call(SimMethod::OpenOrders, |conn, _| {
            let mut orders: Vec<BrokerOrder> = store::all_orders(conn)?
                .iter()
                .map(OrderRow::to_broker)
                .filter(|o| o.symbol == symbol && o.submitted_at >= since)
                .collect();
            orders.sort_by_key(|o| o.submitted_at);
            Ok(orders)
        })
    }

    fn order_by_client_id(
        &mut self,
        client_order_id: &str,
    ) -> Result<Option<BrokerOrder>, BrokerError> {
        self.call(SimMethod::OrderByClientId, |conn, _| {
            Ok(store::order_by_client_id(conn, client_order_id)?.map(|row| row.to_broker()))
        })
    }

    fn replace(
        &mut self,
        order_id: &str,
        request: &ReplaceRequest,
    ) -> Result<BrokerOrder, BrokerError> {
        self.call(SimMethod::Replace, |conn, env| {
            replace_op(conn, env, order_id, request).map(|row| row.to_broker())
        })
    }

    fn cancel(&mut self, order_id: &str) -> Result<(), BrokerError> {
        self.call(SimMethod::Cancel, |conn, _| cancel_op(conn, order_id))
    }

    fn suspend_new_orders(&mut self, suspend: bool) -> Result<bool, BrokerError> {
        self.call(SimMethod::SuspendNewOrders, |conn, _| {
            store::set_suspended(conn, suspend)?;
            Ok(store::suspended(conn)?)
        })
    }
}
