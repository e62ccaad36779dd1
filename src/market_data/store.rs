//! The local bar cache: one SQLite file in the state directory holding every symbol's daily
//! bars, its schema version and migrations, and the reads the scanner needs (one ordered full
//! scan for all symbols, the last stored date per symbol for incremental top-up).
//!
//! The store keeps bars exactly as they were written; it does not validate them (see
//! `validate`), so a policy change never requires rewriting the cache.
//!
//! Duplicates, the one rule of every path (CSV import, Alpaca top-up, this store, the scan's
//! validation): within one write — one import call, one Alpaca answer over all its pages and
//! symbol batches, one [`BarStore::upsert_many`] call — the FIRST copy of a (symbol, date) is
//! kept and later copies are dropped and counted, because nothing tells which of two
//! conflicting copies is right. A later write replaces the stored bar of that date: that is
//! how a corrected file is re-imported. (A top-up never sends a stored date again: it asks only
//! for the sessions after a symbol's last stored bar.)
//!
//! Schema evolution is additive only: `MIGRATIONS` is an ordered list applied in one
//! transaction, `PRAGMA user_version` records how many have run, and a file written by a newer
//! avwap is refused rather than guessed at. Nothing here ever drops a table.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::series::DailyBar;

/// Each entry moves the schema from version `index` to `index + 1`. Append only: editing or
/// removing an entry would leave existing files at a version that means something else.
const MIGRATIONS: &[&str] = &["CREATE TABLE bars (
        symbol TEXT NOT NULL,
        date INTEGER NOT NULL, -- YYYYMMDD, New York session date
        open REAL,
        high REAL,
        low REAL,
        close REAL,
        volume REAL,
        PRIMARY KEY (symbol, date)
    ) WITHOUT ROWID;"];

/// The bar store's file name inside the state directory.
pub const BAR_STORE_FILE: &str = "bars.sqlite";

/// Where the bar store of `state_dir` lives (the scan, `avwap-scan import` and the simulator
/// all read the same file).
pub fn bar_store_path(state_dir: &Path) -> PathBuf {
    state_dir.join(BAR_STORE_FILE)
}

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

const UPSERT_SQL: &str =
    "INSERT OR REPLACE INTO bars (symbol, date, open, high, low, close, volume)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const SCAN_SQL: &str = "SELECT symbol, date, open, high, low, close, volume FROM bars
     WHERE date BETWEEN ?1 AND ?2 ORDER BY symbol, date";
const BARS_SQL: &str = "SELECT symbol, date, open, high, low, close, volume FROM bars
     WHERE symbol = ?1 AND date BETWEEN ?2 AND ?3 ORDER BY date";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open bar store {}: {source}; check that the state directory exists and is writable by avwap", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{} is not an avwap bar store (not a SQLite database); move it aside (it will be recreated and can be re-imported) or point --state-dir elsewhere", path.display())]
    NotADatabase { path: PathBuf },
    #[error("bar store {} is {kind}, not a regular file; move it aside (the store is recreated and can be re-imported) or point --state-dir elsewhere", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("bar store {} was written by a newer avwap (schema {found} > {known}); upgrade avwap or point --state-dir elsewhere", path.display())]
    NewerSchema {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("bar store {}: migrating the schema from version {from} to {to} failed: {source}; the file is unchanged, check free disk space and permissions", path.display())]
    Migrate {
        path: PathBuf,
        from: u32,
        to: u32,
        source: rusqlite::Error,
    },
    #[error("bar store {}: {action} failed: {source}; if the file is damaged, move it aside and re-import the bars", path.display())]
    Sqlite {
        path: PathBuf,
        action: &'static str,
        source: rusqlite::Error,
    },
    #[error("bar store {} holds an unreadable row for {symbol}: {detail}; move the file aside and re-import the bars", path.display())]
    CorruptRow {
        path: PathBuf,
        symbol: String,
        detail: String,
    },
}

/// The SQLite bar cache. Reads take `&self`; writes take `&mut self` and run in one
/// transaction per call, so a failure leaves the store as it was.
pub struct BarStore {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for BarStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BarStore")
            .field("path", &self.path)
            .finish()
    }
}

impl BarStore {
    /// Opens (creating if absent) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // SQLite would open a FIFO or device and then block or read garbage: refuse anything
        // but a regular file (or nothing, which SQLite creates).
        if let Ok(metadata) = std::fs::metadata(path) {
            if !metadata.is_file() {
                return Err(StoreError::NotAFile {
                    path: path.to_path_buf(),
                    kind: crate::fsutil::kind_of(&metadata.file_type()),
                });
            }
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| open_error(path, source))?;
        Self::init(conn, path.to_path_buf(), true)
    }

    /// A store that lives only as long as the value, for tests and the demo.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| open_error(&path, source))?;
        Self::init(conn, path, false)
    }

    fn init(conn: Connection, path: PathBuf, on_disk: bool) -> Result<Self, StoreError> {
        // A scan and an import may overlap (WAL lets readers run during a write); wait for the
        // writer instead of failing at once.
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|source| open_error(&path, source))?;
        if on_disk {
            // The first statement that reads the file is where a non-SQLite file shows up.
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| {
                row.get::<_, String>(0)
            })
            .map_err(|source| open_error(&path, source))?;
            // WAL + NORMAL can lose the last commits on power loss but never corrupts the
            // file; this is a cache whose contents can be fetched or imported again.
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(|source| open_error(&path, source))?;
        }
        // Larger page cache and memory-mapped reads for the full scan.
        for (pragma, value) in [("cache_size", -65_536i64), ("mmap_size", 1i64 << 30)] {
            conn.pragma_update(None, pragma, value)
                .map_err(|source| open_error(&path, source))?;
        }
        conn.set_prepared_statement_cache_capacity(16);
        let mut store = BarStore { conn, path };
        store.migrate()?;
        Ok(store)
    }

    /// The file this store reads and writes (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        read_user_version(&self.conn)
            .map_err(|source| self.sql_error("reading the schema version", source))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let found =
            read_user_version(&self.conn).map_err(|source| open_error(&self.path, source))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: self.path.clone(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        let path = self.path.clone();
        let failed = |source| StoreError::Migrate {
            path: path.clone(),
            from: found,
            to: SCHEMA_VERSION,
            source,
        };
        // IMMEDIATE takes the write lock up front, so two processes opening a fresh file
        // cannot both run the same migration.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed)?;
        // Re-read under the lock: another process may have migrated meanwhile.
        let current = read_user_version(&tx).map_err(failed)?;
        if current > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: self.path.clone(),
                found: current,
                known: SCHEMA_VERSION,
            });
        }
        for step in MIGRATIONS.iter().skip(current as usize) {
            tx.execute_batch(step).map_err(failed)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(failed)?;
        tx.commit().map_err(failed)
    }

    fn sql_error(&self, action: &'static str, source: rusqlite::Error) -> StoreError {
        sql_error(&self.path, action, source)
    }

    /// Inserts or replaces `bars` of `symbol` (per (symbol, date)) in one transaction; of
    /// two bars with one date the first is written. Returns the number of rows written.
    pub fn upsert(&mut self, symbol: &str, bars: &[DailyBar]) -> Result<usize, StoreError> {
        self.upsert_many([(symbol, bars)])
    }

    /// Inserts or replaces the bars of many symbols in one transaction, for top-ups and the
    /// simulation: either all of them land or none. Of several copies of a (symbol, date) in
    /// `batches` the first is written (the module's duplicate rule). Returns the rows written.
    pub fn upsert_many<I, S, B>(&mut self, batches: I) -> Result<usize, StoreError>
    where
        I: IntoIterator<Item = (S, B)>,
        S: AsRef<str>,
        B: AsRef<[DailyBar]>,
    {
        self.write_bars(batches).map(|written| written.rows)
    }

    /// [`BarStore::upsert_many`], also counting the later copies it dropped.
    pub fn write_bars<I, S, B>(&mut self, batches: I) -> Result<Written, StoreError>
    where
        I: IntoIterator<Item = (S, B)>,
        S: AsRef<str>,
        B: AsRef<[DailyBar]>,
    {
        let mut writer = self.writer()?;
        // The dates written per symbol in this call; a symbol may come in several batches.
        let mut seen: HashMap<String, HashSet<NaiveDate>> = HashMap::new();
        let mut duplicates = 0;
        for (symbol, bars) in batches {
            let symbol = symbol.as_ref();
            let dates = match seen.get_mut(symbol) {
                Some(dates) => dates,
                None => seen.entry(symbol.to_string()).or_default(),
            };
            for bar in bars.as_ref() {
                if dates.insert(bar.date) {
                    writer.insert(symbol, bar)?;
                } else {
                    duplicates += 1;
                }
            }
        }
        Ok(Written {
            rows: writer.commit()?,
            duplicates,
        })
    }

    /// Starts a write transaction that takes bars one at a time (for streaming imports).
    /// Nothing is visible to readers until [`BarWriter::commit`]; dropping the writer
    /// without committing rolls everything back.
    pub fn writer(&mut self) -> Result<BarWriter<'_>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| sql_error(&self.path, "starting a write transaction", source))?;
        Ok(BarWriter {
            tx,
            path: &self.path,
            rows: 0,
        })
    }

    /// `symbol`'s bars dated within `[start, end]` (either bound open when `None`), ascending.
    pub fn bars(
        &self,
        symbol: &str,
        start: Option<NaiveDate>,
        end: Option<NaiveDate>,
    ) -> Result<Vec<DailyBar>, StoreError> {
        let (lo, hi) = date_bounds(start, end);
        let fail = |source| self.sql_error("reading bars", source);
        let mut stmt = self.conn.prepare_cached(BARS_SQL).map_err(fail)?;
        let mut rows = stmt.query(params![symbol, lo, hi]).map_err(fail)?;
        let mut bars = Vec::new();
        while let Some(row) = rows.next().map_err(fail)? {
            bars.push(self.read_bar(row, symbol)?);
        }
        Ok(bars)
    }

    /// The newest bar date stored for `symbol`, `None` if it has none.
    pub fn last_stored_date(&self, symbol: &str) -> Result<Option<NaiveDate>, StoreError> {
        let fail = |source| self.sql_error("reading the last stored date", source);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT MAX(date) FROM bars WHERE symbol = ?1")
            .map_err(fail)?;
        let value: Option<i64> = stmt.query_row([symbol], |row| row.get(0)).map_err(fail)?;
        value.map(|v| self.decode_date(symbol, v)).transpose()
    }

    /// The newest bar date of every stored symbol, for an incremental top-up.
    pub fn last_stored_dates(&self) -> Result<HashMap<String, NaiveDate>, StoreError> {
        let fail = |source| self.sql_error("reading the last stored dates", source);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT symbol, MAX(date) FROM bars GROUP BY symbol")
            .map_err(fail)?;
        let mut rows = stmt.query([]).map_err(fail)?;
        let mut out = HashMap::new();
        while let Some(row) = rows.next().map_err(fail)? {
            let symbol: String = row.get(0).map_err(fail)?;
            let date = self.decode_date(&symbol, row.get(1).map_err(fail)?)?;
            out.insert(symbol, date);
        }
        Ok(out)
    }

    /// Every stored symbol, sorted.
    pub fn symbols(&self) -> Result<Vec<String>, StoreError> {
        let fail = |source| self.sql_error("listing symbols", source);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT symbol FROM bars ORDER BY symbol")
            .map_err(fail)?;
        let rows = stmt.query_map([], |row| row.get(0)).map_err(fail)?;
        rows.collect::<Result<Vec<String>, _>>().map_err(fail)
    }

    /// The number of stored bars over all symbols.
    pub fn row_count(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM bars", [], |row| row.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|source| self.sql_error("counting bars", source))
    }

    /// Calls `f` once per symbol, in symbol order, with that symbol's bars dated within
    /// `[start, end]` in ascending order. Symbols without bars in the window are not visited.
    /// Returns the number of symbols visited.
    ///
    /// This is the scanner's hot path: one ordered scan of the primary key, grouping
    /// consecutive rows, instead of a query per symbol.
    pub fn for_each_symbol<F>(
        &self,
        start: Option<NaiveDate>,
        end: NaiveDate,
        mut f: F,
    ) -> Result<usize, StoreError>
    where
        F: FnMut(&str, Vec<DailyBar>),
    {
        let (lo, hi) = date_bounds(start, Some(end));
        let fail = |source| self.sql_error("scanning bars", source);
        let mut stmt = self.conn.prepare_cached(SCAN_SQL).map_err(fail)?;
        let mut rows = stmt.query(params![lo, hi]).map_err(fail)?;
        let mut current = String::new();
        let mut bars: Vec<DailyBar> = Vec::new();
        let mut visited = 0;
        while let Some(row) = rows.next().map_err(fail)? {
            let symbol = match row.get_ref(0).map_err(fail)? {
                ValueRef::Text(text) => text,
                other => {
                    return Err(self.corrupt(&current, format!("symbol is {:?}", other.data_type())))
                }
            };
            if symbol != current.as_bytes() {
                if !bars.is_empty() {
                    // The previous group's length is the best guess for the next one's.
                    let capacity = bars.len();
                    f(
                        &current,
                        std::mem::replace(&mut bars, Vec::with_capacity(capacity)),
                    );
                    visited += 1;
                }
                current = String::from_utf8_lossy(symbol).into_owned();
            }
            bars.push(self.read_bar(row, &current)?);
        }
        if !bars.is_empty() {
            f(&current, bars);
            visited += 1;
        }
        Ok(visited)
    }

    /// Columns 1..=6 of a `SELECT symbol, date, open, high, low, close, volume` row.
    fn read_bar(&self, row: &rusqlite::Row<'_>, symbol: &str) -> Result<DailyBar, StoreError> {
        let fail = |source| self.sql_error("reading a bar", source);
        let date = match row.get_ref(1).map_err(fail)? {
            ValueRef::Integer(v) => self.decode_date(symbol, v)?,
            other => return Err(self.corrupt(symbol, format!("date is {:?}", other.data_type()))),
        };
        let mut values = [0.0f64; 5];
        for (i, value) in values.iter_mut().enumerate() {
            *value = match row.get_ref(i + 2).map_err(fail)? {
                ValueRef::Real(v) => v,
                ValueRef::Integer(v) => v as f64,
                // SQLite stores a NaN as NULL; hand it back as NaN so validation drops the bar
                // like any other non-finite value.
                ValueRef::Null => f64::NAN,
                other => {
                    return Err(self.corrupt(
                        symbol,
                        format!("{date}: column {} is {:?}", i + 2, other.data_type()),
                    ))
                }
            };
        }
        let [open, high, low, close, volume] = values;
        Ok(DailyBar {
            date,
            open,
            high,
            low,
            close,
            volume,
        })
    }

    fn decode_date(&self, symbol: &str, value: i64) -> Result<NaiveDate, StoreError> {
        decode_date(value)
            .ok_or_else(|| self.corrupt(symbol, format!("date {value} is not a YYYYMMDD date")))
    }

    fn corrupt(&self, symbol: &str, detail: String) -> StoreError {
        StoreError::CorruptRow {
            path: self.path.clone(),
            symbol: symbol.to_string(),
            detail,
        }
    }
}

/// What [`BarStore::write_bars`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub rows: usize,
    /// Later copies of a (symbol, date) of the same call, not written.
    pub duplicates: usize,
}

/// An open write transaction on a [`BarStore`]; see [`BarStore::writer`]. It writes what it is
/// given: its streaming caller (the CSV import) rejects a second copy of a (symbol, date)
/// before it gets here, which [`BarStore::write_bars`] does for in-memory batches.
pub struct BarWriter<'a> {
    tx: rusqlite::Transaction<'a>,
    path: &'a Path,
    rows: usize,
}

impl BarWriter<'_> {
    /// Inserts or replaces one bar of `symbol`.
    pub fn insert(&mut self, symbol: &str, bar: &DailyBar) -> Result<(), StoreError> {
        let fail = |source| sql_error(self.path, "writing bars", source);
        let mut stmt = self.tx.prepare_cached(UPSERT_SQL).map_err(fail)?;
        stmt.execute(params![
            symbol,
            encode_date(bar.date),
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume
        ])
        .map_err(fail)?;
        self.rows += 1;
        Ok(())
    }

    /// Makes every inserted bar visible; returns how many were written.
    pub fn commit(self) -> Result<usize, StoreError> {
        let rows = self.rows;
        self.tx
            .commit()
            .map_err(|source| sql_error(self.path, "committing bars", source))?;
        Ok(rows)
    }
}

fn read_user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |row| row.get::<_, i64>(0))
        // A negative user_version was not written by avwap; treat it as "newer than known".
        .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

fn open_error(path: &Path, source: rusqlite::Error) -> StoreError {
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => StoreError::NotADatabase {
            path: path.to_path_buf(),
        },
        _ => StoreError::Open {
            path: path.to_path_buf(),
            source,
        },
    }
}

fn sql_error(path: &Path, action: &'static str, source: rusqlite::Error) -> StoreError {
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => StoreError::NotADatabase {
            path: path.to_path_buf(),
        },
        _ => StoreError::Sqlite {
            path: path.to_path_buf(),
            action,
            source,
        },
    }
}

fn encode_date(date: NaiveDate) -> i64 {
    i64::from(date.year()) * 10_000 + i64::from(date.month()) * 100 + i64::from(date.day())
}

fn decode_date(value: i64) -> Option<NaiveDate> {
    let year = i32::try_from(value / 10_000).ok()?;
    let month = u32::try_from(value / 100 % 100).ok()?;
    let day = u32::try_from(value % 100).ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

fn date_bounds(start: Option<NaiveDate>, end: Option<NaiveDate>) -> (i64, i64) {
    (
        start.map_or(i64::MIN, encode_date),
        end.map_or(i64::MAX, encode_date),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_fifo_or_directory_is_not_opened_as_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("bars.sqlite");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo (coreutils)");
        assert!(status.success());
        for (path, kind) in [
            (fifo, "a FIFO (named pipe)"),
            (dir.path().to_path_buf(), "a directory"),
        ] {
            match BarStore::open(&path) {
                Err(e @ StoreError::NotAFile { .. }) => {
                    assert!(
                        e.to_string()
                            .contains(&format!("is {kind}, not a regular file")),
                        "{e}"
                    )
                }
                Err(other) => panic!("{}: {other}", path.display()),
                Ok(_) => panic!("{} opened", path.display()),
            }
        }
    }

    fn bar(date: NaiveDate, close: f64) -> DailyBar {
        DailyBar {
            date,
            open: close - 0.25,
            high: close + 0.5,
            low: close - 0.5,
            close,
            volume: 1_234_567.0,
        }
    }

    fn sample() -> Vec<DailyBar> {
        vec![
            bar(date(2010, 1, 4), 30.95),
            bar(date(2010, 1, 5), 30.96),
            bar(date(2010, 1, 6), 30.77),
            bar(date(2010, 1, 7), 30.452),
        ]
    }

    #[test]
    fn dates_encode_as_yyyymmdd() {
        assert_eq!(encode_date(date(2010, 1, 4)), 20100104);
        assert_eq!(decode_date(20100104), Some(date(2010, 1, 4)));
        assert_eq!(decode_date(20100230), None);
        assert_eq!(decode_date(-1), None);
        assert_eq!(decode_date(i64::MAX), None);
    }

    #[test]
    fn migrations_only_add() {
        for step in MIGRATIONS {
            let upper = step.to_ascii_uppercase();
            assert!(!upper.contains("DROP "), "{step}");
            assert!(!upper.contains("DELETE "), "{step}");
        }
    }

    #[test]
    fn upsert_and_read_back() {
        let mut store = BarStore::open_in_memory().unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(store.upsert("MSFT", &sample()).unwrap(), 4);
        assert_eq!(store.bars("MSFT", None, None).unwrap(), sample());
        assert_eq!(
            store
                .bars("MSFT", Some(date(2010, 1, 5)), Some(date(2010, 1, 6)))
                .unwrap(),
            sample()[1..3].to_vec()
        );
        assert!(store.bars("AAPL", None, None).unwrap().is_empty());
        assert_eq!(
            store.last_stored_date("MSFT").unwrap(),
            Some(date(2010, 1, 7))
        );
        assert_eq!(store.last_stored_date("AAPL").unwrap(), None);
    }

    #[test]
    fn upsert_replaces_same_date() {
        let mut store = BarStore::open_in_memory().unwrap();
        store.upsert("MSFT", &sample()).unwrap();
        let revised = bar(date(2010, 1, 5), 31.5);
        store.upsert("MSFT", &[revised]).unwrap();
        let bars = store.bars("MSFT", None, None).unwrap();
        assert_eq!(bars.len(), 4);
        assert_eq!(bars[1], revised);
        assert_eq!(store.row_count().unwrap(), 4);
    }

    #[test]
    fn a_second_copy_in_one_write_is_dropped_and_a_later_write_replaces() {
        let mut store = BarStore::open_in_memory().unwrap();
        let first = bar(date(2010, 1, 5), 31.0);
        let second = bar(date(2010, 1, 5), 99.0);
        let written = store
            .write_bars([("MSFT", vec![first, second]), ("MSFT", vec![second])])
            .unwrap();
        assert_eq!(
            written,
            Written {
                rows: 1,
                duplicates: 2
            }
        );
        assert_eq!(store.bars("MSFT", None, None).unwrap(), vec![first]);
        store.upsert("MSFT", &[second]).unwrap();
        assert_eq!(store.bars("MSFT", None, None).unwrap(), vec![second]);
    }

    #[test]
    fn non_finite_values_come_back_as_non_finite() {
        let mut store = BarStore::open_in_memory().unwrap();
        let mut weird = bar(date(2010, 1, 4), 10.0);
        weird.open = f64::NAN;
        weird.high = f64::INFINITY;
        store.upsert("X", &[weird]).unwrap();
        let back = store.bars("X", None, None).unwrap();
        assert!(back[0].open.is_nan());
        assert_eq!(back[0].high, f64::INFINITY);
    }

    #[test]
    fn for_each_symbol_groups_in_order_and_respects_the_window() {
        let mut store = BarStore::open_in_memory().unwrap();
        let more: Vec<DailyBar> = sample()
            .into_iter()
            .map(|b| bar(b.date, b.close * 2.0))
            .collect();
        store
            .upsert_many([
                ("MSFT", sample()),
                ("AAPL", more.clone()),
                ("BRK.B", sample()[..1].to_vec()),
            ])
            .unwrap();
        let mut seen = Vec::new();
        let visited = store
            .for_each_symbol(Some(date(2010, 1, 5)), date(2010, 1, 6), |symbol, bars| {
                seen.push((symbol.to_string(), bars))
            })
            .unwrap();
        assert_eq!(visited, 2);
        assert_eq!(
            seen,
            vec![
                ("AAPL".to_string(), more[1..3].to_vec()),
                ("MSFT".to_string(), sample()[1..3].to_vec()),
            ]
        );
        assert_eq!(store.symbols().unwrap(), vec!["AAPL", "BRK.B", "MSFT"]);
        let last = store.last_stored_dates().unwrap();
        assert_eq!(last.len(), 3);
        assert_eq!(last["BRK.B"], date(2010, 1, 4));
        assert_eq!(last["AAPL"], date(2010, 1, 7));
    }

    #[test]
    fn uncommitted_writer_rolls_back() {
        let mut store = BarStore::open_in_memory().unwrap();
        {
            let mut writer = store.writer().unwrap();
            writer.insert("MSFT", &sample()[0]).unwrap();
        }
        assert_eq!(store.row_count().unwrap(), 0);
    }

    #[test]
    fn corrupt_rows_are_reported_not_panicked_on() {
        let store = BarStore::open_in_memory().unwrap();
        store
            .conn
            .execute(
                "INSERT INTO bars VALUES ('ZZ', 20101399, 1, 1, 1, 1, 1)",
                [],
            )
            .unwrap();
        let err = store.bars("ZZ", None, None).unwrap_err();
        assert!(matches!(err, StoreError::CorruptRow { .. }), "{err}");
        assert!(err.to_string().contains("20101399"), "{err}");
        assert!(store
            .for_each_symbol(None, date(2035, 1, 1), |_, _| {})
            .is_err());
    }
}
