//! The broker interface: what execution needs from a broker (clock, account, positions, open
//! orders, submit with a client order id, look up by client order id, replace, cancel,
//! suspend new orders) and how broker failures are classified. Implementations: the
//! simulated broker ([`sim`]) and Alpaca (the `alpaca` edge module).
//!
//! Also what a broker's answer may hold that this system does not trade with: open orders of
//! other kinds ([`ForeignOrder`]) and positions whose numbers do not read
//! ([`UnreadablePosition`]), kept apart from the rest of a list instead of failing it, and
//! [`order_answer_mismatch`], the check every order answer passes before it is booked.

pub mod sim;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Every client order id avwap sends starts with this and a `-`
/// (`avw-<YYYYMMDD>-<SYMBOL>-<leg>-<attempt>`, see `execution::ids`).
pub const CLIENT_ID_PREFIX: &str = "avw";

/// Whether a client order id carries our prefix (our order, possibly of an older scheme).
pub fn has_our_prefix(client_order_id: &str) -> bool {
    client_order_id
        .strip_prefix(CLIENT_ID_PREFIX)
        .is_some_and(|rest| rest.starts_with('-'))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

/// Order types we use. `Stop` is a stop-market order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderType {
    Market,
    Limit,
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeInForce {
    Day,
    Gtc,
}

/// Gives a wire-name enum `as_str`/`parse` over its exact spellings (Alpaca's), so every
/// store and client spells them one way.
macro_rules! wire_names {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            /// The value spelled `text`, if any.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

wire_names!(Side { Buy => "buy", Sell => "sell" });
wire_names!(OrderType { Market => "market", Limit => "limit", Stop => "stop" });
wire_names!(TimeInForce { Day => "day", Gtc => "gtc" });
wire_names!(OrderStatus {
    New => "new",
    Accepted => "accepted",
    PendingNew => "pending_new",
    PartiallyFilled => "partially_filled",
    Filled => "filled",
    PendingCancel => "pending_cancel",
    PendingReplace => "pending_replace",
    Canceled => "canceled",
    Expired => "expired",
    Replaced => "replaced",
    Rejected => "rejected",
    Suspended => "suspended",
    DoneForDay => "done_for_day",
    AcceptedForBidding => "accepted_for_bidding",
    Stopped => "stopped",
    Calculated => "calculated",
    Held => "held",
});

/// Order states, as Alpaca names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    New,
    Accepted,
    PendingNew,
    PartiallyFilled,
    Filled,
    PendingCancel,
    PendingReplace,
    Canceled,
    Expired,
    Replaced,
    Rejected,
    Suspended,
    /// No more executions today; may work again the next session.
    DoneForDay,
    AcceptedForBidding,
    /// A trade is guaranteed but not yet reported.
    Stopped,
    /// Done for the day, settlement calculations pending: fills may still be reported.
    Calculated,
    /// Waiting for a trigger (e.g. a bracket leg).
    Held,
}

impl OrderStatus {
    /// Still working at the broker (may fill). Every status that is not final counts as open:
    /// an order that may still fill must never be taken for dead.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            OrderStatus::New
                | OrderStatus::Accepted
                | OrderStatus::PendingNew
                | OrderStatus::PartiallyFilled
                | OrderStatus::PendingCancel
                | OrderStatus::PendingReplace
                | OrderStatus::Suspended
                | OrderStatus::DoneForDay
                | OrderStatus::AcceptedForBidding
                | OrderStatus::Stopped
                | OrderStatus::Calculated
                | OrderStatus::Held
        )
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new order. Quantities are shares (whole shares for our own orders).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub client_order_id: String,
    pub symbol: String,
    pub side: Side,
    pub qty: Decimal,
    pub order_type: OrderType,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub time_in_force: TimeInForce,
}

/// A change to an open order. The replacement is a new order with its own client order id;
/// the old one ends as `replaced`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplaceRequest {
    pub client_order_id: String,
    pub qty: Option<Decimal>,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
}

/// An order as the broker reports it. `filled_qty` is cumulative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerOrder {
    pub id: String,
    pub client_order_id: String,
    pub symbol: String,
    pub side: Side,
    pub qty: Decimal,
    pub filled_qty: Decimal,
    pub filled_avg_price: Option<Decimal>,
    pub order_type: OrderType,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub time_in_force: TimeInForce,
    pub status: OrderStatus,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set on an order that was replaced: the id of its replacement.
    pub replaced_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub symbol: String,
    /// Shares held (long positive).
    pub qty: Decimal,
    pub avg_entry_price: Decimal,
}

/// An open order at the broker that is not ours and is of a kind this system does not trade
/// (a trailing stop, a notional order, `ioc`, …), or lacks fields our orders always have:
/// kept with what could be read, reported and never touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignOrder {
    pub id: Option<String>,
    pub client_order_id: Option<String>,
    /// `?` when the answer names none.
    pub symbol: String,
    pub side: Option<String>,
    pub order_type: Option<String>,
    /// The quantity as the broker wrote it (absent for a notional order).
    pub qty: Option<String>,
    pub status: Option<String>,
    /// Why it is not a [`BrokerOrder`].
    pub problem: String,
}

impl fmt::Display for ForeignOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
        write!(
            f,
            "{} {} {} (type {}, status {}, client order id {}, broker id {})",
            text(&self.side),
            text(&self.qty),
            self.symbol,
            text(&self.order_type),
            text(&self.status),
            text(&self.client_order_id),
            text(&self.id)
        )
    }
}

/// A position the broker lists whose numbers do not read: its size is unknown, so its symbol
/// gets no order of any kind (and never counts as flat) until it reads again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadablePosition {
    pub symbol: String,
    pub problem: String,
}

/// The open orders of an account: those this system can represent, and the foreign rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderList {
    pub orders: Vec<BrokerOrder>,
    pub foreign: Vec<ForeignOrder>,
}

/// The positions of an account: those that read, and those that do not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PositionList {
    pub positions: Vec<Position>,
    pub unreadable: Vec<UnreadablePosition>,
}

/// What an order answer must agree with: the request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedOrder<'a> {
    pub client_order_id: &'a str,
    pub symbol: &'a str,
    pub side: Side,
    /// `None` when the request does not fix it (a lookup).
    pub qty: Option<Decimal>,
    pub order_type: Option<OrderType>,
}

/// Why `answer` is not the order `expected` describes, or `None` when it is. An answer that is
/// another order (another symbol, another client order id, a crypto pair) must never be
/// booked as ours: that would book a position we do not hold and protect it with a stop.
pub fn order_answer_mismatch(answer: &BrokerOrder, expected: &ExpectedOrder<'_>) -> Option<String> {
    let mut differences = Vec::new();
    if answer.client_order_id != expected.client_order_id {
        differences.push(format!(
            "client order id {} (asked {})",
            shown(&answer.client_order_id),
            expected.client_order_id
        ));
    }
    if answer.symbol != expected.symbol {
        differences.push(format!(
            "symbol {} (asked {})",
            shown(&answer.symbol),
            expected.symbol
        ));
    }
    if answer.side != expected.side {
        differences.push(format!(
            "side {} (asked {})",
            answer.side.as_str(),
            expected.side.as_str()
        ));
    }
    if let Some(qty) = expected.qty {
        if answer.qty != qty {
            differences.push(format!("qty {} (asked {qty})", answer.qty));
        }
    }
    if let Some(order_type) = expected.order_type {
        if answer.order_type != order_type {
            differences.push(format!(
                "type {} (asked {})",
                answer.order_type.as_str(),
                order_type.as_str()
            ));
        }
    }
    (!differences.is_empty()).then(|| differences.join(", "))
}

/// Text from a broker's answer as a message shows it: quoted, escaped and cut short (it came
/// from the network).
pub fn shown(text: &str) -> String {
    const MAX_CHARS: usize = 48;
    let cut: String = text.chars().take(MAX_CHARS).collect();
    if cut.len() < text.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub equity: Decimal,
    pub buying_power: Decimal,
    /// New orders are blocked at the broker (Alpaca `suspend_trade`).
    pub trading_suspended: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketClock {
    pub timestamp: DateTime<Utc>,
    pub is_open: bool,
    pub next_open: DateTime<Utc>,
    pub next_close: DateTime<Utc>,
}

/// Broker failures, classified by what the caller may safely do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// A read failed for a transient reason; retrying the read is safe.
    #[error("broker read failed (retryable): {message}")]
    RetryableRead { message: String },
    /// The broker refused the order; nothing was placed.
    #[error("order rejected by the broker{}: {message}", code.as_ref().map(|c| format!(" (code {c})")).unwrap_or_default())]
    Rejected {
        code: Option<String>,
        message: String,
    },
    /// Credentials are missing, wrong or lack permission; stop and tell the operator.
    #[error(
        "broker refused our credentials: {message} (check the credential files / APCA_* variables)"
    )]
    Auth { message: String },
    /// Too many requests; wait at least `retry_after` before the next call.
    #[error("broker rate limit hit{}", retry_after.map(|d| format!("; retry after {} s", d.as_secs_f64())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// A request that may have changed broker state got no answer (timeout after send, 5xx).
    /// The outcome must be looked up (by client order id), never assumed.
    #[error("broker outcome unknown: {message}; the order will be looked up by its client order id before anything is resent")]
    UnknownOutcome { message: String },
    /// A mutating request was provably never sent (e.g. the cycle deadline came while it
    /// waited for a rate-limit token): nothing changed at the broker, the order is not placed
    /// and may be placed again later under the same rules.
    #[error("not sent to the broker: {message}")]
    NotSent { message: String },
    /// The order or resource does not exist at the broker.
    #[error("not found at the broker: {message}")]
    NotFound { message: String },
    /// The broker does not support this operation (e.g. suspending new orders in the simulator).
    #[error("not supported by this broker: {0}")]
    Unsupported(String),
    /// The broker answered, but not in a shape we can act on (a field missing, a number that
    /// is not one). The network and the keys worked; the answer itself is the problem.
    #[error("the broker's answer to {operation} is not usable: {message} (the request reached the broker and was answered; it is the answer that is wrong, not the network or the keys)")]
    Malformed { operation: String, message: String },
}

/// The broker's and the market's answers for one execution cycle: what the read phase got.
/// A failed read stays an error (never an empty list): a missing report is not "nothing".
#[derive(Debug, Clone)]
pub struct CycleReads {
    pub account: Result<Account, BrokerError>,
    pub positions: Result<Vec<Position>, BrokerError>,
    pub open_orders: Result<Vec<BrokerOrder>, BrokerError>,
    /// Open orders of kinds we do not trade, not ours (empty when the list was not read).
    pub foreign_orders: Vec<ForeignOrder>,
    /// Positions whose numbers did not read (empty when the list was not read).
    pub unreadable_positions: Vec<UnreadablePosition>,
    /// Whatever market data arrived in time (a symbol without bars simply has none).
    pub market: crate::market_data::intraday::MarketSnapshot,
    /// False when any market-data request failed or missed the deadline.
    pub market_complete: bool,
}

impl CycleReads {
    /// One read after the other: for a local book (sim, dry-run), whose answers are immediate.
    pub fn sequential(
        broker: &mut dyn Broker,
        feed: &dyn crate::market_data::intraday::IntradayFeed,
        symbols: &[String],
        now: DateTime<Utc>,
        bars: usize,
    ) -> CycleReads {
        let account = broker.account();
        let (positions, unreadable_positions) =
            split(broker.position_list(), |l| (l.positions, l.unreadable));
        let (open_orders, foreign_orders) =
            split(broker.open_order_list(), |l| (l.orders, l.foreign));
        CycleReads {
            account,
            positions,
            open_orders,
            foreign_orders,
            unreadable_positions,
            market: feed.snapshot(symbols, now, bars),
            market_complete: true,
        }
    }

    /// The reads of a cycle from a list answer for positions and one for open orders.
    pub fn from_lists(
        account: Result<Account, BrokerError>,
        positions: Result<PositionList, BrokerError>,
        open_orders: Result<OrderList, BrokerError>,
        market: crate::market_data::intraday::MarketSnapshot,
        market_complete: bool,
    ) -> CycleReads {
        let (positions, unreadable_positions) = split(positions, |l| (l.positions, l.unreadable));
        let (open_orders, foreign_orders) = split(open_orders, |l| (l.orders, l.foreign));
        CycleReads {
            account,
            positions,
            open_orders,
            foreign_orders,
            unreadable_positions,
            market,
            market_complete,
        }
    }
}

/// A list read into (what we use, the rest): a failed read keeps its error and has no rest.
fn split<L, A, B>(
    read: Result<L, BrokerError>,
    parts: impl FnOnce(L) -> (Vec<A>, Vec<B>),
) -> (Result<Vec<A>, BrokerError>, Vec<B>) {
    match read {
        Ok(list) => {
            let (used, rest) = parts(list);
            (Ok(used), rest)
        }
        Err(e) => (Err(e), Vec::new()),
    }
}

/// What execution needs from a broker. Calls are blocking; implementations bound their own
/// timeouts and never retry an order submission by themselves.
pub trait Broker {
    fn name(&self) -> &str;
    fn clock(&mut self) -> Result<MarketClock, BrokerError>;
    fn account(&mut self) -> Result<Account, BrokerError>;
    fn positions(&mut self) -> Result<Vec<Position>, BrokerError>;
    fn open_orders(&mut self) -> Result<Vec<BrokerOrder>, BrokerError>;
    /// [`Broker::positions`], with positions whose numbers do not read kept apart instead of
    /// failing the list (a broker whose answers are typed never has any).
    fn position_list(&mut self) -> Result<PositionList, BrokerError> {
        Ok(PositionList {
            positions: self.positions()?,
            unreadable: Vec::new(),
        })
    }
    /// [`Broker::open_orders`], with foreign orders of kinds we do not trade kept apart
    /// instead of failing the list.
    fn open_order_list(&mut self) -> Result<OrderList, BrokerError> {
        Ok(OrderList {
            orders: self.open_orders()?,
            foreign: Vec::new(),
        })
    }
    /// Place an order. On `UnknownOutcome` the caller must look it up by client order id.
    fn submit(&mut self, request: &OrderRequest) -> Result<BrokerOrder, BrokerError>;
    /// The order with this client order id, in any state; `None` when the broker has none.
    fn order_by_client_id(
        &mut self,
        client_order_id: &str,
    ) -> Result<Option<BrokerOrder>, BrokerError>;
    /// Atomically replace an open order (price or quantity); returns the new order.
    fn replace(
        &mut self,
        order_id: &str,
        request: &ReplaceRequest,
    ) -> Result<BrokerOrder, BrokerError>;
    fn cancel(&mut self, order_id: &str) -> Result<(), BrokerError>;
    /// Every order of `symbol` submitted at or after `since`, in any state, oldest first. How a
    /// lost or rolled-back journal finds the filled entry behind a position it does not know.
    fn orders_for_symbol(
        &mut self,
        symbol: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<BrokerOrder>, BrokerError> {
        let _ = (symbol, since);
        Err(BrokerError::Unsupported(
            "listing an account's past orders".to_string(),
        ))
    }
    /// Broker-side kill switch: block (or allow again) all new orders for the account. Returns
    /// whether new orders are suspended as the broker's answer to this very request says.
    fn suspend_new_orders(&mut self, suspend: bool) -> Result<bool, BrokerError> {
        let _ = suspend;
        Err(BrokerError::Unsupported(
            "suspending new orders".to_string(),
        ))
    }
}
