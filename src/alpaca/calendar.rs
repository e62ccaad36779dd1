//! Alpaca's market calendar (`GET /v2/calendar`) as a cross-check of avwap's own NYSE calendar.
//!
//! This file owns: fetching Alpaca's calendar for a date window, the cached copy
//! `<state_dir>/alpaca_calendar.json` (written atomically; used when a fetch fails), the pure
//! comparison with [`crate::calendar`] ([`compare`]), and [`check_calendar_and_log`], the call
//! made at execution start that logs every disagreement and never fails its caller.
//!
//! avwap always trades by its own calendar: a mismatch is reported (with what to do), never
//! acted on. Alpaca's answer is the broker's view of the exchange, so a disagreement means one
//! of the two is out of date: a new ad-hoc closure (a national day of mourning), a changed
//! early close, or a calendar past its horizon.
//!
//! Spec (`trading-api.json`, operation `LegacyCalendar`): query `start`, `end` (inclusive; sent
//! as `YYYY-MM-DD`, the form Alpaca's own SDKs send and its `legacyTime` type accepts),
//! `date_type` (not sent: the default `TRADING` is what we want). Each day has `date`
//! (`YYYY-MM-DD`), `open` and `close` (`HH:MM`, New York wall clock), `session_open` and
//! `session_close` (`HHMM`, extended hours; not compared) and `settlement_date`. Alpaca documents
//! its calendar for 1970–2029; avwap's covers 2000–2035. Both ends are handled: dates outside
//! avwap's range, and a window past the last day Alpaca lists, each give one mismatch instead
//! of one per day.

use super::client::{AlpacaClient, AlpacaError, Api, Request};
use crate::calendar::{self, ny_datetime, ny_instant};
use crate::fsutil::{read_regular, write_bytes_atomic, SizeLimit};
use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The Trading API calendar endpoint.
pub const CALENDAR_PATH: &str = "/v2/calendar";
/// The cached copy of the last calendar fetched, in the state dir.
pub const CALENDAR_CACHE_FILE: &str = "alpaca_calendar.json";
/// [`check_calendar_and_log`] compares from this many days before today…
pub const CHECK_DAYS_BEFORE: u64 = 5;
/// …to this many days after it.
pub const CHECK_DAYS_AFTER: u64 = 60;
/// A run of at least this many avwap sessions at the end of the window that Alpaca does not list
/// (after the last day it does list) is reported once, as the end of Alpaca's list. No NYSE
/// closure in avwap's range was longer than four sessions (September 2001).
pub const LIST_END_MIN_SESSIONS: usize = 5;

/// One day as Alpaca sends it (schema `legacy_calendar_day`). Also the cached form, so a cached
/// copy is re-read by the same parser as a fresh answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireCalendarDay {
    pub date: String,
    pub open: String,
    pub close: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_open: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_close: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_date: Option<String>,
}

/// One session Alpaca lists: its New York date and regular open and close (New York wall clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlpacaCalendarDay {
    pub date: NaiveDate,
    pub open: NaiveTime,
    pub close: NaiveTime,
    pub settlement_date: Option<NaiveDate>,
}

impl AlpacaCalendarDay {
    /// The open as an instant (New York wall clock through chrono-tz, DST-safe).
    pub fn open_instant(&self) -> DateTime<Utc> {
        ny_instant(self.date, self.open)
    }

    pub fn close_instant(&self) -> DateTime<Utc> {
        ny_instant(self.date, self.close)
    }
}

fn parse_wall_time(field: &str, date: &str, text: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text.trim(), "%H:%M:%S"))
        .map_err(|_| format!("calendar day {date}: {field} {text:?} is not an HH:MM time"))
}

impl WireCalendarDay {
    /// Parse the fields we use; an error names the day and the field.
    pub fn parse(&self) -> Result<AlpacaCalendarDay, String> {
        let date = NaiveDate::parse_from_str(self.date.trim(), "%Y-%m-%d").map_err(|_| {
            format!(
                "calendar day {:?}: date is not a YYYY-MM-DD date",
                self.date
            )
        })?;
        let open = parse_wall_time("open", &self.date, &self.open)?;
        let close = parse_wall_time("close", &self.date, &self.close)?;
        if close <= open {
            return Err(format!(
                "calendar day {}: close {} is not after open {}",
                self.date, self.close, self.open
            ));
        }
        // Informational only: an unreadable settlement date does not spoil the day.
        let settlement_date = self
            .settlement_date
            .as_deref()
            .and_then(|s| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok());
        Ok(AlpacaCalendarDay {
            date,
            open,
            close,
            settlement_date,
        })
    }
}

/// Parse a whole answer; the first bad day fails it (the answer is not what the spec promises).
pub fn parse_days(wire: &[WireCalendarDay]) -> Result<Vec<AlpacaCalendarDay>, String> {
    let mut days = wire
        .iter()
        .map(WireCalendarDay::parse)
        .collect::<Result<Vec<_>, _>>()?;
    days.sort_by_key(|d| d.date);
    Ok(days)
}

/// One disagreement between Alpaca's calendar and avwap's. `Display` says what differs, that
/// avwap trades by its own calendar, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarMismatch {
    /// Alpaca lists a session on a day avwap's calendar has the exchange closed.
    UnexpectedSession {
        date: NaiveDate,
        alpaca_open: DateTime<Utc>,
        alpaca_close: DateTime<Utc>,
    },
    /// avwap has a session on a day Alpaca does not list (Alpaca: closed).
    MissingSession {
        date: NaiveDate,
        avwap_open: DateTime<Utc>,
        avwap_close: DateTime<Utc>,
    },
    /// Both have a session; the open or the close differs (e.g. an early close).
    DifferentHours {
        date: NaiveDate,
        avwap_open: DateTime<Utc>,
        avwap_close: DateTime<Utc>,
        alpaca_open: DateTime<Utc>,
        alpaca_close: DateTime<Utc>,
    },
    /// Alpaca lists nothing after `last_listed` (or nothing at all in the window), while avwap
    /// has `sessions` sessions from `first_missing` to `last_missing`: Alpaca's published
    /// horizon, or an answer cut short.
    AlpacaListEnds {
        last_listed: Option<NaiveDate>,
        first_missing: NaiveDate,
        last_missing: NaiveDate,
        sessions: usize,
    },
    /// Dates outside avwap's calendar (2000–2035): not compared.
    OutsideAvwapCalendar {
        first: NaiveDate,
        last: NaiveDate,
        /// Sessions Alpaca lists in that span.
        alpaca_sessions: usize,
    },
}

const OWN_CALENDAR: &str = "avwap trades by its own calendar";
const EXCHANGE_NOTICE: &str =
    "check the exchange's notice (NYSE holidays and trading hours: nyse.com/markets/hours-calendars)";

fn hours(open: DateTime<Utc>, close: DateTime<Utc>) -> String {
    format!(
        "{}–{} New York",
        ny_datetime(open).format("%H:%M"),
        ny_datetime(close).format("%H:%M")
    )
}

impl CalendarMismatch {
    /// The first date the mismatch is about (for ordering and log fields).
    pub fn date(&self) -> NaiveDate {
        match self {
            Self::UnexpectedSession { date, .. }
            | Self::MissingSession { date, .. }
            | Self::DifferentHours { date, .. } => *date,
            Self::AlpacaListEnds { first_missing, .. } => *first_missing,
            Self::OutsideAvwapCalendar { first, .. } => *first,
        }
    }
}

impl fmt::Display for CalendarMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedSession {
                date,
                alpaca_open,
                alpaca_close,
            } => write!(
                f,
                "calendar mismatch on {date}: Alpaca lists a session ({}) but avwap's NYSE \
                 calendar has the exchange closed. {OWN_CALENDAR} and will not trade that day; \
                 {EXCHANGE_NOTICE}, and if the exchange is open, update avwap (its calendar is \
                 src/calendar/nyse.rs).",
                hours(*alpaca_open, *alpaca_close)
            ),
            Self::MissingSession {
                date,
                avwap_open,
                avwap_close,
            } => write!(
                f,
                "calendar mismatch on {date}: avwap's NYSE calendar has a session ({}) that \
                 Alpaca does not list (Alpaca: closed). {OWN_CALENDAR} and will try to trade \
                 that day; {EXCHANGE_NOTICE}, and if the exchange is closed (e.g. a national day \
                 of mourning), update avwap (add the closure to src/calendar/nyse.rs) or engage \
                 the kill switch for that day.",
                hours(*avwap_open, *avwap_close)
            ),
            Self::DifferentHours {
                date,
                avwap_open,
                avwap_close,
                alpaca_open,
                alpaca_close,
            } => {
                let what = match (avwap_open != alpaca_open, avwap_close != alpaca_close) {
                    (true, true) => "open and close differ",
                    (true, false) => "open differs",
                    _ => "close differs",
                };
                write!(
                    f,
                    "calendar mismatch on {date}: session hours differ ({what}): Alpaca \
                     {}, avwap {}. {OWN_CALENDAR} and times that session by avwap's hours; \
                     {EXCHANGE_NOTICE}, and if Alpaca is right (e.g. a new early close), update \
                     avwap (src/calendar/nyse.rs).",
                    hours(*alpaca_open, *alpaca_close),
                    hours(*avwap_open, *avwap_close)
                )
            }
            Self::AlpacaListEnds {
                last_listed,
                first_missing,
                last_missing,
                sessions,
            } => {
                let listed = match last_listed {
                    Some(day) => format!("lists no session after {day}"),
                    None => "lists no session at all in the window".to_string(),
                };
                write!(
                    f,
                    "calendar mismatch: Alpaca's calendar {listed}, while avwap's has {sessions} \
                     sessions from {first_missing} to {last_missing}; these were not compared. \
                     {OWN_CALENDAR}. Alpaca publishes its calendar only some years ahead \
                     (documented: to 2029); if these dates are near, check Alpaca's status and \
                     {EXCHANGE_NOTICE}."
                )
            }
            Self::OutsideAvwapCalendar {
                first,
                last,
                alpaca_sessions,
            } => write!(
                f,
                "calendar not compared for {first}..{last}: outside avwap's NYSE calendar \
                 ({}–{}; Alpaca lists {alpaca_sessions} sessions there). avwap has no calendar \
                 for these dates and refuses to trade on them: update avwap.",
                calendar::FIRST_YEAR,
                calendar::LAST_YEAR
            ),
        }
    }
}

/// Compare Alpaca's sessions with avwap's calendar for every date `from..=to` (days Alpaca lists
/// outside that window are ignored). Pure: no I/O, no clock. Mismatches come in date order.
pub fn compare(
    alpaca_days: &[AlpacaCalendarDay],
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<CalendarMismatch> {
    let listed: BTreeMap<NaiveDate, &AlpacaCalendarDay> = alpaca_days
        .iter()
        .filter(|d| d.date >= from && d.date <= to)
        .rev() // the first of duplicate dates wins
        .map(|d| (d.date, d))
        .collect();
    let last_listed = listed.keys().next_back().copied();

    let mut mismatches = Vec::new();
    // Sessions avwap has and Alpaca does not list, after Alpaca's last listed day.
    let mut trailing_missing: Vec<CalendarMismatch> = Vec::new();
    // The current run of dates outside avwap's calendar: (first, last, Alpaca sessions).
    let mut outside: Option<(NaiveDate, NaiveDate, usize)> = None;

    for date in from.iter_days().take_while(|d| *d <= to) {
        let alpaca = listed.get(&date);
        let ours = match calendar::session(date) {
            Ok(ours) => ours,
            Err(_) => {
                let count = usize::from(alpaca.is_some());
                outside = Some(match outside {
                    Some((first, _, n)) => (first, date, n + count),
                    None => (date, date, count),
                });
                continue;
            }
        };
        if let Some((first, last, alpaca_sessions)) = outside.take() {
            mismatches.push(CalendarMismatch::OutsideAvwapCalendar {
                first,
                last,
                alpaca_sessions,
            });
        }
        match (ours, alpaca) {
            (None, None) => {}
            (None, Some(day)) => mismatches.push(CalendarMismatch::UnexpectedSession {
                date,
                alpaca_open: day.open_instant(),
                alpaca_close: day.close_instant(),
            }),
            (Some(session), None) => {
                let missing = CalendarMismatch::MissingSession {
                    date,
                    avwap_open: session.open,
                    avwap_close: session.close,
                };
                if last_listed.is_none_or(|last| date > last) {
                    trailing_missing.push(missing);
                } else {
                    mismatches.push(missing);
                }
            }
            (Some(session), Some(day)) => {
                let (alpaca_open, alpaca_close) = (day.open_instant(), day.close_instant());
                if session.open != alpaca_open || session.close != alpaca_close {
                    mismatches.push(CalendarMismatch::DifferentHours {
                        date,
                        avwap_open: session.open,
                        avwap_close: session.close,
                        alpaca_open,
                        alpaca_close,
                    });
                }
            }
        }
    }
    if let Some((first, last, alpaca_sessions)) = outside {
        mismatches.push(CalendarMismatch::OutsideAvwapCalendar {
            first,
            last,
            alpaca_sessions,
        });
    }
    if trailing_missing.len() >= LIST_END_MIN_SESSIONS {
        let first_missing = trailing_missing
            .first()
            .map(CalendarMismatch::date)
            .unwrap_or(from);
        let last_missing = trailing_missing
            .last()
            .map(CalendarMismatch::date)
            .unwrap_or(to);
        mismatches.push(CalendarMismatch::AlpacaListEnds {
            last_listed,
            first_missing,
            last_missing,
            sessions: trailing_missing.len(),
        });
    } else {
        mismatches.extend(trailing_missing);
    }
    mismatches.sort_by_key(CalendarMismatch::date);
    mismatches
}

/// Where the compared calendar came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarSource {
    /// Fetched from Alpaca just now.
    Fetched,
    /// The fetch failed; the cached copy in the state dir was used.
    Cache {
        fetched_at: DateTime<Utc>,
        /// Why the fetch failed.
        fetch_error: String,
    },
}

/// The result of [`sync_calendar`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarCheck {
    /// The window actually compared: the requested one, or its overlap with the cached copy.
    pub compared_from: NaiveDate,
    pub compared_to: NaiveDate,
    pub source: CalendarSource,
    /// Alpaca's sessions in the compared window.
    pub alpaca_days: Vec<AlpacaCalendarDay>,
    pub mismatches: Vec<CalendarMismatch>,
    /// Set when a fresh answer could not be cached (the check itself succeeded).
    pub cache_error: Option<String>,
}

/// The calendar could not be checked at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarSyncError {
    #[error("invalid calendar window {from}..{to}: the start is after the end")]
    InvalidWindow { from: NaiveDate, to: NaiveDate },
    /// The fetch error says what went wrong (status, or the field of a malformed answer) in
    /// its own words: no advice is added, since a malformed answer is not a network or key
    /// problem and a refused key already says so.
    #[error(
        "Alpaca's calendar could not be checked: the fetch failed ({fetch}) and the cached copy \
         is unusable ({cache}). avwap trades by its own calendar regardless (the check runs \
         again at the next start)"
    )]
    Unavailable { fetch: AlpacaError, cache: String },
}

/// The cache file: the raw days of the last successful fetch and the window asked for.
#[derive(Debug, Serialize, Deserialize)]
struct CalendarCache {
    fetched_at: DateTime<Utc>,
    from: NaiveDate,
    to: NaiveDate,
    days: Vec<WireCalendarDay>,
}

pub fn cache_path(state_dir: &Path) -> PathBuf {
    state_dir.join(CALENDAR_CACHE_FILE)
}

/// `GET /v2/calendar?start=…&end=…`, parsed. An answer that is not a list of days, or a day
/// that does not parse, is an [`AlpacaError::Decode`] naming the day and the field: Alpaca's
/// answer is what is wrong, not the network or the keys.
pub fn fetch_calendar(
    client: &AlpacaClient,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(Vec<WireCalendarDay>, Vec<AlpacaCalendarDay>), AlpacaError> {
    let request = Request::get(Api::Trading, CALENDAR_PATH)
        .query("start", from.format("%Y-%m-%d").to_string())
        .query("end", to.format("%Y-%m-%d").to_string());
    let answer: serde_json::Value = client.json(&request)?;
    // The message quotes the answer's fields: text from the network like an error body.
    let malformed = |message: String| AlpacaError::Decode {
        path: CALENDAR_PATH.to_string(),
        message: client.network_text(&message, super::client::MAX_BODY_EXCERPT),
    };
    let wire = read_wire_days(answer).map_err(malformed)?;
    let days = parse_days(&wire).map_err(malformed)?;
    Ok((wire, days))
}

/// A `GET /v2/calendar` answer body as [`fetch_calendar`] reads it (unredacted), for tests.
pub fn parse_calendar_answer(body: &str) -> Result<Vec<AlpacaCalendarDay>, String> {
    let answer = serde_json::from_str(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    parse_days(&read_wire_days(answer)?)
}

/// The answer as days, one element at a time, so that an error names the day (its position and
/// date) and the field instead of a position in the text.
fn read_wire_days(answer: serde_json::Value) -> Result<Vec<WireCalendarDay>, String> {
    let serde_json::Value::Array(elements) = answer else {
        return Err(format!(
            "the answer is {}, not a list of calendar days",
            match answer {
                serde_json::Value::Object(_) => "an object",
                serde_json::Value::Null => "null",
                _ => "a single value",
            }
        ));
    };
    elements
        .iter()
        .enumerate()
        .map(|(index, element)| {
            WireCalendarDay::deserialize(element).map_err(|e| {
                let date = element
                    .get("date")
                    .and_then(serde_json::Value::as_str)
                    .map_or_else(String::new, |d| {
                        format!(" ({})", super::client::printable_excerpt(d, 20))
                    });
                format!("calendar day {index}{date}: {e}")
            })
        })
        .collect()
}

/// Write the cache atomically (temp file, fsync, rename, fsync of the directory).
pub fn write_cache(
    state_dir: &Path,
    fetched_at: DateTime<Utc>,
    from: NaiveDate,
    to: NaiveDate,
    days: &[WireCalendarDay],
) -> Result<(), String> {
    let path = cache_path(state_dir);
    let cache = CalendarCache {
        fetched_at,
        from,
        to,
        days: days.to_vec(),
    };
    let json = serde_json::to_vec_pretty(&cache)
        .map_err(|e| format!("cannot encode the calendar cache: {e}"))?;
    std::fs::create_dir_all(state_dir)
        .and_then(|()| write_bytes_atomic(&path, &json))
        .map_err(|e| {
            format!(
                "cannot write Alpaca's calendar cache {}: {e}",
                path.display()
            )
        })
}

/// A cached copy: when it was fetched, the window it covers, its days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedCalendar {
    pub fetched_at: DateTime<Utc>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<AlpacaCalendarDay>,
}

/// Read the cache; an error says what is wrong with it.
pub fn read_cache(state_dir: &Path) -> Result<CachedCalendar, String> {
    let path = cache_path(state_dir);
    // About 10 KB for the −5 … +60 day window; only a regular file is read.
    let limit = SizeLimit {
        bytes: 1 << 20,
        what: "the Alpaca calendar cache",
        hint: "it is rewritten by the next successful fetch",
    };
    let bytes = match read_regular(&path, limit) {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => return Err(format!("no cached copy at {}", path.display())),
        Err(e) => return Err(e.to_string()),
    };
    let cache: CalendarCache = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{} is not a calendar cache ({e}); it is rewritten by the next successful fetch",
            path.display()
        )
    })?;
    let days = parse_days(&cache.days).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(CachedCalendar {
        fetched_at: cache.fetched_at,
        from: cache.from,
        to: cache.to,
        days,
    })
}

/// Fetch Alpaca's calendar for `from..=to`, cache it in `state_dir`, and compare it with avwap's.
/// When the fetch fails, the cached copy is compared instead (over its overlap with the window);
/// only when both fail is this an error.
pub fn sync_calendar(
    client: &AlpacaClient,
    state_dir: &Path,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<CalendarCheck, CalendarSyncError> {
    if from > to {
        return Err(CalendarSyncError::InvalidWindow { from, to });
    }
    match fetch_calendar(client, from, to) {
        Ok((wire, days)) => {
            let cache_error = write_cache(state_dir, Utc::now(), from, to, &wire).err();
            let days: Vec<AlpacaCalendarDay> = days
                .into_iter()
                .filter(|d| d.date >= from && d.date <= to)
                .collect();
            Ok(CalendarCheck {
                compared_from: from,
                compared_to: to,
                source: CalendarSource::Fetched,
                mismatches: compare(&days, from, to),
                alpaca_days: days,
                cache_error,
            })
        }
        Err(fetch) => {
            let cached = match read_cache(state_dir) {
                Ok(cached) => cached,
                Err(cache) => return Err(CalendarSyncError::Unavailable { fetch, cache }),
            };
            let (start, end) = (from.max(cached.from), to.min(cached.to));
            if start > end {
                return Err(CalendarSyncError::Unavailable {
                    fetch,
                    cache: format!(
                        "the cached copy covers {}..{}, not the window {from}..{to}",
                        cached.from, cached.to
                    ),
                });
            }
            let days: Vec<AlpacaCalendarDay> = cached
                .days
                .into_iter()
                .filter(|d| d.date >= start && d.date <= end)
                .collect();
            Ok(CalendarCheck {
                compared_from: start,
                compared_to: end,
                source: CalendarSource::Cache {
                    fetched_at: cached.fetched_at,
                    fetch_error: fetch.to_string(),
                },
                mismatches: compare(&days, start, end),
                alpaca_days: days,
                cache_error: None,
            })
        }
    }
}

/// The call for execution start: compare Alpaca's calendar with avwap's for `today` − 5 days to
/// `today` + 60 days (`today` is the New York date), log every mismatch with `tracing::warn!`,
/// and return the check (`check.mismatches.len()` is the count). Never fails: anything that
/// prevents the check is logged as a warning and gives `None`.
pub fn check_calendar_and_log(
    client: &AlpacaClient,
    state_dir: &Path,
    today: NaiveDate,
) -> Option<CalendarCheck> {
    let window = today
        .checked_sub_days(Days::new(CHECK_DAYS_BEFORE))
        .zip(today.checked_add_days(Days::new(CHECK_DAYS_AFTER)));
    let Some((from, to)) = window else {
        tracing::warn!(%today, "cannot form the calendar check window around {today}; Alpaca's calendar was not compared");
        return None;
    };
    let check = match sync_calendar(client, state_dir, from, to) {
        Ok(check) => check,
        Err(error) => {
            tracing::warn!("{error}");
            return None;
        }
    };
    if let CalendarSource::Cache {
        fetched_at,
        fetch_error,
    } = &check.source
    {
        tracing::warn!(
            "Alpaca's calendar could not be fetched ({fetch_error}); compared avwap's calendar \
             with the cached copy fetched {} instead ({}..{})",
            fetched_at.format("%Y-%m-%dT%H:%M:%SZ"),
            check.compared_from,
            check.compared_to
        );
    }
    if let Some(error) = &check.cache_error {
        tracing::warn!("{error}; the next start fetches it again");
    }
    for mismatch in &check.mismatches {
        tracing::warn!(date = %mismatch.date(), "{mismatch}");
    }
    if check.mismatches.is_empty() {
        tracing::info!(
            from = %check.compared_from,
            to = %check.compared_to,
            sessions = check.alpaca_days.len(),
            "Alpaca's calendar agrees with avwap's NYSE calendar"
        );
    }
    Some(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// Alpaca's days as avwap's calendar has them (the "both agree" baseline).
    fn ours(from: &str, to: &str) -> Vec<AlpacaCalendarDay> {
        calendar::sessions_between(d(from), d(to))
            .unwrap()
            .into_iter()
            .map(|s| AlpacaCalendarDay {
                date: s.date,
                open: ny_datetime(s.open).time(),
                close: ny_datetime(s.close).time(),
                settlement_date: None,
            })
            .collect()
    }

    #[test]
    fn parses_the_spec_shape() {
        let json = r#"[{"date":"2026-11-27","open":"09:30","close":"13:00",
            "session_open":"0400","session_close":"2000","settlement_date":"2026-11-30"},
            {"date":"2026-11-25","open":"09:30","close":"16:00"}]"#;
        let wire: Vec<WireCalendarDay> = serde_json::from_str(json).unwrap();
        let days = parse_days(&wire).unwrap();
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].date, d("2026-11-25"), "sorted by date");
        assert_eq!(days[1].close, t(13, 0));
        assert_eq!(days[1].settlement_date, Some(d("2026-11-30")));
        // 13:00 New York in November (EST) is 18:00Z.
        assert_eq!(days[1].close_instant(), utc("2026-11-27T18:00:00Z"));
    }

    #[test]
    fn bad_days_are_errors_naming_the_day_and_field() {
        let bad = |date: &str, open: &str, close: &str| WireCalendarDay {
            date: date.into(),
            open: open.into(),
            close: close.into(),
            session_open: None,
            session_close: None,
            settlement_date: None,
        };
        let err = bad("2026-11-27", "9.30", "16:00").parse().unwrap_err();
        assert!(err.contains("2026-11-27") && err.contains("open"), "{err}");
        let err = bad("27/11/2026", "09:30", "16:00").parse().unwrap_err();
        assert!(err.contains("YYYY-MM-DD"), "{err}");
        let err = bad("2026-11-27", "16:00", "09:30").parse().unwrap_err();
        assert!(err.contains("not after"), "{err}");
        let err = bad("2026-11-27", "09:30", "25:00").parse().unwrap_err();
        assert!(err.contains("close"), "{err}");
        // A malformed settlement date is informational only.
        let mut day = bad("2026-11-27", "09:30", "13:00");
        day.settlement_date = Some("soon".into());
        assert_eq!(day.parse().unwrap().settlement_date, None);
    }

    #[test]
    fn matching_calendars_have_no_mismatch() {
        // Thanksgiving, its early close, Christmas Eve's early close, Christmas, New Year.
        let days = ours("2026-11-20", "2027-01-10");
        assert!(compare(&days, d("2026-11-20"), d("2027-01-10")).is_empty());
    }

    #[test]
    fn an_extra_alpaca_session_is_reported() {
        let mut days = ours("2026-11-20", "2026-12-10");
        // Alpaca says open on Thanksgiving.
        days.push(AlpacaCalendarDay {
            date: d("2026-11-26"),
            open: t(9, 30),
            close: t(16, 0),
            settlement_date: None,
        });
        let m = compare(&days, d("2026-11-20"), d("2026-12-10"));
        assert_eq!(
            m,
            vec![CalendarMismatch::UnexpectedSession {
                date: d("2026-11-26"),
                alpaca_open: utc("2026-11-26T14:30:00Z"),
                alpaca_close: utc("2026-11-26T21:00:00Z"),
            }]
        );
        let text = m[0].to_string();
        assert!(
            text.contains("2026-11-26") && text.contains("09:30–16:00"),
            "{text}"
        );
        assert!(text.contains("avwap trades by its own calendar"), "{text}");
        assert!(text.contains("update avwap"), "{text}");
    }

    #[test]
    fn a_session_alpaca_does_not_list_is_reported() {
        // An ad-hoc closure (a day of mourning) that avwap does not know about.
        let mut days = ours("2026-12-01", "2026-12-31");
        days.retain(|day| day.date != d("2026-12-09"));
        let m = compare(&days, d("2026-12-01"), d("2026-12-31"));
        assert_eq!(
            m,
            vec![CalendarMismatch::MissingSession {
                date: d("2026-12-09"),
                avwap_open: utc("2026-12-09T14:30:00Z"),
                avwap_close: utc("2026-12-09T21:00:00Z"),
            }]
        );
        let text = m[0].to_string();
        assert!(text.contains("does not list"), "{text}");
        assert!(text.contains("nyse.com"), "{text}");
    }

    #[test]
    fn a_different_early_close_is_reported() {
        let mut days = ours("2026-11-23", "2026-11-30");
        // Alpaca has the day after Thanksgiving as a full day.
        for day in &mut days {
            if day.date == d("2026-11-27") {
                day.close = t(16, 0);
            }
        }
        let m = compare(&days, d("2026-11-23"), d("2026-11-30"));
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(matches!(
            m[0],
            CalendarMismatch::DifferentHours { date, avwap_close, alpaca_close, .. }
                if date == d("2026-11-27")
                    && avwap_close == utc("2026-11-27T18:00:00Z")
                    && alpaca_close == utc("2026-11-27T21:00:00Z")
        ));
        let text = m[0].to_string();
        assert!(text.contains("close differs"), "{text}");
        assert!(
            text.contains("Alpaca 09:30–16:00 New York, avwap 09:30–13:00 New York"),
            "{text}"
        );
    }

    #[test]
    fn dst_dates_compare_by_new_york_wall_clock() {
        // Spring forward 2026-03-08, fall back 2026-11-01: the sessions around them match.
        let spring = ours("2026-03-02", "2026-03-13");
        assert!(compare(&spring, d("2026-03-02"), d("2026-03-13")).is_empty());
        let fall = ours("2026-10-26", "2026-11-06");
        assert!(compare(&fall, d("2026-10-26"), d("2026-11-06")).is_empty());
        // 09:30 is 14:30Z before spring-forward and 13:30Z after it.
        let monday = spring.iter().find(|x| x.date == d("2026-03-09")).unwrap();
        assert_eq!(monday.open_instant(), utc("2026-03-09T13:30:00Z"));
        let friday = spring.iter().find(|x| x.date == d("2026-03-06")).unwrap();
        assert_eq!(friday.open_instant(), utc("2026-03-06T14:30:00Z"));
        // An hour off across the change is caught (a fixed −5 h offset would do this).
        let mut shifted = spring.clone();
        for day in shifted.iter_mut().filter(|x| x.date >= d("2026-03-09")) {
            day.open = t(10, 30);
            day.close = t(17, 0);
        }
        let m = compare(&shifted, d("2026-03-02"), d("2026-03-13"));
        assert_eq!(m.len(), 5, "{m:?}");
        assert!(
            m[0].to_string().contains("open and close differ"),
            "{}",
            m[0]
        );
    }

    #[test]
    fn days_outside_the_window_are_ignored() {
        let days = ours("2026-11-01", "2026-12-31");
        assert!(compare(&days, d("2026-12-01"), d("2026-12-10")).is_empty());
    }

    #[test]
    fn an_alpaca_list_ending_early_is_one_mismatch() {
        // Alpaca's documented horizon is 2029: from then on it lists nothing.
        let days = ours("2029-12-01", "2029-12-31");
        let m = compare(&days, d("2029-12-20"), d("2030-02-20"));
        assert_eq!(m.len(), 1, "{m:?}");
        match &m[0] {
            CalendarMismatch::AlpacaListEnds {
                last_listed,
                first_missing,
                sessions,
                ..
            } => {
                assert_eq!(*last_listed, Some(d("2029-12-31")));
                assert_eq!(*first_missing, d("2030-01-02"));
                assert!(*sessions > 30, "{sessions}");
            }
            other => panic!("{other:?}"),
        }
        // Nothing listed at all.
        let m = compare(&[], d("2026-12-01"), d("2026-12-31"));
        assert!(
            matches!(
                m[..],
                [CalendarMismatch::AlpacaListEnds {
                    last_listed: None,
                    ..
                }]
            ),
            "{m:?}"
        );
        assert!(m[0].to_string().contains("no session at all"), "{}", m[0]);
        // A short trailing gap stays per day (it may be a real closure).
        let mut days = ours("2026-12-01", "2026-12-31");
        days.retain(|x| x.date != d("2026-12-31"));
        let m = compare(&days, d("2026-12-01"), d("2026-12-31"));
        assert!(
            matches!(m[..], [CalendarMismatch::MissingSession { date, .. }] if date == d("2026-12-31")),
            "{m:?}"
        );
    }

    #[test]
    fn dates_outside_avwaps_calendar_are_one_mismatch_not_a_panic() {
        let mut days = ours("2035-12-15", "2035-12-31");
        days.push(AlpacaCalendarDay {
            date: d("2036-01-02"),
            open: t(9, 30),
            close: t(16, 0),
            settlement_date: None,
        });
        let m = compare(&days, d("2035-12-20"), d("2036-02-10"));
        assert_eq!(
            m,
            vec![CalendarMismatch::OutsideAvwapCalendar {
                first: d("2036-01-01"),
                last: d("2036-02-10"),
                alpaca_sessions: 1,
            }]
        );
        assert!(m[0].to_string().contains("2000–2035"), "{}", m[0]);
        // Before 2000 as well.
        let m = compare(&[], d("1999-12-30"), d("2000-01-02"));
        assert_eq!(
            m,
            vec![CalendarMismatch::OutsideAvwapCalendar {
                first: d("1999-12-30"),
                last: d("1999-12-31"),
                alpaca_sessions: 0,
            }]
        );
    }

    #[test]
    fn cache_round_trips_and_reports_problems() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_cache(dir.path()).unwrap_err();
        assert!(err.contains("no cached copy"), "{err}");
        let wire = vec![WireCalendarDay {
            date: "2026-11-27".into(),
            open: "09:30".into(),
            close: "13:00".into(),
            session_open: Some("0400".into()),
            session_close: Some("2000".into()),
            settlement_date: Some("2026-11-30".into()),
        }];
        let at = utc("2026-11-25T12:00:00Z");
        write_cache(dir.path(), at, d("2026-11-20"), d("2027-01-24"), &wire).unwrap();
        let cached = read_cache(dir.path()).unwrap();
        assert_eq!(cached.fetched_at, at);
        assert_eq!((cached.from, cached.to), (d("2026-11-20"), d("2027-01-24")));
        assert_eq!(cached.days, parse_days(&wire).unwrap());
        // Only the cache file is left (no temp file).
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(CALENDAR_CACHE_FILE)]);
        std::fs::write(cache_path(dir.path()), "<html>").unwrap();
        let err = read_cache(dir.path()).unwrap_err();
        assert!(err.contains("not a calendar cache"), "{err}");
    }
}
