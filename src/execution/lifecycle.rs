//! The order lifecycle: journal the intent with its deterministic client order id → send →
//! record the acknowledgement → record fills. An order POST is never retried: when the outcome
//! is unknown (timeout, 5xx, crash between send and record) the order is looked up by its
//! client order id, and only an order proven absent is marked `not_placed`, after which the
//! strategy may decide again and send the *next* attempt id.
//!
//! Test-only crash points (`AVWAP_TEST_CRASH_AT`) let the crash-safety suite SIGKILL the real
//! binary at every step of an order's life.

use crate::broker::{
    order_answer_mismatch, Broker, BrokerError, BrokerOrder, ExpectedOrder, OrderRequest,
    ReplaceRequest,
};
use crate::execution::db::{DbError, Event, Intent, IntentState, StateDb};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::time::Duration;

/// Environment variable naming the crash point (test use only; see README).
pub const CRASH_ENV: &str = "AVWAP_TEST_CRASH_AT";

/// Named points where the crash-safety suite kills the process. A point is hit when its name
/// equals the configured one; names are `<step>:<leg>` (e.g. `sent:st`) or a bare step.
#[derive(Debug, Clone, Default)]
pub struct Failpoints {
    crash_at: Option<String>,
}

impl Failpoints {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn from_env() -> Self {
        Self {
            crash_at: std::env::var(CRASH_ENV).ok().filter(|v| !v.is_empty()),
        }
    }

    pub fn new(crash_at: Option<&str>) -> Self {
        Self {
            crash_at: crash_at.map(str::to_string),
        }
    }

    /// Kill the process with SIGKILL if `point` (or `point:leg`) is the configured crash point.
    pub fn hit(&self, point: &str, leg: Option<&str>) {
        let Some(target) = &self.crash_at else { return };
        let full = leg.map(|l| format!("{point}:{l}"));
        if target == point || Some(target) == full.as_ref() {
            eprintln!("{CRASH_ENV}={target}: killing this process now (test crash point)");
            let _ = signal_hook::low_level::raise(signal_hook::consts::SIGKILL);
            // SIGKILL cannot be caught; if raising failed, abort rather than continue.
            std::process::abort();
        }
    }
}

/// The short leg code of a client order id ("en", "st", "tr", "ex", "fl") for crash points.
fn leg_code(leg: &str) -> &str {
    if leg.starts_with("st") {
        "st"
    } else {
        leg
    }
}

/// The event kind of an order answer that was another order (the service alerts on it).
pub const ANSWER_MISMATCH: &str = "order_answer_mismatch";

/// What a broker's answer about `intent`'s order must agree with: everything we sent (`sent`)
/// or, for a lookup, what no later change alters (id, symbol, side).
fn expected(intent: &Intent, sent: bool) -> ExpectedOrder<'_> {
    ExpectedOrder {
        client_order_id: &intent.client_order_id,
        symbol: &intent.symbol,
        side: intent.side,
        qty: sent.then_some(intent.qty),
        order_type: sent.then_some(intent.order_type),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// The broker refused our credentials: nothing more can be done safely.
    #[error(transparent)]
    Auth(BrokerError),
}

/// What became of a placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Acknowledged(BrokerOrder),
    Rejected {
        code: Option<String>,
        message: String,
    },
    /// Sent, but the answer is unknown; it stays journaled and is looked up next cycle.
    Unknown(String),
    /// Not sent: this client order id was journaled before.
    AlreadyJournaled,
}

/// Places and tracks orders for one cycle.
pub struct OrderDesk<'a> {
    pub db: &'a mut StateDb,
    pub broker: &'a mut dyn Broker,
    pub now: DateTime<Utc>,
    pub failpoints: &'a Failpoints,
    /// How long an unanswered order must stay absent at the broker before it counts as never
    /// placed (guards against a lookup racing a slow submission).
    pub unknown_outcome_grace: Duration,
}

impl OrderDesk<'_> {
    pub fn event(
        &self,
        kind: &str,
        symbol: Option<&str>,
        client_order_id: Option<&str>,
        message: impl Into<String>,
    ) -> Result<(), DbError> {
        let message = message.into();
        tracing::info!(kind, symbol, client_order_id, "{message}");
        self.db.event(&Event {
            at: self.now,
            session: crate::calendar::session_for_instant(self.now)
                .ok()
                .flatten(),
            kind: kind.to_string(),
            symbol: symbol.map(str::to_string),
            client_order_id: client_order_id.map(str::to_string),
            message,
            details: None,
        })
    }

    /// Record a disagreement or notice once per session and symbol (it is logged every time).
    pub fn event_once(
        &self,
        kind: &str,
        symbol: &str,
        message: impl Into<String>,
    ) -> Result<(), DbError> {
        let message = message.into();
        let session = crate::calendar::ny_date(self.now);
        if self.db.has_event(session, kind, symbol)? {
            tracing::warn!(kind, symbol, "{message}");
            return Ok(());
        }
        tracing::warn!(kind, symbol, "{message}");
        self.db.event(&Event {
            at: self.now,
            session: Some(session),
            kind: kind.to_string(),
            symbol: Some(symbol.to_string()),
            client_order_id: None,
            message,
            details: None,
        })
    }

    /// Journal, send and record one order. The journal entry is committed before the request
    /// leaves, so a crash at any instant leaves a record that reconciliation resolves.
    pub fn place(&mut self, intent: Intent) -> Result<Placement, LifecycleError> {
        let leg = leg_code(&intent.leg).to_string();
        match self.db.journal_intent(&intent) {
            Ok(()) => {}
            Err(DbError::DuplicateClientOrderId(_)) => return Ok(Placement::AlreadyJournaled),
            Err(e) => return Err(e.into()),
        }
        self.failpoints.hit("journaled", Some(&leg));
        let cid = intent.client_order_id.clone();
        let result = match &intent.replaces_order_id {
            Some(old_id) => self.broker.replace(
                old_id,
                &ReplaceRequest {
                    client_order_id: cid.clone(),
                    qty: Some(intent.qty),
                    limit_price: intent.limit_price,
                    stop_price: intent.stop_price,
                },
            ),
            None => self.broker.submit(&OrderRequest {
                client_order_id: cid.clone(),
                symbol: intent.symbol.clone(),
                side: intent.side,
                qty: intent.qty,
                order_type: intent.order_type,
                limit_price: intent.limit_price,
                stop_price: intent.stop_price,
                time_in_force: intent.time_in_force,
            }),
        };
        self.failpoints.hit("sent", Some(&leg));
        let mismatch = result
            .as_ref()
            .ok()
            .and_then(|order| order_answer_mismatch(order, &expected(&intent, true)));
        match result {
            Ok(_) if mismatch.is_some() => {
                // Another order than the one sent is not an acknowledgement of ours: booking it
                // would record a position we do not hold and protect it with a stop. The intent
                // stays unresolved and is looked up by its client order id, like an unanswered
                // one; the operator is alerted.
                let difference = mismatch.unwrap_or_default();
                let message = format!(
                    "the broker answered this order with a different one ({difference}); not booked — the order is looked up by its client order id before anything is resent"
                );
                tracing::error!(symbol = %intent.symbol, client_order_id = %cid, "{message}");
                self.event(
                    ANSWER_MISMATCH,
                    Some(&intent.symbol),
                    Some(&cid),
                    message.clone(),
                )?;
                Ok(Placement::Unknown(message))
            }
            Ok(order) => {
                self.record(&order, false)?;
                if let Some(old_id) = &intent.replaces_order_id {
                    self.refresh_replaced(old_id)?;
                }
                self.event(
                    "order_acknowledged",
                    Some(&intent.symbol),
                    Some(&cid),
                    format!(
                        "{} {} {} {} acknowledged (broker id {}, status {})",
                        intent.leg,
                        side_word(&order),
                        order.qty,
                        order.symbol,
                        order.id,
                        order.status
                    ),
                )?;
                Ok(Placement::Acknowledged(order))
            }
            Err(BrokerError::Rejected { message, .. }) if is_duplicate_id(&message) => {
                // The id is taken: an order with it exists (a journal lost or rolled back).
                // Look it up and record it; never move on to the next attempt id blindly.
                self.already_exists(&intent, &cid)
            }
            Err(BrokerError::Rejected { code, message }) => {
                self.db
                    .set_intent_state(&cid, IntentState::Rejected, Some(&message), self.now)?;
                tracing::warn!(symbol = %intent.symbol, client_order_id = %cid, code = ?code, "order rejected: {message}");
                self.event(
                    "order_rejected",
                    Some(&intent.symbol),
                    Some(&cid),
                    format!(
                        "rejected by the broker (code {}): {message}",
                        code.as_deref().unwrap_or("-")
                    ),
                )?;
                Ok(Placement::Rejected { code, message })
            }
            Err(BrokerError::NotFound { message })
            | Err(BrokerError::Unsupported(message))
            | Err(BrokerError::NotSent { message }) => {
                // Provably nothing exists at the broker: the strategy may decide again and
                // send the next attempt id.
                self.db
                    .set_intent_state(&cid, IntentState::NotPlaced, Some(&message), self.now)?;
                self.event(
                    "order_not_placed",
                    Some(&intent.symbol),
                    Some(&cid),
                    message.clone(),
                )?;
                Ok(Placement::Rejected {
                    code: None,
                    message,
                })
            }
            Err(e @ BrokerError::Auth { .. }) => {
                self.db.set_intent_state(
                    &cid,
                    IntentState::NotPlaced,
                    Some("broker refused our credentials"),
                    self.now,
                )?;
                Err(LifecycleError::Auth(e))
            }
            Err(e) => {
                // Timeout after send, 5xx, rate limit: the order may or may not exist. It stays
                // journaled and is looked up by client order id; it is never resent blindly.
                tracing::warn!(symbol = %intent.symbol, client_order_id = %cid, "order outcome unknown: {e}");
                self.event(
                    "order_outcome_unknown",
                    Some(&intent.symbol),
                    Some(&cid),
                    e.to_string(),
                )?;
                Ok(Placement::Unknown(e.to_string()))
            }
        }
    }

    /// The broker refused `intent` because its client order id is taken: record the order that
    /// holds it. An open (or filled) one is ours and counts as placed; a finished one holds the
    /// id only, so the intent ends rejected and the strategy's next decision takes a new id.
    fn already_exists(&mut self, intent: &Intent, cid: &str) -> Result<Placement, LifecycleError> {
        let found = self.broker.order_by_client_id(cid);
        match self.checked_lookup(found, &expected(intent, false))? {
            Ok(Some(order)) => {
                self.record(&order, true)?;
                self.event(
                    "order_exists",
                    Some(&intent.symbol),
                    Some(cid),
                    format!(
                        "the broker already has an order with this client order id (status {}); recorded it instead of sending another",
                        order.status
                    ),
                )?;
                if order.status.is_open() || order.filled_qty > Decimal::ZERO {
                    Ok(Placement::Acknowledged(order))
                } else {
                    let message = format!(
                        "client order id already used by an earlier order (status {})",
                        order.status
                    );
                    self.db.set_intent_state(
                        cid,
                        IntentState::Rejected,
                        Some(&message),
                        self.now,
                    )?;
                    Ok(Placement::Rejected {
                        code: None,
                        message,
                    })
                }
            }
            Ok(None) | Err(_) => {
                // Taken but not found (yet): an unknown outcome, looked up again next cycle.
                let message = "the broker says this client order id is taken but did not return the order; it is looked up again before anything is resent".to_string();
                self.event(
                    "order_outcome_unknown",
                    Some(&intent.symbol),
                    Some(cid),
                    message.clone(),
                )?;
                Ok(Placement::Unknown(message))
            }
        }
    }

    /// A lookup's answer, unless it is another order than `expected` (another symbol or
    /// side under our id): that is journaled, alerted and treated as no answer (the order
    /// stays unresolved), never booked and never read as "not found".
    fn checked_lookup(
        &self,
        found: Result<Option<BrokerOrder>, BrokerError>,
        expected: &ExpectedOrder<'_>,
    ) -> Result<Result<Option<BrokerOrder>, BrokerError>, LifecycleError> {
        let Ok(Some(order)) = &found else {
            return Ok(found);
        };
        let Some(difference) = order_answer_mismatch(order, expected) else {
            return Ok(found);
        };
        let message = format!(
            "the broker answered the lookup of {} with a different order ({difference}); not booked, the order stays unresolved",
            expected.client_order_id
        );
        tracing::error!(symbol = %expected.symbol, client_order_id = %expected.client_order_id, "{message}");
        self.event(
            ANSWER_MISMATCH,
            Some(expected.symbol),
            Some(expected.client_order_id),
            message.clone(),
        )?;
        Ok(Err(BrokerError::Malformed {
            operation: format!("the lookup of {}", expected.client_order_id),
            message,
        }))
    }

    /// Record a broker snapshot of one of our orders (fills and positions follow).
    pub fn record(&mut self, order: &BrokerOrder, adopted: bool) -> Result<(), LifecycleError> {
        // A trim order that exists at the broker — however we learned of it (acknowledgement,
        // lookup after a timeout, adoption) — means the position has had its trim.
        let is_trim = crate::execution::ids::ClientOrderId::parse(&order.client_order_id)
            .is_some_and(|id| id.leg == crate::execution::ids::Leg::Trim);
        if is_trim {
            self.db.mark_trimmed(&order.symbol, self.now)?;
        }
        if let Some(fill) = self.db.record_order(order, adopted, self.now)? {
            tracing::info!(
                symbol = %fill.symbol,
                client_order_id = %fill.client_order_id,
                qty = %fill.qty,
                price = %fill.price,
                "fill recorded"
            );
            self.event(
                "fill",
                Some(&fill.symbol),
                Some(&fill.client_order_id),
                format!(
                    "{} {} {} @ {} (cumulative {})",
                    side_word(order),
                    fill.qty,
                    fill.symbol,
                    fill.price,
                    fill.cumulative_qty
                ),
            )?;
        }
        Ok(())
    }

    /// After a replace, bring the replaced order's final state into the database.
    fn refresh_replaced(&mut self, old_broker_id: &str) -> Result<(), LifecycleError> {
        let old = self
            .db
            .all_orders()?
            .into_iter()
            .find(|o| o.order.id == old_broker_id);
        if let Some(old) = old {
            match self.broker.order_by_client_id(&old.order.client_order_id) {
                Ok(Some(order)) => self.record(&order, old.adopted)?,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(client_order_id = %old.order.client_order_id, "cannot refresh a replaced order: {e}")
                }
            }
        }
        Ok(())
    }

    /// Resolve every journaled intent whose outcome is unknown by looking it up at the broker.
    /// Returns the symbols that still have an unresolved order (nothing else may be sent for
    /// them this cycle).
    pub fn resolve_unresolved(&mut self) -> Result<Vec<String>, LifecycleError> {
        let mut blocked = Vec::new();
        let mut lookups_failing = false;
        for intent in self.db.unresolved_intents()? {
            let cid = intent.client_order_id.clone();
            if lookups_failing {
                // The broker did not answer the last lookup: no request per order in an outage.
                blocked.push(intent.symbol.clone());
                continue;
            }
            let found = self.broker.order_by_client_id(&cid);
            match self.checked_lookup(found, &expected(&intent, false))? {
                Ok(Some(order)) => {
                    self.record(&order, false)?;
                    if let Some(old_id) = &intent.replaces_order_id {
                        self.refresh_replaced(old_id)?;
                    }
                    self.event(
                        "order_resolved",
                        Some(&intent.symbol),
                        Some(&cid),
                        format!(
                            "found at the broker after an unknown outcome (status {})",
                            order.status
                        ),
                    )?;
                }
                Ok(None) => {
                    let waited = (self.now - intent.updated_at).to_std().unwrap_or_default();
                    if waited >= self.unknown_outcome_grace {
                        self.db.set_intent_state(
                            &cid,
                            IntentState::NotPlaced,
                            Some("the broker has no order with this client order id"),
                            self.now,
                        )?;
                        self.event(
                            "order_not_placed",
                            Some(&intent.symbol),
                            Some(&cid),
                            "the broker has no order with this client order id; it was never placed",
                        )?;
                    } else {
                        blocked.push(intent.symbol.clone());
                    }
                }
                Err(e @ BrokerError::Auth { .. }) => return Err(LifecycleError::Auth(e)),
                Err(e) => {
                    tracing::warn!(symbol = %intent.symbol, client_order_id = %cid, "cannot resolve an order yet: {e}");
                    blocked.push(intent.symbol.clone());
                    lookups_failing = true;
                }
            }
        }
        blocked.sort();
        blocked.dedup();
        Ok(blocked)
    }

    /// Bring every order the database believes open up to date: from the broker's open-order
    /// list when it is there, else by looking it up (it filled, expired or was cancelled).
    /// Without the list, lookups stop at the first one that fails: a broker that cannot
    /// answer one lookup will not answer the next, and an outage must not multiply into a
    /// request per order. Returns how many orders could not be refreshed.
    pub fn refresh_open_orders(
        &mut self,
        broker_open: Option<&[BrokerOrder]>,
    ) -> Result<usize, LifecycleError> {
        let rows = self.db.open_orders()?;
        let mut unrefreshed = 0;
        let mut lookups_failing = false;
        for row in rows {
            let cid = row.order.client_order_id.clone();
            if let Some(current) = broker_open
                .unwrap_or(&[])
                .iter()
                .find(|o| o.client_order_id == cid)
            {
                self.record(current, row.adopted)?;
                continue;
            }
            if lookups_failing {
                unrefreshed += 1;
                continue;
            }
            let found = self.broker.order_by_client_id(&cid);
            let recorded = ExpectedOrder {
                client_order_id: &cid,
                symbol: &row.order.symbol,
                side: row.order.side,
                qty: None,
                order_type: None,
            };
            match self.checked_lookup(found, &recorded)? {
                Ok(Some(order)) => self.record(&order, row.adopted)?,
                Ok(None) => {
                    tracing::warn!(client_order_id = %cid, "an order we recorded is unknown to the broker")
                }
                Err(e @ BrokerError::Auth { .. }) => return Err(LifecycleError::Auth(e)),
                Err(e) => {
                    tracing::warn!(client_order_id = %cid, "cannot refresh an order: {e}");
                    unrefreshed += 1;
                    lookups_failing = broker_open.is_none();
                }
            }
        }
        Ok(unrefreshed)
    }

    /// Cancel one of our orders and record its final state.
    pub fn cancel(&mut self, order: &BrokerOrder, why: &str) -> Result<bool, LifecycleError> {
        match self.broker.cancel(&order.id) {
            Ok(()) => {
                if let Ok(Some(updated)) = self.broker.order_by_client_id(&order.client_order_id) {
                    self.record(&updated, false)?;
                }
                self.event(
                    "order_cancelled",
                    Some(&order.symbol),
                    Some(&order.client_order_id),
                    why.to_string(),
                )?;
                Ok(true)
            }
            Err(e @ BrokerError::Auth { .. }) => Err(LifecycleError::Auth(e)),
            Err(e) => {
                self.event(
                    "cancel_failed",
                    Some(&order.symbol),
                    Some(&order.client_order_id),
                    format!("{why}: {e}"),
                )?;
                Ok(false)
            }
        }
    }
}

/// Alpaca's (and the simulator's) refusal of a client order id that is already taken.
fn is_duplicate_id(message: &str) -> bool {
    message
        .to_ascii_lowercase()
        .contains("client_order_id must be unique")
}

fn side_word(order: &BrokerOrder) -> &'static str {
    match order.side {
        crate::broker::Side::Buy => "buy",
        crate::broker::Side::Sell => "sell",
    }
}

#[cfg(test)]
mod tests;
