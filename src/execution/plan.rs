//! The cycle's decisions as one pure function: [`plan_cycle`] turns a [`CycleState`] (what the
//! read phase gathered: our journal, the broker's reports, the market, the watchlist) into a
//! [`CyclePlan`] (protective stop work, exits, entries, and a reason-coded decision for every
//! watchlist candidate). No broker call, no database, no clock: the same state always gives the
//! same plan, so the rules are tested directly and exhaustively.
//!
//! The plan's order is its priority: protection first, then exits, then entries. Order ids are
//! deterministic from the state's journal (next attempt, next stop leg), so a replayed cycle
//! proposes the very ids the journal already holds and nothing is sent twice.

use crate::broker::{Account, BrokerOrder, OrderType, Position, Side, TimeInForce};
use crate::calendar::Session;
use crate::execution::config::ExecutionConfig;
use crate::execution::db::{EntryPlan, Intent, IntentState, OwnedPosition};
use crate::execution::ids::{ClientOrderId, Leg};
use crate::execution::phases::Phase;
use crate::market_data::intraday::MarketSnapshot;
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

/// One journaled intent, as much of it as the decisions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournaledIntent {
    pub symbol: String,
    pub leg: String,
    pub attempt: u32,
    pub state: IntentState,
}

/// What the journal says about the session order ids are issued for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Journal {
    /// The session date in this cycle's client order ids (today's session, or the next one
    /// while the market is closed).
    pub id_session: Option<NaiveDate>,
    /// Every intent journaled for `id_session`.
    pub intents: Vec<JournaledIntent>,
    /// The highest stop leg number ever journaled, per symbol (stop legs span sessions).
    pub stop_legs_used: BTreeMap<String, u32>,
}

impl Journal {
    fn last_attempt(&self, symbol: &str, leg: &str) -> u32 {
        self.intents
            .iter()
            .filter(|i| i.symbol == symbol && i.leg == leg)
            .map(|i| i.attempt)
            .max()
            .unwrap_or(0)
    }

    /// A symbol already has an entry today unless every entry intent was refused or proven
    /// never placed.
    fn entered(&self, symbol: &str) -> bool {
        self.intents.iter().any(|i| {
            i.symbol == symbol
                && i.leg == "en"
                && i.state != IntentState::Rejected
                && i.state != IntentState::NotPlaced
        })
    }

    /// Entries sent today (journaled or acknowledged), one per symbol: the per-day cap.
    fn entries_sent(&self) -> usize {
        self.intents
            .iter()
            .filter(|i| {
                i.leg == "en"
                    && matches!(i.state, IntentState::Journaled | IntentState::Acknowledged)
            })
            .map(|i| i.symbol.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// Everything one cycle decides from, gathered by the read phase.
#[derive(Debug, Clone)]
pub struct CycleState {
    pub now: DateTime<Utc>,
    /// Today's session, if today is one.
    pub session: Option<Session>,
    pub phase: Phase,
    /// Positions we own (our journal, after this cycle's reconciliation).
    pub owned: Vec<OwnedPosition>,
    /// The broker's positions by symbol; `None` when the report is unavailable, which is never
    /// read as flat.
    pub broker_positions: Option<BTreeMap<String, Position>>,
    /// Our working orders as journaled, after this cycle's refresh.
    pub open_orders: Vec<BrokerOrder>,
    /// The account, or why it is unavailable.
    pub account: Result<Account, String>,
    pub market: MarketSnapshot,
    /// Symbols with an order whose outcome is still unknown: nothing is sent for them.
    pub blocked: BTreeSet<String>,
    /// Symbols whose broker position was listed with numbers that do not read: its size is
    /// unknown, so nothing is sent for them either (and they are never taken for flat).
    pub unreadable_positions: BTreeSet<String>,
    pub watchlist: WatchlistInput,
    /// `Some(source)` when the kill switch is engaged.
    pub kill_switch: Option<String>,
    /// Entries are refused in this run (e.g. flatten).
    pub allow_entries: bool,
    /// Reads that failed or missed the cycle deadline; entries wait for a complete picture.
    pub incomplete_reads: Vec<String>,
    pub journal: Journal,
}

/// One step of protective or exit work for a position. A cycle plans a handful of these, so
/// the intents are kept inline rather than boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Place the protective stop, or resize/raise it by replacing the current one.
    Stop { intent: Intent },
    /// Cancel the stop: our exit order covers the whole position and the stop would block it.
    CancelStop { symbol: String, why: &'static str },
    /// Sell at the market. With `cancel_stop` the current stop is cancelled first and the sell
    /// is skipped if that fails: the stop still holds the shares, and selling them as well
    /// could sell twice.
    Exit {
        intent: Intent,
        /// Why the current stop is cancelled first (when there is one); `None` keeps it.
        cancel_stop: Option<&'static str>,
        why: String,
    },
    /// The R1 trim: bring the stop down to the shares kept (unless it already covers exactly
    /// those), then sell the trim.
    Trim { stop: Intent, intent: Intent },
    /// Break-even after the trim: record the higher stop level, then move the stop to it.
    RaiseStop {
        symbol: String,
        level: Decimal,
        stop: Intent,
    },
}

impl Action {
    pub fn symbol(&self) -> &str {
        match self {
            Action::Stop { intent }
            | Action::Exit { intent, .. }
            | Action::Trim { intent, .. }
            | Action::RaiseStop { stop: intent, .. } => &intent.symbol,
            Action::CancelStop { symbol, .. } => symbol,
        }
    }
}

/// A disagreement with the broker, recorded once per session and symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: &'static str,
    pub symbol: String,
    pub message: String,
}

/// What became of one watchlist candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    /// Buy: the entry intent and the line that explains it.
    Enter { intent: Box<Intent>, why: String },
    /// Skipped, with a stable reason code and the detail.
    Skip {
        symbol: String,
        reason: &'static str,
        detail: String,
    },
}

/// The cycle's decisions, in the order they are carried out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CyclePlan {
    pub notices: Vec<Notice>,
    /// Protective stops, placed or fixed before anything else.
    pub protect: Vec<Action>,
    /// Exits, trims and stop raises, after protection.
    pub exits: Vec<Action>,
    /// One decision per watchlist candidate, in watchlist order; entries are sent in this order.
    pub candidates: Vec<Candidate>,
    pub warnings: Vec<String>,
}

impl CyclePlan {
    /// The planned entries, in order.
    pub fn entries(&self) -> impl Iterator<Item = &Intent> {
        self.candidates.iter().filter_map(|c| match c {
            Candidate::Enter { intent, .. } => Some(intent.as_ref()),
            Candidate::Skip { .. } => None,
        })
    }
}

/// Prices sent to the broker sit on the tick: cents from $1, hundredths of a cent below.
pub fn to_tick(price: Decimal) -> Decimal {
    let dp = if price >= Decimal::ONE { 2 } else { 4 };
    price.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven)
}

fn decimal(x: f64) -> Option<Decimal> {
    Decimal::from_f64(x).filter(|_| x.is_finite())
}

pub fn is_stop(order: &BrokerOrder) -> bool {
    order.side == Side::Sell && order.order_type == OrderType::Stop
}

/// Our working sell orders for a symbol other than its protective stop (shares not yet sold).
pub fn working_sells(open: &[BrokerOrder], symbol: &str) -> Decimal {
    open.iter()
        .filter(|o| o.symbol == symbol && o.side == Side::Sell && !is_stop(o))
        .map(|o| o.qty - o.filled_qty)
        .sum()
}

/// The symbol's protective stop (the most recent, if several are working).
pub fn stop_order<'a>(open: &'a [BrokerOrder], symbol: &str) -> Option<&'a BrokerOrder> {
    open.iter()
        .filter(|o| o.symbol == symbol && is_stop(o))
        .max_by_key(|o| o.submitted_at)
}

/// A new intent with its deterministic client order id.
pub struct IntentSpec<'a> {
    pub session: NaiveDate,
    pub symbol: &'a str,
    pub leg: Leg,
    pub attempt: u32,
    pub side: Side,
    pub qty: Decimal,
    pub order_type: OrderType,
}

pub fn new_intent(spec: IntentSpec<'_>, now: DateTime<Utc>) -> Intent {
    let id = ClientOrderId::new(spec.session, spec.symbol, spec.leg, spec.attempt);
    Intent {
        client_order_id: id.to_string(),
        session: spec.session,
        symbol: spec.symbol.to_string(),
        leg: spec.leg.to_string(),
        attempt: spec.attempt,
        side: spec.side,
        qty: spec.qty,
        order_type: spec.order_type,
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

/// Numbers the cycle's new order ids from the journal, so that two orders planned in one
/// cycle never share an id.
struct Ids<'a> {
    journal: &'a Journal,
    session: NaiveDate,
    now: DateTime<Utc>,
    stop_legs: BTreeMap<String, u32>,
}

impl<'a> Ids<'a> {
    fn new(journal: &'a Journal, session: NaiveDate, now: DateTime<Utc>) -> Self {
        Self {
            journal,
            session,
            now,
            stop_legs: journal.stop_legs_used.clone(),
        }
    }

    /// The next protective stop (GTC, sell `qty` at `level` on the tick).
    fn stop(&mut self, symbol: &str, qty: Decimal, level: Decimal) -> Intent {
        let n = self.stop_legs.entry(symbol.to_string()).or_insert(0);
        *n += 1;
        let mut intent = new_intent(
            IntentSpec {
                session: self.session,
                symbol,
                leg: Leg::Stop(*n),
                attempt: 1,
                side: Side::Sell,
                qty,
                order_type: OrderType::Stop,
            },
            self.now,
        );
        intent.stop_price = Some(to_tick(level));
        intent.time_in_force = TimeInForce::Gtc;
        intent
    }

    /// The next attempt of a market sell on `leg`.
    fn sell(&self, symbol: &str, leg: Leg, qty: Decimal) -> Intent {
        let attempt = self.journal.last_attempt(symbol, &leg.to_string()) + 1;
        new_intent(
            IntentSpec {
                session: self.session,
                symbol,
                leg,
                attempt,
                side: Side::Sell,
                qty,
                order_type: OrderType::Market,
            },
            self.now,
        )
    }
}

/// Decide the whole cycle. Pure: see the module header.
pub fn plan_cycle(state: &CycleState, config: &ExecutionConfig) -> CyclePlan {
    let mut plan = CyclePlan::default();
    let Some(id_session) = state.journal.id_session else {
        plan.warnings
            .push("no NYSE session today or ahead in the calendar: nothing can be ordered".into());
        return plan;
    };
    let mut ids = Ids::new(&state.journal, id_session, state.now);
    plan_broker_notices(state, &mut plan);
    for position in &state.owned {
        if state.blocked.contains(&position.symbol)
            || state.unreadable_positions.contains(&position.symbol)
        {
            continue;
        }
        plan_position(state, config, position, &mut ids, &mut plan);
    }
    if let (true, Some(session)) = (state.phase.market_open(), &state.session) {
        if session.date == id_session {
            plan_entries(state, config, session, &ids, &mut plan);
        }
    }
    plan
}

/// Positions at the broker we do not own (no order of ours explains them), or hold more of
/// than we own: reported and never touched; they count against the caps and block entries in
/// their symbol, and the operator is warned every cycle until the account is put right.
fn plan_broker_notices(state: &CycleState, plan: &mut CyclePlan) {
    let Some(positions) = &state.broker_positions else {
        return;
    };
    for (symbol, position) in positions {
        let qty = position.qty;
        match state.owned.iter().find(|o| &o.symbol == symbol) {
            None => {
                let message = format!(
                    "the broker holds {qty} {symbol} and no order of ours explains it; reported, never touched; no entries in {symbol} and it counts against the caps — check the account"
                );
                plan.warnings.push(format!("{symbol}: {message}"));
                plan.notices.push(Notice {
                    kind: "foreign_position",
                    symbol: symbol.clone(),
                    message,
                });
            }
            Some(o) if qty > o.qty => plan.notices.push(Notice {
                kind: "position_larger_than_owned",
                symbol: symbol.clone(),
                message: format!(
                    "the broker holds {qty} {symbol}, we own {}; only our {} are managed",
                    o.qty, o.qty
                ),
            }),
            Some(_) => {}
        }
    }
}

/// Broker positions in symbols we do not own: how many, and their cost. A position whose
/// numbers do not read counts as one, of unknown (uncounted) cost.
fn unexplained_holdings(state: &CycleState) -> (usize, Decimal) {
    let Some(positions) = &state.broker_positions else {
        return (0, Decimal::ZERO);
    };
    let not_owned = |symbol: &str| !state.owned.iter().any(|o| o.symbol == symbol);
    let unreadable = state
        .unreadable_positions
        .iter()
        .filter(|s| not_owned(s) && !positions.contains_key(*s))
        .count();
    positions
        .values()
        .filter(|p| p.qty > Decimal::ZERO && not_owned(&p.symbol))
        .fold((unreadable, Decimal::ZERO), |(n, value), p| {
            (n + 1, value + p.qty * p.avg_entry_price.abs())
        })
}

/// Protection, then exits, for one owned position.
fn plan_position(
    state: &CycleState,
    config: &ExecutionConfig,
    position: &OwnedPosition,
    ids: &mut Ids<'_>,
    plan: &mut CyclePlan,
) {
    let symbol = position.symbol.as_str();
    let market_open = state.phase.market_open();
    let broker_qty = state
        .broker_positions
        .as_ref()
        .map(|m| m.get(symbol).map_or(Decimal::ZERO, |p| p.qty));
    // Protect what both sides agree we hold.
    let held = match broker_qty {
        Some(b) if b.is_zero() => {
            // No fill of ours explains it: never read as "flat". Touch nothing for this symbol
            // and make the operator look.
            plan.notices.push(Notice {
                kind: "position_missing_at_broker",
                symbol: symbol.to_string(),
                message: format!(
                    "we own {} {symbol} but the broker reports none and no fill explains it; its orders are left as they are — check the account",
                    position.qty
                ),
            });
            return;
        }
        Some(b) if b < position.qty => {
            plan.notices.push(Notice {
                kind: "position_mismatch",
                symbol: symbol.to_string(),
                message: format!(
                    "we own {} {symbol} but the broker reports {b}; protecting {b} until the difference is explained",
                    position.qty
                ),
            });
            b
        }
        _ => position.qty,
    };
    let price = state.market.latest_price(symbol).and_then(decimal);
    let current_stop = stop_order(&state.open_orders, symbol);
    let selling = working_sells(&state.open_orders, symbol);
    let desired = (held - selling).max(Decimal::ZERO);

    // A stop at or above the market would trigger at once; when price is already through the
    // stop level, exit at the market instead (only while the market is open).
    let through_stop = price.is_some_and(|p| p <= position.stop_price);
    if through_stop && desired > Decimal::ZERO {
        let stop_covers = current_stop.map_or(Decimal::ZERO, |s| s.qty - s.filled_qty);
        if market_open {
            if selling.is_zero() {
                plan.exits.push(Action::Exit {
                    intent: ids.sell(symbol, Leg::Exit, held),
                    cancel_stop: current_stop
                        .map(|_| "price is through the stop level: exiting at the market"),
                    why: "price at or below the stop level".into(),
                });
            } else if desired > stop_covers {
                // Part is being sold already and the stop does not guard the rest: sell the
                // rest too (the stop, if any, stays: it is triggering).
                plan.exits.push(Action::Exit {
                    intent: ids.sell(symbol, Leg::Exit, desired - stop_covers),
                    cancel_stop: None,
                    why: "price at or below the stop level, the rest unguarded".into(),
                });
            }
            return;
        }
        if stop_covers >= desired {
            return;
        }
        // Closed and not fully protected: place (or resize) the stop anyway; it triggers at the
        // next open, which is the exit we want, and the position is never left naked overnight.
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
            plan.protect.push(Action::Stop {
                intent: ids.stop(symbol, desired, position.stop_price),
            });
        }
    } else if current_stop.is_some() && selling >= held {
        plan.protect.push(Action::CancelStop {
            symbol: symbol.to_string(),
            why: "an exit order covers the whole position",
        });
    }

    if !market_open || state.session.is_none() || !selling.is_zero() {
        return;
    }
    let Some(price) = price else { return };
    // Targets below the entry price would lock in a loss: they only count above it.
    let above_entry = |target: Option<Decimal>| target.filter(|t| *t > position.avg_price);
    if above_entry(position.target_r2).is_some_and(|r2| price >= r2) {
        plan.exits.push(Action::Exit {
            intent: ids.sell(symbol, Leg::Exit, held),
            cancel_stop: Some("R2 reached: exiting the position"),
            why: "R2 reached".into(),
        });
        return;
    }
    // R1: trim once, resizing the stop first so the shares are free to sell.
    let trim_qty = held
        .checked_mul(config.trim_fraction)
        .map_or(Decimal::ZERO, |q| q.floor());
    if !position.trimmed
        && trim_qty >= Decimal::ONE
        && trim_qty < held
        && above_entry(position.target_r1).is_some_and(|r1| price >= r1)
    {
        let keep = held - trim_qty;
        plan.exits.push(Action::Trim {
            stop: ids.stop(symbol, keep, position.stop_price),
            intent: ids.sell(symbol, Leg::Trim, trim_qty),
        });
        return;
    }
    // After the trim has filled, move the stop to break-even (stops only move up).
    let level = to_tick(position.avg_price);
    if position.trimmed
        && config.breakeven_after_trim
        && position.avg_price < price
        && level > position.stop_price
    {
        plan.exits.push(Action::RaiseStop {
            symbol: symbol.to_string(),
            level,
            stop: ids.stop(symbol, held, level),
        });
    }
}

/// Entry decisions over the watchlist, with the caps applied as if every planned entry fills
/// at its limit (an order that may exist counts against every cap).
fn plan_entries(
    state: &CycleState,
    config: &ExecutionConfig,
    session: &Session,
    ids: &Ids<'_>,
    plan: &mut CyclePlan,
) {
    let rows = match &state.watchlist {
        WatchlistInput::Fresh(rows) => rows,
        WatchlistInput::Unavailable(reason) => {
            tracing::debug!("no entries: {reason}");
            return;
        }
    };
    let now = state.now;
    let window = entry_window(session, config);
    let in_window = window.is_some_and(|(start, end)| now >= start && now < end);
    let owned = &state.owned;
    // Working entry orders count against the caps as if they had filled at their limit.
    let working_entries: Vec<&BrokerOrder> = state
        .open_orders
        .iter()
        .filter(|o| o.side == Side::Buy && !owned.iter().any(|p| p.symbol == o.symbol))
        .collect();
    let mut gross: Decimal = owned.iter().map(|p| p.qty * p.avg_price).sum::<Decimal>()
        + working_entries
            .iter()
            .map(|o| (o.qty - o.filled_qty) * o.limit_price.unwrap_or_default())
            .sum::<Decimal>();
    // What the broker holds beyond our journal counts too: caps are about the account.
    let (unexplained, unexplained_value) = unexplained_holdings(state);
    gross += unexplained_value;
    let mut positions = owned.len() + working_entries.len() + unexplained;
    let mut sent_today = state.journal.entries_sent();
    let mut spent = Decimal::ZERO;
    let mut planned: BTreeSet<&str> = BTreeSet::new();

    for row in rows {
        let symbol = row.symbol.as_str();
        let mut skip = |reason: &'static str, detail: String| {
            plan.candidates.push(Candidate::Skip {
                symbol: symbol.to_string(),
                reason,
                detail,
            });
        };
        if row.scan_date != session.date {
            skip(
                "stale_watchlist_row",
                format!("ScanDate {} is not today", row.scan_date),
            );
            continue;
        }
        if state.journal.entered(symbol) || planned.contains(symbol) {
            skip(
                "already_entered_today",
                "one entry per symbol per session".into(),
            );
            continue;
        }
        if owned.iter().any(|p| p.symbol == symbol) {
            skip("already_owned", "a position is already open".into());
            continue;
        }
        if let Some(held) = state
            .broker_positions
            .as_ref()
            .and_then(|m| m.get(symbol))
            .filter(|p| !p.qty.is_zero())
        {
            skip(
                "broker_position_unexplained",
                format!(
                    "the broker holds {} {symbol} that no order of ours explains",
                    held.qty
                ),
            );
            continue;
        }
        if let Some(source) = &state.kill_switch {
            skip(
                "kill_switch",
                format!("kill switch engaged ({source}): no new entries"),
            );
            continue;
        }
        if !state.allow_entries {
            skip(
                "entries_disabled",
                "entries are disabled for this run".into(),
            );
            continue;
        }
        if state.unreadable_positions.contains(symbol) {
            skip(
                "broker_position_unreadable",
                "the broker lists a position in it whose numbers do not read".into(),
            );
            continue;
        }
        if state.blocked.contains(symbol) {
            skip(
                "order_unresolved",
                "an earlier order's outcome is still unknown".into(),
            );
            continue;
        }
        if !in_window {
            let detail = match window {
                // New York wall time: what the operator reads in the report.
                Some((start, end)) => format!(
                    "entries run {}..{} New York",
                    crate::calendar::ny_datetime(start).format("%H:%M"),
                    crate::calendar::ny_datetime(end).format("%H:%M")
                ),
                None => "the configured entry window does not fit this session".to_string(),
            };
            skip("outside_entry_window", detail);
            continue;
        }
        if !state.incomplete_reads.is_empty() {
            skip(
                "reads_incomplete",
                format!(
                    "{} unavailable this cycle (failed or past the cycle deadline): no entries until the picture is complete",
                    state.incomplete_reads.join(", ")
                ),
            );
            continue;
        }
        // Breakout and hold on the last two closed 10-minute bars of today's session.
        let bars = state.market.last_bars(symbol);
        let today: Vec<_> = bars.iter().filter(|b| b.start >= session.open).collect();
        if let Some(last) = today.last() {
            let age = now - last.end;
            let max_age = Duration::try_minutes(config.max_bar_age_minutes);
            if max_age.is_none_or(|max| age > max) {
                skip(
                    "stale_bars",
                    format!("the last closed bar ended {} min ago", age.num_minutes()),
                );
                continue;
            }
        }
        if today.len() < 2 {
            skip("no_bars", "fewer than two closed bars today".into());
            continue;
        }
        let (prev_bar, last_bar) = (today[today.len() - 2], today[today.len() - 1]);
        let level = row.entry_level.to_f64().unwrap_or(f64::NAN);
        let (prev, last) = (prev_bar.close, last_bar.close);
        if !(prev > level && last >= level) {
            skip(
                "not_confirmed",
                format!("closes {prev:.2}, {last:.2} vs entry level {level:.2}"),
            );
            continue;
        }
        let Some(price) = decimal(last) else {
            skip("bad_price", format!("the last close {last} is not a price"));
            continue;
        };
        let Some(drift_limit) = Decimal::ONE
            .checked_add(config.max_entry_drift_pct / Decimal::ONE_HUNDRED)
            .and_then(|f| row.entry_level.checked_mul(f))
        else {
            skip(
                "config_out_of_range",
                "max_entry_drift_pct is out of range".into(),
            );
            continue;
        };
        if price > drift_limit {
            skip("price_drift", format!("{price} is above {drift_limit}"));
            continue;
        }
        let stop = row.stop_loss;
        if stop >= price {
            skip(
                "risk_invalid",
                format!("stop {stop} is not below price {price}"),
            );
            continue;
        }
        let risk_pct = (price - stop) / price * Decimal::ONE_HUNDRED;
        if risk_pct > config.max_risk_pct {
            skip(
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
            skip("max_positions", format!("{positions} positions open"));
            continue;
        }
        if sent_today >= config.max_entries_per_day as usize {
            skip("max_entries_per_day", format!("{sent_today} entries today"));
            continue;
        }
        let account = match &state.account {
            Ok(account) => account,
            Err(why) => {
                skip("account_unavailable", why.clone());
                continue;
            }
        };
        if account.trading_suspended {
            // The broker-side kill switch (Alpaca `suspend_trade`): an order would be refused.
            skip(
                "broker_suspended",
                "new orders are suspended at the broker (avwap-execution suspend-trading --resume lifts it)".into(),
            );
            continue;
        }
        let Some(limit) = Decimal::ONE
            .checked_add(config.entry_slippage_bps / Decimal::new(10_000, 0))
            .and_then(|f| price.checked_mul(f))
            .map(to_tick)
        else {
            skip(
                "config_out_of_range",
                "entry_slippage_bps is out of range".into(),
            );
            continue;
        };
        let qty = size(
            account.equity,
            account.buying_power - spent,
            price,
            limit,
            stop,
            gross,
            config,
        );
        if qty < Decimal::ONE {
            skip(
                "size_zero",
                "caps or buying power leave no whole share".into(),
            );
            continue;
        }
        let attempt = ids.journal.last_attempt(symbol, "en") + 1;
        let mut intent = new_intent(
            IntentSpec {
                session: session.date,
                symbol,
                leg: Leg::Entry,
                attempt,
                side: Side::Buy,
                qty,
                order_type: OrderType::Limit,
            },
            now,
        );
        intent.limit_price = Some(limit);
        intent.plan = Some(EntryPlan {
            stop_price: to_tick(stop),
            target_r1: Some(row.target_r1),
            target_r2: Some(row.target_r2),
        });
        plan.candidates.push(Candidate::Enter {
            intent: Box::new(intent),
            why: format!(
                "breakout held ({prev:.2}, {last:.2} over {level:.2}): buy {qty} limit {limit}, stop {stop}"
            ),
        });
        planned.insert(symbol);
        positions += 1;
        sent_today += 1;
        gross += qty * limit;
        spent += qty * limit;
    }
}

/// The entry window of `session`: `None` when the configured offsets do not fit a day.
pub fn entry_window(
    session: &Session,
    config: &ExecutionConfig,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let start = session.open.checked_add_signed(Duration::try_minutes(
        config.entry_start_minutes_after_open,
    )?)?;
    let end = session.close.checked_sub_signed(Duration::try_minutes(
        config.entry_end_minutes_before_close,
    )?)?;
    Some((start, end))
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
    let by_risk = equity
        .checked_mul(config.risk_per_trade)
        .and_then(|budget| budget.checked_div(risk_per_share))
        .map_or(Decimal::ZERO, |shares| shares.floor());
    let by_symbol = (config.max_notional_per_symbol / limit).floor();
    let by_gross = ((config.max_gross_notional - gross_now).max(Decimal::ZERO) / limit).floor();
    let by_power = (buying_power.max(Decimal::ZERO) / limit).floor();
    by_risk
        .min(by_symbol)
        .min(by_gross)
        .min(by_power)
        .max(Decimal::ZERO)
}

#[cfg(test)]
mod tests;
