//! The execution state database (`execution.sqlite` in the state directory): the order
//! journal (intents, written *before* anything is sent), broker orders keyed by their unique
//! client order id, fills, owned positions, protective stops and the decision/event log.
//!
//! Durability: WAL with `synchronous=FULL`, so a committed journal entry survives a crash or a
//! power cut. Every state change that must be atomic (an order update, its fill and the
//! position it moves) is one transaction. Schema evolution only adds: `MIGRATIONS` is append
//! only, `PRAGMA user_version` counts the migrations applied, a newer database is refused, and
//! nothing ever drops a table.

use crate::broker::{BrokerOrder, OrderStatus, OrderType, Side, TimeInForce};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// The file name inside the state directory.
pub const DB_FILE: &str = "execution.sqlite";

const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
CREATE TABLE intents (
    client_order_id TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    symbol TEXT NOT NULL,
    leg TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    side TEXT NOT NULL,
    qty TEXT NOT NULL,
    order_type TEXT NOT NULL,
    limit_price TEXT,
    stop_price TEXT,
    time_in_force TEXT NOT NULL,
    replaces_order_id TEXT,
    plan TEXT,
    state TEXT NOT NULL,
    reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX intents_by_state ON intents(state);
CREATE INDEX intents_by_symbol ON intents(symbol, session);
CREATE TABLE orders (
    client_order_id TEXT PRIMARY KEY,
    broker_order_id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty TEXT NOT NULL,
    order_type TEXT NOT NULL,
    limit_price TEXT,
    stop_price TEXT,
    time_in_force TEXT NOT NULL,
    status TEXT NOT NULL,
    filled_qty TEXT NOT NULL,
    filled_avg_price TEXT,
    replaced_by TEXT,
    adopted INTEGER NOT NULL DEFAULT 0,
    submitted_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX orders_by_symbol ON orders(symbol);
CREATE TABLE fills (
    id INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty TEXT NOT NULL,
    price TEXT NOT NULL,
    cumulative_qty TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    UNIQUE (client_order_id, cumulative_qty)
);
CREATE TABLE positions (
    symbol TEXT PRIMARY KEY,
    qty TEXT NOT NULL,
    avg_price TEXT NOT NULL,
    opened_session TEXT NOT NULL,
    entry_client_order_id TEXT NOT NULL,
    stop_price TEXT NOT NULL,
    target_r1 TEXT,
    target_r2 TEXT,
    trimmed INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    realized_pnl TEXT NOT NULL DEFAULT '0',
    updated_at TEXT NOT NULL
);
CREATE TABLE stops (
    symbol TEXT PRIMARY KEY,
    client_order_id TEXT NOT NULL,
    stop_price TEXT NOT NULL,
    qty TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    session TEXT,
    kind TEXT NOT NULL,
    symbol TEXT,
    client_order_id TEXT,
    message TEXT NOT NULL,
    details TEXT
);
CREATE INDEX events_by_session ON events(session, kind);
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at TEXT NOT NULL,
    pid INTEGER NOT NULL,
    mode TEXT NOT NULL,
    cycle INTEGER NOT NULL
);
"#,
    // 2: the realized P&L of each sell fill against the average cost at that moment, so a
    // day's P&L never changes when the symbol is traded again later.
    "ALTER TABLE fills ADD COLUMN realized_pnl TEXT;",
    // 3: closed positions are kept, since the positions table holds one row per symbol and a
    // new entry reuses it.
    "CREATE TABLE position_history (
        id INTEGER PRIMARY KEY,
        symbol TEXT NOT NULL,
        avg_price TEXT NOT NULL,
        opened_session TEXT NOT NULL,
        entry_client_order_id TEXT NOT NULL,
        stop_price TEXT NOT NULL,
        target_r1 TEXT,
        target_r2 TEXT,
        trimmed INTEGER NOT NULL,
        realized_pnl TEXT NOT NULL,
        closed_at TEXT NOT NULL,
        UNIQUE (symbol, entry_client_order_id)
    );",
    // 4: the last reconciliation verdict (the broker's positions and stops against the
    // journal), one row replaced every cycle, and its per-symbol rows; `first_seen` carries a
    // problem's age from one verdict to the next.
    "CREATE TABLE reconciliation (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        at TEXT NOT NULL,
        positions_read INTEGER NOT NULL,
        open_orders_read INTEGER NOT NULL,
        positions_error TEXT,
        open_orders_error TEXT
    );
    CREATE TABLE reconciliation_rows (
        symbol TEXT PRIMARY KEY,
        broker_qty TEXT,
        owned_qty TEXT NOT NULL,
        stop_qty TEXT,
        stop_qty_placed TEXT NOT NULL,
        selling_qty TEXT,
        status TEXT NOT NULL,
        first_seen TEXT
    );",
    // 5: every recorded change of an order (a copy of its row after the change, with when it
    // was recorded), so a report can show an order as it stood at a past session's close.
    // Orders recorded before this migration have no history: their past status is only
    // known as it is now.
    "CREATE TABLE order_updates (
        id INTEGER PRIMARY KEY,
        client_order_id TEXT NOT NULL,
        status TEXT NOT NULL,
        qty TEXT NOT NULL,
        filled_qty TEXT NOT NULL,
        filled_avg_price TEXT,
        limit_price TEXT,
        stop_price TEXT,
        replaced_by TEXT,
        broker_updated_at TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    );
    CREATE INDEX order_updates_by_order ON order_updates(client_order_id, id);",
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the execution database {path}: {source}; check that the state directory exists and is writable by avwap")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the execution database {path} was written by a newer avwap (schema {found} > {known}); upgrade avwap or restore a matching version — it is never downgraded or reset")]
    NewerSchema {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("execution database {path}: {what} failed: {source}")]
    Sql {
        path: PathBuf,
        what: &'static str,
        source: rusqlite::Error,
    },
    #[error("execution database {path}: corrupt value in {what}: {value:?}")]
    Corrupt {
        path: PathBuf,
        what: &'static str,
        value: String,
    },
    #[error("client order id {0} is already journaled; an id is never reused")]
    DuplicateClientOrderId(String),
    /// A read-only opening could not read the database (permissions, a write-ahead log this
    /// user cannot read); `reason` says what to do.
    #[error("cannot read the execution database {path}: {reason}")]
    ReadOnly { path: PathBuf, reason: String },
    /// A read-only opening found an older schema, which only the service migrates.
    #[error("the execution database {path} has schema {found}, older than this avwap's {known}: avwap-execution migrates it when it next starts; read it after that")]
    OlderSchema {
        path: PathBuf,
        found: u32,
        known: u32,
    },
}

/// Where an intent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntentState {
    /// Persisted; the request may or may not have reached the broker.
    Journaled,
    /// The broker answered with the order (or a lookup found it).
    Acknowledged,
    /// The broker refused it; nothing was placed.
    Rejected,
    /// A lookup by client order id proved the broker never received it.
    NotPlaced,
}

impl IntentState {
    pub fn as_str(self) -> &'static str {
        match self {
            IntentState::Journaled => "journaled",
            IntentState::Acknowledged => "acknowledged",
            IntentState::Rejected => "rejected",
            IntentState::NotPlaced => "not_placed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "journaled" => IntentState::Journaled,
            "acknowledged" => IntentState::Acknowledged,
            "rejected" => IntentState::Rejected,
            "not_placed" => IntentState::NotPlaced,
            _ => return None,
        })
    }
}

/// What an entry intends for the position it opens (copied into the position on first fill).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EntryPlan {
    pub stop_price: Decimal,
    pub target_r1: Option<Decimal>,
    pub target_r2: Option<Decimal>,
}

/// One order we intend to send (or sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub client_order_id: String,
    pub session: NaiveDate,
    pub symbol: String,
    pub leg: String,
    pub attempt: u32,
    pub side: Side,
    pub qty: Decimal,
    pub order_type: OrderType,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub time_in_force: TimeInForce,
    /// For a replace: the broker id of the order being replaced.
    pub replaces_order_id: Option<String>,
    pub plan: Option<EntryPlan>,
    pub state: IntentState,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A broker order as last recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub order: BrokerOrder,
    /// Found at the broker with our prefix but not journaled by this database.
    pub adopted: bool,
}

/// A position we own (opened by our own entry orders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedPosition {
    pub symbol: String,
    pub qty: Decimal,
    pub avg_price: Decimal,
    pub opened_session: NaiveDate,
    pub entry_client_order_id: String,
    /// The protective stop level; it only moves up.
    pub stop_price: Decimal,
    pub target_r1: Option<Decimal>,
    pub target_r2: Option<Decimal>,
    pub trimmed: bool,
    pub open: bool,
    pub realized_pnl: Decimal,
}

/// The protective stop order currently guarding a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopRow {
    pub symbol: String,
    pub client_order_id: String,
    pub stop_price: Decimal,
    pub qty: Decimal,
}

/// One recorded change of an order: its row as it stood after the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderUpdate {
    pub client_order_id: String,
    pub status: OrderStatus,
    pub qty: Decimal,
    pub filled_qty: Decimal,
    pub filled_avg_price: Option<Decimal>,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub replaced_by: Option<String>,
    /// The broker's time of the change.
    pub broker_updated_at: DateTime<Utc>,
    /// When this database recorded it (the cycle that saw it).
    pub recorded_at: DateTime<Utc>,
}

/// A fill recorded from a change in an order's cumulative filled quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fill {
    pub client_order_id: String,
    pub symbol: String,
    pub side: Side,
    pub qty: Decimal,
    pub price: Decimal,
    pub cumulative_qty: Decimal,
    pub recorded_at: DateTime<Utc>,
    /// For sells of an owned position: (price − average cost) × qty.
    pub realized_pnl: Option<Decimal>,
}

/// One line of the decision/event log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub session: Option<NaiveDate>,
    pub kind: String,
    pub symbol: Option<String>,
    pub client_order_id: Option<String>,
    pub message: String,
    pub details: Option<String>,
}

pub struct StateDb {
    conn: Connection,
    path: PathBuf,
}

fn dec_opt(d: Option<Decimal>) -> Option<String> {
    d.map(|d| d.to_string())
}

/// A `DbError::Sql` maker for `what` at `path`, for code that holds a transaction (and so
/// cannot borrow `self`).
pub(crate) fn sql_at(path: &Path, what: &'static str) -> impl FnOnce(rusqlite::Error) -> DbError {
    let path = path.to_path_buf();
    move |source| DbError::Sql { path, what, source }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl StateDb {
    /// Open (creating if needed) and migrate the database at `path`.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let conn = Connection::open(path).map_err(|source| DbError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::init(conn, path.to_path_buf())
    }

    pub fn open_in_memory() -> Result<Self, DbError> {
        let conn = Connection::open_in_memory().map_err(|source| DbError::Open {
            path: PathBuf::from(":memory:"),
            source,
        })?;
        Self::init(conn, PathBuf::from(":memory:"))
    }

    fn init(conn: Connection, path: PathBuf) -> Result<Self, DbError> {
        let open_err = |source| DbError::Open {
            path: path.clone(),
            source,
        };
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        // "journal_mode" answers with the mode; a file that is not a database fails here.
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        let mut db = Self { conn, path };
        db.migrate()?;
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self, what: &'static str) -> impl Fn(rusqlite::Error) -> DbError + '_ {
        move |source| DbError::Sql {
            path: self.path.clone(),
            what,
            source,
        }
    }

    fn corrupt(&self, what: &'static str, value: impl Into<String>) -> DbError {
        DbError::Corrupt {
            path: self.path.clone(),
            what,
            value: value.into(),
        }
    }

    fn migrate(&mut self) -> Result<(), DbError> {
        let path = self.path.clone();
        let sql_err = |what| sql_at(&path, what);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err("starting the migration"))?;
        let found: u32 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql_err("reading the schema version"))?;
        if found > SCHEMA_VERSION {
            return Err(DbError::NewerSchema {
                path,
                found,
                known: SCHEMA_VERSION,
            });
        }
        for step in &MIGRATIONS[found as usize..] {
            tx.execute_batch(step)
                .map_err(sql_err("migrating the schema"))?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(sql_err("recording the schema version"))?;
        tx.commit().map_err(sql_err("committing the migration"))
    }

    pub fn schema_version(&self) -> Result<u32, DbError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.sql("reading the schema version"))
    }

    /// `PRAGMA integrity_check`: "ok" when healthy.
    pub fn integrity_check(&self) -> Result<String, DbError> {
        self.conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(self.sql("checking integrity"))
    }

    // ---- intents ----

    /// Persist an intent before anything is sent. Fails if the id was ever journaled.
    pub fn journal_intent(&self, intent: &Intent) -> Result<(), DbError> {
        let plan = intent
            .plan
            .as_ref()
            .map(|p| serde_json::to_string(p).unwrap_or_default());
        let result = self.conn.execute(
            "INSERT INTO intents (client_order_id, session, symbol, leg, attempt, side, qty,
                order_type, limit_price, stop_price, time_in_force, replaces_order_id, plan, state,
                reason, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16)",
            params![
                intent.client_order_id,
                intent.session.to_string(),
                intent.symbol,
                intent.leg,
                intent.attempt,
                Side::as_str(intent.side),
                intent.qty.to_string(),
                OrderType::as_str(intent.order_type),
                dec_opt(intent.limit_price),
                dec_opt(intent.stop_price),
                TimeInForce::as_str(intent.time_in_force),
                intent.replaces_order_id,
                plan,
                intent.state.as_str(),
                intent.reason,
                ts(intent.created_at),
            ],
        );
        match result {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(DbError::DuplicateClientOrderId(
                    intent.client_order_id.clone(),
                ))
            }
            Err(source) => Err(self.sql("journaling an intent")(source)),
        }
    }

    pub fn set_intent_state(
        &self,
        client_order_id: &str,
        state: IntentState,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        self.conn
            .execute(
                "UPDATE intents SET state = ?2, reason = COALESCE(?3, reason), updated_at = ?4
                 WHERE client_order_id = ?1",
                params![client_order_id, state.as_str(), reason, ts(at)],
            )
            .map_err(self.sql("updating an intent"))?;
        Ok(())
    }

    const INTENT_COLUMNS: &'static str = "client_order_id, session, symbol, leg, attempt, side,
        qty, order_type, limit_price, stop_price, time_in_force, replaces_order_id, plan, state,
        reason, created_at, updated_at";

    fn intents_where(
        &self,
        clause: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Intent>, DbError> {
        let sql = format!(
            "SELECT {} FROM intents WHERE {clause} ORDER BY created_at, client_order_id",
            Self::INTENT_COLUMNS
        );
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .map_err(self.sql("reading intents"))?;
        let rows = stmt
            .query_map(args, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, String>(10)?,
                    r.get::<_, Option<String>>(11)?,
                    r.get::<_, Option<String>>(12)?,
                    r.get::<_, String>(13)?,
                    r.get::<_, Option<String>>(14)?,
                    r.get::<_, String>(15)?,
                    r.get::<_, String>(16)?,
                ))
            })
            .map_err(self.sql("reading intents"))?;
        let mut out = Vec::new();
        for row in rows {
            let (
                cid,
                session,
                symbol,
                leg,
                attempt,
                side,
                qty,
                ot,
                lp,
                sp,
                tif,
                rep,
                plan,
                state,
                reason,
                created,
                updated,
            ) = row.map_err(self.sql("reading intents"))?;
            out.push(Intent {
                session: self.date(&session, "intents.session")?,
                symbol,
                leg,
                attempt,
                side: self.side(&side)?,
                qty: self.dec(&qty, "intents.qty")?,
                order_type: self.order_type(&ot)?,
                limit_price: self.dec_opt(lp, "intents.limit_price")?,
                stop_price: self.dec_opt(sp, "intents.stop_price")?,
                time_in_force: self.tif(&tif)?,
                replaces_order_id: rep,
                plan: match plan {
                    Some(p) => Some(
                        serde_json::from_str(&p).map_err(|_| self.corrupt("intents.plan", p))?,
                    ),
                    None => None,
                },
                state: IntentState::parse(&state)
                    .ok_or_else(|| self.corrupt("intents.state", state.clone()))?,
                reason,
                created_at: self.time(&created, "intents.created_at")?,
                updated_at: self.time(&updated, "intents.updated_at")?,
                client_order_id: cid,
            });
        }
        Ok(out)
    }

    pub fn intent(&self, client_order_id: &str) -> Result<Option<Intent>, DbError> {
        Ok(self
            .intents_where("client_order_id = ?1", &[&client_order_id])?
            .pop())
    }

    /// Intents whose outcome is not known yet.
    pub fn unresolved_intents(&self) -> Result<Vec<Intent>, DbError> {
        self.intents_where("state = 'journaled'", &[])
    }

    /// Every intent for a symbol in a session (any state).
    pub fn intents_for(&self, symbol: &str, session: NaiveDate) -> Result<Vec<Intent>, DbError> {
        self.intents_where(
            "symbol = ?1 AND session = ?2",
            &[&symbol, &session.to_string()],
        )
    }

    pub fn intents_in_session(&self, session: NaiveDate) -> Result<Vec<Intent>, DbError> {
        self.intents_where("session = ?1", &[&session.to_string()])
    }

    /// The highest attempt journaled for this (session, symbol, leg), or 0.
    pub fn last_attempt(
        &self,
        session: NaiveDate,
        symbol: &str,
        leg: &str,
    ) -> Result<u32, DbError> {
        self.conn
            .query_row(
                "SELECT COALESCE(MAX(attempt), 0) FROM intents WHERE session = ?1 AND symbol = ?2 AND leg = ?3",
                params![session.to_string(), symbol, leg],
                |r| r.get(0),
            )
            .map_err(self.sql("reading attempts"))
    }

    /// The highest stop leg number used for a symbol (any session), journaled by us or found
    /// at the broker (adopted orders after a lost journal): the next stop leg is this plus one.
    pub fn stop_legs_used(&self, symbol: &str) -> Result<u32, DbError> {
        let legs: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT leg FROM intents WHERE symbol = ?1 AND leg LIKE 'st%'")
                .map_err(self.sql("reading stop legs"))?;
            let rows = stmt
                .query_map(params![symbol], |r| r.get(0))
                .map_err(self.sql("reading stop legs"))?;
            rows.collect::<Result<_, _>>()
                .map_err(self.sql("reading stop legs"))?
        };
        let journaled = legs
            .iter()
            .filter_map(|l| l.strip_prefix("st").and_then(|n| n.parse::<u32>().ok()))
            .max()
            .unwrap_or(0);
        let found = self
            .orders_for_symbol(symbol)?
            .iter()
            .filter_map(|o| crate::execution::ids::ClientOrderId::parse(&o.order.client_order_id))
            .filter_map(|id| match id.leg {
                crate::execution::ids::Leg::Stop(n) => Some(n),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        Ok(journaled.max(found))
    }

    /// Our orders whose client order id names `session` (journaled or adopted).
    pub fn orders_in_session(&self, session: NaiveDate) -> Result<Vec<OrderRow>, DbError> {
        let prefix = format!(
            "{}-{}-%",
            crate::execution::ids::PREFIX,
            session.format("%Y%m%d")
        );
        self.order_rows("client_order_id LIKE ?1", &[&prefix])
    }

    /// Entry orders sent today (acknowledged), for the orders-per-day cap.
    pub fn entries_sent(&self, session: NaiveDate) -> Result<u32, DbError> {
        self.conn
            .query_row(
                "SELECT COUNT(DISTINCT symbol) FROM intents WHERE session = ?1 AND leg = 'en' AND state IN ('journaled', 'acknowledged')",
                params![session.to_string()],
                |r| r.get(0),
            )
            .map_err(self.sql("counting entries"))
    }

    // ---- orders, fills and positions ----

    /// Record the broker's view of one of our orders, and in the same transaction: the fill
    /// implied by a rise of its cumulative filled quantity, the owned position it moves, the
    /// protective-stop record, and the intent's acknowledgement. Idempotent: recording the
    /// same snapshot twice changes nothing. Returns the new fill, if any.
    pub fn record_order(
        &mut self,
        order: &BrokerOrder,
        adopted: bool,
        at: DateTime<Utc>,
    ) -> Result<Option<Fill>, DbError> {
        // An unchanged snapshot (the common case every cycle) costs no write and no fsync.
        if let Some(known) = self.order(&order.client_order_id)? {
            let same = known.order.status == order.status
                && known.order.filled_qty == order.filled_qty
                && known.order.qty == order.qty
                && known.order.filled_avg_price == order.filled_avg_price
                && known.order.stop_price == order.stop_price
                && known.order.limit_price == order.limit_price
                && known.order.replaced_by == order.replaced_by
                && self
                    .intent(&order.client_order_id)?
                    .is_none_or(|i| i.state == IntentState::Acknowledged);
            if same {
                return Ok(None);
            }
        }
        let path = self.path.clone();
        let sql_err = |what| sql_at(&path, what);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err("starting an order update"))?;
        let previous: Option<(String, Option<String>)> = tx
            .query_row(
                "SELECT filled_qty, filled_avg_price FROM orders WHERE client_order_id = ?1",
                params![order.client_order_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sql_err("reading an order"))?;
        let corrupt_path = self.path.clone();
        let (old_qty, old_avg) = match previous {
            Some((q, a)) => (
                Decimal::from_str(&q).map_err(|_| DbError::Corrupt {
                    path: corrupt_path.clone(),
                    what: "orders.filled_qty",
                    value: q.clone(),
                })?,
                a.and_then(|a| Decimal::from_str(&a).ok())
                    .unwrap_or_default(),
            ),
            None => (Decimal::ZERO, Decimal::ZERO),
        };
        tx.execute(
            "INSERT INTO orders (client_order_id, broker_order_id, symbol, side, qty, order_type,
                limit_price, stop_price, time_in_force, status, filled_qty, filled_avg_price,
                replaced_by, adopted, submitted_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
             ON CONFLICT(client_order_id) DO UPDATE SET
                status = excluded.status,
                qty = excluded.qty,
                limit_price = excluded.limit_price,
                stop_price = excluded.stop_price,
                filled_qty = CASE WHEN CAST(excluded.filled_qty AS REAL) >= CAST(orders.filled_qty AS REAL)
                                  THEN excluded.filled_qty ELSE orders.filled_qty END,
                filled_avg_price = COALESCE(excluded.filled_avg_price, orders.filled_avg_price),
                replaced_by = COALESCE(excluded.replaced_by, orders.replaced_by),
                updated_at = excluded.updated_at",
            params![
                order.client_order_id,
                order.id,
                order.symbol,
                Side::as_str(order.side),
                order.qty.to_string(),
                OrderType::as_str(order.order_type),
                dec_opt(order.limit_price),
                dec_opt(order.stop_price),
                TimeInForce::as_str(order.time_in_force),
                order.status.as_str(),
                order.filled_qty.to_string(),
                dec_opt(order.filled_avg_price),
                order.replaced_by,
                adopted,
                ts(order.submitted_at),
                ts(order.updated_at),
            ],
        )
        .map_err(sql_err("recording an order"))?;
        tx.execute(
            "INSERT INTO order_updates (client_order_id, status, qty, filled_qty,
                filled_avg_price, limit_price, stop_price, replaced_by, broker_updated_at,
                recorded_at)
             SELECT client_order_id, status, qty, filled_qty, filled_avg_price, limit_price,
                stop_price, replaced_by, updated_at, ?2
             FROM orders WHERE client_order_id = ?1",
            params![order.client_order_id, ts(at)],
        )
        .map_err(sql_err("recording an order's history"))?;
        tx.execute(
            "UPDATE intents SET state = 'acknowledged', updated_at = ?2
             WHERE client_order_id = ?1 AND state <> 'acknowledged'",
            params![order.client_order_id, ts(at)],
        )
        .map_err(sql_err("acknowledging an intent"))?;

        let mut fill = None;
        if order.filled_qty > old_qty {
            let delta = order.filled_qty - old_qty;
            let new_avg = order.filled_avg_price.unwrap_or_default();
            // Cumulative quantity and average price give the delta's own price.
            let price = ((new_avg * order.filled_qty - old_avg * old_qty) / delta).round_dp(6);
            let inserted = tx
                .execute(
                    "INSERT OR IGNORE INTO fills (client_order_id, symbol, side, qty, price, cumulative_qty, recorded_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        order.client_order_id,
                        order.symbol,
                        Side::as_str(order.side),
                        delta.to_string(),
                        price.to_string(),
                        order.filled_qty.to_string(),
                        ts(at),
                    ],
                )
                .map_err(sql_err("recording a fill"))?;
            if inserted == 1 {
                let realized = apply_fill_to_position(&tx, order, delta, price, at, &corrupt_path)?;
                if let Some(pnl) = realized {
                    tx.execute(
                        "UPDATE fills SET realized_pnl = ?3 WHERE client_order_id = ?1 AND cumulative_qty = ?2",
                        params![order.client_order_id, order.filled_qty.to_string(), pnl.to_string()],
                    )
                    .map_err(sql_err("recording realized P&L"))?;
                }
                fill = Some(Fill {
                    client_order_id: order.client_order_id.clone(),
                    symbol: order.symbol.clone(),
                    side: order.side,
                    qty: delta,
                    price,
                    cumulative_qty: order.filled_qty,
                    recorded_at: at,
                    realized_pnl: realized,
                });
            }
        }

        // The protective-stop record follows the stop order's life.
        if order.order_type == OrderType::Stop && order.side == Side::Sell {
            if order.status.is_open() {
                tx.execute(
                    "INSERT INTO stops (symbol, client_order_id, stop_price, qty, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(symbol) DO UPDATE SET client_order_id = excluded.client_order_id,
                        stop_price = excluded.stop_price, qty = excluded.qty, updated_at = excluded.updated_at",
                    params![
                        order.symbol,
                        order.client_order_id,
                        dec_opt(order.stop_price).unwrap_or_default(),
                        (order.qty - order.filled_qty).to_string(),
                        ts(at),
                    ],
                )
                .map_err(sql_err("recording a stop"))?;
            } else {
                tx.execute(
                    "DELETE FROM stops WHERE symbol = ?1 AND client_order_id = ?2",
                    params![order.symbol, order.client_order_id],
                )
                .map_err(sql_err("clearing a stop"))?;
            }
        }
        tx.commit().map_err(sql_err("committing an order update"))?;
        Ok(fill)
    }

    fn order_rows(
        &self,
        clause: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<OrderRow>, DbError> {
        let sql = format!(
            "SELECT client_order_id, broker_order_id, symbol, side, qty, order_type, limit_price,
                stop_price, time_in_force, status, filled_qty, filled_avg_price, replaced_by,
                adopted, submitted_at, updated_at
             FROM orders WHERE {clause} ORDER BY submitted_at, client_order_id"
        );
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .map_err(self.sql("reading orders"))?;
        let rows = stmt
            .query_map(args, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, String>(9)?,
                    r.get::<_, String>(10)?,
                    r.get::<_, Option<String>>(11)?,
                    r.get::<_, Option<String>>(12)?,
                    r.get::<_, bool>(13)?,
                    r.get::<_, String>(14)?,
                    r.get::<_, String>(15)?,
                ))
            })
            .map_err(self.sql("reading orders"))?;
        let mut out = Vec::new();
        for row in rows {
            let (
                cid,
                id,
                symbol,
                side,
                qty,
                ot,
                lp,
                sp,
                tif,
                status,
                fq,
                fap,
                rb,
                adopted,
                sub,
                upd,
            ) = row.map_err(self.sql("reading orders"))?;
            out.push(OrderRow {
                order: BrokerOrder {
                    id,
                    client_order_id: cid,
                    symbol,
                    side: self.side(&side)?,
                    qty: self.dec(&qty, "orders.qty")?,
                    filled_qty: self.dec(&fq, "orders.filled_qty")?,
                    filled_avg_price: self.dec_opt(fap, "orders.filled_avg_price")?,
                    order_type: self.order_type(&ot)?,
                    limit_price: self.dec_opt(lp, "orders.limit_price")?,
                    stop_price: self.dec_opt(sp, "orders.stop_price")?,
                    time_in_force: self.tif(&tif)?,
                    status: self.status(&status)?,
                    submitted_at: self.time(&sub, "orders.submitted_at")?,
                    updated_at: self.time(&upd, "orders.updated_at")?,
                    replaced_by: rb,
                },
                adopted,
            });
        }
        Ok(out)
    }

    /// Orders we believe are still working at the broker.
    pub fn open_orders(&self) -> Result<Vec<OrderRow>, DbError> {
        let open: Vec<&str> = [
            OrderStatus::New,
            OrderStatus::Accepted,
            OrderStatus::PendingNew,
            OrderStatus::PartiallyFilled,
            OrderStatus::PendingCancel,
            OrderStatus::PendingReplace,
            OrderStatus::Suspended,
        ]
        .iter()
        .map(|s| s.as_str())
        .collect();
        let clause = format!(
            "status IN ({})",
            open.iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.order_rows(&clause, &[])
    }

    pub fn order(&self, client_order_id: &str) -> Result<Option<OrderRow>, DbError> {
        Ok(self
            .order_rows("client_order_id = ?1", &[&client_order_id])?
            .pop())
    }

    pub fn orders_for_symbol(&self, symbol: &str) -> Result<Vec<OrderRow>, DbError> {
        self.order_rows("symbol = ?1", &[&symbol])
    }

    pub fn all_orders(&self) -> Result<Vec<OrderRow>, DbError> {
        self.order_rows("1 = 1", &[])
    }

    /// Every recorded order change, oldest first (empty for orders recorded before schema 5).
    pub fn order_updates(&self) -> Result<Vec<OrderUpdate>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT client_order_id, status, qty, filled_qty, filled_avg_price, limit_price,
                    stop_price, replaced_by, broker_updated_at, recorded_at
                 FROM order_updates ORDER BY id",
            )
            .map_err(self.sql("reading order history"))?;
        let rows: Vec<_> = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, String>(9)?,
                ))
            })
            .map_err(self.sql("reading order history"))?
            .collect::<Result<_, _>>()
            .map_err(self.sql("reading order history"))?;
        rows.into_iter()
            .map(
                |(cid, status, qty, filled, avg, limit, stop, replaced_by, broker_at, at)| {
                    Ok(OrderUpdate {
                        client_order_id: cid,
                        status: self.status(&status)?,
                        qty: self.dec(&qty, "order_updates.qty")?,
                        filled_qty: self.dec(&filled, "order_updates.filled_qty")?,
                        filled_avg_price: self.dec_opt(avg, "order_updates.filled_avg_price")?,
                        limit_price: self.dec_opt(limit, "order_updates.limit_price")?,
                        stop_price: self.dec_opt(stop, "order_updates.stop_price")?,
                        replaced_by,
                        broker_updated_at: self
                            .time(&broker_at, "order_updates.broker_updated_at")?,
                        recorded_at: self.time(&at, "order_updates.recorded_at")?,
                    })
                },
            )
            .collect()
    }

    /// Every intent's entry plan, by client order id (entries only carry one).
    pub fn entry_plans(&self) -> Result<Vec<(String, EntryPlan)>, DbError> {
        Ok(self
            .intents_where("plan IS NOT NULL", &[])?
            .into_iter()
            .filter_map(|i| i.plan.map(|p| (i.client_order_id, p)))
            .collect())
    }

    pub fn fills(&self) -> Result<Vec<Fill>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT client_order_id, symbol, side, qty, price, cumulative_qty, recorded_at, realized_pnl FROM fills ORDER BY id",
            )
            .map_err(self.sql("reading fills"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })
            .map_err(self.sql("reading fills"))?;
        let mut out = Vec::new();
        for row in rows {
            let (cid, symbol, side, qty, price, cum, at, pnl) =
                row.map_err(self.sql("reading fills"))?;
            out.push(Fill {
                client_order_id: cid,
                symbol,
                side: self.side(&side)?,
                qty: self.dec(&qty, "fills.qty")?,
                price: self.dec(&price, "fills.price")?,
                cumulative_qty: self.dec(&cum, "fills.cumulative_qty")?,
                recorded_at: self.time(&at, "fills.recorded_at")?,
                realized_pnl: self.dec_opt(pnl, "fills.realized_pnl")?,
            });
        }
        Ok(out)
    }

    fn position_rows(
        &self,
        clause: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<OwnedPosition>, DbError> {
        let sql = format!(
            "SELECT symbol, qty, avg_price, opened_session, entry_client_order_id, stop_price,
                target_r1, target_r2, trimmed, status, realized_pnl
             FROM positions WHERE {clause} ORDER BY symbol"
        );
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .map_err(self.sql("reading positions"))?;
        let rows = stmt
            .query_map(args, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, bool>(8)?,
                    r.get::<_, String>(9)?,
                    r.get::<_, String>(10)?,
                ))
            })
            .map_err(self.sql("reading positions"))?;
        let mut out = Vec::new();
        for row in rows {
            let (symbol, qty, avg, opened, entry, stop, r1, r2, trimmed, status, pnl) =
                row.map_err(self.sql("reading positions"))?;
            out.push(OwnedPosition {
                symbol,
                qty: self.dec(&qty, "positions.qty")?,
                avg_price: self.dec(&avg, "positions.avg_price")?,
                opened_session: self.date(&opened, "positions.opened_session")?,
                entry_client_order_id: entry,
                stop_price: self.dec(&stop, "positions.stop_price")?,
                target_r1: self.dec_opt(r1, "positions.target_r1")?,
                target_r2: self.dec_opt(r2, "positions.target_r2")?,
                trimmed,
                open: status == "open",
                realized_pnl: self.dec(&pnl, "positions.realized_pnl")?,
            });
        }
        Ok(out)
    }

    pub fn open_positions(&self) -> Result<Vec<OwnedPosition>, DbError> {
        self.position_rows("status = 'open'", &[])
    }

    pub fn position(&self, symbol: &str) -> Result<Option<OwnedPosition>, DbError> {
        Ok(self.position_rows("symbol = ?1", &[&symbol])?.pop())
    }

    /// Closed positions with the instant they closed, oldest first.
    pub fn closed_positions(&self) -> Result<Vec<(OwnedPosition, DateTime<Utc>)>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT symbol, avg_price, opened_session, entry_client_order_id, stop_price,
                    target_r1, target_r2, trimmed, realized_pnl, closed_at
                 FROM position_history ORDER BY id",
            )
            .map_err(self.sql("reading closed positions"))?;
        let rows: Vec<_> = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, bool>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, String>(9)?,
                ))
            })
            .map_err(self.sql("reading closed positions"))?
            .collect::<Result<_, _>>()
            .map_err(self.sql("reading closed positions"))?;
        rows.into_iter()
            .map(
                |(symbol, avg, opened, entry, stop, r1, r2, trimmed, pnl, closed)| {
                    Ok((
                        OwnedPosition {
                            symbol,
                            qty: Decimal::ZERO,
                            avg_price: self.dec(&avg, "position_history.avg_price")?,
                            opened_session: self
                                .date(&opened, "position_history.opened_session")?,
                            entry_client_order_id: entry,
                            stop_price: self.dec(&stop, "position_history.stop_price")?,
                            target_r1: self.dec_opt(r1, "position_history.target_r1")?,
                            target_r2: self.dec_opt(r2, "position_history.target_r2")?,
                            trimmed,
                            open: false,
                            realized_pnl: self.dec(&pnl, "position_history.realized_pnl")?,
                        },
                        self.time(&closed, "position_history.closed_at")?,
                    ))
                },
            )
            .collect()
    }

    pub fn all_positions(&self) -> Result<Vec<OwnedPosition>, DbError> {
        self.position_rows("1 = 1", &[])
    }

    /// Give a position that lost its entry plan (adopted after a lost journal) the targets of
    /// the watchlist row it was entered from. Only fills what is missing: existing targets stay.
    pub fn restore_targets(
        &self,
        symbol: &str,
        target_r1: Decimal,
        target_r2: Decimal,
        at: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let changed = self
            .conn
            .execute(
                "UPDATE positions SET target_r1 = ?2, target_r2 = ?3, updated_at = ?4
                 WHERE symbol = ?1 AND status = 'open' AND target_r1 IS NULL AND target_r2 IS NULL",
                params![symbol, target_r1.to_string(), target_r2.to_string(), ts(at)],
            )
            .map_err(self.sql("restoring targets"))?;
        Ok(changed > 0)
    }

    /// Raise the protective stop level (never lowers it).
    pub fn raise_stop_level(
        &self,
        symbol: &str,
        level: Decimal,
        at: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let current = self.position(symbol)?.map(|p| p.stop_price);
        match current {
            Some(c) if level > c => {
                self.conn
                    .execute(
                        "UPDATE positions SET stop_price = ?2, updated_at = ?3 WHERE symbol = ?1",
                        params![symbol, level.to_string(), ts(at)],
                    )
                    .map_err(self.sql("raising a stop"))?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub fn mark_trimmed(&self, symbol: &str, at: DateTime<Utc>) -> Result<(), DbError> {
        self.conn
            .execute(
                "UPDATE positions SET trimmed = 1, updated_at = ?2 WHERE symbol = ?1",
                params![symbol, ts(at)],
            )
            .map_err(self.sql("marking a trim"))?;
        Ok(())
    }

    pub fn stop(&self, symbol: &str) -> Result<Option<StopRow>, DbError> {
        let row: Option<(String, String, String)> = self
            .conn
            .query_row(
                "SELECT client_order_id, stop_price, qty FROM stops WHERE symbol = ?1",
                params![symbol],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.sql("reading a stop"))?;
        match row {
            None => Ok(None),
            Some((cid, price, qty)) => Ok(Some(StopRow {
                symbol: symbol.to_string(),
                client_order_id: cid,
                stop_price: self.dec(&price, "stops.stop_price")?,
                qty: self.dec(&qty, "stops.qty")?,
            })),
        }
    }

    // ---- events and heartbeat ----

    pub fn event(&self, event: &Event) -> Result<(), DbError> {
        insert_event(&self.conn, event).map_err(self.sql("writing an event"))
    }

    pub fn events(&self, session: Option<NaiveDate>) -> Result<Vec<Event>, DbError> {
        let (clause, arg) = match session {
            Some(d) => ("WHERE session = ?1", Some(d.to_string())),
            None => ("", None),
        };
        let sql = format!(
            "SELECT at, session, kind, symbol, client_order_id, message, details FROM events {clause} ORDER BY id"
        );
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(self.sql("reading events"))?;
        let mapper = |r: &rusqlite::Row<'_>| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        };
        let rows: Vec<_> = match arg {
            Some(a) => stmt.query_map(params![a], mapper),
            None => stmt.query_map([], mapper),
        }
        .map_err(self.sql("reading events"))?
        .collect::<Result<_, _>>()
        .map_err(self.sql("reading events"))?;
        rows.into_iter()
            .map(|(at, session, kind, symbol, cid, message, details)| {
                Ok(Event {
                    at: self.time(&at, "events.at")?,
                    session: session
                        .map(|s| self.date(&s, "events.session"))
                        .transpose()?,
                    kind,
                    symbol,
                    client_order_id: cid,
                    message,
                    details,
                })
            })
            .collect()
    }

    /// Write several events in one transaction (one fsync instead of one per event).
    pub fn events_batch(&mut self, events: &[Event]) -> Result<(), DbError> {
        if events.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let err = move |source| DbError::Sql {
            path: path.clone(),
            what: "writing events",
            source,
        };
        let tx = self.conn.transaction().map_err(err.clone())?;
        for event in events {
            insert_event(&tx, event).map_err(err.clone())?;
        }
        tx.commit().map_err(err)
    }

    /// Whether an event of this kind was already recorded for the symbol in the session.
    pub fn has_event(&self, session: NaiveDate, kind: &str, symbol: &str) -> Result<bool, DbError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM events WHERE session = ?1 AND kind = ?2 AND symbol = ?3)",
                params![session.to_string(), kind, symbol],
                |r| r.get(0),
            )
            .map_err(self.sql("reading events"))
    }

    pub fn heartbeat(&self, at: DateTime<Utc>, mode: &str, cycle: u64) -> Result<(), DbError> {
        self.conn
            .execute(
                "INSERT INTO heartbeat (id, at, pid, mode, cycle) VALUES (1, ?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET at = excluded.at, pid = excluded.pid,
                    mode = excluded.mode, cycle = excluded.cycle",
                params![ts(at), std::process::id(), mode, cycle as i64],
            )
            .map_err(self.sql("writing the heartbeat"))?;
        Ok(())
    }

    pub fn last_heartbeat(&self) -> Result<Option<DateTime<Utc>>, DbError> {
        let at: Option<String> = self
            .conn
            .query_row("SELECT at FROM heartbeat WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(self.sql("reading the heartbeat"))?;
        at.map(|a| self.time(&a, "heartbeat.at")).transpose()
    }

    /// The mode of the last cycle that ran on this database, if any.
    pub fn last_heartbeat_mode(&self) -> Result<Option<String>, DbError> {
        self.conn
            .query_row("SELECT mode FROM heartbeat WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(self.sql("reading the heartbeat"))
    }

    // ---- parsing helpers ----

    fn dec(&self, s: &str, what: &'static str) -> Result<Decimal, DbError> {
        Decimal::from_str(s).map_err(|_| self.corrupt(what, s))
    }

    fn dec_opt(&self, s: Option<String>, what: &'static str) -> Result<Option<Decimal>, DbError> {
        s.map(|s| self.dec(&s, what)).transpose()
    }

    fn date(&self, s: &str, what: &'static str) -> Result<NaiveDate, DbError> {
        NaiveDate::from_str(s).map_err(|_| self.corrupt(what, s))
    }

    fn time(&self, s: &str, what: &'static str) -> Result<DateTime<Utc>, DbError> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| self.corrupt(what, s))
    }

    fn side(&self, s: &str) -> Result<Side, DbError> {
        Side::parse(s).ok_or_else(|| self.corrupt("side", s))
    }

    fn order_type(&self, s: &str) -> Result<OrderType, DbError> {
        OrderType::parse(s).ok_or_else(|| self.corrupt("order_type", s))
    }

    fn tif(&self, s: &str) -> Result<TimeInForce, DbError> {
        TimeInForce::parse(s).ok_or_else(|| self.corrupt("time_in_force", s))
    }

    fn status(&self, s: &str) -> Result<OrderStatus, DbError> {
        OrderStatus::parse(s).ok_or_else(|| self.corrupt("orders.status", s))
    }
}

fn insert_event(conn: &Connection, event: &Event) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO events (at, session, kind, symbol, client_order_id, message, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            ts(event.at),
            event.session.map(|d| d.to_string()),
            event.kind,
            event.symbol,
            event.client_order_id,
            event.message,
            event.details,
        ],
    )
    .map(|_| ())
}

/// Move the owned position by one fill (inside the order-update transaction). Returns the
/// realized P&L of a sell.
fn apply_fill_to_position(
    tx: &Transaction<'_>,
    order: &BrokerOrder,
    qty: Decimal,
    price: Decimal,
    at: DateTime<Utc>,
    path: &Path,
) -> Result<Option<Decimal>, DbError> {
    let sql_err = |what| sql_at(path, what);
    let corrupt = |what, value: String| DbError::Corrupt {
        path: path.to_path_buf(),
        what,
        value,
    };
    let existing: Option<(String, String, String, String)> = tx
        .query_row(
            "SELECT qty, avg_price, status, realized_pnl FROM positions WHERE symbol = ?1",
            params![order.symbol],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .map_err(sql_err("reading a position"))?;
    match order.side {
        Side::Buy => {
            let plan: Option<String> = tx
                .query_row(
                    "SELECT plan FROM intents WHERE client_order_id = ?1",
                    params![order.client_order_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql_err("reading an entry plan"))?
                .flatten();
            let plan: Option<EntryPlan> = plan.and_then(|p| serde_json::from_str(&p).ok());
            let session = crate::execution::ids::ClientOrderId::parse(&order.client_order_id)
                .map(|id| id.session)
                .unwrap_or_else(|| crate::calendar::ny_date(at));
            match existing {
                Some((q, a, status, _)) if status == "open" => {
                    let q =
                        Decimal::from_str(&q).map_err(|_| corrupt("positions.qty", q.clone()))?;
                    let a = Decimal::from_str(&a)
                        .map_err(|_| corrupt("positions.avg_price", a.clone()))?;
                    let new_qty = q + qty;
                    let new_avg = ((a * q + price * qty) / new_qty).round_dp(6);
                    tx.execute(
                        "UPDATE positions SET qty = ?2, avg_price = ?3, updated_at = ?4 WHERE symbol = ?1",
                        params![order.symbol, new_qty.to_string(), new_avg.to_string(), ts(at)],
                    )
                    .map_err(sql_err("updating a position"))?;
                }
                _ => {
                    // A buy without a plan (an adopted order) protects itself 10% below cost
                    // until the strategy or the operator says otherwise.
                    let stop = plan
                        .as_ref()
                        .map(|p| p.stop_price)
                        .unwrap_or_else(|| (price * Decimal::new(9, 1)).round_dp(2));
                    tx.execute(
                        "INSERT INTO positions (symbol, qty, avg_price, opened_session, entry_client_order_id,
                            stop_price, target_r1, target_r2, trimmed, status, realized_pnl, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 'open', '0', ?9)
                         ON CONFLICT(symbol) DO UPDATE SET qty = excluded.qty, avg_price = excluded.avg_price,
                            opened_session = excluded.opened_session, entry_client_order_id = excluded.entry_client_order_id,
                            stop_price = excluded.stop_price, target_r1 = excluded.target_r1,
                            target_r2 = excluded.target_r2, trimmed = 0, status = 'open',
                            realized_pnl = '0', updated_at = excluded.updated_at",
                        params![
                            order.symbol,
                            qty.to_string(),
                            price.to_string(),
                            session.to_string(),
                            order.client_order_id,
                            stop.to_string(),
                            dec_opt(plan.as_ref().and_then(|p| p.target_r1)),
                            dec_opt(plan.as_ref().and_then(|p| p.target_r2)),
                            ts(at),
                        ],
                    )
                    .map_err(sql_err("opening a position"))?;
                }
            }
        }
        Side::Sell => {
            let Some((q, a, _status, pnl)) = existing else {
                // A sell of ours without an owned position: recorded as a fill, nothing to move.
                return Ok(None);
            };
            let q = Decimal::from_str(&q).map_err(|_| corrupt("positions.qty", q.clone()))?;
            let a = Decimal::from_str(&a).map_err(|_| corrupt("positions.avg_price", a.clone()))?;
            let realized = ((price - a) * qty).round_dp(6);
            let pnl = Decimal::from_str(&pnl).unwrap_or_default() + realized;
            let remaining = (q - qty).max(Decimal::ZERO);
            let status = if remaining.is_zero() {
                "closed"
            } else {
                "open"
            };
            tx.execute(
                "UPDATE positions SET qty = ?2, status = ?3, realized_pnl = ?4, updated_at = ?5 WHERE symbol = ?1",
                params![order.symbol, remaining.to_string(), status, pnl.round_dp(6).to_string(), ts(at)],
            )
            .map_err(sql_err("reducing a position"))?;
            if remaining.is_zero() {
                tx.execute(
                    "INSERT OR IGNORE INTO position_history (symbol, avg_price, opened_session,
                        entry_client_order_id, stop_price, target_r1, target_r2, trimmed,
                        realized_pnl, closed_at)
                     SELECT symbol, avg_price, opened_session, entry_client_order_id, stop_price,
                        target_r1, target_r2, trimmed, realized_pnl, ?2
                     FROM positions WHERE symbol = ?1",
                    params![order.symbol, ts(at)],
                )
                .map_err(sql_err("keeping a closed position"))?;
            }
            return Ok(Some(realized));
        }
    }
    Ok(None)
}

mod read_only;
mod reconciliation;

#[cfg(test)]
mod tests;
