//! CSV import of daily bars: the long format (`Date,Symbol,Open,High,Low,Close,Volume`, many
//! symbols per file) and the one-file-per-symbol format (`Date,Open,High,Low,Close,Volume`,
//! symbol from the file name), plain or gzip, into the [`BarStore`] or straight into memory.
//!
//! This module owns parsing and reporting, not bar quality. A row is rejected (with its line
//! number and reason in the [`ImportReport`]) only when it cannot be *parsed*: wrong field
//! count, a cell that is not a finite number, a bad date, an empty or invalid symbol, or a
//! (symbol, date) already seen earlier in the same import. A row that parses but describes a
//! broken bar (high < low, zero volume, a weekend date, …) is imported exactly as written:
//! [`super::validate_series`] applies the defect policy when the scanner reads the bars, so a
//! policy change never requires a re-import and the store stays a faithful copy of the source.
//!
//! A file whose header lacks a required column, is empty, or cannot be read to the end (e.g. a
//! truncated `.gz`) is a file-level [`ImportError`]; each file is written in its own
//! transaction, so such a file leaves the store untouched.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Serialize;

use super::series::DailyBar;
use super::store::{BarStore, StoreError};
use crate::watchlist::is_valid_symbol;

/// At most this many rejected rows are listed in a report; all are counted.
pub const MAX_REJECTED_LISTED: usize = 1000;

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
    #[error("cannot open {}: {source}; check the path and its permissions", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
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
    #[error("{} lacks column(s) {} (header: {}); the header must name {expected} (case-sensitive, any order)", path.display(), missing.join(", "), found.join(","))]
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
    #[error("{}: the file name does not give a valid symbol ({stem:?}); name per-symbol files like AAPL.csv or BRK.B.csv.gz", path.display())]
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
    let mut ctx = Context::default();
    for path in paths {
        let path = path.as_ref();
        let mut writer = store.writer()?;
        let imported_before = ctx.report.rows_imported;
        parse_input(
            open_input(path)?,
            path,
            layout,
            &mut ctx,
            &mut |symbol, bar| writer.insert(symbol, bar),
        )?;
        let written = writer.commit()?;
        debug_assert_eq!(written as u64, ctx.report.rows_imported - imported_before);
    }
    ctx.report.symbols = ctx.seen.len();
    Ok(ctx.report)
}

/// Reads a long-format CSV (plain or `.gz`) into memory, bars grouped by symbol in file order,
/// with the same parsing and rejection rules as an import (for `--provider csv` and the demo).
pub fn read_long_csv(
    path: &Path,
) -> Result<(BTreeMap<String, Vec<DailyBar>>, ImportReport), ImportError> {
    read_long_csv_input(open_input(path)?, path)
}

/// [`read_long_csv`] over an already opened, already decompressed CSV stream (e.g. bytes
/// compiled into the binary); `path` only names the source in the report and errors.
pub fn read_long_csv_from<R: Read>(
    reader: R,
    path: &Path,
) -> Result<(BTreeMap<String, Vec<DailyBar>>, ImportReport), ImportError> {
    read_long_csv_input(Box::new(reader), path)
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
    report: ImportReport,
    files: Vec<PathBuf>,
    /// Where each imported (symbol, date) came from: (index into `files`, line).
    seen: HashMap<String, HashMap<NaiveDate, (usize, u64)>>,
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

/// The file's bytes, decompressed when its name ends in `.gz`.
fn open_input(path: &Path) -> Result<Box<dyn Read>, ImportError> {
    let file = File::open(path).map_err(|source| ImportError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(if is_gzip(path) {
        // Multi-member, because concatenated .gz files are valid gzip.
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(file)
    })
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
        |reader: &csv::Reader<Box<dyn Read + '_>>, source: csv::Error| ImportError::Read {
            path: path.to_path_buf(),
            line: reader.position().line(),
            source,
            hint: if gzip {
                "the .gz file looks truncated or corrupt; copy or download it again"
            } else {
                "check that the file is complete and readable"
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
        sink(symbol, &bar)?;
        ctx.report.rows_imported += 1;
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
            _ => Err(format!("{name} {text:?} is not a finite number")),
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
                    "Symbol {symbol:?} is not a valid symbol (upper-case letters, digits, '.', '-')"
                ));
            }
            symbol
        }
        (None, None) => return Err("no Symbol column".to_string()),
    };
    let date_text = cell(columns.date, "Date")?;
    let date = parse_date(date_text).ok_or_else(|| {
        format!("Date {date_text:?} is not a date (expected YYYY-MM-DD or YYYYMMDD)")
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
