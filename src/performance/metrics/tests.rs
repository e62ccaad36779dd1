use super::*;
use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

fn d(text: &str) -> Decimal {
    Decimal::from_str_exact(text).unwrap()
}

fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2010, 3, 1).unwrap() + chrono::Days::new(u64::from(n))
}

fn at(n: u32, hour: u32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day(n).and_hms_opt(hour, 0, 0).unwrap())
}

/// A curve with the given equities; `long_value` is a fixed share of the equity.
fn curve(equities: &[&str], long_values: &[&str], benchmark: &[f64]) -> Vec<EquityPoint> {
    equities
        .iter()
        .enumerate()
        .map(|(i, e)| EquityPoint {
            date: day(i as u32),
            equity: d(e),
            cash: d(e) - d(long_values[i]),
            long_value: d(long_values[i]),
            benchmark: benchmark[i],
        })
        .collect()
}

fn trip(symbol: &str, net: &str, r: f64, reason: ExitReason) -> RoundTrip {
    RoundTrip {
        symbol: symbol.into(),
        scan_date: day(0),
        anchor_date: day(0),
        entry_level: d("50"),
        entry_time: at(1, 15),
        exit_time: at(3, 15),
        entry_price: d("50"),
        exit_price: d("51"),
        qty: d("100"),
        initial_stop: d("48"),
        target_r1: d("52"),
        target_r2: d("54"),
        trimmed: false,
        exit_reason: reason,
        gross_pnl: d(net) + d("2"),
        costs: d("2"),
        net_pnl: d(net),
        r_multiple: r,
        traded_notional: d("10000"),
    }
}

fn close(actual: Option<f64>, expected: f64) {
    let actual = actual.unwrap_or_else(|| panic!("expected {expected}, got None"));
    assert!(
        (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0),
        "{actual} != {expected}"
    );
}

#[test]
fn returns_and_risk_on_three_sessions() {
    // 100 → 110 → 99 → 121: returns +10 %, −10 %, +2/9.
    let equity = curve(&["110", "99", "121"], &["0", "0", "0"], &[1.0, 1.0, 1.0]);
    let m = compute(d("100"), &equity, &[], "SPY");
    close(m.total_return, 0.21);
    close(m.cagr, 1.21f64.powf(84.0) - 1.0);
    let (r1, r2, r3): (f64, f64, f64) = (0.1, -0.1, 121.0 / 99.0 - 1.0);
    let mean = (r1 + r2 + r3) / 3.0;
    let var = ((r1 - mean).powi(2) + (r2 - mean).powi(2) + (r3 - mean).powi(2)) / 2.0;
    close(m.volatility, var.sqrt() * 252f64.sqrt());
    close(m.sharpe, mean / var.sqrt() * 252f64.sqrt());
    // Downside deviation: only −10 % counts, divided by all three returns.
    close(m.sortino, mean / (0.01f64 / 3.0).sqrt() * 252f64.sqrt());
    close(m.calmar, (1.21f64.powf(84.0) - 1.0) / 0.1);
    assert_eq!(
        m.max_drawdown,
        Drawdown {
            depth: Some(99.0 / 110.0 - 1.0),
            peak_date: Some(day(0)),
            trough_date: Some(day(1)),
            recovery_date: Some(day(2)),
        }
    );
    assert_eq!(m.net_profit, Some(d("21")));
    assert_eq!(
        (m.first_date, m.last_date, m.sessions),
        (Some(day(0)), Some(day(2)), 3)
    );
}

#[test]
fn a_fall_from_the_starting_equity_has_no_peak_date_and_may_not_recover() {
    let equity = curve(&["95", "90", "97", "99.5"], &["0"; 4], &[1.0; 4]);
    let m = compute(d("100"), &equity, &[], "SPY");
    assert_eq!(
        m.max_drawdown,
        Drawdown {
            depth: Some(90.0 / 100.0 - 1.0),
            peak_date: None,
            trough_date: Some(day(1)),
            recovery_date: None,
        }
    );
    close(m.calmar, (0.995f64.powf(63.0) - 1.0) / 0.1);
}

#[test]
fn the_drawdown_starts_at_the_last_session_at_the_high_and_the_first_trough() {
    let equity = curve(
        &["110", "105", "110", "99", "104", "99", "111"],
        &["0"; 7],
        &[1.0; 7],
    );
    let m = compute(d("100"), &equity, &[], "SPY");
    assert_eq!(m.max_drawdown.peak_date, Some(day(2)));
    assert_eq!(m.max_drawdown.trough_date, Some(day(3)));
    assert_eq!(m.max_drawdown.recovery_date, Some(day(6)));
}

#[test]
fn flat_equity_has_no_ratios_and_no_drawdown() {
    let equity = curve(&["100", "100", "100"], &["0"; 3], &[2.0; 3]);
    let m = compute(d("100"), &equity, &[], "SPY");
    assert_eq!(m.total_return, Some(0.0));
    assert_eq!(m.cagr, Some(0.0));
    assert_eq!(m.volatility, Some(0.0));
    assert_eq!((m.sharpe, m.sortino, m.calmar), (None, None, None));
    assert_eq!(
        m.max_drawdown,
        Drawdown {
            depth: Some(0.0),
            peak_date: None,
            trough_date: None,
            recovery_date: None,
        }
    );
    assert_eq!(m.benchmark.sharpe, None);
    assert_eq!(m.benchmark.max_drawdown.depth, Some(0.0));
}

#[test]
fn constant_returns_have_no_spread_and_no_sharpe() {
    // +100 % a day, three times: the returns are equal, their spread is exactly 0.
    let equity = curve(&["200", "400", "800"], &["0"; 3], &[1.0; 3]);
    let m = compute(d("100"), &equity, &[], "SPY");
    assert_eq!(m.volatility, Some(0.0));
    assert_eq!((m.sharpe, m.sortino), (None, None));
}

#[test]
fn one_session_has_a_return_but_no_spread() {
    let equity = curve(&["101"], &["50"], &[3.0]);
    let m = compute(d("100"), &equity, &[], "SPY");
    close(m.total_return, 0.01);
    close(m.cagr, 1.01f64.powf(252.0) - 1.0);
    assert_eq!((m.volatility, m.sharpe, m.sortino), (None, None, None));
    assert_eq!(m.benchmark.total_return, Some(0.0));
    assert_eq!(m.benchmark.sharpe, None);
    close(m.exposure.average_gross, 50.0 / 101.0);
}

#[test]
fn no_sessions_and_no_trades() {
    let m = compute(d("100000"), &[], &[], "SPY");
    assert_eq!(m.sessions, 0);
    assert_eq!(m.ending_equity, d("100000"));
    assert_eq!(m.net_profit, Some(Decimal::ZERO));
    assert_eq!((m.total_return, m.cagr, m.volatility), (None, None, None));
    assert_eq!(m.max_drawdown, Drawdown::undefined());
    assert_eq!(
        m.exposure,
        Exposure {
            time_in_market: None,
            average_gross: None
        }
    );
    assert_eq!(m.turnover.average_equity, None);
    assert_eq!(m.turnover.turnover, None);
    let t = &m.trades;
    assert_eq!((t.count, t.wins, t.losses), (0, 0, 0));
    assert_eq!(
        (t.win_rate, t.profit_factor, t.expectancy_r),
        (None, None, None)
    );
    assert_eq!(
        (t.average_win, t.average_loss, t.expectancy),
        (None, None, None)
    );
    assert_eq!(t.net_pnl, Some(Decimal::ZERO));
    assert_eq!(m.costs, Some(Decimal::ZERO));
    assert_eq!(m.benchmark.total_return, None);
}

#[test]
fn a_non_positive_equity_leaves_the_return_metrics_undefined() {
    for (start, equities) in [
        ("0", ["100", "101"]),
        ("100", ["0", "1"]),
        ("100", ["50", "-3"]),
    ] {
        let equity = curve(&equities, &["0", "0"], &[1.0, 1.1]);
        let m = compute(d(start), &equity, &[], "SPY");
        assert_eq!(
            (m.total_return, m.cagr, m.sharpe),
            (None, None, None),
            "{start} {equities:?}"
        );
        assert_eq!(m.max_drawdown.depth, None);
        assert_eq!(m.exposure.average_gross, None);
        close(m.benchmark.total_return, 0.1);
    }
}

#[test]
fn trade_statistics() {
    let mut trimmed_win = trip("AAPL", "300", 1.5, ExitReason::TargetR2);
    trimmed_win.trimmed = true;
    let trips = vec![
        trimmed_win,
        trip("MSFT", "100", 0.5, ExitReason::Stop),
        trip("XOM", "-200", -1.0, ExitReason::Stop),
        trip("KO", "0", 0.0, ExitReason::Flatten),
        trip("GE", "-100", f64::INFINITY, ExitReason::EndOfBacktest),
    ];
    let equity = curve(&["100000", "100100"], &["0", "5000"], &[1.0, 1.0]);
    let m = compute(d("100000"), &equity, &trips, "SPY");
    let t = &m.trades;
    assert_eq!((t.count, t.wins, t.losses, t.breakeven), (5, 2, 2, 1));
    assert_eq!((t.open_at_end, t.trimmed), (1, 1));
    assert_eq!(t.by_exit_reason[&ExitReason::Stop], 2);
    assert_eq!(t.by_exit_reason.get(&ExitReason::StopLevel), None);
    close(t.win_rate, 0.4);
    assert_eq!(t.winning_pnl, Some(d("400")));
    assert_eq!(t.losing_pnl, Some(d("-300")));
    assert_eq!(t.net_pnl, Some(d("100")));
    assert_eq!(t.gross_pnl, Some(d("110")));
    assert_eq!(t.average_win, Some(d("200")));
    assert_eq!(t.average_loss, Some(d("-150")));
    assert_eq!(t.expectancy, Some(d("20")));
    close(t.profit_factor, 4.0 / 3.0);
    // The infinite R multiple is left out of the R means.
    close(t.expectancy_r, (1.5 + 0.5 - 1.0 + 0.0) / 4.0);
    close(t.average_win_r, 1.0);
    close(t.average_loss_r, -1.0);
    close(t.average_holding_days, 2.0);
    assert_eq!(m.costs, Some(d("10")));
    assert_eq!(m.turnover.traded_notional, Some(d("50000")));
    assert_eq!(m.turnover.average_equity, Some(d("100050")));
    close(m.turnover.turnover, 50000.0 / 100050.0);
    close(m.turnover.annual_turnover, 50000.0 / 100050.0 * 126.0);
    close(m.exposure.time_in_market, 0.5);
    close(m.exposure.average_gross, 5000.0 / 100100.0 / 2.0);
}

#[test]
fn without_losses_the_profit_factor_is_undefined() {
    let trips = vec![trip("AAPL", "300", 1.5, ExitReason::TargetR2)];
    let m = compute(d("100000"), &[], &trips, "SPY");
    assert_eq!(m.trades.profit_factor, None);
    assert_eq!(m.trades.average_loss, None);
    close(m.trades.win_rate, 1.0);
}

#[test]
fn holding_time_counts_fractions_of_a_day() {
    let mut t = trip("AAPL", "1", 1.0, ExitReason::Stop);
    t.entry_time = at(1, 14) + chrono::Duration::minutes(40);
    t.exit_time = at(1, 20);
    let m = compute(d("1000"), &[], &[t], "SPY");
    close(m.trades.average_holding_days, (5.0 * 60.0 + 20.0) / 1440.0);
}

#[test]
fn benchmark_metrics_start_from_its_first_close() {
    let equity = curve(
        &["100", "100", "100", "100"],
        &["0"; 4],
        &[200.0, 220.0, 198.0, 210.0],
    );
    let m = compute(d("100"), &equity, &[], "equal-weight index of the data set");
    let b = &m.benchmark;
    assert_eq!(b.label, "equal-weight index of the data set");
    close(b.total_return, 0.05);
    let rs = [0.1, 198.0 / 220.0 - 1.0, 210.0 / 198.0 - 1.0];
    let mean = rs.iter().sum::<f64>() / 3.0;
    let var = rs.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 2.0;
    close(b.volatility, var.sqrt() * 252f64.sqrt());
    close(b.sharpe, mean / var.sqrt() * 252f64.sqrt());
    assert_eq!(
        b.max_drawdown,
        Drawdown {
            depth: Some(198.0 / 220.0 - 1.0),
            peak_date: Some(day(1)),
            trough_date: Some(day(2)),
            recovery_date: None,
        }
    );
}

#[test]
fn a_missing_benchmark_value_leaves_the_benchmark_undefined() {
    let equity = curve(&["100", "101"], &["0", "0"], &[200.0, f64::NAN]);
    let b = compute(d("100"), &equity, &[], "SPY").benchmark;
    assert_eq!((b.total_return, b.sharpe), (None, None));
    assert_eq!(b.max_drawdown.depth, None);
}

#[test]
fn sums_beyond_the_decimal_range_are_none_not_a_panic() {
    let huge = "79228162514264337593543950335";
    let mut big = trip("A", "0", 1.0, ExitReason::Stop);
    big.net_pnl = d(huge);
    let trips = vec![big.clone(), big];
    let equity = curve(&[huge, huge], &["0", "0"], &[1.0, 1.0]);
    let m = compute(d("-1"), &equity, &trips, "SPY");
    assert_eq!(m.trades.net_pnl, None);
    assert_eq!(m.trades.expectancy, None);
    assert_eq!(m.net_profit, None);
    assert_eq!(m.turnover.average_equity, None);
}

#[test]
fn serialises_undefined_values_as_null() {
    let m = compute(d("100"), &[], &[], "SPY");
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["sharpe"], serde_json::Value::Null);
    assert_eq!(json["trades"]["profit_factor"], serde_json::Value::Null);
    assert_eq!(json["starting_equity"], "100");
    assert_eq!(json["benchmark"]["label"], "SPY");
}

/// Every float metric, by name (for the range and finiteness properties).
fn floats(m: &Metrics) -> Vec<(&'static str, Option<f64>)> {
    vec![
        ("total_return", m.total_return),
        ("cagr", m.cagr),
        ("volatility", m.volatility),
        ("sharpe", m.sharpe),
        ("sortino", m.sortino),
        ("calmar", m.calmar),
        ("max_drawdown.depth", m.max_drawdown.depth),
        ("win_rate", m.trades.win_rate),
        ("profit_factor", m.trades.profit_factor),
        ("expectancy_r", m.trades.expectancy_r),
        ("average_win_r", m.trades.average_win_r),
        ("average_loss_r", m.trades.average_loss_r),
        ("average_holding_days", m.trades.average_holding_days),
        ("time_in_market", m.exposure.time_in_market),
        ("average_gross", m.exposure.average_gross),
        ("turnover", m.turnover.turnover),
        ("annual_turnover", m.turnover.annual_turnover),
        ("benchmark.total_return", m.benchmark.total_return),
        ("benchmark.volatility", m.benchmark.volatility),
        ("benchmark.sharpe", m.benchmark.sharpe),
        (
            "benchmark.max_drawdown.depth",
            m.benchmark.max_drawdown.depth,
        ),
    ]
}

/// A plausible run: positive equities in cents, long value within the equity, benchmark
/// around 100, trips with P&L and R multiples of either sign.
fn plausible_run() -> impl Strategy<Value = (Decimal, Vec<EquityPoint>, Vec<RoundTrip>)> {
    let point = (1i64..20_000_000, 0u32..=100, 50.0f64..150.0);
    let trip_strategy = (
        -500_000i64..500_000,
        -3.0f64..5.0,
        0u32..20,
        0usize..5,
        any::<bool>(),
    );
    (
        1i64..20_000_000,
        prop::collection::vec(point, 0..40),
        prop::collection::vec(trip_strategy, 0..30),
    )
        .prop_map(|(start, points, trips)| {
            let equity = points
                .into_iter()
                .enumerate()
                .map(|(i, (cents, share, benchmark))| {
                    let equity = Decimal::new(cents, 2);
                    let long_value = equity * Decimal::from(share) / Decimal::from(100);
                    EquityPoint {
                        date: day(i as u32),
                        equity,
                        cash: equity - long_value,
                        long_value,
                        benchmark,
                    }
                })
                .collect();
            let reasons = [
                ExitReason::Stop,
                ExitReason::TargetR2,
                ExitReason::StopLevel,
                ExitReason::Flatten,
                ExitReason::EndOfBacktest,
            ];
            let trips = trips
                .into_iter()
                .map(|(cents, r, held, reason, trimmed)| {
                    let mut t = trip("AAPL", "0", r, reasons[reason]);
                    t.net_pnl = Decimal::new(cents, 2);
                    t.exit_time = t.entry_time + chrono::Duration::hours(i64::from(held) * 7);
                    t.trimmed = trimmed;
                    t
                })
                .collect();
            (Decimal::new(start, 2), equity, trips)
        })
}

proptest! {
    #[test]
    fn metrics_stay_in_their_ranges((start, equity, trips) in plausible_run()) {
        let m = compute(start, &equity, &trips, "SPY");
        for (name, value) in floats(&m) {
            if let Some(v) = value {
                prop_assert!(v.is_finite(), "{name} = {v}");
            }
        }
        for depth in [m.max_drawdown.depth, m.benchmark.max_drawdown.depth].into_iter().flatten() {
            prop_assert!((-1.0..=0.0).contains(&depth), "drawdown {depth}");
        }
        for share in [m.trades.win_rate, m.exposure.time_in_market, m.exposure.average_gross]
            .into_iter()
            .flatten()
        {
            prop_assert!((0.0..=1.0).contains(&share), "share {share}");
        }
        if let Some(pf) = m.trades.profit_factor {
            prop_assert!(pf >= 0.0);
        }
        prop_assert_eq!(m.trades.count, trips.len());
        prop_assert_eq!(m.trades.wins + m.trades.losses + m.trades.breakeven, trips.len());
        prop_assert_eq!(m.trades.by_exit_reason.values().sum::<usize>(), trips.len());
        if let (Some(won), Some(lost), Some(net)) =
            (m.trades.winning_pnl, m.trades.losing_pnl, m.trades.net_pnl)
        {
            prop_assert_eq!(won + lost, net);
        }
        if let (Some(dd), Some(trough)) = (m.max_drawdown.depth, m.max_drawdown.trough_date) {
            prop_assert!(dd < 0.0);
            prop_assert!(m.max_drawdown.peak_date.is_none_or(|p| p < trough));
            prop_assert!(m.max_drawdown.recovery_date.is_none_or(|r| r > trough));
        }
        if let (Some(cagr), Some(total)) = (m.cagr, m.total_return) {
            // Same sign: compounding does not flip gains into losses.
            prop_assert!(cagr * total >= 0.0, "cagr {cagr} total {total}");
        }
    }

    #[test]
    fn never_panics_on_hostile_values(
        start in any::<i64>(),
        values in prop::collection::vec((any::<i64>(), any::<i64>(), any::<f64>(), any::<f64>()), 0..12),
    ) {
        let equity: Vec<EquityPoint> = values
            .iter()
            .enumerate()
            .map(|(i, (e, l, b, _))| EquityPoint {
                date: day(i as u32),
                equity: Decimal::new(*e, 3),
                cash: Decimal::ZERO,
                long_value: Decimal::new(*l, 3),
                benchmark: *b,
            })
            .collect();
        let trips: Vec<RoundTrip> = values
            .iter()
            .map(|(e, l, _, r)| {
                let mut t = trip("X", "0", *r, ExitReason::Flatten);
                t.net_pnl = Decimal::from_i128_with_scale(i128::from(*e) * 1_000_000_000, 0);
                t.costs = Decimal::MAX;
                t.traded_notional = Decimal::new(*l, 0);
                t.exit_time = DateTime::<Utc>::MIN_UTC;
                t
            })
            .collect();
        let m = compute(Decimal::new(start, 2), &equity, &trips, "SPY");
        for (name, value) in floats(&m) {
            if let Some(v) = value {
                prop_assert!(v.is_finite(), "{name} = {v}");
            }
        }
        prop_assert!(serde_json::to_string(&m).is_ok());
    }
}

mod golden;
