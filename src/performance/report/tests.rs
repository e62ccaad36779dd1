use super::*;
use crate::performance::ExitReason;
use chrono::{Duration, TimeZone, Weekday};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

/// Weekdays from 2010-03-01: 40 sessions into late April.
fn sessions(count: usize) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let mut d = date(2010, 3, 1);
    while out.len() < count {
        if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
            out.push(d);
        }
        d += Duration::days(1);
    }
    out
}

/// Equity rising 100 a day from 100,000 to a peak, then falling, invested half the time.
fn equity_curve() -> Vec<EquityPoint> {
    sessions(40)
        .into_iter()
        .enumerate()
        .map(|(i, date)| {
            let step = if i < 25 { i as i64 } else { 50 - i as i64 };
            let equity = Decimal::from(100_000 + 100 * step);
            let long_value = if i % 2 == 0 {
                dec("30000")
            } else {
                Decimal::ZERO
            };
            EquityPoint {
                date,
                equity,
                cash: equity - long_value,
                long_value,
                benchmark: 1000.0 + i as f64,
            }
        })
        .collect()
}

fn ny(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    chrono_tz::America::New_York
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn trip(symbol: &str, entry_day: u32, exit_day: u32, r: f64, reason: ExitReason) -> RoundTrip {
    RoundTrip {
        symbol: symbol.to_string(),
        scan_date: date(2010, 3, entry_day),
        anchor_date: date(2010, 3, 2),
        entry_level: dec("49.90"),
        entry_time: ny(2010, 3, entry_day, 10, 5),
        exit_time: ny(2010, 3, exit_day, 15, 55),
        entry_price: dec("50.05"),
        exit_price: dec("51.60"),
        qty: dec("100"),
        initial_stop: dec("48.50"),
        target_r1: dec("51.50"),
        target_r2: dec("53.00"),
        trimmed: true,
        exit_reason: reason,
        gross_pnl: dec("155"),
        costs: dec("2.10"),
        net_pnl: dec("152.90"),
        r_multiple: r,
        traded_notional: dec("10165"),
    }
}

fn bars_around(first: usize, count: usize) -> TradeChart {
    let dates: Vec<NaiveDate> = sessions(first + count)[first..].to_vec();
    let close: Vec<f64> = (0..count).map(|i| 49.0 + 0.2 * i as f64).collect();
    TradeChart {
        open: close.iter().map(|c| c - 0.1).collect(),
        high: close.iter().map(|c| c + 0.4).collect(),
        low: close.iter().map(|c| c - 0.5).collect(),
        avwap: (0..count)
            .map(|i| {
                if i == 0 {
                    f64::NAN
                } else {
                    49.2 + 0.1 * i as f64
                }
            })
            .collect(),
        sigma: (0..count)
            .map(|i| if i == 0 { f64::NAN } else { 0.05 * i as f64 })
            .collect(),
        close,
        dates,
    }
}

#[test]
fn monthly_returns_chain_from_the_starting_equity() {
    let equity = equity_curve();
    let (months, years) = monthly_returns(dec("100000"), &equity);
    // March 2010 has 23 weekdays: the last is session 22, equity 102,200.
    let march = months[&(2010, 3)];
    assert!((march - 0.022).abs() < 1e-12, "{march}");
    // April ends at session 39: 100,000 + 100 × 11 = 101,100.
    let april = months[&(2010, 4)];
    assert!((april - (101_100.0 / 102_200.0 - 1.0)).abs() < 1e-12);
    assert!((years[&2010] - 0.011).abs() < 1e-12);
}

#[test]
fn drawdowns_run_from_the_running_peak() {
    let dd = drawdowns(&[1.0, 1.1, 0.99, f64::NAN, 1.2], 1.0);
    assert_eq!(dd[0], 0.0);
    assert_eq!(dd[1], 0.0);
    assert!((dd[2] - (0.99 / 1.1 - 1.0)).abs() < 1e-15);
    assert!(dd[3].is_nan());
    assert_eq!(dd[4], 0.0);
}

#[test]
fn r_histogram_bins_are_half_r_and_widen_for_outliers() {
    let trades: Vec<RoundTrip> = [-1.0, -0.2, 0.3, 0.4, 2.1, f64::NAN]
        .iter()
        .map(|r| trip("A", 1, 2, *r, ExitReason::Stop))
        .collect();
    let (width, bins) = r_histogram(&trades);
    assert_eq!(width, 0.5);
    assert_eq!(
        bins.into_iter().collect::<Vec<_>>(),
        vec![(-2, 1), (-1, 1), (0, 2), (4, 1)]
    );
    let outliers: Vec<RoundTrip> = [-1.0, 50.0]
        .iter()
        .map(|r| trip("A", 1, 2, *r, ExitReason::Stop))
        .collect();
    let (width, _) = r_histogram(&outliers);
    assert_eq!(width, 2.0);
}

#[test]
fn the_report_draws_every_chart_escapes_text_and_holds_no_nan() {
    let equity = equity_curve();
    let trades = vec![
        trip("ACME", 3, 8, 1.05, ExitReason::TargetR2),
        trip("AT&T<x>", 10, 12, -1.0, ExitReason::Stop),
        trip("NOBARS", 15, 16, 0.2, ExitReason::EndOfBacktest),
    ];
    let charts = vec![
        bars_around(0, 20),
        bars_around(5, 15),
        TradeChart::default(),
    ];
    let summary = vec![
        ("total return".to_string(), "1.10%".to_string()),
        ("profit factor <PF>".to_string(), "1.5".to_string()),
    ];
    let input = ReportInput {
        title: "Backtest 2010-03-01 → 2010-04-23 & more",
        summary: &summary,
        equity: &equity,
        trades: &trades,
        benchmark_label: "equal-weight index",
        starting_equity: dec("100000"),
        trade_charts: &charts,
    };
    let html = render_report(&input);
    assert_eq!(chart_count(&input), 6);
    assert_eq!(html.matches("<svg").count(), 6);
    assert!(!html.contains("NaN") && !html.contains("inf<") && !html.contains("<script"));
    assert!(html.contains("AT&amp;T&lt;x&gt;") && !html.contains("AT&T<x>"));
    assert!(html.contains("profit factor &lt;PF&gt;"));
    assert!(html.contains("Backtest 2010-03-01 → 2010-04-23 &amp; more"));
    // Times in New York; the trade list links to the charts.
    assert!(
        html.contains("<td>2010-03-03 10:05</td>"),
        "entry time in NY"
    );
    assert!(html.contains("href=\"#trade-2\"") && html.contains("id=\"trade-2\""));
    assert!(html.contains("no daily bars for this trade"));
    // Monthly table: March +2.2 %.
    assert!(html.contains(">2.2%</td>"), "monthly table");
    // The trade chart marks entry and exit, and the levels.
    assert!(html.contains(">exit (target_r2)</text>") && html.contains(">R2 53.00</text>"));
    // Deterministic.
    assert_eq!(html, render_report(&input));
}

#[test]
fn an_empty_run_renders_without_panicking() {
    let input = ReportInput {
        title: "empty",
        summary: &[],
        equity: &[],
        trades: &[],
        benchmark_label: "SPY",
        starting_equity: Decimal::ZERO,
        trade_charts: &[],
    };
    let html = render_report(&input);
    assert_eq!(html.matches("<svg").count(), 4);
    assert!(!html.contains("NaN") && html.ends_with("</html>\n"));
}
