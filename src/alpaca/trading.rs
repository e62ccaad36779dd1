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
    self, AccountDetails, NewOrderBody, ReplaceOrderBody, SuspendTradeBody, WireError,
};
use crate::broker::{
    Account, Broker, BrokerError, BrokerOrder, MarketClock, OrderList, OrderRequest, Position,
    PositionList, ReplaceRequest,
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

/// A GET and the parse of its answer by `parse`; an answer that does not parse is
/// [`BrokerError::Malformed`] naming the operation and what was wrong.
async fn read_answer<T>(
    client: &AlpacaClient,
    request: &Request<'_>,
    deadline: Option<Instant>,
    parse: impl FnOnce(&str) -> Result<T, WireError>,
) -> Result<T, BrokerError> {
    let answer = client.execute_async(request, deadline).await?;
    parse(&answer.body).map_err(|e| malformed(client, request, &e))
}

fn malformed(client: &AlpacaClient, request: &Request<'_>, error: &WireError) -> BrokerError {
    BrokerError::Malformed {
        operation: format!("{} {}", request.method, request.path),
        message: client.network_text(&error.0, MAX_BODY_EXCERPT),
    }
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
        let request = Request::get(Api::Trading, "/v2/account");
        read_answer(&self.client, &request, deadline, types::parse_account).await
    }

    /// [`Broker::account`], bounded by `deadline` (and the family deadline).
    pub async fn account_async(&self, deadline: Option<Instant>) -> Result<Account, BrokerError> {
        Ok(self.account_details_async(deadline).await?.account)
    }

    /// [`Broker::position_list`], bounded by `deadline` (and the family deadline).
    pub async fn positions_async(
        &self,
        deadline: Option<Instant>,
    ) -> Result<PositionList, BrokerError> {
        let request = Request::get(Api::Trading, "/v2/positions");
        read_answer(&self.client, &request, deadline, types::parse_positions).await
    }

    /// [`Broker::open_order_list`] (every page), bounded by `deadline` (and the family
    /// deadline).
    pub async fn open_orders_async(
        &self,
        deadline: Option<Instant>,
    ) -> Result<OrderList, BrokerError> {
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
    ) -> Result<OrderList, BrokerError> {
        let path = "/v2/orders";
        let mut all = OrderList::default();
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
            let page =
                read_answer(&self.client, &request, deadline, types::parse_order_list).await?;
            let full = page.len >= ORDERS_PAGE_LIMIT as usize;
            all.orders.extend(page.list.orders);
            all.foreign.extend(page.list.foreign);
            match (full, page.last_id) {
                (true, Some(id)) if after_order.as_deref() != Some(id.as_str()) => {
                    after_order = Some(id)
                }
                (true, _) => {
                    // A full page whose last order has no new id: the next page cannot be
                    // asked for, and a partial list is not the list.
                    return Err(malformed(
                        &self.client,
                        &request,
                        &WireError(
                            "a full page ends with an order without a new id, so the next page cannot be read".to_string(),
                        ),
                    ));
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
        let request = Request::get(Api::Trading, "/v2/clock");
        self.client.block_on(read_answer(
            &self.client,
            &request,
            None,
            types::parse_clock,
        ))
    }

    fn account(&mut self) -> Result<Account, BrokerError> {
        Ok(self.account_details()?.account)
    }

    fn positions(&mut self) -> Result<Vec<Position>, BrokerError> {
        let list = self.position_list()?;
        match list.unreadable.first() {
            None => Ok(list.positions),
            // A caller without room for unreadable positions must not take the rest for all.
            Some(bad) => Err(BrokerError::Malformed {
                operation: "GET /v2/positions".to_string(),
                message: bad.problem.clone(),
            }),
        }
    }

    fn open_orders(&mut self) -> Result<Vec<BrokerOrder>, BrokerError> {
        // Foreign orders of other kinds are never touched: leaving them out is their handling.
        Ok(self.open_order_list()?.orders)
    }

    fn position_list(&mut self) -> Result<PositionList, BrokerError> {
        self.client.block_on(self.positions_async(None))
    }

    fn open_order_list(&mut self) -> Result<OrderList, BrokerError> {
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
        types::parse_order(&answer.body).map_err(|e| BrokerError::UnknownOutcome {
            message: format!(
                "order accepted (HTTP {}) but its answer is unreadable: {}",
                answer.status,
                self.client.network_text(&e.0, MAX_BODY_EXCERPT)
            ),
        })
    }

    fn orders_for_symbol(
        &mut self,
        symbol: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<BrokerOrder>, BrokerError> {
        // Orders of other kinds cannot be ours: only those that read are of use here.
        let mut orders = self
            .client
            .block_on(self.list_orders_async("all", Some(symbol), Some(since), None))?
            .orders;
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
        let answer = match self.client.execute(&request) {
            Ok(answer) => answer,
            Err(AlpacaError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let order =
            types::parse_order(&answer.body).map_err(|e| malformed(&self.client, &request, &e))?;
        // Another order than the one asked for is no answer at all (never "not found").
        if order.client_order_id != client_order_id {
            return Err(malformed(
                &self.client,
                &request,
                &WireError(format!(
                    "asked for client order id {client_order_id}, the answer is order {}",
                    crate::broker::shown(&order.client_order_id)
                )),
            ));
        }
        Ok(Some(order))
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
        types::parse_order(&answer.body).map_err(|e| BrokerError::UnknownOutcome {
            message: format!(
                "replace accepted (HTTP {}) but its answer is unreadable: {}",
                answer.status,
                self.client.network_text(&e.0, MAX_BODY_EXCERPT)
            ),
        })
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

    fn suspend_new_orders(&mut self, suspend: bool) -> Result<bool, BrokerError> {
        let path = "/v2/account/configurations";
        let body = serde_json::to_value(SuspendTradeBody {
            suspend_trade: suspend,
        })
        .map_err(|e| decode(path, e))?;
        let request = Request::with_body(Method::PATCH, path, body);
        let answer = self.client.execute(&request)?;
        // The answer is the account's configuration after the change: what it says is the
        // state, whatever was asked.
        types::parse_suspend_trade(&answer.body).map_err(|e| malformed(&self.client, &request, &e))
    }
}
