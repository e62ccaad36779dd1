//! Setup-context labels written to the watchlist (reference §4.5): control, reclaim and
//! acceptance against the rolling VWAP20 and against the chosen anchor's AVWAP, extension,
//! gap reset and structure. Pure functions of the bars.

use crate::market_data::BarSeries;
use crate::scan::anchors::{anchored_vwap, most_recent_gap, rolling_vwap};
use crate::scan::config::{ContextConfig, ScanConfig};
use crate::scan::indicators::{slope_last, sma};
use crate::watchlist::{AnchorKind, ControlLabel, CrossLabel, ExtensionLabel, GapResetLabel};

#[derive(Debug, Clone, PartialEq)]
pub struct SetupContext {
    pub vwap_control: ControlLabel,
    pub vwap_reclaim: CrossLabel,
    pub vwap_acceptance: CrossLabel,
    pub vwap_dist_pct: Option<f64>,
    pub avwap_control: ControlLabel,
    pub avwap_reclaim: CrossLabel,
    pub avwap_acceptance: CrossLabel,
    pub avwap_dist_pct: Option<f64>,
    pub extension: ExtensionLabel,
    pub gap_reset: GapResetLabel,
    pub structure: ControlLabel,
}

/// "bullish" above ref·(1+buffer), "bearish" below ref·(1−buffer), else "neutral".
pub fn control(close: f64, reference: f64, buffer_pct: f64) -> ControlLabel {
    if reference.is_nan() || close.is_nan() {
        return ControlLabel::Unknown;
    }
    let buffer = buffer_pct / 100.0;
    if close > reference * (1.0 + buffer) {
        ControlLabel::Bullish
    } else if close < reference * (1.0 - buffer) {
        ControlLabel::Bearish
    } else {
        ControlLabel::Neutral
    }
}

/// A cross from one side of the reference to the other between the last two bars.
pub fn reclaim(prev_close: f64, close: f64, prev_ref: f64, reference: f64) -> CrossLabel {
    // Every comparison with NaN is false, so any missing value gives "none".
    if prev_close <= prev_ref && close > reference {
        CrossLabel::Bullish
    } else if prev_close >= prev_ref && close < reference {
        CrossLabel::Bearish
    } else {
        CrossLabel::None
    }
}

/// The last `bars` closes all strictly above (or all strictly below) their references.
pub fn acceptance(closes: &[f64], references: &[f64], bars: usize) -> CrossLabel {
    let n = closes.len().min(references.len());
    if bars == 0 || n < bars {
        return CrossLabel::None;
    }
    let pairs = || closes[n - bars..n].iter().zip(&references[n - bars..n]);
    if pairs().all(|(c, r)| c > r) {
        CrossLabel::Bullish
    } else if pairs().all(|(c, r)| c < r) {
        CrossLabel::Bearish
    } else {
        CrossLabel::None
    }
}

pub fn dist_pct(close: f64, reference: f64) -> Option<f64> {
    let d = (close - reference) / reference * 100.0;
    d.is_finite().then_some(d)
}

pub fn extension(dist: Option<f64>, config: &ContextConfig) -> ExtensionLabel {
    match dist.map(f64::abs) {
        None => ExtensionLabel::Unknown,
        Some(d) if d <= config.balanced_pct => ExtensionLabel::Balanced,
        Some(d) if d >= config.extended_pct => ExtensionLabel::Extended,
        Some(_) => ExtensionLabel::Moderate,
    }
}

fn at(values: &[f64], back: usize) -> f64 {
    values
        .len()
        .checked_sub(back + 1)
        .map_or(f64::NAN, |i| values[i])
}

/// All labels for a symbol whose chosen anchor is at `anchor_index` with AVWAP `avwap_now`.
pub fn setup_context(
    series: &BarSeries,
    _anchor: AnchorKind,
    anchor_index: usize,
    avwap_now: f64,
    config: &ScanConfig,
) -> SetupContext {
    let ctx = &config.context;
    let (high, low, close, volume) = (&series.high, &series.low, &series.close, &series.volume);
    let price = at(close, 0);
    let prev_close = at(close, 1);

    let vwap = rolling_vwap(high, low, close, volume, ctx.vwap_lookback);
    let vwap_now = at(&vwap, 0);
    let avwap = anchored_vwap(high, low, close, volume, anchor_index);

    // Reference bug kept only in compat mode: the percent value was passed as a fraction.
    let gap_fraction = if config.compat.predecessor {
        ctx.gap_reset_pct
    } else {
        ctx.gap_reset_pct / 100.0
    };
    let gap_reset = match most_recent_gap(&series.open, close, ctx.gap_reset_lookback, gap_fraction)
    {
        None => GapResetLabel::None,
        Some(i) if series.len() - 1 - i <= ctx.gap_reset_window => GapResetLabel::Recent,
        Some(_) => GapResetLabel::Stale,
    };

    let fast = at(&sma(close, ctx.structure_sma_fast), 0);
    let slow_series = sma(close, ctx.structure_sma_slow);
    let slow = at(&slow_series, 0);
    let slope = slope_last(&slow_series, ctx.structure_slope_lookback);
    let structure = if fast.is_nan() || slow.is_nan() || slope.is_nan() {
        ControlLabel::Unknown
    } else if fast > slow && slope > 0.0 {
        ControlLabel::Bullish
    } else if fast < slow && slope < 0.0 {
        ControlLabel::Bearish
    } else {
        ControlLabel::Neutral
    };

    let avwap_dist = dist_pct(price, avwap_now);
    SetupContext {
        vwap_control: control(price, vwap_now, ctx.control_buffer_pct),
        vwap_reclaim: reclaim(prev_close, price, at(&vwap, 1), vwap_now),
        vwap_acceptance: acceptance(close, &vwap, ctx.acceptance_bars),
        vwap_dist_pct: dist_pct(price, vwap_now),
        avwap_control: control(price, avwap_now, ctx.control_buffer_pct),
        avwap_reclaim: reclaim(prev_close, price, at(&avwap, 1), avwap_now),
        avwap_acceptance: acceptance(close, &avwap, ctx.acceptance_bars),
        avwap_dist_pct: avwap_dist,
        extension: extension(avwap_dist, ctx),
        gap_reset,
        structure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_uses_a_symmetric_percent_buffer() {
        assert_eq!(control(100.3, 100.0, 0.2), ControlLabel::Bullish);
        assert_eq!(control(100.2, 100.0, 0.2), ControlLabel::Neutral);
        assert_eq!(control(99.8, 100.0, 0.2), ControlLabel::Neutral);
        assert_eq!(control(99.7, 100.0, 0.2), ControlLabel::Bearish);
        assert_eq!(control(99.7, f64::NAN, 0.2), ControlLabel::Unknown);
    }

    #[test]
    fn reclaim_compares_each_close_with_its_own_reference() {
        assert_eq!(reclaim(49.0, 51.0, 50.0, 50.5), CrossLabel::Bullish);
        assert_eq!(reclaim(50.0, 50.6, 50.0, 50.5), CrossLabel::Bullish);
        assert_eq!(reclaim(51.0, 49.0, 50.0, 50.5), CrossLabel::Bearish);
        assert_eq!(reclaim(51.0, 52.0, 50.0, 50.5), CrossLabel::None);
        assert_eq!(reclaim(49.0, 51.0, f64::NAN, 50.5), CrossLabel::None);
    }

    #[test]
    fn acceptance_needs_every_one_of_the_last_bars() {
        let closes = [10.0, 11.0, 12.0, 13.0];
        assert_eq!(
            acceptance(&closes, &[20.0, 10.5, 11.5, 12.5], 3),
            CrossLabel::Bullish
        );
        assert_eq!(
            acceptance(&closes, &[0.0, 11.0, 11.5, 12.5], 3),
            CrossLabel::None
        );
        assert_eq!(
            acceptance(&closes, &[0.0, 12.0, 13.0, 14.0], 3),
            CrossLabel::Bearish
        );
        assert_eq!(
            acceptance(&closes, &[f64::NAN, f64::NAN, 1.0, 1.0], 3),
            CrossLabel::None
        );
        assert_eq!(acceptance(&closes[..2], &[1.0, 1.0], 3), CrossLabel::None);
    }

    #[test]
    fn extension_thresholds_are_inclusive() {
        let ctx = ContextConfig::default();
        assert_eq!(extension(Some(1.0), &ctx), ExtensionLabel::Balanced);
        assert_eq!(extension(Some(-0.5), &ctx), ExtensionLabel::Balanced);
        assert_eq!(extension(Some(1.01), &ctx), ExtensionLabel::Moderate);
        assert_eq!(extension(Some(6.0), &ctx), ExtensionLabel::Extended);
        assert_eq!(extension(None, &ctx), ExtensionLabel::Unknown);
    }

    #[test]
    fn dist_pct_is_none_without_a_reference() {
        let d = dist_pct(101.0, 100.0).unwrap();
        assert!((d - 1.0).abs() < 1e-12, "{d}");
        assert_eq!(dist_pct(101.0, f64::NAN), None);
        assert_eq!(dist_pct(101.0, 0.0), None);
    }
}
