//! Wire shapes of the Alpaca Trading API (official OpenAPI spec `trading-api.json`) and their
//! conversion to the broker types. Every decimal travels as a JSON string (`qty`, `filled_qty`,
//! prices, `equity`, `buying_power`); enums are spelled exactly as the spec's enums.

use crate::broker::{
    has_our_prefix, Account, BrokerOrder, ForeignOrder, MarketClock, OrderList, OrderRequest,
    OrderStatus, OrderType, Position, PositionList, ReplaceRequest, Side, TimeInForce,
    UnreadablePosition,
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::str::FromStr;

/// `POST /v2/orders` body (schema `PostOrderRequest`, the fields we use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewOrderBody {
    pub symbol: String,
    /// Decimal string.
    pub qty: String,
    pub side: &'static str,
    #[serde(rename = "type")]
    pub order_type: &'static str,
    pub time_in_force: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<String>,
    pub client_order_id: String,
}

impl NewOrderBody {
    pub fn from_request(request: &OrderRequest) -> NewOrderBody {
        NewOrderBody {
            symbol: request.symbol.clone(),
            qty: request.qty.to_string(),
            side: request.side.as_str(),
            order_type: request.order_type.as_str(),
            time_in_force: request.time_in_force.as_str(),
            limit_price: request.limit_price.map(|p| p.to_string()),
            stop_price: request.stop_price.map(|p| p.to_string()),
            client_order_id: request.client_order_id.clone(),
        }
    }
}

/// `PATCH /v2/orders/{order_id}` body (schema `PatchOrderRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplaceOrderBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qty: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<String>,
    pub client_order_id: String,
}

impl ReplaceOrderBody {
    pub fn from_request(request: &ReplaceRequest) -> ReplaceOrderBody {
        ReplaceOrderBody {
            qty: request.qty.map(|q| q.to_string()),
            limit_price: request.limit_price.map(|p| p.to_string()),
            stop_price: request.stop_price.map(|p| p.to_string()),
            client_order_id: request.client_order_id.clone(),
        }
    }
}

/// `PATCH /v2/account/configurations` body (schema `AccountConfigurations`, one field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SuspendTradeBody {
    pub suspend_trade: bool,
}

/// Schema `Order` (fields we read; `order_type` is deprecated in favour of `type`). The spec
/// requires only `notional`, `type` and `time_in_force`: every field is optional here, and
/// [`WireOrder::into_broker`] says which one an order of ours lacks.
#[derive(Debug, Clone, Deserialize)]
pub struct WireOrder {
    pub id: Option<String>,
    pub client_order_id: Option<String>,
    pub symbol: Option<String>,
    pub side: Option<String>,
    #[serde(rename = "type")]
    pub order_type: Option<String>,
    pub time_in_force: Option<String>,
    pub status: Option<String>,
    pub qty: Option<String>,
    pub filled_qty: Option<String>,
    pub filled_avg_price: Option<String>,
    pub limit_price: Option<String>,
    pub stop_price: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub replaced_by: Option<String>,
}

/// Schema `legacy_clock`.
#[derive(Debug, Clone, Deserialize)]
pub struct WireClock {
    pub timestamp: DateTime<chrono::FixedOffset>,
    pub is_open: bool,
    pub next_open: DateTime<chrono::FixedOffset>,
    pub next_close: DateTime<chrono::FixedOffset>,
}

/// Schema `Account` (fields we read). The spec requires only `id` and `status`; the numbers a
/// cycle needs are checked by [`WireAccount::into_details`], which names a missing one.
#[derive(Debug, Clone, Deserialize)]
pub struct WireAccount {
    pub account_number: Option<String>,
    pub status: Option<String>,
    pub equity: Option<String>,
    pub buying_power: Option<String>,
    pub trade_suspended_by_user: Option<bool>,
    pub trading_blocked: Option<bool>,
    pub account_blocked: Option<bool>,
}

/// Schema `Position` (fields we read). `qty` is negative for a short.
#[derive(Debug, Clone, Deserialize)]
pub struct WirePosition {
    pub symbol: String,
    pub qty: Option<String>,
    pub avg_entry_price: Option<String>,
}

/// Schema `AccountConfigurations` (the one field we set and verify).
#[derive(Debug, Clone, Deserialize)]
pub struct WireAccountConfigurations {
    pub suspend_trade: Option<bool>,
}

/// Alpaca's account as far as startup checks care (live confirmation, blocks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDetails {
    pub account: Account,
    /// Alpaca's account number (used to confirm `alpaca-live`).
    pub account_number: Option<String>,
    pub status: Option<String>,
    pub trading_blocked: bool,
    pub account_blocked: bool,
}

/// A response that does not have the shape the spec promises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub String);

pub fn decimal(field: &str, text: &str) -> Result<Decimal, WireError> {
    Decimal::from_str(text.trim())
        .or_else(|_| Decimal::from_scientific(text.trim()))
        .map_err(|_| WireError(format!("{field} is not a decimal: {}", shown(text))))
}

fn opt_decimal(field: &str, text: &Option<String>) -> Result<Option<Decimal>, WireError> {
    text.as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(|t| decimal(field, t))
        .transpose()
}

/// `value` as a message shows text from an answer: quoted, escaped, cut short.
fn shown(value: &str) -> String {
    crate::broker::shown(value)
}

fn required<'a>(which: &str, field: &str, value: &'a Option<String>) -> Result<&'a str, WireError> {
    value
        .as_deref()
        .ok_or_else(|| WireError(format!("{which} has no {field}")))
}

impl WireOrder {
    /// How errors name this order: its client order id, broker id and symbol, as far as known.
    fn which(&self) -> String {
        let text = |v: &Option<String>| v.as_deref().map_or("-".to_string(), shown);
        format!(
            "order {} (broker id {}, {})",
            text(&self.client_order_id),
            text(&self.id),
            text(&self.symbol)
        )
    }

    /// The order as the execution core knows orders; an error names the field this system
    /// cannot read or does not trade with.
    pub fn into_broker(self) -> Result<BrokerOrder, WireError> {
        let which = self.which();
        let id = required(&which, "id", &self.id)?.to_string();
        let client_order_id =
            required(&which, "client_order_id", &self.client_order_id)?.to_string();
        let symbol = required(&which, "symbol", &self.symbol)?.to_string();
        let status_text = required(&which, "status", &self.status)?;
        let status = OrderStatus::parse(status_text).ok_or_else(|| {
            WireError(format!(
                "{which} has status {}, which this system does not handle; it is neither \
                 treated as open nor as closed — inspect the order at Alpaca",
                shown(status_text)
            ))
        })?;
        let side_text = required(&which, "side", &self.side)?;
        let side = Side::parse(side_text).ok_or_else(|| {
            WireError(format!("{which} has an unknown side {}", shown(side_text)))
        })?;
        let type_text = required(&which, "type", &self.order_type)?;
        let order_type = OrderType::parse(type_text).ok_or_else(|| {
            WireError(format!(
                "{which} has order type {}; only market, limit and stop are handled",
                shown(type_text)
            ))
        })?;
        let tif_text = required(&which, "time_in_force", &self.time_in_force)?;
        let time_in_force = TimeInForce::parse(tif_text).ok_or_else(|| {
            WireError(format!(
                "{which} has time in force {}; only day and gtc are handled",
                shown(tif_text)
            ))
        })?;
        let qty = match &self.qty {
            Some(q) => decimal("qty", q).map_err(|e| WireError(format!("{which}: {e}")))?,
            None => {
                return Err(WireError(format!(
                    "{which} has no qty (a notional order); not handled"
                )))
            }
        };
        let filled_qty = decimal(
            "filled_qty",
            required(&which, "filled_qty", &self.filled_qty)?,
        )
        .map_err(|e| WireError(format!("{which}: {e}")))?;
        let field = |name: &str, value: &Option<String>| {
            opt_decimal(name, value).map_err(|e| WireError(format!("{which}: {e}")))
        };
        let limit_price = field("limit_price", &self.limit_price)?;
        let stop_price = field("stop_price", &self.stop_price)?;
        // A stop without its trigger (or a limit without its limit) cannot be judged: how much
        // it protects, whether it must be raised. Never read it as "no level".
        let missing_price = match order_type {
            OrderType::Stop if stop_price.is_none() => Some("stop_price"),
            OrderType::Limit if limit_price.is_none() => Some("limit_price"),
            _ => None,
        };
        if let Some(price) = missing_price {
            return Err(WireError(format!(
                "{which} is a {} order without {price}",
                order_type.as_str()
            )));
        }
        let submitted_at = self
            .submitted_at
            .or(self.created_at)
            .ok_or_else(|| WireError(format!("{which} has neither submitted_at nor created_at")))?;
        Ok(BrokerOrder {
            filled_avg_price: field("filled_avg_price", &self.filled_avg_price)?,
            limit_price,
            stop_price,
            id,
            client_order_id,
            symbol,
            side,
            qty,
            filled_qty,
            order_type,
            time_in_force,
            status,
            submitted_at,
            updated_at: self.updated_at.unwrap_or(submitted_at),
            replaced_by: self.replaced_by.filter(|r| !r.is_empty()),
        })
    }
}

/// A string field of a JSON object, cut and escaped for messages; `None` when absent or not
/// a string.
fn text_field(item: &Value, name: &str) -> Option<String> {
    item.get(name).and_then(Value::as_str).map(|t| {
        let cut: String = t.chars().take(48).filter(|c| !c.is_control()).collect();
        cut
    })
}

/// One order of an answer, strictly.
fn order_of(item: Value) -> Result<BrokerOrder, WireError> {
    let wire: WireOrder = serde_json::from_value(item)
        .map_err(|e| WireError(format!("an order does not have the spec's shape: {e}")))?;
    wire.into_broker()
}

/// A single-order answer (`POST /v2/orders`, `PATCH /v2/orders/{id}`,
/// `GET /v2/orders:by_client_order_id`), strictly: every field our orders have.
pub fn parse_order(body: &str) -> Result<BrokerOrder, WireError> {
    let item: Value = serde_json::from_str(body)
        .map_err(|e| WireError(format!("the answer is not a JSON order: {e}")))?;
    order_of(item)
}

/// The elements of a list answer; an error when the answer is not a JSON array.
fn list_items(body: &str, what: &str) -> Result<Vec<Value>, WireError> {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(_) => Err(WireError(format!("the answer is not a list of {what}"))),
        Err(e) => Err(WireError(format!("the answer is not JSON: {e}"))),
    }
}

/// Orders of a list answer, element by element. An order with our client-id prefix must read
/// strictly (else the whole list is an error: our own order unread is not "no order"); any
/// other order this system cannot represent is kept as a [`ForeignOrder`]. Also returns the
/// raw number of elements and the last element's id (for paging).
pub fn parse_order_list(body: &str) -> Result<OrderListPage, WireError> {
    let items = list_items(body, "orders")?;
    let len = items.len();
    let last_id = items.last().and_then(|o| text_field(o, "id"));
    let mut list = OrderList::default();
    for item in items {
        let client_order_id = text_field(&item, "client_order_id");
        match order_of(item.clone()) {
            Ok(order) => list.orders.push(order),
            Err(e) if client_order_id.as_deref().is_some_and(has_our_prefix) => {
                return Err(WireError(format!(
                    "our own order cannot be read, so the list is not used: {e}"
                )))
            }
            Err(e) => list.foreign.push(ForeignOrder {
                id: text_field(&item, "id"),
                client_order_id,
                symbol: text_field(&item, "symbol").unwrap_or_else(|| "?".to_string()),
                side: text_field(&item, "side"),
                order_type: text_field(&item, "type").or_else(|| text_field(&item, "order_type")),
                qty: text_field(&item, "qty"),
                status: text_field(&item, "status"),
                problem: e.0,
            }),
        }
    }
    Ok(OrderListPage { list, len, last_id })
}

/// One page of `GET /v2/orders`: the orders, how many elements it had, the last one's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderListPage {
    pub list: OrderList,
    pub len: usize,
    pub last_id: Option<String>,
}

/// `GET /v2/positions`, element by element: a position whose numbers do not read is kept as
/// [`UnreadablePosition`] (its symbol is held back); one without a symbol fails the list, as
/// nothing would tell which symbol to hold back.
pub fn parse_positions(body: &str) -> Result<PositionList, WireError> {
    let mut list = PositionList::default();
    for item in list_items(body, "positions")? {
        let Some(symbol) = item.get("symbol").and_then(Value::as_str) else {
            return Err(WireError(
                "a position has no symbol, so no symbol can be held back for it".to_string(),
            ));
        };
        let wire = WirePosition {
            symbol: symbol.to_string(),
            qty: item.get("qty").and_then(Value::as_str).map(str::to_string),
            avg_entry_price: item
                .get("avg_entry_price")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        match wire.into_broker() {
            Ok(position) => list.positions.push(position),
            Err(e) => list.unreadable.push(UnreadablePosition {
                symbol: text_field(&item, "symbol").unwrap_or_default(),
                problem: e.0,
            }),
        }
    }
    Ok(list)
}

/// `GET /v2/account`.
pub fn parse_account(body: &str) -> Result<AccountDetails, WireError> {
    let wire: WireAccount = serde_json::from_str(body)
        .map_err(|e| WireError(format!("the answer is not an account: {e}")))?;
    wire.into_details()
}

/// `GET /v2/clock`.
pub fn parse_clock(body: &str) -> Result<MarketClock, WireError> {
    let wire: WireClock = serde_json::from_str(body)
        .map_err(|e| WireError(format!("the answer is not a market clock: {e}")))?;
    Ok(wire.into_broker())
}

/// `PATCH /v2/account/configurations`: whether new orders are suspended, as the answer says.
pub fn parse_suspend_trade(body: &str) -> Result<bool, WireError> {
    let wire: WireAccountConfigurations = serde_json::from_str(body)
        .map_err(|e| WireError(format!("the answer is not an account configuration: {e}")))?;
    wire.suspend_trade.ok_or_else(|| {
        WireError(
            "the answer has no suspend_trade, so whether new orders are suspended is unknown"
                .to_string(),
        )
    })
}

impl WireClock {
    pub fn into_broker(self) -> MarketClock {
        MarketClock {
            timestamp: self.timestamp.with_timezone(&Utc),
            is_open: self.is_open,
            next_open: self.next_open.with_timezone(&Utc),
            next_close: self.next_close.with_timezone(&Utc),
        }
    }
}

impl WireAccount {
    pub fn into_details(self) -> Result<AccountDetails, WireError> {
        let number = |field: &str, value: &Option<String>| match value {
            Some(text) => decimal(&format!("account {field}"), text),
            None => Err(WireError(format!(
                "the account has no {field}, which sizing needs"
            ))),
        };
        Ok(AccountDetails {
            account: Account {
                equity: number("equity", &self.equity)?,
                buying_power: number("buying_power", &self.buying_power)?,
                trading_suspended: self.trade_suspended_by_user.unwrap_or(false),
            },
            account_number: self.account_number,
            status: self.status,
            trading_blocked: self.trading_blocked.unwrap_or(false),
            account_blocked: self.account_blocked.unwrap_or(false),
        })
    }
}

impl WirePosition {
    pub fn into_broker(self) -> Result<Position, WireError> {
        let which = format!("position {}", shown(&self.symbol));
        let number = |field: &str, value: &Option<String>| match value {
            Some(text) => decimal(&format!("{which} {field}"), text),
            None => Err(WireError(format!("{which} has no {field}"))),
        };
        Ok(Position {
            qty: number("qty", &self.qty)?,
            avg_entry_price: number("avg_entry_price", &self.avg_entry_price)?,
            symbol: self.symbol,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order_json(status: &str) -> String {
        format!(
            r#"{{"id":"61e69015-8549-4bfd-b9c3-01e75843f47d","client_order_id":"avw-1",
            "created_at":"2026-11-30T15:00:00.123456Z","updated_at":"2026-11-30T15:01:00Z",
            "submitted_at":"2026-11-30T15:00:00.2Z","filled_at":null,"asset_id":"x",
            "symbol":"AXTA","asset_class":"us_equity","notional":null,"qty":"100",
            "filled_qty":"40","filled_avg_price":"33.105","order_class":"","order_type":"limit",
            "type":"limit","side":"buy","time_in_force":"day","limit_price":"33.2",
            "stop_price":null,"status":"{status}","extended_hours":false,"legs":null,
            "replaced_by":null,"replaces":null,"trail_percent":null,"trail_price":null,"hwm":null}}"#
        )
    }

    #[test]
    fn orders_parse_with_string_decimals() {
        let wire: WireOrder = serde_json::from_str(&order_json("partially_filled")).unwrap();
        let order = wire.into_broker().unwrap();
        assert_eq!(order.status, OrderStatus::PartiallyFilled);
        assert_eq!(order.filled_qty, Decimal::from(40));
        assert_eq!(order.filled_avg_price, Some("33.105".parse().unwrap()));
        assert_eq!(order.limit_price, Some("33.2".parse().unwrap()));
        assert_eq!(order.stop_price, None);
        assert_eq!(order.order_type, OrderType::Limit);
    }

    #[test]
    fn every_spec_status_is_known_and_the_non_final_ones_are_open() {
        for status in [
            "done_for_day",
            "held",
            "calculated",
            "stopped",
            "accepted_for_bidding",
        ] {
            let wire: WireOrder = serde_json::from_str(&order_json(status)).unwrap();
            let order = wire.into_broker().unwrap();
            assert!(order.status.is_open(), "{status} may still fill");
            assert_eq!(order.status.as_str(), status);
        }
        for status in ["filled", "canceled", "expired", "replaced", "rejected"] {
            let wire: WireOrder = serde_json::from_str(&order_json(status)).unwrap();
            assert!(!wire.into_broker().unwrap().status.is_open(), "{status}");
        }
    }

    #[test]
    fn unknown_statuses_are_errors_not_open() {
        for status in ["bogus", "Filled", ""] {
            let wire: WireOrder = serde_json::from_str(&order_json(status)).unwrap();
            let err = wire.into_broker().unwrap_err();
            assert!(err.0.contains(status), "{err}");
            assert!(err.0.contains("avw-1"), "{err}");
        }
    }

    #[test]
    fn bodies_carry_decimals_as_strings() {
        let body = NewOrderBody::from_request(&OrderRequest {
            client_order_id: "c1".into(),
            symbol: "AXTA".into(),
            side: Side::Sell,
            qty: Decimal::from(100),
            order_type: OrderType::Stop,
            limit_price: None,
            stop_price: Some("31.55".parse().unwrap()),
            time_in_force: TimeInForce::Gtc,
        });
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"symbol":"AXTA","qty":"100","side":"sell","type":"stop",
                "time_in_force":"gtc","stop_price":"31.55","client_order_id":"c1"})
        );
    }

    fn ours(status: &str) -> Value {
        serde_json::from_str(&order_json(status).replace("avw-1", "avw-20261130-AXTA-en-1"))
            .unwrap()
    }

    #[test]
    fn order_lists_keep_foreign_orders_apart_and_fail_on_our_own_unreadable_order() {
        let mut trailing = ours("new");
        trailing["client_order_id"] = json!("other-7");
        trailing["type"] = json!("trailing_stop");
        let mut no_id = ours("new");
        no_id.as_object_mut().unwrap().remove("client_order_id");
        let mut notional = ours("new");
        notional["client_order_id"] = json!("other-8");
        notional["qty"] = Value::Null;
        let list = json!([ours("new"), trailing, no_id, notional, 5, "text"]);
        let page = parse_order_list(&list.to_string()).unwrap();
        assert_eq!(page.len, 6);
        assert_eq!(page.list.orders.len(), 1);
        assert_eq!(page.list.foreign.len(), 5);
        let problems: Vec<&str> = page
            .list
            .foreign
            .iter()
            .map(|f| f.problem.as_str())
            .collect();
        assert!(problems[0].contains("trailing_stop"), "{problems:?}");
        assert!(problems[1].contains("no client_order_id"), "{problems:?}");
        assert!(problems[2].contains("no qty"), "{problems:?}");
        assert_eq!(page.list.foreign[3].symbol, "?");

        // Our own order that does not read: the list is not used at all.
        let mut bad = ours("new");
        bad["status"] = json!("bogus");
        let err = parse_order_list(&json!([bad]).to_string()).unwrap_err();
        assert!(err.0.contains("our own order"), "{err}");
        assert!(err.0.contains("bogus"), "{err}");
        assert!(parse_order_list("{}").is_err());
        assert!(parse_order_list("<html>").is_err());
    }

    #[test]
    fn positions_that_do_not_read_are_kept_apart_and_a_nameless_one_fails_the_list() {
        let list = json!([
            {"symbol": "AXTA", "qty": "100", "avg_entry_price": "33.1"},
            {"symbol": "BAD", "qty": "a lot", "avg_entry_price": "1"},
            {"symbol": "NOAVG", "qty": "5", "extra": {"x": 1}},
            {"symbol": "NULLQ", "qty": null, "avg_entry_price": "1"},
        ]);
        let parsed = parse_positions(&list.to_string()).unwrap();
        assert_eq!(parsed.positions.len(), 1);
        let unreadable: Vec<&str> = parsed
            .unreadable
            .iter()
            .map(|p| p.symbol.as_str())
            .collect();
        assert_eq!(unreadable, ["BAD", "NOAVG", "NULLQ"]);
        assert!(parsed.unreadable[0].problem.contains("not a decimal"));
        assert!(parsed.unreadable[1].problem.contains("no avg_entry_price"));
        let err = parse_positions(&json!([{"qty": "1"}]).to_string()).unwrap_err();
        assert!(err.0.contains("no symbol"), "{err}");
    }

    #[test]
    fn an_account_without_the_numbers_names_the_missing_field() {
        let err = parse_account(r#"{"id":"x","status":"ACTIVE","buying_power":"1"}"#).unwrap_err();
        assert!(err.0.contains("the account has no equity"), "{err}");
        let err = parse_account(r#"{"id":"x","status":"ACTIVE","equity":"1"}"#).unwrap_err();
        assert!(err.0.contains("no buying_power"), "{err}");
        let details =
            parse_account(r#"{"id":"x","status":"ACTIVE","equity":"1","buying_power":"2"}"#)
                .unwrap();
        assert!(!details.account.trading_suspended && !details.trading_blocked);
    }

    #[test]
    fn the_suspension_is_what_the_configuration_answer_says() {
        assert_eq!(parse_suspend_trade(r#"{"suspend_trade":true}"#), Ok(true));
        assert_eq!(
            parse_suspend_trade(r#"{"suspend_trade":false,"x":1}"#),
            Ok(false)
        );
        let err = parse_suspend_trade(r#"{"dtbp_check":"entry"}"#).unwrap_err();
        assert!(err.0.contains("no suspend_trade"), "{err}");
        assert!(parse_suspend_trade(r#"{"suspend_trade":"yes"}"#).is_err());
    }

    #[test]
    fn text_from_answers_is_cut_and_escaped_in_messages() {
        let mut long = ours("new");
        long["client_order_id"] = json!("x".repeat(10_000));
        long["type"] = json!("weird\u{1b}[31m");
        let page = parse_order_list(&json!([long]).to_string()).unwrap();
        let foreign = &page.list.foreign[0];
        assert!(foreign.problem.len() < 400, "{}", foreign.problem);
        assert!(!foreign.problem.contains('\u{1b}'), "{}", foreign.problem);
        assert!(foreign.client_order_id.as_ref().unwrap().len() <= 48);
    }

    /// Small JSON values of every kind, nested a little.
    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z0-9_.:/-]{0,12}".prop_map(Value::String),
            prop_oneof![
                Just("avw-20261130-AXTA-en-1"),
                Just("100"),
                Just("new"),
                Just("stop"),
                Just("gtc"),
                Just("2026-11-30T15:00:00Z"),
                Just("1e400"),
            ]
            .prop_map(|s| Value::String(s.to_string())),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("id".to_string()),
                        Just("client_order_id".to_string()),
                        Just("symbol".to_string()),
                        Just("qty".to_string()),
                        Just("filled_qty".to_string()),
                        Just("status".to_string()),
                        Just("type".to_string()),
                        Just("side".to_string()),
                        Just("time_in_force".to_string()),
                        Just("created_at".to_string()),
                        Just("equity".to_string()),
                        Just("buying_power".to_string()),
                        Just("avg_entry_price".to_string()),
                        Just("suspend_trade".to_string()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..8,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever the body, every parser answers with a value or a short error, never a panic.
        #[test]
        fn every_parser_survives_any_json(value in json_value()) {
            let body = value.to_string();
            let listed = json!([value.clone()]).to_string();
            let errors = [
                parse_order(&body).err(),
                parse_order_list(&body).err(),
                parse_order_list(&listed).err(),
                parse_positions(&listed).err(),
                parse_account(&body).err(),
                parse_clock(&body).err(),
                parse_suspend_trade(&body).err(),
            ];
            for e in errors.into_iter().flatten() {
                proptest::prop_assert!(e.0.len() < 2_000, "{}", e.0);
            }
        }
    }
}
