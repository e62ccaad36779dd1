//! The one place Alpaca clients are built. It owns the checks every client needs before its
//! first request: the `[alpaca]` URLs must make sense for what the process uses Alpaca for
//! (paper never the live host, live never the paper host, every URL parseable), and the key
//! pair is read once per process (systemd credentials, then `APCA_*`). Every client made from
//! one [`AlpacaAccess`] belongs to one client family ([`AlpacaClient::sibling`]): one rate
//! limiter (the account's request budget), one cycle deadline, one connection pool.
//!
//! Used by the scan (`--provider alpaca`: daily bars and the asset list) and by execution
//! (`dry-run`, `alpaca-paper`, `alpaca-live`, `suspend-trading`). What each application does
//! when access fails (its exit code and wording) is the application's business; this module
//! only says what went wrong.

use crate::alpaca::{AlpacaClient, AlpacaError, ClientConfig, Endpoints};
use crate::config::{AlpacaConfig, Mode};
use crate::credentials::{AlpacaCredentials, CredentialError, CredentialStore};

/// The hosts of Alpaca's two trading environments (for the paper/live cross-checks).
const LIVE_TRADING_HOST: &str = "api.alpaca.markets";
const PAPER_TRADING_HOST: &str = "paper-api.alpaca.markets";

/// What a process uses Alpaca for; decides which URLs must be valid and which trading host
/// the clients talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlpacaUse {
    /// `avwap-scan --provider alpaca`: daily bars from `data_url`, the asset list (read only)
    /// from `trading_url`.
    Scan,
    /// `avwap-execution` in this mode: `alpaca-live` trades on `live_trading_url`, every other
    /// mode on `trading_url`; `dry-run` uses market data only.
    Execution(Mode),
}

impl AlpacaUse {
    /// What needs the key pair, for the "missing credential" message.
    pub fn needs_keys(self) -> &'static str {
        match self {
            AlpacaUse::Scan => "avwap-scan --provider alpaca for daily bars and the asset list",
            AlpacaUse::Execution(Mode::Sim) => "sim mode",
            AlpacaUse::Execution(Mode::DryRun) => "dry-run mode for Alpaca market data",
            AlpacaUse::Execution(Mode::AlpacaPaper) => "alpaca-paper mode",
            AlpacaUse::Execution(Mode::AlpacaLive) => "alpaca-live mode",
        }
    }
}

/// A `[alpaca]` URL that cannot be right for its use; restarting cannot help, the
/// configuration must change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(String);

/// Why no client can be built.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// A URL is wrong for this use (nothing was read, nothing was sent).
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The key pair is missing, empty or unreadable (nothing was sent).
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// The client could not be built (nothing was sent).
    #[error(transparent)]
    Client(#[from] AlpacaError),
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

/// The URLs `purpose` talks to must make sense for it: paper never the live host, live never
/// the paper host, every URL parseable.
pub fn check_urls(purpose: AlpacaUse, alpaca: &AlpacaConfig) -> Result<(), UrlError> {
    let urls: &[(&str, &str)] = match purpose {
        AlpacaUse::Execution(Mode::Sim) => &[],
        AlpacaUse::Execution(Mode::DryRun) => &[("data_url", &alpaca.data_url)],
        AlpacaUse::Scan | AlpacaUse::Execution(Mode::AlpacaPaper) => &[
            ("trading_url", &alpaca.trading_url),
            ("data_url", &alpaca.data_url),
        ],
        AlpacaUse::Execution(Mode::AlpacaLive) => &[
            ("live_trading_url", &alpaca.live_trading_url),
            ("data_url", &alpaca.data_url),
        ],
    };
    for (key, url) in urls {
        if host_of(url).is_none() {
            // Shown when it looks like an attempt at a URL (a missing scheme); anything else may
            // be a misplaced secret (Alpaca's keys have neither dots nor slashes).
            let shown = if url.len() <= 100
                && url.chars().all(|c| c.is_ascii_graphic())
                && url.contains(['.', '/'])
            {
                format!("= {url:?} ")
            } else {
                "(value not shown) ".to_string()
            };
            return Err(UrlError(format!(
                "[alpaca] {key} {shown}is not a URL (expected e.g. https://{PAPER_TRADING_HOST}); fix the configuration"
            )));
        }
        // A password in a URL would be logged with it (and reqwest's errors show URLs); the
        // keys have their own credentials.
        if reqwest::Url::parse(url)
            .is_ok_and(|u| !u.username().is_empty() || u.password().is_some())
        {
            return Err(UrlError(format!(
                "[alpaca] {key} carries a user name or password (not shown); remove it: the API keys come from the credentials alpaca-key-id / alpaca-secret-key, never from a URL"
            )));
        }
    }
    match purpose {
        AlpacaUse::Execution(Mode::AlpacaPaper)
            if host_of(&alpaca.trading_url).as_deref() == Some(LIVE_TRADING_HOST) =>
        {
            Err(UrlError(format!(
                "mode alpaca-paper but [alpaca] trading_url points at the LIVE API ({}); refusing to start. \
                 Paper trading uses https://{PAPER_TRADING_HOST}; live trading is mode alpaca-live with its separate confirmation.",
                alpaca.trading_url
            )))
        }
        AlpacaUse::Execution(Mode::AlpacaLive)
            if host_of(&alpaca.live_trading_url).as_deref() == Some(PAPER_TRADING_HOST) =>
        {
            Err(UrlError(format!(
                "mode alpaca-live but [alpaca] live_trading_url points at the paper API ({}); \
                 use mode alpaca-paper for paper trading, or set live_trading_url = \"https://{LIVE_TRADING_HOST}\"",
                alpaca.live_trading_url
            )))
        }
        _ => Ok(()),
    }
}

/// The trading base URL `purpose` talks to.
fn trading_url(purpose: AlpacaUse, alpaca: &AlpacaConfig) -> &str {
    match purpose {
        AlpacaUse::Scan => &alpaca.trading_url,
        AlpacaUse::Execution(mode) => alpaca.trading_url_for(mode),
    }
}

/// What every Alpaca client of one process shares: the keys (read once), the settings for one
/// use (its URLs checked), and through one client family the rate limiter, the cycle deadline
/// and the connection pool.
#[derive(Debug)]
pub struct AlpacaAccess {
    family: AlpacaClient,
}

impl AlpacaAccess {
    /// Check the URLs for `purpose`, then read the keys; both before any request.
    pub fn open(
        alpaca: &AlpacaConfig,
        purpose: AlpacaUse,
        credentials: &CredentialStore,
    ) -> Result<AlpacaAccess, AccessError> {
        check_urls(purpose, alpaca)?;
        let mut client_config = ClientConfig::new(Endpoints {
            trading: trading_url(purpose, alpaca)
                .trim_end_matches('/')
                .to_string(),
            data: alpaca.data_url.trim_end_matches('/').to_string(),
        });
        client_config.requests_per_minute = alpaca.requests_per_minute;
        let keys: AlpacaCredentials = credentials.alpaca_for(purpose.needs_keys())?;
        tracing::info!(
            key_id = %keys.key_id_source,
            secret_key = %keys.secret_key_source,
            trading = %client_config.endpoints.trading,
            data = %client_config.endpoints.data,
            "Alpaca credentials loaded"
        );
        let family = AlpacaClient::new(&keys, client_config)?;
        Ok(AlpacaAccess { family })
    }

    /// One more client of the family (its own request counter; the budget and deadline are
    /// shared).
    pub fn client(&self) -> AlpacaClient {
        self.family.sibling()
    }

    /// Where the clients send requests.
    pub fn endpoints(&self) -> &Endpoints {
        &self.family.config().endpoints
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEFAULT_DATA_URL, DEFAULT_LIVE_TRADING_URL, DEFAULT_PAPER_TRADING_URL};

    #[test]
    fn the_configuration_defaults_are_alpacas_production_urls() {
        assert_eq!(DEFAULT_PAPER_TRADING_URL, crate::alpaca::PAPER_TRADING_URL);
        assert_eq!(DEFAULT_LIVE_TRADING_URL, crate::alpaca::LIVE_TRADING_URL);
        assert_eq!(DEFAULT_DATA_URL, crate::alpaca::DATA_URL);
        assert_eq!(
            host_of(DEFAULT_PAPER_TRADING_URL).unwrap(),
            PAPER_TRADING_HOST
        );
        assert_eq!(
            host_of(DEFAULT_LIVE_TRADING_URL).unwrap(),
            LIVE_TRADING_HOST
        );
    }

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
        let paper = AlpacaUse::Execution(Mode::AlpacaPaper);
        let live = AlpacaUse::Execution(Mode::AlpacaLive);
        let mut a = AlpacaConfig::default();
        assert!(check_urls(paper, &a).is_ok());
        assert!(check_urls(live, &a).is_ok());
        a.trading_url = "https://api.alpaca.markets/".into();
        let e = check_urls(paper, &a).unwrap_err();
        assert!(e.to_string().contains("LIVE"), "{e}");
        a.live_trading_url = "https://PAPER-API.alpaca.markets".into();
        assert!(check_urls(live, &a).is_err());
        a.data_url = "data.alpaca.markets".into();
        assert!(check_urls(AlpacaUse::Execution(Mode::DryRun), &a)
            .unwrap_err()
            .to_string()
            .contains("data_url"));
        assert!(check_urls(AlpacaUse::Execution(Mode::Sim), &a).is_ok());
    }

    #[test]
    fn the_scan_needs_parseable_data_and_trading_urls() {
        let mut a = AlpacaConfig::default();
        assert!(check_urls(AlpacaUse::Scan, &a).is_ok());
        a.trading_url = "paper-api".into();
        let e = check_urls(AlpacaUse::Scan, &a).unwrap_err();
        assert!(e.to_string().contains("[alpaca] trading_url"), "{e}");
        a = AlpacaConfig::default();
        a.data_url = String::new();
        let e = check_urls(AlpacaUse::Scan, &a).unwrap_err();
        assert!(e.to_string().contains("[alpaca] data_url"), "{e}");
        a.data_url = format!("not a url {}", "x".repeat(5000));
        let e = check_urls(AlpacaUse::Scan, &a).unwrap_err();
        assert!(e.to_string().len() < 300, "{e}");
        a.data_url = "PKSECRETzq8Xw3vL0123".into();
        let e = check_urls(AlpacaUse::Scan, &a).unwrap_err();
        assert!(!e.to_string().contains("PKSECRET"), "{e}");
        a.data_url = "data.alpaca.markets".into();
        let e = check_urls(AlpacaUse::Scan, &a).unwrap_err();
        assert!(e.to_string().contains("\"data.alpaca.markets\""), "{e}");
    }

    #[test]
    fn urls_with_a_password_are_refused_without_showing_it() {
        let mut a = AlpacaConfig {
            data_url: "https://user:hunter2-secret@data.alpaca.markets".into(),
            ..AlpacaConfig::default()
        };
        let e = check_urls(AlpacaUse::Execution(Mode::DryRun), &a).unwrap_err();
        assert!(e.to_string().contains("[alpaca] data_url"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        a.data_url = "https://PKKEY@data.alpaca.markets".into();
        let e = check_urls(AlpacaUse::Scan, &a).unwrap_err();
        assert!(!e.to_string().contains("PKKEY"), "{e}");
    }

    #[test]
    fn access_checks_urls_before_reading_keys_and_trims_trailing_slashes() {
        let no_keys = CredentialStore::new(None, |_: &str| None);
        let bad_data_url = AlpacaConfig {
            data_url: "nonsense".into(),
            ..AlpacaConfig::default()
        };
        let err = AlpacaAccess::open(&bad_data_url, AlpacaUse::Scan, &no_keys).unwrap_err();
        assert!(matches!(err, AccessError::Url(_)), "{err:?}");

        let mut a = AlpacaConfig::default();
        let err = AlpacaAccess::open(&a, AlpacaUse::Scan, &no_keys).unwrap_err();
        assert!(matches!(err, AccessError::Credentials(_)), "{err:?}");

        let keys = CredentialStore::new(None, |name: &str| {
            matches!(name, "APCA_API_KEY_ID" | "APCA_API_SECRET_KEY").then(|| "k".to_string())
        });
        a.live_trading_url = "https://api.alpaca.markets/".into();
        a.data_url = "https://data.alpaca.markets/".into();
        let access = AlpacaAccess::open(&a, AlpacaUse::Execution(Mode::AlpacaLive), &keys).unwrap();
        assert_eq!(access.endpoints().trading, "https://api.alpaca.markets");
        assert_eq!(access.endpoints().data, "https://data.alpaca.markets");
        let scan = AlpacaAccess::open(&a, AlpacaUse::Scan, &keys).unwrap();
        assert_eq!(scan.endpoints().trading, DEFAULT_PAPER_TRADING_URL);
        let (broker, feed) = (scan.client(), scan.client());
        assert!(
            broker.is_sibling_of(&feed),
            "one family: one budget, one deadline"
        );
    }
}
