//! Alpaca's active, tradable US-equity assets (`GET /v2/assets`) as the universe's last
//! fallback, used by `avwap-scan --provider alpaca` when neither the configured holdings source
//! nor its cached copy is usable.
//!
//! This file owns: the request, the selection of the assets avwap may trade (active, tradable,
//! class `us_equity`, on a listed exchange: [`LISTED_EXCHANGES`]; OTC and anything else
//! excluded), their mapping to [`Member`] (symbol and Alpaca's name; no sector, no weight), and
//! [`AlpacaAssetsFallback`], the [`UniverseFallback`] the loader calls. The loader applies
//! `scan.universe.min_members` and symbol validation to this list like to any other source and
//! reports it in `scan.json` as a degraded source.
//!
//! Spec (`trading-api.json`, operation `get-v2-assets`): query `status` (e.g. `active`),
//! `asset_class` (schema `AssetClass`: `us_equity`, …), `exchange`, `attributes`; the answer is
//! an array of `Assets` with `symbol`, `name`, `class`, `exchange` (schema `Exchange`: AMEX,
//! ARCA, BATS, NYSE, NASDAQ, NYSEARCA, OTC), `status` (`active`/`inactive`), `tradable`. The
//! endpoint is not paginated. The filters are re-checked on the answer rather than trusted.
//! The list is read asset by asset: one that lacks a field we read is excluded and counted (the
//! first is named in the log), instead of making the whole list unreadable.
//!
//! This list is every listed US equity Alpaca trades (several thousand, ETFs and warrants
//! included), not the Russell 3000: the scanner's liquidity and history gates do the narrowing.

use super::client::{AlpacaClient, AlpacaError, Api, Request};
use crate::universe::{Member, UniverseFallback};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The Trading API assets endpoint.
pub const ASSETS_PATH: &str = "/v2/assets";
/// Exchanges whose assets may join the universe (the spec's `Exchange` enum without OTC).
pub const LISTED_EXCHANGES: &[&str] = &["NYSE", "NASDAQ", "NYSEARCA", "ARCA", "AMEX", "BATS"];
/// How the fallback is named in logs and `scan.json`.
pub const FALLBACK_NAME: &str = "alpaca assets (active, tradable us_equity on NYSE, NASDAQ, \
                                 NYSEARCA, ARCA, AMEX, BATS; not the Russell 3000)";

/// One asset as Alpaca sends it (schema `Assets`, the fields we read). Enumerated fields are
/// kept as text so an exchange or class the spec does not list yet excludes the asset instead of
/// failing the whole answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WireAsset {
    pub symbol: String,
    #[serde(default)]
    pub name: Option<String>,
    pub class: String,
    pub exchange: String,
    pub status: String,
    pub tradable: bool,
}

/// The assets kept, and how many of the rest were excluded for which reason.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AssetSelection {
    /// Sorted by symbol, without duplicates.
    pub members: Vec<Member>,
    /// Assets in Alpaca's answer.
    pub listed: usize,
    pub excluded_inactive: usize,
    pub excluded_not_tradable: usize,
    /// By asset class (anything but `us_equity`).
    pub excluded_class: BTreeMap<String, usize>,
    /// By exchange (OTC, and anything not in [`LISTED_EXCHANGES`]).
    pub excluded_exchange: BTreeMap<String, usize>,
    pub duplicates: usize,
    /// Assets without a field we read (or of the wrong type): excluded.
    pub unreadable: usize,
    /// What was wrong with the first of them (position, symbol if any, field).
    pub first_unreadable: Option<String>,
}

impl AssetSelection {
    /// One line for the log: how many were kept and why the rest were not.
    pub fn summary(&self) -> String {
        let by = |map: &BTreeMap<String, usize>| {
            map.iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let unreadable = match &self.first_unreadable {
            Some(first) => format!(", {} unreadable, the first {first}", self.unreadable),
            None => String::new(),
        };
        format!(
            "Alpaca listed {} assets; kept {} (excluded: {} inactive, {} not tradable, class [{}], \
             exchange [{}], {} duplicates{unreadable})",
            self.listed,
            self.members.len(),
            self.excluded_inactive,
            self.excluded_not_tradable,
            by(&self.excluded_class),
            by(&self.excluded_exchange),
            self.duplicates
        )
    }
}

/// Keep the assets avwap may trade. Pure.
pub fn select_tradable_equities(assets: Vec<WireAsset>) -> AssetSelection {
    let mut selection = AssetSelection {
        listed: assets.len(),
        ..AssetSelection::default()
    };
    let mut kept: BTreeMap<String, Member> = BTreeMap::new();
    for asset in assets {
        if !asset.status.eq_ignore_ascii_case("active") {
            selection.excluded_inactive += 1;
        } else if !asset.class.eq_ignore_ascii_case("us_equity") {
            *selection.excluded_class.entry(asset.class).or_default() += 1;
        } else if !LISTED_EXCHANGES
            .iter()
            .any(|e| asset.exchange.eq_ignore_ascii_case(e))
        {
            *selection
                .excluded_exchange
                .entry(asset.exchange)
                .or_default() += 1;
        } else if !asset.tradable {
            selection.excluded_not_tradable += 1;
        } else {
            let symbol = asset.symbol.trim().to_string();
            if kept.contains_key(&symbol) {
                selection.duplicates += 1;
                continue;
            }
            kept.insert(
                symbol.clone(),
                Member {
                    symbol,
                    name: asset.name.unwrap_or_default().trim().to_string(),
                    sector: String::new(),
                    weight: None,
                },
            );
        }
    }
    selection.members = kept.into_values().collect();
    selection
}

/// `GET /v2/assets?status=active&asset_class=us_equity`, filtered by
/// [`select_tradable_equities`].
pub fn fetch_tradable_equities(client: &AlpacaClient) -> Result<AssetSelection, AlpacaError> {
    let request = Request::get(Api::Trading, ASSETS_PATH)
        .query("status", "active")
        .query("asset_class", "us_equity");
    let answer: serde_json::Value = client.json(&request)?;
    let mut selection = selection_of(answer).map_err(|message| AlpacaError::Decode {
        path: ASSETS_PATH.to_string(),
        message: client.network_text(&message, super::client::MAX_BODY_EXCERPT),
    })?;
    // The text quotes the answer (a symbol, serde's words): bounded and redacted.
    selection.first_unreadable = selection
        .first_unreadable
        .map(|first| client.network_text(&first, super::client::MAX_BODY_EXCERPT));
    Ok(selection)
}

/// A `GET /v2/assets` answer body as [`fetch_tradable_equities`] reads it (unredacted), for tests.
pub fn parse_assets_answer(body: &str) -> Result<AssetSelection, String> {
    let answer = serde_json::from_str(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    selection_of(answer)
}

/// The assets of an answer selected by [`select_tradable_equities`], the unreadable ones
/// counted (the first one's problem quoted as the answer has it).
fn selection_of(answer: serde_json::Value) -> Result<AssetSelection, String> {
    let (assets, unreadable) = read_assets(answer)?;
    let mut selection = select_tradable_equities(assets);
    selection.listed += unreadable.len();
    selection.unreadable = unreadable.len();
    selection.first_unreadable = unreadable.into_iter().next();
    Ok(selection)
}

/// The answer's assets, one at a time: those that parse, and for each that does not, what was
/// wrong with it. An answer that is not a list at all is the error.
fn read_assets(answer: serde_json::Value) -> Result<(Vec<WireAsset>, Vec<String>), String> {
    let serde_json::Value::Array(elements) = answer else {
        return Err("the answer is not a list of assets".to_string());
    };
    let mut assets = Vec::with_capacity(elements.len());
    let mut unreadable = Vec::new();
    for (index, element) in elements.iter().enumerate() {
        match WireAsset::deserialize(element) {
            Ok(asset) => assets.push(asset),
            Err(e) => {
                let symbol = element
                    .get("symbol")
                    .and_then(serde_json::Value::as_str)
                    .map_or_else(String::new, |s| {
                        format!(" ({})", super::client::printable_excerpt(s, 16))
                    });
                unreadable.push(format!("asset {index}{symbol}: {e}"));
            }
        }
    }
    Ok((assets, unreadable))
}

/// The universe's last fallback: Alpaca's active, tradable, listed US equities.
pub struct AlpacaAssetsFallback<'a> {
    client: &'a AlpacaClient,
}

impl<'a> AlpacaAssetsFallback<'a> {
    pub fn new(client: &'a AlpacaClient) -> Self {
        Self { client }
    }
}

impl UniverseFallback for AlpacaAssetsFallback<'_> {
    fn name(&self) -> String {
        FALLBACK_NAME.to_string()
    }

    fn symbols(&mut self) -> Result<Vec<String>, String> {
        Ok(self.members()?.into_iter().map(|m| m.symbol).collect())
    }

    fn members(&mut self) -> Result<Vec<Member>, String> {
        let selection = fetch_tradable_equities(self.client).map_err(|e| match e {
            // Where the list comes from matters only when it could not be had at all.
            AlpacaError::NotFound { .. } | AlpacaError::Forbidden { .. } => {
                format!("{e}; the asset list is read from the Trading API (trading_url)")
            }
            _ => e.to_string(),
        })?;
        if selection.unreadable > 0 {
            tracing::warn!(
                unreadable = selection.unreadable,
                "Alpaca's asset list had assets that could not be read; they are not in the universe"
            );
        }
        tracing::info!("universe fallback: {}", selection.summary());
        Ok(selection.members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(symbol: &str, exchange: &str, class: &str, status: &str, tradable: bool) -> String {
        format!(
            r#"{{"id":"b0b6dd9d-8b9b-48a9-ba46-b9d54906e415","class":"{class}","exchange":"{exchange}",
            "symbol":"{symbol}","name":"{symbol} Inc. Common Stock","status":"{status}",
            "tradable":{tradable},"marginable":true,"shortable":true,"easy_to_borrow":true,
            "fractionable":true,"borrow_status":"easy_to_borrow","attributes":[]}}"#
        )
    }

    #[test]
    fn keeps_active_tradable_listed_us_equities() {
        let json = format!(
            "[{}]",
            [
                asset("AAPL", "NASDAQ", "us_equity", "active", true),
                asset("BRK.B", "NYSE", "us_equity", "active", true),
                asset("SPY", "ARCA", "us_equity", "active", true),
                asset("IWM", "NYSEARCA", "us_equity", "active", true),
                asset("CBOE", "BATS", "us_equity", "active", true),
                asset("IMO", "AMEX", "us_equity", "active", true),
                asset("GBTC", "OTC", "us_equity", "active", true),
                asset("BTC/USD", "CRYPTO", "crypto", "active", true),
                asset("OLD", "NYSE", "us_equity", "inactive", true),
                asset("NOPE", "NASDAQ", "us_equity", "active", false),
                asset("NEWX", "IEXG", "us_equity", "active", true),
                asset("AAPL", "NASDAQ", "us_equity", "active", true),
            ]
            .join(",")
        );
        let wire: Vec<WireAsset> = serde_json::from_str(&json).unwrap();
        let s = select_tradable_equities(wire);
        let symbols: Vec<&str> = s.members.iter().map(|m| m.symbol.as_str()).collect();
        assert_eq!(symbols, ["AAPL", "BRK.B", "CBOE", "IMO", "IWM", "SPY"]);
        assert_eq!(s.listed, 12);
        assert_eq!(s.excluded_inactive, 1);
        assert_eq!(s.excluded_not_tradable, 1);
        assert_eq!(s.excluded_class.get("crypto"), Some(&1));
        assert_eq!(s.excluded_exchange.get("OTC"), Some(&1));
        assert_eq!(s.excluded_exchange.get("IEXG"), Some(&1));
        assert_eq!(s.duplicates, 1);
        let aapl = &s.members[0];
        assert_eq!(aapl.name, "AAPL Inc. Common Stock");
        assert_eq!((aapl.sector.as_str(), aapl.weight), ("", None));
        let summary = s.summary();
        assert!(
            summary.contains("kept 6") && summary.contains("OTC 1"),
            "{summary}"
        );
    }

    #[test]
    fn an_unreadable_asset_is_excluded_and_named_not_the_whole_list() {
        let answer: serde_json::Value = serde_json::from_str(&format!(
            r#"[{}, {{"symbol":"BAD","class":"us_equity","status":"active","tradable":true}},
                {{"symbol":"WORSE","class":"us_equity","exchange":"NYSE","status":"active","tradable":"yes"}}]"#,
            asset("AAPL", "NASDAQ", "us_equity", "active", true)
        ))
        .unwrap();
        let (assets, unreadable) = read_assets(answer).unwrap();
        assert_eq!(assets.len(), 1);
        assert_eq!(unreadable.len(), 2);
        assert!(
            unreadable[0].starts_with("asset 1 (BAD): missing field `exchange`"),
            "{unreadable:?}"
        );
        assert!(
            unreadable[1].starts_with("asset 2 (WORSE): invalid type"),
            "{unreadable:?}"
        );
        let err = read_assets(serde_json::json!({"assets": []})).unwrap_err();
        assert!(err.contains("not a list of assets"), "{err}");
    }

    #[test]
    fn a_missing_name_is_empty_not_an_error() {
        let wire: Vec<WireAsset> = serde_json::from_str(
            r#"[{"symbol":"ABC","class":"us_equity","exchange":"NYSE","status":"active","tradable":true}]"#,
        )
        .unwrap();
        let s = select_tradable_equities(wire);
        assert_eq!(s.members.len(), 1);
        assert_eq!(s.members[0].name, "");
    }
}
