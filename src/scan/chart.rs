//! The morning's candidates as pictures: `candidates.html`, one daily chart per candidate
//! (candles of the last [`CHART_SESSIONS`] sessions up to the data date, the chosen AVWAP from
//! its anchor with its σ bands, the stop and the R1/R2 targets, the anchor bar marked) next to
//! its row of the watchlist; and [`avwap_bands`], the AVWAP and σ series from an anchor that
//! the backtest's per-trade charts draw too.
//!
//! The numbers are the scan's own: [`avwap_bands`] is
//! [`crate::scan::anchors::avwap_with_sigma_last`] at every bar, so the chart's last AVWAP is
//! the watchlist's `Entry_Level` before rounding and its σ the one `scan.json` reports. Pure:
//! the page is a string; [`crate::scan::output`] writes it. Self-contained HTML (inline CSS
//! and SVG, no script, nothing fetched).

use crate::market_data::BarSeries;
use crate::scan::anchors::{avwap_with_sigma_last, AvwapBands};
use crate::scan::output::{reward_risk, risk_per_share};
use crate::scan::run::ScanOutcome;
use crate::scan::select::Candidate;
use crate::svg::{self, escape, Level, Marker, PointMark, PriceChart};
use crate::watchlist::WatchlistRow;
use std::fmt::Write as _;

/// Sessions of daily candles in a candidate's chart (the anchor may lie before them; its
/// AVWAP is still computed from the anchor).
pub const CHART_SESSIONS: usize = 80;

/// The AVWAP and its volume-weighted σ at every bar from `anchor` on (NaN before it): bar `t`
/// holds [`avwap_with_sigma_last`] over the bars `..=t`, the scan's own formula (σ in its
/// centred form). Quadratic in the bars after the anchor, which is fine for a chart (a few
/// hundred bars). Mismatched column lengths or an anchor past the end give all NaN.
pub fn avwap_bands(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    volume: &[f64],
    anchor: usize,
) -> Vec<AvwapBands> {
    let unavailable = AvwapBands {
        vwap: f64::NAN,
        sigma: f64::NAN,
    };
    let n = high.len();
    if low.len() != n || close.len() != n || volume.len() != n {
        return vec![unavailable; n];
    }
    (0..n)
        .map(|t| {
            if t < anchor {
                unavailable
            } else {
                avwap_with_sigma_last(&high[..=t], &low[..=t], &close[..=t], &volume[..=t], anchor)
            }
        })
        .collect()
}

/// The chart of one candidate over its validated bars (the last [`CHART_SESSIONS`]).
pub fn candidate_chart(rank: usize, series: &BarSeries, candidate: &Candidate) -> String {
    let n = series.len();
    let start = n.saturating_sub(CHART_SESSIONS);
    let anchor = series.dates.binary_search(&candidate.anchor_date).ok();
    let bands = match anchor {
        Some(anchor) => avwap_bands(
            &series.high,
            &series.low,
            &series.close,
            &series.volume,
            anchor,
        ),
        None => Vec::new(),
    };
    let window = |values: &[f64]| values.get(start..).unwrap_or_default().to_vec();
    let labels: Vec<String> = series.dates[start..]
        .iter()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect();
    let ohlc: Vec<(f64, f64, f64, f64)> = (start..n)
        .map(|i| {
            (
                series.open[i],
                series.high[i],
                series.low[i],
                series.close[i],
            )
        })
        .collect();
    let avwap: Vec<f64> = window(&bands.iter().map(|b| b.vwap).collect::<Vec<_>>());
    let sigma: Vec<f64> = window(&bands.iter().map(|b| b.sigma).collect::<Vec<_>>());
    let levels = [
        level("stop", candidate.stop, svg::palette::STOP),
        level("R1", candidate.target_r1, svg::palette::TARGET),
        level("R2", candidate.target_r2, svg::palette::TARGET),
        level("avwap", candidate.avwap, svg::palette::AVWAP),
    ];
    let in_window = anchor.filter(|&a| a >= start).map(|a| a - start);
    let marks: Vec<PointMark> = in_window
        .map(|i| PointMark {
            index: i,
            price: ohlc[i].2,
            shape: Marker::Diamond,
            color: svg::palette::ANCHOR,
            label: String::new(),
        })
        .into_iter()
        .collect();
    let anchor_note = match in_window {
        Some(_) => String::new(),
        None => " (before the chart)".to_string(),
    };
    let title = format!(
        "#{rank} {} · {} anchor {}{anchor_note} · close {}",
        candidate.symbol,
        candidate.anchor.as_str(),
        candidate.anchor_date,
        svg::num(candidate.close, 2)
    );
    let vertical_label = format!("{} anchor", candidate.anchor.as_str());
    svg::price_chart(&PriceChart {
        title: &title,
        labels: &labels,
        ohlc: &ohlc,
        avwap: &avwap,
        sigma: &sigma,
        levels: &levels,
        marks: &marks,
        vertical: in_window.map(|i| (i, vertical_label.as_str())),
    })
}

fn level(label: &str, value: f64, color: &'static str) -> Level {
    Level {
        label: label.to_string(),
        value,
        color,
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:16px;color:#241f31;background:#fafafa}\
h1{font-size:20px}h2{font-size:16px;margin:24px 0 8px}\
table{border-collapse:collapse;font-size:12px;background:white}\
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right}\
th{background:#f0f0f0}td.l,th.l{text-align:left}\
.cand{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start;margin:12px 0;padding:8px;\
background:white;border:1px solid #ddd}\
.note{background:#fff3cd;border:1px solid #e5c100;padding:8px;margin:8px 0}\
.muted{color:#77767b;font-size:12px}";

fn row_cells(rank: usize, row: &WatchlistRow) -> [String; 14] {
    let dash = || "—".to_string();
    [
        rank.to_string(),
        row.symbol.clone(),
        row.sector.clone(),
        format!("{:.2}", row.price),
        format!("{:.2}", row.entry_level),
        format!("{:.2}", row.entry_dist_pct),
        format!("{:.2}", row.stop_loss),
        format!("{:.2}", row.target_r1),
        format!("{:.2}", row.target_r2),
        risk_per_share(row).map_or_else(dash, |r| r.to_string()),
        reward_risk(row).map_or_else(dash, |r| r.to_string()),
        row.trend_score.round_dp(2).to_string(),
        row.anchor.as_str().to_string(),
        row.anchor_date.to_string(),
    ]
}

fn table_html(out: &mut String, rows: &[(usize, &WatchlistRow)]) {
    out.push_str("<table><tr>");
    for (i, c) in super::output::TABLE_COLUMNS.iter().enumerate() {
        let class = if (1..=2).contains(&i) || i >= 12 {
            " class=\"l\""
        } else {
            ""
        };
        let _ = write!(out, "<th{class}>{}</th>", escape(c));
    }
    out.push_str("</tr>");
    for (rank, row) in rows {
        out.push_str("<tr>");
        for (i, cell) in row_cells(*rank, row).iter().enumerate() {
            let class = if (1..=2).contains(&i) || i >= 12 {
                " class=\"l\""
            } else {
                ""
            };
            let _ = write!(out, "<td{class}>{}</td>", escape(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// `candidates.html` for a finished scan: the watchlist's candidates (`rows`, in rank order,
/// one per `outcome.candidates`), or when the regime emptied the list, the ranked symbols it
/// held back (`held_back_rows`, one per `outcome.held_back_by_regime`), marked as reference
/// only. A candidate whose bars are missing from `outcome.candidate_bars` gets its row
/// without a chart (never the case for a scan's own outcome).
pub fn candidates_page(
    outcome: &ScanOutcome,
    rows: &[WatchlistRow],
    held_back_rows: &[WatchlistRow],
) -> String {
    let plan = &outcome.plan;
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>avwap candidates {scan}</title><style>{STYLE}</style></head><body>\n<h1>avwap candidates for {scan}</h1>\n<p class=\"muted\">Bars up to {data} (New York sessions) · source {source} · universe {universe}, passed the gates {passed} · regime {regime} on {benchmark}. Columns: price = last close; avwap = the anchored VWAP (the entry level); risk/sh = price − stop; reward/risk = (R2 − price) / (price − stop).</p>\n",
        scan = plan.scan_date,
        data = plan.data_as_of,
        source = escape(&outcome.source),
        universe = outcome.universe,
        passed = outcome.passed_gates,
        regime = escape(outcome.regime.state),
        benchmark = escape(&outcome.regime.benchmark),
    );
    let (candidates, shown_rows) = if outcome.candidates.is_empty() {
        if !outcome.held_back_by_regime.is_empty() {
            let _ = writeln!(
                out,
                "<p class=\"note\">The regime filter is {}: the watchlist is empty, no entries today. For reference only, the ranked symbols that passed every other gate:</p>",
                escape(outcome.regime.state)
            );
        } else {
            out.push_str("<p class=\"note\">No candidates today.</p>\n");
        }
        (&outcome.held_back_by_regime, held_back_rows)
    } else {
        (&outcome.candidates, rows)
    };
    let ranked: Vec<(usize, &WatchlistRow)> = shown_rows
        .iter()
        .enumerate()
        .map(|(i, r)| (i + 1, r))
        .collect();
    if !ranked.is_empty() {
        table_html(&mut out, &ranked);
        out.push('\n');
    }
    for ((rank, row), candidate) in ranked.iter().zip(candidates) {
        let _ = write!(
            out,
            "<h2 id=\"{id}\">#{rank} {symbol}</h2><div class=\"cand\">",
            id = escape(&row.symbol),
            symbol = escape(&row.symbol),
        );
        table_html(&mut out, &[(*rank, row)]);
        match outcome.candidate_bars.get(&candidate.symbol) {
            Some(series) => out.push_str(&candidate_chart(*rank, series, candidate)),
            None => out.push_str("<p class=\"muted\">no bars to chart</p>"),
        }
        out.push_str("</div>\n");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::anchors::anchored_vwap;

    #[test]
    fn avwap_bands_match_the_scans_avwap_and_sigma_at_every_bar() {
        let high = [10.5, 11.0, 11.4, 11.2, 11.8, 12.0];
        let low = [9.8, 10.2, 10.9, 10.6, 11.0, 11.5];
        let close = [10.2, 10.9, 11.1, 10.8, 11.6, 11.9];
        let volume = [1e6, 1.4e6, 0.9e6, 1.1e6, 2.0e6, 1.3e6];
        let bands = avwap_bands(&high, &low, &close, &volume, 2);
        let line = anchored_vwap(&high, &low, &close, &volume, 2);
        assert_eq!(bands.len(), 6);
        assert!(bands[0].vwap.is_nan() && bands[1].sigma.is_nan());
        for t in 2..6 {
            assert_eq!(bands[t].vwap, line[t], "bar {t}");
        }
        // At the anchor σ is 0 (one bar); at the last bar it is the scan's σ.
        assert_eq!(bands[2].sigma, 0.0);
        let last = avwap_with_sigma_last(&high, &low, &close, &volume, 2);
        assert_eq!(bands[5], last);
        assert!(bands[5].sigma > 0.0);
        // Bad input: all NaN, never a panic.
        assert!(avwap_bands(&high, &low[..3], &close, &volume, 0)
            .iter()
            .all(|b| b.vwap.is_nan()));
        assert!(avwap_bands(&high, &low, &close, &volume, 9)
            .iter()
            .all(|b| b.vwap.is_nan()));
    }
}
