//! Alpaca market data: multi-symbol daily bars (`GET /v2/stocks/bars`) and the incremental
//! top-up of the local bar store.
//!
//! Rules this file enforces (issue 8 item 2; `anchors.md` §1.2, §3.3):
//! - Explicit `start` and `end` on every request, RFC 3339 in UTC (`Z`). `end` is the last
//!   second of the `end` date's New York day: the caller passes the data date (the last closed
//!   session), so a partial current-session bar is never requested.
//! - `adjustment=split` by default, `feed=sip` by default; `feed=iex` logs a loud warning,
//!   because IEX daily volume is a small fraction of consolidated volume.
//! - Symbols are batched so the encoded `symbols` parameter stays under
//!   [`BarsOptions::max_symbols_chars`]; every batch follows `next_page_token` until absent,
//!   with `limit=10000` (the spec's maximum).
//! - A daily bar's `t` is midnight New York expressed in UTC (`05:00Z` in winter, `04:00Z` in
//!   summer); it is dated by its New York date via chrono-tz. Bars on a date that is not an
//!   NYSE session (or outside the requested range) are dropped and counted.
//! - `bars` is a free map (spec `stock_bars_resp`): it may omit a requested symbol (no bars)
//!   and may carry one we did not ask for. Only the symbols of the request are read; the
//!   others are ignored, counted and logged, never stored. An omitted symbol is reported
//!   ([`TopUpReport::symbols_without_data`]); the scan counts it against its coverage.
//! - Duplicates: the FIRST copy of a (symbol, session date) in one answer (all its pages and
//!   symbol batches) is kept, later copies are dropped and counted, as the CSV import and the
//!   bar store do (see `market_data::store`).
//! - A page is read bar by bar: a malformed one fails the download with an error that names
//!   the symbol, the bar and the field (Alpaca's answer is wrong, not the network or the keys).

use super::client::{AlpacaClient, AlpacaError, Api, Request};
use crate::calendar::{self, CalendarError};
use crate::market_data::{BarStore, DailyBar, StoreError};
use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// The multi-symbol bars endpoint of the Market Data API.
pub const BARS_PATH: &str = "/v2/stocks/bars";
/// The spec's maximum page size (`limit`, 1..=10000).
pub const MAX_PAGE_LIMIT: u32 = 10_000;
/// Default budget for the percent-encoded `symbols` parameter of one request.
pub const DEFAULT_MAX_SYMBOLS_CHARS: usize = 7_000;

/// `adjustment`: which corporate actions the prices (and, for splits, volumes) reflect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Adjustment {
    Raw,
    #[default]
    Split,
    Dividend,
    All,
}

impl Adjustment {
    pub fn as_str(self) -> &'static str {
        match self {
            Adjustment::Raw => "raw",
            Adjustment::Split => "split",
            Adjustment::Dividend => "dividend",
            Adjustment::All => "all",
        }
    }
}

impl std::str::FromStr for Adjustment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "raw" => Ok(Adjustment::Raw),
            "split" => Ok(Adjustment::Split),
            "dividend" => Ok(Adjustment::Dividend),
            "all" => Ok(Adjustment::All),
            other => Err(format!(
                "unknown adjustment {} (expected raw, split, dividend or all)",
                shown_word(other)
            )),
        }
    }
}

/// A configured word as an error shows it: quoted when short and printable (a typo), else not
/// at all (a misplaced secret, a pasted page).
fn shown_word(word: &str) -> String {
    if word.len() <= 16 && word.chars().all(|c| c.is_ascii_graphic()) {
        format!("{word:?}")
    } else {
        "(value not shown)".to_string()
    }
}

/// `feed`: the data source. SIP is consolidated (all exchanges); IEX is one exchange only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Feed {
    #[default]
    Sip,
    Iex,
    Boats,
    Otc,
}

impl Feed {
    pub fn as_str(self) -> &'static str {
        match self {
            Feed::Sip => "sip",
            Feed::Iex => "iex",
            Feed::Boats => "boats",
            Feed::Otc => "otc",
        }
    }
}

impl std::str::FromStr for Feed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sip" => Ok(Feed::Sip),
            "iex" => Ok(Feed::Iex),
            "boats" => Ok(Feed::Boats),
            "otc" => Ok(Feed::Otc),
            other => Err(format!(
                "unknown feed {} (expected sip, iex, boats or otc)",
                shown_word(other)
            )),
        }
    }
}

/// Options of a daily-bars download; [`Default`] is the production choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarsOptions {
    pub adjustment: Adjustment,
    pub feed: Feed,
    /// Budget for the percent-encoded `symbols` parameter of one request (commas count as
    /// `%2C`, three characters). A single longer symbol still gets a request of its own.
    pub max_symbols_chars: usize,
    /// Page size (`limit`), clamped to 1..=10000.
    pub page_limit: u32,
}

impl Default for BarsOptions {
    fn default() -> Self {
        BarsOptions {
            adjustment: Adjustment::Split,
            feed: Feed::Sip,
            max_symbols_chars: DEFAULT_MAX_SYMBOLS_CHARS,
            page_limit: MAX_PAGE_LIMIT,
        }
    }
}

/// Daily bars with what it took to get them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DailyBars {
    /// Symbol → bars in ascending session-date order (one per date). Symbols Alpaca had no
    /// bars for are absent.
    pub bars: BTreeMap<String, Vec<DailyBar>>,
    /// Successful pages (HTTP requests answered 200; retries are in `requests_sent`).
    pub pages: u64,
    /// Symbol batches requested.
    pub batches: u64,
    /// Bars whose New York date is not an NYSE session, dropped.
    pub dropped_non_session: u64,
    /// Bars dated outside `[start, end]`, dropped.
    pub dropped_out_of_range: u64,
    /// Later copies of a (symbol, session date) already read, dropped: the first is kept.
    pub duplicate_dates: u64,
    /// Symbols in the answer that the request did not name (sorted, distinct): ignored.
    pub unrequested_symbols: Vec<String>,
    /// Bars of those symbols, ignored.
    pub unrequested_bars: u64,
}

/// One bar as `/v2/stocks/bars` sends it (any timeframe; `t` is the bar's start).
#[derive(Debug, Deserialize)]
pub struct WireBar {
    pub t: DateTime<Utc>,
    pub o: f64,
    pub h: f64,
    pub l: f64,
    pub c: f64,
    pub v: f64,
}

/// One page of `/v2/stocks/bars`, read against the symbols the request named.
#[derive(Debug, Default)]
pub struct BarsPage {
    /// The requested symbols the page has bars for, with their bars in answer order.
    pub bars: Vec<(String, Vec<WireBar>)>,
    /// Symbols the request did not name, with how many bars the page had for each.
    pub unrequested: Vec<(String, u64)>,
    pub next_page_token: Option<String>,
}

/// One `GET /v2/stocks/bars` answer body read as a page for `requested` (unredacted), for tests.
pub fn parse_bars_answer(body: &str, requested: &[&str]) -> Result<BarsPage, String> {
    let page = serde_json::from_str(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    read_bars_page(page, &requested.iter().copied().collect())
}

/// Longest symbol quoted from an answer in a message (real ones have at most 10 characters).
const MAX_SYMBOL_SHOWN: usize = 16;

/// Read one bars page. `bars` may omit symbols and may hold symbols not asked for (ignored
/// here, unparsed, so an odd bar of a symbol we do not want cannot fail the page); every bar of
/// a requested symbol must have the spec's shape. The error names the field and the bar, in
/// the answer's own words (the caller redacts and bounds it).
pub(crate) fn read_bars_page(page: Value, requested: &HashSet<&str>) -> Result<BarsPage, String> {
    let Value::Object(mut fields) = page else {
        return Err(format!(
            "the answer is {}, not an object with `bars` and `next_page_token`",
            json_kind(&page)
        ));
    };
    let next_page_token = match fields.remove("next_page_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(token)) => Some(token),
        Some(other) => {
            return Err(format!(
                "`next_page_token` is {}, not a string or null",
                json_kind(&other)
            ))
        }
    };
    let by_symbol = match fields.remove("bars") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(format!(
                "`bars` is {}, not an object of symbol to bars",
                json_kind(&other)
            ))
        }
    };
    let mut out = BarsPage {
        next_page_token,
        ..BarsPage::default()
    };
    for (symbol, list) in by_symbol {
        if !requested.contains(symbol.as_str()) {
            let n = list.as_array().map_or(0, Vec::len);
            out.unrequested.push((symbol, n as u64));
            continue;
        }
        let shown = super::client::printable_excerpt(&symbol, MAX_SYMBOL_SHOWN);
        let Value::Array(list) = list else {
            return Err(format!(
                "`bars.{shown}` is {}, not a list of bars",
                json_kind(&list)
            ));
        };
        let mut bars = Vec::with_capacity(list.len());
        for (index, bar) in list.iter().enumerate() {
            let parsed = WireBar::deserialize(bar).map_err(|e| {
                let t = bar
                    .get("t")
                    .and_then(Value::as_str)
                    .map_or_else(String::new, |t| {
                        format!(" (t {})", super::client::printable_excerpt(t, 40))
                    });
                format!("`bars.{shown}[{index}]`{t}: {e}")
            })?;
            bars.push(parsed);
        }
        out.bars.push((symbol, bars));
    }
    Ok(out)
}

/// What a JSON value is, for a message about an answer of the wrong shape.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Fetch and read one bars page: a page of the wrong shape is [`AlpacaError::Decode`] naming
/// the field, redacted and bounded like any text from the network.
pub(crate) async fn fetch_bars_page(
    client: &AlpacaClient,
    request: &Request<'_>,
    requested: &HashSet<&str>,
    deadline: Option<std::time::Instant>,
) -> Result<BarsPage, AlpacaError> {
    let page: Value = client.json_async(request, deadline).await?;
    read_bars_page(page, requested).map_err(|message| AlpacaError::Decode {
        path: BARS_PATH.to_string(),
        message: client.network_text(&message, super::client::MAX_BODY_EXCERPT),
    })
}

/// Log the symbols of an answer that no request named (never stored), once per download.
pub(crate) fn warn_unrequested(what: &str, symbols: &[String], bars: u64) {
    if symbols.is_empty() {
        return;
    }
    let shown: Vec<String> = symbols
        .iter()
        .take(5)
        .map(|s| super::client::printable_excerpt(s, MAX_SYMBOL_SHOWN))
        .collect();
    tracing::warn!(
        unrequested_symbols = symbols.len(),
        unrequested_bars = bars,
        "Alpaca's {what} answer carried {} symbol(s) we did not request ({}{}; {bars} bars): ignored, not stored",
        symbols.len(),
        shown.join(", "),
        if symbols.len() > shown.len() { ", …" } else { "" },
    );
}

/// Characters a symbol takes in the query string once percent-encoded.
fn encoded_len(text: &str) -> usize {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                1
            } else {
                3
            }
        })
        .sum()
}

/// Split `symbols` into comma-joined batches whose encoded length stays within `max_chars`.
pub fn symbol_batches(symbols: &[String], max_chars: usize) -> Vec<String> {
    const COMMA: usize = 3; // "%2C"
    let mut batches = Vec::new();
    let mut current = String::new();
    let mut current_len = 0usize;
    for symbol in symbols {
        let len = encoded_len(symbol);
        if !current.is_empty() && current_len + COMMA + len > max_chars {
            batches.push(std::mem::take(&mut current));
            current_len = 0;
        }
        if !current.is_empty() {
            current.push(',');
            current_len += COMMA;
        }
        current.push_str(symbol);
        current_len += len;
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// `start` of a request: midnight New York of `date`, in UTC.
pub fn start_param(date: NaiveDate) -> String {
    calendar::ny_instant(date, NaiveTime::MIN).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `end` of a request: the last second of `date`'s New York day, in UTC.
pub fn end_param(date: NaiveDate) -> String {
    let last_second = NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN);
    calendar::ny_instant(date, last_second).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Daily bars of `symbols` for the sessions `start..=end` (New York dates). `end` must be a
/// session that has closed (the data date): nothing later is requested.
pub fn daily_bars(
    client: &AlpacaClient,
    symbols: &[String],
    start: NaiveDate,
    end: NaiveDate,
    opts: &BarsOptions,
) -> Result<BTreeMap<String, Vec<DailyBar>>, AlpacaError> {
    daily_bars_detailed(client, symbols, start, end, opts).map(|d| d.bars)
}

/// [`daily_bars`] with page, batch and drop counts.
pub fn daily_bars_detailed(
    client: &AlpacaClient,
    symbols: &[String],
    start: NaiveDate,
    end: NaiveDate,
    opts: &BarsOptions,
) -> Result<DailyBars, AlpacaError> {
    let mut out = DailyBars::default();
    if symbols.is_empty() || start > end {
        return Ok(out);
    }
    if opts.feed == Feed::Iex {
        tracing::warn!(
            feed = "iex",
            "LOUD WARNING: requesting daily bars from the IEX feed: IEX is a single exchange, so \
             daily volume will be a small fraction of consolidated (SIP) volume and volume-\
             weighted levels will be wrong; use feed=sip for daily history"
        );
    }
    let start_text = start_param(start);
    let end_text = end_param(end);
    let limit = opts.page_limit.clamp(1, MAX_PAGE_LIMIT).to_string();
    let mut collected: BTreeMap<String, BTreeMap<NaiveDate, DailyBar>> = BTreeMap::new();
    let mut unrequested: BTreeMap<String, u64> = BTreeMap::new();
    for batch in symbol_batches(symbols, opts.max_symbols_chars) {
        out.batches += 1;
        let requested: HashSet<&str> = batch.split(',').collect();
        let mut token: Option<String> = None;
        loop {
            let mut request = Request::get(Api::Data, BARS_PATH)
                .query("symbols", batch.clone())
                .query("timeframe", "1Day")
                .query("start", start_text.clone())
                .query("end", end_text.clone())
                .query("limit", limit.clone())
                .query("adjustment", opts.adjustment.as_str())
                .query("feed", opts.feed.as_str())
                .query("sort", "asc");
            if let Some(t) = &token {
                request = request.query("page_token", t.clone());
            }
            let page = client.block_on(fetch_bars_page(client, &request, &requested, None))?;
            out.pages += 1;
            for (symbol, n) in page.unrequested {
                *unrequested.entry(symbol).or_default() += n;
            }
            for (symbol, bars) in page.bars {
                let entry = collected.entry(symbol).or_default();
                for bar in bars {
                    let date = calendar::ny_date(bar.t);
                    if date < start || date > end {
                        out.dropped_out_of_range += 1;
                        continue;
                    }
                    if !calendar::is_session(date).unwrap_or(false) {
                        out.dropped_non_session += 1;
                        continue;
                    }
                    match entry.entry(date) {
                        std::collections::btree_map::Entry::Occupied(_) => {
                            out.duplicate_dates += 1;
                        }
                        std::collections::btree_map::Entry::Vacant(slot) => {
                            slot.insert(DailyBar {
                                date,
                                open: bar.o,
                                high: bar.h,
                                low: bar.l,
                                close: bar.c,
                                volume: bar.v,
                            });
                        }
                    }
                }
            }
            if !advance_page(&mut token, page.next_page_token)? {
                break;
            }
        }
    }
    if out.dropped_non_session > 0 || out.dropped_out_of_range > 0 {
        tracing::warn!(
            non_session = out.dropped_non_session,
            out_of_range = out.dropped_out_of_range,
            "dropped daily bars not dated on a requested NYSE session"
        );
    }
    if out.duplicate_dates > 0 {
        tracing::warn!(
            duplicate_dates = out.duplicate_dates,
            "Alpaca's daily bars repeated {} (symbol, session) pair(s): the first copy of each was kept",
            out.duplicate_dates
        );
    }
    out.unrequested_bars = unrequested.values().sum();
    out.unrequested_symbols = unrequested.into_keys().collect();
    warn_unrequested("daily bars", &out.unrequested_symbols, out.unrequested_bars);
    out.bars = collected
        .into_iter()
        .filter(|(_, bars)| !bars.is_empty())
        .map(|(symbol, bars)| (symbol, bars.into_values().collect()))
        .collect();
    Ok(out)
}

/// A top-up failure.
#[derive(Debug, thiserror::Error)]
pub enum TopUpError {
    #[error(transparent)]
    Alpaca(#[from] AlpacaError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Calendar(#[from] CalendarError),
}

/// What a top-up did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopUpReport {
    /// HTTP requests sent (retries included), from the client's counter.
    pub requests: u64,
    /// Successful pages.
    pub pages: u64,
    /// Distinct start dates, each one batched download.
    pub start_groups: usize,
    /// Symbols already holding `data_date`: nothing requested.
    pub up_to_date: usize,
    pub bars_written: usize,
    /// Requested symbols Alpaca returned no bar for, sorted.
    pub symbols_without_data: Vec<String>,
    pub dropped_non_session: u64,
    /// Later copies of a (symbol, session date) in the answers, dropped (the first is kept).
    pub duplicate_dates: u64,
    /// Symbols in the answers that no request named (sorted, distinct): ignored, not stored.
    pub unrequested_symbols: Vec<String>,
    /// Bars of those symbols.
    pub unrequested_bars: u64,
}

/// Bring `store` up to `data_date` (the last closed session) for `symbols`: a symbol with
/// stored bars gets only the sessions after its last stored date; one without gets the
/// window `data_date - history_days ..= data_date` (calendar days). Symbols sharing a start
/// date are downloaded together; everything is written in one transaction.
pub fn top_up(
    client: &AlpacaClient,
    store: &mut BarStore,
    symbols: &[String],
    data_date: NaiveDate,
    history_days: i64,
    opts: &BarsOptions,
) -> Result<TopUpReport, TopUpError> {
    let requests_before = client.requests_sent();
    let last = store.last_stored_dates()?;
    // `[scan] history_days` is range-checked at load; a value that still does not fit the date
    // arithmetic reads from the earliest representable date rather than panic.
    let cold_start = chrono::Duration::try_days(history_days.max(0))
        .and_then(|d| data_date.checked_sub_signed(d))
        .unwrap_or(NaiveDate::MIN);
    let mut groups: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
    let mut report = TopUpReport::default();
    let mut seen = std::collections::HashSet::new();
    for symbol in symbols {
        if !seen.insert(symbol.as_str()) {
            continue;
        }
        let start = match last.get(symbol) {
            Some(&date) if date >= data_date => {
                report.up_to_date += 1;
                continue;
            }
            Some(&date) => calendar::next_session(date)?,
            None => cold_start,
        };
        if start > data_date {
            report.up_to_date += 1;
            continue;
        }
        groups.entry(start).or_default().push(symbol.clone());
    }
    report.start_groups = groups.len();
    let mut downloaded: BTreeMap<String, Vec<DailyBar>> = BTreeMap::new();
    let mut without = Vec::new();
    for (start, group) in &groups {
        let result = daily_bars_detailed(client, group, *start, data_date, opts)?;
        report.pages += result.pages;
        report.dropped_non_session += result.dropped_non_session;
        report.duplicate_dates += result.duplicate_dates;
        report.unrequested_bars += result.unrequested_bars;
        report
            .unrequested_symbols
            .extend(result.unrequested_symbols);
        for symbol in group {
            if !result.bars.contains_key(symbol) {
                without.push(symbol.clone());
            }
        }
        downloaded.extend(result.bars);
    }
    let written = store.write_bars(downloaded.iter())?;
    report.bars_written = written.rows;
    report.duplicate_dates += written.duplicates as u64;
    without.sort();
    report.symbols_without_data = without;
    report.unrequested_symbols.sort();
    report.unrequested_symbols.dedup();
    report.requests = client.requests_sent() - requests_before;
    tracing::info!(
        requests = report.requests,
        start_groups = report.start_groups,
        bars_written = report.bars_written,
        up_to_date = report.up_to_date,
        without_data = report.symbols_without_data.len(),
        duplicate_dates = report.duplicate_dates,
        unrequested_symbols = report.unrequested_symbols.len(),
        %data_date,
        "Alpaca daily-bar top-up done"
    );
    Ok(report)
}

/// Move to the next page of a paginated bars response: `Ok(false)` when there is none. A
/// token that repeats would loop forever, so it is an error.
pub(crate) fn advance_page(
    token: &mut Option<String>,
    next: Option<String>,
) -> Result<bool, AlpacaError> {
    match next.filter(|t| !t.is_empty()) {
        Some(next) if token.as_deref() == Some(next.as_str()) => Err(AlpacaError::Decode {
            path: BARS_PATH.to_string(),
            // An opaque token from the network: a short printable excerpt is enough to
            // recognise it.
            message: format!(
                "next_page_token {:?} repeated; stopping",
                super::client::printable_excerpt(&next, 64)
            ),
        }),
        Some(next) => {
            *token = Some(next);
            Ok(true)
        }
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration checks these words at load (`config::limits::CHOICES`): the same
    /// words this module parses.
    #[test]
    fn the_configurations_choices_are_the_words_parsed_here() {
        use crate::config::limits::CHOICES;
        let choices = |key: &str| {
            CHOICES
                .iter()
                .find(|(s, k, _)| *s == "alpaca" && *k == key)
                .map(|(_, _, c)| c.to_vec())
                .unwrap()
        };
        let feeds = [Feed::Sip, Feed::Iex, Feed::Boats, Feed::Otc].map(Feed::as_str);
        for key in ["feed", "intraday_feed"] {
            assert_eq!(choices(key), feeds.to_vec());
            assert!(choices(key).iter().all(|c| c.parse::<Feed>().is_ok()));
        }
        let adjustments = choices("adjustment");
        assert_eq!(adjustments, ["raw", "split", "dividend", "all"]);
        assert!(adjustments.iter().all(|c| c.parse::<Adjustment>().is_ok()));
        let e = "PKSECRET0123456789".parse::<Feed>().unwrap_err();
        assert!(!e.contains("PKSECRET"), "{e}");
        assert!("sipp".parse::<Feed>().unwrap_err().contains("\"sipp\""));
    }

    #[test]
    fn batches_respect_the_encoded_length() {
        let symbols: Vec<String> = (0..100).map(|i| format!("S{i:03}")).collect();
        let batches = symbol_batches(&symbols, 40);
        for b in &batches {
            let n = b.split(',').count();
            assert!(4 * n + 3 * (n - 1) <= 40, "{b}");
        }
        let joined: Vec<&str> = batches.iter().flat_map(|b| b.split(',')).collect();
        assert_eq!(joined.len(), 100);
        assert_eq!(symbol_batches(&["TOOLONGSYMBOL".into()], 5).len(), 1);
    }

    #[test]
    fn start_and_end_are_new_york_days_in_utc() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(start_param(d("2024-01-03")), "2024-01-03T05:00:00Z");
        assert_eq!(start_param(d("2024-07-03")), "2024-07-03T04:00:00Z");
        assert_eq!(end_param(d("2024-01-03")), "2024-01-04T04:59:59Z");
        assert_eq!(end_param(d("2024-07-03")), "2024-07-04T03:59:59Z");
    }
}
