//! The read phase of one execution cycle against Alpaca: account, positions, open orders and
//! the market snapshot (10-minute bars and latest trades) are independent, so they run
//! concurrently and all stop at one deadline.
//!
//! Why: sequentially, four reads against a failing network took minutes in the worst case
//! (each GET retries; see `client.rs`), longer than the systemd watchdog allows between two
//! pings. Concurrently and under a deadline the phase costs about the slowest read, and never
//! more than the deadline.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::future::join4;

use super::client::AlpacaError;
use super::intraday::AlpacaIntradayFeed;
use super::trading::AlpacaBroker;
use crate::broker::BrokerError;
use crate::market_data::intraday::MarketSnapshot;

/// How long after the deadline a read that ignored it is given up (a safety net: every request
/// is already bounded by the deadline itself; this only bounds work between requests, e.g.
/// decoding, should it ever stall).
pub const DEADLINE_GRACE: Duration = Duration::from_millis(100);

pub use crate::broker::CycleReads;

/// Run the four reads of a cycle concurrently on the process's runtime, every request bounded
/// by `deadline` (and by the client families' deadlines, if set): returns by `deadline` (plus
/// a few milliseconds) whatever the server does, with what finished in time. A broker read
/// that missed the deadline is `BrokerError::RetryableRead`.
///
/// `broker` and `feed` should be siblings ([`super::AlpacaClient::sibling`]) so they share the
/// request budget. Call it from an ordinary thread, not from async code (see
/// [`super::runtime`]).
pub fn read_cycle(
    broker: &AlpacaBroker,
    feed: &AlpacaIntradayFeed,
    symbols: &[String],
    now: DateTime<Utc>,
    bars: usize,
    deadline: Instant,
) -> CycleReads {
    broker
        .client()
        .block_on(read_cycle_async(broker, feed, symbols, now, bars, deadline))
}

/// The async form of [`read_cycle`].
pub async fn read_cycle_async(
    broker: &AlpacaBroker,
    feed: &AlpacaIntradayFeed,
    symbols: &[String],
    now: DateTime<Utc>,
    bars: usize,
    deadline: Instant,
) -> CycleReads {
    let at = Some(deadline);
    let (account, positions, open_orders, market) = join4(
        bounded(deadline, "/v2/account", broker.account_async(at)),
        bounded(deadline, "/v2/positions", broker.positions_async(at)),
        bounded(deadline, "/v2/orders", broker.open_orders_async(at)),
        async {
            let hard_stop = tokio::time::Instant::from_std(deadline + DEADLINE_GRACE);
            tokio::time::timeout_at(hard_stop, feed.snapshot_async(symbols, now, bars, at))
                .await
                .unwrap_or_else(|_| {
                    tracing::warn!("the market snapshot overran the cycle deadline; dropped");
                    (MarketSnapshot::default(), false)
                })
        },
    )
    .await;
    let (market, market_complete) = market;
    CycleReads::from_lists(account, positions, open_orders, market, market_complete)
}

/// `read`, given up shortly after `deadline` as a missed read of `path`.
async fn bounded<T>(
    deadline: Instant,
    path: &str,
    read: impl Future<Output = Result<T, BrokerError>>,
) -> Result<T, BrokerError> {
    let hard_stop = tokio::time::Instant::from_std(deadline + DEADLINE_GRACE);
    match tokio::time::timeout_at(hard_stop, read).await {
        Ok(result) => result,
        Err(_) => Err(BrokerError::from(AlpacaError::DeadlineExceeded {
            path: path.to_string(),
            attempts: 0,
            cause: "the read overran the cycle deadline and was dropped".to_string(),
        })),
    }
}
