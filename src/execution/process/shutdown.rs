//! Graceful stop: SIGTERM (systemd's stop) and SIGINT (Ctrl-C) only set a flag. The poll loop
//! checks it between steps, so an order step that has started (journal → send → acknowledge)
//! always finishes and is persisted before the process exits 0.
//!
//! A second signal deliberately does not kill the process either: dying between "sent" and
//! "acknowledgement recorded" is exactly the window the journal exists to survive, and there is
//! no reason to enter it on purpose. The hard stop remains SIGKILL (systemd sends it after
//! `TimeoutStopSec=`), which the journal and reconciliation handle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest [`ShutdownSignal::sleep_until_or_shutdown`] sleeps before looking at the flag
/// again, i.e. the worst-case delay in noticing a stop while idle.
pub const SHUTDOWN_POLL_SLICE: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    #[error("cannot install the {signal} handler: {source}")]
    Install {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// A stop request, shared by clones.
#[derive(Debug, Clone, Default)]
pub struct ShutdownSignal {
    flag: Arc<AtomicBool>,
}

impl ShutdownSignal {
    /// Route SIGTERM and SIGINT to a new flag. The handlers stay installed for the life of the
    /// process (unregistering would leave the signals ignored, not restore the default), so
    /// call this once, at the binary edge.
    pub fn install() -> Result<ShutdownSignal, ShutdownError> {
        let signal = ShutdownSignal::default();
        for (number, name) in [
            (signal_hook::consts::SIGTERM, "SIGTERM"),
            (signal_hook::consts::SIGINT, "SIGINT"),
        ] {
            signal_hook::flag::register(number, Arc::clone(&signal.flag)).map_err(|source| {
                ShutdownError::Install {
                    signal: name,
                    source,
                }
            })?;
        }
        Ok(signal)
    }

    /// A flag no signal sets; only [`ShutdownSignal::request`] does (tests, `--once`).
    pub fn manual() -> ShutdownSignal {
        ShutdownSignal::default()
    }

    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Ask for a stop from inside the process.
    pub fn request(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Sleep for `duration`, waking early if a stop is requested. Returns `true` when a stop
    /// has been requested (the caller should wind down), `false` when the full time passed.
    pub fn sleep_until_or_shutdown(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        loop {
            if self.requested() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::sleep((deadline - now).min(SHUTDOWN_POLL_SLICE));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_for(signal: &ShutdownSignal) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if signal.requested() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    // The only test in this crate that installs the real handlers and raises signals: every
    // installed flag in the process would see them.
    #[test]
    fn sigterm_and_sigint_set_the_flag_and_a_second_signal_does_not_kill() {
        let first = ShutdownSignal::install().unwrap();
        assert!(!first.requested());
        signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
        assert!(wait_for(&first), "SIGTERM did not set the flag");
        assert!(first.sleep_until_or_shutdown(Duration::from_secs(30)));

        // Still alive after a second SIGTERM: we are here to assert it.
        signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
        assert!(first.requested());

        let second = ShutdownSignal::install().unwrap();
        assert!(!second.requested());
        signal_hook::low_level::raise(signal_hook::consts::SIGINT).unwrap();
        assert!(wait_for(&second), "SIGINT did not set the flag");
    }

    #[test]
    fn sleep_runs_its_full_time_without_a_request() {
        let signal = ShutdownSignal::manual();
        let start = Instant::now();
        assert!(!signal.sleep_until_or_shutdown(Duration::from_millis(250)));
        assert!(start.elapsed() >= Duration::from_millis(250));
        assert!(!signal.sleep_until_or_shutdown(Duration::ZERO));
    }

    #[test]
    fn sleep_wakes_promptly_on_a_request_from_another_thread() {
        let signal = ShutdownSignal::manual();
        let remote = signal.clone();
        let start = Instant::now();
        let requester = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            remote.request();
        });
        assert!(signal.sleep_until_or_shutdown(Duration::from_secs(60)));
        let elapsed = start.elapsed();
        requester.join().unwrap();
        assert!(
            elapsed < Duration::from_millis(50) + SHUTDOWN_POLL_SLICE * 5,
            "took {elapsed:?}"
        );
    }
}
