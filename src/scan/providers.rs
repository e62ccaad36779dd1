//! Bar sources for the scan: the SQLite bar store in the state directory (production and
//! `--provider store`) and CSV files read into memory (`--provider csv`, the demo).

use crate::market_data::{bar_store_path, BarStore, DailyBar};
use crate::scan::run::{BarSource, SourceError};
use chrono::NaiveDate;
use std::path::Path;

/// The SQLite bar store as a scan source.
pub struct StoreSource {
    pub store: BarStore,
    /// When set, only these symbols are scanned (the current universe); the store may hold
    /// symbols that have since left it.
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
}

/// Errors of the Alpaca provider: each says what failed and what to do.
#[derive(Debug, thiserror::Error)]
pub enum AlpacaProviderError {
    #[error(transparent)]
    Alpaca(#[from] crate::alpaca::AlpacaError),
    #[error(transparent)]
    Universe(#[from] crate::universe::UniverseError),
    #[error(transparent)]
    Store(#[from] crate::market_data::StoreError),
    #[error(transparent)]
    TopUp(#[from] crate::alpaca::market_data::TopUpError),
    #[error("invalid [alpaca] setting: {0}")]
    Config(String),
    #[error(transparent)]
    Url(#[from] crate::alpaca::access::UrlError),
    /// Not a `#[source]`: the text already carries the credential error.
    #[error("Alpaca credentials unavailable: {0}")]
    Credentials(crate::credentials::CredentialError),
}

impl From<crate::alpaca::access::AccessError> for AlpacaProviderError {
    fn from(e: crate::alpaca::access::AccessError) -> Self {
        use crate::alpaca::access::AccessError;
        match e {
            AccessError::Url(e) => AlpacaProviderError::Url(e),
            AccessError::Credentials(e) => AlpacaProviderError::Credentials(e),
        }
    }
}

/// What `--provider alpaca` prepared for the scan.
pub struct AlpacaPrepared {
    pub source: StoreSource,
    pub sectors: std::collections::HashMap<String, String>,
    /// The universe source for scan.json (which of configured / cache / fallback was used;
    /// a cache or fallback is marked `[degraded: …]`).
    pub universe_source: String,
    pub requests: u64,
    pub bars_written: usize,
}

/// The production path of `scan.service`: load the universe (configured source, else the
/// cached copy, else Alpaca's active tradable US-equity assets), top up the bar store from Alpaca for its members and the benchmark (only the
/// sessions missing up to the data date), and scan the store restricted to the universe.
pub fn prepare_alpaca(
    config: &crate::config::Config,
    scan: &crate::scan::config::ScanConfig,
    data_as_of: NaiveDate,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<AlpacaPrepared, AlpacaProviderError> {
    use crate::alpaca::access::{AlpacaAccess, AlpacaUse};
    use crate::alpaca::market_data::{top_up, Adjustment, BarsOptions, Feed};
    let a = &config.alpaca;
    let options = BarsOptions {
        feed: a
            .feed
            .parse::<Feed>()
            .map_err(AlpacaProviderError::Config)?,
        adjustment: a
            .adjustment
            .parse::<Adjustment>()
            .map_err(AlpacaProviderError::Config)?,
        ..BarsOptions::default()
    };
    // URLs and credentials first: without them nothing is fetched (fail fast, name what is
    // missing).
    let credentials = crate::credentials::CredentialStore::from_process_env();
    let client = AlpacaAccess::open(a, AlpacaUse::Scan, &credentials)?.client()?;

    let source = (!scan.universe.source.is_empty()).then(|| {
        let s = &scan.universe.source;
        if s.contains("://") || Path::new(s).is_absolute() {
            s.clone()
        } else {
            config.state_dir.join(s).display().to_string()
        }
    });
    let mut load = crate::universe::LoadOptions::new(source, &config.state_dir);
    load.min_members = scan.universe.min_members;
    let mut assets_fallback = crate::alpaca::assets::AlpacaAssetsFallback::new(&client);
    let loaded = crate::universe::load_universe(&load, now, Some(&mut assets_fallback))?;
    for skipped in &loaded.skipped {
        tracing::warn!("universe source not used: {skipped}");
    }
    if let Some(e) = &loaded.cache_error {
        tracing::warn!("the universe could not be cached: {e}");
    }
    let universe = loaded.universe;
    if universe.source.is_degraded() {
        tracing::warn!(source = %universe.source, "scanning a degraded universe source");
    }
    let mut symbols: Vec<String> = universe.members.iter().map(|m| m.symbol.clone()).collect();
    if scan.regime.benchmark != crate::scan::config::EQUAL_WEIGHT_BENCHMARK {
        symbols.push(scan.regime.benchmark.clone());
    }
    symbols.sort();
    symbols.dedup();

    let mut store = BarStore::open(&bar_store_path(&config.state_dir))?;
    let report = top_up(
        &client,
        &mut store,
        &symbols,
        data_as_of,
        scan.history_days,
        &options,
    )?;
    tracing::info!(
        requests = report.requests,
        bars_written = report.bars_written,
        symbols = symbols.len(),
        "bar store topped up from Alpaca"
    );
    let sectors = universe
        .members
        .iter()
        .filter(|m| !m.sector.is_empty())
        .map(|m| (m.symbol.clone(), m.sector.clone()))
        .collect();
    Ok(AlpacaPrepared {
        source: StoreSource {
            store,
            only: Some(symbols.into_iter().collect()),
        },
        sectors,
        universe_source: if universe.source.is_degraded() {
            format!("{} [degraded: not the configured source]", universe.source)
        } else {
            universe.source.to_string()
        },
        requests: report.requests,
        bars_written: report.bars_written,
    })
}
