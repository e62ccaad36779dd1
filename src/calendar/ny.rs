//! New York wall-clock helpers built on chrono-tz (never on the host's `TZ`).

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The exchange's time zone.
pub const NEW_YORK: Tz = chrono_tz::America::New_York;

/// The New York calendar date of an instant.
pub fn ny_date(instant: DateTime<Utc>) -> NaiveDate {
    instant.with_timezone(&NEW_YORK).date_naive()
}

/// The New York wall-clock date and time of an instant.
pub fn ny_datetime(instant: DateTime<Utc>) -> NaiveDateTime {
    instant.with_timezone(&NEW_YORK).naive_local()
}

/// The instant of a New York wall-clock time.
///
/// A time skipped by spring-forward maps to the instant one hour later (as a wall clock
/// would show it); a time repeated at fall-back maps to its first occurrence. NYSE
/// session times (09:30, 13:00, 16:00) are never affected.
pub fn ny_instant(date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let local = date.and_time(time);
    match NEW_YORK.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            let shifted = local + chrono::Duration::hours(1);
            match NEW_YORK.from_local_datetime(&shifted) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
                // Unreachable for America/New_York (gaps are one hour); fall back to
                // reading the wall time as standard time rather than panicking.
                LocalResult::None => Utc.from_utc_datetime(&(local + chrono::Duration::hours(5))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn ny_date_around_midnight_in_winter_and_summer() {
        // 04:59 UTC in January is 23:59 EST the day before.
        assert_eq!(
            ny_date(utc("2026-01-15T04:59:00Z")),
            NaiveDate::from_ymd_opt(2026, 1, 14).unwrap()
        );
        assert_eq!(
            ny_date(utc("2026-01-15T05:00:00Z")),
            NaiveDate::from_ymd_opt(2026, 1, 15).unwrap()
        );
        // 03:59 UTC in July is 23:59 EDT the day before.
        assert_eq!(
            ny_date(utc("2026-07-15T03:59:00Z")),
            NaiveDate::from_ymd_opt(2026, 7, 14).unwrap()
        );
    }

    #[test]
    fn ny_instant_handles_dst_gaps_and_overlaps() {
        let spring = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap();
        let fall = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        // 02:30 does not exist on spring-forward day: read as 03:30 EDT.
        assert_eq!(ny_instant(spring, t(2, 30)), utc("2026-03-08T07:30:00Z"));
        // 01:30 happens twice on fall-back day: the first (EDT) is chosen.
        assert_eq!(ny_instant(fall, t(1, 30)), utc("2026-11-01T05:30:00Z"));
        assert_eq!(ny_instant(fall, t(9, 30)), utc("2026-11-01T14:30:00Z"));
    }
}
