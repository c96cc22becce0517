//! The database a row-authentication test runs on, with raw SQL access around the store
//! (what someone with write access to the database can do).

use std::path::PathBuf;
use std::sync::Arc;

use lifecycle::store::{PgStore, SqliteStore, Store};

/// SQLite in a temp directory, or a fresh PostgreSQL schema.
pub enum Db {
    Sqlite {
        name: String,
        path: PathBuf,
    },
    Postgres {
        name: String,
        url: String,
        schema: String,
    },
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000)
        .unwrap_or(0);
    format!("{}_{}_{nanos}", name, std::process::id())
}

impl Db {
    pub fn sqlite(name: &str) -> Db {
        let dir = crate::common::temp_dir(&format!("rowmac-{name}"));
        Db::Sqlite {
            name: format!("sqlite-{name}"),
            path: dir.join("keysmith.db"),
        }
    }

    /// `None` (SKIPPED printed) without a server, unless CI is set.
    pub fn postgres(name: &str) -> Option<Db> {
        let url = crate::store::backends::Postgres::url_from_env();
        let Some(url) = url else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but KEYSMITH_PG_URL is not"
            );
            eprintln!("SKIPPED: PostgreSQL row-authentication test (no KEYSMITH_PG_URL)");
            return None;
        };
        let schema = format!("ks_rm_{}", unique(&name[..name.len().min(20)]));
        Some(Db::Postgres {
            name: format!("pg-{name}"),
            url,
            schema,
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Db::Sqlite { name, .. } | Db::Postgres { name, .. } => name,
        }
    }

    /// A new store handle on the database (fully migrated).
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Db::Sqlite { path, .. } => Arc::new(SqliteStore::open(path).expect("sqlite")),
            Db::Postgres { url, schema, .. } => {
                Arc::new(PgStore::connect_in_schema(url, schema).expect("pg"))
            }
        }
    }

    /// A raw PostgreSQL client as the owner role, in the test's schema.
    pub fn pg_client(&self) -> postgres::Client {
        let Db::Postgres { url, schema, .. } = self else {
            panic!("not PostgreSQL")
        };
        let mut c = postgres::Client::connect(url, postgres::NoTls).expect("pg connect");
        c.batch_execute(&format!("SET search_path = {schema}"))
            .expect("search path");
        c
    }

    /// Runs raw SQL outside the store; panics on failure.
    pub fn raw(&self, sql: &str) {
        self.try_raw(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Runs raw SQL outside the store.
    pub fn try_raw(&self, sql: &str) -> Result<(), String> {
        match self {
            Db::Sqlite { path, .. } => rusqlite::Connection::open(path)
                .and_then(|c| c.execute_batch(sql))
                .map_err(|e| e.to_string()),
            Db::Postgres { .. } => self.pg_client().batch_execute(sql).map_err(|e| {
                e.as_db_error()
                    .map(|d| d.message().to_owned())
                    .unwrap_or_else(|| e.to_string())
            }),
        }
    }

    /// SQL that rewrites `from` to `to` inside every register journal payload.
    pub fn replace_in_register_payload(&self, from: &str, to: &str) -> String {
        match self {
            Db::Sqlite { .. } => format!(
                "UPDATE journal SET payload = CAST(replace(CAST(payload AS TEXT), '{from}', \
                 '{to}') AS BLOB) WHERE operation = 'register'"
            ),
            Db::Postgres { .. } => format!(
                "UPDATE journal SET payload = convert_to(replace(convert_from(payload, 'UTF8'), \
                 '{from}', '{to}'), 'UTF8') WHERE operation = 'register'"
            ),
        }
    }

    /// Makes the database refuse every audit record that is not a success.
    pub fn refuse_failure_audits(&self) {
        match self {
            Db::Sqlite { .. } => self.raw(
                "CREATE TRIGGER refuse_failure_audits BEFORE INSERT ON audit \
                 WHEN NEW.outcome <> 'success' \
                 BEGIN SELECT RAISE(ABORT, 'audit storage refused'); END;",
            ),
            Db::Postgres { .. } => self.raw(
                "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
                 $f$ BEGIN RAISE EXCEPTION 'audit storage refused'; END $f$; \
                 CREATE TRIGGER refuse_failure_audits BEFORE INSERT ON audit FOR EACH ROW \
                 WHEN (NEW.outcome <> 'success') EXECUTE FUNCTION refuse_audit();",
            ),
        }
    }

    /// Edits one audit record the way someone with write access would: past the
    /// append-only trigger (dropped on SQLite, disabled by the owner on PostgreSQL).
    pub fn edit_audit_record(&self, id: i64) {
        match self {
            Db::Sqlite { .. } => self.raw(&format!(
                "DROP TRIGGER IF EXISTS audit_no_update; \
                 UPDATE audit SET detail = 'nothing happened' WHERE id = {id};"
            )),
            Db::Postgres { .. } => self.raw(&format!(
                "ALTER TABLE audit DISABLE TRIGGER audit_no_change; \
                 UPDATE audit SET detail = 'nothing happened' WHERE id = {id}; \
                 ALTER TABLE audit ENABLE TRIGGER audit_no_change;"
            )),
        }
    }

    /// Deletes one audit record past the append-only trigger.
    pub fn delete_audit_record(&self, id: i64) {
        match self {
            Db::Sqlite { .. } => self.raw(&format!(
                "DROP TRIGGER IF EXISTS audit_no_delete; DELETE FROM audit WHERE id = {id};"
            )),
            Db::Postgres { .. } => self.raw(&format!(
                "ALTER TABLE audit DISABLE TRIGGER audit_no_change; \
                 DELETE FROM audit WHERE id = {id}; \
                 ALTER TABLE audit ENABLE TRIGGER audit_no_change;"
            )),
        }
    }
}
