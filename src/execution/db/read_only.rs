//! Opening the state database for reading only (`avwap-check`, `avwap-execution report`), as
//! the service user or as an operator in its group: the state directory is 0750 and the files
//! 0640 (`UMask=0027`), so the reader can write nothing, not even SQLite's `-shm` file.
//!
//! SQLite in WAL mode needs the `-shm` (wal-index) file to read. When the service runs (or was
//! killed), `-wal` and `-shm` exist and a read-only connection maps `-shm` read-only and sees
//! every committed transaction. When the service closed the database cleanly they are gone,
//! and a reader that cannot create them gets `SQLITE_READONLY_DIRECTORY` ("attempt to write a
//! readonly database"); then there is nothing pending outside the main file, so it is opened
//! `immutable=1`. A `-wal` with content but no usable `-shm` cannot be read by this user at
//! all: that is said, with what to do, rather than reading stale data.

use super::{DbError, StateDb, SCHEMA_VERSION};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to do when this user cannot read the database.
const ASK: &str = "run it as the service user (sudo -u avwap …) or as a member of the service's \
                   group (the state directory is 0750 and its files 0640)";

/// `file:` URI of `path` with the query `query`; every byte outside the unreserved set is
/// percent-encoded, so `?`, `#` and `%` in a path are not read as URI syntax.
fn uri(path: &Path, query: &str) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push('?');
    out.push_str(query);
    out
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The errors SQLite gives a reader that cannot use the WAL's side files.
fn cannot_use_wal(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly)
    )
}

/// Open and read the first page (a connection opens lazily: this is where access fails).
fn connect(path: &Path, query: &str) -> Result<Connection, rusqlite::Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(uri(path, query), flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
    Ok(conn)
}

impl StateDb {
    /// Open the existing database at `path` without writing anything: no migration, no journal
    /// mode change, no file created. Any schema version is opened; callers reading tables
    /// check [`StateDb::schema_version`] first (see [`StateDb::open_read_only_current`]).
    pub fn open_read_only(path: &Path) -> Result<StateDb, DbError> {
        let refuse = |reason: String| DbError::ReadOnly {
            path: path.to_path_buf(),
            reason,
        };
        // Permissions first, so the message names them instead of SQLite's "unable to open".
        match std::fs::File::open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(refuse(
                    "it does not exist; avwap-execution creates it when it first starts".into(),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(refuse(format!("{e}: {ASK}")))
            }
            Err(e) => return Err(refuse(e.to_string())),
        }
        let conn = match connect(path, "mode=ro") {
            Ok(conn) => conn,
            Err(e) if cannot_use_wal(&e) => {
                let wal = sidecar(path, "-wal");
                let nothing_pending = match std::fs::metadata(&wal) {
                    Ok(m) => m.len() == 0,
                    Err(w) => w.kind() == std::io::ErrorKind::NotFound,
                };
                if !nothing_pending {
                    return Err(refuse(format!(
                        "{e}: it has transactions in its write-ahead log {} that this user can \
                         only read with write access to {} or to the state directory; {ASK}",
                        wal.display(),
                        sidecar(path, "-shm").display()
                    )));
                }
                // No write-ahead log (or an empty one): the main file holds every commit, so
                // it is read as immutable (SQLite then needs no `-shm`). A service starting
                // meanwhile writes to a new log first, which this reader does not see.
                connect(path, "mode=ro&immutable=1")
                    .map_err(|e2| refuse(format!("{e2} (read-only: {e}); {ASK}")))?
            }
            Err(e) => return Err(refuse(format!("{e}; is it an SQLite database?"))),
        };
        Ok(StateDb {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// [`StateDb::open_read_only`], refusing any schema but this build's (an older one is
    /// migrated by the service, never by a reader).
    pub fn open_read_only_current(path: &Path) -> Result<StateDb, DbError> {
        let db = StateDb::open_read_only(path)?;
        let found = db.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(DbError::NewerSchema {
                path: path.to_path_buf(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION {
            return Err(DbError::OlderSchema {
                path: path.to_path_buf(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        Ok(db)
    }

    /// `PRAGMA quick_check`: `["ok"]` when healthy, else the problems found.
    pub fn quick_check(&self) -> Result<Vec<String>, DbError> {
        let mut stmt = self
            .conn
            .prepare("PRAGMA quick_check")
            .map_err(self.sql("checking integrity"))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(self.sql("checking integrity"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.sql("checking integrity"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_escaped_in_the_uri() {
        assert_eq!(
            uri(Path::new("/var/lib/avwap/execution.sqlite"), "mode=ro"),
            "file:/var/lib/avwap/execution.sqlite?mode=ro"
        );
        assert_eq!(
            uri(Path::new("/tmp/a b?c#d%e/x.sqlite"), "mode=ro"),
            "file:/tmp/a%20b%3Fc%23d%25e/x.sqlite?mode=ro"
        );
    }

    #[test]
    fn reads_a_database_with_a_pending_write_ahead_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd ?name#.sqlite");
        let writer = StateDb::open(&path).unwrap();
        writer
            .heartbeat("2026-11-30T15:00:00Z".parse().unwrap(), "sim", 7)
            .unwrap();
        // The writer stays open: the heartbeat is in the -wal only.
        assert!(sidecar(&path, "-wal").metadata().unwrap().len() > 0);
        let reader = StateDb::open_read_only_current(&path).unwrap();
        assert_eq!(
            reader.last_heartbeat().unwrap(),
            Some("2026-11-30T15:00:00Z".parse().unwrap())
        );
        assert_eq!(reader.quick_check().unwrap(), ["ok"]);
        // A reader cannot write.
        assert!(reader.heartbeat(chrono::Utc::now(), "sim", 8).is_err());
        drop(writer);
    }

    #[test]
    fn a_missing_file_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("execution.sqlite");
        let e = StateDb::open_read_only(&path).err().unwrap();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(!path.exists());
    }

    #[test]
    fn schema_versions_other_than_ours_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("execution.sqlite");
        drop(StateDb::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION - 1)
            .unwrap();
        drop(conn);
        let e = StateDb::open_read_only_current(&path).err().unwrap();
        assert!(matches!(e, DbError::OlderSchema { .. }), "{e}");
        assert!(e.to_string().contains("migrates it when it next starts"));
        let db = StateDb::open_read_only(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION - 1);
        drop(db);
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        assert!(matches!(
            StateDb::open_read_only_current(&path),
            Err(DbError::NewerSchema { .. })
        ));
    }
}
