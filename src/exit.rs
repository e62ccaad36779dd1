//! Process exit codes shared by all avwap binaries, so systemd units and operators can act on
//! them, and [`Failure`], the trait of every error that ends a process (its exit code travels
//! with it). Codes 1 and 2 keep the predecessor gate's meaning (missing / not from today).

/// Exit codes. The numeric values are part of the public interface (README, unit files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    Ok = 0,
    /// Gate: the watchlist file does not exist.
    WatchlistMissing = 1,
    /// Gate: the watchlist file was not written today (New York date of its mtime).
    WatchlistStale = 2,
    /// Gate: the watchlist's content is not a valid watchlist (malformed, truncated, garbage).
    WatchlistInvalid = 3,
    /// Gate: the watchlist is valid but its ScanDate is not today (New York).
    WatchlistWrongSession = 4,
    /// Gate: the watchlist exists but cannot be read (permissions, I/O error).
    WatchlistUnreadable = 5,
    /// Bad configuration file, bad option value or unknown key.
    ConfigError = 10,
    /// Another instance holds the state-directory lock.
    LockHeld = 11,
    /// The broker could not be reached or refused our credentials at startup.
    BrokerUnavailable = 12,
    /// A required input (data, state directory) is missing or unusable.
    InputError = 13,
    /// This command exists but its implementation has not landed yet.
    NotImplemented = 69,
    /// An unexpected internal error; the message says what happened.
    Internal = 70,
}

impl ExitCode {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

/// An error that ends a process: its `Display` is the operator's message (what is wrong and
/// what to do), [`Failure::exit_code`] the documented code systemd and scripts act on.
pub trait Failure: std::error::Error {
    fn exit_code(&self) -> ExitCode;
}

/// `error` followed by each of its causes, joined by ": " (the causes of a library error are
/// often what the operator can act on: the I/O error under "cannot read X").
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read the watchlist")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn with_causes_appends_every_cause() {
        let error = Outer(std::io::Error::other("permission denied"));
        assert_eq!(
            with_causes(&error),
            "cannot read the watchlist: permission denied"
        );
        assert_eq!(with_causes(&error.0), "permission denied");
    }
}
