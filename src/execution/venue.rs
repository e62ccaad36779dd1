//! What each execution mode trades against: the broker and the price feed, built once at start
//! and checked before anything is sent.
//!
//! - `sim`: the simulated broker (`sim_broker.sqlite`) filling on a seeded synthetic path.
//! - `dry-run`: Alpaca market data; orders go to a local simulated book
//!   (`dry_run_broker.sqlite`) that fills on those real prices, never to Alpaca. Needs only
//!   data credentials.
//! - `alpaca-paper`: Alpaca's paper Trading API and Alpaca market data. Refuses the live host.
//! - `alpaca-live`: Alpaca's live Trading API; refuses unless the separate live confirmation
//!   (the account number in `alpaca-live-account`) matches the account of the keys.
//!
//! Every refusal happens before the first order request and says what to change.

use crate::alpaca::intraday::{AlpacaIntradayFeed, IntradayOptions};
use crate::alpaca::market_data::Feed;
use crate::alpaca::{AlpacaBroker, AlpacaClient, ClientConfig, Endpoints};
use crate::config::{AlpacaConfig, Config, Mode};
use crate::execution::credentials::{AlpacaCredentials, CredentialError, CredentialStore};
use crate::exit::ExitCode;
use std::sync::Arc;

/// The local order book of `dry-run` in the state directory.
pub const DRY_RUN_BROKER_FILE: &str = "dry_run_broker.sqlite";

/// The hosts of Alpaca's two trading environments (for the paper/live cross-checks).
const LIVE_TRADING_HOST: &str = "api.alpaca.markets";
const PAPER_TRADING_HOST: &str = "paper-api.alpaca.markets";

/// Why a mode cannot start; each carries the exit code the service ends with.
#[derive(Debug, thiserror::Error)]
pub enum VenueError {
    /// Wrong settings or missing credentials: restarting cannot help (exit 10).
    #[error("{0}")]
    Config(String),
    /// Alpaca unreachable or refusing the keys (exit 12).
    #[error("{0}")]
    Broker(String),
}

impl VenueError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            VenueError::Config(_) => ExitCode::ConfigError,
            VenueError::Broker(_) => ExitCode::BrokerUnavailable,
        }
    }
}

/// The host of `url`, lower-cased; `None` when `url` is not a URL.
fn host_of(url: &str) -> Option<String> {
    reqwest::Url::parse(url).ok().and_then(|u| {
        u.host_str()
            .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
    })
}

/// Whether `url` points at this machine (the fake server of the tests).
pub fn is_loopback_url(url: &str) -> bool {
    match host_of(url) {
        Some(host) if host == "localhost" => true,
        Some(host) => host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// The URLs `mode` talks to must make sense for it: paper never the live host, live never the
/// paper host, every URL parseable.
pub fn check_urls(mode: Mode, alpaca: &AlpacaConfig) -> Result<(), VenueError> {
    let urls: &[(&str, &str)] = match mode {
        Mode::Sim => &[],
        Mode::DryRun => &[("data_url", &alpaca.data_url)],
        Mode::AlpacaPaper => &[
            ("trading_url", &alpaca.trading_url),
            ("data_url", &alpaca.data_url),
        ],
        Mode::AlpacaLive => &[
            ("live_trading_url", &alpaca.live_trading_url),
            ("data_url", &alpaca.data_url),
        ],
    };
    for (key, url) in urls {
        if host_of(url).is_none() {
            return Err(VenueError::Config(format!(
                "[alpaca] {key} = {url:?} is not a URL (expected e.g. https://{PAPER_TRADING_HOST}); fix the configuration"
            )));
        }
    }
    match mode {
        Mode::AlpacaPaper if host_of(&alpaca.trading_url).as_deref() == Some(LIVE_TRADING_HOST) => {
            Err(VenueError::Config(format!(
                "mode alpaca-paper but [alpaca] trading_url points at the LIVE API ({}); refusing to start. \
                 Paper trading uses https://{PAPER_TRADING_HOST}; live trading is mode alpaca-live with its separate confirmation.",
                alpaca.trading_url
            )))
        }
        Mode::AlpacaLive
            if host_of(&alpaca.live_trading_url).as_deref() == Some(PAPER_TRADING_HOST) =>
        {
            Err(VenueError::Config(format!(
                "mode alpaca-live but [alpaca] live_trading_url points at the paper API ({}); \
                 use mode alpaca-paper for paper trading, or set live_trading_url = \"https://{LIVE_TRADING_HOST}\"",
                alpaca.live_trading_url
            )))
        }
        _ => Ok(()),
    }
}

/// Whether a fixed clock (`--at`) may be used: always in sim; in dry-run and alpaca-paper only
/// when every Alpaca URL is on this machine (a test's fake server); never in alpaca-live.
pub fn fixed_clock_allowed(config: &Config) -> bool {
    let a = &config.alpaca;
    match config.mode {
        Mode::Sim => true,
        Mode::DryRun => is_loopback_url(&a.data_url),
        Mode::AlpacaPaper => is_loopback_url(&a.trading_url) && is_loopback_url(&a.data_url),
        Mode::AlpacaLive => false,
    }
}

fn credential_error(e: CredentialError) -> VenueError {
    VenueError::Config(format!(
        "{e}. Nothing was sent to Alpaca and nothing was traded."
    ))
}

/// What every Alpaca client of one process shares: the keys (read once), the settings for
/// `config.mode` (its URLs checked), and — through one client family
/// ([`AlpacaClient::sibling`]) — the rate limiter (the account's one request budget), the
/// cycle deadline and the connection pool.
struct AlpacaAccess {
    family: AlpacaClient,
}

impl AlpacaAccess {
    fn new(config: &Config, credentials: &CredentialStore) -> Result<AlpacaAccess, VenueError> {
        check_urls(config.mode, &config.alpaca)?;
        let a = &config.alpaca;
        let mut client_config = ClientConfig::new(Endpoints {
            trading: a
                .trading_url_for(config.mode)
                .trim_end_matches('/')
                .to_string(),
            data: a.data_url.trim_end_matches('/').to_string(),
        });
        client_config.requests_per_minute = a.requests_per_minute;
        let keys: AlpacaCredentials = credentials.alpaca().map_err(credential_error)?;
        tracing::info!(
            key_id = %keys.key_id_source,
            secret_key = %keys.secret_key_source,
            trading = %client_config.endpoints.trading,
            data = %client_config.endpoints.data,
            "Alpaca credentials loaded"
        );
        let family = AlpacaClient::new(&keys, client_config)
            .map_err(|e| VenueError::Broker(e.to_string()))?;
        Ok(AlpacaAccess { family })
    }

    /// One more client of the process's family (its own request counter).
    fn client(&self) -> AlpacaClient {
        self.family.sibling()
    }
}

/// The intraday feed options from `[alpaca]`.
pub fn intraday_options(alpaca: &AlpacaConfig) -> Result<IntradayOptions, VenueError> {
    let feed = alpaca
        .intraday_feed
        .parse::<Feed>()
        .map_err(|e| VenueError::Config(format!("[alpaca] intraday_feed: {e}")))?;
    Ok(IntradayOptions {
        feed,
        ..IntradayOptions::default()
    })
}

/// An Alpaca intraday feed shared by the engine and (in dry-run) the local book's fills, so
/// one rate limiter covers both.
pub type SharedFeed = Arc<AlpacaIntradayFeed>;

/// The broker of `alpaca-paper` / `alpaca-live`: keys, then the account check (and for live
/// the separate confirmation). Also returns the access, for more clients.
fn checked_broker(
    config: &Config,
    credentials: &CredentialStore,
) -> Result<(AlpacaBroker, AlpacaAccess), VenueError> {
    let mode = config.mode;
    // Live: the confirmation must exist before anything is sent.
    let live_confirmation = match mode {
        Mode::AlpacaLive => Some(credentials.live_confirmation().map_err(|e| {
            VenueError::Config(format!(
                "mode alpaca-live trades real money and needs its separate confirmation: {e}. Refusing to start; nothing was sent."
            ))
        })?),
        _ => None,
    };
    let access = AlpacaAccess::new(config, credentials)?;
    let broker = AlpacaBroker::new(access.client(), mode.as_str());
    let details = match &live_confirmation {
        Some(expected) => broker.confirm_live_account(expected),
        None => broker.account_details(),
    }
    .map_err(|e| match e {
        crate::broker::BrokerError::Auth { message } if live_confirmation.is_some() => {
            VenueError::Config(message)
        }
        other => VenueError::Broker(format!(
            "{mode}: cannot read the Alpaca account at {}: {other}. Check the network and the API keys; nothing was traded.",
            config.alpaca.trading_url_for(mode)
        )),
    })?;
    if details.account_blocked {
        return Err(VenueError::Broker(format!(
            "{mode}: Alpaca reports the account as blocked (status {}); nothing can be traded. Resolve it with Alpaca, then restart.",
            details.status.as_deref().unwrap_or("unknown")
        )));
    }
    if details.trading_blocked {
        tracing::error!(
            status = details.status.as_deref().unwrap_or("unknown"),
            "Alpaca reports trading_blocked: new orders (stops included) will be rejected; positions are reconciled and reported only"
        );
    }
    tracing::info!(
        mode = %mode,
        status = details.status.as_deref().unwrap_or("unknown"),
        equity = %details.account.equity,
        "Alpaca account ready"
    );
    Ok((broker, access))
}

/// The broker alone (`suspend-trading`), checked as in [`open_alpaca`].
pub fn open_alpaca_broker(
    config: &Config,
    credentials: &CredentialStore,
) -> Result<AlpacaBroker, VenueError> {
    checked_broker(config, credentials).map(|(broker, _)| broker)
}

/// Open the Alpaca trading venue of `alpaca-paper` / `alpaca-live`: the checked broker, then
/// the market-data feed.
pub fn open_alpaca(
    config: &Config,
    credentials: &CredentialStore,
) -> Result<(AlpacaBroker, SharedFeed), VenueError> {
    let (broker, access) = checked_broker(config, credentials)?;
    let feed = Arc::new(AlpacaIntradayFeed::new(
        access.client(),
        intraday_options(&config.alpaca)?,
    ));
    Ok((broker, feed))
}

/// The market-data feed of `dry-run` (data credentials only; nothing goes to the Trading API).
pub fn open_dry_run_feed(
    config: &Config,
    credentials: &CredentialStore,
) -> Result<SharedFeed, VenueError> {
    let client = AlpacaAccess::new(config, credentials)?.client();
    Ok(Arc::new(AlpacaIntradayFeed::new(
        client,
        intraday_options(&config.alpaca)?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls() {
        assert!(is_loopback_url("http://127.0.0.1:4567"));
        assert!(is_loopback_url("http://localhost:80/"));
        assert!(is_loopback_url("http://[::1]:9000"));
        assert!(!is_loopback_url("https://paper-api.alpaca.markets"));
        assert!(!is_loopback_url("https://127.0.0.1.example.com"));
        assert!(!is_loopback_url("not a url"));
    }

    #[test]
    fn paper_refuses_the_live_host_and_live_the_paper_host() {
        let mut a = AlpacaConfig::default();
        assert!(check_urls(Mode::AlpacaPaper, &a).is_ok());
        assert!(check_urls(Mode::AlpacaLive, &a).is_ok());
        a.trading_url = "https://api.alpaca.markets/".into();
        let e = check_urls(Mode::AlpacaPaper, &a).unwrap_err();
        assert!(e.to_string().contains("LIVE"), "{e}");
        assert_eq!(e.exit_code(), ExitCode::ConfigError);
        a.live_trading_url = "https://PAPER-API.alpaca.markets".into();
        assert!(check_urls(Mode::AlpacaLive, &a).is_err());
        a.data_url = "data.alpaca.markets".into();
        assert!(check_urls(Mode::DryRun, &a)
            .unwrap_err()
            .to_string()
            .contains("data_url"));
        assert!(check_urls(Mode::Sim, &a).is_ok());
    }

    #[test]
    fn a_fixed_clock_only_against_this_machine_and_never_live() {
        let mut c = Config::default();
        assert!(fixed_clock_allowed(&c));
        c.mode = Mode::AlpacaPaper;
        assert!(!fixed_clock_allowed(&c));
        c.alpaca.trading_url = "http://127.0.0.1:1".into();
        assert!(!fixed_clock_allowed(&c), "data still remote");
        c.alpaca.data_url = "http://127.0.0.1:1".into();
        assert!(fixed_clock_allowed(&c));
        c.mode = Mode::AlpacaLive;
        c.alpaca.live_trading_url = "http://127.0.0.1:1".into();
        assert!(!fixed_clock_allowed(&c));
        c.mode = Mode::DryRun;
        assert!(fixed_clock_allowed(&c));
    }
}
