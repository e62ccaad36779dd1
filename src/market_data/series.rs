//! The daily bar and the columnar per-symbol series the indicators run over.

use chrono::NaiveDate;

/// One daily bar of one symbol. `date` is the New York session date. Volume is in shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DailyBar {
    pub date: NaiveDate,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

/// A symbol's bars in ascending date order, stored by column so indicators take slices.
/// Constructed by validation, so every bar obeys the invariants documented there.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BarSeries {
    pub symbol: String,
    pub dates: Vec<NaiveDate>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    pub volume: Vec<f64>,
}

impl BarSeries {
    pub fn new(symbol: impl Into<String>) -> Self {
        Self {
            symbol: symbol.into(),
            ..Self::default()
        }
    }

    pub fn with_capacity(symbol: impl Into<String>, capacity: usize) -> Self {
        Self {
            symbol: symbol.into(),
            dates: Vec::with_capacity(capacity),
            open: Vec::with_capacity(capacity),
            high: Vec::with_capacity(capacity),
            low: Vec::with_capacity(capacity),
            close: Vec::with_capacity(capacity),
            volume: Vec::with_capacity(capacity),
        }
    }

    pub fn len(&self) -> usize {
        self.dates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dates.is_empty()
    }

    pub fn push(&mut self, bar: DailyBar) {
        self.dates.push(bar.date);
        self.open.push(bar.open);
        self.high.push(bar.high);
        self.low.push(bar.low);
        self.close.push(bar.close);
        self.volume.push(bar.volume);
    }

    pub fn bar(&self, index: usize) -> Option<DailyBar> {
        Some(DailyBar {
            date: *self.dates.get(index)?,
            open: self.open[index],
            high: self.high[index],
            low: self.low[index],
            close: self.close[index],
            volume: self.volume[index],
        })
    }

    pub fn last_date(&self) -> Option<NaiveDate> {
        self.dates.last().copied()
    }

    /// The series cut to bars dated on or before `date` (no lookahead).
    pub fn truncated_to(&self, date: NaiveDate) -> BarSeries {
        let end = self.dates.partition_point(|d| *d <= date);
        BarSeries {
            symbol: self.symbol.clone(),
            dates: self.dates[..end].to_vec(),
            open: self.open[..end].to_vec(),
            high: self.high[..end].to_vec(),
            low: self.low[..end].to_vec(),
            close: self.close[..end].to_vec(),
            volume: self.volume[..end].to_vec(),
        }
    }
}
