//! The last reconciliation verdict (see [`crate::execution::verdict`]): one row in
//! `reconciliation` and its per-symbol rows in `reconciliation_rows`, replaced together every
//! cycle. Only the last verdict is kept: `first_seen` carries each problem's age, which is all
//! `avwap-check` needs to tell a one-cycle race from a lasting disagreement.

use super::{ts, DbError, StateDb};
use crate::execution::verdict::{RowStatus, Verdict, VerdictRow};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use rust_decimal::Decimal;
use std::path::Path;
use std::str::FromStr;

impl StateDb {
    /// Replace the recorded verdict with `verdict`, its problems' `first_seen` carried over
    /// from the verdict it replaces ([`Verdict::carry_over`]), in one transaction. Returns the
    /// verdict as stored.
    pub fn record_verdict(&mut self, verdict: &Verdict) -> Result<Verdict, DbError> {
        let path = self.path.clone();
        let err = |what| super::sql_at(&path, what);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("starting to record the reconciliation verdict"))?;
        let previous = read_verdict(&tx, &path)?;
        let stored = verdict.clone().carry_over(previous.as_ref());
        tx.execute(
            "INSERT INTO reconciliation (id, at, positions_read, open_orders_read,
                positions_error, open_orders_error)
             VALUES (1, ?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET at = excluded.at,
                positions_read = excluded.positions_read,
                open_orders_read = excluded.open_orders_read,
                positions_error = excluded.positions_error,
                open_orders_error = excluded.open_orders_error",
            params![
                ts(stored.at),
                stored.broker_positions_read,
                stored.open_orders_read,
                stored.positions_error,
                stored.open_orders_error,
            ],
        )
        .map_err(err("recording the reconciliation verdict"))?;
        tx.execute("DELETE FROM reconciliation_rows", [])
            .map_err(err("recording the reconciliation verdict"))?;
        for row in &stored.rows {
            tx.execute(
                "INSERT INTO reconciliation_rows (symbol, broker_qty, owned_qty, stop_qty,
                    stop_qty_placed, selling_qty, status, first_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    row.symbol,
                    row.broker_qty.map(|q| q.to_string()),
                    row.owned_qty.to_string(),
                    row.stop_qty.map(|q| q.to_string()),
                    row.stop_qty_placed.to_string(),
                    row.selling_qty.map(|q| q.to_string()),
                    row.status.as_str(),
                    row.first_seen.map(ts),
                ],
            )
            .map_err(err("recording the reconciliation verdict"))?;
        }
        tx.commit()
            .map_err(err("committing the reconciliation verdict"))?;
        Ok(stored)
    }

    /// The verdict of the last cycle that recorded one, if any.
    pub fn last_verdict(&self) -> Result<Option<Verdict>, DbError> {
        read_verdict(&self.conn, &self.path)
    }
}

fn read_verdict(conn: &Connection, path: &Path) -> Result<Option<Verdict>, DbError> {
    let sql = |source| DbError::Sql {
        path: path.to_path_buf(),
        what: "reading the reconciliation verdict",
        source,
    };
    let corrupt = |what: &'static str, value: &str| DbError::Corrupt {
        path: path.to_path_buf(),
        what,
        value: value.to_string(),
    };
    let time = |what, s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| corrupt(what, s))
    };
    let dec = |what, s: &str| Decimal::from_str(s).map_err(|_| corrupt(what, s));
    type Head = (String, bool, bool, Option<String>, Option<String>);
    let head: Option<Head> = conn
        .query_row(
            "SELECT at, positions_read, open_orders_read, positions_error, open_orders_error
             FROM reconciliation WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()
        .map_err(sql)?;
    let Some((at, positions_read, orders_read, positions_error, orders_error)) = head else {
        return Ok(None);
    };
    type Raw = (
        String,
        Option<String>,
        String,
        Option<String>,
        String,
        Option<String>,
        String,
        Option<String>,
    );
    let raw: Vec<Raw> = {
        let mut stmt = conn
            .prepare(
                "SELECT symbol, broker_qty, owned_qty, stop_qty, stop_qty_placed, selling_qty,
                    status, first_seen FROM reconciliation_rows ORDER BY symbol",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)?
    };
    let mut rows = Vec::with_capacity(raw.len());
    for (symbol, broker, owned, stop, placed, selling, status, first_seen) in raw {
        rows.push(VerdictRow {
            broker_qty: broker
                .map(|q| dec("reconciliation_rows.broker_qty", &q))
                .transpose()?,
            owned_qty: dec("reconciliation_rows.owned_qty", &owned)?,
            stop_qty: stop
                .map(|q| dec("reconciliation_rows.stop_qty", &q))
                .transpose()?,
            stop_qty_placed: dec("reconciliation_rows.stop_qty_placed", &placed)?,
            selling_qty: selling
                .map(|q| dec("reconciliation_rows.selling_qty", &q))
                .transpose()?,
            status: RowStatus::parse(&status)
                .ok_or_else(|| corrupt("reconciliation_rows.status", &status))?,
            first_seen: first_seen
                .map(|t| time("reconciliation_rows.first_seen", &t))
                .transpose()?,
            symbol,
        });
    }
    Ok(Some(Verdict {
        at: time("reconciliation.at", &at)?,
        broker_positions_read: positions_read,
        open_orders_read: orders_read,
        positions_error,
        open_orders_error: orders_error,
        rows,
    }))
}
