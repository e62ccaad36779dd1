//! Alpaca intraday feed: 10-minute bars (`GET /v2/stocks/bars?timeframe=10Min`) and latest
//! trades (`GET /v2/stocks/trades/latest`) behind the [`IntradayFeed`] interface.
//!
//! Rules this file enforces (`anchors.md` §1.2, `market-data-api.json`):
//! - Alpaca stamps a bar with its START (`t`); a bar covers `[t, t + 10 min)` and is closed at
//!   `t + 10 min`. Alpaca also returns the bar still forming at `end`; it is dropped: only bars
//!   with `t + 10 min <= now` are ever returned.
//! - Only regular-session bars are kept (start within an NYSE session's `[open, close)`), like
//!   the synthetic feed; pre- and post-market bars are dropped.
//! - [`IntradayFeed::snapshot`] sends ONE bars request per URL-length symbol batch (the batching
//!   of [`super::market_data::symbol_batches`]; more only if Alpaca paginates) with
//!   `start` = the open of the earliest session needed to cover the last `n` closed bars (the
//!   current session's open when it already holds `n` closed bars; at most
//!   [`IntradayOptions::max_lookback_sessions`] sessions back) and `end` = `now`, plus ONE
//!   `trades/latest` request per batch. The latest price is the latest trade at or before
//!   `now`, unless that trade is older than the last closed bar's start (or absent): then the
//!   last closed bar's close.
//! - Feed: free plans may not query SIP data of the last 15 minutes (a 403 on every live
//!   request), so the default feed here is **IEX**; set [`IntradayOptions::feed`] to `Sip` with
//!   an unlimited subscription.
//!
//! Errors never panic and never propagate: the trait returns plain values. A failed bars
//! request (after the client's GET retries) leaves its batch's symbols out of
//! `MarketSnapshot::bars`, a failed trades request leaves prices to the bar-close fallback, and
//! each failure logs a `tracing::warn!`. The engine treats missing data as "no bars": no
//! entries for those symbols, and exits use what they have.

use std::collections::BTreeMap;
use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use serde::Deserialize;

use super::client::{AlpacaClient, AlpacaError, Api, Request};
use super::market_data::{
    advance_page, symbol_batches, Adjustment, BarsPage, Feed, BARS_PATH, DEFAULT_MAX_SYMBOLS_CHARS,
    MAX_PAGE_LIMIT,
};
use crate::calendar::{self, Session};
use crate::market_data::intraday::{IntradayBar, IntradayFeed, MarketSnapshot, BAR_MINUTES};

/// The latest-trades endpoint of the Market Data API.
pub const LATEST_TRADES_PATH: &str = "/v2/stocks/trades/latest";
/// The `timeframe` of the bars requested ([`BAR_MINUTES`] minutes).
pub const TIMEFRAME: &str = "10Min";
/// Default for [`IntradayOptions::max_lookback_sessions`].
pub const DEFAULT_MAX_LOOKBACK_SESSIONS: usize = 10;

/// Options of the intraday feed; [`Default`] is the production choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntradayOptions {
    /// `feed` of both requests. Default IEX (free plans cannot query recent SIP data).
    pub feed: Feed,
    /// `adjustment` of the bars request. Default `split`.
    pub adjustment: Adjustment,
    /// Budget for the percent-encoded `symbols` parameter of one request.
    pub max_symbols_chars: usize,
    /// Page size (`limit`), clamped to 1..=10000.
    pub page_limit: u32,
    /// How many sessions back (the current one included) a request may reach to find the
    /// last `n` closed bars; fewer bars are returned past that.
    pub max_lookback_sessions: usize,
}

impl Default for IntradayOptions {
    fn default() -> Self {
        IntradayOptions {
            feed: Feed::Iex,
            adjustment: Adjustment::Split,
            max_symbols_chars: DEFAULT_MAX_SYMBOLS_CHARS,
            page_limit: MAX_PAGE_LIMIT,
            max_lookback_sessions: DEFAULT_MAX_LOOKBACK_SESSIONS,
        }
    }
}

/// [`IntradayFeed`] over Alpaca's Market Data API.
#[derive(Debug)]
pub struct AlpacaIntradayFeed {
    pub client: AlpacaClient,
    pub options: IntradayOptions,
}

#[derive(Debug, Deserialize)]
struct WireTrade {
    t: DateTime<Utc>,
    p: f64,
}

#[derive(Debug, Deserialize)]
struct TradesResponse {
    #[serde(default)]
    trades: Option<HashMap<String, WireTrade>>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn step() -> Duration {
    Duration::minutes(BAR_MINUTES)
}

/// Whether `start` lies in a regular NYSE session's `[open, close)`; sessions cached by date.
fn in_session(start: DateTime<Utc>, cache: &mut HashMap<NaiveDate, Option<Session>>) -> bool {
    let date = calendar::ny_date(start);
    let session = cache
        .entry(date)
        .or_insert_with(|| calendar::session(date).ok().flatten());
    session
        .as_ref()
        .is_some_and(|s| s.open <= start && start < s.close)
}

impl AlpacaIntradayFeed {
    pub fn new(client: AlpacaClient, options: IntradayOptions) -> AlpacaIntradayFeed {
        AlpacaIntradayFeed { client, options }
    }

    /// The `start` that covers the last `n` (at least one) bars closed at `now`: the open of
    /// the latest session (at or before `now`) that, with the sessions after it, holds `n`
    /// closed bars, going back at most `max_lookback_sessions` sessions. `None` when the
    /// calendar knows no session at or before `now`.
    pub fn lookback_start(&self, now: DateTime<Utc>, n: usize) -> Option<DateTime<Utc>> {
        let n = n.max(1);
        let mut date = calendar::session_on_or_before(calendar::ny_date(now)).ok()?;
        let mut start = None;
        let mut closed = 0usize;
        for _ in 0..self.options.max_lookback_sessions.max(1) {
            let Ok(Some(session)) = calendar::session(date) else {
                break;
            };
            if session.open < now {
                let span = session.close.min(now) - session.open;
                closed += usize::try_from(span.num_minutes() / BAR_MINUTES).unwrap_or(0);
                start = Some(session.open);
                if closed >= n {
                    break;
                }
            }
            match calendar::previous_session(date) {
                Ok(previous) => date = previous,
                Err(_) => break,
            }
        }
        start
    }

    /// Bars of one symbol batch with `start` in `[from, now)`, closed at `now`, regular
    /// session only, ascending; every page followed.
    fn fetch_bars(
        &self,
        batch: &str,
        from: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, Vec<IntradayBar>>, AlpacaError> {
        let limit = self.options.page_limit.clamp(1, MAX_PAGE_LIMIT).to_string();
        let (start_text, end_text) = (rfc3339(from), rfc3339(now));
        let mut sessions = HashMap::new();
        let mut out: BTreeMap<String, BTreeMap<DateTime<Utc>, IntradayBar>> = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let mut request = Request::get(Api::Data, BARS_PATH)
                .query("symbols", batch)
                .query("timeframe", TIMEFRAME)
                .query("start", start_text.clone())
                .query("end", end_text.clone())
                .query("limit", limit.clone())
                .query("adjustment", self.options.adjustment.as_str())
                .query("feed", self.options.feed.as_str())
                .query("sort", "asc");
            if let Some(t) = &token {
                request = request.query("page_token", t.clone());
            }
            let page: BarsPage = self.client.json(&request)?;
            for (symbol, bars) in page.bars.unwrap_or_default() {
                let entry = out.entry(symbol.clone()).or_default();
                for bar in bars {
                    let end = bar.t + step();
                    // The forming bar (end > now) and anything outside the window or the
                    // regular session is dropped.
                    if bar.t < from || end > now || !in_session(bar.t, &mut sessions) {
                        continue;
                    }
                    entry.insert(
                        bar.t,
                        IntradayBar {
                            symbol: symbol.clone(),
                            start: bar.t,
                            end,
                            open: bar.o,
                            high: bar.h,
                            low: bar.l,
                            close: bar.c,
                            volume: bar.v,
                        },
                    );
                }
            }
            if !advance_page(&mut token, page.next_page_token)? {
                break;
            }
        }
        Ok(out
            .into_iter()
            .map(|(symbol, bars)| (symbol, bars.into_values().collect()))
            .collect())
    }

    /// Latest trades (time, price) of one symbol batch.
    fn fetch_trades(
        &self,
        batch: &str,
    ) -> Result<HashMap<String, (DateTime<Utc>, f64)>, AlpacaError> {
        let request = Request::get(Api::Data, LATEST_TRADES_PATH)
            .query("symbols", batch)
            .query("feed", self.options.feed.as_str());
        let response: TradesResponse = self.client.json(&request)?;
        Ok(response
            .trades
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, trade)| trade.p.is_finite() && trade.p > 0.0)
            .map(|(symbol, trade)| (symbol, (trade.t, trade.p)))
            .collect())
    }

    /// Bars of `symbols` with `start` in `[from, now)` closed at `now`, one request (plus
    /// pages) per batch. A failed batch is logged and its symbols are absent.
    fn bars_for(
        &self,
        symbols: &[String],
        from: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> BTreeMap<String, Vec<IntradayBar>> {
        let mut out = BTreeMap::new();
        for batch in symbol_batches(symbols, self.options.max_symbols_chars) {
            match self.fetch_bars(&batch, from, now) {
                Ok(bars) => {
                    for symbol in batch.split(',') {
                        out.insert(symbol.to_string(), Vec::new());
                    }
                    out.extend(bars);
                }
                Err(error) => tracing::warn!(
                    %error,
                    symbols = batch.split(',').count(),
                    %now,
                    "Alpaca 10-minute bars request failed; these symbols have no bars this cycle"
                ),
            }
        }
        out
    }
}

impl IntradayFeed for AlpacaIntradayFeed {
    fn bars_between(
        &self,
        symbol: &str,
        after: DateTime<Utc>,
        up_to: DateTime<Utc>,
    ) -> Vec<IntradayBar> {
        if after >= up_to {
            return Vec::new();
        }
        // Bars ending in (after, up_to] start in (after - 10 min, up_to - 10 min].
        let from = after - step() + Duration::seconds(1);
        self.bars_for(&[symbol.to_string()], from, up_to)
            .remove(symbol)
            .unwrap_or_default()
            .into_iter()
            .filter(|bar| bar.end > after)
            .collect()
    }

    fn last_closed_bars(&self, symbol: &str, now: DateTime<Utc>, n: usize) -> Vec<IntradayBar> {
        if n == 0 {
            return Vec::new();
        }
        let Some(from) = self.lookback_start(now, n) else {
            return Vec::new();
        };
        let mut bars = self
            .bars_for(&[symbol.to_string()], from, now)
            .remove(symbol)
            .unwrap_or_default();
        let skip = bars.len().saturating_sub(n);
        bars.split_off(skip)
    }

    fn latest_price(&self, symbol: &str, now: DateTime<Utc>) -> Option<f64> {
        self.snapshot(&[symbol.to_string()], now, 1)
            .latest_price(symbol)
    }

    fn snapshot(&self, symbols: &[String], now: DateTime<Utc>, n: usize) -> MarketSnapshot {
        let mut snapshot = MarketSnapshot::default();
        if symbols.is_empty() {
            return snapshot;
        }
        if let Some(from) = self.lookback_start(now, n) {
            snapshot.bars = self.bars_for(symbols, from, now);
        } else {
            tracing::warn!(%now, "no NYSE session at or before now: no intraday bars");
        }
        let mut trades = HashMap::new();
        for batch in symbol_batches(symbols, self.options.max_symbols_chars) {
            match self.fetch_trades(&batch) {
                Ok(found) => trades.extend(found),
                Err(error) => tracing::warn!(
                    %error,
                    symbols = batch.split(',').count(),
                    %now,
                    "Alpaca latest-trades request failed; falling back to the last bar close"
                ),
            }
        }
        for symbol in symbols {
            let last = snapshot.bars.get(symbol).and_then(|bars| bars.last());
            let trade = trades
                .get(symbol)
                .filter(|(t, _)| *t <= now && last.is_none_or(|bar| *t >= bar.start));
            let price = trade.map(|(_, p)| *p).or(last.map(|bar| bar.close));
            if let Some(price) = price {
                snapshot.latest.insert(symbol.clone(), price);
            }
        }
        for bars in snapshot.bars.values_mut() {
            let skip = bars.len().saturating_sub(n);
            bars.drain(..skip);
        }
        snapshot
    }
}
