//! What a backtest adds to its `backtest.json`: the metrics (`performance::metrics`), the two
//! CSV files (`performance::csv`) and `report.html` (`performance::report`, with one chart per
//! round trip: the symbol's daily candles around the trade and the AVWAP with its σ from the
//! trade's anchor, computed by the scan's own code in `scan::chart`).

use super::data::BacktestData;
use super::outputs::OutputsExtra;
use super::{BacktestError, BacktestRun};
use crate::performance::metrics::{self, Metrics};
use crate::performance::report::{render_report, ReportInput, TradeChart};
use crate::performance::{csv, RoundTrip};
use crate::scan::chart::avwap_bands;
use rust_decimal::Decimal;

/// Sessions shown before the entry and after the exit in a trade's chart.
const CHART_SESSIONS_BEFORE: usize = 40;
const CHART_SESSIONS_AFTER: usize = 10;

/// The file names a backtest writes besides `backtest.json`.
pub const EQUITY_CSV: &str = "equity.csv";
pub const TRADES_CSV: &str = "trades.csv";
pub const REPORT_HTML: &str = "report.html";

/// Metrics, CSV files and report of `run`, ready for `outputs::write_outputs`.
pub fn render(run: &BacktestRun, data: &BacktestData) -> Result<OutputsExtra, BacktestError> {
    let metrics = metrics::compute(
        run.starting_cash,
        &run.equity,
        &run.trips,
        &run.benchmark_label,
    );
    let mut equity_csv = Vec::new();
    csv::write_equity_csv(&mut equity_csv, &run.equity).map_err(internal)?;
    let mut trades_csv = Vec::new();
    csv::write_trades_csv(&mut trades_csv, &run.trips).map_err(internal)?;
    let summary = summary_rows(run, &metrics);
    let charts: Vec<TradeChart> = run.trips.iter().map(|t| trade_chart(t, data)).collect();
    let title = format!(
        "avwap backtest {}..{} ({})",
        run.from, run.to, run.data_label
    );
    let html = render_report(&ReportInput {
        title: &title,
        summary: &summary,
        equity: &run.equity,
        trades: &run.trips,
        benchmark_label: &run.benchmark_label,
        starting_equity: run.starting_cash,
        trade_charts: &charts,
    });
    let metrics_json = serde_json::to_value(&metrics).map_err(|e| internal(e.to_string()))?;
    Ok(OutputsExtra {
        files: vec![
            (EQUITY_CSV.to_string(), equity_csv),
            (TRADES_CSV.to_string(), trades_csv),
            (REPORT_HTML.to_string(), html.into_bytes()),
        ],
        metrics: Some(metrics_json),
    })
}

fn internal(error: impl std::fmt::Display) -> BacktestError {
    BacktestError::Render(format!("rendering the backtest outputs failed: {error}"))
}

fn pct(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_string(), |v| format!("{:.2} %", v * 100.0))
}

fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_string(), |v| format!("{v:.2}"))
}

fn money(value: Option<Decimal>) -> String {
    value.map_or_else(|| "—".to_string(), |v| format!("${}", v.round_dp(2)))
}

fn date(value: Option<chrono::NaiveDate>) -> String {
    value.map_or_else(|| "—".to_string(), |d| d.to_string())
}

/// The report's summary table, in reading order.
fn summary_rows(run: &BacktestRun, m: &Metrics) -> Vec<(String, String)> {
    let dd = &m.max_drawdown;
    let t = &m.trades;
    let b = &m.benchmark;
    let rows: Vec<(&str, String)> = vec![
        ("Data", run.data_label.clone()),
        ("Sessions", m.sessions.to_string()),
        ("Starting equity", money(Some(m.starting_equity))),
        ("Ending equity", money(Some(m.ending_equity))),
        ("Total return", pct(m.total_return)),
        ("CAGR", pct(m.cagr)),
        ("Volatility (annualised)", pct(m.volatility)),
        ("Sharpe (rf 0)", ratio(m.sharpe)),
        ("Sortino", ratio(m.sortino)),
        ("Calmar", ratio(m.calmar)),
        (
            "Max drawdown",
            format!(
                "{} (peak {}, trough {}, recovered {})",
                pct(dd.depth),
                date(dd.peak_date),
                date(dd.trough_date),
                date(dd.recovery_date)
            ),
        ),
        (
            "Round trips",
            format!("{} ({} open at the end)", t.count, t.open_at_end),
        ),
        ("Win rate", pct(t.win_rate)),
        (
            "Average win / loss",
            format!("{} / {}", money(t.average_win), money(t.average_loss)),
        ),
        ("Average R (expectancy in R)", ratio(t.expectancy_r)),
        ("Expectancy", money(t.expectancy)),
        ("Profit factor", ratio(t.profit_factor)),
        (
            "Average holding time",
            t.average_holding_days
                .map_or_else(|| "—".to_string(), |d| format!("{d:.1} days")),
        ),
        ("Time in market", pct(m.exposure.time_in_market)),
        ("Average gross exposure", pct(m.exposure.average_gross)),
        ("Turnover (two-sided)", ratio(m.turnover.turnover)),
        ("Costs paid", money(m.costs)),
        (
            "Benchmark",
            format!(
                "{}: return {}, max drawdown {}, Sharpe {}",
                b.label,
                pct(b.total_return),
                pct(b.max_drawdown.depth),
                ratio(b.sharpe)
            ),
        ),
    ];
    rows.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The trade's daily candles from `CHART_SESSIONS_BEFORE` sessions before the entry (but not
/// before the anchor, where the AVWAP starts) to `CHART_SESSIONS_AFTER` after the exit, with
/// the AVWAP and σ from the anchor. Empty when the data has no bars for the trade.
fn trade_chart(trip: &RoundTrip, data: &BacktestData) -> TradeChart {
    let empty = TradeChart {
        dates: Vec::new(),
        open: Vec::new(),
        high: Vec::new(),
        low: Vec::new(),
        close: Vec::new(),
        avwap: Vec::new(),
        sigma: Vec::new(),
    };
    let Some(bars) = data.bars.get(&trip.symbol) else {
        return empty;
    };
    let Some(anchor) = bars.iter().position(|b| b.date >= trip.anchor_date) else {
        return empty;
    };
    let entry_date = crate::calendar::ny_date(trip.entry_time);
    let exit_date = crate::calendar::ny_date(trip.exit_time);
    let entry = bars.partition_point(|b| b.date < entry_date);
    let exit = bars
        .partition_point(|b| b.date <= exit_date)
        .saturating_sub(1);
    let end = (exit + CHART_SESSIONS_AFTER + 1).min(bars.len());
    if end <= anchor {
        return empty;
    }
    let span = &bars[anchor..end];
    let column =
        |f: fn(&crate::market_data::DailyBar) -> f64| -> Vec<f64> { span.iter().map(f).collect() };
    let (high, low, close, volume) = (
        column(|b| b.high),
        column(|b| b.low),
        column(|b| b.close),
        column(|b| b.volume),
    );
    let bands = avwap_bands(&high, &low, &close, &volume, 0);
    let first = entry.saturating_sub(CHART_SESSIONS_BEFORE).max(anchor) - anchor;
    let shown = &span[first..];
    TradeChart {
        dates: shown.iter().map(|b| b.date).collect(),
        open: shown.iter().map(|b| b.open).collect(),
        high: high[first..].to_vec(),
        low: low[first..].to_vec(),
        close: close[first..].to_vec(),
        avwap: bands[first..].iter().map(|b| b.vwap).collect(),
        sigma: bands[first..].iter().map(|b| b.sigma).collect(),
    }
}
