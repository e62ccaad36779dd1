//! Bar sources for the scan: the SQLite bar store in the state directory (production and
//! `--provider store`) and CSV files read into memory (`--provider csv`, the demo).

use crate::market_data::{BarStore, DailyBar};
use crate::scan::run::{BarSource, SourceError};
use chrono::NaiveDate;
use std::path::{Path, PathBuf};

/// The bar store's file name inside the state directory.
pub const BAR_STORE_FILE: &str = "bars.sqlite";

pub fn bar_store_path(state_dir: &Path) -> PathBuf {
    state_dir.join(BAR_STORE_FILE)
}

/// The SQLite bar store as a scan source.
pub struct StoreSource {
    pub store: BarStore,
}

impl BarSource for StoreSource {
    fn describe(&self) -> String {
        format!("store:{}", self.store.path().display())
    }

    fn for_each_symbol(
        &mut self,
        start: NaiveDate,
        end: NaiveDate,
        visit: &mut dyn FnMut(&str, Vec<DailyBar>),
    ) -> Result<(), SourceError> {
        self.store
            .for_each_symbol(Some(start), end, visit)
            .map(|_| ())
            .map_err(|e| SourceError(e.to_string()))
    }
}
