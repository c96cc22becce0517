//! How the suite opens each backend: a "database" name maps to a temp file (SQLite) or
//! a schema (PostgreSQL); opening the same name twice gives two handles on the same data.

use lifecycle::store::{PgStore, SqliteStore, Store};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// A backend under test.
pub trait Backend: Sync {
    /// The store type.
    type S: Store + 'static;
    /// Opens (creating) the named database, fully migrated.
    fn open(&self, db: &str) -> Self::S;
    /// Opens the named database migrated only up to `version`.
    fn try_open_at(&self, db: &str, version: u32) -> lifecycle::store::Result<Self::S>;
    /// Runs raw SQL outside the store (to tamper, to peek, to seed old schemas).
    fn raw_exec(&self, db: &str, sql: &str) -> Result<(), String>;
    /// Every byte of the named database at rest, where that can be read.
    fn raw_bytes(&self, db: &str) -> Vec<u8>;
    /// A string another process passes to [`open_target`] to open the same database.
    fn target(&self, db: &str) -> String;
}

/// Opens what [`Backend::target`] named (in a child process).
pub fn open_target(target: &str) -> Box<dyn Store> {
    if let Some(path) = target.strip_prefix("sqlite:") {
        Box::new(SqliteStore::open(path).expect("open sqlite target"))
    } else if let Some(schema) = target.strip_prefix("pg:") {
        let pg = Postgres::from_env().expect("pg target without a server");
        Box::new(PgStore::connect_in_schema(&pg.url, schema).expect("open pg target"))
    } else {
        panic!("unknown target {target:?}")
    }
}

fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{}_{}", std::process::id(), nanos % 1_000_000_000)
    })
}

/// SQLite in a temp folder per test process.
pub struct Sqlite;

impl Sqlite {
    fn path(db: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("keysmith-store-{}", run_id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join(format!("{db}.db"))
    }
}

impl Backend for Sqlite {
    type S = SqliteStore;
    fn open(&self, db: &str) -> SqliteStore {
        SqliteStore::open(Self::path(db)).expect("open sqlite")
    }
    fn try_open_at(&self, db: &str, version: u32) -> lifecycle::store::Result<SqliteStore> {
        SqliteStore::open_migrated_to(Self::path(db), version)
    }
    fn raw_exec(&self, db: &str, sql: &str) -> Result<(), String> {
        let conn = rusqlite::Connection::open(Self::path(db)).map_err(|e| e.to_string())?;
        conn.execute_batch(sql).map_err(|e| e.to_string())
    }
    fn raw_bytes(&self, db: &str) -> Vec<u8> {
        let path = Self::path(db);
        let mut out = std::fs::read(&path).unwrap_or_default();
        for ext in ["-wal", "-shm", "-journal"] {
            let mut p = path.clone().into_os_string();
            p.push(ext);
            out.extend(std::fs::read(PathBuf::from(p)).unwrap_or_default());
        }
        out
    }
    fn target(&self, db: &str) -> String {
        format!("sqlite:{}", Self::path(db).display())
    }
}

/// PostgreSQL: one schema per named database.
pub struct Postgres {
    url: String,
}

impl Postgres {
    /// The backend if `KEYSMITH_PG_URL` (env, or `target/pg/env`) names a server; else
    /// prints SKIPPED (or panics under CI).
    pub fn from_env() -> Option<Postgres> {
        match Self::url_from_env() {
            Some(url) => Some(Postgres { url }),
            None if std::env::var_os("CI").is_some() => {
                panic!("CI is set but KEYSMITH_PG_URL is not: run scripts/pg-start.sh first")
            }
            None => {
                eprintln!(
                    "SKIPPED: PostgreSQL store test (no KEYSMITH_PG_URL; run scripts/pg-start.sh)"
                );
                None
            }
        }
    }

    /// `KEYSMITH_PG_URL` from the environment, else from `target/pg/env`.
    pub fn url_from_env() -> Option<String> {
        keysmith_testkit::pg_url_from_env()
    }

    fn schema(db: &str) -> String {
        format!("ks_{}_{}", run_id(), db)
    }

    fn client(&self, db: &str) -> postgres::Client {
        let mut c = postgres::Client::connect(&self.url, postgres::NoTls).expect("pg connect");
        c.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {0}; SET search_path = {0}",
            Self::schema(db)
        ))
        .expect("pg schema");
        c
    }
}

impl Backend for Postgres {
    type S = PgStore;
    fn target(&self, db: &str) -> String {
        format!("pg:{}", Self::schema(db))
    }
    fn open(&self, db: &str) -> PgStore {
        PgStore::connect_in_schema(&self.url, &Self::schema(db)).expect("open pg")
    }
    fn try_open_at(&self, db: &str, version: u32) -> lifecycle::store::Result<PgStore> {
        PgStore::connect_in_schema_migrated_to(&self.url, &Self::schema(db), version)
    }
    fn raw_exec(&self, db: &str, sql: &str) -> Result<(), String> {
        let mut c = self.client(db);
        c.batch_execute(sql).map_err(|e| {
            e.as_db_error()
                .map(|d| d.message().to_owned())
                .unwrap_or_else(|| e.to_string())
        })
    }
    fn raw_bytes(&self, db: &str) -> Vec<u8> {
        // Every stored blob and text of the tables that could hold secrets.
        let mut c = self.client(db);
        let mut out = Vec::new();
        for row in c
            .query("SELECT key_id, sealed FROM transport_pins", &[])
            .expect("pg read pins")
        {
            out.extend(row.get::<_, String>(0).into_bytes());
            out.extend(row.get::<_, Vec<u8>>(1));
        }
        for row in c
            .query("SELECT payload FROM journal", &[])
            .expect("pg read journal")
        {
            out.extend(row.get::<_, Vec<u8>>(0));
        }
        out
    }
}
