//! Configuration: one TOML file (`--config` or `AVWAP_CONFIG`), typed sections per component,
//! every field defaulted, unknown keys rejected by name, and the env overrides
//! `AVWAP_STATE_DIR` and `AVWAP_MODE`. `examples/avwap.toml` documents every field and a test
//! keeps it equal to the defaults.
//!
//! Pure data (layer `config` in ARCHITECTURE.md): it composes the domain sections
//! (`[scan]`, `[execution]`) and owns the rest; its only I/O is reading the file. What is
//! built from it (alert sender, Alpaca clients) is built by the modules that own those things.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

#[cfg(test)]
mod fuzz;
pub mod limits;
mod toml_error;

pub use limits::SettingError;

pub const ENV_CONFIG: &str = "AVWAP_CONFIG";
pub const ENV_STATE_DIR: &str = "AVWAP_STATE_DIR";
pub const ENV_MODE: &str = "AVWAP_MODE";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/avwap";
pub const WATCHLIST_FILE_NAME: &str = "daily_candidates.csv";

/// Alpaca's production endpoints, the defaults of `[alpaca]`. They are configuration data
/// here (the clients use whatever the file says); `alpaca::access` checks that they equal the
/// client's own constants.
pub const DEFAULT_PAPER_TRADING_URL: &str = "https://paper-api.alpaca.markets";
pub const DEFAULT_LIVE_TRADING_URL: &str = "https://api.alpaca.markets";
pub const DEFAULT_DATA_URL: &str = "https://data.alpaca.markets";

/// The largest configuration file accepted (the example with every key is about 12 KB).
const CONFIG_FILE_LIMIT: crate::fsutil::SizeLimit = crate::fsutil::SizeLimit {
    bytes: 1024 * 1024,
    what: "a configuration file",
    hint: "point --config at the avwap configuration (examples/avwap.toml is about 12 KB)",
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not a regular file, or too large.
    #[error(transparent)]
    File(crate::fsutil::ReadError),
    #[error("cannot read configuration file {path}: {source} (check the path given by --config or {ENV_CONFIG})")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, or not our schema. The message names the position, the key or section
    /// and what is wrong, never a value of the file (see `toml_error`).
    #[error("invalid configuration file {path}: {message} (fix the file; examples/avwap.toml lists every key with its default)")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value {} in environment variable {var}: expected {expected}", quote_short(.value))]
    Env {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("invalid mode {}: expected one of sim, dry-run, alpaca-paper, alpaca-live", quote_short(.0))]
    Mode(String),
    /// Numbers out of their range, or settings that contradict each other (every one found).
    #[error("invalid configuration file {path}: {} (fix the file; examples/avwap.toml lists every key with its default and range)", settings_text(.problems))]
    Setting {
        path: PathBuf,
        problems: Vec<SettingError>,
    },
}

/// At most this many setting problems are listed in one message.
const MAX_LISTED_PROBLEMS: usize = 10;

fn settings_text(problems: &[SettingError]) -> String {
    let mut text = problems
        .iter()
        .take(MAX_LISTED_PROBLEMS)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > MAX_LISTED_PROBLEMS {
        text.push_str(&format!(
            "; and {} more",
            problems.len() - MAX_LISTED_PROBLEMS
        ));
    }
    text
}

/// A short operator-supplied word quoted in an error (a mode name): printable ASCII, at most
/// 16 characters (the longest mode is 12), so a misplaced secret or a whole file never lands
/// in a log line.
fn quote_short(value: &str) -> String {
    const MAX: usize = 16;
    let printable = value.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    if !printable {
        "(a value with unusual characters, not shown)".to_string()
    } else if value.chars().count() > MAX {
        format!(
            "(a value of {} characters, not shown)",
            value.chars().count()
        )
    } else {
        format!("{value:?}")
    }
}

impl crate::exit::Failure for ConfigError {
    fn exit_code(&self) -> crate::exit::ExitCode {
        crate::exit::ExitCode::ConfigError
    }
}

/// How execution talks to a broker. There is deliberately no fallback: an unknown value is an
/// error, never "live".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Built-in simulated broker; no credentials.
    #[default]
    Sim,
    /// Real market data; orders are only recorded.
    DryRun,
    AlpacaPaper,
    /// Real money; also requires a separate live confirmation.
    AlpacaLive,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sim => "sim",
            Mode::DryRun => "dry-run",
            Mode::AlpacaPaper => "alpaca-paper",
            Mode::AlpacaLive => "alpaca-live",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sim" => Ok(Mode::Sim),
            "dry-run" => Ok(Mode::DryRun),
            "alpaca-paper" => Ok(Mode::AlpacaPaper),
            "alpaca-live" => Ok(Mode::AlpacaLive),
            other => Err(ConfigError::Mode(other.to_string())),
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where every file avwap reads or writes lives (watchlist, databases, lock, kill switch).
    pub state_dir: PathBuf,
    /// Execution mode: sim, dry-run, alpaca-paper, alpaca-live.
    pub mode: Mode,
    pub gate: GateConfig,
    pub scan: crate::scan::config::ScanConfig,
    pub execution: crate::execution::config::ExecutionConfig,
    pub backtest: BacktestConfig,
    pub alerts: AlertsConfig,
    pub alpaca: AlpacaConfig,
}

/// `[alpaca]`: endpoints and data settings (credentials are never in this file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlpacaConfig {
    /// Paper Trading API base URL: mode alpaca-paper (and the scan's asset list unless live).
    /// Never the live host: alpaca-paper refuses to start if it is.
    pub trading_url: String,
    /// Live Trading API base URL: used by mode alpaca-live only.
    pub live_trading_url: String,
    /// Market Data API base URL.
    pub data_url: String,
    /// Daily-bar feed: "sip" (consolidated; default) or "iex" (a fraction of real volume).
    pub feed: String,
    /// 10-minute bars and latest trades for the execution loop: "iex" (default; free plans
    /// cannot read the last 15 minutes of SIP) or "sip" (a paid plan).
    pub intraday_feed: String,
    /// Daily-bar adjustment: "raw", "split" (default), "dividend" or "all".
    pub adjustment: String,
    /// Request budget shared by every call of one process.
    pub requests_per_minute: u32,
}

impl Default for AlpacaConfig {
    fn default() -> Self {
        Self {
            trading_url: DEFAULT_PAPER_TRADING_URL.to_string(),
            live_trading_url: DEFAULT_LIVE_TRADING_URL.to_string(),
            data_url: DEFAULT_DATA_URL.to_string(),
            feed: "sip".to_string(),
            intraday_feed: "iex".to_string(),
            adjustment: "split".to_string(),
            requests_per_minute: 200,
        }
    }
}

impl AlpacaConfig {
    /// The Trading API base URL `mode` talks to: live only for alpaca-live.
    pub fn trading_url_for(&self, mode: Mode) -> &str {
        match mode {
            Mode::AlpacaLive => &self.live_trading_url,
            Mode::Sim | Mode::DryRun | Mode::AlpacaPaper => &self.trading_url,
        }
    }
}

/// `[alerts]`: the optional webhook (its URL is a credential, never in this file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// The same alert (kind and key) is sent at most once per this many minutes.
    pub rate_limit_minutes: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            rate_limit_minutes: 5,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            mode: Mode::Sim,
            gate: GateConfig::default(),
            scan: crate::scan::config::ScanConfig::default(),
            execution: crate::execution::config::ExecutionConfig::default(),
            backtest: BacktestConfig::default(),
            alerts: AlertsConfig::default(),
            alpaca: AlpacaConfig::default(),
        }
    }
}

/// `[backtest]`: the account and costs of `avwap-execution backtest` (the strategy itself is
/// `[scan]` and `[execution]`, exactly as in production).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BacktestConfig {
    /// Cash of the simulated account on the first session.
    pub starting_cash: rust_decimal::Decimal,
    /// Dollars per share charged on every fill (Alpaca charges none for US equities).
    pub commission_per_share: rust_decimal::Decimal,
    /// Basis points every fill is worse than the bar's price (buys higher, sells lower; a
    /// limit never fills beyond its limit).
    pub slippage_bps: rust_decimal::Decimal,
    /// The benchmark symbol read from the bar store; without it (the demo data set) the data
    /// set's equal-weight index is the benchmark, labelled as such.
    pub benchmark: String,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        Self {
            starting_cash: rust_decimal::Decimal::new(100_000, 0),
            commission_per_share: rust_decimal::Decimal::ZERO,
            slippage_bps: rust_decimal::Decimal::new(5, 0),
            benchmark: "SPY".to_string(),
        }
    }
}

/// `[gate]`: the watchlist freshness gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateConfig {
    /// Watchlist path; relative paths are taken inside `state_dir`.
    pub watchlist: PathBuf,
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            watchlist: PathBuf::from(WATCHLIST_FILE_NAME),
        }
    }
}

impl Config {
    /// Parse TOML text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: toml_error::describe(&e, text),
        })?;
        config.validate().map_err(|problems| ConfigError::Setting {
            path: origin.to_path_buf(),
            problems,
        })?;
        Ok(config)
    }

    /// Every number within its range and no contradictory settings ([`limits::LIMITS`]);
    /// otherwise every problem found.
    pub fn validate(&self) -> Result<(), Vec<SettingError>> {
        let problems = limits::check(self);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Read a configuration file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        // A regular file only: a FIFO at the config path must not hang every binary.
        let bytes = crate::fsutil::read_regular(path, CONFIG_FILE_LIMIT).map_err(|e| match e {
            crate::fsutil::ReadError::Open { path, error } => ConfigError::Read {
                path,
                source: error,
            },
            other => ConfigError::File(other),
        })?;
        let text = String::from_utf8(bytes).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: format!(
                "the file is not UTF-8 text (invalid byte at offset {}) ",
                e.utf8_error().valid_up_to()
            ),
        })?;
        Self::from_toml(&text, path)
    }

    /// Resolve the configuration the way every binary does: the file from `--config` or
    /// `AVWAP_CONFIG` (defaults when neither is given), then the env overrides.
    /// `env` is injected so tests do not touch the process environment.
    pub fn load(
        config_flag: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let from_env = env(ENV_CONFIG).filter(|v| !v.is_empty()).map(PathBuf::from);
        let mut config = match config_flag.map(Path::to_path_buf).or(from_env) {
            Some(path) => Self::from_file(&path)?,
            None => Self::default(),
        };
        config.apply_env(env)?;
        Ok(config)
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(dir) = env(ENV_STATE_DIR) {
            if dir.is_empty() {
                return Err(ConfigError::Env {
                    var: ENV_STATE_DIR,
                    value: dir,
                    expected: "a directory path",
                });
            }
            self.state_dir = PathBuf::from(dir);
        }
        if let Some(mode) = env(ENV_MODE) {
            self.mode = mode.parse().map_err(|_| ConfigError::Env {
                var: ENV_MODE,
                value: mode,
                expected: "one of sim, dry-run, alpaca-paper, alpaca-live",
            })?;
        }
        Ok(())
    }

    /// The watchlist path: `gate.watchlist`, inside the state directory unless absolute.
    pub fn watchlist_path(&self) -> PathBuf {
        self.state_dir.join(&self.gate.watchlist)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn example_file_documents_exactly_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/avwap.toml");
        let config = Config::from_file(&path).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn example_file_mentions_every_default_key() {
        // Serialise the defaults and check every key appears in the example, so a new field
        // cannot be added without documenting it there.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/avwap.toml");
        let example: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        fn walk(defaults: &toml::Table, example: &toml::Table, prefix: &str) {
            for (key, value) in defaults {
                let name = format!("{prefix}{key}");
                let Some(found) = example.get(key) else {
                    panic!("examples/avwap.toml does not document `{name}`");
                };
                if let (toml::Value::Table(d), toml::Value::Table(e)) = (value, found) {
                    walk(d, e, &format!("{name}."));
                }
            }
        }
        walk(&defaults, &example, "");
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = Config::from_toml("stat_dir = \"/x\"\n", Path::new("c.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("stat_dir"), "{msg}");
        assert!(msg.contains("c.toml"), "{msg}");

        let err = Config::from_toml("[gate]\nwatchlst = \"x\"\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("watchlst"), "{err}");

        let err = Config::from_toml("[gat]\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("gat"), "{err}");
    }

    #[test]
    fn unknown_mode_is_an_error_never_live() {
        let err = Config::from_toml("mode = \"live\"\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("live"), "{err}");
        assert!("LIVE".parse::<Mode>().is_err());
        assert!("".parse::<Mode>().is_err());
        let err = Config::load(None, &env_of(&[(ENV_MODE, "paper")])).unwrap_err();
        assert!(err.to_string().contains("AVWAP_MODE"), "{err}");
    }

    #[test]
    fn env_overrides_file_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("avwap.toml");
        std::fs::write(&file, "state_dir = \"/srv/avwap\"\nmode = \"dry-run\"\n").unwrap();

        let config = Config::load(Some(&file), &env_of(&[])).unwrap();
        assert_eq!(config.state_dir, PathBuf::from("/srv/avwap"));
        assert_eq!(config.mode, Mode::DryRun);

        let env = env_of(&[
            (ENV_STATE_DIR, "/tmp/s"),
            (ENV_MODE, "alpaca-paper"),
            (ENV_CONFIG, "/nonexistent.toml"),
        ]);
        // The flag wins over AVWAP_CONFIG, the env vars win over the file.
        let config = Config::load(Some(&file), &env).unwrap();
        assert_eq!(config.state_dir, PathBuf::from("/tmp/s"));
        assert_eq!(config.mode, Mode::AlpacaPaper);
        assert_eq!(
            config.watchlist_path(),
            PathBuf::from("/tmp/s/daily_candidates.csv")
        );

        let err = Config::load(None, &env).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent.toml"));
    }

    #[test]
    fn defaults_without_any_file() {
        let config = Config::load(None, &env_of(&[])).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.mode, Mode::Sim);
        assert_eq!(
            config.watchlist_path(),
            PathBuf::from("/var/lib/avwap/daily_candidates.csv")
        );
    }

    #[test]
    fn malformed_toml_reports_position() {
        let err = Config::from_toml("mode = \n", Path::new("bad.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("bad.toml") && msg.contains("line 1"), "{msg}");
    }
}
