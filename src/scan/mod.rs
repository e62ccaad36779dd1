//! The scanner: indicators, anchors and AVWAP, per-symbol gates and selection, setup-context
//! labels, ranking, the scan pipeline and its outputs.
//!
//! - [`indicators`]: SMA, ATR, slope, ADX, TrendScore, rolling quantiles, weekly closes, pivots.
//! - [`anchors`]: the six anchors, anchored VWAP and its σ bands, rolling VWAP.
//! - [`select`]: per-symbol gates, stop, best anchor, ranking.
//! - [`context`]: setup-context labels.
//! - [`run`]: the pipeline over a bar source; [`output`]: files and the console table;
//!   [`chart`]: `candidates.html` and the AVWAP band series charts draw.
//! - [`config`]: `[scan]` thresholds; [`demo`]: the bundled demo data set;
//!   [`providers`]: the bar store as a bar source.
//! - [`service`]: the `avwap-scan` application (bar source choice, Alpaca top-up over the
//!   universe, outputs, alerts). The only part of the scanner that may use the Alpaca client,
//!   the universe loader, alerts or the configuration (see ARCHITECTURE.md).

pub mod anchors;
pub mod chart;
pub mod config;
pub mod context;
pub mod demo;
pub mod indicators;
pub mod output;
pub mod providers;
pub mod run;
pub mod select;
pub mod service;
