//! Bar validation: turns whatever a provider or the store hands over into a [`BarSeries`] whose
//! bars the indicators can trust, and counts every defect it met per symbol.
//!
//! Validation runs when bars are read for a scan, so a change of policy takes effect on the
//! next scan without re-importing anything. The CSV import into the bar store applies the same
//! per-bar checks ([`BarDefect::of`]) before writing: a row the scanner would drop is rejected
//! with its line number and never replaces a stored bar.
//!
//! # Policy
//!
//! The input is first sorted by date (stably, so equal dates keep their input order). Each bar is
//! then checked in the order below; the first failing check decides its fate, so a dropped bar is
//! counted exactly once and `kept + dropped() == input`.
//!
//! | defect | action | counter |
//! |---|---|---|
//! | input not in ascending date order | sort (stable), keep going | `out_of_order` (input bars dated before their predecessor) |
//! | same date as an earlier bar | drop all but the first occurrence | `duplicate_date` |
//! | date is not an NYSE session (weekend, holiday, outside the 2000–2035 calendar) | drop | `non_session_date` |
//! | any of open/high/low/close non-finite or ≤ 0 | drop | `bad_price` |
//! | high < low | drop | `high_below_low` |
//! | close outside [low, high] | drop (the bar is corrupt: close feeds every indicator) | `close_outside_range` |
//! | volume negative or non-finite | drop | `bad_volume` |
//! | open outside [low, high] | keep, clamp open into [low, high] | `open_outside_range` |
//! | volume exactly 0 | keep (a halted or no-trade day is real; AVWAP weights it by 0) | `zero_volume` |
//! | NYSE sessions missing between the first and last kept bar | keep the series as it is, no fill | `missing_sessions` |
//!
//! Why the open is clamped instead of dropped: real feeds (the bundled demo set has 78 such rows)
//! print an opening auction price outside the day's continuous-trading range, and the open only
//! serves gap detection, where the clamped value is the conservative reading. Why duplicates keep
//! the *first* occurrence even when it is the broken one: nothing tells us which of two
//! conflicting bars is right, and preferring whichever passes the checks would let a corrupt bar
//! pick its replacement; dropping the date is the honest outcome and it is counted. The CSV
//! import, the Alpaca download and the bar store apply the same rule within one file, answer or
//! write (the module documentation of `store` states it for all of them).

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use super::series::{BarSeries, DailyBar};
use crate::calendar;

/// How many bars of one symbol (or, after [`DefectCounts::add`], of many) had each defect.
/// See the module documentation for what happens to a bar with each defect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DefectCounts {
    /// Input bars dated before the bar preceding them in the input (0 when sorted).
    pub out_of_order: usize,
    /// Dropped: a later bar with the date of an earlier one.
    pub duplicate_date: usize,
    /// Dropped: weekend, NYSE holiday or date outside the calendar's range.
    pub non_session_date: usize,
    /// Dropped: an open, high, low or close that is not a finite positive number.
    pub bad_price: usize,
    /// Dropped: high below low.
    pub high_below_low: usize,
    /// Dropped: close outside [low, high].
    pub close_outside_range: usize,
    /// Dropped: negative or non-finite volume.
    pub bad_volume: usize,
    /// Kept with the open clamped into [low, high].
    pub open_outside_range: usize,
    /// Kept: volume 0.
    pub zero_volume: usize,
    /// NYSE sessions with no bar between the first and last kept bar (not filled).
    pub missing_sessions: usize,
}

impl DefectCounts {
    /// Adds `other`'s counts to these, e.g. to total a scan over all symbols.
    pub fn add(&mut self, other: &DefectCounts) {
        self.out_of_order += other.out_of_order;
        self.duplicate_date += other.duplicate_date;
        self.non_session_date += other.non_session_date;
        self.bad_price += other.bad_price;
        self.high_below_low += other.high_below_low;
        self.close_outside_range += other.close_outside_range;
        self.bad_volume += other.bad_volume;
        self.open_outside_range += other.open_outside_range;
        self.zero_volume += other.zero_volume;
        self.missing_sessions += other.missing_sessions;
    }

    /// Bars removed from the series.
    pub fn dropped(&self) -> usize {
        self.duplicate_date
            + self.non_session_date
            + self.bad_price
            + self.high_below_low
            + self.close_outside_range
            + self.bad_volume
    }

    /// Every counter summed: dropped bars, kept-but-noted bars, unsorted input and gaps.
    pub fn total(&self) -> usize {
        self.dropped()
            + self.out_of_order
            + self.open_outside_range
            + self.zero_volume
            + self.missing_sessions
    }

    pub fn is_clean(&self) -> bool {
        self.total() == 0
    }
}

impl std::ops::AddAssign<&DefectCounts> for DefectCounts {
    fn add_assign(&mut self, other: &DefectCounts) {
        self.add(other);
    }
}

/// A defect that makes one bar unusable on its own: the rows of the policy table whose action
/// is "drop", but for duplicates (which need the other bars to see).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarDefect {
    /// Weekend, NYSE holiday or a date outside the calendar's 2000–2035.
    NonSessionDate,
    /// An open, high, low or close that is not a finite positive number.
    BadPrice,
    HighBelowLow,
    CloseOutsideRange,
    /// A negative or non-finite volume.
    BadVolume,
}

impl BarDefect {
    /// The first defect of `bar` in the policy's order, or `None` for a usable bar (one whose
    /// open is outside [low, high] or whose volume is 0 is usable: the series clamps or keeps
    /// it).
    pub fn of(bar: &DailyBar) -> Option<BarDefect> {
        // An out-of-range date is as unusable as a weekend: without a calendar answer the bar
        // cannot be placed among sessions.
        if !matches!(calendar::is_session(bar.date), Ok(true)) {
            return Some(BarDefect::NonSessionDate);
        }
        let prices = [bar.open, bar.high, bar.low, bar.close];
        if prices.iter().any(|p| !p.is_finite() || *p <= 0.0) {
            return Some(BarDefect::BadPrice);
        }
        if bar.high < bar.low {
            return Some(BarDefect::HighBelowLow);
        }
        if bar.close < bar.low || bar.close > bar.high {
            return Some(BarDefect::CloseOutsideRange);
        }
        if !bar.volume.is_finite() || bar.volume < 0.0 {
            return Some(BarDefect::BadVolume);
        }
        None
    }

    /// What is wrong with `bar`, naming its values.
    pub fn describe(self, bar: &DailyBar) -> String {
        match self {
            BarDefect::NonSessionDate => match calendar::is_session(bar.date) {
                Err(_) => format!(
                    "Date {} is outside the NYSE calendar avwap knows (2000–2035)",
                    bar.date
                ),
                _ => format!(
                    "Date {} is not an NYSE session (weekend or holiday)",
                    bar.date
                ),
            },
            BarDefect::BadPrice => format!(
                "prices must be finite and positive (Open {}, High {}, Low {}, Close {})",
                bar.open, bar.high, bar.low, bar.close
            ),
            BarDefect::HighBelowLow => {
                format!("High {} is below Low {}", bar.high, bar.low)
            }
            BarDefect::CloseOutsideRange => format!(
                "Close {} is outside [Low {}, High {}]",
                bar.close, bar.low, bar.high
            ),
            BarDefect::BadVolume if bar.volume.is_finite() => {
                format!("Volume {} is negative", bar.volume)
            }
            BarDefect::BadVolume => format!("Volume {} is not a finite number", bar.volume),
        }
    }
}

/// Applies the module's policy to one symbol's bars. Never panics, whatever the input.
pub fn validate_series(symbol: &str, mut bars: Vec<DailyBar>) -> (BarSeries, DefectCounts) {
    let mut counts = DefectCounts {
        out_of_order: bars.windows(2).filter(|w| w[1].date < w[0].date).count(),
        ..DefectCounts::default()
    };
    if counts.out_of_order > 0 {
        // Stable, so among equal dates the first input occurrence stays first.
        bars.sort_by_key(|bar| bar.date);
    }

    let mut series = BarSeries::with_capacity(symbol, bars.len());
    let mut previous_date: Option<NaiveDate> = None;
    for bar in bars {
        let duplicate = previous_date == Some(bar.date);
        previous_date = Some(bar.date);
        if duplicate {
            counts.duplicate_date += 1;
            continue;
        }
        if let Some(kept) = check_bar(bar, &mut counts) {
            series.push(kept);
        }
    }

    counts.missing_sessions = missing_sessions(&series.dates);
    (series, counts)
}

/// The per-bar checks of the policy table, in its order: `None` when the bar is dropped.
fn check_bar(mut bar: DailyBar, counts: &mut DefectCounts) -> Option<DailyBar> {
    if let Some(defect) = BarDefect::of(&bar) {
        *match defect {
            BarDefect::NonSessionDate => &mut counts.non_session_date,
            BarDefect::BadPrice => &mut counts.bad_price,
            BarDefect::HighBelowLow => &mut counts.high_below_low,
            BarDefect::CloseOutsideRange => &mut counts.close_outside_range,
            BarDefect::BadVolume => &mut counts.bad_volume,
        } += 1;
        return None;
    }
    if bar.open < bar.low || bar.open > bar.high {
        counts.open_outside_range += 1;
        bar.open = bar.open.max(bar.low).min(bar.high);
    }
    if bar.volume == 0.0 {
        counts.zero_volume += 1;
        // Turns -0.0 into 0.0 so nothing downstream sees a negative sign.
        bar.volume = 0.0;
    }
    Some(bar)
}

/// NYSE sessions strictly between consecutive kept dates. The dates are sorted, unique and all
/// sessions, so the count is sessions in [first, last] minus the bars present.
fn missing_sessions(dates: &[NaiveDate]) -> usize {
    let (Some(first), Some(last)) = (dates.first(), dates.last()) else {
        return 0;
    };
    let span = (last.num_days_from_ce() - first.num_days_from_ce()).max(0);
    let sessions = first
        .iter_days()
        .take(usize::try_from(span).unwrap_or(0) + 1)
        .filter(|day| matches!(calendar::is_session(*day), Ok(true)))
        .count();
    sessions.saturating_sub(dates.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn bar(date: NaiveDate, open: f64, high: f64, low: f64, close: f64, volume: f64) -> DailyBar {
        DailyBar {
            date,
            open,
            high,
            low,
            close,
            volume,
        }
    }

    /// AAPL-like bars for the week of 2010-01-04 (Mon..Fri, all NYSE sessions).
    fn week() -> Vec<DailyBar> {
        vec![
            bar(
                date(2010, 1, 4),
                213.43,
                214.50,
                212.38,
                214.01,
                17_633_200.0,
            ),
            bar(
                date(2010, 1, 5),
                214.60,
                215.59,
                213.25,
                214.38,
                21_496_600.0,
            ),
            bar(
                date(2010, 1, 6),
                214.38,
                215.23,
                210.75,
                210.97,
                19_720_000.0,
            ),
            bar(
                date(2010, 1, 7),
                211.75,
                212.00,
                209.05,
                210.58,
                17_040_400.0,
            ),
            bar(
                date(2010, 1, 8),
                210.30,
                212.00,
                209.06,
                211.98,
                15_986_100.0,
            ),
        ]
    }

    fn dates(series: &BarSeries) -> Vec<NaiveDate> {
        series.dates.clone()
    }

    #[test]
    fn clean_series_passes_unchanged() {
        let (series, counts) = validate_series("AAPL", week());
        assert!(counts.is_clean(), "{counts:?}");
        assert_eq!(series.symbol, "AAPL");
        assert_eq!(series.len(), 5);
        for (i, expected) in week().into_iter().enumerate() {
            assert_eq!(series.bar(i), Some(expected));
        }
    }

    #[test]
    fn empty_input_gives_empty_clean_series() {
        let (series, counts) = validate_series("AAPL", Vec::new());
        assert!(series.is_empty());
        assert!(counts.is_clean());
    }

    #[test]
    fn non_positive_and_non_finite_prices_drop_the_bar() {
        let mut bars = week();
        bars[1].low = 0.0;
        bars[2].close = f64::NAN;
        bars[3].high = f64::INFINITY;
        bars[4].open = -1.0;
        let (series, counts) = validate_series("AAPL", bars);
        assert_eq!(dates(&series), vec![date(2010, 1, 4)]);
        assert_eq!(counts.bad_price, 4);
        assert_eq!(counts.dropped(), 4);
    }

    #[test]
    fn high_below_low_drops_the_bar() {
        let mut bars = week();
        bars[2].high = 209.0; // below low 210.75
        let (series, counts) = validate_series("AAPL", bars);
        assert_eq!(series.len(), 4);
        assert!(!series.dates.contains(&date(2010, 1, 6)));
        assert_eq!(counts.high_below_low, 1);
        // The dropped day becomes a gap in the kept series.
        assert_eq!(counts.missing_sessions, 1);
        assert_eq!(counts.total(), 2);
    }

    #[test]
    fn close_outside_range_drops_the_bar() {
        let mut bars = week();
        bars[0].close = 215.0; // above high 214.50
        bars[4].close = 200.0; // below low 209.06
        let (series, counts) = validate_series("AAPL", bars);
        assert_eq!(
            dates(&series),
            vec![date(2010, 1, 5), date(2010, 1, 6), date(2010, 1, 7)]
        );
        assert_eq!(counts.close_outside_range, 2);
    }

    #[test]
    fn open_outside_range_is_clamped_and_kept() {
        let mut bars = week();
        bars[1].open = 216.0; // above high 215.59
        bars[3].open = 208.0; // below low 209.05
        let (series, counts) = validate_series("AAPL", bars);
        assert_eq!(series.len(), 5);
        assert_eq!(series.open[1], 215.59);
        assert_eq!(series.open[3], 209.05);
        assert_eq!(counts.open_outside_range, 2);
        assert_eq!(counts.dropped(), 0);
    }

    #[test]
    fn bad_volume_drops_zero_volume_keeps() {
        let mut bars = week();
        bars[0].volume = -100.0;
        bars[1].volume = f64::NAN;
        bars[2].volume = 0.0;
        bars[3].volume = -0.0;
        let (series, counts) = validate_series("AAPL", bars);
        assert_eq!(
            dates(&series),
            vec![date(2010, 1, 6), date(2010, 1, 7), date(2010, 1, 8)]
        );
        assert_eq!(counts.bad_volume, 2);
        assert_eq!(counts.zero_volume, 2);
        assert_eq!(series.volume[0], 0.0);
        assert!(series.volume[1].is_sign_positive());
    }

    #[test]
    fn duplicates_keep_the_first_occurrence() {
        let mut bars = week();
        let mut later = bars[2];
        later.close = 211.5;
        bars.insert(3, later);
        bars.push(bars[5]);
        let (series, counts) = validate_series("AAPL", bars);
        assert_eq!(series.len(), 5);
        assert_eq!(series.close[2], 210.97);
        assert_eq!(counts.duplicate_date, 2);
    }

    #[test]
    fn broken_first_duplicate_drops_the_date() {
        let mut bars = week();
        let good = bars[2];
        bars[2].high = 1.0;
        bars.insert(3, good);
        let (series, counts) = validate_series("AAPL", bars);
        assert!(!series.dates.contains(&date(2010, 1, 6)));
        assert_eq!(counts.high_below_low, 1);
        assert_eq!(counts.duplicate_date, 1);
    }

    #[test]
    fn non_session_dates_are_dropped() {
        let mut bars = week();
        // Saturday, New Year's Day 2010 (a Friday holiday), and beyond the calendar.
        bars.push(bar(date(2010, 1, 9), 211.0, 212.0, 210.0, 211.0, 1e6));
        bars.push(bar(date(2010, 1, 1), 211.0, 212.0, 210.0, 211.0, 1e6));
        bars.push(bar(date(2036, 1, 2), 211.0, 212.0, 210.0, 211.0, 1e6));
        bars.push(bar(date(1999, 12, 31), 211.0, 212.0, 210.0, 211.0, 1e6));
        let (series, counts) = validate_series("AAPL", bars);
        assert_eq!(series.len(), 5);
        assert_eq!(counts.non_session_date, 4);
        assert_eq!(counts.out_of_order, 2);
    }

    #[test]
    fn unsorted_input_is_sorted_and_counted() {
        let mut bars = week();
        bars.reverse();
        let (series, counts) = validate_series("AAPL", bars);
        assert_eq!(dates(&series), dates(&validate_series("AAPL", week()).0));
        assert_eq!(counts.out_of_order, 4);
        assert_eq!(counts.total(), 4);
    }

    #[test]
    fn gaps_are_counted_not_filled() {
        // 2010-01-15 (Fri) to 2010-01-19 (Tue) spans MLK day, which is not a gap; the missing
        // 2010-01-12..14 are.
        let bars = vec![
            bar(date(2010, 1, 11), 10.0, 11.0, 9.0, 10.5, 1e6),
            bar(date(2010, 1, 15), 10.0, 11.0, 9.0, 10.5, 1e6),
            bar(date(2010, 1, 19), 10.0, 11.0, 9.0, 10.5, 1e6),
        ];
        let (series, counts) = validate_series("X", bars);
        assert_eq!(series.len(), 3);
        assert_eq!(counts.missing_sessions, 3);
    }

    #[test]
    fn several_defects_combined() {
        let mut bars = week();
        bars[0].open = 220.0; // clamped
        bars[1].volume = 0.0; // kept
        bars[2].low = 216.0; // high < low: dropped, leaves a gap
        bars.push(bars[3]); // duplicate
        bars.push(bar(date(2010, 1, 10), 1.0, 1.0, 1.0, 1.0, 1.0)); // Sunday
        bars.swap(0, 4); // unsorted
        let input = bars.len();
        let (series, counts) = validate_series("AAPL", bars);
        assert_eq!(
            counts,
            DefectCounts {
                out_of_order: 2,
                duplicate_date: 1,
                non_session_date: 1,
                high_below_low: 1,
                open_outside_range: 1,
                zero_volume: 1,
                missing_sessions: 1,
                ..DefectCounts::default()
            }
        );
        assert_eq!(series.len() + counts.dropped(), input);
        assert_eq!(series.open[0], 214.50);
    }

    #[test]
    fn counts_add_up() {
        let a = DefectCounts {
            bad_price: 1,
            missing_sessions: 7,
            ..DefectCounts::default()
        };
        let mut total = DefectCounts::default();
        total += &a;
        total.add(&a);
        assert_eq!(total.bad_price, 2);
        assert_eq!(total.missing_sessions, 14);
        assert_eq!(total.dropped(), 2);
        assert_eq!(total.total(), 16);
        assert!(!total.is_clean());
    }

    fn any_price() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => 0.01f64..500.0,
            1 => Just(0.0),
            1 => -10.0f64..0.0,
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
        ]
    }

    fn any_volume() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => 0.0f64..1e9,
            1 => Just(0.0),
            1 => Just(-0.0),
            1 => -1e6f64..0.0,
            1 => Just(f64::NAN),
        ]
    }

    fn any_bar() -> impl Strategy<Value = DailyBar> {
        // Days around the calendar's edges as well as inside it.
        let day = prop_oneof![
            8 => 3650i64..3700,
            1 => -5i64..5,
            1 => 13140i64..13160,
        ];
        (
            day,
            any_price(),
            any_price(),
            any_price(),
            any_price(),
            any_volume(),
        )
            .prop_map(|(offset, open, high, low, close, volume)| DailyBar {
                date: date(2000, 1, 1) + chrono::Duration::days(offset),
                open,
                high,
                low,
                close,
                volume,
            })
    }

    proptest! {
        #[test]
        fn output_obeys_invariants(bars in proptest::collection::vec(any_bar(), 0..80)) {
            let input = bars.len();
            let (series, counts) = validate_series("SYM", bars);
            prop_assert_eq!(series.len() + counts.dropped(), input);
            prop_assert!(series.dates.windows(2).all(|w| w[0] < w[1]));
            for i in 0..series.len() {
                let (o, h, l, c, v) =
                    (series.open[i], series.high[i], series.low[i], series.close[i], series.volume[i]);
                prop_assert!([o, h, l, c].iter().all(|p| p.is_finite() && *p > 0.0));
                prop_assert!(l <= o && o <= h && l <= c && c <= h);
                prop_assert!(v.is_finite() && v >= 0.0);
                prop_assert_eq!(calendar::is_session(series.dates[i]), Ok(true));
            }
        }
    }
}
