//! The simulated broker's pure rules: the price tick, request validation with Alpaca's
//! error codes, and the fill price of an order against one bar. No state, no I/O.

use rust_decimal::prelude::FromPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::broker::{BrokerError, OrderType, Side};
use crate::market_data::intraday::IntradayBar;

/// Alpaca's code for a malformed request (e.g. a reused `client_order_id`).
pub const CODE_INVALID_REQUEST: &str = "40010001";
/// Alpaca's code for a forbidden order (insufficient qty / buying power, trading suspended).
pub const CODE_FORBIDDEN: &str = "40310000";
/// Alpaca's code for an unprocessable order (sub-penny price, order not open).
pub const CODE_UNPROCESSABLE: &str = "42210000";

pub(super) fn rejected(code: &str, message: impl Into<String>) -> BrokerError {
    BrokerError::Rejected {
        code: Some(code.to_string()),
        message: message.into(),
    }
}

/// Decimal places of the tick at `price`: 2 ($0.01) at or above $1, 4 ($0.0001) below.
fn tick_dp(price: Decimal) -> u32 {
    if price >= Decimal::ONE {
        2
    } else {
        4
    }
}

/// `price` rounded to its tick, half to even.
pub(super) fn round_to_tick(price: Decimal) -> Decimal {
    price.round_dp_with_strategy(tick_dp(price), RoundingStrategy::MidpointNearestEven)
}

/// A bar price as a Decimal on the tick; `None` for a non-finite price.
pub(super) fn bar_price(price: f64) -> Option<Decimal> {
    Decimal::from_f64(price).map(round_to_tick)
}

/// The price a fill is executed at once `slippage_bps` is applied to the bar's `market` price:
/// a buy pays that many basis points more (rounded up to the tick), a sell receives that many
/// less (rounded down), never below one tick. A limit order never fills beyond its limit
/// (a real broker's promise), so its slippage is capped there.
pub(super) fn slipped_price(
    market: Decimal,
    side: Side,
    slippage_bps: Decimal,
    limit: Option<Decimal>,
) -> Decimal {
    if slippage_bps.is_zero() {
        return market;
    }
    let factor = slippage_bps / Decimal::from(10_000);
    let dp = tick_dp(market);
    match side {
        Side::Buy => {
            let price = (market * (Decimal::ONE + factor))
                .round_dp_with_strategy(dp, RoundingStrategy::ToPositiveInfinity);
            limit.map_or(price, |l| price.min(l.max(market)))
        }
        Side::Sell => {
            let tick = Decimal::new(1, dp);
            let price = (market * (Decimal::ONE - factor))
                .round_dp_with_strategy(dp, RoundingStrategy::ToNegativeInfinity)
                .max(tick.min(market));
            limit.map_or(price, |l| price.max(l.min(market)))
        }
    }
}

/// The volume-weighted average `notional / qty`, to 6 decimal places (half to even).
pub(super) fn average(notional: Decimal, qty: Decimal) -> Decimal {
    (notional / qty)
        .round_dp_with_strategy(6, RoundingStrategy::MidpointNearestEven)
        .normalize()
}

/// A quantity for messages: "150", not "150.00".
pub(super) fn show_qty(qty: Decimal) -> String {
    qty.normalize().to_string()
}

/// Positive and on the tick (no sub-penny increments at or above $1).
pub(super) fn check_price(field: &str, price: Decimal) -> Result<(), BrokerError> {
    if price <= Decimal::ZERO {
        return Err(rejected(
            CODE_UNPROCESSABLE,
            format!("{field} must be > 0 (got {price})"),
        ));
    }
    if price.normalize().scale() > tick_dp(price) {
        return Err(rejected(
            CODE_UNPROCESSABLE,
            format!(
                "invalid {field} {price}. sub-penny increment does not fulfill minimum pricing criteria"
            ),
        ));
    }
    Ok(())
}

/// Positive whole shares (avwap never sends fractional quantities).
pub(super) fn check_qty(qty: Decimal) -> Result<(), BrokerError> {
    if qty <= Decimal::ZERO {
        return Err(rejected(
            CODE_UNPROCESSABLE,
            format!("qty must be > 0 (got {})", show_qty(qty)),
        ));
    }
    if !qty.fract().is_zero() {
        return Err(rejected(
            CODE_UNPROCESSABLE,
            format!(
                "qty must be a whole number of shares (got {}); the simulator does not take fractional orders",
                show_qty(qty)
            ),
        ));
    }
    Ok(())
}

/// The price fields an order type takes: limit orders a limit price only, stop orders a stop
/// price only, market orders neither.
pub(super) fn check_prices(
    order_type: OrderType,
    limit_price: Option<Decimal>,
    stop_price: Option<Decimal>,
) -> Result<(), BrokerError> {
    let (need_limit, need_stop) = match order_type {
        OrderType::Market => (false, false),
        OrderType::Limit => (true, false),
        OrderType::Stop => (false, true),
    };
    let name = super::store::type_str(order_type);
    for (field, value, needed) in [
        ("limit_price", limit_price, need_limit),
        ("stop_price", stop_price, need_stop),
    ] {
        match (value, needed) {
            (None, true) => {
                return Err(rejected(
                    CODE_UNPROCESSABLE,
                    format!("{field} is required for {name} orders"),
                ))
            }
            (Some(_), false) => {
                return Err(rejected(
                    CODE_UNPROCESSABLE,
                    format!("{field} is not applicable to {name} orders"),
                ))
            }
            (Some(price), true) => check_price(field, price)?,
            (None, false) => {}
        }
    }
    Ok(())
}

/// A bar's prices on the tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct BarPrices {
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
}

impl BarPrices {
    pub fn of(bar: &IntradayBar) -> Option<Self> {
        Some(Self {
            open: bar_price(bar.open)?,
            high: bar_price(bar.high)?,
            low: bar_price(bar.low)?,
        })
    }
}

/// What an order does against one bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BarFill {
    pub price: Decimal,
    /// A stop was triggered by this bar (it now behaves as a market order).
    pub triggers: bool,
}

/// The price at which an order fills against `bar`, or `None` when it does not.
///
/// - market (and a stop already triggered): the bar's open;
/// - limit buy: the open if open ≤ limit, else the limit if low ≤ limit;
/// - limit sell: the open if open ≥ limit, else the limit if high ≥ limit;
/// - sell stop: triggers when low ≤ stop, fills at min(open, stop) (a gap down fills at the
///   open); buy stop: triggers when high ≥ stop, fills at max(open, stop).
pub(super) fn fill_price(
    order_type: OrderType,
    side: Side,
    limit_price: Option<Decimal>,
    stop_price: Option<Decimal>,
    stop_triggered: bool,
    bar: BarPrices,
) -> Option<BarFill> {
    let at = |price| {
        Some(BarFill {
            price,
            triggers: false,
        })
    };
    match (order_type, side) {
        (OrderType::Market, _) => at(bar.open),
        (OrderType::Stop, _) if stop_triggered => at(bar.open),
        (OrderType::Limit, Side::Buy) => {
            let limit = limit_price?;
            if bar.open <= limit {
                at(bar.open)
            } else if bar.low <= limit {
                at(limit)
            } else {
                None
            }
        }
        (OrderType::Limit, Side::Sell) => {
            let limit = limit_price?;
            if bar.open >= limit {
                at(bar.open)
            } else if bar.high >= limit {
                at(limit)
            } else {
                None
            }
        }
        (OrderType::Stop, Side::Sell) => {
            let stop = stop_price?;
            (bar.low <= stop).then(|| BarFill {
                price: bar.open.min(stop),
                triggers: true,
            })
        }
        (OrderType::Stop, Side::Buy) => {
            let stop = stop_price?;
            (bar.high >= stop).then(|| BarFill {
                price: bar.open.max(stop),
                triggers: true,
            })
        }
    }
}

/// Shares filled from `remaining` in one bar: ceil(ratio × remaining), at least 1, at most
/// `remaining`.
pub(super) fn fill_qty(remaining: Decimal, ratio: Decimal) -> Decimal {
    (remaining * ratio).ceil().max(Decimal::ONE).min(remaining)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn bar(o: &str, h: &str, l: &str) -> BarPrices {
        BarPrices {
            open: d(o),
            high: d(h),
            low: d(l),
        }
    }

    #[test]
    fn tick_rounding_is_half_even() {
        assert_eq!(round_to_tick(d("50.125")), d("50.12"));
        assert_eq!(round_to_tick(d("50.135")), d("50.14"));
        assert_eq!(round_to_tick(d("0.51235")), d("0.5124"));
        assert_eq!(round_to_tick(d("0.51245")), d("0.5124"));
        assert_eq!(bar_price(49.99), Some(d("49.99")));
        assert_eq!(bar_price(f64::NAN), None);
    }

    #[test]
    fn price_checks() {
        assert!(check_price("limit_price", d("50.12")).is_ok());
        assert!(check_price("limit_price", d("50.120")).is_ok());
        assert!(check_price("limit_price", d("0.1234")).is_ok());
        let err = check_price("limit_price", d("50.123")).unwrap_err();
        assert_eq!(
            err,
            rejected(
                CODE_UNPROCESSABLE,
                "invalid limit_price 50.123. sub-penny increment does not fulfill minimum pricing criteria"
            )
        );
        assert!(check_price("stop_price", d("0.12345")).is_err());
        assert!(check_price("stop_price", d("0")).is_err());
        assert!(check_price("stop_price", d("-1")).is_err());
    }

    #[test]
    fn qty_checks() {
        assert!(check_qty(d("100")).is_ok());
        assert!(check_qty(d("100.0")).is_ok());
        assert!(check_qty(d("0")).is_err());
        assert!(check_qty(d("-5")).is_err());
        assert!(check_qty(d("10.5")).is_err());
    }

    #[test]
    fn limit_fills() {
        let b = bar("50.20", "50.90", "49.80");
        let f = |side, limit: &str| {
            fill_price(OrderType::Limit, side, Some(d(limit)), None, false, b).map(|f| f.price)
        };
        assert_eq!(f(Side::Buy, "50.50"), Some(d("50.20"))); // open better than the limit
        assert_eq!(f(Side::Buy, "50.00"), Some(d("50.00"))); // traded through
        assert_eq!(f(Side::Buy, "49.79"), None);
        assert_eq!(f(Side::Sell, "50.00"), Some(d("50.20")));
        assert_eq!(f(Side::Sell, "50.60"), Some(d("50.60")));
        assert_eq!(f(Side::Sell, "50.91"), None);
    }

    #[test]
    fn stop_fills() {
        let f =
            |side, stop: &str, b| fill_price(OrderType::Stop, side, None, Some(d(stop)), false, b);
        let normal = bar("48.50", "48.60", "47.80");
        assert_eq!(
            f(Side::Sell, "48.00", normal),
            Some(BarFill {
                price: d("48.00"),
                triggers: true
            })
        );
        let gap = bar("46.90", "47.20", "46.50");
        assert_eq!(f(Side::Sell, "48.00", gap).unwrap().price, d("46.90"));
        assert_eq!(f(Side::Sell, "47.79", normal), None);
        assert_eq!(f(Side::Buy, "48.55", normal).unwrap().price, d("48.55"));
        assert_eq!(f(Side::Buy, "48.00", normal).unwrap().price, d("48.50"));
        assert_eq!(f(Side::Buy, "48.61", normal), None);
        // Once triggered, the remainder fills at the open.
        let triggered = fill_price(
            OrderType::Stop,
            Side::Sell,
            None,
            Some(d("48.00")),
            true,
            normal,
        );
        assert_eq!(triggered.unwrap().price, d("48.50"));
    }

    #[test]
    fn partial_fill_quantities() {
        assert_eq!(fill_qty(d("300"), d("1")), d("300"));
        assert_eq!(fill_qty(d("300"), d("0.5")), d("150"));
        assert_eq!(fill_qty(d("75"), d("0.5")), d("38"));
        assert_eq!(fill_qty(d("1"), d("0.5")), d("1"));
        assert_eq!(fill_qty(d("3"), d("0.01")), d("1"));
    }
}
