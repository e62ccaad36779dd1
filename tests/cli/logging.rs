//! Logging: the journald fallback, `--log-format json` / `AVWAP_LOG_FORMAT=json` lines with
//! structured fields (from a real `sim` run of avwap-execution and from avwap-check), and no
//! secret in any log line.

use avwap::credentials::{
    CredentialStore, CREDENTIAL_ALERT_WEBHOOK_URL, CREDENTIAL_KEY_ID, CREDENTIAL_LIVE_ACCOUNT,
    CREDENTIAL_SECRET_KEY, ENV_API_KEY_ID, ENV_API_SECRET_KEY,
};
use avwap::ops::alerts::{AlertKind, AlertSettings, Alerts};
use avwap::ops::logging::{subscriber_with_writer, StderrFormat};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CHECK: &str = env!("CARGO_BIN_EXE_avwap-check");
const EXEC: &str = env!("CARGO_BIN_EXE_avwap-execution");
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

const FAKE_KEY_ID: &str = "PKFAKEKEYID7QX3ZLEAKME";
const FAKE_SECRET: &str = "fAkE-SeCrEt-9f8e7d6c5b4a-NEVER-LOG-ME";
const FAKE_ACCOUNT: &str = "PA3FAKEACCT0099";
const FAKE_HOOK_TOKEN: &str = "xoxFAKEHOOKTOKEN1234";

fn assert_no_secret(text: &str) {
    for s in [FAKE_KEY_ID, FAKE_SECRET, FAKE_ACCOUNT, FAKE_HOOK_TOKEN] {
        assert!(!text.contains(s), "secret {s:?} leaked into: {text}");
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn check_cmd(state: &Path) -> Command {
    let mut cmd = Command::new(CHECK);
    cmd.arg("--state-dir")
        .arg(state)
        .env_remove("AVWAP_CONFIG")
        .env_remove("AVWAP_STATE_DIR")
        .env_remove("AVWAP_LOG_FORMAT")
        .env("AVWAP_SYSTEMCTL", "/nonexistent/systemctl")
        .env("AVWAP_PROC_ROOT", state);
    cmd
}

fn exec_cmd(state: &Path) -> Command {
    let mut cmd = Command::new(EXEC);
    cmd.args(["--mode", "sim", "--once", "--at", "2026-11-30T10:00"])
        .arg("--state-dir")
        .arg(state)
        .env_remove("AVWAP_CONFIG")
        .env_remove("AVWAP_STATE_DIR")
        .env_remove("AVWAP_MODE")
        .env_remove("AVWAP_LOG_FORMAT")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .env_remove("AVWAP_TEST_CRASH_AT");
    cmd
}

#[test]
fn journal_stream_without_a_journal_falls_back_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let socket_exists = Path::new(JOURNAL_SOCKET).exists();

    let out = check_cmd(dir.path())
        .env("JOURNAL_STREAM", "1:1")
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    // It ran the checks (a verdict, exit 1 or 2 here) instead of crashing.
    assert!(matches!(out.status.code(), Some(1 | 2)), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("verdict: "));
    let err = stderr(&out);
    if socket_exists {
        eprintln!("{JOURNAL_SOCKET} exists on this host: the fallback is not exercised");
        return;
    }
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("journald unavailable"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning line: {err}");
    assert!(warnings[0].contains("WARN"), "{err}");
    assert!(warnings[0].contains("logging to stderr"), "{err}");
    // The log lines themselves went to stderr, as text.
    assert!(err.contains("health check done"), "{err}");
    assert!(err.contains("check=state-db"), "{err}");

    // The execution service too (it logs through cli::init_logging).
    let out = exec_cmd(&dir.path().join("exec"))
        .env("JOURNAL_STREAM", "8:12345")
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("journald unavailable").count(), 1, "{err}");
    assert!(err.contains("avwap-execution starting"), "{err}");
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn log_format_json_gives_parseable_lines_with_fields() {
    let dir = tempfile::tempdir().unwrap();
    let out = check_cmd(dir.path())
        .args(["--log-format", "json"])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let lines = json_lines(&stderr(&out));
    assert!(lines.len() >= 8, "{lines:?}");
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
        assert!(l["message"].is_string(), "{l}");
    }
    let state_db = lines
        .iter()
        .find(|l| l["check"] == "state-db")
        .expect("a line per check");
    assert_eq!(state_db["status"], "WARN");
    assert_eq!(state_db["level"], "DEBUG");
    let done = lines
        .iter()
        .find(|l| l["message"] == "health check done")
        .unwrap();
    assert!(done["checks"].as_u64().unwrap() >= 8, "{done}");
    // stdout still holds the report, untouched.
    assert!(String::from_utf8_lossy(&out.stdout).contains("verdict: "));

    // The env var does the same for binaries without the flag; an invalid value is reported.
    let out = check_cmd(dir.path())
        .env("AVWAP_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(!json_lines(&stderr(&out)).is_empty());
    let out = check_cmd(dir.path())
        .args(["--log-format", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
}

#[test]
fn a_sim_run_logs_structured_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = exec_cmd(&dir.path().join("state"))
        .env("AVWAP_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&stderr(&out));
    let start = lines
        .iter()
        .find(|l| l["message"] == "avwap-execution starting")
        .expect("the start line");
    assert_eq!(start["mode"], "sim", "{start}");
    assert!(
        start["state_dir"].as_str().unwrap().ends_with("state"),
        "{start}"
    );
    assert_eq!(start["level"], "INFO");
    // Every line is an object with the fields at the top level (no nested "fields").
    assert!(lines.iter().all(|l| l.get("fields").is_none()));
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The code paths that handle credentials, logged the ways code would log them.
fn exercise_credentials(creds_dir: &Path) {
    let store = CredentialStore::new(Some(creds_dir.to_path_buf()), |_: &str| None);
    tracing::info!(?store, "credential store");
    let creds = store.alpaca().unwrap();
    tracing::info!(creds = ?creds, "alpaca credentials loaded");
    tracing::info!(key_id = %creds.key_id, secret = ?creds.secret_key, source = %creds.secret_key_source, "keys");
    tracing::info!("pretty: {creds:#?}");
    let live = store.live_confirmation().unwrap();
    tracing::warn!(account = %live, "live confirmation");
    let url = store.alert_webhook_url().unwrap().unwrap();
    tracing::debug!(url = ?url, "webhook");

    // Errors: an empty secret file, and the env fallback with a missing file.
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(
        broken.path().join(CREDENTIAL_KEY_ID),
        format!("{FAKE_KEY_ID}\n"),
    )
    .unwrap();
    std::fs::write(broken.path().join(CREDENTIAL_SECRET_KEY), "\n").unwrap();
    let store = CredentialStore::new(Some(broken.path().to_path_buf()), |k: &str| {
        (k == ENV_API_SECRET_KEY).then(|| FAKE_SECRET.to_string())
    });
    let err = store.alpaca().unwrap_err();
    tracing::error!(error = %err, debug = ?err, "credential error");

    // Alerts with the webhook credential, failing (nothing listens there).
    let alerts = Alerts::from_sources(
        &CredentialStore::new(Some(creds_dir.to_path_buf()), |_: &str| None),
        &|_: &str| None,
        AlertSettings {
            timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_millis(300),
            ..AlertSettings::default()
        },
    );
    assert!(alerts.enabled());
    alerts.send(
        AlertKind::ExecutionStarted,
        "started",
        "execution started (mode sim)",
    );
    assert_eq!(alerts.flush(Duration::from_secs(5)), 0);
    assert_eq!(alerts.stats().failed, 1);
}

#[test]
fn secrets_never_reach_a_log_line() {
    let creds = tempfile::tempdir().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    for (name, value) in [
        (CREDENTIAL_KEY_ID, FAKE_KEY_ID.to_string()),
        (CREDENTIAL_SECRET_KEY, FAKE_SECRET.to_string()),
        (CREDENTIAL_LIVE_ACCOUNT, FAKE_ACCOUNT.to_string()),
        (
            CREDENTIAL_ALERT_WEBHOOK_URL,
            format!("http://{addr}/services/{FAKE_HOOK_TOKEN}"),
        ),
    ] {
        std::fs::write(creds.path().join(name), format!("{value}\n")).unwrap();
    }
    for format in [StderrFormat::Text, StderrFormat::Json] {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = subscriber_with_writer(format, "trace", move || writer.clone());
        tracing::subscriber::with_default(subscriber, || exercise_credentials(creds.path()));
        let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
        // Not vacuous: the lines were written, with the redaction marker and the failure.
        assert!(text.contains("alpaca credentials loaded"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
        assert!(text.contains("alert webhook failed"), "{text}");
        assert!(text.contains("credential error"), "{text}");
        assert_no_secret(&text);
    }
}

#[test]
fn the_execution_binary_logs_no_secret_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--mode", "alpaca-paper", "--once"][..],
        &["--mode", "sim", "--once", "--at", "2026-11-30T10:00"][..],
    ] {
        let out = Command::new(EXEC)
            .args(args)
            .arg("--state-dir")
            .arg(dir.path().join(args[1]))
            .env_remove("AVWAP_CONFIG")
            .env_remove("AVWAP_STATE_DIR")
            .env_remove("AVWAP_MODE")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .env(ENV_API_KEY_ID, FAKE_KEY_ID)
            .env(ENV_API_SECRET_KEY, FAKE_SECRET)
            .env("AVWAP_LOG_FORMAT", "json")
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        assert!(!stderr(&out).is_empty(), "{args:?}: it said something");
        assert_no_secret(&stderr(&out));
        assert_no_secret(&String::from_utf8_lossy(&out.stdout));
    }
}
