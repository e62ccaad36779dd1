//! Finding processes precisely, from `/proc` (or a fake tree rooted elsewhere, for tests:
//! env `AVWAP_PROC_ROOT`).
//!
//! A process is identified by the file name of its executable (`/proc/<pid>/exe`), never by a
//! substring of its command line, so `tail -f avwap-execution.log` or `vim avwap-execution.rs`
//! are not mistaken for the service. When `exe` cannot be read (another user's process and we
//! are not root) the kernel's `comm` (the executable name, truncated to 15 bytes) is used.
//! A binary replaced by a deploy while running reads `<path> (deleted)`; it still counts.
//!
//! Each process also carries its parent (`PPid:` and the real `Uid:` of `/proc/<pid>/status`,
//! readable for every process) and its command line (`/proc/<pid>/cmdline`), so a snapshot of
//! the table ([`ProcTree::processes`]) answers "what runs below this process" without asking
//! the programs themselves (e.g. which processes run inside tmux, of any user).

use std::path::{Path, PathBuf};

/// Env var naming the proc root (default `/proc`).
pub const ENV_PROC_ROOT: &str = "AVWAP_PROC_ROOT";
pub const DEFAULT_PROC_ROOT: &str = "/proc";
/// The kernel keeps at most this many bytes of a process name in `comm`.
pub const COMM_MAX: usize = 15;
/// At most this much of a command line is read (the arguments that identify a program come
/// first).
pub const CMDLINE_MAX: u64 = 64 * 1024;

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
    /// The parent process (`PPid:`; 0 for PID 1 and kernel threads' parent), `None` when
    /// unreadable.
    pub ppid: Option<u32>,
    /// The real user id (first field of `Uid:`).
    pub uid: Option<u32>,
    /// The arguments (`argv`, from `cmdline`), empty for kernel threads or when unreadable.
    pub cmdline: Vec<String>,
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
        let (ppid, uid) = std::fs::read_to_string(dir.join("status"))
            .map(|s| parse_status(&s))
            .unwrap_or((None, None));
        let cmdline = read_cmdline(&dir.join("cmdline"));
        Some(ProcessInfo {
            pid,
            exe,
            exe_deleted,
            comm,
            cgroup,
            ppid,
            uid,
            cmdline,
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

    /// [`ProcTree::processes`] as a [`Snapshot`].
    pub fn snapshot(&self) -> std::io::Result<Snapshot> {
        self.processes().map(Snapshot::new)
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

/// A snapshot of the process table: every process once, by pid, with its parent links.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    by_pid: std::collections::BTreeMap<u32, ProcessInfo>,
}

/// A parent chain longer than this is cut (the kernel's are short; a fake tree may loop).
const MAX_DEPTH: usize = 4096;

impl Snapshot {
    pub fn new(processes: impl IntoIterator<Item = ProcessInfo>) -> Snapshot {
        Snapshot {
            by_pid: processes.into_iter().map(|p| (p.pid, p)).collect(),
        }
    }

    /// Every process, in pid order.
    pub fn iter(&self) -> impl Iterator<Item = &ProcessInfo> {
        self.by_pid.values()
    }

    pub fn get(&self, pid: u32) -> Option<&ProcessInfo> {
        self.by_pid.get(&pid)
    }

    /// Whether this snapshot can see the whole table: PID 1 and its parent link are readable.
    /// With `/proc` mounted `hidepid=` another user's processes are missing (or unreadable),
    /// and PID 1 (root's) is the first of them.
    pub fn sees_everything(&self) -> bool {
        self.get(1).is_some_and(|init| init.ppid.is_some())
    }

    /// The nearest ancestor of `process` (parent, grandparent, …) for which `is` holds. A
    /// chain that breaks (unknown parent) or loops ends the search.
    pub fn nearest_ancestor(
        &self,
        process: &ProcessInfo,
        is: impl Fn(&ProcessInfo) -> bool,
    ) -> Option<&ProcessInfo> {
        let mut current = process;
        for _ in 0..MAX_DEPTH {
            let parent = self.get(current.ppid.filter(|pid| *pid != current.pid)?)?;
            if is(parent) {
                return Some(parent);
            }
            current = parent;
        }
        None
    }
}

/// `PPid:` and the real uid (first field of `Uid:`) from `/proc/<pid>/status`.
fn parse_status(text: &str) -> (Option<u32>, Option<u32>) {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u32>().ok())
    };
    (field("PPid:"), field("Uid:"))
}

/// `argv` from a `cmdline` file (NUL-terminated arguments), at most [`CMDLINE_MAX`] bytes of it.
fn read_cmdline(path: &Path) -> Vec<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(CMDLINE_MAX).read_to_end(&mut bytes));
    if read.is_err() || bytes.is_empty() {
        return Vec::new();
    }
    let text = bytes.strip_suffix(&[0]).unwrap_or(&bytes);
    text.split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
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
            ppid: None,
            uid: None,
            cmdline: Vec::new(),
        };
        assert!(p.runs("avwap-execution"));
        assert!(!p.runs("avwap-exec"));
    }

    #[test]
    fn parent_user_and_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fake_process(root, 4242, "/usr/bin/python3.11", "python3", "/user.slice");
        // The real status format; the comm in Name: may hold spaces and parentheses.
        std::fs::write(
            root.join("4242/status"),
            "Name:\tpython3 (x)\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\n\
             Pid:\t4242\nPPid:\t31154\nUid:\t1000\t1001\t1001\t1001\nGid:\t100\n",
        )
        .unwrap();
        std::fs::write(
            root.join("4242/cmdline"),
            "python3\0-u\0-m\0execution_v2.execution_main\0\0--poll-seconds\0",
        )
        .unwrap();
        let p = ProcTree::new(root).process(4242).unwrap();
        assert_eq!(p.ppid, Some(31154));
        assert_eq!(p.uid, Some(1000));
        assert_eq!(
            p.cmdline,
            [
                "python3",
                "-u",
                "-m",
                "execution_v2.execution_main",
                "",
                "--poll-seconds"
            ]
        );
        // Without status and cmdline (vanished, or a fake tree): unknown, not an error.
        fake_process(root, 7, "", "kworker/0:1", "/");
        let k = ProcTree::new(root).process(7).unwrap();
        assert_eq!((k.ppid, k.uid), (None, None));
        assert!(k.cmdline.is_empty());
        assert_eq!(
            parse_status("PPid:\t0\nUid:\t0\t0\t0\t0\n"),
            (Some(0), Some(0))
        );
    }

    fn info(pid: u32, ppid: u32, comm: &str) -> ProcessInfo {
        ProcessInfo {
            pid,
            exe: None,
            exe_deleted: false,
            comm: Some(comm.into()),
            cgroup: None,
            ppid: Some(ppid),
            uid: Some(0),
            cmdline: Vec::new(),
        }
    }

    #[test]
    fn nearest_ancestor_walks_parents_and_survives_loops() {
        let snap = Snapshot::new([
            info(1, 0, "systemd"),
            info(100, 1, "tmux: server"),
            info(101, 100, "bash"),
            info(102, 101, "sudo"),
            info(103, 102, "avwap-scan"),
            info(200, 1, "sshd"),
            // A loop (only a broken fake tree has one) and a dangling parent.
            info(300, 301, "a"),
            info(301, 300, "b"),
            info(400, 999, "orphan"),
        ]);
        let tmux = |p: &ProcessInfo| p.comm.as_deref() == Some("tmux: server");
        assert_eq!(
            snap.nearest_ancestor(snap.get(103).unwrap(), tmux)
                .map(|p| p.pid),
            Some(100)
        );
        assert_eq!(
            snap.nearest_ancestor(snap.get(101).unwrap(), tmux)
                .map(|p| p.pid),
            Some(100)
        );
        // Not its own ancestor.
        assert!(snap
            .nearest_ancestor(snap.get(100).unwrap(), tmux)
            .is_none());
        assert!(snap
            .nearest_ancestor(snap.get(200).unwrap(), tmux)
            .is_none());
        assert!(snap
            .nearest_ancestor(snap.get(300).unwrap(), tmux)
            .is_none());
        assert!(snap
            .nearest_ancestor(snap.get(400).unwrap(), tmux)
            .is_none());
        assert!(snap.sees_everything());
        assert!(!Snapshot::new([info(5, 1, "bash")]).sees_everything());
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
