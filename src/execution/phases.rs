//! Session phases of the execution loop, from the NYSE calendar (early closes respected), and
//! the poll cadence of each phase.

use crate::calendar::{self, Session};
use crate::execution::config::ExecutionConfig;
use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// A session day before the open.
    PreOpen,
    /// From the open until entries may start: exits and stops only.
    OpeningDelay,
    /// Entries allowed.
    EntryWindow,
    /// The last minutes before the close: no new entries, stops and exits continue.
    CloseProtection,
    /// After the close, or a day without a session.
    Closed,
}

impl Phase {
    pub fn market_open(self) -> bool {
        matches!(
            self,
            Phase::OpeningDelay | Phase::EntryWindow | Phase::CloseProtection
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::PreOpen => "pre_open",
            Phase::OpeningDelay => "opening_delay",
            Phase::EntryWindow => "entry_window",
            Phase::CloseProtection => "close_protection",
            Phase::Closed => "closed",
        }
    }
}

/// Today's session (New York date of `now`), if it is one.
pub fn todays_session(now: DateTime<Utc>) -> Option<Session> {
    calendar::session_for_instant(now)
        .ok()
        .flatten()
        .and_then(|d| calendar::session(d).ok().flatten())
}

/// When entries start and stop in `session`. The configuration's ranges are checked at load,
/// but a value that still does not fit the time arithmetic (a config built in code) must not
/// panic the service: it leaves no entry window (entries start at the close, stop at the open).
fn entry_window(session: &Session, config: &ExecutionConfig) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = Duration::try_minutes(config.entry_start_minutes_after_open)
        .and_then(|d| session.open.checked_add_signed(d))
        .unwrap_or(session.close);
    let end = Duration::try_minutes(config.entry_end_minutes_before_close)
        .and_then(|d| session.close.checked_sub_signed(d))
        .unwrap_or(session.open);
    (start, end)
}

/// The phase at `now`.
pub fn phase(now: DateTime<Utc>, config: &ExecutionConfig) -> Phase {
    let Some(session) = todays_session(now) else {
        return Phase::Closed;
    };
    let (entry_start, entry_end) = entry_window(&session, config);
    if now < session.open {
        Phase::PreOpen
    } else if now < entry_start {
        Phase::OpeningDelay
    } else if now < entry_end {
        Phase::EntryWindow
    } else if now < session.close {
        Phase::CloseProtection
    } else {
        Phase::Closed
    }
}

/// Seconds to wait before the next cycle: the phase's cadence, shortened so the loop wakes
/// at the next phase boundary (the open, the start of entries, the close).
pub fn poll_interval(now: DateTime<Utc>, config: &ExecutionConfig) -> std::time::Duration {
    let p = phase(now, config);
    let base = if p.market_open() {
        config.poll_seconds_open
    } else {
        config.poll_seconds_closed
    };
    // Capped at a day: a longer cadence (only possible for a config built in code) would not
    // fit the time arithmetic, and the loop wakes at every boundary anyway.
    let mut wait = Duration::try_seconds(i64::try_from(base).unwrap_or(i64::MAX))
        .unwrap_or(Duration::MAX)
        .min(Duration::days(1));
    if let Some(session) = todays_session(now) {
        let (entry_start, entry_end) = entry_window(&session, config);
        let boundaries = [session.open, entry_start, entry_end, session.close];
        for b in boundaries {
            if b > now && b - now < wait {
                wait = b - now;
            }
        }
    }
    wait.to_std()
        .unwrap_or(std::time::Duration::from_secs(1))
        .max(std::time::Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ny(s: &str) -> DateTime<Utc> {
        let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        calendar::ny_instant(t.date(), t.time())
    }

    #[test]
    fn phases_of_a_regular_day() {
        let c = ExecutionConfig::default();
        assert_eq!(phase(ny("2026-11-30 09:29"), &c), Phase::PreOpen);
        assert_eq!(phase(ny("2026-11-30 09:30"), &c), Phase::OpeningDelay);
        assert_eq!(phase(ny("2026-11-30 09:49"), &c), Phase::OpeningDelay);
        assert_eq!(phase(ny("2026-11-30 09:50"), &c), Phase::EntryWindow);
        assert_eq!(phase(ny("2026-11-30 15:44"), &c), Phase::EntryWindow);
        assert_eq!(phase(ny("2026-11-30 15:45"), &c), Phase::CloseProtection);
        assert_eq!(phase(ny("2026-11-30 16:00"), &c), Phase::Closed);
    }

    #[test]
    fn early_close_moves_the_window() {
        let c = ExecutionConfig::default();
        assert_eq!(phase(ny("2026-11-27 12:44"), &c), Phase::EntryWindow);
        assert_eq!(phase(ny("2026-11-27 12:45"), &c), Phase::CloseProtection);
        assert_eq!(phase(ny("2026-11-27 13:00"), &c), Phase::Closed);
    }

    #[test]
    fn holidays_and_weekends_are_closed() {
        let c = ExecutionConfig::default();
        assert_eq!(phase(ny("2026-11-26 11:00"), &c), Phase::Closed); // Thanksgiving
        assert_eq!(phase(ny("2026-11-28 11:00"), &c), Phase::Closed); // Saturday
    }

    #[test]
    fn extreme_settings_leave_no_entry_window_and_never_panic() {
        let mut c = ExecutionConfig::default();
        for (start, end) in [
            (i64::MAX, 15),
            (i64::MIN, 15),
            (20, i64::MAX),
            (20, i64::MIN),
            (i64::MAX, i64::MIN),
        ] {
            c.entry_start_minutes_after_open = start;
            c.entry_end_minutes_before_close = end;
            for t in ["09:29", "09:30", "10:00", "15:59", "16:00", "20:00"] {
                let p = phase(ny(&format!("2026-11-30 {t}")), &c);
                if start == i64::MAX || start == i64::MIN || end == i64::MAX || end == i64::MIN {
                    assert_ne!(p, Phase::EntryWindow, "{start} {end} {t}");
                }
                let _ = poll_interval(ny(&format!("2026-11-30 {t}")), &c);
            }
        }
        c = ExecutionConfig {
            poll_seconds_open: u64::MAX,
            poll_seconds_closed: u64::MAX,
            ..ExecutionConfig::default()
        };
        assert_eq!(
            poll_interval(ny("2026-11-30 10:00"), &c).as_secs(),
            5 * 3600 + 45 * 60
        );
        assert_eq!(
            poll_interval(ny("2026-11-28 10:00"), &c).as_secs(),
            24 * 3600
        );
    }

    #[test]
    fn polling_wakes_at_boundaries() {
        let c = ExecutionConfig::default();
        assert_eq!(poll_interval(ny("2026-11-30 10:00"), &c).as_secs(), 60);
        assert_eq!(poll_interval(ny("2026-11-30 20:00"), &c).as_secs(), 300);
        // 09:28 → the open at 09:30 comes before the 300 s closed cadence.
        assert_eq!(poll_interval(ny("2026-11-30 09:28"), &c).as_secs(), 120);
        assert_eq!(poll_interval(ny("2026-11-30 15:59"), &c).as_secs(), 60);
    }
}
