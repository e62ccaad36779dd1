//! Logging shared by the four binaries, built on `tracing`.
//!
//! Where the lines go ([`LogFormat`], flag `--log-format`, env `AVWAP_LOG_FORMAT`):
//! - `auto` (the default): to journald when `JOURNAL_STREAM` is set (systemd sets it for a
//!   service whose output goes to the journal), otherwise human-readable text on stderr;
//! - `text`: human-readable text on stderr;
//! - `json`: one JSON object per line on stderr, event fields at the top level;
//! - `journald`: to journald, whatever the environment says.
//!
//! Journald gets every event field as a journal field, upper-cased with the prefix `F_`
//! (`symbol` → `F_SYMBOL`, `client_order_id` → `F_CLIENT_ORDER_ID`), so
//! `journalctl -u execution.service F_SYMBOL=AAPL` finds one symbol's story. If the journal
//! socket cannot be reached the binary logs text to stderr instead and says so in one warning
//! line; logging never stops a binary.
//!
//! The level comes from `RUST_LOG` (default `info`; an invalid value is reported and `info`
//! used). Secrets never reach a log line because they only exist as
//! [`crate::credentials::Secret`], whose `Debug`/`Display` print `[redacted]`.

use std::fmt;
use std::io::IsTerminal;
use std::str::FromStr;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Env var read by [`init_from_env`] (and usable as the `env` of a `--log-format` flag).
pub const ENV_LOG_FORMAT: &str = "AVWAP_LOG_FORMAT";
/// Set by systemd for a unit whose stdout/stderr is connected to the journal.
pub const ENV_JOURNAL_STREAM: &str = "JOURNAL_STREAM";
/// The level filter, `tracing_subscriber::EnvFilter` syntax.
pub const ENV_RUST_LOG: &str = "RUST_LOG";
/// The level used when `RUST_LOG` is unset or invalid.
pub const DEFAULT_FILTER: &str = "info";
/// The prefix tracing-journald puts before every event field (`F_SYMBOL`).
pub const JOURNAL_FIELD_PREFIX: &str = "F_";

/// How and where the binaries log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// journald under systemd (`JOURNAL_STREAM` set), otherwise text on stderr.
    #[default]
    Auto,
    /// Human-readable text on stderr.
    Text,
    /// One JSON object per line on stderr.
    Json,
    /// journald (falls back to text on stderr when the journal is unreachable).
    Journald,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Auto => "auto",
            LogFormat::Text => "text",
            LogFormat::Json => "json",
            LogFormat::Journald => "journald",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown `--log-format` / `AVWAP_LOG_FORMAT` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid log format {0:?}: expected one of auto, text, json, journald")]
pub struct LogFormatError(pub String);

impl FromStr for LogFormat {
    type Err = LogFormatError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_log_format(s)
    }
}

/// Parse a log format name (`auto`, `text`, `json`, `journald`; case-insensitive).
pub fn parse_log_format(s: &str) -> Result<LogFormat, LogFormatError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(LogFormat::Auto),
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        "journald" => Ok(LogFormat::Journald),
        _ => Err(LogFormatError(s.to_string())),
    }
}

/// The two stderr formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StderrFormat {
    Text,
    Json,
}

/// Where logging ended up, as decided by [`init`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    Journald,
    Stderr(StderrFormat),
    /// The journal was wanted but unreachable; the reason is in the warning line.
    StderrFallback {
        reason: String,
    },
}

/// What [`init`] would do, before touching anything: pure, for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Journald,
    Stderr(StderrFormat),
}

/// Decide the target from the format and `JOURNAL_STREAM`.
pub fn plan(format: LogFormat, journal_stream: Option<&str>) -> Plan {
    match format {
        LogFormat::Text => Plan::Stderr(StderrFormat::Text),
        LogFormat::Json => Plan::Stderr(StderrFormat::Json),
        LogFormat::Journald => Plan::Journald,
        LogFormat::Auto => match journal_stream {
            Some(v) if !v.trim().is_empty() => Plan::Journald,
            _ => Plan::Stderr(StderrFormat::Text),
        },
    }
}

/// The level filter from a `RUST_LOG` value; `Err` carries the reason an invalid value was
/// replaced by [`DEFAULT_FILTER`].
pub fn filter_from(rust_log: Option<&str>) -> (EnvFilter, Option<String>) {
    match rust_log.map(str::trim).filter(|v| !v.is_empty()) {
        None => (EnvFilter::new(DEFAULT_FILTER), None),
        Some(value) => match EnvFilter::try_new(value) {
            Ok(filter) => (filter, None),
            Err(e) => (
                EnvFilter::new(DEFAULT_FILTER),
                Some(format!(
                    "{ENV_RUST_LOG}={value:?} is not a valid filter ({e}); logging at {DEFAULT_FILTER}"
                )),
            ),
        },
    }
}

/// A stderr-style layer writing to `writer`: text (with ANSI colours only when asked) or JSON
/// lines with the event's fields at the top level.
pub fn stderr_layer<S, W>(
    format: StderrFormat,
    writer: W,
    ansi: bool,
) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        StderrFormat::Text => Box::new(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(ansi),
        ),
        StderrFormat::Json => Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(writer),
        ),
    }
}

/// A complete subscriber logging to `writer` (no journald, nothing global): for tests and
/// tools that want to capture avwap's log lines.
pub fn subscriber_with_writer<W>(
    format: StderrFormat,
    filter: &str,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    Registry::default()
        .with(stderr_layer(format, writer, false).with_filter(EnvFilter::new(filter)))
}

/// The journald layer for `binary` (its `SYSLOG_IDENTIFIER`), with the default `F_` field
/// prefix and INFO at journal priority 6 ("info", so `journalctl -p info` means what it says).
pub fn journald_layer(binary: &str) -> std::io::Result<tracing_journald::Layer> {
    Ok(tracing_journald::layer()?
        .with_syslog_identifier(binary.to_string())
        .with_priority_mappings(tracing_journald::PriorityMappings {
            info: tracing_journald::Priority::Informational,
            debug: tracing_journald::Priority::Debug,
            ..tracing_journald::PriorityMappings::new()
        }))
}

/// Install the global subscriber for `binary` (used as the journal's `SYSLOG_IDENTIFIER` and
/// in the fallback warning). Reads `JOURNAL_STREAM` and `RUST_LOG`. Never fails and never
/// panics: a second call, a journal that cannot be reached or a bad `RUST_LOG` only lead to a
/// warning line.
pub fn init(binary: &str, format: LogFormat) -> LogTarget {
    let journal_stream = std::env::var(ENV_JOURNAL_STREAM).ok();
    let rust_log = std::env::var(ENV_RUST_LOG).ok();
    let (filter, filter_warning) = filter_from(rust_log.as_deref());
    let ansi = std::io::stderr().is_terminal();

    let mut warnings: Vec<String> = filter_warning.into_iter().collect();
    let (layer, target): (Box<dyn Layer<Registry> + Send + Sync>, LogTarget) =
        match plan(format, journal_stream.as_deref()) {
            Plan::Stderr(f) => (stderr_layer(f, std::io::stderr, ansi), LogTarget::Stderr(f)),
            Plan::Journald => match journald_layer(binary) {
                Ok(layer) => (Box::new(layer), LogTarget::Journald),
                Err(e) => {
                    let reason = format!(
                        "journald unavailable ({e}; socket /run/systemd/journal/socket); \
                         logging to stderr"
                    );
                    warnings.push(reason.clone());
                    (
                        stderr_layer(StderrFormat::Text, std::io::stderr, ansi),
                        LogTarget::StderrFallback { reason },
                    )
                }
            },
        };
    let installed = Registry::default()
        .with(layer.with_filter(filter))
        .try_init()
        .is_ok();
    for warning in warnings {
        if installed {
            tracing::warn!(binary, "{warning}");
        } else {
            eprintln!("{binary}: {warning}");
        }
    }
    target
}

/// [`init`] with the format from `AVWAP_LOG_FORMAT` (default `auto`; an invalid value is
/// reported and `auto` used) and the binary name from `argv[0]`.
pub fn init_from_env() -> LogTarget {
    let binary = std::env::args_os()
        .next()
        .as_ref()
        .and_then(|p| {
            std::path::Path::new(p)
                .file_name()
                .map(|n| n.to_os_string())
        })
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "avwap".to_string());
    let (format, bad) = match std::env::var(ENV_LOG_FORMAT) {
        Ok(v) if !v.trim().is_empty() => match parse_log_format(&v) {
            Ok(f) => (f, None),
            Err(e) => (LogFormat::Auto, Some(e)),
        },
        _ => (LogFormat::Auto, None),
    };
    let target = init(&binary, format);
    if let Some(e) = bad {
        tracing::warn!("{ENV_LOG_FORMAT}: {e}; using auto");
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_the_four_names_only() {
        assert_eq!(parse_log_format("json"), Ok(LogFormat::Json));
        assert_eq!(parse_log_format(" JSON "), Ok(LogFormat::Json));
        assert_eq!(parse_log_format("text"), Ok(LogFormat::Text));
        assert_eq!(parse_log_format("auto"), Ok(LogFormat::Auto));
        assert_eq!("journald".parse::<LogFormat>(), Ok(LogFormat::Journald));
        let err = parse_log_format("xml").unwrap_err();
        assert!(
            err.to_string().contains("auto, text, json, journald"),
            "{err}"
        );
        for f in [
            LogFormat::Auto,
            LogFormat::Text,
            LogFormat::Json,
            LogFormat::Journald,
        ] {
            assert_eq!(parse_log_format(f.as_str()), Ok(f));
        }
    }

    #[test]
    fn auto_means_journald_only_under_systemd() {
        assert_eq!(
            plan(LogFormat::Auto, None),
            Plan::Stderr(StderrFormat::Text)
        );
        assert_eq!(
            plan(LogFormat::Auto, Some("")),
            Plan::Stderr(StderrFormat::Text)
        );
        assert_eq!(plan(LogFormat::Auto, Some("8:12345")), Plan::Journald);
        assert_eq!(
            plan(LogFormat::Json, Some("8:12345")),
            Plan::Stderr(StderrFormat::Json)
        );
        assert_eq!(
            plan(LogFormat::Text, Some("8:1")),
            Plan::Stderr(StderrFormat::Text)
        );
        assert_eq!(plan(LogFormat::Journald, None), Plan::Journald);
    }

    #[test]
    fn an_invalid_rust_log_falls_back_to_info_and_says_why() {
        assert!(filter_from(None).1.is_none());
        assert!(filter_from(Some("debug,avwap=trace")).1.is_none());
        let (_, warning) = filter_from(Some("avwap=loud"));
        let warning = warning.unwrap();
        assert!(warning.contains("RUST_LOG"), "{warning}");
        assert!(warning.contains("logging at info"), "{warning}");
    }
}
