//! The two repositories under test: opening them fresh, the few direct SQL statements the
//! `Store` trait does not offer (bulk assignment, server settings, query plans), cleanup.

use std::path::{Path, PathBuf};

use lifecycle::store::{PgStore, SqliteStore, Store};

/// Any error of the bench, printed as is.
pub type BoxError = Box<dyn std::error::Error>;

/// Which repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SQLite (WAL, `synchronous = FULL`: the store's own settings).
    Sqlite,
    /// PostgreSQL on loopback.
    Pg,
}

impl Kind {
    /// The name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sqlite => "SQLite",
            Kind::Pg => "PostgreSQL",
        }
    }
}

/// A freshly created repository and how to reach it directly.
pub enum Bench {
    /// A new SQLite file.
    Sqlite {
        /// The store.
        store: SqliteStore,
        /// Its file.
        path: PathBuf,
    },
    /// A new schema in the bench cluster.
    Pg {
        /// The store (boxed: it is much larger than the SQLite one).
        store: Box<PgStore>,
        /// The server.
        url: String,
        /// The schema (dropped at the end).
        schema: String,
    },
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

/// The bench cluster's URL: `KEYSMITH_BENCH_PG_URL`, else the env file written by
/// `scripts/pg-start.sh --bench`, else `KEYSMITH_PG_URL` (refused later unless durable).
pub fn pg_url() -> Option<String> {
    let env = |name: &str| std::env::var(name).ok().filter(|s| !s.is_empty());
    env("KEYSMITH_BENCH_PG_URL")
        .or_else(|| {
            let text = std::fs::read_to_string(target_dir().join("pg-bench/env")).ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix("KEYSMITH_PG_URL="))
                .map(|s| s.trim().to_owned())
        })
        .or_else(|| env("KEYSMITH_PG_URL"))
}

fn pg_client(url: &str) -> Result<postgres::Client, BoxError> {
    Ok(postgres::Client::connect(url, postgres::NoTls)?)
}

/// The PostgreSQL server's version and durability settings, in the order printed.
pub fn pg_settings(url: &str) -> Result<Vec<(String, String)>, BoxError> {
    let mut c = pg_client(url)?;
    let mut out = Vec::new();
    let v: String = c.query_one("SELECT version()", &[])?.get(0);
    out.push(("version".to_owned(), v));
    for name in [
        "fsync",
        "synchronous_commit",
        "full_page_writes",
        "wal_sync_method",
        "shared_buffers",
    ] {
        let v: String = c.query_one(&format!("SHOW {name}"), &[])?.get(0);
        out.push((name.to_owned(), v));
    }
    Ok(out)
}

impl Bench {
    /// A new, empty repository migrated to `version` (the current schema when `None`).
    pub fn open(
        kind: Kind,
        url: Option<&str>,
        tag: &str,
        version: Option<u32>,
    ) -> Result<Self, BoxError> {
        let version = version.unwrap_or(lifecycle::store::SCHEMA_VERSION);
        match kind {
            Kind::Sqlite => {
                let dir = target_dir().join("store-bench");
                std::fs::create_dir_all(&dir)?;
                let path = dir.join(format!("bench-{tag}.db"));
                remove_sqlite(&path);
                let store = SqliteStore::open_migrated_to(&path, version)?;
                Ok(Bench::Sqlite { store, path })
            }
            Kind::Pg => {
                let url = url.ok_or("no PostgreSQL URL")?.to_owned();
                let schema = format!("ks_store_bench_{tag}");
                pg_client(&url)?
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))?;
                let store = Box::new(PgStore::connect_in_schema_migrated_to(
                    &url, &schema, version,
                )?);
                Ok(Bench::Pg { store, url, schema })
            }
        }
    }

    /// The repository through lifecycle's `Store`.
    pub fn store(&self) -> &dyn Store {
        match self {
            Bench::Sqlite { store, .. } => store,
            Bench::Pg { store, .. } => &**store,
        }
    }

    /// Runs statements on a direct connection (one transaction).
    pub fn exec(&self, sql: &str) -> Result<(), BoxError> {
        match self {
            Bench::Sqlite { path, .. } => {
                let c = rusqlite::Connection::open(path)?;
                c.busy_timeout(std::time::Duration::from_secs(60))?;
                c.execute_batch(&format!("BEGIN; {sql}; COMMIT;"))?;
            }
            Bench::Pg { url, schema, .. } => {
                let mut c = pg_client(url)?;
                c.batch_execute(&format!(
                    "SET search_path TO {schema}; BEGIN; {sql}; COMMIT;"
                ))?;
            }
        }
        Ok(())
    }

    /// Refreshes the planner's statistics (PostgreSQL's autovacuum does it on its own
    /// after a bulk load; SQLite's store never runs `ANALYZE`, so neither does this).
    pub fn analyze(&self) -> Result<(), BoxError> {
        if let Bench::Pg { url, schema, .. } = self {
            pg_client(url)?.batch_execute(&format!("SET search_path TO {schema}; ANALYZE"))?;
        }
        Ok(())
    }

    /// The query plan of `sql` (SQLite `EXPLAIN QUERY PLAN`; PostgreSQL `EXPLAIN ANALYZE`).
    pub fn plan(&self, sql: &str) -> Result<String, BoxError> {
        let mut out = String::new();
        match self {
            Bench::Sqlite { path, .. } => {
                let c = rusqlite::Connection::open(path)?;
                let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let rows = st.query_map([], |r| r.get::<_, String>(3))?;
                for r in rows {
                    out.push_str("    ");
                    out.push_str(&r?);
                    out.push('\n');
                }
            }
            Bench::Pg { url, schema, .. } => {
                let mut c = pg_client(url)?;
                c.batch_execute(&format!("SET search_path TO {schema}"))?;
                for r in c.query(&format!("EXPLAIN (ANALYZE, COSTS OFF) {sql}"), &[])? {
                    out.push_str("    ");
                    out.push_str(&r.get::<_, String>(0));
                    out.push('\n');
                }
            }
        }
        Ok(out)
    }

    /// PostgreSQL only: the server's own execution time of each of `sqls` (the
    /// `Execution Time` of `EXPLAIN (ANALYZE, TIMING OFF)`: no planning, no round trip, no
    /// client), in order. `None` for SQLite (the bench thread's CPU time is the whole work).
    pub fn server_times(&self, sqls: &[String]) -> Result<Option<Vec<f64>>, BoxError> {
        let Bench::Pg { url, schema, .. } = self else {
            return Ok(None);
        };
        let mut c = pg_client(url)?;
        c.batch_execute(&format!("SET search_path TO {schema}"))?;
        let mut out = Vec::with_capacity(sqls.len());
        for sql in sqls {
            let rows = c.query(&format!("EXPLAIN (ANALYZE, TIMING OFF) {sql}"), &[])?;
            let ms = rows
                .iter()
                .find_map(|r| {
                    let line: String = r.get(0);
                    line.strip_prefix("Execution Time: ")
                        .and_then(|v| v.trim_end_matches(" ms").parse::<f64>().ok())
                })
                .ok_or("EXPLAIN ANALYZE gave no execution time")?;
            out.push(ms);
        }
        Ok(Some(out))
    }

    /// Bytes on disk (SQLite file + WAL; PostgreSQL schema's tables and indexes).
    pub fn size_bytes(&self) -> Result<u64, BoxError> {
        match self {
            Bench::Sqlite { path, .. } => {
                let mut total = 0;
                for ext in ["", "-wal"] {
                    let mut p = path.clone().into_os_string();
                    p.push(ext);
                    total += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                }
                Ok(total)
            }
            Bench::Pg { url, schema, .. } => {
                let mut c = pg_client(url)?;
                let row = c.query_one(
                    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::BIGINT \
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relkind = 'r'",
                    &[schema],
                )?;
                Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
            }
        }
    }

    /// Removes the repository.
    pub fn remove(self) -> Result<(), BoxError> {
        match self {
            Bench::Sqlite { store, path } => {
                drop(store);
                remove_sqlite(&path);
            }
            Bench::Pg { store, url, schema } => {
                drop(store);
                pg_client(&url)?.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))?;
            }
        }
        Ok(())
    }
}

fn remove_sqlite(path: &Path) {
    for ext in ["", "-wal", "-shm"] {
        let mut p = path.to_path_buf().into_os_string();
        p.push(ext);
        let _ = std::fs::remove_file(p);
    }
}
