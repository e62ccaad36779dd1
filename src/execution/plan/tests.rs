//! `plan_cycle` on its own: hand-made states for each rule, and properties over generated
//! states (caps never exceeded, every owned position protected, monotone in equity,
//! deterministic and idempotent on a replayed state). No broker, no database.

use super::*;
use crate::broker::{OrderStatus, Position, Side};
use crate::calendar;
use crate::market_data::intraday::IntradayBar;
use crate::watchlist::tests_support::sample_row;
use chrono::NaiveTime;
use proptest::prelude::*;

fn dec(s: &str) -> Decimal {
    s.parse().expect("a decimal literal")
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 2).expect("a date")
}

fn ny(hm: &str) -> DateTime<Utc> {
    calendar::ny_instant(
        day(),
        NaiveTime::parse_from_str(hm, "%H:%M").expect("a time"),
    )
}

fn state_at(now: DateTime<Utc>, config: &ExecutionConfig) -> CycleState {
    CycleState {
        now,
        session: crate::execution::phases::todays_session(now),
        phase: crate::execution::phases::phase(now, config),
        owned: Vec::new(),
        broker_positions: Some(BTreeMap::new()),
        open_orders: Vec::new(),
        account: Ok(Account {
            equity: dec("100000"),
            buying_power: dec("100000"),
            trading_suspended: false,
        }),
        market: MarketSnapshot::default(),
        blocked: BTreeSet::new(),
        unreadable_positions: BTreeSet::new(),
        watchlist: WatchlistInput::Fresh(Vec::new()),
        kill_switch: None,
        allow_entries: true,
        incomplete_reads: Vec::new(),
        journal: Journal {
            id_session: Some(day()),
            ..Journal::default()
        },
    }
}

fn position(symbol: &str, qty: u32, avg: &str, stop: &str, r1: &str, r2: &str) -> OwnedPosition {
    OwnedPosition {
        symbol: symbol.to_string(),
        qty: Decimal::from(qty),
        avg_price: dec(avg),
        opened_session: day(),
        entry_client_order_id: format!("avw-20260302-{symbol}-en-1"),
        stop_price: dec(stop),
        target_r1: Some(dec(r1)),
        target_r2: Some(dec(r2)),
        trimmed: false,
        open: true,
        realized_pnl: Decimal::ZERO,
    }
}

fn held(symbol: &str, qty: &str) -> (String, Position) {
    (
        symbol.to_string(),
        Position {
            symbol: symbol.to_string(),
            qty: dec(qty),
            avg_entry_price: dec("40"),
        },
    )
}

fn order(symbol: &str, side: Side, kind: OrderType, qty: Decimal, price: Decimal) -> BrokerOrder {
    let n = format!("{symbol}-{}-{qty}-{price}", kind.as_str());
    BrokerOrder {
        id: format!("id-{n}"),
        client_order_id: format!("avw-{n}"),
        symbol: symbol.to_string(),
        side,
        qty,
        filled_qty: Decimal::ZERO,
        filled_avg_price: None,
        order_type: kind,
        limit_price: (kind == OrderType::Limit).then_some(price),
        stop_price: (kind == OrderType::Stop).then_some(price),
        time_in_force: TimeInForce::Gtc,
        status: OrderStatus::New,
        submitted_at: ny("09:31"),
        updated_at: ny("09:31"),
        replaced_by: None,
    }
}

fn stop(symbol: &str, qty: u32, level: &str) -> BrokerOrder {
    order(
        symbol,
        Side::Sell,
        OrderType::Stop,
        Decimal::from(qty),
        dec(level),
    )
}

/// Two closed bars of today (09:30 and 09:40) closing at `prev` and `last`.
fn bars(symbol: &str, prev: f64, last: f64) -> Vec<IntradayBar> {
    ["09:30", "09:40"]
        .iter()
        .zip([prev, last])
        .map(|(start, close)| IntradayBar {
            symbol: symbol.to_string(),
            start: ny(start),
            end: ny(start) + Duration::minutes(10),
            open: close,
            high: close + 0.02,
            low: close - 0.02,
            close,
            volume: 10_000.0,
        })
        .collect()
}

/// A candidate whose breakout at 50.05/50.00 over 49.90 is confirmed (stop 48.50).
fn candidate(symbol: &str) -> WatchlistRow {
    let mut row = sample_row();
    row.scan_date = day();
    row.symbol = symbol.to_string();
    row.entry_level = dec("49.90");
    row.stop_loss = dec("48.50");
    row.target_r1 = dec("51.50");
    row.target_r2 = dec("53.00");
    row
}

fn with_breakout(state: &mut CycleState, symbol: &str) {
    state
        .market
        .bars
        .insert(symbol.to_string(), bars(symbol, 50.05, 50.00));
    state.market.latest.insert(symbol.to_string(), 50.00);
}

fn skips(plan: &CyclePlan) -> Vec<(&str, &str)> {
    plan.candidates
        .iter()
        .filter_map(|c| match c {
            Candidate::Skip { symbol, reason, .. } => Some((symbol.as_str(), *reason)),
            Candidate::Enter { .. } => None,
        })
        .collect()
}

#[test]
fn a_confirmed_breakout_is_entered_with_a_capped_size_and_a_deterministic_id() {
    let config = ExecutionConfig::default();
    let mut state = state_at(ny("09:50"), &config);
    state.watchlist = WatchlistInput::Fresh(vec![candidate("ACME")]);
    with_breakout(&mut state, "ACME");
    let plan = plan_cycle(&state, &config);
    let entries: Vec<_> = plan.entries().collect();
    assert_eq!(entries.len(), 1, "{plan:?}");
    let entry = entries[0];
    assert_eq!(entry.client_order_id, "avw-20260302-ACME-en-1");
    // 50.00 + 10 bp = 50.05; the $10,000 per-symbol cap binds: 199 shares.
    assert_eq!(entry.limit_price, Some(dec("50.05")));
    assert_eq!(entry.qty, dec("199"));
    assert_eq!(
        entry.plan.as_ref().map(|p| p.stop_price),
        Some(dec("48.50"))
    );
    assert!(plan.protect.is_empty() && plan.exits.is_empty());
}

#[test]
fn an_incomplete_read_means_no_entries_but_protection_goes_on() {
    let config = ExecutionConfig::default();
    let mut state = state_at(ny("09:50"), &config);
    state.watchlist = WatchlistInput::Fresh(vec![candidate("ACME")]);
    with_breakout(&mut state, "ACME");
    state.owned = vec![position("HELD", 100, "40", "38", "42", "44")];
    state.broker_positions = None;
    state.incomplete_reads = vec!["positions".into()];
    let plan = plan_cycle(&state, &config);
    assert_eq!(plan.entries().count(), 0);
    assert_eq!(skips(&plan), vec![("ACME", "reads_incomplete")]);
    // No broker report: our own 100 shares are protected, never assumed flat.
    assert!(matches!(&plan.protect[..], [Action::Stop { intent }] if intent.qty == dec("100")));
}

#[test]
fn a_broker_position_no_order_of_ours_explains_blocks_its_symbol_and_counts_against_the_caps() {
    let config = ExecutionConfig {
        max_positions: 2,
        ..ExecutionConfig::default()
    };
    let mut state = state_at(ny("09:50"), &config);
    state.watchlist = WatchlistInput::Fresh(vec![
        candidate("ACME"),
        candidate("BETA"),
        candidate("GAMA"),
    ]);
    for symbol in ["ACME", "BETA", "GAMA"] {
        with_breakout(&mut state, symbol);
    }
    // The broker holds ACME that our journal does not own (say the journal was lost).
    state.broker_positions = Some(BTreeMap::from([held("ACME", "100")]));
    let plan = plan_cycle(&state, &config);
    assert_eq!(
        skips(&plan),
        vec![
            ("ACME", "broker_position_unexplained"),
            ("GAMA", "max_positions")
        ]
    );
    let entered: Vec<&str> = plan.entries().map(|i| i.symbol.as_str()).collect();
    assert_eq!(
        entered,
        vec!["BETA"],
        "one slot left of two: ACME holds the other"
    );
    assert_eq!(plan.notices[0].kind, "foreign_position");
    assert!(
        plan.warnings.iter().any(|w| w.starts_with("ACME:")),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn a_position_missing_at_the_broker_is_reported_and_left_alone() {
    let config = ExecutionConfig::default();
    let mut state = state_at(ny("10:00"), &config);
    state.owned = vec![position("GONE", 100, "40", "38", "42", "44")];
    state.broker_positions = Some(BTreeMap::new());
    let plan = plan_cycle(&state, &config);
    assert!(plan.protect.is_empty() && plan.exits.is_empty());
    assert_eq!(plan.notices[0].kind, "position_missing_at_broker");
}

#[test]
fn through_the_stop_while_open_exits_at_the_market_after_cancelling_the_stop() {
    let config = ExecutionConfig::default();
    let mut state = state_at(ny("11:00"), &config);
    state.owned = vec![position("DROP", 100, "40", "38", "42", "44")];
    state.broker_positions = Some(BTreeMap::from([held("DROP", "100")]));
    state.open_orders = vec![stop("DROP", 100, "38")];
    state.market.latest.insert("DROP".into(), 37.5);
    let plan = plan_cycle(&state, &config);
    assert!(plan.protect.is_empty());
    match &plan.exits[..] {
        [Action::Exit {
            intent,
            cancel_stop: Some(_),
            ..
        }] => {
            assert_eq!(intent.client_order_id, "avw-20260302-DROP-ex-1");
            assert_eq!(intent.qty, dec("100"));
        }
        other => panic!("expected one exit, got {other:?}"),
    }
}

#[test]
fn r1_trims_with_a_stop_resize_and_stop_legs_are_numbered_in_sequence() {
    let config = ExecutionConfig::default();
    let mut state = state_at(ny("11:00"), &config);
    state.owned = vec![position("UP", 100, "40", "38", "42", "44")];
    state.broker_positions = Some(BTreeMap::from([held("UP", "100")]));
    // The stop covers 90 only: protection resizes it (leg st3), then the trim resizes to 50 (st4).
    state.open_orders = vec![stop("UP", 90, "38")];
    state.journal.stop_legs_used.insert("UP".into(), 2);
    state.market.latest.insert("UP".into(), 42.5);
    let plan = plan_cycle(&state, &config);
    let Action::Stop { intent: protect } = &plan.protect[0] else {
        panic!("{plan:?}")
    };
    assert_eq!(protect.client_order_id, "avw-20260302-UP-st3-1");
    assert_eq!(protect.qty, dec("100"));
    match &plan.exits[..] {
        [Action::Trim { stop, intent }] => {
            assert_eq!(stop.client_order_id, "avw-20260302-UP-st4-1");
            assert_eq!(stop.qty, dec("50"));
            assert_eq!(intent.qty, dec("50"));
            assert_eq!(intent.client_order_id, "avw-20260302-UP-tr-1");
        }
        other => panic!("expected a trim, got {other:?}"),
    }
}

#[test]
fn extreme_configuration_values_never_panic() {
    let mut config = ExecutionConfig {
        entry_start_minutes_after_open: i64::MIN,
        entry_end_minutes_before_close: i64::MAX,
        max_bar_age_minutes: i64::MAX,
        risk_per_trade: Decimal::MAX,
        max_entry_drift_pct: Decimal::MAX,
        entry_slippage_bps: Decimal::MAX,
        trim_fraction: Decimal::MAX,
        ..ExecutionConfig::default()
    };
    let mut state = state_at(ny("10:30"), &ExecutionConfig::default());
    state.watchlist = WatchlistInput::Fresh(vec![candidate("ACME")]);
    with_breakout(&mut state, "ACME");
    state.owned = vec![position("UP", 100, "40", "38", "42", "44")];
    state.market.latest.insert("UP".into(), 43.0);
    let _ = plan_cycle(&state, &config);
    config.entry_start_minutes_after_open = 20;
    config.entry_end_minutes_before_close = 15;
    let _ = plan_cycle(&state, &config);
}

// ---- properties over generated states ----

const SYMBOLS: [&str; 8] = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG", "HHH"];

#[derive(Debug, Clone)]
struct HeldSpec {
    qty: u32,
    /// Broker report relative to ours: 0 same, 1 fewer, 2 none, 3 more.
    broker: u8,
    /// 0 no stop, 1 exact stop, 2 stop for fewer shares, 3 stop below the level.
    stop: u8,
    /// 0 below the stop, 1 between, 2 above R1, 3 above R2, 4 no price.
    price: u8,
    trimmed: bool,
    selling: bool,
}

fn held_spec() -> impl Strategy<Value = HeldSpec> {
    (
        1u32..400,
        0u8..4,
        0u8..4,
        0u8..5,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(qty, broker, stop, price, trimmed, selling)| HeldSpec {
            qty,
            broker,
            stop,
            price,
            trimmed,
            selling,
        })
}

#[derive(Debug, Clone)]
struct World {
    minute: i64,
    held: Vec<HeldSpec>,
    candidates: usize,
    entered_before: usize,
    equity: u32,
    buying_power: u32,
    blocked: Vec<usize>,
    /// Symbols whose broker position does not read (absent from the positions map).
    unreadable: Vec<usize>,
    positions_report: bool,
}

fn world() -> impl Strategy<Value = World> {
    (
        // Minutes after 09:00 New York: pre-open to after the close.
        0i64..460,
        prop::collection::vec(held_spec(), 0..5),
        0usize..6,
        0usize..3,
        1_000u32..2_000_000,
        0u32..2_000_000,
        prop::collection::vec(0usize..8, 0..3),
        prop::collection::vec(0usize..8, 0..2),
        any::<bool>(),
    )
        .prop_map(
            |(
                minute,
                held,
                candidates,
                entered_before,
                equity,
                buying_power,
                blocked,
                unreadable,
                positions_report,
            )| World {
                minute,
                held,
                candidates,
                entered_before,
                equity,
                buying_power,
                blocked,
                unreadable,
                positions_report,
            },
        )
}

/// Held positions take the first symbols, candidates the last ones.
fn build(world: &World, config: &ExecutionConfig) -> CycleState {
    let now = ny("09:00") + Duration::minutes(world.minute);
    let mut state = state_at(now, config);
    let mut broker = BTreeMap::new();
    for (i, spec) in world.held.iter().enumerate() {
        let symbol = SYMBOLS[i];
        let mut p = position(symbol, spec.qty, "40", "38", "42", "44");
        p.trimmed = spec.trimmed;
        let qty = Decimal::from(spec.qty);
        let reported = match spec.broker {
            0 => Some(qty),
            1 => Some((qty - Decimal::ONE).max(Decimal::ONE)),
            3 => Some(qty + Decimal::TEN),
            _ => None,
        };
        if let Some(reported) = reported {
            let (key, mut position) = self::held(symbol, "1");
            position.qty = reported;
            broker.insert(key, position);
        }
        match spec.stop {
            1 => state.open_orders.push(stop(symbol, spec.qty, "38")),
            2 => state
                .open_orders
                .push(stop(symbol, spec.qty.saturating_sub(1).max(1), "38")),
            3 => state.open_orders.push(stop(symbol, spec.qty, "37")),
            _ => {}
        }
        if spec.selling {
            state.open_orders.push(order(
                symbol,
                Side::Sell,
                OrderType::Market,
                Decimal::ONE,
                Decimal::ZERO,
            ));
        }
        let price = [37.0, 40.5, 42.5, 44.5][usize::from(spec.price.min(3))];
        if spec.price < 4 {
            state.market.latest.insert(symbol.to_string(), price);
        }
        state.owned.push(p);
    }
    state.broker_positions = world.positions_report.then_some(broker);
    if !world.positions_report {
        state.incomplete_reads.push("positions".into());
    }
    let rows: Vec<WatchlistRow> = (0..world.candidates)
        .map(|i| candidate(SYMBOLS[SYMBOLS.len() - 1 - i]))
        .collect();
    for row in &rows {
        with_breakout(&mut state, &row.symbol);
    }
    for row in rows.iter().take(world.entered_before) {
        state.journal.intents.push(JournaledIntent {
            symbol: row.symbol.clone(),
            leg: "en".into(),
            attempt: 1,
            state: IntentState::Acknowledged,
        });
    }
    state.watchlist = WatchlistInput::Fresh(rows);
    state.account = Ok(Account {
        equity: Decimal::from(world.equity),
        buying_power: Decimal::from(world.buying_power),
        trading_suspended: false,
    });
    state.blocked = world
        .blocked
        .iter()
        .map(|&i| SYMBOLS[i].to_string())
        .collect();
    state.unreadable_positions = world
        .unreadable
        .iter()
        .map(|&i| SYMBOLS[i].to_string())
        .collect();
    if let Some(positions) = state.broker_positions.as_mut() {
        positions.retain(|symbol, _| !state.unreadable_positions.contains(symbol));
    }
    state
}

fn gross_of(state: &CycleState) -> Decimal {
    state
        .owned
        .iter()
        .map(|p| p.qty * p.avg_price)
        .sum::<Decimal>()
        + state
            .open_orders
            .iter()
            .filter(|o| o.side == Side::Buy && !state.owned.iter().any(|p| p.symbol == o.symbol))
            .map(|o| (o.qty - o.filled_qty) * o.limit_price.unwrap_or_default())
            .sum::<Decimal>()
}

/// What the broker and the journal look like once every planned order is working.
fn apply(state: &CycleState, plan: &CyclePlan) -> CycleState {
    let mut next = state.clone();
    let set_stop = |next: &mut CycleState, intent: &Intent| {
        next.open_orders
            .retain(|o| !(o.symbol == intent.symbol && is_stop(o)));
        let mut o = order(
            &intent.symbol,
            Side::Sell,
            OrderType::Stop,
            intent.qty,
            intent.stop_price.unwrap_or_default(),
        );
        o.client_order_id = intent.client_order_id.clone();
        next.open_orders.push(o);
    };
    let journal = |next: &mut CycleState, intent: &Intent| {
        next.journal.intents.push(JournaledIntent {
            symbol: intent.symbol.clone(),
            leg: intent.leg.clone(),
            attempt: intent.attempt,
            state: IntentState::Acknowledged,
        });
        if let Some(n) = intent.leg.strip_prefix("st").and_then(|n| n.parse().ok()) {
            let used = next
                .journal
                .stop_legs_used
                .entry(intent.symbol.clone())
                .or_insert(0);
            *used = (*used).max(n);
        }
    };
    let sell = |next: &mut CycleState, intent: &Intent| {
        let mut o = order(
            &intent.symbol,
            Side::Sell,
            OrderType::Market,
            intent.qty,
            Decimal::ZERO,
        );
        o.client_order_id = intent.client_order_id.clone();
        next.open_orders.push(o);
    };
    for action in plan.protect.iter().chain(&plan.exits) {
        match action {
            Action::Stop { intent } => {
                set_stop(&mut next, intent);
                journal(&mut next, intent);
            }
            Action::CancelStop { symbol, .. } => next
                .open_orders
                .retain(|o| !(&o.symbol == symbol && is_stop(o))),
            Action::Exit {
                intent,
                cancel_stop,
                ..
            } => {
                if cancel_stop.is_some() {
                    next.open_orders
                        .retain(|o| !(o.symbol == intent.symbol && is_stop(o)));
                }
                sell(&mut next, intent);
                journal(&mut next, intent);
            }
            Action::Trim { stop, intent } => {
                set_stop(&mut next, stop);
                journal(&mut next, stop);
                sell(&mut next, intent);
                journal(&mut next, intent);
                if let Some(p) = next.owned.iter_mut().find(|p| p.symbol == intent.symbol) {
                    p.trimmed = true;
                }
            }
            Action::RaiseStop {
                symbol,
                level,
                stop,
            } => {
                if let Some(p) = next.owned.iter_mut().find(|p| &p.symbol == symbol) {
                    p.stop_price = *level;
                }
                set_stop(&mut next, stop);
                journal(&mut next, stop);
            }
        }
    }
    for intent in plan.entries() {
        let mut o = order(
            &intent.symbol,
            Side::Buy,
            OrderType::Limit,
            intent.qty,
            intent.limit_price.unwrap_or_default(),
        );
        o.client_order_id = intent.client_order_id.clone();
        next.open_orders.push(o);
        journal(&mut next, intent);
        if let Ok(account) = &mut next.account {
            account.buying_power -= intent.qty * intent.limit_price.unwrap_or_default();
        }
    }
    next
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn caps_are_never_exceeded(world in world(), max_positions in 0usize..6, per_day in 0u32..6) {
        let config = ExecutionConfig { max_positions, max_entries_per_day: per_day, ..ExecutionConfig::default() };
        let state = build(&world, &config);
        let plan = plan_cycle(&state, &config);
        let entries: Vec<&Intent> = plan.entries().collect();
        let working_entries = state.open_orders.iter().filter(|o| o.side == Side::Buy).count();
        let before = state.owned.len() + working_entries;
        prop_assert!(entries.is_empty() || before + entries.len() <= config.max_positions);
        prop_assert!(entries.is_empty() || world.entered_before + entries.len() <= config.max_entries_per_day as usize);
        let notional: Decimal = entries.iter().map(|i| i.qty * i.limit_price.unwrap_or_default()).sum();
        prop_assert!(entries.is_empty() || gross_of(&state) + notional <= config.max_gross_notional);
        prop_assert!(notional <= Decimal::from(world.buying_power));
        for intent in &entries {
            prop_assert!(intent.qty >= Decimal::ONE);
            prop_assert!(intent.qty * intent.limit_price.unwrap_or_default() <= config.max_notional_per_symbol);
            prop_assert!(!state.blocked.contains(&intent.symbol));
            prop_assert!(!state.unreadable_positions.contains(&intent.symbol));
            prop_assert!(state.phase == Phase::EntryWindow);
        }
        let symbols: BTreeSet<&str> = entries.iter().map(|i| i.symbol.as_str()).collect();
        prop_assert_eq!(symbols.len(), entries.len(), "one entry per symbol");
    }

    #[test]
    fn every_owned_position_is_protected_by_the_plan(world in world()) {
        let config = ExecutionConfig::default();
        let state = build(&world, &config);
        let plan = plan_cycle(&state, &config);
        let after = apply(&state, &plan);
        for (position, spec) in state.owned.iter().zip(&world.held) {
            let symbol = position.symbol.as_str();
            let touched = plan.protect.iter().chain(&plan.exits).any(|a| a.symbol() == symbol);
            if state.blocked.contains(symbol)
                || state.unreadable_positions.contains(symbol)
                || (world.positions_report && spec.broker == 2)
            {
                prop_assert!(!touched, "{symbol}: blocked, unreadable or missing at the broker, yet acted on");
                continue;
            }
            let held = state.broker_positions.as_ref()
                .and_then(|m| m.get(symbol).map(|p| p.qty))
                .map_or(position.qty, |b| b.min(position.qty));
            let selling = working_sells(&after.open_orders, symbol);
            let stop = stop_order(&after.open_orders, symbol);
            let covered = stop.map_or(Decimal::ZERO, |s| s.qty - s.filled_qty);
            let protected = selling + covered >= held;
            // The only unprotected moment allowed: price through the stop, market closed, and a
            // stop already working (it triggers at the open).
            prop_assert!(protected, "{symbol}: held {held}, selling {selling}, stop covers {covered}; plan {plan:?}");
            let before = working_sells(&state.open_orders, symbol)
                + stop_order(&state.open_orders, symbol).map_or(Decimal::ZERO, |s| s.qty - s.filled_qty);
            prop_assert!(before > held || covered + selling <= held, "{symbol}: the plan over-covers {held} shares");
            let stops = plan.protect.iter().filter(|a| matches!(a, Action::Stop { .. }) && a.symbol() == symbol).count();
            prop_assert!(stops <= 1, "{symbol}: {stops} protective stops in one cycle");
        }
    }

    #[test]
    fn the_plan_is_deterministic_and_idempotent_on_a_replayed_state(world in world()) {
        let config = ExecutionConfig::default();
        let state = build(&world, &config);
        let plan = plan_cycle(&state, &config);
        prop_assert_eq!(&plan, &plan_cycle(&state.clone(), &config));
        let replay = plan_cycle(&apply(&state, &plan), &config);
        prop_assert!(replay.protect.is_empty(), "protect again: {:?}", replay.protect);
        prop_assert!(replay.exits.is_empty(), "exits again: {:?}", replay.exits);
        prop_assert_eq!(replay.entries().count(), 0, "entries again");
        // Every id planned is new to the journal: nothing already journaled is proposed again.
        let journaled: BTreeSet<(String, String, u32)> = state.journal.intents.iter()
            .map(|i| (i.symbol.clone(), i.leg.clone(), i.attempt)).collect();
        for intent in plan.entries() {
            prop_assert!(!journaled.contains(&(intent.symbol.clone(), intent.leg.clone(), intent.attempt)));
        }
    }

    #[test]
    fn entry_size_is_monotone_in_equity(low in 1_000u32..1_000_000, extra in 0u32..1_000_000) {
        let config = ExecutionConfig { max_notional_per_symbol: dec("1000000"), max_gross_notional: dec("10000000"), ..ExecutionConfig::default() };
        let qty = |equity: u32| {
            let mut state = state_at(ny("09:50"), &config);
            state.watchlist = WatchlistInput::Fresh(vec![candidate("ACME")]);
            with_breakout(&mut state, "ACME");
            state.account = Ok(Account { equity: Decimal::from(equity), buying_power: dec("10000000"), trading_suspended: false });
            plan_cycle(&state, &config).entries().next().map_or(Decimal::ZERO, |i| i.qty)
        };
        prop_assert!(qty(low) <= qty(low + extra));
    }
}
