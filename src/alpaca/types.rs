//! Wire shapes of the Alpaca Trading API (official OpenAPI spec `trading-api.json`) and their
//! conversion to the broker types. Every decimal travels as a JSON string (`qty`, `filled_qty`,
//! prices, `equity`, `buying_power`); enums are spelled exactly as the spec's enums.

use crate::broker::{
    Account, BrokerOrder, MarketClock, OrderRequest, OrderStatus, OrderType, Position,
    ReplaceRequest, Side, TimeInForce,
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
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

/// Schema `Order` (fields we read; `order_type` is deprecated in favour of `type`).
#[derive(Debug, Clone, Deserialize)]
pub struct WireOrder {
    pub id: String,
    pub client_order_id: String,
    pub symbol: String,
    pub side: String,
    #[serde(rename = "type")]
    pub order_type: Option<String>,
    pub time_in_force: String,
    pub status: String,
    pub qty: Option<String>,
    pub filled_qty: String,
    pub filled_avg_price: Option<String>,
    pub limit_price: Option<String>,
    pub stop_price: Option<String>,
    pub created_at: DateTime<Utc>,
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

/// Schema `Account` (fields we read).
#[derive(Debug, Clone, Deserialize)]
pub struct WireAccount {
    pub account_number: Option<String>,
    pub status: Option<String>,
    pub equity: String,
    pub buying_power: String,
    #[serde(default)]
    pub trade_suspended_by_user: bool,
    #[serde(default)]
    pub trading_blocked: bool,
    #[serde(default)]
    pub account_blocked: bool,
}

/// Schema `Position` (fields we read). `qty` is negative for a short.
#[derive(Debug, Clone, Deserialize)]
pub struct WirePosition {
    pub symbol: String,
    pub qty: String,
    pub avg_entry_price: String,
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
        .map_err(|_| WireError(format!("{field} is not a decimal: {text:?}")))
}

fn opt_decimal(field: &str, text: &Option<String>) -> Result<Option<Decimal>, WireError> {
    text.as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(|t| decimal(field, t))
        .transpose()
}

impl WireOrder {
    pub fn into_broker(self) -> Result<BrokerOrder, WireError> {
        let which = format!(
            "order {} (client order id {}, {})",
            self.id, self.client_order_id, self.symbol
        );
        let status = OrderStatus::parse(&self.status).ok_or_else(|| {
            WireError(format!(
                "{which} has status {:?}, which this system does not handle; it is neither \
                 treated as open nor as closed — inspect the order at Alpaca",
                self.status
            ))
        })?;
        let side = Side::parse(&self.side)
            .ok_or_else(|| WireError(format!("{which} has an unknown side {:?}", self.side)))?;
        let type_text = self.order_type.clone().unwrap_or_default();
        let order_type = OrderType::parse(&type_text).ok_or_else(|| {
            WireError(format!(
                "{which} has order type {type_text:?}; only market, limit and stop are handled"
            ))
        })?;
        let time_in_force = TimeInForce::parse(&self.time_in_force).ok_or_else(|| {
            WireError(format!(
                "{which} has time in force {:?}; only day and gtc are handled",
                self.time_in_force
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
        let filled_qty = decimal("filled_qty", &self.filled_qty)
            .map_err(|e| WireError(format!("{which}: {e}")))?;
        let field = |name: &str, value: &Option<String>| {
            opt_decimal(name, value).map_err(|e| WireError(format!("{which}: {e}")))
        };
        let submitted_at = self.submitted_at.unwrap_or(self.created_at);
        Ok(BrokerOrder {
            filled_avg_price: field("filled_avg_price", &self.filled_avg_price)?,
            limit_price: field("limit_price", &self.limit_price)?,
            stop_price: field("stop_price", &self.stop_price)?,
            id: self.id,
            client_order_id: self.client_order_id,
            symbol: self.symbol,
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
        Ok(AccountDetails {
            account: Account {
                equity: decimal("account equity", &self.equity)?,
                buying_power: decimal("account buying_power", &self.buying_power)?,
                trading_suspended: self.trade_suspended_by_user,
            },
            account_number: self.account_number,
            status: self.status,
            trading_blocked: self.trading_blocked,
            account_blocked: self.account_blocked,
        })
    }
}

impl WirePosition {
    pub fn into_broker(self) -> Result<Position, WireError> {
        Ok(Position {
            qty: decimal(&format!("position {} qty", self.symbol), &self.qty)?,
            avg_entry_price: decimal(
                &format!("position {} avg_entry_price", self.symbol),
                &self.avg_entry_price,
            )?,
            symbol: self.symbol,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
