//! The one suite every store passes. Each test takes a [`Backend`] and names its own
//! databases, so tests run in parallel without sharing data.

use super::backends::Backend;
use lifecycle::store::{
    AuditQuery, FieldChange, JournalOp, JournalStatus, KeyQuery, KeyRecord, NewAuditRecord,
    NewBulkItem, NewJournalEntry, NewKey, PasskeyRecord, PendingId, PendingPosition,
    PendingRegistration, PinKey, Store, StoreError, Transition, TransportPin, UnitOfWork,
    UserRecord, SCHEMA_VERSION,
};
use lifecycle::CredentialState as St;
use std::sync::{Arc, Barrier};

const AAGUID: [u8; 16] = [
    0xee, 0x88, 0x28, 0x79, 0x72, 0x1c, 0x49, 0x13, 0x97, 0x75, 0x3d, 0xfc, 0xce, 0x97, 0x07, 0x2a,
];

fn new_key(id: &str, serial: &str) -> NewKey {
    NewKey {
        key_id: id.into(),
        aaguid: AAGUID,
        serial: serial.into(),
    }
}

fn user(id: &str) -> UserRecord {
    UserRecord {
        user_id: id.into(),
        upn: format!("{id}@contoso.example"),
        display_name: format!("User {id}"),
        idp_user_id: Some(format!("oid-{id}")),
    }
}

fn audit(action: &str, key: Option<&str>, user: Option<&str>, t: u64) -> NewAuditRecord {
    NewAuditRecord {
        actor: "op-1".into(),
        time_ms: t,
        action: action.into(),
        key_id: key.map(Into::into),
        user_id: user.map(Into::into),
        template_id: Some("tpl".into()),
        outcome: "success".into(),
        idp_request_id: Some(format!("req-{t}")),
        detail: None,
    }
}

fn issue(key: &KeyRecord, user: &str) -> Transition {
    Transition {
        user_id: FieldChange::Set(user.into()),
        template_id: FieldChange::Set("tpl".into()),
        ..Transition::new(key, St::Issued)
    }
}

pub fn users_round_trip<B: Backend>(b: &B) {
    let s = b.open("users");
    assert_eq!(s.get_user("u1").unwrap(), None);
    let mut u = user("u1");
    s.upsert_user(&u).unwrap();
    assert_eq!(s.get_user("u1").unwrap(), Some(u.clone()));
    u.display_name = "Renamed".into();
    u.idp_user_id = None;
    s.upsert_user(&u).unwrap();
    assert_eq!(s.get_user("u1").unwrap(), Some(u.clone()));
    // Another user with the same UPN is refused.
    let dup = UserRecord {
        user_id: "u2".into(),
        ..u.clone()
    };
    assert!(matches!(
        s.upsert_user(&dup),
        Err(StoreError::Duplicate { .. })
    ));
    assert_eq!(s.get_user("u2").unwrap(), None);
}

pub fn keys_round_trip_and_find<B: Backend>(b: &B) {
    let s = b.open("keys");
    let k = s.create_key(&new_key("k1", "SN1"), 1000).unwrap();
    assert_eq!(k.state, St::Blank);
    assert_eq!(k.version, 1);
    assert_eq!((k.created_ms, k.updated_ms), (1000, 1000));
    assert_eq!(k.aaguid, AAGUID);
    assert!(!k.needs_reissue && k.user_id.is_none() && k.template_id.is_none());
    assert_eq!(s.get_key("k1").unwrap(), Some(k.clone()));
    assert_eq!(s.get_key("nope").unwrap(), None);
    assert!(matches!(
        s.create_key(&new_key("k1", "SN9"), 1),
        Err(StoreError::Duplicate { .. })
    ));
    // Same model + serial twice is a duplicate; empty serials are not.
    assert!(matches!(
        s.create_key(&new_key("k1b", "SN1"), 1),
        Err(StoreError::Duplicate { .. })
    ));
    s.create_key(&new_key("e1", ""), 1).unwrap();
    s.create_key(&new_key("e2", ""), 1).unwrap();
    assert!(matches!(
        s.create_key(&new_key("", "x"), 1),
        Err(StoreError::Invalid { .. })
    ));

    let k2 = s.create_key(&new_key("k2", "SN2"), 1001).unwrap();
    let other = NewKey {
        aaguid: [9; 16],
        ..new_key("k3", "SN2")
    };
    s.create_key(&other, 1002).unwrap();
    s.upsert_user(&user("alice")).unwrap();
    s.transition(
        &issue(&k2, "alice"),
        &audit("issue", Some("k2"), Some("alice"), 5),
        2000,
    )
    .unwrap();

    let ids = |q: KeyQuery| -> Vec<String> {
        s.find_keys(&q)
            .unwrap()
            .into_iter()
            .map(|k| k.key_id)
            .collect()
    };
    assert_eq!(ids(KeyQuery::ByUser("alice".into())), ["k2"]);
    assert_eq!(ids(KeyQuery::ByUpn("alice@contoso.example".into())), ["k2"]);
    assert!(ids(KeyQuery::ByUpn("nobody@contoso.example".into())).is_empty());
    assert_eq!(ids(KeyQuery::ByState(St::Issued)), ["k2"]);
    assert_eq!(ids(KeyQuery::ByState(St::Blank)), ["e1", "e2", "k1", "k3"]);
    assert_eq!(ids(KeyQuery::BySerial("SN2".into())), ["k2", "k3"]);
    assert_eq!(ids(KeyQuery::ByAaguidSerial([9; 16], "SN2".into())), ["k3"]);
    assert!(ids(KeyQuery::ByAaguidSerial([9; 16], "SN1".into())).is_empty());

    // Bulk creation is one unit: a duplicate anywhere rolls the whole batch back.
    let batch = |ids: &[&str]| UnitOfWork {
        create_keys: ids
            .iter()
            .map(|id| new_key(id, &format!("B-{id}")))
            .collect(),
        ..UnitOfWork::default()
    };
    assert!(matches!(
        s.commit(batch(&["b1", "b2", "k1"]), 3000),
        Err(StoreError::Duplicate { .. })
    ));
    assert_eq!(s.get_key("b1").unwrap(), None);
    let done = s.commit(batch(&["b1", "b2"]), 3000).unwrap();
    assert_eq!(done.created_keys.len(), 2);
    assert_eq!(s.get_key("b2").unwrap().as_ref(), done.created_keys.get(1));
}

pub fn transition_compare_and_set<B: Backend>(b: &B) {
    let s = b.open("cas");
    s.upsert_user(&user("bob")).unwrap();
    let k = s.create_key(&new_key("k1", "S1"), 10).unwrap();
    let issued = s
        .transition(
            &issue(&k, "bob"),
            &audit("issue", Some("k1"), Some("bob"), 20),
            20,
        )
        .unwrap();
    assert_eq!(issued.state, St::Issued);
    assert_eq!(issued.version, 2);
    assert_eq!(issued.user_id.as_deref(), Some("bob"));
    assert_eq!(issued.template_id.as_deref(), Some("tpl"));
    assert_eq!(issued.updated_ms, 20);
    assert_eq!(s.get_key("k1").unwrap(), Some(issued.clone()));

    // Stale read: the caller still holds version 1.
    let err = s
        .transition(
            &Transition::new(&k, St::Active),
            &audit("activate", Some("k1"), None, 30),
            30,
        )
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::Conflict {
            key_id: "k1".into(),
            expected: St::Blank,
            expected_version: 1,
            found: St::Issued,
            found_version: 2,
        }
    );
    // Right version, wrong state is a conflict too.
    let mut wrong = Transition::new(&issued, St::Active);
    wrong.expected_state = St::Active;
    assert!(matches!(
        s.transition(&wrong, &audit("x", Some("k1"), None, 31), 31),
        Err(StoreError::Conflict {
            found: St::Issued,
            found_version: 2,
            ..
        })
    ));
    // Unknown key.
    let mut ghost = Transition::new(&issued, St::Active);
    ghost.key_id = "ghost".into();
    assert!(matches!(
        s.transition(&ghost, &audit("x", None, None, 32), 32),
        Err(StoreError::NotFound { .. })
    ));
    // Refused transitions wrote no audit; the successful one did.
    let log = s
        .query_audit(&AuditQuery {
            key_id: Some("k1".into()),
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].event.action, "issue");

    // Flags: set needs_reissue and clear the user.
    let change = Transition {
        user_id: FieldChange::Clear,
        needs_reissue: Some(true),
        ..Transition::new(&issued, St::Inactive)
    };
    let inactive = s
        .transition(
            &change,
            &audit("inactivate", Some("k1"), Some("bob"), 40),
            40,
        )
        .unwrap();
    assert_eq!(inactive.state, St::Inactive);
    assert_eq!(inactive.version, 3);
    assert!(inactive.needs_reissue);
    assert_eq!(inactive.user_id, None);
    assert_eq!(
        inactive.template_id.as_deref(),
        Some("tpl"),
        "unchanged when None"
    );
    assert_eq!(s.get_key("k1").unwrap(), Some(inactive));
}

pub fn racing_operators_never_double_issue<B: Backend>(b: &B) {
    const ROUNDS: usize = 12;
    let setup = b.open("race");
    setup.upsert_user(&user("ua")).unwrap();
    setup.upsert_user(&user("ub")).unwrap();
    for r in 0..ROUNDS {
        setup
            .create_key(&new_key(&format!("k{r}"), &format!("S{r}")), 1)
            .unwrap();
    }
    // Two stations: separate handles (connections) on the same database.
    let stations: Vec<Arc<B::S>> = vec![Arc::new(b.open("race")), Arc::new(b.open("race"))];
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = stations
        .into_iter()
        .zip(["ua", "ub"])
        .map(|(store, who)| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut wins = Vec::new();
                for r in 0..ROUNDS {
                    let id = format!("k{r}");
                    // Both read the blank key first, then race.
                    let key = store.get_key(&id).unwrap().unwrap();
                    barrier.wait();
                    let res = store.transition(
                        &issue(&key, who),
                        &audit("issue", Some(&id), Some(who), 100),
                        100,
                    );
                    match res {
                        Ok(k) => wins.push(k),
                        Err(StoreError::Conflict { found, .. }) => assert_eq!(found, St::Issued),
                        Err(e) => panic!("unexpected error in the race: {e}"),
                    }
                    barrier.wait();
                }
                wins
            })
        })
        .collect();
    let wins: Vec<KeyRecord> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(wins.len(), ROUNDS, "exactly one winner per key");
    for r in 0..ROUNDS {
        let id = format!("k{r}");
        let winners: Vec<_> = wins.iter().filter(|k| k.key_id == id).collect();
        assert_eq!(winners.len(), 1, "{id}: {winners:?}");
        let stored = setup.get_key(&id).unwrap().unwrap();
        assert_eq!(&stored, winners[0]);
        assert_eq!(stored.version, 2);
        let log = setup
            .query_audit(&AuditQuery {
                key_id: Some(id.clone()),
                ..AuditQuery::default()
            })
            .unwrap();
        assert_eq!(log.len(), 1, "{id}: one audit record for the one issue");
        assert_eq!(log[0].event.user_id, stored.user_id);
    }
}

pub fn unit_of_work_is_atomic<B: Backend>(b: &B) {
    let s = b.open("uow");
    let k = s.create_key(&new_key("k1", "S1"), 1).unwrap();
    s.upsert_user(&user("carol")).unwrap();
    let pk = PasskeyRecord {
        key_id: "k1".into(),
        passkey_template: "entra".into(),
        credential_id: vec![1, 2, 3],
        public_key: vec![0xa5; 77],
        idp_method_id: None,
        state: St::Issued,
        created_ms: 5,
    };
    s.add_passkey(&pk).unwrap();
    // A unit that would change state, journal, audit, and then add a duplicate passkey.
    let work = UnitOfWork {
        users: vec![user("dave")],
        transition: Some(issue(&k, "carol")),
        add_passkeys: vec![pk.clone()],
        journal: vec![NewJournalEntry {
            key_id: "k1".into(),
            idp: "entra".into(),
            operation: JournalOp::Register,
            payload: b"{}".to_vec(),
        }],
        audit: vec![audit("issue", Some("k1"), Some("carol"), 9)],
        ..UnitOfWork::default()
    };
    assert!(matches!(
        s.commit(work.clone(), 9),
        Err(StoreError::Duplicate { .. })
    ));
    assert_eq!(
        s.get_key("k1").unwrap(),
        Some(k.clone()),
        "state rolled back"
    );
    assert_eq!(s.get_user("dave").unwrap(), None, "user rolled back");
    assert!(
        s.journal_unfinished().unwrap().is_empty(),
        "journal rolled back"
    );
    assert!(
        s.query_audit(&AuditQuery::default()).unwrap().is_empty(),
        "audit rolled back"
    );

    // Without the faulty part it commits as a whole.
    let work = UnitOfWork {
        add_passkeys: vec![],
        ..work
    };
    let done = s.commit(work, 10).unwrap();
    let key = done.key.unwrap();
    assert_eq!((key.state, key.version), (St::Issued, 2));
    assert_eq!(done.journal.len(), 1);
    assert_eq!(done.journal[0].status, JournalStatus::Pending);
    assert_eq!(done.journal[0].created_ms, 10);
    assert_eq!(done.audit_ids.len(), 1);
    assert!(s.get_user("dave").unwrap().is_some());
    assert_eq!(s.journal_unfinished().unwrap(), done.journal);

    // References to unknown keys are refused (no orphans).
    let orphan = NewJournalEntry {
        key_id: "ghost".into(),
        idp: "entra".into(),
        operation: JournalOp::Delete,
        payload: vec![],
    };
    assert!(matches!(
        s.journal_append(&orphan, 11),
        Err(StoreError::NotFound { .. })
    ));
}

pub fn passkeys_add_list_update<B: Backend>(b: &B) {
    let s = b.open("passkeys");
    s.create_key(&new_key("k1", "S1"), 1).unwrap();
    assert!(s.list_passkeys("k1").unwrap().is_empty());
    let mut a = PasskeyRecord {
        key_id: "k1".into(),
        passkey_template: "entra".into(),
        credential_id: vec![0xc1; 64],
        public_key: vec![0xa5, 0x01, 0x02],
        idp_method_id: None,
        state: St::Issued,
        created_ms: 100,
    };
    let c = PasskeyRecord {
        passkey_template: "okta".into(),
        credential_id: vec![0xc2; 16],
        created_ms: 200,
        ..a.clone()
    };
    s.add_passkey(&c).unwrap();
    s.add_passkey(&a).unwrap();
    assert_eq!(s.list_passkeys("k1").unwrap(), vec![a.clone(), c.clone()]);
    assert_eq!(
        s.passkeys_by_credential(&[0xc2; 16]).unwrap(),
        vec![c.clone()]
    );
    assert!(s.passkeys_by_credential(&[0xc3; 16]).unwrap().is_empty());
    assert!(matches!(
        s.add_passkey(&a),
        Err(StoreError::Duplicate { .. })
    ));
    a.idp_method_id = Some("method-1".into());
    a.state = St::Active;
    s.update_passkey(&a, 300).unwrap();
    assert_eq!(s.list_passkeys("k1").unwrap(), vec![a.clone(), c]);
    let ghost = PasskeyRecord {
        credential_id: vec![0],
        ..a.clone()
    };
    assert!(matches!(
        s.update_passkey(&ghost, 1),
        Err(StoreError::NotFound { .. })
    ));
    let orphan = PasskeyRecord {
        key_id: "nokey".into(),
        ..a
    };
    assert!(matches!(
        s.add_passkey(&orphan),
        Err(StoreError::NotFound { .. })
    ));
}

pub fn pending_registrations<B: Backend>(b: &B) {
    let s = b.open("pending");
    for k in ["k1", "k2", "k3"] {
        s.create_key(&new_key(k, k), 1).unwrap();
    }
    let p = |key: &str, idp: &str, exp: u64| PendingRegistration {
        key_id: key.into(),
        passkey_template: idp.into(),
        user_id: "u".into(),
        attestation_object: vec![0xa3, 0x63, 0x66, 0x6d, 0x74],
        client_data_json: br#"{"type":"webauthn.create"}"#.to_vec(),
        challenge_expires_ms: exp,
        created_ms: 50,
        // One row with the display name kept since schema 15, the others without (as
        // rows stored before it): both read back as written.
        display_name: (idp == "okta").then(|| "Alex Wilber \u{2014} key S1".to_owned()),
    };
    s.put_pending(&p("k1", "entra", 1_000)).unwrap();
    s.put_pending(&p("k2", "entra", 500)).unwrap();
    s.put_pending(&p("k3", "entra", 5_000)).unwrap();
    s.put_pending(&p("k1", "okta", 2_000)).unwrap();
    let keys = |v: Vec<PendingRegistration>| -> Vec<(String, String)> {
        v.into_iter()
            .map(|p| (p.key_id, p.passkey_template))
            .collect()
    };
    assert_eq!(
        keys(s.pending_expiring_before(2_000).unwrap()),
        [("k2".into(), "entra".into()), ("k1".into(), "entra".into())]
    );
    assert!(
        s.pending_expiring_before(500).unwrap().is_empty(),
        "strictly before"
    );
    assert_eq!(
        s.pending_for_key("k1").unwrap(),
        vec![p("k1", "entra", 1_000), p("k1", "okta", 2_000)]
    );
    // Put replaces.
    s.put_pending(&p("k2", "entra", 9_000)).unwrap();
    assert_eq!(
        s.pending_for_key("k2").unwrap(),
        vec![p("k2", "entra", 9_000)]
    );
    // Take removes, once.
    assert_eq!(
        s.take_pending("k1", "entra").unwrap(),
        Some(p("k1", "entra", 1_000))
    );
    assert_eq!(s.take_pending("k1", "entra").unwrap(), None);
    assert_eq!(
        s.pending_for_key("k1").unwrap(),
        vec![p("k1", "okta", 2_000)]
    );
    // Removal inside a unit of work.
    let work = UnitOfWork {
        remove_pending: vec![PendingId {
            key_id: "k1".into(),
            passkey_template: "okta".into(),
        }],
        ..UnitOfWork::default()
    };
    s.commit(work, 60).unwrap();
    assert!(s.pending_for_key("k1").unwrap().is_empty());
}

pub fn audit_append_only_and_queries<B: Backend>(b: &B) {
    let s = b.open("audit");
    // Appended out of time order: the log keeps append order.
    let times = [300, 100, 200, 400];
    let keys = [Some("k1"), Some("k2"), Some("k1"), None];
    let users = [Some("u1"), Some("u1"), Some("u2"), None];
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            s.append_audit(&audit(&format!("a{i}"), keys[i], users[i], times[i]))
                .unwrap(),
        );
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    let all = s.query_audit(&AuditQuery::default()).unwrap();
    assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    assert_eq!(all[0].event, audit("a0", Some("k1"), Some("u1"), 300));
    let actions = |q: AuditQuery| -> Vec<String> {
        s.query_audit(&q)
            .unwrap()
            .into_iter()
            .map(|r| r.event.action)
            .collect()
    };
    assert_eq!(
        actions(AuditQuery {
            key_id: Some("k1".into()),
            ..Default::default()
        }),
        ["a0", "a2"]
    );
    assert_eq!(
        actions(AuditQuery {
            user_id: Some("u1".into()),
            ..Default::default()
        }),
        ["a0", "a1"]
    );
    assert_eq!(
        actions(AuditQuery {
            from_ms: Some(200),
            until_ms: Some(400),
            ..Default::default()
        }),
        ["a0", "a2"]
    );
    assert_eq!(
        actions(AuditQuery {
            key_id: Some("k1".into()),
            user_id: Some("u2".into()),
            ..Default::default()
        }),
        ["a2"]
    );
    assert_eq!(
        actions(AuditQuery {
            limit: Some(2),
            ..Default::default()
        }),
        ["a0", "a1"]
    );
    // The database itself refuses to rewrite history.
    let upd = b.raw_exec("audit", "UPDATE audit SET outcome = 'forged'");
    assert!(upd.is_err(), "UPDATE on audit must fail");
    assert!(upd.unwrap_err().contains("append-only"));
    assert!(
        b.raw_exec("audit", "DELETE FROM audit").is_err(),
        "DELETE on audit must fail"
    );
    assert_eq!(s.query_audit(&AuditQuery::default()).unwrap(), all);
}

#[path = "suite/durability.rs"]
mod durability;
pub use durability::*;
#[path = "suite/bulk_claims.rs"]
mod bulk_claims;
pub use bulk_claims::*;
#[path = "suite/selfservice.rs"]
mod selfservice;
pub use selfservice::*;
#[path = "suite/split.rs"]
mod split;
pub use split::*;
#[path = "suite/fencing.rs"]
mod fencing;
pub use fencing::*;
#[path = "suite/agents.rs"]
mod agents;
pub use agents::*;

#[path = "suite/watch.rs"]
mod watch;
pub use watch::*;
