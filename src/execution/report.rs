//! `avwap-execution report`: one session's decisions, orders, fills, stops and P&L from the
//! state database, as a table or JSON.

use crate::calendar;
use crate::execution::db::{DbError, StateDb};
use crate::execution::ids::ClientOrderId;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct DayReport {
    pub date: NaiveDate,
    /// Entry decisions taken (with their reasoning) and skips counted by reason.
    pub entries_taken: Vec<Decision>,
    pub skipped_by_reason: BTreeMap<String, usize>,
    /// Every candidate's last skip reason of the day.
    pub last_skip_by_symbol: BTreeMap<String, String>,
    pub orders: Vec<OrderLine>,
    pub fills: Vec<FillLine>,
    pub stops: Vec<StopLine>,
    pub positions: Vec<PositionLine>,
    /// Realized P&L of positions opened that day or earlier, as recorded by sells that day.
    pub realized_pnl_today: Decimal,
    pub events: usize,
}

#[derive(Debug, Serialize)]
pub struct Decision {
    pub at: String,
    pub symbol: String,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct OrderLine {
    pub client_order_id: String,
    pub symbol: String,
    pub side: String,
    pub order_type: String,
    pub qty: Decimal,
    pub filled_qty: Decimal,
    pub filled_avg_price: Option<Decimal>,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub status: String,
}

#[derive(Debug, Serialize)]
pub struct FillLine {
    pub at: String,
    pub client_order_id: String,
    pub symbol: String,
    pub side: String,
    pub qty: Decimal,
    pub price: Decimal,
    pub realized_pnl: Option<Decimal>,
}

#[derive(Debug, Serialize)]
pub struct StopLine {
    pub symbol: String,
    pub client_order_id: String,
    pub stop_price: Decimal,
    pub qty: Decimal,
}

#[derive(Debug, Serialize)]
pub struct PositionLine {
    pub symbol: String,
    pub status: &'static str,
    pub qty: Decimal,
    pub avg_price: Decimal,
    pub stop_price: Decimal,
    pub target_r1: Option<Decimal>,
    pub target_r2: Option<Decimal>,
    pub trimmed: bool,
    pub opened_session: NaiveDate,
    pub realized_pnl: Decimal,
}

/// Build the report of session `date`.
pub fn day_report(db: &StateDb, date: NaiveDate) -> Result<DayReport, DbError> {
    let events = db.events(Some(date))?;
    let mut entries_taken = Vec::new();
    let mut skipped_by_reason = BTreeMap::new();
    let mut last_skip_by_symbol = BTreeMap::new();
    for e in &events {
        match e.kind.as_str() {
            "entry_decision" => entries_taken.push(Decision {
                at: e.at.to_rfc3339(),
                symbol: e.symbol.clone().unwrap_or_default(),
                message: e.message.clone(),
            }),
            "entry_skipped" => {
                let reason = e.message.split(':').next().unwrap_or("").to_string();
                *skipped_by_reason.entry(reason.clone()).or_insert(0) += 1;
                if let Some(symbol) = &e.symbol {
                    last_skip_by_symbol.insert(symbol.clone(), reason);
                }
            }
            _ => {}
        }
    }
    let orders: Vec<OrderLine> = db
        .all_orders()?
        .into_iter()
        .filter(|row| {
            ClientOrderId::parse(&row.order.client_order_id).map(|id| id.session) == Some(date)
                || calendar::ny_date(row.order.updated_at) == date
        })
        .map(|row| {
            let o = row.order;
            OrderLine {
                client_order_id: o.client_order_id,
                symbol: o.symbol,
                side: o.side.as_str().to_string(),
                order_type: o.order_type.as_str().to_string(),
                qty: o.qty,
                filled_qty: o.filled_qty,
                filled_avg_price: o.filled_avg_price,
                limit_price: o.limit_price,
                stop_price: o.stop_price,
                status: o.status.to_string(),
            }
        })
        .collect();
    // Each sell fill carries its realized P&L against the cost at that moment, so a past
    // day's figure never changes when the symbol is traded again.
    let day_fills: Vec<_> = db
        .fills()?
        .into_iter()
        .filter(|f| calendar::ny_date(f.recorded_at) == date)
        .collect();
    let realized_pnl_today: Decimal = day_fills.iter().filter_map(|f| f.realized_pnl).sum();
    let fills: Vec<FillLine> = day_fills
        .into_iter()
        .map(|f| FillLine {
            at: f.recorded_at.to_rfc3339(),
            client_order_id: f.client_order_id,
            symbol: f.symbol,
            side: f.side.as_str().to_string(),
            qty: f.qty,
            price: f.price,
            realized_pnl: f.realized_pnl,
        })
        .collect();
    // Open positions opened by this date, and positions closed on or after it (history).
    let line = |p: crate::execution::db::OwnedPosition| PositionLine {
        status: if p.open { "open" } else { "closed" },
        symbol: p.symbol,
        qty: p.qty,
        avg_price: p.avg_price,
        stop_price: p.stop_price,
        target_r1: p.target_r1,
        target_r2: p.target_r2,
        trimmed: p.trimmed,
        opened_session: p.opened_session,
        realized_pnl: p.realized_pnl,
    };
    let mut positions: Vec<PositionLine> = db
        .closed_positions()?
        .into_iter()
        .filter(|(p, closed)| p.opened_session <= date && calendar::ny_date(*closed) >= date)
        .map(|(p, _)| line(p))
        .collect();
    positions.extend(
        db.open_positions()?
            .into_iter()
            .filter(|p| p.opened_session <= date)
            .map(line),
    );
    // Stops are the ones standing now: listed for the report of the latest session only.
    let latest = db.last_heartbeat()?.map(calendar::ny_date);
    let mut stops = Vec::new();
    for p in db
        .open_positions()?
        .into_iter()
        .filter(|_| latest.is_none_or(|l| l <= date))
    {
        if let Some(s) = db.stop(&p.symbol)? {
            stops.push(StopLine {
                symbol: s.symbol,
                client_order_id: s.client_order_id,
                stop_price: s.stop_price,
                qty: s.qty,
            });
        }
    }
    Ok(DayReport {
        date,
        entries_taken,
        skipped_by_reason,
        last_skip_by_symbol,
        orders,
        fills,
        stops,
        positions,
        realized_pnl_today: realized_pnl_today.round_dp(2),
        events: events.len(),
    })
}

fn opt(d: Option<Decimal>) -> String {
    d.map(|d| d.to_string()).unwrap_or_else(|| "-".into())
}

/// The report as text tables.
pub fn render_table(r: &DayReport) -> String {
    let mut out = format!("avwap execution report for {}\n\n", r.date);
    out.push_str(&format!("Entries taken: {}\n", r.entries_taken.len()));
    for d in &r.entries_taken {
        out.push_str(&format!("  {}  {:<6} {}\n", d.at, d.symbol, d.message));
    }
    out.push_str("Skips by reason:\n");
    for (reason, n) in &r.skipped_by_reason {
        out.push_str(&format!("  {reason:<24} {n}\n"));
    }
    out.push_str(&format!("\nOrders ({}):\n", r.orders.len()));
    out.push_str(&format!(
        "  {:<28} {:<6} {:<4} {:<6} {:>6} {:>6} {:>9} {:>9} {:>9}  {}\n",
        "client order id",
        "symbol",
        "side",
        "type",
        "qty",
        "filled",
        "avg",
        "limit",
        "stop",
        "status"
    ));
    for o in &r.orders {
        out.push_str(&format!(
            "  {:<28} {:<6} {:<4} {:<6} {:>6} {:>6} {:>9} {:>9} {:>9}  {}\n",
            o.client_order_id,
            o.symbol,
            o.side,
            o.order_type,
            o.qty,
            o.filled_qty,
            opt(o.filled_avg_price),
            opt(o.limit_price),
            opt(o.stop_price),
            o.status
        ));
    }
    out.push_str(&format!("\nFills ({}):\n", r.fills.len()));
    for f in &r.fills {
        out.push_str(&format!(
            "  {}  {:<28} {:<6} {:<4} {:>6} @ {}\n",
            f.at, f.client_order_id, f.symbol, f.side, f.qty, f.price
        ));
    }
    out.push_str(&format!("\nProtective stops ({}):\n", r.stops.len()));
    for s in &r.stops {
        out.push_str(&format!(
            "  {:<6} {:>6} @ {}  ({})\n",
            s.symbol, s.qty, s.stop_price, s.client_order_id
        ));
    }
    out.push_str(&format!("\nPositions ({}):\n", r.positions.len()));
    for p in &r.positions {
        out.push_str(&format!(
            "  {:<6} {:<6} qty {:>6} avg {:>9} stop {:>9} R1 {:>9} R2 {:>9} trimmed {:<5} realized {}\n",
            p.symbol,
            p.status,
            p.qty,
            p.avg_price,
            p.stop_price,
            opt(p.target_r1),
            opt(p.target_r2),
            p.trimmed,
            p.realized_pnl
        ));
    }
    out.push_str(&format!("\nRealized P&L today: {}\n", r.realized_pnl_today));
    out
}
