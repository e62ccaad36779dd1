//! Operations: everything an operator of the host sees and relies on besides trading itself.
//! `logging`, `alerts`, `systemd` and `procs` are edges (I/O with the host); `check` is the
//! `avwap-check` application on top of them (see ARCHITECTURE.md).
//!
//! - [`logging`]: the `tracing` setup shared by the binaries: journald with structured `F_*`
//!   fields under systemd, text or JSON lines on stderr otherwise, `--log-format`, `RUST_LOG`.
//! - [`alerts`]: the optional Slack-compatible webhook: rate-limited per key, sent from a
//!   background thread through a bounded queue, so a slow or dead webhook never delays trading.
//! - [`check`]: `avwap-check`, the one-command health check (systemd units and timers, the
//!   watchlist gate, the execution process, tmux, state database, kill switch, heartbeat,
//!   unprotected positions) with its human and JSON reports and exit codes.
//! - [`systemd`]: the [`systemd::SystemdQuery`] trait over `systemctl show` and the parsing of
//!   its output (real `systemctl` or recorded fixtures).
//! - [`procs`]: finding processes by their executable in `/proc` (or a fake proc tree).
//! - [`notify`]: alerts outside the trading loop, sent and waited for: a unit that failed
//!   (`OnFailure=`), the end-of-day summary, a test alert (`avwap-execution alert …`).

pub mod alerts;
pub mod check;
pub mod logging;
pub mod notify;
pub mod procs;
pub mod systemd;
