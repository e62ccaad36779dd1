//! The state-directory lock: at most one `avwap-execution` per state directory, because two
//! would both submit orders for the same intents. An advisory `flock` on
//! `<state_dir>/execution.lock` is held for the life of the process; the kernel releases it on
//! any exit, including SIGKILL and power loss, so there is never a stale lock to clean up.

use crate::exit::ExitCode;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the state directory.
pub const LOCK_FILE_NAME: &str = "execution.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the state directory lock {path} is held: another avwap-execution is running ({}); \
         stop it with `systemctl stop execution.service`, or use a different --state-dir",
        holder_text(*.holder_pid)
    )]
    Held {
        path: PathBuf,
        /// The PID the holder wrote into the file; `None` when it is unreadable or not yet
        /// written (the holder may have locked it a moment ago).
        holder_pid: Option<u32>,
    },
    #[error(
        "cannot open or lock {path}: {source} (check that the state directory exists and is \
         writable by the service user)"
    )]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn holder_text(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_string(),
    }
}

impl LockError {
    /// The documented exit code for this failure.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            LockError::Held { .. } => ExitCode::LockHeld,
            LockError::Io { .. } => ExitCode::InputError,
        }
    }
}

/// The held lock. Keep it alive for the whole process; dropping it releases the lock.
///
/// The file is never deleted: a process that opened the old inode could then hold a lock
/// nobody else sees, and two instances would run.
#[derive(Debug)]
pub struct StateLock {
    // Held only for its open file description: the flock lives as long as this handle.
    // std opens files with O_CLOEXEC, so a child process never inherits (and never prolongs)
    // the lock.
    file: File,
    path: PathBuf,
}

impl StateLock {
    /// Take the lock without waiting. Contention is an error naming the holder's PID.
    pub fn acquire(state_dir: &Path) -> Result<StateLock, LockError> {
        let path = state_dir.join(LOCK_FILE_NAME);
        let io_error = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        // No truncation at open: the file holds the current holder's PID, which we must not
        // wipe before we know we own the lock.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    holder_pid: read_holder_pid(&path),
                    path,
                });
            }
            Err(TryLockError::Error(source)) => return Err(io_error(source)),
        }
        // The PID is only for the operator's error message; failing to write it must not
        // cost us the lock we already hold.
        if let Err(error) = write_pid(&file) {
            tracing::warn!(
                path = %path.display(),
                %error,
                "holding the state directory lock but cannot record our pid in it"
            );
        }
        Ok(StateLock { file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Clear our PID while still holding the lock, so a later contention message never
        // names a process that has exited cleanly. (After SIGKILL the stale PID stays, but the
        // next holder overwrites it.)
        let _ = self.file.set_len(0);
    }
}

fn write_pid(mut file: &File) -> io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())
}

/// The holder's PID. The holder writes it just after taking the lock, so a contender that
/// lost a simultaneous start may look before it is there (or while a stale PID of a killed
/// holder is still in the file): wait briefly for the PID of a live process.
fn read_holder_pid(path: &Path) -> Option<u32> {
    let read = || -> Option<u32> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    let alive = |pid: u32| Path::new("/proc").join(pid.to_string()).exists();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        match read() {
            Some(pid) if alive(pid) => return Some(pid),
            other if std::time::Instant::now() >= deadline => return other,
            _ => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    const CHILD_ENV: &str = "AVWAP_TEST_LOCK_HOLDER_DIR";

    /// Acquire, retrying for a while on contention. Needed right after a release in tests
    /// only: another test thread that is spawning a process has, between its fork and exec, a
    /// copy of every descriptor (O_CLOEXEC closes it only at exec), and with it our lock.
    fn acquire_soon(state_dir: &Path) -> StateLock {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match StateLock::acquire(state_dir) {
                Ok(lock) => return lock,
                Err(err) if Instant::now() > deadline => panic!("lock never released: {err}"),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    #[test]
    fn second_lock_in_the_same_process_fails_and_drop_releases() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        assert_eq!(first.path(), dir.path().join(LOCK_FILE_NAME));

        let err = StateLock::acquire(dir.path()).unwrap_err();
        match &err {
            LockError::Held { path, holder_pid } => {
                assert_eq!(path, &dir.path().join(LOCK_FILE_NAME));
                assert_eq!(*holder_pid, Some(std::process::id()));
            }
            other => panic!("expected Held, got {other:?}"),
        }
        assert_eq!(err.exit_code(), ExitCode::LockHeld);
        let message = err.to_string();
        assert!(message.contains(&dir.path().join(LOCK_FILE_NAME).display().to_string()));
        assert!(message.contains(&format!("pid {}", std::process::id())));
        assert!(message.contains("systemctl stop execution.service"));
        assert!(message.contains("--state-dir"));

        drop(first);
        // The file is kept (deleting it would break the flock protocol) but our PID is gone.
        let lock_path = dir.path().join(LOCK_FILE_NAME);
        assert_eq!(std::fs::read_to_string(&lock_path).unwrap(), "");
        let again = acquire_soon(dir.path());
        assert!(again.path().exists());
    }

    #[test]
    fn missing_state_dir_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = StateLock::acquire(&dir.path().join("absent")).unwrap_err();
        assert!(matches!(err, LockError::Io { .. }), "{err:?}");
        assert_eq!(err.exit_code(), ExitCode::InputError);
        assert!(err.to_string().contains("absent/execution.lock"), "{err}");
    }

    #[test]
    fn a_stale_pid_from_a_dead_holder_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE_NAME), "999999\n").unwrap();
        let lock = StateLock::acquire(dir.path()).unwrap();
        let content = std::fs::read_to_string(lock.path()).unwrap();
        assert_eq!(content, format!("{}\n", std::process::id()));
    }

    /// Re-executed by `contention_across_processes_and_release_on_sigkill` in a child process:
    /// takes the lock, says so, and holds it until killed.
    #[test]
    #[ignore = "helper run as a child process by another test"]
    fn lock_holder_child() {
        let Some(dir) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let _lock = StateLock::acquire(Path::new(&dir)).unwrap();
        println!("LOCKED");
        // Block until the parent kills us (or closes stdin if it forgot).
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }

    #[test]
    fn contention_across_processes_and_release_on_sigkill() {
        let dir = tempfile::tempdir().unwrap();
        let test_name = format!(
            "{}::lock_holder_child",
            module_path!()
                .split_once("::")
                .map(|(_, rest)| rest)
                .unwrap()
        );
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([test_name.as_str(), "--exact", "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(CHILD_ENV, dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("LOCKED") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child test process never reported holding the lock");
        }

        let err = StateLock::acquire(dir.path()).unwrap_err();
        match &err {
            LockError::Held { holder_pid, .. } => assert_eq!(*holder_pid, Some(child.id())),
            other => panic!("expected Held, got {other:?}"),
        }

        // SIGKILL: no destructor runs in the child, the kernel must release the lock.
        child.kill().unwrap();
        child.wait().unwrap();
        drop(acquire_soon(dir.path()));
    }

    /// A child started as the leader of a new process group; dropping it kills the whole group
    /// (the child and everything it forked) with SIGKILL and reaps the child.
    struct ProcessGroup(std::process::Child);

    impl ProcessGroup {
        fn spawn(command: &mut Command) -> ProcessGroup {
            use std::os::unix::process::CommandExt;
            ProcessGroup(command.process_group(0).spawn().unwrap())
        }
    }

    impl Drop for ProcessGroup {
        fn drop(&mut self) {
            // kill(1) with a negative PID signals the process group of that ID.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.0.id())])
                .stderr(Stdio::null())
                .status();
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn flock_available() -> bool {
        Command::new("flock")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    #[test]
    fn util_linux_flock_sees_our_lock_and_we_see_its_lock() {
        if !flock_available() {
            eprintln!("skipped: util-linux flock(1) is not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE_NAME);
        let probe = |path: &Path| {
            Command::new("flock")
                .args(["--nonblock", "--conflict-exit-code", "75"])
                .arg(path)
                .arg("true")
                .status()
                .unwrap()
                .code()
        };

        let lock = StateLock::acquire(dir.path()).unwrap();
        assert_eq!(probe(&path), Some(75), "flock(1) must see our lock");
        drop(lock);
        // Retried for the fork/exec window explained at `acquire_soon`.
        let deadline = Instant::now() + Duration::from_secs(10);
        while probe(&path) != Some(0) {
            assert!(
                Instant::now() < deadline,
                "our lock must be released on drop"
            );
            std::thread::sleep(Duration::from_millis(10));
        }

        // The other way round: a foreign holder that never writes a PID. flock(1) forks
        // `sleep`, which inherits the lock and would outlive a kill of flock(1) alone (holding
        // the test's output pipe for a minute): both run in a process group of their own that
        // `ProcessGroup` kills, also when an assertion below fails.
        let holder = ProcessGroup::spawn(
            Command::new("flock")
                .arg(&path)
                .args(["sleep", "60"])
                .stdin(Stdio::null())
                .stdout(Stdio::null()),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let err = loop {
            match StateLock::acquire(dir.path()) {
                Err(err) => break err,
                // flock(1) has not taken it yet.
                Ok(lock) => drop(lock),
            }
            if Instant::now() > deadline {
                panic!("flock(1) never took the lock");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(holder);
        match &err {
            LockError::Held { holder_pid, .. } => assert_eq!(*holder_pid, None),
            other => panic!("expected Held, got {other:?}"),
        }
        assert!(err.to_string().contains("pid unknown"), "{err}");
    }
}
