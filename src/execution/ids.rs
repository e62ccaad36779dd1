//! Deterministic client order ids: `avw-<YYYYMMDD>-<SYMBOL>-<leg>-<attempt>`. The same
//! (session, symbol, leg, attempt) always gives the same id, so a restart re-derives the id it
//! journaled before sending and the broker's uniqueness rule turns a duplicate send into a
//! rejection instead of a second order. Ids of other strategies never start with our prefix,
//! which is how reconciliation tells our orders from the rest of the account.

use chrono::NaiveDate;
use std::fmt;
use std::str::FromStr;

/// Every client order id we send starts with this (the broker module owns it: its parsers
/// tell our orders from the rest of an account by it).
pub const PREFIX: &str = crate::broker::CLIENT_ID_PREFIX;

/// What an order is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Leg {
    Entry,
    /// The protective stop; `n` counts new stop orders for the position (a replace is a new
    /// order at the broker and needs a fresh id).
    Stop(u32),
    Trim,
    Exit,
    Flatten,
}

impl fmt::Display for Leg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leg::Entry => f.write_str("en"),
            Leg::Stop(n) => write!(f, "st{n}"),
            Leg::Trim => f.write_str("tr"),
            Leg::Exit => f.write_str("ex"),
            Leg::Flatten => f.write_str("fl"),
        }
    }
}

impl FromStr for Leg {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "en" => Ok(Leg::Entry),
            "tr" => Ok(Leg::Trim),
            "ex" => Ok(Leg::Exit),
            "fl" => Ok(Leg::Flatten),
            _ => s
                .strip_prefix("st")
                .and_then(|n| n.parse().ok())
                .map(Leg::Stop)
                .ok_or(()),
        }
    }
}

/// The parts of one of our client order ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientOrderId {
    pub session: NaiveDate,
    pub symbol: String,
    pub leg: Leg,
    pub attempt: u32,
}

impl ClientOrderId {
    pub fn new(session: NaiveDate, symbol: &str, leg: Leg, attempt: u32) -> Self {
        Self {
            session,
            symbol: symbol.to_string(),
            leg,
            attempt,
        }
    }

    /// The same order's next attempt (used only after the previous attempt is known not to
    /// exist at the broker).
    pub fn next_attempt(&self) -> Self {
        Self {
            attempt: self.attempt + 1,
            ..self.clone()
        }
    }

    /// Parse one of our ids; `None` for ids of anyone else.
    pub fn parse(id: &str) -> Option<Self> {
        let rest = id.strip_prefix(PREFIX)?.strip_prefix('-')?;
        let (date, rest) = rest.split_once('-')?;
        let session = NaiveDate::parse_from_str(date, "%Y%m%d").ok()?;
        // Symbols may contain '-' and '.', so leg and attempt are taken from the right.
        let (rest, attempt) = rest.rsplit_once('-')?;
        let (symbol, leg) = rest.rsplit_once('-')?;
        if symbol.is_empty() || date.len() != 8 {
            return None;
        }
        Some(Self {
            session,
            symbol: symbol.to_string(),
            leg: leg.parse().ok()?,
            attempt: attempt.parse().ok()?,
        })
    }
}

impl fmt::Display for ClientOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}-{}-{}-{}-{}",
            self.session.format("%Y%m%d"),
            self.symbol,
            self.leg,
            self.attempt
        )
    }
}

/// Whether an id was made by avwap (any version of this scheme).
pub fn is_ours(client_order_id: &str) -> bool {
    ClientOrderId::parse(client_order_id).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn format_is_stable() {
        let id = ClientOrderId::new(d("2026-11-30"), "BRK.B", Leg::Stop(2), 1);
        assert_eq!(id.to_string(), "avw-20261130-BRK.B-st2-1");
        assert_eq!(
            ClientOrderId::new(d("2026-11-30"), "BF-B", Leg::Entry, 3).to_string(),
            "avw-20261130-BF-B-en-3"
        );
        assert_eq!(id.next_attempt().to_string(), "avw-20261130-BRK.B-st2-2");
    }

    #[test]
    fn other_ids_are_not_ours() {
        for other in [
            "",
            "6f1c2a9e-7d7b-4f5e-9a43-2b1c0f7e8d11",
            "avw",
            "avw-2026-11-30-AAPL-en-1",
            "avw-20261130--en-1",
            "avw-20261130-AAPL-buy-1",
            "avw-20261130-AAPL-en-x",
            "xavw-20261130-AAPL-en-1",
        ] {
            assert!(!is_ours(other), "{other}");
        }
    }

    proptest! {
        #[test]
        fn parse_inverts_display(
            days in 0i64..10_000,
            symbol in "[A-Z]{1,5}([.-][A-Z])?",
            leg in prop_oneof![Just(Leg::Entry), Just(Leg::Trim), Just(Leg::Exit), Just(Leg::Flatten), (0u32..50).prop_map(Leg::Stop)],
            attempt in 1u32..1000,
        ) {
            let id = ClientOrderId::new(d("2000-01-01") + chrono::Duration::days(days), &symbol, leg, attempt);
            let text = id.to_string();
            prop_assert!(text.len() <= 128);
            prop_assert_eq!(ClientOrderId::parse(&text), Some(id));
        }
    }
}
