//! Tests of the backtest engine: round trips from fills, the output directory's refusals,
//! determinism and the no-lookahead rule on the bundled demo data.

use super::data::BacktestData;
use super::outputs::{backtest_json, prepare_dir, BACKTEST_JSON};
use super::trips::{round_trips, EndOfRun};
use super::*;
use crate::broker::sim::SimFill;
use crate::broker::Side;
use crate::scan::config::ScanConfig;
use crate::scan::demo::DEMO_LAST_SESSION;
use crate::watchlist::{
    AnchorKind, ControlLabel, CrossLabel, Direction, ExtensionLabel, GapResetLabel, TrendTier,
};
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn row(scan_date: &str, symbol: &str, entry: &str, stop: &str, r1: &str, r2: &str) -> WatchlistRow {
    WatchlistRow {
        scan_date: day(scan_date),
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
        setup_vwap_dist_pct: Some(Decimal::ONE),
        setup_avwap_control: ControlLabel::Bullish,
        setup_avwap_reclaim: CrossLabel::None,
        setup_avwap_acceptance: CrossLabel::Bullish,
        setup_avwap_dist_pct: Some(Decimal::ONE),
        setup_extension_state: ExtensionLabel::Moderate,
        setup_gap_reset: GapResetLabel::None,
        setup_structure_state: ControlLabel::Bullish,
        data_as_of: day(scan_date) - Duration::days(1),
        anchor_date: day("2010-07-06"),
    }
}

#[allow(clippy::too_many_arguments)]
fn fill(
    seq: i64,
    cid: &str,
    side: Side,
    qty: &str,
    price: &str,
    time: &str,
    commission: &str,
    slippage: &str,
) -> SimFill {
    let id = ClientOrderId::parse(cid).unwrap();
    SimFill {
        seq,
        order_id: format!("sim-{seq:06}"),
        client_order_id: cid.to_string(),
        symbol: id.symbol,
        side,
        qty: d(qty),
        price: d(price),
        at: at(time),
        commission: d(commission),
        slippage: d(slippage),
    }
}

fn rows_of(rows: &[WatchlistRow]) -> HashMap<(NaiveDate, String), WatchlistRow> {
    rows.iter()
        .map(|r| ((r.scan_date, r.symbol.clone()), r.clone()))
        .collect()
}

#[test]
fn a_trimmed_trip_stopped_out_folds_both_sells_and_counts_its_costs() {
    let rows = rows_of(&[row(
        "2010-08-09",
        "ACME",
        "40.00",
        "38.00",
        "42.00",
        "44.00",
    )]);
    // Bought 100 at 40.02 (0.02 of slippage a share), trimmed 50 at R1, the rest stopped at
    // break-even the next day. Commission 0.005 a share.
    let fills = [
        fill(
            1,
            "avw-20100809-ACME-en-1",
            Side::Buy,
            "100",
            "40.02",
            "2010-08-09T14:10:00Z",
            "0.5",
            "2",
        ),
        fill(
            2,
            "avw-20100809-ACME-tr-1",
            Side::Sell,
            "50",
            "41.98",
            "2010-08-09T17:10:00Z",
            "0.25",
            "1",
        ),
        fill(
            3,
            "avw-20100809-ACME-st2-1",
            Side::Sell,
            "50",
            "39.98",
            "2010-08-10T15:00:00Z",
            "0.25",
            "1",
        ),
    ];
    let closes = HashMap::new();
    let end = EndOfRun {
        at: at("2010-08-20T20:00:00Z"),
        closes: &closes,
    };
    let trips = round_trips(&fills, &HashMap::new(), &rows, &end);
    assert_eq!(trips.len(), 1);
    let t = &trips[0];
    assert_eq!(t.exit_reason, ExitReason::Stop);
    assert!(t.trimmed);
    // Market prices: entry 40.00, exits 42.00 and 40.00 → 41.00 on average.
    assert_eq!(
        (t.entry_price, t.exit_price, t.qty),
        (d("40"), d("41"), d("100"))
    );
    assert_eq!(t.gross_pnl, d("100"));
    assert_eq!(t.costs, d("5"));
    assert_eq!(t.net_pnl, d("95"));
    // Risk 100 × (40 − 38) = 200.
    assert!((t.r_multiple - 0.475).abs() < 1e-12);
    assert_eq!(t.traded_notional, d("4002") + d("2099") + d("1999"));
    assert_eq!(
        (t.initial_stop, t.target_r1, t.target_r2),
        (d("38"), d("42"), d("44"))
    );
    assert_eq!(t.scan_date, day("2010-08-09"));
    assert_eq!(t.exit_time, at("2010-08-10T15:00:00Z"));
    // The net result is the account's cash result.
    let cash: Decimal = fills
        .iter()
        .map(|f| {
            let notional = f.qty * f.price;
            match f.side {
                Side::Buy => -notional - f.commission,
                Side::Sell => notional - f.commission,
            }
        })
        .sum();
    assert_eq!(cash, t.net_pnl);
}

#[test]
fn exit_legs_take_their_reason_and_open_positions_end_at_the_last_close() {
    let rows = rows_of(&[
        row("2010-08-09", "ACME", "40.00", "38.00", "42.00", "44.00"),
        row("2010-08-10", "BOLT", "20.00", "19.00", "21.00", "22.00"),
        row("2010-08-10", "CRUX", "10.00", "9.50", "10.50", "11.00"),
    ]);
    let fills = [
        fill(
            1,
            "avw-20100809-ACME-en-1",
            Side::Buy,
            "10",
            "40",
            "2010-08-09T14:10:00Z",
            "0",
            "0",
        ),
        fill(
            2,
            "avw-20100810-BOLT-en-1",
            Side::Buy,
            "30",
            "20",
            "2010-08-10T14:10:00Z",
            "0",
            "0",
        ),
        fill(
            3,
            "avw-20100810-CRUX-en-1",
            Side::Buy,
            "40",
            "10",
            "2010-08-10T14:20:00Z",
            "0",
            "0",
        ),
        fill(
            4,
            "avw-20100811-ACME-ex-1",
            Side::Sell,
            "10",
            "44.10",
            "2010-08-11T15:00:00Z",
            "0",
            "0",
        ),
        fill(
            5,
            "avw-20100811-BOLT-ex-1",
            Side::Sell,
            "30",
            "18.90",
            "2010-08-11T15:10:00Z",
            "0",
            "0",
        ),
    ];
    let reasons = HashMap::from([
        ("avw-20100811-ACME-ex-1".to_string(), ExitReason::TargetR2),
        ("avw-20100811-BOLT-ex-1".to_string(), ExitReason::StopLevel),
    ]);
    let closes = HashMap::from([("CRUX".to_string(), d("10.25"))]);
    let end = EndOfRun {
        at: at("2010-08-20T20:00:00Z"),
        closes: &closes,
    };
    let trips = round_trips(&fills, &reasons, &rows, &end);
    let summary: Vec<(&str, ExitReason, Decimal)> = trips
        .iter()
        .map(|t| (t.symbol.as_str(), t.exit_reason, t.net_pnl))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("ACME", ExitReason::TargetR2, d("41")),
            ("BOLT", ExitReason::StopLevel, d("-33")),
            ("CRUX", ExitReason::EndOfBacktest, d("10")),
        ]
    );
    let crux = &trips[2];
    assert_eq!((crux.exit_price, crux.exit_time), (d("10.25"), end.at));
    assert!((crux.r_multiple - 0.5).abs() < 1e-12);
}

#[test]
fn a_used_output_directory_is_refused_unless_resumed_with_the_same_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    prepare_dir(&out, "abc", false).unwrap();
    assert!(out.is_dir());
    std::fs::write(out.join(BACKTEST_JSON), r#"{"config_fingerprint":"abc"}"#).unwrap();
    let refused = prepare_dir(&out, "abc", false).unwrap_err();
    assert!(matches!(refused, BacktestError::DirHoldsBacktest { .. }));
    assert_eq!(refused.exit_code(), ExitCode::InputError);
    assert!(refused.to_string().contains("--resume"), "{refused}");
    prepare_dir(&out, "abc", true).unwrap();
    let other = prepare_dir(&out, "def", true).unwrap_err();
    assert!(matches!(other, BacktestError::FingerprintMismatch { .. }));
    assert_eq!(other.exit_code(), ExitCode::InputError);

    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    for resume in [false, true] {
        assert!(matches!(
            prepare_dir(&foreign, "abc", resume),
            Err(BacktestError::DirNotEmpty { .. })
        ));
    }
}

fn demo() -> BacktestData {
    BacktestData::demo(&ScanConfig::default(), DEMO_LAST_SESSION).unwrap()
}

/// Multiply every price of every bar dated on or after `from` by 3 and its volume by 7.
fn wreck_from(data: &BacktestData, from: NaiveDate) -> BacktestData {
    let mut wrecked = data.clone();
    let mut touched = 0;
    for bars in wrecked.bars.values_mut() {
        for bar in bars.iter_mut().filter(|b| b.date >= from) {
            bar.open *= 3.0;
            bar.high *= 3.0;
            bar.low *= 3.0;
            bar.close *= 3.0;
            bar.volume *= 7.0;
            touched += 1;
        }
    }
    assert!(touched > 0, "nothing wrecked from {from}");
    wrecked
}

#[test]
fn the_morning_scan_never_reads_a_bar_dated_on_or_after_its_session() {
    let data = demo();
    let session = day("2010-08-02");
    let honest = morning_scan(&data, session);
    let rows = honest.rows.clone().unwrap();
    assert!(!rows.is_empty(), "the demo has candidates on {session}");
    for wrecked in [wreck_from(&data, session), {
        // And with every such bar deleted.
        let mut gone = data.clone();
        for bars in gone.bars.values_mut() {
            bars.retain(|b| b.date < session);
        }
        gone
    }] {
        let again = morning_scan(&wrecked, session);
        assert_eq!(again.rows, Ok(rows.clone()));
        assert_eq!(again.regime, honest.regime);
    }
    // Not vacuous: wrecking the day before changes the list.
    let before = calendar::previous_session(session).unwrap();
    assert_ne!(
        morning_scan(&wreck_from(&data, before), session).rows,
        Ok(rows)
    );
}

fn small_config() -> Config {
    Config::default()
}

#[test]
fn a_backtest_is_deterministic_and_blind_to_bars_after_its_last_session() {
    let data = demo();
    let (from, to) = (day("2010-08-09"), day("2010-08-13"));
    let config = small_config();
    let run = backtest(&config, &data, from, to).unwrap();
    assert_eq!(run.sessions.len(), 5);
    assert_eq!(run.equity.len(), 5);
    assert!(run.fills > 0, "the demo week trades: {run:?}");
    assert!(run.equity.iter().all(|p| p.benchmark.is_finite()));
    assert!(run.benchmark_label.contains("equal-weight"));
    // Equity is cash plus positions at each close.
    assert!(run.equity.iter().all(|p| p.equity == p.cash + p.long_value));

    let again = backtest(&config, &data, from, to).unwrap();
    assert_eq!(again, run);
    assert_eq!(backtest_json(&again, None), backtest_json(&run, None));

    let next = calendar::next_session(to).unwrap();
    let blind = backtest(&config, &wreck_from(&data, next), from, to).unwrap();
    assert_eq!(blind.equity, run.equity);
    assert_eq!(blind.trips, run.trips);
    assert_eq!(blind.sessions, run.sessions);
}

#[test]
fn costs_are_paid_as_configured() {
    let data = demo();
    let (from, to) = (day("2010-08-09"), day("2010-08-11"));
    let mut config = small_config();
    config.backtest.slippage_bps = Decimal::ZERO;
    config.backtest.commission_per_share = Decimal::ZERO;
    let free = backtest(&config, &data, from, to).unwrap();
    assert!(free.trips.iter().all(|t| t.costs.is_zero()));
    config.backtest.slippage_bps = d("20");
    config.backtest.commission_per_share = d("0.01");
    let costly = backtest(&config, &data, from, to).unwrap();
    assert!(!costly.trips.is_empty());
    let shares: Decimal = costly
        .trips
        .iter()
        .filter(|t| t.exit_reason != ExitReason::EndOfBacktest)
        .map(|t| t.qty * Decimal::TWO)
        .chain(
            costly
                .trips
                .iter()
                .filter(|t| t.exit_reason == ExitReason::EndOfBacktest)
                .map(|t| t.qty),
        )
        .sum();
    let costs: Decimal = costly.trips.iter().map(|t| t.costs).sum();
    // At least the commission on every share traded; slippage on top.
    assert!(costs > shares * d("0.01"), "costs {costs}, shares {shares}");
    assert_ne!(costly.fingerprint, free.fingerprint);
}
