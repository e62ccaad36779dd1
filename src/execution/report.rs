//! `avwap-execution report`: a session as it stood at its close — decisions, what became of
//! each watchlist candidate, orders, fills, stops, positions and P&L — or a range of sessions
//! summarised, replayed from the state database's journal; times in New York.
//!
//! "At the close" means everything the journal recorded before the next session opened: no
//! order of ours trades in between, and what the broker reports after the bell (a day order
//! expired, a fill recorded by the cycle after it) belongs to the day it closes. A session not
//! closed yet is shown as it stands now, labelled so.

mod as_of;

pub use as_of::{
    candidate_outcomes, holdings_at, orders_at, skip_reason, symbols_by_last_reason, trimmed_at,
    working_stop, Basis, CandidateOutcome, Holding, OrderAt,
};

use crate::calendar::{self, CalendarError, NEW_YORK};
use crate::execution::db::{
    DbError, EntryPlan, Event, Fill, OrderRow, OrderUpdate, OwnedPosition, StateDb,
};
use crate::execution::ids::ClientOrderId;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

/// The zone every time in a report is given in.
pub const TIME_ZONE: &str = "America/New_York";

/// Why a report cannot be built; the command line's mistakes (exit 10) apart from an
/// unreadable journal (exit 13).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Journal(#[from] DbError),
    #[error("{0}; give dates within it")]
    Calendar(#[from] CalendarError),
    #[error("report --from {from} --to {to}: the range ends before it starts; give --from on or before --to")]
    RangeReversed { from: NaiveDate, to: NaiveDate },
    #[error(
        "report --from {from} --to {to}: no NYSE session in the range; give a range that holds one"
    )]
    NoSession { from: NaiveDate, to: NaiveDate },
    #[error(
        "report {date}: that date is after today ({today}, New York); nothing has happened yet"
    )]
    InTheFuture { date: NaiveDate, today: NaiveDate },
}

impl ReportError {
    /// A mistake in the dates asked for (not in the journal).
    pub fn is_bad_request(&self) -> bool {
        !matches!(self, ReportError::Journal(_))
    }
}

/// What a report's state is as of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsOf {
    /// `at_close`: replayed to the close; `current`: the session has not closed.
    pub basis: Basis,
    /// The cut-off: the next session's open (what was recorded before it counts).
    pub cutoff: String,
    pub note: String,
}

/// Everything the journal holds that a report replays, read once.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    pub orders: Vec<OrderRow>,
    pub updates: Vec<OrderUpdate>,
    pub fills: Vec<Fill>,
    pub plans: BTreeMap<String, EntryPlan>,
    /// The positions table now (one row per symbol) and the closed positions kept.
    pub positions: Vec<OwnedPosition>,
    pub closed: Vec<(OwnedPosition, DateTime<Utc>)>,
}

impl Journal {
    pub fn read(db: &StateDb) -> Result<Self, DbError> {
        Ok(Journal {
            orders: db.all_orders()?,
            updates: db.order_updates()?,
            fills: db.fills()?,
            plans: db.entry_plans()?.into_iter().collect(),
            positions: db.all_positions()?,
            closed: db.closed_positions()?,
        })
    }
}

/// The instants a session's report covers: from its open to the next session's open, and its
/// close. A date that is not a session covers nothing: its window is empty at the next open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub date: NaiveDate,
    pub is_session: bool,
    pub start: DateTime<Utc>,
    pub close: Option<DateTime<Utc>>,
    pub cutoff: DateTime<Utc>,
}

impl Window {
    pub fn of(date: NaiveDate) -> Result<Self, CalendarError> {
        let next_open = |d: NaiveDate| -> Result<DateTime<Utc>, CalendarError> {
            let next = calendar::next_session(d)?;
            Ok(calendar::session(next)?
                .map_or(calendar::ny_instant(next, nine_thirty()), |s| s.open))
        };
        let cutoff = next_open(date)?;
        Ok(match calendar::session(date)? {
            Some(s) => Window {
                date,
                is_session: true,
                start: s.open,
                close: Some(s.close),
                cutoff,
            },
            None => Window {
                date,
                is_session: false,
                start: cutoff,
                close: None,
                cutoff,
            },
        })
    }

    fn contains(&self, t: DateTime<Utc>) -> bool {
        t >= self.start && t < self.cutoff
    }

    /// The state as of this window, at `now`: not closed yet → current.
    fn as_of(&self, now: DateTime<Utc>) -> AsOf {
        let cutoff = ny_rfc3339(self.cutoff);
        match self.close {
            Some(close) if now < close => AsOf {
                basis: Basis::Current,
                cutoff,
                note: format!(
                    "current state: the session has not closed yet (it closes {})",
                    ny_stamp(close)
                ),
            },
            Some(_) => AsOf {
                basis: Basis::AtClose,
                cutoff,
                note: format!(
                    "as at the close: the journal up to the next open, {}",
                    ny_stamp(self.cutoff)
                ),
            },
            None => AsOf {
                basis: Basis::AtClose,
                cutoff,
                note: format!(
                    "{} is not an NYSE session: nothing traded; positions and stops as at the last close before it",
                    self.date
                ),
            },
        }
    }
}

fn nine_thirty() -> chrono::NaiveTime {
    chrono::NaiveTime::from_hms_opt(9, 30, 0).unwrap_or_default()
}

/// An instant as RFC 3339 with New York's offset (`2010-08-09T10:05:00-04:00`).
pub fn ny_rfc3339(t: DateTime<Utc>) -> String {
    t.with_timezone(&NEW_YORK)
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

/// An instant for tables: New York wall time with the zone (`2010-08-09 10:05:00 EDT`).
pub fn ny_stamp(t: DateTime<Utc>) -> String {
    t.with_timezone(&NEW_YORK)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

#[derive(Debug, Serialize)]
pub struct DayReport {
    pub date: NaiveDate,
    /// Every time in this report is New York time ([`TIME_ZONE`]).
    pub time_zone: &'static str,
    pub as_of: AsOf,
    /// Entry decisions taken (with their reasoning) and skips counted by reason (cycles).
    pub entries_taken: Vec<Decision>,
    pub skipped_by_reason: BTreeMap<String, usize>,
    /// Candidates not entered, counted by their last skip reason of the session.
    pub skipped_symbols_by_reason: BTreeMap<String, usize>,
    /// Every candidate's last skip reason of the day (as in `candidates`).
    pub last_skip_by_symbol: BTreeMap<String, String>,
    /// Every watchlist candidate of the session: entered or why not, and how many cycles.
    pub candidates: Vec<CandidateLine>,
    /// Orders of the session, orders that changed in it and orders working at its close, each
    /// as it stood at the close.
    pub orders: Vec<OrderLine>,
    pub fills: Vec<FillLine>,
    /// Protective stops working at the close.
    pub stops: Vec<StopLine>,
    /// Positions open at the close and positions closed during the session.
    pub positions: Vec<PositionLine>,
    /// Realized P&L of the sells recorded in the session (each against the cost at the time).
    pub realized_pnl_today: Decimal,
    pub events: usize,
}

#[derive(Debug, Serialize)]
pub struct Decision {
    pub at: String,
    pub symbol: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CandidateLine {
    pub symbol: String,
    /// `entered` or `skipped`.
    pub outcome: &'static str,
    pub entered_at: Option<String>,
    /// The last skip reason (the last one other than `outside_entry_window` if there is one),
    /// its detail and time, how many cycles gave it and how many skipped the candidate at all.
    pub last_reason: Option<String>,
    pub last_detail: Option<String>,
    pub last_at: Option<String>,
    pub cycles_with_last_reason: usize,
    pub cycles_skipped: usize,
    pub reasons: BTreeMap<String, usize>,
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
    /// Whether status and fills are as at the close or only as known now.
    pub as_of: Basis,
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
    pub as_of: Basis,
}

#[derive(Debug, Serialize)]
pub struct PositionLine {
    pub symbol: String,
    pub status: &'static str,
    pub qty: Decimal,
    pub avg_price: Decimal,
    pub stop_price: Decimal,
    /// Where the stop level comes from: the stop working at the close, the level the position
    /// closed with, or (no stop working then) the position's level as known now.
    pub stop_as_of: Basis,
    pub target_r1: Option<Decimal>,
    pub target_r2: Option<Decimal>,
    pub trimmed: bool,
    pub opened_session: NaiveDate,
    pub realized_pnl: Decimal,
}

/// Build the report of `date` from the state database, as at its close (or as it stands now
/// while the session is open).
pub fn day_report(
    db: &StateDb,
    date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<DayReport, ReportError> {
    let window = Window::of(date)?;
    let journal = Journal::read(db)?;
    let events = if window.is_session {
        db.events(Some(date))?
    } else {
        Vec::new()
    };
    Ok(day_report_from(&journal, &events, &window, now))
}

/// The report of one window from journal rows already read (`events`: the session's).
pub fn day_report_from(
    journal: &Journal,
    events: &[Event],
    window: &Window,
    now: DateTime<Utc>,
) -> DayReport {
    let as_of = window.as_of(now);
    let current = as_of.basis == Basis::Current;
    // While the session is open everything shown is simply what the journal holds now.
    let basis = |b: Basis| if current { Basis::Current } else { b };

    let mut entries_taken = Vec::new();
    let mut skipped_by_reason = BTreeMap::new();
    for e in events {
        match e.kind.as_str() {
            "entry_decision" => entries_taken.push(Decision {
                at: ny_rfc3339(e.at),
                symbol: e.symbol.clone().unwrap_or_default(),
                message: e.message.clone(),
            }),
            "entry_skipped" => *skipped_by_reason.entry(skip_reason(e)).or_insert(0) += 1,
            _ => {}
        }
    }
    let outcomes = candidate_outcomes(events);
    let skipped_symbols_by_reason = symbols_by_last_reason(&outcomes);
    let last_skip_by_symbol = outcomes
        .iter()
        .filter_map(|o| Some((o.symbol.clone(), o.last_reason.clone()?)))
        .collect();
    let candidates = outcomes
        .into_iter()
        .map(|o| CandidateLine {
            outcome: if o.entered { "entered" } else { "skipped" },
            entered_at: o.entered_at.map(ny_rfc3339),
            symbol: o.symbol,
            last_reason: o.last_reason,
            last_detail: o.last_detail,
            last_at: o.last_at.map(ny_rfc3339),
            cycles_with_last_reason: o.cycles_with_last_reason,
            cycles_skipped: o.cycles_skipped,
            reasons: o.reasons,
        })
        .collect();

    let orders_then = orders_at(&journal.orders, &journal.updates, window.cutoff);
    let orders = orders_then
        .iter()
        .filter(|o| {
            let of_session = ClientOrderId::parse(&o.order.client_order_id)
                .is_some_and(|id| id.session == window.date);
            let changed = if o.recorded.is_empty() {
                window.contains(o.order.updated_at)
            } else {
                o.recorded.iter().any(|t| window.contains(*t))
            };
            of_session || changed || o.order.status.is_open()
        })
        .map(|o| OrderLine {
            client_order_id: o.order.client_order_id.clone(),
            symbol: o.order.symbol.clone(),
            side: o.order.side.as_str().to_string(),
            order_type: o.order.order_type.as_str().to_string(),
            qty: o.order.qty,
            filled_qty: o.order.filled_qty,
            filled_avg_price: o.order.filled_avg_price,
            limit_price: o.order.limit_price,
            stop_price: o.order.stop_price,
            status: o.order.status.to_string(),
            as_of: basis(o.basis),
        })
        .collect();

    let day_fills: Vec<&Fill> = journal
        .fills
        .iter()
        .filter(|f| window.contains(f.recorded_at))
        .collect();
    let realized_pnl_today: Decimal = day_fills.iter().filter_map(|f| f.realized_pnl).sum();
    let fills = day_fills
        .into_iter()
        .map(|f| FillLine {
            at: ny_rfc3339(f.recorded_at),
            client_order_id: f.client_order_id.clone(),
            symbol: f.symbol.clone(),
            side: f.side.as_str().to_string(),
            qty: f.qty,
            price: f.price,
            realized_pnl: f.realized_pnl,
        })
        .collect();

    let holdings = holdings_at(&journal.fills, window.cutoff);
    let positions = holdings
        .iter()
        .filter(|h| h.closed_at.is_none_or(|t| t >= window.start))
        .map(|h| position_line(h, journal, &orders_then, basis))
        .collect();
    let mut stops: Vec<StopLine> = holdings
        .iter()
        .filter(|h| h.open())
        .filter_map(|h| working_stop(&h.symbol, &orders_then))
        .map(|o| StopLine {
            symbol: o.order.symbol.clone(),
            client_order_id: o.order.client_order_id.clone(),
            stop_price: o.order.stop_price.unwrap_or_default(),
            qty: o.order.qty - o.order.filled_qty,
            as_of: basis(o.basis),
        })
        .collect();
    stops.sort_by(|a, b| a.symbol.cmp(&b.symbol));

    DayReport {
        date: window.date,
        time_zone: TIME_ZONE,
        as_of,
        entries_taken,
        skipped_by_reason,
        skipped_symbols_by_reason,
        last_skip_by_symbol,
        candidates,
        orders,
        fills,
        stops,
        positions,
        realized_pnl_today: realized_pnl_today.round_dp(2),
        events: events.len(),
    }
}

/// A holding as a report line: the stop from the order working at the cut-off, else the
/// level it closed with, else the position's level as known now; targets from its entry plan.
fn position_line(
    h: &Holding,
    journal: &Journal,
    orders: &[OrderAt],
    basis: impl Fn(Basis) -> Basis,
) -> PositionLine {
    let same = |p: &OwnedPosition| {
        p.symbol == h.symbol && p.entry_client_order_id == h.entry_client_order_id
    };
    let closed_row = journal.closed.iter().map(|(p, _)| p).find(|p| same(p));
    let row = journal.positions.iter().find(|p| same(p)).or(closed_row);
    let (stop_price, stop_as_of) = match (working_stop(&h.symbol, orders), closed_row) {
        (Some(stop), _) if h.open() => (stop.order.stop_price.unwrap_or_default(), stop.basis),
        (_, Some(closed)) if !h.open() => (closed.stop_price, Basis::AtClose),
        _ => (
            row.map(|p| p.stop_price)
                .or_else(|| {
                    journal
                        .plans
                        .get(&h.entry_client_order_id)
                        .map(|p| p.stop_price)
                })
                .unwrap_or_default(),
            Basis::KnownNow,
        ),
    };
    let plan = journal.plans.get(&h.entry_client_order_id);
    PositionLine {
        symbol: h.symbol.clone(),
        status: if h.open() { "open" } else { "closed" },
        qty: h.qty,
        avg_price: h.avg_price,
        stop_price,
        stop_as_of: basis(stop_as_of),
        target_r1: plan
            .and_then(|p| p.target_r1)
            .or(row.and_then(|p| p.target_r1)),
        target_r2: plan
            .and_then(|p| p.target_r2)
            .or(row.and_then(|p| p.target_r2)),
        trimmed: trimmed_at(h, orders),
        opened_session: h.opened_session,
        realized_pnl: h.realized_pnl,
    }
}

/// One session of a range: what it did and what it held at its close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionSummary {
    pub date: NaiveDate,
    pub as_of: Basis,
    /// Positions opened (first buy fill recorded in the session).
    pub entries: usize,
    /// Trim orders with a fill recorded in the session.
    pub trims: usize,
    /// Positions closed (the sell that took them to zero recorded in the session).
    pub exits: usize,
    pub realized_pnl: Decimal,
    /// Symbols held at the close.
    pub open_at_close: Vec<String>,
    /// Candidates not entered, by their last skip reason of the session.
    pub skipped_by_reason: BTreeMap<String, usize>,
}

/// The range's totals; `open_at_end` is the last session's close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RangeTotals {
    pub sessions: usize,
    pub entries: usize,
    pub trims: usize,
    pub exits: usize,
    pub realized_pnl: Decimal,
    pub open_at_end: Vec<String>,
    pub skipped_by_reason: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RangeReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub time_zone: &'static str,
    pub sessions: Vec<SessionSummary>,
    pub totals: RangeTotals,
}

/// The sessions of `from..=to` (both inclusive), refusing a reversed range, one that ends
/// after `today` (New York) and one without a session.
pub fn range_sessions(
    from: NaiveDate,
    to: NaiveDate,
    today: NaiveDate,
) -> Result<Vec<NaiveDate>, ReportError> {
    if from > to {
        return Err(ReportError::RangeReversed { from, to });
    }
    if to > today {
        return Err(ReportError::InTheFuture { date: to, today });
    }
    let sessions: Vec<NaiveDate> = calendar::sessions_between(from, to)?
        .into_iter()
        .map(|s| s.date)
        .collect();
    if sessions.is_empty() {
        return Err(ReportError::NoSession { from, to });
    }
    Ok(sessions)
}

/// A date for `report --date`: refused when after `today` or outside the calendar.
pub fn check_date(date: NaiveDate, today: NaiveDate) -> Result<NaiveDate, ReportError> {
    calendar::is_session(date)?;
    if date > today {
        return Err(ReportError::InTheFuture { date, today });
    }
    Ok(date)
}

/// `report --from --to`: each session of the range summarised, then the totals.
pub fn range_report(
    db: &StateDb,
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Utc>,
) -> Result<RangeReport, ReportError> {
    let sessions = range_sessions(from, to, calendar::ny_date(now))?;
    let journal = Journal::read(db)?;
    let mut summaries = Vec::new();
    for date in sessions {
        let window = Window::of(date)?;
        let events = db.events(Some(date))?;
        summaries.push(session_summary(&journal, &events, &window, now));
    }
    Ok(range_from(from, to, summaries))
}

/// One session's summary from journal rows already read (`events`: the session's).
pub fn session_summary(
    journal: &Journal,
    events: &[Event],
    window: &Window,
    now: DateTime<Utc>,
) -> SessionSummary {
    let holdings = holdings_at(&journal.fills, window.cutoff);
    let fills: Vec<&Fill> = journal
        .fills
        .iter()
        .filter(|f| window.contains(f.recorded_at))
        .collect();
    let trims: std::collections::BTreeSet<&str> = fills
        .iter()
        .filter(|f| {
            ClientOrderId::parse(&f.client_order_id)
                .is_some_and(|id| id.leg == crate::execution::ids::Leg::Trim)
        })
        .map(|f| f.client_order_id.as_str())
        .collect();
    SessionSummary {
        date: window.date,
        as_of: window.as_of(now).basis,
        entries: holdings
            .iter()
            .filter(|h| window.contains(h.opened_at))
            .count(),
        trims: trims.len(),
        exits: holdings
            .iter()
            .filter(|h| h.closed_at.is_some_and(|t| window.contains(t)))
            .count(),
        realized_pnl: fills
            .iter()
            .filter_map(|f| f.realized_pnl)
            .sum::<Decimal>()
            .round_dp(2),
        open_at_close: holdings
            .iter()
            .filter(|h| h.open())
            .map(|h| h.symbol.clone())
            .collect(),
        skipped_by_reason: symbols_by_last_reason(&candidate_outcomes(events)),
    }
}

/// The range report of these session summaries (in date order).
pub fn range_from(from: NaiveDate, to: NaiveDate, sessions: Vec<SessionSummary>) -> RangeReport {
    let mut skipped_by_reason = BTreeMap::new();
    for s in &sessions {
        for (reason, n) in &s.skipped_by_reason {
            *skipped_by_reason.entry(reason.clone()).or_insert(0) += n;
        }
    }
    let totals = RangeTotals {
        sessions: sessions.len(),
        entries: sessions.iter().map(|s| s.entries).sum(),
        trims: sessions.iter().map(|s| s.trims).sum(),
        exits: sessions.iter().map(|s| s.exits).sum(),
        realized_pnl: sessions.iter().map(|s| s.realized_pnl).sum(),
        open_at_end: sessions
            .last()
            .map(|s| s.open_at_close.clone())
            .unwrap_or_default(),
        skipped_by_reason,
    };
    RangeReport {
        from,
        to,
        time_zone: TIME_ZONE,
        sessions,
        totals,
    }
}

fn opt(d: Option<Decimal>) -> String {
    d.map(|d| d.to_string()).unwrap_or_else(|| "-".into())
}

/// An RFC 3339 time of this report as a table stamp (New York, with the zone).
fn stamp(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| ny_stamp(t.with_timezone(&Utc)))
        .unwrap_or_else(|_| rfc3339.to_string())
}

fn counts(map: &BTreeMap<String, usize>) -> String {
    let mut list: Vec<(&String, &usize)> = map.iter().collect();
    list.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    list.iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The day report as text tables.
pub fn render_table(r: &DayReport) -> String {
    let known_now = "* = as known now: recorded before avwap kept order history";
    let mut out = format!(
        "avwap execution report for {} ({})\nTimes are New York ({}).\n\n",
        r.date, r.as_of.note, r.time_zone
    );
    out.push_str(&format!("Entries taken: {}\n", r.entries_taken.len()));
    for d in &r.entries_taken {
        out.push_str(&format!(
            "  {}  {:<6} {}\n",
            stamp(&d.at),
            d.symbol,
            d.message
        ));
    }
    out.push_str(&format!(
        "\nCandidates ({}): entered, or why not (the last reason; cycles that gave it of the cycles that skipped it)\n",
        r.candidates.len()
    ));
    for c in &r.candidates {
        let (reason, cycles, detail) = match &c.entered_at {
            Some(at) => (
                "-".to_string(),
                String::new(),
                format!("entry decided {}", stamp(at)),
            ),
            None => (
                c.last_reason.clone().unwrap_or_else(|| "-".into()),
                format!("{}/{}", c.cycles_with_last_reason, c.cycles_skipped),
                c.last_detail.clone().unwrap_or_default(),
            ),
        };
        let line = format!(
            "  {:<6} {:<7}  {:<28} {:>7}  {}",
            c.symbol, c.outcome, reason, cycles, detail
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "\nSkips by reason:\n  {:<28} {:>10} {:>6}\n",
        "reason", "candidates", "cycles"
    ));
    for (reason, n) in &r.skipped_by_reason {
        let symbols = r
            .skipped_symbols_by_reason
            .get(reason)
            .copied()
            .unwrap_or(0);
        out.push_str(&format!("  {reason:<28} {symbols:>10} {n:>6}\n"));
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
    let mut any_known_now = false;
    for o in &r.orders {
        any_known_now |= o.as_of == Basis::KnownNow;
        out.push_str(&format!(
            "  {:<28} {:<6} {:<4} {:<6} {:>6} {:>6} {:>9} {:>9} {:>9}  {}{}\n",
            o.client_order_id,
            o.symbol,
            o.side,
            o.order_type,
            o.qty,
            o.filled_qty,
            opt(o.filled_avg_price),
            opt(o.limit_price),
            opt(o.stop_price),
            o.status,
            o.as_of.mark()
        ));
    }
    out.push_str(&format!("\nFills ({}):\n", r.fills.len()));
    for f in &r.fills {
        out.push_str(&format!(
            "  {}  {:<28} {:<6} {:<4} {:>6} @ {}\n",
            stamp(&f.at),
            f.client_order_id,
            f.symbol,
            f.side,
            f.qty,
            f.price
        ));
    }
    out.push_str(&format!(
        "\nProtective stops working ({}):\n",
        r.stops.len()
    ));
    for s in &r.stops {
        any_known_now |= s.as_of == Basis::KnownNow;
        out.push_str(&format!(
            "  {:<6} {:>6} @ {}{}  ({})\n",
            s.symbol,
            s.qty,
            s.stop_price,
            s.as_of.mark(),
            s.client_order_id
        ));
    }
    out.push_str(&format!("\nPositions ({}):\n", r.positions.len()));
    for p in &r.positions {
        any_known_now |= p.stop_as_of == Basis::KnownNow;
        out.push_str(&format!(
            "  {:<6} {:<6} qty {:>6} avg {:>9} stop {:>9}{:<1} R1 {:>9} R2 {:>9} trimmed {:<5} realized {}\n",
            p.symbol,
            p.status,
            p.qty,
            p.avg_price,
            p.stop_price,
            p.stop_as_of.mark(),
            opt(p.target_r1),
            opt(p.target_r2),
            p.trimmed,
            p.realized_pnl
        ));
    }
    out.push_str(&format!(
        "\nRealized P&L of the session: {}\n",
        r.realized_pnl_today
    ));
    if any_known_now {
        out.push_str(&format!("\n{known_now}\n"));
    }
    out
}

/// The range report as a table: one line per session, then the totals.
pub fn render_range_table(r: &RangeReport) -> String {
    let mut out = format!(
        "avwap execution report {}..{}: {} session(s), each as at its close\n\n",
        r.from, r.to, r.totals.sessions
    );
    out.push_str(&format!(
        "  {:<10} {:>7} {:>5} {:>5} {:>12} {:>4}  {}\n",
        "session",
        "entries",
        "trims",
        "exits",
        "realized",
        "open",
        "skipped (candidates by last reason)"
    ));
    for s in &r.sessions {
        let date = if s.as_of == Basis::Current {
            format!("{}~", s.date)
        } else {
            s.date.to_string()
        };
        let line = format!(
            "  {:<10} {:>7} {:>5} {:>5} {:>12} {:>4}  {}",
            date,
            s.entries,
            s.trims,
            s.exits,
            format!("{:.2}", s.realized_pnl),
            s.open_at_close.len(),
            counts(&s.skipped_by_reason)
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let t = &r.totals;
    let line = format!(
        "  {:<10} {:>7} {:>5} {:>5} {:>12} {:>4}  {}",
        "total",
        t.entries,
        t.trims,
        t.exits,
        format!("{:.2}", t.realized_pnl),
        t.open_at_end.len(),
        counts(&t.skipped_by_reason)
    );
    out.push_str(line.trim_end());
    out.push('\n');
    out.push_str(&format!(
        "\nOpen at the end ({}): {}\n",
        t.open_at_end.len(),
        if t.open_at_end.is_empty() {
            "none".to_string()
        } else {
            t.open_at_end.join(", ")
        }
    ));
    if r.sessions.iter().any(|s| s.as_of == Basis::Current) {
        out.push_str("~ = the session has not closed yet: as it stands now\n");
    }
    out
}

#[cfg(test)]
mod tests;
