use super::*;
use crate::broker::{BrokerOrder, OrderStatus, OrderType, Side, TimeInForce};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn entry_intent(cid: &str) -> Intent {
    Intent {
        client_order_id: cid.to_string(),
        session: d("2026-11-30"),
        symbol: "AXTA".into(),
        leg: "en".into(),
        attempt: 1,
        side: Side::Buy,
        qty: dec("200"),
        order_type: OrderType::Limit,
        limit_price: Some(dec("33.10")),
        stop_price: None,
        time_in_force: TimeInForce::Day,
        replaces_order_id: None,
        plan: Some(EntryPlan {
            stop_price: dec("32.10"),
            target_r1: Some(dec("33.34")),
            target_r2: Some(dec("33.67")),
        }),
        state: IntentState::Journaled,
        reason: None,
        created_at: t("2026-11-30T15:00:00Z"),
        updated_at: t("2026-11-30T15:00:00Z"),
    }
}

fn order(
    cid: &str,
    side: Side,
    ty: OrderType,
    qty: &str,
    filled: &str,
    avg: Option<&str>,
    status: OrderStatus,
) -> BrokerOrder {
    BrokerOrder {
        id: format!("b-{cid}"),
        client_order_id: cid.into(),
        symbol: "AXTA".into(),
        side,
        qty: dec(qty),
        filled_qty: dec(filled),
        filled_avg_price: avg.map(dec),
        order_type: ty,
        limit_price: (ty == OrderType::Limit).then(|| dec("33.10")),
        stop_price: (ty == OrderType::Stop).then(|| dec("32.10")),
        time_in_force: if ty == OrderType::Stop {
            TimeInForce::Gtc
        } else {
            TimeInForce::Day
        },
        status,
        submitted_at: t("2026-11-30T15:00:01Z"),
        updated_at: t("2026-11-30T15:10:00Z"),
        replaced_by: None,
    }
}

#[test]
fn fresh_database_has_the_current_schema_and_is_sound() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(&dir.path().join(DB_FILE)).unwrap();
    assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(db.integrity_check().unwrap(), "ok");
    drop(db);
    // Reopening migrates nothing and keeps data.
    let db = StateDb::open(&dir.path().join(DB_FILE)).unwrap();
    db.journal_intent(&entry_intent("avw-20261130-AXTA-en-1"))
        .unwrap();
    drop(db);
    let db = StateDb::open(&dir.path().join(DB_FILE)).unwrap();
    assert!(db.intent("avw-20261130-AXTA-en-1").unwrap().is_some());
}

#[test]
fn newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    StateDb::open(&path).unwrap();
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let err = StateDb::open(&path).err().unwrap();
    assert!(matches!(err, DbError::NewerSchema { .. }), "{err}");
    assert!(err.to_string().contains("newer avwap"), "{err}");
    let conn = Connection::open(&path).unwrap();
    let v: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION + 1);
    let tables: u32 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(tables >= 7);
}

#[test]
fn migrations_never_drop() {
    for step in MIGRATIONS {
        assert!(!step.to_uppercase().contains("DROP "), "{step}");
    }
}

#[test]
fn not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    std::fs::write(
        &path,
        b"this is not sqlite, just some text that is long enough",
    )
    .unwrap();
    let err = StateDb::open(&path).err().unwrap();
    assert!(err.to_string().contains(DB_FILE), "{err}");
}

#[test]
fn a_client_order_id_is_journaled_once() {
    let db = StateDb::open_in_memory().unwrap();
    let intent = entry_intent("avw-20261130-AXTA-en-1");
    db.journal_intent(&intent).unwrap();
    assert!(matches!(
        db.journal_intent(&intent),
        Err(DbError::DuplicateClientOrderId(_))
    ));
    let read = db.intent(&intent.client_order_id).unwrap().unwrap();
    assert_eq!(read, intent);
    assert_eq!(db.unresolved_intents().unwrap().len(), 1);
    assert_eq!(db.last_attempt(d("2026-11-30"), "AXTA", "en").unwrap(), 1);
}

#[test]
fn cumulative_fills_become_deltas_once_each() {
    let mut db = StateDb::open_in_memory().unwrap();
    let cid = "avw-20261130-AXTA-en-1";
    db.journal_intent(&entry_intent(cid)).unwrap();
    let at = t("2026-11-30T15:10:00Z");

    let ack = order(
        cid,
        Side::Buy,
        OrderType::Limit,
        "200",
        "0",
        None,
        OrderStatus::New,
    );
    assert_eq!(db.record_order(&ack, false, at).unwrap(), None);
    assert_eq!(
        db.intent(cid).unwrap().unwrap().state,
        IntentState::Acknowledged
    );

    // 120 @ 33.00, then 200 cumulative @ 33.03 average → the second fill is 80 @ 33.075.
    let part = order(
        cid,
        Side::Buy,
        OrderType::Limit,
        "200",
        "120",
        Some("33.00"),
        OrderStatus::PartiallyFilled,
    );
    let f1 = db.record_order(&part, false, at).unwrap().unwrap();
    assert_eq!((f1.qty, f1.price), (dec("120"), dec("33.00")));
    // The same snapshot again records nothing.
    assert_eq!(db.record_order(&part, false, at).unwrap(), None);
    let full = order(
        cid,
        Side::Buy,
        OrderType::Limit,
        "200",
        "200",
        Some("33.03"),
        OrderStatus::Filled,
    );
    let f2 = db.record_order(&full, false, at).unwrap().unwrap();
    assert_eq!((f2.qty, f2.price), (dec("80"), dec("33.075")));
    // An older snapshot arriving late never lowers the recorded fill.
    assert_eq!(db.record_order(&part, false, at).unwrap(), None);
    assert_eq!(db.order(cid).unwrap().unwrap().order.filled_qty, dec("200"));

    let fills = db.fills().unwrap();
    assert_eq!(fills.len(), 2);
    let pos = db.position("AXTA").unwrap().unwrap();
    assert_eq!(pos.qty, dec("200"));
    assert_eq!(pos.avg_price, dec("33.03"));
    assert_eq!(pos.stop_price, dec("32.10"));
    assert_eq!(pos.target_r2, Some(dec("33.67")));
    assert!(pos.open);
}

#[test]
fn stop_record_follows_the_stop_order_and_sells_close_the_position() {
    let mut db = StateDb::open_in_memory().unwrap();
    let at = t("2026-11-30T15:10:00Z");
    let entry = "avw-20261130-AXTA-en-1";
    db.journal_intent(&entry_intent(entry)).unwrap();
    db.record_order(
        &order(
            entry,
            Side::Buy,
            OrderType::Limit,
            "200",
            "200",
            Some("33.00"),
            OrderStatus::Filled,
        ),
        false,
        at,
    )
    .unwrap();

    let stop = "avw-20261130-AXTA-st1-1";
    db.record_order(
        &order(
            stop,
            Side::Sell,
            OrderType::Stop,
            "200",
            "0",
            None,
            OrderStatus::New,
        ),
        false,
        at,
    )
    .unwrap();
    let row = db.stop("AXTA").unwrap().unwrap();
    assert_eq!((row.client_order_id.as_str(), row.qty), (stop, dec("200")));
    assert_eq!(db.open_orders().unwrap().len(), 1);

    // The stop fills on a gap down: the position closes with its loss and the stop record goes.
    db.record_order(
        &order(
            stop,
            Side::Sell,
            OrderType::Stop,
            "200",
            "200",
            Some("31.50"),
            OrderStatus::Filled,
        ),
        false,
        at,
    )
    .unwrap();
    assert!(db.stop("AXTA").unwrap().is_none());
    let pos = db.position("AXTA").unwrap().unwrap();
    assert!(!pos.open);
    assert_eq!(pos.qty, Decimal::ZERO);
    assert_eq!(pos.realized_pnl, dec("-300"));
    assert!(db.open_positions().unwrap().is_empty());
    assert!(db.open_orders().unwrap().is_empty());
}

#[test]
fn stop_levels_only_rise() {
    let mut db = StateDb::open_in_memory().unwrap();
    let at = t("2026-11-30T15:10:00Z");
    let entry = "avw-20261130-AXTA-en-1";
    db.journal_intent(&entry_intent(entry)).unwrap();
    db.record_order(
        &order(
            entry,
            Side::Buy,
            OrderType::Limit,
            "200",
            "200",
            Some("33.00"),
            OrderStatus::Filled,
        ),
        false,
        at,
    )
    .unwrap();
    assert!(!db.raise_stop_level("AXTA", dec("31.00"), at).unwrap());
    assert!(db.raise_stop_level("AXTA", dec("33.00"), at).unwrap());
    assert_eq!(
        db.position("AXTA").unwrap().unwrap().stop_price,
        dec("33.00")
    );
}

#[test]
fn events_and_heartbeat_round_trip() {
    let db = StateDb::open_in_memory().unwrap();
    let e = Event {
        at: t("2026-11-30T15:10:00Z"),
        session: Some(d("2026-11-30")),
        kind: "entry_skipped".into(),
        symbol: Some("AXTA".into()),
        client_order_id: None,
        message: "kill switch engaged".into(),
        details: Some("{\"source\":\"file\"}".into()),
    };
    db.event(&e).unwrap();
    assert_eq!(db.events(Some(d("2026-11-30"))).unwrap(), vec![e]);
    assert!(db.events(Some(d("2026-12-01"))).unwrap().is_empty());
    assert_eq!(db.last_heartbeat().unwrap(), None);
    db.heartbeat(t("2026-11-30T15:11:00Z"), "sim", 3).unwrap();
    db.heartbeat(t("2026-11-30T15:12:00Z"), "sim", 4).unwrap();
    assert_eq!(
        db.last_heartbeat().unwrap(),
        Some(t("2026-11-30T15:12:00Z"))
    );
}

#[test]
fn every_recorded_change_of_an_order_is_kept_with_when_it_was_recorded() {
    let mut db = StateDb::open_in_memory().unwrap();
    let cid = "avw-20261130-AXTA-en-1";
    db.journal_intent(&entry_intent(cid)).unwrap();
    let snapshot = |filled: &str, avg: Option<&str>, status| {
        order(cid, Side::Buy, OrderType::Limit, "200", filled, avg, status)
    };
    let new = snapshot("0", None, OrderStatus::New);
    let part = snapshot("120", Some("33.00"), OrderStatus::PartiallyFilled);
    let full = snapshot("200", Some("33.03"), OrderStatus::Filled);
    db.record_order(&new, false, t("2026-11-30T15:00:00Z"))
        .unwrap();
    // Unchanged: no history row.
    db.record_order(&new, false, t("2026-11-30T15:01:00Z"))
        .unwrap();
    db.record_order(&part, false, t("2026-11-30T15:02:00Z"))
        .unwrap();
    db.record_order(&full, false, t("2026-11-30T15:03:00Z"))
        .unwrap();
    let history: Vec<(OrderStatus, Decimal, String)> = db
        .order_updates()
        .unwrap()
        .into_iter()
        .map(|u| (u.status, u.filled_qty, u.recorded_at.to_rfc3339()))
        .collect();
    assert_eq!(
        history,
        [
            (
                OrderStatus::New,
                dec("0"),
                "2026-11-30T15:00:00+00:00".into()
            ),
            (
                OrderStatus::PartiallyFilled,
                dec("120"),
                "2026-11-30T15:02:00+00:00".into()
            ),
            (
                OrderStatus::Filled,
                dec("200"),
                "2026-11-30T15:03:00+00:00".into()
            ),
        ]
    );
    assert_eq!(db.entry_plans().unwrap().len(), 1);
}
