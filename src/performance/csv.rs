//! The two CSV files of a backtest: `equity.csv` (one row per session's close) and
//! `trades.csv` (one row per round trip), their writers and their readers.
//!
//! Decimals are written exactly as decimals, floats with Rust's `{}` (the shortest text that
//! reads back to the same f64), times as RFC 3339 in UTC. The readers take any bytes: a file
//! that is not what the writers produce is refused with a typed error naming the line and the
//! column, never a panic; the independent check (`tools/backtest_metrics.py`) reads the same
//! files.

use std::io::{Read, Write};
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;

use super::{EquityPoint, ExitReason, RoundTrip};

/// The header of `equity.csv`, in order.
pub const EQUITY_COLUMNS: [&str; 5] = ["date", "equity", "cash", "long_value", "benchmark"];

/// The header of `trades.csv`, in order: every field of [`RoundTrip`].
pub const TRADES_COLUMNS: [&str; 19] = [
    "symbol",
    "scan_date",
    "anchor_date",
    "entry_level",
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "qty",
    "initial_stop",
    "target_r1",
    "target_r2",
    "trimmed",
    "exit_reason",
    "gross_pnl",
    "costs",
    "net_pnl",
    "r_multiple",
    "traded_notional",
];

/// Why a performance CSV could not be read. `file` is `equity.csv` or `trades.csv`; the caller
/// knows the directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PerformanceCsvError {
    #[error("{file} is empty; expected the header line {}", expected.join(","))]
    Empty {
        file: &'static str,
        expected: &'static [&'static str],
    },
    #[error("{file} line 1 has the header {found}, expected {}; this is not a backtest's {file} (or it was written by another version): rerun the backtest", expected.join(","))]
    Header {
        file: &'static str,
        found: String,
        expected: &'static [&'static str],
    },
    #[error("{file} line {line} cannot be read as CSV: {message}; the file is damaged: rerun the backtest")]
    Malformed {
        file: &'static str,
        line: u64,
        message: String,
    },
    #[error("{file} line {line}, column {column}: {found} is not {expected}; the file is damaged: rerun the backtest")]
    Field {
        file: &'static str,
        line: u64,
        column: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("{file} line {line}: date {date} does not come after {previous}; equity rows are one per session in date order: rerun the backtest")]
    DateOrder {
        file: &'static str,
        line: u64,
        date: NaiveDate,
        previous: NaiveDate,
    },
}

const EQUITY_FILE: &str = "equity.csv";
const TRADES_FILE: &str = "trades.csv";

/// Writes `equity.csv`: the header and one row per point, in the given order.
pub fn write_equity_csv(w: impl Write, points: &[EquityPoint]) -> std::io::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(EQUITY_COLUMNS)?;
    for p in points {
        out.write_record([
            p.date.to_string(),
            p.equity.to_string(),
            p.cash.to_string(),
            p.long_value.to_string(),
            p.benchmark.to_string(),
        ])?;
    }
    out.flush()
}

/// Writes `trades.csv`: the header and one row per round trip, in the given order.
pub fn write_trades_csv(w: impl Write, trips: &[RoundTrip]) -> std::io::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(TRADES_COLUMNS)?;
    for t in trips {
        out.write_record([
            t.symbol.clone(),
            t.scan_date.to_string(),
            t.anchor_date.to_string(),
            t.entry_level.to_string(),
            rfc3339(t.entry_time),
            rfc3339(t.exit_time),
            t.entry_price.to_string(),
            t.exit_price.to_string(),
            t.qty.to_string(),
            t.initial_stop.to_string(),
            t.target_r1.to_string(),
            t.target_r2.to_string(),
            t.trimmed.to_string(),
            t.exit_reason.as_str().to_string(),
            t.gross_pnl.to_string(),
            t.costs.to_string(),
            t.net_pnl.to_string(),
            t.r_multiple.to_string(),
            t.traded_notional.to_string(),
        ])?;
    }
    out.flush()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Reads `equity.csv` as [`write_equity_csv`] writes it. Dates must strictly increase.
pub fn read_equity_csv(r: impl Read) -> Result<Vec<EquityPoint>, PerformanceCsvError> {
    let mut points: Vec<EquityPoint> = Vec::new();
    for_each_row(r, EQUITY_FILE, &EQUITY_COLUMNS, |row| {
        let date: NaiveDate = row.parse(0, "a date (YYYY-MM-DD)")?;
        if let Some(previous) = points.last().map(|p| p.date) {
            if date <= previous {
                return Err(PerformanceCsvError::DateOrder {
                    file: EQUITY_FILE,
                    line: row.line,
                    date,
                    previous,
                });
            }
        }
        points.push(EquityPoint {
            date,
            equity: row.decimal(1)?,
            cash: row.decimal(2)?,
            long_value: row.decimal(3)?,
            benchmark: row.parse(4, "a number")?,
        });
        Ok(())
    })?;
    Ok(points)
}

/// Reads `trades.csv` as [`write_trades_csv`] writes it.
pub fn read_trades_csv(r: impl Read) -> Result<Vec<RoundTrip>, PerformanceCsvError> {
    let mut trips = Vec::new();
    for_each_row(r, TRADES_FILE, &TRADES_COLUMNS, |row| {
        let symbol = row.text(0);
        if symbol.is_empty() {
            return Err(row.field_error(0, "a symbol"));
        }
        trips.push(RoundTrip {
            symbol: symbol.to_string(),
            scan_date: row.parse(1, "a date (YYYY-MM-DD)")?,
            anchor_date: row.parse(2, "a date (YYYY-MM-DD)")?,
            entry_level: row.decimal(3)?,
            entry_time: row.time(4)?,
            exit_time: row.time(5)?,
            entry_price: row.decimal(6)?,
            exit_price: row.decimal(7)?,
            qty: row.decimal(8)?,
            initial_stop: row.decimal(9)?,
            target_r1: row.decimal(10)?,
            target_r2: row.decimal(11)?,
            trimmed: row.parse(12, "true or false")?,
            exit_reason: row.parse(13, EXIT_REASONS)?,
            gross_pnl: row.decimal(14)?,
            costs: row.decimal(15)?,
            net_pnl: row.decimal(16)?,
            r_multiple: row.parse(17, "a number")?,
            traded_notional: row.decimal(18)?,
        });
        Ok(())
    })?;
    Ok(trips)
}

const EXIT_REASONS: &str = "an exit reason (stop, target_r2, stop_level, flatten, end_of_backtest)";

/// The text [`ExitReason::as_str`] writes is not one of the reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownExitReason;

impl FromStr for ExitReason {
    type Err = UnknownExitReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            ExitReason::Stop,
            ExitReason::TargetR2,
            ExitReason::StopLevel,
            ExitReason::Flatten,
            ExitReason::EndOfBacktest,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == s)
        .ok_or(UnknownExitReason)
    }
}

/// One data row being read, with what its errors need to say where they are.
struct Row<'a> {
    file: &'static str,
    columns: &'static [&'static str],
    line: u64,
    record: &'a csv::StringRecord,
}

impl Row<'_> {
    fn text(&self, i: usize) -> &str {
        self.record.get(i).unwrap_or("")
    }

    fn field_error(&self, i: usize, expected: &'static str) -> PerformanceCsvError {
        PerformanceCsvError::Field {
            file: self.file,
            line: self.line,
            column: self.columns.get(i).copied().unwrap_or("?"),
            found: excerpt(self.text(i)),
            expected,
        }
    }

    fn parse<T: FromStr>(
        &self,
        i: usize,
        expected: &'static str,
    ) -> Result<T, PerformanceCsvError> {
        self.text(i)
            .parse()
            .map_err(|_| self.field_error(i, expected))
    }

    /// A plain decimal such as `-1234.5` (no exponent, which the writer never produces).
    fn decimal(&self, i: usize) -> Result<Decimal, PerformanceCsvError> {
        Decimal::from_str_exact(self.text(i)).map_err(|_| self.field_error(i, "a decimal number"))
    }

    fn time(&self, i: usize) -> Result<DateTime<Utc>, PerformanceCsvError> {
        DateTime::parse_from_rfc3339(self.text(i))
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| self.field_error(i, "an RFC 3339 time (e.g. 2010-03-01T14:40:00Z)"))
    }
}

/// Checks the header, then calls `each` on every data row.
fn for_each_row(
    r: impl Read,
    file: &'static str,
    columns: &'static [&'static str],
    mut each: impl FnMut(&Row) -> Result<(), PerformanceCsvError>,
) -> Result<(), PerformanceCsvError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(r);
    let mut record = csv::StringRecord::new();
    let malformed = |e: csv::Error| PerformanceCsvError::Malformed {
        file,
        line: e.position().map_or(0, |p| p.line()),
        message: excerpt(&e.to_string()),
    };
    if !reader.read_record(&mut record).map_err(malformed)? {
        return Err(PerformanceCsvError::Empty {
            file,
            expected: columns,
        });
    }
    if record.iter().ne(columns.iter().copied()) {
        return Err(PerformanceCsvError::Header {
            file,
            found: excerpt(&record.iter().collect::<Vec<_>>().join(",")),
            expected: columns,
        });
    }
    while reader.read_record(&mut record).map_err(malformed)? {
        let line = record.position().map_or(0, |p| p.line());
        each(&Row {
            file,
            columns,
            line,
            record: &record,
        })?;
    }
    Ok(())
}

/// At most 60 characters of `text`, with control characters escaped, for error messages.
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 60;
    let mut out: String = text
        .chars()
        .take(MAX_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    format!("\"{out}\"")
}

#[cfg(test)]
mod tests;
