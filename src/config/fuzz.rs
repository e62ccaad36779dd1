//! Fuzzing the configuration loader: arbitrary bytes, and the documented example with values
//! replaced by extreme numbers, strings, arrays and tables, keys dropped or added, and bytes
//! edited. Whatever the input, [`Config::from_toml`] must not panic; what it accepts must lie
//! inside every range (checked here against the typed fields, independently of
//! [`super::limits`]) and drive the execution phases without panicking; what it refuses must
//! say so in a bounded message that never shows a secret written as a value.
//!
//! `cargo test` runs a few hundred cases of each kind (proptest); the ignored
//! `fuzz_a_million_cases` runs at least 1,000,000 and prints the count and the time:
//! `cargo test --release --lib config::fuzz -- --ignored --nocapture`.

use super::{Config, ConfigError};
use crate::execution::phases;
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::path::Path;
use std::str::FromStr;

/// Written as a value by the structured mutations: must never appear in an error.
const CANARY: &str = "PKCANARYzq8Xw3vLsecret0123456789";

/// The documented example: every key, every section.
const EXAMPLE: &str = include_str!("../../examples/avwap.toml");

/// A small deterministic generator (xorshift64*), so proptest and the long run share the case
/// generators and a failing case is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Every leaf of `table` as a path of keys.
fn leaf_paths(table: &toml::Table, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    for (key, value) in table {
        prefix.push(key.clone());
        match value {
            toml::Value::Table(t) => leaf_paths(t, prefix, out),
            _ => out.push(prefix.clone()),
        }
        prefix.pop();
    }
}

fn table_at<'a>(table: &'a mut toml::Table, path: &[String]) -> Option<&'a mut toml::Table> {
    let mut current = table;
    for key in path {
        current = current.get_mut(key)?.as_table_mut()?;
    }
    Some(current)
}

/// Mostly a value of `original`'s type (so many cases get past the type check and reach the
/// ranges), sometimes of any type.
fn odd_value_like(rng: &mut Rng, original: Option<&toml::Value>) -> toml::Value {
    use toml::Value;
    let kinds: &[usize] = match original {
        _ if rng.below(3) == 0 => &[],
        Some(Value::Integer(_)) => &[0, 1, 2, 2, 2],
        Some(Value::Float(_)) => &[3, 4, 5, 5, 5],
        // The decimal keys are strings; so are the URLs and names.
        Some(Value::String(_)) => &[6, 6, 7, 8],
        _ => &[],
    };
    if kinds.is_empty() {
        odd_value(rng, None)
    } else {
        let kind = *rng.pick(kinds);
        odd_value(rng, Some(kind))
    }
}

/// An extreme or odd value: of generator `kind`, or of any.
fn odd_value(rng: &mut Rng, kind: Option<usize>) -> toml::Value {
    use toml::Value;
    match kind.unwrap_or_else(|| rng.below(12)) {
        0 => Value::Integer(*rng.pick(&[
            i64::MIN,
            i64::MAX,
            i64::MIN + 1,
            -1,
            0,
            1,
            2,
            59,
            390,
            391,
            2500,
            2501,
            1 << 53,
            u32::MAX as i64,
            u32::MAX as i64 + 1,
        ])),
        1 => Value::Integer(rng.next() as i64),
        2 => Value::Integer((rng.next() % 3000) as i64 - 10),
        3 => Value::Float(*rng.pick(&[
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::EPSILON,
            -0.0,
            0.0,
            1.0,
            1.0000001,
            1e300,
            -1e300,
            0.05,
            0.0500001,
            100.0,
            100.5,
        ])),
        4 => Value::Float(f64::from_bits(rng.next())),
        5 => Value::Float((rng.next() % 2_000_000) as f64 / 10_000.0 - 20.0),
        // Decimal-looking strings: the decimal keys are strings in the file.
        6 if rng.below(2) == 0 => {
            Value::String(format!("{}", (rng.next() % 2_000_000) as f64 / 10_000.0))
        }
        6 => Value::String(
            rng.pick(&[
                "79228162514264337593543950335",
                "-79228162514264337593543950335",
                "79228162514264337593543950336",
                "0.0000000000000000000000000001",
                "1e400",
                "-1e-400",
                "5",
                "0.05",
                "0.0500000000000000000000000001",
                "0",
                "-0",
                "NaN",
                "inf",
                "1_000",
                "",
                " 1",
            ])
            .to_string(),
        ),
        7 => Value::String(CANARY.to_string()),
        8 => Value::String(format!("{CANARY}\n\"'`, expected {CANARY}")),
        9 => Value::Array(vec![Value::String(CANARY.to_string()), Value::Integer(1)]),
        10 => {
            let mut t = toml::Table::new();
            t.insert("k".to_string(), Value::String(CANARY.to_string()));
            Value::Table(t)
        }
        _ => Value::Boolean(rng.below(2) == 0),
    }
}

/// A case built from the example: values replaced (`canary_safe` stays true: the canary can
/// only be a value), keys dropped or added; then, for some cases, bytes edited (the canary may
/// then land anywhere, so `canary_safe` is false).
struct Case {
    text: String,
    canary_safe: bool,
}

fn mutated_example(rng: &mut Rng) -> Case {
    let mut table: toml::Table = toml::from_str(EXAMPLE).unwrap_or_default();
    let mut paths = Vec::new();
    leaf_paths(&table, &mut Vec::new(), &mut paths);
    let edits = 1 + rng.below(4);
    for _ in 0..edits {
        let path = rng.pick(&paths).clone();
        let (key, parent) = path.split_last().unwrap_or((&path[0], &[]));
        let Some(t) = table_at(&mut table, parent) else {
            continue;
        };
        match rng.below(10) {
            0 => {
                t.remove(key);
            }
            1 => {
                t.insert(format!("{key}_x"), odd_value(rng, None));
            }
            _ => {
                let value = odd_value_like(rng, t.get(key));
                t.insert(key.clone(), value);
            }
        }
    }
    // NaN and infinities have TOML forms; a value TOML cannot write is simply skipped.
    let mut text = toml::to_string(&table).unwrap_or_else(|_| EXAMPLE.to_string());
    let mut canary_safe = true;
    if rng.below(3) == 0 {
        canary_safe = false;
        edit_bytes(rng, &mut text);
    }
    Case { text, canary_safe }
}

/// Up to a few byte-level edits: delete, duplicate or insert TOML's structural characters.
fn edit_bytes(rng: &mut Rng, text: &mut String) {
    let mut bytes = std::mem::take(text).into_bytes();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(4) {
            0 if at < bytes.len() => {
                let end = (at + 1 + rng.below(8)).min(bytes.len());
                bytes.drain(at..end);
            }
            1 if at < bytes.len() => {
                let b = bytes[at];
                bytes.insert(at, b);
            }
            _ => {
                let b = *rng.pick(b"\"'[]{}=,.\n#\\ -+_eE09xu\t\r\x00\xff");
                bytes.insert(at.min(bytes.len()), b);
            }
        }
    }
    *text = String::from_utf8_lossy(&bytes).into_owned();
}

/// Arbitrary bytes (as the file reader would refuse non-UTF-8, the loader sees them lossily).
fn random_bytes(rng: &mut Rng) -> String {
    let len = rng.below(300);
    let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Everything an accepted configuration must satisfy, checked on the typed fields (not through
/// `limits`), and that it drives the execution phases without a panic.
fn assert_within_ranges(c: &Config) {
    let e = &c.execution;
    let positive_at_most = |d: Decimal, max: i64| d > Decimal::ZERO && d <= Decimal::from(max);
    assert!(e.risk_per_trade > Decimal::ZERO && e.risk_per_trade <= Decimal::new(5, 2));
    assert!(e.trim_fraction >= Decimal::ZERO && e.trim_fraction <= Decimal::ONE);
    assert!(
        e.max_entry_drift_pct >= Decimal::ZERO && e.max_entry_drift_pct <= Decimal::ONE_HUNDRED
    );
    assert!(positive_at_most(e.max_risk_pct, 100));
    assert!(e.entry_slippage_bps >= Decimal::ZERO && e.entry_slippage_bps <= Decimal::from(500));
    assert!(positive_at_most(e.max_gross_notional, 1_000_000_000));
    assert!(positive_at_most(e.max_notional_per_symbol, 1_000_000_000));
    assert!(positive_at_most(e.sim_starting_cash, 1_000_000_000));
    assert!((0..390).contains(&e.entry_start_minutes_after_open));
    assert!((0..390).contains(&e.entry_end_minutes_before_close));
    assert!(e.entry_start_minutes_after_open + e.entry_end_minutes_before_close < 390);
    assert!((1..=390).contains(&e.max_bar_age_minutes));
    assert!((1..=600).contains(&e.poll_seconds_open));
    assert!((1..=3600).contains(&e.poll_seconds_closed));
    assert!((1..=600).contains(&e.cycle_deadline_seconds));
    assert!((5..=3600).contains(&e.unknown_outcome_grace_seconds));
    assert!((1..=100).contains(&e.max_positions) && (1..=100).contains(&e.max_entries_per_day));
    let s = &c.scan;
    assert!(s.min_coverage > 0.0 && s.min_coverage <= 1.0);
    assert!((30..=3660).contains(&s.history_days));
    assert!((1..=366).contains(&s.liquidity.window_calendar_days));
    assert!((1..=1000).contains(&s.max_candidates));
    for v in [
        s.liquidity.min_avg_volume,
        s.liquidity.min_avg_dollar_volume,
        s.liquidity.min_price,
        s.gates.min_atr_dollars,
        s.gates.max_atr_pct,
        s.anchors.gap_fraction,
        s.selection.min_avwap_slope,
        s.stop.buffer,
        s.trend_score.slope_weight,
        s.context.gap_reset_pct,
    ] {
        assert!(v.is_finite(), "{v}");
    }
    for n in [
        s.regime.sma_len,
        s.gates.min_bars,
        s.gates.atr_len,
        s.anchors.lookback,
        s.selection.avwap_slope_lookback,
        s.stop.sma_len,
        s.trend_score.adx_len,
        s.context.vwap_lookback,
        s.liquidity.average_bars,
    ] {
        assert!((1..=2500).contains(&n), "{n}");
    }
    assert!(s.stop.buffer > 0.0 && s.stop.buffer <= 1.0);
    assert!(c.alerts.rate_limit_minutes <= 1440);
    assert!((1..=10_000).contains(&c.alpaca.requests_per_minute));
    let feeds = ["sip", "iex", "boats", "otc"];
    assert!(
        feeds.contains(&c.alpaca.feed.as_str()) && feeds.contains(&c.alpaca.intraday_feed.as_str())
    );
    assert!(["raw", "split", "dividend", "all"].contains(&c.alpaca.adjustment.as_str()));
    assert!(super::limits::check(c).is_empty());
    // The arithmetic the service does with them, on a regular day and an early close.
    for at in [
        "2026-11-30T14:29:00Z",
        "2026-11-30T20:59:00Z",
        "2026-11-27T17:00:00Z",
    ] {
        let now = chrono::DateTime::<chrono::Utc>::from_str(at).unwrap_or_default();
        let _ = phases::phase(now, e);
        let _ = phases::poll_interval(now, e);
    }
}

/// One case: no panic (the caller catches it), accepted ⇒ within ranges, refused ⇒ a bounded
/// message without the canary (when it can only have been a value).
fn run_case(case: &Case) -> bool {
    match Config::from_toml(&case.text, Path::new("fuzz.toml")) {
        Ok(config) => {
            assert_within_ranges(&config);
            true
        }
        Err(error) => {
            let text = error.to_string();
            // Our schema's longest "expected one of" list and ten setting problems fit easily.
            assert!(text.len() <= 3000, "{} bytes: {text}", text.len());
            assert!(matches!(
                error,
                ConfigError::Parse { .. } | ConfigError::Setting { .. }
            ));
            if case.canary_safe {
                assert!(!text.contains(CANARY), "{text}\n--- input:\n{}", case.text);
            }
            false
        }
    }
}

fn case_of(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    match rng.below(4) {
        0 => Case {
            text: random_bytes(&mut rng),
            canary_safe: true,
        },
        _ => mutated_example(&mut rng),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = run_case(&Case { text: String::from_utf8_lossy(&bytes).into_owned(), canary_safe: true });
    }

    #[test]
    fn toml_like_text_never_panics(text in "[a-z_.\\[\\]=\"' 0-9\n#{},-]{0,300}") {
        let _ = run_case(&Case { text, canary_safe: true });
    }

    #[test]
    fn mutated_examples_never_panic_and_stay_in_range(seed in any::<u64>()) {
        let _ = run_case(&mutated_example(&mut Rng::new(seed)));
    }
}

#[test]
fn the_example_itself_passes() {
    assert!(run_case(&Case {
        text: EXAMPLE.to_string(),
        canary_safe: true,
    }));
}

/// At least 1,000,000 cases (a quarter random bytes, the rest mutated examples), each under
/// `catch_unwind` so a panic is counted, not fatal; prints the count, panics and time.
#[test]
#[ignore = "long: run with --release -- --ignored --nocapture"]
fn fuzz_a_million_cases() {
    let cases: u64 = std::env::var("AVWAP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = std::env::var("AVWAP_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_130);
    // Quiet: a panicking case is reported once below, not with a backtrace per case.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let started = std::time::Instant::now();
    let (mut accepted, mut failed) = (0u64, Vec::new());
    for i in 0..cases {
        let case_seed = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9));
        let case = case_of(case_seed);
        let outcome = std::panic::catch_unwind(|| run_case(&case));
        match outcome {
            Ok(true) => accepted += 1,
            Ok(false) => {}
            Err(_) => failed.push(case_seed),
        }
    }
    std::panic::set_hook(hook);
    let elapsed = started.elapsed();
    println!(
        "config fuzz: {cases} cases ({accepted} accepted, {} refused) in {:.1} s ({:.0} cases/s); {} failed{}",
        cases - accepted - failed.len() as u64,
        elapsed.as_secs_f64(),
        cases as f64 / elapsed.as_secs_f64(),
        failed.len(),
        failed
            .first()
            .map(|s| format!(" (first: case seed {s}, replayed below)"))
            .unwrap_or_default()
    );
    if let Some(seed) = failed.first() {
        let _ = run_case(&case_of(*seed)); // shows the failure
    }
    assert!(failed.is_empty());
}
