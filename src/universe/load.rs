//! Loading the universe: configured source → last good cached copy → caller-supplied fallback →
//! error.
//!
//! A holdings text is accepted only when it has the holdings header and at least
//! [`LoadOptions::min_members`] equity rows, so an HTML product page, a CDN challenge or an
//! "Access Denied" page served with HTTP 200 is refused (reference anchors.md §4.2) and never
//! replaces the cache. Unlike the predecessor (upstream-scanner.md §8 item 17), a "blocked"
//! response falls back to the cache like any other failure, and the cache lives in the state dir,
//! never relative to the working directory.
//!
//! Cache: `<state_dir>/universe_cache.csv` holds the accepted text byte for byte (so it is
//! re-parsed by the same parser), `<state_dir>/universe_cache.json` records where and when it was
//! fetched and its sha256. Both are written atomically, the CSV first; a sidecar whose sha256 does
//! not match the CSV (a crash between the two writes) is ignored and the CSV's mtime is used.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::parse::{classify_non_csv, parse_holdings, HoldingsFormat, ParseOptions, ParseReport};
use super::{Member, Universe, UniverseError, UniverseSource};
use crate::fsutil::{read_regular, write_bytes_atomic, SizeLimit};
use crate::watchlist::is_valid_symbol;

/// The cached copy of the last good holdings text, in the state dir.
pub const CACHE_FILE: &str = "universe_cache.csv";
/// Its sidecar: source, fetch time, sha256.
pub const CACHE_SIDECAR: &str = "universe_cache.json";
/// Default minimum number of equity rows for a holdings file to be accepted. The real IWV file
/// has about 2,580–2,600 equity rows.
pub const DEFAULT_MIN_MEMBERS: usize = 1000;

/// Loader settings.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// A local path (optionally `file://…`) or an `http(s)://` URL of a holdings CSV (raw iShares
    /// or cleaned). `None` skips straight to the cache.
    pub source: Option<String>,
    /// Where the cache is kept.
    pub state_dir: PathBuf,
    /// Minimum equity rows for a holdings file (configured source and cache) or a fallback list.
    pub min_members: usize,
    /// Whole-request timeout for a URL source (connect timeout is the smaller of this and 10 s).
    pub timeout: Duration,
    /// Largest response body, holdings file or cached copy accepted, in bytes (default
    /// 32 MiB; an iShares IWV holdings file is about 1 MB).
    pub max_bytes: u64,
    /// `User-Agent` sent to the URL source.
    pub user_agent: String,
    /// Refuse a cached copy older than this (`None`: any age, reported in the source).
    pub max_cache_age: Option<chrono::Duration>,
    pub parse: ParseOptions,
}

impl LoadOptions {
    pub fn new(source: Option<String>, state_dir: impl Into<PathBuf>) -> Self {
        Self {
            source,
            state_dir: state_dir.into(),
            min_members: DEFAULT_MIN_MEMBERS,
            timeout: Duration::from_secs(30),
            max_bytes: 32 * 1024 * 1024,
            user_agent: concat!("avwap/", env!("CARGO_PKG_VERSION"), " (universe loader)")
                .to_string(),
            max_cache_age: None,
            parse: ParseOptions::default(),
        }
    }

    pub fn cache_path(&self) -> PathBuf {
        self.state_dir.join(CACHE_FILE)
    }

    pub fn sidecar_path(&self) -> PathBuf {
        self.state_dir.join(CACHE_SIDECAR)
    }
}

/// The last resort: a list of symbols from elsewhere, supplied by the caller. In production
/// the scan service supplies Alpaca's active, tradable US equities (implemented at the Alpaca
/// edge, which depends on this trait; the universe never depends on Alpaca).
pub trait UniverseFallback {
    /// Short description for `scan.json`, e.g. `alpaca active us_equity assets`.
    fn name(&self) -> String;
    /// The symbols; an `Err` is a human-readable reason.
    fn symbols(&mut self) -> Result<Vec<String>, String>;
    /// The members, with whatever the fallback knows beyond the symbol (e.g. the name). The
    /// default is [`UniverseFallback::symbols`] with empty name and sector and no weight.
    fn members(&mut self) -> Result<Vec<Member>, String> {
        Ok(self
            .symbols()?
            .into_iter()
            .map(|symbol| Member {
                symbol,
                name: String::new(),
                sector: String::new(),
                weight: None,
            })
            .collect())
    }
}

/// A [`UniverseFallback`] from a name and a closure.
pub struct FnFallback<F> {
    name: String,
    f: F,
}

impl<F> FnFallback<F>
where
    F: FnMut() -> Result<Vec<String>, String>,
{
    pub fn new(name: impl Into<String>, f: F) -> Self {
        Self {
            name: name.into(),
            f,
        }
    }
}

impl<F> UniverseFallback for FnFallback<F>
where
    F: FnMut() -> Result<Vec<String>, String>,
{
    fn name(&self) -> String {
        self.name.clone()
    }

    fn symbols(&mut self) -> Result<Vec<String>, String> {
        (self.f)()
    }
}

/// A successful load.
#[derive(Debug, Clone)]
pub struct LoadOutcome {
    pub universe: Universe,
    /// Sources tried before the one used, each with why it was not used (log and alert these).
    pub skipped: Vec<String>,
    /// Set when the good copy could not be cached (the load itself succeeded).
    pub cache_error: Option<String>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Sidecar {
    source: String,
    fetched_at: DateTime<Utc>,
    as_of: Option<chrono::NaiveDate>,
    members: usize,
    sha256: String,
}

/// The bound on a holdings file or cached copy read from disk (only regular files are read).
fn file_limit(opts: &LoadOptions) -> SizeLimit {
    SizeLimit {
        bytes: opts.max_bytes,
        what: "a universe holdings file",
        hint: "an iShares IWV holdings file is about 1 MB, so this is not one",
    }
}

/// The sidecar is a few hundred bytes of JSON; a larger one is ignored like a stale one.
const SIDECAR_LIMIT: SizeLimit = SizeLimit {
    bytes: 64 * 1024,
    what: "a universe cache sidecar",
    hint: "it is rewritten by the next successful load",
};

/// Load the universe: the configured source, else the cached copy, else `fallback`, else an
/// error listing what was tried. `now` is the current instant (from the injected clock).
pub fn load_universe(
    opts: &LoadOptions,
    now: DateTime<Utc>,
    fallback: Option<&mut dyn UniverseFallback>,
) -> Result<LoadOutcome, UniverseError> {
    let mut skipped = Vec::new();

    match opts.source.as_deref().map(str::trim) {
        Some(source) if !source.is_empty() => match load_configured(opts, source) {
            Ok((universe, bytes)) => {
                let cache_error = write_cache(opts, &universe, &bytes, now).err();
                return Ok(LoadOutcome {
                    universe,
                    skipped,
                    cache_error,
                });
            }
            Err(reason) => skipped.push(reason),
        },
        _ => skipped.push("no source configured (scan.universe.source)".to_string()),
    }

    match load_cache(opts, now) {
        Ok(universe) => {
            return Ok(LoadOutcome {
                universe,
                skipped,
                cache_error: None,
            })
        }
        Err(reason) => skipped.push(reason),
    }

    match fallback {
        Some(fallback) => match load_fallback(opts, fallback) {
            Ok(universe) => {
                return Ok(LoadOutcome {
                    universe,
                    skipped,
                    cache_error: None,
                })
            }
            Err(reason) => skipped.push(reason),
        },
        None => skipped.push("no fallback configured".to_string()),
    }

    Err(UniverseError::NoSource {
        attempts: skipped,
        cache: opts.cache_path().display().to_string(),
    })
}

fn is_url(source: &str) -> bool {
    let lower = source.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Read and validate the configured source; returns the universe and the accepted bytes.
fn load_configured(opts: &LoadOptions, source: &str) -> Result<(Universe, Vec<u8>), String> {
    if is_url(source) {
        let shown = redact_url(source);
        let (mut bytes, mut content_type) =
            fetch_url(opts, source).map_err(|e| format!("url {shown}: {e}"))?;
        // The configured URL may be the iShares product page: follow its holdings-CSV link once.
        if let Some(link) = holdings_link(source, &String::from_utf8_lossy(&bytes)) {
            let link_shown = redact_url(&link);
            (bytes, content_type) = fetch_url(opts, &link)
                .map_err(|e| format!("url {shown}: its holdings link {link_shown} failed: {e}"))?;
        }
        let (members, as_of, report) = validate(opts, &bytes, content_type.as_deref())
            .map_err(|e| format!("url {shown}: {e}"))?;
        let universe = Universe {
            members,
            as_of,
            source: UniverseSource::Url(shown),
            report,
        };
        Ok((universe, bytes))
    } else {
        let path = PathBuf::from(source.strip_prefix("file://").unwrap_or(source));
        let bytes = read_regular(&path, file_limit(opts))
            .map_err(|e| format!("file {}: {e}", path.display()))?;
        let (members, as_of, report) =
            validate(opts, &bytes, None).map_err(|e| format!("file {}: {e}", path.display()))?;
        let universe = Universe {
            members,
            as_of,
            source: UniverseSource::File(path),
            report,
        };
        Ok((universe, bytes))
    }
}

type Validated = (Vec<Member>, Option<chrono::NaiveDate>, ParseReport);

/// Accept a text only if it is a holdings table with enough equity rows.
fn validate(
    opts: &LoadOptions,
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<Validated, String> {
    let text = String::from_utf8_lossy(bytes);
    let html_type = content_type.is_some_and(|ct| ct.to_ascii_lowercase().contains("html"));
    let parsed = match parse_holdings(&text, &opts.parse) {
        Ok(parsed) => parsed,
        Err(e) if html_type => {
            return Err(format!(
                "served as {:?}: {e}",
                content_type.unwrap_or_default()
            ))
        }
        Err(e) => return Err(e.to_string()),
    };
    if parsed.members.len() < opts.min_members {
        let what = if html_type {
            format!(
                " (served as {:?}; a web page, not the file?)",
                content_type.unwrap_or_default()
            )
        } else {
            classify_non_csv(&text)
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        };
        return Err(format!(
            "only {} equity rows, fewer than the minimum {} (scan.universe.min_members){what}: truncated or not the holdings file",
            parsed.members.len(),
            opts.min_members
        ));
    }
    Ok((parsed.members, parsed.as_of, parsed.report))
}

fn fetch_url(opts: &LoadOptions, url: &str) -> Result<(Vec<u8>, Option<String>), String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(opts.timeout)
        .connect_timeout(opts.timeout.min(Duration::from_secs(10)))
        .user_agent(opts.user_agent.clone())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", e.without_url()))?;
    let response = client
        .get(url)
        .header(
            reqwest::header::ACCEPT,
            "text/csv,application/csv,text/plain,*/*",
        )
        .send()
        .map_err(|e| {
            if e.is_timeout() {
                format!("timed out after {:?}", opts.timeout)
            } else if e.is_connect() {
                format!("cannot connect: {}", e.without_url())
            } else {
                format!("request failed: {}", e.without_url())
            }
        })?;
    let status = response.status();
    if !status.is_success() {
        let hint = match status.as_u16() {
            403 | 429 => " (blocked or rate-limited by the server)",
            404 => " (the holdings link moved?)",
            _ => "",
        };
        return Err(format!("HTTP {status}{hint}"));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut bytes = Vec::new();
    response
        .take(opts.max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the body failed: {e}"))?;
    if bytes.len() as u64 > opts.max_bytes {
        return Err(format!("body larger than {} bytes", opts.max_bytes));
    }
    Ok((bytes, content_type))
}

/// In an HTML page (the iShares product page), the first link to the fund's holdings CSV: an
/// `.ajax` URL with `fileType=csv`, `dataType=fund` and a `fileName` ending in `_holdings`
/// (reference upstream-scanner.md §1.1), resolved against `base`. `None` for anything that is not
/// HTML or has no such link.
pub fn holdings_link(base: &str, page: &str) -> Option<String> {
    let head = page.trim_start_matches('\u{feff}').trim_start();
    if !(head.starts_with('<') || head.get(..1024).unwrap_or(head).contains("<html")) {
        return None;
    }
    let page = page.replace("&amp;", "&");
    let base = reqwest::Url::parse(base).ok()?;
    page.split(['"', '\'', ' ', '<', '>', '(', ')'])
        .filter(|token| token.contains(".ajax?"))
        .find(|token| {
            let lower = token.to_ascii_lowercase();
            lower.contains("filetype=csv")
                && lower.contains("datatype=fund")
                && lower.contains("_holdings")
        })
        .and_then(|token| base.join(token).ok())
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .map(|url| url.to_string())
}

/// A URL fit for logs and `scan.json`: no user info, secret-looking query values replaced.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return "<unparseable URL>".to_string();
    };
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    if parsed.query().is_some() {
        const SECRET: &[&str] = &[
            "key",
            "token",
            "secret",
            "sig",
            "signature",
            "password",
            "auth",
            "credential",
        ];
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                let v = if SECRET.iter().any(|s| lower.contains(s)) {
                    "REDACTED".to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write_cache(
    opts: &LoadOptions,
    universe: &Universe,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<(), String> {
    let origin = match &universe.source {
        UniverseSource::File(path) => format!("file {}", path.display()),
        other => other.to_string(),
    };
    let sidecar = Sidecar {
        source: origin,
        fetched_at: now,
        as_of: universe.as_of,
        members: universe.members.len(),
        sha256: sha256_hex(bytes),
    };
    let json = serde_json::to_vec_pretty(&sidecar).map_err(|e| e.to_string())?;
    let csv_path = opts.cache_path();
    let json_path = opts.sidecar_path();
    fs::create_dir_all(&opts.state_dir)
        .and_then(|()| write_bytes_atomic(&csv_path, bytes))
        .and_then(|()| write_bytes_atomic(&json_path, &json))
        .map_err(|e| {
            format!(
                "could not cache the universe at {}: {e}",
                csv_path.display()
            )
        })
}

/// Why the cached copy cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// There is none (no load from the configured source has succeeded here yet).
    #[error("no cached copy at {}", .0.display())]
    Missing(PathBuf),
    /// It is there but unreadable, too old for `max_cache_age` or not a holdings file; the
    /// text names the path and why.
    #[error("{0}")]
    Unusable(String),
}

fn load_cache(opts: &LoadOptions, now: DateTime<Utc>) -> Result<Universe, String> {
    read_cache(opts, now).map_err(|e| e.to_string())
}

/// The cached copy exactly as the loader would use it (validated the same way; its source is
/// [`UniverseSource::Cache`] with when and where it was fetched), without touching anything:
/// for a health check. `now` gives the age.
pub fn read_cache(opts: &LoadOptions, now: DateTime<Utc>) -> Result<Universe, CacheError> {
    let path = opts.cache_path();
    let bytes = match read_regular(&path, file_limit(opts)) {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => return Err(CacheError::Missing(path)),
        Err(e) => {
            return Err(CacheError::Unusable(format!(
                "cache {}: {e}",
                path.display()
            )))
        }
    };
    let sidecar: Option<Sidecar> = read_regular(&opts.sidecar_path(), SIDECAR_LIMIT)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|s: &Sidecar| s.sha256 == sha256_hex(&bytes));
    let (fetched_at, origin) = match sidecar {
        Some(s) => (s.fetched_at, s.source),
        None => {
            let mtime = fs::metadata(&path)
                .and_then(|m| m.modified())
                .map(DateTime::<Utc>::from)
                .map_err(|e| CacheError::Unusable(format!("cache {}: {e}", path.display())))?;
            (
                mtime,
                "unknown origin (sidecar missing or stale)".to_string(),
            )
        }
    };
    let age = now.signed_duration_since(fetched_at);
    if let Some(max) = opts.max_cache_age {
        if age > max {
            return Err(CacheError::Unusable(format!(
                "cache {} is {} days old, older than the allowed {} days",
                path.display(),
                age.num_days(),
                max.num_days()
            )));
        }
    }
    let (members, as_of, report) = validate(opts, &bytes, None)
        .map_err(|e| CacheError::Unusable(format!("cache {}: {e}", path.display())))?;
    Ok(Universe {
        members,
        as_of,
        source: UniverseSource::Cache {
            fetched_at,
            origin,
            age_hours: age.num_hours(),
        },
        report,
    })
}

fn load_fallback(
    opts: &LoadOptions,
    fallback: &mut dyn UniverseFallback,
) -> Result<Universe, String> {
    let name = fallback.name();
    let listed = fallback
        .members()
        .map_err(|e| format!("fallback {name}: {e}"))?;
    let mut report = ParseReport {
        format: HoldingsFormat::Cleaned,
        header_line: 0,
        rows: listed.len(),
        dropped_non_equity: 0,
        non_equity: Vec::new(),
        duplicates: 0,
        duplicate_symbols: Vec::new(),
        remapped: Vec::new(),
        rejected: Vec::new(),
        trailer_lines: 0,
    };
    let mut seen = std::collections::HashSet::new();
    let mut members = Vec::new();
    for (index, member) in listed.into_iter().enumerate() {
        let symbol = member.symbol.trim().to_ascii_uppercase();
        if !is_valid_symbol(&symbol) {
            report.rejected.push((
                index as u64 + 1,
                format!("{:?} is not a valid symbol", member.symbol),
            ));
            continue;
        }
        if !seen.insert(symbol.clone()) {
            report.duplicates += 1;
            if !report.duplicate_symbols.contains(&symbol) {
                report.duplicate_symbols.push(symbol);
            }
            continue;
        }
        members.push(Member { symbol, ..member });
    }
    if members.len() < opts.min_members {
        return Err(format!(
            "fallback {name}: only {} valid symbols, fewer than the minimum {}",
            members.len(),
            opts.min_members
        ));
    }
    Ok(Universe {
        members,
        as_of: None,
        source: UniverseSource::Fallback(name),
        report,
    })
}

/// The path a `file://` or plain source refers to (for config validation).
pub fn source_path(source: &str) -> Option<&Path> {
    (!is_url(source)).then(|| Path::new(source.strip_prefix("file://").unwrap_or(source)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_and_secret_query_values() {
        let r = redact_url("https://user:pw@example.com/x.ajax?fileType=csv&api_key=abc&token=t");
        assert!(!r.contains("pw") && !r.contains("user") && !r.contains("abc"));
        assert!(r.contains("fileType=csv"));
        assert!(r.contains("api_key=REDACTED"));
        assert_eq!(redact_url("not a url"), "<unparseable URL>");
    }

    #[test]
    fn finds_the_holdings_link_in_a_product_page() {
        let page = r#"<!DOCTYPE html><html><a href="/us/products/239714/ishares-russell-3000-etf/1467271812596.ajax?fileType=csv&amp;fileName=IWV_holdings&amp;dataType=fund">Download</a>
            <a href="/x.ajax?fileType=json&dataType=fund&fileName=IWV_holdings">json</a></html>"#;
        assert_eq!(
            holdings_link("https://www.ishares.com/us/products/239714/ishares-russell-3000-etf", page).as_deref(),
            Some("https://www.ishares.com/us/products/239714/ishares-russell-3000-etf/1467271812596.ajax?fileType=csv&fileName=IWV_holdings&dataType=fund")
        );
        assert_eq!(holdings_link("https://x/", "Ticker,Name\n"), None);
        assert_eq!(holdings_link("https://x/", "<html>no link</html>"), None);
    }

    #[test]
    fn source_kinds() {
        assert!(is_url("HTTPS://x"));
        assert_eq!(source_path("file:///a/b.csv"), Some(Path::new("/a/b.csv")));
        assert_eq!(source_path("https://x/y"), None);
    }
}
