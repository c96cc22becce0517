//! Reconciliation against the real Entra emulator: drift made directly at the emulator
//! (or by an IdP failing during a revocation) is reported, fixed and gone afterwards.

use crate::support::*;
use entra_graph::emulator::{Fault, FaultRule};
use lifecycle::engine::{CrashPoint, DriftKind, ReconcileOptions, ReconcileReport};
use lifecycle::CredentialState;

fn kinds(r: &ReconcileReport) -> Vec<(DriftKind, Option<String>, bool)> {
    let mut v: Vec<_> = r
        .findings
        .iter()
        .map(|f| (f.kind, f.key_id.clone(), f.fixed))
        .collect();
    v.sort_by_key(|(k, key, _)| (k.as_str(), key.clone()));
    v
}

fn deny_delete(w: &World) {
    w.emulator.inject(FaultRule::new(
        "DELETE",
        "fido2Methods",
        Fault::Status {
            status: 403,
            retry_after: None,
        },
        1,
    ));
}

#[test]
fn each_kind_of_drift_is_reported_fixed_and_gone() {
    let w = world("reconcile-kinds");
    let e = &w.engine;
    let now = now_ms();
    let users = vec![KIM.to_owned()];

    // A: active, its passkey then deleted at the IdP behind the CMS's back.
    let a = active(e, KIM, "SN-A", now);
    let a_pk = e.passkeys(&a.key_id).unwrap().remove(0);
    let a_method = a_pk.idp_method_id.clone().unwrap();
    e.idp(CONNECTION)
        .unwrap()
        .delete(KIM_ID, &a_method)
        .unwrap();
    // B: active, then revoked (not forced) while the IdP refuses the deletion.
    let b = active(e, KIM, "SN-B", now + 10);
    deny_delete(&w);
    let b = e
        .revoke("operator:alice", &b.key_id, Some(false), now + 20)
        .unwrap();
    assert_eq!(b.state, CredentialState::Revoked);
    let b_method = e.passkeys(&b.key_id).unwrap()[0]
        .idp_method_id
        .clone()
        .unwrap();
    // C: issued; its registration challenge will have expired when reconciling.
    let c = issued(e, KIM, "SN-C", now + 30);
    // A passkey nobody issued.
    let foreign = w.emulator.seed_methods(KIM, 1);
    assert_eq!(
        w.emulator.methods(KIM).len(),
        2,
        "B's and the foreign passkey"
    );

    let later = now + 2 * 3_600_000;
    let report = e
        .reconcile("operator:rec", &users, &ReconcileOptions::default(), later)
        .unwrap();
    assert_eq!(report.users_checked, 1);
    assert_eq!(
        kinds(&report),
        vec![
            (DriftKind::ExpiredPending, Some(c.key_id.clone()), false),
            (DriftKind::MissingAtIdp, Some(a.key_id.clone()), false),
            (DriftKind::StillAtIdp, Some(b.key_id.clone()), false),
            (DriftKind::Unknown, None, false),
        ]
    );
    let find = |k: DriftKind| report.findings.iter().find(|f| f.kind == k).unwrap();
    assert_eq!(
        find(DriftKind::MissingAtIdp).method_id.as_deref(),
        Some(a_method.as_str())
    );
    assert_eq!(find(DriftKind::MissingAtIdp).idp_connection, CONNECTION);
    assert_eq!(
        find(DriftKind::StillAtIdp).method_id.as_deref(),
        Some(b_method.as_str())
    );
    assert_eq!(
        find(DriftKind::Unknown).method_id.as_deref(),
        Some(foreign[0].as_str())
    );
    assert_eq!(find(DriftKind::Unknown).user_id.as_deref(), Some(KIM_ID));
    assert!(find(DriftKind::Unknown).credential_id.is_some());
    // Report only: nothing changed.
    assert!(!e.key(&a.key_id).unwrap().needs_reissue);
    assert_eq!(w.emulator.methods(KIM).len(), 2);
    // Serializable for --json.
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["kind"] == "missing_at_idp" && f["fixed"] == false));

    // Fix everything but the unknown passkey.
    let fix = ReconcileOptions {
        fix: true,
        delete_unknown: false,
    };
    let fixed = e.reconcile("operator:rec", &users, &fix, later).unwrap();
    assert_eq!(
        kinds(&fixed),
        vec![
            (DriftKind::ExpiredPending, Some(c.key_id.clone()), true),
            (DriftKind::MissingAtIdp, Some(a.key_id.clone()), true),
            (DriftKind::StillAtIdp, Some(b.key_id.clone()), true),
            (DriftKind::Unknown, None, false),
        ],
        "{fixed:#?}"
    );
    let a_now = e.key(&a.key_id).unwrap();
    assert!(a_now.needs_reissue);
    assert_eq!(a_now.state, CredentialState::Active);
    assert_eq!(e.passkeys(&a.key_id).unwrap()[0].idp_method_id, None);
    assert!(e.key(&c.key_id).unwrap().needs_reissue);
    assert_eq!(e.key(&b.key_id).unwrap().state, CredentialState::Revoked);
    let left: Vec<String> = w.emulator.methods(KIM).into_iter().map(|m| m.id).collect();
    assert_eq!(left, foreign, "B's passkey deleted, the foreign one kept");
    assert!(e.store().journal_unfinished().unwrap().is_empty());
    // Every fix is audited.
    for k in [&a.key_id, &b.key_id, &c.key_id] {
        assert!(
            actions(e, k).contains(&("reconcile".into(), "success".into())),
            "{k}: {:?}",
            actions(e, k)
        );
    }

    // Now the unknown one too.
    let all = ReconcileOptions {
        fix: true,
        delete_unknown: true,
    };
    let r = e.reconcile("operator:rec", &users, &all, later).unwrap();
    assert_eq!(kinds(&r), vec![(DriftKind::Unknown, None, true)]);
    assert!(w.emulator.methods(KIM).is_empty());

    // A second pass is clean.
    let again = e.reconcile("operator:rec", &users, &all, later).unwrap();
    assert!(again.is_clean(), "{again:#?}");
}

#[test]
fn failed_fix_is_reported_and_a_crash_is_finished_by_replay() {
    let w = world("reconcile-fail");
    let e = &w.engine;
    let now = now_ms();
    let users = vec![KIM.to_owned()];
    let fix = ReconcileOptions {
        fix: true,
        delete_unknown: false,
    };
    let b = active(e, KIM, "SN-B", now);
    deny_delete(&w);
    e.revoke("operator:alice", &b.key_id, Some(false), now + 1)
        .unwrap();

    // The IdP refuses the deletion again: reported, not fixed, audited as a failure.
    deny_delete(&w);
    let r = e.reconcile("operator:rec", &users, &fix, now + 2).unwrap();
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].kind, DriftKind::StillAtIdp);
    assert!(!r.findings[0].fixed);
    assert!(r.findings[0].error.as_deref().unwrap().contains("403"));
    assert_eq!(w.emulator.methods(KIM).len(), 1);
    assert!(actions(e, &b.key_id).contains(&("reconcile".into(), "failure".into())));

    // A crash right after the deletion is journalled: replay finishes it, and the key's
    // state is left alone (the journalled deletion belongs to reconciliation).
    e.crash_at(Some(CrashPoint::AfterJournal));
    let r = e.reconcile("operator:rec", &users, &fix, now + 3).unwrap();
    assert!(!r.findings[0].fixed);
    assert_eq!(
        w.emulator.methods(KIM).len(),
        1,
        "crashed before the IdP call"
    );
    assert_eq!(e.store().journal_unfinished().unwrap().len(), 1);
    let replayed = e.replay_journal(now + 4).unwrap();
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].outcome.to_string(), "done");
    assert!(w.emulator.methods(KIM).is_empty());
    let b_now = e.key(&b.key_id).unwrap();
    assert_eq!(b_now.state, CredentialState::Revoked);
    assert!(e
        .reconcile("operator:rec", &users, &fix, now + 5)
        .unwrap()
        .is_clean());
}

#[test]
fn an_unreachable_idp_is_a_finding_not_a_false_drift() {
    let w = world("reconcile-down");
    let e = &w.engine;
    let now = now_ms();
    active(e, KIM, "SN-A", now);
    w.emulator.inject(FaultRule::new(
        "GET",
        "users",
        Fault::Status {
            status: 403,
            retry_after: None,
        },
        1,
    ));
    let r = e
        .reconcile(
            "operator:rec",
            &[KIM.to_owned()],
            &ReconcileOptions::default(),
            now,
        )
        .unwrap();
    assert_eq!(r.findings.len(), 1, "{r:#?}");
    assert_eq!(r.findings[0].kind, DriftKind::CheckFailed);
    assert!(r.findings[0].error.is_some());
    // Once the IdP answers, the active key is in step.
    assert!(e
        .reconcile(
            "operator:rec",
            &[KIM.to_owned()],
            &ReconcileOptions::default(),
            now
        )
        .unwrap()
        .is_clean());
}

#[test]
fn a_connection_that_is_not_configured_proves_nothing_missing() {
    use lifecycle::engine::Engine;
    use lifecycle::store::{PinKey, SqliteStore};
    use std::sync::Arc;
    let w = world("reconcile-noidp");
    let now = now_ms();
    let a = active(&w.engine, KIM, "SN-A", now);
    // A station without the key's IdP connection configured.
    let store = SqliteStore::open(&w.db).unwrap();
    let bare = Engine::builder(Arc::new(store), PinKey::from_bytes([7; 32]), "station-b")
        .build()
        .expect("engine");
    bare.add_template(template()).unwrap();
    let fix = ReconcileOptions {
        fix: true,
        delete_unknown: true,
    };
    let r = bare
        .reconcile("operator:rec", &[KIM_ID.to_owned()], &fix, now)
        .unwrap();
    assert!(r.is_clean(), "{r:#?}");
    assert!(!bare.key(&a.key_id).unwrap().needs_reissue);
    assert_eq!(w.emulator.methods(KIM).len(), 1);
}
