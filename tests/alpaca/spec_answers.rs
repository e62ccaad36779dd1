//! Every answer the official specs allow, fed to the client's parsers (issue 15).
//!
//! For the 200 answer schema of every operation we use (taken from `trading-api.json` and
//! `market-data-api.json`, `$ref` resolved, `allOf` merged), the walker builds a realistic base
//! answer — the schema's examples, overlaid with what our parsers accept (our order, our
//! position, real sessions) — and checks that it reads as expected. Then it walks the schema
//! alongside that answer and derives variants:
//! - each optional field absent, each nullable field null, each enum field an unknown value,
//!   one unknown field on every object;
//! - one foreign element in every array and one foreign entry in every free map (another
//!   account's order, a crypto position, an OTC asset, a symbol not requested, a day outside
//!   the window …);
//! - for single-order answers, the whole answer replaced by another order;
//! - beyond the spec (counted apart): each required field absent, each non-nullable field null.
//!
//! Each variant goes to the parser inside `catch_unwind`. Acceptable outcomes: the base's
//! reading; a documented handling (a foreign order kept apart, an unreadable position, an
//! excluded asset, unrequested bars counted, a mismatch reported, a default listed in
//! [`DEFAULTS`], a value read as sent); or an error with a short, non-empty message. A wrong
//! conclusion — a concluded value the answer does not carry, one of the answer's elements gone
//! without trace, another order not reported as such, a spec-valid foreign element spoiling the
//! whole answer — fails the test, listing every (operation, variant) at once.
//!
//! `every_answer_the_spec_allows_is_handled_or_refused` is `#[ignore]`d like the other spec
//! walkers: it reads `../shared/reference/alpaca/*.json` (or `AVWAP_ALPACA_TRADING_SPEC`,
//! `AVWAP_ALPACA_MARKET_DATA_SPEC`). Run it with
//! `cargo test --test alpaca spec_answers -- --ignored --nocapture` to see the variant counts
//! (with `AVWAP_SPEC_ANSWERS_VERBOSE=1`, every variant's outcome on stderr). It also fails when
//! an operation of the request contract whose answer we read is not walked, or when an entry of
//! [`DEFAULTS`] is needed by no variant. `the_walker_catches_a_wrong_conclusion` needs no spec
//! file: it feeds an inline schema to a parser that takes a missing `qty` for 0.

use super::fake_alpaca::contract::{self, Api};

use avwap::alpaca::assets::{parse_assets_answer, LISTED_EXCHANGES};
use avwap::alpaca::calendar::{compare, parse_calendar_answer};
use avwap::alpaca::intraday::parse_latest_trades_answer;
use avwap::alpaca::market_data::parse_bars_answer;
use avwap::alpaca::types::{
    parse_account, parse_clock, parse_order, parse_order_list, parse_positions,
    parse_suspend_trade, WireError,
};
use avwap::broker::{
    has_our_prefix, order_answer_mismatch, BrokerOrder, ExpectedOrder, ForeignOrder, OrderType,
    Position, PositionList, Side, UnreadablePosition,
};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};

// ---------------------------------------------------------------------------------------------
// Documented defaults
// ---------------------------------------------------------------------------------------------

/// What a parser may conclude for a field the answer has no usable value for: (operation,
/// field, concluded value). The documented handling of missing optional fields, in one place;
/// anything else a parser concludes must be in the answer.
const DEFAULTS: &[(&str, &str, &str)] = &[
    // `WireAccount::into_details`: a flag the account answer leaves out is not set. Safe: a
    // suspended or blocked account refuses our orders at Alpaca anyway; startup logs what it
    // read.
    ("GET /v2/account", "trade_suspended_by_user", "false"),
    ("GET /v2/account", "trading_blocked", "false"),
    ("GET /v2/account", "account_blocked", "false"),
    // `assets::select_tradable_equities`: an asset without a name is kept with an empty name
    // (the universe needs only the symbol).
    ("GET /v2/assets", "name", ""),
    // `intraday`: an answer without a `trades` map has no latest trade; every price falls back
    // to the last closed bar's close, as for a symbol without a trade.
    ("GET /v2/stocks/trades/latest", "trades", "{}"),
];

fn default_allowed(operation: &str, field: &str, concluded: &str) -> bool {
    DEFAULTS.contains(&(operation, field, concluded))
}

// ---------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------

/// `schema` with its `$ref` resolved, `allOf` merged and the first `oneOf`/`anyOf` alternative
/// taken (for building instances).
fn schema_node(spec: &Value, schema: &Value) -> Value {
    let node = contract::resolve(spec, schema).clone();
    let Value::Object(mut merged) = node.clone() else {
        return node;
    };
    let mut parts: Vec<Value> = Vec::new();
    if let Some(Value::Array(all)) = merged.remove("allOf") {
        parts.extend(all);
    }
    for alternatives in ["oneOf", "anyOf"] {
        if let Some(Value::Array(alts)) = merged.remove(alternatives) {
            parts.extend(alts.into_iter().take(1));
        }
    }
    for part in parts {
        let Value::Object(part) = schema_node(spec, &part) else {
            continue;
        };
        for (key, value) in part {
            match (key.as_str(), merged.get_mut(&key), value) {
                ("properties", Some(Value::Object(into)), Value::Object(from)) => {
                    for (name, property) in from {
                        into.entry(name).or_insert(property);
                    }
                }
                ("required", Some(Value::Array(into)), Value::Array(from)) => into.extend(from),
                (_, Some(_), _) => {}
                (_, None, value) => {
                    merged.insert(key, value);
                }
            }
        }
    }
    Value::Object(merged)
}

/// OpenAPI 3.0 `nullable: true`, or a 3.1 type list holding `"null"`.
fn nullable(schema: &Value) -> bool {
    schema["nullable"] == json!(true)
        || schema["type"]
            .as_array()
            .is_some_and(|types| types.contains(&json!("null")))
}

/// The schema's type (the first non-null one of a 3.1 list), or the one its keywords imply.
fn kind(schema: &Value) -> &str {
    match &schema["type"] {
        Value::String(kind) => kind,
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")
            .unwrap_or(""),
        _ if schema.get("properties").is_some() || schema.get("additionalProperties").is_some() => {
            "object"
        }
        _ if schema.get("items").is_some() => "array",
        _ => "",
    }
}

/// The schema of a free map's values (`additionalProperties` given as a schema).
fn map_values(schema: &Value) -> Option<&Value> {
    schema
        .get("additionalProperties")
        .filter(|values| values.is_object())
}

fn required(schema: &Value) -> Vec<&str> {
    schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// How deep generated instances go (the order schema nests legs of legs).
const MAX_DEPTH: usize = 6;

/// An instance of `schema`: its `example` where it has one, else a value of its type and
/// format (every property of an object, one element in an array, an empty free map).
fn generate(spec: &Value, schema: &Value, depth: usize) -> Value {
    let s = schema_node(spec, schema);
    let k = kind(&s);
    if k != "object" {
        if let Some(example) = s.get("example") {
            return example.clone();
        }
        if let Some(first) = s["enum"].as_array().and_then(|values| values.first()) {
            return first.clone();
        }
    }
    match k {
        "object" => {
            let mut out = match s.get("example") {
                Some(Value::Object(example)) => example.clone(),
                _ => Map::new(),
            };
            if depth < MAX_DEPTH {
                for (name, property) in s["properties"].as_object().into_iter().flatten() {
                    if !out.contains_key(name) {
                        out.insert(name.clone(), generate(spec, property, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        "array" if depth < MAX_DEPTH => Value::Array(vec![generate(spec, &s["items"], depth + 1)]),
        "array" => json!([]),
        "string" => json!(match s["format"].as_str() {
            Some("date-time") => "2026-11-30T15:00:00Z",
            Some("date") => "2026-11-30",
            Some("uuid") => "0b9d6a34-5f7e-4c1e-9d8a-3f2b1c0d9e8f",
            Some("decimal") => "1",
            _ => "text",
        }),
        "integer" => json!(1),
        "number" => json!(1.5),
        "boolean" => json!(false),
        _ => Value::Null,
    }
}

/// Marks a field of an overlay that the base leaves out.
const LEFT_OUT: &str = "<left out>";

/// `overlay` completed from `schema`: objects get every property the schema has and the
/// overlay does not set (generated), arrays and map values are completed element by element.
fn overlaid(spec: &Value, schema: &Value, overlay: &Value) -> Value {
    let s = schema_node(spec, schema);
    match overlay {
        Value::Object(fields) if kind(&s) == "object" => {
            let mut out = match generate(spec, schema, 0) {
                Value::Object(generated) => generated,
                _ => Map::new(),
            };
            for (name, value) in fields {
                if value == LEFT_OUT {
                    out.remove(name);
                    continue;
                }
                let sub = s["properties"].get(name).or_else(|| map_values(&s));
                let value = match sub {
                    Some(sub) => overlaid(spec, sub, value),
                    None => value.clone(),
                };
                out.insert(name.clone(), value);
            }
            Value::Object(out)
        }
        Value::Array(items) if kind(&s) == "array" => Value::Array(
            items
                .iter()
                .map(|item| overlaid(spec, &s["items"], item))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The 200 `application/json` schema of an operation, and the answer's example if the spec
/// has one; a panic naming what is missing otherwise.
fn response_schema(spec: &Value, method: &str, path: &str) -> (Value, Option<Value>) {
    let operation = &spec["paths"][path][method.to_lowercase()];
    assert!(
        operation.is_object(),
        "the spec has no operation {method} {path}"
    );
    let content = &operation["responses"]["200"]["content"]["application/json"];
    let schema = content.get("schema").unwrap_or_else(|| {
        panic!("the spec has no 200 application/json schema for {method} {path}")
    });
    (schema.clone(), content.get("example").cloned())
}

/// `overlay` merged over `under`, object by object.
fn merged(under: Value, overlay: &Value) -> Value {
    match (under, overlay) {
        (Value::Object(mut under), Value::Object(overlay)) => {
            for (key, value) in overlay {
                let below = under.remove(key).unwrap_or(Value::Null);
                under.insert(key.clone(), merged(below, value));
            }
            Value::Object(under)
        }
        (_, overlay) => overlay.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Variants
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    /// A property of an object.
    Key(String),
    /// An entry of a free map.
    Entry(String),
    Index(usize),
}

/// `$[0].qty`, `$.bars.AXTA[1]`.
fn shown_path(path: &[Step]) -> String {
    let mut out = "$".to_string();
    for step in path {
        match step {
            Step::Key(name) | Step::Entry(name) => {
                out.push('.');
                out.push_str(name);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The path with indices and map keys abstracted (`$[]`, `$.bars{}`): where foreign elements
/// are looked up.
fn shape_path(path: &[Step]) -> String {
    let mut out = "$".to_string();
    for step in path {
        match step {
            Step::Key(name) => {
                out.push('.');
                out.push_str(name);
            }
            Step::Entry(_) => out.push_str("{}"),
            Step::Index(_) => out.push_str("[]"),
        }
    }
    out
}

fn at_mut<'v>(value: &'v mut Value, path: &[Step]) -> &'v mut Value {
    path.iter().fold(value, |at, step| match step {
        Step::Key(name) | Step::Entry(name) => &mut at[name.as_str()],
        Step::Index(i) => &mut at[*i],
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Absent,
    Null,
    UnknownEnum,
    ExtraField,
    Foreign,
    Replaced,
}

#[derive(Debug, Clone)]
struct Variant {
    label: String,
    change: Change,
    /// Not an answer the spec allows (a required field absent, a non-nullable one null).
    beyond_spec: bool,
    body: Value,
}

/// A foreign element for the array (or free map) at `at` (a [`shape_path`]): `key` for a map
/// entry; `value` is completed from the schema.
struct Foreign {
    at: &'static str,
    label: &'static str,
    key: Option<&'static str>,
    value: Value,
}

fn foreign(at: &'static str, label: &'static str, value: Value) -> Foreign {
    Foreign {
        at,
        label,
        key: None,
        value,
    }
}

const UNKNOWN_FIELD: &str = "x_avwap_unknown_field";

struct Walker<'a> {
    spec: &'a Value,
    base: &'a Value,
    foreign: &'a [Foreign],
    out: Vec<Variant>,
}

impl Walker<'_> {
    fn push(
        &mut self,
        path: &[Step],
        change: Change,
        beyond_spec: bool,
        what: &str,
        apply: impl FnOnce(&mut Value),
    ) {
        let mut body = self.base.clone();
        apply(at_mut(&mut body, path));
        if body != *self.base {
            self.out.push(Variant {
                label: format!("{what} {}", shown_path(path)),
                change,
                beyond_spec,
                body,
            });
        }
    }

    /// The foreign elements for the array or map at `path` (the operation's, else one
    /// generated from the schema).
    fn foreign_for(&self, path: &[Step], values: &Value) -> Vec<(String, Option<String>, Value)> {
        let shape = shape_path(path);
        let listed: Vec<_> = self
            .foreign
            .iter()
            .filter(|f| f.at == shape)
            .map(|f| {
                (
                    f.label.to_string(),
                    f.key.map(str::to_string),
                    overlaid(self.spec, values, &f.value),
                )
            })
            .collect();
        if listed.is_empty() {
            vec![(
                "generated from the schema".to_string(),
                Some("ZFOREIGN".to_string()),
                generate(self.spec, values, 0),
            )]
        } else {
            listed
        }
    }

    fn walk(&mut self, schema: &Value, value: &Value, path: &mut Vec<Step>) {
        let s = schema_node(self.spec, schema);
        if !value.is_null() {
            if nullable(&s) {
                self.push(path, Change::Null, false, "null", |v| *v = Value::Null);
            } else {
                self.push(path, Change::Null, true, "null (not nullable)", |v| {
                    *v = Value::Null
                });
            }
            if let Some(values) = s["enum"].as_array() {
                let unknown = match values.first() {
                    Some(Value::Number(_)) => json!(987_654_321),
                    _ => json!("x-avwap-unknown"),
                };
                self.push(
                    path,
                    Change::UnknownEnum,
                    false,
                    "unknown enum value",
                    |v| *v = unknown,
                );
            }
        }
        match value {
            Value::Object(fields) => {
                let entries = map_values(&s).cloned();
                let needed = required(&s);
                for (name, sub) in fields {
                    let property = s["properties"].get(name).cloned();
                    let (step, sub_schema) = match (property, &entries) {
                        (Some(property), _) => (Step::Key(name.clone()), Some(property)),
                        (None, Some(entries)) => (Step::Entry(name.clone()), Some(entries.clone())),
                        (None, None) => (Step::Key(name.clone()), None),
                    };
                    // Map entries are all optional; properties as the schema says.
                    let beyond = matches!(step, Step::Key(_)) && needed.contains(&name.as_str());
                    let what = if beyond {
                        "absent (required)"
                    } else {
                        "absent"
                    };
                    self.push(
                        path,
                        Change::Absent,
                        beyond,
                        &format!("{what} {name} of"),
                        |v| {
                            if let Some(object) = v.as_object_mut() {
                                object.remove(name);
                            }
                        },
                    );
                    path.push(step);
                    if let Some(sub_schema) = sub_schema {
                        self.walk(&sub_schema, sub, path);
                    }
                    path.pop();
                }
                match entries {
                    Some(entries) => {
                        for (label, key, element) in self.foreign_for(path, &entries) {
                            let key = key.unwrap_or_else(|| "ZFOREIGN".to_string());
                            let what = format!("foreign entry {key} ({label}) in");
                            self.push(path, Change::Foreign, false, &what, |v| {
                                if let Some(object) = v.as_object_mut() {
                                    object.insert(key.clone(), element);
                                }
                            });
                        }
                    }
                    None => self.push(path, Change::ExtraField, false, "extra field in", |v| {
                        if let Some(object) = v.as_object_mut() {
                            object.insert(
                                UNKNOWN_FIELD.to_string(),
                                json!({"note": "not in the spec", "list": [1, "two", null]}),
                            );
                        }
                    }),
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Step::Index(i));
                    self.walk(&s["items"], item, path);
                    path.pop();
                }
                for (label, _, element) in self.foreign_for(path, &s["items"]) {
                    let what = format!("foreign element ({label}) in");
                    self.push(path, Change::Foreign, false, &what, |v| {
                        if let Some(list) = v.as_array_mut() {
                            list.push(element);
                        }
                    });
                }
            }
            Value::Null if kind(&s) == "array" => {
                for (label, _, element) in self.foreign_for(path, &s["items"]) {
                    let what = format!("foreign element ({label}) in the null list");
                    self.push(path, Change::Foreign, false, &what, |v| {
                        *v = json!([element]);
                    });
                }
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Judging
// ---------------------------------------------------------------------------------------------

/// What a parser concluded from one answer: its reading (the key conclusions, one line each),
/// the documented handling it applied, and every conclusion the answer does not support.
#[derive(Debug, Default, Clone, PartialEq)]
struct Reading {
    lines: Vec<String>,
    handling: Vec<String>,
    wrong: Vec<String>,
}

impl Reading {
    /// `concluded` must be what the answer says (`answer`, `None` when it has no usable value).
    fn agree(
        &mut self,
        what: &str,
        field: &str,
        concluded: Option<String>,
        answer: Option<String>,
    ) {
        if concluded != answer {
            self.wrong.push(format!(
                "{what}: {field} concluded {concluded:?}, the answer has {answer:?}"
            ));
        }
    }

    /// [`Reading::agree`], or a default [`DEFAULTS`] lists for an answer without the field.
    fn agree_or_default(
        &mut self,
        operation: &str,
        what: &str,
        field: &str,
        concluded: String,
        answer: Option<String>,
    ) {
        if answer.is_none() && default_allowed(operation, field, &concluded) {
            self.handle(format!("default {field} = {concluded:?}"));
        } else {
            self.agree(what, field, Some(concluded), answer);
        }
    }

    fn handle(&mut self, how: impl Into<String>) {
        let how = how.into();
        if !self.handling.contains(&how) {
            self.handling.push(how);
        }
    }
}

/// A parser's reading of an answer: `Err` carries the parser's error message.
type Judge<'a> = Box<dyn Fn(&Value) -> Result<Reading, String> + 'a>;

/// One operation: its answer schema, the base answer and what it must read as, the foreign
/// elements of its lists, whole other answers, and the judge.
struct Operation<'a> {
    name: &'static str,
    spec: &'a Value,
    schema: Value,
    base: Value,
    expect_base: Vec<String>,
    foreign: Vec<Foreign>,
    extras: Vec<(&'static str, Value)>,
    judge: Judge<'a>,
}

/// Outcome counts of a set of variants.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    variants: usize,
    ok: usize,
    documented: usize,
    errors: usize,
    wrong: usize,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.variants += other.variants;
        self.ok += other.ok;
        self.documented += other.documented;
        self.errors += other.errors;
        self.wrong += other.wrong;
    }

    fn shown(&self) -> String {
        let wrong = if self.wrong > 0 {
            format!(", {} WRONG", self.wrong)
        } else {
            String::new()
        };
        format!(
            "{} ok, {} documented, {} error{wrong}",
            self.ok, self.documented, self.errors
        )
    }
}

/// Variant counts of one operation (within the spec and beyond it), the documented handling
/// applied, and the wrong conclusions found.
#[derive(Debug, Default)]
struct Tally {
    spec: Counts,
    beyond: Counts,
    documented: BTreeMap<String, usize>,
    wrong: Vec<String>,
}

impl Tally {
    fn all(&self) -> Counts {
        let mut all = self.spec;
        all.add(self.beyond);
        all
    }

    fn add(&mut self, other: &Tally) {
        self.spec.add(other.spec);
        self.beyond.add(other.beyond);
        for (how, n) in &other.documented {
            *self.documented.entry(how.clone()).or_default() += n;
        }
        self.wrong.extend(other.wrong.iter().cloned());
    }

    /// `GET /v2/orders: 69 variants (40 ok, 8 documented, 21 error); within the spec 48 (…),
    /// beyond it 21 (…)`, then the documented handling applied.
    fn line(&self, name: &str) -> String {
        let all = self.all();
        let kinds: Vec<String> = self
            .documented
            .iter()
            .map(|(how, n)| format!("{how}: {n}"))
            .collect();
        format!(
            "{name}: {} variants ({}); within the spec {} ({}), beyond it {} ({}){}",
            all.variants,
            all.shown(),
            self.spec.variants,
            self.spec.shown(),
            self.beyond.variants,
            self.beyond.shown(),
            if kinds.is_empty() {
                String::new()
            } else {
                format!("\n    documented: {}", kinds.join("; "))
            }
        )
    }
}

fn variants_of(op: &Operation<'_>) -> Vec<Variant> {
    let mut walker = Walker {
        spec: op.spec,
        base: &op.base,
        foreign: &op.foreign,
        out: Vec::new(),
    };
    walker.walk(&op.schema, &op.base, &mut Vec::new());
    let mut variants = walker.out;
    variants.extend(op.extras.iter().map(|(label, body)| Variant {
        label: format!("whole answer: {label}"),
        change: Change::Replaced,
        beyond_spec: false,
        body: body.clone(),
    }));
    variants
}

enum Verdict {
    Ok,
    Documented,
    Error,
    Wrong,
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".to_string())
}

/// Judge the base (it must read as expected), then every variant.
fn walk_operation(op: &Operation<'_>) -> Tally {
    let base = match catch_unwind(AssertUnwindSafe(|| (op.judge)(&op.base))) {
        Ok(Ok(reading)) => reading,
        Ok(Err(e)) => panic!(
            "{}: the base answer does not parse: {e}\n{:#}",
            op.name, op.base
        ),
        Err(p) => panic!("{}: the base answer panics: {}", op.name, panic_text(&*p)),
    };
    assert!(
        base.wrong.is_empty() && base.handling.is_empty(),
        "{}: the base answer is not read plainly: {base:#?}",
        op.name
    );
    assert_eq!(
        base.lines, op.expect_base,
        "{}: the base answer reads otherwise than expected",
        op.name
    );
    let mut tally = Tally::default();
    // Every variant's outcome on stderr, for a look at what the walker did.
    let verbose = std::env::var_os("AVWAP_SPEC_ANSWERS_VERBOSE").is_some();
    for variant in variants_of(op) {
        let outcome = catch_unwind(AssertUnwindSafe(|| (op.judge)(&variant.body)));
        if verbose {
            let shown = match &outcome {
                Ok(Ok(reading)) => format!("{:?} {:?}", reading.handling, reading.wrong),
                Ok(Err(message)) => format!("error: {message}"),
                Err(_) => "panic".to_string(),
            };
            eprintln!("{} · {} → {shown}", op.name, variant.label);
        }
        let mut wrong = |why: String| {
            tally
                .wrong
                .push(format!("{} · {}: {why}", op.name, variant.label));
            Verdict::Wrong
        };
        let verdict = match outcome {
            Err(p) => wrong(format!("panicked: {}", panic_text(&*p))),
            Ok(Err(message)) if message.trim().is_empty() || message.chars().count() >= 2000 => {
                wrong(format!(
                    "an unclear error ({} characters)",
                    message.chars().count()
                ))
            }
            Ok(Err(message)) if variant.change == Change::Foreign && !variant.beyond_spec => {
                wrong(format!(
                    "a foreign element the spec allows made the whole answer unreadable: {message}"
                ))
            }
            Ok(Err(_)) => Verdict::Error,
            Ok(Ok(reading)) if !reading.wrong.is_empty() => wrong(reading.wrong.join("; ")),
            Ok(Ok(reading)) if reading.handling.is_empty() && reading.lines == base.lines => {
                Verdict::Ok
            }
            Ok(Ok(reading)) => {
                let how = if reading.handling.is_empty() {
                    // Every conclusion agrees with the answer, which differs from the base's
                    // in a key value (a price now null, say).
                    vec!["read as sent".to_string()]
                } else {
                    reading.handling
                };
                for how in how {
                    *tally.documented.entry(how).or_default() += 1;
                }
                Verdict::Documented
            }
        };
        let counts = if variant.beyond_spec {
            &mut tally.beyond
        } else {
            &mut tally.spec
        };
        counts.variants += 1;
        match verdict {
            Verdict::Ok => counts.ok += 1,
            Verdict::Documented => counts.documented += 1,
            Verdict::Error => counts.errors += 1,
            Verdict::Wrong => counts.wrong += 1,
        }
    }
    tally
}

// ---------------------------------------------------------------------------------------------
// What an answer says
// ---------------------------------------------------------------------------------------------

fn text<'v>(element: &'v Value, field: &str) -> Option<&'v str> {
    element.get(field).and_then(Value::as_str)
}

/// A text field as our lists keep it for reports (cut, control characters dropped).
fn kept_text(element: &Value, field: &str) -> Option<String> {
    text(element, field).map(|t| t.chars().take(48).filter(|c| !c.is_control()).collect())
}

fn decimal_text(text: &str) -> Option<String> {
    text.trim()
        .parse::<Decimal>()
        .ok()
        .map(|d| d.normalize().to_string())
}

/// A decimal string field, normalized; `None` when absent, not a string or not a decimal.
fn decimal_at(element: &Value, field: &str) -> Option<String> {
    text(element, field).and_then(decimal_text)
}

/// An optional price: absent, null or empty is none.
fn price_at(element: &Value, field: &str) -> Option<String> {
    match text(element, field).map(str::trim) {
        None | Some("") => None,
        Some(t) => Some(decimal_text(t).unwrap_or_else(|| format!("not a decimal: {t}"))),
    }
}

fn bool_at(element: &Value, field: &str) -> Option<String> {
    element
        .get(field)
        .and_then(Value::as_bool)
        .map(|b| b.to_string())
}

fn time_at(element: &Value, field: &str) -> Option<String> {
    text(element, field)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc).to_rfc3339())
}

fn number_at(element: &Value, field: &str) -> Option<String> {
    element
        .get(field)
        .and_then(Value::as_f64)
        .map(|n| n.to_string())
}

fn dec(d: Decimal) -> String {
    d.normalize().to_string()
}

// ---------------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------------

fn order_line(o: &BrokerOrder) -> String {
    format!(
        "order {} (id {}) {} {} {} filled {} {} {} {}, limit {:?}, stop {:?}, avg {:?}, replaced by {:?}",
        o.client_order_id,
        o.id,
        o.symbol,
        o.side.as_str(),
        dec(o.qty),
        dec(o.filled_qty),
        o.order_type.as_str(),
        o.time_in_force.as_str(),
        o.status.as_str(),
        o.limit_price.map(dec),
        o.stop_price.map(dec),
        o.filled_avg_price.map(dec),
        o.replaced_by
    )
}

/// Every key conclusion about an order is what the answer's element says.
fn order_agrees(r: &mut Reading, o: &BrokerOrder, e: &Value) {
    let what = format!("order {}", o.client_order_id);
    let same = |concluded: &str| Some(concluded.to_string());
    let own = |field: &str| text(e, field).map(str::to_string);
    r.agree(&what, "id", same(&o.id), own("id"));
    r.agree(
        &what,
        "client_order_id",
        same(&o.client_order_id),
        own("client_order_id"),
    );
    r.agree(&what, "symbol", same(&o.symbol), own("symbol"));
    r.agree(&what, "side", same(o.side.as_str()), own("side"));
    r.agree(&what, "type", same(o.order_type.as_str()), own("type"));
    r.agree(
        &what,
        "time_in_force",
        same(o.time_in_force.as_str()),
        own("time_in_force"),
    );
    r.agree(&what, "status", same(o.status.as_str()), own("status"));
    r.agree(&what, "qty", Some(dec(o.qty)), decimal_at(e, "qty"));
    r.agree(
        &what,
        "filled_qty",
        Some(dec(o.filled_qty)),
        decimal_at(e, "filled_qty"),
    );
    for (field, concluded) in [
        ("limit_price", o.limit_price),
        ("stop_price", o.stop_price),
        ("filled_avg_price", o.filled_avg_price),
    ] {
        r.agree(&what, field, concluded.map(dec), price_at(e, field));
    }
    r.agree(
        &what,
        "replaced_by",
        o.replaced_by.clone(),
        own("replaced_by").filter(|id| !id.is_empty()),
    );
}

fn foreign_line(f: &ForeignOrder) -> String {
    format!("foreign {f}")
}

/// A foreign record reports the element as the answer has it.
fn foreign_agrees(r: &mut Reading, f: &ForeignOrder, e: &Value) {
    let what = format!("foreign order {}", f.symbol);
    r.agree(&what, "id", f.id.clone(), kept_text(e, "id"));
    r.agree(
        &what,
        "client_order_id",
        f.client_order_id.clone(),
        kept_text(e, "client_order_id"),
    );
    r.agree(
        &what,
        "symbol",
        Some(f.symbol.clone()),
        Some(kept_text(e, "symbol").unwrap_or_else(|| "?".to_string())),
    );
    r.agree(&what, "side", f.side.clone(), kept_text(e, "side"));
    r.agree(
        &what,
        "type",
        f.order_type.clone(),
        kept_text(e, "type").or_else(|| kept_text(e, "order_type")),
    );
    r.agree(&what, "qty", f.qty.clone(), kept_text(e, "qty"));
    r.agree(&what, "status", f.status.clone(), kept_text(e, "status"));
}

/// The element of `data` a result entry comes from: the first (unused if possible) whose
/// identity fields agree with the entry's known ones.
fn element_of(data: &[Value], used: &[usize], ids: &[(&str, Option<&str>)]) -> Option<usize> {
    let fits = |e: &Value| {
        ids.iter().all(|(field, known)| {
            known.is_none_or(|known| kept_text(e, field).as_deref() == Some(known))
        })
    };
    let candidates: Vec<usize> = (0..data.len()).filter(|&i| fits(&data[i])).collect();
    candidates
        .iter()
        .copied()
        .find(|&i| used[i] == 0)
        .or_else(|| candidates.first().copied())
}

fn every_element_once(r: &mut Reading, used: &[usize], what: &str) {
    for (i, n) in used.iter().enumerate() {
        match n {
            1 => {}
            0 => r.wrong.push(format!(
                "{what} {i} of the answer is gone: neither read, nor kept apart, nor an error"
            )),
            n => r
                .wrong
                .push(format!("{what} {i} of the answer is read {n} times")),
        }
    }
}

fn order_list_judge<'a>() -> Judge<'a> {
    Box::new(|body: &Value| {
        let page = parse_order_list(&body.to_string()).map_err(|e| e.0)?;
        let data = body.as_array().map(Vec::as_slice).unwrap_or_default();
        let mut r = Reading::default();
        if page.len != data.len() {
            r.wrong.push(format!(
                "the page counts {} orders, the answer has {}",
                page.len,
                data.len()
            ));
        }
        let mut used = vec![0; data.len()];
        for o in &page.list.orders {
            r.lines.push(order_line(o));
            let ids = [
                ("id", Some(o.id.as_str())),
                ("client_order_id", Some(o.client_order_id.as_str())),
                ("symbol", Some(o.symbol.as_str())),
            ];
            let Some(i) = element_of(data, &used, &ids) else {
                r.wrong
                    .push(format!("{} is not in the answer", order_line(o)));
                continue;
            };
            used[i] += 1;
            order_agrees(&mut r, o, &data[i]);
            if !has_our_prefix(&o.client_order_id) {
                r.handle("another strategy's order, read as sent (not ours: never touched)");
            }
        }
        for f in &page.list.foreign {
            r.lines.push(foreign_line(f));
            let symbol = (f.symbol != "?").then_some(f.symbol.as_str());
            let ids = [
                ("id", f.id.as_deref()),
                ("client_order_id", f.client_order_id.as_deref()),
                ("symbol", symbol),
            ];
            let Some(i) = element_of(data, &used, &ids) else {
                r.wrong
                    .push(format!("{} is not in the answer", foreign_line(f)));
                continue;
            };
            used[i] += 1;
            foreign_agrees(&mut r, f, &data[i]);
            if text(&data[i], "client_order_id").is_some_and(has_our_prefix) {
                r.wrong.push(format!(
                    "our own order is set aside as foreign (never touched): {}",
                    f.problem
                ));
            }
            r.handle("foreign order: reported, never touched");
        }
        every_element_once(&mut r, &used, "order");
        Ok(r)
    })
}

/// Judges a single-order answer against `asked`, the request it answers: an independent
/// reading of "is this the order asked for" must agree with `order_answer_mismatch`.
fn single_order_judge<'a>(asked: ExpectedOrder<'static>) -> Judge<'a> {
    Box::new(move |body: &Value| {
        let o = parse_order(&body.to_string()).map_err(|e| e.0)?;
        let mut r = Reading::default();
        r.lines.push(order_line(&o));
        order_agrees(&mut r, &o, body);
        let is_asked = o.client_order_id == asked.client_order_id
            && o.symbol == asked.symbol
            && o.side == asked.side
            && asked.qty.is_none_or(|q| q == o.qty)
            && asked.order_type.is_none_or(|t| t == o.order_type);
        match (is_asked, order_answer_mismatch(&o, &asked)) {
            (true, None) => {}
            (false, Some(_)) => {
                r.handle("another order than asked: the mismatch is reported, nothing booked")
            }
            (false, None) => r.wrong.push(format!(
                "the answer is another order ({}) and order_answer_mismatch sees no difference",
                order_line(&o)
            )),
            (true, Some(difference)) => r.wrong.push(format!(
                "order_answer_mismatch reports {difference} for the very order asked"
            )),
        }
        Ok(r)
    })
}

// ---------------------------------------------------------------------------------------------
// Positions, account, clock, configuration
// ---------------------------------------------------------------------------------------------

fn position_line(p: &Position) -> String {
    format!(
        "position {} qty {} avg {}",
        p.symbol,
        dec(p.qty),
        dec(p.avg_entry_price)
    )
}

fn unreadable_line(u: &UnreadablePosition) -> String {
    format!("unreadable position {}", u.symbol)
}

type PositionsParser = fn(&str) -> Result<PositionList, WireError>;

fn positions_judge<'a>(base_symbol: &'static str, parse: PositionsParser) -> Judge<'a> {
    Box::new(move |body: &Value| {
        let list = parse(&body.to_string()).map_err(|e| e.0)?;
        let data = body.as_array().map(Vec::as_slice).unwrap_or_default();
        let mut r = Reading::default();
        let mut used = vec![0; data.len()];
        for p in &list.positions {
            r.lines.push(position_line(p));
            let Some(i) = element_of(data, &used, &[("symbol", Some(&p.symbol))]) else {
                r.wrong
                    .push(format!("{} is not in the answer", position_line(p)));
                continue;
            };
            used[i] += 1;
            let what = format!("position {}", p.symbol);
            r.agree(&what, "qty", Some(dec(p.qty)), decimal_at(&data[i], "qty"));
            r.agree(
                &what,
                "avg_entry_price",
                Some(dec(p.avg_entry_price)),
                decimal_at(&data[i], "avg_entry_price"),
            );
            if p.symbol != base_symbol {
                r.handle("another symbol's position, read as sent");
            }
        }
        for u in &list.unreadable {
            r.lines.push(unreadable_line(u));
            let Some(i) = element_of(data, &used, &[("symbol", Some(&u.symbol))]) else {
                r.wrong
                    .push(format!("{} is not in the answer", unreadable_line(u)));
                continue;
            };
            used[i] += 1;
            let e = &data[i];
            if decimal_at(e, "qty").is_some() && decimal_at(e, "avg_entry_price").is_some() {
                r.wrong.push(format!(
                    "position {} reads, yet is reported unreadable: {}",
                    u.symbol, u.problem
                ));
            }
            r.handle("unreadable position: reported, its symbol held back");
        }
        every_element_once(&mut r, &used, "position");
        Ok(r)
    })
}

fn account_judge<'a>(name: &'static str) -> Judge<'a> {
    Box::new(move |body: &Value| {
        let d = parse_account(&body.to_string()).map_err(|e| e.0)?;
        let mut r = Reading::default();
        let what = "the account";
        r.agree(
            what,
            "equity",
            Some(dec(d.account.equity)),
            decimal_at(body, "equity"),
        );
        r.agree(
            what,
            "buying_power",
            Some(dec(d.account.buying_power)),
            decimal_at(body, "buying_power"),
        );
        for (field, concluded) in [
            ("trade_suspended_by_user", d.account.trading_suspended),
            ("trading_blocked", d.trading_blocked),
            ("account_blocked", d.account_blocked),
        ] {
            r.agree_or_default(
                name,
                what,
                field,
                concluded.to_string(),
                bool_at(body, field),
            );
        }
        let own = |field: &str| text(body, field).map(str::to_string);
        r.agree(
            what,
            "account_number",
            d.account_number.clone(),
            own("account_number"),
        );
        r.agree(what, "status", d.status.clone(), own("status"));
        r.lines.push(format!(
            "account equity {} buying power {}, suspended {}, trading blocked {}, account blocked {}, number {:?}, status {:?}",
            dec(d.account.equity),
            dec(d.account.buying_power),
            d.account.trading_suspended,
            d.trading_blocked,
            d.account_blocked,
            d.account_number,
            d.status
        ));
        Ok(r)
    })
}

fn clock_judge<'a>() -> Judge<'a> {
    Box::new(|body: &Value| {
        let c = parse_clock(&body.to_string()).map_err(|e| e.0)?;
        let mut r = Reading::default();
        for (field, concluded) in [
            ("timestamp", c.timestamp),
            ("next_open", c.next_open),
            ("next_close", c.next_close),
        ] {
            r.agree(
                "the clock",
                field,
                Some(concluded.to_rfc3339()),
                time_at(body, field),
            );
        }
        r.agree(
            "the clock",
            "is_open",
            Some(c.is_open.to_string()),
            bool_at(body, "is_open"),
        );
        r.lines.push(format!(
            "clock {} open {} next open {} next close {}",
            c.timestamp, c.is_open, c.next_open, c.next_close
        ));
        Ok(r)
    })
}

fn suspend_judge<'a>() -> Judge<'a> {
    Box::new(|body: &Value| {
        let suspended = parse_suspend_trade(&body.to_string()).map_err(|e| e.0)?;
        let mut r = Reading::default();
        r.agree(
            "the configuration",
            "suspend_trade",
            Some(suspended.to_string()),
            bool_at(body, "suspend_trade"),
        );
        r.lines.push(format!("suspend_trade {suspended}"));
        Ok(r)
    })
}

// ---------------------------------------------------------------------------------------------
// Calendar, assets
// ---------------------------------------------------------------------------------------------

fn calendar_judge<'a>(from: NaiveDate, to: NaiveDate) -> Judge<'a> {
    Box::new(move |body: &Value| {
        let days = parse_calendar_answer(&body.to_string())?;
        let data = body.as_array().map(Vec::as_slice).unwrap_or_default();
        let mut r = Reading::default();
        let mut used = vec![0; data.len()];
        let wall = |e: &Value, field: &str| {
            text(e, field).and_then(|t| NaiveTime::parse_from_str(t.trim(), "%H:%M").ok())
        };
        let mut seen = BTreeSet::new();
        for day in &days {
            r.lines.push(format!(
                "day {} {}–{} settles {:?}",
                day.date, day.open, day.close, day.settlement_date
            ));
            let date = day.date.format("%Y-%m-%d").to_string();
            let found = (0..data.len()).find(|&i| {
                used[i] == 0
                    && text(&data[i], "date").map(str::trim) == Some(date.as_str())
                    && wall(&data[i], "open") == Some(day.open)
                    && wall(&data[i], "close") == Some(day.close)
            });
            let Some(i) = found else {
                r.wrong.push(format!(
                    "day {date} {}–{} is not in the answer",
                    day.open, day.close
                ));
                continue;
            };
            used[i] += 1;
            let settles = text(&data[i], "settlement_date")
                .and_then(|t| NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d").ok());
            // An absent or unreadable settlement date is none on both sides (informational).
            r.agree(
                &format!("day {date}"),
                "settlement_date",
                day.settlement_date.map(|d| d.to_string()),
                settles.map(|d| d.to_string()),
            );
            if day.date < from || day.date > to {
                r.handle("a day outside the window: not compared");
            }
            if !seen.insert(day.date) {
                r.handle("a repeated day: the first is compared");
            }
        }
        every_element_once(&mut r, &used, "day");
        // The base's days agree with avwap's calendar and no variant alters the first copy of a
        // day in the window: any mismatch concluded is one the answer does not have.
        for mismatch in compare(&days, from, to) {
            r.wrong
                .push(format!("the calendar check concludes: {mismatch}"));
        }
        Ok(r)
    })
}

/// Whether our asset parser can read this element (the fields and types `WireAsset` needs).
fn asset_readable(e: &Value) -> bool {
    ["symbol", "class", "exchange", "status"]
        .iter()
        .all(|f| text(e, f).is_some())
        && e.get("tradable").is_some_and(Value::is_boolean)
        && e.get("name").is_none_or(|n| n.is_null() || n.is_string())
}

fn asset_eligible(e: &Value) -> bool {
    asset_readable(e)
        && text(e, "status").is_some_and(|s| s.eq_ignore_ascii_case("active"))
        && text(e, "class").is_some_and(|c| c.eq_ignore_ascii_case("us_equity"))
        && text(e, "exchange")
            .is_some_and(|x| LISTED_EXCHANGES.iter().any(|l| x.eq_ignore_ascii_case(l)))
        && e["tradable"] == json!(true)
}

fn assets_judge<'a>(name: &'static str, base_symbol: &'static str) -> Judge<'a> {
    Box::new(move |body: &Value| {
        let s = parse_assets_answer(&body.to_string())?;
        let data = body.as_array().map(Vec::as_slice).unwrap_or_default();
        let mut r = Reading::default();
        for m in &s.members {
            r.lines.push(format!("member {} {:?}", m.symbol, m.name));
            let from = data.iter().find(|e| {
                asset_eligible(e) && text(e, "symbol").map(str::trim) == Some(m.symbol.as_str())
            });
            let Some(e) = from else {
                r.wrong.push(format!(
                    "{} is kept, but the answer has no active, tradable, listed us_equity asset {}",
                    m.symbol, m.symbol
                ));
                continue;
            };
            r.agree_or_default(
                name,
                &format!("asset {}", m.symbol),
                "name",
                m.name.clone(),
                text(e, "name").map(|n| n.trim().to_string()),
            );
            if m.symbol != base_symbol {
                r.handle("another asset, read as sent");
            }
        }
        let excluded = s.excluded_inactive
            + s.excluded_not_tradable
            + s.excluded_class.values().sum::<usize>()
            + s.excluded_exchange.values().sum::<usize>()
            + s.duplicates
            + s.unreadable;
        if s.listed != data.len() || s.members.len() + excluded != data.len() {
            r.wrong.push(format!(
                "the answer has {} assets; listed {}, kept {}, excluded {excluded}",
                data.len(),
                s.listed,
                s.members.len()
            ));
        }
        let base_kept = s.members.iter().any(|m| m.symbol == base_symbol);
        let base_eligible = data
            .iter()
            .any(|e| asset_eligible(e) && text(e, "symbol") == Some(base_symbol));
        if base_eligible && !base_kept {
            r.wrong.push(format!(
                "{base_symbol} is an active, tradable, listed us_equity asset, yet not kept"
            ));
        }
        for (n, how) in [
            (s.excluded_inactive, "excluded: not active"),
            (s.excluded_not_tradable, "excluded: not tradable"),
            (s.excluded_class.values().sum(), "excluded: another class"),
            (
                s.excluded_exchange.values().sum(),
                "excluded: not a listed exchange",
            ),
            (s.duplicates, "a repeated asset: the first is kept"),
            (s.unreadable, "an unreadable asset: excluded and counted"),
        ] {
            if n > 0 {
                r.handle(how);
            }
        }
        r.lines.push(format!(
            "listed {}, inactive {}, not tradable {}, class {:?}, exchange {:?}, duplicates {}, unreadable {}",
            s.listed,
            s.excluded_inactive,
            s.excluded_not_tradable,
            s.excluded_class,
            s.excluded_exchange,
            s.duplicates,
            s.unreadable
        ));
        Ok(r)
    })
}

// ---------------------------------------------------------------------------------------------
// Market data
// ---------------------------------------------------------------------------------------------

const REQUESTED: [&str; 2] = ["AXTA", "CCE"];

fn bars_judge<'a>(base: Value) -> Judge<'a> {
    Box::new(move |body: &Value| {
        let page = parse_bars_answer(&body.to_string(), &REQUESTED)?;
        let map = body.get("bars").and_then(Value::as_object);
        let base_map = base.get("bars").and_then(Value::as_object);
        let mut r = Reading::default();
        let mut seen = BTreeSet::new();
        for (symbol, bars) in &page.bars {
            seen.insert(symbol.clone());
            if !REQUESTED.contains(&symbol.as_str()) {
                r.wrong.push(format!(
                    "bars of {symbol}, which was not requested, are read"
                ));
            }
            let Some(list) = map.and_then(|m| m.get(symbol)).and_then(Value::as_array) else {
                r.wrong
                    .push(format!("bars of {symbol} are read, the answer has none"));
                continue;
            };
            if list.len() != bars.len() {
                r.wrong.push(format!(
                    "{symbol}: {} bars read, the answer has {}",
                    bars.len(),
                    list.len()
                ));
            }
            for (bar, e) in bars.iter().zip(list) {
                let what = format!("bar {symbol} {}", bar.t);
                r.agree(&what, "t", Some(bar.t.to_rfc3339()), time_at(e, "t"));
                for (field, concluded) in [
                    ("o", bar.o),
                    ("h", bar.h),
                    ("l", bar.l),
                    ("c", bar.c),
                    ("v", bar.v),
                ] {
                    r.agree(
                        &what,
                        field,
                        Some(concluded.to_string()),
                        number_at(e, field),
                    );
                }
                r.lines.push(format!(
                    "bar {symbol} {} o {} h {} l {} c {} v {}",
                    bar.t, bar.o, bar.h, bar.l, bar.c, bar.v
                ));
            }
            let base_len = base_map
                .and_then(|m| m.get(symbol))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if list.len() > base_len {
                r.handle("an extra bar, read as sent (the daily and 10-minute reads date and de-duplicate it)");
            }
        }
        for (symbol, n) in &page.unrequested {
            seen.insert(symbol.clone());
            r.lines.push(format!("unrequested {symbol} {n}"));
            let answer = map.and_then(|m| m.get(symbol));
            if REQUESTED.contains(&symbol.as_str()) || answer.is_none() {
                r.wrong
                    .push(format!("{symbol} counted as unrequested ({n} bars)"));
            }
            let count = answer.and_then(Value::as_array).map_or(0, Vec::len) as u64;
            r.agree(
                &format!("unrequested {symbol}"),
                "bar count",
                Some(n.to_string()),
                Some(count.to_string()),
            );
            r.handle("an unrequested symbol: ignored and counted");
        }
        for symbol in map.into_iter().flat_map(|m| m.keys()) {
            if !seen.contains(symbol) {
                r.wrong.push(format!(
                    "the bars of {symbol} are gone: neither read nor counted"
                ));
            }
        }
        for symbol in REQUESTED {
            let in_base = base_map.is_some_and(|m| m.contains_key(symbol));
            if in_base && !seen.contains(symbol) {
                r.handle("an omitted symbol: without data, counted against coverage");
            }
        }
        r.agree(
            "the page",
            "next_page_token",
            page.next_page_token.clone(),
            text(body, "next_page_token").map(str::to_string),
        );
        if page.next_page_token.is_none() {
            r.handle("no next_page_token: the last page");
        }
        r.lines
            .push(format!("next page token {:?}", page.next_page_token));
        Ok(r)
    })
}

/// Values of a trade's `u` (update) that void it (spec `stock_trade.u`).
const VOIDED: [&str; 2] = ["canceled", "incorrect"];

fn trades_judge<'a>(name: &'static str, base: Value) -> Judge<'a> {
    Box::new(move |body: &Value| {
        let trades = parse_latest_trades_answer(&body.to_string())?;
        let map = body.get("trades").and_then(Value::as_object);
        let mut r = Reading::default();
        let mut symbols: Vec<&String> = trades.keys().collect();
        symbols.sort();
        for symbol in symbols {
            let (t, p) = trades[symbol];
            r.lines.push(format!("trade {symbol} {t} at {p}"));
            let Some(e) = map.and_then(|m| m.get(symbol)) else {
                r.wrong
                    .push(format!("a trade of {symbol} is read, the answer has none"));
                continue;
            };
            let what = format!("trade {symbol}");
            r.agree(&what, "t", Some(t.to_rfc3339()), time_at(e, "t"));
            r.agree(&what, "p", Some(p.to_string()), number_at(e, "p"));
            if let Some(update) = text(e, "u").filter(|u| VOIDED.contains(u)) {
                r.wrong.push(format!(
                    "{what} is {update} (u), yet taken as the latest price"
                ));
            }
            if !REQUESTED.contains(&symbol.as_str()) {
                r.handle("an unrequested symbol: the snapshot reads only those requested");
            }
        }
        for (symbol, e) in map.into_iter().flatten() {
            if trades.contains_key(symbol) {
                continue;
            }
            let price = e.get("p").and_then(Value::as_f64);
            if price.is_none_or(|p| !p.is_finite() || p <= 0.0) {
                r.handle("no usable price: the last bar's close is used");
            } else if text(e, "u").is_some_and(|u| VOIDED.contains(&u)) {
                r.handle("a canceled or incorrect trade: the last bar's close is used");
            } else {
                r.wrong.push(format!(
                    "the trade of {symbol} is gone: neither read nor refused"
                ));
            }
        }
        let base_has = base.get("trades").is_some_and(Value::is_object);
        if map.is_none() && base_has {
            if default_allowed(name, "trades", "{}") {
                r.handle("default trades = \"{}\"");
            } else {
                r.wrong
                    .push("an answer without trades read as no trades".to_string());
            }
        }
        Ok(r)
    })
}

// ---------------------------------------------------------------------------------------------
// The operations we use, with realistic bases
// ---------------------------------------------------------------------------------------------

const OUR_ENTRY: &str = "avw-20261130-AXTA-en-1";
const OUR_STOP: &str = "avw-20261130-AXTA-st1-1";
const OUR_NEW_STOP: &str = "avw-20261130-AXTA-st2-1";

/// Our order as Alpaca answers it, every field the spec has.
fn our_order(client_order_id: &str, overrides: Value) -> Value {
    merged(
        json!({
            "id": "61e69015-8549-4bfd-b9c3-01e75843f47d",
            "client_order_id": client_order_id,
            "created_at": "2026-11-30T15:00:00.123456Z",
            "updated_at": "2026-11-30T15:00:00.123456Z",
            "submitted_at": "2026-11-30T15:00:00.2Z",
            "filled_at": null,
            "expired_at": null,
            "expires_at": "2026-11-30T21:00:00Z",
            "canceled_at": null,
            "failed_at": null,
            "replaced_at": null,
            "replaced_by": null,
            "replaces": null,
            "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
            "symbol": "AXTA",
            "asset_class": "us_equity",
            "notional": null,
            "qty": "100",
            "filled_qty": "0",
            "filled_avg_price": null,
            "order_class": "simple",
            "order_type": "limit",
            "type": "limit",
            "side": "buy",
            "position_intent": "buy_to_open",
            "time_in_force": "day",
            "limit_price": "33.2",
            "stop_price": null,
            "status": "new",
            "extended_hours": false,
            "legs": null,
            "trail_percent": null,
            "trail_price": null,
            "hwm": null,
            "ratio_qty": null,
        }),
        &overrides,
    )
}

fn our_stop(client_order_id: &str, id: &str) -> Value {
    our_order(
        client_order_id,
        json!({
            "id": id, "side": "sell", "type": "stop", "order_type": "stop",
            "time_in_force": "gtc", "limit_price": null, "stop_price": "31.55",
            "position_intent": "sell_to_close", "expires_at": "2027-02-28T21:00:00Z",
        }),
    )
}

/// Whole answers that are other orders than the one asked about.
fn other_orders(spec: &Value, schema: &Value) -> Vec<(&'static str, Value)> {
    let other = |overrides: Value| overlaid(spec, schema, &our_order(OUR_ENTRY, overrides));
    vec![
        (
            "another strategy's AAPL order",
            other(json!({
                "id": "7d3f0a6e-2b1c-4e5f-8a9b-0c1d2e3f4a5b", "client_order_id": "ext-aapl-1",
                "symbol": "AAPL", "limit_price": "190.1",
            })),
        ),
        (
            "a crypto order",
            other(json!({
                "id": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", "client_order_id": "c0ffee-eth-1",
                "symbol": "ETH/USD", "asset_class": "crypto", "qty": "0.02", "type": "market",
                "order_type": "market", "time_in_force": "gtc", "limit_price": null,
            })),
        ),
        (
            "our own order for another symbol",
            other(json!({
                "id": "3e2d1c0b-9a8f-4e7d-6c5b-4a3f2e1d0c9b",
                "client_order_id": "avw-20261130-CCE-en-1", "symbol": "CCE", "limit_price": "60.2",
            })),
        ),
    ]
}

fn operations<'a>(trading: &'a Value, data: &'a Value) -> Vec<Operation<'a>> {
    let mut ops = Vec::new();
    let op = |name: &'static str, spec: &'a Value, overlay: Value| {
        let (method, path) = name.split_once(' ').unwrap_or(("GET", name));
        let (schema, example) = response_schema(spec, method, path);
        let overlay = match example {
            Some(example) => merged(example, &overlay),
            None => overlay,
        };
        let base = overlaid(spec, &schema, &overlay);
        (schema, base)
    };

    // GET /v2/account: the numbers sizing needs, the flags startup checks.
    let name = "GET /v2/account";
    let (schema, base) = op(
        name,
        trading,
        json!({
            "id": "2d5f8b3e-7a61-4c0e-9f2a-3b4c5d6e7f80", "account_number": "PA3Z0V5NBDXX",
            "status": "ACTIVE", "crypto_status": "ACTIVE", "currency": "USD",
            "equity": "100000", "buying_power": "200000", "cash": "100000",
            "trade_suspended_by_user": false, "trading_blocked": false, "account_blocked": false,
        }),
    );
    ops.push(Operation {
        name,
        spec: trading,
        schema,
        base,
        expect_base: vec!["account equity 100000 buying power 200000, suspended false, trading blocked false, account blocked false, number Some(\"PA3Z0V5NBDXX\"), status Some(\"ACTIVE\")".into()],
        foreign: vec![],
        extras: vec![],
        judge: account_judge(name),
    });

    // GET /v2/clock: Monday 2026-11-30, open.
    let name = "GET /v2/clock";
    let (schema, base) = op(
        name,
        trading,
        json!({
            "timestamp": "2026-11-30T10:15:22-05:00", "is_open": true,
            "next_open": "2026-12-01T09:30:00-05:00", "next_close": "2026-11-30T16:00:00-05:00",
        }),
    );
    ops.push(Operation {
        name,
        spec: trading,
        schema,
        base,
        expect_base: vec![
            "clock 2026-11-30 15:15:22 UTC open true next open 2026-12-01 14:30:00 UTC next close 2026-11-30 21:00:00 UTC".into(),
        ],
        foreign: vec![],
        extras: vec![],
        judge: clock_judge(),
    });

    // GET /v2/positions: our AXTA position.
    let name = "GET /v2/positions";
    let (schema, base) = op(
        name,
        trading,
        json!([{
            "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415", "symbol": "AXTA",
            "exchange": "NYSE", "asset_class": "us_equity", "asset_marginable": true,
            "qty": "100", "qty_available": "0", "avg_entry_price": "33.10", "side": "long",
            "market_value": "3400", "cost_basis": "3310", "unrealized_pl": "90",
            "unrealized_plpc": "0.0272", "unrealized_intraday_pl": "50",
            "unrealized_intraday_plpc": "0.0149", "current_price": "34",
            "lastday_price": "33.5", "change_today": "0.0149",
        }]),
    );
    ops.push(Operation {
        name,
        spec: trading,
        schema,
        base,
        expect_base: vec!["position AXTA qty 100 avg 33.1".into()],
        foreign: vec![
            foreign(
                "$",
                "a crypto position",
                json!({
                    "asset_id": "276e2673-764b-4ab6-a611-caf665ca6340", "symbol": "BTCUSD",
                    "exchange": "", "asset_class": "crypto", "qty": "0.0123",
                    "avg_entry_price": "60000.5", "side": "long",
                }),
            ),
            foreign(
                "$",
                "a short in another symbol",
                json!({
                    "asset_id": "8ccae427-5dd0-45b3-b5fe-7ba5e422c766", "symbol": "CCE",
                    "exchange": "NYSE", "asset_class": "us_equity", "qty": "-50",
                    "avg_entry_price": "60.00", "side": "short",
                }),
            ),
        ],
        extras: vec![],
        judge: positions_judge("AXTA", parse_positions),
    });

    // GET /v2/orders (status=open): our protective stop.
    let name = "GET /v2/orders";
    let (schema, base) = op(
        name,
        trading,
        json!([our_stop(OUR_STOP, "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d")]),
    );
    ops.push(Operation {
        name,
        spec: trading,
        schema,
        base,
        expect_base: vec![format!(
            "order {OUR_STOP} (id 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d) AXTA sell 100 filled 0 stop gtc new, limit None, stop Some(\"31.55\"), avg None, replaced by None"
        )],
        foreign: vec![
            foreign(
                "$",
                "another account's trailing stop",
                json!({
                    "id": "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9", "client_order_id": "9c1b-trail-77",
                    "symbol": "AAPL", "side": "sell", "type": "trailing_stop",
                    "order_type": "trailing_stop", "time_in_force": "gtc", "qty": "10",
                    "filled_qty": "0", "trail_percent": "5", "hwm": "190.5", "stop_price": "181",
                    "limit_price": null, "notional": null, "status": "new",
                    "created_at": "2026-11-27T15:00:00Z", "legs": null,
                }),
            ),
            foreign(
                "$",
                "a notional crypto order",
                json!({
                    "id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "client_order_id": "c0ffee-eth-2",
                    "symbol": "ETH/USD", "asset_class": "crypto", "side": "buy", "type": "market",
                    "order_type": "market", "time_in_force": "gtc", "qty": null,
                    "notional": "500", "filled_qty": "0", "status": "pending_new",
                    "limit_price": null, "stop_price": null, "legs": null,
                }),
            ),
            foreign(
                "$",
                "another strategy's limit order",
                our_order(
                    "ext-20261130-1",
                    json!({
                        "id": "6f5e4d3c-2b1a-4098-a7b6-c5d4e3f2a1b0", "symbol": "CCE",
                        "qty": "5", "limit_price": "60",
                    }),
                ),
            ),
        ],
        extras: vec![],
        judge: order_list_judge(),
    });

    // POST /v2/orders: our entry, acknowledged.
    let name = "POST /v2/orders";
    let (schema, base) = op(name, trading, our_order(OUR_ENTRY, json!({})));
    let extras = other_orders(trading, &schema);
    ops.push(Operation {
        name,
        spec: trading,
        schema,
        base,
        expect_base: vec![format!(
            "order {OUR_ENTRY} (id 61e69015-8549-4bfd-b9c3-01e75843f47d) AXTA buy 100 filled 0 limit day new, limit Some(\"33.2\"), stop None, avg None, replaced by None"
        )],
        foreign: vec![],
        extras,
        judge: single_order_judge(ExpectedOrder {
            client_order_id: OUR_ENTRY,
            symbol: "AXTA",
            side: Side::Buy,
            qty: Some(Decimal::from(100)),
            order_type: Some(OrderType::Limit),
        }),
    });

    // GET /v2/orders:by_client_order_id: our entry, partly filled.
    let name = "GET /v2/orders:by_client_order_id";
    let (schema, base) = op(
        name,
        trading,
        our_order(
            OUR_ENTRY,
            json!({
                "status": "partially_filled", "filled_qty": "40", "filled_avg_price": "33.105",
                "updated_at": "2026-11-30T15:03:00Z",
            }),
        ),
    );
    let extras = other_orders(trading, &schema);
    ops.push(Operation {
        name,
        spec: trading,
        schema,
        base,
        expect_base: vec![format!(
            "order {OUR_ENTRY} (id 61e69015-8549-4bfd-b9c3-01e75843f47d) AXTA buy 100 filled 40 limit day partially_filled, limit Some(\"33.2\"), stop None, avg Some(\"33.105\"), replaced by None"
        )],
        foreign: vec![],
        extras,
        // A lookup fixes the id, symbol and side, not what a replace may change.
        judge: single_order_judge(ExpectedOrder {
            client_order_id: OUR_ENTRY,
            symbol: "AXTA",
            side: Side::Buy,
            qty: None,
            order_type: None,
        }),
    });

    // PATCH /v2/orders/{order_id}: our stop replaced by a new one.
    let name = "PATCH /v2/orders/{order_id}";
    let mut new_stop = our_stop(OUR_NEW_STOP, "c4d5e6f7-a8b9-4c0d-9e1f-2a3b4c5d6e7f");
    new_stop["status"] = json!("accepted");
    new_stop["replaces"] = json!("9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d");
    let (schema, base) = op(name, trading, new_stop);
    let mut extras = other_orders(trading, &schema);
    let mut old = our_stop(OUR_STOP, "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d");
    old["status"] = json!("replaced");
    old["replaced_by"] = json!("c4d5e6f7-a8b9-4c0d-9e1f-2a3b4c5d6e7f");
    extras.push((
        "the replaced order itself",
        overlaid(trading, &schema, &old),
    ));
    ops.push(Operation {
        name,
        spec: trading,
        schema,
        base,
        expect_base: vec![format!(
            "order {OUR_NEW_STOP} (id c4d5e6f7-a8b9-4c0d-9e1f-2a3b4c5d6e7f) AXTA sell 100 filled 0 stop gtc accepted, limit None, stop Some(\"31.55\"), avg None, replaced by None"
        )],
        foreign: vec![],
        extras,
        judge: single_order_judge(ExpectedOrder {
            client_order_id: OUR_NEW_STOP,
            symbol: "AXTA",
            side: Side::Sell,
            qty: Some(Decimal::from(100)),
            order_type: Some(OrderType::Stop),
        }),
    });

    // PATCH /v2/account/configurations: new orders suspended.
    let name = "PATCH /v2/account/configurations";
    let (schema, base) = op(
        name,
        trading,
        json!({
            "suspend_trade": true, "dtbp_check": "entry", "pdt_check": "entry",
            "max_margin_multiplier": "4", "trade_confirm_email": "all", "no_shorting": false,
            "fractional_trading": true, "max_options_trading_level": 0,
        }),
    );
    ops.push(Operation {
        name,
        spec: trading,
        schema,
        base,
        expect_base: vec!["suspend_trade true".into()],
        foreign: vec![],
        extras: vec![],
        judge: suspend_judge(),
    });

    // GET /v2/calendar for 2026-11-25..=2026-12-01: Thanksgiving closed, the day after early.
    let name = "GET /v2/calendar";
    let day = |date: &str, close: &str, session_close: &str, settles: &str| {
        json!({"date": date, "open": "09:30", "close": close, "session_open": "0400",
               "session_close": session_close, "settlement_date": settles})
    };
    let (schema, base) = op(
        name,
        trading,
        json!([
            day("2026-11-25", "16:00", "2000", "2026-11-27"),
            day("2026-11-27", "13:00", "1700", "2026-11-30"),
            day("2026-11-30", "16:00", "2000", "2026-12-01"),
            day("2026-12-01", "16:00", "2000", "2026-12-02"),
        ]),
    );
    let from = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let to = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    ops.push(Operation {
        name,
        spec: trading,
        schema,
        base,
        expect_base: vec![
            "day 2026-11-25 09:30:00–16:00:00 settles Some(2026-11-27)".into(),
            "day 2026-11-27 09:30:00–13:00:00 settles Some(2026-11-30)".into(),
            "day 2026-11-30 09:30:00–16:00:00 settles Some(2026-12-01)".into(),
            "day 2026-12-01 09:30:00–16:00:00 settles Some(2026-12-02)".into(),
        ],
        foreign: vec![
            foreign(
                "$",
                "a day after the window",
                day("2026-12-02", "16:00", "2000", "2026-12-03"),
            ),
            foreign(
                "$",
                "a repeated day with other hours",
                day("2026-11-30", "13:00", "1700", "2026-12-01"),
            ),
        ],
        extras: vec![],
        judge: calendar_judge(from, to),
    });

    // GET /v2/assets (status=active, asset_class=us_equity): one NYSE stock.
    let name = "GET /v2/assets";
    let asset = |symbol: &str, name: &str, class: &str, exchange: &str, status: &str| {
        json!({
            "id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "class": class, "exchange": exchange,
            "symbol": symbol, "name": name, "status": status, "tradable": true,
            "marginable": true, "shortable": true, "easy_to_borrow": true, "fractionable": true,
            "borrow_status": "easy_to_borrow", "attributes": ["has_options"], "cusip": "G0750C108",
            "maintenance_margin_requirement": 30, "margin_requirement_long": "30",
            "margin_requirement_short": "100",
        })
    };
    let (schema, base) = op(
        name,
        trading,
        json!([asset(
            "AXTA",
            "Axalta Coating Systems Ltd.",
            "us_equity",
            "NYSE",
            "active"
        )]),
    );
    ops.push(Operation {
        name,
        spec: trading,
        schema,
        base,
        expect_base: vec![
            "member AXTA \"Axalta Coating Systems Ltd.\"".into(),
            "listed 1, inactive 0, not tradable 0, class {}, exchange {}, duplicates 0, unreadable 0".into(),
        ],
        foreign: vec![
            foreign(
                "$",
                "an OTC asset",
                asset("ABCDF", "Abcd Holdings ADR", "us_equity", "OTC", "active"),
            ),
            // Alpaca lists crypto pairs on exchange CRYPTO (not in the spec's enum).
            foreign(
                "$",
                "a crypto asset",
                asset("BTC/USD", "Bitcoin / US Dollar", "crypto", "CRYPTO", "active"),
            ),
            foreign(
                "$",
                "an inactive asset",
                asset("OLDX", "Old Co.", "us_equity", "NYSE", "inactive"),
            ),
            foreign(
                "$",
                "the same asset again",
                asset(
                    "AXTA",
                    "Axalta Coating Systems Ltd.",
                    "us_equity",
                    "NYSE",
                    "active",
                ),
            ),
        ],
        extras: vec![],
        judge: assets_judge(name, "AXTA"),
    });

    // GET /v2/stocks/bars for AXTA and CCE (daily; 10-minute bars have the same schema and
    // parser): two sessions of AXTA, one of CCE, another page to come.
    let name = "GET /v2/stocks/bars";
    let bar = |t: &str, c: f64| json!({"t": t, "o": 33.0, "h": 34.2, "l": 32.8, "c": c, "v": 1_204_311, "n": 9_876, "vw": 33.61});
    let (schema, base) = op(
        name,
        data,
        json!({
            "bars": {
                "AXTA": [bar("2026-11-27T05:00:00Z", 33.5), bar("2026-11-30T05:00:00Z", 34.0)],
                "CCE": [bar("2026-11-30T05:00:00Z", 60.25)],
            },
            "next_page_token": "QVhUQXxEfDIwMjYtMTEtMzBUMDU6MDA6MDBa",
            "currency": "USD",
        }),
    );
    ops.push(Operation {
        name,
        spec: data,
        schema,
        expect_base: vec![
            "bar AXTA 2026-11-27 05:00:00 UTC o 33 h 34.2 l 32.8 c 33.5 v 1204311".into(),
            "bar AXTA 2026-11-30 05:00:00 UTC o 33 h 34.2 l 32.8 c 34 v 1204311".into(),
            "bar CCE 2026-11-30 05:00:00 UTC o 33 h 34.2 l 32.8 c 60.25 v 1204311".into(),
            "next page token Some(\"QVhUQXxEfDIwMjYtMTEtMzBUMDU6MDA6MDBa\")".into(),
        ],
        foreign: vec![
            Foreign {
                at: "$.bars",
                label: "a symbol not requested",
                key: Some("ZZZZ"),
                value: json!([bar("2026-11-30T05:00:00Z", 12.5)]),
            },
            foreign(
                "$.bars{}",
                "a bar before the window",
                bar("2026-11-20T05:00:00Z", 31.0),
            ),
        ],
        extras: vec![],
        judge: bars_judge(base.clone()),
        base,
    });

    // GET /v2/stocks/trades/latest for AXTA and CCE.
    let name = "GET /v2/stocks/trades/latest";
    let trade = |t: &str, p: f64| {
        json!({"t": t, "p": p, "s": 100, "i": 52_983_525_029_461_u64, "x": "N", "c": ["@"],
               "z": "A", "u": LEFT_OUT})
    };
    let (schema, base) = op(
        name,
        data,
        json!({
            "trades": {
                "AXTA": trade("2026-11-30T15:59:58.123456789Z", 34.01),
                "CCE": trade("2026-11-30T15:59:59.5Z", 60.3),
            },
            "currency": "USD",
        }),
    );
    let mut extras = Vec::new();
    for (label, update) in [
        ("AXTA's latest trade canceled", "canceled"),
        ("AXTA's latest trade incorrect", "incorrect"),
        ("AXTA's latest trade a correction", "corrected"),
    ] {
        let mut answer = base.clone();
        answer["trades"]["AXTA"]["u"] = json!(update);
        extras.push((label, answer));
    }
    ops.push(Operation {
        name,
        spec: data,
        schema,
        expect_base: vec![
            "trade AXTA 2026-11-30 15:59:58.123456789 UTC at 34.01".into(),
            "trade CCE 2026-11-30 15:59:59.500 UTC at 60.3".into(),
        ],
        foreign: vec![Foreign {
            at: "$.trades",
            label: "a symbol not requested",
            key: Some("ZZZZ"),
            value: trade("2026-11-30T15:59:57Z", 12.5),
        }],
        extras,
        judge: trades_judge(name, base.clone()),
        base,
    });
    ops
}

#[test]
#[ignore = "needs ../shared/reference/alpaca/{trading-api,market-data-api}.json (or \
            AVWAP_ALPACA_TRADING_SPEC / AVWAP_ALPACA_MARKET_DATA_SPEC)"]
fn every_answer_the_spec_allows_is_handled_or_refused() {
    let trading = contract::load_spec(Api::Trading);
    let data = contract::load_spec(Api::MarketData);
    let ops = operations(&trading, &data);

    // Every operation whose answer we read is walked (a cancel's answer is not read).
    let walked: BTreeSet<&str> = ops.iter().map(|op| op.name).collect();
    for op in contract::CONTRACT {
        let name = format!("{} {}", op.method, op.path);
        assert!(
            op.method == "DELETE" || walked.contains(name.as_str()),
            "{name} ({}) is in the request contract but not walked here",
            op.name
        );
    }

    let mut total = Tally::default();
    let mut lines = Vec::new();
    let mut unused_defaults: BTreeSet<(&str, &str, &str)> = DEFAULTS.iter().copied().collect();
    for op in &ops {
        let tally = walk_operation(op);
        lines.push(tally.line(op.name));
        unused_defaults.retain(|(name, field, value)| {
            *name != op.name
                || !tally
                    .documented
                    .contains_key(&format!("default {field} = {value:?}"))
        });
        total.add(&tally);
    }
    lines.push(total.line("total"));
    println!("{}", lines.join("\n"));
    assert!(
        total.wrong.is_empty(),
        "{} wrong conclusions:\n{}",
        total.wrong.len(),
        total.wrong.join("\n")
    );
    // The allow-list holds only defaults some answer needs.
    assert!(
        unused_defaults.is_empty(),
        "DEFAULTS entries no variant needed: {unused_defaults:?}"
    );
}

/// A parser that takes a position without `qty` for a flat one: the walker must say so.
fn qty_defaults_to_zero(body: &str) -> Result<PositionList, WireError> {
    let items: Vec<Value> = serde_json::from_str(body).map_err(|e| WireError(e.to_string()))?;
    let mut list = PositionList::default();
    for item in items {
        let number = |field: &str| {
            text(&item, field)
                .and_then(|t| t.parse::<Decimal>().ok())
                .unwrap_or_default()
        };
        list.positions.push(Position {
            symbol: text(&item, "symbol").unwrap_or("?").to_string(),
            qty: number("qty"),
            avg_entry_price: number("avg_entry_price"),
        });
    }
    Ok(list)
}

#[test]
fn the_walker_catches_a_wrong_conclusion() {
    let spec = json!({"components": {"schemas": {"Position": {
        "type": "object",
        "required": ["symbol"],
        "properties": {
            "symbol": {"type": "string", "example": "AAPL"},
            "qty": {"type": "string", "nullable": true},
            "avg_entry_price": {"type": "string"},
            "side": {"type": "string", "enum": ["long", "short"]},
        },
    }}}});
    let schema = json!({"type": "array", "items": {"$ref": "#/components/schemas/Position"}});
    let base = overlaid(
        &spec,
        &schema,
        &json!([{"symbol": "AXTA", "qty": "100", "avg_entry_price": "33.10", "side": "long"}]),
    );
    let walk = |parse: PositionsParser| {
        walk_operation(&Operation {
            name: "GET /v2/positions (inline schema)",
            spec: &spec,
            schema: schema.clone(),
            base: base.clone(),
            expect_base: vec!["position AXTA qty 100 avg 33.1".into()],
            foreign: vec![],
            extras: vec![],
            judge: positions_judge("AXTA", parse),
        })
    };

    let honest = walk(parse_positions);
    assert!(honest.wrong.is_empty(), "{:#?}", honest.wrong);
    assert!(honest.all().variants >= 8, "{honest:?}");
    assert!(
        honest
            .documented
            .contains_key("unreadable position: reported, its symbol held back"),
        "{honest:?}"
    );

    let careless = walk(qty_defaults_to_zero);
    for variant in ["absent qty of $[0]", "null $[0].qty"] {
        assert!(
            careless
                .wrong
                .iter()
                .any(|w| w.contains(variant) && w.contains("qty concluded Some(\"0\")")),
            "{variant}: {:#?}",
            careless.wrong
        );
    }
}
