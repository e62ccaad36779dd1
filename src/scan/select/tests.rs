use super::*;
use crate::calendar;
use crate::market_data::DailyBar;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// `n` sessions ending 2026-11-27 of a steady uptrend whose daily range slowly narrows, so that
/// every gate passes: close ≈ 40 → 60, range ≈ 2.4% → 1.6%, volume 2M shares.
fn uptrend(n: usize) -> BarSeries {
    let mut dates = Vec::new();
    let mut d = date("2026-11-27");
    while dates.len() < n {
        dates.push(d);
        d = calendar::previous_session(d).unwrap();
    }
    dates.reverse();
    let mut series = BarSeries::new("UPTR");
    for (t, &date) in dates.iter().enumerate() {
        let t = t as f64;
        let close = 40.0 * (1.0 + 0.0012 * t) + 0.4 * (t / 4.0).sin();
        let range = close * (0.024 - 0.008 * t / n as f64);
        series.push(DailyBar {
            date,
            open: close - 0.1,
            high: close + range / 2.0,
            low: close - range / 2.0,
            close,
            volume: 2.0e6,
        });
    }
    series
}

fn config() -> ScanConfig {
    ScanConfig::default()
}

const AS_OF: &str = "2026-11-27";

#[test]
fn a_clean_uptrend_yields_a_consistent_candidate() {
    let series = uptrend(300);
    let c = evaluate(&series, date(AS_OF), &config()).unwrap();
    assert_eq!(c.symbol, "UPTR");
    assert_eq!(c.tier, TrendTier::A);
    assert_eq!(c.data_as_of, date(AS_OF));
    assert!(c.close > c.avwap, "price above the chosen AVWAP");
    assert!(c.dist_pct > 0.0 && c.dist_pct <= 6.0, "{}", c.dist_pct);
    assert!(c.stop < c.close);
    assert!(c.target_r2 >= c.target_r1 && c.target_r1 >= c.close);
    assert!(c.trend_score.is_finite());
    assert!(c.anchor_date <= c.data_as_of);
    assert!(c.avwap_sigma >= 0.0);
    // Setup context for a long candidate above its AVWAP.
    assert_eq!(
        c.context
            .avwap_dist_pct
            .map(|d| (d - c.dist_pct).abs() < 1e-12),
        Some(true)
    );
}

#[test]
fn stale_data_is_never_scanned_as_current() {
    let series = uptrend(300);
    assert_eq!(
        evaluate(&series, date("2026-11-30"), &config()),
        Err(Rejection::StaleData)
    );
}

#[test]
fn liquidity_gates_each_reject_alone() {
    let mut low_volume = uptrend(300);
    low_volume.volume.iter_mut().for_each(|v| *v = 700_000.0);
    assert_eq!(
        evaluate(&low_volume, date(AS_OF), &config()),
        Err(Rejection::LowVolume)
    );

    // Enough shares but under $10M a day: 800k shares × ~$11.
    let mut low_dollar = uptrend(300);
    low_dollar.volume.iter_mut().for_each(|v| *v = 800_000.0);
    for x in [
        &mut low_dollar.open,
        &mut low_dollar.high,
        &mut low_dollar.low,
        &mut low_dollar.close,
    ] {
        x.iter_mut().for_each(|p| *p /= 5.0);
    }
    assert_eq!(
        evaluate(&low_dollar, date(AS_OF), &config()),
        Err(Rejection::LowDollarVolume)
    );

    let mut cheap = uptrend(300);
    for x in [
        &mut cheap.open,
        &mut cheap.high,
        &mut cheap.low,
        &mut cheap.close,
    ] {
        x.iter_mut().for_each(|p| *p /= 20.0);
    }
    cheap.volume.iter_mut().for_each(|v| *v = 1.0e8);
    assert_eq!(
        evaluate(&cheap, date(AS_OF), &config()),
        Err(Rejection::LowPrice)
    );

    // Only 10 bars in the last 45 calendar days.
    let series = uptrend(300);
    let keep: Vec<usize> = (0..300).filter(|i| !(270..290).contains(i)).collect();
    let mut sparse = BarSeries::new("SPRS");
    for i in keep {
        sparse.push(series.bar(i).unwrap());
    }
    assert_eq!(
        evaluate(&sparse, date(AS_OF), &config()),
        Err(Rejection::TooFewRecentBars)
    );
}

#[test]
fn history_and_trend_gates() {
    assert_eq!(
        evaluate(&uptrend(132), date(AS_OF), &config()),
        Err(Rejection::InsufficientHistory)
    );
    // 133 bars is enough (the weekly alignment needs 200 and is skipped below that).
    assert!(evaluate(&uptrend(133), date(AS_OF), &config()).is_ok());

    // A downtrend fails weekly alignment first (≥ 200 bars) ...
    let mut down = uptrend(300);
    down.close.reverse();
    down.high.reverse();
    down.low.reverse();
    down.open.reverse();
    assert_eq!(
        evaluate(&down, date(AS_OF), &config()),
        Err(Rejection::WeeklyMisaligned)
    );
    // ... and Tier A when there is too little history for weekly alignment.
    let mut short_down = uptrend(150);
    short_down.close.reverse();
    short_down.high.reverse();
    short_down.low.reverse();
    short_down.open.reverse();
    assert_eq!(
        evaluate(&short_down, date(AS_OF), &config()),
        Err(Rejection::NotTierA)
    );
}

#[test]
fn atr_gates() {
    let mut config = config();
    config.gates.min_atr_dollars = 5.0;
    assert_eq!(
        evaluate(&uptrend(300), date(AS_OF), &config),
        Err(Rejection::AtrBelowMinimum)
    );

    let mut config = ScanConfig::default();
    config.gates.max_atr_pct = 1.0;
    assert_eq!(
        evaluate(&uptrend(300), date(AS_OF), &config),
        Err(Rejection::AtrPctTooHigh)
    );

    // Widening the last bars' range lifts ATR% above its own median.
    let mut expanding = uptrend(300);
    for i in 290..300 {
        expanding.high[i] = expanding.close[i] * 1.02;
        expanding.low[i] = expanding.close[i] * 0.98;
    }
    assert_eq!(
        evaluate(&expanding, date(AS_OF), &ScanConfig::default()),
        Err(Rejection::AtrPctAboveMedian)
    );
}

#[test]
fn structural_stop_by_hand() {
    let mut series = BarSeries::new("STOP");
    let closes = [10.0, 10.2, 10.4, 10.6, 10.8];
    let lows = [9.9, 9.7, 10.3, 10.5, 10.7];
    for (i, (c, l)) in closes.iter().zip(lows).enumerate() {
        series.push(DailyBar {
            date: date("2026-11-02") + Duration::days(i as i64),
            open: *c,
            high: c + 0.1,
            low: l,
            close: *c,
            volume: 1.0,
        });
    }
    // SMA5 = 10.4, lowest low = 9.7 → 9.7 × 0.997 = 9.6709.
    assert!((structural_stop(&series, &config()) - 9.6709).abs() < 1e-12);
}

fn candidate(symbol: &str, tier: TrendTier, trend_score: f64, adv: f64) -> Candidate {
    let mut c = evaluate(&uptrend(300), date(AS_OF), &config()).unwrap();
    c.symbol = symbol.into();
    c.tier = tier;
    c.trend_score = trend_score;
    c.avg_dollar_volume = adv;
    c
}

#[test]
fn ranking_is_tier_then_trend_then_liquidity_then_symbol_and_capped() {
    let input = vec![
        candidate("BBB", TrendTier::A, 10.0, 1e7),
        candidate("AAA", TrendTier::B, 99.0, 1e9),
        candidate("CCC", TrendTier::A, 20.0, 1e7),
        candidate("DDD", TrendTier::A, 10.0, 2e7),
        candidate("EEE", TrendTier::A, 10.0, 1e7),
    ];
    let ranked: Vec<String> = rank_and_cap(input.clone(), 10)
        .into_iter()
        .map(|c| c.symbol)
        .collect();
    assert_eq!(ranked, ["CCC", "DDD", "BBB", "EEE", "AAA"]);
    let mut reversed = input;
    reversed.reverse();
    let again: Vec<String> = rank_and_cap(reversed, 3)
        .into_iter()
        .map(|c| c.symbol)
        .collect();
    assert_eq!(again, ["CCC", "DDD", "BBB"]);
}

#[test]
fn no_anchor_qualifies_when_price_is_far_above_every_avwap() {
    let mut config = config();
    config.selection.max_dist_pct = 0.01;
    assert_eq!(
        evaluate(&uptrend(300), date(AS_OF), &config),
        Err(Rejection::NoQualifyingAnchor)
    );
}

#[test]
fn best_anchor_prefers_the_near_bonus_and_reports_its_score() {
    let series = uptrend(300);
    let config = config();
    let choice = best_anchor(&series, 10.0, &config).unwrap();
    let priority = crate::scan::anchors::anchor_candidates(&series, &config.anchors, false)
        .into_iter()
        .find(|a| a.kind == choice.kind)
        .unwrap()
        .priority;
    let mut expected = f64::from(priority) + 1.5 * 10.0 - choice.dist_pct.abs();
    if (0.1..=1.5).contains(&choice.dist_pct) {
        expected += 50.0;
    }
    if choice.reclaim {
        expected += 40.0;
    }
    assert!((choice.score - expected).abs() < 1e-9);
    // TrendScore shifts every anchor's score equally, so it never changes the choice.
    assert_eq!(
        best_anchor(&series, -50.0, &config).unwrap().kind,
        choice.kind
    );
}
