use super::*;
use crate::broker::sim::{SimBroker, SimConfig, SimFault, SimMethod};
use crate::broker::{OrderType, Side, TimeInForce};
use crate::execution::db::{Intent, IntentState, StateDb};
use crate::market_data::intraday::{BarListFeed, IntradayBar};
use rust_decimal::Decimal;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// 10-minute bars of AXTA around $33 on 2026-11-30 (EST: 09:30 NY = 14:30Z).
fn feed() -> BarListFeed {
    let open = t("2026-11-30T14:30:00Z");
    BarListFeed::new((0..39).map(|i| IntradayBar {
        symbol: "AXTA".into(),
        start: open + chrono::Duration::minutes(10 * i),
        end: open + chrono::Duration::minutes(10 * (i + 1)),
        open: 33.0,
        high: 33.2,
        low: 32.9,
        close: 33.1,
        volume: 10_000.0,
    }))
}

fn broker(now: DateTime<Utc>) -> SimBroker {
    SimBroker::open_in_memory(
        SimConfig {
            start: Some(now),
            ..SimConfig::default()
        },
        Box::new(feed()),
    )
    .unwrap()
}

fn buy(cid: &str, now: DateTime<Utc>) -> Intent {
    Intent {
        client_order_id: cid.into(),
        session: "2026-11-30".parse().unwrap(),
        symbol: "AXTA".into(),
        leg: "en".into(),
        attempt: 1,
        side: Side::Buy,
        qty: dec("100"),
        order_type: OrderType::Limit,
        limit_price: Some(dec("33.20")),
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

fn desk<'a>(
    db: &'a mut StateDb,
    broker: &'a mut SimBroker,
    now: DateTime<Utc>,
    failpoints: &'a Failpoints,
) -> OrderDesk<'a> {
    OrderDesk {
        db,
        broker,
        now,
        failpoints,
        unknown_outcome_grace: Duration::from_secs(30),
    }
}

const CID: &str = "avw-20261130-AXTA-en-1";

#[test]
fn acknowledged_orders_are_journaled_first_and_recorded() {
    let now = t("2026-11-30T15:00:00Z");
    let (mut db, mut sim, fp) = (
        StateDb::open_in_memory().unwrap(),
        broker(now),
        Failpoints::none(),
    );
    let placement = desk(&mut db, &mut sim, now, &fp)
        .place(buy(CID, now))
        .unwrap();
    assert!(
        matches!(placement, Placement::Acknowledged(_)),
        "{placement:?}"
    );
    assert_eq!(
        db.intent(CID).unwrap().unwrap().state,
        IntentState::Acknowledged
    );
    assert!(db.order(CID).unwrap().is_some());
    // The same id again is never sent.
    let again = desk(&mut db, &mut sim, now, &fp)
        .place(buy(CID, now))
        .unwrap();
    assert_eq!(again, Placement::AlreadyJournaled);
    assert_eq!(sim.all_orders().unwrap().len(), 1);
}

#[test]
fn timeout_after_the_broker_accepted_is_resolved_by_lookup_without_a_duplicate() {
    let now = t("2026-11-30T15:00:00Z");
    let (mut db, mut sim, fp) = (
        StateDb::open_in_memory().unwrap(),
        broker(now),
        Failpoints::none(),
    );
    sim.inject_fault(SimMethod::Submit, SimFault::UnknownOutcomeAfterAccept)
        .unwrap();
    let placement = desk(&mut db, &mut sim, now, &fp)
        .place(buy(CID, now))
        .unwrap();
    assert!(matches!(placement, Placement::Unknown(_)), "{placement:?}");
    assert_eq!(
        db.intent(CID).unwrap().unwrap().state,
        IntentState::Journaled
    );
    let blocked = desk(&mut db, &mut sim, now, &fp)
        .resolve_unresolved()
        .unwrap();
    assert!(blocked.is_empty());
    assert_eq!(
        db.intent(CID).unwrap().unwrap().state,
        IntentState::Acknowledged
    );
    assert_eq!(
        sim.all_orders().unwrap().len(),
        1,
        "exactly one order at the broker"
    );
}

#[test]
fn timeout_before_acceptance_is_not_placed_only_after_the_grace_period() {
    let now = t("2026-11-30T15:00:00Z");
    let (mut db, mut sim, fp) = (
        StateDb::open_in_memory().unwrap(),
        broker(now),
        Failpoints::none(),
    );
    sim.inject_fault(SimMethod::Submit, SimFault::UnknownOutcomeBeforeAccept)
        .unwrap();
    desk(&mut db, &mut sim, now, &fp)
        .place(buy(CID, now))
        .unwrap();
    // Within the grace period the symbol stays blocked and the intent unresolved.
    let soon = now + chrono::Duration::seconds(10);
    let blocked = desk(&mut db, &mut sim, soon, &fp)
        .resolve_unresolved()
        .unwrap();
    assert_eq!(blocked, vec!["AXTA".to_string()]);
    assert_eq!(
        db.intent(CID).unwrap().unwrap().state,
        IntentState::Journaled
    );
    let later = now + chrono::Duration::seconds(60);
    let blocked = desk(&mut db, &mut sim, later, &fp)
        .resolve_unresolved()
        .unwrap();
    assert!(blocked.is_empty());
    assert_eq!(
        db.intent(CID).unwrap().unwrap().state,
        IntentState::NotPlaced
    );
    assert!(sim.all_orders().unwrap().is_empty());
}

#[test]
fn rejections_and_read_errors_are_classified() {
    let now = t("2026-11-30T15:00:00Z");
    let (mut db, mut sim, fp) = (
        StateDb::open_in_memory().unwrap(),
        broker(now),
        Failpoints::none(),
    );
    sim.inject_fault(SimMethod::Submit, SimFault::RejectNext)
        .unwrap();
    let placement = desk(&mut db, &mut sim, now, &fp)
        .place(buy(CID, now))
        .unwrap();
    assert!(
        matches!(placement, Placement::Rejected { .. }),
        "{placement:?}"
    );
    assert_eq!(
        db.intent(CID).unwrap().unwrap().state,
        IntentState::Rejected
    );
    // A failing lookup leaves an unresolved intent unresolved (and the symbol blocked).
    let cid2 = "avw-20261130-AXTA-en-2";
    sim.inject_fault(SimMethod::Submit, SimFault::UnknownOutcomeAfterAccept)
        .unwrap();
    desk(&mut db, &mut sim, now, &fp)
        .place(buy(cid2, now))
        .unwrap();
    sim.inject_fault(SimMethod::OrderByClientId, SimFault::ReadError)
        .unwrap();
    let later = now + chrono::Duration::seconds(60);
    let blocked = desk(&mut db, &mut sim, later, &fp)
        .resolve_unresolved()
        .unwrap();
    assert_eq!(blocked, vec!["AXTA".to_string()]);
    assert_eq!(
        db.intent(cid2).unwrap().unwrap().state,
        IntentState::Journaled
    );
}

#[test]
fn fills_arrive_through_refresh_exactly_once() {
    let now = t("2026-11-30T15:00:00Z");
    let (mut db, mut sim, fp) = (
        StateDb::open_in_memory().unwrap(),
        broker(now),
        Failpoints::none(),
    );
    desk(&mut db, &mut sim, now, &fp)
        .place(buy(CID, now))
        .unwrap();
    let later = now + chrono::Duration::minutes(20);
    sim.advance_to(later).unwrap();
    for _ in 0..3 {
        let open = sim.open_orders().unwrap();
        desk(&mut db, &mut sim, later, &fp)
            .refresh_open_orders(Some(&open))
            .unwrap();
    }
    let fills = db.fills().unwrap();
    assert_eq!(fills.len(), 1);
    assert_eq!(fills[0].qty, dec("100"));
    assert_eq!(db.position("AXTA").unwrap().unwrap().qty, dec("100"));
}

/// A journal rolled back to before `en-1` was journaled proposes `en-1` again; the broker
/// refuses the taken id. The order that holds it is looked up and recorded (with its fill),
/// and the next attempt id is never sent.
#[test]
fn a_taken_client_order_id_is_looked_up_and_recorded_never_retried_as_the_next_attempt() {
    let now = t("2026-11-30T15:00:00Z");
    let (mut lost, mut sim, fp) = (
        StateDb::open_in_memory().unwrap(),
        broker(now),
        Failpoints::none(),
    );
    desk(&mut lost, &mut sim, now, &fp)
        .place(buy(CID, now))
        .unwrap();
    let later = t("2026-11-30T15:20:00Z");
    sim.advance_to(later).unwrap();
    // The journal is gone; the same decision is made again.
    let mut db = StateDb::open_in_memory().unwrap();
    let placement = desk(&mut db, &mut sim, later, &fp)
        .place(buy(CID, later))
        .unwrap();
    let Placement::Acknowledged(order) = placement else {
        panic!("expected the existing order, got {placement:?}")
    };
    assert_eq!(order.client_order_id, CID);
    assert_eq!(
        db.intent(CID).unwrap().unwrap().state,
        IntentState::Acknowledged
    );
    let recorded = db.order(CID).unwrap().expect("the order is recorded");
    assert_eq!(recorded.order.filled_qty, order.filled_qty);
    assert_eq!(sim.all_orders().unwrap().len(), 1, "nothing else was sent");
    let kinds: Vec<String> = db
        .events(None)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&"order_exists".to_string()), "{kinds:?}");
}

/// The simulator behind a broker that answers with another symbol's order while `lie` holds.
struct Impostor {
    inner: SimBroker,
    lie_on_submit: bool,
    lie_on_lookup: bool,
}

impl Impostor {
    fn swapped(mut order: BrokerOrder) -> BrokerOrder {
        order.symbol = "AAPL".into();
        order
    }
}

impl Broker for Impostor {
    fn name(&self) -> &str {
        "impostor"
    }
    fn clock(&mut self) -> Result<crate::broker::MarketClock, BrokerError> {
        self.inner.clock()
    }
    fn account(&mut self) -> Result<crate::broker::Account, BrokerError> {
        self.inner.account()
    }
    fn positions(&mut self) -> Result<Vec<crate::broker::Position>, BrokerError> {
        self.inner.positions()
    }
    fn open_orders(&mut self) -> Result<Vec<BrokerOrder>, BrokerError> {
        self.inner.open_orders()
    }
    fn submit(&mut self, request: &OrderRequest) -> Result<BrokerOrder, BrokerError> {
        let order = self.inner.submit(request)?;
        Ok(if self.lie_on_submit {
            Self::swapped(order)
        } else {
            order
        })
    }
    fn order_by_client_id(&mut self, id: &str) -> Result<Option<BrokerOrder>, BrokerError> {
        let order = self.inner.order_by_client_id(id)?;
        Ok(order.map(|o| {
            if self.lie_on_lookup {
                Self::swapped(o)
            } else {
                o
            }
        }))
    }
    fn replace(&mut self, id: &str, r: &ReplaceRequest) -> Result<BrokerOrder, BrokerError> {
        self.inner.replace(id, r)
    }
    fn cancel(&mut self, id: &str) -> Result<(), BrokerError> {
        self.inner.cancel(id)
    }
}

#[test]
fn an_answer_that_is_another_order_is_never_booked_and_is_resolved_by_an_honest_lookup() {
    let now = t("2026-11-30T15:05:00Z");
    let mut db = StateDb::open_in_memory().unwrap();
    let mut broker = Impostor {
        inner: broker(now),
        lie_on_submit: true,
        lie_on_lookup: true,
    };
    let failpoints = Failpoints::none();
    let mut d = OrderDesk {
        db: &mut db,
        broker: &mut broker,
        now,
        failpoints: &failpoints,
        unknown_outcome_grace: Duration::from_secs(30),
    };
    let placement = d.place(buy(CID, now)).unwrap();
    let Placement::Unknown(message) = placement else {
        panic!("{placement:?}");
    };
    assert!(
        message.contains("symbol \"AAPL\" (asked AXTA)"),
        "{message}"
    );
    assert!(d.db.all_orders().unwrap().is_empty(), "nothing booked");
    // A lying lookup keeps it unresolved (never "not found", never booked).
    let later = now + chrono::Duration::minutes(10);
    d.now = later;
    assert_eq!(d.resolve_unresolved().unwrap(), vec!["AXTA".to_string()]);
    assert!(d.db.all_orders().unwrap().is_empty());
    assert_eq!(d.db.unresolved_intents().unwrap().len(), 1);
    let mismatches =
        d.db.events(None)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == ANSWER_MISMATCH)
            .count();
    assert_eq!(
        mismatches, 2,
        "the answer and the lookup are both on record"
    );
    // An honest lookup records the real order.
    broker.lie_on_lookup = false;
    let mut d = OrderDesk {
        db: &mut db,
        broker: &mut broker,
        now: later,
        failpoints: &failpoints,
        unknown_outcome_grace: Duration::from_secs(30),
    };
    assert!(d.resolve_unresolved().unwrap().is_empty());
    let orders = d.db.all_orders().unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].order.symbol, "AXTA");
    assert!(d.db.unresolved_intents().unwrap().is_empty());
}
