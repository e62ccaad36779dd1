//! The watchlist gate: decides whether execution may start, from the watchlist's existence,
//! its modification date and its content, all judged in New York time. The messages and the
//! codes 0/1/2 are the predecessor's, so operators' habits and alerts keep working. [`run`] is
//! the `avwap-gate` application (systemd's `ExecStartPre`).
//!
//! The gate never blocks and never reads much: something other than a regular file at the path
//! (a FIFO, a device, a directory) is refused without being opened for reading, and the content
//! is read only up to the watchlist's size limit (`watchlist::MAX_BYTES`).

use crate::calendar::ny_date;
use crate::exit::ExitCode;
use crate::fsutil::{kind_of, ReadError};
use crate::watchlist::{parse_watchlist, read_watchlist_bytes, WatchlistError};
use chrono::{DateTime, NaiveDate, Utc};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The gate's answer, with everything needed for its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateVerdict {
    Fresh {
        path: PathBuf,
        today: NaiveDate,
        candidates: usize,
    },
    Missing {
        path: PathBuf,
    },
    Stale {
        path: PathBuf,
        file_date: NaiveDate,
        today: NaiveDate,
    },
    Invalid {
        path: PathBuf,
        reason: String,
    },
    WrongSession {
        path: PathBuf,
        scan_date: NaiveDate,
        today: NaiveDate,
    },
    Unreadable {
        path: PathBuf,
        reason: String,
    },
    /// A FIFO, device, socket or directory is at the path (never opened for reading).
    NotRegular {
        path: PathBuf,
        kind: &'static str,
    },
}

impl GateVerdict {
    pub fn is_fresh(&self) -> bool {
        matches!(self, GateVerdict::Fresh { .. })
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            GateVerdict::Fresh { .. } => ExitCode::Ok,
            GateVerdict::Missing { .. } => ExitCode::WatchlistMissing,
            GateVerdict::Stale { .. } => ExitCode::WatchlistStale,
            GateVerdict::Invalid { .. } => ExitCode::WatchlistInvalid,
            GateVerdict::WrongSession { .. } => ExitCode::WatchlistWrongSession,
            GateVerdict::Unreadable { .. } | GateVerdict::NotRegular { .. } => {
                ExitCode::WatchlistUnreadable
            }
        }
    }

    /// The one-line message: stdout when fresh, stderr otherwise.
    pub fn message(&self) -> String {
        match self {
            GateVerdict::Fresh { path, today, .. } => format!(
                "OK: Watchlist is fresh for today (NY): {} ({today})",
                path.display()
            ),
            GateVerdict::Missing { path } => format!("Watchlist missing: {}", path.display()),
            GateVerdict::Stale {
                path,
                file_date,
                today,
            } => format!(
                "Watchlist is not from today (NY). file_date={file_date} today={today} path={}",
                path.display()
            ),
            GateVerdict::Invalid { path, reason } => format!(
                "Watchlist is not a valid watchlist (NY gate). {reason} path={} \
                 (re-run the scan: systemctl start scan.service)",
                path.display()
            ),
            GateVerdict::WrongSession {
                path,
                scan_date,
                today,
            } => format!(
                "Watchlist is for another session (NY). scan_date={scan_date} today={today} path={} \
                 (re-run the scan for today: systemctl start scan.service)",
                path.display()
            ),
            GateVerdict::Unreadable { path, reason } => format!(
                "Watchlist cannot be read: {reason}. path={} \
                 (check that the service user may read it and its directory)",
                path.display()
            ),
            GateVerdict::NotRegular { path, kind } => format!(
                "Watchlist cannot be read: it is {kind}, not a regular file. path={} \
                 (remove it and re-run the scan: systemctl start scan.service)",
                path.display()
            ),
        }
    }
}

/// What the gate learned from the filesystem, kept apart so the decision is a pure function.
#[derive(Debug)]
pub enum Observed {
    Missing,
    /// `stat` failed for a reason other than "not found".
    Unreadable(io::Error),
    /// `stat` says the path is not a regular file: this describes what it is.
    NotRegular(&'static str),
    File {
        modified: SystemTime,
        /// Read (within the watchlist's limits) only when the file is from today.
        content: Result<Vec<u8>, WatchlistError>,
    },
}

/// Look at the file. The content is read only when needed, so a stale file is judged by its
/// date alone (as the predecessor did) and a huge stray file is not read. `stat` opens
/// nothing, so a FIFO at the path is recognised without blocking; the read itself refuses
/// anything but a regular file again (the path may change in between).
pub fn observe(path: &Path, now: DateTime<Utc>) -> Observed {
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Observed::Missing,
        Err(e) => return Observed::Unreadable(e),
    };
    if !metadata.is_file() {
        return Observed::NotRegular(kind_of(&metadata.file_type()));
    }
    let modified = match metadata.modified() {
        Ok(m) => m,
        Err(e) => return Observed::Unreadable(e),
    };
    let content = if ny_date(DateTime::<Utc>::from(modified)) == ny_date(now) {
        read_watchlist_bytes(path)
    } else {
        Ok(Vec::new())
    };
    Observed::File { modified, content }
}

/// The gate's decision for a file observed at `now`.
pub fn decide(path: &Path, now: DateTime<Utc>, observed: Observed) -> GateVerdict {
    let path_buf = path.to_path_buf();
    let today = ny_date(now);
    let (modified, content) = match observed {
        Observed::Missing => return GateVerdict::Missing { path: path_buf },
        Observed::Unreadable(e) => {
            return GateVerdict::Unreadable {
                path: path_buf,
                reason: e.to_string(),
            }
        }
        Observed::NotRegular(kind) => {
            return GateVerdict::NotRegular {
                path: path_buf,
                kind,
            }
        }
        Observed::File { modified, content } => (modified, content),
    };
    let file_date = ny_date(DateTime::<Utc>::from(modified));
    if file_date != today {
        return GateVerdict::Stale {
            path: path_buf,
            file_date,
            today,
        };
    }
    let bytes = match content {
        Ok(b) => b,
        Err(WatchlistError::Read(e)) => return unreadable(path_buf, e),
        Err(e) => {
            return GateVerdict::Unreadable {
                path: path_buf,
                reason: e.to_string(),
            }
        }
    };
    let rows = match parse_watchlist(&bytes, path) {
        Ok(rows) => rows,
        Err(WatchlistError::Invalid {
            line,
            column,
            message,
            ..
        }) => {
            return GateVerdict::Invalid {
                path: path_buf,
                reason: format!("line {line}, column {column}: {message}."),
            }
        }
        Err(other) => {
            return GateVerdict::Invalid {
                path: path_buf,
                reason: other.to_string(),
            }
        }
    };
    // Every row carries the same ScanDate (the reader checks), so the first one decides.
    if let Some(first) = rows.first() {
        if first.scan_date != today {
            return GateVerdict::WrongSession {
                path: path_buf,
                scan_date: first.scan_date,
                today,
            };
        }
    }
    GateVerdict::Fresh {
        path: path_buf,
        today,
        candidates: rows.len(),
    }
}

/// The verdict for a watchlist that `stat` showed as a regular file but that could not be read.
fn unreadable(path: PathBuf, error: ReadError) -> GateVerdict {
    match error {
        // Deleted or replaced between the look and the read.
        e if e.is_not_found() => GateVerdict::Missing { path },
        ReadError::NotRegular { kind, .. } => GateVerdict::NotRegular { path, kind },
        // Too large to be a watchlist: its content is wrong, not its permissions.
        e @ ReadError::TooLarge { .. } => GateVerdict::Invalid {
            path,
            reason: format!("{e}."),
        },
        ReadError::Open { error, .. } | ReadError::Read { error, .. } => GateVerdict::Unreadable {
            path,
            reason: error.to_string(),
        },
    }
}

/// Observe and decide in one step.
pub fn check_watchlist(path: &Path, now: DateTime<Utc>) -> GateVerdict {
    decide(path, now, observe(path, now))
}

/// `avwap-gate`: judge the watchlist at `path` at `now`, print the verdict where the help
/// says (stdout when fresh, stderr otherwise) and return the exit code systemd acts on.
pub fn run(path: &Path, now: DateTime<Utc>) -> ExitCode {
    let verdict = check_watchlist(path, now);
    tracing::debug!(
        path = %path.display(),
        exit_code = verdict.exit_code().code(),
        fresh = verdict.is_fresh(),
        "watchlist gate verdict"
    );
    if verdict.is_fresh() {
        println!("{}", verdict.message());
    } else {
        eprintln!("{}", verdict.message());
    }
    verdict.exit_code()
}

#[cfg(test)]
mod tests;
