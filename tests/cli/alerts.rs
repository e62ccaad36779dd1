//! Alerts against a loopback webhook receiver (std TcpListener, minimal HTTP/1.1): the JSON
//! arrives, repeats are rate-limited, a hung or dead webhook never slows `send`, `flush` is
//! bounded, and the secret URL never shows up in a log line or an error.

use avwap::credentials::{CredentialStore, Secret, CREDENTIAL_ALERT_WEBHOOK_URL};
use avwap::ops::alerts::{AlertKind, AlertSettings, Alerts, SendOutcome, ENV_ALERT_WEBHOOK_URL};
use avwap::ops::logging::{subscriber_with_writer, StderrFormat};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The token part of the webhook URL: it must never leave the Secret.
const TOKEN: &str = "T0FAKE/B0FAKE/xoxFakeWebhookToken4242";

#[derive(Debug)]
struct Request {
    request_line: String,
    headers: Vec<String>,
    body: String,
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok()?;
            }
        }
        headers.push(line);
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        request_line: request_line.trim_end().to_string(),
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

/// A receiver answering every request with `status`; returns its URL with the secret path.
fn receiver(status: u16) -> (String, mpsc::Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/services/{TOKEN}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if let Some(request) = read_request(&mut stream) {
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = stream.flush();
                if tx.send(request).is_err() {
                    return;
                }
            }
        }
    });
    (url, rx)
}

/// A receiver that accepts connections and never answers (nor reads).
fn hung_receiver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/services/{TOKEN}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(64) {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    url
}

/// A URL on which nothing listens (connection refused).
fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/services/{TOKEN}")
}

fn fast() -> AlertSettings {
    AlertSettings {
        rate_limit: Duration::from_secs(60),
        timeout: Duration::from_millis(800),
        connect_timeout: Duration::from_millis(500),
        queue_capacity: 4,
    }
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

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Run `f` with a capturing subscriber as this thread's default (the alert thread inherits it).
fn capture<T>(f: impl FnOnce() -> T) -> (T, String) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = subscriber_with_writer(StderrFormat::Text, "debug", move || writer.clone());
    let out = tracing::subscriber::with_default(subscriber, f);
    (out, captured.text())
}

fn assert_no_token(text: &str) {
    for fragment in [TOKEN, "xoxFakeWebhookToken4242", "B0FAKE"] {
        assert!(!text.contains(fragment), "{fragment:?} leaked: {text}");
    }
}

#[test]
fn the_json_arrives() {
    let (url, rx) = receiver(200);
    let alerts = Alerts::new(Secret::new(url), "test", fast()).unwrap();
    assert!(alerts.enabled());
    assert_eq!(
        alerts.send(
            AlertKind::ScanDone,
            "scan",
            "scan done for 2026-11-30: 12 candidates"
        ),
        SendOutcome::Queued
    );
    assert_eq!(alerts.flush(Duration::from_secs(5)), 0);
    let request = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        request.request_line,
        format!("POST /services/{TOKEN} HTTP/1.1")
    );
    assert!(request
        .headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("content-type: application/json")));
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"text": "[avwap][scan][INFO] scan done for 2026-11-30: 12 candidates"})
    );
    let stats = alerts.stats();
    assert_eq!((stats.queued, stats.sent, stats.failed), (1, 1, 0));

    // Every kind carries its component and level.
    alerts.send(AlertKind::KillSwitch, "file", "kill switch engaged");
    alerts.send(
        AlertKind::OrderFilled,
        "avw-2026-11-30-AAPL-en-1",
        "AAPL filled 10 @ 190.12",
    );
    assert_eq!(alerts.flush(Duration::from_secs(5)), 0);
    let mut texts: Vec<String> = (0..2)
        .map(|_| {
            let r = rx.recv_timeout(Duration::from_secs(5)).unwrap();
            serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    texts.sort();
    assert_eq!(
        texts,
        [
            "[avwap][execution][TRADE] AAPL filled 10 @ 190.12",
            "[avwap][execution][WARNING] kill switch engaged"
        ]
    );
}

#[test]
fn repeats_of_a_key_are_rate_limited() {
    let (url, rx) = receiver(200);
    let alerts = Alerts::new(Secret::new(url), "test", fast()).unwrap();
    assert_eq!(
        alerts.send(AlertKind::Error, "AAPL", "one"),
        SendOutcome::Queued
    );
    assert_eq!(
        alerts.send(AlertKind::Error, "AAPL", "two"),
        SendOutcome::Suppressed
    );
    assert_eq!(
        alerts.send(AlertKind::Error, "AAPL", "three"),
        SendOutcome::Suppressed
    );
    // Another key, or another kind with the same key, is not the same alert.
    assert_eq!(
        alerts.send(AlertKind::Error, "MSFT", "four"),
        SendOutcome::Queued
    );
    assert_eq!(
        alerts.send(AlertKind::StopMoved, "AAPL", "five"),
        SendOutcome::Queued
    );
    assert_eq!(alerts.flush(Duration::from_secs(5)), 0);
    let mut bodies = Vec::new();
    while let Ok(r) = rx.recv_timeout(Duration::from_millis(300)) {
        bodies.push(r.body);
    }
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert!(bodies
        .iter()
        .all(|b| !b.contains("two") && !b.contains("three")));
    assert_eq!(alerts.stats().suppressed, 2);

    // After the window the same key goes out again.
    let short = AlertSettings {
        rate_limit: Duration::from_millis(200),
        ..fast()
    };
    let (url, rx) = receiver(200);
    let alerts = Alerts::new(Secret::new(url), "test", short).unwrap();
    assert_eq!(
        alerts.send(AlertKind::ExecutionStarted, "started", "a"),
        SendOutcome::Queued
    );
    assert_eq!(
        alerts.send(AlertKind::ExecutionStarted, "started", "b"),
        SendOutcome::Suppressed
    );
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(
        alerts.send(AlertKind::ExecutionStarted, "started", "c"),
        SendOutcome::Queued
    );
    assert_eq!(alerts.flush(Duration::from_secs(5)), 0);
    assert_eq!(rx.try_iter().count(), 2);
}

#[test]
fn a_hung_webhook_never_slows_send_and_flush_is_bounded() {
    let url = hung_receiver();
    let (alerts, logs) = capture(|| Alerts::new(Secret::new(url), "test", fast()).unwrap());
    assert!(logs.is_empty(), "{logs}");
    let mut worst = Duration::ZERO;
    let mut outcomes = Vec::new();
    for i in 0..20 {
        let started = Instant::now();
        outcomes.push(alerts.send(AlertKind::Error, &format!("key-{i}"), "broker error"));
        worst = worst.max(started.elapsed());
    }
    assert!(worst < Duration::from_millis(50), "send took {worst:?}");
    // One is in flight, four wait in the queue, the rest were dropped and counted.
    let dropped = outcomes
        .iter()
        .filter(|o| **o == SendOutcome::Dropped)
        .count();
    assert!(dropped >= 20 - 1 - 4, "{outcomes:?}");
    assert_eq!(alerts.stats().dropped as usize, dropped);

    let started = Instant::now();
    let pending = alerts.flush(Duration::from_millis(300));
    let took = started.elapsed();
    assert!(pending > 0, "nothing can have been delivered");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(800),
        "flush took {took:?}"
    );

    // Each request gives up after the timeout (800 ms): five of them within a few seconds.
    let started = Instant::now();
    let pending = alerts.flush(Duration::from_secs(10));
    assert_eq!(pending, 0);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let stats = alerts.stats();
    assert_eq!(stats.sent, 0);
    assert_eq!(stats.failed as usize, 20 - dropped);
}

#[test]
fn the_secret_url_never_appears_in_logs_or_errors() {
    // Connection refused.
    let (_, logs) = capture(|| {
        let alerts = Alerts::new(Secret::new(dead_url()), "test", fast()).unwrap();
        alerts.send(AlertKind::Error, "x", "something broke");
        assert_eq!(alerts.flush(Duration::from_secs(5)), 0);
        assert_eq!(alerts.stats().failed, 1);
    });
    assert!(logs.contains("alert webhook failed"), "{logs}");
    assert_no_token(&logs);

    // Timeout.
    let (_, logs) = capture(|| {
        let alerts = Alerts::new(Secret::new(hung_receiver()), "test", fast()).unwrap();
        alerts.send(AlertKind::Error, "x", "something broke");
        assert_eq!(alerts.flush(Duration::from_secs(5)), 0);
    });
    assert!(logs.contains("alert webhook failed"), "{logs}");
    assert_no_token(&logs);

    // The webhook refuses (HTTP 404, as Slack does for a revoked hook).
    let (url, _rx) = receiver(404);
    let (_, logs) = capture(|| {
        let alerts = Alerts::new(Secret::new(url.clone()), "test", fast()).unwrap();
        alerts.send(
            AlertKind::Error,
            "x",
            &format!("a text that quotes the url {url}"),
        );
        assert_eq!(alerts.flush(Duration::from_secs(5)), 0);
        assert_eq!(alerts.stats().failed, 1);
    });
    assert!(logs.contains("answered HTTP 404"), "{logs}");
    assert_no_token(&logs);

    // A text quoting the URL is scrubbed before it leaves.
    let (url, rx) = receiver(200);
    let alerts = Alerts::new(Secret::new(url.clone()), "test", fast()).unwrap();
    alerts.send(AlertKind::Error, "x", &format!("error posting to {url}"));
    alerts.flush(Duration::from_secs(5));
    let body = rx.recv_timeout(Duration::from_secs(5)).unwrap().body;
    assert!(body.contains("[redacted]"), "{body}");
    assert_no_token(&body);

    // The Debug of the sender shows nothing either.
    assert_no_token(&format!("{alerts:?}"));
}

#[test]
fn the_url_comes_from_the_credential_or_the_env() {
    let (url, rx) = receiver(200);
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(
        creds.path().join(CREDENTIAL_ALERT_WEBHOOK_URL),
        format!("{url}\n"),
    )
    .unwrap();
    let store = CredentialStore::new(Some(creds.path().to_path_buf()), |_: &str| None);
    let (alerts, logs) = capture(|| Alerts::from_sources(&store, &|_: &str| None, fast()));
    assert!(alerts.enabled());
    assert!(
        logs.contains("alerts on: webhook from systemd credential"),
        "{logs}"
    );
    assert_no_token(&logs);
    alerts.send(AlertKind::ScanEmpty, "scan", "empty watchlist");
    alerts.flush(Duration::from_secs(5));
    assert!(rx
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .body
        .contains("[avwap][scan][WARNING] empty watchlist"));

    // The env var when no credential file exists.
    let (url, rx) = receiver(200);
    let store = CredentialStore::new(None, |_: &str| None);
    let env = move |k: &str| (k == ENV_ALERT_WEBHOOK_URL).then(|| url.clone());
    let (alerts, logs) = capture(|| Alerts::from_sources(&store, &env, fast()));
    assert!(alerts.enabled());
    assert!(logs.contains(ENV_ALERT_WEBHOOK_URL), "{logs}");
    assert_no_token(&logs);
    alerts.send(AlertKind::ScanFailed, "scan", "scan failed: no bars");
    alerts.flush(Duration::from_secs(5));
    assert!(rx.recv_timeout(Duration::from_secs(5)).is_ok());

    // Neither: off, and calls are no-ops.
    let alerts = Alerts::from_sources(&store, &|_: &str| None, fast());
    assert!(!alerts.enabled());
    assert_eq!(
        alerts.send(AlertKind::Error, "x", "y"),
        SendOutcome::Disabled
    );

    // An invalid URL: off, with a warning that does not show it.
    let env = |k: &str| (k == ENV_ALERT_WEBHOOK_URL).then(|| format!("htp//{TOKEN}"));
    let (alerts, logs) = capture(|| Alerts::from_sources(&store, &env, fast()));
    assert!(!alerts.enabled());
    assert!(logs.contains("not a valid http(s) URL"), "{logs}");
    assert_no_token(&logs);

    // An empty credential file is an error (not a silent fallback): off, with a warning.
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join(CREDENTIAL_ALERT_WEBHOOK_URL), "\n").unwrap();
    let store = CredentialStore::new(Some(empty.path().to_path_buf()), |_: &str| None);
    let (alerts, logs) = capture(|| Alerts::from_sources(&store, &|_: &str| None, fast()));
    assert!(!alerts.enabled());
    assert!(logs.contains("alert-webhook-url"), "{logs}");
}

fn alert_command(
    state: &std::path::Path,
    url: Option<&str>,
    args: &[&str],
) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_avwap-execution"));
    cmd.arg("alert")
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .env_remove("AVWAP_CONFIG")
        .env_remove("AVWAP_STATE_DIR")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("MONITOR_UNIT")
        .env_remove("MONITOR_SERVICE_RESULT")
        .env_remove("MONITOR_EXIT_CODE")
        .env_remove("MONITOR_EXIT_STATUS")
        .env_remove(ENV_ALERT_WEBHOOK_URL)
        .env("AVWAP_SYSTEMCTL", "/nonexistent/systemctl")
        .env("RUST_LOG", "warn");
    if let Some(url) = url {
        cmd.env(ENV_ALERT_WEBHOOK_URL, url);
    }
    cmd
}

/// Runs `cmd`, which must succeed.
fn succeeds(cmd: &mut std::process::Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `avwap-execution alert test|unit-failed|summary`: delivered and waited for, or a clear
/// failure (no webhook: exit 10; refused: exit 12; no journal: exit 13).
#[test]
fn the_operator_alert_commands_deliver_or_fail_loudly() {
    let state = tempfile::tempdir().unwrap();
    let (url, received) = receiver(200);
    succeeds(&mut alert_command(state.path(), Some(&url), &["test"]));
    let body = received.recv_timeout(Duration::from_secs(5)).unwrap().body;
    assert!(body.contains("test alert"), "{body}");

    succeeds(
        alert_command(
            state.path(),
            Some(&url),
            &["unit-failed", "avwap-execution.service"],
        )
        .env("MONITOR_UNIT", "avwap-execution.service")
        .env("MONITOR_SERVICE_RESULT", "start-limit-hit"),
    );
    let body = received.recv_timeout(Duration::from_secs(5)).unwrap().body;
    assert!(
        body.contains("avwap-execution.service failed (Result=start-limit-hit)"),
        "{body}"
    );
    assert!(body.contains("start limit"), "{body}");

    // The summary needs the journal: none yet is exit 13, an empty one is a quiet day.
    let out = alert_command(
        state.path(),
        Some(&url),
        &["summary", "--date", "2010-08-09"],
    )
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(13),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(avwap::execution::db::StateDb::open(&state.path().join("execution.sqlite")).unwrap());
    succeeds(&mut alert_command(
        state.path(),
        Some(&url),
        &["summary", "--date", "2010-08-09"],
    ));
    let body = received.recv_timeout(Duration::from_secs(5)).unwrap().body;
    assert!(body.contains("day summary 2010-08-09"), "{body}");
    assert!(body.contains("no open positions"), "{body}");

    // No webhook: exit 10 and why; a refusing webhook: exit 12; the URL is never printed.
    let out = alert_command(state.path(), None, &["test"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(10));
    assert!(String::from_utf8_lossy(&out.stderr).contains("alert-webhook-url"));
    let (refusing, _rx) = receiver(500);
    let out = alert_command(state.path(), Some(&refusing), &["test"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(12),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("not delivered"), "{all}");
    assert_no_token(&all);
}
