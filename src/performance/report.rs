//! The backtest's `report.html`: a self-contained page (inline CSS and SVG, no script, nothing
//! fetched) rendered from a run's daily equity curve, its round trips, a summary table the
//! caller fills from the metrics, and per trade the daily bars around it with the AVWAP and
//! σ series from its anchor. Pure: [`render_report`] returns the page; the backtest writes it.
//!
//! What it draws, and how the derived series are computed (so a reader can check a number):
//! - equity and benchmark, each rebased to 1: the strategy by the starting equity, the
//!   benchmark by its first close;
//! - drawdown of each: `value / running maximum − 1` (the strategy's running maximum starts
//!   at the starting equity);
//! - monthly returns: the last equity of a month over the last equity of the month before
//!   (the starting equity for the first month) − 1; the year column compounds its months;
//! - the R-multiple histogram (bins of 0.5 R, widened to at most 40 bins);
//! - exposure: `long_value / equity` at each close;
//! - the trade list and one chart per trade (candles, AVWAP with ±1σ/±2σ, entry, stop, R1,
//!   R2 as levels, entry and exit marked). Times are New York times.

use crate::performance::{EquityPoint, RoundTrip};
use crate::svg::{self, escape, num, Chart, Level, Marker, PointMark, PriceChart, Size};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The daily bars around one trade and the AVWAP/σ series from its anchor (same length as the
/// bars; NaN before the anchor), as `scan::chart::avwap_bands` computes them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TradeChart {
    pub dates: Vec<NaiveDate>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    pub avwap: Vec<f64>,
    pub sigma: Vec<f64>,
}

/// Everything `report.html` shows.
#[derive(Debug, Clone)]
pub struct ReportInput<'a> {
    pub title: &'a str,
    /// The summary table: (metric, value) rows, shown in this order.
    pub summary: &'a [(String, String)],
    pub equity: &'a [EquityPoint],
    pub trades: &'a [RoundTrip],
    /// What the benchmark column is (SPY, or the data set's equal-weight index).
    pub benchmark_label: &'a str,
    pub starting_equity: Decimal,
    /// `trade_charts[i]` is the chart of `trades[i]`; a trade without one (or with no bars)
    /// is listed without a chart.
    pub trade_charts: &'a [TradeChart],
}

const STYLE: &str =
    "body{font-family:sans-serif;margin:16px;color:#241f31;background:#fafafa;max-width:1200px}\
h1{font-size:20px}h2{font-size:16px;margin:28px 0 8px}h3{font-size:13px;margin:16px 0 4px}\
table{border-collapse:collapse;font-size:12px;background:white}\
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right}th{background:#f0f0f0}\
td.l,th.l{text-align:left}.muted{color:#77767b;font-size:12px}\
svg.chart{display:block;margin:6px 0;border:1px solid #ddd}";

fn f64_of(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

/// Strategy and benchmark, each rebased to 1 (see the module header).
fn rebased(input: &ReportInput<'_>) -> (Vec<f64>, Vec<f64>) {
    let base = f64_of(input.starting_equity);
    let equity = input
        .equity
        .iter()
        .map(|p| f64_of(p.equity) / base)
        .collect();
    let first = input
        .equity
        .iter()
        .map(|p| p.benchmark)
        .find(|b| b.is_finite() && *b != 0.0)
        .unwrap_or(f64::NAN);
    let bench = input.equity.iter().map(|p| p.benchmark / first).collect();
    (equity, bench)
}

/// `value / running maximum − 1`, the maximum starting at `start` (non-finite values are
/// skipped in the maximum and give NaN).
fn drawdowns(values: &[f64], start: f64) -> Vec<f64> {
    let mut peak = start;
    values
        .iter()
        .map(|&v| {
            if !v.is_finite() {
                return f64::NAN;
            }
            // A NaN peak (no finite value yet) is replaced too.
            if peak.is_nan() || v > peak {
                peak = v;
            }
            v / peak - 1.0
        })
        .collect()
}

/// Monthly returns by (year, month) and yearly returns, from the equity curve (see the
/// module header).
pub fn monthly_returns(
    starting_equity: Decimal,
    equity: &[EquityPoint],
) -> (BTreeMap<(i32, u32), f64>, BTreeMap<i32, f64>) {
    let mut month_end: BTreeMap<(i32, u32), f64> = BTreeMap::new();
    for point in equity {
        month_end.insert(
            (point.date.year(), point.date.month()),
            f64_of(point.equity),
        );
    }
    let mut previous = f64_of(starting_equity);
    let mut months = BTreeMap::new();
    let mut years: BTreeMap<i32, f64> = BTreeMap::new();
    for (&(year, month), &end) in &month_end {
        let r = end / previous - 1.0;
        months.insert((year, month), r);
        let growth = years.entry(year).or_insert(1.0);
        *growth *= 1.0 + r;
        previous = end;
    }
    let years = years.into_iter().map(|(y, g)| (y, g - 1.0)).collect();
    (months, years)
}

fn pct(value: f64, decimals: usize) -> String {
    if value.is_finite() {
        format!("{}%", num(value * 100.0, decimals))
    } else {
        "—".to_string()
    }
}

fn date_labels(equity: &[EquityPoint]) -> Vec<(f64, String)> {
    equity
        .iter()
        .enumerate()
        .map(|(i, p)| (i as f64, p.date.format("%Y-%m-%d").to_string()))
        .collect()
}

fn series(values: &[f64]) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (i as f64, *v))
        .collect()
}

fn equity_chart(input: &ReportInput<'_>, equity: &[f64], bench: &[f64]) -> String {
    let n = equity.len();
    let range = svg::padded_range(equity.iter().chain(bench).copied().chain([1.0]), 0.05);
    let mut chart = Chart::new(
        "Equity vs benchmark (rebased to 1)",
        Size::WIDE,
        (-0.5, n as f64 - 0.5),
        range,
    );
    let decimals = svg::decimals_for_step(chart.y_tick_step()).max(2);
    chart.y_axis(|v| num(v, decimals));
    chart.x_labels(&date_labels(input.equity), 8);
    chart.level(1.0, svg::palette::AXIS, "start", 2);
    chart.line(
        &series(bench),
        svg::palette::SECONDARY,
        1.5,
        Some(input.benchmark_label),
    );
    chart.line(
        &series(equity),
        svg::palette::PRIMARY,
        2.0,
        Some("strategy"),
    );
    chart.finish()
}

fn drawdown_chart(input: &ReportInput<'_>, equity: &[f64], bench: &[f64]) -> String {
    let ours = drawdowns(equity, 1.0);
    let theirs = drawdowns(bench, f64::NAN);
    let n = ours.len();
    let range = svg::padded_range(ours.iter().chain(&theirs).copied().chain([0.0]), 0.05);
    let mut chart = Chart::new(
        "Drawdown vs benchmark",
        Size::WIDE,
        (-0.5, n as f64 - 0.5),
        (range.0, 0.0_f64.max(range.1)),
    );
    let decimals = svg::decimals_for_step(chart.y_tick_step() * 100.0);
    chart.y_axis(|v| pct(v, decimals));
    chart.x_labels(&date_labels(input.equity), 8);
    chart.area(&series(&ours), 0.0, svg::palette::DOWN, Some("strategy"));
    chart.line(
        &series(&theirs),
        svg::palette::SECONDARY,
        1.5,
        Some(input.benchmark_label),
    );
    chart.finish()
}

fn exposure_chart(input: &ReportInput<'_>) -> String {
    let exposure: Vec<f64> = input
        .equity
        .iter()
        .map(|p| f64_of(p.long_value) / f64_of(p.equity))
        .collect();
    let n = exposure.len();
    let range = svg::padded_range(exposure.iter().copied().chain([0.0, 1.0]), 0.02);
    let mut chart = Chart::new(
        "Exposure (long value / equity at the close)",
        Size::WIDE,
        (-0.5, n as f64 - 0.5),
        (0.0, range.1),
    );
    chart.y_axis(|v| pct(v, 0));
    chart.x_labels(&date_labels(input.equity), 8);
    chart.area(
        &series(&exposure),
        0.0,
        svg::palette::PRIMARY,
        Some("gross exposure"),
    );
    chart.finish()
}

/// Bin width and bins (lower edge → count) of the R multiples: 0.5 R, doubled until at most
/// 40 bins cover them. Non-finite values are left out.
fn r_histogram(trades: &[RoundTrip]) -> (f64, BTreeMap<i64, usize>) {
    let finite: Vec<f64> = trades
        .iter()
        .map(|t| t.r_multiple)
        .filter(|r| r.is_finite())
        .collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
            (lo.min(*r), hi.max(*r))
        });
    let mut width = 0.5;
    while finite.len() > 1 && ((hi - lo) / width).ceil() > 40.0 && width < 1e6 {
        width *= 2.0;
    }
    let mut bins = BTreeMap::new();
    for r in finite {
        *bins.entry((r / width).floor() as i64).or_insert(0) += 1;
    }
    (width, bins)
}

fn r_histogram_chart(trades: &[RoundTrip]) -> String {
    let (width, bins) = r_histogram(trades);
    let first = bins.keys().next().copied().unwrap_or(0).min(-1);
    let last = bins.keys().last().copied().unwrap_or(0).max(1);
    let x_domain = (first as f64 * width, (last + 1) as f64 * width);
    let max_count = bins.values().copied().max().unwrap_or(1).max(1);
    let mut chart = Chart::new(
        &format!(
            "R multiples ({} trades, bins of {} R)",
            trades.len(),
            num(width, 1)
        ),
        Size::WIDE,
        x_domain,
        (0.0, max_count as f64 * 1.1),
    );
    chart.y_axis(|v| {
        if v.fract() == 0.0 {
            num(v, 0)
        } else {
            String::new()
        }
    });
    let edges: Vec<(f64, String)> = (first..=last + 1)
        .map(|b| (b as f64 * width, format!("{}R", num(b as f64 * width, 1))))
        .collect();
    chart.x_labels(&edges, 16);
    let centre = |b: i64| (b as f64 + 0.5) * width;
    let losses: Vec<(f64, f64)> = bins
        .iter()
        .filter(|(b, _)| **b < 0)
        .map(|(b, c)| (centre(*b), *c as f64))
        .collect();
    let wins: Vec<(f64, f64)> = bins
        .iter()
        .filter(|(b, _)| **b >= 0)
        .map(|(b, c)| (centre(*b), *c as f64))
        .collect();
    chart.bars(&losses, width * 0.9, svg::palette::DOWN, svg::palette::DOWN);
    chart.bars(&wins, width * 0.9, svg::palette::UP, svg::palette::UP);
    chart.vertical(0.0, svg::palette::AXIS, "0R");
    chart.finish()
}

fn monthly_table(out: &mut String, input: &ReportInput<'_>) {
    let (months, years) = monthly_returns(input.starting_equity, input.equity);
    if months.is_empty() {
        out.push_str("<p class=\"muted\">No sessions.</p>");
        return;
    }
    out.push_str("<table><tr><th>year</th>");
    for name in [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ] {
        let _ = write!(out, "<th>{name}</th>");
    }
    out.push_str("<th>year</th></tr>");
    for (year, total) in &years {
        let _ = write!(out, "<tr><th>{year}</th>");
        for month in 1..=12 {
            match months.get(&(*year, month)) {
                Some(r) => {
                    let _ = write!(out, "<td style=\"{}\">{}</td>", heat(*r), pct(*r, 1));
                }
                None => out.push_str("<td></td>"),
            }
        }
        let _ = write!(
            out,
            "<td style=\"{}\"><b>{}</b></td></tr>",
            heat(*total),
            pct(*total, 1)
        );
    }
    out.push_str("</table>");
}

/// A cell background: green for gains, red for losses, stronger up to ±10 %.
fn heat(r: f64) -> String {
    if !r.is_finite() {
        return String::new();
    }
    let strength = (r.abs() / 0.10).min(1.0) * 0.55 + 0.08;
    let (red, green, blue) = if r >= 0.0 {
        (38, 162, 105)
    } else {
        (192, 28, 40)
    };
    format!("background:rgba({red},{green},{blue},{})", num(strength, 2))
}

fn ny_time(time: DateTime<Utc>) -> String {
    time.with_timezone(&chrono_tz::America::New_York)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn ny_date(time: DateTime<Utc>) -> NaiveDate {
    time.with_timezone(&chrono_tz::America::New_York)
        .date_naive()
}

const TRADE_COLUMNS: [&str; 16] = [
    "#",
    "symbol",
    "scan date",
    "entry (NY)",
    "entry",
    "exit (NY)",
    "exit",
    "qty",
    "stop",
    "R1",
    "R2",
    "R",
    "net P&L",
    "costs",
    "exit reason",
    "trim",
];

fn trade_table(out: &mut String, trades: &[RoundTrip]) {
    out.push_str("<table><tr>");
    for (i, c) in TRADE_COLUMNS.iter().enumerate() {
        let class = if matches!(i, 1 | 14) {
            " class=\"l\""
        } else {
            ""
        };
        let _ = write!(out, "<th{class}>{}</th>", escape(c));
    }
    out.push_str("</tr>");
    for (i, t) in trades.iter().enumerate() {
        let r = if t.r_multiple.is_finite() {
            num(t.r_multiple, 2)
        } else {
            "—".to_string()
        };
        let cells = [
            format!("<a href=\"#trade-{}\">{}</a>", i + 1, i + 1),
            escape(&t.symbol),
            t.scan_date.to_string(),
            ny_time(t.entry_time),
            format!("{:.2}", t.entry_price),
            ny_time(t.exit_time),
            format!("{:.2}", t.exit_price),
            t.qty.normalize().to_string(),
            format!("{:.2}", t.initial_stop),
            format!("{:.2}", t.target_r1),
            format!("{:.2}", t.target_r2),
            r,
            format!("{:.2}", t.net_pnl),
            format!("{:.2}", t.costs),
            t.exit_reason.as_str().to_string(),
            if t.trimmed { "yes" } else { "" }.to_string(),
        ];
        out.push_str("<tr>");
        for (i, cell) in cells.iter().enumerate() {
            let class = if matches!(i, 1 | 14) {
                " class=\"l\""
            } else {
                ""
            };
            let _ = write!(out, "<td{class}>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// The index of the last bar dated on or before `date` (the session of a fill).
fn bar_index(dates: &[NaiveDate], date: NaiveDate) -> Option<usize> {
    dates.partition_point(|d| *d <= date).checked_sub(1)
}

/// A chart needs bars, and columns of one length.
fn drawable(bars: &TradeChart) -> bool {
    let n = bars.dates.len();
    n > 0
        && [&bars.open, &bars.high, &bars.low, &bars.close]
            .iter()
            .all(|c| c.len() == n)
}

fn trade_chart(number: usize, trade: &RoundTrip, bars: &TradeChart) -> Option<String> {
    if !drawable(bars) {
        return None;
    }
    let n = bars.dates.len();
    let labels: Vec<String> = bars
        .dates
        .iter()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect();
    let ohlc: Vec<(f64, f64, f64, f64)> = (0..n)
        .map(|i| (bars.open[i], bars.high[i], bars.low[i], bars.close[i]))
        .collect();
    let (avwap, sigma): (&[f64], &[f64]) = if bars.avwap.len() == n && bars.sigma.len() == n {
        (&bars.avwap, &bars.sigma)
    } else {
        (&[], &[])
    };
    let entry = f64_of(trade.entry_price);
    let exit = f64_of(trade.exit_price);
    let levels = [
        level("entry", entry, svg::palette::ENTRY),
        level("stop", f64_of(trade.initial_stop), svg::palette::STOP),
        level("R1", f64_of(trade.target_r1), svg::palette::TARGET),
        level("R2", f64_of(trade.target_r2), svg::palette::TARGET),
    ];
    let mut marks = Vec::new();
    if let Some(i) = bar_index(&bars.dates, ny_date(trade.entry_time)) {
        marks.push(PointMark {
            index: i,
            price: entry,
            shape: Marker::Up,
            color: svg::palette::ENTRY,
            label: "entry".to_string(),
        });
    }
    if let Some(i) = bar_index(&bars.dates, ny_date(trade.exit_time)) {
        marks.push(PointMark {
            index: i,
            price: exit,
            shape: Marker::Down,
            color: svg::palette::ANCHOR,
            label: format!("exit ({})", trade.exit_reason.as_str()),
        });
    }
    let anchor = bars.dates.binary_search(&trade.anchor_date).ok();
    let title = format!(
        "#{number} {} · {} → {} · {} R · anchor {}",
        trade.symbol,
        ny_date(trade.entry_time),
        ny_date(trade.exit_time),
        if trade.r_multiple.is_finite() {
            num(trade.r_multiple, 2)
        } else {
            "—".to_string()
        },
        trade.anchor_date
    );
    Some(svg::price_chart(&PriceChart {
        title: &title,
        labels: &labels,
        ohlc: &ohlc,
        avwap,
        sigma,
        levels: &levels,
        marks: &marks,
        vertical: anchor.map(|i| (i, "anchor")),
    }))
}

fn level(label: &str, value: f64, color: &'static str) -> Level {
    Level {
        label: label.to_string(),
        value,
        color,
    }
}

/// The number of `<svg>` charts [`render_report`] draws for `input`: four (equity,
/// drawdown, R histogram, exposure) plus one per trade with a usable [`TradeChart`].
pub fn chart_count(input: &ReportInput<'_>) -> usize {
    4 + input
        .trades
        .iter()
        .zip(input.trade_charts)
        .filter(|(_, c)| drawable(c))
        .count()
}

/// The whole `report.html` page (see the module header). Deterministic: the same input gives
/// the same bytes.
pub fn render_report(input: &ReportInput<'_>) -> String {
    let mut out = String::with_capacity(256 * 1024);
    let first = input.equity.first().map(|p| p.date.to_string());
    let last = input.equity.last().map(|p| p.date.to_string());
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n<p class=\"muted\">{sessions} sessions, {from} to {to} · starting equity {start:.2} · benchmark: {bench} · times in New York</p>\n",
        title = escape(input.title),
        sessions = input.equity.len(),
        from = first.as_deref().unwrap_or("—"),
        to = last.as_deref().unwrap_or("—"),
        start = input.starting_equity,
        bench = escape(input.benchmark_label),
    );
    out.push_str("<h2>Summary</h2><table>");
    for (name, value) in input.summary {
        let _ = write!(
            out,
            "<tr><th class=\"l\">{}</th><td>{}</td></tr>",
            escape(name),
            escape(value)
        );
    }
    out.push_str("</table>\n");
    let (equity, bench) = rebased(input);
    out.push_str("<h2>Equity</h2>");
    out.push_str(&equity_chart(input, &equity, &bench));
    out.push_str(&drawdown_chart(input, &equity, &bench));
    out.push_str("\n<h2>Monthly returns</h2>");
    monthly_table(&mut out, input);
    out.push_str("\n<h2>Trades</h2>");
    out.push_str(&r_histogram_chart(input.trades));
    out.push_str(&exposure_chart(input));
    out.push('\n');
    trade_table(&mut out, input.trades);
    out.push_str("\n<h2>Trade charts</h2>\n");
    for (i, trade) in input.trades.iter().enumerate() {
        let _ = write!(
            out,
            "<h3 id=\"trade-{n}\">#{n} {symbol}</h3>",
            n = i + 1,
            symbol = escape(&trade.symbol)
        );
        match input
            .trade_charts
            .get(i)
            .and_then(|bars| trade_chart(i + 1, trade, bars))
        {
            Some(svg) => out.push_str(&svg),
            None => out.push_str("<p class=\"muted\">no daily bars for this trade</p>"),
        }
        out.push('\n');
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests;
