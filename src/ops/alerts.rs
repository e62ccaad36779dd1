//! Optional alerts to a Slack-compatible incoming webhook (`POST {"text": "…"}`).
//!
//! Alerts must never hurt trading, so:
//! - [`Alerts::send`] only formats, checks the rate limit and puts the message on a bounded
//!   queue (`try_send`): it never blocks, never does I/O and returns in microseconds. When the
//!   queue is full the alert is dropped and counted.
//! - One background thread sends, with a bounded timeout per request (default 3 s), no
//!   redirects and no retries. A failure is logged (without the URL) and counted.
//! - [`Alerts::flush`] waits for the queue to drain for at most the given time (call it with
//!   ≤ 2 s on exit).
//! - Rate limit: the same (kind, key) is sent at most once per `rate_limit` (default 5 min);
//!   repeats are suppressed and counted. Keys are the caller's: e.g. the symbol for a stop
//!   moved, the client order id for a fill (never suppressed in practice), "started".
//!
//! The URL embeds a token, so it is a secret: it comes from the systemd credential
//! `alert-webhook-url` (`$CREDENTIALS_DIRECTORY`, via [`CredentialStore`]) or the env var
//! `AVWAP_ALERT_WEBHOOK_URL`, lives only in a [`Secret`], and is scrubbed from every error
//! text before it is logged. Without a URL alerts are off and every call is a no-op.

use crate::config::AlertsConfig;
use crate::credentials::{CredentialStore, Secret};
use std::collections::HashMap;
use std::fmt;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Env var with the webhook URL, used when no credential file exists.
pub const ENV_ALERT_WEBHOOK_URL: &str = "AVWAP_ALERT_WEBHOOK_URL";
/// Default: the same alert key at most once per 5 minutes.
pub const DEFAULT_RATE_LIMIT: Duration = Duration::from_secs(300);
/// Default per-request timeout (connect + send + answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default queue size; beyond it alerts are dropped.
pub const DEFAULT_QUEUE_CAPACITY: usize = 64;
/// Suggested bound for [`Alerts::flush`] on process exit.
pub const EXIT_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// What happened; decides the component and level in the message prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// Scan finished with candidates (text: counts).
    ScanDone,
    /// Scan finished with an empty watchlist.
    ScanEmpty,
    /// Scan failed (text: the error).
    ScanFailed,
    /// The execution service started (text: mode, state dir).
    ExecutionStarted,
    /// An order filled (key: client order id).
    OrderFilled,
    /// A protective stop moved (key: symbol).
    StopMoved,
    /// The kill switch is engaged (key: source).
    KillSwitch,
    /// An error in execution (key: where / symbol).
    Error,
    /// A systemd unit failed or hit its start limit (key: the unit).
    UnitFailed,
    /// The end-of-day summary (key: the session date).
    DaySummary,
    /// A test alert the operator asked for.
    Test,
}

/// Severity in the message prefix (the predecessor's levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertLevel {
    Info,
    Trade,
    Warning,
    Error,
}

impl AlertLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertLevel::Info => "INFO",
            AlertLevel::Trade => "TRADE",
            AlertLevel::Warning => "WARNING",
            AlertLevel::Error => "ERROR",
        }
    }
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::ScanDone => "scan-done",
            AlertKind::ScanEmpty => "scan-empty",
            AlertKind::ScanFailed => "scan-failed",
            AlertKind::ExecutionStarted => "execution-started",
            AlertKind::OrderFilled => "order-filled",
            AlertKind::StopMoved => "stop-moved",
            AlertKind::KillSwitch => "kill-switch",
            AlertKind::Error => "error",
            AlertKind::UnitFailed => "unit-failed",
            AlertKind::DaySummary => "day-summary",
            AlertKind::Test => "test",
        }
    }

    pub fn component(self) -> &'static str {
        match self {
            AlertKind::ScanDone | AlertKind::ScanEmpty | AlertKind::ScanFailed => "scan",
            AlertKind::UnitFailed => "systemd",
            AlertKind::Test => "ops",
            _ => "execution",
        }
    }

    pub fn level(self) -> AlertLevel {
        match self {
            AlertKind::ScanDone
            | AlertKind::ExecutionStarted
            | AlertKind::DaySummary
            | AlertKind::Test => AlertLevel::Info,
            AlertKind::OrderFilled | AlertKind::StopMoved => AlertLevel::Trade,
            AlertKind::ScanEmpty | AlertKind::KillSwitch => AlertLevel::Warning,
            AlertKind::ScanFailed | AlertKind::Error | AlertKind::UnitFailed => AlertLevel::Error,
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tuning; [`Default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    /// The same (kind, key) at most once per this long.
    pub rate_limit: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connect timeout (≤ `timeout`).
    pub connect_timeout: Duration,
    /// Queue size; a full queue drops new alerts.
    pub queue_capacity: usize,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            rate_limit: DEFAULT_RATE_LIMIT,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: Duration::from_secs(2),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
        }
    }
}

impl AlertSettings {
    /// Defaults with this rate limit (e.g. from a config field in minutes).
    pub fn with_rate_limit(rate_limit: Duration) -> AlertSettings {
        AlertSettings {
            rate_limit,
            ..AlertSettings::default()
        }
    }
}

/// What [`Alerts::send`] did with one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// On the queue; the background thread will post it.
    Queued,
    /// The same (kind, key) was sent less than `rate_limit` ago.
    Suppressed,
    /// The queue was full (the webhook is slow or down); counted in [`AlertStats::dropped`].
    Dropped,
    /// Alerts are off (no webhook URL).
    Disabled,
}

/// Counters since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlertStats {
    pub queued: u64,
    pub sent: u64,
    pub failed: u64,
    pub dropped: u64,
    pub suppressed: u64,
}

/// A webhook URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertsError {
    /// Never contains the URL.
    #[error(
        "the alert webhook URL from {origin} is not a valid http(s) URL ({reason}); alerts are off"
    )]
    InvalidUrl { origin: String, reason: String },
    #[error("cannot start the alert sender: {0}; alerts are off")]
    Start(String),
}

struct State {
    pending: usize,
    stats: AlertStats,
    last_sent: HashMap<String, Instant>,
}

struct Shared {
    state: Mutex<State>,
    drained: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Enabled {
    tx: SyncSender<String>,
    shared: Arc<Shared>,
    settings: AlertSettings,
    /// Only to scrub it out of texts; never formatted.
    url: Secret,
}

/// The alert sender. Cheap to clone; all clones share one queue and one thread.
#[derive(Clone)]
pub struct Alerts {
    inner: Option<Arc<Enabled>>,
}

impl fmt::Debug for Alerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alerts")
            .field("enabled", &self.inner.is_some())
            .finish_non_exhaustive()
    }
}

impl Alerts {
    /// Alerts off: every call is a no-op.
    pub fn disabled() -> Alerts {
        Alerts { inner: None }
    }

    /// From the process environment: the `alert-webhook-url` credential in
    /// `$CREDENTIALS_DIRECTORY`, else `AVWAP_ALERT_WEBHOOK_URL`, else off. Problems (an
    /// unreadable credential, an invalid URL) are logged as a warning and leave alerts off:
    /// alerts are never a reason not to trade.
    pub fn from_env(settings: AlertSettings) -> Alerts {
        Alerts::from_sources(
            &CredentialStore::from_process_env(),
            &crate::credentials::process_env,
            settings,
        )
    }

    /// The alert sender of a binary: the `[alerts]` settings, the webhook URL from the process
    /// environment as in [`Alerts::from_env`].
    pub fn from_config(config: &AlertsConfig) -> Alerts {
        // Saturating: the range is checked at load, but no value may overflow into a panic.
        Alerts::from_env(AlertSettings::with_rate_limit(Duration::from_secs(
            config.rate_limit_minutes.saturating_mul(60),
        )))
    }

    /// [`Alerts::from_env`] with injected sources (tests).
    pub fn from_sources(
        store: &CredentialStore,
        env: &dyn Fn(&str) -> Option<String>,
        settings: AlertSettings,
    ) -> Alerts {
        let (url, origin) = match store.alert_webhook_url() {
            Ok(Some(url)) => (
                url,
                match store.credentials_dir() {
                    Some(dir) => format!(
                        "systemd credential {}",
                        dir.join(crate::credentials::CREDENTIAL_ALERT_WEBHOOK_URL)
                            .display()
                    ),
                    None => "systemd credential".to_string(),
                },
            ),
            Ok(None) => match env(ENV_ALERT_WEBHOOK_URL).filter(|v| !v.trim().is_empty()) {
                Some(v) => (
                    Secret::new(v.trim().to_string()),
                    format!("environment variable {ENV_ALERT_WEBHOOK_URL}"),
                ),
                None => {
                    tracing::debug!("alerts off: no alert-webhook-url credential and no {ENV_ALERT_WEBHOOK_URL}");
                    return Alerts::disabled();
                }
            },
            Err(e) => {
                tracing::warn!("alerts off: {e}");
                return Alerts::disabled();
            }
        };
        match Alerts::new(url, &origin, settings) {
            Ok(alerts) => {
                tracing::info!(origin = %origin, "alerts on: webhook from {origin}");
                alerts
            }
            Err(e) => {
                tracing::warn!("{e}");
                Alerts::disabled()
            }
        }
    }

    /// Alerts to `url` (`origin` names where it came from, for error messages). Starts the
    /// sender thread, which logs through the subscriber current here.
    pub fn new(url: Secret, origin: &str, settings: AlertSettings) -> Result<Alerts, AlertsError> {
        let parsed = reqwest::Url::parse(url.expose()).map_err(|e| AlertsError::InvalidUrl {
            origin: origin.to_string(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(AlertsError::InvalidUrl {
                origin: origin.to_string(),
                reason: "the scheme must be http or https, with a host".to_string(),
            });
        }
        drop(parsed);
        let (tx, rx) = sync_channel::<String>(settings.queue_capacity.max(1));
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: 0,
                stats: AlertStats::default(),
                last_sent: HashMap::new(),
            }),
            drained: Condvar::new(),
        });
        let worker = Worker {
            rx,
            shared: Arc::clone(&shared),
            settings: settings.clone(),
            url: url.clone(),
        };
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        std::thread::Builder::new()
            .name("avwap-alerts".into())
            .spawn(move || tracing::dispatcher::with_default(&dispatch, || worker.run()))
            .map_err(|e| AlertsError::Start(e.to_string()))?;
        Ok(Alerts {
            inner: Some(Arc::new(Enabled {
                tx,
                shared,
                settings,
                url,
            })),
        })
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Queue one alert; never blocks. The message is
    /// `[avwap][<component>][<LEVEL>] <text>`.
    pub fn send(&self, kind: AlertKind, key: &str, text: &str) -> SendOutcome {
        let Some(inner) = &self.inner else {
            return SendOutcome::Disabled;
        };
        let message = scrub(
            &format!(
                "[avwap][{}][{}] {text}",
                kind.component(),
                kind.level().as_str()
            ),
            inner.url.expose(),
        );
        let rate_key = format!("{}:{key}", kind.as_str());
        let now = Instant::now();
        let mut state = inner.shared.lock();
        if let Some(last) = state.last_sent.get(&rate_key) {
            if now.duration_since(*last) < inner.settings.rate_limit {
                state.stats.suppressed += 1;
                return SendOutcome::Suppressed;
            }
        }
        state.pending += 1;
        match inner.tx.try_send(message) {
            Ok(()) => {
                state.stats.queued += 1;
                if state.last_sent.len() >= 4096 {
                    let limit = inner.settings.rate_limit;
                    state
                        .last_sent
                        .retain(|_, t| now.duration_since(*t) < limit);
                }
                state.last_sent.insert(rate_key, now);
                SendOutcome::Queued
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                state.pending -= 1;
                state.stats.dropped += 1;
                let dropped = state.stats.dropped;
                drop(state);
                // 1st, 10th, 100th… drop: enough to notice without flooding the log.
                if dropped.is_power_of_two() || dropped % 100 == 0 {
                    tracing::warn!(
                        dropped,
                        kind = kind.as_str(),
                        "alert queue full (the webhook is slow or down): alert dropped"
                    );
                }
                SendOutcome::Dropped
            }
        }
    }

    /// Wait until every queued alert was attempted, for at most `timeout`. Returns the number
    /// still pending (0 = all done).
    pub fn flush(&self, timeout: Duration) -> usize {
        let Some(inner) = &self.inner else {
            return 0;
        };
        let deadline = Instant::now() + timeout;
        let mut state = inner.shared.lock();
        while state.pending > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = match inner.shared.drained.wait_timeout(state, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        state.pending
    }

    pub fn stats(&self) -> AlertStats {
        match &self.inner {
            Some(inner) => inner.shared.lock().stats,
            None => AlertStats::default(),
        }
    }
}

/// Replace every occurrence of the secret URL (and of its token-bearing path) by `[redacted]`.
fn scrub(text: &str, url: &str) -> String {
    let mut out = text.replace(url, "[redacted]");
    if let Ok(parsed) = reqwest::Url::parse(url) {
        let path = parsed.path();
        if path.len() > 1 {
            out = out.replace(path, "/[redacted]");
        }
        if let Some(query) = parsed.query() {
            if !query.is_empty() {
                out = out.replace(query, "[redacted]");
            }
        }
    }
    out
}

/// An error and its sources on one line, without the URL.
fn describe(error: reqwest::Error, url: &str) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    scrub(&text, url)
}

struct Worker {
    rx: Receiver<String>,
    shared: Arc<Shared>,
    settings: AlertSettings,
    url: Secret,
}

impl Worker {
    fn run(self) {
        let client = reqwest::blocking::Client::builder()
            .timeout(self.settings.timeout)
            .connect_timeout(self.settings.connect_timeout.min(self.settings.timeout))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("avwap/", env!("CARGO_PKG_VERSION")))
            .build();
        let client = match client {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(
                    "cannot build the alert HTTP client: {}; alerts are dropped",
                    describe(e, self.url.expose())
                );
                None
            }
        };
        while let Ok(text) = self.rx.recv() {
            let ok = match &client {
                Some(client) => self.post(client, &text),
                None => false,
            };
            let mut state = self.shared.lock();
            if ok {
                state.stats.sent += 1;
            } else {
                state.stats.failed += 1;
            }
            state.pending = state.pending.saturating_sub(1);
            if state.pending == 0 {
                self.shared.drained.notify_all();
            }
        }
    }

    fn post(&self, client: &reqwest::blocking::Client, text: &str) -> bool {
        let started = Instant::now();
        let result = client
            .post(self.url.expose())
            .json(&serde_json::json!({ "text": text }))
            .send();
        match result {
            Ok(response) if response.status().is_success() => true,
            Ok(response) => {
                tracing::warn!(
                    status = response.status().as_u16(),
                    "alert webhook answered HTTP {}; alert not delivered",
                    response.status()
                );
                false
            }
            Err(e) => {
                tracing::warn!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "alert webhook failed: {}; alert not delivered",
                    describe(e, self.url.expose())
                );
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_a_component_and_level() {
        assert_eq!(AlertKind::ScanEmpty.component(), "scan");
        assert_eq!(AlertKind::ScanFailed.level(), AlertLevel::Error);
        assert_eq!(AlertKind::OrderFilled.component(), "execution");
        assert_eq!(AlertKind::OrderFilled.level(), AlertLevel::Trade);
        assert_eq!(AlertKind::KillSwitch.level().as_str(), "WARNING");
    }

    #[test]
    fn scrub_removes_url_path_and_query() {
        let url = "https://hooks.example/services/T0/B0/tok3n?key=abc";
        let text = format!("failed for url ({url}) and path /services/T0/B0/tok3n key=abc");
        let out = scrub(&text, url);
        assert!(!out.contains("tok3n"), "{out}");
        assert!(!out.contains("key=abc"), "{out}");
    }

    #[test]
    fn alerts_can_be_shared_across_threads() {
        fn send_sync<T: Send + Sync + Clone>() {}
        send_sync::<Alerts>();
    }

    #[test]
    fn disabled_is_a_no_op() {
        let alerts = Alerts::disabled();
        assert!(!alerts.enabled());
        assert_eq!(
            alerts.send(AlertKind::Error, "x", "y"),
            SendOutcome::Disabled
        );
        assert_eq!(alerts.flush(Duration::from_millis(1)), 0);
        assert_eq!(alerts.stats(), AlertStats::default());
    }

    #[test]
    fn invalid_urls_are_refused_without_showing_them() {
        for bad in [
            "ftp://hooks.example/s3cr3t",
            "not a url s3cr3t",
            "mailto:s3cr3t@example.org",
            "https://exa mple/s3cr3t",
        ] {
            let err = Alerts::new(
                Secret::new(bad.to_string()),
                "environment variable AVWAP_ALERT_WEBHOOK_URL",
                AlertSettings::default(),
            )
            .unwrap_err();
            let text = err.to_string();
            assert!(!text.contains("s3cr3t"), "{text}");
            assert!(text.contains("AVWAP_ALERT_WEBHOOK_URL"), "{text}");
        }
    }
}
