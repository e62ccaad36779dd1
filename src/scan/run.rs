//! The scan pipeline: plan the sessions (scan date, data date, history window), stream every
//! symbol's bars from a [`BarSource`], validate, evaluate, apply the regime, rank and cap. It
//! reads no clock and writes no file; the binary and [`crate::scan::output`] do that.
//!
//! Coverage counts only symbols that have a bar for the data date *and* were evaluated without
//! an internal error: a symbol whose evaluation panicked is a failure (reported), not a
//! symbol that merely found no setup. Below `scan.min_coverage` the scan fails, so a scan where
//! every symbol fails never produces an empty watchlist that looks like "no candidates today".
//!
//! The universe is what the scan was asked to cover, not what the source happened to return:
//! a source restricted to a universe ([`BarSource::universe`]) counts every member, and a
//! member with no bars at all (a provider answer may omit symbols) is uncovered and reported.

use crate::calendar::{self, CalendarError};
use crate::fsutil::excerpt;
use crate::market_data::{validate_series, BarSeries, DailyBar, DefectCounts};
use crate::scan::config::{MissingBenchmark, ScanConfig, EQUAL_WEIGHT_BENCHMARK};
use crate::scan::indicators::sma;
use crate::scan::select::{evaluate, rank_and_cap, Candidate, Rejection};
use chrono::{Duration, NaiveDate};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

/// Where bars come from: the SQLite store, CSV files held in memory, later Alpaca.
pub trait BarSource {
    /// What this source is, for scan.json and messages (no secrets).
    fn describe(&self) -> String;
    /// Call `visit` once per symbol with its bars dated in `[start, end]`. Bars dated after
    /// `end` must not be read at all: this is what makes `--as-of` free of lookahead.
    fn for_each_symbol(
        &mut self,
        start: NaiveDate,
        end: NaiveDate,
        visit: &mut dyn FnMut(&str, Vec<DailyBar>),
    ) -> Result<(), SourceError>;
    /// The symbols the scan was asked to cover, when the source is restricted to a universe
    /// (the benchmark may be among them; it is not counted). Each one counts in the coverage's
    /// denominator even when `for_each_symbol` never visits it. `None`: the universe is
    /// whatever the source enumerates.
    fn universe(&self) -> Option<Vec<String>> {
        None
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// In-memory bars keyed by symbol (the CSV provider and the demo).
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    pub label: String,
    pub bars: BTreeMap<String, Vec<DailyBar>>,
}

impl BarSource for MemorySource {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn for_each_symbol(
        &mut self,
        start: NaiveDate,
        end: NaiveDate,
        visit: &mut dyn FnMut(&str, Vec<DailyBar>),
    ) -> Result<(), SourceError> {
        for (symbol, bars) in &self.bars {
            let window: Vec<DailyBar> = bars
                .iter()
                .filter(|b| b.date >= start && b.date <= end)
                .copied()
                .collect();
            visit(symbol, window);
        }
        Ok(())
    }
}

/// Why the scan pipeline refused to produce a watchlist (the scan service wraps it with its
/// exit code).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{0}")]
    Calendar(#[from] CalendarError),
    #[error("{date} is not an NYSE session, so there is no watchlist to build for it")]
    NotASession { date: NaiveDate },
    #[error("cannot read bars from {source_name}: {error}")]
    Source {
        source_name: String,
        error: SourceError,
    },
    #[error("no bars at all in {source_name} up to {data_as_of}: import or fetch bars first (see README, 'Bar store')")]
    EmptySource {
        source_name: String,
        data_as_of: NaiveDate,
    },
    #[error("only {covered} of {universe} symbols ({pct:.1}%) have a bar for {data_as_of} and were evaluated without error, below the configured floor of {floor_pct:.1}% (scan.min_coverage): {why}. The previous watchlist was left in place.")]
    Coverage {
        covered: usize,
        universe: usize,
        /// Members of the universe the source had no bar at all for.
        without_bars: usize,
        pct: f64,
        floor_pct: f64,
        data_as_of: NaiveDate,
        /// What kept the others out (stale data, failed evaluations) and what to do.
        why: String,
    },
    #[error("regime benchmark {benchmark} has no usable bar for {data_as_of} ({reason}); import it, or set scan.regime.on_missing_benchmark to \"empty-list\" or \"skip-regime\" deliberately")]
    MissingBenchmark {
        benchmark: String,
        data_as_of: NaiveDate,
        reason: String,
    },
}

/// The sessions a scan works with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScanPlan {
    /// The session the watchlist is for.
    pub scan_date: NaiveDate,
    /// The last session whose bars are used: the one before `scan_date`.
    pub data_as_of: NaiveDate,
    /// The first calendar date of history read.
    pub history_start: NaiveDate,
}

impl ScanPlan {
    pub fn for_session(scan_date: NaiveDate, config: &ScanConfig) -> Result<Self, PipelineError> {
        if !calendar::is_session(scan_date)? {
            return Err(PipelineError::NotASession { date: scan_date });
        }
        let data_as_of = calendar::previous_session(scan_date)?;
        Ok(Self {
            scan_date,
            data_as_of,
            history_start: data_as_of - Duration::days(config.history_days),
        })
    }
}

/// The regime decision and what it was based on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regime {
    pub benchmark: String,
    /// "bullish", "bearish", "skipped" (configured) or "missing".
    pub state: &'static str,
    pub close: Option<f64>,
    pub sma: Option<f64>,
    pub note: Option<String>,
}

impl Regime {
    pub fn allows_entries(&self) -> bool {
        matches!(self.state, "bullish" | "skipped")
    }
}

/// A symbol the scan could not evaluate because of an internal error (never aborts the run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SymbolFailure {
    pub symbol: String,
    pub reason: String,
}

/// Everything a scan found.
#[derive(Debug, Clone, Serialize)]
pub struct ScanOutcome {
    pub plan: ScanPlan,
    pub source: String,
    /// The symbols the scan was asked to cover (the benchmark aside), with or without bars.
    pub universe: usize,
    /// Members of the universe the source had no bar at all for in the window, sorted.
    pub without_bars: Vec<String>,
    /// Symbols whose last bar is the data date.
    pub with_current_data: usize,
    /// Of those, the symbols evaluated without an internal error: what `min_coverage` judges.
    pub covered: usize,
    pub regime: Regime,
    /// Ranked and capped: what the watchlist holds.
    #[serde(skip)]
    pub candidates: Vec<Candidate>,
    /// Candidates before the cap (and before an unfavourable regime emptied the list).
    pub passed_gates: usize,
    /// When the regime forbids entries: the ranked, capped list it would otherwise have been
    /// (reported, never written to the watchlist).
    #[serde(skip)]
    pub held_back_by_regime: Vec<Candidate>,
    pub rejections: BTreeMap<&'static str, usize>,
    pub failures: Vec<SymbolFailure>,
    /// Data defects per symbol (only symbols with at least one).
    pub defects: BTreeMap<String, DefectCounts>,
    pub defect_totals: DefectCounts,
    pub bars_read: usize,
    pub load_and_compute_seconds: f64,
    /// The validated bars of each symbol in `candidates` and `held_back_by_regime`, by symbol:
    /// what `candidates.html` charts (the same bars the scan judged).
    #[serde(skip)]
    pub candidate_bars: BTreeMap<String, BarSeries>,
}

/// How one symbol is judged: a candidate or the reason it is not one.
type Evaluate<'a> = dyn Fn(&BarSeries, NaiveDate, &ScanConfig) -> Result<Candidate, Rejection> + 'a;

/// Run the scan over every symbol of `source`.
pub fn run_scan(
    source: &mut dyn BarSource,
    plan: &ScanPlan,
    config: &ScanConfig,
) -> Result<ScanOutcome, PipelineError> {
    run_scan_with(source, plan, config, &evaluate)
}

/// [`run_scan`] with the per-symbol evaluation injected (tests inject failures).
fn run_scan_with(
    source: &mut dyn BarSource,
    plan: &ScanPlan,
    config: &ScanConfig,
    evaluate: &Evaluate<'_>,
) -> Result<ScanOutcome, PipelineError> {
    let started = Instant::now();
    let benchmark = config.regime.benchmark.clone();
    let equal_weight = benchmark == EQUAL_WEIGHT_BENCHMARK;
    let mut state = PassState::default();

    let source_name = source.describe();
    let mut visited: HashSet<String> = HashSet::new();
    source
        .for_each_symbol(plan.history_start, plan.data_as_of, &mut |symbol, bars| {
            state.bars_read += bars.len();
            let (series, defects) = validate_series(symbol, bars);
            if defects.total() > 0 {
                state.defect_totals.add(&defects);
                state.defects.insert(symbol.to_string(), defects);
            }
            if symbol == benchmark {
                state.benchmark = Some(series);
                return;
            }
            state.universe += 1;
            visited.insert(symbol.to_string());
            if equal_weight {
                state.index.add(&series);
            }
            let current = series.last_date() == Some(plan.data_as_of);
            if current {
                state.with_current_data += 1;
            }
            // An indicator bug on one symbol's odd data (or an extreme setting) must not abort
            // the whole scan; it is counted as a failure, and a failed symbol is not covered.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                evaluate(&series, plan.data_as_of, config)
            }));
            match result {
                Ok(Ok(candidate)) => {
                    state.candidates.push(candidate);
                    state.candidate_bars.insert(symbol.to_string(), series);
                }
                Ok(Err(rejection)) => *state.rejections.entry(rejection).or_default() += 1,
                Err(payload) => {
                    let reason = format!(
                        "internal error while evaluating: {}",
                        panic_message(payload.as_ref())
                    );
                    tracing::warn!(symbol, "{reason}");
                    state.failures.push(SymbolFailure {
                        symbol: symbol.to_string(),
                        reason,
                    });
                    return;
                }
            }
            if current {
                state.covered += 1;
            }
        })
        .map_err(|error| PipelineError::Source {
            source_name: source_name.clone(),
            error,
        })?;
    if let Some(members) = source.universe() {
        let mut missing: Vec<String> = members
            .into_iter()
            .filter(|m| *m != benchmark && !visited.contains(m))
            .collect();
        missing.sort();
        missing.dedup();
        state.universe += missing.len();
        state.without_bars = missing;
    }

    if state.universe == 0 {
        return Err(PipelineError::EmptySource {
            source_name,
            data_as_of: plan.data_as_of,
        });
    }
    let coverage = state.covered as f64 / state.universe as f64;
    // A floor that is not a number must fail the scan, not pass every one.
    if coverage < config.min_coverage || config.min_coverage.is_nan() {
        return Err(PipelineError::Coverage {
            covered: state.covered,
            universe: state.universe,
            without_bars: state.without_bars.len(),
            pct: coverage * 100.0,
            floor_pct: config.min_coverage * 100.0,
            data_as_of: plan.data_as_of,
            why: coverage_shortfall(&state, plan.data_as_of),
        });
    }

    let regime = if equal_weight {
        regime_of(
            "equal-weight index of the universe",
            &state.index.levels(),
            config,
        )
    } else {
        match &state.benchmark {
            Some(series) if series.last_date() == Some(plan.data_as_of) => {
                regime_of(&benchmark, &series.close, config)
            }
            Some(series) => missing_regime(
                &benchmark,
                format!(
                    "its last bar is {}",
                    series
                        .last_date()
                        .map_or("absent".to_string(), |d| d.to_string())
                ),
            ),
            None => missing_regime(&benchmark, "it is not in the data".to_string()),
        }
    };
    if regime.state == "missing" {
        match config.regime.on_missing_benchmark {
            MissingBenchmark::Error => {
                return Err(PipelineError::MissingBenchmark {
                    benchmark,
                    data_as_of: plan.data_as_of,
                    reason: regime.note.clone().unwrap_or_default(),
                })
            }
            MissingBenchmark::EmptyList => {}
            MissingBenchmark::SkipRegime => {}
        }
    }
    let regime = match (regime.state, config.regime.on_missing_benchmark) {
        ("missing", MissingBenchmark::SkipRegime) => Regime {
            state: "skipped",
            ..regime
        },
        _ => regime,
    };

    let passed_gates = state.candidates.len();
    let ranked = rank_and_cap(state.candidates, config.max_candidates);
    let (candidates, held_back_by_regime) = if regime.allows_entries() {
        (ranked, Vec::new())
    } else {
        (Vec::new(), ranked)
    };
    let mut candidate_bars = state.candidate_bars;
    candidate_bars.retain(|symbol, _| {
        candidates
            .iter()
            .chain(&held_back_by_regime)
            .any(|c| c.symbol == *symbol)
    });
    let rejections = state
        .rejections
        .into_iter()
        .map(|(r, n)| (r.as_str(), n))
        .collect();
    Ok(ScanOutcome {
        plan: *plan,
        source: source_name,
        universe: state.universe,
        without_bars: state.without_bars,
        with_current_data: state.with_current_data,
        covered: state.covered,
        regime,
        candidates,
        passed_gates,
        held_back_by_regime,
        rejections,
        failures: state.failures,
        defects: state.defects,
        defect_totals: state.defect_totals,
        bars_read: state.bars_read,
        load_and_compute_seconds: started.elapsed().as_secs_f64(),
        candidate_bars,
    })
}

/// The text of a caught panic, bounded (a panic message may quote input).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
    match text {
        Some(text) => excerpt(text),
        None => "a panic without a message".to_string(),
    }
}

/// Why symbols are not covered, with what to do: stale data, failed evaluations or both.
fn coverage_shortfall(state: &PassState, data_as_of: NaiveDate) -> String {
    let mut parts = Vec::new();
    if !state.without_bars.is_empty() {
        let shown = &state.without_bars[..state.without_bars.len().min(4)];
        parts.push(format!(
            "{} have no bars at all (no bars returned for them up to {data_as_of}: {}{}): the data source does not know them, or its answer left part of the universe out",
            state.without_bars.len(),
            shown.join(", "),
            if state.without_bars.len() > shown.len() { ", …" } else { "" }
        ));
    }
    let stale = state.universe - state.without_bars.len() - state.with_current_data;
    if stale > 0 {
        parts.push(format!(
            "{stale} have no bar for {data_as_of} (the data is stale or incomplete: refresh it and re-run the scan)"
        ));
    }
    if let Some(first) = state.failures.first() {
        parts.push(format!(
            "{} failed with an internal error (first {}: {}; the log lists them all): check scan settings with extreme values, and report the error",
            state.failures.len(),
            first.symbol,
            first.reason
        ));
    }
    if parts.is_empty() {
        // Only a floor above 100% (or not a number) gets here.
        parts.push("the floor cannot be met; set scan.min_coverage between 0 and 1".to_string());
    }
    parts.join("; ")
}

#[derive(Default)]
struct PassState {
    universe: usize,
    without_bars: Vec<String>,
    with_current_data: usize,
    /// Symbols with a bar for the data date that were evaluated without an internal error.
    covered: usize,
    bars_read: usize,
    benchmark: Option<BarSeries>,
    index: EqualWeightIndex,
    candidates: Vec<Candidate>,
    /// The series of every symbol in `candidates` (moved, not copied; trimmed to the ranked
    /// list at the end).
    candidate_bars: BTreeMap<String, BarSeries>,
    rejections: BTreeMap<Rejection, usize>,
    failures: Vec<SymbolFailure>,
    defects: BTreeMap<String, DefectCounts>,
    defect_totals: DefectCounts,
}

fn missing_regime(benchmark: &str, reason: String) -> Regime {
    Regime {
        benchmark: benchmark.to_string(),
        state: "missing",
        close: None,
        sma: None,
        note: Some(reason),
    }
}

fn regime_of(benchmark: &str, closes: &[f64], config: &ScanConfig) -> Regime {
    let close = closes.last().copied();
    let sma_now = sma(closes, config.regime.sma_len).last().copied();
    match (close, sma_now) {
        (Some(c), Some(s)) if !s.is_nan() => Regime {
            benchmark: benchmark.to_string(),
            state: if c > s { "bullish" } else { "bearish" },
            close: Some(c),
            sma: Some(s),
            note: None,
        },
        _ => missing_regime(
            benchmark,
            format!("fewer than {} bars for its SMA", config.regime.sma_len),
        ),
    }
}

/// An equal-weight index of every scanned symbol: each day's level moves by the mean of the
/// symbols' returns from their previous bar. Used as the regime benchmark when no index
/// symbol is available (the demo data set has no SPY). Labelled as such in scan.json.
#[derive(Debug, Default)]
pub struct EqualWeightIndex {
    returns: HashMap<NaiveDate, (f64, usize)>,
    dates: BTreeMap<NaiveDate, ()>,
}

impl EqualWeightIndex {
    pub fn add(&mut self, series: &BarSeries) {
        for i in 0..series.len() {
            self.dates.insert(series.dates[i], ());
            if i == 0 {
                continue;
            }
            let r = series.close[i] / series.close[i - 1] - 1.0;
            if r.is_finite() {
                let slot = self.returns.entry(series.dates[i]).or_insert((0.0, 0));
                slot.0 += r;
                slot.1 += 1;
            }
        }
    }

    /// Index levels (starting at 100) for every date any symbol traded, ascending.
    pub fn levels(&self) -> Vec<f64> {
        self.dated_levels().into_iter().map(|(_, l)| l).collect()
    }

    /// [`Self::levels`] with their dates (a backtest's benchmark curve).
    pub fn dated_levels(&self) -> Vec<(NaiveDate, f64)> {
        let mut level = 100.0;
        self.dates
            .keys()
            .map(|date| {
                if let Some((sum, count)) = self.returns.get(date) {
                    level *= 1.0 + sum / *count as f64;
                }
                (*date, level)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market_data::synthetic::SyntheticMarket;
    use crate::scan::demo::demo_config;
    use crate::scan::select::evaluate;

    /// A clean synthetic market of 40 symbols ending on the data date of the 2026-11-30 scan.
    fn source_and_plan() -> (MemorySource, ScanPlan, ScanConfig) {
        let config = demo_config(&ScanConfig::default());
        let plan =
            ScanPlan::for_session(NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(), &config).unwrap();
        let market = SyntheticMarket {
            seed: 14,
            symbols: 40,
            sessions: 300,
            last_session: plan.data_as_of,
            defect_fraction: 0.0,
        };
        let dates = market.session_dates().unwrap();
        let bars = (0..market.symbols)
            .map(|i| (SyntheticMarket::symbol_name(i), market.bars(i, &dates)))
            .collect();
        let source = MemorySource {
            label: "synthetic".to_string(),
            bars,
        };
        (source, plan, config)
    }

    /// An evaluation that panics for the symbols `fails` picks, as an indicator bug or an
    /// extreme setting would, and evaluates the others normally.
    fn failing_for(
        fails: impl Fn(&str) -> bool,
    ) -> impl Fn(&BarSeries, NaiveDate, &ScanConfig) -> Result<Candidate, Rejection> {
        move |series, as_of, config| {
            if fails(&series.symbol) {
                panic!("injected failure for {}", series.symbol);
            }
            evaluate(series, as_of, config)
        }
    }

    /// A source restricted to a universe, like the bar store under `--provider alpaca`: members
    /// without bars are never visited.
    struct Restricted {
        inner: MemorySource,
        members: Vec<String>,
    }

    impl BarSource for Restricted {
        fn describe(&self) -> String {
            self.inner.describe()
        }

        fn for_each_symbol(
            &mut self,
            start: NaiveDate,
            end: NaiveDate,
            visit: &mut dyn FnMut(&str, Vec<DailyBar>),
        ) -> Result<(), SourceError> {
            self.inner.for_each_symbol(start, end, visit)
        }

        fn universe(&self) -> Option<Vec<String>> {
            Some(self.members.clone())
        }
    }

    #[test]
    fn members_without_any_bar_count_against_coverage() {
        let (source, plan, config) = source_and_plan();
        let with_bars: Vec<String> = source.bars.keys().cloned().collect();
        let restricted = |missing: usize| {
            let mut members = with_bars.clone();
            members.extend((0..missing).map(|i| format!("NOBAR{i:03}")));
            // The benchmark is not a member, whether or not it has bars.
            members.push(config.regime.benchmark.clone());
            Restricted {
                inner: source.clone(),
                members,
            }
        };

        // 40 with bars of 400 members: 10%, and the message names the missing ones.
        let err = run_scan(&mut restricted(360), &plan, &config).unwrap_err();
        assert!(
            matches!(
                err,
                PipelineError::Coverage {
                    covered: 40,
                    universe: 400,
                    without_bars: 360,
                    ..
                }
            ),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains("only 40 of 400 symbols"), "{message}");
        assert!(
            message.contains(
                "360 have no bars at all (no bars returned for them up to 2026-11-27: NOBAR000, NOBAR001, NOBAR002, NOBAR003, …)"
            ),
            "{message}"
        );
        assert!(!message.contains("stale"), "{message}");

        // 4 missing of 44 (90.9%) meet the 90% floor; they are reported, never covered.
        let outcome = run_scan(&mut restricted(4), &plan, &config).unwrap();
        assert_eq!(outcome.universe, 44);
        assert_eq!(
            outcome.without_bars,
            ["NOBAR000", "NOBAR001", "NOBAR002", "NOBAR003"]
        );
        assert_eq!((outcome.with_current_data, outcome.covered), (40, 40));
    }

    #[test]
    fn a_clean_scan_covers_every_symbol() {
        let (mut source, plan, config) = source_and_plan();
        let outcome = run_scan(&mut source, &plan, &config).unwrap();
        assert_eq!(outcome.universe, 40);
        assert_eq!(outcome.with_current_data, 40);
        assert_eq!(outcome.covered, 40);
        assert!(outcome.failures.is_empty());
    }

    #[test]
    fn every_symbol_failing_is_a_coverage_error_not_an_empty_watchlist() {
        let (mut source, plan, config) = source_and_plan();
        let err = run_scan_with(&mut source, &plan, &config, &failing_for(|_| true)).unwrap_err();
        match &err {
            PipelineError::Coverage {
                covered, universe, ..
            } => assert_eq!((*covered, *universe), (0, 40)),
            other => panic!("{other}"),
        }
        let message = err.to_string();
        assert!(
            message.contains("only 0 of 40 symbols (0.0%) have a bar for"),
            "{message}"
        );
        assert!(
            message.contains("40 failed with an internal error (first "),
            "{message}"
        );
        assert!(message.contains("injected failure for"), "{message}");
        assert!(message.contains("scan.min_coverage"), "{message}");
        assert!(
            message.ends_with("The previous watchlist was left in place."),
            "{message}"
        );
    }

    #[test]
    fn failures_count_against_coverage() {
        // 1 of 40 (2.5%) failing stays above the 90% floor and is reported.
        let (mut source, plan, config) = source_and_plan();
        let first = SyntheticMarket::symbol_name(0);
        let outcome =
            run_scan_with(&mut source, &plan, &config, &failing_for(|s| s == first)).unwrap();
        assert_eq!((outcome.with_current_data, outcome.covered), (40, 39));
        assert_eq!(outcome.failures.len(), 1);
        assert_eq!(outcome.failures[0].symbol, first);
        assert!(
            outcome.failures[0]
                .reason
                .starts_with("internal error while evaluating: \"injected failure for"),
            "{:?}",
            outcome.failures[0]
        );

        // 5 of 40 (12.5%) failing is below it, although every symbol has current data.
        let (mut source, plan, config) = source_and_plan();
        let five: Vec<String> = (0..5).map(SyntheticMarket::symbol_name).collect();
        let err = run_scan_with(
            &mut source,
            &plan,
            &config,
            &failing_for(|s| five.iter().any(|f| f == s)),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                PipelineError::Coverage {
                    covered: 35,
                    universe: 40,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("stale"), "{err}");
    }
}
