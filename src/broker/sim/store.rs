//! The simulated broker's SQLite file: schema and migrations, and the row codecs for meta
//! values, orders, positions, fills and injected faults. Every function here runs inside a
//! transaction opened by the caller; nothing here commits.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use rust_decimal::Decimal;

use super::{SimFault, SimFill, SimMethod};
use crate::broker::{BrokerOrder, OrderStatus, OrderType, Position, Side, TimeInForce};

/// Each entry moves the schema from version `index` to `index + 1`. Append only.
pub(super) const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE orders (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        client_order_id TEXT NOT NULL UNIQUE,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        order_type TEXT NOT NULL,
        time_in_force TEXT NOT NULL,
        qty TEXT NOT NULL,
        filled_qty TEXT NOT NULL,
        filled_notional TEXT NOT NULL,
        limit_price TEXT,
        stop_price TEXT,
        status TEXT NOT NULL,
        submitted_at INTEGER NOT NULL, -- microseconds since the Unix epoch, UTC
        updated_at INTEGER NOT NULL,
        active_from INTEGER NOT NULL,  -- only bars starting at or after this instant fill it
        expires_at INTEGER,            -- DAY orders: their session's close; GTC: NULL
        stop_triggered INTEGER NOT NULL DEFAULT 0,
        replaces TEXT,
        replaced_by TEXT
    );
    CREATE INDEX orders_by_status ON orders (status, submitted_at, seq);
    CREATE TABLE positions (
        symbol TEXT PRIMARY KEY,
        qty TEXT NOT NULL,
        avg_entry_price TEXT NOT NULL
    );
    CREATE TABLE fills (
        seq INTEGER PRIMARY KEY,
        order_id TEXT NOT NULL,
        client_order_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        qty TEXT NOT NULL,
        price TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE TABLE faults (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        method TEXT NOT NULL,
        fault TEXT NOT NULL
    );
",
    "
    ALTER TABLE fills ADD COLUMN commission TEXT NOT NULL DEFAULT '0';
    ALTER TABLE fills ADD COLUMN slippage TEXT NOT NULL DEFAULT '0';
",
];

pub(super) const KEY_NOW: &str = "now";
pub(super) const KEY_CASH: &str = "cash";
pub(super) const KEY_SUSPENDED: &str = "suspended";
pub(super) const KEY_STARTING_CASH: &str = "starting_cash";

/// Statuses in which an order can still fill (the subset of `OrderStatus::is_open` the
/// simulator produces, plus the rest for safety).
const OPEN_STATUSES: &str = "('new','accepted','pending_new','partially_filled','pending_cancel','pending_replace','suspended')";

/// A corrupt value read back from the file.
fn corrupt(what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("simulated broker file holds an unreadable {what}: {value:?}").into(),
    )
}

pub(super) fn dec(value: &str) -> rusqlite::Result<Decimal> {
    Decimal::from_str(value).map_err(|_| corrupt("decimal", value))
}

pub(super) fn time(micros: i64) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| corrupt("timestamp", &micros.to_string()))
}

pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(super) fn side_str(value: Side) -> &'static str {
    value.as_str()
}

fn parse_side(s: &str) -> rusqlite::Result<Side> {
    Side::parse(s).ok_or_else(|| corrupt("side", s))
}

pub(super) fn type_str(value: OrderType) -> &'static str {
    value.as_str()
}

fn parse_type(s: &str) -> rusqlite::Result<OrderType> {
    OrderType::parse(s).ok_or_else(|| corrupt("order type", s))
}

pub(super) fn tif_str(value: TimeInForce) -> &'static str {
    value.as_str()
}

fn parse_tif(s: &str) -> rusqlite::Result<TimeInForce> {
    TimeInForce::parse(s).ok_or_else(|| corrupt("time in force", s))
}

fn parse_status(s: &str) -> rusqlite::Result<OrderStatus> {
    OrderStatus::parse(s).ok_or_else(|| corrupt("order status", s))
}

/// One order as stored, with the simulator's own bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct OrderRow {
    pub seq: i64,
    pub id: String,
    pub client_order_id: String,
    pub symbol: String,
    pub side: Side,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub qty: Decimal,
    pub filled_qty: Decimal,
    pub filled_notional: Decimal,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub status: OrderStatus,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub active_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub stop_triggered: bool,
    pub replaces: Option<String>,
    pub replaced_by: Option<String>,
}

impl OrderRow {
    pub fn remaining(&self) -> Decimal {
        self.qty - self.filled_qty
    }

    pub fn to_broker(&self) -> BrokerOrder {
        BrokerOrder {
            id: self.id.clone(),
            client_order_id: self.client_order_id.clone(),
            symbol: self.symbol.clone(),
            side: self.side,
            qty: self.qty,
            filled_qty: self.filled_qty,
            filled_avg_price: (self.filled_qty > Decimal::ZERO)
                .then(|| super::rules::average(self.filled_notional, self.filled_qty)),
            order_type: self.order_type,
            limit_price: self.limit_price,
            stop_price: self.stop_price,
            time_in_force: self.time_in_force,
            status: self.status,
            submitted_at: self.submitted_at,
            updated_at: self.updated_at,
            replaced_by: self.replaced_by.clone(),
        }
    }
}

const ORDER_COLUMNS: &str =
    "seq, id, client_order_id, symbol, side, order_type, time_in_force, qty, \
     filled_qty, filled_notional, limit_price, stop_price, status, submitted_at, updated_at, \
     active_from, expires_at, stop_triggered, replaces, replaced_by";

fn read_order(row: &Row<'_>) -> rusqlite::Result<OrderRow> {
    let opt_dec = |i: usize| -> rusqlite::Result<Option<Decimal>> {
        row.get::<_, Option<String>>(i)?
            .map(|s| dec(&s))
            .transpose()
    };
    Ok(OrderRow {
        seq: row.get(0)?,
        id: row.get(1)?,
        client_order_id: row.get(2)?,
        symbol: row.get(3)?,
        side: parse_side(&row.get::<_, String>(4)?)?,
        order_type: parse_type(&row.get::<_, String>(5)?)?,
        time_in_force: parse_tif(&row.get::<_, String>(6)?)?,
        qty: dec(&row.get::<_, String>(7)?)?,
        filled_qty: dec(&row.get::<_, String>(8)?)?,
        filled_notional: dec(&row.get::<_, String>(9)?)?,
        limit_price: opt_dec(10)?,
        stop_price: opt_dec(11)?,
        status: parse_status(&row.get::<_, String>(12)?)?,
        submitted_at: time(row.get(13)?)?,
        updated_at: time(row.get(14)?)?,
        active_from: time(row.get(15)?)?,
        expires_at: row.get::<_, Option<i64>>(16)?.map(time).transpose()?,
        stop_triggered: row.get::<_, i64>(17)? != 0,
        replaces: row.get(18)?,
        replaced_by: row.get(19)?,
    })
}

fn query_orders(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> rusqlite::Result<Vec<OrderRow>> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders {filter}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(args, read_order)?;
    rows.collect()
}

pub(super) fn all_orders(conn: &Connection) -> rusqlite::Result<Vec<OrderRow>> {
    query_orders(conn, "ORDER BY seq", [])
}

/// Open orders in the deterministic order (submitted_at, seq).
pub(super) fn open_orders(conn: &Connection) -> rusqlite::Result<Vec<OrderRow>> {
    query_orders(
        conn,
        &format!("WHERE status IN {OPEN_STATUSES} ORDER BY submitted_at, seq"),
        [],
    )
}

pub(super) fn order_by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<OrderRow>> {
    Ok(query_orders(conn, "WHERE id = ?1", [id])?
        .into_iter()
        .next())
}

pub(super) fn order_by_client_id(
    conn: &Connection,
    client_order_id: &str,
) -> rusqlite::Result<Option<OrderRow>> {
    Ok(
        query_orders(conn, "WHERE client_order_id = ?1", [client_order_id])?
            .into_iter()
            .next(),
    )
}

pub(super) fn client_id_exists(conn: &Connection, client_order_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM orders WHERE client_order_id = ?1")?
        .exists([client_order_id])
}

pub(super) fn next_seq(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM orders", [], |r| {
        r.get(0)
    })
}

fn opt_str(d: Option<Decimal>) -> Option<String> {
    d.map(|d| d.to_string())
}

pub(super) fn insert_order(conn: &Connection, o: &OrderRow) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO orders ({ORDER_COLUMNS}) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
    ))?
    .execute(params![
        o.seq,
        o.id,
        o.client_order_id,
        o.symbol,
        side_str(o.side),
        type_str(o.order_type),
        tif_str(o.time_in_force),
        o.qty.to_string(),
        o.filled_qty.to_string(),
        o.filled_notional.to_string(),
        opt_str(o.limit_price),
        opt_str(o.stop_price),
        o.status.as_str(),
        micros(o.submitted_at),
        micros(o.updated_at),
        micros(o.active_from),
        o.expires_at.map(micros),
        i64::from(o.stop_triggered),
        o.replaces,
        o.replaced_by,
    ])?;
    Ok(())
}

/// Writes back the mutable fields of an order.
pub(super) fn update_order(conn: &Connection, o: &OrderRow) -> rusqlite::Result<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE orders SET filled_qty = ?2, filled_notional = ?3, status = ?4, \
             updated_at = ?5, stop_triggered = ?6, replaced_by = ?7 WHERE id = ?1",
        )?
        .execute(params![
            o.id,
            o.filled_qty.to_string(),
            o.filled_notional.to_string(),
            o.status.as_str(),
            micros(o.updated_at),
            i64::from(o.stop_triggered),
            o.replaced_by,
        ])?;
    if changed != 1 {
        return Err(rusqlite::Error::QueryReturnedNoRows);
    }
    Ok(())
}

pub(super) fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
}

pub(super) fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute([key, value])?;
    Ok(())
}

fn required_meta(conn: &Connection, key: &str) -> rusqlite::Result<String> {
    meta(conn, key)?.ok_or_else(|| corrupt("meta key (missing)", key))
}

pub(super) fn now(conn: &Connection) -> rusqlite::Result<DateTime<Utc>> {
    let value = required_meta(conn, KEY_NOW)?;
    time(value.parse().map_err(|_| corrupt("now", &value))?)
}

pub(super) fn set_now(conn: &Connection, now: DateTime<Utc>) -> rusqlite::Result<()> {
    set_meta(conn, KEY_NOW, &micros(now).to_string())
}

pub(super) fn cash(conn: &Connection) -> rusqlite::Result<Decimal> {
    dec(&required_meta(conn, KEY_CASH)?)
}

pub(super) fn set_cash(conn: &Connection, cash: Decimal) -> rusqlite::Result<()> {
    set_meta(conn, KEY_CASH, &cash.to_string())
}

pub(super) fn suspended(conn: &Connection) -> rusqlite::Result<bool> {
    Ok(meta(conn, KEY_SUSPENDED)?.as_deref() == Some("1"))
}

pub(super) fn set_suspended(conn: &Connection, suspended: bool) -> rusqlite::Result<()> {
    set_meta(conn, KEY_SUSPENDED, if suspended { "1" } else { "0" })
}

pub(super) fn positions(conn: &Connection) -> rusqlite::Result<Vec<Position>> {
    let mut stmt =
        conn.prepare_cached("SELECT symbol, qty, avg_entry_price FROM positions ORDER BY symbol")?;
    let rows = stmt.query_map([], |r| {
        Ok(Position {
            symbol: r.get(0)?,
            qty: dec(&r.get::<_, String>(1)?)?,
            avg_entry_price: dec(&r.get::<_, String>(2)?)?,
        })
    })?;
    rows.collect()
}

pub(super) fn position(conn: &Connection, symbol: &str) -> rusqlite::Result<Option<Position>> {
    conn.prepare_cached("SELECT symbol, qty, avg_entry_price FROM positions WHERE symbol = ?1")?
        .query_row([symbol], |r| {
            Ok(Position {
                symbol: r.get(0)?,
                qty: dec(&r.get::<_, String>(1)?)?,
                avg_entry_price: dec(&r.get::<_, String>(2)?)?,
            })
        })
        .optional()
}

/// Stores `position`, or removes the symbol's row when it is flat.
pub(super) fn put_position(conn: &Connection, position: &Position) -> rusqlite::Result<()> {
    if position.qty.is_zero() {
        conn.prepare_cached("DELETE FROM positions WHERE symbol = ?1")?
            .execute([&position.symbol])?;
    } else {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO positions (symbol, qty, avg_entry_price) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![
            position.symbol,
            position.qty.to_string(),
            position.avg_entry_price.to_string()
        ])?;
    }
    Ok(())
}

pub(super) fn insert_fill(conn: &Connection, fill: &SimFill) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO fills (order_id, client_order_id, symbol, side, qty, price, at, commission, slippage) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        fill.order_id,
        fill.client_order_id,
        fill.symbol,
        side_str(fill.side),
        fill.qty.to_string(),
        fill.price.to_string(),
        micros(fill.at),
        fill.commission.to_string(),
        fill.slippage.to_string(),
    ])?;
    Ok(conn.last_insert_rowid())
}

pub(super) fn fills(conn: &Connection) -> rusqlite::Result<Vec<SimFill>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, order_id, client_order_id, symbol, side, qty, price, at, commission, slippage \
         FROM fills ORDER BY seq",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(SimFill {
            seq: r.get(0)?,
            order_id: r.get(1)?,
            client_order_id: r.get(2)?,
            symbol: r.get(3)?,
            side: parse_side(&r.get::<_, String>(4)?)?,
            qty: dec(&r.get::<_, String>(5)?)?,
            price: dec(&r.get::<_, String>(6)?)?,
            at: time(r.get(7)?)?,
            commission: dec(&r.get::<_, String>(8)?)?,
            slippage: dec(&r.get::<_, String>(9)?)?,
        })
    })?;
    rows.collect()
}

pub(super) fn push_fault(
    conn: &Connection,
    method: SimMethod,
    fault: &SimFault,
) -> rusqlite::Result<()> {
    let json = serde_json::to_string(fault).map_err(|e| corrupt("fault", &e.to_string()))?;
    conn.prepare_cached("INSERT INTO faults (method, fault) VALUES (?1, ?2)")?
        .execute([method.as_str(), json.as_str()])?;
    Ok(())
}

/// Removes and returns the oldest fault queued for `method`.
pub(super) fn take_fault(
    conn: &Connection,
    method: SimMethod,
) -> rusqlite::Result<Option<SimFault>> {
    let found: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, fault FROM faults WHERE method = ?1 ORDER BY seq LIMIT 1")?
        .query_row([method.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((seq, json)) = found else {
        return Ok(None);
    };
    conn.prepare_cached("DELETE FROM faults WHERE seq = ?1")?
        .execute([seq])?;
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|_| corrupt("fault", &json))
}

pub(super) fn faults(conn: &Connection) -> rusqlite::Result<Vec<(SimMethod, SimFault)>> {
    let mut stmt = conn.prepare_cached("SELECT method, fault FROM faults ORDER BY seq")?;
    let rows = stmt.query_map([], |r| {
        let method: String = r.get(0)?;
        let fault: String = r.get(1)?;
        let method = SimMethod::parse(&method).ok_or_else(|| corrupt("fault method", &method))?;
        let fault = serde_json::from_str(&fault).map_err(|_| corrupt("fault", &fault))?;
        Ok((method, fault))
    })?;
    rows.collect()
}

pub(super) fn clear_faults(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM faults", [])?;
    Ok(())
}
