//! `avwap-check`: the one-command health check of a host (SPEC §6).
//!
//! Each check gives OK, WARN or FAIL with a one-line reason that says what to do. The checks,
//! in report order (names are stable; scripts may match on them):
//!
//! | name | OK when | otherwise |
//! |---|---|---|
//! | `systemd` | (only reported when systemd is absent) | WARN "systemd not available: unit checks skipped" |
//! | `execution.service` | active (running), no automatic restarts | WARN restarted/starting; FAIL inactive, failed, restarting, not installed |
//! | `scan.timer` | next elapse = what the unit's `OnCalendar=` gives after now (any schedule: `services.avwap.schedules.scan`) | FAIL not installed, inactive, nothing scheduled, no `OnCalendar=`, next elapse off its own schedule; WARN no time zone in it, next run > 4 days away, at or after the market open, not enabled |
//! | `execution-restart.timer` | the same, for its own `OnCalendar=` | the same |
//! | `watchlist` | the gate passes (its own message) | WARN stale before today's scan (scan.timer's next run; 08:30 without systemd) or on a non-session day; FAIL otherwise |
//! | `universe-cache` | (only when `scan.service` runs `avwap-scan --provider alpaca`) the cached holdings are valid and at most 7 days old: path, members, age, origin | WARN missing, unusable or older than 7 days; FAIL older than 30 days |
//! | `execution-process` | exactly one `avwap-execution`, the unit's main PID | FAIL none / several / not the unit's; WARN none without systemd |
//! | `tmux` | no process inside a tmux session runs avwap (`avwap-scan`, `avwap-execution`, `avwap-gate`) or the predecessor's entry point; other tmux sessions are fine | FAIL such a process (any user's); WARN other users' processes hidden (`hidepid`) |
//! | `state-db` | `PRAGMA quick_check` says ok | WARN no database yet; FAIL problems or unreadable |
//! | `kill-switch` | off | WARN engaged |
//! | `heartbeat` | fresh (≤ 3 × poll interval) | FAIL stale or missing while the market is open; WARN when closed |
//! | `protective-stops` | every owned position has a working stop (journal) | FAIL any without |
//! | `broker-reconciliation` | the last cycle's verdict: every broker position covered by sell stops, quantities match the journal | FAIL uncovered, a mismatch in two consecutive verdicts, stale or missing while the market is open; WARN unread positions/orders, a mismatch seen once, an unknown order outcome, stale or missing when closed |
//!
//! Verdict: FAIL if any check fails, else WARN if any warns, else OK; exit 1, 2, 0. `--strict`
//! turns every WARN into FAIL. The check only reads: the state database is opened read-only
//! ([`StateDb::open_read_only`]: no file is created, so an operator in the service's group
//! can run it), and its tables are read only when its schema is exactly this build's.
//!
//! The journal can be lost or rolled back while the broker keeps the shares, so "protected"
//! is only said on the broker's word: the service records every cycle what the broker
//! reported against the journal ([`Verdict`]), and `protective-stops` says "each with a
//! working protective stop" only when a fresh verdict confirms it.

use crate::calendar::{
    current_or_next_session, is_session, ny_date, ny_instant, session, NEW_YORK,
};
use crate::config::Config;
use crate::execution::db::{StateDb, DB_FILE, SCHEMA_VERSION};
use crate::execution::process::KillSwitch;
use crate::execution::verdict::{RowStatus, Verdict};
use crate::gate::{check_watchlist, GateVerdict};
use crate::ops::procs::{ProcTree, ProcessInfo, Snapshot};
use crate::ops::systemd::calendar::{CalendarError, CalendarSpec};
use crate::ops::systemd::{
    Availability, Systemctl, SystemdError, SystemdQuery, UnitProperties, SERVICE_PROPERTIES,
    TIMER_PROPERTIES,
};
use crate::universe::{read_cache, CacheError, LoadOptions, UniverseSource};
use chrono::{DateTime, NaiveTime, Utc};
use serde::Serialize;
use std::fmt;
use std::path::Path;

pub const EXECUTION_UNIT: &str = "execution.service";
pub const SCAN_TIMER: &str = "scan.timer";
pub const RESTART_TIMER: &str = "execution-restart.timer";
pub const SCAN_UNIT: &str = "scan.service";
/// What is asked of `scan.service`: whether it is installed and how it runs the scan.
pub const SCAN_SERVICE_PROPERTIES: &[&str] = &["LoadState", "ExecStart"];
/// The universe cache is stale (WARN) when older than this many days ...
pub const UNIVERSE_CACHE_WARN_DAYS: i64 = 7;
/// ... and fails when older than this many.
pub const UNIVERSE_CACHE_FAIL_DAYS: i64 = 30;
pub const EXECUTION_BINARY: &str = "avwap-execution";
/// The scan's default New York time (`services.avwap.schedules.scan`), assumed for the
/// watchlist check only when `scan.timer` cannot be read.
pub const SCAN_TIME: (u32, u32) = (8, 30);
/// A timer's next elapse may differ from the one its `OnCalendar=` gives by this much
/// (AccuracySec).
pub const TIMER_TOLERANCE_SECONDS: i64 = 60;
/// A timer whose next run is further away than this does not run every weekday.
pub const TIMER_MAX_GAP_DAYS: i64 = 4;
/// The heartbeat is stale after this many poll intervals.
pub const HEARTBEAT_INTERVALS: u64 = 3;
/// The binaries that run under systemd only: one of them inside a tmux session fails the
/// `tmux` check (`avwap-check` itself may run anywhere).
pub const SYSTEMD_ONLY_BINARIES: [&str; 3] = ["avwap-scan", "avwap-execution", "avwap-gate"];
/// The predecessor's entry points (reference upstream-execution.md): its execution loop as a
/// module, `python -m execution_v2.execution_main` ...
pub const PREDECESSOR_MODULES: [&str; 1] = ["execution_v2.execution_main"];
/// ... and the scripts Python ran by path: that loop (`execution_v2/execution_main.py`), the
/// scan (`run_scan.py`) and the deprecated V1 loop and orchestrator (`execution.py`,
/// `sentinel.py`).
pub const PREDECESSOR_SCRIPTS: [&str; 4] = [
    "execution_main.py",
    "run_scan.py",
    "execution.py",
    "sentinel.py",
];

/// One check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }

    /// 0 all OK, 1 any FAIL, 2 only WARNs.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Fail => 1,
            Status::Warn => 2,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub status: Status,
    pub message: String,
}

impl CheckResult {
    fn new(name: &str, status: Status, message: impl Into<String>) -> CheckResult {
        CheckResult {
            name: name.to_string(),
            status,
            message: message.into(),
        }
    }
}

/// All checks, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub verdict: Status,
    pub checks: Vec<CheckResult>,
}

impl Report {
    pub fn new(checks: Vec<CheckResult>) -> Report {
        let verdict = checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok);
        Report { verdict, checks }
    }

    /// `--strict`: every WARN becomes a FAIL.
    pub fn strict(self) -> Report {
        Report::new(
            self.checks
                .into_iter()
                .map(|mut c| {
                    if c.status == Status::Warn {
                        c.status = Status::Fail;
                    }
                    c
                })
                .collect(),
        )
    }

    pub fn exit_code(&self) -> u8 {
        self.verdict.exit_code()
    }

    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// One line per check (`OK    name  message`), then the verdict line.
    pub fn render_human(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!(
                "{:<4}  {:<width$}  {}\n",
                c.status.label(),
                c.name,
                c.message
            ));
        }
        let count = |s| self.checks.iter().filter(|c| c.status == s).count();
        out.push_str(&format!(
            "verdict: {} ({} ok, {} warn, {} fail)\n",
            self.verdict.label(),
            count(Status::Ok),
            count(Status::Warn),
            count(Status::Fail)
        ));
        out
    }

    /// `{"verdict": "ok"|"warn"|"fail", "checks": [{"name", "status", "message"}, …]}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!("{{\"verdict\":\"fail\",\"checks\":[{{\"name\":\"report\",\"status\":\"fail\",\"message\":\"cannot encode the report: {e}\"}}]}}")
        })
    }
}

/// How `avwap-check` reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// One JSON object instead of the human report.
    pub json: bool,
    /// Count every WARN as a FAIL.
    pub strict: bool,
}

/// `avwap-check`: run every check against this host at `now` (systemctl and `/proc` as `env`
/// names them: `AVWAP_SYSTEMCTL`, `AVWAP_PROC_ROOT`), print the report on stdout and return
/// the process exit code (0 OK, 1 FAIL, 2 WARN).
pub fn run(
    config: &Config,
    options: CheckOptions,
    env: &dyn Fn(&str) -> Option<String>,
    now: DateTime<Utc>,
) -> u8 {
    let systemd = Systemctl::from_env(env);
    let procs = ProcTree::from_env(env);
    let ctx = CheckContext {
        config,
        now,
        systemd: &systemd,
        procs: &procs,
    };
    let mut report = run_checks(&ctx);
    if options.strict {
        report = report.strict();
    }
    for c in &report.checks {
        tracing::debug!(check = %c.name, status = c.status.label(), "{}", c.message);
    }
    tracing::debug!(
        verdict = report.verdict.label(),
        strict = options.strict,
        checks = report.checks.len(),
        "health check done"
    );
    if options.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.render_human());
    }
    report.exit_code()
}

/// Everything the checks look at.
pub struct CheckContext<'a> {
    pub config: &'a Config,
    pub now: DateTime<Utc>,
    pub systemd: &'a dyn SystemdQuery,
    pub procs: &'a ProcTree,
}

/// Run every check.
pub fn run_checks(ctx: &CheckContext<'_>) -> Report {
    let mut checks = Vec::new();

    // systemd: the unit and the two timers, or one WARN saying they were skipped.
    let mut execution_unit: Option<UnitProperties> = None;
    // When the installed scan.timer runs next (for the watchlist: is today's scan still due?).
    let mut scan_next: Option<DateTime<Utc>> = None;
    let mut systemd_ok = true;
    match ctx.systemd.availability() {
        Availability::Unavailable(reason) => {
            systemd_ok = false;
            checks.push(systemd_unavailable(&reason));
        }
        Availability::Available => {
            match ctx.systemd.show(EXECUTION_UNIT, SERVICE_PROPERTIES) {
                Ok(props) => {
                    let (status, message) = judge_service(&props);
                    checks.push(CheckResult::new(EXECUTION_UNIT, status, message));
                    execution_unit = Some(props);
                }
                Err(SystemdError::Unavailable(reason)) => {
                    systemd_ok = false;
                    checks.push(systemd_unavailable(&reason));
                }
                Err(SystemdError::Command(e)) => {
                    checks.push(CheckResult::new(EXECUTION_UNIT, Status::Fail, e))
                }
            }
            if systemd_ok {
                for timer in [SCAN_TIMER, RESTART_TIMER] {
                    let (status, message) = match ctx.systemd.show(timer, TIMER_PROPERTIES) {
                        Ok(props) => {
                            if timer == SCAN_TIMER && props.active_state() == "active" {
                                scan_next = props.next_elapse().ok().flatten();
                            }
                            judge_timer(&props, ctx.now)
                        }
                        Err(e) => (Status::Fail, e.to_string()),
                    };
                    checks.push(CheckResult::new(timer, status, message));
                }
            }
        }
    }

    checks.push(check_watchlist_gate(ctx.config, ctx.now, scan_next));
    if systemd_ok && scans_with_alpaca(ctx.systemd) {
        checks.push(check_universe_cache(ctx.config, ctx.now));
    }
    checks.push(check_process(
        ctx.procs,
        systemd_ok.then_some(execution_unit.as_ref()).flatten(),
        systemd_ok,
    ));
    checks.push(check_tmux(ctx.procs));

    let db_path = ctx.config.state_dir.join(DB_FILE);
    let (db_check, db) = check_state_db(&db_path);
    checks.push(db_check);

    let kill = KillSwitch::check(&ctx.config.state_dir, ctx.config.execution.kill_switch);
    checks.push(if kill.engaged {
        CheckResult::new(
            "kill-switch",
            Status::Warn,
            format!("{kill}; no new entries are sent (stops and exits keep working)"),
        )
    } else {
        CheckResult::new(
            "kill-switch",
            Status::Ok,
            format!(
                "off (no {} and execution.kill_switch = false)",
                KillSwitch::path(&ctx.config.state_dir).display()
            ),
        )
    });

    checks.push(check_heartbeat(ctx.config, ctx.now, &db));
    let verdict = last_verdict(&db);
    checks.push(check_protective_stops(ctx.config, ctx.now, &db, &verdict));
    checks.push(check_reconciliation(ctx.config, ctx.now, &verdict));
    Report::new(checks)
}

fn systemd_unavailable(reason: &str) -> CheckResult {
    CheckResult::new(
        "systemd",
        Status::Warn,
        format!(
            "systemd not available: unit checks skipped ({reason}); {EXECUTION_UNIT}, \
             {SCAN_TIMER} and {RESTART_TIMER} were not checked"
        ),
    )
}

/// `; it is disabled, so it will not start at boot: …` when `UnitFileState` says the unit is
/// not started at boot (`disabled`, `masked`…); empty otherwise.
fn not_enabled(p: &UnitProperties) -> String {
    match p.get("UnitFileState") {
        Some(s) if matches!(s, "disabled" | "masked" | "masked-runtime" | "bad") => format!(
            "; it is {s}, so it will not start at boot: systemctl enable {}",
            p.unit
        ),
        _ => String::new(),
    }
}

/// The state of `execution.service`.
pub fn judge_service(p: &UnitProperties) -> (Status, String) {
    let unit = &p.unit;
    let load = p.load_state();
    if load != "loaded" {
        return (
            Status::Fail,
            match load {
                "not-found" => ("not installed (LoadState=not-found): install the avwap units \
                     (NixOS: services.avwap.enable = true)")
                    .to_string(),
                "masked" => format!("masked: systemctl unmask {unit}"),
                other => format!(
                    "cannot be loaded (LoadState={other}): systemctl status {unit} says why"
                ),
            },
        );
    }
    let active = p.active_state();
    let sub = p.sub_state();
    let restarts = p.n_restarts().unwrap_or(0);
    // ExecMainCode is the si_code of the main process's end: 1 exited, 2 killed, 3 dumped
    // core; 0 means the main process never ran (ExecStartPre, e.g. the gate, failed).
    let status_text = match (p.get("ExecMainCode").map(str::trim), p.exec_main_status()) {
        (Some("1"), Some(s)) => format!("main process exit status {s}"),
        (Some("2") | Some("3"), Some(s)) => format!("main process killed by signal {s}"),
        (Some("0"), _) => "the main process never ran: ExecStartPre (the watchlist gate) or                            the start itself failed"
            .to_string(),
        (_, Some(s)) => format!("main process status {s}"),
        _ => "no exit status".to_string(),
    };
    let enabled = not_enabled(p);
    let pid = p
        .main_pid()
        .map(|pid| format!("main PID {pid}"))
        .unwrap_or_else(|| "no main PID".into());
    match (active, sub) {
        ("active", "running") if restarts == 0 => (
            if enabled.is_empty() {
                Status::Ok
            } else {
                Status::Warn
            },
            format!("active (running), {pid}{enabled}"),
        ),
        ("active", "running") => (
            Status::Warn,
            format!(
                "active (running), {pid}, but systemd restarted it {restarts} time(s) after \
                 failures since it was last started: journalctl -u {unit} shows why{enabled}"
            ),
        ),
        ("active", other) => (
            Status::Warn,
            format!("active ({other}), {pid}: expected running{enabled}"),
        ),
        ("activating", "auto-restart") => (
            Status::Fail,
            format!(
                "restarting after a failure (Result={}, {status_text}, {restarts} automatic \
                 restart(s)): journalctl -u {unit} -e shows why",
                p.result()
            ),
        ),
        ("activating", "start-pre") => (
            Status::Warn,
            "starting: the watchlist gate (ExecStartPre) is running".to_string(),
        ),
        ("activating", other) => (
            Status::Warn,
            format!("starting ({other}): waiting for READY=1 after reconciliation"),
        ),
        ("deactivating", other) => (Status::Warn, format!("stopping ({other})")),
        ("reloading", _) => (Status::Warn, "reloading".to_string()),
        ("failed", _) => {
            // systemd 252 keeps the first failure's Result (exit-code, signal) when the start
            // limit stops the restarts; the restart count reaching the burst says it instead.
            let limit_reached = p.result() == "start-limit-hit"
                || p.start_limit_burst()
                    .is_some_and(|burst| burst > 0 && restarts >= burst);
            let why = match p.result() {
                _ if limit_reached => format!(
                    "it failed too often and systemd gave up restarting it: start limit reached \
                     (start-limit-hit, StartLimitBurst={}; last Result={}, {status_text})",
                    p.start_limit_burst()
                        .map_or_else(|| "?".to_string(), |b| b.to_string()),
                    p.result()
                ),
                "exit-code" => format!("it exited with an error (Result=exit-code, {status_text})"),
                "" => format!("Result unknown, {status_text}"),
                other => format!("Result={other}, {status_text}"),
            };
            (
                Status::Fail,
                format!(
                    "failed: {why}; {restarts} automatic restart(s). Read journalctl -u {unit} \
                     -e, fix the cause, then: systemctl reset-failed {unit} && systemctl start \
                     {unit}{enabled}"
                ),
            )
        }
        ("inactive", _) => (
            Status::Fail,
            format!(
                "inactive ({sub}, Result={}): it is not running; start it: systemctl start \
                 {unit}{enabled}",
                p.result()
            ),
        ),
        (other, sub) => (
            Status::Fail,
            format!("unexpected state {other} ({sub}): systemctl status {unit}"),
        ),
    }
}

/// A New York wall-clock rendering with the UTC instant: `Mon 2026-11-30 08:30 EST (13:30 UTC)`.
pub fn ny_and_utc(t: DateTime<Utc>) -> String {
    format!(
        "{} ({} UTC)",
        t.with_timezone(&NEW_YORK).format("%a %Y-%m-%d %H:%M %Z"),
        t.format("%H:%M")
    )
}

/// A timer: installed, active, and its next elapse is the one the `OnCalendar=` its unit
/// declares gives after `now` (evaluated here, [`CalendarSpec`]; an expression that is not
/// evaluated here is reported and trusted). WARN when the schedule has no time zone, does not
/// run within [`TIMER_MAX_GAP_DAYS`], or runs at or after the market open of its session.
pub fn judge_timer(p: &UnitProperties, now: DateTime<Utc>) -> (Status, String) {
    let unit = &p.unit;
    if p.load_state() != "loaded" {
        return (
            Status::Fail,
            format!(
                "not installed (LoadState={}): install the avwap units (NixOS: \
                 services.avwap.enable = true)",
                if p.load_state().is_empty() {
                    "unknown"
                } else {
                    p.load_state()
                }
            ),
        );
    }
    if p.active_state() != "active" {
        return (
            Status::Fail,
            format!(
                "not active (ActiveState={}): nothing will be scheduled; systemctl enable --now {unit}",
                p.active_state()
            ),
        );
    }
    let calendar = p.on_calendar();
    if calendar.is_empty() {
        return (
            Status::Fail,
            format!(
                "active but it declares no OnCalendar= schedule (TimersCalendar is empty): the \
                 avwap units set one (NixOS: services.avwap.schedules); systemctl cat {unit}"
            ),
        );
    }
    let declared = format!("OnCalendar={}", calendar.join("; OnCalendar="));
    let next = match p.next_elapse() {
        Err(e) => return (Status::Fail, format!("cannot read the next elapse: {e}")),
        Ok(None) => {
            return (
                Status::Fail,
                format!(
                    "active but nothing is scheduled (NextElapseUSecRealtime=n/a; {declared}): \
                     systemctl restart {unit}"
                ),
            )
        }
        Ok(Some(next)) => next,
    };
    let specs: Result<Vec<CalendarSpec>, CalendarError> =
        calendar.iter().map(|c| CalendarSpec::parse(c)).collect();
    let mut notes: Vec<(Status, String)> = Vec::new();
    match specs {
        Ok(specs) => {
            let expected = specs.iter().filter_map(|s| s.next_after(now)).min();
            match expected {
                Some(e) if (next - e).num_seconds().abs() <= TIMER_TOLERANCE_SECONDS => {}
                Some(e) => {
                    return (
                        Status::Fail,
                        format!(
                            "next run {}, but its {declared} gives {} after now: systemd's \
                             schedule is out of date (clock or time zone changed?); systemctl \
                             restart {unit}",
                            ny_and_utc(next),
                            ny_and_utc(e)
                        ),
                    )
                }
                None => {
                    return (
                        Status::Fail,
                        format!(
                            "next run {}, but its {declared} gives no run in the next nine years",
                            ny_and_utc(next)
                        ),
                    )
                }
            }
        }
        Err(e) if e.reason.starts_with("no time zone") => notes.push((
            Status::Warn,
            format!(
                "{e}: it runs at that time of the host's zone, not New York's; write the zone, \
                 e.g. Mon..Fri 08:30 America/New_York"
            ),
        )),
        Err(e) => notes.push((
            Status::Ok,
            format!("{e}; the next run is systemd's computation"),
        )),
    }
    let gap = (next - now).num_days();
    if gap > TIMER_MAX_GAP_DAYS {
        notes.push((
            Status::Warn,
            format!(
                "the next run is {gap} days away: the scan and the restart must run every \
                 weekday"
            ),
        ));
    }
    if let Ok(Some(session)) = session(ny_date(next)) {
        if next >= session.open {
            notes.push((
                Status::Warn,
                format!(
                    "it runs at or after the market open ({}) of that session: {}",
                    ny_and_utc(session.open),
                    if unit == SCAN_TIMER {
                        "the watchlist is written after trading starts"
                    } else {
                        "execution is restarted while the market is open"
                    }
                ),
            ));
        }
    }
    let enabled = not_enabled(p);
    if !enabled.is_empty() {
        notes.push((Status::Warn, enabled.trim_start_matches("; ").to_string()));
    }
    let status = notes.iter().map(|n| n.0).max().unwrap_or(Status::Ok);
    let mut message = format!("next run {}, as its {declared} gives", ny_and_utc(next));
    for (_, note) in notes {
        message.push_str("; ");
        message.push_str(&note);
    }
    (status, message)
}

/// The gate's own verdict and message. A stale watchlist is only a WARN before today's scan
/// (`scan_next`, the installed scan.timer's next run, when it is today; without it the default
/// [`SCAN_TIME`]) or on a day without a session.
pub fn check_watchlist_gate(
    config: &Config,
    now: DateTime<Utc>,
    scan_next: Option<DateTime<Utc>>,
) -> CheckResult {
    let verdict = check_watchlist(&config.watchlist_path(), now);
    let message = verdict.message();
    let status = match &verdict {
        GateVerdict::Fresh { .. } => Status::Ok,
        GateVerdict::Stale { .. } | GateVerdict::WrongSession { .. } => {
            let today = ny_date(now);
            let scan_at = scan_next.unwrap_or_else(|| {
                ny_instant(
                    today,
                    NaiveTime::from_hms_opt(SCAN_TIME.0, SCAN_TIME.1, 0).unwrap_or(NaiveTime::MIN),
                )
            });
            match is_session(today) {
                Ok(false) => {
                    return CheckResult::new(
                        "watchlist",
                        Status::Warn,
                        format!(
                            "{message} (today is not an NYSE session, so no new watchlist is due)"
                        ),
                    )
                }
                Ok(true) if now < scan_at && ny_date(scan_at) == today => {
                    return CheckResult::new(
                        "watchlist",
                        Status::Warn,
                        format!(
                            "{message} (today's scan runs at {} New York)",
                            scan_at.with_timezone(&NEW_YORK).format("%H:%M")
                        ),
                    )
                }
                _ => Status::Fail,
            }
        }
        _ => Status::Fail,
    };
    CheckResult::new("watchlist", status, message)
}

/// Whether the installed `scan.service` runs `avwap-scan --provider alpaca` (the only scan that
/// loads the universe, and so the only one with a universe cache).
pub fn scans_with_alpaca(systemd: &dyn SystemdQuery) -> bool {
    let Ok(props) = systemd.show(SCAN_UNIT, SCAN_SERVICE_PROPERTIES) else {
        return false;
    };
    props.load_state() == "loaded"
        && props.exec_start_argv().iter().any(|argv| {
            let scan = argv
                .first()
                .is_some_and(|p| p.rsplit('/').next() == Some("avwap-scan"));
            let alpaca = argv
                .windows(2)
                .any(|w| w[0] == "--provider" && w[1] == "alpaca")
                || argv.iter().any(|a| a == "--provider=alpaca");
            scan && alpaca
        })
}

/// The universe cache of `--provider alpaca` (`<state_dir>/universe_cache.csv`, read and
/// validated as the scan would, nothing written): OK with its members and age; WARN when
/// missing (no fetch of `scan.universe.source` has succeeded yet), unusable, or older than
/// [`UNIVERSE_CACHE_WARN_DAYS`]; FAIL older than [`UNIVERSE_CACHE_FAIL_DAYS`] (the source has
/// failed for a month and the scan runs on that copy). The predecessor's deploy script
/// checked that its holdings cache existed.
pub fn check_universe_cache(config: &Config, now: DateTime<Utc>) -> CheckResult {
    const NAME: &str = "universe-cache";
    let mut opts = LoadOptions::new(None, &config.state_dir);
    opts.min_members = config.scan.universe.min_members;
    let fallback = "if scan.universe.source fails, the scan falls back to Alpaca's asset list \
                    (not the Russell 3000)";
    let universe = match read_cache(&opts, now) {
        Ok(u) => u,
        Err(CacheError::Missing(path)) => {
            return CheckResult::new(
                NAME,
                Status::Warn,
                format!(
                    "no universe cache at {} yet: the next scan fetches scan.universe.source and \
                     caches it; until then {fallback}",
                    path.display()
                ),
            )
        }
        Err(CacheError::Unusable(why)) => {
            return CheckResult::new(
                NAME,
                Status::Warn,
                format!(
                    "{why}: the scan cannot fall back to it; the next successful fetch of \
                     scan.universe.source replaces it, until then {fallback}"
                ),
            )
        }
    };
    let (fetched_at, origin) = match &universe.source {
        UniverseSource::Cache {
            fetched_at, origin, ..
        } => (*fetched_at, origin.as_str()),
        _ => (now, "unknown origin"),
    };
    let age = (now - fetched_at).num_seconds();
    let as_of = universe
        .as_of
        .map(|d| format!(", holdings as of {d}"))
        .unwrap_or_default();
    let text = format!(
        "{}: {} members{as_of}, fetched {} ago ({}) from {origin}",
        opts.cache_path().display(),
        universe.len(),
        human_age(age),
        ny_and_utc(fetched_at)
    );
    if age > UNIVERSE_CACHE_WARN_DAYS * 86_400 {
        let status = if age > UNIVERSE_CACHE_FAIL_DAYS * 86_400 {
            Status::Fail
        } else {
            Status::Warn
        };
        return CheckResult::new(
            NAME,
            status,
            format!(
                "{text}: older than {UNIVERSE_CACHE_WARN_DAYS} days, so scan.universe.source has \
                 not been fetched since and the scans use this copy; journalctl -u {SCAN_UNIT} \
                 and scan.json's universe_source say why (FAIL after \
                 {UNIVERSE_CACHE_FAIL_DAYS} days)"
            ),
        );
    }
    CheckResult::new(NAME, Status::Ok, text)
}

/// Exactly one `avwap-execution` process, and (with systemd) it is the unit's main process.
pub fn check_process(
    procs: &ProcTree,
    unit: Option<&UnitProperties>,
    systemd_available: bool,
) -> CheckResult {
    const NAME: &str = "execution-process";
    let found = match procs.find_by_exe_name(EXECUTION_BINARY) {
        Ok(f) => f,
        Err(e) => {
            return CheckResult::new(
                NAME,
                Status::Warn,
                format!("cannot list processes in {}: {e}", procs.root().display()),
            )
        }
    };
    let list = |ps: &[&ProcessInfo]| {
        ps.iter()
            .map(|p| p.describe())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let all: Vec<&ProcessInfo> = found.iter().collect();
    let Some(unit) = unit else {
        let status = match found.len() {
            0 if !systemd_available => Status::Warn,
            1 => Status::Ok,
            _ => Status::Fail,
        };
        let message = match found.len() {
            0 => format!("no {EXECUTION_BINARY} process is running"),
            1 => format!(
                "one {EXECUTION_BINARY} process: {} (not matched to {EXECUTION_UNIT}: systemd \
                 not available)",
                list(&all)
            ),
            n => format!(
                "{n} {EXECUTION_BINARY} processes: {}; exactly one must run: stop the extra ones",
                list(&all)
            ),
        };
        return CheckResult::new(NAME, status, message);
    };
    let Some(main_pid) = unit.main_pid() else {
        return if found.is_empty() {
            CheckResult::new(
                NAME,
                Status::Fail,
                format!("no {EXECUTION_BINARY} process is running ({EXECUTION_UNIT} has no main process)"),
            )
        } else {
            CheckResult::new(
                NAME,
                Status::Fail,
                format!(
                    "{EXECUTION_UNIT} is not running, yet {} {EXECUTION_BINARY} process(es) are: \
                     {}; started by hand? stop them (kill <pid>) and start the service",
                    found.len(),
                    list(&all)
                ),
            )
        };
    };
    let main = found.iter().find(|p| p.pid == main_pid);
    let others: Vec<&ProcessInfo> = found.iter().filter(|p| p.pid != main_pid).collect();
    match (main, others.is_empty()) {
        (Some(main), true) => CheckResult::new(
            NAME,
            Status::Ok,
            format!(
                "one {EXECUTION_BINARY} process: {}, the main process of {EXECUTION_UNIT}",
                main.describe()
            ),
        ),
        (Some(main), false) => CheckResult::new(
            NAME,
            Status::Fail,
            format!(
                "{} {EXECUTION_BINARY} processes: {} is {EXECUTION_UNIT}'s; also {}: only the \
                 one systemd started may run; stop the others (kill {})",
                found.len(),
                main.describe(),
                list(&others),
                others
                    .iter()
                    .map(|p| p.pid.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ),
        (None, _) => {
            let main_text = match procs.process(main_pid) {
                Some(p) => format!(
                    "its main PID {main_pid} runs {}",
                    p.name().unwrap_or_else(|| "an unknown executable".into())
                ),
                None => format!("its main PID {main_pid} does not exist"),
            };
            let rest = if found.is_empty() {
                format!("no {EXECUTION_BINARY} process is running")
            } else {
                format!("{EXECUTION_BINARY} process(es) outside it: {}", list(&all))
            };
            CheckResult::new(
                NAME,
                Status::Fail,
                format!("{EXECUTION_UNIT} is not running {EXECUTION_BINARY}: {main_text}; {rest}"),
            )
        }
    }
}

/// A tmux process: the server (`tmux: server` once started) or a client. The executable's
/// name decides when readable, else `comm` (another user's process).
pub fn is_tmux(p: &ProcessInfo) -> bool {
    p.runs("tmux") || p.comm.as_deref().is_some_and(|c| c.starts_with("tmux: "))
}

/// What avwap program `p` runs, if any: one of [`SYSTEMD_ONLY_BINARIES`] (by executable, see
/// [`ProcessInfo::runs`]) or the predecessor's entry point (see [`predecessor_entry`]).
pub fn avwap_program(p: &ProcessInfo) -> Option<String> {
    SYSTEMD_ONLY_BINARIES
        .iter()
        .find(|b| p.runs(b))
        .map(|b| b.to_string())
        .or_else(|| predecessor_entry(&p.cmdline))
}

/// The predecessor's entry point when `argv` is Python running it: `python … -m
/// execution_v2.execution_main …` or `python … <dir>/run_scan.py …` (any `python*`
/// interpreter, options before the module or script skipped). A script that merely has the
/// name as an argument (`vim run_scan.py`, `python3 -c …`) is not one.
pub fn predecessor_entry(argv: &[String]) -> Option<String> {
    let (program, args) = argv.split_first()?;
    let file_name = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    if !file_name(program).starts_with("python") {
        return None;
    }
    let module = |m: &str| {
        PREDECESSOR_MODULES
            .contains(&m)
            .then(|| format!("python -m {m}"))
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let Some(flags) = arg.strip_prefix('-') else {
            let name = file_name(arg);
            return PREDECESSOR_SCRIPTS
                .contains(&name.as_str())
                .then(|| format!("python {arg}"));
        };
        if let Some(long) = flags.strip_prefix('-') {
            if long == "check-hash-based-pycs" {
                args.next();
            }
            continue;
        }
        // `-` alone: the program comes from stdin.
        if flags.is_empty() {
            return None;
        }
        // A cluster of short options (`-uB`); `-c` ends it with code, `-m` with a module,
        // `-W`/`-X` with a value (attached, or the next argument).
        for (i, flag) in flags.char_indices() {
            let rest = &flags[i + flag.len_utf8()..];
            match flag {
                'c' => return None,
                'm' if rest.is_empty() => return args.next().and_then(|m| module(m)),
                'm' => return module(rest),
                'W' | 'X' => {
                    if rest.is_empty() {
                        args.next();
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    None
}

/// No avwap program inside tmux: the processes below a tmux server (the panes' shells and what
/// they started), of any user, read from the process table (see [`judge_tmux`]).
pub fn check_tmux(procs: &ProcTree) -> CheckResult {
    match procs.snapshot() {
        Ok(snapshot) => judge_tmux(&snapshot),
        Err(e) => CheckResult::new(
            "tmux",
            Status::Warn,
            format!("cannot list processes in {}: {e}", procs.root().display()),
        ),
    }
}

/// FAIL when a process below a tmux process runs avwap ([`avwap_program`]); a tmux session
/// running anything else is fine (an informational OK). WARN when the table is incomplete
/// (another user's processes hidden) and nothing was found.
pub fn judge_tmux(snapshot: &Snapshot) -> CheckResult {
    const NAME: &str = "tmux";
    let uid = |p: &ProcessInfo| {
        p.uid
            .map_or_else(|| "uid ?".to_string(), |u| format!("uid {u}"))
    };
    let servers: Vec<&ProcessInfo> = snapshot
        .iter()
        .filter(|p| is_tmux(p) && p.comm.as_deref() != Some("tmux: client"))
        .collect();
    let mut inside = 0usize;
    let mut offenders: Vec<(&ProcessInfo, &ProcessInfo, String)> = Vec::new();
    for p in snapshot.iter().filter(|p| !is_tmux(p)) {
        let Some(server) = snapshot.nearest_ancestor(p, is_tmux) else {
            continue;
        };
        inside += 1;
        if let Some(program) = avwap_program(p) {
            offenders.push((p, server, program));
        }
    }
    if !offenders.is_empty() {
        let listed = offenders
            .iter()
            .map(|(p, server, program)| {
                format!(
                    "pid {} {program} ({}, in the tmux of pid {} {})",
                    p.pid,
                    uid(p),
                    server.pid,
                    uid(server)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let pids = offenders
            .iter()
            .map(|(p, _, _)| p.pid.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        return CheckResult::new(
            NAME,
            Status::Fail,
            format!(
                "{} avwap process(es) run inside tmux: {listed}; avwap runs under systemd only: \
                 stop them (kill {pids}, as root or their user) and let the units run them \
                 (systemctl start scan.service, systemctl start {EXECUTION_UNIT})",
                offenders.len()
            ),
        );
    }
    let hidden = if snapshot.sees_everything() {
        None
    } else {
        Some(
            "other users' processes are hidden from this user (pid 1 or its parent is not \
             readable: /proc mounted with hidepid=?): run avwap-check as root to see every \
             tmux session",
        )
    };
    let seen = if servers.is_empty() {
        "no tmux server running".to_string()
    } else {
        format!(
            "tmux server(s) {}: none of the {inside} process(es) in their sessions runs avwap \
             (sessions running other programs are fine)",
            servers
                .iter()
                .map(|s| format!("pid {} ({})", s.pid, uid(s)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    match hidden {
        None => CheckResult::new(NAME, Status::Ok, seen),
        Some(why) => CheckResult::new(NAME, Status::Warn, format!("{seen}; but {why}")),
    }
}

/// Why the state database could not be used for the checks that read it.
pub enum DbAccess {
    Open(StateDb),
    Unavailable { reason: String },
}

impl fmt::Debug for DbAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbAccess::Open(db) => write!(f, "Open({})", db.path().display()),
            DbAccess::Unavailable { reason } => write!(f, "Unavailable({reason:?})"),
        }
    }
}

/// `PRAGMA quick_check` on a read-only connection; then, if the schema is this build's, the
/// database through [`StateDb`] for the heartbeat and positions.
pub fn check_state_db(path: &Path) -> (CheckResult, DbAccess) {
    const NAME: &str = "state-db";
    // Only "not found" means no database: a directory this user may not enter is not empty.
    if std::fs::metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        let reason = format!("no state database yet ({})", path.display());
        return (
            CheckResult::new(
                NAME,
                Status::Warn,
                format!("{reason}: avwap-execution creates it when it first starts"),
            ),
            DbAccess::Unavailable { reason },
        );
    }
    let fail = |message: String| {
        (
            CheckResult::new(NAME, Status::Fail, message.clone()),
            DbAccess::Unavailable { reason: message },
        )
    };
    // Read-only, creating nothing: the service's group may read, never write.
    let db = match StateDb::open_read_only(path) {
        Ok(db) => db,
        Err(e) => return fail(e.to_string()),
    };
    let rows = match db.quick_check() {
        Ok(r) => r,
        Err(e) => {
            return fail(format!(
                "PRAGMA quick_check on {} failed: {e}; is it an SQLite database?",
                path.display()
            ))
        }
    };
    if rows != ["ok"] {
        let shown: Vec<&str> = rows.iter().take(3).map(String::as_str).collect();
        return fail(format!(
            "PRAGMA quick_check on {} found {} problem(s): {}; stop {EXECUTION_UNIT}, keep a \
             copy of the file (it holds the order journal) and restore it from a backup",
            path.display(),
            rows.len(),
            shown.join("; ")
        ));
    }
    let version = match db.schema_version() {
        Ok(v) => v,
        Err(e) => {
            return fail(format!(
                "cannot read the schema version of {}: {e}",
                path.display()
            ))
        }
    };
    let ok = format!(
        "PRAGMA quick_check: ok ({}, schema version {version})",
        path.display()
    );
    if version != SCHEMA_VERSION {
        let (status, why) = if version > SCHEMA_VERSION {
            (
                Status::Fail,
                format!(
                    "schema version {version} is newer than this avwap's {SCHEMA_VERSION}: \
                     avwap-check is older than the service that wrote it; use the deployed avwap-check"
                ),
            )
        } else {
            (
                Status::Warn,
                format!(
                    "schema version {version} is older than this avwap's {SCHEMA_VERSION}: \
                     {EXECUTION_UNIT} migrates it when it restarts"
                ),
            )
        };
        return (
            CheckResult::new(NAME, status, format!("{ok}; but {why}")),
            DbAccess::Unavailable { reason: why },
        );
    }
    (CheckResult::new(NAME, Status::Ok, ok), DbAccess::Open(db))
}

fn human_age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} days", s / 86_400),
    }
}

/// How old a record of the execution loop may be now: [`HEARTBEAT_INTERVALS`] poll intervals
/// of the market's current state; too old fails while the market is open, warns when closed.
struct Freshness {
    market_open: bool,
    poll: u64,
    limit: i64,
}

impl Freshness {
    fn at(config: &Config, now: DateTime<Utc>) -> Result<Freshness, String> {
        let market_open = match current_or_next_session(now) {
            Ok(s) => s.open <= now && now < s.close,
            Err(e) => return Err(format!("cannot tell whether the market is open: {e}")),
        };
        let poll = if market_open {
            config.execution.poll_seconds_open
        } else {
            config.execution.poll_seconds_closed
        };
        let limit =
            i64::try_from(poll.saturating_mul(HEARTBEAT_INTERVALS).max(1)).unwrap_or(i64::MAX);
        Ok(Freshness {
            market_open,
            poll,
            limit,
        })
    }

    fn market(&self) -> &'static str {
        if self.market_open {
            "market open"
        } else {
            "market closed"
        }
    }

    fn key(&self) -> &'static str {
        if self.market_open {
            "poll_seconds_open"
        } else {
            "poll_seconds_closed"
        }
    }

    /// Missing or stale: a failure while the market is open, a warning when it is closed.
    fn late(&self) -> Status {
        if self.market_open {
            Status::Fail
        } else {
            Status::Warn
        }
    }
}

/// The execution loop's heartbeat: fresh while the market is open.
pub fn check_heartbeat(config: &Config, now: DateTime<Utc>, db: &DbAccess) -> CheckResult {
    const NAME: &str = "heartbeat";
    let fresh = match Freshness::at(config, now) {
        Ok(f) => f,
        Err(e) => return CheckResult::new(NAME, Status::Warn, e),
    };
    let (market, poll, limit, key) = (fresh.market(), fresh.poll, fresh.limit, fresh.key());
    let missing_status = fresh.late();
    let db = match db {
        DbAccess::Open(db) => db,
        DbAccess::Unavailable { reason } => {
            return CheckResult::new(
                NAME,
                missing_status,
                format!("not checked ({market}): {reason}"),
            )
        }
    };
    match db.last_heartbeat() {
        Err(e) => CheckResult::new(
            NAME,
            Status::Fail,
            format!("cannot read the heartbeat: {e}"),
        ),
        Ok(None) => CheckResult::new(
            NAME,
            missing_status,
            format!("no heartbeat recorded ({market}): avwap-execution has not completed a cycle"),
        ),
        Ok(Some(at)) => {
            let age = (now - at).num_seconds();
            let at_text = ny_and_utc(at);
            if age < -TIMER_TOLERANCE_SECONDS {
                CheckResult::new(
                    NAME,
                    Status::Warn,
                    format!("last heartbeat at {at_text} is in the future: check the host clock"),
                )
            } else if age > limit {
                CheckResult::new(
                    NAME,
                    missing_status,
                    format!(
                        "last heartbeat {} ago ({at_text}); {market}, the loop beats every {poll} s \
                         (limit {HEARTBEAT_INTERVALS} × execution.{key} = {limit} s): the service \
                         is down or stuck; journalctl -u {EXECUTION_UNIT} -e",
                        human_age(age)
                    ),
                )
            } else {
                CheckResult::new(
                    NAME,
                    Status::Ok,
                    format!(
                        "last heartbeat {} ago ({market}, limit {limit} s)",
                        human_age(age)
                    ),
                )
            }
        }
    }
}

/// The last reconciliation verdict the service recorded: `Ok(None)` when none was, `Err` with
/// the reason when the database cannot tell.
pub fn last_verdict(db: &DbAccess) -> Result<Option<Verdict>, String> {
    match db {
        DbAccess::Open(db) => db
            .last_verdict()
            .map_err(|e| format!("cannot read the reconciliation verdict: {e}")),
        DbAccess::Unavailable { reason } => Err(reason.clone()),
    }
}

/// Why the broker's last report does not confirm that every owned position is covered by a
/// working stop for its full quantity; `None` when it does.
fn unconfirmed_by_broker(
    config: &Config,
    now: DateTime<Utc>,
    verdict: &Result<Option<Verdict>, String>,
    owned: &[crate::execution::db::OwnedPosition],
) -> Option<String> {
    let verdict = match verdict {
        Err(e) => return Some(e.clone()),
        Ok(None) => return Some("no reconciliation verdict is recorded".into()),
        Ok(Some(v)) => v,
    };
    let age = (now - verdict.at).num_seconds();
    match Freshness::at(config, now) {
        Ok(f) if age <= f.limit => {}
        Ok(_) => return Some(format!("the broker was last read {} ago", human_age(age))),
        Err(e) => return Some(e),
    }
    if !verdict.broker_positions_read || !verdict.open_orders_read {
        return Some("the last cycle could not read the broker's positions or orders".into());
    }
    let doubtful: Vec<String> = owned
        .iter()
        .filter_map(|p| {
            match verdict.rows.iter().find(|r| r.symbol == p.symbol) {
                Some(r) if r.status == RowStatus::Ok && !r.stops_cover() => Some(format!(
                    "{} is partly covered by a market sell in progress, not by its stop",
                    p.symbol
                )),
                Some(r) if r.status == RowStatus::Ok && r.broker_qty == Some(p.qty) => None,
                Some(r) => Some(format!("{} is {}", p.symbol, r.status.as_str())),
                // Owned after the verdict was taken (a fill recorded since): not yet compared.
                None => Some(format!("{} is not in the last verdict", p.symbol)),
            }
        })
        .collect();
    (!doubtful.is_empty()).then(|| doubtful.join(", "))
}

/// Every owned position has a protective stop that is working at the broker as the journal
/// records it; "each with a working protective stop" is said only when the broker's own report
/// (a fresh `verdict`) confirms it.
pub fn check_protective_stops(
    config: &Config,
    now: DateTime<Utc>,
    db: &DbAccess,
    verdict: &Result<Option<Verdict>, String>,
) -> CheckResult {
    const NAME: &str = "protective-stops";
    let db = match db {
        DbAccess::Open(db) => db,
        DbAccess::Unavailable { reason } => {
            return CheckResult::new(NAME, Status::Warn, format!("not checked: {reason}"))
        }
    };
    let positions = match db.open_positions() {
        Ok(p) => p,
        Err(e) => {
            return CheckResult::new(NAME, Status::Fail, format!("cannot read positions: {e}"))
        }
    };
    if positions.is_empty() {
        return CheckResult::new(NAME, Status::Ok, "no owned positions");
    }
    let mut unprotected = Vec::new();
    let mut pending = Vec::new();
    for position in &positions {
        let symbol = &position.symbol;
        let stop = match db.stop(symbol) {
            Ok(s) => s,
            Err(e) => {
                unprotected.push(format!("{symbol} (cannot read its stop: {e})"));
                continue;
            }
        };
        let Some(stop) = stop else {
            unprotected.push(format!("{symbol} ({} shares, no stop)", position.qty));
            continue;
        };
        match db.order(&stop.client_order_id) {
            Ok(Some(row)) if row.order.status.is_open() => {}
            Ok(Some(row)) => {
                // A replaced stop is followed once to its replacement (by broker order id).
                let replacement_open = row.order.replaced_by.as_deref().is_some_and(|id| {
                    db.orders_for_symbol(symbol).is_ok_and(|orders| {
                        orders
                            .iter()
                            .any(|o| o.order.id == id && o.order.status.is_open())
                    })
                });
                if replacement_open {
                    continue;
                }
                unprotected.push(format!(
                    "{symbol} (stop {} is {})",
                    stop.client_order_id,
                    row.order.status.as_str()
                ));
            }
            Ok(None) => pending.push(format!(
                "{symbol} (stop {} not yet acknowledged by the broker)",
                stop.client_order_id
            )),
            Err(e) => unprotected.push(format!("{symbol} (cannot read stop order: {e})")),
        }
    }
    if !unprotected.is_empty() {
        return CheckResult::new(
            NAME,
            Status::Fail,
            format!(
                "{} of {} owned position(s) without a working protective stop: {}; \
                 avwap-execution places one at its next cycle; if it is not running, place \
                 the stop at the broker by hand",
                unprotected.len(),
                positions.len(),
                unprotected.join(", ")
            ),
        );
    }
    if !pending.is_empty() {
        return CheckResult::new(
            NAME,
            Status::Warn,
            format!(
                "{} owned position(s); stop not yet confirmed for: {}",
                positions.len(),
                pending.join(", ")
            ),
        );
    }
    // The journal's part is fine; the broker's part is broker-reconciliation's to judge.
    let message = match unconfirmed_by_broker(config, now, verdict, &positions) {
        None => format!(
            "{} owned position(s), each with a working protective stop (confirmed by the \
             broker's report)",
            positions.len()
        ),
        Some(why) => format!(
            "{} owned position(s), each with a stop the journal records as working; not \
             confirmed by the broker: {why} (see broker-reconciliation)",
            positions.len()
        ),
    };
    CheckResult::new(NAME, Status::Ok, message)
}

/// The service's last reconciliation verdict: what the broker reported against the journal.
pub fn check_reconciliation(
    config: &Config,
    now: DateTime<Utc>,
    verdict: &Result<Option<Verdict>, String>,
) -> CheckResult {
    const NAME: &str = "broker-reconciliation";
    let fresh = match Freshness::at(config, now) {
        Ok(f) => f,
        Err(e) => return CheckResult::new(NAME, Status::Warn, e),
    };
    let market = fresh.market();
    let verdict = match verdict {
        Err(reason) => {
            return CheckResult::new(NAME, Status::Warn, format!("not checked: {reason}"))
        }
        Ok(None) => {
            return CheckResult::new(
                NAME,
                fresh.late(),
                format!(
                    "no reconciliation verdict recorded ({market}): avwap-execution has not \
                     completed a cycle with this version, so nothing says the broker's \
                     positions are protected; journalctl -u {EXECUTION_UNIT} -e"
                ),
            )
        }
        Ok(Some(v)) => v,
    };
    let mut findings: Vec<(Status, String)> = Vec::new();
    let age = (now - verdict.at).num_seconds();
    let when = format!("{} ago, {}", human_age(age), ny_and_utc(verdict.at));
    if age < -TIMER_TOLERANCE_SECONDS {
        findings.push((
            Status::Warn,
            format!(
                "the last verdict ({}) is in the future: check the host clock",
                ny_and_utc(verdict.at)
            ),
        ));
    } else if age > fresh.limit {
        findings.push((
            fresh.late(),
            format!(
                "the broker was last compared with the journal {when}; {market}, limit \
                 {HEARTBEAT_INTERVALS} × execution.{} = {} s: the service is down or stuck \
                 (journalctl -u {EXECUTION_UNIT} -e); the rest is as of then",
                fresh.key(),
                fresh.limit
            ),
        ));
    }
    let qty = |q: Option<rust_decimal::Decimal>| q.map_or("?".to_string(), |q| q.to_string());
    let mut mismatch_fix = false;
    for row in verdict.problems() {
        let symbol = &row.symbol;
        let since = row
            .first_seen
            .map(|t| format!(" (first seen {})", ny_and_utc(t)))
            .unwrap_or_default();
        match row.status {
            RowStatus::Uncovered => findings.push((
                Status::Fail,
                format!(
                    "{symbol}: the broker holds {} shares but its working sell stops (and \
                     market sells) cover {}{since}: place a stop for the rest at the broker now \
                     unless avwap-execution does at its next cycle",
                    qty(row.broker_qty),
                    qty(row.covered_qty())
                ),
            )),
            RowStatus::Mismatch if row.persists(verdict.at) => {
                mismatch_fix = true;
                findings.push((
                    Status::Fail,
                    format!(
                        "{symbol}: the broker holds {}, the journal owns {}{since}",
                        qty(row.broker_qty),
                        row.owned_qty
                    ),
                ));
            }
            RowStatus::Mismatch => findings.push((
                Status::Warn,
                format!(
                    "{symbol}: the broker holds {}, the journal owns {} in the last cycle only \
                     (a fill between the reads?); judged again at the next cycle",
                    qty(row.broker_qty),
                    row.owned_qty
                ),
            )),
            RowStatus::UnknownOrder => findings.push((
                Status::Warn,
                format!(
                    "{symbol}: an order's outcome is unknown{since}; avwap-execution looks it up \
                     by its client order id before sending anything more for it"
                ),
            )),
            // Said once below, for the whole read.
            RowStatus::Unread | RowStatus::Ok => {}
        }
    }
    if let Some(e) = &verdict.positions_error {
        findings.push((
            Status::Warn,
            format!(
                "the last cycle could not read the broker's positions ({e}): nothing was \
                 compared"
            ),
        ));
    } else if !verdict.broker_positions_read {
        findings.push((
            Status::Warn,
            "the last cycle could not read the broker's positions".into(),
        ));
    }
    if let Some(e) = &verdict.open_orders_error {
        findings.push((
            Status::Warn,
            format!(
                "the last cycle could not read the broker's open orders ({e}): no stop was \
                 confirmed"
            ),
        ));
    } else if !verdict.open_orders_read {
        findings.push((
            Status::Warn,
            "the last cycle could not read the broker's open orders".into(),
        ));
    }
    if findings.is_empty() {
        let held = verdict
            .rows
            .iter()
            .filter(|r| r.broker_qty.is_some_and(|q| !q.is_zero()))
            .count();
        // A trim between its stop resize and its fill: covered, but not by the stop alone.
        let selling: Vec<&str> = verdict
            .rows
            .iter()
            .filter(|r| r.broker_qty.is_some_and(|q| !q.is_zero()) && !r.stops_cover())
            .map(|r| r.symbol.as_str())
            .collect();
        let selling = if selling.is_empty() {
            String::new()
        } else {
            format!(
                " ({} partly by a market sell in progress)",
                selling.join(", ")
            )
        };
        let message = match held {
            0 => format!("no positions at the broker and none owned in the journal (cycle {when})"),
            1 => format!(
                "1 position at the broker, covered by a working stop for its full \
                 quantity{selling}; matches the journal (cycle {when})"
            ),
            n => format!(
                "{n} positions at the broker, each covered by a working stop for its full \
                 quantity{selling}; matches the journal (cycle {when})"
            ),
        };
        return CheckResult::new(NAME, Status::Ok, message);
    }
    // The worst first, so the line starts with what to act on.
    findings.sort_by_key(|f| std::cmp::Reverse(f.0));
    let status = findings[0].0;
    let mut message = findings
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join("; ");
    if mismatch_fix {
        message.push_str(&format!(
            ". The journal does not match the broker in two consecutive cycles (execution \
             database lost or restored from an old copy?): engage the kill switch (touch {}) \
             so nothing more is bought, then reconcile the positions by hand against \
             avwap-execution report",
            KillSwitch::path(&config.state_dir).display()
        ));
    }
    CheckResult::new(NAME, status, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::systemd::FixtureSystemd;
    use chrono::Duration;
    use std::path::PathBuf;

    const REC: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/systemd/recorded"
    );

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn recorded(unit: &str, path: &str) -> UnitProperties {
        let text = std::fs::read_to_string(format!("{REC}/{path}")).unwrap();
        UnitProperties::parse(unit, &text)
    }

    #[test]
    fn recorded_service_states() {
        let now = utc("2026-11-29T02:53:00Z");
        let _ = now;
        let (s, m) = judge_service(&recorded(
            EXECUTION_UNIT,
            "run2/healthy/show-execution.service.txt",
        ));
        assert_eq!(s, Status::Ok, "{m}");
        // Run 1 recorded the unit disabled: it would not come back after a reboot.
        let (s, m) = judge_service(&recorded(
            EXECUTION_UNIT,
            "run1/healthy/show-execution.service.txt",
        ));
        assert_eq!(s, Status::Warn, "{m}");
        assert!(m.contains("disabled"), "{m}");
        let (s, m) = judge_service(&recorded(
            EXECUTION_UNIT,
            "run2/stopped/show-execution.service.txt",
        ));
        assert_eq!(s, Status::Fail);
        assert!(m.contains("systemctl start execution.service"), "{m}");
        let (s, m) = judge_service(&recorded(
            EXECUTION_UNIT,
            "run2/start-limit-hit/show-execution.service.txt",
        ));
        assert_eq!(s, Status::Fail);
        assert!(m.contains("reset-failed"), "{m}");
        let (s, m) = judge_service(&recorded(
            EXECUTION_UNIT,
            "run1/crash-auto-restart/show-execution.service.txt",
        ));
        assert_eq!(s, Status::Fail);
        assert!(m.contains("2 automatic restart"), "{m}");
        let (s, m) = judge_service(&recorded(
            "avwap-nonexistent.service",
            "run1/show-not-found.service.txt",
        ));
        assert_eq!(s, Status::Fail);
        assert!(m.contains("not installed"), "{m}");
        // Synthetic: running but restarted after crashes; killed by a signal.
        let p = UnitProperties::parse(
            EXECUTION_UNIT,
            "LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=9\nNRestarts=2\nUnitFileState=enabled\n",
        );
        assert_eq!(judge_service(&p).0, Status::Warn);
        let p = UnitProperties::parse(
            EXECUTION_UNIT,
            "LoadState=loaded\nActiveState=failed\nSubState=failed\nResult=signal\nExecMainCode=2\nExecMainStatus=9\n",
        );
        let (s, m) = judge_service(&p);
        assert_eq!(s, Status::Fail);
        assert!(m.contains("killed by signal 9"), "{m}");
        assert!(!m.contains("start limit"), "{m}");
        // systemd 252 at the start limit: Result stays "signal", the count reaches the burst.
        let p = UnitProperties::parse(
            EXECUTION_UNIT,
            "LoadState=loaded\nActiveState=failed\nSubState=failed\nResult=signal\nExecMainCode=2\nExecMainStatus=9\nNRestarts=5\nStartLimitBurst=5\n",
        );
        let (s, m) = judge_service(&p);
        assert_eq!(s, Status::Fail);
        assert!(m.contains("start limit reached"), "{m}");
        assert!(m.contains("5 automatic restart(s)"), "{m}");
        assert!(m.contains("killed by signal 9"), "{m}");
        let p = UnitProperties::parse(
            EXECUTION_UNIT,
            "LoadState=loaded\nActiveState=failed\nSubState=failed\nResult=exit-code\nExecMainCode=1\nExecMainStatus=10\nNRestarts=0\nStartLimitBurst=5\n",
        );
        let (_, m) = judge_service(&p);
        assert!(
            !m.contains("start limit"),
            "exit 10 is never restarted: {m}"
        );
    }

    #[test]
    fn recorded_timer_states() {
        let now = utc("2026-11-29T02:53:00Z");
        let (s, m) = judge_timer(
            &recorded(SCAN_TIMER, "run2/healthy/show-scan.timer.txt"),
            now,
        );
        assert_eq!(s, Status::Ok, "{m}");
        assert_eq!(
            m,
            "next run Mon 2026-11-30 08:30 EST (13:30 UTC), as its OnCalendar=Mon..Fri *-*-* \
             08:30:00 America/New_York gives"
        );
        let (s, m) = judge_timer(
            &recorded(
                RESTART_TIMER,
                "run2/healthy/show-execution-restart.timer.txt",
            ),
            now,
        );
        assert_eq!(s, Status::Ok, "{m}");
        // A drop-in moved the scan to 09:30: its own schedule, but at the open of the session.
        let (s, m) = judge_timer(
            &recorded(SCAN_TIMER, "run2/wrong-schedule/show-scan.timer.txt"),
            now,
        );
        assert_eq!(s, Status::Warn, "{m}");
        assert!(
            m.starts_with(
                "next run Mon 2026-11-30 09:30 EST (14:30 UTC), as its OnCalendar=Mon..Fri \
                 *-*-* 09:30:00 America/New_York gives; it runs at or after the market open \
                 (Mon 2026-11-30 09:30 EST (14:30 UTC)) of that session: the watchlist is \
                 written after trading starts"
            ),
            "{m}"
        );
        // A day later the same recording is stale: computed against now, not matched as text.
        let (s, m) = judge_timer(
            &recorded(SCAN_TIMER, "run2/healthy/show-scan.timer.txt"),
            utc("2026-11-30T14:00:00Z"),
        );
        assert_eq!(s, Status::Fail, "{m}");
        assert!(
            m.contains("gives Tue 2026-12-01 08:30 EST (13:30 UTC) after now"),
            "{m}"
        );
        let (s, m) = judge_timer(&recorded(RESTART_TIMER, "run1/show-timer-stopped.txt"), now);
        assert_eq!(s, Status::Fail);
        assert!(m.contains("not active"), "{m}");
        let (s, m) = judge_timer(
            &recorded("avwap-nonexistent.timer", "run1/show-not-found.timer.txt"),
            now,
        );
        assert_eq!(s, Status::Fail);
        assert!(m.contains("not installed"), "{m}");
        // systemctl run without TZ=UTC on a New York host: refused, not misread.
        let (s, m) = judge_timer(&recorded(SCAN_TIMER, "run1/show-scan.timer-TZ-NY.txt"), now);
        assert_eq!(s, Status::Fail);
        assert!(m.contains("expected UTC"), "{m}");
    }

    /// `systemctl show scan.timer` of an active timer with these `OnCalendar=` expressions
    /// and this next elapse (systemd's format).
    fn timer(unit: &str, calendars: &[&str], next: &str) -> UnitProperties {
        let mut text = String::from(
            "LoadState=loaded\nActiveState=active\nSubState=waiting\nUnitFileState=enabled\n",
        );
        for c in calendars {
            text.push_str(&format!(
                "TimersCalendar={{ OnCalendar={c} ; next_elapse={next} }}\n"
            ));
        }
        text.push_str(&format!("NextElapseUSecRealtime={next}\n"));
        UnitProperties::parse(unit, &text)
    }

    #[test]
    fn timers_follow_the_installed_schedule() {
        // schedules.scan = "Mon..Fri 09:00 America/New_York": OK (Friday after the run: Monday).
        let now = utc("2026-11-27T14:05:00Z");
        let (s, m) = judge_timer(
            &timer(
                SCAN_TIMER,
                &["Mon..Fri *-*-* 09:00:00 America/New_York"],
                "Mon 2026-11-30 14:00:00 UTC",
            ),
            now,
        );
        assert_eq!(s, Status::Ok, "{m}");
        assert_eq!(
            m,
            "next run Mon 2026-11-30 09:00 EST (14:00 UTC), as its OnCalendar=Mon..Fri *-*-* \
             09:00:00 America/New_York gives"
        );
        // A restart at 07:15 and two expressions: the earlier one is next.
        let (s, m) = judge_timer(
            &timer(
                RESTART_TIMER,
                &[
                    "Mon..Fri *-*-* 07:15:00 America/New_York",
                    "Sat *-*-* 12:00:00 UTC",
                ],
                "Sat 2026-11-28 12:00:00 UTC",
            ),
            now,
        );
        assert_eq!(s, Status::Ok, "{m}");
        // systemd elapses off its own schedule.
        let (s, m) = judge_timer(
            &timer(
                SCAN_TIMER,
                &["Mon..Fri *-*-* 09:00:00 America/New_York"],
                "Mon 2026-11-30 13:30:00 UTC",
            ),
            now,
        );
        assert_eq!(s, Status::Fail, "{m}");
        assert!(
            m.contains("gives Mon 2026-11-30 09:00 EST (14:00 UTC) after now"),
            "{m}"
        );
        // No time zone: the host's; a warning, whatever the next run.
        let (s, m) = judge_timer(
            &timer(
                SCAN_TIMER,
                &["Mon..Fri *-*-* 08:30:00"],
                "Mon 2026-11-30 08:30:00 UTC",
            ),
            now,
        );
        assert_eq!(s, Status::Warn, "{m}");
        assert!(m.contains("no time zone"), "{m}");
        // Not evaluated here (`~`): systemd's word is taken.
        let (s, m) = judge_timer(
            &timer(
                SCAN_TIMER,
                &["*-*~01 08:30:00 UTC"],
                "Mon 2026-11-30 08:30:00 UTC",
            ),
            now,
        );
        assert_eq!(s, Status::Ok, "{m}");
        assert!(
            m.contains("is not evaluated here; the next run is systemd's"),
            "{m}"
        );
        // Weekly is not daily; after the open; nothing declared.
        let (s, m) = judge_timer(
            &timer(
                SCAN_TIMER,
                &["Sat *-*-* 08:30:00 America/New_York"],
                "Sat 2026-12-05 13:30:00 UTC",
            ),
            utc("2026-11-28T13:31:00Z"),
        );
        assert_eq!(s, Status::Warn, "{m}");
        assert!(m.contains("the next run is 6 days away"), "{m}");
        let (s, m) = judge_timer(
            &timer(
                RESTART_TIMER,
                &["Mon..Fri *-*-* 10:00:00 America/New_York"],
                "Fri 2026-11-27 15:00:00 UTC",
            ),
            now,
        );
        assert_eq!(s, Status::Warn, "{m}");
        assert!(
            m.contains("execution is restarted while the market is open"),
            "{m}"
        );
        let (s, m) = judge_timer(&timer(SCAN_TIMER, &[], "Mon 2026-11-30 14:00:00 UTC"), now);
        assert_eq!(s, Status::Fail, "{m}");
        assert!(m.contains("declares no OnCalendar="), "{m}");
    }

    fn config_in(dir: &Path) -> Config {
        Config {
            state_dir: dir.to_path_buf(),
            ..Config::default()
        }
    }

    #[test]
    fn a_stale_watchlist_is_a_warning_only_before_the_scan_or_without_a_session() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        let path = config.watchlist_path();
        crate::watchlist::write_watchlist(&path, &[]).unwrap();
        // Written on Friday 2026-11-27 (NY).
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(utc("2026-11-27T14:00:00Z").into())
            .unwrap();
        let at = |now: &str| check_watchlist_gate(&config, utc(now), None);
        assert_eq!(at("2026-11-27T20:00:00Z").status, Status::Ok);
        // Saturday: no session.
        let c = at("2026-11-28T15:00:00Z");
        assert_eq!(c.status, Status::Warn, "{}", c.message);
        assert!(
            c.message.starts_with("Watchlist is not from today (NY)."),
            "{}",
            c.message
        );
        // Monday 07:00 NY, before the 08:30 scan.
        assert_eq!(at("2026-11-30T12:00:00Z").status, Status::Warn);
        // Monday 10:00 NY: the scan should have replaced it.
        let c = at("2026-11-30T15:00:00Z");
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.message.contains("file_date=2026-11-27 today=2026-11-30"),
            "{}",
            c.message
        );
        // The installed scan runs at 09:00: at 08:45 today's scan is still due.
        let nine = Some(utc("2026-11-30T14:00:00Z"));
        let c = check_watchlist_gate(&config, utc("2026-11-30T13:45:00Z"), nine);
        assert_eq!(c.status, Status::Warn, "{}", c.message);
        assert!(
            c.message.ends_with("(today's scan runs at 09:00 New York)"),
            "{}",
            c.message
        );
        // Its next run is tomorrow (today's ran, or failed): stale is a failure.
        let tomorrow = Some(utc("2026-12-01T14:00:00Z"));
        let c = check_watchlist_gate(&config, utc("2026-11-30T13:45:00Z"), tomorrow);
        assert_eq!(c.status, Status::Fail, "{}", c.message);
        // Missing is always a failure.
        std::fs::remove_file(&path).unwrap();
        let c = at("2026-11-28T15:00:00Z");
        assert_eq!(c.status, Status::Fail);
        assert!(c.message.starts_with("Watchlist missing: "));
    }

    fn db_in(dir: &Path) -> (PathBuf, StateDb) {
        let path = dir.join(DB_FILE);
        let db = StateDb::open(&path).unwrap();
        (path, db)
    }

    #[test]
    fn heartbeat_limits_follow_the_market() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        let (path, db) = db_in(dir.path());
        drop(db);
        let open_now = utc("2026-11-30T15:00:00Z"); // Monday 10:00 EST
        let closed_now = utc("2026-11-29T15:00:00Z"); // Sunday
        let access = || check_state_db(&path).1;
        assert_eq!(
            check_heartbeat(&config, open_now, &access()).status,
            Status::Fail
        );
        assert_eq!(
            check_heartbeat(&config, closed_now, &access()).status,
            Status::Warn
        );
        let db = StateDb::open(&path).unwrap();
        db.heartbeat(open_now - Duration::seconds(100), "sim", 3)
            .unwrap();
        let c = check_heartbeat(&config, open_now, &access());
        assert_eq!(c.status, Status::Ok, "{}", c.message);
        db.heartbeat(open_now - Duration::seconds(181), "sim", 3)
            .unwrap();
        let c = check_heartbeat(&config, open_now, &access());
        assert_eq!(c.status, Status::Fail, "{}", c.message);
        assert!(
            c.message.contains("execution.poll_seconds_open = 180 s"),
            "{}",
            c.message
        );
        // While closed the limit is 3 × poll_seconds_closed and staleness only warns.
        db.heartbeat(closed_now - Duration::seconds(600), "sim", 3)
            .unwrap();
        assert_eq!(
            check_heartbeat(&config, closed_now, &access()).status,
            Status::Ok
        );
        db.heartbeat(closed_now - Duration::hours(2), "sim", 3)
            .unwrap();
        assert_eq!(
            check_heartbeat(&config, closed_now, &access()).status,
            Status::Warn
        );
    }

    fn insert_position(path: &Path, symbol: &str) {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute(
            "INSERT INTO positions (symbol, qty, avg_price, opened_session, entry_client_order_id,
                stop_price, status, updated_at)
             VALUES (?1, '10', '50.00', '2026-11-27', ?2, '48.00', 'open', '2026-11-27T15:00:00.000000Z')",
            rusqlite::params![symbol, format!("avw-2026-11-27-{symbol}-en-1")],
        )
        .unwrap();
    }

    fn insert_stop(path: &Path, symbol: &str, status: &str) {
        let conn = rusqlite::Connection::open(path).unwrap();
        let cid = format!("avw-2026-11-27-{symbol}-st1-1");
        conn.execute(
            "INSERT INTO stops (symbol, client_order_id, stop_price, qty, updated_at)
             VALUES (?1, ?2, '48.00', '10', '2026-11-27T15:00:00.000000Z')",
            rusqlite::params![symbol, cid],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO orders (client_order_id, broker_order_id, symbol, side, qty, order_type,
                stop_price, time_in_force, status, filled_qty, submitted_at, updated_at)
             VALUES (?1, ?2, ?3, 'sell', '10', 'stop', '48.00', 'gtc', ?4, '0',
                '2026-11-27T15:00:00.000000Z', '2026-11-27T15:00:00.000000Z')",
            rusqlite::params![cid, format!("broker-{symbol}"), symbol, status],
        )
        .unwrap();
    }

    #[test]
    fn positions_without_a_working_stop_fail() {
        let dir = tempfile::tempdir().unwrap();
        let (path, db) = db_in(dir.path());
        drop(db);
        let config = config_in(dir.path());
        let now = utc("2026-11-30T15:00:00Z");
        let check = || {
            let access = check_state_db(&path).1;
            check_protective_stops(&config, now, &access, &last_verdict(&access))
        };
        assert_eq!(check().status, Status::Ok);
        assert_eq!(check().message, "no owned positions");
        insert_position(&path, "AAPL");
        let c = check();
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.message.contains("AAPL (10 shares, no stop)"),
            "{}",
            c.message
        );
        insert_stop(&path, "AAPL", "new");
        // The journal alone never says "each with a working protective stop".
        let c = check();
        assert_eq!(c.status, Status::Ok, "{}", c.message);
        assert_eq!(
            c.message,
            "1 owned position(s), each with a stop the journal records as working; not \
             confirmed by the broker: no reconciliation verdict is recorded (see \
             broker-reconciliation)"
        );
        // The broker's fresh report confirms it.
        let mut db = StateDb::open(&path).unwrap();
        db.record_verdict(&verdict_of(
            now - Duration::seconds(30),
            &[("AAPL", "10", "10", Some("10"))],
        ))
        .unwrap();
        let c = check();
        assert_eq!(
            c.message,
            "1 owned position(s), each with a working protective stop (confirmed by the \
             broker's report)"
        );
        // Not when the broker's stop covers less, nor when the report is stale.
        db.record_verdict(&verdict_of(
            now - Duration::seconds(20),
            &[("AAPL", "10", "10", Some("5"))],
        ))
        .unwrap();
        let c = check();
        assert!(
            c.message
                .contains("not confirmed by the broker: AAPL is uncovered"),
            "{}",
            c.message
        );
        db.record_verdict(&verdict_of(
            now - Duration::seconds(600),
            &[("AAPL", "10", "10", Some("10"))],
        ))
        .unwrap();
        let c = check();
        assert!(
            c.message
                .contains("not confirmed by the broker: the broker was last read 10 min ago"),
            "{}",
            c.message
        );
        drop(db);
        insert_position(&path, "MSFT");
        insert_stop(&path, "MSFT", "canceled");
        let c = check();
        assert_eq!(c.status, Status::Fail);
        assert!(c.message.contains("1 of 2"), "{}", c.message);
        assert!(
            c.message
                .contains("MSFT (stop avw-2026-11-27-MSFT-st1-1 is canceled)"),
            "{}",
            c.message
        );
    }

    /// A verdict at `at` as the service records it, from (symbol, broker qty, owned qty,
    /// broker stop qty) rows: uncovered when the stops cover less than the broker holds, a
    /// mismatch when the quantities differ (the engine's rules, `execution::verdict::judge`).
    fn verdict_of(at: DateTime<Utc>, rows: &[(&str, &str, &str, Option<&str>)]) -> Verdict {
        use crate::execution::verdict::VerdictRow;
        let dec = |s: &str| s.parse::<rust_decimal::Decimal>().unwrap();
        let rows = rows
            .iter()
            .map(|(symbol, broker, owned, stop)| {
                let (broker, owned, stop) = (dec(broker), dec(owned), stop.map(dec));
                let status = match stop {
                    Some(s) if s < broker => RowStatus::Uncovered,
                    _ if broker != owned => RowStatus::Mismatch,
                    _ => RowStatus::Ok,
                };
                VerdictRow {
                    symbol: symbol.to_string(),
                    broker_qty: Some(broker),
                    owned_qty: owned,
                    stop_qty: stop,
                    stop_qty_placed: dec("0"),
                    selling_qty: stop.map(|_| dec("0")),
                    status,
                    first_seen: status.is_problem().then_some(at),
                }
            })
            .collect();
        Verdict {
            at,
            broker_positions_read: true,
            open_orders_read: true,
            positions_error: None,
            open_orders_error: None,
            rows,
        }
    }

    #[test]
    fn reconciliation_fails_on_uncovered_and_lasting_mismatches() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        let open_now = utc("2026-11-30T15:00:00Z"); // Monday 10:00 EST
        let (path, mut db) = db_in(dir.path());
        let check = |now| {
            let access = check_state_db(&path).1;
            check_reconciliation(&config, now, &last_verdict(&access))
        };
        // Nothing recorded: like a missing heartbeat.
        let c = check(open_now);
        assert_eq!(c.status, Status::Fail, "{}", c.message);
        assert!(
            c.message
                .starts_with("no reconciliation verdict recorded (market open)"),
            "{}",
            c.message
        );
        assert_eq!(check(utc("2026-11-29T15:00:00Z")).status, Status::Warn);

        // Healthy: covered and matching.
        let t0 = open_now - Duration::seconds(100);
        db.record_verdict(&verdict_of(
            t0,
            &[
                ("AAPL", "100", "100", Some("100")),
                ("MSFT", "20", "20", Some("20")),
                ("NVDA", "5", "5", Some("5")),
            ],
        ))
        .unwrap();
        let c = check(open_now);
        assert_eq!(c.status, Status::Ok, "{}", c.message);
        assert!(
            c.message.starts_with(
                "3 positions at the broker, each covered by a working stop for its full \
                 quantity; matches the journal (cycle 100 s ago, "
            ),
            "{}",
            c.message
        );

        // The journal lost: a mismatch seen once warns ...
        let t1 = open_now - Duration::seconds(60);
        db.record_verdict(&verdict_of(t1, &[("AAPL", "100", "0", Some("100"))]))
            .unwrap();
        let c = check(open_now);
        assert_eq!(c.status, Status::Warn, "{}", c.message);
        assert!(
            c.message
                .contains("AAPL: the broker holds 100, the journal owns 0 in the last cycle only"),
            "{}",
            c.message
        );
        // ... and fails when the next cycle sees it again.
        db.record_verdict(&verdict_of(open_now, &[("AAPL", "100", "0", Some("100"))]))
            .unwrap();
        let c = check(open_now);
        assert_eq!(c.status, Status::Fail, "{}", c.message);
        assert!(
            c.message.starts_with("AAPL: the broker holds 100, the journal owns 0 (first seen Mon 2026-11-30 09:59 EST"),
            "{}",
            c.message
        );
        assert!(
            c.message.contains("engage the kill switch"),
            "{}",
            c.message
        );

        // Uncovered fails at once.
        let mut db2 = StateDb::open(&path).unwrap();
        db2.record_verdict(&verdict_of(
            open_now + Duration::seconds(60),
            &[("MSFT", "20", "20", Some("5"))],
        ))
        .unwrap();
        let c = check(open_now + Duration::seconds(60));
        assert_eq!(c.status, Status::Fail, "{}", c.message);
        assert!(
            c.message
                .starts_with("MSFT: the broker holds 20 shares but its working sell stops (and market sells) cover 5"),
            "{}",
            c.message
        );

        // Stale: after 3 × poll_seconds_open while open (FAIL), 3 × poll_seconds_closed when
        // closed (WARN).
        db2.record_verdict(&verdict_of(open_now - Duration::seconds(181), &[]))
            .unwrap();
        let c = check(open_now);
        assert_eq!(c.status, Status::Fail, "{}", c.message);
        assert!(
            c.message.starts_with(
                "the broker was last compared with the journal 3 min ago, Mon 2026-11-30 09:56 EST"
            ),
            "{}",
            c.message
        );
        assert!(
            c.message
                .contains("limit 3 × execution.poll_seconds_open = 180 s"),
            "{}",
            c.message
        );
        let closed_now = utc("2026-11-29T15:00:00Z");
        db2.record_verdict(&verdict_of(closed_now - Duration::hours(2), &[]))
            .unwrap();
        assert_eq!(check(closed_now).status, Status::Warn);
        db2.record_verdict(&verdict_of(closed_now - Duration::seconds(60), &[]))
            .unwrap();
        let c = check(closed_now);
        assert_eq!(c.status, Status::Ok, "{}", c.message);
        assert!(
            c.message.starts_with(
                "no positions at the broker and none owned in the journal (cycle 60 s ago"
            ),
            "{}",
            c.message
        );
        drop((db, db2));
    }

    #[test]
    fn reconciliation_warns_when_the_broker_could_not_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        let now = utc("2026-11-30T15:00:00Z");
        let (path, mut db) = db_in(dir.path());
        let unread = Verdict {
            at: now,
            broker_positions_read: false,
            open_orders_read: false,
            positions_error: Some("broker read failed (retryable): HTTP 503".into()),
            open_orders_error: Some("broker read failed (retryable): HTTP 503".into()),
            rows: vec![],
        };
        db.record_verdict(&unread).unwrap();
        let access = check_state_db(&path).1;
        let c = check_reconciliation(&config, now, &last_verdict(&access));
        assert_eq!(c.status, Status::Warn, "{}", c.message);
        assert_eq!(
            c.message,
            "the last cycle could not read the broker's positions (broker read failed \
             (retryable): HTTP 503): nothing was compared; the last cycle could not read the \
             broker's open orders (broker read failed (retryable): HTTP 503): no stop was \
             confirmed"
        );
        // An unknown order outcome warns too.
        let mut unknown = verdict_of(now, &[("AAPL", "0", "0", Some("0"))]);
        unknown.rows[0].status = RowStatus::UnknownOrder;
        unknown.rows[0].first_seen = Some(now);
        db.record_verdict(&unknown).unwrap();
        let c = check_reconciliation(&config, now, &last_verdict(&access));
        assert_eq!(c.status, Status::Warn, "{}", c.message);
        assert!(
            c.message.starts_with("AAPL: an order's outcome is unknown"),
            "{}",
            c.message
        );
        // Without a database: not checked.
        let c = check_reconciliation(
            &config,
            now,
            &last_verdict(&DbAccess::Unavailable {
                reason: "no state database yet".into(),
            }),
        );
        assert_eq!(c.status, Status::Warn);
        assert_eq!(c.message, "not checked: no state database yet");
    }

    #[test]
    fn quick_check_reads_only() {
        let dir = tempfile::tempdir().unwrap();
        let (path, db) = db_in(dir.path());
        drop(db);
        let (c, access) = check_state_db(&path);
        assert_eq!(c.status, Status::Ok, "{}", c.message);
        assert!(matches!(access, DbAccess::Open(_)));
        // An older schema is not migrated by the check.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 0).unwrap();
        drop(conn);
        let (c, access) = check_state_db(&path);
        assert_eq!(c.status, Status::Warn, "{}", c.message);
        assert!(matches!(access, DbAccess::Unavailable { .. }));
        let conn = rusqlite::Connection::open(&path).unwrap();
        let v: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 0, "the check must not migrate");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        assert_eq!(check_state_db(&path).0.status, Status::Fail);
    }

    #[test]
    fn report_verdict_strict_and_rendering() {
        let r = Report::new(vec![
            CheckResult::new("a", Status::Ok, "fine"),
            CheckResult::new("bb", Status::Warn, "hmm"),
        ]);
        assert_eq!(r.verdict, Status::Warn);
        assert_eq!(r.exit_code(), 2);
        assert_eq!(
            r.render_human(),
            "OK    a   fine\nWARN  bb  hmm\nverdict: WARN (1 ok, 1 warn, 0 fail)\n"
        );
        assert_eq!(
            r.to_json(),
            r#"{"verdict":"warn","checks":[{"name":"a","status":"ok","message":"fine"},{"name":"bb","status":"warn","message":"hmm"}]}"#
        );
        let s = r.strict();
        assert_eq!(s.verdict, Status::Fail);
        assert_eq!(s.exit_code(), 1);
        assert_eq!(Report::new(vec![]).exit_code(), 0);
    }

    #[test]
    fn without_systemd_one_warning_and_the_rest_runs() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        let procs = ProcTree::new(dir.path().join("proc"));
        // PID 1 with its status: the whole table is visible.
        std::fs::create_dir_all(procs.root().join("1")).unwrap();
        std::fs::write(
            procs.root().join("1/status"),
            "PPid:\t0\nUid:\t0\t0\t0\t0\n",
        )
        .unwrap();
        let systemd = FixtureSystemd::unavailable("laptop");
        let report = run_checks(&CheckContext {
            config: &config,
            now: utc("2026-11-29T15:00:00Z"),
            systemd: &systemd,
            procs: &procs,
        });
        let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "systemd",
                "watchlist",
                "execution-process",
                "tmux",
                "state-db",
                "kill-switch",
                "heartbeat",
                "protective-stops",
                "broker-reconciliation"
            ]
        );
        assert_eq!(report.checks[0].status, Status::Warn);
        assert!(report.checks[0]
            .message
            .starts_with("systemd not available: unit checks skipped"));
        let tmux_check = report.check("tmux").unwrap();
        assert_eq!(tmux_check.status, Status::Ok);
        assert_eq!(tmux_check.message, "no tmux server running");
        // No process without systemd: a warning (nothing is expected to start it).
        assert_eq!(
            report.check("execution-process").unwrap().status,
            Status::Warn
        );
    }

    /// A process of the table: `exe` empty when unreadable (another user's), `argv` split on
    /// spaces.
    fn proc_(pid: u32, ppid: u32, uid: u32, exe: &str, comm: &str, argv: &str) -> ProcessInfo {
        ProcessInfo {
            pid,
            exe: (!exe.is_empty()).then(|| PathBuf::from(exe)),
            exe_deleted: false,
            comm: Some(comm.to_string()),
            cgroup: Some("/user.slice/user-1000.slice/session-2.scope".into()),
            ppid: Some(ppid),
            uid: Some(uid),
            cmdline: argv.split(' ').map(str::to_string).collect(),
        }
    }

    /// PID 1, sshd and an operator's login shell: no tmux anywhere.
    fn base_table() -> Vec<ProcessInfo> {
        vec![
            proc_(1, 0, 0, "/usr/lib/systemd/systemd", "systemd", "/sbin/init"),
            proc_(
                288,
                1,
                990,
                "/usr/bin/avwap-execution",
                "avwap-execution",
                "avwap-execution",
            ),
            proc_(
                500,
                1,
                0,
                "/usr/sbin/sshd",
                "sshd",
                "sshd: /usr/sbin/sshd -D",
            ),
            proc_(501, 500, 1000, "/usr/bin/bash", "bash", "-bash"),
        ]
    }

    /// A tmux server of uid 1000 (started from the login shell, daemonized: its parent is 1)
    /// with a pane shell, plus `extra` processes.
    fn with_tmux(extra: &[ProcessInfo]) -> Snapshot {
        let mut table = base_table();
        table.push(proc_(
            31153,
            1,
            1000,
            "/usr/bin/tmux",
            "tmux: server",
            "tmux new -s work",
        ));
        table.push(proc_(31154, 31153, 1000, "/usr/bin/bash", "bash", "-bash"));
        // The client attached from the login shell is not a parent of the panes.
        table.push(proc_(
            31150,
            501,
            1000,
            "/usr/bin/tmux",
            "tmux: client",
            "tmux attach",
        ));
        table.extend(extra.iter().cloned());
        Snapshot::new(table)
    }

    #[test]
    fn tmux_without_avwap_is_fine() {
        let c = judge_tmux(&Snapshot::new(base_table()));
        assert_eq!(
            (c.status, c.message.as_str()),
            (Status::Ok, "no tmux server running")
        );
        // Unrelated sessions: an editor, a log follower, avwap-check itself, the report.
        let c = judge_tmux(&with_tmux(&[
            proc_(31160, 31154, 1000, "/usr/bin/vim", "vim", "vim run_scan.py"),
            proc_(
                31161,
                31154,
                1000,
                "/usr/bin/journalctl",
                "journalctl",
                "journalctl -u execution.service -f",
            ),
            proc_(
                31162,
                31154,
                1000,
                "/usr/bin/avwap-check",
                "avwap-check",
                "avwap-check --json",
            ),
            proc_(
                31163,
                31154,
                1000,
                "/usr/bin/python3.11",
                "python3",
                "python3 -c import run_scan",
            ),
            proc_(
                31164,
                31154,
                1000,
                "/usr/bin/tail",
                "tail",
                "tail -f avwap-execution.log",
            ),
        ]));
        assert_eq!(c.status, Status::Ok, "{}", c.message);
        assert_eq!(
            c.message,
            "tmux server(s) pid 31153 (uid 1000): none of the 6 process(es) in their sessions \
             runs avwap (sessions running other programs are fine)"
        );
    }

    #[test]
    fn avwap_inside_tmux_fails_whoever_runs_it() {
        // Started by hand in a pane (through sudo), the binary unreadable (another user's).
        let c = judge_tmux(&with_tmux(&[
            proc_(
                31170,
                31154,
                0,
                "/usr/bin/sudo",
                "sudo",
                "sudo -u avwap avwap-execution --mode alpaca-paper",
            ),
            proc_(
                31171,
                31170,
                990,
                "",
                "avwap-execution",
                "avwap-execution --mode alpaca-paper",
            ),
        ]));
        assert_eq!(c.status, Status::Fail, "{}", c.message);
        assert_eq!(
            c.message,
            "1 avwap process(es) run inside tmux: pid 31171 avwap-execution (uid 990, in the \
             tmux of pid 31153 uid 1000); avwap runs under systemd only: stop them (kill 31171, \
             as root or their user) and let the units run them (systemctl start scan.service, \
             systemctl start execution.service)"
        );
        // The service's own process (parent 1) is not inside tmux.
        assert!(!c.message.contains("pid 288"), "{}", c.message);
        // Every avwap binary, and the predecessor's entry points.
        for (exe, comm, argv, what) in [
            ("/nix/store/x-avwap/bin/avwap-scan", "avwap-scan", "avwap-scan --provider alpaca", "avwap-scan"),
            ("/usr/local/bin/avwap-gate", "avwap-gate", "avwap-gate", "avwap-gate"),
            ("/root/avwap_r3k_scanner/venv/bin/python", "python", "/root/avwap_r3k_scanner/venv/bin/python -u -m execution_v2.execution_main --poll-seconds 60", "python -m execution_v2.execution_main"),
            ("", "python3", "python3 execution_v2/execution_main.py --poll-seconds 300", "python execution_v2/execution_main.py"),
            ("/usr/bin/python3", "python3", "python3 -W ignore run_scan.py", "python run_scan.py"),
            ("/usr/bin/python3", "python3", "python3 -uB sentinel.py", "python sentinel.py"),
        ] {
            let c = judge_tmux(&with_tmux(&[proc_(40000, 31154, 0, exe, comm, argv)]));
            assert_eq!(c.status, Status::Fail, "{argv}: {}", c.message);
            assert!(
                c.message.contains(&format!("pid 40000 {what} (uid 0, in the tmux of pid 31153")),
                "{argv}: {}",
                c.message
            );
        }
    }

    #[test]
    fn predecessor_entry_points_only_as_pythons_program() {
        let argv = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        let is = |s: &str| predecessor_entry(&argv(s));
        assert_eq!(
            is("python3.11 -m execution_v2.execution_main").as_deref(),
            Some("python -m execution_v2.execution_main")
        );
        assert_eq!(
            is("python -mexecution_v2.execution_main").as_deref(),
            Some("python -m execution_v2.execution_main")
        );
        assert_eq!(
            is("python -X dev --check-hash-based-pycs never /srv/run_scan.py").as_deref(),
            Some("python /srv/run_scan.py")
        );
        assert!(is("python -m http.server").is_none());
        assert!(is("python3 -c run_scan.py").is_none());
        assert!(is("python3 - run_scan.py").is_none());
        assert!(is("python3 my_tool.py run_scan.py").is_none());
        assert!(is("vim run_scan.py").is_none());
        assert!(is("bash -lc python -m execution_v2.execution_main").is_none());
        assert!(predecessor_entry(&[]).is_none());
    }

    #[test]
    fn hidden_processes_of_other_users_warn() {
        // hidepid: PID 1 and the other users' processes are not in the table.
        let table: Vec<ProcessInfo> = base_table()
            .into_iter()
            .filter(|p| p.uid == Some(1000))
            .collect();
        let c = judge_tmux(&Snapshot::new(table));
        assert_eq!(c.status, Status::Warn, "{}", c.message);
        assert!(
            c.message
                .starts_with("no tmux server running; but other users' processes are hidden"),
            "{}",
            c.message
        );
        assert!(
            c.message.contains("run avwap-check as root"),
            "{}",
            c.message
        );
        // What is visible still fails.
        let mut table: Vec<ProcessInfo> = with_tmux(&[proc_(
            40001,
            31154,
            1000,
            "/usr/bin/avwap-scan",
            "avwap-scan",
            "avwap-scan",
        )])
        .iter()
        .filter(|p| p.pid != 1)
        .cloned()
        .collect();
        table.retain(|p| p.pid != 1);
        assert_eq!(judge_tmux(&Snapshot::new(table)).status, Status::Fail);
        // The table cannot be read at all.
        let dir = tempfile::tempdir().unwrap();
        let c = check_tmux(&ProcTree::new(dir.path().join("absent")));
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.message.starts_with("cannot list processes in "),
            "{}",
            c.message
        );
    }

    /// The universe fixture (14 equity rows, holdings as of 2026-07-24), for a config whose
    /// minimum fits it.
    const UNIVERSE_FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/universe/iwv_raw.csv"
    );

    fn alpaca_scan_unit(argv: &str) -> FixtureSystemd {
        FixtureSystemd::with_units(&[(
            SCAN_UNIT,
            &format!(
                "LoadState=loaded\nExecStart={{ path=/usr/bin/avwap-scan ; argv[]={argv} ; \
                 ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; \
                 code=(null) ; status=0/0 }}\n"
            ),
        )])
    }

    #[test]
    fn the_universe_cache_is_checked_only_for_the_alpaca_scan() {
        assert!(scans_with_alpaca(&alpaca_scan_unit(
            "/nix/store/x-avwap/bin/avwap-scan --provider alpaca"
        )));
        assert!(scans_with_alpaca(&alpaca_scan_unit(
            "/usr/local/bin/avwap-scan --provider=alpaca"
        )));
        assert!(!scans_with_alpaca(&alpaca_scan_unit(
            "/usr/local/bin/avwap-scan --provider store"
        )));
        assert!(!scans_with_alpaca(&alpaca_scan_unit(
            "/usr/bin/env --provider alpaca"
        )));
        // Not installed, or no systemd: not checked.
        assert!(!scans_with_alpaca(&FixtureSystemd::with_units(&[])));
        assert!(!scans_with_alpaca(&FixtureSystemd::unavailable("laptop")));
    }

    #[test]
    fn universe_cache_age_and_members() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path());
        config.scan.universe.min_members = 10;
        let fetched = utc("2026-11-23T13:31:00Z");
        let c = check_universe_cache(&config, fetched);
        assert_eq!(c.status, Status::Warn, "{}", c.message);
        assert!(
            c.message.starts_with(&format!(
                "no universe cache at {} yet: the next scan fetches",
                dir.path().join(crate::universe::CACHE_FILE).display()
            )),
            "{}",
            c.message
        );
        // What a scan leaves: the cache written by the loader at `fetched`.
        let mut opts = LoadOptions::new(Some(UNIVERSE_FIXTURE.to_string()), dir.path());
        opts.min_members = 10;
        crate::universe::load_universe(&opts, fetched, None).unwrap();
        let c = check_universe_cache(&config, fetched + Duration::hours(20));
        assert_eq!(c.status, Status::Ok, "{}", c.message);
        assert_eq!(
            c.message,
            format!(
                "{}: 14 members, holdings as of 2026-07-24, fetched 20 h 0 min ago (Mon \
                 2026-11-23 08:31 EST (13:31 UTC)) from file {UNIVERSE_FIXTURE}",
                dir.path().join(crate::universe::CACHE_FILE).display()
            )
        );
        // Seven days is still fresh; a week and a second is not.
        let week = fetched + Duration::days(7);
        assert_eq!(check_universe_cache(&config, week).status, Status::Ok);
        assert_eq!(
            check_universe_cache(&config, week + Duration::seconds(1)).status,
            Status::Warn
        );
        let c = check_universe_cache(&config, fetched + Duration::days(8));
        assert_eq!(c.status, Status::Warn, "{}", c.message);
        assert!(c.message.contains("fetched 8 days ago"), "{}", c.message);
        assert!(c.message.contains("older than 7 days"), "{}", c.message);
        let c = check_universe_cache(&config, fetched + Duration::days(31));
        assert_eq!(c.status, Status::Fail, "{}", c.message);
        // The loader's own minimum: a copy it would refuse is reported, not counted.
        config.scan.universe.min_members = 1000;
        let c = check_universe_cache(&config, fetched);
        assert_eq!(c.status, Status::Warn, "{}", c.message);
        assert!(
            c.message.contains("the scan cannot fall back to it"),
            "{}",
            c.message
        );
    }

    #[test]
    fn the_report_has_a_universe_line_with_the_alpaca_scan() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        let procs = ProcTree::new(dir.path().join("proc"));
        std::fs::create_dir_all(procs.root()).unwrap();
        let now = utc("2026-11-29T15:00:00Z");
        let names = |systemd: &FixtureSystemd| {
            run_checks(&CheckContext {
                config: &config,
                now,
                systemd,
                procs: &procs,
            })
            .checks
            .into_iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
        };
        let with = names(&alpaca_scan_unit("/usr/bin/avwap-scan --provider alpaca"));
        let at = with.iter().position(|n| n == "universe-cache").unwrap();
        assert_eq!(with[at - 1], "watchlist");
        let without = names(&alpaca_scan_unit("/usr/bin/avwap-scan --provider store"));
        assert!(!without.iter().any(|n| n == "universe-cache"));
        assert_eq!(with.len(), without.len() + 1);
    }
}
