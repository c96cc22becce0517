//! The one suite every store passes. Each test takes a [`Backend`] and names its own
//! databases, so tests run in parallel without sharing data.

use super::backends::Backend;
use lifecycle::store::{
    AuditQuery, JournalOp, JournalStatus, KeyQuery, KeyRecord, NewAuditRecord, NewJournalEntry,
    NewKey, PasskeyRecord, PendingRegistration, PinKey, Store, StoreError, Transition,
    TransportPin, UnitOfWork, UserRecord, SCHEMA_VERSION,
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

fn audit(action: &str, key: Option<&str>, user: Option<&str>, t: i64) -> NewAuditRecord {
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
        user_id: Some(Some(user.into())),
        template_id: Some(Some("tpl".into())),
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
        user_id: Some(None),
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
        idp: "entra".into(),
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
        idp: "entra".into(),
        credential_id: vec![0xc1; 64],
        public_key: vec![0xa5, 0x01, 0x02],
        idp_method_id: None,
        state: St::Issued,
        created_ms: 100,
    };
    let c = PasskeyRecord {
        idp: "okta".into(),
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
    let p = |key: &str, idp: &str, exp: i64| PendingRegistration {
        key_id: key.into(),
        idp: idp.into(),
        user_id: "u".into(),
        attestation_object: vec![0xa3, 0x63, 0x66, 0x6d, 0x74],
        client_data_json: br#"{"type":"webauthn.create"}"#.to_vec(),
        challenge_expires_ms: exp,
        created_ms: 50,
    };
    s.put_pending(&p("k1", "entra", 1_000)).unwrap();
    s.put_pending(&p("k2", "entra", 500)).unwrap();
    s.put_pending(&p("k3", "entra", 5_000)).unwrap();
    s.put_pending(&p("k1", "okta", 2_000)).unwrap();
    let keys = |v: Vec<PendingRegistration>| -> Vec<(String, String)> {
        v.into_iter().map(|p| (p.key_id, p.idp)).collect()
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
        remove_pending: vec![("k1".into(), "okta".into())],
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

pub fn journal_lifecycle_and_replay<B: Backend>(b: &B) {
    let s = b.open("journal");
    s.create_key(&new_key("k1", "S1"), 1).unwrap();
    let entry = |op| NewJournalEntry {
        key_id: "k1".into(),
        idp: "entra".into(),
        operation: op,
        payload: br#"{"method":"m1"}"#.to_vec(),
    };
    let e1 = s.journal_append(&entry(JournalOp::Register), 10).unwrap();
    let e2 = s.journal_append(&entry(JournalOp::Delete), 11).unwrap();
    let e3 = s.journal_append(&entry(JournalOp::Delete), 12).unwrap();
    assert!(e1.id < e2.id && e2.id < e3.id);
    assert_eq!(
        (e1.status, e1.attempts, e1.result.clone()),
        (JournalStatus::Pending, 0, None)
    );
    assert_eq!(e1.operation, JournalOp::Register);
    assert_eq!(e1.payload, br#"{"method":"m1"}"#);

    assert_eq!((e1.claimed_by.clone(), e1.claimed_until_ms), (None, 0));
    let a = s.journal_claim(e2.id, "station-a", 20, 1_000).unwrap();
    assert_eq!((a.attempts, a.updated_ms), (1, 20));
    assert_eq!(a.claimed_by.as_deref(), Some("station-a"));
    assert_eq!(a.claimed_until_ms, 1_020);
    // Another station waits for the lease; the holder may renew it.
    assert_eq!(
        s.journal_claim(e2.id, "station-b", 500, 1_000).unwrap_err(),
        StoreError::JournalBusy {
            id: e2.id,
            claimed_by: "station-a".into(),
            until_ms: 1_020
        }
    );
    assert_eq!(
        s.journal_claim(e2.id, "station-a", 600, 1_000)
            .unwrap()
            .attempts,
        2
    );
    // After the lease ends (a crashed station), another station takes over.
    let b2 = s.journal_claim(e2.id, "station-b", 1_600, 1_000).unwrap();
    assert_eq!(
        (b2.attempts, b2.claimed_by.as_deref()),
        (3, Some("station-b"))
    );
    assert!(matches!(
        s.journal_claim(e2.id, "station-b", 1_601, -1),
        Err(StoreError::Invalid { .. })
    ));

    s.journal_done(e1.id, Some("method-42"), 30).unwrap();
    s.journal_done(e1.id, Some("method-42"), 31).unwrap(); // idempotent
    assert!(matches!(
        s.journal_failed(e1.id, "late", 32),
        Err(StoreError::JournalClosed {
            status: JournalStatus::Done,
            ..
        })
    ));
    assert!(matches!(
        s.journal_claim(e1.id, "station-a", 33, 10),
        Err(StoreError::JournalClosed { .. })
    ));
    assert!(matches!(
        s.journal_claim(9_999_999, "station-a", 33, 10),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.journal_done(9_999_999, None, 1),
        Err(StoreError::NotFound { .. })
    ));
    s.journal_failed(e3.id, "user gone at IdP", 34).unwrap();
    let closed = s.journal_get(e1.id).unwrap().unwrap();
    assert_eq!(closed.status, JournalStatus::Done);
    assert_eq!(closed.result.as_deref(), Some("method-42"));
    assert_eq!(closed.updated_ms, 30);
    let failed = s.journal_get(e3.id).unwrap().unwrap();
    assert_eq!(failed.status, JournalStatus::Failed);

    // "Restart": a new handle sees exactly what must be replayed.
    drop(s);
    let s = b.open("journal");
    let todo = s.journal_unfinished().unwrap();
    assert_eq!(todo.iter().map(|e| e.id).collect::<Vec<_>>(), [e2.id]);
    assert_eq!(todo[0].attempts, 3);
    assert_eq!(todo[0].claimed_by.as_deref(), Some("station-b"));
    assert_eq!(todo[0].operation, JournalOp::Delete);
}

pub fn transport_pin_sealed<B: Backend>(b: &B) {
    let s = b.open("pins");
    s.create_key(&new_key("k1", "S1"), 1).unwrap();
    s.create_key(&new_key("k2", "S2"), 1).unwrap();
    let host = PinKey::from_bytes([0x42; 32]);
    let pin = TransportPin::new("KS739164PIN").unwrap();
    assert_eq!(s.get_transport_pin("k1", &host).unwrap(), None);
    s.put_transport_pin("k1", &pin, &host, 5).unwrap();
    assert_eq!(
        s.get_transport_pin("k1", &host).unwrap().unwrap().expose(),
        "KS739164PIN"
    );
    // Wrong host key: a typed error, never garbage.
    let wrong = PinKey::from_bytes([0x43; 32]);
    assert!(matches!(
        s.get_transport_pin("k1", &wrong),
        Err(StoreError::Crypto { .. })
    ));
    // The ciphertext is bound to its key id: moving it to another key does not open.
    assert!(b
        .raw_exec("pins", "INSERT INTO transport_pins (key_id, sealed, updated_ms) SELECT 'k2', sealed, 1 FROM transport_pins WHERE key_id = 'k1'")
        .is_ok());
    assert!(matches!(
        s.get_transport_pin("k2", &host),
        Err(StoreError::Crypto { .. })
    ));
    // Nothing in clear at rest.
    let bytes = b.raw_bytes("pins");
    assert!(!bytes.is_empty());
    assert!(
        !bytes.windows(11).any(|w| w == b"KS739164PIN"),
        "the transport PIN is in clear in the database"
    );
    // Replace and delete.
    let pin2 = TransportPin::new("246810").unwrap();
    s.put_transport_pin("k1", &pin2, &host, 6).unwrap();
    assert_eq!(
        s.get_transport_pin("k1", &host).unwrap().unwrap().expose(),
        "246810"
    );
    assert!(s.delete_transport_pin("k1").unwrap());
    assert!(!s.delete_transport_pin("k1").unwrap());
    assert_eq!(s.get_transport_pin("k1", &host).unwrap(), None);
    assert!(matches!(
        s.put_transport_pin("ghost", &pin, &host, 7),
        Err(StoreError::NotFound { .. })
    ));
}

pub fn migrations_idempotent_and_from_older_schema<B: Backend>(b: &B) {
    let s = b.open("migr");
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    s.create_key(&new_key("k1", "S1"), 1).unwrap();
    drop(s);
    let s = b.open("migr");
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(
        s.get_key("k1").unwrap().is_some(),
        "data survives reopening"
    );
    drop(s);

    // A database left at schema version 1 by an older build, with a key in it.
    let old = b.try_open_at("migr_old", 1).unwrap();
    assert_eq!(old.schema_version().unwrap(), 1);
    drop(old);
    b.raw_exec(
        "migr_old",
        "INSERT INTO keys (key_id, aaguid, serial, state, user_id, template_id, version, created_ms, updated_ms) \
         VALUES ('old1', X'00000000000000000000000000000000', 'OS1', 'active', 'u9', 't9', 7, 3, 4)",
    )
    .or_else(|_| {
        // PostgreSQL spells blob literals differently.
        b.raw_exec(
            "migr_old",
            "INSERT INTO keys (key_id, aaguid, serial, state, user_id, template_id, version, created_ms, updated_ms) \
             VALUES ('old1', '\\x00000000000000000000000000000000', 'OS1', 'active', 'u9', 't9', 7, 3, 4)",
        )
    })
    .unwrap();
    let journal_v1 = |blob: &str| {
        format!(
            "INSERT INTO journal (key_id, idp, operation, payload, status, attempts, result, created_ms, updated_ms) \
             VALUES ('old1', 'entra', 'delete', {blob}, 'pending', 1, NULL, 5, 6)"
        )
    };
    b.raw_exec("migr_old", &journal_v1("X'7b7d'"))
        .or_else(|_| b.raw_exec("migr_old", &journal_v1("'\\x7b7d'")))
        .unwrap();
    let s = b.open("migr_old");
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let k = s.get_key("old1").unwrap().unwrap();
    assert_eq!(k.state, St::Active);
    assert_eq!(k.version, 7);
    assert!(!k.needs_reissue, "new column defaults to false");
    assert_eq!(
        s.find_keys(&KeyQuery::ByUser("u9".into())).unwrap().len(),
        1
    );
}

pub fn newer_schema_is_refused<B: Backend>(b: &B) {
    drop(b.open("newer"));
    b.raw_exec("newer", "UPDATE schema_version SET version = 99")
        .unwrap();
    match b.try_open_at("newer", SCHEMA_VERSION) {
        Err(StoreError::Migration { version: 99, .. }) => {}
        other => panic!("expected a migration error, got {:?}", other.map(|_| ())),
    }
}

pub fn keys_paged<B: Backend>(b: &B) {
    let s = b.open("keyspage");
    for n in 0..25 {
        s.create_key(&new_key(&format!("k{n:03}"), &format!("S{n}")), 1)
            .unwrap();
    }
    let k = s.get_key("k007").unwrap().unwrap();
    s.transition(
        &issue(&k, "alice"),
        &audit("issue", Some("k007"), None, 2),
        2,
    )
    .unwrap();
    // Walk every key in pages of 10: 10 + 10 + 5 + an empty page, in order, no repeats.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = s
            .find_keys_page(&KeyQuery::All, after.as_deref(), 10)
            .unwrap();
        pages += 1;
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        after = page.last().map(|k| k.key_id.clone());
        seen.extend(page.into_iter().map(|k| k.key_id));
    }
    assert_eq!(pages, 4);
    let expected: Vec<String> = (0..25).map(|n| format!("k{n:03}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(s.find_keys(&KeyQuery::All).unwrap().len(), 25);
    // Paging composes with the other queries.
    let issued = s
        .find_keys_page(&KeyQuery::ByState(St::Issued), None, 5)
        .unwrap();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].key_id, "k007");
    assert!(s
        .find_keys_page(&KeyQuery::ByState(St::Issued), Some("k007"), 5)
        .unwrap()
        .is_empty());
    let blank = s
        .find_keys_page(&KeyQuery::ByState(St::Blank), Some("k020"), 100)
        .unwrap();
    assert_eq!(blank.len(), 4);
    // Bounded pages.
    for bad in [0, 10_001] {
        assert!(matches!(
            s.find_keys_page(&KeyQuery::All, None, bad),
            Err(StoreError::Invalid { field: "limit", .. })
        ));
    }
}

pub fn pending_expiring_paged<B: Backend>(b: &B) {
    let s = b.open("pendpage");
    for n in 0..7 {
        let k = format!("k{n}");
        s.create_key(&new_key(&k, &k), 1).unwrap();
        s.put_pending(&PendingRegistration {
            key_id: k,
            idp: "entra".into(),
            user_id: "u".into(),
            attestation_object: vec![1],
            client_data_json: vec![2],
            // Two share each expiry, to exercise the tie-break.
            challenge_expires_ms: 1_000 + (n / 2) * 100,
            created_ms: 1,
        })
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut after: Option<(i64, String, String)> = None;
    loop {
        let page = s
            .pending_expiring_page(
                1_300,
                after.as_ref().map(|(e, k, d)| (*e, k.as_str(), d.as_str())),
                2,
            )
            .unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        after = Some((
            last.challenge_expires_ms,
            last.key_id.clone(),
            last.idp.clone(),
        ));
        seen.extend(page.into_iter().map(|p| p.key_id));
    }
    // Expiries 1000,1000,1100,1100,1200,1200 are before 1300; 1300 is not.
    assert_eq!(seen, ["k0", "k1", "k2", "k3", "k4", "k5"]);
    let all: Vec<String> = s
        .pending_expiring_before(1_300)
        .unwrap()
        .into_iter()
        .map(|p| p.key_id)
        .collect();
    assert_eq!(all, seen);
}

pub fn bulk_jobs_round_trip<B: Backend>(b: &B) {
    use lifecycle::store::{BulkCounts, BulkItemStatus, NewBulkJob};
    let s = b.open("bulk");
    let job = NewBulkJob {
        kind: "revoke".into(),
        source_hash: "ab12".into(),
        actor: "op-1".into(),
        items: (0..5).map(|n| (n + 2, format!("row {n}"))).collect(),
    };
    let created = s.bulk_create(&job, 100).unwrap();
    assert_eq!(created.total, 5);
    assert_eq!(created.kind, "revoke");
    assert_eq!(s.bulk_job(created.job_id).unwrap(), Some(created.clone()));
    assert_eq!(
        s.bulk_job_by_source("revoke", "ab12").unwrap(),
        Some(created.clone())
    );
    assert_eq!(s.bulk_job_by_source("issue", "ab12").unwrap(), None);
    // The same source for the same kind is refused; another kind is another job.
    assert!(matches!(
        s.bulk_create(&job, 101),
        Err(StoreError::Duplicate { .. })
    ));
    let other = s
        .bulk_create(
            &NewBulkJob {
                kind: "reconcile".into(),
                ..job.clone()
            },
            102,
        )
        .unwrap();
    assert_ne!(other.job_id, created.job_id);

    let page = s.bulk_items(created.job_id, None, 3).unwrap();
    assert_eq!(page.iter().map(|i| i.line).collect::<Vec<_>>(), [2, 3, 4]);
    assert!(page.iter().all(|i| i.status == BulkItemStatus::Pending));
    assert_eq!(page[0].input, "row 0");
    let rest = s.bulk_items(created.job_id, Some(4), 3).unwrap();
    assert_eq!(rest.iter().map(|i| i.line).collect::<Vec<_>>(), [5, 6]);

    s.bulk_set_item(created.job_id, 2, BulkItemStatus::Running, None, 110)
        .unwrap();
    s.bulk_set_item(
        created.job_id,
        3,
        BulkItemStatus::Done,
        Some("revoked"),
        111,
    )
    .unwrap();
    s.bulk_set_item(
        created.job_id,
        4,
        BulkItemStatus::Failed,
        Some("no key"),
        112,
    )
    .unwrap();
    assert_eq!(
        s.bulk_counts(created.job_id).unwrap(),
        BulkCounts {
            pending: 2,
            running: 1,
            done: 1,
            failed: 1
        }
    );
    let items = s.bulk_items(created.job_id, Some(2), 1).unwrap();
    assert_eq!(items[0].status, BulkItemStatus::Done);
    assert_eq!(items[0].outcome.as_deref(), Some("revoked"));
    assert_eq!(items[0].updated_ms, 111);
    // The other job is untouched.
    assert_eq!(s.bulk_counts(other.job_id).unwrap().pending, 5);
    assert!(matches!(
        s.bulk_set_item(created.job_id, 99, BulkItemStatus::Done, None, 1),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(s.bulk_job(9_999).unwrap(), None);
}
