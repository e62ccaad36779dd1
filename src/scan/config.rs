//! `[scan]` configuration: every threshold of the strategy, each defaulting to the
//! predecessor's reference value (upstream-scanner.md §3–4), so nothing is hard-coded.

use crate::scan::anchors::AnchorParams;
use crate::scan::indicators::TrendScoreParams;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanConfig {
    /// Rows kept in the watchlist after ranking.
    pub max_candidates: usize,
    /// Fail the scan (and keep the old list) when fewer than this fraction of the universe has
    /// a bar for the last session before the scan date.
    pub min_coverage: f64,
    /// Calendar days of history read before the data date. Fixed so that indicators with
    /// long memory (Wilder's ADX) give the same value whatever the store holds.
    pub history_days: i64,
    /// Optional `Symbol,Name,Sector` (or `Symbol,Sector`) CSV giving each symbol's sector;
    /// symbols without one get "Unknown". Relative paths are inside the state directory.
    pub sectors_file: String,
    pub universe: UniverseConfig,
    pub regime: RegimeConfig,
    pub liquidity: LiquidityConfig,
    pub gates: GateThresholds,
    pub anchors: AnchorParams,
    pub selection: SelectionConfig,
    pub stop: StopConfig,
    pub trend_score: TrendScoreParams,
    pub context: ContextConfig,
    pub compat: CompatConfig,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            max_candidates: 20,
            min_coverage: 0.9,
            history_days: 730,
            sectors_file: String::new(),
            universe: UniverseConfig::default(),
            regime: RegimeConfig::default(),
            liquidity: LiquidityConfig::default(),
            gates: GateThresholds::default(),
            anchors: AnchorParams::default(),
            selection: SelectionConfig::default(),
            stop: StopConfig::default(),
            trend_score: TrendScoreParams::default(),
            context: ContextConfig::default(),
            compat: CompatConfig::default(),
        }
    }
}

impl ScanConfig {
    /// The sectors file, if configured, resolved against the state directory.
    pub fn sectors_path(&self, state_dir: &std::path::Path) -> Option<PathBuf> {
        (!self.sectors_file.is_empty()).then(|| state_dir.join(&self.sectors_file))
    }
}

/// `[scan.universe]`: where `--provider alpaca` gets the Russell 3000 members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UniverseConfig {
    /// iShares IWV holdings (raw or a cleaned `Ticker,Name,Sector,Weight` file): a URL or a
    /// path (relative to the state directory). The last good copy is cached in the state
    /// directory and used when this source fails.
    pub source: String,
    /// A holdings file with fewer equity rows than this is refused (an error page, a cut file).
    pub min_members: usize,
}

impl Default for UniverseConfig {
    fn default() -> Self {
        Self {
            source: "https://www.ishares.com/us/products/239714/ishares-russell-3000-etf/1467271812596.ajax?fileType=csv&fileName=IWV_holdings&dataType=fund".to_string(),
            min_members: 1000,
        }
    }
}

/// What to do when the regime benchmark has no usable data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MissingBenchmark {
    /// Fail the scan; the previous watchlist stays and the gate keeps execution down.
    Error,
    /// Write an empty watchlist (no trades today).
    EmptyList,
    /// Scan without the regime filter; recorded in scan.json.
    SkipRegime,
}

/// `[scan.regime]`: the market-regime filter (benchmark close above its SMA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegimeConfig {
    /// Benchmark symbol, or `equal-weight` for an equal-weight index of the scanned universe.
    pub benchmark: String,
    pub sma_len: usize,
    pub on_missing_benchmark: MissingBenchmark,
}

/// The `benchmark` value that selects the equal-weight index of the universe.
pub const EQUAL_WEIGHT_BENCHMARK: &str = "equal-weight";

impl Default for RegimeConfig {
    fn default() -> Self {
        Self {
            benchmark: "SPY".to_string(),
            sma_len: 200,
            on_missing_benchmark: MissingBenchmark::Error,
        }
    }
}

/// `[scan.liquidity]`: the liquidity snapshot, measured on the bars up to the data date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiquidityConfig {
    /// Calendar days before the data date that count as "recent".
    pub window_calendar_days: i64,
    pub min_bars_in_window: usize,
    /// Bars averaged for volume and dollar volume.
    pub average_bars: usize,
    pub min_avg_volume: f64,
    pub min_avg_dollar_volume: f64,
    pub min_price: f64,
}

impl Default for LiquidityConfig {
    fn default() -> Self {
        Self {
            window_calendar_days: 45,
            min_bars_in_window: 15,
            average_bars: 20,
            min_avg_volume: 750_000.0,
            min_avg_dollar_volume: 10_000_000.0,
            min_price: 3.0,
        }
    }
}

/// `[scan.gates]`: per-symbol history, trend and volatility gates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateThresholds {
    /// Bars required (the 120-bar ATR% median needs 133 in practice).
    pub min_bars: usize,
    /// Weekly SMA alignment applies from this many daily bars and weeks.
    pub weekly_min_bars: usize,
    pub weekly_min_weeks: usize,
    pub weekly_sma_fast: usize,
    pub weekly_sma_slow: usize,
    /// Tier A: close > SMA(fast) ≥ SMA(slow).
    pub tier_sma_fast: usize,
    pub tier_sma_slow: usize,
    pub atr_len: usize,
    pub min_atr_dollars: f64,
    pub max_atr_pct: f64,
    pub atr_pct_median_window: usize,
    /// ATR% now must be ≤ its own median times this.
    pub max_atr_pct_vs_median: f64,
}

impl Default for GateThresholds {
    fn default() -> Self {
        Self {
            min_bars: 133,
            weekly_min_bars: 200,
            weekly_min_weeks: 40,
            weekly_sma_fast: 10,
            weekly_sma_slow: 40,
            tier_sma_fast: 20,
            tier_sma_slow: 50,
            atr_len: 14,
            min_atr_dollars: 0.50,
            max_atr_pct: 6.0,
            atr_pct_median_window: 120,
            max_atr_pct_vs_median: 1.0,
        }
    }
}

/// `[scan.selection]`: choosing the best anchor per symbol and scoring it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelectionConfig {
    pub avwap_slope_lookback: usize,
    /// Minimum fractional AVWAP change over the lookback (−0.03 = −3%).
    pub min_avwap_slope: f64,
    pub slope_bypass_on_reclaim: bool,
    /// Maximum distance of the close above the AVWAP, percent.
    pub max_dist_pct: f64,
    pub trend_score_weight: f64,
    pub near_bonus_min_dist_pct: f64,
    pub near_bonus_max_dist_pct: f64,
    pub near_bonus: f64,
    pub reclaim_bonus: f64,
}

impl Default for SelectionConfig {
    fn default() -> Self {
        Self {
            avwap_slope_lookback: 5,
            min_avwap_slope: -0.03,
            slope_bypass_on_reclaim: true,
            max_dist_pct: 6.0,
            trend_score_weight: 1.5,
            near_bonus_min_dist_pct: 0.1,
            near_bonus_max_dist_pct: 1.5,
            near_bonus: 50.0,
            reclaim_bonus: 40.0,
        }
    }
}

/// `[scan.stop]`: stop = min(SMA(sma_len), lowest low of low_lookback bars) × buffer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StopConfig {
    pub sma_len: usize,
    pub low_lookback: usize,
    pub buffer: f64,
}

impl Default for StopConfig {
    fn default() -> Self {
        Self {
            sma_len: 5,
            low_lookback: 5,
            buffer: 0.997,
        }
    }
}

/// `[scan.context]`: the setup-context labels written to the watchlist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContextConfig {
    pub vwap_lookback: usize,
    pub control_buffer_pct: f64,
    pub acceptance_bars: usize,
    pub balanced_pct: f64,
    pub extended_pct: f64,
    pub gap_reset_lookback: usize,
    /// Gap size for the gap-reset label, percent.
    pub gap_reset_pct: f64,
    pub gap_reset_window: usize,
    pub structure_sma_fast: usize,
    pub structure_sma_slow: usize,
    pub structure_slope_lookback: usize,
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self {
            vwap_lookback: 20,
            control_buffer_pct: 0.2,
            acceptance_bars: 3,
            balanced_pct: 1.0,
            extended_pct: 6.0,
            gap_reset_lookback: 60,
            gap_reset_pct: 4.0,
            gap_reset_window: 5,
            structure_sma_fast: 20,
            structure_sma_slow: 50,
            structure_slope_lookback: 5,
        }
    }
}

/// `[scan.compat]`: migration check mode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompatConfig {
    /// Reproduce the predecessor's two deviations so its watchlist can be compared with ours on
    /// the same data: YTD and MTD anchored at the first available bar, and the gap-reset label
    /// computed with the percent value used as a fraction (so it never fires). Off by default.
    pub predecessor: bool,
}
