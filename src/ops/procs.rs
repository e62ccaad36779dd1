//! Finding processes precisely, from `/proc` (or a fake tree rooted elsewhere, for tests:
//! env `AVWAP_PROC_ROOT`).
//!
//! A process is identified by the file name of its executable (`/proc/<pid>/exe`), never by a
//! substring of its command line, so `tail -f avwap-execution.log` or `vim avwap-execution.rs`
//! are not mistaken for the service. When `exe` cannot be read (another user's process and we
//! are not root) the kernel's `comm` (the executable name, truncated to 15 bytes) is used.
//! A binary replaced by a deploy while running reads `<path> (deleted)`; it still counts.

use std::path::{Path, PathBuf};

/// Env var naming the proc root (default `/proc`).
pub const ENV_PROC_ROOT: &str = "AVWAP_PROC_ROOT";
pub const DEFAULT_PROC_ROOT: &str = "/proc";
/// The kernel keeps at most this many bytes of a process name in `comm`.
pub const COMM_MAX: usize = 15;

/// What we know about one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    /// Target of `/proc/<pid>/exe` without a ` (deleted)` suffix; `None` when unreadable.
    pub exe: Option<PathBuf>,
    /// The executable was replaced or removed since the process started.
    pub exe_deleted: bool,
    /// `/proc/<pid>/comm` without the newline.
    pub comm: Option<String>,
    /// The unified-hierarchy cgroup path (`0::/system.slice/execution.service` → that path),
    /// which tells which unit (or login session) a process belongs to.
    pub cgroup: Option<String>,
}

impl ProcessInfo {
    /// The executable's file name, or failing that `comm`.
    pub fn name(&self) -> Option<String> {
        match &self.exe {
            Some(exe) => exe.file_name().map(|n| n.to_string_lossy().into_owned()),
            None => self.comm.clone(),
        }
    }

    /// Whether this process runs the executable called `name`: the exe's file name equals it
    /// exactly, or (exe unreadable) `comm` equals it truncated as the kernel truncates.
    pub fn runs(&self, name: &str) -> bool {
        match &self.exe {
            Some(exe) => exe.file_name().is_some_and(|n| n == name),
            None => {
                let truncated = truncate_comm(name);
                self.comm.as_deref() == Some(truncated)
            }
        }
    }

    /// A short description for messages: `pid 1234 (/usr/bin/avwap-execution, cgroup …)`.
    pub fn describe(&self) -> String {
        let what = match (&self.exe, &self.comm) {
            (Some(exe), _) => {
                let deleted = if self.exe_deleted { " (deleted)" } else { "" };
                format!("{}{deleted}", exe.display())
            }
            (None, Some(comm)) => format!("comm {comm}"),
            (None, None) => "unknown executable".to_string(),
        };
        match &self.cgroup {
            Some(cg) => format!("pid {} ({what}, cgroup {cg})", self.pid),
            None => format!("pid {} ({what})", self.pid),
        }
    }
}

fn truncate_comm(name: &str) -> &str {
    if name.len() <= COMM_MAX {
        return name;
    }
    let mut end = COMM_MAX;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// A proc file system rooted at `root`.
#[derive(Debug, Clone)]
pub struct ProcTree {
    root: PathBuf,
}

impl ProcTree {
    pub fn new(root: impl Into<PathBuf>) -> ProcTree {
        ProcTree { root: root.into() }
    }

    /// `AVWAP_PROC_ROOT` or `/proc`.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> ProcTree {
        match env(ENV_PROC_ROOT).filter(|v| !v.is_empty()) {
            Some(root) => ProcTree::new(root),
            None => ProcTree::new(DEFAULT_PROC_ROOT),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The process `pid`, or `None` when it does not exist.
    pub fn process(&self, pid: u32) -> Option<ProcessInfo> {
        let dir = self.root.join(pid.to_string());
        if !dir.is_dir() {
            return None;
        }
        let (exe, exe_deleted) = match std::fs::read_link(dir.join("exe")) {
            Ok(target) => {
                let text = target.to_string_lossy();
                match text.strip_suffix(" (deleted)") {
                    Some(stripped) => (Some(PathBuf::from(stripped)), true),
                    None => (Some(target), false),
                }
            }
            Err(_) => (None, false),
        };
        let comm = std::fs::read_to_string(dir.join("comm"))
            .ok()
            .map(|s| s.trim_end_matches('\n').to_string())
            .filter(|s| !s.is_empty());
        let cgroup = std::fs::read_to_string(dir.join("cgroup"))
            .ok()
            .and_then(|s| parse_cgroup(&s));
        Some(ProcessInfo {
            pid,
            exe,
            exe_deleted,
            comm,
            cgroup,
        })
    }

    /// Every process (numeric entries of the root), in pid order. Processes that vanish while
    /// we look are skipped.
    pub fn processes(&self) -> std::io::Result<Vec<ProcessInfo>> {
        let mut pids: Vec<u32> = std::fs::read_dir(&self.root)?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .collect();
        pids.sort_unstable();
        Ok(pids
            .into_iter()
            .filter_map(|pid| self.process(pid))
            .collect())
    }

    /// Every process whose executable is called `name` (see [`ProcessInfo::runs`]).
    pub fn find_by_exe_name(&self, name: &str) -> std::io::Result<Vec<ProcessInfo>> {
        Ok(self
            .processes()?
            .into_iter()
            .filter(|p| p.runs(name))
            .collect())
    }
}

/// The cgroup v2 path from `/proc/<pid>/cgroup` (`0::<path>`), else the first line's path.
fn parse_cgroup(text: &str) -> Option<String> {
    let mut first = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (id, _controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if id == "0" {
            return Some(path.to_string());
        }
        first.get_or_insert_with(|| path.to_string());
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn fake_process(root: &Path, pid: u32, exe: &str, comm: &str, cgroup: &str) {
        let dir = root.join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        if !exe.is_empty() {
            symlink(exe, dir.join("exe")).unwrap();
        }
        std::fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
        std::fs::write(dir.join("cgroup"), format!("0::{cgroup}\n")).unwrap();
    }

    #[test]
    fn finds_by_exe_name_exactly_not_by_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fake_process(
            root,
            1234,
            "/nix/store/abc-avwap-0.1.0/bin/avwap-execution",
            "avwap-execution",
            "/system.slice/execution.service",
        );
        // A deploy replaced the binary of this one; it still runs avwap-execution.
        fake_process(
            root,
            2000,
            "/usr/local/bin/avwap-execution (deleted)",
            "avwap-execution",
            "/user.slice/user-0.slice/session-3.scope",
        );
        // Decoys: similar names, or the name only in the command line.
        fake_process(root, 10, "/usr/bin/tail", "tail", "/user.slice");
        std::fs::write(root.join("10/cmdline"), "tail\0-f\0avwap-execution.log\0").unwrap();
        fake_process(
            root,
            11,
            "/usr/bin/avwap-execution-old",
            "avwap-execution",
            "/",
        );
        fake_process(root, 12, "/usr/bin/avwap-executio", "avwap-executio", "/");
        // exe unreadable (another user's process): comm decides.
        fake_process(
            root,
            13,
            "",
            "avwap-execution",
            "/system.slice/other.service",
        );
        fake_process(root, 14, "", "avwap-executionX", "/");
        std::fs::create_dir_all(root.join("self")).unwrap();
        std::fs::write(root.join("uptime"), "1 1\n").unwrap();

        let found = ProcTree::new(root)
            .find_by_exe_name("avwap-execution")
            .unwrap();
        let pids: Vec<u32> = found.iter().map(|p| p.pid).collect();
        assert_eq!(pids, vec![13, 1234, 2000]);
        let deleted = found.iter().find(|p| p.pid == 2000).unwrap();
        assert!(deleted.exe_deleted);
        assert_eq!(
            deleted.exe.as_deref(),
            Some(Path::new("/usr/local/bin/avwap-execution"))
        );
        assert!(deleted.describe().contains("(deleted)"));
        assert!(deleted.describe().contains("session-3.scope"));
        let main = found.iter().find(|p| p.pid == 1234).unwrap();
        assert_eq!(
            main.cgroup.as_deref(),
            Some("/system.slice/execution.service")
        );
    }

    #[test]
    fn a_missing_pid_is_none_and_a_missing_root_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let tree = ProcTree::new(dir.path());
        assert!(tree.process(42).is_none());
        assert!(ProcTree::new(dir.path().join("absent"))
            .processes()
            .is_err());
    }

    #[test]
    fn comm_truncation_matches_the_kernel() {
        assert_eq!(truncate_comm("avwap-execution"), "avwap-execution");
        assert_eq!(truncate_comm("avwap-execution-x"), "avwap-execution");
        let p = ProcessInfo {
            pid: 1,
            exe: None,
            exe_deleted: false,
            comm: Some("avwap-execution".into()),
            cgroup: None,
        };
        assert!(p.runs("avwap-execution"));
        assert!(!p.runs("avwap-exec"));
    }

    #[test]
    fn cgroup_v1_and_v2() {
        assert_eq!(
            parse_cgroup("0::/system.slice/execution.service\n").as_deref(),
            Some("/system.slice/execution.service")
        );
        assert_eq!(
            parse_cgroup("12:pids:/user.slice\n1:name=systemd:/user.slice/x.scope\n0::/a\n")
                .as_deref(),
            Some("/a")
        );
        assert_eq!(parse_cgroup("5:cpu:/b\n").as_deref(), Some("/b"));
        assert_eq!(parse_cgroup(""), None);
    }
}
