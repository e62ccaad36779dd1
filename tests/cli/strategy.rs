//! The execution strategy, in process: an in-memory state database and an in-memory simulated
//! broker over hand-made 10-minute bars, driven cycle by cycle exactly like
//! `service::Service::cycle` does (`broker.advance_to(now)`, then `engine::run_cycle`).
//!
//! Every scenario trades a $40–$60 stock. The standard position (`held_position`): on
//! 2026-03-02 ACME (Entry_Level 49.90, Stop_Loss 48.50, R1 51.50, R2 53.00) closes 50.05 and
//! 50.00 on the 09:30 and 09:40 bars; the 09:50 cycle buys 199 shares (the $10,000 per-symbol
//! cap at the 50.05 limit binds), the order fills at 50.00 at the open of the 09:50 bar, and
//! the 10:00 cycle places a GTC stop for 199 at 48.50.

use avwap::broker::sim::{SimBroker, SimConfig, SimFault, SimMethod};
use avwap::broker::{Broker, BrokerOrder, OrderStatus, OrderType, Side};
use avwap::calendar;
use avwap::execution::config::ExecutionConfig;
use avwap::execution::db::{IntentState, StateDb};
use avwap::execution::engine::{self, CycleInputs, CycleReport, WatchlistInput};
use avwap::execution::ids::{ClientOrderId, Leg};
use avwap::execution::lifecycle::{Failpoints, OrderDesk};
use avwap::market_data::intraday::{BarListFeed, IntradayBar, BAR_MINUTES};
use avwap::watchlist::{
    AnchorKind, ControlLabel, CrossLabel, Direction, ExtensionLabel, GapResetLabel, TrendTier,
    WatchlistRow,
};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::collections::BTreeSet;
use std::str::FromStr;

const DAY1: &str = "2026-03-02";
const DAY2: &str = "2026-03-03";
const DAY3: &str = "2026-03-04";

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A New York wall-clock time on `day`.
fn ny(day: NaiveDate, hm: &str) -> DateTime<Utc> {
    calendar::ny_instant(day, NaiveTime::parse_from_str(hm, "%H:%M").unwrap())
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Distance of a bar's high/low from its open and close.
const WICK: f64 = 0.02;

/// One session of 10-minute bars from the open. The first bar opens at `open`; every bar opens
/// at the previous close and closes at the price of the last key whose time is at or before the
/// bar's start (`open` before the first key); highs and lows are 2 cents outside open and close.
/// Bars start at 09:30, 09:40, … (keys are given on that grid).
fn path(symbol: &str, day: NaiveDate, open: f64, keys: &[(&str, f64)]) -> Vec<IntradayBar> {
    path_from(symbol, day, "09:30", open, keys)
}

/// Like [`path`], with the first bar starting at `first` instead of the open.
fn path_from(
    symbol: &str,
    day: NaiveDate,
    first: &str,
    open: f64,
    keys: &[(&str, f64)],
) -> Vec<IntradayBar> {
    let session = calendar::session(day).unwrap().expect("a session day");
    let keys: Vec<(DateTime<Utc>, f64)> = keys.iter().map(|(t, p)| (ny(day, t), *p)).collect();
    let mut bars = Vec::new();
    let mut prev = open;
    let mut start = ny(day, first);
    while start < session.close {
        let end = (start + Duration::minutes(BAR_MINUTES)).min(session.close);
        let close = keys
            .iter()
            .rfind(|(t, _)| *t <= start)
            .map_or(open, |(_, p)| *p);
        bars.push(IntradayBar {
            symbol: symbol.to_string(),
            start,
            end,
            open: cents(prev),
            high: cents(prev.max(close) + WICK),
            low: cents(prev.min(close) - WICK),
            close: cents(close),
            volume: 10_000.0,
        });
        prev = close;
        start = end;
    }
    bars
}

/// Overwrite the prices of the bar starting at `hm`.
fn set_bar(bars: &mut [IntradayBar], day: NaiveDate, hm: &str, ohlc: [f64; 4]) {
    let start = ny(day, hm);
    let bar = bars
        .iter_mut()
        .find(|b| b.start == start)
        .unwrap_or_else(|| panic!("no bar at {hm}"));
    bar.open = ohlc[0];
    bar.high = ohlc[1];
    bar.low = ohlc[2];
    bar.close = ohlc[3];
}

fn row(day: NaiveDate, symbol: &str, entry: &str, stop: &str, r1: &str, r2: &str) -> WatchlistRow {
    WatchlistRow {
        scan_date: day,
        symbol: symbol.to_string(),
        direction: Direction::Long,
        trend_tier: TrendTier::A,
        price: d(entry),
        entry_level: d(entry),
        entry_dist_pct: Decimal::ZERO,
        stop_loss: d(stop),
        target_r1: d(r1),
        target_r2: d(r2),
        trend_score: d("21.5"),
        sector: "Industrials".to_string(),
        anchor: AnchorKind::SwingLow20,
        avwap_slope: d("0.0125"),
        setup_vwap_control: ControlLabel::Bullish,
        setup_vwap_reclaim: CrossLabel::None,
        setup_vwap_acceptance: CrossLabel::Bullish,
        setup_vwap_dist_pct: Some(d("1.05")),
        setup_avwap_control: ControlLabel::Bullish,
        setup_avwap_reclaim: CrossLabel::None,
        setup_avwap_acceptance: CrossLabel::Bullish,
        setup_avwap_dist_pct: Some(d("0.20")),
        setup_extension_state: ExtensionLabel::Moderate,
        setup_gap_reset: GapResetLabel::None,
        setup_structure_state: ControlLabel::Bullish,
        data_as_of: calendar::previous_session(day).unwrap(),
        anchor_date: day - Duration::days(28),
    }
}

fn acme_row(day: NaiveDate) -> WatchlistRow {
    row(day, "ACME", "49.90", "48.50", "51.50", "53.00")
}

/// ACME closes 50.05 and 50.00 on the 09:30 and 09:40 bars (confirmed at 09:50), then holds
/// 50.00 (49.98–50.02) for the rest of the day.
fn acme_breakout(day: NaiveDate) -> Vec<IntradayBar> {
    path("ACME", day, 49.60, &[("09:30", 50.05), ("09:40", 50.00)])
}

fn beta_row(day: NaiveDate) -> WatchlistRow {
    row(day, "BETA", "39.90", "38.80", "41.50", "43.00")
}

/// BETA closes 40.05 and 40.00 on the 09:30 and 09:40 bars (confirmed at 09:50; limit 40.04).
fn beta_breakout(day: NaiveDate) -> Vec<IntradayBar> {
    path("BETA", day, 39.60, &[("09:30", 40.05), ("09:40", 40.00)])
}

fn no_watchlist() -> WatchlistInput {
    WatchlistInput::Unavailable("daily_candidates.csv is missing: no entries".to_string())
}

fn leg(order_id: &str) -> Leg {
    ClientOrderId::parse(order_id)
        .unwrap_or_else(|| panic!("not one of our ids: {order_id}"))
        .leg
}

/// An in-memory state database and simulated broker over one list of bars, cycled like the
/// service does it.
struct Sim {
    db: StateDb,
    broker: SimBroker,
    feed: BarListFeed,
    config: ExecutionConfig,
    failpoints: Failpoints,
    kill_switch: Option<String>,
    log: Vec<(DateTime<Utc>, CycleReport)>,
}

impl Sim {
    fn new(bars: Vec<IntradayBar>, config: ExecutionConfig, cash: &str) -> Self {
        let feed = BarListFeed::new(bars);
        let start = ny(date("2026-02-27"), "20:00");
        let broker = SimBroker::open_in_memory(
            SimConfig {
                starting_cash: d(cash),
                partial_fill_ratio: Decimal::ONE,
                start: Some(start),
                ..SimConfig::default()
            },
            // The broker and the engine read identical bars (two clones of one feed).
            Box::new(feed.clone()),
        )
        .unwrap();
        Self {
            db: StateDb::open_in_memory().unwrap(),
            broker,
            feed,
            config,
            failpoints: Failpoints::none(),
            kill_switch: None,
            log: Vec::new(),
        }
    }

    /// One cycle at `now`, as `Service::cycle` runs it.
    fn cycle(&mut self, now: DateTime<Utc>, watchlist: &WatchlistInput) -> CycleReport {
        self.broker.advance_to(now).unwrap();
        let mut desk = OrderDesk {
            db: &mut self.db,
            broker: &mut self.broker,
            now,
            failpoints: &self.failpoints,
            unknown_outcome_grace: std::time::Duration::from_secs(
                self.config.unknown_outcome_grace_seconds,
            ),
        };
        let inputs = CycleInputs {
            watchlist,
            kill_switch: self.kill_switch.clone(),
            feed: &self.feed,
            config: &self.config,
            allow_entries: true,
        };
        let report = engine::run_cycle(&mut desk, &inputs).unwrap();
        assert!(
            report.warnings.is_empty(),
            "cycle at {now}: {:?}",
            report.warnings
        );
        self.log.push((now, report.clone()));
        report
    }

    /// Cycles every `every` minutes from `from` to `to` (New York, inclusive) on `day`.
    fn run(&mut self, day: NaiveDate, from: &str, to: &str, every: i64, wl: &WatchlistInput) {
        let mut now = ny(day, from);
        while now <= ny(day, to) {
            self.cycle(now, wl);
            now += Duration::minutes(every);
        }
    }

    fn broker_orders(&self, symbol: &str) -> Vec<BrokerOrder> {
        self.broker
            .all_orders()
            .unwrap()
            .into_iter()
            .filter(|o| o.symbol == symbol)
            .collect()
    }

    fn orders_of_leg(&self, symbol: &str, want: fn(&Leg) -> bool) -> Vec<BrokerOrder> {
        self.broker_orders(symbol)
            .into_iter()
            .filter(|o| want(&leg(&o.client_order_id)))
            .collect()
    }

    fn entries(&self, symbol: &str) -> Vec<BrokerOrder> {
        self.orders_of_leg(symbol, |l| *l == Leg::Entry)
    }

    fn stops(&self, symbol: &str) -> Vec<BrokerOrder> {
        self.orders_of_leg(symbol, |l| matches!(l, Leg::Stop(_)))
    }

    fn open_stop(&self, symbol: &str) -> Option<BrokerOrder> {
        let mut open: Vec<_> = self
            .stops(symbol)
            .into_iter()
            .filter(|o| o.status.is_open())
            .collect();
        assert!(open.len() <= 1, "more than one open stop: {open:?}");
        open.pop()
    }

    /// (time, reason) of every `entry_skipped` event of `symbol` in session `day`.
    fn skips(&self, day: NaiveDate, symbol: &str) -> Vec<(DateTime<Utc>, String)> {
        self.db
            .events(Some(day))
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "entry_skipped" && e.symbol.as_deref() == Some(symbol))
            .map(|e| {
                let details: serde_json::Value =
                    serde_json::from_str(e.details.as_deref().expect("skip details")).unwrap();
                (e.at, details["reason"].as_str().unwrap().to_string())
            })
            .collect()
    }

    fn skip_at(&self, day: NaiveDate, symbol: &str, at: DateTime<Utc>) -> Option<String> {
        self.skips(day, symbol)
            .into_iter()
            .find(|(t, _)| *t == at)
            .map(|(_, r)| r)
    }

    fn event_count(&self, kind: &str) -> usize {
        self.db
            .events(None)
            .unwrap()
            .iter()
            .filter(|e| e.kind == kind)
            .count()
    }

    fn assert_no_rejections(&self) {
        let rejected: Vec<_> = self
            .db
            .events(None)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "order_rejected")
            .collect();
        assert!(
            rejected.is_empty(),
            "the broker rejected orders: {rejected:#?}"
        );
    }

    fn report_at(&self, at: DateTime<Utc>) -> &CycleReport {
        &self
            .log
            .iter()
            .find(|(t, _)| *t == at)
            .unwrap_or_else(|| panic!("no cycle at {at}"))
            .1
    }
}

/// Day 1 (2026-03-02) of the standard position: ACME bought 199 @ 50.00, GTC stop 199 @ 48.50.
/// `more_bars` are the bars of the following days.
fn held_position(more_bars: Vec<IntradayBar>, config: ExecutionConfig) -> Sim {
    let day1 = date(DAY1);
    let mut bars = acme_breakout(day1);
    bars.extend(more_bars);
    let mut sim = Sim::new(bars, config, "100000");
    sim.run(
        day1,
        "09:35",
        "16:05",
        5,
        &WatchlistInput::Fresh(vec![acme_row(day1)]),
    );
    let p = sim.db.position("ACME").unwrap().expect("ACME is owned");
    assert!(p.open);
    assert_eq!(p.qty, d("199"));
    assert_eq!(p.avg_price, d("50.00"));
    assert_eq!(p.stop_price, d("48.50"));
    assert_eq!(p.opened_session, day1);
    let entry = &sim.entries("ACME")[0];
    assert_eq!(entry.limit_price, Some(d("50.05")));
    assert_eq!(entry.filled_avg_price, Some(d("50.00")));
    let stop = sim.open_stop("ACME").expect("a protective stop");
    assert_eq!(stop.time_in_force, avwap::broker::TimeInForce::Gtc);
    assert_eq!((stop.qty, stop.stop_price), (d("199"), Some(d("48.50"))));
    assert_eq!(
        stop.submitted_at,
        ny(day1, "10:00"),
        "stop right after the fill"
    );
    sim
}

/// Day 2 bars of ACME: up from 50.10 to 50.50, R1 (51.50) reached by the 10:00 bar (close
/// 51.60), R2 (53.00) by the 13:00 bar (close 53.10).
fn acme_runs_to_r1_then_r2(day: NaiveDate) -> Vec<IntradayBar> {
    path(
        "ACME",
        day,
        50.10,
        &[
            ("09:30", 50.50),
            ("10:00", 51.60),
            ("11:00", 52.00),
            ("13:00", 53.10),
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// Protection and exits
// ---------------------------------------------------------------------------------------------

#[test]
fn gap_down_through_the_stop_fills_at_the_open() {
    let day2 = date(DAY2);
    let mut gap = path("ACME", day2, 47.00, &[("09:30", 47.20)]);
    // The session opens at 47.00, 1.50 below the 48.50 stop.
    set_bar(&mut gap, day2, "09:30", [47.00, 47.40, 46.80, 47.20]);
    let mut sim = held_position(gap, ExecutionConfig::default());
    sim.run(day2, "09:25", "10:30", 5, &no_watchlist());

    let fills = sim.broker.fills().unwrap();
    let sells: Vec<_> = fills.iter().filter(|f| f.side == Side::Sell).collect();
    assert_eq!(sells.len(), 1, "{sells:?}");
    let fill = sells[0];
    assert!(
        matches!(leg(&fill.client_order_id), Leg::Stop(1)),
        "{fill:?}"
    );
    assert_eq!(fill.qty, d("199"));
    assert_eq!(
        fill.price,
        d("47.00"),
        "a gap through the stop fills at the open"
    );
    assert_eq!(fill.at, ny(day2, "09:40"));

    let p = sim.db.position("ACME").unwrap().unwrap();
    assert!(!p.open);
    assert_eq!(p.qty, Decimal::ZERO);
    assert_eq!(p.realized_pnl, d("-597.00"), "(47.00 - 50.00) × 199");
    let recorded: Vec<_> = sim
        .db
        .fills()
        .unwrap()
        .into_iter()
        .filter(|f| f.side == Side::Sell)
        .collect();
    assert_eq!(recorded.len(), 1);
    assert_eq!((recorded[0].qty, recorded[0].price), (d("199"), d("47.00")));
    assert_eq!(recorded[0].recorded_at, ny(day2, "09:40"));
    // The broker's stop did it: no market exit was sent, nothing is left at the broker.
    assert!(sim
        .orders_of_leg("ACME", |l| matches!(l, Leg::Exit | Leg::Flatten))
        .is_empty());
    assert!(sim.broker.positions().unwrap().is_empty());
    assert!(sim.broker.open_orders().unwrap().is_empty());
    assert_eq!(sim.broker.cash().unwrap(), d("99403.00"));
    assert!(sim.db.stop("ACME").unwrap().is_none());
    sim.assert_no_rejections();
}

#[test]
fn position_opened_yesterday_is_managed_today_without_a_watchlist() {
    let day2 = date(DAY2);
    let mut sim = held_position(acme_runs_to_r1_then_r2(day2), ExecutionConfig::default());
    let yesterdays_stop = sim.open_stop("ACME").unwrap();
    sim.run(day2, "09:25", "10:05", 5, &no_watchlist());
    // Kept overnight and through the morning, untouched.
    assert_eq!(sim.open_stop("ACME").unwrap(), yesterdays_stop);

    sim.run(day2, "10:10", "16:05", 5, &no_watchlist());
    assert_eq!(sim.report_at(ny(day2, "10:10")).trims_sent, 1);
    let trims = sim.orders_of_leg("ACME", |l| *l == Leg::Trim);
    assert_eq!(trims.len(), 1);
    assert_eq!(
        (trims[0].filled_qty, trims[0].filled_avg_price),
        (d("99"), Some(d("51.60")))
    );
    // Break-even after the trim: the stop level went up to the entry price.
    let events = sim.db.events(Some(day2)).unwrap();
    assert!(events
        .iter()
        .any(|e| e.kind == "stop_raised" && e.at == ny(day2, "10:20")));
    assert_eq!(sim.report_at(ny(day2, "13:10")).exits_sent, 1);
    let exits = sim.orders_of_leg("ACME", |l| *l == Leg::Exit);
    assert_eq!(exits.len(), 1);
    assert_eq!(
        (exits[0].filled_qty, exits[0].filled_avg_price),
        (d("100"), Some(d("53.10")))
    );
    let p = sim.db.position("ACME").unwrap().unwrap();
    assert!(!p.open && p.trimmed);
    assert_eq!(p.stop_price, d("50.00"));
    // 99 × 1.60 + 100 × 3.10
    assert_eq!(p.realized_pnl, d("468.40"));
    assert!(sim.broker.positions().unwrap().is_empty());
    assert!(sim.broker.open_orders().unwrap().is_empty());
    // Without a watchlist there is no entry decision at all today.
    assert!(events
        .iter()
        .all(|e| e.kind != "entry_skipped" && e.kind != "entry_decision"));
    sim.assert_no_rejections();
}

#[test]
fn r1_trim_resizes_the_stop_first_then_sells() {
    let day2 = date(DAY2);
    let mut sim = held_position(acme_runs_to_r1_then_r2(day2), ExecutionConfig::default());
    sim.run(day2, "09:35", "10:05", 5, &no_watchlist());
    let report = sim.cycle(ny(day2, "10:10"), &no_watchlist());
    assert_eq!((report.trims_sent, report.stops_replaced), (1, 1));

    let stops = sim.stops("ACME");
    let trim = sim.orders_of_leg("ACME", |l| *l == Leg::Trim).remove(0);
    assert_eq!(stops.len(), 2, "{stops:#?}");
    let (old, resized) = (&stops[0], &stops[1]);
    assert_eq!(old.status, OrderStatus::Replaced);
    assert_eq!(old.replaced_by.as_deref(), Some(resized.id.as_str()));
    // The resize reached the broker before the trim (broker ids count submissions).
    assert!(
        resized.id < trim.id,
        "stop {} after trim {}",
        resized.id,
        trim.id
    );
    assert_eq!(resized.stop_price, Some(d("48.50")));
    assert_eq!(trim.order_type, OrderType::Market);
    assert_eq!(
        resized.qty + trim.qty,
        d("199"),
        "stop + trim = the position"
    );
    assert_eq!((resized.qty, trim.qty), (d("100"), d("99")));
    let open: Decimal = sim
        .broker
        .open_orders()
        .unwrap()
        .iter()
        .filter(|o| o.side == Side::Sell)
        .map(|o| o.qty - o.filled_qty)
        .sum();
    assert_eq!(open, d("199"));

    sim.run(day2, "10:15", "10:30", 5, &no_watchlist());
    let p = sim.db.position("ACME").unwrap().unwrap();
    assert!(p.open && p.trimmed);
    assert_eq!(p.qty, d("100"));
    assert_eq!(p.realized_pnl, d("158.40"));
    let stop = sim.open_stop("ACME").unwrap();
    assert_eq!((stop.qty, stop.stop_price), (d("100"), Some(d("50.00"))));
    sim.assert_no_rejections();
}

#[test]
fn trim_with_an_unknown_outcome_is_not_repeated() {
    // The trim reaches the broker but its answer is lost (a timeout after send — the same
    // state a SIGKILL between send and record leaves). The next cycle finds it by its client
    // order id; the position must count as trimmed: one trim, then the break-even stop.
    let day2 = date(DAY2);
    let mut sim = held_position(acme_runs_to_r1_then_r2(day2), ExecutionConfig::default());
    sim.run(day2, "09:35", "10:05", 5, &no_watchlist());
    sim.broker
        .inject_fault(SimMethod::Submit, SimFault::UnknownOutcomeAfterAccept)
        .unwrap();
    sim.cycle(ny(day2, "10:10"), &no_watchlist());
    sim.run(day2, "10:15", "12:55", 5, &no_watchlist());

    let trims = sim.orders_of_leg("ACME", |l| *l == Leg::Trim);
    assert_eq!(trims.len(), 1, "the position was trimmed twice: {trims:#?}");
    let p = sim.db.position("ACME").unwrap().unwrap();
    assert!(p.trimmed);
    assert_eq!(p.qty, d("100"));
    assert_eq!(p.stop_price, d("50.00"), "break-even after the trim");
    let stop = sim.open_stop("ACME").unwrap();
    assert_eq!((stop.qty, stop.stop_price), (d("100"), Some(d("50.00"))));
}

#[test]
fn r2_exit_cancels_the_stop_and_sells_everything() {
    let day2 = date(DAY2);
    let bars = path("ACME", day2, 50.10, &[("09:30", 50.50), ("10:00", 53.10)]);
    let mut sim = held_position(bars, ExecutionConfig::default());
    sim.run(day2, "09:35", "10:05", 5, &no_watchlist());
    let report = sim.cycle(ny(day2, "10:10"), &no_watchlist());
    assert_eq!((report.exits_sent, report.trims_sent), (1, 0));
    let stop = sim.stops("ACME").remove(0);
    assert_eq!(stop.status, OrderStatus::Canceled);
    let open = sim.broker.open_orders().unwrap();
    assert_eq!(open.len(), 1, "only the exit is working: {open:#?}");
    assert_eq!(leg(&open[0].client_order_id), Leg::Exit);
    assert_eq!(
        (open[0].qty, open[0].order_type),
        (d("199"), OrderType::Market)
    );

    sim.run(day2, "10:15", "10:30", 5, &no_watchlist());
    let exit = sim.orders_of_leg("ACME", |l| *l == Leg::Exit).remove(0);
    assert_eq!(
        (exit.status, exit.filled_avg_price),
        (OrderStatus::Filled, Some(d("53.10")))
    );
    assert!(sim.orders_of_leg("ACME", |l| *l == Leg::Trim).is_empty());
    assert_eq!(sim.stops("ACME").len(), 1, "no stop placed again");
    let p = sim.db.position("ACME").unwrap().unwrap();
    assert!(!p.open);
    assert_eq!(p.realized_pnl, d("616.90"), "3.10 × 199");
    assert!(sim.broker.positions().unwrap().is_empty());
    sim.assert_no_rejections();
}

#[test]
fn targets_below_the_entry_price_are_ignored() {
    // The watchlist's R1/R2 sit below the fill (entry 50.00): neither trims nor exits.
    let day1 = date(DAY1);
    let mut sim = Sim::new(acme_breakout(day1), ExecutionConfig::default(), "100000");
    let wl = WatchlistInput::Fresh(vec![row(day1, "ACME", "49.90", "48.50", "49.95", "49.99")]);
    sim.run(day1, "09:35", "16:05", 5, &wl);
    let p = sim.db.position("ACME").unwrap().unwrap();
    assert!(p.open && !p.trimmed);
    assert_eq!(p.qty, d("199"));
    assert!(sim
        .orders_of_leg("ACME", |l| matches!(l, Leg::Trim | Leg::Exit))
        .is_empty());
}

#[test]
fn stop_only_moves_up() {
    let (day2, day3) = (date(DAY2), date(DAY3));
    // Day 2: R1 at 10:00 (trim, break-even), then back to 50.60. Day 3: drifts down to 50.20,
    // still above the break-even stop.
    let mut bars = path(
        "ACME",
        day2,
        50.10,
        &[("09:30", 50.50), ("10:00", 51.60), ("11:00", 50.60)],
    );
    bars.extend(path(
        "ACME",
        day3,
        50.60,
        &[("09:30", 50.40), ("11:00", 50.20)],
    ));
    let mut sim = held_position(bars, ExecutionConfig::default());
    sim.run(day2, "09:35", "16:05", 5, &no_watchlist());
    assert_eq!(
        sim.db.position("ACME").unwrap().unwrap().stop_price,
        d("50.00")
    );

    // Day 3's watchlist lists ACME again with a lower stop: it must not lower ours.
    let wl = WatchlistInput::Fresh(vec![row(day3, "ACME", "49.90", "47.00", "51.50", "53.00")]);
    sim.run(day3, "09:35", "16:05", 5, &wl);
    assert_eq!(
        sim.skip_at(day3, "ACME", ny(day3, "10:00")).as_deref(),
        Some("already_owned")
    );
    assert!(!sim
        .db
        .raise_stop_level("ACME", d("49.00"), ny(day3, "16:10"))
        .unwrap());

    let levels: Vec<Decimal> = sim
        .stops("ACME")
        .iter()
        .map(|o| o.stop_price.unwrap())
        .collect();
    assert_eq!(levels, vec![d("48.50"), d("48.50"), d("50.00")]);
    assert!(
        levels.windows(2).all(|w| w[0] <= w[1]),
        "a stop moved down: {levels:?}"
    );
    let p = sim.db.position("ACME").unwrap().unwrap();
    assert!(p.open);
    assert_eq!((p.qty, p.stop_price), (d("100"), d("50.00")));
    let stop = sim.open_stop("ACME").unwrap();
    assert_eq!((stop.qty, stop.stop_price), (d("100"), Some(d("50.00"))));
    // Moves are replaces, never cancel-and-resubmit.
    assert!(sim
        .stops("ACME")
        .iter()
        .all(|o| o.status != OrderStatus::Canceled));
    sim.assert_no_rejections();
}

#[test]
fn kill_switch_blocks_entries_but_not_exits() {
    let day2 = date(DAY2);
    let mut bars = acme_runs_to_r1_then_r2(day2);
    bars.extend(beta_breakout(day2));
    let mut sim = held_position(bars, ExecutionConfig::default());
    sim.kill_switch = Some("KILL_SWITCH file in the state directory".to_string());
    let wl = WatchlistInput::Fresh(vec![beta_row(day2)]);
    sim.run(day2, "09:35", "16:05", 5, &wl);

    assert!(sim.broker_orders("BETA").is_empty());
    let reasons: BTreeSet<String> = sim
        .skips(day2, "BETA")
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(
        reasons,
        BTreeSet::from(["kill_switch".to_string()]),
        "BETA confirms at 09:50 but the kill switch wins"
    );
    // ACME's trim and exit still happened.
    assert_eq!(sim.orders_of_leg("ACME", |l| *l == Leg::Trim).len(), 1);
    assert_eq!(sim.orders_of_leg("ACME", |l| *l == Leg::Exit).len(), 1);
    let p = sim.db.position("ACME").unwrap().unwrap();
    assert!(!p.open);
    assert_eq!(p.realized_pnl, d("468.40"));
}

// ---------------------------------------------------------------------------------------------
// Entries
// ---------------------------------------------------------------------------------------------

#[test]
fn confirmation_in_the_last_minute_of_the_window_does_not_enter() {
    let day = date(DAY1);
    // Bars aligned on the 09:30 open close at :x0, so none closes exactly at 15:45, the end of
    // the entry window. To put the confirmation on that boundary ACME's bars run on a grid
    // shifted by five minutes (09:35, 09:45, …): below 49.90 all day until the 15:25 and 15:35
    // bars close 50.05 and 50.00 — the second confirming bar closes at 15:45.
    let mut bars = path_from(
        "ACME",
        day,
        "09:35",
        49.50,
        &[("09:35", 49.60), ("15:25", 50.05), ("15:35", 50.00)],
    );
    // On the regular grid: BETA's confirming bars close at 15:30 and 15:40 (bought at 15:40,
    // in the window's last five minutes); GAMMA's at 15:40 and 15:50 (after the window).
    bars.extend(path(
        "BETA",
        day,
        39.50,
        &[("09:30", 39.60), ("15:20", 40.05), ("15:30", 40.00)],
    ));
    bars.extend(path(
        "GAMMA",
        day,
        44.50,
        &[("09:30", 44.50), ("15:30", 45.05), ("15:40", 45.00)],
    ));
    let mut sim = Sim::new(bars, ExecutionConfig::default(), "100000");
    let wl = WatchlistInput::Fresh(vec![
        acme_row(day),
        beta_row(day),
        row(day, "GAMMA", "44.90", "43.70", "46.50", "47.50"),
    ]);
    sim.run(day, "15:30", "16:05", 1, &wl);

    assert_eq!(sim.report_at(ny(day, "15:44")).phase, "entry_window");
    assert_eq!(sim.report_at(ny(day, "15:45")).phase, "close_protection");
    assert_eq!(
        sim.skip_at(day, "ACME", ny(day, "15:44")).as_deref(),
        Some("not_confirmed")
    );
    assert_eq!(
        sim.skip_at(day, "ACME", ny(day, "15:45")).as_deref(),
        Some("outside_entry_window")
    );
    assert!(sim.entries("ACME").is_empty(), "entered after the window");
    assert!(sim.db.intents_for("ACME", day).unwrap().is_empty());

    let beta = sim.entries("BETA");
    assert_eq!(beta.len(), 1);
    assert_eq!(beta[0].submitted_at, ny(day, "15:40"));

    assert_eq!(
        sim.skip_at(day, "GAMMA", ny(day, "15:44")).as_deref(),
        Some("not_confirmed")
    );
    assert_eq!(
        sim.skip_at(day, "GAMMA", ny(day, "15:50")).as_deref(),
        Some("outside_entry_window")
    );
    assert!(sim.entries("GAMMA").is_empty());
}

#[test]
fn confirmation_inside_the_window_enters_once() {
    let day = date(DAY1);
    // Breakout at 09:50; stopped out by the 11:00 bar (48.50); a second breakout-and-hold
    // confirmed at 13:20 (closes 50.10, 50.20).
    let bars = path(
        "ACME",
        day,
        49.60,
        &[
            ("09:30", 50.05),
            ("09:40", 50.00),
            ("11:00", 48.40),
            ("12:00", 49.00),
            ("13:00", 50.10),
            ("13:10", 50.20),
        ],
    );
    let mut sim = Sim::new(bars, ExecutionConfig::default(), "100000");
    let wl = WatchlistInput::Fresh(vec![acme_row(day)]);
    sim.run(day, "09:35", "16:05", 5, &wl);

    let entries = sim.entries("ACME");
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(entries[0].submitted_at, ny(day, "09:50"));
    assert_eq!(sim.event_count("entry_decision"), 1);
    let intents: Vec<_> = sim
        .db
        .intents_for("ACME", day)
        .unwrap()
        .into_iter()
        .filter(|i| i.leg == "en")
        .collect();
    assert_eq!(intents.len(), 1);
    // The position was stopped out before the second confirmation.
    let p = sim.db.position("ACME").unwrap().unwrap();
    assert!(!p.open);
    assert_eq!(p.realized_pnl, d("-298.50"), "(48.50 - 50.00) × 199");
    assert!(sim.open_stop("ACME").is_none());
}

#[test]
fn every_candidate_gets_a_decision_every_cycle() {
    // Issue 5, item 6: every candidate, every cycle: taken or skipped with a reason code.
    let day = date(DAY1);
    let mut bars = acme_breakout(day);
    bars.extend(path("LOWE", day, 44.00, &[("09:30", 44.10)]));
    let mut sim = Sim::new(bars, ExecutionConfig::default(), "100000");
    let wl = WatchlistInput::Fresh(vec![
        acme_row(day),
        row(day, "LOWE", "45.00", "43.80", "46.50", "47.50"),
    ]);
    sim.run(day, "09:50", "10:30", 5, &wl);
    let events = sim.db.events(Some(day)).unwrap();
    let mut missing = Vec::new();
    for (at, _) in &sim.log {
        for symbol in ["ACME", "LOWE"] {
            let decided = events.iter().any(|e| {
                e.at == *at
                    && e.symbol.as_deref() == Some(symbol)
                    && (e.kind == "entry_skipped" || e.kind == "entry_decision")
            });
            if !decided {
                missing.push(format!("{symbol} at {at}"));
            }
        }
    }
    assert!(missing.is_empty(), "cycles without a decision: {missing:?}");
}

#[test]
fn early_close_day_2026_11_27() {
    let (wed, fri) = (date("2026-11-25"), date("2026-11-27"));
    let session = calendar::session(fri).unwrap().unwrap();
    assert!(session.early_close);
    assert_eq!(session.close, ny(fri, "13:00"));

    let mut bars = acme_breakout(wed);
    bars.extend(path("ACME", fri, 50.00, &[]));
    // BETA confirms at 12:40 (closes 40.05, 40.00 on the 12:20 and 12:30 bars), then gaps up
    // above its 40.04 limit: the DAY order never fills.
    let mut beta = path(
        "BETA",
        fri,
        39.50,
        &[
            ("09:30", 39.60),
            ("12:20", 40.05),
            ("12:30", 40.00),
            ("12:40", 40.40),
        ],
    );
    set_bar(&mut beta, fri, "12:40", [40.30, 40.45, 40.20, 40.40]);
    bars.extend(beta);
    // GAMMA's second confirming bar closes at 12:50, after the 12:45 end of the window.
    bars.extend(path(
        "GAMMA",
        fri,
        44.50,
        &[("09:30", 44.50), ("12:30", 45.05), ("12:40", 45.00)],
    ));
    let mut sim = Sim::new(bars, ExecutionConfig::default(), "100000");
    sim.run(
        wed,
        "09:35",
        "16:05",
        5,
        &WatchlistInput::Fresh(vec![acme_row(wed)]),
    );
    let acme_stop = sim.open_stop("ACME").expect("ACME protected on Wednesday");

    let wl = WatchlistInput::Fresh(vec![
        beta_row(fri),
        row(fri, "GAMMA", "44.90", "43.70", "46.50", "47.50"),
    ]);
    sim.run(fri, "09:35", "12:25", 5, &wl);
    sim.run(fri, "12:30", "13:10", 1, &wl);

    assert_eq!(sim.report_at(ny(fri, "12:44")).phase, "entry_window");
    assert_eq!(sim.report_at(ny(fri, "12:45")).phase, "close_protection");
    assert_eq!(sim.report_at(ny(fri, "12:59")).phase, "close_protection");
    assert_eq!(sim.report_at(ny(fri, "13:00")).phase, "closed");

    let beta = sim.entries("BETA");
    assert_eq!(beta.len(), 1);
    assert_eq!(beta[0].submitted_at, ny(fri, "12:40"));
    assert_eq!(beta[0].time_in_force, avwap::broker::TimeInForce::Day);
    assert_eq!(beta[0].status, OrderStatus::Expired);
    assert_eq!(
        beta[0].updated_at,
        ny(fri, "13:00"),
        "expires at the early close"
    );
    let recorded = sim.db.order(&beta[0].client_order_id).unwrap().unwrap();
    assert_eq!(recorded.order.status, OrderStatus::Expired);
    assert!(sim.db.position("BETA").unwrap().is_none());

    assert_eq!(
        sim.skip_at(fri, "GAMMA", ny(fri, "12:44")).as_deref(),
        Some("not_confirmed")
    );
    assert_eq!(
        sim.skip_at(fri, "GAMMA", ny(fri, "12:45")).as_deref(),
        Some("outside_entry_window")
    );
    assert!(sim.entries("GAMMA").is_empty());

    // The GTC stop stays through the early close and into Monday.
    let monday = date("2026-11-30");
    sim.cycle(ny(monday, "09:25"), &no_watchlist());
    assert_eq!(sim.open_stop("ACME").as_ref(), Some(&acme_stop));
    assert!(sim.db.stop("ACME").unwrap().is_some());
    assert!(sim.db.position("ACME").unwrap().unwrap().open);
}

#[test]
fn price_drift_and_risk_checks_skip_with_reason_codes() {
    let day = date(DAY1);
    let prev = calendar::previous_session(day).unwrap();
    let mut bars = Vec::new();
    // DRFT: 51.60 / 51.70 over 50.00 — more than 3 % above the entry level (51.50).
    bars.extend(path(
        "DRFT",
        day,
        50.50,
        &[("09:30", 51.60), ("09:40", 51.70)],
    ));
    // RISK: confirmed over 45.00 at 45.20 / 45.30, but Stop_Loss 45.40 is not below the price.
    bars.extend(path(
        "RISK",
        day,
        44.80,
        &[("09:30", 45.20), ("09:40", 45.30)],
    ));
    // LOWE: stays below its 55.00 entry level.
    bars.extend(path("LOWE", day, 54.00, &[("09:30", 54.20)]));
    // HOLD: breaks out (55.10) but the last bar closes back below 55.00: no hold.
    bars.extend(path(
        "HOLD",
        day,
        54.80,
        &[("09:30", 55.10), ("09:40", 54.95)],
    ));
    // OLDR: a confirmed breakout, but its row is yesterday's.
    bars.extend(path(
        "OLDR",
        day,
        41.60,
        &[("09:30", 42.05), ("09:40", 42.00)],
    ));
    // NOBR has no bars at all.
    let mut sim = Sim::new(bars, ExecutionConfig::default(), "100000");
    let wl = WatchlistInput::Fresh(vec![
        row(day, "DRFT", "50.00", "48.60", "52.50", "54.00"),
        row(day, "RISK", "45.00", "45.40", "46.50", "47.50"),
        row(day, "LOWE", "55.00", "53.50", "56.50", "58.00"),
        row(day, "HOLD", "55.00", "53.50", "56.50", "58.00"),
        row(prev, "OLDR", "41.90", "40.80", "43.50", "44.50"),
        row(day, "NOBR", "48.00", "46.50", "49.50", "51.00"),
    ]);
    sim.run(day, "09:40", "09:40", 1, &wl);
    sim.run(day, "09:50", "09:50", 1, &wl);
    let at = ny(day, "09:50");
    for (symbol, reason) in [
        ("DRFT", "price_drift"),
        ("RISK", "risk_invalid"),
        ("LOWE", "not_confirmed"),
        ("HOLD", "not_confirmed"),
        ("OLDR", "stale_watchlist_row"),
        ("NOBR", "no_bars"),
    ] {
        assert_eq!(
            sim.skip_at(day, symbol, at).as_deref(),
            Some(reason),
            "{symbol}"
        );
        assert_eq!(
            sim.skip_at(day, symbol, ny(day, "09:40")).as_deref(),
            Some(if symbol == "OLDR" {
                "stale_watchlist_row"
            } else {
                "outside_entry_window"
            }),
            "{symbol} before the window"
        );
    }
    assert!(sim.broker.all_orders().unwrap().is_empty());
    assert!(sim.db.intents_in_session(day).unwrap().is_empty());
}

/// An instant after the sessions these tests simulate: their reports are as at the close.
fn later_now() -> DateTime<Utc> {
    ny(date(DAY3), "18:00")
}

#[test]
fn day_report_of_a_past_day_is_unchanged_when_the_symbol_is_traded_again() {
    // Day 1: ACME bought at 50.00, stopped out at 48.50: −298.50. Day 2: ACME bought again at
    // 52.00. Day 1's report must still say what happened on day 1.
    let (day1, day2) = (date(DAY1), date(DAY2));
    let mut bars = path(
        "ACME",
        day1,
        49.60,
        &[("09:30", 50.05), ("09:40", 50.00), ("11:00", 48.40)],
    );
    bars.extend(path(
        "ACME",
        day2,
        51.60,
        &[("09:30", 52.05), ("09:40", 52.00)],
    ));
    let mut sim = Sim::new(bars, ExecutionConfig::default(), "100000");
    sim.run(
        day1,
        "09:35",
        "16:05",
        5,
        &WatchlistInput::Fresh(vec![acme_row(day1)]),
    );
    let before = avwap::execution::report::day_report(&sim.db, day1, later_now()).unwrap();
    assert_eq!(before.realized_pnl_today, d("-298.50"));
    let wl = WatchlistInput::Fresh(vec![row(day2, "ACME", "51.90", "50.50", "53.50", "55.00")]);
    sim.run(day2, "09:35", "10:30", 5, &wl);
    assert_eq!(sim.entries("ACME").len(), 2);

    let after = avwap::execution::report::day_report(&sim.db, day1, later_now()).unwrap();
    assert_eq!(
        after.realized_pnl_today,
        d("-298.50"),
        "day 1's P&L changed after day 2's entry"
    );
    let acme: Vec<_> = after
        .positions
        .iter()
        .filter(|p| p.symbol == "ACME")
        .collect();
    assert_eq!(acme.len(), 1);
    assert_eq!(
        (
            acme[0].opened_session,
            acme[0].avg_price,
            acme[0].realized_pnl
        ),
        (day1, d("50.00"), d("-298.50")),
        "day 1's report shows {:?}",
        acme[0]
    );
}

// ---------------------------------------------------------------------------------------------
// Sizing: each cap binding
// ---------------------------------------------------------------------------------------------

fn entry_qty(sim: &Sim, symbol: &str) -> Decimal {
    let entries = sim.entries(symbol);
    assert_eq!(entries.len(), 1, "{symbol}: {entries:#?}");
    entries[0].qty
}

#[test]
fn sizing_cap_risk_per_trade_binds() {
    // $100,000 × 0.5 % = $500 at risk; 50.00 − 45.00 = $5 a share → 100 shares (the symbol cap
    // would allow 199).
    let day = date(DAY1);
    // A $5 stop on $50 is 10% away: allow it past the risk-too-wide check for this case.
    let config = ExecutionConfig {
        max_risk_pct: Decimal::new(20, 0),
        ..ExecutionConfig::default()
    };
    let mut sim = Sim::new(acme_breakout(day), config, "100000");
    let wl = WatchlistInput::Fresh(vec![row(day, "ACME", "49.90", "45.00", "51.50", "53.00")]);
    sim.cycle(ny(day, "09:50"), &wl);
    assert_eq!(entry_qty(&sim, "ACME"), d("100"));
}

#[test]
fn sizing_cap_max_notional_per_symbol_binds() {
    // Risk allows 333 (500 / 1.50); $10,000 / 50.05 → 199.
    let day = date(DAY1);
    let mut sim = Sim::new(acme_breakout(day), ExecutionConfig::default(), "100000");
    sim.cycle(
        ny(day, "09:50"),
        &WatchlistInput::Fresh(vec![acme_row(day)]),
    );
    assert_eq!(entry_qty(&sim, "ACME"), d("199"));
    let order = &sim.entries("ACME")[0];
    assert!(order.qty * order.limit_price.unwrap() <= d("10000"));
}

#[test]
fn sizing_cap_max_gross_notional_binds() {
    // Gross cap $15,000: ACME takes 199 × 50.05 = 9,959.95; BETA gets the rest:
    // floor(5,040.05 / 40.04) = 125 (its symbol cap would allow 249).
    let day = date(DAY1);
    let mut bars = acme_breakout(day);
    bars.extend(beta_breakout(day));
    let config = ExecutionConfig {
        max_gross_notional: d("15000"),
        ..ExecutionConfig::default()
    };
    let mut sim = Sim::new(bars, config, "100000");
    sim.cycle(
        ny(day, "09:50"),
        &WatchlistInput::Fresh(vec![acme_row(day), beta_row(day)]),
    );
    assert_eq!(entry_qty(&sim, "ACME"), d("199"));
    assert_eq!(entry_qty(&sim, "BETA"), d("125"));
}

#[test]
fn sizing_cap_max_positions_binds() {
    let day = date(DAY1);
    let mut bars = acme_breakout(day);
    bars.extend(beta_breakout(day));
    let config = ExecutionConfig {
        max_positions: 1,
        ..ExecutionConfig::default()
    };
    let mut sim = Sim::new(bars, config, "100000");
    let wl = WatchlistInput::Fresh(vec![acme_row(day), beta_row(day)]);
    sim.cycle(ny(day, "09:50"), &wl);
    // After ACME's fill (10:00) the owned position still blocks BETA.
    sim.cycle(ny(day, "10:00"), &wl);
    assert_eq!(entry_qty(&sim, "ACME"), d("199"));
    assert!(sim.entries("BETA").is_empty());
    for hm in ["09:50", "10:00"] {
        assert_eq!(
            sim.skip_at(day, "BETA", ny(day, hm)).as_deref(),
            Some("max_positions"),
            "{hm}"
        );
    }
}

#[test]
fn sizing_cap_max_entries_per_day_binds() {
    // One entry a day: ACME enters and is stopped out at 11:00; BETA confirms at 12:10 with
    // no position open, and is refused for the day's entry count.
    let day = date(DAY1);
    let mut bars = path(
        "ACME",
        day,
        49.60,
        &[("09:30", 50.05), ("09:40", 50.00), ("11:00", 48.40)],
    );
    bars.extend(path(
        "BETA",
        day,
        39.50,
        &[("09:30", 39.60), ("11:50", 40.05), ("12:00", 40.00)],
    ));
    let config = ExecutionConfig {
        max_entries_per_day: 1,
        ..ExecutionConfig::default()
    };
    let mut sim = Sim::new(bars, config, "100000");
    let wl = WatchlistInput::Fresh(vec![acme_row(day), beta_row(day)]);
    sim.run(day, "09:35", "13:00", 5, &wl);
    assert_eq!(entry_qty(&sim, "ACME"), d("199"));
    assert!(!sim.db.position("ACME").unwrap().unwrap().open);
    assert!(sim.entries("BETA").is_empty());
    assert_eq!(
        sim.skip_at(day, "BETA", ny(day, "12:05")).as_deref(),
        Some("not_confirmed")
    );
    assert_eq!(
        sim.skip_at(day, "BETA", ny(day, "12:10")).as_deref(),
        Some("max_entries_per_day")
    );
}

#[test]
fn sizing_cap_buying_power_binds() {
    // $6,000 cash and 5 % risk per trade (risk allows 200, the symbol cap 199):
    // floor(6,000 / 50.05) = 119.
    let day = date(DAY1);
    let config = ExecutionConfig {
        risk_per_trade: d("0.05"),
        ..ExecutionConfig::default()
    };
    let mut sim = Sim::new(acme_breakout(day), config, "6000");
    sim.cycle(
        ny(day, "09:50"),
        &WatchlistInput::Fresh(vec![acme_row(day)]),
    );
    assert_eq!(entry_qty(&sim, "ACME"), d("119"));
    sim.assert_no_rejections();
}

#[test]
fn sizing_zero_when_nothing_fits_is_a_skip() {
    // $40 of cash cannot buy one share of a $50 stock.
    let day = date(DAY1);
    let mut sim = Sim::new(acme_breakout(day), ExecutionConfig::default(), "40");
    sim.cycle(
        ny(day, "09:50"),
        &WatchlistInput::Fresh(vec![acme_row(day)]),
    );
    assert!(sim.entries("ACME").is_empty());
    assert_eq!(
        sim.skip_at(day, "ACME", ny(day, "09:50")).as_deref(),
        Some("size_zero")
    );
}

/// ACME confirms at 09:50 but its next bars trade above the 50.05 limit: the entry order stays
/// open (unfilled) all morning. BETA confirms at 10:10 (closes 40.05, 40.00 at 09:50, 10:00).
fn pending_acme_then_beta(day: NaiveDate) -> Vec<IntradayBar> {
    let mut acme = path(
        "ACME",
        day,
        49.60,
        &[("09:30", 50.05), ("09:40", 50.00), ("09:50", 50.30)],
    );
    set_bar(&mut acme, day, "09:50", [50.25, 50.35, 50.20, 50.30]);
    let mut bars = acme;
    bars.extend(path(
        "BETA",
        day,
        39.50,
        &[("09:30", 39.60), ("09:50", 40.05), ("10:00", 40.00)],
    ));
    bars
}

#[test]
fn max_positions_counts_entry_orders_still_working() {
    let day = date(DAY1);
    let config = ExecutionConfig {
        max_positions: 1,
        ..ExecutionConfig::default()
    };
    let mut sim = Sim::new(pending_acme_then_beta(day), config, "100000");
    let wl = WatchlistInput::Fresh(vec![acme_row(day), beta_row(day)]);
    sim.run(day, "09:50", "10:30", 5, &wl);
    let acme = sim.entries("ACME");
    assert_eq!(acme.len(), 1);
    assert!(acme[0].status.is_open(), "ACME's entry is still working");
    assert!(
        sim.entries("BETA").is_empty(),
        "max_positions = 1 but BETA was bought while ACME's entry was working: {:#?}",
        sim.entries("BETA")
    );
}

#[test]
fn max_gross_notional_counts_entry_orders_still_working() {
    let day = date(DAY1);
    let config = ExecutionConfig {
        max_gross_notional: d("15000"),
        ..ExecutionConfig::default()
    };
    let mut sim = Sim::new(pending_acme_then_beta(day), config, "100000");
    let wl = WatchlistInput::Fresh(vec![acme_row(day), beta_row(day)]);
    sim.run(day, "09:50", "10:30", 5, &wl);
    // Nothing is sold in this scenario: every entry order, working or filled, is exposure.
    let committed: Decimal = sim
        .broker
        .all_orders()
        .unwrap()
        .iter()
        .filter(|o| o.side == Side::Buy && o.status != OrderStatus::Expired)
        .map(|o| o.qty * o.limit_price.unwrap())
        .sum();
    assert!(
        sim.entries("ACME")[0].status.is_open(),
        "ACME's entry is still working"
    );
    assert!(
        committed <= d("15000"),
        "entries worth {committed} against a 15,000 gross cap: {:#?}",
        sim.broker.all_orders().unwrap()
    );
}

#[test]
fn buying_power_is_shared_by_the_entries_of_one_cycle() {
    // $12,000 cash: ACME reserves 199 × 50.05 = 9,959.95; BETA, decided in the same cycle,
    // can have at most floor(2,040.05 / 40.04) = 50 shares.
    let day = date(DAY1);
    let mut bars = acme_breakout(day);
    bars.extend(beta_breakout(day));
    let config = ExecutionConfig {
        risk_per_trade: d("0.05"),
        ..ExecutionConfig::default()
    };
    let mut sim = Sim::new(bars, config, "12000");
    sim.cycle(
        ny(day, "09:50"),
        &WatchlistInput::Fresh(vec![acme_row(day), beta_row(day)]),
    );
    assert_eq!(entry_qty(&sim, "ACME"), d("199"));
    let beta = sim.db.intents_for("BETA", day).unwrap();
    assert_eq!(beta.len(), 1);
    assert!(
        beta[0].qty <= d("50"),
        "BETA sized {} with only 2,040.05 of buying power left (state {:?})",
        beta[0].qty,
        beta[0].state
    );
    assert_ne!(beta[0].state, IntentState::Rejected);
    sim.assert_no_rejections();
}

// ---------------------------------------------------------------------------------------------
// Sizing properties (engine::size)
// ---------------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn sizing_never_exceeds_a_cap_and_is_monotone_in_equity(
        equity_cents in 0i64..5_000_000_000,
        more_equity_cents in 0i64..5_000_000_000,
        power_cents in -1_000_000i64..5_000_000_000,
        price_cents in 100i64..100_000,
        risk_cents in -500i64..5_000,
        slippage_bps in 0i64..100,
        gross_cents in 0i64..30_000_000,
        risk_bp in 1i64..300,
        per_symbol in 500i64..50_000,
        gross_cap in 1_000i64..300_000,
    ) {
        let config = ExecutionConfig {
            risk_per_trade: Decimal::new(risk_bp, 4),
            max_notional_per_symbol: Decimal::new(per_symbol, 0),
            max_gross_notional: Decimal::new(gross_cap, 0),
            ..ExecutionConfig::default()
        };
        let equity = Decimal::new(equity_cents, 2);
        let power = Decimal::new(power_cents, 2);
        let price = Decimal::new(price_cents, 2);
        let stop = price - Decimal::new(risk_cents, 2);
        let limit = engine::to_tick(price * (Decimal::ONE + Decimal::new(slippage_bps, 4)));
        let gross = Decimal::new(gross_cents, 2);
        let qty = engine::size(equity, power, price, limit, stop, gross, &config);

        prop_assert!(qty >= Decimal::ZERO);
        prop_assert!(qty.fract().is_zero(), "whole shares: {}", qty);
        if stop >= price {
            prop_assert_eq!(qty, Decimal::ZERO);
        }
        if qty > Decimal::ZERO {
            let notional = qty * limit;
            prop_assert!(qty * (price - stop) <= equity * config.risk_per_trade, "risk");
            prop_assert!(notional <= config.max_notional_per_symbol, "per symbol");
            prop_assert!(gross + notional <= config.max_gross_notional, "gross");
            prop_assert!(notional <= power, "buying power");
        }
        let richer = engine::size(
            equity + Decimal::new(more_equity_cents, 2),
            power,
            price,
            limit,
            stop,
            gross,
            &config,
        );
        prop_assert!(richer >= qty, "more equity gave {} < {}", richer, qty);
    }
}

// ---------------------------------------------------------------------------------------------
// Recovery: the journal lost or rolled back while the broker holds our position (issue 14)
// ---------------------------------------------------------------------------------------------

/// ACME and BETA both confirm at 09:50 with one position allowed: ACME is entered (199 @ 50.00,
/// stop 48.50 at 10:00), BETA is skipped for the cap.
fn one_slot_two_breakouts() -> (Sim, WatchlistInput) {
    let day1 = date(DAY1);
    let mut bars = acme_breakout(day1);
    bars.extend(beta_breakout(day1));
    let config = ExecutionConfig {
        max_positions: 1,
        ..ExecutionConfig::default()
    };
    let sim = Sim::new(bars, config, "100000");
    let wl = WatchlistInput::Fresh(vec![acme_row(day1), beta_row(day1)]);
    (sim, wl)
}

/// After a recovery: one entry for ACME ever, none for BETA (the cap counts what the broker
/// holds), the broker's ACME position owned again in full and covered by exactly one working
/// stop for all of it.
fn assert_recovered(sim: &mut Sim, label: &str) {
    assert_eq!(sim.entries("ACME").len(), 1, "{label}: a second ACME entry");
    assert!(
        sim.entries("BETA").is_empty(),
        "{label}: BETA entered past the cap"
    );
    let broker_qty = sim
        .broker
        .positions()
        .unwrap()
        .into_iter()
        .find(|p| p.symbol == "ACME")
        .map(|p| p.qty)
        .expect("the broker holds ACME");
    assert_eq!(broker_qty, d("199"), "{label}");
    let owned = sim.db.position("ACME").unwrap().expect("ACME owned again");
    assert!(owned.open, "{label}");
    assert_eq!(
        owned.qty, broker_qty,
        "{label}: the journal owns what the broker holds"
    );
    let stop = sim.open_stop("ACME").expect("a working stop");
    assert_eq!(
        stop.qty, broker_qty,
        "{label}: the stop covers the whole position"
    );
    assert_eq!(
        stop.stop_price,
        Some(d("48.50")),
        "{label}: the stop level is kept"
    );
}

#[test]
fn a_lost_journal_is_rebuilt_from_the_broker_without_a_second_entry_or_a_cap_exceeded() {
    let day1 = date(DAY1);
    let (mut sim, wl) = one_slot_two_breakouts();
    sim.run(day1, "09:35", "10:05", 5, &wl);
    assert_eq!(sim.entries("ACME").len(), 1);
    assert!(sim.open_stop("ACME").is_some());
    // The state database is lost (deleted, or truncated to 0 bytes: SQLite opens both empty).
    sim.db = StateDb::open_in_memory().unwrap();
    sim.run(day1, "10:10", "11:00", 5, &wl);
    assert_recovered(&mut sim, "journal lost");
    assert_eq!(sim.event_count("position_recovered"), 1);
    assert_eq!(
        sim.skip_at(day1, "BETA", ny(day1, "10:10")).as_deref(),
        Some("max_positions")
    );
    // The entry found at the broker counts as today's entry (and the position is owned).
    assert_eq!(
        sim.skip_at(day1, "ACME", ny(day1, "10:10")).as_deref(),
        Some("already_entered_today")
    );
    sim.assert_no_rejections();
}

/// The journal rolled back to a copy from 1, 2 or 3 cycles earlier (a backup restore, a VM
/// snapshot, storage that lost recent writes), at every moment of the entry's life: never a
/// second entry, never a cap exceeded, the position always ends owned and fully protected.
#[test]
fn a_journal_rolled_back_by_one_to_three_cycles_recovers_at_every_step() {
    let day1 = date(DAY1);
    let times = ["09:45", "09:50", "09:55", "10:00", "10:05", "10:10"];
    for lost_after in 3..times.len() {
        for back in 1..=3 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("execution.sqlite");
            let (mut sim, wl) = one_slot_two_breakouts();
            sim.db = StateDb::open(&path).unwrap();
            let mut copies = Vec::new();
            for (i, t) in times.iter().enumerate().take(lost_after + 1) {
                sim.cycle(ny(day1, t), &wl);
                let copy = dir.path().join(format!("copy-{i}"));
                std::fs::create_dir(&copy).unwrap();
                for suffix in ["", "-wal"] {
                    let from = dir.path().join(format!("execution.sqlite{suffix}"));
                    if from.exists() {
                        std::fs::copy(&from, copy.join(format!("execution.sqlite{suffix}")))
                            .unwrap();
                    }
                }
                copies.push(copy);
            }
            // Close the journal, put the older copy in its place, reopen.
            sim.db = StateDb::open_in_memory().unwrap();
            let restore = &copies[lost_after - back];
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(dir.path().join(format!("execution.sqlite{suffix}")));
            }
            for suffix in ["", "-wal"] {
                let from = restore.join(format!("execution.sqlite{suffix}"));
                if from.exists() {
                    std::fs::copy(&from, dir.path().join(format!("execution.sqlite{suffix}")))
                        .unwrap();
                }
            }
            sim.db = StateDb::open(&path).unwrap();
            let label = format!(
                "journal after {} rolled back to the copy after {}",
                times[lost_after],
                times[lost_after - back]
            );
            let mut now = ny(day1, times[lost_after]) + Duration::minutes(5);
            while now <= ny(day1, "11:00") {
                sim.cycle(now, &wl);
                now += Duration::minutes(5);
            }
            assert_recovered(&mut sim, &label);
        }
    }
}
