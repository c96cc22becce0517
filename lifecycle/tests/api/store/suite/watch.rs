//! What the store keeps about passkeys after issuance (schema 11): the user name each
//! passkey carries, its last use, and why a key needs reissue.

use super::super::backends::Backend;
use lifecycle::store::{
    FieldChange, NewKey, PasskeyRecord, ReissueReason, Store, Transition, UnitOfWork, UserRecord,
    WatchStore, SCHEMA_VERSION,
};
use lifecycle::CredentialState as St;

fn passkey(key_id: &str, cred: u8, state: St, registered: bool, made: u64) -> PasskeyRecord {
    PasskeyRecord {
        key_id: key_id.into(),
        passkey_template: "entra".into(),
        credential_id: vec![cred; 16],
        public_key: vec![1, 2, 3],
        idp_method_id: registered.then(|| format!("m{cred}")),
        state,
        created_ms: made,
    }
}

/// Issues key `id` to `user` (upserted with `upn`) with one active, registered passkey,
/// in one unit of work as the engine does.
fn issue_active<S: Store>(s: &S, id: &str, user: &str, upn: &str, cred: u8, made: u64) {
    let key = s
        .create_key(
            &NewKey {
                key_id: id.into(),
                aaguid: [cred; 16],
                serial: id.into(),
            },
            1,
        )
        .unwrap();
    s.commit(
        UnitOfWork {
            users: vec![UserRecord {
                user_id: user.into(),
                upn: upn.into(),
                display_name: "U".into(),
                idp_user_id: Some(user.into()),
            }],
            transition: Some(Transition {
                user_id: FieldChange::Set(user.into()),
                ..Transition::new(&key, St::Active)
            }),
            add_passkeys: vec![passkey(id, cred, St::Active, true, made)],
            ..UnitOfWork::default()
        },
        made,
    )
    .unwrap();
}

pub fn passkey_watch_names_last_use_and_reasons<B: Backend>(b: &B) {
    let s = b.open("watch");
    issue_active(&s, "k1", "u1", "kim@contoso.example", 1, 100);
    // The name the passkey carries is the UPN its unit of work recorded.
    let w = s.passkey_watch("k1").unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].user_name.as_deref(), Some("kim@contoso.example"));
    assert_eq!(w[0].last_used_ms, None);
    // A baseline never overwrites a recorded name.
    s.note_user_name("k1", "entra", &[1; 16], "other@contoso.example")
        .unwrap();
    assert_eq!(
        s.passkey_watch("k1").unwrap()[0].user_name.as_deref(),
        Some("kim@contoso.example")
    );
    // Last use only moves forward.
    s.record_last_used("k1", "entra", &[1; 16], 5_000).unwrap();
    s.record_last_used("k1", "entra", &[1; 16], 4_000).unwrap();
    assert_eq!(s.passkey_watch("k1").unwrap()[0].last_used_ms, Some(5_000));

    // Unused keys: k1 last used at 5 000; k2 never used, made at 200; k3 used lately.
    issue_active(&s, "k2", "u2", "lee@contoso.example", 2, 200);
    issue_active(&s, "k3", "u3", "adele@contoso.example", 3, 300);
    s.record_last_used("k3", "entra", &[3; 16], 9_000).unwrap();
    let ids = |v: Vec<lifecycle::store::KeyUse>| {
        v.into_iter()
            .map(|u| (u.key_id, u.last_used_ms, u.made_ms))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(s.unused_keys(150).unwrap()), vec![]);
    assert_eq!(
        ids(s.unused_keys(6_000).unwrap()),
        vec![("k1".into(), Some(5_000), 100), ("k2".into(), None, 200)]
    );
    assert_eq!(ids(s.unused_keys(10_000).unwrap()).len(), 3);

    // The reason is stored with the mark and cleared with it.
    assert_eq!(s.reissue_reason("k1").unwrap(), None);
    let k1 = s.get_key("k1").unwrap().unwrap();
    let mark = Transition {
        needs_reissue: Some(true),
        reissue_reason: Some(ReissueReason::UserRenamed),
        ..Transition::new(&k1, St::Active)
    };
    let k1 = s
        .commit(
            UnitOfWork {
                transition: Some(mark),
                ..UnitOfWork::default()
            },
            7,
        )
        .unwrap()
        .key
        .unwrap();
    assert!(k1.needs_reissue);
    assert_eq!(
        s.reissue_reason("k1").unwrap(),
        Some(ReissueReason::UserRenamed)
    );
    let clear = Transition {
        needs_reissue: Some(false),
        ..Transition::new(&k1, St::Active)
    };
    s.commit(
        UnitOfWork {
            transition: Some(clear),
            ..UnitOfWork::default()
        },
        8,
    )
    .unwrap();
    assert_eq!(s.reissue_reason("k1").unwrap(), None);
    assert_eq!(
        ReissueReason::parse("user_renamed"),
        Some(ReissueReason::UserRenamed)
    );
    assert_eq!(ReissueReason::parse("bogus"), None);
}

/// Passkeys recorded at schema 10 get the UPN their key's user has in the users table.
pub fn passkey_watch_migrated_from_schema_10<B: Backend>(b: &B) {
    let old = b.try_open_at("watch_v10", 10).unwrap();
    assert_eq!(old.schema_version().unwrap(), 10);
    drop(old);
    // SQLite's blob literals first (PostgreSQL refuses the whole batch), then
    // PostgreSQL's.
    let rows = |blob: &dyn Fn(&str) -> String| {
        format!(
            "INSERT INTO users (user_id, upn, display_name) VALUES ('u1', 'kim@contoso.example', 'K'); \
             INSERT INTO keys (key_id, aaguid, serial, state, user_id, version, created_ms, updated_ms) \
             VALUES ('k1', {}, 's1', 'active', 'u1', 2, 1, 1); \
             INSERT INTO passkeys (key_id, passkey_template, credential_id, public_key, idp_method_id, \
             state, created_ms, updated_ms) VALUES ('k1', 'entra', {}, {}, 'm1', 'active', 1, 1);",
            blob("00000000000000000000000000000000"),
            blob("0101"),
            blob("02")
        )
    };
    b.raw_exec("watch_v10", &rows(&|h| format!("X'{h}'")))
        .or_else(|_| b.raw_exec("watch_v10", &rows(&|h| format!("decode('{h}', 'hex')"))))
        .unwrap();
    let s = b.open("watch_v10");
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    let w = s.passkey_watch("k1").unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].user_name.as_deref(), Some("kim@contoso.example"));
    assert_eq!(w[0].credential_id, vec![1, 1]);
}
