//! One execution cycle in three phases:
//!
//! 1. **Read** — the broker's account, positions and open orders and the market snapshot,
//!    gathered into [`CycleReads`] (concurrently and under the cycle deadline for Alpaca,
//!    sequentially from a local book), then recorded: unknown order outcomes resolved, our
//!    orders refreshed (fills), orders with our prefix that the journal lacks adopted, foreign
//!    orders reported. A read that failed is never taken as "nothing there".
//! 2. **Decide** — [`plan_cycle`] over the recorded state:
//!    pure, no broker call.
//! 3. **Write** — the plan carried out through the [`OrderDesk`] in priority order: protect
//!    (every owned position's GTC stop for its full quantity), exit (stop-level exit, R2 exit,
//!    R1 trim, break-even stop), enter. Every order is journaled before it is sent; every
//!    decision is an event; one symbol's failure stays with that symbol.

pub use crate::broker::CycleReads;
use crate::broker::{BrokerError, BrokerOrder};
use crate::calendar;
use crate::execution::config::ExecutionConfig;
use crate::execution::db::{DbError, Event, Intent, StateDb};
use crate::execution::ids::{self, Leg};
use crate::execution::lifecycle::{LifecycleError, OrderDesk, Placement};
use crate::execution::phases;
use crate::execution::plan::{
    self, plan_cycle, stop_order, working_sells, Action, Candidate, CyclePlan, CycleState,
    IntentSpec, Journal, JournaledIntent,
};
use crate::execution::verdict::{self, BrokerView, Verdict};
use crate::market_data::intraday::IntradayFeed;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};

pub use crate::execution::plan::{size, to_tick, WatchlistInput};

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
    /// Symbols whose broker position did not read (nothing was sent for them).
    pub unreadable_positions: Vec<String>,
    /// Reads that failed or missed the cycle deadline (the cycle made no entries).
    pub incomplete_reads: Vec<String>,
    pub warnings: Vec<String>,
    /// The broker's positions and stops against the journal (the service records it).
    pub verdict: Option<Verdict>,
}

/// The bars per symbol the cycle reads: the last two closed 10-minute bars.
pub const SNAPSHOT_BARS: usize = 2;

/// The symbols a cycle needs prices for: every owned position and every fresh candidate.
pub fn symbols_of_interest(
    db: &StateDb,
    watchlist: &WatchlistInput,
) -> Result<Vec<String>, DbError> {
    let mut symbols: Vec<String> = db.open_positions()?.into_iter().map(|p| p.symbol).collect();
    if let WatchlistInput::Fresh(rows) = watchlist {
        symbols.extend(rows.iter().map(|r| r.symbol.clone()));
    }
    symbols.sort();
    symbols.dedup();
    Ok(symbols)
}

/// Where a cycle is, reported between phases (the service pings the watchdog there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Recorded,
    Planned,
    Protected,
    Exited,
}

/// Runs one cycle with sequential reads from `desk`'s broker and `inputs.feed`.
pub fn run_cycle(
    desk: &mut OrderDesk<'_>,
    inputs: &CycleInputs<'_>,
) -> Result<CycleReport, LifecycleError> {
    let symbols = symbols_of_interest(desk.db, inputs.watchlist)?;
    let reads = CycleReads::sequential(desk.broker, inputs.feed, &symbols, desk.now, SNAPSHOT_BARS);
    run_cycle_with(desk, inputs, reads, &mut |_| {})
}

/// Runs one cycle on reads already made; `progress` is told after each phase.
pub fn run_cycle_with(
    desk: &mut OrderDesk<'_>,
    inputs: &CycleInputs<'_>,
    reads: CycleReads,
    progress: &mut dyn FnMut(Step),
) -> Result<CycleReport, LifecycleError> {
    let mut report = CycleReport::default();
    let now = desk.now;
    let phase = phases::phase(now, inputs.config);
    report.market_open = phase.market_open();
    report.phase = phase.as_str();

    let broker = BrokerView::of(&reads);
    let state = record_reads(desk, inputs, reads, &mut report)?;
    progress(Step::Recorded);
    let plan = plan_cycle(&state, inputs.config);
    report.warnings.extend(plan.warnings.iter().cloned());
    progress(Step::Planned);
    carry_out(desk, &plan, &mut report, progress)?;
    // The reads against the journal as they recorded them (the same moment), plus the stops
    // the broker acknowledged since: a fill protected in this cycle is not "uncovered". The
    // cycle's work is done: a journal that cannot say which leaves no verdict (avwap-check
    // then reports it stale), it does not fail the cycle.
    report.verdict = verdict::stops_placed_in_cycle(desk.db, now)
        .map(|placed| verdict::judge(now, &broker, &state.owned, &state.blocked, &placed))
        .map_err(|e| {
            report
                .warnings
                .push(format!("reconciliation verdict not judged: {e}"))
        })
        .ok();
    Ok(report)
}

fn auth_is_fatal<T>(read: &Result<T, BrokerError>) -> Result<(), LifecycleError> {
    match read {
        Err(e @ BrokerError::Auth { .. }) => Err(LifecycleError::Auth(e.clone())),
        _ => Ok(()),
    }
}

/// The read phase's second half: bring the broker's answers into the journal, then gather
/// the state the decisions are made from.
fn record_reads(
    desk: &mut OrderDesk<'_>,
    inputs: &CycleInputs<'_>,
    reads: CycleReads,
    report: &mut CycleReport,
) -> Result<CycleState, LifecycleError> {
    let now = desk.now;
    auth_is_fatal(&reads.open_orders)?;
    auth_is_fatal(&reads.positions)?;
    auth_is_fatal(&reads.account)?;
    let mut incomplete = Vec::new();

    // Unknown outcomes first: a symbol with an unresolved order gets nothing else.
    let blocked: BTreeSet<String> = desk.resolve_unresolved()?.into_iter().collect();
    report.blocked_symbols = blocked.iter().cloned().collect();

    // Our orders: fills and final states. Without the broker's list our orders stay as last
    // recorded; they are not looked up one by one (that would multiply the requests of an
    // outage by the number of orders).
    match &reads.open_orders {
        Ok(open) => {
            desk.refresh_open_orders(Some(open))?;
            adopt_or_report(desk, open)?;
            for foreign in &reads.foreign_orders {
                desk.event_once(
                    "foreign_order",
                    &foreign.symbol,
                    format!(
                        "open order {foreign} is not ours and of a kind this system does not trade ({}); reported, never touched",
                        foreign.problem
                    ),
                )?;
            }
        }
        Err(e) => {
            // Our own orders are looked up one by one (until the first lookup fails); orders
            // we do not know cannot be adopted or reported this cycle.
            incomplete.push("open orders".to_string());
            let unrefreshed = desk.refresh_open_orders(None)?;
            report.warnings.push(format!(
                "open orders unavailable: {e}; {unrefreshed} of our orders could not be looked up and are taken as last recorded"
            ));
        }
    }
    let broker_positions = match &reads.positions {
        Ok(list) => {
            recover_positions(desk, list, report)?;
            Some(
                list.iter()
                    .map(|p| (p.symbol.clone(), p.clone()))
                    .collect::<BTreeMap<_, _>>(),
            )
        }
        Err(e) => {
            incomplete.push("positions".to_string());
            report.warnings.push(format!(
                "positions unavailable: {e}; no position is assumed flat"
            ));
            None
        }
    };
    let mut unreadable_positions = BTreeSet::new();
    for unreadable in &reads.unreadable_positions {
        let symbol = unreadable.symbol.as_str();
        let message = format!(
            "the broker lists a {symbol} position whose numbers do not read ({}); its size is unknown, so no order of any kind is sent for {symbol} until it reads — check the account",
            unreadable.problem
        );
        desk.event_once("broker_position_unreadable", symbol, message.clone())?;
        report.warnings.push(format!("{symbol}: {message}"));
        unreadable_positions.insert(unreadable.symbol.clone());
    }
    report.unreadable_positions = unreadable_positions.iter().cloned().collect();
    restore_plans(desk, inputs.watchlist)?;
    if reads.account.is_err() {
        incomplete.push("account".to_string());
    }
    if !reads.market_complete {
        incomplete.push("market data".to_string());
    }
    report.incomplete_reads = incomplete.clone();

    let owned = desk.db.open_positions()?;
    let open_orders = our_open_orders(desk.db)?;
    let journal = journal(desk.db, now, &owned)?;
    Ok(CycleState {
        now,
        session: phases::todays_session(now),
        phase: phases::phase(now, inputs.config),
        owned,
        broker_positions,
        open_orders,
        account: reads.account.map_err(|e| e.to_string()),
        market: reads.market,
        blocked,
        unreadable_positions,
        watchlist: inputs.watchlist.clone(),
        kill_switch: inputs.kill_switch.clone(),
        allow_entries: inputs.allow_entries,
        incomplete_reads: incomplete,
        journal,
    })
}

/// Orders with our prefix that the journal does not know (a lost database, another host) are
/// adopted; everything else at the broker is reported and never touched.
fn adopt_or_report(desk: &mut OrderDesk<'_>, open: &[BrokerOrder]) -> Result<(), LifecycleError> {
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
    Ok(())
}

/// How far back the orders behind an unexplained position are looked for (a swing position is
/// held for days, rarely weeks).
pub const RECOVERY_LOOKBACK_DAYS: i64 = 60;

/// The broker holds a position our journal does not own (a journal lost or rolled back): find
/// our orders behind it at the broker and record them, oldest first, as adopted, so their
/// fills rebuild the position and the working stop protecting it is known. Looked up once per
/// session per symbol: a position no order of ours explains is then reported every cycle
/// (`foreign_position`), blocks entries in its symbol and counts against the caps.
fn recover_positions(
    desk: &mut OrderDesk<'_>,
    broker_positions: &[crate::broker::Position],
    report: &mut CycleReport,
) -> Result<(), LifecycleError> {
    let session = calendar::ny_date(desk.now);
    for held in broker_positions {
        if held.qty <= Decimal::ZERO
            || desk.db.position(&held.symbol)?.is_some_and(|p| p.open)
            || desk
                .db
                .has_event(session, "foreign_position", &held.symbol)?
        {
            continue;
        }
        let symbol = held.symbol.as_str();
        let since = desk.now - chrono::Duration::days(RECOVERY_LOOKBACK_DAYS);
        let orders = match desk.broker.orders_for_symbol(symbol, since) {
            Ok(orders) => orders,
            Err(e @ BrokerError::Auth { .. }) => return Err(LifecycleError::Auth(e)),
            Err(e) => {
                report.warnings.push(format!(
                    "{symbol}: the broker holds {} that our journal does not own, and its orders cannot be listed: {e}; looked up again next cycle",
                    held.qty
                ));
                continue;
            }
        };
        let mut ours: Vec<BrokerOrder> = orders
            .into_iter()
            .filter(|o| ids::is_ours(&o.client_order_id))
            .collect();
        ours.sort_by_key(|o| o.submitted_at);
        for order in &ours {
            desk.record(order, true)?;
        }
        let Some(position) = desk.db.position(symbol)?.filter(|p| p.open) else {
            continue;
        };
        // The working stop found at the broker is the level to keep (stops only move up).
        let open: Vec<BrokerOrder> = ours
            .iter()
            .filter(|o| o.status.is_open())
            .cloned()
            .collect();
        if let Some(level) = stop_order(&open, symbol).and_then(|o| o.stop_price) {
            desk.db.raise_stop_level(symbol, level, desk.now)?;
        }
        desk.event(
            "position_recovered",
            Some(symbol),
            Some(&position.entry_client_order_id),
            format!(
                "the journal did not own the broker's {} {symbol}; rebuilt from {} order(s) of ours found at the broker: we own {}",
                held.qty,
                ours.len(),
                position.qty
            ),
        )?;
    }
    Ok(())
}

/// A position rebuilt from orders found at the broker has no entry plan (it lived in the lost
/// journal). When today's watchlist holds the row it was entered from (same symbol, the entry's
/// session), its plan comes back from that row: the targets, and the stop level (raised only).
fn restore_plans(
    desk: &mut OrderDesk<'_>,
    watchlist: &WatchlistInput,
) -> Result<(), LifecycleError> {
    let WatchlistInput::Fresh(rows) = watchlist else {
        return Ok(());
    };
    for position in desk.db.open_positions()? {
        if position.target_r1.is_some() || position.target_r2.is_some() {
            continue;
        }
        let Some(entry) = ids::ClientOrderId::parse(&position.entry_client_order_id) else {
            continue;
        };
        let Some(row) = rows
            .iter()
            .find(|r| r.symbol == position.symbol && r.scan_date == entry.session)
        else {
            continue;
        };
        if desk
            .db
            .restore_targets(&position.symbol, row.target_r1, row.target_r2, desk.now)?
        {
            desk.db
                .raise_stop_level(&position.symbol, to_tick(row.stop_loss), desk.now)?;
            desk.event(
                "plan_restored",
                Some(&position.symbol),
                Some(&position.entry_client_order_id),
                format!(
                    "the entry plan was lost with the journal; restored from today's watchlist row: stop {}, R1 {}, R2 {}",
                    to_tick(row.stop_loss),
                    row.target_r1,
                    row.target_r2
                ),
            )?;
        }
    }
    Ok(())
}

/// The session date in client order ids: today's session, or the next one when closed.
fn id_session(now: DateTime<Utc>) -> Option<NaiveDate> {
    calendar::current_or_next_session(now).map(|s| s.date).ok()
}

/// What the journal holds for this cycle's order ids.
fn journal(
    db: &StateDb,
    now: DateTime<Utc>,
    owned: &[crate::execution::db::OwnedPosition],
) -> Result<Journal, DbError> {
    let id_session = id_session(now).or_else(|| Some(calendar::ny_date(now)));
    let mut intents: Vec<JournaledIntent> = Vec::new();
    if let Some(session) = id_session {
        intents = db
            .intents_in_session(session)?
            .into_iter()
            .map(|i| JournaledIntent {
                symbol: i.symbol,
                leg: i.leg,
                attempt: i.attempt,
                state: i.state,
            })
            .collect();
        // Orders of this session found at the broker without an intent (adopted after a
        // lost journal) count as sent: no second entry, and their ids are taken.
        for row in db.orders_in_session(session)? {
            let Some(id) = ids::ClientOrderId::parse(&row.order.client_order_id) else {
                continue;
            };
            let leg = id.leg.to_string();
            if !intents
                .iter()
                .any(|i| i.symbol == id.symbol && i.leg == leg && i.attempt == id.attempt)
            {
                intents.push(JournaledIntent {
                    symbol: id.symbol.clone(),
                    leg,
                    attempt: id.attempt,
                    state: crate::execution::db::IntentState::Acknowledged,
                });
            }
        }
    }
    let mut stop_legs_used = BTreeMap::new();
    for position in owned {
        stop_legs_used.insert(
            position.symbol.clone(),
            db.stop_legs_used(&position.symbol)?,
        );
    }
    Ok(Journal {
        id_session,
        intents,
        stop_legs_used,
    })
}

/// The write phase: the plan in priority order. A symbol whose protective step failed gets
/// no exit work this cycle; an authentication failure ends the cycle.
fn carry_out(
    desk: &mut OrderDesk<'_>,
    plan: &CyclePlan,
    report: &mut CycleReport,
    progress: &mut dyn FnMut(Step),
) -> Result<(), LifecycleError> {
    for notice in &plan.notices {
        desk.event_once(notice.kind, &notice.symbol, notice.message.clone())?;
    }
    let mut failed: BTreeSet<String> = BTreeSet::new();
    for action in &plan.protect {
        guarded(desk, action, report, &mut failed, true)?;
    }
    progress(Step::Protected);
    for action in &plan.exits {
        if failed.contains(action.symbol()) {
            continue;
        }
        guarded(desk, action, report, &mut failed, false)?;
    }
    progress(Step::Exited);
    enter(desk, plan, report)
}

/// One action, its failure isolated to its symbol.
fn guarded(
    desk: &mut OrderDesk<'_>,
    action: &Action,
    report: &mut CycleReport,
    failed: &mut BTreeSet<String>,
    protective: bool,
) -> Result<(), LifecycleError> {
    let symbol = action.symbol().to_string();
    match act(desk, action, report, protective) {
        Ok(true) => Ok(()),
        Ok(false) => {
            failed.insert(symbol);
            Ok(())
        }
        Err(e @ LifecycleError::Auth(_)) => Err(e),
        Err(other) => {
            tracing::error!(symbol = %symbol, "managing the position failed: {other}");
            report.warnings.push(format!("{symbol}: {other}"));
            failed.insert(symbol);
            Ok(())
        }
    }
}

/// Our working orders as journaled right now.
fn our_open_orders(db: &StateDb) -> Result<Vec<BrokerOrder>, DbError> {
    Ok(db.open_orders()?.into_iter().map(|row| row.order).collect())
}

/// Our current protective stop for `symbol`, as journaled right now (an earlier step of this
/// cycle may have replaced it).
fn current_stop(desk: &OrderDesk<'_>, symbol: &str) -> Result<Option<BrokerOrder>, DbError> {
    let open = our_open_orders(desk.db)?;
    Ok(stop_order(&open, symbol).cloned())
}

/// Carry out one action; `Ok(false)` when it did not take effect and later steps for the
/// symbol must wait.
fn act(
    desk: &mut OrderDesk<'_>,
    action: &Action,
    report: &mut CycleReport,
    protective: bool,
) -> Result<bool, LifecycleError> {
    match action {
        Action::Stop { intent } => {
            let placement = place_stop(desk, intent, report, protective)?;
            if !matches!(placement, Placement::Acknowledged(_)) {
                report.warnings.push(format!(
                    "{}: protective stop not confirmed: {placement:?}",
                    intent.symbol
                ));
                return Ok(false);
            }
            Ok(true)
        }
        Action::CancelStop { symbol, why } => match current_stop(desk, symbol)? {
            Some(stop) => desk.cancel(&stop, why),
            None => Ok(true),
        },
        Action::Exit {
            intent,
            cancel_stop,
            why,
        } => {
            if let Some(reason) = cancel_stop {
                if let Some(stop) = current_stop(desk, &intent.symbol)? {
                    if !desk.cancel(&stop, reason)? {
                        return Ok(false);
                    }
                }
            }
            desk.event(
                "exit_decision",
                Some(&intent.symbol),
                None,
                format!("selling {}: {why}", intent.qty),
            )?;
            if let Placement::Acknowledged(_) = desk.place(intent.clone())? {
                report.exits_sent += 1;
            }
            Ok(true)
        }
        Action::Trim { stop, intent } => {
            let covers_keep =
                current_stop(desk, &stop.symbol)?.is_some_and(|s| s.qty - s.filled_qty == stop.qty);
            if !covers_keep
                && !matches!(
                    place_stop(desk, stop, report, false)?,
                    Placement::Acknowledged(_)
                )
            {
                return Ok(false);
            }
            desk.failpoints.hit("trim_after_stop_resize", None);
            if let Placement::Acknowledged(_) = desk.place(intent.clone())? {
                report.trims_sent += 1;
            }
            Ok(true)
        }
        Action::RaiseStop {
            symbol,
            level,
            stop,
        } => {
            if desk.db.raise_stop_level(symbol, *level, desk.now)? {
                desk.event(
                    "stop_raised",
                    Some(symbol),
                    None,
                    format!("stop level raised to break-even {level}"),
                )?;
                place_stop(desk, stop, report, false)?;
            }
            Ok(true)
        }
    }
}

/// Place the stop, replacing the symbol's current one if there is one.
fn place_stop(
    desk: &mut OrderDesk<'_>,
    intent: &Intent,
    report: &mut CycleReport,
    protective: bool,
) -> Result<Placement, LifecycleError> {
    let current = current_stop(desk, &intent.symbol)?;
    if protective && current.is_none() {
        desk.failpoints.hit("filled_before_stop", None);
    }
    let mut intent = intent.clone();
    intent.replaces_order_id = current.as_ref().map(|c| c.id.clone());
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

/// Entries in watchlist order; every skip decision is written in one transaction at the end,
/// even when an entry failed part-way.
fn enter(
    desk: &mut OrderDesk<'_>,
    plan: &CyclePlan,
    report: &mut CycleReport,
) -> Result<(), LifecycleError> {
    let now = desk.now;
    let session = calendar::session_for_instant(now).ok().flatten();
    let mut skipped = Vec::new();
    let mut result = Ok(());
    for candidate in &plan.candidates {
        match candidate {
            Candidate::Skip {
                symbol,
                reason,
                detail,
            } => skipped.push(Event {
                at: now,
                session,
                kind: "entry_skipped".to_string(),
                symbol: Some(symbol.clone()),
                client_order_id: None,
                message: format!("{reason}: {detail}"),
                details: Some(format!("{{\"reason\":\"{reason}\"}}")),
            }),
            Candidate::Enter { intent, why } if result.is_ok() => {
                result = enter_one(desk, intent, why, report);
            }
            Candidate::Enter { .. } => {}
        }
    }
    desk.db.events_batch(&skipped)?;
    result
}

fn enter_one(
    desk: &mut OrderDesk<'_>,
    intent: &Intent,
    why: &str,
    report: &mut CycleReport,
) -> Result<(), LifecycleError> {
    desk.event(
        "entry_decision",
        Some(&intent.symbol),
        Some(&intent.client_order_id),
        why.to_string(),
    )?;
    let placement = desk.place(intent.clone())?;
    // An order whose outcome is unknown may exist: it counts as sent.
    if matches!(
        placement,
        Placement::Acknowledged(_) | Placement::Unknown(_)
    ) {
        report.entries_sent += 1;
    }
    Ok(())
}

/// What `flatten` did: the sells sent, and every owned position it could not be sure of
/// closing, with why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlattenOutcome {
    pub sells_sent: u32,
    /// Positions already being sold by working sell orders of ours (nothing new sent).
    pub already_selling: Vec<String>,
    pub remaining: Vec<FlattenRemaining>,
}

/// An owned position `flatten` left open, or whose sell's outcome is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlattenRemaining {
    pub symbol: String,
    pub qty: Decimal,
    pub why: String,
}

impl FlattenOutcome {
    /// Every owned position has an acknowledged (or already working) sell for all of it.
    pub fn complete(&self) -> bool {
        self.remaining.is_empty()
    }
}

/// Close every owned position at the market (the `flatten` command): cancel its stop, sell.
/// `held_back` are the symbols this cycle may not send anything for (an order of unknown
/// outcome, a position that does not read): they are left as they are and reported.
pub fn flatten(
    desk: &mut OrderDesk<'_>,
    held_back: &BTreeSet<String>,
) -> Result<FlattenOutcome, LifecycleError> {
    let mut outcome = FlattenOutcome::default();
    let session = id_session(desk.now).unwrap_or_else(|| calendar::ny_date(desk.now));
    for position in desk.db.open_positions()? {
        let mut left = |why: String| {
            outcome.remaining.push(FlattenRemaining {
                symbol: position.symbol.clone(),
                qty: position.qty,
                why,
            })
        };
        if held_back.contains(&position.symbol) {
            left("held back this cycle (an order of unknown outcome, or a broker position that does not read); nothing sent".to_string());
            continue;
        }
        let open = our_open_orders(desk.db)?;
        if let Some(stop) = stop_order(&open, &position.symbol) {
            if !desk.cancel(stop, "flatten requested by the operator")? {
                left("its protective stop could not be cancelled (see the cancel_failed event); the stop still protects it, nothing sold".to_string());
                continue;
            }
        }
        let qty = position.qty - working_sells(&open, &position.symbol);
        if qty <= Decimal::ZERO {
            outcome.already_selling.push(position.symbol.clone());
            continue;
        }
        let leg = Leg::Flatten;
        let attempt = desk
            .db
            .last_attempt(session, &position.symbol, &leg.to_string())?
            + 1;
        let intent = plan::new_intent(
            IntentSpec {
                session,
                symbol: &position.symbol,
                leg,
                attempt,
                side: crate::broker::Side::Sell,
                qty,
                order_type: crate::broker::OrderType::Market,
            },
            desk.now,
        );
        desk.event(
            "exit_decision",
            Some(&position.symbol),
            None,
            format!("selling {qty}: flatten requested by the operator"),
        )?;
        match desk.place(intent)? {
            Placement::Acknowledged(_) => outcome.sells_sent += 1,
            Placement::Rejected { message, .. } => {
                left(format!("the sell was not placed: {message}"))
            }
            Placement::Unknown(message) => left(format!(
                "the sell's outcome is unknown ({message}); it may have been sent and is looked up by its client order id"
            )),
            Placement::AlreadyJournaled => {
                left("a sell with this client order id was journaled before; not sent again".to_string())
            }
        }
    }
    Ok(outcome)
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
