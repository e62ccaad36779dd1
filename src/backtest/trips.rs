//! Round trips from the simulated broker's fills: our client order ids say which leg each fill
//! was (entry, stop, trim, exit, flatten) and which session's watchlist row opened the
//! position; a position still open at the end is valued at the last close.
//!
//! Prices here are the market's (the bar price before slippage), so `gross_pnl` is the
//! strategy's and `costs` (commission plus slippage, both recorded per fill) what the account
//! paid on top: `net_pnl` is exactly the account's cash result.

use crate::broker::sim::SimFill;
use crate::broker::Side;
use crate::execution::ids::{ClientOrderId, Leg};
use crate::performance::{ExitReason, RoundTrip};
use crate::watchlist::WatchlistRow;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::{BTreeMap, HashMap};

/// Decimal places of the average prices in a round trip.
const PRICE_DP: u32 = 6;

/// Where the last positions are valued: the last session's close.
pub struct EndOfRun<'a> {
    pub at: DateTime<Utc>,
    pub closes: &'a HashMap<String, Decimal>,
}

/// A position being followed from its first entry fill.
struct OpenTrip {
    scan_date: NaiveDate,
    entry_time: DateTime<Utc>,
    held: Decimal,
    bought: Decimal,
    bought_notional: Decimal,
    sold: Decimal,
    sold_notional: Decimal,
    costs: Decimal,
    traded_notional: Decimal,
    trimmed: bool,
}

/// The round trips of `fills` (in the order they happened), ascending by entry time then
/// symbol. `exit_reasons` says, per client order id of an `ex` leg, whether it sold at R2 or
/// because the price was through the stop level (the engine decides both with one leg);
/// `rows` are the watchlist rows by (scan date, symbol).
pub fn round_trips(
    fills: &[SimFill],
    exit_reasons: &HashMap<String, ExitReason>,
    rows: &HashMap<(NaiveDate, String), WatchlistRow>,
    end: &EndOfRun<'_>,
) -> Vec<RoundTrip> {
    let mut open: BTreeMap<String, OpenTrip> = BTreeMap::new();
    let mut trips = Vec::new();
    for fill in fills {
        let Some(id) = ClientOrderId::parse(&fill.client_order_id) else {
            continue;
        };
        let per_share_slippage = if fill.qty.is_zero() {
            Decimal::ZERO
        } else {
            fill.slippage / fill.qty
        };
        match fill.side {
            Side::Buy => {
                let trip = open.entry(fill.symbol.clone()).or_insert(OpenTrip {
                    scan_date: id.session,
                    entry_time: fill.at,
                    held: Decimal::ZERO,
                    bought: Decimal::ZERO,
                    bought_notional: Decimal::ZERO,
                    sold: Decimal::ZERO,
                    sold_notional: Decimal::ZERO,
                    costs: Decimal::ZERO,
                    traded_notional: Decimal::ZERO,
                    trimmed: false,
                });
                trip.held += fill.qty;
                trip.bought += fill.qty;
                trip.bought_notional += fill.qty * (fill.price - per_share_slippage);
                trip.costs += fill.commission + fill.slippage;
                trip.traded_notional += fill.qty * fill.price;
            }
            Side::Sell => {
                let Some(trip) = open.get_mut(&fill.symbol) else {
                    continue;
                };
                trip.held -= fill.qty;
                trip.sold += fill.qty;
                trip.sold_notional += fill.qty * (fill.price + per_share_slippage);
                trip.costs += fill.commission + fill.slippage;
                trip.traded_notional += fill.qty * fill.price;
                trip.trimmed |= id.leg == Leg::Trim;
                if trip.held <= Decimal::ZERO {
                    let reason = match id.leg {
                        Leg::Stop(_) => ExitReason::Stop,
                        Leg::Flatten => ExitReason::Flatten,
                        Leg::Exit => exit_reasons
                            .get(&fill.client_order_id)
                            .copied()
                            .unwrap_or(ExitReason::StopLevel),
                        // A trim never sells the whole position; if one did, it sold at R1.
                        Leg::Trim | Leg::Entry => ExitReason::TargetR2,
                    };
                    if let Some(trip) = open.remove(&fill.symbol) {
                        trips.push(close(&fill.symbol, trip, fill.at, reason, rows));
                    }
                }
            }
        }
    }
    for (symbol, mut trip) in open {
        // Valued, not sold: no costs for the last leg.
        let close_price = end.closes.get(&symbol).copied().unwrap_or(Decimal::ZERO);
        trip.sold_notional += trip.held * close_price;
        trip.sold += trip.held;
        trips.push(close(
            &symbol,
            trip,
            end.at,
            ExitReason::EndOfBacktest,
            rows,
        ));
    }
    trips.sort_by(|a, b| (a.entry_time, &a.symbol).cmp(&(b.entry_time, &b.symbol)));
    trips
}

fn average(notional: Decimal, qty: Decimal) -> Decimal {
    if qty.is_zero() {
        return Decimal::ZERO;
    }
    (notional / qty)
        .round_dp_with_strategy(PRICE_DP, RoundingStrategy::MidpointNearestEven)
        .normalize()
}

fn close(
    symbol: &str,
    trip: OpenTrip,
    exit_time: DateTime<Utc>,
    exit_reason: ExitReason,
    rows: &HashMap<(NaiveDate, String), WatchlistRow>,
) -> RoundTrip {
    let row = rows.get(&(trip.scan_date, symbol.to_string()));
    let entry_price = average(trip.bought_notional, trip.bought);
    let exit_price = average(trip.sold_notional, trip.sold);
    // Exact from the notionals (the averages are rounded).
    let gross_pnl = trip.sold_notional - trip.bought_notional;
    let net_pnl = gross_pnl - trip.costs;
    let initial_stop = row.map_or(Decimal::ZERO, |r| r.stop_loss);
    let risk = trip.bought * (entry_price - initial_stop);
    // No risk taken (a stop at or above the entry) has no R multiple: 0 rather than infinite.
    let r_multiple = if risk > Decimal::ZERO {
        (net_pnl / risk).to_f64().unwrap_or(0.0)
    } else {
        0.0
    };
    RoundTrip {
        symbol: symbol.to_string(),
        scan_date: trip.scan_date,
        anchor_date: row.map_or(trip.scan_date, |r| r.anchor_date),
        entry_level: row.map_or(Decimal::ZERO, |r| r.entry_level),
        entry_time: trip.entry_time,
        exit_time,
        entry_price,
        exit_price,
        qty: trip.bought,
        initial_stop,
        target_r1: row.map_or(Decimal::ZERO, |r| r.target_r1),
        target_r2: row.map_or(Decimal::ZERO, |r| r.target_r2),
        trimmed: trip.trimmed,
        exit_reason,
        gross_pnl,
        costs: trip.costs,
        net_pnl,
        r_multiple,
        traded_notional: trip.traded_notional,
    }
}
