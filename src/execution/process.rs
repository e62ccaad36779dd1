//! Process lifecycle of `avwap-execution`: the things that make it a well-behaved systemd
//! service rather than a script. This module owns only process-level concerns; it knows nothing
//! about orders or the database.
//!
//! - [`StateLock`]: one execution process per state directory (flock, released by the kernel on
//!   any exit, SIGKILL included).
//! - [`Notifier`]: sd_notify readiness, status, stopping and watchdog pings.
//! - [`ShutdownSignal`]: SIGTERM/SIGINT become a flag the poll loop checks between steps.
//! - [`KillSwitch`]: the `KILL_SWITCH` file or config flag that halts new entries.

mod kill_switch;
mod lock;
mod notify;
mod shutdown;

pub use kill_switch::{KillSwitch, KillSwitchSource, KillSwitchState, KILL_SWITCH_FILE_NAME};
pub use lock::{LockError, StateLock, LOCK_FILE_NAME};
pub use notify::Notifier;
pub use shutdown::{ShutdownError, ShutdownSignal, SHUTDOWN_POLL_SLICE};
