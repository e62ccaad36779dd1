//! Hand-built SVG charts: a frame with linear x and y scales, "nice" ticks and labels, and the
//! marks our reports draw (lines, filled areas and bands, daily candles, labelled horizontal
//! levels, point markers, bars, a legend). Output is one self-contained `<svg>` element.
//!
//! Why by hand and not a plotting crate: the output must be byte-for-byte deterministic (two
//! backtests give identical reports), need no fonts or system libraries (the browser lays out
//! the text), stay tiny (a report holds hundreds of charts) and embed inline in an HTML file
//! with no network. The few primitives below are all our reports need.
//!
//! Never panics and never writes `NaN` or `inf`: non-finite data points are skipped (a line
//! breaks there), a flat or empty range is widened, coordinates are clamped to the plot area,
//! and every number is printed with fixed decimals. Text is XML-escaped.

use std::fmt::Write as _;

/// Colours shared by the reports (one palette, so charts read alike).
pub mod palette {
    pub const UP: &str = "#26a269";
    pub const DOWN: &str = "#c01c28";
    pub const PRIMARY: &str = "#1c71d8";
    pub const SECONDARY: &str = "#9a9996";
    pub const AVWAP: &str = "#e66100";
    pub const BAND: &str = "#f6d32d";
    pub const STOP: &str = "#c01c28";
    pub const TARGET: &str = "#26a269";
    pub const ENTRY: &str = "#1c71d8";
    pub const ANCHOR: &str = "#813d9c";
    pub const GRID: &str = "#e0e0e0";
    pub const AXIS: &str = "#5e5c64";
}

/// `text` with the five XML special characters escaped (safe in element text and in
/// double-quoted attributes).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `value` with exactly `decimals` decimals; a non-finite value prints as 0 and a negative
/// zero as zero, so the output never holds `NaN`, `inf` or `-0`.
pub fn num(value: f64, decimals: usize) -> String {
    let value = if value.is_finite() { value } else { 0.0 };
    let text = format!("{value:.decimals$}");
    if text.starts_with('-') && text[1..].chars().all(|c| c == '0' || c == '.') {
        text[1..].to_string()
    } else {
        text
    }
}

/// A pixel coordinate (one decimal is well below a pixel).
fn px(value: f64) -> String {
    num(value, 1)
}

/// The smallest and largest finite values, widened so that the range is never empty: an empty
/// input gives `0..1`, a flat one `v ± max(|v|·1%, 0.5)`; `pad` (a fraction of the span) is
/// added on both sides.
pub fn padded_range(values: impl IntoIterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.into_iter().filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        let half = (lo.abs() * 0.01).max(0.5);
        return (lo - half, hi + half);
    }
    let pad = if pad.is_finite() { pad.max(0.0) } else { 0.0 };
    let span = hi - lo;
    (lo - span * pad, hi + span * pad)
}

/// About `target` round tick values (steps of 1, 2, 2.5 or 5 × 10ⁿ) inside `[lo, hi]`. Empty
/// when the range is not finite or not increasing.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite() && hi > lo) || target == 0 {
        return Vec::new();
    }
    let raw = (hi - lo) / target as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    if !(step.is_finite() && step > 0.0) {
        return Vec::new();
    }
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    // A pathological range (huge values, tiny span) must not produce millions of ticks.
    if last < first || last - first > 1000 {
        return Vec::new();
    }
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Decimals that show `step` distinctly (0 for steps ≥ 1, up to 6).
pub fn decimals_for_step(step: f64) -> usize {
    if !(step.is_finite() && step > 0.0) || step >= 1.0 {
        return 0;
    }
    ((-step.log10()).ceil() as usize).min(6)
}

/// A linear map from a data interval to a pixel interval; values outside the data interval are
/// clamped to its ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub domain: (f64, f64),
    pub range: (f64, f64),
}

impl Scale {
    /// A scale from `domain` to `range`; an empty or non-finite domain is widened (see
    /// [`padded_range`]).
    pub fn new(domain: (f64, f64), range: (f64, f64)) -> Self {
        let domain = if domain.0.is_finite() && domain.1.is_finite() && domain.1 > domain.0 {
            domain
        } else {
            padded_range([domain.0, domain.1], 0.0)
        };
        Self { domain, range }
    }

    /// The pixel of `value`, clamped to the range; `None` for a non-finite value.
    pub fn map(&self, value: f64) -> Option<f64> {
        if !value.is_finite() {
            return None;
        }
        let (d0, d1) = self.domain;
        let t = ((value - d0) / (d1 - d0)).clamp(0.0, 1.0);
        Some(self.range.0 + t * (self.range.1 - self.range.0))
    }

    /// Pixels per data unit (absolute).
    pub fn unit(&self) -> f64 {
        ((self.range.1 - self.range.0) / (self.domain.1 - self.domain.0)).abs()
    }
}

/// One daily candle at x position `x`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candle {
    pub x: f64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
}

/// The shape of a point marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// An upward triangle (an entry).
    Up,
    /// A downward triangle (an exit).
    Down,
    Circle,
    /// A diamond (an anchor).
    Diamond,
}

/// Sizes of a chart: the whole picture and the margins around the plot area.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
}

impl Size {
    /// The reports' default: 900×300 with room for y labels on the left and level labels on
    /// the right.
    pub const WIDE: Size = Size {
        width: 900.0,
        height: 300.0,
        left: 64.0,
        right: 92.0,
        top: 28.0,
        bottom: 28.0,
    };
}

/// A chart being drawn: call the mark methods, then [`Chart::finish`].
#[derive(Debug, Clone)]
pub struct Chart {
    size: Size,
    title: String,
    pub x: Scale,
    pub y: Scale,
    grid: String,
    body: String,
    labels: String,
    legend: Vec<(String, String)>,
}

impl Chart {
    /// A chart titled `title` whose plot area shows `x_domain` × `y_domain`.
    pub fn new(title: &str, size: Size, x_domain: (f64, f64), y_domain: (f64, f64)) -> Self {
        let x = Scale::new(x_domain, (size.left, size.width - size.right));
        let y = Scale::new(y_domain, (size.height - size.bottom, size.top));
        Self {
            size,
            title: title.to_string(),
            x,
            y,
            grid: String::new(),
            body: String::new(),
            labels: String::new(),
            legend: Vec::new(),
        }
    }

    fn plot_left(&self) -> f64 {
        self.size.left
    }

    fn plot_right(&self) -> f64 {
        self.size.width - self.size.right
    }

    fn plot_top(&self) -> f64 {
        self.size.top
    }

    fn plot_bottom(&self) -> f64 {
        self.size.height - self.size.bottom
    }

    /// The distance between the y axis' ticks (1 when there are fewer than two).
    pub fn y_tick_step(&self) -> f64 {
        nice_ticks(self.y.domain.0, self.y.domain.1, 5)
            .windows(2)
            .map(|w| w[1] - w[0])
            .next()
            .unwrap_or(1.0)
    }

    /// Horizontal grid lines and y labels at nice ticks, the labels formatted by `label`.
    pub fn y_axis(&mut self, label: impl Fn(f64) -> String) {
        let ticks = nice_ticks(self.y.domain.0, self.y.domain.1, 5);
        for tick in ticks {
            let Some(y) = self.y.map(tick) else { continue };
            let _ = write!(
                self.grid,
                r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1"/>"#,
                px(self.plot_left()),
                px(y),
                px(self.plot_right()),
                px(y),
                palette::GRID
            );
            let _ = write!(
                self.labels,
                r#"<text x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>"#,
                px(self.plot_left() - 6.0),
                px(y),
                escape(&label(tick))
            );
        }
    }

    /// Labels under the plot at x positions, thinned to at most `max` evenly spaced ones (the
    /// first is always kept).
    pub fn x_labels(&mut self, labels: &[(f64, String)], max: usize) {
        if labels.is_empty() || max == 0 {
            return;
        }
        let every = labels.len().div_ceil(max).max(1);
        for (x, text) in labels.iter().step_by(every) {
            let Some(x) = self.x.map(*x) else { continue };
            let _ = write!(
                self.grid,
                r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1"/>"#,
                px(x),
                px(self.plot_top()),
                px(x),
                px(self.plot_bottom()),
                palette::GRID
            );
            let _ = write!(
                self.labels,
                r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
                px(x),
                px(self.plot_bottom() + 16.0),
                escape(text)
            );
        }
    }

    fn add_legend(&mut self, label: Option<&str>, color: &str) {
        if let Some(label) = label {
            self.legend.push((label.to_string(), color.to_string()));
        }
    }

    /// The path data of `points`, broken where a point is not finite.
    fn path_data(&self, points: &[(f64, f64)]) -> String {
        let mut d = String::new();
        let mut pen_down = false;
        for &(x, y) in points {
            match (self.x.map(x), self.y.map(y)) {
                (Some(px_x), Some(px_y)) => {
                    let _ = write!(
                        d,
                        "{}{} {}",
                        if pen_down { "L" } else { "M" },
                        px(px_x),
                        px(px_y)
                    );
                    pen_down = true;
                }
                _ => pen_down = false,
            }
        }
        d
    }

    /// A line through `points` (x, y); a non-finite point breaks it.
    pub fn line(&mut self, points: &[(f64, f64)], color: &str, width: f64, label: Option<&str>) {
        let d = self.path_data(points);
        if !d.is_empty() {
            let _ = write!(
                self.body,
                r#"<path d="{d}" fill="none" stroke="{}" stroke-width="{}" stroke-linejoin="round"/>"#,
                escape(color),
                num(width, 1)
            );
        }
        self.add_legend(label, color);
    }

    /// A dashed line through `points` (σ bands).
    pub fn dashed_line(&mut self, points: &[(f64, f64)], color: &str, label: Option<&str>) {
        let d = self.path_data(points);
        if !d.is_empty() {
            let _ = write!(
                self.body,
                r#"<path d="{d}" fill="none" stroke="{}" stroke-width="1" stroke-dasharray="4 3"/>"#,
                escape(color)
            );
        }
        self.add_legend(label, color);
    }

    /// The area between the curve `points` and the horizontal line at `baseline`, one polygon
    /// per run of finite points.
    pub fn area(&mut self, points: &[(f64, f64)], baseline: f64, color: &str, label: Option<&str>) {
        let upper: Vec<(f64, f64, f64)> = points.iter().map(|&(x, y)| (x, y, baseline)).collect();
        self.fill_between(&upper, color, 0.35);
        self.add_legend(label, color);
    }

    /// The band between two curves given as (x, upper, lower), one polygon per run of finite
    /// points.
    pub fn band(&mut self, points: &[(f64, f64, f64)], color: &str, label: Option<&str>) {
        self.fill_between(points, color, 0.18);
        self.add_legend(label, color);
    }

    fn fill_between(&mut self, points: &[(f64, f64, f64)], color: &str, opacity: f64) {
        let mut run: Vec<(f64, f64, f64)> = Vec::new();
        let flush = |run: &mut Vec<(f64, f64, f64)>, chart: &mut Chart| {
            if run.len() >= 2 {
                let mut d = String::new();
                for (i, (x, y, _)) in run.iter().enumerate() {
                    let _ = write!(d, "{}{} {}", if i == 0 { "M" } else { "L" }, px(*x), px(*y));
                }
                for (x, _, y0) in run.iter().rev() {
                    let _ = write!(d, "L{} {}", px(*x), px(*y0));
                }
                d.push('Z');
                let _ = write!(
                    chart.body,
                    r#"<path d="{d}" fill="{}" fill-opacity="{}" stroke="none"/>"#,
                    escape(color),
                    num(opacity, 2)
                );
            }
            run.clear();
        };
        for &(x, a, b) in points {
            match (self.x.map(x), self.y.map(a), self.y.map(b)) {
                (Some(x), Some(a), Some(b)) => run.push((x, a, b)),
                _ => flush(&mut run, self),
            }
        }
        flush(&mut run, self);
    }

    /// Daily candles: a wick from low to high and a body from open to close, green when the
    /// close is at or above the open. Candles with a non-finite price are skipped.
    pub fn candles(&mut self, candles: &[Candle]) {
        let slot = self.x.unit();
        let body_width = (slot * 0.6).clamp(1.0, 14.0);
        for c in candles {
            let mapped = (
                self.x.map(c.x),
                self.y.map(c.open),
                self.y.map(c.high),
                self.y.map(c.low),
                self.y.map(c.close),
            );
            let (Some(x), Some(open), Some(high), Some(low), Some(close)) = mapped else {
                continue;
            };
            let color = if c.close >= c.open {
                palette::UP
            } else {
                palette::DOWN
            };
            let top = open.min(close);
            let height = (open - close).abs().max(1.0);
            let _ = write!(
                self.body,
                r#"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="{color}" stroke-width="1"/><rect x="{}" y="{}" width="{}" height="{}" fill="{color}"/>"#,
                px(high),
                px(low),
                px(x - body_width / 2.0),
                px(top),
                px(body_width),
                px(height),
                x = px(x),
            );
        }
    }

    /// A horizontal line across the plot at `y`, labelled at the right edge with `label` and
    /// the value formatted with `decimals`.
    pub fn level(&mut self, y: f64, color: &str, label: &str, decimals: usize) {
        self.draw_levels(&[(y, color, label)], decimals);
    }

    /// Horizontal lines across the plot, each labelled at the right edge with its label and
    /// value; labels closer than a line of text are pushed apart so that they stay readable.
    pub fn levels(&mut self, levels: &[Level], decimals: usize) {
        let items: Vec<(f64, &str, &str)> = levels
            .iter()
            .map(|l| (l.value, l.color, l.label.as_str()))
            .collect();
        self.draw_levels(&items, decimals);
    }

    /// Levels as (value, colour, label).
    fn draw_levels(&mut self, levels: &[(f64, &str, &str)], decimals: usize) {
        const LINE: f64 = 11.0;
        let mut placed: Vec<(f64, f64, (f64, &str, &str))> = levels
            .iter()
            .filter_map(|&l| self.y.map(l.0).map(|py| (py, py, l)))
            .collect();
        placed.sort_by(|a, b| a.0.total_cmp(&b.0));
        for i in 1..placed.len() {
            placed[i].1 = placed[i].1.max(placed[i - 1].1 + LINE);
        }
        // Labels pushed below the plot move back up as a block.
        let overflow = placed
            .last()
            .map_or(0.0, |last| (last.1 - (self.plot_bottom() + 4.0)).max(0.0));
        for (py, label_y, (value, color, label)) in &placed {
            let color = escape(color);
            let _ = write!(
                self.body,
                r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{color}" stroke-width="1.2" stroke-dasharray="6 3"/>"#,
                px(self.plot_left()),
                px(*py),
                px(self.plot_right()),
                px(*py),
            );
            let _ = write!(
                self.labels,
                r#"<text x="{}" y="{}" dominant-baseline="middle" fill="{color}">{} {}</text>"#,
                px(self.plot_right() + 4.0),
                px(label_y - overflow),
                escape(label),
                num(*value, decimals)
            );
        }
    }

    /// A marker at (x, y) with an optional text beside it.
    pub fn marker(&mut self, x: f64, y: f64, shape: Marker, color: &str, label: Option<&str>) {
        let (Some(cx), Some(cy)) = (self.x.map(x), self.y.map(y)) else {
            return;
        };
        let r = 6.0;
        let color = escape(color);
        let _ = match shape {
            Marker::Circle => write!(
                self.body,
                r#"<circle cx="{}" cy="{}" r="{}" fill="{color}" stroke="white" stroke-width="1"/>"#,
                px(cx),
                px(cy),
                px(r * 0.8)
            ),
            Marker::Up | Marker::Down | Marker::Diamond => {
                let points = match shape {
                    Marker::Up => {
                        [(cx, cy), (cx - r, cy + r * 1.6), (cx + r, cy + r * 1.6)].to_vec()
                    }
                    Marker::Down => {
                        [(cx, cy), (cx - r, cy - r * 1.6), (cx + r, cy - r * 1.6)].to_vec()
                    }
                    _ => [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)].to_vec(),
                };
                let list: Vec<String> = points
                    .iter()
                    .map(|(a, b)| format!("{},{}", px(*a), px(*b)))
                    .collect();
                write!(
                    self.body,
                    r#"<polygon points="{}" fill="{color}" stroke="white" stroke-width="1"/>"#,
                    list.join(" ")
                )
            }
        };
        if let Some(label) = label {
            let dy = match shape {
                Marker::Up => r * 1.6 + 12.0,
                Marker::Down => -(r * 1.6 + 4.0),
                _ => -(r + 4.0),
            };
            let _ = write!(
                self.labels,
                r#"<text x="{}" y="{}" text-anchor="middle" fill="{color}">{}</text>"#,
                px(cx),
                px(cy + dy),
                escape(label)
            );
        }
    }

    /// Vertical bars from 0 to each value at x positions, `width` in data units; positive ones
    /// in `up`, negative ones in `down`.
    pub fn bars(&mut self, bars: &[(f64, f64)], width: f64, up: &str, down: &str) {
        let Some(zero) = self.y.map(0.0) else { return };
        let half = (width * self.x.unit() / 2.0).max(0.5);
        for &(x, value) in bars {
            let (Some(cx), Some(py)) = (self.x.map(x), self.y.map(value)) else {
                continue;
            };
            let color = if value >= 0.0 { up } else { down };
            let _ = write!(
                self.body,
                r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>"#,
                px(cx - half),
                px(py.min(zero)),
                px(half * 2.0),
                px((py - zero).abs()),
                escape(color)
            );
        }
    }

    /// A vertical line across the plot at x (a date of note), with a label at its top.
    pub fn vertical(&mut self, x: f64, color: &str, label: &str) {
        let Some(cx) = self.x.map(x) else { return };
        let _ = write!(
            self.body,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1" stroke-dasharray="2 3"/>"#,
            px(cx),
            px(self.plot_top()),
            px(cx),
            px(self.plot_bottom()),
            escape(color)
        );
        let _ = write!(
            self.labels,
            r#"<text x="{}" y="{}" fill="{}">{}</text>"#,
            px(cx + 3.0),
            px(self.plot_top() + 12.0),
            escape(color),
            escape(label)
        );
    }

    /// The finished `<svg>` element (class `chart`), with its title and legend.
    pub fn finish(self) -> String {
        let Size { width, height, .. } = self.size;
        let mut out = String::with_capacity(self.body.len() + self.grid.len() + 1024);
        let _ = write!(
            out,
            r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11" fill="{axis}" role="img"><title>{title}</title><rect x="0" y="0" width="{w}" height="{h}" fill="white"/>"#,
            w = px(width),
            h = px(height),
            axis = palette::AXIS,
            title = escape(&self.title),
        );
        out.push_str(&self.grid);
        let _ = write!(
            out,
            r#"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="{}"/>"#,
            px(self.plot_left()),
            px(self.plot_top()),
            px(self.plot_right() - self.plot_left()),
            px(self.plot_bottom() - self.plot_top()),
            palette::AXIS
        );
        out.push_str(&self.body);
        out.push_str(&self.labels);
        let _ = write!(
            out,
            r#"<text x="{}" y="16" font-size="13" font-weight="bold">{}</text>"#,
            px(self.plot_left()),
            escape(&self.title)
        );
        // The legend runs leftwards from the plot's right edge, on the title's line.
        let mut x = self.plot_right();
        for (label, color) in self.legend.iter().rev() {
            let text_width = 6.5 * label.chars().count() as f64;
            x -= text_width + 18.0;
            let _ = write!(
                out,
                r#"<rect x="{}" y="8" width="10" height="10" fill="{}"/><text x="{}" y="17">{}</text>"#,
                px(x),
                escape(color),
                px(x + 14.0),
                escape(label)
            );
        }
        out.push_str("</svg>");
        out
    }
}

/// A labelled horizontal level of a price chart (stop, targets, entry).
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub label: String,
    pub value: f64,
    pub color: &'static str,
}

/// A marked point of a price chart at bar `index` (entry, exit, anchor).
#[derive(Debug, Clone, PartialEq)]
pub struct PointMark {
    pub index: usize,
    pub price: f64,
    pub shape: Marker,
    pub color: &'static str,
    pub label: String,
}

/// What a daily price chart shows: one candle per bar, an optional anchored VWAP with its σ
/// (same length as the bars; NaN where undefined), levels, marked points and one optional
/// vertical line (the anchor).
#[derive(Debug, Clone, Default)]
pub struct PriceChart<'a> {
    pub title: &'a str,
    /// One label per bar (dates as `YYYY-MM-DD`); every few are shown.
    pub labels: &'a [String],
    /// (open, high, low, close) per bar.
    pub ohlc: &'a [(f64, f64, f64, f64)],
    pub avwap: &'a [f64],
    pub sigma: &'a [f64],
    pub levels: &'a [Level],
    pub marks: &'a [PointMark],
    pub vertical: Option<(usize, &'a str)>,
}

/// The decimals prices are printed with.
const PRICE_DECIMALS: usize = 2;

/// A daily candle chart with the AVWAP, its ±1σ band (filled) and ±2σ lines (dashed), labelled
/// levels and marks. The y range covers the candles, the AVWAP ±1σ and the levels, so a far
/// ±2σ line runs along the edge rather than squashing the candles.
pub fn price_chart(input: &PriceChart<'_>) -> String {
    let n = input.ohlc.len();
    let sigma_at = |i: usize| input.sigma.get(i).copied().unwrap_or(f64::NAN);
    let avwap_at = |i: usize| input.avwap.get(i).copied().unwrap_or(f64::NAN);
    let candle_values = input.ohlc.iter().flat_map(|&(o, h, l, c)| [o, h, l, c]);
    let band_values = (0..n).flat_map(|i| {
        [
            avwap_at(i),
            avwap_at(i) + sigma_at(i),
            avwap_at(i) - sigma_at(i),
        ]
    });
    let level_values = input.levels.iter().map(|l| l.value);
    let range = padded_range(candle_values.chain(band_values).chain(level_values), 0.04);
    let mut chart = Chart::new(input.title, Size::WIDE, (-0.5, n as f64 - 0.5), range);
    let decimals = decimals_for_step(chart.y_tick_step());
    chart.y_axis(|v| num(v, decimals));
    let labels: Vec<(f64, String)> = input
        .labels
        .iter()
        .take(n)
        .enumerate()
        .map(|(i, l)| (i as f64, l.clone()))
        .collect();
    chart.x_labels(&labels, 8);
    if !input.avwap.is_empty() {
        let band = |k: f64| -> Vec<(f64, f64)> {
            (0..n)
                .map(|i| (i as f64, avwap_at(i) + k * sigma_at(i)))
                .collect()
        };
        let one: Vec<(f64, f64, f64)> = (0..n)
            .map(|i| {
                (
                    i as f64,
                    avwap_at(i) + sigma_at(i),
                    avwap_at(i) - sigma_at(i),
                )
            })
            .collect();
        chart.band(&one, palette::BAND, Some("±1σ"));
        chart.dashed_line(&band(2.0), palette::SECONDARY, Some("±2σ"));
        chart.dashed_line(&band(-2.0), palette::SECONDARY, None);
    }
    if let Some((index, label)) = input.vertical {
        chart.vertical(index as f64, palette::ANCHOR, label);
    }
    let candles: Vec<Candle> = input
        .ohlc
        .iter()
        .enumerate()
        .map(|(i, &(open, high, low, close))| Candle {
            x: i as f64,
            open,
            high,
            low,
            close,
        })
        .collect();
    chart.candles(&candles);
    if !input.avwap.is_empty() {
        let line: Vec<(f64, f64)> = (0..n).map(|i| (i as f64, avwap_at(i))).collect();
        chart.line(&line, palette::AVWAP, 2.0, Some("AVWAP"));
    }
    chart.levels(input.levels, PRICE_DECIMALS);
    for mark in input.marks {
        let label = (!mark.label.is_empty()).then_some(mark.label.as_str());
        chart.marker(mark.index as f64, mark.price, mark.shape, mark.color, label);
    }
    chart.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every opened tag is closed or self-closing, in order (a small well-formedness check).
    fn balanced(svg: &str) -> bool {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let Some(end) = rest[start..].find('>') else {
                return false;
            };
            let tag = &rest[start + 1..start + end];
            rest = &rest[start + end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                if stack.pop().as_deref() != Some(name) {
                    return false;
                }
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().unwrap_or_default();
                stack.push(name.to_string());
            }
        }
        stack.is_empty()
    }

    fn no_bad_numbers(svg: &str) -> bool {
        !svg.contains("NaN") && !svg.contains("inf") && !svg.contains("\"-0.0\"")
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<b>"AT&T's"</b>"#),
            "&lt;b&gt;&quot;AT&amp;T&#39;s&quot;&lt;/b&gt;"
        );
        let mut chart = Chart::new("P&L <all>", Size::WIDE, (0.0, 1.0), (0.0, 1.0));
        chart.level(0.5, palette::STOP, "stop <x>", 2);
        let svg = chart.finish();
        assert!(svg.contains("P&amp;L &lt;all&gt;"));
        assert!(svg.contains("stop &lt;x&gt; 0.50"));
        assert!(balanced(&svg), "{svg}");
    }

    #[test]
    fn numbers_have_fixed_decimals_and_no_negative_zero_or_nan() {
        assert_eq!(num(1.0, 2), "1.00");
        assert_eq!(num(-0.0001, 2), "0.00");
        assert_eq!(num(-1.005, 1), "-1.0");
        assert_eq!(num(f64::NAN, 1), "0.0");
        assert_eq!(num(f64::INFINITY, 0), "0");
        assert_eq!(num(12.345, 0), "12");
    }

    #[test]
    fn ranges_are_widened_when_flat_or_empty() {
        assert_eq!(padded_range([], 0.1), (0.0, 1.0));
        assert_eq!(padded_range([f64::NAN, f64::INFINITY], 0.1), (0.0, 1.0));
        assert_eq!(padded_range([100.0, 100.0], 0.1), (99.0, 101.0));
        assert_eq!(padded_range([0.0], 0.1), (-0.5, 0.5));
        let (lo, hi) = padded_range([10.0, 20.0, f64::NAN], 0.1);
        assert!((lo - 9.0).abs() < 1e-12 && (hi - 21.0).abs() < 1e-12);
    }

    #[test]
    fn nice_ticks_are_round_and_inside_the_range() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(nice_ticks(47.3, 52.9, 5), vec![48.0, 50.0, 52.0]);
        let small = nice_ticks(-0.123, 0.031, 5);
        assert!(small.iter().all(|t| (-0.123..=0.031).contains(t)));
        assert!(small.len() >= 3 && small.len() <= 10, "{small:?}");
        assert_eq!(decimals_for_step(0.025), 2);
        assert_eq!(decimals_for_step(5.0), 0);
        assert!(nice_ticks(1.0, 1.0, 5).is_empty());
        assert!(nice_ticks(f64::NAN, 1.0, 5).is_empty());
        assert!(nice_ticks(1e300, 1.0000000001e300, 5).len() <= 1001);
    }

    #[test]
    fn scale_maps_linearly_and_clamps() {
        let s = Scale::new((0.0, 10.0), (100.0, 0.0));
        assert_eq!(s.map(0.0), Some(100.0));
        assert_eq!(s.map(5.0), Some(50.0));
        assert_eq!(s.map(20.0), Some(0.0));
        assert_eq!(s.map(f64::NAN), None);
        let flat = Scale::new((3.0, 3.0), (0.0, 10.0));
        assert_eq!(flat.map(3.0), Some(5.0));
    }

    #[test]
    fn a_chart_with_every_mark_is_well_formed() {
        let mut chart = Chart::new("ACME", Size::WIDE, (-0.5, 3.5), (9.0, 13.0));
        chart.y_axis(|v| num(v, 1));
        chart.x_labels(
            &[
                (0.0, "03-01".into()),
                (1.0, "03-02".into()),
                (2.0, "03-03".into()),
            ],
            2,
        );
        chart.candles(&[
            Candle {
                x: 0.0,
                open: 10.0,
                high: 11.0,
                low: 9.5,
                close: 10.5,
            },
            Candle {
                x: 1.0,
                open: 10.5,
                high: 10.8,
                low: 9.8,
                close: 10.0,
            },
            Candle {
                x: 2.0,
                open: f64::NAN,
                high: 11.0,
                low: 9.0,
                close: 10.0,
            },
        ]);
        chart.band(
            &[(0.0, 11.0, 10.0), (1.0, 11.2, 9.9)],
            palette::BAND,
            Some("±1σ"),
        );
        chart.line(
            &[(0.0, 10.2), (1.0, f64::NAN), (2.0, 10.4), (3.0, 10.6)],
            palette::AVWAP,
            1.5,
            Some("AVWAP"),
        );
        chart.dashed_line(&[(0.0, 11.0), (1.0, 11.2)], palette::BAND, None);
        chart.area(&[(0.0, -1.0), (1.0, -2.0)], 0.0, palette::DOWN, None);
        chart.level(9.4, palette::STOP, "stop", 2);
        chart.marker(1.0, 10.3, Marker::Up, palette::ENTRY, Some("entry"));
        chart.marker(2.0, 10.9, Marker::Down, palette::DOWN, Some("exit"));
        chart.marker(0.0, 9.5, Marker::Diamond, palette::ANCHOR, None);
        chart.marker(0.0, 9.5, Marker::Circle, palette::ANCHOR, None);
        chart.bars(&[(0.0, 1.0), (1.0, -0.5)], 0.8, palette::UP, palette::DOWN);
        chart.vertical(0.0, palette::ANCHOR, "anchor");
        let svg = chart.finish();
        assert!(svg.starts_with("<svg class=\"chart\""));
        assert!(svg.ends_with("</svg>"));
        assert!(balanced(&svg), "{svg}");
        assert!(no_bad_numbers(&svg), "{svg}");
        // The NaN point breaks the AVWAP line into two sub-paths.
        assert!(svg.contains("M529.0 186.6L715.0 174.4"), "{svg}");
        // Two candles drawn (the third has a NaN open).
        assert_eq!(svg.matches("<rect").count(), 2 + 2 + 2 + 1 + 1);
        assert!(svg.contains(">AVWAP</text>") && svg.contains(">±1σ</text>"));
    }

    #[test]
    fn empty_and_flat_charts_hold_no_nan() {
        let mut empty = Chart::new("empty", Size::WIDE, (0.0, 0.0), (f64::NAN, f64::NAN));
        empty.y_axis(|v| num(v, 2));
        empty.line(&[], palette::PRIMARY, 1.0, None);
        empty.candles(&[]);
        let svg = empty.finish();
        assert!(balanced(&svg) && no_bad_numbers(&svg), "{svg}");
        let mut flat = Chart::new("flat", Size::WIDE, (0.0, 5.0), padded_range([1.0; 6], 0.05));
        flat.y_axis(|v| num(v, 2));
        flat.line(
            &(0..6).map(|i| (i as f64, 1.0)).collect::<Vec<_>>(),
            palette::PRIMARY,
            1.0,
            None,
        );
        let svg = flat.finish();
        assert!(balanced(&svg) && no_bad_numbers(&svg), "{svg}");
        assert!(svg.contains(">1.00</text>"), "{svg}");
    }

    #[test]
    fn a_price_chart_draws_candles_avwap_levels_and_marks() {
        let labels: Vec<String> = (1..=4).map(|d| format!("2010-03-0{d}")).collect();
        let ohlc = [
            (10.0, 10.6, 9.8, 10.4),
            (10.4, 10.9, 10.2, 10.8),
            (10.8, 11.0, 10.1, 10.2),
            (10.2, 10.5, 10.0, 10.3),
        ];
        let avwap = [f64::NAN, 10.4, 10.45, 10.4];
        let sigma = [f64::NAN, 0.1, 0.15, 0.2];
        let levels = [
            Level {
                label: "stop".into(),
                value: 9.9,
                color: palette::STOP,
            },
            Level {
                label: "R2".into(),
                value: 11.2,
                color: palette::TARGET,
            },
        ];
        let marks = [PointMark {
            index: 1,
            price: 10.5,
            shape: Marker::Up,
            color: palette::ENTRY,
            label: "entry".into(),
        }];
        let svg = price_chart(&PriceChart {
            title: "ACME",
            labels: &labels,
            ohlc: &ohlc,
            avwap: &avwap,
            sigma: &sigma,
            levels: &levels,
            marks: &marks,
            vertical: Some((0, "anchor")),
        });
        assert!(balanced(&svg) && no_bad_numbers(&svg), "{svg}");
        assert!(svg.contains(">stop 9.90</text>") && svg.contains(">R2 11.20</text>"));
        assert!(svg.contains(">entry</text>") && svg.contains(">anchor</text>"));
        assert_eq!(svg.matches("<polygon").count(), 1);
        assert!(svg.contains(">AVWAP</text>") && svg.contains(">±2σ</text>"));
        // No AVWAP given: no band, no legend.
        let bare = price_chart(&PriceChart {
            title: "X",
            ohlc: &ohlc,
            ..Default::default()
        });
        assert!(balanced(&bare) && !bare.contains("AVWAP"), "{bare}");
    }

    proptest! {
        #[test]
        fn any_series_gives_finite_well_formed_output(
            values in proptest::collection::vec(prop_oneof![
                any::<f64>(),
                Just(f64::NAN),
                Just(f64::INFINITY),
                -1e6f64..1e6,
            ], 0..40)
        ) {
            let points: Vec<(f64, f64)> = values.iter().enumerate().map(|(i, v)| (i as f64, *v)).collect();
            let mut chart = Chart::new("p", Size::WIDE, (0.0, values.len() as f64), padded_range(values.iter().copied(), 0.05));
            chart.y_axis(|v| num(v, 2));
            chart.line(&points, palette::PRIMARY, 1.0, Some("x"));
            chart.area(&points, 0.0, palette::SECONDARY, None);
            chart.bars(&points, 0.8, palette::UP, palette::DOWN);
            let svg = chart.finish();
            prop_assert!(balanced(&svg));
            prop_assert!(no_bad_numbers(&svg));
        }
    }
}
