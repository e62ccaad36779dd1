//! Market data: the daily bar type, bar validation with an explicit policy per defect, the
//! local SQLite bar store, and CSV import. Providers (store, CSV files, later Alpaca) hand the
//! scanner validated per-symbol series.

mod series;

pub use series::{BarSeries, DailyBar};
