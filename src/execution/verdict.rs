//! The reconciliation verdict: every cycle, what the broker reports (positions, and the stop
//! orders working there) set against what our journal owns. The journal may be lost or rolled
//! back, so a health check that only reads the journal can say "protected" while the broker
//! holds shares nobody guards; this verdict is the broker's side of that picture, recorded by
//! the service (`StateDb::record_verdict`) and read by `avwap-check`.
//!
//! [`judge`] is pure: the engine calls it once per cycle with the cycle's broker reads, the
//! journal's owned positions after those reads were recorded, the symbols with an order of
//! unknown outcome, and the stops the broker acknowledged during the cycle.

use crate::broker::{BrokerError, BrokerOrder, CycleReads, OrderType, Position, Side};
use crate::execution::db::{DbError, IntentState, OwnedPosition, StateDb};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};

/// How one symbol stands between the broker and the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    /// The broker's quantity equals ours and (when the open orders were read) its stops cover it.
    Ok,
    /// The broker holds more shares than the sell stops (and market sells in progress)
    /// working there cover.
    Uncovered,
    /// The broker's quantity differs from the journal's (a position we do not own, or one we
    /// own that the broker lacks or holds in another size).
    Mismatch,
    /// An order of ours for the symbol has an unknown outcome: the quantities cannot be judged
    /// until it is resolved.
    UnknownOrder,
    /// The broker's positions could not be read: nothing is judged.
    Unread,
}

impl RowStatus {
    pub const ALL: &'static [RowStatus] = &[
        RowStatus::Ok,
        RowStatus::Uncovered,
        RowStatus::Mismatch,
        RowStatus::UnknownOrder,
        RowStatus::Unread,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RowStatus::Ok => "ok",
            RowStatus::Uncovered => "uncovered",
            RowStatus::Mismatch => "mismatch",
            RowStatus::UnknownOrder => "unknown_order",
            RowStatus::Unread => "unread",
        }
    }

    pub fn parse(text: &str) -> Option<RowStatus> {
        RowStatus::ALL.iter().copied().find(|s| s.as_str() == text)
    }

    pub fn is_problem(self) -> bool {
        self != RowStatus::Ok
    }
}

/// One symbol of the verdict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VerdictRow {
    pub symbol: String,
    /// Shares the broker reports (0 when it lists none); `None` when positions were unread.
    pub broker_qty: Option<Decimal>,
    /// Shares our journal owns (0 when it owns none).
    pub owned_qty: Decimal,
    /// Unfilled shares of the sell stop orders in the broker's open-order list, whoever placed
    /// them; `None` when the open orders were unread.
    pub stop_qty: Option<Decimal>,
    /// Unfilled shares of sell stops the broker acknowledged during this cycle, after the
    /// open-order list was read (a fill is protected in the same cycle it is seen).
    pub stop_qty_placed: Decimal,
    /// Unfilled shares of sell market orders in the broker's open-order list: shares being
    /// sold now. A trim resizes the stop to what it keeps before its market sell fills, so
    /// those shares are covered by the sale; `None` when the open orders were unread.
    pub selling_qty: Option<Decimal>,
    pub status: RowStatus,
    /// When this problem was first seen, carried over while consecutive verdicts report it;
    /// `None` for an `ok` row.
    pub first_seen: Option<DateTime<Utc>>,
}

impl VerdictRow {
    /// Shares the broker's stops and market sells cover; `None` when the orders were unread.
    pub fn covered_qty(&self) -> Option<Decimal> {
        Some(self.stop_qty? + self.stop_qty_placed + self.selling_qty?)
    }

    /// The broker's sell stops alone cover every share it holds (known only when both the
    /// positions and the orders were read).
    pub fn stops_cover(&self) -> bool {
        matches!((self.broker_qty, self.stop_qty), (Some(held), Some(stops)) if held <= stops + self.stop_qty_placed)
    }

    /// A problem present in an earlier verdict too (not only in this one).
    pub fn persists(&self, at: DateTime<Utc>) -> bool {
        self.status.is_problem() && self.first_seen.is_some_and(|t| t < at)
    }
}

/// The broker against the journal, as one cycle saw them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    /// The cycle's instant.
    pub at: DateTime<Utc>,
    pub broker_positions_read: bool,
    pub open_orders_read: bool,
    /// Why the positions read failed.
    pub positions_error: Option<String>,
    /// Why the open-orders read failed.
    pub open_orders_error: Option<String>,
    /// One row per symbol held at the broker, owned by the journal, or with an order of
    /// unknown outcome; sorted by symbol.
    pub rows: Vec<VerdictRow>,
}

impl Verdict {
    /// `first_seen` from `previous` for every problem it already had with the same status;
    /// a problem seen for the first time keeps this verdict's instant.
    pub fn carry_over(mut self, previous: Option<&Verdict>) -> Verdict {
        let Some(previous) = previous.filter(|p| p.at < self.at) else {
            return self;
        };
        for row in &mut self.rows {
            if !row.status.is_problem() {
                continue;
            }
            if let Some(earlier) = previous
                .rows
                .iter()
                .find(|r| r.symbol == row.symbol && r.status == row.status)
                .and_then(|r| r.first_seen)
            {
                row.first_seen = Some(earlier.min(self.at));
            }
        }
        self
    }

    pub fn problems(&self) -> impl Iterator<Item = &VerdictRow> {
        self.rows.iter().filter(|r| r.status.is_problem())
    }
}

/// What the broker answered this cycle, kept for the verdict (the reads themselves are
/// consumed by recording them).
#[derive(Debug, Clone)]
pub struct BrokerView {
    positions: Result<Vec<Position>, String>,
    open_orders: Result<Vec<BrokerOrder>, String>,
    /// Symbols whose position the broker listed with numbers that do not read.
    unreadable_positions: BTreeSet<String>,
}

impl BrokerView {
    pub fn of(reads: &CycleReads) -> BrokerView {
        let mut view = BrokerView::new(&reads.positions, &reads.open_orders);
        view.unreadable_positions = reads
            .unreadable_positions
            .iter()
            .map(|p| p.symbol.clone())
            .collect();
        view
    }

    pub fn new(
        positions: &Result<Vec<Position>, BrokerError>,
        open_orders: &Result<Vec<BrokerOrder>, BrokerError>,
    ) -> BrokerView {
        BrokerView {
            positions: positions.clone().map_err(|e| e.to_string()),
            open_orders: open_orders.clone().map_err(|e| e.to_string()),
            unreadable_positions: BTreeSet::new(),
        }
    }
}

/// A sell stop (stop-market) order: what protects a long position at the broker.
fn is_sell_stop(order: &BrokerOrder) -> bool {
    order.side == Side::Sell && order.order_type == OrderType::Stop && order.status.is_open()
}

/// A sell market order: shares being sold now (our trims, exits and flattens).
fn is_market_sell(order: &BrokerOrder) -> bool {
    order.side == Side::Sell && order.order_type == OrderType::Market && order.status.is_open()
}

/// Unfilled shares per symbol of the orders `keep` selects.
fn unfilled_by_symbol(
    orders: &[BrokerOrder],
    keep: fn(&BrokerOrder) -> bool,
) -> BTreeMap<&str, Decimal> {
    let mut by_symbol = BTreeMap::new();
    for o in orders.iter().filter(|o| keep(o)) {
        *by_symbol.entry(o.symbol.as_str()).or_insert(Decimal::ZERO) += unfilled(o);
    }
    by_symbol
}

fn unfilled(order: &BrokerOrder) -> Decimal {
    (order.qty - order.filled_qty).max(Decimal::ZERO)
}

/// The verdict of one cycle at `at`: `broker` as read at its start, `owned` (the journal's open
/// positions after the reads were recorded, so both sides describe the same moment),
/// `blocked` (symbols with an order of unknown outcome) and `placed` (sell stops the broker
/// acknowledged during the cycle). `first_seen` is `at` for every problem; see
/// [`Verdict::carry_over`].
pub fn judge(
    at: DateTime<Utc>,
    broker: &BrokerView,
    owned: &[OwnedPosition],
    blocked: &BTreeSet<String>,
    placed: &[BrokerOrder],
) -> Verdict {
    let broker_qty: Option<BTreeMap<&str, Decimal>> = broker.positions.as_ref().ok().map(|ps| {
        let mut by_symbol = BTreeMap::new();
        for p in ps {
            *by_symbol.entry(p.symbol.as_str()).or_insert(Decimal::ZERO) += p.qty;
        }
        by_symbol
    });
    let stop_qty = broker
        .open_orders
        .as_ref()
        .ok()
        .map(|os| unfilled_by_symbol(os, is_sell_stop));
    let selling_qty = broker
        .open_orders
        .as_ref()
        .ok()
        .map(|os| unfilled_by_symbol(os, is_market_sell));
    // Counted once even if the broker's list already had it (a read racing the placement).
    let listed: BTreeSet<&str> = broker
        .open_orders
        .as_ref()
        .map(|os| os.iter().map(|o| o.id.as_str()).collect())
        .unwrap_or_default();
    let mut placed_qty: BTreeMap<&str, Decimal> = BTreeMap::new();
    for o in placed
        .iter()
        .filter(|o| is_sell_stop(o) && !listed.contains(o.id.as_str()))
    {
        *placed_qty.entry(o.symbol.as_str()).or_insert(Decimal::ZERO) += unfilled(o);
    }
    let owned_qty: BTreeMap<&str, Decimal> = owned
        .iter()
        .filter(|p| p.open)
        .map(|p| (p.symbol.as_str(), p.qty))
        .collect();

    let mut symbols: BTreeSet<&str> = owned_qty.keys().copied().collect();
    symbols.extend(blocked.iter().map(String::as_str));
    symbols.extend(broker.unreadable_positions.iter().map(String::as_str));
    if let Some(held) = &broker_qty {
        symbols.extend(held.iter().filter(|(_, q)| !q.is_zero()).map(|(s, _)| *s));
    }

    let rows = symbols
        .into_iter()
        .map(|symbol| {
            // A position listed with numbers that do not read is unread, never "none".
            let broker_qty = broker_qty
                .as_ref()
                .filter(|_| !broker.unreadable_positions.contains(symbol))
                .map(|m| m.get(symbol).copied().unwrap_or(Decimal::ZERO));
            let owned_qty = owned_qty.get(symbol).copied().unwrap_or(Decimal::ZERO);
            let stop_qty = stop_qty
                .as_ref()
                .map(|m| m.get(symbol).copied().unwrap_or(Decimal::ZERO));
            let stop_qty_placed = placed_qty.get(symbol).copied().unwrap_or(Decimal::ZERO);
            let selling_qty = selling_qty
                .as_ref()
                .map(|m| m.get(symbol).copied().unwrap_or(Decimal::ZERO));
            let covered = stop_qty
                .zip(selling_qty)
                .map(|(s, m)| s + stop_qty_placed + m);
            // Uncovered first: shares without a stop are at risk whatever the journal says.
            let status = match (broker_qty, covered) {
                (Some(held), Some(covered)) if held > covered => RowStatus::Uncovered,
                _ if blocked.contains(symbol) => RowStatus::UnknownOrder,
                (None, _) => RowStatus::Unread,
                (Some(held), _) if held != owned_qty => RowStatus::Mismatch,
                _ => RowStatus::Ok,
            };
            VerdictRow {
                symbol: symbol.to_string(),
                broker_qty,
                owned_qty,
                stop_qty,
                stop_qty_placed,
                selling_qty,
                status,
                first_seen: status.is_problem().then_some(at),
            }
        })
        .collect();
    Verdict {
        at,
        broker_positions_read: broker.positions.is_ok(),
        open_orders_read: broker.open_orders.is_ok(),
        positions_error: broker.positions.as_ref().err().cloned(),
        open_orders_error: broker.open_orders.as_ref().err().cloned(),
        rows,
    }
}

/// The sell stops this cycle placed (journaled at `now`) that the broker acknowledged and that
/// are still open as recorded: the broker's own answer to the order, after the open-order list
/// was read.
pub fn stops_placed_in_cycle(
    db: &StateDb,
    now: DateTime<Utc>,
) -> Result<Vec<BrokerOrder>, DbError> {
    let mut placed = Vec::new();
    for row in db.open_orders()? {
        if !is_sell_stop(&row.order) {
            continue;
        }
        let this_cycle = db
            .intent(&row.order.client_order_id)?
            .is_some_and(|i| i.created_at == now && i.state == IntentState::Acknowledged);
        if this_cycle {
            placed.push(row.order);
        }
    }
    Ok(placed)
}

#[cfg(test)]
mod tests;
