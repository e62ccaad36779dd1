//! The universe: Russell 3000 members from iShares IWV holdings, cached, with fallbacks.
//!
//! - [`parse`]: the raw iShares holdings CSV (preamble, BOM, quoted thousands, cash/futures/CVR/
//!   escrow rows, duplicates, trailing disclaimer) and a cleaned `Ticker,Name,Sector,Weight` file.
//! - [`classes`]: undotted class shares (`BRKB`) → broker symbols (`BRK.B`).
//! - [`load`]: the loader from a path or URL that refuses HTML/"blocked" pages served with
//!   status 200, caches the last good copy in the state dir, and falls back to that cache and
//!   then to a caller-supplied list (Alpaca's active US equities).
//!
//! The entry point for the scanner is [`load_universe`]; the [`UniverseSource`] it returns is
//! what `scan.json` reports (its `Display`).

pub mod classes;
pub mod load;
pub mod parse;

use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};

pub use classes::{remap_class_share, KNOWN_CLASS_SHARES};
pub use load::{
    holdings_link, load_universe, read_cache, redact_url, source_path, CacheError, FnFallback,
    LoadOptions, LoadOutcome, UniverseFallback, CACHE_FILE, CACHE_SIDECAR, DEFAULT_MIN_MEMBERS,
};
pub use parse::{
    parse_cleaned, parse_holdings, parse_ishares_raw, parse_number, HoldingsFormat, ParseError,
    ParseOptions, ParseReport, Parsed,
};

/// One universe member.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Member {
    /// Broker symbol (validated with [`crate::watchlist::is_valid_symbol`]).
    pub symbol: String,
    /// As iShares writes it; for fallback members whatever the fallback knows (Alpaca's asset
    /// name), possibly empty.
    pub name: String,
    /// GICS sector as iShares writes it; empty for fallback members.
    pub sector: String,
    /// Fund weight in percent, when the file has one.
    pub weight: Option<f64>,
}

/// Where the universe came from; reported in `scan.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UniverseSource {
    /// The configured local file.
    File(PathBuf),
    /// The configured URL, with credentials and secret-looking query values redacted.
    Url(String),
    /// The last good copy in the state dir.
    Cache {
        fetched_at: DateTime<Utc>,
        /// Where the cached copy came from (already redacted), or a note when unknown.
        origin: String,
        /// Age of the copy when it was loaded, in whole hours.
        age_hours: i64,
    },
    /// The caller-supplied fallback (e.g. "alpaca active US equities").
    Fallback(String),
}

impl UniverseSource {
    /// True when this is not the configured source (the scan should warn/alert).
    pub fn is_degraded(&self) -> bool {
        matches!(self, Self::Cache { .. } | Self::Fallback(_))
    }
}

impl fmt::Display for UniverseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Url(url) => write!(f, "url {url}"),
            Self::Cache {
                fetched_at,
                origin,
                age_hours,
            } => write!(
                f,
                "cache (last good copy of {origin}, fetched {}, {:.1} days old)",
                fetched_at.format("%Y-%m-%dT%H:%M:%SZ"),
                *age_hours as f64 / 24.0
            ),
            Self::Fallback(name) => write!(f, "fallback {name}"),
        }
    }
}

/// The loaded universe.
#[derive(Debug, Clone, PartialEq)]
pub struct Universe {
    pub members: Vec<Member>,
    /// "Holdings as of" from the iShares preamble, when present.
    pub as_of: Option<NaiveDate>,
    pub source: UniverseSource,
    pub report: ParseReport,
}

impl Universe {
    pub fn symbols(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| m.symbol.as_str())
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// Loading failed on every source.
#[derive(Debug, thiserror::Error)]
pub enum UniverseError {
    #[error("no universe source worked:\n{}\nTo fix: make scan.universe.source a reachable iShares IWV holdings CSV (path or URL), restore {cache}, or make the last fallback work (with --provider alpaca: Alpaca's asset list, which needs the Trading API and keys).", attempts.iter().map(|a| format!("  - {a}")).collect::<Vec<_>>().join("\n"))]
    NoSource {
        /// One line per source tried, saying why it was not used.
        attempts: Vec<String>,
        /// The cache path that was looked at.
        cache: String,
    },
}
