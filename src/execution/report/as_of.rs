//! The journal replayed to a point in time: orders as their last recorded change before the
//! cut-off left them, the positions the fills up to it give, and what became of each watchlist
//! candidate of a session. Plain functions over journal rows; no database, no clock.

use crate::broker::{BrokerOrder, OrderType, Side};
use crate::execution::db::{Event, Fill, OrderRow, OrderUpdate};
use crate::execution::ids::{ClientOrderId, Leg};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

/// Where a value shown for a past moment comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Replayed from the journal: the value as it stood at the cut-off.
    AtClose,
    /// The session is not closed yet: the value as it stands now.
    Current,
    /// The journal kept no history of it (recorded before avwap kept order history): the value
    /// as it is now, which may differ from what it was at the cut-off.
    KnownNow,
}

impl Basis {
    /// A marker for tables: nothing for a replayed or current value, `*` for "as known now".
    pub fn mark(self) -> &'static str {
        match self {
            Basis::KnownNow => "*",
            Basis::AtClose | Basis::Current => "",
        }
    }
}

/// One order as it stood at the cut-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderAt {
    pub order: BrokerOrder,
    pub adopted: bool,
    pub basis: Basis,
    /// The instants the journal recorded a change of it, oldest first (empty without history).
    pub recorded: Vec<DateTime<Utc>>,
}

/// The orders known at `cutoff` (recorded before it, or submitted at the broker before it),
/// each as its last change recorded before `cutoff` left it. An order with no recorded
/// history keeps its current row: as at the cut-off when the broker's last change to it came
/// before the cut-off, else "as known now".
pub fn orders_at(
    orders: &[OrderRow],
    updates: &[OrderUpdate],
    cutoff: DateTime<Utc>,
) -> Vec<OrderAt> {
    let mut history: BTreeMap<&str, Vec<&OrderUpdate>> = BTreeMap::new();
    for u in updates {
        history
            .entry(u.client_order_id.as_str())
            .or_default()
            .push(u);
    }
    let mut out = Vec::new();
    for row in orders {
        let changes = history
            .get(row.order.client_order_id.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let recorded_before = changes.iter().any(|u| u.recorded_at < cutoff);
        if !recorded_before && row.order.submitted_at >= cutoff {
            continue;
        }
        let mut order = row.order.clone();
        let basis = match changes.iter().rev().find(|u| u.recorded_at < cutoff) {
            Some(last) => {
                order.status = last.status;
                order.qty = last.qty;
                order.filled_qty = last.filled_qty;
                order.filled_avg_price = last.filled_avg_price;
                order.limit_price = last.limit_price;
                order.stop_price = last.stop_price;
                order.replaced_by = last.replaced_by.clone();
                order.updated_at = last.broker_updated_at;
                Basis::AtClose
            }
            None if changes.is_empty() && order.updated_at < cutoff => Basis::AtClose,
            None => Basis::KnownNow,
        };
        out.push(OrderAt {
            order,
            adopted: row.adopted,
            basis,
            recorded: changes.iter().map(|u| u.recorded_at).collect(),
        });
    }
    out
}

/// One owned position's life (entry to last sell), replayed from the fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub symbol: String,
    /// Shares held at the cut-off (0 once closed).
    pub qty: Decimal,
    pub avg_price: Decimal,
    pub opened_session: NaiveDate,
    pub entry_client_order_id: String,
    pub opened_at: DateTime<Utc>,
    /// When the sell that took it to zero was recorded.
    pub closed_at: Option<DateTime<Utc>>,
    /// Realized P&L of its sells up to the cut-off.
    pub realized_pnl: Decimal,
}

impl Holding {
    pub fn open(&self) -> bool {
        self.closed_at.is_none()
    }
}

/// The owned positions the fills recorded before `cutoff` give, every one since the first
/// fill in the order opened, by the rules the state database moves a position with: a buy
/// adds to an open position at the weighted average cost (6 decimals) or opens a new one; a
/// sell reduces the symbol's last position and realizes (price − average cost) × qty (the
/// figure recorded with the fill when there is one).
pub fn holdings_at(fills: &[Fill], cutoff: DateTime<Utc>) -> Vec<Holding> {
    let mut holdings: Vec<Holding> = Vec::new();
    let mut last: BTreeMap<String, usize> = BTreeMap::new();
    for fill in fills.iter().filter(|f| f.recorded_at < cutoff) {
        let current = last.get(&fill.symbol).copied();
        match fill.side {
            Side::Buy => match current.and_then(|i| holdings.get_mut(i)) {
                Some(h) if h.open() => {
                    let qty = h.qty + fill.qty;
                    if !qty.is_zero() {
                        h.avg_price =
                            ((h.avg_price * h.qty + fill.price * fill.qty) / qty).round_dp(6);
                    }
                    h.qty = qty;
                }
                _ => {
                    let opened_session = ClientOrderId::parse(&fill.client_order_id)
                        .map(|id| id.session)
                        .unwrap_or_else(|| crate::calendar::ny_date(fill.recorded_at));
                    last.insert(fill.symbol.clone(), holdings.len());
                    holdings.push(Holding {
                        symbol: fill.symbol.clone(),
                        qty: fill.qty,
                        avg_price: fill.price,
                        opened_session,
                        entry_client_order_id: fill.client_order_id.clone(),
                        opened_at: fill.recorded_at,
                        closed_at: None,
                        realized_pnl: Decimal::ZERO,
                    });
                }
            },
            Side::Sell => {
                // A sell without a position of ours moves nothing (as in the database).
                let Some(h) = current.and_then(|i| holdings.get_mut(i)) else {
                    continue;
                };
                let realized = fill
                    .realized_pnl
                    .unwrap_or_else(|| ((fill.price - h.avg_price) * fill.qty).round_dp(6));
                h.realized_pnl = (h.realized_pnl + realized).round_dp(6);
                h.qty = (h.qty - fill.qty).max(Decimal::ZERO);
                if h.qty.is_zero() && h.closed_at.is_none() {
                    h.closed_at = Some(fill.recorded_at);
                }
            }
        }
    }
    holdings
}

/// Whether a trim order of the holding's symbol was known at the cut-off (the database marks
/// a position trimmed as soon as its trim order exists).
pub fn trimmed_at(holding: &Holding, orders: &[OrderAt]) -> bool {
    orders.iter().any(|o| {
        o.order.symbol == holding.symbol
            && o.order.submitted_at >= holding.opened_at
            && ClientOrderId::parse(&o.order.client_order_id)
                .is_some_and(|id| id.leg == Leg::Trim && id.session >= holding.opened_session)
    })
}

/// The sell stop of `symbol` working at the cut-off, if any (the newest when several are).
pub fn working_stop<'a>(symbol: &str, orders: &'a [OrderAt]) -> Option<&'a OrderAt> {
    orders
        .iter()
        .filter(|o| {
            o.order.symbol == symbol
                && o.order.side == Side::Sell
                && o.order.order_type == OrderType::Stop
                && o.order.status.is_open()
        })
        .max_by_key(|o| o.order.submitted_at)
}

/// The skip every candidate gets before the entry window opens and after it closes: it says
/// nothing about the candidate, so another reason, when there is one, is the one shown.
pub const OUTSIDE_ENTRY_WINDOW: &str = "outside_entry_window";

/// What became of one watchlist candidate in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CandidateOutcome {
    pub symbol: String,
    /// An entry was decided for it that session.
    pub entered: bool,
    /// When the (first) entry was decided.
    pub entered_at: Option<DateTime<Utc>>,
    /// The reason code of its last skip (the last one other than [`OUTSIDE_ENTRY_WINDOW`] when
    /// there is one), and its detail (none if it was never skipped).
    pub last_reason: Option<String>,
    pub last_detail: Option<String>,
    pub last_at: Option<DateTime<Utc>>,
    /// How many cycles skipped it for its last reason, and for any reason.
    pub cycles_with_last_reason: usize,
    pub cycles_skipped: usize,
    /// Cycles skipped per reason.
    pub reasons: BTreeMap<String, usize>,
}

/// The reason code of an `entry_skipped` event: from its details (`{"reason": …}`), else the
/// message up to the first colon.
pub fn skip_reason(event: &Event) -> String {
    event
        .details
        .as_deref()
        .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_string))
        .unwrap_or_else(|| {
            event
                .message
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
}

/// Every candidate the engine decided on in `events` (one session's), in the order it first
/// appears (the watchlist's order): entered or not, its last skip reason and how many cycles
/// gave it. A cycle skips every candidate it does not enter, so these are the session's
/// watchlist symbols as the engine saw them.
pub fn candidate_outcomes(events: &[Event]) -> Vec<CandidateOutcome> {
    let mut order: Vec<String> = Vec::new();
    let mut by_symbol: BTreeMap<String, CandidateOutcome> = BTreeMap::new();
    for event in events {
        let Some(symbol) = &event.symbol else {
            continue;
        };
        let skipped = match event.kind.as_str() {
            "entry_skipped" => true,
            "entry_decision" => false,
            _ => continue,
        };
        let outcome = by_symbol.entry(symbol.clone()).or_insert_with(|| {
            order.push(symbol.clone());
            CandidateOutcome {
                symbol: symbol.clone(),
                entered: false,
                entered_at: None,
                last_reason: None,
                last_detail: None,
                last_at: None,
                cycles_with_last_reason: 0,
                cycles_skipped: 0,
                reasons: BTreeMap::new(),
            }
        });
        if !skipped {
            outcome.entered = true;
            outcome.entered_at.get_or_insert(event.at);
            continue;
        }
        let reason = skip_reason(event);
        let detail = event
            .message
            .split_once(':')
            .map_or(event.message.as_str(), |(_, d)| d)
            .trim()
            .to_string();
        *outcome.reasons.entry(reason.clone()).or_insert(0) += 1;
        outcome.cycles_skipped += 1;
        let has_telling_reason = outcome
            .last_reason
            .as_deref()
            .is_some_and(|r| r != OUTSIDE_ENTRY_WINDOW);
        if reason == OUTSIDE_ENTRY_WINDOW && has_telling_reason {
            continue;
        }
        outcome.last_reason = Some(reason);
        outcome.last_detail = Some(detail);
        outcome.last_at = Some(event.at);
    }
    order
        .into_iter()
        .filter_map(|symbol| by_symbol.remove(&symbol))
        .map(|mut o| {
            o.cycles_with_last_reason = o
                .last_reason
                .as_ref()
                .and_then(|r| o.reasons.get(r))
                .copied()
                .unwrap_or(0);
            o
        })
        .collect()
}

/// Candidates not entered, counted by their last skip reason.
pub fn symbols_by_last_reason(outcomes: &[CandidateOutcome]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for o in outcomes.iter().filter(|o| !o.entered) {
        if let Some(reason) = &o.last_reason {
            *counts.entry(reason.clone()).or_insert(0) += 1;
        }
    }
    counts
}
