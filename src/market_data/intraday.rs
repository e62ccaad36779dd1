//! Intraday (10-minute) bars: the bar type, the feed interface the simulated broker and the
//! entry logic read them through, and a **synthetic** feed that derives a plausible 10-minute
//! path from each daily bar.
//!
//! The synthetic path is *made up*: it honours the daily bar exactly (open, high, low, close,
//! volume) but everything between those points is seeded noise. It exists so the simulated
//! broker and the execution service can run offline and deterministically; it says nothing
//! about how the stock really traded that day.
//!
//! No lookahead: every read takes an instant `now`/`up_to` and returns only bars whose `end`
//! is at or before it. A bar is *closed* (final) at its `end`.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use crate::calendar::{self, ny_date, Session};
use crate::fsutil::{excerpt, read_regular, SizeLimit};
use crate::market_data::synthetic::SplitMix64;
use crate::market_data::{BarStore, DailyBar, StoreError};

/// Length of one intraday bar.
pub const BAR_MINUTES: i64 = 10;

/// One intraday bar of one symbol covering `[start, end)`; it is closed (final) at `end`.
#[derive(Debug, Clone, PartialEq)]
pub struct IntradayBar {
    pub symbol: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

/// A source of closed intraday bars. Implementations never return a bar that ends after the
/// instant asked about.
pub trait IntradayFeed {
    /// `symbol`'s bars whose `end` lies in `(after, up_to]`, ascending by `end`.
    fn bars_between(
        &self,
        symbol: &str,
        after: DateTime<Utc>,
        up_to: DateTime<Utc>,
    ) -> Vec<IntradayBar>;

    /// The last `n` bars closed at or before `now` (fewer if the feed has fewer), ascending.
    /// The default looks back in widening windows, up to about 400 days.
    fn last_closed_bars(&self, symbol: &str, now: DateTime<Utc>, n: usize) -> Vec<IntradayBar> {
        if n == 0 {
            return Vec::new();
        }
        let mut days = 1;
        loop {
            let mut bars = self.bars_between(symbol, now - Duration::days(days), now);
            if bars.len() >= n || days >= 400 {
                let skip = bars.len().saturating_sub(n);
                return bars.split_off(skip);
            }
            days *= 4;
        }
    }

    /// The close of the last bar that ended at or before `now`.
    fn latest_price(&self, symbol: &str, now: DateTime<Utc>) -> Option<f64> {
        self.last_closed_bars(symbol, now, 1)
            .last()
            .map(|bar| bar.close)
    }

    /// Everything one execution cycle needs, for all its symbols at once: the last `n` closed
    /// bars and the latest price of each. The execution loop makes exactly this one call per
    /// cycle; a network feed answers it with batched requests (the default asks per symbol).
    fn snapshot(&self, symbols: &[String], now: DateTime<Utc>, n: usize) -> MarketSnapshot {
        let mut snapshot = MarketSnapshot::default();
        for symbol in symbols {
            let bars = self.last_closed_bars(symbol, now, n.max(1));
            if let Some(last) = bars.last() {
                snapshot.latest.insert(symbol.clone(), last.close);
            }
            let skip = bars.len().saturating_sub(n);
            snapshot.bars.insert(symbol.clone(), bars[skip..].to_vec());
        }
        snapshot
    }
}

/// The market as one execution cycle sees it (see [`IntradayFeed::snapshot`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MarketSnapshot {
    /// The last closed bars of each symbol, ascending.
    pub bars: std::collections::BTreeMap<String, Vec<IntradayBar>>,
    /// The close of each symbol's last closed bar.
    pub latest: std::collections::BTreeMap<String, f64>,
}

impl MarketSnapshot {
    pub fn latest_price(&self, symbol: &str) -> Option<f64> {
        self.latest.get(symbol).copied()
    }

    pub fn last_bars(&self, symbol: &str) -> &[IntradayBar] {
        self.bars.get(symbol).map_or(&[], Vec::as_slice)
    }
}

/// A feed behind a pointer is the same feed: every method forwards, so a network feed's
/// batched `snapshot` is kept through a `Box` or an `Arc`.
macro_rules! forward_feed {
    ($pointer:ident) => {
        impl<T: IntradayFeed + ?Sized> IntradayFeed for $pointer<T> {
            fn bars_between(
                &self,
                symbol: &str,
                after: DateTime<Utc>,
                up_to: DateTime<Utc>,
            ) -> Vec<IntradayBar> {
                (**self).bars_between(symbol, after, up_to)
            }

            fn last_closed_bars(
                &self,
                symbol: &str,
                now: DateTime<Utc>,
                n: usize,
            ) -> Vec<IntradayBar> {
                (**self).last_closed_bars(symbol, now, n)
            }

            fn latest_price(&self, symbol: &str, now: DateTime<Utc>) -> Option<f64> {
                (**self).latest_price(symbol, now)
            }

            fn snapshot(&self, symbols: &[String], now: DateTime<Utc>, n: usize) -> MarketSnapshot {
                (**self).snapshot(symbols, now, n)
            }
        }
    };
}

use std::sync::Arc;
forward_feed!(Box);
forward_feed!(Arc);

/// A recorded-bars file that cannot be replayed.
#[derive(Debug, thiserror::Error)]
#[error("cannot replay intraday bars from {path} (line {line}): {message}")]
pub struct ReplayError {
    pub path: std::path::PathBuf,
    pub line: u64,
    pub message: String,
}

/// A feed over an explicit list of bars (tests, replays of recorded bars).
#[derive(Debug, Clone, Default)]
pub struct BarListFeed {
    /// Per symbol, keyed by bar end.
    bars: BTreeMap<String, BTreeMap<DateTime<Utc>, IntradayBar>>,
}

impl BarListFeed {
    pub fn new(bars: impl IntoIterator<Item = IntradayBar>) -> Self {
        let mut feed = Self::default();
        for bar in bars {
            feed.push(bar);
        }
        feed
    }

    /// Replay recorded bars from a CSV file with the header
    /// `Symbol,Start,End,Open,High,Low,Close,Volume` (times in RFC 3339). Every row must parse
    /// and be a valid bar (low ≤ open, close ≤ high, positive prices, volume ≥ 0); the first bad
    /// row is an error naming its line.
    pub fn from_csv(path: &std::path::Path) -> Result<Self, ReplayError> {
        let err = |line: u64, message: String| ReplayError {
            path: path.to_path_buf(),
            line,
            message,
        };
        // Only a regular file of bounded size (a day of 10-minute bars for the whole
        // universe is about 10 MB).
        let limit = SizeLimit {
            bytes: 256 << 20,
            what: "a recorded-bars file",
            hint: "replay fewer days or symbols per file",
        };
        let bytes = read_regular(path, limit).map_err(|e| err(0, e.to_string()))?;
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let expected = [
            "Symbol", "Start", "End", "Open", "High", "Low", "Close", "Volume",
        ];
        let headers = reader.headers().map_err(|e| err(1, e.to_string()))?.clone();
        if headers.iter().collect::<Vec<_>>() != expected {
            return Err(err(1, format!("the header must be {}", expected.join(","))));
        }
        let mut feed = Self::default();
        for record in reader.records() {
            let record = record.map_err(|e| err(0, e.to_string()))?;
            let line = record.position().map_or(0, |p| p.line());
            let time = |i: usize| {
                DateTime::parse_from_rfc3339(&record[i])
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        err(
                            line,
                            format!(
                                "{} {} is not an RFC 3339 time",
                                expected[i],
                                excerpt(&record[i])
                            ),
                        )
                    })
            };
            let num = |i: usize| {
                record[i]
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| {
                        err(
                            line,
                            format!("{} {} is not a number", expected[i], excerpt(&record[i])),
                        )
                    })
            };
            let bar = IntradayBar {
                symbol: record[0].to_string(),
                start: time(1)?,
                end: time(2)?,
                open: num(3)?,
                high: num(4)?,
                low: num(5)?,
                close: num(6)?,
                volume: num(7)?,
            };
            let valid = bar.start < bar.end
                && bar.low > 0.0
                && bar.low <= bar.open.min(bar.close)
                && bar.high >= bar.open.max(bar.close)
                && bar.volume >= 0.0;
            if !valid {
                return Err(err(
                    line,
                    "not a valid bar (times, low ≤ open/close ≤ high, prices > 0, volume ≥ 0)"
                        .into(),
                ));
            }
            feed.push(bar);
        }
        Ok(feed)
    }

    /// Adds a bar (a bar with the same symbol and end replaces the earlier one).
    pub fn push(&mut self, bar: IntradayBar) {
        self.bars
            .entry(bar.symbol.clone())
            .or_default()
            .insert(bar.end, bar);
    }
}

impl IntradayFeed for BarListFeed {
    fn bars_between(
        &self,
        symbol: &str,
        after: DateTime<Utc>,
        up_to: DateTime<Utc>,
    ) -> Vec<IntradayBar> {
        if after >= up_to {
            return Vec::new();
        }
        self.bars
            .get(symbol)
            .map(|bars| {
                bars.range((
                    std::ops::Bound::Excluded(after),
                    std::ops::Bound::Included(up_to),
                ))
                .map(|(_, bar)| bar.clone())
                .collect()
            })
            .unwrap_or_default()
    }

    fn last_closed_bars(&self, symbol: &str, now: DateTime<Utc>, n: usize) -> Vec<IntradayBar> {
        let Some(bars) = self.bars.get(symbol) else {
            return Vec::new();
        };
        let mut out: Vec<IntradayBar> = bars
            .range(..=now)
            .rev()
            .take(n)
            .map(|(_, bar)| bar.clone())
            .collect();
        out.reverse();
        out
    }
}

/// The tick a price trades in: $0.01 at or above $1, $0.0001 below.
fn tick(price: f64) -> f64 {
    if price >= 1.0 {
        0.01
    } else {
        0.0001
    }
}

fn round_to_tick(price: f64) -> f64 {
    let t = tick(price);
    (price / t).round() * t
}

/// A seed for one (symbol, session date, seed) triple: FNV-1a over the symbol, mixed with the
/// date and the caller's seed.
fn path_seed(symbol: &str, date: NaiveDate, seed: u64) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for byte in symbol.bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    let days = u64::try_from(date.num_days_from_ce()).unwrap_or(0);
    let mut mix =
        SplitMix64::new(h ^ days.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed.rotate_left(17));
    mix.next_u64()
}

/// A **synthetic** 10-minute path for one session, derived from that session's daily bar.
///
/// Bars run from the session open to its close (39 bars on a regular day, 21 on a 13:00 early
/// close; a trailing partial interval, which NYSE sessions never have, would be one shorter
/// bar). The path is deterministic for (symbol, session date, seed) and satisfies:
/// - the first bar opens at the daily open and the last bar closes at the daily close;
/// - the highest bar high is the daily high and the lowest bar low the daily low;
/// - every bar has `low <= open, close <= high`, and all prices lie in `[daily low, daily high]`;
/// - bar volumes sum to the daily volume (whole shares when the daily volume is whole; the
///   last bar absorbs the rounding);
/// - the path visits the two extremes in an order chosen by the seed
///   (open → low → high → close, or open → high → low → close), piecewise linear between those
///   waypoints with seeded Brownian-bridge noise, rounded to the tick.
///
/// The daily bar is trusted to be valid (`low <= open, close <= high`); an invalid one is first
/// widened so that it is.
pub fn synthetic_session_path(
    symbol: &str,
    daily: &DailyBar,
    session: &Session,
    seed: u64,
) -> Vec<IntradayBar> {
    let step = Duration::minutes(BAR_MINUTES);
    let mut bounds = Vec::new();
    let mut t = session.open;
    while t < session.close {
        let end = (t + step).min(session.close);
        bounds.push((t, end));
        t = end;
    }
    let n = bounds.len();
    if n == 0 {
        return Vec::new();
    }

    let open = daily.open;
    let close = daily.close;
    let high = daily.high.max(open).max(close);
    let low = daily.low.min(open).min(close);
    let mut rng = SplitMix64::new(path_seed(symbol, daily.date, seed));
    let low_first = rng.uniform() < 0.5;
    let (first, second) = if low_first { (low, high) } else { (high, low) };

    // Boundary prices p[0..=n]: bar k opens at p[k] and closes at p[k + 1].
    let mut points = vec![open; n + 1];
    points[n] = close;
    let waypoints: Vec<(usize, f64)> = if n >= 3 {
        // 1 <= ta < tb <= n - 1.
        let ta = 1 + (rng.uniform() * (n - 2) as f64) as usize;
        let ta = ta.min(n - 2);
        let tb = ta + 1 + (rng.uniform() * (n - 1 - ta) as f64) as usize;
        let tb = tb.min(n - 1);
        vec![(0, open), (ta, first), (tb, second), (n, close)]
    } else {
        vec![(0, open), (n, close)]
    };
    let range = high - low;
    let sigma = range * 0.06;
    for pair in waypoints.windows(2) {
        let (s, vs) = pair[0];
        let (e, ve) = pair[1];
        let len = e - s;
        let mut walk = vec![0.0; len + 1];
        for j in 1..=len {
            walk[j] = walk[j - 1] + sigma * rng.normal();
        }
        for j in 0..=len {
            let frac = j as f64 / len as f64;
            let bridge = walk[j] - frac * walk[len];
            let value = vs + (ve - vs) * frac + bridge;
            points[s + j] = if j == 0 {
                vs
            } else if j == len {
                ve
            } else {
                round_to_tick(value).clamp(low, high)
            };
        }
    }
    // Volume: a U-shaped profile with noise, normalised to the daily volume.
    let weights: Vec<f64> = (0..n)
        .map(|k| {
            let x = (k as f64 + 0.5) / n as f64;
            let u = 1.0 + 2.5 * (2.0 * x - 1.0).powi(2);
            u * (0.7 + 0.6 * rng.uniform())
        })
        .collect();
    let total_weight: f64 = weights.iter().sum();
    let volume = daily.volume.max(0.0);
    let whole = volume.fract() == 0.0;
    let mut volumes: Vec<f64> = weights
        .iter()
        .map(|w| {
            let v = volume * w / total_weight;
            if whole {
                v.floor()
            } else {
                v
            }
        })
        .collect();
    let assigned: f64 = volumes[..n - 1].iter().sum();
    volumes[n - 1] = (volume - assigned).max(0.0);

    let mut bars = Vec::with_capacity(n);
    for (k, &(start, end)) in bounds.iter().enumerate() {
        let o = points[k];
        let c = points[k + 1];
        let wick_up = range * 0.04 * rng.uniform();
        let wick_down = range * 0.04 * rng.uniform();
        let mut h = round_to_tick(o.max(c) + wick_up)
            .clamp(low, high)
            .max(o.max(c));
        let mut l = round_to_tick(o.min(c) - wick_down)
            .clamp(low, high)
            .min(o.min(c));
        if n < 3 && k == 0 {
            // Too short for interior waypoints: the extremes are bar 0's wicks.
            h = high;
            l = low;
        }
        bars.push(IntradayBar {
            symbol: symbol.to_string(),
            start,
            end,
            open: o,
            high: h,
            low: l,
            close: c,
            volume: volumes[k],
        });
    }
    bars
}

/// A **synthetic** intraday feed: each session's 10-minute bars are generated (on request,
/// deterministically) from that session's daily bar by [`synthetic_session_path`]. Sessions
/// without a daily bar have no intraday bars.
#[derive(Debug, Clone, Default)]
pub struct SyntheticIntradayFeed {
    daily: BTreeMap<String, BTreeMap<NaiveDate, DailyBar>>,
    seed: u64,
}

impl SyntheticIntradayFeed {
    /// A feed over the given daily bars per symbol.
    pub fn from_daily(map: BTreeMap<String, Vec<DailyBar>>, seed: u64) -> Self {
        let daily = map
            .into_iter()
            .map(|(symbol, bars)| (symbol, bars.into_iter().map(|b| (b.date, b)).collect()))
            .collect();
        Self { daily, seed }
    }

    /// A feed over the stored daily bars of `symbols` dated within `[start, end]`.
    pub fn from_store(
        store: &BarStore,
        symbols: &[String],
        start: Option<NaiveDate>,
        end: Option<NaiveDate>,
        seed: u64,
    ) -> Result<Self, StoreError> {
        let mut map = BTreeMap::new();
        for symbol in symbols {
            map.insert(symbol.clone(), store.bars(symbol, start, end)?);
        }
        Ok(Self::from_daily(map, seed))
    }

    /// Adds (or replaces) one daily bar.
    pub fn insert_daily(&mut self, symbol: &str, bar: DailyBar) {
        self.daily
            .entry(symbol.to_string())
            .or_default()
            .insert(bar.date, bar);
    }

    /// Appends **synthetic daily bars** for every session after each symbol's last daily bar
    /// through `last`: a seeded random walk from the last close (about ±1.5 % a day, volume
    /// near the last bar's), deterministic for the same daily bars and seed. Lets the feed serve
    /// sessions the bar store has no bars for yet, e.g. `sim` mode on today's date. Returns
    /// the number of bars added.
    pub fn extend_through(&mut self, last: NaiveDate) -> Result<usize, calendar::CalendarError> {
        let mut added = 0;
        for (symbol, days) in &mut self.daily {
            let Some((&last_date, &last_bar)) = days.iter().next_back() else {
                continue;
            };
            let Some(first_new) = last_date.succ_opt().filter(|d| *d <= last) else {
                continue;
            };
            let mut prev = last_bar;
            for session in calendar::sessions_between(first_new, last)? {
                let mut rng = SplitMix64::new(path_seed(symbol, session.date, self.seed ^ 0xDA11));
                let floor = 0.01;
                let open = round_to_tick(prev.close * (1.0 + 0.004 * rng.normal())).max(floor);
                let close = round_to_tick(open * (1.0 + 0.015 * rng.normal())).max(floor);
                let high = round_to_tick(open.max(close) * (1.0 + 0.008 * rng.uniform()))
                    .max(open.max(close));
                let low = round_to_tick(open.min(close) * (1.0 - 0.008 * rng.uniform()))
                    .clamp(floor.min(open.min(close)), open.min(close));
                let volume = (prev.volume.max(1000.0) * (0.7 + 0.6 * rng.uniform())).round();
                let bar = DailyBar {
                    date: session.date,
                    open,
                    high,
                    low,
                    close,
                    volume,
                };
                days.insert(session.date, bar);
                prev = bar;
                added += 1;
            }
        }
        Ok(added)
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The full synthetic path of `symbol` on `date`, if the feed has that daily bar and the
    /// date is a session.
    pub fn session_path(&self, symbol: &str, date: NaiveDate) -> Option<Vec<IntradayBar>> {
        let bar = self.daily.get(symbol)?.get(&date)?;
        let session = calendar::session(date).ok()??;
        Some(synthetic_session_path(symbol, bar, &session, self.seed))
    }
}

impl IntradayFeed for SyntheticIntradayFeed {
    fn bars_between(
        &self,
        symbol: &str,
        after: DateTime<Utc>,
        up_to: DateTime<Utc>,
    ) -> Vec<IntradayBar> {
        if after >= up_to {
            return Vec::new();
        }
        let Some(days) = self.daily.get(symbol) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (&date, bar) in days.range(ny_date(after)..=ny_date(up_to)) {
            let Ok(Some(session)) = calendar::session(date) else {
                continue;
            };
            if session.close <= after || session.open >= up_to {
                continue;
            }
            out.extend(
                synthetic_session_path(symbol, bar, &session, self.seed)
                    .into_iter()
                    .filter(|b| b.end > after && b.end <= up_to),
            );
        }
        out
    }

    fn last_closed_bars(&self, symbol: &str, now: DateTime<Utc>, n: usize) -> Vec<IntradayBar> {
        let Some(days) = self.daily.get(symbol) else {
            return Vec::new();
        };
        let mut out: Vec<IntradayBar> = Vec::new();
        for (&date, bar) in days.range(..=ny_date(now)).rev() {
            if out.len() >= n {
                break;
            }
            let Ok(Some(session)) = calendar::session(date) else {
                continue;
            };
            let mut path: Vec<IntradayBar> =
                synthetic_session_path(symbol, bar, &session, self.seed)
                    .into_iter()
                    .filter(|b| b.end <= now)
                    .collect();
            path.append(&mut out);
            out = path;
        }
        let skip = out.len().saturating_sub(n);
        out.split_off(skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn daily(date: NaiveDate, o: f64, h: f64, l: f64, c: f64, v: f64) -> DailyBar {
        DailyBar {
            date,
            open: o,
            high: h,
            low: l,
            close: c,
            volume: v,
        }
    }

    fn check_invariants(path: &[IntradayBar], bar: &DailyBar, session: &Session) {
        assert!(!path.is_empty());
        assert_eq!(path[0].start, session.open);
        assert_eq!(path.last().unwrap().end, session.close);
        assert_eq!(path[0].open, bar.open);
        assert_eq!(path.last().unwrap().close, bar.close);
        let max_high = path.iter().map(|b| b.high).fold(f64::MIN, f64::max);
        let min_low = path.iter().map(|b| b.low).fold(f64::MAX, f64::min);
        assert_eq!(max_high, bar.high);
        assert_eq!(min_low, bar.low);
        for pair in path.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        for b in path {
            assert!(b.low <= b.open && b.open <= b.high, "{b:?}");
            assert!(b.low <= b.close && b.close <= b.high, "{b:?}");
            assert!(b.low >= bar.low && b.high <= bar.high, "{b:?}");
            assert!(b.volume >= 0.0);
            assert_eq!(b.end - b.start, Duration::minutes(BAR_MINUTES));
        }
        let total: f64 = path.iter().map(|b| b.volume).sum();
        assert!(
            (total - bar.volume).abs() <= 1e-6 * bar.volume.max(1.0),
            "{total} vs {}",
            bar.volume
        );
    }

    #[test]
    fn regular_session_has_39_bars_and_honours_the_daily_bar() {
        let date = d(2026, 3, 2);
        let session = calendar::session(date).unwrap().unwrap();
        let bar = daily(date, 50.10, 51.75, 49.20, 51.02, 1_234_567.0);
        for seed in 0..50 {
            let path = synthetic_session_path("ACME", &bar, &session, seed);
            assert_eq!(path.len(), 39);
            check_invariants(&path, &bar, &session);
        }
    }

    #[test]
    fn early_close_has_21_bars() {
        let date = d(2026, 11, 27);
        let session = calendar::session(date).unwrap().unwrap();
        assert!(session.early_close);
        let bar = daily(date, 42.00, 42.80, 41.55, 42.31, 400_000.0);
        let path = synthetic_session_path("ACME", &bar, &session, 7);
        assert_eq!(path.len(), 21);
        assert_eq!(path.last().unwrap().end, utc("2026-11-27T18:00:00Z"));
        check_invariants(&path, &bar, &session);
    }

    #[test]
    fn path_is_deterministic_and_depends_on_symbol_date_and_seed() {
        let date = d(2026, 3, 2);
        let session = calendar::session(date).unwrap().unwrap();
        let bar = daily(date, 50.10, 51.75, 49.20, 51.02, 1_000_000.0);
        let a = synthetic_session_path("ACME", &bar, &session, 1);
        assert_eq!(a, synthetic_session_path("ACME", &bar, &session, 1));
        assert_ne!(a, synthetic_session_path("ACME", &bar, &session, 2));
        let b = synthetic_session_path("BETA", &bar, &session, 1);
        let b_prices: Vec<f64> = b.iter().map(|x| x.close).collect();
        let a_prices: Vec<f64> = a.iter().map(|x| x.close).collect();
        assert_ne!(a_prices, b_prices);
    }

    #[test]
    fn both_visit_orders_occur() {
        let date = d(2026, 3, 2);
        let session = calendar::session(date).unwrap().unwrap();
        let bar = daily(date, 50.10, 51.75, 49.20, 51.02, 1_000_000.0);
        let mut low_first = 0;
        let mut high_first = 0;
        for seed in 0..40 {
            let path = synthetic_session_path("ACME", &bar, &session, seed);
            let first_low = path.iter().position(|b| b.low == bar.low).unwrap();
            let first_high = path.iter().position(|b| b.high == bar.high).unwrap();
            if first_low < first_high {
                low_first += 1;
            } else if first_high < first_low {
                high_first += 1;
            }
        }
        assert!(low_first > 5 && high_first > 5, "{low_first} {high_first}");
    }

    #[test]
    fn flat_day_is_flat() {
        let date = d(2026, 3, 2);
        let session = calendar::session(date).unwrap().unwrap();
        let bar = daily(date, 40.0, 40.0, 40.0, 40.0, 100.0);
        let path = synthetic_session_path("FLAT", &bar, &session, 3);
        check_invariants(&path, &bar, &session);
        assert!(path.iter().all(|b| b.open == 40.0 && b.high == 40.0));
    }

    fn feed() -> SyntheticIntradayFeed {
        let mut map = BTreeMap::new();
        map.insert(
            "ACME".to_string(),
            vec![
                daily(d(2026, 2, 27), 49.0, 50.2, 48.7, 50.0, 900_000.0),
                daily(d(2026, 3, 2), 50.10, 51.75, 49.20, 51.02, 1_000_000.0),
                daily(d(2026, 3, 3), 51.00, 51.40, 50.05, 50.30, 800_000.0),
            ],
        );
        SyntheticIntradayFeed::from_daily(map, 11)
    }

    #[test]
    fn feed_never_returns_bars_ending_after_up_to() {
        let feed = feed();
        // 2026-03-02 is EST: the open is 14:30Z.
        let bars = feed.bars_between(
            "ACME",
            utc("2026-03-02T14:00:00Z"),
            utc("2026-03-02T15:05:00Z"),
        );
        assert_eq!(bars.len(), 3);
        assert_eq!(bars[0].end, utc("2026-03-02T14:40:00Z"));
        assert_eq!(bars[2].end, utc("2026-03-02T15:00:00Z"));
        assert!(bars.iter().all(|b| b.end <= utc("2026-03-02T15:05:00Z")));
        // (after, up_to]: the bar ending exactly at `after` is excluded, at `up_to` included.
        let bars = feed.bars_between(
            "ACME",
            utc("2026-03-02T14:40:00Z"),
            utc("2026-03-02T15:00:00Z"),
        );
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[0].end, utc("2026-03-02T14:50:00Z"));
        assert!(feed
            .bars_between(
                "ACME",
                utc("2026-03-02T15:00:00Z"),
                utc("2026-03-02T15:00:00Z")
            )
            .is_empty());
        assert!(feed
            .bars_between(
                "NOPE",
                utc("2026-03-01T00:00:00Z"),
                utc("2026-03-05T00:00:00Z")
            )
            .is_empty());
    }

    #[test]
    fn feed_spans_sessions_in_order() {
        let feed = feed();
        let bars = feed.bars_between(
            "ACME",
            utc("2026-02-27T00:00:00Z"),
            utc("2026-03-04T00:00:00Z"),
        );
        assert_eq!(bars.len(), 39 * 3);
        assert!(bars.windows(2).all(|w| w[0].end < w[1].end));
    }

    #[test]
    fn last_closed_bars_and_latest_price() {
        let feed = feed();
        let now = utc("2026-03-02T14:45:00Z");
        let last = feed.last_closed_bars("ACME", now, 3);
        assert_eq!(last.len(), 3);
        // One bar of today, two of the previous session.
        assert_eq!(last[2].end, utc("2026-03-02T14:40:00Z"));
        assert_eq!(last[1].end, utc("2026-02-27T21:00:00Z"));
        assert_eq!(last[1].close, 50.0);
        assert_eq!(feed.latest_price("ACME", now), Some(last[2].close));
        // Before the first bar of the data: nothing.
        assert_eq!(feed.latest_price("ACME", utc("2026-02-27T14:35:00Z")), None);
        // Over the weekend: the last close of Friday.
        assert_eq!(
            feed.latest_price("ACME", utc("2026-03-01T12:00:00Z")),
            Some(50.0)
        );
        // The default implementation agrees with the specialised one.
        let via_default = BarListFeed::new(feed.bars_between(
            "ACME",
            utc("2026-02-01T00:00:00Z"),
            utc("2026-03-10T00:00:00Z"),
        ));
        struct Plain(BarListFeed);
        impl IntradayFeed for Plain {
            fn bars_between(
                &self,
                s: &str,
                a: DateTime<Utc>,
                u: DateTime<Utc>,
            ) -> Vec<IntradayBar> {
                self.0.bars_between(s, a, u)
            }
        }
        let plain = Plain(via_default.clone());
        for n in [0, 1, 5, 40, 100] {
            assert_eq!(
                plain.last_closed_bars("ACME", now, n),
                feed.last_closed_bars("ACME", now, n)
            );
            assert_eq!(
                via_default.last_closed_bars("ACME", now, n),
                feed.last_closed_bars("ACME", now, n)
            );
        }
    }

    #[test]
    fn extend_through_adds_synthetic_sessions_after_the_last_bar() {
        let mut a = feed();
        let added = a.extend_through(d(2026, 3, 10)).unwrap();
        // 03-04, 05, 06, 09, 10.
        assert_eq!(added, 5);
        let mut b = feed();
        b.extend_through(d(2026, 3, 10)).unwrap();
        let now = utc("2026-03-10T20:00:00Z");
        let bars = a.bars_between("ACME", utc("2026-03-03T22:00:00Z"), now);
        assert_eq!(
            bars,
            b.bars_between("ACME", utc("2026-03-03T22:00:00Z"), now)
        );
        // 5 sessions, the last one up to 16:00 EDT = 20:00Z (the whole day).
        assert_eq!(bars.len(), 39 * 5);
        for bar in &bars {
            assert!(bar.low > 0.0 && bar.low <= bar.open.min(bar.close));
            assert!(bar.high >= bar.open.max(bar.close));
        }
        // Existing bars are kept; extending again adds nothing.
        assert_eq!(
            a.session_path("ACME", d(2026, 3, 3)),
            feed().session_path("ACME", d(2026, 3, 3))
        );
        assert_eq!(a.extend_through(d(2026, 3, 10)).unwrap(), 0);
    }

    proptest! {
        #[test]
        fn synthetic_path_invariants_hold_for_any_valid_daily_bar(
            low in 0.05f64..500.0,
            spread in 0.0f64..0.3,
            o in 0.0f64..=1.0,
            c in 0.0f64..=1.0,
            volume in 0u32..50_000_000,
            seed in any::<u64>(),
            day in 0i64..700,
        ) {
            let low = round_to_tick(low);
            let high = round_to_tick(low * (1.0 + spread)).max(low);
            let open = round_to_tick(low + (high - low) * o).clamp(low, high);
            let close = round_to_tick(low + (high - low) * c).clamp(low, high);
            let date = calendar::session_on_or_after(d(2025, 1, 1) + Duration::days(day)).unwrap();
            let session = calendar::session(date).unwrap().unwrap();
            let bar = daily(date, open, high, low, close, f64::from(volume));
            let path = synthetic_session_path("PROP", &bar, &session, seed);
            prop_assert_eq!(path.len(), if session.early_close { 21 } else { 39 });
            check_invariants(&path, &bar, &session);
        }
    }
}

#[cfg(test)]
mod replay_tests {
    use super::*;

    #[test]
    fn replays_recorded_bars_and_rejects_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bars.csv");
        std::fs::write(
            &path,
            "Symbol,Start,End,Open,High,Low,Close,Volume\n\
             AXTA,2026-11-30T14:30:00Z,2026-11-30T14:40:00Z,33.00,33.20,32.90,33.10,12000\n\
             AXTA,2026-11-30T14:40:00Z,2026-11-30T14:50:00Z,33.10,33.40,33.05,33.35,9000\n",
        )
        .unwrap();
        let feed = BarListFeed::from_csv(&path).unwrap();
        let now: DateTime<Utc> = "2026-11-30T14:55:00Z".parse().unwrap();
        let bars = feed.last_closed_bars("AXTA", now, 2);
        assert_eq!(bars.len(), 2);
        assert_eq!(feed.latest_price("AXTA", now), Some(33.35));
        // Before the second bar closed it is not visible.
        let early: DateTime<Utc> = "2026-11-30T14:45:00Z".parse().unwrap();
        assert_eq!(feed.latest_price("AXTA", early), Some(33.10));

        std::fs::write(
            &path,
            "Symbol,Start,End,Open,High,Low,Close,Volume\n\
             AXTA,2026-11-30T14:30:00Z,2026-11-30T14:40:00Z,33.00,32.20,32.90,33.10,12000\n",
        )
        .unwrap();
        let err = BarListFeed::from_csv(&path).unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        std::fs::write(&path, "Date,Close\n").unwrap();
        assert!(BarListFeed::from_csv(&path)
            .unwrap_err()
            .to_string()
            .contains("header"));
    }
}
