//! The one request contract of the Alpaca tests: what the official specs allow for every request
//! our production code sends, copied from `trading-api.json` (Trading API v2) and
//! `market-data-api.json` (Market Data API v2), so `cargo test` needs no files outside this repo.
//!
//! Entry points:
//! - [`check_request`]: find the operation by method and path (and, where several share a path,
//!   by their selecting query value: the bars `timeframe`) and check query names, kinds, enums
//!   and required parameters, and body fields, kinds and required fields.
//! - [`assert_all_conform`]: panic listing every violation among recorded requests.
//! - [`check_against_spec`] and [`disagreements_with_spec`]: the same request against the spec
//!   JSON itself, and `CONTRACT` against the spec JSON (used by the `#[ignore]`d spec walkers of
//!   `tests/alpaca/client.rs` and `tests/alpaca/market_data.rs`; [`load_spec`] finds the files).
//!
//! Where the specs allow more than we ever send, the contract is stricter on purpose: bars
//! always carry explicit `start`/`end` in RFC 3339 UTC, `timeframe` is one we use (`1Day` or
//! `10Min`), `limit` stays in 1..=10000, and `adjustment` is one spec value, not a list.

use super::Recorded;
use chrono::DateTime;
use rust_decimal::Decimal;
use serde_json::Value;

/// Which official spec an operation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `trading-api.json`.
    Trading,
    /// `market-data-api.json`.
    MarketData,
}

impl Api {
    /// The spec file under `shared/reference/alpaca/`.
    pub fn spec_file(self) -> &'static str {
        match self {
            Api::Trading => "trading-api.json",
            Api::MarketData => "market-data-api.json",
        }
    }

    /// The environment variable that may point at the spec file instead.
    pub fn spec_env(self) -> &'static str {
        match self {
            Api::Trading => "AVWAP_ALPACA_TRADING_SPEC",
            Api::MarketData => "AVWAP_ALPACA_MARKET_DATA_SPEC",
        }
    }
}

/// A value kind as the spec declares it (narrowed to what we send).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    /// `type: string` carrying a decimal (Alpaca sends every number of money/qty as a string).
    DecimalStr,
    Int,
    /// `type: integer` with `minimum`/`maximum` (inclusive).
    IntRange(i64, i64),
    Bool,
    Enum(&'static [&'static str]),
    /// `type: string, format: date-time`, which we always send as RFC 3339 in UTC (`…Z`).
    UtcDateTime,
    /// `type: string`, a comma-separated list of non-empty items (symbols).
    CommaList,
}

/// One operation of the contract.
#[derive(Debug, Clone, Copy)]
pub struct Op {
    /// What we call it (reports, coverage).
    pub name: &'static str,
    pub api: Api,
    pub method: &'static str,
    /// `{order_id}` matches one non-empty path segment.
    pub path: &'static str,
    /// Where several operations share a method and path, the query parameter and value that
    /// select this one (the bars `timeframe`).
    pub variant: Option<(&'static str, &'static str)>,
    pub query: &'static [(&'static str, Kind)],
    /// Query parameters that must be present: the spec's required ones and those we always send.
    pub required_query: &'static [&'static str],
    pub body: &'static [(&'static str, Kind)],
    pub required_body: &'static [&'static str],
}

const ORDER_TYPE: Kind = Kind::Enum(&["market", "limit", "stop", "stop_limit", "trailing_stop"]);
const TIF: Kind = Kind::Enum(&["day", "gtc", "opg", "cls", "ioc", "fok"]);

const NO_QUERY: &[(&str, Kind)] = &[];
const NO_BODY: &[(&str, Kind)] = &[];

/// `/v2/stocks/bars` parameters (components `stock_symbols`, `stock_timeframe`, `start`, `end`,
/// `limit`, `stock_adjustment`, `stock_asof`, `stock_historical_feed`, `stock_currency`,
/// `page_token`, `sort`), in the spec's order; the timeframe is the variant's.
macro_rules! bars_query {
    ($timeframe:expr) => {
        &[
            ("symbols", Kind::CommaList),
            ("timeframe", Kind::Enum(&[$timeframe])),
            ("start", Kind::UtcDateTime),
            ("end", Kind::UtcDateTime),
            ("limit", Kind::IntRange(1, 10_000)),
            // Free text in the spec (`type: string`); its description lists these values.
            (
                "adjustment",
                Kind::Enum(&["raw", "split", "dividend", "spin-off", "all"]),
            ),
            ("asof", Kind::Str),
            ("feed", Kind::Enum(&["iex", "otc", "sip", "boats"])),
            ("currency", Kind::Str),
            ("page_token", Kind::Str),
            ("sort", Kind::Enum(&["asc", "desc"])),
        ]
    };
}

/// Required by the spec (`symbols`, `timeframe`) or always sent by us (explicit bounds).
const BARS_REQUIRED: &[&str] = &["symbols", "timeframe", "start", "end"];

/// Every operation we send, with the facts copied from the official specs. Checked against the
/// spec JSON by the `#[ignore]`d walkers.
pub const CONTRACT: &[Op] = &[
    // ----- Trading API (`trading-api.json`) -----
    Op {
        name: "clock",
        api: Api::Trading,
        method: "GET",
        path: "/v2/clock",
        variant: None,
        query: NO_QUERY,
        required_query: &[],
        body: NO_BODY,
        required_body: &[],
    },
    Op {
        name: "account",
        api: Api::Trading,
        method: "GET",
        path: "/v2/account",
        variant: None,
        query: NO_QUERY,
        required_query: &[],
        body: NO_BODY,
        required_body: &[],
    },
    Op {
        name: "positions",
        api: Api::Trading,
        method: "GET",
        path: "/v2/positions",
        variant: None,
        query: NO_QUERY,
        required_query: &[],
        body: NO_BODY,
        required_body: &[],
    },
    Op {
        name: "list orders",
        api: Api::Trading,
        method: "GET",
        path: "/v2/orders",
        variant: None,
        query: &[
            ("status", Kind::Enum(&["open", "closed", "all"])),
            ("limit", Kind::Int),
            ("after", Kind::Str),
            ("until", Kind::Str),
            ("direction", Kind::Enum(&["asc", "desc"])),
            ("nested", Kind::Bool),
            ("symbols", Kind::Str),
            ("side", Kind::Str),
            ("before_order_id", Kind::Str),
            ("after_order_id", Kind::Str),
        ],
        required_query: &[],
        body: NO_BODY,
        required_body: &[],
    },
    Op {
        name: "submit order",
        api: Api::Trading,
        method: "POST",
        path: "/v2/orders",
        variant: None,
        query: NO_QUERY,
        required_query: &[],
        body: &[
            ("symbol", Kind::Str),
            ("qty", Kind::DecimalStr),
            ("side", Kind::Enum(&["buy", "sell"])),
            ("type", ORDER_TYPE),
            ("time_in_force", TIF),
            ("limit_price", Kind::DecimalStr),
            ("stop_price", Kind::DecimalStr),
            ("client_order_id", Kind::Str),
        ],
        // The spec requires only type and time_in_force; we also demand what our guarantees
        // rest on: a client order id on every order (no duplicates after a restart), and an
        // explicit symbol, side and whole-share qty (never notional).
        required_body: &[
            "type",
            "time_in_force",
            "client_order_id",
            "symbol",
            "side",
            "qty",
        ],
    },
    Op {
        name: "order by client order id",
        api: Api::Trading,
        method: "GET",
        path: "/v2/orders:by_client_order_id",
        variant: None,
        query: &[("client_order_id", Kind::Str)],
        required_query: &["client_order_id"],
        body: NO_BODY,
        required_body: &[],
    },
    Op {
        name: "replace order",
        api: Api::Trading,
        method: "PATCH",
        path: "/v2/orders/{order_id}",
        variant: None,
        query: NO_QUERY,
        required_query: &[],
        body: &[
            ("qty", Kind::DecimalStr),
            ("limit_price", Kind::DecimalStr),
            ("stop_price", Kind::DecimalStr),
            ("time_in_force", TIF),
            ("client_order_id", Kind::Str),
        ],
        required_body: &[],
    },
    Op {
        name: "cancel order",
        api: Api::Trading,
        method: "DELETE",
        path: "/v2/orders/{order_id}",
        variant: None,
        query: NO_QUERY,
        required_query: &[],
        body: NO_BODY,
        required_body: &[],
    },
    Op {
        name: "account configurations",
        api: Api::Trading,
        method: "PATCH",
        path: "/v2/account/configurations",
        variant: None,
        query: NO_QUERY,
        required_query: &[],
        body: &[("suspend_trade", Kind::Bool)],
        required_body: &[],
    },
    Op {
        name: "calendar",
        api: Api::Trading,
        method: "GET",
        path: "/v2/calendar",
        variant: None,
        // `start`/`end`: `type: string, format: date-time` (Go `legacyTime`, which also takes
        // the `YYYY-MM-DD` dates we send).
        query: &[
            ("start", Kind::Str),
            ("end", Kind::Str),
            ("date_type", Kind::Enum(&["TRADING", "SETTLEMENT"])),
        ],
        required_query: &[],
        body: NO_BODY,
        required_body: &[],
    },
    Op {
        name: "assets",
        api: Api::Trading,
        method: "GET",
        path: "/v2/assets",
        variant: None,
        // `status`, `asset_class`, `exchange`: `type: string` (no enum in the parameter);
        // `attributes`: an array, sent comma-separated.
        query: &[
            ("status", Kind::Str),
            ("asset_class", Kind::Str),
            ("exchange", Kind::Str),
            ("attributes", Kind::Str),
        ],
        required_query: &[],
        body: NO_BODY,
        required_body: &[],
    },
    // ----- Market Data API (`market-data-api.json`) -----
    Op {
        name: "daily bars",
        api: Api::MarketData,
        method: "GET",
        path: "/v2/stocks/bars",
        variant: Some(("timeframe", "1Day")),
        query: bars_query!("1Day"),
        required_query: BARS_REQUIRED,
        body: NO_BODY,
        required_body: &[],
    },
    Op {
        name: "10-minute bars",
        api: Api::MarketData,
        method: "GET",
        path: "/v2/stocks/bars",
        variant: Some(("timeframe", "10Min")),
        query: bars_query!("10Min"),
        required_query: BARS_REQUIRED,
        body: NO_BODY,
        required_body: &[],
    },
    Op {
        name: "latest trades",
        api: Api::MarketData,
        method: "GET",
        path: "/v2/stocks/trades/latest",
        variant: None,
        // Components `stock_symbols`, `stock_latest_feed`, `stock_currency`.
        query: &[
            ("symbols", Kind::CommaList),
            (
                "feed",
                Kind::Enum(&["delayed_sip", "iex", "otc", "sip", "boats", "overnight"]),
            ),
            ("currency", Kind::Str),
        ],
        required_query: &["symbols"],
        body: NO_BODY,
        required_body: &[],
    },
];

/// The operations of one API.
pub fn ops(api: Api) -> impl Iterator<Item = &'static Op> {
    CONTRACT.iter().filter(move |op| op.api == api)
}

/// The operation called `name`.
pub fn op(name: &str) -> &'static Op {
    CONTRACT
        .iter()
        .find(|op| op.name == name)
        .unwrap_or_else(|| panic!("no operation {name:?} in the contract"))
}

/// Whether `path` fits the template (`{x}` matches one non-empty segment).
pub fn path_matches(template: &str, path: &str) -> bool {
    let (a, b): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}

fn query_value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The operation of a request: by method and path, then by variant.
pub fn find_op(
    method: &str,
    path: &str,
    query: &[(String, String)],
) -> Result<&'static Op, String> {
    let candidates: Vec<&'static Op> = CONTRACT
        .iter()
        .filter(|op| op.method == method && path_matches(op.path, path))
        .collect();
    match candidates[..] {
        [] => Err(format!("{method} {path} is not in the contract")),
        [only] if only.variant.is_none() => Ok(only),
        _ => candidates
            .iter()
            .copied()
            .find(|op| {
                op.variant
                    .is_some_and(|(k, v)| query_value(query, k) == Some(v))
            })
            .ok_or_else(|| {
                let choices: Vec<String> = candidates
                    .iter()
                    .filter_map(|op| op.variant.map(|(k, v)| format!("{k}={v} ({})", op.name)))
                    .collect();
                let name = candidates[0].variant.map_or("?", |(k, _)| k);
                let got = query_value(query, name).map_or("missing".to_string(), |v| v.into());
                format!("{method} {path}: {name} {got:?} selects none of {choices:?}")
            }),
    }
}

/// A query value (text) against its kind.
pub fn check_text(kind: Kind, value: &str) -> Result<(), String> {
    match kind {
        Kind::Str => Ok(()),
        Kind::DecimalStr => value
            .parse::<Decimal>()
            .map(|_| ())
            .map_err(|_| format!("{value:?} is not a decimal")),
        Kind::Int => value
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| format!("{value:?} is not an integer")),
        Kind::IntRange(lo, hi) => match value.parse::<i64>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(()),
            Ok(_) => Err(format!("{value} outside {lo}..={hi}")),
            Err(_) => Err(format!("{value:?} is not an integer")),
        },
        Kind::Bool => match value {
            "true" | "false" => Ok(()),
            _ => Err(format!("{value:?} is not a boolean")),
        },
        Kind::Enum(values) => {
            if values.contains(&value) {
                Ok(())
            } else {
                Err(format!("{value:?} is not one of {values:?}"))
            }
        }
        Kind::UtcDateTime => {
            if value.ends_with('Z') && DateTime::parse_from_rfc3339(value).is_ok() {
                Ok(())
            } else {
                Err(format!("{value:?} is not RFC 3339 UTC"))
            }
        }
        Kind::CommaList => {
            if value.is_empty() || value.split(',').any(str::is_empty) {
                Err(format!("{value:?} has an empty item"))
            } else {
                Ok(())
            }
        }
    }
}

/// A JSON body value against its kind.
pub fn check_json(kind: Kind, value: &Value) -> Result<(), String> {
    match (kind, value) {
        (Kind::Bool, Value::Bool(_)) => Ok(()),
        (Kind::Bool, other) => Err(format!("{other} is not a JSON boolean")),
        (Kind::Int, Value::Number(n)) if n.is_i64() => Ok(()),
        (Kind::IntRange(lo, hi), Value::Number(n)) if n.is_i64() => {
            check_text(kind, &n.to_string()).map_err(|_| format!("{n} outside {lo}..={hi}"))
        }
        (_, Value::String(s)) if !matches!(kind, Kind::Int | Kind::IntRange(..) | Kind::Bool) => {
            check_text(kind, s)
        }
        (_, other) => Err(format!("{other} has the wrong JSON type for {kind:?}")),
    }
}

/// Check one recorded request against the contract; every violation found, `; `-separated.
pub fn check_request(r: &Recorded) -> Result<(), String> {
    let op = find_op(&r.method, &r.path, &r.query)?;
    let at = format!("{} {} ({})", r.method, r.path, op.name);
    let mut errors = Vec::new();
    for (name, value) in &r.query {
        match op.query.iter().find(|(n, _)| n == name) {
            None => errors.push(format!("{at}: unknown query parameter {name}")),
            Some((_, kind)) => {
                if let Err(e) = check_text(*kind, value) {
                    errors.push(format!("{at} query {name}: {e}"));
                }
            }
        }
    }
    for name in op.required_query {
        if query_value(&r.query, name).is_none() {
            errors.push(format!("{at}: required query parameter {name} missing"));
        }
    }
    match &r.body {
        None if op.body.is_empty() => {}
        None => errors.push(format!("{at}: body missing")),
        Some(_) if op.body.is_empty() => errors.push(format!("{at}: unexpected body")),
        Some(Value::Object(fields)) => {
            for (name, value) in fields {
                match op.body.iter().find(|(n, _)| n == name) {
                    None => errors.push(format!("{at}: unknown body field {name}")),
                    Some((_, kind)) => {
                        if let Err(e) = check_json(*kind, value) {
                            errors.push(format!("{at} body {name}: {e}"));
                        }
                    }
                }
            }
            for name in op.required_body {
                if !fields.contains_key(*name) {
                    errors.push(format!("{at}: required body field {name} missing"));
                }
            }
        }
        Some(other) => errors.push(format!("{at}: body {other} is not an object")),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Every violation among `requests`, each naming the request's index.
pub fn violations(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .enumerate()
        .filter_map(|(i, r)| check_request(r).err().map(|e| format!("request #{i}: {e}")))
        .collect()
}

/// Panic listing every request that does not conform to the contract.
#[track_caller]
pub fn assert_all_conform(requests: &[Recorded]) {
    let errors = violations(requests);
    assert!(
        errors.is_empty(),
        "{} of {} request(s) violate the Alpaca spec contract:\n{}",
        errors.len(),
        requests.len(),
        errors.join("\n")
    );
}

/// The operations of `api` that none of `requests` exercised.
pub fn unexercised(requests: &[Recorded], api: Api) -> Vec<&'static str> {
    ops(api)
        .filter(|op| {
            !requests.iter().any(|r| {
                find_op(&r.method, &r.path, &r.query).is_ok_and(|found| std::ptr::eq(found, *op))
            })
        })
        .map(|op| op.name)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The official spec JSON (for the `#[ignore]`d walkers).
// ---------------------------------------------------------------------------------------------

/// The spec of `api`: the file its environment variable names, else
/// `../shared/reference/alpaca/<file>` next to this repository.
pub fn load_spec(api: Api) -> Value {
    let path = std::env::var(api.spec_env()).unwrap_or_else(|_| {
        format!(
            "{}/../shared/reference/alpaca/{}",
            env!("CARGO_MANIFEST_DIR"),
            api.spec_file()
        )
    });
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the official spec at {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// Resolve a local `$ref` (`#/components/...`).
pub fn resolve<'a>(spec: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let mut at = spec;
            for part in reference.trim_start_matches("#/").split('/') {
                at = &at[part];
            }
            resolve(spec, at)
        }
        None => node,
    }
}

/// The parameters of an operation (its own, then the path item's), resolved.
pub fn spec_params<'a>(spec: &'a Value, item: &'a Value, op: &'a Value) -> Vec<&'a Value> {
    op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(item["parameters"].as_array().into_iter().flatten())
        .map(|p| resolve(spec, p))
        .collect()
}

fn spec_kind_ok(spec: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    let schema = resolve(spec, schema);
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        if !values.contains(value) {
            return Err(format!("{value} not in enum {values:?}"));
        }
    }
    match (schema.get("type").and_then(Value::as_str), value) {
        (Some("string"), Value::String(_))
        | (Some("boolean"), Value::Bool(_))
        | (Some("integer"), Value::Number(_))
        | (Some("number"), Value::Number(_))
        | (None, _) => Ok(()),
        (Some(t), v) => Err(format!("{v} is not of spec type {t}")),
    }
}

/// A query value as the JSON value its schema expects.
fn spec_query_value(spec: &Value, schema: &Value, text: &str) -> Value {
    match resolve(spec, schema).get("type").and_then(Value::as_str) {
        Some("integer") | Some("number") => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(Value::String(text.into())),
        Some("boolean") => text
            .parse::<bool>()
            .map(Value::Bool)
            .unwrap_or(Value::String(text.into())),
        _ => Value::String(text.into()),
    }
}

/// Check one recorded request against the spec JSON itself (not the contract): path, method,
/// query names, types and enums, body fields, types, enums and required fields.
pub fn check_against_spec(spec: &Value, r: &Recorded) -> Result<(), String> {
    let paths = spec["paths"]
        .as_object()
        .ok_or("the spec has no paths".to_string())?;
    let (template, item) = paths
        .iter()
        .find(|(t, _)| path_matches(t, &r.path))
        .ok_or_else(|| format!("{}: no such path in the spec", r.path))?;
    let op = item
        .get(r.method.to_ascii_lowercase())
        .ok_or_else(|| format!("{} {template}: no such method in the spec", r.method))?;
    let params = spec_params(spec, item, op);
    for (name, text) in &r.query {
        let param = params
            .iter()
            .find(|p| p["name"] == name.as_str() && p["in"] == "query")
            .ok_or_else(|| format!("{} {template}: query {name} not in the spec", r.method))?;
        let value = spec_query_value(spec, &param["schema"], text);
        spec_kind_ok(spec, &param["schema"], &value)
            .map_err(|e| format!("{} {template} query {name}: {e}", r.method))?;
    }
    for param in &params {
        if param["in"] == "query" && param["required"] == true {
            let name = param["name"].as_str().unwrap_or("");
            if query_value(&r.query, name).is_none() {
                return Err(format!(
                    "{} {template}: required query {name} missing",
                    r.method
                ));
            }
        }
    }
    if let Some(Value::Object(fields)) = &r.body {
        let schema = resolve(
            spec,
            &op["requestBody"]["content"]["application/json"]["schema"],
        );
        let props = schema["properties"]
            .as_object()
            .ok_or_else(|| format!("{} {template}: spec has no body", r.method))?;
        for (name, value) in fields {
            let prop = props.get(name).ok_or_else(|| {
                format!("{} {template}: body field {name} not in the spec", r.method)
            })?;
            spec_kind_ok(spec, prop, value)
                .map_err(|e| format!("{} {template} body {name}: {e}", r.method))?;
        }
        for required in schema["required"].as_array().into_iter().flatten() {
            let required = required.as_str().unwrap_or("");
            // The spec may mark `notional` required; it is exclusive with `qty`.
            if required == "notional" && fields.contains_key("qty") {
                continue;
            }
            if !fields.contains_key(required) {
                return Err(format!(
                    "{} {template}: required {required} missing",
                    r.method
                ));
            }
        }
    }
    Ok(())
}

fn str_list(values: &Value) -> Option<Vec<&str>> {
    values.as_array()?.iter().map(Value::as_str).collect()
}

/// Whether `value` is documented in a description without an `enum`: as `` `value` ``, or by a
/// range such as `` `[1-59]Min` `` for `10Min`.
fn documented(description: &str, value: &str) -> bool {
    if description.contains(&format!("`{value}`")) {
        return true;
    }
    let digits = value.chars().take_while(char::is_ascii_digit).count();
    let (Ok(n), unit) = (value[..digits].parse::<u32>(), &value[digits..]) else {
        return false;
    };
    description.split('`').skip(1).step_by(2).any(|code| {
        code.strip_prefix('[')
            .and_then(|c| c.split_once(']'))
            .is_some_and(|(range, u)| {
                u == unit
                    && range.split_once('-').is_some_and(|(lo, hi)| {
                        lo.parse::<u32>().is_ok_and(|lo| lo <= n)
                            && hi.parse::<u32>().is_ok_and(|hi| n <= hi)
                    })
            })
    })
}

/// `kind` against a spec schema (`what` names it in errors). `query`: arrays travel as text.
fn kind_disagreement(
    spec: &Value,
    schema: &Value,
    description: &str,
    kind: Kind,
    query: bool,
    what: &str,
) -> Option<String> {
    let schema = resolve(spec, schema);
    let spec_type = schema["type"].as_str().unwrap_or("");
    let types: &[&str] = match kind {
        Kind::Bool => &["boolean"],
        Kind::Int | Kind::IntRange(..) => &["integer"],
        Kind::Str | Kind::CommaList if query => &["string", "array"],
        _ => &["string"],
    };
    if !types.contains(&spec_type) {
        return Some(format!("{what}: {kind:?} but the spec says {spec_type:?}"));
    }
    match kind {
        Kind::Enum(values) => match str_list(&schema["enum"]) {
            Some(spec_values) if spec_values != values => Some(format!(
                "{what}: enum {values:?}, the spec says {spec_values:?}"
            )),
            Some(_) => None,
            None => {
                let text = format!(
                    "{description} {}",
                    schema["description"].as_str().unwrap_or("")
                );
                let missing: Vec<&&str> = values.iter().filter(|v| !documented(&text, v)).collect();
                (!missing.is_empty())
                    .then(|| format!("{what}: {missing:?} neither in an enum nor documented"))
            }
        },
        Kind::IntRange(lo, hi) => {
            let (min, max) = (schema["minimum"].as_i64(), schema["maximum"].as_i64());
            (min.is_some_and(|m| lo < m) || max.is_some_and(|m| hi > m))
                .then(|| format!("{what}: {lo}..={hi} outside the spec's {min:?}..={max:?}"))
        }
        Kind::UtcDateTime => (schema["format"] != "date-time").then(|| {
            format!(
                "{what}: the spec format is {}, not date-time",
                schema["format"]
            )
        }),
        _ => None,
    }
}

/// Where operations (`ops(api)` for the contract's) disagree with the spec JSON: unknown paths,
/// methods, parameters or body fields; kinds, enums and ranges; parameters or fields the spec
/// requires that the contract does not.
pub fn disagreements_with_spec<'a>(
    spec: &Value,
    operations: impl IntoIterator<Item = &'a Op>,
) -> Vec<String> {
    let mut errors = Vec::new();
    for op in operations {
        let at = format!("{} {} ({})", op.method, op.path, op.name);
        let item = &spec["paths"][op.path];
        let o = &item[op.method.to_ascii_lowercase()];
        if !o.is_object() {
            errors.push(format!("{at}: not in the spec"));
            continue;
        }
        let params: Vec<&Value> = spec_params(spec, item, o)
            .into_iter()
            .filter(|p| p["in"] == "query")
            .collect();
        for (name, kind) in op.query {
            match params.iter().find(|p| p["name"] == *name) {
                None => errors.push(format!("{at}: query {name} not in the spec")),
                Some(p) => errors.extend(kind_disagreement(
                    spec,
                    &p["schema"],
                    p["description"].as_str().unwrap_or(""),
                    *kind,
                    true,
                    &format!("{at} query {name}"),
                )),
            }
        }
        for p in &params {
            let name = p["name"].as_str().unwrap_or("");
            if p["required"] == true && !op.required_query.contains(&name) {
                errors.push(format!("{at}: the spec requires query {name}"));
            }
        }
        for name in op.required_query {
            if !op.query.iter().any(|(n, _)| n == name) {
                errors.push(format!("{at}: required query {name} is not listed"));
            }
        }
        if let Some((name, value)) = op.variant {
            let listed = op.query.iter().find(|(n, _)| *n == name).map(|(_, k)| *k);
            if !matches!(listed, Some(Kind::Enum(v)) if *v == [value][..]) {
                errors.push(format!(
                    "{at}: variant {name}={value} is not its only value"
                ));
            }
        }
        let schema = resolve(
            spec,
            &o["requestBody"]["content"]["application/json"]["schema"],
        );
        if op.body.is_empty() {
            if o["requestBody"]["required"] == true {
                errors.push(format!("{at}: the spec requires a body"));
            }
            continue;
        }
        for (name, kind) in op.body {
            let prop = &schema["properties"][*name];
            if prop.is_null() {
                errors.push(format!("{at}: body field {name} not in the spec"));
                continue;
            }
            errors.extend(kind_disagreement(
                spec,
                prop,
                "",
                *kind,
                false,
                &format!("{at} body {name}"),
            ));
        }
        for required in str_list(&schema["required"]).unwrap_or_default() {
            if !op.required_body.contains(&required) {
                errors.push(format!("{at}: the spec requires body field {required}"));
            }
        }
        for name in op.required_body {
            if !op.body.iter().any(|(n, _)| n == name) {
                errors.push(format!("{at}: required body field {name} is not listed"));
            }
        }
    }
    errors
}
