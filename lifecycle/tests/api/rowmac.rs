//! Issue 10 items 6 and 7: the rows sent to the IdP are authenticated (a row altered in
//! the database between issue and activation, or a journal payload altered before
//! replay, is refused, audited, and never reaches the IdP), and the audit log is a hash
//! chain under a MAC (verified, serialised between writers, append-only on PostgreSQL
//! even against TRUNCATE, with the owner/application role split).
//! Each test runs on SQLite and, when `KEYSMITH_PG_URL` names a server, PostgreSQL.

#[path = "rowmac/agents.rs"]
mod agents;
#[path = "rowmac/audit_chain.rs"]
mod audit_chain;
#[path = "rowmac/db.rs"]
mod db;

use std::sync::Arc;

use keysmith_testkit::EmulatorWorld;
use lifecycle::engine::{CrashPoint, Engine, EngineError, ReplayOutcome};
use lifecycle::idp::EntraIdp;
use lifecycle::store::{AuditQuery, JournalOp, PinKey, StoreError};
use lifecycle::Error;

use crate::common::{graph_client, now_ms, CONNECTION};
use crate::support::{request, softkey, template, HOLDER_PIN, KIM, KIM_ID};
use agents::agent_rows_edited;
use db::Db;

/// An engine over `db`'s store, PIN key of 7s (the row key derives from it).
fn engine(world: &EmulatorWorld, db: &Db) -> Engine {
    let engine = Engine::builder(db.store(), PinKey::from_bytes([7; 32]), "station-a")
        .idp(Arc::new(EntraIdp::new(
            CONNECTION,
            graph_client(&world.emulator),
        )))
        .build()
        .expect("engine");
    engine.add_template(template()).expect("template");
    engine
}

/// Registration calls the emulator saw (POSTs of FIDO2 methods).
fn registrations(world: &EmulatorWorld) -> usize {
    world
        .emulator
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("fido2Methods"))
        .count()
}

/// Issues a key to Kim, alters its pending registration with `tamper` (raw SQL), and
/// checks that activation is refused with the typed integrity error, that the IdP saw
/// no registration, and that the refusal is audited naming the row.
fn altered_pending_refuses_activation(db: &Db, tamper: &str) {
    let world = EmulatorWorld::start(&format!("rowmac-{}", db.name()));
    let e = engine(&world, db);
    let now = now_ms();
    let mut key = softkey();
    let k = e
        .issue(
            &request(KIM, "SN-1"),
            &template().credential.name,
            &mut key,
            now,
        )
        .expect("issue");
    db.raw(tamper);
    let err = e
        .activate("self:kim", &k.key_id, HOLDER_PIN, &mut key, now + 1)
        .unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::Integrity { ref row, .. })
            if row.contains("pending registration")),
        "{err:?}"
    );
    assert_eq!(err.reason(), "integrity_failure");
    assert_eq!(registrations(&world), 0, "the IdP saw no registration");
    assert!(world.emulator.methods(KIM_ID).is_empty());
    let audit = e.audit_for(&k.key_id).expect("audit");
    let last = &audit.last().expect("a refusal record").event;
    assert_eq!(
        (last.action.as_str(), last.outcome.as_str()),
        ("activate", "refused")
    );
    assert!(
        last.detail
            .as_deref()
            .is_some_and(|d| d.contains("pending registration of key")),
        "{last:?}"
    );
    // The refusal itself is chained evidence.
    assert!(e
        .store()
        .verify_audit(&PinKey::from_bytes([7; 32]))
        .unwrap()
        .is_ok());
}

fn pending_user_edited(db: &Db) {
    altered_pending_refuses_activation(
        db,
        "UPDATE pending_registrations SET user_id = 'attacker-chosen-user'",
    );
}

fn pending_attestation_edited(db: &Db) {
    altered_pending_refuses_activation(
        db,
        "UPDATE pending_registrations SET attestation_object = client_data_json",
    );
}

/// The display name kept with the registration since schema 15 (registered as is at
/// activation, with no read of the user) is under the row's MAC: changed, or removed so
/// that activation would render one afresh, the row is refused.
fn pending_display_name_edited(db: &Db) {
    altered_pending_refuses_activation(
        db,
        "UPDATE pending_registrations SET display_name = 'Attacker-chosen name'",
    );
}

fn pending_display_name_removed(db: &Db) {
    altered_pending_refuses_activation(db, "UPDATE pending_registrations SET display_name = NULL");
}

/// A registration journalled but not sent (crash right after the journal entry); its
/// payload is then pointed at another user. Replay refuses it: no call to the IdP, the
/// entry closed as failed, a refusal audited naming the entry.
fn journal_payload_edited(db: &Db) {
    let world = EmulatorWorld::start(&format!("rowmac-journal-{}", db.name()));
    let e = engine(&world, db);
    let now = now_ms();
    let mut key = softkey();
    let k = e
        .issue(
            &request(KIM, "SN-2"),
            &template().credential.name,
            &mut key,
            now,
        )
        .expect("issue");
    e.crash_at(Some(CrashPoint::AfterJournal));
    let err = e
        .activate("self:kim", &k.key_id, HOLDER_PIN, &mut key, now + 1)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Engine(EngineError::SimulatedCrash { .. })
    ));
    e.crash_at(None);
    db.raw(&db.replace_in_register_payload(KIM_ID, "attacker-chosen-user"));
    let before = registrations(&world);
    let replayed = e.replay_journal(now + 2).expect("replay");
    let register = replayed
        .iter()
        .find(|r| r.operation == JournalOp::Register)
        .expect("the register entry was replayed");
    assert!(
        matches!(&register.outcome, ReplayOutcome::Failed(why) if why.starts_with("refused")),
        "{register:?}"
    );
    assert_eq!(registrations(&world), before, "no registration call");
    assert!(world.emulator.methods(KIM_ID).is_empty());
    assert!(world.emulator.methods("attacker-chosen-user").is_empty());
    let entry = e.store().journal_get(register.id).unwrap().unwrap();
    assert_eq!(entry.status, lifecycle::store::JournalStatus::Failed);
    let refusals: Vec<_> = e
        .store()
        .query_audit(&AuditQuery {
            key_id: Some(k.key_id.clone()),
            ..AuditQuery::default()
        })
        .unwrap()
        .into_iter()
        .filter(|a| a.event.outcome == "refused" && a.event.action == "replay-register")
        .collect();
    assert_eq!(refusals.len(), 1, "one refusal audited");
    let detail = refusals[0].event.detail.as_deref().unwrap_or("");
    assert!(
        detail.contains(&format!("journal entry {}", register.id)),
        "{detail}"
    );
    // A second replay does not retry it.
    let again = e.replay_journal(now + 3).expect("replay");
    assert!(again.iter().all(|r| r.id != register.id));
}

/// An untouched issue and activation still works with authenticated rows (and the
/// audit chain of the whole flow verifies).
fn untouched_rows_activate(db: &Db) {
    let world = EmulatorWorld::start(&format!("rowmac-ok-{}", db.name()));
    let e = engine(&world, db);
    let now = now_ms();
    let mut key = softkey();
    let k = e
        .issue(
            &request(KIM, "SN-3"),
            &template().credential.name,
            &mut key,
            now,
        )
        .expect("issue");
    let k = e
        .activate("self:kim", &k.key_id, HOLDER_PIN, &mut key, now + 1)
        .expect("activate");
    assert_eq!(k.state, lifecycle::CredentialState::Active);
    assert_eq!(world.emulator.methods(KIM_ID).len(), 1);
    e.revoke("operator:alice", &k.key_id, None, now + 2)
        .expect("revoke");
    let v = e
        .store()
        .verify_audit(&PinKey::from_bytes([7; 32]))
        .unwrap();
    assert!(v.is_ok(), "{v:?}");
    assert!(v.records >= 4);
}

/// A failure whose audit record cannot be written fails as such: the caller gets
/// `AuditFailed`, not the plain failure (before, the append error was dropped).
fn failed_audit_append_fails_the_operation(db: &Db) {
    let world = EmulatorWorld::start(&format!("rowmac-auditfail-{}", db.name()));
    let e = engine(&world, db);
    let now = now_ms();
    let mut key = softkey();
    let k = e
        .issue(
            &request(KIM, "SN-4"),
            &template().credential.name,
            &mut key,
            now,
        )
        .expect("issue");
    db.refuse_failure_audits();
    // Activating with the wrong holder flow: activation of an Issued key whose pending
    // row is altered is refused; its refusal cannot be recorded.
    db.raw("UPDATE pending_registrations SET user_id = 'attacker-chosen-user'");
    let err = e
        .activate("self:kim", &k.key_id, HOLDER_PIN, &mut key, now + 1)
        .unwrap_err();
    assert!(
        matches!(err, Error::Engine(EngineError::AuditFailed { .. })),
        "{err:?}"
    );
    assert_eq!(err.reason(), "audit_failed");
    assert!(err.to_string().contains("integrity check failed"), "{err}");
    assert_eq!(registrations(&world), 0);
}

/// Rows from before schema 6 (no MAC) are refused by an engine until the operator
/// adopts them once (`adopt_unauthenticated_rows`, audited); a second adoption is
/// refused, so a MAC stripped later cannot be laundered.
fn legacy_rows_refused_until_adopted(db: &Db) {
    let world = EmulatorWorld::start(&format!("rowmac-legacy-{}", db.name()));
    let e = engine(&world, db);
    let now = now_ms();
    let mut key = softkey();
    let k = e
        .issue(
            &request(KIM, "SN-5"),
            &template().credential.name,
            &mut key,
            now,
        )
        .expect("issue");
    e.activate("self:kim", &k.key_id, HOLDER_PIN, &mut key, now + 1)
        .expect("activate");
    // What an upgraded database looks like: the rows carry no MAC.
    db.raw("UPDATE passkeys SET mac = NULL");
    let err = e
        .revoke("operator:alice", &k.key_id, None, now + 2)
        .unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::Integrity { ref reason, .. })
            if reason.contains("no MAC")),
        "{err:?}"
    );
    assert_eq!(world.emulator.methods(KIM_ID).len(), 1, "nothing deleted");
    let adopted = e
        .adopt_unauthenticated_rows("operator:admin", now + 3)
        .expect("adopt");
    assert_eq!((adopted.passkeys, adopted.pending), (1, 0));
    let again = e.adopt_unauthenticated_rows("operator:admin", now + 4);
    assert!(
        matches!(again, Err(Error::Store(StoreError::Duplicate { .. }))),
        "{again:?}"
    );
    e.revoke("operator:alice", &k.key_id, None, now + 5)
        .expect("revoke after adoption");
    assert!(world.emulator.methods(KIM_ID).is_empty());
    // Stripped again after the adoption: refused for good.
    db.raw("UPDATE passkeys SET mac = NULL");
    assert!(matches!(
        e.passkeys(&k.key_id),
        Err(Error::Store(StoreError::Integrity { .. }))
    ));
    assert!(e.verify_audit().unwrap().is_ok());
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(&super::db::Db::sqlite(stringify!($name))); })*
        }
        mod postgres {
            $(#[test] fn $name() {
                if let Some(db) = super::db::Db::postgres(stringify!($name)) {
                    super::$name(&db);
                }
            })*
        }
    };
}

both!(
    pending_user_edited,
    pending_attestation_edited,
    pending_display_name_edited,
    pending_display_name_removed,
    journal_payload_edited,
    untouched_rows_activate,
    failed_audit_append_fails_the_operation,
    legacy_rows_refused_until_adopted,
    agent_rows_edited,
);
