//! `compute` against the independent implementation: `tools/backtest_metrics.py` (pandas and
//! empyrical-reloaded; versions in its header) computed `golden_metrics.json` from the
//! fixture `tests/data/backtest/{equity,trades}.csv` (written by `tools/backtest_fixture.py`).
//! Numbers agree to 1e-9 relative (1e-12 absolute near zero); counts, dates, labels and nulls
//! exactly; both sides name the same metrics. Regenerate the golden file with the script
//! rather than editing it.

use super::super::*;
use crate::performance::csv::{read_equity_csv, read_trades_csv};
use serde_json::Value;
use std::collections::BTreeMap;

const EQUITY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/backtest/equity.csv"
));
const TRADES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/backtest/trades.csv"
));
const GOLDEN: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/backtest/golden_metrics.json"
));

const REL_TOL: f64 = 1e-9;
const ABS_TOL: f64 = 1e-12;

fn flatten(value: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(v, &format!("{prefix}{k}."), out);
            }
        }
        other => {
            out.insert(prefix.trim_end_matches('.').to_string(), other.clone());
        }
    }
}

/// A number, whether JSON holds it as a number or (a `Decimal`) as a string.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Why `ours` does not match `golden`, if it does not.
fn mismatch(ours: &Value, golden: &Value) -> Option<String> {
    let agree = match (ours, golden) {
        (Value::Null, Value::Null) => true,
        (Value::Number(a), Value::Number(b)) if a.is_u64() && b.is_u64() => a == b,
        (Value::String(a), Value::String(b)) if a.parse::<f64>().is_err() => a == b,
        _ => match (number(ours), number(golden)) {
            (Some(a), Some(b)) => (a - b).abs() <= ABS_TOL.max(REL_TOL * b.abs()),
            _ => false,
        },
    };
    (!agree).then(|| format!("ours {ours}, golden {golden}"))
}

#[test]
fn metrics_equal_the_independent_implementation() {
    let golden: Value = serde_json::from_str(GOLDEN).unwrap();
    let starting_equity =
        Decimal::from_str_exact(golden["starting_equity"].as_str().unwrap()).unwrap();
    let label = golden["benchmark_label"].as_str().unwrap();
    let equity = read_equity_csv(EQUITY.as_bytes()).unwrap();
    let trips = read_trades_csv(TRADES.as_bytes()).unwrap();
    assert_eq!((equity.len(), trips.len()), (120, 40));

    let metrics = compute(starting_equity, &equity, &trips, label);
    let (mut ours, mut theirs) = (BTreeMap::new(), BTreeMap::new());
    flatten(&serde_json::to_value(&metrics).unwrap(), "", &mut ours);
    flatten(&golden["metrics"], "", &mut theirs);
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "both sides name the same metrics"
    );
    let differences: Vec<String> = ours
        .iter()
        .filter_map(|(key, value)| mismatch(value, &theirs[key]).map(|why| format!("{key}: {why}")))
        .collect();
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // Not vacuous: the fixture exercises every kind of value.
    assert!(ours.values().filter(|v| v.is_null()).count() >= 2);
    assert!(ours.len() > 50, "{} metrics", ours.len());
}

#[test]
fn the_comparison_notices_a_difference() {
    assert!(mismatch(&Value::from(1.0), &Value::from(1.0 + 2e-9)).is_some());
    assert!(mismatch(&Value::from("102502.4103"), &Value::from(102502.4103)).is_none());
    assert!(mismatch(&Value::from(3u64), &Value::from(4u64)).is_some());
    assert!(mismatch(&Value::Null, &Value::from(0.0)).is_some());
    assert!(mismatch(&Value::from("2010-03-01"), &Value::from("2010-03-02")).is_some());
}
