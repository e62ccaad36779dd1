//! The scanner: indicators, anchors and AVWAP, per-symbol gates and selection, setup-context
//! labels, ranking, the scan pipeline and its outputs.

pub mod anchors;
pub mod indicators;
