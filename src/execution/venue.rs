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
//! Every refusal happens before the first order request and says what to change. The Alpaca
//! clients themselves (URL checks, keys) come from [`crate::alpaca::access`], shared with the scan.

use crate::alpaca::access::{is_loopback_url, AccessError, AlpacaAccess, AlpacaUse, UrlError};
use crate::alpaca::intraday::{AlpacaIntradayFeed, IntradayOptions};
use crate::alpaca::market_data::Feed;
use crate::alpaca::{AlpacaBroker, AlpacaError};
use crate::broker::BrokerError;
use crate::config::{AlpacaConfig, Config, Mode};
use crate::credentials::{CredentialError, CredentialStore};
use crate::exit::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The local order book of `dry-run` in the state directory.
pub const DRY_RUN_BROKER_FILE: &str = "dry_run_broker.sqlite";

/// Why a mode cannot start; each carries the exit code the service ends with.
#[derive(Debug, thiserror::Error)]
pub enum VenueError {
    /// A `[alpaca]` URL is wrong for the mode (exit 10).
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The key pair is missing, empty or unreadable (exit 10).
    #[error("{0}. Nothing was sent to Alpaca and nothing was traded.")]
    Credentials(CredentialError),
    /// `alpaca-live` without its separate confirmation credential (exit 10).
    #[error("mode alpaca-live trades real money and needs its separate confirmation: {0}. Refusing to start; nothing was sent.")]
    LiveConfirmationMissing(CredentialError),
    /// `alpaca-live`: the broker refused the keys or the confirmation does not match the
    /// account; the text is the broker check's own explanation (exit 10).
    #[error("{0}")]
    LiveConfirmationRefused(String),
    /// `[alpaca] intraday_feed` is not a feed Alpaca knows (exit 10).
    #[error("[alpaca] intraday_feed: {0}")]
    IntradayFeed(String),
    /// The HTTP client could not be built (exit 12).
    #[error(transparent)]
    Client(#[from] AlpacaError),
    /// Alpaca unreachable or refusing the keys at the account check (exit 12).
    #[error("{mode}: cannot read the Alpaca account at {url}: {error}. Check the network and the API keys; nothing was traded.")]
    AccountUnreadable {
        mode: Mode,
        url: String,
        error: BrokerError,
    },
    /// Alpaca answered the account check, but the answer lacks what trading needs (exit 12).
    #[error("{mode}: Alpaca answered the account check at {url}, but {error}. Nothing was traded. Check the account in Alpaca's dashboard (and Alpaca's status page) before restarting.")]
    AccountAnswerUnusable {
        mode: Mode,
        url: String,
        error: BrokerError,
    },
    /// `dry-run`: the Market Data API refused the keys (401) or the data (403) at the start
    /// check (exit 12).
    #[error("dry-run: Alpaca's Market Data API at {url} refused the start check: {error}. Nothing was started; fix the keys or the data plan, then restart.")]
    DataRefused { url: String, error: AlpacaError },
    /// Alpaca reports the account blocked (exit 12).
    #[error("{mode}: Alpaca reports the account as blocked (status {status}); nothing can be traded. Resolve it with Alpaca, then restart.")]
    AccountBlocked { mode: Mode, status: String },
}

impl VenueError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            VenueError::Url(_)
            | VenueError::Credentials(_)
            | VenueError::LiveConfirmationMissing(_)
            | VenueError::LiveConfirmationRefused(_)
            | VenueError::IntradayFeed(_) => ExitCode::ConfigError,
            VenueError::Client(_)
            | VenueError::DataRefused { .. }
            | VenueError::AccountUnreadable { .. }
            | VenueError::AccountAnswerUnusable { .. }
            | VenueError::AccountBlocked { .. } => ExitCode::BrokerUnavailable,
        }
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

impl From<AccessError> for VenueError {
    fn from(e: AccessError) -> VenueError {
        match e {
            AccessError::Url(e) => VenueError::Url(e),
            AccessError::Credentials(e) => VenueError::Credentials(e),
            AccessError::Client(e) => VenueError::Client(e),
        }
    }
}

/// The shared Alpaca access of `config.mode`: URLs checked, keys read once, one client
/// family (one request budget and cycle deadline for the broker and the feed).
fn access(config: &Config, credentials: &CredentialStore) -> Result<AlpacaAccess, VenueError> {
    Ok(AlpacaAccess::open(
        &config.alpaca,
        AlpacaUse::Execution(config.mode),
        credentials,
    )?)
}

/// The intraday feed options from `[alpaca]`.
pub fn intraday_options(alpaca: &AlpacaConfig) -> Result<IntradayOptions, VenueError> {
    let feed = alpaca
        .intraday_feed
        .parse::<Feed>()
        .map_err(VenueError::IntradayFeed)?;
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
        Mode::AlpacaLive => Some(
            credentials
                .live_confirmation()
                .map_err(VenueError::LiveConfirmationMissing)?,
        ),
        _ => None,
    };
    let access = access(config, credentials)?;
    let broker = AlpacaBroker::new(access.client(), mode.as_str());
    let details = match &live_confirmation {
        Some(expected) => broker.confirm_live_account(expected),
        None => broker.account_details(),
    }
    .map_err(|e| match e {
        BrokerError::Auth { message } if live_confirmation.is_some() => {
            VenueError::LiveConfirmationRefused(message)
        }
        error @ BrokerError::Malformed { .. } => VenueError::AccountAnswerUnusable {
            mode,
            url: config.alpaca.trading_url_for(mode).to_string(),
            error,
        },
        error => VenueError::AccountUnreadable {
            mode,
            url: config.alpaca.trading_url_for(mode).to_string(),
            error,
        },
    })?;
    if details.account_blocked {
        return Err(VenueError::AccountBlocked {
            mode,
            status: details.status.as_deref().unwrap_or("unknown").to_string(),
        });
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

/// How long the start check of `dry-run` may take: well inside systemd's start timeout, long
/// enough for a slow answer.
pub const DRY_RUN_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// The market-data feed of `dry-run` (data credentials only; nothing goes to the Trading API),
/// after one authenticated data request: refused keys (401) or data (403) end the start with
/// exit 12 before any state exists, instead of a service that runs and warns every cycle. A
/// check that gets no answer (timeout, 5xx, rate limit) does not stop the start: the service
/// starts and every cycle reads again, as it would after any outage.
pub fn open_dry_run_feed(
    config: &Config,
    credentials: &CredentialStore,
) -> Result<SharedFeed, VenueError> {
    let client = access(config, credentials)?.client();
    let feed = AlpacaIntradayFeed::new(client, intraday_options(&config.alpaca)?);
    match feed.check_access(Instant::now() + DRY_RUN_CHECK_TIMEOUT) {
        Ok(()) => {}
        Err(error @ (AlpacaError::Auth { .. } | AlpacaError::Forbidden { .. })) => {
            return Err(VenueError::DataRefused {
                url: config.alpaca.data_url.clone(),
                error,
            })
        }
        Err(error) => tracing::warn!(
            "dry-run: could not confirm at start that Alpaca's Market Data API accepts the keys \
             ({error}); starting anyway: every cycle reads again and reports what fails"
        ),
    }
    Ok(Arc::new(feed))
}

#[cfg(test)]
mod tests {
    use super::*;

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
