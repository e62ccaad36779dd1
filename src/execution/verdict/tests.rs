use super::*;
use crate::broker::{OrderStatus, TimeInForce};
use crate::execution::db::{Intent, StateDb};
use chrono::{Duration, NaiveDate};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

const AT: &str = "2026-11-30T15:00:00Z";

fn position(symbol: &str, qty: &str) -> Position {
    Position {
        symbol: symbol.into(),
        qty: dec(qty),
        avg_entry_price: dec("50"),
    }
}

fn order(id: &str, symbol: &str, side: Side, ty: OrderType, qty: &str) -> BrokerOrder {
    BrokerOrder {
        id: format!("b-{id}"),
        client_order_id: id.into(),
        symbol: symbol.into(),
        side,
        qty: dec(qty),
        filled_qty: Decimal::ZERO,
        filled_avg_price: None,
        order_type: ty,
        limit_price: (ty == OrderType::Limit).then(|| dec("51")),
        stop_price: (ty == OrderType::Stop).then(|| dec("48")),
        time_in_force: TimeInForce::Gtc,
        status: OrderStatus::New,
        submitted_at: t("2026-11-27T15:00:00Z"),
        updated_at: t("2026-11-27T15:00:00Z"),
        replaced_by: None,
    }
}

fn stop(id: &str, symbol: &str, qty: &str) -> BrokerOrder {
    order(id, symbol, Side::Sell, OrderType::Stop, qty)
}

fn owned(symbol: &str, qty: &str) -> OwnedPosition {
    OwnedPosition {
        symbol: symbol.into(),
        qty: dec(qty),
        avg_price: dec("50"),
        opened_session: NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
        entry_client_order_id: format!("avw-2026-11-27-{symbol}-en-1"),
        stop_price: dec("48"),
        target_r1: None,
        target_r2: None,
        trimmed: false,
        open: true,
        realized_pnl: Decimal::ZERO,
    }
}

fn view(
    positions: Result<Vec<Position>, BrokerError>,
    orders: Result<Vec<BrokerOrder>, BrokerError>,
) -> BrokerView {
    BrokerView::new(&positions, &orders)
}

fn outage() -> BrokerError {
    BrokerError::RetryableRead {
        message: "HTTP 503".into(),
    }
}

fn row<'a>(v: &'a Verdict, symbol: &str) -> &'a VerdictRow {
    v.rows
        .iter()
        .find(|r| r.symbol == symbol)
        .unwrap_or_else(|| panic!("no row {symbol} in {v:?}"))
}

fn none() -> BTreeSet<String> {
    BTreeSet::new()
}

#[test]
fn covered_positions_that_match_the_journal_are_ok() {
    let v = judge(
        t(AT),
        &view(
            Ok(vec![position("AAPL", "100"), position("MSFT", "20")]),
            Ok(vec![
                stop("s1", "AAPL", "60"),
                stop("s2", "AAPL", "40"),
                stop("s3", "MSFT", "20"),
                // Not protection: a buy stop and a sell limit.
                order("x1", "MSFT", Side::Buy, OrderType::Stop, "20"),
                order("x2", "MSFT", Side::Sell, OrderType::Limit, "20"),
            ]),
        ),
        &[owned("AAPL", "100"), owned("MSFT", "20")],
        &none(),
        &[],
    );
    assert!(v.broker_positions_read && v.open_orders_read);
    assert_eq!(v.positions_error, None);
    assert_eq!(v.rows.len(), 2);
    let aapl = row(&v, "AAPL");
    assert_eq!(aapl.status, RowStatus::Ok);
    assert_eq!(aapl.broker_qty, Some(dec("100")));
    assert_eq!(aapl.owned_qty, dec("100"));
    assert_eq!(aapl.stop_qty, Some(dec("100")));
    assert_eq!(aapl.first_seen, None);
    assert_eq!(row(&v, "MSFT").stop_qty, Some(dec("20")));
    assert_eq!(v.problems().count(), 0);
}

#[test]
fn a_stop_for_less_than_the_position_is_uncovered() {
    let mut partly_filled = stop("s1", "AAPL", "100");
    partly_filled.filled_qty = dec("30");
    let mut canceled = stop("s2", "MSFT", "20");
    canceled.status = OrderStatus::Canceled;
    let v = judge(
        t(AT),
        &view(
            Ok(vec![position("AAPL", "100"), position("MSFT", "20")]),
            Ok(vec![partly_filled, canceled]),
        ),
        &[owned("AAPL", "100"), owned("MSFT", "20")],
        &none(),
        &[],
    );
    let aapl = row(&v, "AAPL");
    assert_eq!(aapl.status, RowStatus::Uncovered);
    assert_eq!(aapl.stop_qty, Some(dec("70")));
    assert_eq!(aapl.first_seen, Some(t(AT)));
    assert_eq!(row(&v, "MSFT").status, RowStatus::Uncovered);
    assert_eq!(row(&v, "MSFT").stop_qty, Some(Decimal::ZERO));
}

#[test]
fn a_stop_the_broker_acknowledged_during_the_cycle_covers_a_new_fill() {
    let broker = view(Ok(vec![position("AAPL", "100")]), Ok(vec![]));
    let placed = [stop("avw-2026-11-30-AAPL-st1-1", "AAPL", "100")];
    let v = judge(t(AT), &broker, &[owned("AAPL", "100")], &none(), &placed);
    let aapl = row(&v, "AAPL");
    assert_eq!(aapl.status, RowStatus::Ok, "{aapl:?}");
    assert_eq!(aapl.stop_qty, Some(Decimal::ZERO));
    assert_eq!(aapl.stop_qty_placed, dec("100"));
    // Without it, the same reads are uncovered.
    let v = judge(t(AT), &broker, &[owned("AAPL", "100")], &none(), &[]);
    assert_eq!(row(&v, "AAPL").status, RowStatus::Uncovered);
}

#[test]
fn a_position_we_do_not_own_is_a_mismatch() {
    // The journal was lost: the broker still holds the shares and the stop.
    let v = judge(
        t(AT),
        &view(
            Ok(vec![position("AAPL", "100")]),
            Ok(vec![stop("s1", "AAPL", "100")]),
        ),
        &[],
        &none(),
        &[],
    );
    let aapl = row(&v, "AAPL");
    assert_eq!(aapl.status, RowStatus::Mismatch);
    assert_eq!(aapl.broker_qty, Some(dec("100")));
    assert_eq!(aapl.owned_qty, Decimal::ZERO);
    assert_eq!(aapl.first_seen, Some(t(AT)));
}

#[test]
fn a_position_we_own_that_the_broker_lacks_or_sizes_otherwise_is_a_mismatch() {
    let v = judge(
        t(AT),
        &view(
            Ok(vec![position("MSFT", "10")]),
            Ok(vec![stop("s1", "MSFT", "10")]),
        ),
        &[owned("AAPL", "100"), owned("MSFT", "20")],
        &none(),
        &[],
    );
    let aapl = row(&v, "AAPL");
    assert_eq!(aapl.status, RowStatus::Mismatch);
    assert_eq!(aapl.broker_qty, Some(Decimal::ZERO));
    assert_eq!(aapl.owned_qty, dec("100"));
    let msft = row(&v, "MSFT");
    assert_eq!(msft.status, RowStatus::Mismatch, "{msft:?}");
    assert_eq!(msft.stop_qty, Some(dec("10")));
}

#[test]
fn an_order_of_unknown_outcome_is_reported_not_judged() {
    let blocked: BTreeSet<String> = ["AAPL".to_string(), "NVDA".to_string()].into();
    let v = judge(
        t(AT),
        &view(
            Ok(vec![position("AAPL", "100")]),
            Ok(vec![stop("s1", "AAPL", "100")]),
        ),
        &[],
        &blocked,
        &[],
    );
    assert_eq!(row(&v, "AAPL").status, RowStatus::UnknownOrder);
    // A symbol with nothing but the unknown order has a row too.
    let nvda = row(&v, "NVDA");
    assert_eq!(nvda.status, RowStatus::UnknownOrder);
    assert_eq!(nvda.broker_qty, Some(Decimal::ZERO));
    // Shares without a stop are uncovered even then.
    let v = judge(
        t(AT),
        &view(Ok(vec![position("AAPL", "100")]), Ok(vec![])),
        &[],
        &blocked,
        &[],
    );
    assert_eq!(row(&v, "AAPL").status, RowStatus::Uncovered);
}

#[test]
fn unreadable_reads_judge_nothing_they_would_need() {
    // Positions unread: nothing about quantities is claimed.
    let v = judge(
        t(AT),
        &view(Err(outage()), Ok(vec![stop("s1", "AAPL", "100")])),
        &[owned("AAPL", "100")],
        &none(),
        &[],
    );
    assert!(!v.broker_positions_read);
    assert!(v.open_orders_read);
    assert_eq!(
        v.positions_error.as_deref(),
        Some("broker read failed (retryable): HTTP 503")
    );
    let aapl = row(&v, "AAPL");
    assert_eq!(aapl.status, RowStatus::Unread);
    assert_eq!(aapl.broker_qty, None);
    assert_eq!(aapl.stop_qty, Some(dec("100")));
    // Open orders unread: quantities still compared; coverage unknown, never "uncovered".
    let v = judge(
        t(AT),
        &view(
            Ok(vec![position("AAPL", "100"), position("MSFT", "5")]),
            Err(outage()),
        ),
        &[owned("AAPL", "100")],
        &none(),
        &[],
    );
    assert!(v.broker_positions_read && !v.open_orders_read);
    assert!(v.open_orders_error.is_some());
    assert_eq!(row(&v, "AAPL").status, RowStatus::Ok);
    assert_eq!(row(&v, "AAPL").stop_qty, None);
    assert_eq!(row(&v, "MSFT").status, RowStatus::Mismatch);
    // Neither: the owned positions are listed, unjudged.
    let v = judge(
        t(AT),
        &view(Err(outage()), Err(outage())),
        &[owned("AAPL", "100")],
        &none(),
        &[],
    );
    assert_eq!(v.rows.len(), 1);
    assert_eq!(row(&v, "AAPL").status, RowStatus::Unread);
}

#[test]
fn first_seen_is_carried_over_while_the_same_problem_persists() {
    let lost_journal = |at: DateTime<Utc>| {
        judge(
            at,
            &view(
                Ok(vec![position("AAPL", "100"), position("MSFT", "10")]),
                Ok(vec![stop("s1", "AAPL", "100")]),
            ),
            &[owned("MSFT", "10")],
            &none(),
            &[],
        )
    };
    let first = lost_journal(t(AT)).carry_over(None);
    assert_eq!(row(&first, "AAPL").first_seen, Some(t(AT)));
    assert!(!row(&first, "AAPL").persists(first.at));
    assert_eq!(row(&first, "MSFT").status, RowStatus::Uncovered);

    let later = t(AT) + Duration::seconds(60);
    let second = lost_journal(later).carry_over(Some(&first));
    let aapl = row(&second, "AAPL");
    assert_eq!(aapl.first_seen, Some(t(AT)), "carried over");
    assert!(aapl.persists(second.at));
    assert_eq!(row(&second, "MSFT").first_seen, Some(t(AT)));

    // Resolved, then back: a new first_seen.
    let third_at = later + Duration::seconds(60);
    let healed = judge(
        third_at,
        &view(
            Ok(vec![position("AAPL", "100")]),
            Ok(vec![stop("s1", "AAPL", "100")]),
        ),
        &[owned("AAPL", "100")],
        &none(),
        &[],
    )
    .carry_over(Some(&second));
    assert_eq!(row(&healed, "AAPL").status, RowStatus::Ok);
    assert_eq!(row(&healed, "AAPL").first_seen, None);
    let fourth_at = third_at + Duration::seconds(60);
    let again = lost_journal(fourth_at).carry_over(Some(&healed));
    assert_eq!(row(&again, "AAPL").first_seen, Some(fourth_at));

    // Another status is another problem; and a previous verdict that is not earlier (a clock
    // set back) carries nothing.
    let mut other = second.clone();
    for r in &mut other.rows {
        r.status = RowStatus::UnknownOrder;
    }
    let fifth = lost_journal(fourth_at + Duration::seconds(60)).carry_over(Some(&other));
    assert_eq!(
        row(&fifth, "AAPL").first_seen,
        Some(fourth_at + Duration::seconds(60))
    );
    let back = lost_journal(t(AT) - Duration::seconds(60)).carry_over(Some(&second));
    assert_eq!(
        row(&back, "AAPL").first_seen,
        Some(t(AT) - Duration::seconds(60))
    );
}

#[test]
fn the_database_keeps_the_last_verdict_and_carries_first_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("execution.sqlite");
    let mut db = StateDb::open(&path).unwrap();
    assert_eq!(db.last_verdict().unwrap(), None);
    let verdict = |at: DateTime<Utc>, positions| {
        judge(
            at,
            &view(positions, Ok(vec![stop("s1", "AAPL", "40")])),
            &[owned("AAPL", "100"), owned("MSFT", "10")],
            &none(),
            &[],
        )
    };
    let first = verdict(t(AT), Ok(vec![position("AAPL", "100")]));
    let stored = db.record_verdict(&first).unwrap();
    assert_eq!(stored, first);
    assert_eq!(db.last_verdict().unwrap(), Some(first.clone()));

    let later = t(AT) + Duration::seconds(60);
    let second = verdict(later, Ok(vec![position("AAPL", "100")]));
    let stored = db.record_verdict(&second).unwrap();
    assert_eq!(row(&stored, "AAPL").status, RowStatus::Uncovered);
    assert_eq!(row(&stored, "AAPL").first_seen, Some(t(AT)));
    assert_eq!(row(&stored, "MSFT").first_seen, Some(t(AT)));
    drop(db);

    // Read back through a read-only connection: every field survives.
    let reader = StateDb::open_read_only_current(&path).unwrap();
    let back = reader.last_verdict().unwrap().unwrap();
    assert_eq!(back, stored);
    assert_eq!(back.at, later);
    assert_eq!(row(&back, "AAPL").stop_qty, Some(dec("40")));
    drop(reader);

    // One row, replaced: an unreadable cycle keeps its error and drops the old rows.
    let mut db = StateDb::open(&path).unwrap();
    let third = verdict(later + Duration::seconds(60), Err(outage()));
    db.record_verdict(&third).unwrap();
    let back = db.last_verdict().unwrap().unwrap();
    assert!(!back.broker_positions_read);
    assert_eq!(back.positions_error, third.positions_error);
    assert!(back.rows.iter().all(|r| r.status == RowStatus::Unread));
    assert_eq!(back.rows.len(), 2);
}

fn stop_intent(cid: &str, symbol: &str, created: DateTime<Utc>) -> Intent {
    Intent {
        client_order_id: cid.into(),
        session: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        symbol: symbol.into(),
        leg: "st1".into(),
        attempt: 1,
        side: Side::Sell,
        qty: dec("100"),
        order_type: OrderType::Stop,
        limit_price: None,
        stop_price: Some(dec("48")),
        time_in_force: TimeInForce::Gtc,
        replaces_order_id: None,
        plan: None,
        state: IntentState::Journaled,
        reason: None,
        created_at: created,
        updated_at: created,
    }
}

#[test]
fn stops_placed_in_the_cycle_are_those_journaled_now_and_acknowledged() {
    let mut db = StateDb::open_in_memory().unwrap();
    let now = t(AT);
    // Journaled and acknowledged now: counted.
    db.journal_intent(&stop_intent("avw-2026-11-30-AAPL-st1-1", "AAPL", now))
        .unwrap();
    db.record_order(
        &stop("avw-2026-11-30-AAPL-st1-1", "AAPL", "100"),
        false,
        now,
    )
    .unwrap();
    // Acknowledged in an earlier cycle: the broker's list speaks for it.
    let earlier = now - Duration::seconds(60);
    db.journal_intent(&stop_intent("avw-2026-11-30-MSFT-st1-1", "MSFT", earlier))
        .unwrap();
    db.record_order(
        &stop("avw-2026-11-30-MSFT-st1-1", "MSFT", "10"),
        false,
        earlier,
    )
    .unwrap();
    // Journaled now, outcome unknown: not counted.
    db.journal_intent(&stop_intent("avw-2026-11-30-NVDA-st1-1", "NVDA", now))
        .unwrap();
    let placed = stops_placed_in_cycle(&db, now).unwrap();
    let ids: Vec<&str> = placed.iter().map(|o| o.client_order_id.as_str()).collect();
    assert_eq!(ids, ["avw-2026-11-30-AAPL-st1-1"]);
}

#[test]
fn a_trims_market_sell_covers_what_its_resized_stop_no_longer_does() {
    // The trim resized the stop to the 61 shares it keeps; its market sell of 60 has not
    // filled yet.
    let orders = vec![
        stop("st2", "CMI", "61"),
        order("tr", "CMI", Side::Sell, OrderType::Market, "60"),
    ];
    let v = judge(
        t(AT),
        &view(Ok(vec![position("CMI", "121")]), Ok(orders)),
        &[owned("CMI", "121")],
        &none(),
        &[],
    );
    let cmi = row(&v, "CMI");
    assert_eq!(cmi.status, RowStatus::Ok, "{cmi:?}");
    assert_eq!(cmi.selling_qty, Some(dec("60")));
    assert_eq!(cmi.covered_qty(), Some(dec("121")));
    assert!(!cmi.stops_cover(), "the stop alone does not cover it");
    // A sell limit is no cover: it may never fill.
    let orders = vec![
        stop("st2", "CMI", "61"),
        order("tr", "CMI", Side::Sell, OrderType::Limit, "60"),
    ];
    let v = judge(
        t(AT),
        &view(Ok(vec![position("CMI", "121")]), Ok(orders)),
        &[owned("CMI", "121")],
        &none(),
        &[],
    );
    assert_eq!(row(&v, "CMI").status, RowStatus::Uncovered);
    assert_eq!(row(&v, "CMI").covered_qty(), Some(dec("61")));
}
