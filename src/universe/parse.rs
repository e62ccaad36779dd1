//! Parsing holdings files: the raw iShares IWV download and a cleaned `Ticker,Name,Sector,Weight`
//! file.
//!
//! The raw iShares file (reference anchors.md §4.2) looks like
//!
//! ```text
//! iShares Russell 3000 ETF
//! Fund Holdings as of,"Jul 24, 2026"
//! Inception Date,"May 22, 2000"
//! ...
//!
//! Ticker,Name,Sector,Asset Class,Market Value,Weight (%),Notional Value,Quantity,Price,Location,Exchange,...
//! "NVDA","NVIDIA CORP","Information Technology","Equity","1,310,992,874.32","6.44",...
//! ...
//! "ESU6","S&P500 EMINI SEP 26","Cash and/or Derivatives","Futures",...
//!
//! "The content contained herein is owned or licensed by BlackRock ..."
//! ```
//!
//! Quirks handled: an optional UTF-8 BOM; a preamble before the header (the "Holdings as of" date
//! is read from it); the header found by content (`Ticker` first, or `Ticker` and `Asset Class`)
//! within the first [`ParseOptions::header_search_lines`] lines; comma or tab delimiter; quoted
//! numbers with thousands separators; a trailing disclaimer after the table; non-equity rows
//! (by `Asset Class`, by the `Cash and/or Derivatives` sector, by an unlisted exchange, by CVR /
//! escrow names, by ticker shape: `-`, digits as in `P5N994` or `ESU6`); class shares without a dot
//! (see [`super::classes`]); duplicate tickers (the first row is kept, the rest counted).

use std::collections::HashMap;

use chrono::NaiveDate;

use super::classes::remap_class_share;
use super::Member;
use crate::fsutil::excerpt;
use crate::watchlist::is_valid_symbol;

/// Which layout a holdings file had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoldingsFormat {
    /// The iShares download: preamble, `Asset Class` column, disclaimer.
    IsharesRaw,
    /// A cleaned file whose first line is the header `Ticker,Name,Sector,Weight`.
    Cleaned,
}

/// Parser settings.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// How many lines from the top are searched for the header (default 200; the real file has
    /// a 9–10 line preamble).
    pub header_search_lines: usize,
    /// Extra undotted → broker symbol remaps, tried before the built-in table
    /// ([`super::classes::KNOWN_CLASS_SHARES`]). Mapping a ticker to itself disables a built-in
    /// entry.
    pub extra_remaps: Vec<(String, String)>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            header_search_lines: 200,
            extra_remaps: Vec::new(),
        }
    }
}

/// What the parser did besides producing members. Line numbers are 1-based lines of the input.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ParseReport {
    pub format: HoldingsFormat,
    /// The line holding the column header.
    pub header_line: u64,
    /// Table rows seen (members + dropped + duplicates + rejected).
    pub rows: usize,
    /// Rows that are not listed equities (cash, futures, FX, money market, CVRs, escrows...).
    pub dropped_non_equity: usize,
    /// Why each of those rows was dropped: (line, "TICKER: reason").
    pub non_equity: Vec<(u64, String)>,
    /// Rows whose symbol was already taken by an earlier row (the first row is kept).
    pub duplicates: usize,
    /// The symbols that had duplicates, each once, in order of first duplicate.
    pub duplicate_symbols: Vec<String>,
    /// Class-share tickers rewritten to broker symbols: (as written, broker symbol).
    pub remapped: Vec<(String, String)>,
    /// Rows that could not be used: (line, reason).
    pub rejected: Vec<(u64, String)>,
    /// Lines after the table (the disclaimer) that were ignored.
    pub trailer_lines: usize,
}

/// The result of parsing one holdings file.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub members: Vec<Member>,
    /// The "Holdings as of" date from the preamble (raw files only).
    pub as_of: Option<NaiveDate>,
    pub report: ParseReport,
}

/// Why a text is not a holdings file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("this is an HTML page, not a holdings CSV (a product page, a CDN challenge or an error page was served instead of the file)")]
    Html,
    #[error("this is a \"blocked\" / access-denied page, not a holdings CSV: {0:?}")]
    Blocked(String),
    #[error("no header line with a `Ticker` column (and `Asset Class`, or `Ticker` first) in the first {0} lines: not a holdings CSV")]
    NoHeader(usize),
    #[error(
        "expected a raw iShares holdings file with an `Asset Class` column, found the header {}", excerpt(.0)
    )]
    NotRaw(String),
    #[error("expected a cleaned holdings file whose first line is the header `Ticker,Name,Sector,Weight`, found the header on line {0} after a preamble")]
    NotCleaned(u64),
    #[error("CSV error: {0}")]
    Csv(String),
}

/// Parse a holdings file of either layout (detected from the header).
pub fn parse_holdings(text: &str, opts: &ParseOptions) -> Result<Parsed, ParseError> {
    parse_with(text, opts, None)
}

/// Parse a raw iShares holdings download (preamble and `Asset Class` column required).
pub fn parse_ishares_raw(text: &str, opts: &ParseOptions) -> Result<Parsed, ParseError> {
    parse_with(text, opts, Some(HoldingsFormat::IsharesRaw))
}

/// Parse a cleaned `Ticker,Name,Sector,Weight` file (header on the first line; `Weight` may also
/// be spelled `WeightPct` or `Weight (%)`; only `Ticker` is required).
pub fn parse_cleaned(text: &str, opts: &ParseOptions) -> Result<Parsed, ParseError> {
    parse_with(text, opts, Some(HoldingsFormat::Cleaned))
}

/// Parse a number as iShares writes it: `"1,234,567.00"`, `6.44`, `-` or empty for none,
/// `(1.5)` for negative, an optional trailing `%`.
pub fn parse_number(value: &str) -> Result<Option<f64>, String> {
    let v = value.trim().trim_end_matches('%').trim();
    if v.is_empty() || v == "-" || v == "--" {
        return Ok(None);
    }
    let (negative, v) = match v.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
        Some(inner) => (true, inner),
        None => (false, v),
    };
    let cleaned: String = v.chars().filter(|c| *c != ',').collect();
    match cleaned.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(Some(if negative { -n } else { n })),
        _ => Err(format!("{} is not a number", excerpt(value))),
    }
}

/// Classify a text that did not yield a header, for a clearer error.
pub(crate) fn classify_non_csv(text: &str) -> Option<ParseError> {
    let head: String = text
        .chars()
        .take(4096)
        .collect::<String>()
        .to_ascii_lowercase();
    let trimmed = head.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('<')
        || head.contains("<html")
        || head.contains("<!doctype")
        || head.contains("<body")
    {
        return Some(ParseError::Html);
    }
    const BLOCKED: &[&str] = &[
        "access denied",
        "blocked",
        "captcha",
        "are you a robot",
        "request unsuccessful",
        "forbidden",
        "too many requests",
    ];
    if BLOCKED.iter().any(|m| head.contains(m)) {
        let first = text
            .trim_start_matches('\u{feff}')
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        return Some(ParseError::Blocked(first.chars().take(120).collect()));
    }
    None
}

struct Header {
    /// Byte offset of the header line in the BOM-stripped text.
    offset: usize,
    /// 1-based line number of the header.
    line: u64,
    delimiter: u8,
    fields: Vec<String>,
}

fn parse_with(
    text: &str,
    opts: &ParseOptions,
    expect: Option<HoldingsFormat>,
) -> Result<Parsed, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (header, as_of, first_nonblank) =
        find_header(text, opts.header_search_lines).ok_or_else(|| {
            classify_non_csv(text).unwrap_or(ParseError::NoHeader(opts.header_search_lines))
        })?;
    let cols = Columns::new(&header.fields);
    let format = if cols.asset_class.is_some() {
        HoldingsFormat::IsharesRaw
    } else {
        HoldingsFormat::Cleaned
    };
    match expect {
        Some(HoldingsFormat::IsharesRaw) if format != HoldingsFormat::IsharesRaw => {
            return Err(ParseError::NotRaw(header.fields.join(",")));
        }
        Some(HoldingsFormat::Cleaned) if header.line != first_nonblank => {
            return Err(ParseError::NotCleaned(header.line));
        }
        _ => {}
    }

    let mut report = ParseReport {
        format,
        header_line: header.line,
        rows: 0,
        dropped_non_equity: 0,
        non_equity: Vec::new(),
        duplicates: 0,
        duplicate_symbols: Vec::new(),
        remapped: Vec::new(),
        rejected: Vec::new(),
        trailer_lines: 0,
    };
    let mut members: Vec<Member> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut in_trailer = false;

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(header.delimiter)
        .from_reader(&text.as_bytes()[header.offset..]);
    let ncols = header.fields.len();
    let (mut scanned_to, mut lines_before) = (0usize, 0u64);
    for (index, result) in reader.records().enumerate() {
        let record = result.map_err(|e| ParseError::Csv(e.to_string()))?;
        if index == 0 {
            continue; // the header itself
        }
        // Line numbers from byte offsets (the csv crate's own count drifts on CRLF input).
        // On CRLF input the reported start can sit on the `\n` ending the previous line.
        let body = &text.as_bytes()[header.offset..];
        let mut byte = record.position().map_or(scanned_to, |p| p.byte() as usize);
        while byte < body.len() && matches!(body[byte], b'\r' | b'\n') {
            byte += 1;
        }
        lines_before += body[scanned_to..byte.min(body.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        scanned_to = byte.max(scanned_to);
        let line = header.line + lines_before;
        let fields: Vec<&str> = record.iter().map(clean_field).collect();
        if fields.iter().all(|f| f.is_empty()) {
            continue;
        }
        let width = fields.len() - fields.iter().rev().take_while(|f| f.is_empty()).count();
        if fields.len() < ncols || width > ncols {
            if fields.len() < ncols && looks_like_trailer(&fields) {
                in_trailer = true;
                report.trailer_lines += 1;
            } else {
                report.rows += 1;
                report.rejected.push((
                    line,
                    format!(
                        "has {} fields, expected {ncols} (truncated or malformed row)",
                        fields.len()
                    ),
                ));
            }
            continue;
        }
        report.rows += 1;
        if in_trailer {
            report.rejected.push((
                line,
                "table row after the trailing disclaimer (two tables in one file?)".to_string(),
            ));
            continue;
        }
        let get = |i: Option<usize>| i.and_then(|i| fields.get(i).copied()).unwrap_or("");
        let ticker = get(Some(cols.ticker)).to_ascii_uppercase();
        let name = get(cols.name);
        let sector = get(cols.sector);
        let asset_class = get(cols.asset_class);
        let exchange = get(cols.exchange);

        if let Some(reason) = non_equity_reason(&ticker, name, sector, asset_class, exchange) {
            report.dropped_non_equity += 1;
            let shown = if ticker.is_empty() { "(none)" } else { &ticker };
            report.non_equity.push((line, format!("{shown}: {reason}")));
            continue;
        }
        if ticker.is_empty() {
            report
                .rejected
                .push((line, "empty ticker on an equity row".to_string()));
            continue;
        }
        let symbol = match remap_class_share(&ticker, &opts.extra_remaps) {
            Some(mapped) => {
                report.remapped.push((ticker.clone(), mapped.clone()));
                mapped
            }
            None => ticker.clone(),
        };
        if !is_valid_symbol(&symbol) {
            report
                .rejected
                .push((line, format!("{} is not a valid symbol", excerpt(&ticker))));
            continue;
        }
        let weight = match parse_number(get(cols.weight)) {
            Ok(w) => w,
            Err(e) => {
                report
                    .rejected
                    .push((line, format!("{symbol}: weight {e}")));
                continue;
            }
        };
        if seen.contains_key(&symbol) {
            report.duplicates += 1;
            if !report.duplicate_symbols.contains(&symbol) {
                report.duplicate_symbols.push(symbol);
            }
            continue;
        }
        seen.insert(symbol.clone(), members.len());
        members.push(Member {
            symbol,
            name: name.to_string(),
            sector: sector.to_string(),
            weight,
        });
    }

    Ok(Parsed {
        members,
        as_of,
        report,
    })
}

/// Trim whitespace (including NBSP, which iShares uses in blank lines) and stray BOMs.
fn clean_field(f: &str) -> &str {
    f.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}' || c == '\u{a0}')
}

/// A short record after the table: disclaimer prose, not a truncated data row.
fn looks_like_trailer(fields: &[&str]) -> bool {
    let first = fields.first().copied().unwrap_or("");
    let non_empty = fields.iter().filter(|f| !f.is_empty()).count();
    let ticker_like = !first.is_empty()
        && first.len() <= 12
        && first
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"./- ".contains(&b));
    non_empty <= 2 || !ticker_like
}

/// Why a row is not a listed equity, or `None` when it is one.
fn non_equity_reason(
    ticker: &str,
    name: &str,
    sector: &str,
    asset_class: &str,
    exchange: &str,
) -> Option<String> {
    if !asset_class.is_empty() && !asset_class.eq_ignore_ascii_case("equity") {
        return Some(format!("Asset Class {}", excerpt(asset_class)));
    }
    if sector.eq_ignore_ascii_case("cash and/or derivatives") {
        return Some(format!("Sector {}", excerpt(sector)));
    }
    if matches!(ticker, "-" | "--" | "NAN" | "NONE" | "NULL" | "N/A") {
        return Some(format!("placeholder ticker {ticker:?} (cash or other)"));
    }
    let exchange_upper = exchange.to_ascii_uppercase();
    if exchange_upper.contains("NO MARKET") || exchange_upper.contains("UNLISTED") {
        return Some(format!("not listed (Exchange {})", excerpt(exchange)));
    }
    let name_upper = name.to_ascii_uppercase();
    let words: Vec<&str> = name_upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if words.iter().any(|w| matches!(*w, "CVR" | "CVRS")) || name_upper.contains("CONTINGENT VALUE")
    {
        return Some(format!("contingent value right ({})", excerpt(name)));
    }
    if words.contains(&"ESCROW") {
        return Some(format!("escrow ({})", excerpt(name)));
    }
    if ticker.bytes().any(|b| b.is_ascii_digit()) {
        return Some(
            "ticker with digits (escrow/placeholder or future), not a listed stock".into(),
        );
    }
    None
}

/// Find the header; also read the as-of date from the preamble and note the first non-blank line.
fn find_header(text: &str, max_lines: usize) -> Option<(Header, Option<NaiveDate>, u64)> {
    let mut offset = 0usize;
    let mut as_of = None;
    let mut first_nonblank = None;
    for (index, raw_line) in text.split_inclusive('\n').enumerate().take(max_lines) {
        let line_no = index as u64 + 1;
        let line = raw_line.trim_end_matches(['\r', '\n']);
        if !clean_field(line).is_empty() && first_nonblank.is_none() {
            first_nonblank = Some(line_no);
        }
        for delimiter in [b',', b'\t'] {
            let fields = split_line(line, delimiter);
            if is_header(&fields) {
                let header = Header {
                    offset,
                    line: line_no,
                    delimiter,
                    fields,
                };
                return Some((header, as_of, first_nonblank.unwrap_or(line_no)));
            }
        }
        if as_of.is_none() {
            as_of = as_of_date(&split_line(line, b','));
        }
        offset += raw_line.len();
    }
    None
}

fn split_line(line: &str, delimiter: u8) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(line.as_bytes());
    match reader.records().next() {
        Some(Ok(record)) => record.iter().map(|f| clean_field(f).to_string()).collect(),
        _ => Vec::new(),
    }
}

fn is_header(fields: &[String]) -> bool {
    let has = |name: &str| fields.iter().any(|f| f.eq_ignore_ascii_case(name));
    fields.len() >= 2
        && has("ticker")
        && (fields[0].eq_ignore_ascii_case("ticker") || has("asset class"))
}

/// `Fund Holdings as of,"Jul 24, 2026"` (or the date in the same field after "as of").
fn as_of_date(fields: &[String]) -> Option<NaiveDate> {
    let first = fields.first()?;
    let lower = first.to_ascii_lowercase();
    let pos = lower.find("as of")?;
    let candidate = match fields.get(1) {
        Some(second) if !second.is_empty() => second.clone(),
        _ => first[pos + "as of".len()..].to_string(),
    };
    parse_date(candidate.trim().trim_start_matches(':').trim())
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    const FORMATS: &[&str] = &[
        "%b %d, %Y",
        "%B %d, %Y",
        "%b %d %Y",
        "%B %d %Y",
        "%m/%d/%Y",
        "%Y-%m-%d",
        "%d-%b-%Y",
    ];
    FORMATS
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
}

/// Column positions, by case-insensitive header name.
struct Columns {
    ticker: usize,
    name: Option<usize>,
    sector: Option<usize>,
    asset_class: Option<usize>,
    exchange: Option<usize>,
    weight: Option<usize>,
}

impl Columns {
    fn new(fields: &[String]) -> Self {
        let find = |names: &[&str]| {
            fields
                .iter()
                .position(|f| names.iter().any(|n| f.eq_ignore_ascii_case(n)))
        };
        Self {
            ticker: find(&["ticker"]).unwrap_or(0),
            name: find(&["name"]),
            sector: find(&["sector"]),
            asset_class: find(&["asset class"]),
            exchange: find(&["exchange"]),
            weight: find(&["weight (%)", "weight", "weightpct", "weight %", "weight(%)"]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("1,234,567.00"), Ok(Some(1_234_567.0)));
        assert_eq!(parse_number(" 6.44 "), Ok(Some(6.44)));
        assert_eq!(parse_number("-"), Ok(None));
        assert_eq!(parse_number(""), Ok(None));
        assert_eq!(parse_number("(1.5)"), Ok(Some(-1.5)));
        assert_eq!(parse_number("0.25%"), Ok(Some(0.25)));
        assert!(parse_number("abc").is_err());
        assert!(parse_number("NaN").is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("Jul 24, 2026"),
            NaiveDate::from_ymd_opt(2026, 7, 24)
        );
        assert_eq!(
            parse_date("07/24/2026"),
            NaiveDate::from_ymd_opt(2026, 7, 24)
        );
        assert_eq!(
            as_of_date(&["Fund Holdings as of".into(), "Jul 24, 2026".into()]),
            NaiveDate::from_ymd_opt(2026, 7, 24)
        );
        assert_eq!(
            as_of_date(&["Holdings as of Jul 24, 2026".into()]),
            NaiveDate::from_ymd_opt(2026, 7, 24)
        );
    }

    #[test]
    fn tab_delimited_cleaned() {
        let text =
            "Ticker\tName\tSector\tWeight\nAAPL\tAPPLE\tIT\t5.0\nBRKB\tBERKSHIRE\tFin\t1.0\n";
        let p = parse_cleaned(text, &ParseOptions::default()).unwrap();
        let syms: Vec<_> = p.members.iter().map(|m| m.symbol.as_str()).collect();
        assert_eq!(syms, ["AAPL", "BRK.B"]);
    }

    #[test]
    fn classifies_html_and_blocked() {
        assert_eq!(
            classify_non_csv("\n  <!DOCTYPE html><html>"),
            Some(ParseError::Html)
        );
        assert!(matches!(
            classify_non_csv("Access Denied\nReference #18.abc"),
            Some(ParseError::Blocked(_))
        ));
        assert_eq!(classify_non_csv("a,b,c\n1,2,3"), None);
    }
}
