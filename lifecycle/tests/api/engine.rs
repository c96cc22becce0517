//! The lifecycle engine end to end: the real Entra emulator on loopback, the software
//! authenticator over its in-process transport and SQLite in a temporary directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use entra_graph::auth::{Credential, Secret};
use entra_graph::emulator::{Emulator, EmulatorConfig, Fault, FaultRule};
use entra_graph::{ApiVersion, GraphClient};
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use lifecycle::engine::{
    CrashPoint, DevicePrompt, Engine, EngineError, IdpEffectError, IssueRequest, LookupError,
    SelfServiceError,
};
use lifecycle::idp::EntraIdp;
use lifecycle::state::TransitionError;
use lifecycle::store::{JournalOp, KeyRecord, PinKey, SqliteStore};
use lifecycle::template::{KeyTransport, TemplateSet};
use lifecycle::{CredentialState, Error};

use crate::common::{graph_client, now_ms, sqlite_engine, sqlite_engine_builder, temp_dir, KIM};
const HOLDER_PIN: &str = "holder-pin-2468";

fn template(timeout_minutes: u32, force: bool) -> TemplateSet {
    let text = format!(
        r#"
[passkey.entra]
idp = {{ connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }}
display_name = "{{displayName}} {{serial}}"
truncate_display_name = true
rp_id = "login.microsoft.com"
challenge_timeout_minutes = {timeout_minutes}

[credential]
name = "test-standard"
passkey_templates = ["entra"]
user_assignment = {{ directory = "contoso-entra" }}

[credential.fido2]
reset_before_issuance = true
always_uv = true
min_pin_length = 8
min_pin_length_rp_ids = ["login.microsoft.com"]

[credential.lifecycle]
force_idp_deletion_on_revoke = {force}
"#
    );
    TemplateSet::from_toml_str(&text).expect("test template parses")
}

fn temp_db(name: &str) -> PathBuf {
    temp_dir(&format!("engine-{name}")).join("keysmith.db")
}

struct World {
    emulator: Emulator,
    db: PathBuf,
    engine: Engine,
    key: Authenticator<SoftTransport>,
    transport: SoftTransport,
    kim_id: String,
}

fn engine_for(emulator: &Emulator, db: &Path, station: &str) -> Engine {
    sqlite_engine(emulator, db, station, 7)
}

fn world(name: &str) -> World {
    let emulator = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let db = temp_db(name);
    let engine = engine_for(&emulator, &db, "station-a");
    let soft = SoftAuthenticator::new(SoftConfig::default()).expect("softkey");
    let transport = SoftTransport::new(soft);
    let key = Authenticator::new(transport.clone());
    let kim_id = "6e8a5a4e-5a0d-4e4c-9c8e-2f7c3d8a1b11".to_owned();
    World {
        emulator,
        db,
        engine,
        key,
        transport,
        kim_id,
    }
}

/// Loads `t` and issues a key of it to [`KIM`] at `now`, at a station that can reset
/// the key in place: where most of these tests start.
fn load_and_issue(w: &mut World, t: &TemplateSet, now: u64) -> KeyRecord {
    w.engine
        .add_template(t.clone())
        .expect("the template loads");
    w.engine
        .issue(&request(true), &t.credential.name, &mut w.key, now)
        .expect("issue")
}

fn request(can_reset: bool) -> IssueRequest {
    IssueRequest {
        actor: "operator:alice".into(),
        user: KIM.into(),
        serial: "SN0001".into(),
        transport: KeyTransport::Usb,
        can_reset_in_place: can_reset,
    }
}

#[test]
fn full_lifecycle_against_the_emulator() {
    let mut w = world("full");
    let t = template(60, true);
    let now = now_ms();

    // Central issuance: passkey made, registration pending, nothing at the IdP yet.
    let key = load_and_issue(&mut w, &t, now);
    assert_eq!(key.state, CredentialState::Issued);
    assert_eq!(key.user_id.as_deref(), Some(w.kim_id.as_str()));
    let store = w.engine.store().clone();
    assert_eq!(store.pending_for_key(&key.key_id).unwrap().len(), 1);
    assert!(store
        .get_transport_pin(&key.key_id, &PinKey::from_bytes([7; 32]))
        .unwrap()
        .is_some());
    assert!(w.emulator.methods(&w.kim_id).is_empty());

    // The holder's PIN is not accepted before activation (the transport PIN is set).
    assert!(w
        .engine
        .sign_in(&key.key_id, HOLDER_PIN, &mut w.key)
        .is_err());

    // Activation: holder PIN set, registration sent.
    let key = w
        .engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1_000)
        .expect("activate");
    assert_eq!(key.state, CredentialState::Active);
    assert_eq!(w.emulator.methods(&w.kim_id).len(), 1);
    assert!(store.pending_for_key(&key.key_id).unwrap().is_empty());
    assert!(store
        .get_transport_pin(&key.key_id, &PinKey::from_bytes([7; 32]))
        .unwrap()
        .is_none());
    let pk = &w.engine.passkeys(&key.key_id).unwrap()[0];
    assert_eq!(
        pk.idp_method_id.as_deref(),
        Some(w.emulator.methods(&w.kim_id)[0].id.as_str())
    );

    // Sign-in verifies against the registered key.
    let signed = w
        .engine
        .sign_in(&key.key_id, HOLDER_PIN, &mut w.key)
        .expect("sign in");
    assert_eq!(signed.len(), 1);
    assert_eq!(signed[0].credential_id, pk.credential_id);
    // A wrong PIN does not sign in.
    assert!(w
        .engine
        .sign_in(&key.key_id, "wrong-pin-000", &mut w.key)
        .is_err());

    // Inactivate: removed at the IdP.
    let key = w
        .engine
        .inactivate("operator:alice", &key.key_id, now + 2_000)
        .expect("inactivate");
    assert_eq!(key.state, CredentialState::Inactive);
    assert!(w.emulator.methods(&w.kim_id).is_empty());

    // Reissue (the key is reset in place right after a power cycle), then activate again.
    w.transport.with(|a| a.power_cycle());
    let key = w
        .engine
        .reissue(&request(true), &key.key_id, &mut w.key, now + 3_000)
        .expect("reissue");
    assert_eq!(key.state, CredentialState::Issued);
    let key = w
        .engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 4_000)
        .expect("activate after reissue");
    assert_eq!(key.state, CredentialState::Active);
    assert_eq!(w.emulator.methods(&w.kim_id).len(), 1);
    w.engine
        .sign_in(&key.key_id, HOLDER_PIN, &mut w.key)
        .expect("sign in after reissue");

    // Forced revoke whose IdP deletion fails: cancelled, nothing changed.
    w.emulator.inject(FaultRule::new(
        "DELETE",
        "fido2Methods",
        Fault::Status {
            status: 403,
            retry_after: None,
        },
        1,
    ));
    let err = w
        .engine
        .revoke("operator:alice", &key.key_id, None, now + 5_000)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Engine(EngineError::IdpEffect(
                IdpEffectError::IdpDeletionCancelled { .. }
            ))
        ),
        "{err:?}"
    );
    let after = w.engine.key(&key.key_id).unwrap();
    assert_eq!(after.state, CredentialState::Active);
    assert_eq!(after.version, key.version);
    assert_eq!(w.emulator.methods(&w.kim_id).len(), 1);
    let audit = w.engine.audit_for(&key.key_id).unwrap();
    let last = &audit.last().unwrap().event;
    assert_eq!(
        (last.action.as_str(), last.outcome.as_str()),
        ("revoke", "failure")
    );

    // The same revoke succeeds once the IdP works.
    let key = w
        .engine
        .revoke("operator:alice", &key.key_id, None, now + 6_000)
        .expect("revoke");
    assert_eq!(key.state, CredentialState::Revoked);
    assert!(w.emulator.methods(&w.kim_id).is_empty());

    // Retire, unregister; illegal transitions are refused with a typed error.
    let key = w
        .engine
        .retire("operator:alice", &key.key_id, now + 7_000)
        .expect("retire");
    assert!(matches!(
        w.engine
            .inactivate("operator:alice", &key.key_id, now + 7_500),
        Err(Error::Transition(TransitionError::NotAllowed { .. }))
    ));
    let key = w
        .engine
        .unregister("operator:alice", &key.key_id, now + 8_000)
        .expect("unregister");
    assert_eq!(key.state, CredentialState::Unregistered);
    assert_eq!(key.user_id, None);

    // Every action is in the audit log with its actor.
    let audit = w.engine.audit_for(&key.key_id).unwrap();
    for action in [
        "issue",
        "register",
        "activate",
        "inactivate",
        "idp-delete",
        "revoke",
        "retire",
        "unregister",
    ] {
        assert!(
            audit
                .iter()
                .any(|a| a.event.action == action && a.event.outcome == "success"),
            "no successful {action} in the audit log"
        );
    }
    assert!(audit
        .iter()
        .any(|a| a.event.action == "register" && a.event.idp_request_id.is_some()));
    let _ = std::fs::remove_dir_all(w.db.parent().unwrap());
}

#[test]
fn expired_challenge_refuses_activation_and_marks_needs_reissue() {
    let mut w = world("expired");
    let t = template(5, true);
    let now = now_ms();
    let key = load_and_issue(&mut w, &t, now);
    w.emulator
        .advance_clock(std::time::Duration::from_secs(6 * 60));
    let later = now + 6 * 60 * 1000;
    let err = w
        .engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, later)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transition(TransitionError::ChallengeExpired { .. })
        ),
        "{err:?}"
    );
    let after = w.engine.key(&key.key_id).unwrap();
    assert_eq!(after.state, CredentialState::Issued);
    assert!(after.needs_reissue);
    assert!(w.emulator.methods(&w.kim_id).is_empty());
    // A second attempt says the key needs reissue.
    let err = w
        .engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, later + 1)
        .unwrap_err();
    assert!(
        matches!(err, Error::Transition(TransitionError::NeedsReissue)),
        "{err:?}"
    );
    // The refusal is audited.
    let audit = w.engine.audit_for(&key.key_id).unwrap();
    assert!(audit
        .iter()
        .any(|a| a.event.action == "activate" && a.event.outcome == "refused"));
    // Reissue clears the mark.
    w.transport.with(|a| a.power_cycle());
    let key = w
        .engine
        .reissue(&request(true), &key.key_id, &mut w.key, later + 2)
        .expect("reissue");
    assert_eq!(key.state, CredentialState::Issued);
    assert!(!key.needs_reissue);
}

fn crash_then_replay(point: CrashPoint) {
    let mut w = world(&format!("crash-{point:?}"));
    let t = template(60, true);
    let now = now_ms();
    let key = load_and_issue(&mut w, &t, now);
    w.engine.crash_at(Some(point));
    let err = w
        .engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1)
        .unwrap_err();
    assert!(
        matches!(err, Error::Engine(EngineError::SimulatedCrash { .. })),
        "{err:?}"
    );
    let expected_at_idp = usize::from(point == CrashPoint::AfterIdpCall);
    assert_eq!(w.emulator.methods(&w.kim_id).len(), expected_at_idp);
    let unfinished: Vec<JournalOp> = w
        .engine
        .store()
        .journal_unfinished()
        .unwrap()
        .iter()
        .map(|e| e.operation)
        .collect();
    // The state change was journalled before the registration.
    assert_eq!(unfinished, vec![JournalOp::State, JournalOp::Register]);

    // "Restart": a new engine over the same database file.
    drop(std::mem::replace(
        &mut w.engine,
        engine_for(&w.emulator, &w.db, "station-a"),
    ));
    w.engine.add_template(t.clone()).unwrap();
    let replayed = w.engine.replay_journal(now + 2).expect("replay");
    assert_eq!(replayed.len(), 2, "{replayed:?}");
    let expected = match point {
        CrashPoint::AfterJournal => "registered",
        _ => "found at IdP",
    };
    assert_eq!(replayed[0].operation, JournalOp::Register);
    assert_eq!(replayed[0].outcome.to_string(), expected);
    // The registration's replay finished the activation, which supersedes the entry.
    assert_eq!(replayed[1].operation, JournalOp::State);
    assert_eq!(
        replayed[1].outcome.to_string(),
        "superseded: the key is now active"
    );
    assert_eq!(
        w.emulator.methods(&w.kim_id).len(),
        1,
        "exactly one passkey"
    );
    assert!(w.engine.store().journal_unfinished().unwrap().is_empty());
    let key = w.engine.key(&key.key_id).unwrap();
    assert_eq!(key.state, CredentialState::Active);
    // A second replay has nothing to do.
    assert!(w.engine.replay_journal(now + 3).unwrap().is_empty());
    w.engine
        .sign_in(&key.key_id, HOLDER_PIN, &mut w.key)
        .expect("sign in after replay");
}

#[test]
fn crash_between_journal_and_idp_call_registers_once_on_replay() {
    crash_then_replay(CrashPoint::AfterJournal);
}

#[test]
fn crash_between_idp_call_and_done_is_reconciled_on_replay() {
    crash_then_replay(CrashPoint::AfterIdpCall);
}

#[test]
fn unforced_revoke_stands_and_deletion_is_retried_by_replay() {
    let mut w = world("unforced");
    let t = template(60, false);
    let now = now_ms();
    let key = load_and_issue(&mut w, &t, now);
    let key = w
        .engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1)
        .expect("activate");
    w.emulator.inject(FaultRule::new(
        "DELETE",
        "fido2Methods",
        Fault::Status {
            status: 403,
            retry_after: None,
        },
        1,
    ));
    let key = w
        .engine
        .revoke("operator:alice", &key.key_id, None, now + 2)
        .expect("revocation stands");
    assert_eq!(key.state, CredentialState::Revoked);
    assert_eq!(w.emulator.methods(&w.kim_id).len(), 1);
    assert_eq!(w.engine.store().journal_unfinished().unwrap().len(), 1);
    let replayed = w.engine.replay_journal(now + 3).unwrap();
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].operation, JournalOp::Delete);
    assert!(w.emulator.methods(&w.kim_id).is_empty());
    assert!(w.engine.store().journal_unfinished().unwrap().is_empty());
}

fn revoke_crash_then_replay(point: CrashPoint) {
    let mut w = world(&format!("revoke-crash-{point:?}"));
    let t = template(60, true);
    let now = now_ms();
    let key = load_and_issue(&mut w, &t, now);
    let key = w
        .engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1)
        .expect("activate");
    w.engine.crash_at(Some(point));
    let err = w
        .engine
        .revoke("operator:alice", &key.key_id, None, now + 2)
        .unwrap_err();
    assert!(
        matches!(err, Error::Engine(EngineError::SimulatedCrash { .. })),
        "{err:?}"
    );
    let expected_at_idp = usize::from(point == CrashPoint::AfterJournal);
    assert_eq!(w.emulator.methods(&w.kim_id).len(), expected_at_idp);
    assert_eq!(
        w.engine.key(&key.key_id).unwrap().state,
        CredentialState::Active
    );

    drop(std::mem::replace(
        &mut w.engine,
        engine_for(&w.emulator, &w.db, "station-a"),
    ));
    let replayed = w.engine.replay_journal(now + 3).expect("replay");
    assert_eq!(replayed.len(), 2, "{replayed:?}");
    assert_eq!(replayed[0].operation, JournalOp::Delete);
    assert_eq!(replayed[1].operation, JournalOp::State);
    assert_eq!(
        replayed[1].outcome.to_string(),
        "superseded: the key is now revoked"
    );
    let expected = match point {
        CrashPoint::AfterJournal => "done",
        _ => "already gone",
    };
    assert_eq!(replayed[0].outcome.to_string(), expected);
    assert!(w.emulator.methods(&w.kim_id).is_empty());
    // No lost revocation: the key ends revoked.
    assert_eq!(
        w.engine.key(&key.key_id).unwrap().state,
        CredentialState::Revoked
    );
    assert!(w.engine.store().journal_unfinished().unwrap().is_empty());
}

#[test]
fn revoke_crash_before_idp_call_is_finished_by_replay() {
    revoke_crash_then_replay(CrashPoint::AfterJournal);
}

#[test]
fn revoke_crash_after_idp_call_is_finished_by_replay() {
    revoke_crash_then_replay(CrashPoint::AfterIdpCall);
}

#[path = "engine/attestation.rs"]
mod attestation;
#[path = "engine/creation_extensions.rs"]
mod creation_extensions;
#[path = "engine/in_doubt.rs"]
mod in_doubt;
#[path = "engine/issuance_and_races.rs"]
mod issuance_and_races;
#[path = "engine/long_exclude.rs"]
mod long_exclude;
#[path = "engine/replay_across_nodes.rs"]
mod replay_across_nodes;
#[path = "engine/replay_after_lease.rs"]
mod replay_after_lease;
#[path = "engine/revoke_cms.rs"]
mod revoke_cms;
#[path = "engine/station_reset.rs"]
mod station_reset;
#[path = "engine/two_nodes.rs"]
mod two_nodes;

/// A journal replay in the same process (a server's periodic replay, a bulk run's
/// start) while a flow sits between its registration's journal entry and its IdP call:
/// the station's own claim would let the replay take the entry over, and both would
/// register. The replay leaves the live flow's entries alone.
#[test]
fn a_replay_beside_a_running_flow_leaves_its_entries_alone() {
    use lifecycle::engine::ReplayOutcome;
    use std::sync::{Mutex, OnceLock};

    let mut w = world("replay-beside-flow");
    let engine_cell: Arc<OnceLock<Arc<Engine>>> = Arc::new(OnceLock::new());
    let seen: Arc<Mutex<Vec<(JournalOp, ReplayOutcome)>>> = Arc::default();
    let (cell, out) = (engine_cell.clone(), seen.clone());
    let engine = Arc::new(
        sqlite_engine_builder(&w.emulator, &w.db, "station-a", 7)
            .probe(Arc::new(move |here| {
                if here != CrashPoint::AfterJournal || !out.lock().unwrap().is_empty() {
                    return;
                }
                let Some(e) = cell.get().cloned() else { return };
                let replayed = std::thread::spawn(move || e.replay_journal(now_ms()))
                    .join()
                    .unwrap()
                    .expect("replay");
                let mut out = out.lock().unwrap();
                out.extend(replayed.into_iter().map(|r| (r.operation, r.outcome)));
                if out.is_empty() {
                    out.push((JournalOp::State, ReplayOutcome::Busy));
                }
            }))
            .build()
            .expect("engine"),
    );
    engine_cell.set(engine.clone()).ok().unwrap();
    let t = template(60, true);
    engine.add_template(t.clone()).unwrap();
    let now = now_ms();
    let key = engine
        .issue(&request(true), &t.credential.name, &mut w.key, now)
        .expect("issue");
    let key = engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1)
        .expect("the flow finishes its own registration");
    assert_eq!(key.state, CredentialState::Active);
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .all(|(_, outcome)| *outcome == ReplayOutcome::Busy),
        "the replay took over a live flow's entry: {seen:?}"
    );
    assert!(
        seen.iter().any(|(op, _)| *op == JournalOp::Register),
        "the replay saw the registration's entry: {seen:?}"
    );
    assert_eq!(w.emulator.methods(&w.kim_id).len(), 1, "one passkey");
    assert!(engine.store().journal_unfinished().unwrap().is_empty());
}
