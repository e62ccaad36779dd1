//! Anchors and anchored VWAP: which bars the scanner anchors at (YTD, gap, volume breakout,
//! MTD, 20-bar swing low and high; reference upstream-scanner.md §3.3 with SPEC §3.6), the
//! AVWAP from an anchor (§3.2), TradingView's volume-weighted σ band at the last bar
//! (anchors.md §5) and the rolling VWAP used by the setup-context labels (§4.5).
//!
//! Pure functions over the validated columns of a [`BarSeries`]; no I/O. No function
//! panics: empty input gives no anchors / an empty series, mismatched column lengths give
//! `None` / an empty `Vec` / NaN, and an anchor past the end gives an all-NaN series.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::calendar::session_on_or_after;
use crate::market_data::BarSeries;
use crate::scan::indicators::{rolling_sum, sma};
use crate::watchlist::AnchorKind;

/// Anchor detection parameters and priorities, defaulting to the predecessor's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnchorParams {
    /// Bars searched for the gap and volume-breakout anchors.
    pub lookback: usize,
    /// Bars searched for the swing low and swing high.
    pub swing_lookback: usize,
    /// Minimum |open − previous close| / previous close of a gap (0.04 = 4%).
    pub gap_fraction: f64,
    /// A breakout bar's volume must exceed this multiple of its volume SMA.
    pub volume_spike_mult: f64,
    /// Length of that volume SMA (it includes the bar itself).
    pub volume_sma_len: usize,
    /// A breakout bar must close above this fraction of its high−low range.
    pub breakout_close_location: f64,
    /// A breakout bar must close above the highest high of this many previous bars.
    pub breakout_high_lookback: usize,
    pub ytd_priority: u32,
    pub gap_priority: u32,
    pub volume_breakout_priority: u32,
    pub mtd_priority: u32,
    pub swing_low_priority: u32,
    pub swing_high_priority: u32,
}

impl Default for AnchorParams {
    fn default() -> Self {
        Self {
            lookback: 60,
            swing_lookback: 20,
            gap_fraction: 0.04,
            volume_spike_mult: 1.8,
            volume_sma_len: 20,
            breakout_close_location: 0.7,
            breakout_high_lookback: 5,
            ytd_priority: 100,
            gap_priority: 90,
            volume_breakout_priority: 80,
            mtd_priority: 70,
            swing_low_priority: 50,
            swing_high_priority: 40,
        }
    }
}

/// One anchor: what it is, its priority and the bar it is at (index into the series).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchorCandidate {
    pub kind: AnchorKind,
    pub priority: u32,
    pub index: usize,
}

/// The anchors of `series`, one per bar, sorted by priority descending.
///
/// - YTD / MTD: the first bar on or after January 1 / the 1st of the month of the last bar.
///   Only when the data really reaches back to that period start: there is a bar before it,
///   or the series' first bar is the period's first NYSE session. Otherwise (or if the
///   calendar cannot answer) the anchor is absent rather than silently moved to a later bar.
/// - With `calendar_anchors_at_first_bar` (predecessor compatibility) both are at bar 0,
///   reproducing the predecessor's bug (reference §3.3).
/// - Gap, volume breakout, swing low and swing high as in [`most_recent_gap`],
///   [`most_recent_volume_breakout`] and [`swing_low`]/[`swing_high`].
///
/// Candidates at the same bar keep the highest priority (on equal priorities the earlier
/// of YTD, MTD, gap, breakout, swing low, swing high); the sort is stable.
pub fn anchor_candidates(
    series: &BarSeries,
    params: &AnchorParams,
    calendar_anchors_at_first_bar: bool,
) -> Vec<AnchorCandidate> {
    let Some(last_date) = series.last_date() else {
        return Vec::new();
    };
    let (ytd, mtd) = if calendar_anchors_at_first_bar {
        (Some(0), Some(0))
    } else {
        let year_start = NaiveDate::from_ymd_opt(last_date.year(), 1, 1);
        let month_start = NaiveDate::from_ymd_opt(last_date.year(), last_date.month(), 1);
        (
            year_start.and_then(|d| period_start_index(&series.dates, d)),
            month_start.and_then(|d| period_start_index(&series.dates, d)),
        )
    };
    let found = [
        (AnchorKind::Ytd, params.ytd_priority, ytd),
        (AnchorKind::Mtd, params.mtd_priority, mtd),
        (
            AnchorKind::Gap,
            params.gap_priority,
            most_recent_gap(
                &series.open,
                &series.close,
                params.lookback,
                params.gap_fraction,
            ),
        ),
        (
            AnchorKind::VolumeBreakout,
            params.volume_breakout_priority,
            most_recent_volume_breakout(series, params),
        ),
        (
            AnchorKind::SwingLow20,
            params.swing_low_priority,
            swing_low(&series.low, params.swing_lookback),
        ),
        (
            AnchorKind::SwingHigh20,
            params.swing_high_priority,
            swing_high(&series.high, params.swing_lookback),
        ),
    ];
    let mut out: Vec<AnchorCandidate> = Vec::with_capacity(found.len());
    for (kind, priority, index) in found {
        let Some(index) = index else { continue };
        match out.iter_mut().find(|c| c.index == index) {
            Some(existing) if priority > existing.priority => {
                *existing = AnchorCandidate {
                    kind,
                    priority,
                    index,
                };
            }
            Some(_) => {}
            None => out.push(AnchorCandidate {
                kind,
                priority,
                index,
            }),
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.priority));
    out
}

/// The first bar on or after `start`, if the data covers `start` (see [`anchor_candidates`]).
fn period_start_index(dates: &[NaiveDate], start: NaiveDate) -> Option<usize> {
    let index = dates.partition_point(|d| *d < start);
    let first_in_period = *dates.get(index)?;
    if index > 0 {
        return Some(index);
    }
    match session_on_or_after(start) {
        Ok(first_session) if first_session == first_in_period => Some(index),
        _ => None,
    }
}

/// The most recent bar among the last `lookback` whose open gapped from the previous close by
/// at least `gap_fraction`, up or down: `|O − C_prev| / C_prev ≥ gap_fraction`. The previous
/// close is taken inside the window, so the window's first bar cannot qualify; a zero
/// previous close cannot qualify. `None` if no bar qualifies or the lengths differ.
pub fn most_recent_gap(
    open: &[f64],
    close: &[f64],
    lookback: usize,
    gap_fraction: f64,
) -> Option<usize> {
    if open.len() != close.len() {
        return None;
    }
    let start = open.len().saturating_sub(lookback);
    ((start + 1)..open.len()).rev().find(|&i| {
        let prev = close[i - 1];
        prev != 0.0 && (open[i] - prev).abs() / prev >= gap_fraction
    })
}

/// The most recent bar among the last `params.lookback` meeting all of, computed inside that
/// window:
/// - (a) `V > volume_spike_mult × SMA(V, volume_sma_len)`, the SMA including the bar itself
///   (so the window's first `volume_sma_len − 1` bars cannot qualify);
/// - (b) `(C − L)/(H − L) > breakout_close_location`, false when `H = L`;
/// - (c) `C >` the highest high of the `breakout_high_lookback` previous bars of the window
///   (false with a lookback of 0, as pandas' empty rolling max is NaN).
pub fn most_recent_volume_breakout(series: &BarSeries, params: &AnchorParams) -> Option<usize> {
    let n = series.len();
    let (open, high, low, close, volume) = (
        &series.open,
        &series.high,
        &series.low,
        &series.close,
        &series.volume,
    );
    if [open.len(), high.len(), low.len(), close.len(), volume.len()]
        .iter()
        .any(|&len| len != n)
    {
        return None;
    }
    let start = n.saturating_sub(params.lookback);
    let volume_sma = sma(&volume[start..], params.volume_sma_len);
    let hl = params.breakout_high_lookback;
    (start..n).rev().find(|&i| {
        let w = i - start;
        let spike = volume[i] > params.volume_spike_mult * volume_sma[w];
        let range = high[i] - low[i];
        let strong_close =
            range != 0.0 && (close[i] - low[i]) / range > params.breakout_close_location;
        let above_prior_highs = hl > 0
            && w >= hl
            && high[i - hl..i]
                .iter()
                .try_fold(f64::NEG_INFINITY, |m, &h| (!h.is_nan()).then_some(m.max(h)))
                .is_some_and(|prior_max| close[i] > prior_max);
        spike && strong_close && above_prior_highs
    })
}

/// The bar with the lowest low among the last `lookback`, the first on ties; NaN lows are
/// skipped. `None` if there is no such bar.
pub fn swing_low(low: &[f64], lookback: usize) -> Option<usize> {
    extreme_index(low, lookback, |candidate, best| candidate < best)
}

/// The bar with the highest high among the last `lookback`, the first on ties; NaN highs are
/// skipped. `None` if there is no such bar.
pub fn swing_high(high: &[f64], lookback: usize) -> Option<usize> {
    extreme_index(high, lookback, |candidate, best| candidate > best)
}

fn extreme_index(x: &[f64], lookback: usize, better: impl Fn(f64, f64) -> bool) -> Option<usize> {
    let start = x.len().saturating_sub(lookback);
    let mut best: Option<usize> = None;
    for (i, &value) in x.iter().enumerate().skip(start) {
        if value.is_nan() {
            continue;
        }
        // Strict comparison keeps the first occurrence on ties (pandas idxmin/idxmax).
        if best.is_none_or(|b| better(value, x[b])) {
            best = Some(i);
        }
    }
    best
}

fn typical_price(high: f64, low: f64, close: f64) -> f64 {
    (high + low + close) / 3.0
}

fn same_len(high: &[f64], low: &[f64], close: &[f64], volume: &[f64]) -> bool {
    high.len() == low.len() && high.len() == close.len() && high.len() == volume.len()
}

/// Anchored VWAP with typical price `TP = (H+L+C)/3`:
/// `AVWAP[t] = Σ_{i=anchor..t} TP_i·V_i / Σ_{i=anchor..t} V_i`, the anchor bar included.
/// NaN before the anchor and while the cumulative volume is 0. An anchor past the end gives
/// all NaN; mismatched lengths give an empty `Vec`. NaN inputs follow pandas' `cumsum`
/// (skipped in later sums, NaN at their own bar); validated bars have none.
pub fn anchored_vwap(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    volume: &[f64],
    anchor: usize,
) -> Vec<f64> {
    if !same_len(high, low, close, volume) {
        return Vec::new();
    }
    let len = high.len();
    let mut out = vec![f64::NAN; len];
    let (mut sum_pv, mut sum_v) = (0.0, 0.0);
    for i in anchor..len {
        let pv = typical_price(high[i], low[i], close[i]) * volume[i];
        let cum_pv = if pv.is_nan() {
            f64::NAN
        } else {
            sum_pv += pv;
            sum_pv
        };
        let cum_v = if volume[i].is_nan() {
            f64::NAN
        } else {
            sum_v += volume[i];
            sum_v
        };
        out[i] = if cum_v == 0.0 {
            f64::NAN
        } else {
            cum_pv / cum_v
        };
    }
    out
}

/// The AVWAP and its volume-weighted σ at the last bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AvwapBands {
    pub vwap: f64,
    /// Volume-weighted population standard deviation of TP around `vwap` since the anchor;
    /// bands are `vwap ± k·sigma`.
    pub sigma: f64,
}

/// The AVWAP at the last bar (equal to the last value of [`anchored_vwap`]) and TradingView's
/// band σ, `sqrt(max(0, Σ TP²·V / ΣV − vwap²))`.
///
/// σ is computed in the algebraically identical centred form `sqrt(Σ V·(TP − vwap)² / ΣV)`
/// (a second pass over the bars), which avoids the cancellation of the raw-moment formula
/// when σ ≪ price. Both fields are NaN when the anchor is past the end, the lengths differ,
/// the total volume is 0, or any price or volume from the anchor on is NaN.
pub fn avwap_with_sigma_last(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    volume: &[f64],
    anchor: usize,
) -> AvwapBands {
    let unavailable = AvwapBands {
        vwap: f64::NAN,
        sigma: f64::NAN,
    };
    if !same_len(high, low, close, volume) || anchor >= high.len() {
        return unavailable;
    }
    let range = anchor..high.len();
    let tp: Vec<f64> = range
        .clone()
        .map(|i| typical_price(high[i], low[i], close[i]))
        .collect();
    let vol = &volume[range];
    if tp.iter().chain(vol).any(|v| v.is_nan()) {
        return unavailable;
    }
    // Same summation order as `anchored_vwap`, so the two agree bit for bit.
    let (mut sum_pv, mut sum_v) = (0.0, 0.0);
    for (p, v) in tp.iter().zip(vol) {
        sum_pv += p * v;
        sum_v += v;
    }
    if sum_v == 0.0 {
        return unavailable;
    }
    let vwap = sum_pv / sum_v;
    let sum_sq: f64 = tp
        .iter()
        .zip(vol)
        .map(|(p, v)| v * (p - vwap) * (p - vwap))
        .sum();
    AvwapBands {
        vwap,
        sigma: (sum_sq / sum_v).max(0.0).sqrt(),
    }
}

/// Rolling VWAP over `n` bars: `Σn TP·V / Σn V` (pandas rolling sums), NaN until `n` bars
/// and where the window's volume sum is 0. Mismatched lengths give an empty `Vec`.
pub fn rolling_vwap(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    volume: &[f64],
    n: usize,
) -> Vec<f64> {
    if !same_len(high, low, close, volume) {
        return Vec::new();
    }
    let pv: Vec<f64> = (0..high.len())
        .map(|i| typical_price(high[i], low[i], close[i]) * volume[i])
        .collect();
    let sum_pv = rolling_sum(&pv, n);
    let sum_v = rolling_sum(volume, n);
    sum_pv
        .iter()
        .zip(&sum_v)
        .map(|(pv, v)| if *v == 0.0 { f64::NAN } else { pv / v })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market_data::DailyBar;
    use proptest::prelude::*;

    const NAN: f64 = f64::NAN;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn assert_close(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            if e.is_nan() {
                assert!(a.is_nan(), "index {i}: expected NaN, got {a} ({actual:?})");
            } else {
                assert!(
                    (a - e).abs() <= 1e-12 * e.abs().max(1.0),
                    "index {i}: {a} vs {e}"
                );
            }
        }
    }

    /// Sessions of 2024 from `first` on, skipping weekends (holidays do not matter here
    /// except where a test says so).
    fn weekdays_from(first: NaiveDate, n: usize) -> Vec<NaiveDate> {
        first
            .iter_days()
            .filter(|d| d.weekday().num_days_from_monday() < 5)
            .take(n)
            .collect()
    }

    /// A quiet $30 stock: small ranges, flat volume, no gaps, no breakouts; the lows and
    /// highs are unique so swing anchors are predictable.
    fn quiet_series(dates: &[NaiveDate]) -> BarSeries {
        let mut s = BarSeries::new("TEST");
        for (i, &d) in dates.iter().enumerate() {
            let wiggle = ((i * 7) % 11) as f64 * 0.01;
            let close = 30.0 + wiggle;
            s.push(DailyBar {
                date: d,
                open: close - 0.02,
                high: close + 0.15,
                low: close - 0.15,
                close,
                volume: 1_000_000.0,
            });
        }
        s
    }

    fn kinds(c: &[AnchorCandidate]) -> Vec<(&'static str, usize)> {
        c.iter().map(|a| (a.kind.as_str(), a.index)).collect()
    }

    fn find(c: &[AnchorCandidate], kind: AnchorKind) -> Option<usize> {
        c.iter().find(|a| a.kind == kind).map(|a| a.index)
    }

    #[test]
    fn gap_up_and_down_most_recent_wins() {
        // Bar 2 gaps up 6%, bar 4 gaps down 1.2/26 = 4.6%.
        let open = [25.0, 25.1, 26.5, 26.0, 24.8];
        let close = [25.0, 25.0, 26.0, 26.0, 25.2];
        assert_eq!(most_recent_gap(&open, &close, 60, 0.04), Some(4));
        assert_eq!(most_recent_gap(&open[..4], &close[..4], 60, 0.04), Some(2));
        assert_eq!(most_recent_gap(&open, &close, 60, 0.05), Some(2));
        assert_eq!(most_recent_gap(&open, &close, 60, 0.061), None);
    }

    #[test]
    fn gap_window_first_bar_cannot_qualify() {
        let open = [25.0, 25.1, 26.5, 26.0, 26.1];
        let close = [25.0, 25.0, 26.0, 26.0, 26.0];
        // Window of the last 3 bars starts at bar 2, whose previous close is outside it.
        assert_eq!(most_recent_gap(&open, &close, 3, 0.04), None);
        assert_eq!(most_recent_gap(&open, &close, 4, 0.04), Some(2));
        assert_eq!(most_recent_gap(&open, &close, 0, 0.04), None);
        assert_eq!(most_recent_gap(&[], &[], 60, 0.04), None);
        assert_eq!(most_recent_gap(&open, &close[..3], 60, 0.04), None);
        // A zero previous close is treated as NaN, never as an infinite gap.
        assert_eq!(most_recent_gap(&[1.0, 1.0], &[0.0, 1.0], 60, 0.04), None);
    }

    /// 25 quiet bars followed by a breakout bar at index 25 (volume 2× the others).
    fn breakout_series() -> BarSeries {
        let mut s = quiet_series(&weekdays_from(date(2024, 3, 1), 25));
        s.push(DailyBar {
            date: date(2024, 4, 5),
            open: 30.2,
            high: 31.0,
            low: 30.0,
            close: 30.9,
            volume: 2_500_000.0,
        });
        s
    }

    #[test]
    fn volume_breakout_all_conditions() {
        let s = breakout_series();
        let p = AnchorParams::default();
        // SMA20 including the bar: (19·1M + 2.5M)/20 = 1.075M; 1.8× = 1.935M < 2.5M.
        assert_eq!(most_recent_volume_breakout(&s, &p), Some(25));
    }

    #[test]
    fn volume_breakout_each_condition_failing_alone() {
        let p = AnchorParams::default();
        // (a) 1.85M: SMA20 = 1.0425M, threshold 1.8765M, fails. 1.9M: SMA20 = 1.045M,
        // threshold 1.881M, passes.
        let mut s = breakout_series();
        s.volume[25] = 1_850_000.0;
        assert_eq!(most_recent_volume_breakout(&s, &p), None);
        s.volume[25] = 1_900_000.0;
        assert_eq!(most_recent_volume_breakout(&s, &p), Some(25));
        // (b) close location exactly 0.7 is not > 0.7: close 30.7 on range 30..31.
        let mut s = breakout_series();
        s.close[25] = 30.7;
        assert_eq!(most_recent_volume_breakout(&s, &p), None);
        s.close[25] = 30.71;
        assert_eq!(most_recent_volume_breakout(&s, &p), Some(25));
        // (b) H = L is NaN, false.
        let mut s = breakout_series();
        s.high[25] = 30.9;
        s.low[25] = 30.9;
        assert_eq!(most_recent_volume_breakout(&s, &p), None);
        // (c) close not above the prior 5 highs: raise one of them to the close.
        let mut s = breakout_series();
        s.high[22] = 30.9;
        assert_eq!(most_recent_volume_breakout(&s, &p), None);
        s.high[22] = 30.89;
        assert_eq!(most_recent_volume_breakout(&s, &p), Some(25));
        // A high 6 bars back is outside the 5-bar lookback.
        let mut s = breakout_series();
        s.high[19] = 35.0;
        assert_eq!(most_recent_volume_breakout(&s, &p), Some(25));
    }

    #[test]
    fn volume_breakout_needs_sma_inside_window() {
        let s = breakout_series();
        // A 20-bar window starting at bar 6: the breakout (window position 19) has a full
        // SMA20 inside it; a 19-bar window does not.
        let p = AnchorParams {
            lookback: 20,
            ..AnchorParams::default()
        };
        assert_eq!(most_recent_volume_breakout(&s, &p), Some(25));
        let p = AnchorParams {
            lookback: 19,
            ..AnchorParams::default()
        };
        assert_eq!(most_recent_volume_breakout(&s, &p), None);
        let p = AnchorParams {
            breakout_high_lookback: 0,
            ..AnchorParams::default()
        };
        assert_eq!(most_recent_volume_breakout(&s, &p), None);
        assert_eq!(most_recent_volume_breakout(&BarSeries::new("X"), &p), None);
    }

    #[test]
    fn swing_extremes_first_occurrence_on_ties() {
        let low = [20.0, 19.0, 19.5, 19.0, 21.0];
        assert_eq!(swing_low(&low, 20), Some(1));
        assert_eq!(swing_low(&low, 3), Some(3));
        let high = [22.0, 23.0, 23.0, NAN, 21.0];
        assert_eq!(swing_high(&high, 20), Some(1));
        assert_eq!(swing_high(&high, 2), Some(4));
        assert_eq!(swing_high(&[NAN, NAN], 20), None);
        assert_eq!(swing_low(&low, 0), None);
        assert_eq!(swing_low(&[], 20), None);
    }

    #[test]
    fn ytd_and_mtd_when_data_covers_period_start() {
        // 2023-12-01 .. 2024-02-xx; the last bar is in February 2024.
        let mut dates = weekdays_from(date(2023, 12, 1), 60);
        // Jan 1 2024 is a holiday; the real first session is Jan 2.
        dates.retain(|d| *d != date(2024, 1, 1) && *d != date(2023, 12, 25));
        let s = quiet_series(&dates);
        let c = anchor_candidates(&s, &AnchorParams::default(), false);
        let ytd = find(&c, AnchorKind::Ytd).unwrap();
        assert_eq!(s.dates[ytd], date(2024, 1, 2));
        let mtd = find(&c, AnchorKind::Mtd).unwrap();
        assert_eq!(s.dates[mtd], date(2024, 2, 1));
        assert_eq!(c[0].kind, AnchorKind::Ytd);
    }

    #[test]
    fn ytd_at_first_bar_when_it_is_the_first_session() {
        let dates = weekdays_from(date(2024, 1, 2), 30);
        let s = quiet_series(&dates);
        let c = anchor_candidates(&s, &AnchorParams::default(), false);
        assert_eq!(find(&c, AnchorKind::Ytd), Some(0));
    }

    #[test]
    fn ytd_unavailable_when_data_starts_late() {
        // Data starts Jan 3 2024, after the year's first session (Jan 2): YTD unknown.
        let dates = weekdays_from(date(2024, 1, 3), 30);
        let s = quiet_series(&dates);
        let c = anchor_candidates(&s, &AnchorParams::default(), false);
        assert_eq!(find(&c, AnchorKind::Ytd), None);
        // MTD is February's first session, which the data covers.
        let mtd = find(&c, AnchorKind::Mtd).unwrap();
        assert_eq!(s.dates[mtd], date(2024, 2, 1));
        // Predecessor compatibility: both at bar 0; MTD deduplicated away by YTD.
        let c = anchor_candidates(&s, &AnchorParams::default(), true);
        assert_eq!(find(&c, AnchorKind::Ytd), Some(0));
        assert_eq!(find(&c, AnchorKind::Mtd), None);
    }

    #[test]
    fn mtd_unavailable_when_month_start_not_covered() {
        // Feb 2024 data starting Feb 2 (Feb 1 was a session): MTD and YTD unknown.
        let dates = weekdays_from(date(2024, 2, 2), 15);
        let s = quiet_series(&dates);
        let c = anchor_candidates(&s, &AnchorParams::default(), false);
        assert_eq!(find(&c, AnchorKind::Mtd), None);
        assert_eq!(find(&c, AnchorKind::Ytd), None);
        // Outside the calendar's range the anchor is unavailable, not guessed.
        let dates = weekdays_from(date(1999, 3, 2), 10);
        let s = quiet_series(&dates);
        let c = anchor_candidates(&s, &AnchorParams::default(), false);
        assert_eq!(find(&c, AnchorKind::Mtd), None);
    }

    #[test]
    fn dedupe_keeps_highest_priority_and_sorts() {
        // Quiet bars from the first session of March: YTD unavailable (data starts in
        // March), MTD at bar 0. Make bar 0 the swing low and swing high too by widening it.
        let dates = weekdays_from(date(2024, 3, 1), 12);
        let mut s = quiet_series(&dates);
        s.low[0] = 29.0;
        s.high[0] = 31.0;
        let c = anchor_candidates(&s, &AnchorParams::default(), false);
        assert_eq!(kinds(&c), vec![("MTD", 0)]);
        // Swing high elsewhere survives, sorted after MTD.
        s.high[5] = 32.0;
        let c = anchor_candidates(&s, &AnchorParams::default(), false);
        assert_eq!(kinds(&c), vec![("MTD", 0), ("SwingHigh20", 5)]);
        // A gap at bar 5 outranks the swing high there.
        s.open[5] = s.close[4] * 1.05;
        let c = anchor_candidates(&s, &AnchorParams::default(), false);
        assert_eq!(kinds(&c), vec![("Gap4%", 5), ("MTD", 0)]);
        // Custom priorities reorder.
        let p = AnchorParams {
            swing_low_priority: 95,
            ..AnchorParams::default()
        };
        let c = anchor_candidates(&s, &p, false);
        assert_eq!(kinds(&c), vec![("SwingLow20", 0), ("Gap4%", 5)]);
        assert!(anchor_candidates(&BarSeries::new("X"), &p, false).is_empty());
        assert!(anchor_candidates(&BarSeries::new("X"), &p, true).is_empty());
    }

    #[test]
    fn anchor_candidates_all_six() {
        // Dec 27 2023 .. Feb 2 2024 without Jan 1: bars 0–2 in December, Jan 2 is bar 3,
        // Feb 1 is bar 25, Feb 2 (the last) is bar 26.
        let mut dates = weekdays_from(date(2023, 12, 27), 28);
        dates.retain(|d| *d != date(2024, 1, 1));
        let mut s = quiet_series(&dates);
        assert_eq!(
            (s.len(), s.dates[3], s.dates[25]),
            (27, date(2024, 1, 2), date(2024, 2, 1))
        );
        s.open[10] = s.close[9] * 0.95;
        s.low[12] = 29.0;
        s.high[8] = 33.0;
        s.open[26] = 30.2;
        s.high[26] = 31.0;
        s.low[26] = 30.0;
        s.close[26] = 30.9;
        s.volume[26] = 2_500_000.0;
        let c = anchor_candidates(&s, &AnchorParams::default(), false);
        assert_eq!(
            kinds(&c),
            vec![
                ("YTD", 3),
                ("Gap4%", 10),
                ("VolBreakout", 26),
                ("MTD", 25),
                ("SwingLow20", 12),
                ("SwingHigh20", 8),
            ]
        );
        let priorities: Vec<u32> = c.iter().map(|a| a.priority).collect();
        assert_eq!(priorities, vec![100, 90, 80, 70, 50, 40]);
        // Compat mode: YTD at bar 0; MTD shares it and is dropped.
        let c = anchor_candidates(&s, &AnchorParams::default(), true);
        assert_eq!(
            kinds(&c),
            vec![
                ("YTD", 0),
                ("Gap4%", 10),
                ("VolBreakout", 26),
                ("SwingLow20", 12),
                ("SwingHigh20", 8),
            ]
        );
    }

    #[test]
    fn anchored_vwap_hand_computed() {
        let h = [21.0, 22.0, 23.0];
        let l = [19.0, 20.0, 21.0];
        let c = [20.0, 21.0, 22.0];
        let v = [100.0, 300.0, 100.0];
        // TP = 20, 21, 22.
        assert_close(&anchored_vwap(&h, &l, &c, &v, 0), &[20.0, 20.75, 21.0]);
        assert_close(&anchored_vwap(&h, &l, &c, &v, 1), &[NAN, 21.0, 21.25]);
        assert_close(&anchored_vwap(&h, &l, &c, &v, 3), &[NAN, NAN, NAN]);
        assert!(anchored_vwap(&h, &l, &c, &v[..2], 0).is_empty());
        assert!(anchored_vwap(&[], &[], &[], &[], 0).is_empty());
    }

    #[test]
    fn anchored_vwap_zero_volume() {
        let h = [21.0, 22.0, 23.0, 24.0];
        let l = [19.0, 20.0, 21.0, 22.0];
        let c = [20.0, 21.0, 22.0, 23.0];
        let v = [0.0, 0.0, 200.0, 0.0];
        assert_close(&anchored_vwap(&h, &l, &c, &v, 0), &[NAN, NAN, 22.0, 22.0]);
        let b = avwap_with_sigma_last(&h, &l, &c, &v, 0);
        assert_close(&[b.vwap, b.sigma], &[22.0, 0.0]);
        let b = avwap_with_sigma_last(&h, &l, &c, &v, 3);
        assert!(b.vwap.is_nan() && b.sigma.is_nan());
    }

    #[test]
    fn anchored_vwap_nan_follows_pandas_cumsum() {
        let h = [21.0, NAN, 23.0];
        let l = [19.0, 20.0, 21.0];
        let c = [20.0, 21.0, 22.0];
        let v = [100.0, 300.0, 100.0];
        // Bar 1's TP·V is skipped in the numerator but its volume counts in the denominator.
        assert_close(
            &anchored_vwap(&h, &l, &c, &v, 0),
            &[20.0, NAN, 4200.0 / 500.0],
        );
        let b = avwap_with_sigma_last(&h, &l, &c, &v, 0);
        assert!(b.vwap.is_nan() && b.sigma.is_nan());
    }

    #[test]
    fn sigma_hand_computed() {
        let h = [21.0, 22.0, 23.0];
        let l = [19.0, 20.0, 21.0];
        let c = [20.0, 21.0, 22.0];
        let v = [100.0, 300.0, 100.0];
        // vwap 21; Σv(tp−21)² = 100 + 0 + 100 = 200 over 500 → σ = sqrt(0.4).
        let b = avwap_with_sigma_last(&h, &l, &c, &v, 0);
        assert_close(&[b.vwap, b.sigma], &[21.0, 0.4f64.sqrt()]);
        assert_eq!(b.vwap, *anchored_vwap(&h, &l, &c, &v, 0).last().unwrap());
        assert!(avwap_with_sigma_last(&h, &l, &c, &v[..1], 0).vwap.is_nan());
    }

    #[test]
    fn sigma_stable_when_much_smaller_than_price() {
        // A $5000 stock moving by ±0.0003 with huge volume: σ is 1e-4 of a cent relative to
        // price. TP alternates 5000 ± 0.0003 with equal volumes → σ = 0.0003 exactly.
        let n = 400;
        let tp: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { 5000.0003 } else { 4999.9997 })
            .collect();
        let v = vec![3.7e7; n];
        let b = avwap_with_sigma_last(&tp, &tp, &tp, &v, 0);
        assert!((b.vwap - 5000.0).abs() < 1e-9, "{}", b.vwap);
        assert!((b.sigma - 0.0003).abs() < 1e-9, "{}", b.sigma);
        // The raw-moment formula loses it entirely at this scale.
        let (sv, spv, sp2v) = tp
            .iter()
            .zip(&v)
            .fold((0.0, 0.0, 0.0), |(a, b, c), (p, w)| {
                (a + w, b + p * w, c + p * p * w)
            });
        let naive = (sp2v / sv - (spv / sv).powi(2)).max(0.0).sqrt();
        assert!((naive - 0.0003).abs() > 1e-5, "naive {naive}");
    }

    #[test]
    fn rolling_vwap_hand_computed() {
        let h = [21.0, 22.0, 23.0, 24.0];
        let l = [19.0, 20.0, 21.0, 22.0];
        let c = [20.0, 21.0, 22.0, 23.0];
        let v = [100.0, 300.0, 0.0, 0.0];
        // TP = 20, 21, 22, 23.
        assert_close(&rolling_vwap(&h, &l, &c, &v, 2), &[NAN, 20.75, 21.0, NAN]);
        assert_close(&rolling_vwap(&h, &l, &c, &v, 5), &[NAN; 4]);
        assert_close(&rolling_vwap(&h, &l, &c, &v, 0), &[NAN; 4]);
        assert!(rolling_vwap(&h, &l, &c, &v[..3], 2).is_empty());
    }

    #[test]
    fn anchor_params_serde() {
        let p: AnchorParams = toml::from_str("gap_fraction = 0.05\nmtd_priority = 75").unwrap();
        assert_eq!(p.gap_fraction, 0.05);
        assert_eq!(p.mtd_priority, 75);
        assert_eq!(p.lookback, 60);
        assert!(toml::from_str::<AnchorParams>("gap_pct = 0.05").is_err());
    }

    fn bars_strategy() -> impl Strategy<Value = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>)> {
        prop::collection::vec(
            (20.0f64..50.0, 0.0f64..2.0, 0.0f64..1.0, 0.0f64..5e6),
            1..60,
        )
        .prop_map(|bars| {
            let mut h = Vec::new();
            let mut l = Vec::new();
            let mut c = Vec::new();
            let mut v = Vec::new();
            for (low, range, loc, vol) in bars {
                l.push(low);
                h.push(low + range);
                c.push(low + range * loc);
                v.push(vol.floor());
            }
            (h, l, c, v)
        })
    }

    proptest! {
        #[test]
        fn avwap_within_window_range((h, l, c, v) in bars_strategy(), anchor_frac in 0.0f64..1.0) {
            let anchor = ((h.len() as f64) * anchor_frac) as usize;
            let av = anchored_vwap(&h, &l, &c, &v, anchor);
            for t in 0..h.len() {
                if t < anchor {
                    prop_assert!(av[t].is_nan());
                    continue;
                }
                if av[t].is_nan() {
                    prop_assert!(v[anchor..=t].iter().sum::<f64>() == 0.0);
                    continue;
                }
                let lo = l[anchor..=t].iter().copied().fold(f64::INFINITY, f64::min);
                let hi = h[anchor..=t].iter().copied().fold(f64::NEG_INFINITY, f64::max);
                prop_assert!(av[t] >= lo - 1e-9 && av[t] <= hi + 1e-9);
            }
            let b = avwap_with_sigma_last(&h, &l, &c, &v, anchor);
            let last = av[h.len() - 1];
            prop_assert!(b.vwap.to_bits() == last.to_bits() || (b.vwap.is_nan() && last.is_nan()));
            if !b.sigma.is_nan() {
                let lo = l[anchor..].iter().copied().fold(f64::INFINITY, f64::min);
                let hi = h[anchor..].iter().copied().fold(f64::NEG_INFINITY, f64::max);
                prop_assert!(b.sigma >= 0.0 && b.sigma <= (hi - lo) + 1e-9);
            }
        }

        #[test]
        fn rolling_vwap_equals_anchored_vwap_of_window((h, l, c, v) in bars_strategy(), n in 1usize..20) {
            let rv = rolling_vwap(&h, &l, &c, &v, n);
            let t = h.len() - 1;
            if h.len() >= n {
                let av = anchored_vwap(&h, &l, &c, &v, t + 1 - n)[t];
                if av.is_nan() {
                    prop_assert!(rv[t].is_nan());
                } else {
                    prop_assert!((rv[t] - av).abs() <= 1e-9 * av);
                }
            } else {
                prop_assert!(rv[t].is_nan());
            }
        }
    }
}
