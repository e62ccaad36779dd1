//! Pure indicator primitives of the scanner: SMA, rolling sum, true range, ATR, EWM, ADX,
//! rolling quantiles, the fractional slope, the TrendScore, weekly closes and floor pivots.
//!
//! This module owns the numeric semantics. Every function mirrors the pandas expression the
//! predecessor used (reference upstream-scanner.md §3.1) so that results agree with pandas to
//! ~1e-12 relative (checked by `tests/cli/indicators_golden.rs` against pandas output):
//! - `NaN` means "unavailable", exactly where pandas yields `NaN`.
//! - Rolling windows need all `n` values (`min_periods = n`); any `NaN` inside gives `NaN`.
//! - Rolling sums and means use pandas' compensated (Kahan) running sum, so they are O(len)
//!   and drift-free, and a window of identical values yields that value exactly.
//!
//! No function panics: an empty input gives an empty output (or `NaN` for a scalar), and
//! slices of mismatched lengths give an empty `Vec` (or `NaN`), because a caller passing
//! misaligned columns has a bug that must not be papered over by silently truncating.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// pandas' running-window sum state (`roll_sum`/`roll_mean` in `aggregations.pyx`): Kahan
/// compensation kept separately for additions and removals, a count of non-NaN values, and
/// the run length of identical trailing values, which pandas uses to return exact results
/// for constant windows.
struct RunningSum {
    nobs: usize,
    sum: f64,
    comp_add: f64,
    comp_remove: f64,
    neg_count: usize,
    same_run: usize,
    prev: f64,
}

impl RunningSum {
    fn new(first: f64) -> Self {
        Self {
            nobs: 0,
            sum: 0.0,
            comp_add: 0.0,
            comp_remove: 0.0,
            neg_count: 0,
            same_run: 0,
            prev: first,
        }
    }

    fn add(&mut self, val: f64) {
        if val.is_nan() {
            return;
        }
        self.nobs += 1;
        let y = val - self.comp_add;
        let t = self.sum + y;
        self.comp_add = t - self.sum - y;
        self.sum = t;
        if val < 0.0 {
            self.neg_count += 1;
        }
        if val == self.prev {
            self.same_run += 1;
        } else {
            self.same_run = 1;
        }
        self.prev = val;
    }

    fn remove(&mut self, val: f64) {
        if val.is_nan() {
            return;
        }
        self.nobs -= 1;
        let y = -val - self.comp_remove;
        let t = self.sum + y;
        self.comp_remove = t - self.sum - y;
        self.sum = t;
        if val < 0.0 {
            self.neg_count -= 1;
        }
    }

    /// pandas `calc_sum` with `min_periods = n`.
    fn window_sum(&self, n: usize) -> f64 {
        if self.nobs < n || self.nobs == 0 {
            f64::NAN
        } else if self.same_run >= self.nobs {
            self.prev * self.nobs as f64
        } else {
            self.sum
        }
    }

    /// pandas `calc_mean` with `min_periods = n`, including its sign clamps (a mean of
    /// non-negative values is never negative through rounding).
    fn window_mean(&self, n: usize) -> f64 {
        if self.nobs < n || self.nobs == 0 {
            return f64::NAN;
        }
        let mean = self.sum / self.nobs as f64;
        if self.same_run >= self.nobs {
            self.prev
        } else if (self.neg_count == 0 && mean < 0.0) || (self.neg_count == self.nobs && mean > 0.0)
        {
            0.0
        } else {
            mean
        }
    }
}

/// Runs a fixed window of `n` over `x` the way pandas does (remove the leaving value, then
/// add the entering one) and maps each state through `finish`.
fn rolling_fold(x: &[f64], n: usize, finish: impl Fn(&RunningSum) -> f64) -> Vec<f64> {
    if n == 0 {
        return vec![f64::NAN; x.len()];
    }
    let mut state = RunningSum::new(x.first().copied().unwrap_or(f64::NAN));
    let mut out = Vec::with_capacity(x.len());
    for (i, &val) in x.iter().enumerate() {
        if i >= n {
            state.remove(x[i - n]);
        }
        state.add(val);
        out.push(finish(&state));
    }
    out
}

/// Simple moving average, `x.rolling(n).mean()`: `NaN` until `n` values are in the window
/// and wherever the window holds a `NaN`. `n == 0` gives all `NaN`; `n > len` gives all `NaN`.
pub fn sma(x: &[f64], n: usize) -> Vec<f64> {
    rolling_fold(x, n, |s| s.window_mean(n))
}

/// Rolling sum, `x.rolling(n).sum()`, with the same availability rules as [`sma`].
pub fn rolling_sum(x: &[f64], n: usize) -> Vec<f64> {
    rolling_fold(x, n, |s| s.window_sum(n))
}

/// pandas `DataFrame.max(axis=1)` over the three candidates: NaN entries are skipped and the
/// result is NaN only if all are NaN.
fn nan_max3(a: f64, b: f64, c: f64) -> f64 {
    [a, b, c]
        .into_iter()
        .filter(|v| !v.is_nan())
        .fold(
            f64::NAN,
            |acc, v| if acc.is_nan() || v > acc { v } else { acc },
        )
}

/// True range `max(H−L, |H−C_prev|, |L−C_prev|)` ignoring NaN terms, so bar 0 is `H−L`.
/// Mismatched lengths give an empty `Vec`.
pub fn true_range(high: &[f64], low: &[f64], close: &[f64]) -> Vec<f64> {
    if high.len() != low.len() || high.len() != close.len() {
        return Vec::new();
    }
    (0..high.len())
        .map(|i| {
            let range = high[i] - low[i];
            match i.checked_sub(1).map(|p| close[p]) {
                Some(prev) => nan_max3(range, (high[i] - prev).abs(), (low[i] - prev).abs()),
                None => nan_max3(range, f64::NAN, f64::NAN),
            }
        })
        .collect()
}

/// ATR as the predecessor defines it: the **simple** rolling mean of [`true_range`] over `n`
/// (not Wilder smoothing). First value at bar `n − 1`. Mismatched lengths give an empty `Vec`.
pub fn atr(high: &[f64], low: &[f64], close: &[f64], n: usize) -> Vec<f64> {
    sma(&true_range(high, low, close), n)
}

/// Fractional change over `n` observations after dropping NaNs:
/// `(s[−1] − s[−1−n]) / |s[−1−n]|`. NaN if fewer than `n + 1` non-NaN values remain or the
/// start value is 0. Not per bar and not in percent.
pub fn slope_last(s: &[f64], n: usize) -> f64 {
    let valid: Vec<f64> = s.iter().copied().filter(|v| !v.is_nan()).collect();
    if valid.len() < n + 1 {
        return f64::NAN;
    }
    let end = valid[valid.len() - 1];
    let start = valid[valid.len() - 1 - n];
    if start == 0.0 {
        return f64::NAN;
    }
    (end - start) / start.abs()
}

/// Exponentially weighted mean, `x.ewm(alpha=alpha, adjust=False, ignore_na=False,
/// min_periods=min_periods).mean()`.
///
/// - Seeded with the first non-NaN value; then `y = (1−α)·y_prev + α·x`.
/// - Output is NaN until `min_periods` non-NaN values have been seen.
/// - A NaN input leaves the output at the previous value (once available) and decays the old
///   weight by `(1−α)` per NaN step; the next valid value is blended as
///   `(w·y_prev + α·x) / (w + α)` with `w = (1−α)^(gap+1)`.
/// - pandas 3.1.1 special-cases α = 0.5 exactly after a NaN gap (it uses weight `1 − w` for
///   the new value, an artefact of its `times` support); this function follows the general
///   rule above for every α. The scanner only uses α = 1/14.
/// - α outside (0, 1] or NaN (pandas raises) gives all NaN.
pub fn ewm_alpha(x: &[f64], alpha: f64, min_periods: usize) -> Vec<f64> {
    if !(alpha > 0.0 && alpha <= 1.0) {
        return vec![f64::NAN; x.len()];
    }
    // pandas converts α to a centre of mass and back; mirror it for bit-level agreement.
    let com = (1.0 - alpha) / alpha;
    let alpha = 1.0 / (1.0 + com);
    let old_wt_factor = 1.0 - alpha;
    let new_wt = alpha;
    let Some(&first) = x.first() else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(x.len());
    let mut weighted = first;
    let mut nobs = usize::from(!first.is_nan());
    let mut old_wt = 1.0;
    out.push(if nobs >= min_periods {
        weighted
    } else {
        f64::NAN
    });
    for &cur in &x[1..] {
        let is_obs = !cur.is_nan();
        nobs += usize::from(is_obs);
        if !weighted.is_nan() {
            old_wt *= old_wt_factor;
            if is_obs {
                // pandas skips the blend when equal, keeping constant series exact.
                if weighted != cur {
                    weighted = (old_wt * weighted + new_wt * cur) / (old_wt + new_wt);
                }
                old_wt = 1.0;
            }
        } else if is_obs {
            weighted = cur;
        }
        out.push(if nobs >= min_periods {
            weighted
        } else {
            f64::NAN
        });
    }
    out
}

/// Wilder's ADX via `ewm(alpha=1/n, adjust=False, min_periods=n)` as the predecessor computes
/// it: +DM/−DM (bar 0 gives 0), `ATRw = EWM(TR)`, `±DI = 100·EWM(±DM)/ATRw`,
/// `DX = 100·|+DI − −DI| / (+DI + −DI)` with a zero denominator giving NaN, `ADX = EWM(DX)`.
/// The first value is at bar `2n − 2`. `n == 0` or mismatched lengths: all NaN / empty.
pub fn adx(high: &[f64], low: &[f64], close: &[f64], n: usize) -> Vec<f64> {
    let tr = true_range(high, low, close);
    if tr.len() != high.len() {
        return Vec::new();
    }
    if n == 0 {
        return vec![f64::NAN; tr.len()];
    }
    let len = tr.len();
    let mut plus_dm = vec![0.0; len];
    let mut minus_dm = vec![0.0; len];
    for i in 1..len {
        let up = high[i] - high[i - 1];
        let down = low[i - 1] - low[i];
        // NaN comparisons are false, giving 0 like the numpy `where` they mirror.
        if up > down && up > 0.0 {
            plus_dm[i] = up;
        }
        if down > up && down > 0.0 {
            minus_dm[i] = down;
        }
    }
    let alpha = 1.0 / n as f64;
    let atr_w = ewm_alpha(&tr, alpha, n);
    let plus_ewm = ewm_alpha(&plus_dm, alpha, n);
    let minus_ewm = ewm_alpha(&minus_dm, alpha, n);
    let dx: Vec<f64> = (0..len)
        .map(|i| {
            let plus_di = 100.0 * plus_ewm[i] / atr_w[i];
            let minus_di = 100.0 * minus_ewm[i] / atr_w[i];
            let denom = plus_di + minus_di;
            if denom == 0.0 {
                f64::NAN
            } else {
                100.0 * (plus_di - minus_di).abs() / denom
            }
        })
        .collect();
    ewm_alpha(&dx, alpha, n)
}

/// Linear-interpolation quantile of an ascending, NaN-free, non-empty slice, computed the
/// way pandas' `roll_quantile` does.
fn interpolate_sorted(sorted: &[f64], q: f64) -> f64 {
    let nobs = sorted.len();
    if nobs == 1 {
        return sorted[0];
    }
    let idx_frac = q * (nobs - 1) as f64;
    // q ∈ [0, 1] is checked by callers, so the index is within 0..nobs.
    let idx = idx_frac.floor() as usize;
    if idx_frac == idx as f64 || idx + 1 >= nobs {
        return sorted[idx.min(nobs - 1)];
    }
    let low = sorted[idx];
    let high = sorted[idx + 1];
    low + (high - low) * (idx_frac - idx as f64)
}

fn valid_quantile(q: f64) -> bool {
    (0.0..=1.0).contains(&q)
}

/// Rolling quantile, `x.rolling(window).quantile(q, interpolation='linear')`: NaN until the
/// window is full and wherever it holds a NaN. `window == 0` or `q` outside [0, 1] (pandas
/// raises) give all NaN. O(len · window) through an incrementally maintained sorted window;
/// the scanner only needs the last value, see [`quantile_last`].
pub fn rolling_quantile(x: &[f64], window: usize, q: f64) -> Vec<f64> {
    if window == 0 || !valid_quantile(q) {
        return vec![f64::NAN; x.len()];
    }
    let mut sorted: Vec<f64> = Vec::with_capacity(window);
    let mut nan_count = 0usize;
    let mut out = Vec::with_capacity(x.len());
    for (i, &val) in x.iter().enumerate() {
        if i >= window {
            let leaving = x[i - window];
            if leaving.is_nan() {
                nan_count -= 1;
            } else if let Ok(pos) = sorted.binary_search_by(|p| p.total_cmp(&leaving)) {
                sorted.remove(pos);
            }
        }
        if val.is_nan() {
            nan_count += 1;
        } else {
            let pos = sorted.partition_point(|p| p.total_cmp(&val).is_lt());
            sorted.insert(pos, val);
        }
        let full = i + 1 >= window && nan_count == 0;
        out.push(if full && !sorted.is_empty() {
            interpolate_sorted(&sorted, q)
        } else {
            f64::NAN
        });
    }
    out
}

/// Rolling median as `rolling_quantile(x, window, 0.5)`. (pandas' `.median()` averages the
/// two middle values as `(a+b)/2` instead of `a + (b−a)·0.5`; they differ by at most 1 ulp.)
pub fn rolling_median(x: &[f64], window: usize) -> Vec<f64> {
    rolling_quantile(x, window, 0.5)
}

/// The last value of [`rolling_quantile`] in O(window · log window): NaN if `x` has fewer
/// than `window` values, if the last `window` values contain a NaN, if `window == 0`, or if
/// `q` is outside [0, 1].
pub fn quantile_last(x: &[f64], window: usize, q: f64) -> f64 {
    if window == 0 || x.len() < window || !valid_quantile(q) {
        return f64::NAN;
    }
    let tail = &x[x.len() - window..];
    if tail.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let mut sorted = tail.to_vec();
    sorted.sort_by(f64::total_cmp);
    interpolate_sorted(&sorted, q)
}

/// Parameters of the TrendScore (reference §3.1), defaulting to the predecessor's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrendScoreParams {
    /// Length of the close SMA whose slope is scored.
    pub sma_len: usize,
    /// Observations over which the SMA's fractional slope is taken.
    pub slope_lookback: usize,
    pub adx_len: usize,
    pub atr_len: usize,
    /// Window of the ATR% median that the current ATR% is compared with.
    pub atr_window: usize,
    /// Weight of the SMA slope in percent.
    pub slope_weight: f64,
    /// Weight of ADX, signed by the slope's direction.
    pub adx_weight: f64,
    /// Penalty weight of ATR% relative to its median.
    pub vol_ratio_weight: f64,
}

impl Default for TrendScoreParams {
    fn default() -> Self {
        Self {
            sma_len: 50,
            slope_lookback: 10,
            adx_len: 14,
            atr_len: 14,
            atr_window: 120,
            slope_weight: 2.0,
            adx_weight: 0.7,
            vol_ratio_weight: 10.0,
        }
    }
}

/// The TrendScore at the last bar (reference §3.1):
/// `slope_weight·slope_pct + adx_weight·ADX·sign(slope_pct) − vol_ratio_weight·vol_ratio`,
/// where `slope_pct = 100·slope_last(SMA(C), slope_lookback)`,
/// `vol_ratio = ATR%_now / median(ATR%, atr_window)_now` (1.0 when that median is NaN or 0)
/// and `ATR% = 100·ATR/C`. NaN when the slope or the last ADX is NaN (so it needs at least
/// `sma_len + slope_lookback` bars), when inputs are empty, or lengths differ.
pub fn trend_score(high: &[f64], low: &[f64], close: &[f64], params: &TrendScoreParams) -> f64 {
    if close.is_empty() || high.len() != close.len() || low.len() != close.len() {
        return f64::NAN;
    }
    let slope = slope_last(&sma(close, params.sma_len), params.slope_lookback);
    if slope.is_nan() {
        return f64::NAN;
    }
    let slope_pct = 100.0 * slope;
    let adx_now = last(&adx(high, low, close, params.adx_len));
    if adx_now.is_nan() {
        return f64::NAN;
    }
    let atr_pct: Vec<f64> = atr(high, low, close, params.atr_len)
        .iter()
        .zip(close)
        .map(|(a, c)| 100.0 * a / c)
        .collect();
    let median = quantile_last(&atr_pct, params.atr_window, 0.5);
    let vol_ratio = if median.is_nan() || median == 0.0 {
        1.0
    } else {
        last(&atr_pct) / median
    };
    let sign = if slope_pct > 0.0 {
        1.0
    } else if slope_pct < 0.0 {
        -1.0
    } else {
        0.0
    };
    params.slope_weight * slope_pct + params.adx_weight * adx_now * sign
        - params.vol_ratio_weight * vol_ratio
}

fn last(x: &[f64]) -> f64 {
    x.last().copied().unwrap_or(f64::NAN)
}

/// The Friday ending the `W-FRI` week that contains `date` (Saturday and Sunday belong to
/// the following Friday, as in pandas' right-closed weekly bins).
fn week_ending_friday(date: NaiveDate) -> NaiveDate {
    let from_monday = i64::from(date.weekday().num_days_from_monday());
    let to_friday = (4 - from_monday).rem_euclid(7);
    date.checked_add_signed(chrono::Duration::days(to_friday))
        .unwrap_or(date)
}

/// Weekly closes, `close.resample('W-FRI').last()`: one value per week ending Friday from the
/// first bar's week through the last bar's (partial) week, the last non-NaN close of each
/// week. A week without bars between two weeks with bars is NaN, as in pandas, so a weekly
/// SMA over it is NaN. Dates must be non-decreasing (as in [`BarSeries`]); otherwise, or on
/// mismatched lengths, the result is empty.
///
/// [`BarSeries`]: crate::market_data::BarSeries
pub fn weekly_closes(dates: &[NaiveDate], close: &[f64]) -> Vec<f64> {
    if dates.len() != close.len() || dates.windows(2).any(|w| w[1] < w[0]) {
        return Vec::new();
    }
    let mut out: Vec<f64> = Vec::new();
    let mut current: Option<NaiveDate> = None;
    for (&date, &value) in dates.iter().zip(close) {
        let week = week_ending_friday(date);
        match current {
            Some(cur) if week == cur => {}
            Some(cur) => {
                let empty_weeks = (week - cur).num_days() / 7 - 1;
                out.extend(std::iter::repeat_n(f64::NAN, empty_weeks.max(0) as usize));
                out.push(f64::NAN);
                current = Some(week);
            }
            None => {
                out.push(f64::NAN);
                current = Some(week);
            }
        }
        // `.last()` skips NaN, so only a real close replaces the week's value.
        if !value.is_nan() {
            if let Some(slot) = out.last_mut() {
                *slot = value;
            }
        }
    }
    out
}

/// Floor-trader pivots of one bar: `P = (H+L+C)/3`, `R1 = 2P − L`, `R2 = P + (H − L)`,
/// unrounded (the predecessor rounds to 2 dp when writing).
pub fn floor_pivots(high: f64, low: f64, close: f64) -> (f64, f64, f64) {
    let p = (high + low + close) / 3.0;
    (p, 2.0 * p - low, p + (high - low))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NAN: f64 = f64::NAN;

    fn assert_close(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            if e.is_nan() {
                assert!(a.is_nan(), "index {i}: expected NaN, got {a} ({actual:?})");
            } else {
                let tol = 1e-12 * e.abs().max(1.0);
                assert!((a - e).abs() <= tol, "index {i}: {a} vs {e} ({actual:?})");
            }
        }
    }

    fn close_to(a: f64, e: f64) -> bool {
        (a - e).abs() <= 1e-12 * e.abs().max(1.0)
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn sma_basic_and_warmup() {
        let x = [20.0, 21.0, 22.5, 22.0, 23.5];
        assert_close(
            &sma(&x, 3),
            &[
                NAN,
                NAN,
                21.166666666666668,
                21.833333333333332,
                22.666666666666668,
            ],
        );
        assert_close(&sma(&x, 1), &x);
        assert_close(&sma(&x, 5), &[NAN, NAN, NAN, NAN, 21.8]);
    }

    #[test]
    fn sma_n_larger_than_data_zero_and_empty() {
        assert_close(&sma(&[20.0, 21.0], 3), &[NAN, NAN]);
        assert_close(&sma(&[20.0, 21.0], 0), &[NAN, NAN]);
        assert!(sma(&[], 3).is_empty());
    }

    #[test]
    fn sma_nan_poisons_only_windows_containing_it() {
        let x = [20.0, NAN, 22.0, 23.0, 24.0, 25.0];
        assert_close(&sma(&x, 2), &[NAN, NAN, NAN, 22.5, 23.5, 24.5]);
        assert_close(&sma(&x, 3), &[NAN, NAN, NAN, NAN, 23.0, 24.0]);
    }

    #[test]
    fn sma_constant_is_exact() {
        let x = vec![0.1; 40];
        assert!(sma(&x, 7)[6..].iter().all(|v| *v == 0.1));
    }

    #[test]
    fn rolling_sum_basic() {
        let x = [1.5, 2.0, NAN, 4.0, 5.0];
        assert_close(&rolling_sum(&x, 2), &[NAN, 3.5, NAN, NAN, 9.0]);
        assert_close(&rolling_sum(&[3.0, 3.0, 3.0], 2), &[NAN, 6.0, 6.0]);
    }

    #[test]
    fn true_range_uses_previous_close() {
        // Bar 0: H−L. Bar 1 gaps up: |H−Cp| dominates. Bar 2 gaps down: |L−Cp| dominates.
        let h = [25.0, 27.0, 24.5];
        let l = [24.0, 26.5, 23.0];
        let c = [24.5, 26.8, 23.2];
        assert_close(&true_range(&h, &l, &c), &[1.0, 2.5, 3.8000000000000007]);
        assert!(true_range(&h, &l, &c[..2]).is_empty());
        assert!(true_range(&[], &[], &[]).is_empty());
    }

    #[test]
    fn true_range_ignores_nan_terms() {
        let tr = true_range(&[25.0, NAN], &[24.0, 24.0], &[24.5, 24.2]);
        assert_close(&tr, &[1.0, 0.5]);
        let tr = true_range(&[NAN], &[24.0], &[24.5]);
        assert!(tr[0].is_nan());
    }

    #[test]
    fn atr_is_simple_mean_of_true_range() {
        let h = [25.0, 27.0, 24.5, 25.0];
        let l = [24.0, 26.5, 23.0, 24.0];
        let c = [24.5, 26.8, 23.2, 24.8];
        // TR = 1.0, 2.5, 3.8, 1.8
        assert_close(&atr(&h, &l, &c, 2), &[NAN, 1.75, 3.15, 2.8]);
        assert_close(&atr(&h, &l, &c, 5), &[NAN; 4]);
    }

    #[test]
    fn slope_last_rules() {
        assert!(close_to(slope_last(&[20.0, 21.0, 22.0, 25.0], 3), 0.25));
        assert!(close_to(
            slope_last(&[NAN, 20.0, NAN, 21.0, 22.0, 25.0], 3),
            0.25
        ));
        assert!(close_to(slope_last(&[-20.0, -25.0], 1), -0.25));
        assert!(slope_last(&[21.0, 22.0, 25.0], 3).is_nan());
        assert!(slope_last(&[0.0, 1.0], 1).is_nan());
        assert!(slope_last(&[], 0).is_nan());
        assert!(close_to(slope_last(&[5.0], 0), 0.0));
    }

    #[test]
    fn ewm_plain_recursion() {
        let y = ewm_alpha(&[10.0, 20.0, 30.0], 0.5, 1);
        assert_close(&y, &[10.0, 15.0, 22.5]);
        let y = ewm_alpha(&[10.0, 20.0, 30.0], 0.5, 2);
        assert_close(&y, &[NAN, 15.0, 22.5]);
    }

    #[test]
    fn ewm_nan_gap_matches_pandas() {
        // pandas 3.1.1: pd.Series([1, 2, nan, nan, 4]).ewm(alpha=0.25, adjust=False).mean()
        // y1 = 1.25; after two NaNs w = 0.75^3 = 0.421875: (w·1.25 + 0.25·4)/(w + 0.25).
        let y = ewm_alpha(&[1.0, 2.0, NAN, NAN, 4.0], 0.25, 0);
        assert_close(&y, &[1.0, 1.25, 1.25, 1.25, 2.2732558139534884]);
        // Leading NaN: seeded by the first valid value; min_periods counts valid values only.
        let y = ewm_alpha(&[NAN, 1.0, 2.0, NAN, NAN, 4.0, 5.0], 0.25, 2);
        assert_close(
            &y,
            &[
                NAN,
                NAN,
                1.25,
                1.25,
                1.25,
                2.2732558139534884,
                2.9549418604651163,
            ],
        );
    }

    #[test]
    fn ewm_edge_cases() {
        assert!(ewm_alpha(&[], 0.5, 0).is_empty());
        assert_close(&ewm_alpha(&[1.0, 2.0], 0.0, 0), &[NAN, NAN]);
        assert_close(&ewm_alpha(&[1.0, 2.0], 1.5, 0), &[NAN, NAN]);
        assert_close(&ewm_alpha(&[1.0, 2.0], NAN, 0), &[NAN, NAN]);
        assert_close(&ewm_alpha(&[1.0, 2.0], 1.0, 0), &[1.0, 2.0]);
        assert_close(&ewm_alpha(&[NAN, NAN], 0.5, 0), &[NAN, NAN]);
        assert_close(
            &ewm_alpha(&[3.0, 3.0, 3.0], 1.0 / 14.0, 3),
            &[NAN, NAN, 3.0],
        );
    }

    /// A small, real-looking uptrend: 30 bars of a $40 stock.
    fn trending_bars(n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let close: Vec<f64> = (0..n)
            .map(|i| 40.0 + 0.3 * i as f64 + if i % 3 == 0 { -0.4 } else { 0.2 })
            .collect();
        let high: Vec<f64> = close.iter().map(|c| c + 0.5).collect();
        let low: Vec<f64> = close.iter().map(|c| c - 0.6).collect();
        (high, low, close)
    }

    #[test]
    fn adx_first_value_at_2n_minus_2() {
        let (h, l, c) = trending_bars(30);
        let a = adx(&h, &l, &c, 5);
        assert!(a[..8].iter().all(|v| v.is_nan()));
        assert!(!a[8].is_nan(), "{a:?}");
        let a14 = adx(&h, &l, &c, 14);
        assert!(a14[25].is_nan() && !a14[26].is_nan());
        assert!(a14[26..].iter().all(|v| (0.0..=100.0).contains(v)));
    }

    #[test]
    fn adx_hand_computed_n2() {
        // n = 2, α = 0.5. Bars: H, L, C.
        let h = [10.0, 11.0, 12.0, 11.5];
        let l = [9.0, 9.5, 10.5, 10.0];
        let c = [9.5, 10.8, 11.8, 10.2];
        // TR = 1, 1.5, 1.5, 1.8. +DM = 0, 1, 1, 0. −DM = 0, 0, 0, 0.5.
        // ATRw = 1, 1.25, 1.375, 1.5875 (nan, then from bar 1).
        // EWM(+DM) = 0, .5, .75, .375. EWM(−DM) = 0, 0, 0, .25.
        // +DI = 40, 54.5454.., 23.622..; −DI = 0, 0, 15.748..
        // DX = 100, 100, 100·(23.622−15.748)/(39.370) = 20.
        // ADX: bar 1 seeds 100 (1 obs), bar 2: 100 (2 obs), bar 3: 60.
        let a = adx(&h, &l, &c, 2);
        assert_close(&a, &[NAN, NAN, 100.0, 60.0]);
    }

    #[test]
    fn adx_flat_prices_give_nan() {
        let v = vec![30.0; 10];
        assert!(adx(&v, &v, &v, 2).iter().all(|x| x.is_nan()));
        assert!(adx(&v, &v, &v[..3], 2).is_empty());
        assert!(adx(&v, &v, &v, 0).iter().all(|x| x.is_nan()));
    }

    #[test]
    fn quantile_interpolates_linearly() {
        let x = [24.0, 21.0, 23.0, 22.0];
        assert_close(&rolling_quantile(&x, 4, 0.5), &[NAN, NAN, NAN, 22.5]);
        assert_close(&rolling_quantile(&x, 4, 0.25), &[NAN, NAN, NAN, 21.75]);
        assert_close(&rolling_quantile(&x, 2, 0.5), &[NAN, 22.5, 22.0, 22.5]);
        assert_close(&rolling_quantile(&x, 3, 1.0), &[NAN, NAN, 24.0, 23.0]);
        assert_close(&rolling_quantile(&x, 3, 0.0), &[NAN, NAN, 21.0, 21.0]);
        assert_close(&rolling_median(&x, 3), &[NAN, NAN, 23.0, 22.0]);
        assert_close(&rolling_quantile(&x, 1, 0.3), &x);
        assert!(close_to(quantile_last(&x, 4, 0.25), 21.75));
        assert!(close_to(quantile_last(&x, 3, 0.5), 22.0));
    }

    #[test]
    fn quantile_nan_and_edges() {
        let x = [24.0, NAN, 23.0, 22.0, 21.0];
        assert_close(&rolling_quantile(&x, 2, 0.5), &[NAN, NAN, NAN, 22.5, 21.5]);
        assert!(quantile_last(&x, 4, 0.5).is_nan());
        assert!(close_to(quantile_last(&x, 3, 0.5), 22.0));
        assert!(quantile_last(&x, 6, 0.5).is_nan());
        assert!(quantile_last(&x, 0, 0.5).is_nan());
        assert!(quantile_last(&x, 2, 1.5).is_nan());
        assert!(rolling_quantile(&x, 2, -0.1).iter().all(|v| v.is_nan()));
        assert!(rolling_quantile(&x, 0, 0.5).iter().all(|v| v.is_nan()));
        // Ties: duplicates are removed one at a time.
        let t = [5.0, 5.0, 5.0, 1.0, 5.0];
        assert_close(&rolling_quantile(&t, 3, 0.5), &[NAN, NAN, 5.0, 5.0, 5.0]);
        assert_close(&rolling_quantile(&t, 3, 0.0), &[NAN, NAN, 5.0, 1.0, 1.0]);
    }

    #[test]
    fn median_of_120_is_mean_of_60th_and_61st() {
        let x: Vec<f64> = (0..120).map(|i| ((i * 37) % 120) as f64).collect();
        assert!(close_to(quantile_last(&x, 120, 0.5), 59.5));
    }

    #[test]
    fn trend_score_components() {
        // 150 bars: rising closes with constant range, so every part is hand-checkable.
        let n = 150;
        let close: Vec<f64> = (0..n).map(|i| 30.0 + 0.1 * i as f64).collect();
        let high: Vec<f64> = close.iter().map(|c| c + 0.5).collect();
        let low: Vec<f64> = close.iter().map(|c| c - 0.5).collect();
        let p = TrendScoreParams::default();
        // SMA50 at bar i is close[i] − 2.45; slope over 10 bars = 1.0 / (SMA at bar 139).
        let sma_139 = 30.0 + 13.9 - 2.45;
        let slope_pct = 100.0 * 1.0 / sma_139;
        // Up-moves every bar of 0.1 and no down-moves: −DI = 0, +DI > 0 → DX = 100 → ADX = 100.
        let adx_now = 100.0;
        // TR = 1.0 (H−L) except bar 0 (1.0): ATR = 1, ATR% = 100/C. Median of the last 120
        // ATR% values is the mean of the 60th and 61st, i.e. closes at bars 89 and 90.
        let atr_pct_now = 100.0 / close[149];
        let median = (100.0 / close[90] + 100.0 / close[89]) / 2.0;
        let expected = 2.0 * slope_pct + 0.7 * adx_now - 10.0 * (atr_pct_now / median);
        let got = trend_score(&high, &low, &close, &p);
        assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
    }

    #[test]
    fn trend_score_fallbacks_and_nan() {
        let (h, l, c) = trending_bars(70);
        let p = TrendScoreParams::default();
        // 70 bars: median120 unavailable → vol_ratio 1.0.
        let slope_pct = 100.0 * slope_last(&sma(&c, 50), 10);
        let adx_now = *adx(&h, &l, &c, 14).last().unwrap();
        let expected = 2.0 * slope_pct + 0.7 * adx_now - 10.0;
        assert!(close_to(trend_score(&h, &l, &c, &p), expected));
        // 59 bars: SMA50 has only 10 values → NaN.
        assert!(trend_score(&h[..59], &l[..59], &c[..59], &p).is_nan());
        assert!(!trend_score(&h[..60], &l[..60], &c[..60], &p).is_nan());
        // ADX unavailable (length longer than the data) → NaN.
        let p_adx = TrendScoreParams {
            adx_len: 40,
            ..TrendScoreParams::default()
        };
        assert!(trend_score(&h, &l, &c, &p_adx).is_nan());
        assert!(trend_score(&[], &[], &[], &p).is_nan());
        assert!(trend_score(&h, &l, &c[..60], &p).is_nan());
        // Flat SMA: sign 0 removes the ADX term; flat range → ADX NaN → NaN.
        let flat = vec![30.0; 70];
        assert!(trend_score(&flat, &flat, &flat, &p).is_nan());
    }

    #[test]
    fn trend_score_params_serde_defaults_and_unknown_fields() {
        let p: TrendScoreParams = toml::from_str("sma_len = 20").unwrap();
        assert_eq!(p.sma_len, 20);
        assert_eq!(p.adx_weight, 0.7);
        assert!(toml::from_str::<TrendScoreParams>("smalen = 20").is_err());
    }

    #[test]
    fn weekly_closes_last_of_each_friday_week() {
        let dates = [
            date(2024, 1, 3),  // Wed → week ending Jan 5
            date(2024, 1, 5),  // Fri → Jan 5
            date(2024, 1, 8),  // Mon → Jan 12
            date(2024, 1, 11), // Thu → Jan 12
            date(2024, 1, 16), // Tue → Jan 19 (partial last week)
        ];
        let close = [20.0, 21.0, 22.0, 23.0, 24.0];
        assert_close(&weekly_closes(&dates, &close), &[21.0, 23.0, 24.0]);
    }

    #[test]
    fn weekly_closes_empty_week_is_nan_and_weekend_rolls_forward() {
        let dates = [date(2024, 1, 5), date(2024, 1, 19), date(2024, 1, 20)];
        assert_close(
            &weekly_closes(&dates, &[1.0, 2.0, 3.0]),
            &[1.0, NAN, 2.0, 3.0],
        );
        // `.last()` skips NaN within a week; an all-NaN week is NaN.
        let dates = [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 9)];
        assert_close(&weekly_closes(&dates, &[1.0, NAN, NAN]), &[1.0, NAN]);
        assert!(weekly_closes(&[], &[]).is_empty());
        assert!(weekly_closes(&dates, &[1.0]).is_empty());
        assert!(weekly_closes(&[date(2024, 1, 9), date(2024, 1, 2)], &[1.0, 2.0]).is_empty());
    }

    #[test]
    fn floor_pivots_of_one_bar() {
        let (p, r1, r2) = floor_pivots(31.0, 29.0, 30.5);
        assert!(close_to(p, 30.166666666666668));
        assert!(close_to(r1, 31.333333333333336));
        assert!(close_to(r2, 32.166_666_666_666_67));
    }

    proptest! {
        #[test]
        fn sma_of_constant_is_constant(v in 1.0f64..500.0, len in 0usize..60, n in 1usize..30) {
            let x = vec![v; len];
            for (i, s) in sma(&x, n).into_iter().enumerate() {
                if i + 1 >= n { prop_assert_eq!(s, v); } else { prop_assert!(s.is_nan()); }
            }
        }

        #[test]
        fn sma_matches_direct_mean(x in prop::collection::vec(1.0f64..100.0, 0..80), n in 1usize..25) {
            let s = sma(&x, n);
            for i in 0..x.len() {
                if i + 1 >= n {
                    let direct: f64 = x[i + 1 - n..=i].iter().sum::<f64>() / n as f64;
                    prop_assert!((s[i] - direct).abs() <= 1e-12 * direct);
                }
            }
        }

        #[test]
        fn quantile_last_equals_sorting(
            x in prop::collection::vec(-50.0f64..50.0, 1..60),
            w in 1usize..60,
            q in 0.0f64..=1.0,
        ) {
            let got = quantile_last(&x, w, q);
            let rolled = rolling_quantile(&x, w, q);
            if w > x.len() {
                prop_assert!(got.is_nan());
            } else {
                let mut tail = x[x.len() - w..].to_vec();
                tail.sort_by(f64::total_cmp);
                let pos = q * (w - 1) as f64;
                let lo = pos.floor() as usize;
                let hi = pos.ceil() as usize;
                let expected = tail[lo] + (tail[hi] - tail[lo]) * (pos - lo as f64);
                prop_assert!((got - expected).abs() <= 1e-12 * expected.abs().max(1.0));
                prop_assert_eq!(got.to_bits(), rolled[x.len() - 1].to_bits());
            }
        }

        #[test]
        fn ewm_stays_within_input_range(x in prop::collection::vec(prop::option::of(10.0f64..60.0), 1..50), alpha in 0.01f64..=1.0) {
            let vals: Vec<f64> = x.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
            let (lo, hi) = vals.iter().filter(|v| !v.is_nan())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
            for y in ewm_alpha(&vals, alpha, 0) {
                if !y.is_nan() { prop_assert!(y >= lo - 1e-9 && y <= hi + 1e-9); }
            }
        }
    }
}
