//! [`AlpacaBroker`]: the execution core's [`Broker`] over Alpaca's Trading API.
//!
//! Requests (all from the official spec, `trading-api.json`):
//! `GET /v2/clock`, `GET /v2/account`, `GET /v2/positions`,
//! `GET /v2/orders?status=open&limit=500&direction=asc&nested=false[&after_order_id=…]`,
//! `POST /v2/orders`, `GET /v2/orders:by_client_order_id?client_order_id=…`,
//! `PATCH /v2/orders/{order_id}`, `DELETE /v2/orders/{order_id}`,
//! `PATCH /v2/account/configurations` (`suspend_trade`).
//!
//! An order POST or PATCH is sent once; an unanswered one is `UnknownOutcome` and the order
//! desk looks it up by client order id; one the cycle deadline stopped before it was sent is
//! `NotSent`.
//!
//! The reads of an execution cycle (account, positions, open orders) also have async forms
//! taking a deadline, for [`super::reads::read_cycle`], which runs them concurrently; the
//! [`Broker`] methods are their synchronous facade.

use crate::alpaca::client::{AlpacaClient, AlpacaError, Api, Request, MAX_BODY_EXCERPT};
use crate::alpaca::types::{
    AccountDetails, NewOrderBody, ReplaceOrderBody, SuspendTradeBody, WireAccount, WireClock,
    WireOrder, WirePosition,
};
use crate::broker::{
    Account, Broker, BrokerError, BrokerOrder, MarketClock, OrderRequest, Position, ReplaceRequest,
};
use crate::credentials::Secret;
use chrono::{DateTime, Utc};
use reqwest::Method;
use std::time::Instant;

/// Alpaca's maximum page size for `GET /v2/orders`.
pub const ORDERS_PAGE_LIMIT: u32 = 500;
/// Alpaca's limit on `client_order_id` (spec: `maxLength: 128`).
pub const CLIENT_ORDER_ID_MAX_LEN: usize = 128;

pub struct AlpacaBroker {
    client: AlpacaClient,
    name: String,
}

impl std::fmt::Debug for AlpacaBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlpacaBroker")
            .field("name", &self.name)
            .field("client", &self.client)
            .finish()
    }
}

fn decode(path: &str, error: impl std::fmt::Display) -> BrokerError {
    BrokerError::from(AlpacaError::Decode {
        path: path.to_string(),
        message: error.to_string(),
    })
}

impl AlpacaBroker {
    /// `name` is the mode, e.g. `alpaca-paper` or `alpaca-live`.
    pub fn new(client: AlpacaClient, name: impl Into<String>) -> AlpacaBroker {
        AlpacaBroker {
            client,
            name: name.into(),
        }
    }

    pub fn client(&self) -> &AlpacaClient {
        &self.client
    }

    /// HTTP requests sent so far.
    pub fn requests_sent(&self) -> u64 {
        self.client.requests_sent()
    }

    /// The account with the fields startup checks need (account number, blocks).
    pub fn account_details(&self) -> Result<AccountDetails, BrokerError> {
        self.client.block_on(self.account_details_async(None))
    }

    /// [`AlpacaBroker::account_details`], bounded by `deadline` (and the family deadline).
    pub async fn account_details_async(
        &self,
        deadline: Option<Instant>,
    ) -> Result<AccountDetails, BrokerError> {
        let wire: WireAccount = self
            .client
            .json_async(&Request::get(Api::Trading, "/v2/account"), deadline)
            .await?;
        wire.into_details().map_err(|e| decode("/v2/account", e))
    }

    /// [`Broker::account`], bounded by `deadline` (and the family deadline).
    pub async fn account_async(&self, deadline: Option<Instant>) -> Result<Account, BrokerError> {
        Ok(self.account_details_async(deadline).await?.account)
    }

    /// [`Broker::positions`], bounded by `deadline` (and the family deadline).
    pub async fn positions_async(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Vec<Position>, BrokerError> {
        let wire: Vec<WirePosition> = self
            .client
            .json_async(&Request::get(Api::Trading, "/v2/positions"), deadline)
            .await?;
        wire.into_iter()
            .map(|p| p.into_broker().map_err(|e| decode("/v2/positions", e)))
            .collect()
    }

    /// [`Broker::open_orders`] (every page), bounded by `deadline` (and the family deadline).
    pub async fn open_orders_async(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Vec<BrokerOrder>, BrokerError> {
        self.list_orders_async("open", None, None, deadline).await
    }

    /// `GET /v2/orders` with `status` (`open`, `all`), optionally one symbol and submitted
    /// after `after`; every page, oldest first.
    async fn list_orders_async(
        &self,
        status: &str,
        symbol: Option<&str>,
        after: Option<DateTime<Utc>>,
        deadline: Option<Instant>,
    ) -> Result<Vec<BrokerOrder>, BrokerError> {
        let path = "/v2/orders";
        let mut all: Vec<BrokerOrder> = Vec::new();
        let mut after_order: Option<String> = None;
        loop {
            let mut request = Request::get(Api::Trading, path)
                .query("status", status.to_string())
                .query("limit", ORDERS_PAGE_LIMIT.to_string())
                .query("direction", "asc")
                .query("nested", "false");
            if let Some(symbol) = symbol {
                request = request.query("symbols", symbol.to_string());
            }
            if let Some(after) = after {
                request = request.query(
                    "after",
                    after.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                );
            }
            if let Some(id) = &after_order {
                request = request.query("after_order_id", id.clone());
            }
            let page: Vec<WireOrder> = self.client.json_async(&request, deadline).await?;
            let full = page.len() >= ORDERS_PAGE_LIMIT as usize;
            let last_id = page.last().map(|o| o.id.clone());
            for wire in page {
                all.push(Self::order_from(path, wire)?);
            }
            match (full, last_id) {
                (true, Some(id)) if after_order.as_deref() != Some(id.as_str()) => {
                    after_order = Some(id)
                }
                _ => break,
            }
        }
        Ok(all)
    }

    /// `alpaca-live` guard: the account number in the live-confirmation credential must equal
    /// the account the keys belong to. The error never prints either number.
    pub fn confirm_live_account(&self, expected: &Secret) -> Result<AccountDetails, BrokerError> {
        let details = self.account_details()?;
        match &details.account_number {
            Some(number) if number.trim() == expected.expose().trim() => Ok(details),
            Some(_) => Err(BrokerError::Auth {
                message: "the live-account confirmation (alpaca-live-account / \
                          AVWAP_LIVE_ACCOUNT) does not match the account these API keys \
                          belong to; refusing to trade live"
                    .to_string(),
            }),
            None => Err(BrokerError::Auth {
                message: "Alpaca's account has no account_number to compare with the \
                          live-account confirmation; refusing to trade live"
                    .to_string(),
            }),
        }
    }

    fn order_from(path: &str, wire: WireOrder) -> Result<BrokerOrder, BrokerError> {
        wire.into_broker().map_err(|e| decode(path, e))
    }

    fn check_client_order_id(id: &str) -> Result<(), BrokerError> {
        if id.is_empty() || id.len() > CLIENT_ORDER_ID_MAX_LEN {
            return Err(BrokerError::Rejected {
                code: None,
                message: format!(
                    "client_order_id must be 1..={CLIENT_ORDER_ID_MAX_LEN} characters, got {} \
                     (not sent)",
                    id.len()
                ),
            });
        }
        Ok(())
    }
}

impl Broker for AlpacaBroker {
    fn name(&self) -> &str {
        &self.name
    }

    fn clock(&mut self) -> Result<MarketClock, BrokerError> {
        let wire: WireClock = self.client.json(&Request::get(Api::Trading, "/v2/clock"))?;
        Ok(wire.into_broker())
    }

    fn account(&mut self) -> Result<Account, BrokerError> {
        Ok(self.account_details()?.account)
    }

    fn positions(&mut self) -> Result<Vec<Position>, BrokerError> {
        self.client.block_on(self.positions_async(None))
    }

    fn open_orders(&mut self) -> Result<Vec<BrokerOrder>, BrokerError> {
        self.client.block_on(self.open_orders_async(None))
    }

    fn submit(&mut self, request: &OrderRequest) -> Result<BrokerOrder, BrokerError> {
        Self::check_client_order_id(&request.client_order_id)?;
        let body = serde_json::to_value(NewOrderBody::from_request(request))
            .map_err(|e| decode("/v2/orders", e))?;
        let answer = self
            .client
            .execute(&Request::with_body(Method::POST, "/v2/orders", body))?;
        // The order exists now; a body we cannot read means we must look it up.
        match serde_json::from_str::<WireOrder>(&answer.body) {
            Ok(wire) => Self::order_from("/v2/orders", wire),
            Err(e) => Err(BrokerError::UnknownOutcome {
                message: format!(
                    "order accepted (HTTP {}) but its body is unreadable: {}",
                    answer.status,
                    self.client.network_text(&e.to_string(), MAX_BODY_EXCERPT)
                ),
            }),
        }
    }

    fn orders_for_symbol(
        &mut self,
        symbol: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<BrokerOrder>, BrokerError> {
        let mut orders =
            self.client
                .block_on(self.list_orders_async("all", Some(symbol), Some(since), None))?;
        // The symbol filter is the server's; an answer for another symbol is not ours to use.
        orders.retain(|o| o.symbol == symbol);
        orders.sort_by_key(|o| o.submitted_at);
        Ok(orders)
    }

    fn order_by_client_id(
        &mut self,
        client_order_id: &str,
    ) -> Result<Option<BrokerOrder>, BrokerError> {
        let path = "/v2/orders:by_client_order_id";
        let request =
            Request::get(Api::Trading, path).query("client_order_id", client_order_id.to_string());
        match self.client.json::<WireOrder>(&request) {
            Ok(wire) => Self::order_from(path, wire).map(Some),
            Err(AlpacaError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn replace(
        &mut self,
        order_id: &str,
        request: &ReplaceRequest,
    ) -> Result<BrokerOrder, BrokerError> {
        Self::check_client_order_id(&request.client_order_id)?;
        let path = format!("/v2/orders/{order_id}");
        let body = serde_json::to_value(ReplaceOrderBody::from_request(request))
            .map_err(|e| decode(&path, e))?;
        let answer = self
            .client
            .execute(&Request::with_body(Method::PATCH, &path, body))?;
        match serde_json::from_str::<WireOrder>(&answer.body) {
            Ok(wire) => Self::order_from(&path, wire),
            Err(e) => Err(BrokerError::UnknownOutcome {
                message: format!(
                    "replace accepted (HTTP {}) but its body is unreadable: {}",
                    answer.status,
                    self.client.network_text(&e.to_string(), MAX_BODY_EXCERPT)
                ),
            }),
        }
    }

    fn cancel(&mut self, order_id: &str) -> Result<(), BrokerError> {
        let path = format!("/v2/orders/{order_id}");
        self.client.execute(&Request {
            api: Api::Trading,
            method: Method::DELETE,
            path: &path,
            query: Vec::new(),
            body: None,
        })?;
        Ok(())
    }

    fn suspend_new_orders(&mut self, suspend: bool) -> Result<(), BrokerError> {
        let body = serde_json::to_value(SuspendTradeBody {
            suspend_trade: suspend,
        })
        .map_err(|e| decode("/v2/account/configurations", e))?;
        self.client.execute(&Request::with_body(
            Method::PATCH,
            "/v2/account/configurations",
            body,
        ))?;
        Ok(())
    }
}
