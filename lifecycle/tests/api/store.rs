//! The shared store test suite, run against SQLite (temp files) and PostgreSQL (a fresh
//! schema per test in the database named by `KEYSMITH_PG_URL`, which
//! `scripts/pg-start.sh` writes to `target/pg/env`).
//!
//! Without PostgreSQL the PostgreSQL tests print SKIPPED and pass, unless `CI` is set,
//! where they fail.

#[path = "store/backends.rs"]
pub(crate) mod backends;
#[path = "store/processes.rs"]
mod processes;
#[path = "store/sqlite_file.rs"]
mod sqlite_file;
#[path = "store/suite.rs"]
mod suite;
#[path = "store/tls.rs"]
mod tls;

use backends::Backend;

/// Not a test of its own: the child process of the multi-process race tests.
#[test]
#[ignore = "worker process started by the *_processes_race tests"]
fn race_worker() {
    let target = std::env::var(processes::ENV_TARGET).expect("run by a race test");
    let who = std::env::var(processes::ENV_WHO).expect("run by a race test");
    let store = backends::open_target(&target);
    processes::worker(store.as_ref(), &who);
}

#[test]
fn sqlite_processes_race() {
    let b = backends::Sqlite;
    processes::race(&b.open("procs"), &b.target("procs"));
}

#[test]
fn postgres_processes_race() {
    if let Some(b) = backends::Postgres::from_env() {
        processes::race(&b.open("procs"), &b.target("procs"));
    }
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::suite::$name(&super::backends::Sqlite); })*
        }
        mod postgres {
            $(#[test] fn $name() {
                if let Some(b) = super::backends::Postgres::from_env() {
                    super::suite::$name(&b);
                }
            })*
        }
    };
}

both!(
    users_round_trip,
    keys_round_trip_and_find,
    transition_compare_and_set,
    racing_operators_never_double_issue,
    unit_of_work_is_atomic,
    passkeys_add_list_update,
    pending_registrations,
    audit_append_only_and_queries,
    journal_lifecycle_and_replay,
    journal_closes_are_fenced,
    transport_pin_sealed,
    migrations_idempotent_and_from_older_schema,
    passkey_template_column_renamed_from_schema_4,
    newer_schema_is_refused,
    keys_paged,
    pending_expiring_paged,
    bulk_jobs_round_trip,
    bulk_finished_job_source_makes_a_new_job,
    bulk_item_claims_are_leased_and_fenced,
    bulk_jobs_migrated_from_schema_5,
    self_service_nonces_and_used_tokens,
    split_sessions_compare_and_set,
    split_sessions_watched_across_connections,
    split_rows_are_authenticated,
    split_log_and_station_work,
    agents_and_enrolment_codes,
    passkey_watch_names_last_use_and_reasons,
    passkey_watch_migrated_from_schema_10,
);

#[test]
fn records_serialize_with_state_names() {
    let key = lifecycle::store::KeyRecord {
        key_id: "k1".into(),
        aaguid: [1; 16],
        serial: "123".into(),
        state: lifecycle::CredentialState::Issued,
        user_id: Some("u1".into()),
        template_id: None,
        needs_reissue: false,
        version: 2,
        created_ms: 1,
        updated_ms: 2,
        identity: Some("00ff".into()),
        serial_source: Some("enc_identifier".into()),
    };
    let json = serde_json::to_value(&key).unwrap();
    assert_eq!(json["state"], "issued");
    let back: lifecycle::store::KeyRecord = serde_json::from_value(json).unwrap();
    assert_eq!(back, key);
    let bad = serde_json::json!({"ByState": "bogus"});
    assert!(serde_json::from_value::<lifecycle::store::KeyQuery>(bad).is_err());
}

#[test]
fn connection_failures_are_typed_errors() {
    use lifecycle::store::{PgStore, SqliteStore, StoreError};
    let missing_dir = std::env::temp_dir().join("keysmith-no-such-dir/x/store.db");
    assert!(matches!(
        SqliteStore::open(missing_dir),
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        PgStore::connect("postgresql://u@127.0.0.1:1/db?connect_timeout=2"),
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        PgStore::connect("not a url ==="),
        Err(StoreError::Backend(_))
    ));
    for bad in ["", "Public", "1abc", "a;drop table keys", &"x".repeat(64)] {
        assert!(
            matches!(
                PgStore::connect_in_schema("postgresql://u@127.0.0.1:1/db", bad),
                Err(StoreError::Invalid {
                    field: "schema",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn postgres_default_schema_connect() {
    use lifecycle::store::{PgStore, Store, SCHEMA_VERSION};
    if backends::Postgres::from_env().is_none() {
        return;
    }
    // The plain connect path (public schema of the test database), twice: idempotent.
    let url = backends::Postgres::url_from_env().expect("url");
    let a = PgStore::connect(&url).unwrap();
    assert_eq!(a.schema_version().unwrap(), SCHEMA_VERSION);
    let b = PgStore::connect(&url).unwrap();
    assert_eq!(b.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(
        !format!("{a:?}").contains("keysmith:"),
        "Debug must not print credentials"
    );
}
