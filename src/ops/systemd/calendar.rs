//! systemd calendar expressions (`OnCalendar=`, systemd.time(7)), evaluated here so
//! `avwap-check` can compare a timer's next elapse with the schedule its unit declares rather
//! than with a time written into the check.
//!
//! Understood: the normalized form `systemctl show -p TimersCalendar` prints
//! (`Mon..Fri *-*-* 08:30:00 America/New_York`) and the usual short forms (`Mon..Fri 08:30
//! America/New_York`, `*-*-* 9:00`, `daily`…): a weekday list (`Mon,Wed`, `Mon..Fri`), a date
//! `[year-]month-day` and a time `hour:minute[:second]` whose components are `*`, values,
//! ranges `a..b`, repetitions `a/step` or `a..b/step` and comma lists of these, and a time zone
//! (`UTC` or an IANA name). Not understood (an [`CalendarError`] naming why, so the caller can
//! say it did not check): `~` (days from the end of the month), fractional seconds, and a spec
//! without a time zone, which systemd evaluates in the host's zone (unknown here).
//!
//! Evaluation follows systemd's: the first matching instant strictly after the base; a local
//! time that does not exist (the spring-forward gap) is skipped; an ambiguous one (fall back)
//! is taken at its first occurrence.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use std::fmt;

/// Why an expression cannot be evaluated here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("OnCalendar={spec}: {reason}")]
pub struct CalendarError {
    pub spec: String,
    pub reason: String,
}

/// One `a`, `a..b`, `a/step` or `a..b/step` of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Item {
    start: u32,
    end: Option<u32>,
    step: Option<u32>,
}

impl Item {
    fn matches(&self, v: u32) -> bool {
        match (self.end, self.step) {
            (None, None) => v == self.start,
            (Some(end), None) => (self.start..=end).contains(&v),
            (end, Some(step)) => {
                v >= self.start
                    && end.is_none_or(|e| v <= e)
                    && (v - self.start).is_multiple_of(step)
            }
        }
    }
}

/// A component: `None` is `*`, else any of its items.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Component(Option<Vec<Item>>);

impl Component {
    const ANY: Component = Component(None);

    fn matches(&self, v: u32) -> bool {
        self.0
            .as_ref()
            .is_none_or(|items| items.iter().any(|i| i.matches(v)))
    }

    fn single(v: u32) -> Component {
        Component(Some(vec![Item {
            start: v,
            end: None,
            step: None,
        }]))
    }
}

/// Where the wall clock of the expression is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Zone {
    Utc,
    Named(Tz),
}

/// A parsed calendar expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarSpec {
    text: String,
    /// Monday = 0 … Sunday = 6; all true for "any weekday".
    weekdays: [bool; 7],
    year: Component,
    month: Component,
    day: Component,
    hour: Component,
    minute: Component,
    second: Component,
    zone: Zone,
}

impl fmt::Display for CalendarSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// How far ahead a match is looked for: a leap day can be 8 years away.
const SEARCH_DAYS: i64 = 366 * 9;

impl CalendarSpec {
    /// Parse `text` (see the module documentation for what is understood).
    pub fn parse(text: &str) -> Result<CalendarSpec, CalendarError> {
        let err = |reason: String| CalendarError {
            spec: text.trim().to_string(),
            reason,
        };
        let mut tokens: Vec<&str> = text.split_whitespace().collect();
        if tokens.is_empty() {
            return Err(err("empty".into()));
        }
        let keyword = match tokens[0].to_ascii_lowercase().as_str() {
            "minutely" => Some("*-*-* *:*:00"),
            "hourly" => Some("*-*-* *:00:00"),
            "daily" => Some("*-*-* 00:00:00"),
            "weekly" => Some("Mon *-*-* 00:00:00"),
            "monthly" => Some("*-*-01 00:00:00"),
            "quarterly" => Some("*-01,04,07,10-01 00:00:00"),
            "semiannually" => Some("*-01,07-01 00:00:00"),
            "yearly" | "annually" => Some("*-01-01 00:00:00"),
            _ => None,
        };
        let expanded: Vec<String>;
        if let Some(k) = keyword {
            expanded = k
                .split(' ')
                .chain(tokens[1..].iter().copied())
                .map(str::to_string)
                .collect();
            tokens = expanded.iter().map(String::as_str).collect();
        }
        let mut spec = CalendarSpec {
            text: text.trim().to_string(),
            weekdays: [true; 7],
            year: Component::ANY,
            month: Component::ANY,
            day: Component::ANY,
            hour: Component::single(0),
            minute: Component::single(0),
            second: Component::single(0),
            zone: Zone::Utc,
        };
        let mut rest = &tokens[..];
        if let Some(first) = rest.first().filter(|t| is_weekday_spec(t)) {
            spec.weekdays = parse_weekdays(first).map_err(err)?;
            rest = &rest[1..];
        }
        // A date and a time start with a digit or `*`; a time zone never does.
        let numeric = |t: &str| t.starts_with(|c: char| c.is_ascii_digit() || c == '*');
        let (mut date_seen, mut time_seen, mut zone) = (false, false, None);
        for token in rest {
            if zone.is_some() {
                return Err(err(format!("unexpected {token:?} after the time zone")));
            }
            if numeric(token) && token.contains(':') && !time_seen {
                let parts: Vec<&str> = token.split(':').collect();
                let (h, m, s) = match parts[..] {
                    [h, m] => (h, m, "00"),
                    [h, m, s] => (h, m, s),
                    _ => return Err(err(format!("cannot read the time {token:?}"))),
                };
                spec.hour = parse_component(h, 0, 23).map_err(err)?;
                spec.minute = parse_component(m, 0, 59).map_err(err)?;
                spec.second = parse_seconds(s).map_err(err)?;
                time_seen = true;
            } else if numeric(token) && token.contains('-') && !date_seen && !time_seen {
                if token.contains('~') {
                    return Err(err(
                        "`~` (days from the end of the month) is not evaluated here".into(),
                    ));
                }
                let parts: Vec<&str> = token.split('-').collect();
                let (y, mo, d) = match parts[..] {
                    [mo, d] => ("*", mo, d),
                    [y, mo, d] => (y, mo, d),
                    _ => return Err(err(format!("cannot read the date {token:?}"))),
                };
                spec.year = parse_component(y, 1970, 2199).map_err(err)?;
                spec.month = parse_component(mo, 1, 12).map_err(err)?;
                spec.day = parse_component(d, 1, 31).map_err(err)?;
                date_seen = true;
            } else if numeric(token) {
                return Err(err(format!("cannot read {token:?}")));
            } else {
                zone = Some(parse_zone(token).map_err(err)?);
            }
        }
        match zone {
            Some(z) => spec.zone = z,
            None => return Err(err(
                "no time zone: systemd evaluates it in the host's zone, which avwap-check does \
                     not read; add one (e.g. America/New_York)"
                    .into(),
            )),
        }
        Ok(spec)
    }

    /// The first instant strictly after `after` that the expression matches; `None` when there
    /// is none within nine years.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = match self.zone {
            Zone::Utc => after.date_naive(),
            Zone::Named(tz) => after.with_timezone(&tz).date_naive(),
        } - Duration::days(1);
        (0..SEARCH_DAYS)
            .map(|d| start + Duration::days(d))
            .filter(|date| self.date_matches(*date))
            .find_map(|date| self.first_on(date, after))
    }

    fn date_matches(&self, date: NaiveDate) -> bool {
        let weekday = date.weekday().num_days_from_monday() as usize;
        self.weekdays[weekday]
            && u32::try_from(date.year()).is_ok_and(|y| self.year.matches(y))
            && self.month.matches(date.month())
            && self.day.matches(date.day())
    }

    /// The first matching time of `date` after `after`.
    fn first_on(&self, date: NaiveDate, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        for h in (0..24).filter(|h| self.hour.matches(*h)) {
            for m in (0..60).filter(|m| self.minute.matches(*m)) {
                for s in (0..60).filter(|s| self.second.matches(*s)) {
                    let naive = date.and_hms_opt(h, m, s)?;
                    let at = match self.zone {
                        Zone::Utc => Some(Utc.from_utc_datetime(&naive)),
                        Zone::Named(tz) => match tz.from_local_datetime(&naive) {
                            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
                            LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
                            LocalResult::None => None,
                        },
                    };
                    if let Some(at) = at.filter(|t| *t > after) {
                        return Some(at);
                    }
                }
            }
        }
        None
    }
}

fn is_weekday_spec(token: &str) -> bool {
    token
        .split(',')
        .flat_map(|part| part.split("..").flat_map(|p| p.split('-')))
        .all(|name| weekday_index(name).is_some())
}

/// `Mon`, `mon`, `Monday`…: at least the three-letter abbreviation of a day's name.
fn weekday_index(name: &str) -> Option<usize> {
    const NAMES: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let lower = name.to_ascii_lowercase();
    (lower.len() >= 3)
        .then(|| {
            NAMES
                .iter()
                .position(|full| full.starts_with(lower.as_str()))
        })
        .flatten()
}

fn parse_weekdays(token: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    for part in token.split(',') {
        let (a, b) = part
            .split_once("..")
            .or_else(|| part.split_once('-'))
            .unwrap_or((part, part));
        let (Some(a), Some(b)) = (weekday_index(a), weekday_index(b)) else {
            return Err(format!("cannot read the weekdays {token:?}"));
        };
        // systemd refuses a range that wraps (Sat..Mon).
        if a > b {
            return Err(format!("the weekday range {part:?} runs backwards"));
        }
        for day in &mut days[a..=b] {
            *day = true;
        }
    }
    Ok(days)
}

fn parse_number(text: &str, min: u32, max: u32) -> Result<u32, String> {
    let v: u32 = text
        .parse()
        .map_err(|_| format!("cannot read {text:?} as a number"))?;
    if v < min || v > max {
        return Err(format!("{v} is outside {min}..{max}"));
    }
    Ok(v)
}

fn parse_component(text: &str, min: u32, max: u32) -> Result<Component, String> {
    if text == "*" {
        return Ok(Component::ANY);
    }
    let mut items = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(parse_number(s, 1, max.max(1))?)),
            None => (part, None),
        };
        let item = match range.split_once("..") {
            _ if range == "*" => Item {
                start: min,
                end: None,
                step: Some(step.unwrap_or(1)),
            },
            Some((a, b)) => Item {
                start: parse_number(a, min, max)?,
                end: Some(parse_number(b, min, max)?),
                step,
            },
            None => Item {
                start: parse_number(range, min, max)?,
                end: None,
                step,
            },
        };
        items.push(item);
    }
    Ok(Component(Some(items)))
}

/// Seconds: a component, or a whole number with a zero fraction (`00.000000`).
fn parse_seconds(text: &str) -> Result<Component, String> {
    match text.split_once('.') {
        Some((whole, fraction)) if fraction.chars().all(|c| c == '0') => {
            parse_component(whole, 0, 59)
        }
        Some(_) => Err("fractional seconds are not evaluated here".into()),
        None => parse_component(text, 0, 59),
    }
}

fn parse_zone(token: &str) -> Result<Zone, String> {
    if token.eq_ignore_ascii_case("UTC") || token.eq_ignore_ascii_case("GMT") {
        return Ok(Zone::Utc);
    }
    token
        .parse::<Tz>()
        .map(Zone::Named)
        .map_err(|_| format!("unknown time zone {token:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn next(spec: &str, after: &str) -> String {
        CalendarSpec::parse(spec)
            .unwrap()
            .next_after(utc(after))
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    }

    /// Recorded with `TZ=UTC systemd-analyze calendar --base-time=<after> <spec>` (systemd
    /// 252.38); the test below repeats them against the real `systemd-analyze` when there is one.
    const RECORDED: &[(&str, &str, &str)] = &[
        // The default schedules, across a weekend, both DST changes and New Year.
        (
            "Mon..Fri *-*-* 08:30:00 America/New_York",
            "2026-11-27T13:35:00Z",
            "2026-11-30T13:30:00Z",
        ),
        (
            "Mon..Fri *-*-* 08:40:00 America/New_York",
            "2026-11-27T13:35:00Z",
            "2026-11-27T13:40:00Z",
        ),
        (
            "Mon..Fri *-*-* 08:30:00 America/New_York",
            "2026-11-27T13:25:00Z",
            "2026-11-27T13:30:00Z",
        ),
        (
            "Mon..Fri *-*-* 08:30:00 America/New_York",
            "2026-03-06T14:00:00Z",
            "2026-03-09T12:30:00Z",
        ),
        (
            "Mon..Fri *-*-* 08:40:00 America/New_York",
            "2026-03-06T14:00:00Z",
            "2026-03-09T12:40:00Z",
        ),
        (
            "Mon..Fri *-*-* 08:30:00 America/New_York",
            "2026-10-30T13:00:00Z",
            "2026-11-02T13:30:00Z",
        ),
        (
            "Mon..Fri *-*-* 08:30:00 America/New_York",
            "2026-12-31T23:00:00Z",
            "2027-01-01T13:30:00Z",
        ),
        (
            "Mon..Fri *-*-* 08:30:00 America/New_York",
            "2026-11-29T02:52:56Z",
            "2026-11-30T13:30:00Z",
        ),
        // Exactly at the elapse: the next one.
        (
            "Mon..Fri *-*-* 08:30:00 America/New_York",
            "2026-11-30T13:30:00Z",
            "2026-12-01T13:30:00Z",
        ),
        // The acceptance case: a 09:00 scan.
        (
            "Mon..Fri 09:00 America/New_York",
            "2026-03-06T14:00:00Z",
            "2026-03-09T13:00:00Z",
        ),
        (
            "Mon..Fri 09:00 America/New_York",
            "2026-11-30T13:59:59Z",
            "2026-11-30T14:00:00Z",
        ),
        // Short forms, lists, ranges, repetitions, UTC.
        (
            "Mon,Wed *-*-1..7 8:*:0/20 UTC",
            "2026-03-06T14:00:00Z",
            "2026-04-01T08:00:00Z",
        ),
        (
            "Mon,Wed *-*-01..07 08:*:00/20 UTC",
            "2026-04-01T08:00:00Z",
            "2026-04-01T08:00:20Z",
        ),
        ("daily UTC", "2026-03-06T14:00:00Z", "2026-03-07T00:00:00Z"),
        (
            "Sat,Sun 12:00 Europe/Berlin",
            "2026-03-04T00:00:00Z",
            "2026-03-07T11:00:00Z",
        ),
        (
            "Thursday..Sat 23:59:59 Asia/Tokyo",
            "2026-03-04T00:00:00Z",
            "2026-03-05T14:59:59Z",
        ),
        (
            "*-02-29 06:00 UTC",
            "2026-03-01T00:00:00Z",
            "2028-02-29T06:00:00Z",
        ),
        (
            "*:0/15 America/New_York",
            "2026-11-30T13:31:00Z",
            "2026-11-30T13:45:00Z",
        ),
        // 01:30 happens twice in New York on 2026-11-01: the first only.
        (
            "*-*-* 01:30 America/New_York",
            "2026-11-01T04:00:00Z",
            "2026-11-01T05:30:00Z",
        ),
        (
            "*-*-* 01:30 America/New_York",
            "2026-11-01T05:31:00Z",
            "2026-11-02T06:30:00Z",
        ),
        // 02:30 does not exist in New York on 2026-03-08: skipped.
        (
            "*-*-* 02:30 America/New_York",
            "2026-03-07T08:00:00Z",
            "2026-03-09T06:30:00Z",
        ),
    ];

    #[test]
    fn next_elapse_matches_systemd_analyze() {
        for (spec, after, want) in RECORDED {
            assert_eq!(next(spec, after), *want, "{spec} after {after}");
        }
    }

    /// The same cases against this host's `systemd-analyze`, when it has one that knows
    /// `--base-time` (systemd ≥ 246); nothing to compare otherwise.
    #[test]
    fn next_elapse_matches_the_real_systemd_analyze() {
        for (spec, after, _) in RECORDED {
            let base = utc(after).format("%Y-%m-%d %H:%M:%S UTC").to_string();
            let Ok(out) = std::process::Command::new("systemd-analyze")
                .args(["calendar", "--base-time", &base, spec])
                .env("TZ", "UTC")
                .env("LC_ALL", "C")
                .output()
            else {
                eprintln!("no systemd-analyze: not compared");
                return;
            };
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() && stderr.contains("base-time") {
                eprintln!("this systemd-analyze has no --base-time: not compared ({stderr})");
                return;
            }
            assert!(out.status.success(), "{spec}: {stderr}");
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("Next elapse: "))
                .unwrap_or_else(|| panic!("{spec}: {text}"));
            let theirs = chrono::NaiveDateTime::parse_from_str(
                line.trim()
                    .trim_end_matches(" UTC")
                    .split_once(' ')
                    .map_or("", |x| x.1),
                "%Y-%m-%d %H:%M:%S",
            )
            .unwrap_or_else(|e| panic!("{spec}: {line}: {e}"));
            assert_eq!(
                next(spec, after),
                theirs.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "{spec} after {after}"
            );
        }
    }

    #[test]
    fn what_is_not_evaluated_says_why() {
        let e = CalendarSpec::parse("Mon..Fri 08:30").unwrap_err();
        assert!(e.reason.starts_with("no time zone"), "{e}");
        assert_eq!(e.spec, "Mon..Fri 08:30");
        let e = CalendarSpec::parse("*-*~1 08:30 UTC").unwrap_err();
        assert!(e.reason.contains('~'), "{e}");
        let e = CalendarSpec::parse("*-*-* 08:30:00.5 UTC").unwrap_err();
        assert!(e.reason.contains("fractional"), "{e}");
        assert!(CalendarSpec::parse("Mon..Fri 25:00 UTC").is_err());
        let e = CalendarSpec::parse("Sat..Mon 12:00 UTC").unwrap_err();
        assert!(e.reason.contains("backwards"), "{e}");
        assert!(CalendarSpec::parse("Mon..Fri 08:30 Mars/Olympus").is_err());
        assert!(CalendarSpec::parse("").is_err());
        assert!(CalendarSpec::parse("Mon..Fri 08:30 UTC extra").is_err());
        assert_eq!(
            CalendarSpec::parse(" Mon..Fri 09:00 America/New_York ")
                .unwrap()
                .to_string(),
            "Mon..Fri 09:00 America/New_York"
        );
    }
}
