//! What `avwap-check` asks systemd, through one small trait ([`SystemdQuery`]) so the checks
//! can run against the real `systemctl` ([`Systemctl`]) or recorded outputs
//! ([`FixtureSystemd`]).
//!
//! The only question is `systemctl show <unit> -p A,B,…`, whose output is `Key=Value` lines
//! (systemd's stable, documented property interface; `systemctl status` is for humans and
//! changes between versions). `systemctl` runs with `TZ=UTC` and `LC_ALL=C`, so timestamps come
//! back as `Mon 2026-11-30 13:30:00 UTC` whatever the host's zone; `@<epoch>` (from
//! `--timestamp=unix`) and `n/a`/empty (not scheduled) are understood too.
//!
//! systemd is "available" when the `systemctl` executable exists and systemd is PID 1
//! (`/run/systemd/system` exists, the test `sd_booted()` makes). `AVWAP_SYSTEMCTL` names the
//! executable; when it is set the PID-1 test is left to that executable (so a fake `systemctl`
//! can stand in for a whole host), and a real `systemctl` on a host without systemd answers
//! "System has not been booted with systemd as init system", which also reads as unavailable.

pub mod calendar;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Env var naming the `systemctl` executable (default: `systemctl` on `PATH`).
pub const ENV_SYSTEMCTL: &str = "AVWAP_SYSTEMCTL";
/// Exists exactly when systemd is PID 1 (see `sd_booted(3)`).
pub const SYSTEMD_RUNTIME_MARKER: &str = "/run/systemd/system";
/// How long one `systemctl show` may take before it is killed.
pub const SYSTEMCTL_TIMEOUT: Duration = Duration::from_secs(10);

/// Properties asked of a service.
pub const SERVICE_PROPERTIES: &[&str] = &[
    "LoadState",
    "ActiveState",
    "SubState",
    "MainPID",
    "NRestarts",
    "StartLimitBurst",
    "Result",
    "ExecMainStatus",
    "ExecMainCode",
    "UnitFileState",
];

/// Properties asked of a timer.
pub const TIMER_PROPERTIES: &[&str] = &[
    "LoadState",
    "ActiveState",
    "SubState",
    "Result",
    "NextElapseUSecRealtime",
    "LastTriggerUSec",
    "TimersCalendar",
    "Unit",
    "UnitFileState",
];

/// Whether systemd can be asked anything on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    Available,
    /// Why not, for the "systemd not available" line.
    Unavailable(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemdError {
    /// systemd turned out not to be usable (not PID 1, no bus).
    #[error("systemd not available: {0}")]
    Unavailable(String),
    /// `systemctl` ran but failed, or could not be run.
    #[error("{0}")]
    Command(String),
}

/// The one question the health check asks systemd.
pub trait SystemdQuery {
    fn availability(&self) -> Availability;
    /// `systemctl show <unit> -p <properties>`.
    fn show(&self, unit: &str, properties: &[&str]) -> Result<UnitProperties, SystemdError>;
}

/// Parsed `systemctl show` output for one unit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitProperties {
    pub unit: String,
    pub values: BTreeMap<String, String>,
}

impl UnitProperties {
    pub fn parse(unit: &str, text: &str) -> UnitProperties {
        UnitProperties {
            unit: unit.to_string(),
            values: parse_show(text),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// A property's value, or `""` when absent (systemd prints nothing for an unset value).
    pub fn text(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    pub fn load_state(&self) -> &str {
        self.text("LoadState")
    }

    pub fn active_state(&self) -> &str {
        self.text("ActiveState")
    }

    pub fn sub_state(&self) -> &str {
        self.text("SubState")
    }

    pub fn result(&self) -> &str {
        self.text("Result")
    }

    /// `MainPID`; 0 (no main process) is `None`.
    pub fn main_pid(&self) -> Option<u32> {
        self.get("MainPID")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|pid| *pid != 0)
    }

    /// `StartLimitBurst=`: how many starts in the interval before systemd gives up.
    pub fn start_limit_burst(&self) -> Option<u64> {
        self.get("StartLimitBurst")
            .and_then(|v| v.trim().parse().ok())
    }

    pub fn n_restarts(&self) -> Option<u64> {
        self.get("NRestarts").and_then(|v| v.trim().parse().ok())
    }

    pub fn exec_main_status(&self) -> Option<i64> {
        self.get("ExecMainStatus")
            .and_then(|v| v.trim().parse().ok())
    }

    /// `NextElapseUSecRealtime`: `Ok(None)` when nothing is scheduled.
    pub fn next_elapse(&self) -> Result<Option<DateTime<Utc>>, String> {
        parse_timestamp(self.text("NextElapseUSecRealtime"))
    }

    /// The argument lists of `ExecStart=` (`{ path=… ; argv[]=/usr/bin/avwap-scan --provider
    /// alpaca ; ignore_errors=no ; … }`), one per command, split on spaces as systemd prints
    /// them.
    pub fn exec_start_argv(&self) -> Vec<Vec<String>> {
        self.text("ExecStart")
            .lines()
            .filter_map(|line| {
                let after = &line[line.find("argv[]=")? + "argv[]=".len()..];
                let end = after.find(" ;").unwrap_or(after.len());
                Some(
                    after[..end]
                        .split_whitespace()
                        .map(str::to_string)
                        .collect(),
                )
            })
            .collect()
    }

    /// The `OnCalendar=` expressions in `TimersCalendar`
    /// (`{ OnCalendar=Mon..Fri *-*-* 08:30:00 America/New_York ; next_elapse=… }`, one line
    /// per expression).
    pub fn on_calendar(&self) -> Vec<String> {
        let raw = self.text("TimersCalendar");
        let mut out = Vec::new();
        let mut rest = raw;
        while let Some(start) = rest.find("OnCalendar=") {
            let after = &rest[start + "OnCalendar=".len()..];
            let end = after
                .find(" ;")
                .or_else(|| after.find('}'))
                .unwrap_or(after.len());
            out.push(after[..end].trim().to_string());
            rest = &after[end..];
        }
        out
    }
}

/// `Key=Value` lines into a map. Lines without `=` are ignored; a value keeps any `=` it holds.
/// A key printed on several lines (`TimersCalendar=` once per `OnCalendar=`, `ExecStart=` once
/// per command) keeps every value, joined by newlines.
pub fn parse_show(text: &str) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || key.contains(' ') {
            continue;
        }
        let value = value.trim_end_matches('\r');
        map.entry(key.to_string())
            .and_modify(|v| {
                v.push('\n');
                v.push_str(value);
            })
            .or_insert_with(|| value.to_string());
    }
    map
}

/// A systemd realtime timestamp as `systemctl show` prints it: `Mon 2026-11-30 13:30:00 UTC`
/// (optionally with `.ffffff` seconds), `@1764509400` (`--timestamp=unix`), or `n/a`/empty for
/// "not set" (`Ok(None)`). Only UTC is accepted, because a zone abbreviation such as `EST` or
/// `CST` is ambiguous; [`Systemctl`] runs with `TZ=UTC`.
pub fn parse_timestamp(raw: &str) -> Result<Option<DateTime<Utc>>, String> {
    let s = raw.trim();
    if s.is_empty() || s == "n/a" || s == "0" {
        return Ok(None);
    }
    if let Some(epoch) = s.strip_prefix('@') {
        let secs: i64 = epoch
            .parse()
            .map_err(|_| format!("cannot read timestamp {s:?}"))?;
        return Utc
            .timestamp_opt(secs, 0)
            .single()
            .map(Some)
            .ok_or_else(|| format!("timestamp {s:?} is out of range"));
    }
    let parts: Vec<&str> = s.split_whitespace().collect();
    let (weekday, date, time, zone) = match parts.as_slice() {
        [w, d, t, z] => (Some(*w), *d, *t, *z),
        [d, t, z] => (None, *d, *t, *z),
        _ => return Err(format!("cannot read timestamp {s:?}")),
    };
    if zone != "UTC" && zone != "GMT" {
        return Err(format!(
            "timestamp {s:?} is in zone {zone}, expected UTC (systemctl is run with TZ=UTC)"
        ));
    }
    let naive = NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M:%S%.f")
        .map_err(|_| format!("cannot read timestamp {s:?}"))?;
    let at = Utc.from_utc_datetime(&naive);
    if let Some(w) = weekday {
        if at.format("%a").to_string() != w {
            return Err(format!("timestamp {s:?}: {w} is not the weekday of {date}"));
        }
    }
    Ok(Some(at))
}

/// The real thing: runs `systemctl`.
#[derive(Debug, Clone)]
pub struct Systemctl {
    program: PathBuf,
    /// Set from `AVWAP_SYSTEMCTL`: trust the executable to know whether systemd runs.
    explicit: bool,
    runtime_marker: PathBuf,
    path_var: Option<String>,
}

impl Systemctl {
    /// From `AVWAP_SYSTEMCTL` and `PATH`.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Systemctl {
        let explicit = env(ENV_SYSTEMCTL).filter(|v| !v.is_empty());
        Systemctl {
            program: PathBuf::from(explicit.clone().unwrap_or_else(|| "systemctl".into())),
            explicit: explicit.is_some(),
            runtime_marker: PathBuf::from(SYSTEMD_RUNTIME_MARKER),
            path_var: env("PATH"),
        }
    }

    /// The executable that would run, if it can be found.
    pub fn resolve(&self) -> Option<PathBuf> {
        if self.program.components().count() > 1 || self.program.is_absolute() {
            return is_executable(&self.program).then(|| self.program.clone());
        }
        let path_var = self.path_var.as_deref()?;
        std::env::split_paths(path_var)
            .map(|dir| dir.join(&self.program))
            .find(|candidate| is_executable(candidate))
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// stderr of a `systemctl` that cannot talk to a systemd manager.
fn says_unavailable(stderr: &str) -> bool {
    stderr.contains("has not been booted with systemd")
        || stderr.contains("Failed to connect to bus")
        || stderr.contains("Failed to connect to system scope bus")
}

impl SystemdQuery for Systemctl {
    fn availability(&self) -> Availability {
        let Some(_) = self.resolve() else {
            return Availability::Unavailable(if self.explicit {
                format!(
                    "{} (from {ENV_SYSTEMCTL}) is not an executable file",
                    self.program.display()
                )
            } else {
                "systemctl is not on PATH".to_string()
            });
        };
        if !self.explicit && !self.runtime_marker.is_dir() {
            return Availability::Unavailable(format!(
                "{} does not exist, so systemd is not PID 1 on this host",
                self.runtime_marker.display()
            ));
        }
        Availability::Available
    }

    fn show(&self, unit: &str, properties: &[&str]) -> Result<UnitProperties, SystemdError> {
        let program = self.resolve().unwrap_or_else(|| self.program.clone());
        let mut child = Command::new(&program)
            .arg("show")
            .arg(unit)
            .arg("-p")
            .arg(properties.join(","))
            .arg("--no-pager")
            .env("TZ", "UTC")
            .env("LC_ALL", "C")
            .env("SYSTEMD_PAGER", "")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| SystemdError::Command(format!("cannot run {}: {e}", program.display())))?;
        let output = wait_with_timeout(&mut child, SYSTEMCTL_TIMEOUT).map_err(|e| {
            SystemdError::Command(format!("{} show {unit}: {e}", program.display()))
        })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr_line = stderr.lines().collect::<Vec<_>>().join(" ");
        if !output.success {
            if says_unavailable(&stderr) {
                return Err(SystemdError::Unavailable(stderr_line));
            }
            return Err(SystemdError::Command(format!(
                "systemctl show {unit} failed ({}): {}",
                output.status,
                if stderr_line.is_empty() {
                    "no message".to_string()
                } else {
                    stderr_line
                }
            )));
        }
        Ok(UnitProperties::parse(unit, &stdout))
    }
}

pub(crate) struct ChildOutput {
    pub(crate) success: bool,
    pub(crate) status: String,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

/// Wait for a child with a deadline, reading its pipes on threads so a chatty child cannot
/// block; kill it at the deadline.
pub(crate) fn wait_with_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Result<ChildOutput, String> {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {} s; killed", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    Ok(ChildOutput {
        success: status.success(),
        status: status.to_string(),
        stdout,
        stderr,
    })
}

/// Recorded answers, for tests: the `systemctl show` text of each unit.
#[derive(Debug, Clone, Default)]
pub struct FixtureSystemd {
    pub availability: Option<String>,
    pub units: BTreeMap<String, String>,
}

impl FixtureSystemd {
    /// A host where systemd answers with these `systemctl show` texts.
    pub fn with_units(units: &[(&str, &str)]) -> FixtureSystemd {
        FixtureSystemd {
            availability: None,
            units: units
                .iter()
                .map(|(u, t)| (u.to_string(), t.to_string()))
                .collect(),
        }
    }

    /// A host without systemd.
    pub fn unavailable(reason: &str) -> FixtureSystemd {
        FixtureSystemd {
            availability: Some(reason.to_string()),
            units: BTreeMap::new(),
        }
    }
}

impl SystemdQuery for FixtureSystemd {
    fn availability(&self) -> Availability {
        match &self.availability {
            Some(reason) => Availability::Unavailable(reason.clone()),
            None => Availability::Available,
        }
    }

    fn show(&self, unit: &str, properties: &[&str]) -> Result<UnitProperties, SystemdError> {
        if let Some(reason) = &self.availability {
            return Err(SystemdError::Unavailable(reason.clone()));
        }
        // An unknown unit answers like systemd does for one that is not installed.
        let text =
            self.units.get(unit).cloned().unwrap_or_else(|| {
                "LoadState=not-found\nActiveState=inactive\nSubState=dead\n".into()
            });
        let mut props = UnitProperties::parse(unit, &text);
        props
            .values
            .retain(|k, _| properties.iter().any(|p| p == k));
        Ok(props)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn show_output_is_key_value_lines() {
        let p = UnitProperties::parse(
            "execution.service",
            "MainPID=1234\nNRestarts=0\nActiveState=active\nSubState=running\nResult=success\n\
             ExecMainStatus=0\nEnvironment=A=1 B=2\nEmpty=\n",
        );
        assert_eq!(p.main_pid(), Some(1234));
        assert_eq!(p.active_state(), "active");
        assert_eq!(p.sub_state(), "running");
        assert_eq!(p.n_restarts(), Some(0));
        assert_eq!(p.exec_main_status(), Some(0));
        assert_eq!(p.get("Environment"), Some("A=1 B=2"));
        assert_eq!(p.get("Empty"), Some(""));
        assert_eq!(p.get("Missing"), None);
        let stopped = UnitProperties::parse("x", "MainPID=0\n");
        assert_eq!(stopped.main_pid(), None);
    }

    #[test]
    fn timestamps_in_utc_unix_or_unset() {
        assert_eq!(
            parse_timestamp("Mon 2026-11-30 13:30:00 UTC").unwrap(),
            Some(utc("2026-11-30T13:30:00Z"))
        );
        assert_eq!(
            parse_timestamp("Mon 2026-11-30 13:30:00.123456 UTC").unwrap(),
            Some(utc("2026-11-30T13:30:00.123456Z"))
        );
        assert_eq!(
            parse_timestamp("@1764509400").unwrap(),
            Some(utc("2025-11-30T13:30:00Z"))
        );
        assert_eq!(parse_timestamp("n/a").unwrap(), None);
        assert_eq!(parse_timestamp("").unwrap(), None);
        let err = parse_timestamp("Mon 2026-11-30 08:30:00 EST").unwrap_err();
        assert!(err.contains("expected UTC"), "{err}");
        let err = parse_timestamp("Tue 2026-11-30 13:30:00 UTC").unwrap_err();
        assert!(err.contains("not the weekday"), "{err}");
        assert!(parse_timestamp("tomorrow").is_err());
    }

    #[test]
    fn on_calendar_from_timers_calendar() {
        let p = UnitProperties::parse(
            "scan.timer",
            "TimersCalendar={ OnCalendar=Mon..Fri *-*-* 08:30:00 America/New_York ; next_elapse=Mon 2026-11-30 13:30:00 UTC }\n",
        );
        assert_eq!(
            p.on_calendar(),
            vec!["Mon..Fri *-*-* 08:30:00 America/New_York".to_string()]
        );
        assert!(UnitProperties::default().on_calendar().is_empty());
    }

    #[test]
    fn repeated_keys_keep_every_value() {
        let p = UnitProperties::parse(
            "scan.timer",
            "TimersCalendar={ OnCalendar=Mon..Fri *-*-* 08:30:00 America/New_York ; next_elapse=Mon 2026-11-30 13:30:00 UTC }\n\
             TimersCalendar={ OnCalendar=Sat *-*-* 10:00:00 UTC ; next_elapse=Sat 2026-12-05 10:00:00 UTC }\n",
        );
        assert_eq!(
            p.on_calendar(),
            vec![
                "Mon..Fri *-*-* 08:30:00 America/New_York".to_string(),
                "Sat *-*-* 10:00:00 UTC".to_string()
            ]
        );
        // Recorded from systemd 252 (run1/healthy/show-execution.service-full.txt).
        let p = UnitProperties::parse(
            "scan.service",
            "ExecStart={ path=/usr/local/bin/avwap-scan ; argv[]=/usr/local/bin/avwap-scan --provider alpaca ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }\n",
        );
        assert_eq!(
            p.exec_start_argv(),
            vec![vec![
                "/usr/local/bin/avwap-scan".to_string(),
                "--provider".to_string(),
                "alpaca".to_string()
            ]]
        );
        assert!(UnitProperties::default().exec_start_argv().is_empty());
    }

    #[test]
    fn systemctl_not_found_or_not_pid1_is_unavailable() {
        let env = |k: &str| match k {
            ENV_SYSTEMCTL => Some("/nonexistent/systemctl".to_string()),
            _ => None,
        };
        match Systemctl::from_env(&env).availability() {
            Availability::Unavailable(reason) => {
                assert!(reason.contains("/nonexistent/systemctl"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_string();
        let env = move |k: &str| (k == "PATH").then(|| path.clone());
        match Systemctl::from_env(&env).availability() {
            Availability::Unavailable(reason) => {
                assert!(reason.contains("not on PATH"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(says_unavailable(
            "System has not been booted with systemd as init system (PID 1). Can't operate.\n\
             Failed to connect to bus: Host is down\n"
        ));
    }

    #[test]
    fn fixture_answers_only_what_was_asked() {
        let f = FixtureSystemd::with_units(&[(
            "execution.service",
            "ActiveState=active\nMainPID=7\nFoo=bar\n",
        )]);
        let p = f.show("execution.service", SERVICE_PROPERTIES).unwrap();
        assert_eq!(p.main_pid(), Some(7));
        assert_eq!(p.get("Foo"), None);
        let missing = f.show("scan.timer", TIMER_PROPERTIES).unwrap();
        assert_eq!(missing.load_state(), "not-found");
        assert!(matches!(
            FixtureSystemd::unavailable("laptop").show("x", &[]),
            Err(SystemdError::Unavailable(_))
        ));
    }
}
