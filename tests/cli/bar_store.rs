//! The market-data edge on real inputs: the bundled demo data set (data/demo/bars.csv.gz,
//! whose quirks are measured in data/demo/quirks.json) imported into a SQLite bar store on
//! disk, read back in one scan and validated; plus the broken inputs an operator will hit.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use avwap::market_data::{
    import_files, import_files_as, read_long_csv, validate_series, BarStore, CsvLayout, DailyBar,
    DefectCounts, ImportError, ImportReport, StoreError, SCHEMA_VERSION,
};
use chrono::NaiveDate;
use serde_json::Value;

fn demo_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo/bars.csv.gz")
}

fn quirks() -> &'static Value {
    static QUIRKS: OnceLock<Value> = OnceLock::new();
    QUIRKS.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo/quirks.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn last_session() -> NaiveDate {
    date(quirks()["last_session"].as_str().unwrap())
}

/// The demo imported once into a store file shared (read-only) by the tests below.
struct Imported {
    _dir: tempfile::TempDir,
    path: PathBuf,
    report: ImportReport,
}

fn imported() -> &'static Imported {
    static IMPORTED: OnceLock<Imported> = OnceLock::new();
    IMPORTED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bars.sqlite");
        let mut store = BarStore::open(&path).unwrap();
        let report = import_files(&mut store, &[demo_csv()]).unwrap();
        Imported {
            _dir: dir,
            path,
            report,
        }
    })
}

fn open_imported() -> BarStore {
    BarStore::open(&imported().path).unwrap()
}

/// Every bar of the store, per symbol, in one scan.
fn all_bars(store: &BarStore) -> BTreeMap<String, Vec<DailyBar>> {
    let mut out = BTreeMap::new();
    store
        .for_each_symbol(None, last_session(), |symbol, bars| {
            assert!(out.insert(symbol.to_string(), bars).is_none());
        })
        .unwrap();
    out
}

#[test]
fn demo_import_counts() {
    let rows = quirks()["rows"].as_u64().unwrap();
    let symbols = quirks()["symbols"].as_u64().unwrap() as usize;
    let report = &imported().report;
    assert_eq!(report.files, 1);
    assert_eq!(report.rows_read, rows);
    assert_eq!(report.rows_imported, rows);
    assert_eq!(report.rejected_count(), 0, "{:?}", report.rejected);
    assert!(report.ignored_columns.is_empty());
    assert_eq!(report.symbols, symbols);

    let store = open_imported();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.row_count().unwrap(), rows);
    let stored = store.symbols().unwrap();
    assert_eq!(stored.len(), symbols);
    for dotted in quirks()["symbols_with_dot"].as_array().unwrap() {
        assert!(stored.iter().any(|s| s == dotted.as_str().unwrap()));
    }
}

#[test]
fn demo_validation_matches_the_measured_quirks() {
    let store = open_imported();
    let all = all_bars(&store);
    assert_eq!(all.len(), 524);

    let ohlc = &quirks()["ohlc_inconsistent_rows"];
    let mut expected_clamped: BTreeSet<(String, NaiveDate)> = BTreeSet::new();
    for row in ohlc["rows"].as_array().unwrap() {
        // Every broken row of the demo set breaks the open, never the close.
        for kind in row["broken"].as_array().unwrap() {
            assert!(kind.as_str().unwrap().starts_with("open_"), "{row}");
        }
        expected_clamped.insert((
            row["symbol"].as_str().unwrap().to_string(),
            date(row["date"].as_str().unwrap()),
        ));
    }
    let gaps = quirks()["gaps_vs_nyse_calendar"]["by_symbol"]
        .as_object()
        .unwrap();

    let mut totals = DefectCounts::default();
    let mut clamped = BTreeSet::new();
    let mut kept = 0;
    for (symbol, bars) in &all {
        let raw = bars.clone();
        let (series, counts) = validate_series(symbol, bars.clone());
        assert_eq!(series.len(), raw.len(), "{symbol}: nothing is dropped");
        kept += series.len();
        let expected_gaps = gaps.get(symbol).map_or(0, |v| v.as_u64().unwrap()) as usize;
        assert_eq!(counts.missing_sessions, expected_gaps, "{symbol}");
        for (i, bar) in raw.iter().enumerate() {
            if series.open[i] != bar.open {
                clamped.insert((symbol.clone(), bar.date));
                assert!(series.open[i] == bar.high || series.open[i] == bar.low);
            }
        }
        totals.add(&counts);
    }
    assert_eq!(kept as u64, quirks()["rows"].as_u64().unwrap());
    assert_eq!(
        totals.open_outside_range as u64,
        ohlc["count"].as_u64().unwrap()
    );
    assert_eq!(totals.open_outside_range, 78);
    assert_eq!(clamped, expected_clamped);
    assert_eq!(
        totals.missing_sessions as u64,
        quirks()["gaps_vs_nyse_calendar"]["missing_rows"]
            .as_u64()
            .unwrap()
    );
    assert_eq!(
        totals,
        DefectCounts {
            open_outside_range: 78,
            missing_sessions: 3774,
            ..DefectCounts::default()
        }
    );
}

/// The first data lines of the demo file, parsed independently of the importer.
fn demo_lines(count: usize) -> Vec<(String, DailyBar)> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(demo_csv()).unwrap())
        .take(64 * 1024)
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .skip(1)
        .take(count)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let num = |i: usize| f[i].parse::<f64>().unwrap();
            (
                f[1].to_string(),
                DailyBar {
                    date: date(f[0]),
                    open: num(2),
                    high: num(3),
                    low: num(4),
                    close: num(5),
                    volume: num(6),
                },
            )
        })
        .collect()
}

#[test]
fn demo_bars_round_trip_exactly() {
    let store = open_imported();
    for (symbol, bar) in demo_lines(300) {
        assert_eq!(
            store.bars(&symbol, Some(bar.date), Some(bar.date)).unwrap(),
            vec![bar]
        );
    }
    // A 4-decimal price from the split table in the data set's README.
    let esrx = store
        .bars("ESRX", Some(date("2010-06-04")), Some(date("2010-06-08")))
        .unwrap();
    assert_eq!(esrx.len(), 2);
    assert_eq!(esrx[0].close, 99.1325);
    assert_eq!(esrx[1].close, 50.92);

    // The in-memory reader (--provider csv, the demo) sees exactly what the store holds.
    let (in_memory, report) = read_long_csv(&demo_csv()).unwrap();
    assert_eq!(report.rows_imported, imported().report.rows_imported);
    assert_eq!(report.symbols, 524);
    assert_eq!(in_memory, all_bars(&store));
}

#[test]
fn reimport_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.sqlite");
    let mut store = BarStore::open(&path).unwrap();
    let first = import_files(&mut store, &[demo_csv()]).unwrap();
    let rows = store.row_count().unwrap();
    let before = store.bars("AAPL", None, None).unwrap();
    drop(store);
    let mut store = BarStore::open(&path).unwrap();
    let second = import_files(&mut store, &[demo_csv()]).unwrap();
    assert_eq!(first, second);
    assert_eq!(store.row_count().unwrap(), rows);
    assert_eq!(rows, 122_574);
    assert_eq!(store.bars("AAPL", None, None).unwrap(), before);
}

#[test]
fn last_stored_date_per_symbol() {
    let store = open_imported();
    let early: HashMap<String, NaiveDate> = quirks()["early_end_symbols"]["last_date"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(s, d)| (s.clone(), date(d.as_str().unwrap())))
        .collect();
    assert_eq!(early["AMGN"], date("2010-08-19"));
    let all = store.last_stored_dates().unwrap();
    assert_eq!(all.len(), 524);
    for (symbol, last) in &all {
        let expected = early.get(symbol).copied().unwrap_or_else(last_session);
        assert_eq!(*last, expected, "{symbol}");
        assert_eq!(store.last_stored_date(symbol).unwrap(), Some(expected));
    }
    assert_eq!(
        store.last_stored_date("WYE").unwrap(),
        Some(date("2009-10-15"))
    );
    assert_eq!(store.last_stored_date("NOPE").unwrap(), None);
}

#[test]
fn window_reads_respect_both_bounds() {
    let store = open_imported();
    let mut symbols = 0;
    let end = date("2009-12-31");
    store
        .for_each_symbol(Some(date("2009-12-01")), end, |symbol, bars| {
            symbols += 1;
            assert!(!bars.is_empty(), "{symbol}");
            assert!(bars.first().unwrap().date >= date("2009-12-01"));
            assert!(bars.last().unwrap().date <= end);
            assert!(bars.windows(2).all(|w| w[0].date < w[1].date));
        })
        .unwrap();
    // Symbols ending before December 2009 or starting after it are not visited.
    assert!(symbols > 450 && symbols < 524, "{symbols}");
    assert!(store
        .bars("BRK.B", None, Some(date("2010-02-26")))
        .unwrap()
        .is_empty());
}

// ---- broken inputs -------------------------------------------------------------------------

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn wrong_columns_are_a_file_error_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bars.csv",
        b"Date,Ticker,Open,Hi,Low,Close,Volume\n2010-01-04,MSFT,1,2,1,1,1\n",
    );
    let mut store = BarStore::open(&dir.path().join("bars.sqlite")).unwrap();
    for err in [
        import_files(&mut store, &[&path]).unwrap_err(),
        read_long_csv(&path).unwrap_err(),
    ] {
        match &err {
            ImportError::MissingColumns { missing, .. } => {
                assert_eq!(missing, &vec!["Symbol".to_string(), "High".to_string()])
            }
            other => panic!("{other}"),
        }
        let message = err.to_string();
        assert!(
            message.contains("lacks column(s) Symbol, High"),
            "{message}"
        );
        assert!(message.contains("bars.csv"), "{message}");
    }
    assert_eq!(store.row_count().unwrap(), 0);
}

#[test]
fn non_numeric_cell_is_rejected_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bars.csv",
        b"Date,Symbol,Open,High,Low,Close,Volume\n\
          2010-01-04,MSFT,30.62,31.1,30.59,30.95,38409100\n\
          2010-01-05,MSFT,30.85,31.1,30.64,30.96,49749600\n\
          2010-01-06,MSFT,30.88,31.08,30.52,n/a,58182400\n\
          2010-01-07,MSFT,30.63,30.7,30.19,30.45,50559700\n",
    );
    let mut store = BarStore::open(&dir.path().join("bars.sqlite")).unwrap();
    let report = import_files(&mut store, &[&path]).unwrap();
    assert_eq!(report.rows_read, 4);
    assert_eq!(report.rows_imported, 3);
    assert_eq!(report.rejected.len(), 1);
    let rejected = &report.rejected[0];
    assert_eq!(rejected.line, 4);
    assert_eq!(rejected.file, path);
    assert!(rejected.reason.contains("Close \"n/a\""), "{rejected}");
    assert!(rejected.to_string().contains("bars.csv:4: "), "{rejected}");
    assert_eq!(store.row_count().unwrap(), 3);
}

#[test]
fn empty_file_is_a_file_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bars.csv", b"");
    let mut store = BarStore::open_in_memory().unwrap();
    let err = import_files(&mut store, &[&path]).unwrap_err();
    assert!(matches!(err, ImportError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("is empty"), "{err}");
    assert!(matches!(
        read_long_csv(&path).unwrap_err(),
        ImportError::Empty { .. }
    ));
}

#[test]
fn header_only_file_imports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bars.csv",
        b"Date,Symbol,Open,High,Low,Close,Volume\n",
    );
    let mut store = BarStore::open_in_memory().unwrap();
    let report = import_files(&mut store, &[&path]).unwrap();
    assert_eq!(
        (
            report.files,
            report.rows_read,
            report.rows_imported,
            report.symbols
        ),
        (1, 0, 0, 0)
    );
    assert_eq!(store.row_count().unwrap(), 0);
    let (bars, _) = read_long_csv(&path).unwrap();
    assert!(bars.is_empty());
}

#[test]
fn truncated_or_corrupt_gzip_is_a_file_error_and_imports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let demo = std::fs::read(demo_csv()).unwrap();
    let truncated = write(dir.path(), "truncated.csv.gz", &demo[..demo.len() / 2]);
    let mut corrupt_bytes = demo.clone();
    for byte in &mut corrupt_bytes[demo.len() / 3..demo.len() / 3 + 64] {
        *byte = !*byte;
    }
    let corrupt = write(dir.path(), "corrupt.csv.gz", &corrupt_bytes);
    let not_gzip = write(
        dir.path(),
        "plain.csv.gz",
        b"Date,Symbol,Open,High,Low,Close,Volume\n",
    );

    let mut store = BarStore::open(&dir.path().join("bars.sqlite")).unwrap();
    for path in [&truncated, &corrupt, &not_gzip] {
        let err = import_files_as(&mut store, &[path], CsvLayout::Long).unwrap_err();
        assert!(matches!(err, ImportError::Read { .. }), "{path:?}: {err}");
        let message = err.to_string();
        assert!(message.contains("truncated or corrupt"), "{message}");
        assert!(message.contains(path.file_name().unwrap().to_str().unwrap()));
        assert!(read_long_csv(path).is_err());
    }
    // Each file is one transaction: the rows before the damage were not kept.
    assert_eq!(store.row_count().unwrap(), 0);
}

#[test]
fn empty_store_yields_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = BarStore::open(&dir.path().join("bars.sqlite")).unwrap();
    let mut calls = 0;
    let visited = store
        .for_each_symbol(None, date("2035-12-31"), |_, _| calls += 1)
        .unwrap();
    assert_eq!((visited, calls), (0, 0));
    assert!(store.symbols().unwrap().is_empty());
    assert!(store.last_stored_dates().unwrap().is_empty());
    assert_eq!(store.last_stored_date("AAPL").unwrap(), None);
    assert!(store.bars("AAPL", None, None).unwrap().is_empty());
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bars.sqlite",
        b"Date,Symbol,Open,High,Low,Close,Volume\n2010-01-04,MSFT,30.62,31.1,30.59,30.95,1\n",
    );
    let err = BarStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(path.to_str().unwrap()), "{message}");
    assert!(message.contains("not a SQLite database"), "{message}");
    assert!(message.contains("--state-dir"), "{message}");
    // Refusing did not touch the file.
    assert!(std::fs::read(&path).unwrap().starts_with(b"Date,Symbol"));
}

#[test]
fn a_newer_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.sqlite");
    {
        let mut store = BarStore::open(&path).unwrap();
        store
            .upsert(
                "MSFT",
                &[DailyBar {
                    date: date("2010-01-04"),
                    open: 30.62,
                    high: 31.1,
                    low: 30.59,
                    close: 30.95,
                    volume: 38_409_100.0,
                }],
            )
            .unwrap();
    }
    let newer = SCHEMA_VERSION + 1;
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", newer).unwrap();
    }
    let err = BarStore::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found, known, .. } if found == newer && known == SCHEMA_VERSION),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "was written by a newer avwap (schema {newer} > {SCHEMA_VERSION}); upgrade avwap or point --state-dir elsewhere"
        )),
        "{message}"
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM bars", [], |r| r.get(0))
        .unwrap();
    assert_eq!((version, rows), (newer, 1));
}

#[test]
fn upsert_many_lands_on_disk_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.sqlite");
    let (bars, _) = read_long_csv(&demo_csv()).unwrap();
    let subset: Vec<(&String, &Vec<DailyBar>)> = bars.iter().take(10).collect();
    let expected: usize = subset.iter().map(|(_, b)| b.len()).sum();
    {
        let mut store = BarStore::open(&path).unwrap();
        assert_eq!(store.upsert_many(subset.iter().copied()).unwrap(), expected);
    }
    let store = BarStore::open(&path).unwrap();
    assert_eq!(store.row_count().unwrap(), expected as u64);
    let mut file = std::fs::File::open(&path).unwrap();
    let mut magic = [0u8; 16];
    file.read_exact(&mut magic).unwrap();
    assert_eq!(&magic, b"SQLite format 3\0");
}
