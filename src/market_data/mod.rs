//! Market data: the daily bar type, bar validation with an explicit policy per defect, the
//! local SQLite bar store, and CSV import. Providers (store, CSV files, later Alpaca) hand the
//! scanner validated per-symbol series.

mod import;
pub mod intraday;
mod series;
mod store;
pub mod synthetic;
mod validate;

pub use import::{
    import_file, import_files, import_files_as, read_long_csv, read_long_csv_from, CsvLayout,
    IgnoredColumns, ImportError, ImportReport, RejectedRow, MAX_REJECTED_LISTED,
};
pub use series::{BarSeries, DailyBar};
pub use store::{
    bar_store_path, BarStore, BarWriter, StoreError, Written, BAR_STORE_FILE, SCHEMA_VERSION,
};
pub use validate::{validate_series, BarDefect, DefectCounts};
