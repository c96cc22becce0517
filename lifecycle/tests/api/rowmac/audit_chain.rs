//! The audit log as evidence: a hash chain under a MAC, checked by `verify_audit`; two
//! writers never fork it; on PostgreSQL TRUNCATE is refused and the application role
//! can only insert and read audit records.

use std::sync::Arc;

use lifecycle::store::{NewAuditRecord, NewKey, PinKey, Store};

use super::db::Db;

fn host() -> PinKey {
    PinKey::from_bytes([7; 32])
}

fn keyed(db: &Db) -> Arc<dyn Store> {
    let s = db.store();
    s.set_row_key(&host());
    s
}

fn event(n: u64, who: &str) -> NewAuditRecord {
    NewAuditRecord {
        actor: who.into(),
        time_ms: 1_000 + n,
        action: "issue".into(),
        key_id: Some(format!("k{n}")),
        user_id: Some("kim".into()),
        template_id: None,
        outcome: "success".into(),
        idp_request_id: None,
        detail: Some(format!("event {n}")),
    }
}

/// The chain verifies; an edited record is named; a removed one breaks the next.
fn chain_names_the_first_altered_record(db: &Db) {
    let s = keyed(db);
    let ids: Vec<i64> = (0..5)
        .map(|n| s.append_audit(&event(n, "operator:alice")).unwrap())
        .collect();
    let v = s.verify_audit(&host()).unwrap();
    assert!(v.is_ok(), "{v:?}");
    assert_eq!((v.records, v.unchained), (5, 0));
    // Another host key does not verify it.
    let other = s.verify_audit(&PinKey::from_bytes([8; 32])).unwrap();
    assert_eq!(other.first_bad.map(|b| b.id), Some(ids[0]));

    db.edit_audit_record(ids[2]);
    let v = s.verify_audit(&host()).unwrap();
    let bad = v.first_bad.expect("the edit is found");
    assert_eq!(bad.id, ids[2]);
    assert!(bad.reason.contains("hash mismatch"), "{}", bad.reason);
}

fn chain_detects_a_removed_record(db: &Db) {
    let s = keyed(db);
    let ids: Vec<i64> = (0..4)
        .map(|n| s.append_audit(&event(n, "operator:alice")).unwrap())
        .collect();
    db.delete_audit_record(ids[1]);
    let v = s.verify_audit(&host()).unwrap();
    assert_eq!(v.first_bad.map(|b| b.id), Some(ids[2]));
}

/// Records appended without the key (a store no engine installed it in) carry no MAC:
/// the check reports them.
fn records_without_a_mac_are_reported(db: &Db) {
    let s = keyed(db);
    s.append_audit(&event(0, "a")).unwrap();
    let plain = db.store();
    let id = plain.append_audit(&event(1, "b")).unwrap();
    let v = s.verify_audit(&host()).unwrap();
    let bad = v.first_bad.expect("reported");
    assert_eq!(bad.id, id);
    assert!(bad.reason.contains("no MAC"), "{}", bad.reason);
}

/// Two writers (two connections) appending at once: one chain, no fork.
fn concurrent_appends_keep_one_chain(db: &Db) {
    let a = keyed(db);
    let b = keyed(db);
    // A key row so the stores are warm and the schema exists on both handles.
    a.create_key(
        &NewKey {
            key_id: "warm".into(),
            aaguid: [0; 16],
            serial: String::new(),
        },
        1,
    )
    .unwrap();
    let writers: Vec<_> = [(a.clone(), "alice"), (b, "bob")]
        .into_iter()
        .map(|(s, who)| {
            std::thread::spawn(move || {
                for n in 0..40 {
                    s.append_audit(&event(n, who)).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let v = a.verify_audit(&host()).unwrap();
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(v.records, 80);
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(&super::Db::sqlite(stringify!($name))); })*
        }
        mod postgres {
            $(#[test] fn $name() {
                if let Some(db) = super::Db::postgres(stringify!($name)) {
                    super::$name(&db);
                }
            })*
        }
    };
}

both!(
    chain_names_the_first_altered_record,
    chain_detects_a_removed_record,
    records_without_a_mac_are_reported,
    concurrent_appends_keep_one_chain,
);

/// PostgreSQL: TRUNCATE of the audit table is refused (row triggers do not see it).
#[test]
fn postgres_truncate_of_audit_is_refused() {
    let Some(db) = Db::postgres("truncate") else {
        return;
    };
    let s = keyed(&db);
    s.append_audit(&event(0, "a")).unwrap();
    let err = db.try_raw("TRUNCATE audit").unwrap_err();
    assert!(err.contains("append-only"), "{err}");
    assert!(s.verify_audit(&host()).unwrap().records == 1);
}

/// PostgreSQL role split (docs/SECURITY.md): the owner role creates and migrates the
/// tables; the application role gets SELECT/INSERT on `audit` (and DML on the rest).
/// The application works; it cannot UPDATE, DELETE or TRUNCATE audit records.
#[test]
fn postgres_role_split_app_role_cannot_rewrite_audit() {
    let Some(db) = Db::postgres("roles") else {
        return;
    };
    let Db::Postgres { url, schema, .. } = &db else {
        unreachable!()
    };
    // The owner migrates.
    let owner = keyed(&db);
    owner.append_audit(&event(0, "owner")).unwrap();
    let role = format!("{schema}_app");
    let password = "app-role-test-password";
    let mut c = db.pg_client();
    c.batch_execute(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD '{password}'; \
         GRANT USAGE ON SCHEMA {schema} TO {role}; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}; \
         REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.audit FROM {role}; \
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role};"
    ))
    .expect("create the application role (needs CREATEROLE)");
    let app_url = with_user(url, &role, password);
    let result = std::panic::catch_unwind(|| {
        let app = lifecycle::store::PgStore::connect_in_schema(&app_url, schema)
            .expect("the application role opens the migrated schema");
        app.set_row_key(&host());
        // The application works: keys, audit appends, the chain check.
        app.create_key(
            &NewKey {
                key_id: "k-app".into(),
                aaguid: [1; 16],
                serial: "1".into(),
            },
            5,
        )
        .expect("app writes keys");
        app.append_audit(&event(1, "app"))
            .expect("app appends audit");
        assert!(app.verify_audit(&host()).unwrap().is_ok());
        // And cannot rewrite the evidence.
        let mut as_app = ::postgres::Client::connect(&app_url, ::postgres::NoTls).unwrap();
        as_app
            .batch_execute(&format!("SET search_path = {schema}"))
            .unwrap();
        for sql in [
            "UPDATE audit SET detail = 'x'",
            "DELETE FROM audit",
            "TRUNCATE audit",
            "ALTER TABLE audit DISABLE TRIGGER audit_no_change",
            "DROP TRIGGER audit_no_change ON audit",
        ] {
            let err = as_app.batch_execute(sql).unwrap_err();
            let msg = err
                .as_db_error()
                .map(|d| d.message().to_owned())
                .unwrap_or_default();
            assert!(
                msg.contains("permission denied") || msg.contains("must be owner"),
                "{sql}: {msg}"
            );
        }
    });
    let _ = c.batch_execute(&format!(
        "DROP OWNED BY {role}; REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}; \
         REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}; \
         REVOKE USAGE ON SCHEMA {schema} FROM {role}; DROP ROLE {role}"
    ));
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

/// `url` with its user and password replaced.
fn with_user(url: &str, user: &str, password: &str) -> String {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .expect("a postgresql:// URL");
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("postgresql://{user}:{password}@{host}")
}
