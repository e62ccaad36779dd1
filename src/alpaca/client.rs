//! The Alpaca HTTP client: base URLs, key headers, timeouts, a request-rate limiter, `429`
//! handling, bounded retries for idempotent GETs only, a cycle deadline, and typed errors.
//!
//! Requests are async (reqwest on the process's one tokio runtime, [`super::runtime`]);
//! [`AlpacaClient::execute`] and [`AlpacaClient::json`] are the synchronous facade for callers
//! on ordinary threads, [`AlpacaClient::execute_async`] / [`AlpacaClient::json_async`] the
//! async API for concurrent reads.
//!
//! Rules this file enforces:
//! - A mutating request (POST, PATCH, DELETE) is sent exactly once. A timeout, transport error
//!   or 5xx on it is [`AlpacaError::UnknownOutcome`]: the caller looks the order up by its client
//!   order id; nothing here ever resends it.
//! - GETs are retried with exponential backoff on transport errors, 5xx and 429 (honouring
//!   `Retry-After`), at most [`ClientConfig::max_get_retries`] times.
//! - Every request first takes a token from the rate limiter (default 200 per minute, Alpaca's
//!   account budget); `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset` pauses the limiter
//!   until the reset. The limiter is shared by every client of one [`AlpacaClient::sibling`]
//!   family (the broker and the data feed of one process), so the budget is the account's.
//! - Under a deadline ([`AlpacaClient::set_deadline`], [`AlpacaClient::deadline_until`], or the
//!   `deadline` argument of the async API) no request, retry, backoff or limiter wait runs past
//!   it: a GET that cannot finish is [`AlpacaError::DeadlineExceeded`]; a mutating request not
//!   yet handed to the network is [`AlpacaError::NotSent`] (provably nothing changed); one
//!   already sent stays [`AlpacaError::UnknownOutcome`].
//! - The key pair lives in [`Secret`]s; it is only exposed when the headers are built, and no
//!   `Debug` output or error message carries it.

use crate::alpaca::runtime::{self, RuntimeError};
use crate::broker::BrokerError;
use crate::credentials::{AlpacaCredentials, CredentialError, CredentialStore, Secret};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Client, Response};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::runtime::Handle;

pub const PAPER_TRADING_URL: &str = "https://paper-api.alpaca.markets";
pub const LIVE_TRADING_URL: &str = "https://api.alpaca.markets";
pub const DATA_URL: &str = "https://data.alpaca.markets";

pub const HEADER_KEY_ID: &str = "APCA-API-KEY-ID";
pub const HEADER_SECRET_KEY: &str = "APCA-API-SECRET-KEY";

/// Alpaca's documented budget: 200 requests per minute per account.
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 200;

/// Which Alpaca environment the trading URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Paper,
    Live,
}

/// Base URLs (no trailing slash). Tests point both at a loopback fake server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub trading: String,
    pub data: String,
}

impl Endpoints {
    pub fn for_environment(environment: Environment) -> Endpoints {
        Endpoints {
            trading: match environment {
                Environment::Paper => PAPER_TRADING_URL,
                Environment::Live => LIVE_TRADING_URL,
            }
            .to_string(),
            data: DATA_URL.to_string(),
        }
    }

    /// Both APIs served from one base URL (the fake server).
    pub fn single(base: &str) -> Endpoints {
        let base = base.trim_end_matches('/').to_string();
        Endpoints {
            trading: base.clone(),
            data: base,
        }
    }
}

/// Client settings; every field has a default suitable for production.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub endpoints: Endpoints,
    /// Time allowed to establish the TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Time allowed for the whole request, response included.
    pub timeout: Duration,
    /// Request budget of the limiter (token bucket; burst = one tenth of it, at least 1).
    pub requests_per_minute: u32,
    /// How often a GET is retried after a transport error, 5xx or 429.
    pub max_get_retries: u32,
    /// First backoff between GET retries; doubles per attempt up to `max_backoff`.
    pub backoff_base: Duration,
    pub max_backoff: Duration,
    /// Longest `Retry-After` / rate-limit reset we are willing to sleep through inside one
    /// call; a longer one is returned as [`AlpacaError::RateLimited`].
    pub max_rate_limit_wait: Duration,
    pub user_agent: String,
}

impl ClientConfig {
    pub fn new(endpoints: Endpoints) -> ClientConfig {
        ClientConfig {
            endpoints,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            requests_per_minute: DEFAULT_REQUESTS_PER_MINUTE,
            max_get_retries: 3,
            backoff_base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_rate_limit_wait: Duration::from_secs(60),
            user_agent: format!("avwap/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    pub fn for_environment(environment: Environment) -> ClientConfig {
        ClientConfig::new(Endpoints::for_environment(environment))
    }
}

/// Which API a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Trading,
    Data,
}

/// Alpaca failures, classified by what the caller may safely do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlpacaError {
    /// Credentials missing or unreadable (nothing was sent).
    #[error("Alpaca credentials unavailable: {0}")]
    Credentials(String),
    /// 401: the key pair was refused.
    #[error("Alpaca refused the API key (HTTP 401{}): {message}; check alpaca-key-id / alpaca-secret-key and that they belong to the {} environment", code_text(.code), .environment_hint)]
    Auth {
        code: Option<String>,
        message: String,
        environment_hint: String,
    },
    /// 403: forbidden. For orders this is a rejection (insufficient qty or buying power,
    /// trading suspended); for market data usually the data subscription.
    #[error("{}", forbidden_text(.code, .message, *.subscription))]
    Forbidden {
        code: Option<String>,
        message: String,
        /// "subscription does not permit …": the plan does not include this data.
        subscription: bool,
    },
    /// 422 (or another 4xx): the request was refused; nothing was changed.
    #[error("Alpaca rejected the request (HTTP {status}{}): {message}", code_text(.code))]
    Rejected {
        status: u16,
        code: Option<String>,
        message: String,
    },
    #[error("not found at Alpaca: {message}")]
    NotFound { message: String },
    /// 429 that we did not (or could no longer) wait out.
    #[error("Alpaca rate limit hit{}", .retry_after.map(|d| format!("; retry after {:.1} s", d.as_secs_f64())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// A GET failed (transport error, timeout or 5xx) after all retries; safe to retry later.
    #[error("Alpaca read failed after {attempts} attempt(s): {message}")]
    ReadFailed { attempts: u32, message: String },
    /// A mutating request got no usable answer; its effect must be looked up, never assumed.
    #[error("outcome of {method} {path} unknown: {message}")]
    UnknownOutcome {
        method: String,
        path: String,
        message: String,
    },
    /// The answer did not have the shape the spec promises: the answer is what is wrong, not
    /// the network or the keys, and the message names the field.
    #[error("Alpaca's answer to {path} is malformed: {message}")]
    Decode { path: String, message: String },
    /// A GET could not finish before the deadline (no answer yet, or the next retry, backoff or
    /// rate-limit wait would end past it). Nothing is wrong with the request: read again later.
    #[error("Alpaca read GET {path} stopped at the cycle deadline after {attempts} attempt(s): {cause}; it is read again next cycle")]
    DeadlineExceeded {
        path: String,
        attempts: u32,
        cause: String,
    },
    /// A mutating request was never handed to the network: the deadline came first (e.g. while
    /// it waited for a rate-limit token). Provably nothing changed at Alpaca.
    #[error("{method} {path} was not sent: {cause}; nothing was changed at Alpaca")]
    NotSent {
        method: String,
        path: String,
        cause: String,
    },
    /// The process could not start its network runtime (nothing was sent).
    #[error("{0}")]
    Runtime(#[from] RuntimeError),
}

fn code_text(code: &Option<String>) -> String {
    code.as_ref()
        .map(|c| format!(", code {c}"))
        .unwrap_or_default()
}

fn forbidden_text(code: &Option<String>, message: &str, subscription: bool) -> String {
    if subscription {
        format!(
            "forbidden by the Alpaca data subscription (HTTP 403{}): {message}; the plan does \
             not include this data (free plans get no SIP data for the last 15 minutes: end \
             the request earlier, or upgrade the plan)",
            code_text(code)
        )
    } else {
        format!(
            "Alpaca refused the request (HTTP 403{}): {message}",
            code_text(code)
        )
    }
}

impl AlpacaError {
    /// Whether this error says Alpaca did not act on the request.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            AlpacaError::Forbidden { .. }
                | AlpacaError::Rejected { .. }
                | AlpacaError::NotFound { .. }
        )
    }
}

impl From<AlpacaError> for BrokerError {
    fn from(error: AlpacaError) -> BrokerError {
        match error {
            AlpacaError::Credentials(_) | AlpacaError::Auth { .. } => BrokerError::Auth {
                message: error.to_string(),
            },
            AlpacaError::Forbidden {
                code,
                message,
                subscription,
            } => BrokerError::Rejected {
                code,
                message: if subscription {
                    forbidden_text(&None, &message, true)
                } else {
                    message
                },
            },
            AlpacaError::Rejected { code, message, .. } => BrokerError::Rejected { code, message },
            AlpacaError::NotFound { message } => BrokerError::NotFound { message },
            AlpacaError::RateLimited { retry_after } => BrokerError::RateLimited { retry_after },
            AlpacaError::Decode { path, message } => BrokerError::Malformed {
                operation: path,
                message,
            },
            AlpacaError::ReadFailed { .. }
            | AlpacaError::DeadlineExceeded { .. }
            // Raised when a client is built, before any request; a later attempt may succeed.
            | AlpacaError::Runtime(_) => BrokerError::RetryableRead {
                message: error.to_string(),
            },
            AlpacaError::UnknownOutcome { .. } => BrokerError::UnknownOutcome {
                message: error.to_string(),
            },
            AlpacaError::NotSent { .. } => BrokerError::NotSent {
                message: error.to_string(),
            },
        }
    }
}

impl From<CredentialError> for AlpacaError {
    fn from(error: CredentialError) -> AlpacaError {
        // CredentialError names the credential and where it was looked for, never a value.
        AlpacaError::Credentials(error.to_string())
    }
}

/// Alpaca's error body: `{"code": 40010001, "message": "…"}` (code is a number).
#[derive(Debug, serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
}

/// Longest excerpt of a response (its `message`, or the text of a non-JSON body) that goes
/// into an error message: enough for any Alpaca message, too little to carry a page.
pub const MAX_BODY_EXCERPT: usize = 200;

/// Longest `code` shown (Alpaca's are 8 digits).
const MAX_CODE_CHARS: usize = 16;

/// What replaces the key id or the secret wherever they appear in text from the network.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not searched for: no Alpaca key is (key ids have 20
/// characters, secrets 40), and replacing a short string would garble every message.
const MIN_REDACTED_CHARS: usize = 8;

/// `text` with every occurrence of each of `secrets` replaced by [`REDACTED`]. Run on the
/// whole text before it is cut, so no half of a secret survives at the cut.
pub fn redact_secrets(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_string();
    for secret in secrets {
        if secret.len() >= MIN_REDACTED_CHARS && text.contains(secret) {
            text = text.replace(secret, REDACTED);
        }
    }
    text
}

/// `text` as it may appear in a log line: printable ASCII (runs of whitespace become one
/// space, anything else `?`), at most `max` bytes, marked `…` when cut.
pub fn printable_excerpt(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 3));
    let mut cut = false;
    let mut last_space = true; // also trims leading whitespace
    for c in text.chars() {
        let mapped = if c.is_whitespace() {
            if last_space {
                continue;
            }
            ' '
        } else if c.is_ascii_graphic() {
            c
        } else {
            '?'
        };
        last_space = mapped == ' ';
        if out.len() >= max {
            cut = true;
            break;
        }
        out.push(mapped);
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    if cut {
        out.push('…');
    }
    out
}

/// Code and message of an error response, safe to show: only Alpaca's `code` and `message`
/// fields of a JSON body (anything else a proxy or a server put there is dropped), or a short
/// printable excerpt of any other body; the key pair redacted first, then cut to
/// [`MAX_BODY_EXCERPT`] bytes. A reflecting proxy that echoes the request headers cannot put
/// the keys into an exit message or the journal.
fn parse_error_body(text: &str, secrets: &[&str]) -> (Option<String>, String) {
    let safe = |text: &str, max: usize| printable_excerpt(&redact_secrets(text, secrets), max);
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => {
            let code = body
                .code
                .map(|c| match c {
                    serde_json::Value::String(s) => safe(&s, MAX_CODE_CHARS),
                    other => safe(&other.to_string(), MAX_CODE_CHARS),
                })
                .filter(|c| !c.is_empty());
            let message = match body.message.map(|m| safe(&m, MAX_BODY_EXCERPT)) {
                Some(m) if !m.is_empty() => m,
                _ => "(no message in the response)".to_string(),
            };
            (code, message)
        }
        Err(_) => {
            let excerpt = safe(text, MAX_BODY_EXCERPT);
            let message = if excerpt.is_empty() {
                "(empty response body)".to_string()
            } else {
                excerpt
            };
            (None, message)
        }
    }
}

/// A token bucket: `per_minute` tokens a minute, holding at most `burst`. A pause (after a 429
/// or an exhausted `X-RateLimit-Remaining`) blocks every token until it ends.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    paused_until: Option<Instant>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        let per_minute = per_minute.max(1);
        let burst = f64::from((per_minute / 10).max(1));
        RateLimiter {
            per_second: f64::from(per_minute) / 60.0,
            burst,
            tokens: burst,
            last: Instant::now(),
            paused_until: None,
        }
    }

    /// How long to wait before a token is available at `now`; takes it if zero.
    pub fn try_take(&mut self, now: Instant) -> Duration {
        if let Some(until) = self.paused_until {
            if until > now {
                return until - now;
            }
            self.paused_until = None;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.per_second)
        }
    }

    /// No token before `until` (a later pause wins over an earlier one).
    pub fn pause_until(&mut self, until: Instant) {
        if self.paused_until.is_none_or(|current| current < until) {
            self.paused_until = Some(until);
        }
    }
}

/// What a response told us about the rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RateInfo {
    retry_after: Option<Duration>,
    /// Remaining is 0: wait this long for the reset.
    exhausted_for: Option<Duration>,
}

fn rate_info(headers: &HeaderMap) -> RateInfo {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .map(str::to_string)
    };
    // Retry-After in seconds (the HTTP-date form is not used by Alpaca; treated as absent).
    let retry_after = header("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    let remaining = header("x-ratelimit-remaining").and_then(|v| v.parse::<i64>().ok());
    let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok());
    let exhausted_for = match (remaining, reset) {
        (Some(r), Some(reset)) if r <= 0 => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            Some(Duration::from_secs(reset.saturating_sub(now)))
        }
        _ => None,
    };
    RateInfo {
        retry_after,
        exhausted_for,
    }
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub api: Api,
    pub method: Method,
    pub path: &'a str,
    pub query: Vec<(&'a str, String)>,
    pub body: Option<serde_json::Value>,
}

impl<'a> Request<'a> {
    pub fn get(api: Api, path: &'a str) -> Request<'a> {
        Request {
            api,
            method: Method::GET,
            path,
            query: Vec::new(),
            body: None,
        }
    }

    pub fn with_body(method: Method, path: &'a str, body: serde_json::Value) -> Request<'a> {
        Request {
            api: Api::Trading,
            method,
            path,
            query: Vec::new(),
            body: Some(body),
        }
    }

    pub fn query(mut self, name: &'a str, value: impl Into<String>) -> Request<'a> {
        self.query.push((name, value.into()));
        self
    }

    fn is_idempotent_read(&self) -> bool {
        self.method == Method::GET
    }
}

/// A successful answer: status and body text.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// What every client of one family shares (see [`AlpacaClient::sibling`]): the connection
/// pool, the key headers, the runtime, the rate limiter and the deadline.
struct Shared {
    http: Client,
    /// Built once from the [`Secret`]s, marked sensitive so no `Debug` of a request shows them.
    key_id: HeaderValue,
    secret_key: HeaderValue,
    /// Kept only for `Debug` (both print as `[redacted]`).
    key_id_secret: Secret,
    secret_key_secret: Secret,
    runtime: Handle,
    /// Locked briefly and never across an `.await` (a std guard is not `Send`).
    limiter: Mutex<RateLimiter>,
    deadline: Mutex<Option<Instant>>,
}

impl Shared {
    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_deadline(&self, deadline: Option<Instant>) {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner()) = deadline;
    }
}

/// The Alpaca HTTP client. Shareable across threads (`&self` methods).
///
/// Clients made with [`AlpacaClient::sibling`] share one rate limiter, one deadline and one
/// connection pool; each counts its own requests ([`AlpacaClient::requests_sent`]).
pub struct AlpacaClient {
    shared: Arc<Shared>,
    config: ClientConfig,
    requests: AtomicU64,
}

impl fmt::Debug for AlpacaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlpacaClient")
            .field("endpoints", &self.config.endpoints)
            .field("key_id", &self.shared.key_id_secret)
            .field("secret_key", &self.shared.secret_key_secret)
            .field("requests_sent", &self.requests_sent())
            .field("deadline", &self.shared.deadline())
            .finish_non_exhaustive()
    }
}

/// Restores the deadline that was in force before [`AlpacaClient::deadline_until`] when
/// dropped.
#[must_use = "the deadline is lifted as soon as the guard is dropped"]
pub struct DeadlineGuard {
    shared: Arc<Shared>,
    previous: Option<Instant>,
}

impl fmt::Debug for DeadlineGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadlineGuard")
            .field("previous", &self.previous)
            .finish()
    }
}

impl Drop for DeadlineGuard {
    fn drop(&mut self) {
        self.shared.set_deadline(self.previous);
    }
}

/// A header value holding a secret: refused (without echoing it) when it is not a valid header.
fn secret_header(secret: &Secret, name: &str) -> Result<HeaderValue, AlpacaError> {
    let mut value = HeaderValue::from_str(secret.expose()).map_err(|_| {
        AlpacaError::Credentials(format!(
            "the {name} contains characters an HTTP header cannot carry (a line break or \
             non-ASCII text?); check the credential file or variable (value not shown)"
        ))
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Why no rate-limit token was taken.
enum TokenRefused {
    /// The limiter is paused longer than `max_rate_limit_wait`.
    TooLong(Duration),
    /// The token would only come after the deadline.
    Deadline(Duration),
}

/// The outcome of one attempt that got as far as the network.
enum Attempt {
    /// No response (connect error, timeout, reset).
    Transport(reqwest::Error),
    Answered {
        status: StatusCode,
        info: RateInfo,
        body: Result<String, reqwest::Error>,
    },
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl AlpacaClient {
    /// A client with its own rate limiter and deadline (start of a family; more members via
    /// [`AlpacaClient::sibling`]). Starts the process's runtime if it is not running yet.
    pub fn new(
        credentials: &AlpacaCredentials,
        config: ClientConfig,
    ) -> Result<AlpacaClient, AlpacaError> {
        let runtime = runtime::handle()?;
        let key_id = secret_header(&credentials.key_id, "API key id")?;
        let secret_key = secret_header(&credentials.secret_key, "API secret key")?;
        // Built inside the runtime's context: the connector may look for the reactor.
        let http = {
            let _context = runtime.enter();
            Client::builder()
                .connect_timeout(config.connect_timeout)
                .timeout(config.timeout)
                .user_agent(config.user_agent.clone())
                .build()
                .map_err(|e| {
                    AlpacaError::Credentials(format!("cannot build the HTTP client: {e}"))
                })?
        };
        Ok(AlpacaClient {
            shared: Arc::new(Shared {
                http,
                key_id,
                secret_key,
                key_id_secret: credentials.key_id.clone(),
                secret_key_secret: credentials.secret_key.clone(),
                runtime,
                limiter: Mutex::new(RateLimiter::new(config.requests_per_minute)),
                deadline: Mutex::new(None),
            }),
            config,
            requests: AtomicU64::new(0),
        })
    }

    /// Credentials from the store (systemd credentials, then `APCA_*`); fails fast, naming the
    /// missing credential, before anything is sent.
    pub fn from_store(
        store: &CredentialStore,
        config: ClientConfig,
    ) -> Result<AlpacaClient, AlpacaError> {
        let credentials = store.alpaca()?;
        AlpacaClient::new(&credentials, config)
    }

    /// Another client of this family: same keys, settings, connection pool, rate limiter and
    /// deadline; its own request counter. The broker and the data feed of one process are
    /// siblings, so they spend one request budget (Alpaca counts per account) and one cycle
    /// deadline bounds both.
    pub fn sibling(&self) -> AlpacaClient {
        AlpacaClient {
            shared: Arc::clone(&self.shared),
            config: self.config.clone(),
            requests: AtomicU64::new(0),
        }
    }

    /// Whether `other` is of the same family (shares the limiter and the deadline).
    pub fn is_sibling_of(&self, other: &AlpacaClient) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// HTTP requests sent so far by this client (every attempt counts), for the per-run report.
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The runtime the requests run on (the process's one runtime).
    pub fn runtime(&self) -> &Handle {
        &self.shared.runtime
    }

    /// Set (or with `None` lift) the deadline of every request of this family, synchronous
    /// and async alike. Prefer [`AlpacaClient::deadline_until`], which cannot be forgotten.
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        self.shared.set_deadline(deadline);
    }

    /// The deadline in force for this family, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.shared.deadline()
    }

    /// Bound every request of this family by `deadline` until the guard is dropped, which
    /// restores the previous deadline. An earlier deadline already in force stays in force
    /// (a nested scope can only tighten it).
    pub fn deadline_until(&self, deadline: Instant) -> DeadlineGuard {
        let previous = self.shared.deadline();
        self.shared.set_deadline(earliest(previous, Some(deadline)));
        DeadlineGuard {
            shared: Arc::clone(&self.shared),
            previous,
        }
    }

    /// Run `future` (e.g. from the async API) to completion from synchronous code on the
    /// process's runtime. Do not call it from async code (see [`super::runtime`]); if that
    /// happens anyway, it still works, on a helper thread.
    pub fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        runtime::block_on(&self.shared.runtime, future)
    }

    /// The key pair, for [`redact_secrets`] on text from the network.
    fn secrets(&self) -> [&str; 2] {
        [
            self.shared.key_id_secret.expose(),
            self.shared.secret_key_secret.expose(),
        ]
    }

    /// Text from the network (an error body, a decoder's or transport's message, a field of an
    /// answer) as it may go into an error: the keys redacted, printable, at most `max` bytes.
    /// For every caller that puts answer text into a message.
    pub fn network_text(&self, text: &str, max: usize) -> String {
        printable_excerpt(&redact_secrets(text, &self.secrets()), max)
    }

    /// A transport error in words, the keys redacted (reqwest names only the URL, but the
    /// chain of causes comes from other crates: no guarantee is cheaper than this one).
    fn transport_text(&self, error: &reqwest::Error) -> String {
        redact_secrets(&describe_transport_error(error), &self.secrets())
    }

    fn environment_hint(&self) -> String {
        let t = &self.config.endpoints.trading;
        if t == PAPER_TRADING_URL {
            "paper".to_string()
        } else if t == LIVE_TRADING_URL {
            "live".to_string()
        } else {
            format!("configured ({t})")
        }
    }

    fn url(&self, api: Api, path: &str) -> String {
        let base = match api {
            Api::Trading => &self.config.endpoints.trading,
            Api::Data => &self.config.endpoints.data,
        };
        format!("{}{path}", base.trim_end_matches('/'))
    }

    /// Wait for a rate-limit token. Refuses instead of waiting when the limiter is paused
    /// longer than we may wait, or when the token would come after `deadline` (the wait is
    /// never slept through only to fail at the deadline).
    async fn take_token(&self, deadline: Option<Instant>) -> Result<(), TokenRefused> {
        loop {
            let now = Instant::now();
            let wait = self
                .shared
                .limiter
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .try_take(now);
            if wait.is_zero() {
                return Ok(());
            }
            if wait > self.config.max_rate_limit_wait {
                return Err(TokenRefused::TooLong(wait));
            }
            if deadline.is_some_and(|d| now + wait >= d) {
                return Err(TokenRefused::Deadline(wait));
            }
            tokio::time::sleep(wait).await;
        }
    }

    fn pause(&self, wait: Duration) {
        self.shared
            .limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pause_until(Instant::now() + wait);
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(16));
        self.config
            .backoff_base
            .saturating_mul(factor)
            .min(self.config.max_backoff)
    }

    /// Send one attempt and read its body. Secrets go into the headers here and nowhere else.
    async fn attempt(&self, request: &Request<'_>) -> Attempt {
        let mut builder = self
            .shared
            .http
            .request(request.method.clone(), self.url(request.api, request.path))
            .header(HEADER_KEY_ID, self.shared.key_id.clone())
            .header(HEADER_SECRET_KEY, self.shared.secret_key.clone());
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response: Response = match builder.send().await {
            Ok(response) => response,
            Err(error) => return Attempt::Transport(error),
        };
        let status = response.status();
        let info = rate_info(response.headers());
        // The pause applies even if the body is then lost.
        if let Some(wait) = info.exhausted_for {
            self.pause(wait.min(self.config.max_rate_limit_wait));
        }
        Attempt::Answered {
            status,
            info,
            body: response.text().await,
        }
    }

    /// Send a request: GETs with bounded retries, mutating requests exactly once; the
    /// synchronous facade of [`AlpacaClient::execute_async`] (under the family deadline).
    pub fn execute(&self, request: &Request<'_>) -> Result<Answer, AlpacaError> {
        self.block_on(self.execute_async(request, None))
    }

    /// Send a request: GETs with bounded retries, mutating requests exactly once; bounded by
    /// the earlier of `deadline` and the family deadline ([`AlpacaClient::set_deadline`]).
    pub async fn execute_async(
        &self,
        request: &Request<'_>,
        deadline: Option<Instant>,
    ) -> Result<Answer, AlpacaError> {
        let deadline = earliest(deadline, self.shared.deadline());
        let idempotent = request.is_idempotent_read();
        let max_attempts = if idempotent {
            self.config.max_get_retries + 1
        } else {
            1
        };
        let method = request.method.to_string();
        let path = request.path.to_string();
        // A read stopped by the deadline after `attempts` attempts.
        let read_deadline = |attempts: u32, cause: String| AlpacaError::DeadlineExceeded {
            path: path.clone(),
            attempts,
            cause,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.take_token(deadline).await {
                Ok(()) => {}
                Err(TokenRefused::Deadline(wait)) => {
                    let cause = format!(
                        "the rate limiter would only allow it in {:.1} s, past the deadline",
                        wait.as_secs_f64()
                    );
                    return Err(if idempotent {
                        read_deadline(attempt - 1, cause)
                    } else {
                        AlpacaError::NotSent {
                            method,
                            path,
                            cause,
                        }
                    });
                }
                Err(TokenRefused::TooLong(wait)) => {
                    if !idempotent && deadline.is_some() {
                        // Under a deadline the caller needs to know it was not sent.
                        return Err(AlpacaError::NotSent {
                            method,
                            path,
                            cause: format!(
                                "the rate limiter is paused for {:.1} s",
                                wait.as_secs_f64()
                            ),
                        });
                    }
                    return Err(AlpacaError::RateLimited {
                        retry_after: Some(wait),
                    });
                }
            }
            let outcome = match deadline {
                None => self.attempt(request).await,
                Some(d) => {
                    // Checked after the token wait: past the deadline nothing is handed to the
                    // network, so a mutating request provably stays unsent.
                    if Instant::now() >= d {
                        let cause = "the deadline passed before it could be sent".to_string();
                        return Err(if idempotent {
                            read_deadline(attempt - 1, cause)
                        } else {
                            AlpacaError::NotSent {
                                method,
                                path,
                                cause,
                            }
                        });
                    }
                    match tokio::time::timeout_at(d.into(), self.attempt(request)).await {
                        Ok(outcome) => outcome,
                        Err(_elapsed) if idempotent => {
                            return Err(read_deadline(
                                attempt,
                                "no complete answer before the deadline".to_string(),
                            ))
                        }
                        Err(_elapsed) => {
                            return Err(AlpacaError::UnknownOutcome {
                                method,
                                path,
                                message: "sent, but no complete answer before the cycle \
                                          deadline"
                                    .to_string(),
                            })
                        }
                    }
                }
            };
            let retry_wait = match outcome {
                Attempt::Transport(error) => {
                    let message = self.transport_text(&error);
                    if !idempotent {
                        return Err(AlpacaError::UnknownOutcome {
                            method,
                            path,
                            message,
                        });
                    }
                    if attempt >= max_attempts {
                        return Err(AlpacaError::ReadFailed {
                            attempts: attempt,
                            message: format!("{method} {path}: {message}"),
                        });
                    }
                    self.backoff(attempt - 1)
                }
                Attempt::Answered { status, info, body } => match body {
                    Err(error) if !idempotent => {
                        return Err(AlpacaError::UnknownOutcome {
                            method,
                            path,
                            message: format!(
                                "HTTP {status} but the body was lost: {}",
                                self.transport_text(&error)
                            ),
                        })
                    }
                    Err(error) => {
                        if attempt >= max_attempts {
                            return Err(AlpacaError::ReadFailed {
                                attempts: attempt,
                                message: self.transport_text(&error),
                            });
                        }
                        self.backoff(attempt - 1)
                    }
                    Ok(body) if status.is_success() => {
                        return Ok(Answer {
                            status: status.as_u16(),
                            body,
                        })
                    }
                    Ok(_) if status == StatusCode::TOO_MANY_REQUESTS => {
                        let wait = info
                            .retry_after
                            .or(info.exhausted_for)
                            .unwrap_or_else(|| self.backoff(attempt - 1));
                        self.pause(wait.min(self.config.max_rate_limit_wait));
                        tracing::warn!(
                            method = %request.method,
                            path = request.path,
                            "Alpaca answered 429 (rate limit); waiting {:.1} s",
                            wait.as_secs_f64()
                        );
                        // A 429 was not processed; still, a mutating request is not resent
                        // here: the caller decides (an order is looked up by client id).
                        if !idempotent
                            || attempt >= max_attempts
                            || wait > self.config.max_rate_limit_wait
                        {
                            return Err(AlpacaError::RateLimited {
                                retry_after: Some(wait),
                            });
                        }
                        // The limiter pause does the waiting (and refuses a wait that would
                        // end past the deadline).
                        Duration::ZERO
                    }
                    Ok(body) if status.is_server_error() => {
                        let (_, message) = parse_error_body(&body, &self.secrets());
                        if !idempotent {
                            return Err(AlpacaError::UnknownOutcome {
                                method,
                                path,
                                message: format!("HTTP {status}: {message}"),
                            });
                        }
                        if attempt >= max_attempts {
                            return Err(AlpacaError::ReadFailed {
                                attempts: attempt,
                                message: format!("{method} {path}: HTTP {status}: {message}"),
                            });
                        }
                        self.backoff(attempt - 1)
                    }
                    Ok(body) => return Err(self.classify(status, request, &body)),
                },
            };
            if let Some(d) = deadline {
                if Instant::now() + retry_wait >= d {
                    return Err(read_deadline(
                        attempt,
                        format!(
                            "the last attempt failed and the next would start past the deadline \
                             (backoff {:.2} s)",
                            retry_wait.as_secs_f64()
                        ),
                    ));
                }
            }
            tracing::debug!(
                method = %request.method,
                path = request.path,
                attempt,
                "retrying an Alpaca read in {:.2} s",
                retry_wait.as_secs_f64()
            );
            if !retry_wait.is_zero() {
                tokio::time::sleep(retry_wait).await;
            }
        }
    }

    /// A 4xx other than 429.
    fn classify(&self, status: StatusCode, request: &Request<'_>, body: &str) -> AlpacaError {
        let (code, message) = parse_error_body(body, &self.secrets());
        match status {
            StatusCode::UNAUTHORIZED => AlpacaError::Auth {
                code,
                message,
                environment_hint: match request.api {
                    Api::Trading => self.environment_hint(),
                    // The Market Data API takes paper and live keys alike.
                    Api::Data => "paper or live".to_string(),
                },
            },
            StatusCode::FORBIDDEN => AlpacaError::Forbidden {
                subscription: message
                    .to_ascii_lowercase()
                    .contains("subscription does not permit"),
                code,
                message,
            },
            StatusCode::NOT_FOUND => AlpacaError::NotFound {
                message: format!("{} {}: {message}", request.method, request.path),
            },
            other => AlpacaError::Rejected {
                status: other.as_u16(),
                code,
                message,
            },
        }
    }

    /// Send and decode a JSON answer (synchronous facade, under the family deadline).
    pub fn json<T: DeserializeOwned + Send>(
        &self,
        request: &Request<'_>,
    ) -> Result<T, AlpacaError> {
        self.block_on(self.json_async(request, None))
    }

    /// Send and decode a JSON answer, bounded like [`AlpacaClient::execute_async`].
    pub async fn json_async<T: DeserializeOwned>(
        &self,
        request: &Request<'_>,
        deadline: Option<Instant>,
    ) -> Result<T, AlpacaError> {
        let answer = self.execute_async(request, deadline).await?;
        // serde_json quotes the offending value ("invalid type: string \"…\""): it is text
        // from the network like an error body.
        serde_json::from_str(&answer.body).map_err(|e| AlpacaError::Decode {
            path: request.path.to_string(),
            message: self.network_text(&e.to_string(), MAX_BODY_EXCERPT),
        })
    }
}

/// A transport error in words, without anything from the request but its URL.
fn describe_transport_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    // reqwest's Display carries the URL (no secrets: those travel in headers only).
    let mut text = format!("{kind}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_allows_a_burst_then_spaces_requests() {
        let mut limiter = RateLimiter::new(600); // 10/s, burst 60
        let now = Instant::now();
        for _ in 0..60 {
            assert_eq!(limiter.try_take(now), Duration::ZERO);
        }
        let wait = limiter.try_take(now);
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        assert_eq!(
            limiter.try_take(now + Duration::from_millis(100)),
            Duration::ZERO
        );
    }

    #[test]
    fn limiter_pause_blocks_tokens() {
        let mut limiter = RateLimiter::new(200);
        let now = Instant::now();
        limiter.pause_until(now + Duration::from_secs(3));
        assert_eq!(limiter.try_take(now), Duration::from_secs(3));
        assert_eq!(
            limiter.try_take(now + Duration::from_secs(3)),
            Duration::ZERO
        );
    }

    #[test]
    fn error_bodies_are_parsed_with_numeric_codes() {
        let (code, message) = parse_error_body(
            r#"{"code":40010001,"message":"client_order_id must be unique"}"#,
            &[],
        );
        assert_eq!(code.as_deref(), Some("40010001"));
        assert_eq!(message, "client_order_id must be unique");
        let (code, message) = parse_error_body("<html>bad gateway</html>", &[]);
        assert_eq!(code, None);
        assert_eq!(message, "<html>bad gateway</html>");
    }

    const KEY: &str = "PKTESTKEYID000000042";
    const SECRET: &str = "sEcReT-40-characters-long-0123456789abcd";

    /// Nothing of the key pair, nor a longer stretch of the body than allowed.
    fn assert_safe(code: &Option<String>, message: &str) {
        for text in [code.as_deref().unwrap_or(""), message] {
            assert!(!text.contains(KEY) && !text.contains(SECRET), "{text}");
            assert!(
                !text.contains(&SECRET[..10]) && !text.contains(&SECRET[30..]),
                "{text}"
            );
            assert!(!text.contains(&KEY[..10]), "{text}");
            assert!(
                text.len() <= MAX_BODY_EXCERPT + 3,
                "{} bytes: {text}",
                text.len()
            );
            assert!(
                text.chars()
                    .all(|c| c.is_ascii_graphic() || c == ' ' || c == '…'),
                "{text:?}"
            );
        }
    }

    #[test]
    fn error_bodies_keep_code_and_message_only_with_the_keys_redacted_and_cut() {
        let keys = [KEY, SECRET];
        // A reflecting proxy: the headers in the message and in other fields.
        let body = format!(
            r#"{{"code":40110000,"message":"request is not authorized: APCA-API-KEY-ID: {KEY} APCA-API-SECRET-KEY: {SECRET}","headers":{{"apca-api-secret-key":"{SECRET}"}}}}"#
        );
        let (code, message) = parse_error_body(&body, &keys);
        assert_eq!(code.as_deref(), Some("40110000"));
        assert_eq!(
            message,
            "request is not authorized: APCA-API-KEY-ID: [redacted] APCA-API-SECRET-KEY: [redacted]"
        );
        assert_safe(&code, &message);

        // The secret straddling the cut, in a long message with control characters.
        let long = format!(
            r#"{{"code":"{SECRET}","message":"{}\n\t\u0001{SECRET}{}"}}"#,
            "x".repeat(180),
            "y".repeat(500)
        );
        let (code, message) = parse_error_body(&long, &keys);
        assert_eq!(code.as_deref(), Some("[redacted]"));
        assert!(message.starts_with(&"x".repeat(180)), "{message}");
        assert_safe(&code, &message);

        // Non-JSON: a short printable excerpt, keys redacted.
        let html = format!(
            "<html>\r\n<body>proxy error\u{0}\u{7f} é {KEY}:{SECRET}</body>{}</html>",
            "z".repeat(1000)
        );
        let (code, message) = parse_error_body(&html, &keys);
        assert_eq!(code, None);
        assert!(message.starts_with("<html> <body>proxy error"), "{message}");
        assert!(message.contains("[redacted]:[redacted]"), "{message}");
        assert_safe(&code, &message);

        let (_, message) = parse_error_body(" \n ", &keys);
        assert_eq!(message, "(empty response body)");
        let (code, message) = parse_error_body(r#"{"code":null,"message":""}"#, &keys);
        assert_eq!(
            (code, message.as_str()),
            (None, "(no message in the response)")
        );
    }

    #[test]
    fn excerpts_are_printable_and_short() {
        assert_eq!(printable_excerpt("  a \n\n b\u{0}c  ", 200), "a b?c");
        assert_eq!(printable_excerpt("abcdef", 3), "abc…");
        assert_eq!(printable_excerpt("ééé", 200), "???");
        assert_eq!(redact_secrets("short k", &["k", ""]), "short k");
    }

    #[test]
    fn errors_map_to_broker_classes() {
        let forbidden = AlpacaError::Forbidden {
            code: Some("40310000".into()),
            message: "insufficient qty available for order".into(),
            subscription: false,
        };
        assert_eq!(
            BrokerError::from(forbidden),
            BrokerError::Rejected {
                code: Some("40310000".into()),
                message: "insufficient qty available for order".into()
            }
        );
        let sub = AlpacaError::Forbidden {
            code: None,
            message: "subscription does not permit querying recent SIP data".into(),
            subscription: true,
        };
        assert!(sub.to_string().contains("data subscription"), "{sub}");
        assert!(matches!(
            BrokerError::from(AlpacaError::UnknownOutcome {
                method: "POST".into(),
                path: "/v2/orders".into(),
                message: "timed out".into()
            }),
            BrokerError::UnknownOutcome { .. }
        ));
        assert!(matches!(
            BrokerError::from(AlpacaError::ReadFailed {
                attempts: 4,
                message: "HTTP 503".into()
            }),
            BrokerError::RetryableRead { .. }
        ));
        // A read stopped by the deadline is retryable; a mutation it stopped before sending is
        // "not sent", never "unknown".
        assert!(matches!(
            BrokerError::from(AlpacaError::DeadlineExceeded {
                path: "/v2/positions".into(),
                attempts: 1,
                cause: "no complete answer before the deadline".into()
            }),
            BrokerError::RetryableRead { .. }
        ));
        match BrokerError::from(AlpacaError::NotSent {
            method: "POST".into(),
            path: "/v2/orders".into(),
            cause: "the deadline passed before it could be sent".into(),
        }) {
            BrokerError::NotSent { message } => {
                assert!(
                    message.contains("POST /v2/orders was not sent"),
                    "{message}"
                );
                assert!(message.contains("nothing was changed"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deadlines_combine_to_the_earliest() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        assert_eq!(earliest(None, None), None);
        assert_eq!(earliest(Some(now), None), Some(now));
        assert_eq!(earliest(None, Some(later)), Some(later));
        assert_eq!(earliest(Some(later), Some(now)), Some(now));
    }
}
