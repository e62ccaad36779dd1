//! The clock trait. Logic takes a `&dyn Clock` (or a plain instant) so tests can fix time.

use chrono::{DateTime, Utc};
use std::sync::Mutex;

/// A source of the current instant.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real wall clock. Only binaries construct this.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that returns a set instant until told otherwise; for tests and simulations.
#[derive(Debug)]
pub struct FixedClock {
    instant: Mutex<DateTime<Utc>>,
}

impl FixedClock {
    pub fn new(instant: DateTime<Utc>) -> Self {
        Self {
            instant: Mutex::new(instant),
        }
    }

    pub fn set(&self, instant: DateTime<Utc>) {
        *self.instant.lock().unwrap_or_else(|e| e.into_inner()) = instant;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut guard = self.instant.lock().unwrap_or_else(|e| e.into_inner());
        *guard += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.instant.lock().unwrap_or_else(|e| e.into_inner())
    }
}
