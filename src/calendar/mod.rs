//! Time: the injected clock, New York time helpers and the NYSE session calendar.
//!
//! Every date that matters to avwap is a New York date. Nothing here reads the host's
//! local time zone, so answers do not depend on `TZ`.

mod clock;
mod ny;
mod nyse;

pub use clock::{Clock, FixedClock, SystemClock};
pub use ny::{ny_date, ny_datetime, ny_instant, NEW_YORK};
pub use nyse::{
    current_or_next_session, is_session, last_closed_session, next_session, previous_session,
    session, session_for_instant, session_on_or_after, session_on_or_before, sessions_between,
    CalendarError, Session, FIRST_YEAR, LAST_YEAR,
};
