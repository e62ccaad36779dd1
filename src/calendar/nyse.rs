//! The NYSE session calendar, 2000–2035: which New York dates are trading sessions, and
//! when each session opens and closes.
//!
//! This module owns the exchange's rules: the regular holidays (computed from their
//! rules, Easter included), the early closes at 13:00 New York, the one-off closures
//! (national days of mourning, 9/11, Hurricane Sandy) and the questions the rest of
//! avwap asks of them (is this a session, the next/previous session, the session an
//! instant falls in, the last session that has closed).
//!
//! Nothing outside 2000-01-01..2035-12-31 is answered: such dates give
//! [`CalendarError::OutOfRange`] rather than an extrapolated guess, because a wrong
//! session would silently shift every anchored VWAP. The rules are checked against
//! every session of `exchange_calendars`' XNYS calendar by `tests/cli/calendar_golden.rs`.

use std::sync::OnceLock;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc, Weekday};

use super::ny::{ny_date, ny_instant};

pub const FIRST_YEAR: i32 = 2000;
pub const LAST_YEAR: i32 = 2035;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("date {date} is outside the NYSE calendar's range {FIRST_YEAR}-01-01..{LAST_YEAR}-12-31; avwap does not guess sessions outside it (upgrade avwap for later years)")]
    OutOfRange { date: NaiveDate },
}

/// One trading session: its New York date and its open and close instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub date: NaiveDate,
    pub open: DateTime<Utc>,
    pub close: DateTime<Utc>,
    /// Closes at 13:00 New York instead of 16:00.
    pub early_close: bool,
}

// Evaluated only in `const` items, so an invalid literal is a compile error, never a
// runtime panic.
const fn const_date(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => date,
        None => panic!("invalid constant date"),
    }
}

const fn const_time(hour: u32, minute: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(hour, minute, 0) {
        Some(time) => time,
        None => panic!("invalid constant time"),
    }
}

const FIRST_DAY: NaiveDate = const_date(FIRST_YEAR, 1, 1);
const LAST_DAY: NaiveDate = const_date(LAST_YEAR, 12, 31);

const OPEN: NaiveTime = const_time(9, 30);
const REGULAR_CLOSE: NaiveTime = const_time(16, 0);
// 13:00 has been NYSE's early close since 1993 (14:00 before), so one time covers the range.
const EARLY_CLOSE: NaiveTime = const_time(13, 0);

/// Unscheduled full-day closures in range (NYSE closings history; the same list as
/// exchange_calendars' XNYS `adhoc_holidays`).
const SPECIAL_CLOSURES: [NaiveDate; 10] = [
    // Attack on the World Trade Center: closed the rest of that week.
    const_date(2001, 9, 11),
    const_date(2001, 9, 12),
    const_date(2001, 9, 13),
    const_date(2001, 9, 14),
    // National day of mourning, President Reagan.
    const_date(2004, 6, 11),
    // National day of mourning, President Ford.
    const_date(2007, 1, 2),
    // Hurricane Sandy.
    const_date(2012, 10, 29),
    const_date(2012, 10, 30),
    // National day of mourning, President George H. W. Bush.
    const_date(2018, 12, 5),
    // National day of mourning, President Carter.
    const_date(2025, 1, 9),
];

/// One-off 13:00 closes that no standing rule produces. NYSE shortened the Friday after
/// a Thursday Christmas in 2003 (but not in 2008 or 2014, which are regular days).
const SPECIAL_EARLY_CLOSES: [NaiveDate; 1] = [const_date(2003, 12, 26)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayKind {
    Closed,
    Regular,
    Early,
}

/// Every day of the range classified once: 13,149 bytes buys O(1) lookups for a scanner
/// that asks the same questions thousands of times per run.
fn table() -> &'static [DayKind] {
    static TABLE: OnceLock<Vec<DayKind>> = OnceLock::new();
    TABLE.get_or_init(|| {
        FIRST_DAY
            .iter_days()
            .take_while(|date| *date <= LAST_DAY)
            .map(classify)
            .collect()
    })
}

fn day_kind(date: NaiveDate) -> Result<DayKind, CalendarError> {
    if date < FIRST_DAY || date > LAST_DAY {
        return Err(CalendarError::OutOfRange { date });
    }
    let offset = date.num_days_from_ce() - FIRST_DAY.num_days_from_ce();
    usize::try_from(offset)
        .ok()
        .and_then(|i| table().get(i).copied())
        .ok_or(CalendarError::OutOfRange { date })
}

fn classify(date: NaiveDate) -> DayKind {
    if matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
        || is_holiday(date)
        || SPECIAL_CLOSURES.contains(&date)
    {
        DayKind::Closed
    } else if is_early_close(date) || SPECIAL_EARLY_CLOSES.contains(&date) {
        DayKind::Early
    } else {
        DayKind::Regular
    }
}

/// A fixed-date holiday moved off the weekend the way NYSE does it: Saturday to the
/// Friday before, Sunday to the Monday after.
fn is_observed(holiday_day: u32, day: u32, weekday: Weekday) -> bool {
    (day == holiday_day && !matches!(weekday, Weekday::Sat | Weekday::Sun))
        || (day + 1 == holiday_day && weekday == Weekday::Fri)
        || (day == holiday_day + 1 && weekday == Weekday::Mon)
}

fn is_holiday(date: NaiveDate) -> bool {
    let (year, day, weekday) = (date.year(), date.day(), date.weekday());
    // Which occurrence of its weekday this day is within the month (1 = first).
    let nth = (day - 1) / 7 + 1;
    let by_rule = match date.month() {
        // New Year's Day: Sunday moves to Monday, but a Saturday Jan 1 is not observed
        // on Friday Dec 31: NYSE Rule 7.2 keeps the exchange open on a Friday that ends
        // a yearly accounting period, so only the Sunday half of the weekend rule applies.
        // Martin Luther King Jr. Day: third Monday (NYSE has closed for it since 1998).
        1 => {
            (day == 1 && !matches!(weekday, Weekday::Sat | Weekday::Sun))
                || (day == 2 && weekday == Weekday::Mon)
                || (weekday == Weekday::Mon && nth == 3)
        }
        // Washington's Birthday: third Monday.
        2 => weekday == Weekday::Mon && nth == 3,
        // Memorial Day: last Monday.
        5 => weekday == Weekday::Mon && day + 7 > 31,
        // Juneteenth: a federal holiday from 2021, first closed by NYSE in 2022.
        6 => year >= 2022 && is_observed(19, day, weekday),
        7 => is_observed(4, day, weekday),
        // Labor Day: first Monday.
        9 => weekday == Weekday::Mon && nth == 1,
        // Thanksgiving: fourth Thursday.
        11 => weekday == Weekday::Thu && nth == 4,
        12 => is_observed(25, day, weekday),
        _ => false,
    };
    by_rule || is_good_friday(date)
}

/// Good Friday, two days before Gregorian Easter (anonymous Gregorian computus:
/// Meeus/Jones/Butcher). NYSE closes for it although it is not a federal holiday.
fn is_good_friday(date: NaiveDate) -> bool {
    let y = date.year();
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    // Easter as a day counted from March 1 (= 1); April 1 is 32.
    let easter = h + l - 7 * m + 114 - 3 * 31 + 1;
    let good_friday = easter - 2;
    let day = i32::try_from(date.day()).unwrap_or(0);
    match date.month() {
        3 => day == good_friday,
        4 => day + 31 == good_friday,
        _ => false,
    }
}

/// The standing 13:00 closes. Only consulted for days already known to be sessions, so
/// a July 3 or December 24 that is itself a holiday never gets here.
fn is_early_close(date: NaiveDate) -> bool {
    let (year, day, weekday) = (date.year(), date.day(), date.weekday());
    match (date.month(), day) {
        // Day before Independence Day. Until 2012, when July 4 fell on a Thursday NYSE
        // shortened Friday July 5 instead of Wednesday July 3 (2002 in this range);
        // from 2013 on it shortens the Wednesday. When July 4 is a Monday the Friday
        // before is a full day, so only July 3 itself qualifies.
        (7, 3) => weekday != Weekday::Wed || year >= 2013,
        (7, 5) => weekday == Weekday::Fri && year < 2013,
        // Day after Thanksgiving: the Friday after the fourth Thursday.
        (11, 23..=29) => weekday == Weekday::Fri,
        (12, 24) => true,
        _ => false,
    }
}

fn build_session(date: NaiveDate, kind: DayKind) -> Option<Session> {
    let close = match kind {
        DayKind::Closed => return None,
        DayKind::Regular => REGULAR_CLOSE,
        DayKind::Early => EARLY_CLOSE,
    };
    Some(Session {
        date,
        open: ny_instant(date, OPEN),
        close: ny_instant(date, close),
        early_close: kind == DayKind::Early,
    })
}

/// Whether the New York `date` is an NYSE trading session.
pub fn is_session(date: NaiveDate) -> Result<bool, CalendarError> {
    Ok(day_kind(date)? != DayKind::Closed)
}

/// The session on the New York `date`, or `None` if the exchange is closed that day.
pub fn session(date: NaiveDate) -> Result<Option<Session>, CalendarError> {
    Ok(build_session(date, day_kind(date)?))
}

/// The first session strictly after `date`.
///
/// Errors if `date` is out of range, or if the search walks past 2035-12-31 (the error
/// then names the first date the calendar cannot answer for).
pub fn next_session(date: NaiveDate) -> Result<NaiveDate, CalendarError> {
    day_kind(date)?;
    let mut day = date;
    loop {
        day = day
            .succ_opt()
            .ok_or(CalendarError::OutOfRange { date: day })?;
        if day_kind(day)? != DayKind::Closed {
            return Ok(day);
        }
    }
}

/// The last session strictly before `date`.
///
/// Errors if `date` is out of range, or if the search walks before 2000-01-01 (the error
/// then names the first date the calendar cannot answer for).
pub fn previous_session(date: NaiveDate) -> Result<NaiveDate, CalendarError> {
    day_kind(date)?;
    let mut day = date;
    loop {
        day = day
            .pred_opt()
            .ok_or(CalendarError::OutOfRange { date: day })?;
        if day_kind(day)? != DayKind::Closed {
            return Ok(day);
        }
    }
}

/// `date` if it is a session, otherwise the next session after it.
pub fn session_on_or_after(date: NaiveDate) -> Result<NaiveDate, CalendarError> {
    if is_session(date)? {
        Ok(date)
    } else {
        next_session(date)
    }
}

/// `date` if it is a session, otherwise the last session before it.
pub fn session_on_or_before(date: NaiveDate) -> Result<NaiveDate, CalendarError> {
    if is_session(date)? {
        Ok(date)
    } else {
        previous_session(date)
    }
}

/// Every session from `start` to `end`, both inclusive, in date order; empty if
/// `start > end`. Both bounds must be in range.
pub fn sessions_between(start: NaiveDate, end: NaiveDate) -> Result<Vec<Session>, CalendarError> {
    day_kind(start)?;
    day_kind(end)?;
    start
        .iter_days()
        .take_while(|date| *date <= end)
        .filter_map(|date| match day_kind(date) {
            Ok(kind) => build_session(date, kind).map(Ok),
            Err(e) => Some(Err(e)),
        })
        .collect()
}

/// The session date an instant belongs to by calendar: `Some(d)` when the instant's
/// New York date `d` is a session day, at any hour of that day (before the open and
/// after the close included); `None` on weekends, holidays and closures.
///
/// This is a date question, not a "is the market open now" question; for that use
/// [`current_or_next_session`] and compare against `open`/`close`.
pub fn session_for_instant(instant: DateTime<Utc>) -> Result<Option<NaiveDate>, CalendarError> {
    let date = ny_date(instant);
    Ok(is_session(date)?.then_some(date))
}

/// The session containing `instant` (a session contains `[open, close)`), or, when the
/// instant falls between sessions, the next session to open.
pub fn current_or_next_session(instant: DateTime<Utc>) -> Result<Session, CalendarError> {
    let date = ny_date(instant);
    if let Some(today) = session(date)? {
        if instant < today.close {
            return Ok(today);
        }
    }
    let next = next_session(date)?;
    session(next)?.ok_or(CalendarError::OutOfRange { date: next })
}

/// The most recent session whose close is at or before `instant`: the last session
/// whose daily bar is final. While a session is open (or before it opens) this is the
/// previous session, so callers never see a partial bar.
pub fn last_closed_session(instant: DateTime<Utc>) -> Result<NaiveDate, CalendarError> {
    let date = ny_date(instant);
    match session(date)? {
        Some(today) if today.close <= instant => Ok(date),
        _ => previous_session(date),
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

    fn closed(date: NaiveDate) {
        assert_eq!(is_session(date), Ok(false), "{date} should be closed");
        assert_eq!(session(date), Ok(None));
    }

    fn regular(date: NaiveDate) {
        let s = session(date).unwrap().expect("should be a session");
        assert!(!s.early_close, "{date} should be a full day");
        assert_eq!(ny_date(s.close), date);
    }

    #[test]
    fn christmas_2021_observed_on_friday_2021_12_24() {
        closed(d(2021, 12, 24));
    }

    #[test]
    fn saturday_new_year_2022_not_observed_and_2022_01_03_open() {
        regular(d(2021, 12, 31));
        regular(d(2022, 1, 3));
    }

    #[test]
    fn juneteenth_2022_sunday_observed_monday_2022_06_20() {
        closed(d(2022, 6, 20));
    }

    #[test]
    fn carter_day_of_mourning_2025_01_09_closed() {
        closed(d(2025, 1, 9));
    }

    #[test]
    fn bush_day_of_mourning_2018_12_05_closed() {
        closed(d(2018, 12, 5));
    }

    #[test]
    fn day_after_thanksgiving_2026_11_27_closes_at_1300_new_york() {
        let s = session(d(2026, 11, 27)).unwrap().unwrap();
        assert!(s.early_close);
        assert_eq!(s.open, utc("2026-11-27T14:30:00Z"));
        assert_eq!(s.close, utc("2026-11-27T18:00:00Z"));
    }

    #[test]
    fn juneteenth_2027_saturday_observed_friday_and_monday_open() {
        closed(d(2027, 6, 18));
        regular(d(2027, 6, 21));
    }

    #[test]
    fn juneteenth_2021_before_nyse_observed_it_is_open() {
        regular(d(2021, 6, 18));
    }

    #[test]
    fn monday_after_friday_christmas_2021_12_27_open() {
        regular(d(2021, 12, 27));
    }

    #[test]
    fn independence_day_early_closes() {
        // Saturday July 4: Friday July 3 is the holiday, not an early close.
        closed(d(2026, 7, 3));
        // Monday July 4: the Friday before is a full day.
        regular(d(2022, 7, 1));
        assert!(session(d(2025, 7, 3)).unwrap().unwrap().early_close);
        // 2002: Thursday July 4, shortened Friday July 5 and not Wednesday July 3.
        regular(d(2002, 7, 3));
        assert!(session(d(2002, 7, 5)).unwrap().unwrap().early_close);
        assert!(session(d(2024, 7, 3)).unwrap().unwrap().early_close);
        regular(d(2024, 7, 5));
    }

    #[test]
    fn good_friday_by_computus() {
        closed(d(2026, 4, 3));
        closed(d(2000, 4, 21));
        closed(d(2035, 3, 23));
        regular(d(2026, 4, 6));
    }

    #[test]
    fn out_of_range_years_error() {
        for date in [d(1999, 12, 31), d(2036, 1, 1), d(2036, 1, 2)] {
            let err = CalendarError::OutOfRange { date };
            assert_eq!(is_session(date), Err(err.clone()));
            assert_eq!(session(date), Err(err.clone()));
            assert_eq!(next_session(date), Err(err.clone()));
            assert_eq!(previous_session(date), Err(err));
        }
        assert_eq!(
            next_session(d(2035, 12, 31)),
            Err(CalendarError::OutOfRange {
                date: d(2036, 1, 1)
            })
        );
        assert_eq!(
            previous_session(d(2000, 1, 3)),
            Err(CalendarError::OutOfRange {
                date: d(1999, 12, 31)
            })
        );
        assert_eq!(previous_session(d(2000, 1, 4)), Ok(d(2000, 1, 3)));
        assert!(session_for_instant(utc("2036-01-01T05:00:00Z")).is_err());
        assert!(current_or_next_session(utc("2035-12-31T21:00:00Z")).is_err());
        assert!(last_closed_session(utc("2000-01-03T20:59:00Z")).is_err());
    }

    #[test]
    fn next_and_previous_across_long_weekends() {
        // MLK weekend 2026.
        assert_eq!(next_session(d(2026, 1, 16)), Ok(d(2026, 1, 20)));
        assert_eq!(previous_session(d(2026, 1, 20)), Ok(d(2026, 1, 16)));
        assert_eq!(next_session(d(2026, 1, 17)), Ok(d(2026, 1, 20)));
        // Easter 2026: Good Friday April 3.
        assert_eq!(next_session(d(2026, 4, 2)), Ok(d(2026, 4, 6)));
        assert_eq!(previous_session(d(2026, 4, 6)), Ok(d(2026, 4, 2)));
        // 9/11: closed Tuesday to Friday.
        assert_eq!(next_session(d(2001, 9, 10)), Ok(d(2001, 9, 17)));
        assert_eq!(session_on_or_after(d(2026, 1, 19)), Ok(d(2026, 1, 20)));
        assert_eq!(session_on_or_before(d(2026, 1, 19)), Ok(d(2026, 1, 16)));
        assert_eq!(session_on_or_before(d(2026, 1, 16)), Ok(d(2026, 1, 16)));
    }

    #[test]
    fn session_for_instant_uses_the_new_york_date() {
        // Friday 2026-01-16 23:59 EST is already Saturday in UTC.
        assert_eq!(
            session_for_instant(utc("2026-01-17T04:59:00Z")),
            Ok(Some(d(2026, 1, 16)))
        );
        // Saturday 00:01 EST.
        assert_eq!(session_for_instant(utc("2026-01-17T05:01:00Z")), Ok(None));
        // Tuesday 00:01 EST, long before the open, is still that session's date.
        assert_eq!(
            session_for_instant(utc("2026-01-20T05:01:00Z")),
            Ok(Some(d(2026, 1, 20)))
        );
        // Summer: 23:59 EDT on Monday 2026-07-06.
        assert_eq!(
            session_for_instant(utc("2026-07-07T03:59:00Z")),
            Ok(Some(d(2026, 7, 6)))
        );
    }

    #[test]
    fn session_times_follow_daylight_saving() {
        let summer = session(d(2026, 7, 15)).unwrap().unwrap();
        assert_eq!(summer.open, utc("2026-07-15T13:30:00Z"));
        assert_eq!(summer.close, utc("2026-07-15T20:00:00Z"));
        let winter = session(d(2026, 1, 15)).unwrap().unwrap();
        assert_eq!(winter.open, utc("2026-01-15T14:30:00Z"));
        assert_eq!(winter.close, utc("2026-01-15T21:00:00Z"));
        // First session after spring-forward (Sunday 2026-03-08).
        let spring = session(d(2026, 3, 9)).unwrap().unwrap();
        assert_eq!(spring.open, utc("2026-03-09T13:30:00Z"));
        // First session after fall-back (Sunday 2026-11-01).
        let fall = session(d(2026, 11, 2)).unwrap().unwrap();
        assert_eq!(fall.open, utc("2026-11-02T14:30:00Z"));
    }

    #[test]
    fn current_or_next_and_last_closed_around_a_session() {
        let jan16 = session(d(2026, 1, 16)).unwrap().unwrap();
        let jan20 = session(d(2026, 1, 20)).unwrap().unwrap();
        // Before the open: that day's session is next; the last closed is the day before.
        let early = utc("2026-01-16T12:00:00Z");
        assert_eq!(current_or_next_session(early), Ok(jan16));
        assert_eq!(last_closed_session(early), Ok(d(2026, 1, 15)));
        // During the session.
        let mid = utc("2026-01-16T18:00:00Z");
        assert_eq!(current_or_next_session(mid), Ok(jan16));
        assert_eq!(last_closed_session(mid), Ok(d(2026, 1, 15)));
        // Exactly at the close: the session is over and its bar is final.
        assert_eq!(current_or_next_session(jan16.close), Ok(jan20));
        assert_eq!(last_closed_session(jan16.close), Ok(d(2026, 1, 16)));
        // Over the long weekend.
        let monday = utc("2026-01-19T15:00:00Z");
        assert_eq!(current_or_next_session(monday), Ok(jan20));
        assert_eq!(last_closed_session(monday), Ok(d(2026, 1, 16)));
    }

    #[test]
    fn sessions_between_is_inclusive() {
        let got: Vec<NaiveDate> = sessions_between(d(2026, 1, 15), d(2026, 1, 20))
            .unwrap()
            .into_iter()
            .map(|s| s.date)
            .collect();
        assert_eq!(got, vec![d(2026, 1, 15), d(2026, 1, 16), d(2026, 1, 20)]);
        assert_eq!(sessions_between(d(2026, 1, 20), d(2026, 1, 15)), Ok(vec![]));
        assert!(sessions_between(d(2035, 12, 1), d(2036, 1, 5)).is_err());
        assert_eq!(
            sessions_between(FIRST_DAY, LAST_DAY).map(|v| v.len()),
            Ok(9049)
        );
    }

    fn any_date() -> impl Strategy<Value = NaiveDate> {
        let span = LAST_DAY.num_days_from_ce() - FIRST_DAY.num_days_from_ce();
        (0..=span).prop_map(|offset| {
            NaiveDate::from_num_days_from_ce_opt(FIRST_DAY.num_days_from_ce() + offset).unwrap()
        })
    }

    proptest! {
        #[test]
        fn next_session_is_the_first_session_after(date in any_date()) {
            // Only 2035-12-31 has no next session in range.
            prop_assume!(date < d(2035, 12, 31));
            let next = next_session(date).unwrap();
            prop_assert!(next > date);
            prop_assert!(is_session(next).unwrap());
            for between in date.iter_days().skip(1).take_while(|x| *x < next) {
                prop_assert!(!is_session(between).unwrap());
            }
            // Before the first session in range (2000-01-01/02) there is nothing on or before.
            if date >= d(2000, 1, 3) {
                prop_assert_eq!(previous_session(next).unwrap(), session_on_or_before(date).unwrap());
            } else {
                prop_assert!(session_on_or_before(date).is_err());
            }
        }

        #[test]
        fn previous_session_is_the_last_session_before(date in any_date()) {
            prop_assume!(date > d(2000, 1, 3));
            let prev = previous_session(date).unwrap();
            prop_assert!(prev < date);
            prop_assert!(is_session(prev).unwrap());
            if is_session(date).unwrap() {
                prop_assert_eq!(next_session(prev).unwrap(), date);
            }
        }

        #[test]
        fn instants_relate_consistently_to_sessions(date in any_date(), minute in 0i64..1440) {
            prop_assume!(date > d(2000, 1, 3) && date < d(2035, 12, 31));
            let instant = ny_instant(date, NaiveTime::MIN) + chrono::Duration::minutes(minute);
            let current = current_or_next_session(instant).unwrap();
            prop_assert!(instant < current.close);
            let last = last_closed_session(instant).unwrap();
            let last_close = session(last).unwrap().unwrap().close;
            prop_assert!(last_close <= instant);
            // Nothing closes between the last closed session and the instant.
            prop_assert_eq!(next_session(last).unwrap(), current.date);
            prop_assert_eq!(
                session_for_instant(instant).unwrap(),
                is_session(ny_date(instant)).unwrap().then_some(ny_date(instant))
            );
        }
    }
}
