//! The watchlist file `daily_candidates.csv`: typed rows, an atomic writer and a validating
//! reader. Columns are the predecessor's 26 (SchemaVersion 1, same order, same label values)
//! followed by `DataAsOf` and `AnchorDate`. A header-only file is a valid empty list.
//!
//! The reader never panics and bounds what it accepts: the file must be a regular file of at
//! most [`MAX_BYTES`], with at most [`MAX_ROWS`] data rows of at most [`MAX_LINE_BYTES`] each,
//! and an error quotes at most a short excerpt of the input. The scanner writes at most
//! `scan.max_candidates` rows (default 20, about 250 bytes each), so the limits leave a wide
//! margin for legitimate lists while a stray multi-megabyte file is refused before it costs
//! the gate or an execution cycle anything (every row becomes work and a journal event).

use crate::fsutil::{excerpt, excerpt_bytes, read_regular, ReadError, SizeLimit};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub const SCHEMA_VERSION: u32 = 1;

/// The largest watchlist file accepted: 1 MiB. A full list of [`MAX_ROWS`] rows of a typical
/// 250 bytes is about 250 KB; four times that still reads in a millisecond.
pub const MAX_BYTES: u64 = 1 << 20;

/// The most data rows accepted (and written). The scanner writes at most
/// `scan.max_candidates` (default 20); 1,000 is fifty times that and still a small,
/// bounded amount of work for an execution cycle.
pub const MAX_ROWS: usize = 1000;

/// The longest line accepted, header included: 4 KiB. The header is about 400 bytes and a row
/// about 250 (the longest field is the sector name).
pub const MAX_LINE_BYTES: usize = 4096;

const SIZE_LIMIT: SizeLimit = SizeLimit {
    bytes: MAX_BYTES,
    what: "a watchlist",
    hint: "a watchlist has at most 1,000 rows of about 250 bytes, so this file is not one (the next scan replaces it)",
};

/// The header, in order.
pub const COLUMNS: [&str; 28] = [
    "SchemaVersion",
    "ScanDate",
    "Symbol",
    "Direction",
    "TrendTier",
    "Price",
    "Entry_Level",
    "Entry_DistPct",
    "Stop_Loss",
    "Target_R1",
    "Target_R2",
    "TrendScore",
    "Sector",
    "Anchor",
    "AVWAP_Slope",
    "Setup_VWAP_Control",
    "Setup_VWAP_Reclaim",
    "Setup_VWAP_Acceptance",
    "Setup_VWAP_DistPct",
    "Setup_AVWAP_Control",
    "Setup_AVWAP_Reclaim",
    "Setup_AVWAP_Acceptance",
    "Setup_AVWAP_DistPct",
    "Setup_Extension_State",
    "Setup_Gap_Reset",
    "Setup_Structure_State",
    "DataAsOf",
    "AnchorDate",
];

/// Declares a closed set of labels with their exact spelling in the file.
macro_rules! labels {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "expected one of {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

labels!(
    /// Trade direction; the system is long only.
    Direction { Long => "Long" }
);
labels!(
    /// Trend tier (A: close > SMA20 ≥ SMA50).
    TrendTier { A => "A", B => "B" }
);
labels!(
    /// The anchor whose AVWAP defines the entry level.
    AnchorKind {
        Ytd => "YTD",
        Gap => "Gap4%",
        VolumeBreakout => "VolBreakout",
        Mtd => "MTD",
        SwingLow20 => "SwingLow20",
        SwingHigh20 => "SwingHigh20",
    }
);
labels!(
    /// Which side controls price relative to a VWAP, and the structure state.
    ControlLabel { Bullish => "bullish", Bearish => "bearish", Neutral => "neutral", Unknown => "unknown" }
);
labels!(
    /// A recent reclaim or acceptance of a VWAP.
    CrossLabel { Bullish => "bullish", Bearish => "bearish", None => "none" }
);
labels!(
    /// How far price is extended from its VWAP.
    ExtensionLabel { Balanced => "balanced", Moderate => "moderate", Extended => "extended", Unknown => "unknown" }
);
labels!(
    /// Whether a gap recently reset the structure.
    GapResetLabel { None => "none", Recent => "recent", Stale => "stale" }
);

/// One candidate of the watchlist. Prices are exact decimals as written to the file.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchlistRow {
    pub scan_date: NaiveDate,
    pub symbol: String,
    pub direction: Direction,
    pub trend_tier: TrendTier,
    pub price: Decimal,
    pub entry_level: Decimal,
    pub entry_dist_pct: Decimal,
    pub stop_loss: Decimal,
    pub target_r1: Decimal,
    pub target_r2: Decimal,
    pub trend_score: Decimal,
    pub sector: String,
    pub anchor: AnchorKind,
    pub avwap_slope: Decimal,
    pub setup_vwap_control: ControlLabel,
    pub setup_vwap_reclaim: CrossLabel,
    pub setup_vwap_acceptance: CrossLabel,
    pub setup_vwap_dist_pct: Option<Decimal>,
    pub setup_avwap_control: ControlLabel,
    pub setup_avwap_reclaim: CrossLabel,
    pub setup_avwap_acceptance: CrossLabel,
    pub setup_avwap_dist_pct: Option<Decimal>,
    pub setup_extension_state: ExtensionLabel,
    pub setup_gap_reset: GapResetLabel,
    pub setup_structure_state: ControlLabel,
    /// The last daily bar the scan used.
    pub data_as_of: NaiveDate,
    /// The session of the chosen anchor bar.
    pub anchor_date: NaiveDate,
}

/// Decimal places written per numeric column (the predecessor's rounding).
const PRICE_DP: u32 = 2;
const TREND_SCORE_DP: u32 = 6;
const SLOPE_DP: u32 = 4;

fn fixed(value: Decimal, dp: u32) -> String {
    let mut v =
        value.round_dp_with_strategy(dp, rust_decimal::RoundingStrategy::MidpointNearestEven);
    v.rescale(dp);
    if v.is_zero() {
        // Rounding a tiny negative value must not write "-0.00".
        v.set_sign_positive(true);
    }
    v.to_string()
}

fn fixed_opt(value: Option<Decimal>, dp: u32) -> String {
    value.map(|v| fixed(v, dp)).unwrap_or_default()
}

impl WatchlistRow {
    /// The row's fields as written, in column order.
    pub fn to_record(&self) -> [String; 28] {
        [
            SCHEMA_VERSION.to_string(),
            self.scan_date.to_string(),
            self.symbol.clone(),
            self.direction.to_string(),
            self.trend_tier.to_string(),
            fixed(self.price, PRICE_DP),
            fixed(self.entry_level, PRICE_DP),
            fixed(self.entry_dist_pct, PRICE_DP),
            fixed(self.stop_loss, PRICE_DP),
            fixed(self.target_r1, PRICE_DP),
            fixed(self.target_r2, PRICE_DP),
            fixed(self.trend_score, TREND_SCORE_DP),
            self.sector.clone(),
            self.anchor.to_string(),
            fixed(self.avwap_slope, SLOPE_DP),
            self.setup_vwap_control.to_string(),
            self.setup_vwap_reclaim.to_string(),
            self.setup_vwap_acceptance.to_string(),
            fixed_opt(self.setup_vwap_dist_pct, PRICE_DP),
            self.setup_avwap_control.to_string(),
            self.setup_avwap_reclaim.to_string(),
            self.setup_avwap_acceptance.to_string(),
            fixed_opt(self.setup_avwap_dist_pct, PRICE_DP),
            self.setup_extension_state.to_string(),
            self.setup_gap_reset.to_string(),
            self.setup_structure_state.to_string(),
            self.data_as_of.to_string(),
            self.anchor_date.to_string(),
        ]
    }
}

/// What is wrong with a watchlist file. Line numbers are 1-based and count the header.
#[derive(Debug, thiserror::Error)]
pub enum WatchlistError {
    /// Missing, not a regular file, over [`MAX_BYTES`], or unreadable.
    #[error("cannot read the watchlist: {0}")]
    Read(#[from] ReadError),
    #[error("cannot write watchlist {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing to write {rows} rows to watchlist {path}: readers accept at most {max} (lower scan.max_candidates)", max = MAX_ROWS)]
    TooManyRows { path: PathBuf, rows: usize },
    #[error("{path}: line {line}, column {column}: {message}")]
    Invalid {
        path: PathBuf,
        line: u64,
        column: String,
        message: String,
    },
}

impl WatchlistError {
    fn invalid(path: &Path, line: u64, column: &str, message: impl Into<String>) -> Self {
        WatchlistError::Invalid {
            path: path.to_path_buf(),
            line,
            column: column.to_string(),
            message: message.into(),
        }
    }
}

/// Write the watchlist atomically (temp file, fsync, rename, fsync directory).
pub fn write_watchlist(path: &Path, rows: &[WatchlistRow]) -> Result<(), WatchlistError> {
    // Never write a list the gate and the execution service would refuse.
    if rows.len() > MAX_ROWS {
        return Err(WatchlistError::TooManyRows {
            path: path.to_path_buf(),
            rows: rows.len(),
        });
    }
    let bytes = render(rows);
    crate::fsutil::write_bytes_atomic(path, &bytes).map_err(|source| WatchlistError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The file's bytes for these rows (header always present, `\n` line ends).
pub fn render(rows: &[WatchlistRow]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail for I/O reasons, and every record has 28 fields.
    writer.write_record(COLUMNS).expect("in-memory CSV write");
    for row in rows {
        writer
            .write_record(row.to_record())
            .expect("in-memory CSV write");
    }
    writer.into_inner().expect("in-memory CSV flush")
}

/// Read and validate a watchlist file: a regular file (a FIFO or device is refused without
/// blocking) of at most [`MAX_BYTES`].
pub fn read_watchlist(path: &Path) -> Result<Vec<WatchlistRow>, WatchlistError> {
    let bytes = read_watchlist_bytes(path)?;
    parse_watchlist(&bytes, path)
}

/// The bytes of the watchlist at `path`, with the checks of [`read_watchlist`] but no parsing.
pub fn read_watchlist_bytes(path: &Path) -> Result<Vec<u8>, WatchlistError> {
    Ok(read_regular(path, SIZE_LIMIT)?)
}

/// The limit [`read_watchlist`] applies, for callers that open the file themselves.
pub fn size_limit() -> SizeLimit {
    SIZE_LIMIT
}

const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// Validate watchlist bytes; `path` names the file in errors. Never panics.
pub fn parse_watchlist(bytes: &[u8], path: &Path) -> Result<Vec<WatchlistRow>, WatchlistError> {
    let empty = |what: &str| {
        WatchlistError::invalid(
            path,
            1,
            "(header)",
            format!("the file is empty{what}; even an empty watchlist has a header line (was the write interrupted? re-run the scan)"),
        )
    };
    if bytes.is_empty() {
        return Err(empty(""));
    }
    if bytes.len() as u64 > MAX_BYTES {
        return Err(WatchlistError::invalid(
            path,
            1,
            "(file)",
            format!(
                "the file is {} bytes, more than the {MAX_BYTES} bytes a watchlist may have; {}",
                bytes.len(),
                SIZE_LIMIT.hint
            ),
        ));
    }
    let body = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    if body.iter().all(|b| matches!(b, b'\n' | b'\r')) {
        // Only line ends (and perhaps a byte-order mark): there is no header to check.
        return Err(empty(&format!(
            " but for line ends or a byte-order mark ({} bytes)",
            bytes.len()
        )));
    }
    if !bytes.ends_with(b"\n") {
        return Err(WatchlistError::invalid(
            path,
            bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1,
            "(end of file)",
            "the last line has no line end: the file looks truncated",
        ));
    }
    if let Some((index, line)) = bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .find(|(_, line)| line.len() > MAX_LINE_BYTES)
    {
        return Err(WatchlistError::invalid(
            path,
            index as u64 + 1,
            "(record)",
            format!(
                "the line is {} bytes long, more than the {MAX_LINE_BYTES} a watchlist line may have (it starts {}): not a watchlist",
                line.len(),
                excerpt_bytes(line)
            ),
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.byte_records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(csv_error(path, &e)),
        // The checks above leave no input without a first record; should the CSV reader still
        // find none (it skips blank lines and a byte-order mark), the file has no header.
        None => return Err(empty(" of records")),
    };
    check_header(path, &header)?;

    let mut rows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for record in records {
        let record = record.map_err(|e| csv_error(path, &e))?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if rows.len() >= MAX_ROWS {
            return Err(WatchlistError::invalid(
                path,
                line,
                "(file)",
                format!(
                    "more than {MAX_ROWS} data rows; the scanner writes at most scan.max_candidates (default 20), so this is not a watchlist: re-run the scan"
                ),
            ));
        }
        let row = parse_row(path, line, &record)?;
        if !seen.insert(row.symbol.clone()) {
            return Err(WatchlistError::invalid(
                path,
                line,
                "Symbol",
                format!("duplicate symbol {}", row.symbol),
            ));
        }
        if let Some(first) = rows.first().map(|r: &WatchlistRow| r.scan_date) {
            if row.scan_date != first {
                return Err(WatchlistError::invalid(
                    path,
                    line,
                    "ScanDate",
                    format!(
                        "ScanDate {} differs from the first row's {first}",
                        row.scan_date
                    ),
                ));
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

fn csv_error(path: &Path, e: &csv::Error) -> WatchlistError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    WatchlistError::invalid(path, line, "(record)", format!("not valid CSV: {e}"))
}

fn check_header(path: &Path, header: &csv::ByteRecord) -> Result<(), WatchlistError> {
    for (index, expected) in COLUMNS.iter().enumerate() {
        let found = header.get(index).map(String::from_utf8_lossy);
        let found = found.as_deref().map(|s| s.trim_start_matches('\u{feff}'));
        if found != Some(*expected) {
            return Err(WatchlistError::invalid(
                path,
                1,
                expected,
                format!(
                    "header column {} should be {expected:?}, found {}",
                    index + 1,
                    found.map_or("nothing".to_string(), excerpt)
                ),
            ));
        }
    }
    if header.len() > COLUMNS.len() {
        return Err(WatchlistError::invalid(
            path,
            1,
            "(header)",
            format!(
                "header has {} columns, expected {} ending with AnchorDate",
                header.len(),
                COLUMNS.len()
            ),
        ));
    }
    Ok(())
}

/// Reads the fields of one record by column name, turning every problem into a located error.
struct Fields<'a> {
    path: &'a Path,
    line: u64,
    record: &'a csv::ByteRecord,
}

impl Fields<'_> {
    fn text(&self, index: usize) -> Result<&str, WatchlistError> {
        let raw = self.record.get(index).unwrap_or_default();
        std::str::from_utf8(raw).map_err(|_| self.err(index, "not valid UTF-8"))
    }

    fn err(&self, index: usize, message: impl Into<String>) -> WatchlistError {
        WatchlistError::invalid(self.path, self.line, COLUMNS[index], message)
    }

    fn parse<T: FromStr>(&self, index: usize, what: &str) -> Result<T, WatchlistError>
    where
        T::Err: fmt::Display,
    {
        let text = self.text(index)?;
        text.parse::<T>()
            .map_err(|e| self.err(index, format!("{} is not {what}: {e}", excerpt(text))))
    }

    fn date(&self, index: usize) -> Result<NaiveDate, WatchlistError> {
        let text = self.text(index)?;
        NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            self.err(
                index,
                format!("{} is not a date (YYYY-MM-DD)", excerpt(text)),
            )
        })
    }

    fn decimal(&self, index: usize) -> Result<Decimal, WatchlistError> {
        let text = self.text(index)?;
        if text.is_empty() {
            return Err(self.err(index, "empty; a number is required"));
        }
        Decimal::from_str_exact(text)
            .map_err(|_| self.err(index, format!("{} is not a decimal number", excerpt(text))))
    }

    fn positive(&self, index: usize) -> Result<Decimal, WatchlistError> {
        let value = self.decimal(index)?;
        if value <= Decimal::ZERO {
            return Err(self.err(index, format!("{value} must be greater than zero")));
        }
        Ok(value)
    }

    fn optional_decimal(&self, index: usize) -> Result<Option<Decimal>, WatchlistError> {
        if self.text(index)?.is_empty() {
            Ok(None)
        } else {
            self.decimal(index).map(Some)
        }
    }

    fn label<T: FromStr<Err = String>>(&self, index: usize) -> Result<T, WatchlistError> {
        let text = self.text(index)?;
        text.parse::<T>()
            .map_err(|e| self.err(index, format!("{}: {e}", excerpt(text))))
    }
}

/// Symbols as brokers spell them: upper-case letters, digits, `.` and `-`.
pub fn is_valid_symbol(symbol: &str) -> bool {
    !symbol.is_empty()
        && symbol.len() <= 12
        && symbol
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && symbol.as_bytes()[0].is_ascii_uppercase()
}

fn parse_row(
    path: &Path,
    line: u64,
    record: &csv::ByteRecord,
) -> Result<WatchlistRow, WatchlistError> {
    if record.len() != COLUMNS.len() {
        return Err(WatchlistError::invalid(
            path,
            line,
            "(record)",
            format!(
                "has {} fields, expected {} (is the line truncated?)",
                record.len(),
                COLUMNS.len()
            ),
        ));
    }
    let f = Fields { path, line, record };
    let version: u32 = f.parse(0, "a schema version")?;
    if version != SCHEMA_VERSION {
        return Err(f.err(
            0,
            format!(
                "schema version {version} is not supported (this avwap reads {SCHEMA_VERSION})"
            ),
        ));
    }
    let symbol = f.text(2)?.to_string();
    if !is_valid_symbol(&symbol) {
        return Err(f.err(
            2,
            format!(
                "{} is not a ticker symbol (A-Z, 0-9, '.', '-')",
                excerpt(&symbol)
            ),
        ));
    }
    let sector = f.text(12)?.to_string();
    let row = WatchlistRow {
        scan_date: f.date(1)?,
        symbol,
        direction: f.label(3)?,
        trend_tier: f.label(4)?,
        price: f.positive(5)?,
        entry_level: f.positive(6)?,
        entry_dist_pct: f.decimal(7)?,
        stop_loss: f.positive(8)?,
        target_r1: f.positive(9)?,
        target_r2: f.positive(10)?,
        trend_score: f.decimal(11)?,
        sector,
        anchor: f.label(13)?,
        avwap_slope: f.decimal(14)?,
        setup_vwap_control: f.label(15)?,
        setup_vwap_reclaim: f.label(16)?,
        setup_vwap_acceptance: f.label(17)?,
        setup_vwap_dist_pct: f.optional_decimal(18)?,
        setup_avwap_control: f.label(19)?,
        setup_avwap_reclaim: f.label(20)?,
        setup_avwap_acceptance: f.label(21)?,
        setup_avwap_dist_pct: f.optional_decimal(22)?,
        setup_extension_state: f.label(23)?,
        setup_gap_reset: f.label(24)?,
        setup_structure_state: f.label(25)?,
        data_as_of: f.date(26)?,
        anchor_date: f.date(27)?,
    };
    if row.data_as_of >= row.scan_date {
        return Err(f.err(
            26,
            format!(
                "DataAsOf {} is not before ScanDate {}: a watchlist may only use bars of earlier sessions",
                row.data_as_of, row.scan_date
            ),
        ));
    }
    if row.anchor_date > row.data_as_of {
        return Err(f.err(
            27,
            format!(
                "AnchorDate {} is after DataAsOf {}",
                row.anchor_date, row.data_as_of
            ),
        ));
    }
    Ok(row)
}

#[cfg(test)]
mod tests;

/// Sample rows for other modules' tests.
#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) use super::tests::sample_row;
}
