//! The embedded SQLite store (the default): one file, WAL, busy timeout, migrations.
//!
//! The file is created `0600` (its `-wal`/`-shm` take its mode; its folder must exist)
//! and never opened through a symlink. It is checked at open
//! (`PRAGMA quick_check`: damage is reported, not worked around) and its identity (device
//! and inode) before every transaction: a database deleted or replaced under the running
//! process stops it with [`StoreError::RepositoryGone`] instead of writing into a file
//! nobody will see again.

use super::sql::{self, Cell, Dialect, Param, Row, Sql};
use super::{Result, StoreError};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{ffi, Connection, ErrorCode, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// How long a writer waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`super::Store`] in an SQLite database file (or in memory).
///
/// Several `SqliteStore`s (threads or processes) may open the same file: every operation
/// runs in an immediate (write-locking) transaction, so compare-and-set is exact.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
    row_key: super::crypto::rowmac::RowKeySlot,
    /// The database file's (device, inode) when it was opened.
    identity: Option<(u64, u64)>,
}

/// How many findings of an integrity check a [`StoreError::Damaged`] quotes.
const MAX_FINDINGS: usize = 5;

/// The (device, inode) of the file at `path`, not following a symlink.
fn file_identity(path: &Path) -> std::io::Result<(u64, u64)> {
    let meta = std::fs::symlink_metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok((0, 0))
    }
}

/// Runs `PRAGMA quick_check` or `integrity_check`: `Ok` when it says "ok", else
/// [`StoreError::Damaged`] with its first findings (a file too damaged to be read at all
/// is reported the same way).
fn integrity(conn: &Connection, pragma: &str, path: &str) -> Result<()> {
    let damaged = |report: String| StoreError::Damaged {
        path: path.to_owned(),
        report,
    };
    let rows: std::result::Result<Vec<String>, rusqlite::Error> = conn
        .prepare(&format!("PRAGMA {pragma}({MAX_FINDINGS})"))
        .and_then(|mut st| {
            st.query_map([], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect())
        });
    match rows {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Ok(()),
        Ok(rows) => Err(damaged(format!("{pragma}: {}", rows.join("; ")))),
        Err(rusqlite::Error::SqliteFailure(e, msg))
            if matches!(e.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) =>
        {
            Err(damaged(format!(
                "{pragma}: {}",
                msg.unwrap_or_else(|| e.to_string())
            )))
        }
        Err(e) => Err(backend(e)),
    }
}

fn backend(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(err, msg) = &e {
        let text = msg.clone().unwrap_or_else(|| err.to_string());
        if err.code == ErrorCode::ConstraintViolation {
            match err.extended_code {
                ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                    return StoreError::Duplicate { what: text }
                }
                ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                    return StoreError::NotFound {
                        what: format!("referenced record ({text})"),
                    }
                }
                _ => {}
            }
        }
        return StoreError::Backend(format!("sqlite: {text}"));
    }
    StoreError::Backend(format!("sqlite: {e}"))
}

fn to_value(p: &Param) -> Value {
    match p {
        Param::Int(Some(v)) => Value::Integer(*v),
        Param::Text(Some(s)) => Value::Text(s.clone()),
        Param::Blob(Some(b)) => Value::Blob(b.clone()),
        Param::Int(None) | Param::Text(None) | Param::Blob(None) => Value::Null,
    }
}

/// SQLite numbers `?NNN` parameters positionally; our SQL is written with `$NNN`.
fn dialect(sql: &str) -> String {
    sql.replace('$', "?")
}

impl Sql for rusqlite::Transaction<'_> {
    fn exec(&mut self, sql: &str, params: &[Param]) -> Result<u64> {
        let mut stmt = self.prepare_cached(&dialect(sql)).map_err(backend)?;
        let n = stmt
            .execute(rusqlite::params_from_iter(params.iter().map(to_value)))
            .map_err(backend)?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>> {
        let mut stmt = self.prepare_cached(&dialect(sql)).map_err(backend)?;
        let ncols = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter().map(to_value)))
            .map_err(backend)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(backend)? {
            let mut cells = Vec::with_capacity(ncols);
            for i in 0..ncols {
                let cell = match row.get_ref(i).map_err(backend)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Text(t) => {
                        Cell::Text(String::from_utf8(t.to_vec()).map_err(|_| {
                            StoreError::Corrupt {
                                what: format!("column {i}: text is not UTF-8"),
                            }
                        })?)
                    }
                    ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
                    ValueRef::Real(_) => {
                        return Err(StoreError::Corrupt {
                            what: format!("column {i}: unexpected floating-point value"),
                        })
                    }
                };
                cells.push(cell);
            }
            out.push(Row(cells));
        }
        Ok(out)
    }
}

impl SqliteStore {
    /// [`super::split::SplitStore::watch_sessions`]: no feed (one process serves a SQLite
    /// repository; its waiters are rung in-process).
    fn watch_split_sessions(&self, _changed: super::split::SessionChanged) -> Result<bool> {
        Ok(false)
    }

    /// Opens (creating if needed) the database file and migrates it to [`super::SCHEMA_VERSION`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_migrated_to(path, super::SCHEMA_VERSION)
    }

    /// Opens the database file and migrates it only up to `version` (for staged upgrades
    /// and migration tests). A database already past `version` is left as it is.
    pub fn open_migrated_to(path: impl AsRef<Path>, version: u32) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let io = |what: &str, e: std::io::Error| {
            StoreError::Backend(format!("sqlite: {what} {}: {e}", path.display()))
        };
        crate::files::create_private_file_if_missing(&path).map_err(|e| io("creating", e))?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(&path, flags).map_err(backend)?;
        let identity = file_identity(&path).map_err(|e| io("reading the identity of", e))?;
        let store = SqliteStore {
            conn: Mutex::new(conn),
            path: Some(path),
            row_key: Default::default(),
            identity: Some(identity),
        };
        store.setup(true, version)?;
        Ok(store)
    }

    /// Runs SQLite's full `PRAGMA integrity_check` (slower than the `quick_check` done
    /// at open): `Ok` when the database is sound, [`StoreError::Damaged`] with the first
    /// findings when not.
    pub fn integrity_check(&self) -> Result<()> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        self.check_identity()?;
        integrity(&conn, "integrity_check", &self.location())
    }

    /// What a report calls this database: its path, or `:memory:`.
    fn location(&self) -> String {
        self.path
            .as_deref()
            .map_or_else(|| ":memory:".to_owned(), |p| p.display().to_string())
    }

    /// Refuses to go on when the database file was deleted or replaced since it was opened.
    fn check_identity(&self) -> Result<()> {
        let (Some(path), Some(id)) = (self.path.as_deref(), self.identity) else {
            return Ok(());
        };
        let gone = |what: &str| StoreError::RepositoryGone {
            path: path.display().to_string(),
            what: what.to_owned(),
        };
        match file_identity(path) {
            Ok(now) if now == id => Ok(()),
            Ok(_) => Err(gone("replaced by another file")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(gone("deleted")),
            Err(e) => Err(StoreError::Backend(format!(
                "sqlite: checking {}: {e}",
                path.display()
            ))),
        }
    }

    /// A private in-memory database (lost on drop), fully migrated.
    pub fn open_in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(backend)?;
        let store = SqliteStore {
            conn: Mutex::new(conn),
            path: None,
            row_key: Default::default(),
            identity: None,
        };
        store.setup(false, super::SCHEMA_VERSION)?;
        Ok(store)
    }

    /// The database file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn setup(&self, wal: bool, version: u32) -> Result<()> {
        {
            let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
            conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
            if wal {
                let mode: String = conn
                    .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                    .map_err(backend)?;
                if !mode.eq_ignore_ascii_case("wal") {
                    return Err(StoreError::Backend(format!(
                        "sqlite: journal mode is {mode}, WAL refused"
                    )));
                }
            }
            conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
                .map_err(backend)?;
            integrity(&conn, "quick_check", &self.location())?;
        }
        self.tx(|s| sql::migrate(s, Dialect::Sqlite, version))?;
        Ok(())
    }

    /// Runs `f` in one immediate transaction; commits if it returns `Ok`.
    fn tx<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        self.check_identity()?;
        let mut tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let out = f(&mut tx)?;
        // Deleted while the transaction ran: roll back rather than commit into it.
        self.check_identity()?;
        tx.commit().map_err(backend)?;
        Ok(out)
    }

    /// Runs `f` in one deferred (read) transaction: a consistent snapshot that does not
    /// block other connections' writers (WAL).
    fn read<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        self.check_identity()?;
        let mut tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(backend)?;
        let out = f(&mut tx)?;
        tx.commit().map_err(backend)?;
        Ok(out)
    }
}

sql::impl_store!(SqliteStore);
sql::impl_split_store!(SqliteStore);
sql::impl_watch_store!(SqliteStore);
super::atomic::impl_atomic_writes!(SqliteStore);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewKey, Store, SCHEMA_VERSION};

    #[test]
    fn in_memory_store_is_migrated_and_private() {
        let a = SqliteStore::open_in_memory().unwrap();
        let b = SqliteStore::open_in_memory().unwrap();
        assert_eq!(a.path(), None);
        assert_eq!(a.schema_version().unwrap(), SCHEMA_VERSION);
        let key = NewKey {
            key_id: "k".into(),
            aaguid: [0; 16],
            serial: String::new(),
        };
        a.create_key(&key, 1).unwrap();
        assert!(a.get_key("k").unwrap().is_some());
        assert!(b.get_key("k").unwrap().is_none());
    }

    #[test]
    fn placeholders_become_numbered_sqlite_parameters() {
        assert_eq!(dialect("a = $1 AND b = $12"), "a = ?1 AND b = ?12");
    }

    #[test]
    fn constraint_errors_are_typed() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY)")
            .unwrap();
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let err = conn.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
        assert!(matches!(backend(err), StoreError::Duplicate { .. }));
        let err = conn.execute("INSERT INTO nope VALUES (1)", []).unwrap_err();
        assert!(matches!(backend(err), StoreError::Backend(m) if m.contains("nope")));
    }
}
