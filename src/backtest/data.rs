//! What a backtest reads: every daily bar of the data set loaded once into memory (the bar
//! store or the bundled demo data), the date-bounded view the morning scan reads it through
//! (it cannot see a bar dated on or after the scan date), the intraday path one session is
//! traded on, and the benchmark curve.

use crate::market_data::intraday::{synthetic_session_path, IntradayBar, IntradayFeed};
use crate::market_data::{validate_series, BarStore, DailyBar, ImportError, StoreError};
use crate::scan::config::ScanConfig;
use crate::scan::demo::{demo_config, demo_sectors, demo_source};
use crate::scan::output::OutputError;
use crate::scan::run::{BarSource, EqualWeightIndex, SourceError};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};

/// Why the data of a backtest cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("no bar store at {}: fill it first (avwap-scan --provider alpaca, or avwap-scan import FILES), or run the backtest on the bundled data with --demo", path.display())]
    NoStore { path: std::path::PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bundled demo data set cannot be read.
    #[error(transparent)]
    Demo(#[from] ImportError),
    #[error(transparent)]
    DemoSectors(#[from] OutputError),
}

/// The whole data set of a run, in memory, read once.
#[derive(Debug, Clone)]
pub struct BacktestData {
    /// Where the bars came from (for backtest.json and messages).
    pub label: String,
    /// Per symbol, ascending by date, nothing dated after the backtest's last session.
    pub bars: BTreeMap<String, Vec<DailyBar>>,
    pub sectors: HashMap<String, String>,
    /// The `[scan]` settings the morning scans use (the demo swaps the regime benchmark for
    /// the data set's equal-weight index, as `avwap-scan --demo` does).
    pub scan: ScanConfig,
}

impl BacktestData {
    /// The bundled demo data set (as `avwap-scan --demo` reads it), up to `last`.
    pub fn demo(scan: &ScanConfig, last: NaiveDate) -> Result<Self, DataError> {
        let source = demo_source()?;
        Ok(Self {
            label: source.label,
            bars: truncate(source.bars, last),
            sectors: demo_sectors()?,
            scan: demo_config(scan),
        })
    }

    /// Every bar of the bar store at `path` dated up to `last`, in one ordered read.
    pub fn from_store(path: &Path, scan: &ScanConfig, last: NaiveDate) -> Result<Self, DataError> {
        if !path.exists() {
            return Err(DataError::NoStore {
                path: path.to_path_buf(),
            });
        }
        let store = BarStore::open(path)?;
        let mut bars = BTreeMap::new();
        store.for_each_symbol(None, last, |symbol, b| {
            bars.insert(symbol.to_string(), b);
        })?;
        Ok(Self {
            label: format!("store:{}", path.display()),
            bars,
            sectors: HashMap::new(),
            scan: scan.clone(),
        })
    }

    /// Bars given in code (tests, benchmarks), up to `last`.
    pub fn from_bars(
        label: &str,
        bars: BTreeMap<String, Vec<DailyBar>>,
        scan: ScanConfig,
        last: NaiveDate,
    ) -> Self {
        Self {
            label: label.to_string(),
            bars: truncate(bars, last),
            sectors: HashMap::new(),
            scan,
        }
    }

    /// The first and last bar dates of the data set.
    pub fn date_range(&self) -> Option<(NaiveDate, NaiveDate)> {
        let first = self
            .bars
            .values()
            .filter_map(|b| b.first())
            .map(|b| b.date)
            .min()?;
        let last = self
            .bars
            .values()
            .filter_map(|b| b.last())
            .map(|b| b.date)
            .max()?;
        Some((first, last))
    }

    /// `symbol`'s bar dated `date`, if it traded that day.
    pub fn bar_on(&self, symbol: &str, date: NaiveDate) -> Option<&DailyBar> {
        let bars = self.bars.get(symbol)?;
        let i = bars.partition_point(|b| b.date < date);
        bars.get(i).filter(|b| b.date == date)
    }

    /// `symbol`'s last close dated on or before `date`.
    pub fn close_on_or_before(&self, symbol: &str, date: NaiveDate) -> Option<f64> {
        let bars = self.bars.get(symbol)?;
        let i = bars.partition_point(|b| b.date <= date);
        i.checked_sub(1).map(|i| bars[i].close)
    }

    /// The view a scan for `scan_date` reads: bars dated before it only.
    pub fn as_of(&self, scan_date: NaiveDate) -> AsOfView<'_> {
        AsOfView {
            data: self,
            before: scan_date,
        }
    }

    /// The benchmark curve: `symbol` when the data set has it, else the equal-weight index of
    /// every symbol (the data set's own index), with a label saying which.
    pub fn benchmark(&self, symbol: &str) -> Benchmark {
        if let Some(bars) = self.bars.get(symbol).filter(|b| !b.is_empty()) {
            let (series, _) = validate_series(symbol, bars.clone());
            return Benchmark {
                label: format!("{symbol} (close, from the data set)"),
                levels: series
                    .dates
                    .iter()
                    .copied()
                    .zip(series.close.iter().copied())
                    .collect(),
            };
        }
        let mut index = EqualWeightIndex::default();
        for (s, bars) in &self.bars {
            let (series, _) = validate_series(s, bars.clone());
            index.add(&series);
        }
        Benchmark {
            label: format!(
                "equal-weight index of the data set's {} symbols (no {symbol} in the data)",
                self.bars.len()
            ),
            levels: index.dated_levels().into_iter().collect(),
        }
    }
}

fn truncate(
    mut bars: BTreeMap<String, Vec<DailyBar>>,
    last: NaiveDate,
) -> BTreeMap<String, Vec<DailyBar>> {
    for series in bars.values_mut() {
        series.retain(|b| b.date <= last);
    }
    bars.retain(|_, b| !b.is_empty());
    bars
}

/// A benchmark's level by date.
#[derive(Debug, Clone, PartialEq)]
pub struct Benchmark {
    pub label: String,
    pub levels: BTreeMap<NaiveDate, f64>,
}

impl Benchmark {
    /// The level on `date`, or the last one before it (a holiday of one data source).
    pub fn on(&self, date: NaiveDate) -> f64 {
        self.levels
            .range(..=date)
            .next_back()
            .map_or(f64::NAN, |(_, level)| *level)
    }
}

/// The data set as the scan for `before` sees it: every symbol's bars dated before that day,
/// whatever window the scan asks for. This is the no-lookahead rule of a backtest: the scan
/// for a session cannot read that session's bar or any later one.
pub struct AsOfView<'a> {
    data: &'a BacktestData,
    before: NaiveDate,
}

impl BarSource for AsOfView<'_> {
    fn describe(&self) -> String {
        self.data.label.clone()
    }

    fn for_each_symbol(
        &mut self,
        start: NaiveDate,
        end: NaiveDate,
        visit: &mut dyn FnMut(&str, Vec<DailyBar>),
    ) -> Result<(), SourceError> {
        for (symbol, bars) in &self.data.bars {
            let from = bars.partition_point(|b| b.date < start);
            let to = bars.partition_point(|b| b.date <= end && b.date < self.before);
            // Like the bar store: a symbol without bars in the window is not visited.
            if from < to {
                visit(symbol, bars[from..to].to_vec());
            }
        }
        Ok(())
    }
}

/// The intraday bars the engine and the simulated broker see while one session is traded:
/// the synthetic 10-minute paths (the same generator and seed as `sim` mode) of the symbols
/// of interest on that session and the one before (whose last bars are the prices before the
/// first bar of the day closes). Cloned handles share one set of bars, so the backtest loads
/// each session's paths into the broker's feed.
#[derive(Debug, Clone, Default)]
pub struct SessionFeed {
    bars: Arc<RwLock<HashMap<String, Vec<IntradayBar>>>>,
}

impl SessionFeed {
    /// Replace the bars with `symbols`' paths on `sessions` (each path built from that day's
    /// daily bar; a day without one has no path).
    pub fn load(
        &self,
        data: &BacktestData,
        symbols: &[String],
        sessions: &[crate::calendar::Session],
        seed: u64,
    ) {
        let mut map = HashMap::with_capacity(symbols.len());
        for symbol in symbols {
            let mut path = Vec::new();
            for session in sessions {
                if let Some(daily) = data.bar_on(symbol, session.date) {
                    path.extend(synthetic_session_path(symbol, daily, session, seed));
                }
            }
            map.insert(symbol.clone(), path);
        }
        // A poisoned lock only means another handle panicked mid-write; the map is replaced
        // whole here, so the old contents do not matter.
        match self.bars.write() {
            Ok(mut guard) => *guard = map,
            Err(poisoned) => *poisoned.into_inner() = map,
        }
    }

    fn with<T>(&self, symbol: &str, f: impl FnOnce(&[IntradayBar]) -> T) -> T {
        let guard = match self.bars.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(guard.get(symbol).map_or(&[], Vec::as_slice))
    }
}

impl IntradayFeed for SessionFeed {
    fn bars_between(
        &self,
        symbol: &str,
        after: DateTime<Utc>,
        up_to: DateTime<Utc>,
    ) -> Vec<IntradayBar> {
        self.with(symbol, |bars| {
            let from = bars.partition_point(|b| b.end <= after);
            let to = bars.partition_point(|b| b.end <= up_to);
            bars[from..to.max(from)].to_vec()
        })
    }

    fn last_closed_bars(&self, symbol: &str, now: DateTime<Utc>, n: usize) -> Vec<IntradayBar> {
        self.with(symbol, |bars| {
            let to = bars.partition_point(|b| b.end <= now);
            bars[to.saturating_sub(n)..to].to_vec()
        })
    }
}
