//! CSV import of daily bars: the long format (`Date,Symbol,Open,High,Low,Close,Volume`, many
//! symbols per file) and the one-file-per-symbol format (`Date,Open,High,Low,Close,Volume`,
//! symbol from the file name), plain or gzip, into the [`BarStore`] or straight into memory.
//!
//! A row is rejected (with its line number and reason in the [`ImportReport`]) when it cannot
//! be *parsed* (wrong field count, a cell that is not a finite number, a bad date, an empty or
//! invalid symbol, a (symbol, date) already seen earlier in the same import) and, on an import
//! into the [`BarStore`], when it describes a bar the scanner's validation policy drops
//! ([`BarDefect`]: a non-session date, a price that is not positive, high < low, a close
//! outside [low, high], a negative volume). A rejected row is never written, so it never
//! replaces a stored bar: the store keeps what it had for that date. Bars the policy keeps
//! (an open outside [low, high], a volume of 0) are stored exactly as written; the scanner
//! clamps or counts them when it reads them. A defective row still claims its (symbol, date):
//! a later row for the same date is rejected as a duplicate, because nothing tells which of two
//! conflicting bars is right (the scanner's rule for duplicates, the one rule of every path:
//! see `store`). The in-memory reader
//! ([`read_long_csv`], for `--provider csv` and the demo) only parses: its bars go straight to
//! [`super::validate_series`], which drops and counts the same defects in `scan.json`.
//!
//! Inputs are bounded. Only regular files are opened (a FIFO or device is refused at once), of
//! at most [`MAX_FILE_BYTES`] on disk and [`MAX_DECOMPRESSED_BYTES`] once decompressed, with
//! lines of at most [`MAX_LINE_BYTES`]; the limits are enforced while streaming, so a gzip bomb
//! fails after reading a little with bounded memory. Error messages quote at most a short
//! excerpt of the input.
//!
//! A file whose header lacks a required column, is empty, is over a limit, or cannot be read to
//! the end (e.g. a truncated `.gz`) is a file-level [`ImportError`]; each file is written in
//! its own transaction, so such a file leaves the store untouched.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Serialize;

use super::series::DailyBar;
use super::store::{BarStore, StoreError};
use super::validate::BarDefect;
use crate::fsutil::{excerpt, open_regular, ReadError};
use crate::watchlist::is_valid_symbol;

/// At most this many rejected rows are listed in a report; all are counted.
pub const MAX_REJECTED_LISTED: usize = 1000;

/// The largest file imported, as stored on disk: 256 MiB. A long-format row is about 50
/// bytes, so this holds 5 million bars (the Russell 3000 over 6–7 years, three times the
/// scan's default history); more history goes in several files (one per symbol or per year),
/// each its own transaction.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// The most bytes read from one file after decompression: 256 MiB, the same bound as a plain
/// file. Enforced while streaming, so a `.gz` that expands a thousandfold stops after 256 MiB.
pub const MAX_DECOMPRESSED_BYTES: u64 = 256 << 20;

/// The longest line accepted: 64 KiB. A bar row is under 100 bytes and a header with many
/// extra columns a few KiB; the CSV reader holds one line in memory, so this bounds it (a
/// line of a billion zeros from a gzip bomb fails after 64 KiB).
pub const MAX_LINE_BYTES: u64 = 64 << 10;

/// The bounds applied to one input (the constants above; tests use smaller ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InputLimits {
    file_bytes: u64,
    decompressed_bytes: u64,
    line_bytes: u64,
}

const LIMITS: InputLimits = InputLimits {
    file_bytes: MAX_FILE_BYTES,
    decompressed_bytes: MAX_DECOMPRESSED_BYTES,
    line_bytes: MAX_LINE_BYTES,
};

const LONG_COLUMNS: [&str; 7] = ["Date", "Symbol", "Open", "High", "Low", "Close", "Volume"];
const PER_SYMBOL_COLUMNS: [&str; 6] = ["Date", "Open", "High", "Low", "Close", "Volume"];

/// Which of the two CSV shapes a file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvLayout {
    /// Decided per file by its header: a `Symbol` column means [`CsvLayout::Long`], otherwise
    /// [`CsvLayout::PerSymbol`] (and the file name must then be a valid symbol).
    Detect,
    /// `Date,Symbol,Open,High,Low,Close,Volume`: many symbols in one file.
    Long,
    /// `Date,Open,High,Low,Close,Volume`: the symbol is the file name's stem upper-cased
    /// (`brk.b.csv.gz` → `BRK.B`).
    PerSymbol,
}

/// A data row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedRow {
    pub file: PathBuf,
    /// 1-based physical line number in the (decompressed) file.
    pub line: u64,
    pub reason: String,
}

/// Header columns a file had beyond the required ones; their values were not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoredColumns {
    pub file: PathBuf,
    pub columns: Vec<String>,
}

/// What an import read, imported and rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub files: usize,
    /// Data rows read (header excluded); `rows_imported + rows_rejected == rows_read`.
    pub rows_read: u64,
    pub rows_imported: u64,
    pub rows_rejected: u64,
    /// Of the rejected rows, those that parsed but describe a bar the validation policy drops
    /// (store imports only).
    pub rows_defective: u64,
    /// The first [`MAX_REJECTED_LISTED`] rejected rows, in file order.
    pub rejected: Vec<RejectedRow>,
    pub ignored_columns: Vec<IgnoredColumns>,
    /// Distinct symbols with at least one imported row.
    pub symbols: usize,
}

impl ImportReport {
    /// Every rejected row, including those beyond the listed [`MAX_REJECTED_LISTED`].
    pub fn rejected_count(&self) -> u64 {
        self.rows_rejected
    }

    fn reject(&mut self, file: &Path, line: u64, reason: String) {
        self.rows_rejected += 1;
        if self.rejected.len() < MAX_REJECTED_LISTED {
            self.rejected.push(RejectedRow {
                file: file.to_path_buf(),
                line,
                reason,
            });
        }
    }
}

impl std::fmt::Display for RejectedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Cannot be opened, is not a regular file, or is larger than `MAX_FILE_BYTES` (256 MiB).
    #[error("{0}; nothing from this file was imported")]
    File(ReadError),
    #[error("{} holds more than {limit} bytes once decompressed; split it into smaller files (e.g. one per symbol or per year); nothing from this file was imported", path.display())]
    Decompressed { path: PathBuf, limit: u64 },
    #[error("{} line {line} is longer than {limit} bytes: this is not a bars CSV (binary data, or compressed without a .gz name?); nothing from this file was imported", path.display())]
    LineTooLong {
        path: PathBuf,
        line: u64,
        limit: u64,
    },
    #[error("cannot read {} at line {line}: {source}; {hint}; nothing from this file was imported", path.display())]
    Read {
        path: PathBuf,
        line: u64,
        source: csv::Error,
        hint: &'static str,
    },
    #[error("{} is empty; expected a header line {expected}", path.display())]
    Empty { path: PathBuf, expected: String },
    #[error("{} lacks column(s) {} (header: {}); the header must name {expected} (case-sensitive, any order)", path.display(), missing.join(", "), excerpt(&found.join(",")))]
    MissingColumns {
        path: PathBuf,
        missing: Vec<String>,
        found: Vec<String>,
        expected: String,
    },
    #[error("{} names column {column} twice; keep one", path.display())]
    DuplicateColumn { path: PathBuf, column: String },
    #[error("{} has a Symbol column, so it is a long-format file; import it as the long format (the per-symbol format takes the symbol from the file name)", path.display())]
    SymbolColumnInPerSymbolFile { path: PathBuf },
    #[error("{}: the file name does not give a valid symbol ({}); name per-symbol files like AAPL.csv or BRK.B.csv.gz", path.display(), excerpt(stem))]
    BadFileName { path: PathBuf, stem: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Imports one file (layout detected from its header) into `store` in one transaction.
pub fn import_file(store: &mut BarStore, path: &Path) -> Result<ImportReport, ImportError> {
    import_files_as(store, &[path], CsvLayout::Detect)
}

/// [`import_files_as`] with the layout of each file detected from its header.
pub fn import_files<P: AsRef<Path>>(
    store: &mut BarStore,
    paths: &[P],
) -> Result<ImportReport, ImportError> {
    import_files_as(store, paths, CsvLayout::Detect)
}

/// Imports `paths` in order, each file in its own transaction. A (symbol, date) seen earlier in
/// the same call (in this or an earlier file) is rejected. On a file-level error the files
/// before it stay imported (re-running the import is harmless: rows are upserted) and the
/// failing file leaves no trace.
pub fn import_files_as<P: AsRef<Path>>(
    store: &mut BarStore,
    paths: &[P],
    layout: CsvLayout,
) -> Result<ImportReport, ImportError> {
    let mut ctx = Context {
        check_bars: true,
        ..Context::default()
    };
    for path in paths {
        let path = path.as_ref();
        let mut writer = store.writer()?;
        let imported_before = ctx.report.rows_imported;
        parse_input(
            open_input(path, LIMITS)?,
            path,
            layout,
            &mut ctx,
            &mut |symbol, bar| writer.insert(symbol, bar),
        )?;
        let written = writer.commit()?;
        debug_assert_eq!(written as u64, ctx.report.rows_imported - imported_before);
    }
    ctx.report.symbols = ctx.imported_symbols.len();
    Ok(ctx.report)
}

/// Reads a long-format CSV (plain or `.gz`) into memory, bars grouped by symbol in file order,
/// with the same parsing and rejection rules as an import (for `--provider csv` and the demo).
pub fn read_long_csv(
    path: &Path,
) -> Result<(BTreeMap<String, Vec<DailyBar>>, ImportReport), ImportError> {
    read_long_csv_input(open_input(path, LIMITS)?, path)
}

/// [`read_long_csv`] over an already opened, already decompressed CSV stream (e.g. bytes
/// compiled into the binary); `path` only names the source in the report and errors.
pub fn read_long_csv_from<R: Read>(
    reader: R,
    path: &Path,
) -> Result<(BTreeMap<String, Vec<DailyBar>>, ImportReport), ImportError> {
    read_long_csv_input(Box::new(Limited::new(reader, LIMITS)), path)
}

fn read_long_csv_input(
    input: Box<dyn Read + '_>,
    path: &Path,
) -> Result<(BTreeMap<String, Vec<DailyBar>>, ImportReport), ImportError> {
    let mut ctx = Context::default();
    let mut bars: BTreeMap<String, Vec<DailyBar>> = BTreeMap::new();
    parse_input(
        input,
        path,
        CsvLayout::Long,
        &mut ctx,
        &mut |symbol, bar| {
            match bars.get_mut(symbol) {
                Some(list) => list.push(*bar),
                None => {
                    bars.insert(symbol.to_string(), vec![*bar]);
                }
            }
            Ok(())
        },
    )?;
    ctx.report.symbols = bars.len();
    Ok((bars, ctx.report))
}

/// State shared by all files of one import.
#[derive(Default)]
struct Context {
    /// Reject rows whose bar the validation policy drops (imports into the store).
    check_bars: bool,
    report: ImportReport,
    files: Vec<PathBuf>,
    /// Where each imported (symbol, date) came from: (index into `files`, line).
    seen: HashMap<String, HashMap<NaiveDate, (usize, u64)>>,
    /// Symbols with at least one imported row (a symbol may be seen only in rejected rows).
    imported_symbols: std::collections::HashSet<String>,
}

/// Column positions of the required fields in a file.
struct Columns {
    date: usize,
    symbol: Option<usize>,
    open: usize,
    high: usize,
    low: usize,
    close: usize,
    volume: usize,
    width: usize,
}

fn is_gzip(path: &Path) -> bool {
    path.file_name()
        .map(|name| name.to_string_lossy().to_ascii_lowercase().ends_with(".gz"))
        .unwrap_or(false)
}

/// `BRK.B.csv.gz` → `BRK.B`.
fn symbol_from_file_name(path: &Path) -> Result<String, ImportError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut stem = name.as_str();
    for suffix in [".gz", ".csv"] {
        if stem.len() >= suffix.len()
            && stem.is_char_boundary(stem.len() - suffix.len())
            && stem[stem.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        {
            stem = &stem[..stem.len() - suffix.len()];
        }
    }
    let symbol = stem.to_ascii_uppercase();
    if is_valid_symbol(&symbol) {
        Ok(symbol)
    } else {
        Err(ImportError::BadFileName {
            path: path.to_path_buf(),
            stem: stem.to_string(),
        })
    }
}

/// The file's bytes, decompressed when its name ends in `.gz`, within `limits`.
fn open_input(path: &Path, limits: InputLimits) -> Result<Box<dyn Read>, ImportError> {
    let (file, metadata) = open_regular(path).map_err(ImportError::File)?;
    if metadata.len() > limits.file_bytes {
        return Err(ImportError::File(ReadError::TooLarge {
            path: path.to_path_buf(),
            size: metadata.len(),
            limit: limits.file_bytes,
            what: "one bars file",
            hint: "split it into smaller files (e.g. one per symbol or per year)",
        }));
    }
    // A plain file is its own "decompressed" stream: the same limits hold if it grows.
    let file = file.take(limits.file_bytes.saturating_add(1));
    Ok(if is_gzip(path) {
        // Multi-member, because concatenated .gz files are valid gzip.
        let decoder = flate2::read::MultiGzDecoder::new(BufReader::new(file));
        Box::new(Limited::new(decoder, limits))
    } else {
        Box::new(Limited::new(file, limits))
    })
}

/// Which bound of [`InputLimits`] a stream crossed; travels inside the `io::Error` the CSV
/// reader returns, so the import can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LimitHit {
    Decompressed { limit: u64 },
    Line { line: u64, limit: u64 },
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitHit::Decompressed { limit } => write!(f, "more than {limit} bytes"),
            LimitHit::Line { line, limit } => {
                write!(f, "line {line} is longer than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for LimitHit {}

/// A reader that fails once more than `decompressed_bytes` have passed through it, or once a
/// line grows past `line_bytes`, before the CSV reader can buffer more.
struct Limited<R> {
    inner: R,
    limits: InputLimits,
    total: u64,
    /// Bytes of the current line so far.
    line_len: u64,
    /// Line ends seen so far (the current line is `newlines + 1`).
    newlines: u64,
}

impl<R: Read> Limited<R> {
    fn new(inner: R, limits: InputLimits) -> Self {
        Self {
            inner,
            limits,
            total: 0,
            line_len: 0,
            newlines: 0,
        }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let chunk = buf.get(..n).unwrap_or_default();
        self.total = self.total.saturating_add(n as u64);
        if self.total > self.limits.decompressed_bytes {
            return Err(std::io::Error::other(LimitHit::Decompressed {
                limit: self.limits.decompressed_bytes,
            }));
        }
        for (i, segment) in chunk.split(|b| *b == b'\n').enumerate() {
            if i > 0 {
                self.newlines += 1;
                self.line_len = 0;
            }
            self.line_len += segment.len() as u64;
            if self.line_len > self.limits.line_bytes {
                return Err(std::io::Error::other(LimitHit::Line {
                    line: self.newlines + 1,
                    limit: self.limits.line_bytes,
                }));
            }
        }
        Ok(n)
    }
}

/// The limit a CSV read error reports, if it is one.
fn limit_hit(error: &csv::Error) -> Option<LimitHit> {
    match error.kind() {
        csv::ErrorKind::Io(io) => io.get_ref()?.downcast_ref::<LimitHit>().copied(),
        _ => None,
    }
}

fn parse_input(
    input: Box<dyn Read + '_>,
    path: &Path,
    layout: CsvLayout,
    ctx: &mut Context,
    sink: &mut dyn FnMut(&str, &DailyBar) -> Result<(), StoreError>,
) -> Result<(), ImportError> {
    let gzip = is_gzip(path);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .buffer_capacity(1 << 16)
        .from_reader(input);
    let read_error =
        |reader: &csv::Reader<Box<dyn Read + '_>>, source: csv::Error| match limit_hit(&source) {
            Some(LimitHit::Decompressed { limit }) => ImportError::Decompressed {
                path: path.to_path_buf(),
                limit,
            },
            Some(LimitHit::Line { line, limit }) => ImportError::LineTooLong {
                path: path.to_path_buf(),
                line,
                limit,
            },
            None => ImportError::Read {
                path: path.to_path_buf(),
                line: reader.position().line(),
                source,
                hint: if gzip {
                    "the .gz file looks truncated or corrupt; copy or download it again"
                } else {
                    "check that the file is complete and readable"
                },
            },
        };

    let mut record = csv::ByteRecord::new();
    let has_header = reader
        .read_byte_record(&mut record)
        .map_err(|e| read_error(&reader, e))?;
    if !has_header {
        let expected = match layout {
            CsvLayout::PerSymbol => PER_SYMBOL_COLUMNS.join(","),
            CsvLayout::Long => LONG_COLUMNS.join(","),
            CsvLayout::Detect => format!(
                "{} (or {} in a file named after its symbol)",
                LONG_COLUMNS.join(","),
                PER_SYMBOL_COLUMNS.join(",")
            ),
        };
        return Err(ImportError::Empty {
            path: path.to_path_buf(),
            expected,
        });
    }
    let names = header_names(&record);
    let layout = match layout {
        CsvLayout::Detect => detect_layout(&names),
        fixed => fixed,
    };
    let file_symbol = match layout {
        CsvLayout::PerSymbol => Some(symbol_from_file_name(path)?),
        _ => None,
    };
    let columns = header_columns(path, layout, names, ctx)?;

    let file_index = ctx.files.len();
    ctx.files.push(path.to_path_buf());
    ctx.report.files += 1;

    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(read_error(&reader, e)),
        }
        let line = record.position().map_or(0, |p| p.line());
        ctx.report.rows_read += 1;
        let (symbol, bar) = match parse_row(&record, &columns, file_symbol.as_deref()) {
            Ok(parsed) => parsed,
            Err(reason) => {
                ctx.report.reject(path, line, reason);
                continue;
            }
        };
        let dates = match ctx.seen.get_mut(symbol) {
            Some(dates) => dates,
            None => ctx.seen.entry(symbol.to_string()).or_default(),
        };
        if let Some(&(first_file, first_line)) = dates.get(&bar.date) {
            let reason = if first_file == file_index {
                format!("duplicate of line {first_line} ({symbol} {})", bar.date)
            } else {
                let other = ctx
                    .files
                    .get(first_file)
                    .map_or(Path::new("?"), |p| p.as_path());
                format!(
                    "duplicate of {} line {first_line} ({symbol} {})",
                    other.display(),
                    bar.date
                )
            };
            ctx.report.reject(path, line, reason);
            continue;
        }
        dates.insert(bar.date, (file_index, line));
        if ctx.check_bars {
            if let Some(defect) = BarDefect::of(&bar) {
                ctx.report.rows_defective += 1;
                ctx.report.reject(
                    path,
                    line,
                    format!(
                        "{}: the row is not imported (a stored bar for that date is kept)",
                        defect.describe(&bar)
                    ),
                );
                continue;
            }
        }
        sink(symbol, &bar)?;
        ctx.report.rows_imported += 1;
        if !ctx.imported_symbols.contains(symbol) {
            ctx.imported_symbols.insert(symbol.to_string());
        }
    }
    Ok(())
}

fn header_names(record: &csv::ByteRecord) -> Vec<String> {
    record
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let name = String::from_utf8_lossy(raw);
            // Spreadsheet exports often start with a UTF-8 byte-order mark.
            let name = if i == 0 {
                name.trim_start_matches('\u{feff}')
            } else {
                &name
            };
            name.trim().to_string()
        })
        .collect()
}

/// Per-symbol only when the header clearly is one: no column that looks like a symbol column
/// (in any spelling) and all six per-symbol columns present. Anything else is read as the long
/// format, whose header check then names what is missing, rather than filing a mislabelled
/// long file under its file name.
fn detect_layout(names: &[String]) -> CsvLayout {
    let symbol_like = names
        .iter()
        .any(|n| n.eq_ignore_ascii_case("symbol") || n.eq_ignore_ascii_case("ticker"));
    let per_symbol_complete = PER_SYMBOL_COLUMNS
        .iter()
        .all(|wanted| names.iter().any(|n| n == wanted));
    if !symbol_like && per_symbol_complete {
        CsvLayout::PerSymbol
    } else {
        CsvLayout::Long
    }
}

/// Where the layout's required columns are; `layout` is `Long` or `PerSymbol` here.
fn header_columns(
    path: &Path,
    layout: CsvLayout,
    names: Vec<String>,
    ctx: &mut Context,
) -> Result<Columns, ImportError> {
    let find = |wanted: &str| -> Result<Option<usize>, ImportError> {
        let mut hits = names.iter().enumerate().filter(|(_, n)| *n == wanted);
        let first = hits.next().map(|(i, _)| i);
        if hits.next().is_some() {
            return Err(ImportError::DuplicateColumn {
                path: path.to_path_buf(),
                column: wanted.to_string(),
            });
        }
        Ok(first)
    };
    let required: &[&str] = match layout {
        CsvLayout::PerSymbol => &PER_SYMBOL_COLUMNS,
        CsvLayout::Long | CsvLayout::Detect => &LONG_COLUMNS,
    };
    if layout == CsvLayout::PerSymbol && find("Symbol")?.is_some() {
        return Err(ImportError::SymbolColumnInPerSymbolFile {
            path: path.to_path_buf(),
        });
    }
    let mut positions = HashMap::new();
    let mut missing = Vec::new();
    for name in required {
        match find(name)? {
            Some(i) => {
                positions.insert(*name, i);
            }
            None => missing.push((*name).to_string()),
        }
    }
    if !missing.is_empty() {
        return Err(ImportError::MissingColumns {
            path: path.to_path_buf(),
            missing,
            expected: required.join(","),
            found: names,
        });
    }
    let extra: Vec<String> = names
        .iter()
        .filter(|n| !required.contains(&n.as_str()))
        .cloned()
        .collect();
    if !extra.is_empty() {
        ctx.report.ignored_columns.push(IgnoredColumns {
            file: path.to_path_buf(),
            columns: extra,
        });
    }
    let at = |name: &str| positions.get(name).copied().unwrap_or(0);
    Ok(Columns {
        date: at("Date"),
        symbol: positions.get("Symbol").copied(),
        open: at("Open"),
        high: at("High"),
        low: at("Low"),
        close: at("Close"),
        volume: at("Volume"),
        width: names.len(),
    })
}

/// One data row → (symbol, bar), or the reason it cannot be parsed.
fn parse_row<'r>(
    record: &'r csv::ByteRecord,
    columns: &Columns,
    file_symbol: Option<&'r str>,
) -> Result<(&'r str, DailyBar), String> {
    if record.len() != columns.width {
        return Err(format!(
            "has {} fields, expected {} (is the line truncated or does a value contain a comma?)",
            record.len(),
            columns.width
        ));
    }
    let cell = |index: usize, name: &str| -> Result<&'r str, String> {
        let raw = record.get(index).unwrap_or_default();
        std::str::from_utf8(raw).map_err(|_| format!("{name} is not valid UTF-8"))
    };
    let number = |index: usize, name: &str| -> Result<f64, String> {
        let text = cell(index, name)?;
        if text.is_empty() {
            return Err(format!("{name} is empty"));
        }
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(value),
            _ => Err(format!("{name} {} is not a finite number", excerpt(text))),
        }
    };
    let symbol = match (file_symbol, columns.symbol) {
        (Some(symbol), _) => symbol,
        (None, Some(index)) => {
            let symbol = cell(index, "Symbol")?;
            if symbol.is_empty() {
                return Err("Symbol is empty".to_string());
            }
            if !is_valid_symbol(symbol) {
                return Err(format!(
                    "Symbol {} is not a valid symbol (upper-case letters, digits, '.', '-')",
                    excerpt(symbol)
                ));
            }
            symbol
        }
        (None, None) => return Err("no Symbol column".to_string()),
    };
    let date_text = cell(columns.date, "Date")?;
    let date = parse_date(date_text).ok_or_else(|| {
        format!(
            "Date {} is not a date (expected YYYY-MM-DD or YYYYMMDD)",
            excerpt(date_text)
        )
    })?;
    let bar = DailyBar {
        date,
        open: number(columns.open, "Open")?,
        high: number(columns.high, "High")?,
        low: number(columns.low, "Low")?,
        close: number(columns.close, "Close")?,
        volume: number(columns.volume, "Volume")?,
    };
    Ok((symbol, bar))
}

/// `YYYY-MM-DD` or `YYYYMMDD`, digits only, a real calendar date.
fn parse_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    let digits: Vec<u8> = match bytes.len() {
        10 if bytes[4] == b'-' && bytes[7] == b'-' => bytes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 4 && *i != 7)
            .map(|(_, b)| *b)
            .collect(),
        8 => bytes.to_vec(),
        _ => return None,
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = |range: std::ops::Range<usize>| {
        digits[range]
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let year = i32::try_from(value(0..4)).ok()?;
    NaiveDate::from_ymd_opt(year, value(4..6), value(6..8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn write_gz(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(text.as_bytes()).unwrap();
        std::fs::write(&path, enc.finish().unwrap()).unwrap();
        path
    }

    #[test]
    fn dates_in_both_forms() {
        assert_eq!(parse_date("2010-01-04"), Some(date(2010, 1, 4)));
        assert_eq!(parse_date("20100104"), Some(date(2010, 1, 4)));
        for bad in [
            "2010-1-4",
            "2010/01/04",
            "2010-02-30",
            "201001",
            "",
            "2010-01-0x",
            "ÿÿÿÿ-01-04",
            "２０１０0104",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn symbols_from_file_names() {
        let ok = |name: &str| symbol_from_file_name(Path::new(name)).unwrap();
        assert_eq!(ok("/x/AAPL.csv"), "AAPL");
        assert_eq!(ok("brk.b.csv"), "BRK.B");
        assert_eq!(ok("BRK.B.CSV.GZ"), "BRK.B");
        assert!(symbol_from_file_name(Path::new("my bars.csv")).is_err());
        assert!(symbol_from_file_name(Path::new(".csv")).is_err());
    }

    #[test]
    fn long_format_any_column_order_extra_columns_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "bars.csv",
            "Symbol,Volume,Date,Close,Low,High,Open,Note\n\
             MSFT,38409100,2010-01-04,30.95,30.59,31.1,30.62,x\n\
             AAPL,17633200,20100104,214.01,212.38,214.5,213.43,\n",
        );
        let (bars, report) = read_long_csv(&path).unwrap();
        assert_eq!(report.rows_read, 2);
        assert_eq!(report.rows_imported, 2);
        assert_eq!(report.symbols, 2);
        assert_eq!(
            report.ignored_columns,
            vec![IgnoredColumns {
                file: path.clone(),
                columns: vec!["Note".to_string()]
            }]
        );
        assert_eq!(
            bars["MSFT"],
            vec![DailyBar {
                date: date(2010, 1, 4),
                open: 30.62,
                high: 31.1,
                low: 30.59,
                close: 30.95,
                volume: 38_409_100.0
            }]
        );
    }

    #[test]
    fn bad_rows_are_rejected_with_line_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "bars.csv",
            "Date,Symbol,Open,High,Low,Close,Volume\n\
             2010-01-04,MSFT,30.62,31.1,30.59,30.95,38409100\n\
             2010-01-05,MSFT,30.85,abc,30.64,30.96,49749600\n\
             2010-01-06,MSFT,30.88,31.08,30.52\n\
             2010-13-07,MSFT,30.63,30.7,30.19,30.45,50559700\n\
             2010-01-07,,30.63,30.7,30.19,30.45,50559700\n\
             2010-01-07,msft,30.63,30.7,30.19,30.45,50559700\n\
             2010-01-04,MSFT,1,1,1,1,1\n\
             2010-01-08,MSFT,30.28,30.88,NaN,30.66,51197400\n\
             2010-01-11,MSFT,30.71,30.76,31.5,30.27,0\n",
        );
        let (bars, report) = read_long_csv(&path).unwrap();
        let reasons: Vec<(u64, &str)> = report
            .rejected
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(report.rows_read, 9);
        assert_eq!(report.rows_rejected, 7);
        assert_eq!(report.rows_imported, 2);
        assert_eq!(reasons[0].0, 3);
        assert!(reasons[0].1.contains("High \"abc\""), "{reasons:?}");
        assert!(
            reasons[1].1.contains("has 5 fields, expected 7"),
            "{reasons:?}"
        );
        assert!(reasons[2].1.contains("Date \"2010-13-07\""), "{reasons:?}");
        assert!(reasons[3].1.contains("Symbol is empty"), "{reasons:?}");
        assert!(reasons[4].1.contains("\"msft\""), "{reasons:?}");
        assert_eq!(reasons[5].0, 8);
        assert!(reasons[5].1.contains("duplicate of line 2"), "{reasons:?}");
        assert!(reasons[6].1.contains("Low \"NaN\""), "{reasons:?}");
        // The last row (low above high, zero volume) parses, so it is kept for validation.
        assert_eq!(bars["MSFT"].len(), 2);
        assert_eq!(bars["MSFT"][1].low, 31.5);
    }

    #[test]
    fn rejected_list_is_capped_but_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("Date,Symbol,Open,High,Low,Close,Volume\n");
        for _ in 0..1500 {
            text.push_str("bad,MSFT,1,1,1,1,1\n");
        }
        let path = write(dir.path(), "bars.csv", &text);
        let (_, report) = read_long_csv(&path).unwrap();
        assert_eq!(report.rows_rejected, 1500);
        assert_eq!(report.rejected.len(), MAX_REJECTED_LISTED);
        assert_eq!(report.symbols, 0);
    }

    #[test]
    fn per_symbol_files_into_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "brk.b.csv",
            "Date,Open,High,Low,Close,Volume\n2010-03-01,70.1,70.5,69.8,70.2,3000000\n",
        );
        let b = write_gz(
            dir.path(),
            "AAPL.csv.gz",
            "Date,Open,High,Low,Close,Volume\n\
             2010-01-04,213.43,214.5,212.38,214.01,17633200\n\
             2010-01-05,214.6,215.59,213.25,214.38,21496600\n",
        );
        let dup = write(
            dir.path(),
            "aapl.csv",
            "Date,Open,High,Low,Close,Volume\n2010-01-05,1,1,1,1,1\n",
        );
        let mut store = BarStore::open_in_memory().unwrap();
        let report = import_files(&mut store, &[&a, &b, &dup]).unwrap();
        assert_eq!(report.files, 3);
        assert_eq!(report.rows_imported, 3);
        assert_eq!(report.symbols, 2);
        assert_eq!(report.rejected.len(), 1);
        assert!(
            report.rejected[0].reason.contains("AAPL.csv.gz line 3"),
            "{report:?}"
        );
        assert_eq!(store.symbols().unwrap(), vec!["AAPL", "BRK.B"]);
        assert_eq!(store.bars("AAPL", None, None).unwrap()[1].close, 214.38);
    }

    #[test]
    fn per_symbol_file_with_symbol_column_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "AAPL.csv",
            "Date,Symbol,Open,High,Low,Close,Volume\n",
        );
        let mut store = BarStore::open_in_memory().unwrap();
        let err = import_files_as(&mut store, &[&path], CsvLayout::PerSymbol).unwrap_err();
        assert!(
            matches!(err, ImportError::SymbolColumnInPerSymbolFile { .. }),
            "{err}"
        );
    }

    #[test]
    fn layout_detection_prefers_the_long_format_when_unsure() {
        let names = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            detect_layout(&names("Date,Open,High,Low,Close,Adj Close,Volume")),
            CsvLayout::PerSymbol
        );
        for header in [
            "Date,Symbol,Open,High,Low,Close,Volume",
            "Date,Ticker,Open,High,Low,Close,Volume",
            "date,symbol,open,high,low,close,volume",
            "Date,Open,High,Low,Close",
        ] {
            assert_eq!(detect_layout(&names(header)), CsvLayout::Long, "{header}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "bars.csv",
            "Date,Ticker,Open,High,Low,Close,Volume\n2010-01-04,MSFT,1,1,1,1,1\n",
        );
        let mut store = BarStore::open_in_memory().unwrap();
        let err = import_files(&mut store, &[&path]).unwrap_err();
        assert!(err.to_string().contains("lacks column(s) Symbol"), "{err}");
    }

    #[test]
    fn duplicate_header_column_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "b.csv",
            "Date,Symbol,Open,High,Low,Close,Close,Volume\n",
        );
        let err = read_long_csv(&path).unwrap_err();
        assert!(
            err.to_string().contains("names column Close twice"),
            "{err}"
        );
    }

    /// Parses `path` as an import into the store would (bar checks on), with `limits`,
    /// collecting the accepted bars instead of writing them.
    fn parse_with(
        path: &Path,
        limits: InputLimits,
    ) -> Result<(Vec<(String, DailyBar)>, ImportReport), ImportError> {
        let mut ctx = Context {
            check_bars: true,
            ..Context::default()
        };
        let mut bars = Vec::new();
        parse_input(
            open_input(path, limits)?,
            path,
            CsvLayout::Detect,
            &mut ctx,
            &mut |symbol, bar| {
                bars.push((symbol.to_string(), *bar));
                Ok(())
            },
        )?;
        Ok((bars, ctx.report))
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn defective_bars_are_rejected_and_never_replace_stored_ones() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(
            dir.path(),
            "good.csv",
            "Date,Symbol,Open,High,Low,Close,Volume\n\
             2010-08-02,ZZZ,10,11,9,10.5,1000\n\
             2010-08-03,ZZZ,10,11,9,10.5,1000\n\
             2010-08-04,ZZZ,10,11,9,10.5,1000\n\
             2010-08-05,ZZZ,10,11,9,10.5,1000\n\
             2010-08-06,ZZZ,10,11,9,10.5,1000\n\
             2010-08-09,ZZZ,10,11,9,10.5,1000\n",
        );
        let bad = write(
            dir.path(),
            "bad.csv",
            "Date,Symbol,Open,High,Low,Close,Volume\n\
             2010-08-02,ZZZ,10,9,11,10.5,1000\n\
             2010-08-03,ZZZ,10,11,9,12,1000\n\
             2010-08-04,ZZZ,0,11,9,10.5,1000\n\
             2010-08-05,ZZZ,10,11,9,10.5,-5\n\
             2010-08-07,ZZZ,10,11,9,10.5,1000\n\
             1999-12-31,ZZZ,10,11,9,10.5,1000\n\
             2010-08-06,ZZZ,12,11,9,10.5,0\n\
             2010-08-06,ZZZ,10,11,9,10.5,1000\n",
        );
        let mut store = BarStore::open_in_memory().unwrap();
        import_files(&mut store, &[&good]).unwrap();
        let before = store.bars("ZZZ", None, None).unwrap();
        let report = import_files(&mut store, &[&bad]).unwrap();
        assert_eq!(report.rows_read, 8);
        assert_eq!(report.rows_imported, 1, "{report:?}");
        assert_eq!(report.rows_rejected, 7);
        assert_eq!(report.rows_defective, 6);
        let reasons: Vec<(u64, &str)> = report
            .rejected
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        let expected = [
            (2, "High 9 is below Low 11"),
            (3, "Close 12 is outside [Low 9, High 11]"),
            (4, "prices must be finite and positive (Open 0,"),
            (5, "Volume -5 is negative"),
            (
                6,
                "Date 2010-08-07 is not an NYSE session (weekend or holiday)",
            ),
            (
                7,
                "Date 1999-12-31 is outside the NYSE calendar avwap knows (2000–2035)",
            ),
            (9, "duplicate of line 8 (ZZZ 2010-08-06)"),
        ];
        for ((line, reason), (want_line, want)) in reasons.iter().zip(expected) {
            assert_eq!(*line, want_line, "{reasons:?}");
            assert!(reason.contains(want), "{reason}");
        }
        assert!(reasons[0]
            .1
            .ends_with("a stored bar for that date is kept)"));
        // The one accepted row: an open outside [low, high] and volume 0 are kept as written.
        let after = store.bars("ZZZ", None, None).unwrap();
        let changed: Vec<_> = after.iter().filter(|b| !before.contains(b)).collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!((changed[0].open, changed[0].volume), (12.0, 0.0));
        assert_eq!(after.len(), before.len());
        for bar in &before {
            if bar.date != date(2010, 8, 6) {
                assert!(after.contains(bar), "{bar:?} was replaced");
            }
        }
    }

    #[test]
    fn the_in_memory_reader_leaves_bar_defects_to_the_scanner() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "bars.csv",
            "Date,Symbol,Open,High,Low,Close,Volume\n2010-08-02,ZZZ,10,9,11,10.5,-1\n",
        );
        let (bars, report) = read_long_csv(&path).unwrap();
        assert_eq!((report.rows_imported, report.rows_defective), (1, 0));
        assert_eq!(bars["ZZZ"].len(), 1);
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bars.csv");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("mkfifo (coreutils)");
        assert!(status.success());
        let mut store = BarStore::open_in_memory().unwrap();
        let err = import_files(&mut store, &[&path]).unwrap_err();
        assert!(
            matches!(err, ImportError::File(ReadError::NotRegular { .. })),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("is a FIFO (named pipe), not a regular file"),
            "{err}"
        );
        assert!(read_long_csv(&path).is_err());
    }

    const SMALL: InputLimits = InputLimits {
        file_bytes: 4096,
        decompressed_bytes: 8192,
        line_bytes: 256,
    };

    #[test]
    fn a_file_over_the_size_limit_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "bars.csv", &"x".repeat(4097));
        let err = parse_with(&path, SMALL).unwrap_err();
        assert!(
            err.to_string()
                .contains("is 4097 bytes, more than the 4096 bytes accepted for one bars file"),
            "{err}"
        );
    }

    #[test]
    fn a_gzip_bomb_of_zeros_stops_at_the_line_limit() {
        let dir = tempfile::tempdir().unwrap();
        // 64 concatenated members of 1 MiB of zeros each: 64 MiB once decompressed.
        let member = gz(&vec![0u8; 1 << 20]);
        let bomb: Vec<u8> = member
            .iter()
            .copied()
            .cycle()
            .take(member.len() * 64)
            .collect();
        let path = dir.path().join("bars.csv.gz");
        std::fs::write(&path, bomb).unwrap();
        let started = std::time::Instant::now();
        let err = read_long_csv(&path).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(
            matches!(err, ImportError::LineTooLong { line: 1, .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("line 1 is longer than 65536 bytes"),
            "{message}"
        );
        assert!(message.len() < 400, "{message}");
    }

    #[test]
    fn a_gzip_bomb_of_rows_stops_at_the_decompressed_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("Date,Symbol,Open,High,Low,Close,Volume\n");
        while text.len() < 100_000 {
            text.push_str("2010-08-02,ZZZ,10,11,9,10.5,1000\n");
        }
        let path = dir.path().join("bars.csv.gz");
        std::fs::write(&path, gz(text.as_bytes())).unwrap();
        let err = parse_with(&path, SMALL).unwrap_err();
        assert!(
            matches!(err, ImportError::Decompressed { limit: 8192, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("more than 8192 bytes once decompressed"),
            "{err}"
        );
    }

    #[test]
    fn a_huge_header_is_quoted_briefly() {
        let dir = tempfile::tempdir().unwrap();
        let header = format!("Date,{}\n", "Junk,".repeat(10_000));
        let path = write(dir.path(), "bars.csv", &header);
        let err = read_long_csv(&path).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("lacks column(s) Symbol"), "{message}");
        assert!(message.contains("bytes in all)"), "{message}");
        assert!(message.len() < 700, "{} bytes: {message}", message.len());
    }

    #[test]
    fn a_long_bad_cell_is_quoted_briefly() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "Date,Symbol,Open,High,Low,Close,Volume\n2010-08-02,ZZZ,{},11,9,10.5,1000\n",
            "9".repeat(5000) + "x"
        );
        let path = write(dir.path(), "bars.csv", &text);
        let (_, report) = read_long_csv(&path).unwrap();
        let reason = &report.rejected[0].reason;
        assert!(reason.starts_with("Open \"999"), "{reason}");
        assert!(reason.len() < 300, "{reason}");
    }

    mod fuzz {
        //! The bars CSV parser on arbitrary bytes and on mutations of a valid file, in both
        //! modes (store import with the bar checks, in-memory read) and with layout detection:
        //! it returns, never panics, and keeps its counts consistent. `cargo test` runs a few
        //! thousand cases per target; the `#[ignore]`d `*_million` tests run 1,000,000 and
        //! print the count and time.
        use super::*;
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};

        const VALID: &str = "Date,Symbol,Open,High,Low,Close,Volume\n\
            2010-08-02,ZZZ,10,11,9,10.5,1000\n\
            2010-08-03,ZZZ,10.2,11.5,9.5,11,1200\n\
            20100804,BRK.B,70.1,70.5,69.8,70.2,3000000\n\
            2010-08-05,AAPL,213.43,214.5,212.38,214.01,17633200\n";

        /// Parses `bytes` as file `name` in both modes; returns the rows imported with the bar
        /// checks on.
        fn check(bytes: &[u8], name: &str) -> u64 {
            let path = Path::new(name);
            let mut imported = 0;
            for check_bars in [true, false] {
                let mut ctx = Context {
                    check_bars,
                    ..Context::default()
                };
                let mut accepted = 0u64;
                let input: Box<dyn Read> = Box::new(Limited::new(bytes, LIMITS));
                let result =
                    parse_input(input, path, CsvLayout::Detect, &mut ctx, &mut |_, bar| {
                        if check_bars {
                            assert_eq!(BarDefect::of(bar), None, "{bar:?}");
                        }
                        accepted += 1;
                        Ok(())
                    });
                match result {
                    Ok(()) => {
                        let r = &ctx.report;
                        assert_eq!(r.rows_imported + r.rows_rejected, r.rows_read);
                        assert_eq!(r.rows_imported, accepted);
                        assert!(r.rows_defective <= r.rows_rejected);
                        for rejected in &r.rejected {
                            assert!(rejected.reason.len() < 600, "{rejected}");
                        }
                        if check_bars {
                            imported = accepted;
                        }
                    }
                    Err(e) => {
                        let message = e.to_string();
                        assert!(message.len() < 1500, "{} bytes: {message}", message.len());
                    }
                }
            }
            imported
        }

        fn mutated() -> impl Strategy<Value = Vec<u8>> {
            let token = prop::sample::select(vec![
                &b","[..],
                b"\n",
                b"\r\n",
                b"\"",
                b"\xef\xbb\xbf",
                b"\xff",
                b"\0",
                b"-",
                b"1e309",
                b"NaN",
                b"inf",
                b"2010-02-30",
                b"Symbol",
                b"",
            ]);
            let edit = (
                0usize..4,
                any::<prop::sample::Index>(),
                any::<u8>(),
                token,
                0usize..48,
            );
            prop::collection::vec(edit, 1..8).prop_map(|edits| {
                let mut bytes = VALID.as_bytes().to_vec();
                for (kind, at, byte, token, len) in edits {
                    let at = at.index(bytes.len() + 1);
                    match kind {
                        0 if at < bytes.len() => bytes[at] = byte,
                        1 => {
                            bytes.splice(at..at, token.iter().copied());
                        }
                        2 => {
                            let end = (at + len).min(bytes.len());
                            bytes.drain(at..end);
                        }
                        _ => {
                            let end = (at + len).min(bytes.len());
                            let copy = bytes[at..end].to_vec();
                            bytes.splice(at..at, copy);
                        }
                    }
                }
                bytes
            })
        }

        fn arbitrary() -> impl Strategy<Value = Vec<u8>> {
            prop::collection::vec(any::<u8>(), 0..600)
        }

        fn name() -> impl Strategy<Value = &'static str> {
            prop::sample::select(vec!["bars.csv", "AAPL.csv", "brk.b.csv.gz", "x y.csv"])
        }

        /// Runs `cases` cases; returns the time taken and the rows imported in all.
        fn run(cases: u32, strategy: impl Strategy<Value = Vec<u8>>) -> (std::time::Duration, u64) {
            let mut runner = TestRunner::new(Config {
                cases,
                failure_persistence: None,
                ..Config::default()
            });
            let imported = std::sync::atomic::AtomicU64::new(0);
            let started = std::time::Instant::now();
            runner
                .run(&(strategy, name()), |(bytes, name)| {
                    let n = check(&bytes, name);
                    imported.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    Ok(())
                })
                .unwrap();
            (started.elapsed(), imported.into_inner())
        }

        #[test]
        fn arbitrary_bytes() {
            run(3000, arbitrary());
        }

        #[test]
        fn mutations_of_a_valid_file() {
            let (_, imported) = run(3000, mutated());
            // Not vacuous: many mutated files still import rows.
            assert!(imported > 1000, "{imported} rows imported");
        }

        #[test]
        #[ignore = "long: 1,000,000 cases; run with --ignored --nocapture"]
        fn arbitrary_bytes_million() {
            let (took, imported) = run(1_000_000, arbitrary());
            println!(
                "bars CSV parser, arbitrary bytes: 1000000 cases ({imported} rows imported) in {took:.1?}"
            );
        }

        #[test]
        #[ignore = "long: 1,000,000 cases; run with --ignored --nocapture"]
        fn mutations_million() {
            let (took, imported) = run(1_000_000, mutated());
            println!(
                "bars CSV parser, mutations of a valid file: 1000000 cases ({imported} rows imported) in {took:.1?}"
            );
        }
    }

    #[test]
    fn file_error_rolls_back_that_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(
            dir.path(),
            "MSFT.csv",
            "Date,Open,High,Low,Close,Volume\n2010-01-04,30.62,31.1,30.59,30.95,38409100\n",
        );
        let mut gz = {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let mut text = String::from("Date,Open,High,Low,Close,Volume\n");
            for day in 1..=28 {
                text.push_str(&format!("2010-02-{day:02},10,11,9,10.5,1000\n"));
            }
            enc.write_all(text.as_bytes()).unwrap();
            enc.finish().unwrap()
        };
        gz.truncate(gz.len() - 12);
        let bad = dir.path().join("IBM.csv.gz");
        std::fs::write(&bad, gz).unwrap();
        let mut store = BarStore::open_in_memory().unwrap();
        let err = import_files(&mut store, &[&good, &bad]).unwrap_err();
        assert!(matches!(err, ImportError::Read { .. }), "{err}");
        assert!(err.to_string().contains("truncated or corrupt"), "{err}");
        assert_eq!(store.symbols().unwrap(), vec!["MSFT"]);
    }
}
