//! Lost revocations and shared journal entries, end to end against the emulator as a
//! real HTTP server with its fault injection, on SQLite and PostgreSQL:
//! - a registration whose outcome is in doubt (503, 500, a dropped connection, or
//!   committed with the answer lost) is settled by the revocation: no passkey at the
//!   IdP afterwards, not even after a journal replay;
//! - a deletion whose answer was lost is settled by listing before a forced revocation
//!   is cancelled or committed;
//! - a delete 404 counts as "already gone" only when the user resolves;
//! - two stations on one journal entry: the lease outlasts a long call, and a station
//!   that lost its claim cannot close the entry.

use std::time::Duration;

use entra_graph::auth::Credential;
use entra_graph::RetryPolicy;
use lifecycle::idp::{Idp, IdpError};
use lifecycle::store::{JournalEntry, PgStore, Store, Transition, UnitOfWork};

use super::*;

/// A store backend the tests run on.
#[derive(Clone)]
enum Backend {
    Sqlite(PathBuf),
    Pg { url: String, schema: String },
}

impl Backend {
    /// SQLite, and PostgreSQL when `KEYSMITH_PG_URL` names a server (else SKIPPED).
    fn all(name: &str) -> Vec<Backend> {
        let mut out = vec![Backend::Sqlite(temp_db(&format!("doubt-{name}")))];
        if let Some(url) = keysmith_testkit::pg_url(&format!("the PostgreSQL run of {name}")) {
            let schema = format!(
                "ks_doubt_{}_{}_{}",
                std::process::id(),
                now_ms() % 1_000_000,
                name.replace('-', "_")
            );
            out.push(Backend::Pg { url, schema });
        }
        out
    }

    fn open(&self) -> Arc<dyn Store> {
        match self {
            Backend::Sqlite(db) => Arc::new(SqliteStore::open(db).expect("sqlite")),
            Backend::Pg { url, schema } => {
                Arc::new(PgStore::connect_in_schema(url, schema).expect("pg"))
            }
        }
    }
}

/// A Graph client for the emulator that retries fast (the fault tests exhaust retries).
fn fast_client(emulator: &Emulator) -> GraphClient {
    let mut config = emulator.graph_config(ApiVersion::Beta);
    config.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(1),
        ..RetryPolicy::default()
    };
    GraphClient::new(
        config,
        Credential::ClientSecret {
            client_id: emulator.client_id().to_owned(),
            secret: Secret::new(emulator.client_secret().unwrap_or_default()),
        },
    )
    .expect("graph client")
}

fn engine_on(emulator: &Emulator, store: Arc<dyn Store>, station: &str) -> Engine {
    let e = Engine::builder(store, PinKey::from_bytes([7; 32]), station)
        .idp(Arc::new(EntraIdp::new(
            "contoso-entra",
            fast_client(emulator),
        )))
        .build()
        .expect("engine");
    e.add_template(template(60, false)).expect("template");
    e.add_template(forced_template()).expect("template");
    e
}

/// [`template`] forced, under another name.
fn forced_template() -> TemplateSet {
    let mut t = template(60, true);
    t.credential.name = "test-forced".into();
    t
}

fn world_on(name: &str, backend: &Backend) -> World {
    let mut w = world(name);
    w.engine = engine_on(&w.emulator, backend.open(), "station-a");
    w
}

fn unfinished(engine: &Engine, op: JournalOp) -> Vec<JournalEntry> {
    engine
        .store()
        .journal_unfinished()
        .unwrap()
        .into_iter()
        .filter(|e| e.operation == op)
        .collect()
}

fn audit_of(engine: &Engine, key_id: &str) -> Vec<(String, String, String)> {
    engine
        .audit_for(key_id)
        .unwrap()
        .into_iter()
        .map(|a| {
            (
                a.event.action,
                a.event.outcome,
                a.event.detail.unwrap_or_default(),
            )
        })
        .collect()
}

/// Issues under `template`, then activates while the IdP answers the registration with
/// `faults`: the activation fails with the registration in doubt.
fn activation_in_doubt(w: &mut World, template: &str, faults: &[FaultRule]) -> String {
    let now = now_ms();
    let key = w
        .engine
        .issue(&request(true), template, &mut w.key, now)
        .expect("issue");
    for f in faults {
        w.emulator.inject(f.clone());
    }
    let err = w
        .engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1)
        .unwrap_err();
    assert!(matches!(err, Error::Idp(_)), "{err:?}");
    assert_eq!(
        w.emulator.pending_faults(),
        0,
        "every injected fault was used"
    );
    assert_eq!(
        unfinished(&w.engine, JournalOp::Register).len(),
        1,
        "the registration stays in doubt"
    );
    key.key_id
}

fn post(fault: Fault, times: u32) -> FaultRule {
    FaultRule::new("POST", "fido2Methods", fault, times)
}

/// The POST commits and its answer is lost; the client's own reconciling listing fails
/// too (503, three times), so the activation reports the outcome unknown with a passkey
/// live.
fn committed_answer_lost() -> [FaultRule; 2] {
    [
        post(Fault::CommitThenDrop, 1),
        FaultRule::new(
            "GET",
            "fido2Methods",
            Fault::Status {
                status: 503,
                retry_after: None,
            },
            3,
        ),
    ]
}

/// The revocation settles the registration in doubt; a replay long after registers
/// nothing; the audit says what happened.
fn revoke_settles(w: &mut World, key_id: &str, was_made: bool) {
    let now = now_ms() + 10;
    let key = w
        .engine
        .revoke("operator:alice", key_id, None, now)
        .expect("revoke");
    assert_eq!(key.state, CredentialState::Revoked);
    assert!(
        w.emulator.methods(&w.kim_id).is_empty(),
        "no passkey at the IdP"
    );
    let replayed = w.engine.replay_journal(now + 16 * 60_000).unwrap();
    assert!(
        replayed.iter().all(|r| r.operation != JournalOp::Register),
        "{replayed:?}"
    );
    assert!(
        w.emulator.methods(&w.kim_id).is_empty(),
        "none after replay"
    );
    assert!(w.engine.store().journal_unfinished().unwrap().is_empty());
    assert_eq!(
        w.engine.key(key_id).unwrap().state,
        CredentialState::Revoked
    );
    let audit = audit_of(&w.engine, key_id);
    let settled = audit
        .iter()
        .find(|(a, o, _)| a == "idp-settle" && o == "success")
        .unwrap_or_else(|| panic!("no settle audit: {audit:?}"));
    let expected = if was_made {
        "was made at the IdP"
    } else {
        "is not at the IdP"
    };
    assert!(settled.2.contains(expected), "{settled:?}");
    assert!(audit
        .iter()
        .any(|(a, o, _)| a == "revoke" && o == "success"));
}

fn in_doubt_case(name: &str, template: &str, faults: &[FaultRule], was_made: bool) {
    for backend in Backend::all(name) {
        let mut w = world_on(name, &backend);
        let key_id = activation_in_doubt(&mut w, template, faults);
        revoke_settles(&mut w, &key_id, was_made);
    }
}

#[test]
fn revoke_settles_a_registration_answered_503() {
    let s503 = Fault::Status {
        status: 503,
        retry_after: None,
    };
    in_doubt_case("503", "test-standard", &[post(s503, 3)], false);
}

#[test]
fn forced_revoke_settles_a_registration_answered_500() {
    let s500 = Fault::Status {
        status: 500,
        retry_after: None,
    };
    in_doubt_case("500", "test-forced", &[post(s500, 3)], false);
}

#[test]
fn revoke_settles_a_registration_whose_connection_dropped() {
    in_doubt_case("drop", "test-standard", &[post(Fault::Drop, 3)], false);
}

#[test]
fn revoke_deletes_a_registration_committed_with_its_answer_lost() {
    let faults = committed_answer_lost();
    for backend in Backend::all("committed") {
        let mut w = world_on("committed", &backend);
        let key_id = activation_in_doubt(&mut w, "test-standard", &faults);
        assert_eq!(w.emulator.methods(&w.kim_id).len(), 1, "made at the IdP");
        revoke_settles(&mut w, &key_id, true);
    }
}

#[test]
fn replay_refuses_a_registration_journalled_for_an_older_key_version() {
    for backend in Backend::all("stale") {
        let mut w = world_on("stale", &backend);
        let s503 = Fault::Status {
            status: 503,
            retry_after: None,
        };
        let key_id = activation_in_doubt(&mut w, "test-standard", &[post(s503, 3)]);
        // The key changes behind the entry's back (as a revocation before settling
        // existed did): same state, newer version.
        let key = w.engine.key(&key_id).unwrap();
        let mut t = Transition::new(&key, key.state);
        t.needs_reissue = Some(false);
        w.engine
            .store()
            .commit(
                UnitOfWork {
                    transition: Some(t),
                    ..UnitOfWork::default()
                },
                now_ms(),
            )
            .unwrap();
        let r = w.engine.replay_journal(now_ms() + 1).unwrap();
        let reg = r
            .iter()
            .find(|r| r.operation == JournalOp::Register)
            .expect("the register entry was replayed");
        assert!(reg.outcome.to_string().starts_with("superseded"), "{reg:?}");
        assert!(w.emulator.methods(&w.kim_id).is_empty());
        assert!(unfinished(&w.engine, JournalOp::Register).is_empty());
        let audit = audit_of(&w.engine, &key_id);
        assert!(
            audit
                .iter()
                .any(|(a, o, d)| a == "register" && o == "refused" && d.contains("version")),
            "{audit:?}"
        );
    }
}

#[test]
fn reissue_settles_a_registration_committed_with_its_answer_lost() {
    let faults = committed_answer_lost();
    for backend in Backend::all("reissue") {
        let mut w = world_on("reissue", &backend);
        let key_id = activation_in_doubt(&mut w, "test-standard", &faults);
        assert_eq!(w.emulator.methods(&w.kim_id).len(), 1, "made at the IdP");
        w.transport.with(|a| a.power_cycle());
        let now = now_ms() + 10;
        let key = w
            .engine
            .reissue(&request(true), &key_id, &mut w.key, now)
            .expect("reissue");
        assert_eq!(key.state, CredentialState::Issued);
        assert!(
            w.emulator.methods(&w.kim_id).is_empty(),
            "the old one is gone"
        );
        // The old entry is closed: a replay neither registers it nor activates the key.
        let r = w.engine.replay_journal(now + 16 * 60_000).unwrap();
        assert!(
            r.iter().all(|r| r.operation != JournalOp::Register),
            "{r:?}"
        );
        assert_eq!(
            w.engine.key(&key_id).unwrap().state,
            CredentialState::Issued
        );
        assert!(w.emulator.methods(&w.kim_id).is_empty());
        // The reissued key activates with its new passkey only.
        let key = w
            .engine
            .activate(
                "self:kim",
                &key_id,
                HOLDER_PIN,
                &mut w.key,
                now + 16 * 60_000 + 1,
            )
            .expect("activate");
        assert_eq!(key.state, CredentialState::Active);
        assert_eq!(w.emulator.methods(&w.kim_id).len(), 1);
        let audit = audit_of(&w.engine, &key_id);
        assert!(
            audit.iter().any(|(a, o, d)| a == "idp-settle"
                && o == "success"
                && d.contains("was made at the IdP")),
            "{audit:?}"
        );
    }
}

#[test]
fn another_stations_registration_in_doubt_does_not_undo_a_revoke() {
    let faults = committed_answer_lost();
    for backend in Backend::all("held") {
        let mut w = world_on("held", &backend);
        // Station A's registration is in doubt and A still holds its lease (A crashed,
        // or is still retrying).
        let key_id = activation_in_doubt(&mut w, "test-standard", &faults);
        assert_eq!(w.emulator.methods(&w.kim_id).len(), 1);
        let b = engine_on(&w.emulator, backend.open(), "station-b");
        let now = now_ms() + 10;
        // Forced: cancelled, nothing changed.
        let err = b
            .revoke("operator:bob", &key_id, Some(true), now)
            .unwrap_err();
        assert_eq!(err.reason(), "idp_deletion_failed", "{err:?}");
        assert_eq!(b.key(&key_id).unwrap().state, CredentialState::Issued);
        // Unforced: the revocation stands; the deletion waits for A's registration.
        let key = b
            .revoke("operator:bob", &key_id, Some(false), now + 1)
            .expect("revoke");
        assert_eq!(key.state, CredentialState::Revoked);
        let r = b.replay_journal(now + 2).unwrap();
        assert!(
            r.iter().any(|r| r.operation == JournalOp::Delete
                && r.outcome.to_string().starts_with("waiting")),
            "{r:?}"
        );
        // Once A's lease is over, its registration is refused as superseded and the
        // passkey it made is deleted.
        let r = b.replay_journal(now + 16 * 60_000).unwrap();
        assert!(
            r.iter().any(|r| r.operation == JournalOp::Register
                && r.outcome.to_string().starts_with("superseded")),
            "{r:?}"
        );
        assert!(w.emulator.methods(&w.kim_id).is_empty(), "{r:?}");
        assert!(b.store().journal_unfinished().unwrap().is_empty());
        assert_eq!(b.key(&key_id).unwrap().state, CredentialState::Revoked);
        let audit = audit_of(&b, &key_id);
        assert!(
            audit
                .iter()
                .any(|(a, o, d)| a == "idp-settle" && o == "deferred" && d.contains("station-a")),
            "{audit:?}"
        );
    }
}

fn activated(w: &mut World, template: &str) -> String {
    let now = now_ms();
    let key = w
        .engine
        .issue(&request(true), template, &mut w.key, now)
        .expect("issue");
    w.engine
        .activate("self:kim", &key.key_id, HOLDER_PIN, &mut w.key, now + 1)
        .expect("activate");
    assert_eq!(w.emulator.methods(&w.kim_id).len(), 1);
    key.key_id
}

#[test]
fn forced_revoke_whose_delete_answer_was_lost_is_committed() {
    for backend in Backend::all("delete-lost") {
        let mut w = world_on("delete-lost", &backend);
        let key_id = activated(&mut w, "test-forced");
        // The DELETE commits; every answer is lost.
        w.emulator.inject(FaultRule::new(
            "DELETE",
            "fido2Methods",
            Fault::CommitThenDrop,
            3,
        ));
        let key = w
            .engine
            .revoke("operator:alice", &key_id, None, now_ms() + 5)
            .expect("the revocation is committed, not cancelled");
        assert_eq!(key.state, CredentialState::Revoked);
        assert!(w.emulator.methods(&w.kim_id).is_empty());
        assert!(w.engine.store().journal_unfinished().unwrap().is_empty());
        let audit = audit_of(&w.engine, &key_id);
        assert!(
            audit.iter().any(|(a, o, d)| a == "idp-delete"
                && o == "success"
                && d.contains("answer was lost")),
            "{audit:?}"
        );
    }
}

#[test]
fn forced_revoke_whose_delete_cannot_be_settled_is_left_to_replay() {
    for backend in Backend::all("delete-doubt") {
        let mut w = world_on("delete-doubt", &backend);
        let key_id = activated(&mut w, "test-forced");
        w.emulator.inject(FaultRule::new(
            "DELETE",
            "fido2Methods",
            Fault::CommitThenDrop,
            3,
        ));
        w.emulator.inject(FaultRule::new(
            "GET",
            "fido2Methods",
            Fault::Status {
                status: 503,
                retry_after: None,
            },
            3,
        ));
        let now = now_ms() + 5;
        let err = w
            .engine
            .revoke("operator:alice", &key_id, None, now)
            .unwrap_err();
        assert_eq!(err.reason(), "idp_deletion_in_doubt", "{err:?}");
        assert_eq!(unfinished(&w.engine, JournalOp::Delete).len(), 1);
        // Replay settles it: the passkey is gone and the revocation is finished.
        w.engine.replay_journal(now + 1).unwrap();
        assert!(w.emulator.methods(&w.kim_id).is_empty());
        assert_eq!(
            w.engine.key(&key_id).unwrap().state,
            CredentialState::Revoked
        );
    }
}

#[test]
fn a_delete_404_counts_as_gone_only_when_the_user_resolves() {
    let emulator = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let idp = EntraIdp::new("contoso-entra", fast_client(&emulator));
    let kim = "6e8a5a4e-5a0d-4e4c-9c8e-2f7c3d8a1b11";
    // An unknown (or renamed, or out-of-scope) user: Graph's user 404, not "gone".
    let err = idp
        .delete("no-such-user@contoso.example", "bm90LWEtbWV0aG9k")
        .unwrap_err();
    assert!(
        matches!(
            err,
            IdpError::Call {
                status: Some(404),
                ..
            }
        ),
        "{err:?}"
    );
    // A resolved user without that method: gone.
    let d = idp.delete(kim, "bm90LWEtbWV0aG9k").expect("already gone");
    assert!(d.already_gone);
    // A real method is deleted.
    let ids = emulator.seed_methods(kim, 1);
    assert!(!idp.delete(kim, &ids[0]).unwrap().already_gone);
    assert!(idp.list(kim).unwrap().is_empty());
}

/// Waits until station `station` holds the claim on the key's register entry.
fn wait_for_claim(engine: &Engine, station: &str) {
    for _ in 0..500 {
        let claimed = unfinished(engine, JournalOp::Register)
            .iter()
            .any(|e| e.claimed_by.as_deref() == Some(station));
        if claimed {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{station} never claimed the registration");
}

#[test]
fn a_second_station_does_not_take_over_a_registration_still_running() {
    for backend in Backend::all("lease-long") {
        let mut w = world_on("lease-long", &backend);
        let b = engine_on(&w.emulator, backend.open(), "station-b");
        let now = now_ms();
        let key = w
            .engine
            .issue(&request(true), "test-standard", &mut w.key, now)
            .expect("issue");
        // The registration takes a while (slow IdP, retries) ...
        w.emulator
            .inject(post(Fault::Delay(Duration::from_millis(1_500)), 1));
        let World {
            engine, key: dev, ..
        } = &mut w;
        std::thread::scope(|s| {
            let a = s.spawn(|| engine.activate("self:kim", &key.key_id, HOLDER_PIN, dev, now + 1));
            wait_for_claim(engine, "station-a");
            // ... longer than the old 60 s lease, by station B's clock.
            let r = b.replay_journal(now + 61_000).unwrap();
            let reg = r
                .iter()
                .find(|r| r.operation == JournalOp::Register)
                .unwrap();
            assert_eq!(reg.outcome.to_string(), "busy", "{r:?}");
            let k = a.join().unwrap().expect("A's activation finishes");
            assert_eq!(k.state, CredentialState::Active);
        });
        assert_eq!(w.emulator.methods(&w.kim_id).len(), 1);
    }
}

#[test]
fn a_station_that_lost_its_claim_cannot_close_the_entry() {
    for backend in Backend::all("fenced") {
        let mut w = world_on("fenced", &backend);
        let b = engine_on(&w.emulator, backend.open(), "station-b");
        let now = now_ms();
        let key = w
            .engine
            .issue(&request(true), "test-standard", &mut w.key, now)
            .expect("issue");
        w.emulator
            .inject(post(Fault::Delay(Duration::from_millis(1_000)), 1));
        let World {
            engine,
            key: dev,
            emulator,
            ..
        } = &mut w;
        let emulator = &*emulator;
        std::thread::scope(|s| {
            let a = s.spawn(|| engine.activate("self:kim", &key.key_id, HOLDER_PIN, dev, now + 1));
            wait_for_claim(engine, "station-a");
            // Station A stalls past its lease; B takes the entry over (its listing is
            // slow, so A's registration lands first and B finds it).
            emulator.inject(FaultRule::new(
                "GET",
                "fido2Methods",
                Fault::Delay(Duration::from_millis(2_000)),
                1,
            ));
            let r = b.replay_journal(now + 16 * 60_000).unwrap();
            let reg = r
                .iter()
                .find(|r| r.operation == JournalOp::Register)
                .unwrap();
            assert_eq!(reg.outcome.to_string(), "found at IdP", "{r:?}");
            // A's close was fenced off: a typed error, not a second "done".
            let err = a.join().unwrap().unwrap_err();
            assert_eq!(err.reason(), "journal_claim_lost", "{err:?}");
        });
        assert_eq!(w.emulator.methods(&w.kim_id).len(), 1);
        assert_eq!(b.key(&key.key_id).unwrap().state, CredentialState::Active);
    }
}
