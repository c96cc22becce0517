//! The PostgreSQL store: one database shared by several CMS stations.

use super::pg_tls::{self, Tls};
use super::sql::{self, Cell, Dialect, Param, Row, Sql};
use super::{Result, StoreError};
use postgres::error::SqlState;
use postgres::types::{ToSql, Type};
use postgres::{Client, Config, NoTls, Statement};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

#[path = "pg_listen.rs"]
mod listen;

/// Advisory lock key serialising migrations between stations ("KSMIGR" in ASCII).
const MIGRATION_LOCK: i64 = 0x4b53_4d49_4752;
/// Advisory lock key serialising audit appends within their transaction ("KSAUDT"); an
/// advisory lock needs no table privilege, so the application role can take it.
const AUDIT_LOCK: i64 = 0x4b53_4155_4454;

/// A [`super::Store`] in a PostgreSQL database (sync client).
///
/// The connection is TLS (rustls) with the server certificate verified (`sslmode`
/// `verify-full` by default) to any host that is not loopback; plaintext to such a host
/// is refused ([`StoreError::InsecureConnection`]). A loopback host is plaintext unless
/// the connection string's `sslmode` asks for TLS. `sslrootcert` (in the string or
/// [`PgOptions::root_cert`]) names a PEM file of trusted roots; without one the public
/// Web PKI roots are used. SCRAM channel binding (`tls-server-end-point`) is used when
/// the server offers it (`channel_binding=require` insists on it).
///
/// Each `PgStore` holds one connection; open one per thread or station. Compare-and-set
/// is a conditional `UPDATE ... WHERE version = $n` under READ COMMITTED, so of two
/// stations racing for a key exactly one wins; migrations are serialised by an
/// advisory lock, so stations may start together.
pub struct PgStore {
    conn: Mutex<Conn>,
    config: Config,
    row_key: super::crypto::rowmac::RowKeySlot,
    tls: Tls,
    mode: pg_tls::SslMode,
    /// This store's token in the session notifications it sends.
    origin: String,
    /// The session-notification listener, once asked for.
    watch: listen::Watch,
}

/// How to reach a PostgreSQL repository, besides the connection string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PgOptions {
    /// All tables in this schema (created if missing): several independent repositories
    /// in one database. `None`: the connection's default `search_path`.
    pub schema: Option<String>,
    /// A PEM file of the roots the server certificate must chain to, used when the
    /// connection string has no `sslrootcert`.
    pub root_cert: Option<PathBuf>,
}

/// The connection and its prepared statements (valid for this connection only).
struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

/// An open transaction plus the connection's statement cache.
struct PgTx<'a> {
    tx: postgres::Transaction<'a>,
    statements: &'a mut HashMap<String, Statement>,
    /// The store's notification token.
    origin: &'a str,
}

impl PgTx<'_> {
    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.tx.prepare(sql).map_err(backend)?;
        self.statements.insert(sql.to_owned(), st.clone());
        Ok(st)
    }
}

impl core::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The config may hold a password: print only where it points.
        f.debug_struct("PgStore")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("sslmode", &self.mode.as_str())
            .finish_non_exhaustive()
    }
}

/// Connects with the planned socket wrapper.
fn open(config: &Config, tls: &Tls) -> Result<Client> {
    match tls {
        Tls::Plain => config.connect(NoTls),
        Tls::Rustls(make) => config.connect(make.clone()),
    }
    .map_err(backend)
}

fn backend(e: postgres::Error) -> StoreError {
    if e.as_db_error().is_none() {
        if let Some(reason) = pg_tls::tls_failure(&e) {
            return StoreError::Tls { reason };
        }
    }
    if let Some(db) = e.as_db_error() {
        let text = format!("{} ({})", db.message(), db.code().code());
        if *db.code() == SqlState::UNIQUE_VIOLATION {
            return StoreError::Duplicate { what: text };
        }
        if *db.code() == SqlState::FOREIGN_KEY_VIOLATION {
            return StoreError::NotFound {
                what: format!("referenced record ({text})"),
            };
        }
        return StoreError::Backend(format!("postgres: {text}"));
    }
    let mut msg = e.to_string();
    if let Some(src) = std::error::Error::source(&e) {
        msg = format!("{msg}: {src}");
    }
    StoreError::Backend(format!("postgres: {msg}"))
}

fn boxed(p: &Param) -> Box<dyn ToSql + Sync> {
    match p {
        Param::Int(v) => Box::new(*v),
        Param::Text(v) => Box::new(v.clone()),
        Param::Blob(v) => Box::new(v.clone()),
    }
}

fn run<T>(params: &[Param], f: impl FnOnce(&[&(dyn ToSql + Sync)]) -> T) -> T {
    let owned: Vec<Box<dyn ToSql + Sync>> = params.iter().map(boxed).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref()).collect();
    f(&refs)
}

fn cell(row: &postgres::Row, i: usize) -> Result<Cell> {
    let ty = row.columns().get(i).map(|c| c.type_().clone());
    let bad = |e: postgres::Error| StoreError::Corrupt {
        what: format!("column {i}: {e}"),
    };
    let c = match ty {
        Some(Type::INT8) => row
            .try_get::<_, Option<i64>>(i)
            .map_err(bad)?
            .map(Cell::Int),
        Some(Type::INT4) => row
            .try_get::<_, Option<i32>>(i)
            .map_err(bad)?
            .map(|v| Cell::Int(i64::from(v))),
        Some(Type::INT2) => row
            .try_get::<_, Option<i16>>(i)
            .map_err(bad)?
            .map(|v| Cell::Int(i64::from(v))),
        Some(Type::BOOL) => row
            .try_get::<_, Option<bool>>(i)
            .map_err(bad)?
            .map(|v| Cell::Int(i64::from(v))),
        Some(Type::TEXT) | Some(Type::VARCHAR) | Some(Type::NAME) => row
            .try_get::<_, Option<String>>(i)
            .map_err(bad)?
            .map(Cell::Text),
        Some(Type::BYTEA) => row
            .try_get::<_, Option<Vec<u8>>>(i)
            .map_err(bad)?
            .map(Cell::Blob),
        other => {
            return Err(StoreError::Corrupt {
                what: format!("column {i}: unsupported type {other:?}"),
            })
        }
    };
    Ok(c.unwrap_or(Cell::Null))
}

impl Sql for PgTx<'_> {
    fn notify_session(&mut self, session_id: &str) -> Result<()> {
        let payload = format!("{}:{session_id}", self.origin);
        self.exec(
            "SELECT pg_notify($1, $2)",
            &[
                Param::Text(Some(listen::CHANNEL.to_owned())),
                Param::Text(Some(payload)),
            ],
        )
        .map(|_| ())
    }
    fn lock_audit(&mut self) -> Result<()> {
        self.exec(
            "SELECT pg_advisory_xact_lock($1)",
            &[Param::Int(Some(AUDIT_LOCK))],
        )
        .map(|_| ())
    }

    fn exec(&mut self, sql: &str, params: &[Param]) -> Result<u64> {
        let st = self.statement(sql)?;
        run(params, |p| self.tx.execute(&st, p)).map_err(backend)
    }

    fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>> {
        let st = self.statement(sql)?;
        let rows = run(params, |p| self.tx.query(&st, p)).map_err(backend)?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| cell(r, i))
                    .collect::<Result<Vec<_>>>()
                    .map(Row)
            })
            .collect()
    }
}

fn valid_schema(schema: &str) -> Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            field: "schema",
            reason: format!("{schema:?}: use 1-63 of [a-z0-9_], not starting with a digit"),
        })
    }
}

impl PgStore {
    /// Connects (`postgresql://user:pw@host:port/db` or key=value form, with libpq's
    /// `sslmode` and `sslrootcert`) and migrates the database to
    /// [`super::SCHEMA_VERSION`].
    pub fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, &PgOptions::default())
    }

    /// Like [`PgStore::connect`], with all tables in `schema` (created if missing):
    /// several independent repositories in one database, e.g. one per test run.
    pub fn connect_in_schema(url: &str, schema: &str) -> Result<Self> {
        Self::connect_in_schema_migrated_to(url, schema, super::SCHEMA_VERSION)
    }

    /// Like [`PgStore::connect`], with the options.
    pub fn connect_with(url: &str, options: &PgOptions) -> Result<Self> {
        Self::connect_migrated_to(url, options, super::SCHEMA_VERSION)
    }

    /// Like [`PgStore::connect_in_schema`], migrating only up to `version`.
    pub fn connect_in_schema_migrated_to(url: &str, schema: &str, version: u32) -> Result<Self> {
        let options = PgOptions {
            schema: Some(schema.to_owned()),
            root_cert: None,
        };
        Self::connect_migrated_to(url, &options, version)
    }

    fn connect_migrated_to(url: &str, options: &PgOptions, version: u32) -> Result<Self> {
        let plan = pg_tls::plan(url, options.root_cert.as_deref())?;
        let (mut config, tls, mode) = (plan.config, plan.tls, plan.mode);
        if let Some(schema) = options.schema.as_deref() {
            valid_schema(schema)?;
            let mut client = open(&config, &tls)?;
            let mut tx = client.transaction().map_err(backend)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .map_err(backend)?;
            // An application role without CREATE on the database opens a schema the owner
            // role made: create it only when it is missing.
            let exists = tx
                .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
                .map_err(backend)?
                .is_some();
            if !exists {
                tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                    .map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            config.options(&format!("-c search_path={schema}"));
        }
        Self::with_config(config, tls, mode, version)
    }

    fn with_config(config: Config, tls: Tls, mode: pg_tls::SslMode, version: u32) -> Result<Self> {
        let client = open(&config, &tls)?;
        let store = PgStore {
            conn: Mutex::new(Conn {
                client,
                statements: HashMap::new(),
            }),
            config,
            row_key: Default::default(),
            tls,
            mode,
            origin: listen::origin(),
            watch: listen::Watch::default(),
        };
        store.tx(|s| {
            s.exec(
                "SELECT pg_advisory_xact_lock($1)",
                &[Param::Int(Some(MIGRATION_LOCK))],
            )?;
            sql::migrate(s, Dialect::Postgres, version)
        })?;
        Ok(store)
    }

    /// [`super::split::SplitStore::watch_sessions`]: `LISTEN` on a connection of its own.
    fn watch_split_sessions(&self, changed: super::split::SessionChanged) -> Result<bool> {
        let listen = listen::Listen {
            config: self.config.clone(),
            tls: self.tls.clone(),
            origin: self.origin.clone(),
        };
        self.watch.start(listen, open, changed)
    }

    /// What [`super::Store::check_integrity`] does on PostgreSQL: the server checks its
    /// own pages, so this confirms the connection and that the schema is one this build
    /// understands.
    pub fn integrity_check(&self) -> Result<()> {
        let version = self.read(sql::schema_version)?;
        if version > super::SCHEMA_VERSION {
            return Err(StoreError::Damaged {
                path: "postgres".into(),
                report: format!(
                    "schema version {version} is newer than this build's {}",
                    super::SCHEMA_VERSION
                ),
            });
        }
        Ok(())
    }

    /// The connection, reconnected (with an empty statement cache) if it was lost.
    fn conn(&self) -> Result<MutexGuard<'_, Conn>> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if conn.client.is_closed() {
            conn.client = open(&self.config, &self.tls)?;
            conn.statements.clear();
        }
        Ok(conn)
    }

    /// Runs `f` in one transaction; commits if it returns `Ok`.
    fn tx<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T> {
        let mut guard = self.conn()?;
        let Conn { client, statements } = &mut *guard;
        let tx = client.transaction().map_err(backend)?;
        let mut tx = PgTx {
            tx,
            statements,
            origin: &self.origin,
        };
        let out = f(&mut tx)?;
        tx.tx.commit().map_err(backend)?;
        Ok(out)
    }

    /// Runs `f` in one read-only transaction.
    fn read<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T> {
        let mut guard = self.conn()?;
        let Conn { client, statements } = &mut *guard;
        let tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .map_err(backend)?;
        let mut tx = PgTx {
            tx,
            statements,
            origin: &self.origin,
        };
        let out = f(&mut tx)?;
        tx.tx.commit().map_err(backend)?;
        Ok(out)
    }
}

sql::impl_store!(PgStore);
sql::impl_split_store!(PgStore);
sql::impl_watch_store!(PgStore);
super::atomic::impl_atomic_writes!(PgStore);
