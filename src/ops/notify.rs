//! Operator alerts outside the trading loop: a unit that failed (systemd `OnFailure=` starts
//! `avwap-alert@<unit>.service`), the end-of-day summary (a timer after the close), and a test
//! alert the operator sends to see the webhook work. Each text is built from plain data (pure
//! and tested), then sent once and waited for: unlike the trading loop, these commands exist
//! only to deliver, so a webhook that is off or does not answer is their failure.

use crate::config::Config;
use crate::execution::db::{DbError, StateDb};
use crate::execution::report::{day_report, DayReport};
use crate::exit::{ExitCode, Failure};
use crate::ops::alerts::{AlertKind, Alerts};
use crate::ops::systemd::{SystemdQuery, UnitProperties, SERVICE_PROPERTIES};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::path::PathBuf;
use std::time::Duration;

/// How long a command waits for the webhook's answer.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The `systemd.exec(5)` variables an `OnFailure=` unit is started with (systemd ≥ 251).
pub const MONITOR_VARIABLES: &[&str] = &[
    "MONITOR_UNIT",
    "MONITOR_SERVICE_RESULT",
    "MONITOR_EXIT_CODE",
    "MONITOR_EXIT_STATUS",
];

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("no alert webhook is configured: put its URL in the credential alert-webhook-url (LoadCredential=) or AVWAP_ALERT_WEBHOOK_URL; nothing was sent")]
    NoWebhook,
    #[error("the alert was not delivered within {} s ({detail}); check the webhook URL and that this host can reach it (the journal of this command has the sender's error)", DELIVERY_TIMEOUT.as_secs())]
    NotDelivered { detail: String },
    #[error("the state database {} cannot be read for the summary: {source}", path.display())]
    Journal { path: PathBuf, source: Box<DbError> },
    #[error("there is no state database at {} yet (the execution service creates it); no summary to send", path.display())]
    NoJournal { path: PathBuf },
}

impl Failure for NotifyError {
    fn exit_code(&self) -> ExitCode {
        match self {
            NotifyError::NoWebhook => ExitCode::ConfigError,
            NotifyError::NotDelivered { .. } => ExitCode::BrokerUnavailable,
            NotifyError::Journal { .. } | NotifyError::NoJournal { .. } => ExitCode::InputError,
        }
    }
}

/// What systemd says about a failed unit: from the `MONITOR_*` variables when systemd passed
/// them, else from `systemctl show`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitFailure {
    pub unit: String,
    /// systemd's `Result=` (`exit-code`, `signal`, `watchdog`, `timeout`, `start-limit-hit`, …).
    pub result: String,
    /// `exited`/`killed`/`dumped` and the status (exit code or signal), when known.
    pub exit_code: Option<String>,
    pub exit_status: Option<String>,
    pub restarts: Option<u64>,
    /// `StartLimitBurst=`: starts allowed within the interval.
    pub start_limit_burst: Option<u64>,
}

impl UnitFailure {
    /// From the `OnFailure=` environment, if systemd set it for `unit`.
    pub fn from_monitor_env(unit: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<Self> {
        let result = env("MONITOR_SERVICE_RESULT").filter(|r| !r.is_empty())?;
        let monitored = env("MONITOR_UNIT").unwrap_or_default();
        if !monitored.is_empty() && monitored != unit {
            return None;
        }
        Some(UnitFailure {
            unit: unit.to_string(),
            result,
            exit_code: env("MONITOR_EXIT_CODE").filter(|v| !v.is_empty()),
            exit_status: env("MONITOR_EXIT_STATUS").filter(|v| !v.is_empty()),
            restarts: None,
            start_limit_burst: None,
        })
    }

    pub fn from_properties(props: &UnitProperties) -> Self {
        UnitFailure {
            unit: props.unit.clone(),
            result: props.result().to_string(),
            exit_code: props
                .get("ExecMainCode")
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            exit_status: props.exec_main_status().map(|s| s.to_string()),
            restarts: props.n_restarts(),
            start_limit_burst: props.start_limit_burst(),
        }
    }

    /// The restart counters of `props` added to what the `MONITOR_*` variables said.
    pub fn with_counters(mut self, props: &UnitProperties) -> Self {
        self.restarts = self.restarts.or(props.n_restarts());
        self.start_limit_burst = self.start_limit_burst.or(props.start_limit_burst());
        self
    }

    /// systemd says `start-limit-hit` only sometimes: 252 and 257 keep the first failure's
    /// Result (e.g. `signal`) when they refuse the restart, so a failed unit whose automatic
    /// restarts used up its `StartLimitBurst=` (the first start counts too) hit it as well.
    pub fn start_limit_hit(&self) -> bool {
        self.result == "start-limit-hit"
            || matches!(
                (self.restarts, self.start_limit_burst),
                (Some(n), Some(burst)) if burst > 0 && n + 1 >= burst
            )
    }
}

/// The alert for a failed unit: which, how, and what the operator does next.
pub fn unit_failure_text(failure: &UnitFailure) -> String {
    let unit = &failure.unit;
    let mut text = format!(
        "{unit} failed (Result={})",
        if failure.result.is_empty() {
            "unknown"
        } else {
            &failure.result
        }
    );
    match (&failure.exit_code, &failure.exit_status) {
        (Some(code), Some(status)) => text.push_str(&format!(", {code} {status}")),
        (None, Some(status)) => text.push_str(&format!(", status {status}")),
        _ => {}
    }
    if let Some(n) = failure.restarts {
        text.push_str(&format!(", {n} automatic restart(s)"));
    }
    if failure.start_limit_hit() {
        text.push_str(&format!(
            ". It hit its start limit: systemd will NOT start it again by itself. Read `journalctl -u {unit}`, fix the cause, then `systemctl reset-failed {unit} && systemctl start {unit}` and run avwap-check"
        ));
    } else {
        text.push_str(&format!(
            ". Read `journalctl -u {unit} -n 50`; run avwap-check for the whole picture"
        ));
    }
    text
}

/// Quantities without trailing zeros (`100`, not `100.000`).
fn qty(d: Decimal) -> String {
    d.normalize().to_string()
}

/// Dollars with cents (`412.50`).
fn money(d: Decimal) -> String {
    format!("{:.2}", d.round_dp(2))
}

/// The end-of-day summary of one session: entries, exits, realized P&L, open positions with
/// their stops, skipped candidates by reason.
pub fn day_summary_text(mode: &str, report: &DayReport) -> String {
    let entries_filled = report
        .orders
        .iter()
        .filter(|o| o.side == "buy" && o.filled_qty > Decimal::ZERO)
        .count();
    let sells: std::collections::BTreeSet<&str> = report
        .fills
        .iter()
        .filter(|f| f.side == "sell")
        .map(|f| f.client_order_id.as_str())
        .collect();
    let pnl = report.realized_pnl_today;
    let sign = if pnl > Decimal::ZERO { "+" } else { "" };
    let pnl = money(pnl);
    let mut text = format!(
        "avwap {mode} day summary {}: entries {} decided, {entries_filled} filled; exits {} sell order(s) filled; realized P&L {sign}{pnl}",
        report.date,
        report.entries_taken.len(),
        sells.len()
    );
    let open: Vec<String> = report
        .positions
        .iter()
        .filter(|p| p.status == "open")
        .map(|p| {
            format!(
                "{} {} @ {} stop {}",
                p.symbol,
                qty(p.qty),
                money(p.avg_price),
                p.stop_price
            )
        })
        .collect();
    if open.is_empty() {
        text.push_str("; no open positions");
    } else {
        text.push_str(&format!(
            "; open positions {}: {}",
            open.len(),
            open.join(", ")
        ));
    }
    if !report.skipped_by_reason.is_empty() {
        let mut reasons: Vec<(&String, &usize)> = report.skipped_by_reason.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
        text.push_str(&format!("; skipped: {}", reasons.join(", ")));
    }
    text
}

/// Send one alert and wait for the webhook's answer.
pub fn deliver(alerts: &Alerts, kind: AlertKind, key: &str, text: &str) -> Result<(), NotifyError> {
    if !alerts.enabled() {
        return Err(NotifyError::NoWebhook);
    }
    let before = alerts.stats();
    alerts.send(kind, key, text);
    let pending = alerts.flush(DELIVERY_TIMEOUT);
    let after = alerts.stats();
    if pending == 0 && after.sent > before.sent {
        return Ok(());
    }
    let detail = if pending > 0 {
        "no answer yet".to_string()
    } else if after.failed > before.failed {
        "the webhook refused it or could not be reached".to_string()
    } else {
        "it was suppressed or dropped".to_string()
    };
    Err(NotifyError::NotDelivered { detail })
}

/// `OnFailure=`: alert that `unit` failed.
pub fn unit_failed(
    config: &Config,
    unit: &str,
    env: &dyn Fn(&str) -> Option<String>,
    systemd: &dyn SystemdQuery,
) -> Result<String, NotifyError> {
    // The MONITOR_* variables are the failure itself; systemctl adds the restart counters
    // (and is the whole story on a systemd older than 251).
    let props = systemd
        .show(unit, SERVICE_PROPERTIES)
        .map_err(|e| tracing::warn!(unit, "cannot ask systemd about the failed unit: {e}"))
        .ok();
    let failure = match (UnitFailure::from_monitor_env(unit, env), &props) {
        (Some(failure), Some(props)) => failure.with_counters(props),
        (Some(failure), None) => failure,
        (None, Some(props)) => UnitFailure::from_properties(props),
        (None, None) => UnitFailure {
            unit: unit.to_string(),
            ..UnitFailure::default()
        },
    };
    let text = unit_failure_text(&failure);
    deliver(
        &Alerts::from_config(&config.alerts),
        AlertKind::UnitFailed,
        unit,
        &text,
    )?;
    Ok(text)
}

/// The end-of-day summary of `date`, sent.
pub fn day_summary(config: &Config, date: NaiveDate) -> Result<String, NotifyError> {
    let path = config.state_dir.join(crate::execution::db::DB_FILE);
    if std::fs::metadata(&path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Err(NotifyError::NoJournal { path });
    }
    let db = StateDb::open_read_only_current(&path).map_err(|source| NotifyError::Journal {
        path: path.clone(),
        source: Box::new(source),
    })?;
    let report = day_report(&db, date).map_err(|source| NotifyError::Journal {
        path,
        source: Box::new(source),
    })?;
    let text = day_summary_text(config.mode.as_str(), &report);
    deliver(
        &Alerts::from_config(&config.alerts),
        AlertKind::DaySummary,
        &date.to_string(),
        &text,
    )?;
    Ok(text)
}

/// What `avwap-execution alert` was asked to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertCommand {
    Test,
    UnitFailed {
        unit: String,
    },
    /// `None`: today in New York at `now`.
    Summary {
        date: Option<NaiveDate>,
    },
}

/// `avwap-execution alert …`: build, send and wait; prints what was sent.
pub fn run(
    config: &Config,
    command: AlertCommand,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), NotifyError> {
    let env = crate::credentials::process_env;
    let text = match command {
        AlertCommand::Test => test_alert(config, &host_name())?,
        AlertCommand::UnitFailed { unit } => unit_failed(
            config,
            &unit,
            &env,
            &crate::ops::systemd::Systemctl::from_env(&env),
        )?,
        AlertCommand::Summary { date } => day_summary(
            config,
            date.unwrap_or_else(|| crate::calendar::ny_date(now)),
        )?,
    };
    println!("alert sent: {text}");
    Ok(())
}

/// This host's name for alert texts (`/proc/sys/kernel/hostname`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().chars().take(64).collect::<String>())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "this host".to_string())
}

/// A test alert, to see the webhook work.
pub fn test_alert(config: &Config, host: &str) -> Result<String, NotifyError> {
    let text = format!(
        "avwap test alert from {host} (mode {}): if you read this, alerts reach you",
        config.mode
    );
    deliver(
        &Alerts::from_config(&config.alerts),
        AlertKind::Test,
        "test",
        &text,
    )?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::report::{FillLine, OrderLine, PositionLine};
    use std::collections::BTreeMap;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn a_start_limit_hit_says_systemd_will_not_restart_it() {
        let env = |name: &str| match name {
            "MONITOR_UNIT" => Some("avwap-execution.service".to_string()),
            "MONITOR_SERVICE_RESULT" => Some("start-limit-hit".to_string()),
            _ => None,
        };
        let failure = UnitFailure::from_monitor_env("avwap-execution.service", &env).unwrap();
        let text = unit_failure_text(&failure);
        assert!(text.starts_with("avwap-execution.service failed (Result=start-limit-hit)"));
        assert!(text.contains("will NOT start it again"), "{text}");
        assert!(text.contains("systemctl reset-failed avwap-execution.service"));
    }

    #[test]
    fn a_start_limit_under_the_first_failures_result_is_recognised() {
        // systemd 252/257: Result=signal after the fifth start of StartLimitBurst=5.
        let props = UnitProperties::parse(
            "execution.service",
            "Result=signal\nNRestarts=4\nStartLimitBurst=5\nExecMainCode=killed\nExecMainStatus=9\n",
        );
        let env = |name: &str| match name {
            "MONITOR_SERVICE_RESULT" => Some("signal".to_string()),
            _ => None,
        };
        let failure = UnitFailure::from_monitor_env("execution.service", &env)
            .unwrap()
            .with_counters(&props);
        assert!(failure.start_limit_hit());
        let text = unit_failure_text(&failure);
        assert!(text.contains("hit its start limit"), "{text}");
        // One crash with restarts left is not a start limit.
        let once = UnitProperties::parse(
            "execution.service",
            "Result=exit-code\nNRestarts=0\nStartLimitBurst=5\n",
        );
        assert!(!UnitFailure::from_properties(&once).start_limit_hit());
    }

    #[test]
    fn an_exit_code_failure_names_the_status() {
        let env = |name: &str| match name {
            "MONITOR_SERVICE_RESULT" => Some("exit-code".to_string()),
            "MONITOR_EXIT_CODE" => Some("exited".to_string()),
            "MONITOR_EXIT_STATUS" => Some("12".to_string()),
            _ => None,
        };
        let failure = UnitFailure::from_monitor_env("avwap-scan.service", &env).unwrap();
        let text = unit_failure_text(&failure);
        assert!(
            text.starts_with("avwap-scan.service failed (Result=exit-code), exited 12."),
            "{text}"
        );
        assert!(!text.contains("start limit"));
    }

    #[test]
    fn without_monitor_variables_systemctl_show_is_read() {
        let none = |_: &str| None;
        assert!(UnitFailure::from_monitor_env("x.service", &none).is_none());
        // Another unit's variables (a shared environment) are not taken for this one.
        let other = |name: &str| match name {
            "MONITOR_UNIT" => Some("other.service".to_string()),
            "MONITOR_SERVICE_RESULT" => Some("exit-code".to_string()),
            _ => None,
        };
        assert!(UnitFailure::from_monitor_env("x.service", &other).is_none());
        let props = UnitProperties::parse(
            "avwap-execution.service",
            "Result=watchdog\nNRestarts=3\nExecMainCode=killed\nExecMainStatus=6\n",
        );
        let text = unit_failure_text(&UnitFailure::from_properties(&props));
        assert!(
            text.starts_with(
                "avwap-execution.service failed (Result=watchdog), killed 6, 3 automatic restart(s)."
            ),
            "{text}"
        );
    }

    fn report() -> DayReport {
        DayReport {
            date: "2026-12-04".parse().unwrap(),
            entries_taken: Vec::new(),
            skipped_by_reason: BTreeMap::from([
                ("outside_entry_window".to_string(), 40),
                ("regime".to_string(), 3),
                ("already_owned".to_string(), 3),
            ]),
            last_skip_by_symbol: BTreeMap::new(),
            orders: vec![OrderLine {
                client_order_id: "avw-20261204-AXTA-en-1".into(),
                symbol: "AXTA".into(),
                side: "buy".into(),
                order_type: "limit".into(),
                qty: d("100"),
                filled_qty: d("100"),
                filled_avg_price: Some(d("33.10")),
                limit_price: Some(d("33.20")),
                stop_price: None,
                status: "filled".into(),
            }],
            fills: vec![
                FillLine {
                    at: "2026-12-04T15:00:00Z".into(),
                    client_order_id: "avw-20261204-CCE-ex-1".into(),
                    symbol: "CCE".into(),
                    side: "sell".into(),
                    qty: d("50"),
                    price: d("21.5"),
                    realized_pnl: Some(d("412.5")),
                },
                FillLine {
                    at: "2026-12-04T15:10:00Z".into(),
                    client_order_id: "avw-20261204-CCE-ex-1".into(),
                    symbol: "CCE".into(),
                    side: "sell".into(),
                    qty: d("50"),
                    price: d("21.5"),
                    realized_pnl: None,
                },
            ],
            stops: Vec::new(),
            positions: vec![PositionLine {
                symbol: "AXTA".into(),
                status: "open",
                qty: d("100.000"),
                avg_price: d("33.1"),
                stop_price: d("31.55"),
                target_r1: None,
                target_r2: None,
                trimmed: false,
                opened_session: "2026-12-04".parse().unwrap(),
                realized_pnl: Decimal::ZERO,
            }],
            realized_pnl_today: d("412.5"),
            events: 10,
        }
    }

    #[test]
    fn the_day_summary_has_entries_exits_pnl_positions_and_skips() {
        let text = day_summary_text("alpaca-paper", &report());
        assert_eq!(
            text,
            "avwap alpaca-paper day summary 2026-12-04: entries 0 decided, 1 filled; exits 1 sell order(s) filled; realized P&L +412.50; open positions 1: AXTA 100 @ 33.10 stop 31.55; skipped: outside_entry_window 40, already_owned 3, regime 3"
        );
        let mut quiet = report();
        quiet.positions.clear();
        quiet.skipped_by_reason.clear();
        quiet.realized_pnl_today = d("-12.345");
        let text = day_summary_text("sim", &quiet);
        // Half-even, as every money figure avwap prints.
        assert!(text.contains("realized P&L -12.34"), "{text}");
        assert!(text.ends_with("; no open positions"), "{text}");
    }

    #[test]
    fn without_a_webhook_nothing_is_sent_and_the_operator_is_told_why() {
        let err = deliver(&Alerts::disabled(), AlertKind::Test, "test", "x").unwrap_err();
        assert!(matches!(err, NotifyError::NoWebhook));
        assert_eq!(err.exit_code(), ExitCode::ConfigError);
        assert!(err.to_string().contains("alert-webhook-url"));
    }
}
