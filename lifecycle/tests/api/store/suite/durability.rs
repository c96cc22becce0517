//! The store suite, continued: the journal, sealed transport PINs, migrations, paging
//! and bulk jobs.

use super::*;

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

/// Schema 5 renamed `passkeys.idp` and `pending_registrations.idp` (a passkey template
/// name) to `passkey_template`: rows written by a schema-4 build read back under the new
/// name, and the renamed keys still refuse duplicates.
pub fn passkey_template_column_renamed_from_schema_4<B: Backend>(b: &B) {
    let old = b.try_open_at("migr_v4", 4).unwrap();
    assert_eq!(old.schema_version().unwrap(), 4);
    drop(old);
    // SQLite's blob literal first, then PostgreSQL's.
    let seed = |sql: &dyn Fn(&str) -> String| {
        b.raw_exec("migr_v4", &sql("X'0102'"))
            .or_else(|_| b.raw_exec("migr_v4", &sql("'\\x0102'")))
            .unwrap();
    };
    // The key as a schema-4 build wrote it (today's key columns are newer).
    let key_v4 = |aaguid: &str| {
        format!(
            "INSERT INTO keys (key_id, aaguid, serial, state, user_id, template_id, \
             needs_reissue, version, created_ms, updated_ms) \
             VALUES ('k4', {aaguid}, 'S4', 'blank', NULL, NULL, 0, 1, 1, 1)"
        )
    };
    b.raw_exec("migr_v4", &key_v4("X'00000000000000000000000000000000'"))
        .or_else(|_| b.raw_exec("migr_v4", &key_v4("'\\x00000000000000000000000000000000'")))
        .unwrap();
    seed(&|blob| {
        format!(
            "INSERT INTO passkeys (key_id, idp, credential_id, public_key, idp_method_id, state, \
             created_ms, updated_ms) VALUES ('k4', 'entra', {blob}, {blob}, 'm1', 'active', 2, 2)"
        )
    });
    seed(&|blob| {
        format!(
            "INSERT INTO pending_registrations (key_id, idp, user_id, attestation_object, \
             client_data_json, challenge_expires_ms, created_ms) \
             VALUES ('k4', 'okta', 'u4', {blob}, {blob}, 9, 3)"
        )
    });

    let s = b.open("migr_v4");
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let passkeys = s.list_passkeys("k4").unwrap();
    assert_eq!(passkeys.len(), 1);
    assert_eq!(passkeys[0].passkey_template, "entra");
    assert_eq!(passkeys[0].credential_id, vec![1, 2]);
    assert_eq!(passkeys[0].idp_method_id.as_deref(), Some("m1"));
    let pending = s.pending_for_key("k4").unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].passkey_template, "okta");
    assert_eq!(pending[0].user_id, "u4");
    assert_eq!(
        pending[0].display_name, None,
        "rows older than schema 15 have none"
    );
    let taken = s.take_pending("k4", "okta").unwrap().unwrap();
    assert_eq!(taken.passkey_template, "okta");
    // The primary key moved with the column.
    let dup = s.add_passkey(&passkeys[0]);
    assert!(dup.is_err(), "the renamed column is still part of the key");
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
            passkey_template: "entra".into(),
            user_id: "u".into(),
            attestation_object: vec![1],
            client_data_json: vec![2],
            // Two share each expiry, to exercise the tie-break.
            challenge_expires_ms: 1_000 + (n / 2) * 100,
            created_ms: 1,
            display_name: None,
        })
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut after: Option<(u64, String, String)> = None;
    loop {
        let page = s
            .pending_expiring_page(
                1_300,
                after.as_ref().map(|(e, k, d)| PendingPosition {
                    challenge_expires_ms: *e,
                    key_id: k.as_str(),
                    passkey_template: d.as_str(),
                }),
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
            last.passkey_template.clone(),
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
        items: (0..5)
            .map(|n| NewBulkItem {
                line: n + 2,
                input: format!("row {n}"),
            })
            .collect(),
    };
    let created = s.bulk_create(&job, 100).unwrap();
    assert_eq!(created.total, 5);
    assert_eq!(created.kind, "revoke");
    assert_eq!(s.bulk_job(created.job_id).unwrap(), Some(created.clone()));
    assert_eq!(created.finished_ms, None);
    assert_eq!(
        s.bulk_open_job("revoke", "ab12").unwrap(),
        Some(created.clone())
    );
    assert_eq!(s.bulk_open_job("issue", "ab12").unwrap(), None);
    // While unfinished, the same source for the same kind is refused; another kind is
    // another job.
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
