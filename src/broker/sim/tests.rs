//! Tests of the simulated broker: every fill rule and Alpaca behaviour with small, realistic
//! numbers ($40–$60 stock, 100–300 shares), persistence across reopen, injected faults, and a
//! restart-mid-stream property.

use std::collections::BTreeMap;

use chrono::Duration;

use super::*;
use crate::market_data::intraday::{BarListFeed, SyntheticIntradayFeed};
use crate::market_data::synthetic::SplitMix64;
use crate::market_data::DailyBar;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

const SYM: &str = "ACME";

fn bar(start: &str, o: f64, h: f64, l: f64, c: f64) -> IntradayBar {
    bar_of(SYM, start, o, h, l, c)
}

fn bar_of(symbol: &str, start: &str, o: f64, h: f64, l: f64, c: f64) -> IntradayBar {
    let start = t(start);
    IntradayBar {
        symbol: symbol.to_string(),
        start,
        end: start + Duration::minutes(10),
        open: o,
        high: h,
        low: l,
        close: c,
        volume: 10_000.0,
    }
}

/// 39 flat bars at `price` for the session opening at `open` (a regular session).
fn flat_session(open: &str, price: f64) -> Vec<IntradayBar> {
    let open = t(open);
    (0..39)
        .map(|k| {
            let start = open + Duration::minutes(10 * k);
            IntradayBar {
                symbol: SYM.to_string(),
                start,
                end: start + Duration::minutes(10),
                open: price,
                high: price,
                low: price,
                close: price,
                volume: 10_000.0,
            }
        })
        .collect()
}

fn config_at(start: &str) -> SimConfig {
    SimConfig {
        start: Some(t(start)),
        ..SimConfig::default()
    }
}

/// A broker at 2026-03-02 09:00 New York (before the open; EST, so the open is 14:30Z and
/// the close 21:00Z).
fn sim(bars: Vec<IntradayBar>) -> SimBroker {
    sim_with(bars, config_at("2026-03-02T14:00:00Z"))
}

fn sim_with(bars: Vec<IntradayBar>, config: SimConfig) -> SimBroker {
    let mut feed = BarListFeed::new([prior_bar()]);
    for bar in bars {
        feed.push(bar);
    }
    SimBroker::open_in_memory(config, Box::new(feed)).unwrap()
}

/// The last bar of the previous session (Friday 2026-02-27), so that a price is known
/// before Monday's open (market buys are valued at the latest price).
fn prior_bar() -> IntradayBar {
    bar("2026-02-27T20:50:00Z", 50.00, 50.00, 50.00, 50.00)
}

fn request(
    cid: &str,
    side: Side,
    qty: i64,
    order_type: OrderType,
    limit: Option<&str>,
    stop: Option<&str>,
    tif: TimeInForce,
) -> OrderRequest {
    OrderRequest {
        client_order_id: cid.to_string(),
        symbol: SYM.to_string(),
        side,
        qty: Decimal::from(qty),
        order_type,
        limit_price: limit.map(d),
        stop_price: stop.map(d),
        time_in_force: tif,
    }
}

fn limit(cid: &str, side: Side, qty: i64, price: &str) -> OrderRequest {
    request(
        cid,
        side,
        qty,
        OrderType::Limit,
        Some(price),
        None,
        TimeInForce::Day,
    )
}

fn gtc_limit(cid: &str, side: Side, qty: i64, price: &str) -> OrderRequest {
    request(
        cid,
        side,
        qty,
        OrderType::Limit,
        Some(price),
        None,
        TimeInForce::Gtc,
    )
}

fn market(cid: &str, side: Side, qty: i64) -> OrderRequest {
    request(
        cid,
        side,
        qty,
        OrderType::Market,
        None,
        None,
        TimeInForce::Day,
    )
}

fn stop(cid: &str, side: Side, qty: i64, price: &str) -> OrderRequest {
    request(
        cid,
        side,
        qty,
        OrderType::Stop,
        None,
        Some(price),
        TimeInForce::Gtc,
    )
}

fn replace_req(
    cid: &str,
    qty: Option<i64>,
    limit: Option<&str>,
    stop: Option<&str>,
) -> ReplaceRequest {
    ReplaceRequest {
        client_order_id: cid.to_string(),
        qty: qty.map(Decimal::from),
        limit_price: limit.map(d),
        stop_price: stop.map(d),
    }
}

fn code_of(err: &BrokerError) -> Option<&str> {
    match err {
        BrokerError::Rejected { code, .. } => code.as_deref(),
        _ => None,
    }
}

fn message_of(err: &BrokerError) -> &str {
    match err {
        BrokerError::Rejected { message, .. } => message,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn order(sim: &mut SimBroker, cid: &str) -> BrokerOrder {
    sim.order_by_client_id(cid).unwrap().expect(cid)
}

fn position_qty(sim: &mut SimBroker) -> Decimal {
    sim.positions()
        .unwrap()
        .iter()
        .find(|p| p.symbol == SYM)
        .map(|p| p.qty)
        .unwrap_or_default()
}

/// Buys `qty` at the open of the 14:30 bar (placed before the open).
fn with_position(qty: i64, price: f64, mut more: Vec<IntradayBar>) -> SimBroker {
    let mut bars = vec![bar("2026-03-02T14:30:00Z", price, price, price, price)];
    bars.append(&mut more);
    let mut sim = sim(bars);
    sim.submit(&market("entry", Side::Buy, qty)).unwrap();
    sim.advance_to(t("2026-03-02T14:40:00Z")).unwrap();
    assert_eq!(position_qty(&mut sim), Decimal::from(qty));
    sim
}

// ---------------------------------------------------------------- fill rules

#[test]
fn limit_buy_above_the_next_open_fills_at_that_open() {
    let mut sim = sim(vec![
        bar("2026-03-02T14:30:00Z", 50.00, 50.40, 49.50, 50.30),
        bar("2026-03-02T14:40:00Z", 50.20, 50.60, 50.10, 50.50),
    ]);
    sim.advance_to(t("2026-03-02T14:35:00Z")).unwrap();
    let placed = sim
        .submit(&limit("buy-1", Side::Buy, 200, "50.50"))
        .unwrap();
    assert_eq!(placed.id, "sim-000001");
    assert_eq!(placed.status, OrderStatus::New);
    assert_eq!(placed.submitted_at, t("2026-03-02T14:35:00Z"));
    // The 14:30 bar started before the order: its 49.50 low is not available to it, and the
    // 14:40 bar is not closed yet at 14:45 (no lookahead).
    assert!(sim
        .advance_to(t("2026-03-02T14:45:00Z"))
        .unwrap()
        .is_empty());
    assert_eq!(order(&mut sim, "buy-1").filled_qty, Decimal::ZERO);
    let events = sim.advance_to(t("2026-03-02T14:50:00Z")).unwrap();
    assert_eq!(events.len(), 1);
    let SimEvent::Fill {
        fill,
        filled_qty,
        status,
    } = &events[0]
    else {
        panic!("{events:?}")
    };
    assert_eq!(
        (fill.qty, fill.price, fill.at),
        (d("200"), d("50.20"), t("2026-03-02T14:50:00Z"))
    );
    assert_eq!((*filled_qty, *status), (d("200"), OrderStatus::Filled));
    let o = order(&mut sim, "buy-1");
    assert_eq!(o.status, OrderStatus::Filled);
    assert_eq!(o.filled_avg_price, Some(d("50.20")));
    assert_eq!(o.updated_at, t("2026-03-02T14:50:00Z"));
    let positions = sim.positions().unwrap();
    assert_eq!(
        positions,
        vec![Position {
            symbol: SYM.to_string(),
            qty: d("200"),
            avg_entry_price: d("50.20")
        }]
    );
    assert_eq!(sim.cash().unwrap(), d("89960"));
    assert!(sim.open_orders().unwrap().is_empty());
}

#[test]
fn limit_buy_fills_at_the_limit_when_the_bar_trades_through_it() {
    let mut sim = sim(vec![bar(
        "2026-03-02T14:30:00Z",
        50.80,
        50.90,
        50.40,
        50.60,
    )]);
    sim.submit(&limit("buy-1", Side::Buy, 100, "50.50"))
        .unwrap();
    sim.advance_to(t("2026-03-02T14:40:00Z")).unwrap();
    let o = order(&mut sim, "buy-1");
    assert_eq!(
        (o.filled_qty, o.filled_avg_price),
        (d("100"), Some(d("50.50")))
    );
}

#[test]
fn limit_buy_below_the_bar_low_does_not_fill() {
    let mut sim = sim(vec![bar(
        "2026-03-02T14:30:00Z",
        50.80,
        50.90,
        50.60,
        50.70,
    )]);
    sim.submit(&limit("buy-1", Side::Buy, 100, "50.50"))
        .unwrap();
    assert!(sim
        .advance_to(t("2026-03-02T14:40:00Z"))
        .unwrap()
        .is_empty());
    let o = order(&mut sim, "buy-1");
    assert_eq!((o.status, o.filled_qty), (OrderStatus::New, Decimal::ZERO));
    assert_eq!(sim.open_orders().unwrap().len(), 1);
}

#[test]
fn limit_sells_fill_at_a_better_open_or_at_the_limit() {
    let mut sim = with_position(
        300,
        50.0,
        vec![
            bar("2026-03-02T14:40:00Z", 52.10, 52.30, 51.90, 52.00),
            bar("2026-03-02T14:50:00Z", 52.00, 52.60, 51.95, 52.40),
        ],
    );
    sim.submit(&limit("sell-1", Side::Sell, 100, "52.00"))
        .unwrap();
    sim.submit(&limit("sell-2", Side::Sell, 100, "52.50"))
        .unwrap();
    sim.advance_to(t("2026-03-02T15:00:00Z")).unwrap();
    // sell-1 met the 14:40 bar: open 52.10 ≥ 52.00 → the open.
    assert_eq!(order(&mut sim, "sell-1").filled_avg_price, Some(d("52.10")));
    // sell-2 waited for the 14:50 bar, whose high 52.60 ≥ 52.50 → the limit.
    assert_eq!(order(&mut sim, "sell-2").filled_avg_price, Some(d("52.50")));
    assert_eq!(position_qty(&mut sim), d("100"));
    // Bought 300 @ 50.00, sold 100 @ 52.10 and 100 @ 52.50.
    assert_eq!(
        sim.cash().unwrap(),
        d("100000") - d("15000") + d("5210") + d("5250")
    );
}

#[test]
fn market_orders_fill_at_the_next_bar_open() {
    let mut sim = sim(vec![
        bar("2026-03-02T14:30:00Z", 45.00, 45.50, 44.80, 45.20),
        bar("2026-03-02T14:40:00Z", 45.25, 45.70, 45.10, 45.60),
    ]);
    sim.advance_to(t("2026-03-02T14:31:00Z")).unwrap();
    sim.submit(&market("m-1", Side::Buy, 150)).unwrap();
    sim.advance_to(t("2026-03-02T16:00:00Z")).unwrap();
    let o = order(&mut sim, "m-1");
    assert_eq!(
        (o.filled_qty, o.filled_avg_price),
        (d("150"), Some(d("45.25")))
    );
    assert_eq!(o.updated_at, t("2026-03-02T14:50:00Z"));
}

#[test]
fn sell_stop_fills_at_the_stop_when_touched() {
    let mut sim = with_position(
        200,
        50.0,
        vec![
            bar("2026-03-02T14:40:00Z", 49.00, 49.10, 48.40, 48.60),
            bar("2026-03-02T14:50:00Z", 48.50, 48.60, 47.80, 47.90),
        ],
    );
    sim.submit(&stop("stop-1", Side::Sell, 200, "48.00"))
        .unwrap();
    let events = sim.advance_to(t("2026-03-02T15:00:00Z")).unwrap();
    assert_eq!(events.len(), 1);
    let o = order(&mut sim, "stop-1");
    assert_eq!(
        (o.status, o.filled_avg_price),
        (OrderStatus::Filled, Some(d("48.00")))
    );
    assert_eq!(o.updated_at, t("2026-03-02T15:00:00Z"));
    assert!(
        sim.positions().unwrap().is_empty(),
        "flat positions are removed"
    );
    assert_eq!(sim.cash().unwrap(), d("100000") - d("10000") + d("9600"));
}

#[test]
fn sell_stop_gap_down_fills_at_the_open() {
    let mut bars = vec![bar("2026-03-02T20:50:00Z", 50.10, 50.20, 50.00, 50.05)];
    // Next morning the stock opens at 46.90, well below the 48.00 stop.
    bars.push(bar("2026-03-03T14:30:00Z", 46.90, 47.40, 46.50, 47.20));
    let mut sim = with_position(200, 50.0, bars);
    sim.submit(&stop("stop-1", Side::Sell, 200, "48.00"))
        .unwrap();
    sim.advance_to(t("2026-03-02T21:00:00Z")).unwrap();
    assert_eq!(order(&mut sim, "stop-1").status, OrderStatus::New);
    sim.advance_to(t("2026-03-03T15:00:00Z")).unwrap();
    let o = order(&mut sim, "stop-1");
    assert_eq!(
        (o.filled_qty, o.filled_avg_price),
        (d("200"), Some(d("46.90")))
    );
}

#[test]
fn buy_stop_triggers_on_the_high() {
    let mut sim = sim(vec![
        bar("2026-03-02T14:30:00Z", 55.00, 55.20, 54.80, 55.10),
        bar("2026-03-02T14:40:00Z", 55.10, 55.60, 55.00, 55.50),
        bar("2026-03-02T14:50:00Z", 56.00, 56.10, 55.90, 56.00),
    ]);
    sim.submit(&stop("bs-1", Side::Buy, 100, "55.40")).unwrap();
    sim.submit(&stop("bs-2", Side::Buy, 100, "55.80")).unwrap();
    sim.advance_to(t("2026-03-02T15:00:00Z")).unwrap();
    assert_eq!(order(&mut sim, "bs-1").filled_avg_price, Some(d("55.40")));
    // Gap up through the stop: the open.
    assert_eq!(order(&mut sim, "bs-2").filled_avg_price, Some(d("56.00")));
}

#[test]
fn fill_prices_are_rounded_to_the_tick_half_even() {
    // 50.125 and 50.375 are exact in binary: half-even gives 50.12 and 50.38.
    let mut sim = sim(vec![
        bar("2026-03-02T14:30:00Z", 50.125, 50.125, 50.125, 50.125),
        bar("2026-03-02T14:40:00Z", 50.375, 50.375, 50.375, 50.375),
    ]);
    sim.submit(&market("m-1", Side::Buy, 100)).unwrap();
    sim.advance_to(t("2026-03-02T14:35:00Z")).unwrap();
    sim.submit(&market("m-2", Side::Buy, 100)).unwrap();
    sim.advance_to(t("2026-03-02T15:00:00Z")).unwrap();
    assert_eq!(order(&mut sim, "m-1").filled_avg_price, Some(d("50.12")));
    assert_eq!(order(&mut sim, "m-2").filled_avg_price, Some(d("50.38")));
    assert_eq!(sim.positions().unwrap()[0].avg_entry_price, d("50.25"));
}

#[test]
fn partial_fills_accumulate_with_a_volume_weighted_average() {
    let bars = vec![
        bar("2026-03-02T14:30:00Z", 50.20, 50.30, 50.10, 50.25),
        bar("2026-03-02T14:40:00Z", 50.30, 50.40, 50.20, 50.35),
        bar("2026-03-02T14:50:00Z", 50.60, 50.70, 50.55, 50.65), // above the limit: no fill
        bar("2026-03-02T15:00:00Z", 50.10, 50.20, 50.00, 50.15),
    ];
    let config = SimConfig {
        partial_fill_ratio: d("0.5"),
        ..config_at("2026-03-02T14:00:00Z")
    };
    let mut sim = sim_with(bars, config);
    sim.submit(&limit("buy-1", Side::Buy, 300, "50.50"))
        .unwrap();
    let mut seen = Vec::new();
    for end in ["14:40", "14:50", "15:00", "15:10"] {
        sim.advance_to(t(&format!("2026-03-02T{end}:00Z"))).unwrap();
        let o = order(&mut sim, "buy-1");
        seen.push((o.filled_qty, o.status));
    }
    assert_eq!(
        seen,
        vec![
            (d("150"), OrderStatus::PartiallyFilled),
            (d("225"), OrderStatus::PartiallyFilled),
            (d("225"), OrderStatus::PartiallyFilled),
            (d("263"), OrderStatus::PartiallyFilled),
        ]
    );
    let o = order(&mut sim, "buy-1");
    let notional = d("150") * d("50.20") + d("75") * d("50.30") + d("38") * d("50.10");
    assert_eq!(o.filled_avg_price, Some(rules::average(notional, d("263"))));
    assert_eq!(o.filled_avg_price, Some(d("50.214068")));
    let fills = sim.fills().unwrap();
    assert_eq!(fills.iter().map(|f| f.qty).sum::<Decimal>(), d("263"));
    assert_eq!(
        fills.iter().map(|f| f.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    // The DAY order expires at the close with its partial fill kept.
    let events = sim.advance_to(t("2026-03-02T21:00:00Z")).unwrap();
    assert!(
        matches!(&events[..], [SimEvent::Expired { at, .. }] if *at == t("2026-03-02T21:00:00Z"))
    );
    let o = order(&mut sim, "buy-1");
    assert_eq!((o.status, o.filled_qty), (OrderStatus::Expired, d("263")));
    assert_eq!(position_qty(&mut sim), d("263"));
}

#[test]
fn a_triggered_stop_fills_its_remainder_at_later_opens() {
    let config = SimConfig {
        partial_fill_ratio: d("0.5"),
        ..config_at("2026-03-02T14:00:00Z")
    };
    let mut sim = sim_with(
        vec![
            bar("2026-03-02T14:30:00Z", 50.00, 50.00, 50.00, 50.00),
            bar("2026-03-02T14:40:00Z", 50.10, 50.10, 50.10, 50.10),
            bar("2026-03-02T14:50:00Z", 48.50, 48.60, 47.80, 48.40),
            bar("2026-03-02T15:00:00Z", 48.40, 48.90, 48.30, 48.80),
        ],
        config,
    );
    sim.submit(&market("entry", Side::Buy, 200)).unwrap();
    sim.advance_to(t("2026-03-02T14:40:00Z")).unwrap();
    assert_eq!(position_qty(&mut sim), d("100"));
    sim.advance_to(t("2026-03-02T14:50:00Z")).unwrap();
    // ceil(0.5 × 100) = 50 more at the 14:40 open.
    assert_eq!(position_qty(&mut sim), d("150"));
    let entry = order(&mut sim, "entry");
    assert_eq!(entry.status, OrderStatus::PartiallyFilled);
    assert_eq!(entry.filled_avg_price, Some(d("50.033333")));
    // Cancelling a partially filled order keeps what filled.
    sim.cancel(&entry.id).unwrap();
    let entry = order(&mut sim, "entry");
    assert_eq!(
        (entry.status, entry.filled_qty),
        (OrderStatus::Canceled, d("150"))
    );

    sim.submit(&stop("stop-1", Side::Sell, 150, "48.00"))
        .unwrap();
    // The 14:50 bar's low 47.80 triggers it: 75 fill at the stop.
    sim.advance_to(t("2026-03-02T15:00:00Z")).unwrap();
    let o = order(&mut sim, "stop-1");
    assert_eq!(
        (o.status, o.filled_qty),
        (OrderStatus::PartiallyFilled, d("75"))
    );
    // Triggered, it keeps filling at the next open (48.40) although that bar's low 48.30
    // stays above the stop.
    let events = sim.advance_to(t("2026-03-02T15:10:00Z")).unwrap();
    let [SimEvent::Fill {
        fill, filled_qty, ..
    }] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(
        (fill.qty, fill.price, *filled_qty),
        (d("38"), d("48.40"), d("113"))
    );
    let o = order(&mut sim, "stop-1");
    assert_eq!(
        o.filled_avg_price,
        Some(rules::average(
            d("75") * d("48.00") + d("38") * d("48.40"),
            d("113")
        ))
    );
    assert_eq!(position_qty(&mut sim), d("37"));
}

// ---------------------------------------------------------------- time in force

#[test]
fn day_orders_expire_at_the_close_and_gtc_orders_do_not() {
    let mut sim = sim(flat_session("2026-03-02T14:30:00Z", 50.0));
    sim.submit(&limit("day-1", Side::Buy, 100, "45.00"))
        .unwrap();
    sim.submit(&gtc_limit("gtc-1", Side::Buy, 100, "45.00"))
        .unwrap();
    assert!(sim
        .advance_to(t("2026-03-02T20:59:59Z"))
        .unwrap()
        .is_empty());
    let events = sim.advance_to(t("2026-03-02T21:00:00Z")).unwrap();
    assert_eq!(
        events,
        vec![SimEvent::Expired {
            order_id: "sim-000001".to_string(),
            client_order_id: "day-1".to_string(),
            symbol: SYM.to_string(),
            at: t("2026-03-02T21:00:00Z"),
        }]
    );
    assert_eq!(order(&mut sim, "day-1").status, OrderStatus::Expired);
    assert_eq!(
        order(&mut sim, "day-1").updated_at,
        t("2026-03-02T21:00:00Z")
    );
    sim.advance_to(t("2026-03-05T21:00:00Z")).unwrap();
    let open = sim.open_orders().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].client_order_id, "gtc-1");
}

#[test]
fn day_orders_expire_at_13_00_on_an_early_close() {
    // 2026-11-27, the day after Thanksgiving: closes 13:00 New York = 18:00Z (EST).
    let mut sim = sim_with(vec![], config_at("2026-11-27T15:00:00Z"));
    let clock = sim.clock().unwrap();
    assert!(clock.is_open);
    assert_eq!(clock.next_close, t("2026-11-27T18:00:00Z"));
    sim.submit(&limit("day-1", Side::Buy, 100, "45.00"))
        .unwrap();
    assert!(sim
        .advance_to(t("2026-11-27T17:59:59Z"))
        .unwrap()
        .is_empty());
    assert_eq!(order(&mut sim, "day-1").status, OrderStatus::New);
    let events = sim.advance_to(t("2026-11-27T18:00:00Z")).unwrap();
    assert_eq!(events.len(), 1);
    let o = order(&mut sim, "day-1");
    assert_eq!(
        (o.status, o.updated_at),
        (OrderStatus::Expired, t("2026-11-27T18:00:00Z"))
    );
}

#[test]
fn orders_placed_after_the_close_work_the_next_session() {
    let mut bars = flat_session("2026-03-02T14:30:00Z", 50.0);
    // Tuesday's bars trade at 49.00 then 49.40; the order is a DAY buy at 49.20.
    bars.push(bar("2026-03-03T14:30:00Z", 49.50, 49.60, 49.30, 49.40));
    bars.push(bar("2026-03-03T14:40:00Z", 49.40, 49.45, 49.10, 49.20));
    let mut sim = sim(bars);
    sim.advance_to(t("2026-03-02T21:30:00Z")).unwrap();
    assert!(!sim.clock().unwrap().is_open);
    sim.submit(&limit("late-1", Side::Buy, 100, "49.20"))
        .unwrap();
    // It does not expire at the close that already passed, nor overnight.
    assert!(sim
        .advance_to(t("2026-03-03T14:40:00Z"))
        .unwrap()
        .is_empty());
    let events = sim.advance_to(t("2026-03-03T14:50:00Z")).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(order(&mut sim, "late-1").filled_avg_price, Some(d("49.20")));

    // A DAY order placed on Saturday belongs to Monday's session.
    let mut sim = sim_with(vec![], config_at("2026-03-07T15:00:00Z"));
    sim.submit(&limit("sat-1", Side::Buy, 100, "40.00"))
        .unwrap();
    assert!(sim
        .advance_to(t("2026-03-09T19:59:59Z"))
        .unwrap()
        .is_empty());
    // 2026-03-09 is EDT: the close is 20:00Z.
    assert_eq!(sim.advance_to(t("2026-03-09T20:00:00Z")).unwrap().len(), 1);
}

#[test]
fn gtc_orders_survive_a_reopen_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SIM_BROKER_FILE);
    let bars = BarListFeed::new(vec![
        prior_bar(),
        bar("2026-03-02T14:30:00Z", 50.00, 50.00, 50.00, 50.00),
        bar("2026-03-03T14:30:00Z", 48.50, 48.60, 47.70, 47.90),
    ]);
    let config = config_at("2026-03-02T14:00:00Z");
    {
        let mut sim = SimBroker::open(&path, config.clone(), Box::new(bars.clone())).unwrap();
        sim.submit(&market("entry", Side::Buy, 200)).unwrap();
        sim.advance_to(t("2026-03-02T21:30:00Z")).unwrap();
        sim.submit(&stop("stop-1", Side::Sell, 200, "48.00"))
            .unwrap();
    }
    let mut sim = SimBroker::open(&path, config.clone(), Box::new(bars.clone())).unwrap();
    assert_eq!(sim.now().unwrap(), t("2026-03-02T21:30:00Z"));
    let open = sim.open_orders().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].client_order_id.as_str(), open[0].time_in_force),
        ("stop-1", TimeInForce::Gtc)
    );
    sim.advance_to(t("2026-03-03T15:00:00Z")).unwrap();
    drop(sim);
    let mut sim = SimBroker::open(&path, config, Box::new(bars)).unwrap();
    let o = order(&mut sim, "stop-1");
    assert_eq!(
        (o.status, o.filled_avg_price),
        (OrderStatus::Filled, Some(d("48.00")))
    );
    assert!(sim.positions().unwrap().is_empty());
    let integrity: String = sim
        .conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let mode: String = sim
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = sim
        .conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
}

// ---------------------------------------------------------------- validation

#[test]
fn prices_off_the_tick_and_bad_quantities_are_rejected() {
    let mut sim = sim(vec![]);
    let err = sim
        .submit(&limit("a", Side::Buy, 100, "50.123"))
        .unwrap_err();
    assert_eq!(code_of(&err), Some(CODE_UNPROCESSABLE));
    assert_eq!(
        message_of(&err),
        "invalid limit_price 50.123. sub-penny increment does not fulfill minimum pricing criteria"
    );
    assert!(sim.submit(&limit("b", Side::Buy, 100, "0.1234")).is_ok());
    assert_eq!(
        code_of(
            &sim.submit(&limit("c", Side::Buy, 100, "0.12345"))
                .unwrap_err()
        ),
        Some(CODE_UNPROCESSABLE)
    );
    let mut fractional = limit("d", Side::Buy, 100, "50.12");
    fractional.qty = d("10.5");
    assert_eq!(
        code_of(&sim.submit(&fractional).unwrap_err()),
        Some(CODE_UNPROCESSABLE)
    );
    for qty in [0, -100] {
        assert_eq!(
            code_of(
                &sim.submit(&limit("e", Side::Buy, qty, "50.12"))
                    .unwrap_err()
            ),
            Some(CODE_UNPROCESSABLE)
        );
    }
    let mut no_limit = limit("f", Side::Buy, 100, "50.12");
    no_limit.limit_price = None;
    assert!(message_of(&sim.submit(&no_limit).unwrap_err()).contains("limit_price is required"));
    let mut stray_stop = limit("g", Side::Buy, 100, "50.12");
    stray_stop.stop_price = Some(d("49.00"));
    assert!(message_of(&sim.submit(&stray_stop).unwrap_err()).contains("not applicable"));
    assert_eq!(
        code_of(
            &sim.submit(&stop("h", Side::Sell, 100, "48.005"))
                .unwrap_err()
        ),
        Some(CODE_UNPROCESSABLE)
    );
    assert_eq!(
        code_of(&sim.submit(&limit("", Side::Buy, 100, "50.12")).unwrap_err()),
        Some(CODE_INVALID_REQUEST)
    );
    let long = "x".repeat(129);
    assert_eq!(
        code_of(
            &sim.submit(&limit(&long, Side::Buy, 100, "50.12"))
                .unwrap_err()
        ),
        Some(CODE_INVALID_REQUEST)
    );
    // Only the one valid order exists; rejected requests leave nothing behind.
    assert_eq!(sim.all_orders().unwrap().len(), 1);
}

#[test]
fn client_order_ids_are_unique_forever() {
    let mut sim = sim(vec![bar("2026-03-02T14:30:00Z", 50.0, 50.0, 50.0, 50.0)]);
    let a = sim
        .submit(&limit("cid-a", Side::Buy, 100, "45.00"))
        .unwrap();
    let dup = sim
        .submit(&limit("cid-a", Side::Buy, 100, "45.00"))
        .unwrap_err();
    assert_eq!(
        dup,
        BrokerError::Rejected {
            code: Some(CODE_INVALID_REQUEST.to_string()),
            message: "client_order_id must be unique".to_string()
        }
    );
    sim.cancel(&a.id).unwrap();
    assert_eq!(order(&mut sim, "cid-a").status, OrderStatus::Canceled);
    let again = sim
        .submit(&limit("cid-a", Side::Buy, 100, "45.00"))
        .unwrap_err();
    assert_eq!(code_of(&again), Some(CODE_INVALID_REQUEST));
    // Filled orders keep their id too.
    sim.submit(&market("cid-b", Side::Buy, 100)).unwrap();
    sim.advance_to(t("2026-03-02T14:40:00Z")).unwrap();
    assert_eq!(order(&mut sim, "cid-b").status, OrderStatus::Filled);
    assert_eq!(
        code_of(&sim.submit(&market("cid-b", Side::Sell, 100)).unwrap_err()),
        Some(CODE_INVALID_REQUEST)
    );
    // A replace must not reuse an id either.
    let c = sim
        .submit(&gtc_limit("cid-c", Side::Buy, 100, "45.00"))
        .unwrap();
    assert_eq!(
        code_of(
            &sim.replace(&c.id, &replace_req("cid-a", None, Some("45.10"), None))
                .unwrap_err()
        ),
        Some(CODE_INVALID_REQUEST)
    );
    // A rejected request does not use its id up.
    let too_many = sim.submit(&market("cid-d", Side::Sell, 500)).unwrap_err();
    assert_eq!(code_of(&too_many), Some(CODE_FORBIDDEN));
    assert!(sim.order_by_client_id("cid-d").unwrap().is_none());
    sim.submit(&market("cid-d", Side::Sell, 100)).unwrap();
    // Lookup returns orders in any state; unknown ids are None.
    assert_eq!(order(&mut sim, "cid-a").id, "sim-000001");
    assert!(sim.order_by_client_id("never").unwrap().is_none());
}

#[test]
fn no_short_selling() {
    let mut sim = sim(vec![]);
    let err = sim
        .submit(&limit("s", Side::Sell, 100, "50.00"))
        .unwrap_err();
    assert_eq!(code_of(&err), Some(CODE_FORBIDDEN));
    assert_eq!(
        message_of(&err),
        "insufficient qty available for order (requested: 100, available: 0)"
    );
}

#[test]
fn a_trim_is_rejected_while_a_full_size_stop_rests_and_accepted_after_replacing_the_stop_down() {
    let mut sim = with_position(200, 50.0, vec![]);
    let stop_order = sim
        .submit(&stop("stop-1", Side::Sell, 200, "48.00"))
        .unwrap();
    let trim = limit("trim-1", Side::Sell, 100, "55.00");
    let err = sim.submit(&trim).unwrap_err();
    assert_eq!(
        err,
        BrokerError::Rejected {
            code: Some(CODE_FORBIDDEN.to_string()),
            message: "insufficient qty available for order (requested: 100, available: 0)"
                .to_string()
        }
    );
    // Resize the stop first (the design: trims resize the stop, never cancel-then-resubmit).
    let smaller = sim
        .replace(
            &stop_order.id,
            &replace_req("stop-2", Some(100), None, None),
        )
        .unwrap();
    assert_eq!(
        (smaller.qty, smaller.stop_price),
        (d("100"), Some(d("48.00")))
    );
    sim.submit(&trim).unwrap();
    // Now all 200 shares are held; raising the stop back to 200 is refused (excluding
    // itself, 100 are available).
    let err = sim
        .replace(&smaller.id, &replace_req("stop-3", Some(200), None, None))
        .unwrap_err();
    assert_eq!(
        message_of(&err),
        "insufficient qty available for order (requested: 200, available: 100)"
    );
    // …but moving it up at the same size is fine.
    let raised = sim
        .replace(
            &smaller.id,
            &replace_req("stop-3", None, None, Some("49.50")),
        )
        .unwrap();
    assert_eq!(
        (raised.qty, raised.stop_price),
        (d("100"), Some(d("49.50")))
    );
    let err = sim
        .submit(&limit("trim-2", Side::Sell, 1, "56.00"))
        .unwrap_err();
    assert!(message_of(&err).contains("(requested: 1, available: 0)"));
}

#[test]
fn replace_chain_links_each_order_to_its_replacement() {
    let mut sim = sim(vec![]);
    let a = sim
        .submit(&gtc_limit("chain-1", Side::Buy, 100, "45.00"))
        .unwrap();
    sim.advance_to(t("2026-03-02T15:00:00Z")).unwrap();
    let b = sim
        .replace(&a.id, &replace_req("chain-2", None, Some("45.50"), None))
        .unwrap();
    sim.advance_to(t("2026-03-02T15:05:00Z")).unwrap();
    let c = sim
        .replace(
            &b.id,
            &replace_req("chain-3", Some(150), Some("46.00"), None),
        )
        .unwrap();
    assert_eq!(
        (a.id.as_str(), b.id.as_str(), c.id.as_str()),
        ("sim-000001", "sim-000002", "sim-000003")
    );
    let all = sim.all_orders().unwrap();
    assert_eq!(
        all.iter()
            .map(|o| (
                o.client_order_id.as_str(),
                o.status,
                o.replaced_by.as_deref()
            ))
            .collect::<Vec<_>>(),
        vec![
            ("chain-1", OrderStatus::Replaced, Some("sim-000002")),
            ("chain-2", OrderStatus::Replaced, Some("sim-000003")),
            ("chain-3", OrderStatus::New, None),
        ]
    );
    assert_eq!(all[1].updated_at, t("2026-03-02T15:05:00Z"));
    assert_eq!(
        (c.qty, c.limit_price, c.submitted_at),
        (d("150"), Some(d("46.00")), t("2026-03-02T15:05:00Z"))
    );
    assert_eq!(
        (c.side, c.order_type, c.time_in_force),
        (Side::Buy, OrderType::Limit, TimeInForce::Gtc)
    );
    assert_eq!(sim.open_orders().unwrap(), vec![c.clone()]);
    // The replaced orders are closed: replacing or cancelling them is refused.
    let err = sim
        .replace(&a.id, &replace_req("chain-x", None, Some("45.10"), None))
        .unwrap_err();
    assert_eq!(code_of(&err), Some(CODE_UNPROCESSABLE));
    assert_eq!(message_of(&err), "order is not open (status: replaced)");
    let err = sim.cancel(&b.id).unwrap_err();
    assert_eq!(message_of(&err), "order is already in \"replaced\" state");
    // A stop price on a limit order is refused.
    let err = sim
        .replace(&c.id, &replace_req("chain-y", None, None, Some("44.00")))
        .unwrap_err();
    assert_eq!(code_of(&err), Some(CODE_UNPROCESSABLE));
}

#[test]
fn cancel_and_replace_of_unknown_or_closed_orders() {
    let mut sim = sim(vec![bar("2026-03-02T14:30:00Z", 50.0, 50.0, 50.0, 50.0)]);
    assert!(matches!(
        sim.cancel("sim-999999"),
        Err(BrokerError::NotFound { .. })
    ));
    assert!(matches!(
        sim.replace("sim-999999", &replace_req("x", Some(1), None, None)),
        Err(BrokerError::NotFound { .. })
    ));
    let filled = sim.submit(&market("m", Side::Buy, 100)).unwrap();
    sim.advance_to(t("2026-03-02T14:40:00Z")).unwrap();
    let err = sim.cancel(&filled.id).unwrap_err();
    assert_eq!(code_of(&err), Some(CODE_UNPROCESSABLE));
    assert_eq!(message_of(&err), "order is already in \"filled\" state");
    let err = sim
        .replace(&filled.id, &replace_req("m2", Some(50), None, None))
        .unwrap_err();
    assert_eq!(message_of(&err), "order is not open (status: filled)");
    let open = sim
        .submit(&gtc_limit("l", Side::Buy, 100, "45.00"))
        .unwrap();
    sim.cancel(&open.id).unwrap();
    let o = order(&mut sim, "l");
    assert_eq!(
        (o.status, o.updated_at),
        (OrderStatus::Canceled, t("2026-03-02T14:40:00Z"))
    );
    assert_eq!(
        code_of(&sim.cancel(&open.id).unwrap_err()),
        Some(CODE_UNPROCESSABLE)
    );
}

#[test]
fn suspend_blocks_new_orders_but_not_cancels_or_sell_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SIM_BROKER_FILE);
    let feed = BarListFeed::new(vec![
        prior_bar(),
        bar("2026-03-02T14:30:00Z", 50.0, 50.0, 50.0, 50.0),
    ]);
    let config = config_at("2026-03-02T14:00:00Z");
    let open = || SimBroker::open(&path, config.clone(), Box::new(feed.clone())).unwrap();
    let mut sim = open();
    sim.submit(&market("entry", Side::Buy, 200)).unwrap();
    sim.advance_to(t("2026-03-02T14:40:00Z")).unwrap();
    let stop_order = sim
        .submit(&stop("stop-1", Side::Sell, 200, "48.00"))
        .unwrap();
    let buy = sim
        .submit(&gtc_limit("buy-1", Side::Buy, 100, "45.00"))
        .unwrap();
    let buy2 = sim
        .submit(&gtc_limit("buy-2", Side::Buy, 100, "45.00"))
        .unwrap();
    sim.suspend_new_orders(true).unwrap();
    assert!(sim.account().unwrap().trading_suspended);
    drop(sim);
    let mut sim = open(); // persisted
    let err = sim
        .submit(&limit("new-1", Side::Buy, 100, "49.00"))
        .unwrap_err();
    assert_eq!(
        err,
        BrokerError::Rejected {
            code: Some(CODE_FORBIDDEN.to_string()),
            message: "new orders are rejected by user request".to_string()
        }
    );
    assert_eq!(
        code_of(&sim.submit(&market("new-2", Side::Sell, 10)).unwrap_err()),
        Some(CODE_FORBIDDEN)
    );
    // Stops still move (replace of a sell), buys cannot be replaced, cancels work.
    sim.replace(
        &stop_order.id,
        &replace_req("stop-2", None, None, Some("49.00")),
    )
    .unwrap();
    let err = sim
        .replace(&buy.id, &replace_req("buy-1b", None, Some("45.50"), None))
        .unwrap_err();
    assert_eq!(message_of(&err), "new orders are rejected by user request");
    sim.cancel(&buy2.id).unwrap();
    sim.suspend_new_orders(false).unwrap();
    assert!(!sim.account().unwrap().trading_suspended);
    sim.submit(&limit("new-1", Side::Buy, 100, "49.00"))
        .unwrap();
}

#[test]
fn buying_power_reserves_open_buys_and_equity_marks_to_the_last_close() {
    let config = SimConfig {
        starting_cash: d("20000"),
        ..config_at("2026-03-02T14:00:00Z")
    };
    let mut sim = sim_with(
        vec![
            bar("2026-03-02T14:30:00Z", 50.00, 50.20, 49.90, 50.10),
            bar("2026-03-02T14:40:00Z", 50.10, 51.30, 50.00, 51.20),
        ],
        config,
    );
    let account = sim.account().unwrap();
    assert_eq!(
        (account.equity, account.buying_power),
        (d("20000"), d("20000"))
    );
    sim.submit(&limit("b1", Side::Buy, 300, "50.00")).unwrap(); // reserves 15,000
    assert_eq!(sim.account().unwrap().buying_power, d("5000"));
    let err = sim
        .submit(&limit("b2", Side::Buy, 101, "50.00"))
        .unwrap_err();
    assert_eq!(
        err,
        BrokerError::Rejected {
            code: Some(CODE_FORBIDDEN.to_string()),
            message: "insufficient buying power".to_string()
        }
    );
    sim.submit(&limit("b2", Side::Buy, 100, "50.00")).unwrap();
    assert_eq!(sim.account().unwrap().buying_power, Decimal::ZERO);
    // A market buy is valued at the latest price (the prior close, 50.00)…
    let err = sim.submit(&market("b3", Side::Buy, 1)).unwrap_err();
    assert_eq!(message_of(&err), "insufficient buying power");
    // …and one with no price at all cannot be valued.
    let mut unpriced = market("b3", Side::Buy, 1);
    unpriced.symbol = "NOPX".to_string();
    let err = sim.submit(&unpriced).unwrap_err();
    assert_eq!(code_of(&err), Some(CODE_UNPROCESSABLE));
    // Both fill at the 14:30 open (50.00); at 14:50 the last close is 51.20.
    sim.advance_to(t("2026-03-02T14:50:00Z")).unwrap();
    let account = sim.account().unwrap();
    assert_eq!(sim.cash().unwrap(), Decimal::ZERO);
    assert_eq!(account.equity, d("400") * d("51.20"));
    assert_eq!(account.buying_power, Decimal::ZERO);
    // Replacing a buy releases its own reservation first.
    let mut sim = sim_with(vec![], config_at("2026-03-02T14:00:00Z"));
    let big = sim
        .submit(&gtc_limit("big", Side::Buy, 1000, "99.00"))
        .unwrap();
    assert!(sim
        .replace(
            &big.id,
            &replace_req("big-2", Some(1010), Some("99.00"), None)
        )
        .is_ok());
    let big = order(&mut sim, "big-2");
    assert!(sim
        .replace(
            &big.id,
            &replace_req("big-3", Some(1011), Some("99.00"), None)
        )
        .is_err());
}

#[test]
fn open_orders_are_in_submission_order_with_sequential_ids() {
    let mut sim = sim(vec![]);
    for (i, cid) in ["z", "a", "m"].iter().enumerate() {
        sim.advance_to(t("2026-03-02T14:00:00Z") + Duration::minutes(i as i64))
            .unwrap();
        sim.submit(&gtc_limit(cid, Side::Buy, 100, "40.00"))
            .unwrap();
    }
    let open = sim.open_orders().unwrap();
    assert_eq!(
        open.iter()
            .map(|o| (o.id.as_str(), o.client_order_id.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("sim-000001", "z"),
            ("sim-000002", "a"),
            ("sim-000003", "m")
        ]
    );
    assert_eq!(sim.name(), "sim");
}

#[test]
fn clock_follows_the_simulated_now_and_the_calendar() {
    let mut sim = sim(vec![]);
    let c = sim.clock().unwrap();
    assert_eq!(
        c,
        MarketClock {
            timestamp: t("2026-03-02T14:00:00Z"),
            is_open: false,
            next_open: t("2026-03-02T14:30:00Z"),
            next_close: t("2026-03-02T21:00:00Z"),
        }
    );
    sim.advance_to(t("2026-03-02T15:00:00Z")).unwrap();
    let c = sim.clock().unwrap();
    assert!(c.is_open);
    assert_eq!(
        (c.next_open, c.next_close),
        (t("2026-03-03T14:30:00Z"), t("2026-03-02T21:00:00Z"))
    );
    // Friday after the close: next open is Monday.
    sim.advance_to(t("2026-03-06T21:00:00Z")).unwrap();
    let c = sim.clock().unwrap();
    assert!(!c.is_open);
    // 2026-03-09 is after the DST change: 09:30 EDT = 13:30Z.
    assert_eq!(
        (c.next_open, c.next_close),
        (t("2026-03-09T13:30:00Z"), t("2026-03-09T20:00:00Z"))
    );
    // Time never goes backwards.
    assert!(sim
        .advance_to(t("2026-03-02T15:00:00Z"))
        .unwrap()
        .is_empty());
    assert_eq!(sim.now().unwrap(), t("2026-03-06T21:00:00Z"));
}

#[test]
fn bad_configs_and_newer_schemas_are_refused() {
    for ratio in ["0", "-0.5", "1.5"] {
        let config = SimConfig {
            partial_fill_ratio: d(ratio),
            ..SimConfig::default()
        };
        assert!(matches!(
            SimBroker::open_in_memory(config, Box::new(BarListFeed::default())),
            Err(SimError::Config(_))
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SIM_BROKER_FILE);
    {
        let sim = SimBroker::open(
            &path,
            SimConfig::default(),
            Box::new(BarListFeed::default()),
        )
        .unwrap();
        sim.conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = SimBroker::open(
        &path,
        SimConfig::default(),
        Box::new(BarListFeed::default()),
    )
    .unwrap_err();
    assert!(
        matches!(err, SimError::NewerSchema { found: 99, .. }),
        "{err}"
    );
}

// ---------------------------------------------------------------- faults

#[test]
fn injected_faults_fire_once_and_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SIM_BROKER_FILE);
    let feed = BarListFeed::new(vec![
        prior_bar(),
        bar("2026-03-02T14:30:00Z", 50.0, 50.0, 50.0, 50.0),
    ]);
    let config = config_at("2026-03-02T14:00:00Z");
    let open = || SimBroker::open(&path, config.clone(), Box::new(feed.clone())).unwrap();
    {
        let mut sim = open();
        sim.inject_fault(SimMethod::Submit, SimFault::UnknownOutcomeAfterAccept)
            .unwrap();
        sim.inject_fault(SimMethod::Submit, SimFault::UnknownOutcomeBeforeAccept)
            .unwrap();
        sim.inject_fault(SimMethod::Submit, SimFault::RejectNext)
            .unwrap();
        sim.inject_fault(SimMethod::Positions, SimFault::ReadError)
            .unwrap();
        sim.inject_fault(
            SimMethod::OrderByClientId,
            SimFault::RateLimited {
                retry_after_secs: 3,
            },
        )
        .unwrap();
        sim.inject_fault(SimMethod::Account, SimFault::Auth)
            .unwrap();
        assert_eq!(sim.pending_faults().unwrap().len(), 6);
    }
    let mut sim = open();
    // 1: the order is placed, but the answer is lost.
    let err = sim.submit(&market("e-1", Side::Buy, 100)).unwrap_err();
    assert!(matches!(err, BrokerError::UnknownOutcome { .. }), "{err:?}");
    // A rate-limited lookup, then the real one finds it.
    assert_eq!(
        sim.order_by_client_id("e-1").unwrap_err(),
        BrokerError::RateLimited {
            retry_after: Some(std::time::Duration::from_secs(3))
        }
    );
    assert_eq!(order(&mut sim, "e-1").status, OrderStatus::New);
    drop(sim);
    let mut sim = open();
    // 2: unknown outcome, nothing placed.
    let err = sim.submit(&market("e-2", Side::Buy, 100)).unwrap_err();
    assert!(matches!(err, BrokerError::UnknownOutcome { .. }));
    assert!(sim.order_by_client_id("e-2").unwrap().is_none());
    // 3: rejected, nothing placed.
    assert_eq!(
        code_of(&sim.submit(&market("e-3", Side::Buy, 100)).unwrap_err()),
        Some(CODE_FORBIDDEN)
    );
    assert!(sim.order_by_client_id("e-3").unwrap().is_none());
    // Then submits work again.
    sim.submit(&market("e-3", Side::Buy, 100)).unwrap();
    assert!(matches!(
        sim.positions(),
        Err(BrokerError::RetryableRead { .. })
    ));
    assert!(sim.positions().is_ok());
    assert!(matches!(sim.account(), Err(BrokerError::Auth { .. })));
    assert!(sim.account().is_ok());
    assert!(sim.pending_faults().unwrap().is_empty());

    // Unknown outcome after a replace and a cancel: both took effect.
    sim.advance_to(t("2026-03-02T14:40:00Z")).unwrap();
    let s = sim.submit(&stop("s-1", Side::Sell, 200, "48.00")).unwrap();
    sim.inject_fault(SimMethod::Replace, SimFault::UnknownOutcomeAfterAccept)
        .unwrap();
    assert!(matches!(
        sim.replace(&s.id, &replace_req("s-2", None, None, Some("48.50"))),
        Err(BrokerError::UnknownOutcome { .. })
    ));
    let s2 = order(&mut sim, "s-2");
    assert_eq!(s2.stop_price, Some(d("48.50")));
    sim.inject_fault(SimMethod::Cancel, SimFault::UnknownOutcomeAfterAccept)
        .unwrap();
    assert!(matches!(
        sim.cancel(&s2.id),
        Err(BrokerError::UnknownOutcome { .. })
    ));
    assert_eq!(order(&mut sim, "s-2").status, OrderStatus::Canceled);
    // A fault is consumed even when the call is rejected for its own reasons.
    sim.inject_fault(SimMethod::Submit, SimFault::UnknownOutcomeAfterAccept)
        .unwrap();
    assert_eq!(
        code_of(&sim.submit(&market("e-3", Side::Buy, 1)).unwrap_err()),
        Some(CODE_INVALID_REQUEST)
    );
    assert!(sim.pending_faults().unwrap().is_empty());

    // Nonsense combinations are refused; clear_faults empties the queue.
    assert!(matches!(
        sim.inject_fault(SimMethod::Positions, SimFault::UnknownOutcomeAfterAccept),
        Err(SimError::InvalidFault { .. })
    ));
    assert!(matches!(
        sim.inject_fault(SimMethod::Submit, SimFault::ReadError),
        Err(SimError::InvalidFault { .. })
    ));
    sim.inject_fault(SimMethod::Clock, SimFault::ReadError)
        .unwrap();
    sim.clear_faults().unwrap();
    assert!(sim.clock().is_ok());
}

// ---------------------------------------------------------------- restart property

fn synthetic_feed(seed: u64) -> SyntheticIntradayFeed {
    let mut rng = SplitMix64::new(seed);
    let mut map = BTreeMap::new();
    for symbol in ["ACME", "BOLT", "CRUX"] {
        let mut price = 40.0 + 20.0 * rng.uniform();
        let mut bars = Vec::new();
        for session in calendar::sessions_between(
            chrono::NaiveDate::from_ymd_opt(2026, 2, 23).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2026, 3, 20).unwrap(),
        )
        .unwrap()
        {
            let cents = |x: f64| (x * 100.0).round() / 100.0;
            let open = cents(price * (1.0 + 0.01 * rng.normal()));
            let close = cents(open * (1.0 + 0.015 * rng.normal()));
            let high = cents(open.max(close) * (1.0 + 0.01 * rng.uniform()));
            let low = cents(open.min(close) * (1.0 - 0.01 * rng.uniform()));
            bars.push(DailyBar {
                date: session.date,
                open,
                high,
                low,
                close,
                volume: 1_000_000.0,
            });
            price = close;
        }
        map.insert(symbol.to_string(), bars);
    }
    SyntheticIntradayFeed::from_daily(map, seed)
}

/// Drives a broker through a seeded random scenario; `between` runs after every step (the
/// restarting run reopens the file there). Returns every answer, rendered.
fn run_scenario(
    seed: u64,
    mut sim: SimBroker,
    mut between: impl FnMut(SimBroker, &mut SplitMix64) -> SimBroker,
) -> (Vec<String>, SimSnapshot) {
    let mut rng = SplitMix64::new(seed ^ 0x5EED);
    let mut restart_rng = SplitMix64::new(seed ^ 0xDEAD);
    let symbols = ["ACME", "BOLT", "CRUX"];
    let mut log = Vec::new();
    let mut next_cid = 0;
    let mut cid = || {
        next_cid += 1;
        format!("c-{next_cid}")
    };
    for _ in 0..120 {
        let now = sim.now().unwrap();
        let symbol = symbols[(rng.next_u64() % 3) as usize];
        let price = sim
            .feed()
            .latest_price(symbol, now)
            .and_then(rules::bar_price)
            .unwrap_or(d("50"));
        let cents = |x: f64| rules::round_to_tick(price * Decimal::from_f64_retain(x).unwrap());
        match rng.next_u64() % 10 {
            0..=2 => {
                let minutes = 5 + (rng.next_u64() % 400) as i64;
                let events = sim.advance_to(now + Duration::minutes(minutes));
                log.push(format!("advance {events:?}"));
            }
            3 | 4 => {
                let tif = if rng.uniform() < 0.5 {
                    TimeInForce::Day
                } else {
                    TimeInForce::Gtc
                };
                let r = OrderRequest {
                    client_order_id: cid(),
                    symbol: symbol.to_string(),
                    side: Side::Buy,
                    qty: Decimal::from(100 + 50 * (rng.next_u64() % 5) as i64),
                    order_type: OrderType::Limit,
                    limit_price: Some(cents(1.0 + 0.01 * rng.normal())),
                    stop_price: None,
                    time_in_force: tif,
                };
                log.push(format!("submit {:?}", sim.submit(&r)));
            }
            5 => {
                let positions = sim.positions().unwrap();
                if let Some(p) = positions.iter().find(|p| p.symbol == symbol) {
                    let r = OrderRequest {
                        client_order_id: cid(),
                        symbol: symbol.to_string(),
                        side: Side::Sell,
                        qty: p.qty,
                        order_type: OrderType::Stop,
                        limit_price: None,
                        stop_price: Some(cents(0.98)),
                        time_in_force: TimeInForce::Gtc,
                    };
                    log.push(format!("stop {:?}", sim.submit(&r)));
                }
            }
            6 => {
                let positions = sim.positions().unwrap();
                if let Some(p) = positions.iter().find(|p| p.symbol == symbol) {
                    let r = OrderRequest {
                        client_order_id: cid(),
                        symbol: symbol.to_string(),
                        side: Side::Sell,
                        qty: (p.qty / Decimal::from(2)).ceil(),
                        order_type: if rng.uniform() < 0.5 {
                            OrderType::Market
                        } else {
                            OrderType::Limit
                        },
                        limit_price: None,
                        stop_price: None,
                        time_in_force: TimeInForce::Day,
                    };
                    let r = if r.order_type == OrderType::Limit {
                        OrderRequest {
                            limit_price: Some(cents(1.01)),
                            ..r
                        }
                    } else {
                        r
                    };
                    log.push(format!("sell {:?}", sim.submit(&r)));
                }
            }
            7 | 8 => {
                let open = sim.open_orders().unwrap();
                if !open.is_empty() {
                    let o = &open[(rng.next_u64() % open.len() as u64) as usize];
                    let req = match o.order_type {
                        OrderType::Limit => ReplaceRequest {
                            client_order_id: cid(),
                            qty: None,
                            limit_price: Some(cents(1.0 + 0.01 * rng.normal())),
                            stop_price: None,
                        },
                        OrderType::Stop => ReplaceRequest {
                            client_order_id: cid(),
                            qty: None,
                            limit_price: None,
                            stop_price: Some(cents(0.985)),
                        },
                        OrderType::Market => ReplaceRequest {
                            client_order_id: cid(),
                            qty: Some(o.qty),
                            limit_price: None,
                            stop_price: None,
                        },
                    };
                    log.push(format!("replace {:?}", sim.replace(&o.id, &req)));
                }
            }
            _ => {
                let open = sim.open_orders().unwrap();
                if !open.is_empty() {
                    let o = &open[(rng.next_u64() % open.len() as u64) as usize];
                    log.push(format!("cancel {:?}", sim.cancel(&o.id)));
                }
            }
        }
        log.push(format!("account {:?}", sim.account()));
        sim = between(sim, &mut restart_rng);
    }
    let snapshot = sim.snapshot().unwrap();
    (log, snapshot)
}

#[test]
fn a_restart_mid_stream_gives_the_same_final_state_as_an_uninterrupted_run() {
    let config = SimConfig {
        partial_fill_ratio: d("0.5"),
        ..config_at("2026-03-02T14:00:00Z")
    };
    for seed in 1..=6u64 {
        let dir = tempfile::tempdir().unwrap();
        let uninterrupted = SimBroker::open(
            &dir.path().join("a.sqlite"),
            config.clone(),
            Box::new(synthetic_feed(seed)),
        )
        .unwrap();
        let (log_a, state_a) = run_scenario(seed, uninterrupted, |sim, _| sim);

        let path_b = dir.path().join("b.sqlite");
        let restarting =
            SimBroker::open(&path_b, config.clone(), Box::new(synthetic_feed(seed))).unwrap();
        let mut restarts = 0;
        let (log_b, state_b) = run_scenario(seed, restarting, |sim, rng| {
            if rng.uniform() < 0.4 {
                restarts += 1;
                drop(sim);
                SimBroker::open(&path_b, config.clone(), Box::new(synthetic_feed(seed))).unwrap()
            } else {
                sim
            }
        });
        let memory =
            SimBroker::open_in_memory(config.clone(), Box::new(synthetic_feed(seed))).unwrap();
        let (log_c, state_c) = run_scenario(seed, memory, |sim, _| sim);

        assert!(restarts > 10);
        assert_eq!(log_a, log_b, "seed {seed}");
        assert_eq!(state_a, state_b, "seed {seed}");
        assert_eq!(log_a, log_c, "seed {seed}");
        assert_eq!(state_a, state_c, "seed {seed}");
        // The scenario exercised the interesting paths.
        assert!(
            state_a.fills.len() > 5,
            "seed {seed}: {} fills",
            state_a.fills.len()
        );
        assert!(state_a
            .orders
            .iter()
            .any(|o| o.status == OrderStatus::Replaced));
        // Accounting invariants: cash moved by exactly the fills; positions = Σ fills.
        let mut cash = config.starting_cash;
        let mut qty: BTreeMap<&str, Decimal> = BTreeMap::new();
        for f in &state_a.fills {
            let signed = if f.side == Side::Buy { f.qty } else { -f.qty };
            cash -= signed * f.price;
            *qty.entry(f.symbol.as_str()).or_default() += signed;
        }
        assert_eq!(cash, state_a.cash);
        qty.retain(|_, q| !q.is_zero());
        let held: BTreeMap<&str, Decimal> = state_a
            .positions
            .iter()
            .map(|p| (p.symbol.as_str(), p.qty))
            .collect();
        assert_eq!(qty, held);
        assert!(held.values().all(|q| *q > Decimal::ZERO), "never short");
        // Each order's fills sum to its filled_qty, never above its qty.
        for o in &state_a.orders {
            let filled: Decimal = state_a
                .fills
                .iter()
                .filter(|f| f.order_id == o.id)
                .map(|f| f.qty)
                .sum();
            assert_eq!(filled, o.filled_qty, "{o:?}");
            assert!(o.filled_qty <= o.qty);
        }
    }
}

#[test]
fn slippage_and_commission_are_charged_per_fill_and_recorded() {
    let config = SimConfig {
        starting_cash: d("100000"),
        commission_per_share: d("0.005"),
        slippage_bps: d("10"),
        ..config_at("2026-03-02T14:00:00Z")
    };
    let mut sim = sim_with(
        vec![
            bar("2026-03-02T14:30:00Z", 45.00, 45.50, 44.80, 45.20),
            bar("2026-03-02T14:40:00Z", 45.25, 45.70, 45.10, 45.60),
            bar("2026-03-02T14:50:00Z", 46.00, 46.10, 45.90, 46.00),
        ],
        config,
    );
    sim.advance_to(t("2026-03-02T14:31:00Z")).unwrap();
    sim.submit(&market("m-1", Side::Buy, 100)).unwrap();
    sim.advance_to(t("2026-03-02T14:50:00Z")).unwrap();
    // Market buy at the 14:40 open 45.25, 10 bps worse: 45.29525 rounded up to 45.30.
    assert_eq!(order(&mut sim, "m-1").filled_avg_price, Some(d("45.30")));
    sim.submit(&market("m-2", Side::Sell, 100)).unwrap();
    sim.advance_to(t("2026-03-02T15:00:00Z")).unwrap();
    // Market sell at the 14:50 open 46.00, 10 bps worse: 45.954 rounded down to 45.95.
    let fills = sim.fills().unwrap();
    assert_eq!(
        fills
            .iter()
            .map(|f| (f.price, f.commission, f.slippage))
            .collect::<Vec<_>>(),
        vec![
            (d("45.30"), d("0.5"), d("5")),
            (d("45.95"), d("0.5"), d("5")),
        ]
    );
    // Cash: 100000 − 4530 − 0.50 + 4595 − 0.50.
    assert_eq!(sim.cash().unwrap(), d("100064"));
}

#[test]
fn slippage_never_fills_a_limit_beyond_its_limit() {
    let config = SimConfig {
        slippage_bps: d("50"),
        ..config_at("2026-03-02T14:00:00Z")
    };
    let mut sim = sim_with(
        vec![bar("2026-03-02T14:30:00Z", 50.80, 51.00, 50.20, 50.60)],
        config,
    );
    sim.submit(&limit("l-1", Side::Buy, 10, "50.50")).unwrap();
    sim.advance_to(t("2026-03-02T15:00:00Z")).unwrap();
    let fill = &sim.fills().unwrap()[0];
    assert_eq!((fill.price, fill.slippage), (d("50.50"), d("0")));
}

#[test]
fn negative_costs_are_refused() {
    for config in [
        SimConfig {
            commission_per_share: d("-0.01"),
            ..SimConfig::default()
        },
        SimConfig {
            slippage_bps: d("-1"),
            ..SimConfig::default()
        },
    ] {
        assert!(matches!(
            SimBroker::open_in_memory(config, Box::new(BarListFeed::default())),
            Err(SimError::Config(_))
        ));
    }
}
