//! The replay of journal rows to a session's close, on small hand-made journals: a stop
//! replaced after the close, a position closed the next day, a re-entry, orders recorded
//! before history was kept, skip reasons, range checks.

use super::*;
use crate::broker::{BrokerOrder, OrderStatus, OrderType, Side, TimeInForce};
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// New York wall time `YYYY-MM-DD HH:MM` as an instant.
fn ny(s: &str) -> DateTime<Utc> {
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    calendar::ny_instant(t.date(), t.time())
}

// 2026-03-02 (Mon) and 2026-03-03 (Tue) are sessions.
const MON: &str = "2026-03-02";
const TUE: &str = "2026-03-03";

fn order(cid: &str, side: Side, kind: OrderType, qty: &str, at: &str) -> BrokerOrder {
    let symbol = ClientOrderId::parse(cid)
        .map(|id| id.symbol)
        .unwrap_or_default();
    BrokerOrder {
        id: format!("b-{cid}"),
        client_order_id: cid.to_string(),
        symbol,
        side,
        qty: d(qty),
        filled_qty: Decimal::ZERO,
        filled_avg_price: None,
        order_type: kind,
        limit_price: None,
        stop_price: None,
        time_in_force: TimeInForce::Gtc,
        status: OrderStatus::New,
        submitted_at: ny(at),
        updated_at: ny(at),
        replaced_by: None,
    }
}

fn update(o: &BrokerOrder, status: OrderStatus, filled: &str, at: &str) -> OrderUpdate {
    OrderUpdate {
        client_order_id: o.client_order_id.clone(),
        status,
        qty: o.qty,
        filled_qty: d(filled),
        filled_avg_price: o.filled_avg_price,
        limit_price: o.limit_price,
        stop_price: o.stop_price,
        replaced_by: None,
        broker_updated_at: ny(at),
        recorded_at: ny(at),
    }
}

fn fill(cid: &str, side: Side, qty: &str, price: &str, at: &str, pnl: Option<&str>) -> Fill {
    Fill {
        client_order_id: cid.to_string(),
        symbol: ClientOrderId::parse(cid)
            .map(|id| id.symbol)
            .unwrap_or_default(),
        side,
        qty: d(qty),
        price: d(price),
        cumulative_qty: d(qty),
        recorded_at: ny(at),
        realized_pnl: pnl.map(d),
    }
}

fn row(order: BrokerOrder) -> OrderRow {
    OrderRow {
        order,
        adopted: false,
    }
}

/// ACME: bought Monday 10:00 (100 @ 50.00) with a stop at 48.00 that is replaced Tuesday
/// 10:30 by one at 50.00 and fills Tuesday 11:00 (sold 100 @ 50.00 − 0.10).
fn acme_journal() -> Journal {
    let mut entry = order(
        "avw-20260302-ACME-en-1",
        Side::Buy,
        OrderType::Limit,
        "100",
        "2026-03-02 10:00",
    );
    entry.limit_price = Some(d("50.05"));
    let mut st1 = order(
        "avw-20260302-ACME-st1-1",
        Side::Sell,
        OrderType::Stop,
        "100",
        "2026-03-02 10:10",
    );
    st1.stop_price = Some(d("48.00"));
    let mut st2 = order(
        "avw-20260303-ACME-st2-1",
        Side::Sell,
        OrderType::Stop,
        "100",
        "2026-03-03 10:30",
    );
    st2.stop_price = Some(d("50.00"));
    let mut updates = vec![
        update(&entry, OrderStatus::New, "0", "2026-03-02 10:00"),
        update(&entry, OrderStatus::Filled, "100", "2026-03-02 10:10"),
        update(&st1, OrderStatus::New, "0", "2026-03-02 10:10"),
        update(&st1, OrderStatus::Replaced, "0", "2026-03-03 10:30"),
        update(&st2, OrderStatus::New, "0", "2026-03-03 10:30"),
        update(&st2, OrderStatus::Filled, "100", "2026-03-03 11:00"),
    ];
    updates.sort_by_key(|u| u.recorded_at);
    // The rows as they stand now.
    let mut entry_now = entry.clone();
    entry_now.status = OrderStatus::Filled;
    entry_now.filled_qty = d("100");
    let mut st1_now = st1.clone();
    st1_now.status = OrderStatus::Replaced;
    st1_now.updated_at = ny("2026-03-03 10:30");
    let mut st2_now = st2.clone();
    st2_now.status = OrderStatus::Filled;
    st2_now.filled_qty = d("100");
    Journal {
        orders: vec![row(entry_now), row(st1_now), row(st2_now)],
        updates,
        fills: vec![
            fill(
                "avw-20260302-ACME-en-1",
                Side::Buy,
                "100",
                "50.00",
                "2026-03-02 10:10",
                None,
            ),
            fill(
                "avw-20260303-ACME-st2-1",
                Side::Sell,
                "100",
                "49.90",
                "2026-03-03 11:00",
                Some("-10"),
            ),
        ],
        plans: BTreeMap::from([(
            "avw-20260302-ACME-en-1".to_string(),
            EntryPlan {
                stop_price: d("48.00"),
                target_r1: Some(d("52.00")),
                target_r2: Some(d("54.00")),
            },
        )]),
        positions: Vec::new(),
        closed: Vec::new(),
    }
}

fn after_tuesday() -> DateTime<Utc> {
    ny("2026-03-05 20:00")
}

#[test]
fn a_past_session_shows_the_position_and_stop_as_they_stood_at_its_close() {
    let journal = acme_journal();
    let window = Window::of(date(MON)).unwrap();
    assert_eq!(window.cutoff, ny("2026-03-03 09:30"));
    let r = day_report_from(&journal, &[], &window, after_tuesday());
    assert_eq!(r.as_of.basis, Basis::AtClose);
    assert_eq!(r.as_of.cutoff, "2026-03-03T09:30:00-05:00");
    // Closed on Tuesday, so open at Monday's close, protected by the first stop.
    assert_eq!(r.positions.len(), 1);
    let p = &r.positions[0];
    assert_eq!(
        (p.status, p.qty, p.avg_price),
        ("open", d("100"), d("50.00"))
    );
    assert_eq!((p.stop_price, p.stop_as_of), (d("48.00"), Basis::AtClose));
    assert_eq!(
        (p.target_r1, p.target_r2),
        (Some(d("52.00")), Some(d("54.00")))
    );
    assert_eq!(p.realized_pnl, Decimal::ZERO);
    assert_eq!(r.stops.len(), 1);
    assert_eq!(r.stops[0].client_order_id, "avw-20260302-ACME-st1-1");
    // The first stop was "new" at the close, although it is "replaced" now; Tuesday's
    // stop did not exist.
    let statuses: Vec<(&str, &str)> = r
        .orders
        .iter()
        .map(|o| (o.client_order_id.as_str(), o.status.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("avw-20260302-ACME-en-1", "filled"),
            ("avw-20260302-ACME-st1-1", "new")
        ]
    );
    assert!(r.orders.iter().all(|o| o.as_of == Basis::AtClose));
    assert_eq!(r.fills.len(), 1);
    assert_eq!(r.fills[0].at, "2026-03-02T10:10:00-05:00");
    assert_eq!(r.realized_pnl_today, Decimal::ZERO);
}

#[test]
fn the_next_session_shows_the_position_closed_with_its_pnl_and_no_stop() {
    let journal = acme_journal();
    let r = day_report_from(
        &journal,
        &[],
        &Window::of(date(TUE)).unwrap(),
        after_tuesday(),
    );
    assert_eq!(r.positions.len(), 1);
    let p = &r.positions[0];
    assert_eq!(
        (p.status, p.qty, p.realized_pnl),
        ("closed", d("0"), d("-10"))
    );
    assert!(r.stops.is_empty());
    assert_eq!(r.realized_pnl_today, d("-10"));
    // The replaced stop changed on Tuesday: it is listed, with its new status.
    assert!(r
        .orders
        .iter()
        .any(|o| o.client_order_id == "avw-20260302-ACME-st1-1" && o.status == "replaced"));
}

#[test]
fn a_session_not_closed_yet_is_the_current_state_labelled_so() {
    let journal = acme_journal();
    let r = day_report_from(
        &journal,
        &[],
        &Window::of(date(TUE)).unwrap(),
        ny("2026-03-03 12:00"),
    );
    assert_eq!(r.as_of.basis, Basis::Current);
    assert!(
        r.as_of.note.contains("has not closed yet"),
        "{}",
        r.as_of.note
    );
    assert!(r.orders.iter().all(|o| o.as_of == Basis::Current));
    assert!(render_table(&r).contains("current state"));
}

#[test]
fn an_order_without_history_is_as_at_close_only_if_the_broker_last_changed_it_before() {
    let mut journal = acme_journal();
    journal.updates.clear();
    let r = day_report_from(
        &journal,
        &[],
        &Window::of(date(MON)).unwrap(),
        after_tuesday(),
    );
    let of = |cid: &str| r.orders.iter().find(|o| o.client_order_id == cid).unwrap();
    // Filled Monday, unchanged since: that is its state at Monday's close.
    assert_eq!(of("avw-20260302-ACME-en-1").as_of, Basis::AtClose);
    // Replaced on Tuesday: Monday's status is not known, only today's.
    let st1 = of("avw-20260302-ACME-st1-1");
    assert_eq!(
        (st1.status.as_str(), st1.as_of),
        ("replaced", Basis::KnownNow)
    );
    assert!(render_table(&r).contains("* = as known now"));
}

#[test]
fn replayed_positions_follow_the_database_rules_average_cost_trim_and_reentry() {
    let fills = vec![
        fill(
            "avw-20260302-ACME-en-1",
            Side::Buy,
            "60",
            "50.00",
            "2026-03-02 10:00",
            None,
        ),
        fill(
            "avw-20260302-ACME-en-1",
            Side::Buy,
            "40",
            "50.50",
            "2026-03-02 10:10",
            None,
        ),
        fill(
            "avw-20260302-ACME-tr-1",
            Side::Sell,
            "50",
            "52.00",
            "2026-03-02 11:00",
            Some("90"),
        ),
        fill(
            "avw-20260302-ACME-st2-1",
            Side::Sell,
            "50",
            "50.20",
            "2026-03-02 12:00",
            Some("0"),
        ),
        fill(
            "avw-20260303-ACME-en-1",
            Side::Buy,
            "10",
            "51.00",
            "2026-03-03 10:00",
            None,
        ),
        // A sell of ours in a symbol we never owned moves nothing.
        fill(
            "avw-20260303-ZZZ-ex-1",
            Side::Sell,
            "5",
            "9.00",
            "2026-03-03 10:00",
            None,
        ),
    ];
    let all = holdings_at(&fills, after_tuesday());
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].avg_price, d("50.2"));
    assert_eq!(all[0].realized_pnl, d("90"));
    assert_eq!(all[0].closed_at, Some(ny("2026-03-02 12:00")));
    assert_eq!((all[1].qty, all[1].opened_session), (d("10"), date(TUE)));
    // Half-way through Monday: one open position of 100.
    let noon = holdings_at(&fills, ny("2026-03-02 11:30"));
    assert_eq!(noon.len(), 1);
    assert_eq!(
        (noon[0].qty, noon[0].realized_pnl, noon[0].open()),
        (d("50"), d("90"), true)
    );
    // Without a recorded P&L the sell realizes against the average cost.
    let mut unpriced = fills.clone();
    unpriced[2].realized_pnl = None;
    assert_eq!(
        holdings_at(&unpriced, after_tuesday())[0].realized_pnl,
        d("90")
    );
}

fn skip(symbol: &str, reason: &str, detail: &str, at: &str) -> Event {
    Event {
        at: ny(at),
        session: Some(date(MON)),
        kind: "entry_skipped".into(),
        symbol: Some(symbol.into()),
        client_order_id: None,
        message: format!("{reason}: {detail}"),
        details: Some(format!("{{\"reason\":\"{reason}\"}}")),
    }
}

#[test]
fn each_candidate_shows_its_last_telling_reason_and_how_many_cycles_gave_it() {
    let mut events = vec![
        skip(
            "AAA",
            "outside_entry_window",
            "entries run 09:50..15:45 New York",
            "2026-03-02 09:35",
        ),
        skip(
            "BBB",
            "outside_entry_window",
            "entries run 09:50..15:45 New York",
            "2026-03-02 09:35",
        ),
        skip(
            "AAA",
            "not_confirmed",
            "closes 9.9, 9.8 vs entry level 10.00",
            "2026-03-02 10:00",
        ),
        skip(
            "BBB",
            "not_confirmed",
            "closes 19.9, 19.8 vs entry level 20.00",
            "2026-03-02 10:00",
        ),
        skip(
            "AAA",
            "price_drift",
            "10.40 is above 10.20",
            "2026-03-02 10:10",
        ),
        skip(
            "AAA",
            "price_drift",
            "10.45 is above 10.20",
            "2026-03-02 10:20",
        ),
    ];
    events.push(Event {
        kind: "entry_decision".into(),
        message: "breakout held".into(),
        details: None,
        ..skip("BBB", "", "", "2026-03-02 10:10")
    });
    events.push(skip(
        "BBB",
        "already_entered_today",
        "one entry per symbol per session",
        "2026-03-02 10:20",
    ));
    events.push(skip(
        "AAA",
        "outside_entry_window",
        "entries run 09:50..15:45 New York",
        "2026-03-02 16:05",
    ));
    events.push(skip(
        "CCC",
        "outside_entry_window",
        "entries run 09:50..15:45 New York",
        "2026-03-02 16:05",
    ));
    let outcomes = candidate_outcomes(&events);
    let symbols: Vec<&str> = outcomes.iter().map(|o| o.symbol.as_str()).collect();
    assert_eq!(symbols, ["AAA", "BBB", "CCC"], "watchlist order");
    let aaa = &outcomes[0];
    assert!(!aaa.entered);
    assert_eq!(aaa.last_reason.as_deref(), Some("price_drift"));
    assert_eq!(aaa.last_detail.as_deref(), Some("10.45 is above 10.20"));
    assert_eq!((aaa.cycles_with_last_reason, aaa.cycles_skipped), (2, 5));
    assert_eq!(outcomes[1].entered_at, Some(ny("2026-03-02 10:10")));
    // Only ever outside the window: that is the reason.
    assert_eq!(
        outcomes[2].last_reason.as_deref(),
        Some("outside_entry_window")
    );
    assert_eq!(
        symbols_by_last_reason(&outcomes),
        BTreeMap::from([
            ("outside_entry_window".to_string(), 1),
            ("price_drift".to_string(), 1)
        ])
    );
    let r = day_report_from(
        &Journal::default(),
        &events,
        &Window::of(date(MON)).unwrap(),
        after_tuesday(),
    );
    assert_eq!(r.skipped_by_reason["outside_entry_window"], 4);
    assert_eq!(r.last_skip_by_symbol["AAA"], "price_drift");
    let table = render_table(&r);
    assert!(
        table.contains(
            "  AAA    skipped  price_drift                      2/5  10.45 is above 10.20\n"
        ),
        "{table}"
    );
    assert!(table.contains("  BBB    entered  -"), "{table}");
    assert!(
        table.contains("entry decided 2026-03-02 10:10:00 EST"),
        "{table}"
    );
}

#[test]
fn a_date_that_is_not_a_session_covers_nothing_and_holds_the_last_close() {
    let journal = acme_journal();
    // Saturday 2026-02-28: Friday's book, nothing traded.
    let r = day_report_from(
        &journal,
        &[],
        &Window::of(date("2026-02-28")).unwrap(),
        after_tuesday(),
    );
    assert!(
        r.as_of.note.contains("not an NYSE session"),
        "{}",
        r.as_of.note
    );
    assert!(r.positions.is_empty() && r.fills.is_empty() && r.orders.is_empty());
}

#[test]
fn ranges_are_checked_and_summarised_per_session_with_totals() {
    let today = date("2026-03-05");
    assert!(matches!(
        range_sessions(date(TUE), date(MON), today),
        Err(ReportError::RangeReversed { .. })
    ));
    assert!(matches!(
        range_sessions(date("2026-02-28"), date("2026-03-01"), today),
        Err(ReportError::NoSession { .. })
    ));
    assert!(matches!(
        range_sessions(date(MON), date("2026-03-06"), today),
        Err(ReportError::InTheFuture { .. })
    ));
    assert!(matches!(
        range_sessions(date("1999-12-01"), date(MON), today),
        Err(ReportError::Calendar(_))
    ));
    assert!(range_sessions(date(TUE), date(MON), today)
        .unwrap_err()
        .is_bad_request());
    assert_eq!(
        range_sessions(date("2026-02-27"), date(TUE), today).unwrap(),
        [date("2026-02-27"), date(MON), date(TUE)]
    );

    let journal = acme_journal();
    let sessions: Vec<SessionSummary> = [MON, TUE]
        .iter()
        .map(|day| {
            session_summary(
                &journal,
                &[],
                &Window::of(date(day)).unwrap(),
                after_tuesday(),
            )
        })
        .collect();
    assert_eq!((sessions[0].entries, sessions[0].exits), (1, 0));
    assert_eq!(sessions[0].open_at_close, ["ACME"]);
    assert_eq!((sessions[1].entries, sessions[1].exits), (0, 1));
    assert_eq!(sessions[1].realized_pnl, d("-10"));
    let r = range_from(date(MON), date(TUE), sessions);
    assert_eq!(
        (r.totals.entries, r.totals.exits, r.totals.realized_pnl),
        (1, 1, d("-10"))
    );
    assert!(r.totals.open_at_end.is_empty());
    let table = render_range_table(&r);
    assert!(
        table.contains("  total            1     0     1       -10.00    0\n"),
        "{table}"
    );
    assert!(table.contains("Open at the end (0): none"), "{table}");
}
