//! Execution cycle benchmark: one cycle with 20 watchlist candidates and 10 open positions
//! (each with its GTC protective stop) on the simulated broker.
//!
//! `cargo bench --bench cycle` measures, in a fresh child process per storage kind (so peak
//! RSS is that run's own):
//! - `memory`: the state database and the simulated broker in memory;
//! - `file`: both as files in a temporary directory, as in production (WAL,
//!   `synchronous=FULL`, so every committed transaction waits for the disk).
//!
//! Setup: on 2026-03-02 the engine buys the 10 position symbols and places their stops. The
//! measured session is 2026-03-03: 200 cycles, one a minute from 09:50 (the entry window),
//! on bars where no candidate confirms a breakout and no position reaches a stop or target —
//! the steady state: refresh every order, reconcile, check every stop, decide (skip) every
//! candidate. Printed: p50/p99 of the engine cycle (`engine::run_cycle`, "compute") and of
//! the whole cycle (`SimBroker::advance_to` + `run_cycle`), and peak RSS (VmHWM) after setup
//! and after the runs. Not included: what `Service::cycle` adds around it in `sim` mode
//! (reading the watchlist CSV, building the synthetic feed, reopening the broker file).
//!
//! Targets: p50 ≤ 5 ms compute, RSS ≤ 30 MB idle.

use avwap::broker::sim::{SimBroker, SimConfig};
use avwap::broker::Broker;
use avwap::calendar;
use avwap::execution::config::ExecutionConfig;
use avwap::execution::db::StateDb;
use avwap::execution::engine::{self, CycleInputs, CycleReport, WatchlistInput};
use avwap::execution::lifecycle::{Failpoints, OrderDesk};
use avwap::market_data::intraday::{BarListFeed, IntradayBar, BAR_MINUTES};
use avwap::watchlist::{
    AnchorKind, ControlLabel, CrossLabel, Direction, ExtensionLabel, GapResetLabel, TrendTier,
    WatchlistRow,
};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;
use std::process::Command;
use std::time::Instant;

const POSITIONS: usize = 10;
const CANDIDATES: usize = 20;
const CYCLES: usize = 200;
const CHILD_ENV: &str = "AVWAP_CYCLE_BENCH_CHILD";

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("valid date")
}

fn ny(d: NaiveDate, hm: &str) -> DateTime<Utc> {
    calendar::ny_instant(d, NaiveTime::parse_from_str(hm, "%H:%M").expect("HH:MM"))
}

fn dec(x: f64) -> Decimal {
    Decimal::from_f64(x).expect("finite").round_dp(2)
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// One session of 10-minute bars; bar `k` closes at `close(k)` and opens at the previous close.
fn session_bars(
    symbol: &str,
    d: NaiveDate,
    open: f64,
    close: impl Fn(usize) -> f64,
) -> Vec<IntradayBar> {
    let session = calendar::session(d).expect("calendar").expect("a session");
    let mut bars = Vec::new();
    let (mut start, mut prev, mut k) = (session.open, open, 0);
    while start < session.close {
        let end = (start + Duration::minutes(BAR_MINUTES)).min(session.close);
        let c = close(k);
        bars.push(IntradayBar {
            symbol: symbol.to_string(),
            start,
            end,
            open: cents(prev),
            high: cents(prev.max(c) + 0.02),
            low: cents(prev.min(c) - 0.02),
            close: cents(c),
            volume: 25_000.0,
        });
        prev = c;
        start = end;
        k += 1;
    }
    bars
}

fn row(d: NaiveDate, symbol: &str, entry: f64, stop: f64, r1: f64, r2: f64) -> WatchlistRow {
    WatchlistRow {
        scan_date: d,
        symbol: symbol.to_string(),
        direction: Direction::Long,
        trend_tier: TrendTier::A,
        price: dec(entry),
        entry_level: dec(entry),
        entry_dist_pct: Decimal::ZERO,
        stop_loss: dec(stop),
        target_r1: dec(r1),
        target_r2: dec(r2),
        trend_score: Decimal::new(215, 1),
        sector: "Industrials".to_string(),
        anchor: AnchorKind::SwingLow20,
        avwap_slope: Decimal::new(125, 4),
        setup_vwap_control: ControlLabel::Bullish,
        setup_vwap_reclaim: CrossLabel::None,
        setup_vwap_acceptance: CrossLabel::Bullish,
        setup_vwap_dist_pct: Some(Decimal::ONE),
        setup_avwap_control: ControlLabel::Bullish,
        setup_avwap_reclaim: CrossLabel::None,
        setup_avwap_acceptance: CrossLabel::Bullish,
        setup_avwap_dist_pct: Some(Decimal::ONE),
        setup_extension_state: ExtensionLabel::Moderate,
        setup_gap_reset: GapResetLabel::None,
        setup_structure_state: ControlLabel::Bullish,
        data_as_of: calendar::previous_session(d).expect("calendar"),
        anchor_date: d - Duration::days(28),
    }
}

/// Position symbol `i` trades around 40 + 2i; candidate `i` around 40 + i.
fn position_base(i: usize) -> f64 {
    40.0 + 2.0 * i as f64
}

fn candidate_base(i: usize) -> f64 {
    40.0 + i as f64
}

struct Bench {
    db: StateDb,
    broker: SimBroker,
    feed: BarListFeed,
    config: ExecutionConfig,
    failpoints: Failpoints,
}

impl Bench {
    fn cycle(&mut self, now: DateTime<Utc>, wl: &WatchlistInput) -> (f64, f64, CycleReport) {
        let started = Instant::now();
        self.broker.advance_to(now).expect("advance the broker");
        let advanced = Instant::now();
        let mut desk = OrderDesk {
            db: &mut self.db,
            broker: &mut self.broker,
            now,
            failpoints: &self.failpoints,
            unknown_outcome_grace: std::time::Duration::from_secs(30),
        };
        let inputs = CycleInputs {
            watchlist: wl,
            kill_switch: None,
            feed: &self.feed,
            config: &self.config,
            allow_entries: true,
        };
        let report = engine::run_cycle(&mut desk, &inputs).expect("cycle");
        let done = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        (ms(advanced, done), ms(started, done), report)
    }
}

fn rss_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Child: set up, measure, print one line.
fn child(storage: &str) {
    let (setup_day, bench_day) = (day("2026-03-02"), day("2026-03-03"));
    let mut bars = Vec::new();
    let mut setup_rows = Vec::new();
    for i in 0..POSITIONS {
        let (symbol, base) = (format!("P{i:02}"), position_base(i));
        // Setup day: closes base + 0.05, base on the first two bars (breakout over base − 0.10),
        // then flat; the entry fills at the open of the 09:50 bar.
        bars.extend(session_bars(&symbol, setup_day, base - 0.40, |k| match k {
            0 => base + 0.05,
            _ => base,
        }));
        // Measured day: between base + 0.10 and base + 0.30 — above the stop, below R1.
        bars.extend(session_bars(&symbol, bench_day, base, |k| {
            base + 0.10 + 0.10 * (k % 3) as f64
        }));
        setup_rows.push(row(
            setup_day,
            &symbol,
            base - 0.10,
            base - 1.50,
            base + 1.50,
            base + 3.00,
        ));
    }
    let mut candidates = Vec::new();
    for i in 0..CANDIDATES {
        let (symbol, base) = (format!("C{i:02}"), candidate_base(i));
        // Below the entry level (base + 0.50) all day: never confirmed.
        bars.extend(session_bars(&symbol, bench_day, base, |k| {
            base + 0.05 * (k % 4) as f64
        }));
        candidates.push(row(
            bench_day,
            &symbol,
            base + 0.50,
            base - 1.00,
            base + 2.00,
            base + 3.50,
        ));
    }
    let feed = BarListFeed::new(bars);
    let sim_config = SimConfig {
        starting_cash: Decimal::new(200_000, 0),
        partial_fill_ratio: Decimal::ONE,
        start: Some(ny(setup_day, "09:00")),
        ..SimConfig::default()
    };
    let tmp = tempfile::tempdir().expect("temporary directory");
    let (db, broker) = match storage {
        "memory" => (
            StateDb::open_in_memory().expect("state db"),
            SimBroker::open_in_memory(sim_config, Box::new(feed.clone())).expect("sim broker"),
        ),
        "file" => (
            StateDb::open(&tmp.path().join("execution.sqlite")).expect("state db"),
            SimBroker::open(
                &tmp.path().join("sim_broker.sqlite"),
                sim_config,
                Box::new(feed.clone()),
            )
            .expect("sim broker"),
        ),
        other => panic!("unknown storage {other}"),
    };
    let config = ExecutionConfig {
        max_positions: POSITIONS,
        max_entries_per_day: POSITIONS as u32,
        max_gross_notional: Decimal::new(200_000, 0),
        ..ExecutionConfig::default()
    };
    let mut bench = Bench {
        db,
        broker,
        feed,
        config,
        failpoints: Failpoints::none(),
    };

    let setup_wl = WatchlistInput::Fresh(setup_rows);
    for hm in ["09:50", "10:00", "16:05"] {
        bench.cycle(ny(setup_day, hm), &setup_wl);
    }
    let owned = bench.db.open_positions().expect("positions");
    assert_eq!(owned.len(), POSITIONS, "setup: positions");
    let open = bench.broker.open_orders().expect("open orders");
    assert_eq!(open.len(), POSITIONS, "setup: one stop per position");
    let rss_setup = (rss_mb("VmHWM:"), rss_mb("VmRSS:"));

    let wl = WatchlistInput::Fresh(candidates);
    let mut compute = Vec::with_capacity(CYCLES);
    let mut whole = Vec::with_capacity(CYCLES);
    let first = ny(bench_day, "09:50");
    for i in 0..CYCLES {
        let now = first + Duration::minutes(i as i64);
        let (c, w, report) = bench.cycle(now, &wl);
        assert_eq!(report.phase, "entry_window");
        assert!(
            report.entries_sent
                + report.stops_placed
                + report.stops_replaced
                + report.exits_sent
                + report.trims_sent
                == 0
                && report.warnings.is_empty(),
            "not a steady-state cycle at {now}: {report:?}"
        );
        compute.push(c);
        whole.push(w);
    }
    assert_eq!(
        bench.db.open_positions().expect("positions").len(),
        POSITIONS
    );
    compute.sort_by(f64::total_cmp);
    whole.sort_by(f64::total_cmp);
    println!(
        "{storage:<6}  compute p50 {:7.3} ms  p99 {:7.3} ms | whole (advance_to + cycle) p50 {:7.3} ms  p99 {:7.3} ms | peak RSS after setup {:5.1} MB, after {CYCLES} cycles {:5.1} MB | RSS idle after setup {:5.1} MB",
        percentile(&compute, 50.0),
        percentile(&compute, 99.0),
        percentile(&whole, 50.0),
        percentile(&whole, 99.0),
        rss_setup.0,
        rss_mb("VmHWM:"),
        rss_setup.1,
    );
}

fn main() {
    if let Ok(storage) = std::env::var(CHILD_ENV) {
        child(&storage);
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    println!(
        "execution cycle: {CANDIDATES} candidates, {POSITIONS} open positions with stops, {CYCLES} cycles (1 a minute in the entry window)"
    );
    println!("targets: compute p50 <= 5 ms, RSS <= 30 MB idle");
    for storage in ["memory", "file"] {
        let out = Command::new(&exe)
            .env(CHILD_ENV, storage)
            .output()
            .expect("run the benchmark child");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            panic!("the {storage} benchmark failed: {:?}", out.status);
        }
    }
}
