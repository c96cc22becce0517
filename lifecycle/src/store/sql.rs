//! Backend-neutral store logic over a tiny SQL abstraction.
//!
//! Both backends implement [`Sql`] for an open transaction; everything else (schema,
//! migrations, queries, compare-and-set, journal rules) is written once here. SQL uses
//! `$1`-style placeholders in ascending first-use order and only types both dialects
//! share (TEXT, BIGINT, blobs); DDL differences are the `{ID}` and `{BLOB}` substitutions.

use super::crypto;
use super::{
    AuditQuery, AuditRecord, BulkCounts, BulkItem, BulkItemStatus, BulkJob, Committed,
    JournalEntry, JournalOp, JournalStatus, KeyQuery, KeyRecord, NewAuditRecord, NewBulkJob,
    NewJournalEntry, NewKey, PasskeyRecord, PendingRegistration, PinKey, Result, StoreError,
    Transition, TransportPin, UnitOfWork, UnixMillis, UserRecord,
};
use crate::model::CredentialState;

/// A bound parameter (typed even when NULL, for PostgreSQL).
#[derive(Clone, Debug)]
pub(crate) enum P {
    /// BIGINT.
    I(Option<i64>),
    /// TEXT.
    T(Option<String>),
    /// Blob (BLOB / BYTEA).
    B(Option<Vec<u8>>),
}

/// A result cell.
#[derive(Clone, Debug)]
pub(crate) enum C {
    Null,
    I(i64),
    T(String),
    B(Vec<u8>),
}

/// One open transaction of a backend.
pub(crate) trait Sql {
    /// Runs a statement; returns affected rows.
    fn exec(&mut self, sql: &str, params: &[P]) -> Result<u64>;
    /// Runs a query; returns all rows.
    fn query(&mut self, sql: &str, params: &[P]) -> Result<Vec<Row>>;
}

/// Which SQL dialect the DDL is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A result row with typed, field-naming accessors.
#[derive(Clone, Debug)]
pub(crate) struct Row(pub(crate) Vec<C>);

impl Row {
    fn cell(&self, i: usize, field: &str) -> Result<&C> {
        self.0.get(i).ok_or_else(|| StoreError::Corrupt {
            what: format!("{field}: column {i} missing"),
        })
    }
    fn text(&self, i: usize, field: &str) -> Result<String> {
        match self.cell(i, field)? {
            C::T(s) => Ok(s.clone()),
            other => Err(wrong(field, "text", other)),
        }
    }
    fn opt_text(&self, i: usize, field: &str) -> Result<Option<String>> {
        match self.cell(i, field)? {
            C::Null => Ok(None),
            C::T(s) => Ok(Some(s.clone())),
            other => Err(wrong(field, "text or null", other)),
        }
    }
    fn int(&self, i: usize, field: &str) -> Result<i64> {
        match self.cell(i, field)? {
            C::I(v) => Ok(*v),
            other => Err(wrong(field, "integer", other)),
        }
    }
    fn uint(&self, i: usize, field: &str) -> Result<u64> {
        let v = self.int(i, field)?;
        u64::try_from(v).map_err(|_| StoreError::Corrupt {
            what: format!("{field}: negative value {v}"),
        })
    }
    fn bytes(&self, i: usize, field: &str) -> Result<Vec<u8>> {
        match self.cell(i, field)? {
            C::B(b) => Ok(b.clone()),
            other => Err(wrong(field, "bytes", other)),
        }
    }
    fn state(&self, i: usize, field: &str) -> Result<CredentialState> {
        let s = self.text(i, field)?;
        s.parse().map_err(|_| StoreError::Corrupt {
            what: format!("{field}: unknown state {s:?}"),
        })
    }
}

fn wrong(field: &str, expected: &str, found: &C) -> StoreError {
    let found = match found {
        C::Null => "null",
        C::I(_) => "integer",
        C::T(_) => "text",
        C::B(_) => "bytes",
    };
    StoreError::Corrupt {
        what: format!("{field}: expected {expected}, found {found}"),
    }
}

fn t(s: &str) -> P {
    P::T(Some(s.to_owned()))
}
fn ot(s: &Option<String>) -> P {
    P::T(s.clone())
}
fn i(v: i64) -> P {
    P::I(Some(v))
}
fn b(v: &[u8]) -> P {
    P::B(Some(v.to_vec()))
}
fn ver(v: u64, field: &'static str) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Invalid {
        field,
        reason: format!("{v} exceeds i64"),
    })
}

// ---------------------------------------------------------------------------------------
// Schema and migrations
// ---------------------------------------------------------------------------------------

/// Number of migrations; the schema version after all of them.
pub(crate) const MIGRATION_COUNT: u32 = 4;

const V1: &[&str] = &[
    "CREATE TABLE users (user_id TEXT PRIMARY KEY, upn TEXT NOT NULL UNIQUE, \
     display_name TEXT NOT NULL, idp_user_id TEXT)",
    "CREATE TABLE keys (key_id TEXT PRIMARY KEY, aaguid {BLOB} NOT NULL, serial TEXT NOT NULL, \
     state TEXT NOT NULL, user_id TEXT, template_id TEXT, version BIGINT NOT NULL, \
     created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL)",
    "CREATE TABLE passkeys (key_id TEXT NOT NULL REFERENCES keys(key_id), idp TEXT NOT NULL, \
     credential_id {BLOB} NOT NULL, public_key {BLOB} NOT NULL, idp_method_id TEXT, \
     state TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL, \
     PRIMARY KEY (key_id, idp, credential_id))",
    "CREATE TABLE pending_registrations (key_id TEXT NOT NULL REFERENCES keys(key_id), \
     idp TEXT NOT NULL, user_id TEXT NOT NULL, attestation_object {BLOB} NOT NULL, \
     client_data_json {BLOB} NOT NULL, challenge_expires_ms BIGINT NOT NULL, \
     created_ms BIGINT NOT NULL, PRIMARY KEY (key_id, idp))",
    "CREATE TABLE audit (id {ID}, actor TEXT NOT NULL, time_ms BIGINT NOT NULL, \
     action TEXT NOT NULL, key_id TEXT, user_id TEXT, template_id TEXT, outcome TEXT NOT NULL, \
     idp_request_id TEXT, detail TEXT)",
    "CREATE TABLE journal (id {ID}, key_id TEXT NOT NULL REFERENCES keys(key_id), \
     idp TEXT NOT NULL, operation TEXT NOT NULL, payload {BLOB} NOT NULL, status TEXT NOT NULL, \
     attempts BIGINT NOT NULL, result TEXT, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL)",
    "CREATE TABLE transport_pins (key_id TEXT PRIMARY KEY REFERENCES keys(key_id), \
     sealed {BLOB} NOT NULL, updated_ms BIGINT NOT NULL)",
];

const V2: &[&str] = &[
    "ALTER TABLE keys ADD COLUMN needs_reissue BIGINT NOT NULL DEFAULT 0",
    "CREATE INDEX keys_user ON keys (user_id)",
    "CREATE INDEX keys_state ON keys (state)",
    "CREATE INDEX keys_serial ON keys (serial)",
    "CREATE UNIQUE INDEX keys_aaguid_serial ON keys (aaguid, serial) WHERE serial <> ''",
    "CREATE INDEX audit_key ON audit (key_id, id)",
    "CREATE INDEX audit_user ON audit (user_id, id)",
    "CREATE INDEX audit_time ON audit (time_ms)",
    "CREATE INDEX journal_status ON journal (status, id)",
    "CREATE INDEX pending_expiry ON pending_registrations (challenge_expires_ms)",
];

/// Journal leases: which station is replaying an entry, until when.
const V3: &[&str] = &[
    "ALTER TABLE journal ADD COLUMN claimed_by TEXT",
    "ALTER TABLE journal ADD COLUMN claimed_until_ms BIGINT NOT NULL DEFAULT 0",
];

/// Resumable bulk jobs.
const V4: &[&str] = &[
    "CREATE TABLE bulk_jobs (job_id {ID}, kind TEXT NOT NULL, source_hash TEXT NOT NULL, \
     actor TEXT NOT NULL, total BIGINT NOT NULL, created_ms BIGINT NOT NULL, \
     UNIQUE (kind, source_hash))",
    "CREATE TABLE bulk_items (job_id BIGINT NOT NULL REFERENCES bulk_jobs(job_id), \
     line BIGINT NOT NULL, input TEXT NOT NULL, status TEXT NOT NULL, outcome TEXT, \
     updated_ms BIGINT NOT NULL, PRIMARY KEY (job_id, line))",
    "CREATE INDEX bulk_items_status ON bulk_items (job_id, status)",
    "CREATE INDEX passkeys_credential ON passkeys (credential_id)",
];

const V2_SQLITE: &[&str] = &[
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit \
     BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit \
     BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
];

const V2_PG: &[&str] = &[
    "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS \
     $f$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $f$",
    "CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit \
     FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
];

fn migration_sql(version: u32, dialect: Dialect) -> Vec<String> {
    let (id, blob) = match dialect {
        Dialect::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"),
        Dialect::Postgres => ("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BYTEA"),
    };
    let mut stmts: Vec<&str> = match version {
        1 => V1.to_vec(),
        2 => V2.to_vec(),
        3 => V3.to_vec(),
        4 => V4.to_vec(),
        _ => Vec::new(),
    };
    if version == 2 {
        stmts.extend_from_slice(match dialect {
            Dialect::Sqlite => V2_SQLITE,
            Dialect::Postgres => V2_PG,
        });
    }
    stmts
        .into_iter()
        .map(|s| s.replace("{ID}", id).replace("{BLOB}", blob))
        .collect()
}

/// Reads the schema version (0 for an empty database).
pub(crate) fn schema_version(sql: &mut dyn Sql) -> Result<u32> {
    let rows = sql.query("SELECT version FROM schema_version", &[])?;
    match rows.as_slice() {
        [] => Ok(0),
        [row] => {
            let v = row.int(0, "schema_version.version")?;
            u32::try_from(v).map_err(|_| StoreError::Corrupt {
                what: format!("schema_version.version: {v} out of range"),
            })
        }
        _ => Err(StoreError::Corrupt {
            what: "schema_version: more than one row".into(),
        }),
    }
}

/// Brings the schema to `target` inside the caller's transaction (which holds the
/// backend's migration lock). Idempotent; refuses a database newer than this build.
pub(crate) fn migrate(sql: &mut dyn Sql, dialect: Dialect, target: u32) -> Result<u32> {
    sql.exec(
        "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
        &[],
    )?;
    let current = schema_version(sql)?;
    if current > MIGRATION_COUNT {
        return Err(StoreError::Migration {
            version: current,
            reason: format!(
                "the database has schema version {current}; this build knows up to {MIGRATION_COUNT}"
            ),
        });
    }
    if current == 0 {
        sql.exec("INSERT INTO schema_version (version) VALUES (0)", &[])?;
    }
    let target = target.min(MIGRATION_COUNT);
    for version in current + 1..=target {
        for stmt in migration_sql(version, dialect) {
            sql.exec(&stmt, &[]).map_err(|e| StoreError::Migration {
                version,
                reason: e.to_string(),
            })?;
        }
        sql.exec(
            "UPDATE schema_version SET version = $1",
            &[i(i64::from(version))],
        )?;
    }
    schema_version(sql)
}

// ---------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------

const KEY_COLS: &str = "key_id, aaguid, serial, state, user_id, template_id, needs_reissue, \
                        version, created_ms, updated_ms";

fn key_from(row: &Row) -> Result<KeyRecord> {
    let aaguid = row.bytes(1, "keys.aaguid")?;
    let aaguid: [u8; 16] = aaguid
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::Corrupt {
            what: format!("keys.aaguid: {} bytes, expected 16", aaguid.len()),
        })?;
    Ok(KeyRecord {
        key_id: row.text(0, "keys.key_id")?,
        aaguid,
        serial: row.text(2, "keys.serial")?,
        state: row.state(3, "keys.state")?,
        user_id: row.opt_text(4, "keys.user_id")?,
        template_id: row.opt_text(5, "keys.template_id")?,
        needs_reissue: row.int(6, "keys.needs_reissue")? != 0,
        version: row.uint(7, "keys.version")?,
        created_ms: row.int(8, "keys.created_ms")?,
        updated_ms: row.int(9, "keys.updated_ms")?,
    })
}

const PASSKEY_COLS: &str =
    "key_id, idp, credential_id, public_key, idp_method_id, state, created_ms";

fn passkey_from(row: &Row) -> Result<PasskeyRecord> {
    Ok(PasskeyRecord {
        key_id: row.text(0, "passkeys.key_id")?,
        idp: row.text(1, "passkeys.idp")?,
        credential_id: row.bytes(2, "passkeys.credential_id")?,
        public_key: row.bytes(3, "passkeys.public_key")?,
        idp_method_id: row.opt_text(4, "passkeys.idp_method_id")?,
        state: row.state(5, "passkeys.state")?,
        created_ms: row.int(6, "passkeys.created_ms")?,
    })
}

const PENDING_COLS: &str = "key_id, idp, user_id, attestation_object, client_data_json, \
                            challenge_expires_ms, created_ms";

fn pending_from(row: &Row) -> Result<PendingRegistration> {
    Ok(PendingRegistration {
        key_id: row.text(0, "pending.key_id")?,
        idp: row.text(1, "pending.idp")?,
        user_id: row.text(2, "pending.user_id")?,
        attestation_object: row.bytes(3, "pending.attestation_object")?,
        client_data_json: row.bytes(4, "pending.client_data_json")?,
        challenge_expires_ms: row.int(5, "pending.challenge_expires_ms")?,
        created_ms: row.int(6, "pending.created_ms")?,
    })
}

const AUDIT_COLS: &str = "id, actor, time_ms, action, key_id, user_id, template_id, outcome, \
                          idp_request_id, detail";

fn audit_from(row: &Row) -> Result<AuditRecord> {
    Ok(AuditRecord {
        id: row.int(0, "audit.id")?,
        event: NewAuditRecord {
            actor: row.text(1, "audit.actor")?,
            time_ms: row.int(2, "audit.time_ms")?,
            action: row.text(3, "audit.action")?,
            key_id: row.opt_text(4, "audit.key_id")?,
            user_id: row.opt_text(5, "audit.user_id")?,
            template_id: row.opt_text(6, "audit.template_id")?,
            outcome: row.text(7, "audit.outcome")?,
            idp_request_id: row.opt_text(8, "audit.idp_request_id")?,
            detail: row.opt_text(9, "audit.detail")?,
        },
    })
}

const JOURNAL_COLS: &str = "id, key_id, idp, operation, payload, status, attempts, result, \
                            created_ms, updated_ms, claimed_by, claimed_until_ms";

fn journal_from(row: &Row) -> Result<JournalEntry> {
    let op = row.text(3, "journal.operation")?;
    let status = row.text(5, "journal.status")?;
    let attempts = row.uint(6, "journal.attempts")?;
    Ok(JournalEntry {
        id: row.int(0, "journal.id")?,
        key_id: row.text(1, "journal.key_id")?,
        idp: row.text(2, "journal.idp")?,
        operation: JournalOp::parse(&op).ok_or_else(|| StoreError::Corrupt {
            what: format!("journal.operation: unknown {op:?}"),
        })?,
        payload: row.bytes(4, "journal.payload")?,
        status: JournalStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
            what: format!("journal.status: unknown {status:?}"),
        })?,
        attempts: u32::try_from(attempts).map_err(|_| StoreError::Corrupt {
            what: format!("journal.attempts: {attempts} out of range"),
        })?,
        result: row.opt_text(7, "journal.result")?,
        created_ms: row.int(8, "journal.created_ms")?,
        updated_ms: row.int(9, "journal.updated_ms")?,
        claimed_by: row.opt_text(10, "journal.claimed_by")?,
        claimed_until_ms: row.int(11, "journal.claimed_until_ms")?,
    })
}

fn rows_to<T>(rows: Vec<Row>, f: fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(f).collect()
}

fn first<T>(rows: Vec<Row>, f: fn(&Row) -> Result<T>) -> Result<Option<T>> {
    rows.first().map(f).transpose()
}

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

pub(crate) fn upsert_user(sql: &mut dyn Sql, u: &UserRecord) -> Result<()> {
    sql.exec(
        "INSERT INTO users (user_id, upn, display_name, idp_user_id) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id) DO UPDATE SET upn = excluded.upn, \
         display_name = excluded.display_name, idp_user_id = excluded.idp_user_id",
        &[
            t(&u.user_id),
            t(&u.upn),
            t(&u.display_name),
            ot(&u.idp_user_id),
        ],
    )?;
    Ok(())
}

pub(crate) fn get_user(sql: &mut dyn Sql, user_id: &str) -> Result<Option<UserRecord>> {
    let rows = sql.query(
        "SELECT user_id, upn, display_name, idp_user_id FROM users WHERE user_id = $1",
        &[t(user_id)],
    )?;
    first(rows, |r| {
        Ok(UserRecord {
            user_id: r.text(0, "users.user_id")?,
            upn: r.text(1, "users.upn")?,
            display_name: r.text(2, "users.display_name")?,
            idp_user_id: r.opt_text(3, "users.idp_user_id")?,
        })
    })
}

pub(crate) fn create_key(sql: &mut dyn Sql, k: &NewKey, now: UnixMillis) -> Result<KeyRecord> {
    if k.key_id.is_empty() {
        return Err(StoreError::Invalid {
            field: "key_id",
            reason: "empty".into(),
        });
    }
    let rows = sql.query(
        &format!(
            "INSERT INTO keys (key_id, aaguid, serial, state, user_id, template_id, \
             needs_reissue, version, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, NULL, NULL, 0, 1, $5, $5) RETURNING {KEY_COLS}"
        ),
        &[
            t(&k.key_id),
            b(&k.aaguid),
            t(&k.serial),
            t(CredentialState::Blank.as_str()),
            i(now),
        ],
    )?;
    first(rows, key_from)?.ok_or_else(|| StoreError::Corrupt {
        what: "keys: insert returned no row".into(),
    })
}

pub(crate) fn get_key(sql: &mut dyn Sql, key_id: &str) -> Result<Option<KeyRecord>> {
    let rows = sql.query(
        &format!("SELECT {KEY_COLS} FROM keys WHERE key_id = $1"),
        &[t(key_id)],
    )?;
    first(rows, key_from)
}

fn key_cond(q: &KeyQuery) -> (&'static str, Vec<P>) {
    match q {
        KeyQuery::ByUser(u) => ("user_id = $1", vec![t(u)]),
        KeyQuery::ByState(s) => ("state = $1", vec![t(s.as_str())]),
        KeyQuery::BySerial(s) => ("serial = $1", vec![t(s)]),
        KeyQuery::ByAaguidSerial(a, s) => ("aaguid = $1 AND serial = $2", vec![b(a), t(s)]),
        KeyQuery::All => ("1 = 1", vec![]),
    }
}

pub(crate) fn find_keys(sql: &mut dyn Sql, q: &KeyQuery) -> Result<Vec<KeyRecord>> {
    let (cond, params) = key_cond(q);
    let rows = sql.query(
        &format!("SELECT {KEY_COLS} FROM keys WHERE {cond} ORDER BY key_id"),
        &params,
    )?;
    rows_to(rows, key_from)
}

/// Largest page the paged queries return.
pub(crate) const MAX_PAGE: u32 = 10_000;

fn page_limit(limit: u32) -> Result<i64> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(StoreError::Invalid {
            field: "limit",
            reason: format!("{limit} is not between 1 and {MAX_PAGE}"),
        });
    }
    Ok(i64::from(limit))
}

pub(crate) fn find_keys_page(
    sql: &mut dyn Sql,
    q: &KeyQuery,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<KeyRecord>> {
    let limit = page_limit(limit)?;
    let (cond, mut params) = key_cond(q);
    let n = params.len();
    let after_cond = match after {
        Some(a) => {
            params.push(t(a));
            format!(" AND key_id > ${}", n + 1)
        }
        None => String::new(),
    };
    params.push(i(limit));
    let rows = sql.query(
        &format!(
            "SELECT {KEY_COLS} FROM keys WHERE {cond}{after_cond} ORDER BY key_id LIMIT ${}",
            params.len()
        ),
        &params,
    )?;
    rows_to(rows, key_from)
}

fn apply_transition(sql: &mut dyn Sql, tr: &Transition, now: UnixMillis) -> Result<KeyRecord> {
    let current = get_key(sql, &tr.key_id)?.ok_or_else(|| StoreError::NotFound {
        what: format!("key {}", tr.key_id),
    })?;
    let conflict = |found: &KeyRecord| StoreError::Conflict {
        key_id: tr.key_id.clone(),
        expected: tr.expected_state,
        expected_version: tr.expected_version,
        found: found.state,
        found_version: found.version,
    };
    if current.state != tr.expected_state || current.version != tr.expected_version {
        return Err(conflict(&current));
    }
    let next_version = tr
        .expected_version
        .checked_add(1)
        .ok_or_else(|| StoreError::Invalid {
            field: "version",
            reason: "overflow".into(),
        })?;
    let next = KeyRecord {
        state: tr.new_state,
        user_id: tr.user_id.clone().unwrap_or(current.user_id.clone()),
        template_id: tr
            .template_id
            .clone()
            .unwrap_or(current.template_id.clone()),
        needs_reissue: tr.needs_reissue.unwrap_or(current.needs_reissue),
        version: next_version,
        updated_ms: now,
        ..current
    };
    // The WHERE clause is the compare-and-set: a concurrent writer that committed first
    // changed the version, so this updates nothing.
    let n = sql.exec(
        "UPDATE keys SET state = $1, user_id = $2, template_id = $3, needs_reissue = $4, \
         version = $5, updated_ms = $6 WHERE key_id = $7 AND state = $8 AND version = $9",
        &[
            t(next.state.as_str()),
            ot(&next.user_id),
            ot(&next.template_id),
            i(i64::from(next.needs_reissue)),
            i(ver(next.version, "version")?),
            i(now),
            t(&tr.key_id),
            t(tr.expected_state.as_str()),
            i(ver(tr.expected_version, "expected_version")?),
        ],
    )?;
    if n != 1 {
        let found = get_key(sql, &tr.key_id)?.ok_or_else(|| StoreError::NotFound {
            what: format!("key {}", tr.key_id),
        })?;
        return Err(conflict(&found));
    }
    Ok(next)
}

fn add_passkey(sql: &mut dyn Sql, p: &PasskeyRecord) -> Result<()> {
    sql.exec(
        "INSERT INTO passkeys (key_id, idp, credential_id, public_key, idp_method_id, state, \
         created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        &[
            t(&p.key_id),
            t(&p.idp),
            b(&p.credential_id),
            b(&p.public_key),
            ot(&p.idp_method_id),
            t(p.state.as_str()),
            i(p.created_ms),
        ],
    )?;
    Ok(())
}

fn update_passkey(sql: &mut dyn Sql, p: &PasskeyRecord, now: UnixMillis) -> Result<()> {
    let n = sql.exec(
        "UPDATE passkeys SET idp_method_id = $1, state = $2, updated_ms = $3 \
         WHERE key_id = $4 AND idp = $5 AND credential_id = $6",
        &[
            ot(&p.idp_method_id),
            t(p.state.as_str()),
            i(now),
            t(&p.key_id),
            t(&p.idp),
            b(&p.credential_id),
        ],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound {
            what: format!("passkey of key {} at {}", p.key_id, p.idp),
        });
    }
    Ok(())
}

pub(crate) fn passkeys_by_credential(
    sql: &mut dyn Sql,
    credential_id: &[u8],
) -> Result<Vec<PasskeyRecord>> {
    let rows = sql.query(
        &format!(
            "SELECT {PASSKEY_COLS} FROM passkeys WHERE credential_id = $1 \
             ORDER BY key_id, idp"
        ),
        &[b(credential_id)],
    )?;
    rows_to(rows, passkey_from)
}

pub(crate) fn list_passkeys(sql: &mut dyn Sql, key_id: &str) -> Result<Vec<PasskeyRecord>> {
    let rows = sql.query(
        &format!(
            "SELECT {PASSKEY_COLS} FROM passkeys WHERE key_id = $1 \
             ORDER BY created_ms, idp, credential_id"
        ),
        &[t(key_id)],
    )?;
    rows_to(rows, passkey_from)
}

fn put_pending(sql: &mut dyn Sql, p: &PendingRegistration) -> Result<()> {
    sql.exec(
        "INSERT INTO pending_registrations (key_id, idp, user_id, attestation_object, \
         client_data_json, challenge_expires_ms, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (key_id, idp) DO UPDATE SET user_id = excluded.user_id, \
         attestation_object = excluded.attestation_object, \
         client_data_json = excluded.client_data_json, \
         challenge_expires_ms = excluded.challenge_expires_ms, created_ms = excluded.created_ms",
        &[
            t(&p.key_id),
            t(&p.idp),
            t(&p.user_id),
            b(&p.attestation_object),
            b(&p.client_data_json),
            i(p.challenge_expires_ms),
            i(p.created_ms),
        ],
    )?;
    Ok(())
}

pub(crate) fn take_pending(
    sql: &mut dyn Sql,
    key_id: &str,
    idp: &str,
) -> Result<Option<PendingRegistration>> {
    let rows = sql.query(
        &format!(
            "DELETE FROM pending_registrations WHERE key_id = $1 AND idp = $2 \
             RETURNING {PENDING_COLS}"
        ),
        &[t(key_id), t(idp)],
    )?;
    first(rows, pending_from)
}

pub(crate) fn pending_for_key(sql: &mut dyn Sql, key_id: &str) -> Result<Vec<PendingRegistration>> {
    let rows = sql.query(
        &format!("SELECT {PENDING_COLS} FROM pending_registrations WHERE key_id = $1 ORDER BY idp"),
        &[t(key_id)],
    )?;
    rows_to(rows, pending_from)
}

pub(crate) fn pending_expiring_before(
    sql: &mut dyn Sql,
    before: UnixMillis,
) -> Result<Vec<PendingRegistration>> {
    let rows = sql.query(
        &format!(
            "SELECT {PENDING_COLS} FROM pending_registrations WHERE challenge_expires_ms < $1 \
             ORDER BY challenge_expires_ms, key_id, idp"
        ),
        &[i(before)],
    )?;
    rows_to(rows, pending_from)
}

pub(crate) fn pending_expiring_page(
    sql: &mut dyn Sql,
    before: UnixMillis,
    after: Option<(UnixMillis, &str, &str)>,
    limit: u32,
) -> Result<Vec<PendingRegistration>> {
    let limit = page_limit(limit)?;
    let rows = match after {
        None => sql.query(
            &format!(
                "SELECT {PENDING_COLS} FROM pending_registrations WHERE challenge_expires_ms < $1 \
                 ORDER BY challenge_expires_ms, key_id, idp LIMIT $2"
            ),
            &[i(before), i(limit)],
        )?,
        Some((e, k, d)) => sql.query(
            &format!(
                "SELECT {PENDING_COLS} FROM pending_registrations WHERE challenge_expires_ms < $1 \
                 AND (challenge_expires_ms > $2 OR (challenge_expires_ms = $2 AND \
                 (key_id > $3 OR (key_id = $3 AND idp > $4)))) \
                 ORDER BY challenge_expires_ms, key_id, idp LIMIT $5"
            ),
            &[i(before), i(e), t(k), t(d), i(limit)],
        )?,
    };
    rows_to(rows, pending_from)
}

// ---------------------------------------------------------------------------------------
// Bulk jobs
// ---------------------------------------------------------------------------------------

const BULK_JOB_COLS: &str = "job_id, kind, source_hash, actor, total, created_ms";

fn bulk_job_from(row: &Row) -> Result<BulkJob> {
    Ok(BulkJob {
        job_id: row.int(0, "bulk_jobs.job_id")?,
        kind: row.text(1, "bulk_jobs.kind")?,
        source_hash: row.text(2, "bulk_jobs.source_hash")?,
        actor: row.text(3, "bulk_jobs.actor")?,
        total: row.uint(4, "bulk_jobs.total")?,
        created_ms: row.int(5, "bulk_jobs.created_ms")?,
    })
}

const BULK_ITEM_COLS: &str = "job_id, line, input, status, outcome, updated_ms";

fn bulk_item_from(row: &Row) -> Result<BulkItem> {
    let status = row.text(3, "bulk_items.status")?;
    Ok(BulkItem {
        job_id: row.int(0, "bulk_items.job_id")?,
        line: row.uint(1, "bulk_items.line")?,
        input: row.text(2, "bulk_items.input")?,
        status: BulkItemStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
            what: format!("bulk_items.status: unknown {status:?}"),
        })?,
        outcome: row.opt_text(4, "bulk_items.outcome")?,
        updated_ms: row.int(5, "bulk_items.updated_ms")?,
    })
}

pub(crate) fn bulk_create(sql: &mut dyn Sql, job: &NewBulkJob, now: UnixMillis) -> Result<BulkJob> {
    if job.kind.is_empty() || job.source_hash.is_empty() {
        return Err(StoreError::Invalid {
            field: "bulk job",
            reason: "kind and source hash must not be empty".into(),
        });
    }
    let total = i64::try_from(job.items.len()).map_err(|_| StoreError::Invalid {
        field: "items",
        reason: "too many".into(),
    })?;
    let rows = sql.query(
        &format!(
            "INSERT INTO bulk_jobs (kind, source_hash, actor, total, created_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {BULK_JOB_COLS}"
        ),
        &[
            t(&job.kind),
            t(&job.source_hash),
            t(&job.actor),
            i(total),
            i(now),
        ],
    )?;
    let created = first(rows, bulk_job_from)?.ok_or_else(|| StoreError::Corrupt {
        what: "bulk_jobs: insert returned no row".into(),
    })?;
    for (line, input) in &job.items {
        sql.exec(
            "INSERT INTO bulk_items (job_id, line, input, status, outcome, updated_ms) \
             VALUES ($1, $2, $3, $4, NULL, $5)",
            &[
                i(created.job_id),
                i(ver(*line, "items.line")?),
                t(input),
                t(BulkItemStatus::Pending.as_str()),
                i(now),
            ],
        )?;
    }
    Ok(created)
}

pub(crate) fn bulk_job(sql: &mut dyn Sql, job_id: i64) -> Result<Option<BulkJob>> {
    let rows = sql.query(
        &format!("SELECT {BULK_JOB_COLS} FROM bulk_jobs WHERE job_id = $1"),
        &[i(job_id)],
    )?;
    first(rows, bulk_job_from)
}

pub(crate) fn bulk_job_by_source(
    sql: &mut dyn Sql,
    kind: &str,
    hash: &str,
) -> Result<Option<BulkJob>> {
    let rows = sql.query(
        &format!("SELECT {BULK_JOB_COLS} FROM bulk_jobs WHERE kind = $1 AND source_hash = $2"),
        &[t(kind), t(hash)],
    )?;
    first(rows, bulk_job_from)
}

pub(crate) fn bulk_items(
    sql: &mut dyn Sql,
    job_id: i64,
    after_line: Option<u64>,
    limit: u32,
) -> Result<Vec<BulkItem>> {
    let limit = page_limit(limit)?;
    let after = match after_line {
        Some(l) => ver(l, "after_line")?,
        None => -1,
    };
    let rows = sql.query(
        &format!(
            "SELECT {BULK_ITEM_COLS} FROM bulk_items WHERE job_id = $1 AND line > $2 \
             ORDER BY line LIMIT $3"
        ),
        &[i(job_id), i(after), i(limit)],
    )?;
    rows_to(rows, bulk_item_from)
}

pub(crate) fn bulk_set_item(
    sql: &mut dyn Sql,
    job_id: i64,
    line: u64,
    status: BulkItemStatus,
    outcome: Option<&str>,
    now: UnixMillis,
) -> Result<()> {
    let n = sql.exec(
        "UPDATE bulk_items SET status = $1, outcome = $2, updated_ms = $3 \
         WHERE job_id = $4 AND line = $5",
        &[
            t(status.as_str()),
            P::T(outcome.map(str::to_owned)),
            i(now),
            i(job_id),
            i(ver(line, "line")?),
        ],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound {
            what: format!("bulk item {job_id}:{line}"),
        });
    }
    Ok(())
}

pub(crate) fn bulk_counts(sql: &mut dyn Sql, job_id: i64) -> Result<BulkCounts> {
    let rows = sql.query(
        "SELECT status, COUNT(*) FROM bulk_items WHERE job_id = $1 GROUP BY status",
        &[i(job_id)],
    )?;
    let mut c = BulkCounts::default();
    for r in &rows {
        let status = r.text(0, "bulk_items.status")?;
        let n = r.uint(1, "count")?;
        match BulkItemStatus::parse(&status) {
            Some(BulkItemStatus::Pending) => c.pending = n,
            Some(BulkItemStatus::Running) => c.running = n,
            Some(BulkItemStatus::Done) => c.done = n,
            Some(BulkItemStatus::Failed) => c.failed = n,
            None => {
                return Err(StoreError::Corrupt {
                    what: format!("bulk_items.status: unknown {status:?}"),
                })
            }
        }
    }
    Ok(c)
}

fn append_audit(sql: &mut dyn Sql, a: &NewAuditRecord) -> Result<i64> {
    let rows = sql.query(
        "INSERT INTO audit (actor, time_ms, action, key_id, user_id, template_id, outcome, \
         idp_request_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        &[
            t(&a.actor),
            i(a.time_ms),
            t(&a.action),
            ot(&a.key_id),
            ot(&a.user_id),
            ot(&a.template_id),
            t(&a.outcome),
            ot(&a.idp_request_id),
            ot(&a.detail),
        ],
    )?;
    first(rows, |r| r.int(0, "audit.id"))?.ok_or_else(|| StoreError::Corrupt {
        what: "audit: insert returned no id".into(),
    })
}

pub(crate) fn query_audit(sql: &mut dyn Sql, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
    let limit = q.limit.map_or(i64::MAX, i64::from);
    let rows = sql.query(
        &format!(
            "SELECT {AUDIT_COLS} FROM audit \
             WHERE (CAST($1 AS TEXT) IS NULL OR key_id = $1) \
             AND (CAST($2 AS TEXT) IS NULL OR user_id = $2) \
             AND (CAST($3 AS BIGINT) IS NULL OR time_ms >= $3) \
             AND (CAST($4 AS BIGINT) IS NULL OR time_ms < $4) \
             ORDER BY id LIMIT $5"
        ),
        &[
            ot(&q.key_id),
            ot(&q.user_id),
            P::I(q.from_ms),
            P::I(q.until_ms),
            i(limit),
        ],
    )?;
    rows_to(rows, audit_from)
}

fn journal_append(sql: &mut dyn Sql, e: &NewJournalEntry, now: UnixMillis) -> Result<JournalEntry> {
    let rows = sql.query(
        &format!(
            "INSERT INTO journal (key_id, idp, operation, payload, status, attempts, result, \
             created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, 0, NULL, $6, $6) \
             RETURNING {JOURNAL_COLS}"
        ),
        &[
            t(&e.key_id),
            t(&e.idp),
            t(e.operation.as_str()),
            b(&e.payload),
            t(JournalStatus::Pending.as_str()),
            i(now),
        ],
    )?;
    first(rows, journal_from)?.ok_or_else(|| StoreError::Corrupt {
        what: "journal: insert returned no row".into(),
    })
}

pub(crate) fn journal_get(sql: &mut dyn Sql, id: i64) -> Result<Option<JournalEntry>> {
    let rows = sql.query(
        &format!("SELECT {JOURNAL_COLS} FROM journal WHERE id = $1"),
        &[i(id)],
    )?;
    first(rows, journal_from)
}

fn not_pending(sql: &mut dyn Sql, id: i64) -> StoreError {
    match journal_get(sql, id) {
        Ok(Some(e)) if e.status != JournalStatus::Pending => StoreError::JournalClosed {
            id,
            status: e.status,
        },
        Ok(Some(e)) => StoreError::JournalBusy {
            id,
            claimed_by: e.claimed_by.unwrap_or_default(),
            until_ms: e.claimed_until_ms,
        },
        Ok(None) => StoreError::NotFound {
            what: format!("journal entry {id}"),
        },
        Err(e) => e,
    }
}

fn journal_close(
    sql: &mut dyn Sql,
    id: i64,
    status: JournalStatus,
    result: &Option<String>,
    now: UnixMillis,
) -> Result<()> {
    if status == JournalStatus::Pending {
        return Err(StoreError::Invalid {
            field: "close_journal.status",
            reason: "an entry is closed as done or failed".into(),
        });
    }
    let n = sql.exec(
        "UPDATE journal SET status = $1, result = $2, updated_ms = $3 \
         WHERE id = $4 AND status = $5",
        &[
            t(status.as_str()),
            ot(result),
            i(now),
            i(id),
            t(JournalStatus::Pending.as_str()),
        ],
    )?;
    if n == 0 {
        return match not_pending(sql, id) {
            StoreError::JournalClosed { status: found, .. } if found == status => Ok(()),
            e => Err(e),
        };
    }
    Ok(())
}

pub(crate) fn journal_claim(
    sql: &mut dyn Sql,
    id: i64,
    station: &str,
    now: UnixMillis,
    lease_ms: i64,
) -> Result<JournalEntry> {
    if station.is_empty() {
        return Err(StoreError::Invalid {
            field: "station",
            reason: "empty".into(),
        });
    }
    let until = now
        .checked_add(lease_ms)
        .filter(|_| lease_ms >= 0)
        .ok_or_else(|| StoreError::Invalid {
            field: "lease_ms",
            reason: format!("{lease_ms} is negative or overflows"),
        })?;
    // Claimable when pending and the lease expired or is already ours.
    let rows = sql.query(
        &format!(
            "UPDATE journal SET attempts = attempts + 1, claimed_by = $1, claimed_until_ms = $2, \
             updated_ms = $3 WHERE id = $4 AND status = $5 \
             AND (claimed_until_ms <= $3 OR claimed_by = $1) RETURNING {JOURNAL_COLS}"
        ),
        &[
            t(station),
            i(until),
            i(now),
            i(id),
            t(JournalStatus::Pending.as_str()),
        ],
    )?;
    match first(rows, journal_from)? {
        Some(e) => Ok(e),
        None => Err(not_pending(sql, id)),
    }
}

pub(crate) fn journal_unfinished(sql: &mut dyn Sql) -> Result<Vec<JournalEntry>> {
    let rows = sql.query(
        &format!("SELECT {JOURNAL_COLS} FROM journal WHERE status = $1 ORDER BY id"),
        &[t(JournalStatus::Pending.as_str())],
    )?;
    rows_to(rows, journal_from)
}

pub(crate) fn put_transport_pin(
    sql: &mut dyn Sql,
    key_id: &str,
    pin: &TransportPin,
    host: &PinKey,
    now: UnixMillis,
) -> Result<()> {
    let sealed = crypto::seal(host, key_id, pin)?;
    sql.exec(
        "INSERT INTO transport_pins (key_id, sealed, updated_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (key_id) DO UPDATE SET sealed = excluded.sealed, \
         updated_ms = excluded.updated_ms",
        &[t(key_id), P::B(Some(sealed)), i(now)],
    )?;
    Ok(())
}

pub(crate) fn get_transport_pin(
    sql: &mut dyn Sql,
    key_id: &str,
    host: &PinKey,
) -> Result<Option<TransportPin>> {
    let rows = sql.query(
        "SELECT sealed FROM transport_pins WHERE key_id = $1",
        &[t(key_id)],
    )?;
    match rows.first() {
        None => Ok(None),
        Some(r) => crypto::open(host, key_id, &r.bytes(0, "transport_pins.sealed")?).map(Some),
    }
}

pub(crate) fn delete_transport_pin(sql: &mut dyn Sql, key_id: &str) -> Result<bool> {
    Ok(sql.exec("DELETE FROM transport_pins WHERE key_id = $1", &[t(key_id)])? > 0)
}

/// Applies a unit of work inside the caller's transaction.
pub(crate) fn commit(sql: &mut dyn Sql, w: &UnitOfWork, now: UnixMillis) -> Result<Committed> {
    let mut out = Committed::default();
    for u in &w.users {
        upsert_user(sql, u)?;
    }
    for k in &w.create_keys {
        out.created_keys.push(create_key(sql, k, now)?);
    }
    if let Some(tr) = &w.transition {
        out.key = Some(apply_transition(sql, tr, now)?);
    }
    for p in &w.add_passkeys {
        add_passkey(sql, p)?;
    }
    for p in &w.update_passkeys {
        update_passkey(sql, p, now)?;
    }
    for p in &w.put_pending {
        put_pending(sql, p)?;
    }
    for (key_id, idp) in &w.remove_pending {
        take_pending(sql, key_id, idp)?;
    }
    for e in &w.journal {
        out.journal.push(journal_append(sql, e, now)?);
    }
    for (id, status, result) in &w.close_journal {
        journal_close(sql, *id, *status, result, now)?;
    }
    for a in &w.audit {
        out.audit_ids.push(append_audit(sql, a)?);
    }
    Ok(out)
}

/// Implements [`super::Store`] for a backend type with a method
/// `fn tx<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T>` (a write
/// transaction) and a method `read` of the same shape (a read-only one).
macro_rules! impl_store {
    ($ty:ty) => {
        impl $crate::store::Store for $ty {
            fn schema_version(&self) -> $crate::store::Result<u32> {
                self.read(|s| $crate::store::sql::schema_version(s))
            }
            fn upsert_user(&self, user: &$crate::store::UserRecord) -> $crate::store::Result<()> {
                self.tx(|s| $crate::store::sql::upsert_user(s, user))
            }
            fn get_user(
                &self,
                user_id: &str,
            ) -> $crate::store::Result<Option<$crate::store::UserRecord>> {
                self.read(|s| $crate::store::sql::get_user(s, user_id))
            }
            fn create_key(
                &self,
                key: &$crate::store::NewKey,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<$crate::store::KeyRecord> {
                self.tx(|s| $crate::store::sql::create_key(s, key, now))
            }
            fn get_key(
                &self,
                key_id: &str,
            ) -> $crate::store::Result<Option<$crate::store::KeyRecord>> {
                self.read(|s| $crate::store::sql::get_key(s, key_id))
            }
            fn find_keys(
                &self,
                query: &$crate::store::KeyQuery,
            ) -> $crate::store::Result<Vec<$crate::store::KeyRecord>> {
                self.read(|s| $crate::store::sql::find_keys(s, query))
            }
            fn find_keys_page(
                &self,
                query: &$crate::store::KeyQuery,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::KeyRecord>> {
                self.read(|s| $crate::store::sql::find_keys_page(s, query, after, limit))
            }
            fn pending_expiring_page(
                &self,
                t: $crate::store::UnixMillis,
                after: Option<($crate::store::UnixMillis, &str, &str)>,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::PendingRegistration>> {
                self.read(|s| $crate::store::sql::pending_expiring_page(s, t, after, limit))
            }
            fn passkeys_by_credential(
                &self,
                credential_id: &[u8],
            ) -> $crate::store::Result<Vec<$crate::store::PasskeyRecord>> {
                self.read(|s| $crate::store::sql::passkeys_by_credential(s, credential_id))
            }
            fn bulk_create(
                &self,
                job: &$crate::store::NewBulkJob,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<$crate::store::BulkJob> {
                self.tx(|s| $crate::store::sql::bulk_create(s, job, now))
            }
            fn bulk_job(
                &self,
                job_id: i64,
            ) -> $crate::store::Result<Option<$crate::store::BulkJob>> {
                self.read(|s| $crate::store::sql::bulk_job(s, job_id))
            }
            fn bulk_job_by_source(
                &self,
                kind: &str,
                source_hash: &str,
            ) -> $crate::store::Result<Option<$crate::store::BulkJob>> {
                self.read(|s| $crate::store::sql::bulk_job_by_source(s, kind, source_hash))
            }
            fn bulk_items(
                &self,
                job_id: i64,
                after_line: Option<u64>,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::BulkItem>> {
                self.read(|s| $crate::store::sql::bulk_items(s, job_id, after_line, limit))
            }
            fn bulk_set_item(
                &self,
                job_id: i64,
                line: u64,
                status: $crate::store::BulkItemStatus,
                outcome: Option<&str>,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<()> {
                self.tx(|s| {
                    $crate::store::sql::bulk_set_item(s, job_id, line, status, outcome, now)
                })
            }
            fn bulk_counts(&self, job_id: i64) -> $crate::store::Result<$crate::store::BulkCounts> {
                self.read(|s| $crate::store::sql::bulk_counts(s, job_id))
            }
            fn commit(
                &self,
                work: $crate::store::UnitOfWork,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<$crate::store::Committed> {
                self.tx(|s| $crate::store::sql::commit(s, &work, now))
            }
            fn list_passkeys(
                &self,
                key_id: &str,
            ) -> $crate::store::Result<Vec<$crate::store::PasskeyRecord>> {
                self.read(|s| $crate::store::sql::list_passkeys(s, key_id))
            }
            fn take_pending(
                &self,
                key_id: &str,
                idp: &str,
            ) -> $crate::store::Result<Option<$crate::store::PendingRegistration>> {
                self.tx(|s| $crate::store::sql::take_pending(s, key_id, idp))
            }
            fn pending_for_key(
                &self,
                key_id: &str,
            ) -> $crate::store::Result<Vec<$crate::store::PendingRegistration>> {
                self.read(|s| $crate::store::sql::pending_for_key(s, key_id))
            }
            fn pending_expiring_before(
                &self,
                t: $crate::store::UnixMillis,
            ) -> $crate::store::Result<Vec<$crate::store::PendingRegistration>> {
                self.read(|s| $crate::store::sql::pending_expiring_before(s, t))
            }
            fn query_audit(
                &self,
                query: &$crate::store::AuditQuery,
            ) -> $crate::store::Result<Vec<$crate::store::AuditRecord>> {
                self.read(|s| $crate::store::sql::query_audit(s, query))
            }
            fn journal_claim(
                &self,
                id: i64,
                station: &str,
                now: $crate::store::UnixMillis,
                lease_ms: i64,
            ) -> $crate::store::Result<$crate::store::JournalEntry> {
                self.tx(|s| $crate::store::sql::journal_claim(s, id, station, now, lease_ms))
            }
            fn journal_get(
                &self,
                id: i64,
            ) -> $crate::store::Result<Option<$crate::store::JournalEntry>> {
                self.read(|s| $crate::store::sql::journal_get(s, id))
            }
            fn journal_unfinished(
                &self,
            ) -> $crate::store::Result<Vec<$crate::store::JournalEntry>> {
                self.read(|s| $crate::store::sql::journal_unfinished(s))
            }
            fn put_transport_pin(
                &self,
                key_id: &str,
                pin: &$crate::store::TransportPin,
                host_key: &$crate::store::PinKey,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<()> {
                self.tx(|s| $crate::store::sql::put_transport_pin(s, key_id, pin, host_key, now))
            }
            fn get_transport_pin(
                &self,
                key_id: &str,
                host_key: &$crate::store::PinKey,
            ) -> $crate::store::Result<Option<$crate::store::TransportPin>> {
                self.read(|s| $crate::store::sql::get_transport_pin(s, key_id, host_key))
            }
            fn delete_transport_pin(&self, key_id: &str) -> $crate::store::Result<bool> {
                self.tx(|s| $crate::store::sql::delete_transport_pin(s, key_id))
            }
        }
    };
}
pub(crate) use impl_store;
