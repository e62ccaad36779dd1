//! The SQLite bar store as a scan bar source (production, `--provider store` and, restricted
//! to the universe, `--provider alpaca`). In-memory sources (CSV files, the demo, synthetic
//! data) are [`crate::scan::run::MemorySource`]; choosing among them is the scan service's job.

use crate::market_data::{BarStore, DailyBar};
use crate::scan::run::{BarSource, SourceError};
use chrono::NaiveDate;

/// The SQLite bar store as a scan source.
pub struct StoreSource {
    pub store: BarStore,
    /// When set, only these symbols are scanned (the current universe; the store may hold
    /// symbols that have since left it), and each one counts in the coverage, also when the
    /// store has no bar for it.
    pub only: Option<std::collections::HashSet<String>>,
}

impl StoreSource {
    pub fn new(store: BarStore) -> Self {
        Self { store, only: None }
    }
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
        let only = &self.only;
        self.store
            .for_each_symbol(Some(start), end, |symbol, bars| {
                if only.as_ref().is_none_or(|set| set.contains(symbol)) {
                    visit(symbol, bars);
                }
            })
            .map(|_| ())
            .map_err(|e| SourceError(e.to_string()))
    }

    fn universe(&self) -> Option<Vec<String>> {
        self.only.as_ref().map(|set| set.iter().cloned().collect())
    }
}
