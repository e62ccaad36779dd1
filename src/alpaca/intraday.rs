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
//!   `now`, unless that trade is older than the last closed bar's start (or absent, or voided:
//!   its `u` says `canceled` or `incorrect`): then the last closed bar's close.
//! - Feed: free plans may not query SIP data of the last 15 minutes (a 403 on every live
//!   request), so the default feed here is **IEX**; set [`IntradayOptions::feed`] to `Sip` with
//!   an unlimited subscription.
//!
//! The bars requests and the latest-trades requests of one snapshot run concurrently (on the
//! process's runtime); [`AlpacaIntradayFeed::snapshot_until`] / [`AlpacaIntradayFeed::snapshot_async`]
//! bound them by a deadline and say whether every request succeeded in time.
//!
//! Errors never panic and never propagate: the trait returns plain values. A failed bars
//! request (after the client's GET retries) leaves its batch's symbols out of
//! `MarketSnapshot::bars`, a failed trades request leaves prices to the bar-close fallback, and
//! each failure logs a `tracing::warn!`. The engine treats missing data as "no bars": no
//! entries for those symbols, and exits use what they have.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::time::Instant;

use futures_util::future::{join, join_all};

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use serde::Deserialize;

use super::client::{AlpacaClient, AlpacaError, Api, Request};
use super::market_data::{
    advance_page, fetch_bars_page, symbol_batches, warn_unrequested, Adjustment, Feed, BARS_PATH,
    DEFAULT_MAX_SYMBOLS_CHARS, MAX_PAGE_LIMIT,
};
use crate::calendar::{self, Session};
use crate::market_data::intraday::{IntradayBar, IntradayFeed, MarketSnapshot, BAR_MINUTES};

/// The latest-trades endpoint of the Market Data API.
pub const LATEST_TRADES_PATH: &str = "/v2/stocks/trades/latest";
/// The symbol of [`AlpacaIntradayFeed::check_access`]: listed on every feed, always traded.
pub const KEY_CHECK_SYMBOL: &str = "SPY";
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
    /// Spec `stock_trade.u`: absent for a valid trade; `canceled` or `incorrect` voids it,
    /// `corrected` marks a correction (valid).
    #[serde(default)]
    u: Option<String>,
}

impl WireTrade {
    /// A price to use: positive, finite, and the trade not voided.
    fn usable(&self) -> bool {
        let voided = matches!(self.u.as_deref(), Some("canceled" | "incorrect"));
        self.p.is_finite() && self.p > 0.0 && !voided
    }
}

#[derive(Debug, Deserialize)]
struct TradesResponse {
    #[serde(default)]
    trades: Option<HashMap<String, WireTrade>>,
}

/// The usable latest trades of an answer: symbol → (time, price), see [`WireTrade::usable`].
fn latest_trades(response: TradesResponse) -> HashMap<String, (DateTime<Utc>, f64)> {
    response
        .trades
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, trade)| trade.usable())
        .map(|(symbol, trade)| (symbol, (trade.t, trade.p)))
        .collect()
}

/// A `GET /v2/stocks/trades/latest` answer body as a snapshot reads it (unredacted), for tests.
pub fn parse_latest_trades_answer(
    body: &str,
) -> Result<HashMap<String, (DateTime<Utc>, f64)>, String> {
    serde_json::from_str(body)
        .map(latest_trades)
        .map_err(|e| format!("the answer is not a latest-trades answer: {e}"))
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
    /// session only, ascending; every page followed; every request bounded by `deadline`.
    async fn fetch_bars(
        &self,
        batch: &str,
        from: DateTime<Utc>,
        now: DateTime<Utc>,
        deadline: Option<Instant>,
    ) -> Result<BTreeMap<String, Vec<IntradayBar>>, AlpacaError> {
        let limit = self.options.page_limit.clamp(1, MAX_PAGE_LIMIT).to_string();
        let (start_text, end_text) = (rfc3339(from), rfc3339(now));
        let mut sessions = HashMap::new();
        let mut out: BTreeMap<String, BTreeMap<DateTime<Utc>, IntradayBar>> = BTreeMap::new();
        let requested: std::collections::HashSet<&str> = batch.split(',').collect();
        let mut unrequested: BTreeMap<String, u64> = BTreeMap::new();
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
            let page = fetch_bars_page(&self.client, &request, &requested, deadline).await?;
            for (symbol, n) in page.unrequested {
                *unrequested.entry(symbol).or_default() += n;
            }
            for (symbol, bars) in page.bars {
                let entry = out.entry(symbol.clone()).or_default();
                for bar in bars {
                    let end = bar.t + step();
                    // The forming bar (end > now) and anything outside the window or the
                    // regular session is dropped.
                    if bar.t < from || end > now || !in_session(bar.t, &mut sessions) {
                        continue;
                    }
                    // The first copy of a bar start is kept, as for daily bars.
                    entry.entry(bar.t).or_insert(IntradayBar {
                        symbol: symbol.clone(),
                        start: bar.t,
                        end,
                        open: bar.o,
                        high: bar.h,
                        low: bar.l,
                        close: bar.c,
                        volume: bar.v,
                    });
                }
            }
            if !advance_page(&mut token, page.next_page_token)? {
                break;
            }
        }
        let unrequested_bars = unrequested.values().sum();
        let unrequested: Vec<String> = unrequested.into_keys().collect();
        warn_unrequested("10-minute bars", &unrequested, unrequested_bars);
        Ok(out
            .into_iter()
            .map(|(symbol, bars)| (symbol, bars.into_values().collect()))
            .collect())
    }

    /// One cheap authenticated request (the latest trade of [`KEY_CHECK_SYMBOL`] on the
    /// configured feed), bounded by `deadline`: whether the Market Data API accepts the keys
    /// (and, for SIP, the plan) before a service starts on them. The answer's content does not
    /// matter, only that one came.
    pub fn check_access(&self, deadline: Instant) -> Result<(), AlpacaError> {
        let request = Request::get(Api::Data, LATEST_TRADES_PATH)
            .query("symbols", KEY_CHECK_SYMBOL)
            .query("feed", self.options.feed.as_str());
        self.client
            .block_on(
                self.client
                    .json_async::<TradesResponse>(&request, Some(deadline)),
            )
            .map(|_| ())
    }

    /// Latest trades (time, price) of one symbol batch, bounded by `deadline`.
    async fn fetch_trades(
        &self,
        batch: &str,
        deadline: Option<Instant>,
    ) -> Result<HashMap<String, (DateTime<Utc>, f64)>, AlpacaError> {
        let request = Request::get(Api::Data, LATEST_TRADES_PATH)
            .query("symbols", batch)
            .query("feed", self.options.feed.as_str());
        let response: TradesResponse = self.client.json_async(&request, deadline).await?;
        Ok(latest_trades(response))
    }

    /// Bars of `symbols` with `start` in `[from, now)` closed at `now`, one request (plus
    /// pages) per batch, the batches concurrently. A failed batch is logged and its symbols are
    /// absent; the flag is false when any batch failed.
    async fn bars_for(
        &self,
        symbols: &[String],
        from: DateTime<Utc>,
        now: DateTime<Utc>,
        deadline: Option<Instant>,
    ) -> (BTreeMap<String, Vec<IntradayBar>>, bool) {
        let batches = symbol_batches(symbols, self.options.max_symbols_chars);
        let results = join_all(
            batches
                .iter()
                .map(|batch| self.fetch_bars(batch, from, now, deadline)),
        )
        .await;
        let mut out = BTreeMap::new();
        let mut complete = true;
        // Merged in batch order, as the sequential version did (batches are disjoint anyway).
        for (batch, result) in batches.iter().zip(results) {
            match result {
                Ok(bars) => {
                    for symbol in batch.split(',') {
                        out.insert(symbol.to_string(), Vec::new());
                    }
                    out.extend(bars);
                }
                Err(error) => {
                    complete = false;
                    tracing::warn!(
                        %error,
                        symbols = batch.split(',').count(),
                        %now,
                        "Alpaca 10-minute bars request failed; these symbols have no bars this cycle"
                    )
                }
            }
        }
        (out, complete)
    }

    /// Latest trades of `symbols`, the batches concurrently. A failed batch is logged and its
    /// symbols fall back to the last bar close; the flag is false when any batch failed.
    async fn trades_for(
        &self,
        symbols: &[String],
        now: DateTime<Utc>,
        deadline: Option<Instant>,
    ) -> (HashMap<String, (DateTime<Utc>, f64)>, bool) {
        let batches = symbol_batches(symbols, self.options.max_symbols_chars);
        let results = join_all(
            batches
                .iter()
                .map(|batch| self.fetch_trades(batch, deadline)),
        )
        .await;
        let mut trades = HashMap::new();
        let mut complete = true;
        for (batch, result) in batches.iter().zip(results) {
            match result {
                Ok(found) => trades.extend(found),
                Err(error) => {
                    complete = false;
                    tracing::warn!(
                        %error,
                        symbols = batch.split(',').count(),
                        %now,
                        "Alpaca latest-trades request failed; falling back to the last bar close"
                    )
                }
            }
        }
        (trades, complete)
    }

    /// [`IntradayFeed::snapshot`] with every request bounded by `deadline` (and the client
    /// family's deadline): returns by then with what arrived in time. The flag is true when
    /// every request succeeded, false when any failed or missed the deadline (the snapshot
    /// then lacks those symbols' bars, or prices fall back to the last bar close, exactly as
    /// after a failure without a deadline). A calendar without a session before `now` is not a
    /// failure (nothing was requested).
    pub fn snapshot_until(
        &self,
        symbols: &[String],
        now: DateTime<Utc>,
        n: usize,
        deadline: Instant,
    ) -> (MarketSnapshot, bool) {
        self.client
            .block_on(self.snapshot_async(symbols, now, n, Some(deadline)))
    }

    /// The async form of [`AlpacaIntradayFeed::snapshot_until`] (`None`: only the family
    /// deadline applies), for joining with other reads.
    pub async fn snapshot_async(
        &self,
        symbols: &[String],
        now: DateTime<Utc>,
        n: usize,
        deadline: Option<Instant>,
    ) -> (MarketSnapshot, bool) {
        let mut snapshot = MarketSnapshot::default();
        if symbols.is_empty() {
            return (snapshot, true);
        }
        let from = self.lookback_start(now, n);
        if from.is_none() {
            tracing::warn!(%now, "no NYSE session at or before now: no intraday bars");
        }
        let bars = async {
            match from {
                Some(from) => self.bars_for(symbols, from, now, deadline).await,
                None => (BTreeMap::new(), true),
            }
        };
        // Bars and trades are independent requests: both batches' sets run at once.
        let ((bars, bars_complete), (trades, trades_complete)) =
            join(bars, self.trades_for(symbols, now, deadline)).await;
        snapshot.bars = bars;
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
        (snapshot, bars_complete && trades_complete)
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
        self.client
            .block_on(self.bars_for(&[symbol.to_string()], from, up_to, None))
            .0
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
            .client
            .block_on(self.bars_for(&[symbol.to_string()], from, now, None))
            .0
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
        self.client
            .block_on(self.snapshot_async(symbols, now, n, None))
            .0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canceled_or_incorrect_latest_trade_is_no_price() {
        let answer = |update: &str| {
            format!(
                r#"{{"trades":{{"AXTA":{{"t":"2026-11-30T15:59:58Z","p":34.01,"s":100,"i":5,
                "x":"N","c":["@"],"z":"A"{update}}},"CCE":{{"t":"2026-11-30T15:59:59Z","p":60.3,
                "s":100,"i":6,"x":"N","c":["@"],"z":"A"}}}}}}"#
            )
        };
        let plain = parse_latest_trades_answer(&answer("")).unwrap();
        assert_eq!(plain.get("AXTA").map(|t| t.1), Some(34.01));
        for voided in ["canceled", "incorrect"] {
            let trades =
                parse_latest_trades_answer(&answer(&format!(r#","u":"{voided}""#))).unwrap();
            assert!(!trades.contains_key("AXTA"), "{voided}: {trades:?}");
            assert_eq!(trades.get("CCE").map(|t| t.1), Some(60.3));
        }
        let corrected = parse_latest_trades_answer(&answer(r#","u":"corrected""#)).unwrap();
        assert_eq!(corrected.get("AXTA").map(|t| t.1), Some(34.01));
        let null = parse_latest_trades_answer(&answer(r#","u":null"#)).unwrap();
        assert!(null.contains_key("AXTA"));
    }
}
