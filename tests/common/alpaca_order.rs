//! The one shape of an Alpaca order in the tests (schema `Order` of `trading-api.json`): what the
//! fake Alpaca server stores and lists, and what the crash suite's Alpaca front answers for the
//! simulated broker's orders.

use rust_decimal::Decimal;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct FakeOrder {
    pub id: String,
    pub client_order_id: String,
    pub symbol: String,
    pub side: String,
    pub order_type: String,
    pub time_in_force: String,
    pub qty: Decimal,
    pub filled_qty: Decimal,
    pub filled_avg_price: Option<Decimal>,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub replaced_by: Option<String>,
    pub replaces: Option<String>,
}

impl FakeOrder {
    /// The order as `GET /v2/orders` answers it (schema `Order`).
    pub fn json(&self) -> Value {
        let dec = |d: &Option<Decimal>| d.map(|d| d.to_string());
        json!({
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "submitted_at": self.created_at,
            "filled_at": null,
            "expired_at": null,
            "canceled_at": null,
            "failed_at": null,
            "replaced_at": null,
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
            "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": null,
            "qty": self.qty.to_string(),
            "filled_qty": self.filled_qty.to_string(),
            "filled_avg_price": dec(&self.filled_avg_price),
            "order_class": "",
            "order_type": self.order_type,
            "type": self.order_type,
            "side": self.side,
            "position_intent": if self.side == "buy" { "buy_to_open" } else { "sell_to_close" },
            "time_in_force": self.time_in_force,
            "limit_price": dec(&self.limit_price),
            "stop_price": dec(&self.stop_price),
            "status": self.status,
            "extended_hours": false,
            "legs": null,
            "trail_percent": null,
            "trail_price": null,
            "hwm": null,
        })
    }
}
