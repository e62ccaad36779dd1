//! Per-symbol evaluation: liquidity, history, weekly alignment, Tier A and ATR gates, the
//! structural stop, best-anchor selection with its score, floor-pivot targets. One symbol in,
//! one candidate or one named rejection out; no I/O.

use crate::market_data::BarSeries;
use crate::scan::anchors::{anchor_candidates, anchored_vwap, avwap_with_sigma_last};
use crate::scan::config::ScanConfig;
use crate::scan::context::{setup_context, SetupContext};
use crate::scan::indicators::{
    atr, floor_pivots, quantile_last, slope_last, sma, trend_score, weekly_closes,
};
use crate::watchlist::{AnchorKind, TrendTier};
use chrono::{Duration, NaiveDate};
use serde::Serialize;

/// Why a symbol produced no candidate. The names are the per-stage counters of scan.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// Its last bar is older than the data date: missing data is never scanned as current.
    StaleData,
    TooFewRecentBars,
    LowVolume,
    LowDollarVolume,
    LowPrice,
    InsufficientHistory,
    WeeklyMisaligned,
    AtrBelowMinimum,
    NotTierA,
    AtrPctTooHigh,
    AtrPctAboveMedian,
    TrendScoreUnavailable,
    NoQualifyingAnchor,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::StaleData => "stale_data",
            Rejection::TooFewRecentBars => "too_few_recent_bars",
            Rejection::LowVolume => "low_volume",
            Rejection::LowDollarVolume => "low_dollar_volume",
            Rejection::LowPrice => "low_price",
            Rejection::InsufficientHistory => "insufficient_history",
            Rejection::WeeklyMisaligned => "weekly_misaligned",
            Rejection::AtrBelowMinimum => "atr_below_minimum",
            Rejection::NotTierA => "not_tier_a",
            Rejection::AtrPctTooHigh => "atr_pct_too_high",
            Rejection::AtrPctAboveMedian => "atr_pct_above_median",
            Rejection::TrendScoreUnavailable => "trend_score_unavailable",
            Rejection::NoQualifyingAnchor => "no_qualifying_anchor",
        }
    }
}

/// A symbol that passed every gate, with everything the watchlist and scan.json report.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub symbol: String,
    pub tier: TrendTier,
    pub close: f64,
    pub trend_score: f64,
    pub anchor: AnchorKind,
    pub anchor_date: NaiveDate,
    pub avwap: f64,
    /// Volume-weighted σ of typical price around the AVWAP since the anchor (TradingView).
    pub avwap_sigma: f64,
    pub avwap_slope: f64,
    pub dist_pct: f64,
    pub reclaim: bool,
    /// Anchor score (priority + weighted TrendScore − |dist| + bonuses); not written to the CSV.
    pub score: f64,
    pub stop: f64,
    pub target_r1: f64,
    pub target_r2: f64,
    pub avg_dollar_volume: f64,
    pub context: SetupContext,
    pub data_as_of: NaiveDate,
}

/// The outcome of one anchor examined by [`best_anchor`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnchorChoice {
    pub kind: AnchorKind,
    pub index: usize,
    pub avwap: f64,
    pub slope: f64,
    pub dist_pct: f64,
    pub reclaim: bool,
    pub score: f64,
}

// Gate comparisons in which a NaN (an indicator without enough data) always fails the gate.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn below_min(value: f64, min: f64) -> bool {
    !(value >= min)
}

#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn above_max(value: f64, max: f64) -> bool {
    !(value <= max)
}

fn strictly_above(value: f64, other: f64) -> bool {
    value > other
}

fn last(values: &[f64]) -> f64 {
    values.last().copied().unwrap_or(f64::NAN)
}

fn mean_last(values: &[f64], n: usize) -> f64 {
    if n == 0 || values.len() < n {
        return f64::NAN;
    }
    values[values.len() - n..].iter().sum::<f64>() / n as f64
}

/// Evaluate one validated series whose last bar should be `data_as_of`.
pub fn evaluate(
    series: &BarSeries,
    data_as_of: NaiveDate,
    config: &ScanConfig,
) -> Result<Candidate, Rejection> {
    if series.last_date() != Some(data_as_of) {
        return Err(Rejection::StaleData);
    }
    let avg_dollar_volume = liquidity(series, data_as_of, config)?;
    let gates = &config.gates;
    let n = series.len();
    if n < gates.min_bars {
        return Err(Rejection::InsufficientHistory);
    }
    let (high, low, close) = (&series.high[..], &series.low[..], &series.close[..]);
    let price = last(close);

    if n >= gates.weekly_min_bars {
        let weekly = weekly_closes(&series.dates, close);
        if weekly.len() >= gates.weekly_min_weeks {
            let fast = last(&sma(&weekly, gates.weekly_sma_fast));
            let slow = last(&sma(&weekly, gates.weekly_sma_slow));
            // An empty week gives NaN, which fails alignment as in the reference.
            if !strictly_above(fast, slow) {
                return Err(Rejection::WeeklyMisaligned);
            }
        }
    }

    let atr_series = atr(high, low, close, gates.atr_len);
    let atr_now = last(&atr_series);
    if below_min(atr_now, gates.min_atr_dollars) {
        return Err(Rejection::AtrBelowMinimum);
    }
    let sma_fast = last(&sma(close, gates.tier_sma_fast));
    let sma_slow = last(&sma(close, gates.tier_sma_slow));
    if !(price > sma_fast && sma_fast >= sma_slow) {
        return Err(Rejection::NotTierA);
    }
    let atr_pct: Vec<f64> = atr_series
        .iter()
        .zip(close)
        .map(|(a, c)| 100.0 * a / c)
        .collect();
    let atr_pct_now = last(&atr_pct);
    if above_max(atr_pct_now, gates.max_atr_pct) {
        return Err(Rejection::AtrPctTooHigh);
    }
    let median = quantile_last(&atr_pct, gates.atr_pct_median_window, 0.5);
    if above_max(atr_pct_now, median * gates.max_atr_pct_vs_median) {
        return Err(Rejection::AtrPctAboveMedian);
    }

    let stop = structural_stop(series, config);
    let score_now = trend_score(high, low, close, &config.trend_score);
    if score_now.is_nan() {
        return Err(Rejection::TrendScoreUnavailable);
    }
    let choice = best_anchor(series, score_now, config).ok_or(Rejection::NoQualifyingAnchor)?;
    let bands = avwap_with_sigma_last(high, low, close, &series.volume, choice.index);
    let (_, r1, r2) = floor_pivots(last(high), last(low), price);
    let context = setup_context(series, choice.kind, choice.index, choice.avwap, config);
    Ok(Candidate {
        symbol: series.symbol.clone(),
        tier: TrendTier::A,
        close: price,
        trend_score: score_now,
        anchor: choice.kind,
        anchor_date: series.dates[choice.index],
        avwap: choice.avwap,
        avwap_sigma: bands.sigma,
        avwap_slope: choice.slope,
        dist_pct: choice.dist_pct,
        reclaim: choice.reclaim,
        score: choice.score,
        stop,
        target_r1: r1,
        target_r2: r2,
        avg_dollar_volume,
        context,
        data_as_of,
    })
}

/// Liquidity gates; returns the average dollar volume for reporting.
fn liquidity(
    series: &BarSeries,
    data_as_of: NaiveDate,
    config: &ScanConfig,
) -> Result<f64, Rejection> {
    let liq = &config.liquidity;
    // The window is range-checked at load; one that still does not fit the date arithmetic
    // (a config built in code) reaches back to the earliest date: every bar is recent.
    let window_start = Duration::try_days(liq.window_calendar_days)
        .and_then(|d| data_as_of.checked_sub_signed(d))
        .unwrap_or(NaiveDate::MIN);
    let recent = series.len() - series.dates.partition_point(|d| *d <= window_start);
    if recent < liq.min_bars_in_window {
        return Err(Rejection::TooFewRecentBars);
    }
    let avg_volume = mean_last(&series.volume, liq.average_bars);
    if below_min(avg_volume, liq.min_avg_volume) {
        return Err(Rejection::LowVolume);
    }
    // The predecessor averaged dollar volume over every bar of its 45-day window despite the
    // name "AvgDollarVol20"; we average the same bars as share volume.
    let n = liq.average_bars.min(series.len());
    let dollar: Vec<f64> = series.close[series.len() - n..]
        .iter()
        .zip(&series.volume[series.len() - n..])
        .map(|(c, v)| c * v)
        .collect();
    let avg_dollar_volume = mean_last(&dollar, liq.average_bars);
    if below_min(avg_dollar_volume, liq.min_avg_dollar_volume) {
        return Err(Rejection::LowDollarVolume);
    }
    if below_min(last(&series.close), liq.min_price) {
        return Err(Rejection::LowPrice);
    }
    Ok(avg_dollar_volume)
}

/// min(SMA(close), lowest low) over the configured bars, times the buffer.
pub fn structural_stop(series: &BarSeries, config: &ScanConfig) -> f64 {
    let stop = &config.stop;
    let sma_now = last(&sma(&series.close, stop.sma_len));
    let k = stop.low_lookback.min(series.len());
    let lowest = series.low[series.len() - k..]
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    sma_now.min(lowest) * stop.buffer
}

/// The best anchor for a long entry (reference §3.4), or None when no anchor qualifies.
pub fn best_anchor(
    series: &BarSeries,
    trend_score: f64,
    config: &ScanConfig,
) -> Option<AnchorChoice> {
    let sel = &config.selection;
    let n = series.len();
    if n < 2 {
        return None;
    }
    let price = series.close[n - 1];
    let prev = series.close[n - 2];
    let candidates = anchor_candidates(series, &config.anchors, config.compat.predecessor);
    let mut best: Option<AnchorChoice> = None;
    for candidate in candidates {
        let avwap = anchored_vwap(
            &series.high,
            &series.low,
            &series.close,
            &series.volume,
            candidate.index,
        );
        let values: Vec<f64> = avwap.into_iter().filter(|v| !v.is_nan()).collect();
        if values.len() < sel.avwap_slope_lookback + 1 {
            continue;
        }
        let av_now = last(&values);
        let slope = slope_last(&values, sel.avwap_slope_lookback);
        if slope.is_nan() {
            continue;
        }
        // As in the predecessor: yesterday's close against today's AVWAP.
        let reclaim = prev <= av_now && price > av_now;
        let dist_pct = (price - av_now) / av_now * 100.0;
        let slope_ok = slope >= sel.min_avwap_slope || (reclaim && sel.slope_bypass_on_reclaim);
        if !(price > av_now && slope_ok && dist_pct <= sel.max_dist_pct) {
            continue;
        }
        let mut score =
            f64::from(candidate.priority) + sel.trend_score_weight * trend_score - dist_pct.abs();
        if (sel.near_bonus_min_dist_pct..=sel.near_bonus_max_dist_pct).contains(&dist_pct) {
            score += sel.near_bonus;
        }
        if reclaim {
            score += sel.reclaim_bonus;
        }
        // Strictly greater: ties keep the earlier, higher-priority anchor.
        if best.is_none_or(|b| score > b.score) {
            best = Some(AnchorChoice {
                kind: candidate.kind,
                index: candidate.index,
                avwap: av_now,
                slope,
                dist_pct,
                reclaim,
                score,
            });
        }
    }
    best
}

/// Rank: Tier A first, then TrendScore descending; ties go to the higher average dollar
/// volume (the predecessor's snapshot order), then the symbol, so the order never depends on
/// the order symbols were read. Then cap.
pub fn rank_and_cap(mut candidates: Vec<Candidate>, cap: usize) -> Vec<Candidate> {
    candidates.sort_by(|a, b| {
        a.tier
            .cmp(&b.tier)
            .then(b.trend_score.total_cmp(&a.trend_score))
            .then(b.avg_dollar_volume.total_cmp(&a.avg_dollar_volume))
            .then(a.symbol.cmp(&b.symbol))
    });
    candidates.truncate(cap);
    candidates
}

#[cfg(test)]
mod tests;
