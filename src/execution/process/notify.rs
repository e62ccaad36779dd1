//! sd_notify for `Type=notify` units: `READY=1` once startup reconciliation is done, `STATUS=`
//! lines for `systemctl status`, `STOPPING=1`, and watchdog pings. Written against std's
//! `UnixDatagram` rather than a crate so the socket is injectable in tests (the environment is
//! process-global) and abstract-namespace sockets (`@name`) work.
//!
//! Notification is best effort by design: a failed send is a warning, never a reason to stop
//! trading or to crash-loop. Without `NOTIFY_SOCKET` (not under systemd) every call is a no-op.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const ENV_NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
const ENV_WATCHDOG_USEC: &str = "WATCHDOG_USEC";
const ENV_WATCHDOG_PID: &str = "WATCHDOG_PID";

/// Sends sd_notify messages. Cheap to clone; clones share one socket, so a watchdog thread
/// can hold its own.
#[derive(Debug, Clone)]
pub struct Notifier {
    target: Option<Arc<Target>>,
    watchdog_interval: Option<Duration>,
}

#[derive(Debug)]
struct Target {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// NOTIFY_SOCKET as given, for log messages.
    name: String,
}

impl Notifier {
    /// A notifier that never sends anything (not under systemd; tests).
    pub fn disabled() -> Notifier {
        Notifier {
            target: None,
            watchdog_interval: None,
        }
    }

    /// Build from the real environment. Call once at the binary edge.
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os(ENV_NOTIFY_SOCKET).map(PathBuf::from);
        let usec = match std::env::var(ENV_WATCHDOG_USEC) {
            Ok(value) => match value.trim().parse::<u64>() {
                Ok(usec) => Some(usec),
                Err(_) => {
                    tracing::warn!(
                        value,
                        "ignoring invalid {ENV_WATCHDOG_USEC}; no watchdog pings"
                    );
                    None
                }
            },
            Err(_) => None,
        };
        let (usec, pid) = match std::env::var(ENV_WATCHDOG_PID) {
            Ok(value) => match value.trim().parse::<u32>() {
                Ok(pid) => (usec, Some(pid)),
                // libsystemd treats an unparsable WATCHDOG_PID as "watchdog not for us".
                Err(_) => {
                    tracing::warn!(
                        value,
                        "ignoring invalid {ENV_WATCHDOG_PID}; no watchdog pings"
                    );
                    (None, None)
                }
            },
            Err(_) => (usec, None),
        };
        Notifier::from_env_values(socket, usec, pid)
    }

    /// Build from explicit values of `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`.
    /// A socket starting with `@` is in the abstract namespace.
    pub fn from_env_values(
        notify_socket: Option<PathBuf>,
        watchdog_usec: Option<u64>,
        watchdog_pid: Option<u32>,
    ) -> Notifier {
        let Some(socket_path) = notify_socket.filter(|p| !p.as_os_str().is_empty()) else {
            return Notifier::disabled();
        };
        let target = match Target::connect(&socket_path) {
            Ok(target) => target,
            Err(error) => {
                tracing::warn!(
                    socket = %socket_path.display(),
                    %error,
                    "cannot use {ENV_NOTIFY_SOCKET}; systemd will not hear readiness or watchdog pings"
                );
                return Notifier::disabled();
            }
        };
        // WATCHDOG_PID names the process the watchdog is meant for; a child that inherited
        // the environment must not ping on its parent's behalf.
        let for_us = watchdog_pid.is_none_or(|pid| pid == std::process::id());
        let watchdog_interval = watchdog_usec
            .filter(|&usec| usec > 0 && for_us)
            // Half the timeout, as sd_watchdog_enabled(3) recommends, so one late ping is not
            // fatal. Never zero, which would make the caller spin.
            .map(|usec| Duration::from_micros(usec / 2).max(Duration::from_millis(1)));
        Notifier {
            target: Some(Arc::new(target)),
            watchdog_interval,
        }
    }

    /// Whether messages go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// How often to call [`Notifier::watchdog_ping`]: half of `WATCHDOG_USEC`, or `None` when
    /// systemd runs no watchdog for this process.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog_interval
    }

    /// Startup (lock, database, reconciliation, protective stops) is complete.
    pub fn ready(&self) {
        self.send("READY=1");
    }

    /// One line for `systemctl status`.
    pub fn status(&self, text: &str) {
        // The protocol is newline-separated assignments; a newline would end the status early
        // and turn the rest into a bogus assignment.
        let line: String = text
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .collect();
        self.send(&format!("STATUS={line}"));
    }

    /// We received a stop request and are finishing the current step.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    pub fn watchdog_ping(&self) {
        self.send("WATCHDOG=1");
    }

    /// Ask systemd for more start (or stop) time, e.g. while a long reconciliation runs, so
    /// `TimeoutStartSec=` can stay tight for the common case.
    pub fn extend_timeout(&self, by: Duration) {
        self.send(&format!("EXTEND_TIMEOUT_USEC={}", by.as_micros()));
    }

    fn send(&self, message: &str) {
        let Some(target) = &self.target else { return };
        if let Err(error) = target.socket.send_to_addr(message.as_bytes(), &target.addr) {
            tracing::warn!(
                socket = %target.name,
                message,
                %error,
                "sd_notify failed; continuing"
            );
        }
    }
}

impl Target {
    fn connect(path: &std::path::Path) -> std::io::Result<Target> {
        let bytes = path.as_os_str().as_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => abstract_addr(name)?,
            None if bytes.starts_with(b"/") => SocketAddr::from_pathname(path)?,
            // e.g. systemd 253's `vsock:` addresses, which only matter inside VMs.
            None => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "only absolute paths and @abstract sockets are supported",
                ))
            }
        };
        let socket = UnixDatagram::unbound()?;
        // A wedged systemd must not wedge the trading loop: bound the time a send may block.
        socket.set_write_timeout(Some(Duration::from_secs(1)))?;
        Ok(Target {
            socket,
            addr,
            name: path.display().to_string(),
        })
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_addr(name: &[u8]) -> std::io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_addr(_name: &[u8]) -> std::io::Result<SocketAddr> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "abstract-namespace sockets exist only on Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver(dir: &std::path::Path) -> (UnixDatagram, PathBuf) {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (socket, path)
    }

    fn recv(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 1024];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn messages_reach_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let (socket, path) = receiver(dir.path());
        let notifier = Notifier::from_env_values(Some(path), None, None);
        assert!(notifier.is_enabled());

        notifier.ready();
        assert_eq!(recv(&socket), "READY=1");
        notifier.status("reconciling\n3 positions");
        assert_eq!(recv(&socket), "STATUS=reconciling 3 positions");
        notifier.watchdog_ping();
        assert_eq!(recv(&socket), "WATCHDOG=1");
        notifier.extend_timeout(Duration::from_secs(90));
        assert_eq!(recv(&socket), "EXTEND_TIMEOUT_USEC=90000000");
        // Clones share the socket.
        notifier.clone().stopping();
        assert_eq!(recv(&socket), "STOPPING=1");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn messages_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!(
            "avwap-test-notify-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let notifier =
            Notifier::from_env_values(Some(PathBuf::from(format!("@{name}"))), None, None);
        notifier.ready();
        assert_eq!(recv(&socket), "READY=1");
    }

    #[test]
    fn without_a_socket_everything_is_a_no_op() {
        for notifier in [
            Notifier::disabled(),
            Notifier::from_env_values(None, Some(10_000_000), None),
            Notifier::from_env_values(Some(PathBuf::new()), Some(10_000_000), None),
        ] {
            assert!(!notifier.is_enabled());
            // No socket means nobody to ping, whatever WATCHDOG_USEC says.
            assert_eq!(notifier.watchdog_interval(), None);
            notifier.ready();
            notifier.status("x");
            notifier.stopping();
            notifier.watchdog_ping();
        }
    }

    #[test]
    fn watchdog_interval_is_half_the_timeout_and_honours_watchdog_pid() {
        let dir = tempfile::tempdir().unwrap();
        let (_socket, path) = receiver(dir.path());
        let ours = std::process::id();
        let make = |usec, pid| Notifier::from_env_values(Some(path.clone()), usec, pid);

        assert_eq!(
            make(Some(20_000_000), None).watchdog_interval(),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            make(Some(20_000_000), Some(ours)).watchdog_interval(),
            Some(Duration::from_secs(10))
        );
        // Meant for another process (we inherited the environment).
        assert_eq!(
            make(Some(20_000_000), Some(ours.wrapping_add(1))).watchdog_interval(),
            None
        );
        assert_eq!(make(Some(0), None).watchdog_interval(), None);
        assert_eq!(make(None, Some(ours)).watchdog_interval(), None);
        assert_eq!(
            make(Some(1), None).watchdog_interval(),
            Some(Duration::from_millis(1))
        );
    }

    #[test]
    fn send_failures_are_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        // Nobody listens here: every send fails with ENOENT / ECONNREFUSED.
        let notifier =
            Notifier::from_env_values(Some(dir.path().join("nobody.sock")), Some(1_000_000), None);
        assert!(notifier.is_enabled());
        notifier.ready();
        notifier.watchdog_ping();
        notifier.stopping();
    }

    #[test]
    fn unsupported_addresses_disable_notification() {
        for value in ["relative.sock", "vsock:2:1234"] {
            let notifier = Notifier::from_env_values(Some(PathBuf::from(value)), None, None);
            assert!(!notifier.is_enabled(), "{value}");
            notifier.ready();
        }
    }
}
