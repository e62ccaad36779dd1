//! One execution cycle, in an order chosen so that protection never waits for anything else:
//! resolve unknown order outcomes → refresh our orders (fills) → adopt our orders the
//! database does not know → reconcile positions → protect every owned position with a GTC stop
//! for its full quantity → exits (R2 exit, R1 trim, break-even stop) → entries (only from
//! today's fresh watchlist, never with the kill switch engaged). Every decision is an event in
//! the state database. A failure on one symbol is logged and isolated to that symbol.

use crate::broker::{BrokerError, BrokerOrder, OrderType, Position, Side, TimeInForce};
use crate::calendar::{self, Session};
use crate::execution::config::ExecutionConfig;
use crate::execution::db::{EntryPlan, Intent, IntentState, OwnedPosition};
use crate::execution::ids::{self, ClientOrderId, Leg};
use crate::execution::lifecycle::{LifecycleError, OrderDesk, Placement};
use crate::market_data::intraday::{IntradayFeed, MarketSnapshot};
use crate::watchlist::WatchlistRow;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::{BTreeMap, BTreeSet};

/// Today's watchlist as the engine sees it.
#[derive(Debug, Clone)]
pub enum WatchlistInput {
    /// Valid and for today's session.
    Fresh(Vec<WatchlistRow>),
    /// Missing, stale or invalid: no entries, exits continue.
    Unavailable(String),
}

pub struct CycleInputs<'a> {
    pub watchlist: &'a WatchlistInput,
    /// `Some(source)` when the kill switch is engaged.
    pub kill_switch: Option<String>,
    pub feed: &'a dyn IntradayFeed,
    pub config: &'a ExecutionConfig,
    /// Entries are refused in this mode (e.g. flatten runs).
    pub allow_entries: bool,
}

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CycleReport {
    pub market_open: bool,
    pub phase: &'static str,
    pub entries_sent: u32,
    pub stops_placed: u32,
    pub stops_replaced: u32,
    pub exits_sent: u32,
    pub trims_sent: u32,
    pub blocked_symbols: Vec<String>,
    pub warnings: Vec<String>,
}

/// Prices sent to the broker sit on the tick: cents from $1, hundredths of a cent below.
pub fn to_tick(price: Decimal) -> Decimal {
    let dp = if price >= Decimal::ONE { 2 } else { 4 };
    price.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven)
}

fn decimal(x: f64) -> Option<Decimal> {
    Decimal::from_f64(x).filter(|_| x.is_finite())
}

fn is_stop(order: &BrokerOrder) -> bool {
    order.side == Side::Sell && order.order_type == OrderType::Stop
}

/// Runs one cycle against the broker behind `desk`.
pub fn run_cycle(
    desk: &mut OrderDesk<'_>,
    inputs: &CycleInputs<'_>,
) -> Result<CycleReport, LifecycleError> {
    let mut report = CycleReport::default();
    let now = desk.now;
    let session = crate::execution::phases::todays_session(now);
    let phase = crate::execution::phases::phase(now, inputs.config);
    let market_open = phase.market_open();
    report.market_open = market_open;
    report.phase = phase.as_str();

    // 1. Unknown outcomes first: a symbol with an unresolved order gets nothing else.
    let blocked: BTreeSet<String> = desk.resolve_unresolved()?.into_iter().collect();
    report.blocked_symbols = blocked.iter().cloned().collect();

    // 2. Our orders: fills and final states.
    let broker_open = match desk.broker.open_orders() {
        Ok(orders) => Some(orders),
        Err(e) => {
            auth_is_fatal(&e)?;
            report
                .warnings
                .push(format!("open orders unavailable: {e}"));
            None
        }
    };
    desk.refresh_open_orders(broker_open.as_deref().unwrap_or(&[]))?;

    // 3. Orders with our prefix that the database does not know (a lost database, another
    // host): adopt them. Everything else at the broker is reported and never touched.
    if let Some(open) = &broker_open {
        for order in open {
            if desk.db.order(&order.client_order_id)?.is_some() {
                continue;
            }
            if ids::is_ours(&order.client_order_id) {
                desk.record(order, true)?;
                desk.event(
                    "order_adopted",
                    Some(&order.symbol),
                    Some(&order.client_order_id),
                    "an open order with our client-id prefix was unknown to the database; adopted",
                )?;
            } else {
                desk.event_once(
                    "foreign_order",
                    &order.symbol,
                    format!(
                        "open order {} ({}) is not ours; reported, never touched",
                        order.client_order_id, order.id
                    ),
                )?;
            }
        }
    }

    // 4. Positions: the broker's report against ours. A failed report is not "flat".
    let broker_positions: Option<BTreeMap<String, Position>> = match desk.broker.positions() {
        Ok(list) => Some(list.into_iter().map(|p| (p.symbol.clone(), p)).collect()),
        Err(e) => {
            auth_is_fatal(&e)?;
            report.warnings.push(format!(
                "positions unavailable: {e}; no position is assumed flat"
            ));
            None
        }
    };
    let owned = desk.db.open_positions()?;
    if let Some(positions) = &broker_positions {
        for (symbol, p) in positions {
            match owned.iter().find(|o| &o.symbol == symbol) {
                None => desk.event_once(
                    "foreign_position",
                    symbol,
                    format!(
                        "a position of {} {symbol} is not ours; reported, never touched",
                        p.qty
                    ),
                )?,
                Some(o) if p.qty > o.qty => desk.event_once(
                    "position_larger_than_owned",
                    symbol,
                    format!(
                        "the broker holds {} {symbol}, we own {}; only our {} are managed",
                        p.qty, o.qty, o.qty
                    ),
                )?,
                Some(_) => {}
            }
        }
    }

    // One market-data call per cycle for every symbol it needs.
    let mut symbols: Vec<String> = owned.iter().map(|p| p.symbol.clone()).collect();
    if let WatchlistInput::Fresh(rows) = inputs.watchlist {
        symbols.extend(rows.iter().map(|r| r.symbol.clone()));
    }
    symbols.sort();
    symbols.dedup();
    let market = inputs.feed.snapshot(&symbols, now, 2);

    // 5. Protection, then exits, per owned position; one symbol's failure stays with it.
    let open_orders = desk.db.open_orders()?;
    for position in &owned {
        if blocked.contains(&position.symbol) {
            continue;
        }
        let broker_qty = broker_positions
            .as_ref()
            .map(|m| m.get(&position.symbol).map_or(Decimal::ZERO, |p| p.qty));
        let outcome = manage_position(
            desk,
            inputs,
            position,
            broker_qty,
            &open_orders,
            session.as_ref(),
            market_open,
            &market,
            &mut report,
        );
        if let Err(e) = outcome {
            match e {
                LifecycleError::Auth(_) => return Err(e),
                other => {
                    tracing::error!(symbol = %position.symbol, "managing the position failed: {other}");
                    report
                        .warnings
                        .push(format!("{}: {other}", position.symbol));
                }
            }
        }
    }

    // 6. Entries.
    if let (true, Some(session)) = (market_open, session) {
        entries(desk, inputs, &session, &blocked, &market, &mut report)?;
    }
    Ok(report)
}

fn auth_is_fatal(e: &BrokerError) -> Result<(), LifecycleError> {
    match e {
        BrokerError::Auth { .. } => Err(LifecycleError::Auth(e.clone())),
        _ => Ok(()),
    }
}

/// Our open sell orders for a symbol other than its protective stop.
fn working_sells(open: &[crate::execution::db::OrderRow], symbol: &str) -> Decimal {
    open.iter()
        .filter(|o| o.order.symbol == symbol && o.order.side == Side::Sell && !is_stop(&o.order))
        .map(|o| o.order.qty - o.order.filled_qty)
        .sum()
}

fn stop_order<'a>(
    open: &'a [crate::execution::db::OrderRow],
    symbol: &str,
) -> Option<&'a BrokerOrder> {
    open.iter()
        .map(|o| &o.order)
        .filter(|o| o.symbol == symbol && is_stop(o))
        .max_by_key(|o| o.submitted_at)
}

#[allow(clippy::too_many_arguments)]
fn new_intent(
    session: NaiveDate,
    symbol: &str,
    leg: Leg,
    attempt: u32,
    side: Side,
    qty: Decimal,
    order_type: OrderType,
    now: DateTime<Utc>,
) -> Intent {
    let id = ClientOrderId::new(session, symbol, leg, attempt);
    Intent {
        client_order_id: id.to_string(),
        session,
        symbol: symbol.to_string(),
        leg: leg.to_string(),
        attempt,
        side,
        qty,
        order_type,
        limit_price: None,
        stop_price: None,
        time_in_force: TimeInForce::Day,
        replaces_order_id: None,
        plan: None,
        state: IntentState::Journaled,
        reason: None,
        created_at: now,
        updated_at: now,
    }
}

/// The session date used in client order ids: today's session, or the next one when closed.
fn id_session(now: DateTime<Utc>) -> NaiveDate {
    calendar::current_or_next_session(now)
        .map(|s| s.date)
        .unwrap_or_else(|_| calendar::ny_date(now))
}

/// Place (or resize/raise) the protective stop so it covers `qty` at `stop_price`.
fn ensure_stop(
    desk: &mut OrderDesk<'_>,
    symbol: &str,
    qty: Decimal,
    stop_price: Decimal,
    current: Option<&BrokerOrder>,
    report: &mut CycleReport,
) -> Result<Placement, LifecycleError> {
    let now = desk.now;
    let session = id_session(now);
    let n = desk.db.stop_legs_used(symbol)? + 1;
    let mut intent = new_intent(
        session,
        symbol,
        Leg::Stop(n),
        1,
        Side::Sell,
        qty,
        OrderType::Stop,
        now,
    );
    intent.stop_price = Some(to_tick(stop_price));
    intent.time_in_force = TimeInForce::Gtc;
    if let Some(current) = current {
        intent.replaces_order_id = Some(current.id.clone());
    }
    let placement = desk.place(intent)?;
    if matches!(placement, Placement::Acknowledged(_)) {
        if current.is_some() {
            report.stops_replaced += 1;
        } else {
            report.stops_placed += 1;
        }
    }
    Ok(placement)
}

#[allow(clippy::too_many_arguments)]
fn manage_position(
    desk: &mut OrderDesk<'_>,
    inputs: &CycleInputs<'_>,
    position: &OwnedPosition,
    broker_qty: Option<Decimal>,
    open: &[crate::execution::db::OrderRow],
    session: Option<&Session>,
    market_open: bool,
    market: &MarketSnapshot,
    report: &mut CycleReport,
) -> Result<(), LifecycleError> {
    let symbol = position.symbol.as_str();
    let now = desk.now;
    // Protect what both sides agree we hold.
    let held = match broker_qty {
        Some(b) if b.is_zero() => {
            // No fill of ours explains it: never read as "flat". Touch nothing for this
            // symbol and make the operator look.
            desk.event_once(
                "position_missing_at_broker",
                symbol,
                format!(
                    "we own {} {symbol} but the broker reports none and no fill explains it; its orders are left as they are — check the account",
                    position.qty
                ),
            )?;
            return Ok(());
        }
        Some(b) if b < position.qty => {
            desk.event_once(
                "position_mismatch",
                symbol,
                format!(
                    "we own {} {symbol} but the broker reports {b}; protecting {b} until the difference is explained",
                    position.qty
                ),
            )?;
            b
        }
        _ => position.qty,
    };
    let price = market.latest_price(symbol).and_then(decimal);
    let current_stop = stop_order(open, symbol);
    let selling = working_sells(open, symbol);
    let desired = (held - selling).max(Decimal::ZERO);

    // A stop at or above the market would trigger at once; when price is already through the
    // stop level, exit at the market instead (only while the market is open).
    let through_stop = price.is_some_and(|p| p <= position.stop_price);
    if through_stop && desired > Decimal::ZERO {
        if market_open && selling.is_zero() {
            if let Some(stop) = current_stop {
                desk.cancel(
                    stop,
                    "price is through the stop level: exiting at the market",
                )?;
            }
            return exit(
                desk,
                position,
                held,
                Leg::Exit,
                "price at or below the stop level",
                report,
            );
        }
        if current_stop.is_some() {
            return Ok(());
        }
        // Closed and unprotected: place the stop anyway; it triggers at the next open, which
        // is the exit we want, and the position is never left naked overnight.
    }

    if desired > Decimal::ZERO {
        let needs = match current_stop {
            None => true,
            Some(s) => {
                s.qty - s.filled_qty != desired
                    || s.stop_price
                        .is_some_and(|p| p < to_tick(position.stop_price))
            }
        };
        if needs && !(through_stop && market_open) {
            if current_stop.is_none() {
                desk.failpoints.hit("filled_before_stop", None);
            }
            let placement = ensure_stop(
                desk,
                symbol,
                desired,
                position.stop_price,
                current_stop,
                report,
            )?;
            if !matches!(placement, Placement::Acknowledged(_)) {
                report.warnings.push(format!(
                    "{symbol}: protective stop not confirmed: {placement:?}"
                ));
                return Ok(());
            }
        }
    } else if let Some(stop) = current_stop {
        if selling >= held {
            // Our exit order covers everything; the stop would only block it.
            desk.cancel(stop, "an exit order covers the whole position")?;
        }
    }

    if !market_open || session.is_none() || !selling.is_zero() {
        return Ok(());
    }
    let Some(price) = price else { return Ok(()) };
    // Targets below the entry price would lock in a loss: they only count above it.
    let above_entry = |target: Option<Decimal>| target.filter(|t| *t > position.avg_price);
    // R2: exit everything.
    if above_entry(position.target_r2).is_some_and(|r2| price >= r2) {
        let open_now = desk.db.open_orders()?;
        if let Some(stop) = stop_order(&open_now, symbol) {
            if !desk.cancel(stop, "R2 reached: exiting the position")? {
                return Ok(());
            }
        }
        return exit(desk, position, held, Leg::Exit, "R2 reached", report);
    }
    // R1: trim once, resizing the stop first so the shares are free to sell.
    let trim_qty = (held * inputs.config.trim_fraction).floor();
    if !position.trimmed
        && trim_qty >= Decimal::ONE
        && trim_qty < held
        && above_entry(position.target_r1).is_some_and(|r1| price >= r1)
    {
        let open_now = desk.db.open_orders()?;
        let stop_now = stop_order(&open_now, symbol);
        let keep = held - trim_qty;
        let stop_ok = match stop_now {
            Some(s) if s.qty - s.filled_qty == keep => true,
            _ => matches!(
                ensure_stop(desk, symbol, keep, position.stop_price, stop_now, report)?,
                Placement::Acknowledged(_)
            ),
        };
        if !stop_ok {
            return Ok(());
        }
        desk.failpoints.hit("trim_after_stop_resize", None);
        let attempt = desk
            .db
            .last_attempt(id_session(now), symbol, &Leg::Trim.to_string())?
            + 1;
        let intent = new_intent(
            id_session(now),
            symbol,
            Leg::Trim,
            attempt,
            Side::Sell,
            trim_qty,
            OrderType::Market,
            now,
        );
        if let Placement::Acknowledged(_) = desk.place(intent)? {
            report.trims_sent += 1;
        }
        return Ok(());
    }
    // After the trim has filled, move the stop to break-even (stops only move up).
    if position.trimmed && inputs.config.breakeven_after_trim && position.avg_price < price {
        let level = to_tick(position.avg_price);
        if desk.db.raise_stop_level(symbol, level, now)? {
            desk.event(
                "stop_raised",
                Some(symbol),
                None,
                format!("stop level raised to break-even {level}"),
            )?;
            let open_now = desk.db.open_orders()?;
            let stop_now = stop_order(&open_now, symbol);
            ensure_stop(desk, symbol, held, level, stop_now, report)?;
        }
    }
    Ok(())
}

fn exit(
    desk: &mut OrderDesk<'_>,
    position: &OwnedPosition,
    qty: Decimal,
    leg: Leg,
    why: &str,
    report: &mut CycleReport,
) -> Result<(), LifecycleError> {
    let now = desk.now;
    let session = id_session(now);
    let attempt = desk
        .db
        .last_attempt(session, &position.symbol, &leg.to_string())?
        + 1;
    let intent = new_intent(
        session,
        &position.symbol,
        leg,
        attempt,
        Side::Sell,
        qty,
        OrderType::Market,
        now,
    );
    desk.event(
        "exit_decision",
        Some(&position.symbol),
        None,
        format!("selling {qty}: {why}"),
    )?;
    if let Placement::Acknowledged(_) = desk.place(intent)? {
        report.exits_sent += 1;
    }
    Ok(())
}

/// The cycle's entry decisions, written in one transaction at the end of the entry step.
struct Decisions {
    now: DateTime<Utc>,
    session: NaiveDate,
    events: Vec<crate::execution::db::Event>,
}

impl Decisions {
    /// Record why a candidate was skipped (one event per candidate per cycle).
    fn skip(&mut self, symbol: &str, reason: &str, detail: String) {
        self.events.push(crate::execution::db::Event {
            at: self.now,
            session: Some(self.session),
            kind: "entry_skipped".to_string(),
            symbol: Some(symbol.to_string()),
            client_order_id: None,
            message: format!("{reason}: {detail}"),
            details: Some(format!("{{\"reason\":\"{reason}\"}}")),
        });
    }
}

fn entries(
    desk: &mut OrderDesk<'_>,
    inputs: &CycleInputs<'_>,
    session: &Session,
    blocked: &BTreeSet<String>,
    market: &MarketSnapshot,
    report: &mut CycleReport,
) -> Result<(), LifecycleError> {
    let now = desk.now;
    let rows = match inputs.watchlist {
        WatchlistInput::Fresh(rows) => rows,
        WatchlistInput::Unavailable(reason) => {
            tracing::debug!("no entries: {reason}");
            return Ok(());
        }
    };
    let mut decisions = Decisions {
        now,
        session: session.date,
        events: Vec::new(),
    };
    let result = decide_entries(
        desk,
        inputs,
        session,
        blocked,
        rows,
        market,
        &mut decisions,
        report,
    );
    // Decisions are written even when an entry failed part-way.
    desk.db.events_batch(&decisions.events)?;
    result
}

#[allow(clippy::too_many_arguments)]
fn decide_entries(
    desk: &mut OrderDesk<'_>,
    inputs: &CycleInputs<'_>,
    session: &Session,
    blocked: &BTreeSet<String>,
    rows: &[WatchlistRow],
    market: &MarketSnapshot,
    decisions: &mut Decisions,
    report: &mut CycleReport,
) -> Result<(), LifecycleError> {
    let now = desk.now;
    let config = inputs.config;
    let window_start = session.open + Duration::minutes(config.entry_start_minutes_after_open);
    let window_end = session.close - Duration::minutes(config.entry_end_minutes_before_close);
    let in_window = now >= window_start && now < window_end;
    let owned = desk.db.open_positions()?;
    // Working entry orders count against the caps as if they had filled at their limit.
    let working_entries: Vec<BrokerOrder> = desk
        .db
        .open_orders()?
        .into_iter()
        .map(|o| o.order)
        .filter(|o| o.side == Side::Buy && !owned.iter().any(|p| p.symbol == o.symbol))
        .collect();
    let mut gross: Decimal = owned.iter().map(|p| p.qty * p.avg_price).sum::<Decimal>()
        + working_entries
            .iter()
            .map(|o| (o.qty - o.filled_qty) * o.limit_price.unwrap_or_default())
            .sum::<Decimal>();
    let mut positions = owned.len() + working_entries.len();
    let mut sent_today = desk.db.entries_sent(session.date)?;
    let mut account = None;
    let mut spent = Decimal::ZERO;

    for row in rows {
        let symbol = row.symbol.as_str();
        if row.scan_date != session.date {
            decisions.skip(
                symbol,
                "stale_watchlist_row",
                format!("ScanDate {} is not today", row.scan_date),
            );
            continue;
        }
        let intents = desk.db.intents_for(symbol, session.date)?;
        if intents.iter().any(|i| {
            i.leg == "en" && i.state != IntentState::Rejected && i.state != IntentState::NotPlaced
        }) {
            decisions.skip(
                symbol,
                "already_entered_today",
                "one entry per symbol per session".into(),
            );
            continue;
        }
        if owned.iter().any(|p| p.symbol == symbol) {
            decisions.skip(symbol, "already_owned", "a position is already open".into());
            continue;
        }
        if let Some(source) = &inputs.kill_switch {
            decisions.skip(
                symbol,
                "kill_switch",
                format!("kill switch engaged ({source}): no new entries"),
            );
            continue;
        }
        if !inputs.allow_entries {
            decisions.skip(
                symbol,
                "entries_disabled",
                "entries are disabled for this run".into(),
            );
            continue;
        }
        if blocked.contains(symbol) {
            decisions.skip(
                symbol,
                "order_unresolved",
                "an earlier order's outcome is still unknown".into(),
            );
            continue;
        }
        if !in_window {
            decisions.skip(
                symbol,
                "outside_entry_window",
                format!("entries run {window_start}..{window_end}"),
            );
            continue;
        }
        // Breakout and hold on the last two closed 10-minute bars of today's session.
        let bars = market.last_bars(symbol);
        let today: Vec<_> = bars.iter().filter(|b| b.start >= session.open).collect();
        if let Some(last) = today.last() {
            let age = now - last.end;
            if age > Duration::minutes(config.max_bar_age_minutes) {
                decisions.skip(
                    symbol,
                    "stale_bars",
                    format!("the last closed bar ended {} min ago", age.num_minutes()),
                );
                continue;
            }
        }
        if today.len() < 2 {
            decisions.skip(symbol, "no_bars", "fewer than two closed bars today".into());
            continue;
        }
        let level = row.entry_level.to_f64().unwrap_or(f64::NAN);
        let (prev, last) = (today[0].close, today[1].close);
        if !(prev > level && last >= level) {
            decisions.skip(
                symbol,
                "not_confirmed",
                format!("closes {prev:.2}, {last:.2} vs entry level {level:.2}"),
            );
            continue;
        }
        let Some(price) = decimal(last) else { continue };
        let drift_limit =
            row.entry_level * (Decimal::ONE + config.max_entry_drift_pct / Decimal::ONE_HUNDRED);
        if price > drift_limit {
            decisions.skip(
                symbol,
                "price_drift",
                format!("{price} is above {drift_limit}"),
            );
            continue;
        }
        let stop = row.stop_loss;
        if stop >= price {
            decisions.skip(
                symbol,
                "risk_invalid",
                format!("stop {stop} is not below price {price}"),
            );
            continue;
        }
        let risk_pct = (price - stop) / price * Decimal::ONE_HUNDRED;
        if risk_pct > config.max_risk_pct {
            decisions.skip(
                symbol,
                "risk_too_wide",
                format!(
                    "stop {stop} is {}% below {price}, over {}%",
                    risk_pct.round_dp(2),
                    config.max_risk_pct
                ),
            );
            continue;
        }
        if positions >= config.max_positions {
            decisions.skip(
                symbol,
                "max_positions",
                format!("{positions} positions open"),
            );
            continue;
        }
        if sent_today >= config.max_entries_per_day {
            decisions.skip(
                symbol,
                "max_entries_per_day",
                format!("{sent_today} entries today"),
            );
            continue;
        }
        if account.is_none() {
            account = match desk.broker.account() {
                Ok(a) => Some(a),
                Err(e) => {
                    auth_is_fatal(&e)?;
                    decisions.skip(symbol, "account_unavailable", e.to_string());
                    return Ok(());
                }
            };
        }
        let Some(acct) = &account else { continue };
        if acct.trading_suspended {
            // The broker-side kill switch (Alpaca `suspend_trade`): an order would be refused.
            decisions.skip(
                symbol,
                "broker_suspended",
                "new orders are suspended at the broker (avwap-execution suspend-trading --resume lifts it)".into(),
            );
            continue;
        }
        let limit =
            to_tick(price * (Decimal::ONE + config.entry_slippage_bps / Decimal::new(10_000, 0)));
        let qty = size(
            acct.equity,
            acct.buying_power - spent,
            price,
            limit,
            stop,
            gross,
            config,
        );
        if qty < Decimal::ONE {
            decisions.skip(
                symbol,
                "size_zero",
                "caps or buying power leave no whole share".into(),
            );
            continue;
        }
        let attempt = desk.db.last_attempt(session.date, symbol, "en")? + 1;
        let mut intent = new_intent(
            session.date,
            symbol,
            Leg::Entry,
            attempt,
            Side::Buy,
            qty,
            OrderType::Limit,
            now,
        );
        intent.limit_price = Some(limit);
        intent.plan = Some(EntryPlan {
            stop_price: to_tick(stop),
            target_r1: Some(row.target_r1),
            target_r2: Some(row.target_r2),
        });
        desk.event(
            "entry_decision",
            Some(symbol),
            Some(&intent.client_order_id),
            format!("breakout held ({prev:.2}, {last:.2} over {level:.2}): buy {qty} limit {limit}, stop {stop}"),
        )?;
        let placement = desk.place(intent)?;
        // An order whose outcome is unknown may exist: it counts against every cap.
        if matches!(
            placement,
            Placement::Acknowledged(_) | Placement::Unknown(_)
        ) {
            report.entries_sent += 1;
            positions += 1;
            sent_today += 1;
            gross += qty * limit;
            spent += qty * limit;
        }
    }
    Ok(())
}

/// Risk-based size capped by notional per symbol, gross notional and buying power.
pub fn size(
    equity: Decimal,
    buying_power: Decimal,
    price: Decimal,
    limit: Decimal,
    stop: Decimal,
    gross_now: Decimal,
    config: &ExecutionConfig,
) -> Decimal {
    let risk_per_share = price - stop;
    if risk_per_share <= Decimal::ZERO || limit <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    let by_risk = (equity * config.risk_per_trade / risk_per_share).floor();
    let by_symbol = (config.max_notional_per_symbol / limit).floor();
    let by_gross = ((config.max_gross_notional - gross_now).max(Decimal::ZERO) / limit).floor();
    let by_power = (buying_power.max(Decimal::ZERO) / limit).floor();
    by_risk
        .min(by_symbol)
        .min(by_gross)
        .min(by_power)
        .max(Decimal::ZERO)
}

/// Close every owned position at the market (the `flatten` command): cancel its stop, sell.
pub fn flatten(desk: &mut OrderDesk<'_>) -> Result<u32, LifecycleError> {
    let mut sent = 0;
    for position in desk.db.open_positions()? {
        let open = desk.db.open_orders()?;
        if let Some(stop) = stop_order(&open, &position.symbol) {
            if !desk.cancel(stop, "flatten requested by the operator")? {
                continue;
            }
        }
        let selling = working_sells(&open, &position.symbol);
        let qty = position.qty - selling;
        if qty <= Decimal::ZERO {
            continue;
        }
        let mut report = CycleReport::default();
        exit(
            desk,
            &position,
            qty,
            Leg::Flatten,
            "flatten requested by the operator",
            &mut report,
        )?;
        sent += report.exits_sent;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn prices_go_on_the_tick() {
        assert_eq!(to_tick(dec("33.105")), dec("33.10"));
        assert_eq!(to_tick(dec("33.115")), dec("33.12"));
        assert_eq!(to_tick(dec("0.123456")), dec("0.1235"));
    }

    #[test]
    fn sizing_is_risk_based_then_capped() {
        let c = ExecutionConfig::default();
        // 100k × 0.5% = $500 risk, $2 a share → 250 shares, $50 × 250 = $12.5k > $10k cap → 200.
        assert_eq!(
            size(
                dec("100000"),
                dec("100000"),
                dec("50"),
                dec("50"),
                dec("48"),
                Decimal::ZERO,
                &c
            ),
            dec("200")
        );
        // $1 risk a share at $20: 500 by risk, 500 by symbol cap.
        assert_eq!(
            size(
                dec("100000"),
                dec("100000"),
                dec("20"),
                dec("20"),
                dec("19"),
                Decimal::ZERO,
                &c
            ),
            dec("500")
        );
        // Gross cap nearly used up.
        assert_eq!(
            size(
                dec("100000"),
                dec("100000"),
                dec("20"),
                dec("20"),
                dec("19"),
                dec("49900"),
                &c
            ),
            dec("5")
        );
        // Buying power binds.
        assert_eq!(
            size(
                dec("100000"),
                dec("1000"),
                dec("20"),
                dec("20"),
                dec("19"),
                Decimal::ZERO,
                &c
            ),
            dec("50")
        );
        // Stop not below the entry: nothing.
        assert_eq!(
            size(
                dec("100000"),
                dec("100000"),
                dec("20"),
                dec("20"),
                dec("20"),
                Decimal::ZERO,
                &c
            ),
            Decimal::ZERO
        );
    }
}
