//! The schema and its migrations, per dialect.

use super::*;

/// Number of migrations; the schema version after all of them.
pub(crate) const MIGRATION_COUNT: u32 = 15;

pub(super) const V1: &[&str] = &[
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

pub(super) const V2: &[&str] = &[
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
pub(super) const V3: &[&str] = &[
    "ALTER TABLE journal ADD COLUMN claimed_by TEXT",
    "ALTER TABLE journal ADD COLUMN claimed_until_ms BIGINT NOT NULL DEFAULT 0",
];

/// Resumable bulk jobs.
pub(super) const V4: &[&str] = &[
    "CREATE TABLE bulk_jobs (job_id {ID}, kind TEXT NOT NULL, source_hash TEXT NOT NULL, \
     actor TEXT NOT NULL, total BIGINT NOT NULL, created_ms BIGINT NOT NULL, \
     UNIQUE (kind, source_hash))",
    "CREATE TABLE bulk_items (job_id BIGINT NOT NULL REFERENCES bulk_jobs(job_id), \
     line BIGINT NOT NULL, input TEXT NOT NULL, status TEXT NOT NULL, outcome TEXT, \
     updated_ms BIGINT NOT NULL, PRIMARY KEY (job_id, line))",
    "CREATE INDEX bulk_items_status ON bulk_items (job_id, status)",
    "CREATE INDEX passkeys_credential ON passkeys (credential_id)",
];

/// The passkey and pending-registration tables name the passkey template they hold
/// (`idp` was a misleading name: it is a template name, not an IdP connection). The
/// journal's `idp` column does hold the IdP connection and keeps its name. SQLite (3.25+)
/// and PostgreSQL both rename in place, keys and constraints included.
pub(super) const V5: &[&str] = &[
    "ALTER TABLE passkeys RENAME COLUMN idp TO passkey_template",
    "ALTER TABLE pending_registrations RENAME COLUMN idp TO passkey_template",
];

/// Authenticated rows and the audit chain: the rows replayed to the IdP carry a MAC
/// (pending registrations also the key's version when written); audit records carry their
/// chain hash and its MAC. Rows written before this version have none: they are refused
/// by a store with the row key installed until the key is re-issued, and audit records
/// from before it are a counted, unchained prefix of the log.
pub(super) const V_ROW_MACS: &[&str] = &[
    "ALTER TABLE pending_registrations ADD COLUMN mac {BLOB}",
    "ALTER TABLE pending_registrations ADD COLUMN key_version BIGINT",
    "ALTER TABLE passkeys ADD COLUMN mac {BLOB}",
    "ALTER TABLE journal ADD COLUMN mac {BLOB}",
    "ALTER TABLE audit ADD COLUMN hash {BLOB}",
    "ALTER TABLE audit ADD COLUMN mac {BLOB}",
];

/// PostgreSQL row triggers do not fire on `TRUNCATE`: a statement trigger refuses it.
pub(super) const V_ROW_MACS_PG: &[&str] =
    &["CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit \
     FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"];

/// Bulk jobs are no longer unique by source: a finished job's CSV submitted again makes a
/// new job, and only an unfinished one is resumed by its source (`finished_ms` NULL; at
/// most one per kind and source, a partial unique index). Items carry a claim: which
/// runner holds the row (`claimed_by`), until when (`claimed_until_ms`) and a fencing
/// token (`claim_token`, raised by every claim) that every commit of the row checks.
///
/// PostgreSQL drops the UNIQUE constraint in place. SQLite cannot drop a constraint, so
/// both tables are rebuilt (the items reference the jobs): the old tables are renamed
/// away (SQLite 3.26+ rewrites the items' reference to follow the rename), new ones
/// created and filled, and the old ones dropped, child first, so no foreign key is left
/// dangling at any point and `foreign_keys = ON` needs no switching off.
pub(super) const V_BULK_CLAIMS_SQLITE: &[&str] = &[
    "ALTER TABLE bulk_items RENAME TO bulk_items_v5",
    "ALTER TABLE bulk_jobs RENAME TO bulk_jobs_v5",
    "CREATE TABLE bulk_jobs (job_id {ID}, kind TEXT NOT NULL, source_hash TEXT NOT NULL, \
     actor TEXT NOT NULL, total BIGINT NOT NULL, created_ms BIGINT NOT NULL, finished_ms BIGINT)",
    "INSERT INTO bulk_jobs (job_id, kind, source_hash, actor, total, created_ms) \
     SELECT job_id, kind, source_hash, actor, total, created_ms FROM bulk_jobs_v5",
    "CREATE TABLE bulk_items (job_id BIGINT NOT NULL REFERENCES bulk_jobs(job_id), \
     line BIGINT NOT NULL, input TEXT NOT NULL, status TEXT NOT NULL, outcome TEXT, \
     updated_ms BIGINT NOT NULL, claimed_by TEXT, claim_token BIGINT NOT NULL DEFAULT 0, \
     claimed_until_ms BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (job_id, line))",
    "INSERT INTO bulk_items (job_id, line, input, status, outcome, updated_ms) \
     SELECT job_id, line, input, status, outcome, updated_ms FROM bulk_items_v5",
    "DROP TABLE bulk_items_v5",
    "DROP TABLE bulk_jobs_v5",
    "CREATE INDEX bulk_items_status ON bulk_items (job_id, status)",
];

/// The PostgreSQL side of [`V_BULK_CLAIMS_SQLITE`]: the constraint is dropped in place
/// (by the name PostgreSQL gave it) and the columns added.
pub(super) const V_BULK_CLAIMS_PG: &[&str] = &[
    "ALTER TABLE bulk_jobs DROP CONSTRAINT bulk_jobs_kind_source_hash_key",
    "ALTER TABLE bulk_jobs ADD COLUMN finished_ms BIGINT",
    "ALTER TABLE bulk_items ADD COLUMN claimed_by TEXT",
    "ALTER TABLE bulk_items ADD COLUMN claim_token BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE bulk_items ADD COLUMN claimed_until_ms BIGINT NOT NULL DEFAULT 0",
];

/// After [`V_BULK_CLAIMS_SQLITE`] / [`V_BULK_CLAIMS_PG`], on both: a job whose every row
/// was run (none pending or running) is finished; at most one unfinished job per source.
pub(super) const V_BULK_CLAIMS: &[&str] = &[
    "UPDATE bulk_jobs SET finished_ms = created_ms WHERE NOT EXISTS (SELECT 1 FROM bulk_items i \
     WHERE i.job_id = bulk_jobs.job_id AND i.status IN ('pending', 'running'))",
    "CREATE UNIQUE INDEX bulk_jobs_open_source ON bulk_jobs (kind, source_hash) \
     WHERE finished_ms IS NULL",
    "CREATE INDEX bulk_jobs_source ON bulk_jobs (kind, source_hash, job_id)",
];

/// Self-service sign-ins: the nonces handed out (their SHA-256, until they expire) and
/// the ids (`uti`/`jti`) of holder ID tokens already used (until the token expires).
pub(super) const V_SELF_SERVICE: &[&str] = &[
    "CREATE TABLE self_service_nonces (nonce_hash TEXT PRIMARY KEY, \
     created_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL)",
    "CREATE TABLE used_tokens (issuer TEXT NOT NULL, token_id TEXT NOT NULL, \
     expires_ms BIGINT NOT NULL, used_ms BIGINT NOT NULL, PRIMARY KEY (issuer, token_id))",
    "CREATE INDEX used_tokens_expiry ON used_tokens (expires_ms)",
    "CREATE INDEX self_service_nonces_expiry ON self_service_nonces (expires_ms)",
];

/// The split deployment: device sessions, their messages, work queued for stations.
pub(super) const V_SPLIT: &[&str] = &[
    "CREATE TABLE split_sessions (session_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, \
     created_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL, state TEXT NOT NULL, \
     session_pub {BLOB} NOT NULL, server_nonce {BLOB} NOT NULL, recv_seq BIGINT NOT NULL, \
     recv_digest {BLOB} NOT NULL, sent_seq BIGINT NOT NULL, reply {BLOB} NOT NULL, \
     context TEXT NOT NULL, version BIGINT NOT NULL, mac {BLOB}, updated_ms BIGINT NOT NULL)",
    "CREATE INDEX split_sessions_agent ON split_sessions (agent_id, created_ms)",
    "CREATE TABLE split_messages (session_id TEXT NOT NULL, direction TEXT NOT NULL, \
     seq BIGINT NOT NULL, bytes {BLOB} NOT NULL, at_ms BIGINT NOT NULL, \
     PRIMARY KEY (session_id, direction, seq))",
    "CREATE TABLE station_work (work_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, \
     request TEXT NOT NULL, actor TEXT NOT NULL, created_ms BIGINT NOT NULL, \
     state TEXT NOT NULL, session_id TEXT, outcome TEXT, mac {BLOB}, updated_ms BIGINT NOT NULL)",
    "CREATE INDEX station_work_queue ON station_work (agent_id, state, created_ms)",
];

/// Agents of a split deployment (`keysmith serve`) and the single-use enrolment codes an
/// admin issues for a station: only the code's SHA-256 is stored (the server derives the
/// code from the row's id under its own key, never stored here).
pub(super) const V_AGENTS: &[&str] = &[
    "CREATE TABLE agents (agent_id TEXT PRIMARY KEY, class TEXT NOT NULL, station TEXT, \
     public_key {BLOB} NOT NULL, status TEXT NOT NULL, host_name TEXT, host_os TEXT, \
     created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL)",
    "CREATE TABLE enrolment_codes (code_id TEXT PRIMARY KEY, code_hash TEXT NOT NULL, \
     station TEXT NOT NULL, class TEXT NOT NULL, created_by TEXT NOT NULL, \
     created_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL, used_ms BIGINT, used_by TEXT)",
    "CREATE INDEX enrolment_codes_station ON enrolment_codes (station, used_ms, expires_ms)",
];

/// Agent and enrolment-code rows carry a MAC under the host key, as the other rows a
/// flow trusts (rows written before are refused until adopted, `adopt_unauthenticated_rows`).
pub(super) const V_AGENT_MACS: &[&str] = &[
    "ALTER TABLE agents ADD COLUMN mac {BLOB}",
    "ALTER TABLE enrolment_codes ADD COLUMN mac {BLOB}",
];

/// Listing keys of one state a page at a time (`find_keys_page(ByState)`: `state = $1 AND
/// key_id > $2 ORDER BY key_id LIMIT $3`) read every key of the state through `keys_state`
/// and sorted them for every page (SQLite: `USE TEMP B-TREE FOR ORDER BY`): a page of 100
/// inactive keys took 32 ms at 100k keys and 235 ms at 1M (store-bench, issue 18). With the
/// key id in the index each page is one range read in order (0.2 ms at 1M). The new index
/// serves every query `keys_state` served, so that one goes.
pub(super) const V_KEY_STATE_PAGES: &[&str] = &[
    "CREATE INDEX keys_state_key ON keys (state, key_id)",
    "DROP INDEX keys_state",
];

/// What keysmith learns about its passkeys after issuance (issue 19 item 5, issue 13
/// item 12; `store::watch`): why a key needs reissue, and per passkey the user name it
/// carries (the holder's UPN when it was made) and the IdP's last use of it. Passkeys
/// already recorded get the UPN their key's user has in the users table (the UPN at that
/// user's latest issuance).
pub(super) const V_PASSKEY_WATCH: &[&str] = &[
    "ALTER TABLE keys ADD COLUMN reissue_reason TEXT",
    "CREATE TABLE passkey_watch (key_id TEXT NOT NULL REFERENCES keys(key_id), \
     passkey_template TEXT NOT NULL, credential_id {BLOB} NOT NULL, user_name TEXT, \
     last_used_ms BIGINT, PRIMARY KEY (key_id, passkey_template, credential_id))",
    "INSERT INTO passkey_watch (key_id, passkey_template, credential_id, user_name) \
     SELECT p.key_id, p.passkey_template, p.credential_id, u.upn FROM passkeys p \
     JOIN keys k ON k.key_id = p.key_id LEFT JOIN users u ON u.user_id = k.user_id",
];

/// The right key for the right row (issue 12 item 5): what the key proved about itself at
/// issuance (`identity`: its CTAP 2.2 device identifier, or the serial of an enterprise
/// attestation certificate, as hex) and where the recorded serial or identity comes from
/// (`serial_source`: `enc_identifier`, `attestation_certificate`, `usb_serial_string`,
/// `claimed`). Keys recorded before this version have neither (NULL: not recorded).
pub(super) const V_KEY_IDENTITY: &[&str] = &[
    "ALTER TABLE keys ADD COLUMN identity TEXT",
    "ALTER TABLE keys ADD COLUMN serial_source TEXT",
    "CREATE INDEX keys_identity ON keys (identity) WHERE identity IS NOT NULL",
];

/// Schema 15: the passkey's display name kept with its pending registration (bound into
/// the row's MAC when present, so rows written before keep theirs).
pub(super) const V_PENDING_DISPLAY_NAME: &[&str] =
    &["ALTER TABLE pending_registrations ADD COLUMN display_name TEXT"];

pub(super) const V2_SQLITE: &[&str] = &[
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit \
     BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit \
     BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
];

pub(super) const V2_PG: &[&str] = &[
    "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS \
     $f$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $f$",
    "CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit \
     FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
];

pub(super) fn migration_sql(version: u32, dialect: Dialect) -> Vec<String> {
    let (id, blob) = match dialect {
        Dialect::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"),
        Dialect::Postgres => ("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BYTEA"),
    };
    let mut stmts: Vec<&str> = match version {
        1 => V1.to_vec(),
        2 => V2.to_vec(),
        3 => V3.to_vec(),
        4 => V4.to_vec(),
        5 => V5.to_vec(),
        6 => V_ROW_MACS.to_vec(),
        7 => match dialect {
            Dialect::Sqlite => V_BULK_CLAIMS_SQLITE,
            Dialect::Postgres => V_BULK_CLAIMS_PG,
        }
        .iter()
        .chain(V_BULK_CLAIMS)
        .copied()
        .collect(),
        8 => V_SELF_SERVICE.to_vec(),
        9 => V_SPLIT.to_vec(),
        10 => V_AGENTS.to_vec(),
        11 => V_AGENT_MACS.to_vec(),
        12 => V_KEY_STATE_PAGES.to_vec(),
        13 => V_PASSKEY_WATCH.to_vec(),
        14 => V_KEY_IDENTITY.to_vec(),
        15 => V_PENDING_DISPLAY_NAME.to_vec(),
        _ => Vec::new(),
    };
    if version == 6 && dialect == Dialect::Postgres {
        stmts.extend_from_slice(V_ROW_MACS_PG);
    }
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
    // An application role without CREATE (see docs: the owner role migrates) must still
    // open a migrated database: create the version table only when it is missing.
    let exists = match dialect {
        Dialect::Sqlite => sql.query(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
            &[],
        )?,
        Dialect::Postgres => sql.query(
            "SELECT 1 FROM pg_catalog.pg_tables WHERE tablename = 'schema_version' \
             AND schemaname = current_schema()",
            &[],
        )?,
    };
    if exists.is_empty() {
        sql.exec(
            "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
            &[],
        )?;
    }
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
            &[Param::int(i64::from(version))],
        )?;
    }
    schema_version(sql)
}
